//! A delivery backend in memory that can be switched down, up or made to reject.

use std::sync::{Arc, Mutex};

use oauth_audit::delivery::{Backend, BackendError, EncodedEvent};
use oauth_audit::event::EventKind;
use serde_json::Value;
use uuid::Uuid;

/// What the backend does with the next batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Confirms every batch.
    Up,
    /// Fails every batch transiently.
    Down,
    /// Confirms this many more batches, then is down.
    UpFor(u32),
    /// Rejects (permanently) every batch holding an event of this kind; confirms others.
    RejectKind(EventKind),
    /// As `RejectKind`, but confirms only this many more batches, then is down.
    RejectKindUpFor(EventKind, u32),
}

#[derive(Debug)]
struct State {
    mode: Mode,
    received: Vec<EncodedEvent>,
    attempts: u64,
    delay: std::time::Duration,
}

/// Clones share one state: keep a clone to switch modes and read what arrived.
#[derive(Clone, Debug)]
pub struct FlakyBackend {
    state: Arc<Mutex<State>>,
}

impl FlakyBackend {
    pub fn new(mode: Mode) -> Self {
        FlakyBackend {
            state: Arc::new(Mutex::new(State {
                mode,
                received: Vec::new(),
                attempts: 0,
                delay: std::time::Duration::ZERO,
            })),
        }
    }

    pub fn set(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    /// Each send takes this long (a slow network).
    pub fn set_delay(&self, delay: std::time::Duration) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<EncodedEvent> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn ids(&self) -> Vec<Uuid> {
        self.received().iter().map(EncodedEvent::id).collect()
    }

    pub fn json(&self) -> Vec<Value> {
        self.received()
            .iter()
            .map(|e| serde_json::from_slice(e.json()).unwrap())
            .collect()
    }

    /// Sends attempted, confirmed or not.
    pub fn attempts(&self) -> u64 {
        self.state.lock().unwrap().attempts
    }
}

impl Backend for FlakyBackend {
    fn name(&self) -> &str {
        "flaky"
    }

    async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        let delay = self.state.lock().unwrap().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut state = self.state.lock().unwrap();
        state.attempts += 1;
        match state.mode {
            Mode::Down => {
                return Err(BackendError::unavailable(
                    "flaky",
                    "connection refused (switched down by the test)",
                ))
            }
            Mode::UpFor(0) => {
                state.mode = Mode::Down;
                return Err(BackendError::unavailable(
                    "flaky",
                    "connection refused (switched down by the test)",
                ));
            }
            Mode::UpFor(n) => state.mode = Mode::UpFor(n - 1),
            Mode::RejectKind(kind) | Mode::RejectKindUpFor(kind, _)
                if batch.iter().any(|e| e.kind() == kind) =>
            {
                return Err(BackendError::rejected(
                    "flaky",
                    format!("{} events are refused by the test", kind.as_str()),
                ))
            }
            Mode::RejectKindUpFor(_, 0) => {
                state.mode = Mode::Down;
                return Err(BackendError::unavailable(
                    "flaky",
                    "connection refused (switched down by the test)",
                ));
            }
            Mode::RejectKindUpFor(kind, n) => state.mode = Mode::RejectKindUpFor(kind, n - 1),
            Mode::RejectKind(_) | Mode::Up => {}
        }
        state.received.extend_from_slice(batch);
        Ok(())
    }
}
