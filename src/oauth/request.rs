//! An endpoint request from arrival to event: what is captured when it arrives (no body
//! yet, nothing secret kept), and the [`Exchange`] each classifier reads at response end.

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

use super::authorization::AuthorizeParams;
use super::endpoints::{Endpoint, Endpoints};
use super::form::Form;
use super::response::{JsonBody, Location, ResponseHead};
use super::{authorization, client_auth, introspection, login, revocation, token_endpoint};
use crate::context::{RequestContext, ResponseContext};
use crate::event::{
    sanitize, AuditEvent, ErrorInfo, EventKind, OAuthDetails, Outcome, ServiceInfo,
};
use crate::layer::tee::{CaptureSlot, Captured, Tee};
use crate::token::TokenInspector;

/// What an endpoint request carried when it arrived.
#[derive(Debug)]
pub(crate) struct EndpointRequest {
    endpoint: Endpoint,
    /// The client id of an `Authorization: Basic` header (never the secret).
    basic_client: Option<String>,
    /// Authorization requests: the parameters of the query string.
    query: Option<AuthorizeParams>,
    /// Revocation: the application's reason header.
    reason: Option<String>,
    /// Where the request body's tee leaves what it saw; `None` for requests without body.
    body: Option<CaptureSlot>,
}

impl EndpointRequest {
    /// Captures the request head. When the request has a body, returns the tee the body
    /// must be wrapped with.
    pub(crate) fn capture(
        endpoint: Endpoint,
        head: &Parts,
        has_body: bool,
        endpoints: &Endpoints,
    ) -> (Self, Option<Tee>) {
        let config = endpoints.config();
        let query = match (endpoint, head.uri.query()) {
            (Endpoint::Authorization, Some(q)) => {
                Some(AuthorizeParams::from_form(&Form::parse(q.as_bytes())))
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
            basic_client,
            query,
            reason,
            body,
        };
        (request, tee)
    }

    /// Builds the event; `None` when it is deliberately not recorded (a repeated
    /// device-code poll).
    pub(crate) fn event(
        &self,
        settings: Settings<'_>,
        request: &RequestContext,
        response: Option<&ResponseContext>,
        duration: Duration,
        response_body: Option<Captured>,
    ) -> Option<AuditEvent> {
        let mut body_inspected = true;
        let form = match &self.body {
            None => None,
            Some(slot) => match slot.get().and_then(Captured::whole) {
                Some(bytes) => Some(Form::parse(bytes)),
                None => {
                    body_inspected = false;
                    None
                }
            },
        };
        let json = match (response, response_body) {
            (Some(r), Some(captured)) if r.oauth.as_ref().is_some_and(|h| h.json) => {
                match captured.whole() {
                    Some(bytes) => JsonBody::parse(bytes),
                    None => {
                        body_inspected = false;
                        None
                    }
                }
            }
            _ => None,
        };
        let exchange = Exchange {
            service: settings.service,
            inspector: settings.inspector,
            endpoints: settings.endpoints,
            request,
            response,
            duration,
            basic_client: self.basic_client.as_deref(),
            json,
            body_inspected,
        };
        let form = form.as_ref();
        let mut event = match self.endpoint {
            Endpoint::Token => token_endpoint::classify(&exchange, form)?,
            Endpoint::Revocation => revocation::classify(&exchange, form, self.reason.as_deref()),
            Endpoint::Introspection => introspection::classify(&exchange, form),
            Endpoint::Authorization => {
                authorization::classify(&exchange, form, self.query.as_ref())
            }
            Endpoint::Login => login::classify(&exchange, form),
        };
        if event.oauth.as_ref().is_some_and(OAuthDetails::is_empty) {
            event.oauth = None;
        }
        Some(event)
    }
}

/// The layer configuration an endpoint event is built with.
#[derive(Clone, Copy)]
pub(crate) struct Settings<'a> {
    pub(crate) service: &'a Arc<ServiceInfo>,
    pub(crate) inspector: &'a TokenInspector,
    pub(crate) endpoints: &'a Endpoints,
}

/// One request and its response, as the classifiers read them.
pub(crate) struct Exchange<'a> {
    pub(crate) service: &'a Arc<ServiceInfo>,
    pub(crate) inspector: &'a TokenInspector,
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) request: &'a RequestContext,
    /// `None` when the response never completed.
    pub(crate) response: Option<&'a ResponseContext>,
    pub(crate) duration: Duration,
    pub(crate) basic_client: Option<&'a str>,
    /// The response body, when it was a JSON object and seen whole.
    pub(crate) json: Option<JsonBody>,
    /// False when a body was too large or incomplete to inspect.
    pub(crate) body_inspected: bool,
}

impl Exchange<'_> {
    pub(crate) fn status(&self) -> Option<http::StatusCode> {
        self.response.and_then(|r| r.status)
    }

    /// The outcome by status: 2xx success, anything else failure.
    pub(crate) fn outcome(&self) -> Outcome {
        match self.status() {
            None => Outcome::Unknown,
            Some(s) if s.is_success() => Outcome::Success,
            Some(_) => Outcome::Failure,
        }
    }

    pub(crate) fn location(&self) -> Option<&Location> {
        self.head().and_then(|h| h.location.as_ref())
    }

    fn head(&self) -> Option<&ResponseHead> {
        self.response.and_then(|r| r.oauth.as_ref())
    }

    /// An event with the envelope, `http` and `source` filled in.
    pub(crate) fn base(&self, kind: EventKind, outcome: Outcome) -> AuditEvent {
        let mut event = self.request.clone().into_event(
            self.service.clone(),
            kind,
            outcome,
            self.response,
            self.duration,
        );
        if !self.body_inspected {
            event.oauth = Some(OAuthDetails {
                body_inspected: Some(false),
                ..OAuthDetails::default()
            });
        }
        event
    }

    /// The error of a failed response: the JSON `error` (RFC 6749 §5.2), else the
    /// `WWW-Authenticate` challenge, else an [`ErrorInfo`] the service put in the response's
    /// extensions, else `http_<status>`.
    pub(crate) fn error(&self) -> Option<ErrorInfo> {
        if let Some(error) = self.json.as_ref().and_then(JsonBody::error) {
            return Some(error);
        }
        if let Some(challenge) = self.response.and_then(|r| r.challenge.as_ref()) {
            if let Some(code) = &challenge.error {
                return Some(ErrorInfo {
                    code: code.clone(),
                    description: challenge.description.clone(),
                });
            }
        }
        if let Some(error) = self.response.and_then(|r| r.error.clone()) {
            return Some(error);
        }
        self.status().map(|s| ErrorInfo {
            code: format!("http_{}", s.as_u16()),
            description: None,
        })
    }

    /// The `oauth` object, created on first use.
    pub(crate) fn oauth(event: &mut AuditEvent) -> &mut OAuthDetails {
        event.oauth.get_or_insert_with(OAuthDetails::default)
    }
}
