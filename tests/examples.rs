//! The crate-user examples run and do what their docs say: a plain hyper service, a custom
//! writer, enrichment and redaction hooks, auditing only some routes with per-method scopes,
//! and a graceful shutdown on SIGTERM that loses no event.
#![cfg(all(feature = "axum", unix))]

#[path = "support/example_binary.rs"]
mod example_binary;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use example_binary::example;

fn run(name: &str) -> String {
    let output = Command::new(example(name)).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{name}: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn plain_hyper_audits_a_request_with_its_peer() {
    let stdout = run("plain_hyper");
    let event: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(event["http"]["method"], "POST");
    assert_eq!(event["http"]["path"], "/orders");
    assert_eq!(event["http"]["status"], 200);
    assert_eq!(event["source"]["ip"], "127.0.0.1");
    assert_eq!(event["service"]["name"], "plain-hyper");
}

#[test]
fn a_custom_writer_gets_every_event_after_a_retry() {
    let stdout = run("custom_writer");
    let ledger: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ledger: "))
        .collect();
    assert_eq!(ledger.len(), 3, "{stdout}");
    assert!(ledger[1].ends_with(" LoginFailed failure bob"), "{stdout}");
    for kind in ["AccessTokenIssued 1", "LoginFailed 1", "LoginSucceeded 1"] {
        assert!(stdout.contains(&format!("counter: {kind}")), "{stdout}");
    }
}

#[test]
fn enrichment_labels_tenants_and_pseudonymises_subjects() {
    let stdout = run("enrichment");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 3);
    let tenants: Vec<&str> = events
        .iter()
        .map(|e| e["labels"]["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["acme", "globex", "acme"]);
    let subjects: Vec<&str> = events
        .iter()
        .map(|e| e["actor"]["subject"].as_str().unwrap())
        .collect();
    assert!(
        subjects
            .iter()
            .all(|s| s.starts_with("pseudo:") && s.len() == 39),
        "{subjects:?}"
    );
    assert_eq!(
        subjects[0], subjects[2],
        "the same user, the same pseudonym"
    );
    assert_ne!(subjects[0], subjects[1]);
    assert!(!stdout.contains("example.com") && !stdout.contains("example.org"));
}

#[test]
fn only_api_routes_are_audited_with_per_method_scopes() {
    let stdout = run("route_layer");
    assert!(stdout.contains("GET /orders -> 200 OK"), "{stdout}");
    assert!(stdout.contains("POST /orders -> 403 Forbidden"), "{stdout}");
    let audited: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("audited: "))
        .collect();
    assert_eq!(
        audited,
        [
            "audited: GET /orders 200 required [\"orders:read\"] (ResourceAccessed)",
            "audited: POST /orders 403 required [\"orders:write\"] (AccessDenied)",
        ],
        "{stdout}"
    );
}

#[test]
fn sigterm_stops_serving_and_flushes_every_event() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("events.jsonl");
    let mut child = Command::new(example("graceful_shutdown"))
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_owned();
    for _ in 0..3 {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .write_all(b"GET /orders HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the example did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("events flushed"), "{rest}");
    let events = std::fs::read_to_string(&out).unwrap();
    assert_eq!(events.lines().count(), 3, "{events}");
}
