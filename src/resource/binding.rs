//! How a request presented its access token, and what that says of the token's binding.

use crate::dpop::{ProofCheck, ProofOutcome};
use crate::event::{BindingMethod, TokenBinding};
use crate::mtls::PresentedCertificate;
use crate::token::{InspectedToken, Scheme};

/// How a request presented its access token: the `Authorization` scheme, the check of the
/// DPoP proof that came with it, and the client certificate of its connection.
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
    /// The client certificate of the connection (RFC 8705), from the TLS terminator or a
    /// trusted front proxy's header.
    pub certificate: Option<PresentedCertificate>,
}

impl Presentation {
    /// A presentation with the `Bearer` scheme and no proof.
    pub fn bearer() -> Self {
        Presentation {
            scheme: Scheme::Bearer,
            proof: None,
            certificate: None,
        }
    }

    /// The binding of `token` as presented (`token.binding`), `None` for a token bound to
    /// nothing that came without a proof.
    ///
    /// - With the `DPoP` scheme: the proof's outcome, and `key_mismatch` when the proof's key
    ///   is not the token's `cnf.jkt`.
    /// - A token with `cnf.jkt` presented as `Bearer`: a downgrade, whatever else came.
    /// - A token with `cnf.x5t#S256` (and no `cnf.jkt`): method `mtls`, `valid` when the
    ///   connection's certificate has that thumbprint, `missing` without one, `key_mismatch`
    ///   for another (then in `proof_x5t#S256`), `malformed` for a front proxy's header
    ///   that holds none.
    /// - A token bound both ways must prove both: recorded as `dpop` with both thumbprints,
    ///   its `proof` the DPoP proof's outcome unless that is `valid`, then the certificate's.
    pub fn binding(&self, token: &InspectedToken) -> Option<TokenBinding> {
        let certificate_bound = token.claims.cnf_x5t_s256.as_deref();
        if token.claims.cnf_jkt.is_none() {
            if let Some(bound) = certificate_bound {
                let (outcome, presented) = certificate_match(bound, self.certificate.as_ref());
                return Some(TokenBinding {
                    downgrade: false,
                    jkt: None,
                    method: BindingMethod::Mtls,
                    proof: Some(outcome),
                    proof_jkt: None,
                    proof_x5t_s256: presented,
                    x5t_s256: Some(bound.to_owned()),
                });
            }
        }
        let mut binding = self.dpop_binding(token)?;
        if let Some(bound) = certificate_bound {
            let (outcome, presented) = certificate_match(bound, self.certificate.as_ref());
            if binding.proof == Some(ProofOutcome::Valid) {
                binding.proof = Some(outcome);
            }
            binding.proof_x5t_s256 = presented;
            binding.x5t_s256 = Some(bound.to_owned());
        }
        Some(binding)
    }

    /// The match of the connection's certificate with the token's `cnf.x5t#S256`, `None`
    /// for a token not bound to a certificate.
    pub fn certificate_outcome(&self, token: &InspectedToken) -> Option<ProofOutcome> {
        let bound = token.claims.cnf_x5t_s256.as_deref()?;
        Some(certificate_match(bound, self.certificate.as_ref()).0)
    }

    fn dpop_binding(&self, token: &InspectedToken) -> Option<TokenBinding> {
        let bound = token.claims.cnf_jkt.as_deref();
        let check = self.proof.as_ref();
        let proof_jkt = check.and_then(|c| c.jkt.as_deref());
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
            jkt: bound.or(proof_jkt).map(str::to_owned),
            method: BindingMethod::Dpop,
            proof: Some(outcome),
            proof_jkt: mismatch.then(|| proof_jkt.map(str::to_owned)).flatten(),
            proof_x5t_s256: None,
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

/// How the connection's certificate matches a token's `cnf.x5t#S256` (RFC 8705 §3), and the
/// presented thumbprint when it is another.
pub(crate) fn certificate_match(
    bound: &str,
    presented: Option<&PresentedCertificate>,
) -> (ProofOutcome, Option<String>) {
    match presented {
        None => (ProofOutcome::Missing, None),
        Some(PresentedCertificate::Malformed(_)) => (ProofOutcome::Malformed, None),
        Some(PresentedCertificate::Certificate(c)) if c.thumbprint() == bound => {
            (ProofOutcome::Valid, None)
        }
        Some(PresentedCertificate::Certificate(c)) => {
            (ProofOutcome::KeyMismatch, Some(c.thumbprint().to_owned()))
        }
    }
}
