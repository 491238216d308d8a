//! What the layer captures about every request before the handler runs: arrival time,
//! method, route, path, request and trace ids, client address and user agent.
//!
//! Only what is read from the request lives here; the layer turns it into an event's
//! envelope (`layer/event.rs`).

mod carried;
mod client_ip;
pub(crate) mod forwarded;
mod ids;
#[cfg(feature = "opentelemetry")]
mod otel;
mod peer;
mod request;

pub(crate) use carried::{Carried, Header};
pub use client_ip::{ClientIpSource, TrustedProxies};
pub use forwarded::FORWARDING_HEADERS;
pub use ids::{RequestId, RequestIdFrom};
pub use peer::PeerAddr;
pub(crate) use peer::{original_uri, peer_ip};
pub(crate) use request::RequestContext;
