//! `oauth-audit detect` as a user runs it over stored events: alerts on standard output as
//! JSON lines, a summary on standard error.

mod support;

use std::path::Path;

use oauth_audit::event::{AuditEvent, EventKind, Outcome, Source, Timestamp};
use oauth_audit::writer::{Auditor, JsonLines};
use serde_json::Value;
use support::{run, TempDir};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `failures` failed logins for alice from one address, among routine traffic.
fn trail(path: &Path, failures: usize) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let auditor = Auditor::builder()
            .service_name("login")
            .writer(JsonLines::file(path).await.unwrap())
            .build()
            .unwrap();
        for i in 0..20 {
            let (kind, outcome) = if i % 2 == 0 && i / 2 < failures {
                (EventKind::LoginFailed, Outcome::Failure)
            } else {
                (EventKind::LoginSucceeded, Outcome::Success)
            };
            let mut event =
                AuditEvent::new(auditor.service().clone(), Timestamp::now(), kind, outcome);
            event.actor.subject = Some(if kind == EventKind::LoginFailed {
                "alice".into()
            } else {
                format!("user-{i}")
            });
            let mut source = Source::default();
            source.ip = Some([198, 51, 100, 23].into());
            event.source = Some(source);
            auditor.emit(event);
        }
        auditor.shutdown().await;
    });
}

#[test]
fn detect_prints_the_alerts_of_stored_events_and_a_summary() {
    let dir = TempDir::new("detect");
    let log = dir.path("audit.jsonl");
    trail(&log, 10);
    let output = run(&["detect", log.to_str().unwrap()], &[]);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let alerts: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    let alert = &alerts[0];
    assert_eq!(alert["kind"], "SecurityAlert");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["alert"]["rule"], "brute_force");
    assert_eq!(
        alert["alert"]["key"],
        "actor.subject=alice source.ip=198.51.100.23"
    );
    assert_eq!(alert["alert"]["count"], 10);
    // The evidence is the ids of the failed logins in the file.
    let failed: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["kind"] == "LoginFailed")
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let evidence: Vec<&str> = alert["alert"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(evidence, failed);
    assert!(
        stderr.contains("20 events in 1 file(s): 1 alert(s) (brute_force 1)"),
        "{stderr}"
    );

    // Nine failures: nothing to say, but the summary.
    let quiet = dir.path("quiet.jsonl");
    trail(&quiet, 9);
    let output = run(&["detect", quiet.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty());
    assert!(text(&output.stderr).contains(": 0 alert(s);"));

    // A path that cannot be read is a usage error.
    let output = run(&["detect", "/nonexistent/audit.jsonl"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("cannot read"));
}

#[test]
fn detect_takes_the_rules_of_a_configuration_file_and_refuses_mixed_modes() {
    let dir = TempDir::new("detect-config");
    let log = dir.path("audit.jsonl");
    trail(&log, 5);
    let config = dir.write("detect.toml", "[detect.rules.brute_force]\ncount = 5\n");
    let output = run(
        &[
            "detect",
            log.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 alert(s) (brute_force 1)"), "{stderr}");

    let bad = dir.write("bad.toml", "[detect]\ndisable = [\"brute-force\"]\n");
    let output = run(
        &[
            "detect",
            log.to_str().unwrap(),
            "--config",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("no rule \"brute-force\""));

    let output = run(
        &["detect", "--until-idle", "1s", log.to_str().unwrap()],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--until-idle applies only with --nats"));
    for args in [
        vec!["detect"],
        vec!["detect", "--stream", "AUDIT", log.to_str().unwrap()],
        vec![
            "detect",
            "--nats",
            "nats://127.0.0.1:4222",
            log.to_str().unwrap(),
        ],
    ] {
        let output = run(&args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(output.stdout.is_empty());
    }
}

/// A failed login by alice from one address, at `time`, with an id ending in `n`.
fn failed_login(n: u32, time: &str) -> String {
    format!(
        r#"{{"id":"00000000-0000-7000-8000-{n:012}","kind":"LoginFailed","outcome":"failure","time":"{time}","service":{{"name":"login"}},"actor":{{"subject":"alice"}},"source":{{"ip":"198.51.100.23"}}}}"#
    )
}

/// Two services' trails of the same day: alice failed 5 times on each within the same
/// minutes, and once more the next day on the first. Read one file after the other, the
/// second file's failures would come after the next day's and count for nothing; merged in
/// time order they are the brute force they were.
#[test]
fn detect_merges_several_trails_in_time_order() {
    let dir = TempDir::new("detect-merge");
    let mut first: Vec<String> = (0..5)
        .map(|i| failed_login(i * 2 + 1, &format!("2026-11-02T10:0{i}:00Z")))
        .collect();
    first.push(failed_login(99, "2026-11-03T10:00:00Z"));
    let second: Vec<String> = (0..5)
        .map(|i| failed_login(i * 2 + 2, &format!("2026-11-02T10:0{i}:30Z")))
        .collect();
    let first = dir.write("first.jsonl", &(first.join("\n") + "\n"));
    std::fs::create_dir(dir.path("second")).unwrap();
    let second = dir.write("second/audit.jsonl", &(second.join("\n") + "\n"));
    let second_dir = second.parent().unwrap();
    let output = run(
        &[
            "detect",
            first.to_str().unwrap(),
            second_dir.to_str().unwrap(),
        ],
        &[],
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    let alerts: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1, "{stdout}");
    assert_eq!(alerts[0]["alert"]["rule"], "brute_force");
    assert_eq!(alerts[0]["alert"]["count"], 10);
    // The evidence in time order, alternating between the two files.
    let evidence: Vec<u32> = alerts[0]["alert"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap()[24..].parse().unwrap())
        .collect();
    assert_eq!(evidence, (1..=10).collect::<Vec<u32>>());
    assert!(
        stderr.contains("11 events in 2 file(s): 1 alert(s) (brute_force 1)"),
        "{stderr}"
    );
}
