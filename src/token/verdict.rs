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
}

impl Verdict {
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
