//! The pipeline's Prometheus-style metrics, through the [`metrics`] facade.
//!
//! Handles are resolved once, when an [`Auditor`](crate::writer::Auditor) (or a
//! [`Delivery`](crate::delivery::Delivery)) is built, against the
//! recorder installed at that moment; recording an event is then an atomic add on a
//! handle picked by index, with no label lookup and no allocation.

use metrics::{Counter, Gauge, Histogram};

use crate::event::{DropReason, EventKind, Outcome};

use crate::metric;

pub(crate) const EVENTS_TOTAL: &str = metric::EVENTS_TOTAL.name;
pub(crate) const QUEUE_DEPTH: &str = metric::QUEUE_DEPTH.name;
pub(crate) const EVENTS_WRITTEN: &str = metric::EVENTS_WRITTEN.name;
pub(crate) const EVENTS_DROPPED: &str = metric::EVENTS_DROPPED.name;
pub(crate) const DELIVERY_SECONDS: &str = metric::DELIVERY_SECONDS.name;
pub(crate) const DELIVERY_RETRIES: &str = metric::DELIVERY_RETRIES.name;
pub(crate) const SPOOL_EVENTS: &str = metric::SPOOL_EVENTS.name;
pub(crate) const SPOOL_BYTES: &str = metric::SPOOL_BYTES.name;

/// Every reason an event can be lost, in the order drop reports are raised.
pub(crate) const DROP_REASONS: [DropReason; 7] = [
    DropReason::ProcessorPanicked,
    DropReason::QueueFull,
    DropReason::BlockTimeout,
    DropReason::SpoolFull,
    DropReason::Rejected,
    DropReason::WriteFailed,
    DropReason::ShutDown,
];

pub(crate) fn drop_slot(reason: DropReason) -> usize {
    match reason {
        DropReason::ProcessorPanicked => 0,
        DropReason::QueueFull => 1,
        DropReason::BlockTimeout => 2,
        DropReason::SpoolFull => 3,
        DropReason::Rejected => 4,
        DropReason::WriteFailed => 5,
        DropReason::ShutDown => 6,
    }
}

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Unknown];

/// Gives the current recorder the help text of every metric of the crate
/// ([`crate::metric::ALL`]).
pub(crate) fn describe() {
    for m in metric::ALL {
        metric::describe(&m);
    }
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

/// The metrics of one sink, labelled `writer` with its name.
pub(crate) struct SinkMetrics {
    pub(crate) queue_depth: Gauge,
    pub(crate) written: Counter,
    /// Indexed like [`DROP_REASONS`](DROP_REASONS).
    pub(crate) dropped: [Counter; DROP_REASONS.len()],
    pub(crate) delivery_seconds: Histogram,
    pub(crate) retries: Counter,
    pub(crate) spool_events: Gauge,
    pub(crate) spool_bytes: Gauge,
}

impl SinkMetrics {
    pub(crate) fn new(sink: &str) -> Self {
        let dropped = |reason: DropReason| metrics::counter!(EVENTS_DROPPED, "writer" => sink.to_owned(), "reason" => reason.as_str());
        SinkMetrics {
            queue_depth: metrics::gauge!(QUEUE_DEPTH, "writer" => sink.to_owned()),
            written: metrics::counter!(EVENTS_WRITTEN, "writer" => sink.to_owned()),
            dropped: DROP_REASONS.map(dropped),
            delivery_seconds: metrics::histogram!(DELIVERY_SECONDS, "writer" => sink.to_owned()),
            retries: metrics::counter!(DELIVERY_RETRIES, "writer" => sink.to_owned()),
            spool_events: metrics::gauge!(SPOOL_EVENTS, "writer" => sink.to_owned()),
            spool_bytes: metrics::gauge!(SPOOL_BYTES, "writer" => sink.to_owned()),
        }
    }
}

impl Default for SinkMetrics {
    /// Handles that record nothing, until a sink knows its name.
    fn default() -> Self {
        SinkMetrics {
            queue_depth: Gauge::noop(),
            written: Counter::noop(),
            dropped: std::array::from_fn(|_| Counter::noop()),
            delivery_seconds: Histogram::noop(),
            retries: Counter::noop(),
            spool_events: Gauge::noop(),
            spool_bytes: Gauge::noop(),
        }
    }
}

impl std::fmt::Debug for SinkMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkMetrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dropped_metric_names_every_reason() {
        for reason in DROP_REASONS {
            assert!(
                metric::EVENTS_DROPPED.help.contains(reason.as_str()),
                "{}",
                reason.as_str()
            );
            assert_eq!(DROP_REASONS[drop_slot(reason)], reason);
        }
    }

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
