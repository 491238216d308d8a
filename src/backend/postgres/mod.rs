//! PostgreSQL: an append-only, time-partitioned events table.
//!
//! One file per role, and data flows one way, from the backend down to the settings:
//! `backend.rs` ([`PostgresBackend`] and its [`Backend`](crate::delivery::Backend) impl: a
//! `send` opens or reuses a session, makes sure the batch's partitions exist and inserts
//! it), `builder.rs` (settings, checked without connecting), `session.rs` (the connection,
//! the prepared insert and the partitions known on it), `schema.rs` (creating, checking and
//! migrating the layout, step by step), `partition.rs` (partitions and retention), `ddl.rs`
//! (the SQL text of the layout), `classify.rs` (which failures are retried and which refuse
//! the events), `settings.rs` (the checked settings, [`Partitioning`] and the layout's
//! names and version, used by all the others), `tls.rs` (libpq's TLS options on rustls) and
//! `reader.rs` ([`PostgresEventReader`]: the table read back, for `oauth-audit verify` and `oauth-audit report`).
//! This file only declares them and re-exports the public types.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use oauth_audit::backend::{Partitioning, PostgresBackend};
//! use oauth_audit::delivery::Backend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut backend = PostgresBackend::builder("host=127.0.0.1 user=audit dbname=audit sslmode=disable")
//!     .table("oauth_audit_events")
//!     .partitioning(Partitioning::Monthly)
//!     .retention(Duration::from_secs(400 * 24 * 3600))
//!     .build()?;
//! // Optional: connect and create the schema now, to fail fast at start-up.
//! backend.prepare().await?;
//! assert_eq!(backend.name(), "postgres");
//! # Ok(()) }
//! ```

mod backend;
mod builder;
mod classify;
mod ddl;
mod partition;
mod reader;
mod schema;
mod session;
mod settings;
mod tls;

pub use backend::PostgresBackend;
pub use builder::PostgresBackendBuilder;
pub use reader::{PostgresEventReader, PostgresReadError};
pub use settings::Partitioning;
#[doc(hidden)]
pub use tls::{split_tls_options, TlsOptions};
