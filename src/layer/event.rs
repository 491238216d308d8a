//! How a request becomes an [`AuditEvent`]: the one place that builds events.
//!
//! When the response ends (or is dropped), [`assemble`] puts together
//! - the envelope: time, ids, `http` and `source`, from the [`RequestContext`] captured on
//!   arrival and the [`ResponseContext`] read from the response head;
//! - for a protected route ([`Role::Resource`]): kind and outcome from the status, `actor`,
//!   `token` and `scopes` from the presented token, the scope decision, `error`;
//! - for an OAuth endpoint ([`Role::Endpoint`]): whatever the endpoint's classifier in
//!   [`oauth`](crate::oauth) reads from the exchange, on top of the same envelope;
//! - last, an error the inner service put in the response's extensions, when nothing more
//!   specific was found.

use std::sync::Arc;
use std::time::Duration;

use super::Shared;
use crate::context::RequestContext;
use crate::event::{
    error_code, ActorKind, AuditEvent, ErrorInfo, EventKind, HeadSecrets, HttpInfo, Outcome,
    Secrets, Severity, TokenDetails, TokenSentIn,
};
use crate::oauth::{EndpointEvent, EndpointRequest, ResponseHead, ResponseSeen, Settings};
use crate::resource::{token_parts, Challenge, Presented, ResourceRequest};
use crate::scope::ScopeDecision;
use crate::tee::Captured;
use crate::token::Verdict;
use crate::writer::Auditor;

/// What kind of traffic a request is, decided when it arrives.
///
/// An endpoint's request is boxed: kept inline it made every pending state, a protected
/// route's too, larger than 1,000 bytes, past which glibc's allocator serves a request
/// from its large bins and first consolidates its fast bins (about 460 instructions per
/// request, more than the endpoint's extra allocation costs the endpoints).
#[derive(Debug)]
pub(crate) enum Role {
    /// A protected route (anything that is not a configured OAuth endpoint); whether it is
    /// the UserInfo endpoint, which is audited as one and named in its event.
    Resource(ResourceRequest, bool),
    /// An OAuth endpoint (token, revocation, introspection, authorization, login). When
    /// its role was only assumed from a default path, the protected-route reading of the
    /// same request, used if the traffic turns out not to speak the protocol.
    Endpoint(Box<EndpointRequest>, Option<ResourceRequest>),
}

/// What the audit record needs of the response head.
#[derive(Debug, Default)]
pub(crate) struct ResponseContext {
    pub(crate) status: Option<http::StatusCode>,
    /// `error` and `error_description` of a `WWW-Authenticate: Bearer` challenge.
    pub(crate) challenge: Option<Challenge>,
    /// The scope decision a `RequiredScopes` layer made for the route.
    pub(crate) scopes: Option<ScopeDecision>,
    /// OAuth endpoints only: the `Location` and content type, read when the head arrives.
    pub(crate) oauth: Option<ResponseHead>,
    /// An error the inner service described in the response's extensions.
    pub(crate) error: Option<ErrorInfo>,
}

impl ResponseContext {
    /// What the OAuth classifiers read of it.
    fn seen(&self) -> ResponseSeen<'_> {
        ResponseSeen {
            status: self.status,
            challenge: self.challenge.as_ref(),
            error: self.error.as_ref(),
            head: self.oauth.as_ref(),
        }
    }
}

/// The event of one request, built in the `Arc` it is offered in; `response` is `None` when
/// the response never completed. `None` when the event is deliberately not recorded (a
/// repeated device-code poll). What the event keeps of `request` is taken out of it.
pub(crate) fn assemble(
    shared: &Shared,
    request: &mut RequestContext,
    role: &Role,
    mut response: Option<&mut ResponseContext>,
    response_body: Option<Captured>,
) -> Option<Arc<AuditEvent>> {
    let duration = request.started.elapsed();
    let mut event = match role {
        Role::Resource(resource, userinfo) => {
            let mut event = resource_event(
                resource,
                None,
                &shared.auditor,
                request,
                response.as_deref_mut(),
                duration,
            );
            if *userinfo {
                Arc::make_mut(&mut event)
                    .oauth
                    .get_or_insert_with(Default::default)
                    .endpoint = Some(crate::oauth::Endpoint::UserInfo.as_str().to_owned());
            }
            event
        }
        Role::Endpoint(endpoint, fallback) => {
            let status = response.as_ref().and_then(|r| r.status);
            // The request's own fields go in once the classifier is done with `request`
            // (below): moved then, not copied now.
            let settings = Settings {
                inspector: &shared.inspector,
                endpoints: &shared.endpoints,
                auditor: &shared.auditor,
            };
            let seen = response.as_deref().map(ResponseContext::seen);
            match endpoint.event(settings, request, seen, response_body) {
                EndpointEvent::Recorded(mut event) => {
                    // Made by the classifier and not shared yet: neither clones nor fails.
                    take_request(Arc::make_mut(&mut event), request, status, duration);
                    event
                }
                EndpointEvent::Suppressed => return None,
                EndpointEvent::NotOAuth => {
                    let resource = fallback.as_ref()?;
                    resource_event(
                        resource,
                        Some(endpoint.head_secrets()),
                        &shared.auditor,
                        request,
                        response.as_deref_mut(),
                        duration,
                    )
                }
            }
        }
    };
    // An error the service reported that nothing recorded yet (a protected route's, and an
    // endpoint's, are recorded and scrubbed where the request's secrets are known, the
    // endpoint's form among them): scrubbed of what the endpoint's head carried.
    if event.error.is_none() {
        if let Some(error) = response.and_then(|r| r.error.take()) {
            let mut secrets = Secrets::none();
            if let Role::Endpoint(endpoint, _) = role {
                secrets.head(endpoint.head_secrets());
            }
            Arc::make_mut(&mut event).error =
                Some(error.reported(&secrets, MAX_REPORTED_DESCRIPTION));
        }
    }
    Some(event)
}

/// Moves the request's trace ids, `http` and `source` fields into `event` (its request id
/// went in when it was made).
fn take_request(
    event: &mut AuditEvent,
    request: &mut RequestContext,
    status: Option<http::StatusCode>,
    duration: Duration,
) {
    event.trace_id = request.trace_id.take();
    event.span_id = request.span_id.take();
    event.http = Some(HttpInfo {
        method: HttpInfo::method_of(&request.method),
        route: request.route.take(),
        path: std::mem::take(&mut request.path),
        status: status.map(|s| s.as_u16()),
        duration_ms: duration_ms(duration),
    });
    event.source = request.source.take();
}

/// The event of a protected route: `ResourceAccessed` or `AccessDenied`, built in its `Arc`.
/// The scope decision is taken out of `response`, not copied.
fn resource_event(
    resource: &ResourceRequest,
    endpoint_head: Option<&HeadSecrets>,
    auditor: &Auditor,
    request: &mut RequestContext,
    mut response: Option<&mut ResponseContext>,
    duration: Duration,
) -> Arc<AuditEvent> {
    let status = response.as_ref().and_then(|r| r.status);
    // A 4xx the inner service explained (a request refused as ambiguous) is a denial too.
    let refused = status.is_some_and(|s| s.is_client_error())
        && response.as_ref().is_some_and(|r| r.error.is_some());
    let denied_by_route = status.is_some_and(|s| s == 401 || s == 403) || refused;
    let token_problem = resource.verdict().filter(|v| is_rejection(*v));
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

    // Made in its `Arc` and filled there: the event is not built first and copied in.
    let mut shared = auditor.new_event(request.time, (kind, outcome), request.request_id.as_str());
    // Just made: unshared, so this neither clones nor fails.
    let event = Arc::make_mut(&mut shared);
    take_request(event, request, status, duration);

    match resource.presented() {
        Presented::Token(token) => {
            // Shared by every event of the token; only a binding makes the event its own.
            let parts = token_parts(token);
            if let Some((actor, granted)) = parts.valid {
                event.actor = actor;
                event.scopes.granted = Some(granted);
            } else {
                // Not verified: the token's own words, never as `actor` or granted scopes
                // (they are in `token.unverified`).
                event.actor.kind = Some(ActorKind::Anonymous);
            }
            let mut details = parts.token;
            if let Some(binding) = resource.presentation().binding(token) {
                details.binding = Some(Box::new(binding));
            }
            if resource.in_query() {
                details.sent_in = Some(TokenSentIn::Query);
            }
            event.token = Some(details);
        }
        Presented::Malformed {
            fingerprint,
            credential,
            ..
        } => {
            event.actor.kind = Some(ActorKind::Anonymous);
            // What followed the scheme, the token as a server reading the first header
            // takes it (else the whole value): a copy sent with a second header behind it,
            // or with the scheme spelt otherwise, is still the token `token_shared` and
            // `revoked_token_reuse` know.
            if let Some(fingerprint) = credential.or(*fingerprint) {
                let mut details = TokenDetails::from_fingerprint(fingerprint);
                details.verdict = Some(Verdict::Malformed);
                details.sent_in = resource.in_query().then_some(TokenSentIn::Query);
                event.token = Some(details.into());
            }
        }
        Presented::Nothing | Presented::OtherScheme => {
            event.actor.kind = Some(ActorKind::Anonymous);
        }
    }

    let decision = response.as_mut().and_then(|r| r.scopes.take());
    let scope_unmet = decision.as_ref().is_some_and(|d| !d.satisfied);
    if let Some(decision) = decision {
        event.scopes.required = Some(decision.required);
        event.scopes.used = Some(decision.used);
        if !decision.missing.is_empty() {
            event.scopes.missing = Some(decision.missing);
        }
    }
    // A bound token without its proof is a stolen token's sign, served or not.
    let unproven = event
        .token
        .as_ref()
        .and_then(|t| t.binding.as_ref())
        .is_some_and(|b| b.downgrade || b.proof != Some(crate::dpop::ProofOutcome::Valid));
    // A token in the query (RFC 6750 §2.3: SHOULD NOT) is in URLs now: logs, history,
    // `Referer`.
    if token_problem.is_some() || scope_unmet || unproven || resource.in_query() {
        event.severity = event.severity.max(Severity::Warning);
    }

    event.error = resource_error(
        resource,
        endpoint_head,
        response.as_deref(),
        status,
        token_problem,
    );
    shared
}

/// The longest `error.description` recorded of an error a service reported, as of a
/// challenge's or an OAuth error body's.
const MAX_REPORTED_DESCRIPTION: usize = 512;

/// A protected route's `error`: the route's own challenge, else what the service reported
/// (its description scrubbed of the request's secrets, as the challenge's is), else the
/// token verdict, else a code for an error status.
fn resource_error(
    resource: &ResourceRequest,
    endpoint_head: Option<&HeadSecrets>,
    response: Option<&ResponseContext>,
    status: Option<http::StatusCode>,
    token_problem: Option<Verdict>,
) -> Option<ErrorInfo> {
    let malformed_reason = match resource.presented() {
        Presented::Malformed { reason, .. } => Some((*reason).to_owned()),
        _ => None,
    };
    let challenge = response.and_then(|r| r.challenge.as_ref());
    let reported = response.and_then(|r| r.error.as_ref());
    // The credentials to scrub from what the response says are gathered only when it says
    // something: a challenge, or an error the service reported.
    if challenge.is_some() || reported.is_some() {
        // What else the head carried: another scheme's credential (a Basic password), a
        // second `Authorization` field, a token sent in the query, DPoP proofs and their
        // parts, cookies (last: a flood of them leaves the credentials before them kept as
        // text).
        let mut head = HeadSecrets::default();
        if let Some(quotable) = resource.quotable() {
            for value in &quotable.authorization {
                crate::oauth::authorization_secrets(value.as_bytes(), &mut head);
            }
            if let Some(query) = quotable.query.as_ref().and_then(|target| target.query()) {
                crate::oauth::query_secrets(query, &mut head);
            }
            for proof in quotable.dpop_proofs() {
                crate::oauth::dpop_secrets(proof.as_bytes(), &mut head);
            }
            for field in quotable.cookies() {
                crate::oauth::cookie_secrets(field.as_bytes(), &mut head);
            }
        }
        let mut secrets = resource.secrets();
        secrets.head(&head);
        // An assumed endpoint's request read as an ordinary route: what its endpoint reading
        // kept of the head (its cookies among them, which this reading does not keep).
        if let Some(endpoint_head) = endpoint_head {
            secrets.head(endpoint_head);
        }
        if let Some(challenge) = challenge {
            if let Some(code) = challenge.error(&secrets) {
                return Some(ErrorInfo {
                    code,
                    description: challenge.description(&secrets).or(malformed_reason),
                });
            }
        }
        if let Some(error) = reported {
            return Some(error.reported(&secrets, MAX_REPORTED_DESCRIPTION));
        }
    }
    if let Some(verdict) = token_problem {
        return Some(ErrorInfo {
            code: verdict.as_str().to_owned(),
            description: malformed_reason,
        });
    }
    // The record names the holder of a token sent in the query, which enforcement takes as
    // no token at all: the refusal says where the token came.
    let description = resource
        .in_query()
        .then(|| QUERY_TOKEN_REFUSED.to_owned())
        .filter(|_| status.is_some_and(|s| s == 401 || s == 403));
    status
        .and_then(error_code::for_status)
        .map(|code| ErrorInfo {
            code: code.to_owned(),
            description,
        })
}

/// `error.description` of a protected route's `401`/`403` to a request whose token came in
/// the query: the layer hands handlers and `RequiredScopes` only a token sent in
/// `Authorization`.
const QUERY_TOKEN_REFUSED: &str =
    "the access token came in the URI query (RFC 6750 §2.3), not in the Authorization header";

/// Verdicts that mean the token must not be accepted. `Unverified` is not one: with no key
/// source configured the layer records claims without judging them.
fn is_rejection(verdict: Verdict) -> bool {
    !matches!(verdict, Verdict::Valid | Verdict::Unverified)
}

/// Milliseconds rounded to whole microseconds: a decimal with at most three fractional
/// digits (`0.108`, never `0.10817299999999999`), which every store keeps exactly and every
/// JSON printer writes the same way, so chained events hash the same when read back.
///
/// The microseconds are counted in a `u64` (enough for 584,000 years), whose conversion to a
/// float is one instruction, where a `u128`'s is a library call.
fn duration_ms(duration: std::time::Duration) -> f64 {
    let micros = duration
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(duration.subsec_micros()));
    micros as f64 / 1000.0
}

#[cfg(test)]
mod duration_tests {
    use std::time::Duration;

    #[test]
    fn durations_are_whole_microseconds() {
        assert_eq!(
            super::duration_ms(Duration::from_nanos(108_173_999)),
            108.173
        );
        assert_eq!(super::duration_ms(Duration::from_nanos(108_173)), 0.108);
        let json =
            serde_json::to_string(&super::duration_ms(Duration::from_nanos(108_173))).unwrap();
        assert_eq!(json, "0.108");
        for micros in [0u64, 1, 7, 999, 1_001, 123_456, 86_400_000_000] {
            let ms = super::duration_ms(Duration::from_micros(micros));
            let printed = serde_json::to_string(&ms).unwrap();
            let fraction = printed.split('.').nth(1).unwrap_or("");
            assert!(fraction.len() <= 3, "{micros} us printed as {printed}");
        }
    }

    proptest::proptest! {
        /// The same number as the microseconds counted in a `u128`.
        #[test]
        fn counted_in_a_u64_as_in_a_u128(secs in 0u64..(1 << 44), nanos in 0u32..1_000_000_000) {
            let duration = Duration::new(secs, nanos);
            proptest::prop_assert_eq!(
                super::duration_ms(duration).to_bits(),
                (duration.as_micros() as f64 / 1000.0).to_bits()
            );
        }
    }
}
