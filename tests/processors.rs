//! Processors: every event passes each processor once, in order, in the background, before
//! it is fanned out, so that every writer receives the same event. With one writer they run
//! in its task, with several in a stage of their own: each test runs both ways.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth_audit::event::{AuditEvent, EventKind, Outcome, Severity, Timestamp};
use oauth_audit::process::Processor;
use oauth_audit::writer::{Auditor, AuditorBuilder, MemoryWriter, WriterOptions};

/// Adds `memory` and, for `writers == 2`, a second writer beside it.
fn with_writers(
    builder: AuditorBuilder,
    memory: &MemoryWriter,
    options: WriterOptions,
    writers: usize,
) -> AuditorBuilder {
    let builder = builder.writer_with(memory.clone(), options.clone());
    match writers {
        1 => builder,
        _ => builder.writer_with(MemoryWriter::new(), options),
    }
}

/// The writer's `AuditEventsDropped` reports, and the other events, each in order.
fn drop_reports_apart(
    events: Vec<serde_json::Value>,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    events
        .into_iter()
        .partition(|e| e["kind"] == "AuditEventsDropped")
}

fn event(auditor: &Auditor, kind: EventKind) -> AuditEvent {
    AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        kind,
        Outcome::Success,
    )
}

#[tokio::test]
async fn a_closure_labels_every_event_and_every_writer_sees_the_same_event() {
    let first = MemoryWriter::new();
    let second = MemoryWriter::new();
    let auditor = Auditor::builder()
        .processor(|event: &mut AuditEvent| {
            event.labels.insert("tenant".into(), "acme".into());
        })
        .writer(first.clone())
        .writer(second.clone())
        .build()
        .unwrap();
    for _ in 0..10 {
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
    }
    auditor.shutdown().await;
    assert_eq!(first.json().len(), 10, "shutdown drains the stage first");
    assert_eq!(first.json(), second.json());
    assert!(first.json().iter().all(|e| e["labels"]["tenant"] == "acme"));
}

#[tokio::test]
async fn labels_are_omitted_when_empty() {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    auditor.emit(event(&auditor, EventKind::ResourceAccessed));
    auditor.shutdown().await;
    assert!(memory.json()[0].get("labels").is_none());
}

/// Raises an alert after every third event; counts what it saw.
struct EveryThird {
    seen: Arc<Mutex<Vec<EventKind>>>,
}

impl Processor for EveryThird {
    fn process(&mut self, event: &mut AuditEvent, emitted: &mut Vec<AuditEvent>) {
        let mut seen = self.seen.lock().unwrap();
        seen.push(event.kind);
        if seen.len().is_multiple_of(3) {
            let mut alert = AuditEvent::new(
                event.service.clone(),
                Timestamp::now(),
                EventKind::SecurityAlert,
                Outcome::Unknown,
            );
            alert.severity = Severity::Critical;
            emitted.push(alert);
        }
    }
}

#[tokio::test]
async fn added_events_follow_their_cause_through_the_later_processors_only() {
    for writers in [1, 2] {
        added_events_follow_their_cause(writers).await;
    }
}

async fn added_events_follow_their_cause(writers: usize) {
    let memory = MemoryWriter::new();
    let first_saw = Arc::new(Mutex::new(Vec::new()));
    let later_saw = Arc::new(Mutex::new(Vec::new()));
    let later = later_saw.clone();
    let builder = Auditor::builder()
        .processor(EveryThird {
            seen: first_saw.clone(),
        })
        .processor(move |event: &mut AuditEvent| {
            later.lock().unwrap().push(event.kind);
            event.labels.insert("stage".into(), "2".into());
        });
    let auditor = with_writers(builder, &memory, WriterOptions::default(), writers)
        .build()
        .unwrap();
    for _ in 0..6 {
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
    }
    auditor.shutdown().await;
    let kinds: Vec<String> = memory
        .json()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    let r = "ResourceAccessed";
    let a = "SecurityAlert";
    assert_eq!(kinds, [r, r, r, a, r, r, r, a], "{writers} writer(s)");
    assert_eq!(first_saw.lock().unwrap().len(), 6, "not its own alerts");
    assert_eq!(later_saw.lock().unwrap().len(), 8, "the alerts too");
    assert!(memory.json().iter().all(|e| e["labels"]["stage"] == "2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processors_never_run_on_the_request_path() {
    for writers in [1, 2] {
        never_on_the_request_path(writers).await;
    }
}

async fn never_on_the_request_path(writers: usize) {
    let memory = MemoryWriter::new();
    let (release, gate) = std_mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let builder = Auditor::builder()
        .queue_capacity(4)
        .processor(move |_: &mut AuditEvent| {
            // Stuck until the test lets it go.
            let _ = gate.lock().unwrap().recv_timeout(Duration::from_secs(60));
        });
    let auditor = with_writers(builder, &memory, WriterOptions::default(), writers)
        .build()
        .unwrap();
    // emit returns at once although the processor is stuck on the first event; with the
    // queue in front of it full, further events are dropped and counted, not waited for.
    for _ in 0..20 {
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
    }
    for _ in 0..20 {
        release.send(()).unwrap();
    }
    auditor.shutdown().await;
    let stats = &auditor.stats().writers[0];
    let written = memory
        .json()
        .iter()
        .filter(|e| e["kind"] == "ResourceAccessed")
        .count() as u64;
    assert!(
        stats.dropped > 0,
        "a full queue drops the newest: {stats:?} ({writers} writer(s))"
    );
    assert_eq!(
        written + stats.dropped,
        20,
        "every event written or counted"
    );
    let reported: u64 = memory
        .json()
        .iter()
        .filter(|e| e["kind"] == "AuditEventsDropped")
        .map(|e| e["dropped"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(reported, stats.dropped, "and the loss reported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_writer_waits_for_room_in_the_stage_instead_of_losing_events() {
    for writers in [1, 2] {
        blocking_writer_waits(writers).await;
    }
}

async fn blocking_writer_waits(writers: usize) {
    let memory = MemoryWriter::new();
    let builder = Auditor::builder()
        .queue_capacity(2)
        .processor(|_: &mut AuditEvent| std::thread::sleep(Duration::from_millis(2)));
    let blocking = WriterOptions::default().overflow(oauth_audit::writer::OverflowPolicy::Block {
        timeout: Duration::from_secs(60),
    });
    let auditor = with_writers(builder, &memory, blocking, writers)
        .build()
        .unwrap();
    for _ in 0..30 {
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
    }
    // emit spawns the waits; give them the time they need, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while memory.json().len() < 30 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    auditor.shutdown().await;
    assert_eq!(memory.json().len(), 30, "{writers} writer(s)");
    assert_eq!(auditor.stats().writers[0].dropped, 0);
}

/// Takes a millisecond per event and counts its ticks.
struct SlowTicker {
    ticks: Arc<Mutex<u32>>,
}

impl Processor for SlowTicker {
    fn process(&mut self, _event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {
        std::thread::sleep(Duration::from_millis(1));
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }

    fn tick(&mut self, _emitted: &mut Vec<AuditEvent>) {
        *self.ticks.lock().unwrap() += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_still_come_while_events_never_stop_arriving() {
    for writers in [1, 2] {
        ticks_while_events_keep_coming(writers).await;
    }
}

async fn ticks_while_events_keep_coming(writers: usize) {
    // Events arrive twice as fast as the processor takes them, so the queue in front of it
    // is never empty while they do: a checkpoint every minute must not wait for a lull.
    let ticks = Arc::new(Mutex::new(0));
    let builder = Auditor::builder()
        .queue_capacity(100_000)
        .processor(SlowTicker {
            ticks: ticks.clone(),
        });
    let auditor = with_writers(
        builder,
        &MemoryWriter::new(),
        WriterOptions::default(),
        writers,
    )
    .build()
    .unwrap();
    let flooding = auditor.clone();
    let flood = std::thread::spawn(move || {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(600) {
            flooding.emit(event(&flooding, EventKind::ResourceAccessed));
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    tokio::task::spawn_blocking(move || flood.join().unwrap())
        .await
        .unwrap();
    let during = *ticks.lock().unwrap();
    auditor.shutdown().await;
    assert!(
        during >= 1,
        "no tick in 600 ms of uninterrupted events ({writers} writer(s))"
    );
}

/// Raises an event on each tick, and one more at the finish.
struct Heartbeat;

impl Processor for Heartbeat {
    fn process(&mut self, _event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {}

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(10))
    }

    fn tick(&mut self, emitted: &mut Vec<AuditEvent>) {
        emitted.push(heartbeat("tick"));
    }

    fn finish(&mut self, emitted: &mut Vec<AuditEvent>) {
        emitted.push(heartbeat("finish"));
    }
}

fn heartbeat(label: &str) -> AuditEvent {
    let mut event = AuditEvent::new(
        Arc::new(oauth_audit::event::ServiceInfo::new("heartbeat")),
        Timestamp::now(),
        EventKind::SecurityAlert,
        Outcome::Unknown,
    );
    event.labels.insert("from".into(), label.into());
    event
}

#[tokio::test]
async fn ticks_raise_events_while_nothing_arrives_and_the_finish_comes_last() {
    for writers in [1, 2] {
        let memory = MemoryWriter::new();
        let builder =
            Auditor::builder()
                .processor(Heartbeat)
                .processor(|event: &mut AuditEvent| {
                    event.labels.insert("seen".into(), "later".into());
                });
        let auditor = with_writers(builder, &memory, WriterOptions::default(), writers)
            .build()
            .unwrap();
        // No event at all: only time passes.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while memory.json().len() < 3 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        auditor.shutdown().await;
        let events = memory.json();
        assert!(events.len() >= 4, "{writers} writer(s): {events:?}");
        let from: Vec<&str> = events
            .iter()
            .map(|e| e["labels"]["from"].as_str().unwrap())
            .collect();
        assert!(
            from[..from.len() - 1].iter().all(|f| *f == "tick"),
            "{from:?}"
        );
        assert_eq!(from.last(), Some(&"finish"), "{writers} writer(s)");
        assert!(
            events.iter().all(|e| e["labels"]["seen"] == "later"),
            "what a tick raises goes through the processors after it"
        );
    }
}

/// Ticks every millisecond and raises nothing.
struct FastTicker;

impl Processor for FastTicker {
    fn process(&mut self, _event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {}

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(1))
    }
}

/// Counts what it was given and its flushes.
#[derive(Clone, Default)]
struct FlushCounter {
    written: Arc<Mutex<usize>>,
    flushes: Arc<Mutex<usize>>,
}

impl oauth_audit::writer::AuditWriter for FlushCounter {
    fn name(&self) -> &str {
        "flush-counter"
    }

    async fn write(
        &mut self,
        batch: &[Arc<AuditEvent>],
    ) -> Result<(), oauth_audit::writer::WriteError> {
        *self.written.lock().unwrap() += batch.len();
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), oauth_audit::writer::WriteError> {
        *self.flushes.lock().unwrap() += 1;
        Ok(())
    }
}

#[tokio::test]
async fn ticks_more_frequent_than_the_linger_do_not_hold_back_the_flush() {
    // The writer's linger is 50 ms and the processor ticks every millisecond, in the
    // writer's own task: what was written is still flushed once the queue stays empty.
    let writer = FlushCounter::default();
    let auditor = Auditor::builder()
        .flush_linger(Duration::from_millis(50))
        .processor(FastTicker)
        .writer(writer.clone())
        .build()
        .unwrap();
    auditor.emit(event(&auditor, EventKind::ResourceAccessed));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while *writer.flushes.lock().unwrap() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*writer.written.lock().unwrap(), 1);
    assert!(
        *writer.flushes.lock().unwrap() >= 1,
        "no flush while the ticks kept coming"
    );
    auditor.shutdown().await;
}

/// Events that keep coming faster than the linger never leave the queue idle for it: what was
/// written is still flushed, within `AuditorBuilder::flush_linger`'s documented bound (200 ms
/// after the first write since the last flush), not only when the traffic stops.
#[tokio::test(start_paused = true)]
async fn a_steady_stream_of_events_is_still_flushed_within_a_bound() {
    let writer = FlushCounter::default();
    let auditor = Auditor::builder().writer(writer.clone()).build().unwrap();
    let start = tokio::time::Instant::now();
    let mut first_flush = None;
    // One event every 5 ms for a second: the default linger (10 ms) is never reached.
    for _ in 0..200 {
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
        tokio::time::sleep(Duration::from_millis(5)).await;
        if first_flush.is_none() && *writer.flushes.lock().unwrap() > 0 {
            first_flush = Some(start.elapsed());
        }
    }
    let flushes = *writer.flushes.lock().unwrap();
    assert!(
        first_flush.is_some_and(|at| at <= Duration::from_millis(210)),
        "first flush at {first_flush:?}"
    );
    // About one every 200 ms, not one per batch.
    assert!((4..=6).contains(&flushes), "{flushes} flushes in a second");
    auditor.shutdown().await;
}

/// A processor with a bug: panics on the second event it sees, and again at the finish.
struct Faulty {
    seen: usize,
}

impl Processor for Faulty {
    fn process(&mut self, event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {
        self.seen += 1;
        event.labels.insert("seen".into(), self.seen.to_string());
        assert_ne!(self.seen, 2, "a processor's bug");
    }

    fn finish(&mut self, _emitted: &mut Vec<AuditEvent>) {
        panic!("a processor's bug at the finish");
    }
}

#[tokio::test]
async fn a_panicking_processor_drops_the_event_and_stops_nothing() {
    use oauth_audit::chain::{Chaining, SigningKey};

    for writers in [1, 2] {
        let memory = MemoryWriter::new();
        let builder = Auditor::builder()
            .processor(Faulty { seen: 0 })
            .processor(|event: &mut AuditEvent| {
                event.labels.insert("later".into(), "yes".into());
            })
            .chain(Chaining::new().signing_key(SigningKey::generate("orders-api").unwrap()));
        let auditor = with_writers(builder, &memory, WriterOptions::default(), writers)
            .build()
            .unwrap();
        for _ in 0..3 {
            auditor.emit(event(&auditor, EventKind::ResourceAccessed));
        }
        // Events after the panic, in later batches, still go through.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..2 {
            auditor.emit(event(&auditor, EventKind::ResourceAccessed));
        }
        auditor.shutdown().await;
        let (reports, events) = drop_reports_apart(memory.json());
        let seen: Vec<&str> = events
            .iter()
            .filter_map(|e| e["labels"]["seen"].as_str())
            .collect();
        assert_eq!(seen, ["1", "3", "4", "5"], "{writers} writer(s)");
        // The event it panicked on reaches neither the later processors nor the chain,
        // which has no gap; the chain is sealed at the finish all the same.
        assert!(events[..4].iter().all(|e| e["labels"]["later"] == "yes"));
        assert_eq!(events.len(), 5, "{writers} writer(s)");
        assert_eq!(events[4]["kind"], "AuditCheckpoint");
        let seqs: Vec<u64> = events
            .iter()
            .map(|e| e["chain"]["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        // Every writer counts it and says so.
        assert!(auditor.stats().writers.iter().all(|w| w.dropped == 1));
        assert_eq!(reports.len(), 1, "{reports:#?}");
        assert_eq!(reports[0]["dropped"]["reason"], "processor_panicked");
        assert_eq!(reports[0]["dropped"]["count"], 1);
    }
}

/// A redaction with a bug: takes the client's secret out of an event, then panics before
/// it takes the token out.
struct HalfRedaction;

impl Processor for HalfRedaction {
    fn process(&mut self, event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {
        event.labels.remove("client_secret");
        if event.labels.contains_key("token") {
            panic!("a redaction's bug");
        }
    }
}

/// An auditor with `writers` writers and the [`HalfRedaction`] processor, which has been
/// handed an event with two secrets to redact: it redacts one, then panics.
fn half_redacted(writers: usize) -> (Auditor, MemoryWriter) {
    let memory = MemoryWriter::new();
    let builder = Auditor::builder().processor(HalfRedaction);
    let auditor = with_writers(builder, &memory, WriterOptions::default(), writers)
        .build()
        .unwrap();
    let mut secret = event(&auditor, EventKind::TokenRevoked);
    secret
        .labels
        .insert("client_secret".into(), "s3cr3t".into());
    secret.labels.insert("token".into(), "t0k3n".into());
    auditor.emit(secret);
    (auditor, memory)
}

#[tokio::test]
async fn an_event_half_redacted_by_a_panic_reaches_no_writer() {
    for writers in [1, 2] {
        let (auditor, memory) = half_redacted(writers);
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
        auditor.shutdown().await;
        let events = memory.json();
        let text = serde_json::to_string(&events).unwrap();
        assert!(!text.contains("t0k3n"), "{writers} writer(s): {text}");
        let (reports, events) = drop_reports_apart(events);
        assert_eq!(events.len(), 1, "{writers} writer(s)");
        assert_eq!(events[0]["kind"], "ResourceAccessed");
        assert_eq!(reports.len(), 1, "{writers} writer(s)");
        assert_eq!(reports[0]["dropped"]["reason"], "processor_panicked");
        assert!(auditor.stats().writers.iter().all(|w| w.dropped == 1));
    }
}

/// With several writers the processors run in a stage of their own, which counts an event a
/// processor panicked on for every writer while their tasks may be idle, waiting for the
/// next event: the writers' `AuditEventsDropped` reports waited for it (or for the
/// shutdown), so on a quiet service, or for an alerts-only writer, the loss went unreported
/// for as long as nothing else came, and for good if the process died meanwhile.
#[tokio::test]
async fn an_event_a_processor_panicked_on_is_reported_without_waiting_for_another() {
    for writers in [1, 2] {
        let (auditor, memory) = half_redacted(writers);
        let mut reported = false;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            reported = memory
                .json()
                .iter()
                .any(|e| e["dropped"]["reason"] == "processor_panicked");
            if reported {
                break;
            }
        }
        assert!(reported, "{writers} writer(s): {:?}", memory.json());
        auditor.shutdown().await;
    }
}

/// A processor with a bug that raises an alert and then panics: on the first event it sees,
/// and on its first tick.
struct RaisesThenPanics {
    service: Option<Arc<oauth_audit::event::ServiceInfo>>,
    ticked: bool,
}

impl RaisesThenPanics {
    fn alert(&self) -> AuditEvent {
        AuditEvent::new(
            self.service.clone().expect("an event came first"),
            Timestamp::now(),
            EventKind::SecurityAlert,
            Outcome::Success,
        )
    }
}

impl Processor for RaisesThenPanics {
    fn process(&mut self, event: &mut AuditEvent, emitted: &mut Vec<AuditEvent>) {
        if self.service.is_none() {
            self.service = Some(event.service.clone());
            emitted.push(self.alert());
            panic!("a processor's bug after raising an alert");
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(Duration::from_millis(10))
    }

    fn tick(&mut self, emitted: &mut Vec<AuditEvent>) {
        if self.service.is_some() && !self.ticked {
            self.ticked = true;
            emitted.push(self.alert());
            panic!("a processor's bug after raising an alert on a tick");
        }
    }
}

/// The alerts a processor raised before it panicked were discarded without a count: no
/// writer's statistics, metric or `AuditEventsDropped` report said an alert was lost, only
/// a log line did.
#[tokio::test]
async fn events_a_panicking_call_had_added_are_counted_as_dropped() {
    for writers in [1, 2] {
        let memory = MemoryWriter::new();
        let builder = Auditor::builder().processor(RaisesThenPanics {
            service: None,
            ticked: false,
        });
        let auditor = with_writers(builder, &memory, WriterOptions::default(), writers)
            .build()
            .unwrap();
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
        // The tick's alert too.
        tokio::time::sleep(Duration::from_millis(100)).await;
        auditor.emit(event(&auditor, EventKind::ResourceAccessed));
        auditor.shutdown().await;
        let (reports, events) = drop_reports_apart(memory.json());
        assert_eq!(events.len(), 1, "{writers} writer(s): {events:#?}");
        let dropped: u64 = reports
            .iter()
            .filter(|r| r["dropped"]["reason"] == "processor_panicked")
            .map(|r| r["dropped"]["count"].as_u64().unwrap())
            .sum();
        // The event it panicked on, its alert, and the tick's alert.
        assert_eq!(dropped, 3, "{writers} writer(s): {reports:#?}");
        assert!(
            auditor.stats().writers.iter().all(|w| w.dropped == 3),
            "{writers} writer(s): {:?}",
            auditor.stats().writers
        );
    }
}
