//! Auditing only some routes, and scope requirements per method, with Axum's `route_layer`.
//!
//! ```text
//! cargo run --example route_layer
//! ```
//!
//! - The audit layer goes on the API router with `route_layer`, so `/health` and `/metrics`
//!   (merged after it) are not audited, and neither are paths no route matches (a 404 is not
//!   an API call). To audit unmatched paths too, use `.layer(..)` and `skip_paths` instead.
//! - Axum's `MethodRouter::route_layer` wraps every method added *before* it:
//!   `get(list).route_layer(read).post(create).route_layer(write)` makes `GET` require both
//!   scopes. Give each method its own requirement by routing the path once per method,
//!   each with its own `route_layer`, as below (Axum merges them into one route).

use axum::routing::{get, post};
use axum::Router;
use oauth_audit::jsonwebtoken::{encode, EncodingKey, Header};
use oauth_audit::token::{Algorithm, TokenInspector};
use oauth_audit::writer::{Auditor, MemoryWriter};
use oauth_audit::{AuditLayer, RequiredScopes};

const SECRET: &[u8] = b"an example secret of at least 32 bytes";

fn token(scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": "alice", "client_id": "web", "scope": scope, "iat": now, "exp": now + 300,
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build()?;
    let inspector = TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .build()?;
    let audit = AuditLayer::builder(auditor.clone())
        .token_inspector(inspector)
        .build()?;

    let api = Router::new()
        // One requirement per method: the path routed once for each.
        .route(
            "/orders",
            get(|| async { "[]" }).route_layer(RequiredScopes::all(["orders:read"]).enforce()),
        )
        .route(
            "/orders",
            post(|| async { "created" })
                .route_layer(RequiredScopes::all(["orders:write"]).enforce()),
        )
        // Only the API's routes are audited.
        .route_layer(audit);
    let app = api
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(|| async { "" }));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });

    let http = reqwest::Client::builder().no_proxy().build()?;
    let reader = token("orders:read");
    for (method, path, bearer) in [
        ("GET", "/orders", Some(&reader)), // 200: reading needs orders:read only
        ("POST", "/orders", Some(&reader)), // 403: writing needs orders:write
        ("GET", "/health", None),          // not audited
        ("GET", "/nowhere", None),         // 404, not audited: no route matched
    ] {
        let mut request = http.request(method.parse()?, format!("http://{addr}{path}"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        println!("{method} {path} -> {}", request.send().await?.status());
    }
    server.abort();
    auditor.shutdown().await;

    for event in memory.json() {
        println!(
            "audited: {} {} {} required {} ({})",
            event["http"]["method"].as_str().unwrap_or("?"),
            event["http"]["path"].as_str().unwrap_or("?"),
            event["http"]["status"],
            event["scopes"]["required"],
            event["kind"].as_str().unwrap_or("?"),
        );
    }
    Ok(())
}
