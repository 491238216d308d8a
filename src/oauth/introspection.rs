//! The introspection endpoint (RFC 7662): `TokenIntrospected` / `TokenIntrospectionFailed`.

use super::client_auth;
use super::form::{ident, scope_list, Form};
use super::request::Exchange;
use crate::event::{AuditEvent, EventKind, Outcome, Timestamp, TokenDetails};
use crate::resource::actor;
use crate::token::TokenFingerprint;

pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>) -> AuditEvent {
    let outcome = x.outcome();
    let kind = match outcome {
        Outcome::Failure => EventKind::TokenIntrospectionFailed,
        _ => EventKind::TokenIntrospected,
    };
    let mut event = x.base(kind, outcome);
    // The caller (a resource server) is the actor; the token's owner goes in `token`.
    let client = client_auth::identify(x.basic_client, form);
    event.client_auth = client.method;
    event.actor = actor(None, client.client_id.as_deref());

    let raw = form.and_then(|f| f.get("token"));
    let mut token = raw.map(|t| TokenDetails::from_fingerprint(TokenFingerprint::of(t)));
    if let Some(token) = &mut token {
        token.type_hint = form.and_then(|f| f.get("token_type_hint")).map(ident);
        if let Some(raw) = raw {
            token.format = Some(x.inspector.inspect(raw).format);
        }
    }
    match (outcome, &x.json, &mut token) {
        (Outcome::Success, Some(json), Some(token)) => {
            let active = json.bool("active");
            token.active = active;
            if active == Some(true) {
                token.subject = json.str("sub").or_else(|| json.str("username")).map(ident);
                token.client_id = json.str("client_id").map(ident);
                token.jti = json.str("jti").map(ident);
                token.issuer = json.str("iss").map(ident);
                token.audience = json.strings("aud");
                token.issued_at = json.int("iat").and_then(Timestamp::from_unix);
                token.expires_at = json.int("exp").and_then(Timestamp::from_unix);
                if token.type_hint.is_none() {
                    token.type_hint = json.str("token_type").map(ident);
                }
                event.scopes.granted = json.str("scope").map(scope_list);
            }
        }
        (Outcome::Failure, _, _) => event.error = x.error(),
        _ => {}
    }
    event.token = token;
    event
}
