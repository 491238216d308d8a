//! The queue settings every sink takes: what happens when its queue is full, and how long
//! that queue is.

use serde::Deserialize;

use super::values::{AtLeastOne, HumanDuration};
use super::BuildError;
use crate::writer::{OverflowPolicy, WriterOptions};

/// `overflow` of a sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverflowSetting {
    /// Drop the newest event, count it, report it.
    DropNewest,
    /// Make the request wait for room, up to `block_timeout`.
    Block,
}

/// A sink's queue settings, as written in its table (`overflow`, `block_timeout`,
/// `queue_capacity`). Each sink type lists the three keys itself: serde's `flatten` does
/// not go together with `deny_unknown_fields`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueSettings {
    /// What happens when the queue is full (default: drop the newest event).
    pub overflow: Option<OverflowSetting>,
    /// With `overflow = "block"`: the longest a request waits for room.
    pub block_timeout: Option<HumanDuration>,
    /// Events this sink may have waiting (default: the auditor's queue capacity).
    pub queue_capacity: Option<AtLeastOne>,
}

impl QueueSettings {
    /// What is wrong with the combination, if anything; the offending key is in backticks.
    pub fn problem(&self) -> Option<&'static str> {
        match (self.overflow, self.block_timeout) {
            (Some(OverflowSetting::Block), None) => {
                Some("`overflow` = \"block\" needs a block_timeout (e.g. \"250ms\")")
            }
            (Some(OverflowSetting::Block), Some(HumanDuration(t))) if t.is_zero() => {
                Some("`block_timeout` must be at least 1ms")
            }
            (Some(OverflowSetting::DropNewest) | None, Some(_)) => {
                Some("`block_timeout` applies only with overflow = \"block\"")
            }
            _ => None,
        }
    }

    /// The writer options these settings stand for.
    pub fn writer_options(&self, context: &str) -> Result<WriterOptions, BuildError> {
        if let Some(problem) = self.problem() {
            return Err(BuildError::invalid(context, problem.replace('`', "")));
        }
        let mut options = WriterOptions::default();
        if let (Some(OverflowSetting::Block), Some(timeout)) = (self.overflow, self.block_timeout) {
            options = options.overflow(OverflowPolicy::Block { timeout: timeout.0 });
        }
        if let Some(capacity) = self.queue_capacity {
            options = options.queue_capacity(capacity.get());
        }
        Ok(options)
    }
}
