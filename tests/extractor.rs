//! `AuditedToken` as an Axum extractor: the handler sees the token as the layer judged it,
//! refuses a bad one itself on an audit-only route, and gets a 401 challenge without one.
#![cfg(feature = "axum")]

mod support;

use axum::http::StatusCode;
use axum::{routing::get, Router};
use oauth_audit::token::{Algorithm, TokenInspector};
use oauth_audit::{AuditLayer, AuditedToken};
use support::keys::{hs256, now, HS256_SECRET};
use support::{client, memory_auditor, serve};

async fn me(token: AuditedToken) -> Result<String, StatusCode> {
    if !token.is_valid() {
        return Err(StatusCode::FORBIDDEN);
    }
    Ok(token.0.claims.subject.clone().unwrap_or_default())
}

async fn maybe(token: Option<AuditedToken>) -> String {
    match token {
        Some(token) => format!("verdict {}", token.0.verdict.as_str()),
        None => "anonymous".into(),
    }
}

#[tokio::test]
async fn handlers_read_the_layers_verdict() {
    let (auditor, _memory) = memory_auditor();
    let inspector = TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, HS256_SECRET)
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(inspector)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(me))
        .route("/maybe", get(maybe))
        .layer(layer);
    let addr = serve(app).await;
    let http = client();
    let valid = hs256(&serde_json::json!({"sub": "alice", "iat": now(), "exp": now() + 60}));
    let expired =
        hs256(&serde_json::json!({"sub": "mallory", "iat": now() - 600, "exp": now() - 300}));

    let response = http
        .get(format!("http://{addr}/me"))
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "alice");
    let response = http
        .get(format!("http://{addr}/me"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        403,
        "the handler refused the expired token"
    );
    let response = http.get(format!("http://{addr}/me")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let text = |r: reqwest::Response| async move { r.text().await.unwrap() };
    let anonymous = http
        .get(format!("http://{addr}/maybe"))
        .send()
        .await
        .unwrap();
    assert_eq!(text(anonymous).await, "anonymous");
    let expired = http
        .get(format!("http://{addr}/maybe"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(text(expired).await, "verdict expired");
}
