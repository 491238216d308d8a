//! The service inside the audit layer: forwards each request to the upstream, streaming
//! bodies both ways, and answers `502` itself when the upstream cannot be reached.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use oauth_audit::event::{error_code, ErrorInfo};
use oauth_audit::oauth::Endpoints;
use oauth_audit::request_target::{method_overrides, CanonicalPath};
use oauth_audit::scope::RequiredScopesFuture;
use oauth_audit::{PeerAddr, RequestBody, RequestId, TrustedProxies};
use tower::{Layer, Service};

use super::headers::{
    add_forwarding, join_cookie_fields, remove_hop_by_hop, remove_path_overrides,
    remove_underscore_spellings, upgrades_to_websocket, wants_upgrade, Client as ForwardedClient,
};
use super::timed_body::{is_body_timeout, is_client_body_error, TimedBody};
use super::tunnel::{self, DEFAULT_TUNNEL_IDLE_TIMEOUT};
use super::upstream::{Upstream, UpstreamError};
use crate::config::{AllowedHost, UpstreamUrl};
use crate::routes::{Decision, PathCase, ScopeRules};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const IDENTITY: HeaderValue = HeaderValue::from_static("identity");

/// How long an upstream connection may stay without a request (`proxy.upstream_idle_timeout`).
pub const DEFAULT_UPSTREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a request body may send nothing (`proxy.body_timeout`).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The body of every response the proxy sends.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The body of the requests the forwarder receives from the audit layer.
pub type ForwardBody = RequestBody<Incoming>;

/// Forwards requests to one upstream.
///
/// Cloned for every request (a tower service is called by value): everything it holds is
/// behind one `Arc`, so a clone is one reference count, not a copy of the connections'
/// handles and the TLS connector's.
#[derive(Clone, Debug)]
pub struct Forward {
    inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    connections: Upstream<TimedBody<ForwardBody>>,
    upstream: UpstreamUrl,
    /// How long a request body may send nothing before the request is given up.
    body_timeout: Duration,
    /// How long a WebSocket tunnel may carry nothing before it is closed.
    tunnel_idle_timeout: Duration,
    preserve_host: bool,
    /// The `Host` of requests to the upstream when the client's is not preserved (or the
    /// client sent none): its host, and its port unless the scheme's default.
    upstream_host: Option<HeaderValue>,
    trusted: TrustedProxies,
    /// How clients reach this proxy (`http`, or `https` on a TLS listener), for the upstream.
    scheme: &'static str,
    /// The header trusted proxies pass a client certificate in: removed from anyone else's
    /// requests, as the upstream may believe this proxy's.
    certificate_header: Option<HeaderName>,
    /// The header this proxy passes the TLS client certificate in (URL-encoded PEM).
    forward_certificate: Option<HeaderName>,
    /// The hosts requests may name (`proxy.allowed_hosts`); any when empty.
    allowed_hosts: Vec<AllowedHost>,
    /// The OAuth endpoints, whose answers the layer reads.
    endpoints: Endpoints,
}

/// The DER of the client certificate of the TLS connection a request came on.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<[u8]>);

/// The place under `max_connections` of the client connection a request came on. A request
/// whose connection becomes a WebSocket tunnel keeps it for as long as the tunnel is open:
/// the connection is then the tunnel's, and holds an upstream connection too.
#[derive(Clone, Debug)]
pub struct ConnectionSlot {
    /// Held, never read: the place is given back when the last holder drops it.
    _permit: Arc<tokio::sync::OwnedSemaphorePermit>,
}

impl ConnectionSlot {
    /// The place `permit` holds, to be shared by the connection and its requests.
    pub fn new(permit: tokio::sync::OwnedSemaphorePermit) -> Self {
        ConnectionSlot {
            _permit: Arc::new(permit),
        }
    }
}

impl Forward {
    /// A forwarder with kept-alive connections to `upstream`; the forwarding headers of
    /// peers in `trusted` are kept and appended to, those of other peers replaced; an
    /// `https` upstream is verified with `tls`. `tls_listener` says whether clients reach
    /// the proxy over TLS, as `X-Forwarded-Proto` and `Forwarded: proto=` tell the upstream.
    pub fn new(
        upstream: UpstreamUrl,
        connect_timeout: Duration,
        preserve_host: bool,
        trusted: TrustedProxies,
        tls: rustls::ClientConfig,
        tls_listener: bool,
    ) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        // What the connector dials. Built from parts already parsed, so it cannot fail; the
        // default ("/") would make every request a 502 naming the missing scheme.
        let origin = Uri::builder()
            .scheme(upstream.scheme.clone())
            .authority(upstream.authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default();
        Forward {
            inner: Arc::new(Inner {
                connections: Upstream::new(connector, origin, DEFAULT_UPSTREAM_IDLE_TIMEOUT),
                upstream_host: host_field(&upstream),
                upstream,
                body_timeout: DEFAULT_BODY_TIMEOUT,
                tunnel_idle_timeout: DEFAULT_TUNNEL_IDLE_TIMEOUT,
                preserve_host,
                trusted,
                scheme: if tls_listener { "https" } else { "http" },
                certificate_header: None,
                forward_certificate: None,
                allowed_hosts: Vec::new(),
                endpoints: Endpoints::none(),
            }),
        }
    }

    /// The OAuth endpoints the layer audits (`[endpoints]`): their requests ask the upstream
    /// for an answer without a content coding (`Accept-Encoding: identity`), as the layer
    /// reads token, introspection and error answers as they come. A client that asked for
    /// `gzip` from an upstream that compresses JSON would otherwise have had its tokens
    /// issued with no fingerprint, scope or expiry in the event.
    pub fn oauth_endpoints(mut self, endpoints: Endpoints) -> Self {
        Arc::make_mut(&mut self.inner).endpoints = endpoints;
        self
    }

    /// Gives up a request whose client sent no part of its body for `timeout` (default
    /// 60 s): the client gets `408` (the upstream's request is abandoned), the event
    /// `error.code: "request_timeout"`.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.inner).body_timeout = timeout;
        self
    }

    /// Closes a WebSocket tunnel through which no byte passed either way for `timeout`
    /// (default 5 minutes): a client that vanished without closing would otherwise hold its
    /// place under `max_connections` and an upstream connection for good.
    pub fn tunnel_idle_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.inner).tunnel_idle_timeout = timeout;
        self
    }

    /// Refuses (`421`) a request whose `Host`, or target's authority, is none of `hosts`
    /// (any host when empty): an upstream that builds URLs from `Host` or
    /// `X-Forwarded-Host` (an issuer, a redirect) then never sees a name a client chose.
    pub fn allowed_hosts(mut self, hosts: Vec<AllowedHost>) -> Self {
        Arc::make_mut(&mut self.inner).allowed_hosts = hosts;
        self
    }

    /// Closes an idle upstream connection after `timeout` without a request (at the
    /// earliest a second before it, or after half of it when that is shorter; default
    /// 60 s). Below the upstream's own keep-alive
    /// timeout, the proxy rather than the upstream closes idle connections, so no request
    /// meets a connection the upstream is closing at that moment.
    pub fn upstream_idle_timeout(mut self, timeout: Duration) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.connections = inner.connections.with_idle_timeout(timeout);
        self
    }

    /// `certificate_header`: the header trusted proxies pass the client certificate in,
    /// dropped from other peers' requests. `forward`: the header this proxy writes the TLS
    /// client certificate into for the upstream (URL-encoded PEM, as nginx's
    /// `$ssl_client_escaped_cert`); whatever a client sent in it is dropped.
    pub fn client_certificate_headers(
        mut self,
        certificate_header: Option<HeaderName>,
        forward: Option<HeaderName>,
    ) -> Self {
        let inner = Arc::make_mut(&mut self.inner);
        inner.certificate_header = certificate_header;
        inner.forward_certificate = forward;
        self
    }
}

/// Why the request names no single host (for the event): more than one `Host` field (RFC
/// 9112 §3.2: a server answers `400`; the upstream would get one while the proxy checked
/// another), or a `Host` field or target authority with user information
/// (`evil.example:x@idp.example`): RFC 9110 §7.2 allows `host[:port]` only, and §4.2.4 has
/// recipients treat user information in an `http` URI as an error. The host after the `@` is
/// the one `allowed_hosts` would check, while an upstream may take the text before it for
/// the host, in the links it builds.
///
/// The reason shows the host without its user information (`…@idp.example`), as
/// [`shown_url`](oauth_audit::event::shown_url) shows URLs: it may be a password
/// (`http://alice:secret@idp.example/token`), and the reason becomes the event's
/// `error.description`.
fn bad_host(uri: &Uri, headers: &http::HeaderMap) -> Option<String> {
    let shown = |text: &[u8]| {
        let shown = oauth_audit::event::shown_url(&String::from_utf8_lossy(text));
        oauth_audit::event::sanitize(&shown, 256)
    };
    let mut fields = headers.get_all(header::HOST).iter();
    if let Some(field) = fields.next() {
        if fields.next().is_some() {
            return Some("the request has more than one Host field".to_owned());
        }
        if field.as_bytes().contains(&b'@') {
            return Some(format!(
                "the Host field {:?} carries user information: a host is host[:port]",
                shown(field.as_bytes())
            ));
        }
        if Authority::try_from(field.as_bytes()).is_ok_and(|a| !port_is_digits(&a)) {
            return Some(format!(
                "the Host field {:?} has a port that is not a number: a host is host[:port]",
                shown(field.as_bytes())
            ));
        }
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') {
        return Some(format!(
            "the request target's authority {:?} carries user information: a host is host[:port]",
            shown(authority.as_str().as_bytes())
        ));
    }
    (!port_is_digits(authority)).then(|| {
        format!(
            "the request target's authority {:?} has a port that is not a number: a host is host[:port]",
            shown(authority.as_str().as_bytes())
        )
    })
}

/// Whether what follows the host of `authority`, if anything, is `:` and digits (RFC 3986
/// §3.2.3: `port = *DIGIT`). `http` takes any text after the colon for a port, and
/// `Authority::port` reads none from `80,evil.example`: the host, `auth.example`, would pass
/// an `allowed_hosts` entry without a port, while the upstream was told the whole text, a
/// list of two hosts to readers of `X-Forwarded-Host` that take its last one (Rack).
fn port_is_digits(authority: &Authority) -> bool {
    let after_host = &authority.as_str()[authority.host().len()..];
    after_host
        .strip_prefix(':')
        .is_none_or(|port| port.bytes().all(|b| b.is_ascii_digit()))
}

impl Inner {
    /// With `allowed_hosts`, why the request is for another host (for the event), if it
    /// is: its `Host` field and its target's authority (an absolute-form target, or
    /// HTTP/2's `:authority`), each when there, must be allowed, and one must be there.
    fn misdirected(&self, uri: &Uri, headers: &http::HeaderMap) -> Option<String> {
        if self.allowed_hosts.is_empty() {
            return None;
        }
        let allowed =
            |authority: &Authority| self.allowed_hosts.iter().any(|h| h.matches(authority));
        let refused = |text: &str| {
            let shown = oauth_audit::event::sanitize(text, 256);
            Some(format!("host {shown:?} is not one of proxy.allowed_hosts"))
        };
        let field = headers.get(header::HOST);
        if let Some(field) = field {
            match Authority::try_from(field.as_bytes()) {
                Ok(authority) if allowed(&authority) => {}
                _ => return refused(&String::from_utf8_lossy(field.as_bytes())),
            }
        }
        match uri.authority() {
            Some(authority) if !allowed(authority) => refused(authority.as_str()),
            None if field.is_none() => {
                Some("the request names no host, and proxy.allowed_hosts is set".to_owned())
            }
            _ => None,
        }
    }

    /// The request target for the upstream: the client's path and query under the
    /// upstream's base path, in origin form (`/path?query`).
    fn upstream_target(&self, uri: &Uri) -> Result<Uri, http::Error> {
        let path_and_query = match uri.path_and_query() {
            // Shared, not parsed again.
            Some(path_and_query) if self.upstream.base_path.is_empty() => path_and_query.clone(),
            path_and_query => {
                let path_and_query = path_and_query.map_or("/", PathAndQuery::as_str);
                let base = &self.upstream.base_path;
                let mut target = String::with_capacity(base.len() + path_and_query.len());
                target.push_str(base);
                target.push_str(path_and_query);
                PathAndQuery::try_from(target)?
            }
        };
        Ok(Uri::from(path_and_query))
    }

    /// Everything the forwarder does before the upstream is involved, all of it
    /// synchronous: the checks that answer the request here (`Err`), and the request
    /// rewritten for the upstream. Kept out of the future that awaits the upstream, which
    /// every request allocates and moves, so that the future holds the request once (an
    /// `async fn` keeps its argument and the local it becomes apart, for each step).
    #[expect(
        clippy::result_large_err,
        reason = "the answer is smaller than the prepared request, and made only on refusals"
    )]
    fn prepare(&self, mut req: Request<ForwardBody>) -> Result<Prepared, Response<ProxyBody>> {
        // A tunnel through the upstream would carry traffic no event records (and hyper
        // answers a tunnel nobody takes up with nothing at all).
        if req.method() == Method::CONNECT {
            return Err(failure(
                StatusCode::NOT_IMPLEMENTED,
                error_code::NOT_IMPLEMENTED,
                "CONNECT asks for a tunnel, which this reverse proxy does not open".to_owned(),
            ));
        }
        if req.version() == Version::HTTP_2 {
            if let Some(name) = field_with_blank_ends(req.headers()) {
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    error_code::BAD_REQUEST,
                    format!(
                        "the HTTP/2 field {:?} has a value that starts or ends with whitespace, which makes the request malformed (RFC 9113 §8.2.1)",
                        oauth_audit::event::sanitize(name.as_str(), 64)
                    ),
                ));
            }
        }
        if let Some(codings) = transfer_codings_besides_chunked(req.headers()) {
            return Err(failure(
                StatusCode::NOT_IMPLEMENTED,
                error_code::NOT_IMPLEMENTED,
                format!(
                    "the request body has the transfer coding {codings:?}, of which this proxy decodes only one chunked"
                ),
            ));
        }
        let upgrade = wants_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let slot = upgrade
            .then(|| req.extensions_mut().remove::<ConnectionSlot>())
            .flatten();
        let client = req
            .extensions()
            .get::<PeerAddr>()
            .map(|&PeerAddr(peer)| ForwardedClient {
                peer,
                trusted_peer: self.trusted.contains(peer.ip()),
                ip: self.trusted.client_ip(peer.ip(), req.headers()),
            });
        // The target's authority (an absolute-form target, HTTP/2's `:authority`) names the
        // host the request is for, whatever a `Host` field says (RFC 9112 §3.2.2), as the
        // layer reads it too (a DPoP proof's `htu`); else the `Host` field.
        let host = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            .or_else(|| req.headers().get(header::HOST).cloned());
        if let Some(reason) = bad_host(req.uri(), req.headers()) {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                error_code::BAD_REQUEST,
                reason,
            ));
        }
        if let Some(reason) = self.misdirected(req.uri(), req.headers()) {
            return Err(failure(
                StatusCode::MISDIRECTED_REQUEST,
                error_code::MISDIRECTED_REQUEST,
                reason,
            ));
        }
        // Under a base path, a dot segment could climb out of it for an upstream (or a
        // server in front of it) that resolves dot segments after the proxy.
        if !self.upstream.base_path.is_empty()
            && CanonicalPath::new(req.uri().path()).has_dot_segments()
        {
            return Err(failure(
                StatusCode::BAD_REQUEST,
                error_code::AMBIGUOUS_PATH,
                format!(
                    "the path has a '.' or '..' segment, which could leave the upstream's base path {}",
                    self.upstream.base_path
                ),
            ));
        }
        // Not UserInfo: a protected route, whose answer the layer does not read.
        let read_answer = self
            .endpoints
            .lookup(req.uri().path())
            .is_some_and(|e| e != oauth_audit::oauth::Endpoint::UserInfo);
        let uri = match self.upstream_target(req.uri()) {
            Ok(uri) => uri,
            Err(err) => {
                return Err(failure(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    err.to_string(),
                ));
            }
        };
        *req.uri_mut() = uri;
        if req.version() == Version::HTTP_2 {
            join_cookie_fields(req.headers_mut());
        }
        *req.version_mut() = Version::HTTP_11;
        let certificate = req
            .extensions()
            .get::<PeerCertificate>()
            .map(|c| escaped_pem(&c.0));
        let request_id = req.extensions_mut().remove::<RequestId>();
        let headers = req.headers_mut();
        // Room for the fields added below, so the map grows once, not twice.
        headers.reserve(8);
        let configured = [
            Some(self.trusted.client_ip_source().header_name()),
            self.certificate_header.as_ref().map(HeaderName::as_str),
            self.forward_certificate.as_ref().map(HeaderName::as_str),
            // The event records the reason: the upstream must get it too.
            self.endpoints
                .revocation_reason_header()
                .map(HeaderName::as_str),
        ];
        remove_hop_by_hop(headers, upgrade, &configured);
        remove_path_overrides(headers);
        if read_answer {
            headers.insert(header::ACCEPT_ENCODING, IDENTITY);
        }
        remove_underscore_spellings(headers, configured);
        // The upstream's logs can be joined to the event: it gets the event's request id
        // (the client's own when the layer took it, else the generated one).
        if let Some(id) = request_id.and_then(|id| HeaderValue::from_bytes(id.as_bytes()).ok()) {
            headers.insert(X_REQUEST_ID, id);
        }
        if let Some(name) = &self.forward_certificate {
            headers.remove(name);
            if let Some(value) = certificate.and_then(|c| HeaderValue::from_str(&c).ok()) {
                headers.insert(name.clone(), value);
            }
        }
        if let Some(client) = client {
            if !client.trusted_peer {
                // A configured header outside the known list is a forwarding header too.
                // Most requests carry neither: one look at the names present spares a
                // lookup of each.
                let configured = self.trusted.client_ip_source().header_name();
                if headers.keys().any(|name| {
                    name.as_str() == configured || self.certificate_header.as_ref() == Some(name)
                }) {
                    headers.remove(configured);
                    if let Some(name) = &self.certificate_header {
                        headers.remove(name);
                    }
                }
            }
            add_forwarding(headers, client, host.as_ref(), self.scheme);
        }
        // hyper sends no body with a GET, HEAD or CONNECT of unknown length unless told
        // the body is chunked: it would be dropped on the way.
        let body = req.body();
        let unknown_length = !body.is_end_stream() && body.size_hint().exact().is_none();
        let headers = req.headers_mut();
        if unknown_length && !headers.contains_key(header::CONTENT_LENGTH) {
            headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        // The client's when preserved, else the upstream's own, as a pooled client would
        // write it (`host_field`): made once, and put in the client's field's place.
        let host = if self.preserve_host { host } else { None };
        match host.or_else(|| self.upstream_host.clone()) {
            Some(host) => {
                headers.insert(header::HOST, host);
            }
            // Never: every authority makes a field value (`host_field`'s test).
            None => {
                headers.remove(header::HOST);
            }
        }

        Ok(Prepared {
            req: req.map(|body| TimedBody::new(body, self.body_timeout)),
            client_upgrade,
            slot,
        })
    }

    /// The prepared request sent to the upstream, and the upstream's response (or the
    /// proxy's own answer when there is none).
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would keep its argument twice in the future"
    )]
    fn exchange(
        self: Arc<Self>,
        prepared: Prepared,
    ) -> impl Future<Output = Result<Response<ProxyBody>, Infallible>> + Send {
        // `prepared` is not taken apart either: its fields would be kept twice too.
        async move {
            let mut response = match self.connections.send(prepared.req).await {
                Ok(response) => response,
                Err(err) if is_body_timeout(&err) => {
                    return Ok(failure(
                        StatusCode::REQUEST_TIMEOUT,
                        error_code::REQUEST_TIMEOUT,
                        format!(
                            "the client sent no part of the request body for {} s",
                            self.body_timeout.as_secs_f64()
                        ),
                    ));
                }
                // The client's body broke off or was malformed: the upstream only saw an
                // aborted request, and is not to blame (nor to be logged as failing, at the
                // client's will).
                Err(err) if is_client_body_error(&err) => {
                    tracing::debug!(error = %error_chain(&err), "request body could not be read");
                    return Ok(failure(
                        StatusCode::BAD_REQUEST,
                        error_code::MALFORMED_REQUEST,
                        error_chain(&err),
                    ));
                }
                Err(err) => return Ok(unreachable_upstream(&self.upstream, &err)),
            };
            let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
            if switching
                && (prepared.client_upgrade.is_none() || !upgrades_to_websocket(response.headers()))
            {
                // A tunnel the client did not ask for, or to another protocol than WebSocket:
                // not opened (the upstream's connection, switched, is not used again).
                return Ok(failure(
                StatusCode::BAD_GATEWAY,
                error_code::UPSTREAM_FAILED,
                "the upstream switched protocols, but not to the WebSocket upgrade the request asked for"
                    .to_owned(),
            ));
            }
            if let (true, Some(client_upgrade)) = (switching, prepared.client_upgrade) {
                let upstream_upgrade = hyper::upgrade::on(&mut response);
                let idle = self.tunnel_idle_timeout;
                tokio::spawn(async move {
                    // The client connection counts against `max_connections` until the tunnel
                    // closes.
                    let _slot = prepared.slot;
                    match tokio::try_join!(client_upgrade, upstream_upgrade) {
                        Ok((client, upstream)) => {
                            match tunnel::relay(TokioIo::new(client), TokioIo::new(upstream), idle)
                                .await
                            {
                                Ok(tunnel::Ended::Closed) => {}
                                Ok(tunnel::Ended::Idle) => tracing::debug!(
                                    idle_secs = idle.as_secs_f64(),
                                    "WebSocket tunnel closed: nothing passed through it"
                                ),
                                Err(err) => {
                                    tracing::debug!(error = %err, "upgraded connection ended")
                                }
                            }
                        }
                        Err(err) => tracing::warn!(error = %err, "protocol upgrade failed"),
                    }
                });
            }
            remove_hop_by_hop(response.headers_mut(), switching, &[]);
            Ok(response.map(BodyExt::boxed))
        }
    }
}

/// A request [`Inner::prepare`] made ready for the upstream.
struct Prepared {
    req: Request<TimedBody<ForwardBody>>,
    /// The client's side of a WebSocket upgrade it asked for.
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    /// The client connection's place under `max_connections`, held by a tunnel.
    slot: Option<ConnectionSlot>,
}

/// The request's `Transfer-Encoding` (sanitised, for the event) when it is anything but one
/// `chunked`. hyper decodes the final `chunked` only; the proxy writes its own framing, so a
/// coding beneath it (`gzip, chunked`, or `chunked` twice) would reach the upstream undone and
/// unannounced, the body the layer inspected being still coded. Refused as nginx does (RFC
/// 9112 §6.1: `501`).
fn transfer_codings_besides_chunked(headers: &http::HeaderMap) -> Option<String> {
    let mut fields = headers.get_all(header::TRANSFER_ENCODING).iter();
    let first = fields.next()?;
    if fields.next().is_none()
        && first
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"chunked")
    {
        return None;
    }
    let codings: Vec<String> = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .map(|field| String::from_utf8_lossy(field.as_bytes()).into_owned())
        .collect();
    Some(oauth_audit::event::sanitize(&codings.join(", "), 256))
}

/// The first field whose value starts or ends with a space or a tab. HTTP/2 makes such a
/// request malformed (RFC 9113 §8.2.1), but h2 passes it on, while an HTTP/1.1 server drops
/// that whitespace as it parses the field (RFC 9112 §5): the layer would read
/// `" Bearer t"` as another scheme, no token inspected, and the upstream, behind the HTTP/1.1
/// hop, `Bearer t`.
fn field_with_blank_ends(headers: &http::HeaderMap) -> Option<&HeaderName> {
    let blank = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    headers
        .iter()
        .find(|(_, value)| {
            let bytes = value.as_bytes();
            blank(bytes.first()) || blank(bytes.last())
        })
        .map(|(name, _)| name)
}

/// The response future of [`Forward`].
pub type ForwardFuture =
    Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

impl Service<Request<ForwardBody>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ForwardFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ForwardBody>) -> Self::Future {
        match self.inner.prepare(req) {
            Ok(prepared) => Box::pin(Arc::clone(&self.inner).exchange(prepared)),
            Err(answer) => Box::pin(std::future::ready(Ok(answer))),
        }
    }
}

/// Applies the protected route rules in front of [`Forward`].
///
/// OAuth endpoints and skipped paths are exempt: the audit layer inspects no bearer token
/// there, so an enforcing rule (say `/*`) would refuse every `/token` request. An endpoint
/// is exempt only when every reading of the path is that endpoint, and a skipped path only
/// as written, so no other spelling escapes the rules through an exemption.
///
/// Requests the rules refuse (ambiguous paths, method overrides on enforcing routes) are
/// answered `400` with the reason in the audit event; they never reach the upstream.
#[derive(Clone, Debug)]
pub struct Protected {
    forward: Forward,
    rules: Arc<ScopeRules>,
    exempt: Arc<Exempt>,
}

#[derive(Debug)]
struct Exempt {
    endpoints: Endpoints,
    skip_paths: oauth_audit::request_target::SkipPaths,
}

impl Protected {
    /// `forward` behind `rules`, except on `endpoints` and `skip_paths`.
    pub fn new(
        forward: Forward,
        rules: ScopeRules,
        endpoints: Endpoints,
        skip_paths: oauth_audit::request_target::SkipPaths,
    ) -> Self {
        Protected {
            forward,
            rules: Arc::new(rules),
            exempt: Arc::new(Exempt {
                endpoints,
                skip_paths,
            }),
        }
    }

    fn decide<B>(&self, req: &Request<B>) -> Decision<'_> {
        let raw = req.uri().path();
        if self.exempt.skip_paths.matches(raw) {
            return Decision::Pass;
        }
        let path = CanonicalPath::new(raw);
        let ignore_case = self.rules.options().path_case == PathCase::Insensitive;
        if self
            .exempt
            .endpoints
            .lookup_unambiguous(&path, ignore_case)
            // UserInfo is a protected route: rules apply to it. A role only assumed from a
            // default path (`/token` with no `[endpoints]`) is believed by the audit once the
            // traffic speaks the protocol, which is known only after the upstream answered:
            // it exempts nothing, or any request to `/token` would pass a `/*` rule.
            .is_some_and(|e| {
                e != oauth_audit::oauth::Endpoint::UserInfo && !self.exempt.endpoints.is_assumed(e)
            })
        {
            return Decision::Pass;
        }
        let overrides = method_overrides(req.method(), req.headers(), req.uri().query());
        self.rules.decide(req.method(), &overrides, &path)
    }
}

/// The response future of [`Protected`]: the forwarder's, under a rule's or not, or a
/// refusal. One box (the forwarder's) whichever it is.
pub enum ProtectedFuture {
    /// Forwarded under a scope rule.
    Rule(RequiredScopesFuture<ForwardFuture, ProxyBody>),
    /// Forwarded without one.
    Pass(ForwardFuture),
    /// Refused here.
    Refused(std::future::Ready<Result<Response<ProxyBody>, Infallible>>),
}

impl Future for ProtectedFuture {
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut *self {
            ProtectedFuture::Rule(future) => Pin::new(future).poll(cx),
            ProtectedFuture::Pass(future) => future.as_mut().poll(cx),
            ProtectedFuture::Refused(response) => Pin::new(response).poll(cx),
        }
    }
}

impl Service<Request<ForwardBody>> for Protected {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ProtectedFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ForwardBody>) -> Self::Future {
        match self.decide(&req) {
            Decision::Rule(rule) => {
                // `Forward` is always ready, so the layered service needs no poll_ready.
                ProtectedFuture::Rule(rule.scopes.layer(self.forward.clone()).call(req))
            }
            Decision::Pass => ProtectedFuture::Pass(self.forward.call(req)),
            Decision::Refuse(refusal) => {
                tracing::info!(code = refusal.code, reason = %refusal.description, "request refused");
                let response = failure(StatusCode::BAD_REQUEST, refusal.code, refusal.description);
                ProtectedFuture::Refused(std::future::ready(Ok(response)))
            }
        }
    }
}

/// `err` and the errors it wraps, `: `-separated.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = String::new();
    let mut source = Some(err);
    while let Some(err) = source {
        if !chain.is_empty() {
            chain.push_str(": ");
        }
        chain.push_str(&err.to_string());
        source = err.source();
    }
    chain
}

/// `502`, with the reason for the audit event in the response's extensions.
fn unreachable_upstream(upstream: &UpstreamUrl, err: &UpstreamError) -> Response<ProxyBody> {
    let cause = error_chain(err);
    let mut tls = false;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = source {
        tls |= is_tls_error(err);
        source = err.source();
    }
    let code = if tls {
        error_code::UPSTREAM_TLS_FAILED
    } else if err.is_connect() {
        error_code::UPSTREAM_UNREACHABLE
    } else {
        error_code::UPSTREAM_FAILED
    };
    tracing::warn!(%upstream, error = %cause, "{code}");
    failure(
        StatusCode::BAD_GATEWAY,
        code,
        format!("{upstream}: {cause}"),
    )
}

/// A rustls error, also inside `io::Error`s (whose `source` skips the error they wrap;
/// hyper-rustls wraps tokio-rustls' `io::Error` in another).
fn is_tls_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<rustls::Error>() {
            return true;
        }
        current = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .map(|inner| inner as &(dyn std::error::Error + 'static));
    }
    false
}

fn failure(status: StatusCode, code: &str, description: String) -> Response<ProxyBody> {
    let body = format!(
        "{} {}: {code}\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut response = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    let mut error = ErrorInfo::new(code);
    error.description = Some(description);
    response.extensions_mut().insert(error);
    response
}

/// A certificate as URL-encoded PEM, the form nginx's `$ssl_client_escaped_cert` has.
fn escaped_pem(der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    percent_encoding::utf8_percent_encode(&pem, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The `Host` field for requests to `upstream`: its host, with its port unless that is the
/// scheme's default, as hyper-util's pooled client writes it for a request that has none.
/// `None` never happens: an authority holds no byte a field value refuses (tested).
fn host_field(upstream: &UpstreamUrl) -> Option<HeaderValue> {
    let authority = &upstream.authority;
    let default_port = if upstream.is_https() { 443 } else { 80 };
    let text = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_owned(),
    };
    HeaderValue::from_maybe_shared(Bytes::from(text)).ok()
}

/// The peer of a connection, for the audit layer and `X-Forwarded-For`.
pub fn with_peer<B>(mut req: Request<B>, peer: SocketAddr) -> Request<B> {
    req.extensions_mut().insert(PeerAddr(peer));
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field hyper's client would write for a request without one (its
    /// `or_insert_with` in `send_request`): the host, and the port unless the scheme's.
    fn hypers(url: &str) -> String {
        let uri: Uri = url.parse().unwrap();
        let host = uri.host().unwrap();
        let secure = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
        match (uri.port_u16(), secure) {
            (Some(443), true) | (Some(80), false) | (None, _) => host.to_owned(),
            (Some(port), _) => format!("{host}:{port}"),
        }
    }

    #[test]
    fn the_upstream_host_is_the_one_hyper_would_write() {
        for url in [
            "http://api.internal",
            "http://api.internal:80",
            "http://api.internal:8080/base",
            "https://api.internal",
            "https://api.internal:443",
            "https://api.internal:80",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
            "https://[2001:db8::1]",
        ] {
            let upstream = UpstreamUrl::try_from(url.to_owned()).unwrap();
            let field = host_field(&upstream).unwrap();
            assert_eq!(field.to_str().unwrap(), hypers(url), "{url}");
        }
    }

    #[test]
    fn every_upstream_authority_makes_a_host_field() {
        // Any byte in the host, and in the port's place, of an otherwise valid authority.
        for byte in 0..=255u8 {
            for text in [
                [b"ho", &[byte][..], b"st:8080"].concat(),
                [b"host:80", &[byte][..]].concat(),
            ] {
                let Ok(text) = String::from_utf8(text) else {
                    continue;
                };
                let url = format!("http://{text}");
                if let Ok(upstream) = UpstreamUrl::try_from(url.clone()) {
                    assert!(host_field(&upstream).is_some(), "{url:?}");
                }
            }
        }
    }
}
