//! Opaque bearer tokens resolved through a real RFC 7662 introspection endpoint.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::{routing::get, routing::post, Form, Json, Router};
use oauth_audit::token::{CachedResolver, TokenClaims};
use oauth_audit::{AuditLayer, RequiredScopes};
use serde_json::json;
use support::{client, events, memory_auditor, serve};

#[derive(serde::Deserialize)]
struct Introspect {
    token: String,
}

#[tokio::test]
async fn opaque_tokens_get_their_claims_from_introspection() {
    // The authorization server's RFC 7662 endpoint.
    let introspections = Arc::new(AtomicUsize::new(0));
    let counter = introspections.clone();
    let as_app = Router::new().route(
        "/introspect",
        post(move |Form(form): Form<Introspect>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                Json(if form.token == "2YotnFZFEjr1zCsicMWpAA" {
                    json!({"active": true, "sub": "alice", "client_id": "web",
                           "scope": "orders:read", "exp": 4_000_000_000u64})
                } else {
                    json!({"active": false})
                })
            }
        }),
    );
    let as_addr = serve(as_app).await;

    let http = client();
    let url = format!("http://{as_addr}/introspect");
    let resolver = CachedResolver::new(move |token: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let answer: serde_json::Value = http
                .post(&url)
                .basic_auth("api", Some("api-secret"))
                .form(&[
                    ("token", token.as_str()),
                    ("token_type_hint", "access_token"),
                ])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (answer["active"] == true).then(|| TokenClaims::from_json(&answer))
        }
    });

    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_resolver(resolver)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async { "orders" }).route_layer(RequiredScopes::all(["orders:read"]).enforce()),
        )
        .layer(layer);
    let addr = serve(app).await;

    let http = client();
    for _ in 0..3 {
        let res = http
            .get(format!("http://{addr}/orders"))
            .bearer_auth("2YotnFZFEjr1zCsicMWpAA")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "resolved claims satisfy the enforced scope"
        );
    }
    let res = http
        .get(format!("http://{addr}/orders"))
        .bearer_auth("revoked-token-value")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        introspections.load(Ordering::SeqCst),
        2,
        "one lookup per token"
    );

    let all = events(&memory, 4).await;
    let ok = &all[0];
    assert_eq!(ok["kind"], "ResourceAccessed");
    assert_eq!(ok["actor"]["subject"], "alice");
    assert_eq!(ok["actor"]["client_id"], "web");
    assert_eq!(ok["token"]["format"], "opaque");
    assert_eq!(ok["token"]["verdict"], "valid");
    assert_eq!(ok["scopes"]["used"], json!(["orders:read"]));
    let denied = all.iter().find(|e| e["kind"] == "AccessDenied").unwrap();
    assert_eq!(denied["token"]["verdict"], "inactive");
    assert_eq!(denied["error"]["code"], "invalid_token");
    assert!(!memory.json_lines().contains("2YotnFZFEjr1zCsicMWpAA"));
}
