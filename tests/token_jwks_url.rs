//! JWKS fetched over HTTP from a local server: rotation, unknown-kid refresh, task shutdown.
#![cfg(feature = "jwks")]

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{extract::State, routing::get, Router};
use oauth_audit::token::{TokenInspector, Verdict, MIN_REFRESH_INTERVAL};
use serde_json::json;
use support::keys::{jwks, now, KeyPair};

#[derive(Clone, Default)]
struct Jwks {
    document: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_jwks(jwks: Jwks) -> String {
    let app = Router::new()
        .route(
            "/jwks",
            get(|State(j): State<Jwks>| async move {
                j.hits.fetch_add(1, Ordering::SeqCst);
                j.document.lock().unwrap().clone()
            }),
        )
        .with_state(jwks);
    let addr = support::serve(app).await;
    format!("http://{addr}/jwks")
}

#[tokio::test]
async fn rotation_is_found_through_an_unknown_kid_refresh() {
    let a = KeyPair::rsa("key-a");
    let b = KeyPair::rsa("key-b");
    let server = Jwks::default();
    *server.document.lock().unwrap() = jwks(&[&a]);
    let url = serve_jwks(server.clone()).await;

    let inspector = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(Duration::from_secs(3600))
        .min_refresh_interval(MIN_REFRESH_INTERVAL)
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), inspector.ready())
        .await
        .expect("first key set loaded");
    let claims = json!({"sub": "alice", "exp": now() + 600});
    let token_a = a.sign(&claims);
    let token_b = b.sign(&claims);
    assert_eq!(inspector.inspect(&token_a).verdict, Verdict::Valid);

    // The issuer rotates to key B. The periodic refresh is an hour away: only the unknown
    // key id can trigger the fetch.
    *server.document.lock().unwrap() = jwks(&[&b]);
    assert_eq!(inspector.inspect(&token_b).verdict, Verdict::UnknownKey);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inspector.inspect(&token_b).verdict != Verdict::Valid {
        assert!(
            tokio::time::Instant::now() < deadline,
            "refresh never happened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(inspector.inspect(&token_a).verdict, Verdict::UnknownKey);
}

#[tokio::test]
async fn unknown_key_ids_cannot_make_it_hammer_the_issuer() {
    let a = KeyPair::rsa("key-a");
    let server = Jwks::default();
    *server.document.lock().unwrap() = jwks(&[&a]);
    let url = serve_jwks(server.clone()).await;
    let inspector = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(Duration::from_secs(3600))
        .min_refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    inspector.ready().await;
    let stranger = KeyPair::es256("nobody");
    for i in 0..200 {
        let t = stranger.sign(&json!({"sub": format!("s{i}"), "exp": now() + 600}));
        assert_eq!(inspector.inspect(&t).verdict, Verdict::UnknownKey);
    }
    // One refresh for the first unknown key id, then none within the interval.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.hits.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_refresh_task_stops_with_the_inspector() {
    let a = KeyPair::rsa("key-a");
    let server = Jwks::default();
    *server.document.lock().unwrap() = jwks(&[&a]);
    let url = serve_jwks(server.clone()).await;
    let inspector = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(MIN_REFRESH_INTERVAL)
        .build()
        .unwrap();
    inspector.ready().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.hits.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(inspector);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after_drop = server.hits.load(Ordering::SeqCst);
    // Two refresh intervals: a task still running would have fetched again.
    tokio::time::sleep(2 * MIN_REFRESH_INTERVAL + Duration::from_millis(200)).await;
    assert_eq!(
        server.hits.load(Ordering::SeqCst),
        after_drop,
        "task still polling"
    );
}

#[tokio::test]
async fn an_unreachable_jwks_keeps_the_last_keys() {
    let a = KeyPair::rsa("key-a");
    let server = Jwks::default();
    *server.document.lock().unwrap() = jwks(&[&a]);
    let url = serve_jwks(server.clone()).await;
    let inspector = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(MIN_REFRESH_INTERVAL)
        .build()
        .unwrap();
    inspector.ready().await;
    *server.document.lock().unwrap() = "<html>maintenance</html>".into();
    let before = server.hits.load(Ordering::SeqCst);
    while server.hits.load(Ordering::SeqCst) < before + 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let token = a.sign(&json!({"sub": "alice", "exp": now() + 600}));
    assert_eq!(inspector.inspect(&token).verdict, Verdict::Valid);
    assert!(TokenInspector::builder()
        .jwks_url("ftp://x")
        .build()
        .is_err());
}

#[tokio::test]
async fn first_load_waits_for_a_slow_source_and_not_for_a_dead_one() {
    // A source that answers after 300 ms: checked at once, a valid token is unknown_key;
    // after `first_load` it is valid.
    let key = KeyPair::rsa("key-a");
    let document = jwks(&[&key]);
    let app = Router::new().route(
        "/jwks",
        get(move || {
            let document = document.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                document
            }
        }),
    );
    let url = format!("http://{}/jwks", support::serve(app).await);
    let slow = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let token = key.sign(&json!({"sub": "alice", "exp": now() + 600}));
    assert_eq!(slow.inspect(&token).verdict, Verdict::UnknownKey);
    tokio::time::timeout(Duration::from_secs(10), slow.first_load())
        .await
        .expect("the first load finishes");
    assert_eq!(slow.inspect(&token).verdict, Verdict::Valid);

    // Nothing listens at port 1: the first load fails at once, and `first_load` returns
    // while `ready` keeps waiting for keys.
    let dead = TokenInspector::builder()
        .jwks_url("http://127.0.0.1:1/jwks")
        .refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), dead.first_load())
        .await
        .expect("a failed first load counts");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), dead.ready())
            .await
            .is_err(),
        "ready means keys"
    );
    assert_eq!(dead.inspect(&token).verdict, Verdict::UnknownKey);
}

#[tokio::test]
async fn refreshing_an_unchanged_key_set_keeps_the_cached_verifications() {
    let a = KeyPair::rsa("key-a");
    let server = Jwks::default();
    *server.document.lock().unwrap() = jwks(&[&a]);
    let url = serve_jwks(server.clone()).await;
    let inspector = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(MIN_REFRESH_INTERVAL)
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), inspector.ready())
        .await
        .expect("first key set loaded");
    let token = a.sign(&json!({"sub": "alice", "exp": now() + 600}));
    assert_eq!(inspector.inspect(&token).verdict, Verdict::Valid);
    assert_eq!(inspector.verifications(), 1);
    // Two more fetches of the same document, each taken in whole.
    let before = server.hits.load(Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.hits.load(Ordering::SeqCst) < before + 3 {
        assert!(tokio::time::Instant::now() < deadline, "no refresh");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(inspector.inspect(&token).verdict, Verdict::Valid);
    assert_eq!(
        inspector.verifications(),
        1,
        "the same keys fetched again made the cached token be verified again"
    );
}

#[tokio::test]
async fn a_token_whose_refresh_was_put_off_asks_again_when_used_again() {
    let a = KeyPair::rsa("key-a");
    let b = KeyPair::rsa("key-b");
    let stray = KeyPair::rsa("key-x");
    let server = Jwks::default();
    *server.document.lock().unwrap() = jwks(&[&a]);
    let url = serve_jwks(server.clone()).await;
    let inspector = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(Duration::from_secs(3600))
        .min_refresh_interval(Duration::from_secs(2))
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), inspector.ready())
        .await
        .expect("first key set loaded");
    let claims = json!({"sub": "alice", "exp": now() + 600});
    let (token_b, token_x) = (b.sign(&claims), stray.sign(&claims));
    // A token with a key id nobody knows forces a refresh now.
    assert_eq!(inspector.inspect(&token_x).verdict, Verdict::UnknownKey);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.hits.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no forced refresh");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The issuer publishes key B just after: token B's own refresh is put off.
    *server.document.lock().unwrap() = jwks(&[&a, &b]);
    assert_eq!(inspector.inspect(&token_b).verdict, Verdict::UnknownKey);
    // Used again once the interval is over, it asks again, and is verified.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
    while inspector.inspect(&token_b).verdict != Verdict::Valid {
        assert!(
            tokio::time::Instant::now() < deadline,
            "token B stays unknown_key until the hourly refresh"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_key_set_longer_than_a_mebibyte_is_not_read() {
    // A real key followed by padding: read whole, its key would verify the token.
    let a = KeyPair::rsa("key-a");
    let mut document: serde_json::Value = serde_json::from_str(&jwks(&[&a])).unwrap();
    document["padding"] = json!("x".repeat(1024 * 1024));
    let server = Jwks::default();
    *server.document.lock().unwrap() = document.to_string();
    let url = serve_jwks(server.clone()).await;
    let inspector = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), inspector.first_load())
        .await
        .expect("the first load finishes");
    let token = a.sign(&json!({"sub": "alice", "exp": now() + 600}));
    assert_eq!(inspector.inspect(&token).verdict, Verdict::UnknownKey);

    // The same document without the padding is read.
    document.as_object_mut().unwrap().remove("padding");
    *server.document.lock().unwrap() = document.to_string();
    let fresh = TokenInspector::builder()
        .jwks_url(&url)
        .refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), fresh.first_load())
        .await
        .expect("the first load finishes");
    assert_eq!(fresh.inspect(&token).verdict, Verdict::Valid);
}
