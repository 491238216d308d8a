//! The proofs seen lately, to recognise a replayed one: bounded, whatever the traffic.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// A proof's identity: the first 16 bytes of SHA-256 over its key's thumbprint and its
/// `jti`, and its key's. Keyed by key as well, so that one client's `jti` never makes
/// another's proof look replayed; hashed, so that an attacker's `jti` of any length costs
/// 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProofId {
    proof: u128,
    key: KeyId,
}

/// A key, by a hash of its thumbprint: which proofs one key made, for eviction.
type KeyId = u64;

/// The identity of a proof made with the key `jkt` under the id `jti`.
pub(crate) fn proof_id(jkt: &str, jti: &str) -> ProofId {
    let mut hash = Sha256::new();
    hash.update(jkt.as_bytes());
    hash.update([0]);
    hash.update(jti.as_bytes());
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    ProofId {
        proof: u128::from_be_bytes(id),
        key: foldhash::fast::FixedState::default().hash_one(jkt),
    }
}

/// Proof ids seen lately, each kept until the proof could no longer pass the `iat` check.
///
/// At most `capacity` are kept: when full, the oldest proof of the key that holds the most
/// is forgotten before its time (counted in [`evicted`](ReplayCache::evicted)). So a flood
/// of fresh proofs costs a bounded amount of memory, and it pushes out the flooding keys'
/// own proofs first: a client with a token of its own cannot make the cache forget another
/// client's proof by sending many of its own (it would need more keys, each sending more
/// proofs than the other client, than the cache holds).
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Proof id to the time (Unix seconds) after which it is forgotten.
    until: HashMap<ProofId, i64>,
    /// Ids in the order they were seen, for their times to end; an id forgotten early is
    /// passed over when met (and dropped when the queue is compacted).
    order: VecDeque<(ProofId, i64)>,
    /// Each key's ids in the order they were seen, and how many of them are kept.
    keys: HashMap<KeyId, KeyIds>,
    /// Keys by how many ids they hold: the busiest is evicted from first.
    busiest: BTreeSet<(usize, KeyId)>,
    evicted: u64,
}

#[derive(Debug, Default)]
struct KeyIds {
    order: VecDeque<(ProofId, i64)>,
    kept: usize,
}

impl State {
    /// Whether `(id, until)` is still kept, as it was recorded.
    fn kept(&self, (id, until): (ProofId, i64)) -> bool {
        self.until.get(&id) == Some(&until)
    }

    /// Forgets `id`.
    fn forget(&mut self, id: ProofId) {
        self.until.remove(&id);
        let Some(key) = self.keys.get_mut(&id.key) else {
            return;
        };
        self.busiest.remove(&(key.kept, id.key));
        key.kept -= 1;
        if key.kept == 0 {
            self.keys.remove(&id.key);
        } else {
            self.busiest.insert((key.kept, id.key));
        }
    }

    /// Forgets the oldest id of the key that holds the most; false when none is kept.
    fn evict(&mut self) -> bool {
        let Some(&(_, key)) = self.busiest.last() else {
            return false;
        };
        while let Some(entry) = self.keys.get_mut(&key).and_then(|k| k.order.pop_front()) {
            if self.kept(entry) {
                self.forget(entry.0);
                self.evicted += 1;
                metrics::counter!(crate::metric::DPOP_REPLAY_EVICTED.name).increment(1);
                return true;
            }
        }
        false
    }

    fn record(&mut self, id: ProofId, until: i64, capacity: usize) {
        self.until.insert(id, until);
        self.order.push_back((id, until));
        let key = self.keys.entry(id.key).or_default();
        self.busiest.remove(&(key.kept, id.key));
        key.kept += 1;
        self.busiest.insert((key.kept, id.key));
        key.order.push_back((id, until));
        // Ids forgotten in the meantime stay in the queues until met: compact a queue that
        // holds twice what is kept, so that neither grows past the capacity's order.
        let until_map = &self.until;
        let live = |entry: &(ProofId, i64)| until_map.get(&entry.0) == Some(&entry.1);
        if key.order.len() > 2 * key.kept + 16 {
            key.order.retain(live);
        }
        if self.order.len() > 2 * capacity + 16 {
            self.order.retain(live);
        }
    }
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
        while let Some(&(old, expiry)) = state.order.front() {
            if expiry > now {
                break;
            }
            state.order.pop_front();
            if state.kept((old, expiry)) {
                state.forget(old);
            }
        }
        if let Some(&expiry) = state.until.get(&id) {
            if expiry > now {
                return false;
            }
            state.forget(id);
        }
        while state.until.len() >= self.capacity && state.evict() {}
        state.record(id, until, self.capacity);
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

    /// A client with a token of its own floods the cache with fresh proofs of its key: the
    /// victim's proof, older than all of them, is still recognised when replayed.
    #[test]
    fn a_flood_from_one_key_evicts_its_own_proofs_first() {
        let cache = ReplayCache::new(64);
        let victim = proof_id("victim", "jti-1");
        assert!(cache.first_use(victim, 1_000, 0));
        for i in 0..10_000u32 {
            assert!(cache.first_use(proof_id("flooder", &i.to_string()), 1_000, 0));
            assert!(cache.len() <= 64);
        }
        assert!(
            !cache.first_use(victim, 1_000, 1),
            "the victim's proof was pushed out"
        );
        // Many keys at once: the busiest goes first, one with a single proof last.
        for k in 0..32u32 {
            for i in 0..8u32 {
                cache.first_use(proof_id(&format!("k{k}"), &i.to_string()), 1_000, 2);
            }
        }
        assert!(!cache.first_use(victim, 1_000, 3));
        // The queues stay bounded by the capacity, whatever was forgotten early.
        let state = cache.state.lock().unwrap();
        assert!(state.order.len() <= 2 * 64 + 16, "{}", state.order.len());
        assert!(state
            .keys
            .values()
            .all(|k| k.order.len() <= 2 * k.kept + 16));
        assert_eq!(
            state.keys.values().map(|k| k.kept).sum::<usize>(),
            state.until.len()
        );
        assert_eq!(state.busiest.len(), state.keys.len());
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
