//! The revocation endpoint (RFC 7009): `TokenRevoked` / `TokenRevocationFailed`.

use super::client_auth;
use super::exchange::Exchange;
use super::form::{ident, Form};
use crate::event::{scrub, AuditEvent, EventKind, Outcome, TokenDetails};
use crate::resource::actor;

pub(crate) fn classify(
    x: &Exchange<'_>,
    form: Option<&Form<'_>>,
    reason: Option<&str>,
    event: &mut AuditEvent,
) {
    let outcome = x.outcome();
    let kind = match outcome {
        Outcome::Failure => EventKind::TokenRevocationFailed,
        _ => EventKind::TokenRevoked,
    };
    event.set_kind(kind, outcome);
    let client = client_auth::identify(x.basic_client, form, x.client_certificate());
    event.client_auth = client.method;
    event.actor = actor(None, client.client_id.as_deref()).into();
    client_auth::record_conflict(event, client.other_ids());
    if let Some(raw) = form.and_then(|f| f.get("token")) {
        let token = x.inspector.inspect(raw);
        let mut details = TokenDetails::from_fingerprint(token.fingerprint);
        details.format = Some(token.format);
        // Junk revoked (RFC 7009 has the server answer `200` whatever the string) is told
        // apart from a genuine token.
        details.verdict = Some(token.verdict);
        details.jti = token.claims.jti.clone();
        details.type_hint = form.and_then(|f| f.get("token_type_hint")).map(ident);
        event.token = Some(details.into());
    }
    // The header wins over the form extension parameter: the application set it. Either
    // may quote the token revoked ("leaked: <token>"): scrubbed of the request's secrets.
    let reason = reason
        .or_else(|| form.and_then(|f| f.get("reason")))
        .map(|r| scrub(r, x.secrets(), 512));
    if let Some(reason) = reason {
        Exchange::oauth(event).reason = Some(reason);
    }
    if outcome == Outcome::Failure {
        event.error = x.error();
    }
}
