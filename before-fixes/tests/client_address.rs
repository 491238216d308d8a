//! `source.ip` behind trusted proxies: only the header the operator chose is believed, read
//! from the right. A real Axum server on loopback; the client plays both the attacker and
//! the trusted proxy in front (127.0.0.1 is trusted), writing what such a proxy would add.
//!
//! PORTED to db9ff9d (before issue 10): `ClientIpSource` and `client_ip_source` did not
//! exist; the layer read every forwarding header it knew, Forwarded first. `source_of`
//! keeps its `source` argument (a name for the header the test *means* to believe) but can
//! only build the old layer, which is exactly the behaviour each case is about.

mod support;

use axum::{routing::get, Router};
use oauth_audit::AuditLayer;
use serde_json::{json, Value};
use support::{client, events, memory_auditor, serve};

/// One request through a layer trusting 127.0.0.0/8 and believing `source`.
async fn source_of(_source: &str, headers: &[(&str, &str)]) -> Value {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .trusted_proxies(["127.0.0.0/8"])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    let mut request = client().get(format!("http://{addr}/api"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    assert_eq!(request.send().await.unwrap().status(), 200);
    events(&memory, 1).await[0]["source"].clone()
}

#[tokio::test]
async fn a_clients_own_forwarded_header_does_not_choose_its_address() {
    // nginx in front appended the real client to X-Forwarded-For and passed the client's
    // Forwarded through: with Forwarded preferred, 6.6.6.6 was recorded.
    let source = source_of(
        "x-forwarded-for (the default)",
        &[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "198.51.100.2"),
        ],
    )
    .await;
    assert_eq!(source["ip"], "198.51.100.2");
    assert_eq!(source["forwarded_for"], json!(["198.51.100.2"]));
    assert_eq!(source["forwarded_headers"]["forwarded"], "for=6.6.6.6");

    let source = source_of(
        "x-forwarded-for (the default)",
        &[
            ("forwarded", "for=\"6.6.6.6"),
            ("x-forwarded-for", "198.51.100.2"),
        ],
    )
    .await;
    assert_eq!(source["ip"], "198.51.100.2");
}

#[tokio::test]
async fn an_unclosed_quote_in_a_chosen_forwarded_header_is_not_an_address() {
    let source = source_of("forwarded", &[("forwarded", "for=\"6.6.6.6")]).await;
    assert_eq!(source["ip"], "127.0.0.1", "the trusted peer, not 6.6.6.6");
    let source = source_of(
        "forwarded",
        &[
            ("forwarded", "for=\"6.6.6.6"),
            ("forwarded", "for=198.51.100.2"),
            ("x-forwarded-for", "7.7.7.7"),
        ],
    )
    .await;
    assert_eq!(source["ip"], "198.51.100.2");
    assert_eq!(source["forwarded_headers"]["x-forwarded-for"], "7.7.7.7");
}

#[tokio::test]
async fn forged_hops_cannot_push_the_proxys_hop_out_of_view() {
    // 32 forged hops, then the one the trusted proxy appended: reading the leftmost 32
    // recorded 6.6.6.32.
    let mut chain: Vec<String> = (1..=32).map(|i| format!("6.6.6.{i}")).collect();
    chain.push("198.51.100.2".into());
    let chain = chain.join(", ");
    let source = source_of("x-forwarded-for (the default)", &[("x-forwarded-for", &chain)]).await;
    assert_eq!(source["ip"], "198.51.100.2");
    let recorded = source["forwarded_for"].as_array().unwrap();
    assert_eq!(recorded.len(), 32, "the rightmost 32 hops are kept");
    assert_eq!(recorded[31], "198.51.100.2");
}

#[tokio::test]
async fn a_single_value_header_is_the_only_one_believed_when_chosen() {
    let cf = "cf-connecting-ip";
    let source = source_of(
        cf,
        &[
            ("cf-connecting-ip", "198.51.100.2"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=7.7.7.7"),
            ("x-real-ip", "8.8.8.8"),
        ],
    )
    .await;
    assert_eq!(source["ip"], "198.51.100.2");
    assert_eq!(source["forwarded_headers"]["x-real-ip"], "8.8.8.8");
    assert_eq!(
        source["forwarded_headers"]["cf-connecting-ip"],
        "198.51.100.2"
    );

    // Without it, the others are still not believed: the peer is the answer.
    let source = source_of(cf, &[("x-forwarded-for", "6.6.6.6")]).await;
    assert_eq!(source["ip"], "127.0.0.1");
}
