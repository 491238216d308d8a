//! Work a sink's task does on each batch before writing it. With a single sink the
//! pipeline's processors run here, in the sink's own task, so an event crosses one queue
//! and wakes one task on its way to the destination instead of two. Given by whoever built
//! the processors, so the sink runtime needs to know nothing of them.

use std::sync::Arc;

use tokio::time::Instant;

use crate::event::AuditEvent;

/// Run on every batch, in the sink's task, before the batch is written.
pub(crate) trait Inline: Send + 'static {
    /// Changes the batch in place; events added to it are written with it.
    fn process(&mut self, batch: &mut Vec<Arc<AuditEvent>>);

    /// When [`Inline::tick`] is next due, if ever.
    fn next_due(&self) -> Option<Instant>;

    /// Does what is due at `now`; events it raises are pushed onto `out`.
    fn tick(&mut self, now: Instant, out: &mut Vec<Arc<AuditEvent>>);

    /// The last word, after the last batch and before the sink stops.
    fn finish(&mut self, out: &mut Vec<Arc<AuditEvent>>);

    /// Takes the events the work dropped since the last call (a processor panicked on
    /// them), for the sinks to count as lost with `processor_panicked`.
    fn take_lost(&mut self) -> Vec<Arc<AuditEvent>>;
}
