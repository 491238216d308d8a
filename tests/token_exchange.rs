//! Token exchange (RFC 8693) through the layer, in front of a token endpoint that exchanges
//! tokens signed with a real key (ES256) and builds delegation chains as RFC 8693 §4.1 does
//! (the new actor outermost, the subject token's own `act` nested in it), and an API the
//! exchanged tokens are presented to.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use oauth_audit::format::EventFormat;
use oauth_audit::jsonwebtoken::Algorithm;
use oauth_audit::token::{TokenFingerprint, TokenInspector, MAX_CLAIM_BYTES, MAX_DELEGATION_DEPTH};
use oauth_audit::writer::MemoryWriter;
use oauth_audit::AuditLayer;
use serde_json::{json, Value};
use support::keys::{now, KeyPair};
use support::{client, events, memory_auditor, serve};

const ISS: &str = "https://sts.test";
const AUD: &str = "orders";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The security token service: signs what it issues with its key.
struct Sts {
    key: KeyPair,
}

impl Sts {
    fn sign(&self, claims: Value) -> String {
        let mut full = json!({"iss": ISS, "aud": AUD, "iat": now(), "exp": now() + 600,
                              "jti": uuid::Uuid::now_v7().to_string()});
        for (k, v) in claims.as_object().unwrap() {
            full[k] = v.clone();
        }
        self.key.sign(&full)
    }
}

/// A JWT's payload, as the service (which checked the signature it made) reads it.
fn payload(jwt: &str) -> Option<Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn error(code: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": code}))).into_response()
}

/// RFC 8693 §2: the subject token's user, delegated to the actor token's party.
async fn exchange(
    State(sts): State<Arc<Sts>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("grant_type").map(String::as_str) != Some(TOKEN_EXCHANGE) {
        return error("unsupported_grant_type");
    }
    let Some(subject) = form.get("subject_token").and_then(|t| payload(t)) else {
        return error("invalid_request");
    };
    let mut claims = json!({"sub": subject["sub"], "client_id": form.get("client_id"),
                            "scope": subject["scope"]});
    match form.get("actor_token").and_then(|t| payload(t)) {
        Some(actor) => {
            let mut act = json!({"sub": actor["sub"], "client_id": actor["client_id"]});
            if let Some(prior) = subject.get("act") {
                act["act"] = prior.clone();
            }
            claims["act"] = act;
        }
        None => {
            if let Some(prior) = subject.get("act") {
                claims["act"] = prior.clone();
            }
        }
    }
    let issued_type = form
        .get("requested_token_type")
        .cloned()
        .unwrap_or_else(|| ACCESS_TOKEN.to_owned());
    Json(json!({
        "access_token": sts.sign(claims),
        "issued_token_type": issued_type,
        "token_type": "Bearer",
        "expires_in": 600
    }))
    .into_response()
}

struct Setup {
    sts: Arc<Sts>,
    base: String,
    memory: MemoryWriter,
    http: reqwest::Client,
}

async fn setup() -> Setup {
    let sts = Arc::new(Sts {
        key: KeyPair::es256("sts-1"),
    });
    let inspector = TokenInspector::builder()
        .issuer([ISS])
        .audience([AUD])
        .ec_pem(
            Algorithm::ES256,
            sts.key.public_pem.as_bytes(),
            Some(&sts.key.kid),
        )
        .build()
        .unwrap();
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .token_inspector(inspector)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/token", post(exchange))
        .route("/api/orders", get(|| async { "orders" }))
        .with_state(sts.clone())
        .layer(layer);
    let addr = serve(app).await;
    Setup {
        sts,
        base: format!("http://{addr}"),
        memory,
        http: client(),
    }
}

impl Setup {
    async fn exchange(&self, form: &[(&str, &str)]) -> String {
        let response = self
            .http
            .post(format!("{}/token", self.base))
            .form(form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn orders(&self, token: &str) {
        let response = self
            .http
            .get(format!("{}/api/orders", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }

    /// The `n` events so far, at `path`, in the order their requests were sent.
    async fn events_at(&self, n: usize, path: &str) -> Vec<Value> {
        events(&self.memory, n)
            .await
            .into_iter()
            .filter(|e| e["http"]["path"] == path)
            .collect()
    }
}

fn fp(token: &str) -> String {
    TokenFingerprint::of(token).to_string()
}

#[tokio::test]
async fn an_exchange_records_types_fingerprints_and_the_delegation_chain_wherever_the_token_goes() {
    let s = setup().await;
    let alice = s
        .sts
        .sign(json!({"sub": "alice", "client_id": "web", "scope": "orders:read"}));
    let gateway = s
        .sts
        .sign(json!({"sub": "gateway", "client_id": "gateway-svc"}));
    let billing = s
        .sts
        .sign(json!({"sub": "billing", "client_id": "billing-svc"}));

    // The gateway acts for alice; then billing acts for alice through the gateway's token.
    let first = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", "gateway-svc"),
            ("subject_token", &alice),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &gateway),
            ("actor_token_type", ACCESS_TOKEN),
            ("requested_token_type", JWT),
            ("audience", AUD),
        ])
        .await;
    let second = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", "billing-svc"),
            ("subject_token", &first),
            ("subject_token_type", JWT),
            ("actor_token", &billing),
            ("actor_token_type", ACCESS_TOKEN),
        ])
        .await;
    s.orders(&second).await;
    // The same chain under a key the API does not trust: recorded, never believed.
    let forged = KeyPair::es256("sts-forged").sign(&payload(&second).unwrap());
    s.orders(&forged).await;

    let gateway_step = json!({"subject": "gateway", "client_id": "gateway-svc"});
    let billing_step = json!({"subject": "billing", "client_id": "billing-svc"});

    let token = s.events_at(4, "/token").await;
    assert_eq!(token.len(), 2);
    let e = &token[0];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["grant_type"], TOKEN_EXCHANGE);
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["actor"]["client_id"], "gateway-svc");
    assert_eq!(e["actor"]["delegation"], json!([gateway_step]));
    assert_eq!(
        e["oauth"]["act"], "gateway",
        "the field kept beside the chain"
    );
    assert_eq!(e["oauth"]["subject_token"]["fingerprint"], fp(&alice));
    assert_eq!(e["oauth"]["actor_token"]["fingerprint"], fp(&gateway));
    assert_eq!(e["oauth"]["subject_token_type"], ACCESS_TOKEN);
    assert_eq!(e["oauth"]["actor_token_type"], ACCESS_TOKEN);
    assert_eq!(e["oauth"]["requested_token_type"], JWT);
    assert_eq!(e["oauth"]["issued_token_type"], JWT);
    assert_eq!(e["oauth"]["audience"], json!([AUD]));
    assert_eq!(e["token"]["fingerprint"], fp(&first));
    assert_eq!(e["token"]["format"], "jwt");

    let e = &token[1];
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(
        e["actor"]["delegation"],
        json!([billing_step, gateway_step]),
        "the current actor first"
    );
    assert_eq!(e["oauth"]["act"], "billing");
    assert_eq!(e["oauth"]["subject_token"]["fingerprint"], fp(&first));
    assert_eq!(e["oauth"]["actor_token"]["fingerprint"], fp(&billing));
    assert_eq!(e["oauth"]["subject_token_type"], JWT);
    assert!(e["oauth"].get("requested_token_type").is_none());
    assert_eq!(e["oauth"]["issued_token_type"], ACCESS_TOKEN);
    assert_eq!(e["token"]["fingerprint"], fp(&second));

    let api = s.events_at(4, "/api/orders").await;
    assert_eq!(api.len(), 2);
    let e = &api[0];
    assert_eq!(e["kind"], "ResourceAccessed");
    assert_eq!(e["token"]["verdict"], "valid");
    assert_eq!(e["token"]["fingerprint"], fp(&second));
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(
        e["actor"]["delegation"],
        json!([billing_step, gateway_step])
    );
    let e = &api[1];
    assert_eq!(e["token"]["verdict"], "unknown_key");
    assert!(e["actor"].get("delegation").is_none(), "{e:#}");
    assert_eq!(
        e["token"]["unverified"]["delegation"],
        json!([billing_step, gateway_step])
    );

    // The mappings carry the chain too, by its v1 name.
    let events = s.memory.events();
    let resource = events
        .iter()
        .find(|e| {
            e.token
                .as_ref()
                .is_some_and(|t| t.fingerprint == TokenFingerprint::of(&second))
                && e.http.as_ref().is_some_and(|h| h.path == "/api/orders")
        })
        .unwrap();
    let written = |format: EventFormat| {
        let mut out = Vec::new();
        format.write(&mut out, resource).unwrap();
        serde_json::from_slice::<Value>(&out).unwrap()
    };
    assert_eq!(
        written(EventFormat::Ecs)["oauth"]["actor"]["delegation"],
        json!([billing_step, gateway_step])
    );
    assert_eq!(
        written(EventFormat::Ocsf)["unmapped"]["actor"]["delegation"],
        json!([billing_step, gateway_step])
    );

    // Only fingerprints: no token the exchanges carried is in any event.
    let lines = s.memory.json_lines();
    for secret in [&alice, &gateway, &billing, &first, &second, &forged] {
        assert!(!lines.contains(secret.as_str()));
        // Nor a signature (a token's only secret-like part apart from the whole).
        assert!(!lines.contains(secret.rsplit('.').next().unwrap()));
    }
}

#[tokio::test]
async fn a_deep_and_huge_act_chain_is_bounded_at_the_token_endpoint_and_the_api() {
    let s = setup().await;
    // Fifty actors, each name long and full of terminal escapes.
    let mut act = json!({"sub": "origin"});
    for depth in 0..50 {
        act = json!({
            "sub": format!("\u{1b}]0;pwned\u{7}actor-{depth}-{}", "z".repeat(400)),
            "client_id": format!("svc-{depth}\r\nforged: line"),
            "act": act,
        });
    }
    let deep = s
        .sts
        .sign(json!({"sub": "alice", "client_id": "web", "act": act}));
    let actor = s.sts.sign(json!({"sub": "edge", "client_id": "edge-svc"}));
    let issued = s
        .exchange(&[
            ("grant_type", TOKEN_EXCHANGE),
            ("client_id", "edge-svc"),
            ("subject_token", &deep),
            ("subject_token_type", ACCESS_TOKEN),
            ("actor_token", &actor),
            ("actor_token_type", ACCESS_TOKEN),
        ])
        .await;
    s.orders(&deep).await;

    let all = events(&s.memory, 2).await;
    assert_eq!(all.len(), 2);
    for e in &all {
        let chain = e["actor"]["delegation"].as_array().unwrap();
        assert_eq!(chain.len(), MAX_DELEGATION_DEPTH, "{}", e["http"]["path"]);
        for step in chain {
            let subject = step["subject"].as_str().unwrap();
            assert!(subject.len() <= MAX_CLAIM_BYTES);
            assert!(!subject.chars().any(char::is_control), "{subject:?}");
            let client = step["client_id"].as_str().unwrap_or_default();
            assert!(
                !client.contains('\n') && !client.contains('\r'),
                "{client:?}"
            );
        }
        let truncated = e["token"]["truncated"].as_array().unwrap();
        assert!(truncated.contains(&json!("act")), "{truncated:?}");
    }
    let token = all.iter().find(|e| e["http"]["path"] == "/token").unwrap();
    assert_eq!(token["token"]["fingerprint"], fp(&issued));
    // The new actor is outermost; the subject token's chain follows it.
    assert_eq!(token["actor"]["delegation"][0]["subject"], "edge");
    assert!(token["actor"]["delegation"][1]["subject"]
        .as_str()
        .unwrap()
        .contains("actor-49-"));
    let api = all
        .iter()
        .find(|e| e["http"]["path"] == "/api/orders")
        .unwrap();
    assert_eq!(api["token"]["verdict"], "valid");
    assert!(api["actor"]["delegation"][0]["subject"]
        .as_str()
        .unwrap()
        .contains("actor-49-"));
    let lines = s.memory.json_lines();
    for secret in [&deep, &actor, &issued] {
        assert!(!lines.contains(secret.as_str()));
    }
}
