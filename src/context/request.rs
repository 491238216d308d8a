//! The request as the audit record needs it, captured when the request arrives.

use std::sync::Arc;
use std::time::Instant;

use super::carried::{Carried, Header};
use super::client_ip::TrustedProxies;
use super::ids::{RequestId, RequestIdFrom};
use super::{ids, peer};
use crate::event::{AuditEvent, CompactString, Source, Timestamp};
use crate::text::{lossy, sanitize_compact, sanitize_into};

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
    /// An event a sink handed back, for this request's event to be made in (its `source`
    /// already taken, to hold this request's): `None` when there was none to take.
    pub(crate) recycled: Option<Arc<AuditEvent>>,
}

impl RequestContext {
    /// The context of `request`, whose target `path` is the one the client sent (see
    /// [`original_uri`](super::original_uri)). `recycled` is an event a sink handed back,
    /// whose `source` buffers take this request's (see [`event::recycle`](crate::event)).
    pub(crate) fn capture<B>(
        request: &http::Request<B>,
        path: &str,
        trusted: &TrustedProxies,
        request_id_from: RequestIdFrom,
        mut recycled: Option<Arc<AuditEvent>>,
    ) -> Self {
        let headers = request.headers();
        let carried = trusted.carried(headers);
        let peer = peer::peer_ip(request.extensions());
        // The source of the event before, overwritten field by field below (every field
        // named, so none is forgotten): only its allocations are kept.
        let mut source = recycled
            .as_mut()
            .and_then(Arc::get_mut)
            .and_then(|event| event.source.take())
            .unwrap_or_default();
        let Source {
            r#as,
            forwarded_for,
            forwarded_headers,
            geo,
            ip,
            user_agent,
        } = &mut source;
        *r#as = None;
        *geo = None;
        *ip = trusted.resolve_into(peer, headers, carried, forwarded_for, forwarded_headers);
        match carried.get(headers, Header::UserAgent) {
            Some(value) => sanitize_into(
                user_agent.get_or_insert_with(String::new),
                &lossy(value.as_bytes()),
                MAX_USER_AGENT,
            ),
            None => *user_agent = None,
        }
        // An id in two fields was appended to, not set (a front proxy that adds its own after
        // the client's): neither is believed, as for a single-value address header.
        let request_id_header = match request_id_from {
            RequestIdFrom::AnyClient => carried.only(headers, Header::XRequestId),
            RequestIdFrom::TrustedProxies if peer.is_some_and(|ip| trusted.contains(ip)) => {
                carried.only(headers, Header::XRequestId)
            }
            _ => None,
        };
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
            source: Some(source),
            carried,
            recycled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AutonomousSystem, EventKind, Geo, Outcome, ServiceInfo};

    /// An event a sink handed back, its source holding every field.
    fn handed_back() -> Arc<AuditEvent> {
        let mut event = AuditEvent::new(
            Arc::new(ServiceInfo {
                name: "before".into(),
                instance: None,
            }),
            Timestamp::now(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        );
        let geo = Geo {
            city: Some("Lyon".into()),
            ..Geo::default()
        };
        event.source = Some(Source {
            r#as: Some(AutonomousSystem::new(64_500, Some("Example".into()))),
            forwarded_for: (0..40).map(|i| format!("192.0.2.{i}")).collect(),
            forwarded_headers: [
                ("x-forwarded-host", "before.example"),
                ("x-forwarded-proto", "http"),
                ("x-real-ip", "192.0.2.77"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
            geo: Some(Box::new(geo)),
            ip: Some("192.0.2.1".parse().unwrap()),
            user_agent: Some("before/1.0 ".repeat(40)),
        });
        Arc::new(event)
    }

    fn request(headers: &[(&str, &str)], peer: &str) -> http::Request<()> {
        let mut request = http::Request::builder().uri("/api/orders");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
                format!("{peer}:4000").parse().unwrap(),
            ));
        request
    }

    /// Captured into the source of an event a sink handed back, a request's source is the
    /// one captured afresh, whatever of the old one its own headers leave unset.
    #[test]
    fn a_source_captured_into_a_recycled_one_keeps_nothing_of_it() {
        let trusted = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let requests = [
            request(&[], "203.0.113.7"),
            request(&[("user-agent", "curl/8.5")], "203.0.113.7"),
            request(
                &[
                    ("user-agent", "Mozilla/5.0\t(é)"),
                    ("x-forwarded-for", "198.51.100.4, 10.0.0.9"),
                    ("x-forwarded-proto", "https"),
                ],
                "10.0.0.2",
            ),
            request(&[("forwarded", "for=198.51.100.5")], "10.0.0.2"),
        ];
        for request in &requests {
            let capture = |recycled| {
                RequestContext::capture(
                    request,
                    "/api/orders",
                    &trusted,
                    RequestIdFrom::TrustedProxies,
                    recycled,
                )
            };
            let fresh = capture(None).source;
            let mut reused = capture(Some(handed_back()));
            assert_eq!(reused.source, fresh);
            // The event goes on to be made in the recycled allocation, its source taken.
            let recycled = reused.recycled.take().expect("the event is held");
            assert!(recycled.source.is_none());
        }
    }
}
