//! What an endpoint's classifier reads: one request and its response ([`Exchange`]).
//!
//! Its own file so that `request.rs`, which builds it, and the classifiers
//! (`token_endpoint.rs`, `revocation.rs`, ...), which read it, depend on it and not on each
//! other.

use std::cell::OnceCell;

use super::endpoints::Endpoints;
use super::form::Form;
use super::response::{JsonBody, Location, ResponseHead};
use crate::context::RequestContext;
use crate::event::{AuditEvent, ErrorInfo, HeadSecrets, OAuthDetails, Outcome, Secrets};
use crate::resource::Challenge;
use crate::token::TokenInspector;

/// What the classifiers read of a response whose head arrived.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ResponseSeen<'a> {
    pub(crate) status: Option<http::StatusCode>,
    /// `error` and `error_description` of a `WWW-Authenticate: Bearer` challenge.
    pub(crate) challenge: Option<&'a Challenge>,
    /// An error the inner service described in the response's extensions.
    pub(crate) error: Option<&'a ErrorInfo>,
    /// The `Location` and content type, read when the head arrived.
    pub(crate) head: Option<&'a ResponseHead>,
}

/// What stands for an error code the server or the service wrote, unless a known one, when
/// the request body was not inspected: its secrets (a code, a client secret, a password) are
/// not known, so the code could not be scrubbed of them.
pub(crate) const CODE_NOT_RECORDED: &str = "[not recorded: the request body was not inspected]";

/// One request and its response, as the classifiers read them.
pub(crate) struct Exchange<'a> {
    pub(crate) inspector: &'a TokenInspector,
    pub(crate) endpoints: &'a Endpoints,
    pub(crate) request: &'a RequestContext,
    /// `None` when the response never completed.
    pub(crate) response: Option<ResponseSeen<'a>>,
    pub(crate) basic_client: Option<&'a super::client_auth::BasicId>,
    /// The response body, when it was a JSON object or a form-encoded answer and seen whole.
    pub(crate) json: Option<JsonBody<'a>>,
    /// False when the request body was too large or incomplete to inspect.
    pub(crate) request_body_inspected: bool,
    /// Where the request's secrets come from: see [`Exchange::secrets`].
    pub(crate) secret_sources: SecretSources<'a>,
    /// The secrets, once gathered.
    pub(crate) secrets: OnceCell<Secrets<'a>>,
    /// Token requests: the check of the request's DPoP proof.
    pub(crate) proof: Option<&'a crate::dpop::ProofCheck>,
    /// The client certificate of the connection (RFC 8705).
    pub(crate) certificate: Option<&'a crate::mtls::PresentedCertificate>,
}

/// What a request's secrets are gathered from, when a response's text must be scrubbed of
/// them (most responses have nothing to scrub: a successful token response is not scrubbed).
pub(crate) struct SecretSources<'a> {
    /// The secrets the request head carried (Basic password, bearer token, ...).
    pub(crate) head: &'a HeadSecrets,
    pub(crate) form: Option<&'a Form<'a>>,
    /// A parameter that is not secret at this endpoint (a login form's username field).
    pub(crate) public_too: Option<&'a str>,
}

impl<'a> Exchange<'a> {
    /// The request's secrets, to scrub from what the response says: gathered the first time
    /// they are asked for.
    pub(crate) fn secrets(&self) -> &Secrets<'a> {
        self.secrets.get_or_init(|| {
            let sources = &self.secret_sources;
            let mut secrets = Secrets::none();
            secrets.head(sources.head);
            if let Some(form) = sources.form {
                form.secrets_into(&mut secrets, sources.public_too.as_slice());
            }
            secrets
        })
    }

    /// The connection's client certificate, when one was read.
    pub(crate) fn client_certificate(&self) -> Option<&crate::mtls::ClientCertificate> {
        self.certificate.and_then(|c| c.certificate())
    }

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
        self.response.and_then(|r| r.head)
    }

    /// The error of a failed response: the JSON `error` (RFC 6749 §5.2), else the
    /// `WWW-Authenticate` challenge, else an [`ErrorInfo`] the service put in the response's
    /// extensions, else `http_<status>`.
    ///
    /// When the request body was not inspected, a code the server or the service wrote is
    /// [`CODE_NOT_RECORDED`] unless a known one ([`Exchange::unread_code`]).
    pub(crate) fn error(&self) -> Option<ErrorInfo> {
        if let Some(mut error) = self.json.as_ref().and_then(|j| j.error(self.secrets())) {
            error.code = self.unread_code(error.code);
            return Some(error);
        }
        if let Some(challenge) = self.response.and_then(|r| r.challenge) {
            if let Some(code) = challenge.error(self.secrets()) {
                return Some(ErrorInfo {
                    code: self.unread_code(code),
                    description: challenge.description(self.secrets()),
                });
            }
        }
        if let Some(error) = self.response.and_then(|r| r.error) {
            let mut error = error.reported(self.secrets(), super::response::MAX_DESCRIPTION);
            error.code = self.unread_code(error.code);
            return Some(error);
        }
        self.status().map(|s| ErrorInfo {
            code: format!("http_{}", s.as_u16()),
            description: None,
        })
    }

    /// `code`, written by the server or the service, as the event may record it: as it is
    /// when the request body was inspected (it was scrubbed of the body's secrets) or when
    /// no request can have written it ([`crate::event::is_known_code`]); else
    /// [`CODE_NOT_RECORDED`], since the body's secrets are not known to scrub it of.
    fn unread_code(&self, code: String) -> String {
        if self.request_body_inspected || crate::event::is_known_code(&code) {
            code
        } else {
            CODE_NOT_RECORDED.to_owned()
        }
    }

    /// The `oauth` object, created on first use.
    pub(crate) fn oauth(event: &mut AuditEvent) -> &mut OAuthDetails {
        event.oauth.get_or_insert_with(Box::default)
    }
}
