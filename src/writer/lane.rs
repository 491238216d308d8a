//! One writer's queue and background task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use metrics::{Counter, Gauge};
use tokio::sync::{mpsc, oneshot};

use super::metrics::LaneMetrics;
use super::{AuditWriter, OverflowPolicy, WriteError};
use crate::event::{AuditEvent, DropReason, ServiceInfo};

/// How long a writer waits after a partial batch before taking the next one.
const GATHER: Duration = Duration::from_millis(1);

pub(crate) enum Command {
    Event(Arc<AuditEvent>),
    /// Write and flush everything queued before this command, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Why a lane lost events.
#[derive(Clone, Copy, Debug)]
pub(crate) enum LaneDrop {
    QueueFull,
    WriteFailed,
    ShutDown,
    BlockTimeout,
}

/// Counters shared between the request path and a writer's task.
#[derive(Debug)]
pub(crate) struct LaneCounters {
    queue_full: AtomicU64,
    write_failed: AtomicU64,
    shut_down: AtomicU64,
    block_timeout: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) dropped_total: AtomicU64,
    metrics: LaneMetrics,
}

impl LaneCounters {
    fn new(metrics: LaneMetrics) -> Self {
        LaneCounters {
            queue_full: AtomicU64::new(0),
            write_failed: AtomicU64::new(0),
            shut_down: AtomicU64::new(0),
            block_timeout: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            metrics,
        }
    }

    fn pending(&self, reason: LaneDrop) -> (&AtomicU64, &Counter) {
        let metrics = &self.metrics;
        match reason {
            LaneDrop::QueueFull => (&self.queue_full, &metrics.dropped_queue_full),
            LaneDrop::WriteFailed => (&self.write_failed, &metrics.dropped_write_failed),
            LaneDrop::ShutDown => (&self.shut_down, &metrics.dropped_shut_down),
            LaneDrop::BlockTimeout => (&self.block_timeout, &metrics.dropped_block_timeout),
        }
    }

    pub(crate) fn drop_events(&self, reason: LaneDrop, count: u64) {
        let (pending, counter) = self.pending(reason);
        pending.fetch_add(count, Ordering::Relaxed);
        counter.increment(count);
        self.dropped_total.fetch_add(count, Ordering::Relaxed);
    }

    fn queue_depth(&self) -> &Gauge {
        &self.metrics.queue_depth
    }
}

/// What became of an event offered to a lane.
pub(crate) enum Offered {
    /// Queued, or dropped and counted.
    Settled,
    /// The queue is full and the lane's policy is to wait for room.
    MustWait,
}

/// The request-path end of a writer's queue.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) name: String,
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) counters: Arc<LaneCounters>,
    pub(crate) overflow: OverflowPolicy,
}

/// How a lane is set up.
pub(crate) struct LaneConfig {
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) flush_linger: Duration,
    pub(crate) overflow: OverflowPolicy,
    pub(crate) service: Arc<ServiceInfo>,
}

impl Lane {
    pub(crate) fn spawn<W: AuditWriter>(writer: W, config: LaneConfig) -> Lane {
        let LaneConfig {
            capacity,
            batch_size,
            flush_linger,
            overflow,
            service,
        } = config;
        let (tx, rx) = mpsc::channel(capacity);
        let name = writer.name().to_owned();
        let counters = Arc::new(LaneCounters::new(LaneMetrics::new(&name)));
        let task = LaneTask {
            writer,
            rx,
            counters: counters.clone(),
            service,
            batch_size,
            flush_linger,
        };
        tokio::spawn(task.run());
        Lane {
            name,
            tx,
            counters,
            overflow,
        }
    }

    /// Never blocks: a full queue either counts the event as dropped or, under
    /// [`OverflowPolicy::Block`], tells the caller to wait for room.
    pub(crate) fn offer(&self, event: Arc<AuditEvent>) -> Offered {
        match self.tx.try_send(Command::Event(event)) {
            Ok(()) => Offered::Settled,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters
                    .queue_depth()
                    .set(self.tx.max_capacity() as f64);
                match self.overflow {
                    OverflowPolicy::DropNewest => {
                        self.counters.drop_events(LaneDrop::QueueFull, 1);
                        Offered::Settled
                    }
                    OverflowPolicy::Block { .. } => Offered::MustWait,
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.drop_events(LaneDrop::ShutDown, 1);
                Offered::Settled
            }
        }
    }

    /// Waits for room in the queue until `deadline`, then queues `event` or counts it as
    /// dropped.
    pub(crate) async fn send_before(&self, event: Arc<AuditEvent>, deadline: tokio::time::Instant) {
        match tokio::time::timeout_at(deadline, self.tx.reserve()).await {
            Ok(Ok(permit)) => permit.send(Command::Event(event)),
            Ok(Err(_closed)) => self.counters.drop_events(LaneDrop::ShutDown, 1),
            Err(_elapsed) => self.counters.drop_events(LaneDrop::BlockTimeout, 1),
        }
    }
}

struct LaneTask<W> {
    writer: W,
    rx: mpsc::Receiver<Command>,
    counters: Arc<LaneCounters>,
    service: Arc<ServiceInfo>,
    batch_size: usize,
    flush_linger: Duration,
}

impl<W: AuditWriter> LaneTask<W> {
    async fn run(mut self) {
        let mut commands = Vec::with_capacity(self.batch_size);
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut shutdown = None;
        let mut unflushed = false;
        loop {
            // Something was written: flush once the queue has stayed empty for the linger,
            // so steady traffic is flushed in large writes, not per event. Otherwise sleep
            // until the next event, or until the writer's own work is due.
            let idle_wait = if unflushed {
                Some(self.flush_linger)
            } else {
                self.writer.wake_after()
            };
            let next = self.rx.recv_many(&mut commands, self.batch_size);
            let received = match idle_wait {
                None => next.await,
                Some(wait) => match tokio::time::timeout(wait, next).await {
                    Ok(received) => received,
                    Err(_) => {
                        self.flush().await;
                        unflushed = false;
                        continue;
                    }
                },
            };
            if received == 0 {
                // Every sender is gone: write what is left and stop.
                self.counters.queue_depth().set(0.0);
                self.flush().await;
                return;
            }
            self.counters.queue_depth().set(self.rx.len() as f64);
            for command in commands.drain(..) {
                match command {
                    Command::Event(event) => batch.push(event),
                    Command::Shutdown(ack) => {
                        // Refuse new events, but take those already queued.
                        self.rx.close();
                        shutdown = Some(ack);
                    }
                }
            }
            if shutdown.is_some() {
                while let Some(command) = self.rx.recv().await {
                    if let Command::Event(event) = command {
                        batch.push(event);
                    }
                }
            }
            self.write(&mut batch).await;
            self.report_drops().await;
            self.counters.queue_depth().set(self.rx.len() as f64);
            unflushed = true;
            if shutdown.is_some() {
                self.flush().await;
            }
            if received < self.batch_size && shutdown.is_none() {
                // Let events gather instead of being woken for each one: under load a wake
                // per event costs the request path a cross-thread wake-up; this costs each
                // event at most GATHER of delay on its way to the writer.
                tokio::time::sleep(GATHER).await;
            }
            if let Some(ack) = shutdown.take() {
                let _ = ack.send(());
                return;
            }
        }
    }

    async fn write(&mut self, batch: &mut Vec<Arc<AuditEvent>>) {
        if batch.is_empty() {
            return;
        }
        match self.writer.write(batch).await {
            Ok(()) => {
                self.counters
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                self.counters.metrics.written.increment(batch.len() as u64);
            }
            Err(err) => {
                self.failed(batch.len(), &err);
            }
        }
        batch.clear();
    }

    fn failed(&self, count: usize, err: &WriteError) {
        tracing::warn!(
            target: "oauth_audit",
            writer = %self.writer.name(),
            events = count,
            error = %err,
            "audit writer failed; events dropped"
        );
        self.counters
            .drop_events(LaneDrop::WriteFailed, count as u64);
    }

    /// Tells the writer about events it lost, once it is able to write again.
    async fn report_drops(&mut self) {
        for (counter, reason) in [
            (&self.counters.queue_full, DropReason::QueueFull),
            (&self.counters.write_failed, DropReason::WriteFailed),
            (&self.counters.block_timeout, DropReason::BlockTimeout),
        ] {
            let count = counter.swap(0, Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let event = Arc::new(AuditEvent::dropped(
                self.service.clone(),
                count,
                reason,
                self.writer.name(),
            ));
            if self
                .writer
                .write(std::slice::from_ref(&event))
                .await
                .is_err()
            {
                // Still failing: keep the count for the next attempt.
                counter.fetch_add(count, Ordering::Relaxed);
            }
        }
    }

    async fn flush(&mut self) {
        if let Err(err) = self.writer.flush().await {
            tracing::warn!(
                target: "oauth_audit",
                writer = %self.writer.name(),
                error = %err,
                "audit writer flush failed"
            );
        }
    }
}
