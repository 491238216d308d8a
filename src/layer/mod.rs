//! The [`AuditLayer`], its [`AuditService`], response future and body wrappers.
//!
//! One file per role: `layer.rs` (the layer and its builder), `shared.rs` (the configuration
//! every clone shares), `service.rs` (captures the request, decides its role), `future.rs`
//! (reads the response head), `body.rs` (the body wrappers that copy OAuth bodies and end
//! the event), `pending.rs` (the event waiting for its response) and `event.rs` (the one
//! place a request becomes an [`AuditEvent`](crate::event::AuditEvent)).
//!
//! ```
//! use axum::{routing::get, Router};
//! use oauth_audit::{writer::Auditor, AuditLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app: Router = Router::new()
//!     .route("/api/me", get(|| async { "me" }))
//!     .layer(AuditLayer::new(Auditor::stdout()));
//! # }
//! ```

mod body;
mod event;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod pending;
mod service;
mod shared;

pub use body::{RequestBody, ResponseBody};
pub use future::ResponseFuture;
pub use layer::{AuditLayer, AuditLayerBuilder};
pub use service::AuditService;

pub(crate) use shared::Shared;
