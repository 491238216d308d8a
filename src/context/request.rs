//! The request as the audit record needs it, captured when the request arrives.

use std::time::Instant;

use super::carried::{Carried, Header};
use super::client_ip::TrustedProxies;
use super::forwarded::{FORWARDING_HEADERS, MAX_HEADER_LEN, MAX_HOPS, MAX_HOP_LEN};
use super::ids::{RequestId, RequestIdFrom};
use super::{ids, peer};
use crate::event::{CompactString, Source, Timestamp};
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
}

impl RequestContext {
    /// The context of `request`, whose target `path` is the one the client sent (see
    /// [`original_uri`](super::original_uri)). `recycled` is the source of an event a sink
    /// handed back, whose buffers take this request's (see [`event::recycle`](crate::event)).
    pub(crate) fn capture<B>(
        request: &http::Request<B>,
        path: &str,
        trusted: &TrustedProxies,
        request_id_from: RequestIdFrom,
        recycled: impl FnOnce() -> Option<Source>,
    ) -> Self {
        let headers = request.headers();
        let carried = trusted.carried(headers);
        let peer = peer::peer_ip(request.extensions());
        // The source of the event before, overwritten field by field below (every field
        // named, so none is forgotten): only its allocations are kept, and only those no
        // larger than a request's source needs. Taken only for a request with forwarding
        // headers, whose chain and recorded headers are several allocations: for a user agent
        // alone, the recycler's two operations cost about what its one allocation does.
        let mut source = if carried.any_forwarding() {
            recycled().filter(fits).unwrap_or_default()
        } else {
            Source::default()
        };
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
        }
    }
}

/// Whether the buffers of `source` are no larger than those of a source captured from a
/// request (an event an application emits may hold a chain, text or names of any size):
/// kept, they would go round with every event made in them after, never freed. Sanitising
/// may leave up to twice the text's bound and an escape in a buffer (so four times, for
/// every bound here); a request's chain never held more than [`MAX_HOPS`] hops, nor its map
/// more names than there are forwarding headers and the configured one.
fn fits(source: &Source) -> bool {
    let within = |text: &String, bound: usize| text.capacity() <= 4 * bound;
    source.forwarded_for.capacity() <= MAX_HOPS
        && source
            .forwarded_for
            .iter()
            .all(|hop| within(hop, MAX_HOP_LEN))
        && source
            .user_agent
            .as_ref()
            .is_none_or(|ua| within(ua, MAX_USER_AGENT))
        && source.forwarded_headers.len() <= FORWARDING_HEADERS.len() + 1
        && source
            .forwarded_headers
            .iter()
            .all(|(name, value)| within(name, MAX_HEADER_LEN) && within(value, MAX_HEADER_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AutonomousSystem, Geo};
    use proptest::prelude::*;

    /// The source of an event a sink handed back, holding every field.
    fn handed_back() -> Source {
        let geo = Geo {
            city: Some("Lyon".into()),
            ..Geo::default()
        };
        Source {
            r#as: Some(AutonomousSystem::new(64_500, Some("Example".into()))),
            forwarded_for: (0..20).map(|i| format!("192.0.2.{i}")).collect(),
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
        }
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
                    move || recycled,
                )
            };
            let fresh = capture(None).source;
            let before = handed_back();
            assert!(fits(&before), "its buffers are reused");
            assert_eq!(capture(Some(before)).source, fresh);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Captured into any source an event held (one an application emitted may hold
        /// anything: a hundred hops, names in any case or script, geo), then into what each
        /// request before left, under any configuration, a request's source is the one
        /// captured afresh.
        #[test]
        fn a_source_captured_into_any_other_is_the_one_captured_afresh(
            before in (
                proptest::collection::vec(".{0,80}", 0..100),
                proptest::collection::btree_map(
                    proptest::prop_oneof![
                        proptest::sample::select(FORWARDING_HEADERS.to_vec()).prop_map(str::to_owned),
                        proptest::sample::select(FORWARDING_HEADERS.to_vec())
                            .prop_map(|name| name.to_ascii_uppercase()),
                        ".{0,20}",
                    ],
                    ".{0,300}",
                    0..24,
                ),
                proptest::option::of(".{0,600}"),
                proptest::arbitrary::any::<bool>(),
            ),
            requests in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        (
                            0usize..10,
                            proptest::collection::vec(
                                proptest::prop_oneof![0x20u8..0x7f, 0x80u8..=0xff, proptest::strategy::Just(b',')],
                                0..120,
                            ),
                        ),
                        0..8,
                    ),
                    0usize..4,
                    0usize..3,
                ),
                1..4,
            ),
        ) {
            let (chain, headers, user_agent, located) = before;
            let mut kept = Some(Source {
                r#as: located.then(|| AutonomousSystem::new(64_500, Some("Example".into()))),
                forwarded_for: chain,
                forwarded_headers: headers,
                geo: located.then(|| Box::new(Geo::default())),
                ip: Some("192.0.2.1".parse().unwrap()),
                user_agent,
            });
            let names = [
                "user-agent", "x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host",
                "x-forwarded-proto", "fly-client-addr", "x-request-id", "traceparent", "host",
            ];
            for (lines, source, peer) in requests {
                let mut request = http::Request::builder().uri("/api/orders").body(()).unwrap();
                for (name, value) in lines {
                    request.headers_mut().append(
                        http::HeaderName::from_static(names[name]),
                        http::HeaderValue::from_bytes(&value).unwrap(),
                    );
                }
                let peer = ["10.0.0.2", "203.0.113.7", "::ffff:10.0.0.3"][peer];
                request.extensions_mut().insert(axum::extract::ConnectInfo::<std::net::SocketAddr>(
                    std::net::SocketAddr::new(peer.parse().unwrap(), 4000),
                ));
                let trusted = TrustedProxies::new(["10.0.0.0/8"])
                    .unwrap()
                    .source(["x-forwarded-for", "forwarded", "x-real-ip", "fly-client-addr"][source].parse().unwrap());
                let capture = |recycled| {
                    RequestContext::capture(&request, "/api/orders", &trusted, RequestIdFrom::TrustedProxies, move || recycled)
                        .source
                };
                let fresh = capture(None);
                let reused = capture(kept.take());
                proptest::prop_assert_eq!(&reused, &fresh);
                // A request's own source is always one the next request reuses.
                proptest::prop_assert!(reused.as_ref().is_some_and(fits));
                kept = reused;
            }
        }
    }
}
