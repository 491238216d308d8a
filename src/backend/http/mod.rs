//! HTTP collectors (feature `http`): Elasticsearch / OpenSearch `_bulk`, Splunk HEC, and
//! JSON lines for Vector, Fluent Bit or any HTTP log endpoint.
//!
//! An [`HttpCollector`] is a [`Backend`](crate::delivery::Backend): it sends a batch as one
//! request (or several, cut at [`max_batch_bytes`](HttpCollectorBuilder::max_batch_bytes))
//! and reports the answer as delivered, transient (retried and spooled) or refused.
//!
//! One file per role, and data flows one way, from the backend down to the settings and the
//! formats: `backend.rs` (the collector and its `Backend` impl, cutting batches into
//! requests), `builder.rs` (settings, checked at build), `auth.rs` (credentials, kept out of
//! `Debug`), `request.rs` (building and sending one request), `classify.rs` (what an answer
//! means: delivered, retried or refused), `template.rs` (installing the index template before the
//! first `_bulk`), `settings.rs` (what the builder checked, used by all the others),
//! `format.rs` (the body formats and their own verdicts). This file only
//! declares them and re-exports the public types.
//!
//! | format | resent events |
//! | --- | --- |
//! | [`Format::ElasticsearchBulk`] | deduplicated: `create` with `_id` = event id, a resend is a 409 that counts as delivered |
//! | [`Format::SplunkHec`] | indexed again: dedupe on `event.id` in searches |
//! | [`Format::JsonLines`] | an exact resend carries the same `Idempotency-Key`; otherwise dedupe on `id` downstream |
//!
//! A batch that failed in part is resent without what the collector confirmed: the requests
//! of it answered 2xx before a later one failed (or before the delivery's `send_timeout`
//! gave up on the send), and the `_bulk` items created or already there. So the resends
//! above happen only when nothing says what was stored (a request that timed out, a
//! connection lost before the answer, a restart with events in the spool).
//!
//! ```no_run
//! use oauth_audit::backend::{Format, HttpCollector};
//!
//! # fn f() -> Result<(), oauth_audit::ConfigError> {
//! // Vector: [sources.audit] type = "http_server", address = "0.0.0.0:8687",
//! //         decoding.codec = "json", framing.method = "newline_delimited"
//! let vector = HttpCollector::builder("http://vector.internal:8687/")
//!     .format(Format::JsonLines)
//!     .bearer_token(std::env::var("VECTOR_TOKEN").unwrap_or_default())
//!     .gzip(true)
//!     .build()?;
//! # let _ = vector; Ok(()) }
//! ```

mod auth;
mod backend;
mod builder;
mod classify;
mod format;
mod request;
mod settings;
mod template;

pub use backend::HttpCollector;
pub use builder::HttpCollectorBuilder;
pub use classify::CollectorError;
pub use format::Format;
