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
        Ok(())
    }
}
