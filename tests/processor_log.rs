//! The error logged when a processor panics names the processor.
//!
//! A test binary of its own with a single test: the log is captured by the process's one
//! global subscriber (`support::Buffer::global_log`).

mod support;

use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::process::Processor;
use oauth_audit::writer::{Auditor, MemoryWriter};
use support::Buffer;

/// Panics on every event.
struct Broken;

impl Processor for Broken {
    fn name(&self) -> &str {
        "broken-redaction"
    }

    fn process(&mut self, _event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {
        panic!("a processor's bug");
    }
}

#[tokio::test]
async fn a_processor_that_panics_is_named_in_the_log() {
    let logs = Buffer::global_log();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .processor(Broken)
        .writer(memory.clone())
        .build()
        .unwrap();
    auditor.emit(AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    ));
    auditor.shutdown().await;
    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let line = logs
        .lines()
        .find(|line| line.contains("a processor panicked"))
        .unwrap_or_else(|| panic!("no line for the panic: {logs}"));
    assert!(line.contains("processor=\"broken-redaction\""), "{line}");
    assert!(line.contains("ERROR"), "{line}");
}
