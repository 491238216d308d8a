//! From flags, environment and file to a running proxy.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oauth_audit::config::{
    AuditLayerConfig, AuditorConfig, BuildError, ExposeSecret, JsonLinesConfig, SinkConfig,
};
use oauth_audit::layer::Resolving;
use oauth_audit::oauth::Endpoints;
use oauth_audit::token::{CachedResolver, Rate};
use oauth_audit::writer::Auditor;
use oauth_audit::{AuditLayer, RequiredScopes, TrustedProxies};
use tokio::net::TcpListener;

use crate::config::{AmbiguousPathsSetting, PathCaseSetting};
use crate::config::{
    AtLeastOne, Cidr, ClientIpHeader, FileConfig, HttpUrl, ListenAddr, MatchMode, UpstreamUrl,
};
use crate::introspect::Introspection;
use crate::proxy::{Forward, Limits, Protected};
use crate::routes::{AmbiguousPaths, MatchOptions, PathCase, ScopeRule, ScopeRules};
use crate::Failure;

/// The longest a request head or TLS handshake may take (`proxy.header_timeout`).
const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection without a request stays open (`proxy.idle_timeout`).
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a write to a client may wait without progress (`proxy.send_timeout`).
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Client connections served at once (`proxy.max_connections`).
const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// Settings given on the command line (or in their `OAUTH_AUDIT_...` variables).
#[derive(Debug, Default)]
pub struct Flags {
    pub listen: Option<ListenAddr>,
    pub upstream: Option<UpstreamUrl>,
    pub config: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub jwks_url: Option<HttpUrl>,
    pub issuer_url: Option<HttpUrl>,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub trusted_proxies: Vec<Cidr>,
    pub client_ip_header: Option<ClientIpHeader>,
    pub service_name: Option<String>,
    pub metrics_listen: Option<ListenAddr>,
}

/// Everything the proxy needs, checked.
#[derive(Debug)]
pub struct Settings {
    listen: ListenAddr,
    upstream: UpstreamUrl,
    file: FileConfig,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads `path` and applies the environment.
pub(crate) fn load(path: &Path) -> Result<FileConfig, Failure> {
    let mut file = FileConfig::load(path).map_err(|e| Failure::Config(e.to_string()))?;
    file.apply_env(env_var)
        .map_err(|e| Failure::Config(e.to_string()))?;
    Ok(file)
}

/// `check-config`: the file parses, every value is valid, and everything `proxy` builds
/// builds: writers (spool directories opened and locked, files opened), the token inspector,
/// route rules, the layer and the TLS material. Nothing touches the network.
pub fn check_config(path: &Path) -> Result<String, Failure> {
    let file = load(path)?;
    // One thread that is never driven after `build` returns: the background tasks the
    // parts spawn (writer lanes, JWKS refresh) are dropped unpolled, so nothing connects.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the Tokio runtime: {e}")))?;
    let built = runtime.block_on(build(&file, UpstreamTlsUse::Check))?;
    let summary = format!(
        "{} route rule(s), {} writer(s)",
        built.rules.count(),
        file.writers.len()
    );
    {
        let _entered = runtime.enter();
        drop(built);
    }
    drop(runtime);
    Ok(summary)
}

/// Warns when an enforcing rule covers a default OAuth endpoint path that `[endpoints]` does
/// not name: such a path is an endpoint only once its traffic speaks the protocol, known
/// after the upstream answered, so it is not exempt from the rules, and the rule refuses the
/// token (or authorization) requests that carry no bearer token. Before, such paths were
/// exempt: a configuration that relied on it still loads, and says what to add.
fn warn_of_default_endpoints_under_enforcing_rules(endpoints: &Endpoints, rules: &ScopeRules) {
    use oauth_audit::oauth::Endpoint;
    use oauth_audit::request_target::CanonicalPath;
    let defaults = [
        ("/token", Endpoint::Token, "token", http::Method::POST),
        (
            "/revoke",
            Endpoint::Revocation,
            "revocation",
            http::Method::POST,
        ),
        (
            "/introspect",
            Endpoint::Introspection,
            "introspection",
            http::Method::POST,
        ),
        (
            "/authorize",
            Endpoint::Authorization,
            "authorization",
            http::Method::GET,
        ),
    ];
    for (path, role, key, method) in defaults {
        if endpoints.lookup(path) != Some(role) || !endpoints.is_assumed(role) {
            continue;
        }
        if let crate::routes::Decision::Rule(rule) =
            rules.decide(&method, &[], &CanonicalPath::new(path))
        {
            if rule.enforce {
                tracing::warn!(
                    "the enforcing rule {} covers {path}, the default {key} endpoint path, which is not exempt from the rules unless [endpoints] names it: if {path} is the authorization server's {key} endpoint, add `{key} = [\"{path}\"]` under [endpoints]",
                    rule.pattern.as_str()
                );
            }
        }
    }
}

/// How long `proxy` waits at startup for the token inspector's first load of its keys (a
/// JWKS URL's first answer, or its failure) before it serves anyway.
const KEYS_WAIT: Duration = Duration::from_secs(10);

/// Whether the client TLS configuration for an `https` upstream is built.
#[derive(Clone, Copy, Debug)]
enum UpstreamTlsUse {
    /// `check-config`: always, since the upstream may be given at start.
    Check,
    /// `proxy`: only for an `https` upstream (an `http` one never reads the system's roots).
    Run {
        /// The upstream is `https`.
        https: bool,
    },
}

/// Everything `proxy` runs, built from the configuration without network I/O; `proxy` then
/// adds the network parts (metrics listener, upstream client, listener).
struct Built {
    auditor: Auditor,
    layer: AuditLayer<Resolving>,
    rules: ScopeRules,
    endpoints: Endpoints,
    trusted: TrustedProxies,
    listener_tls: Option<tokio_rustls::TlsAcceptor>,
    upstream_tls: Option<rustls::ClientConfig>,
    limits: Limits,
    connect_timeout: Duration,
}

/// Builds every part `proxy` and `check-config` share.
///
/// Every `.await` comes before the first background task is spawned (the auditor's build
/// spawns its writers last): `check-config` relies on that, so that no task ever runs.
async fn build(file: &FileConfig, upstream_tls_use: UpstreamTlsUse) -> Result<Built, Failure> {
    let trusted = trusted_proxies(file)?;
    let endpoints = endpoints(file)?;
    let rules = scope_rules(file)?;
    warn_of_default_endpoints_under_enforcing_rules(&endpoints, &rules);
    let listener_tls = listener_tls(file)?;
    let upstream_tls = match upstream_tls_use {
        UpstreamTlsUse::Check | UpstreamTlsUse::Run { https: true } => Some(upstream_tls(file)?),
        UpstreamTlsUse::Run { https: false } => None,
    };
    let auditor = auditor(file).await?;
    // From here on no `.await`: see above.
    let layer_config = AuditLayerConfig {
        endpoints: file.endpoints.clone(),
        jwt: file.jwt.clone(),
        trusted_proxies: file
            .proxy
            .trusted_proxies
            .iter()
            .map(|c| c.0.clone())
            .collect(),
        // Parsed and checked with the flags already: applied below as the parsed source.
        client_ip_header: None,
        client_certificate_header: file.proxy.client_certificate_header.clone(),
        skip_paths: file.proxy.skip_paths.clone(),
        dpop: file.dpop.clone(),
        request_id_from: file.proxy.request_id_from,
    };
    let mut layer = layer_config
        .builder(auditor.clone())
        .map_err(|e| Failure::Config(e.to_string()))?
        .client_ip_source(trusted.client_ip_source().clone())
        // One type whether or not an introspection endpoint resolves opaque tokens.
        .resolving();
    if let Some(section) = &file.introspection {
        let introspection = Introspection::new(
            section.url.0.clone(),
            section.client_id.clone(),
            section
                .client_secret
                .as_ref()
                .map(|secret| secret.expose_secret().to_owned()),
        )
        .map_err(|e| Failure::Runtime(format!("introspection client: {e}")))?;
        let mut cached = CachedResolver::new(introspection);
        if let Some(ttl) = section.cache_ttl {
            cached = cached.max_ttl(ttl.0);
        }
        if let Some(ttl) = section.negative_cache_ttl {
            cached = cached.negative_ttl(ttl.0);
        }
        if let Some(rate) = section.rate_per_client {
            cached = cached.limit_per_client(Some(Rate::new(rate.count, rate.per)));
        }
        if let Some(rate) = section.rate_total {
            cached = cached.limit_total(Some(Rate::new(rate.count, rate.per)));
        }
        layer = layer.token_resolver(cached);
    }
    let layer = layer.build().map_err(|e| Failure::Config(e.to_string()))?;
    let proxy = &file.proxy;
    let limits = Limits {
        header_timeout: proxy.header_timeout.map_or(DEFAULT_HEADER_TIMEOUT, |d| d.0),
        idle_timeout: proxy.idle_timeout.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.0),
        send_timeout: proxy.send_timeout.map_or(DEFAULT_SEND_TIMEOUT, |d| d.0),
        max_connections: proxy
            .max_connections
            .map_or(DEFAULT_MAX_CONNECTIONS, AtLeastOne::get),
        grace: proxy
            .shutdown_timeout
            .map_or(Duration::from_secs(30), |d| d.0),
    };
    Ok(Built {
        auditor,
        layer,
        rules,
        endpoints,
        trusted,
        listener_tls,
        upstream_tls,
        limits,
        connect_timeout: proxy
            .connect_timeout
            .map_or(Duration::from_secs(10), |d| d.0),
    })
}

impl Settings {
    /// Merges flags over environment over file.
    pub fn resolve(flags: Flags) -> Result<Self, Failure> {
        let mut file = match &flags.config {
            Some(path) => load(path)?,
            None => {
                let mut file = FileConfig::default();
                file.apply_env(env_var)
                    .map_err(|e| Failure::Config(e.to_string()))?;
                file
            }
        };
        if let Some(addr) = flags.metrics_listen {
            file.proxy.metrics_listen = Some(addr);
        }
        if let Some(name) = flags.service_name {
            file.service_name = Some(name);
        }
        if let Some(url) = flags.jwks_url {
            file.jwt.jwks_url = Some(url);
            file.jwt.jwks_file = None;
        }
        if let Some(url) = flags.issuer_url {
            file.endpoints.issuer_url = Some(url);
        }
        if !flags.issuers.is_empty() {
            file.jwt.issuers = flags.issuers;
        }
        if !flags.audiences.is_empty() {
            file.jwt.audiences = flags.audiences;
        }
        if !flags.trusted_proxies.is_empty() {
            file.proxy.trusted_proxies = flags.trusted_proxies;
        }
        if let Some(header) = flags.client_ip_header {
            file.proxy.client_ip_header = Some(header);
        }
        if let Some(out) = flags.out {
            file.writers = vec![toml::Spanned::new(
                0..0,
                SinkConfig::Jsonl(JsonLinesConfig::new(out)),
            )];
        }
        let listen = flags.listen.or(file.proxy.listen).ok_or_else(|| {
            Failure::Config(
                "nowhere to listen: give --listen ADDR, OAUTH_AUDIT_LISTEN or proxy.listen".into(),
            )
        })?;
        let upstream = flags
            .upstream
            .or(file.proxy.upstream.clone())
            .ok_or_else(|| {
                Failure::Config(
                    "no upstream: give --upstream URL, OAUTH_AUDIT_UPSTREAM or proxy.upstream"
                        .into(),
                )
            })?;
        endpoints(&file)?;
        trusted_proxies(&file)?;
        Ok(Settings {
            listen,
            upstream,
            file,
        })
    }
}

/// The proxies whose forwarding header is believed, and which header that is.
fn trusted_proxies(file: &FileConfig) -> Result<TrustedProxies, Failure> {
    let proxy = &file.proxy;
    if proxy.client_ip_header.is_some() && proxy.trusted_proxies.is_empty() {
        return Err(Failure::Config(
            "proxy.client_ip_header is set but no proxy is trusted: add proxy.trusted_proxies (--trusted-proxy), or leave the header out".into(),
        ));
    }
    if proxy.client_certificate_header.is_some() && proxy.trusted_proxies.is_empty() {
        return Err(Failure::Config(
            "proxy.client_certificate_header is set but no proxy is trusted: add proxy.trusted_proxies (--trusted-proxy), or leave the header out".into(),
        ));
    }
    let source = proxy
        .client_ip_header
        .as_ref()
        .map(|h| h.0.clone())
        .unwrap_or_default();
    TrustedProxies::new(proxy.trusted_proxies.iter().map(|c| c.0.as_str()))
        .map(|trusted| trusted.source(source))
        .map_err(|e| Failure::Config(format!("proxy.trusted_proxies: {e}")))
}

fn endpoints(file: &FileConfig) -> Result<Endpoints, Failure> {
    file.endpoints
        .build()
        .map_err(|e| Failure::Config(e.to_string()))
}

/// A header name of the configuration, checked.
fn header_name(name: Option<&str>, key: &str) -> Result<Option<http::HeaderName>, Failure> {
    name.map(|n| {
        http::HeaderName::try_from(n.trim())
            .map_err(|_| Failure::Config(format!("{key}: {n:?} is not a header name")))
    })
    .transpose()
}

/// The listener's TLS acceptor, when `[proxy.tls]` is set: the pair is loaded now.
fn listener_tls(file: &FileConfig) -> Result<Option<tokio_rustls::TlsAcceptor>, Failure> {
    let Some(tls) = &file.proxy.tls else {
        return Ok(None);
    };
    use crate::config::ClientCertificatesSetting as Setting;
    use crate::proxy::tls::{ClientAuthSettings, ClientCertificates};
    let certificates = match tls.client_certificates {
        Setting::None => ClientCertificates::None,
        Setting::Optional => ClientCertificates::Optional,
        Setting::Required => ClientCertificates::Required,
    };
    let forwarded = header_name(
        tls.forward_client_certificate.as_deref(),
        "proxy.tls.forward_client_certificate",
    )?;
    // The header trusted proxies pass their client's certificate in, and the one this proxy
    // writes its own TLS peer's into, under one name: the second would replace the first,
    // and the upstream would get another certificate (or none) than the one the layer
    // checked the request's tokens against.
    if forwarded.is_some()
        && forwarded
            == header_name(
                file.proxy.client_certificate_header.as_deref(),
                "proxy.client_certificate_header",
            )?
    {
        return Err(Failure::Config(
            "proxy.tls.forward_client_certificate names the same header as proxy.client_certificate_header: the certificate of this proxy's TLS peer would replace the one a trusted proxy passed, which the audit layer read; name another header".into(),
        ));
    }
    if certificates == ClientCertificates::None
        && (tls.client_ca_file.is_some() || tls.forward_client_certificate.is_some())
    {
        return Err(Failure::Config(
            "proxy.tls.client_ca_file or forward_client_certificate is set but client certificates are not asked for: set client_certificates = \"optional\" or \"required\"".into(),
        ));
    }
    let client_auth = ClientAuthSettings {
        certificates,
        ca_file: tls.client_ca_file.as_ref().map(|f| f.get_ref().clone()),
    };
    let config = crate::proxy::tls::server_config(
        tls.certificate.get_ref().clone(),
        tls.key.get_ref().clone(),
        &client_auth,
    )
    .map_err(|e| Failure::Config(format!("proxy.tls: {e}")))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
        config,
    ))))
}

/// The client configuration for an `https` upstream (`[proxy.upstream_tls]`).
fn upstream_tls(file: &FileConfig) -> Result<rustls::ClientConfig, Failure> {
    let section = &file.proxy.upstream_tls;
    crate::proxy::tls::client_config(
        section.ca_file.as_ref().map(|f| f.get_ref().as_path()),
        section.system_roots(),
    )
    .map_err(|e| Failure::Config(format!("proxy.upstream_tls: {e}")))
}

/// The route rules. An enforcing rule needs a key source: enforcement trusts only `valid`
/// tokens, and without JWKS or introspection no token is ever valid, so every request
/// under the rule would be refused.
fn scope_rules(file: &FileConfig) -> Result<ScopeRules, Failure> {
    let has_key_source =
        file.jwt.jwks_url.is_some() || file.jwt.jwks_file.is_some() || file.introspection.is_some();
    if let Some(route) = file.routes.iter().find(|r| r.enforce || r.require_dpop) {
        if !has_key_source {
            return Err(Failure::Config(format!(
                "route {}: {} needs a key source to verify tokens (jwt.jwks_url, jwt.jwks_file or [introspection]); without one no token is valid and every request it covers is refused",
                route.path.0.as_str(),
                if route.enforce { "enforce = true" } else { "require_dpop = true" }
            )));
        }
    }
    // Without the public origins, a proof's htu is compared with the request's own Host,
    // which the client writes: a proof made for another server would pass.
    if file.dpop.origins.is_empty() {
        if let Some(route) = file.routes.iter().find(|r| r.require_dpop) {
            return Err(Failure::Config(format!(
                "route {}: require_dpop = true needs [dpop] origins (the public URL clients call, such as https://api.example.com): without them a DPoP proof's htu is compared with the Host header the client sent",
                route.path.0.as_str()
            )));
        }
        if file.routes.iter().any(|r| r.enforce) {
            tracing::warn!(
                "enforcing routes check DPoP proofs against the request's Host header: set [dpop] origins to the public URL clients call"
            );
        }
    }
    Ok(ScopeRules::new(
        file.routes
            .iter()
            .map(|route| {
                let scopes = route.scopes.get_ref().clone();
                let mut required = match route.mode {
                    MatchMode::All => RequiredScopes::all(scopes),
                    MatchMode::Any => RequiredScopes::any(scopes),
                };
                if route.enforce {
                    required = required.enforce();
                }
                if route.require_dpop {
                    required = required.require_dpop();
                }
                ScopeRule {
                    pattern: route.path.0.clone(),
                    methods: route.methods.iter().map(|m| m.0.clone()).collect(),
                    scopes: required,
                    enforce: route.enforce || route.require_dpop,
                }
            })
            .collect(),
        MatchOptions {
            ambiguous_paths: match file.proxy.ambiguous_paths {
                AmbiguousPathsSetting::Refuse => AmbiguousPaths::Refuse,
                AmbiguousPathsSetting::Decode => AmbiguousPaths::Decode,
            },
            path_case: match file.proxy.path_case {
                None => PathCase::Unknown,
                Some(PathCaseSetting::Sensitive) => PathCase::Sensitive,
                Some(PathCaseSetting::Insensitive) => PathCase::Insensitive,
            },
        },
    ))
}

/// The auditor and its writers: the library's configuration types build themselves.
async fn auditor(file: &FileConfig) -> Result<Auditor, Failure> {
    let config = AuditorConfig {
        service_name: file.service_name.clone(),
        service_instance: file.service_instance.clone(),
        queue: file.queue,
        writers: file.writers.iter().map(|w| w.get_ref().clone()).collect(),
        chain: file.chain.clone(),
        geoip: file.geoip.clone(),
        detect: file.detect.clone(),
    };
    config.build().await.map_err(|e| match e {
        // A file that cannot be opened is a run-time condition, as it has always been.
        BuildError::Open { .. } => Failure::Runtime(e.to_string()),
        e => Failure::Config(e.to_string()),
    })
}

/// Reads the authorization server's metadata when `endpoints.issuer_url` is set: endpoint
/// paths for the roles the file gives none, and `[jwt]`'s JWKS URL and issuer where it sets
/// none. A server that cannot be read, or that names another issuer, stops the start.
async fn discover(file: &mut FileConfig) -> Result<(), Failure> {
    let Some(issuer) = file.endpoints.issuer_url.clone() else {
        return Ok(());
    };
    let metadata = file
        .endpoints
        .discover()
        .await
        .map_err(|e| Failure::Runtime(e.to_string()))?
        .cloned();
    let Some(metadata) = metadata else {
        return Ok(());
    };
    file.jwt.apply_discovered(&metadata);
    for (member, url) in metadata.other_origin_endpoints() {
        tracing::warn!(
            member,
            url = %url,
            "the issuer's metadata puts this endpoint on another origin: only its path is matched here, and its traffic is recorded as that endpoint's only when it speaks the protocol"
        );
    }
    tracing::info!(
        issuer = %oauth_audit::event::shown_url(&issuer.0),
        jwks_url = file.jwt.jwks_url.as_ref().map(|u| oauth_audit::event::shown_url(&u.0)).unwrap_or_default(),
        "read the authorization server's metadata"
    );
    Ok(())
}

/// Builds everything, serves until SIGTERM or Ctrl-C, then flushes the writers.
pub async fn run(mut settings: Settings) -> Result<(), Failure> {
    discover(&mut settings.file).await?;
    let file = &settings.file;
    let mut admin = None;
    if let Some(addr) = &file.proxy.metrics_listen {
        // Before the auditor: its metric handles bind to the recorder installed when it is built.
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(
                    oauth_audit::metric::DELIVERY_SECONDS.name.into(),
                ),
                oauth_audit::metric::LATENCY_BUCKETS,
            )
            .map_err(|e| Failure::Runtime(format!("metrics buckets: {e}")))?
            .install_recorder()
            .map_err(|e| Failure::Runtime(format!("metrics recorder: {e}")))?;
        let listener = crate::admin::bind(addr.0).await.map_err(Failure::Runtime)?;
        tracing::info!(metrics = %addr.0, "Prometheus metrics at /metrics, probes at /healthz and /readyz");
        admin = Some((listener, handle));
    }
    let built = build(
        file,
        UpstreamTlsUse::Run {
            https: settings.upstream.is_https(),
        },
    )
    .await?;
    let client_tls = match built.upstream_tls {
        Some(config) => config,
        // Never used for an http upstream: no need to read the system's roots.
        None => crate::proxy::tls::client_config(None, false)
            .map_err(|e| Failure::Runtime(format!("TLS client: {e}")))?,
    };
    let forward = Forward::new(
        settings.upstream.clone(),
        built.connect_timeout,
        file.proxy.preserve_host,
        built.trusted,
        client_tls,
        file.proxy.tls.is_some(),
    )
    .body_timeout(
        file.proxy
            .body_timeout
            .map_or(crate::proxy::DEFAULT_BODY_TIMEOUT, |d| d.0),
    )
    .tunnel_idle_timeout(
        file.proxy
            .tunnel_idle_timeout
            .map_or(crate::proxy::DEFAULT_TUNNEL_IDLE_TIMEOUT, |d| d.0),
    )
    .allowed_hosts(file.proxy.allowed_hosts.clone())
    .oauth_endpoints(built.endpoints.clone())
    .upstream_idle_timeout(
        file.proxy
            .upstream_idle_timeout
            .map_or(crate::proxy::DEFAULT_UPSTREAM_IDLE_TIMEOUT, |d| d.0),
    )
    .client_certificate_headers(
        header_name(
            file.proxy.client_certificate_header.as_deref(),
            "proxy.client_certificate_header",
        )?,
        header_name(
            file.proxy
                .tls
                .as_ref()
                .and_then(|t| t.forward_client_certificate.as_deref()),
            "proxy.tls.forward_client_certificate",
        )?,
    );
    let inner = Protected::new(
        forward,
        built.rules,
        built.endpoints,
        oauth_audit::request_target::SkipPaths::new(file.proxy.skip_paths.iter().map(|p| &p.0))
            .map_err(|e| Failure::Config(format!("proxy.skip_paths: {e}")))?,
    );

    // Tokens checked before the first key set is in would be `unknown_key`, and refused on
    // routes that need a valid one: wait for the first load (or its failure), a while at
    // most. A source that is down is reported by the refresh task and retried there.
    let keys = built.layer.token_inspector().first_load();
    if tokio::time::timeout(KEYS_WAIT, keys).await.is_err() {
        tracing::warn!(
            waited_s = KEYS_WAIT.as_secs(),
            "the token keys are not loaded yet; serving anyway: tokens are unknown_key until they are"
        );
    }

    let listener = TcpListener::bind(settings.listen.0)
        .await
        .map_err(|e| Failure::Runtime(format!("cannot listen on {}: {e}", settings.listen.0)))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::Runtime(format!("listener address: {e}")))?;
    let scheme = if built.listener_tls.is_some() {
        "https"
    } else {
        "http"
    };
    let runtime = tokio::runtime::Handle::current();
    let scheduler = match runtime.runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => "current-thread",
        _ => "multi-thread",
    };
    tracing::info!(
        listen = %local,
        %scheme,
        upstream = %settings.upstream,
        workers = runtime.metrics().num_workers(),
        scheduler,
        "oauth-audit proxy ready"
    );

    let auditor = built.auditor;
    if let Some((listener, handle)) = admin {
        let authority = &settings.upstream.authority;
        let port = authority
            .port_u16()
            .unwrap_or(if settings.upstream.is_https() {
                443
            } else {
                80
            });
        let upstream = format!("{}:{port}", authority.host());
        crate::admin::spawn(
            listener,
            crate::admin::Admin::new(handle, auditor.clone(), upstream),
        );
    }
    crate::proxy::serve(
        listener,
        built.layer,
        auditor.clone(),
        inner,
        built.listener_tls,
        built.limits,
        shutdown_signal(),
    )
    .await;
    auditor.shutdown().await;
    tracing::info!("events flushed; bye");
    Ok(())
}

/// Completes at the first SIGTERM or Ctrl-C (SIGINT); `proxy` and `detect --nats` stop on it.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot watch SIGTERM; only Ctrl-C stops the proxy");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
