//! Alerts delivered where responders work: a real Prometheus Alertmanager (the Debian
//! package `prometheus-alertmanager`, installed by scripts/test) on a free loopback port,
//! fed by the detector through the HTTP sink's Alertmanager format, with the delivery
//! runtime's retries; and a signed webhook whose signature a receiver can check.
#![cfg(feature = "http")]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use oauth_audit::backend::{Format, HttpCollector};
use oauth_audit::delivery::{Backoff, Delivery};
use oauth_audit::detect::Detector;
use oauth_audit::event::{AuditEvent, EventKind, Outcome, Source, Timestamp};
use oauth_audit::writer::{Auditor, MemoryWriter};
use serde_json::Value;

#[path = "support/ports.rs"]
mod ports;
use ports::free_port;

/// One `prometheus-alertmanager` process, single node, in its own directory; killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    fn binary() -> PathBuf {
        let path = PathBuf::from("/usr/bin/prometheus-alertmanager");
        assert!(
            path.is_file(),
            "prometheus-alertmanager is not installed: run scripts/test (it installs the \
             Debian package prometheus-alertmanager)"
        );
        path
    }

    /// Starts one on a free port. A port handed out as free can be bound by a test running
    /// in parallel before Alertmanager binds it; Alertmanager then exits, and is started
    /// again on another port.
    async fn start() -> Alertmanager {
        let mut taken = String::new();
        for _ in 0..5 {
            match Alertmanager::launch(free_port()).await {
                Ok(manager) => return manager,
                Err(log) if log.contains("address already in use") => taken = log,
                Err(log) => panic!("Alertmanager did not start:\n{log}"),
            }
        }
        panic!("Alertmanager found its port taken five times in a row:\n{taken}");
    }

    /// Starts one on `port`, which a sink was already given.
    async fn start_on(port: u16) -> Alertmanager {
        match Alertmanager::launch(port).await {
            Ok(manager) => manager,
            Err(log) => panic!("Alertmanager did not start on port {port}:\n{log}"),
        }
    }

    /// Starts one on `port` and waits until it is ready; its log if it exits first or is
    /// not ready within a minute.
    async fn launch(port: u16) -> Result<Alertmanager, String> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\n  group_by: [rule, key]\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let log_path = dir.path().join("log");
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(Self::binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start prometheus-alertmanager");
        let url = format!("http://127.0.0.1:{port}");
        let mut manager = Alertmanager {
            child,
            url,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        // A timeout per try: whatever else holds the port may accept and never answer.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        loop {
            let ready = client
                .get(format!("{}/-/ready", manager.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(manager);
            }
            let exited = matches!(manager.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() >= deadline {
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn alerts(&self) -> Vec<Value> {
        reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The alerts Alertmanager holds once there are `at_least` of them, or when `within`
    /// has passed, whichever comes first.
    async fn alerts_when(&self, at_least: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let alerts = self.alerts().await;
            if alerts.len() >= at_least || Instant::now() > deadline {
                return alerts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ten failed logins for `user` from one address, among `ok` successful ones.
fn attack(auditor: &Auditor, user: &str, ok: usize) {
    attack_at(auditor, user, ok, 0);
}

/// [`attack`], the events stamped `ago_s` seconds in the past (a detector catching up on
/// a backlog, or an alert that waited while Alertmanager was down).
fn attack_at(auditor: &Auditor, user: &str, ok: usize, ago_s: i64) {
    for i in 0..10 + ok {
        let failed = i < 10;
        let mut event = AuditEvent::new(
            auditor.service().clone(),
            Timestamp::from_unix_micros(Timestamp::now().unix_micros() - ago_s * 1_000_000)
                .unwrap(),
            if failed {
                EventKind::LoginFailed
            } else {
                EventKind::LoginSucceeded
            },
            if failed {
                Outcome::Failure
            } else {
                Outcome::Success
            },
        );
        event.actor.subject = Some(if failed {
            user.into()
        } else {
            format!("user-{i}")
        });
        let mut source = Source::default();
        source.ip = Some([198, 51, 100, 23].into());
        event.source = Some(source);
        auditor.emit(event);
    }
}

/// An Alertmanager sink for `port` that retries every 50-200 ms, for a long while.
fn retrying_alertmanager(port: u16, timeout: Option<Duration>) -> Delivery<HttpCollector> {
    let mut sink = HttpCollector::builder(format!("http://127.0.0.1:{port}/api/v2/alerts")).format(
        Format::Alertmanager {
            generator_url: None,
        },
    );
    if let Some(timeout) = timeout {
        sink = sink.timeout(timeout);
    }
    Delivery::builder(sink.build().unwrap())
        .backoff(Backoff::exponential(
            Duration::from_millis(50),
            Duration::from_millis(200),
        ))
        .memory_retries(1_000)
        .build()
        .unwrap()
}

/// Ordinary traffic: `rounds` bursts of `per_round` successful logins, 20 ms apart.
async fn traffic(auditor: &Auditor, rounds: usize, per_round: usize) {
    for _ in 0..rounds {
        for i in 0..per_round {
            let mut event = AuditEvent::new(
                auditor.service().clone(),
                Timestamp::now(),
                EventKind::LoginSucceeded,
                Outcome::Success,
            );
            event.actor.subject = Some(format!("user-{i}"));
            auditor.emit(event);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The keys of the alerts Alertmanager holds once it holds `count` (or after 20 s), sorted.
async fn alert_keys(manager: &Alertmanager, count: usize) -> Vec<String> {
    let mut keys: Vec<String> = manager
        .alerts_when(count, Duration::from_secs(20))
        .await
        .iter()
        .map(|a| a["labels"]["key"].as_str().unwrap_or_default().to_owned())
        .collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_alertmanager_with_labels_to_route_by() {
    let manager = Alertmanager::start().await;
    let sink = HttpCollector::builder(format!("{}/api/v2/alerts", manager.url))
        .format(Format::Alertmanager {
            generator_url: Some("https://grafana.example/d/oauth-audit".into()),
        })
        .build()
        .unwrap();
    let trail = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("login")
        .service_instance("login-1")
        .processor(Detector::default())
        .writer(trail.clone())
        .writer(
            Delivery::builder(sink)
                .backoff(Backoff::exponential(
                    Duration::from_millis(50),
                    Duration::from_secs(1),
                ))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    attack(&auditor, "alice", 5);
    auditor.shutdown().await;
    let stats = auditor.stats();
    assert!(stats.writers.iter().all(|w| w.dropped == 0), "{stats:?}");

    let alerts = manager.alerts_when(1, Duration::from_secs(30)).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], "brute_force");
    assert_eq!(labels["rule"], "brute_force");
    assert_eq!(labels["severity"], "critical");
    assert_eq!(labels["service"], "login");
    assert_eq!(labels["instance"], "login-1");
    assert_eq!(labels["key"], "actor.subject=alice source.ip=198.51.100.23");
    assert_eq!(
        alert["annotations"]["summary"],
        "Repeated failed logins for one user from one address"
    );
    assert_eq!(
        alert["generatorURL"],
        "https://grafana.example/d/oauth-audit"
    );
    assert_eq!(alert["status"]["state"], "active");
    // The alert names the event in the trail, and the events behind it.
    let in_trail: Vec<Value> = trail
        .json()
        .into_iter()
        .filter(|e| e["kind"] == "SecurityAlert")
        .collect();
    assert_eq!(in_trail.len(), 1);
    assert_eq!(alert["annotations"]["event_id"], in_trail[0]["id"]);
    let evidence = alert["annotations"]["evidence"].as_str().unwrap();
    assert_eq!(evidence.split(' ').count(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_gets_only_the_alerts_signed_so_a_receiver_can_check_them() {
    let received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let kept = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let secret = b"webhook-secret-shared-with-the-receiver";
    let sink = HttpCollector::builder(format!("http://{addr}/hook"))
        .format(Format::JsonLines)
        .alerts_only(true)
        .hmac_sha256_secret(secret.to_vec())
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .processor(Detector::default())
        .writer(Delivery::builder(sink).build().unwrap())
        .build()
        .unwrap();
    attack(&auditor, "bob", 20);
    auditor.shutdown().await;

    let received = received.lock().unwrap();
    let lines: Vec<Value> = received
        .iter()
        .flat_map(|(_, body)| {
            String::from_utf8(body.to_vec())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "only the alert, not the 30 events: {lines:#?}"
    );
    assert_eq!(lines[0]["alert"]["rule"], "brute_force");
    for (headers, body) in received.iter() {
        let signature = headers["x-oauth-audit-signature"].to_str().unwrap();
        let (t, v1) = signature
            .strip_prefix("t=")
            .and_then(|rest| rest.split_once(",v1="))
            .expect("t=<seconds>,v1=<hex>");
        let age = Timestamp::now().unix() - t.parse::<i64>().unwrap();
        assert!((0..60).contains(&age), "signed {age} s ago");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&hex::decode(v1).unwrap())
            .expect("the signature verifies");
        // Another secret, or another body, does not.
        let mut other = Hmac::<sha2::Sha256>::new_from_slice(b"another").unwrap();
        other.update(format!("{t}.").as_bytes());
        other.update(body);
        assert!(other.verify_slice(&hex::decode(v1).unwrap()).is_err());
    }
}

/// An alert delivered later than its rule's window after the attack (the NATS
/// detector catching up on a backlog or run as a periodic `--until-idle` job, or a spool
/// replayed after Alertmanager was down for more than 15 minutes) must still fire:
/// Alertmanager takes an alert whose `endsAt` is past as resolved, and never notifies a
/// resolved alert it never saw firing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_delivered_after_its_window_still_fires() {
    let manager = Alertmanager::start().await;
    let sink = HttpCollector::builder(format!("{}/api/v2/alerts", manager.url))
        .format(Format::Alertmanager {
            generator_url: None,
        })
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .service_name("login")
        .processor(Detector::default())
        .writer(Delivery::builder(sink).build().unwrap())
        .build()
        .unwrap();
    // The attack was 20 minutes ago; brute_force's window is 15.
    attack_at(&auditor, "carol", 0, 20 * 60);
    auditor.shutdown().await;
    let stats = auditor.stats();
    assert!(stats.writers.iter().all(|w| w.dropped == 0), "{stats:?}");

    let alerts = manager.alerts_when(1, Duration::from_secs(10)).await;
    assert_eq!(alerts.len(), 1, "delivered, yet not firing: {alerts:#?}");
    assert_eq!(
        alerts[0]["labels"]["key"],
        "actor.subject=carol source.ip=198.51.100.23"
    );
    assert_eq!(alerts[0]["status"]["state"], "active");
    // When the attack happened is still told.
    let starts = Timestamp::parse(alerts[0]["startsAt"].as_str().unwrap()).unwrap();
    assert!(Timestamp::now().unix() - starts.unix() >= 20 * 60 - 5);
}

/// An Alertmanager sink sends only alerts, and its backlog keeps nothing else. While
/// Alertmanager is away (a restart, a network blip) and the first alert is being retried,
/// ordinary traffic fills the queue, and an alert raised then is dropped as the newest
/// event: the attack that makes the traffic is the one whose alert is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_raised_while_alertmanager_is_away_are_not_crowded_out_by_traffic() {
    let port = free_port();
    let auditor = Auditor::builder()
        .service_name("login")
        .processor(Detector::default())
        .writer(retrying_alertmanager(port, None))
        .build()
        .unwrap();
    // Alertmanager is down: the first alert waits in the sink.
    attack(&auditor, "alice", 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Ordinary traffic, paced so that the queue (8192 events) keeps up: 150,000 events,
    // more than the memory backlog holds (16 MiB by default), none of it for this sink.
    traffic(&auditor, 150, 1_000).await;
    // A second attack, on another user.
    attack(&auditor, "bob", 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let manager = Alertmanager::start_on(port).await;
    let keys = alert_keys(&manager, 2).await;
    auditor.shutdown().await;
    assert_eq!(
        keys,
        [
            "actor.subject=alice source.ip=198.51.100.23",
            "actor.subject=bob source.ip=198.51.100.23",
        ],
        "{:?}",
        auditor.stats()
    );
}

/// With several writers the detector runs in a stage of its own, and an alerts-only sink's
/// queue takes only alerts. A burst of traffic larger than that queue, arriving while one of
/// the sink's sends hangs (a receiver that accepted the connection and never answers), would
/// otherwise fill it, and the alert about the attack in that burst would find no room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_traffic_while_a_send_hangs_leaves_room_for_its_alert() {
    // Accepts connections (the kernel does, for the backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("login")
        .processor(Detector::default())
        .writer(memory.clone())
        .writer(retrying_alertmanager(port, Some(Duration::from_secs(3))))
        .queue_capacity(1_000)
        .build()
        .unwrap();
    // The first alert's send hangs.
    attack(&auditor, "alice", 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // 5,000 events at once, five times what each queue holds, in bursts that the stage's
    // own queue takes whole.
    traffic(&auditor, 10, 500).await;
    // An attack on another user, while the send still hangs.
    attack(&auditor, "bob", 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(silent);
    let manager = Alertmanager::start_on(port).await;
    let keys = alert_keys(&manager, 2).await;
    auditor.shutdown().await;
    assert_eq!(
        keys,
        [
            "actor.subject=alice source.ip=198.51.100.23",
            "actor.subject=bob source.ip=198.51.100.23",
        ],
        "{:?}",
        auditor.stats()
    );
    // The other writer had everything.
    assert_eq!(
        memory
            .events()
            .iter()
            .filter(|e| e.kind != EventKind::SecurityAlert)
            .count(),
        5_020
    );
}
