use std::marker::PhantomData;
use std::sync::Arc;

use tower_layer::Layer;

use super::{AuditService, Direct, Resolving, Shared};
use crate::context::{ClientIpSource, RequestIdFrom, TrustedProxies};
use crate::dpop::DpopVerifier;
use crate::oauth::Endpoints;
use crate::token::{RevokedTokens, TokenInspector, TokenResolver};
use crate::writer::Auditor;
use crate::ConfigError;

/// The audit layer: put it in front of your routes and every request becomes an event.
///
/// It holds only shared configuration and is cheap to clone. See the [crate docs](crate)
/// for a complete example.
///
/// `M` says whether it resolves opaque tokens before the route runs: [`Direct`] (the
/// default: [`new`](Self::new), [`builder`](Self::builder)) calls the inner service at once
/// and takes any inner service; [`Resolving`] (after
/// [`token_resolver`](AuditLayerBuilder::token_resolver)) needs an inner service that is
/// `Clone` (see [the module docs](super#the-inner-service-and-clone)).
#[derive(Clone, Debug)]
pub struct AuditLayer<M = Direct> {
    shared: Arc<Shared>,
    mode: PhantomData<M>,
}

impl AuditLayer {
    /// Audits into `auditor` with the defaults: no trusted proxies (the socket peer is the
    /// client), bearer tokens decoded but not verified (`token.verdict: unverified`), the
    /// default OAuth endpoints ([`Endpoints::default`]: `/token`, `/revoke`, `/introspect`,
    /// `/authorize`).
    pub fn new(auditor: Auditor) -> Self {
        AuditLayer {
            shared: Arc::new(Shared {
                auditor,
                trusted_proxies: TrustedProxies::default(),
                inspector: TokenInspector::default(),
                skip_paths: Default::default(),
                resolver: None,
                endpoints: Endpoints::default(),
                revoked: RevokedTokens::new(),
                dpop: DpopVerifier::default(),
                client_certificate_header: None,
                request_id_header: true,
                request_id_from: RequestIdFrom::default(),
            }),
            mode: PhantomData,
        }
    }

    /// Starts configuring a layer that audits into `auditor`.
    pub fn builder(auditor: Auditor) -> AuditLayerBuilder {
        AuditLayerBuilder {
            auditor,
            trusted_proxies: Vec::new(),
            client_ip_source: ClientIpSource::default(),
            inspector: None,
            skip_paths: Vec::new(),
            resolver: None,
            endpoints: None,
            revoked: None,
            dpop: None,
            client_certificate_header: None,
            request_id_header: true,
            request_id_from: RequestIdFrom::default(),
            mode: PhantomData,
        }
    }
}

impl<M> AuditLayer<M> {
    /// The inspector the layer checks bearer tokens with. A server that verifies tokens
    /// against a JWKS URL can wait for the first attempt to load them before it starts
    /// serving, so that the first requests do not meet `unknown_key` for lack of time:
    ///
    /// ```
    /// # async fn serve(layer: oauth_audit::AuditLayer) {
    /// let inspector = layer.token_inspector();
    /// let most = std::time::Duration::from_secs(10);
    /// if tokio::time::timeout(most, inspector.first_load()).await.is_err() {
    ///     eprintln!("serving before the token keys are loaded");
    /// }
    /// # }
    /// ```
    pub fn token_inspector(&self) -> &TokenInspector {
        &self.shared.inspector
    }
}

impl<S, M> Layer<S> for AuditLayer<M> {
    type Service = AuditService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService::new(inner, self.shared.clone())
    }
}

/// Configures an [`AuditLayer`]; `M` is the layer's mode ([`Direct`] until a token resolver
/// is set).
#[must_use]
pub struct AuditLayerBuilder<M = Direct> {
    auditor: Auditor,
    trusted_proxies: Vec<String>,
    client_ip_source: ClientIpSource,
    inspector: Option<TokenInspector>,
    skip_paths: Vec<String>,
    resolver: Option<Arc<dyn TokenResolver>>,
    endpoints: Option<Endpoints>,
    revoked: Option<RevokedTokens>,
    dpop: Option<DpopVerifier>,
    client_certificate_header: Option<String>,
    request_id_header: bool,
    request_id_from: RequestIdFrom,
    mode: PhantomData<M>,
}

impl<M> std::fmt::Debug for AuditLayerBuilder<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLayerBuilder")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("client_ip_source", &self.client_ip_source)
            .field("inspector", &self.inspector)
            .field("skip_paths", &self.skip_paths)
            .field("resolver", &self.resolver.is_some())
            .field("endpoints", &self.endpoints)
            .field("client_certificate_header", &self.client_certificate_header)
            .field("request_id_header", &self.request_id_header)
            .field("request_id_from", &self.request_id_from)
            .finish_non_exhaustive()
    }
}

impl<M> AuditLayerBuilder<M> {
    /// Which paths are OAuth endpoints and how their traffic is read (default:
    /// [`Endpoints::default`]). Use [`Endpoints::none`] to audit every path as a
    /// protected route.
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    /// Proxies (IP addresses or CIDR blocks) whose forwarding header is believed: from such
    /// a peer, `source.ip` is read from the header chosen with
    /// [`client_ip_source`](Self::client_ip_source) (`X-Forwarded-For` by default), as the
    /// rightmost address of the chain that is not a trusted proxy. Headers from any other
    /// peer never change `source.ip`. IPv4-mapped IPv6 addresses and blocks
    /// (`::ffff:10.0.0.0/104`) name the IPv4 proxies they map.
    pub fn trusted_proxies<I, S>(mut self, proxies: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_proxies
            .extend(proxies.into_iter().map(Into::into));
        self
    }

    /// The one header the trusted proxies write the client's address into (default
    /// [`ClientIpSource::XForwardedFor`]). Other forwarding headers are recorded in
    /// `source.forwarded_for` / `source.forwarded_headers` but never change `source.ip`:
    /// a front proxy that appends `X-Forwarded-For` passes a client's own `Forwarded`
    /// through untouched.
    ///
    /// ```
    /// use oauth_audit::{writer::Auditor, AuditLayer, ClientIpSource};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = AuditLayer::builder(Auditor::stdout())
    ///     .trusted_proxies(["10.0.0.0/8"])
    ///     .client_ip_source("x-real-ip".parse::<ClientIpSource>()?)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn client_ip_source(mut self, source: ClientIpSource) -> Self {
        self.client_ip_source = source;
        self
    }

    /// How bearer tokens are verified (keys, JWKS, issuers, audiences, leeway).
    pub fn token_inspector(mut self, inspector: TokenInspector) -> Self {
        self.inspector = Some(inspector);
        self
    }

    /// Supplies the claims of opaque bearer tokens (RFC 7662 introspection, a database...).
    ///
    /// The layer awaits it before the route runs, so handlers and
    /// [`RequiredScopes`](crate::RequiredScopes) see the resolved claims; wrap it in a
    /// [`CachedResolver`](crate::token::CachedResolver) so each token costs one lookup.
    /// Resolved tokens get the verdict `valid` (or `expired` past `exp`); tokens the resolver
    /// does not know get `inactive`; a resolver that cannot answer (endpoint down, rate
    /// limit) gives `unavailable`.
    ///
    /// The layer becomes [`Resolving`]: its inner service must be `Clone`, as Axum routers
    /// and `service_fn` over shared state are.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use oauth_audit::{token::TokenClaims, writer::Auditor, AuditLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = AuditLayer::builder(Auditor::stdout())
    ///     .token_resolver(|token: String| async move {
    ///         (token == "opaque-1")
    ///             .then(|| TokenClaims::from_json(&serde_json::json!({"sub": "alice"})))
    ///     })
    ///     .build()?;
    /// let app: Router = Router::new()
    ///     .route("/api/me", get(|| async { "me" }))
    ///     .layer(layer);
    /// # Ok(()) }
    /// ```
    pub fn token_resolver(self, resolver: impl TokenResolver) -> AuditLayerBuilder<Resolving> {
        let mut builder = self.resolving();
        builder.resolver = Some(Arc::new(resolver));
        builder
    }

    /// Makes the layer [`Resolving`] without a resolver yet: for code that adds one only
    /// under some condition and wants one type either way.
    ///
    /// ```
    /// use oauth_audit::{layer::Resolving, token::TokenClaims, writer::Auditor, AuditLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), oauth_audit::ConfigError> {
    /// let introspect = std::env::var("INTROSPECT").is_ok();
    /// let mut builder = AuditLayer::builder(Auditor::stdout()).resolving();
    /// if introspect {
    ///     builder = builder.token_resolver(|_: String| async { None::<TokenClaims> });
    /// }
    /// let layer: AuditLayer<Resolving> = builder.build()?;
    /// # Ok(()) }
    /// ```
    pub fn resolving(self) -> AuditLayerBuilder<Resolving> {
        AuditLayerBuilder {
            auditor: self.auditor,
            trusted_proxies: self.trusted_proxies,
            client_ip_source: self.client_ip_source,
            inspector: self.inspector,
            skip_paths: self.skip_paths,
            resolver: self.resolver,
            endpoints: self.endpoints,
            revoked: self.revoked,
            dpop: self.dpop,
            client_certificate_header: self.client_certificate_header,
            request_id_header: self.request_id_header,
            request_id_from: self.request_id_from,
            mode: PhantomData,
        }
    }

    /// The set of tokens this trail saw revoked (default: a new set of 100 000). Give
    /// layers of one process the same set, so that a revocation recorded by one (in front
    /// of the authorization server) is known to the other (in front of the API).
    pub fn revoked_tokens(mut self, revoked: RevokedTokens) -> Self {
        self.revoked = Some(revoked);
        self
    }

    /// How DPoP proofs are checked (default: [`DpopVerifier::default`], which compares
    /// `htu` with the request's own host). Name the service's public origins when a proxy in
    /// front of it terminates TLS or rewrites the host.
    ///
    /// ```
    /// use oauth_audit::{dpop::DpopVerifier, writer::Auditor, AuditLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = AuditLayer::builder(Auditor::stdout())
    ///     .dpop(DpopVerifier::builder().origins(["https://api.example.com"]).build()?)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn dpop(mut self, verifier: DpopVerifier) -> Self {
        self.dpop = Some(verifier);
        self
    }

    /// The header a trusted front proxy that terminates TLS passes the client certificate
    /// in (RFC 8705), e.g. nginx's `proxy_set_header X-Client-Cert $ssl_client_escaped_cert`
    /// or Envoy's `x-forwarded-client-cert`; the encodings read are those of
    /// [`ClientCertificate::from_header_value`](crate::mtls::ClientCertificate::from_header_value).
    ///
    /// It is read only from a [trusted proxy](Self::trusted_proxies), and from such a peer
    /// it is the only source: the connection's own certificate is the proxy's. Anyone
    /// else's header is ignored, and the [`ClientCertificate`](crate::mtls::ClientCertificate)
    /// a TLS-terminating server inserted into the request's extensions counts instead. A
    /// value that holds no certificate is recorded as `malformed`, never refused. The
    /// certificate believed, whichever way it came, is in the request's extensions as a
    /// `ClientCertificate` for the handler. [`build`](Self::build) fails without trusted
    /// proxies.
    ///
    /// ```
    /// use oauth_audit::{writer::Auditor, AuditLayer};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let layer = AuditLayer::builder(Auditor::stdout())
    ///     .trusted_proxies(["10.0.0.0/8"])
    ///     .client_certificate_header("x-client-cert")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn client_certificate_header(mut self, name: impl Into<String>) -> Self {
        self.client_certificate_header = Some(name.into());
        self
    }

    /// Whether a response without an `x-request-id` header gets one with the request's id
    /// (the one the event records: the request's own `x-request-id` when sane, else a
    /// generated UUIDv7), as tower-http's request-id middleware does. Default: yes. The id is
    /// in the request's extensions either way, as a [`RequestId`](crate::RequestId).
    pub fn request_id_header(mut self, echo: bool) -> Self {
        self.request_id_header = echo;
        self
    }

    /// Whose `x-request-id` the request's id (the event's `request_id`) is taken from:
    /// [any client's](RequestIdFrom::AnyClient) by default, [only a trusted
    /// proxy's](RequestIdFrom::TrustedProxies), or [nobody's](RequestIdFrom::Nobody). A
    /// request whose header is not taken gets a generated UUIDv7, as one without the header.
    ///
    /// ```
    /// use oauth_audit::{writer::Auditor, AuditLayer, RequestIdFrom};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), oauth_audit::ConfigError> {
    /// // The load balancer at 10.0.0.0/8 sets `x-request-id`; clients cannot choose theirs.
    /// let layer = AuditLayer::builder(Auditor::stdout())
    ///     .trusted_proxies(["10.0.0.0/8"])
    ///     .request_id_from(RequestIdFrom::TrustedProxies)
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn request_id_from(mut self, from: RequestIdFrom) -> Self {
        self.request_id_from = from;
        self
    }

    /// Paths that are not audited at all (health checks, metrics, static files): exact
    /// paths, or every path under a prefix written `/static/*`. A request is skipped only
    /// when every server would read its path as one of them
    /// ([`SkipPaths`](crate::request_target::SkipPaths)): `/static/../admin` is audited.
    /// Paths are the ones clients send, the prefix of any router the layer is nested in
    /// included.
    pub fn skip_paths<I, S>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.skip_paths.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Checks the configuration and builds the layer.
    pub fn build(self) -> Result<AuditLayer<M>, ConfigError> {
        let trusted_proxies =
            TrustedProxies::new(&self.trusted_proxies)?.source(self.client_ip_source);
        let skip_paths = crate::request_target::SkipPaths::new(&self.skip_paths)
            .map_err(|e| ConfigError::invalid("skip_paths", e))?;
        let client_certificate_header = match &self.client_certificate_header {
            None => None,
            Some(_) if trusted_proxies.is_empty() => {
                return Err(ConfigError::invalid(
                    "client_certificate_header",
                    "no proxy is trusted: add trusted_proxies, or leave the header out",
                ))
            }
            Some(name) => Some(http::HeaderName::try_from(name.trim()).map_err(|_| {
                ConfigError::invalid(
                    "client_certificate_header",
                    format!("{name:?} is not a header name"),
                )
            })?),
        };
        Ok(AuditLayer {
            shared: Arc::new(Shared {
                auditor: self.auditor,
                trusted_proxies,
                inspector: self.inspector.unwrap_or_default(),
                skip_paths,
                resolver: self.resolver,
                endpoints: self.endpoints.unwrap_or_default(),
                revoked: self.revoked.unwrap_or_default(),
                dpop: self.dpop.unwrap_or_default(),
                client_certificate_header,
                request_id_header: self.request_id_header,
                request_id_from: self.request_id_from,
            }),
            mode: PhantomData,
        })
    }
}
