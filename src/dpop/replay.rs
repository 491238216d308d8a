//! The proofs seen lately, to recognise a replayed one: bounded, whatever the traffic.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// A proof's identity: the first 16 bytes of SHA-256 over its key's thumbprint and its
/// `jti`. Keyed by key as well, so that one client's `jti` never makes another's proof look
/// replayed; hashed, so that an attacker's `jti` of any length costs 16 bytes.
pub(crate) type ProofId = u128;

/// The identity of a proof made with the key `jkt` under the id `jti`.
pub(crate) fn proof_id(jkt: &str, jti: &str) -> ProofId {
    let mut hash = Sha256::new();
    hash.update(jkt.as_bytes());
    hash.update([0]);
    hash.update(jti.as_bytes());
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    u128::from_be_bytes(id)
}

/// Proof ids seen lately, each kept until the proof could no longer pass the `iat` check.
///
/// At most `capacity` are kept: when full, the oldest is forgotten before its time (counted
/// in [`evicted`](ReplayCache::evicted)), so a flood of fresh proofs costs a bounded amount
/// of memory at the price of missing a replay of a proof that old.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Proof id to the time (Unix seconds) after which it is forgotten.
    until: HashMap<ProofId, i64>,
    /// Ids in the order they were seen.
    order: VecDeque<(ProofId, i64)>,
    evicted: u64,
}

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> Self {
        ReplayCache {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    /// Records `id` as seen until `until`; false when it had been seen already (a replay).
    pub(crate) fn first_use(&self, id: ProofId, until: i64, now: i64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State {
            until: seen,
            order,
            evicted,
        } = &mut *state;
        while let Some(&(old, expiry)) = order.front() {
            if expiry > now {
                break;
            }
            order.pop_front();
            if seen.get(&old) == Some(&expiry) {
                seen.remove(&old);
            }
        }
        if let Some(&expiry) = seen.get(&id) {
            if expiry > now {
                return false;
            }
        }
        while seen.len() >= self.capacity {
            let Some((old, expiry)) = order.pop_front() else {
                break;
            };
            if seen.get(&old) == Some(&expiry) {
                seen.remove(&old);
                *evicted += 1;
                metrics::counter!(crate::metric::DPOP_REPLAY_EVICTED.name).increment(1);
            }
        }
        seen.insert(id, until);
        order.push_back((id, until));
        true
    }

    /// How many ids were forgotten before their time to stay within the capacity.
    pub(crate) fn evicted(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).evicted
    }

    /// How many ids are kept now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .until
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_use_within_the_window_is_a_replay() {
        let cache = ReplayCache::new(10);
        let id = proof_id("key", "jti-1");
        assert!(cache.first_use(id, 100, 0));
        assert!(!cache.first_use(id, 100, 50));
        // Another key's proof with the same jti is its own.
        assert!(cache.first_use(proof_id("other", "jti-1"), 100, 50));
        // Past its time the id is forgotten (and the proof would be stale anyway).
        assert!(cache.first_use(id, 300, 100));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood() {
        let cache = ReplayCache::new(64);
        for i in 0..10_000u32 {
            assert!(cache.first_use(proof_id("k", &i.to_string()), 1_000, 0));
            assert!(cache.len() <= 64);
        }
        assert_eq!(cache.evicted(), 10_000 - 64);
        // The newest are still known.
        assert!(!cache.first_use(proof_id("k", "9999"), 1_000, 0));
    }

    #[test]
    fn expired_ids_leave_first() {
        let cache = ReplayCache::new(4);
        for i in 0..4u32 {
            assert!(cache.first_use(proof_id("k", &i.to_string()), 10, 0));
        }
        // At time 10 all four have expired: room without evicting anything live.
        assert!(cache.first_use(proof_id("k", "new"), 20, 10));
        assert_eq!(cache.evicted(), 0);
        assert_eq!(cache.len(), 1);
    }
}
