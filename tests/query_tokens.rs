//! An access token sent in the URI query (RFC 6750 §2.3, `?access_token=`) on a real Axum
//! server: recorded as the header's token would be, with `token.sent_in: "query"` and a
//! warning, never believed when sent twice or beside an `Authorization` field, never taken
//! by enforcement, and never written in the clear in any format.

mod support;

use axum::{routing::get, Router};
use jsonwebtoken::Algorithm;
use oauth_audit::format::EventFormat;
use oauth_audit::token::{RevokedTokens, TokenFingerprint, TokenInspector};
use oauth_audit::writer::MemoryWriter;
use oauth_audit::{AuditLayer, AuditedToken, RequiredScopes};
use serde_json::{json, Value};
use support::keys::now;
use support::{client, events, memory_auditor, serve};

fn hmac_inspector() -> TokenInspector {
    TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, support::keys::HS256_SECRET)
        .build()
        .unwrap()
}

fn signed(subject: &str) -> String {
    support::keys::hs256(&json!({
        "sub": subject, "client_id": "web", "scope": "orders:read profile",
        "exp": now() + 600
    }))
}

/// An app with an audit-only route `/data` (answering whether the handler was handed a
/// token) and a route `/orders` that requires `orders:read`, behind a verifying layer.
async fn app(revoked: RevokedTokens) -> (std::net::SocketAddr, MemoryWriter) {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(hmac_inspector())
        .revoked_tokens(revoked)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/data",
            get(|token: Option<AuditedToken>| async move {
                if token.is_some() {
                    "handed a token"
                } else {
                    "no token"
                }
            }),
        )
        .route(
            "/orders",
            get(|| async { "orders" }).route_layer(RequiredScopes::all(["orders:read"]).enforce()),
        )
        .layer(layer);
    (serve(app).await, memory)
}

/// GETs `url`, with `Authorization: Bearer` when a token is given; the status, the
/// `WWW-Authenticate` value and the body, read to its end (the event is emitted then).
async fn fetch(url: String, bearer: Option<&str>) -> (u16, Option<String>, String) {
    let mut request = client().get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, response.text().await.unwrap())
}

/// The event in schema v1, ECS and OCSF, each as JSON text.
fn every_format(memory: &MemoryWriter) -> Vec<String> {
    let event = memory.events().pop().unwrap();
    [EventFormat::OAuthAudit, EventFormat::Ecs, EventFormat::Ocsf]
        .into_iter()
        .map(|format| {
            let mut buf = Vec::new();
            format.write(&mut buf, &event).unwrap();
            String::from_utf8(buf).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_valid_token_in_the_query_names_its_holder_with_a_warning() {
    let (addr, memory) = app(RevokedTokens::new()).await;
    let token = signed("alice");
    // Percent-encoded as a form value may be: the dots escaped.
    let encoded = token.replace('.', "%2E");
    let (status, _, body) = fetch(
        format!("http://{addr}/data?page=2&access_token={encoded}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "no token"),
        "never handed over"
    );
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["kind"], "ResourceAccessed");
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["actor"]["client_id"], "web");
    assert_eq!(e["scopes"]["granted"], json!(["orders:read", "profile"]));
    assert_eq!(e["token"]["verdict"], "valid");
    assert_eq!(e["token"]["sent_in"], "query");
    assert_eq!(
        e["token"]["fingerprint"],
        TokenFingerprint::of(&token).to_string(),
        "the decoded token's fingerprint"
    );
    assert_eq!(e["severity"], "warning", "RFC 6750 §2.3: SHOULD NOT");

    let formats = every_format(&memory);
    for text in &formats {
        for secret in [&token, &encoded] {
            assert!(!text.contains(secret.as_str()), "token in {text}");
        }
        assert!(!text.contains("page=2"), "query string in {text}");
    }
    let ecs: Value = serde_json::from_str(&formats[1]).unwrap();
    assert_eq!(ecs["oauth"]["token"]["sent_in"], "query");
    let ocsf: Value = serde_json::from_str(&formats[2]).unwrap();
    assert_eq!(ocsf["unmapped"]["token"]["sent_in"], "query");

    // The header's token, for comparison: the same fingerprint, no `sent_in`, no warning.
    let query_fingerprint = e["token"]["fingerprint"].clone();
    memory.clear();
    fetch(format!("http://{addr}/data"), Some(&token)).await;
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["token"]["fingerprint"], query_fingerprint);
    assert!(e["token"].get("sent_in").is_none(), "{e}");
    assert_eq!(e["severity"], "info");
}

#[tokio::test]
async fn a_revoked_token_in_the_query_is_still_revoked() {
    let revoked = RevokedTokens::new();
    let token = signed("alice");
    revoked.insert(TokenFingerprint::of(&token));
    let (addr, memory) = app(revoked).await;
    fetch(format!("http://{addr}/data?access_token={token}"), None).await;
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["token"]["verdict"], "revoked");
    assert_eq!(e["token"]["sent_in"], "query");
    assert_eq!(e["actor"]["kind"], "anonymous");
    assert_eq!(e["error"]["code"], "revoked");
    assert_eq!(e["severity"], "warning");
}

#[tokio::test]
async fn with_an_authorization_header_the_headers_token_is_recorded() {
    let (addr, memory) = app(RevokedTokens::new()).await;
    let (alice, mallory) = (signed("alice"), signed("mallory"));
    let (status, _, body) = fetch(
        format!("http://{addr}/data?access_token={mallory}"),
        Some(&alice),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "handed a token"));
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(
        e["token"]["fingerprint"],
        TokenFingerprint::of(&alice).to_string()
    );
    assert!(e["token"].get("sent_in").is_none(), "{e}");
    assert!(!e.to_string().contains(&mallory));

    // Any `Authorization` field, of any scheme, leaves the query unread.
    memory.clear();
    let response = client()
        .get(format!("http://{addr}/data?access_token={mallory}"))
        .basic_auth("user", Some("password"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "no token");
    let e = &events(&memory, 1).await[0];
    assert!(e.get("token").is_none(), "{e}");
    assert_eq!(e["severity"], "info");
}

#[tokio::test]
async fn a_token_sent_twice_in_the_query_is_malformed() {
    let (addr, memory) = app(RevokedTokens::new()).await;
    let (alice, mallory) = (signed("alice"), signed("mallory"));
    fetch(
        format!("http://{addr}/data?access_token={alice}&access_token={mallory}"),
        None,
    )
    .await;
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["token"]["verdict"], "malformed");
    assert_eq!(e["token"]["sent_in"], "query");
    assert_eq!(
        e["token"]["fingerprint"],
        TokenFingerprint::of(&alice).to_string(),
        "the first value, as a server reading the first takes it"
    );
    assert_eq!(e["actor"]["kind"], "anonymous");
    assert!(e["actor"].get("subject").is_none());
    assert_eq!(e["error"]["code"], "malformed");
    assert_eq!(
        e["error"]["description"],
        "access_token sent more than once in the query"
    );
    assert_eq!(e["severity"], "warning");
    for text in every_format(&memory) {
        assert!(!text.contains(&alice) && !text.contains(&mallory), "{text}");
    }
}

#[tokio::test]
async fn an_enforcing_route_refuses_a_query_token_and_the_refusal_names_its_holder() {
    let (addr, memory) = app(RevokedTokens::new()).await;
    let token = signed("alice");
    let (status, challenge, _) =
        fetch(format!("http://{addr}/orders?access_token={token}"), None).await;
    // Refused as a request without a token: RFC 6750 §3.1 has no error code for a client
    // that used a method the server does not support.
    assert_eq!(status, 401);
    assert_eq!(challenge.as_deref(), Some("Bearer"));
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["kind"], "AccessDenied");
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["token"]["verdict"], "valid");
    assert_eq!(e["token"]["sent_in"], "query");
    assert_eq!(
        e["token"]["fingerprint"],
        TokenFingerprint::of(&token).to_string()
    );
    assert_eq!(e["error"]["code"], "unauthorized");
    assert!(
        e["error"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("URI query")),
        "{e}"
    );
    assert_eq!(e["severity"], "warning");
    assert!(!e.to_string().contains(&token));

    // The same token in the header is served.
    memory.clear();
    let (status, _, _) = fetch(format!("http://{addr}/orders"), Some(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_escaped_name_or_a_semicolon_does_not_hide_the_token() {
    let (addr, memory) = app(RevokedTokens::new()).await;
    let token = signed("alice");
    for query in [
        format!("access%5Ftoken={token}"),
        format!("page=2;access_token={token}"),
    ] {
        memory.clear();
        let (_, _, body) = fetch(format!("http://{addr}/data?{query}"), None).await;
        assert_eq!(body, "no token");
        let e = &events(&memory, 1).await[0];
        assert_eq!(e["token"]["sent_in"], "query", "{query}");
        assert_eq!(e["actor"]["subject"], "alice", "{query}");
        assert_eq!(e["severity"], "warning", "{query}");
        assert!(!e.to_string().contains(&token), "{e}");
    }
}

#[tokio::test]
async fn a_query_without_an_access_token_is_a_request_without_a_token() {
    let (addr, memory) = app(RevokedTokens::new()).await;
    for query in [
        "page=2",
        "access_token=",
        "ACCESS_TOKEN=abcdefgh",
        "q=access_token",
    ] {
        memory.clear();
        let (status, _, _) = fetch(format!("http://{addr}/data?{query}"), None).await;
        assert_eq!(status, 200);
        let e = &events(&memory, 1).await[0];
        assert!(e.get("token").is_none(), "{query}: {e}");
        assert_eq!(e["actor"]["kind"], "anonymous");
        assert_eq!(e["severity"], "info", "{query}");
    }
}

#[tokio::test]
async fn an_opaque_token_in_the_query_is_not_resolved() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let resolver = oauth_audit::token::CachedResolver::new(move |_token: String| {
        counter.fetch_add(1, Ordering::SeqCst);
        async move {
            Some(oauth_audit::token::TokenClaims::from_json(&json!({
                "active": true, "sub": "alice", "scope": "orders:read", "exp": now() + 600
            })))
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
    let opaque = "2YotnFZFEjr1zCsicMWpAA";
    let (status, _, _) = fetch(format!("http://{addr}/orders?access_token={opaque}"), None).await;
    assert_eq!(status, 401);
    let e = &events(&memory, 1).await[0];
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "never handed to the resolver"
    );
    assert_eq!(e["token"]["sent_in"], "query");
    assert_eq!(e["token"]["format"], "opaque");
    assert_eq!(
        e["token"]["fingerprint"],
        TokenFingerprint::of(opaque).to_string()
    );
    assert!(e["actor"].get("subject").is_none(), "{e}");
    assert!(!e.to_string().contains(opaque), "{e}");

    // The same token in the header is resolved and served.
    memory.clear();
    let (status, _, _) = fetch(format!("http://{addr}/orders"), Some(opaque)).await;
    assert_eq!(status, 200);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
}
