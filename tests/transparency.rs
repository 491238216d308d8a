//! The layer never changes what the handler and the client see, and never holds bodies up.
//! These tests use the layer around plain tower services (no Axum), as a Hyper user would.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Channel, Full};
use oauth_audit::writer::{Auditor, MemoryWriter};
use oauth_audit::{AuditLayer, PeerAddr, RequestBody};
use sha2::{Digest, Sha256};
use tower::{service_fn, ServiceBuilder, ServiceExt};

fn auditor() -> (Auditor, MemoryWriter) {
    let memory = MemoryWriter::new();
    (Auditor::new(memory.clone()), memory)
}

async fn wait_events(memory: &MemoryWriter, n: usize) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = memory.json();
        if events.len() >= n {
            return events;
        }
        assert!(tokio::time::Instant::now() < deadline, "{events:#?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn request_body_reaches_the_handler_byte_for_byte_and_streamed() {
    let (auditor, memory) = auditor();
    let (first_seen_tx, first_seen_rx) = tokio::sync::oneshot::channel::<()>();
    let first_seen_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(first_seen_tx)));
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor))
        .service(service_fn(
            move |req: Request<RequestBody<Channel<Bytes>>>| {
                let mut first_seen_tx = first_seen_tx.lock().unwrap().take();
                async move {
                    let mut body = req.into_body();
                    let mut hasher = Sha256::new();
                    let mut frames = 0;
                    while let Some(frame) = body.frame().await {
                        hasher.update(frame.unwrap().into_data().unwrap());
                        frames += 1;
                        if let Some(tx) = first_seen_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "{:x} {frames}",
                        hasher.finalize()
                    )))))
                }
            },
        ));

    let (mut tx, body) = Channel::<Bytes>::new(1);
    let chunks: Vec<Bytes> = (0..5u8)
        .map(|i| Bytes::from(vec![i; 10_000 + i as usize]))
        .collect();
    let expected = {
        let mut h = Sha256::new();
        chunks.iter().for_each(|c| h.update(c));
        format!("{:x} 5", h.finalize())
    };
    let sender = tokio::spawn(async move {
        let mut chunks = chunks.into_iter();
        tx.send_data(chunks.next().unwrap()).await.unwrap();
        // The rest is sent only once the handler has the first chunk: a layer that
        // buffered the body in front of the handler would never get here.
        tokio::time::timeout(Duration::from_secs(10), first_seen_rx)
            .await
            .expect("the handler saw the first chunk before the body ended")
            .unwrap();
        for chunk in chunks {
            tx.send_data(chunk).await.unwrap();
        }
    });
    let res = svc.oneshot(Request::new(body)).await.unwrap();
    sender.await.unwrap();
    let text = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(text, expected.as_bytes());
    assert_eq!(wait_events(&memory, 1).await[0]["http"]["status"], 200);
}

#[tokio::test]
async fn response_streams_and_the_event_waits_for_its_end() {
    let (auditor, memory) = auditor();
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let body = std::sync::Arc::new(std::sync::Mutex::new(Some(body)));
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor))
        .service(service_fn(
            move |_req: Request<RequestBody<Full<Bytes>>>| {
                let body = body.lock().unwrap().take().unwrap();
                async move { Ok::<_, Infallible>(Response::new(body)) }
            },
        ));
    let res = svc
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap();
    let mut body = res.into_body();

    tx.send_data(Bytes::from_static(b"first")).await.unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(
        frame.into_data().unwrap(),
        "first",
        "frames pass as they come"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(memory.events().is_empty(), "no event before the body ends");

    tx.send_data(Bytes::from_static(b"second")).await.unwrap();
    drop(tx);
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(rest, "second");
    let e = &wait_events(&memory, 1).await[0];
    assert_eq!(e["outcome"], "success");
    assert!(e["http"]["duration_ms"].as_f64().unwrap() >= 20.0);
}

#[tokio::test]
async fn dropped_response_is_recorded_as_unknown() {
    let (auditor, memory) = auditor();
    let (mut tx, body) = Channel::<Bytes>::new(1);
    let body = std::sync::Arc::new(std::sync::Mutex::new(Some(body)));
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor))
        .service(service_fn(
            move |_req: Request<RequestBody<Full<Bytes>>>| {
                let body = body.lock().unwrap().take().unwrap();
                async move { Ok::<_, Infallible>(Response::new(body)) }
            },
        ));
    let res = svc
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap();
    tx.send_data(Bytes::from_static(b"partial")).await.unwrap();
    drop(res); // the client went away mid-body
    let e = &wait_events(&memory, 1).await[0];
    assert_eq!(e["outcome"], "unknown");
    assert!(e["http"].get("status").is_none());
}

#[tokio::test]
async fn inner_errors_pass_through_and_are_recorded_as_unknown() {
    let (auditor, memory) = auditor();
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor))
        .service(service_fn(
            |_req: Request<RequestBody<Full<Bytes>>>| async {
                Err::<Response<Full<Bytes>>, _>("handler exploded")
            },
        ));
    let err = svc
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap_err();
    assert_eq!(err, "handler exploded");
    let e = &wait_events(&memory, 1).await[0];
    assert_eq!(e["outcome"], "unknown");
}

#[tokio::test]
async fn headers_status_and_empty_bodies_are_untouched() {
    let (auditor, memory) = auditor();
    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor))
        .service(service_fn(
            |req: Request<RequestBody<Full<Bytes>>>| async move {
                assert_eq!(
                    req.headers()["authorization"],
                    "Bearer eyJhbGciOiJIUzI1NiJ9.def.ghi"
                );
                assert_eq!(req.uri(), "/x?y=1");
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .header("x-handler", "yes")
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                )
            },
        ));
    let req = Request::builder()
        .uri("/x?y=1")
        .header("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.def.ghi")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["x-handler"], "yes");
    // An empty body may never be polled by the server: the event must not wait for it.
    let e = &wait_events(&memory, 1).await[0];
    assert_eq!(e["http"]["status"], 204);
    assert_eq!(e["token"]["verdict"], "malformed");
    // The handler served it: an access with a bad credential, not a denial.
    assert_eq!(e["kind"], "ResourceAccessed");
    assert_eq!(e["severity"], "warning");
    drop(res);
}

#[tokio::test]
async fn trusted_proxies_decide_the_client_address() {
    let memory = MemoryWriter::new();
    let auditor = Auditor::new(memory.clone());
    let layer = AuditLayer::builder(auditor)
        .trusted_proxies(["10.0.0.0/8"])
        .skip_paths(["/health", "/static/*"])
        .build()
        .unwrap();
    let svc = ServiceBuilder::new().layer(layer).service(service_fn(
        |_req: Request<RequestBody<Full<Bytes>>>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
        },
    ));
    let send = |peer: &str, xff: &str, path: &str| {
        let mut req = Request::builder()
            .uri(path)
            .header("x-forwarded-for", xff)
            .body(Full::new(Bytes::new()))
            .unwrap();
        req.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
        svc.clone().oneshot(req)
    };
    send("10.0.0.1:443", "6.6.6.6, 198.51.100.7, 10.0.0.9", "/a")
        .await
        .unwrap();
    send("203.0.113.5:5000", "198.51.100.7", "/b")
        .await
        .unwrap();
    for skipped in ["/health", "/static/app.js", "/static/./css/site.css"] {
        send("10.0.0.1:443", "198.51.100.7", skipped).await.unwrap();
    }
    // A path some server reads outside the prefix is audited.
    send("10.0.0.1:443", "198.51.100.7", "/static/../admin")
        .await
        .unwrap();
    let events = wait_events(&memory, 3).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(memory.events().len(), 3, "skipped paths are not audited");
    assert!(events
        .iter()
        .any(|e| e["http"]["path"] == "/static/../admin"));
    let a = events.iter().find(|e| e["http"]["path"] == "/a").unwrap();
    assert_eq!(a["source"]["ip"], "198.51.100.7");
    assert_eq!(
        a["source"]["forwarded_for"],
        serde_json::json!(["6.6.6.6", "198.51.100.7", "10.0.0.9"])
    );
    let b = events.iter().find(|e| e["http"]["path"] == "/b").unwrap();
    assert_eq!(
        b["source"]["ip"], "203.0.113.5",
        "an untrusted peer cannot spoof"
    );

    let err = AuditLayer::builder(Auditor::new(MemoryWriter::new()))
        .trusted_proxies(["10.0.0.0/33"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
}
