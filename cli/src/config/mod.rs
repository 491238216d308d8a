//! The configuration file (TOML), environment overrides and their checks.
//!
//! Every key is documented in `docs/config.md`. Values are checked while the file is read, so
//! a mistake is reported with its line, its key and what is wrong; nothing falls back to a
//! default silently.

#[cfg(test)]
mod docs_drift;
mod values;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use oauth_audit::config::SecretString;
pub use oauth_audit::config::{
    ChainConfig, DetectConfig, DpopConfig, EndpointsConfig, GeoIpConfig, QueueConfig, SinkConfig,
    TokenInspectorConfig,
};
pub use values::{
    shown_url, AllowedHost, AtLeastOne, Cidr, ClientIpHeader, HttpUrl, HumanDuration, ListenAddr,
    PositiveDuration, RateSetting, RequestPath, UpstreamUrl,
};

use crate::routes::RoutePattern;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `service.name` of every event.
    pub service_name: Option<String>,
    /// `service.instance` of every event.
    pub service_instance: Option<String>,
    /// Listening, forwarding, client addresses.
    #[serde(default)]
    pub proxy: ProxySection,
    /// OAuth endpoint paths of the upstream (the library's type).
    #[serde(default)]
    pub endpoints: EndpointsConfig,
    /// Bearer token verification (the library's type).
    #[serde(default)]
    pub jwt: TokenInspectorConfig,
    /// How DPoP proofs are checked (the library's type).
    #[serde(default)]
    pub dpop: DpopConfig,
    /// RFC 7662 introspection of opaque bearer tokens.
    pub introspection: Option<IntrospectionSection>,
    /// Protected routes and their scopes.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSection>,
    /// Writer queues (the library's type).
    #[serde(default)]
    pub queue: QueueConfig,
    /// Where events go: the library's sink types, tagged by `type`.
    #[serde(default, rename = "writer")]
    pub writers: Vec<Spanned<SinkConfig>>,
    /// Tamper-evident chaining and signed checkpoints (the library's type).
    pub chain: Option<ChainConfig>,
    /// Geo and ASN enrichment (the library's type); off when absent.
    pub geoip: Option<GeoIpConfig>,
    /// Detection rules on the live traffic (the library's type); off when absent.
    pub detect: Option<DetectConfig>,
}

/// `[proxy]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxySection {
    /// Where the proxy listens.
    pub listen: Option<ListenAddr>,
    /// Where requests go.
    pub upstream: Option<UpstreamUrl>,
    /// Proxies in front of this one whose forwarding headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<Cidr>,
    /// The one header those proxies write the client's address into.
    pub client_ip_header: Option<ClientIpHeader>,
    /// The header those proxies pass the client's TLS certificate in (RFC 8705).
    pub client_certificate_header: Option<String>,
    /// Paths forwarded but not audited.
    #[serde(default)]
    pub skip_paths: Vec<RequestPath>,
    /// Whose `x-request-id` the event's `request_id` (and the upstream's `X-Request-Id`) is
    /// taken from: `any_client` (default), `trusted_proxies` or `nobody`.
    #[serde(default)]
    pub request_id_from: oauth_audit::RequestIdFrom,
    /// The hosts the proxy answers for; any when empty.
    #[serde(default)]
    pub allowed_hosts: Vec<AllowedHost>,
    /// Send the client's `Host` upstream instead of the upstream's authority.
    #[serde(default)]
    pub preserve_host: bool,
    /// How long connecting to the upstream may take.
    pub connect_timeout: Option<HumanDuration>,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_timeout: Option<HumanDuration>,
    /// Where Prometheus metrics are served (`GET /metrics`); not served without it.
    pub metrics_listen: Option<ListenAddr>,
    /// How route rules read paths the upstream may read differently (`%2F`, `;x`, `%00`).
    #[serde(default)]
    pub ambiguous_paths: AmbiguousPathsSetting,
    /// Whether the upstream routes paths case-sensitively; unknown when absent.
    pub path_case: Option<PathCaseSetting>,
    /// How long a request head (HTTP/1) or a TLS handshake may take to arrive.
    pub header_timeout: Option<PositiveDuration>,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Option<PositiveDuration>,
    /// How long a request's client may send no part of its body.
    pub body_timeout: Option<PositiveDuration>,
    /// How long a write to a client may make no progress (a client that does not read its
    /// response) before its connection is closed; and how long an HTTP/2 stream's response
    /// may wait for its client's flow-control window before the stream is reset.
    pub send_timeout: Option<PositiveDuration>,
    /// How long a connection to the upstream may stay without a request.
    pub upstream_idle_timeout: Option<PositiveDuration>,
    /// How long a WebSocket tunnel may carry nothing either way before it is closed.
    pub tunnel_idle_timeout: Option<PositiveDuration>,
    /// Client connections served at once.
    pub max_connections: Option<AtLeastOne>,
    /// TLS on the listener.
    pub tls: Option<ListenerTls>,
    /// How an `https` upstream's certificate is verified.
    #[serde(default)]
    pub upstream_tls: UpstreamTls,
}

/// `ambiguous_paths` of `[proxy]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmbiguousPathsSetting {
    /// `400` when the readings fall under different rules and one enforces.
    #[default]
    Refuse,
    /// The upstream decodes `%2F`, `%5C`, `%00` and cuts `;parameters`: match that reading.
    Decode,
}

/// `path_case` of `[proxy]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathCaseSetting {
    /// `/Admin` and `/admin` are different paths upstream.
    Sensitive,
    /// `/Admin` and `/admin` are the same path upstream.
    Insensitive,
}

/// `[proxy.tls]`: the proxy listens on TLS with this certificate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM certificate chain, the server's certificate first.
    pub certificate: Spanned<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Spanned<PathBuf>,
    /// Whether TLS clients are asked for a certificate (RFC 8705 mutual TLS).
    #[serde(default)]
    pub client_certificates: ClientCertificatesSetting,
    /// PEM file of the CAs a client certificate must be issued by; any certificate when
    /// absent.
    pub client_ca_file: Option<Spanned<PathBuf>>,
    /// The header the client certificate is passed upstream in (URL-encoded PEM).
    pub forward_client_certificate: Option<String>,
}

/// `client_certificates` of `[proxy.tls]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientCertificatesSetting {
    /// Never asked for.
    #[default]
    None,
    /// Asked for; clients without one are served too.
    Optional,
    /// Clients without one fail the handshake.
    Required,
}

/// `[proxy.upstream_tls]`: the roots an `https` upstream is verified against.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM file of the CA certificates to trust.
    pub ca_file: Option<Spanned<PathBuf>>,
    /// Trust the operating system's roots too (default: only without `ca_file`).
    pub system_roots: Option<bool>,
}

impl UpstreamTls {
    /// Whether the system's roots are trusted.
    pub fn system_roots(&self) -> bool {
        self.system_roots.unwrap_or(self.ca_file.is_none())
    }
}

/// `[introspection]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSection {
    /// The introspection endpoint.
    pub url: HttpUrl,
    /// The client the proxy authenticates as.
    pub client_id: String,
    /// Its secret (better: `OAUTH_AUDIT_INTROSPECTION_CLIENT_SECRET`).
    pub client_secret: Option<SecretString>,
    /// How long an answer is reused at most.
    pub cache_ttl: Option<HumanDuration>,
    /// How long an unknown token is remembered as unknown.
    pub negative_cache_ttl: Option<HumanDuration>,
    /// The most introspection calls one client address may cause.
    pub rate_per_client: Option<RateSetting>,
    /// The most introspection calls in total.
    pub rate_total: Option<RateSetting>,
}

/// `[[route]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSection {
    /// Which paths.
    pub path: PathPattern,
    /// Which methods; all when absent.
    #[serde(default)]
    pub methods: Vec<MethodName>,
    /// The scopes the route requires.
    pub scopes: Spanned<Vec<String>>,
    /// `all` (default) or `any`.
    #[serde(default, rename = "match")]
    pub mode: MatchMode,
    /// Refuse requests that do not meet the requirement.
    #[serde(default)]
    pub enforce: bool,
    /// Enforce, and take only DPoP-bound tokens with a valid proof.
    #[serde(default)]
    pub require_dpop: bool,
}

/// A route pattern, checked when read.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct PathPattern(pub RoutePattern);

impl TryFrom<String> for PathPattern {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        RoutePattern::parse(&value).map(PathPattern)
    }
}

/// An HTTP method name.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "String")]
pub struct MethodName(pub http::Method);

impl TryFrom<String> for MethodName {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() || value.bytes().any(|b| !b.is_ascii_uppercase()) {
            return Err(format!(
                "{value:?} is not an HTTP method: write it in capitals, e.g. \"GET\""
            ));
        }
        http::Method::from_bytes(value.as_bytes())
            .map(MethodName)
            .map_err(|_| format!("{value:?} is not an HTTP method"))
    }
}

/// `match` of a route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Every scope.
    #[default]
    All,
    /// One of them.
    Any,
}

/// A configuration that cannot be used: where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file cannot be read.
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value or the syntax is wrong at a known place.
    #[error("{path}:{line}:{column}: {}{message}\n{line:>5} | {text}", key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The dotted key, when one can be named.
        key: Option<String>,
        /// What is wrong.
        message: String,
        /// The line as written.
        text: String,
    },
    /// An environment variable has a value that cannot be used.
    #[error("environment variable {variable}: {message}")]
    Env {
        /// The variable.
        variable: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl FileConfig {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses and checks `text`, read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigFileError> {
        let deserializer = toml::de::Deserializer::parse(text).map_err(|err| {
            let offset = err.span().map_or(0, |span| span.start);
            located(path, text, offset, err.message().trim_end().to_owned())
        })?;
        // serde_path_to_error records where in the document serde was when it failed.
        let config: FileConfig = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let steps = Step::path(err.path());
            let err = err.into_inner();
            let start = err.span().map_or(0, |span| span.start);
            let offset = entry_offset(text, start, &steps, err.message());
            located(path, text, offset, err.message().trim_end().to_owned())
        })?;
        config.check(path, text)?;
        Ok(config)
    }

    /// Checks that involve more than one value.
    fn check(&self, path: &Path, text: &str) -> Result<(), ConfigFileError> {
        if let Some(prefix) = &self.endpoints.login_success_redirect {
            if prefix.trim().is_empty() {
                let offset =
                    value_offset(text, &["endpoints", "login_success_redirect"]).unwrap_or(0);
                return Err(located(
                    path,
                    text,
                    offset,
                    "must not be empty (leave it out for the default rule)".into(),
                ));
            }
        }
        for (index, writer) in self.writers.iter().enumerate() {
            let problem = writer.get_ref().queue().problem();
            if let Some(problem) = problem {
                let start = writer.span().start;
                let steps = [Step::Key("writer".into()), Step::Index(index)];
                let offset = entry_offset(text, start, &steps, problem);
                return Err(located(path, text, offset, problem.replace('`', "")));
            }
        }
        let upstream_tls = &self.proxy.upstream_tls;
        if upstream_tls.system_roots == Some(false) && upstream_tls.ca_file.is_none() {
            let offset = value_offset(text, &["proxy", "upstream_tls", "system_roots"])
                .map_or(0, |at| line_start(text, at));
            return Err(located(
                path,
                text,
                offset,
                "system_roots = false needs a ca_file: no https upstream could be verified".into(),
            ));
        }
        if let Some((key, problem)) = self.jwt.problem() {
            let offset = value_offset(text, &["jwt", key]).unwrap_or(0);
            return Err(located(path, text, offset, problem));
        }
        for route in &self.routes {
            if route.scopes.get_ref().iter().any(|s| s.trim().is_empty()) {
                return Err(located(
                    path,
                    text,
                    route.scopes.span().start,
                    "a scope name cannot be empty".into(),
                ));
            }
            if route.scopes.get_ref().is_empty() {
                return Err(located(
                    path,
                    text,
                    route.scopes.span().start,
                    "a route needs at least one scope (leave unprotected paths out)".into(),
                ));
            }
        }
        Ok(())
    }

    /// Applies the `OAUTH_AUDIT_...` variables that have no command-line flag (those with a
    /// flag are read by the flag, see `--help`).
    pub fn apply_env(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigFileError> {
        fn parsed<T: TryFrom<String, Error = String>>(
            variable: &'static str,
            value: String,
        ) -> Result<T, ConfigFileError> {
            T::try_from(value).map_err(|message| ConfigFileError::Env { variable, message })
        }
        if let Some(v) = var("OAUTH_AUDIT_SERVICE_INSTANCE") {
            self.service_instance = Some(v);
        }
        if let Some(v) = var("OAUTH_AUDIT_JWKS_FILE") {
            self.jwt.jwks_file = Some(PathBuf::from(v));
        }
        if let Some(v) = var("OAUTH_AUDIT_LEEWAY") {
            self.jwt.leeway = Some(parsed("OAUTH_AUDIT_LEEWAY", v)?);
        }
        if let Some(v) = var("OAUTH_AUDIT_INTROSPECTION_CLIENT_SECRET") {
            match &mut self.introspection {
                Some(section) => section.client_secret = Some(v.into()),
                None => {
                    return Err(ConfigFileError::Env {
                        variable: "OAUTH_AUDIT_INTROSPECTION_CLIENT_SECRET",
                        message: "set, but the file has no [introspection] section".into(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// One step of a key path: a table's key or an array's index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Step {
    fn path(path: &serde_path_to_error::Path) -> Vec<Step> {
        path.iter()
            .filter_map(|segment| match segment {
                // `toml::Spanned` reads its value under a private key of its own.
                serde_path_to_error::Segment::Map { key }
                    if key.starts_with("$__serde_spanned") =>
                {
                    None
                }
                serde_path_to_error::Segment::Map { key } => Some(Step::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Step::Index(*index)),
                _ => None,
            })
            .collect()
    }
}

/// Where an error is. toml's span, except when it points at a table's header: a
/// `[[writer]]` table is read whole before its `type` decides how (serde buffers it), so an
/// error inside it is reported at the header. Then the entry the message names in backticks
/// (a key, or a string value) is looked up, with toml's spans, in the table at `steps`: its
/// key for a key, its value for a value.
fn entry_offset(text: &str, start: usize, steps: &[Step], message: &str) -> usize {
    let at_header = text
        .get(start..)
        .is_some_and(|rest| rest.trim_start().starts_with('['));
    let Some(word) = message.split('`').nth(1).filter(|w| !w.is_empty()) else {
        return start;
    };
    if !at_header {
        return start;
    }
    let Ok(document) = toml::de::DeTable::parse(text) else {
        return start;
    };
    let Some((table, header)) = table_at(document.get_ref(), steps) else {
        return start;
    };
    // Not found: the table's own header (toml points at the first one of an array).
    let start = header.unwrap_or(start);
    table
        .iter()
        .find_map(|(key, value)| {
            if key.get_ref() == word {
                Some(key.span().start)
            } else if value.get_ref().as_str() == Some(word) {
                Some(value.span().start)
            } else {
                None
            }
        })
        .unwrap_or(start)
}

/// The table at `steps` from `root`, following keys through tables and indices through
/// arrays (of tables), and where that table starts when it is not the root.
fn table_at<'a, 'i>(
    root: &'a toml::de::DeTable<'i>,
    steps: &[Step],
) -> Option<(&'a toml::de::DeTable<'i>, Option<usize>)> {
    let mut table = root;
    let mut start = None;
    let mut array: Option<&'a toml::de::DeArray<'i>> = None;
    for step in steps {
        let value = match step {
            Step::Key(key) => table.get(key.as_str())?,
            Step::Index(index) => array.take()?.get(*index)?,
        };
        match value.get_ref() {
            toml::de::DeValue::Table(inner) => {
                table = inner;
                start = Some(value.span().start);
            }
            toml::de::DeValue::Array(inner) => array = Some(inner),
            _ => return None,
        }
    }
    array.is_none().then_some((table, start))
}

/// Where the value of the key at `path` starts, from toml's own spans (the file has parsed
/// already, so it parses again).
fn value_offset(text: &str, path: &[&str]) -> Option<usize> {
    let document = toml::de::DeTable::parse(text).ok()?;
    let (last, tables) = path.split_last()?;
    let mut table = document.get_ref();
    for key in tables {
        table = table.get(*key)?.get_ref().as_table()?;
    }
    Some(table.get(*last)?.span().start)
}

/// The start of the line `offset` is on.
fn line_start(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

/// An error at byte `offset` of `text`, with its line, column and key.
fn located(path: &Path, text: &str, offset: usize, message: String) -> ConfigFileError {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    let line_text = text[line_start..].lines().next().unwrap_or("");
    let key = key_at(text, line_start, line_text);
    let (text, mut message) = shown_line(line_text, key.as_deref(), &message);
    if line_text.trim_start().starts_with('[') {
        // Reported at a table's header, the value is on a line we cannot point at (an
        // inline or nested table): the message must not quote it.
        message = without_literals(&message);
    }
    ConfigFileError::At {
        path: path.to_owned(),
        line,
        column,
        text,
        key,
        message,
    }
}

/// The line quoted in an error, with the value hidden when its key may hold a secret (a URL
/// with a password, an `Authorization` header), is unknown (a misspelt `client_secret`), or
/// looks like it carries credentials (`user:password@host`); URLs in it lose their query.
/// Returns the line and the message, from which a hidden value is removed too (the TOML
/// reader's messages quote the value: ``invalid type: integer `123` ``).
fn shown_line(line: &str, key: Option<&str>, message: &str) -> (String, String) {
    const SECRET_WORDS: [&str; 8] = [
        "secret",
        "password",
        "token",
        "key",
        "url",
        "header",
        "authorization",
        "credential",
    ];
    let key = key.unwrap_or_default().to_ascii_lowercase();
    let Some((name, value)) = line.split_once('=') else {
        return (line.to_owned(), message.to_owned());
    };
    let hidden = message.contains("unknown field")
        || value.contains('@')
        || SECRET_WORDS.iter().any(|word| key.contains(word));
    if hidden {
        let mut message = message.to_owned();
        for part in value_parts(value) {
            message = message.replace(part, "…");
        }
        return (format!("{name}= … (value hidden)"), message);
    }
    let mut shown = value.to_owned();
    let mut message = message.to_owned();
    for part in value_parts(value) {
        if part.contains("://") || part.contains('?') {
            let url = shown_url(part);
            shown = shown.replace(part, &url);
            message = message.replace(part, &url);
        }
    }
    (format!("{name}={shown}"), message)
}

/// A TOML reader's message without the value it quotes: ``invalid type: integer `123`,
/// expected a string`` -> `invalid type: integer, expected a string`; ``unknown variant `x` ``
/// -> ``unknown variant `…` ``.
fn without_literals(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (unexpected, expected) = rest.split_once(", expected").unwrap_or((rest, ""));
            let kind = unexpected.split([' ', '`', '"']).next().unwrap_or("");
            let expected = if expected.is_empty() {
                String::new()
            } else {
                format!(", expected{expected}")
            };
            return format!("{prefix}{kind}{expected}");
        }
    }
    match message.strip_prefix("unknown variant `") {
        Some(rest) => match rest.split_once('`') {
            Some((_, after)) => format!("unknown variant `…`{after}"),
            None => "unknown variant".to_owned(),
        },
        None => message.to_owned(),
    }
}

/// The strings and bare words of a TOML value as written (`["a=b", 12]` -> `a=b`, `12`),
/// longest first so that a part inside another is replaced after it.
fn value_parts(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find(|c: char| !(c.is_whitespace() || "[]{},=".contains(c))) {
        rest = &rest[start..];
        if rest.starts_with('#') {
            break;
        }
        let (part, after) = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let inner = &rest[1..];
                match inner.find(quote) {
                    Some(end) => (&inner[..end], &inner[end + 1..]),
                    None => (inner, ""),
                }
            }
            _ => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || "[]{},=".contains(c))
                    .unwrap_or(rest.len());
                rest.split_at(end)
            }
        };
        if part.len() >= 3 {
            parts.push(part);
        }
        rest = after;
    }
    parts.sort_by_key(|part| std::cmp::Reverse(part.len()));
    parts
}

/// The dotted key of the line starting at `line_start`: the table header above it and the
/// key before its `=`.
fn key_at(text: &str, line_start: usize, line_text: &str) -> Option<String> {
    let header = |line: &str| {
        let line = line.trim();
        line.starts_with('[').then(|| {
            line.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
    };
    if let Some(table) = header(line_text) {
        return Some(table);
    }
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('#'));
    let table = text[..line_start].lines().rev().find_map(header);
    match (table, key) {
        (Some(table), Some(key)) if !table.is_empty() => Some(format!("{table}.{key}")),
        (_, Some(key)) => Some(key),
        (table, None) => table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_quote_a_secret_back() {
        let dir = std::env::temp_dir().join(format!("oauth-audit-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cases = [
            // A misspelt key: its value is a secret all the same.
            "[introspection]\nurl = \"http://127.0.0.1:1/introspect\"\nclient_id = \"proxy\"\nclient_secert = \"s3cr3t-value\"\n",
            // Credentials inside URLs are refused without being shown.
            "[proxy]\nupstream = \"http://admin:s3cr3t-value@127.0.0.1:3000\"\n",
            "[jwt]\njwks_url = \"https://admin:s3cr3t-value@issuer.example/jwks\"\n",
        ];
        for (i, text) in cases.iter().enumerate() {
            let path = dir.join(format!("case{i}.toml"));
            std::fs::write(&path, text).unwrap();
            let err = FileConfig::load(&path).unwrap_err().to_string();
            assert!(!err.contains("s3cr3t-value"), "case {i}: {err}");
            assert!(err.contains(&format!("case{i}.toml:")), "case {i}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn quoted_lines_lose_secrets_and_queries() {
        let (line, message) = shown_line(
            "upstream = \"http://h:1/?token=s3cr3t\" # note",
            Some("proxy.upstream"),
            "\"http://h:1/?token=s3cr3t\" bad",
        );
        assert_eq!(line, "upstream = \"http://h:1/?…\" # note");
        assert_eq!(message, "\"http://h:1/?…\" bad");
        let (line, message) = shown_line(
            "client_secret = 31415926",
            Some("introspection.client_secret"),
            "invalid type: integer `31415926`, expected a string",
        );
        assert!(!line.contains("31415926") && !message.contains("31415926"));
        assert_eq!(
            without_literals("invalid type: integer `31415926`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            without_literals("invalid type: string \"s3cr3t\", expected u64"),
            "invalid type: string, expected u64"
        );
        assert_eq!(
            without_literals("unknown variant `s3cr3t`, expected `jsonl`"),
            "unknown variant `…`, expected `jsonl`"
        );
        assert_eq!(
            value_parts(" [\"a=b\", 'single', 12345, { k = \"v-v-v\" }] # c"),
            vec!["single", "12345", "v-v-v", "a=b"]
        );
    }

    #[test]
    fn urls_in_messages_lose_their_credentials_and_query() {
        assert_eq!(
            shown_url("https://user:pw@es.example:9200/_bulk?token=t"),
            "https://…@es.example:9200/_bulk?…"
        );
        assert_eq!(
            shown_url("http://127.0.0.1:3000/x"),
            "http://127.0.0.1:3000/x"
        );
    }

    fn parse(text: &str) -> Result<FileConfig, String> {
        FileConfig::parse(Path::new("t.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn errors_name_line_and_key() {
        let err = parse("service_name = \"x\"\n\n[proxy]\nupstream = \"ftp://idp\"\n").unwrap_err();
        assert!(
            err.starts_with("t.toml:4:12: key `proxy.upstream`: "),
            "{err}"
        );
        assert!(err.contains("must be an http:// or https:// URL"), "{err}");

        let err = parse("[proxy]\ntrusted_proxies = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(err.starts_with("t.toml:2:"), "{err}");
        assert!(err.contains("proxy.trusted_proxies"), "{err}");
        assert!(err.contains("not an IP address or CIDR"), "{err}");

        let err = parse("[jwt]\nlewway = \"30s\"\n").unwrap_err();
        assert!(err.contains("t.toml:2:1: key `jwt.lewway`"), "{err}");
        assert!(err.contains("unknown field"), "{err}");

        let err = parse("[[route]]\npath = \"/a\"\nscopes = []\n").unwrap_err();
        assert!(err.contains("t.toml:3:10: key `route.scopes`"), "{err}");

        let err = parse("[[writer]]\ntype = \"kafka\"\n").unwrap_err();
        assert!(err.contains("t.toml:2:8: key `writer.type`"), "{err}");
        assert!(err.contains("unknown variant"), "{err}");

        let err = parse("[[writer]]\ntype = \"jsonl\"\npath = \"a\"\n  flsh = 1\n").unwrap_err();
        assert!(
            err.contains("t.toml:4:3: key `writer.flsh`: unknown field"),
            "{err}"
        );

        let err = parse("[jwt]\njwks_url = \"https://idp/jwks\"\njwks_file = \"jwks.json\"\n")
            .unwrap_err();
        assert!(
            err.contains("t.toml:3:13: key `jwt.jwks_file`: set either"),
            "{err}"
        );

        let err = parse("[[writer]]\ntype = \"tracing\"\noverflow = \"block\"\n").unwrap_err();
        assert!(
            err.contains(
                "t.toml:3:1: key `writer.overflow`: overflow = \"block\" needs a block_timeout"
            ),
            "{err}"
        );
        let err = parse("[[writer]]\ntype = \"tracing\"\nblock_timeout = \"1s\"\n").unwrap_err();
        assert!(
            err.contains("t.toml:3:1: key `writer.block_timeout`: block_timeout applies only"),
            "{err}"
        );

        // In the second of several tables, the error is at its own line, found with
        // toml's spans (toml itself points at the first `[[writer]]`).
        let err = parse(
            "[[writer]]\ntype = \"tracing\"\n[[writer]]\ntype = \"jsonl\"\npath = \"a\"\nflsh = 1\n",
        )
        .unwrap_err();
        assert!(
            err.contains("t.toml:6:1: key `writer.flsh`: unknown field"),
            "{err}"
        );
        let err = parse(
            "[[writer]]\ntype = \"tracing\"\n[[writer]]\ntype = \"jsonl\"\npath = \"a\"\nflush = \"never\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("t.toml:6:9: key `writer.flush`: unknown variant `never`"),
            "{err}"
        );
        let err = parse(
            "[[writer]]\ntype = \"tracing\"\n\n[[writer]]\ntype = \"tracing\"\noverflow = \"block\"\n",
        )
        .unwrap_err();
        assert!(
            err.contains("t.toml:6:1: key `writer.overflow`: overflow = \"block\" needs"),
            "{err}"
        );

        let err = parse("[jwt]\nleeway = 30\n").unwrap_err();
        assert!(err.contains("key `jwt.leeway`"), "{err}");
    }

    #[test]
    fn a_full_file_parses() {
        let config = parse(
            r#"
service_name = "idp"
[proxy]
listen = "127.0.0.1:8080"
upstream = "http://127.0.0.1:3000"
trusted_proxies = ["10.0.0.0/8", "::1"]
upstream_idle_timeout = "4s"
[endpoints]
defaults = false
token = ["/oauth2/token"]
[jwt]
jwks_url = "http://127.0.0.1:3000/jwks"
issuers = ["http://127.0.0.1:3000"]
leeway = "30s"
[[route]]
path = "/api/orders/{id}"
methods = ["GET"]
scopes = ["orders:read"]
[[writer]]
type = "jsonl"
path = "-"
[[writer]]
type = "rotating"
dir = "/var/log/oauth-audit"
rotation = "hourly"
[[writer]]
type = "tracing"
"#,
        )
        .unwrap();
        assert_eq!(config.writers.len(), 3);
        assert_eq!(config.routes[0].mode, MatchMode::All);
        assert_eq!(
            config.proxy.upstream_idle_timeout.map(|d| d.0),
            Some(std::time::Duration::from_secs(4))
        );
        assert_eq!(
            config.jwt.leeway,
            Some(HumanDuration(std::time::Duration::from_secs(30)))
        );
    }

    #[test]
    fn discovery_and_oidc_endpoint_keys_parse() {
        let config = parse(
            "[endpoints]\nissuer_url = \"https://as.example/realms/main\"\npushed_authorization = [\"/par\"]\nuserinfo = [\"/me\"]\nend_session = [\"/logout\"]\ndevice_authorization = [\"/device/code\"]\nbackchannel_authentication = [\"/bc-authorize\"]\n",
        )
        .unwrap();
        let issuer = config.endpoints.issuer_url.as_ref().map(|u| u.0.as_str());
        assert_eq!(issuer, Some("https://as.example/realms/main"));
        let endpoints = config.endpoints.build().unwrap();
        use oauth_audit::oauth::Endpoint;
        assert_eq!(
            endpoints.lookup("/par"),
            Some(Endpoint::PushedAuthorization)
        );
        assert_eq!(endpoints.lookup("/me"), Some(Endpoint::UserInfo));
        assert_eq!(endpoints.lookup("/logout"), Some(Endpoint::EndSession));
        assert_eq!(
            endpoints.lookup("/device/code"),
            Some(Endpoint::DeviceAuthorization)
        );
        assert_eq!(
            endpoints.lookup("/bc-authorize"),
            Some(Endpoint::BackchannelAuthentication)
        );
        let err = parse("[endpoints]\nissuer_url = \"as.example\"\n").unwrap_err();
        assert!(err.contains("key `endpoints.issuer_url`"), "{err}");
    }

    #[test]
    fn environment_overrides() {
        let mut config = parse("[jwt]\nleeway = \"30s\"\n").unwrap();
        config
            .apply_env(|k| (k == "OAUTH_AUDIT_LEEWAY").then(|| "5s".to_owned()))
            .unwrap();
        assert_eq!(
            config.jwt.leeway,
            Some(HumanDuration(std::time::Duration::from_secs(5)))
        );
        let err = config
            .apply_env(|k| (k == "OAUTH_AUDIT_LEEWAY").then(|| "soon".to_owned()))
            .unwrap_err();
        assert!(err
            .to_string()
            .starts_with("environment variable OAUTH_AUDIT_LEEWAY"));
    }
}
