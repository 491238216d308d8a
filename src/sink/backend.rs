//! The sink contract for remote backends: send a batch, say whether the remote side took it.

use std::future::Future;

use super::EncodedEvent;
use crate::event::EventKind;

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
    /// A send that takes longer than [`DeliveryBuilder::send_timeout`](crate::delivery::DeliveryBuilder::send_timeout) is dropped
    /// mid-flight and counts as [`BackendError::Unavailable`]: the next `send` must cope
    /// with whatever state that left (reconnect if in doubt).
    fn send(
        &mut self,
        batch: &[EncodedEvent],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Whether `send` takes events read back from a disk spool, of which only the schema v1
    /// JSON survives (default `true`). A backend that writes events in another format (ECS,
    /// OCSF: [`EventFormat`](crate::format::EventFormat)) makes it from the event in memory
    /// and answers `false`; its `Delivery` then refuses a spool directory and keeps what
    /// waits in memory.
    fn accepts_json(&self) -> bool {
        true
    }

    /// Whether `send` sends events of `kind` at all (default: every kind). A backend that
    /// sends only some kinds (an Alertmanager or alerts-only HTTP sink: `SecurityAlert`)
    /// answers `false` for the others, and they never wait in its backlog or spool: while
    /// it is down, they would fill the bounded backlog and crowd out the events it sends.
    fn takes_kind(&self, kind: EventKind) -> bool {
        let _ = kind;
        true
    }
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
