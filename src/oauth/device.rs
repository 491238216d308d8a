//! Polling in decoupled flows, device-code (RFC 8628 §3.4) and OpenID Connect CIBA (poll
//! mode, CIBA Core §7.3): one event per outcome change, not one per poll.

use std::net::IpAddr;
use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::dpop::ProofOutcome;
use crate::token::TokenFingerprint;

/// How the token endpoint records device-code polls and CIBA polls
/// (`authorization_pending`, `slow_down`, `expired_token`, ...).
///
/// A device, or a CIBA client in poll mode, polls every few seconds until the user decides;
/// one event per poll would flood the log. With
/// [`OncePerOutcome`](DevicePolling::OncePerOutcome) (the default), the first poll with a
/// given outcome is recorded and identical polls after it (same device code or
/// `auth_req_id`, same client, same client address, same outcome) are counted, not
/// recorded; the next event for that device code or `auth_req_id`, client and address (the
/// outcome changed) carries the count in `oauth.repeated`. A device code and an `auth_req_id` are never condensed together, even
/// with the same value. An issuance (`AccessTokenIssued`), a failed client authentication
/// (`invalid_client`, `unauthorized_client` or any `401`: each guessed client secret) and a
/// poll whose DPoP proof was seen before (`replayed`: a copy of a request, which
/// `dpop_proof_replay` alerts on) are always recorded, however many came before, and so is
/// a poll that names two clients (`oauth.conflicting_client_id`) or that sent a parameter
/// more than once (`oauth.repeated_parameters`: a `client_secret` or `client_id` twice). A
/// poll by another client is never condensed with the first client's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DevicePolling {
    /// Every poll is an event.
    EveryPoll,
    /// One event per device code (or `auth_req_id`) per outcome change, tracking at most
    /// `capacity` of them (least recently used ones are forgotten first).
    OncePerOutcome {
        /// How many device codes and `auth_req_id`s are tracked, together.
        capacity: usize,
    },
}

impl Default for DevicePolling {
    fn default() -> Self {
        DevicePolling::OncePerOutcome { capacity: 10_000 }
    }
}

/// What a poll waits on: the user's decision on a device code, or on a CIBA
/// authentication request (its `auth_req_id`), each by its fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Waiting {
    DeviceCode(TokenFingerprint),
    AuthRequest(TokenFingerprint),
}

/// Whose polls are condensed together: one device code or `auth_req_id`, polled by one
/// client from one address (a stolen device code polled from elsewhere, even under the
/// device's own public client id, is not folded into the device's polls).
type PollKey = (Waiting, Option<Arc<str>>, Option<IpAddr>);

/// The last outcome of each device code or `auth_req_id`, and client.
#[derive(Clone)]
pub(crate) struct DeviceTracker {
    last: Arc<Cache<PollKey, (Arc<str>, u64)>>,
}

impl std::fmt::Debug for DeviceTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTracker")
            .field("tracked", &self.last.len())
            .finish()
    }
}

/// The outcome of a poll that issued a token.
pub(crate) const ISSUED: &str = "issued";

/// Whether a poll's outcome is a client that failed to authenticate: `invalid_client`,
/// `unauthorized_client` (Keycloak's answer to a wrong secret), or any `401` (a Basic filter
/// in front of the server). Never condensed, so that each guessed client secret is an event
/// of its own.
fn client_refused(outcome: &str, status: Option<http::StatusCode>) -> bool {
    matches!(outcome, "invalid_client" | "unauthorized_client")
        || status == Some(http::StatusCode::UNAUTHORIZED)
}

/// Whether a poll's DPoP proof is a copy of one seen before: never condensed, so that
/// `dpop_proof_replay` sees the replay whatever the server answered (a server that does not
/// track `jti` answers a copy of a waiting poll as it answered the poll).
fn proof_replayed(proof: Option<ProofOutcome>) -> bool {
    proof == Some(ProofOutcome::Replayed)
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

    /// A poll waiting on `waiting` by `client` from `from` had `outcome` (an error code, or
    /// [`ISSUED`]), answered with `status`; `proof` is the outcome of its DPoP proof, when it
    /// sent one.
    pub(crate) fn poll(
        &self,
        waiting: Waiting,
        client: Option<&str>,
        from: Option<IpAddr>,
        outcome: &str,
        status: Option<http::StatusCode>,
        proof: Option<ProofOutcome>,
    ) -> PollDecision {
        let key = (waiting, client.map(Arc::from), from);
        match self.last.get(&key) {
            // A token issued, or a client that failed to authenticate, is an event of its own.
            Some((last, count))
                if &*last == outcome
                    && outcome != ISSUED
                    && !client_refused(outcome, status)
                    && !proof_replayed(proof) =>
            {
                self.last.insert(key, (last, count.saturating_add(1)));
                PollDecision::Suppress
            }
            previous => {
                self.last.insert(key, (Arc::from(outcome), 0));
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
        let tv = Some("tv");
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                tv,
                None,
                "authorization_pending",
                None,
                None
            ),
            PollDecision::Record { repeated: 0 }
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                tv,
                None,
                "authorization_pending",
                None,
                None
            ),
            PollDecision::Suppress
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(other),
                tv,
                None,
                "authorization_pending",
                None,
                None
            ),
            PollDecision::Record { repeated: 0 }
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                tv,
                None,
                "authorization_pending",
                None,
                None
            ),
            PollDecision::Suppress
        );
        assert_eq!(
            tracker.poll(Waiting::DeviceCode(code), tv, None, "slow_down", None, None),
            PollDecision::Record { repeated: 2 }
        );
        assert_eq!(
            tracker.poll(Waiting::DeviceCode(code), tv, None, ISSUED, None, None),
            PollDecision::Record { repeated: 0 }
        );
        // Another issuance for the same code (a replay) and another client's polls are
        // their own events.
        assert_eq!(
            tracker.poll(Waiting::DeviceCode(code), tv, None, ISSUED, None, None),
            PollDecision::Record { repeated: 0 }
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                Some("attacker"),
                None,
                ISSUED,
                None,
                None
            ),
            PollDecision::Record { repeated: 0 }
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                Some("attacker"),
                None,
                "slow_down",
                None,
                None
            ),
            PollDecision::Record { repeated: 0 }
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                None,
                None,
                "slow_down",
                None,
                None
            ),
            PollDecision::Record { repeated: 0 }
        );
        assert!(DeviceTracker::new(DevicePolling::EveryPoll).is_none());
    }

    #[test]
    fn a_replayed_proof_is_never_condensed() {
        let Some(tracker) = DeviceTracker::new(DevicePolling::default()) else {
            panic!("default tracks");
        };
        let code = TokenFingerprint::of("device-code");
        let tv = Some("tv");
        let valid = Some(ProofOutcome::Valid);
        let replayed = Some(ProofOutcome::Replayed);
        tracker.poll(
            Waiting::DeviceCode(code),
            tv,
            None,
            "authorization_pending",
            None,
            valid,
        );
        for _ in 0..2 {
            assert_eq!(
                tracker.poll(
                    Waiting::DeviceCode(code),
                    tv,
                    None,
                    "authorization_pending",
                    None,
                    replayed
                ),
                PollDecision::Record { repeated: 0 }
            );
        }
        tracker.poll(
            Waiting::DeviceCode(code),
            tv,
            None,
            "authorization_pending",
            None,
            valid,
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                tv,
                None,
                "authorization_pending",
                None,
                valid
            ),
            PollDecision::Suppress
        );
    }

    #[test]
    fn failed_client_authentication_is_never_condensed() {
        let Some(tracker) = DeviceTracker::new(DevicePolling::default()) else {
            panic!("default tracks");
        };
        let code = TokenFingerprint::of("device-code");
        let tv = Some("tv");
        // Guessed client secrets: every failure is an event, whatever code says so.
        for outcome in ["invalid_client", "invalid_client", "unauthorized_client"] {
            assert_eq!(
                tracker.poll(Waiting::DeviceCode(code), tv, None, outcome, None, None),
                PollDecision::Record { repeated: 0 }
            );
        }
        let refused = Some(http::StatusCode::UNAUTHORIZED);
        for _ in 0..2 {
            assert_eq!(
                tracker.poll(
                    Waiting::DeviceCode(code),
                    tv,
                    None,
                    "http_401",
                    refused,
                    None
                ),
                PollDecision::Record { repeated: 0 }
            );
        }
        tracker.poll(
            Waiting::DeviceCode(code),
            tv,
            None,
            "authorization_pending",
            None,
            None,
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                tv,
                None,
                "authorization_pending",
                None,
                None
            ),
            PollDecision::Suppress
        );
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                tv,
                None,
                "expired_token",
                None,
                None
            ),
            PollDecision::Record { repeated: 1 }
        );
        // A device polling on after its code expired is condensed like waiting.
        assert_eq!(
            tracker.poll(
                Waiting::DeviceCode(code),
                tv,
                None,
                "expired_token",
                None,
                None
            ),
            PollDecision::Suppress
        );
    }
}
