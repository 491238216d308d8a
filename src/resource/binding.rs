//! How a request presented its access token, and what that says of the token's binding.

use crate::dpop::{ProofCheck, ProofOutcome};
use crate::event::{BindingMethod, TokenBinding};
use crate::token::{InspectedToken, Scheme, TokenFormat, Verdict};

/// How a request presented its access token: the `Authorization` scheme, and the check of
/// the DPoP proof that came with it.
///
/// The audit layer inserts it into the request's extensions next to
/// [`AuditedToken`](crate::AuditedToken), so that a handler (and enforcing
/// [`RequiredScopes`](crate::RequiredScopes)) sees the binding the audit record shows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Presentation {
    /// `Bearer` or `DPoP`.
    pub scheme: Scheme,
    /// The DPoP proof's check, when the request used the `DPoP` scheme or sent a `DPoP`
    /// header.
    pub proof: Option<ProofCheck>,
}

impl Presentation {
    /// A presentation with the `Bearer` scheme and no proof.
    pub fn bearer() -> Self {
        Presentation {
            scheme: Scheme::Bearer,
            proof: None,
        }
    }

    /// The binding of `token` as presented (`token.binding`), `None` for a token bound to
    /// nothing that came without a proof.
    ///
    /// - With the `DPoP` scheme: the proof's outcome, and `key_mismatch` when the proof's key
    ///   is not the token's `cnf.jkt`.
    /// - A token with `cnf.jkt` presented as `Bearer`: a downgrade, whatever else came.
    pub fn binding(&self, token: &InspectedToken) -> Option<TokenBinding> {
        let bound = token.claims.cnf_jkt.as_deref();
        let check = self.proof.as_ref();
        let proof_jkt = check.and_then(|c| c.jkt.as_deref());
        // An opaque token nothing resolved: whether it is bound, and to which key, is
        // unknown. The proof's key is recorded as the proof's, never as the token's.
        let unknown = token.format == TokenFormat::Opaque && token.verdict != Verdict::Valid;
        let outcome = check.map_or(ProofOutcome::Missing, |c| c.outcome);
        let downgrade = self.scheme == Scheme::Bearer && bound.is_some();
        if self.scheme == Scheme::Bearer && !downgrade && outcome == ProofOutcome::Missing {
            return None;
        }
        let mismatch = matches!(bound.zip(proof_jkt), Some((bound, proof)) if bound != proof);
        let outcome = match outcome {
            ProofOutcome::Valid | ProofOutcome::Replayed if mismatch => ProofOutcome::KeyMismatch,
            outcome => outcome,
        };
        Some(TokenBinding {
            downgrade,
            jkt: if unknown { bound } else { bound.or(proof_jkt) }.map(str::to_owned),
            method: BindingMethod::Dpop,
            proof: Some(outcome),
            proof_jkt: (mismatch || unknown)
                .then(|| proof_jkt.map(str::to_owned))
                .flatten(),
            x5t_s256: None,
        })
    }

    /// Whether the request proved possession of a sender-constrained `token` as its binding
    /// asks: true for a token bound to nothing presented as `Bearer`, false for a downgrade
    /// or a proof that is not `valid`.
    pub fn proves_possession(&self, token: &InspectedToken) -> bool {
        self.binding(token)
            .is_none_or(|b| !b.downgrade && b.proof == Some(ProofOutcome::Valid))
    }
}
