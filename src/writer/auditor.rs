use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{AuditWriter, JsonLines};
use crate::chain::{sign_announcement, Chainer, Chaining};
use crate::event::recycle::Recycler;
use crate::event::{AuditEvent, DropReason, EventKind, Outcome, ServiceInfo, Source, Timestamp};
use crate::process::processors::Processors;
use crate::process::stage::{self, StageCommand};
use crate::process::Processor;
use crate::sink::metrics::{self, EventMetrics};
use crate::sink::queue::{Offered, SinkQueue};
use crate::sink::task::QueueConfig;
use crate::sink::{Announcer, Backoff, Inline, IntoSink, OverflowPolicy, SinkSpec, SpoolSettings};
use crate::ConfigError;

/// The handle that takes events from the request path to the writers.
///
/// Cheap to clone; every clone feeds the same writers. Built with [`Auditor::builder`]
/// (or [`Auditor::new`] for one writer and the defaults) inside a Tokio runtime, which
/// runs one background task per writer.
#[derive(Clone, Debug)]
pub struct Auditor {
    inner: Arc<Inner>,
}

/// How many sources of written events an auditor keeps for requests to capture theirs into
/// (see `event::recycle`). The events themselves are kept up to what its queues hold.
const RECYCLED_SOURCES: usize = 512;

/// The most written events an auditor keeps for reuse, whatever its queues hold: twice the
/// default queue. A sink's task drains at once what gathered while it slept (a millisecond's
/// events) or a burst; a backlog beyond this is what a stalled sink left, whose excess is
/// freed as it is written rather than held (with its ring's slots, 16 bytes each, allocated
/// up front) for the rest of the process's life.
const RECYCLED_MAX: usize = 16_384;

#[derive(Debug)]
struct Inner {
    service: Arc<ServiceInfo>,
    /// The processors' stage, when there are processors: events go there first.
    stage: Option<mpsc::Sender<StageCommand>>,
    lanes: Arc<[SinkQueue]>,
    closed: AtomicBool,
    metrics: Arc<EventMetrics>,
    /// Events the sinks are done with, for the next ones.
    recycler: Recycler,
    /// The chain's checkpoints still to be posted, waited for at shutdown.
    #[cfg(feature = "http")]
    posted: Option<crate::chain::Posted>,
}

impl Auditor {
    /// An auditor feeding one writer, with the default queue size and service name.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime, like `tokio::spawn`. Use [`Auditor::builder`]
    /// to get an error instead.
    pub fn new<W: AuditWriter>(writer: W) -> Self {
        match Auditor::builder().writer(writer).build() {
            Ok(auditor) => auditor,
            Err(err) => panic!("{err}"),
        }
    }

    /// An auditor writing JSON lines to standard output.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn stdout() -> Self {
        Auditor::new(JsonLines::stdout())
    }

    /// Starts configuring an auditor.
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder::default()
    }

    /// The producer named in every event.
    pub fn service(&self) -> &Arc<ServiceInfo> {
        &self.inner.service
    }

    /// [`AuditEvent::new`] of this auditor's service with its `request_id`, in the `Arc`
    /// it will be offered in ([`Auditor::offer_shared`]): one a sink handed back when there
    /// is one.
    pub(crate) fn new_event(
        &self,
        time: Timestamp,
        kind_outcome: (EventKind, Outcome),
        request_id: &str,
    ) -> Arc<AuditEvent> {
        self.inner
            .recycler
            .event(self.inner.service.clone(), time, kind_outcome, request_id)
    }

    /// The source of an event made again, kept for a request to capture its own into (see
    /// `event::recycle`); `None` when there is none.
    pub(crate) fn recycled_source(&self) -> Option<Source> {
        self.inner.recycler.source()
    }

    /// Queues an event for every writer. Never blocks the caller.
    ///
    /// A writer whose queue is full follows its [`OverflowPolicy`]: under
    /// [`DropNewest`](OverflowPolicy::DropNewest) the event is dropped and counted
    /// (reported later as `AuditEventsDropped`); under [`Block`](OverflowPolicy::Block) a
    /// task is spawned that waits for room up to the timeout. (The audit layer does
    /// better: it holds back the end of the response while it waits, so a slow writer slows
    /// the client down instead of piling up tasks.)
    pub fn emit(&self, event: AuditEvent) {
        if let Some(overflow) = self.offer(event) {
            overflow.spawn();
        }
    }

    /// Queues an event for every writer that has room, and hands back what must still
    /// wait for room in writers with a [`Block`](OverflowPolicy::Block) policy.
    ///
    /// The common case, where every queue has room, allocates nothing but the event's `Arc`.
    pub(crate) fn offer(&self, mut event: AuditEvent) -> Option<Overflow> {
        // Whatever JSON a reused event carries is not this event's any more.
        event.json.clear();
        let event = self.inner.recycler.adopt(event);
        self.offer_shared(event)
    }

    /// [`Auditor::offer`] for an event already in the `Arc` it travels in, which the caller
    /// built in place so that the event is not moved on its way there. Its `json` must be
    /// empty: only the chain sets it, downstream of here.
    pub(crate) fn offer_shared(&self, event: Arc<AuditEvent>) -> Option<Overflow> {
        debug_assert!(
            event.json.get().is_none(),
            "an offered event carries no JSON"
        );
        self.inner.metrics.record(event.kind, event.outcome);
        if self.inner.closed.load(Ordering::Acquire) {
            self.drop_everywhere(event.kind, DropReason::ShutDown);
            return None;
        }
        if let Some(stage) = &self.inner.stage {
            return self.offer_to_stage(stage, event);
        }
        let mut overflow: Option<Overflow> = None;
        let mut wait = |event: Arc<AuditEvent>, index: usize| {
            overflow
                .get_or_insert_with(|| Overflow::new(self.clone(), Waiting::Sinks(event)))
                .blocked
                .push(index);
        };
        // Every lane but the last gets its own reference; the last one takes the event's,
        // which spares a count taken and given back on the line the sink's task reads.
        let (last, others) = self.inner.lanes.split_last()?;
        for (index, lane) in others.iter().enumerate() {
            if let Offered::MustWait(event) = lane.offer(event.clone()) {
                wait(event, index);
            }
        }
        if let Offered::MustWait(event) = last.offer(event) {
            wait(event, others.len());
        }
        overflow
    }

    /// With processors, an event reaches the sinks through the stage's queue. When that is
    /// full, each sink applies its own policy, as if its queue were the full one.
    fn offer_to_stage(
        &self,
        stage: &mpsc::Sender<StageCommand>,
        event: Arc<AuditEvent>,
    ) -> Option<Overflow> {
        let event = match stage.try_send(StageCommand::Event(event)) {
            Ok(()) => return None,
            Err(mpsc::error::TrySendError::Closed(command)) => {
                if let StageCommand::Event(event) = command {
                    self.drop_everywhere(event.kind, DropReason::ShutDown);
                }
                return None;
            }
            Err(mpsc::error::TrySendError::Full(StageCommand::Event(event))) => event,
            Err(mpsc::error::TrySendError::Full(StageCommand::Shutdown(_))) => return None,
        };
        let kind = event.kind;
        let mut overflow = Overflow::new(self.clone(), Waiting::Stage(Some(event)));
        for (index, lane) in self.inner.lanes.iter().enumerate() {
            if !lane.takes(kind) {
                continue;
            }
            match lane.overflow {
                OverflowPolicy::DropNewest => lane.stats.add_dropped(DropReason::QueueFull, 1),
                OverflowPolicy::Block { .. } => overflow.blocked.push(index),
            }
        }
        (!overflow.blocked.is_empty()).then_some(overflow)
    }

    /// Counts an event of `kind` lost in every sink that would have written it: a sink
    /// that takes only alerts loses no request's event.
    fn drop_everywhere(&self, kind: EventKind, reason: DropReason) {
        for lane in self.inner.lanes.iter().filter(|lane| lane.takes(kind)) {
            lane.stats.add_dropped(reason, 1);
        }
    }

    /// Writes and flushes every event accepted so far, then stops the writers. With a chain
    /// that posts its checkpoints to a URL, then waits (up to 10 seconds) until the
    /// checkpoints still waiting, the last one made now included, are posted.
    ///
    /// Events emitted after this began are counted as dropped. Calling it twice is harmless.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        if let Some(stage) = &self.inner.stage {
            // The stage first: what it still holds goes to the sinks before they stop.
            let (ack, done) = oneshot::channel();
            if stage.send(StageCommand::Shutdown(ack)).await.is_ok() {
                let _ = done.await;
            }
        }
        // Every lane is closed before any is waited for, so they drain at the same time.
        for lane in self.inner.lanes.iter() {
            lane.close();
        }
        for lane in self.inner.lanes.iter() {
            lane.shutdown().await;
        }
        // The last checkpoint was made as the pipeline stopped: it is posted only now.
        #[cfg(feature = "http")]
        if let Some(posted) = &self.inner.posted {
            posted.wait().await;
        }
        self.inner.recycler.clear();
    }

    /// Counters per writer: what was written and what was dropped.
    pub fn stats(&self) -> AuditorStats {
        AuditorStats {
            writers: self
                .inner
                .lanes
                .iter()
                .map(|lane| WriterStats {
                    name: lane.name.clone(),
                    written: lane.stats.written(),
                    dropped: lane.stats.dropped_total(),
                    queued: lane.queued(),
                    capacity: lane.capacity(),
                    spooled: lane.stats.spooled_events(),
                    overflow: lane.overflow,
                })
                .collect(),
        }
    }
}

/// A snapshot of an [`Auditor`]'s counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditorStats {
    /// One entry per writer, in the order they were added.
    pub writers: Vec<WriterStats>,
}

/// Counters of one writer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// The writer's name.
    pub name: String,
    /// Events written successfully (not counting `AuditEventsDropped` reports).
    pub written: u64,
    /// Events dropped (a processor's panic, full queue, failed writes, a full spool,
    /// rejected events, after shutdown, blocking timeouts); [`DeliveryStats`](crate::delivery::DeliveryStats) has
    /// the count per reason.
    pub dropped: u64,
    /// Events waiting in the queue.
    pub queued: usize,
    /// Events the queue holds at most.
    pub capacity: usize,
    /// Events waiting in the writer's backlog (its spool, or memory) to be retried.
    pub spooled: u64,
    /// What happens when the writer's queue is full.
    pub overflow: OverflowPolicy,
}

/// An event that found the queue of one or more [`Block`](OverflowPolicy::Block) writers
/// full: waiting for room in them, each up to its timeout.
///
/// Dropped before it is done (its runtime is shutting down), the event is counted as
/// dropped with `block_timeout` by every writer it had not reached yet.
#[derive(Debug)]
pub(crate) struct Overflow {
    auditor: Auditor,
    waiting: Waiting,
    /// Indexes of the lanes to wait for.
    blocked: Vec<usize>,
    /// How many of them are settled.
    settled: usize,
    since: tokio::time::Instant,
}

/// Where an overflowing event waits for room.
#[derive(Debug)]
enum Waiting {
    /// In the queues of the blocked sinks.
    Sinks(Arc<AuditEvent>),
    /// In the processors' stage queue (taken once it is in).
    Stage(Option<Arc<AuditEvent>>),
}

impl Overflow {
    fn new(auditor: Auditor, waiting: Waiting) -> Self {
        Overflow {
            auditor,
            waiting,
            blocked: Vec::new(),
            settled: 0,
            since: tokio::time::Instant::now(),
        }
    }

    /// Waits for room in each blocked writer in turn, up to that writer's timeout
    /// counted from the moment its queue was found full. Waiting in turn costs nothing:
    /// the deadlines run concurrently, so the total wait is the longest timeout at most.
    pub(crate) async fn wait(mut self) {
        if let Waiting::Stage(event) = &mut self.waiting {
            // The stage queue is shared by every sink: wait as long as the most patient one.
            let longest = self
                .blocked
                .iter()
                .filter_map(
                    |&index| match self.auditor.inner.lanes.get(index)?.overflow {
                        OverflowPolicy::Block { timeout } => Some(timeout),
                        OverflowPolicy::DropNewest => None,
                    },
                )
                .max()
                .unwrap_or_default();
            let Some(stage) = self.auditor.inner.stage.clone() else {
                return;
            };
            if let Ok(Ok(permit)) =
                tokio::time::timeout_at(self.since + longest, stage.reserve()).await
            {
                if let Some(event) = event.take() {
                    permit.send(StageCommand::Event(event));
                    self.settled = self.blocked.len();
                }
            }
            return;
        }
        let Waiting::Sinks(event) = &self.waiting else {
            return;
        };
        let event = event.clone();
        while let Some(&index) = self.blocked.get(self.settled) {
            let Some(lane) = self.auditor.inner.lanes.get(index) else {
                break;
            };
            let timeout = match lane.overflow {
                OverflowPolicy::Block { timeout } => timeout,
                OverflowPolicy::DropNewest => Duration::ZERO,
            };
            lane.send_before(event.clone(), self.since + timeout).await;
            self.settled += 1;
        }
    }

    /// Waits on a task of its own: for when nobody is left to wait (a response body
    /// dropped before its end). Outside a Tokio runtime the event is counted as dropped.
    pub(crate) fn spawn(self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.wait());
        }
    }
}

impl Drop for Overflow {
    fn drop(&mut self) {
        for &index in self.blocked.get(self.settled..).unwrap_or_default() {
            if let Some(lane) = self.auditor.inner.lanes.get(index) {
                lane.stats.add_dropped(DropReason::BlockTimeout, 1);
            }
        }
    }
}

/// Options for one writer, given to [`AuditorBuilder::writer_with`].
///
/// ```
/// use oauth_audit::writer::{OverflowPolicy, WriterOptions};
///
/// let options = WriterOptions::default().queue_capacity(64);
/// assert_eq!(options, WriterOptions::default().queue_capacity(64).overflow(OverflowPolicy::DropNewest));
/// ```
///
/// A writer may also be retried, with a spool, like a remote backend: a file on a volume that
/// fills up or a network mount that goes away loses nothing while the spool (on another
/// volume) has room.
///
/// ```
/// use std::time::Duration;
/// use oauth_audit::delivery::Backoff;
/// use oauth_audit::writer::{Auditor, JsonLines, WriterOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("audit-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let auditor = Auditor::builder()
///     .writer_with(
///         JsonLines::file(dir.join("audit.jsonl")).await?,
///         WriterOptions::default()
///             .retry(Backoff::exponential(Duration::from_millis(100), Duration::from_secs(30)))
///             .spool_dir(dir.join("spool")),
///     )
///     .build()?;
/// auditor.shutdown().await;
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[must_use]
pub struct WriterOptions {
    overflow: OverflowPolicy,
    queue_capacity: Option<usize>,
    retry: Option<Backoff>,
    spool: SpoolSettings,
}

impl WriterOptions {
    /// What happens when the writer's queue is full (default
    /// [`OverflowPolicy::DropNewest`]).
    pub fn overflow(mut self, policy: OverflowPolicy) -> Self {
        self.overflow = policy;
        self
    }

    /// Events this writer may have waiting (default: the auditor's
    /// [`queue_capacity`](AuditorBuilder::queue_capacity)).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }

    /// Retries a batch the writer failed, with `backoff` between attempts, instead of
    /// dropping it (the default). While the writer fails, events wait in its backlog: in
    /// memory (bounded by [`max_spool_bytes`](Self::max_spool_bytes), 16 MiB by default, and
    /// given up after 10 failed attempts), or in a [`spool_dir`](Self::spool_dir). Not for a
    /// [`Delivery`](crate::delivery::Delivery), which has its own settings.
    pub fn retry(mut self, backoff: Backoff) -> Self {
        self.retry = Some(backoff);
        self
    }

    /// Where events wait on disk while the writer fails (created if missing, locked while in
    /// use), replayed in order when it works again, also after a restart. Implies
    /// [`retry`](Self::retry) with the default [`Backoff`] unless one is set. Only for writers
    /// that take JSON back ([`AuditWriter::accepts_json`]: the file writers).
    pub fn spool_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spool.dir = Some(dir.into());
        self
    }

    /// The most bytes of events kept waiting (default 1 GiB on disk, 16 MiB in memory);
    /// events that do not fit are dropped and reported as `spool_full`.
    pub fn max_spool_bytes(mut self, bytes: u64) -> Self {
        self.spool.max_bytes = Some(bytes);
        self
    }

    fn retrying(&self) -> Option<crate::sink::Retrying> {
        if self.retry.is_none() && self.spool == SpoolSettings::default() {
            return None;
        }
        Some(crate::sink::Retrying {
            backoff: self.retry.unwrap_or_default(),
            spool: self.spool.clone(),
        })
    }
}

/// Configures an [`Auditor`].
#[must_use]
pub struct AuditorBuilder {
    service: ServiceInfo,
    capacity: usize,
    batch_size: usize,
    flush_linger: Duration,
    writers: Vec<(WriterOptions, SinkSpec)>,
    processors: Vec<Box<dyn Processor>>,
    chaining: Option<Chaining>,
}

impl std::fmt::Debug for AuditorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditorBuilder")
            .field("service", &self.service)
            .field("capacity", &self.capacity)
            .field("batch_size", &self.batch_size)
            .field("writers", &self.writers.len())
            .field("processors", &self.processors.len())
            .field("chaining", &self.chaining)
            .finish()
    }
}

impl Default for AuditorBuilder {
    fn default() -> Self {
        AuditorBuilder {
            service: ServiceInfo {
                name: "oauth-audit".to_owned(),
                instance: None,
            },
            capacity: 8192,
            batch_size: 256,
            flush_linger: Duration::from_millis(10),
            writers: Vec::new(),
            processors: Vec::new(),
            chaining: None,
        }
    }
}

impl AuditorBuilder {
    /// The `service.name` of every event (default `oauth-audit`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service.name = name.into();
        self
    }

    /// The `service.instance` of every event (a host or pod name).
    pub fn service_instance(mut self, instance: impl Into<String>) -> Self {
        self.service.instance = Some(instance.into());
        self
    }

    /// Events each writer may have waiting before its [`OverflowPolicy`] applies (default
    /// 8192). [`WriterOptions::queue_capacity`] overrides it for one writer. Each writer's
    /// queue takes 16 bytes per event of capacity up front (128 KiB by default), plus the
    /// events it holds.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most events handed to a writer at once (default 256).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// How long a writer's queue must stay empty before the writer is flushed (default
    /// 10 ms). Shorter: events reach the disk sooner; longer: fewer, larger writes. Traffic
    /// that never leaves the queue empty that long is still flushed at least every 200 ms
    /// (or every linger, when it is longer), counted from the first write after a flush.
    pub fn flush_linger(mut self, linger: Duration) -> Self {
        self.flush_linger = linger;
        self
    }

    /// Adds a processor: a stage every event passes through, in the order processors were
    /// added, before it reaches any writer (see [`crate::process`]). Processors run in a
    /// background task of the pipeline's own, never on the request path.
    pub fn processor<P: Processor>(mut self, processor: P) -> Self {
        self.processors.push(Box::new(processor));
        self
    }

    /// Chains every event to the one before it and seals the chain with signed checkpoints
    /// (see [`crate::chain`]). Chaining runs after every processor, so the events they add
    /// are chained too.
    pub fn chain(mut self, chaining: Chaining) -> Self {
        self.chaining = Some(chaining);
        self
    }

    /// Adds a writer (any [`AuditWriter`], or a [`Delivery`](crate::delivery::Delivery) to a
    /// remote backend) with the default [`WriterOptions`]; every writer receives every event.
    pub fn writer<S: IntoSink>(self, writer: S) -> Self {
        self.writer_with(writer, WriterOptions::default())
    }

    /// Adds a writer with its own options: its [`OverflowPolicy`] and queue size.
    pub fn writer_with<S: IntoSink>(mut self, writer: S, options: WriterOptions) -> Self {
        self.writers.push((options, writer.into_sink()));
        self
    }

    /// Starts one background task per writer on the current Tokio runtime.
    ///
    /// The pipeline's metrics (see the crate's README) are registered here, with the
    /// [`metrics`](https://docs.rs/metrics) recorder installed at this moment: install
    /// yours before building the auditor.
    pub fn build(self) -> Result<Auditor, ConfigError> {
        if self.writers.is_empty() {
            return Err(ConfigError::NoWriter);
        }
        if self.capacity == 0
            || self.batch_size == 0
            || self
                .writers
                .iter()
                .any(|(options, _)| options.queue_capacity == Some(0))
        {
            return Err(ConfigError::invalid(
                "queue_capacity and batch_size",
                "must be at least 1",
            ));
        }
        if self.writers.iter().any(|(options, _)| {
            matches!(options.overflow, OverflowPolicy::Block { timeout } if timeout < Duration::from_millis(1))
        }) {
            return Err(ConfigError::invalid(
                "OverflowPolicy::Block timeout",
                "must be at least 1 ms; use OverflowPolicy::DropNewest to never wait",
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        metrics::describe();
        let service = Arc::new(self.service);
        let announce: Option<Announcer> =
            self.chaining
                .as_ref()
                .and_then(|c| c.key.clone())
                .map(|key| -> Announcer {
                    Arc::new(move |event: &mut AuditEvent| sign_announcement(event, &key))
                });
        let chainer = self
            .chaining
            .map(|chaining| Chainer::start(chaining, service.clone()))
            .transpose()?;
        #[cfg(feature = "http")]
        let posted = chainer.as_ref().and_then(Chainer::posted);
        let metrics = Arc::new(EventMetrics::new());
        // As many events come back as were in flight: what the largest queue held, and the
        // batch its task had taken out (up to `RECYCLED_MAX`). Fewer, and a backlog drained
        // at once (a burst, or what gathered while the task slept) overflowed the recycler:
        // the rest were freed on the sink's thread and made afresh on the request path, the
        // very traffic the recycler spares. No more events are kept than the queues would
        // hold anyway.
        let largest_queue = self
            .writers
            .iter()
            .map(|(options, _)| options.queue_capacity.unwrap_or(self.capacity))
            .chain(std::iter::once(self.capacity))
            .max()
            .unwrap_or(self.capacity);
        let recycler = Recycler::new(
            largest_queue
                .saturating_add(self.batch_size)
                .min(RECYCLED_MAX),
            RECYCLED_SOURCES,
        );
        let mut processors = self.processors;
        if let Some(chainer) = chainer {
            processors.push(Box::new(chainer));
        }
        let mut processors =
            (!processors.is_empty()).then(|| Processors::new(processors, metrics.clone()));
        // One writer: the processors run in its own task, so an event crosses one queue
        // and wakes one task, not two. Several: they run in a stage of their own that
        // fans each event out.
        let mut inline = match self.writers.len() {
            1 => processors
                .take()
                .map(|processors| Box::new(processors) as Box<dyn Inline>),
            _ => None,
        };
        let lanes = self
            .writers
            .into_iter()
            .map(|(options, sink)| {
                let retrying = options.retrying();
                sink.start(
                    retrying,
                    QueueConfig {
                        capacity: options.queue_capacity.unwrap_or(self.capacity),
                        batch_size: self.batch_size,
                        flush_linger: self.flush_linger,
                        overflow: options.overflow,
                        service: service.clone(),
                        announce: announce.clone(),
                        inline: inline.take(),
                        recycler: recycler.clone(),
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()?
            .into();
        let lanes: Arc<[SinkQueue]> = lanes;
        let stage =
            processors.map(|processors| stage::spawn(processors, lanes.clone(), self.capacity));
        Ok(Auditor {
            inner: Arc::new(Inner {
                service,
                stage,
                lanes,
                closed: AtomicBool::new(false),
                metrics,
                recycler,
                #[cfg(feature = "http")]
                posted,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::writer::{MemoryWriter, WriteError};

    /// Accepts and forgets events.
    struct Forget;

    impl AuditWriter for Forget {
        fn name(&self) -> &str {
            "forget"
        }

        async fn write(&mut self, _: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
            Ok(())
        }
    }

    /// Waits (bounded) until `auditor` has `n` events for reuse.
    async fn recycled(auditor: &Auditor, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while auditor.inner.recycler.len() != n {
            assert!(tokio::time::Instant::now() < deadline, "never recycled");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn new_event(auditor: &Auditor) -> Arc<AuditEvent> {
        auditor.new_event(
            Timestamp::now(),
            (EventKind::ResourceAccessed, Outcome::Success),
            "r-1",
        )
    }

    /// Never finishes a write: its queue fills and stays full.
    struct Stalled;

    impl AuditWriter for Stalled {
        fn name(&self) -> &str {
            "stalled"
        }

        async fn write(&mut self, _: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
            std::future::pending().await
        }
    }

    /// Two stalled writers with queues of one event, under `first` and `last`'s policies,
    /// each queue filled: which lanes the next event waits for, and which dropped it.
    async fn must_wait(first: OverflowPolicy, last: OverflowPolicy) -> (Vec<usize>, u64) {
        let options = |policy| WriterOptions::default().queue_capacity(1).overflow(policy);
        let auditor = Auditor::builder()
            .writer_with(Stalled, options(first))
            .writer_with(Stalled, options(last))
            .build()
            .unwrap();
        // One event each task takes into its stalled write, then one in each queue.
        let queued = |auditor: &Auditor| -> Vec<usize> {
            auditor.stats().writers.iter().map(|w| w.queued).collect()
        };
        assert!(auditor.offer_shared(new_event(&auditor)).is_none());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while queued(&auditor) != [0, 0] {
            assert!(tokio::time::Instant::now() < deadline, "never taken");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert!(auditor.offer_shared(new_event(&auditor)).is_none());
        assert_eq!(queued(&auditor), [1, 1]);
        let event = new_event(&auditor);
        let place = Arc::as_ptr(&event);
        let overflow = auditor.offer_shared(event);
        let dropped = auditor.stats().writers.iter().map(|w| w.dropped).sum();
        let blocked = match overflow {
            Some(overflow) => {
                // What waits is the event offered, whichever lane handed it back.
                match &overflow.waiting {
                    Waiting::Sinks(waiting) => assert_eq!(Arc::as_ptr(waiting), place),
                    Waiting::Stage(_) => panic!("no stage"),
                }
                overflow.blocked.clone()
            }
            None => Vec::new(),
        };
        (blocked, dropped)
    }

    /// The last lane takes the event itself, the others a reference each: either way, a lane
    /// that must wait hands it back to wait with.
    #[tokio::test]
    async fn full_lanes_that_wait_get_the_event_back_whichever_they_are() {
        let block = OverflowPolicy::Block {
            timeout: Duration::from_secs(60),
        };
        let drop = OverflowPolicy::DropNewest;
        assert_eq!(must_wait(block, block).await, (vec![0, 1], 0));
        assert_eq!(must_wait(block, drop).await, (vec![0], 1));
        assert_eq!(must_wait(drop, block).await, (vec![1], 1));
        assert_eq!(must_wait(drop, drop).await, (Vec::new(), 2));
    }

    #[tokio::test]
    async fn written_events_come_back_for_the_next_ones() {
        let auditor = Auditor::builder().writer(Forget).build().unwrap();
        let event = new_event(&auditor);
        let place = Arc::as_ptr(&event);
        assert!(auditor.offer_shared(event).is_none());
        recycled(&auditor, 1).await;
        let next = new_event(&auditor);
        assert_eq!(Arc::as_ptr(&next), place);
        assert_eq!(auditor.inner.recycler.len(), 0);

        // An event emitted by value moves into a recycled one too.
        assert!(auditor.offer_shared(next).is_none());
        recycled(&auditor, 1).await;
        auditor.emit(AuditEvent::new(
            auditor.service().clone(),
            Timestamp::now(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        ));
        assert_eq!(auditor.inner.recycler.len(), 0);
        // Nothing written stays in memory once the sinks have stopped.
        recycled(&auditor, 1).await;
        auditor.shutdown().await;
        assert_eq!(auditor.inner.recycler.len(), 0);
    }

    /// A backlog as large as the queue, drained at once, comes back whole: none of it is
    /// freed on the sink's thread to be made afresh on the request path.
    #[tokio::test]
    async fn a_full_queue_drained_at_once_comes_back_whole() {
        let auditor = Auditor::builder()
            .queue_capacity(2048)
            .writer(Forget)
            .build()
            .unwrap();
        // On this test's one thread the sink's task runs only once the loop is done.
        for _ in 0..2048 {
            assert!(auditor.offer_shared(new_event(&auditor)).is_none());
        }
        assert_eq!(auditor.stats().writers[0].queued, 2048);
        recycled(&auditor, 2048).await;
        assert_eq!(auditor.stats().writers[0].dropped, 0);
        auditor.shutdown().await;
        assert_eq!(auditor.inner.recycler.len(), 0);
    }

    /// Room for the largest queue, a writer's own included, and a batch.
    #[tokio::test]
    async fn the_recycler_has_room_for_the_largest_queue_and_a_batch() {
        let auditor = Auditor::builder()
            .queue_capacity(100)
            .batch_size(10)
            .writer(Forget)
            .writer_with(Forget, WriterOptions::default().queue_capacity(3000))
            .build()
            .unwrap();
        assert_eq!(auditor.inner.recycler.capacity(), 3010);
        let small = Auditor::builder()
            .queue_capacity(100)
            .batch_size(10)
            .writer(Forget)
            .build()
            .unwrap();
        assert_eq!(small.inner.recycler.capacity(), 110);
        // A queue far beyond the default: a backlog that large is a stalled sink's.
        let large = Auditor::builder()
            .queue_capacity(1 << 20)
            .writer(Forget)
            .build()
            .unwrap();
        assert_eq!(large.inner.recycler.capacity(), RECYCLED_MAX);
    }

    #[tokio::test]
    async fn events_a_writer_keeps_are_not_recycled() {
        let memory = MemoryWriter::new();
        let auditor = Auditor::builder()
            .writer(Forget)
            .writer(memory.clone())
            .build()
            .unwrap();
        for _ in 0..10 {
            assert!(auditor.offer_shared(new_event(&auditor)).is_none());
        }
        auditor.shutdown().await;
        assert_eq!(memory.events().len(), 10);
        assert_eq!(auditor.inner.recycler.len(), 0);
    }
    /// Requests that wait in the handler until `release`, each saying so on `entered`.
    fn slow_app(
        auditor: &Auditor,
        entered: tokio::sync::mpsc::UnboundedSender<()>,
        release: Arc<tokio::sync::Semaphore>,
    ) -> axum::Router {
        let handler = move || {
            let entered = entered.clone();
            let release = release.clone();
            async move {
                let _ = entered.send(());
                let _ = release.acquire().await;
                "ok"
            }
        };
        axum::Router::new()
            .route("/slow", axum::routing::get(handler))
            .layer(crate::AuditLayer::new(auditor.clone()))
    }

    /// A request in flight holds nothing of the written event its source's buffers came
    /// from: what written events hold stays in the recycler (as many as it keeps) and goes
    /// when the auditor stops, however many requests are still being served.
    #[tokio::test]
    async fn requests_in_flight_keep_no_written_event_alive() {
        use tower::ServiceExt as _;

        let auditor = Auditor::builder().writer(Forget).build().unwrap();
        let (entered, mut inside) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Semaphore::new(0));
        let app = slow_app(&auditor, entered, release.clone());
        let mut services = Vec::new();
        let mut in_flight = Vec::new();
        for i in 0..4 {
            // An event of the application's own, about someone, written and handed back.
            let service = Arc::new(ServiceInfo {
                name: format!("emitted-{i}"),
                instance: None,
            });
            services.push(Arc::downgrade(&service));
            let mut event = AuditEvent::new(
                service,
                Timestamp::now(),
                EventKind::ResourceAccessed,
                Outcome::Success,
            );
            event.labels.insert("subject".into(), format!("user-{i}"));
            auditor.emit(event);
            recycled(&auditor, 1).await;
            let request = http::Request::get("/slow")
                .header("user-agent", "client/1")
                .body(axum::body::Body::empty())
                .unwrap();
            in_flight.push(tokio::spawn(app.clone().oneshot(request)));
            inside.recv().await.unwrap();
        }
        auditor.shutdown().await;
        let alive = services.iter().filter(|s| s.upgrade().is_some()).count();
        release.add_permits(in_flight.len());
        for request in in_flight {
            let _ = request.await.unwrap();
        }
        assert_eq!(alive, 0, "written events kept alive by requests in flight");
    }

    /// What each written event's source held, by capacity: the chain, its longest hop, the
    /// user agent, the longest recorded header's name and value.
    #[derive(Clone, Default)]
    struct Capacities(Arc<std::sync::Mutex<Vec<[usize; 5]>>>);

    impl AuditWriter for Capacities {
        fn name(&self) -> &str {
            "capacities"
        }

        async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
            let mut seen = self.0.lock().unwrap();
            for event in batch {
                let (Some(source), Some(_)) = (&event.source, &event.http) else {
                    continue;
                };
                seen.push([
                    source.forwarded_for.capacity(),
                    source
                        .forwarded_for
                        .iter()
                        .map(String::capacity)
                        .max()
                        .unwrap_or(0),
                    source.user_agent.as_ref().map_or(0, String::capacity),
                    source
                        .forwarded_headers
                        .keys()
                        .map(String::capacity)
                        .max()
                        .unwrap_or(0),
                    source
                        .forwarded_headers
                        .values()
                        .map(String::capacity)
                        .max()
                        .unwrap_or(0),
                ]);
            }
            Ok(())
        }
    }

    /// An event an application emits may hold a source of any size; once written, its
    /// buffers do not go on to hold the sources of the requests after it (and round with
    /// every event made in them, never freed): a request's source is as large as its own.
    #[tokio::test]
    async fn a_large_emitted_source_is_not_kept_for_requests() {
        use tower::ServiceExt as _;

        let capacities = Capacities::default();
        let auditor = Auditor::builder()
            .writer(capacities.clone())
            .build()
            .unwrap();
        let big = |text: &str| {
            let mut big = String::with_capacity(1 << 16);
            big.push_str(text);
            big
        };
        let mut event = AuditEvent::new(
            auditor.service().clone(),
            Timestamp::now(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        );
        let mut chain = Vec::with_capacity(100_000);
        chain.extend((0..40).map(|i| big(&format!("192.0.2.{i}"))));
        event.source = Some(Source {
            forwarded_for: chain,
            forwarded_headers: [(big("x-forwarded-host"), big("before.example"))].into(),
            user_agent: Some(big("before/1")),
            ..Source::default()
        });
        auditor.emit(event);
        recycled(&auditor, 1).await;
        let (entered, _inside) = tokio::sync::mpsc::unbounded_channel();
        let release = Arc::new(tokio::sync::Semaphore::new(1));
        let request = http::Request::get("/slow")
            .header("user-agent", "client/1")
            .header("x-forwarded-for", "198.51.100.1, 198.51.100.2")
            .header("x-forwarded-host", "api.example")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = slow_app(&auditor, entered, release)
            .oneshot(request)
            .await
            .unwrap();
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        auditor.shutdown().await;
        let seen = capacities.0.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let [chain, hop, user_agent, name, value] = seen[0];
        assert!(
            chain <= crate::context::forwarded::MAX_HOPS,
            "{:?}",
            seen[0]
        );
        assert!(
            hop <= 4 * crate::context::forwarded::MAX_HOP_LEN,
            "{:?}",
            seen[0]
        );
        assert!(user_agent <= 4 * 512, "{:?}", seen[0]);
        assert!(
            name <= crate::context::forwarded::MAX_HEADER_LEN,
            "{:?}",
            seen[0]
        );
        assert!(
            value <= 4 * crate::context::forwarded::MAX_HEADER_LEN,
            "{:?}",
            seen[0]
        );
    }
}
