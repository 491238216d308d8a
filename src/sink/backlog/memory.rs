//! The in-memory backlog, for a sink without a spool directory: bounded in bytes, lost at a
//! restart.

use std::collections::VecDeque;

use super::spool::{Appended, Position, ReadBatch};
use crate::sink::EncodedEvent;

/// Events waiting in memory, oldest first.
#[derive(Debug)]
pub(crate) struct MemoryBacklog {
    events: VecDeque<EncodedEvent>,
    bytes: u64,
    max_bytes: u64,
    /// Handed out and not confirmed yet (at the front).
    inflight: usize,
}

impl MemoryBacklog {
    pub(crate) fn new(max_bytes: u64) -> Self {
        MemoryBacklog {
            events: VecDeque::new(),
            bytes: 0,
            max_bytes,
            inflight: 0,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.events.len() as u64, self.bytes)
    }

    pub(crate) fn append(&mut self, events: Vec<EncodedEvent>) -> Appended {
        let mut count = 0;
        for event in events {
            let size = event.json().len() as u64 + 1;
            if self.bytes + size > self.max_bytes {
                break;
            }
            self.bytes += size;
            self.events.push_back(event);
            count += 1;
        }
        Appended { count, error: None }
    }

    pub(crate) fn read_batch(&mut self, max_events: usize) -> ReadBatch {
        let events: Vec<_> = self
            .events
            .iter()
            .skip(self.inflight)
            .take(max_events)
            .cloned()
            .collect();
        self.inflight += events.len();
        ReadBatch {
            lines: events.len() as u64,
            bytes: events.iter().map(|e| e.json().len() as u64 + 1).sum(),
            corrupt: 0,
            corrupt_not_kept: 0,
            end: Position::default(),
            events,
        }
    }

    pub(crate) fn ack(&mut self, batch: &ReadBatch) {
        let count = (batch.lines as usize).min(self.events.len());
        self.events.drain(..count);
        self.inflight = self.inflight.saturating_sub(count);
        self.bytes = self.bytes.saturating_sub(batch.bytes);
    }
}
