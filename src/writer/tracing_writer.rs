use std::sync::Arc;

use super::{AuditWriter, WriteError};
use crate::event::{AuditEvent, Severity};

/// Emits each event as a `tracing` event with target `oauth_audit::event`
/// ([`TracingWriter::TARGET`]).
///
/// The crate's own diagnostics (a sink retrying, a spool replayed) use the targets of the
/// modules that log them (`oauth_audit::sink::...`), never this one, so a filter can quiet
/// them and keep the audit events: `oauth_audit=warn,oauth_audit::event=info`, or
/// `oauth_audit=off,oauth_audit::event=info` for the events alone.
///
/// The level follows the severity (`info`, `warn` for warnings, `error` for critical); the
/// event's `kind` and `outcome` are fields, and the whole event is the `event` field as JSON,
/// so a JSON `tracing-subscriber` formatter carries the complete record.
///
/// ```
/// let writer = oauth_audit::writer::TracingWriter::new();
/// ```
#[derive(Clone, Debug, Default)]
pub struct TracingWriter {
    _private: (),
}

impl TracingWriter {
    /// The target of every audit event this writer emits.
    pub const TARGET: &'static str = "oauth_audit::event";

    /// A writer to the current `tracing` subscriber.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AuditWriter for TracingWriter {
    fn name(&self) -> &str {
        "tracing"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        for event in batch {
            let json = serde_json::to_string(event.as_ref())?;
            let kind = event.kind.as_str();
            let outcome = event.outcome.as_str();
            match event.severity {
                Severity::Info => {
                    tracing::info!(target: "oauth_audit::event", kind, outcome, event = %json)
                }
                Severity::Warning => {
                    tracing::warn!(target: "oauth_audit::event", kind, outcome, event = %json)
                }
                Severity::Critical => {
                    tracing::error!(target: "oauth_audit::event", kind, outcome, event = %json)
                }
            }
        }
        Ok(())
    }
}
