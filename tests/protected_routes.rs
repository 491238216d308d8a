//! The layer on a real Axum server: context fields, kinds and scope usage.

mod support;

use axum::{http::StatusCode, routing::get, Router};
use oauth_audit::{AuditLayer, RequiredScopes};
use support::{client, events, memory_auditor, serve};

fn unsigned_jwt(claims: serde_json::Value) -> String {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"signature")
    )
}

#[tokio::test]
async fn records_every_context_field() {
    let (auditor, memory) = memory_auditor();
    let app = Router::new()
        .route("/api/users/{id}", get(|| async { "hello" }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;

    let token = unsigned_jwt(serde_json::json!({
        "sub": "alice", "client_id": "web", "scope": "profile orders:read",
        "jti": "j-1", "iss": "https://issuer", "aud": "api", "iat": 1_700_000_000, "exp": 4_000_000_000u64
    }));
    let res = client()
        .get(format!("http://{addr}/api/users/42?secret=query"))
        .bearer_auth(&token)
        .header("user-agent", "tests/1.0")
        .header("x-request-id", "req-123")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-forwarded-for", "6.6.6.6")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");

    let e = &events(&memory, 1).await[0];
    assert_eq!(e["schema"], "oauth-audit/1");
    assert_eq!(e["kind"], "ResourceAccessed");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["severity"], "info");
    assert_eq!(e["service"]["name"], "test-api");
    assert_eq!(e["service"]["instance"], "test-1");
    assert_eq!(e["request_id"], "req-123");
    assert_eq!(e["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(e["http"]["method"], "GET");
    assert_eq!(e["http"]["route"], "/api/users/{id}");
    assert_eq!(e["http"]["path"], "/api/users/42");
    assert_eq!(e["http"]["status"], 200);
    assert!(e["http"]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        e["source"]["ip"], "127.0.0.1",
        "untrusted peer: header ignored"
    );
    assert_eq!(e["source"]["forwarded_for"], serde_json::json!(["6.6.6.6"]));
    assert_eq!(e["source"]["user_agent"], "tests/1.0");
    // Nothing verified the token: its claims are its own words, kept apart from `actor`.
    assert_eq!(e["actor"]["kind"], "anonymous");
    assert!(e["actor"].get("subject").is_none());
    assert!(e["scopes"].get("granted").is_none());
    assert_eq!(e["token"]["unverified"]["subject"], "alice");
    assert_eq!(e["token"]["unverified"]["client_id"], "web");
    assert_eq!(
        e["token"]["unverified"]["scopes"],
        serde_json::json!(["profile", "orders:read"])
    );
    assert_eq!(e["token"]["format"], "jwt");
    assert_eq!(e["token"]["jti"], "j-1");
    assert_eq!(e["token"]["issuer"], "https://issuer");
    assert_eq!(e["token"]["audience"], serde_json::json!(["api"]));
    assert_eq!(e["token"]["issued_at"], "2023-11-14T22:13:20.000000Z");
    assert_eq!(e["token"]["verdict"], "unverified");
    let fp = e["token"]["fingerprint"].as_str().unwrap();
    assert!(fp.starts_with("sha256:") && fp.len() == 7 + 32);
    let time = e["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 27, "{time}");
    uuid::Uuid::parse_str(e["id"].as_str().unwrap()).unwrap();

    let raw = memory.json_lines();
    assert!(!raw.contains(&token), "raw token leaked");
    assert!(!raw.contains("secret=query"), "query string leaked");
}

#[tokio::test]
async fn two_traceparent_fields_name_no_trace() {
    // A request with two `traceparent` fields has no valid trace context (the W3C Trace
    // Context test suite's `test_traceparent_duplicated`); the first one was recorded, so a
    // client could join its request to a trace of its choosing while the service's tracer
    // (or a proxy that joins the fields) saw another or none.
    let (auditor, memory) = memory_auditor();
    let app = Router::new()
        .route("/api/{case}", get(|| async { "ok" }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;
    let first = "00-12345678901234567890123456789011-1234567890123456-01";
    let second = "00-12345678901234567890123456789012-1234567890123456-01";
    let cases = [
        ("two", vec![first, second]),
        ("same-twice", vec![first, first]),
        ("one", vec![first]),
    ];
    for (case, lines) in &cases {
        let mut request = client().get(format!("http://{addr}/api/{case}"));
        for line in lines {
            request = request.header("traceparent", *line);
        }
        let res = request.send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "ok");
    }
    let all = events(&memory, cases.len()).await;
    let trace_of = |case: &str| {
        let event = all
            .iter()
            .find(|e| e["http"]["path"] == format!("/api/{case}"))
            .unwrap();
        event.get("trace_id").cloned()
    };
    assert_eq!(trace_of("two"), None);
    assert_eq!(trace_of("same-twice"), None);
    assert_eq!(
        trace_of("one"),
        Some(serde_json::json!("12345678901234567890123456789011"))
    );
}

#[tokio::test]
async fn scope_usage_audit_only_and_enforcing() {
    let (auditor, memory) = memory_auditor();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async { "orders" })
                .route_layer(RequiredScopes::all(["orders:read", "orders:list"])),
        )
        .route(
            "/admin",
            get(|| async { "admin" }).route_layer(RequiredScopes::all(["admin"]).enforce()),
        )
        .route("/open", get(|| async { (StatusCode::FORBIDDEN, "no") }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;
    let token = unsigned_jwt(serde_json::json!({"sub": "bob", "scope": "orders:read"}));

    let res = client()
        .get(format!("http://{addr}/orders"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "audit-only mode never refuses");
    let res = client()
        .get(format!("http://{addr}/admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = client()
        .get(format!("http://{addr}/open"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let all = events(&memory, 3).await;
    let orders = all.iter().find(|e| e["http"]["path"] == "/orders").unwrap();
    assert_eq!(orders["kind"], "ResourceAccessed");
    assert_eq!(
        orders["scopes"]["required"],
        serde_json::json!(["orders:read", "orders:list"])
    );
    // An unverified token grants nothing, whatever its `scope` claim says.
    assert_eq!(orders["scopes"]["used"], serde_json::json!([]));
    assert_eq!(
        orders["scopes"]["missing"],
        serde_json::json!(["orders:read", "orders:list"])
    );
    assert_eq!(
        orders["severity"], "warning",
        "a missing scope deserves attention"
    );
    let admin = all.iter().find(|e| e["http"]["path"] == "/admin").unwrap();
    assert_eq!(admin["kind"], "AccessDenied");
    assert_eq!(admin["outcome"], "failure");
    assert_eq!(admin["severity"], "warning");
    assert_eq!(admin["actor"]["kind"], "anonymous");
    assert_eq!(admin["http"]["status"], 401);
    let open = all.iter().find(|e| e["http"]["path"] == "/open").unwrap();
    assert_eq!(open["kind"], "AccessDenied");
    assert_eq!(open["error"]["code"], "forbidden");
    assert!(open["scopes"].get("required").is_none());
}

/// `/api/echo`, which answers with the request id the handler was given.
fn echo_id() -> Router {
    use axum::Extension;
    use oauth_audit::RequestId;
    Router::new().route(
        "/api/echo",
        get(|Extension(id): Extension<RequestId>| async move { id.to_string() }),
    )
}

#[tokio::test]
async fn the_request_id_reaches_the_handler_and_the_response() {
    let (auditor, memory) = memory_auditor();
    let app = echo_id()
        .route(
            "/api/own",
            get(|| async { ([("x-request-id", "the-handler's")], "own") }),
        )
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;

    // Given: the same id to the handler, in the response and in the event.
    let res = client()
        .get(format!("http://{addr}/api/echo"))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "req-42");
    assert_eq!(res.text().await.unwrap(), "req-42");
    // Made: a UUIDv7, the same three times.
    let res = client()
        .get(format!("http://{addr}/api/echo"))
        .send()
        .await
        .unwrap();
    let header = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(uuid::Uuid::parse_str(&header).unwrap().get_version_num(), 7);
    assert_eq!(res.text().await.unwrap(), header);
    // A response that names its own id keeps it.
    let res = client()
        .get(format!("http://{addr}/api/own"))
        .header("x-request-id", "req-43")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "the-handler's");
    let events = events(&memory, 3).await;
    assert_eq!(events[0]["request_id"], "req-42");
    assert_eq!(events[1]["request_id"], header.as_str());
    assert_eq!(events[2]["request_id"], "req-43");

    // Turned off: the response is left as the handler made it.
    let (auditor, _memory) = memory_auditor();
    let app = echo_id().layer(
        AuditLayer::builder(auditor)
            .request_id_header(false)
            .build()
            .unwrap(),
    );
    let addr = serve(app).await;
    let res = client()
        .get(format!("http://{addr}/api/echo"))
        .header("x-request-id", "req-44")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("x-request-id").is_none());
    assert_eq!(res.text().await.unwrap(), "req-44");
}

/// The id the handler saw, the one the response echoed and the one the event recorded,
/// for a request sending `sent` as its `x-request-id` fields through a layer so configured.
async fn request_ids(
    from: oauth_audit::RequestIdFrom,
    trusted: &[&str],
    sent: &[&str],
) -> [String; 3] {
    let (auditor, memory) = memory_auditor();
    let app = echo_id().layer(
        AuditLayer::builder(auditor)
            .trusted_proxies(trusted.iter().copied())
            .request_id_from(from)
            .build()
            .unwrap(),
    );
    let addr = serve(app).await;
    let request = sent.iter().fold(
        client().get(format!("http://{addr}/api/echo")),
        |request, id| request.header("x-request-id", *id),
    );
    let res = request.send().await.unwrap();
    let echoed = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let handler = res.text().await.unwrap();
    let event = events(&memory, 1).await[0]["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    [handler, echoed, event]
}

/// One generated id (a UUIDv7) everywhere the id goes.
fn generated(ids: &[String; 3]) {
    assert!(
        ids.iter().all(|id| id == &ids[0]),
        "one id everywhere: {ids:?}"
    );
    assert_eq!(
        uuid::Uuid::parse_str(&ids[0])
            .map(|id| id.get_version_num())
            .ok(),
        Some(7),
        "{ids:?}"
    );
}

/// `request_id_from`: a client's own `x-request-id` is taken from anyone by default, only
/// from a trusted proxy, or from nobody; a header not taken is replaced by a generated id,
/// everywhere the id goes (the event, the handler, the response).
#[tokio::test]
async fn whose_request_id_is_taken_is_configurable() {
    use oauth_audit::RequestIdFrom;

    let ids = |from, trusted| request_ids(from, trusted, &["client-chosen"]);
    let chosen = |ids: &[String; 3]| assert!(ids.iter().all(|id| id == "client-chosen"), "{ids:?}");

    // The test's client is the socket peer, on loopback.
    chosen(&ids(RequestIdFrom::AnyClient, &[]).await);
    chosen(&ids(RequestIdFrom::AnyClient, &["10.0.0.0/8"]).await);
    generated(&ids(RequestIdFrom::TrustedProxies, &[]).await);
    generated(&ids(RequestIdFrom::TrustedProxies, &["10.0.0.0/8"]).await);
    chosen(&ids(RequestIdFrom::TrustedProxies, &["127.0.0.1"]).await);
    generated(&ids(RequestIdFrom::Nobody, &["127.0.0.1"]).await);
}

/// A front proxy that adds its `X-Request-Id` after the one the client sent (rather than
/// replacing it) leaves two fields: the first, the client's, was taken, even when the id is
/// taken from trusted proxies only. A field sent twice was appended to, and neither line is
/// believed, as for a client address header.
#[tokio::test]
async fn a_request_id_sent_in_two_fields_is_not_taken() {
    use oauth_audit::RequestIdFrom;

    for from in [RequestIdFrom::TrustedProxies, RequestIdFrom::AnyClient] {
        generated(&request_ids(from, &["127.0.0.1"], &["client-chosen", "proxy-set"]).await);
    }
}

/// Records what each written event says, without keeping the event: the writer task then
/// holds each event alone and hands it back for reuse.
#[derive(Clone, Default)]
struct Written(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl oauth_audit::writer::AuditWriter for Written {
    fn name(&self) -> &str {
        "written"
    }

    async fn write(
        &mut self,
        batch: &[std::sync::Arc<oauth_audit::event::AuditEvent>],
    ) -> Result<(), oauth_audit::writer::WriteError> {
        let mut seen = self.0.lock().unwrap();
        for event in batch {
            seen.push(serde_json::to_value(&**event).unwrap());
        }
        Ok(())
    }
}

/// Written events go back to the request path for the next ones (`event/recycle.rs`): an
/// event made in the allocation of one before it says only what its own request did. Here
/// every request after the first few is made in a recycled allocation (the writer runs
/// between requests); a reset that missed a field would leave the token request's
/// `token`, `trace_id` or `source` in the anonymous request's event.
#[tokio::test]
async fn an_event_made_where_another_was_written_says_nothing_of_it() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    let written = Written::default();
    let auditor = oauth_audit::writer::Auditor::builder()
        .service_name("test-api")
        .writer(written.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api/orders", get(|| async { "orders" }))
        .layer(AuditLayer::new(auditor.clone()));
    let token = unsigned_jwt(serde_json::json!({
        "sub": "alice", "client_id": "web", "scope": "orders:read", "jti": "j-1"
    }));
    for i in 0..200 {
        let request = if i % 2 == 0 {
            Request::get("/api/orders?page=2")
                .header("authorization", format!("Bearer {token}"))
                .header("x-request-id", format!("req-{i}"))
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .header("user-agent", "tests/1.0")
                .body(Body::empty())
        } else {
            Request::post("/api/other").body(Body::empty())
        }
        .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        // The writer task runs on this thread: let it write and hand the event back.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }
    auditor.shutdown().await;

    let seen = written.0.lock().unwrap();
    assert_eq!(seen.len(), 200);
    let mut ids = std::collections::BTreeSet::new();
    for (i, e) in seen.iter().enumerate() {
        assert!(ids.insert(e["id"].as_str().unwrap().to_owned()), "{e}");
        if i % 2 == 0 {
            assert_eq!(e["request_id"], format!("req-{i}"));
            assert_eq!(e["http"]["path"], "/api/orders");
            assert_eq!(e["http"]["status"], 200);
            assert_eq!(e["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(e["token"]["jti"], "j-1");
            assert_eq!(e["token"]["unverified"]["subject"], "alice");
            assert_eq!(e["source"]["user_agent"], "tests/1.0");
        } else {
            // Only what an anonymous POST to an unknown route says.
            let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                [
                    "actor",
                    "error",
                    "http",
                    "id",
                    "kind",
                    "outcome",
                    "request_id",
                    "schema",
                    "service",
                    "severity",
                    "time"
                ],
                "{e}"
            );
            assert_eq!(e["actor"], serde_json::json!({"kind": "anonymous"}));
            assert_eq!(e["error"], serde_json::json!({"code": "not_found"}));
            assert_eq!(e["http"]["path"], "/api/other");
            assert_eq!(e["http"]["status"], 404);
            assert!(e["http"].get("route").is_none(), "{e}");
            assert_ne!(e["request_id"], format!("req-{}", i - 1));
        }
    }
}

/// A layer on a router nested in another (`Router::nest`): Axum hands the nested routes the
/// path without the prefix the outer router matched, and the layer read `/token` for
/// `/oauth/token` (a token request recorded as an anonymous resource access, under another
/// path) and `/health` for `/admin/health` (skipped, no event at all).
#[tokio::test]
async fn a_layer_on_a_nested_router_reads_the_path_the_client_sent() {
    use axum::routing::post;
    use oauth_audit::oauth::Endpoints;

    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .endpoints(Endpoints::builder().token("/oauth/token").build().unwrap())
        .skip_paths(["/health"])
        .build()
        .unwrap();
    let nested = Router::new()
        .route(
            "/token",
            // The handler reads the body, as a real token endpoint does.
            post(|_form: String| async {
                (
                    [("content-type", "application/json")],
                    r#"{"access_token":"at-1","token_type":"Bearer","expires_in":60}"#,
                )
            }),
        )
        .route("/health", get(|| async { "ok" }))
        .layer(layer);
    let app = Router::new()
        .nest("/oauth", nested.clone())
        .nest("/admin", nested);
    let addr = serve(app).await;
    let res = client()
        .post(format!("http://{addr}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=svc")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    let res = client()
        .get(format!("http://{addr}/admin/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    let all = events(&memory, 2).await;
    let token = all
        .iter()
        .find(|e| e["http"]["route"] == "/oauth/token")
        .unwrap();
    assert_eq!(token["http"]["path"], "/oauth/token", "{token}");
    assert_eq!(token["kind"], "AccessTokenIssued", "{token}");
    assert_eq!(token["actor"]["client_id"], "svc");
    let health = all
        .iter()
        .find(|e| e["http"]["route"] == "/admin/health")
        .unwrap();
    assert_eq!(health["http"]["path"], "/admin/health");
}

/// The handler a router nested in another runs is chosen by the path without the prefix, so
/// one router serves its token endpoint under every prefix it is mounted at (and under every
/// value of a prefix's parameter). Only the paths clients send were looked up: a token
/// request to the same handler under another prefix than the configured one got its token
/// issued while its event said an anonymous resource access, and no configuration could
/// name the token endpoint of a router nested at `/{tenant}`.
#[tokio::test]
async fn a_nested_routers_endpoint_is_recognised_under_every_prefix_it_is_served_at() {
    use axum::routing::post;
    use oauth_audit::oauth::Endpoints;

    let (auditor, memory) = memory_auditor();
    let layer = |token: &str| {
        AuditLayer::builder(auditor.clone())
            .endpoints(Endpoints::builder().token(token).build().unwrap())
            .build()
            .unwrap()
    };
    let token_router = || {
        Router::new().route(
            "/token",
            post(|_form: String| async {
                (
                    [("content-type", "application/json")],
                    r#"{"access_token":"at-1","token_type":"Bearer","expires_in":60}"#,
                )
            }),
        )
    };
    // One router, configured with the path clients send, mounted twice.
    let oauth = token_router().layer(layer("/oauth/token"));
    let app = Router::new()
        .nest("/oauth", oauth.clone())
        .nest("/admin", oauth)
        .nest("/{tenant}/sso", token_router().layer(layer("/token")));
    let addr = serve(app).await;
    for path in ["/oauth/token", "/admin/token", "/acme/sso/token"] {
        let res = client()
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=svc")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.bytes().await.unwrap();
    }
    let all = events(&memory, 3).await;
    for path in ["/oauth/token", "/admin/token", "/acme/sso/token"] {
        let e = all.iter().find(|e| e["http"]["path"] == path).unwrap();
        assert_eq!(e["kind"], "AccessTokenIssued", "{path}: {e}");
        assert_eq!(e["actor"]["client_id"], "svc", "{path}");
    }
}

/// The UserInfo endpoint of a router mounted at two prefixes, configured with the router's
/// own path, is named as such at both, as the router's other endpoints are found at both:
/// it was decided from the client's path alone, and the events lost `oauth.endpoint`.
#[tokio::test]
async fn a_nested_routers_userinfo_endpoint_is_named_under_every_prefix() {
    use oauth_audit::oauth::Endpoints;

    let (auditor, memory) = memory_auditor();
    let oauth = Router::new()
        .route("/userinfo", get(|| async { r#"{"sub":"alice"}"# }))
        .layer(
            AuditLayer::builder(auditor)
                .endpoints(Endpoints::builder().userinfo("/userinfo").build().unwrap())
                .build()
                .unwrap(),
        );
    let app = Router::new()
        .nest("/oauth", oauth.clone())
        .nest("/admin", oauth);
    let addr = serve(app).await;
    for path in ["/oauth/userinfo", "/admin/userinfo"] {
        let res = client()
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        res.bytes().await.unwrap();
    }
    let all = events(&memory, 2).await;
    for path in ["/oauth/userinfo", "/admin/userinfo"] {
        let e = all.iter().find(|e| e["http"]["path"] == path).unwrap();
        assert_eq!(e["oauth"]["endpoint"], "userinfo", "{path}: {e}");
    }
}
