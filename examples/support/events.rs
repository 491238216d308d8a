//! The event the benchmarks write: a protected-route call with a JWT (its details, the
//! scopes granted, required and used), the HTTP exchange and the client's address, about
//! 1 KB of JSON. Shared by `writer_bench` and `canonical_bench` through `#[path]`.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use oauth_audit::event::{
    Actor, ActorKind, AuditEvent, EventKind, HttpInfo, Outcome, ServiceInfo, Shared, Source,
    Timestamp, TokenDetails,
};
use oauth_audit::token::{TokenFingerprint, TokenFormat, Verdict};

/// The `i`th event: 5,000 users, 2,000 tokens, 250 addresses.
pub fn protected_route_event(
    service: &Arc<ServiceInfo>,
    i: usize,
    now: Timestamp,
    request_id: String,
) -> AuditEvent {
    let mut event = AuditEvent::new(
        service.clone(),
        now,
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    event.request_id = Some(request_id);
    event.actor.subject = Some(format!("user-{:05}", i % 5000));
    event.actor.client_id = Some("orders-web".into());
    event.actor.kind = Some(ActorKind::User);
    let mut token = TokenDetails::from_fingerprint(TokenFingerprint::of(&format!(
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLXtpfSJ9.sig-{}",
        i % TOKENS
    )));
    token.format = Some(TokenFormat::Jwt);
    token.jti = Some(format!("jti-{:08x}", i % TOKENS));
    token.issuer = Some("https://login.example.com/".into());
    token.audience = vec!["orders-api".into()];
    token.issued_at = Timestamp::from_unix(now.unix() - 300);
    token.expires_at = Timestamp::from_unix(now.unix() + 3300);
    token.verdict = Some(Verdict::Valid);
    event.token = Some(token.into());
    event.scopes.granted = Some(
        vec![
            "orders:read".into(),
            "orders:write".into(),
            "profile".into(),
        ]
        .into(),
    );
    event.scopes.required = Some(vec!["orders:read".into()].into());
    event.scopes.used = Some(vec!["orders:read".into()].into());
    let mut http = HttpInfo::new(
        "GET",
        format!("/api/orders/{}", 100_000 + i),
        Some(200),
        2.0 + (i % 40) as f64 / 10.0,
    );
    http.route = Some("/api/orders/{id}".into());
    event.http = Some(http);
    let mut source = Source::default();
    source.ip = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, (i % 250) as u8 + 1)));
    source.user_agent = Some(
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) orders-web/4.2"
            .into(),
    );
    event.source = Some(source);
    event
}

/// The tokens of [`protected_route_event`] with the parts of their events made once each and
/// shared (`actor`, `token`, `scopes.granted`), as the layer shares them between the requests
/// of one verified token.
#[allow(dead_code)] // Not every benchmark that includes this file writes shared events.
pub struct SharedTokens(Vec<TokenParts>);

/// One token's `actor`, `token` and `scopes.granted`.
type TokenParts = (Shared<Actor>, Shared<TokenDetails>, Shared<Vec<String>>);

#[allow(dead_code)]
impl SharedTokens {
    /// The 2,000 tokens' parts, each token's actor the user it was issued to.
    pub fn new(service: &Arc<ServiceInfo>, now: Timestamp) -> Self {
        SharedTokens(
            (0..TOKENS)
                .map(|t| {
                    let event = protected_route_event(service, t, now, String::new());
                    (
                        Shared::new(event.actor.into_inner()),
                        Shared::new(event.token.expect("a token").into_inner()),
                        Shared::new(event.scopes.granted.expect("scopes").into_inner()),
                    )
                })
                .collect(),
        )
    }

    /// [`protected_route_event`] with its token's parts shared: the same event for the
    /// token's user.
    pub fn event(
        &self,
        service: &Arc<ServiceInfo>,
        i: usize,
        now: Timestamp,
        request_id: String,
    ) -> AuditEvent {
        let mut event = protected_route_event(service, i, now, request_id);
        let (actor, token, granted) = &self.0[i % TOKENS];
        event.actor = actor.clone();
        event.token = Some(token.clone());
        event.scopes.granted = Some(granted.clone());
        event
    }
}

/// How many tokens the events are made with.
const TOKENS: usize = 2000;
