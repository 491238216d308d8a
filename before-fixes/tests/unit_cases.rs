//! ADDED for the verification on db9ff9d (not on main): cases whose test on main is a unit
//! test inside `src/`, written here against the public API so that they can run on the code
//! before issue 10. Each follows its unit test on main as closely as the old API allows.

mod support;

use std::sync::Arc;

use axum::{http::StatusCode, routing::get, Router};
use oauth_audit::event::{
    sanitize, Actor, AuditEvent, EventKind, OAuthDetails, Outcome, Scopes, ServiceInfo, Source,
    Timestamp, TokenDetails,
};
use oauth_audit::token::TokenFingerprint;
use oauth_audit::AuditLayer;
use support::{client, events, memory_auditor, serve};

/// Main: `src/event/sanitize.rs` (now `src/text.rs`)
/// `tests::escapes_separators_bidi_and_invisible_characters`, through the public
/// `oauth_audit::event::sanitize`.
#[test]
fn escapes_separators_bidi_and_invisible_characters() {
    for c in [
        '\u{2028}',
        '\u{2029}',
        '\u{202A}',
        '\u{202E}',
        '\u{2066}',
        '\u{2069}',
        '\u{200B}',
        '\u{200F}',
        '\u{FEFF}',
        '\u{2060}',
        '\u{00AD}',
        '\u{061C}',
        '\u{E0041}',
    ] {
        let out = sanitize(&format!("a{c}b"), 64);
        assert_eq!(out, format!("a{}b", c.escape_unicode()), "{c:?}");
    }
    assert_eq!(sanitize("é ü 日本 ok", 64), "é ü 日本 ok");
}

fn empty_objects(value: &serde_json::Value, path: &str, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Null => found.push(format!("{path} = null")),
        serde_json::Value::Object(map) if map.is_empty() => found.push(format!("{path} = {{}}")),
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                empty_objects(value, &format!("{path}.{key}"), found);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                empty_objects(value, &format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// Main: `src/event/model.rs` `tests::every_object_is_left_out_when_empty`, without
/// `token.unverified` (`UnverifiedClaims` did not exist before issue 10).
#[test]
fn every_object_is_left_out_when_empty() {
    let mut event = AuditEvent::new(
        Arc::new(ServiceInfo::default()),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    event.actor = Actor::default();
    event.scopes = Scopes::default();
    event.token = Some(TokenDetails::from_fingerprint(TokenFingerprint::of("t")));
    event.oauth = Some(OAuthDetails::default());
    event.source = Some(Source::default());
    let json = serde_json::to_value(&event).unwrap();
    let mut found = Vec::new();
    empty_objects(&json, "", &mut found);
    assert!(found.is_empty(), "empty values written: {found:?} in {json}");
    for absent in ["actor", "scopes", "oauth", "source"] {
        assert!(json.get(absent).is_none(), "{absent}");
    }
}

/// Main: `src/event/error_code.rs` `tests::every_error_code_the_code_writes_is_documented`
/// scans the sources for the codes; here the layer writes one (a plain `403` on a protected
/// route) and the code it wrote must be listed in this checkout's `docs/events.md`.
#[tokio::test]
async fn the_error_code_of_a_refused_request_is_documented() {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor).build().unwrap();
    let app = Router::new()
        .route("/refuse", get(|| async { (StatusCode::FORBIDDEN, "no") }))
        .layer(layer);
    let addr = serve(app).await;
    let res = client()
        .get(format!("http://{addr}/refuse"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    res.bytes().await.unwrap();
    let e = &events(&memory, 1).await[0];
    let code = e["error"]["code"].as_str().expect("an error code").to_owned();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.md"))
        .unwrap();
    assert!(
        doc.contains(&format!("`{code}`")),
        "the layer wrote error.code {code:?}, which docs/events.md does not list"
    );
}
