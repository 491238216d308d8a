//! `oauth-audit detect --nats` against real `nats-server`s (`tests/support/nats.rs`): one
//! detector on the stream the fleet's NATS writers publish to sees what no service sees
//! alone, counts an event delivered twice once, resumes after a restart without losing its
//! windows or repeating an alert, and hands its alerts to the configured writers.

#[path = "../../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
use support::ports;
mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage};
use oauth_audit::backend::NatsBackend;
use oauth_audit::delivery::{Backoff, Delivery};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Source, Timestamp};
use oauth_audit::writer::Auditor;
use serde_json::Value;
use support::upstream::Upstream;
use support::{run, TempDir, WAIT};

const STREAM: &str = "OAUTH_AUDIT";
const DURABLE: &str = "oauth-audit-detect";
const ALERTS: &str = "oauth.audit.SecurityAlert";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn jetstream_at(urls: &[String]) -> jetstream::Context {
    let servers: Vec<async_nats::ServerAddr> = urls.iter().map(|u| u.parse().unwrap()).collect();
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(servers)
        .await
        .unwrap();
    jetstream::new(client)
}

/// The stream a NATS writer with the default settings creates.
async fn writer_stream(js: &jetstream::Context) {
    js.create_stream(jetstream::stream::Config {
        name: STREAM.into(),
        subjects: vec!["oauth.audit.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
}

fn failed_login(service: &Arc<ServiceInfo>, user: &str) -> AuditEvent {
    let mut event = AuditEvent::new(
        service.clone(),
        Timestamp::now(),
        EventKind::LoginFailed,
        Outcome::Failure,
    );
    event.actor.subject = Some(user.into());
    let mut source = Source::default();
    source.ip = Some([203, 0, 113, 77].into());
    event.source = Some(source);
    event
}

fn login_service() -> Arc<ServiceInfo> {
    Arc::new(ServiceInfo::new("login"))
}

/// Publishes `payload` as a NATS writer does (`oauth.audit.<kind>`), with this message id.
async fn publish(js: &jetstream::Context, kind: &str, payload: Vec<u8>, msg_id: Option<String>) {
    let mut message = PublishMessage::build().payload(payload.into());
    if let Some(id) = msg_id {
        message = message.message_id(id);
    }
    js.send_publish(format!("oauth.audit.{kind}"), message)
        .await
        .unwrap()
        .await
        .unwrap();
}

async fn publish_event(js: &jetstream::Context, event: &AuditEvent) {
    let json = serde_json::to_vec(event).unwrap();
    publish(js, event.kind.as_str(), json, Some(event.id.to_string())).await;
}

/// The `SecurityAlert` messages in the stream: their `Nats-Msg-Id` and event.
async fn stored_alerts(js: &jetstream::Context) -> Vec<(String, Value)> {
    let mut stream = js.get_stream(STREAM).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut alerts = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(sequence).await.unwrap();
        if message.subject.as_str() != ALERTS {
            continue;
        }
        let msg_id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        alerts.push((msg_id, serde_json::from_slice(&message.payload).unwrap()));
    }
    alerts
}

/// Where the durable consumer's acknowledgements reached (0 before it exists).
async fn ack_floor(js: &jetstream::Context) -> u64 {
    let stream = js.get_stream(STREAM).await.unwrap();
    match stream.get_consumer::<pull::Config>(DURABLE).await {
        Ok(mut consumer) => consumer.info().await.unwrap().ack_floor.stream_sequence,
        Err(_) => 0,
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `oauth-audit detect ARGS` to completion (with `--until-idle`), off the test's runtime.
async fn detect(args: &[&str]) -> (Option<i32>, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let output = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, &[])
    })
    .await
    .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    eprintln!("[detect] {stderr}");
    (output.status.code(), stdout, stderr)
}

/// A running `oauth-audit detect --nats`, stopped with SIGTERM.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(support::binary())
            .arg("detect")
            .args(args)
            .env("OAUTH_AUDIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start oauth-audit detect");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let collected = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[detect] {line}");
                let mut all = collected.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Running {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// SIGTERM, then the exit status and everything written on standard error.
    async fn terminate(mut self) -> (ExitStatus, String) {
        tokio::task::spawn_blocking(move || {
            let status = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .unwrap();
            assert!(status.success());
            let deadline = Instant::now() + WAIT;
            let status = loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = self.child.kill();
                    panic!("detect did not exit after SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            if let Some(reader) = self.reader.take() {
                reader.join().unwrap();
            }
            let stderr = self.stderr.lock().unwrap().clone();
            (status, stderr)
        })
        .await
        .unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn one_detector_on_a_cluster_sees_a_brute_force_split_over_two_services() {
    let cluster = nats::NatsCluster::start().await;
    let urls = cluster.urls();
    // Two services, each with its own NATS writer on the 3-replica stream: five failed
    // logins each for bob from one address, fewer than brute_force's 10.
    let service = |name: &str| {
        let backend = NatsBackend::builder(&urls)
            .replicas(3)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        // Quick retries: the first sends can meet the stream's creation on a new cluster.
        let delivery = Delivery::builder(backend)
            .backoff(Backoff::exponential(
                Duration::from_millis(50),
                Duration::from_millis(500),
            ))
            .build()
            .unwrap();
        let stats = delivery.stats();
        let auditor = Auditor::builder()
            .service_name(name)
            .writer(delivery)
            .build()
            .unwrap();
        (auditor, stats)
    };
    let services = [service("orders-login"), service("billing-login")];
    let mut sent = HashSet::new();
    for i in 0..10 {
        let auditor = &services[i % 2].0;
        let event = failed_login(auditor.service(), "bob");
        sent.insert(event.id.to_string());
        auditor.emit(event);
        // Routine traffic around it.
        let mut ok = AuditEvent::new(
            auditor.service().clone(),
            Timestamp::now(),
            EventKind::LoginSucceeded,
            Outcome::Success,
        );
        ok.actor.subject = Some(format!("user-{i}"));
        auditor.emit(ok);
    }
    for (auditor, stats) in &services {
        wait_until("each service's events stored", || async {
            stats.delivered() >= 10
        })
        .await;
        auditor.shutdown().await;
    }

    let servers = urls.join(",");
    let (code, stdout, stderr) =
        detect(&["detect", "--nats", &servers, "--until-idle", "3s"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("20 events from stream OAUTH_AUDIT (consumer oauth-audit-detect): 1 alert(s) (brute_force 1); 0 duplicate(s) skipped; 0 message(s) not JSON"),
        "{stderr}"
    );
    // Without writers in a configuration, the alerts are JSON lines on standard output.
    let printed: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed.len(), 1, "{stdout}");

    let js = jetstream_at(&urls).await;
    let info = js
        .get_stream(STREAM)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.config.num_replicas, 3);
    let alerts = stored_alerts(&js).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let (msg_id, alert) = &alerts[0];
    assert_eq!(alert["kind"], "SecurityAlert");
    assert_eq!(alert["alert"]["rule"], "brute_force");
    assert_eq!(
        alert["alert"]["key"],
        "actor.subject=bob source.ip=203.0.113.77"
    );
    assert_eq!(alert["alert"]["count"], 10);
    assert_eq!(alert["service"]["name"], "oauth-audit-detect");
    assert_eq!(
        msg_id,
        alert["id"].as_str().unwrap(),
        "Nats-Msg-Id is the alert id"
    );
    assert_eq!(&printed[0], alert);
    let evidence: HashSet<String> = alert["alert"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(evidence, sent, "the failures of both services");

    // Run again: its own alert comes back from the stream and is skipped, nothing repeats.
    let (code, stdout, stderr) =
        detect(&["detect", "--nats", &servers, "--until-idle", "2s"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains(": 0 alert(s);"), "{stderr}");
    assert_eq!(stored_alerts(&js).await.len(), 1);
}

#[tokio::test]
async fn an_event_delivered_twice_counts_once_and_bad_messages_are_skipped() {
    let server = nats::NatsServer::start().await;
    let urls = [server.url()];
    let js = jetstream_at(&urls).await;
    writer_stream(&js).await;
    let service = login_service();
    let events: Vec<AuditEvent> = (0..10).map(|_| failed_login(&service, "carol")).collect();
    for event in &events[..9] {
        publish_event(&js, event).await;
    }
    // The third again, as a resend outside the duplicate window would be stored: under
    // another message id, or none.
    let again = serde_json::to_vec(&events[2]).unwrap();
    publish(&js, "LoginFailed", again.clone(), Some("resent".into())).await;
    publish(&js, "LoginFailed", again, None).await;
    publish(&js, "LoginFailed", b"{not json".to_vec(), None).await;

    let args = ["detect", "--nats", &urls[0], "--until-idle", "2s"];
    let (code, stdout, stderr) = detect(&args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "9 distinct failures: no alert\n{stdout}");
    assert!(
        stderr.contains("message 12 (oauth.audit.LoginFailed): not a JSON event, skipped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("9 events from stream OAUTH_AUDIT (consumer oauth-audit-detect): 0 alert(s); 2 duplicate(s) skipped; 1 message(s) not JSON; 0 event(s) read again"),
        "{stderr}"
    );
    assert_eq!(
        ack_floor(&js).await,
        12,
        "everything acknowledged, the bad message too"
    );

    // The tenth: the next run rebuilds the window from the stream, then fires.
    publish_event(&js, &events[9]).await;
    let (code, stdout, stderr) = detect(&args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("1 events from stream OAUTH_AUDIT (consumer oauth-audit-detect): 1 alert(s) (brute_force 1); 0 duplicate(s) skipped; 0 message(s) not JSON; 9 event(s) read again"),
        "{stderr}"
    );
    let alert: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(alert["alert"]["count"], 10);
    let evidence: HashSet<&str> = alert["alert"]["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(evidence, ids.iter().map(String::as_str).collect());
    assert_eq!(stored_alerts(&js).await.len(), 1);
}

#[tokio::test]
async fn a_restarted_detector_resumes_with_its_windows_and_never_repeats_an_alert() {
    let server = nats::NatsServer::start().await;
    let urls = [server.url()];
    let js = jetstream_at(&urls).await;
    writer_stream(&js).await;
    let service = login_service();

    // Six failures, processed; then SIGTERM.
    let detector = Running::start(&["--nats", &urls[0]]);
    for _ in 0..6 {
        publish_event(&js, &failed_login(&service, "dave")).await;
    }
    wait_until("six events acknowledged", || async {
        ack_floor(&js).await == 6
    })
    .await;
    let (status, stderr) = detector.terminate().await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("6 events from stream"), "{stderr}");

    // Four more while it is down: after the restart, the window holds all ten.
    for _ in 0..4 {
        publish_event(&js, &failed_login(&service, "dave")).await;
    }
    let detector = Running::start(&["--nats", &urls[0]]);
    wait_until("an alert in the stream", || async {
        !stored_alerts(&js).await.is_empty()
    })
    .await;
    let (status, stderr) = detector.terminate().await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("4 events from stream OAUTH_AUDIT (consumer oauth-audit-detect): 1 alert(s) (brute_force 1)"),
        "{stderr}"
    );
    assert!(stderr.contains("6 event(s) read again"), "{stderr}");
    let alerts = stored_alerts(&js).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].1["alert"]["count"], 10);

    // Ten more within the cooldown: the restarted detector knows it alerted already.
    for _ in 0..10 {
        publish_event(&js, &failed_login(&service, "dave")).await;
    }
    let (code, stdout, stderr) =
        detect(&["detect", "--nats", &urls[0], "--until-idle", "2s"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains(
            "10 events from stream OAUTH_AUDIT (consumer oauth-audit-detect): 0 alert(s)"
        ),
        "{stderr}"
    );
    assert_eq!(stored_alerts(&js).await.len(), 1, "one alert per cooldown");
}

#[tokio::test]
async fn alerts_reach_the_writers_and_rules_of_the_configuration() {
    let server = nats::NatsServer::start().await;
    let urls = [server.url()];
    let js = jetstream_at(&urls).await;
    writer_stream(&js).await;
    let receiver = Upstream::start().await;
    let dir = TempDir::new("detect-nats");
    let config = dir.write(
        "detect.toml",
        &format!(
            r#"
service_name = "fleet-detector"

[detect.rules.brute_force]
count = 3

[[writer]]
type = "http"
format = "alertmanager"
url = "{}/collect"
alerts_only = true
no_proxy = true
"#,
            receiver.url()
        ),
    );
    let service = login_service();
    for _ in 0..3 {
        publish_event(&js, &failed_login(&service, "erin")).await;
    }
    let (code, stdout, stderr) = detect(&[
        "detect",
        "--nats",
        &urls[0],
        "--config",
        config.to_str().unwrap(),
        "--until-idle",
        "2s",
    ])
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.is_empty(), "the configured writers take the alerts");
    assert!(stderr.contains("1 alert(s) (brute_force 1)"), "{stderr}");

    let stored = stored_alerts(&js).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1["alert"]["count"], 3, "the configured threshold");
    assert_eq!(stored[0].1["service"]["name"], "fleet-detector");

    let posted: Vec<Value> = receiver
        .collected
        .lock()
        .unwrap()
        .iter()
        .flat_map(|body| serde_json::from_slice::<Vec<Value>>(body).unwrap())
        .collect();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["labels"]["rule"], "brute_force");
    assert_eq!(
        posted[0]["annotations"]["event_id"], stored[0].1["id"],
        "the alert in the stream"
    );
}
