//! The OpenID Connect end-session endpoint (RP-Initiated Logout 1.0): `LogoutSucceeded`,
//! `LogoutFailed`.
//!
//! The `id_token_hint` is an ID token: it is recorded as `token` by fingerprint only, with
//! what it claims (`sub`, and `azp` or its one audience as the client) under
//! `token.unverified`, since the layer does not verify it (its audience is the client, not
//! an API). `post_logout_redirect_uri` is recorded as `redirect_uri`, without its query.

use super::exchange::Exchange;
use super::form::{ident, uri_without_query, Form};
use crate::event::{AuditEvent, EventKind, Outcome, TokenDetails, UnverifiedClaims};
use crate::resource::actor;
use crate::token::{TokenFingerprint, TokenFormat};

/// The parameters of a logout request that events record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogoutParams {
    pub(crate) client_id: Option<String>,
    pub(crate) post_logout_redirect_uri: Option<String>,
    pub(crate) hint: Option<HintPeek>,
}

/// What is kept of an `id_token_hint`: its fingerprint and what it claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HintPeek {
    fingerprint: TokenFingerprint,
    jwt: bool,
    subject: Option<String>,
    client_id: Option<String>,
}

impl HintPeek {
    fn of(raw: &str) -> Self {
        let claims = super::unverified::claims_of(raw);
        let text = |key: &str| {
            claims
                .as_ref()
                .and_then(|c| c.get(key))
                .and_then(|v| v.as_str())
                .map(ident)
        };
        let audience = claims.as_ref().and_then(|c| match c.get("aud") {
            Some(serde_json::Value::String(aud)) => Some(ident(aud)),
            Some(serde_json::Value::Array(list)) if list.len() == 1 => list[0].as_str().map(ident),
            _ => None,
        });
        HintPeek {
            fingerprint: TokenFingerprint::of(raw),
            jwt: claims.is_some(),
            subject: text("sub"),
            client_id: text("azp").or(audience),
        }
    }
}

impl LogoutParams {
    pub(crate) fn from_form(form: &Form<'_>) -> Self {
        LogoutParams {
            client_id: form.get("client_id").map(ident),
            post_logout_redirect_uri: form.get("post_logout_redirect_uri").map(uri_without_query),
            hint: form.get("id_token_hint").map(HintPeek::of),
        }
    }

    /// Fills what `self` (the query) lacks from `other` (the form body).
    fn or(self, other: LogoutParams) -> Self {
        LogoutParams {
            client_id: self.client_id.or(other.client_id),
            post_logout_redirect_uri: self
                .post_logout_redirect_uri
                .or(other.post_logout_redirect_uri),
            hint: self.hint.or(other.hint),
        }
    }
}

/// The kind and outcome of a logout response: a redirect without `error` (to the
/// `post_logout_redirect_uri` or the server's own page) or a `204`/JSON answer succeeded; a
/// page (a confirmation prompt, a form that posts the logout on) did not prove it
/// (`outcome: unknown`); a redirect with `error`, or a 4xx/5xx, failed.
fn judge(x: &Exchange<'_>) -> (EventKind, Outcome) {
    let Some(status) = x.status() else {
        return (EventKind::LogoutSucceeded, Outcome::Unknown);
    };
    if status.is_redirection() {
        return match x.location() {
            Some(l) if l.error.is_some() => (EventKind::LogoutFailed, Outcome::Failure),
            _ => (EventKind::LogoutSucceeded, Outcome::Success),
        };
    }
    if status.is_success() {
        let json = x.response.and_then(|r| r.head).is_some_and(|h| h.json);
        return if status == http::StatusCode::NO_CONTENT || json {
            (EventKind::LogoutSucceeded, Outcome::Success)
        } else {
            (EventKind::LogoutSucceeded, Outcome::Unknown)
        };
    }
    (EventKind::LogoutFailed, Outcome::Failure)
}

pub(crate) fn classify(
    x: &Exchange<'_>,
    form: Option<&Form<'_>>,
    query: Option<&LogoutParams>,
    event: &mut AuditEvent,
) {
    let params = query
        .cloned()
        .unwrap_or_default()
        .or(form.map(LogoutParams::from_form).unwrap_or_default());
    let (kind, outcome) = judge(x);
    event.set_kind(kind, outcome);
    event.actor = actor(None, params.client_id.as_deref()).into();
    // A confirmation posted on (oidc-provider's `/session/end/confirm`) names no URI: the
    // redirect that ends the logout says where it went.
    event.redirect_uri = params.post_logout_redirect_uri.or_else(|| {
        (outcome == Outcome::Success && x.status().is_some_and(|s| s.is_redirection()))
            .then(|| x.location().map(|l| l.target.clone()))
            .flatten()
    });
    if let Some(hint) = params.hint {
        let mut token = TokenDetails::from_fingerprint(hint.fingerprint);
        token.format = Some(if hint.jwt {
            TokenFormat::Jwt
        } else {
            TokenFormat::Opaque
        });
        token.type_hint = Some("id_token".to_owned());
        let unverified = UnverifiedClaims {
            client_id: hint.client_id,
            delegation: Vec::new(),
            scopes: Vec::new(),
            subject: hint.subject,
        };
        token.unverified = (!unverified.is_empty()).then_some(Box::new(unverified));
        event.token = Some(token.into());
    }
    if outcome == Outcome::Failure {
        event.error = match x.location().and_then(|l| l.error.as_ref()) {
            Some(error) => Some(crate::event::ErrorInfo {
                code: error.scrubbed_code(x.secrets(), super::response::MAX_CODE),
                description: x
                    .location()
                    .and_then(|l| l.error_description.as_ref())
                    .map(|d| d.scrubbed(x.secrets(), super::response::MAX_DESCRIPTION)),
            }),
            None => x.error(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_is_kept_as_a_fingerprint_and_its_claims() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let hint = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"sub":"alice","aud":"app","iss":"https://as"}"#)
        );
        let query = format!(
            "id_token_hint={hint}&post_logout_redirect_uri=https%3A%2F%2Fapp%2Fbye%3Fx%3D1&state=S3CRET-STATE"
        );
        let params = LogoutParams::from_form(&Form::parse(query.as_bytes()));
        assert_eq!(
            params.post_logout_redirect_uri.as_deref(),
            Some("https://app/bye")
        );
        let peek = params.hint.as_ref().unwrap();
        assert_eq!(peek.fingerprint, TokenFingerprint::of(&hint));
        assert_eq!(peek.subject.as_deref(), Some("alice"));
        assert_eq!(peek.client_id.as_deref(), Some("app"));
        let debug = format!("{params:?}");
        assert!(
            !debug.contains(&hint) && !debug.contains("S3CRET"),
            "{debug}"
        );
        assert!(!HintPeek::of("not-a-jwt").jwt);
    }
}
