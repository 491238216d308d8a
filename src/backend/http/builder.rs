//! The builder of [`HttpCollector`]: URL, format, credentials, headers and TLS, all checked
//! when it is built; secrets never reach `Debug` output or errors.

use std::fmt;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::auth::{quoted_secrets, sensitive_value, Auth, Secret};
use super::backend::HttpCollector;
use super::classify::error_chain;
use super::format::Format;
use super::settings::{Settings, TemplateInstall};
use crate::format::{index_template, EventFormat, TemplateOptions};
use crate::ConfigError;

/// Requests are cut so that no body (before compression) exceeds this, unless a single event
/// does: small enough for Splunk Cloud's 1 MB HEC limit and Fluent Bit's default buffer.
const DEFAULT_MAX_BATCH_BYTES: usize = 1024 * 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers the format or the client sets itself.
const RESERVED_HEADERS: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::CONTENT_ENCODING,
    header::CONTENT_LENGTH,
    header::HOST,
    header::TRANSFER_ENCODING,
];

impl HttpCollector {
    /// Starts configuring a collector at `url`, the full endpoint (`.../_bulk`,
    /// `.../services/collector/event`, or the JSON-lines URL).
    pub fn builder(url: impl Into<String>) -> HttpCollectorBuilder {
        HttpCollectorBuilder {
            url: url.into(),
            name: None,
            format: Format::JsonLines,
            event_format: EventFormat::OAuthAudit,
            gzip: false,
            auth: Auth::None,
            headers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            root_certificates: Vec::new(),
            system_roots: true,
            identity: None,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            proxy: true,
            alerts_only: false,
            hmac_secret: None,
            install_template: false,
            template_name: None,
            template_options: None,
        }
    }
}

/// Configures an [`HttpCollector`]; see [`HttpCollector::builder`].
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_audit::backend::{Format, HttpCollector};
///
/// # fn f() -> Result<(), oauth_audit::ConfigError> {
/// let splunk = HttpCollector::builder("https://splunk.internal:8088/services/collector/event")
///     .format(Format::SplunkHec {
///         source: "orders-api".into(),
///         sourcetype: "_json".into(),
///         index: Some("security".into()),
///     })
///     .splunk_token(std::env::var("HEC_TOKEN").unwrap_or_default())
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// # let _ = splunk; Ok(()) }
/// ```
pub struct HttpCollectorBuilder {
    url: String,
    name: Option<String>,
    format: Format,
    event_format: EventFormat,
    gzip: bool,
    auth: Auth,
    headers: Vec<(String, Secret)>,
    timeout: Duration,
    root_certificates: Vec<Vec<u8>>,
    system_roots: bool,
    identity: Option<Secret<Vec<u8>>>,
    max_batch_bytes: usize,
    proxy: bool,
    alerts_only: bool,
    hmac_secret: Option<Secret<Vec<u8>>>,
    install_template: bool,
    template_name: Option<String>,
    template_options: Option<TemplateOptions>,
}

impl HttpCollectorBuilder {
    /// Sends only `SecurityAlert` events (the others count as delivered): a sink for
    /// responders, next to the one that keeps the whole trail. Always on for
    /// [`Format::Alertmanager`].
    pub fn alerts_only(mut self, alerts_only: bool) -> Self {
        self.alerts_only = alerts_only;
        self
    }

    /// Signs every request with HMAC-SHA256 under `secret`, as webhook receivers expect:
    /// `X-OAuth-Audit-Signature: t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`, the body
    /// as sent (after gzip), and `X-OAuth-Audit-Signature-V2: t=<t>,v2=<hex HMAC of
    /// "<t>.<key>.<body>">`, `key` being the `Idempotency-Key` value as sent (empty for the
    /// formats without one). A receiver recomputes it and refuses an old `t`, so a request
    /// can be neither forged nor replayed later; v2 also refuses a replay under another
    /// `Idempotency-Key`, which v1 does not see. An empty secret is refused at build.
    pub fn hmac_sha256_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.hmac_secret = Some(Secret(secret.into()));
        self
    }

    /// The body format (default [`Format::JsonLines`]).
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// How each event is written inside the body (default [`EventFormat::OAuthAudit`],
    /// schema v1): an ECS document suits Elasticsearch's `_bulk`, OCSF a security lake. Not
    /// for [`Format::Alertmanager`], whose alerts have their own shape. In another format
    /// than schema v1 the collector's [`Delivery`](crate::delivery::Delivery) takes no spool
    /// directory ([`Backend::accepts_json`](crate::delivery::Backend::accepts_json)).
    pub fn event_format(mut self, format: EventFormat) -> Self {
        self.event_format = format;
        self
    }

    /// With [`Format::ElasticsearchBulk`]: installs the index template of the event format
    /// ([`index_template`](crate::format::index_template)) before the first batch, with
    /// `PUT {base}/_index_template/{name}`, `base` being the `_bulk` URL without `/_bulk`
    /// (and without the index, for a `/{index}/_bulk` URL) and the credentials those of
    /// `_bulk` (default off). The template matches the index (a data stream of that name),
    /// and is named after it, unless [`template_name`](Self::template_name) or
    /// [`template_options`](Self::template_options) say otherwise.
    ///
    /// Until the template is installed, no `_bulk` is sent and every batch fails
    /// transiently with [`CollectorError::Template`](super::CollectorError::Template): its
    /// events wait (retried, spooled) rather than being indexed without their mappings, and
    /// each attempt asks again. A refusal (403 without the `manage_index_templates`
    /// privilege; 400, 413 or 422 for a template the cluster does not take) is logged at
    /// error level, but it is the configuration's fault, not the events': they are not
    /// dropped, as they are not for a `_bulk` answered 403.
    pub fn install_template(mut self, install: bool) -> Self {
        self.install_template = install;
        self
    }

    /// The name of the installed template (default: the index, when it is a plain name of
    /// lowercase letters, digits, `.`, `_` and `-`; else `oauth-audit`).
    pub fn template_name(mut self, name: impl Into<String>) -> Self {
        self.template_name = Some(name.into());
        self
    }

    /// The installed template's patterns, priority and ILM policy (default:
    /// `TemplateOptions::new(index)`).
    pub fn template_options(mut self, options: TemplateOptions) -> Self {
        self.template_options = Some(options);
        self
    }

    /// The backend's name in metrics, diagnostics and `dropped.sink` (default
    /// `elasticsearch`, `splunk-hec` or `http`, after the format).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Compresses request bodies with gzip (`Content-Encoding: gzip`; default off).
    /// Elasticsearch, OpenSearch, Splunk HEC and Vector decode it.
    pub fn gzip(mut self, enabled: bool) -> Self {
        self.gzip = enabled;
        self
    }

    /// Authenticates with `Authorization: Bearer <token>` (replaces any other credentials).
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Bearer(Secret(token.into()));
        self
    }

    /// Authenticates with HTTP Basic (replaces any other credentials).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::Basic {
            user: user.into(),
            password: Secret(password.into()),
        };
        self
    }

    /// Authenticates with a Splunk HEC token, `Authorization: Splunk <token>` (replaces any
    /// other credentials).
    pub fn splunk_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Splunk(Secret(token.into()));
        self
    }

    /// Authenticates with an Elasticsearch API key, `Authorization: ApiKey <key>`, where the
    /// key is the `encoded` value Elasticsearch returned (replaces any other credentials).
    pub fn elasticsearch_api_key(mut self, encoded: impl Into<String>) -> Self {
        self.auth = Auth::ApiKey(Secret(encoded.into()));
        self
    }

    /// Adds a header to every request (e.g. `X-Splunk-Request-Channel` when indexer
    /// acknowledgement is enabled on the HEC token, or a tenant header). Values are
    /// treated as secrets: `Debug` shows only the names.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), Secret(value.into())));
        self
    }

    /// How long one request may take, connecting included (default 30 s). A timeout counts
    /// as a transient failure.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Trusts the certificate authorities in this PEM (one or more certificates), in addition
    /// to the system's, e.g. an internal CA that signed the collector's certificate.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// Whether the system's certificate authorities are trusted (default `true`). With
    /// `false`, only those given to [`root_certificate_pem`](Self::root_certificate_pem) are.
    pub fn system_roots(mut self, enabled: bool) -> Self {
        self.system_roots = enabled;
        self
    }

    /// Presents a client certificate (mutual TLS): a PEM holding the certificate chain and
    /// its private key (PKCS#8, SEC1 or RSA).
    pub fn client_identity_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.identity = Some(Secret(pem.into()));
        self
    }

    /// Cuts a batch into requests whose body (before compression) stays under this many
    /// bytes (default 1 MiB); an event larger than that goes alone.
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Ignores the `HTTP_PROXY`/`HTTPS_PROXY` environment variables and connects directly
    /// (by default they are honoured, with `NO_PROXY`).
    pub fn no_proxy(mut self) -> Self {
        self.proxy = false;
        self
    }

    /// Checks the configuration and builds the collector.
    pub fn build(self) -> Result<HttpCollector, ConfigError> {
        let url = reqwest::Url::parse(&self.url)
            // The URL is not quoted back: it may carry credentials.
            .map_err(|err| ConfigError::invalid("url", format!("not a URL: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "url",
                format!("the scheme must be http or https, not {:?}", url.scheme()),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::invalid(
                "url",
                "credentials in the URL are not allowed: use basic_auth instead",
            ));
        }
        // No credentials (refused above) or query string, which may carry a token.
        let shown_url = crate::event::shown_url(url.as_str());
        if self.max_batch_bytes == 0 {
            return Err(ConfigError::invalid(
                "max_batch_bytes",
                "must be greater than zero",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid("timeout", "must be greater than zero"));
        }
        if let Some(secret) = &self.hmac_secret {
            // A signature under no key proves nothing: anyone can make it.
            if secret.0.iter().all(u8::is_ascii_whitespace) {
                return Err(ConfigError::invalid(
                    "hmac_sha256_secret",
                    "must not be empty",
                ));
            }
        }
        if matches!(self.format, Format::Alertmanager { .. })
            && self.event_format != EventFormat::OAuthAudit
        {
            return Err(ConfigError::invalid(
                "event_format",
                "Alertmanager alerts have their own shape: leave the event format out",
            ));
        }
        if let Format::ElasticsearchBulk { index } = &self.format {
            if index.is_empty() {
                return Err(ConfigError::invalid(
                    "format",
                    "the Elasticsearch index must not be empty",
                ));
            }
        }

        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.format.content_type()),
        );
        if self.gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let mut header_names = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::invalid("header", format!("{name:?} is not a valid header name"))
            })?;
            if RESERVED_HEADERS.contains(&parsed) {
                return Err(ConfigError::invalid(
                    "header",
                    format!("{parsed} is set by the collector itself and cannot be overridden"),
                ));
            }
            if parsed == header::AUTHORIZATION && !matches!(self.auth, Auth::None) {
                return Err(ConfigError::invalid(
                    "header",
                    "an Authorization header conflicts with the credentials already set \
                     (bearer_token, basic_auth, splunk_token or elasticsearch_api_key)",
                ));
            }
            headers.append(parsed.clone(), sensitive_value(&value.0, "header")?);
            header_names.push(parsed.to_string());
        }
        if let Some(authorization) = self.auth.header_value()? {
            headers.insert(header::AUTHORIZATION, authorization);
        }

        let mut client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("oauth-audit/", env!("CARGO_PKG_VERSION")));
        if !self.proxy {
            client = client.no_proxy();
        }
        let mut roots = Vec::new();
        for pem in &self.root_certificates {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|err| {
                ConfigError::invalid(
                    "root_certificate_pem",
                    format!("not a PEM certificate bundle: {}", error_chain(&err)),
                )
            })?;
            if certificates.is_empty() {
                return Err(ConfigError::invalid(
                    "root_certificate_pem",
                    "no certificate found in the PEM",
                ));
            }
            roots.extend(certificates);
        }
        if url.scheme() == "http" {
            // No TLS on this URL (redirects are not followed), so the system store is not
            // loaded: minimal images often have none.
            client = client.tls_certs_only(roots);
        } else if self.system_roots {
            client = client.tls_certs_merge(roots);
        } else {
            if roots.is_empty() {
                return Err(ConfigError::invalid(
                    "system_roots",
                    "with the system roots off, give the trusted CA with root_certificate_pem",
                ));
            }
            client = client.tls_certs_only(roots);
        }
        if let Some(identity) = &self.identity {
            // The parser's own message is kept out: it may quote the PEM it choked on.
            let identity = reqwest::Identity::from_pem(&identity.0).map_err(|_| {
                ConfigError::invalid(
                    "client_identity_pem",
                    "expected a PEM holding a certificate chain and its private key \
                     (PKCS#8, SEC1 or RSA)",
                )
            })?;
            client = client.identity(identity);
        }
        let client = client.build().map_err(|err| {
            ConfigError::invalid(
                "tls",
                format!(
                    "the HTTP client could not be built: {} (without system CA certificates, \
                     install them or give the collector's CA with root_certificate_pem)",
                    error_chain(&err)
                ),
            )
        })?;

        let template = if self.install_template {
            Some(template_install(
                &url,
                &self.format,
                self.event_format,
                self.template_name.as_deref(),
                self.template_options.as_ref(),
            )?)
        } else {
            None
        };
        let alerts_only = self.alerts_only || self.format.alerts_only();
        let mut secrets = self.auth.secrets();
        secrets.extend(self.headers.iter().map(|(_, value)| value.0.clone()));
        if let Some(query) = url.query() {
            secrets.push(query.to_owned());
            for pair in query.split('&') {
                secrets.extend(pair.split_once('=').map(|(_, value)| value.to_owned()));
            }
            secrets.extend(url.query_pairs().map(|(_, value)| value.into_owned()));
        }
        Ok(HttpCollector::new(Settings {
            name: self
                .name
                .unwrap_or_else(|| self.format.default_name().to_string()),
            url,
            shown_url,
            format: self.format,
            event_format: self.event_format,
            gzip: self.gzip,
            max_batch_bytes: self.max_batch_bytes,
            client,
            auth: self.auth.kind(),
            header_names,
            alerts_only,
            hmac_secret: self.hmac_secret,
            quoted_secrets: quoted_secrets(secrets),
            template,
        }))
    }
}

/// Whether `name` is a plain index or template name: lowercase letters, digits, `.`, `_`
/// and `-`, not starting with one of the last three.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['.', '_', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Where and what `install_template` puts, checked at build.
fn template_install(
    bulk_url: &reqwest::Url,
    format: &Format,
    event_format: EventFormat,
    name: Option<&str>,
    options: Option<&TemplateOptions>,
) -> Result<TemplateInstall, ConfigError> {
    let Format::ElasticsearchBulk { index } = format else {
        return Err(ConfigError::invalid(
            "install_template",
            "index templates are Elasticsearch's and OpenSearch's: only with the _bulk format",
        ));
    };
    let name = match name {
        Some(name) if plain_name(name) => name.to_owned(),
        Some(_) => {
            return Err(ConfigError::invalid(
                "template_name",
                "use lowercase letters, digits, '.', '_' and '-' (not first)",
            ))
        }
        None if plain_name(index) => index.clone(),
        None => "oauth-audit".to_owned(),
    };
    let path = bulk_url.path().trim_end_matches('/');
    let Some(base) = path.strip_suffix("/_bulk") else {
        return Err(ConfigError::invalid(
            "install_template",
            "the URL must be the _bulk endpoint (ending in /_bulk) to find the cluster's \
             _index_template endpoint",
        ));
    };
    // `/{index}/_bulk` targets the index; the template endpoint is the cluster's.
    let base = match base.rsplit_once('/') {
        Some((parent, last)) if last == index => parent,
        _ => base,
    };
    let mut url = bulk_url.clone();
    url.set_query(None);
    url.set_path(base);
    url.path_segments_mut()
        .map_err(|()| ConfigError::invalid("url", "cannot be a base URL"))?
        .pop_if_empty()
        .push("_index_template")
        .push(&name);
    let options = options
        .cloned()
        .unwrap_or_else(|| TemplateOptions::new(index.clone()));
    let body = serde_json::to_vec(&index_template(event_format, &options))
        .map_err(|err| ConfigError::invalid("install_template", err.to_string()))?;
    Ok(TemplateInstall {
        shown_url: crate::event::shown_url(url.as_str()),
        name,
        url,
        body,
    })
}

impl fmt::Debug for HttpCollectorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCollectorBuilder")
            .field("url", &crate::event::shown_url(&self.url))
            .field("name", &self.name)
            .field("format", &self.format)
            .field("event_format", &self.event_format)
            .field("gzip", &self.gzip)
            .field("auth", &self.auth)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("root_certificates", &self.root_certificates.len())
            .field("system_roots", &self.system_roots)
            .field("client_identity", &self.identity.is_some())
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("proxy", &self.proxy)
            .field("install_template", &self.install_template)
            .field("template_name", &self.template_name)
            .field("template_options", &self.template_options)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_unparsable_url_is_not_quoted_back() {
        let err = super::HttpCollector::builder("https://user:url-s3cret@collector:99999/_bulk")
            .build()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("url-s3cret"), "{err}");
        assert!(err.contains("not a URL"), "{err}");
    }

    use super::*;

    #[test]
    fn configuration_mistakes_are_found_at_build() {
        let cases = [
            HttpCollector::builder("ftp://collector/"),
            HttpCollector::builder("not a url"),
            HttpCollector::builder("https://user:hunter2@collector/"),
            HttpCollector::builder("https://collector/").max_batch_bytes(0),
            HttpCollector::builder("https://collector/").timeout(Duration::ZERO),
            HttpCollector::builder("https://collector/").header("Content-Type", "text/plain"),
            HttpCollector::builder("https://collector/").header("bad header", "x"),
            HttpCollector::builder("https://collector/").bearer_token("line\nbreak-hunter2"),
            HttpCollector::builder("https://collector/").bearer_token(""),
            HttpCollector::builder("https://collector/").hmac_sha256_secret(""),
            HttpCollector::builder("https://collector/").hmac_sha256_secret(" \n"),
            HttpCollector::builder("https://collector/")
                .bearer_token("t")
                .header("Authorization", "Other hunter2"),
            HttpCollector::builder("https://collector/").root_certificate_pem("hunter2"),
            HttpCollector::builder("https://collector/").system_roots(false),
            HttpCollector::builder("https://collector/").client_identity_pem("hunter2"),
            HttpCollector::builder("https://collector/").format(Format::ElasticsearchBulk {
                index: String::new(),
            }),
        ];
        for builder in cases {
            let error = builder.build().unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn the_template_goes_to_the_clusters_index_template_endpoint() {
        let bulk = |index: &str| Format::ElasticsearchBulk {
            index: index.into(),
        };
        let install = |url: &str, index: &str, name: Option<&str>| {
            template_install(
                &reqwest::Url::parse(url).unwrap(),
                &bulk(index),
                EventFormat::Ecs,
                name,
                None,
            )
        };
        for (url, index, name, expected) in [
            (
                "https://es:9200/_bulk?pipeline=geo",
                "oauth-audit",
                None,
                "https://es:9200/_index_template/oauth-audit",
            ),
            (
                "https://gateway/es/_bulk",
                "logs-oauth_audit-default",
                None,
                "https://gateway/es/_index_template/logs-oauth_audit-default",
            ),
            (
                "https://es:9200/audit/_bulk/",
                "audit",
                Some("audit-template"),
                "https://es:9200/_index_template/audit-template",
            ),
            (
                "https://es:9200/_bulk",
                "<audit-{now/d}>",
                None,
                "https://es:9200/_index_template/oauth-audit",
            ),
        ] {
            let template = install(url, index, name).unwrap();
            assert_eq!(template.url.as_str(), expected);
            let body: serde_json::Value = serde_json::from_slice(&template.body).unwrap();
            assert_eq!(body["index_patterns"], serde_json::json!([index]));
            assert_eq!(body["_meta"]["event_format"], "ecs");
        }
        assert!(install("https://es:9200/ingest", "a", None).is_err());
        assert!(install("https://es:9200/_bulk", "a", Some("Bad Name")).is_err());
        let not_bulk = HttpCollector::builder("https://collector/")
            .format(Format::JsonLines)
            .install_template(true)
            .build()
            .unwrap_err()
            .to_string();
        assert!(not_bulk.contains("install_template"), "{not_bulk}");
    }
}
