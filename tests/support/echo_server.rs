//! An authorization server that quotes every request back in its free-text answers: the
//! raw form body, each decoded value, the `Authorization` header decoded, the query string.
//! Upstreams that do this exist (debug modes, verbose frameworks); the auditor must scrub
//! what they say before it records it.
//!
//! - `POST /token`, `/revoke`: `400 {"error":"invalid_grant","error_description": <echo>}`
//! - `POST /introspect`: `401` with `WWW-Authenticate: Bearer error="invalid_client",
//!   error_description="<echo>"` and a text body
//! - `GET /authorize`: `302` to `http://app.test/cb?error=invalid_request&error_description=<echo>`
//! - `GET /api/me`: `401` with `WWW-Authenticate: Bearer error="invalid_token",
//!   error_description="token <the bearer token> is not valid"`

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;

pub fn router() -> Router {
    Router::new()
        .route("/token", post(refuse))
        .route("/revoke", post(refuse))
        .route("/introspect", post(challenge))
        .route("/authorize", get(authorize))
        .route("/api/me", get(api))
}

/// Everything the request said, as a chatty server would quote it.
fn echo(headers: &HeaderMap, raw: &str) -> String {
    let mut out = format!("refused request {raw};");
    for (name, value) in form_urlencoded::parse(raw.as_bytes()) {
        out.push_str(&format!(" {name} was {value};"));
    }
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        out.push_str(&format!(" authorization {auth}"));
        if let Some(basic) = auth.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic)
                .unwrap_or_default();
            out.push_str(&format!(" = {}", String::from_utf8_lossy(&decoded)));
        }
    }
    for name in [header::COOKIE.as_str(), "dpop"] {
        for value in headers.get_all(name) {
            out.push_str(&format!(
                " {name} {}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
    }
    out
}

async fn refuse(headers: HeaderMap, body: Bytes) -> Response {
    let description = echo(&headers, &String::from_utf8_lossy(&body));
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_grant", "error_description": description})),
    )
        .into_response()
}

fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

async fn challenge(headers: HeaderMap, body: Bytes) -> Response {
    let description = echo(&headers, &String::from_utf8_lossy(&body));
    (
        StatusCode::UNAUTHORIZED,
        [
            (
                header::WWW_AUTHENTICATE,
                format!(
                    r#"Bearer error="invalid_client", error_description="{}""#,
                    quoted(&description)
                ),
            ),
            (header::CONTENT_TYPE, "text/plain".to_owned()),
        ],
        "no",
    )
        .into_response()
}

async fn authorize(headers: HeaderMap, uri: Uri) -> Response {
    let query = uri.query().unwrap_or_default();
    let description = format!("bad request /authorize?{query} {}", echo(&headers, query));
    let description: String = form_urlencoded::byte_serialize(description.as_bytes()).collect();
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("http://app.test/cb?error=invalid_request&error_description={description}"),
        )],
    )
        .into_response()
}

async fn api(headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            format!(
                r#"Bearer error="invalid_token", error_description="token {} is not valid""#,
                quoted(&token)
            ),
        )],
    )
        .into_response()
}
