//! The file sinks' `format` setting: a configuration with a JSON-lines file in ECS, a
//! rotating directory in OCSF and a schema v1 file beside them, real traffic through the
//! layer, and the files read back: the same events in each, every OCSF line valid against
//! the published OCSF schema (`tests/ocsf/validate.py`, installed by `scripts/test`). And the
//! demo's events, every kind it emits, in ECS and OCSF, each checked against its schema.
#![cfg(feature = "config")]

#[path = "support/example_binary.rs"]
mod example_binary;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::{Path, PathBuf};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use oauth_audit::config::AuditorConfig;
use oauth_audit::event::{Alert, AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::format::{EventFormat, ECS_VERSION, OCSF_VERSION};
use oauth_audit::writer::{Auditor, JsonLines, RotatingFile, Rotation};
use oauth_audit::{AuditLayer, RequiredScopes};
use serde_json::Value;
use tower::{ServiceBuilder, ServiceExt};

#[path = "support/ecs_fields.rs"]
mod ecs_fields;

#[path = "support/temp_dir.rs"]
mod temp_dir;

/// A directory of the test's own, removed when the test ends.
fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    temp_dir::temp_dir(&format!("formats-{name}"))
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs `tests/ocsf/validate.py` on a file of OCSF events.
fn validate_ocsf(path: &Path) -> (bool, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/ocsf-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: scripts/test installs it (scripts/lib/install.sh, install_ocsf_validator)",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(root.join("tests/ocsf/validate.py"))
        .arg(OCSF_VERSION)
        .arg(path)
        .output()
        .unwrap();
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Requests through the layer: a protected route served, one denied, one without a token.
async fn traffic(auditor: &Auditor) {
    let app = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor.clone()))
        .layer(RequiredScopes::all(["orders:read"]))
        .service_fn(
            |request: Request<oauth_audit::RequestBody<String>>| async move {
                let status = if request.headers().contains_key("authorization") {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let mut response = Response::new(String::from("body"));
                *response.status_mut() = status;
                Ok::<_, Infallible>(response)
            },
        );
    for authorization in [Some("Bearer some.opaque.token"), None, Some("Bearer other")] {
        let mut request = Request::builder()
            .uri("/api/orders/7?secret=1")
            .header("user-agent", "formats-test/1.0");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = app
            .clone()
            .oneshot(request.body(String::new()).unwrap())
            .await
            .unwrap();
        response.into_body().collect().await.unwrap();
    }
    // And an alert, as the detector would raise it.
    let mut alert = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::SecurityAlert,
        Outcome::Unknown,
    );
    let mut details = Alert::new("brute_force", "source.ip=203.0.113.9", 10, 900);
    details.evidence = vec![uuid::Uuid::now_v7().to_string()];
    details.first_seen = Some(Timestamp::now());
    details.last_seen = Some(Timestamp::now());
    details.title = Some("Repeated failed logins".into());
    alert.alert = Some(Box::new(details));
    auditor.emit(alert);
}

#[tokio::test]
async fn file_sinks_write_each_format_from_the_configuration() {
    let (_guard, dir) = temp_dir("config");
    let config: AuditorConfig = serde_json::from_value(serde_json::json!({
        "service_name": "orders-api",
        "writer": [
            { "type": "jsonl", "path": dir.join("v1.jsonl") },
            { "type": "jsonl", "path": dir.join("ecs.jsonl"), "format": "ecs", "flush": "every_batch" },
            { "type": "rotating", "dir": dir.join("ocsf"), "format": "ocsf", "rotation": "never",
              "retry": { "retry_initial": "10ms" } }
        ]
    }))
    .unwrap();
    let auditor = config.build().await.unwrap();
    traffic(&auditor).await;
    auditor.shutdown().await;

    let v1 = read_lines(&dir.join("v1.jsonl"));
    let ecs = read_lines(&dir.join("ecs.jsonl"));
    let ocsf_path = dir.join("ocsf/audit.jsonl");
    let ocsf = read_lines(&ocsf_path);
    assert_eq!(v1.len(), 4, "{v1:#?}");
    let ids: Vec<&Value> = v1.iter().map(|event| &event["id"]).collect();
    assert_eq!(
        ecs.iter()
            .map(|doc| &doc["event"]["id"])
            .collect::<Vec<_>>(),
        ids
    );
    assert_eq!(
        ocsf.iter()
            .map(|doc| &doc["metadata"]["uid"])
            .collect::<Vec<_>>(),
        ids
    );
    for (event, doc) in v1.iter().zip(&ecs) {
        assert_eq!(event["schema"], "oauth-audit/1");
        assert_eq!(doc["ecs"]["version"], ECS_VERSION);
        assert_eq!(doc["event"]["action"], event["kind"]);
        assert_eq!(doc["@timestamp"], event["time"]);
        assert!(doc.get("schema").is_none(), "{doc}");
    }
    assert_eq!(
        ecs[1]["event"]["type"],
        serde_json::json!(["access", "denied"])
    );
    assert_eq!(ecs[3]["event"]["kind"], "alert");
    assert_eq!(ecs[3]["rule"]["id"], "brute_force");
    assert_eq!(
        ocsf.iter()
            .map(|doc| doc["type_uid"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [600401, 600402, 600401, 200401]
    );
    // The token is a fingerprint in every format; the query string is nowhere.
    let fingerprint = v1[0]["token"]["fingerprint"].as_str().unwrap();
    assert_eq!(ecs[0]["oauth"]["token"]["fingerprint"], fingerprint);
    assert_eq!(ocsf[0]["unmapped"]["token"]["fingerprint"], fingerprint);
    for path in [dir.join("ecs.jsonl"), ocsf_path.clone()] {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("some.opaque.token") && !text.contains("secret=1"));
    }
    let (valid, said) = validate_ocsf(&ocsf_path);
    assert!(valid, "{said}");
    assert!(said.contains("4 events checked"), "{said}");
}

#[tokio::test]
async fn writers_take_a_format_from_rust_too() {
    let (_guard, dir) = temp_dir("builders");
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .service_instance("pod-1")
        .writer(
            JsonLines::file(dir.join("ocsf.jsonl"))
                .await
                .unwrap()
                .format(EventFormat::Ocsf),
        )
        .writer(
            RotatingFile::builder(dir.join("ecs"))
                .rotation(Rotation::Never)
                .format(EventFormat::Ecs)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    traffic(&auditor).await;
    auditor.shutdown().await;
    let ocsf = read_lines(&dir.join("ocsf.jsonl"));
    let ecs = read_lines(&dir.join("ecs/audit.jsonl"));
    assert_eq!((ocsf.len(), ecs.len()), (4, 4));
    assert!(ocsf
        .iter()
        .all(|doc| doc["metadata"]["reporter"]["uid"] == "pod-1"));
    assert!(ecs
        .iter()
        .all(|doc| doc["service"]["node"]["name"] == "pod-1"));
    let (valid, said) = validate_ocsf(&dir.join("ocsf.jsonl"));
    assert!(valid, "{said}");
}

#[tokio::test]
async fn only_schema_v1_has_a_disk_spool_and_formats_are_named() {
    let (_guard, dir) = temp_dir("refused");
    let spooled: AuditorConfig = serde_json::from_value(serde_json::json!({
        "writer": [{ "type": "jsonl", "path": dir.join("ecs.jsonl"), "format": "ecs",
                     "retry": { "spool_dir": dir.join("spool") } }]
    }))
    .unwrap();
    let error = spooled.build().await.unwrap_err().to_string();
    assert!(error.contains("spool_dir"), "{error}");

    let unknown = serde_json::from_value::<AuditorConfig>(serde_json::json!({
        "writer": [{ "type": "rotating", "dir": dir, "format": "json" }]
    }))
    .unwrap_err()
    .to_string();
    assert!(
        unknown.contains("unknown variant `json`, expected one of `oauth-audit`, `ecs`, `ocsf`"),
        "{unknown}"
    );
}

fn demo_binary() -> PathBuf {
    example_binary::example("demo")
}

#[test]
fn the_demos_events_validate_in_every_format() {
    let (_guard, dir) = temp_dir("demo");
    let (v1_path, ecs_path, ocsf_path) = (
        dir.join("v1.jsonl"),
        dir.join("ecs.jsonl"),
        dir.join("ocsf.jsonl"),
    );
    let output = std::process::Command::new(demo_binary())
        .arg("--out")
        .arg(&v1_path)
        .arg("--ecs")
        .arg(&ecs_path)
        .arg("--ocsf")
        .arg(&ocsf_path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "demo failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let (v1, ecs, ocsf) = (
        read_lines(&v1_path),
        read_lines(&ecs_path),
        read_lines(&ocsf_path),
    );
    // The demo stalls its v1 file on purpose, so only that sink drops events and reports it;
    // the ECS and OCSF files keep up and get every event.
    let values = |docs: &[Value], pointer: &str| -> BTreeSet<String> {
        docs.iter()
            .map(|doc| {
                doc.pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let mut expected = values(&v1, "/kind");
    assert!(
        expected.remove("AuditEventsDropped"),
        "the demo's overflow is gone"
    );
    assert_eq!(expected.len(), EventKind::ALL.len() - 1, "{expected:?}");
    assert_eq!(values(&ecs, "/event/action"), expected);
    assert_eq!(values(&ocsf, "/metadata/event_code"), expected);
    let v1_ids: BTreeSet<String> = v1
        .iter()
        .filter(|event| event["kind"] != "AuditEventsDropped")
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(v1_ids.is_subset(&values(&ecs, "/event/id")));
    assert!(v1_ids.is_subset(&values(&ocsf, "/metadata/uid")));

    let fields = ecs_fields::EcsFields::pinned();
    assert_eq!(fields.version, ECS_VERSION);
    for document in &ecs {
        let problems = fields.problems(document);
        assert!(problems.is_empty(), "{problems:#?}\n{document}");
    }
    let (valid, said) = validate_ocsf(&ocsf_path);
    assert!(valid, "{said}");
    assert!(
        said.contains(&format!("{} events checked", ocsf.len())),
        "{said}"
    );
}
