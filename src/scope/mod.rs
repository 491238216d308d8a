//! Per-route scope usage: which scopes a route requires, which of the token's scopes
//! satisfied it, and (optionally) enforcement with RFC 6750 errors.
//!
//! Put [`RequiredScopes`] on a route *inside* the [`AuditLayer`](crate::AuditLayer); every
//! event of that route then carries `scopes.required` and `scopes.used`.
//!
//! ```
//! use axum::{routing::get, Router};
//! use oauth_audit::{AuditLayer, RequiredScopes};
//! use oauth_audit::writer::{Auditor, MemoryWriter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let auditor = Auditor::new(MemoryWriter::new());
//! let app: Router = Router::new()
//!     // audit only: the handler runs either way, the event records the decision
//!     .route("/orders", get(|| async { "orders" }).route_layer(RequiredScopes::all(["orders:read"])))
//!     // enforcing: 401 without a valid token, 403 insufficient_scope without the scope
//!     .route("/admin", get(|| async { "admin" }).route_layer(RequiredScopes::all(["admin"]).enforce()))
//!     .layer(AuditLayer::new(auditor));
//! # }
//! ```

mod decision;
mod future;
mod layer;

pub use decision::{Match, ScopeDecision};
pub use future::RequiredScopesFuture;
pub use layer::{RequiredScopes, RequiredScopesService};
