//! The receiving end of a sink's queue: one task per sink that takes events in batches,
//! hands them to the [`Deliverer`], flushes when the queue runs idle and stops on shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::adapter::Sink;
use super::deliver::Deliverer;
use super::queue::{Command, SinkQueue};
use super::{Announcer, OverflowPolicy};
use crate::event::{AuditEvent, ServiceInfo};

/// How long a sink waits after a partial batch before taking the next one.
const GATHER: Duration = Duration::from_millis(1);

/// How a sink's queue and task are set up.
#[derive(Clone)]
pub(crate) struct QueueConfig {
    pub(crate) capacity: usize,
    pub(crate) batch_size: usize,
    pub(crate) flush_linger: Duration,
    pub(crate) overflow: OverflowPolicy,
    /// The producer named in the sink's drop reports.
    pub(crate) service: Arc<ServiceInfo>,
    /// Signs drop reports that list chained events (with the chain's checkpoint key).
    pub(crate) announce: Option<Announcer>,
}

/// Starts the sink's task on the current runtime and returns its queue.
pub(crate) fn spawn<S: Sink>(mut deliverer: Deliverer<S>, config: QueueConfig) -> SinkQueue {
    deliverer.set_service(config.service);
    deliverer.set_announcer(config.announce);
    let (tx, rx) = mpsc::channel(config.capacity);
    let queue = SinkQueue {
        name: deliverer.name().to_owned(),
        tx,
        stats: deliverer.stats().clone(),
        overflow: config.overflow,
    };
    let task = SinkTask {
        deliverer,
        rx,
        batch_size: config.batch_size,
        flush_linger: config.flush_linger,
    };
    tokio::spawn(task.run());
    queue
}

struct SinkTask<S> {
    deliverer: Deliverer<S>,
    rx: mpsc::Receiver<Command>,
    batch_size: usize,
    flush_linger: Duration,
}

impl<S: Sink> SinkTask<S> {
    async fn run(mut self) {
        let mut commands = Vec::with_capacity(self.batch_size);
        let mut batch: Vec<Arc<AuditEvent>> = Vec::with_capacity(self.batch_size);
        let mut shutdown = None;
        let mut unflushed = false;
        loop {
            // Something was written: flush once the queue has stayed empty for the linger,
            // so steady traffic is flushed in large writes, not per event. Otherwise sleep
            // until the next event, or until a retry, a replay or the sink's own work is due.
            let idle_wait = if unflushed {
                Some(self.flush_linger)
            } else {
                self.deliverer.wake_after()
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
            let depth = self.deliverer.stats().queue_depth().clone();
            if received == 0 {
                // Every sender is gone: write what is left and stop.
                depth.set(0.0);
                self.flush().await;
                return;
            }
            depth.set(self.rx.len() as f64);
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
            if !batch.is_empty() {
                self.deliverer.write(&batch).await;
                batch.clear();
            }
            depth.set(self.rx.len() as f64);
            unflushed = true;
            if shutdown.is_some() {
                self.flush().await;
            }
            if received < self.batch_size && shutdown.is_none() {
                // Let events gather instead of being woken for each one: under load a wake
                // per event costs the request path a cross-thread wake-up; this costs each
                // event at most GATHER of delay on its way to the sink.
                tokio::time::sleep(GATHER).await;
            }
            if let Some(ack) = shutdown.take() {
                let _ = ack.send(());
                return;
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
