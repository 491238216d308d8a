use serde::Serialize;

/// What an [`AuditEvent`](super::AuditEvent) records: the `kind` field of schema v1.
///
/// The names follow the OAuth event names operators already know; they are serialised
/// exactly as written here (`"AccessTokenIssued"`).
///
/// Schema v1 grows by new kinds (never by renaming one), so a `match` outside this crate
/// needs a wildcard arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum EventKind {
    /// Token endpoint success (any grant).
    AccessTokenIssued,
    /// Token endpoint error, with `error.code`.
    TokenRequestFailed,
    /// Revocation endpoint success (RFC 7009).
    TokenRevoked,
    /// Revocation endpoint error (RFC 7009).
    TokenRevocationFailed,
    /// Introspection endpoint answered (RFC 7662); `token.active` says what.
    TokenIntrospected,
    /// Introspection endpoint error (RFC 7662).
    TokenIntrospectionFailed,
    /// Authorization endpoint answered without a decision yet (login or consent page).
    AuthorizationRequested,
    /// Authorization endpoint redirected with a code or token.
    AuthorizationGranted,
    /// Authorization endpoint redirected with an error, or refused the request.
    AuthorizationFailed,
    /// A configured login route accepted the credentials.
    LoginSucceeded,
    /// A configured login route refused the credentials.
    LoginFailed,
    /// The end-session (logout) endpoint logged the user out, or answered without refusing
    /// (OpenID Connect RP-Initiated Logout).
    LogoutSucceeded,
    /// The end-session (logout) endpoint refused the request.
    LogoutFailed,
    /// A protected route answered (not 401/403).
    ResourceAccessed,
    /// A protected route answered 401 or 403, or the bearer token was invalid.
    AccessDenied,
    /// A detector fired.
    SecurityAlert,
    /// Events were lost or delayed: gaps are never silent.
    AuditEventsDropped,
    /// A signed checkpoint of the event chain (`checkpoint`, see `docs/integrity.md`).
    AuditCheckpoint,
}

impl EventKind {
    /// Every kind, in schema order.
    pub const ALL: [EventKind; 18] = [
        EventKind::AccessTokenIssued,
        EventKind::TokenRequestFailed,
        EventKind::TokenRevoked,
        EventKind::TokenRevocationFailed,
        EventKind::TokenIntrospected,
        EventKind::TokenIntrospectionFailed,
        EventKind::AuthorizationRequested,
        EventKind::AuthorizationGranted,
        EventKind::AuthorizationFailed,
        EventKind::LoginSucceeded,
        EventKind::LoginFailed,
        EventKind::LogoutSucceeded,
        EventKind::LogoutFailed,
        EventKind::ResourceAccessed,
        EventKind::AccessDenied,
        EventKind::SecurityAlert,
        EventKind::AuditEventsDropped,
        EventKind::AuditCheckpoint,
    ];

    /// The kind named `name` (as in the `kind` field), if schema v1 has one.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// The name as it appears in the `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AccessTokenIssued => "AccessTokenIssued",
            EventKind::TokenRequestFailed => "TokenRequestFailed",
            EventKind::TokenRevoked => "TokenRevoked",
            EventKind::TokenRevocationFailed => "TokenRevocationFailed",
            EventKind::TokenIntrospected => "TokenIntrospected",
            EventKind::TokenIntrospectionFailed => "TokenIntrospectionFailed",
            EventKind::AuthorizationRequested => "AuthorizationRequested",
            EventKind::AuthorizationGranted => "AuthorizationGranted",
            EventKind::AuthorizationFailed => "AuthorizationFailed",
            EventKind::LoginSucceeded => "LoginSucceeded",
            EventKind::LoginFailed => "LoginFailed",
            EventKind::LogoutSucceeded => "LogoutSucceeded",
            EventKind::LogoutFailed => "LogoutFailed",
            EventKind::ResourceAccessed => "ResourceAccessed",
            EventKind::AccessDenied => "AccessDenied",
            EventKind::SecurityAlert => "SecurityAlert",
            EventKind::AuditEventsDropped => "AuditEventsDropped",
            EventKind::AuditCheckpoint => "AuditCheckpoint",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `outcome` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The operation succeeded.
    Success,
    /// The operation failed or was refused.
    Failure,
    /// The response never completed (client went away, handler error).
    Unknown,
}

impl Outcome {
    /// The name as it appears in the `outcome` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Unknown => "unknown",
        }
    }
}

/// The `severity` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Routine traffic.
    Info,
    /// Failures and denials.
    Warning,
    /// Alerts.
    Critical,
}

impl Severity {
    /// The name as it appears in the `severity` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The `actor.kind` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// An end user is behind the request.
    User,
    /// A client acting for itself (client credentials).
    Client,
    /// Nobody could be identified.
    Anonymous,
}

impl ActorKind {
    /// The name as it appears in the `actor.kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Client => "client",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

/// The `client_auth` field: how the OAuth client authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT assertion signed with the client secret (RFC 7523).
    ClientSecretJwt,
    /// A JWT assertion signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
    /// Mutual TLS with a certificate a CA issued (RFC 8705 §2.1).
    TlsClientAuth,
    /// Mutual TLS with a self-signed certificate the client registered (RFC 8705 §2.2).
    SelfSignedTlsClientAuth,
    /// A public client: `client_id` only.
    None,
}

impl ClientAuth {
    /// The name as it appears in the `client_auth` field (`client_secret_basic`).
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::ClientSecretBasic => "client_secret_basic",
            ClientAuth::ClientSecretPost => "client_secret_post",
            ClientAuth::ClientSecretJwt => "client_secret_jwt",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
            ClientAuth::TlsClientAuth => "tls_client_auth",
            ClientAuth::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
            ClientAuth::None => "none",
        }
    }
}
