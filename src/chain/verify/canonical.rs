//! The hash of an event read back as a [`serde_json::Value`].
//!
//! The same RFC 8785 writer as the chain's (`event/canonical.rs`), with its buffers kept
//! from one event to the next: a trail is millions of events.

use serde_json::Value;

use crate::event::{Canonicalizer as Writer, EventHash};

/// Hashes values, reusing one writer.
#[derive(Default)]
pub(super) struct Canonicalizer {
    writer: Writer,
}

impl Canonicalizer {
    /// The value's [`EventHash`], the same as [`EventHash::of_json`] gives.
    pub(super) fn hash(&mut self, value: &Value) -> Result<EventHash, serde_json::Error> {
        Ok(EventHash::of_bytes(self.writer.write(value)?))
    }
}
