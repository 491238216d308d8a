//! The pipeline's background stage: runs the processors on each event, then fans it out to
//! the sinks' queues, applying each sink's overflow policy.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

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

struct Stage {
    processors: Vec<Box<dyn Processor>>,
    sinks: Arc<[SinkQueue]>,
    metrics: Arc<EventMetrics>,
    rx: mpsc::Receiver<StageCommand>,
}

impl Stage {
    async fn run(mut self) {
        while let Some(command) = self.rx.recv().await {
            match command {
                StageCommand::Event(event) => self.pass(event).await,
                StageCommand::Shutdown(ack) => {
                    self.rx.close();
                    while let Some(command) = self.rx.recv().await {
                        if let StageCommand::Event(event) = command {
                            self.pass(event).await;
                        }
                    }
                    let _ = ack.send(());
                    return;
                }
            }
        }
    }

    /// One event through every processor (events a processor adds go through the ones
    /// after it), then to every sink.
    async fn pass(&mut self, event: Arc<AuditEvent>) {
        let mut events = vec![event];
        let mut emitted = Vec::new();
        for processor in &mut self.processors {
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
