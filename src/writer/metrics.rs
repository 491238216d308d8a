//! The pipeline's Prometheus-style metrics, through the [`metrics`] facade.
//!
//! Handles are resolved once, when an [`Auditor`](super::Auditor) is built, against the
//! recorder installed at that moment; recording an event is then an atomic add on a
//! handle picked by index, with no label lookup and no allocation.

use metrics::{describe_counter, describe_gauge, Counter, Gauge, Unit};

use crate::event::{DropReason, EventKind, Outcome};

/// `oauth_audit_events_total{kind,outcome}`: events emitted by the request path.
pub(crate) const EVENTS_TOTAL: &str = "oauth_audit_events_total";
/// `oauth_audit_queue_depth{writer}`: events waiting in a writer's queue.
pub(crate) const QUEUE_DEPTH: &str = "oauth_audit_queue_depth";
/// `oauth_audit_events_written_total{writer}`: events a writer wrote successfully.
pub(crate) const EVENTS_WRITTEN: &str = "oauth_audit_events_written_total";
/// `oauth_audit_events_dropped_total{writer,reason}`: events a writer lost.
pub(crate) const EVENTS_DROPPED: &str = "oauth_audit_events_dropped_total";

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Unknown];

/// Gives the current recorder the help text of every metric of the pipeline.
pub(crate) fn describe() {
    describe_counter!(
        EVENTS_TOTAL,
        Unit::Count,
        "Audit events emitted by the request path, by kind and outcome."
    );
    describe_gauge!(
        QUEUE_DEPTH,
        Unit::Count,
        "Audit events waiting in a writer's queue, as last seen by the writer."
    );
    describe_counter!(
        EVENTS_WRITTEN,
        Unit::Count,
        "Audit events a writer wrote successfully."
    );
    describe_counter!(
        EVENTS_DROPPED,
        Unit::Count,
        "Audit events a writer lost, by reason (queue_full, write_failed, shut_down, block_timeout)."
    );
}

/// `oauth_audit_events_total` for every (kind, outcome) pair.
pub(crate) struct EventMetrics {
    by_kind_outcome: Box<[Counter]>,
}

impl EventMetrics {
    pub(crate) fn new() -> Self {
        let mut by_kind_outcome = Vec::new();
        by_kind_outcome.resize_with(EventKind::ALL.len() * OUTCOMES.len(), Counter::noop);
        for kind in EventKind::ALL {
            for outcome in OUTCOMES {
                by_kind_outcome[slot(kind, outcome)] = metrics::counter!(
                    EVENTS_TOTAL,
                    "kind" => kind.as_str(),
                    "outcome" => outcome.as_str(),
                );
            }
        }
        EventMetrics {
            by_kind_outcome: by_kind_outcome.into_boxed_slice(),
        }
    }

    pub(crate) fn record(&self, kind: EventKind, outcome: Outcome) {
        if let Some(counter) = self.by_kind_outcome.get(slot(kind, outcome)) {
            counter.increment(1);
        }
    }
}

impl std::fmt::Debug for EventMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventMetrics").finish_non_exhaustive()
    }
}

fn slot(kind: EventKind, outcome: Outcome) -> usize {
    kind as usize * OUTCOMES.len() + outcome as usize
}

/// The metrics of one writer.
pub(crate) struct LaneMetrics {
    pub(crate) queue_depth: Gauge,
    pub(crate) written: Counter,
    pub(crate) dropped_queue_full: Counter,
    pub(crate) dropped_write_failed: Counter,
    pub(crate) dropped_shut_down: Counter,
    pub(crate) dropped_block_timeout: Counter,
}

impl LaneMetrics {
    pub(crate) fn new(writer: &str) -> Self {
        let dropped = |reason: DropReason| metrics::counter!(EVENTS_DROPPED, "writer" => writer.to_owned(), "reason" => reason.as_str());
        LaneMetrics {
            queue_depth: metrics::gauge!(QUEUE_DEPTH, "writer" => writer.to_owned()),
            written: metrics::counter!(EVENTS_WRITTEN, "writer" => writer.to_owned()),
            dropped_queue_full: dropped(DropReason::QueueFull),
            dropped_write_failed: dropped(DropReason::WriteFailed),
            dropped_shut_down: dropped(DropReason::ShutDown),
            dropped_block_timeout: dropped(DropReason::BlockTimeout),
        }
    }
}

impl std::fmt::Debug for LaneMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaneMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_and_outcome_has_its_own_slot() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in EventKind::ALL {
            for outcome in OUTCOMES {
                assert!(seen.insert(slot(kind, outcome)));
            }
        }
        assert_eq!(seen.len(), EventKind::ALL.len() * OUTCOMES.len());
        assert_eq!(seen.last(), Some(&(seen.len() - 1)));
    }
}
