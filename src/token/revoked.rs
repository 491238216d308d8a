use std::sync::Arc;

use quick_cache::sync::Cache;

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
    set: Arc<Cache<TokenFingerprint, ()>>,
}

impl std::fmt::Debug for RevokedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokedTokens")
            .field("len", &self.set.len())
            .field("capacity", &self.set.capacity())
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
        RevokedTokens {
            set: Arc::new(Cache::new(capacity.max(1))),
        }
    }

    /// Records that the token with this fingerprint is revoked.
    pub fn insert(&self, fingerprint: TokenFingerprint) {
        self.set.insert(fingerprint, ());
    }

    /// True when the token with this fingerprint was recorded as revoked.
    pub fn contains(&self, fingerprint: &TokenFingerprint) -> bool {
        self.set.get(fingerprint).is_some()
    }
}
