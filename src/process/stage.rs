//! The pipeline's background stage, for more than one sink: runs the processors on each
//! event in a task of its own, then fans it out to the sinks' queues, applying each sink's
//! overflow policy. (With a single sink the processors run in that sink's task instead.)

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::processors::Processors;
use crate::event::{AuditEvent, DropReason};
use crate::sink::queue::{Offered, SinkQueue};
use crate::sink::{Inline, OverflowPolicy};

/// What travels to the stage.
pub(crate) enum StageCommand {
    /// Shared only by the queue: the stage gets it back unique and changes it in place.
    Event(Arc<AuditEvent>),
    /// Process and fan out everything queued before this command, then stop.
    Shutdown(oneshot::Sender<()>),
}

/// Commands taken from the queue at a time.
const BATCH: usize = 256;

/// Starts the stage's task on the current runtime; returns its queue.
pub(crate) fn spawn(
    processors: Processors,
    sinks: Arc<[SinkQueue]>,
    capacity: usize,
) -> mpsc::Sender<StageCommand> {
    let (tx, rx) = mpsc::channel(capacity);
    let stage = Stage {
        processors,
        sinks,
        rx,
    };
    tokio::spawn(stage.run());
    tx
}

/// What woke the stage.
enum Wake {
    /// This many commands were received (0: the queue is closed and empty).
    Commands(usize),
    /// A processor's tick is due.
    Tick,
}

struct Stage {
    processors: Processors,
    sinks: Arc<[SinkQueue]>,
    rx: mpsc::Receiver<StageCommand>,
}

impl Stage {
    async fn run(mut self) {
        let mut commands = Vec::with_capacity(BATCH);
        // One timer for the whole run, moved when the next tick changes: a timer made
        // afresh for every event costs more than the event's processing.
        let first = self.processors.next_due();
        let sleep = tokio::time::sleep_until(first.unwrap_or_else(Instant::now));
        tokio::pin!(sleep);
        loop {
            let ticking = self.processors.next_due().is_some();
            let wake = tokio::select! {
                biased;
                received = self.rx.recv_many(&mut commands, BATCH) => Wake::Commands(received),
                () = &mut sleep, if ticking => Wake::Tick,
            };
            match wake {
                Wake::Tick => {
                    self.tick(sleep.as_mut()).await;
                    continue;
                }
                Wake::Commands(0) => {
                    // Every sender is gone.
                    self.finish().await;
                    return;
                }
                Wake::Commands(_) => {}
            }
            let mut events = Vec::with_capacity(commands.len());
            let mut shutdown = None;
            for command in commands.drain(..) {
                match command {
                    StageCommand::Event(event) => events.push(event),
                    StageCommand::Shutdown(ack) => shutdown = shutdown.or(Some(ack)),
                }
            }
            self.processors.process(&mut events);
            self.fan_out(events).await;
            if let Some(ack) = shutdown {
                self.rx.close();
                while let Some(command) = self.rx.recv().await {
                    if let StageCommand::Event(event) = command {
                        let mut events = vec![event];
                        self.processors.process(&mut events);
                        self.fan_out(events).await;
                    }
                }
                self.finish().await;
                let _ = ack.send(());
                return;
            }
            // Under a steady stream of events the timer branch may never be chosen: time
            // is checked after every batch too.
            if self
                .processors
                .next_due()
                .is_some_and(|due| due <= Instant::now())
            {
                self.tick(sleep.as_mut()).await;
            }
        }
    }

    /// Ticks every processor whose interval has passed.
    async fn tick(&mut self, sleep: std::pin::Pin<&mut tokio::time::Sleep>) {
        let mut raised = Vec::new();
        self.processors.tick(Instant::now(), &mut raised);
        self.fan_out(raised).await;
        if let Some(next) = self.processors.next_due() {
            sleep.reset(next);
        }
    }

    /// The processors' last word, in order, before the sinks shut down.
    async fn finish(&mut self) {
        let mut last = Vec::new();
        self.processors.finish(&mut last);
        self.fan_out(last).await;
    }

    /// Offers each event to every sink, after counting the events the processors dropped
    /// as lost by every sink that would have taken them.
    async fn fan_out(&mut self, events: Vec<Arc<AuditEvent>>) {
        let lost = self.processors.take_lost();
        if !lost.is_empty() {
            for sink in self.sinks.iter() {
                let mut counted = false;
                for event in lost.iter().filter(|event| sink.takes(event.kind)) {
                    sink.stats.add_lost(DropReason::ProcessorPanicked, event);
                    counted = true;
                }
                if counted {
                    // Its task may be idle until its next event: it reports the loss now.
                    sink.nudge();
                }
            }
        }
        for event in events {
            for sink in self.sinks.iter() {
                if let Offered::MustWait(event) = sink.offer(event.clone()) {
                    // A sink that would rather wait than lose events holds the stage up;
                    // its queue filling up is what slows the request path down.
                    if let OverflowPolicy::Block { timeout } = sink.overflow {
                        let deadline = tokio::time::Instant::now() + timeout;
                        sink.send_before(event, deadline).await;
                    }
                }
            }
        }
    }
}
