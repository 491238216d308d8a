//! The event fields a token gives, the same for a protected route's bearer token and a
//! token an OAuth endpoint issued or introspected.

use crate::event::{Actor, ActorKind, Shared, Timestamp, TokenDetails, UnverifiedClaims};
use crate::token::{InspectedToken, TokenClaims, Verdict};

/// The actor of a token: a subject equal to the client id is a client acting for itself.
pub(crate) fn actor(subject: Option<&str>, client_id: Option<&str>) -> Actor {
    let kind = match (subject, client_id) {
        (Some(sub), Some(client)) if sub == client => ActorKind::Client,
        (Some(_), _) => ActorKind::User,
        (None, Some(_)) => ActorKind::Client,
        (None, None) => ActorKind::Anonymous,
    };
    Actor {
        subject: subject.map(str::to_owned),
        client_id: client_id.map(str::to_owned),
        kind: Some(kind),
        delegation: Vec::new(),
    }
}

/// The actor a token names: its subject and client, and who acts for them (the token's
/// delegation chain, RFC 8693).
pub(crate) fn token_actor(claims: &TokenClaims) -> Actor {
    let mut actor = actor(claims.subject.as_deref(), claims.client_id.as_deref());
    actor.delegation = claims.delegation.clone();
    actor
}

/// What an unverified token claims, recorded apart from `actor` and granted scopes.
pub(crate) fn unverified(claims: &TokenClaims) -> UnverifiedClaims {
    UnverifiedClaims {
        subject: claims.subject.clone(),
        client_id: claims.client_id.clone(),
        delegation: claims.delegation.clone(),
        scopes: claims.scopes.clone(),
    }
}

/// The `token` object of an inspected token.
pub(crate) fn details(token: &InspectedToken) -> TokenDetails {
    let claims = &token.claims;
    let mut details = TokenDetails::from_fingerprint(token.fingerprint);
    details.format = Some(token.format);
    details.jti = claims.jti.clone();
    details.issuer = claims.issuer.clone();
    details.audience = claims.audience.clone();
    details.issued_at = claims.issued_at.and_then(Timestamp::from_unix);
    details.expires_at = claims.expires_at.and_then(Timestamp::from_unix);
    details.verdict = Some(token.verdict);
    details.truncated = claims.truncated.clone();
    details
}

/// What a presented token gives each event of a protected route, the same for every
/// request with the token: shared by those events, not copied into each.
#[derive(Clone)]
pub(crate) struct TokenParts {
    /// `token`: with the claims of a token that is not valid as `token.unverified`.
    pub(crate) token: Shared<TokenDetails>,
    /// `actor` and `scopes.granted`, for a valid token only.
    pub(crate) valid: Option<(Shared<Actor>, Shared<Vec<String>>)>,
    /// The verdict the parts were made for.
    verdict: Verdict,
}

/// The [`TokenParts`] of a token. A valid token's are made on its first use and kept with it
/// (so once per verification, as long as the inspector's cache holds the token). Anything
/// else gets parts of its own each time: tokens that fail verification cost an attacker
/// nothing to vary, so nothing more is kept for them than the cache's verdict.
pub(crate) fn token_parts(token: &InspectedToken) -> TokenParts {
    if token.verdict != Verdict::Valid {
        let mut details = details(token);
        details.unverified = Some(Box::new(unverified(&token.claims)));
        return TokenParts {
            token: Shared::own(details),
            valid: None,
            verdict: token.verdict,
        };
    }
    let make = || TokenParts {
        token: Shared::new(details(token)),
        valid: Some((
            Shared::new(token_actor(&token.claims)),
            Shared::new(token.claims.scopes.clone()),
        )),
        verdict: token.verdict,
    };
    match token.memo.get_or_init(make) {
        // Made for this verdict: a token whose verdict was changed in place since gets
        // parts of its own.
        Some(parts) if parts.verdict == token.verdict => parts.clone(),
        _ => make(),
    }
}
