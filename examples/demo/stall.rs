//! A writer wrapper the scenario can pause, to show what happens when a writer falls behind.

use std::sync::Arc;

use oauth_audit::event::AuditEvent;
use oauth_audit::writer::{AuditWriter, WriteError};
use tokio::sync::watch;

/// Passes batches to `W` unless paused; while paused, `write` waits.
pub struct Stallable<W> {
    inner: Arc<tokio::sync::Mutex<W>>,
    name: String,
    paused: watch::Sender<bool>,
}

impl<W> Clone for Stallable<W> {
    fn clone(&self) -> Self {
        Stallable {
            inner: self.inner.clone(),
            name: self.name.clone(),
            paused: self.paused.clone(),
        }
    }
}

impl<W: AuditWriter> Stallable<W> {
    pub fn new(inner: W) -> Self {
        Stallable {
            name: inner.name().to_owned(),
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            paused: watch::Sender::new(false),
        }
    }

    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }
}

impl<W: AuditWriter> AuditWriter for Stallable<W> {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        let mut paused = self.paused.subscribe();
        let _ = paused.wait_for(|p| !*p).await;
        self.inner.lock().await.write(batch).await
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        self.inner.lock().await.flush().await
    }
}
