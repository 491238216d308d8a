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

/// The hash of a line's canonical form, or `None` when the line is not a JSON value. For
/// the rare line whose bytes' hash was not the chained one: the buffers are not kept.
pub(super) fn hash_line(line: &[u8]) -> Option<EventHash> {
    let value: Value = serde_json::from_slice(line).ok()?;
    Canonicalizer::default().hash(&value).ok()
}
