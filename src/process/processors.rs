//! The processors in order, with their ticks: what both places that run them share, the
//! stage's own task (several sinks) and a lone sink's task (see [`crate::sink::Inline`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Processor;
use crate::event::AuditEvent;
use crate::sink::metrics::EventMetrics;
use crate::sink::Inline;

/// Every processor, in the order they were added, and when each next ticks.
pub(crate) struct Processors {
    list: Vec<Box<dyn Processor>>,
    ticks: Ticks,
    /// Events the processors add are counted here, as the request path counts its own.
    metrics: Arc<EventMetrics>,
    /// Events a processor panicked on, until the sinks count them as dropped.
    lost: Vec<Arc<AuditEvent>>,
}

impl Processors {
    pub(crate) fn new(list: Vec<Box<dyn Processor>>, metrics: Arc<EventMetrics>) -> Self {
        let ticks = Ticks::new(&list);
        Processors {
            list,
            ticks,
            metrics,
            lost: Vec::new(),
        }
    }

    /// Runs `events` through the processors from `from` on, in place: an event a processor
    /// adds follows the one that raised it, through the processors after that one; an event
    /// a processor panicked on leaves the batch for `lost`.
    fn run_from(&mut self, from: usize, events: &mut Vec<Arc<AuditEvent>>) {
        let mut emitted = Vec::new();
        for processor in self.list.iter_mut().skip(from) {
            // Only once a processor adds or drops an event is the batch rebuilt; usually
            // none does.
            let mut rebuilt: Option<Vec<Arc<AuditEvent>>> = None;
            for index in 0..events.len() {
                // Unique (the request path let go of it): no copy is made.
                let event = Arc::make_mut(&mut events[index]);
                if !guarded(processor.as_mut(), "process", |processor| {
                    processor.process(event, &mut emitted)
                }) {
                    Self::lose_added(&self.metrics, &mut self.lost, &mut emitted);
                    rebuilt.get_or_insert_with(|| events[..index].to_vec());
                    self.lost.push(events[index].clone());
                    continue;
                }
                if let Some(next) = &mut rebuilt {
                    next.push(events[index].clone());
                }
                if emitted.is_empty() {
                    continue;
                }
                let next = rebuilt.get_or_insert_with(|| {
                    let mut next = Vec::with_capacity(events.len() + emitted.len());
                    next.extend(events[..=index].iter().cloned());
                    next
                });
                for added in emitted.drain(..) {
                    self.metrics.record(added.kind, added.outcome);
                    next.push(Arc::new(added));
                }
            }
            if let Some(next) = rebuilt {
                *events = next;
            }
        }
    }

    /// The events a call that panicked had added: not passed on, half-made as they may be,
    /// but counted like any event the processors add, then lost with the call, so that the
    /// sinks that would have taken them count and report them (a detector's alert included).
    fn lose_added(
        metrics: &EventMetrics,
        lost: &mut Vec<Arc<AuditEvent>>,
        emitted: &mut Vec<AuditEvent>,
    ) {
        for added in emitted.drain(..) {
            metrics.record(added.kind, added.outcome);
            lost.push(Arc::new(added));
        }
    }

    /// Events that processors `from` on emitted outside `process` (a tick, the finish),
    /// counted and run through the processors after the one that emitted them.
    fn pass_emitted(
        &mut self,
        from: usize,
        emitted: Vec<AuditEvent>,
        out: &mut Vec<Arc<AuditEvent>>,
    ) {
        if emitted.is_empty() {
            return;
        }
        let mut events: Vec<_> = emitted
            .into_iter()
            .map(|event| {
                self.metrics.record(event.kind, event.outcome);
                Arc::new(event)
            })
            .collect();
        self.run_from(from, &mut events);
        out.append(&mut events);
    }
}

impl Inline for Processors {
    fn process(&mut self, batch: &mut Vec<Arc<AuditEvent>>) {
        self.run_from(0, batch);
    }

    fn next_due(&self) -> Option<Instant> {
        self.ticks.next()
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Arc<AuditEvent>>) {
        for index in 0..self.list.len() {
            if self.ticks.due(index, now) {
                let mut emitted = Vec::new();
                if !guarded(self.list[index].as_mut(), "tick", |processor| {
                    processor.tick(&mut emitted)
                }) {
                    Self::lose_added(&self.metrics, &mut self.lost, &mut emitted);
                }
                self.pass_emitted(index + 1, emitted, out);
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<Arc<AuditEvent>>) {
        for index in 0..self.list.len() {
            let mut emitted = Vec::new();
            if !guarded(self.list[index].as_mut(), "finish", |processor| {
                processor.finish(&mut emitted)
            }) {
                Self::lose_added(&self.metrics, &mut self.lost, &mut emitted);
            }
            self.pass_emitted(index + 1, emitted, out);
        }
    }

    fn take_lost(&mut self) -> Vec<Arc<AuditEvent>> {
        std::mem::take(&mut self.lost)
    }
}

/// Runs one call of `processor`, catching a panic; whether the call returned. The task
/// running the processors carries every event to the sinks, so a panic let through would
/// stop the pipeline and lose the batch in hand, and every event after it, uncounted. What
/// the call left half-done is not passed on: the event it panicked on and the events it
/// added are dropped (counted by the sinks). A panic is logged here (the panic hook has
/// already shown its message).
fn guarded(
    processor: &mut dyn Processor,
    call: &'static str,
    run: impl FnOnce(&mut dyn Processor),
) -> bool {
    if catch_unwind(AssertUnwindSafe(|| run(&mut *processor))).is_ok() {
        return true;
    }
    let dropped = match call {
        "process" => "the event it was given and the events it added are dropped",
        _ => "the events it added are dropped",
    };
    tracing::error!(
        target: "oauth_audit",
        processor = processor.name(),
        call,
        "a processor panicked; {dropped}"
    );
    false
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
