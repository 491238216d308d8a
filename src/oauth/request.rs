//! An endpoint request from arrival to event: what is captured when it arrives (no body
//! yet, nothing secret kept), and at response end the [`Exchange`] handed to the
//! endpoint's classifier.

use http::request::Parts;

use super::authorization::AuthorizeParams;
use super::end_session::LogoutParams;
use super::endpoints::{Endpoint, Endpoints};
use super::evidence;
use super::exchange::{Exchange, ResponseSeen, SecretSources};
use super::form::{ident, Form};
use super::response::JsonBody;
use super::{
    authorization, client_auth, end_session, introspection, login, pushed, revocation,
    token_endpoint,
};
use crate::context::RequestContext;
use crate::dpop::{DpopVerifier, ProofCheck, ProofUse, DPOP};
use crate::event::{
    sanitize, ActorKind, AuditEvent, ErrorInfo, EventKind, OAuthDetails, Outcome, Severity,
};
use crate::mtls::PresentedCertificate;
use crate::tee::{CaptureSlot, Captured, Tee};
use crate::token::{TokenFingerprint, TokenInspector};

/// What an endpoint request carried when it arrived.
#[derive(Debug)]
pub(crate) struct EndpointRequest {
    endpoint: Endpoint,
    /// The role was assumed from a default path: the traffic must prove it.
    assumed: bool,
    /// The client id of an `Authorization: Basic` header (never the secret).
    basic_client: Option<String>,
    /// Authorization requests: the parameters of the query string.
    query: Option<AuthorizeParams>,
    /// End-session requests: the parameters of the query string.
    logout_query: Option<LogoutParams>,
    /// Authorization requests: parameters the query string repeated.
    query_repeated: Vec<String>,
    /// Fingerprints of the secrets the request head carried (Basic password, bearer token,
    /// secret query parameters), to scrub them from what the response says.
    secret_fingerprints: Vec<TokenFingerprint>,
    /// Revocation: the application's reason header.
    reason: Option<String>,
    /// Where the request body's tee leaves what it saw; `None` for requests without body.
    body: Option<CaptureSlot>,
    /// Token requests: the check of the DPoP proof sent with it (RFC 9449 §5).
    proof: Option<ProofCheck>,
    /// The client certificate of the connection (RFC 8705).
    certificate: Option<PresentedCertificate>,
}

/// Fingerprints of the credentials of every `Authorization` header (whatever the scheme)
/// and of every cookie value: a response may quote them.
fn credential_fingerprints(headers: &http::HeaderMap) -> Vec<TokenFingerprint> {
    let mut out = Vec::new();
    for value in headers.get_all(http::header::AUTHORIZATION) {
        let value = String::from_utf8_lossy(value.as_bytes());
        let credentials = value.trim().split_once(' ').map_or("", |(_, c)| c.trim());
        if !credentials.is_empty() {
            out.push(TokenFingerprint::of(credentials));
        }
    }
    for value in headers.get_all(http::header::COOKIE) {
        let value = String::from_utf8_lossy(value.as_bytes());
        for pair in value.split(';') {
            if let Some((_, v)) = pair.split_once('=') {
                if !v.trim().is_empty() {
                    out.push(TokenFingerprint::of(v.trim()));
                }
            }
        }
    }
    out
}

/// What became of an endpoint request's event.
// Returned once and unpacked at once: boxing the event would cost an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum EndpointEvent {
    /// The event to record.
    Recorded(AuditEvent),
    /// Deliberately not recorded (a repeated device-code poll).
    Suppressed,
    /// An assumed endpoint whose traffic did not look like its protocol: an ordinary route.
    NotOAuth,
}

/// Why a body was not inspected (`oauth.body_not_inspected`).
const REQUEST_TOO_LARGE: &str = "request_too_large";
const REQUEST_INCOMPLETE: &str = "request_incomplete";
const RESPONSE_TOO_LARGE: &str = "response_too_large";
/// The body's data type could not show its bytes without consuming them
/// ([`Captured::unreadable`](crate::tee::Captured)).
const REQUEST_UNREADABLE: &str = "request_unreadable";
const RESPONSE_UNREADABLE: &str = "response_unreadable";
const RESPONSE_INCOMPLETE: &str = "response_incomplete";

/// `error.code` of a request that repeated a parameter RFC 6749 allows once.
pub(crate) const INVALID_REQUEST: &str = "invalid_request";

impl EndpointRequest {
    /// Captures the request head. When the request has a body, returns the tee the body
    /// must be wrapped with.
    pub(crate) fn capture(
        endpoint: Endpoint,
        head: &Parts,
        has_body: bool,
        endpoints: &Endpoints,
        proof: Option<(ProofCheck, &DpopVerifier)>,
        certificate: Option<PresentedCertificate>,
    ) -> (Self, Option<Tee>) {
        let config = endpoints.config();
        // Recorded on arrival, as the authorization server does: proofs are remembered in
        // the order they come.
        let proof = match proof {
            Some((mut check, dpop)) if endpoint == Endpoint::Token => {
                dpop.record_use(&mut check, ProofUse::TokenEndpoint);
                Some(check)
            }
            _ => None,
        };
        let mut secret_fingerprints = client_auth::basic_password_fingerprints(&head.headers);
        secret_fingerprints.extend(credential_fingerprints(&head.headers));
        // A DPoP proof is no bearer secret, but it is never recorded either.
        secret_fingerprints.extend(
            head.headers
                .get_all(DPOP)
                .iter()
                .map(|v| TokenFingerprint::of(&String::from_utf8_lossy(v.as_bytes()))),
        );
        let mut query_repeated = Vec::new();
        let mut logout_query = None;
        let query = match (endpoint, head.uri.query()) {
            (Endpoint::Authorization, Some(q)) => {
                let form = Form::parse(q.as_bytes());
                query_repeated = form.repeated();
                secret_fingerprints.extend(form.secret_fingerprints());
                Some(AuthorizeParams::from_form(&form))
            }
            (Endpoint::EndSession, Some(q)) => {
                let form = Form::parse(q.as_bytes());
                query_repeated = form.repeated();
                secret_fingerprints.extend(form.secret_fingerprints());
                logout_query = Some(LogoutParams::from_form(&form));
                None
            }
            _ => None,
        };
        let reason = match (endpoint, &config.reason_header) {
            (Endpoint::Revocation, Some(name)) => head
                .headers
                .get(name)
                .map(|v| sanitize(&String::from_utf8_lossy(v.as_bytes()), 512))
                .filter(|r| !r.is_empty()),
            _ => None,
        };
        let basic_client = match endpoint {
            Endpoint::Login => None,
            _ => client_auth::basic_client_id(&head.headers),
        };
        let (body, tee) = if has_body {
            let slot = CaptureSlot::default();
            let tee =
                Tee::publishing(config.body_limit, slot.clone()).within(&config.capture_budget);
            (Some(slot), Some(tee))
        } else {
            (None, None)
        };
        let request = EndpointRequest {
            endpoint,
            assumed: endpoints.is_assumed(endpoint),
            basic_client,
            query,
            logout_query,
            query_repeated,
            secret_fingerprints,
            reason,
            body,
            proof,
            certificate,
        };
        (request, tee)
    }

    /// Builds the event of the exchange.
    pub(crate) fn event(
        &self,
        settings: Settings<'_>,
        request: &RequestContext,
        response: Option<ResponseSeen<'_>>,
        response_body: Option<Captured>,
    ) -> EndpointEvent {
        let mut not_inspected = Vec::new();
        let form = match &self.body {
            None => None,
            Some(slot) => match slot.get() {
                Some(captured) => match captured.whole() {
                    Some(bytes) => Some(Form::parse(bytes)),
                    None if captured.unreadable => {
                        not_inspected.push(REQUEST_UNREADABLE);
                        None
                    }
                    None if captured.truncated => {
                        not_inspected.push(REQUEST_TOO_LARGE);
                        None
                    }
                    None => {
                        not_inspected.push(REQUEST_INCOMPLETE);
                        None
                    }
                },
                None => {
                    not_inspected.push(REQUEST_INCOMPLETE);
                    None
                }
            },
        };
        let request_body_inspected = not_inspected.is_empty();
        let json = match (response, response_body.as_ref()) {
            (Some(r), Some(captured)) if r.head.is_some_and(|h| h.json) => match captured.whole() {
                Some(bytes) => JsonBody::parse(bytes),
                None => {
                    not_inspected.push(if captured.unreadable {
                        RESPONSE_UNREADABLE
                    } else if captured.truncated {
                        RESPONSE_TOO_LARGE
                    } else {
                        RESPONSE_INCOMPLETE
                    });
                    None
                }
            },
            _ => None,
        };
        let form = form.as_ref();
        let location = response
            .and_then(|r| r.head)
            .and_then(|h| h.location.as_ref());
        let logout_query_speaks = self
            .logout_query
            .as_ref()
            .is_some_and(|q| *q != LogoutParams::default());
        if self.assumed
            && !logout_query_speaks
            && !evidence::looks_like(
                self.endpoint,
                request.method == http::Method::POST,
                form,
                self.query.as_ref(),
                json.as_ref(),
                location,
            )
        {
            return EndpointEvent::NotOAuth;
        }

        let config = settings.endpoints.config();
        let mut public_too = None;
        let mut repeated = self.query_repeated.clone();
        if let Some(form) = form {
            match self.endpoint {
                Endpoint::Login => {
                    public_too = Some(config.username_field.as_str());
                    // A login form is not OAuth: only its username must be unambiguous.
                    if form.all(&config.username_field).nth(1).is_some() {
                        repeated.push(ident(&config.username_field));
                    }
                }
                _ => {
                    for name in form.repeated() {
                        if !repeated.contains(&name) {
                            repeated.push(name);
                        }
                    }
                }
            }
        }
        let exchange = Exchange {
            inspector: settings.inspector,
            endpoints: settings.endpoints,
            envelope: settings.envelope,
            request,
            response,
            basic_client: self.basic_client.as_deref(),
            json,
            request_body_inspected,
            secret_sources: SecretSources {
                fingerprints: &self.secret_fingerprints,
                form,
                public_too,
            },
            secrets: Default::default(),
            proof: self.proof.as_ref(),
            certificate: self.certificate.as_ref(),
        };
        let mut event = match self.endpoint {
            Endpoint::Token => match token_endpoint::classify(&exchange, form) {
                Some(event) => event,
                None => return EndpointEvent::Suppressed,
            },
            Endpoint::Revocation => revocation::classify(&exchange, form, self.reason.as_deref()),
            Endpoint::Introspection => introspection::classify(&exchange, form),
            Endpoint::Authorization => {
                authorization::classify(&exchange, form, self.query.as_ref())
            }
            Endpoint::Login => login::classify(&exchange, form),
            Endpoint::PushedAuthorization => pushed::classify(&exchange, form),
            Endpoint::EndSession => {
                end_session::classify(&exchange, form, self.logout_query.as_ref())
            }
            // Audited as a protected route by the layer; never captured as an endpoint.
            Endpoint::UserInfo => return EndpointEvent::NotOAuth,
        };
        if !request_body_inspected && event.actor.kind == Some(ActorKind::Anonymous) {
            // Nobody was seen, which is not the same as nobody being there.
            event.actor.kind = None;
        }
        if !not_inspected.is_empty() {
            let oauth = Exchange::oauth(&mut event);
            oauth.body_inspected = Some(false);
            oauth.body_not_inspected = not_inspected.iter().map(|r| (*r).to_owned()).collect();
        }
        if !repeated.is_empty() {
            if event.error.is_none() {
                event.error = Some(ErrorInfo {
                    code: INVALID_REQUEST.to_owned(),
                    description: Some(format!(
                        "parameters sent more than once: {}",
                        repeated.join(", ")
                    )),
                });
            }
            if event.severity == Severity::Info {
                event.severity = Severity::Warning;
            }
            Exchange::oauth(&mut event).repeated_parameters = repeated;
        }
        if event.oauth.as_deref().is_some_and(OAuthDetails::is_empty) {
            event.oauth = None;
        }
        EndpointEvent::Recorded(event)
    }
}

/// The layer configuration an endpoint event is built with.
#[derive(Clone, Copy)]
pub(crate) struct Settings<'a> {
    pub(crate) inspector: &'a TokenInspector,
    pub(crate) endpoints: &'a Endpoints,
    /// Makes a new event for the service (id, time, kind): the layer's part. The layer adds
    /// the request's own fields (`request_id`, `http`, `source`, ...) once the event is made.
    pub(crate) envelope: &'a dyn Fn(EventKind, Outcome) -> AuditEvent,
}
