//! A small OAuth 2.0 authorization server for the demo (not for production): registered
//! clients and users in memory, JWT access tokens (HS256), opaque rotating refresh tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::json;

pub const ISSUER: &str = "http://demo.local";
pub const AUDIENCE: &str = "demo-api";

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
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "client_id": client_id, "scope": scope,
        "jti": uuid::Uuid::new_v4().to_string(), "iat": iat, "exp": iat + ttl,
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("HS256 signing cannot fail")
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Client {
    secret: Option<&'static str>,
    scopes: &'static [&'static str],
}

fn client(id: &str) -> Option<Client> {
    match id {
        "reporting" => Some(Client {
            secret: Some("reporting-secret"),
            scopes: &["orders:read"],
        }),
        "web" => Some(Client {
            secret: Some("web-secret"),
            scopes: &["profile", "orders:read", "admin"],
        }),
        "cli" => Some(Client {
            secret: None,
            scopes: &["profile"],
        }),
        _ => None,
    }
}

fn user(username: &str, password: &str) -> Option<&'static [&'static str]> {
    match (username, password) {
        ("alice", "wonderland") => Some(&["profile", "orders:read"]),
        ("root", "correct horse battery staple") => Some(&["profile", "orders:read", "admin"]),
        _ => None,
    }
}

/// What a refresh token stands for. Refresh tokens rotate on every use.
struct Grant {
    subject: String,
    client_id: String,
    scope: String,
}

#[derive(Clone)]
pub struct AppState {
    keys: Keys,
    refresh: Arc<Mutex<HashMap<String, Grant>>>,
}

pub fn router(keys: Keys) -> Router {
    let state = AppState {
        keys,
        refresh: Arc::default(),
    };
    Router::new().route("/token", post(token)).with_state(state)
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
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// Client authentication: HTTP Basic, or the form (RFC 6749 §2.3.1).
fn authenticate(headers: &HeaderMap, form: &TokenForm) -> Result<String, Box<Response>> {
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
        .or_else(|| {
            form.client_id
                .clone()
                .map(|id| (id, form.client_secret.clone()))
        })
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
    if registered.secret != secret.as_deref() {
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
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let client_id = match authenticate(&headers, &form) {
        Ok(id) => id,
        Err(response) => return *response,
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
    let access_token = state
        .keys
        .access_token(&subject, &client_id, &scope, now(), 300);
    let mut body = json!({
        "access_token": access_token, "token_type": "Bearer", "expires_in": 300, "scope": scope,
    });
    if form.grant_type.as_deref() != Some("client_credentials") {
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
