//! The auditing reverse proxy: accepts connections (plain or TLS) within its limits, runs
//! each request through the audit layer and the forwarder, and shuts down gracefully.

mod connection;
mod forward;
mod headers;
mod send_timeout;
mod serve;
mod served_body;
mod stalled_stream;
mod timed_body;
pub mod tls;
mod tunnel;
mod upstream;

pub use forward::{Forward, Protected, DEFAULT_BODY_TIMEOUT, DEFAULT_UPSTREAM_IDLE_TIMEOUT};
pub use serve::{serve, Limits};
pub use tunnel::DEFAULT_TUNNEL_IDLE_TIMEOUT;
