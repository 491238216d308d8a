use serde::Serialize;

/// What verification concluded about a token (`token.verdict`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Signature, issuer, audience and time checks passed.
    Valid,
    /// `exp` is past, beyond the leeway.
    Expired,
    /// `nbf` is in the future, beyond the leeway.
    NotYetValid,
    /// The signature does not verify, or the algorithm is not allowed (`alg: none`).
    BadSignature,
    /// No configured key matches the token.
    UnknownKey,
    /// The token resolver (introspection) says the opaque token is not active: revoked,
    /// expired or unknown to its issuer.
    Inactive,
    /// `iss` is not an expected issuer.
    WrongIssuer,
    /// `aud` names no expected audience.
    WrongAudience,
    /// Not a well-formed JWT or bearer credential.
    Malformed,
    /// No key source is configured: the claims were read, not verified.
    Unverified,
    /// The token has no `exp` claim, and the inspector was not told to accept tokens
    /// without expiry ([`allow_missing_expiry`](super::TokenInspectorBuilder::allow_missing_expiry)).
    NoExpiry,
    /// This audit trail saw the token revoked (RFC 7009) or introspected as inactive: it is
    /// not valid any more, whatever a cache remembered.
    Revoked,
    /// The token resolver could not answer: the introspection endpoint is unreachable or
    /// failed, or the lookup was refused by the introspection rate limits.
    Unavailable,
}

impl Verdict {
    /// Every verdict, in documentation order.
    pub const ALL: [Verdict; 13] = [
        Verdict::Valid,
        Verdict::Expired,
        Verdict::NotYetValid,
        Verdict::BadSignature,
        Verdict::UnknownKey,
        Verdict::Inactive,
        Verdict::WrongIssuer,
        Verdict::WrongAudience,
        Verdict::Malformed,
        Verdict::Unverified,
        Verdict::NoExpiry,
        Verdict::Revoked,
        Verdict::Unavailable,
    ];

    /// The name as it appears in `token.verdict` and `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Expired => "expired",
            Verdict::NotYetValid => "not_yet_valid",
            Verdict::BadSignature => "bad_signature",
            Verdict::UnknownKey => "unknown_key",
            Verdict::Inactive => "inactive",
            Verdict::WrongIssuer => "wrong_issuer",
            Verdict::WrongAudience => "wrong_audience",
            Verdict::Malformed => "malformed",
            Verdict::Unverified => "unverified",
            Verdict::NoExpiry => "no_expiry",
            Verdict::Revoked => "revoked",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// `token.format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// A JSON Web Token.
    Jwt,
    /// Anything else: a reference token only its issuer can resolve.
    Opaque,
}

impl TokenFormat {
    /// The name as it appears in `token.format`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenFormat::Jwt => "jwt",
            TokenFormat::Opaque => "opaque",
        }
    }
}
