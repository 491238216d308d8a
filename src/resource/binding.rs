//! How a request presented its access token, and what that says of the token's binding.

use crate::dpop::{ProofCheck, ProofOutcome};
use crate::event::{BindingMethod, TokenBinding};
use crate::mtls::PresentedCertificate;
use crate::token::{InspectedToken, Scheme, TokenFormat, Verdict};

/// How a request presented its access token: the `Authorization` scheme, the check of the
/// DPoP proof that came with it, and the client certificate of its connection.
///
/// The audit layer puts it into the request's extensions next to
/// [`AuditedToken`](crate::AuditedToken), so that a handler (and enforcing
/// [`RequiredScopes`](crate::RequiredScopes)) sees the binding the audit record shows; only
/// when it says more than [`Presentation::bearer`] (the `DPoP` scheme, a DPoP proof or a
/// client certificate), which spares most requests an extension. Read it with
/// [`Presentation::of`], or with Axum as an extractor, which give `Presentation::bearer()`
/// for a token that came as a plain bearer token.
///
/// ```
/// use http::Extensions;
/// use oauth_audit::Presentation;
///
/// // No token audited: no presentation either.
/// assert!(Presentation::of(&Extensions::new()).is_none());
/// assert!(Presentation::bearer().is_plain_bearer());
/// ```
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

    /// Whether this is [`Presentation::bearer`]: the `Bearer` scheme, no DPoP proof, no
    /// client certificate. The layer leaves such a presentation out of the request's
    /// extensions.
    pub fn is_plain_bearer(&self) -> bool {
        self.scheme == Scheme::Bearer && self.proof.is_none() && self.certificate.is_none()
    }

    /// The binding of `token` as presented (`token.binding`), `None` for a token bound to
    /// nothing that came without a proof.
    ///
    /// - With the `DPoP` scheme: the proof's outcome, and `key_mismatch` when the proof's key
    ///   is not the token's `cnf.jkt`.
    /// - A token with `cnf.jkt` presented as `Bearer`: a downgrade, whatever else came.
    /// - A token with `cnf.x5t#S256` (and no `cnf.jkt`): method `mtls`, `valid` when the
    ///   connection's certificate has that thumbprint, `missing` (and a downgrade) without
    ///   one, `key_mismatch`
    ///   for another (then in `proof_x5t#S256`), `malformed` for a front proxy's header
    ///   that holds none.
    /// - A token bound both ways must prove both: recorded as `dpop` with both thumbprints,
    ///   its `proof` the DPoP proof's outcome unless that is `valid`, then the certificate's.
    pub fn binding(&self, token: &InspectedToken) -> Option<TokenBinding> {
        let certificate_bound = token.claims.cnf_x5t_s256.as_deref();
        let bound = token.claims.cnf_jkt.as_deref();
        if bound.is_none() {
            if let Some(x5t) = certificate_bound {
                let mut binding = certificate_binding(x5t, self.certificate.as_ref());
                // Without any certificate the token came as a plain bearer token: the sign
                // of a stolen one, like a DPoP-bound token presented as `Bearer`.
                binding.downgrade = binding.proof == Some(ProofOutcome::Missing);
                return Some(binding);
            }
        }
        let downgrade = self.scheme == Scheme::Bearer && bound.is_some();
        let no_proof = self
            .proof
            .as_ref()
            .is_none_or(|c| c.outcome == ProofOutcome::Missing);
        if self.scheme == Scheme::Bearer && !downgrade && no_proof {
            return None;
        }
        // An opaque token nothing resolved: whether it is bound, and to which key, is
        // unknown. The proof's key is recorded as the proof's, never as the token's.
        let unknown = token.format == TokenFormat::Opaque && token.verdict != Verdict::Valid;
        let binding = key_binding(bound, self.proof.as_ref(), downgrade, unknown);
        Some(also_certificate(
            binding,
            certificate_bound,
            self.certificate.as_ref(),
        ))
    }

    /// The match of the connection's certificate with the token's `cnf.x5t#S256`, `None`
    /// for a token not bound to a certificate.
    pub fn certificate_outcome(&self, token: &InspectedToken) -> Option<ProofOutcome> {
        let bound = token.claims.cnf_x5t_s256.as_deref()?;
        Some(certificate_match(bound, self.certificate.as_ref()).0)
    }

    /// Whether the request proved possession of a sender-constrained `token` as its binding
    /// asks: true for a token bound to nothing presented as `Bearer`, false for a downgrade
    /// or a proof that is not `valid`.
    pub fn proves_possession(&self, token: &InspectedToken) -> bool {
        self.binding(token)
            .is_none_or(|b| !b.downgrade && b.proof == Some(ProofOutcome::Valid))
    }
}

/// The binding of a token bound to the key `bound` (`cnf.jkt`; `None` when the token names
/// none, or `unknown` when nothing could read it) as the DPoP proof `check` proves it:
/// `key_mismatch` for a proof by another key, `missing` without a proof.
pub(crate) fn key_binding(
    bound: Option<&str>,
    check: Option<&ProofCheck>,
    downgrade: bool,
    unknown: bool,
) -> TokenBinding {
    let proof_jkt = check.and_then(|c| c.jkt.as_deref());
    let mismatch = matches!(bound.zip(proof_jkt), Some((bound, proof)) if bound != proof);
    let outcome = match check.map_or(ProofOutcome::Missing, |c| c.outcome) {
        ProofOutcome::Valid | ProofOutcome::Replayed if mismatch => ProofOutcome::KeyMismatch,
        outcome => outcome,
    };
    TokenBinding {
        downgrade,
        jkt: if unknown { bound } else { bound.or(proof_jkt) }.map(str::to_owned),
        method: BindingMethod::Dpop,
        proof: Some(outcome),
        proof_jkt: (mismatch || unknown)
            .then(|| proof_jkt.map(str::to_owned))
            .flatten(),
        proof_x5t_s256: None,
        x5t_s256: None,
    }
}

/// The binding of a token bound to a client certificate only (`cnf.x5t#S256`).
pub(crate) fn certificate_binding(
    bound: &str,
    presented: Option<&PresentedCertificate>,
) -> TokenBinding {
    let (outcome, presented) = certificate_match(bound, presented);
    TokenBinding {
        downgrade: false,
        jkt: None,
        method: BindingMethod::Mtls,
        proof: Some(outcome),
        proof_jkt: None,
        proof_x5t_s256: presented,
        x5t_s256: Some(bound.to_owned()),
    }
}

/// A key binding completed with the certificate half of a token bound both ways: both
/// must be proven, so a `valid` proof gives way to the certificate's outcome.
pub(crate) fn also_certificate(
    mut binding: TokenBinding,
    bound: Option<&str>,
    presented: Option<&PresentedCertificate>,
) -> TokenBinding {
    if let Some(bound) = bound {
        let (outcome, presented) = certificate_match(bound, presented);
        if binding.proof == Some(ProofOutcome::Valid) {
            binding.proof = Some(outcome);
        }
        binding.proof_x5t_s256 = presented;
        binding.x5t_s256 = Some(bound.to_owned());
    }
    binding
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtls::{CertificateError, ClientCertificate};
    use crate::token::{TokenClaims, TokenFingerprint, TokenFormat, Verdict};

    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    fn token(jkt: Option<&str>, x5t: Option<&str>) -> InspectedToken {
        InspectedToken {
            fingerprint: TokenFingerprint::of("t"),
            format: TokenFormat::Jwt,
            verdict: Verdict::Valid,
            claims: TokenClaims {
                cnf_jkt: jkt.map(str::to_owned),
                cnf_x5t_s256: x5t.map(str::to_owned),
                ..TokenClaims::default()
            },
            memo: Default::default(),
            twin: None,
            anchor: None,
        }
    }

    fn certificate(byte: char) -> ClientCertificate {
        ClientCertificate::from_thumbprint(&format!("{}A", byte.to_string().repeat(42))).unwrap()
    }

    fn presentation(
        scheme: Scheme,
        proof: Option<ProofOutcome>,
        certificate: Option<PresentedCertificate>,
    ) -> Presentation {
        Presentation {
            scheme,
            proof: proof.map(|outcome| ProofCheck::failed(outcome, Some(JKT.to_owned()))),
            certificate,
        }
    }

    #[test]
    fn a_certificate_bound_token_is_matched_with_the_certificate() {
        let right = certificate('A');
        let bound = token(None, Some(right.thumbprint()));
        let with = |c: Option<PresentedCertificate>| {
            presentation(Scheme::Bearer, None, c)
                .binding(&bound)
                .unwrap()
        };
        let valid = with(Some(PresentedCertificate::Certificate(right.clone())));
        assert_eq!(valid.method, BindingMethod::Mtls);
        assert_eq!(valid.proof, Some(ProofOutcome::Valid));
        assert_eq!(valid.x5t_s256.as_deref(), Some(right.thumbprint()));
        assert!(!valid.downgrade);
        let other = with(Some(PresentedCertificate::Certificate(certificate('B'))));
        assert_eq!(other.proof, Some(ProofOutcome::KeyMismatch));
        assert_eq!(
            other.proof_x5t_s256.as_deref(),
            Some(certificate('B').thumbprint())
        );
        assert_eq!(with(None).proof, Some(ProofOutcome::Missing));
        let malformed = PresentedCertificate::Malformed(CertificateError::NotACertificate);
        assert_eq!(with(Some(malformed)).proof, Some(ProofOutcome::Malformed));
        // A certificate says nothing of a token bound to nothing.
        let unbound = presentation(
            Scheme::Bearer,
            None,
            Some(PresentedCertificate::Certificate(right)),
        );
        assert_eq!(unbound.binding(&token(None, None)), None);
    }

    #[test]
    fn a_token_bound_both_ways_must_prove_both() {
        let right = certificate('A');
        let both = token(Some(JKT), Some(right.thumbprint()));
        let right_cert = Some(PresentedCertificate::Certificate(right.clone()));
        let all_good = presentation(Scheme::DPoP, Some(ProofOutcome::Valid), right_cert.clone());
        let binding = all_good.binding(&both).unwrap();
        assert_eq!(binding.method, BindingMethod::Dpop);
        assert_eq!(binding.jkt.as_deref(), Some(JKT));
        assert_eq!(binding.x5t_s256.as_deref(), Some(right.thumbprint()));
        assert_eq!(binding.proof, Some(ProofOutcome::Valid));
        assert!(all_good.proves_possession(&both));

        // A valid proof over a connection with another certificate.
        let other_cert = presentation(
            Scheme::DPoP,
            Some(ProofOutcome::Valid),
            Some(PresentedCertificate::Certificate(certificate('B'))),
        );
        assert_eq!(
            other_cert.binding(&both).unwrap().proof,
            Some(ProofOutcome::KeyMismatch)
        );
        assert!(!other_cert.proves_possession(&both));
        // The DPoP proof's failure comes first.
        let stale = presentation(Scheme::DPoP, Some(ProofOutcome::Stale), None);
        assert_eq!(
            stale.binding(&both).unwrap().proof,
            Some(ProofOutcome::Stale)
        );
        // Presented as Bearer with the right certificate: still a downgrade.
        let bearer = presentation(Scheme::Bearer, None, right_cert);
        assert!(bearer.binding(&both).unwrap().downgrade);
        assert!(!bearer.proves_possession(&both));
    }
}
