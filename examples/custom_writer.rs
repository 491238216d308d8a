//! Your own destination for audit events: implement `AuditWriter` (batches, in order, on a
//! task of its own, with a flush when the queue runs empty), or for a quick one make a writer
//! from a closure with `writer::from_fn`.
//!
//! ```text
//! cargo run --example custom_writer
//! ```
//!
//! The writer here keeps one line per event in an in-process "ledger" (standing for a
//! database or an internal API) and fails its first batch, to show a retried write: with
//! `WriterOptions::retry`, a failed batch is tried again and nothing is lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth_audit::delivery::Backoff;
use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::writer::{from_fn, AuditWriter, Auditor, WriteError, WriterOptions};

/// Appends `time kind outcome subject` lines to a shared ledger.
struct LedgerWriter {
    ledger: Arc<Mutex<Vec<String>>>,
    /// Fails this many batches first, as a flaky backend would.
    failures_left: u32,
}

impl AuditWriter for LedgerWriter {
    fn name(&self) -> &str {
        "ledger"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        if self.failures_left > 0 {
            self.failures_left -= 1;
            return Err(WriteError::backend("the ledger is restarting"));
        }
        let mut ledger = self.ledger.lock().unwrap();
        for event in batch {
            ledger.push(format!(
                "{} {} {} {}",
                event.time,
                event.kind,
                event.outcome.as_str(),
                event.actor.subject.as_deref().unwrap_or("-")
            ));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        // A real writer would commit a transaction or flush a buffer here.
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ledger = Arc::new(Mutex::new(Vec::new()));
    let by_kind = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let counts = by_kind.clone();
    let auditor = Auditor::builder()
        .writer_with(
            LedgerWriter {
                ledger: ledger.clone(),
                failures_left: 1,
            },
            WriterOptions::default().retry(Backoff::exponential(
                Duration::from_millis(10),
                Duration::from_secs(1),
            )),
        )
        // A writer from a closure, called once per event on its own task.
        .writer(from_fn("counter", move |event: &AuditEvent| {
            *counts
                .lock()
                .unwrap()
                .entry(event.kind.to_string())
                .or_default() += 1;
        }))
        .build()?;

    for (kind, outcome, subject) in [
        (EventKind::LoginSucceeded, Outcome::Success, "alice"),
        (EventKind::LoginFailed, Outcome::Failure, "bob"),
        (EventKind::AccessTokenIssued, Outcome::Success, "alice"),
    ] {
        let mut event = AuditEvent::new(auditor.service().clone(), Timestamp::now(), kind, outcome);
        event.actor.subject = Some(subject.into());
        auditor.emit(event);
    }
    // Shutdown waits for the retried batch to be written.
    auditor.shutdown().await;

    for line in ledger.lock().unwrap().iter() {
        println!("ledger: {line}");
    }
    for (kind, count) in by_kind.lock().unwrap().iter() {
        println!("counter: {kind} {count}");
    }
    Ok(())
}
