//! A sink's bounded queue: the request-path end ([`SinkQueue`]) and the sink task's end
//! ([`SinkReceiver`]). Never blocks: a full queue either counts the event as dropped or tells
//! the caller to wait for room.
//!
//! The events sit in a fixed ring of `capacity` slots ([`crossbeam_queue::ArrayQueue`], 16
//! bytes a slot, allocated when the sink starts), so memory is bounded by construction.
//! Enqueueing one event costs one compare-and-swap on the ring's tail and two loads of flags
//! that change rarely; the sink's task is woken only when it said it was going to sleep
//! (`idle`), not for every event. Tokio's bounded `mpsc`, used before, paid four contended
//! read-modify-writes per event (its semaphore, the list's tail, the slot's ready bits and the
//! receiver's waker), which made two threads enqueueing at once cost several times one.
//!
//! The price: a producer descheduled between claiming a slot and filling it holds up the
//! task, which spins and then yields its thread until the slot is filled (tokio's receiver
//! went back to sleep instead). Only the task waits, never a producer, and only for as long
//! as the kernel keeps the producer off a core.
//!
//! Shutdown happens in three steps, so that nothing is lost silently and everything queued
//! before it is written:
//! 1. `closed`: producers stop queueing (an event offered from now on is dropped and counted
//!    as `shut_down`).
//! 2. `sealed`: the task has emptied the queue once more after that. A producer that saw
//!    `closed` unset but finished its push after the seal takes back what is left and counts
//!    it, since the task may not look again; the task's own last pass after the seal writes
//!    whatever it still finds. Each event is taken by exactly one of them.
//! 3. `stopped`: what was taken is written and flushed; [`SinkQueue::shutdown`] returns.

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use tokio::sync::Notify;

use super::{DeliveryStats, OverflowPolicy};
use crate::event::{AuditEvent, DropReason, EventKind};

/// What became of an event offered to a queue.
pub(crate) enum Offered {
    /// Queued, or dropped and counted.
    Settled,
    /// The queue is full and the sink's policy is to wait for room: the event is handed back
    /// to wait with.
    MustWait(Arc<AuditEvent>),
}

/// What a push did with its event.
enum Pushed {
    /// In the queue (or taken back and counted, when it raced the seal).
    Queued,
    /// The queue is full: the event is handed back.
    Full(Arc<AuditEvent>),
    /// Shutdown began: the event was counted as dropped.
    Closed,
}

/// The state both ends share.
#[derive(Debug)]
struct Shared {
    events: ArrayQueue<Arc<AuditEvent>>,
    /// The task found the queue empty and waits on `wake`: the next push must wake it.
    idle: AtomicBool,
    /// Wakes the task: an event after `idle`, a [`nudge`](SinkQueue::nudge), or shutdown.
    wake: Notify,
    /// Losses were counted from outside the task (see [`SinkQueue::nudge`]): the task must
    /// look at its statistics again, to report them.
    nudged: AtomicBool,
    /// Whether producers may wait for room ([`OverflowPolicy::Block`]): the task then
    /// announces room on `room` after taking events.
    blocking: bool,
    room: Notify,
    /// Shutdown began (or every [`SinkQueue`] is gone): nothing more is queued.
    closed: AtomicBool,
    /// The task has taken its last events; what is pushed after this is the pusher's to count.
    sealed: AtomicBool,
    /// The task wrote, flushed and stopped (or is gone).
    stopped: AtomicBool,
    done: Notify,
    stats: DeliveryStats,
}

impl Shared {
    /// Counts `event` as dropped, with its place in the chain if it has one.
    fn lose(&self, reason: DropReason, event: &AuditEvent) {
        self.stats.add_lost(reason, event);
    }

    /// Takes everything left in the queue and counts it as dropped at shutdown.
    fn drop_remaining(&self) {
        while let Some(event) = self.events.pop() {
            self.lose(DropReason::ShutDown, &event);
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.done.notify_waiters();
        // Producers waiting for room find the queue closed instead of waiting out their time.
        self.room.notify_waiters();
    }
}

/// A new queue of `capacity` events (at least 1) and its two ends.
pub(crate) fn channel(
    name: String,
    capacity: usize,
    overflow: OverflowPolicy,
    stats: DeliveryStats,
) -> (SinkQueue, SinkReceiver) {
    let shared = Arc::new(Shared {
        events: ArrayQueue::new(capacity.max(1)),
        idle: AtomicBool::new(false),
        wake: Notify::new(),
        nudged: AtomicBool::new(false),
        blocking: matches!(overflow, OverflowPolicy::Block { .. }),
        room: Notify::new(),
        closed: AtomicBool::new(false),
        sealed: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        done: Notify::new(),
        stats: stats.clone(),
    });
    let queue = SinkQueue {
        name,
        stats,
        overflow,
        kinds: u32::MAX,
        shared: shared.clone(),
    };
    (queue, SinkReceiver { shared })
}

/// The sending end of one sink's queue.
#[derive(Debug)]
pub(crate) struct SinkQueue {
    pub(crate) name: String,
    pub(crate) stats: DeliveryStats,
    pub(crate) overflow: OverflowPolicy,
    /// The kinds the sink takes, a bit each (`1 << kind as u32`): every kind unless
    /// [`taking`](Self::taking) said otherwise.
    kinds: u32,
    shared: Arc<Shared>,
}

/// An event kind's bit in [`SinkQueue`]'s set of kinds.
fn kind_bit(kind: EventKind) -> u32 {
    1 << (kind as u32)
}

impl SinkQueue {
    /// Queues only the kinds `takes` accepts. The others are settled when offered (not
    /// queued, not counted as dropped: the sink would never send them), so that they never
    /// take room from the events it does send: an alerts-only sink's queue would otherwise
    /// fill with an attack's own traffic while one of its sends is in flight, and the alert
    /// about it would find no room.
    pub(crate) fn taking(mut self, takes: impl Fn(EventKind) -> bool) -> Self {
        self.kinds = EventKind::ALL
            .into_iter()
            .filter(|&kind| takes(kind))
            .fold(0, |kinds, kind| kinds | kind_bit(kind));
        self
    }

    /// Whether the sink takes events of `kind` (see [`taking`](Self::taking)).
    pub(crate) fn takes(&self, kind: EventKind) -> bool {
        self.kinds & kind_bit(kind) != 0
    }

    /// Queues `event`, or applies the overflow policy.
    pub(crate) fn offer(&self, event: Arc<AuditEvent>) -> Offered {
        if !self.takes(event.kind) {
            return Offered::Settled;
        }
        match self.push(event) {
            Pushed::Queued | Pushed::Closed => Offered::Settled,
            Pushed::Full(event) => {
                self.stats.queue_depth().set(self.capacity() as f64);
                match self.overflow {
                    OverflowPolicy::DropNewest => {
                        self.shared.lose(DropReason::QueueFull, &event);
                        Offered::Settled
                    }
                    OverflowPolicy::Block { .. } => Offered::MustWait(event),
                }
            }
        }
    }

    fn push(&self, event: Arc<AuditEvent>) -> Pushed {
        let shared = &*self.shared;
        if shared.closed.load(Ordering::Acquire) {
            shared.lose(DropReason::ShutDown, &event);
            return Pushed::Closed;
        }
        if let Err(event) = shared.events.push(event) {
            return Pushed::Full(event);
        }
        // Orders the push before the two loads below, against the task's store of `idle`
        // (or `sealed`) before it looks at the queue: one of the two sides sees the other.
        fence(Ordering::SeqCst);
        if shared.idle.load(Ordering::Relaxed) && shared.idle.swap(false, Ordering::AcqRel) {
            // A permit is kept if the task is not waiting yet, so the wake-up is not lost.
            shared.wake.notify_one();
        }
        if shared.sealed.load(Ordering::Relaxed) {
            // The task may have made its last pass before this push landed.
            shared.drop_remaining();
        }
        Pushed::Queued
    }

    /// Waits for room in the queue until `deadline`, then queues `event` or counts it as
    /// dropped.
    pub(crate) async fn send_before(&self, event: Arc<AuditEvent>, deadline: tokio::time::Instant) {
        let mut event = event;
        loop {
            // Made before the attempt, so room made between the attempt and the wait counts.
            let room = self.shared.room.notified();
            match self.push(event) {
                Pushed::Queued | Pushed::Closed => return,
                Pushed::Full(back) => event = back,
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                self.shared.lose(DropReason::BlockTimeout, &event);
                return;
            }
        }
    }

    /// Has the task look at its statistics again, as after a batch: losses counted from
    /// outside the task while it may be idle (the processors' stage counts the events a
    /// processor panicked on) are reported now, not when the next event comes.
    pub(crate) fn nudge(&self) {
        let shared = &*self.shared;
        shared.nudged.store(true, Ordering::SeqCst);
        // As for a push: either the task sees `nudged` after it set `idle`, or this sees
        // `idle` and wakes it.
        fence(Ordering::SeqCst);
        if shared.idle.load(Ordering::Relaxed) && shared.idle.swap(false, Ordering::AcqRel) {
            shared.wake.notify_one();
        }
    }

    /// Refuses new events from now on and has the task write and flush everything queued
    /// so far, then stop.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
    }

    /// [`close`](Self::close)s the queue and waits until the task has written and flushed
    /// everything queued before. Calling it again (or after the task is gone) returns once
    /// the task stopped.
    pub(crate) async fn shutdown(&self) {
        self.close();
        let shared = &*self.shared;
        loop {
            let done = shared.done.notified();
            if shared.stopped.load(Ordering::SeqCst) {
                return;
            }
            done.await;
        }
    }

    /// Events waiting in the queue.
    pub(crate) fn queued(&self) -> usize {
        self.shared.events.len()
    }

    /// Events the queue holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.shared.events.capacity()
    }
}

impl Drop for SinkQueue {
    /// The last producer is gone: the task writes what is queued and stops.
    fn drop(&mut self) {
        self.close();
    }
}

/// The sink task's end of the queue.
#[derive(Debug)]
pub(crate) struct SinkReceiver {
    shared: Arc<Shared>,
}

impl SinkReceiver {
    /// Waits for events and moves up to `limit` of them into `batch`; how many. 0 means the
    /// queue is closed and empty (call [`seal`](Self::seal) next), or, while it is not
    /// [closed](Self::is_closed), that the task was [nudged](SinkQueue::nudge). Cancel-safe.
    pub(crate) async fn recv_many(
        &mut self,
        batch: &mut Vec<Arc<AuditEvent>>,
        limit: usize,
    ) -> usize {
        let shared = &*self.shared;
        loop {
            let taken = self.take(batch, limit);
            if taken > 0 {
                return taken;
            }
            if shared.closed.load(Ordering::SeqCst) {
                // The queue may have been refilled between the take and the load.
                let taken = self.take(batch, limit);
                return taken;
            }
            if shared.nudged.swap(false, Ordering::SeqCst) {
                return 0;
            }
            shared.idle.store(true, Ordering::SeqCst);
            if !shared.events.is_empty()
                || shared.closed.load(Ordering::SeqCst)
                || shared.nudged.load(Ordering::SeqCst)
            {
                shared.idle.store(false, Ordering::Relaxed);
                continue;
            }
            shared.wake.notified().await;
            shared.idle.store(false, Ordering::Relaxed);
        }
    }

    /// Moves up to `limit` queued events into `batch` without waiting; how many.
    pub(crate) fn take(&self, batch: &mut Vec<Arc<AuditEvent>>, limit: usize) -> usize {
        let mut taken = 0;
        while taken < limit {
            let Some(event) = self.shared.events.pop() else {
                break;
            };
            batch.push(event);
            taken += 1;
        }
        if taken > 0 && self.shared.blocking {
            self.shared.room.notify_waiters();
        }
        taken
    }

    /// Whether shutdown began (or every producer is gone).
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Events waiting in the queue.
    pub(crate) fn len(&self) -> usize {
        self.shared.events.len()
    }

    /// After [`recv_many`](Self::recv_many) returned 0: marks the queue as no longer read and
    /// moves into `batch` what producers pushed meanwhile (they count anything later).
    pub(crate) fn seal(&self, batch: &mut Vec<Arc<AuditEvent>>) {
        self.shared.sealed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        self.take(batch, usize::MAX);
    }

    /// Everything taken is written and flushed: wakes [`SinkQueue::shutdown`].
    pub(crate) fn stopped(&self) {
        self.shared.stop();
    }
}

impl Drop for SinkReceiver {
    /// The task stopped, or was dropped with its runtime: whatever it left is counted.
    fn drop(&mut self) {
        let shared = &*self.shared;
        shared.closed.store(true, Ordering::SeqCst);
        shared.sealed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        shared.drop_remaining();
        shared.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Outcome, ServiceInfo, Timestamp};

    fn event() -> Arc<AuditEvent> {
        let service = Arc::new(ServiceInfo {
            name: "queue-test".into(),
            instance: None,
        });
        Arc::new(AuditEvent::new(
            service,
            Timestamp::now(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        ))
    }

    fn queue(capacity: usize, overflow: OverflowPolicy) -> (SinkQueue, SinkReceiver) {
        channel("test".into(), capacity, overflow, DeliveryStats::default())
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_under_drop_newest() {
        let (tx, mut rx) = queue(2, OverflowPolicy::DropNewest);
        for _ in 0..3 {
            assert!(matches!(tx.offer(event()), Offered::Settled));
        }
        assert_eq!(tx.queued(), 2);
        assert_eq!(tx.stats.dropped(DropReason::QueueFull), 1);
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 10).await, 2);
    }

    #[tokio::test]
    async fn kinds_the_sink_does_not_take_are_settled_without_room_or_a_drop() {
        let policy = OverflowPolicy::Block {
            timeout: std::time::Duration::from_secs(60),
        };
        let (tx, mut rx) = queue(1, policy);
        let tx = tx.taking(|kind| kind == EventKind::SecurityAlert);
        // ResourceAccessed: none queued, none waits, none counted as dropped.
        for _ in 0..3 {
            assert!(matches!(tx.offer(event()), Offered::Settled));
        }
        assert_eq!(tx.queued(), 0);
        assert_eq!(tx.stats.dropped_total(), 0);
        let mut alert = (*event()).clone();
        alert.kind = EventKind::SecurityAlert;
        assert!(matches!(tx.offer(Arc::new(alert)), Offered::Settled));
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 10).await, 1);
        assert_eq!(batch[0].kind, EventKind::SecurityAlert);
    }

    #[tokio::test]
    async fn a_full_queue_asks_to_wait_under_block_and_a_taken_event_makes_room() {
        let policy = OverflowPolicy::Block {
            timeout: std::time::Duration::from_secs(60),
        };
        let (tx, mut rx) = queue(1, policy);
        assert!(matches!(tx.offer(event()), Offered::Settled));
        assert!(matches!(tx.offer(event()), Offered::MustWait(_)));
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let waiting = tx.send_before(event(), deadline);
        let mut batch = Vec::new();
        let taking = async {
            tokio::task::yield_now().await;
            rx.recv_many(&mut batch, 10).await
        };
        let ((), taken) = tokio::join!(waiting, taking);
        assert_eq!(taken, 1);
        assert_eq!(
            tx.queued(),
            1,
            "the waiting event went in once there was room"
        );
        assert_eq!(tx.stats.dropped_total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_block_wait_that_times_out_is_counted() {
        let policy = OverflowPolicy::Block {
            timeout: std::time::Duration::from_millis(5),
        };
        let (tx, _rx) = queue(1, policy);
        tx.offer(event());
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(5);
        tx.send_before(event(), deadline).await;
        assert_eq!(tx.stats.dropped(DropReason::BlockTimeout), 1);
    }

    #[tokio::test]
    async fn an_idle_receiver_is_woken_by_the_next_event() {
        let (tx, mut rx) = queue(4, OverflowPolicy::DropNewest);
        let receiving = tokio::spawn(async move {
            let mut batch = Vec::new();
            rx.recv_many(&mut batch, 10).await
        });
        // Let the receiver find the queue empty and go idle first.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        tx.offer(event());
        assert_eq!(receiving.await.unwrap(), 1);
    }

    #[tokio::test]
    async fn after_close_the_rest_is_taken_then_nothing_is_queued() {
        let (tx, mut rx) = queue(4, OverflowPolicy::DropNewest);
        tx.offer(event());
        tx.shared.closed.store(true, Ordering::SeqCst);
        tx.offer(event());
        assert_eq!(tx.stats.dropped(DropReason::ShutDown), 1);
        let mut batch = Vec::new();
        assert_eq!(rx.recv_many(&mut batch, 10).await, 1);
        assert_eq!(rx.recv_many(&mut batch, 10).await, 0);
        rx.seal(&mut batch);
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test]
    async fn a_push_that_lands_after_the_seal_is_counted_not_lost() {
        let (tx, rx) = queue(4, OverflowPolicy::DropNewest);
        let mut batch = Vec::new();
        rx.seal(&mut batch);
        // A producer that read `closed` before shutdown began and pushes after the seal.
        tx.shared.events.push(event()).unwrap();
        assert!(matches!(tx.push(event()), Pushed::Queued));
        assert_eq!(tx.queued(), 0);
        assert_eq!(tx.stats.dropped(DropReason::ShutDown), 2);
    }

    #[tokio::test]
    async fn a_dropped_receiver_counts_what_it_left_and_releases_shutdown() {
        let (tx, rx) = queue(4, OverflowPolicy::DropNewest);
        tx.offer(event());
        tx.offer(event());
        drop(rx);
        assert_eq!(tx.stats.dropped(DropReason::ShutDown), 2);
        tx.shutdown().await;
        tx.offer(event());
        assert_eq!(tx.stats.dropped(DropReason::ShutDown), 3);
    }
}
