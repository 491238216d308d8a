//! A small but real OAuth 2.0 authorization server for the tests: token (every grant),
//! revocation, introspection, authorization and login endpoints, written with Axum.
//!
//! Clients: `web` (secret `web-secret`, redirect `http://app.test/cb`), `svc` (secret
//! `svc-secret`), `rs` (secret `rs-secret`, may introspect), `spa` and `tv` (public),
//! `jwt-client` (authenticates with any client assertion), `prop` (accepts any secret).
//! User: `alice` / `wonderland`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const REDIRECT: &str = "http://app.test/cb";

type Form = HashMap<String, String>;
/// code -> (client, PKCE challenge, scope)
type Codes = HashMap<String, (String, Option<String>, Option<String>)>;
/// access token -> (subject, client, scope)
type AccessTokens = HashMap<String, (Option<String>, String, Option<String>)>;

#[derive(Default)]
pub struct AuthServer {
    /// Token values to hand out next (tests that need to know them); else generated.
    pub next_tokens: Mutex<Vec<String>>,
    codes: Mutex<Codes>,
    refresh: Mutex<HashMap<String, (Option<String>, String)>>,
    access: Mutex<AccessTokens>,
    device_polls: Mutex<HashMap<String, u32>>,
    counter: Mutex<u64>,
}

pub fn unsigned_jwt(alg: &str, claims: Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(b"signature")
    )
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn jwt_claim(jwt: &str, claim: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get(claim)?.as_str().map(str::to_owned)
}

impl AuthServer {
    pub fn new() -> Arc<Self> {
        Arc::new(AuthServer::default())
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/token", post(token))
            .route("/revoke", post(revoke))
            .route("/introspect", post(introspect))
            .route("/authorize", get(authorize).post(authorize_post))
            .route("/device_authorization", post(device_authorization))
            .route("/login", post(login).get(|| async { "<form>login</form>" }))
            .route("/app", get(|| async { "app" }))
            .with_state(self.clone())
    }

    fn mint(&self, prefix: &str) -> String {
        if let Some(token) = self.next_tokens.lock().unwrap().pop() {
            return token;
        }
        let mut counter = self.counter.lock().unwrap();
        *counter += 1;
        format!("{prefix}-{}-{}", *counter, uuid::Uuid::now_v7().simple())
    }

    /// A JWT access token for `sub` (or an opaque one when `sub` is `None`).
    fn issue(&self, sub: Option<&str>, client: &str, scope: Option<&str>, jwt: bool) -> String {
        let token = if jwt {
            let jti = self.mint("jti");
            unsigned_jwt(
                "RS256",
                json!({"sub": sub, "client_id": client, "scope": scope, "jti": jti,
                       "iss": "http://as.test", "aud": "api", "exp": 4_000_000_000u64}),
            )
        } else {
            self.mint("at")
        };
        self.access.lock().unwrap().insert(
            token.clone(),
            (
                sub.map(str::to_owned),
                client.to_owned(),
                scope.map(str::to_owned),
            ),
        );
        token
    }

    fn refresh_for(&self, sub: Option<&str>, client: &str) -> String {
        let token = self.mint("rt");
        self.refresh
            .lock()
            .unwrap()
            .insert(token.clone(), (sub.map(str::to_owned), client.to_owned()));
        token
    }

    /// RFC 6749 §2.3 client authentication.
    #[allow(clippy::result_large_err)] // test code: the error is the response to send
    fn authenticate(&self, headers: &HeaderMap, form: &Form) -> Result<String, Response> {
        let invalid = || {
            let mut r = oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"as\""),
            );
            r
        };
        let (id, secret) = if let Some(basic) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic)
                .map_err(|_| invalid())?;
            let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
            let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
            let dec = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (dec(id), Some(dec(secret)))
        } else if form.contains_key("client_assertion") {
            let assertion = &form["client_assertion"];
            let id = jwt_claim(assertion, "sub").ok_or_else(invalid)?;
            return if id == "jwt-client" {
                Ok(id)
            } else {
                Err(invalid())
            };
        } else {
            let id = form.get("client_id").cloned().ok_or_else(invalid)?;
            (id, form.get("client_secret").cloned())
        };
        let ok = matches!(
            (id.as_str(), secret.as_deref()),
            ("web", Some("web-secret"))
                | ("svc", Some("svc-secret"))
                | ("rs", Some("rs-secret"))
                | ("spa" | "tv", None)
                | ("prop", Some(_))
        );
        if ok {
            Ok(id)
        } else {
            Err(invalid())
        }
    }

    fn token_response(&self, headers: &HeaderMap, form: &Form) -> Response {
        let client = match self.authenticate(headers, form) {
            Ok(client) => client,
            Err(response) => return response,
        };
        let scope = form.get("scope").map(String::as_str);
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = form.get("code").cloned().unwrap_or_default();
                let Some((code_client, challenge, scope)) =
                    self.codes.lock().unwrap().remove(&code)
                else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown code");
                };
                if code_client != client {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "client mismatch",
                    );
                }
                if let Some(challenge) = challenge {
                    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                    if b64url(&Sha256::digest(verifier.as_bytes())) != challenge {
                        return oauth_error(
                            StatusCode::BAD_REQUEST,
                            "invalid_grant",
                            "PKCE verification failed",
                        );
                    }
                }
                let at = self.issue(Some("alice"), &client, scope.as_deref(), true);
                let rt = self.refresh_for(Some("alice"), &client);
                let id_token = unsigned_jwt("RS256", json!({"sub": "alice", "aud": client}));
                Json(
                    json!({"access_token": at, "token_type": "Bearer", "expires_in": 600,
                            "refresh_token": rt, "id_token": id_token, "scope": scope}),
                )
                .into_response()
            }
            Some("refresh_token") => {
                let presented = form.get("refresh_token").cloned().unwrap_or_default();
                let Some((sub, rt_client)) = self.refresh.lock().unwrap().remove(&presented) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "refresh token revoked",
                    );
                };
                if rt_client != client {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "client mismatch",
                    );
                }
                let at = self.issue(sub.as_deref(), &client, scope, false);
                let rt = self.refresh_for(sub.as_deref(), &client);
                // Rotation; `scope` omitted: the requested scope was granted (§5.1).
                Json(json!({"access_token": at, "token_type": "Bearer", "expires_in": 300, "refresh_token": rt}))
                    .into_response()
            }
            Some("client_credentials") => {
                let at = self.issue(None, &client, scope, false);
                Json(json!({"access_token": at, "token_type": "Bearer", "expires_in": 3600}))
                    .into_response()
            }
            Some("password") => {
                let user = form.get("username").map(String::as_str);
                if user != Some("alice")
                    || form.get("password").map(String::as_str) != Some("wonderland")
                {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "bad\ncredentials",
                    );
                }
                let at = self.issue(Some("alice"), &client, scope, false);
                let rt = self.refresh_for(Some("alice"), &client);
                Json(
                    json!({"access_token": at, "token_type": "Bearer", "expires_in": 600,
                            "refresh_token": rt, "scope": scope}),
                )
                .into_response()
            }
            Some("urn:ietf:params:oauth:grant-type:device_code") => {
                let code = form.get("device_code").cloned().unwrap_or_default();
                let mut polls = self.device_polls.lock().unwrap();
                let Some(count) = polls.get_mut(&code) else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "expired_token",
                        "unknown device code",
                    );
                };
                *count += 1;
                match *count {
                    1..=3 => {
                        oauth_error(StatusCode::BAD_REQUEST, "authorization_pending", "waiting")
                    }
                    4 => oauth_error(StatusCode::BAD_REQUEST, "slow_down", "too fast"),
                    _ => {
                        polls.remove(&code);
                        drop(polls);
                        let at = self.issue(Some("alice"), &client, None, true);
                        Json(json!({"access_token": at, "token_type": "Bearer", "expires_in": 600}))
                            .into_response()
                    }
                }
            }
            Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
                let Some(subject) = form.get("subject_token").and_then(|t| jwt_claim(t, "sub"))
                else {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "subject_token",
                    );
                };
                let at = self.issue(Some(&subject), &client, scope, false);
                Json(json!({"access_token": at, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                            "token_type": "N_A", "expires_in": 60}))
                .into_response()
            }
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
                let Some(subject) = form.get("assertion").and_then(|t| jwt_claim(t, "sub")) else {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "assertion");
                };
                let at = self.issue(Some(&subject), &client, scope, false);
                Json(json!({"access_token": at, "token_type": "Bearer", "expires_in": 60}))
                    .into_response()
            }
            _ => oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "unknown grant",
            ),
        }
    }
}

/// Reads a body frame by frame, as it streams: bytes, number of frames, ms between the
/// first and the last frame.
async fn read_streamed(mut body: Body) -> (Bytes, usize, u128) {
    let mut data = Vec::new();
    let mut frames = 0;
    let mut first = None;
    let mut last = Instant::now();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Ok(chunk) = frame.into_data() {
            frames += 1;
            first.get_or_insert_with(Instant::now);
            last = Instant::now();
            data.extend_from_slice(&chunk);
        }
    }
    let gap = first.map_or(0, |f| last.duration_since(f).as_millis());
    (Bytes::from(data), frames, gap)
}

fn parse_form(bytes: &[u8]) -> Form {
    form_urlencoded::parse(bytes).into_owned().collect()
}

async fn token(State(server): State<Arc<AuthServer>>, headers: HeaderMap, body: Body) -> Response {
    let (bytes, frames, gap) = read_streamed(body).await;
    let mut response = server.token_response(&headers, &parse_form(&bytes));
    let h = response.headers_mut();
    h.insert(
        "x-body-sha256",
        hex::encode(Sha256::digest(&bytes)).parse().unwrap(),
    );
    h.insert("x-body-frames", frames.into());
    h.insert("x-body-gap-ms", HeaderValue::from(gap as u64));
    response
}

async fn revoke(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    if let Err(response) = server.authenticate(&headers, &form) {
        return response;
    }
    if let Some(token) = form.get("token") {
        server.access.lock().unwrap().remove(token);
        server.refresh.lock().unwrap().remove(token);
    }
    StatusCode::OK.into_response()
}

async fn introspect(
    State(server): State<Arc<AuthServer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = parse_form(&body);
    match server.authenticate(&headers, &form) {
        Ok(client) if client == "rs" || client == "web" || client == "prop" => {}
        Ok(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "may not introspect",
            )
        }
        Err(response) => return response,
    }
    let token = form.get("token").cloned().unwrap_or_default();
    match server.access.lock().unwrap().get(&token) {
        Some((sub, client, scope)) => Json(json!({"active": true, "sub": sub, "client_id": client,
            "scope": scope, "exp": 4_000_000_000u64, "token_type": "Bearer"}))
        .into_response(),
        None => Json(json!({"active": false})).into_response(),
    }
}

/// `session=alice` stands for a logged-in user; without it the login page is shown.
async fn authorize(State(server): State<Arc<AuthServer>>, Query(q): Query<Form>) -> Response {
    authorize_response(&server, &q)
}

async fn authorize_post(State(server): State<Arc<AuthServer>>, body: Bytes) -> Response {
    authorize_response(&server, &parse_form(&body))
}

fn authorize_response(server: &AuthServer, q: &Form) -> Response {
    let client = q.get("client_id").cloned().unwrap_or_default();
    let redirect = q
        .get("redirect_uri")
        .cloned()
        .unwrap_or_else(|| REDIRECT.to_owned());
    if !matches!(client.as_str(), "web" | "spa" | "prop") || redirect != REDIRECT {
        return (StatusCode::BAD_REQUEST, "invalid redirect_uri or client").into_response();
    }
    let state = q.get("state").cloned().unwrap_or_default();
    if q.get("session").map(String::as_str) != Some("alice") {
        return (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><form action=/login>login</form></html>",
        )
            .into_response();
    }
    let scope = q.get("scope").cloned();
    let location = if scope.as_deref().is_some_and(|s| s.contains("admin")) {
        format!("{redirect}?error=access_denied&error_description=user+refused&state={state}")
    } else if q.get("response_type").map(String::as_str) == Some("token") {
        let at = server.issue(Some("alice"), &client, scope.as_deref(), true);
        format!("{redirect}#access_token={at}&token_type=Bearer&expires_in=600&state={state}")
    } else {
        let code = server.mint("code");
        server.codes.lock().unwrap().insert(
            code.clone(),
            (client, q.get("code_challenge").cloned(), scope),
        );
        let code: String = form_urlencoded::byte_serialize(code.as_bytes()).collect();
        format!("{redirect}?code={code}&state={state}")
    };
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

async fn device_authorization(State(server): State<Arc<AuthServer>>, body: Bytes) -> Response {
    let form = parse_form(&body);
    let client = form.get("client_id").cloned().unwrap_or_default();
    let code = server.mint("dc");
    server.device_polls.lock().unwrap().insert(code.clone(), 0);
    Json(json!({"device_code": code, "user_code": "WDJB-MJHT", "verification_uri": "http://as.test/device",
                "expires_in": 600, "interval": 1, "client": client}))
    .into_response()
}

async fn login(body: Bytes) -> Response {
    let form = parse_form(&body);
    let ok = form.get("username").map(String::as_str) == Some("alice")
        && form.get("password").map(String::as_str) == Some("wonderland");
    let target = if ok { "/app" } else { "/login?error=invalid" };
    (StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response()
}
