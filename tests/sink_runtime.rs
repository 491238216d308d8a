//! One sink runtime for every sink: a file writer gets the retry policy and the spool a
//! remote backend has, and the same single drop report.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oauth_audit::delivery::{Backoff, Delivery, EncodedEvent};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::writer::{
    AuditWriter, Auditor, JsonLines, MemoryWriter, WriteError, WriterOptions,
};
use uuid::Uuid;

/// A real JSON-lines file behind a switch: while `down`, every write fails as a full disk
/// would, before anything reaches the file.
#[derive(Clone)]
struct Switched {
    file: Arc<tokio::sync::Mutex<JsonLines>>,
    down: Arc<AtomicBool>,
}

impl Switched {
    async fn new(path: &Path) -> Self {
        Switched {
            file: Arc::new(tokio::sync::Mutex::new(
                JsonLines::file(path).await.unwrap(),
            )),
            down: Arc::new(AtomicBool::new(false)),
        }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), WriteError> {
        if self.down.load(Ordering::SeqCst) {
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull).into())
        } else {
            Ok(())
        }
    }
}

impl AuditWriter for Switched {
    fn name(&self) -> &str {
        "switched-file"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        self.check()?;
        self.file.lock().await.write(batch).await
    }

    async fn write_encoded(&mut self, batch: &[EncodedEvent]) -> Result<(), WriteError> {
        self.check()?;
        self.file.lock().await.write_encoded(batch).await
    }

    fn accepts_json(&self) -> bool {
        true
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        self.check()?;
        self.file.lock().await.flush().await
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("oauth-audit-sink-{name}-{}", Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fast() -> Backoff {
    Backoff::exponential(Duration::from_millis(1), Duration::from_millis(20))
}

fn event(auditor: &Auditor) -> AuditEvent {
    AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    )
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_failing_file_writer_with_a_spool_loses_nothing_and_keeps_the_order() {
    let dir = TempDir::new("spool");
    let path = dir.0.join("audit.jsonl");
    let file = Switched::new(&path).await;
    let auditor = Auditor::builder()
        .writer_with(
            file.clone(),
            WriterOptions::default()
                .retry(fast())
                .spool_dir(dir.0.join("spool")),
        )
        .build()
        .unwrap();
    let mut sent = Vec::new();
    for _ in 0..5 {
        let e = event(&auditor);
        sent.push(e.id.to_string());
        auditor.emit(e);
    }
    eventually("the first events are written", || lines(&path).len() == 5).await;

    file.set_down(true);
    for _ in 0..20 {
        let e = event(&auditor);
        sent.push(e.id.to_string());
        auditor.emit(e);
    }
    eventually("the events wait in the spool", || {
        auditor.stats().writers[0].spooled == 20
    })
    .await;
    assert_eq!(
        lines(&path).len(),
        5,
        "nothing reaches the file while it fails"
    );

    file.set_down(false);
    for _ in 0..5 {
        let e = event(&auditor);
        sent.push(e.id.to_string());
        auditor.emit(e);
    }
    auditor.shutdown().await;
    eventually("the spool is replayed", || lines(&path).len() == 30).await;
    let written: Vec<String> = lines(&path)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(written, sent, "every event once, in the order emitted");
    let stats = &auditor.stats().writers[0];
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.spooled, 0);
    assert_eq!(stats.written, 30);
}

#[tokio::test]
async fn a_spooled_file_writer_replays_what_a_previous_run_left() {
    let dir = TempDir::new("restart");
    let path = dir.0.join("audit.jsonl");
    let spool = dir.0.join("spool");
    let mut sent = Vec::new();
    {
        let file = Switched::new(&path).await;
        file.set_down(true);
        let auditor = Auditor::builder()
            .writer_with(
                file,
                WriterOptions::default().retry(fast()).spool_dir(&spool),
            )
            .build()
            .unwrap();
        for _ in 0..7 {
            let e = event(&auditor);
            sent.push(e.id.to_string());
            auditor.emit(e);
        }
        eventually("the events wait in the spool", || {
            auditor.stats().writers[0].spooled == 7
        })
        .await;
        auditor.shutdown().await;
    }
    assert!(lines(&path).is_empty());

    let auditor = Auditor::builder()
        .writer_with(
            Switched::new(&path).await,
            WriterOptions::default().retry(fast()).spool_dir(&spool),
        )
        .build()
        .unwrap();
    let e = event(&auditor);
    sent.push(e.id.to_string());
    auditor.emit(e);
    auditor.shutdown().await;
    let written: Vec<String> = lines(&path)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        written, sent,
        "the previous run's events first, then the new one"
    );
}

#[tokio::test]
async fn without_a_retry_policy_a_failed_batch_is_dropped_and_reported_once() {
    let dir = TempDir::new("noretry");
    let path = dir.0.join("audit.jsonl");
    let file = Switched::new(&path).await;
    let auditor = Auditor::builder().writer(file.clone()).build().unwrap();
    file.set_down(true);
    for _ in 0..4 {
        auditor.emit(event(&auditor));
    }
    eventually("the batch is dropped", || {
        auditor.stats().writers[0].dropped == 4
    })
    .await;
    file.set_down(false);
    let last = event(&auditor);
    let last_id = last.id.to_string();
    auditor.emit(last);
    auditor.shutdown().await;
    let written = lines(&path);
    let reports: Vec<_> = written
        .iter()
        .filter(|e| e["kind"] == "AuditEventsDropped")
        .collect();
    assert_eq!(reports.len(), 1, "one report: {written:?}");
    assert_eq!(reports[0]["dropped"]["count"], 4);
    assert_eq!(reports[0]["dropped"]["reason"], "write_failed");
    assert!(written.iter().any(|e| e["id"] == last_id.as_str()));
}

#[tokio::test]
async fn a_memory_retry_holds_events_through_a_short_failure() {
    let dir = TempDir::new("memory");
    let path = dir.0.join("audit.jsonl");
    let file = Switched::new(&path).await;
    let auditor = Auditor::builder()
        .writer_with(
            file.clone(),
            WriterOptions::default().retry(Backoff::exponential(
                Duration::from_millis(20),
                Duration::from_millis(40),
            )),
        )
        .build()
        .unwrap();
    file.set_down(true);
    for _ in 0..3 {
        auditor.emit(event(&auditor));
    }
    eventually("the events wait in memory", || {
        auditor.stats().writers[0].spooled == 3
    })
    .await;
    file.set_down(false);
    eventually("the events are written", || lines(&path).len() == 3).await;
    auditor.shutdown().await;
    assert_eq!(auditor.stats().writers[0].dropped, 0);
}

#[tokio::test]
async fn a_disk_spool_needs_a_writer_that_takes_json_back() {
    let dir = TempDir::new("refused");
    let err = Auditor::builder()
        .writer_with(
            MemoryWriter::new(),
            WriterOptions::default().spool_dir(dir.0.join("spool")),
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("spool_dir"), "{err}");

    struct Null;
    impl oauth_audit::delivery::Backend for Null {
        fn name(&self) -> &str {
            "null"
        }
        async fn send(
            &mut self,
            _: &[EncodedEvent],
        ) -> Result<(), oauth_audit::delivery::BackendError> {
            Ok(())
        }
    }
    let err = Auditor::builder()
        .writer_with(
            Delivery::builder(Null).build().unwrap(),
            WriterOptions::default().retry(fast()),
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("DeliveryBuilder"), "{err}");
}

#[tokio::test]
async fn a_bad_spool_directory_is_refused_at_build() {
    let dir = TempDir::new("badspool");
    let file_in_the_way = dir.0.join("not-a-dir");
    std::fs::write(&file_in_the_way, b"x").unwrap();
    let err = Auditor::builder()
        .writer_with(
            JsonLines::file(dir.0.join("audit.jsonl")).await.unwrap(),
            WriterOptions::default().spool_dir(file_in_the_way.join("spool")),
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("spool_dir"), "{err}");
}
