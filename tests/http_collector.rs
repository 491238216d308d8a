//! The HTTP collector backend against a local collector that checks each format's documented
//! request shape and answers like Elasticsearch, Splunk HEC or Vector would.
#![cfg(feature = "http")]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::{routing::get, Router};
use oauth_audit::backend::{Format, HttpCollector, HttpCollectorBuilder};
use oauth_audit::delivery::{Backend, BackendError, Backoff, Delivery, EncodedEvent};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use oauth_audit::format::EventFormat;
use oauth_audit::writer::{AuditWriter, Auditor, MemoryWriter, WriteError};
use oauth_audit::AuditLayer;
use support::collector::{Collector, Expect, Pki, Reply, Shape};
use support::{client, serve};

/// Feeds the auditor's batches straight to a backend, keeping each outcome, so events go
/// request -> layer -> auditor -> collector with nothing in between.
struct BackendWriter<B> {
    backend: B,
    outcomes: Arc<Mutex<Vec<Result<(), String>>>>,
}

impl<B: Backend> AuditWriter for BackendWriter<B> {
    fn name(&self) -> &str {
        self.backend.name()
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        let encoded = batch
            .iter()
            .map(|event| EncodedEvent::encode_shared(event.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self.backend.send(&encoded).await;
        self.outcomes
            .lock()
            .unwrap()
            .push(result.as_ref().map(|_| ()).map_err(|err| err.to_string()));
        result.map_err(WriteError::backend)
    }
}

/// Serves an audited app whose events go to `collector`, sends `n` requests to it, shuts the
/// auditor down (everything written), and returns the outcome of each batch.
async fn drive_requests(collector: HttpCollector, n: usize) -> Arc<Mutex<Vec<Result<(), String>>>> {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .service_instance("pod-7")
        .writer(BackendWriter {
            backend: collector,
            outcomes: outcomes.clone(),
        })
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;
    for i in 0..n {
        let response = client()
            .get(format!("http://{addr}/orders/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    auditor.shutdown().await;
    outcomes
}

fn events(n: usize) -> Vec<EncodedEvent> {
    let mut service = ServiceInfo::new("orders-api");
    service.instance = Some("pod-7".into());
    let service = Arc::new(service);
    (0..n)
        .map(|_| {
            let event = AuditEvent::new(
                service.clone(),
                Timestamp::now(),
                EventKind::TokenRevoked,
                Outcome::Success,
            );
            EncodedEvent::encode(&event).unwrap()
        })
        .collect()
}

fn ids(events: &[EncodedEvent]) -> Vec<String> {
    events.iter().map(|event| event.id().to_string()).collect()
}

fn bulk(authorization: Option<&str>, gzip: bool) -> Expect {
    Expect {
        shape: Shape::Bulk {
            index: "oauth-audit".into(),
        },
        authorization: authorization.map(String::from),
        gzip,
    }
}

fn es_builder(collector: &Collector) -> HttpCollectorBuilder {
    HttpCollector::builder(collector.url())
        .format(Format::ElasticsearchBulk {
            index: "oauth-audit".into(),
        })
        .no_proxy()
}

/// Splunk HEC's format for events from `source` with `sourcetype`, no index.
fn hec_format(source: &str, sourcetype: &str) -> Format {
    Format::SplunkHec {
        source: source.into(),
        sourcetype: sourcetype.into(),
        index: None,
    }
}

/// A HEC receiver taking token `t` without gzip, and a builder for it: events from `api`
/// with `sourcetype`.
async fn hec(sourcetype: &str) -> (Collector, HttpCollectorBuilder) {
    let collector = Collector::start(Expect {
        shape: Shape::Hec {
            source: "api".into(),
            sourcetype: sourcetype.into(),
            index: None,
        },
        authorization: Some("Splunk t".into()),
        gzip: false,
    })
    .await;
    let builder = HttpCollector::builder(collector.url())
        .format(hec_format("api", sourcetype))
        .splunk_token("t")
        .no_proxy();
    (collector, builder)
}

fn assert_clean(collector: &Collector) {
    assert!(
        collector.violations().is_empty(),
        "requests did not have the documented shape: {:?}",
        collector.violations()
    );
}

#[track_caller]
fn assert_unavailable(result: Result<(), BackendError>) -> String {
    match result {
        Err(err @ BackendError::Unavailable { .. }) => err.to_string(),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

#[track_caller]
fn assert_rejected(result: Result<(), BackendError>) -> String {
    match result {
        Err(err @ BackendError::Rejected { .. }) => err.to_string(),
        other => panic!("expected rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn elasticsearch_bulk_indexes_the_layers_events_with_basic_auth_and_gzip() {
    use base64::Engine;
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("audit-writer:s3cret-pass")
    );
    let collector = Collector::start(bulk(Some(&authorization), true)).await;
    let backend = es_builder(&collector)
        .basic_auth("audit-writer", "s3cret-pass")
        .gzip(true)
        .build()
        .unwrap();
    assert_eq!(backend.name(), "elasticsearch");

    let outcomes = drive_requests(backend, 5).await;

    let stored = collector.wait_for(5).await;
    assert_clean(&collector);
    assert!(outcomes.lock().unwrap().iter().all(Result::is_ok));
    assert_eq!(stored.len(), 5);
    for (i, event) in stored.iter().enumerate() {
        assert_eq!(event["kind"], "ResourceAccessed");
        assert_eq!(event["http"]["path"], format!("/orders/{i}"));
        assert_eq!(event["service"]["name"], "orders-api");
    }
}

#[tokio::test]
async fn splunk_hec_receives_enveloped_events_with_the_splunk_token() {
    let collector = Collector::start(Expect {
        shape: Shape::Hec {
            source: "orders-api".into(),
            sourcetype: "_json".into(),
            index: Some("security".into()),
        },
        authorization: Some("Splunk 11111111-2222-3333-4444-555555555555".into()),
        gzip: true,
    })
    .await;
    let backend = HttpCollector::builder(collector.url())
        .format(Format::SplunkHec {
            source: "orders-api".into(),
            sourcetype: "_json".into(),
            index: Some("security".into()),
        })
        .splunk_token("11111111-2222-3333-4444-555555555555")
        .gzip(true)
        .no_proxy()
        .build()
        .unwrap();
    assert_eq!(backend.name(), "splunk-hec");

    let outcomes = drive_requests(backend, 3).await;

    let stored = collector.wait_for(3).await;
    assert_clean(&collector);
    assert!(outcomes.lock().unwrap().iter().all(Result::is_ok));
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|e| e["kind"] == "ResourceAccessed"));
}

#[tokio::test]
async fn json_lines_carry_a_bearer_token_and_a_stable_idempotency_key() {
    let collector = Collector::start(Expect {
        shape: Shape::Lines,
        authorization: Some("Bearer vector-token-123".into()),
        gzip: false,
    })
    .await;
    let backend = HttpCollector::builder(collector.url())
        .format(Format::JsonLines)
        .bearer_token("vector-token-123")
        .header("X-Tenant", "billing")
        .no_proxy()
        .build()
        .unwrap();

    let outcomes = drive_requests(backend, 4).await;
    collector.wait_for(4).await;
    assert_clean(&collector);
    assert!(outcomes.lock().unwrap().iter().all(Result::is_ok));

    // An exact resend carries the same key, so a collector can drop it.
    let mut backend = HttpCollector::builder(collector.url())
        .bearer_token("vector-token-123")
        .no_proxy()
        .build()
        .unwrap();
    let batch = events(3);
    backend.send(&batch).await.unwrap();
    backend.send(&batch).await.unwrap();
    let requests = collector.requests();
    let [.., first, second] = requests.as_slice() else {
        panic!("expected two more requests: {requests:?}");
    };
    assert!(first.idempotency_key.is_some());
    assert_eq!(first.idempotency_key, second.idempotency_key);
    assert_clean(&collector);
}

#[tokio::test]
async fn wrong_or_missing_credentials_keep_the_events_without_revealing_them() {
    let collector = Collector::start(Expect {
        shape: Shape::Hec {
            source: "api".into(),
            sourcetype: "_json".into(),
            index: None,
        },
        authorization: Some("Splunk right-token".into()),
        gzip: false,
    })
    .await;
    let hec = |builder: HttpCollectorBuilder| {
        builder
            .format(hec_format("api", "_json"))
            .no_proxy()
            .build()
            .unwrap()
    };
    // Not the events' fault: they wait, retried and spooled, until the token is put right.
    let mut wrong = hec(HttpCollector::builder(collector.url()).splunk_token("wrong-token-xyz"));
    let message = assert_unavailable(wrong.send(&events(2)).await);
    assert!(
        message.contains("403") && message.contains("Invalid token"),
        "{message}"
    );
    assert!(!message.contains("wrong-token-xyz"), "{message}");

    let mut missing = hec(HttpCollector::builder(collector.url()));
    let message = assert_unavailable(missing.send(&events(1)).await);
    assert!(message.contains("401"), "{message}");

    let mut right = hec(HttpCollector::builder(collector.url()).splunk_token("right-token"));
    right.send(&events(2)).await.unwrap();
    assert_eq!(collector.events().len(), 2);
    assert_clean(&collector);
}

#[tokio::test]
async fn tls_with_a_private_ca_and_a_client_certificate() {
    let pki = Pki::generate();
    let collector = Collector::start_tls(bulk(None, false), &pki, false).await;
    assert!(collector.url().starts_with("https://127.0.0.1:"));

    // Trusting another CA, the collector's certificate is refused: a transport failure,
    // retried, never a silent success.
    let mut untrusting = es_builder(&collector)
        .root_certificate_pem(Pki::generate().ca_pem)
        .system_roots(false)
        .build()
        .unwrap();
    assert_unavailable(untrusting.send(&events(1)).await);
    assert!(collector.requests().is_empty());

    let mut trusting = es_builder(&collector)
        .root_certificate_pem(pki.ca_pem.clone())
        .build()
        .unwrap();
    let batch = events(2);
    trusting.send(&batch).await.unwrap();
    let mut only_ca = es_builder(&collector)
        .root_certificate_pem(pki.ca_pem.clone())
        .system_roots(false)
        .build()
        .unwrap();
    let more = events(1);
    only_ca.send(&more).await.unwrap();
    assert_eq!(collector.ids(), [ids(&batch), ids(&more)].concat());

    // Mutual TLS: the handshake fails without the client certificate.
    let mtls = Collector::start_tls(bulk(None, false), &pki, true).await;
    let mut anonymous = es_builder(&mtls)
        .root_certificate_pem(pki.ca_pem.clone())
        .build()
        .unwrap();
    assert_unavailable(anonymous.send(&events(1)).await);
    assert!(mtls.requests().is_empty());
    let mut identified = es_builder(&mtls)
        .root_certificate_pem(pki.ca_pem.clone())
        .client_identity_pem(pki.client_identity_pem.clone())
        .build()
        .unwrap();
    let batch = events(2);
    identified.send(&batch).await.unwrap();
    assert_eq!(mtls.ids(), ids(&batch));
    assert_clean(&collector);
    assert_clean(&mtls);
}

#[tokio::test]
async fn request_statuses_are_classified_and_retries_deliver_once() {
    let collector = Collector::start(bulk(None, false)).await;
    let mut backend = es_builder(&collector).build().unwrap();
    let batch = events(3);

    collector.script([Reply::Status(503, None), Reply::Status(408, None)]);
    let message = assert_unavailable(backend.send(&batch).await);
    assert!(
        message.contains("503") && message.contains("cluster_block_exception"),
        "{message}"
    );
    assert_unavailable(backend.send(&batch).await);
    backend.send(&batch).await.unwrap();
    assert_eq!(collector.ids(), ids(&batch));

    // A resend of an indexed batch: every item is a 409, which is a success.
    backend.send(&batch).await.unwrap();
    assert_eq!(collector.ids(), ids(&batch));

    // Indexed, but the answer was lost: the retry finds every _id taken, nothing doubles.
    let lost = events(2);
    collector.script([Reply::StoreThenStatus(502)]);
    assert_unavailable(backend.send(&lost).await);
    backend.send(&lost).await.unwrap();
    assert_eq!(collector.ids(), [ids(&batch), ids(&lost)].concat());

    // The collector's or the configuration's fault (credentials, privileges, the URL, a
    // redirect): the events are kept for a retry, never dropped.
    let kept = events(2);
    for status in [301, 401, 403, 404, 407] {
        collector.script([Reply::Status(status, None)]);
        let message = assert_unavailable(backend.send(&kept).await);
        assert!(message.contains(&status.to_string()), "{message}");
    }
    backend.send(&kept).await.unwrap();
    assert_eq!(collector.ids().len(), 7);

    // The events' fault: refused.
    for status in [400, 413, 422] {
        collector.script([Reply::Status(status, None)]);
        let message = assert_rejected(backend.send(&events(1)).await);
        assert!(message.contains(&status.to_string()), "{message}");
    }
    assert_eq!(collector.ids().len(), 7);
    assert_clean(&collector);
}

#[tokio::test]
async fn retry_after_is_honoured_before_contacting_the_collector_again() {
    let collector = Collector::start(bulk(None, false)).await;
    let mut backend = es_builder(&collector).build().unwrap();
    let batch = events(2);

    collector.script([Reply::Status(429, Some(1))]);
    assert_unavailable(backend.send(&batch).await);
    let asked = collector.requests().len();
    assert_eq!(asked, 1);

    // Until the second has passed, sends fail without a request; then one goes through.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match backend.send(&batch).await {
            Ok(()) => break,
            Err(err) => {
                assert!(err.is_retryable());
                assert!(err.to_string().contains("Retry-After"), "{err}");
                assert_eq!(collector.requests().len(), asked, "contacted too early");
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Retry-After never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(collector.requests().len(), asked + 1);
    assert_eq!(collector.ids(), ids(&batch));
}

#[tokio::test]
async fn bulk_item_failures_are_retried_or_rejected_by_their_status() {
    let collector = Collector::start(bulk(None, false)).await;
    let mut backend = es_builder(&collector).build().unwrap();

    // One item throttled: retry; the resend indexes it and the others answer 409.
    let batch = events(3);
    collector.script([Reply::FirstItemFails(
        429,
        "es_rejected_execution_exception",
    )]);
    let message = assert_unavailable(backend.send(&batch).await);
    assert!(message.contains("1 of 3"), "{message}");
    assert_eq!(collector.ids(), ids(&batch[1..]));
    backend.send(&batch).await.unwrap();
    let mut stored = collector.ids();
    stored.sort();
    let mut expected = ids(&batch);
    expected.sort();
    assert_eq!(stored, expected, "every event indexed exactly once");
    // Only the failed item was sent again: the two indexed are not re-sent to a cluster
    // that is shedding load (nor indexed again in a data stream rolled over meanwhile).
    let requests = collector.requests();
    assert_eq!(requests.last().unwrap().events, 1, "{requests:?}");

    // One item refused for want of a privilege on the index: not the event's fault, retried.
    let batch = events(2);
    collector.script([Reply::FirstItemFails(403, "security_exception")]);
    let message = assert_unavailable(backend.send(&batch).await);
    assert!(message.contains("security_exception"), "{message}");
    backend.send(&batch).await.unwrap();
    assert_eq!(collector.ids().len(), 5, "every event indexed exactly once");

    // One item refused for good (a mapping conflict): the batch is rejected.
    let batch = events(2);
    collector.script([Reply::FirstItemFails(400, "mapper_parsing_exception")]);
    let message = assert_rejected(backend.send(&batch).await);
    assert!(
        message.contains("mapper_parsing_exception") && message.contains("1 of 2"),
        "{message}"
    );
    // The delivery then sends halves to find the event at fault: the indexed one is
    // confirmed without a request, the refused one is sent alone.
    let asked = collector.requests().len();
    backend.send(&batch[1..]).await.unwrap();
    assert_eq!(collector.requests().len(), asked);
    collector.script([Reply::FirstItemFails(400, "mapper_parsing_exception")]);
    assert_rejected(backend.send(&batch[..1]).await);
    assert_eq!(collector.requests().last().unwrap().events, 1);
    assert_clean(&collector);
}

#[tokio::test]
async fn a_batch_cut_into_requests_resends_only_what_was_not_taken() {
    // Splunk HEC does not deduplicate: the requests of a batch answered 200 before a later
    // one failed must not be sent again with it.
    let (collector, builder) = hec("_json").await;
    let mut backend = builder.max_batch_bytes(1).build().unwrap();
    let batch = events(3);
    collector.script([Reply::Accept, Reply::Status(503, None)]);
    assert_unavailable(backend.send(&batch).await);
    assert_eq!(collector.ids(), ids(&batch[..1]));
    backend.send(&batch).await.unwrap();
    assert_eq!(
        collector.ids(),
        ids(&batch),
        "each event indexed once, in order"
    );
    // Delivered, the events are forgotten: sent again (a spool replayed by hand), they go.
    backend.send(&batch[..1]).await.unwrap();
    assert_eq!(collector.ids().len(), 4);
    assert_clean(&collector);
}

/// A send cut short by the delivery's `send_timeout` after some of its requests were
/// answered 2xx: those events are not sent again with the rest (Splunk HEC would index
/// them twice).
#[tokio::test]
async fn a_send_cut_short_after_requests_were_taken_does_not_resend_them() {
    // Stores every request's events and answers at once, except the second request, which
    // is never answered (a collector stalling; the timeout gives up on it first).
    let stored = Arc::new(Mutex::new(Vec::<String>::new()));
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (keep, count) = (stored.clone(), requests.clone());
    let app = Router::new().fallback(move |body: axum::body::Bytes| {
        let (keep, count) = (keep.clone(), count.clone());
        async move {
            if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1 {
                std::future::pending::<()>().await;
            }
            let text = String::from_utf8_lossy(&body).into_owned();
            let mut keep = keep.lock().unwrap();
            for document in
                serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>()
            {
                let document = document.unwrap();
                keep.push(document["event"]["id"].as_str().unwrap().to_owned());
            }
            r#"{"text":"Success","code":0}"#
        }
    });
    let addr = serve(app).await;
    let mut backend = HttpCollector::builder(format!("http://{addr}/services/collector/event"))
        .format(hec_format("api", "_json"))
        .splunk_token("t")
        .max_batch_bytes(1)
        .no_proxy()
        .build()
        .unwrap();
    let batch = events(3);
    // What the delivery does with its `send_timeout`: the send's future is dropped.
    let cut = tokio::time::timeout(Duration::from_millis(500), backend.send(&batch)).await;
    assert!(cut.is_err(), "the second request is never answered");
    assert_eq!(*stored.lock().unwrap(), ids(&batch[..1]));
    backend.send(&batch).await.unwrap();
    assert_eq!(
        *stored.lock().unwrap(),
        ids(&batch),
        "the first event, taken before the timeout, is not indexed twice"
    );
}

#[tokio::test]
async fn large_batches_are_split_into_bounded_requests() {
    let collector = Collector::start(bulk(None, true)).await;
    let mut backend = es_builder(&collector)
        .gzip(true)
        .max_batch_bytes(2_000)
        .build()
        .unwrap();
    let batch = events(20);
    backend.send(&batch).await.unwrap();

    let requests = collector.requests();
    assert!(requests.len() > 1, "{requests:?}");
    assert!(
        requests.iter().all(|r| r.body_bytes <= 2_000),
        "{requests:?}"
    );
    assert_eq!(requests.iter().map(|r| r.events).sum::<usize>(), 20);
    assert_eq!(collector.ids(), ids(&batch), "in order, each once");

    // An event larger than the limit still goes, alone.
    let mut tiny = es_builder(&collector)
        .gzip(true)
        .max_batch_bytes(10)
        .build()
        .unwrap();
    let batch = events(2);
    tiny.send(&batch).await.unwrap();
    let requests = collector.requests();
    assert!(requests[requests.len() - 2..].iter().all(|r| r.events == 1));
    assert_eq!(collector.ids().len(), 22);
    assert_clean(&collector);
}

#[tokio::test]
async fn splunk_hec_does_not_deduplicate_a_resend() {
    let (collector, builder) = hec("oauth-audit").await;
    let mut backend = builder.build().unwrap();
    let batch = events(2);
    collector.script([Reply::Status(503, None)]);
    assert_unavailable(backend.send(&batch).await);
    backend.send(&batch).await.unwrap();
    backend.send(&batch).await.unwrap();
    // As documented: HEC indexes a resend again; consumers dedupe on event.id.
    assert_eq!(collector.ids(), [ids(&batch), ids(&batch)].concat());

    collector.script([Reply::Status(400, None)]);
    let message = assert_rejected(backend.send(&batch).await);
    assert!(message.contains("Invalid data format"), "{message}");
    assert_clean(&collector);
}

/// A proxy in front of HEC answering 200 with its own page (or an empty body, or JSON
/// without HEC's `code`) indexed nothing: the events are not taken for delivered, they are
/// sent again and stored once HEC itself answers.
#[tokio::test]
async fn a_2xx_that_is_not_an_hec_answer_keeps_the_events() {
    let (collector, builder) = hec("_json").await;
    let mut backend = builder.build().unwrap();
    let batch = events(2);
    for (content_type, body) in [
        ("text/html", "<html><body>Please sign in</body></html>"),
        ("text/plain", ""),
        ("application/json", "{}"),
        ("application/json", r#"{"text":"Success"}"#),
    ] {
        collector.script([Reply::ProxyAnswers200(content_type, body)]);
        let message = assert_unavailable(backend.send(&batch).await);
        assert!(
            message.contains("nothing says the events were indexed"),
            "{body:?}: {message}"
        );
        assert!(collector.ids().is_empty(), "{body:?}: nothing was stored");
    }
    backend.send(&batch).await.unwrap();
    assert_eq!(
        collector.ids(),
        ids(&batch),
        "stored once, when HEC answered"
    );
    assert_clean(&collector);
}

/// What each format makes of a resend after a timeout, when the collector had stored the
/// request before the client gave up on it (nothing tells the sink it did): `_bulk` finds
/// every `_id` taken and stores nothing twice; HEC, which has no deduplication, indexes the
/// events again; JSON lines are stored again by a collector that does not deduplicate, the
/// resend carrying the same `Idempotency-Key` as the request that timed out.
#[tokio::test]
async fn a_resend_after_a_timeout_duplicates_only_where_the_format_has_no_idempotent_id() {
    let stall = Reply::StoreThenStall(Duration::from_secs(2));
    let timeout = Duration::from_millis(300);

    let collector = Collector::start(bulk(None, false)).await;
    let mut backend = es_builder(&collector).timeout(timeout).build().unwrap();
    let batch = events(3);
    collector.script([stall.clone()]);
    assert_unavailable(backend.send(&batch).await);
    backend.send(&batch).await.unwrap();
    assert_eq!(collector.ids(), ids(&batch), "_bulk: stored once");
    assert_clean(&collector);

    let (collector, builder) = hec("_json").await;
    let mut backend = builder.timeout(timeout).build().unwrap();
    collector.script([stall.clone()]);
    assert_unavailable(backend.send(&batch).await);
    backend.send(&batch).await.unwrap();
    assert_eq!(
        collector.ids(),
        [ids(&batch), ids(&batch)].concat(),
        "HEC: stored twice"
    );
    assert_clean(&collector);

    let collector = Collector::start(Expect {
        shape: Shape::Lines,
        authorization: None,
        gzip: false,
    })
    .await;
    let mut backend = HttpCollector::builder(collector.url())
        .format(Format::JsonLines)
        .timeout(timeout)
        .no_proxy()
        .build()
        .unwrap();
    collector.script([stall]);
    assert_unavailable(backend.send(&batch).await);
    backend.send(&batch).await.unwrap();
    assert_eq!(
        collector.ids(),
        [ids(&batch), ids(&batch)].concat(),
        "JSON lines: stored twice by a collector that does not deduplicate"
    );
    let requests = collector.requests();
    let [first, second] = requests.as_slice() else {
        panic!("expected two requests: {requests:?}");
    };
    assert!(first.idempotency_key.is_some());
    assert_eq!(
        first.idempotency_key, second.idempotency_key,
        "the resend can be dropped by a collector that honours the key"
    );
    assert_clean(&collector);
}

#[tokio::test]
async fn an_unreachable_collector_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut backend = HttpCollector::builder(format!("http://{addr}/_bulk"))
        .format(Format::ElasticsearchBulk { index: "a".into() })
        .no_proxy()
        .build()
        .unwrap();
    let message = assert_unavailable(backend.send(&events(1)).await);
    assert!(message.contains(&addr.to_string()), "{message}");
}

/// Reads one request, head and `Content-Length` body, from `socket`; false when the
/// connection closed first.
async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut request = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = socket.read(&mut buffer).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        request.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
        let Some(head_end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..head_end]
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .map_or(0, |value| value.trim().parse().unwrap());
        if request.len() >= head_end + 4 + length {
            return true;
        }
    }
}

/// A collector that reads each request and answers `status` with a chunked body of 64 MiB
/// that then never ends: a broken proxy, or an endpoint bent on filling the sink's memory.
async fn endless_answer(status: u16) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !read_request(&mut socket).await {
                    return;
                }
                let head = format!(
                    "HTTP/1.1 {status} Whatever\r\ncontent-type: application/json\r\n\
                     transfer-encoding: chunked\r\n\r\n"
                );
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = [b' '; 64 * 1024];
                for _ in 0..1024 {
                    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                    frame.extend_from_slice(&chunk);
                    frame.extend_from_slice(b"\r\n");
                    if socket.write_all(&frame).await.is_err() {
                        return;
                    }
                }
                // The body goes on, but nothing more comes.
                std::future::pending::<()>().await;
            });
        }
    });
    format!("http://{addr}/_bulk")
}

#[tokio::test]
async fn an_endless_answer_is_read_no_further_than_a_bound() {
    let timeout = Duration::from_secs(20);
    let collector = |url: String, format: Format| {
        HttpCollector::builder(url)
            .format(format)
            .timeout(timeout)
            .no_proxy()
            .build()
            .unwrap()
    };
    let bulk = || Format::ElasticsearchBulk { index: "a".into() };
    let started = std::time::Instant::now();

    // JSON lines read nothing from a 2xx: delivered, whatever follows the status.
    let mut lines = collector(endless_answer(200).await, Format::JsonLines);
    lines.send(&events(2)).await.unwrap();

    // `_bulk` must read the items: an answer too large to judge is retried.
    let mut es = collector(endless_answer(200).await, bulk());
    let message = assert_unavailable(es.send(&events(2)).await);
    assert!(message.contains("larger than"), "{message}");

    // An error status is quoted from its start.
    let mut failing = collector(endless_answer(503).await, bulk());
    let message = assert_unavailable(failing.send(&events(2)).await);
    assert!(message.contains("503"), "{message}");

    assert!(
        started.elapsed() < timeout,
        "answers were read until the request timeout: {:?}",
        started.elapsed()
    );
}

/// A collector that reads each request and answers `head` (a raw status line and fields),
/// then `body`; then holds the connection open without another byte when `hang`, else
/// closes it: a proxy that stalls or drops the answer after its status.
async fn answer_then_stop(head: &'static str, body: &'static str, hang: bool) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                if !read_request(&mut socket).await {
                    return;
                }
                let answer = format!("{head}\r\n\r\n{body}");
                if socket.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                if hang {
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    format!("http://{addr}/ingest")
}

#[tokio::test]
async fn a_2xx_is_a_delivery_for_a_format_that_reads_nothing_however_its_body_ends() {
    let timeout = Duration::from_secs(5);
    let collector = |url: String, format: Format| {
        HttpCollector::builder(url)
            .format(format)
            .timeout(timeout)
            .no_proxy()
            .build()
            .unwrap()
    };
    let alertmanager = || Format::Alertmanager {
        generator_url: None,
    };
    // Alerts, which an Alertmanager sink sends (it leaves every other kind out).
    let alerts = |n: usize| -> Vec<EncodedEvent> {
        let service = Arc::new(ServiceInfo::new("orders-api"));
        (0..n)
            .map(|_| {
                let event = AuditEvent::new(
                    service.clone(),
                    Timestamp::now(),
                    EventKind::SecurityAlert,
                    Outcome::Unknown,
                );
                EncodedEvent::encode(&event).unwrap()
            })
            .collect()
    };
    let started = std::time::Instant::now();
    for format in [Format::JsonLines, alertmanager()] {
        // The status came, then the body stalls (a chunked body that never ends, a length
        // never reached): the collector took the events, and a resend would store them twice.
        for head in [
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked",
            "HTTP/1.1 202 Accepted\r\ncontent-length: 100",
        ] {
            let mut backend = collector(answer_then_stop(head, "", true).await, format.clone());
            let result = backend.send(&alerts(2)).await;
            assert!(result.is_ok(), "{format:?} {head:?}: {result:?}");
        }
        // The connection closed in the middle of the body.
        let head = "HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close";
        let mut backend = collector(
            answer_then_stop(head, "{\"ok\"", false).await,
            format.clone(),
        );
        let result = backend.send(&alerts(2)).await;
        assert!(result.is_ok(), "{format:?} cut short: {result:?}");
    }
    assert!(
        started.elapsed() < timeout,
        "2xx bodies were waited for: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn secrets_never_reach_debug_output_or_errors() {
    let pki = Pki::generate();
    let collector = Collector::start(bulk(Some("Bearer expected"), false)).await;
    let url = format!("{}?token=query-secret-1", collector.url());
    let builders = [
        HttpCollector::builder(&url).bearer_token("bearer-secret-2"),
        HttpCollector::builder(&url).basic_auth("writer", "basic-secret-3"),
        HttpCollector::builder(&url).splunk_token("splunk-secret-4"),
        HttpCollector::builder(&url).elasticsearch_api_key("apikey-secret-5"),
        HttpCollector::builder(&url)
            .header("X-Api-Key", "header-secret-6")
            .client_identity_pem(pki.client_identity_pem.clone()),
    ];
    let secrets = [
        "query-secret-1",
        "bearer-secret-2",
        "basic-secret-3",
        "splunk-secret-4",
        "apikey-secret-5",
        "header-secret-6",
        "PRIVATE KEY",
    ];
    for builder in builders {
        let builder = builder
            .format(Format::ElasticsearchBulk {
                index: "oauth-audit".into(),
            })
            .no_proxy();
        let shown = format!("{builder:?}");
        let mut backend = builder.build().unwrap();
        let shown = format!("{shown} {backend:?}");
        // The collector answers 401 (wrong credentials): the error names the URL, not them.
        let error = assert_unavailable(backend.send(&events(1)).await);
        assert!(error.contains("401"), "{error}");
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} in {shown}");
            assert!(!error.contains(secret), "{secret} in {error}");
        }
    }
    assert_clean(&collector);
}

/// A collector, or a proxy in front of one, that quotes what it was sent when it refuses a
/// request: the `Authorization` header, another header and the URI with its query string,
/// as Elasticsearch's 401 names the REST request, and some gateways quote the key they did
/// not know.
async fn quoting_collector(status: u16, body: &'static str) -> String {
    use axum::http::{HeaderMap, StatusCode, Uri};
    let answer = move |headers: HeaderMap, uri: Uri| async move {
        let header = |name: &str| {
            headers
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let quoted = body
            .replace("{authorization}", &header("authorization"))
            .replace("{key}", &header("x-api-key"))
            .replace("{uri}", &uri.to_string());
        (StatusCode::from_u16(status).unwrap(), quoted)
    };
    let addr = serve(Router::new().fallback(answer)).await;
    format!("http://{addr}/_bulk")
}

#[tokio::test]
async fn a_splunk_refusal_keeps_the_events_when_it_blames_the_configuration() {
    let hec = |url: String| {
        HttpCollector::builder(url)
            .format(Format::SplunkHec {
                source: "api".into(),
                sourcetype: "_json".into(),
                index: Some("security".into()),
            })
            .splunk_token("token")
            .no_proxy()
            .build()
            .unwrap()
    };
    // An index the token may not write to, a channel indexer acknowledgement needs: the
    // events wait until the token or the sink is put right.
    for answer in [
        r#"{"text":"Incorrect index","code":7,"invalid-event-number":0}"#,
        r#"{"text":"Data channel is missing","code":10}"#,
        r#"{"text":"No data","code":5}"#,
        r#"{"text":"ACK is disabled","code":14}"#,
        r#"{"text":"Query string authorization is not enabled","code":16}"#,
    ] {
        let mut backend = hec(quoting_collector(400, answer).await);
        let message = assert_unavailable(backend.send(&events(2)).await);
        assert!(message.contains("400"), "{message}");
    }
    // A URL naming the health endpoint: answered 200, code 17, and nothing indexed. The
    // events wait for the URL to be put right instead of being dropped as refused.
    let mut backend = hec(quoting_collector(200, r#"{"text":"HEC is healthy","code":17}"#).await);
    let message = assert_unavailable(backend.send(&events(2)).await);
    assert!(message.contains("code 17"), "{message}");
    // The events' own fault: refused.
    for answer in [
        r#"{"text":"Invalid data format","code":6,"invalid-event-number":0}"#,
        r#"{"text":"Event field is required","code":12,"invalid-event-number":0}"#,
        r#"{"text":"Event field cannot be blank","code":13,"invalid-event-number":0}"#,
        r#"{"text":"Error in handling indexed fields","code":15,"invalid-event-number":0}"#,
    ] {
        let mut backend = hec(quoting_collector(400, answer).await);
        assert_rejected(backend.send(&events(2)).await);
    }
    // Too large: whatever code the answer carries (a configuration code, or one this
    // version does not know), only a smaller request helps. Refused, so that the delivery
    // sends halves; transient, the same request would be sent again and again, and the
    // batch would wait until its retries or the spool ran out.
    for answer in [
        r#"{"text":"Content-Length of 2048 too large (maximum is 1024)","code":27}"#,
        r#"{"text":"Server is busy","code":9}"#,
    ] {
        let mut backend = hec(quoting_collector(413, answer).await);
        let message = assert_rejected(backend.send(&events(2)).await);
        assert!(message.contains("413"), "{message}");
    }
}

#[tokio::test]
async fn a_bulk_answer_hiding_its_failed_items_is_no_delivery() {
    // `?filter_path=errors`: Elasticsearch says some items failed, and not which.
    let url = quoting_collector(200, r#"{"errors":true}"#).await;
    let mut backend = HttpCollector::builder(format!("{url}?filter_path=errors"))
        .format(Format::ElasticsearchBulk { index: "a".into() })
        .no_proxy()
        .build()
        .unwrap();
    let message = assert_unavailable(backend.send(&events(2)).await);
    assert!(message.contains("filter_path"), "{message}");
}

#[tokio::test]
async fn credentials_a_collector_quotes_back_are_not_shown() {
    let secrets = [
        "query-secret-1",
        "bearer-secret-2",
        "basic-secret-3",
        // `writer:basic-secret-3` as sent.
        "d3JpdGVyOmJhc2ljLXNlY3JldC0z",
        "splunk-secret-4",
        "apikey-secret-5",
        "header-secret-6",
    ];
    for (status, body) in [
        (
            401,
            r#"{"error":{"type":"security_exception","reason":"unable to authenticate with [{authorization}] for REST request [{uri}]"},"status":401}"#,
        ),
        (403, "unknown key {key} for {uri}"),
        (400, "malformed request {uri} ({authorization})"),
        (
            200,
            r#"{"errors":true,"items":[{"create":{"status":403,"error":{"type":"security_exception","reason":"{authorization} may not write [{uri}]"}}}]}"#,
        ),
    ] {
        let url = format!(
            "{}?pipeline=geo&token=query-secret-1",
            quoting_collector(status, body).await
        );
        for builder in [
            HttpCollector::builder(&url).bearer_token("bearer-secret-2"),
            HttpCollector::builder(&url).basic_auth("writer", "basic-secret-3"),
            HttpCollector::builder(&url).splunk_token("splunk-secret-4"),
            HttpCollector::builder(&url).elasticsearch_api_key("apikey-secret-5"),
            HttpCollector::builder(&url).header("X-Api-Key", "header-secret-6"),
        ] {
            let mut backend = builder
                .format(Format::ElasticsearchBulk { index: "a".into() })
                .no_proxy()
                .build()
                .unwrap();
            let error = backend.send(&events(1)).await.unwrap_err().to_string();
            assert!(error.contains("<redacted>"), "{error}");
            for secret in secrets {
                assert!(!error.contains(secret), "{secret} in {error}");
            }
        }
    }
    // Only what errors show is scrubbed: a query value the answer holds too (`false`) does
    // not change how the answer is read.
    let url = quoting_collector(
        200,
        r#"{"errors":false,"items":[{"create":{"status":201}}]}"#,
    )
    .await;
    let mut backend = HttpCollector::builder(format!("{url}?refresh=false"))
        .format(Format::ElasticsearchBulk { index: "a".into() })
        .no_proxy()
        .build()
        .unwrap();
    backend.send(&events(1)).await.unwrap();
}

/// A spool directory removed at the end of the test.
struct SpoolDir(std::path::PathBuf);

impl Drop for SpoolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn through_delivery_a_collector_outage_loses_and_doubles_nothing() {
    let collector = Collector::start(bulk(None, true)).await;
    // Down for a while, then one batch indexed whose answer is lost, then healthy.
    collector.script(
        std::iter::repeat_n(Reply::Status(503, None), 6).chain([Reply::StoreThenStatus(503)]),
    );
    let spool = SpoolDir(
        std::env::temp_dir().join(format!("oauth-audit-http-spool-{}", uuid::Uuid::now_v7())),
    );
    let delivery = Delivery::builder(es_builder(&collector).gzip(true).build().unwrap())
        .spool_dir(&spool.0)
        .backoff(Backoff::exponential(
            Duration::from_millis(10),
            Duration::from_millis(200),
        ))
        .build()
        .unwrap();
    let stats = delivery.stats();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .writer(delivery)
        .writer(memory.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;
    for i in 0..30 {
        let response = client()
            .get(format!("http://{addr}/orders/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    collector.wait_for(30).await;
    auditor.shutdown().await;
    let emitted: Vec<String> = support::events(&memory, 30)
        .await
        .iter()
        .map(|event| event["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(emitted.len(), 30);
    // Every event indexed exactly once (by _id), in the order it was emitted.
    assert_eq!(collector.ids(), emitted);
    let failed = collector
        .requests()
        .iter()
        .filter(|request| request.status == 503)
        .count();
    assert_eq!(failed, 7, "the scripted outage was not sent to");
    assert!(stats.retries() > 0);
    assert_eq!(stats.dropped_total(), 0);
    assert_eq!(stats.spooled_events(), 0);
    assert_clean(&collector);
}

#[tokio::test]
async fn ecs_documents_go_to_bulk_and_ocsf_events_to_json_lines() {
    let elasticsearch = Collector::start(bulk(None, false)).await;
    let backend = es_builder(&elasticsearch)
        .event_format(EventFormat::Ecs)
        .build()
        .unwrap();
    let outcomes = drive_requests(backend, 3).await;
    let documents = elasticsearch.wait_for(3).await;
    assert_clean(&elasticsearch);
    assert!(outcomes.lock().unwrap().iter().all(Result::is_ok));
    for document in &documents {
        // `_id` is the event id (the collector checks it against `event.id`).
        assert_eq!(document["ecs"]["version"], oauth_audit::format::ECS_VERSION);
        assert_eq!(document["event"]["action"], "ResourceAccessed");
        assert!(document["@timestamp"].is_string(), "data streams need it");
        assert!(document.get("schema").is_none());
    }

    let vector = Collector::start(Expect {
        shape: Shape::Lines,
        authorization: None,
        gzip: true,
    })
    .await;
    let backend = HttpCollector::builder(vector.url())
        .event_format(EventFormat::Ocsf)
        .gzip(true)
        .no_proxy()
        .build()
        .unwrap();
    drive_requests(backend, 2).await;
    let events = vector.wait_for(2).await;
    assert_clean(&vector);
    for event in &events {
        assert_eq!(event["class_uid"], 6004);
        assert_eq!(
            event["metadata"]["version"],
            oauth_audit::format::OCSF_VERSION
        );
    }
}

#[tokio::test]
async fn another_event_format_has_no_disk_spool_and_no_alertmanager() {
    let collector = Collector::start(bulk(None, false)).await;
    let spool = std::env::temp_dir().join(format!("oauth-audit-ecs-spool-{}", std::process::id()));
    let refused = Delivery::builder(
        es_builder(&collector)
            .event_format(EventFormat::Ecs)
            .build()
            .unwrap(),
    )
    .spool_dir(&spool)
    .build()
    .unwrap_err()
    .to_string();
    assert!(refused.contains("spool_dir"), "{refused}");
    // Without a spool it builds, and schema v1 keeps its spool.
    Delivery::builder(
        es_builder(&collector)
            .event_format(EventFormat::Ocsf)
            .build()
            .unwrap(),
    )
    .build()
    .unwrap();
    let v1 = Delivery::builder(es_builder(&collector).build().unwrap())
        .spool_dir(&spool)
        .build()
        .unwrap();
    drop(v1);
    let _ = std::fs::remove_dir_all(&spool);

    let alertmanager = HttpCollector::builder(collector.url())
        .format(Format::Alertmanager {
            generator_url: None,
        })
        .event_format(EventFormat::Ecs)
        .build()
        .unwrap_err()
        .to_string();
    assert!(alertmanager.contains("event_format"), "{alertmanager}");

    // An event known only by its JSON (as read back from a spool) cannot be made ECS.
    let mut backend = es_builder(&collector)
        .event_format(EventFormat::Ecs)
        .build()
        .unwrap();
    let batch = events(1);
    let error = backend.send(&batch).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("cannot be written as ecs"),
        "{error}"
    );
}

/// The mapping at a dotted path of an index template.
fn mapping<'a>(template: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    let mut node = &template["template"]["mappings"];
    for segment in path.split('.') {
        node = &node["properties"][segment];
    }
    node
}

#[tokio::test]
async fn the_index_template_is_installed_before_the_first_bulk_in_every_format() {
    let cases = [
        (
            EventFormat::OAuthAudit,
            "source.ip",
            "id",
            "http.status",
            "source.user_agent",
        ),
        (
            EventFormat::Ecs,
            "source.ip",
            "event.id",
            "http.response.status_code",
            "user_agent.original",
        ),
        (
            EventFormat::Ocsf,
            "src_endpoint.ip",
            "metadata.uid",
            "http_response.code",
            "http_request.user_agent",
        ),
    ];
    for (format, ip, id, status, agent) in cases {
        let collector = Collector::start(bulk(Some("Basic YXVkaXQ6czNjcmV0"), true)).await;
        let backend = es_builder(&collector)
            .basic_auth("audit", "s3cret")
            .gzip(true)
            .event_format(format)
            .install_template(true)
            .build()
            .unwrap();
        let outcomes = drive_requests(backend, 3).await;
        let documents = collector.wait_for(3).await;
        assert_clean(&collector);
        assert!(
            outcomes.lock().unwrap().iter().all(Result::is_ok),
            "{format}: {:?}",
            outcomes.lock().unwrap()
        );

        // One PUT, before any _bulk, with the _bulk credentials (the collector checks them).
        let log = collector.log();
        assert_eq!(
            log[0], "PUT /_index_template/oauth-audit",
            "{format}: {log:?}"
        );
        assert!(
            log[1..].iter().all(|r| r == "POST /_bulk"),
            "{format}: {log:?}"
        );
        let templates = collector.templates();
        assert_eq!(templates.len(), 1, "{format}");
        let (name, template) = &templates[0];
        assert_eq!(name, "oauth-audit");
        assert_eq!(
            template["index_patterns"],
            serde_json::json!(["oauth-audit"])
        );
        assert_eq!(template["data_stream"], serde_json::json!({}));
        assert_eq!(template["_meta"]["event_format"], format.as_str());
        assert_eq!(mapping(template, "@timestamp")["type"], "date", "{format}");
        assert_eq!(mapping(template, ip)["type"], "ip", "{format}");
        assert_eq!(mapping(template, id)["type"], "keyword", "{format}");
        assert!(
            ["long", "integer"].contains(&mapping(template, status)["type"].as_str().unwrap()),
            "{format}"
        );
        let agent_type = mapping(template, agent)["type"].as_str().unwrap();
        assert!(
            ["text", "keyword"].contains(&agent_type),
            "{format}: {agent_type}"
        );

        // On the wire: the chosen format, each document with the event time as @timestamp
        // (the collector refuses a _bulk document without it, or with another time).
        for document in &documents {
            let time = match format {
                EventFormat::OAuthAudit => {
                    assert_eq!(document["schema"], "oauth-audit/1");
                    &document["time"]
                }
                EventFormat::Ecs => {
                    assert_eq!(document["ecs"]["version"], oauth_audit::format::ECS_VERSION);
                    &document["@timestamp"]
                }
                _ => {
                    assert_eq!(document["class_uid"], 6004);
                    &document["time_dt"]
                }
            };
            assert_eq!(&document["@timestamp"], time, "{format}");
            let stamp = document["@timestamp"].as_str().unwrap();
            assert_eq!(stamp.len(), "2026-11-24T14:03:07.123456Z".len(), "{stamp}");
        }
    }
}

#[tokio::test]
async fn splunk_and_json_lines_get_no_timestamp_added() {
    let vector = Collector::start(Expect {
        shape: Shape::Lines,
        authorization: None,
        gzip: false,
    })
    .await;
    let backend = HttpCollector::builder(vector.url())
        .no_proxy()
        .build()
        .unwrap();
    drive_requests(backend, 1).await;
    let events = vector.wait_for(1).await;
    assert_clean(&vector);
    assert!(events[0].get("@timestamp").is_none(), "{}", events[0]);
    assert_eq!(events[0]["schema"], "oauth-audit/1");
}

#[tokio::test]
async fn a_refused_or_failed_template_keeps_the_batch_waiting() {
    // Transient: no _bulk without the template; the next send installs it, then indexes.
    let collector = Collector::start(bulk(None, false)).await;
    let mut backend = es_builder(&collector)
        .install_template(true)
        .build()
        .unwrap();
    collector.script_templates([503]);
    let batch = events(2);
    let message = assert_unavailable(backend.send(&batch).await);
    assert!(
        message.contains("installing the index template \"oauth-audit\"")
            && message.contains("503"),
        "{message}"
    );
    assert_eq!(collector.log(), ["PUT /_index_template/oauth-audit"]);
    backend.send(&batch).await.unwrap();
    backend.send(&events(1)).await.unwrap();
    assert_eq!(
        collector.log(),
        [
            "PUT /_index_template/oauth-audit",
            "PUT /_index_template/oauth-audit",
            "POST /_bulk",
            "POST /_bulk"
        ]
    );
    assert_eq!(collector.ids().len(), 3);
    assert_clean(&collector);

    // Refused for want of the manage_index_templates privilege, or for a template the
    // cluster does not take: the configuration's fault, not the events'. The batch fails
    // transiently with an error that names the template, nothing is indexed without it, and
    // once the operator puts it right the same events are indexed.
    for refusal in [403, 400] {
        let collector = Collector::start(bulk(None, false)).await;
        let mut backend = es_builder(&collector)
            .template_name("audit-template")
            .install_template(true)
            .build()
            .unwrap();
        collector.script_templates([refusal, refusal]);
        let batch = events(4);
        let message = assert_unavailable(backend.send(&batch).await);
        assert!(
            message.contains("installing the index template \"audit-template\"")
                && message.contains(&refusal.to_string()),
            "{message}"
        );
        let message = assert_unavailable(backend.send(&batch).await);
        assert!(message.contains("index template"), "{message}");
        assert!(collector.ids().is_empty());
        backend.send(&batch).await.unwrap();
        assert_eq!(
            collector.log(),
            [
                "PUT /_index_template/audit-template",
                "PUT /_index_template/audit-template",
                "PUT /_index_template/audit-template",
                "POST /_bulk"
            ]
        );
        assert_eq!(collector.ids(), ids(&batch));
        assert_clean(&collector);
    }
}

#[tokio::test]
async fn through_delivery_a_refused_template_loses_no_event() {
    let collector = Collector::start(bulk(None, false)).await;
    // The writer lacks manage_index_templates, until an operator grants it.
    collector.script_templates([403, 403, 403]);
    let delivery = Delivery::builder(
        es_builder(&collector)
            .install_template(true)
            .build()
            .unwrap(),
    )
    .backoff(Backoff::exponential(
        Duration::from_millis(10),
        Duration::from_millis(50),
    ))
    .build()
    .unwrap();
    let stats = delivery.stats();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .writer(delivery)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders/{id}", get(|| async { "order" }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;
    for i in 0..8 {
        client()
            .get(format!("http://{addr}/orders/{i}"))
            .send()
            .await
            .unwrap();
    }
    auditor.shutdown().await;
    assert_eq!(stats.dropped_total(), 0);
    assert_eq!(collector.ids().len(), 8, "every event indexed once");
    let log = collector.log();
    assert_eq!(log[..4], ["PUT /_index_template/oauth-audit"; 4]);
    assert!(log[4..].iter().all(|line| line == "POST /_bulk"), "{log:?}");
}

#[cfg(feature = "config")]
#[tokio::test]
async fn the_configuration_installs_the_template_with_its_name_and_ilm_policy() {
    use oauth_audit::config::HttpConfig;
    let collector = Collector::start(Expect {
        shape: Shape::Bulk {
            index: "logs-oauth_audit-default".into(),
        },
        authorization: None,
        gzip: false,
    })
    .await;
    let config = |extra: serde_json::Value| -> Result<HttpConfig, String> {
        let mut json = serde_json::json!({
            "url": collector.url(),
            "format": "elasticsearch",
            "index": "logs-oauth_audit-default",
            "event_format": "ocsf",
            "no_proxy": true,
        });
        json.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(json).map_err(|e| e.to_string())
    };
    let mut delivery = config(serde_json::json!({
        "install_template": true,
        "template_name": "oauth-audit-ocsf",
        "ilm_policy": "oauth-audit",
    }))
    .unwrap()
    .build(Some("orders-api"))
    .unwrap();
    let service = Arc::new(ServiceInfo::new("orders-api"));
    let event = Arc::new(AuditEvent::new(
        service,
        Timestamp::now(),
        EventKind::AccessDenied,
        Outcome::Failure,
    ));
    let batch = [EncodedEvent::encode_shared(event).unwrap()];
    delivery.backend_mut().send(&batch).await.unwrap();
    assert_clean(&collector);
    assert_eq!(
        collector.log(),
        ["PUT /_index_template/oauth-audit-ocsf", "POST /_bulk"]
    );
    let (_, template) = &collector.templates()[0];
    assert_eq!(
        template["index_patterns"],
        serde_json::json!(["logs-oauth_audit-default"])
    );
    assert_eq!(
        template["template"]["settings"]["index.lifecycle.name"],
        "oauth-audit"
    );
    assert_eq!(mapping(template, "src_endpoint.ip")["type"], "ip");
    let documents = collector.events();
    assert_eq!(documents[0]["class_uid"], 6004);
    assert_eq!(documents[0]["@timestamp"], documents[0]["time_dt"]);

    // The template settings without install_template, or on another format, are mistakes.
    let err = config(serde_json::json!({ "ilm_policy": "oauth-audit" }))
        .unwrap()
        .build(None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("install_template"), "{err}");
    let err = config(serde_json::json!({ "install_template": true, "format": "json_lines" }))
        .unwrap()
        .build(None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("install_template"), "{err}");
    let err = config(serde_json::json!({ "install_tempalte": true })).unwrap_err();
    assert!(err.contains("unknown field"), "{err}");
}

/// A webhook receiver that keeps each request's headers and body as received.
async fn recording_receiver() -> (String, Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = received.clone();
    let app = Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body.to_vec()));
                "ok"
            }
        },
    );
    let addr = serve(app).await;
    (format!("http://{addr}/hook"), received)
}

#[tokio::test]
async fn the_v2_signature_binds_the_idempotency_key_and_v1_stays_as_it_was() {
    use hmac::{Hmac, Mac};
    let secret = b"webhook-secret";
    let (url, received) = recording_receiver().await;
    let mut backend = HttpCollector::builder(url)
        .format(Format::JsonLines)
        .hmac_sha256_secret(secret.to_vec())
        .no_proxy()
        .build()
        .unwrap();
    backend.send(&events(2)).await.unwrap();
    let received = received.lock().unwrap();
    let (headers, body) = &received[0];
    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    let key = header("idempotency-key");
    let verify = |t: &str, key: Option<&str>, hex_mac: &str| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{t}.").as_bytes());
        if let Some(key) = key {
            mac.update(format!("{key}.").as_bytes());
        }
        mac.update(body);
        mac.verify_slice(&hex::decode(hex_mac).unwrap()).is_ok()
    };

    // v1, as documented before v2: `t=<t>,v1=<hex>` over "<t>.<body>", nothing more.
    let v1 = header("x-oauth-audit-signature");
    let (t, v1) = v1
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .expect("t=<seconds>,v1=<hex>");
    assert!(verify(t, None, v1));

    // v2 covers the Idempotency-Key: the same body replayed with another key (to pass a
    // receiver's deduplication) verifies under v1 but not under v2.
    let v2 = header("x-oauth-audit-signature-v2");
    let (t2, v2) = v2
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v2="))
        .expect("t=<seconds>,v2=<hex>");
    assert_eq!(t2, t);
    assert!(verify(t, Some(&key), v2));
    let replayed_key = "\"00000000000000000000000000000000\"";
    assert_ne!(key, replayed_key);
    assert!(!verify(t, Some(replayed_key), v2));
    assert!(verify(t, None, v1), "v1 cannot tell the replay apart");
}
