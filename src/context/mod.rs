//! What the layer captures about every request before the handler runs: arrival time,
//! method, route, path, request and trace ids, client address and user agent.

mod client_ip;
pub(crate) mod forwarded;
mod ids;
mod peer;

use std::time::Instant;

pub use client_ip::{ClientIpSource, TrustedProxies, FORWARDING_HEADERS};
pub use peer::PeerAddr;

use crate::event::{sanitize, Source, Timestamp};

/// `source.user_agent` is cut to this many bytes.
const MAX_USER_AGENT: usize = 512;

/// The request as the audit record needs it, captured when the request arrives.
#[derive(Clone, Debug)]
pub(crate) struct RequestContext {
    pub(crate) time: Timestamp,
    pub(crate) started: Instant,
    pub(crate) method: http::Method,
    pub(crate) route: Option<String>,
    pub(crate) path: String,
    pub(crate) request_id: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) source: Source,
}

impl RequestContext {
    pub(crate) fn capture<B>(request: &http::Request<B>, trusted: &TrustedProxies) -> Self {
        let resolved = trusted.resolve(peer::peer_ip(request.extensions()), request.headers());
        let user_agent = request
            .headers()
            .get(http::header::USER_AGENT)
            .map(|ua| sanitize(&String::from_utf8_lossy(ua.as_bytes()), MAX_USER_AGENT));
        RequestContext {
            time: Timestamp::now(),
            started: Instant::now(),
            method: request.method().clone(),
            route: peer::matched_route(request.extensions()),
            path: sanitize(request.uri().path(), 2048),
            request_id: ids::request_id(request.headers()),
            trace_id: ids::trace_id(request.headers()),
            source: Source {
                ip: resolved.ip,
                forwarded_for: resolved.forwarded_for,
                forwarded_headers: resolved.forwarded_headers,
                user_agent,
            },
        }
    }
}

/// What the audit record needs of the response head.
#[derive(Debug, Default)]
pub(crate) struct ResponseContext {
    pub(crate) status: Option<http::StatusCode>,
    /// `error` and `error_description` of a `WWW-Authenticate: Bearer` challenge.
    pub(crate) challenge: Option<crate::resource::Challenge>,
    /// The scope decision a `RequiredScopes` layer made for the route.
    pub(crate) scopes: Option<crate::scope::ScopeDecision>,
    /// OAuth endpoints only: the `Location` and content type, read when the head arrives.
    pub(crate) oauth: Option<crate::oauth::ResponseHead>,
    /// An error the inner service described in the response's extensions.
    pub(crate) error: Option<crate::event::ErrorInfo>,
}

impl RequestContext {
    /// A new event of `kind` carrying this request's envelope, `http` and `source` fields.
    pub(crate) fn into_event(
        self,
        service: std::sync::Arc<crate::event::ServiceInfo>,
        kind: crate::event::EventKind,
        outcome: crate::event::Outcome,
        response: Option<&ResponseContext>,
        duration: std::time::Duration,
    ) -> crate::event::AuditEvent {
        let mut event = crate::event::AuditEvent::new(service, self.time, kind, outcome);
        event.request_id = Some(self.request_id);
        event.trace_id = self.trace_id;
        event.http = Some(crate::event::HttpInfo {
            method: self.method.as_str().to_owned(),
            route: self.route,
            path: self.path,
            status: response.and_then(|r| r.status).map(|s| s.as_u16()),
            duration_ms: duration.as_secs_f64() * 1000.0,
        });
        event.source = Some(self.source);
        event
    }
}
