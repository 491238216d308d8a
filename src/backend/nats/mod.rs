//! The NATS JetStream backend: one message per event on `<prefix>.<kind>`, deduplicated by
//! the `Nats-Msg-Id` header. See [`NatsBackend`].
//!
//! One file per role, and data flows one way, from the backend down to the settings:
//! `backend.rs` ([`NatsBackend`] and its [`Backend`](crate::delivery::Backend) impl: a
//! `send` connects if needed, sets up the stream, publishes the batch and reports the events
//! refused for good), `builder.rs` (settings, checked without connecting), `publish.rs` (one
//! batch, its acknowledgements within one timeout), `connect.rs` (authentication, TLS and
//! the client), `classify.rs` (which publish failures are retried and which refuse the
//! events), `stream.rs` (the JetStream stream and what is known of it) and `settings.rs`
//! (the checked settings, authentication and TLS, used by all the others). This file only
//! declares them and re-exports the public types.

mod backend;
mod builder;
mod classify;
mod connect;
mod publish;
mod settings;
mod stream;

pub use backend::NatsBackend;
pub use builder::NatsBackendBuilder;
