//! Protected routes: who presented which bearer token, and what the route made of it
//! (`ResourceAccessed`, `AccessDenied`).

mod challenge;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

pub(crate) use challenge::Challenge;

use crate::context::{RequestContext, ResponseContext};
use crate::event::{
    Actor, ActorKind, AuditEvent, ErrorInfo, EventKind, Outcome, Secrets, ServiceInfo, Timestamp,
    TokenDetails,
};
use crate::token::{
    bearer_from_headers, BearerCredential, InspectedToken, TokenFingerprint, TokenInspector,
    Verdict,
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

#[derive(Debug)]
pub(crate) struct ResourceRequest {
    presented: Presented,
}

impl ResourceRequest {
    pub(crate) fn inspect(headers: &HeaderMap, inspector: &TokenInspector) -> Self {
        let presented = match bearer_from_headers(headers) {
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
            BearerCredential::Bearer(token) => Presented::Token(inspector.inspect(token)),
        };
        ResourceRequest { presented }
    }

    /// The presented token when it is opaque: a resolver may know its claims.
    pub(crate) fn opaque_token(&self) -> Option<&Arc<InspectedToken>> {
        match &self.presented {
            Presented::Token(token) if token.format == crate::token::TokenFormat::Opaque => {
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

    /// The presented credential, to scrub from what the response says about it.
    fn secrets(&self) -> Secrets<'static> {
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

    pub(crate) fn event(
        &self,
        service: Arc<ServiceInfo>,
        request: RequestContext,
        response: Option<&ResponseContext>,
        duration: Duration,
    ) -> AuditEvent {
        let status = response.and_then(|r| r.status);
        let denied_by_route = status.is_some_and(|s| s == 401 || s == 403);
        let token_problem = match &self.presented {
            Presented::Malformed { .. } => Some(Verdict::Malformed.as_str()),
            Presented::Token(token) if is_rejection(token.verdict) => Some(token.verdict.as_str()),
            _ => None,
        };
        let (kind, outcome) = if denied_by_route || token_problem.is_some() {
            (EventKind::AccessDenied, Outcome::Failure)
        } else if response.is_none() {
            (EventKind::ResourceAccessed, Outcome::Unknown)
        } else if status.is_some_and(|s| s.is_server_error()) {
            (EventKind::ResourceAccessed, Outcome::Failure)
        } else {
            (EventKind::ResourceAccessed, Outcome::Success)
        };

        let mut event = request.into_event(service, kind, outcome, response, duration);

        match &self.presented {
            Presented::Token(token) => {
                let claims = &token.claims;
                event.actor = actor(claims.subject.as_deref(), claims.client_id.as_deref());
                event.scopes.granted = Some(claims.scopes.clone());
                event.token = Some(details(token));
            }
            Presented::Malformed { fingerprint, .. } => {
                event.actor.kind = Some(ActorKind::Anonymous);
                if let Some(fingerprint) = fingerprint {
                    let mut details = TokenDetails::from_fingerprint(*fingerprint);
                    details.verdict = Some(Verdict::Malformed);
                    event.token = Some(details);
                }
            }
            Presented::Nothing | Presented::OtherScheme => {
                event.actor.kind = Some(ActorKind::Anonymous);
            }
        }

        if let Some(decision) = response.and_then(|r| r.scopes.as_ref()) {
            event.scopes.required = Some(decision.required.clone());
            event.scopes.used = Some(decision.used.clone());
            if !decision.missing.is_empty() {
                event.scopes.missing = Some(decision.missing.clone());
            }
        }

        let challenge = response.and_then(|r| r.challenge.as_ref());
        let secrets = self.secrets();
        let code = challenge
            .and_then(|c| c.error(&secrets))
            .or_else(|| token_problem.map(str::to_owned))
            .or_else(|| match &self.presented {
                Presented::Malformed { reason, .. } if denied_by_route => {
                    Some(format!("malformed: {reason}"))
                }
                _ => None,
            });
        if let Some(code) = code {
            event.error = Some(ErrorInfo {
                code,
                description: challenge.and_then(|c| c.description(&secrets)).or_else(
                    || match &self.presented {
                        Presented::Malformed { reason, .. } => Some((*reason).to_owned()),
                        _ => None,
                    },
                ),
            });
        } else if kind == EventKind::AccessDenied {
            event.error = Some(ErrorInfo {
                code: if status.is_some_and(|s| s == 401) {
                    "unauthorized".to_owned()
                } else {
                    "forbidden".to_owned()
                },
                description: None,
            });
        }
        event
    }
}

/// Verdicts that mean the token must not be accepted. `Unverified` is not one: with no key
/// source configured the layer records claims without judging them.
fn is_rejection(verdict: Verdict) -> bool {
    !matches!(verdict, Verdict::Valid | Verdict::Unverified)
}

/// The actor of a token: a subject equal to the client id is a client acting for itself.
pub(crate) fn actor(subject: Option<&str>, client_id: Option<&str>) -> Actor {
    let kind = match (subject, client_id) {
        (Some(sub), Some(client)) if sub == client => ActorKind::Client,
        (Some(_), _) => ActorKind::User,
        (None, Some(_)) => ActorKind::Client,
        (None, None) => ActorKind::Anonymous,
    };
    Actor {
        subject: subject.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
        kind: Some(kind),
    }
}

/// The `token` object of an inspected token.
pub(crate) fn details(token: &InspectedToken) -> TokenDetails {
    let claims = &token.claims;
    let mut details = TokenDetails::from_fingerprint(token.fingerprint);
    details.format = Some(token.format);
    details.jti = claims.jti.clone();
    details.issuer = claims.issuer.clone();
    details.audience = claims.audience.clone();
    details.issued_at = claims.issued_at.and_then(Timestamp::from_unix);
    details.expires_at = claims.expires_at.and_then(Timestamp::from_unix);
    details.verdict = Some(token.verdict);
    details
}
