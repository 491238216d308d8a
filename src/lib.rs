//! # oauth-audit
//!
//! A [`tower`](https://docs.rs/tower) layer that turns OAuth 2.0 traffic into a structured,
//! trustworthy audit trail, with no change to handler code.
//!
//! ```
//! use axum::{routing::get, Router};
//! use oauth_audit::{writer::{Auditor, JsonLines}, AuditLayer, RequiredScopes};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let auditor = Auditor::builder()
//!     .service_name("orders-api")
//!     .writer(JsonLines::stdout())
//!     .build()?;
//! let layer = AuditLayer::builder(auditor.clone())
//!     .trusted_proxies(["10.0.0.0/8"])
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/orders", get(|| async { "[]" }).route_layer(RequiredScopes::all(["orders:read"])))
//!     .layer(layer);
//! // axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! auditor.shutdown().await; // flush before exit
//! # Ok(()) }
//! ```
//!
//! Every request through the layer becomes one [`event::AuditEvent`] (schema v1, see
//! `docs/events.md`), emitted when the response body ends. The request path only enqueues;
//! [`writer::Auditor`] delivers to the writers in the background. A sink writes each event
//! in schema v1, or as an ECS document or an OCSF event ([`format`](mod@format), `docs/formats.md`).
//!
//! Requests to OAuth endpoints (by default `/token`, `/revoke`, `/introspect`,
//! `/authorize`; see [`oauth::Endpoints`]) become `AccessTokenIssued`, `TokenRevoked`,
//! `TokenIntrospected`, `AuthorizationGranted`, `LoginFailed`... events, read from their
//! bodies as they stream past; every other path is a protected route.
//!
//! Behind the queue, processors see every event once before the sinks: geo and ASN
//! enrichment (`geo`, cargo feature `geoip`), detection ([`detect`]), and the hash chain
//! ([`chain`]).
//!
//! # The request path
//!
//! The [`layer`] drives every request through these folders, in this order: `context`
//! captures what the request says about itself (time, ids, client address);
//! [`request_target`] gives one canonical reading of its path and method; [`token`]
//! inspects its bearer token; `resource` (protected routes) or [`oauth`] (endpoints, whose
//! bodies the `tee` copies as they stream) reads the exchange; [`scope`] records the route's
//! scope decision in the response; and `layer/event.rs` assembles the request's one
//! [`event::AuditEvent`] and offers it to the [`writer::Auditor`]'s queue. Each of these
//! reads only what the folders before it produced (and the [`event`] schema), never a later
//! one; only the layer knows them all. `tests/module_graph.rs` fails on any import cycle.

#![forbid(unsafe_code)]
#![warn(missing_docs)]
// docs.rs (and `scripts/test`) build the documentation with `--cfg docsrs` on nightly: every
// feature-gated item is then marked with the feature it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
pub mod chain;
#[cfg(feature = "config")]
pub mod config;
mod context;
pub mod delivery;
pub mod detect;
pub mod dpop;
mod error;
pub mod event;
mod file_lock;
mod file_owner;
pub mod format;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "geoip")]
pub mod geo;
pub mod json;
pub mod layer;
pub mod metric;
pub mod mtls;
mod no_follow;
pub mod oauth;
pub mod process;
#[cfg(feature = "report")]
pub mod report;
pub mod request_target;
mod resource;
#[cfg(any(feature = "jwks", feature = "http"))]
mod response_body;
pub mod scope;
mod secret_anchor;
mod secret_params;
mod sink;
mod tee;
mod text;
pub mod token;
pub mod writer;

/// The `jsonwebtoken` crate this one is built with, for what goes beyond
/// [`token::Algorithm`] (a `DecodingKey` of your own): its version need not match yours.
pub use jsonwebtoken;

pub use context::{
    ClientIpSource, PeerAddr, RequestId, RequestIdFrom, TrustedProxies, FORWARDING_HEADERS,
};

pub use error::ConfigError;
pub use layer::{AuditLayer, AuditLayerBuilder, AuditService, RequestBody, ResponseBody};
pub use resource::{AuditedToken, Presentation};
pub use scope::RequiredScopes;

/// The README's code blocks, compiled (and run, unless marked `no_run`) as doctests so they
/// cannot go stale; with every backend on, as `scripts/test` runs them.
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "config",
    feature = "geoip",
    feature = "http",
    feature = "jwks",
    feature = "nats",
    feature = "postgres"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
