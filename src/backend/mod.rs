//! Remote backends for [`Delivery`](crate::delivery): each speaks one protocol and is
//! enabled by its own cargo feature. Wrap one in a `Delivery` for retries, the on-disk spool
//! and replay; each backend deduplicates on the event id, so a replayed event is stored once.
//!
//! | backend | feature | deduplicates on the event id by |
//! | --- | --- | --- |
//! | `PostgresBackend` | `postgres` | the key `(id, time)` and `INSERT ... ON CONFLICT DO NOTHING` |
//! | `NatsBackend` | `nats` | the `Nats-Msg-Id` header, within the stream's duplicate window |
//! | `HttpCollector` (Elasticsearch / OpenSearch `_bulk`, Splunk HEC, JSON lines) | `http` | the document `_id` (`_bulk` with `create`); Splunk HEC and JSON lines do not deduplicate: dedupe on `id` downstream |
//!
//! Each backend is a folder with one file per role, its `mod.rs` only declaring them and
//! re-exporting the public types: the backend and its `Backend` impl in `backend.rs`, its
//! `builder.rs`, a `classify.rs` that decides which failures are retried and which refuse the
//! events, and a `settings.rs` holding what the builder checked. Data flows one way inside a
//! folder, from `backend.rs` down to `settings.rs`: helper files take the settings (or the
//! connection) they need instead of adding methods to the backend, so no file imports one
//! that imports it back (`tests/module_graph.rs` checks this).

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "http")]
pub use self::http::{CollectorError, Format, HttpCollector, HttpCollectorBuilder};
#[cfg(feature = "nats")]
pub use nats::{NatsBackend, NatsBackendBuilder};
/// The libpq TLS options split out of a PostgreSQL connection string (for fuzzing).
#[cfg(feature = "postgres")]
#[doc(hidden)]
pub use postgres::{split_tls_options, TlsOptions};
#[cfg(feature = "postgres")]
pub use postgres::{
    Partitioning, PostgresBackend, PostgresBackendBuilder, PostgresEventReader, PostgresReadError,
};
