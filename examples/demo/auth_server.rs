//! A small OAuth 2.0 authorization server for the demo (not for production): registered
//! clients and users in memory, JWT access tokens (HS256), opaque rotating refresh tokens,
//! pushed authorization requests (RFC 9126), the device authorization grant (RFC 8628),
//! OpenID Connect CIBA (poll mode), token exchange (RFC 8693) and certificate-bound tokens
//! (RFC 8705).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Query;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, Redirect};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oauth_audit::dpop::{DpopVerifier, ProofOutcome, ProofUse};
use oauth_audit::mtls::ClientCertificate;
use serde::Deserialize;
use serde_json::json;

pub const ISSUER: &str = "http://demo.local";
pub const AUDIENCE: &str = "demo-api";
/// Where `web` may send its users after a logout.
pub const SIGNED_OUT: &str = "https://app.demo/signed-out";

/// The signing secret, shared with the API's token inspector.
#[derive(Clone)]
pub struct Keys {
    secret: Arc<Vec<u8>>,
}

impl Keys {
    pub fn generate() -> Self {
        let mut secret = Vec::new();
        for _ in 0..2 {
            secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        }
        Keys {
            secret: Arc::new(secret),
        }
    }

    pub fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// Signs an access token for `sub`/`client_id` valid from `iat` for `ttl` seconds.
    pub fn access_token(
        &self,
        sub: &str,
        client_id: &str,
        scope: &str,
        iat: i64,
        ttl: i64,
    ) -> String {
        sign(self.secret(), sub, client_id, scope, iat, ttl)
    }
}

pub fn sign(secret: &[u8], sub: &str, client_id: &str, scope: &str, iat: i64, ttl: i64) -> String {
    sign_bound(secret, sub, client_id, scope, iat, ttl, None, None)
}

/// Signs an access token, bound to the DPoP key `jkt` when given (`cnf.jkt`, RFC 9449 §6),
/// or to the client certificate of thumbprint `x5t` (`cnf.x5t#S256`, RFC 8705 §3).
#[allow(clippy::too_many_arguments)]
fn sign_bound(
    secret: &[u8],
    sub: &str,
    client_id: &str,
    scope: &str,
    iat: i64,
    ttl: i64,
    jkt: Option<&str>,
    x5t: Option<&str>,
) -> String {
    let mut claims = json!({ "sub": sub, "client_id": client_id, "scope": scope });
    if let Some(jkt) = jkt {
        claims["cnf"] = json!({ "jkt": jkt });
    } else if let Some(x5t) = x5t {
        claims["cnf"] = json!({ "x5t#S256": x5t });
    }
    sign_claims(secret, claims, iat, ttl)
}

/// Signs `claims` as an access token of this server, valid from `iat` for `ttl` seconds.
fn sign_claims(secret: &[u8], mut claims: serde_json::Value, iat: i64, ttl: i64) -> String {
    claims["iss"] = ISSUER.into();
    claims["aud"] = AUDIENCE.into();
    claims["jti"] = uuid::Uuid::new_v4().to_string().into();
    claims["iat"] = iat.into();
    claims["exp"] = (iat + ttl).into();
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing cannot fail")
}

/// The claims of an access token this server signed, if it is valid and not revoked.
fn verify(state: &AppState, token: &str) -> Option<serde_json::Value> {
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[AUDIENCE]);
    let key = jsonwebtoken::DecodingKey::from_secret(state.keys.secret());
    let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .ok()?
        .claims;
    let revoked = state.revoked.lock().unwrap();
    (!revoked
        .iter()
        .any(|j| Some(j.as_str()) == claims["jti"].as_str()))
    .then_some(claims)
}

/// RFC 8628 §3.4.
const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// OpenID Connect CIBA Core §10.1.
const CIBA: &str = "urn:openid:params:grant-type:ciba";
/// RFC 8693 §2.1.
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Client {
    secret: Option<&'static str>,
    scopes: &'static [&'static str],
    /// Authenticates by its TLS client certificate (`tls_client_auth`, RFC 8705 §2).
    certificate: bool,
}

fn client(id: &str) -> Option<Client> {
    match id {
        "reporting" => Some(Client {
            secret: Some("reporting-secret"),
            scopes: &["orders:read"],
            certificate: false,
        }),
        "web" => Some(Client {
            secret: Some("web-secret"),
            scopes: &["profile", "orders:read", "admin"],
            certificate: false,
        }),
        "cli" => Some(Client {
            secret: None,
            scopes: &["profile"],
            certificate: false,
        }),
        // A television app: a public client on a device without a keyboard (RFC 8628).
        "tv" => Some(Client {
            secret: None,
            scopes: &["profile", "orders:read"],
            certificate: false,
        }),
        // An API gateway that exchanges its users' tokens for ones naming it (RFC 8693).
        "gateway" => Some(Client {
            secret: Some("gateway-secret"),
            scopes: &["orders:read"],
            certificate: false,
        }),
        // A call centre's app that asks users for consent on their phones (CIBA).
        "desk" => Some(Client {
            secret: Some("desk-secret"),
            scopes: &["openid", "profile"],
            certificate: false,
        }),
        // A smart meter that authenticates by mutual TLS; its tokens are bound to its
        // certificate (RFC 8705 §3).
        "meter" => Some(Client {
            secret: None,
            scopes: &["orders:read"],
            certificate: true,
        }),
        _ => None,
    }
}

/// The header the demo's TLS terminator passes a verified client certificate in.
pub const CLIENT_CERT_HEADER: &str = "x-client-cert";

/// The thumbprint (`x5t#S256`) of the client certificate the TLS terminator passed on.
fn client_certificate(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CLIENT_CERT_HEADER)?;
    let certificate = ClientCertificate::from_header_value(value.as_bytes()).ok()??;
    Some(certificate.thumbprint().to_owned())
}

fn user(username: &str, password: &str) -> Option<&'static [&'static str]> {
    match (username, password) {
        ("alice", "wonderland") | ("root", "correct horse battery staple") => {
            Some(user_scopes(username))
        }
        _ => None,
    }
}

/// The scopes a user may grant.
fn user_scopes(username: &str) -> &'static [&'static str] {
    match username {
        "alice" => &["profile", "orders:read"],
        "root" => &["profile", "orders:read", "admin"],
        _ => &[],
    }
}

/// What a refresh token stands for. Refresh tokens rotate on every use.
struct Grant {
    subject: String,
    client_id: String,
    scope: String,
}

/// An authorization code waiting to be exchanged.
struct PendingCode {
    client_id: String,
    subject: String,
    scope: String,
    redirect_uri: String,
    code_challenge: Option<String>,
}

/// A pushed authorization request (RFC 9126), waiting for the authorization request that
/// presents its `request_uri`.
struct Pushed {
    client_id: String,
    query: AuthorizeQuery,
}

/// A device authorization (RFC 8628) the user has not decided on yet, or has approved.
struct Device {
    client_id: String,
    user_code: String,
    scope: String,
    /// The user who approved it on another device, once one has.
    approved_by: Option<String>,
}

/// A CIBA authentication request (poll mode) waiting for its user's decision.
struct Backchannel {
    client_id: String,
    subject: String,
    scope: String,
    /// What the user's phone shows, to tell this request from another.
    binding_message: String,
    approved: bool,
}

/// Where each client may be redirected to.
fn registered_redirect(client_id: &str) -> Option<&'static str> {
    match client_id {
        "web" | "cli" => Some("https://app.demo/callback"),
        _ => None,
    }
}

#[derive(Clone)]
pub struct AppState {
    keys: Keys,
    refresh: Arc<Mutex<HashMap<String, Grant>>>,
    codes: Arc<Mutex<HashMap<String, PendingCode>>>,
    /// Revoked access tokens (by `jti`).
    revoked: Arc<Mutex<Vec<String>>>,
    /// Checks the DPoP proofs of token requests, with the crate's own verifier.
    dpop: DpopVerifier,
    /// Pushed authorization requests by `request_uri`; each is used once.
    pushed: Arc<Mutex<HashMap<String, Pushed>>>,
    /// Device authorizations by device code.
    devices: Arc<Mutex<HashMap<String, Device>>>,
    /// CIBA authentication requests by `auth_req_id`.
    backchannel: Arc<Mutex<HashMap<String, Backchannel>>>,
}

pub fn router(keys: Keys) -> Router {
    let state = AppState {
        keys,
        refresh: Arc::default(),
        codes: Arc::default(),
        revoked: Arc::default(),
        dpop: DpopVerifier::default(),
        pushed: Arc::default(),
        devices: Arc::default(),
        backchannel: Arc::default(),
    };
    Router::new()
        .route("/token", post(token))
        .route("/par", post(par))
        .route("/device_authorization", post(device_authorization))
        .route("/device", post(device_approval))
        .route("/bc-authorize", post(backchannel_authentication))
        .route("/bc-approve", post(backchannel_approval))
        .route("/revoke", post(revoke))
        .route("/introspect", post(introspect))
        .route("/authorize", get(authorize))
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout))
        .with_state(state)
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    username: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    code: Option<String>,
    code_verifier: Option<String>,
    redirect_uri: Option<String>,
    device_code: Option<String>,
    subject_token: Option<String>,
    subject_token_type: Option<String>,
    auth_req_id: Option<String>,
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// Client authentication: HTTP Basic, or the form's `client_id` and `client_secret` (RFC 6749
/// §2.3.1), or a client certificate for the clients that use one (RFC 8705 §2).
fn authenticate(
    headers: &HeaderMap,
    client_id: Option<&str>,
    client_secret: Option<&str>,
) -> Result<String, Box<Response>> {
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(i, s)| (i.to_owned(), Some(s.to_owned())))
        });
    let (id, secret) = basic
        .or_else(|| client_id.map(|id| (id.to_owned(), client_secret.map(str::to_owned))))
        .ok_or_else(|| {
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication required",
            )
        })?;
    let registered = client(&id).ok_or_else(|| {
        Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client",
        ))
    })?;
    if registered.certificate {
        // RFC 8705 §2.1: the client proves itself by the TLS handshake, not a secret.
        if secret.is_some() || client_certificate(headers).is_none() {
            return Err(Box::new(oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "this client authenticates with its TLS client certificate",
            )));
        }
    } else if registered.secret != secret.as_deref() {
        return Err(Box::new(oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )));
    }
    Ok(id)
}

async fn token(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let client_id = match authenticate(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    // RFC 9449 §5: a valid proof binds the tokens to its key; an invalid one is refused.
    let proof = headers.contains_key("dpop").then(|| {
        let mut check = state.dpop.check(&method, &uri, &headers, None);
        state.dpop.record_use(&mut check, ProofUse::TokenEndpoint);
        check
    });
    let jkt = match &proof {
        Some(check) if check.outcome != ProofOutcome::Valid => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_dpop_proof",
                &format!("DPoP proof {}", check.outcome),
            )
        }
        Some(check) => check.jkt.clone(),
        None => None,
    };
    let allowed = client(&client_id).map_or(&[][..], |c| c.scopes);
    let requested = form.scope.clone().unwrap_or_default();
    let (subject, scope) = match form.grant_type.as_deref() {
        Some("client_credentials") => (client_id.clone(), requested.clone()),
        Some("password") => {
            let (Some(username), Some(password)) = (&form.username, &form.password) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "username and password are required",
                );
            };
            let Some(user_scopes) = user(username, password) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "bad username or password",
                );
            };
            let scope = requested
                .split(' ')
                .filter(|s| user_scopes.contains(s))
                .collect::<Vec<_>>()
                .join(" ");
            (username.clone(), scope)
        }
        Some("authorization_code") => {
            let code = form.code.clone().unwrap_or_default();
            let Some(pending) = state.codes.lock().unwrap().remove(&code) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "authorization code is invalid or was used",
                );
            };
            if pending.client_id != client_id
                || form.redirect_uri.as_deref() != Some(pending.redirect_uri.as_str())
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "code was issued to another client or redirect URI",
                );
            }
            if let Some(challenge) = &pending.code_challenge {
                let verifier = form.code_verifier.clone().unwrap_or_default();
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
                if &computed != challenge {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "PKCE verification failed",
                    );
                }
            }
            (pending.subject, pending.scope)
        }
        Some("refresh_token") => {
            let presented = form.refresh_token.clone().unwrap_or_default();
            let Some(grant) = state.refresh.lock().unwrap().remove(&presented) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token is invalid or was used",
                );
            };
            if grant.client_id != client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token was issued to another client",
                );
            }
            (grant.subject, grant.scope)
        }
        Some(DEVICE_CODE) => {
            let presented = form.device_code.clone().unwrap_or_default();
            let mut devices = state.devices.lock().unwrap();
            let Some(device) = devices.get(&presented).filter(|d| d.client_id == client_id) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "device code is invalid or was used",
                );
            };
            // RFC 8628 §3.5: the client polls until the user has decided.
            let Some(subject) = device.approved_by.clone() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "authorization_pending",
                    "the user has not yet approved this device",
                );
            };
            let scope = device.scope.clone();
            devices.remove(&presented);
            (subject, scope)
        }
        Some(CIBA) => {
            let presented = form.auth_req_id.clone().unwrap_or_default();
            let mut requests = state.backchannel.lock().unwrap();
            let Some(request) = requests
                .get(&presented)
                .filter(|r| r.client_id == client_id)
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "auth_req_id is invalid or was used",
                );
            };
            if !request.approved {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "authorization_pending",
                    "the user has not yet decided",
                );
            }
            let grant = (request.subject.clone(), request.scope.clone());
            requests.remove(&presented);
            grant
        }
        Some(TOKEN_EXCHANGE) => {
            // RFC 8693 §2.1: the subject token must be one of ours, still valid; the new
            // token names the client that asked as the actor (`act`).
            let valid = (form.subject_token_type.as_deref() == Some(ACCESS_TOKEN_TYPE))
                .then(|| {
                    form.subject_token
                        .as_deref()
                        .and_then(|t| verify(&state, t))
                })
                .flatten();
            let Some(subject_claims) = valid else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "the subject token is not a valid access token of this server",
                );
            };
            let subject = subject_claims["sub"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let user_scopes = user_scopes(&subject);
            let scope = requested
                .split(' ')
                .filter(|s| user_scopes.contains(s))
                .collect::<Vec<_>>()
                .join(" ");
            let access_token = sign_claims(
                state.keys.secret(),
                json!({
                    "sub": subject, "client_id": client_id, "scope": scope,
                    "act": { "sub": client_id },
                }),
                now(),
                300,
            );
            return (
                [("cache-control", "no-store")],
                Json(json!({
                    "access_token": access_token,
                    "issued_token_type": ACCESS_TOKEN_TYPE,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": scope,
                })),
            )
                .into_response();
        }
        Some(other) => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("grant type {other} is not supported"),
            )
        }
        None => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant_type is required",
            )
        }
    };
    if let Some(bad) = scope
        .split(' ')
        .find(|s| !s.is_empty() && !allowed.contains(s))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("scope {bad} is not allowed for this client"),
        );
    }
    let access_token = sign_bound(
        state.keys.secret(),
        &subject,
        &client_id,
        &scope,
        now(),
        300,
        jkt.as_deref(),
        client(&client_id)
            .is_some_and(|c| c.certificate)
            .then(|| client_certificate(&headers))
            .flatten()
            .as_deref(),
    );
    let token_type = if jkt.is_some() { "DPoP" } else { "Bearer" };
    let mut body = json!({
        "access_token": access_token, "token_type": token_type, "expires_in": 300, "scope": scope,
    });
    if !matches!(
        form.grant_type.as_deref(),
        Some("client_credentials" | DEVICE_CODE | CIBA)
    ) {
        let refresh = format!("rt-{}", uuid::Uuid::new_v4().simple());
        state.refresh.lock().unwrap().insert(
            refresh.clone(),
            Grant {
                subject,
                client_id,
                scope,
            },
        );
        body["refresh_token"] = refresh.into();
    }
    ([("cache-control", "no-store")], Json(body)).into_response()
}

#[derive(Deserialize)]
struct TokenParam {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// RFC 7009: revokes a refresh token, or an access token by its `jti`.
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenParam>,
) -> Response {
    if let Err(response) = authenticate(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        return *response;
    }
    let token = form.token.unwrap_or_default();
    if state.refresh.lock().unwrap().remove(&token).is_none() {
        if let Some(jti) = jwt_jti(&token) {
            state.revoked.lock().unwrap().push(jti);
        }
    }
    StatusCode::OK.into_response()
}

/// RFC 7662: what the server knows about a token.
async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenParam>,
) -> Response {
    if let Err(response) = authenticate(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        return *response;
    }
    let token = form.token.unwrap_or_default();
    if let Some(grant) = state.refresh.lock().unwrap().get(&token) {
        return Json(
            json!({"active": true, "sub": grant.subject, "client_id": grant.client_id,
            "scope": grant.scope, "token_type": "refresh_token"}),
        )
        .into_response();
    }
    match verify(&state, &token) {
        Some(mut answer) => {
            answer["active"] = true.into();
            Json(answer).into_response()
        }
        None => Json(json!({"active": false})).into_response(),
    }
}

fn jwt_jti(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims["jti"].as_str().map(str::to_owned)
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    prompt: Option<String>,
    request_uri: Option<String>,
}

/// The authorization endpoint. The demo's user "alice" is always signed in and always
/// consents, unless `prompt=login` asks for the login page. A `request_uri` stands for a
/// request the client pushed before (RFC 9126 §4), whose parameters are used instead.
async fn authorize(State(state): State<AppState>, Query(q): Query<AuthorizeQuery>) -> Response {
    let q = match q.request_uri.as_deref() {
        None => q,
        Some(request_uri) => {
            let pushed = state.pushed.lock().unwrap().remove(request_uri);
            match pushed {
                Some(pushed) if q.client_id.as_deref() == Some(pushed.client_id.as_str()) => {
                    AuthorizeQuery {
                        client_id: Some(pushed.client_id),
                        ..pushed.query
                    }
                }
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_uri",
                        "the request_uri is unknown, used, or another client's",
                    )
                }
            }
        }
    };
    let client_id = q.client_id.clone().unwrap_or_default();
    let redirect_uri = q.redirect_uri.clone().unwrap_or_default();
    // RFC 6749 §4.1.2.1: a bad redirect URI is never redirected to.
    if registered_redirect(&client_id) != Some(redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not registered for this client",
        );
    }
    if q.prompt.as_deref() == Some("login") {
        return Html("<form method=post action=/login>user <input name=username> password <input name=password type=password></form>").into_response();
    }
    let state_param = q.state.clone().unwrap_or_default();
    if q.response_type.as_deref() != Some("code") {
        return Redirect::to(&format!(
            "{redirect_uri}?error=unsupported_response_type&state={state_param}"
        ))
        .into_response();
    }
    let code = format!("ac-{}", uuid::Uuid::new_v4().simple());
    state.codes.lock().unwrap().insert(
        code.clone(),
        PendingCode {
            client_id,
            subject: "alice".into(),
            scope: q.scope.clone().unwrap_or_default(),
            redirect_uri: redirect_uri.clone(),
            code_challenge: q.code_challenge.clone(),
        },
    );
    Redirect::to(&format!("{redirect_uri}?code={code}&state={state_param}")).into_response()
}

/// The pushed authorization request endpoint (RFC 9126 §2): a client authenticates and
/// posts its authorization request, and gets a `request_uri` to send the user with.
async fn par(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ParForm>,
) -> Response {
    let client_id = match authenticate(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    if registered_redirect(&client_id) != form.redirect_uri.as_deref() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is not registered for this client",
        );
    }
    let request_uri = format!(
        "urn:ietf:params:oauth:request_uri:{}",
        uuid::Uuid::new_v4().simple()
    );
    state.pushed.lock().unwrap().insert(
        request_uri.clone(),
        Pushed {
            client_id,
            query: AuthorizeQuery {
                response_type: form.response_type,
                client_id: form.client_id,
                redirect_uri: form.redirect_uri,
                scope: form.scope,
                state: form.state,
                code_challenge: form.code_challenge,
                prompt: None,
                request_uri: None,
            },
        },
    );
    (
        StatusCode::CREATED,
        [("cache-control", "no-store")],
        Json(json!({ "request_uri": request_uri, "expires_in": 60 })),
    )
        .into_response()
}

/// A pushed authorization request: the client's credentials (unless sent by HTTP Basic)
/// and the authorization request's parameters.
#[derive(Deserialize)]
struct ParForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    response_type: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
}

/// The device authorization endpoint (RFC 8628 §3.1-3.2): a device without a browser asks
/// for a device code to poll with and a short user code for its user to enter elsewhere.
async fn device_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let client_id = match authenticate(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let device_code = format!("dc-{}", uuid::Uuid::new_v4().simple());
    let user_code = {
        let letters = b"BCDFGHJKLMNPQRSTVWXZ";
        let random = uuid::Uuid::new_v4();
        let pick: String = random.as_bytes()[..8]
            .iter()
            .map(|b| char::from(letters[usize::from(*b) % letters.len()]))
            .collect();
        format!("{}-{}", &pick[..4], &pick[4..])
    };
    state.devices.lock().unwrap().insert(
        device_code.clone(),
        Device {
            client_id,
            user_code: user_code.clone(),
            scope: form.scope.unwrap_or_default(),
            approved_by: None,
        },
    );
    (
        [("cache-control", "no-store")],
        Json(json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": format!("{ISSUER}/device"),
            "expires_in": 600,
            "interval": 5,
        })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct DeviceApproval {
    user_code: String,
}

/// Where a signed-in user (her access token) enters the code her device shows, approving
/// it.
async fn device_approval(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DeviceApproval>,
) -> Response {
    let Some(user) = bearer_subject(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let mut devices = state.devices.lock().unwrap();
    match devices
        .values_mut()
        .find(|d| d.user_code == form.user_code && d.approved_by.is_none())
    {
        Some(device) => {
            device.approved_by = Some(user);
            Html("device approved").into_response()
        }
        None => (StatusCode::BAD_REQUEST, Html("unknown code")).into_response(),
    }
}

#[derive(Deserialize)]
struct BackchannelForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    login_hint: Option<String>,
    binding_message: Option<String>,
}

/// The CIBA backchannel authentication endpoint (CIBA Core §7, poll mode): a client asks
/// for a user's consent, which the user gives on her own device.
async fn backchannel_authentication(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<BackchannelForm>,
) -> Response {
    let client_id = match authenticate(
        &headers,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let subject = form.login_hint.unwrap_or_default();
    if user_scopes(&subject).is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "unknown_user_id", "no such user");
    }
    let auth_req_id = format!("ar-{}", uuid::Uuid::new_v4().simple());
    state.backchannel.lock().unwrap().insert(
        auth_req_id.clone(),
        Backchannel {
            client_id,
            subject,
            scope: form.scope.unwrap_or_default(),
            binding_message: form.binding_message.unwrap_or_default(),
            approved: false,
        },
    );
    (
        [("cache-control", "no-store")],
        Json(json!({ "auth_req_id": auth_req_id, "expires_in": 120, "interval": 5 })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct BackchannelApproval {
    binding_message: String,
}

/// Where a signed-in user (her access token) approves the request her phone shows.
async fn backchannel_approval(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<BackchannelApproval>,
) -> Response {
    let Some(user) = bearer_subject(&state, &headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let mut requests = state.backchannel.lock().unwrap();
    match requests
        .values_mut()
        .find(|r| r.subject == user && r.binding_message == form.binding_message && !r.approved)
    {
        Some(request) => {
            request.approved = true;
            Html("approved").into_response()
        }
        None => (StatusCode::BAD_REQUEST, Html("nothing to approve")).into_response(),
    }
}

/// The subject of the valid bearer token a request carries.
fn bearer_subject(state: &AppState, headers: &HeaderMap) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| verify(state, token))
        .and_then(|claims| claims["sub"].as_str().map(str::to_owned))
}

async fn login_page() -> Html<&'static str> {
    Html("<form method=post>user <input name=username> password <input name=password type=password></form>")
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

/// A login form: success redirects to the app, failure back to the form with an error.
async fn login(Form(form): Form<LoginForm>) -> Redirect {
    if user(&form.username, &form.password).is_some() {
        Redirect::to("/api/me")
    } else {
        Redirect::to("/login?error=invalid_credentials")
    }
}

#[derive(Deserialize)]
struct LogoutQuery {
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// The end-session endpoint (OpenID Connect RP-Initiated Logout): back to the client's
/// registered address, or refused.
async fn logout(Query(q): Query<LogoutQuery>) -> Response {
    match (
        q.client_id.as_deref(),
        q.post_logout_redirect_uri.as_deref(),
    ) {
        (Some("web"), Some(SIGNED_OUT)) => Redirect::to(&format!(
            "{SIGNED_OUT}?state={}",
            q.state.unwrap_or_default()
        ))
        .into_response(),
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "post_logout_redirect_uri is not registered for this client",
        ),
    }
}
