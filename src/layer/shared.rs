//! The layer's configuration, shared by every clone of the layer and its services.

use std::sync::Arc;

use crate::context::TrustedProxies;
use crate::dpop::DpopVerifier;
use crate::event::{AuditEvent, EventKind, Outcome};
use crate::oauth::Endpoints;
use crate::token::{RevokedTokens, TokenInspector, TokenResolver, Verdict};
use crate::writer::Auditor;

/// Configuration shared by every clone of the layer and its services.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) auditor: Auditor,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) inspector: TokenInspector,
    pub(crate) skip_paths: crate::request_target::SkipPaths,
    pub(crate) resolver: Option<Arc<dyn TokenResolver>>,
    pub(crate) endpoints: Endpoints,
    pub(crate) revoked: RevokedTokens,
    pub(crate) dpop: DpopVerifier,
    /// The header a trusted front proxy passes the client certificate in.
    pub(crate) client_certificate_header: Option<http::HeaderName>,
    /// Echo the request id in responses that lack `x-request-id`.
    pub(crate) request_id_header: bool,
    /// Whose `x-request-id` the request id is taken from.
    pub(crate) request_id_from: crate::context::RequestIdFrom,
}

impl std::fmt::Debug for dyn TokenResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenResolver")
    }
}

impl Shared {
    /// What inspecting a protected route's request needs.
    pub(crate) fn inspectors(&self) -> crate::resource::Inspectors<'_> {
        crate::resource::Inspectors {
            tokens: &self.inspector,
            revoked: &self.revoked,
            dpop: &self.dpop,
        }
    }

    /// The client certificate a request is believed to come with (RFC 8705).
    pub(crate) fn client_certificate<B>(
        &self,
        request: &http::Request<B>,
    ) -> Option<crate::mtls::PresentedCertificate> {
        let header = self.client_certificate_header.as_ref();
        let peer_trusted = header.is_some()
            && crate::context::peer_ip(request.extensions())
                .is_some_and(|ip| self.trusted_proxies.contains(ip));
        crate::mtls::presented(
            request.extensions(),
            request.headers(),
            header,
            peer_trusted,
        )
    }

    pub(crate) fn skips(&self, path: &str) -> bool {
        self.skip_paths.matches(path)
    }

    /// What the trail itself recorded about a token outranks every cache: a successful
    /// revocation or an inactive introspection answer marks the token revoked, and the
    /// resolver forgets its answer. The event is only read, so the OAuth classifiers need
    /// not know that token caches exist.
    pub(crate) fn remember_revocation(&self, event: &AuditEvent) {
        let revoked = match (event.kind, event.outcome, &event.token) {
            (EventKind::TokenRevoked, Outcome::Success, Some(token)) => Some(token),
            (EventKind::TokenIntrospected, Outcome::Success, Some(token))
                if token.active == Some(false) =>
            {
                Some(token)
            }
            _ => None,
        };
        if let Some(token) = revoked {
            // Only a token that is or may become valid here goes where no flood of junk
            // revocations can push it out. Not one that has expired (a client can keep
            // every token it was ever given to revoke them all at once), nor a genuine one
            // for another issuer or audience: identity providers that sign every tenant's
            // tokens with one key set let anyone mint those.
            match token.verdict {
                Some(Verdict::Valid | Verdict::NotYetValid) => {
                    self.revoked.insert(token.fingerprint)
                }
                _ => self.revoked.insert_unverified(token.fingerprint),
            }
            if let Some(resolver) = &self.resolver {
                resolver.forget(&token.fingerprint);
            }
        }
    }
}
