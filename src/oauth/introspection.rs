//! The introspection endpoint (RFC 7662): `TokenIntrospected` / `TokenIntrospectionFailed`.

use super::client_auth;
use super::exchange::Exchange;
use super::form::{ident, Form};
use crate::event::{AuditEvent, EventKind, Outcome, Shared, Timestamp, TokenDetails};
use crate::resource::actor;
use crate::token::TokenFingerprint;

pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>, event: &mut AuditEvent) {
    let outcome = x.outcome();
    let kind = match outcome {
        Outcome::Failure => EventKind::TokenIntrospectionFailed,
        _ => EventKind::TokenIntrospected,
    };
    event.set_kind(kind, outcome);
    // The caller (a resource server) is the actor; the token's owner goes in `token`.
    let client = client_auth::identify(x.basic_client, form, x.client_certificate());
    event.client_auth = client.method;
    event.actor = actor(None, client.client_id.as_deref()).into();
    client_auth::record_conflict(event, client.other_ids());

    let raw = form.and_then(|f| f.get("token"));
    let mut token = raw.map(|t| TokenDetails::from_fingerprint(TokenFingerprint::of(t)));
    if let Some(token) = &mut token {
        token.type_hint = form.and_then(|f| f.get("token_type_hint")).map(ident);
        if let Some(raw) = raw {
            // What the layer's own inspector makes of the token, beside what its issuer
            // answers: a junk string is told apart from a genuine token.
            let inspected = x.inspector.inspect(raw);
            token.format = Some(inspected.format);
            token.verdict = Some(inspected.verdict);
        }
    }
    match (outcome, &x.json, &mut token) {
        (Outcome::Success, Some(json), Some(token)) => {
            let active = json.bool("active");
            token.active = active;
            if active == Some(true) {
                let claims = json.claims();
                token.subject = claims.subject;
                token.client_id = claims.client_id;
                token.jti = claims.jti;
                token.issuer = claims.issuer;
                token.audience = claims.audience;
                token.issued_at = claims.issued_at.and_then(Timestamp::from_unix);
                token.expires_at = claims.expires_at.and_then(Timestamp::from_unix);
                token.truncated = claims.truncated;
                if token.type_hint.is_none() {
                    token.type_hint = json.str("token_type").map(ident);
                }
                if json.str("scope").is_some() {
                    event.scopes.granted = Some(claims.scopes.into());
                }
            }
        }
        (Outcome::Failure, _, _) => event.error = x.error(),
        _ => {}
    }
    event.token = token.map(Shared::from);
}
