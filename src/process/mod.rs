//! Processors: stages every event passes through once, in order, after the request path
//! made it and before it is fanned out to the sinks, so that every sink receives the same
//! event. Enrichment (a tenant id in `labels`), chaining and detection are processors.
//!
//! Processors run in the background, never on the request path: in the only writer's own
//! task when there is one writer (an event crosses one queue), in a task of their own that
//! then fans events out to the writers' queues when there are several. With none
//! configured events go straight to the writers' queues.
//!
//! ```
//! use oauth_audit::event::AuditEvent;
//! use oauth_audit::writer::{Auditor, MemoryWriter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let memory = MemoryWriter::new();
//! let auditor = Auditor::builder()
//!     .processor(|event: &mut AuditEvent| {
//!         event.labels.insert("tenant".into(), "acme".into());
//!     })
//!     .writer(memory.clone())
//!     .build()?;
//! # let event = AuditEvent::new(auditor.service().clone(), oauth_audit::event::Timestamp::now(),
//! #     oauth_audit::event::EventKind::ResourceAccessed, oauth_audit::event::Outcome::Success);
//! auditor.emit(event);
//! auditor.shutdown().await;
//! assert_eq!(memory.events()[0].labels["tenant"], "acme");
//! # Ok(()) }
//! ```

pub(crate) mod processors;
pub(crate) mod stage;

use std::time::Duration;

use crate::event::AuditEvent;

/// A stage of the pipeline: sees every event once, in the order they were emitted, and may
/// change it or add events of its own (an alert raised by a detection rule).
///
/// Implemented for closures `FnMut(&mut AuditEvent)`; implement it on a type for a stage
/// that adds events or keeps state worth naming.
///
/// A panic in any of its methods is caught and logged with the processor's
/// [`name`](Processor::name), and the processor is called again for what comes next. The
/// event it panicked on is dropped, not passed on as the processor left it (a redaction
/// stopped half-way would pass secrets on): every writer counts it as dropped with
/// `reason: processor_panicked` and reports it in an `AuditEventsDropped` event. The events
/// it added in the call that panicked (in `process`, `tick` or `finish`) are dropped and
/// counted the same way: an alert raised before the panic is not lost without a trace.
pub trait Processor: Send + 'static {
    /// The processor's name in logs; its type's name unless overridden.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// Processes one event. Events pushed onto `emitted` follow it, through the processors
    /// after this one, to every sink.
    fn process(&mut self, event: &mut AuditEvent, emitted: &mut Vec<AuditEvent>);

    /// How often the pipeline calls [`Processor::tick`]; `None` (the default) for never.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Called about every [`tick_interval`](Processor::tick_interval), between events, for
    /// what time alone decides (a checkpoint every minute, an alert window closing). Events
    /// pushed onto `emitted` go through the processors after this one, to every sink.
    fn tick(&mut self, emitted: &mut Vec<AuditEvent>) {
        let _ = emitted;
    }

    /// Called once when the auditor shuts down, after the last event, for a final word (the
    /// last checkpoint); events pushed onto `emitted` are still delivered.
    fn finish(&mut self, emitted: &mut Vec<AuditEvent>) {
        let _ = emitted;
    }
}

impl<F> Processor for F
where
    F: FnMut(&mut AuditEvent) + Send + 'static,
{
    fn process(&mut self, event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {
        self(event)
    }
}
