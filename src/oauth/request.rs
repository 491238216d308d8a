//! An endpoint request from arrival to event: what is captured when it arrives (no body
//! yet, nothing secret kept), and at response end the [`Exchange`] handed to the
//! endpoint's classifier.

use std::sync::Arc;

use super::authorization::AuthorizeParams;
use super::end_session::LogoutParams;
use super::endpoints::{Endpoint, Endpoints};
use super::evidence;
use super::exchange::{Exchange, ResponseSeen, SecretSources};
use super::form::{ident, Form};
use super::response::{JsonBody, MAX_DESCRIPTION};
use super::{
    authorization, backchannel, client_auth, device_authorization, end_session, introspection,
    login, pushed, revocation, token_endpoint,
};
use crate::context::RequestContext;
use crate::dpop::{DpopVerifier, ProofCheck, ProofUse, DPOP};
use crate::event::{
    sanitize, ActorKind, AuditEvent, ErrorInfo, EventKind, HeadSecrets, OAuthDetails, Outcome,
    Severity,
};
use crate::mtls::PresentedCertificate;
use crate::tee::{CaptureSlot, Captured, Tee};
use crate::token::TokenInspector;

/// What an endpoint request carried when it arrived.
#[derive(Debug)]
pub(crate) struct EndpointRequest {
    endpoint: Endpoint,
    /// The role was assumed from a default path: the traffic must prove it.
    assumed: bool,
    /// The client id of an `Authorization: Basic` header (never the secret).
    basic_client: Option<client_auth::BasicId>,
    /// Authorization requests: the parameters of the query string.
    query: Option<AuthorizeParams>,
    /// End-session requests: the parameters of the query string.
    logout_query: Option<LogoutParams>,
    /// Authorization requests: parameters the query string repeated.
    query_repeated: Vec<String>,
    /// Requests read from their form body (token, revocation, introspection, pushed, and
    /// logins), with a body or without: the query string, whose parameters a server that
    /// merges the two (a servlet's `getParameter`) reads beside the form's, or instead of
    /// them.
    body_query: Option<String>,
    /// The secrets the request head carried (Basic password, bearer token, cookies, secret
    /// query parameters), to scrub them from what the response says.
    head_secrets: HeadSecrets,
    /// Revocation: the application's reason header.
    reason: Option<String>,
    /// Where the request body's tee leaves what it saw; `None` for requests without body.
    body: Option<CaptureSlot>,
    /// The body's `Content-Type` is a form's (or absent).
    form_body: bool,
    /// The body has a content coding (`Content-Encoding: gzip`): not readable as a form.
    encoded_body: bool,
    /// Token requests: the check of the DPoP proof sent with it (RFC 9449 §5).
    proof: Option<ProofCheck>,
    /// The client certificate of the connection (RFC 8705).
    certificate: Option<PresentedCertificate>,
}

/// Which of the headers that may hold a secret a request head has, found in one pass over its
/// names. Looking a name up hashes it whether it is there or not, and most token requests
/// (a client authenticated in the form, no cookie, no proof) carry none of them.
#[derive(Clone, Copy, Default)]
struct SecretHeaders {
    authorization: bool,
    cookie: bool,
    dpop: bool,
}

impl SecretHeaders {
    fn of(headers: &http::HeaderMap) -> Self {
        let mut found = SecretHeaders::default();
        for name in headers.keys() {
            if name == http::header::AUTHORIZATION {
                found.authorization = true;
            } else if name == http::header::COOKIE {
                found.cookie = true;
            } else if name == DPOP {
                found.dpop = true;
            }
        }
        found
    }
}

/// Adds to `out` every cookie value and every DPoP proof (no bearer secret, but never
/// recorded either), and each part of a proof: a response may quote them. `present` says
/// which of those headers there are. (The `Authorization` values' secrets are added by
/// `basic_client`.)
fn head_credentials(headers: &http::HeaderMap, present: SecretHeaders, out: &mut HeadSecrets) {
    if present.cookie {
        cookie_values(headers, out);
    }
    if present.dpop {
        for value in headers.get_all(DPOP) {
            super::dpop_secrets(value.as_bytes(), out);
        }
    }
}

fn cookie_values(headers: &http::HeaderMap, out: &mut HeadSecrets) {
    for field in headers.get_all(http::header::COOKIE) {
        super::cookie_secrets(field.as_bytes(), out);
    }
}

/// What became of an endpoint request's event.
#[derive(Debug)]
pub(crate) enum EndpointEvent {
    /// The event to record, made in the `Arc` it travels in and not shared yet: the layer
    /// adds the request's own fields (`http`, `source`, ids).
    Recorded(Arc<AuditEvent>),
    /// Deliberately not recorded (a repeated device-code poll).
    Suppressed,
    /// An assumed endpoint whose traffic did not look like its protocol: an ordinary route.
    NotOAuth,
}

/// Why a body was not inspected (`oauth.body_not_inspected`).
const REQUEST_TOO_LARGE: &str = "request_too_large";
/// The request body was within the limit, but the bodies of other requests held the whole
/// capture budget.
const REQUEST_OVER_BUDGET: &str = "request_over_budget";
/// The same of a response body.
const RESPONSE_OVER_BUDGET: &str = "response_over_budget";
const REQUEST_INCOMPLETE: &str = "request_incomplete";
const RESPONSE_TOO_LARGE: &str = "response_too_large";
/// The body's data type could not show its bytes without consuming them
/// ([`Captured::unreadable`](crate::tee::Captured)).
const REQUEST_UNREADABLE: &str = "request_unreadable";
/// The request body is not `application/x-www-form-urlencoded` (JSON, XML, multipart), is
/// JSON or XML text under that type or none, or is a form in a charset not read here as
/// servers read it (UTF-16).
const REQUEST_NOT_A_FORM: &str = "request_not_a_form";
/// The request body has a content coding (`gzip`, ...), which is not undone to read it.
const REQUEST_ENCODED: &str = "request_encoded";
/// What stands for a response's `error_description` when the request body was not inspected.
const DESCRIPTION_NOT_RECORDED: &str =
    "[not recorded: the request body was not inspected, so its secrets could not be scrubbed]";
const RESPONSE_UNREADABLE: &str = "response_unreadable";
const RESPONSE_INCOMPLETE: &str = "response_incomplete";
/// The response body has a content coding (`gzip`, ...), which is not undone to read it.
const RESPONSE_ENCODED: &str = "response_encoded";

/// Leaves out of `error`, an error the service reported, what could quote a request body
/// that was not inspected, whose secrets (a code, a client secret, a password) are not known
/// to scrub it of: its description, and its code unless a known one
/// ([`Exchange::unread_code`]).
fn without_unread_secrets(error: &mut ErrorInfo) {
    if let Some(description) = error.description.as_mut() {
        DESCRIPTION_NOT_RECORDED.clone_into(description);
    }
    if !crate::event::is_known_code(&error.code) {
        super::exchange::CODE_NOT_RECORDED.clone_into(&mut error.code);
    }
}

/// Whether a `Content-Type` value is `application/x-www-form-urlencoded`, parameters and
/// case aside.
fn is_form_type(value: &[u8]) -> bool {
    let media = value.split(|&b| b == b';').next().unwrap_or_default();
    media
        .trim_ascii()
        .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
}

/// Whether a form's `Content-Type` names no charset, or one whose bytes are read here as a
/// server honouring it reads them: UTF-8, US-ASCII, or ISO-8859-1 (with windows-1252,
/// which browsers send for it; a value that is not UTF-8 is also read as Latin-1 to scrub
/// it). A server honouring another charset reads other parameters than the bytes show:
/// ASP.NET Core cuts a form at its charset's `&` and `=`, so one in UTF-16 names a grant, a
/// client and a client secret, which read byte for byte are one unknown name full of NULs,
/// and the secret it quotes back is none known here.
fn is_charset_read_here(value: &[u8]) -> bool {
    const READ_HERE: [&[u8]; 11] = [
        b"utf-8",
        b"utf8",
        b"us-ascii",
        b"ascii",
        b"iso-8859-1",
        b"iso8859-1",
        b"iso_8859-1",
        b"latin1",
        b"l1",
        b"windows-1252",
        b"cp1252",
    ];
    value.split(|&b| b == b';').skip(1).all(|parameter| {
        let Some(equals) = parameter.iter().position(|&b| b == b'=') else {
            return true;
        };
        if !parameter[..equals]
            .trim_ascii()
            .eq_ignore_ascii_case(b"charset")
        {
            return true;
        }
        let charset = parameter[equals + 1..].trim_ascii();
        let charset = charset
            .strip_prefix(b"\"")
            .and_then(|quoted| quoted.strip_suffix(b"\""))
            .unwrap_or(charset);
        READ_HERE
            .iter()
            .any(|known| charset.eq_ignore_ascii_case(known))
    })
}

/// Whether a body typed as a form (or untyped) is JSON text, an object or an array, or XML,
/// an element, a declaration or a comment (`<`), white space (and a byte order mark) aside.
/// A form's first name never begins so (a form encodes `{`, `[` and `<`), and a server that
/// reads such a body as JSON or XML (or quotes it) has its secrets, which a form's reading
/// would take for one parameter's name.
fn is_json_or_xml_text(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    matches!(body.trim_ascii_start().first(), Some(b'{' | b'[' | b'<'))
}

/// `error.code` of a request that repeated a parameter RFC 6749 allows once.
pub(crate) const INVALID_REQUEST: &str = "invalid_request";

impl EndpointRequest {
    /// Captures the request head. When the request has a body, returns the tee the body
    /// must be wrapped with.
    pub(crate) fn capture(
        endpoint: Endpoint,
        head: (&http::HeaderMap, &http::Uri),
        has_body: bool,
        endpoints: &Endpoints,
        proof: Option<(ProofCheck, &DpopVerifier)>,
        certificate: Option<PresentedCertificate>,
    ) -> (Self, Option<Tee>) {
        let (headers, uri) = head;
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
        let mut head_secrets = HeadSecrets::default();
        let present = SecretHeaders::of(headers);
        let basic_client = if present.authorization {
            client_auth::basic_client(headers, &mut head_secrets)
        } else {
            None
        };
        head_credentials(headers, present, &mut head_secrets);
        let mut query_repeated = Vec::new();
        let mut logout_query = None;
        let query = match (endpoint, uri.query()) {
            (Endpoint::Authorization, Some(q)) => {
                let form = Form::parse(q.as_bytes());
                query_repeated = form.repeated();
                form.head_secrets_into(&mut head_secrets);
                Some(AuthorizeParams::from_form(&form))
            }
            (Endpoint::EndSession, Some(q)) => {
                let form = Form::parse(q.as_bytes());
                query_repeated = form.repeated();
                form.head_secrets_into(&mut head_secrets);
                logout_query = Some(LogoutParams::from_form(&form));
                None
            }
            // Servers that read parameters from the query and the body alike (a servlet's
            // `getParameter`) take a `code` or `client_secret` sent in the query: they are
            // secrets to scrub from the answer wherever they were sent.
            (_, Some(q)) => {
                Form::parse(q.as_bytes()).head_secrets_into(&mut head_secrets);
                None
            }
            _ => None,
        };
        // Such a server also reads a parameter sent in both as sent twice, and may take the
        // query's value, and reads one sent in the query alone, body or not: kept to find
        // those parameters once the body is read (a login's username is read from there).
        let body_query = match (endpoint, uri.query()) {
            (
                Endpoint::Token
                | Endpoint::Revocation
                | Endpoint::Introspection
                | Endpoint::PushedAuthorization
                | Endpoint::DeviceAuthorization
                | Endpoint::BackchannelAuthentication
                | Endpoint::Login,
                Some(q),
            ) if !q.is_empty() => Some(q.to_owned()),
            _ => None,
        };
        let reason = match (endpoint, &config.reason_header) {
            (Endpoint::Revocation, Some(name)) => headers
                .get(name)
                .map(|v| sanitize(&crate::text::lossy(v.as_bytes()), 512))
                .filter(|r| !r.is_empty()),
            _ => None,
        };
        // A login form is no OAuth client's.
        let basic_client = basic_client.filter(|_| endpoint != Endpoint::Login);
        // A body of another type (JSON, XML, multipart), or a form in a charset read otherwise
        // (UTF-16), is not read as a form: its secrets would not be known, so the event says
        // it was not inspected.
        let form_body = headers.get(http::header::CONTENT_TYPE).is_none_or(|value| {
            is_form_type(value.as_bytes()) && is_charset_read_here(value.as_bytes())
        });
        // Nor is a compressed one (servers such as Express's body-parser inflate it): read as
        // it came, it would name no grant, client or user, and the event would call the
        // request anonymous.
        let encoded_body = super::response::content_coded(headers);
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
            body_query,
            head_secrets,
            reason,
            body,
            form_body,
            encoded_body,
            proof,
            certificate,
        };
        (request, tee)
    }

    /// Whether the query of a request read from its form body (not a login's, whose
    /// username is read from it) names a parameter the form does not, or there is no form.
    fn query_names_more(&self, form: Option<&Form<'_>>) -> bool {
        self.endpoint != Endpoint::Login
            && self
                .body_query
                .as_deref()
                .is_some_and(|query| Form::parse(query.as_bytes()).names_beyond(form))
    }

    /// The secrets the request head carried: an assumed endpoint's request recorded as an
    /// ordinary route is scrubbed of them too.
    pub(crate) fn head_secrets(&self) -> &HeadSecrets {
        &self.head_secrets
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
            Some(_) if self.encoded_body => {
                not_inspected.push(REQUEST_ENCODED);
                None
            }
            Some(_) if !self.form_body => {
                not_inspected.push(REQUEST_NOT_A_FORM);
                None
            }
            Some(slot) => match slot.get() {
                Some(captured) => match captured.whole() {
                    // JSON or XML under a form's type, or under none (`curl -d '{...}'`
                    // sends it as a form): read as a form, its secrets would be one
                    // parameter's name.
                    Some(bytes) if is_json_or_xml_text(bytes) => {
                        not_inspected.push(REQUEST_NOT_A_FORM);
                        None
                    }
                    Some(bytes) => Some(Form::parse(bytes)),
                    None if captured.unreadable => {
                        not_inspected.push(REQUEST_UNREADABLE);
                        None
                    }
                    None if captured.over_budget => {
                        not_inspected.push(REQUEST_OVER_BUDGET);
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
        let form = match self.body_query.as_deref() {
            None => form,
            // A login's username where a server merging the query and the body reads it:
            // in the query alone, it is the one; in both, it is sent twice. A body that was
            // not inspected may name one too: the query's alone is not believed then.
            Some(query) if self.endpoint == Endpoint::Login => request_body_inspected.then(|| {
                form.unwrap_or_default().with_query_field(
                    Form::parse(query.as_bytes()),
                    &settings.endpoints.config().username_field,
                )
            }),
            // A parameter in both is one sent twice (RFC 6749 §3.2 allows the token
            // endpoint a query, but no parameter twice).
            Some(query) => form.map(|form| form.with_query(Form::parse(query.as_bytes()))),
        };
        let json = match (response, response_body.as_ref()) {
            (Some(r), Some(_)) if r.head.is_some_and(|h| h.encoded && (h.json || h.form)) => {
                not_inspected.push(RESPONSE_ENCODED);
                None
            }
            (Some(r), Some(captured)) if r.head.is_some_and(|h| h.json || h.form) => match captured
                .whole()
            {
                Some(bytes) if r.head.is_some_and(|h| h.form) => Some(JsonBody::from_form(bytes)),
                Some(bytes) => JsonBody::parse(bytes),
                None => {
                    not_inspected.push(if captured.unreadable {
                        RESPONSE_UNREADABLE
                    } else if captured.over_budget {
                        RESPONSE_OVER_BUDGET
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
                    // A login form is not OAuth: only its username must be unambiguous, in
                    // any case (ASP.NET reads `USERNAME` as `username`).
                    if form.named(&config.username_field).nth(1).is_some() {
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
            request,
            response,
            basic_client: self.basic_client.as_ref(),
            json,
            request_body_inspected,
            secret_sources: SecretSources {
                head: &self.head_secrets,
                form,
                public_too,
            },
            secrets: Default::default(),
            proof: self.proof.as_ref(),
            certificate: self.certificate.as_ref(),
        };
        // Made in its `Arc` and filled there by the classifier, which sets its kind and
        // outcome: the event is not built first and then copied in on its way out.
        let mut shared = settings.auditor.new_event(
            request.time,
            (EventKind::TokenRequestFailed, Outcome::Unknown),
            request.request_id.as_str(),
        );
        // Just made: unshared, so this neither clones nor fails.
        let event = Arc::make_mut(&mut shared);
        match self.endpoint {
            Endpoint::Token => {
                if !token_endpoint::classify(&exchange, form, event) {
                    return EndpointEvent::Suppressed;
                }
            }
            Endpoint::Revocation => {
                revocation::classify(&exchange, form, self.reason.as_deref(), event)
            }
            Endpoint::Introspection => introspection::classify(&exchange, form, event),
            Endpoint::Authorization => {
                authorization::classify(&exchange, form, self.query.as_ref(), event)
            }
            Endpoint::Login => login::classify(&exchange, form, event),
            Endpoint::PushedAuthorization => pushed::classify(&exchange, form, event),
            Endpoint::DeviceAuthorization => device_authorization::classify(&exchange, form, event),
            Endpoint::BackchannelAuthentication => backchannel::classify(&exchange, form, event),
            Endpoint::EndSession => {
                end_session::classify(&exchange, form, self.logout_query.as_ref(), event)
            }
            // Audited as a protected route by the layer; never captured as an endpoint.
            Endpoint::UserInfo => return EndpointEvent::NotOAuth,
        }
        if event.actor.kind == Some(ActorKind::Anonymous)
            && (!request_body_inspected || self.query_names_more(form))
        {
            // Nobody was seen, which is not the same as nobody being there: the body was not
            // read, or the query names what a server reading it too (a servlet's
            // `getParameter`) reads, and the event does not (a client in the query alone).
            event.actor.kind = None;
        }
        if !request_body_inspected {
            // The body's secrets (a code, a client secret, a password) are not known, so the
            // answer's free text cannot be scrubbed of them: it is not recorded. (A code the
            // server or the application wrote was left out by `Exchange::error`.)
            if let Some(description) = event.error.as_mut().and_then(|e| e.description.as_mut()) {
                DESCRIPTION_NOT_RECORDED.clone_into(description);
            }
        }
        if !not_inspected.is_empty() {
            let oauth = Exchange::oauth(event);
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
            Exchange::oauth(event).repeated_parameters = repeated;
        }
        // An error the service reported beside an answer the classifier took for no refusal
        // (a login page answered `200`, a token issued): recorded here, where the form's
        // secrets (a password, a client secret) are still known to scrub it of, not by the
        // layer, which has only the head's.
        if event.error.is_none() {
            if let Some(reported) = response.and_then(|r| r.error) {
                let mut error = reported.reported(exchange.secrets(), MAX_DESCRIPTION);
                if !request_body_inspected {
                    without_unread_secrets(&mut error);
                }
                event.error = Some(error);
            }
        }
        if event.oauth.as_deref().is_some_and(OAuthDetails::is_empty) {
            event.oauth = None;
        }
        EndpointEvent::Recorded(shared)
    }
}

/// The layer configuration an endpoint event is built with.
#[derive(Clone, Copy)]
pub(crate) struct Settings<'a> {
    pub(crate) inspector: &'a TokenInspector,
    pub(crate) endpoints: &'a Endpoints,
    /// Makes the event, which names its producer. The layer adds the request's own fields
    /// (`request_id`, `http`, `source`, ...) once the event is made.
    pub(crate) auditor: &'a crate::writer::Auditor,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A form is read when its charset is none, or one read here as servers read it, in any
    /// case, quoted or not; UTF-16, UTF-32 and EBCDIC are not.
    #[test]
    fn a_form_is_read_only_in_a_charset_read_here() {
        for value in [
            "application/x-www-form-urlencoded",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "application/x-www-form-urlencoded;charset=\"utf-8\"",
            "application/x-www-form-urlencoded; Charset=ISO-8859-1",
            "application/x-www-form-urlencoded; charset=windows-1252",
            "application/x-www-form-urlencoded; boundary=x",
        ] {
            assert!(is_charset_read_here(value.as_bytes()), "{value}");
        }
        for value in [
            "application/x-www-form-urlencoded; charset=utf-16",
            "application/x-www-form-urlencoded; charset=\"UTF-16LE\"",
            "application/x-www-form-urlencoded; charset=utf-32",
            "application/x-www-form-urlencoded; charset=IBM037",
            "application/x-www-form-urlencoded; charset=utf-8; charset=utf-16",
        ] {
            assert!(!is_charset_read_here(value.as_bytes()), "{value}");
        }
    }
}
