use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::UnitWeighter;

use super::TokenFingerprint;

/// How many revoked tokens a [`RevokedTokens`] set remembers unless told otherwise.
const DEFAULT_CAPACITY: usize = 100_000;

/// Tokens this audit trail itself saw revoked (a successful RFC 7009 revocation) or
/// introspected as inactive, by fingerprint.
///
/// The [`AuditLayer`](crate::AuditLayer) adds to it when it records `TokenRevoked` or an
/// inactive `TokenIntrospected`, and consults it for every bearer token on protected routes,
/// before any cached verification or introspection answer: a token the trail recorded as
/// revoked is never recorded as `valid` afterwards (verdict `revoked`). The set is bounded
/// (least recently used fingerprints go first) and lives in memory only; share one set
/// between layers of the same process with
/// [`AuditLayerBuilder::revoked_tokens`](crate::AuditLayerBuilder::revoked_tokens).
///
/// It has two parts of the same capacity. RFC 7009 has an authorization server answer
/// `200` to the revocation of any string, so any client may have the trail record as many
/// revocations as it sends: those of strings the layer's inspector could not verify
/// (opaque tokens, junk) go to one part, and tokens that are or may become valid there
/// (verdict `valid` or `not_yet_valid`), which junk cannot imitate, to the other. Not those
/// that had already expired (a client could keep every token it was ever given to revoke
/// them all at once), nor genuine ones for another issuer or audience (identity providers
/// that sign every tenant's tokens with one key set let anyone mint those). A flood of such
/// revocations then pushes out only its own kind and opaque tokens (whose resolver answers
/// are forgotten at revocation, so their next use is asked about again), never a revoked
/// JWT that would verify again.
///
/// ```
/// use oauth_audit::token::{RevokedTokens, TokenFingerprint};
///
/// let revoked = RevokedTokens::new();
/// let fingerprint = TokenFingerprint::of("2YotnFZFEjr1zCsicMWpAA");
/// assert!(!revoked.contains(&fingerprint));
/// revoked.insert(fingerprint);
/// assert!(revoked.clone().contains(&fingerprint), "clones share the set");
/// ```
#[derive(Clone)]
pub struct RevokedTokens {
    set: Arc<Set>,
}

/// The fingerprints, hashed with `foldhash`: they are SHA-256 digests of the tokens, which
/// no client can steer into one bucket, so the hash need not resist that (`quick_cache`'s
/// default, SipHash, cost about 230 instructions on every protected request).
type Fingerprints = Cache<
    TokenFingerprint,
    (),
    UnitWeighter,
    foldhash::fast::RandomState,
    DefaultLifecycle<TokenFingerprint, ()>,
>;

struct Set {
    /// Tokens valid or not yet valid when revoked (signature, issuer and audience checked),
    /// and those inserted by [`RevokedTokens::insert`].
    verified: Part,
    /// Every other revoked string.
    unverified: Part,
}

struct Part {
    fingerprints: Fingerprints,
    /// Whether any fingerprint was ever inserted: until then, which is most of the time
    /// for most services, a lookup is one load.
    any: AtomicBool,
}

impl Part {
    fn new(capacity: usize) -> Part {
        Part {
            fingerprints: Cache::with(
                capacity,
                capacity as u64,
                UnitWeighter,
                foldhash::fast::RandomState::default(),
                DefaultLifecycle::default(),
            ),
            any: AtomicBool::new(false),
        }
    }

    fn insert(&self, fingerprint: TokenFingerprint) {
        self.fingerprints.insert(fingerprint, ());
        self.any.store(true, Ordering::Release);
    }

    fn contains(&self, fingerprint: &TokenFingerprint) -> bool {
        self.any.load(Ordering::Acquire) && self.fingerprints.get(fingerprint).is_some()
    }
}

impl std::fmt::Debug for RevokedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokedTokens")
            .field("verified", &self.set.verified.fingerprints.len())
            .field("unverified", &self.set.unverified.fingerprints.len())
            .field("capacity", &self.set.verified.fingerprints.capacity())
            .finish()
    }
}

impl Default for RevokedTokens {
    fn default() -> Self {
        RevokedTokens::new()
    }
}

impl RevokedTokens {
    /// A set remembering up to 100 000 verified tokens and as many other strings.
    pub fn new() -> Self {
        RevokedTokens::with_capacity(DEFAULT_CAPACITY)
    }

    /// A set remembering up to `capacity` (at least 1) tokens whose signature was verified,
    /// and as many other revoked strings.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RevokedTokens {
            set: Arc::new(Set {
                verified: Part::new(capacity),
                unverified: Part::new(capacity),
            }),
        }
    }

    /// Records that the token with this fingerprint is revoked, among the tokens no flood
    /// of junk revocations can push out.
    pub fn insert(&self, fingerprint: TokenFingerprint) {
        self.set.verified.insert(fingerprint);
    }

    /// Records the revocation of a string whose signature nothing verified, or of a token
    /// that had already expired.
    pub(crate) fn insert_unverified(&self, fingerprint: TokenFingerprint) {
        self.set.unverified.insert(fingerprint);
    }

    /// True when the token with this fingerprint was recorded as revoked.
    pub fn contains(&self, fingerprint: &TokenFingerprint) -> bool {
        self.set.verified.contains(fingerprint) || self.set.unverified.contains(fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(text: &str) -> TokenFingerprint {
        TokenFingerprint::of(text)
    }

    #[test]
    fn unverified_revocations_push_out_only_each_other() {
        let revoked = RevokedTokens::with_capacity(4);
        // A full set: a new entry then starts on probation, where a flood would evict it.
        for i in 0..20 {
            revoked.insert(fingerprint(&format!("early-{i}")));
            revoked.insert_unverified(fingerprint(&format!("early-junk-{i}")));
        }
        revoked.insert(fingerprint("genuine"));
        revoked.insert_unverified(fingerprint("opaque"));
        assert!(revoked.contains(&fingerprint("opaque")));
        for i in 0..10_000 {
            revoked.insert_unverified(fingerprint(&format!("junk-{i}")));
        }
        assert!(revoked.contains(&fingerprint("genuine")));
        assert!(revoked.contains(&fingerprint("junk-9999")));
        assert!(revoked.set.unverified.fingerprints.len() <= 4, "bounded");
        assert!(!revoked.contains(&fingerprint("never revoked")));
    }
}
