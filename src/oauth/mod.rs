//! OAuth endpoint traffic: token, revocation, introspection, authorization and login
//! requests become `AccessTokenIssued`, `TokenRevoked`, `TokenIntrospected`,
//! `AuthorizationGranted`, `LoginFailed`... events.
//!
//! Which paths are endpoints is configuration ([`Endpoints`]); every other path is a
//! protected route and pays only for one path lookup. The default paths (`/token`,
//! `/revoke`, `/introspect`, `/authorize`) are only assumed to be endpoints: their traffic is
//! recorded as OAuth traffic when it speaks the protocol (a `POST` form with `grant_type` or
//! `token`, an authorization query with `response_type` and `client_id`, a JSON answer with
//! `access_token`, `active` or an RFC 6749 `error`, an authorization redirect), and as an
//! ordinary route otherwise. Paths given explicitly are always endpoints.
//!
//! ```
//! use axum::{routing::post, Router};
//! use oauth_audit::oauth::{Endpoint, Endpoints, LoginRule};
//! use oauth_audit::{writer::{Auditor, MemoryWriter}, AuditLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let memory = MemoryWriter::new();
//! let auditor = Auditor::builder().service_name("idp").writer(memory.clone()).build()?;
//! let endpoints = Endpoints::builder()
//!     .token("/oauth2/token")
//!     .path("/token/introspection", Endpoint::Introspection)
//!     .login("/login")
//!     .login_rule(LoginRule::redirect_prefix("/app"))
//!     .build()?;
//! let layer = AuditLayer::builder(auditor.clone()).endpoints(endpoints).build()?;
//! let app: Router = Router::new()
//!     .route("/oauth2/token", post(|_form: String| async {
//!         r#"{"access_token":"at","token_type":"Bearer"}"#
//!     }))
//!     .layer(layer);
//!
//! use tower::ServiceExt;
//! let request = http::Request::post("/oauth2/token")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(axum::body::Body::from("grant_type=client_credentials&client_id=svc&client_secret=s3cret"))?;
//! let response = app.oneshot(request).await?;
//! axum::body::to_bytes(response.into_body(), usize::MAX).await?;
//! auditor.shutdown().await;
//!
//! let event = &memory.json()[0];
//! assert_eq!(event["kind"], "AccessTokenIssued");
//! assert_eq!(event["grant_type"], "client_credentials");
//! assert_eq!(event["client_auth"], "client_secret_post");
//! assert_eq!(event["actor"]["kind"], "client");
//! assert!(!memory.json_lines().contains("s3cret"));
//! # Ok(()) }
//! ```
//!
//! # Reading bodies without changing them
//!
//! Request and response bodies of endpoint requests are copied as the handler reads them,
//! up to [`Endpoints::body_limit`] bytes (64 KiB by default). The handler receives the
//! original frames, streamed; nothing is buffered in front of it. A body longer than the
//! limit, or one that was not read to its end, is not inspected: its event says
//! `oauth.body_inspected: false` and `oauth.body_not_inspected` (`request_too_large`,
//! `request_incomplete`, `response_too_large`, `response_incomplete`; `request_over_budget`
//! and `response_over_budget` when the copies of other bodies in flight held the whole
//! [`EndpointsBuilder::max_captured_bytes`]; `request_encoded` and `response_encoded` for a
//! body with a `Content-Encoding`, which is not undone), carries only what the
//! headers told, never calls the unseen actor `anonymous`, and never records a login success
//! for a user it did not see (`outcome: unknown`). The query string
//! of an authorization request is parsed when the request arrives, into the few fields
//! below, and never stored.
//!
//! # What each endpoint records
//!
//! | endpoint | fields |
//! | --- | --- |
//! | token | `grant_type`, `client_auth`, `actor.client_id` (HTTP Basic, form `client_id`, or the `sub`/`iss` of a client assertion), `actor.subject` (`sub` of an issued JWT or ID token, else the password grant's `username`, the token-exchange subject token's `sub`, the jwt-bearer assertion's `sub`), `scopes.requested`, `scopes.granted` (response `scope`, else the requested scopes per RFC 6749 §5.1), `token` (the issued access token: fingerprint, format, `jti`, `expires_at` from `expires_in` or `exp`, `type_hint` from `issued_token_type` or `token_type`), `refresh_token`, `oauth.resource`, `oauth.audience`, `oauth.subject_token_type`, `oauth.actor_token_type`, `oauth.requested_token_type`, `oauth.issued_token_type`, `oauth.subject_token` and `oauth.actor_token` (fingerprints), `oauth.act`, `actor.delegation` (the `act` chain of an issued JWT), `error` |
//! | revocation | `actor.client_id`, `client_auth`, `token.fingerprint`, `token.format`, `token.type_hint` (`token_type_hint`), `oauth.reason` (the configured header, default `x-revocation-reason`, else the form parameter `reason`; sanitised), `error` |
//! | introspection | the caller as `actor.client_id` and `client_auth`; the introspected token as `token` (`fingerprint`, `active`, and for active tokens `subject`, `client_id`, `jti`, `issuer`, `audience`, `issued_at`, `expires_at`), its scopes as `scopes.granted`; `error` |
//! | authorization | `actor.client_id`, `redirect_uri` (without query or fragment), `oauth.response_type`, `scopes.requested`, `oauth.pkce_method`; for implicit and hybrid grants the token of the fragment as `token`, and `scopes.granted`; `error` from a redirect's `error`, or from a refusal (4xx) |
//! | login | `actor.subject` (the username form field, default `username`, also read from the query, as servlet containers read it: in both, it is sent twice and not recorded) |
//! | device authorization (RFC 8628 §3.1), CIBA backchannel authentication | `AuthorizationRequested` or `AuthorizationFailed` with `oauth.endpoint` (`device_authorization`, `backchannel_authentication`), `actor.client_id` and `client_auth` (as at the token endpoint), `scopes.requested`, `oauth.device_code_fingerprint` or `oauth.auth_req_id_fingerprint` of the answer, `error`; never the user code, the hints, the binding message or the notification token |
//!
//! Decisions: a 2xx token, revocation or introspection response is a success, anything
//! else a failure. An authorization response redirecting with `code`, `access_token` or
//! `id_token` is `AuthorizationGranted`, with `error` it is `AuthorizationFailed`; any
//! other 2xx or 3xx (a login or consent page, a redirect to the login form) is
//! `AuthorizationRequested`; a 4xx or 5xx is `AuthorizationFailed`. Login responses are
//! judged by the [`LoginRule`]; the default cannot judge a 2xx page (`outcome: unknown`), and
//! every `LoginFailed` carries an `error.code` (`invalid_credentials`,
//! `redirected_to_login`, `redirected_with_error`, `rejected_by_login_rule`,
//! `http_<status>`). A response that never completed gives the success kind
//! with `outcome: unknown` (like `ResourceAccessed`). When a failure carries no RFC 6749
//! `error` (in the JSON body or a `WWW-Authenticate` challenge) `error.code` is
//! `http_<status>`.
//!
//! # Fields this module adds to schema v1
//!
//! - `token.subject`, `token.client_id`: the end user and client of the token the event is
//!   about when that is not the actor's own token. Introspection puts the introspected
//!   token's owner there, since the actor is the caller (a resource server); the schema's
//!   `actor` then still means "who made this request" for every kind.
//! - `oauth.presented_refresh_token` (`{fingerprint}`): the refresh token a
//!   `refresh_token` grant presented. The new one issued alongside is `refresh_token`; a
//!   fingerprint that differs from the presented one means the server rotated it.
//! - `oauth.device_code_fingerprint`: the device code of a device grant poll (RFC 8628),
//!   so polls and the final issuance can be correlated.
//! - `oauth.auth_req_id_fingerprint`: the `auth_req_id` of a CIBA token request (CIBA
//!   Core §10.1), the fingerprint its backchannel authentication request's event carries.
//! - `oauth.pkce_method: "verifier_sent"` on token requests that sent a `code_verifier`
//!   (the method itself is recorded at the authorization endpoint: `S256`, `plain`).
//! - `oauth.repeated`: device-code polls are recorded once per device code, client and
//!   outcome change by default ([`DevicePolling`]); the first event after a run of identical
//!   polls carries how many were not recorded. Issuances are always recorded.
//! - `oauth.body_inspected: false`, `oauth.body_not_inspected`: see above.
//! - `oauth.repeated_parameters`: parameters sent more than once that RFC 6749 §3.1/§3.2
//!   allows once. Their values are ambiguous (the server may read either), so none is
//!   recorded; `error.code` is `invalid_request` unless the server reported an error.
//!
//! Free text taken from responses (`error`, `error_description`, challenge parameters) is
//! scrubbed of the request's own secrets, JWT-shaped words and query strings
//! ([`scrub`](crate::event::scrub)) before it is recorded.
//!
//! Never recorded: access, refresh or ID tokens, client secrets, passwords, codes,
//! verifiers, assertions, device codes, `state`, `nonce`, `Authorization` and `Cookie`
//! values, query strings. Tokens and device codes appear only as fingerprints.
//!
//! Limits: bodies are read as `application/x-www-form-urlencoded` (requests) and JSON
//! (responses); an authorization response sent with `response_mode=form_post` (an HTML
//! page) is `AuthorizationRequested`.

mod authorization;
mod backchannel;
mod client_auth;
mod device;
mod device_authorization;
#[cfg(feature = "discovery")]
mod discovery;
mod end_session;
mod endpoints;
mod evidence;
mod exchange;
mod form;
mod introspection;
mod login;
mod login_rule;
mod metadata;
mod pushed;
mod pushed_requests;
mod request;
mod response;
mod revocation;
mod token_endpoint;
mod unverified;

pub use device::DevicePolling;
#[cfg(feature = "discovery")]
pub use discovery::{
    Discovery, DiscoveryError, DEFAULT_DISCOVERY_TIMEOUT, DEFAULT_MAX_METADATA_BYTES,
};
pub use endpoints::{
    Endpoint, Endpoints, EndpointsBuilder, DEFAULT_BODY_LIMIT, DEFAULT_MAX_CAPTURED_BYTES,
    DEFAULT_PUSHED_REQUESTS_TRACKED,
};
pub use login_rule::{LoginResponse, LoginRule};
pub use metadata::{MetadataError, ProviderMetadata};

pub(crate) use client_auth::authorization_secrets;
pub(crate) use exchange::ResponseSeen;
pub(crate) use form::query_access_token;
pub(crate) use request::{EndpointEvent, EndpointRequest, Settings};

/// Entry points for fuzzing this module's parsers (cargo-fuzz targets). Not a stable API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz {
    use crate::event::{EventKind, Outcome, Secrets};
    use crate::token::TokenInspector;

    /// Parses a form body (or query string) as endpoint events read it: the repeated
    /// parameter names, and the unambiguous value of each known field.
    pub fn form(input: &[u8]) -> (Vec<String>, Vec<Option<String>>) {
        let form = super::form::Form::parse(input);
        let fields = ["grant_type", "username", "client_id", "scope", "token"]
            .iter()
            .map(|name| form.get(name).map(super::form::ident))
            .collect();
        (form.repeated(), fields)
    }

    /// Parses a JSON response body; returns its scrubbed RFC 6749 error, if any.
    pub fn json_response(input: &[u8]) -> Option<(String, Option<String>)> {
        let json = super::response::JsonBody::parse(input)?;
        let _ = (json.int("expires_in"), json.bool("active"), json.claims());
        json.error(&Secrets::none())
            .map(|e| (e.code, e.description))
    }

    /// Classifies an authorization response by status and `Location`; returns the kind,
    /// the outcome and the recorded redirect target.
    pub fn authorize_response(status: u16, location: &str) -> (EventKind, Outcome, String) {
        let location = super::response::Location::parse(location, &TokenInspector::default());
        let status = http::StatusCode::from_u16(status).ok();
        let (kind, outcome) = super::authorization::judge(status, Some(&location));
        (kind, outcome, location.target)
    }

    /// Judges a login response with the default rule: the verdict and, for a failure, its
    /// `error.code`.
    pub fn login_response(
        status: u16,
        location: Option<&str>,
        location_has_error: bool,
        login_path: &str,
    ) -> (Option<bool>, Option<String>) {
        let response = super::LoginResponse {
            status,
            location,
            location_has_error,
            login_path,
        };
        let verdict = super::LoginRule::default().verdict(response);
        let code = (verdict == Some(false)).then(|| super::login_rule::failure_code(&response));
        (verdict, code)
    }
}
pub(crate) use response::ResponseHead;

/// Adds to `head` the values of a query string a response must not quote, as an endpoint's
/// query adds them: those of secret parameters (`access_token` among them, RFC 6750 §2.3),
/// and of parameters not known to be public.
pub(crate) fn query_secrets(query: &str, head: &mut crate::event::HeadSecrets) {
    form::Form::parse(query.as_bytes()).head_secrets_into(head);
}

/// Adds to `head` the value of every cookie of one `Cookie` field (`a=1; b=2`), as an
/// endpoint's request and a protected route's challenge both scrub them.
///
/// A value with a `%` is added percent-decoded too: cookies often carry their `=`, `+` and
/// `/` percent-encoded, and most servers read them decoded (PHP's `$_COOKIE`, the cookie
/// jars of most frameworks), so a response quoting one quotes the decoded form, which the
/// scrub's own decoding of a text (`%2b` for `%2B`) never turns back into the value as sent.
/// A value of 16 bytes or more with a `+` is added as a form value reads too, a space for
/// each `+` and then percent-decoded, as PHP's `$_COOKIE` reads it. A value in double quotes
/// (RFC 6265 §4.1.1) is added without them too, and decoded so: Go's `net/http`, Python's
/// `http.cookies` and the `cookie` package under Express read it without them.
///
/// A value that is not UTF-8, as sent or percent-decoded, is added as Latin-1 reads it too
/// ([`crate::text::latin1_unless_utf8`]): servers that read cookies in ISO-8859-1 (Tomcat's, and others')
/// quote `s\xe9ssion` back as `séssion`, which its lossy UTF-8 reading never matches.
pub(crate) fn cookie_secrets(field: &[u8], head: &mut crate::event::HeadSecrets) {
    let text = crate::text::lossy(field);
    if let std::borrow::Cow::Owned(_) = text {
        // Not UTF-8 (nearly never): each value that is not, as Latin-1 reads it.
        for pair in field.split(|&b| b == b';') {
            if let Some(equals) = pair.iter().position(|&b| b == b'=') {
                let value = pair[equals + 1..].trim_ascii();
                if let Some(text) = crate::text::latin1_unless_utf8(value) {
                    cookie_value(&text, head);
                }
            }
        }
    }
    for pair in text.split(';') {
        if let Some((_, value)) = pair.split_once('=') {
            cookie_value(value.trim(), head);
        }
    }
}

/// Adds to `head` one cookie value, its readings, and the same without the double quotes
/// around it (see [`cookie_secrets`]).
fn cookie_value(value: &str, head: &mut crate::event::HeadSecrets) {
    head.add(value);
    cookie_value_readings(value, head);
    let unquoted = value
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'));
    if let Some(inner) = unquoted {
        head.add(inner);
        cookie_value_readings(inner, head);
    }
}

/// Adds to `head` the readings of one cookie value servers make besides the value as sent
/// (see [`cookie_secrets`]).
fn cookie_value_readings(value: &str, head: &mut crate::event::HeadSecrets) {
    if value.contains('%') {
        let bytes: std::borrow::Cow<'_, [u8]> = percent_encoding::percent_decode_str(value).into();
        let decoded = crate::text::lossy(&bytes);
        if decoded != value {
            head.add(&decoded);
        }
        // Escapes of bytes that are not UTF-8 (`s%E9ssion`): also as Latin-1 reads them.
        if let Some(text) = crate::text::latin1_unless_utf8(&bytes) {
            head.add(&text);
        }
    }
    // Read as a form value (PHP's `$_COOKIE` runs `urldecode`): a `+` is a space. Only for a
    // value long enough to be found inside words: the spaced reading of a short one (`en+US`)
    // is matched as text, anywhere, and would cut into ordinary words (`token USed`).
    if value.len() >= crate::secret_anchor::MIN_INNER_SECRET && value.contains('+') {
        let spaced = value.replace('+', " ");
        head.add(&percent_encoding::percent_decode_str(&spaced).decode_utf8_lossy());
    }
}

/// Adds to `head` one `DPoP` header value (RFC 9449 §4.2) and its parts: a response may
/// quote a proof whole (a JWT-shaped word, which the scrub finds anyway) or only a part of
/// it, its payload or its signature, which are no JWT on their own and would otherwise
/// stay. Each part is one word of a text (Base64url), so each is kept by its digest alone.
pub(crate) fn dpop_secrets(value: &[u8], head: &mut crate::event::HeadSecrets) {
    let value = crate::text::lossy(value);
    let value = value.trim();
    head.add(value);
    let mut parts = value.split('.');
    if let (Some(header), Some(payload)) = (parts.next(), parts.next()) {
        head.add(header);
        head.add(payload);
        // The signing input (RFC 7515 §5.1), quoted by a server that says what it verified.
        head.add(&value[..header.len() + 1 + payload.len()]);
        for part in parts {
            head.add(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use tower::{service_fn, Layer, ServiceBuilder, ServiceExt};

    use super::*;
    use crate::layer::RequestBody;
    use crate::writer::{Auditor, MemoryWriter};
    use crate::AuditLayer;

    /// Every cookie's value, trimmed; a pair without `=` is no cookie.
    #[test]
    fn every_cookie_of_a_field_is_a_secret() {
        let mut head = crate::event::HeadSecrets::default();
        cookie_secrets(b"a=1;b= x!y ; novalue; c=", &mut head);
        let mut expected = crate::event::HeadSecrets::default();
        for value in ["1", "x!y"] {
            expected.add(value);
        }
        assert_eq!(head.digests(), expected.digests());
        assert_eq!(head.texts(), 1, "x!y is no one word: kept as text");
    }

    /// A value that is not UTF-8, as sent or once its escapes are decoded, is also held as
    /// Latin-1 reads it; a field that is UTF-8 throughout adds nothing more.
    #[test]
    fn a_cookie_that_is_not_utf8_is_also_a_secret_as_latin1_reads_it() {
        let mut head = crate::event::HeadSecrets::default();
        cookie_secrets(
            b"a=s\xe9ssion; b=\"c\xf4okie\"; c=x%E9y; d=plain",
            &mut head,
        );
        let mut expected = crate::event::HeadSecrets::default();
        for value in [
            "s\u{e9}ssion",
            "\"c\u{f4}okie\"",
            "c\u{f4}okie",
            "s\u{fffd}ssion",
            "\"c\u{fffd}okie\"",
            "c\u{fffd}okie",
            "x%E9y",
            "x\u{fffd}y",
            "x\u{e9}y",
            "plain",
        ] {
            expected.add(value);
        }
        assert_eq!(head.digests(), expected.digests());
        let mut head = crate::event::HeadSecrets::default();
        cookie_secrets(b"a=s\xc3\xa9ssion", &mut head);
        assert_eq!(head.digests().len(), 1);
    }

    fn auditor() -> (Auditor, MemoryWriter) {
        let memory = MemoryWriter::new();
        let auditor = Auditor::builder()
            .service_name("t")
            .writer(memory.clone())
            .build()
            .unwrap();
        (auditor, memory)
    }

    fn token_request(body: &'static str) -> Request<Full<Bytes>> {
        Request::post("/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    const ISSUED: &str = r#"{"access_token":"AT","token_type":"Bearer"}"#;

    async fn reads_body(
        req: Request<RequestBody<Full<Bytes>>>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let seen = req.into_body().collect().await.unwrap().to_bytes();
        assert!(!seen.is_empty(), "the handler sees the body");
        Ok(Response::new(Full::new(Bytes::from_static(
            ISSUED.as_bytes(),
        ))))
    }

    #[tokio::test]
    async fn reads_the_form_the_handler_read() {
        let (auditor, memory) = auditor();
        let svc = ServiceBuilder::new()
            .layer(AuditLayer::new(auditor.clone()))
            .service_fn(reads_body);
        let res = svc
            .oneshot(token_request(
                "grant_type=client_credentials&client_id=c&client_secret=s",
            ))
            .await
            .unwrap();
        assert_eq!(res.into_body().collect().await.unwrap().to_bytes(), ISSUED);
        auditor.shutdown().await;
        let e = &memory.json()[0];
        assert_eq!(e["kind"], "AccessTokenIssued");
        assert_eq!(e["client_auth"], "client_secret_post");
        assert_eq!(
            e["token"]["fingerprint"],
            crate::token::TokenFingerprint::of("AT").to_string()
        );
    }

    /// A frame in several chunks is read whole, or not at all; the handler gets it as sent.
    #[tokio::test]
    async fn a_body_in_chunks_is_read_whole_or_not_at_all() {
        use bytes::Buf;

        let (auditor, memory) = auditor();
        let layer = AuditLayer::new(auditor.clone());
        let sent = "grant_type=client_credentials&client_id=c&client_secret=s";
        let (first, second) = sent.split_at(20);
        fn post<B>(body: B) -> Request<B> {
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .unwrap()
        }
        async fn handler<B>(
            req: Request<RequestBody<B>>,
        ) -> Result<Response<Full<Bytes>>, Infallible>
        where
            B: http_body::Body,
            B::Error: std::fmt::Debug,
        {
            let seen = req.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                &seen[..],
                b"grant_type=client_credentials&client_id=c&client_secret=s"
            );
            Ok(Response::new(Full::new(Bytes::from_static(
                ISSUED.as_bytes(),
            ))))
        }
        let chained =
            Bytes::from_static(first.as_bytes()).chain(Bytes::from_static(second.as_bytes()));
        let res = layer
            .clone()
            .layer(service_fn(handler))
            .oneshot(post(Full::new(chained)))
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
        let opaque = crate::tee::FirstChunkOnly(
            Bytes::from_static(first.as_bytes()).chain(Bytes::from_static(second.as_bytes())),
        );
        let res = layer
            .layer(service_fn(handler))
            .oneshot(post(Full::new(opaque)))
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
        auditor.shutdown().await;
        let events = memory.json();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["grant_type"], "client_credentials");
        assert_eq!(events[0]["client_auth"], "client_secret_post");
        assert!(events[0]["oauth"].get("body_not_inspected").is_none());
        assert_eq!(events[1]["oauth"]["body_inspected"], false);
        assert_eq!(
            events[1]["oauth"]["body_not_inspected"][0],
            "request_unreadable"
        );
        assert!(
            events[1].get("grant_type").is_none(),
            "nothing read of an unread body"
        );
    }

    #[tokio::test]
    async fn an_unread_or_oversized_body_is_not_inspected() {
        let (auditor, memory) = auditor();
        let ignores_body = service_fn(|_req: Request<RequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(
                ISSUED.as_bytes(),
            ))))
        });
        let layer = AuditLayer::new(auditor.clone());
        let res = layer
            .clone()
            .layer(ignores_body)
            .oneshot(token_request("grant_type=password"))
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();

        let small = AuditLayer::builder(auditor.clone())
            // Explicit: with the response unread too there is no evidence to assume a role on.
            .endpoints(
                Endpoints::builder()
                    .token("/token")
                    .body_limit(8)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let res = small
            .layer(service_fn(reads_body))
            .oneshot(token_request("grant_type=password"))
            .await
            .unwrap();
        res.into_body().collect().await.unwrap();
        auditor.shutdown().await;
        let events = memory.json();
        for e in &events {
            assert_eq!(e["kind"], "AccessTokenIssued");
            assert_eq!(e["oauth"]["body_inspected"], false);
            assert!(e.get("grant_type").is_none());
            assert!(e["actor"].get("kind").is_none(), "unseen, not anonymous");
        }
        assert_eq!(
            events[0]["oauth"]["body_not_inspected"][0],
            "request_incomplete"
        );
        assert_eq!(
            events[1]["oauth"]["body_not_inspected"][0],
            "request_too_large"
        );
        assert_eq!(events.len(), 2);
    }

    #[tokio::test]
    async fn a_response_dropped_early_is_unknown_and_other_paths_are_resources() {
        let (auditor, memory) = auditor();
        let svc = ServiceBuilder::new()
            .layer(AuditLayer::new(auditor.clone()))
            .service_fn(reads_body);
        let res = svc
            .clone()
            .oneshot(token_request("grant_type=client_credentials"))
            .await
            .unwrap();
        drop(res);
        let mut api = token_request("x=1");
        *api.uri_mut() = "/api/token".parse().unwrap();
        let res = svc.oneshot(api).await.unwrap();
        res.into_body().collect().await.unwrap();
        auditor.shutdown().await;
        let events = memory.json();
        assert_eq!(events[0]["kind"], "AccessTokenIssued");
        assert_eq!(events[0]["outcome"], "unknown");
        assert_eq!(events[0]["grant_type"], "client_credentials");
        assert_eq!(events[1]["kind"], "ResourceAccessed");
        assert!(events[1].get("oauth").is_none());
    }

    #[cfg(feature = "fuzzing")]
    #[test]
    fn fuzz_entry_points_read_what_events_read() {
        let (repeated, fields) = fuzz::form(b"username=a&username=b&grant_type=password");
        assert_eq!(repeated, ["username"]);
        assert_eq!(fields[0].as_deref(), Some("password"));
        assert_eq!(fields[1], None);
        let error = fuzz::json_response(br#"{"error":"invalid_grant"}"#).unwrap();
        assert_eq!(error.0, "invalid_grant");
        let (kind, _, target) = fuzz::authorize_response(302, "https://app/cb?code=x");
        assert_eq!(kind, crate::event::EventKind::AuthorizationGranted);
        assert_eq!(target, "https://app/cb");
        let (verdict, code) = fuzz::login_response(302, Some("/login"), false, "/login");
        assert_eq!(
            (verdict, code.as_deref()),
            (Some(false), Some("redirected_to_login"))
        );
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let (head, ()) = Request::post("/token")
            .header("authorization", "Basic d2ViOnMzY3JldC1iYXNpYw==") // web:s3cret-basic
            .body(())
            .unwrap()
            .into_parts();
        let endpoints = Endpoints::default();
        let (request, tee) = EndpointRequest::capture(
            Endpoint::Token,
            (&head.headers, &head.uri),
            true,
            &endpoints,
            None,
            None,
        );
        let mut tee = tee.unwrap();
        tee.observe(b"client_secret=s3cret-form");
        assert!(!format!("{tee:?}").contains("s3cret"));
        tee.finish(true);
        let debug = format!("{request:?}");
        assert!(debug.contains("web"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
