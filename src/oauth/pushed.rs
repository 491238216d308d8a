//! The pushed authorization request endpoint (RFC 9126): `AuthorizationRequested` (the
//! server stored the request and answered a `request_uri`) or `AuthorizationFailed`, with
//! `oauth.pushed: true`; and the memory that links a `request_uri` to the authorization
//! request that later presents it.

use super::authorization::AuthorizeParams;
use super::client_auth;
use super::exchange::Exchange;
use super::form::Form;
use super::pushed_requests::PushedParams;
use crate::event::{AuditEvent, EventKind, Outcome};
use crate::resource::actor;
use crate::token::TokenFingerprint;

pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>, event: &mut AuditEvent) {
    let mut params = form.map(AuthorizeParams::from_form).unwrap_or_default();
    // RFC 9126 §2.1: `request_uri` must not be pushed; whatever was sent is not a link.
    params.request_uri = None;
    // A request object naming another client than the one that authenticated names two.
    let claimed = form.and_then(AuthorizeParams::claimed_client);
    let client = client_auth::identify_claimed(
        x.basic_client,
        form,
        x.client_certificate(),
        claimed.as_deref(),
    );
    let client_id = client.client_id.clone().or(params.client_id.clone());
    let request_uri = x
        .json
        .as_ref()
        .and_then(|j| j.str("request_uri"))
        .map(TokenFingerprint::of);
    let outcome = x.outcome();
    let kind = match outcome {
        Outcome::Failure => EventKind::AuthorizationFailed,
        _ => EventKind::AuthorizationRequested,
    };
    event.set_kind(kind, outcome);
    event.client_auth = client.method;
    event.actor = actor(None, client_id.as_deref()).into();
    client_auth::record_conflict(event, client.other_ids());
    event.scopes.requested = params.scopes.clone();
    event.redirect_uri = params.redirect_uri.clone();
    if outcome == Outcome::Failure {
        event.error = x.error();
    }
    if let (Outcome::Success, Some(fingerprint)) = (outcome, request_uri) {
        x.endpoints.config().pushed.remember(
            fingerprint,
            PushedParams {
                client_id,
                redirect_uri: params.redirect_uri.clone(),
                response_type: params.response_type.clone(),
                scopes: params.scopes.clone(),
                pkce_method: params.pkce_method.clone(),
            },
        );
    }
    let oauth = Exchange::oauth(event);
    oauth.pushed = Some(true);
    oauth.request_uri_fingerprint = request_uri;
    oauth.response_type = params.response_type;
    oauth.pkce_method = params.pkce_method;
}
