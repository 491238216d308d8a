//! The pushed authorization requests (RFC 9126) a layer remembers, by the fingerprint of the
//! `request_uri` the server answered, so that the authorization request that presents it is
//! linked to what was pushed.

use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;

use crate::token::TokenFingerprint;

/// What one remembered pushed request weighs at least, in bytes: a usual one (a client id,
/// a redirect URI, a few scopes) weighs this, so `capacity` of them are remembered; a large
/// one (100 scopes of 256 bytes, about 29 KiB) weighs its size and counts for as many usual
/// ones.
const SLOT_BYTES: u64 = 1024;

/// What an event may carry of a pushed request: nothing secret (no `state`, `nonce`,
/// `code_challenge`, request object).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PushedParams {
    pub(crate) client_id: Option<String>,
    pub(crate) redirect_uri: Option<String>,
    pub(crate) response_type: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) pkce_method: Option<String>,
}

impl PushedParams {
    /// The bytes these parameters hold, with their strings' own.
    fn bytes(&self) -> u64 {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let scopes = self.scopes.as_ref().map_or(0, |scopes| {
            scopes
                .iter()
                .map(|scope| std::mem::size_of::<String>() + scope.len())
                .sum()
        });
        (std::mem::size_of::<Self>()
            + text(&self.client_id)
            + text(&self.redirect_uri)
            + text(&self.response_type)
            + text(&self.pkce_method)
            + scopes) as u64
    }
}

/// Weighs a remembered pushed request by its bytes, at least [`SLOT_BYTES`].
#[derive(Clone, Copy)]
struct BySize;

impl Weighter<TokenFingerprint, Arc<PushedParams>> for BySize {
    fn weight(&self, _: &TokenFingerprint, params: &Arc<PushedParams>) -> u64 {
        params.bytes().max(SLOT_BYTES)
    }
}

/// What was pushed, by `request_uri` fingerprint: client, scopes, redirect URI, response
/// type and PKCE method of each pushed request (nothing secret), least recently used
/// forgotten first. Bounded by size: `capacity` requests of up to [`SLOT_BYTES`] each, or
/// fewer larger ones, so requests pushed with the most scopes and the longest redirect URI
/// the events keep hold no more than usual ones.
#[derive(Clone)]
pub(crate) struct PushedRequests {
    by_request_uri: Arc<Cache<TokenFingerprint, Arc<PushedParams>, BySize>>,
}

impl std::fmt::Debug for PushedRequests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedRequests")
            .field("tracked", &self.by_request_uri.len())
            .finish()
    }
}

impl PushedRequests {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        PushedRequests {
            by_request_uri: Arc::new(Cache::with_weighter(
                capacity,
                // quick_cache admits no entry heavier than 97 % of a shard; a shard holds
                // at least 32 items' worth when there are several, and the heaviest entry
                // (100 scopes of 256 bytes, a 1 KiB URI) weighs under 30 KiB.
                (capacity as u64)
                    .saturating_mul(SLOT_BYTES)
                    .max(32 * SLOT_BYTES),
                BySize,
            )),
        }
    }

    /// The bytes the remembered requests weigh together.
    #[cfg(test)]
    fn weight(&self) -> u64 {
        self.by_request_uri.weight()
    }

    pub(crate) fn remember(&self, request_uri: TokenFingerprint, params: PushedParams) {
        self.by_request_uri.insert(request_uri, Arc::new(params));
    }

    pub(crate) fn get(&self, request_uri: &TokenFingerprint) -> Option<Arc<PushedParams>> {
        self.by_request_uri.get(request_uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pushed(scopes: usize, scope_bytes: usize) -> PushedParams {
        PushedParams {
            client_id: Some("app".to_owned()),
            redirect_uri: Some("https://app.example/cb".to_owned()),
            response_type: Some("code".to_owned()),
            scopes: Some((0..scopes).map(|i| format!("{i:0scope_bytes$}")).collect()),
            pkce_method: Some("S256".to_owned()),
        }
    }

    #[test]
    fn usual_requests_weigh_one_slot_and_large_ones_their_size() {
        let usual = pushed(3, 12);
        assert!(usual.bytes() <= SLOT_BYTES, "{} bytes", usual.bytes());
        let key = TokenFingerprint::of("urn:usual");
        assert_eq!(
            BySize.weight(&key, &Arc::new(usual)),
            SLOT_BYTES,
            "one slot"
        );

        // Large: 64 scopes of 256 bytes, about 18 KB each.
        let large = pushed(64, 256);
        assert!(large.bytes() > 16 * SLOT_BYTES);
        assert_eq!(BySize.weight(&key, &Arc::new(large.clone())), large.bytes());
        let requests = PushedRequests::new(100);
        for i in 0..1_000 {
            requests.remember(TokenFingerprint::of(&format!("urn:{i}")), large.clone());
        }
        assert!(
            requests.weight() >= large.bytes(),
            "large ones are remembered too"
        );
        assert!(
            requests.weight() <= 100 * SLOT_BYTES,
            "{} bytes held",
            requests.weight()
        );
    }
}
