//! The OpenID Connect CIBA backchannel authentication endpoint (CIBA Core §7):
//! `AuthorizationRequested` (the server answered an `auth_req_id`: the user is asked on
//! their own device) or `AuthorizationFailed`, with
//! `oauth.endpoint: "backchannel_authentication"` and the `auth_req_id`'s fingerprint,
//! which the token endpoint's CIBA requests (polls, ping-mode fetches) carry too.
//!
//! The hints that name the user (`login_hint_token`, `id_token_hint`, `login_hint`), the
//! `user_code`, the `binding_message` and the `client_notification_token` are not recorded:
//! the first two and the last are bearer secrets, the user code a secret of the user's, and
//! the hint and message free text of the client's, unverified.

use super::authorization::AuthorizeParams;
use super::client_auth;
use super::device_authorization::started;
use super::endpoints::Endpoint;
use super::exchange::Exchange;
use super::form::Form;
use crate::event::{AuditEvent, Outcome};
use crate::token::TokenFingerprint;

pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>, event: &mut AuditEvent) {
    // A signed authentication request (CIBA Core §7.1.1) carries its parameters in a
    // request object, read as at the pushed authorization endpoint: its scopes win over
    // the form's, and its client is a claim to compare with the one that authenticated.
    let params = form.map(AuthorizeParams::from_form).unwrap_or_default();
    let claimed = form.and_then(AuthorizeParams::claimed_client);
    let mut client = client_auth::identify_claimed(
        x.basic_client,
        form,
        x.client_certificate(),
        claimed.as_deref(),
    );
    client.client_id = client.client_id.or(params.client_id);
    let outcome = started(
        x,
        Endpoint::BackchannelAuthentication,
        "auth_req_id",
        client,
        params.scopes,
        event,
    );
    if outcome == Outcome::Success {
        Exchange::oauth(event).auth_req_id_fingerprint = x
            .json
            .as_ref()
            .and_then(|j| j.str("auth_req_id"))
            .map(TokenFingerprint::of);
    }
}
