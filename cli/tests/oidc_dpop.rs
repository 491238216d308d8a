//! DPoP-bound tokens (RFC 9449) from a real provider (`oidc-provider` with its `dPoP`
//! feature), presented through the proxy in front of an API: a proof used correctly, one
//! replayed, one for another URL, one by another key, the token sent as `Bearer`, and a
//! route that takes bound tokens only.

#[path = "../../tests/support/dpop_key.rs"]
#[allow(dead_code)] // one kind of key is enough here
mod dpop_key;
mod support;

use dpop_key::DpopKey;
use serde_json::Value;
use support::oidc::OidcProvider;
use support::upstream::Upstream;
use support::{http, read_events, Proxy, TempDir};

#[tokio::test]
async fn dpop_bound_tokens_of_a_real_provider_through_the_proxy() {
    let provider = OidcProvider::start();
    let api = Upstream::start().await;
    let dir = TempDir::new("oidc-dpop");
    let events = dir.path("api.jsonl");
    let config = dir.write(
        "api.toml",
        r#"
service_name = "orders-api"
[endpoints]
defaults = false
[[route]]
path = "/api/orders/*"
scopes = ["orders:read"]
[[route]]
path = "/api/pay/*"
scopes = ["orders:write"]
require_dpop = true
[dpop]
origins = ["https://orders.example.test"]
"#,
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &api.url(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            events.to_str().unwrap(),
            "--jwks-url",
            &format!("{}/jwks", provider.issuer),
            "--issuer",
            &provider.issuer,
            "--audience",
            "orders-api",
        ],
        &[],
    );
    let http = http();

    // The provider binds the token to the key of the proof that came with the request.
    let key = DpopKey::es256();
    let token_url = format!("{}/token", provider.issuer);
    let res = http
        .post(&token_url)
        .basic_auth("service", Some("service-secret"))
        .header("dpop", key.proof("POST", &token_url, None))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read orders:write"),
        ])
        .send()
        .await
        .unwrap();
    let issued: Value = res.json().await.unwrap();
    assert_eq!(issued["token_type"], "DPoP", "{issued}");
    let token = issued["access_token"].as_str().unwrap().to_owned();

    // Clients call the API by its public name; the proxy is reached on loopback here.
    let public = |path: &str| format!("https://orders.example.test{path}");
    let orders = proxy.url("/api/orders/1");
    let send = |url: String, scheme: &'static str, proof: Option<String>| {
        let http = http.clone();
        let token = token.clone();
        async move {
            let mut request = http
                .get(url)
                .header("authorization", format!("{scheme} {token}"));
            if let Some(proof) = proof {
                request = request.header("dpop", proof);
            }
            request.send().await.unwrap().status().as_u16()
        }
    };
    let proof = key.proof("GET", &public("/api/orders/1"), Some(&token));
    let other = DpopKey::es256();
    let statuses = [
        send(orders.clone(), "DPoP", Some(proof.clone())).await,
        send(orders.clone(), "DPoP", Some(proof.clone())).await,
        send(
            orders.clone(),
            "DPoP",
            Some(key.proof("GET", &public("/api/orders/2"), Some(&token))),
        )
        .await,
        send(
            orders.clone(),
            "DPoP",
            Some(other.proof("GET", &public("/api/orders/1"), Some(&token))),
        )
        .await,
        send(orders.clone(), "Bearer", None).await,
        // The Host the client sent is not the public origin: another server's proof.
        send(
            orders.clone(),
            "DPoP",
            Some(key.proof("GET", &orders, Some(&token))),
        )
        .await,
    ];
    // An audit-only route: the upstream served every one; the trail says what each was.
    assert_eq!(statuses, [200; 6]);
    let pay = proxy.url("/api/pay/1");
    assert_eq!(
        send(
            pay.clone(),
            "DPoP",
            Some(key.proof("GET", &public("/api/pay/1"), Some(&token)))
        )
        .await,
        200
    );
    assert_eq!(send(pay.clone(), "Bearer", None).await, 401);
    assert_eq!(
        send(
            pay.clone(),
            "DPoP",
            Some(other.proof("GET", &public("/api/pay/1"), Some(&token)))
        )
        .await,
        401
    );

    let expected = [
        ("ResourceAccessed", "valid", false),
        ("ResourceAccessed", "replayed", false),
        ("ResourceAccessed", "htu_mismatch", false),
        ("ResourceAccessed", "key_mismatch", false),
        ("ResourceAccessed", "missing", true),
        ("ResourceAccessed", "htu_mismatch", false),
        ("ResourceAccessed", "valid", false),
        ("AccessDenied", "missing", true),
        ("AccessDenied", "key_mismatch", false),
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let trail = loop {
        let trail = read_events(&events);
        if trail.len() >= expected.len() || std::time::Instant::now() > deadline {
            break trail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(trail.len(), expected.len(), "{trail:#?}");
    for (n, (e, (kind, outcome, downgrade))) in trail.iter().zip(expected).enumerate() {
        let binding = &e["token"]["binding"];
        assert_eq!(e["kind"], kind, "request {}: {e}", n + 1);
        assert_eq!(e["token"]["verdict"], "valid", "request {}", n + 1);
        assert_eq!(binding["method"], "dpop", "request {}", n + 1);
        assert_eq!(
            binding["jkt"],
            key.jkt(),
            "request {}: the token's own key",
            n + 1
        );
        assert_eq!(binding["proof"], outcome, "request {}: {e}", n + 1);
        assert_eq!(
            binding["downgrade"].as_bool().unwrap_or(false),
            downgrade,
            "request {}",
            n + 1
        );
        let text = e.to_string();
        assert!(!text.contains(&token) && !text.contains(&proof));
    }
    assert_eq!(trail[3]["token"]["binding"]["proof_jkt"], other.jkt());
    assert_eq!(trail[7]["error"]["code"], "invalid_token");
    assert_eq!(trail[8]["error"]["code"], "invalid_dpop_proof");
}
