//! The pushed authorization requests (RFC 9126) a layer remembers, by the fingerprint of the
//! `request_uri` the server answered, so that the authorization request that presents it is
//! linked to what was pushed.

use std::sync::Arc;

use quick_cache::sync::Cache;

use crate::token::TokenFingerprint;

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

/// What was pushed, by `request_uri` fingerprint: client, scopes, redirect URI, response
/// type and PKCE method of each pushed request (nothing secret), least recently used
/// forgotten first.
#[derive(Clone)]
pub(crate) struct PushedRequests {
    by_request_uri: Arc<Cache<TokenFingerprint, Arc<PushedParams>>>,
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
        PushedRequests {
            by_request_uri: Arc::new(Cache::new(capacity.max(1))),
        }
    }

    pub(crate) fn remember(&self, request_uri: TokenFingerprint, params: PushedParams) {
        self.by_request_uri.insert(request_uri, Arc::new(params));
    }

    pub(crate) fn get(&self, request_uri: &TokenFingerprint) -> Option<Arc<PushedParams>> {
        self.by_request_uri.get(request_uri)
    }
}
