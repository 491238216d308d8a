//! Device-code polling (RFC 8628 §3.4): one event per outcome change, not one per poll.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::token::TokenFingerprint;

/// How the token endpoint records device-code polls (`authorization_pending`,
/// `slow_down`, ...).
///
/// A device polls every few seconds until the user decides; one event per poll would
/// flood the log. With [`OncePerOutcome`](DevicePolling::OncePerOutcome) (the default),
/// the first poll with a given outcome is recorded and identical polls after it are
/// counted, not recorded; the next event for that device code (the outcome changed)
/// carries the count in `oauth.repeated`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevicePolling {
    /// Every poll is an event.
    EveryPoll,
    /// One event per device code per outcome change, tracking at most `capacity` device
    /// codes (least recently used ones are forgotten first).
    OncePerOutcome {
        /// How many device codes are tracked.
        capacity: usize,
    },
}

impl Default for DevicePolling {
    fn default() -> Self {
        DevicePolling::OncePerOutcome { capacity: 10_000 }
    }
}

/// The last outcome of each device code, keyed by its fingerprint.
#[derive(Clone)]
pub(crate) struct DeviceTracker {
    last: Arc<Cache<TokenFingerprint, (Arc<str>, u64)>>,
}

impl std::fmt::Debug for DeviceTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTracker")
            .field("tracked", &self.last.len())
            .finish()
    }
}

/// What to do with a poll's event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PollDecision {
    /// Record it; `repeated` identical polls before it were not recorded.
    Record { repeated: u64 },
    /// Same outcome as the last recorded poll: counted, not recorded.
    Suppress,
}

impl DeviceTracker {
    pub(crate) fn new(polling: DevicePolling) -> Option<Self> {
        match polling {
            DevicePolling::EveryPoll => None,
            DevicePolling::OncePerOutcome { capacity } => Some(DeviceTracker {
                last: Arc::new(Cache::new(capacity.max(1))),
            }),
        }
    }

    /// A poll of `device_code` had `outcome` (an error code, or `issued`).
    pub(crate) fn poll(&self, device_code: TokenFingerprint, outcome: &str) -> PollDecision {
        match self.last.get(&device_code) {
            Some((last, count)) if &*last == outcome => {
                self.last
                    .insert(device_code, (last, count.saturating_add(1)));
                PollDecision::Suppress
            }
            previous => {
                self.last.insert(device_code, (Arc::from(outcome), 0));
                PollDecision::Record {
                    repeated: previous.map_or(0, |(_, count)| count),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_outcome_changes_with_the_repeat_count() {
        let Some(tracker) = DeviceTracker::new(DevicePolling::default()) else {
            panic!("default tracks");
        };
        let code = TokenFingerprint::of("device-code");
        let other = TokenFingerprint::of("other-code");
        assert_eq!(
            tracker.poll(code, "authorization_pending"),
            PollDecision::Record { repeated: 0 }
        );
        assert_eq!(
            tracker.poll(code, "authorization_pending"),
            PollDecision::Suppress
        );
        assert_eq!(
            tracker.poll(other, "authorization_pending"),
            PollDecision::Record { repeated: 0 }
        );
        assert_eq!(
            tracker.poll(code, "authorization_pending"),
            PollDecision::Suppress
        );
        assert_eq!(
            tracker.poll(code, "slow_down"),
            PollDecision::Record { repeated: 2 }
        );
        assert_eq!(
            tracker.poll(code, "issued"),
            PollDecision::Record { repeated: 0 }
        );
        assert!(DeviceTracker::new(DevicePolling::EveryPoll).is_none());
    }
}
