//! At-least-once delivery to remote backends (databases, streams, HTTP collectors).
//!
//! A [`Backend`] knows how to send a batch of [`EncodedEvent`]s and to say when the remote
//! side has confirmed them. The delivery machinery around it (retries with backoff, the
//! on-disk spool, replay after a restart) is shared by every backend, so a backend only
//! speaks its protocol.
//!
//! [`Delivery`] is a backend with its delivery settings: the sink runtime that every sink runs
//! in (file writers too) retries it with [`Backoff`], spills to a bounded on-disk spool while
//! the backend is down, replays the spool in order when it is back (also after a restart),
//! and reports what it had to drop. [`DeliveryStats`] tells how far it got.
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

mod builder;

use std::sync::Arc;
use std::time::Duration;

pub use crate::sink::{
    is_spool_dir, Backend, BackendError, Backoff, DeliveryStats, EncodedEvent, RecordError,
    SpoolStatus,
};
pub use builder::DeliveryBuilder;

use crate::event::AuditEvent;
use crate::sink::deliver::{Deliverer, Settings};
use crate::sink::WriteError;
use crate::sink::{BackendSink, IntoSink, SinkSpec, SpoolSettings};
use crate::ConfigError;

const DEFAULT_MAX_BATCH: usize = 500;
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_INLINE_RETRIES: u32 = 1;
const DEFAULT_MEMORY_RETRIES: u32 = 10;

/// A [`Backend`] with its delivery settings, delivered to at least once: it is retried with
/// exponential backoff and jitter, spilled to a bounded on-disk spool while the backend is
/// down, and replays the spool in order when it is back, also after a restart.
///
/// When `write` returns, every event of the batch is confirmed by the backend, in the
/// spool, or counted as dropped (the spool was full, or the backend rejected it); drops are
/// reported by an `AuditEventsDropped` event delivered like any other, as soon as there is
/// room. New events never overtake spooled ones.
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_audit::delivery::{Backend, BackendError, Backoff, Delivery, EncodedEvent};
/// use oauth_audit::writer::Auditor;
///
/// struct Collector;
/// impl Backend for Collector {
///     fn name(&self) -> &str { "collector" }
///     async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
///         // POST the batch, return Ok once the collector confirmed it.
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let delivery = Delivery::builder(Collector)
///     .spool_dir("/var/spool/billing-api/audit")
///     .max_spool_bytes(512 * 1024 * 1024)
///     .backoff(Backoff::exponential(Duration::from_millis(200), Duration::from_secs(60)))
///     .build()?;
/// let stats = delivery.stats();
/// let auditor = Auditor::builder().service_name("billing-api").writer(delivery).build()?;
/// // ... serve ...
/// auditor.shutdown().await;
/// println!("{} delivered, {} left in the spool", stats.delivered(), stats.spooled_events());
/// # Ok(()) }
/// ```
pub struct Delivery<B> {
    inner: Deliverer<BackendSink<B>>,
}

impl<B> std::fmt::Debug for Delivery<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Delivery").field(&self.inner).finish()
    }
}

impl<B: Backend> Delivery<B> {
    /// Starts configuring delivery to `backend`.
    pub fn builder(backend: B) -> DeliveryBuilder<B> {
        DeliveryBuilder {
            backend,
            spool: SpoolSettings::default(),
            settings: Settings {
                retry: true,
                backoff: Backoff::default(),
                inline_retries: DEFAULT_INLINE_RETRIES,
                max_batch: DEFAULT_MAX_BATCH,
                send_timeout: Some(DEFAULT_SEND_TIMEOUT),
                memory_retries: DEFAULT_MEMORY_RETRIES,
                fsync: true,
            },
        }
    }

    /// Live counters: delivered, spooled, retried, dropped. They keep counting once the
    /// delivery runs inside an [`Auditor`](crate::writer::Auditor).
    pub fn stats(&self) -> DeliveryStats {
        self.inner.stats().clone()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.inner.sink().0
    }

    /// The backend, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.inner.sink_mut().0
    }

    /// Delivers a batch without an [`Auditor`](crate::writer::Auditor) (a runtime of your
    /// own, a test): replays what waits, then sends the batch or spools it. When this
    /// returns, every event is confirmed, spooled, or counted as dropped; it never fails.
    pub async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        self.inner.write(batch).await;
        Ok(())
    }

    /// Replays what waits and reports drops; fsyncs the spool if appends are not fsynced.
    pub async fn flush(&mut self) -> Result<(), WriteError> {
        self.inner.flush().await.map_err(WriteError::from)
    }

    /// When [`flush`](Self::flush) should be called again without new events: while the
    /// backlog or drop reports wait for the backend (`None` once there is nothing to do).
    pub fn wake_after(&self) -> Option<Duration> {
        self.inner.wake_after()
    }
}

impl<B: Backend> IntoSink for Delivery<B> {
    fn into_sink(self) -> SinkSpec {
        let name = self.inner.name().to_owned();
        SinkSpec::new(
            name,
            Box::new(move |retrying, config| {
                if retrying.is_some() {
                    return Err(ConfigError::invalid(
                        "WriterOptions retry and spool",
                        "a Delivery has its own: set them on its DeliveryBuilder",
                    ));
                }
                Ok(crate::sink::task::spawn(self.inner, config))
            }),
        )
    }
}
