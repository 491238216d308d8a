//! The [`AuditLayer`], its [`AuditService`], response future and body wrappers.
//!
//! One file per role: `layer.rs` (the layer and its builder), `mode.rs` (whether it resolves
//! opaque tokens: [`Direct`] or [`Resolving`]), `shared.rs` (the configuration every clone
//! shares), `service.rs` (captures the request, decides its role), `future.rs`
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
//!
//! # The inner service and `Clone`
//!
//! A layer without a token resolver ([`AuditLayer<Direct>`](Direct), what
//! [`AuditLayer::new`] and [`AuditLayer::builder`] make) calls the inner service at once, so
//! the service need not be `Clone`:
//!
//! ```
//! use std::convert::Infallible;
//!
//! use http::{Request, Response};
//! use oauth_audit::{writer::{Auditor, MemoryWriter}, AuditLayer, RequestBody};
//! use tower::{Layer, Service, ServiceExt};
//!
//! /// Counts its calls; not `Clone`.
//! struct Counter(u64);
//!
//! impl<B> Service<Request<RequestBody<B>>> for Counter {
//!     type Response = Response<String>;
//!     type Error = Infallible;
//!     type Future = std::future::Ready<Result<Response<String>, Infallible>>;
//!
//!     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
//!         std::task::Poll::Ready(Ok(()))
//!     }
//!
//!     fn call(&mut self, _: Request<RequestBody<B>>) -> Self::Future {
//!         self.0 += 1;
//!         std::future::ready(Ok(Response::new(self.0.to_string())))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let memory = MemoryWriter::new();
//! let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
//! let mut service = AuditLayer::new(auditor.clone()).layer(Counter(0));
//! let request = Request::get("/api/me").body(String::new()).unwrap();
//! let ready = ServiceExt::<Request<String>>::ready(&mut service).await.unwrap();
//! let response = ready.call(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # drop(response);
//! # auditor.shutdown().await;
//! # assert_eq!(memory.events().len(), 1);
//! # }
//! ```
//!
//! [`AuditLayerBuilder::token_resolver`] makes an [`AuditLayer<Resolving>`](Resolving): the
//! route runs once the resolver answered, with the inner service that was polled ready, so
//! the inner service must be `Clone` (Axum routers and `service_fn` over shared state are).
//! A service that is not does not compile under it:
//!
//! ```compile_fail
//! # use std::convert::Infallible;
//! # use http::{Request, Response};
//! # use oauth_audit::{token::TokenClaims, writer::Auditor, AuditLayer, RequestBody};
//! # use tower::{Layer, Service, ServiceExt};
//! # struct Counter(u64);
//! # impl<B> Service<Request<RequestBody<B>>> for Counter {
//! #     type Response = Response<String>;
//! #     type Error = Infallible;
//! #     type Future = std::future::Ready<Result<Response<String>, Infallible>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
//! #         std::task::Poll::Ready(Ok(()))
//! #     }
//! #     fn call(&mut self, _: Request<RequestBody<B>>) -> Self::Future {
//! #         std::future::ready(Ok(Response::new(String::new())))
//! #     }
//! # }
//! # async fn run() {
//! let layer = AuditLayer::builder(Auditor::stdout())
//!     .token_resolver(|_token: String| async { None::<TokenClaims> })
//!     .build()
//!     .unwrap();
//! let mut service = layer.layer(Counter(0));
//! // error: `Counter` is not `Clone`
//! let ready = ServiceExt::<Request<String>>::ready(&mut service).await.unwrap();
//! let _ = ready.call(Request::new(String::new())).await;
//! # }
//! ```
//!
//! Code that adds a resolver only under some condition keeps one type with
//! [`AuditLayerBuilder::resolving`], which makes a resolving layer with no resolver yet.

mod body;
mod event;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod mode;
mod pending;
mod service;
mod shared;

pub use body::{RequestBody, ResponseBody};
pub use future::ResponseFuture;
pub use layer::{AuditLayer, AuditLayerBuilder};
pub use mode::{Direct, Resolving};
pub use service::AuditService;

pub(crate) use shared::Shared;
