//! What the layer asks of the service it wraps: without a token resolver (`Direct`), any
//! service, `Clone` or not; with one (`Resolving`), a `Clone` service that runs after the
//! resolver answered.

mod support;

use std::convert::Infallible;
use std::future::Ready;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use oauth_audit::layer::{Direct, Resolving};
use oauth_audit::token::TokenClaims;
use oauth_audit::{AuditLayer, AuditService, AuditedToken, RequestBody};
use support::memory_auditor;
use tower::{service_fn, Layer, Service, ServiceBuilder, ServiceExt};

/// State a service owns and cannot share: not `Clone`.
struct Ledger {
    calls: Vec<String>,
}

/// A hand-written service over the ledger: not `Clone` either.
struct LedgerService(Ledger);

impl<B> Service<Request<RequestBody<B>>> for LedgerService {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody<B>>) -> Self::Future {
        self.0.calls.push(req.uri().path().to_owned());
        let status = if req.headers().contains_key(http::header::AUTHORIZATION) {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        let mut response = Response::new(format!("call {}", self.0.calls.len()));
        *response.status_mut() = status;
        std::future::ready(Ok(response))
    }
}

fn get(path: &str, token: Option<&str>) -> Request<String> {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(String::new()).unwrap()
}

async fn text(response: Response<impl http_body::Body<Error: std::fmt::Debug>>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn a_service_that_is_not_clone_is_audited_without_a_resolver() {
    let (auditor, memory) = memory_auditor();
    let mut service: AuditService<LedgerService, Direct> =
        AuditLayer::new(auditor.clone()).layer(LedgerService(Ledger { calls: Vec::new() }));

    let first = ServiceExt::<Request<String>>::ready(&mut service)
        .await
        .unwrap()
        .call(get("/api/orders", Some("opaque-token-1")))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(text(first).await, "call 1");
    // The same service answers the next request: its state went on.
    let second = ServiceExt::<Request<String>>::ready(&mut service)
        .await
        .unwrap()
        .call(get("/api/orders/7", None))
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(text(second).await, "call 2");
    assert_eq!(
        service.get_ref().0.calls,
        ["/api/orders", "/api/orders/7"],
        "the inner service was never cloned: one ledger saw both calls"
    );

    let events = memory.wait_for(2).await;
    assert_eq!(events.len(), 2);
    let json = memory.json();
    assert_eq!(json[0]["kind"], "ResourceAccessed");
    assert_eq!(json[0]["http"]["path"], "/api/orders");
    assert_eq!(json[0]["http"]["status"], 200);
    assert!(json[0]["token"]["fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    assert_eq!(json[1]["kind"], "AccessDenied");
    assert_eq!(json[1]["http"]["status"], 401);
    let written = memory.json_lines();
    assert!(!written.contains("opaque-token-1"));
}

#[tokio::test]
async fn service_fn_over_state_that_is_not_clone_is_audited() {
    let (auditor, memory) = memory_auditor();
    let mut ledger = Ledger { calls: Vec::new() };
    // Moves the ledger in: the closure, and so the service, is not `Clone`.
    let service = ServiceBuilder::new()
        .layer(AuditLayer::builder(auditor).build().unwrap())
        .service(service_fn(move |req: Request<RequestBody<String>>| {
            ledger.calls.push(req.uri().path().to_owned());
            let answer = format!("{} calls", ledger.calls.len());
            async move { Ok::<_, Infallible>(Response::new(answer)) }
        }));

    let response = service.oneshot(get("/api/ledger", None)).await.unwrap();
    assert_eq!(text(response).await, "1 calls");
    let events = memory.wait_for(1).await;
    assert_eq!(events.len(), 1);
    let json = memory.json();
    assert_eq!(json[0]["http"]["path"], "/api/ledger");
    assert_eq!(json[0]["http"]["method"], "GET");
}

#[tokio::test]
async fn a_resolving_layer_runs_a_clone_service_after_the_resolver_answered() {
    let (auditor, memory) = memory_auditor();
    let layer: AuditLayer<Resolving> = AuditLayer::builder(auditor)
        .token_resolver(|token: String| async move {
            (token == "opaque-alice").then(|| {
                TokenClaims::from_json(&serde_json::json!({
                    "sub": "alice", "client_id": "web", "scope": "orders:read",
                    "exp": 4_000_000_000u64
                }))
            })
        })
        .build()
        .unwrap();
    // Shared state behind an `Arc`: the service is `Clone`, as a resolving layer needs.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler_seen = seen.clone();
    let mut service = layer.layer(service_fn(move |req: Request<RequestBody<String>>| {
        let subject = req
            .extensions()
            .get::<AuditedToken>()
            .and_then(|token| token.0.claims.subject.clone());
        handler_seen.lock().unwrap().push(subject);
        async { Ok::<_, Infallible>(Response::new(String::from("ok"))) }
    }));

    for token in ["opaque-alice", "opaque-unknown"] {
        let response = ServiceExt::<Request<String>>::ready(&mut service)
            .await
            .unwrap()
            .call(get("/api/orders", Some(token)))
            .await
            .unwrap();
        assert_eq!(text(response).await, "ok");
    }
    assert_eq!(
        *seen.lock().unwrap(),
        [Some("alice".to_owned()), None],
        "the handler ran with the resolved claims"
    );
    memory.wait_for(2).await;
    let json = memory.json();
    assert_eq!(json[0]["token"]["verdict"], "valid");
    assert_eq!(json[0]["actor"]["subject"], "alice");
    assert_eq!(json[0]["actor"]["client_id"], "web");
    assert_eq!(json[1]["token"]["verdict"], "inactive");
    assert!(!memory.json_lines().contains("opaque-alice"));
}

/// Compile-level: which services each mode takes.
#[allow(dead_code)]
fn modes_compile() {
    fn direct<S>(layer: AuditLayer<Direct>, inner: S) -> impl Service<Request<String>>
    where
        S: Service<Request<RequestBody<String>>, Response = Response<String>>,
    {
        layer.layer(inner)
    }
    fn resolving<S>(layer: AuditLayer<Resolving>, inner: S) -> impl Service<Request<String>>
    where
        S: Service<Request<RequestBody<String>>, Response = Response<String>> + Clone,
    {
        layer.layer(inner)
    }
    // The conditional form keeps one type.
    fn conditional(auditor: oauth_audit::writer::Auditor, resolve: bool) -> AuditLayer<Resolving> {
        let mut builder = AuditLayer::builder(auditor).resolving();
        if resolve {
            builder = builder.token_resolver(|_: String| async { None::<TokenClaims> });
        }
        builder.build().unwrap()
    }
}
