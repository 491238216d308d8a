use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::event::DropReason;

/// Live counters of one [`Delivery`](super::Delivery) writer, cheap to clone and to read
/// from any thread.
///
/// ```
/// use oauth_audit::delivery::{Backend, BackendError, Delivery, EncodedEvent};
///
/// struct Null;
/// impl Backend for Null {
///     fn name(&self) -> &str { "null" }
///     async fn send(&mut self, _: &[EncodedEvent]) -> Result<(), BackendError> { Ok(()) }
/// }
///
/// let delivery = Delivery::builder(Null).build()?;
/// let stats = delivery.stats();
/// assert_eq!(stats.delivered(), 0);
/// assert_eq!(stats.spooled_events(), 0);
/// # Ok::<(), oauth_audit::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct DeliveryStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    batches: AtomicU64,
    spooled_events: AtomicU64,
    spooled_bytes: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    dropped_spool_full: AtomicU64,
    dropped_rejected: AtomicU64,
    dropped_write_failed: AtomicU64,
    corrupt_lines: AtomicU64,
}

impl DeliveryStats {
    /// Events the backend confirmed (including `AuditEventsDropped` reports).
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Batches the backend confirmed.
    pub fn batches(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }

    /// Events waiting in the spool (on disk, or in memory without a spool directory).
    pub fn spooled_events(&self) -> u64 {
        self.inner.spooled_events.load(Ordering::Relaxed)
    }

    /// Bytes waiting in the spool.
    pub fn spooled_bytes(&self) -> u64 {
        self.inner.spooled_bytes.load(Ordering::Relaxed)
    }

    /// Sends that repeated a failed one.
    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Sends that failed (transiently or not).
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Events dropped for `reason` (`SpoolFull`, `Rejected` or `WriteFailed`; other reasons
    /// are counted by the [`Auditor`](crate::writer::Auditor), not here).
    pub fn dropped(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::SpoolFull => self.inner.dropped_spool_full.load(Ordering::Relaxed),
            DropReason::Rejected => self.inner.dropped_rejected.load(Ordering::Relaxed),
            DropReason::WriteFailed => self.inner.dropped_write_failed.load(Ordering::Relaxed),
            _ => 0,
        }
    }

    /// Events dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        [
            DropReason::SpoolFull,
            DropReason::Rejected,
            DropReason::WriteFailed,
        ]
        .into_iter()
        .map(|reason| self.dropped(reason))
        .sum()
    }

    /// Spool lines that were not events (disk corruption) and were moved to the
    /// spool's `quarantine` file.
    pub fn corrupt_lines(&self) -> u64 {
        self.inner.corrupt_lines.load(Ordering::Relaxed)
    }

    pub(crate) fn add_delivered(&self, events: u64) {
        self.inner.delivered.fetch_add(events, Ordering::Relaxed);
        self.inner.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set_spooled(&self, events: u64, bytes: u64) {
        self.inner.spooled_events.store(events, Ordering::Relaxed);
        self.inner.spooled_bytes.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_retry(&self) {
        self.inner.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_failure(&self) {
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_dropped(&self, reason: DropReason, events: u64) {
        let counter = match reason {
            DropReason::SpoolFull => &self.inner.dropped_spool_full,
            DropReason::Rejected => &self.inner.dropped_rejected,
            _ => &self.inner.dropped_write_failed,
        };
        counter.fetch_add(events, Ordering::Relaxed);
    }

    pub(crate) fn add_corrupt(&self, lines: u64) {
        self.inner.corrupt_lines.fetch_add(lines, Ordering::Relaxed);
    }
}
