//! `source.ip` behind trusted proxies: only the header the operator chose is believed, read
//! from the right. A real Axum server on loopback; the client plays both the attacker and
//! the trusted proxy in front (127.0.0.1 is trusted), writing what such a proxy would add.

mod support;

use axum::{routing::get, Router};
use oauth_audit::{AuditLayer, ClientIpSource};
use serde_json::{json, Value};
use support::{client, events, memory_auditor, serve};

/// One request through a layer trusting 127.0.0.0/8 and believing `source`.
async fn source_of(source: ClientIpSource, headers: &[(&str, &str)]) -> Value {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .trusted_proxies(["127.0.0.0/8"])
        .client_ip_source(source)
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
        ClientIpSource::default(),
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
        ClientIpSource::default(),
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
    let source = source_of(ClientIpSource::Forwarded, &[("forwarded", "for=\"6.6.6.6")]).await;
    assert_eq!(source["ip"], "127.0.0.1", "the trusted peer, not 6.6.6.6");
    let source = source_of(
        ClientIpSource::Forwarded,
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
async fn a_quote_left_open_cannot_hide_the_element_a_proxy_appended_to_its_line() {
    // The trusted proxy appended its element to the client's line, as one that writes
    // `Forwarded: $http_forwarded, for=$remote_addr` does (or as a hop that folds lines
    // does): the client's open quote swallowed it, and 6.6.6.6 was recorded; then the
    // trusted peer was, so a client hid its address behind the proxy's with one `"`.
    for (line, appended) in [
        ("for=6.6.6.6;x=\", for=198.51.100.2", "198.51.100.2"),
        (
            "for=6.6.6.6;x=\"\\, for=\"[2001:db8::1]\";proto=https",
            "2001:db8::1",
        ),
        (
            "for=6.6.6.6;x=\", for=7.7.7.7, for=198.51.100.2",
            "198.51.100.2",
        ),
    ] {
        let source = source_of(ClientIpSource::Forwarded, &[("forwarded", line)]).await;
        assert_eq!(
            source["ip"], appended,
            "the address the proxy appended, neither 6.6.6.6 nor the proxy: {line}"
        );
    }
    // A quote closed on the client's part leaves the appended element to be read.
    let source = source_of(
        ClientIpSource::Forwarded,
        &[("forwarded", "for=6.6.6.6;x=\"a,b\", for=198.51.100.2")],
    )
    .await;
    assert_eq!(source["ip"], "198.51.100.2");
}

#[tokio::test]
async fn forged_hops_cannot_push_the_proxys_hop_out_of_view() {
    // 32 forged hops, then the one the trusted proxy appended: reading the leftmost 32
    // recorded 6.6.6.32.
    let mut chain: Vec<String> = (1..=32).map(|i| format!("6.6.6.{i}")).collect();
    chain.push("198.51.100.2".into());
    let chain = chain.join(", ");
    let source = source_of(ClientIpSource::default(), &[("x-forwarded-for", &chain)]).await;
    assert_eq!(source["ip"], "198.51.100.2");
    let recorded = source["forwarded_for"].as_array().unwrap();
    assert_eq!(recorded.len(), 32, "the rightmost 32 hops are kept");
    assert_eq!(recorded[31], "198.51.100.2");
}

#[tokio::test]
async fn a_single_value_header_is_the_only_one_believed_when_chosen() {
    let cf: ClientIpSource = "cf-connecting-ip".parse().unwrap();
    let source = source_of(
        cf.clone(),
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

#[tokio::test]
async fn a_trusted_block_written_as_ipv4_mapped_ipv6_trusts_the_ipv4_proxies_it_names() {
    // Peers are compared as IPv4 (an IPv4-mapped peer too): `::ffff:127.0.0.0/104` must
    // name 127.0.0.0/8, else the proxy on 127.0.0.1 is not trusted and its header ignored.
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .trusted_proxies(["::ffff:127.0.0.0/104"])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    let answer = client()
        .get(format!("http://{addr}/api"))
        .header("x-forwarded-for", "6.6.6.6, 198.51.100.2, 127.0.0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let source = events(&memory, 1).await[0]["source"].clone();
    assert_eq!(source["ip"], "198.51.100.2", "{source}");
}
