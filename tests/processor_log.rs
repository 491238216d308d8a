//! The error logged when a processor panics names the processor.
//!
//! A test binary of its own with a single test, so that the one global subscriber installed
//! before any log line sees every line of this process and nothing else: a scoped subscriber
//! (`set_default`) sees only its own thread, and callsite interest cached while another test
//! ran without one can hide a line from it.

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
    let logs = Buffer::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    )
    .expect("the only subscriber of this test binary");
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
