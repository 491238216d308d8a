//! Protected routes: who presented which bearer token, and what the route made of it
//! (`ResourceAccessed`, `AccessDenied`).

mod challenge;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;

pub(crate) use challenge::Challenge;

use crate::context::{RequestContext, ResponseContext};
use crate::event::{
    error_code, Actor, ActorKind, AuditEvent, ErrorInfo, EventKind, Outcome, Secrets, ServiceInfo,
    Severity, Timestamp, TokenDetails, UnverifiedClaims,
};
use crate::token::{
    bearer_from_headers, BearerCredential, InspectedToken, RevokedTokens, TokenFingerprint,
    TokenInspector, Verdict,
};

/// The `error` and `error_description` of the first `WWW-Authenticate: Bearer` challenge, as
/// the layer records them (sanitised, at most 64 and 512 bytes).
///
/// An entry point for fuzzing the challenge reader; not a public API.
#[cfg(feature = "fuzzing")]
pub fn read_bearer_challenge(headers: &HeaderMap) -> Option<(Option<String>, Option<String>)> {
    Challenge::from_headers(headers).map(|c| {
        let none = Secrets::none();
        (c.error(&none), c.description(&none))
    })
}

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
    pub(crate) fn inspect(
        headers: &HeaderMap,
        inspector: &TokenInspector,
        revoked: &RevokedTokens,
    ) -> Self {
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
        ResourceRequest { presented }
    }

    /// The presented token when it is opaque and not known to be revoked: a resolver may
    /// know its claims.
    pub(crate) fn opaque_token(&self) -> Option<&Arc<InspectedToken>> {
        match &self.presented {
            Presented::Token(token)
                if token.format == crate::token::TokenFormat::Opaque
                    && token.verdict != Verdict::Revoked =>
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

    /// The verdict on what was presented, if a bearer credential was.
    fn verdict(&self) -> Option<Verdict> {
        match &self.presented {
            Presented::Malformed { .. } => Some(Verdict::Malformed),
            Presented::Token(token) => Some(token.verdict),
            Presented::Nothing | Presented::OtherScheme => None,
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
        // A 4xx the inner service explained (a request refused as ambiguous) is a denial too.
        let refused = status.is_some_and(|s| s.is_client_error())
            && response.is_some_and(|r| r.error.is_some());
        let denied_by_route = status.is_some_and(|s| s == 401 || s == 403) || refused;
        let token_problem = self.verdict().filter(|v| is_rejection(*v));
        // The kind says what the route did; a bad token it served anyway is an access
        // (with the verdict and a warning), not a denial.
        let (kind, outcome) = if denied_by_route {
            (EventKind::AccessDenied, Outcome::Failure)
        } else if response.is_none() {
            (EventKind::ResourceAccessed, Outcome::Unknown)
        } else if status.is_some_and(|s| s.is_client_error() || s.is_server_error()) {
            (EventKind::ResourceAccessed, Outcome::Failure)
        } else {
            (EventKind::ResourceAccessed, Outcome::Success)
        };

        let mut event = request.into_event(service, kind, outcome, response, duration);

        match &self.presented {
            Presented::Token(token) => {
                let claims = &token.claims;
                let mut details = details(token);
                if token.verdict == Verdict::Valid {
                    event.actor = actor(claims.subject.as_deref(), claims.client_id.as_deref());
                    event.scopes.granted = Some(claims.scopes.clone());
                } else {
                    // Not verified: the token's own words, never as `actor` or granted scopes.
                    event.actor.kind = Some(ActorKind::Anonymous);
                    details.unverified = Some(UnverifiedClaims {
                        subject: claims.subject.clone(),
                        client_id: claims.client_id.clone(),
                        scopes: claims.scopes.clone(),
                    });
                }
                event.token = Some(details);
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

        let decision = response.and_then(|r| r.scopes.as_ref());
        if let Some(decision) = decision {
            event.scopes.required = Some(decision.required.clone());
            event.scopes.used = Some(decision.used.clone());
            if !decision.missing.is_empty() {
                event.scopes.missing = Some(decision.missing.clone());
            }
        }
        let scope_unmet = decision.is_some_and(|d| !d.satisfied);
        if token_problem.is_some() || scope_unmet {
            event.severity = event.severity.max(Severity::Warning);
        }

        event.error = self.error(response, status, token_problem);
        event
    }

    /// `error`: the route's own challenge, else what the service reported, else the token
    /// verdict, else a code for an error status.
    fn error(
        &self,
        response: Option<&ResponseContext>,
        status: Option<http::StatusCode>,
        token_problem: Option<Verdict>,
    ) -> Option<ErrorInfo> {
        let malformed_reason = match &self.presented {
            Presented::Malformed { reason, .. } => Some((*reason).to_owned()),
            _ => None,
        };
        let challenge = response.and_then(|r| r.challenge.as_ref());
        let secrets = self.secrets();
        if let Some(code) = challenge.and_then(|c| c.error(&secrets)) {
            return Some(ErrorInfo {
                code,
                description: challenge
                    .and_then(|c| c.description(&secrets))
                    .or(malformed_reason),
            });
        }
        if let Some(error) = response.and_then(|r| r.error.clone()) {
            return Some(error);
        }
        if let Some(verdict) = token_problem {
            return Some(ErrorInfo {
                code: verdict.as_str().to_owned(),
                description: malformed_reason,
            });
        }
        status
            .and_then(error_code::for_status)
            .map(|code| ErrorInfo {
                code: code.to_owned(),
                description: None,
            })
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
    details.truncated = claims.truncated.clone();
    details
}
