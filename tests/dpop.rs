//! DPoP (RFC 9449) on protected routes, through the layer on a real Axum server: every
//! proof outcome with proofs made here (ES256 and EdDSA keys), the downgrade of a bound
//! token to `Bearer`, enforcement, and the detection rules that alert on both.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::{routing::get, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use oauth_audit::detect::Detector;
use oauth_audit::dpop::{DpopVerifier, ProofOutcome};
use oauth_audit::token::TokenInspector;
use oauth_audit::writer::{Auditor, MemoryWriter};
use oauth_audit::{AuditLayer, RequiredScopes};
use serde_json::{json, Value};
use support::dpop_key::{proof_claims, DpopKey};
use support::keys::{hs256, now, HS256_SECRET};
use support::{client, events};

/// An access token bound to `key` (`cnf.jkt`), or to nothing.
fn access_token(bound_to: Option<&DpopKey>) -> String {
    let mut claims = json!({
        "sub": "alice", "client_id": "mobile", "scope": "orders pay",
        "iss": "https://issuer", "exp": now() + 3600, "jti": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(key) = bound_to {
        claims["cnf"] = json!({ "jkt": key.jkt() });
    }
    hs256(&claims)
}

/// The inspector of the tokens made here: HS256, issuer `https://issuer`.
fn inspector() -> TokenInspector {
    TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, HS256_SECRET)
        .issuer(["https://issuer"])
        .build()
        .unwrap()
}

struct App {
    base: String,
    memory: MemoryWriter,
    handled: Arc<AtomicUsize>,
}

impl App {
    async fn start() -> App {
        let memory = MemoryWriter::new();
        let auditor = Auditor::builder()
            .service_name("dpop-api")
            .processor(Detector::default())
            .writer(memory.clone())
            .build()
            .unwrap();
        let inspector = inspector();
        let handled = Arc::new(AtomicUsize::new(0));
        let count = |handled: &Arc<AtomicUsize>| {
            let handled = handled.clone();
            move || {
                let handled = handled.clone();
                async move {
                    handled.fetch_add(1, Ordering::SeqCst);
                    "ok"
                }
            }
        };
        let app = Router::new()
            .route(
                "/orders",
                get(count(&handled)).route_layer(RequiredScopes::all(["orders"])),
            )
            .route(
                "/orders/list",
                get(count(&handled)).route_layer(RequiredScopes::all(["orders"]).enforce()),
            )
            .route(
                "/pay",
                get(count(&handled)).route_layer(RequiredScopes::all(["pay"]).require_dpop()),
            )
            .layer(
                AuditLayer::builder(auditor)
                    .token_inspector(inspector)
                    .build()
                    .unwrap(),
            );
        let addr = support::serve(app).await;
        App {
            base: format!("http://{addr}"),
            memory,
            handled,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a GET to `path` with `authorization` and the given `DPoP` headers; the status.
    async fn get(&self, path: &str, authorization: &str, proofs: &[&str]) -> u16 {
        let mut request = client()
            .get(self.url(path))
            .header("authorization", authorization);
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// The `n`th protected-route event (1-based) once it is written.
    async fn event(&self, n: usize) -> Value {
        let all = events(&self.memory, n).await;
        all.into_iter()
            .filter(|e| e["kind"] != "SecurityAlert")
            .nth(n - 1)
            .unwrap_or_else(|| panic!("no event {n}"))
    }

    fn alerts(&self, rule: &str) -> Vec<Value> {
        self.memory
            .json()
            .into_iter()
            .filter(|e| e["kind"] == "SecurityAlert" && e["alert"]["rule"] == rule)
            .collect()
    }
}

fn binding(event: &Value) -> &Value {
    &event["token"]["binding"]
}

#[tokio::test]
async fn a_valid_proof_with_es256_and_with_eddsa() {
    let app = App::start().await;
    for (n, key) in [DpopKey::es256(), DpopKey::ed25519()].iter().enumerate() {
        let token = access_token(Some(key));
        let proof = key.proof("GET", &app.url("/orders"), Some(&token));
        let status = app
            .get("/orders", &format!("DPoP {token}"), &[&proof])
            .await;
        assert_eq!(status, 200);
        let e = app.event(n + 1).await;
        assert_eq!(e["kind"], "ResourceAccessed");
        assert_eq!(e["severity"], "info");
        assert_eq!(e["token"]["verdict"], "valid");
        assert_eq!(
            binding(&e),
            &json!({ "method": "dpop", "jkt": key.jkt(), "proof": "valid" })
        );
        let text = serde_json::to_string(&e).unwrap();
        assert!(!text.contains(&proof) && !text.contains(&token));
    }
}

#[tokio::test]
async fn every_failed_check_is_recorded_as_itself() {
    let app = App::start().await;
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    let auth = format!("DPoP {token}");
    let url = app.url("/orders");
    let other_key = DpopKey::ed25519();
    let mut no_ath = proof_claims("GET", &url, None, now());
    no_ath.as_object_mut().unwrap().remove("ath");
    let cases: Vec<(&str, String)> = vec![
        ("htm_mismatch", key.proof("POST", &url, Some(&token))),
        (
            "htu_mismatch",
            key.proof("GET", &app.url("/other"), Some(&token)),
        ),
        (
            "htu_mismatch",
            key.proof("GET", "http://elsewhere.example/orders", Some(&token)),
        ),
        (
            "stale",
            key.sign(
                &proof_claims("GET", &url, Some(&token), now() - 3600),
                &key.jwk,
                "dpop+jwt",
            ),
        ),
        (
            "stale",
            key.sign(
                &proof_claims("GET", &url, Some(&token), now() + 3600),
                &key.jwk,
                "dpop+jwt",
            ),
        ),
        (
            "ath_mismatch",
            key.proof("GET", &url, Some("another-token")),
        ),
        ("ath_mismatch", key.sign(&no_ath, &key.jwk, "dpop+jwt")),
        (
            // Signed with another key than the one its header names.
            "invalid_signature",
            DpopKey::es256().sign(
                &proof_claims("GET", &url, Some(&token), now()),
                &key.jwk,
                "dpop+jwt",
            ),
        ),
        ("malformed", "not-a-proof".to_owned()),
        (
            "malformed",
            key.sign(
                &proof_claims("GET", &url, Some(&token), now()),
                &key.jwk,
                "JWT",
            ),
        ),
        (
            // A header that carries the private key is refused outright.
            "malformed",
            {
                let mut with_private = key.jwk.clone();
                with_private["d"] = "AAAA".into();
                let header = URL_SAFE_NO_PAD.encode(
                    json!({"alg": "ES256", "typ": "dpop+jwt", "jwk": with_private}).to_string(),
                );
                let proof = key.proof("GET", &url, Some(&token));
                let rest = proof.split_once('.').unwrap().1;
                format!("{header}.{rest}")
            },
        ),
        (
            // The proof's key is not the one the token is bound to.
            "key_mismatch",
            other_key.proof("GET", &url, Some(&token)),
        ),
        ("missing", String::new()),
    ];
    for (n, (expected, proof)) in cases.iter().enumerate() {
        let proofs: Vec<&str> = if proof.is_empty() {
            vec![]
        } else {
            vec![proof]
        };
        // Audit only: the route serves them all; the record says what was wrong.
        assert_eq!(app.get("/orders", &auth, &proofs).await, 200, "{expected}");
        let e = app.event(n + 1).await;
        assert_eq!(binding(&e)["proof"], *expected, "case {n}: {e}");
        assert_eq!(binding(&e)["method"], "dpop");
        assert_eq!(binding(&e)["jkt"], key.jkt(), "the token's key");
        assert_eq!(e["severity"], "warning", "{expected}");
        if *expected == "key_mismatch" {
            assert_eq!(binding(&e)["proof_jkt"], other_key.jkt());
        } else {
            assert!(binding(&e).get("proof_jkt").is_none());
        }
        let text = serde_json::to_string(&e).unwrap();
        assert!(proof.is_empty() || !text.contains(proof.as_str()));
    }
    // Two DPoP headers are malformed whatever they hold.
    let (a, b) = (
        key.proof("GET", &url, Some(&token)),
        key.proof("GET", &url, Some(&token)),
    );
    app.get("/orders", &auth, &[&a, &b]).await;
    let e = app.event(cases.len() + 1).await;
    assert_eq!(binding(&e)["proof"], "malformed");
}

/// With `serde_json`'s `raw_value` feature on, its `Value` reads an object whose first member
/// has the raw-value name as the JSON in that member's string. A server reads a proof with
/// one oddly named claim, and no `htm`, `htu`, `iat` or `jti`: so must the record.
#[tokio::test]
async fn a_proof_wrapping_its_claims_in_serde_jsons_raw_value_name_is_not_valid() {
    let app = App::start().await;
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    let auth = format!("DPoP {token}");
    let url = app.url("/orders");
    let claims = proof_claims("GET", &url, Some(&token), now()).to_string();
    let wrapped = key.sign(
        &json!({ "$serde_json::private::RawValue": claims }),
        &key.jwk,
        "dpop+jwt",
    );
    // The same claim under an ordinary name: what any parser makes of the proof.
    let renamed = key.sign(&json!({ "wrapped": claims }), &key.jwk, "dpop+jwt");
    assert_eq!(app.get("/orders", &auth, &[&wrapped]).await, 200);
    assert_eq!(app.get("/orders", &auth, &[&renamed]).await, 200);
    let (wrapped, renamed) = (app.event(1).await, app.event(2).await);
    assert_ne!(binding(&wrapped)["proof"], "valid", "{wrapped}");
    assert_eq!(binding(&wrapped), binding(&renamed));
}

#[tokio::test]
async fn a_replayed_proof_is_recorded_and_alerted() {
    let app = App::start().await;
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    let auth = format!("DPoP {token}");
    let proof = key.proof("GET", &app.url("/orders"), Some(&token));
    assert_eq!(app.get("/orders", &auth, &[&proof]).await, 200);
    assert_eq!(binding(&app.event(1).await)["proof"], "valid");
    assert!(app.alerts("dpop_proof_replay").is_empty());
    assert_eq!(app.get("/orders", &auth, &[&proof]).await, 200);
    assert_eq!(binding(&app.event(2).await)["proof"], "replayed");
    let alerts = events(&app.memory, 3).await;
    let alert = alerts
        .iter()
        .find(|e| e["alert"]["rule"] == "dpop_proof_replay")
        .expect("an alert");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["alert"]["count"], 1);
    // A fresh proof from the same key is fine again.
    let fresh = key.proof("GET", &app.url("/orders"), Some(&token));
    app.get("/orders", &auth, &[&fresh]).await;
    assert_eq!(binding(&app.event(3).await)["proof"], "valid");
}

#[tokio::test]
async fn a_bound_token_presented_as_bearer_is_a_downgrade() {
    let app = App::start().await;
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    assert_eq!(
        app.get("/orders", &format!("Bearer {token}"), &[]).await,
        200
    );
    let e = app.event(1).await;
    assert_eq!(
        binding(&e),
        &json!({ "downgrade": true, "method": "dpop", "jkt": key.jkt(), "proof": "missing" })
    );
    assert_eq!(e["severity"], "warning");
    let all = events(&app.memory, 2).await;
    assert!(
        all.iter()
            .any(|e| e["alert"]["rule"] == "binding_downgrade"),
        "{all:#?}"
    );
    // An unbound token as Bearer has no binding at all.
    app.get("/orders", &format!("Bearer {}", access_token(None)), &[])
        .await;
    let e = app.event(2).await;
    assert!(e["token"].get("binding").is_none(), "{e}");
    assert_eq!(e["severity"], "info");
}

#[tokio::test]
async fn enforcing_routes_refuse_a_bound_token_without_its_proof() {
    let app = App::start().await;
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    let plain = access_token(None);
    let list = app.url("/orders/list");
    let pay = app.url("/pay");

    // enforce(): a bound token needs a valid proof; an unbound bearer token is still fine.
    let ok = key.proof("GET", &list, Some(&token));
    assert_eq!(
        app.get("/orders/list", &format!("DPoP {token}"), &[&ok])
            .await,
        200
    );
    assert_eq!(
        app.get("/orders/list", &format!("DPoP {token}"), &[&ok])
            .await,
        401
    );
    assert_eq!(
        app.get("/orders/list", &format!("Bearer {token}"), &[])
            .await,
        401
    );
    assert_eq!(
        app.get("/orders/list", &format!("Bearer {plain}"), &[])
            .await,
        200
    );
    // require_dpop(): only bound tokens with a valid proof.
    let ok = key.proof("GET", &pay, Some(&token));
    assert_eq!(app.get("/pay", &format!("DPoP {token}"), &[&ok]).await, 200);
    assert_eq!(app.get("/pay", &format!("Bearer {plain}"), &[]).await, 401);
    let for_plain = key.proof("GET", &pay, Some(&plain));
    assert_eq!(
        app.get("/pay", &format!("DPoP {plain}"), &[&for_plain])
            .await,
        401,
        "a valid proof does not bind a token that names no key"
    );
    assert_eq!(
        app.handled.load(Ordering::SeqCst),
        3,
        "refused requests never reach the handler"
    );

    let expect = [
        ("ResourceAccessed", None, "valid"),
        ("AccessDenied", Some("invalid_dpop_proof"), "replayed"),
        ("AccessDenied", Some("invalid_token"), "missing"),
        ("ResourceAccessed", None, ""),
        ("ResourceAccessed", None, "valid"),
        ("AccessDenied", Some("invalid_token"), ""),
        ("AccessDenied", Some("invalid_token"), "valid"),
    ];
    for (n, (kind, code, proof)) in expect.iter().enumerate() {
        let e = app.event(n + 1).await;
        assert_eq!(e["kind"], *kind, "request {}: {e}", n + 1);
        assert_eq!(e["error"]["code"].as_str(), *code, "request {}: {e}", n + 1);
        assert_eq!(
            binding(&e)["proof"].as_str().unwrap_or(""),
            *proof,
            "request {}",
            n + 1
        );
    }
}

#[tokio::test]
async fn htu_is_checked_against_configured_origins() {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    let verifier = DpopVerifier::builder()
        .origins(["https://api.example.com"])
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders", get(|| async { "ok" }))
        .layer(AuditLayer::builder(auditor).dpop(verifier).build().unwrap());
    let addr = support::serve(app).await;
    let key = DpopKey::ed25519();
    let token = access_token(Some(&key));
    let public = key.proof(
        "GET",
        "https://API.example.com:443/./orders?x=1",
        Some(&token),
    );
    let local = key.proof("GET", &format!("http://{addr}/orders"), Some(&token));
    for proof in [&public, &local] {
        client()
            .get(format!("http://{addr}/orders"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 2).await;
    assert_eq!(all[0]["token"]["binding"]["proof"], "valid");
    assert_eq!(all[1]["token"]["binding"]["proof"], "htu_mismatch");
}

#[test]
fn every_outcome_has_a_test_here() {
    let source = include_str!("dpop.rs");
    for outcome in ProofOutcome::ALL {
        assert!(
            source.contains(&format!("\"{}\"", outcome.as_str())),
            "no test names {outcome}"
        );
    }
}

/// An authorization server's token endpoint that binds what it issues to the proof's key,
/// as RFC 9449 §5 describes: `token_type` `DPoP` and `cnf.jkt` in the access token.
async fn token_server(bound_to: String) -> (String, MemoryWriter) {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    let app = Router::new()
        .route(
            "/token",
            axum::routing::post(move |_body: axum::body::Bytes| {
                let jkt = bound_to.clone();
                async move {
                    let token = hs256(&json!({
                        "sub": "alice", "client_id": "mobile", "scope": "orders",
                        "exp": now() + 300, "cnf": { "jkt": jkt },
                    }));
                    axum::Json(json!({
                        "access_token": token, "token_type": "DPoP", "expires_in": 300,
                        "refresh_token": "a-refresh-token",
                    }))
                }
            }),
        )
        .layer(AuditLayer::new(auditor));
    let addr = support::serve(app).await;
    (format!("http://{addr}/token"), memory)
}

/// Posts `form` to `url` with the DPoP proof `proof`; the answer's status.
async fn post_form_with_proof(
    url: &str,
    form: &[(&str, &str)],
    proof: String,
) -> reqwest::StatusCode {
    client()
        .post(url)
        .header("dpop", proof)
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn a_token_request_with_a_proof_binds_what_is_issued() {
    let key = DpopKey::es256();
    let (url, memory) = token_server(key.jkt()).await;
    let proof = key.proof("POST", &url, None);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "an-authorization-code"),
        ("client_id", "mobile"),
        (
            "code_verifier",
            "a-verifier-of-at-least-43-characters-xxxxxxxxxx",
        ),
    ];
    let send = |proof: String| post_form_with_proof(&url, &form, proof);
    assert_eq!(send(proof.clone()).await, 200);
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["client_auth"], "none", "{e}");
    assert_eq!(e["token"]["type_hint"], "DPoP");
    assert_eq!(
        e["token"]["binding"],
        json!({ "method": "dpop", "jkt": key.jkt(), "proof": "valid" })
    );
    assert_eq!(
        e["oauth"]["dpop"],
        json!({ "method": "dpop", "jkt": key.jkt(), "proof": "valid" })
    );
    // A public client's refresh token is bound to the key too.
    assert_eq!(
        e["refresh_token"]["binding"],
        json!({ "method": "dpop", "jkt": key.jkt() })
    );
    let text = serde_json::to_string(e).unwrap();
    assert!(!text.contains(&proof) && !text.contains("a-refresh-token"));

    // The same proof again: the server here does not check, the record does.
    send(proof).await;
    let e = &events(&memory, 2).await[1];
    assert_eq!(e["oauth"]["dpop"]["proof"], "replayed");
    // A proof for another endpoint.
    send(key.proof("POST", "http://elsewhere.example/token", None)).await;
    let e = &events(&memory, 3).await[2];
    assert_eq!(e["oauth"]["dpop"]["proof"], "htu_mismatch");
}

#[tokio::test]
async fn proofs_of_keys_no_token_is_bound_to_cannot_push_out_a_real_one() {
    // A replay cache of 4: an attacker's own proofs, with their own keys, tokens bound to
    // nothing or no token at all, must not fill it.
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    let inspector = TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, HS256_SECRET)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/orders", get(|| async { "ok" }))
        .layer(
            AuditLayer::builder(auditor)
                .token_inspector(inspector)
                .dpop(DpopVerifier::builder().replay_capacity(4).build().unwrap())
                .build()
                .unwrap(),
        );
    let addr = support::serve(app).await;
    let url = format!("http://{addr}/orders");
    let get = |authorization: Option<String>, proof: String| {
        let url = url.clone();
        async move {
            let mut request = client().get(url).header("dpop", proof);
            if let Some(authorization) = authorization {
                request = request.header("authorization", authorization);
            }
            request.send().await.unwrap();
        }
    };
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    let captured = key.proof("GET", &url, Some(&token));
    get(Some(format!("DPoP {token}")), captured.clone()).await;
    let unbound = access_token(None);
    for _ in 0..20 {
        let attacker = DpopKey::es256();
        get(
            Some(format!("DPoP {unbound}")),
            attacker.proof("GET", &url, Some(&unbound)),
        )
        .await;
        get(None, attacker.proof("GET", &url, None)).await;
    }
    get(Some(format!("DPoP {token}")), captured).await;
    let all = events(&memory, 42).await;
    assert_eq!(all[0]["token"]["binding"]["proof"], "valid");
    assert_eq!(
        all[41]["token"]["binding"]["proof"], "replayed",
        "{}",
        all[41]
    );
    // A proof without a token is not checked at all: nothing to bind, nothing recorded.
    assert!(all[2]["token"].is_null(), "{}", all[2]);
}

#[tokio::test]
async fn a_route_at_a_default_endpoint_path_checks_its_proof_once() {
    // `/token` is assumed to be the token endpoint until its traffic says otherwise: a GET
    // with a bound token is a protected route, and its proof is not seen twice.
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    let inspector = TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, HS256_SECRET)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/token",
            get(|| async { "ok" }).route_layer(RequiredScopes::all(["orders"]).enforce()),
        )
        .layer(
            AuditLayer::builder(auditor)
                .token_inspector(inspector)
                .build()
                .unwrap(),
        );
    let addr = support::serve(app).await;
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    let url = format!("http://{addr}/token");
    let status = client()
        .get(&url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", key.proof("GET", &url, Some(&token)))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["kind"], "ResourceAccessed", "{e}");
    assert_eq!(e["token"]["binding"]["proof"], "valid", "{e}");
}

/// What a handler reads of the presentation: the layer puts a `Presentation` in the
/// extensions only when it says more than a plain bearer token, and `Presentation::of` and
/// the extractor answer the same either way.
#[tokio::test]
async fn handlers_read_the_presentation_whether_or_not_it_was_inserted() {
    use oauth_audit::Presentation;
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    let inspector = inspector();
    let describe = |request: axum::extract::Request| async move {
        let inserted = request.extensions().get::<Presentation>().is_some();
        match Presentation::of(request.extensions()) {
            Some(p) => format!(
                "inserted {inserted}, {:?}, proof {}, certificate {}",
                p.scheme,
                p.proof.as_ref().map_or("none", |c| c.outcome.as_str()),
                p.certificate.is_some()
            ),
            None => format!("inserted {inserted}, no token"),
        }
    };
    let extracted = |p: Option<Presentation>| async move {
        p.map_or("none".to_owned(), |p| format!("{:?}", p.scheme))
    };
    let required = |p: Presentation| async move { format!("{:?}", p.scheme) };
    let app = Router::new()
        .route("/describe", get(describe))
        .route("/extracted", get(extracted))
        .route("/required", get(required))
        .layer(
            AuditLayer::builder(auditor)
                .token_inspector(inspector)
                .build()
                .unwrap(),
        );
    let base = format!("http://{}", support::serve(app).await);
    let key = DpopKey::es256();
    let bound = access_token(Some(&key));
    let plain = access_token(None);
    let send = |path: &str, authorization: Option<String>, proof: Option<String>| {
        let mut request = client().get(format!("{base}{path}"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let url = format!("{base}/describe");

    assert_eq!(
        send("/describe", Some(format!("Bearer {plain}")), None).await,
        (
            200,
            "inserted false, Bearer, proof none, certificate false".into()
        ),
        "a plain bearer token: nothing inserted, the same answer"
    );
    let proof = key.proof("GET", &url, Some(&bound));
    assert_eq!(
        send("/describe", Some(format!("DPoP {bound}")), Some(proof)).await,
        (
            200,
            "inserted true, DPoP, proof valid, certificate false".into()
        )
    );
    // A proof sent with the `Bearer` scheme says more than a plain bearer token.
    let proof = key.proof("GET", &url, Some(&bound));
    assert_eq!(
        send("/describe", Some(format!("Bearer {bound}")), Some(proof)).await,
        (
            200,
            "inserted true, Bearer, proof valid, certificate false".into()
        )
    );
    assert_eq!(
        send("/describe", None, None).await,
        (200, "inserted false, no token".into())
    );
    assert_eq!(
        send("/extracted", Some(format!("Bearer {plain}")), None).await,
        (200, "Bearer".into())
    );
    assert_eq!(send("/extracted", None, None).await, (200, "none".into()));
    assert_eq!(
        send("/required", Some(format!("Bearer {plain}")), None).await,
        (200, "Bearer".into())
    );
    assert_eq!(send("/required", None, None).await.0, 401);
}

/// A device-code poll is condensed with the identical polls before it (same device
/// code, client and error). A copy of a poll replayed with its DPoP proof, answered
/// `authorization_pending` like the device's own polls (a server that does not track
/// `jti`), must still be recorded and raise `dpop_proof_replay`.
#[tokio::test]
async fn a_replayed_proof_on_a_device_poll_is_never_condensed() {
    let key = DpopKey::es256();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .processor(Detector::default())
        .writer(memory.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/token",
            axum::routing::post(|_body: axum::body::Bytes| async {
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "error": "authorization_pending" })),
                )
            }),
        )
        .layer(AuditLayer::new(auditor));
    let url = format!("http://{}/token", support::serve(app).await);
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", "a-device-code"),
        ("client_id", "tv"),
    ];
    let poll = |proof: String| post_form_with_proof(&url, &form, proof);
    // The device polls once; a copy of that very request is sent again.
    let proof = key.proof("POST", &url, None);
    assert_eq!(poll(proof.clone()).await, 400);
    assert_eq!(poll(proof).await, 400);
    // A fresh poll of the device after it, so that the pipeline has seen both.
    assert_eq!(poll(key.proof("POST", &url, None)).await, 400);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let all = memory.json();
    let alerts: Vec<&Value> = all
        .iter()
        .filter(|e| e["alert"]["rule"] == "dpop_proof_replay")
        .collect();
    assert_eq!(alerts.len(), 1, "{all:#?}");
    assert!(
        all.iter()
            .any(|e| e["kind"] == "TokenRequestFailed" && e["oauth"]["dpop"]["proof"] == "replayed"),
        "{all:#?}"
    );
}

/// An opaque DPoP-bound token whose claims (`cnf.jkt`) come from introspection: a proof
/// captured with it and sent again is a replay, as it is for a JWT, and an enforcing route
/// refuses it.
#[tokio::test]
async fn a_replayed_proof_with_an_introspected_token_is_recorded_as_replayed() {
    use oauth_audit::token::TokenClaims;
    let key = DpopKey::es256();
    let jkt = key.jkt();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .processor(Detector::default())
        .writer(memory.clone())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/orders",
            get(|| async { "ok" }).route_layer(RequiredScopes::all(["orders"]).enforce()),
        )
        .layer(
            AuditLayer::builder(auditor)
                .token_resolver(move |token: String| {
                    let jkt = jkt.clone();
                    async move {
                        (token == "opaque-bound-1").then(|| {
                            TokenClaims::from_json(&json!({
                                "active": true, "sub": "alice", "client_id": "mobile",
                                "scope": "orders", "exp": now() + 3600,
                                "cnf": { "jkt": jkt },
                            }))
                        })
                    }
                })
                .build()
                .unwrap(),
        );
    let addr = support::serve(app).await;
    let url = format!("http://{addr}/orders");
    let token = "opaque-bound-1";
    let proof = key.proof("GET", &url, Some(token));
    let send = || {
        client()
            .get(&url)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", &proof)
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    // The attacker who captured the request sends it again.
    let replay_status = send().await.unwrap().status();
    let all = events(&memory, 2).await;
    let all: Vec<_> = all
        .into_iter()
        .filter(|e| e["kind"] != "SecurityAlert")
        .collect();
    assert_eq!(all[0]["token"]["verdict"], "valid", "{}", all[0]);
    assert_eq!(all[0]["token"]["binding"]["proof"], "valid", "{}", all[0]);
    assert_eq!(
        all[1]["token"]["binding"]["proof"], "replayed",
        "a replayed proof with an introspected token: {}",
        all[1]
    );
    assert_eq!(replay_status, 401, "an enforcing route refuses a replay");
}

/// The replay cache is shared by every key: a client with a token of its own, bound to its
/// own key, fills it with fresh proofs (capacity 4 here; at the default 100,000, about 333
/// a second over the 5-minute window); the victim's captured proof must not be pushed out,
/// or its replay would pass as `valid`.
#[tokio::test]
async fn one_keys_flood_of_fresh_proofs_cannot_push_out_anothers() {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    let app = Router::new()
        .route("/orders", get(|| async { "ok" }))
        .layer(
            AuditLayer::builder(auditor)
                .token_inspector(inspector())
                .dpop(DpopVerifier::builder().replay_capacity(4).build().unwrap())
                .build()
                .unwrap(),
        );
    let addr = support::serve(app).await;
    let url = format!("http://{addr}/orders");
    let get = |token: String, proof: String| {
        let url = url.clone();
        async move {
            client()
                .get(url)
                .header("authorization", format!("DPoP {token}"))
                .header("dpop", proof)
                .send()
                .await
                .unwrap();
        }
    };
    let victim = DpopKey::es256();
    let victims_token = access_token(Some(&victim));
    let captured = victim.proof("GET", &url, Some(&victims_token));
    get(victims_token.clone(), captured.clone()).await;
    // The attacker's own, honestly obtained token, bound to the attacker's key.
    let attacker = DpopKey::es256();
    let attackers_token = access_token(Some(&attacker));
    for _ in 0..8 {
        get(
            attackers_token.clone(),
            attacker.proof("GET", &url, Some(&attackers_token)),
        )
        .await;
    }
    get(victims_token, captured).await;
    let all = events(&memory, 10).await;
    assert_eq!(all[0]["token"]["binding"]["proof"], "valid");
    assert_eq!(
        all[9]["token"]["binding"]["proof"], "replayed",
        "{}",
        all[9]
    );
}

/// A layer on a router nested in another (`Router::nest`): Axum hands the nested routes the
/// URI without the prefix the outer router matched, and the proof's `htu` was compared with
/// that. A proof made for `/api/pay` was refused as `htu_mismatch`, and one made for `/pay`,
/// another URL, was taken for it.
#[tokio::test]
async fn a_layer_on_a_nested_router_checks_the_htu_against_the_url_sent() {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder().writer(memory.clone()).build().unwrap();
    let api = Router::new()
        .route(
            "/pay",
            get(|| async { "paid" }).route_layer(RequiredScopes::all(["pay"]).require_dpop()),
        )
        .layer(
            AuditLayer::builder(auditor)
                .token_inspector(inspector())
                .build()
                .unwrap(),
        );
    let addr = support::serve(Router::new().nest("/api", api)).await;
    let key = DpopKey::es256();
    let token = access_token(Some(&key));
    let pay = |htu: &str| {
        client()
            .get(format!("http://{addr}/api/pay"))
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", key.proof("GET", htu, Some(&token)))
            .send()
    };
    let sent = pay(&format!("http://{addr}/api/pay")).await.unwrap();
    assert_eq!(
        sent.status(),
        200,
        "a proof for the URL the request was sent to"
    );
    let other = pay(&format!("http://{addr}/pay")).await.unwrap();
    assert_eq!(other.status(), 401, "a proof for another URL");
    let all = events(&memory, 2).await;
    let proofs: Vec<&Value> = all.iter().map(|e| &binding(e)["proof"]).collect();
    assert_eq!(proofs, [&json!("valid"), &json!("htu_mismatch")]);
}
