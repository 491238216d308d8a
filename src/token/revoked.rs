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
struct Set {
    fingerprints: Cache<
        TokenFingerprint,
        (),
        UnitWeighter,
        foldhash::fast::RandomState,
        DefaultLifecycle<TokenFingerprint, ()>,
    >,
    /// Whether any fingerprint was ever inserted: until then, which is most of the time
    /// for most services, a lookup is one load.
    any: AtomicBool,
}

impl std::fmt::Debug for RevokedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokedTokens")
            .field("len", &self.set.fingerprints.len())
            .field("capacity", &self.set.fingerprints.capacity())
            .finish()
    }
}

impl Default for RevokedTokens {
    fn default() -> Self {
        RevokedTokens::new()
    }
}

impl RevokedTokens {
    /// A set remembering up to 100 000 tokens.
    pub fn new() -> Self {
        RevokedTokens::with_capacity(DEFAULT_CAPACITY)
    }

    /// A set remembering up to `capacity` tokens (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RevokedTokens {
            set: Arc::new(Set {
                fingerprints: Cache::with(
                    capacity,
                    capacity as u64,
                    UnitWeighter,
                    foldhash::fast::RandomState::default(),
                    DefaultLifecycle::default(),
                ),
                any: AtomicBool::new(false),
            }),
        }
    }

    /// Records that the token with this fingerprint is revoked.
    pub fn insert(&self, fingerprint: TokenFingerprint) {
        self.set.fingerprints.insert(fingerprint, ());
        self.set.any.store(true, Ordering::Release);
    }

    /// True when the token with this fingerprint was recorded as revoked.
    pub fn contains(&self, fingerprint: &TokenFingerprint) -> bool {
        self.set.any.load(Ordering::Acquire) && self.set.fingerprints.get(fingerprint).is_some()
    }
}
