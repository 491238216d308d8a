//! Per-writer overflow policies through the layer: `Block` holds back the end of the response
//! while the writer's queue is full, `DropNewest` never does; and the pipeline's metrics.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::MetricKind;
use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
use oauth_audit::writer::{
    AuditWriter, Auditor, MemoryWriter, OverflowPolicy, WriteError, WriterOptions,
};
use oauth_audit::{AuditLayer, RequestBody, ResponseBody};
use tokio::sync::{mpsc, Semaphore};
use tower::{service_fn, ServiceBuilder, ServiceExt};

/// Long enough never to run out in a test that releases the writer itself.
const FOREVER: Duration = Duration::from_secs(120);
/// How long a test waits for something that should happen soon, on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// A writer that announces each batch, then waits for a permit: the test decides when the
/// writer makes progress.
struct GatedWriter {
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedSender<()>,
    inner: MemoryWriter,
}

impl AuditWriter for GatedWriter {
    fn name(&self) -> &str {
        "gated"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        let _ = self.entered.send(());
        self.gate.acquire().await.expect("gate open").forget();
        self.inner.write(batch).await
    }
}

struct Harness {
    auditor: Auditor,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedReceiver<()>,
    memory: MemoryWriter,
}

/// An auditor with one gated writer whose queue holds one event.
fn harness(policy: OverflowPolicy) -> Harness {
    let gate = Arc::new(Semaphore::new(0));
    let (entered_tx, entered) = mpsc::unbounded_channel();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .batch_size(1)
        .writer_with(
            GatedWriter {
                gate: gate.clone(),
                entered: entered_tx,
                inner: memory.clone(),
            },
            WriterOptions::default().overflow(policy).queue_capacity(1),
        )
        .build()
        .unwrap();
    Harness {
        auditor,
        gate,
        entered,
        memory,
    }
}

impl Harness {
    /// Leaves the writer stuck in a write and its queue full.
    async fn fill(&mut self) {
        self.auditor.emit(event(&self.auditor));
        self.entered
            .recv()
            .await
            .expect("the writer takes the first event");
        self.auditor.emit(event(&self.auditor));
        assert_eq!(self.auditor.stats().writers[0].queued, 1);
    }

    async fn request(&self) -> ResponseBody<Full<Bytes>> {
        let svc = ServiceBuilder::new()
            .layer(AuditLayer::new(self.auditor.clone()))
            .service(service_fn(
                |_req: Request<RequestBody<Full<Bytes>>>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
                },
            ));
        svc.oneshot(Request::new(Full::new(Bytes::new())))
            .await
            .unwrap()
            .into_body()
    }

    fn dropped(&self) -> u64 {
        self.auditor.stats().writers[0].dropped
    }

    /// Polls until the writer has written an event matching `found`.
    async fn written(&self, found: impl Fn(&serde_json::Value) -> bool) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !self.memory.json().iter().any(&found) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never written: {:#?}",
                self.memory.json()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn event(auditor: &Auditor) -> AuditEvent {
    AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    )
}

/// Polls a future once, with the task's real waker.
async fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
    let mut future = Some(future);
    std::future::poll_fn(|cx| Poll::Ready(future.take().expect("polled once").as_mut().poll(cx)))
        .await
}

fn kinds(events: &[serde_json::Value], kind: &str) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .cloned()
        .collect()
}

#[tokio::test]
async fn block_holds_the_last_frame_until_the_writer_makes_room() {
    let mut h = harness(OverflowPolicy::Block { timeout: FOREVER });
    h.fill().await;

    let mut body = h.request().await;
    {
        let mut last = pin!(body.frame());
        assert!(
            poll_once(last.as_mut()).await.is_pending(),
            "the last frame went out while the queue was full"
        );
        assert!(h.memory.events().is_empty());

        // The writer finishes its batch and takes the queued event: room for ours.
        h.gate.add_permits(1);
        let frame = last.await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "hello");
    }
    assert!(body.is_end_stream());
    assert!(body.frame().await.is_none());
    assert_eq!(h.dropped(), 0);

    h.gate.add_permits(1000);
    h.auditor.shutdown().await;
    let events = h.memory.json();
    assert_eq!(kinds(&events, "ResourceAccessed").len(), 3, "{events:#?}");
    assert!(
        kinds(&events, "AuditEventsDropped").is_empty(),
        "{events:#?}"
    );
    assert_eq!(h.dropped(), 0);
}

#[tokio::test]
async fn an_empty_response_holds_its_end_until_the_writer_makes_room() {
    let mut h = harness(OverflowPolicy::Block { timeout: FOREVER });
    h.fill().await;

    let svc = ServiceBuilder::new()
        .layer(AuditLayer::new(h.auditor.clone()))
        .service(service_fn(
            |_req: Request<RequestBody<Full<Bytes>>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
            },
        ));
    let mut body = svc
        .oneshot(Request::new(Full::new(Bytes::new())))
        .await
        .unwrap()
        .into_body();
    // Complete as soon as it exists, but it must be polled to be able to wait.
    assert!(!body.is_end_stream());
    {
        let mut end = pin!(body.frame());
        assert!(poll_once(end.as_mut()).await.is_pending());
        h.gate.add_permits(1);
        assert!(end.await.is_none());
    }
    assert!(body.is_end_stream());

    h.gate.add_permits(1000);
    h.auditor.shutdown().await;
    assert_eq!(kinds(&h.memory.json(), "ResourceAccessed").len(), 3);
    assert_eq!(h.dropped(), 0);
}

#[tokio::test]
async fn block_timeout_drops_and_reports_the_exact_count() {
    let mut h = harness(OverflowPolicy::Block {
        timeout: Duration::from_millis(20),
    });
    h.fill().await;

    for _ in 0..3 {
        let body = h.request().await;
        // Ends once the timeout has passed, without the writer moving.
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "hello");
    }
    assert_eq!(h.dropped(), 3);
    assert_eq!(h.auditor.stats().writers[0].queued, 1);

    h.gate.add_permits(1000);
    h.auditor.shutdown().await;
    let events = h.memory.json();
    assert_eq!(kinds(&events, "ResourceAccessed").len(), 2, "{events:#?}");
    let dropped = kinds(&events, "AuditEventsDropped");
    assert_eq!(dropped.len(), 1, "{events:#?}");
    assert_eq!(dropped[0]["dropped"]["reason"], "block_timeout");
    assert_eq!(dropped[0]["dropped"]["count"], 3);
    assert_eq!(dropped[0]["dropped"]["sink"], "gated");
}

#[tokio::test]
async fn drop_newest_never_holds_the_response() {
    let mut h = harness(OverflowPolicy::DropNewest);
    h.fill().await;

    let mut body = h.request().await;
    body.frame().await.unwrap().unwrap();
    assert!(body.is_end_stream(), "nothing is held back");
    assert!(poll_once(pin!(body.frame())).await.is_ready());
    assert_eq!(h.dropped(), 1);

    h.gate.add_permits(1000);
    h.auditor.shutdown().await;
    let events = h.memory.json();
    assert_eq!(kinds(&events, "ResourceAccessed").len(), 2, "{events:#?}");
    let dropped = kinds(&events, "AuditEventsDropped");
    assert_eq!(dropped.len(), 1, "{events:#?}");
    assert_eq!(dropped[0]["dropped"]["reason"], "queue_full");
    assert_eq!(dropped[0]["dropped"]["count"], 1);
}

#[tokio::test]
async fn a_body_dropped_before_its_end_waits_for_room_on_a_task() {
    let mut h = harness(OverflowPolicy::Block { timeout: FOREVER });
    h.fill().await;

    // The client goes away before reading anything: the event (outcome unknown) cannot
    // hold anything back, so it waits by itself.
    drop(h.request().await);
    assert_eq!(h.dropped(), 0);
    assert!(h.memory.events().is_empty());

    h.gate.add_permits(1000);
    h.written(|e| e["outcome"] == "unknown").await;
    h.auditor.shutdown().await;
    let events = h.memory.json();
    assert_eq!(kinds(&events, "ResourceAccessed").len(), 3, "{events:#?}");
    assert!(
        kinds(&events, "AuditEventsDropped").is_empty(),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_held_body_dropped_keeps_waiting_for_room_on_a_task() {
    let mut h = harness(OverflowPolicy::Block { timeout: FOREVER });
    h.fill().await;

    let mut body = h.request().await;
    assert!(poll_once(pin!(body.frame())).await.is_pending());
    // The connection closes while the last frame is held back.
    drop(body);
    assert_eq!(h.dropped(), 0);

    h.gate.add_permits(1000);
    h.written(|e| e["outcome"] == "success" && e["http"]["status"] == 200)
        .await;
    h.auditor.shutdown().await;
    let events = h.memory.json();
    assert_eq!(kinds(&events, "ResourceAccessed").len(), 3, "{events:#?}");
    assert_eq!(h.dropped(), 0);
}

#[tokio::test]
async fn zero_block_timeout_is_a_configuration_error() {
    let err = Auditor::builder()
        .writer_with(
            MemoryWriter::new(),
            WriterOptions::default().overflow(OverflowPolicy::Block {
                timeout: Duration::ZERO,
            }),
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("DropNewest"), "{err}");
    let err = Auditor::builder()
        .writer_with(
            MemoryWriter::new(),
            WriterOptions::default().queue_capacity(0),
        )
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("at least 1"), "{err}");
}

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// What was recorded since the last snapshot (taking one resets the values).
fn snapshot(snapshotter: &Snapshotter) -> Snapshot {
    snapshotter.snapshot().into_vec()
}

/// The value of one metric in a snapshot, by name and labels.
fn metric<'a>(
    snapshot: &'a Snapshot,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    snapshot
        .iter()
        .find(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && key.labels().count() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, value)| value)
}

#[tokio::test]
async fn metrics_count_events_writes_drops_and_queue_depth() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut h = metrics::with_local_recorder(&recorder, || {
        harness(OverflowPolicy::Block {
            timeout: Duration::from_millis(20),
        })
    });
    let registered = snapshot(&snapshotter);
    let (_, unit, description, _) = registered
        .iter()
        .find(|(key, _, _, _)| {
            key.kind() == MetricKind::Counter && key.key().name() == "oauth_audit_events_total"
        })
        .expect("events_total registered at build");
    assert!(description.is_some(), "events_total is described");
    assert_eq!(*unit, Some(metrics::Unit::Count));
    for name in [
        "oauth_audit_queue_depth",
        "oauth_audit_events_written_total",
        "oauth_audit_events_dropped_total",
    ] {
        assert!(
            registered
                .iter()
                .any(|(key, _, description, _)| key.key().name() == name && description.is_some()),
            "{name} registered and described"
        );
    }

    h.fill().await;
    // The event of this request finds the queue full and times out waiting for room.
    h.request().await.collect().await.unwrap();
    let full = snapshot(&snapshotter);
    assert_eq!(
        metric(
            &full,
            "oauth_audit_events_dropped_total",
            &[("writer", "gated"), ("reason", "block_timeout")]
        ),
        Some(&DebugValue::Counter(1))
    );
    assert_eq!(
        metric(&full, "oauth_audit_queue_depth", &[("writer", "gated")]),
        Some(&DebugValue::Gauge(1.0.into())),
        "a full queue of one"
    );
    assert_eq!(
        metric(
            &full,
            "oauth_audit_events_total",
            &[("kind", "ResourceAccessed"), ("outcome", "success")]
        ),
        Some(&DebugValue::Counter(3)),
        "two emitted directly, one through the layer"
    );
    assert_eq!(
        metric(
            &full,
            "oauth_audit_events_total",
            &[("kind", "AccessDenied"), ("outcome", "failure")]
        ),
        Some(&DebugValue::Counter(0))
    );
    assert_eq!(
        metric(
            &full,
            "oauth_audit_events_written_total",
            &[("writer", "gated")]
        ),
        Some(&DebugValue::Counter(0)),
        "the writer is stuck"
    );

    h.gate.add_permits(1000);
    h.auditor.shutdown().await;
    let done = snapshot(&snapshotter);
    // The two queued events; the AuditEventsDropped report is not counted as written.
    assert_eq!(
        metric(
            &done,
            "oauth_audit_events_written_total",
            &[("writer", "gated")]
        ),
        Some(&DebugValue::Counter(2))
    );
    assert_eq!(
        metric(
            &done,
            "oauth_audit_events_dropped_total",
            &[("writer", "gated"), ("reason", "queue_full")]
        ),
        Some(&DebugValue::Counter(0))
    );
}

#[tokio::test]
async fn block_holds_a_real_http_response_until_the_writer_makes_room() {
    let mut h = harness(OverflowPolicy::Block { timeout: FOREVER });
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "hello" }))
        .layer(AuditLayer::new(h.auditor.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    h.fill().await;

    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let client = tokio::spawn({
        let order = order.clone();
        async move {
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            let res = http.get(format!("http://{addr}/")).send().await.unwrap();
            let body = res.text().await.unwrap();
            order.lock().unwrap().push("response complete");
            body
        }
    });
    // Gives a response that is not held back every chance to complete first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    order.lock().unwrap().push("room");
    h.gate.add_permits(1);
    assert_eq!(client.await.unwrap(), "hello");
    assert_eq!(*order.lock().unwrap(), ["room", "response complete"]);

    h.gate.add_permits(1000);
    h.auditor.shutdown().await;
    assert_eq!(kinds(&h.memory.json(), "ResourceAccessed").len(), 3);
    assert_eq!(h.dropped(), 0);
    server.abort();
}
