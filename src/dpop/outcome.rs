//! What checking a request's proof of possession concluded.

use serde::Serialize;

/// The outcome of checking a sender-constrained token's proof of possession: a DPoP proof
/// (RFC 9449 §4.3, §7.1) or a client certificate (RFC 8705 §3): `token.binding.proof`.
///
/// The checks run in the order of the variants below; a proof is recorded with the first
/// one it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProofOutcome {
    /// Every check passed.
    Valid,
    /// No proof was sent (no `DPoP` header, or no client certificate).
    Missing,
    /// The proof is not a DPoP proof JWT: not three base64url parts of JSON, more than one
    /// `DPoP` header, `typ` not `dpop+jwt`, a symmetric or unknown `alg`, no public `jwk`
    /// (or one holding a private key), a required claim missing, or over the size limit.
    Malformed,
    /// The signature does not verify with the proof's own `jwk`.
    InvalidSignature,
    /// `htm` is not the request's method.
    HtmMismatch,
    /// `htu` is not the request's URI (scheme, host, port and path, compared after RFC 3986
    /// normalisation; query and fragment ignored).
    HtuMismatch,
    /// `iat` is outside the accepted window. The window narrows while the replay cache is
    /// full: a proof ending no later than one the cache forgot early may be that one's
    /// replay, so it is `stale` rather than `valid`. So is a proof whose `iat` left the
    /// window between its check and its recording (after an opaque token's resolution): its
    /// first use's recording may have ended, so it cannot be told from a replay.
    Stale,
    /// `ath` is missing or is not the hash of the access token presented with it: the proof
    /// was made for another token.
    AthMismatch,
    /// The proof's key (or the client certificate) is not the one the token is bound to
    /// (`cnf.jkt`, `cnf.x5t#S256`).
    KeyMismatch,
    /// The proof's `jti` was seen before from the same key within the window: a replay.
    Replayed,
}

impl ProofOutcome {
    /// The name events carry (`htu_mismatch`).
    pub fn as_str(self) -> &'static str {
        match self {
            ProofOutcome::Valid => "valid",
            ProofOutcome::Missing => "missing",
            ProofOutcome::Malformed => "malformed",
            ProofOutcome::InvalidSignature => "invalid_signature",
            ProofOutcome::HtmMismatch => "htm_mismatch",
            ProofOutcome::HtuMismatch => "htu_mismatch",
            ProofOutcome::Stale => "stale",
            ProofOutcome::AthMismatch => "ath_mismatch",
            ProofOutcome::KeyMismatch => "key_mismatch",
            ProofOutcome::Replayed => "replayed",
        }
    }

    /// Every outcome.
    pub const ALL: [ProofOutcome; 10] = [
        ProofOutcome::Valid,
        ProofOutcome::Missing,
        ProofOutcome::Malformed,
        ProofOutcome::InvalidSignature,
        ProofOutcome::HtmMismatch,
        ProofOutcome::HtuMismatch,
        ProofOutcome::Stale,
        ProofOutcome::AthMismatch,
        ProofOutcome::KeyMismatch,
        ProofOutcome::Replayed,
    ];
}

impl std::fmt::Display for ProofOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_what_events_carry() {
        for outcome in ProofOutcome::ALL {
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::Value::from(outcome.as_str())
            );
        }
    }
}
