//! One writer's queue and background task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{AuditWriter, WriteError};
use crate::event::{AuditEvent, DropReason, ServiceInfo};

/// How long a writer waits after a partial batch before taking the next one.
const GATHER: std::time::Duration = std::time::Duration::from_millis(1);

pub(crate) enum Command {
    Event(Arc<AuditEvent>),
    /// Write and flush everything queued before this command, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Counters shared between the request path and a writer's task.
#[derive(Debug, Default)]
pub(crate) struct LaneCounters {
    pub(crate) queue_full: AtomicU64,
    pub(crate) write_failed: AtomicU64,
    pub(crate) shut_down: AtomicU64,
    pub(crate) written: AtomicU64,
    pub(crate) dropped_total: AtomicU64,
}

impl LaneCounters {
    pub(crate) fn drop_events(&self, counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
        self.dropped_total.fetch_add(count, Ordering::Relaxed);
    }
}

/// The request-path end of a writer's queue.
#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) name: String,
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) counters: Arc<LaneCounters>,
}

impl Lane {
    pub(crate) fn spawn<W: AuditWriter>(
        writer: W,
        capacity: usize,
        batch_size: usize,
        flush_linger: std::time::Duration,
        service: Arc<ServiceInfo>,
    ) -> Lane {
        let (tx, rx) = mpsc::channel(capacity);
        let counters = Arc::new(LaneCounters::default());
        let name = writer.name().to_owned();
        let task = LaneTask {
            writer,
            rx,
            counters: counters.clone(),
            service,
            batch_size,
            flush_linger,
        };
        tokio::spawn(task.run());
        Lane { name, tx, counters }
    }

    /// Never blocks: a full or closed queue counts the event as dropped.
    pub(crate) fn offer(&self, event: Arc<AuditEvent>) {
        match self.tx.try_send(Command::Event(event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.drop_events(&self.counters.queue_full, 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.drop_events(&self.counters.shut_down, 1);
            }
        }
    }
}

struct LaneTask<W> {
    writer: W,
    rx: mpsc::Receiver<Command>,
    counters: Arc<LaneCounters>,
    service: Arc<ServiceInfo>,
    batch_size: usize,
    flush_linger: std::time::Duration,
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
                self.flush().await;
                return;
            }
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
            .drop_events(&self.counters.write_failed, count as u64);
    }

    /// Tells the writer about events it lost, once it is able to write again.
    async fn report_drops(&mut self) {
        for (counter, reason) in [
            (&self.counters.queue_full, DropReason::QueueFull),
            (&self.counters.write_failed, DropReason::WriteFailed),
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
