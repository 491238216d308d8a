//! The token endpoint (RFC 6749 §4-5, RFC 8628, RFC 8693, RFC 7523):
//! `AccessTokenIssued` / `TokenRequestFailed`.

use super::client_auth::{self, JwtPeek};
use super::device::{PollDecision, Waiting, ISSUED};
use super::exchange::Exchange;
use super::form::{ident, scope_list, uri_without_query, Form};
use crate::dpop::ProofCheck;
use crate::event::{
    ActorKind, AuditEvent, BindingMethod, ClientAuth, EventKind, Outcome, Shared, Timestamp,
    TokenBinding, TokenRef,
};
use crate::mtls::PresentedCertificate;
use crate::resource::{actor, also_certificate, certificate_binding, details, key_binding};
use crate::token::{InspectedToken, TokenFingerprint, TokenFormat};

/// RFC 8628 §3.4.
pub(crate) const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// OpenID Connect CIBA Core §10.1: a poll (or ping-mode fetch) for a backchannel
/// authentication request's tokens.
pub(crate) const CIBA: &str = "urn:openid:params:grant-type:ciba";
/// RFC 8693 §2.1.
pub(crate) const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 7523 §2.1.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Marks in `oauth.pkce_method` that a token request sent a `code_verifier` (the method was
/// chosen at the authorization endpoint; the verifier itself is never recorded).
pub(crate) const VERIFIER_SENT: &str = "verifier_sent";

/// Fills in `event`; `false` when the exchange is not recorded (a repeated device-code or CIBA
/// poll).
pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>, event: &mut AuditEvent) -> bool {
    let outcome = match x.outcome() {
        // Some servers (GitHub's device flow) answer an error with `200`: an `error` and no
        // `access_token` is a refusal whatever the status.
        Outcome::Success
            if x.json
                .as_ref()
                .is_some_and(|j| j.str("error").is_some() && j.str("access_token").is_none()) =>
        {
            Outcome::Failure
        }
        outcome => outcome,
    };
    let kind = match outcome {
        Outcome::Failure => EventKind::TokenRequestFailed,
        _ => EventKind::AccessTokenIssued,
    };
    event.set_kind(kind, outcome);
    let client = client_auth::identify(x.basic_client, form, x.client_certificate());
    event.client_auth = client.method;
    let grant_type = form.and_then(|f| f.get("grant_type"));
    event.grant_type = grant_type.map(ident);
    event.scopes.requested = form.and_then(|f| f.get("scope")).map(scope_list);

    // What the request says about the user (the grant), and the device code.
    let mut subject = None;
    let mut act = None;
    // What a decoupled flow's poll waits on (its device code or `auth_req_id`).
    let mut waiting = None;
    if let Some(form) = form {
        // `oauth` is boxed only when something goes in it: most token requests have none.
        let resource: Vec<String> = form.all("resource").map(uri_without_query).collect();
        // An audience is a logical name or, like a resource, a URI (RFC 8693 §2.1), whose
        // query or user information may hold a key: a URI is recorded as a resource is.
        let audience: Vec<String> = form
            .all("audience")
            .map(|a| {
                if a.contains("://") {
                    uri_without_query(a)
                } else {
                    ident(a)
                }
            })
            .collect();
        if !resource.is_empty() || !audience.is_empty() {
            let oauth = Exchange::oauth(event);
            oauth.resource = resource;
            oauth.audience = audience;
        }
        if form.get("code_verifier").is_some() {
            Exchange::oauth(event).pkce_method = Some(VERIFIER_SENT.to_owned());
        }
        // A grant type sent more than once is not recorded (the server may read either
        // value); when one of them is a refresh grant, the refresh token it presents is
        // recorded all the same, so that a stolen copy sent so is still seen
        // (`refresh_token_reuse`).
        let refresh = grant_type == Some("refresh_token")
            || (grant_type.is_none() && form.all("grant_type").any(|g| g == "refresh_token"));
        match grant_type {
            Some("password") => subject = form.get("username").map(ident),
            _ if refresh => {
                if let Some(token) = presented_refresh_token(form) {
                    Exchange::oauth(event).presented_refresh_token =
                        Some(TokenRef::new(TokenFingerprint::of(token)));
                }
            }
            Some(DEVICE_CODE) => {
                if let Some(device_code) = form.get("device_code").map(TokenFingerprint::of) {
                    Exchange::oauth(event).device_code_fingerprint = Some(device_code);
                    waiting = Some(Waiting::DeviceCode(device_code));
                }
            }
            Some(CIBA) => {
                // The fingerprint the backchannel authentication request's event carries:
                // the two join on it.
                if let Some(auth_req_id) = form.get("auth_req_id").map(TokenFingerprint::of) {
                    Exchange::oauth(event).auth_req_id_fingerprint = Some(auth_req_id);
                    waiting = Some(Waiting::AuthRequest(auth_req_id));
                }
            }
            Some(TOKEN_EXCHANGE) => {
                let oauth = Exchange::oauth(event);
                oauth.subject_token_type = form.get("subject_token_type").map(ident);
                oauth.actor_token_type = form.get("actor_token_type").map(ident);
                oauth.requested_token_type = form.get("requested_token_type").map(ident);
                oauth.subject_token = form.get("subject_token").map(fingerprint);
                oauth.actor_token = form.get("actor_token").map(fingerprint);
                subject = jwt_subject(x, form.get("subject_token"));
                act = jwt_subject(x, form.get("actor_token"));
            }
            Some(JWT_BEARER) => {
                subject = form
                    .get("assertion")
                    .and_then(JwtPeek::of)
                    .and_then(|p| p.subject.as_deref().map(ident));
            }
            _ => {}
        }
    }

    let mut conflicting = client.other_ids();
    let client_auth::Client {
        mut client_id,
        method: client_method,
        others,
    } = client;
    let mut delegation = Vec::new();
    if outcome == Outcome::Success {
        if let Some(json) = &x.json {
            if let Some(issued) = json.str("issued_token_type") {
                // RFC 8693 §2.2.1: what the `access_token` field holds.
                Exchange::oauth(event).issued_token_type = Some(ident(issued));
            }
            if let Some(raw) = json.str("access_token") {
                let issued = x.inspector.inspect(raw);
                let claims = &issued.claims;
                let mut token = details(&issued);
                if let Some(secs) = json.int("expires_in") {
                    token.expires_at =
                        Timestamp::from_unix(x.request.time.unix().saturating_add(secs));
                }
                token.type_hint = json
                    .str("issued_token_type")
                    .or_else(|| json.str("token_type"))
                    .map(ident);
                token.binding =
                    issued_binding(x.proof, x.certificate, &issued, token.type_hint.as_deref())
                        .map(Box::new);
                event.token = Some(token.into());
                if issued.format == TokenFormat::Jwt {
                    subject = claims.subject.clone().or(subject);
                    if let Some(issued_to) = &claims.client_id {
                        // A Basic id with a `+` sent as it is, which the server read as a
                        // `+` (RFC 6749 §2.3.1 would have it a space): the request's client
                        // is the token's, and a form naming it so names the same client.
                        let plus_read = client_method == Some(ClientAuth::ClientSecretBasic)
                            && x.basic_client.and_then(|b| b.plus_kept.as_deref())
                                == Some(issued_to.as_str());
                        // Another name of the request, as sent, else in another case (a
                        // server reading ids in any case believed it), unless the actor's own
                        // name is the issued one in another case.
                        let actor_issued = client_id
                            .as_ref()
                            .is_some_and(|named| named.eq_ignore_ascii_case(issued_to));
                        let named_other =
                            conflicting.iter().position(|c| c == issued_to).or_else(|| {
                                let any_case = |c: &String| c.eq_ignore_ascii_case(issued_to);
                                conflicting
                                    .iter()
                                    .position(any_case)
                                    .filter(|_| !actor_issued)
                            });
                        if client_id.is_none() || plus_read {
                            conflicting.retain(|c| c != issued_to);
                            client_id = Some(issued_to.clone());
                        } else if let Some(at) =
                            named_other.filter(|_| client_id.as_ref() != Some(issued_to))
                        {
                            // The request named several clients; the server believed another
                            // one: the one it was taken for first is a conflicting one now.
                            // As the request spelt it, when the server's case differs.
                            let believed_id = conflicting.remove(at);
                            let believed = others.iter().find(|o| o.id == believed_id);
                            event.client_auth =
                                believed.and_then(|o| o.method).or(event.client_auth);
                            if let Some(named) = client_id.replace(believed_id) {
                                conflicting.insert(0, named);
                            }
                        } else if !(actor_issued
                            || grant_type == Some(TOKEN_EXCHANGE)
                                && event.oauth.as_ref().is_some_and(|o| {
                                    o.audience.contains(issued_to) || o.resource.contains(issued_to)
                                }))
                        {
                            // The server issued to a client the request (as read here) did
                            // not name in any case, however many it named (a name among the
                            // others was taken above): its word is the actor, the request's
                            // names recorded, the one taken for the actor first.
                            if let Some(named) = client_id.replace(issued_to.clone()) {
                                conflicting.insert(0, named);
                            }
                        }
                        // Otherwise (the actor's own name in another case, a token
                        // exchange's audience) the requester stays the actor.
                    }
                    // The issued token's `act` is the server's word; the actor token's `sub`
                    // only the client's.
                    act = claims.actor.clone().or(act);
                    delegation = claims.delegation.clone();
                }
                if event.scopes.requested.is_none()
                    && json.str("scope").is_none()
                    && !claims.scopes.is_empty()
                {
                    event.scopes.granted = Some(claims.scopes.clone().into());
                }
            }
            if subject.is_none() {
                // OpenID Connect: the ID token names the user of an opaque access token.
                subject = json
                    .str("id_token")
                    .and_then(JwtPeek::of)
                    .and_then(|p| p.subject.as_deref().map(ident));
            }
            event.refresh_token = json
                .str("refresh_token")
                .map(|t| {
                    let mut token = TokenRef::new(TokenFingerprint::of(t));
                    // RFC 9449 §5: a public client's refresh token is bound to its DPoP key (a
                    // confidential client's, to its authentication).
                    if event.client_auth == Some(ClientAuth::None) {
                        token.binding = event
                            .token
                            .as_ref()
                            .and_then(|t| t.binding.clone())
                            .map(|b| TokenBinding { proof: None, ..*b });
                    }
                    token
                })
                .map(Box::new);
            // RFC 6749 §5.1: an omitted `scope` means the requested scope was granted.
            if let Some(scope) = json.str("scope") {
                event.scopes.granted = Some(scope_list(scope).into());
            } else if event.scopes.granted.is_none() {
                event.scopes.granted = event.scopes.requested.clone().map(Shared::from);
            }
        }
    } else if outcome == Outcome::Failure {
        event.error = x.error();
    }
    if let Some(proof) = x.proof {
        // The proof the request sent, whether or not a token came of it.
        Exchange::oauth(event).dpop = Some(TokenBinding {
            downgrade: false,
            jkt: proof.jkt.clone(),
            method: BindingMethod::Dpop,
            proof: Some(proof.outcome),
            proof_jkt: None,
            proof_x5t_s256: None,
            x5t_s256: None,
        });
    }

    event.actor = actor(subject.as_deref(), client_id.as_deref()).into();
    event.actor.delegation = delegation;
    client_auth::record_conflict(event, conflicting);
    if grant_type == Some("client_credentials") {
        event.actor.kind = Some(ActorKind::Client);
    }
    if let Some(act) = act {
        Exchange::oauth(event).act = Some(act);
    }

    let names_two_clients = event
        .oauth
        .as_ref()
        .is_some_and(|oauth| oauth.conflicting_client_id.is_some());
    if let (Some(waiting), Some(tracker)) = (waiting, &x.endpoints.config().device) {
        // A poll that names two clients, or that sent a parameter twice (recorded in
        // `oauth.repeated_parameters`: `client_secret`, `client_id`, in the body or the body
        // and the query), is a warning of its own, never condensed.
        let repeats_a_parameter = form.is_some_and(|f| !f.repeated().is_empty());
        if outcome != Outcome::Unknown && !names_two_clients && !repeats_a_parameter {
            let result = match &event.error {
                Some(error) => error.code.as_str(),
                None => ISSUED,
            };
            let proof = x.proof.map(|p| p.outcome);
            match tracker.poll(
                waiting,
                event.actor.client_id.as_deref(),
                x.request.source.as_ref().and_then(|source| source.ip),
                result,
                x.status(),
                proof,
            ) {
                PollDecision::Suppress => return false,
                PollDecision::Record { repeated: 0 } => {}
                PollDecision::Record { repeated } => {
                    Exchange::oauth(event).repeated = Some(repeated)
                }
            }
        }
    }
    true
}

/// The binding of an issued access token: to the key of the request's DPoP proof when the
/// server says so (`token_type` `DPoP`, or `cnf.jkt` in a readable token); to the
/// connection's client certificate when a readable token has `cnf.x5t#S256` (RFC 8705 §3),
/// `valid` when it is the certificate presented, else `key_mismatch` or `missing`. A token
/// bound both ways is recorded as `dpop` with both thumbprints, like on a protected route.
fn issued_binding(
    proof: Option<&ProofCheck>,
    certificate: Option<&PresentedCertificate>,
    issued: &InspectedToken,
    token_type: Option<&str>,
) -> Option<TokenBinding> {
    let bound = issued.claims.cnf_jkt.as_deref();
    let certificate_bound = issued.claims.cnf_x5t_s256.as_deref();
    let dpop_type = token_type.is_some_and(|t| t.eq_ignore_ascii_case("dpop"));
    if !dpop_type && bound.is_none() {
        return certificate_bound.map(|x5t| certificate_binding(x5t, certificate));
    }
    let binding = key_binding(bound, proof, false, false);
    Some(also_certificate(binding, certificate_bound, certificate))
}

fn fingerprint(token: &str) -> TokenRef {
    TokenRef::new(TokenFingerprint::of(token))
}

/// The refresh token a refresh grant presents: sent once, or sent more than once and the
/// same each time (whichever the server reads, it is that one).
fn presented_refresh_token<'f>(form: &'f Form<'_>) -> Option<&'f str> {
    form.get("refresh_token").or_else(|| {
        let mut values = form.all("refresh_token");
        let first = values.next()?;
        values.all(|v| v == first).then_some(first)
    })
}

/// The `sub` of a JWT presented in a request (token exchange), unverified.
fn jwt_subject(x: &Exchange<'_>, raw: Option<&str>) -> Option<String> {
    let token = x.inspector.inspect(raw?);
    (token.format == TokenFormat::Jwt)
        .then(|| token.claims.subject.as_deref().map(ident))
        .flatten()
}
