//! The delivery's own log lines over outages: one warning when an outage starts, one line when
//! the backend is back, one when the spool is replayed.
//!
//! A test binary of its own with a single test, so that the one global subscriber installed
//! before any log line sees every line of this process and nothing else: a scoped subscriber
//! (`set_default`) sees only its own thread, and callsite interest cached while another test
//! ran without one can hide a line from it.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oauth_audit::delivery::{Backend, Backoff, Delivery};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use support::flaky_backend::{FlakyBackend, Mode};
use support::Buffer;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        TempDir(std::env::temp_dir().join(format!(
            "oauth-audit-delivery-log-{name}-{}",
            uuid::Uuid::now_v7()
        )))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn events(n: usize) -> Vec<Arc<AuditEvent>> {
    let service = Arc::new(ServiceInfo::new("delivery-log-test"));
    (0..n)
        .map(|_| {
            Arc::new(AuditEvent::new(
                service.clone(),
                Timestamp::now(),
                EventKind::TokenRevoked,
                Outcome::Success,
            ))
        })
        .collect()
}

/// Flushes until the spool is empty, as the writer's task does while it is idle.
async fn drain<B: Backend>(delivery: &mut Delivery<B>) {
    let stats = delivery.stats();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        delivery.flush().await.unwrap();
        if stats.spooled_events() == 0 && delivery.wake_after().is_none() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool did not drain: {} events left",
            stats.spooled_events()
        );
        if let Some(wait) = delivery.wake_after() {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The captured lines that contain `what`.
fn lines(logs: &Buffer, what: &str) -> Vec<String> {
    String::from_utf8_lossy(&logs.0.lock().unwrap())
        .lines()
        .filter(|line| line.contains(what))
        .map(str::to_owned)
        .collect()
}

const REPLAYED: &str = "audit spool replayed:";

#[tokio::test]
async fn each_outage_logs_one_warning_one_recovery_and_one_replay_line() {
    let logs = Buffer::global_log();

    let dir = TempDir::new("outages");
    let backend = FlakyBackend::new(Mode::Down);
    let mut delivery = Delivery::builder(backend.clone())
        .spool_dir(dir.path())
        .max_batch(7)
        .backoff(Backoff::exponential(
            Duration::from_millis(1),
            Duration::from_millis(20),
        ))
        .build()
        .unwrap();
    let stats = delivery.stats();

    // Outage one: 40 events spooled over several writes (several failed sends).
    for batch in events(40).chunks(10) {
        delivery.write(batch).await.unwrap();
    }
    assert_eq!(stats.spooled_events(), 40);
    assert!(lines(&logs, REPLAYED).is_empty(), "nothing replayed yet");
    backend.set(Mode::Up);
    drain(&mut delivery).await;
    assert_eq!(backend.received().len(), 40);
    let replayed = lines(&logs, REPLAYED);
    assert_eq!(replayed.len(), 1, "one line per drain: {replayed:#?}");
    assert!(
        replayed[0].contains("audit spool replayed: 40 events, spool empty"),
        "{}",
        replayed[0]
    );
    assert!(replayed[0].contains("INFO"), "{}", replayed[0]);
    assert!(replayed[0].contains("writer=flaky"), "{}", replayed[0]);

    // Events while the backend is up go straight through: no drain, no line.
    delivery.write(&events(5)).await.unwrap();
    assert_eq!(backend.received().len(), 45);
    assert_eq!(lines(&logs, REPLAYED).len(), 1);

    // Outage two: its own warning, recovery and replay line, with its own count.
    backend.set(Mode::Down);
    delivery.write(&events(12)).await.unwrap();
    delivery.write(&events(3)).await.unwrap();
    assert_eq!(stats.spooled_events(), 15);
    backend.set(Mode::Up);
    drain(&mut delivery).await;
    assert_eq!(backend.received().len(), 60);

    let replayed = lines(&logs, REPLAYED);
    assert_eq!(replayed.len(), 2, "{replayed:#?}");
    assert!(
        replayed[1].contains("audit spool replayed: 15 events, spool empty"),
        "{}",
        replayed[1]
    );
    let unavailable = lines(&logs, "audit backend unavailable");
    assert_eq!(
        unavailable.len(),
        2,
        "one warning per outage: {unavailable:#?}"
    );
    assert_eq!(lines(&logs, "audit backend is back").len(), 2);
}
