use std::sync::{Arc, Mutex, PoisonError};

use super::{AuditWriter, WriteError};
use crate::event::AuditEvent;

/// Keeps events in memory, for tests and for inspection in-process.
///
/// Clones share the same store.
///
/// ```
/// let memory = oauth_audit::writer::MemoryWriter::new();
/// assert!(memory.json_lines().is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryWriter {
    events: Arc<Mutex<Vec<Arc<AuditEvent>>>>,
    /// Woken at every batch, for [`MemoryWriter::wait_for`].
    written: Arc<tokio::sync::Notify>,
}

impl MemoryWriter {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events written so far.
    pub fn events(&self) -> Vec<Arc<AuditEvent>> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The events written so far, as JSON values.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.events()
            .iter()
            .filter_map(|e| serde_json::to_value(e.as_ref()).ok())
            .collect()
    }

    /// The events written so far, as one JSON line each (what a file writer writes).
    pub fn json_lines(&self) -> String {
        let mut out = String::new();
        for event in self.events() {
            if let Ok(line) = serde_json::to_string(event.as_ref()) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }

    /// Waits until at least `count` events were written, and returns them: what a test
    /// awaits after its requests, instead of sleeping or shutting the auditor down. Wrap it
    /// in a timeout; it waits for as long as it takes.
    ///
    /// ```
    /// use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
    /// use oauth_audit::writer::{Auditor, MemoryWriter};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let memory = MemoryWriter::new();
    /// let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    /// auditor.emit(AuditEvent::new(auditor.service().clone(), Timestamp::now(),
    ///     EventKind::LoginSucceeded, Outcome::Success));
    /// let events = tokio::time::timeout(std::time::Duration::from_secs(5), memory.wait_for(1))
    ///     .await
    ///     .expect("written within 5 s");
    /// assert_eq!(events[0].kind, EventKind::LoginSucceeded);
    /// # }
    /// ```
    pub async fn wait_for(&self, count: usize) -> Vec<Arc<AuditEvent>> {
        loop {
            // Registered before looking, so a batch written in between still wakes it.
            let woken = self.written.notified();
            let events = self.events();
            if events.len() >= count {
                return events;
            }
            woken.await;
        }
    }

    /// Forgets the events written so far.
    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl AuditWriter for MemoryWriter {
    fn name(&self) -> &str {
        "memory"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch.iter().cloned());
        self.written.notify_waiters();
        Ok(())
    }
}
