use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::spool::{Appended, Position, ReadBatch, Spool, SpoolConfig};
use super::{Backend, BackendError, Backoff, DeliveryStats, EncodedEvent};
use crate::event::{AuditEvent, DropReason, ServiceInfo};
use crate::writer::{AuditWriter, WriteError};
use crate::ConfigError;

const DEFAULT_MAX_SPOOL_BYTES: u64 = 1024 * 1024 * 1024;
const DEFAULT_MAX_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_MAX_BATCH: usize = 500;
const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_INLINE_RETRIES: u32 = 1;
const DEFAULT_MEMORY_RETRIES: u32 = 10;
/// A replay pass stops after this long, so new events and shutdown are not held up.
const REPLAY_BUDGET: Duration = Duration::from_millis(250);
/// A replay batch stops growing after this many bytes.
const MAX_REPLAY_READ: u64 = 4 * 1024 * 1024;
/// How soon the writer asks to be woken while it has a backlog it may replay right away.
const BUSY_WAKE: Duration = Duration::from_millis(1);

/// An [`AuditWriter`] that delivers events to a [`Backend`] at least once: it retries with
/// exponential backoff and jitter, spills to a bounded on-disk spool while the backend is
/// down, and replays the spool in order when it is back, also after a restart.
///
/// When `write` returns, every event of the batch is confirmed by the backend, in the
/// spool, or counted as dropped (the spool was full, or the backend rejected it); drops are
/// reported by an `AuditEventsDropped` event delivered like any other, as soon as there is
/// room. New events never overtake spooled ones.
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_audit::delivery::{Backend, BackendError, Backoff, Delivery, EncodedEvent};
/// use oauth_audit::writer::Auditor;
///
/// struct Collector;
/// impl Backend for Collector {
///     fn name(&self) -> &str { "collector" }
///     async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
///         // POST the batch, return Ok once the collector confirmed it.
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let delivery = Delivery::builder(Collector)
///     .spool_dir("/var/spool/billing-api/audit")
///     .max_spool_bytes(512 * 1024 * 1024)
///     .backoff(Backoff::exponential(Duration::from_millis(200), Duration::from_secs(60)))
///     .build()?;
/// let stats = delivery.stats();
/// let auditor = Auditor::builder().service_name("billing-api").writer(delivery).build()?;
/// // ... serve ...
/// auditor.shutdown().await;
/// println!("{} delivered, {} left in the spool", stats.delivered(), stats.spooled_events());
/// # Ok(()) }
/// ```
pub struct Delivery<B> {
    backend: B,
    name: String,
    settings: Settings,
    store: Store,
    /// Read from the store and sent at least once, not yet confirmed.
    inflight: Option<ReadBatch>,
    /// How often the in-flight batch failed (bounds retries without a spool directory).
    inflight_failures: u32,
    /// Consecutive failed sends.
    failures: u32,
    /// No send before this, after a failure.
    retry_at: Option<Instant>,
    service: Option<Arc<ServiceInfo>>,
    unreported: Unreported,
    stats: DeliveryStats,
}

#[derive(Clone, Debug)]
struct Settings {
    backoff: Backoff,
    inline_retries: u32,
    max_batch: usize,
    send_timeout: Duration,
    memory_retries: u32,
    fsync: bool,
}

/// Dropped events not yet reported to the backend.
#[derive(Debug, Default)]
struct Unreported {
    spool_full: u64,
    rejected: u64,
    write_failed: u64,
}

impl Unreported {
    fn counter(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::SpoolFull => &mut self.spool_full,
            DropReason::Rejected => &mut self.rejected,
            _ => &mut self.write_failed,
        }
    }

    fn any(&self) -> bool {
        self.spool_full + self.rejected + self.write_failed > 0
    }
}

impl<B> fmt::Debug for Delivery<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("backend", &self.name)
            .field("store", &self.store)
            .field("failures", &self.failures)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> Delivery<B> {
    /// Starts configuring delivery to `backend`.
    pub fn builder(backend: B) -> DeliveryBuilder<B> {
        DeliveryBuilder {
            backend,
            spool_dir: None,
            max_spool_bytes: None,
            segment_bytes: None,
            settings: Settings {
                backoff: Backoff::default(),
                inline_retries: DEFAULT_INLINE_RETRIES,
                max_batch: DEFAULT_MAX_BATCH,
                send_timeout: DEFAULT_SEND_TIMEOUT,
                memory_retries: DEFAULT_MEMORY_RETRIES,
                fsync: true,
            },
        }
    }

    /// Live counters: delivered, spooled, retried, dropped.
    pub fn stats(&self) -> DeliveryStats {
        self.stats.clone()
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
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
        if !self.store.is_empty() {
            return self.spill(events, account).await;
        }
        let mut sent = 0;
        while sent < events.len() {
            let end = (sent + self.settings.max_batch).min(events.len());
            let chunk = &events[sent..end];
            let result = match self.send_with_retries(chunk).await {
                Err(err) if !err.is_retryable() => self.isolate_rejected(chunk, err).await,
                other => other.map(|()| None),
            };
            match result {
                Ok(None) => {}
                Ok(Some((count, err))) => {
                    if account {
                        self.rejected(count, &err);
                    } else {
                        tracing::warn!(
                            target: "oauth_audit",
                            writer = %self.name,
                            error = %err,
                            "audit backend rejected an AuditEventsDropped report"
                        );
                    }
                }
                Err(_) => return self.spill(events[sent..].to_vec(), account).await,
            }
            sent = end;
        }
        0
    }

    /// After `batch` was rejected as a whole: sends halves of it until each rejected event
    /// is isolated, so one bad event does not take its neighbours down with it. Returns how
    /// many events were rejected (with the last refusal), or the transient failure that
    /// interrupted; then the whole batch is retried later, and the halves confirmed so far
    /// are sent again (the backend deduplicates them).
    async fn isolate_rejected(
        &mut self,
        batch: &[EncodedEvent],
        err: BackendError,
    ) -> Result<Option<(usize, BackendError)>, BackendError> {
        if batch.len() <= 1 {
            return Ok(Some((batch.len(), err)));
        }
        let mut rejected = 0;
        let mut last = err;
        let mid = batch.len() / 2;
        let mut pending = VecDeque::from([(0, mid), (mid, batch.len())]);
        while let Some((start, end)) = pending.pop_front() {
            match self.send(&batch[start..end]).await {
                Ok(()) => {}
                Err(err) if err.is_retryable() => return Err(err),
                Err(err) if end - start == 1 => {
                    rejected += 1;
                    last = err;
                }
                Err(_) => {
                    let mid = start + (end - start) / 2;
                    pending.push_front((mid, end));
                    pending.push_front((start, mid));
                }
            }
        }
        Ok(Some((rejected, last)))
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
        let result = match tokio::time::timeout(
            self.settings.send_timeout,
            self.backend.send(batch),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(BackendError::unavailable(
                self.name.clone(),
                format!(
                    "no confirmation within {:?} (the send timeout)",
                    self.settings.send_timeout
                ),
            )),
        };
        match &result {
            Ok(()) => {
                metrics::histogram!("oauth_audit_delivery_seconds", "writer" => self.name.clone())
                    .record(started.elapsed().as_secs_f64());
                self.stats.add_delivered(batch.len() as u64);
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
            Err(err) if err.is_retryable() => {
                self.stats.add_failure();
                let delay = self.settings.backoff.delay(self.failures);
                self.failures = self.failures.saturating_add(1);
                self.retry_at = Some(Instant::now() + delay);
                if self.failures == 1 {
                    tracing::warn!(
                        target: "oauth_audit",
                        writer = %self.name,
                        error = %err,
                        "audit backend unavailable; spooling events and retrying with backoff"
                    );
                } else {
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

    fn retried(&self) {
        self.stats.add_retry();
        metrics::counter!("oauth_audit_delivery_retries_total", "writer" => self.name.clone())
            .increment(1);
    }

    fn rejected(&mut self, count: usize, err: &BackendError) {
        tracing::warn!(
            target: "oauth_audit",
            writer = %self.name,
            events = count,
            error = %err,
            "audit backend rejected events; they are dropped and reported"
        );
        self.lose(DropReason::Rejected, count as u64);
    }

    fn lose(&mut self, reason: DropReason, count: u64) {
        if count == 0 {
            return;
        }
        self.stats.add_dropped(reason, count);
        metrics::counter!(
            crate::writer::metrics::EVENTS_DROPPED,
            "writer" => self.name.clone(),
            "reason" => reason.as_str(),
        )
        .increment(count);
        *self.unreported.counter(reason) += count;
    }

    /// Appends to the backlog what the backend could not take; what does not fit is lost.
    async fn spill(&mut self, events: Vec<EncodedEvent>, account: bool) -> u64 {
        let total = events.len() as u64;
        let appended = self.store.append(events).await;
        self.publish_backlog();
        let lost = total - appended.count as u64;
        let reason = match &appended.error {
            Some(err) => {
                tracing::warn!(
                    target: "oauth_audit",
                    writer = %self.name,
                    spool = ?self.store.dir(),
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
            self.lose(reason, lost);
        }
        lost
    }

    /// Replays the backlog, oldest first, while the backoff allows and for at most
    /// [`REPLAY_BUDGET`].
    async fn replay(&mut self) {
        let deadline = Instant::now() + REPLAY_BUDGET;
        while !self.store.is_empty() && self.due() {
            let batch = match self.inflight.take() {
                Some(batch) => batch,
                None => match self.store.read_batch(self.settings.max_batch).await {
                    Ok(batch) => {
                        if batch.corrupt > 0 {
                            self.stats.add_corrupt(batch.corrupt);
                        }
                        batch
                    }
                    Err(err) => {
                        tracing::warn!(
                            target: "oauth_audit",
                            writer = %self.name,
                            spool = ?self.store.dir(),
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
                let result = match self.send(&batch.events).await {
                    Err(err) if !err.is_retryable() => {
                        self.isolate_rejected(&batch.events, err).await
                    }
                    other => other.map(|()| None),
                };
                match result {
                    Ok(None) => {}
                    Ok(Some((count, err))) => self.rejected(count, &err),
                    Err(_) => {
                        self.inflight_failures += 1;
                        if !self.store.is_disk()
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
                            self.lose(DropReason::WriteFailed, batch.events.len() as u64);
                        } else {
                            self.inflight = Some(batch);
                            break;
                        }
                    }
                }
            }
            self.inflight_failures = 0;
            if let Err(err) = self.store.ack(&batch).await {
                tracing::warn!(
                    target: "oauth_audit",
                    writer = %self.name,
                    spool = ?self.store.dir(),
                    error = %err,
                    "audit spool cursor could not be saved; confirmed events may be sent again \
                     after a restart"
                );
            }
            self.publish_backlog();
            if Instant::now() >= deadline {
                break;
            }
        }
    }

    /// Delivers `AuditEventsDropped` for what was lost, once there is room.
    async fn report_drops(&mut self) {
        if !self.unreported.any() {
            return;
        }
        let Some(service) = self.service.clone() else {
            return;
        };
        for reason in [
            DropReason::SpoolFull,
            DropReason::Rejected,
            DropReason::WriteFailed,
        ] {
            let count = *self.unreported.counter(reason);
            if count == 0 {
                continue;
            }
            let event = AuditEvent::dropped(service.clone(), count, reason, &self.name);
            let encoded = match EncodedEvent::encode(&event) {
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
                    *self.unreported.counter(reason) = 0;
                    continue;
                }
            };
            if self.deliver(vec![encoded], false).await == 0 {
                *self.unreported.counter(reason) -= count;
            } else {
                // No room yet: try again later, with the count grown by then.
                break;
            }
        }
    }

    fn publish_backlog(&self) {
        let (events, bytes) = self.store.counts();
        self.stats.set_spooled(events, bytes);
        metrics::gauge!("oauth_audit_spool_events", "writer" => self.name.clone())
            .set(events as f64);
        metrics::gauge!("oauth_audit_spool_bytes", "writer" => self.name.clone()).set(bytes as f64);
    }

    fn encode(&mut self, batch: &[Arc<AuditEvent>]) -> Vec<EncodedEvent> {
        let mut events = Vec::with_capacity(batch.len());
        let mut failed = 0;
        for event in batch {
            match EncodedEvent::encode(event) {
                Ok(encoded) => events.push(encoded),
                Err(err) => {
                    failed += 1;
                    tracing::warn!(target: "oauth_audit", writer = %self.name, error = %err, "audit event could not be serialised; dropped");
                }
            }
        }
        self.lose(DropReason::WriteFailed, failed);
        events
    }
}

impl<B: Backend> AuditWriter for Delivery<B> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        if let Some(first) = batch.first() {
            if self.service.as_ref() != Some(&first.service) {
                self.service = Some(first.service.clone());
            }
        }
        let events = self.encode(batch);
        self.replay().await;
        self.deliver(events, true).await;
        self.report_drops().await;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        self.replay().await;
        self.report_drops().await;
        if !self.settings.fsync {
            self.store.sync().await?;
        }
        Ok(())
    }

    fn wake_after(&self) -> Option<Duration> {
        let reportable = self.unreported.any() && self.service.is_some();
        if self.store.is_empty() && !reportable {
            return None;
        }
        Some(match self.retry_at {
            Some(at) => at.saturating_duration_since(Instant::now()).max(BUSY_WAKE),
            None => BUSY_WAKE,
        })
    }
}

/// Where undelivered events wait: the on-disk spool, or memory without a spool directory.
#[derive(Debug)]
enum Store {
    Disk {
        spool: Arc<Mutex<Spool>>,
        dir: PathBuf,
    },
    Memory(MemoryBacklog),
}

impl Store {
    fn dir(&self) -> Option<&std::path::Path> {
        match self {
            Store::Disk { dir, .. } => Some(dir),
            Store::Memory(_) => None,
        }
    }

    fn is_disk(&self) -> bool {
        matches!(self, Store::Disk { .. })
    }

    /// Whether nothing waits for confirmation.
    fn is_empty(&self) -> bool {
        match self {
            Store::Disk { spool, .. } => lock(spool).is_empty(),
            Store::Memory(memory) => memory.events.is_empty(),
        }
    }

    fn counts(&self) -> (u64, u64) {
        match self {
            Store::Disk { spool, .. } => {
                let spool = lock(spool);
                (spool.events(), spool.bytes())
            }
            Store::Memory(memory) => (memory.events.len() as u64, memory.bytes),
        }
    }

    async fn append(&mut self, events: Vec<EncodedEvent>) -> Appended {
        match self {
            Store::Disk { spool, .. } => {
                let spool = spool.clone();
                tokio::task::spawn_blocking(move || lock(&spool).append(&events))
                    .await
                    .unwrap_or_else(|join| Appended {
                        count: 0,
                        error: Some(io::Error::other(join)),
                    })
            }
            Store::Memory(memory) => memory.append(events),
        }
    }

    async fn read_batch(&mut self, max_events: usize) -> io::Result<ReadBatch> {
        match self {
            Store::Disk { spool, .. } => {
                let spool = spool.clone();
                tokio::task::spawn_blocking(move || {
                    lock(&spool).read_batch(max_events, MAX_REPLAY_READ)
                })
                .await
                .map_err(io::Error::other)?
            }
            Store::Memory(memory) => Ok(memory.read_batch(max_events)),
        }
    }

    async fn ack(&mut self, batch: &ReadBatch) -> io::Result<()> {
        match self {
            Store::Disk { spool, .. } => {
                let spool = spool.clone();
                let confirmed = ReadBatch {
                    events: Vec::new(),
                    lines: batch.lines,
                    bytes: batch.bytes,
                    corrupt: batch.corrupt,
                    end: batch.end,
                };
                tokio::task::spawn_blocking(move || lock(&spool).ack(&confirmed))
                    .await
                    .map_err(io::Error::other)?
            }
            Store::Memory(memory) => {
                memory.ack(batch);
                Ok(())
            }
        }
    }

    async fn sync(&self) -> io::Result<()> {
        match self {
            Store::Disk { spool, .. } => {
                let spool = spool.clone();
                tokio::task::spawn_blocking(move || lock(&spool).sync())
                    .await
                    .map_err(io::Error::other)?
            }
            Store::Memory(_) => Ok(()),
        }
    }
}

/// Only the writer's own task uses the spool, one operation at a time: the lock is never
/// contended, and a panic inside an operation leaves a spool that is still consistent on
/// disk.
fn lock(spool: &Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    spool
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<B> Drop for Delivery<B> {
    fn drop(&mut self) {
        // A spool keeps its events for the next start; a memory backlog ends here, and
        // its events are counted as lost rather than vanishing.
        let Store::Memory(memory) = &self.store else {
            return;
        };
        let lost = memory.events.len() as u64;
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
        metrics::counter!(
            crate::writer::metrics::EVENTS_DROPPED,
            "writer" => self.name.clone(),
            "reason" => DropReason::WriteFailed.as_str(),
        )
        .increment(lost);
    }
}

/// The backlog without a spool directory: lost at a restart.
#[derive(Debug)]
struct MemoryBacklog {
    events: VecDeque<EncodedEvent>,
    bytes: u64,
    max_bytes: u64,
    inflight: usize,
}

impl MemoryBacklog {
    fn append(&mut self, events: Vec<EncodedEvent>) -> Appended {
        let mut count = 0;
        for event in events {
            let size = event.json().len() as u64 + 1;
            if self.bytes + size > self.max_bytes {
                break;
            }
            self.bytes += size;
            self.events.push_back(event);
            count += 1;
        }
        Appended { count, error: None }
    }

    fn read_batch(&mut self, max_events: usize) -> ReadBatch {
        let events: Vec<_> = self
            .events
            .iter()
            .skip(self.inflight)
            .take(max_events)
            .cloned()
            .collect();
        self.inflight += events.len();
        ReadBatch {
            lines: events.len() as u64,
            bytes: events.iter().map(|e| e.json().len() as u64 + 1).sum(),
            corrupt: 0,
            end: Position::default(),
            events,
        }
    }

    fn ack(&mut self, batch: &ReadBatch) {
        let count = (batch.lines as usize).min(self.events.len());
        self.events.drain(..count);
        self.inflight = self.inflight.saturating_sub(count);
        self.bytes = self.bytes.saturating_sub(batch.bytes);
    }
}

/// Configures a [`Delivery`]; made by [`Delivery::builder`].
///
/// ```
/// use oauth_audit::delivery::{Backend, BackendError, Delivery, EncodedEvent};
///
/// struct Null;
/// impl Backend for Null {
///     fn name(&self) -> &str { "null" }
///     async fn send(&mut self, _: &[EncodedEvent]) -> Result<(), BackendError> { Ok(()) }
/// }
///
/// let dir = std::env::temp_dir().join(format!("audit-spool-doc-{}", std::process::id()));
/// let delivery = Delivery::builder(Null)
///     .spool_dir(&dir)
///     .max_spool_bytes(64 * 1024 * 1024)
///     .build()?;
/// # drop(delivery);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), oauth_audit::ConfigError>(())
/// ```
#[must_use]
pub struct DeliveryBuilder<B> {
    backend: B,
    spool_dir: Option<PathBuf>,
    max_spool_bytes: Option<u64>,
    segment_bytes: Option<u64>,
    settings: Settings,
}

impl<B> fmt::Debug for DeliveryBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryBuilder")
            .field("spool_dir", &self.spool_dir)
            .field("max_spool_bytes", &self.max_spool_bytes)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> DeliveryBuilder<B> {
    /// Where events wait on disk while the backend is down (created if missing, locked
    /// while in use). Without it they wait in memory, are retried a bounded number of
    /// times ([`memory_retries`](Self::memory_retries)) and are lost at a restart.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool_dir = Some(dir.into());
        self
    }

    /// The most bytes of unconfirmed events kept (default 1 GiB on disk, 16 MiB in
    /// memory). Events that do not fit are dropped and reported.
    pub fn max_spool_bytes(mut self, bytes: u64) -> Self {
        self.max_spool_bytes = Some(bytes);
        self
    }

    /// The size at which a spool segment file is closed and a new one started (default
    /// 16 MiB, or an eighth of the spool bound if that is smaller). Confirmed segments are
    /// deleted whole.
    pub fn spool_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = Some(bytes);
        self
    }

    /// Whether every append to the spool is fsynced before `write` returns (default
    /// `true`); with `false`, the spool is fsynced when the queue runs empty and at
    /// shutdown, so a power loss (not a process crash) can lose the latest spooled events.
    pub fn spool_fsync(mut self, fsync: bool) -> Self {
        self.settings.fsync = fsync;
        self
    }

    /// How long to wait between attempts (default 100 ms doubling up to 30 s, full jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Immediate retries of a new batch before it is spooled (default 1). Kept small: the
    /// writer's queue waits meanwhile.
    pub fn inline_retries(mut self, retries: u32) -> Self {
        self.settings.inline_retries = retries;
        self
    }

    /// The most events sent in one batch (default 500).
    pub fn max_batch(mut self, events: usize) -> Self {
        self.settings.max_batch = events;
        self
    }

    /// How long a send may take before it counts as failed (default 30 s).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.settings.send_timeout = timeout;
        self
    }

    /// Without a spool directory: how many failed attempts a batch gets before it is
    /// dropped and reported (default 10). Ignored with a spool directory, where events are
    /// retried until the backend takes them.
    pub fn memory_retries(mut self, retries: u32) -> Self {
        self.settings.memory_retries = retries;
        self
    }

    /// Checks the settings and opens the spool: creates and locks the directory, and
    /// recovers what a previous run left (cuts a torn last line, resumes at the cursor).
    /// It does blocking file I/O, so call it at startup.
    pub fn build(self) -> Result<Delivery<B>, ConfigError> {
        self.settings.backoff.validate()?;
        if self.settings.max_batch == 0 {
            return Err(ConfigError::invalid(
                "max_batch",
                "must be at least 1 event",
            ));
        }
        if self.settings.send_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "send_timeout",
                "must be positive (e.g. 30 s)",
            ));
        }
        if self.max_spool_bytes == Some(0) {
            return Err(ConfigError::invalid(
                "max_spool_bytes",
                "must be positive (e.g. 1 GiB)",
            ));
        }
        if self.segment_bytes == Some(0) {
            return Err(ConfigError::invalid(
                "spool_segment_bytes",
                "must be positive (e.g. 16 MiB)",
            ));
        }
        let name = self.backend.name().to_owned();
        let stats = DeliveryStats::default();
        let store = match self.spool_dir {
            Some(dir) => {
                let max_bytes = self.max_spool_bytes.unwrap_or(DEFAULT_MAX_SPOOL_BYTES);
                let segment_bytes = self
                    .segment_bytes
                    .unwrap_or_else(|| DEFAULT_SEGMENT_BYTES.min((max_bytes / 8).max(4096)));
                let (spool, recovered) = Spool::open(SpoolConfig {
                    dir: dir.clone(),
                    max_bytes,
                    segment_bytes,
                    fsync: self.settings.fsync,
                })
                .map_err(|err| ConfigError::invalid("spool_dir", err.to_string()))?;
                if recovered.torn_bytes > 0 {
                    tracing::warn!(
                        target: "oauth_audit",
                        writer = %name,
                        spool = %dir.display(),
                        bytes = recovered.torn_bytes,
                        "audit spool ended in a torn line (a crash during a write); cut off"
                    );
                }
                if !spool.is_empty() {
                    tracing::info!(
                        target: "oauth_audit",
                        writer = %name,
                        spool = %dir.display(),
                        events = spool.events(),
                        "audit spool holds events from a previous run; replaying them first"
                    );
                }
                Store::Disk {
                    spool: Arc::new(Mutex::new(spool)),
                    dir,
                }
            }
            None => Store::Memory(MemoryBacklog {
                events: VecDeque::new(),
                bytes: 0,
                max_bytes: self.max_spool_bytes.unwrap_or(DEFAULT_MAX_MEMORY_BYTES),
                inflight: 0,
            }),
        };
        let delivery = Delivery {
            backend: self.backend,
            name,
            settings: self.settings,
            store,
            inflight: None,
            inflight_failures: 0,
            failures: 0,
            retry_at: None,
            service: None,
            unreported: Unreported::default(),
            stats,
        };
        delivery.publish_backlog();
        Ok(delivery)
    }
}
