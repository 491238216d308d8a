//! The proofs seen lately, to recognise a replayed one: bounded, whatever the traffic.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
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
/// At most `capacity` are kept: when full, the soonest-ending proof of the key that holds the
/// most is forgotten before its time (counted in [`evicted`](ReplayCache::evicted)), and its
/// time becomes a floor: a proof ending no later than a forgotten one of its key (or, once
/// that key holds none, of any key) is not provably a first use and is refused
/// ([`Use::Unprovable`]). So a replay never passes because its proof was forgotten, whatever
/// floods the cache; a flood only narrows the window of `iat` accepted, first for the
/// flooding keys: a client with a token of its own flooding with fresh proofs pushes out and
/// narrows only its own, and many keys with a proof each must together hold the cache with
/// proofs ending later than a fresh one (`iat` in the future, within `max_future_skew`) to
/// narrow it for others.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    capacity: usize,
    state: Mutex<State>,
}

/// What [`ReplayCache::first_use`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    /// Not seen within its window: recorded.
    First,
    /// Seen within its window.
    Replayed,
    /// It ends no later than a proof forgotten to stay within the capacity, or its time had
    /// come when it was recorded, so it may be a replay of that one (or of its own first
    /// use, whose recording has ended): neither taken nor recorded.
    Unprovable,
}

/// One recording of a proof id: the time (Unix seconds) after which it is forgotten, and
/// a number of its own, so that an id recorded again is told from its earlier recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    until: i64,
    seq: u64,
}

#[derive(Debug)]
struct State {
    /// Proof id to its recording.
    until: HashMap<ProofId, Seen>,
    /// Ids by the time they end (soonest first), for their times to end: `until` is not
    /// monotone (`iat` varies). An id forgotten early is passed over when met (and dropped
    /// when the heap is compacted).
    order: BinaryHeap<Reverse<(Seen, ProofId)>>,
    /// Each key's ids, soonest-ending first, and its floor.
    keys: HashMap<KeyId, KeyIds>,
    /// Keys by how many ids they hold, then by their soonest-ending id (reversed): the last is
    /// evicted from, the busiest, and of equally busy ones the one whose id ends soonest.
    busiest: BTreeSet<(usize, Reverse<Seen>, KeyId)>,
    /// The latest end of an id forgotten early whose key then held no other.
    floor: i64,
    /// The number of the next recording.
    seq: u64,
    evicted: u64,
}

impl Default for State {
    fn default() -> Self {
        State {
            until: HashMap::new(),
            order: BinaryHeap::new(),
            keys: HashMap::new(),
            busiest: BTreeSet::new(),
            floor: i64::MIN,
            seq: 0,
            evicted: 0,
        }
    }
}

#[derive(Debug)]
struct KeyIds {
    /// A heap rather than a tree: most keys hold one id, and a heap of one is one small
    /// allocation. Ids leave soonest-ending first (by expiry or eviction), so only its top
    /// is ever taken out.
    ids: BinaryHeap<Reverse<(Seen, ProofId)>>,
    /// The latest end of this key's ids forgotten early. Every id kept ends no sooner (ids
    /// are evicted soonest-ending first, a new one among them, and none ending sooner is
    /// recorded after), so the floor has passed by the time the key's last id ends and the
    /// key is dropped, and when its last id is evicted the global floor takes its end.
    floor: i64,
}

impl KeyIds {
    fn rank(&self, key: KeyId) -> Option<(usize, Reverse<Seen>, KeyId)> {
        let &Reverse((soonest, _)) = self.ids.peek()?;
        Some((self.ids.len(), Reverse(soonest), key))
    }
}

impl State {
    /// Whether `(id, seen)` is still kept, as it was recorded.
    fn kept(&self, id: ProofId, seen: Seen) -> bool {
        self.until.get(&id) == Some(&seen)
    }

    /// Forgets `id`; returns whether its key still holds others.
    fn forget(&mut self, id: ProofId) -> bool {
        let Some(seen) = self.until.remove(&id) else {
            return true;
        };
        let Some(key) = self.keys.get_mut(&id.key) else {
            return false;
        };
        if let Some(rank) = key.rank(id.key) {
            self.busiest.remove(&rank);
        }
        if key.ids.peek() == Some(&Reverse((seen, id))) {
            key.ids.pop();
        } else {
            key.ids.retain(|&Reverse(kept)| kept != (seen, id));
        }
        match key.rank(id.key) {
            Some(rank) => {
                self.busiest.insert(rank);
                true
            }
            None => {
                self.keys.remove(&id.key);
                false
            }
        }
    }

    /// Forgets the soonest-ending id of the key that holds the most, and raises the floor
    /// to its end; false when none is kept.
    fn evict(&mut self) -> bool {
        let Some(&(_, Reverse(seen), key)) = self.busiest.last() else {
            return false;
        };
        let Some(&Reverse((_, id))) = self.keys.get(&key).and_then(|k| k.ids.peek()) else {
            return false;
        };
        if self.forget(id) {
            if let Some(key) = self.keys.get_mut(&key) {
                key.floor = key.floor.max(seen.until);
            }
        } else {
            self.floor = self.floor.max(seen.until);
        }
        self.evicted += 1;
        metrics::counter!(crate::metric::DPOP_REPLAY_EVICTED.name).increment(1);
        true
    }

    /// The end no later than which a proof of `key` is not provably a first use.
    fn floor(&self, key: KeyId) -> i64 {
        self.keys
            .get(&key)
            .map_or(self.floor, |k| k.floor.max(self.floor))
    }

    fn record(&mut self, id: ProofId, until: i64, capacity: usize) {
        let seen = Seen {
            until,
            seq: self.seq,
        };
        self.seq += 1;
        self.until.insert(id, seen);
        self.order.push(Reverse((seen, id)));
        let key = self.keys.entry(id.key).or_insert_with(|| KeyIds {
            ids: BinaryHeap::with_capacity(1),
            floor: i64::MIN,
        });
        if let Some(rank) = key.rank(id.key) {
            self.busiest.remove(&rank);
        }
        key.ids.push(Reverse((seen, id)));
        if let Some(rank) = key.rank(id.key) {
            self.busiest.insert(rank);
        }
        // Ids forgotten early stay in the heap until met: compact it when it holds twice
        // the capacity. Every recording is its own (`seq`), so a compacted heap holds only
        // what is kept, and compactions are at least the capacity apart.
        if self.order.len() > 2 * capacity + 16 {
            let until_map = &self.until;
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

    /// Records `id` as seen until `until`, unless it was seen already (a replay), it ends no
    /// later than a proof forgotten early (it may be a replay of that one), or its time has
    /// come (`until <= now`).
    #[cfg(test)]
    pub(crate) fn first_use(&self, id: ProofId, until: i64, now: i64) -> Use {
        self.first_use_at(id, until, || now)
    }

    /// [`first_use`](Self::first_use) at the time `now()` (Unix seconds), read under the
    /// lock: a time read before waiting for it may be earlier than one another request
    /// dropped recordings with meanwhile (in the next second), and a replay of a proof
    /// ending in between would find its first use's recording gone and pass as a first use.
    pub(crate) fn first_use_at(&self, id: ProofId, until: i64, now: impl FnOnce() -> i64) -> Use {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = now();
        // A proof is checked against the window on arrival but recorded later (an opaque
        // token is resolved first): its time may have come since, and then its first use's
        // recording may be gone (dropped below, or by any request since), so that it cannot
        // be told from a replay.
        if until <= now {
            return Use::Unprovable;
        }
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
                return Use::Replayed;
            }
            state.forget(id);
        }
        if until <= state.floor(id.key) {
            return Use::Unprovable;
        }
        // Recorded first, so that it competes for eviction too: an id forgotten ends no later
        // than every other of its key (the key's floor stays below what it keeps).
        state.record(id, until, self.capacity);
        while state.until.len() > self.capacity && state.evict() {}
        Use::First
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

    fn first(cache: &ReplayCache, id: ProofId, until: i64, now: i64) -> bool {
        cache.first_use(id, until, now) == Use::First
    }

    /// The invariants of the structures: every id kept is in its key, every key ranked.
    fn check_invariants(cache: &ReplayCache) {
        let state = cache.state.lock().unwrap();
        assert!(state.until.len() <= cache.capacity);
        assert!(
            state.order.len() <= 2 * cache.capacity + 16,
            "{}",
            state.order.len()
        );
        assert_eq!(
            state.keys.values().map(|k| k.ids.len()).sum::<usize>(),
            state.until.len()
        );
        assert_eq!(state.busiest.len(), state.keys.len());
        for (&key, ids) in &state.keys {
            assert!(state.busiest.contains(&ids.rank(key).unwrap()));
            for Reverse((seen, id)) in ids.ids.iter() {
                assert_eq!(state.until.get(id), Some(seen));
                assert!(seen.until >= ids.floor);
            }
        }
    }

    #[test]
    fn a_second_use_within_the_window_is_a_replay() {
        let cache = ReplayCache::new(10);
        let id = proof_id("key", "jti-1");
        assert_eq!(cache.first_use(id, 100, 0), Use::First);
        assert_eq!(cache.first_use(id, 100, 50), Use::Replayed);
        // Another key's proof with the same jti is its own.
        assert!(first(&cache, proof_id("other", "jti-1"), 100, 50));
        // Past its time the id is forgotten (and the proof would be stale anyway).
        assert!(first(&cache, id, 300, 100));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood() {
        let cache = ReplayCache::new(64);
        for i in 0..10_000i64 {
            assert!(first(&cache, proof_id("k", &i.to_string()), 1_000 + i, 0));
            assert!(cache.len() <= 64);
        }
        check_invariants(&cache);
        assert_eq!(cache.evicted(), 10_000 - 64);
        // The newest are still known, the forgotten refused.
        assert_eq!(
            cache.first_use(proof_id("k", "9999"), 10_999, 0),
            Use::Replayed
        );
        assert_eq!(
            cache.first_use(proof_id("k", "0"), 1_000, 0),
            Use::Unprovable
        );
        // Proofs all ending at once: once one was forgotten, the rest are refused, not kept.
        let cache = ReplayCache::new(64);
        for i in 0..1_000u32 {
            cache.first_use(proof_id("k", &i.to_string()), 1_000, 0);
            assert!(cache.len() <= 64);
        }
        assert_eq!(cache.evicted(), 1);
        check_invariants(&cache);
    }

    /// A client with a token of its own floods the cache with fresh proofs of its key: the
    /// victim's proof, older than all of them, is still recognised when replayed.
    #[test]
    fn a_flood_from_one_key_evicts_its_own_proofs_first() {
        let cache = ReplayCache::new(64);
        let victim = proof_id("victim", "jti-1");
        assert!(first(&cache, victim, 1_000, 0));
        for i in 0..10_000i64 {
            assert!(first(
                &cache,
                proof_id("flooder", &i.to_string()),
                1_000 + i,
                0
            ));
            assert!(cache.len() <= 64);
        }
        assert_eq!(
            cache.first_use(victim, 1_000, 1),
            Use::Replayed,
            "the victim's proof was pushed out"
        );
        // Many keys at once: the busiest goes first, one with a single proof last.
        for k in 0..32u32 {
            for i in 0..8i64 {
                cache.first_use(proof_id(&format!("k{k}"), &i.to_string()), 20_000 + i, 2);
            }
        }
        assert_eq!(cache.first_use(victim, 1_000, 3), Use::Replayed);
        // The victim's fresh proofs are not narrowed by the others' floors.
        assert!(first(&cache, proof_id("victim", "jti-2"), 1_001, 3));
        check_invariants(&cache);
    }

    /// Review, 6 December 2026: with many keys of one proof each (free at the token
    /// endpoint), the cache forgot a victim's proof (ties among equally busy keys went by a
    /// hash of the key, which an attacker can pick keys for), and its replay passed as a
    /// first use. A forgotten proof's replay must never pass; the flood may only narrow the
    /// window, and only for proofs ending no later than the flood's.
    #[test]
    fn many_keys_cannot_make_a_forgotten_proof_pass() {
        let cache = ReplayCache::new(64);
        let victim = proof_id("victim", "jti-1");
        assert!(first(&cache, victim, 1_000, 0));
        // The attacker's proofs claim the latest `iat` allowed, so they end last.
        for k in 0..10_000u32 {
            cache.first_use(proof_id(&format!("attacker-{k}"), "1"), 1_060, 0);
        }
        check_invariants(&cache);
        assert!(cache.evicted() > 0);
        assert_ne!(
            cache.first_use(victim, 1_000, 1),
            Use::First,
            "the victim's forgotten proof was taken as a first use"
        );
        // What the flood costs others: a proof ending no later than the flood's is refused,
        // one ending later passes.
        assert_eq!(
            cache.first_use(proof_id("victim", "jti-2"), 1_060, 1),
            Use::Unprovable
        );
        assert!(first(&cache, proof_id("victim", "jti-3"), 1_061, 1));
    }

    /// Review, 6 December 2026: a busy client's proofs are forgotten first when many keys
    /// flood the cache; their replays must be refused, its fresh proofs still taken.
    #[test]
    fn a_busy_clients_forgotten_proofs_are_refused_and_its_fresh_ones_taken() {
        let cache = ReplayCache::new(64);
        for i in 0..10i64 {
            assert!(first(&cache, proof_id("busy", &i.to_string()), 100 + i, 0));
        }
        for k in 0..60u32 {
            assert!(first(
                &cache,
                proof_id(&format!("attacker-{k}"), "1"),
                1_000,
                0
            ));
        }
        assert!(cache.evicted() > 0);
        assert_eq!(
            cache.first_use(proof_id("busy", "0"), 100, 1),
            Use::Unprovable
        );
        assert!(first(&cache, proof_id("busy", "fresh"), 200, 1));
        check_invariants(&cache);
    }

    /// Review, 6 December 2026 (second pass): a proof is checked against the window on
    /// arrival and recorded later (after an opaque token's introspection, or merely in the
    /// next second). A replay checked in its last second and recorded once its time had come
    /// found its first use's recording expired, dropped by the same call, and was taken as a
    /// first use: recorded `valid`. A proof whose time has come when recorded can no longer
    /// be told from its replay and is refused.
    #[test]
    fn a_replay_recorded_once_its_time_has_come_is_not_a_first_use() {
        let cache = ReplayCache::new(64);
        let id = proof_id("key", "jti-1");
        assert!(first(&cache, id, 100, 0));
        // Checked at 99 (within the window), recorded at 100 or later.
        assert_ne!(
            cache.first_use(id, 100, 100),
            Use::First,
            "the replay was taken as a first use once its recording expired"
        );
        assert_ne!(cache.first_use(id, 100, 150), Use::First);
        // Its key's other proofs and every later one are unaffected.
        assert!(first(&cache, proof_id("key", "jti-2"), 101, 100));
        assert_eq!(cache.evicted(), 0);
        check_invariants(&cache);
    }

    /// Review, 6 December 2026 (second pass): the time was read before waiting for the lock.
    /// A request that read second 14 and then waited while another, in second 15, dropped a
    /// recording ending at 15 took that proof's replay as a first use (15 > 14). The time is
    /// read under the lock, so it is never earlier than one recordings were dropped with.
    #[test]
    fn the_time_is_read_under_the_lock() {
        let cache = ReplayCache::new(64);
        let id = proof_id("key", "jti-1");
        let use_ = cache.first_use_at(id, 15, || {
            assert!(
                cache.state.try_lock().is_err(),
                "the time was read before the lock was taken"
            );
            10
        });
        assert_eq!(use_, Use::First);
    }

    #[test]
    fn expired_ids_leave_first() {
        let cache = ReplayCache::new(4);
        for i in 0..4u32 {
            assert!(first(&cache, proof_id("k", &i.to_string()), 10, 0));
        }
        // At time 10 all four have expired: room without evicting anything live.
        assert!(first(&cache, proof_id("k", "new"), 20, 10));
        assert_eq!(cache.evicted(), 0);
        assert_eq!(cache.len(), 1);
    }

    /// Review, 5 December 2026: a proof forgotten early and sent again (same `iat`, so the
    /// same time) was a recording indistinguishable from the first, so the queue was
    /// compacted every other request under the lock. Now such a proof is refused (it ends
    /// no later than a forgotten one), and the queue stays within twice the capacity.
    #[test]
    fn a_proof_sent_again_after_eviction_does_not_defeat_compaction() {
        let cache = ReplayCache::new(64);
        for i in 0..10_000u32 {
            let use_ = cache.first_use(proof_id("k", &(i % 65).to_string()), 1_000, 0);
            assert_eq!(use_ == Use::First, i < 65, "{i}: {use_:?}");
            assert!(cache.state.lock().unwrap().order.len() <= 2 * 64 + 16);
        }
        check_invariants(&cache);
    }

    /// Review, 5 December 2026: times are not monotone (`iat` varies). One long-lived id seen
    /// first held the expired ones behind it in the cache, and a new proof then evicted a
    /// live one (here the victim's, of the busiest key) while an expired one stayed.
    #[test]
    fn an_expired_id_leaves_before_a_live_one_is_evicted() {
        let cache = ReplayCache::new(4);
        assert!(first(&cache, proof_id("attacker", "long"), 1_000, 0));
        let victim = proof_id("victim", "1");
        assert!(first(&cache, victim, 1_000, 0));
        assert!(first(&cache, proof_id("victim", "2"), 1_000, 0));
        assert!(first(&cache, proof_id("attacker-2", "short"), 10, 0));
        assert!(first(&cache, proof_id("attacker-3", "new"), 1_000, 20));
        assert_eq!(cache.evicted(), 0);
        assert_eq!(
            cache.first_use(victim, 1_000, 21),
            Use::Replayed,
            "the victim's proof was pushed out"
        );
    }

    /// Review, 5 December 2026: ids that ended stayed in their key's queue while the key kept
    /// one id alive, so every key could hold about the capacity's worth.
    #[test]
    fn a_key_keeping_one_id_does_not_hold_all_it_had() {
        let cache = ReplayCache::new(200);
        for i in 0..100u32 {
            assert!(first(&cache, proof_id("k", &i.to_string()), 10, 0));
        }
        assert!(first(&cache, proof_id("k", "long"), 1_000, 0));
        assert!(first(&cache, proof_id("other", "1"), 1_000, 20));
        assert_eq!(cache.len(), 2);
        check_invariants(&cache);
    }
}
