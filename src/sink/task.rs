//! The receiving end of a sink's queue: one task per sink that takes events in batches,
//! runs the [`Inline`] work on them when it has some, hands them to the [`Deliverer`],
//! flushes when the queue runs idle and stops on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::adapter::Sink;
use super::deliver::Deliverer;
use super::queue::{self, SinkQueue, SinkReceiver};
use super::{Announcer, Inline, OverflowPolicy};
use crate::event::recycle::Recycler;
use crate::event::{AuditEvent, DropReason, ServiceInfo};

/// How long a sink waits after a partial batch before taking the next one.
const GATHER: Duration = Duration::from_millis(1);

/// How long what a sink wrote may wait for a flush under traffic that never leaves its queue
/// empty for the linger (or the linger, when that is longer): from the first write after a
/// flush. Without it, events arriving faster than the linger held a file's lines in memory
/// until a whole write chunk had gathered, however long that took.
const FLUSH_WITHIN: Duration = Duration::from_millis(200);

/// How a sink's queue and task are set up.
pub(crate) struct QueueConfig {
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) flush_linger: Duration,
    pub(crate) overflow: OverflowPolicy,
    /// The producer named in the sink's drop reports.
    pub(crate) service: Arc<ServiceInfo>,
    /// Signs drop reports that list chained events (with the chain's checkpoint key).
    pub(crate) announce: Option<Announcer>,
    /// Run on every batch before it is written (the processors, when this is the only sink).
    pub(crate) inline: Option<Box<dyn Inline>>,
    /// Where written events go back to the auditor's producers.
    pub(crate) recycler: Recycler,
}

/// Starts the sink's task on the current runtime and returns its queue.
pub(crate) fn spawn<S: Sink>(mut deliverer: Deliverer<S>, config: QueueConfig) -> SinkQueue {
    deliverer.set_service(config.service);
    deliverer.set_announcer(config.announce);
    let (queue, rx) = queue::channel(
        deliverer.name().to_owned(),
        config.capacity,
        config.overflow,
        deliverer.stats().clone(),
    );
    // Work done in the task (the processors, when this is the only sink) sees every event;
    // otherwise the kinds the sink never sends are not queued.
    let queue = match config.inline {
        None => queue.taking(|kind| deliverer.takes_kind(kind)),
        Some(_) => queue,
    };
    let task = SinkTask {
        deliverer,
        rx,
        batch_size: config.batch_size,
        flush_linger: config.flush_linger,
        inline: config.inline,
        recycler: config.recycler,
    };
    tokio::spawn(task.run());
    queue
}

struct SinkTask<S> {
    deliverer: Deliverer<S>,
    rx: SinkReceiver,
    batch_size: usize,
    flush_linger: Duration,
    inline: Option<Box<dyn Inline>>,
    recycler: Recycler,
}

impl<S: Sink> SinkTask<S> {
    async fn run(mut self) {
        let mut batch: Vec<Arc<AuditEvent>> = Vec::with_capacity(self.batch_size);
        // When to flush what was written: once the queue has stayed empty for the linger,
        // so steady traffic is flushed in large writes, not per event.
        let mut flush_at: Option<Instant> = None;
        // The first write since the last flush, which bounds when the next one comes.
        let mut unflushed_since: Option<Instant> = None;
        loop {
            // Otherwise sleep until the next event, or until a retry, a replay or the sink's
            // own work is due, or the inline work's next tick.
            let idle_at = flush_at.or_else(|| {
                self.deliverer
                    .wake_after()
                    .map(|wait| Instant::now() + wait)
            });
            let tick_due = self.inline.as_ref().and_then(|inline| inline.next_due());
            let deadline = match (idle_at, tick_due) {
                (Some(idle), Some(tick)) => Some(idle.min(tick)),
                (idle, tick) => idle.or(tick),
            };
            let next = self.rx.recv_many(&mut batch, self.batch_size);
            let received = match deadline {
                None => next.await,
                Some(deadline) => match tokio::time::timeout_at(deadline, next).await {
                    Ok(received) => received,
                    // A tick that writes nothing leaves the flush where it was.
                    Err(_) if tick_due.is_some_and(|due| due <= Instant::now()) => {
                        if self.tick().await {
                            flush_at = self.after_write(&mut unflushed_since).await;
                        }
                        continue;
                    }
                    Err(_) => {
                        self.flush().await;
                        (flush_at, unflushed_since) = (None, None);
                        continue;
                    }
                },
            };
            if received == 0 && !self.rx.is_closed() {
                // Nudged: losses counted outside this task wait to be reported, which the
                // deadline worked out next allows for.
                continue;
            }
            let depth = self.deliverer.stats().queue_depth().clone();
            if received == 0 {
                // Shutdown began (or every producer is gone) and the queue is empty: take
                // what producers pushed meanwhile, write it, and stop.
                self.rx.seal(&mut batch);
                self.write(&mut batch).await;
                depth.set(0.0);
                self.finish().await;
                self.flush().await;
                self.deliverer.count_unwritten_at_stop();
                self.rx.stopped();
                return;
            }
            depth.set(self.rx.len() as f64);
            self.write(&mut batch).await;
            depth.set(self.rx.len() as f64);
            flush_at = self.after_write(&mut unflushed_since).await;
            if self
                .inline
                .as_ref()
                .and_then(|inline| inline.next_due())
                .is_some_and(|due| due <= Instant::now())
            {
                // Under a steady stream of events the deadline above may never pass: time
                // is checked after every batch too.
                self.tick().await;
            }
            if received < self.batch_size && !self.rx.is_closed() {
                // Let events gather instead of being woken for each one: under load a wake
                // per event costs the request path a cross-thread wake-up; this costs each
                // event at most GATHER of delay on its way to the sink.
                tokio::time::sleep(GATHER).await;
            }
        }
    }

    /// When to flush after a write: once the queue has stayed empty for the linger, but no
    /// later than [`FLUSH_WITHIN`] (or the linger) after the first write since the last flush,
    /// which is now when that time has passed: under a steady stream of events the queue
    /// always has one ready, and a deadline that has passed would never be noticed.
    async fn after_write(&mut self, unflushed_since: &mut Option<Instant>) -> Option<Instant> {
        let now = Instant::now();
        let latest = *unflushed_since.get_or_insert(now) + self.flush_linger.max(FLUSH_WITHIN);
        if now < latest {
            return Some((now + self.flush_linger).min(latest));
        }
        self.flush().await;
        *unflushed_since = None;
        None
    }

    /// Runs the inline work on `batch`, writes it and empties it, handing the events it
    /// alone holds back to the auditor's producers.
    async fn write(&mut self, batch: &mut Vec<Arc<AuditEvent>>) {
        if let Some(inline) = &mut self.inline {
            inline.process(batch);
            self.count_lost();
        }
        if !batch.is_empty() {
            self.deliverer.write(batch).await;
            self.recycler.recycle(batch);
        }
    }

    /// Runs the inline work that is due; whether it wrote anything.
    async fn tick(&mut self) -> bool {
        let Some(inline) = &mut self.inline else {
            return false;
        };
        let mut raised = Vec::new();
        inline.tick(Instant::now(), &mut raised);
        self.count_lost();
        if raised.is_empty() {
            return false;
        }
        self.deliverer.write(&raised).await;
        true
    }

    /// The inline work's last word, written before the sink stops.
    async fn finish(&mut self) {
        let Some(inline) = &mut self.inline else {
            return;
        };
        let mut last = Vec::new();
        inline.finish(&mut last);
        self.count_lost();
        if !last.is_empty() {
            self.deliverer.write(&last).await;
        }
    }

    /// Counts the events the inline work dropped, those of kinds the sink takes.
    fn count_lost(&mut self) {
        let Some(inline) = &mut self.inline else {
            return;
        };
        for event in inline.take_lost() {
            if self.deliverer.takes_kind(event.kind) {
                self.deliverer
                    .stats()
                    .add_lost(DropReason::ProcessorPanicked, &event);
            }
        }
    }

    async fn flush(&mut self) {
        if let Err(err) = self.deliverer.flush().await {
            tracing::warn!(
                target: "oauth_audit",
                writer = %self.deliverer.name(),
                error = %err,
                "audit spool sync failed"
            );
        }
    }
}
