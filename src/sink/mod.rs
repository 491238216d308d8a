//! The sink runtime: what happens to an event between the [`Auditor`](crate::writer::Auditor)
//! and a destination, the same for every destination, a local file as much as a remote
//! database.
//!
//! ```text
//! Auditor ──► SinkQueue ──► SinkTask ──► Deliverer ──► Sink (AuditWriter | Backend)
//!  (fan-out)   queue.rs      task.rs     deliver.rs     adapter.rs
//!                                          │  ▲
//!                                          ▼  │ replay, oldest first
//!                                       Backlog (disk spool | memory)   backlog/
//! ```
//!
//! Per sink: one bounded queue with its [`OverflowPolicy`] (`queue.rs`); one task that takes
//! batches, flushes when idle and stops on shutdown (`task.rs`); one delivery engine that
//! serialises each event once, retries with [`Backoff`], spills to a backlog and replays it,
//! isolates rejected events and raises the one `AuditEventsDropped` report per reason
//! (`deliver.rs`); one set of counters, [`DeliveryStats`], with the metrics (`stats.rs`,
//! `metrics.rs`). A destination only writes a batch and says whether retrying may help:
//! [`AuditWriter`] for local writers, [`Backend`] for remote ones.

mod adapter;
mod audit_writer;
pub(crate) mod backend;
pub(crate) mod backlog;
mod backoff;
pub(crate) mod deliver;
mod inline;
pub(crate) mod metrics;
mod overflow;
pub(crate) mod queue;
mod record;
mod spec;
mod stats;
pub(crate) mod task;
mod write_error;

pub(crate) use adapter::BackendSink;
pub use audit_writer::AuditWriter;
pub use backend::{Backend, BackendError};
pub(crate) use backlog::SpoolSettings;
pub use backlog::{is_spool_dir, SpoolStatus};
pub use backoff::Backoff;
pub(crate) use inline::Inline;
pub use overflow::OverflowPolicy;
pub use record::{EncodedEvent, RecordError};
pub(crate) use spec::Retrying;
pub use spec::{IntoSink, SinkSpec};
pub use stats::DeliveryStats;
pub use write_error::WriteError;

/// Signs a drop report that lists chained events; given by whoever built the chain, so the
/// sink runtime needs to know nothing of keys.
pub(crate) type Announcer = std::sync::Arc<dyn Fn(&mut crate::event::AuditEvent) + Send + Sync>;
