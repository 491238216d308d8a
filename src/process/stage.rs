//! The pipeline's background stage: runs the processors on each event, then fans it out to
//! the sinks' queues, applying each sink's overflow policy.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Processor;
use crate::event::AuditEvent;
use crate::sink::metrics::EventMetrics;
use crate::sink::queue::{Offered, SinkQueue};
use crate::sink::OverflowPolicy;

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
    processors: Vec<Box<dyn Processor>>,
    sinks: Arc<[SinkQueue]>,
    metrics: Arc<EventMetrics>,
    capacity: usize,
) -> mpsc::Sender<StageCommand> {
    let (tx, rx) = mpsc::channel(capacity);
    let stage = Stage {
        processors,
        sinks,
        metrics,
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
    processors: Vec<Box<dyn Processor>>,
    sinks: Arc<[SinkQueue]>,
    metrics: Arc<EventMetrics>,
    rx: mpsc::Receiver<StageCommand>,
}

impl Stage {
    async fn run(mut self) {
        let mut ticks = Ticks::new(&self.processors);
        let mut commands = Vec::with_capacity(BATCH);
        // One timer for the whole run, moved when the next tick changes: a timer made
        // afresh for every event costs more than the event's processing.
        let sleep = tokio::time::sleep_until(ticks.next().unwrap_or_else(Instant::now));
        tokio::pin!(sleep);
        loop {
            let wake = tokio::select! {
                biased;
                received = self.rx.recv_many(&mut commands, BATCH) => Wake::Commands(received),
                () = &mut sleep, if ticks.next().is_some() => Wake::Tick,
            };
            match wake {
                Wake::Tick => {
                    self.tick(&mut ticks, sleep.as_mut()).await;
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
            self.pass(0, events).await;
            if let Some(ack) = shutdown {
                self.rx.close();
                while let Some(command) = self.rx.recv().await {
                    if let StageCommand::Event(event) = command {
                        self.pass(0, vec![event]).await;
                    }
                }
                self.finish().await;
                let _ = ack.send(());
                return;
            }
            // Under a steady stream of events the timer branch may never be chosen: time
            // is checked after every batch too.
            if ticks.next().is_some_and(|due| due <= Instant::now()) {
                self.tick(&mut ticks, sleep.as_mut()).await;
            }
        }
    }

    /// Ticks every processor whose interval has passed; what they emit goes through the
    /// processors after them.
    async fn tick(&mut self, ticks: &mut Ticks, sleep: std::pin::Pin<&mut tokio::time::Sleep>) {
        let now = Instant::now();
        for index in 0..self.processors.len() {
            if ticks.due(index, now) {
                let mut emitted = Vec::new();
                self.processors[index].tick(&mut emitted);
                self.pass_emitted(index + 1, emitted).await;
            }
        }
        if let Some(next) = ticks.next() {
            sleep.reset(next);
        }
    }

    /// The processors' last word, in order, before the sinks shut down.
    async fn finish(&mut self) {
        for index in 0..self.processors.len() {
            let mut emitted = Vec::new();
            self.processors[index].finish(&mut emitted);
            self.pass_emitted(index + 1, emitted).await;
        }
    }

    async fn pass_emitted(&mut self, from: usize, emitted: Vec<AuditEvent>) {
        if emitted.is_empty() {
            return;
        }
        let events = emitted
            .into_iter()
            .map(|event| {
                self.metrics.record(event.kind, event.outcome);
                Arc::new(event)
            })
            .collect();
        self.pass(from, events).await;
    }

    /// Events through the processors from `from` on (events a processor adds go through the
    /// ones after it), then to every sink.
    async fn pass(&mut self, from: usize, mut events: Vec<Arc<AuditEvent>>) {
        let mut emitted = Vec::new();
        for processor in self.processors.iter_mut().skip(from) {
            let mut next = Vec::with_capacity(events.len());
            for mut event in events {
                // Unique (the request path let go of it): no copy is made.
                processor.process(Arc::make_mut(&mut event), &mut emitted);
                next.push(event);
                for added in emitted.drain(..) {
                    self.metrics.record(added.kind, added.outcome);
                    next.push(Arc::new(added));
                }
            }
            events = next;
        }
        for event in events {
            for sink in self.sinks.iter() {
                if let Offered::MustWait = sink.offer(event.clone()) {
                    // A sink that would rather wait than lose events holds the stage up;
                    // its queue filling up is what slows the request path down.
                    if let OverflowPolicy::Block { timeout } = sink.overflow {
                        let deadline = tokio::time::Instant::now() + timeout;
                        sink.send_before(event.clone(), deadline).await;
                    }
                }
            }
        }
    }
}

/// When each processor with a tick interval is next due.
struct Ticks {
    every: Vec<Option<Duration>>,
    due: Vec<Option<Instant>>,
}

impl Ticks {
    fn new(processors: &[Box<dyn Processor>]) -> Ticks {
        let now = Instant::now();
        let every: Vec<_> = processors
            .iter()
            .map(|p| p.tick_interval().filter(|d| !d.is_zero()))
            .collect();
        let due = every.iter().map(|d| d.map(|d| now + d)).collect();
        Ticks { every, due }
    }

    /// The earliest deadline, if any processor ticks.
    fn next(&self) -> Option<Instant> {
        self.due.iter().flatten().min().copied()
    }

    /// Whether processor `index` is due at `now`; if so, its next deadline is set.
    fn due(&mut self, index: usize, now: Instant) -> bool {
        match (self.due[index], self.every[index]) {
            (Some(due), Some(every)) if due <= now => {
                self.due[index] = Some(now + every);
                true
            }
            _ => false,
        }
    }
}
