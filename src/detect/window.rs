//! One group's recent events for one rule: a bounded sliding window by event time.

use std::collections::{HashMap, VecDeque};

use super::rule::Rule;

/// An event counted in a window.
struct Hit {
    micros: i64,
    /// A hash of the distinct field's value (0 without one).
    value: u64,
    id: Option<uuid::Uuid>,
}

/// A rule's state for one key.
pub(super) struct Window {
    hits: VecDeque<Hit>,
    /// Occurrences of each distinct value (a hash already) among `hits`.
    per_value: HashMap<u64, u64, foldhash::fast::RandomState>,
    last_alert: Option<i64>,
    /// Events counted since the last alert.
    since_alert: u64,
    /// The time of the oldest event let go to keep the group bounded while still within
    /// the timespan: the group's activity began then, for a spread in time (`min_span`),
    /// however fast events came since.
    dropped_since: Option<i64>,
}

/// What a window says after an event.
pub(super) struct Firing {
    pub(super) count: u64,
    pub(super) first_micros: i64,
    pub(super) last_micros: i64,
    /// Ids of the events in the window, oldest first, at most 20.
    pub(super) evidence: Vec<String>,
    /// Events counted between the previous alert for this key and this one.
    pub(super) suppressed: Option<u64>,
}

/// Events named as evidence in an alert, at most.
pub(super) const EVIDENCE: usize = 20;

impl Window {
    pub(super) fn new() -> Window {
        Window {
            hits: VecDeque::new(),
            per_value: HashMap::default(),
            last_alert: None,
            since_alert: 0,
            dropped_since: None,
        }
    }

    /// Adds an event at `micros`; returns the alert to raise, if the condition now holds
    /// and the key is not cooling down.
    pub(super) fn add(
        &mut self,
        rule: &Rule,
        micros: i64,
        value: u64,
        id: Option<uuid::Uuid>,
    ) -> Option<Firing> {
        let span = i64::try_from(rule.timespan.as_micros()).unwrap_or(i64::MAX);
        // Events may come out of time order (several services' events on one stream, a
        // spool replayed late): the window ends at the newest event seen, and its events
        // are kept in time order, so that late ones count as they did live.
        let newest = self.hits.back().map_or(micros, |h| h.micros.max(micros));
        let start = newest.saturating_sub(span);
        if micros < start {
            // Older than the window of events already seen: live, it had left the window
            // before they came.
            return None;
        }
        while self.hits.front().is_some_and(|h| h.micros < start) {
            self.pop();
        }
        if self.dropped_since.is_some_and(|t| t < start) {
            self.dropped_since = None;
        }
        if self.hits.len() >= rule.events_kept() {
            if let Some(hit) = self.hits.front() {
                self.dropped_since =
                    Some(self.dropped_since.map_or(hit.micros, |t| t.min(hit.micros)));
            }
            self.pop();
        }
        let hit = Hit { micros, value, id };
        if self.hits.back().is_none_or(|last| last.micros <= micros) {
            // In time order, as nearly every event comes.
            self.hits.push_back(hit);
        } else {
            let at = self.hits.partition_point(|h| h.micros <= micros);
            self.hits.insert(at, hit);
        }
        if rule.condition.distinct.is_some() {
            *self.per_value.entry(value).or_insert(0) += 1;
        }
        self.since_alert += 1;
        if !self.holds(rule) {
            return None;
        }
        let cooldown = i64::try_from(rule.cooldown.as_micros()).unwrap_or(i64::MAX);
        if self
            .last_alert
            .is_some_and(|last| micros.saturating_sub(last) < cooldown)
        {
            return None;
        }
        let suppressed = self.last_alert.map(|_| self.since_alert - 1);
        self.last_alert = Some(micros);
        self.since_alert = 0;
        let first_micros = self.hits.iter().map(|h| h.micros).min().unwrap_or(micros);
        let last_micros = self.hits.iter().map(|h| h.micros).max().unwrap_or(micros);
        Some(Firing {
            count: self.hits.len() as u64,
            first_micros,
            last_micros,
            evidence: self
                .hits
                .iter()
                .filter_map(|h| h.id)
                .take(EVIDENCE)
                .map(|id| id.to_string())
                .collect(),
            suppressed,
        })
    }

    fn pop(&mut self) {
        if let Some(hit) = self.hits.pop_front() {
            if let Some(n) = self.per_value.get_mut(&hit.value) {
                *n -= 1;
                if *n == 0 {
                    self.per_value.remove(&hit.value);
                }
            }
        }
    }

    fn holds(&self, rule: &Rule) -> bool {
        let condition = &rule.condition;
        if (self.hits.len() as u64) < condition.count {
            return false;
        }
        if let Some(distinct) = &condition.distinct {
            let values = self
                .per_value
                .values()
                .filter(|n| distinct.per_value.contains(n))
                .count() as u64;
            if values < distinct.at_least {
                return false;
            }
        }
        if !condition.min_span.is_zero() {
            // From the group's first event within the timespan, kept or not: an attacker
            // fast enough to fill the kept events within `min_span` is spread in time all
            // the same.
            let first = self.dropped_since.unwrap_or(i64::MAX);
            let (first, last) = self.hits.iter().fold((first, i64::MIN), |(lo, hi), h| {
                (lo.min(h.micros), hi.max(h.micros))
            });
            let span = u64::try_from(last.saturating_sub(first)).unwrap_or(0);
            if u128::from(span) < condition.min_span.as_micros() {
                return false;
            }
        }
        true
    }
}
