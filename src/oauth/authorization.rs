//! The authorization endpoint (RFC 6749 §3.1, §4.1-4.2, OpenID Connect hybrid flows):
//! `AuthorizationRequested`, `AuthorizationGranted`, `AuthorizationFailed`.

use super::exchange::Exchange;
use super::form::{ident, scope_list, uri_without_query, Form};
use super::pushed_requests::PushedParams;
use super::response::{Location, MAX_CODE, MAX_DESCRIPTION};
use crate::event::{AuditEvent, EventKind, Outcome, Shared, Timestamp};
use crate::resource::{actor, details};
use crate::token::TokenFingerprint;

/// The parameters of an authorization request that events record. `state`, `nonce`,
/// `code_challenge` and the query string itself are never kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AuthorizeParams {
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) response_type: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) pkce_method: Option<String>,
    /// PAR (RFC 9126): the fingerprint of the `request_uri` presented, never its value.
    pub(crate) request_uri: Option<TokenFingerprint>,
    /// The `client_id` the query or form names beside a request object that names another
    /// client (RFC 9101 §6.3: the two must be identical); `client_id` is the object's,
    /// which the server uses. Recorded in `oauth.conflicting_client_ids`.
    pub(crate) other_clients: Vec<String>,
    /// The query's or form's own `client_id`, as sent: compared whole with a request object
    /// sent in the other of the two (a `POST` body beside a query).
    sent_client_id: Option<String>,
    /// The client the request object names, as sent.
    object_client: Option<ObjectClient>,
}

/// The client a request object names ([`object_client`]), as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ObjectClient {
    id: String,
    /// Named by the object's `client_id` (which then is the request's), not its `iss`.
    by_client_id: bool,
}

impl ObjectClient {
    fn of(object: &serde_json::Map<String, serde_json::Value>) -> Option<Self> {
        object_client(object).map(|id| ObjectClient {
            id: id.to_owned(),
            by_client_id: names_client(object),
        })
    }

    /// The one of a `client_id` named beside the object (`named`, as sent) and the object's
    /// client that is not the request's, when the two differ: the one named beside when the
    /// object has a `client_id` (which wins, RFC 9101 §6.3), else the object's `iss`.
    fn other_than(&self, named: Option<&str>) -> Option<String> {
        let named = named.filter(|named| *named != self.id)?;
        Some(ident(if self.by_client_id { named } else { &self.id }))
    }
}

impl AuthorizeParams {
    /// The parameters of a query or form, or of the request object it carries (RFC 9101
    /// §5: a server uses only the object's parameters, whatever the query or form repeats
    /// beside it; OpenID Connect's, §6.3.3, the object's over the query's). The object is
    /// read unverified, when it is a readable JWT (a signed one, not an encrypted one):
    /// what it names wins, the form's only fills what it does not.
    ///
    /// A form `client_id` other than the client the object names (its `client_id`, else its
    /// `iss`), compared whole and as sent, is kept in `other_clients`: RFC 9101 §6.3 has the
    /// two identical, and a server that looks the client up by the one and uses the other
    /// acts for a client the request did not authenticate as.
    pub(crate) fn from_form(form: &Form<'_>) -> Self {
        let params = AuthorizeParams::from_form_only(form);
        match form.request_object() {
            Some(object) => {
                let object_client = ObjectClient::of(object);
                let other_clients = object_client
                    .as_ref()
                    .and_then(|o| o.other_than(form.get("client_id")))
                    .into_iter()
                    .collect();
                let params = AuthorizeParams::from_object(object).or(params);
                AuthorizeParams {
                    other_clients,
                    object_client,
                    ..params
                }
            }
            None => params,
        }
    }

    /// The parameters of an authorization request whose query (`query`) and form body
    /// (`form`, a `POST`) both speak: a request object in either wins over both (RFC 9101
    /// §5), then the query, then the form. A request object in the one compared with a
    /// `client_id` in the other as with one beside it (RFC 9101 §6.3). A body naming another
    /// client than the query (its `client_id` without any object, or its object's client
    /// and `client_id` beside an object in the query) names a second client: a server
    /// reading the `POST` body acts for it, so it is among `other_clients`.
    fn from_query_and_form(query: AuthorizeParams, form: &Form<'_>) -> Self {
        let body = AuthorizeParams::from_form(form);
        match (&query.object_client, &body.object_client) {
            // The object in the body: its parameters win over the query's too.
            (None, Some(object)) => {
                let other = object.other_than(query.sent_client_id.as_deref());
                let mut params = form
                    .request_object()
                    .map(AuthorizeParams::from_object)
                    .unwrap_or_default()
                    .or(query)
                    .or(AuthorizeParams::from_form_only(form));
                params.other_clients.extend(other);
                params.other_clients.extend(body.other_clients);
                params
            }
            // The object in the query (its parameters already first), a `client_id` in the
            // body.
            (Some(object), None) => {
                let other = object.other_than(body.sent_client_id.as_deref());
                let mut params = query.or(body);
                params.other_clients.extend(other);
                params
            }
            // An object in each: the query's wins (its parameters first); the client the
            // body's names, and a `client_id` beside it, compared with the query's client.
            (Some(object), Some(body_object)) => {
                let client = if object.by_client_id {
                    Some(object.id.as_str())
                } else {
                    query.sent_client_id.as_deref().or(Some(object.id.as_str()))
                };
                let others: Vec<String> = [
                    Some(body_object.id.as_str()),
                    body.sent_client_id.as_deref(),
                ]
                .into_iter()
                .flatten()
                .filter(|named| Some(*named) != client)
                .map(ident)
                .collect();
                let mut params = query.or(body);
                for other in others {
                    if !params.other_clients.contains(&other) {
                        params.other_clients.push(other);
                    }
                }
                params
            }
            // No object: a `client_id` in the body other than the query's, which is read
            // first, is a second client (a server reading the `POST` body acts for it).
            (None, None) => {
                let other = match (
                    query.sent_client_id.as_deref(),
                    body.sent_client_id.as_deref(),
                ) {
                    (Some(named), Some(in_body)) if named != in_body => Some(ident(in_body)),
                    _ => None,
                };
                let mut params = query.or(body);
                params.other_clients.extend(other);
                params
            }
        }
    }

    /// The client a form's readable request object names (its `client_id`, else its
    /// `iss`), as sent: compared whole with the client that authenticated
    /// ([`client_auth::identify_claimed`]).
    ///
    /// [`client_auth::identify_claimed`]: super::client_auth::identify_claimed
    pub(crate) fn claimed_client(form: &Form<'_>) -> Option<String> {
        object_client(form.request_object()?).map(str::to_owned)
    }

    /// The parameters of a request object's claims (the `request_uri` is never in one).
    fn from_object(object: &serde_json::Map<String, serde_json::Value>) -> Self {
        let text = |name: &str| claim(object, name);
        AuthorizeParams {
            client_id: text("client_id").map(ident),
            redirect_uri: text("redirect_uri").map(uri_without_query),
            response_type: text("response_type").map(ident),
            scopes: text("scope").map(scope_list),
            pkce_method: text("code_challenge_method")
                .map(ident)
                .or_else(|| text("code_challenge").map(|_| "plain".to_owned())),
            ..AuthorizeParams::default()
        }
    }

    /// The parameters the query or form names itself.
    fn from_form_only(form: &Form<'_>) -> Self {
        let sent_client_id = form.get("client_id");
        AuthorizeParams {
            client_id: sent_client_id.map(ident),
            redirect_uri: form.get("redirect_uri").map(uri_without_query),
            response_type: form.get("response_type").map(ident),
            scopes: form.get("scope").map(scope_list),
            // RFC 7636 §4.3: a challenge without a method is `plain`.
            pkce_method: form
                .get("code_challenge_method")
                .map(ident)
                .or_else(|| form.get("code_challenge").map(|_| "plain".to_owned())),
            request_uri: form.get("request_uri").map(TokenFingerprint::of),
            other_clients: Vec::new(),
            sent_client_id: sent_client_id.map(str::to_owned),
            object_client: None,
        }
    }

    /// What the server uses of a request presenting the pushed request its `request_uri`
    /// names: the pushed parameters, even where the query names others (RFC 9101 §5, to
    /// which RFC 9126 §4 refers: only the stored request's parameters are used), the
    /// query's only where the pushed request had none. A client the query names besides
    /// the pushed request's is first among `other_clients`: the request named two clients.
    fn over_pushed(self, pushed: &PushedParams) -> Self {
        let other = match (self.client_id.as_ref(), pushed.client_id.as_ref()) {
            (Some(named), Some(pushed)) if named != pushed => self.client_id.clone(),
            _ => None,
        };
        let mut other_clients: Vec<String> = other.into_iter().collect();
        other_clients.extend(self.other_clients);
        AuthorizeParams {
            client_id: pushed.client_id.clone().or(self.client_id),
            redirect_uri: pushed.redirect_uri.clone().or(self.redirect_uri),
            response_type: pushed.response_type.clone().or(self.response_type),
            scopes: pushed.scopes.clone().or(self.scopes),
            pkce_method: pushed.pkce_method.clone().or(self.pkce_method),
            request_uri: self.request_uri,
            other_clients,
            sent_client_id: self.sent_client_id,
            object_client: self.object_client,
        }
    }

    /// Fills what `self` lacks from `other` (query string, then form body); the other
    /// clients of both are kept, `self`'s first.
    fn or(mut self, other: AuthorizeParams) -> Self {
        self.other_clients.extend(other.other_clients);
        AuthorizeParams {
            client_id: self.client_id.or(other.client_id),
            redirect_uri: self.redirect_uri.or(other.redirect_uri),
            response_type: self.response_type.or(other.response_type),
            scopes: self.scopes.or(other.scopes),
            pkce_method: self.pkce_method.or(other.pkce_method),
            request_uri: self.request_uri.or(other.request_uri),
            other_clients: self.other_clients,
            sent_client_id: self.sent_client_id.or(other.sent_client_id),
            object_client: self.object_client.or(other.object_client),
        }
    }
}

/// The client a request object names: its `client_id` (RFC 9101 §6.3), else its `iss`,
/// which a signed object carries as the client's id (RFC 9101 §4, OpenID Connect Core
/// §6.1), as sent.
fn object_client(object: &serde_json::Map<String, serde_json::Value>) -> Option<&str> {
    claim(object, "client_id").or_else(|| claim(object, "iss"))
}

/// Whether a request object has a `client_id` of its own, which then is the request's.
fn names_client(object: &serde_json::Map<String, serde_json::Value>) -> bool {
    claim(object, "client_id").is_some()
}

/// A text claim of a request object, when not empty.
fn claim<'o>(
    object: &'o serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Option<&'o str> {
    object
        .get(name)
        .and_then(serde_json::Value::as_str)
        .filter(|v| !v.is_empty())
}

/// Whether a redirect carries the authorization server's decision.
fn decides(l: &Location) -> bool {
    l.code || l.error.is_some() || l.access_token.is_some() || l.id_token.is_some()
}

/// The kind and outcome of an authorization response: a redirect with a decision grants or
/// fails, any other 2xx or 3xx is a page on the way (login, consent), 4xx/5xx fail.
pub(crate) fn judge(
    status: Option<http::StatusCode>,
    location: Option<&Location>,
) -> (EventKind, Outcome) {
    match (status, location.filter(|l| decides(l))) {
        (None, _) => (EventKind::AuthorizationRequested, Outcome::Unknown),
        (Some(s), Some(l)) if s.is_redirection() => {
            if l.error.is_some() {
                (EventKind::AuthorizationFailed, Outcome::Failure)
            } else {
                (EventKind::AuthorizationGranted, Outcome::Success)
            }
        }
        (Some(s), _) if s.is_success() || s.is_redirection() => {
            (EventKind::AuthorizationRequested, Outcome::Success)
        }
        (Some(_), _) => (EventKind::AuthorizationFailed, Outcome::Failure),
    }
}

pub(crate) fn classify(
    x: &Exchange<'_>,
    form: Option<&Form<'_>>,
    query: Option<&AuthorizeParams>,
    event: &mut AuditEvent,
) {
    let query = query.cloned().unwrap_or_default();
    let mut params = match form {
        Some(form) => AuthorizeParams::from_query_and_form(query, form),
        None => query,
    };
    let pushed = params
        .request_uri
        .and_then(|fingerprint| x.endpoints.config().pushed.get(&fingerprint));
    // A query naming another client than the pushed request's, or than its request
    // object's (RFC 9101 §6.3).
    if let Some(pushed) = &pushed {
        params = params.over_pushed(pushed);
    }
    let other_clients = std::mem::take(&mut params.other_clients);
    let location = x.location();
    let decision = location.filter(|l| decides(l));
    let (kind, outcome) = judge(x.status(), location);
    event.set_kind(kind, outcome);
    let mut subject = None;
    event.scopes.requested = params.scopes;
    event.redirect_uri = params
        .redirect_uri
        .or_else(|| decision.map(|l| l.target.clone()));
    if let Some(l) = decision {
        if let Some(error) = &l.error {
            event.error = Some(crate::event::ErrorInfo {
                code: error.scrubbed_code(x.secrets(), MAX_CODE),
                description: l
                    .error_description
                    .as_ref()
                    .map(|d| d.scrubbed(x.secrets(), MAX_DESCRIPTION)),
            });
        }
        // Implicit and hybrid flows: the token in the fragment, by fingerprint.
        if let Some(token) = l.access_token.as_ref().or(l.id_token.as_ref()) {
            let mut token_details = details(token);
            if let Some(secs) = l.expires_in.and_then(|s| i64::try_from(s).ok()) {
                token_details.expires_at =
                    Timestamp::from_unix(x.request.time.unix().saturating_add(secs));
            }
            token_details.type_hint = if l.access_token.is_some() {
                l.token_type.clone()
            } else {
                Some("id_token".to_owned())
            };
            event.token = Some(token_details.into());
        }
        subject = l
            .id_token
            .as_ref()
            .or(l.access_token.as_ref())
            .and_then(|t| t.claims.subject.clone());
        if l.error.is_none() {
            event.scopes.granted = l.scope.clone().map(Shared::from);
        }
    } else if outcome == Outcome::Failure {
        event.error = x.error();
    }
    event.actor = actor(subject.as_deref(), params.client_id.as_deref()).into();
    super::client_auth::record_conflict(event, other_clients);
    let oauth = Exchange::oauth(event);
    oauth.response_type = params.response_type;
    oauth.pkce_method = params.pkce_method;
    oauth.request_uri_fingerprint = params.request_uri;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_no_secrets() {
        let form = Form::parse(
            b"response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fapp%2Fcb%3Fx%3D1&scope=openid+profile&state=STATE&nonce=NONCE&code_challenge=CHAL&code_challenge_method=S256",
        );
        let p = AuthorizeParams::from_form(&form);
        assert_eq!(p.client_id.as_deref(), Some("web"));
        assert_eq!(p.redirect_uri.as_deref(), Some("https://app/cb"));
        assert_eq!(p.response_type.as_deref(), Some("code"));
        assert_eq!(p.scopes, Some(vec!["openid".into(), "profile".into()]));
        assert_eq!(p.pkce_method.as_deref(), Some("S256"));
        let debug = format!("{p:?}");
        assert!(!debug.contains("STATE") && !debug.contains("NONCE") && !debug.contains("CHAL"));

        let p = AuthorizeParams::from_form(&Form::parse(b"code_challenge=abc"));
        assert_eq!(p.pkce_method.as_deref(), Some("plain"));
        let merged = AuthorizeParams::from_form(&Form::parse(b"client_id=q")).or(
            AuthorizeParams::from_form(&Form::parse(b"client_id=f&scope=a")),
        );
        assert_eq!(merged.client_id.as_deref(), Some("q"));
        assert_eq!(merged.scopes, Some(vec!["a".into()]));
    }

    #[test]
    fn a_readable_request_object_wins_over_the_form() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let signed = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"redirect_uri":"https://evil/cb","scope":"admin","code_challenge":"c"}"#)
        );
        let form = format!("client_id=web&redirect_uri=https%3A%2F%2Fapp%2Fcb&scope=openid&code_challenge_method=S256&request={signed}");
        let p = AuthorizeParams::from_form(&Form::parse(form.as_bytes()));
        assert_eq!(p.redirect_uri.as_deref(), Some("https://evil/cb"));
        assert_eq!(p.scopes, Some(vec!["admin".into()]));
        assert_eq!(
            p.pkce_method.as_deref(),
            Some("plain"),
            "the object's challenge"
        );
        assert_eq!(
            p.client_id.as_deref(),
            Some("web"),
            "the form fills the rest"
        );
        assert_eq!(
            AuthorizeParams::claimed_client(&Form::parse(form.as_bytes())),
            None
        );
        let claiming = format!(
            "client_id=web&request={}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"client_id":"other"}"#)
        );
        let claiming = Form::parse(claiming.as_bytes());
        assert_eq!(
            AuthorizeParams::claimed_client(&claiming).as_deref(),
            Some("other")
        );
        // Without a `client_id`, the object's `iss` is its client (RFC 9101 §4).
        let by_issuer = format!(
            "client_id=web&request={}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"iss":"issuer-app","client_id":""}"#)
        );
        assert_eq!(
            AuthorizeParams::claimed_client(&Form::parse(by_issuer.as_bytes())).as_deref(),
            Some("issuer-app")
        );
        // An encrypted object (five parts) cannot be read: the form's parameters stay.
        let form = "client_id=web&scope=openid&request=a.b.c.d.e";
        let p = AuthorizeParams::from_form(&Form::parse(form.as_bytes()));
        assert_eq!(p.scopes, Some(vec!["openid".into()]));
    }

    #[test]
    fn a_query_client_other_than_the_request_objects_is_kept_apart() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let object = |claims: &str| format!("{}.{}.sig", b64(r#"{"alg":"ES256"}"#), b64(claims));
        let read = |query: String| AuthorizeParams::from_form(&Form::parse(query.as_bytes()));
        // RFC 9101 §6.3: the server uses the object's client; the query's is the other.
        let p = read(format!(
            "client_id=rp&request={}",
            object(r#"{"client_id":"attacker-app","scope":"openid"}"#)
        ));
        assert_eq!(p.client_id.as_deref(), Some("attacker-app"));
        assert_eq!(p.other_clients, ["rp"]);
        // Without a `client_id`, the object's `iss` names its client.
        let p = read(format!(
            "client_id=rp&request={}",
            object(r#"{"iss":"attacker-app"}"#)
        ));
        assert_eq!(p.client_id.as_deref(), Some("rp"));
        assert_eq!(p.other_clients, ["attacker-app"]);
        // The same client, or no client in the query: one name.
        for query in [
            format!(
                "client_id=rp&request={}",
                object(r#"{"client_id":"rp","iss":"x"}"#)
            ),
            format!("request={}", object(r#"{"client_id":"rp"}"#)),
            format!("client_id=rp&request={}", object(r#"{"scope":"openid"}"#)),
            format!(
                "client_id=rp&request={}",
                object(r#"{"client_id":"","iss":"rp"}"#)
            ),
            "client_id=rp&request=a.b.c.d.e".to_owned(),
        ] {
            assert!(read(query.clone()).other_clients.is_empty(), "{query}");
        }
        // Compared as sent: two ids that read alike once made safe for a log are two.
        let p = read(format!(
            "client_id=app%0Ax&request={}",
            object(r#"{"client_id":"app\\u{a}x"}"#)
        ));
        assert!(!p.other_clients.is_empty(), "{p:?}");
    }

    /// A `POST` to `/authorize` whose query and body name different clients, with no request
    /// object or with one on each side: a server that reads the body (as a `POST` asks) acts
    /// for the body's client, one that reads the query for the query's; the event names the
    /// query's and must not leave the body's out.
    #[test]
    fn a_query_and_a_body_naming_different_clients_name_two() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let object = |claims: &str| format!("{}.{}.sig", b64(r#"{"alg":"ES256"}"#), b64(claims));
        let read = |query: &str, body: &str| {
            AuthorizeParams::from_query_and_form(
                AuthorizeParams::from_form(&Form::parse(query.as_bytes())),
                &Form::parse(body.as_bytes()),
            )
        };
        // Two `client_id`s, no object.
        let p = read("client_id=rp", "client_id=attacker-app&response_type=code");
        assert_eq!(p.client_id.as_deref(), Some("rp"));
        assert_eq!(p.other_clients, ["attacker-app"]);
        // An object in each, naming different clients: the query's wins, the body's is the
        // other one.
        let p = read(
            &format!("request={}", object(r#"{"client_id":"rp"}"#)),
            &format!("request={}", object(r#"{"client_id":"attacker-app"}"#)),
        );
        assert_eq!(p.client_id.as_deref(), Some("rp"));
        assert_eq!(p.other_clients, ["attacker-app"]);
        // ... or by its `iss` alone, or by a `client_id` beside it in the body.
        let p = read(
            &format!("request={}", object(r#"{"client_id":"rp"}"#)),
            &format!("request={}", object(r#"{"iss":"attacker-app"}"#)),
        );
        assert_eq!(p.other_clients, ["attacker-app"]);
        let p = read(
            &format!("client_id=rp&request={}", object(r#"{"client_id":"rp"}"#)),
            &format!(
                "client_id=third-app&request={}",
                object(r#"{"client_id":"rp"}"#)
            ),
        );
        assert_eq!(p.client_id.as_deref(), Some("rp"));
        assert_eq!(p.other_clients, ["third-app"]);
        // The same client on both sides is one, as sent: `a%0Ax` and `a\u{a}x` are two.
        for (query, body) in [
            ("client_id=rp", "client_id=rp"),
            ("client_id=rp", "response_type=code"),
            ("response_type=code", "client_id=rp"),
        ] {
            assert!(read(query, body).other_clients.is_empty(), "{query} {body}");
        }
        assert!(!read("client_id=app%0Ax", r"client_id=app\u{a}x")
            .other_clients
            .is_empty());
    }

    #[test]
    fn a_request_object_is_decoded_once_per_request() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let object = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"client_id":"rp","scope":"openid","nonce":"n0nce-n0nce"}"#)
        );
        let decoded = || super::super::unverified::DECODED.with(std::cell::Cell::get);
        // What a pushed request's classifier reads of its form: the parameters, the
        // client the object claims, and (to scrub the answer) the secrets.
        let body = format!("client_id=rp&request={object}");
        let form = Form::parse(body.as_bytes());
        let before = decoded();
        let params = AuthorizeParams::from_form(&form);
        let claimed = AuthorizeParams::claimed_client(&form);
        let mut secrets = crate::event::Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(decoded() - before, 1);
        assert_eq!(params.scopes, Some(vec!["openid".into()]));
        assert_eq!(claimed.as_deref(), Some("rp"));
        assert_eq!(
            crate::event::scrub("bad nonce n0nce-n0nce", &secrets, 512),
            "bad nonce [redacted]"
        );
        // An authorization query: its secrets when it arrives, then its parameters.
        let before = decoded();
        let mut head = crate::event::HeadSecrets::default();
        form.head_secrets_into(&mut head);
        AuthorizeParams::from_form(&form);
        assert_eq!(decoded() - before, 0, "already decoded with this form");
        let query = Form::parse(body.as_bytes());
        query.head_secrets_into(&mut head);
        AuthorizeParams::from_form(&query);
        assert_eq!(decoded() - before, 1);
        // An object sent twice is no request's object, but each is still read for secrets.
        let twice = format!("request={object}&request={object}");
        let form = Form::parse(twice.as_bytes());
        let before = decoded();
        assert_eq!(AuthorizeParams::from_form(&form).scopes, None);
        let mut secrets = crate::event::Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(decoded() - before, 2);
        assert_eq!(
            crate::event::scrub("n0nce-n0nce", &secrets, 512),
            "[redacted]"
        );
    }

    proptest::proptest! {
        /// Any status and any redirect: granted only by a redirect with a code or token and
        /// no error, failed by a redirect with an error or a 4xx/5xx, never both.
        #[test]
        fn authorize_classification_agrees_with_a_model(
            status in proptest::option::of(100u16..600),
            params in proptest::collection::vec(
                (proptest::sample::select(vec!["code", "error", "access_token", "id_token", "state", "scope", "error_description"]), "[a-zA-Z0-9%+=&#?]{0,12}"),
                0..5,
            ),
            fragment in proptest::bool::ANY,
        ) {
            let inspector = crate::token::TokenInspector::default();
            let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let sep = if fragment { '#' } else { '?' };
            let raw = format!("https://app/cb{sep}{}", query.join("&"));
            let location = Location::parse(&raw, &inspector);
            let status = status.and_then(|s| http::StatusCode::from_u16(s).ok());
            let (kind, outcome) = judge(status, Some(&location));
            // The model reads the same parameters with a plain parser.
            let (_, tail) = raw.split_once(sep).unwrap_or_default();
            let (q, f) = if fragment { ("", tail) } else { tail.split_once('#').unwrap_or((tail, "")) };
            let present = |name: &str| [q, f].iter().any(|part| {
                form_urlencoded::parse(part.as_bytes()).any(|(k, v)| k == name && !v.is_empty())
            });
            let redirect = status.is_some_and(|s| s.is_redirection());
            let granted_by = present("code") || present("access_token") || present("id_token");
            match status {
                None => proptest::prop_assert_eq!(outcome, Outcome::Unknown),
                Some(s) if redirect && present("error") => {
                    proptest::prop_assert_eq!((kind, outcome), (EventKind::AuthorizationFailed, Outcome::Failure), "{}", s)
                }
                Some(_) if redirect && granted_by => {
                    proptest::prop_assert_eq!((kind, outcome), (EventKind::AuthorizationGranted, Outcome::Success))
                }
                Some(s) if s.is_success() || redirect => {
                    proptest::prop_assert_eq!((kind, outcome), (EventKind::AuthorizationRequested, Outcome::Success))
                }
                Some(_) => proptest::prop_assert_eq!((kind, outcome), (EventKind::AuthorizationFailed, Outcome::Failure)),
            }
            proptest::prop_assert!(!location.target.contains('?') && !location.target.contains('#'));
        }
    }
}
