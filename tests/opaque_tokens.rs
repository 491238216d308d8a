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

/// Opaque tokens may hold dots: Google's access tokens begin `ya29.`, ORY Hydra's are
/// `ory_at_<key>.<signature>`. They are resolved like any opaque token, not judged as
/// broken JWTs.
#[tokio::test]
async fn opaque_tokens_with_dots_are_resolved_not_malformed() {
    const GOOGLE: &str = "ya29.a0AfB_byC3x-Q1Xk9ZrT5mN2pL8vW4eH7jU6iO0sD";
    const HYDRA: &str = "ory_at_8hWq2kLm9Zx3Vb7Nc5Rt1Yp4Ue6Io0Aa.Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz";
    let resolver = CachedResolver::new(|token: String| async move {
        [GOOGLE, HYDRA].contains(&token.as_str()).then(|| {
            TokenClaims::from_json(&json!({"active": true, "sub": "alice",
                "scope": "orders:read", "exp": 4_000_000_000u64}))
        })
    });
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(
            oauth_audit::token::TokenInspector::builder()
                .hmac_secret(
                    oauth_audit::token::Algorithm::HS256,
                    b"a-32-byte-long-secret-for-hs256!",
                )
                .build()
                .unwrap(),
        )
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
    for token in [GOOGLE, HYDRA] {
        let res = http
            .get(format!("http://{addr}/orders"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{token}");
        res.bytes().await.unwrap();
    }
    let all = events(&memory, 2).await;
    for event in &all {
        assert_eq!(event["token"]["format"], "opaque", "{event}");
        assert_eq!(event["token"]["verdict"], "valid", "{event}");
        assert_eq!(event["actor"]["subject"], "alice", "{event}");
    }
}
