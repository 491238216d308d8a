//! The device authorization endpoint (RFC 8628 §3.1-3.2): `AuthorizationRequested` (the
//! server answered a device code and a user code: the user decides later, on another
//! device) or `AuthorizationFailed`, with `oauth.endpoint: "device_authorization"` and the
//! fingerprint of the device code, which the token endpoint's polls carry too. Also the
//! part of that record the CIBA backchannel authentication endpoint shares
//! ([`super::backchannel`]).

use super::client_auth::{self, Client};
use super::endpoints::Endpoint;
use super::exchange::Exchange;
use super::form::{scope_list, Form};
use crate::event::{AuditEvent, EventKind, Outcome};
use crate::resource::actor;
use crate::token::TokenFingerprint;

pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>, event: &mut AuditEvent) {
    let client = client_auth::identify(x.basic_client, form, x.client_certificate());
    let scopes = form.and_then(|f| f.get("scope")).map(scope_list);
    let outcome = started(
        x,
        Endpoint::DeviceAuthorization,
        "device_code",
        client,
        scopes,
        event,
    );
    if outcome == Outcome::Success {
        // The user code is not recorded, not even as a fingerprint: a few characters
        // (RFC 8628 §6.1), so a fingerprint would give it back to anyone who tried them all.
        Exchange::oauth(event).device_code_fingerprint = device_code(x);
    }
}

/// The device code a successful answer carries, by fingerprint.
fn device_code(x: &Exchange<'_>) -> Option<TokenFingerprint> {
    x.json
        .as_ref()
        .and_then(|j| j.str("device_code"))
        .map(TokenFingerprint::of)
}

/// Records a request that starts a decoupled flow (a device authorization, a CIBA
/// backchannel authentication): the server answers a reference to the pending request
/// (`issued`: `device_code`, `auth_req_id`), and the user decides later, elsewhere. The
/// client is authenticated as at the token endpoint; `scopes` are those requested. Gives
/// back the outcome: an answer with an `error` and without `issued` is a refusal whatever
/// its status (some servers answer errors `200`, as at the token endpoint); any other `2xx`
/// without `issued` proves nothing was started, nor refused: `unknown`.
pub(crate) fn started(
    x: &Exchange<'_>,
    endpoint: Endpoint,
    issued: &str,
    client: Client,
    scopes: Option<Vec<String>>,
    event: &mut AuditEvent,
) -> Outcome {
    let answered = x.json.as_ref().is_some_and(|j| j.str(issued).is_some());
    let outcome = match x.outcome() {
        Outcome::Success
            if x.json.as_ref().is_some_and(|j| j.str("error").is_some()) && !answered =>
        {
            Outcome::Failure
        }
        // A sign-on page a gateway answered in the server's place, an empty `200`, an
        // answer too large or compressed to read: no reference to a pending request, so no
        // sign that the server started one.
        Outcome::Success if !answered => Outcome::Unknown,
        outcome => outcome,
    };
    let kind = match outcome {
        Outcome::Failure => EventKind::AuthorizationFailed,
        _ => EventKind::AuthorizationRequested,
    };
    event.set_kind(kind, outcome);
    event.client_auth = client.method;
    event.actor = actor(None, client.client_id.as_deref()).into();
    client_auth::record_conflict(event, client.other_ids());
    event.scopes.requested = scopes;
    if outcome == Outcome::Failure {
        event.error = x.error();
    }
    Exchange::oauth(event).endpoint = Some(endpoint.as_str().to_owned());
    outcome
}
