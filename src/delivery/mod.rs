//! At-least-once delivery to remote backends (databases, streams, HTTP collectors).
//!
//! A [`Backend`] knows how to send a batch of [`EncodedEvent`]s and to say when the remote
//! side has confirmed them. The delivery machinery around it (retries with backoff, the
//! on-disk spool, replay after a restart) is shared by every backend, so a backend only
//! speaks its protocol.
//!
//! [`Delivery`] is that machinery: an [`AuditWriter`](crate::writer::AuditWriter) around a
//! backend that retries with [`Backoff`], spills to a bounded on-disk spool while the backend
//! is down, replays the spool in order when it is back (also after a restart), and reports
//! what it had to drop. [`DeliveryStats`] tells how far it got.
//!
//! Backends are idempotent per event: a batch may be sent more than once (a timeout after the
//! server committed, a replay after a crash), and each backend deduplicates on the event id
//! (a unique key, a message id, a document `_id`).
//!
//! ```
//! use oauth_audit::delivery::{Backend, BackendError, EncodedEvent};
//!
//! /// Counts the events a remote side would have confirmed.
//! struct Counter(usize);
//!
//! impl Backend for Counter {
//!     fn name(&self) -> &str {
//!         "counter"
//!     }
//!
//!     async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
//!         self.0 += batch.len();
//!         Ok(())
//!     }
//! }
//!
//! # fn main() -> Result<(), oauth_audit::ConfigError> {
//! use oauth_audit::delivery::Delivery;
//!
//! let spool = std::env::temp_dir().join(format!("audit-spool-{}", std::process::id()));
//! let delivery = Delivery::builder(Counter(0)).spool_dir(&spool).build()?;
//! assert_eq!(delivery.stats().spooled_events(), 0);
//! // Auditor::builder().writer(delivery) ...
//! # drop(delivery);
//! # std::fs::remove_dir_all(&spool).ok();
//! # Ok(()) }
//! ```

mod backoff;
mod record;
pub(crate) mod spool;
mod stats;
mod writer;

use std::future::Future;

pub use backoff::Backoff;
pub use record::{EncodedEvent, RecordError};
pub use stats::DeliveryStats;
pub use writer::{Delivery, DeliveryBuilder};

/// A remote destination for audit events, driven by the delivery machinery.
///
/// `send` is never called concurrently with itself, and batches arrive in the order the
/// events were emitted (replays from the spool come before newer events).
pub trait Backend: Send + 'static {
    /// A short name, used as `dropped.sink`, in metrics labels and in diagnostics.
    fn name(&self) -> &str;

    /// Sends a batch. `Ok` means the backend confirmed every event in it (committed,
    /// acknowledged, indexed); only then are the events forgotten locally.
    ///
    /// A send that takes longer than [`DeliveryBuilder::send_timeout`] is dropped
    /// mid-flight and counts as [`BackendError::Unavailable`]: the next `send` must cope
    /// with whatever state that left (reconnect if in doubt).
    fn send(
        &mut self,
        batch: &[EncodedEvent],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;
}

/// Why a backend did not confirm a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The backend is unreachable, overloaded or failed transiently: the batch is retried
    /// with backoff, and spooled to disk while the failure lasts.
    #[error("{backend} unavailable: {source}")]
    Unavailable {
        /// The backend's name.
        backend: String,
        /// What went wrong.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend refused the events themselves (a mapping conflict, a payload too large):
    /// retrying cannot help, so the batch is dropped and reported as `AuditEventsDropped`.
    #[error("{backend} rejected the events: {source}")]
    Rejected {
        /// The backend's name.
        backend: String,
        /// What the backend answered.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BackendError {
    /// A transient failure: the batch will be retried.
    pub fn unavailable(
        backend: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BackendError::Unavailable {
            backend: backend.into(),
            source: source.into(),
        }
    }

    /// A permanent refusal: the batch will not be retried.
    pub fn rejected(
        backend: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        BackendError::Rejected {
            backend: backend.into(),
            source: source.into(),
        }
    }

    /// Whether retrying may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BackendError::Unavailable { .. })
    }
}
