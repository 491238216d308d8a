//! The request as the audit record needs it, captured when the request arrives.

use std::time::Instant;

use super::carried::{Carried, Header};
use super::client_ip::TrustedProxies;
use super::ids::{RequestId, RequestIdFrom};
use super::{ids, peer};
use crate::event::{sanitize, CompactString, Source, Timestamp};
use crate::text::{lossy, sanitize_compact};

/// The trace (and span) the request belongs to: the current span's OpenTelemetry context
/// when the service traces with it (feature `opentelemetry`), else the trace id of a
/// `traceparent` header.
fn trace(traceparent: Option<&http::HeaderValue>) -> (Option<String>, Option<String>) {
    #[cfg(feature = "opentelemetry")]
    if let Some((trace, span)) = super::otel::current_span() {
        return (Some(trace), Some(span));
    }
    (ids::trace_id(traceparent), None)
}

/// `source.user_agent` is cut to this many bytes.
const MAX_USER_AGENT: usize = 512;

/// The request as the audit record needs it, captured when the request arrives.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    pub(crate) time: Timestamp,
    pub(crate) started: Instant,
    pub(crate) method: http::Method,
    pub(crate) route: Option<CompactString>,
    pub(crate) path: CompactString,
    pub(crate) request_id: RequestId,
    pub(crate) trace_id: Option<String>,
    pub(crate) span_id: Option<String>,
    /// `Some` until the event takes it: taken, it leaves nothing behind to build or drop.
    pub(crate) source: Option<Source>,
    /// Which of the headers the layer reads the request has.
    pub(crate) carried: Carried,
}

impl RequestContext {
    /// The context of `request`, whose target `path` is the one the client sent (see
    /// [`original_uri`](super::original_uri)).
    pub(crate) fn capture<B>(
        request: &http::Request<B>,
        path: &str,
        trusted: &TrustedProxies,
        request_id_from: RequestIdFrom,
    ) -> Self {
        let headers = request.headers();
        let carried = trusted.carried(headers);
        let peer = peer::peer_ip(request.extensions());
        let resolved = trusted.resolve(peer, headers, carried);
        // An id in two fields was appended to, not set (a front proxy that adds its own after
        // the client's): neither is believed, as for a single-value address header.
        let request_id_header = match request_id_from {
            RequestIdFrom::AnyClient => carried.only(headers, Header::XRequestId),
            RequestIdFrom::TrustedProxies if peer.is_some_and(|ip| trusted.contains(ip)) => {
                carried.only(headers, Header::XRequestId)
            }
            _ => None,
        };
        let user_agent = carried
            .get(headers, Header::UserAgent)
            .map(|ua| sanitize(&lossy(ua.as_bytes()), MAX_USER_AGENT));
        // Two `traceparent` fields make the request's trace context invalid (the W3C Trace
        // Context test suite's `test_traceparent_duplicated`): neither names its trace.
        let (trace_id, span_id) = trace(carried.only(headers, Header::Traceparent));
        let time = Timestamp::now();
        RequestContext {
            time,
            started: Instant::now(),
            method: request.method().clone(),
            route: peer::matched_route(request.extensions()),
            path: sanitize_compact(path, 2048),
            request_id: ids::request_id(request_id_header, time),
            trace_id,
            span_id,
            // Every field named: a default's fields left over would be built and dropped.
            source: Some(Source {
                ip: resolved.ip,
                forwarded_for: resolved.forwarded_for,
                forwarded_headers: resolved.forwarded_headers,
                user_agent,
                r#as: None,
                geo: None,
            }),
            carried,
        }
    }
}
