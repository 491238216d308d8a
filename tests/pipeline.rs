//! The writer pipeline: overflow accounting, AuditEventsDropped, shutdown flush, fan-out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oauth_audit::delivery::{Backend, BackendError, Delivery, EncodedEvent};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::writer::{AuditWriter, Auditor, JsonLines, MemoryWriter, WriteError};
use tokio::sync::Semaphore;

/// A writer that waits for a permit per batch: lets a test stall it deterministically.
#[derive(Clone)]
struct GatedWriter {
    gate: Arc<Semaphore>,
    inner: MemoryWriter,
}

impl AuditWriter for GatedWriter {
    fn name(&self) -> &str {
        "gated"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        self.gate.acquire().await.expect("gate open").forget();
        self.inner.write(batch).await
    }
}

fn event(auditor: &Auditor) -> AuditEvent {
    AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    )
}

#[tokio::test]
async fn overflow_drops_newest_and_reports_the_gap() {
    let gate = Arc::new(Semaphore::new(0));
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .queue_capacity(4)
        .batch_size(1)
        .writer(GatedWriter {
            gate: gate.clone(),
            inner: memory.clone(),
        })
        .build()
        .unwrap();

    // The first event is taken by the writer task, which then blocks on the gate; four fill
    // the queue; the remaining ten must be dropped without blocking this task.
    auditor.emit(event(&auditor));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while auditor.stats().writers[0].queued != 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::task::yield_now().await;
    }
    for _ in 0..14 {
        auditor.emit(event(&auditor));
    }
    let stats = auditor.stats();
    assert_eq!(stats.writers[0].dropped, 10);
    assert_eq!(stats.writers[0].queued, 4);

    gate.add_permits(1000);
    auditor.shutdown().await;
    let events = memory.json();
    let normal = events
        .iter()
        .filter(|e| e["kind"] == "ResourceAccessed")
        .count();
    assert_eq!(normal, 5);
    let dropped: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "AuditEventsDropped")
        .collect();
    assert_eq!(dropped.len(), 1, "{events:#?}");
    assert_eq!(dropped[0]["dropped"]["count"], 10);
    assert_eq!(dropped[0]["dropped"]["reason"], "queue_full");
    assert_eq!(dropped[0]["dropped"]["sink"], "gated");
    assert_eq!(dropped[0]["outcome"], "failure");
    assert_eq!(dropped[0]["severity"], "warning");
}

/// A backend that sends only alerts, as an Alertmanager sink does.
struct AlertsOnly;

impl Backend for AlertsOnly {
    fn name(&self) -> &str {
        "alerts-only"
    }

    async fn send(&mut self, _: &[EncodedEvent]) -> Result<(), BackendError> {
        Ok(())
    }

    fn takes_kind(&self, kind: EventKind) -> bool {
        kind == EventKind::SecurityAlert
    }
}

#[tokio::test]
async fn an_event_emitted_after_shutdown_is_lost_only_to_sinks_that_take_its_kind() {
    let auditor = Auditor::builder()
        .writer(MemoryWriter::new())
        .writer(Delivery::builder(AlertsOnly).build().unwrap())
        .build()
        .unwrap();
    auditor.shutdown().await;
    auditor.emit(event(&auditor));
    let stats = auditor.stats();
    assert_eq!(stats.writers[0].dropped, 1, "{stats:?}");
    assert_eq!(stats.writers[1].dropped, 0, "{stats:?}");
    let mut alert = event(&auditor);
    alert.set_kind(EventKind::SecurityAlert, Outcome::Success);
    auditor.emit(alert);
    let stats = auditor.stats();
    assert_eq!(stats.writers[0].dropped, 2, "{stats:?}");
    assert_eq!(stats.writers[1].dropped, 1, "{stats:?}");
}

#[tokio::test]
async fn shutdown_flushes_everything_accepted_to_every_writer() {
    let dir = tempdir();
    let path = dir.join("audit.jsonl");
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .writer(JsonLines::file(&path).await.unwrap())
        .writer(memory.clone())
        .build()
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let e = event(&auditor);
        ids.push(e.id.to_string());
        auditor.emit(e);
    }
    auditor.shutdown().await;

    let file = std::fs::read_to_string(&path).unwrap();
    let file_ids: Vec<String> = file
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(file_ids, ids, "every accepted event, in order, in the file");
    assert_eq!(memory.events().len(), 1000);

    // After shutdown nothing blocks and nothing is written; the loss is counted.
    auditor.emit(event(&auditor));
    assert_eq!(auditor.stats().writers[0].dropped, 1);
    auditor.shutdown().await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn failing_writer_reports_write_failures_once_it_recovers() {
    #[derive(Clone)]
    struct Flaky {
        failing: Arc<AtomicBool>,
        inner: MemoryWriter,
    }
    impl AuditWriter for Flaky {
        fn name(&self) -> &str {
            "flaky"
        }
        async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(WriteError::backend("backend down"));
            }
            self.inner.write(batch).await
        }
    }
    let failing = Arc::new(AtomicBool::new(true));
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .writer(Flaky {
            failing: failing.clone(),
            inner: memory.clone(),
        })
        .build()
        .unwrap();
    for _ in 0..3 {
        auditor.emit(event(&auditor));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while auditor.stats().writers[0].dropped < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            auditor.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    failing.store(false, Ordering::SeqCst);
    auditor.emit(event(&auditor));
    auditor.shutdown().await;
    let events = memory.json();
    let gap = events
        .iter()
        .find(|e| e["kind"] == "AuditEventsDropped")
        .expect("the gap is reported");
    assert_eq!(gap["dropped"]["count"], 3);
    assert_eq!(gap["dropped"]["reason"], "write_failed");
}

#[tokio::test]
async fn builder_reports_configuration_errors() {
    let err = Auditor::builder().build().unwrap_err();
    assert!(err.to_string().contains("at least one writer"), "{err}");
    let err = Auditor::builder()
        .queue_capacity(0)
        .writer(MemoryWriter::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("queue_capacity"), "{err}");
}

#[test]
fn building_outside_a_runtime_is_an_error_not_a_panic() {
    let err = Auditor::builder()
        .writer(MemoryWriter::new())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("Tokio runtime"), "{err}");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("oauth-audit-test-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
