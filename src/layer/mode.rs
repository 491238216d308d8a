//! Whether the layer resolves opaque tokens before the route runs: the type parameter of
//! [`AuditLayer`](super::AuditLayer), [`AuditLayerBuilder`](super::AuditLayerBuilder) and
//! [`AuditService`](super::AuditService).
//!
//! A resolver answers asynchronously, and the route must run after it answered (so that
//! handlers and [`RequiredScopes`](crate::RequiredScopes) see the resolved claims): the
//! service that was polled ready then travels with the request and a clone of the inner
//! service takes its place, as in tower-http's `AsyncRequireAuthorization`. Only that needs
//! the inner service to be `Clone`, so only a layer that may resolve asks for it.

/// The layer calls the inner service at once: no token resolver is configured, and the
/// inner service need not be `Clone`. What [`AuditLayer::new`](super::AuditLayer::new) and
/// [`AuditLayer::builder`](super::AuditLayer::builder) make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Direct;

/// The layer may resolve an opaque token before it calls the inner service, which must be
/// `Clone`. What [`AuditLayerBuilder::token_resolver`](super::AuditLayerBuilder::token_resolver)
/// and [`AuditLayerBuilder::resolving`](super::AuditLayerBuilder::resolving) make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resolving;
