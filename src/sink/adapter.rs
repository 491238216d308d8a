//! What the runtime drives: one interface over writers (local, event-shaped) and backends
//! (remote, JSON-shaped). A sink only writes a batch and says whether retrying may help.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{AuditWriter, Backend, BackendError, EncodedEvent};
use crate::event::{AuditEvent, EventKind};

/// A destination as the sink runtime sees it.
pub(crate) trait Sink: Send + 'static {
    /// The sink's name (`dropped.sink`, metrics labels, diagnostics).
    fn name(&self) -> &str;

    /// Writes a batch; an error says whether retrying may succeed.
    fn send(
        &mut self,
        batch: &[EncodedEvent],
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Makes what was written durable.
    fn flush(&mut self) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Whether the sink takes events as they are ([`send_events`](Sink::send_events)) for a
    /// first attempt, rather than their JSON.
    fn takes_events(&self) -> bool {
        false
    }

    /// Writes a batch of events not serialised yet (only called when
    /// [`takes_events`](Sink::takes_events)).
    fn send_events(
        &mut self,
        batch: &[Arc<AuditEvent>],
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        let encoded: Result<Vec<EncodedEvent>, _> = batch
            .iter()
            .map(|event| EncodedEvent::encode_shared(event.clone()))
            .collect();
        async move {
            match encoded {
                Ok(encoded) => self.send(&encoded).await,
                Err(err) => Err(BackendError::rejected(self.name().to_owned(), err)),
            }
        }
    }

    /// Work of the sink's own while no events arrive (see [`AuditWriter::wake_after`]).
    fn wake_after(&self) -> Option<Duration> {
        None
    }

    /// Events accepted but not in the destination yet (see
    /// [`AuditWriter::unwritten_events`]).
    fn unwritten_events(&self) -> usize {
        0
    }

    /// Whether the sink writes events of `kind` at all (see [`Backend::takes_kind`]).
    fn takes_kind(&self, kind: EventKind) -> bool {
        let _ = kind;
        true
    }
}

/// A [`Backend`] as a sink.
#[derive(Debug)]
pub(crate) struct BackendSink<B>(pub(crate) B);

impl<B: Backend> Sink for BackendSink<B> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn send(
        &mut self,
        batch: &[EncodedEvent],
    ) -> impl Future<Output = Result<(), BackendError>> + Send {
        self.0.send(batch)
    }

    async fn flush(&mut self) -> Result<(), BackendError> {
        Ok(())
    }

    fn takes_kind(&self, kind: EventKind) -> bool {
        self.0.takes_kind(kind)
    }
}

/// An [`AuditWriter`] as a sink. A writer's failure may be transient (a full disk, a pipe
/// that is back later): it is retried when the writer has a retry policy, and dropped
/// otherwise.
#[derive(Debug)]
pub(crate) struct WriterSink<W>(pub(crate) W);

impl<W: AuditWriter> Sink for WriterSink<W> {
    fn name(&self) -> &str {
        self.0.name()
    }

    async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        let result = self.0.write_encoded(batch).await;
        result.map_err(|err| BackendError::unavailable(self.0.name(), err))
    }

    fn takes_events(&self) -> bool {
        true
    }

    async fn send_events(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), BackendError> {
        let result = self.0.write(batch).await;
        result.map_err(|err| BackendError::unavailable(self.0.name(), err))
    }

    async fn flush(&mut self) -> Result<(), BackendError> {
        let result = self.0.flush().await;
        result.map_err(|err| BackendError::unavailable(self.0.name(), err))
    }

    fn wake_after(&self) -> Option<Duration> {
        self.0.wake_after()
    }

    fn unwritten_events(&self) -> usize {
        self.0.unwritten_events()
    }
}
