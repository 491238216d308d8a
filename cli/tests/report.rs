//! `oauth-audit report` over a generated trail whose answers are known: every number the
//! report gives is checked against the events it was made from.

#[cfg(feature = "postgres")]
use support::ports;
#[cfg(feature = "postgres")]
#[path = "../../tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use support::{run, TempDir};

/// The moment the report judges at (`--until`): the trail is laid out before it.
const AS_OF: &str = "2026-06-01T00:00:00Z";

/// `days` (and `hours`) before [`AS_OF`], as the writers write times.
fn ago(days: i64, hours: i64) -> String {
    let as_of = 1_780_272_000i64; // 2026-06-01T00:00:00Z
    let secs = as_of - days * 86_400 - hours * 3_600;
    oauth_audit::event::Timestamp::from_unix(secs)
        .unwrap()
        .to_string()
}

fn event(kind: &str, outcome: &str, time: String, fields: Value) -> Value {
    let mut event = json!({
        "schema": "oauth-audit/1",
        "id": uuid::Uuid::new_v4().to_string(),
        "time": time,
        "kind": kind,
        "outcome": outcome,
        "severity": if outcome == "failure" { "warning" } else { "info" },
        "service": {"name": "orders-api"},
    });
    if let (Some(event), Value::Object(fields)) = (event.as_object_mut(), fields) {
        event.extend(fields);
    }
    event
}

fn issued(
    days: i64,
    client: &str,
    grant: &str,
    requested: &[&str],
    granted: &[&str],
    fp: &str,
) -> Value {
    event(
        "AccessTokenIssued",
        "success",
        ago(days, 0),
        json!({
            "actor": {"client_id": client, "kind": "client"},
            "grant_type": grant,
            "scopes": {"requested": requested, "granted": granted},
            "token": {"fingerprint": fp},
        }),
    )
}

#[allow(clippy::too_many_arguments)]
fn call(
    days: i64,
    hours: i64,
    subject: &str,
    client: &str,
    route: &str,
    granted: &[&str],
    required: &[&str],
    used: &[&str],
    ip: &str,
    fp: &str,
) -> Value {
    event(
        "ResourceAccessed",
        "success",
        ago(days, hours),
        json!({
            "actor": {"client_id": client, "subject": subject, "kind": "user"},
            "scopes": {"granted": granted, "required": required, "used": used},
            "http": {"method": "GET", "route": route, "path": route, "status": 200},
            "source": {"ip": ip},
            "token": {"fingerprint": fp},
        }),
    )
}

/// The trail: what each client was granted and used, tokens, failures, alerts, losses.
fn trail() -> Vec<Value> {
    let rw = ["orders:read", "orders:write"];
    let mut events = vec![
        // billing: asked for admin too (refused); has used orders:read, never orders:write.
        issued(
            200,
            "billing",
            "client_credentials",
            &["orders:read", "orders:write", "admin"],
            &rw,
            "sha256:01",
        ),
        call(
            1,
            0,
            "alice",
            "billing",
            "/api/orders",
            &rw,
            &["orders:read"],
            &["orders:read"],
            "10.0.0.1",
            "sha256:01",
        ),
        call(
            1,
            2,
            "alice",
            "billing",
            "/api/orders",
            &rw,
            &["orders:read"],
            &["orders:read"],
            "10.0.0.2",
            "sha256:01",
        ),
        call(
            3,
            0,
            "alice",
            "billing",
            "/api/orders",
            &rw,
            &["orders:read"],
            &["orders:read"],
            "10.0.0.1",
            "sha256:01",
        ),
        // shipping: used orders:write yesterday, orders:read last 100 days ago.
        issued(150, "shipping", "client_credentials", &rw, &rw, "sha256:02"),
        call(
            100,
            0,
            "bob",
            "shipping",
            "/api/orders",
            &rw,
            &["orders:read"],
            &["orders:read"],
            "10.0.1.1",
            "sha256:05",
        ),
        call(
            1,
            0,
            "bob",
            "shipping",
            "/api/orders/{id}",
            &rw,
            &["orders:write"],
            &["orders:write"],
            "10.0.1.1",
            "sha256:05",
        ),
        // newapp: first seen 10 days ago, never used what it got: too young to judge.
        issued(
            10,
            "newapp",
            "authorization_code",
            &["orders:write"],
            &["orders:write"],
            "sha256:03",
        ),
        // A token revoked five days ago and presented two days ago.
        issued(
            20,
            "billing",
            "client_credentials",
            &["orders:read"],
            &["orders:read"],
            "sha256:04",
        ),
        event(
            "TokenRevoked",
            "success",
            ago(5, 0),
            json!({"actor": {"client_id": "billing"}, "token": {"fingerprint": "sha256:04"}}),
        ),
        call(
            2,
            0,
            "alice",
            "billing",
            "/api/orders",
            &["orders:read"],
            &["orders:read"],
            &["orders:read"],
            "10.0.0.9",
            "sha256:04",
        ),
        // legacy: an audit-only rule lets it through without orders:write, twice.
        call(
            4,
            0,
            "carol",
            "legacy",
            "/api/orders/{id}",
            &["orders:read"],
            &["orders:write"],
            &[],
            "10.0.2.1",
            "sha256:06",
        ),
        call(
            3,
            0,
            "carol",
            "legacy",
            "/api/orders/{id}",
            &["orders:read"],
            &["orders:write"],
            &[],
            "10.0.2.1",
            "sha256:06",
        ),
        // A client id with a quote in it (escaped in JSON).
        call(
            2,
            0,
            "dave",
            "we\"ird",
            "/api/orders",
            &["orders:read"],
            &["orders:read"],
            &["orders:read"],
            "10.0.3.1",
            "sha256:07",
        ),
        // Denials.
        event(
            "AccessDenied",
            "failure",
            ago(2, 0),
            json!({
                "actor": {"client_id": "billing", "subject": "alice"},
                "scopes": {"granted": ["orders:read"], "required": ["admin"]},
                "http": {"method": "GET", "route": "/api/admin", "status": 403},
                "source": {"ip": "10.0.0.1"},
                "error": {"code": "insufficient_scope"},
                "token": {"fingerprint": "sha256:01"},
            }),
        ),
        event(
            "AccessDenied",
            "failure",
            ago(2, 1),
            json!({
                "actor": {"client_id": "billing", "subject": "alice"},
                "http": {"method": "GET", "route": "/api/admin", "status": 403},
                "source": {"ip": "10.0.0.1"},
                "error": {"code": "insufficient_scope"},
            }),
        ),
    ];
    // Refreshes.
    for day in [30, 20, 10] {
        events.push(issued(
            day,
            "shipping",
            "refresh_token",
            &[],
            &rw,
            &format!("sha256:1{day}"),
        ));
    }
    // Introspections by the gateway: four active, one inactive, one failed.
    for (i, active) in [true, true, true, true, false].into_iter().enumerate() {
        events.push(event(
            "TokenIntrospected",
            "success",
            ago(6, i as i64),
            json!({"actor": {"client_id": "gateway"}, "token": {"active": active}}),
        ));
    }
    events.push(event(
        "TokenIntrospectionFailed",
        "failure",
        ago(6, 9),
        json!({"actor": {"client_id": "gateway"}, "error": {"code": "invalid_client"}}),
    ));
    // Failed logins: five from one address (alice, bob), one from another (carol).
    for (i, user) in ["alice", "alice", "bob", "alice", "bob"]
        .into_iter()
        .enumerate()
    {
        events.push(event(
            "LoginFailed",
            "failure",
            ago(7, i as i64),
            json!({"actor": {"subject": user}, "source": {"ip": "203.0.113.9"}}),
        ));
    }
    events.push(event(
        "LoginFailed",
        "failure",
        ago(7, 8),
        json!({"actor": {"subject": "carol"}, "source": {"ip": "198.51.100.7"}}),
    ));
    // Token requests refused: three invalid_client, one invalid_scope (admin).
    for i in 0..3 {
        events.push(event("TokenRequestFailed", "failure", ago(8, i), json!({"actor": {"client_id": "billing"}, "grant_type": "client_credentials", "source": {"ip": "203.0.113.9"}, "error": {"code": "invalid_client"}})));
    }
    events.push(event("TokenRequestFailed", "failure", ago(8, 5), json!({"actor": {"client_id": "newapp"}, "grant_type": "client_credentials", "scopes": {"requested": ["admin"]}, "source": {"ip": "10.0.4.1"}, "error": {"code": "invalid_scope"}})));
    events.push(event("SecurityAlert", "unknown", ago(7, 0), json!({"alert": {"rule": "brute_force", "key": "203.0.113.9", "count": 5, "window_s": 300}})));
    events.push(event(
        "AuditEventsDropped",
        "failure",
        ago(9, 0),
        json!({"dropped": {"count": 7, "reason": "queue_full", "sink": "file"}}),
    ));
    // A hostile client id and username: a Markdown link, a spreadsheet formula. The
    // writer named the missing scope itself (an audit-only rule let the call through).
    events.push(event("ResourceAccessed", "success", ago(2, 3), json!({
        "actor": {"client_id": "[Approve](https://evil.example)", "subject": "=HYPERLINK(\"https://evil.example\")"},
        "scopes": {"granted": ["orders:read"], "required": ["orders:read", "orders:admin"], "used": ["orders:read"], "missing": ["orders:admin"]},
        "http": {"method": "POST", "route": "/api/orders", "status": 200},
        "source": {"ip": "10.0.6.1"},
    })));
    // Another service.
    for i in 0..3 {
        let mut e = call(
            2,
            i,
            "erin",
            "reports",
            "/api/reports",
            &["reports:read"],
            &["reports:read"],
            &["reports:read"],
            "10.0.5.1",
            "sha256:08",
        );
        e["service"]["name"] = json!("reports-api");
        events.push(e);
    }
    events
}

fn write_lines(path: &Path, events: &[Value], extra: &[&str]) {
    let mut text = String::new();
    for event in events {
        text.push_str(&event.to_string());
        text.push('\n');
    }
    for line in extra {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The trail in a rotated directory: the older half gzip-compressed, the rest plain, and
/// two lines that are not events.
fn trail_dir(dir: &TempDir) -> (PathBuf, Vec<Value>) {
    let events = trail();
    let logs = dir.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let (old, new) = events.split_at(events.len() / 2);
    let archive = logs.join("audit-2026-05-01.jsonl");
    write_lines(&archive, old, &[]);
    let status = Command::new("gzip").arg(&archive).status().unwrap();
    assert!(status.success());
    write_lines(
        &logs.join("audit.jsonl"),
        new,
        &[
            "not json at all",
            r#"{"kind": 1}"#,
            // Digits where a time goes, but no time: it would sort after every real one.
            r#"{"kind":"TokenRevoked","time":"2026-99-99T99:99:99.999999Z","token":{"fingerprint":"sha256:01"}}"#,
        ],
    );
    (logs, events)
}

fn report_json(args: &[&str]) -> Value {
    let output = run(args, &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn rows<'a>(value: &'a Value, key: &str) -> &'a Vec<Value> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key}: {value}"))
}

fn client<'a>(report: &'a Value, id: &str) -> &'a Value {
    rows(&report["scopes"], "clients")
        .iter()
        .find(|c| c["client"] == id)
        .unwrap_or_else(|| panic!("no client {id}"))
}

fn scope_names(rows: &Value) -> Vec<&str> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r["scope"].as_str().unwrap())
        .collect()
}

#[test]
fn every_number_matches_the_trail() {
    let dir = TempDir::new("report");
    let (logs, events) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();
    let output = run(&["report", logs, "--until", AS_OF, "--format", "json"], &[]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("audit.jsonl:"),
        "names the file and line: {stderr}"
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();

    // Inputs: both files, every event, the two bad lines counted with their place.
    assert_eq!(rows(&report["input"], "files").len(), 2);
    assert_eq!(report["input"]["events"], events.len());
    assert_eq!(report["input"]["matched"], events.len());
    assert_eq!(report["input"]["skipped"], 3);
    assert!(rows(&report["input"], "skipped_examples")[0]
        .as_str()
        .unwrap()
        .contains("audit.jsonl:"));

    // Overview: counted independently from the events.
    let by_kind = rows(&report["overview"], "by_kind");
    let mut kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(by_kind.len(), kinds.len());
    for row in by_kind {
        let kind = row["kind"].as_str().unwrap();
        for outcome in ["success", "failure", "unknown"] {
            let expected = events
                .iter()
                .filter(|e| e["kind"] == kind && e["outcome"] == outcome)
                .count();
            assert_eq!(row[outcome], expected, "{kind} {outcome}");
        }
    }
    let per_day: u64 = rows(&report["overview"], "per_day")
        .iter()
        .map(|d| {
            d["success"].as_u64().unwrap()
                + d["failure"].as_u64().unwrap()
                + d["unknown"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(per_day, events.len() as u64);
    assert_eq!(report["overview"]["first_event"], json!(ago(200, 0)));
    let billing_events = events
        .iter()
        .filter(|e| e["actor"]["client_id"] == "billing")
        .count();
    let busiest = &rows(&report["overview"], "clients")[0];
    assert_eq!(busiest["client"], "billing");
    assert_eq!(busiest["events"], billing_events);
    let codes = rows(&report["overview"], "error_codes");
    assert!(
        codes.contains(&json!({"code": "invalid_client", "count": 4})),
        "{codes:?}"
    );

    // Access review: alice through billing on /api/orders: three calls before the
    // revoked token's, from two addresses, plus that one from a third.
    let alice = rows(&report, "access")
        .iter()
        .find(|r| r["subject"] == "alice" && r["route"] == "/api/orders")
        .unwrap();
    assert_eq!(alice["client"], "billing");
    assert_eq!(alice["count"], 4);
    assert_eq!(alice["addresses"], 3);
    assert_eq!(alice["first_seen"], json!(ago(3, 0)));
    assert_eq!(alice["last_seen"], json!(ago(1, 0)));
    let denied = rows(&report["overview"], "routes")
        .iter()
        .find(|r| r["route"] == "/api/admin")
        .unwrap();
    assert_eq!(denied["denied"], 2);
    assert!(rows(&report, "access")
        .iter()
        .any(|r| r["client"] == "we\"ird"));

    // Unused permissions: billing never used orders:write; shipping last used orders:read
    // 100 days ago (outside the 90-day window); newapp is too young to judge.
    let billing = client(&report, "billing");
    assert_eq!(
        billing["unused"],
        json!([{"scope": "orders:write", "last_used": null}])
    );
    assert_eq!(billing["younger_than_window"], false);
    assert_eq!(scope_names(&billing["refused"]), ["admin"]);
    let shipping = client(&report, "shipping");
    assert_eq!(
        shipping["unused"],
        json!([{"scope": "orders:read", "last_used": ago(100, 0)}])
    );
    assert_eq!(
        scope_names(&shipping["used"]),
        ["orders:read", "orders:write"]
    );
    let newapp = client(&report, "newapp");
    assert_eq!(newapp["younger_than_window"], true);
    assert_eq!(newapp["unused"], json!([]));
    assert_eq!(scope_names(&newapp["refused"]), ["admin"]);
    let missing = rows(&report["scopes"], "missing");
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert_eq!(missing[0]["client"], "legacy");
    assert_eq!(missing[0]["missing"], json!(["orders:write"]));
    assert_eq!(missing[0]["count"], 2);
    assert_eq!(
        missing[1]["missing"],
        json!(["orders:admin"]),
        "as the writer named it"
    );

    // A longer window: shipping's orders:read counts as used.
    let wide = report_json(&[
        "report",
        logs,
        "--until",
        AS_OF,
        "--unused-after",
        "120d",
        "--format",
        "json",
    ]);
    assert_eq!(client(&wide, "shipping")["unused"], json!([]));
    assert_eq!(wide["unused_after_days"], 120);

    // Token lifecycle.
    let tokens = &report["tokens"];
    assert_eq!(tokens["refreshed"], 3);
    assert!(rows(tokens, "issued_by_grant")
        .contains(&json!({"grant_type": "client_credentials", "count": 3})));
    assert!(rows(tokens, "issued_by_grant")
        .contains(&json!({"grant_type": "refresh_token", "count": 3})));
    // Issued: 01, 02, 03, 04 and three refreshes; of those 02, 03 and the refreshes unused.
    assert_eq!(tokens["issued_with_fingerprint"], 7);
    assert_eq!(tokens["never_used"], 5);
    assert_eq!(tokens["used_after_revocation_total"], 1);
    let reused = &rows(tokens, "used_after_revocation")[0];
    assert_eq!(reused["fingerprint"], "sha256:04");
    assert_eq!(reused["revoked_at"], json!(ago(5, 0)));
    assert_eq!(reused["last_used"], json!(ago(2, 0)));
    assert_eq!(
        rows(tokens, "introspections")[0],
        json!({"client": "gateway", "active": 4, "inactive": 1, "unknown": 0, "failed": 1})
    );

    // Failures.
    let failures = &report["failures"];
    assert_eq!(
        rows(failures, "failed_logins_by_ip")[0],
        json!({"ip": "203.0.113.9", "count": 5, "subjects": 2, "subjects_at_least": false})
    );
    assert_eq!(
        rows(failures, "token_failures")[0],
        json!({"client": "billing", "error_code": "invalid_client", "count": 3})
    );
    assert_eq!(
        rows(failures, "token_failures_by_ip")[0],
        json!({"ip": "203.0.113.9", "count": 3})
    );
    assert_eq!(
        rows(failures, "denials"),
        &vec![json!({"code": "insufficient_scope", "count": 2})]
    );
    assert_eq!(
        rows(failures, "alerts_by_rule"),
        &vec![json!({"rule": "brute_force", "count": 1})]
    );
    assert_eq!(
        rows(failures, "dropped"),
        &vec![json!({"reason": "queue_full", "sink": "file", "count": 7})]
    );
    assert!(report.get("integrity").is_none(), "nothing is chained");
}

#[test]
fn filters_narrow_every_section() {
    let dir = TempDir::new("report-filters");
    let (logs, events) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();

    // One person: everything the trail holds about alice, listed.
    let alice = report_json(&[
        "report",
        logs,
        "--until",
        AS_OF,
        "--subject",
        "alice",
        "--format",
        "json",
    ]);
    let expected = events
        .iter()
        .filter(|e| e["actor"]["subject"] == "alice")
        .count();
    assert_eq!(alice["input"]["matched"], expected);
    assert_eq!(alice["subject_events"]["total"], expected);
    let listed = rows(&alice["subject_events"], "listed");
    assert_eq!(listed.len(), expected);
    assert!(listed
        .iter()
        .any(|e| e["kind"] == "LoginFailed" && e["ip"] == "203.0.113.9"));
    assert!(rows(&alice, "access")
        .iter()
        .all(|r| r["subject"] == "alice"));

    let reports = report_json(&[
        "report",
        logs,
        "--until",
        AS_OF,
        "--service",
        "reports-api",
        "--format",
        "json",
    ]);
    assert_eq!(reports["input"]["matched"], 3);
    let shipping = report_json(&[
        "report", logs, "--until", AS_OF, "--client", "shipping", "--format", "json",
    ]);
    let expected = events
        .iter()
        .filter(|e| e["actor"]["client_id"] == "shipping")
        .count();
    assert_eq!(shipping["input"]["matched"], expected);

    // The last week only.
    let week = report_json(&[
        "report",
        logs,
        "--since",
        &ago(7, 0),
        "--until",
        AS_OF,
        "--format",
        "json",
    ]);
    let since = ago(7, 0);
    let expected = events
        .iter()
        .filter(|e| e["time"].as_str().unwrap() >= since.as_str())
        .count();
    assert_eq!(week["input"]["matched"], expected);
    assert_eq!(week["input"]["events"], events.len());
}

#[test]
fn markdown_csv_and_html_carry_the_same_numbers() {
    let dir = TempDir::new("report-formats");
    let (logs, _) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();

    let output = run(&["report", logs, "--until", AS_OF], &[]);
    assert!(output.status.success());
    let markdown = String::from_utf8_lossy(&output.stdout);
    assert!(markdown.contains("## Scope usage and unused permissions"));
    assert!(
        markdown.contains("| billing | orders:write | never |"),
        "{markdown}"
    );
    assert!(markdown.contains("| we\\\"ird |") || markdown.contains("we\"ird"));
    assert!(
        markdown.contains("\\[Approve\\](https\\://evil.example)"),
        "a client id is not a link: {markdown}"
    );

    let csv_dir = dir.path("csv");
    let output = run(
        &[
            "report",
            logs,
            "--until",
            AS_OF,
            "--format",
            "csv",
            "--out",
            csv_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let unused = std::fs::read_to_string(csv_dir.join("unused_scopes.csv")).unwrap();
    assert!(unused.starts_with("client,scope,last used\n"), "{unused}");
    assert!(unused.contains("billing,orders:write,never\n"));
    let logins = std::fs::read_to_string(csv_dir.join("failed_logins_by_ip.csv")).unwrap();
    assert!(logins.contains("203.0.113.9,5,2\n"), "{logins}");
    let access = std::fs::read_to_string(csv_dir.join("access_review.csv")).unwrap();
    assert!(access.contains("\"we\"\"ird\""), "CSV quoting: {access}");
    assert!(
        access.contains("'=HYPERLINK"),
        "a formula stays text in a spreadsheet: {access}"
    );

    let html = dir.path("report.html");
    let output = run(
        &[
            "report",
            logs,
            "--until",
            AS_OF,
            "--out",
            html.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"), "inline charts");
    for remote in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!page.contains(remote), "no remote resources: {remote}");
    }
    assert!(
        page.contains("we&#34;ird") || page.contains("we&quot;ird"),
        "escaped"
    );
    assert!(!page.contains("we\"ird"));
}

/// A symbolic link where the report (or one of its CSV tables) should be written is refused:
/// whoever planted it would choose which file the report overwrites.
#[cfg(unix)]
#[test]
fn a_report_is_never_written_through_a_symbolic_link() {
    let dir = TempDir::new("report-symlink");
    let (logs, _) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();
    let victim = dir.path("victim.txt");
    let victim_text = "someone else's file\n";
    std::fs::write(&victim, victim_text).unwrap();

    let html = dir.path("report.html");
    std::os::unix::fs::symlink(&victim, &html).unwrap();
    let output = run(
        &[
            "report",
            logs,
            "--until",
            AS_OF,
            "--out",
            html.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), victim_text);

    let csv_dir = dir.path("csv");
    std::fs::create_dir_all(&csv_dir).unwrap();
    std::os::unix::fs::symlink(&victim, csv_dir.join("unused_scopes.csv")).unwrap();
    let output = run(
        &[
            "report",
            logs,
            "--until",
            AS_OF,
            "--format",
            "csv",
            "--out",
            csv_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), victim_text);
}

/// `--out -` and `--out /dev/stdout` write the report to standard output, as leaving `--out`
/// out does (Markdown unless `--format` says otherwise), and as a JSON-lines writer's `path`
/// takes them; the system's other links to the process's own files (`/dev/stderr`,
/// `/dev/fd/N`) are followed, as the writers follow them, while a link of the same name
/// anywhere else is still refused.
#[cfg(unix)]
#[test]
fn out_dash_and_dev_stdout_are_standard_output() {
    let dir = TempDir::new("report-stdout");
    let (logs, _) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();
    // The line that says when the report was made differs from one run to the next.
    let body = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .filter(|line| !line.starts_with("Generated "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let plain = run(&["report", logs, "--until", AS_OF], &[]);
    assert!(plain.status.success());
    assert!(body(&plain.stdout).starts_with("# OAuth audit report"));
    for out in ["-", "/dev/stdout"] {
        let output = run(&["report", logs, "--until", AS_OF, "--out", out], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{out}: {stderr}");
        assert_eq!(body(&output.stdout), body(&plain.stdout), "{out}");
        assert!(!stderr.contains("written to"), "{out}: {stderr}");

        let output = run(
            &[
                "report", logs, "--until", AS_OF, "--out", out, "--format", "json",
            ],
            &[],
        );
        assert!(output.status.success(), "{out}");
        let json: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(json["schema"], "oauth-audit-report/1", "{out}");

        let output = run(
            &[
                "report", logs, "--until", AS_OF, "--out", out, "--format", "csv",
            ],
            &[],
        );
        assert_eq!(
            output.status.code(),
            Some(2),
            "{out}: CSV needs a directory"
        );
    }

    for out in ["/dev/stderr", "/dev/fd/2"] {
        let output = run(
            &[
                "report", logs, "--until", AS_OF, "--out", out, "--format", "json",
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{out}: {stderr}");
        assert!(output.stdout.is_empty(), "{out}");
        assert!(
            stderr.contains("\"oauth-audit-report/1\""),
            "{out}: {stderr}"
        );
    }

    std::fs::create_dir_all(dir.path("dev")).unwrap();
    let planted = dir.path("dev").join("stdout");
    std::os::unix::fs::symlink(dir.path("victim.txt"), &planted).unwrap();
    let output = run(
        &[
            "report",
            logs,
            "--until",
            AS_OF,
            "--out",
            planted.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(!dir.path("victim.txt").exists());
}

#[test]
fn a_file_named_twice_is_read_once() {
    let dir = TempDir::new("report-twice");
    let (logs, events) = trail_dir(&dir);
    let file = logs.join("audit.jsonl");
    let report = report_json(&[
        "report",
        logs.to_str().unwrap(),
        file.to_str().unwrap(),
        "--until",
        AS_OF,
        "--format",
        "json",
    ]);
    assert_eq!(report["input"]["events"], events.len());
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = TempDir::new("report-usage");
    let (logs, _) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();
    for args in [
        vec!["report", logs, "--unused-after", "0d"],
        vec!["report", logs, "--unused-after", "400"],
        vec!["report", logs, "--since", "last tuesday"],
        vec!["report", logs, "--format", "csv"],
        vec!["report", "/nonexistent/trail.jsonl"],
        vec!["report", logs, "--out", "report.pdf"],
    ] {
        let output = run(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty());
    }
}

/// The same trail in a PostgreSQL table written by the postgres sink: the report the
/// database counts gives every number the files give, whatever the filters.
#[cfg(feature = "postgres")]
#[test]
fn a_postgres_table_gives_the_numbers_the_files_give() {
    use oauth_audit::backend::PostgresBackend;
    use oauth_audit::delivery::{Backend, EncodedEvent};

    let server = postgres::PgServer::new();
    let url = server.url();
    // The trail, and busy traffic whose events fall into groups of many in every
    // grouping the database makes: a few clients, routes, addresses and tokens, used
    // again and again over a few days.
    let mut events = trail();
    for i in 0..600i64 {
        let client = ["billing", "shipping", "gateway"][(i % 3) as usize];
        let token = format!("sha256:b{}", i % 12);
        if i < 12 {
            events.push(issued(
                4,
                client,
                "client_credentials",
                &["orders:read"],
                &["orders:read"],
                &token,
            ));
        }
        let subject = ["alice", "bob"][(i % 2) as usize];
        let route = ["/api/orders", "/api/orders/{id}", "/api/stock"][(i % 4 % 3) as usize];
        let ip = format!("10.9.0.{}", i % 5);
        let mut e = call(
            i % 3,
            i % 7,
            subject,
            client,
            route,
            &["orders:read"],
            &["orders:read"],
            &["orders:read"],
            &ip,
            &token,
        );
        if i % 10 == 0 {
            e["kind"] = json!("AccessDenied");
            e["outcome"] = json!("failure");
            e["error"] = json!({"code": "invalid_token"});
        }
        events.push(e);
        if i % 50 == 0 {
            events.push(event(
                "TokenRevoked",
                "success",
                ago(1, 3),
                json!({"actor": {"client_id": client}, "token": {"fingerprint": token}}),
            ));
            events.push(event(
                "LoginFailed",
                "failure",
                ago(i % 2, 1),
                json!({"actor": {"subject": subject}, "source": {"ip": ip}}),
            ));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut backend = PostgresBackend::builder(url.clone())
            .table("report_events")
            .build()
            .unwrap();
        let batch: Vec<EncodedEvent> = events
            .iter()
            .map(|e| EncodedEvent::from_json(e.to_string().into()).unwrap())
            .collect();
        backend.send(&batch).await.unwrap();
    });
    let dir = TempDir::new("report-postgres");
    let file = dir.path("audit.jsonl");
    write_lines(&file, &events, &[]);
    let file = file.to_str().unwrap();
    let env = [("OAUTH_AUDIT_TEST_DATABASE", url.as_str())];
    let since = ago(6, 0);
    for filters in [
        vec![],
        vec!["--subject", "alice"],
        vec!["--client", "billing"],
        vec!["--service", "reports-api"],
        vec!["--since", since.as_str()],
        vec!["--unused-after", "30"],
    ] {
        let common = [&["--until", AS_OF, "--format", "json"][..], &filters].concat();
        let from_file = report_json(&[&["report", file][..], &common].concat());
        let output = run(
            &[
                &[
                    "report",
                    "--postgres-url-env",
                    "OAUTH_AUDIT_TEST_DATABASE",
                    "--table",
                    "public.report_events",
                ][..],
                &common,
            ]
            .concat(),
            &env,
        );
        assert!(
            output.status.success(),
            "{filters:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let from_table: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert!(from_table["input"]["matched"].as_u64().unwrap() > 0);
        for key in [
            "overview",
            "access",
            "subject_events",
            "scopes",
            "tokens",
            "failures",
            "filters",
            "as_of",
            "unused_after_days",
        ] {
            assert_eq!(from_file[key], from_table[key], "{key} with {filters:?}");
        }
        assert_eq!(
            from_file["input"]["matched"],
            from_table["input"]["matched"]
        );
        assert_eq!(from_table["input"]["events"], events.len());
        assert_eq!(
            from_table["input"]["files"],
            json!([r#"PostgreSQL table "public"."report_events""#])
        );
    }

    // Connection strings come from the environment only, and a missing table is named.
    let output = run(
        &[
            "report",
            "--postgres-url-env",
            "NOT_SET_ANYWHERE",
            "--table",
            "t",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("NOT_SET_ANYWHERE"));
    let output = run(
        &[
            "report",
            "--postgres-url-env",
            "OAUTH_AUDIT_TEST_DATABASE",
            "--table",
            "missing_events",
        ],
        &env,
    );
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("missing_events"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A chained table: the report says what the chain verifier says of its rows, as it does
/// for the same events in a file.
#[cfg(feature = "postgres")]
#[test]
fn a_chained_table_carries_its_integrity_summary() {
    use oauth_audit::backend::PostgresBackend;
    use oauth_audit::chain::{Chaining, SigningKey};
    use oauth_audit::delivery::{Backend, EncodedEvent};
    use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
    use oauth_audit::writer::{Auditor, JsonLines};

    let server = postgres::PgServer::new();
    let url = server.url();
    let dir = TempDir::new("report-chained");
    let file = dir.path("audit.jsonl");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let auditor = Auditor::builder()
            .service_name("orders-api")
            .chain(
                Chaining::new()
                    .signing_key(SigningKey::generate("orders-api").unwrap())
                    .checkpoint_every(10),
            )
            .writer(JsonLines::file(&file).await.unwrap())
            .build()
            .unwrap();
        for i in 0..25 {
            let mut event = AuditEvent::new(
                auditor.service().clone(),
                Timestamp::now(),
                EventKind::ResourceAccessed,
                Outcome::Success,
            );
            event.actor.subject = Some(format!("user-{}", i % 4));
            auditor.emit(event);
        }
        auditor.shutdown().await;
        let mut backend = PostgresBackend::builder(url.clone())
            .table("chained_events")
            .build()
            .unwrap();
        let batch: Vec<EncodedEvent> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|line| EncodedEvent::from_json(line.to_owned().into()).unwrap())
            .collect();
        backend.send(&batch).await.unwrap();
    });
    let from_file = report_json(&["report", file.to_str().unwrap(), "--format", "json"]);
    let output = run(
        &[
            "report",
            "--postgres-url-env",
            "OAUTH_AUDIT_TEST_DATABASE",
            "--table",
            "chained_events",
            "--format",
            "json",
        ],
        &[("OAUTH_AUDIT_TEST_DATABASE", url.as_str())],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let from_table: Value = serde_json::from_slice(&output.stdout).unwrap();
    let integrity = &from_table["integrity"];
    assert_eq!(integrity["errors"], 0, "{integrity}");
    assert_eq!(integrity["streams"], 1, "{integrity}");
    assert!(
        integrity["checkpoints"].as_u64().unwrap() >= 2,
        "{integrity}"
    );
    assert_eq!(integrity, &from_file["integrity"]);
    assert_eq!(from_table["access"], from_file["access"]);
}

/// The Markdown report of one protected-route call made of `subject`, `client` and `route`.
fn markdown_of(subject: &str, client: &str, route: &str) -> String {
    use oauth_audit::report::{ReportOptions, Reporter};
    let line = event(
        "ResourceAccessed",
        "success",
        ago(1, 0),
        json!({
            "actor": {"subject": subject, "client_id": client},
            "http": {"method": "GET", "route": route, "status": 200},
            "source": {"ip": "203.0.113.7"},
        }),
    )
    .to_string();
    let mut reporter = Reporter::new(ReportOptions::default());
    reporter.add_line("audit.jsonl:1", line.as_bytes());
    reporter.finish().to_markdown()
}

/// GitHub-flavoured Markdown (where a report is pasted: a ticket, a wiki) makes a link of a
/// bare `https://...` or `www.` ("extended autolinks"), and emphasis of `_x_` and `~~x~~`:
/// a client id chosen by whoever registers a client must not become a link in an auditor's
/// ticket. Checked against cmark-gfm 0.29 (`cmarkgfm`): each raw form below renders as an
/// `<a href>` (or `<em>`/`<del>`), each escaped one as the text it is.
#[test]
fn markdown_values_cannot_become_autolinks_or_emphasis() {
    let markdown = markdown_of(
        "www.evil.example",
        "https://evil.example/approve",
        "/_orders_/~~all~~",
    );
    for raw in [
        "https://evil.example",
        "www.evil.example",
        "_orders_",
        "~~all~~",
    ] {
        assert!(
            !markdown.contains(raw),
            "{raw:?} is left for a renderer to make a link or emphasis of:\n{markdown}"
        );
    }
    for escaped in [
        "https\\://evil.example/approve",
        "www\\.evil.example",
        "/\\_orders\\_/\\~\\~all\\~\\~",
    ] {
        assert!(
            markdown.contains(escaped),
            "{escaped:?} not in:\n{markdown}"
        );
    }
    // A time keeps its colons as they are: only a `://` is a scheme.
    assert!(markdown.contains(&ago(1, 0)), "{markdown}");

    // Nothing reaches a terminal as an escape sequence, reorders what is shown or hides in a
    // name: control characters, every bidirectional override, isolate and mark, and
    // zero-width characters are written out.
    let markdown = markdown_of(
        "ali\u{200b}ce\u{1b}[31m",
        "app\u{202e}gpj.exe\u{2066}\u{feff}",
        "/orders\u{200f}\u{200e}\u{61c}\u{2060}",
    );
    for written in [
        r"\u{1b}",
        r"\u{202e}",
        r"\u{2066}",
        r"\u{200f}",
        r"\u{200e}",
        r"\u{61c}",
        r"\u{200b}",
        r"\u{feff}",
        r"\u{2060}",
    ] {
        assert!(markdown.contains(written), "{written} not in:\n{markdown}");
    }
    for raw in [
        '\u{1b}', '\u{202e}', '\u{2066}', '\u{200f}', '\u{200e}', '\u{61c}', '\u{200b}',
        '\u{feff}', '\u{2060}',
    ] {
        assert!(!markdown.contains(raw), "{raw:?} left raw");
    }
}

/// `2026-02-30` is no date: a line with that `time` is not an event, whether the time is
/// written in the writers' canonical form or not (the doc: a line without an RFC 3339 `time`
/// is skipped and counted). The canonical form was counted, on a day that does not exist.
#[test]
fn a_time_on_a_day_the_month_lacks_is_skipped() {
    use oauth_audit::report::{ReportOptions, Reporter};
    let mut reporter = Reporter::new(ReportOptions::default());
    for (n, time) in [
        "2026-02-30T12:00:00.000000Z",
        "2026-02-30T12:00:00Z",
        "2026-04-31T00:00:00.000000Z",
        "2027-02-29T00:00:00.000000Z",
    ]
    .into_iter()
    .enumerate()
    {
        let line = format!(r#"{{"kind":"LoginFailed","outcome":"failure","time":"{time}"}}"#);
        reporter.add_line(&format!("audit.jsonl:{}", n + 1), line.as_bytes());
    }
    reporter.add_line(
        "audit.jsonl:5",
        br#"{"kind":"LoginFailed","outcome":"failure","time":"2028-02-29T00:00:00.000000Z"}"#,
    );
    let report = reporter.finish();
    assert_eq!(report.skipped(), 4, "{:?}", report.skipped_examples());
    assert_eq!(report.matched(), 1);
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(
        json["overview"]["per_day"][0]["day"], "2028-02-29",
        "{json}"
    );
    assert_eq!(
        json["overview"]["per_day"].as_array().unwrap().len(),
        1,
        "{json}"
    );
}

/// A scope named twice in one request (`scope=admin admin admin`, which the token endpoint
/// records as it came) is one request for it: "Requested but refused" said `admin` was
/// refused 3 times after a single request, and the ladder's counts grew the same way.
#[test]
fn a_scope_named_twice_in_one_event_counts_once() {
    use oauth_audit::report::{ReportOptions, Reporter};
    let lines = [
        event(
            "TokenRequestFailed",
            "failure",
            ago(2, 0),
            json!({
                "actor": {"client_id": "spray"},
                "grant_type": "client_credentials",
                "scopes": {"requested": ["admin", "admin", "admin"]},
                "error": {"code": "invalid_scope"},
            }),
        ),
        issued(
            1,
            "spray",
            "client_credentials",
            &["read", "read", "write"],
            &["read", "read"],
            "sha256:aa",
        ),
        call(
            1,
            0,
            "alice",
            "spray",
            "/orders",
            &["read", "read"],
            &["read", "read"],
            &["read", "read"],
            "203.0.113.7",
            "sha256:aa",
        ),
    ];
    let mut reporter = Reporter::new(ReportOptions::default());
    for (n, line) in lines.iter().enumerate() {
        reporter.add_line(
            &format!("audit.jsonl:{}", n + 1),
            line.to_string().as_bytes(),
        );
    }
    let report: Value = serde_json::from_str(&reporter.finish().to_json()).unwrap();
    let spray = client(&report, "spray");
    let count = |list: &str, scope: &str| {
        spray[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["scope"] == scope)
            .map(|row| row["count"].clone())
    };
    assert_eq!(count("refused", "admin"), Some(json!(1)), "{spray}");
    assert_eq!(count("refused", "write"), Some(json!(1)), "{spray}");
    assert_eq!(count("requested", "admin"), Some(json!(1)), "{spray}");
    assert_eq!(count("requested", "read"), Some(json!(1)), "{spray}");
    assert_eq!(
        count("granted", "read"),
        Some(json!(2)),
        "issued and presented: {spray}"
    );
    assert_eq!(count("required", "read"), Some(json!(1)), "{spray}");
    assert_eq!(count("used", "read"), Some(json!(1)), "{spray}");
}

/// A report names people (subjects, client addresses; with `--subject`, every event of one
/// person): like the trail it is made from, each file it creates is readable by its owner
/// only, whatever the umask lets through.
#[cfg(unix)]
#[test]
fn report_files_are_created_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = TempDir::new("report-mode");
    let (logs, _) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for name in ["report.html", "report.json", "report.md"] {
        let out = dir.path(name);
        let output = run(
            &[
                "report",
                logs,
                "--until",
                AS_OF,
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(mode(&out), 0o600, "{name}");
    }
    let csv_dir = dir.path("csv");
    let output = run(
        &[
            "report",
            logs,
            "--until",
            AS_OF,
            "--format",
            "csv",
            "--out",
            csv_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert!(output.status.success());
    let mut tables = 0;
    for entry in std::fs::read_dir(&csv_dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        tables += 1;
    }
    assert!(tables > 3, "{tables} CSV files");
}

/// A failed login whose username was not recorded (sent twice, so that which one the server
/// read is unknown, or in a body too large to read) is a guess all the same. Sending every
/// guess so left it out of "Failed logins, by username" and of the usernames tried from its
/// address: an address with five failures was said to have tried no username.
#[test]
fn a_failed_login_without_a_recorded_username_is_counted_by_username() {
    use oauth_audit::report::{ReportOptions, Reporter};
    let mut reporter = Reporter::new(ReportOptions::default());
    for i in 0..5 {
        let actor = if i == 0 {
            json!({"subject": "alice"})
        } else {
            json!({"kind": "user"})
        };
        let line = event(
            "LoginFailed",
            "failure",
            ago(1, i),
            json!({"actor": actor, "source": {"ip": "203.0.113.9"}}),
        );
        reporter.add_line(
            &format!("audit.jsonl:{}", i + 1),
            line.to_string().as_bytes(),
        );
    }
    let report = reporter.finish();
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    let failures = &json["failures"];
    assert_eq!(
        rows(failures, "failed_logins_by_subject"),
        &vec![
            json!({"subject": "", "count": 4}),
            json!({"subject": "alice", "count": 1})
        ],
        "{failures}"
    );
    assert_eq!(
        rows(failures, "failed_logins_by_ip")[0],
        json!({"ip": "203.0.113.9", "count": 5, "subjects": 2, "subjects_at_least": false})
    );
    assert!(
        report.to_markdown().contains("| - | 4 |"),
        "{}",
        report.to_markdown()
    );
}

/// The rotating writer compresses a rotated file into `x.jsonl.gz` and only then removes
/// `x.jsonl`: a crash between the two (or a report listing the directory at that moment)
/// leaves both, the same events twice. Every number counted them twice.
#[test]
fn a_rotated_file_left_beside_its_archive_is_read_once() {
    let dir = TempDir::new("report-rotated-twice");
    let logs = dir.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let events = trail();
    let (old, new) = events.split_at(events.len() / 2);
    let rotated = logs.join("audit-20260501T000000.000000Z.jsonl");
    write_lines(&rotated, old, &[]);
    let status = Command::new("gzip")
        .arg("-k")
        .arg(&rotated)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(rotated.exists() && logs.join("audit-20260501T000000.000000Z.jsonl.gz").exists());
    write_lines(&logs.join("audit.jsonl"), new, &[]);
    let report = report_json(&[
        "report",
        logs.to_str().unwrap(),
        "--until",
        AS_OF,
        "--format",
        "json",
    ]);
    assert_eq!(
        report["input"]["events"],
        events.len(),
        "{}",
        report["input"]
    );
    assert_eq!(report["input"]["files"].as_array().unwrap().len(), 2);
}

/// A report over the writer's live directory reads for minutes; meanwhile the rotating
/// writer compresses a rotated file it had listed (`x.jsonl` becomes `x.jsonl.gz`, then
/// `x.jsonl` is removed). The whole report failed as if the file had never been readable;
/// its events are in the archive.
#[test]
fn a_rotated_file_compressed_while_the_report_reads_is_read_from_its_archive() {
    use oauth_audit::report::{report_files, ReportOptions};
    let dir = TempDir::new("report-compressed-meanwhile");
    let logs = dir.path("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let events = trail();
    let (old, new) = events.split_at(events.len() / 2);
    let first = logs.join("audit-20260501T000000.000000Z.jsonl");
    let second = logs.join("audit-20260502T000000.000000Z.jsonl");
    write_lines(&first, &old[..old.len() / 2], &[]);
    write_lines(&second, &old[old.len() / 2..], &[]);
    write_lines(&logs.join("audit.jsonl"), new, &[]);
    let mut compressed = false;
    let options =
        ReportOptions::default().until(oauth_audit::event::Timestamp::parse(AS_OF).unwrap());
    let report = report_files(std::slice::from_ref(&logs), options, &mut |file| {
        if !compressed && file == first {
            let status = Command::new("gzip").arg(&second).status().unwrap();
            assert!(status.success() && !second.exists());
            compressed = true;
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(compressed);
    assert_eq!(report.matched(), events.len() as u64);
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    assert!(
        json["input"]["files"][1]
            .as_str()
            .unwrap()
            .ends_with("audit-20260502T000000.000000Z.jsonl.gz"),
        "{}",
        json["input"]
    );
}

/// The writer records at most 100 scopes an event, but a report also reads trails it did
/// not write whole (an edited or forged file): one line of 1 MiB can name 100,000 scopes.
/// Counting each once compared every scope with every one before it, and every requested
/// scope with every granted one: a single such line took minutes. Long lists go through a
/// set now; this holds its counts to what the short lists' search gives (the time is not
/// asserted: on these shared cores a timed test would fail for other reasons than this).
#[test]
fn a_line_naming_fifty_thousand_scopes_is_counted_once_each() {
    use oauth_audit::report::{ReportOptions, Reporter};
    let scopes: Vec<String> = (0..50_000).map(|i| format!("{i:x}")).collect();
    let mut doubled = scopes.clone();
    doubled.push("0".into());
    let lines = [
        event(
            "AccessTokenIssued",
            "success",
            ago(1, 0),
            json!({
                "actor": {"client_id": "forged"},
                "grant_type": "client_credentials",
                "scopes": {"requested": doubled, "granted": &scopes[1..]},
            }),
        ),
        event(
            "ResourceAccessed",
            "success",
            ago(1, 0),
            json!({
                "actor": {"client_id": "forged"},
                "http": {"method": "GET", "route": "/orders"},
                "scopes": {"required": scopes},
            }),
        ),
    ];
    let mut reporter = Reporter::new(ReportOptions::default());
    for (n, line) in lines.iter().enumerate() {
        let line = line.to_string();
        assert!(line.len() < 1 << 20);
        reporter.add_line(&format!("audit.jsonl:{}", n + 1), line.as_bytes());
    }
    let report = reporter.finish();
    assert_eq!(report.matched(), 2);
    let json: Value = serde_json::from_str(&report.to_json()).unwrap();
    let forged = client(&json, "forged");
    assert_eq!(forged["requested"].as_array().unwrap().len(), 50_000);
    assert_eq!(
        forged["requested"][0],
        json!({"scope": "0", "count": 1, "last": ago(1, 0)})
    );
    assert_eq!(
        forged["refused"],
        json!([{"scope": "0", "count": 1, "last": ago(1, 0)}])
    );
    assert_eq!(
        json["scopes"]["missing"][0]["missing"]
            .as_array()
            .unwrap()
            .len(),
        50_000
    );
}

/// The days of a table's events are the days of the same events in a file whatever the
/// database's `DateStyle` (a role or database set to `German` or `SQL, DMY`, which
/// PostgreSQL allows): the days were read as the server wrote a date as text, so the
/// table's report had `24.05.2026` where the file's had `2026-05-24`, sorted by day of month.
#[cfg(feature = "postgres")]
#[test]
fn a_tables_days_do_not_depend_on_the_databases_date_style() {
    use oauth_audit::backend::PostgresBackend;
    use oauth_audit::delivery::{Backend, EncodedEvent};

    let server = postgres::PgServer::new();
    let events = [
        issued(
            8,
            "billing",
            "client_credentials",
            &["a"],
            &["a"],
            "sha256:d1",
        ),
        issued(
            1,
            "billing",
            "client_credentials",
            &["a"],
            &["a"],
            "sha256:d2",
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut backend = PostgresBackend::builder(server.url())
            .table("dated_events")
            .build()
            .unwrap();
        let batch: Vec<EncodedEvent> = events
            .iter()
            .map(|e| EncodedEvent::from_json(e.to_string().into()).unwrap())
            .collect();
        backend.send(&batch).await.unwrap();
    });
    let dir = TempDir::new("report-datestyle");
    let file = dir.path("audit.jsonl");
    write_lines(&file, &events, &[]);
    let from_file = report_json(&[
        "report",
        file.to_str().unwrap(),
        "--until",
        AS_OF,
        "--format",
        "json",
    ]);
    let url = format!("{} options='-c DateStyle=German'", server.url());
    let output = run(
        &[
            "report",
            "--postgres-url-env",
            "OAUTH_AUDIT_TEST_DATABASE",
            "--table",
            "dated_events",
            "--until",
            AS_OF,
            "--format",
            "json",
        ],
        &[("OAUTH_AUDIT_TEST_DATABASE", url.as_str())],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let from_table: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        from_table["overview"]["per_day"],
        from_file["overview"]["per_day"]
    );
    assert_eq!(from_file["overview"]["per_day"][0]["day"], &ago(8, 0)[..10]);
}

/// Two tables are in some reports only: every event of one subject (`--subject`) and the
/// chain's integrity (chained events). A CSV report written into a directory that held an
/// earlier one left those files of the earlier report beside the new tables: a report on
/// everyone came with one person's events, or a verdict on a chain the trail did not have.
#[test]
fn a_csv_report_leaves_no_table_of_an_earlier_report_in_its_directory() {
    let dir = TempDir::new("report-csv-stale");
    let (logs, _) = trail_dir(&dir);
    let logs = logs.to_str().unwrap();
    let csv_dir = dir.path("csv");
    let csv = csv_dir.to_str().unwrap();
    let common = [
        "report", logs, "--until", AS_OF, "--format", "csv", "--out", csv,
    ];
    let output = run(&[&common[..], &["--subject", "alice"]].concat(), &[]);
    assert!(output.status.success());
    let events = csv_dir.join("subject_events.csv");
    assert!(std::fs::read_to_string(&events).unwrap().lines().count() > 1);
    std::fs::write(csv_dir.join("integrity.csv"), "item,value\nverdict,ok\n").unwrap();
    std::fs::write(csv_dir.join("notes.csv"), "the auditor's own\n").unwrap();

    let output = run(&common, &[]);
    assert!(output.status.success());
    assert!(
        !events.exists(),
        "alice's events left in a report on everyone"
    );
    assert!(!csv_dir.join("integrity.csv").exists());
    assert!(
        csv_dir.join("notes.csv").exists(),
        "another file is not touched"
    );
    assert!(csv_dir.join("access_review.csv").exists());
}
