//! A generated day of ordinary OAuth traffic raises no alert; the same day with scripted
//! attacks mixed in raises one alert per attack, for the right rule and key.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use oauth_audit::detect::Detector;
use oauth_audit::event::{
    AuditEvent, ErrorInfo, EventKind, OAuthDetails, Outcome, ServiceInfo, Source, Timestamp,
    TokenDetails, TokenRef,
};
use oauth_audit::token::{TokenFingerprint, Verdict};

const DAY_START: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z
const USERS: usize = 2000;

struct Day {
    rng: fastrand::Rng,
    service: Arc<ServiceInfo>,
    events: Vec<AuditEvent>,
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::from([a, b, c, d])
}

impl Day {
    fn new(seed: u64) -> Day {
        Day {
            rng: fastrand::Rng::with_seed(seed),
            service: Arc::new(ServiceInfo::default()),
            events: Vec::new(),
        }
    }

    fn event(
        &mut self,
        seconds: f64,
        kind: EventKind,
        outcome: Outcome,
        from: IpAddr,
    ) -> &mut AuditEvent {
        let micros = (DAY_START as f64 * 1e6 + seconds * 1e6) as i64;
        let mut event = AuditEvent::new(
            self.service.clone(),
            Timestamp::from_unix_micros(micros).unwrap(),
            kind,
            outcome,
        );
        let mut source = Source::default();
        source.ip = Some(from);
        source.user_agent = Some("Mozilla/5.0".into());
        event.source = Some(source);
        self.events.push(event);
        self.events.last_mut().unwrap()
    }

    /// A user's address: most at home, a fifth behind one office NAT.
    fn home(user: usize) -> IpAddr {
        if user.is_multiple_of(5) {
            ip(192, 0, 2, 10)
        } else {
            ip(10, (user / 250) as u8, (user % 250) as u8, 1)
        }
    }

    fn token(user: usize, hour: u64) -> TokenFingerprint {
        TokenFingerprint::of(&format!("access-{user}-{hour}"))
    }

    fn login(&mut self, at: f64, user: usize, ok: bool, from: IpAddr) {
        let (kind, outcome) = if ok {
            (EventKind::LoginSucceeded, Outcome::Success)
        } else {
            (EventKind::LoginFailed, Outcome::Failure)
        };
        self.event(at, kind, outcome, from).actor.subject = Some(format!("user-{user}"));
    }

    fn call(
        &mut self,
        at: f64,
        user: usize,
        token: TokenFingerprint,
        verdict: Verdict,
        from: IpAddr,
    ) {
        let (kind, outcome) = if verdict == Verdict::Valid {
            (EventKind::ResourceAccessed, Outcome::Success)
        } else {
            (EventKind::AccessDenied, Outcome::Failure)
        };
        let event = self.event(at, kind, outcome, from);
        event.actor.subject = Some(format!("user-{user}"));
        event.actor.client_id = Some("web".into());
        let mut details = TokenDetails::from_fingerprint(token);
        details.verdict = Some(verdict);
        event.token = Some(details.into());
    }

    fn failed_grant(&mut self, at: f64, client: &str, code: &str, from: IpAddr) {
        let event = self.event(at, EventKind::TokenRequestFailed, Outcome::Failure, from);
        event.actor.client_id = Some(client.into());
        event.grant_type = Some("client_credentials".into());
        event.error = Some(ErrorInfo::new(code));
    }

    /// A refresh grant by `user` presenting `presented`, answered with `issued` (or
    /// refused with `invalid_grant`).
    fn refresh(
        &mut self,
        at: f64,
        user: usize,
        presented: &str,
        issued: Option<&str>,
        from: IpAddr,
    ) {
        let (kind, outcome) = match issued {
            Some(_) => (EventKind::AccessTokenIssued, Outcome::Success),
            None => (EventKind::TokenRequestFailed, Outcome::Failure),
        };
        let event = self.event(at, kind, outcome, from);
        event.grant_type = Some("refresh_token".into());
        event.actor.subject = Some(format!("user-{user}"));
        event.actor.client_id = Some("web".into());
        let mut oauth = OAuthDetails::default();
        oauth.presented_refresh_token = Some(TokenRef::new(TokenFingerprint::of(presented)));
        event.oauth = Some(Box::new(oauth));
        match issued {
            Some(token) => {
                event.refresh_token = Some(Box::new(TokenRef::new(TokenFingerprint::of(token))))
            }
            None => event.error = Some(ErrorInfo::new("invalid_grant")),
        }
    }

    /// Ordinary traffic: users log in (a typo now and then, rarely two), call the API
    /// through the day with an hourly token (sometimes one that just expired), refresh;
    /// services fetch tokens (a misconfigured one fails a few times a day).
    fn ordinary(&mut self) {
        for user in 0..USERS {
            let home = Day::home(user);
            let sessions = 1 + self.rng.usize(0..3);
            for _ in 0..sessions {
                let start = self.rng.f64() * 80_000.0;
                let typos = match self.rng.u32(0..100) {
                    0..=84 => 0,
                    85..=97 => 1,
                    _ => 2,
                };
                for t in 0..typos {
                    self.login(start + t as f64 * 20.0, user, false, home);
                }
                self.login(start + typos as f64 * 20.0 + 5.0, user, true, home);
                let calls = 5 + self.rng.usize(0..30);
                for c in 0..calls {
                    let at = start + 30.0 + c as f64 * self.rng.f64() * 120.0;
                    let hour = (at / 3600.0) as u64;
                    let verdict = if self.rng.u32(0..200) == 0 {
                        Verdict::Expired
                    } else {
                        Verdict::Valid
                    };
                    // Now and then from the phone network, a second address.
                    let from = if self.rng.u32(0..20) == 0 {
                        ip(172, 16, (user % 200) as u8, 7)
                    } else {
                        home
                    };
                    self.call(at, user, Day::token(user, hour), verdict, from);
                }
            }
        }
        // Refresh chains, each rotated token used once; now and then the answer is lost
        // and the app retries at once with the token it has, which the server refuses.
        let mut rng = fastrand::Rng::with_seed(self.rng.get_seed() ^ 0x5eed);
        for user in 0..USERS {
            let home = Day::home(user);
            let start = rng.f64() * 40_000.0;
            let mut token = format!("rt-{user}-0");
            for k in 1..=rng.usize(0..12) {
                let at = start + k as f64 * 3_000.0;
                let next = format!("rt-{user}-{k}");
                self.refresh(at, user, &token, Some(&next), home);
                if rng.u32(0..50) == 0 {
                    self.refresh(at + 0.8, user, &token, None, home);
                }
                token = next;
            }
        }
        for n in 0..40 {
            let at = self.rng.f64() * 86_000.0;
            self.failed_grant(
                at + n as f64,
                "batch-report",
                "invalid_client",
                ip(10, 200, 0, 5),
            );
        }
        self.events.sort_by_key(|e| e.time);
    }
}

fn alerts(events: &[AuditEvent]) -> Vec<(String, String)> {
    let mut detector = Detector::default();
    let service = Arc::new(ServiceInfo::default());
    events
        .iter()
        .flat_map(|e| detector.check(e, &service))
        .map(|a| {
            let alert = a.alert.unwrap();
            (alert.rule, alert.key)
        })
        .collect()
}

#[test]
fn an_ordinary_day_raises_nothing_and_every_attack_is_flagged() {
    let mut day = Day::new(20261201);
    day.ordinary();
    let ordinary = day.events.len();
    assert!(ordinary > 40_000, "{ordinary} events");
    let quiet = alerts(&day.events);
    assert!(quiet.is_empty(), "alerts on an ordinary day: {quiet:#?}");

    // The attacks, at various times of the same day.
    let attacker = ip(203, 0, 113, 66);
    // Brute force on user-7 at 09:00.
    for i in 0..15 {
        day.login(32_400.0 + i as f64 * 6.0, 7, false, attacker);
    }
    // Credential stuffing at 11:00: 40 users, once each, from another address.
    for user in 0..40 {
        day.login(
            39_600.0 + user as f64 * 9.0,
            100 + user,
            false,
            ip(203, 0, 113, 67),
        );
    }
    // A password spray at 13:00: 8 users, 3 attempts each, over 30 minutes.
    for round in 0..3 {
        for user in 0..8 {
            day.login(
                46_800.0 + round as f64 * 600.0 + user as f64 * 30.0,
                300 + user,
                false,
                ip(203, 0, 113, 68),
            );
        }
    }
    // A client secret guessed at 14:00.
    for i in 0..12 {
        day.failed_grant(
            50_400.0 + i as f64 * 10.0,
            "payments",
            "invalid_client",
            ip(203, 0, 113, 69),
        );
    }
    // user-42's token, stolen at 15:00 and used from three other addresses.
    let stolen = Day::token(42, 15);
    for (i, last) in [70u8, 71, 72].into_iter().enumerate() {
        day.call(
            54_000.0 + i as f64 * 60.0,
            42,
            stolen,
            Verdict::Valid,
            ip(203, 0, 113, last),
        );
    }
    // Forged tokens at 16:00.
    for i in 0..25 {
        let forged = TokenFingerprint::of(&format!("forged-{i}"));
        day.call(
            57_600.0 + i as f64 * 2.0,
            0,
            forged,
            Verdict::BadSignature,
            ip(203, 0, 113, 73),
        );
    }
    // user-9's token revoked at 17:00 and used again at 17:05.
    let revoked = Day::token(9, 17);
    {
        let event = day.event(
            61_200.0,
            EventKind::TokenRevoked,
            Outcome::Success,
            ip(10, 0, 9, 1),
        );
        event.token = Some(TokenDetails::from_fingerprint(revoked).into());
    }
    day.call(61_500.0, 9, revoked, Verdict::Valid, ip(203, 0, 113, 74));
    // user-11's refresh token copied, and presented at 18:00 after the app rotated it.
    day.refresh(
        64_700.0,
        11,
        "stolen-rt",
        Some("stolen-rt-next"),
        Day::home(11),
    );
    day.refresh(64_800.0, 11, "stolen-rt", None, ip(203, 0, 113, 75));
    day.events.sort_by_key(|e| e.time);

    let found: BTreeSet<(String, String)> = alerts(&day.events).into_iter().collect();
    let expected: BTreeSet<(String, String)> = [
        (
            "brute_force",
            "actor.subject=user-7 source.ip=203.0.113.66".to_owned(),
        ),
        ("credential_stuffing", "source.ip=203.0.113.67".to_owned()),
        ("password_spray", "source.ip=203.0.113.68".to_owned()),
        (
            "client_secret_guessing",
            "actor.client_id=payments".to_owned(),
        ),
        ("token_shared", format!("token.fingerprint={stolen}")),
        ("invalid_token_flood", "source.ip=203.0.113.73".to_owned()),
        (
            "revoked_token_reuse",
            format!("token.fingerprint={revoked}"),
        ),
        (
            "refresh_token_reuse",
            format!(
                "oauth.presented_refresh_token.fingerprint={} actor.client_id=web",
                TokenFingerprint::of("stolen-rt")
            ),
        ),
    ]
    .into_iter()
    .map(|(rule, key)| (rule.to_owned(), key))
    .collect();
    assert_eq!(found, expected);
}
