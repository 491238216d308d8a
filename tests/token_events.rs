//! Protected-route events that match what happened: verified claims only in `actor` and
//! `scopes.granted`, kinds and outcomes from the route's answer, capped claim sizes, and a
//! trail that never contradicts its own record of a revocation.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::Algorithm;
use oauth_audit::token::{
    CachedResolver, Resolution, RevokedTokens, TokenClaims, TokenFingerprint, TokenInspector,
    Verdict,
};
use oauth_audit::{AuditLayer, RequiredScopes};
use serde_json::{json, Value};
use support::auth_server::{unsigned_jwt, AuthServer};
use support::keys::now;
use support::{client, events, memory_auditor, serve};

fn hmac_inspector() -> TokenInspector {
    TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, support::keys::HS256_SECRET)
        .build()
        .unwrap()
}

fn signed(claims: Value) -> String {
    support::keys::hs256(&claims)
}

/// GETs `url` with the bearer token and reads the whole answer (the event is emitted when
/// the response body ends).
async fn get_with(url: String, token: &str) -> u16 {
    let res = client()
        .get(url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    res.bytes().await.unwrap();
    status
}

#[tokio::test]
async fn unverified_claims_never_fill_actor_or_granted_scopes() {
    let forged = unsigned_jwt(
        "none",
        json!({"sub": "root", "client_id": "admin-console", "scope": "admin", "exp": now() + 600}),
    );
    for (inspector, verdict) in [
        (TokenInspector::default(), "unverified"),
        (hmac_inspector(), "bad_signature"),
    ] {
        let (auditor, memory) = memory_auditor();
        let layer = AuditLayer::builder(auditor)
            .token_inspector(inspector)
            .build()
            .unwrap();
        let app = Router::new()
            .route(
                "/admin",
                get(|| async { "ok" }).route_layer(RequiredScopes::all(["admin"])),
            )
            .layer(layer);
        let addr = serve(app).await;
        assert_eq!(get_with(format!("http://{addr}/admin"), &forged).await, 200);
        let e = &events(&memory, 1).await[0];
        assert_eq!(e["token"]["verdict"], verdict);
        assert_eq!(
            e["kind"], "ResourceAccessed",
            "{verdict}: the route served it"
        );
        assert_eq!(e["actor"]["kind"], "anonymous", "{verdict}");
        assert!(e["actor"].get("subject").is_none(), "{verdict}: {e}");
        assert!(e["actor"].get("client_id").is_none(), "{verdict}: {e}");
        assert!(e["scopes"].get("granted").is_none(), "{verdict}: {e}");
        assert_eq!(
            e["scopes"]["used"],
            json!([]),
            "{verdict}: no scope was granted"
        );
        assert_eq!(e["severity"], "warning", "{verdict}");
        assert_eq!(e["token"]["unverified"]["subject"], "root");
        assert_eq!(e["token"]["unverified"]["client_id"], "admin-console");
        assert_eq!(e["token"]["unverified"]["scopes"], json!(["admin"]));
    }
}

#[tokio::test]
async fn tokens_without_expiry_are_not_valid_unless_allowed() {
    let strict = hmac_inspector();
    let lenient = TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, support::keys::HS256_SECRET)
        .allow_missing_expiry(true)
        .build()
        .unwrap();
    let no_exp = signed(json!({"sub": "alice"}));
    let text_exp = signed(json!({"sub": "alice", "exp": "tomorrow"}));
    let with_exp = signed(json!({"sub": "alice", "exp": now() + 600}));
    assert_eq!(strict.inspect(&no_exp).verdict, Verdict::NoExpiry);
    assert_eq!(strict.inspect(&text_exp).verdict, Verdict::NoExpiry);
    assert_eq!(strict.inspect(&with_exp).verdict, Verdict::Valid);
    assert_eq!(lenient.inspect(&no_exp).verdict, Verdict::Valid);
    assert_eq!(lenient.inspect(&text_exp).verdict, Verdict::Valid);
}

#[tokio::test]
async fn kinds_outcomes_and_codes_follow_the_route() {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(hmac_inspector())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/items",
            get(|| async { "items" }).route_layer(RequiredScopes::all(["items:read"])),
        )
        .route("/refuse", get(|| async { (StatusCode::FORBIDDEN, "no") }))
        .layer(layer);
    let addr = serve(app).await;
    let token = signed(json!({"sub": "alice", "scope": "profile", "exp": now() + 600}));
    let http = client();

    // A valid token without the scope, on an audit-only route.
    assert_eq!(get_with(format!("http://{addr}/items"), &token).await, 200);
    // A malformed bearer credential, served anyway.
    let res = http
        .get(format!("http://{addr}/items?m=1"))
        .header("authorization", "Bearer not a token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    assert_eq!(
        get_with(format!("http://{addr}/nowhere"), &token).await,
        404
    );
    let res = http
        .post(format!("http://{addr}/items"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    res.bytes().await.unwrap();
    assert_eq!(get_with(format!("http://{addr}/refuse"), &token).await, 403);

    let all = events(&memory, 5).await;
    let missing = &all[0];
    assert_eq!(missing["kind"], "ResourceAccessed");
    assert_eq!(missing["outcome"], "success");
    assert_eq!(
        missing["severity"], "warning",
        "a missing scope is worth a look"
    );
    assert_eq!(missing["scopes"]["missing"], json!(["items:read"]));
    assert_eq!(missing["actor"]["subject"], "alice");

    let malformed = &all[1];
    assert_eq!(malformed["kind"], "ResourceAccessed", "nothing was denied");
    assert_eq!(malformed["token"]["verdict"], "malformed");
    assert_eq!(malformed["severity"], "warning");
    assert_eq!(malformed["error"]["code"], "malformed");

    let not_found = &all[2];
    assert_eq!(not_found["kind"], "ResourceAccessed");
    assert_eq!(not_found["outcome"], "failure");
    assert_eq!(not_found["error"]["code"], "not_found");

    let not_allowed = &all[3];
    assert_eq!(not_allowed["outcome"], "failure");
    assert_eq!(not_allowed["error"]["code"], "method_not_allowed");

    let refused = &all[4];
    assert_eq!(refused["kind"], "AccessDenied");
    assert_eq!(refused["error"]["code"], "forbidden");
}

/// A router's `RequiredScopes` around a route's own: the outer layer's decision replaced the
/// inner one's, so the event of a route served (audit only) or refused without the route's
/// own scope said that every required scope had been used.
#[tokio::test]
async fn a_route_under_two_scope_requirements_records_both() {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(hmac_inspector())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/admin/users",
            get(|| async { "users" }).route_layer(RequiredScopes::all(["admin"])),
        )
        .route(
            "/admin/keys",
            get(|| async { "keys" }).route_layer(RequiredScopes::all(["admin"]).enforce()),
        )
        .route_layer(RequiredScopes::all(["api"]))
        .layer(layer);
    let addr = serve(app).await;
    let token = signed(json!({"sub": "bob", "scope": "api", "exp": now() + 600}));
    assert_eq!(
        get_with(format!("http://{addr}/admin/users"), &token).await,
        200
    );
    assert_eq!(
        get_with(format!("http://{addr}/admin/keys"), &token).await,
        403
    );
    let all = events(&memory, 2).await;
    for path in ["/admin/users", "/admin/keys"] {
        let e = all.iter().find(|e| e["http"]["path"] == path).unwrap();
        assert_eq!(
            e["scopes"]["required"],
            json!(["api", "admin"]),
            "{path}: {e}"
        );
        assert_eq!(e["scopes"]["used"], json!(["api"]), "{path}");
        assert_eq!(e["scopes"]["missing"], json!(["admin"]), "{path}");
        assert_eq!(e["severity"], "warning", "{path}");
    }
}

#[tokio::test]
async fn claim_sizes_are_capped_and_the_cut_is_said() {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(hmac_inspector())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    let scopes: Vec<String> = (0..12_000).map(|i| format!("scope-{i}")).collect();
    let token = signed(json!({
        "sub": "s".repeat(5_000), "scope": scopes.join(" "), "aud": vec!["api"; 500],
        "jti": "j".repeat(5_000), "iss": "i".repeat(5_000), "exp": now() + 600
    }));
    assert!(token.len() > 100_000);
    assert_eq!(get_with(format!("http://{addr}/api"), &token).await, 200);
    let e = &events(&memory, 1).await[0];
    let size = serde_json::to_string(e).unwrap().len();
    assert!(size < 24_000, "event of {size} bytes");
    assert_eq!(e["token"]["verdict"], "valid");
    assert_eq!(
        e["scopes"]["granted"].as_array().unwrap().len(),
        oauth_audit::token::MAX_SCOPES
    );
    assert_eq!(
        e["actor"]["subject"].as_str().unwrap().len(),
        oauth_audit::token::MAX_CLAIM_BYTES
    );
    let truncated: Vec<&str> = e["token"]["truncated"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for claim in ["sub", "scope", "aud", "jti", "iss"] {
        assert!(truncated.contains(&claim), "{claim} in {truncated:?}");
    }
}

fn fingerprint(token: &str) -> String {
    oauth_audit::token::TokenFingerprint::of(token).to_string()
}

#[tokio::test]
async fn the_trail_never_contradicts_its_own_revocations() {
    // A real authorization server: one listener unaudited (the resolver's and the test's
    // side door), and the same server behind the audit layer with the API.
    let auth = AuthServer::new();
    let direct = serve(auth.router()).await;
    let introspections = Arc::new(AtomicUsize::new(0));
    let counter = introspections.clone();
    let http = client();
    let introspect_url = format!("http://{direct}/introspect");
    let resolver = CachedResolver::new(move |token: String| {
        counter.fetch_add(1, Ordering::SeqCst);
        let http = http.clone();
        let url = introspect_url.clone();
        async move {
            let Ok(answer) = http
                .post(&url)
                .basic_auth("rs", Some("rs-secret"))
                .form(&[("token", token.as_str())])
                .send()
                .await
            else {
                return Resolution::Unavailable;
            };
            let Ok(answer) = answer.json::<Value>().await else {
                return Resolution::Unavailable;
            };
            Some(TokenClaims::from_json(&answer))
                .filter(|_| answer["active"] == true)
                .into()
        }
    });
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(hmac_inspector())
        .token_resolver(resolver)
        .build()
        .unwrap();
    let app = auth
        .router()
        .route(
            "/api/orders",
            get(|| async { "orders" }).route_layer(RequiredScopes::all(["read"])),
        )
        .layer(layer);
    let addr = serve(app).await;
    let http = client();
    let issue = || async {
        let answer: Value = client()
            .post(format!("http://{direct}/token"))
            .basic_auth("svc", Some("svc-secret"))
            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    };
    let orders = format!("http://{addr}/api/orders");

    // An opaque token: valid (and cached), revoked through the audited endpoint, used again.
    let opaque = issue().await;
    assert_eq!(get_with(orders.clone(), &opaque).await, 200);
    let first = &events(&memory, 1).await[0];
    assert_eq!(first["token"]["fingerprint"], fingerprint(&opaque).as_str());
    assert_eq!(first["token"]["verdict"], "valid");
    assert_eq!(first["scopes"]["used"], json!(["read"]));
    let res = http
        .post(format!("http://{addr}/revoke"))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("token", opaque.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    events(&memory, 2).await;
    assert_eq!(get_with(orders.clone(), &opaque).await, 200);
    let all = events(&memory, 3).await;
    assert_eq!(all[1]["kind"], "TokenRevoked");
    assert_eq!(all[2]["token"]["verdict"], "revoked", "{}", all[2]);
    assert_eq!(all[2]["scopes"]["used"], json!([]));
    assert!(all[2]["actor"].get("client_id").is_none());

    // A JWT the layer verified and cached as valid, then revoked through the trail.
    let jwt = signed(json!({"sub": "alice", "scope": "read", "exp": now() + 600}));
    assert_eq!(get_with(orders.clone(), &jwt).await, 200);
    events(&memory, 4).await;
    let res = http
        .post(format!("http://{addr}/revoke"))
        .basic_auth("web", Some("web-secret"))
        .form(&[("token", jwt.as_str()), ("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    events(&memory, 5).await;
    assert_eq!(get_with(orders.clone(), &jwt).await, 200);
    let all = events(&memory, 6).await;
    assert_eq!(all[3]["token"]["verdict"], "valid");
    assert_eq!(all[5]["token"]["verdict"], "revoked");

    // Revoked behind the trail's back, then introspected through it: the inactive answer
    // it recorded invalidates the cached `valid`.
    let quiet = issue().await;
    assert_eq!(get_with(orders.clone(), &quiet).await, 200);
    events(&memory, 7).await;
    client()
        .post(format!("http://{direct}/revoke"))
        .basic_auth("svc", Some("svc-secret"))
        .form(&[("token", quiet.as_str())])
        .send()
        .await
        .unwrap();
    let answer: Value = http
        .post(format!("http://{addr}/introspect"))
        .basic_auth("rs", Some("rs-secret"))
        .form(&[("token", quiet.as_str())])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["active"], false);
    events(&memory, 8).await;
    assert_eq!(get_with(orders.clone(), &quiet).await, 200);
    let all = events(&memory, 9).await;
    assert_eq!(all[6]["token"]["verdict"], "valid");
    assert_eq!(all[7]["kind"], "TokenIntrospected");
    assert_eq!(all[8]["token"]["verdict"], "revoked");
    assert_eq!(
        introspections.load(Ordering::SeqCst),
        2,
        "revoked tokens are not introspected again"
    );
}

#[tokio::test]
async fn introspected_users_are_named_by_username() {
    let introspection = Router::new().route(
        "/introspect",
        post(|Form(_form): Form<Vec<(String, String)>>| async {
            Json(
                json!({"active": true, "username": "alice", "client_id": "web",
                        "scope": "read", "exp": now() + 600}),
            )
        }),
    );
    let as_addr = serve(introspection).await;
    let http = client();
    let url = format!("http://{as_addr}/introspect");
    let resolver = CachedResolver::new(move |token: String| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let answer: Value = http
                .post(&url)
                .form(&[("token", token.as_str())])
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            Some(TokenClaims::from_json(&answer))
        }
    });
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_resolver(resolver)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    assert_eq!(
        get_with(format!("http://{addr}/api"), "opaque-user-token").await,
        200
    );
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["token"]["verdict"], "valid");
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["actor"]["kind"], "user");
}

#[tokio::test]
async fn an_unanswered_lookup_is_unavailable_not_inactive() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let http = client();
    let resolver = CachedResolver::new(move |token: String| {
        let http = http.clone();
        async move {
            match http
                .post(format!("http://{closed}/introspect"))
                .form(&[("token", token.as_str())])
                .send()
                .await
            {
                Ok(_) => Resolution::Inactive,
                Err(_) => Resolution::Unavailable,
            }
        }
    });
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_resolver(resolver)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api", get(|| async { "ok" }))
        .layer(layer);
    let addr = serve(app).await;
    assert_eq!(
        get_with(format!("http://{addr}/api"), "opaque-1").await,
        200
    );
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["token"]["verdict"], "unavailable");
    assert_eq!(e["severity"], "warning");
}

#[tokio::test]
async fn jwks_refresh_intervals_below_the_minimum_are_refused() {
    use oauth_audit::token::MIN_REFRESH_INTERVAL;
    let dir = std::env::temp_dir().join(format!("oauth-audit-min-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, r#"{"keys":[]}"#).unwrap();
    for zero_refresh in [true, false] {
        let mut builder = TokenInspector::builder().jwks_file(&path);
        builder = if zero_refresh {
            builder.refresh_interval(std::time::Duration::ZERO)
        } else {
            builder.min_refresh_interval(MIN_REFRESH_INTERVAL / 2)
        };
        let err = builder.build().unwrap_err().to_string();
        assert!(err.contains("too short") && err.contains("1s"), "{err}");
    }
    TokenInspector::builder()
        .jwks_file(&path)
        .refresh_interval(MIN_REFRESH_INTERVAL)
        .min_refresh_interval(MIN_REFRESH_INTERVAL)
        .build()
        .expect("the minimum itself is accepted");
    std::fs::remove_dir_all(dir).ok();
}

/// The same ECDSA signature written the other way: `(r, n - s)` verifies wherever `(r, s)`
/// does, so anyone holding an ES256 token can spell it a second time without the key.
fn ecdsa_twin(token: &str) -> String {
    use base64::Engine;
    const P256_ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = token.rsplit_once('.').unwrap();
    let mut signature = b64.decode(signature).unwrap();
    let s = &mut signature[32..];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(P256_ORDER[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(d < 0);
        s[i] = d.rem_euclid(256) as u8;
    }
    format!("{input}.{}", b64.encode(signature))
}

#[tokio::test]
async fn a_revoked_ecdsa_token_spelt_with_its_other_signature_is_still_revoked() {
    let key = support::keys::KeyPair::es256("ec-1");
    let inspector = TokenInspector::builder()
        .ec_pem(Algorithm::ES256, key.public_pem.as_bytes(), Some("ec-1"))
        .build()
        .unwrap();
    let token = key.sign(&json!({"sub": "alice", "scope": "read", "exp": now() + 600}));
    let twin = ecdsa_twin(&token);
    assert_ne!(twin, token);
    assert_eq!(
        inspector.inspect(&twin).verdict,
        Verdict::Valid,
        "ECDSA signatures are malleable: the twin verifies"
    );
    let revoked = RevokedTokens::new();
    revoked.insert(TokenFingerprint::of(&token));
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(inspector)
        .revoked_tokens(revoked)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async { "orders" }).route_layer(RequiredScopes::all(["read"]).enforce()),
        )
        .layer(layer);
    let addr = serve(app).await;
    let orders = format!("http://{addr}/orders");
    assert_eq!(get_with(orders.clone(), &token).await, 401);
    assert_eq!(get_with(orders, &twin).await, 401, "the twin was served");
    let all = events(&memory, 2).await;
    assert_eq!(all[0]["token"]["verdict"], "revoked");
    assert_eq!(all[1]["token"]["verdict"], "revoked");
    assert_eq!(
        all[1]["token"]["fingerprint"],
        TokenFingerprint::of(&twin).to_string(),
        "the event still names the token as sent"
    );
}

/// RFC 7009 has the server answer `200` to the revocation of any string, and the trail
/// records each: a client that revokes junk by the thousand must not push a revoked JWT out
/// of the revoked set, after which a stolen copy would verify again.
#[tokio::test]
async fn junk_revocations_cannot_push_a_revoked_token_out_of_the_set() {
    // Opaque strings, which only an issuer could tell from tokens.
    revocation_flood(hmac_inspector(), "unverified", |i| format!("junk-{i:04}")).await;
    // JWTs signed by no key of the inspector's.
    revocation_flood(hmac_inspector(), "bad_signature", |i| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &json!({"sub": format!("mallory-{i}"), "scope": "read", "exp": now() + 600}),
            &jsonwebtoken::EncodingKey::from_secret(b"another issuer's secret, not ours"),
        )
        .unwrap()
    })
    .await;
}

/// An expired token is never valid again, and a client can keep every token it was ever
/// given: revoking them all at once must not push a revoked token that is still in its
/// lifetime out of the revoked set.
#[tokio::test]
async fn expired_tokens_revoked_in_bulk_cannot_push_a_revoked_token_out_of_the_set() {
    // Genuine tokens of the client's own, long expired.
    revocation_flood(hmac_inspector(), "expired", |i| {
        signed(json!({"sub": format!("mallory-{i}"), "scope": "read", "exp": now() - 3600}))
    })
    .await;
}

/// Identity providers that sign every tenant's tokens with one key set (Entra ID's common
/// keys, Google's) let anyone mint genuine tokens for another issuer or audience: they are
/// never valid here, and revoking them by the thousand must not push out a revoked token
/// that is.
#[tokio::test]
async fn tokens_for_another_issuer_or_audience_revoked_in_bulk_cannot_push_a_revoked_token_out() {
    let inspector = |issuer: &str, audience: &str| {
        TokenInspector::builder()
            .hmac_secret(Algorithm::HS256, support::keys::HS256_SECRET)
            .issuer([issuer])
            .audience([audience])
            .build()
            .unwrap()
    };
    let ours = |claims: Value| {
        let mut claims = claims;
        claims["iss"] = json!("https://idp.example/ours");
        claims["aud"] = json!("orders-api");
        claims
    };
    revocation_flood_with(
        inspector("https://idp.example/ours", "orders-api"),
        "wrong_issuer",
        |i| signed(json!({"iss": "https://idp.example/theirs", "aud": "orders-api", "sub": format!("mallory-{i}"), "exp": now() + 600})),
        ours,
    )
    .await;
    revocation_flood_with(
        inspector("https://idp.example/ours", "orders-api"),
        "wrong_audience",
        |i| signed(json!({"iss": "https://idp.example/ours", "aud": "their-api", "sub": format!("mallory-{i}"), "exp": now() + 600})),
        ours,
    )
    .await;
}

/// Revokes 8 tokens made by `flood`, a genuine token of the layer's, then 24 more of
/// `flood`'s (whose verdict is `verdict`): the genuine token must still be refused as
/// revoked.
async fn revocation_flood(
    inspector: TokenInspector,
    verdict: &str,
    flood: impl Fn(usize) -> String,
) {
    revocation_flood_with(inspector, verdict, flood, |claims| claims).await;
}

/// [`revocation_flood`], the genuine token's claims passed through `genuine`.
async fn revocation_flood_with(
    inspector: TokenInspector,
    verdict: &str,
    flood: impl Fn(usize) -> String,
    genuine: impl Fn(Value) -> Value,
) {
    let auth = AuthServer::new();
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(inspector)
        .revoked_tokens(RevokedTokens::with_capacity(4))
        .build()
        .unwrap();
    let app = auth
        .router()
        .route(
            "/api/orders",
            get(|| async { "orders" }).route_layer(RequiredScopes::all(["read"]).enforce()),
        )
        .layer(layer);
    let addr = serve(app).await;
    let http = client();
    let orders = format!("http://{addr}/api/orders");
    let revoke = |token: String| {
        let request = http
            .post(format!("http://{addr}/revoke"))
            .basic_auth("web", Some("web-secret"))
            .form(&[("token", token)]);
        async move {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.bytes().await.unwrap();
        }
    };

    for i in 0..8 {
        revoke(flood(i)).await;
    }
    let jwt = signed(genuine(
        json!({"sub": "alice", "scope": "read", "exp": now() + 600}),
    ));
    assert_eq!(get_with(orders.clone(), &jwt).await, 200);
    revoke(jwt.clone()).await;
    for i in 8..32 {
        revoke(flood(i)).await;
    }
    let all = events(&memory, 34).await;
    assert_eq!(all[0]["kind"], "TokenRevoked", "{}", all[0]);
    assert_eq!(all[0]["token"]["verdict"], verdict, "{}", all[0]);
    assert_eq!(all[9]["token"]["verdict"], "valid", "{}", all[9]);

    assert_eq!(
        get_with(orders, &jwt).await,
        401,
        "the revoked JWT was served"
    );
    let all = events(&memory, 35).await;
    assert_eq!(all[34]["token"]["verdict"], "revoked", "{}", all[34]);
}
