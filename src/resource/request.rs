//! What a protected route's request presented in `Authorization`, inspected on arrival.

use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use super::Presentation;
use crate::dpop::{DpopVerifier, DPOP};
use crate::event::Secrets;
use crate::mtls::PresentedCertificate;
use crate::token::{
    access_token_from_headers, BearerCredential, InspectedToken, RevokedTokens, Scheme,
    TokenFingerprint, TokenFormat, TokenInspector, Verdict,
};

/// The bearer token a request presented, as the layer inspected it.
///
/// The layer inserts it into the request's extensions, so handlers (and
/// [`RequiredScopes`](crate::RequiredScopes)) see the same verdict and claims as the audit
/// record, without verifying the token a second time.
#[derive(Clone, Debug)]
pub struct AuditedToken(pub Arc<InspectedToken>);

/// What a request presented in `Authorization`.
#[derive(Debug)]
pub(crate) enum Presented {
    Nothing,
    /// Another scheme (`Basic`, ...): not a bearer token.
    OtherScheme,
    /// An `Authorization: Bearer` header that does not follow RFC 6750.
    Malformed {
        reason: &'static str,
        fingerprint: Option<TokenFingerprint>,
        /// The fingerprint of what followed `Bearer `, to scrub it from a challenge.
        credential: Option<TokenFingerprint>,
    },
    Token(Arc<InspectedToken>),
}

/// A protected route's request, as far as its bearer token goes.
#[derive(Debug)]
pub(crate) struct ResourceRequest {
    presented: Presented,
    presentation: Presentation,
}

/// What inspecting a protected route's request needs.
pub(crate) struct Inspectors<'a> {
    pub(crate) tokens: &'a TokenInspector,
    pub(crate) revoked: &'a RevokedTokens,
    pub(crate) dpop: &'a DpopVerifier,
}

impl ResourceRequest {
    pub(crate) fn inspect(
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        certificate: Option<PresentedCertificate>,
        inspectors: Inspectors<'_>,
    ) -> Self {
        let Inspectors {
            tokens: inspector,
            revoked,
            dpop,
        } = inspectors;
        let (scheme, credential) = access_token_from_headers(headers);
        // A proof is checked whenever one is sent or the scheme asks for one; its `ath`
        // must hash the token presented with it.
        let proof = (scheme == Scheme::DPoP || headers.contains_key(DPOP)).then(|| {
            let token = match credential {
                BearerCredential::Bearer(token) => Some(token),
                _ => None,
            };
            dpop.check(method, uri, headers, Some(token.unwrap_or_default()))
        });
        let presentation = Presentation {
            scheme,
            proof,
            certificate,
        };
        let presented = match credential {
            BearerCredential::Absent => Presented::Nothing,
            BearerCredential::OtherScheme => Presented::OtherScheme,
            BearerCredential::Malformed(reason) => {
                let value = headers
                    .get(http::header::AUTHORIZATION)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()));
                Presented::Malformed {
                    reason,
                    fingerprint: value.as_deref().map(TokenFingerprint::of),
                    credential: value
                        .as_deref()
                        .and_then(|v| v.trim().split_once(' '))
                        .map(|(_, c)| TokenFingerprint::of(c.trim())),
                }
            }
            BearerCredential::Bearer(token) => {
                let seen = inspector.inspect(token);
                // The trail's own record of a revocation beats any cached verification.
                Presented::Token(if revoked.contains(&seen.fingerprint) {
                    Arc::new(InspectedToken {
                        verdict: Verdict::Revoked,
                        ..(*seen).clone()
                    })
                } else {
                    seen
                })
            }
        };
        ResourceRequest {
            presented,
            presentation,
        }
    }

    /// How the token was presented, for the request's extensions.
    pub(crate) fn presentation(&self) -> &Presentation {
        &self.presentation
    }

    /// The presented token when it is opaque and not known to be revoked: a resolver may
    /// know its claims.
    pub(crate) fn opaque_token(&self) -> Option<&Arc<InspectedToken>> {
        match &self.presented {
            Presented::Token(token)
                if token.format == TokenFormat::Opaque && token.verdict != Verdict::Revoked =>
            {
                Some(token)
            }
            _ => None,
        }
    }

    /// Replaces the presented token's inspection (after resolution).
    pub(crate) fn set_token(&mut self, token: Arc<InspectedToken>) {
        self.presented = Presented::Token(token);
    }

    /// The inspected token, for the request's extensions.
    pub(crate) fn audited_token(&self) -> Option<AuditedToken> {
        match &self.presented {
            Presented::Token(token) => Some(AuditedToken(token.clone())),
            _ => None,
        }
    }

    /// What the request presented.
    pub(crate) fn presented(&self) -> &Presented {
        &self.presented
    }

    /// The verdict on what was presented, if a bearer credential was.
    pub(crate) fn verdict(&self) -> Option<Verdict> {
        match &self.presented {
            Presented::Malformed { .. } => Some(Verdict::Malformed),
            Presented::Token(token) => Some(token.verdict),
            Presented::Nothing | Presented::OtherScheme => None,
        }
    }

    /// The presented credential, to scrub from what the response says about it.
    pub(crate) fn secrets(&self) -> Secrets<'static> {
        let mut secrets = Secrets::none();
        match &self.presented {
            Presented::Token(token) => secrets.fingerprint(token.fingerprint),
            Presented::Malformed {
                fingerprint,
                credential,
                ..
            } => {
                for fingerprint in fingerprint.iter().chain(credential) {
                    secrets.fingerprint(*fingerprint);
                }
            }
            _ => {}
        }
        secrets
    }
}

impl AuditedToken {
    /// Whether the token was judged [`Verdict::Valid`]: on an audit-only route, the handler
    /// decides what a bad token may still do.
    pub fn is_valid(&self) -> bool {
        self.0.verdict == Verdict::Valid
    }
}

/// An Axum extractor: the bearer token as the layer judged it, with its verdict and claims.
/// Without one (no `Authorization: Bearer`, or the route is not behind the layer) it rejects
/// with `401` and `WWW-Authenticate: Bearer`; take `Option<AuditedToken>` to decide yourself.
///
/// ```
/// use axum::{http::StatusCode, routing::get, Router};
/// use oauth_audit::{AuditLayer, AuditedToken};
/// # use oauth_audit::writer::Auditor;
///
/// async fn me(token: AuditedToken) -> Result<String, StatusCode> {
///     // An audit-only route serves every token; this handler refuses bad ones itself.
///     if !token.is_valid() {
///         return Err(StatusCode::UNAUTHORIZED);
///     }
///     Ok(token.0.claims.subject.clone().unwrap_or_default())
/// }
/// # fn app(auditor: Auditor) -> Router {
/// Router::new().route("/me", get(me)).layer(AuditLayer::new(auditor))
/// # }
/// ```
#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AuditedToken {
    type Rejection = (http::StatusCode, [(http::HeaderName, &'static str); 1]);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuditedToken>().cloned().ok_or((
            http::StatusCode::UNAUTHORIZED,
            [(http::header::WWW_AUTHENTICATE, "Bearer")],
        ))
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for AuditedToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuditedToken>().cloned())
    }
}
