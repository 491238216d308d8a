//! `oauth-audit tail`: the last events of a file or a directory of rotated files, filtered,
//! shown readably or passed through byte for byte; malformed lines reported and skipped;
//! hostile field values escaped; new lines followed through appends, replacement,
//! truncation and a real rotating writer; and a real nats-server's JetStream stream.

#[path = "../../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
use support::ports;
mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use oauth_audit::writer::{Auditor, FlushPolicy, RotatingFile, Rotation};
use serde_json::{json, Value};
use support::{run, TempDir, WAIT};

/// One event line as a writer would write it, numbered by `i` (in `request_id`).
fn event(i: u32, kind: &str, outcome: &str, subject: &str, client: &str) -> String {
    json!({
        "schema": "oauth-audit/1",
        "id": format!("01a233ea-6efe-73af-a1d1-{i:012}"),
        "time": format!("2026-12-01T23:{:02}:{:02}.000000Z", i / 60 % 60, i % 60),
        "kind": kind,
        "outcome": outcome,
        "severity": if outcome == "failure" { "warning" } else { "info" },
        "request_id": format!("req-{i}"),
        "actor": {"subject": subject, "client_id": client},
        "http": {"method": "POST", "path": "/token", "route": "/token",
                 "status": if outcome == "failure" { 400 } else { 200 }},
        "source": {"ip": "203.0.113.9"},
    })
    .to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// A running `oauth-audit tail`, its output lines handed over as they come; killed on drop.
struct Tail {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

impl Tail {
    fn start(args: &[&str]) -> Tail {
        let mut child = Command::new(support::binary())
            .arg("tail")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start oauth-audit tail");
        let pipe = |reader: Box<dyn std::io::Read + Send>, name: &'static str| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    eprintln!("[tail {name}] {line}");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        };
        let lines = pipe(Box::new(child.stdout.take().unwrap()), "out");
        let stderr = pipe(Box::new(child.stderr.take().unwrap()), "err");
        Tail {
            child,
            lines,
            stderr,
        }
    }

    /// The next `n` lines of standard output.
    fn next(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        (0..n)
            .map(|i| {
                self.lines
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .unwrap_or_else(|_| panic!("tail printed {i} of the {n} lines expected"))
            })
            .collect()
    }

    /// Waits for a line on standard error containing `what`.
    fn wait_stderr(&self, what: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) if line.contains(what) => return line,
                Ok(_) => {}
                Err(_) => panic!("tail never said {what:?} on standard error"),
            }
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_last_events_filtered_and_passed_through_byte_for_byte() {
    let dir = TempDir::new("tail-filter");
    let mut lines = Vec::new();
    for i in 0..40 {
        let (kind, outcome, subject, client) = match i % 4 {
            0 => ("LoginFailed", "failure", "bob", "web"),
            1 => ("AccessTokenIssued", "success", "alice", "web"),
            2 => ("LoginFailed", "failure", "bob", "cli"),
            _ => ("TokenRequestFailed", "failure", "alice", "web"),
        };
        lines.push(event(i, kind, outcome, subject, client));
    }
    // Written differently from the library (spaces, key order): passed through as it is.
    lines[36] = "{ \"kind\" : \"LoginFailed\", \"outcome\": \"failure\", \"schema\": \"oauth-audit/1\",  \
         \"actor\": {\"client_id\": \"web\", \"subject\": \"bob\"}, \"time\": \"2026-12-01T23:00:36Z\" }"
        .to_owned();
    let path = dir.write("audit.jsonl", &(lines.join("\n") + "\n"));
    let path = path.to_str().unwrap();

    let out = run(
        &[
            "tail",
            path,
            "--no-follow",
            "--json",
            "--kind",
            "LoginFailed",
            "--client",
            "web",
            "-n",
            "3",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected = [&lines[28], &lines[32], &lines[36]]
        .map(|l| format!("{l}\n"))
        .concat();
    assert_eq!(
        text(&out.stdout),
        expected,
        "the last 3 of the matching lines, unchanged"
    );

    // Readable lines: the default is the last 10; the filters combine.
    let out = run(&["tail", path, "--no-follow"], &[]);
    let shown: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(shown.len(), 10, "{shown:?}");
    assert!(shown[9].starts_with("2026-12-01T23:00:39.000000Z TokenRequestFailed "));
    let out = run(
        &[
            "tail",
            path,
            "--no-follow",
            "--outcome",
            "failure",
            "--subject",
            "alice",
            "-n",
            "100",
        ],
        &[],
    );
    let shown: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(
        shown.len(),
        10,
        "every TokenRequestFailed of alice: {shown:?}"
    );
    assert_eq!(
        shown[0],
        "2026-12-01T23:00:03.000000Z TokenRequestFailed       failure subject=alice \
         client=web POST /token 400 ip=203.0.113.9"
    );
    assert!(
        shown.iter().all(|l| l.contains(" TokenRequestFailed ")),
        "{shown:?}"
    );

    // Usage errors exit 2.
    let out = run(&["tail", path, "--kind", "LoginFailure"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not an event kind"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["tail", path, "--stream", "X"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--stream applies only with --nats"));
    let out = run(&["tail"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn malformed_lines_are_reported_on_standard_error_and_skipped() {
    let dir = TempDir::new("tail-malformed");
    let good = |i| event(i, "AccessTokenIssued", "success", "alice", "web");
    let content = [
        good(1),
        "not json at all".to_owned(),
        "{\"kind\": \"AccessTokenIssued\", \"outcome\"".to_owned(),
        "[1, 2, 3]".to_owned(),
        String::new(),
        good(2),
    ]
    .join("\n")
        + "\n";
    let mut bytes = content.into_bytes();
    bytes.extend_from_slice(b"\xff\xfe\x00binary\x1b[2J\n");
    bytes.extend_from_slice(format!("{}\n", good(3)).as_bytes());
    let path = dir.path("audit.jsonl");
    std::fs::write(&path, bytes).unwrap();

    let out = run(
        &["tail", path.to_str().unwrap(), "--no-follow", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("{}\n{}\n{}\n", good(1), good(2), good(3))
    );
    let stderr = text(&out.stderr);
    let reported: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        reported,
        [
            "oauth-audit: audit.jsonl:2: not a JSON event, skipped",
            "oauth-audit: audit.jsonl:3: not a JSON event, skipped",
            "oauth-audit: audit.jsonl:4: not a JSON event, skipped",
            "oauth-audit: audit.jsonl:7: not a JSON event, skipped",
        ],
        "the blank line is no event and no error"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "the bad line itself is not echoed"
    );
}

/// Removes the SGR sequences (`ESC [ digits ; m`) the colours are made of.
fn without_colours(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("\u{1b}[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[end..].starts_with('m') {
            rest = &after[end + 1..];
        } else {
            out.push_str(&rest[at..at + 2]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn hostile_values_are_escaped_and_colour_follows_the_flags_and_no_color() {
    let dir = TempDir::new("tail-escape");
    let hostile = json!({
        "schema": "oauth-audit/1", "id": "01a233ea-6efe-73af-a1d1-000000000001",
        "time": "2026-12-01T23:22:11.000000Z", "kind": "LoginFailed", "outcome": "failure",
        "severity": "warning",
        "actor": {"subject": "alice\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{202e}nimda", "client_id": "web client=admin"},
        "http": {"method": "POST\u{1b}[1A", "path": "/login\u{2028}x", "status": 401},
        "source": {"ip": "203.0.113.9"},
        "error": {"code": "invalid_grant\u{9b}31m\u{200b}"},
    })
    .to_string();
    let alert = json!({
        "schema": "oauth-audit/1", "id": "01a233ea-6efe-73af-a1d1-000000000002",
        "time": "2026-12-01T23:22:12.000000Z", "kind": "SecurityAlert", "outcome": "unknown",
        "severity": "critical",
        "alert": {"rule": "brute_force", "key": "actor.subject=bob source.ip=203.0.113.9", "count": 10},
    })
    .to_string();
    let path = dir.write("audit.jsonl", &format!("{hostile}\n{alert}\n"));
    let path = path.to_str().unwrap();
    let forbidden = [
        '\u{1b}', '\u{7}', '\r', '\u{202e}', '\u{2028}', '\u{9b}', '\u{200b}',
    ];

    let out = run(&["tail", path, "--no-follow"], &[]);
    let plain = text(&out.stdout);
    for c in forbidden {
        assert!(!plain.contains(c), "{c:?} reached the terminal: {plain:?}");
    }
    let lines: Vec<&str> = plain.lines().collect();
    assert_eq!(lines.len(), 2, "{plain:?}");
    assert_eq!(
        lines[0],
        r#"2026-12-01T23:22:11.000000Z LoginFailed              failure subject="alice\u{1b}]0;pwned\u{7}\u{1b}[2J\r\u{202e}nimda" client="web client=admin" "POST\u{1b}[1A" "/login\u{2028}x" 401 ip=203.0.113.9 error="invalid_grant\u{9b}31m\u{200b}""#
    );
    assert_eq!(
        lines[1],
        r#"2026-12-01T23:22:12.000000Z SecurityAlert            unknown rule=brute_force key="actor.subject=bob source.ip=203.0.113.9" count=10"#
    );

    // `--json`: the same values for a JSON reader, written as JSON escapes where serde_json
    // (like every writer) leaves C1 controls, separators and bidi overrides raw.
    assert!(hostile.contains('\u{9b}') && hostile.contains('\u{202e}'));
    let out = run(&["tail", path, "--no-follow", "--json"], &[]);
    let json = text(&out.stdout);
    for c in forbidden {
        assert!(!json.contains(c), "{c:?} reached the terminal: {json:?}");
    }
    let lines: Vec<&str> = json.lines().collect();
    assert_eq!(lines.len(), 2, "{json:?}");
    let read: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(read, serde_json::from_str::<Value>(&hostile).unwrap());
    assert!(
        lines[0].contains(r#""code":"invalid_grant\u009b31m\u200b""#),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1], alert,
        "a line with nothing to escape is passed byte for byte"
    );

    // Colour: forced, then auto with CLICOLOR_FORCE, then NO_COLOR over it.
    let out = run(&["tail", path, "--no-follow", "--color", "always"], &[]);
    let coloured = text(&out.stdout);
    assert!(
        coloured.contains("\u{1b}[31m"),
        "failure in red: {coloured:?}"
    );
    let rest = without_colours(&coloured);
    assert_eq!(rest, plain, "only the colours were added");
    for c in forbidden {
        assert!(!rest.contains(c), "{c:?} besides the colours: {coloured:?}");
    }
    let forced = run(&["tail", path, "--no-follow"], &[("CLICOLOR_FORCE", "1")]);
    assert_eq!(text(&forced.stdout), coloured);
    let no_color = run(
        &["tail", path, "--no-follow"],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert_eq!(text(&no_color.stdout), plain);
    let never = run(
        &["tail", path, "--no-follow", "--color", "never"],
        &[("CLICOLOR_FORCE", "1")],
    );
    assert_eq!(text(&never.stdout), plain);
}

#[test]
fn a_followed_file_is_read_through_appends_replacement_and_truncation() {
    let dir = TempDir::new("tail-follow");
    let path = dir.path("audit.jsonl");
    let line = |i| event(i, "AccessTokenIssued", "success", "alice", "web");
    let lines: String = (0..5).map(|i| line(i) + "\n").collect();
    std::fs::write(&path, lines).unwrap();
    let tail = Tail::start(&[path.to_str().unwrap(), "-n", "2", "--json"]);
    assert_eq!(tail.next(2), [line(3), line(4)]);

    // Appended, one of them in two writes.
    append(&path, &format!("{}\n", line(5)));
    let half = line(6).len() / 2;
    append(&path, &line(6)[..half]);
    append(&path, &format!("{}\n", &line(6)[half..]));
    assert_eq!(tail.next(2), [line(5), line(6)]);

    // Replaced (logrotate's rename and create): what the old file still got comes first.
    let rotated = dir.path("audit.jsonl.1");
    std::fs::rename(&path, &rotated).unwrap();
    append(&rotated, &format!("{}\n", line(7)));
    std::fs::write(&path, format!("{}\n{}\n", line(8), line(9))).unwrap();
    assert_eq!(tail.next(3), [line(7), line(8), line(9)]);
    tail.wait_stderr("was replaced; following the new file");

    // Truncated (logrotate's copytruncate), then written again, shorter than before.
    std::fs::copy(&path, dir.path("audit.jsonl.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &format!("{}\n", line(10)));
    assert_eq!(tail.next(1), [line(10)]);
    tail.wait_stderr("was truncated; reading it from the start");

    // A malformed line while following is reported, not fatal.
    append(&path, &format!("garbage\n{}\n", line(11)));
    assert_eq!(tail.next(1), [line(11)]);
    tail.wait_stderr("audit.jsonl:2: not a JSON event, skipped");
}

fn numbered(service: &std::sync::Arc<ServiceInfo>, i: u32) -> AuditEvent {
    let mut event = AuditEvent::new(
        service.clone(),
        Timestamp::now(),
        EventKind::AccessTokenIssued,
        Outcome::Success,
    );
    event.actor.subject = Some(format!("user-{i}"));
    event
}

/// Waits until `dir` holds at least `n` compressed rotated files.
fn wait_rotated(dir: &Path, n: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let gz = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".jsonl.gz")
            })
            .count();
        if gz >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the writer never rotated {n} times"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotating_writers_directory_is_followed_into_each_new_file() {
    let dir = TempDir::new("tail-rotating");
    let logs = dir.path("logs");
    // About four events per file, compressed at each rotation.
    let writer = RotatingFile::builder(&logs)
        .rotation(Rotation::Never)
        .max_bytes(1200)
        .flush_policy(FlushPolicy::EveryBatch)
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .service_name("api")
        .writer(writer)
        .build()
        .unwrap();
    let service = auditor.service().clone();
    let mut ids = Vec::new();
    // One event per batch, each written before the next: a rotation can come between any
    // two (the writer rotates before a batch that would pass max_bytes).
    let emit = |ids: &mut Vec<String>, from: u32, to: u32| {
        let written = |ids: &Vec<String>| {
            let deadline = Instant::now() + WAIT;
            while auditor.stats().writers[0].written < ids.len() as u64 {
                assert!(
                    Instant::now() < deadline,
                    "the writer never wrote {}",
                    ids.len()
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        for i in from..to {
            let event = numbered(&service, i);
            ids.push(event.id.to_string());
            auditor.emit(event);
            written(ids);
        }
    };
    emit(&mut ids, 0, 14);
    wait_rotated(&logs, 2);

    let logs_arg = logs.to_str().unwrap().to_owned();
    let tail = tokio::task::spawn_blocking(move || {
        let tail = Tail::start(&[&logs_arg, "-n", "9", "--json"]);
        let page = tail.next(9);
        (tail, page)
    });
    let (tail, page) = tail.await.unwrap();
    let id_of = |line: &String| {
        serde_json::from_str::<Value>(line).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let shown: Vec<String> = page.iter().map(id_of).collect();
    assert_eq!(
        shown,
        ids[5..14],
        "the last 9, across rotated and active files"
    );

    // Many rotations while tail follows, some between two of its looks.
    for round in 0..6 {
        emit(&mut ids, 14 + round * 7, 14 + (round + 1) * 7);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    wait_rotated(&logs, 8);
    let followed = tokio::task::spawn_blocking(move || {
        let lines = tail.next(42);
        (tail, lines)
    });
    let (tail, lines) = followed.await.unwrap();
    let shown: Vec<String> = lines.iter().map(id_of).collect();
    assert_eq!(shown, ids[14..], "every event once, in order");
    assert!(
        tail.lines.recv_timeout(Duration::from_millis(700)).is_err(),
        "nothing shown twice"
    );
    let unique: HashSet<&String> = shown.iter().collect();
    assert_eq!(unique.len(), 42);
    auditor.shutdown().await;
    drop(tail);
}

#[tokio::test]
async fn tail_reads_a_jetstream_stream_backwards_then_follows_it() {
    let server = nats::NatsServer::start().await;
    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    js.create_stream(jetstream::stream::Config {
        name: "OAUTH_AUDIT".into(),
        subjects: vec!["oauth.audit.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let publish = |kind: &str, payload: String| {
        let js = js.clone();
        let subject = format!("oauth.audit.{kind}");
        async move {
            js.send_publish(subject, PublishMessage::build().payload(payload.into()))
                .await
                .unwrap()
                .await
                .unwrap();
        }
    };
    let failed = |i| event(i, "LoginFailed", "failure", "bob", "web");
    let issued = |i| event(i, "AccessTokenIssued", "success", "alice", "web");
    for i in 0..3 {
        publish("LoginFailed", failed(i)).await;
    }
    // More than the first window read backwards: the page has to look further.
    for i in 3..303 {
        publish("AccessTokenIssued", issued(i)).await;
    }
    publish("AccessTokenIssued", "not an event".to_owned()).await;
    publish("AccessTokenIssued", issued(303)).await;

    let url = server.url();
    let out = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            run(
                &[
                    "tail",
                    "--nats",
                    &url,
                    "--no-follow",
                    "--json",
                    "--kind",
                    "LoginFailed",
                    "-n",
                    "2",
                ],
                &[],
            )
        })
        .await
        .unwrap()
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{}\n{}\n", failed(1), failed(2)));

    // The last 3 events, with the malformed message among them reported in its place.
    let (tail, page) = tokio::task::spawn_blocking(move || {
        let tail = Tail::start(&["--nats", &url, "-n", "3", "--json"]);
        let page = tail.next(3);
        tail.wait_stderr(
            "stream OAUTH_AUDIT message 304 (oauth.audit.AccessTokenIssued): not a JSON event, skipped",
        );
        (tail, page)
    })
    .await
    .unwrap();
    assert_eq!(page, [issued(301), issued(302), issued(303)]);

    publish("LoginFailed", failed(304)).await;
    publish("AccessTokenIssued", issued(305)).await;
    let lines = tokio::task::spawn_blocking(move || tail.next(2))
        .await
        .unwrap();
    assert_eq!(lines, [failed(304), issued(305)]);
}

#[tokio::test]
async fn a_ca_file_makes_tls_required_and_a_plain_server_gets_no_token() {
    // A server (or someone answering in its place) that offers no TLS.
    let server = nats::NatsServer::start().await;
    let js = jetstream::new(async_nats::connect(server.url()).await.unwrap());
    js.create_stream(jetstream::stream::Config {
        name: "OAUTH_AUDIT".into(),
        subjects: vec!["oauth.audit.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = TempDir::new("tail-nats-ca");
    let ca = dir.0.join("ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();

    let url = server.url();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &[
                "tail",
                "--nats",
                &url,
                "--nats-ca",
                ca.to_str().unwrap(),
                "--no-follow",
            ],
            &[("OAUTH_AUDIT_NATS_TOKEN", "s3cret-token")],
        )
    })
    .await
    .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "connected without TLS: {}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("s3cret-token"));
}
