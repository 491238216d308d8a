//! Every rule fires at its threshold and stays quiet just under it; the cap holds.

use std::sync::Arc;

use super::*;
use crate::event::{
    AuditEvent, ErrorInfo, EventKind, Outcome, ServiceInfo, Source, Timestamp, TokenDetails,
};
use crate::token::{TokenFingerprint, Verdict};

const T0: i64 = 1_796_000_000_000_000;

fn at(seconds: f64, kind: EventKind) -> AuditEvent {
    let micros = T0 + (seconds * 1e6) as i64;
    AuditEvent::new(
        Arc::new(ServiceInfo::default()),
        Timestamp::from_unix_micros(micros).unwrap(),
        kind,
        Outcome::Failure,
    )
}

fn from(mut event: AuditEvent, ip: [u8; 4]) -> AuditEvent {
    event.source = Some(Source {
        ip: Some(ip.into()),
        ..Source::default()
    });
    event
}

fn login_failed(seconds: f64, user: &str, ip: [u8; 4]) -> AuditEvent {
    let mut event = from(at(seconds, EventKind::LoginFailed), ip);
    event.actor.subject = Some(user.into());
    event
}

fn failed(seconds: f64, kind: EventKind, code: &str) -> AuditEvent {
    let mut event = at(seconds, kind);
    event.error = Some(ErrorInfo {
        code: code.into(),
        description: None,
    });
    event
}

/// The rules that fire over `events`, in order.
fn fired(events: &[AuditEvent]) -> Vec<String> {
    let mut detector = Detector::default();
    let service = Arc::new(ServiceInfo::default());
    events
        .iter()
        .flat_map(|e| detector.check(e, &service))
        .map(|a| a.alert.unwrap().rule)
        .collect()
}

#[test]
fn brute_force_fires_at_ten_failures_for_one_user_and_address() {
    let ip = [203, 0, 113, 9];
    let nine: Vec<_> = (0..9)
        .map(|i| login_failed(i as f64, "alice", ip))
        .collect();
    assert!(fired(&nine).is_empty());
    let mut ten = nine.clone();
    ten.push(login_failed(9.0, "alice", ip));
    assert_eq!(fired(&ten), ["brute_force"]);
    // Ten failures spread over more than the window, or over two addresses: quiet.
    let spread: Vec<_> = (0..10)
        .map(|i| login_failed(i as f64 * 120.0, "alice", ip))
        .collect();
    assert!(fired(&spread).is_empty());
    let two: Vec<_> = (0..10)
        .map(|i| login_failed(i as f64, "alice", [203, 0, 113, i % 2]))
        .collect();
    assert!(fired(&two).is_empty());
    // A failed password grant counts like a failed login; another grant does not.
    let mut grants: Vec<_> = (0..10)
        .map(|i| {
            let mut e = failed(i as f64, EventKind::TokenRequestFailed, "invalid_grant");
            e.grant_type = Some("password".into());
            e.actor.subject = Some("alice".into());
            from(e, ip)
        })
        .collect();
    assert_eq!(fired(&grants), ["brute_force"]);
    for e in &mut grants {
        e.grant_type = Some("authorization_code".into());
    }
    assert!(fired(&grants).is_empty());
}

#[test]
fn spellings_a_server_folds_into_one_user_name_are_one_user() {
    // Servers that fold user names (ASP.NET Identity upper-cases them with
    // `ToUpperInvariant` after NFC, Django's login form takes them in NFKC) log `alıce`
    // (a dotless i), `aliſe` (a long s) or `ａｌｉｃｅ` (full-width letters) in as `alice`:
    // ten guesses at one password, spelt so, are one user's ten failures.
    let ip = [203, 0, 113, 9];
    let spellings = [
        "alice",
        "alıce",
        "ALıCE",
        "ａｌｉｃｅ",
        "Ａlice",
        "alic\u{0065}",
    ];
    let ten: Vec<_> = (0..10)
        .map(|i| login_failed(i as f64, spellings[i % 5], ip))
        .collect();
    assert_eq!(fired(&ten), ["brute_force"]);
    let ten: Vec<_> = (0..10)
        .map(|i| {
            let name = if i % 2 == 0 {
                "élodie"
            } else {
                "e\u{301}lodie"
            };
            login_failed(i as f64, name, ip)
        })
        .collect();
    assert_eq!(fired(&ten), ["brute_force"]);
    let ten: Vec<_> = (0..10)
        .map(|i| {
            let name = if i % 2 == 0 { "russ" } else { "ruſſ" };
            login_failed(i as f64, name, ip)
        })
        .collect();
    assert_eq!(fired(&ten), ["brute_force"]);
}

#[test]
fn one_alert_per_key_per_cooldown_and_the_next_counts_what_came_between() {
    let ip = [203, 0, 113, 9];
    let mut detector = Detector::default();
    let service = Arc::new(ServiceInfo::default());
    let mut alerts = Vec::new();
    // A failure a second for an hour: 3,600 events.
    for i in 0..3600 {
        alerts.extend(detector.check(&login_failed(i as f64, "alice", ip), &service));
    }
    let rules: Vec<_> = alerts.iter().map(|a| a.alert.as_ref().unwrap()).collect();
    assert_eq!(rules.len(), 4, "one per 15 minutes");
    assert_eq!(rules[0].suppressed, None);
    assert_eq!(rules[1].suppressed, Some(899));
    let first = rules[0];
    assert_eq!(first.count, 10);
    assert_eq!(first.window_s, 900);
    assert_eq!(first.key, "actor.subject=alice source.ip=203.0.113.9");
    assert_eq!(first.evidence.len(), 10);
    assert_eq!(
        first.title.as_deref(),
        Some("Repeated failed logins for one user from one address")
    );
    assert_eq!(alerts[0].actor.subject.as_deref(), Some("alice"));
    assert_eq!(alerts[0].severity, crate::event::Severity::Critical);
    assert_eq!(
        alerts[0].source.as_ref().unwrap().ip,
        Some([203, 0, 113, 9].into())
    );
}

#[test]
fn credential_stuffing_needs_many_users_with_few_failures_each() {
    let ip = [198, 51, 100, 7];
    // 30 users, one failure each, in 5 minutes.
    let stuffing: Vec<_> = (0..30)
        .map(|i| login_failed(i as f64 * 10.0, &format!("user{i}"), ip))
        .collect();
    assert_eq!(fired(&stuffing), ["credential_stuffing"]);
    // 24 such failures: under the count of 25.
    assert!(fired(&stuffing[..24]).is_empty());
    // A busy shared address (a NAT): 30 failures over 10 users, 3 each, is not stuffing.
    let nat: Vec<_> = (0..30)
        .map(|i| login_failed(i as f64 * 10.0, &format!("user{}", i % 10), ip))
        .collect();
    assert!(fired(&nat).is_empty());
}

#[test]
fn password_spray_needs_attempts_spread_over_time() {
    let ip = [198, 51, 100, 8];
    // Six users, three attempts each, one every 20 seconds: six minutes.
    let spray: Vec<_> = (0..18)
        .map(|i| login_failed(i as f64 * 20.0, &format!("user{}", i % 6), ip))
        .collect();
    assert_eq!(fired(&spray), ["password_spray"]);
    // The same in one minute is not spread enough (and too few for stuffing).
    let burst: Vec<_> = (0..18)
        .map(|i| login_failed(i as f64 * 3.0, &format!("user{}", i % 6), ip))
        .collect();
    assert!(fired(&burst).is_empty());
    // Four users: under five.
    let four: Vec<_> = (0..12)
        .map(|i| login_failed(i as f64 * 40.0, &format!("user{}", i % 4), ip))
        .collect();
    assert!(fired(&four).is_empty());
}

#[test]
fn client_secret_guessing_and_scope_probing_count_per_client() {
    let guesses = |n: usize, code: &str, kind: EventKind| -> Vec<AuditEvent> {
        (0..n)
            .map(|i| {
                let mut e = failed(i as f64, kind, code);
                e.actor.client_id = Some("orders-web".into());
                e
            })
            .collect()
    };
    assert_eq!(
        fired(&guesses(
            10,
            "invalid_client",
            EventKind::TokenRequestFailed
        )),
        ["client_secret_guessing"]
    );
    assert!(fired(&guesses(9, "invalid_client", EventKind::TokenRequestFailed)).is_empty());
    assert!(fired(&guesses(10, "invalid_grant", EventKind::TokenRequestFailed)).is_empty());
    // Keycloak answers a wrong secret `unauthorized_client`; a Basic filter in front of a
    // server, a bare `401`.
    for code in ["unauthorized_client", "http_401"] {
        assert_eq!(
            fired(&guesses(10, code, EventKind::TokenRequestFailed)),
            ["client_secret_guessing"],
            "{code}"
        );
    }
    assert_eq!(
        fired(&guesses(10, "insufficient_scope", EventKind::AccessDenied)),
        ["scope_probing"]
    );
    assert!(fired(&guesses(9, "insufficient_scope", EventKind::AccessDenied)).is_empty());
}

fn with_token(mut event: AuditEvent, token: &str, verdict: Verdict) -> AuditEvent {
    let mut details = TokenDetails::from_fingerprint(TokenFingerprint::of(token));
    details.verdict = Some(verdict);
    event.token = Some(details.into());
    event
}

#[test]
fn token_shared_needs_three_addresses_for_one_token() {
    let used = |i: usize, ip: u8| {
        with_token(
            from(at(i as f64, EventKind::ResourceAccessed), [192, 0, 2, ip]),
            "token-a",
            Verdict::Valid,
        )
    };
    assert_eq!(
        fired(&[used(0, 1), used(1, 2), used(2, 1), used(3, 3)]),
        ["token_shared"]
    );
    assert!(fired(&[used(0, 1), used(1, 2), used(2, 1), used(3, 2)]).is_empty());
}

#[test]
fn invalid_token_flood_counts_bad_tokens_from_one_address() {
    let bad = |i: usize, verdict| {
        with_token(
            from(at(i as f64, EventKind::AccessDenied), [192, 0, 2, 66]),
            &format!("forged-{i}"),
            verdict,
        )
    };
    let flood: Vec<_> = (0..20).map(|i| bad(i, Verdict::BadSignature)).collect();
    assert_eq!(fired(&flood), ["invalid_token_flood"]);
    assert!(fired(&flood[..19]).is_empty());
    // Valid tokens denied for their scopes are not forged.
    let denied: Vec<_> = (0..20).map(|i| bad(i, Verdict::Valid)).collect();
    assert!(fired(&denied).is_empty());
}

#[test]
fn redirect_uri_probing_needs_several_uris() {
    let probe = |i: usize, uri: &str| {
        let mut e = from(
            failed(i as f64, EventKind::AuthorizationFailed, "invalid_request"),
            [192, 0, 2, 77],
        );
        e.redirect_uri = Some(uri.into());
        e
    };
    let probing: Vec<_> = (0..5)
        .map(|i| probe(i, &format!("https://evil.example/{i}")))
        .collect();
    assert_eq!(fired(&probing), ["redirect_uri_probing"]);
    let typo: Vec<_> = (0..5).map(|i| probe(i, "https://app.example/cb")).collect();
    assert!(fired(&typo).is_empty());
    // An error page without an OAuth code (the server refused to redirect) counts too.
    let pages: Vec<_> = probing
        .into_iter()
        .map(|mut e| {
            e.error.as_mut().unwrap().code = "http_400".into();
            e
        })
        .collect();
    assert_eq!(fired(&pages), ["redirect_uri_probing"]);
}

#[test]
fn a_token_used_after_its_revocation_is_reuse() {
    let token = "token-r";
    let use_at = |s: f64| {
        with_token(
            from(at(s, EventKind::ResourceAccessed), [192, 0, 2, 5]),
            token,
            Verdict::Valid,
        )
    };
    let revoked = with_token(at(10.0, EventKind::TokenRevoked), token, Verdict::Valid);
    assert!(fired(&[use_at(1.0), revoked.clone()]).is_empty());
    assert_eq!(
        fired(&[use_at(1.0), revoked.clone(), use_at(11.0), use_at(12.0)]),
        [REVOKED_TOKEN_REUSE]
    );
    // Introspected as inactive counts as ended too.
    let mut inactive = with_token(
        at(10.0, EventKind::TokenIntrospected),
        token,
        Verdict::Valid,
    );
    inactive.token.as_mut().unwrap().active = Some(false);
    assert_eq!(fired(&[inactive, use_at(11.0)]), [REVOKED_TOKEN_REUSE]);
    // The layer's own verdict: revoked under another spelling (an ECDSA signature's twin),
    // or before the detector started.
    let recorded = with_token(
        from(at(11.0, EventKind::AccessDenied), [192, 0, 2, 5]),
        "token-r-twin",
        Verdict::Revoked,
    );
    assert_eq!(
        fired(&[revoked.clone(), recorded.clone()]),
        [REVOKED_TOKEN_REUSE]
    );
    assert_eq!(fired(&[recorded]), [REVOKED_TOKEN_REUSE]);
}

#[test]
fn the_same_events_read_back_as_json_raise_the_same_alerts() {
    let ip = [203, 0, 113, 9];
    let mut events: Vec<_> = (0..10)
        .map(|i| login_failed(i as f64, "alice", ip))
        .collect();
    // A refresh token rotated, then presented again from elsewhere.
    events.push(refresh(20.0, "rt-0", Some("rt-1"), [192, 0, 2, 8], "app/1"));
    events.push(refresh(30.0, "rt-1", Some("rt-2"), [192, 0, 2, 8], "app/1"));
    events.push(refresh_refused(40.0, "rt-0", [198, 51, 100, 66], "thief/1"));
    let mut live = Detector::default();
    let mut offline = Detector::default();
    let service = Arc::new(ServiceInfo::default());
    let a: Vec<_> = events
        .iter()
        .flat_map(|e| live.check(e, &service))
        .collect();
    let b: Vec<_> = events
        .iter()
        .flat_map(|e| offline.check_json(&serde_json::to_value(e).unwrap()))
        .collect();
    let rules: Vec<_> = a
        .iter()
        .map(|e| e.alert.as_ref().unwrap().rule.as_str())
        .collect();
    assert_eq!(rules, ["brute_force", REFRESH_TOKEN_REUSE]);
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a.alert, b.alert);
        assert_eq!(a.time, b.time);
        assert_eq!(a.source, b.source);
        assert_eq!(a.actor, b.actor);
        assert_eq!(a.oauth, b.oauth);
        assert_eq!(a.severity, b.severity);
    }
    assert_eq!(live.stats(), offline.stats());
}

#[test]
fn a_million_keys_stay_within_the_cap() {
    let mut detector = Detector::default().max_keys(10_000);
    let service = Arc::new(ServiceInfo::default());
    for i in 0..1_000_000u32 {
        let [a, b, c, d] = i.to_be_bytes();
        let event = login_failed(f64::from(i) / 1000.0, &format!("u{i}"), [10 + a, b, c, d]);
        assert!(detector.check(&event, &service).is_empty());
    }
    let stats = detector.stats();
    assert!(stats.keys <= 10_000, "{stats:?}");
    assert_eq!(stats.events, 1_000_000);
    assert!(stats.evicted >= 1_000_000 * 3 - 10_000, "{stats:?}");
}

#[test]
fn groups_keep_what_their_condition_needs_not_more() {
    let kept: Vec<(&str, usize)> = default_rules()
        .iter()
        .map(|r| (r.id, r.events_kept()))
        .collect();
    // token_shared and redirect_uri_probing count any number of uses per value: that must
    // not raise what each of their groups keeps to the ceiling.
    for (id, events) in &kept {
        assert!(*events <= 90, "{id} keeps {events} events per group");
    }
    let rule = |id: &str| kept.iter().find(|(r, _)| *r == id).unwrap().1;
    assert_eq!(rule("credential_stuffing"), 60);
    assert_eq!(rule("password_spray"), 90);
    assert_eq!(rule("token_shared"), 32);
}

/// A refresh grant by client `app` for `alice`, presenting `presented` and answered with
/// `issued` (`None`: the answer carried no refresh token).
fn refresh(
    seconds: f64,
    presented: &str,
    issued: Option<&str>,
    ip: [u8; 4],
    user_agent: &str,
) -> AuditEvent {
    let mut event = at(seconds, EventKind::AccessTokenIssued);
    event.outcome = Outcome::Success;
    event.grant_type = Some("refresh_token".into());
    event.actor.subject = Some("alice".into());
    event.actor.client_id = Some("app".into());
    event.source = Some(Source {
        ip: Some(ip.into()),
        user_agent: Some(user_agent.into()),
        ..Source::default()
    });
    event.oauth = Some(Box::new(crate::event::OAuthDetails {
        presented_refresh_token: Some(crate::event::TokenRef::new(TokenFingerprint::of(presented))),
        ..crate::event::OAuthDetails::default()
    }));
    event.refresh_token = issued
        .map(|t| crate::event::TokenRef::new(TokenFingerprint::of(t)))
        .map(Box::new);
    event.token = Some(
        TokenDetails::from_fingerprint(TokenFingerprint::of(&format!("access-{seconds}"))).into(),
    );
    event
}

/// The same grant refused with `invalid_grant`, as an authorization server that detects
/// reuse answers.
fn refresh_refused(seconds: f64, presented: &str, ip: [u8; 4], user_agent: &str) -> AuditEvent {
    let mut event = refresh(seconds, presented, None, ip, user_agent);
    event.kind = EventKind::TokenRequestFailed;
    event.outcome = Outcome::Failure;
    event.token = None;
    event.error = Some(ErrorInfo {
        code: "invalid_grant".into(),
        description: None,
    });
    event
}

#[test]
fn a_rotated_refresh_token_presented_again_is_reuse() {
    let app = [192, 0, 2, 8];
    let thief = [198, 51, 100, 66];
    let rotation = refresh(0.0, "rt-0", Some("rt-1"), app, "app/1");
    let reuse = refresh_refused(60.0, "rt-0", thief, "thief/1");
    let mut detector = Detector::default();
    let service = Arc::new(ServiceInfo::default());
    assert!(detector.check(&rotation, &service).is_empty());
    let alerts = detector.check(&reuse, &service);
    assert_eq!(alerts.len(), 1);
    let event = &alerts[0];
    let alert = event.alert.as_ref().unwrap();
    assert_eq!(alert.rule, REFRESH_TOKEN_REUSE);
    assert_eq!(
        alert.title.as_deref(),
        Some("A refresh token presented again after it was rotated")
    );
    let fingerprint = TokenFingerprint::of("rt-0");
    assert_eq!(
        alert.key,
        format!("oauth.presented_refresh_token.fingerprint={fingerprint} actor.client_id=app")
    );
    assert_eq!(alert.count, 1);
    assert_eq!(
        alert.evidence,
        [rotation.id.to_string(), reuse.id.to_string()]
    );
    assert_eq!(alert.first_seen, Some(rotation.time));
    assert_eq!(alert.last_seen, Some(reuse.time));
    assert_eq!(event.time, reuse.time);
    assert_eq!(event.severity, crate::event::Severity::Critical);
    // The offender, as the reuse names it.
    let source = event.source.as_ref().unwrap();
    assert_eq!(source.ip, Some(thief.into()));
    assert_eq!(source.user_agent.as_deref(), Some("thief/1"));
    assert_eq!(event.actor.client_id.as_deref(), Some("app"));
    assert_eq!(
        event.oauth.as_ref().unwrap().presented_refresh_token,
        Some(crate::event::TokenRef::new(fingerprint))
    );
    // Once per token per cooldown.
    let again = refresh_refused(61.0, "rt-0", thief, "thief/1");
    assert!(detector.check(&again, &service).is_empty());
    let later = refresh_refused(60.0 + 16.0 * 60.0, "rt-0", thief, "thief/1");
    let alerts = detector.check(&later, &service);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].alert.as_ref().unwrap().suppressed, Some(1));

    // A reuse the authorization server did not catch (it rotated again) is reuse all the
    // same, and so is the legitimate client's reuse after the thief refreshed first.
    assert_eq!(
        fired(&[
            refresh(0.0, "rt-0", Some("rt-1"), thief, "thief/1"),
            refresh(30.0, "rt-0", Some("rt-9"), app, "app/1"),
        ]),
        [REFRESH_TOKEN_REUSE]
    );
    // A reuse without any client named still alerts, keyed on the token alone.
    let mut anonymous = refresh_refused(60.0, "rt-0", thief, "thief/1");
    anonymous.actor.client_id = None;
    let mut detector = Detector::default();
    detector.check(&rotation, &service);
    let alerts = detector.check(&anonymous, &service);
    assert_eq!(
        alerts[0].alert.as_ref().unwrap().key,
        format!("oauth.presented_refresh_token.fingerprint={fingerprint}")
    );
}

#[test]
fn an_ordinary_refresh_chain_is_not_reuse() {
    let app = [192, 0, 2, 8];
    // Every ten minutes for a day, each new refresh token used once.
    let chain: Vec<_> = (0..144u32)
        .map(|i| {
            refresh(
                f64::from(i) * 600.0,
                &format!("rt-{i}"),
                Some(&format!("rt-{}", i + 1)),
                app,
                "app/1",
            )
        })
        .collect();
    assert!(fired(&chain).is_empty());
    // Two clients, each with its own chain, interleaved.
    let two: Vec<_> = (0..20u32)
        .map(|i| {
            let who = i % 2;
            let n = i / 2;
            refresh(
                f64::from(i),
                &format!("rt-{who}-{n}"),
                Some(&format!("rt-{who}-{}", n + 1)),
                [192, 0, 2, who as u8],
                "app/1",
            )
        })
        .collect();
    assert!(fired(&two).is_empty());
}

#[test]
fn a_refresh_token_the_server_does_not_rotate_is_not_reuse() {
    let app = [192, 0, 2, 8];
    // Answered with the same refresh token, or with none: the client keeps using it, from
    // wherever it is.
    let same: Vec<_> = (0..10u32)
        .map(|i| refresh(f64::from(i) * 60.0, "rt-0", Some("rt-0"), app, "app/1"))
        .collect();
    assert!(fired(&same).is_empty());
    let none: Vec<_> = (0..10u32)
        .map(|i| {
            refresh(
                f64::from(i) * 60.0,
                "rt-0",
                None,
                [192, 0, 2, i as u8],
                "app/1",
            )
        })
        .collect();
    assert!(fired(&none).is_empty());
    // A refused refresh rotates nothing.
    let refused = [
        refresh_refused(0.0, "rt-0", app, "app/1"),
        refresh_refused(60.0, "rt-0", [198, 51, 100, 1], "other/1"),
    ];
    assert!(fired(&refused).is_empty());
}

#[test]
fn a_quick_retry_from_the_rotating_client_is_not_reuse() {
    let app = [192, 0, 2, 8];
    let rotation = refresh(0.0, "rt-0", Some("rt-1"), app, "app/1");
    // The answer was lost: the same client retries at once with the token it has.
    assert!(fired(&[rotation.clone(), refresh_refused(1.5, "rt-0", app, "app/1")]).is_empty());
    // Another user agent, another address, or later than the grace: reuse.
    for reuse in [
        refresh_refused(1.5, "rt-0", app, "curl/8"),
        refresh_refused(1.5, "rt-0", [192, 0, 2, 9], "app/1"),
        refresh_refused(2.0, "rt-0", app, "app/1"),
    ] {
        assert_eq!(fired(&[rotation.clone(), reuse]), [REFRESH_TOKEN_REUSE]);
    }
    // Without a grace, every reuse.
    let mut strict = Detector::default().refresh_reuse_grace(std::time::Duration::ZERO);
    let service = Arc::new(ServiceInfo::default());
    strict.check(&rotation, &service);
    let alerts = strict.check(&refresh_refused(0.5, "rt-0", app, "app/1"), &service);
    assert_eq!(alerts.len(), 1);
    // And off.
    let mut off = Detector::default().without_refresh_reuse_rule();
    off.check(&rotation, &service);
    assert!(off
        .check(
            &refresh_refused(60.0, "rt-0", [198, 51, 100, 66], "thief/1"),
            &service
        )
        .is_empty());
}

#[test]
fn rotated_refresh_tokens_stay_within_the_cap() {
    let mut detector = Detector::default().max_keys(1_000);
    let service = Arc::new(ServiceInfo::default());
    for i in 0..100_000u32 {
        let rotation = refresh(
            f64::from(i) / 100.0,
            &format!("rt-{i}"),
            Some(&format!("next-{i}")),
            [192, 0, 2, 8],
            "app/1",
        );
        assert!(detector.check(&rotation, &service).is_empty());
    }
    let stats = detector.stats();
    assert!(stats.tokens <= 1_000, "{stats:?}");
    assert!(stats.tokens >= 500, "{stats:?}");
    // The most recent rotations are remembered.
    let reuse = refresh_refused(2_000.0, "rt-99999", [198, 51, 100, 66], "thief/1");
    let alerts = detector.check(&reuse, &service);
    assert_eq!(alerts.len(), 1);
    assert!(detector.stats().keys <= 1_000);
}

/// A sign-in of `user` from `ip`, placed at `place` (city, country, lat, lon).
fn signed_in(
    seconds: f64,
    kind: EventKind,
    user: &str,
    ip: [u8; 4],
    place: (&str, &str, f64, f64),
) -> AuditEvent {
    let mut event = from(at(seconds, kind), ip);
    event.set_kind(kind, Outcome::Success);
    event.actor.subject = Some(user.into());
    let (city, country, lat, lon) = place;
    if let Some(source) = &mut event.source {
        source.geo = Some(Box::new(crate::event::Geo {
            city: Some(city.into()),
            country: Some(country.into()),
            ..crate::event::Geo::at(lat, lon)
        }));
    }
    event
}

const LYON: (&str, &str, f64, f64) = ("Lyon", "FR", 45.764, 4.8357);
const PARIS: (&str, &str, f64, f64) = ("Paris", "FR", 48.8566, 2.3522);
const SYDNEY: (&str, &str, f64, f64) = ("Sydney", "AU", -33.8688, 151.2093);

fn token_issued(
    seconds: f64,
    user: &str,
    ip: [u8; 4],
    place: (&str, &str, f64, f64),
) -> AuditEvent {
    let mut event = signed_in(seconds, EventKind::AccessTokenIssued, user, ip, place);
    event.grant_type = Some("authorization_code".into());
    event.client_auth = Some(crate::event::ClientAuth::None);
    event
}

#[test]
fn impossible_travel_fires_for_a_user_in_two_places_too_fast() {
    let lyon = signed_in(
        0.0,
        EventKind::LoginSucceeded,
        "alice",
        [203, 0, 113, 9],
        LYON,
    );
    let sydney = signed_in(
        1200.0,
        EventKind::LoginSucceeded,
        "alice",
        [198, 51, 100, 7],
        SYDNEY,
    );
    let mut detector = Detector::default();
    let service = Arc::new(ServiceInfo::default());
    assert!(detector.check(&lyon, &service).is_empty());
    let alerts = detector.check(&sydney, &service);
    assert_eq!(alerts.len(), 1);
    let alert = alerts[0].alert.as_ref().unwrap();
    assert_eq!(alert.rule, IMPOSSIBLE_TRAVEL);
    assert_eq!(alert.key, "actor.subject=alice");
    assert_eq!(alert.evidence, [lyon.id.to_string(), sydney.id.to_string()]);
    assert_eq!(alert.first_seen, Some(lyon.time));
    assert_eq!(alert.last_seen, Some(sydney.time));
    let travel = alert.travel.as_ref().unwrap();
    assert!((16_800..17_000).contains(&travel.distance_km), "{travel:?}");
    assert_eq!(travel.seconds, 1200);
    // 20 minutes: three times the distance per hour (give or take the rounding of both).
    assert!(
        travel.speed_kmh.abs_diff(travel.distance_km * 3) <= 2,
        "{travel:?}"
    );
    assert_eq!(travel.from.city.as_deref(), Some("Lyon"));
    assert_eq!(travel.from.ip.as_deref(), Some("203.0.113.9"));
    assert_eq!(travel.to.country.as_deref(), Some("AU"));
    let source = alerts[0].source.as_ref().unwrap();
    assert_eq!(source.geo.as_ref().unwrap().city.as_deref(), Some("Sydney"));
    assert_eq!(alerts[0].actor.subject.as_deref(), Some("alice"));

    // Read back as JSON, the same alert.
    let mut offline = Detector::default();
    let json = |e: &AuditEvent| serde_json::to_value(e).unwrap();
    assert!(offline.check_json(&json(&lyon)).is_empty());
    let again = offline.check_json(&json(&sydney));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].alert.as_ref().unwrap().travel, alert.travel);
}

#[test]
fn impossible_travel_stays_quiet_for_trips_that_could_be_made() {
    let service = Arc::new(ServiceInfo::default());
    let quiet = |events: &[AuditEvent]| {
        let mut detector = Detector::default();
        let alerts: Vec<_> = events
            .iter()
            .flat_map(|e| detector.check(e, &service))
            .collect();
        assert!(alerts.is_empty(), "{alerts:?}");
    };
    let ip = [203, 0, 113, 9];
    let far = [198, 51, 100, 7];
    // Lyon to Paris (392 km) in a minute: under 500 km.
    quiet(&[
        signed_in(0.0, EventKind::LoginSucceeded, "alice", ip, LYON),
        signed_in(60.0, EventKind::LoginSucceeded, "alice", ip, PARIS),
    ]);
    // Lyon to Sydney 91 minutes later: beyond the window.
    quiet(&[
        signed_in(0.0, EventKind::LoginSucceeded, "alice", ip, LYON),
        signed_in(91.0 * 60.0, EventKind::LoginSucceeded, "alice", far, SYDNEY),
    ]);
    // Two users, one place each.
    quiet(&[
        signed_in(0.0, EventKind::LoginSucceeded, "alice", ip, LYON),
        signed_in(60.0, EventKind::LoginSucceeded, "bob", far, SYDNEY),
    ]);
    // Refresh traffic and confidential clients' token requests say nothing of where the
    // user is; nor do protected-route calls or failures.
    let mut refresh = token_issued(60.0, "alice", far, SYDNEY);
    refresh.grant_type = Some("refresh_token".into());
    let mut confidential = token_issued(60.0, "alice", far, SYDNEY);
    confidential.client_auth = Some(crate::event::ClientAuth::ClientSecretBasic);
    let resource = signed_in(60.0, EventKind::ResourceAccessed, "alice", far, SYDNEY);
    let mut failed = signed_in(60.0, EventKind::LoginFailed, "alice", far, SYDNEY);
    failed.set_kind(EventKind::LoginFailed, Outcome::Failure);
    for other in [refresh, confidential, resource, failed] {
        quiet(&[
            signed_in(0.0, EventKind::LoginSucceeded, "alice", ip, LYON),
            other,
        ]);
    }
    // A private address has no place.
    let mut private = signed_in(
        60.0,
        EventKind::LoginSucceeded,
        "alice",
        [10, 0, 0, 1],
        SYDNEY,
    );
    private.source.as_mut().unwrap().geo = Some(Box::new(crate::event::Geo {
        name: Some("private".into()),
        ..crate::event::Geo::default()
    }));
    quiet(&[
        signed_in(0.0, EventKind::LoginSucceeded, "alice", ip, LYON),
        private,
    ]);
    // Turned off.
    let mut detector = Detector::default().without_impossible_travel();
    assert!(detector
        .check(
            &signed_in(0.0, EventKind::LoginSucceeded, "alice", ip, LYON),
            &service
        )
        .is_empty());
    assert!(detector
        .check(
            &signed_in(60.0, EventKind::LoginSucceeded, "alice", far, SYDNEY),
            &service
        )
        .is_empty());
}

#[test]
fn a_login_of_unknown_outcome_is_no_sign_in() {
    // A login form that answers a wrong password with its page again (200, as Django's
    // and most form logins do) gives `LoginSucceeded` with `outcome: unknown`: anyone can
    // send one under any user name, from anywhere.
    let service = Arc::new(ServiceInfo::default());
    let guess = |seconds: f64| {
        let mut event = signed_in(
            seconds,
            EventKind::LoginSucceeded,
            "alice",
            [198, 51, 100, 7],
            SYDNEY,
        );
        event.set_kind(EventKind::LoginSucceeded, Outcome::Unknown);
        event
    };
    let lyon = |seconds: f64| {
        signed_in(
            seconds,
            EventKind::LoginSucceeded,
            "alice",
            [203, 0, 113, 9],
            LYON,
        )
    };
    for json in [false, true] {
        let mut detector = Detector::default();
        let mut check = |event: &AuditEvent| {
            if json {
                detector.check_json(&serde_json::to_value(event).unwrap())
            } else {
                detector.check(event, &service)
            }
        };
        // Neither after the user's sign-in, nor before it, is a guess a trip.
        assert!(check(&lyon(0.0)).is_empty());
        assert!(check(&guess(600.0)).is_empty(), "json: {json}");
        assert!(check(&lyon(1200.0)).is_empty(), "json: {json}");
        // The user's real sign-ins are compared with each other still.
        let alerts = check(&signed_in(
            1800.0,
            EventKind::LoginSucceeded,
            "alice",
            [198, 51, 100, 7],
            SYDNEY,
        ));
        assert_eq!(alerts.len(), 1, "json: {json}");
        let alert = alerts[0].alert.as_ref().unwrap();
        assert_eq!(alert.travel.as_ref().unwrap().seconds, 600);
    }
}

#[test]
fn impossible_travel_counts_public_clients_tokens_and_cools_down_per_user() {
    let service = Arc::new(ServiceInfo::default());
    let mut detector = Detector::default();
    let ip = [203, 0, 113, 9];
    let far = [198, 51, 100, 7];
    let mut raised = Vec::new();
    // A public client's token in Lyon, then a browser authorization in Sydney, then back
    // and forth: one alert, the rest counted as suppressed in the next after the cooldown.
    raised.extend(detector.check(&token_issued(0.0, "alice", ip, LYON), &service));
    raised.extend(detector.check(
        &signed_in(600.0, EventKind::AuthorizationGranted, "alice", far, SYDNEY),
        &service,
    ));
    assert_eq!(raised.len(), 1);
    for minute in [20.0, 30.0, 40.0] {
        let (addr, place) = if minute == 30.0 {
            (far, SYDNEY)
        } else {
            (ip, LYON)
        };
        raised.extend(detector.check(
            &signed_in(
                minute * 60.0,
                EventKind::LoginSucceeded,
                "alice",
                addr,
                place,
            ),
            &service,
        ));
    }
    assert_eq!(raised.len(), 1, "cooling down");
    raised.extend(detector.check(
        &signed_in(
            120.0 * 60.0,
            EventKind::LoginSucceeded,
            "alice",
            far,
            SYDNEY,
        ),
        &service,
    ));
    assert_eq!(raised.len(), 2, "after the cooldown");
    assert_eq!(raised[1].alert.as_ref().unwrap().suppressed, Some(3));
    // Memory per user is bounded by the cap.
    let mut small = Detector::default().max_keys(8);
    for user in 0..100 {
        small.check(
            &signed_in(
                1.0,
                EventKind::LoginSucceeded,
                &format!("u{user}"),
                ip,
                LYON,
            ),
            &service,
        );
    }
    assert!(small.stats().places <= 8, "{:?}", small.stats());
}

#[test]
fn bindings_unproven_are_alerted_live_and_read_back() {
    use crate::dpop::ProofOutcome;
    use crate::event::{BindingMethod, OAuthDetails, TokenBinding};
    let bound = |seconds: f64, token: &str, binding: TokenBinding| {
        let mut event = with_token(
            at(seconds, EventKind::ResourceAccessed),
            token,
            Verdict::Valid,
        );
        if let Some(details) = event.token.as_mut() {
            details.binding = Some(Box::new(binding));
        }
        event
    };
    let binding = |method, proof, downgrade| TokenBinding {
        downgrade,
        jkt: (method == BindingMethod::Dpop).then(|| "key-a".to_owned()),
        method,
        proof: Some(proof),
        proof_jkt: None,
        proof_x5t_s256: None,
        x5t_s256: (method == BindingMethod::Mtls).then(|| "cert-a".to_owned()),
    };
    // A token endpoint request whose proof was seen before: keyed by the proof's key.
    let mut replayed_at_token = failed(4.0, EventKind::TokenRequestFailed, "invalid_grant");
    replayed_at_token.oauth = Some(Box::new(OAuthDetails {
        dpop: Some(TokenBinding {
            jkt: Some("key-b".into()),
            ..binding(BindingMethod::Dpop, ProofOutcome::Replayed, false)
        }),
        ..OAuthDetails::default()
    }));
    let events = [
        bound(
            0.0,
            "t1",
            binding(BindingMethod::Dpop, ProofOutcome::Valid, false),
        ),
        bound(
            1.0,
            "t1",
            binding(BindingMethod::Dpop, ProofOutcome::Replayed, false),
        ),
        bound(
            2.0,
            "t2",
            binding(BindingMethod::Dpop, ProofOutcome::Missing, true),
        ),
        // A certificate-bound token with no certificate at all.
        bound(
            3.0,
            "t3",
            binding(BindingMethod::Mtls, ProofOutcome::Missing, true),
        ),
        replayed_at_token,
    ];
    let expected = [
        "dpop_proof_replay",
        "binding_downgrade",
        "binding_downgrade",
        "dpop_proof_replay",
    ];
    assert_eq!(fired(&events), expected);
    let mut offline = Detector::default();
    let read_back: Vec<String> = events
        .iter()
        .flat_map(|e| offline.check_json(&serde_json::to_value(e).unwrap()))
        .map(|a| a.alert.unwrap().rule)
        .collect();
    assert_eq!(read_back, expected);
}

/// One event stamped far in the future (NATS and offline input carry their own
/// `time`; a service with a wrong clock does too) must not blind its group: the honest
/// events after it are not late, live they are the newest.
#[test]
fn one_future_event_does_not_blind_a_group() {
    let ip = [203, 0, 113, 9];
    // Live: the honest events are stamped now (the test's T0 is in the past).
    let now = (Timestamp::now().unix_micros() - T0) as f64 / 1e6;
    let mut events = vec![login_failed(now + 10.0 * 365.0 * 86_400.0, "alice", ip)];
    events.extend((0..10).map(|i| login_failed(now - 10.0 + i as f64, "alice", ip)));
    assert_eq!(fired(&events), ["brute_force"]);
}

/// The IPv4 addresses of RFC 6052's well-known NAT64 prefix (64:ff9b::/96, as an
/// IPv6-only service behind SIIT or NAT64 sees every IPv4 client) are as many clients as
/// addresses, not one /64.
#[test]
fn nat64_addresses_are_ipv4_clients() {
    let used = |i: usize, last: u8| {
        let mut e = with_token(
            at(i as f64, EventKind::ResourceAccessed),
            "token-a",
            Verdict::Valid,
        );
        let v6: std::net::Ipv6Addr = format!("64:ff9b::c000:2{last:02x}").parse().unwrap();
        e.source = Some(Source {
            ip: Some(v6.into()),
            ..Source::default()
        });
        e
    };
    assert_eq!(
        fired(&[used(0, 1), used(1, 2), used(2, 1), used(3, 3)]),
        ["token_shared"]
    );
}

#[test]
fn revoked_tokens_forgotten_to_stay_within_the_cap_are_counted() {
    // RFC 7009 has the server answer `200` to a revocation of any string: whoever can call
    // the endpoint can push the revocations of real tokens out of the detector's memory,
    // and a use of one of those would then raise nothing. That must not go unseen.
    let mut detector = Detector::default().max_keys(100);
    let service = Arc::new(ServiceInfo::default());
    for i in 0..1_000u32 {
        let revoked = with_token(
            at(f64::from(i) / 100.0, EventKind::TokenRevoked),
            &format!("junk-{i}"),
            Verdict::Valid,
        );
        assert!(detector.check(&revoked, &service).is_empty());
    }
    let stats = detector.stats();
    assert!(stats.tokens <= 100, "{stats:?}");
    assert_eq!(stats.tokens + stats.evicted, 1_000, "{stats:?}");
}

#[test]
fn places_forgotten_to_stay_within_the_cap_are_counted() {
    let mut detector = Detector::default().max_keys(100);
    let service = Arc::new(ServiceInfo::default());
    for i in 0..1_000u32 {
        let sign_in = signed_in(
            f64::from(i),
            EventKind::LoginSucceeded,
            &format!("user-{i}"),
            [192, 0, 2, 9],
            PARIS,
        );
        assert!(detector.check(&sign_in, &service).is_empty());
    }
    let stats = detector.stats();
    assert!(stats.places <= 100, "{stats:?}");
    assert_eq!(stats.places + stats.evicted, 1_000, "{stats:?}");
}

/// A 6to4 address (RFC 3056, 2002:V4ADDR::/48) is its IPv4 host's: the host writes the 16
/// bits after its address as it likes, so by /64 one host would be 65,536 clients.
#[test]
fn six_to_four_addresses_are_their_ipv4_host() {
    let guesses: Vec<_> = (0..10u16)
        .map(|i| {
            let mut e = login_failed(f64::from(i), "alice", [0, 0, 0, 0]);
            let v6: std::net::Ipv6Addr = format!("2002:cb00:7109:{i:x}::1").parse().unwrap();
            e.source = Some(Source {
                ip: Some(v6.into()),
                ..Source::default()
            });
            e
        })
        .collect();
    let mut detector = Detector::default();
    let service = Arc::new(ServiceInfo::default());
    let alerts: Vec<_> = guesses
        .iter()
        .flat_map(|e| detector.check(e, &service))
        .collect();
    assert_eq!(alerts.len(), 1);
    let alert = alerts[0].alert.as_ref().unwrap();
    assert_eq!(alert.rule, "brute_force");
    assert_eq!(alert.key, "actor.subject=alice source.ip=203.0.113.9");
}
