use std::sync::Arc;

use super::{AuditWriter, WriteError};
use crate::event::AuditEvent;

/// A writer made from a closure called once per event, see [`from_fn`].
#[derive(Clone, Debug)]
pub struct FnWriter<F> {
    name: String,
    f: F,
}

/// Makes a writer from a synchronous closure, called once per event on the writer's
/// background task.
///
/// ```
/// use oauth_audit::writer::{from_fn, Auditor};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let auditor = Auditor::builder()
///     .writer(from_fn("stderr", |event| eprintln!("{} {}", event.kind, event.outcome.as_str())))
///     .build()
///     .unwrap();
/// # auditor.shutdown().await;
/// # }
/// ```
pub fn from_fn<F>(name: impl Into<String>, f: F) -> FnWriter<F>
where
    F: FnMut(&AuditEvent) + Send + 'static,
{
    FnWriter {
        name: name.into(),
        f,
    }
}

impl<F> AuditWriter for FnWriter<F>
where
    F: FnMut(&AuditEvent) + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        batch.iter().for_each(|event| (self.f)(event));
        Ok(())
    }
}
