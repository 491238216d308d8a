//! The formats against every kind: sample events with every field the kind can carry,
//! mapped to ECS and OCSF, checked for their categorisation, for what they keep, and
//! against the published schemas (`tests/data/ecs/`, and OCSF's schema as a PyPI package
//! ships it).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::{EventFormat, ECS_VERSION, OCSF_VERSION};
use crate::event::{
    ActorKind, Alert, AuditEvent, AutonomousSystem, ChainLink, Checkpoint, ClientAuth, DropReason,
    Dropped, ErrorInfo, EventHash, EventKind, Geo, HttpInfo, OAuthDetails, Outcome, Place,
    SeqRange, ServiceInfo, Source, Timestamp, TokenDetails, TokenRef, Travel, UnverifiedClaims,
};
use crate::token::{TokenFingerprint, TokenFormat, Verdict};
use ecs_fields::{leaves, EcsFields};

/// Shared with the integration tests, which check the demo's ECS output with it.
#[path = "../../tests/support/ecs_fields.rs"]
pub(super) mod ecs_fields;

fn time(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn token() -> TokenDetails {
    let mut token = TokenDetails::from_fingerprint(TokenFingerprint::of("access-token-a"));
    token.format = Some(TokenFormat::Jwt);
    token.jti = Some("683641aa-15b7-448d-9750-f1febcc8521a".into());
    token.issuer = Some("http://demo.local".into());
    token.audience = strings(&["demo-api"]);
    token.issued_at = Some(time("2026-12-01T23:22:11Z"));
    token.expires_at = Some(time("2026-12-01T23:27:11Z"));
    token.type_hint = Some("Bearer".into());
    token.verdict = Some(Verdict::Valid);
    token.binding = Some(Box::new(crate::event::TokenBinding {
        downgrade: true,
        jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
        method: crate::event::BindingMethod::Dpop,
        proof: Some(crate::dpop::ProofOutcome::KeyMismatch),
        proof_jkt: Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into()),
        proof_x5t_s256: None,
        x5t_s256: Some("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2".into()),
    }));
    token
}

/// An event of `kind` with every field that kind can carry (after the examples of
/// `docs/events.md`).
pub(super) fn sample(kind: EventKind) -> AuditEvent {
    use EventKind::*;
    let service = Arc::new(ServiceInfo {
        name: "demo".into(),
        instance: Some("demo-1".into()),
    });
    let outcome = match kind {
        TokenRequestFailed
        | TokenRevocationFailed
        | TokenIntrospectionFailed
        | AuthorizationFailed
        | LoginFailed
        | LogoutFailed
        | AccessDenied
        | AuditEventsDropped => Outcome::Failure,
        SecurityAlert => Outcome::Unknown,
        _ => Outcome::Success,
    };
    let mut event = AuditEvent::new(service, time("2026-12-01T23:22:11.589236Z"), kind, outcome);
    event.labels.insert("deployment".into(), "demo".into());
    let stream: Arc<str> = Arc::from("01a233ea-6ede-702b-bbfe-fdec27e4778b");
    event.chain = Some(Box::new(ChainLink {
        prev: Some(EventHash([7; 32])),
        seq: 17,
        stream: stream.clone(),
    }));
    if matches!(kind, AuditEventsDropped | AuditCheckpoint) {
        match kind {
            AuditEventsDropped => {
                event.chain = None;
                event.dropped = Some(Box::new(Dropped {
                    count: 348,
                    ranges: vec![SeqRange {
                        first: 299,
                        last: 646,
                        stream,
                    }],
                    reason: DropReason::QueueFull,
                    signature: Some("demo KXQZf0ZkeLDLnT04T7EBL9J0xkwRVrvs".into()),
                    sink: "file:/var/log/audit.jsonl".into(),
                }));
            }
            _ => {
                event.checkpoint = Some(Box::new(Checkpoint {
                    hash: EventHash([9; 32]),
                    note: "oauth-audit/01a233ea\n100\n8Ym4cOS4\n\n\u{2014} demo KXQZfzpb\n".into(),
                    seq: 100,
                    stream,
                }));
            }
        }
        return event;
    }

    event.request_id = Some("01a233ea-6f05-74bc-9994-df2b87d66af2".into());
    event.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
    event.span_id = Some("00f067aa0ba902b7".into());
    event.source = Some(Source {
        forwarded_for: strings(&["203.0.113.10", "unknown"]),
        forwarded_headers: BTreeMap::from([("x-forwarded-proto".to_owned(), "https".to_owned())]),
        ip: Some("203.0.113.10".parse().unwrap()),
        user_agent: Some("demo-browser/1.0".into()),
        geo: Some(Box::new(Geo {
            city: Some("Lyon".into()),
            country: Some("FR".into()),
            lat: Some(45.75),
            lon: Some(4.85),
            region: Some("Auvergne-Rhone-Alpes".into()),
            region_code: Some("FR-ARA".into()),
            ..Geo::default()
        })),
        r#as: Some(AutonomousSystem::new(64500, Some("Example Transit".into()))),
    });
    let (method, path) = match kind {
        AccessTokenIssued | TokenRequestFailed => ("POST", "/token"),
        TokenRevoked | TokenRevocationFailed => ("POST", "/revoke"),
        TokenIntrospected | TokenIntrospectionFailed => ("POST", "/introspect"),
        AuthorizationRequested | AuthorizationGranted | AuthorizationFailed => {
            ("GET", "/authorize")
        }
        LoginSucceeded | LoginFailed => ("POST", "/login"),
        LogoutSucceeded | LogoutFailed => ("GET", "/session/end"),
        _ => ("GET", "/api/orders/42"),
    };
    let status = match kind {
        AuthorizationGranted | LoginSucceeded | LoginFailed | LogoutSucceeded => 303,
        TokenRequestFailed | AuthorizationFailed | LogoutFailed => 400,
        TokenRevocationFailed | TokenIntrospectionFailed | AccessDenied => 401,
        _ => 200,
    };
    if kind != SecurityAlert {
        event.http = Some(HttpInfo {
            duration_ms: 0.493,
            method: method.into(),
            path: path.into(),
            route: Some(if path.starts_with("/api/") {
                "/api/orders/{id}".into()
            } else {
                path.into()
            }),
            status: Some(status),
        });
    }
    event.actor.client_id = Some("web".into());
    event.actor.subject = Some("alice".into());
    event.actor.kind = Some(ActorKind::User);
    if outcome == Outcome::Failure {
        event.error = Some(ErrorInfo {
            code: "invalid_grant".into(),
            description: Some("bad username or password".into()),
        });
    }
    match kind {
        AccessTokenIssued | TokenRequestFailed => {
            event.client_auth = Some(ClientAuth::ClientSecretBasic);
            event.grant_type = Some("refresh_token".into());
            event.scopes.requested = Some(strings(&["profile", "orders:read"]));
            if kind == AccessTokenIssued {
                event.scopes.granted = Some(strings(&["profile", "orders:read"]).into());
                event.token = Some(token().into());
                event.refresh_token = Some(Box::new(TokenRef::new(TokenFingerprint::of(
                    "refresh-token-b",
                ))));
            }
            event.actor.delegation = vec![
                crate::token::Delegate {
                    client_id: Some("gateway-svc".into()),
                    issuer: Some("https://as.example".into()),
                    subject: Some("gateway".into()),
                },
                crate::token::Delegate {
                    client_id: None,
                    issuer: None,
                    subject: Some("billing".into()),
                },
            ];
            event.oauth = Some(Box::new(OAuthDetails {
                act: Some("gateway".into()),
                actor_token: Some(TokenRef::new(TokenFingerprint::of("actor-token"))),
                actor_token_type: Some("urn:ietf:params:oauth:token-type:jwt".into()),
                audience: strings(&["orders"]),
                auth_req_id_fingerprint: None,
                body_inspected: Some(false),
                body_not_inspected: strings(&["response_too_large"]),
                conflicting_client_id: Some("other-app".into()),
                conflicting_client_ids: strings(&["other-app", "third-app"]),
                device_code_fingerprint: Some(TokenFingerprint::of("device-code")),
                dpop: Some(crate::event::TokenBinding {
                    downgrade: false,
                    jkt: Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I".into()),
                    method: crate::event::BindingMethod::Dpop,
                    proof: Some(crate::dpop::ProofOutcome::Valid),
                    proof_jkt: None,
                    proof_x5t_s256: None,
                    x5t_s256: None,
                }),
                endpoint: None,
                issued_token_type: Some("urn:ietf:params:oauth:token-type:access_token".into()),
                pkce_method: Some("verifier_sent".into()),
                presented_refresh_token: Some(TokenRef::new(TokenFingerprint::of(
                    "refresh-token-a",
                ))),
                pushed: None,
                reason: None,
                repeated: Some(3),
                repeated_parameters: strings(&["scope"]),
                request_uri_fingerprint: None,
                requested_token_type: Some("urn:ietf:params:oauth:token-type:jwt".into()),
                resource: strings(&["https://orders.example/"]),
                response_type: None,
                subject_token: Some(TokenRef::new(TokenFingerprint::of("subject-token"))),
                subject_token_type: Some("urn:ietf:params:oauth:token-type:access_token".into()),
            }));
        }
        TokenRevoked | TokenRevocationFailed => {
            event.actor.subject = None;
            event.actor.kind = Some(ActorKind::Client);
            event.client_auth = Some(ClientAuth::PrivateKeyJwt);
            let mut token = token();
            token.type_hint = Some("access_token".into());
            event.token = Some(token.into());
            event.oauth = Some(Box::new(OAuthDetails {
                reason: Some("user signed out".into()),
                ..OAuthDetails::default()
            }));
        }
        TokenIntrospected | TokenIntrospectionFailed => {
            event.actor.subject = None;
            event.actor.client_id = Some("reporting".into());
            event.actor.kind = Some(ActorKind::Client);
            event.client_auth = Some(ClientAuth::ClientSecretPost);
            let mut token = token();
            if kind == TokenIntrospected {
                token.active = Some(true);
                token.subject = Some("bob".into());
                token.client_id = Some("web".into());
                event.scopes.granted = Some(strings(&["profile"]).into());
            }
            event.token = Some(token.into());
        }
        AuthorizationRequested | AuthorizationGranted | AuthorizationFailed => {
            event.actor.subject = None;
            event.actor.kind = Some(ActorKind::Client);
            event.redirect_uri = Some("https://app.demo/callback".into());
            event.scopes.requested = Some(strings(&["profile", "orders:read"]));
            event.oauth = Some(Box::new(OAuthDetails {
                // A CIBA request's reference, to map beside the others.
                auth_req_id_fingerprint: (kind == AuthorizationRequested)
                    .then(|| TokenFingerprint::of("auth-req-id")),
                pkce_method: Some("S256".into()),
                pushed: (kind == AuthorizationRequested).then_some(true),
                request_uri_fingerprint: Some(TokenFingerprint::of("urn:request_uri:x")),
                response_type: Some("code".into()),
                ..OAuthDetails::default()
            }));
        }
        LoginSucceeded | LoginFailed => {
            event.actor.client_id = None;
        }
        LogoutSucceeded | LogoutFailed => {
            event.redirect_uri = Some("https://app.demo/signed-out".into());
            let mut token = token();
            token.type_hint = Some("id_token".into());
            event.token = Some(token.into());
        }
        ResourceAccessed => {
            event.oauth = Some(Box::new(OAuthDetails {
                endpoint: Some("userinfo".into()),
                ..OAuthDetails::default()
            }));
            let mut token = token();
            // A protected route's token sent in the query (RFC 6750 §2.3).
            token.sent_in = Some(crate::event::TokenSentIn::Query);
            event.token = Some(token.into());
            event.scopes.granted = Some(strings(&["profile", "orders:read"]).into());
            event.scopes.required = Some(strings(&["orders:read"]).into());
            event.scopes.used = Some(strings(&["orders:read"]).into());
        }
        AccessDenied => {
            event.actor = crate::event::Actor {
                client_id: None,
                delegation: Vec::new(),
                kind: Some(ActorKind::Anonymous),
                subject: None,
            }
            .into();
            event.error = Some(ErrorInfo {
                code: "invalid_token".into(),
                description: Some("token expired".into()),
            });
            let mut token = token();
            token.verdict = Some(Verdict::Expired);
            token.truncated = vec!["scope"];
            token.unverified = Some(Box::new(UnverifiedClaims {
                client_id: Some("web".into()),
                delegation: vec![crate::token::Delegate {
                    client_id: None,
                    issuer: None,
                    subject: Some("gateway".into()),
                }],
                scopes: strings(&["profile", "admin"]),
                subject: Some("alice".into()),
            }));
            event.token = Some(token.into());
            event.scopes.required = Some(strings(&["admin"]).into());
            event.scopes.used = Some(Vec::new().into());
            event.scopes.missing = Some(strings(&["admin"]));
        }
        SecurityAlert => {
            event.request_id = None;
            event.trace_id = None;
            event.span_id = None;
            event.actor.client_id = None;
            event.actor.kind = None;
            // What a detector copies of the event that fired it.
            event.source = Some(Source {
                ip: Some("198.51.100.66".parse().unwrap()),
                user_agent: Some("python-requests/2.32.3".into()),
                ..Source::default()
            });
            event.alert = Some(Box::new(Alert {
                count: 10,
                evidence: strings(&[
                    "01a233ea-6f0e-74a1-b7ca-fabbc46042c5",
                    "01a233ea-6f10-7714-902b-0627a0528caf",
                ]),
                first_seen: Some(time("2026-12-01T23:22:11.598682Z")),
                key: "actor.subject=alice source.ip=198.51.100.66".into(),
                last_seen: Some(time("2026-12-01T23:22:11.611480Z")),
                rule: "brute_force".into(),
                suppressed: Some(2),
                title: Some("Repeated failed logins for one user from one address".into()),
                travel: None,
                window_s: 900,
            }));
        }
        AuditEventsDropped | AuditCheckpoint => unreachable!("returned above"),
    }
    event
}

/// Sample events of every kind, with variants that take other branches of the mappings.
pub(super) fn samples() -> Vec<AuditEvent> {
    let mut events: Vec<AuditEvent> = EventKind::ALL.into_iter().map(sample).collect();
    // A token request of another grant; a client-credentials token; nobody known at all; a
    // protected route that failed; an alert without its optional parts; a bare event.
    let mut other_grant = sample(EventKind::AccessTokenIssued);
    other_grant.grant_type = Some("authorization_code".into());
    events.push(other_grant);
    let mut client_credentials = sample(EventKind::AccessTokenIssued);
    client_credentials.actor.subject = None;
    client_credentials.actor.kind = Some(ActorKind::Client);
    events.push(client_credentials);
    let mut nobody = sample(EventKind::TokenIntrospectionFailed);
    nobody.actor = crate::event::Actor::default().into();
    nobody.source = None;
    events.push(nobody);
    let mut not_found = sample(EventKind::ResourceAccessed);
    not_found.set_kind(EventKind::ResourceAccessed, Outcome::Failure);
    if let Some(http) = &mut not_found.http {
        http.status = Some(404);
        http.route = None;
    }
    events.push(not_found);
    // An extension method, which OCSF's list of methods lacks.
    let mut purge = sample(EventKind::ResourceAccessed);
    if let Some(http) = &mut purge.http {
        http.method = "PURGE".into();
    }
    events.push(purge);
    let mut unreadable = sample(EventKind::ResourceAccessed);
    unreadable.set_kind(EventKind::ResourceAccessed, Outcome::Failure);
    unreadable.http = Some(HttpInfo {
        duration_ms: 0.0,
        method: Default::default(),
        path: Default::default(),
        route: None,
        status: Some(400),
    });
    events.push(unreadable);
    let mut bare_alert = sample(EventKind::SecurityAlert);
    bare_alert.actor = crate::event::Actor::default().into();
    bare_alert.source = None;
    if let Some(alert) = &mut bare_alert.alert {
        alert.title = None;
        alert.first_seen = None;
        alert.last_seen = None;
        alert.evidence.clear();
        alert.suppressed = None;
    }
    events.push(bare_alert);
    // An impossible-travel alert, with its trip, and a private address.
    let mut travel = sample(EventKind::SecurityAlert);
    if let Some(alert) = &mut travel.alert {
        alert.rule = "impossible_travel".into();
        alert.travel = Some(Travel {
            distance_km: 16_990,
            from: Place::new(
                Some("London".into()),
                Some("GB".into()),
                Some("198.51.100.7".into()),
            ),
            seconds: 1200,
            speed_kmh: 50_970,
            to: Place::new(
                Some("Sydney".into()),
                Some("AU".into()),
                Some("203.0.113.80".into()),
            ),
        });
    }
    events.push(travel);
    let mut private = sample(EventKind::LoginSucceeded);
    if let Some(source) = &mut private.source {
        source.ip = Some("10.1.2.3".parse().unwrap());
        source.r#as = None;
        source.geo = Some(Box::new(Geo {
            name: Some("private".into()),
            ..Geo::default()
        }));
    }
    events.push(private);
    events.push(AuditEvent::new(
        Arc::new(ServiceInfo {
            name: "bare".into(),
            instance: None,
        }),
        Timestamp::now(),
        EventKind::LoginSucceeded,
        Outcome::Unknown,
    ));
    events
}

pub(super) fn formatted(format: EventFormat, event: &AuditEvent) -> Value {
    let mut json = Vec::new();
    format.write(&mut json, event).unwrap();
    serde_json::from_slice(&json).unwrap()
}

#[test]
fn oauth_audit_is_schema_v1_in_rfc_8785_form() {
    for event in samples() {
        let mut json = b"before ".to_vec();
        EventFormat::OAuthAudit.write(&mut json, &event).unwrap();
        // The event's own JSON, as the reference JCS implementation writes it.
        let expected = serde_json_canonicalizer::to_string(&serde_json::to_value(&event).unwrap());
        assert_eq!(
            String::from_utf8(json).unwrap(),
            format!("before {}", expected.unwrap())
        );
    }
}

#[test]
fn every_kind_has_its_ecs_categorisation() {
    for event in samples() {
        let ecs = formatted(EventFormat::Ecs, &event);
        let what = format!("{}: {ecs}", event.kind);
        assert_eq!(ecs["ecs"]["version"], ECS_VERSION, "{what}");
        assert_eq!(ecs["event"]["action"], event.kind.as_str(), "{what}");
        assert_eq!(ecs["event"]["id"], event.id.to_string(), "{what}");
        assert_eq!(ecs["event"]["outcome"], event.outcome.as_str(), "{what}");
        assert_eq!(
            ecs["event"]["kind"],
            if event.kind == EventKind::SecurityAlert {
                "alert"
            } else {
                "event"
            },
            "{what}"
        );
        assert!(
            ecs["event"]["type"]
                .as_array()
                .is_some_and(|t| !t.is_empty()),
            "{what}"
        );
        assert_eq!(ecs["@timestamp"], serde_json::to_value(event.time).unwrap());
        if let Some(alert) = &event.alert {
            assert_eq!(ecs["rule"]["id"], alert.rule.as_str(), "{what}");
        }
        let category = &ecs["event"]["category"];
        let expected: &[&str] = match event.kind {
            EventKind::ResourceAccessed | EventKind::AccessDenied => &["api"],
            EventKind::SecurityAlert => &["intrusion_detection"],
            EventKind::AuditEventsDropped | EventKind::AuditCheckpoint => &[],
            _ => &["authentication"],
        };
        for name in expected {
            assert!(
                category.as_array().unwrap().contains(&Value::from(*name)),
                "{what}"
            );
        }
    }
}

#[test]
fn every_kind_has_its_ocsf_class_and_activity() {
    for event in samples() {
        let ocsf = formatted(EventFormat::Ocsf, &event);
        let what = format!("{}: {ocsf}", event.kind);
        let class = ocsf["class_uid"].as_u64().unwrap();
        let activity = ocsf["activity_id"].as_u64().unwrap();
        assert_eq!(ocsf["type_uid"], class * 100 + activity, "{what}");
        assert_eq!(ocsf["category_uid"], class / 1000, "{what}");
        assert_eq!(ocsf["metadata"]["version"], OCSF_VERSION, "{what}");
        assert_eq!(ocsf["metadata"]["product"]["name"], "oauth-audit", "{what}");
        assert_eq!(ocsf["metadata"]["uid"], event.id.to_string(), "{what}");
        assert_eq!(
            ocsf["metadata"]["event_code"],
            event.kind.as_str(),
            "{what}"
        );
        assert_eq!(ocsf["time"], event.time.unix_micros() / 1000, "{what}");
        let severity = match event.severity {
            crate::event::Severity::Info => 1,
            crate::event::Severity::Warning => 3,
            crate::event::Severity::Critical => 5,
        };
        assert_eq!(ocsf["severity_id"], severity, "{what}");
        let status = match (event.kind, event.outcome) {
            (EventKind::SecurityAlert, _) => 1, // a new finding
            (_, Outcome::Success) => 1,
            (_, Outcome::Failure) => 2,
            (_, Outcome::Unknown) => 0,
        };
        assert_eq!(ocsf["status_id"], status, "{what}");
        assert_eq!(
            ocsf.get("activity_name").is_some(),
            activity == 99,
            "{what}"
        );
        let (expected_class, expected_activity) = match event.kind {
            EventKind::AccessTokenIssued | EventKind::TokenRequestFailed => (
                3002,
                if event.grant_type.as_deref() == Some("refresh_token") {
                    5
                } else {
                    4
                },
            ),
            EventKind::TokenRevoked | EventKind::TokenRevocationFailed => (3002, 2),
            EventKind::LogoutSucceeded | EventKind::LogoutFailed => (3002, 2),
            EventKind::LoginSucceeded | EventKind::LoginFailed => (3002, 1),
            EventKind::AuthorizationRequested
            | EventKind::AuthorizationGranted
            | EventKind::AuthorizationFailed => (3002, 99),
            EventKind::TokenIntrospected | EventKind::TokenIntrospectionFailed => (6003, 2),
            EventKind::ResourceAccessed if event.outcome == Outcome::Failure => (6004, 4),
            EventKind::ResourceAccessed => (6004, 1),
            EventKind::AccessDenied => (6004, 2),
            EventKind::SecurityAlert => (2004, 1),
            EventKind::AuditEventsDropped | EventKind::AuditCheckpoint => (1008, 99),
        };
        assert_eq!(
            (class, activity),
            (expected_class, expected_activity),
            "{what}"
        );
        if class == 3002 {
            assert_eq!(ocsf["auth_protocol_id"], 6, "{what}");
            assert!(ocsf["user"].is_object(), "{what}");
        }
    }
}

/// What a format drops on purpose (`docs/formats.md`, "What is lost").
fn lost(format: EventFormat, path: &str) -> bool {
    match format {
        // `schema` names v1 itself; ECS gives the duration in nanoseconds.
        EventFormat::Ecs => path == "schema" || path == "http.duration_ms",
        // OCSF gives severity and outcome as numbers (`severity_id`, `status_id`, checked
        // in `every_kind_has_its_ocsf_class_and_activity`).
        EventFormat::Ocsf => path == "schema" || path == "severity" || path == "outcome",
        EventFormat::OAuthAudit => false,
    }
}

#[test]
fn every_value_of_the_event_is_kept() {
    for format in [EventFormat::Ecs, EventFormat::Ocsf] {
        for event in samples() {
            let v1 = serde_json::to_value(&event).unwrap();
            let mapped = formatted(format, &event);
            let mut kept = Vec::new();
            leaves(&mapped, "", &mut kept);
            let mut wanted = Vec::new();
            leaves(&v1, "", &mut wanted);
            for (path, value) in wanted {
                if lost(format, &path) {
                    continue;
                }
                let found = kept.iter().any(|(_, k)| match (k, &value) {
                    (Value::String(k), Value::String(v)) => k.eq_ignore_ascii_case(v),
                    (k, v) => k == v,
                });
                assert!(
                    found,
                    "{format}, {}: {path} = {value} is not in {mapped}",
                    event.kind
                );
            }
        }
    }
}

#[test]
fn tokens_appear_only_as_fingerprints() {
    for format in [EventFormat::Ecs, EventFormat::Ocsf] {
        for event in samples() {
            let text = formatted(format, &event).to_string();
            for secret in [
                "access-token-a",
                "refresh-token-a",
                "refresh-token-b",
                "device-code",
            ] {
                assert!(!text.contains(secret), "{format}: {secret} in {text}");
            }
            if let Some(token) = &event.token {
                assert!(text.contains(&token.fingerprint.to_string()), "{format}");
            }
        }
    }
}

#[test]
fn format_names_are_the_settings() {
    for format in [EventFormat::OAuthAudit, EventFormat::Ecs, EventFormat::Ocsf] {
        assert_eq!(format.as_str().parse::<EventFormat>(), Ok(format));
        let setting: EventFormat = serde_json::from_value(Value::from(format.as_str())).unwrap();
        assert_eq!(setting, format);
    }
    assert_eq!(EventFormat::default(), EventFormat::OAuthAudit);
    assert!("json".parse::<EventFormat>().is_err());
}

#[test]
fn ecs_documents_match_the_pinned_ecs_fields() {
    let ecs = EcsFields::pinned();
    assert_eq!(
        ecs.version, ECS_VERSION,
        "the pinned fields are another version's"
    );
    let mut kinds = std::collections::BTreeSet::new();
    for event in samples() {
        let document = formatted(EventFormat::Ecs, &event);
        let problems = ecs.problems(&document);
        assert!(
            problems.is_empty(),
            "{}: {problems:#?}\n{document}",
            event.kind
        );
        kinds.insert(event.kind.as_str());
    }
    assert_eq!(kinds.len(), EventKind::ALL.len());
}

#[test]
fn the_ecs_check_catches_what_is_not_ecs() {
    let ecs = EcsFields::pinned();
    let mut document = formatted(EventFormat::Ecs, &sample(EventKind::AccessDenied));
    document["event"]["kind"] = "signal".into();
    document["event"]["category"] = serde_json::json!(["authentication"]);
    document["http"]["response"]["status_code"] = "401".into();
    document["user"]["nickname"] = "al".into();
    document["source"]["ip"] = "not-an-ip".into();
    let problems = ecs.problems(&document).join("\n");
    for expected in [
        "event.kind signal",
        "event.type \"access\" is not one ECS expects for category \"authentication\"",
        "http.response.status_code = \"401\" is not of ECS type long",
        "user.nickname is not an ECS",
        "source.ip = \"not-an-ip\" is not of ECS type ip",
    ] {
        assert!(
            problems.contains(expected),
            "{expected} not in:\n{problems}"
        );
    }
}

/// Runs `tests/ocsf/validate.py` on OCSF events; returns whether all were valid, and what
/// it said.
fn validate_ocsf(events: &[Value]) -> (bool, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/ocsf-venv/bin/python");
    assert!(
        python.exists(),
        "{} missing: scripts/test installs it (scripts/lib/install.sh, install_ocsf_validator)",
        python.display()
    );
    let mut lines = String::new();
    for event in events {
        lines.push_str(&event.to_string());
        lines.push('\n');
    }
    let path =
        std::env::temp_dir().join(format!("oauth-audit-ocsf-{}.jsonl", uuid::Uuid::now_v7()));
    std::fs::write(&path, lines).unwrap();
    let output = std::process::Command::new(python)
        .arg(root.join("tests/ocsf/validate.py"))
        .arg(OCSF_VERSION)
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

#[test]
fn ocsf_events_validate_against_the_published_schema() {
    let events: Vec<Value> = samples()
        .iter()
        .map(|event| formatted(EventFormat::Ocsf, event))
        .collect();
    let (valid, said) = validate_ocsf(&events);
    assert!(valid, "{said}");
    assert!(
        said.contains(&format!(
            "{} events checked against OCSF {OCSF_VERSION}, 0 invalid",
            events.len()
        )),
        "{said}"
    );
}

#[test]
fn the_ocsf_validation_catches_what_is_not_ocsf() {
    let mut no_user = formatted(EventFormat::Ocsf, &sample(EventKind::LoginFailed));
    no_user.as_object_mut().unwrap().remove("user");
    let mut unknown = formatted(EventFormat::Ocsf, &sample(EventKind::AccessDenied));
    unknown["oauth"] = serde_json::json!({"grant_type": "password"});
    let mut wrong_type_uid = formatted(EventFormat::Ocsf, &sample(EventKind::SecurityAlert));
    wrong_type_uid["type_uid"] = 200402.into();
    for (event, expected) in [
        (no_user, "'user' is a required property"),
        (unknown, "'oauth' was unexpected"),
        (
            wrong_type_uid,
            "type_uid 200402 is not class_uid * 100 + activity_id",
        ),
    ] {
        let (valid, said) = validate_ocsf(&[event]);
        assert!(
            !valid && said.contains(expected),
            "{expected} not in:\n{said}"
        );
    }
}
