//! What a sink's queue does when it is full.

use std::time::Duration;

/// What a writer's queue does when it is full.
///
/// Each writer has its own queue and policy (set with [`AuditorBuilder::writer_with`](crate::writer::AuditorBuilder::writer_with));
/// a slow writer never holds up another one's events.
///
/// ```
/// use std::time::Duration;
/// use oauth_audit::writer::{Auditor, MemoryWriter, OverflowPolicy, WriterOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let auditor = Auditor::builder()
///     // Losing an event here is worse than a slower response.
///     .writer_with(
///         MemoryWriter::new(),
///         WriterOptions::default()
///             .overflow(OverflowPolicy::Block { timeout: Duration::from_millis(250) })
///             .queue_capacity(1024),
///     )
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Drop the newest event and count it; the writer receives an `AuditEventsDropped`
    /// event with reason `queue_full` once it has caught up. The default.
    ///
    /// Requests are never slowed by auditing, whatever the writer does; the price is
    /// lost events when a writer cannot keep up for longer than its queue lasts.
    #[default]
    DropNewest,
    /// Make the request wait for room, up to `timeout`; then drop the event and count
    /// it with reason `block_timeout`.
    ///
    /// Backpressure: a slow writer slows the clients down instead of losing events.
    /// The audit layer holds back the last frame and the end of the response body while
    /// it waits (with a known `Content-Length`, the last byte would complete the response
    /// for the client), without blocking a thread. The price is
    /// latency, and connections held open, while the writer is slow. A response body
    /// dropped before its end (the client went away) cannot be held: its event waits on
    /// a task of its own, up to the same timeout. Choose the timeout as the longest delay
    /// a client should see.
    Block {
        /// The longest a request waits for room in the queue; at least 1 ms.
        timeout: Duration,
    },
}
