//! One canonical reading of the request target: OAuth endpoints found under every spelling a
//! server may accept, and enforcing `RequiredScopes` refusing method overrides. Tower-http
//! shape: the layers around a `service_fn`, one request each with `oneshot`.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use oauth_audit::{AuditLayer, RequestBody, RequiredScopes};
use support::{events, memory_auditor};
use tower::{service_fn, ServiceBuilder, ServiceExt};

const TOKEN_RESPONSE: &str =
    r#"{"access_token":"at-secret","token_type":"Bearer","expires_in":60,"scope":"a"}"#;

#[tokio::test]
async fn every_spelling_of_the_token_endpoint_is_a_token_event() {
    let spellings = [
        "/token/", "//token", "/%74oken", "/Token", "/token;x", "/./token",
    ];
    let (auditor, memory) = memory_auditor();
    for path in spellings {
        let svc = ServiceBuilder::new()
            .layer(AuditLayer::new(auditor.clone()))
            .service(service_fn(
                |req: Request<RequestBody<Full<Bytes>>>| async move {
                    // The handler reads the body, as a real token endpoint does.
                    let _ = req.into_body().collect().await;
                    let mut response = Response::new(Full::new(Bytes::from(TOKEN_RESPONSE)));
                    response
                        .headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(response)
                },
            ));
        let request = Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(
                "grant_type=client_credentials&client_id=svc&client_secret=s3cret",
            )))
            .unwrap();
        let response = svc.oneshot(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let events = events(&memory, spellings.len()).await;
    for path in spellings {
        let event = events
            .iter()
            .find(|e| e["http"]["path"] == path)
            .unwrap_or_else(|| panic!("no event for {path}: {events:#?}"));
        assert_eq!(event["kind"], "AccessTokenIssued", "{path}: {event}");
        assert_eq!(event["actor"]["client_id"], "svc", "{path}");
    }
    let text = memory.json_lines();
    assert!(!text.contains("s3cret") && !text.contains("at-secret"));
    auditor.shutdown().await;
}

#[tokio::test]
async fn enforcing_required_scopes_refuses_method_overrides() {
    let (auditor, memory) = memory_auditor();
    let called = Arc::new(AtomicUsize::new(0));
    let requests = [
        Request::post("/orders/1").header("x-http-method-override", "DELETE"),
        Request::post("/orders/1").header("x-http-method", "delete"),
        Request::post("/orders/1").header("x-method-override", "PUT"),
        // The method headers of forward-auth setups (Authelia decides on them).
        Request::post("/orders/1").header("x-forwarded-method", "DELETE"),
        Request::post("/orders/1").header("x-original-method", "DELETE"),
        Request::post("/orders/1?_method=DELETE"),
        // Plack's `MethodOverride` parameter, and a parameter after a `;`, which Perl's
        // query parsers separate as `&`.
        Request::post("/orders/1?x-tunneled-method=DELETE"),
        Request::post("/orders/1?page=1;_method=DELETE"),
        // PHP ends a parameter's name at a NUL byte: Laravel reads `_method=DELETE`.
        Request::post("/orders/1?_method%00=DELETE"),
    ];
    let count = requests.len();
    for request in requests {
        let called = called.clone();
        let svc = ServiceBuilder::new()
            .layer(AuditLayer::new(auditor.clone()))
            .layer(RequiredScopes::all(["orders:write"]).enforce())
            .service(service_fn(
                move |_req: Request<RequestBody<Full<Bytes>>>| {
                    called.fetch_add(1, Ordering::SeqCst);
                    async { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done")))) }
                },
            ));
        let response = svc
            .oneshot(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        response.into_body().collect().await.unwrap();
    }
    assert_eq!(called.load(Ordering::SeqCst), 0, "the handler never runs");
    let events = events(&memory, count).await;
    for event in &events {
        assert_eq!(event["kind"], "AccessDenied", "{event}");
        assert_eq!(event["outcome"], "failure");
        assert_eq!(event["error"]["code"], "method_override");
        assert_eq!(
            event["scopes"]["required"],
            serde_json::json!(["orders:write"])
        );
    }
    // An override naming the request's own method is no override.
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor.clone()))
        .layer(RequiredScopes::all(["orders:write"]).enforce())
        .service(service_fn(
            |_req: Request<RequestBody<Full<Bytes>>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("done"))))
            },
        ));
    let request = Request::post("/orders/1")
        .header("x-http-method-override", "post")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = svc.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "no token: 401");
    auditor.shutdown().await;
}
