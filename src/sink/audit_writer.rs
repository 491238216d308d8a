//! The sink contract for writers: what the runtime asks of a local destination.

use std::future::Future;
use std::sync::Arc;

use super::{EncodedEvent, WriteError};
use crate::event::AuditEvent;

/// A destination for audit events.
///
/// Implement it to plug in your own backend. Each writer runs on its own background task
/// and receives events in batches, in the order they were emitted; `write` is never called
/// concurrently with itself.
///
/// ```
/// use std::sync::Arc;
/// use oauth_audit::event::AuditEvent;
/// use oauth_audit::writer::{AuditWriter, WriteError};
///
/// struct CountingWriter(u64);
///
/// impl AuditWriter for CountingWriter {
///     fn name(&self) -> &str {
///         "counter"
///     }
///
///     async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
///         self.0 += batch.len() as u64;
///         Ok(())
///     }
/// }
/// ```
pub trait AuditWriter: Send + 'static {
    /// A short name, used as `dropped.sink` and in diagnostics.
    fn name(&self) -> &str;

    /// Writes a batch of events. An error means the batch was not written.
    fn write(
        &mut self,
        batch: &[Arc<AuditEvent>],
    ) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Makes what was written so far durable (flushes buffers). Called whenever the
    /// writer's queue runs empty, and at shutdown.
    fn flush(&mut self) -> impl Future<Output = Result<(), WriteError>> + Send {
        async { Ok(()) }
    }

    /// Writes events that were serialised before: a batch retried after
    /// [`write`](AuditWriter::write) failed (see
    /// [`WriterOptions::retry`](crate::writer::WriterOptions::retry)), or read back from a disk
    /// spool ([`WriterOptions::spool_dir`](crate::writer::WriterOptions::spool_dir)), where only
    /// their JSON survives. A batch is serialised once however many times it is tried.
    ///
    /// The default hands the events to `write` while they are still in memory, and fails
    /// for events read back from disk; writers that store JSON lines override it.
    fn write_encoded(
        &mut self,
        batch: &[EncodedEvent],
    ) -> impl Future<Output = Result<(), WriteError>> + Send {
        async move {
            let events: Option<Vec<Arc<AuditEvent>>> =
                batch.iter().map(|e| e.event().cloned()).collect();
            match events {
                Some(events) => self.write(&events).await,
                None => Err(WriteError::backend(
                    "this writer takes events, not JSON read back from a spool",
                )),
            }
        }
    }

    /// Whether [`write_encoded`](AuditWriter::write_encoded) takes JSON read back from disk
    /// (default `false`). Only such a writer can have a disk spool.
    fn accepts_json(&self) -> bool {
        false
    }

    /// Whether the writer has work of its own to do when no events arrive (a spool to
    /// replay once its backend is back). While this is `Some(delay)`, the writer's task calls
    /// [`flush`](AuditWriter::flush) after `delay` without events; `None` (the default)
    /// lets the task sleep until the next event.
    fn wake_after(&self) -> Option<std::time::Duration> {
        None
    }

    /// How many events [`write`](AuditWriter::write) accepted that are not in the
    /// destination yet: lines in a buffer, or held back by a failed write. Asked once, when
    /// the writer stops after its last [`flush`](AuditWriter::flush): what is left then is
    /// lost, and counted as dropped (`write_failed`) rather than vanishing. The default, 0,
    /// is right for a writer that holds nothing between calls.
    fn unwritten_events(&self) -> usize {
        0
    }
}
