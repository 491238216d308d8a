//! Whether traffic on a default endpoint path looks like that endpoint's protocol.
//!
//! `/token` on a plain API is not a token endpoint because of its name: with the default
//! [`Endpoints`](super::Endpoints), a role is only believed when the request or the response
//! speaks the protocol. Configured roles are always believed.

use super::authorization::AuthorizeParams;
use super::endpoints::Endpoint;
use super::form::Form;
use super::response::{JsonBody, Location};

/// Error codes a token, revocation or introspection endpoint answers with (RFC 6749 §5.2,
/// RFC 8628 §3.5, RFC 8693 §2.2.2, RFC 7009 §2.2.1, RFC 8707 §2, RFC 9449 §5, RFC 6750
/// §3.1). A plain API's `{"error": "not found"}` is not one of them.
const OAUTH_ERRORS: [&str; 16] = [
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "invalid_target",
    "unsupported_token_type",
    "invalid_dpop_proof",
    "use_dpop_nonce",
    "invalid_token",
    "insufficient_scope",
];

/// Error codes only a CIBA backchannel authentication endpoint answers with (CIBA Core
/// §13).
const CIBA_ERRORS: [&str; 5] = [
    "expired_login_hint_token",
    "unknown_user_id",
    "missing_user_code",
    "invalid_user_code",
    "invalid_binding_message",
];

/// Whether an exchange on an assumed `endpoint` speaks its protocol: the request (a `POST`
/// form with the endpoint's required parameter, or an authorization query naming a
/// `response_type` and `client_id`) or the response (a JSON token response, an
/// introspection answer, an OAuth error, an authorization redirect).
pub(crate) fn looks_like(
    endpoint: Endpoint,
    post: bool,
    form: Option<&Form<'_>>,
    query: Option<&AuthorizeParams>,
    json: Option<&JsonBody<'_>>,
    location: Option<&Location>,
) -> bool {
    let form_has = |name: &str| post && form.is_some_and(|f| f.first(name).is_some());
    let oauth_error = json
        .and_then(|j| j.str("error"))
        .is_some_and(|e| OAUTH_ERRORS.contains(&e));
    match endpoint {
        Endpoint::Token => {
            form_has("grant_type") || oauth_error || json.is_some_and(|j| j.has("access_token"))
        }
        Endpoint::Revocation => form_has("token") || oauth_error,
        Endpoint::Introspection => {
            form_has("token") || oauth_error || json.is_some_and(|j| j.has("active"))
        }
        Endpoint::Authorization => {
            let asks = |p: &AuthorizeParams| p.response_type.is_some() && p.client_id.is_some();
            query.is_some_and(asks)
                || form.is_some_and(|f| asks(&AuthorizeParams::from_form(f)))
                || location.is_some_and(|l| {
                    l.code || l.error.is_some() || l.access_token.is_some() || l.id_token.is_some()
                })
        }
        Endpoint::PushedAuthorization => {
            let asks = |p: &AuthorizeParams| p.response_type.is_some() && p.client_id.is_some();
            form.is_some_and(|f| post && asks(&AuthorizeParams::from_form(f)))
                || oauth_error
                || json.is_some_and(|j| j.has("request_uri"))
        }
        // A device code or an `auth_req_id` answered, or a refusal: these endpoints exist
        // only by configuration or discovery, and a discovered one may be another host's.
        Endpoint::DeviceAuthorization => {
            oauth_error || json.is_some_and(|j| j.has("device_code") && j.has("user_code"))
        }
        Endpoint::BackchannelAuthentication => {
            oauth_error
                || json.is_some_and(|j| {
                    j.has("auth_req_id") || j.str("error").is_some_and(|e| CIBA_ERRORS.contains(&e))
                })
        }
        Endpoint::EndSession => {
            let names = ["id_token_hint", "post_logout_redirect_uri", "client_id"];
            form.is_some_and(|f| names.iter().any(|n| f.first(n).is_some())) || location.is_some()
        }
        // Login routes exist only by configuration; UserInfo is a protected route.
        Endpoint::Login | Endpoint::UserInfo => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_evidence() {
        let grant = Form::parse(b"grant_type=client_credentials");
        let plain = Form::parse(b"name=x");
        let issued = JsonBody::parse(br#"{"access_token":"a","token_type":"Bearer"}"#);
        let refused = JsonBody::parse(br#"{"error":"invalid_grant"}"#);
        let api_error = JsonBody::parse(br#"{"error":"not found"}"#);
        let t = |post, form, json: &Option<JsonBody<'_>>| {
            looks_like(Endpoint::Token, post, form, None, json.as_ref(), None)
        };
        assert!(t(true, Some(&grant), &None));
        assert!(!t(false, Some(&grant), &None), "token requests are POSTs");
        assert!(!t(true, Some(&plain), &None));
        assert!(!t(true, None, &api_error));
        assert!(t(true, None, &issued));
        assert!(t(true, None, &refused));
        assert!(!t(false, None, &None));

        let active = JsonBody::parse(br#"{"active":false}"#);
        assert!(looks_like(
            Endpoint::Introspection,
            true,
            None,
            None,
            active.as_ref(),
            None
        ));
        assert!(!looks_like(
            Endpoint::Revocation,
            true,
            Some(&plain),
            None,
            None,
            None
        ));

        let q = AuthorizeParams::from_form(&Form::parse(b"response_type=code&client_id=web"));
        assert!(looks_like(
            Endpoint::Authorization,
            false,
            None,
            Some(&q),
            None,
            None
        ));
        let q = AuthorizeParams::from_form(&Form::parse(b"page=2"));
        assert!(!looks_like(
            Endpoint::Authorization,
            false,
            None,
            Some(&q),
            None,
            None
        ));
    }
}
