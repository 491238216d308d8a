//! One sink's counters: what it delivered, what waits, what it lost and has not reported yet.
//! Shared by the request path (a full queue) and the sink's task (everything else).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use metrics::{Counter, Gauge};

pub(crate) use super::metrics::DROP_REASONS;
use super::metrics::{drop_slot as slot, SinkMetrics};
use crate::event::{AuditEvent, DropReason, SeqRange};

/// Live counters of one sink (a writer or a [`Delivery`](crate::delivery::Delivery)), cheap
/// to clone and to read from any thread.
///
/// ```
/// use oauth_audit::delivery::{Backend, BackendError, Delivery, EncodedEvent};
///
/// struct Null;
/// impl Backend for Null {
///     fn name(&self) -> &str { "null" }
///     async fn send(&mut self, _: &[EncodedEvent]) -> Result<(), BackendError> { Ok(()) }
/// }
///
/// let delivery = Delivery::builder(Null).build()?;
/// let stats = delivery.stats();
/// assert_eq!(stats.delivered(), 0);
/// assert_eq!(stats.spooled_events(), 0);
/// # Ok::<(), oauth_audit::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct DeliveryStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    /// Delivered, not counting the sink's own drop reports.
    written: AtomicU64,
    batches: AtomicU64,
    spooled_events: AtomicU64,
    spooled_bytes: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    corrupt_lines: AtomicU64,
    corrupt_lines_not_kept: AtomicU64,
    dropped: [AtomicU64; DROP_REASONS.len()],
    /// Dropped and not yet told to the sink in an `AuditEventsDropped` event.
    unreported: [AtomicU64; DROP_REASONS.len()],
    /// The chained events among the unreported, as sequence ranges per reason.
    ranges: Mutex<[Vec<SeqRange>; DROP_REASONS.len()]>,
    metrics: SinkMetrics,
}

/// Ranges kept per reason until a report takes them; past this, a lost event that does not
/// continue the last range is counted (`dropped.count`) but not named. A range is never
/// widened over numbers that were not lost: `verify` excuses every number a signed report
/// names, so a widened range would excuse deleting events that were written.
const MAX_RANGES: usize = 1024;

fn add_seq(ranges: &mut Vec<SeqRange>, stream: &Arc<str>, seq: u64) {
    if let Some(last) = ranges.last_mut() {
        if last.stream == *stream && last.last.checked_add(1) == Some(seq) {
            last.last = seq;
            return;
        }
    }
    if ranges.len() >= MAX_RANGES {
        return;
    }
    ranges.push(SeqRange {
        stream: stream.clone(),
        first: seq,
        last: seq,
    });
}

impl DeliveryStats {
    /// Counters whose metrics carry `sink` as their `writer` label.
    pub(crate) fn new(sink: &str) -> Self {
        DeliveryStats {
            inner: Arc::new(Counters {
                metrics: SinkMetrics::new(sink),
                ..Counters::default()
            }),
        }
    }

    /// Events the sink confirmed (including `AuditEventsDropped` reports).
    pub fn delivered(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }

    /// Batches the sink confirmed.
    pub fn batches(&self) -> u64 {
        self.inner.batches.load(Ordering::Relaxed)
    }

    /// Events waiting in the spool (on disk, or in memory without a spool directory).
    pub fn spooled_events(&self) -> u64 {
        self.inner.spooled_events.load(Ordering::Relaxed)
    }

    /// Bytes waiting in the spool.
    pub fn spooled_bytes(&self) -> u64 {
        self.inner.spooled_bytes.load(Ordering::Relaxed)
    }

    /// Sends that repeated a failed one.
    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Sends that failed (transiently or not).
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Ordering::Relaxed)
    }

    /// Events dropped for `reason`, wherever the loss happened (the sink's queue, the spool,
    /// the sink itself).
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.inner.dropped[slot(reason)].load(Ordering::Relaxed)
    }

    /// Events dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        DROP_REASONS.into_iter().map(|r| self.dropped(r)).sum()
    }

    /// Spool lines that were not events (disk corruption) and were moved to the
    /// spool's `quarantine` file.
    pub fn corrupt_lines(&self) -> u64 {
        self.inner.corrupt_lines.load(Ordering::Relaxed)
    }

    /// Of the [`corrupt_lines`](Self::corrupt_lines), those left out of the `quarantine`
    /// file because it had reached its size bound (16 MiB, or the spool's `max_bytes` if
    /// smaller): counted and logged, not kept.
    pub fn corrupt_lines_not_kept(&self) -> u64 {
        self.inner.corrupt_lines_not_kept.load(Ordering::Relaxed)
    }

    /// Events written: delivered, not counting `AuditEventsDropped` reports (the
    /// `oauth_audit_events_written_total` metric).
    pub(crate) fn written(&self) -> u64 {
        self.inner.written.load(Ordering::Relaxed)
    }

    /// A confirmed batch of `events`, `reports` of them drop reports.
    pub(crate) fn add_delivered(&self, events: u64, reports: u64) {
        self.inner.delivered.fetch_add(events, Ordering::Relaxed);
        self.inner.batches.fetch_add(1, Ordering::Relaxed);
        let written = events.saturating_sub(reports);
        self.inner.written.fetch_add(written, Ordering::Relaxed);
        self.inner.metrics.written.increment(written);
    }

    /// Events counted as written that the writer did not get into its destination after
    /// all (lines its failed last flush held back): no longer counted as written, so that
    /// the statistics count each event once, written or dropped. The
    /// `oauth_audit_events_written_total` metric, a counter, keeps them.
    pub(crate) fn unwrite(&self, events: u64) {
        // Never below zero, should a drop report have been among them.
        let _ = self
            .inner
            .written
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |written| {
                Some(written.saturating_sub(events))
            });
    }

    pub(crate) fn set_spooled(&self, events: u64, bytes: u64) {
        self.inner.spooled_events.store(events, Ordering::Relaxed);
        self.inner.spooled_bytes.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn add_retry(&self) {
        self.inner.retries.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn add_failure(&self) {
        self.inner.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts events as lost, in the statistics, the metrics and the next drop report
    /// (except for events lost after shutdown, which no report could reach).
    pub(crate) fn add_dropped(&self, reason: DropReason, events: u64) {
        if events == 0 {
            return;
        }
        self.inner.dropped[slot(reason)].fetch_add(events, Ordering::Relaxed);
        self.inner.metrics.dropped[slot(reason)].increment(events);
        if reason != DropReason::ShutDown {
            self.inner.unreported[slot(reason)].fetch_add(events, Ordering::Relaxed);
        }
    }

    /// Counts `event` as lost, with its place in the chain if it has one.
    pub(crate) fn add_lost(&self, reason: DropReason, event: &AuditEvent) {
        match &event.chain {
            Some(link) => self.add_dropped_with_seqs(reason, 1, [(&link.stream, link.seq)]),
            None => self.add_dropped(reason, 1),
        }
    }

    /// [`add_dropped`](Self::add_dropped), `seqs` being the places in the chain of those of
    /// the `events` that had one (for the report's `dropped.ranges`), both under the lock
    /// [`take_report`](Self::take_report) takes them under. Counted apart, a report taken
    /// between the two would count an event without naming its place, and the place, named
    /// by no later report (whose count holds no event for it), would read as a deletion to
    /// `verify`.
    pub(crate) fn add_dropped_with_seqs<'a>(
        &self,
        reason: DropReason,
        events: u64,
        seqs: impl IntoIterator<Item = (&'a Arc<str>, u64)>,
    ) {
        let mut seqs = seqs.into_iter().peekable();
        if reason == DropReason::ShutDown || seqs.peek().is_none() {
            self.add_dropped(reason, events);
            return;
        }
        let mut ranges = self
            .inner
            .ranges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (stream, seq) in seqs {
            add_seq(&mut ranges[slot(reason)], stream, seq);
        }
        self.add_dropped(reason, events);
    }

    /// Takes what waits to be reported for `reason`: how many events were lost, and the
    /// places in the chain of those that had one, together (see
    /// [`add_dropped_with_seqs`](Self::add_dropped_with_seqs)). Give them back with
    /// [`restore_report`](Self::restore_report) if the report could not be delivered.
    pub(crate) fn take_report(&self, reason: DropReason) -> (u64, Vec<SeqRange>) {
        let mut ranges = self
            .inner
            .ranges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = self.inner.unreported[slot(reason)].swap(0, Ordering::Relaxed);
        (count, std::mem::take(&mut ranges[slot(reason)]))
    }

    /// Gives back a report's count and ranges when it could not be delivered, the ranges
    /// before those of later drops.
    pub(crate) fn restore_report(&self, reason: DropReason, count: u64, taken: Vec<SeqRange>) {
        let mut ranges = self
            .inner
            .ranges
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let list = &mut ranges[slot(reason)];
        let later = std::mem::replace(list, taken);
        for range in later {
            for seq in range.first..=range.last {
                add_seq(list, &range.stream, seq);
            }
        }
        self.inner.unreported[slot(reason)].fetch_add(count, Ordering::Relaxed);
    }

    /// Whether drops wait to be reported.
    pub(crate) fn any_unreported(&self) -> bool {
        self.inner
            .unreported
            .iter()
            .any(|count| count.load(Ordering::Relaxed) > 0)
    }

    pub(crate) fn add_corrupt(&self, lines: u64, not_kept: u64) {
        self.inner.corrupt_lines.fetch_add(lines, Ordering::Relaxed);
        self.inner
            .corrupt_lines_not_kept
            .fetch_add(not_kept, Ordering::Relaxed);
    }

    pub(crate) fn queue_depth(&self) -> &Gauge {
        &self.inner.metrics.queue_depth
    }

    pub(crate) fn delivery_seconds(&self) -> &metrics::Histogram {
        &self.inner.metrics.delivery_seconds
    }

    pub(crate) fn retries_metric(&self) -> &Counter {
        &self.inner.metrics.retries
    }

    pub(crate) fn spool_gauges(&self) -> (&Gauge, &Gauge) {
        (
            &self.inner.metrics.spool_events,
            &self.inner.metrics.spool_bytes,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_ranges_merge_and_stay_bounded() {
        let stats = DeliveryStats::new("test");
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        stats.add_dropped_with_seqs(
            DropReason::QueueFull,
            5,
            [(&a, 3), (&a, 4), (&a, 5), (&b, 1), (&a, 9)],
        );
        stats.add_dropped_with_seqs(DropReason::ShutDown, 1, [(&a, 10)]);
        let (count, ranges) = stats.take_report(DropReason::QueueFull);
        assert_eq!(count, 5);
        let flat: Vec<_> = ranges
            .iter()
            .map(|r| (&*r.stream, r.first, r.last))
            .collect();
        assert_eq!(flat, [("a", 3, 5), ("b", 1, 1), ("a", 9, 9)]);
        assert_eq!(stats.take_report(DropReason::QueueFull), (0, Vec::new()));
        assert_eq!(stats.take_report(DropReason::ShutDown), (0, Vec::new()));

        // Given back before newer ones, merged with them.
        stats.add_dropped_with_seqs(DropReason::QueueFull, 1, [(&a, 6)]);
        stats.restore_report(DropReason::QueueFull, count, ranges);
        let (count, ranges) = stats.take_report(DropReason::QueueFull);
        assert_eq!(count, 6);
        let flat: Vec<_> = ranges.iter().map(|r| (r.first, r.last)).collect();
        assert_eq!(flat, [(3, 5), (1, 1), (9, 9), (6, 6)]);

        // An attacker-driven flood of scattered drops keeps at most MAX_RANGES ranges: the
        // first lost seqs are named, the rest only counted.
        let seqs: Vec<u64> = (0..10_000).map(|i| i * 2).collect();
        stats.add_dropped_with_seqs(
            DropReason::QueueFull,
            seqs.len() as u64,
            seqs.iter().map(|s| (&a, *s)),
        );
        let (_, ranges) = stats.take_report(DropReason::QueueFull);
        assert!(ranges.len() <= MAX_RANGES);
        for seq in &seqs[..MAX_RANGES] {
            assert!(
                ranges.iter().any(|r| r.first <= *seq && *seq <= r.last),
                "{seq}"
            );
        }
    }

    /// Reports taken while events are lost count every lost event together with its place
    /// in the chain: none is counted in one report and named in none.
    #[test]
    fn a_report_taken_while_events_are_lost_names_every_one_it_counts() {
        let stats = DeliveryStats::new("test");
        const LOST: u64 = 200_000;
        let reports = std::thread::scope(|s| {
            let reporter = s.spawn(|| {
                let mut reports = Vec::new();
                loop {
                    let done = stats.dropped_total() == LOST;
                    let (count, ranges) = stats.take_report(DropReason::QueueFull);
                    if count > 0 || !ranges.is_empty() {
                        reports.push((count, ranges));
                    }
                    if done {
                        return reports;
                    }
                }
            });
            let mut event = AuditEvent::new(
                Arc::new(crate::event::ServiceInfo::new("test")),
                crate::event::Timestamp::from_unix(1_800_000_000).unwrap(),
                crate::event::EventKind::ResourceAccessed,
                crate::event::Outcome::Success,
            );
            for seq in 1..=LOST {
                event.chain = Some(Box::new(crate::event::ChainLink::new("a", seq, None)));
                stats.add_lost(DropReason::QueueFull, &event);
            }
            reporter.join().unwrap()
        });
        let mut counted = 0;
        for (count, ranges) in &reports {
            let named: u64 = ranges.iter().map(|r| r.last - r.first + 1).sum();
            assert_eq!(
                *count, named,
                "a report counted {count} events and named {named}"
            );
            counted += count;
        }
        assert_eq!(counted, LOST);
    }

    /// `verify` excuses every number a signed drop report names: a report that named an
    /// event that was written would excuse deleting it from the log.
    #[test]
    fn drop_ranges_never_name_an_event_that_was_not_lost() {
        let stats = DeliveryStats::new("test");
        let a: Arc<str> = "a".into();
        // Every other event lost (a flood keeps the queue full), well past MAX_RANGES.
        let lost: Vec<u64> = (1..=5_000).map(|i| i * 2).collect();
        stats.add_dropped_with_seqs(
            DropReason::QueueFull,
            lost.len() as u64,
            lost.iter().map(|s| (&a, *s)),
        );
        let (_, ranges) = stats.take_report(DropReason::QueueFull);
        assert!(ranges.len() <= MAX_RANGES);
        for range in &ranges {
            for seq in range.first..=range.last {
                assert!(
                    lost.binary_search(&seq).is_ok(),
                    "seq {seq} was written, but the range {}..={} names it as lost",
                    range.first,
                    range.last
                );
            }
        }
    }
}
