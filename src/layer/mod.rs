//! The [`AuditLayer`], its [`AuditService`], response future and body wrappers.
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
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod pending;
mod service;
pub(crate) mod tee;

pub use body::{RequestBody, ResponseBody};
pub use future::ResponseFuture;
pub use layer::{AuditLayer, AuditLayerBuilder};
pub use service::AuditService;

use crate::context::TrustedProxies;
use std::sync::Arc;

use crate::oauth::Endpoints;
use crate::token::{TokenInspector, TokenResolver};
use crate::writer::Auditor;

/// Configuration shared by every clone of the layer and its services.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) auditor: Auditor,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) inspector: TokenInspector,
    pub(crate) skip_paths: Vec<String>,
    pub(crate) resolver: Option<Arc<dyn TokenResolver>>,
    pub(crate) endpoints: Endpoints,
}

impl std::fmt::Debug for dyn TokenResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenResolver")
    }
}

impl Shared {
    fn skips(&self, path: &str) -> bool {
        self.skip_paths.iter().any(|p| p == path)
    }
}
