//! Which paths are OAuth endpoints, and how their traffic is read.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderName;

use super::device::{DevicePolling, DeviceTracker};
use super::login_rule::LoginRule;
use super::metadata::ProviderMetadata;
use super::pushed_requests::PushedRequests;
use crate::request_target::CanonicalPath;
use crate::tee::{CaptureBudget, Tee};
use crate::ConfigError;

/// Endpoint paths to their roles. Every request's path is looked up here, so the hash is
/// foldhash's rather than SipHash (193 instructions a lookup in the profile): the map is
/// built once from the configuration and only read after, so a path an attacker chose can
/// cost one lookup but can never add to the table or lengthen its chains. For the same
/// reason its seed is fixed rather than random: a random one bought nothing, and made a
/// lookup cost up to 100 instructions more or less from one process to the next (whether
/// the path's slot group held a configured path with the same tag), which the instruction
/// profile (`scripts/profile`) showed as noise.
type PathMap = HashMap<String, Endpoint, foldhash::fast::FixedState>;

/// A one-bit summary of each configured path (lower-cased, canonical): its length and last
/// byte, mixed into one of 128 bits. A plain path whose bit is not set is no endpoint, known
/// without hashing it: most requests are to other routes, and few of them share both the
/// length and the last byte of an endpoint's path.
#[derive(Clone, Copy, Debug, Default)]
struct Summary(u128);

impl Summary {
    fn of<'p>(paths: impl IntoIterator<Item = &'p String>) -> Self {
        Summary(
            paths
                .into_iter()
                .fold(0, |bits, path| bits | 1 << Self::bit(path)),
        )
    }

    fn bit(path: &str) -> u32 {
        let last = path.as_bytes().last().copied().unwrap_or(0);
        (path.len() as u32)
            .wrapping_mul(31)
            .wrapping_add(u32::from(last))
            % u128::BITS
    }

    /// Whether a configured path may be `path` (lower-cased, canonical).
    fn may_be(self, path: &str) -> bool {
        self.0 >> Self::bit(path) & 1 == 1
    }
}

/// The role of an OAuth endpoint path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// The token endpoint (RFC 6749 §3.2): `AccessTokenIssued`, `TokenRequestFailed`.
    Token,
    /// The revocation endpoint (RFC 7009): `TokenRevoked`, `TokenRevocationFailed`.
    Revocation,
    /// The introspection endpoint (RFC 7662): `TokenIntrospected`,
    /// `TokenIntrospectionFailed`.
    Introspection,
    /// The authorization endpoint (RFC 6749 §3.1): `AuthorizationRequested`,
    /// `AuthorizationGranted`, `AuthorizationFailed`.
    Authorization,
    /// A login form: `LoginSucceeded`, `LoginFailed`.
    Login,
    /// The pushed authorization request endpoint (RFC 9126): `AuthorizationRequested` with
    /// `oauth.pushed: true` and the `request_uri`'s fingerprint, or `AuthorizationFailed`.
    PushedAuthorization,
    /// The OpenID Connect UserInfo endpoint: audited like a protected route
    /// (`ResourceAccessed`, `AccessDenied`, with the presented token's details) and named by
    /// `oauth.endpoint: "userinfo"`.
    UserInfo,
    /// The OpenID Connect end-session (RP-Initiated Logout) endpoint: `LogoutSucceeded`,
    /// `LogoutFailed`.
    EndSession,
    /// The device authorization endpoint (RFC 8628 §3.1): `AuthorizationRequested` (the
    /// server answered a device code and a user code) or `AuthorizationFailed`, with
    /// `oauth.endpoint: "device_authorization"` and the device code's fingerprint.
    DeviceAuthorization,
    /// The OpenID Connect CIBA backchannel authentication endpoint (CIBA Core §7):
    /// `AuthorizationRequested` (the server answered an `auth_req_id`) or
    /// `AuthorizationFailed`, with `oauth.endpoint: "backchannel_authentication"` and the
    /// `auth_req_id`'s fingerprint.
    BackchannelAuthentication,
}

impl Endpoint {
    /// The role's name in configuration and in `oauth.endpoint` (`token`, `userinfo`,
    /// `pushed_authorization`, `end_session`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Revocation => "revocation",
            Endpoint::Introspection => "introspection",
            Endpoint::Authorization => "authorization",
            Endpoint::Login => "login",
            Endpoint::PushedAuthorization => "pushed_authorization",
            Endpoint::UserInfo => "userinfo",
            Endpoint::EndSession => "end_session",
            Endpoint::DeviceAuthorization => "device_authorization",
            Endpoint::BackchannelAuthentication => "backchannel_authentication",
        }
    }

    /// The role an authorization server metadata member names.
    fn of_metadata_member(member: &str) -> Option<Endpoint> {
        Some(match member {
            "token_endpoint" => Endpoint::Token,
            "revocation_endpoint" => Endpoint::Revocation,
            "introspection_endpoint" => Endpoint::Introspection,
            "authorization_endpoint" => Endpoint::Authorization,
            "pushed_authorization_request_endpoint" => Endpoint::PushedAuthorization,
            "userinfo_endpoint" => Endpoint::UserInfo,
            "end_session_endpoint" => Endpoint::EndSession,
            "device_authorization_endpoint" => Endpoint::DeviceAuthorization,
            "backchannel_authentication_endpoint" => Endpoint::BackchannelAuthentication,
            _ => return None,
        })
    }
}

/// How many body bytes are copied for inspection unless configured otherwise: 64 KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The largest accepted body limit: 16 MiB.
const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The default of [`EndpointsBuilder::max_captured_bytes`]: 64 MiB.
pub const DEFAULT_MAX_CAPTURED_BYTES: usize = 64 * 1024 * 1024;

/// Which request paths are OAuth endpoints, and how their traffic is read.
///
/// The defaults are `/token`, `/revoke`, `/introspect` and `/authorize`, no login route,
/// a 64 KiB inspection limit, reasons from `x-revocation-reason`, and one device-code poll
/// event per outcome change.
///
/// Paths match in their canonical form ([`CanonicalPath`]), whatever the case: `/token/`,
/// `//token`, `/%74oken`, `/Token` and `/token;x` are all the token endpoint, so no
/// spelling an authorization server may accept turns a token request into an anonymous
/// `ResourceAccessed` event.
///
/// ```
/// use oauth_audit::oauth::{Endpoint, Endpoints};
///
/// let keycloak = Endpoints::builder()
///     .no_defaults()
///     .path("/realms/main/protocol/openid-connect/token", Endpoint::Token)
///     .path("/realms/main/protocol/openid-connect/revoke", Endpoint::Revocation)
///     .path("/realms/main/protocol/openid-connect/token/introspect", Endpoint::Introspection)
///     .path("/realms/main/protocol/openid-connect/auth", Endpoint::Authorization)
///     .login("/login")
///     .build()
///     .unwrap();
/// assert_eq!(keycloak.lookup("/login"), Some(Endpoint::Login));
/// assert_eq!(keycloak.lookup("/Login/"), Some(Endpoint::Login));
/// assert_eq!(keycloak.lookup("/token"), None);
/// ```
#[derive(Clone, Debug)]
pub struct Endpoints {
    inner: Arc<Inner>,
}

#[derive(Clone, Debug)]
pub(crate) struct Inner {
    /// Keyed by the canonical path, lower-cased.
    paths: PathMap,
    /// The summary of `paths`' keys.
    summary: Summary,
    /// Keyed by the canonical path as configured.
    exact: PathMap,
    /// Roles given a path by the operator (not only by the defaults).
    configured: Vec<Endpoint>,
    pub(crate) body_limit: usize,
    pub(crate) capture_budget: CaptureBudget,
    pub(crate) username_field: String,
    pub(crate) reason_header: Option<HeaderName>,
    pub(crate) login_rule: LoginRule,
    pub(crate) device: Option<DeviceTracker>,
    /// Pushed authorization requests by `request_uri` fingerprint, for the authorization
    /// requests that use them.
    pub(crate) pushed: PushedRequests,
    /// A configured (or same-origin discovered) path is the UserInfo endpoint:
    /// protected-route events look their path up.
    has_userinfo: bool,
}

impl Default for Endpoints {
    fn default() -> Self {
        let builder = Endpoints::builder();
        let (paths, exact) = keys(builder.paths);
        Endpoints {
            inner: Arc::new(Inner {
                summary: Summary::of(paths.keys()),
                paths,
                exact,
                configured: Vec::new(),
                body_limit: DEFAULT_BODY_LIMIT,
                capture_budget: CaptureBudget::new(DEFAULT_MAX_CAPTURED_BYTES),
                username_field: builder.username_field,
                reason_header: Some(HeaderName::from_static("x-revocation-reason")),
                login_rule: builder.login_rule,
                device: DeviceTracker::new(builder.device_polling),
                pushed: PushedRequests::new(builder.pushed_requests_tracked),
                has_userinfo: false,
            }),
        }
    }
}

impl Endpoints {
    /// Starts from the default paths (`/token`, `/revoke`, `/introspect`, `/authorize`).
    pub fn builder() -> EndpointsBuilder {
        EndpointsBuilder {
            paths: vec![
                ("/token".to_owned(), Endpoint::Token),
                ("/revoke".to_owned(), Endpoint::Revocation),
                ("/introspect".to_owned(), Endpoint::Introspection),
                ("/authorize".to_owned(), Endpoint::Authorization),
            ],
            configured: Vec::new(),
            discovered: None,
            body_limit: DEFAULT_BODY_LIMIT,
            max_captured_bytes: DEFAULT_MAX_CAPTURED_BYTES,
            username_field: "username".to_owned(),
            reason_header: Some("x-revocation-reason".to_owned()),
            login_rule: LoginRule::default(),
            device_polling: DevicePolling::default(),
            pushed_requests_tracked: DEFAULT_PUSHED_REQUESTS_TRACKED,
        }
    }

    /// No OAuth endpoints: every request is a protected-route request.
    pub fn none() -> Self {
        Endpoints {
            inner: Arc::new(Inner {
                paths: PathMap::default(),
                summary: Summary::default(),
                exact: PathMap::default(),
                ..Arc::unwrap_or_clone(Endpoints::default().inner)
            }),
        }
    }

    /// Whether a UserInfo path was configured (or discovered on the issuer's origin): only
    /// then do protected-route events found at it name the endpoint.
    pub(crate) fn names_userinfo(&self) -> bool {
        self.inner.has_userinfo
    }

    /// The role of `path` (without query), if any reading of it is a configured endpoint,
    /// case ignored: an event is better classified as an endpoint request the server refused
    /// than lost as an anonymous resource access.
    pub fn lookup(&self, path: &str) -> Option<Endpoint> {
        if self.inner.paths.is_empty() {
            return None;
        }
        if is_plain(path) {
            if !self.inner.summary.may_be(path) {
                return None;
            }
            return self.inner.paths.get(path).copied();
        }
        CanonicalPath::new(path)
            .readings()
            .find_map(|reading| self.inner.paths.get(&reading.to_ascii_lowercase()))
            .copied()
    }

    /// The role of `path` only when every reading of it is that endpoint, compared
    /// case-sensitively unless `ignore_case`; `None` for an ambiguous spelling.
    ///
    /// This is the strict counterpart of [`lookup`](Endpoints::lookup), for exempting
    /// endpoints from access rules: a path exempt under one reading must not be served as
    /// something else under another.
    pub fn lookup_unambiguous(&self, path: &CanonicalPath, ignore_case: bool) -> Option<Endpoint> {
        let find = |reading: &str| {
            if ignore_case {
                self.inner.paths.get(&reading.to_ascii_lowercase()).copied()
            } else {
                self.inner.exact.get(reading).copied()
            }
        };
        let mut readings = path.readings();
        let first = find(readings.next()?)?;
        readings.all(|r| find(r) == Some(first)).then_some(first)
    }

    /// Whether the role of an endpoint was only assumed from a default path (`/token`,
    /// `/revoke`, `/introspect`, `/authorize`), or discovered on another origin than the
    /// issuer's, rather than configured. Traffic on an assumed endpoint is recorded as OAuth
    /// traffic only when it looks like that endpoint's protocol; otherwise it is an
    /// ordinary route.
    pub fn is_assumed(&self, endpoint: Endpoint) -> bool {
        !self.inner.configured.contains(&endpoint)
    }

    /// The request header a revocation reason is read from (`x-revocation-reason` unless
    /// configured otherwise), if any.
    pub fn revocation_reason_header(&self) -> Option<&HeaderName> {
        self.inner.reason_header.as_ref()
    }

    /// How many body bytes are copied for inspection.
    pub fn body_limit(&self) -> usize {
        self.inner.body_limit
    }

    /// A tee for one endpoint body: at most `body_limit` bytes, within the shared budget.
    pub(crate) fn tee(&self) -> Tee {
        Tee::new(self.inner.body_limit).within(&self.inner.capture_budget)
    }

    pub(crate) fn config(&self) -> &Inner {
        &self.inner
    }
}

/// Configures [`Endpoints`].
#[derive(Debug)]
#[must_use]
pub struct EndpointsBuilder {
    paths: Vec<(String, Endpoint)>,
    configured: Vec<Endpoint>,
    discovered: Option<ProviderMetadata>,
    body_limit: usize,
    max_captured_bytes: usize,
    username_field: String,
    reason_header: Option<String>,
    login_rule: LoginRule,
    device_polling: DevicePolling,
    pushed_requests_tracked: usize,
}

/// The default of [`EndpointsBuilder::pushed_requests_tracked`]: 10 000.
pub const DEFAULT_PUSHED_REQUESTS_TRACKED: usize = 10_000;

impl EndpointsBuilder {
    /// Forgets the default paths, to map only the ones given afterwards.
    pub fn no_defaults(mut self) -> Self {
        self.paths.clear();
        self
    }

    /// Maps `path` to `endpoint` (`/oauth2/token`, `/connect/token`,
    /// `/protocol/openid-connect/token`, `/token/introspection`, ...). A path mapped again
    /// takes the last role given.
    ///
    /// A role given a path here is trusted: every request on its paths is recorded as that
    /// endpoint's traffic. A role left to the defaults only is assumed, and its traffic must
    /// look like the protocol (see [`Endpoints::is_assumed`]); map the default path
    /// explicitly (`.token("/token")`) to trust it.
    ///
    /// Under an Axum router nested in another (`Router::nest("/oauth", ...)`), a layer on
    /// the nested router looks up both the path the client sent (`/oauth/token`) and the
    /// path without the prefix that the nested router chooses its handler by (`/token`).
    /// Configured with the prefixed path, the endpoint is recognised under that prefix;
    /// configured with the router's own path, under every prefix the router is mounted at
    /// (several `nest` calls, or one with a parameter such as `/{tenant}`): configure that
    /// one for a router mounted more than once.
    pub fn path(mut self, path: impl Into<String>, endpoint: Endpoint) -> Self {
        let path = path.into();
        if !self.configured.contains(&endpoint) {
            self.configured.push(endpoint);
        }
        self.paths.retain(|(p, _)| *p != path);
        self.paths.push((path, endpoint));
        self
    }

    /// Maps `path` as the token endpoint.
    pub fn token(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::Token)
    }

    /// Maps `path` as the revocation endpoint.
    pub fn revocation(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::Revocation)
    }

    /// Maps `path` as the introspection endpoint.
    pub fn introspection(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::Introspection)
    }

    /// Maps `path` as the authorization endpoint.
    pub fn authorization(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::Authorization)
    }

    /// Maps `path` as a login route.
    pub fn login(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::Login)
    }

    /// Maps `path` as the pushed authorization request endpoint (RFC 9126).
    pub fn pushed_authorization(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::PushedAuthorization)
    }

    /// Maps `path` as the OpenID Connect UserInfo endpoint.
    pub fn userinfo(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::UserInfo)
    }

    /// Maps `path` as the OpenID Connect end-session (logout) endpoint.
    pub fn end_session(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::EndSession)
    }

    /// Maps `path` as the device authorization endpoint (RFC 8628 §3.1: `/device_authorization`,
    /// `/device/code`, `/oauth/device/code`, ...).
    pub fn device_authorization(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::DeviceAuthorization)
    }

    /// Maps `path` as the OpenID Connect CIBA backchannel authentication endpoint (CIBA
    /// Core §7: `/bc-authorize`, `/backchannel/authentication`, ...).
    pub fn backchannel_authentication(self, path: impl Into<String>) -> Self {
        self.path(path, Endpoint::BackchannelAuthentication)
    }

    /// Takes the endpoints an authorization server's metadata names
    /// ([`ProviderMetadata`], from [`Discovery`](super::Discovery)): token, revocation,
    /// introspection, authorization, pushed authorization request, UserInfo and end-session.
    ///
    /// Explicit settings win whatever the order of the calls: a role given a path with
    /// [`path`](EndpointsBuilder::path) (or its shorthands) keeps only its explicit paths.
    /// The default paths are dropped, as the metadata says where the endpoints are.
    ///
    /// Only the **path** of each endpoint URL is matched, as requests carry no origin the
    /// layer could trust. An endpoint on the issuer's origin is trusted like a configured
    /// one; an endpoint on another origin (a separate token host, say) may not be served
    /// here at all, so its path is only *assumed* ([`Endpoints::is_assumed`]): its traffic
    /// is recorded as that endpoint's only when it speaks the protocol.
    ///
    /// ```
    /// use oauth_audit::oauth::{Endpoint, Endpoints, ProviderMetadata};
    ///
    /// let metadata: ProviderMetadata = serde_json::from_value(serde_json::json!({
    ///     "issuer": "https://as.example",
    ///     "token_endpoint": "https://as.example/oauth2/token",
    ///     "userinfo_endpoint": "https://as.example/me",
    ///     "jwks_uri": "https://as.example/jwks",
    /// })).unwrap();
    /// let endpoints = Endpoints::builder()
    ///     .userinfo("/v1/userinfo")
    ///     .discovered(&metadata)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(endpoints.lookup("/oauth2/token"), Some(Endpoint::Token));
    /// assert_eq!(endpoints.lookup("/v1/userinfo"), Some(Endpoint::UserInfo));
    /// assert_eq!(endpoints.lookup("/me"), None, "the explicit path wins");
    /// assert_eq!(endpoints.lookup("/token"), None, "no default paths");
    /// ```
    pub fn discovered(mut self, metadata: &ProviderMetadata) -> Self {
        self.discovered = Some(metadata.clone());
        self
    }

    /// How many pushed authorization requests are remembered (default 10 000, least recently
    /// used forgotten first), so that the authorization request that later presents their
    /// `request_uri` carries their client, scopes and redirect URI. Counted by size: a usual
    /// request (a client, a redirect URI, a few scopes) counts once, a large one for each KiB
    /// it holds, so `count` KiB (at least 32) bound their memory (10 MiB by default) whatever
    /// was pushed.
    pub fn pushed_requests_tracked(mut self, count: usize) -> Self {
        self.pushed_requests_tracked = count;
        self
    }

    /// How many bytes of each endpoint request and response body are copied for
    /// inspection (default 64 KiB). A longer body passes untouched and its event says
    /// `oauth.body_inspected: false`.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How many body bytes all endpoint requests and responses in flight may hold copied at
    /// once (default 64 MiB, 1024 bodies of the default `body_limit`). A body that finds no
    /// room passes untouched and is not inspected, like a body longer than `body_limit`:
    /// a flood of large endpoint requests cannot make the layer hold memory without bound.
    /// Clones of the built [`Endpoints`] share one budget.
    pub fn max_captured_bytes(mut self, bytes: usize) -> Self {
        self.max_captured_bytes = bytes;
        self
    }

    /// The login form field that holds the username (default `username`). It is read from
    /// the query too, as servlet containers read it: a username in both the query and the
    /// body is sent twice and not believed, one in the query alone is the login's.
    pub fn username_field(mut self, field: impl Into<String>) -> Self {
        self.username_field = field.into();
        self
    }

    /// The request header an application uses to say why it revokes a token (default
    /// `x-revocation-reason`); `None` reads only the form parameter `reason`.
    pub fn revocation_reason_header(mut self, header: Option<&str>) -> Self {
        self.reason_header = header.map(str::to_owned);
        self
    }

    /// How login responses are judged (default: [`LoginRule::default`]).
    pub fn login_rule(mut self, rule: LoginRule) -> Self {
        self.login_rule = rule;
        self
    }

    /// How device-code polls are recorded (default: one event per outcome change).
    pub fn device_polling(mut self, polling: DevicePolling) -> Self {
        self.device_polling = polling;
        self
    }

    /// Checks the configuration.
    pub fn build(mut self) -> Result<Endpoints, ConfigError> {
        if let Some(metadata) = self.discovered.take() {
            let explicit = self.configured.clone();
            self.paths.retain(|(_, role)| explicit.contains(role));
            for found in metadata.endpoints() {
                let Some(role) = Endpoint::of_metadata_member(found.member) else {
                    continue;
                };
                // An explicit role, or an explicit path given another role, wins.
                if explicit.contains(&role) || self.paths.iter().any(|(p, _)| *p == found.path) {
                    continue;
                }
                if found.same_origin && !self.configured.contains(&role) {
                    self.configured.push(role);
                }
                self.paths.push((found.path, role));
            }
        }
        if self.pushed_requests_tracked == 0 {
            return Err(ConfigError::invalid(
                "pushed_requests_tracked",
                "at least 1 pushed authorization request must be tracked",
            ));
        }
        if let Some((path, _)) = self
            .paths
            .iter()
            .find(|(path, _)| !path.starts_with('/') || path.contains(['?', '#']))
        {
            return Err(ConfigError::invalid(
                "endpoints",
                format!("{path:?} is not a path: paths start with '/' and have no query"),
            ));
        }
        // A UserInfo path discovered on another origin is only assumed: not named in events.
        let has_userinfo = self.configured.contains(&Endpoint::UserInfo)
            && self.paths.iter().any(|(_, e)| *e == Endpoint::UserInfo);
        let (paths, exact) = keys(self.paths);
        if self.body_limit == 0 || self.body_limit > MAX_BODY_LIMIT {
            return Err(ConfigError::invalid(
                "body_limit",
                format!(
                    "{} bytes: choose between 1 and {MAX_BODY_LIMIT} (the default is {DEFAULT_BODY_LIMIT})",
                    self.body_limit
                ),
            ));
        }
        if self.max_captured_bytes < self.body_limit {
            return Err(ConfigError::invalid(
                "max_captured_bytes",
                format!(
                    "{} bytes is less than body_limit ({} bytes): no body could be inspected whole",
                    self.max_captured_bytes, self.body_limit
                ),
            ));
        }
        if self.username_field.is_empty() {
            return Err(ConfigError::invalid(
                "username_field",
                "the form field name must not be empty",
            ));
        }
        let reason_header = match self.reason_header {
            None => None,
            Some(name) => Some(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::invalid(
                    "revocation_reason_header",
                    format!("{name:?} is not a valid HTTP header name"),
                )
            })?),
        };
        if let DevicePolling::OncePerOutcome { capacity: 0 } = self.device_polling {
            return Err(ConfigError::invalid(
                "device_polling",
                "capacity must be at least 1 device code",
            ));
        }
        Ok(Endpoints {
            inner: Arc::new(Inner {
                summary: Summary::of(paths.keys()),
                paths,
                exact,
                configured: self.configured,
                body_limit: self.body_limit,
                capture_budget: CaptureBudget::new(self.max_captured_bytes),
                username_field: self.username_field,
                reason_header,
                login_rule: self.login_rule,
                device: DeviceTracker::new(self.device_polling),
                pushed: PushedRequests::new(self.pushed_requests_tracked),
                has_userinfo,
            }),
        })
    }
}

/// The lookup tables: canonical paths lower-cased, and as configured. A later mapping of the
/// same canonical path wins.
fn keys(paths: Vec<(String, Endpoint)>) -> (PathMap, PathMap) {
    let mut folded = PathMap::with_capacity_and_hasher(paths.len(), Default::default());
    let mut exact = PathMap::with_capacity_and_hasher(paths.len(), Default::default());
    for (path, endpoint) in paths {
        let canonical = CanonicalPath::new(&path).strict().to_owned();
        folded.insert(canonical.to_ascii_lowercase(), endpoint);
        exact.insert(canonical, endpoint);
    }
    (folded, exact)
}

/// Whether `path` is already canonical and lower-case, so it can be looked up as it is (the
/// common case, without allocating): canonical as [`CanonicalPath`] reads it (it starts with
/// `/`, has no `%`, `;`, `\` or NUL, no empty segment, no segment ending in `.` or a space,
/// which covers `.` and `..` segments), with no upper-case letter. One pass over the bytes: it
/// runs on every request.
fn is_plain(path: &str) -> bool {
    crate::request_target::is_canonical_without(path, |b| b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `is_plain` as its rules read, one search per rule.
    fn is_plain_by_the_rules(path: &str) -> bool {
        path.starts_with('/')
            && !path
                .bytes()
                .any(|b| b.is_ascii_uppercase() || matches!(b, b'%' | b';' | b'\\'))
            && !path.contains("//")
            && !path.split('/').any(|segment| segment.ends_with(['.', ' ']))
            && (path == "/" || !path.ends_with('/'))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn the_one_pass_plain_check_agrees_with_the_rules(path in "[/./a-cA%;\\\\]{0,12}") {
            proptest::prop_assert_eq!(is_plain(&path), is_plain_by_the_rules(&path), "{:?}", path);
        }
    }

    #[test]
    fn plain_paths() {
        for (path, plain) in [
            ("/", true),
            ("/token", true),
            ("/api/v1/orders", true),
            ("/a/.b/c", true),
            ("/a/.../b", false),
            ("/a./b", false),
            ("", false),
            ("token", false),
            ("//token", false),
            ("/token/", false),
            ("/a/./b", false),
            ("/a/../b", false),
            ("/a/.", false),
            ("/a/..", false),
            ("/a.", false),
            ("/Token", false),
            ("/to%6ben", false),
            ("/token;x", false),
            ("/a\\b", false),
        ] {
            assert_eq!(is_plain(path), plain, "{path}");
            assert_eq!(is_plain_by_the_rules(path), plain, "{path}");
        }
    }

    #[test]
    fn defaults_and_mapping() {
        let e = Endpoints::default();
        assert_eq!(e.lookup("/token"), Some(Endpoint::Token));
        assert_eq!(e.lookup("/revoke"), Some(Endpoint::Revocation));
        assert_eq!(e.lookup("/introspect"), Some(Endpoint::Introspection));
        assert_eq!(e.lookup("/authorize"), Some(Endpoint::Authorization));
        assert_eq!(e.lookup("/api"), None);
        assert_eq!(e.body_limit(), DEFAULT_BODY_LIMIT);
        assert_eq!(Endpoints::none().lookup("/token"), None);

        let e = Endpoints::builder()
            .token("/oauth2/token")
            .path("/token/introspection", Endpoint::Introspection)
            .revocation("/token/revocation")
            .path("/token", Endpoint::Login)
            .build()
            .unwrap();
        assert_eq!(e.lookup("/oauth2/token"), Some(Endpoint::Token));
        assert_eq!(
            e.lookup("/token/introspection"),
            Some(Endpoint::Introspection)
        );
        assert_eq!(e.lookup("/token"), Some(Endpoint::Login), "last role wins");
        assert!(!e.is_assumed(Endpoint::Token));
        assert!(e.is_assumed(Endpoint::Authorization));
    }

    /// A plain path that no configured path summarises as is answered without the map;
    /// every configured path is still found, the canonical spelling of one configured in
    /// another too.
    #[test]
    fn every_configured_path_is_found_past_the_summary() {
        let long = format!("/{}", "a".repeat(126));
        let longer = format!("/{}", "b".repeat(300));
        let e = Endpoints::builder()
            .token("/T")
            .path(&long, Endpoint::Login)
            .path(&longer, Endpoint::Revocation)
            .path("/a/./b//c", Endpoint::Introspection)
            .build()
            .unwrap();
        assert_eq!(e.lookup("/t"), Some(Endpoint::Token));
        assert_eq!(e.lookup("/T"), Some(Endpoint::Token));
        assert_eq!(e.lookup(&long), Some(Endpoint::Login));
        assert_eq!(e.lookup(&longer), Some(Endpoint::Revocation));
        assert_eq!(e.lookup("/a/b/c"), Some(Endpoint::Introspection));
        assert_eq!(e.lookup("/a/b/d"), None);
        assert_eq!(e.lookup(&format!("/{}", "c".repeat(299))), None);
        assert_eq!(e.lookup("/api/orders"), None);
        assert_eq!(
            e.lookup("/%54"),
            Some(Endpoint::Token),
            "a reading of another length"
        );
        for len in 1..400 {
            let path = format!("/{}", "z".repeat(len - 1));
            assert_eq!(e.lookup(&path), None, "{len}");
        }
    }
    #[test]
    fn device_and_backchannel_roles_are_configured_or_discovered() {
        let e = Endpoints::builder()
            .device_authorization("/device/code")
            .backchannel_authentication("/bc-authorize")
            .build()
            .unwrap();
        assert_eq!(
            e.lookup("/device/code"),
            Some(Endpoint::DeviceAuthorization)
        );
        assert_eq!(
            e.lookup("/bc-authorize/"),
            Some(Endpoint::BackchannelAuthentication)
        );
        assert!(!e.is_assumed(Endpoint::DeviceAuthorization));
        assert_eq!(
            Endpoint::DeviceAuthorization.as_str(),
            "device_authorization"
        );
        assert_eq!(
            Endpoint::BackchannelAuthentication.as_str(),
            "backchannel_authentication"
        );
        let metadata: ProviderMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://as.example",
            "device_authorization_endpoint": "https://as.example/oauth/device_authorization",
            "backchannel_authentication_endpoint": "https://ciba.example/bc-authorize",
        }))
        .unwrap();
        let e = Endpoints::builder().discovered(&metadata).build().unwrap();
        assert_eq!(
            e.lookup("/oauth/device_authorization"),
            Some(Endpoint::DeviceAuthorization)
        );
        assert!(!e.is_assumed(Endpoint::DeviceAuthorization));
        assert_eq!(
            e.lookup("/bc-authorize"),
            Some(Endpoint::BackchannelAuthentication)
        );
        assert!(
            e.is_assumed(Endpoint::BackchannelAuthentication),
            "another origin's path is only assumed"
        );
    }

    #[test]
    fn default_roles_are_assumed_until_configured() {
        let e = Endpoints::default();
        for role in [
            Endpoint::Token,
            Endpoint::Revocation,
            Endpoint::Introspection,
            Endpoint::Authorization,
        ] {
            assert!(e.is_assumed(role), "{role:?}");
        }
        let e = Endpoints::builder().token("/token").build().unwrap();
        assert!(!e.is_assumed(Endpoint::Token));
        assert!(e.is_assumed(Endpoint::Revocation));
        assert!(Endpoints::builder()
            .login("/login")
            .build()
            .unwrap()
            .is_assumed(Endpoint::Token));
    }

    #[test]
    fn every_spelling_of_an_endpoint_is_that_endpoint() {
        let e = Endpoints::default();
        for path in [
            "/token",
            "/token/",
            "//token",
            "/./token",
            "/x/../token",
            "/%74oken",
            "/Token",
            "/TOKEN",
            "/token;x",
            "/token;jsessionid=1/",
            "/token%3Bx",
            "/%2574oken",
            "/x%2F..%2Ftoken",
        ] {
            assert_eq!(e.lookup(path), Some(Endpoint::Token), "{path}");
        }
        for path in ["/tokens", "/token/x", "/api/token", "/tok%00en", "/"] {
            assert_eq!(e.lookup(path), None, "{path}");
        }
        let keycloak = Endpoints::builder()
            .no_defaults()
            .token("/realms/Main/protocol/openid-connect/token/")
            .build()
            .unwrap();
        assert_eq!(
            keycloak.lookup("/realms/main/protocol/openid-connect/token"),
            Some(Endpoint::Token)
        );
    }

    #[test]
    fn unambiguous_lookup_needs_every_reading_to_agree() {
        let e = Endpoints::default();
        let find = |p: &str, ignore_case| e.lookup_unambiguous(&CanonicalPath::new(p), ignore_case);
        assert_eq!(find("/token/", false), Some(Endpoint::Token));
        assert_eq!(find("/%74oken", false), Some(Endpoint::Token));
        assert_eq!(find("/Token", false), None);
        assert_eq!(find("/Token", true), Some(Endpoint::Token));
        assert_eq!(
            find("/token;x", true),
            None,
            "the strict reading is /token;x"
        );
        assert_eq!(find("/x%2F..%2Ftoken", true), None);
    }

    #[test]
    fn rejects_bad_configuration() {
        let bad = [
            Endpoints::builder().token("token").build(),
            Endpoints::builder().token("/token?x=1").build(),
            Endpoints::builder().body_limit(0).build(),
            Endpoints::builder().username_field("").build(),
            Endpoints::builder()
                .revocation_reason_header(Some("bad header"))
                .build(),
            Endpoints::builder()
                .device_polling(DevicePolling::OncePerOutcome { capacity: 0 })
                .build(),
        ];
        for result in bad {
            let err = result.unwrap_err();
            assert!(!err.to_string().is_empty());
        }
    }
}
