//! The NATS JetStream backend against real `nats-server`s (`support/nats.rs`): events from
//! real HTTP traffic land on their subjects intact, resends are dropped by message id, the
//! stream gets its retention, and a 3-node cluster keeps delivering when a node dies.
#![cfg(feature = "nats")]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use axum::routing::{get, post};
use axum::{Json, Router};
use oauth_audit::backend::NatsBackend;
use oauth_audit::delivery::{
    Backend, BackendError, Backoff, Delivery, DeliveryStats, EncodedEvent,
};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use oauth_audit::format::EventFormat;
use oauth_audit::writer::{Auditor, MemoryWriter};
use oauth_audit::AuditLayer;
use serde_json::{json, Value};
use support::nats::{NatsCluster, NatsServer};
use support::{client, serve};
use uuid::Uuid;

/// Generous bound for anything that waits on servers; only a hang would exceed it.
const PATIENCE: Duration = Duration::from_secs(120);

async fn send_until_confirmed<B: Backend>(
    backend: &mut B,
    batch: &[EncodedEvent],
) -> Result<(), BackendError> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match backend.send(batch).await {
            Ok(()) => return Ok(()),
            Err(err) if err.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err),
        }
    }
}

fn service() -> Arc<ServiceInfo> {
    Arc::new(ServiceInfo::new("nats-test"))
}

fn encoded(kind: EventKind) -> EncodedEvent {
    EncodedEvent::encode(&AuditEvent::new(
        service(),
        Timestamp::now(),
        kind,
        Outcome::Success,
    ))
    .unwrap()
}

/// A client of the test servers, for reading back what the backend stored.
async fn jetstream_at(urls: &[String]) -> jetstream::Context {
    let servers: Vec<async_nats::ServerAddr> =
        urls.iter().map(|url| url.parse().unwrap()).collect();
    let client = async_nats::ConnectOptions::new()
        .request_timeout(Some(Duration::from_secs(10)))
        .connect(servers)
        .await
        .unwrap();
    jetstream::new(client)
}

/// Every message in `stream`, in sequence order.
async fn stored(js: &jetstream::Context, stream: &str) -> Vec<jetstream::message::StreamMessage> {
    let mut stream = js.get_stream(stream).await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut messages = Vec::new();
    if state.messages == 0 {
        return messages;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        messages.push(stream.get_raw_message(sequence).await.unwrap());
    }
    messages
}

fn message_id(message: &jetstream::message::StreamMessage) -> Uuid {
    let id = message
        .headers
        .get("Nats-Msg-Id")
        .expect("every message carries Nats-Msg-Id");
    id.as_str().parse().unwrap()
}

/// Asserts the stream holds each of `ids` exactly once, and nothing else.
async fn assert_exactly_once(js: &jetstream::Context, stream: &str, ids: &[Uuid]) {
    let messages = stored(js, stream).await;
    let mut counts: HashMap<Uuid, usize> = HashMap::new();
    for message in &messages {
        let header_id = message_id(message);
        let json: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(
            json["id"],
            header_id.to_string(),
            "header and payload ids differ"
        );
        *counts.entry(header_id).or_default() += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "stored more than once: {twice:?}");
    let missing: Vec<_> = ids.iter().filter(|id| !counts.contains_key(id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events missing: {missing:?}",
        missing.len(),
        ids.len()
    );
    assert_eq!(messages.len(), ids.len(), "unexpected extra messages");
}

/// An app with an OAuth token and revocation endpoint and a protected route.
fn app() -> Router {
    Router::new()
        .route(
            "/token",
            post(|| async {
                Json(json!({
                    "access_token": "at-issued-in-the-nats-test",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": "orders:read"
                }))
            }),
        )
        // A revocation endpoint reads its form (RFC 7009), so the layer sees the request.
        .route("/revoke", post(|_form: String| async { "" }))
        .route("/orders", get(|| async { "[]" }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_http_traffic_land_on_their_kind_subjects() {
    let server = NatsServer::start().await;
    let nats = NatsBackend::builder([server.url()]).build().unwrap();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .writer(memory.clone())
        .writer(Delivery::builder(nats).build().unwrap())
        .build()
        .unwrap();
    let addr = serve(app().layer(AuditLayer::new(auditor.clone()))).await;

    let http = client();
    let form = [("grant_type", "client_credentials"), ("client_id", "svc")];
    for _ in 0..3 {
        let res = http
            .post(format!("http://{addr}/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        res.bytes().await.unwrap();
    }
    let res = http
        .post(format!("http://{addr}/revoke"))
        .form(&[
            ("token", "at-issued-in-the-nats-test"),
            ("client_id", "svc"),
        ])
        .send()
        .await
        .unwrap();
    res.bytes().await.unwrap();
    for auth in [None, Some("Bearer not-a-jwt")] {
        let mut req = http.get(format!("http://{addr}/orders"));
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send().await.unwrap().bytes().await.unwrap();
    }
    auditor.shutdown().await;

    let emitted = memory.json();
    assert_eq!(emitted.len(), 6, "{emitted:#?}");
    let kinds: HashSet<&str> = emitted.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(kinds.len() >= 3, "expected several kinds, got {kinds:?}");

    let js = jetstream_at(&[server.url()]).await;
    let messages = stored(&js, "OAUTH_AUDIT").await;
    assert_eq!(messages.len(), emitted.len());
    // Byte for byte what the event serialises to.
    let by_id: HashMap<Uuid, Vec<u8>> = memory
        .events()
        .iter()
        .map(|event| (event.id, serde_json::to_vec(event.as_ref()).unwrap()))
        .collect();
    for message in &messages {
        let json: Value = serde_json::from_slice(&message.payload).unwrap();
        let id = message_id(message);
        assert_eq!(json["id"], id.to_string());
        assert_eq!(
            message.subject.as_str(),
            format!("oauth.audit.{}", json["kind"].as_str().unwrap())
        );
        let expected = by_id.get(&id).expect("an emitted event");
        assert_eq!(
            String::from_utf8_lossy(&message.payload),
            String::from_utf8_lossy(expected),
            "JSON changed on the way"
        );
        // No token in the clear on the wire either.
        assert!(!String::from_utf8_lossy(&message.payload).contains("at-issued-in-the-nats-test"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_batch_is_stored_once() {
    let server = NatsServer::start().await;
    let mut nats = NatsBackend::builder([server.url()]).build().unwrap();
    let batch: Vec<EncodedEvent> = (0..50)
        .map(|i| {
            encoded(if i % 2 == 0 {
                EventKind::AccessTokenIssued
            } else {
                EventKind::TokenRevoked
            })
        })
        .collect();
    nats.send(&batch).await.unwrap();
    nats.send(&batch).await.unwrap();
    nats.send(&batch[10..20]).await.unwrap();

    let js = jetstream_at(&[server.url()]).await;
    let ids: Vec<Uuid> = batch.iter().map(EncodedEvent::id).collect();
    assert_exactly_once(&js, "OAUTH_AUDIT", &ids).await;
    let messages = stored(&js, "OAUTH_AUDIT").await;
    let sent: Vec<Uuid> = messages.iter().map(message_id).collect();
    assert_eq!(sent, ids, "stored in the order sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_gets_its_settings_and_they_can_change() {
    let server = NatsServer::start().await;
    let mut nats = NatsBackend::builder([server.url()])
        .stream("AUDIT_TRAIL")
        .subject_prefix("acme.audit")
        .max_age(Duration::from_secs(7 * 24 * 3600))
        .duplicate_window(Duration::from_secs(600))
        .build()
        .unwrap();
    let event = encoded(EventKind::LoginFailed);
    nats.send(std::slice::from_ref(&event)).await.unwrap();

    let js = jetstream_at(&[server.url()]).await;
    let config = js
        .get_stream("AUDIT_TRAIL")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .config
        .clone();
    assert_eq!(config.subjects, ["acme.audit.>"]);
    assert_eq!(config.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(config.duplicate_window, Duration::from_secs(600));
    assert_eq!(config.storage, jetstream::stream::StorageType::File);
    assert_eq!(config.num_replicas, 1);
    let messages = stored(&js, "AUDIT_TRAIL").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].subject.as_str(), "acme.audit.LoginFailed");

    // A new deployment with a longer retention updates the stream and keeps its events.
    let mut nats = NatsBackend::builder([server.url()])
        .stream("AUDIT_TRAIL")
        .subject_prefix("acme.audit")
        .max_age(Duration::from_secs(30 * 24 * 3600))
        .duplicate_window(Duration::from_secs(600))
        .build()
        .unwrap();
    nats.send(&[encoded(EventKind::LoginSucceeded)])
        .await
        .unwrap();
    let info = js
        .get_stream("AUDIT_TRAIL")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.max_age, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(info.state.messages, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_server_fails_the_send_and_a_restart_recovers() {
    let mut server = NatsServer::start().await;
    let mut nats = NatsBackend::builder([server.url()])
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let first = encoded(EventKind::TokenIntrospected);
    nats.send(std::slice::from_ref(&first)).await.unwrap();

    server.stop();
    let second = encoded(EventKind::TokenIntrospected);
    // Bounded by the backend's own timeout; the outer bound only turns a hang into a failure.
    let result = tokio::time::timeout(PATIENCE, nats.send(std::slice::from_ref(&second)))
        .await
        .expect("send to a stopped server must fail, not hang");
    let err = result.expect_err("nobody can have confirmed the event");
    assert!(err.is_retryable(), "a stopped server is transient: {err}");

    server.restart().await;
    send_until_confirmed(&mut nats, std::slice::from_ref(&second))
        .await
        .unwrap();
    let js = jetstream_at(&[server.url()]).await;
    assert_exactly_once(&js, "OAUTH_AUDIT", &[first.id(), second.id()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_event_is_rejected_and_the_rest_stored() {
    let server = NatsServer::start().await;
    let mut nats = NatsBackend::builder([server.url()]).build().unwrap();
    let small = encoded(EventKind::ResourceAccessed);
    let mut big =
        serde_json::from_slice::<Value>(encoded(EventKind::ResourceAccessed).json()).unwrap();
    // Far over the server's default max_payload of 1 MiB.
    big["padding"] = Value::String("x".repeat(2 * 1024 * 1024));
    let big = EncodedEvent::from_json(serde_json::to_vec(&big).unwrap().into()).unwrap();

    let err = nats
        .send(&[small.clone(), big.clone()])
        .await
        .expect_err("an event over max_payload cannot be confirmed");
    assert!(!err.is_retryable(), "retrying cannot help: {err}");
    assert!(err.to_string().contains(&big.id().to_string()), "{err}");

    let js = jetstream_at(&[server.url()]).await;
    assert_exactly_once(&js, "OAUTH_AUDIT", &[small.id()]).await;
}

/// Review, 6 December 2026: an account's `max_payload` below the server's reaches the client
/// only in an INFO after the handshake, which async-nats does not apply; an event over the
/// account's limit passed the client's check, the server closed the connection over it
/// (`Maximum Payload Violation`), and the batch timed out, was retried, and closed the
/// connection again, forever. It must be refused for good and the rest stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_accounts_max_payload_is_rejected_not_retried_forever() {
    let server = NatsServer::start_with_config(
        "no_auth_user: audit\n\
         accounts { AUDIT: { jetstream: enabled, users: [ { user: audit, password: audit } ], \
         limits: { max_payload: 4096 } } }",
    )
    .await;
    let mut nats = NatsBackend::builder([server.url()])
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let small = encoded(EventKind::ResourceAccessed);
    let mut big =
        serde_json::from_slice::<Value>(encoded(EventKind::ResourceAccessed).json()).unwrap();
    // Over the account's 4 KiB, far under the server's 1 MiB.
    big["padding"] = Value::String("x".repeat(8 * 1024));
    let big = EncodedEvent::from_json(serde_json::to_vec(&big).unwrap().into()).unwrap();
    let batch = [small.clone(), big.clone()];

    let mut attempts = 0;
    let err = loop {
        attempts += 1;
        match nats.send(&batch).await {
            Ok(()) => panic!("an event over the account's max_payload was confirmed"),
            Err(err) if err.is_retryable() && attempts < 4 => {}
            Err(err) => break err,
        }
    };
    assert!(
        !err.is_retryable(),
        "still retried after {attempts} attempts: {err}"
    );
    assert!(err.to_string().contains(&big.id().to_string()), "{err}");
    assert!(!err.to_string().contains(&small.id().to_string()), "{err}");

    let js = jetstream_at(&[server.url()]).await;
    assert_exactly_once(&js, "OAUTH_AUDIT", &[small.id()]).await;
    // The connection works for what fits.
    let after = encoded(EventKind::TokenRevoked);
    nats.send(std::slice::from_ref(&after)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_make_tls_required_and_a_plain_server_is_refused() {
    // A server (or someone answering in its place) that offers no TLS.
    let server = NatsServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();

    let mut nats = NatsBackend::builder([server.url()])
        .root_certificates(&ca)
        .token("s3cret-token")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let event = encoded(EventKind::TokenRevoked);
    let err = nats
        .send(std::slice::from_ref(&event))
        .await
        .expect_err("a server without TLS must not get the credentials in clear");
    assert!(err.is_retryable(), "{err}");
    let js = jetstream_at(&[server.url()]).await;
    assert!(
        js.get_stream("OAUTH_AUDIT").await.is_err(),
        "nothing was sent in clear"
    );
    assert!(
        format!("{nats:?}").contains("tls_required: true"),
        "{nats:?}"
    );
}

#[tokio::test]
async fn a_config_naming_two_ways_to_authenticate_is_refused() {
    // PATH is set wherever the tests run; its value only stands in for a secret here.
    let config = |auth: Value| {
        let mut config = json!({ "servers": ["nats://127.0.0.1:4222"] });
        config
            .as_object_mut()
            .unwrap()
            .extend(auth.as_object().unwrap().clone());
        serde_json::from_value::<oauth_audit::config::NatsConfig>(config).unwrap()
    };
    for auth in [
        json!({ "token_env": "PATH", "nkey_env": "PATH" }),
        json!({ "token_env": "PATH", "user": "audit", "password_env": "PATH" }),
        json!({ "user": "audit", "password_env": "PATH", "nkey_env": "PATH" }),
        json!({ "token_env": "PATH", "credentials_file": "/etc/oauth-audit/audit.creds" }),
    ] {
        let error = config(auth.clone())
            .build()
            .expect_err("only one of them could be used")
            .to_string();
        assert!(error.contains("at most one of"), "{auth}: {error}");
    }
    for auth in [
        json!({}),
        json!({ "token_env": "PATH" }),
        json!({ "user": "audit", "password_env": "PATH" }),
        json!({ "nkey_env": "PATH" }),
    ] {
        config(auth.clone())
            .build()
            .unwrap_or_else(|e| panic!("{auth}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_keeps_delivering_when_a_node_dies() {
    let mut cluster = NatsCluster::start().await;
    let urls = cluster.urls();
    let spool = tempfile::tempdir().unwrap();
    let nats = NatsBackend::builder(&urls)
        .replicas(3)
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let delivery = Delivery::builder(nats)
        .spool_dir(spool.path())
        .backoff(Backoff::exponential(
            Duration::from_millis(50),
            Duration::from_millis(500),
        ))
        .build()
        .unwrap();
    let stats = delivery.stats();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .writer(memory.clone())
        .writer(delivery)
        .build()
        .unwrap();
    let addr = serve(app().layer(AuditLayer::new(auditor.clone()))).await;

    // Traffic flows while the test kills a node underneath it.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let requests = traffic(addr, stop.clone(), answered.clone());
    wait_until("events were delivered before the failure", || {
        stats.delivered() >= 50
    })
    .await;

    // Killing the node that leads the stream forces an election under traffic.
    let js = jetstream_at(&urls).await;
    let info = js
        .get_stream("OAUTH_AUDIT")
        .await
        .unwrap()
        .get_info()
        .await
        .unwrap();
    assert_eq!(info.config.num_replicas, 3);
    let leader = info
        .cluster
        .and_then(|cluster| cluster.leader)
        .expect("an R3 stream has a leader");
    let leader: usize = leader.trim_start_matches('n').parse().unwrap();
    cluster.stop(leader);
    let at_failure = stats.delivered();
    wait_until("delivery continued after a node died", || {
        stats.delivered() >= at_failure + 100
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    requests.await.unwrap();
    let ids = all_delivered(&memory, &stats, answered.load(Ordering::Relaxed)).await;
    auditor.shutdown().await;
    assert_eq!(stats.dropped_total(), 0, "no event may be lost: {stats:?}");

    let survivors: Vec<String> = (0..urls.len())
        .filter(|node| *node != leader)
        .map(|node| urls[node].clone())
        .collect();
    let js = jetstream_at(&survivors).await;
    assert_exactly_once(&js, "OAUTH_AUDIT", &ids).await;
}

/// Waits until each of `total` requests made its event and the delivery writer confirmed
/// them all; returns their ids.
async fn all_delivered(memory: &MemoryWriter, stats: &DeliveryStats, total: usize) -> Vec<Uuid> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !(memory.events().len() == total
        && stats.spooled_events() == 0
        && stats.delivered() >= total as u64)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not everything was delivered: {total} requests, {} events, {stats:?}",
            memory.events().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    memory.events().iter().map(|event| event.id).collect()
}

/// Sends requests one after another until told to stop; returns how many were answered.
fn traffic(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = client();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let res = if i.is_multiple_of(3) {
                http.post(format!("http://{addr}/token"))
                    .form(&[("grant_type", "client_credentials"), ("client_id", "svc")])
                    .send()
                    .await
            } else if i % 3 == 1 {
                http.post(format!("http://{addr}/revoke"))
                    .form(&[
                        ("token", "at-issued-in-the-nats-test"),
                        ("client_id", "svc"),
                    ])
                    .send()
                    .await
            } else {
                http.get(format!("http://{addr}/orders")).send().await
            };
            res.unwrap().bytes().await.unwrap();
            answered.fetch_add(1, Ordering::Relaxed);
            i += 1;
            // A steady trickle, not a flood: the point is traffic during the outage.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_under_traffic_is_spooled_and_every_event_arrives_once() {
    let mut server = NatsServer::start().await;
    let spool = tempfile::tempdir().unwrap();
    let nats = NatsBackend::builder([server.url()])
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let delivery = Delivery::builder(nats)
        .spool_dir(spool.path())
        .backoff(Backoff::exponential(
            Duration::from_millis(50),
            Duration::from_millis(500),
        ))
        .build()
        .unwrap();
    let stats = delivery.stats();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .writer(memory.clone())
        .writer(delivery)
        .build()
        .unwrap();
    let addr = serve(app().layer(AuditLayer::new(auditor.clone()))).await;

    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let requests = traffic(addr, stop.clone(), answered.clone());

    wait_until("events were delivered before the outage", || {
        stats.delivered() >= 30
    })
    .await;
    server.stop();
    let at_stop = answered.load(Ordering::Relaxed);
    wait_until("events were spooled during the outage", || {
        stats.spooled_events() >= 30 && answered.load(Ordering::Relaxed) >= at_stop + 60
    })
    .await;
    server.restart().await;
    let at_restart = answered.load(Ordering::Relaxed);
    wait_until("traffic went on after the restart", || {
        answered.load(Ordering::Relaxed) >= at_restart + 30
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    requests.await.unwrap();

    let ids = all_delivered(&memory, &stats, answered.load(Ordering::Relaxed)).await;
    auditor.shutdown().await;
    assert_eq!(stats.dropped_total(), 0, "no event may be lost: {stats:?}");

    assert!(ids.len() >= 120, "{} events", ids.len());
    let js = jetstream_at(&[server.url()]).await;
    assert_exactly_once(&js, "OAUTH_AUDIT", &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_can_be_published_as_ocsf_or_ecs() {
    let server = NatsServer::start().await;
    let js = jetstream_at(&[server.url()]).await;
    for (format, stream) in [
        (EventFormat::Ocsf, "AUDIT_OCSF"),
        (EventFormat::Ecs, "AUDIT_ECS"),
    ] {
        let mut nats = NatsBackend::builder([server.url()])
            .stream(stream)
            .subject_prefix(format!("audit.{format}"))
            .format(format)
            .build()
            .unwrap();
        let event = Arc::new(AuditEvent::new(
            service(),
            Timestamp::now(),
            EventKind::LoginFailed,
            Outcome::Failure,
        ));
        let batch = [EncodedEvent::encode_shared(event.clone()).unwrap()];
        send_until_confirmed(&mut nats, &batch).await.unwrap();
        nats.send(&batch).await.unwrap();
        // Sent twice, stored once: `Nats-Msg-Id` is still the event id.
        let mut messages = stored(&js, stream).await;
        assert_eq!(
            messages.iter().map(message_id).collect::<Vec<_>>(),
            [event.id]
        );
        let message = messages.remove(0);
        assert_eq!(
            message.subject.as_str(),
            format!("audit.{format}.LoginFailed")
        );
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        match format {
            EventFormat::Ocsf => {
                assert_eq!(payload["type_uid"], 300201, "{payload}");
                assert_eq!(payload["metadata"]["uid"], event.id.to_string());
            }
            _ => {
                assert_eq!(payload["event"]["id"], event.id.to_string(), "{payload}");
                assert_eq!(payload["event"]["outcome"], "failure");
            }
        }

        // Only the JSON of an event (as a spool keeps it) cannot be written in this
        // format: the event is refused, not retried; and no disk spool is taken.
        let error = nats
            .send(&[encoded(EventKind::LoginFailed)])
            .await
            .unwrap_err();
        assert!(!error.is_retryable(), "{error}");
        let spool =
            std::env::temp_dir().join(format!("oauth-audit-nats-{format}-{}", Uuid::now_v7()));
        let refused = Delivery::builder(nats)
            .spool_dir(&spool)
            .build()
            .unwrap_err();
        assert!(refused.to_string().contains("spool_dir"), "{refused}");
        let _ = std::fs::remove_dir_all(&spool);
    }
}
