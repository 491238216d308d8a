//! The README's main command: the demo runs its scenario, exits 0 and writes schema-v1
//! events of every kind it exercises, with no secret in them, and shows the pipeline's
//! Prometheus metrics from its `/metrics` route.

#[path = "support/example_binary.rs"]
mod example_binary;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn demo_binary() -> PathBuf {
    example_binary::example("demo")
}

/// The CLI's binary, when `cargo test --workspace` built it next to the examples' directory.
/// Without it (`cargo test` of this package alone) the demo builds it, as the quickstart's
/// `cargo run --example demo` does.
fn cli_binary() -> Option<PathBuf> {
    let mut path = example_binary::example("demo");
    path.pop();
    path.pop();
    path.push(format!("oauth-audit{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

#[test]
fn demo_writes_every_kind_and_no_secret() {
    let dir = std::env::temp_dir().join(format!("oauth-audit-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("events.jsonl");
    let mut demo = Command::new(demo_binary());
    demo.arg("--out").arg(&out);
    if let Some(cli) = cli_binary() {
        demo.arg("--proxy-bin").arg(cli);
    }
    let output = demo.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    // From the scrape of /metrics: the request path counted its events by kind.
    assert!(
        stdout.contains("oauth_audit_events_total{kind=\"ResourceAccessed\",outcome=\"success\"}"),
        "no events_total in the demo's summary:\n{stdout}"
    );
    assert!(
        stdout.contains("oauth_audit_events_dropped_total{"),
        "the scenario's overflow is not in the metrics:\n{stdout}"
    );
    // The metrics are read after the last flush: what they say was written is in the file
    // (the writer's own drop reports are not counted as written).
    let trail = std::fs::read_to_string(&out).unwrap();
    let lines = trail.lines().count() - trail.matches("\"kind\":\"AuditEventsDropped\"").count();
    let written = format!(
        "oauth_audit_events_written_total{{writer=\"file:{}\"}} {lines}\n",
        out.display()
    );
    assert!(stdout.contains(&written), "no {written:?} in:\n{stdout}");
    // The same events, by default, as ECS documents and OCSF events next to the trail.
    for (file, schema_mark) in [
        ("events.ecs.jsonl", "\"ecs\":{\"version\":\"9.4.0\"}"),
        ("events.ocsf.jsonl", "\"class_uid\":"),
    ] {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            text.lines().count() > 100 && text.lines().all(|l| l.contains(schema_mark)),
            "{} is not a trail in that format",
            path.display()
        );
        assert!(
            stdout.contains(&format!("in {}", path.display())),
            "the demo does not say where {file} is:\n{stdout}"
        );
    }
    // The detector caught the scripted attack, with its evidence, in the same trail.
    assert!(
        stdout.contains("brute_force (critical): 10 event(s) in 900 s from actor.subject=bob source.ip=198.51.100.66, evidence: 10 event id(s)"),
        "no brute_force alert in the demo's output:\n{stdout}"
    );
    // The replayed refresh token (rotated a moment before) was seen for what it is.
    assert!(
        stdout
            .lines()
            .any(|line| line.contains("refresh_token_reuse (critical)")
                && line.contains("actor.client_id=web")),
        "no refresh_token_reuse alert in the demo's output:\n{stdout}"
    );
    // The copied DPoP proof and the bound token sent as Bearer: one alert each.
    for rule in [
        "dpop_proof_replay (critical)",
        "binding_downgrade (critical)",
    ] {
        assert!(
            stdout
                .lines()
                .any(|line| line.contains(rule) && line.contains("1 event(s)")),
            "no {rule} alert in the demo's output:\n{stdout}"
        );
    }
    // Geo enrichment placed alice's two sign-ins; the detector saw the trip for what it is.
    assert!(
        stdout.contains("impossible_travel (critical): 1 event(s) in 5400 s from actor.subject=alice, evidence: 2 event id(s)")
            && stdout.contains("from Lyon, FR (203.0.113.10) to Sydney, AU (198.51.100.23)"),
        "no impossible_travel alert in the demo's output:\n{stdout}"
    );
    // The report page, next to the events, with the numbers the scenario made: the token
    // it revoked and then presented, the failed logins of the brute force.
    let page = std::fs::read_to_string(dir.join("report.html")).expect("the demo's report.html");
    assert!(page.contains("<svg") && page.contains("Scope usage and unused permissions"));
    assert!(
        stdout.contains("1 accepted after revocation"),
        "no token lifecycle in the demo's output:\n{stdout}"
    );
    assert!(
        stdout.contains("failed logins: 10 from 198.51.100.66"),
        "no failed logins in the demo's report summary:\n{stdout}"
    );
    // The demo verifies its own chain (clean, the overflow an announced gap), then catches
    // the event it edits in a copy.
    let verified = stdout
        .split("the chain, verified")
        .nth(1)
        .expect("no verification in the demo's output");
    let (own, tampered) = verified
        .split_once("edited (an AccessDenied turned into a success)")
        .expect("no tampered copy in the demo's output");
    assert!(own.contains(": no problems"), "{own}");
    assert!(own.contains("note: announced_gap"), "{own}");
    assert!(tampered.contains(": edited"), "{tampered}");
    assert!(tampered.contains("1 problem"), "{tampered}");

    let text = std::fs::read_to_string(&out).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: BTreeSet<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "AccessTokenIssued",
        "TokenRequestFailed",
        "TokenRevoked",
        "TokenRevocationFailed",
        "TokenIntrospected",
        "TokenIntrospectionFailed",
        "AuthorizationRequested",
        "AuthorizationGranted",
        "AuthorizationFailed",
        "LoginSucceeded",
        "LoginFailed",
        "ResourceAccessed",
        "AccessDenied",
        "AuditEventsDropped",
        "AuditCheckpoint",
        "SecurityAlert",
    ] {
        assert!(kinds.contains(kind), "no {kind} in the demo output");
    }
    // Every event with an address is placed: loopback by name, documentation addresses by
    // the demo's databases.
    let placed = |ip: &str| {
        events
            .iter()
            .filter(|e| e["source"]["ip"] == ip)
            .map(|e| e["source"].clone())
            .next()
            .unwrap_or_else(|| panic!("no event from {ip}"))
    };
    assert_eq!(
        placed("127.0.0.1")["geo"],
        serde_json::json!({"name": "loopback"})
    );
    let lyon = placed("203.0.113.10");
    assert_eq!(
        (lyon["geo"]["city"].as_str(), lyon["as"]["number"].as_u64()),
        (Some("Lyon"), Some(64_500))
    );
    assert_eq!(placed("198.51.100.66")["geo"]["country"], "AU");
    for e in &events {
        // The demo's processor labels every event that passed the pipeline; checkpoints are
        // made after it, by the chain, and drop reports behind it, by the writer's runtime.
        if e["kind"] != "AuditEventsDropped" && e["kind"] != "AuditCheckpoint" {
            assert_eq!(e["labels"]["deployment"], "demo", "not labelled: {e}");
        }
        // Every event that went through the pipeline is chained.
        assert_eq!(
            e.get("chain").is_some(),
            e["kind"] != "AuditEventsDropped",
            "chain: {e}"
        );
        assert_eq!(e["schema"], "oauth-audit/1");
        assert!(e["id"].is_string() && e["time"].as_str().unwrap().ends_with('Z'));
    }
    let verdicts: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e["token"]["verdict"].as_str())
        .collect();
    for verdict in ["valid", "expired", "bad_signature", "malformed", "revoked"] {
        assert!(verdicts.contains(verdict), "no {verdict} verdict");
    }
    assert!(
        events.iter().any(|e| e["kind"] == "AccessDenied"
            && e["error"]["code"] == "method_override"
            && e["http"]["status"] == 400),
        "the method override on /api/admin is recorded as refused"
    );
    // Modern flows: a pushed authorization request joined to the authorization request that
    // presented it; a device code's pending polls condensed into one event and joined to
    // the issuance; a token exchange naming the gateway as the actor of alice's token.
    let with_oauth = |kind: &str, key: &str| -> Vec<&serde_json::Value> {
        events
            .iter()
            .filter(|e| e["kind"] == kind && !e["oauth"][key].is_null())
            .collect()
    };
    let pushed = with_oauth("AuthorizationRequested", "pushed");
    assert_eq!(pushed.len(), 1, "one pushed authorization request");
    let request_uri = &pushed[0]["oauth"]["request_uri_fingerprint"];
    assert!(request_uri.as_str().unwrap().starts_with("sha256:"));
    assert!(
        events.iter().any(|e| e["kind"] == "AuthorizationGranted"
            && e["oauth"]["request_uri_fingerprint"] == *request_uri
            && e["actor"]["client_id"] == "web"),
        "the authorization request that presented the pushed one is not joined to it"
    );
    let started = with_oauth("AuthorizationRequested", "device_code_fingerprint");
    assert_eq!(started.len(), 1, "one device authorization");
    assert_eq!(started[0]["oauth"]["endpoint"], "device_authorization");
    let device = &started[0]["oauth"]["device_code_fingerprint"];
    let polls: Vec<_> = events
        .iter()
        .filter(|e| {
            e["oauth"]["device_code_fingerprint"] == *device && e["http"]["path"] == "/token"
        })
        .collect();
    assert_eq!(
        polls.len(),
        2,
        "three pending polls in one event, then the issuance: {polls:?}"
    );
    assert_eq!(polls[0]["error"]["code"], "authorization_pending");
    assert_eq!(polls[1]["kind"], "AccessTokenIssued");
    assert_eq!(polls[1]["oauth"]["repeated"], 2);
    assert_eq!(
        (
            &polls[1]["actor"]["subject"],
            &polls[1]["actor"]["client_id"]
        ),
        (&"alice".into(), &"tv".into())
    );
    let exchanged = with_oauth("AccessTokenIssued", "subject_token");
    assert_eq!(exchanged.len(), 1, "one token exchange");
    assert_eq!(exchanged[0]["oauth"]["act"], "gateway");
    assert_eq!(exchanged[0]["actor"]["subject"], "alice");
    let alice_token = &exchanged[0]["oauth"]["subject_token"]["fingerprint"];
    assert!(
        events.iter().any(|e| e["kind"] == "AccessTokenIssued"
            && e["token"]["fingerprint"] == *alice_token
            && e["grant_type"] == "password"),
        "the exchanged token's fingerprint does not join with its issuance"
    );
    assert!(
        events.iter().any(|e| e["kind"] == "ResourceAccessed"
            && e["actor"]["subject"] == "alice"
            && e["actor"]["delegation"][0]["subject"] == "gateway"),
        "the exchanged token's use does not name the gateway as the actor"
    );
    // CIBA: the call centre's request for alice's consent, and its two polls, joined to it.
    let ciba = with_oauth("AuthorizationRequested", "auth_req_id_fingerprint");
    assert_eq!(ciba.len(), 1, "one CIBA request");
    assert_eq!(ciba[0]["oauth"]["endpoint"], "backchannel_authentication");
    assert_eq!(ciba[0]["actor"]["client_id"], "desk");
    let request = &ciba[0]["oauth"]["auth_req_id_fingerprint"];
    let polls: Vec<_> = events
        .iter()
        .filter(|e| {
            e["oauth"]["auth_req_id_fingerprint"] == *request && e["http"]["path"] == "/token"
        })
        .collect();
    assert_eq!(polls.len(), 2, "the two polls join the request: {polls:?}");
    assert_eq!(polls[0]["error"]["code"], "authorization_pending");
    assert_eq!(
        (
            &polls[1]["kind"],
            &polls[1]["grant_type"],
            &polls[1]["actor"]["subject"]
        ),
        (
            &"AccessTokenIssued".into(),
            &"urn:openid:params:grant-type:ciba".into(),
            &"alice".into()
        )
    );
    // Mutual TLS: the meter's certificate (from the TLS terminator's header) authenticated it
    // and bound its token; the token without the certificate is a downgrade, alerted on.
    let meter: Vec<_> = events
        .iter()
        .filter(|e| e["actor"]["client_id"] == "meter" && e["kind"] != "SecurityAlert")
        .collect();
    assert_eq!(meter.len(), 3, "{meter:?}");
    assert_eq!(meter[0]["kind"], "AccessTokenIssued");
    assert_eq!(meter[0]["client_auth"], "self_signed_tls_client_auth");
    for (event, proof) in meter.iter().zip(["valid", "valid", "missing"]) {
        assert_eq!(event["token"]["binding"]["method"], "mtls", "{event}");
        assert_eq!(event["token"]["binding"]["proof"], proof, "{event}");
    }
    assert_eq!(meter[2]["token"]["binding"]["downgrade"], true);
    assert!(
        events.iter().any(|e| e["kind"] == "SecurityAlert"
            && e["alert"]["rule"] == "binding_downgrade"
            && e["actor"]["client_id"] == "meter"),
        "no binding_downgrade alert for the meter's token"
    );
    // Never the values, only fingerprints under other names.
    for never in [
        "user_code",
        "\"device_code\":",
        "\"request_uri\":",
        "\"subject_token\":\"",
    ] {
        assert!(!text.contains(never), "the demo's events contain {never:?}");
    }
    for secret in [
        "gateway-secret",
        "desk-secret",
        "W4-K9",
        "\"ar-",
        "par-state",
        "\"dc-",
        "urn:ietf:params:oauth:request_uri:",
        "web-secret",
        "reporting-secret",
        "wonderland",
        "correct horse",
        "not-my-password",
        "dBjftJeZ4CVP",
        "xyz-state",
        "\"ac-",
        "\"rt-",
    ] {
        assert!(
            !text.contains(secret),
            "the demo's events contain {secret:?}"
        );
    }
    proxy_part(&dir, &stdout);
    std::fs::remove_dir_all(dir).ok();
}

/// The demo's last part: `oauth-audit proxy` in front of a server without audit code, its
/// events next to the demo's.
fn proxy_part(dir: &std::path::Path, stdout: &str) {
    let part = stdout
        .split("the auditing reverse proxy, for servers that are not Rust")
        .nth(1)
        .unwrap_or_else(|| panic!("no proxy part in the demo's output:\n{stdout}"));
    // What the proxy refused never reached the upstream.
    assert!(
        part.contains(
            "the upstream was asked 2 token request(s), 1 for /api/orders, 0 for /api/admin"
        ),
        "{part}"
    );
    assert!(
        part.contains("GET /api/%61dmin/users (the same path, one letter escaped): 403 Forbidden, insufficient_scope, answered by the proxy"),
        "{part}"
    );
    let text = std::fs::read_to_string(dir.join("events.proxy.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str, u64, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["http"]["path"].as_str().unwrap(),
                e["http"]["status"].as_u64().unwrap(),
                e["error"]["code"].as_str().unwrap_or(""),
                e["token"]["verdict"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("TokenRequestFailed", "/token", 401, "invalid_client", ""),
            ("AccessTokenIssued", "/token", 200, "", "valid"),
            ("ResourceAccessed", "/api/orders", 200, "", "valid"),
            (
                "AccessDenied",
                "/api/admin/users",
                403,
                "insufficient_scope",
                "valid"
            ),
            (
                "AccessDenied",
                "/api/%61dmin/users",
                403,
                "insufficient_scope",
                "valid"
            ),
            (
                "AccessDenied",
                "/api/admin/users",
                401,
                "invalid_token",
                "bad_signature"
            ),
        ],
        "{text}"
    );
    assert_eq!(events[1]["actor"]["client_id"], "warehouse");
    assert_eq!(
        events[1]["scopes"]["granted"],
        serde_json::json!(["orders:read"])
    );
    assert_eq!(events[3]["scopes"]["missing"], serde_json::json!(["admin"]));
    // The proxy's events come from the service the configuration names.
    for e in &events {
        assert_eq!(e["service"]["instance"], "proxy", "{e}");
        assert_eq!(e["schema"], "oauth-audit/1");
    }
    // Neither client secret, and no JWT (their base64url header begins `eyJ`).
    for secret in ["warehouse-secret", "eyJ"] {
        assert!(
            !text.contains(secret),
            "the proxy's events contain {secret:?}"
        );
    }
}

#[test]
fn demo_leaves_a_file_it_did_not_write_alone() {
    let dir = std::env::temp_dir().join(format!("oauth-audit-demo-own-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("events.jsonl");
    let report = dir.join("report.html");
    std::fs::write(&report, "my own notes\n").unwrap();
    let output = Command::new(demo_binary())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("report.html exists and was not written by the demo"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "my own notes\n");
    assert!(!out.exists(), "nothing written before the refusal");
    std::fs::remove_dir_all(dir).ok();
}
