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

/// Records what each written event says, without keeping the event: the writer task then
/// holds each event alone and hands it back for reuse.
#[derive(Clone, Default)]
struct Written(std::sync::Arc<std::sync::Mutex<Vec<Value>>>);

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

/// Routers under layers of one auditor that believe different headers: `X-Forwarded-For`
/// and `Forwarded` from 10.0.0.0/8, `X-Real-IP` from anywhere.
fn routers(auditor: &oauth_audit::writer::Auditor) -> Vec<Router> {
    let layer = |source: ClientIpSource, nets: &[&str]| {
        AuditLayer::builder(auditor.clone())
            .trusted_proxies(nets.iter().copied())
            .client_ip_source(source)
            .build()
            .unwrap()
    };
    vec![
        Router::new()
            .route("/api", get(|| async { "ok" }))
            .layer(layer(ClientIpSource::XForwardedFor, &["10.0.0.0/8"])),
        Router::new()
            .route("/api", get(|| async { "ok" }))
            .layer(layer(ClientIpSource::Forwarded, &["10.0.0.0/8"])),
        Router::new()
            .route("/api", get(|| async { "ok" }))
            .layer(layer("x-real-ip".parse().unwrap(), &["0.0.0.0/0", "::/0"])),
    ]
}

/// Headers of every kind a client or a chain of proxies sends: chains past the 32 hops
/// kept, several lines, bytes that are not UTF-8, names sent twice, or nothing at all.
fn header_sets() -> Vec<Vec<(&'static str, Vec<u8>)>> {
    let hops = |n: usize| {
        (0..n)
            .map(|i| format!("198.51.{}.{}", i / 250, i % 250))
            .collect::<Vec<_>>()
            .join(", ")
            .into_bytes()
    };
    vec![
        vec![],
        vec![("user-agent", b"agent-one/1.0".to_vec())],
        vec![
            ("user-agent", b"agent\xff\xfe-two \t(x)".to_vec()),
            ("x-forwarded-for", hops(100)),
            ("x-forwarded-for", b"203.0.113.50, 10.0.0.7".to_vec()),
            ("x-forwarded-host", b"two.example".to_vec()),
            ("x-forwarded-host", b"again.example".to_vec()),
            ("x-forwarded-proto", b"https".to_vec()),
        ],
        vec![
            (
                "forwarded",
                b"for=192.0.2.60;proto=https, for=\"[2001:db8::1]:443\"".to_vec(),
            ),
            ("x-real-ip", b"192.0.2.61".to_vec()),
            ("x-forwarded-port", b"8443".to_vec()),
        ],
        vec![
            ("x-forwarded-for", hops(33)),
            ("cf-connecting-ip", b"\x80\x81".to_vec()),
        ],
        vec![
            ("x-forwarded-for", b"".to_vec()),
            ("forwarded", b"for=\"unclosed, for=192.0.2.62".to_vec()),
            ("x-original-host", vec![b'h'; 400]),
        ],
        vec![
            ("x-real-ip", b"192.0.2.63".to_vec()),
            ("x-real-ip", b"192.0.2.64".to_vec()),
        ],
        vec![
            ("x-forwarded-for", hops(3)),
            ("user-agent", b"agent-three".to_vec()),
        ],
    ]
}

/// An event of the application's own, with a source holding everything a request's might
/// and more, in any case and script: once written, its buffers take requests' sources.
fn emitted(auditor: &oauth_audit::writer::Auditor, i: usize) -> oauth_audit::event::AuditEvent {
    use oauth_audit::event::{AuditEvent, AutonomousSystem, EventKind, Outcome, Source, Timestamp};
    let mut event = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    let mut source = Source::default();
    source.r#as = Some(AutonomousSystem::new(
        64_500,
        Some(format!("emitted-as-{i}")),
    ));
    source.forwarded_for = (0..100)
        .map(|hop| format!("emitted-hop-{i}-{hop}"))
        .collect();
    source.forwarded_headers = [
        "x-forwarded-host",
        "X-Forwarded-Proto",
        "x-real-ip",
        "x-forwarded-for",
        "forwarded",
        "höst",
        "x-forwarded-port",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), format!("emitted-header-{i}")))
    .collect();
    source.geo = Some(Box::new(oauth_audit::event::Geo::at(48.85, 2.35)));
    source.ip = Some("192.0.2.250".parse().unwrap());
    source.user_agent = Some(format!("emitted-agent-{i}"));
    event.source = Some(source);
    event
}

/// A sequence of requests through layers that believe different headers, one auditor for
/// all, with events of the application's own written in between: each request's `source`
/// is the one it has when no event is reused (an auditor whose writer keeps every event),
/// nothing of an event written before it.
#[tokio::test]
async fn a_requests_source_holds_nothing_of_the_events_written_before_it() {
    use axum::body::Body;
    use axum::http::{HeaderName, HeaderValue, Request};
    use tower::ServiceExt as _;

    let written = Written::default();
    let auditor = oauth_audit::writer::Auditor::builder()
        .service_name("test-api")
        .writer(written.clone())
        .build()
        .unwrap();
    let (fresh_auditor, kept) = memory_auditor();
    let reused = routers(&auditor);
    let fresh = routers(&fresh_auditor);
    let sets = header_sets();
    let peers = ["10.0.0.2", "203.0.113.7", "::ffff:10.0.0.3"];
    let mut state = 7u64;
    let mut next = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    };
    let mut sent = 0;
    for i in 0..300 {
        if i % 7 == 3 {
            auditor.emit(emitted(&auditor, i));
        }
        let (router, set, peer) = (next(3), next(sets.len()), next(peers.len()));
        for app in [&reused[router], &fresh[router]] {
            let mut request = Request::get("/api").body(Body::empty()).unwrap();
            for (name, value) in &sets[set] {
                request.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_bytes(value).unwrap(),
                );
            }
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::new(
                    peers[peer].parse().unwrap(),
                    4000,
                )));
            let response = app.clone().oneshot(request).await.unwrap();
            let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        }
        sent += 1;
        // The writer task runs on this thread: let it write and hand events back.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
    }
    auditor.shutdown().await;
    let expected = events(&kept, sent).await;
    let seen: Vec<Value> = written
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|event| event.get("http").is_some())
        .cloned()
        .collect();
    assert_eq!(seen.len(), sent);
    for (seen, expected) in seen.iter().zip(&expected) {
        assert_eq!(seen["source"], expected["source"], "{seen}");
        assert!(!seen.to_string().contains("emitted"), "{seen}");
    }
}
