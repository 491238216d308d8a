//! The proofs seen lately, to recognise a replayed one: bounded, whatever the traffic.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// A proof's identity: the first 16 bytes of SHA-256 over its key's thumbprint and its
/// `jti`, and its key's. Keyed by key as well, so that one client's `jti` never makes
/// another's proof look replayed; hashed, so that an attacker's `jti` of any length costs
/// 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
/// client's proof by sending many of its own (it would need more keys, each sending as many
/// proofs as the other client, than the cache holds).
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

/// One recording of a proof id: the time (Unix seconds) after which it is forgotten, and
/// a number of its own. The number tells a recording from an earlier one of the same id
/// with the same time (a proof forgotten early and sent again), so that the earlier's
/// places in the queues are never taken for the later's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    until: i64,
    seq: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Proof id to its recording.
    until: HashMap<ProofId, Seen>,
    /// Ids by the time they end (soonest first), for their times to end: `until` is not
    /// monotone (`iat` varies), so a queue in the order seen would let one long-lived id hold
    /// expired ones behind it, and eviction take live proofs while expired ones stay. An id
    /// forgotten early is passed over when met (and dropped when the heap is compacted).
    order: BinaryHeap<Reverse<(Seen, ProofId)>>,
    /// Each key's ids in the order they were seen, and how many of them are kept.
    keys: HashMap<KeyId, KeyIds>,
    /// Keys by how many ids they hold: the busiest is evicted from first.
    busiest: BTreeSet<(usize, KeyId)>,
    /// The number of the next recording.
    seq: u64,
    evicted: u64,
}

#[derive(Debug, Default)]
struct KeyIds {
    order: VecDeque<(ProofId, Seen)>,
    kept: usize,
}

impl State {
    /// Whether `(id, seen)` is still kept, as it was recorded.
    fn kept(&self, id: ProofId, seen: Seen) -> bool {
        self.until.get(&id) == Some(&seen)
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
            // Ids that end in the heap stay in their key's queue: compact it here too, or a
            // key keeping one id alive would hold every id it had (amortised: at least half
            // of what is dropped was forgotten since the last compaction).
            if key.order.len() > 2 * key.kept + 16 {
                let until_map = &self.until;
                key.order
                    .retain(|(id, seen)| until_map.get(id) == Some(seen));
            }
        }
    }

    /// Forgets the oldest id of the key that holds the most; false when none is kept.
    fn evict(&mut self) -> bool {
        let Some(&(_, key)) = self.busiest.last() else {
            return false;
        };
        while let Some((id, seen)) = self.keys.get_mut(&key).and_then(|k| k.order.pop_front()) {
            if self.kept(id, seen) {
                self.forget(id);
                self.evicted += 1;
                metrics::counter!(crate::metric::DPOP_REPLAY_EVICTED.name).increment(1);
                return true;
            }
        }
        false
    }

    fn record(&mut self, id: ProofId, until: i64, capacity: usize) {
        let seen = Seen {
            until,
            seq: self.seq,
        };
        self.seq += 1;
        self.until.insert(id, seen);
        self.order.push(Reverse((seen, id)));
        let key = self.keys.entry(id.key).or_default();
        self.busiest.remove(&(key.kept, id.key));
        key.kept += 1;
        self.busiest.insert((key.kept, id.key));
        key.order.push_back((id, seen));
        // Ids forgotten in the meantime stay in the queues until met: compact a queue that
        // holds twice what is kept, so that neither grows past the capacity's order. Every
        // recording is its own (`seq`), so a compacted queue holds at most what is kept.
        let until_map = &self.until;
        if key.order.len() > 2 * key.kept + 16 {
            key.order
                .retain(|(id, seen)| until_map.get(id) == Some(seen));
        }
        if self.order.len() > 2 * capacity + 16 {
            self.order
                .retain(|Reverse((seen, id))| until_map.get(id) == Some(seen));
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
        while let Some(&Reverse((seen, old))) = state.order.peek() {
            if seen.until > now {
                break;
            }
            state.order.pop();
            if state.kept(old, seen) {
                state.forget(old);
            }
        }
        if let Some(&seen) = state.until.get(&id) {
            if seen.until > now {
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

    /// Review, 5 December 2026: a proof forgotten early and sent again (same `iat`, so the
    /// same time) was a recording indistinguishable from the first, whose place in the
    /// queue then looked kept. Cycling capacity + 1 proofs of one's own key (free at the
    /// token endpoint; each evicted, so each a first use) left the queue at twice the
    /// capacity after compaction, so it was compacted (O(capacity)) every other request,
    /// under the lock: at the default 100,000, milliseconds a request. A compaction must
    /// leave only what is kept, so that compactions are at least the capacity apart.
    #[test]
    fn a_proof_sent_again_after_eviction_does_not_defeat_compaction() {
        let cache = ReplayCache::new(64);
        let mut least = usize::MAX;
        for i in 0..10_000u32 {
            assert!(cache.first_use(proof_id("k", &(i % 65).to_string()), 1_000, 0));
            if i >= 9_800 {
                least = least.min(cache.state.lock().unwrap().order.len());
            }
        }
        assert!(least <= 64, "the queue never fell below {least}");
    }

    /// Review, 5 December 2026: times are not monotone (`iat` varies). One long-lived id seen
    /// first held the expired ones behind it in the cache, and a new proof then evicted a
    /// live one (here the victim's, of the busiest key) while an expired one stayed.
    #[test]
    fn an_expired_id_leaves_before_a_live_one_is_evicted() {
        let cache = ReplayCache::new(4);
        assert!(cache.first_use(proof_id("attacker", "long"), 1_000, 0));
        let victim = proof_id("victim", "1");
        assert!(cache.first_use(victim, 1_000, 0));
        assert!(cache.first_use(proof_id("victim", "2"), 1_000, 0));
        assert!(cache.first_use(proof_id("attacker-2", "short"), 10, 0));
        assert!(cache.first_use(proof_id("attacker-3", "new"), 1_000, 20));
        assert_eq!(cache.evicted(), 0);
        assert!(
            !cache.first_use(victim, 1_000, 21),
            "the victim's proof was pushed out"
        );
    }

    /// Review, 5 December 2026: ids that ended in the global queue stayed in their key's queue
    /// while the key kept one id alive (compacted only when the key recorded again), so every
    /// key could hold about the capacity's worth: memory of the order of capacity squared.
    #[test]
    fn a_key_keeping_one_id_does_not_hold_all_it_had() {
        let cache = ReplayCache::new(200);
        for i in 0..100u32 {
            assert!(cache.first_use(proof_id("k", &i.to_string()), 10, 0));
        }
        assert!(cache.first_use(proof_id("k", "long"), 1_000, 0));
        assert!(cache.first_use(proof_id("other", "1"), 1_000, 20));
        let state = cache.state.lock().unwrap();
        assert_eq!(state.until.len(), 2);
        assert!(state
            .keys
            .values()
            .all(|k| k.order.len() <= 2 * k.kept + 16));
    }
}
