//! Protected routes: who presented which bearer token (`request.rs`), what the route's
//! `WWW-Authenticate` challenge said (`challenge.rs`), and the event fields a token gives
//! (`token_fields.rs`). The layer turns them into `ResourceAccessed` and `AccessDenied`
//! events (`layer/event.rs`).

mod binding;
mod challenge;
mod request;
mod token_fields;

pub use binding::Presentation;
pub(crate) use binding::{also_certificate, certificate_binding, key_binding};
#[cfg(feature = "fuzzing")]
pub use challenge::read_bearer_challenge;
pub(crate) use challenge::Challenge;
pub use request::AuditedToken;
pub(crate) use request::{proof_of, Inspectors, Presented, QueryToken, ResourceRequest};
pub(crate) use token_fields::{actor, details, token_parts};
