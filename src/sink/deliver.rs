//! The sink runtime's delivery engine: retries with backoff, the backlog (spool), replay in
//! order, isolation of rejected events, and drop reports. Every sink runs through it, a file
//! writer as much as a remote backend; what differs is only its [`Settings`].

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::adapter::Sink;
use super::backlog::Backlog;
use super::metrics::DROP_REASONS;
use super::{Announcer, BackendError, Backoff, DeliveryStats, EncodedEvent};
use crate::event::{AuditEvent, DropReason, EventKind, ServiceInfo};

/// A replay pass stops after this long, so new events and shutdown are not held up.
const REPLAY_BUDGET: Duration = Duration::from_millis(250);
/// How soon the task is woken while it has a backlog it may replay right away.
const BUSY_WAKE: Duration = Duration::from_millis(1);

/// How a sink is retried.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Whether a failed batch is retried at all. Without, it is dropped as `write_failed`
    /// (a writer's default: a local file has no outage to wait out).
    pub(crate) retry: bool,
    pub(crate) backoff: Backoff,
    pub(crate) inline_retries: u32,
    pub(crate) max_batch: usize,
    /// `None` for writers: abandoning a file write half way would tear a line.
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) memory_retries: u32,
    pub(crate) fsync: bool,
}

/// One sink and everything around it that makes delivery at least once.
///
/// When [`write`](Deliverer::write) returns, every event of the batch is confirmed by the
/// sink, in the backlog, or counted as dropped; drops are reported by an
/// `AuditEventsDropped` event delivered like any other, as soon as there is room. New events
/// never overtake spooled ones.
pub(crate) struct Deliverer<S> {
    sink: S,
    name: String,
    settings: Settings,
    backlog: Backlog,
    /// Read from the backlog and sent at least once, not yet confirmed.
    inflight: Option<super::backlog::ReadBatch>,
    /// How often the in-flight batch failed (bounds retries without a spool directory).
    inflight_failures: u32,
    /// Lines taken out of the backlog since it was last empty: the size of the drain the
    /// "spool replayed" line reports.
    replayed: u64,
    /// Consecutive failed sends.
    failures: u32,
    /// No send before this, after a failure.
    retry_at: Option<Instant>,
    service: Option<Arc<ServiceInfo>>,
    /// Signs drop reports (`dropped.signature`), so that none can be forged: `verify --key`
    /// refuses an unsigned one.
    announce: Option<Announcer>,
    stats: DeliveryStats,
}

impl<S> std::fmt::Debug for Deliverer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("sink", &self.name)
            .field("backlog", &self.backlog)
            .field("failures", &self.failures)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<S: Sink> Deliverer<S> {
    pub(crate) fn new(sink: S, settings: Settings, backlog: Backlog, stats: DeliveryStats) -> Self {
        let deliverer = Deliverer {
            name: sink.name().to_owned(),
            sink,
            settings,
            backlog,
            inflight: None,
            inflight_failures: 0,
            replayed: 0,
            failures: 0,
            retry_at: None,
            service: None,
            announce: None,
            stats,
        };
        deliverer.publish_backlog();
        deliverer
    }

    /// The producer named in drop reports until events say otherwise.
    pub(crate) fn set_service(&mut self, service: Arc<ServiceInfo>) {
        self.service = Some(service);
    }

    pub(crate) fn set_announcer(&mut self, announce: Option<Announcer>) {
        self.announce = announce;
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Whether the sink sends events of `kind` at all ([`Sink::takes_kind`]).
    pub(crate) fn takes_kind(&self, kind: EventKind) -> bool {
        self.sink.takes_kind(kind)
    }

    pub(crate) fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    pub(crate) fn sink(&self) -> &S {
        &self.sink
    }

    pub(crate) fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    fn due(&self) -> bool {
        self.retry_at.is_none_or(|at| Instant::now() >= at)
    }

    /// Delivers new events: straight to the backend when nothing is waiting, else behind
    /// the backlog. Returns how many were lost (the spool was full or failed).
    async fn deliver(&mut self, events: Vec<EncodedEvent>, account: bool) -> u64 {
        if events.is_empty() {
            return 0;
        }
        if !self.backlog.is_empty() {
            return self.spill(events, account).await;
        }
        let mut sent = 0;
        while sent < events.len() {
            let end = (sent + self.settings.max_batch).min(events.len());
            let chunk = &events[sent..end];
            let outcome = match self.send_with_retries(chunk).await {
                Ok(()) => Isolated::default(),
                Err(err) if !err.is_retryable() => self.isolate_rejected(chunk, err).await,
                Err(err) => Isolated::interrupted_at(0, err),
            };
            if let Some((rejected, err)) = outcome.rejected {
                if account {
                    self.rejected(&rejected, &err);
                } else {
                    tracing::warn!(
                        target: "oauth_audit",
                        writer = %self.name,
                        error = %err,
                        "audit backend rejected an AuditEventsDropped report"
                    );
                }
            }
            if let Some((at, err)) = outcome.interrupted {
                // What came before `at` was confirmed or refused: it is not sent again.
                let sent = sent + at;
                if !self.settings.retry {
                    // No retry policy: the rest is lost, as the writer's failure says.
                    let lost = (events.len() - sent) as u64;
                    if account {
                        tracing::warn!(
                            target: "oauth_audit",
                            writer = %self.name,
                            events = lost,
                            error = %err,
                            "audit writer failed; events dropped"
                        );
                        self.lose(DropReason::WriteFailed, &events[sent..]);
                    }
                    return lost;
                }
                return self.spill(events[sent..].to_vec(), account).await;
            }
            sent = end;
        }
        0
    }

    /// After `batch` was rejected as a whole: sends halves of it until each rejected event
    /// is isolated, so one bad event does not take its neighbours down with it. The halves
    /// go in order, so when a transient failure interrupts, everything before the half that
    /// failed was confirmed or refused, and only the rest is retried: a collector that does
    /// not deduplicate (Splunk HEC, JSON lines) would store the confirmed halves twice.
    async fn isolate_rejected(&mut self, batch: &[EncodedEvent], err: BackendError) -> Isolated {
        if batch.len() <= 1 {
            return Isolated {
                rejected: Some((batch.to_vec(), err)),
                interrupted: None,
            };
        }
        let mut rejected = Vec::new();
        let mut last = err;
        let mid = batch.len() / 2;
        let mut pending = VecDeque::from([(0, mid), (mid, batch.len())]);
        let mut interrupted = None;
        while let Some((start, end)) = pending.pop_front() {
            match self.send(&batch[start..end]).await {
                Ok(()) => {}
                Err(err) if err.is_retryable() => {
                    interrupted = Some((start, err));
                    break;
                }
                Err(err) if end - start == 1 => {
                    rejected.push(batch[start].clone());
                    last = err;
                }
                Err(_) => {
                    let mid = start + (end - start) / 2;
                    pending.push_front((mid, end));
                    pending.push_front((start, mid));
                }
            }
        }
        Isolated {
            rejected: (!rejected.is_empty()).then_some((rejected, last)),
            interrupted,
        }
    }

    /// A send, retried briefly inline (only while the backend is not known to be down).
    async fn send_with_retries(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        let attempts = if self.due() && self.failures == 0 {
            1 + self.settings.inline_retries
        } else {
            1
        };
        let mut attempt = 0;
        loop {
            if attempt > 0 || self.failures > 0 {
                self.retried();
            }
            if attempt > 0 {
                tokio::time::sleep(self.settings.backoff.delay(attempt - 1)).await;
            }
            match self.send(batch).await {
                Err(err) if err.is_retryable() && attempt + 1 < attempts => attempt += 1,
                result => return result,
            }
        }
    }

    /// One send; a success clears the backoff, a transient failure extends it.
    async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        let started = Instant::now();
        let sending = self.sink.send(batch);
        let result = match self.settings.send_timeout {
            None => sending.await,
            Some(limit) => match tokio::time::timeout(limit, sending).await {
                Ok(result) => result,
                Err(_) => Err(BackendError::unavailable(
                    self.name.clone(),
                    format!("no confirmation within {limit:?} (the send timeout)"),
                )),
            },
        };
        match &result {
            Ok(()) => self.confirmed(started, batch.iter().map(EncodedEvent::kind)),
            Err(err) if err.is_retryable() => {
                self.stats.add_failure();
                let delay = self.settings.backoff.delay(self.failures);
                self.failures = self.failures.saturating_add(1);
                self.retry_at = Some(Instant::now() + delay);
                if self.failures == 1 && self.settings.retry {
                    tracing::warn!(
                        target: "oauth_audit",
                        writer = %self.name,
                        error = %err,
                        "audit backend unavailable; spooling events and retrying with backoff"
                    );
                } else if self.settings.retry {
                    tracing::debug!(
                        target: "oauth_audit",
                        writer = %self.name,
                        error = %err,
                        failures = self.failures,
                        retry_in = ?delay,
                        "audit backend still unavailable"
                    );
                }
            }
            Err(_) => self.stats.add_failure(),
        }
        result
    }

    /// The sink confirmed a batch of events of these kinds, sent at `started`: counted, and
    /// the backoff cleared.
    fn confirmed(&mut self, started: Instant, kinds: impl ExactSizeIterator<Item = EventKind>) {
        self.stats
            .delivery_seconds()
            .record(started.elapsed().as_secs_f64());
        let events = kinds.len() as u64;
        let reports = kinds
            .filter(|kind| *kind == EventKind::AuditEventsDropped)
            .count() as u64;
        self.stats.add_delivered(events, reports);
        if self.failures > 0 {
            tracing::info!(
                target: "oauth_audit",
                writer = %self.name,
                failures = self.failures,
                "audit backend is back"
            );
        }
        self.failures = 0;
        self.retry_at = None;
    }

    fn retried(&self) {
        self.stats.add_retry();
        self.stats.retries_metric().increment(1);
    }

    fn rejected(&mut self, rejected: &[EncodedEvent], err: &BackendError) {
        tracing::warn!(
            target: "oauth_audit",
            writer = %self.name,
            events = rejected.len(),
            error = %err,
            "audit backend rejected events; they are dropped and reported"
        );
        self.lose(DropReason::Rejected, rejected);
    }

    /// Counts encoded events as lost, with their places in the chain.
    fn lose(&mut self, reason: DropReason, events: &[EncodedEvent]) {
        self.stats.add_dropped_with_seqs(
            reason,
            events.len() as u64,
            events.iter().filter_map(EncodedEvent::chain),
        );
    }

    /// Counts events that were never encoded as lost, with their places in the chain.
    fn lose_events(&mut self, reason: DropReason, events: &[Arc<AuditEvent>]) {
        self.stats.add_dropped_with_seqs(
            reason,
            events.len() as u64,
            events
                .iter()
                .filter_map(|e| e.chain.as_ref().map(|c| (&c.stream, c.seq))),
        );
    }

    /// Appends to the backlog what the backend could not take; what does not fit is lost.
    async fn spill(&mut self, events: Vec<EncodedEvent>, account: bool) -> u64 {
        let total = events.len() as u64;
        // What is not appended is the tail; keep its places in the chain for the report.
        let chains: Vec<_> = events
            .iter()
            .map(|e| e.chain().map(|(stream, seq)| (stream.clone(), seq)))
            .collect();
        let appended = self.backlog.append(events).await;
        self.publish_backlog();
        let lost = total - appended.count as u64;
        let reason = match &appended.error {
            Some(err) => {
                tracing::warn!(
                    target: "oauth_audit",
                    writer = %self.name,
                    spool = ?self.backlog.dir(),
                    error = %err,
                    events = lost,
                    "audit spool write failed"
                );
                if err.kind() == io::ErrorKind::StorageFull {
                    DropReason::SpoolFull
                } else {
                    DropReason::WriteFailed
                }
            }
            None => DropReason::SpoolFull,
        };
        if lost > 0 && account {
            if reason == DropReason::SpoolFull && appended.error.is_none() {
                tracing::warn!(
                    target: "oauth_audit",
                    writer = %self.name,
                    events = lost,
                    "audit spool is full; events dropped (reported once there is room)"
                );
            }
            self.stats.add_dropped_with_seqs(
                reason,
                lost,
                chains[appended.count..]
                    .iter()
                    .flatten()
                    .map(|(stream, seq)| (stream, *seq)),
            );
        }
        lost
    }

    /// Replays the backlog, oldest first, while the backoff allows and for at most
    /// [`REPLAY_BUDGET`].
    async fn replay(&mut self) {
        let deadline = Instant::now() + REPLAY_BUDGET;
        while !self.backlog.is_empty() && self.due() {
            let mut batch = match self.inflight.take() {
                Some(batch) => batch,
                None => match self.backlog.read_batch(self.settings.max_batch).await {
                    Ok(batch) => {
                        if batch.corrupt > 0 {
                            self.stats
                                .add_corrupt(batch.corrupt, batch.corrupt_not_kept);
                        }
                        batch
                    }
                    Err(err) => {
                        tracing::warn!(
                            target: "oauth_audit",
                            writer = %self.name,
                            spool = ?self.backlog.dir(),
                            error = %err,
                            "audit spool read failed; retrying with backoff"
                        );
                        self.retry_at = Some(Instant::now() + self.settings.backoff.delay(0));
                        break;
                    }
                },
            };
            if batch.lines == 0 {
                // Unconfirmed bytes that do not end a line yet: look again later rather
                // than spin.
                self.retry_at = Some(Instant::now() + self.settings.backoff.delay(0));
                break;
            }
            if self.service.is_none() {
                self.service = batch
                    .events
                    .first()
                    .and_then(EncodedEvent::service)
                    .map(Arc::new);
            }
            if !batch.events.is_empty() {
                if self.failures > 0 {
                    self.retried();
                }
                let outcome = match self.send(&batch.events).await {
                    Ok(()) => Isolated::default(),
                    Err(err) if !err.is_retryable() => {
                        self.isolate_rejected(&batch.events, err).await
                    }
                    Err(err) => Isolated::interrupted_at(0, err),
                };
                if let Some((rejected, err)) = &outcome.rejected {
                    self.rejected(rejected, err);
                }
                if let Some((at, _)) = outcome.interrupted {
                    // Retried without what was confirmed or refused before `at`; the
                    // batch's lines are acknowledged together once the rest is confirmed.
                    batch.events.drain(..at);
                    self.inflight_failures += 1;
                    if !self.backlog.is_disk()
                        && self.inflight_failures > self.settings.memory_retries
                    {
                        tracing::warn!(
                            target: "oauth_audit",
                            writer = %self.name,
                            events = batch.events.len(),
                            attempts = self.inflight_failures,
                            "audit backend unavailable for too long and no spool_dir is set; \
                             events dropped"
                        );
                        self.lose(DropReason::WriteFailed, &batch.events);
                    } else {
                        self.inflight = Some(batch);
                        break;
                    }
                }
            }
            self.inflight_failures = 0;
            if let Err(err) = self.backlog.ack(&batch).await {
                tracing::warn!(
                    target: "oauth_audit",
                    writer = %self.name,
                    spool = ?self.backlog.dir(),
                    error = %err,
                    "audit spool cursor could not be saved; confirmed events may be sent again \
                     after a restart"
                );
            }
            self.replayed += batch.lines;
            // Said before the gauges show the empty spool, so whoever sees them sees it said.
            self.replay_finished();
            self.publish_backlog();
            if Instant::now() >= deadline {
                break;
            }
        }
    }

    /// One info line per drain: every line the backlog held (since it was last empty) is
    /// confirmed, dropped or quarantined, and nothing is in flight. `Backlog::is_empty` says
    /// "nothing waits for confirmation", unlike a spool that was merely read to its end.
    fn replay_finished(&mut self) {
        if self.replayed == 0 || self.inflight.is_some() || !self.backlog.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.replayed);
        tracing::info!(
            target: "oauth_audit",
            writer = %self.name,
            spool = ?self.backlog.dir(),
            events,
            "audit spool replayed: {events} events, spool empty"
        );
    }

    /// Delivers one `AuditEventsDropped` per reason for what was lost (here or in the
    /// queue), once there is room.
    async fn report_drops(&mut self) {
        if !self.stats.any_unreported() {
            return;
        }
        let Some(service) = self.service.clone() else {
            return;
        };
        for reason in DROP_REASONS {
            let (count, ranges) = self.stats.take_report(reason);
            if count == 0 {
                // Places are only ever counted with their events: none can wait here.
                debug_assert!(ranges.is_empty(), "places in the chain without a count");
                continue;
            }
            let mut event = AuditEvent::dropped(service.clone(), count, reason, &self.name);
            if let Some(dropped) = &mut event.dropped {
                dropped.ranges = ranges.clone();
            }
            if let Some(announce) = &self.announce {
                announce(&mut event);
            }
            let encoded = match EncodedEvent::encode_shared(Arc::new(event)) {
                Ok(encoded) => encoded,
                Err(err) => {
                    // Cannot happen for this event; forget the count rather than retry forever.
                    tracing::warn!(
                        target: "oauth_audit",
                        writer = %self.name,
                        error = %err,
                        dropped = count,
                        "AuditEventsDropped could not be serialised"
                    );
                    continue;
                }
            };
            if self.deliver(vec![encoded], false).await != 0 {
                // No room yet: try again later, with the count grown by then.
                self.stats.restore_report(reason, count, ranges);
                break;
            }
        }
    }

    fn publish_backlog(&self) {
        let (events, bytes) = self.backlog.counts();
        self.stats.set_spooled(events, bytes);
        let (events_gauge, bytes_gauge) = self.stats.spool_gauges();
        events_gauge.set(events as f64);
        bytes_gauge.set(bytes as f64);
    }

    fn encode(&mut self, batch: &[Arc<AuditEvent>]) -> Vec<EncodedEvent> {
        let mut events = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        for event in batch {
            match EncodedEvent::encode_shared(event.clone()) {
                Ok(encoded) => events.push(encoded),
                Err(err) => {
                    failed.push(event.clone());
                    tracing::warn!(target: "oauth_audit", writer = %self.name, error = %err, "audit event could not be serialised; dropped");
                }
            }
        }
        self.lose_events(DropReason::WriteFailed, &failed);
        events
    }

    /// Takes a batch from the sink's queue: serialises it once, replays what waits, then
    /// delivers it (or spools it, or counts it as lost) and reports drops. When this returns,
    /// every event is confirmed by the sink, in the backlog, or counted as dropped.
    pub(crate) async fn write(&mut self, batch: &[Arc<AuditEvent>]) {
        // Events the sink never sends (an alerts-only sink's ordinary events) are settled
        // here: kept, they would fill the backlog while the sink is down.
        let taken: Vec<Arc<AuditEvent>>;
        let batch = if batch.iter().all(|e| self.sink.takes_kind(e.kind)) {
            batch
        } else {
            taken = batch
                .iter()
                .filter(|e| self.sink.takes_kind(e.kind))
                .cloned()
                .collect();
            &taken[..]
        };
        if batch.is_empty() {
            self.replay().await;
            self.report_drops().await;
            return;
        }
        if let Some(first) = batch.first() {
            if self.service.as_ref() != Some(&first.service) {
                self.service = Some(first.service.clone());
            }
        }
        if self.backlog.is_empty() && self.sink.takes_events() && self.write_events(batch).await {
            self.report_drops().await;
            return;
        }
        let events = self.encode(batch);
        self.replay().await;
        self.deliver(events, true).await;
        self.report_drops().await;
    }

    /// A writer's first attempt at a batch, with nothing waiting before it: the events go as
    /// they are, serialised by the writer straight into its buffer, and only a batch that
    /// must wait for a retry is serialised here. Returns whether the batch is settled
    /// (written, or lost without a retry policy).
    async fn write_events(&mut self, batch: &[Arc<AuditEvent>]) -> bool {
        let started = Instant::now();
        match self.sink.send_events(batch).await {
            Ok(()) => {
                self.stats
                    .delivery_seconds()
                    .record(started.elapsed().as_secs_f64());
                let reports = batch
                    .iter()
                    .filter(|e| e.kind == EventKind::AuditEventsDropped)
                    .count();
                self.stats.add_delivered(batch.len() as u64, reports as u64);
                self.failures = 0;
                self.retry_at = None;
                true
            }
            Err(err) if !self.settings.retry => {
                self.stats.add_failure();
                tracing::warn!(
                    target: "oauth_audit",
                    writer = %self.name,
                    events = batch.len(),
                    error = %err,
                    "audit writer failed; events dropped"
                );
                self.lose_events(DropReason::WriteFailed, batch);
                true
            }
            // Retried inline, then spooled, by the engine.
            Err(_) => false,
        }
    }

    /// Replays what waits, reports drops and makes written events durable.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.replay().await;
        self.report_drops().await;
        if let Err(err) = self.sink.flush().await {
            tracing::warn!(
                target: "oauth_audit",
                writer = %self.name,
                error = %err,
                "audit writer flush failed"
            );
        }
        if !self.settings.fsync {
            self.backlog.sync().await?;
        }
        Ok(())
    }

    /// At stop, after the last [`flush`](Self::flush): events the sink accepted but could not
    /// get into its destination (lines its failed last flush held back) are lost here, and
    /// counted so.
    pub(crate) fn count_unwritten_at_stop(&mut self) {
        let lost = self.sink.unwritten_events();
        if lost == 0 {
            return;
        }
        tracing::warn!(
            target: "oauth_audit",
            writer = %self.name,
            events = lost,
            "audit writer stopped with events its last flush could not write; events lost"
        );
        self.stats.unwrite(lost as u64);
        self.stats.add_dropped(DropReason::WriteFailed, lost as u64);
    }

    /// When the sink's task should call [`flush`](Self::flush) without new events: while a
    /// backlog waits to be replayed or drops to be reported, or the sink has work of its own.
    pub(crate) fn wake_after(&self) -> Option<Duration> {
        let own = self.sink.wake_after();
        let reportable = self.stats.any_unreported() && self.service.is_some();
        if self.backlog.is_empty() && !reportable {
            return own;
        }
        let ours = match self.retry_at {
            Some(at) => at.saturating_duration_since(Instant::now()).max(BUSY_WAKE),
            None => BUSY_WAKE,
        };
        Some(own.map_or(ours, |own| own.min(ours)))
    }
}

/// What sending a batch found: the events refused one by one (with the last refusal), and
/// where a transient failure interrupted, if one did (everything before that place was
/// confirmed or refused).
#[derive(Default)]
struct Isolated {
    rejected: Option<(Vec<EncodedEvent>, BackendError)>,
    interrupted: Option<(usize, BackendError)>,
}

impl Isolated {
    /// A transient failure at `at`, with nothing refused before it.
    fn interrupted_at(at: usize, err: BackendError) -> Self {
        Isolated {
            rejected: None,
            interrupted: Some((at, err)),
        }
    }
}

impl<S> Drop for Deliverer<S> {
    fn drop(&mut self) {
        // A spool keeps its events for the next start; a memory backlog ends here, and
        // its events are counted as lost rather than vanishing.
        if self.backlog.is_disk() {
            return;
        }
        let (lost, _) = self.backlog.counts();
        if lost == 0 {
            return;
        }
        tracing::warn!(
            target: "oauth_audit",
            writer = %self.name,
            events = lost,
            "audit writer stopped with undelivered events and no spool directory; events lost"
        );
        self.stats.add_dropped(DropReason::WriteFailed, lost);
        self.stats.set_spooled(0, 0);
    }
}
