//! The request-path end of a sink: its bounded queue and overflow policy. Never blocks:
//! a full queue either counts the event as dropped or tells the caller to wait for room.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{DeliveryStats, OverflowPolicy};
use crate::event::{AuditEvent, DropReason};

/// What travels through a sink's queue.
pub(crate) enum Command {
    Event(Arc<AuditEvent>),
    /// Write and flush everything queued before this command, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// What became of an event offered to a queue.
pub(crate) enum Offered {
    /// Queued, or dropped and counted.
    Settled,
    /// The queue is full and the sink's policy is to wait for room.
    MustWait,
}

/// The sending end of one sink's queue.
#[derive(Debug)]
pub(crate) struct SinkQueue {
    pub(crate) name: String,
    pub(crate) tx: mpsc::Sender<Command>,
    pub(crate) stats: DeliveryStats,
    pub(crate) overflow: OverflowPolicy,
}

impl SinkQueue {
    /// Queues `event`, or applies the overflow policy.
    pub(crate) fn offer(&self, event: Arc<AuditEvent>) -> Offered {
        match self.tx.try_send(Command::Event(event)) {
            Ok(()) => Offered::Settled,
            Err(mpsc::error::TrySendError::Full(Command::Event(event))) => {
                self.stats.queue_depth().set(self.tx.max_capacity() as f64);
                match self.overflow {
                    OverflowPolicy::DropNewest => {
                        self.lose(DropReason::QueueFull, &event);
                        Offered::Settled
                    }
                    OverflowPolicy::Block { .. } => Offered::MustWait,
                }
            }
            Err(mpsc::error::TrySendError::Closed(_) | mpsc::error::TrySendError::Full(_)) => {
                // Full(Shutdown) cannot happen: only events are offered.
                self.stats.add_dropped(DropReason::ShutDown, 1);
                Offered::Settled
            }
        }
    }

    /// Waits for room in the queue until `deadline`, then queues `event` or counts it as
    /// dropped.
    pub(crate) async fn send_before(&self, event: Arc<AuditEvent>, deadline: tokio::time::Instant) {
        match tokio::time::timeout_at(deadline, self.tx.reserve()).await {
            Ok(Ok(permit)) => permit.send(Command::Event(event)),
            Ok(Err(_closed)) => self.stats.add_dropped(DropReason::ShutDown, 1),
            Err(_elapsed) => self.lose(DropReason::BlockTimeout, &event),
        }
    }

    /// Counts `event` as dropped, with its place in the chain if it has one.
    fn lose(&self, reason: DropReason, event: &AuditEvent) {
        self.stats.add_dropped(reason, 1);
        if let Some(link) = &event.chain {
            self.stats
                .add_dropped_seqs(reason, [(&link.stream, link.seq)]);
        }
    }

    /// Events waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Events the queue holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.tx.max_capacity()
    }
}
