//! The proxy in front of a real, certified OpenID provider (`oidc-provider` on Node) and of a
//! protected API, driven by real clients: the `oauth2` crate and `curl`.
//!
//! Auth server side: grants issued (client credentials, refresh) and failed (wrong secret,
//! a scope the client may not have), tokens introspected and revoked. API side: calls
//! verified against the provider's JWKS URL (valid, expired, tampered) and opaque tokens
//! introspected by the proxy (active, revoked).

#[path = "../../tests/support/oauth2_http.rs"]
mod oauth2_http;
mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oauth2::basic::BasicClient;
use oauth2::{
    ClientId, ClientSecret, RefreshToken, RevocationUrl, Scope, StandardRevocableToken,
    TokenResponse, TokenUrl,
};
use oauth2_http::{fp, Http};
use serde_json::Value;
use support::oidc::OidcProvider;
use support::upstream::Upstream;
use support::{http, wait_event, Proxy, TempDir};
use tokio::process::Command;

const API: &str = "https://orders.example/";
const SHORT: &str = "https://short.example/";
const OPAQUE: &str = "https://opaque.example/";

/// `curl` with a form body and HTTP Basic client authentication; returns status and body.
async fn curl_form(url: &str, user: &str, form: &[(&str, &str)]) -> (u16, Value) {
    curl_form_as(url, user, form, None).await
}

/// [`curl_form`] with another `User-Agent` than curl's own: another client.
async fn curl_form_as(
    url: &str,
    user: &str,
    form: &[(&str, &str)],
    user_agent: Option<&str>,
) -> (u16, Value) {
    let mut command = Command::new("curl");
    if let Some(user_agent) = user_agent {
        command.args(["--user-agent", user_agent]);
    }
    command.args([
        "--silent",
        "--show-error",
        "--noproxy",
        "*",
        "--max-time",
        "60",
    ]);
    command.args(["--user", user, "--write-out", "\n%{http_code}"]);
    for (k, v) in form {
        command.args(["--data-urlencode", &format!("{k}={v}")]);
    }
    let output = command
        .arg(url)
        .output()
        .await
        .expect("run curl (scripts/test installs it)");
    assert!(
        output.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (
        status.parse().unwrap(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// `curl` a protected API with a bearer token; returns the status.
async fn curl_bearer(url: &str, token: &str) -> u16 {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--noproxy",
            "*",
            "--max-time",
            "60",
            "--output",
            "/dev/null",
        ])
        .args(["--write-out", "%{http_code}", "--header"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .await
        .expect("run curl (scripts/test installs it)");
    String::from_utf8(output.stdout).unwrap().parse().unwrap()
}

struct Setup {
    _provider: OidcProvider,
    _api: Upstream,
    _dir: TempDir,
    auth_proxy: Proxy,
    api_proxy: Proxy,
    auth_events: std::path::PathBuf,
    api_events: std::path::PathBuf,
    refresh_token: String,
    issuer: String,
}

async fn setup() -> Setup {
    let provider = OidcProvider::start();
    let api = Upstream::start().await;
    let dir = TempDir::new("oidc");
    let auth_events = dir.path("auth.jsonl");
    let api_events = dir.path("api.jsonl");
    let auth_config = dir.write(
        "auth.toml",
        r#"
service_name = "oidc-provider"
[endpoints]
defaults = false
token = ["/token"]
revocation = ["/token/revocation"]
introspection = ["/token/introspection"]
"#,
    );
    let auth_proxy = Proxy::start(
        &[
            "--upstream",
            &provider.issuer,
            "--config",
            auth_config.to_str().unwrap(),
            "--out",
            auth_events.to_str().unwrap(),
        ],
        &[],
    );
    let api_config = dir.write(
        "api.toml",
        &format!(
            r#"
service_name = "orders-api"
[endpoints]
defaults = false
[jwt]
leeway = "0s"
[introspection]
url = "{}/token/introspection"
client_id = "oauth-audit"
[[route]]
path = "/api/orders/*"
scopes = ["orders:read"]
"#,
            provider.issuer
        ),
    );
    let api_proxy = Proxy::start(
        &[
            "--upstream",
            &api.url(),
            "--config",
            api_config.to_str().unwrap(),
            "--out",
            api_events.to_str().unwrap(),
            "--jwks-url",
            &format!("{}/jwks", provider.issuer),
            "--issuer",
            &provider.issuer,
            "--audience",
            "orders-api",
        ],
        &[(
            "OAUTH_AUDIT_INTROSPECTION_CLIENT_SECRET",
            "introspector-secret",
        )],
    );
    Setup {
        refresh_token: provider.refresh_token.clone(),
        issuer: provider.issuer.clone(),
        _provider: provider,
        _api: api,
        _dir: dir,
        auth_proxy,
        api_proxy,
        auth_events,
        api_events,
    }
}

fn with_token(fingerprint: String) -> impl Fn(&Value) -> bool {
    move |e| e["token"]["fingerprint"] == fingerprint.as_str()
}

#[tokio::test]
async fn grants_introspection_and_revocation_at_a_real_provider() {
    let s = setup().await;
    let http_client = Http(http());

    // client_credentials with the oauth2 crate: a JWT access token for the API.
    let service = BasicClient::new(ClientId::new("service".into()))
        .set_client_secret(ClientSecret::new("service-secret".into()))
        .set_token_uri(TokenUrl::new(s.auth_proxy.url("/token")).unwrap())
        .set_revocation_url(
            RevocationUrl::new(
                s.auth_proxy
                    .url("/token/revocation")
                    .replacen("http://", "https://", 1),
            )
            .unwrap(),
        );
    let issued = service
        .exchange_client_credentials()
        .add_scope(Scope::new("orders:read".into()))
        .add_extra_param("resource", API)
        .request_async(&http_client)
        .await
        .expect("client credentials grant");
    let jwt = issued.access_token().secret().clone();
    let event = wait_event(
        &s.auth_events,
        "AccessTokenIssued (client_credentials)",
        with_token(fp(&jwt)),
    )
    .await;
    assert_eq!(event["kind"], "AccessTokenIssued");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["service"]["name"], "oidc-provider");
    assert_eq!(event["grant_type"], "client_credentials");
    assert_eq!(event["client_auth"], "client_secret_basic");
    assert_eq!(event["actor"]["client_id"], "service");
    assert_eq!(
        event["scopes"]["requested"],
        serde_json::json!(["orders:read"])
    );
    assert_eq!(
        event["scopes"]["granted"],
        serde_json::json!(["orders:read"])
    );
    assert_eq!(event["token"]["format"], "jwt");
    assert_eq!(event["http"]["path"], "/token");

    // Wrong secret.
    let wrong = BasicClient::new(ClientId::new("service".into()))
        .set_client_secret(ClientSecret::new("not-the-secret".into()))
        .set_token_uri(TokenUrl::new(s.auth_proxy.url("/token")).unwrap());
    let err = wrong
        .exchange_client_credentials()
        .add_scope(Scope::new("orders:read".into()))
        .request_async(&http_client)
        .await
        .expect_err("a wrong secret is refused");
    assert!(format!("{err:?}").contains("invalid_client"), "{err:?}");
    let event = wait_event(&s.auth_events, "invalid_client", |e| {
        e["error"]["code"] == "invalid_client"
    })
    .await;
    assert_eq!(event["kind"], "TokenRequestFailed");
    assert_eq!(event["actor"]["client_id"], "service");
    assert!(!event.to_string().contains("not-the-secret"));

    // A scope the client may not have, with curl.
    let (status, body) = curl_form(
        &s.auth_proxy.url("/token"),
        "service:service-secret",
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let event = wait_event(&s.auth_events, "invalid_scope", |e| {
        e["error"]["code"] == "invalid_scope"
    })
    .await;
    assert_eq!(event["kind"], "TokenRequestFailed");
    assert_eq!(event["scopes"]["requested"], serde_json::json!(["admin"]));

    // Refresh, with the oauth2 crate; the provider rotates the refresh token.
    let app = BasicClient::new(ClientId::new("app".into()))
        .set_client_secret(ClientSecret::new("app-secret".into()))
        .set_token_uri(TokenUrl::new(s.auth_proxy.url("/token")).unwrap());
    let refreshed = app
        .exchange_refresh_token(&RefreshToken::new(s.refresh_token.clone()))
        .request_async(&http_client)
        .await
        .expect("refresh grant");
    let event = wait_event(
        &s.auth_events,
        "AccessTokenIssued (refresh_token)",
        with_token(fp(refreshed.access_token().secret())),
    )
    .await;
    assert_eq!(event["grant_type"], "refresh_token");
    assert_eq!(event["actor"]["subject"], "alice");
    assert_eq!(event["actor"]["client_id"], "app");
    assert_eq!(
        event["oauth"]["presented_refresh_token"]["fingerprint"],
        fp(&s.refresh_token)
    );
    let rotated = refreshed
        .refresh_token()
        .expect("a rotated refresh token")
        .secret();
    assert_eq!(event["refresh_token"]["fingerprint"], fp(rotated));

    // The old refresh token again: the provider refuses it.
    let err = app
        .exchange_refresh_token(&RefreshToken::new(s.refresh_token.clone()))
        .request_async(&http_client)
        .await
        .expect_err("a consumed refresh token is refused");
    assert!(format!("{err:?}").contains("invalid_grant"), "{err:?}");
    wait_event(&s.auth_events, "invalid_grant", |e| {
        e["kind"] == "TokenRequestFailed" && e["error"]["code"] == "invalid_grant"
    })
    .await;

    // An opaque token: introspected (curl), revoked (oauth2), introspected again.
    let opaque = service
        .exchange_client_credentials()
        .add_scope(Scope::new("orders:read".into()))
        .add_extra_param("resource", OPAQUE)
        .request_async(&http_client)
        .await
        .expect("opaque token");
    let opaque = opaque.access_token().secret().clone();
    let introspection_url = s.auth_proxy.url("/token/introspection");
    let introspection_form = [("token", opaque.as_str())];
    let introspect = || {
        curl_form(
            &introspection_url,
            "oauth-audit:introspector-secret",
            &introspection_form,
        )
    };
    let (status, body) = introspect().await;
    assert_eq!((status, &body["active"]), (200, &Value::Bool(true)));
    let event = wait_event(&s.auth_events, "TokenIntrospected (active)", |e| {
        e["kind"] == "TokenIntrospected" && e["token"]["active"] == true
    })
    .await;
    assert_eq!(event["token"]["fingerprint"], fp(&opaque));
    assert_eq!(event["actor"]["client_id"], "oauth-audit");

    service
        .revoke_token(StandardRevocableToken::AccessToken(
            oauth2::AccessToken::new(opaque.clone()),
        ))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("revocation");
    let event = wait_event(&s.auth_events, "TokenRevoked", |e| {
        e["kind"] == "TokenRevoked"
    })
    .await;
    assert_eq!(event["token"]["fingerprint"], fp(&opaque));
    assert_eq!(event["actor"]["client_id"], "service");

    let (status, body) = introspect().await;
    assert_eq!((status, &body["active"]), (200, &Value::Bool(false)));
    let event = wait_event(&s.auth_events, "TokenIntrospected (inactive)", |e| {
        e["kind"] == "TokenIntrospected" && e["token"]["active"] == false
    })
    .await;
    assert_eq!(event["token"]["fingerprint"], fp(&opaque));

    // No secret, token or refresh token ever reached the events.
    let all = std::fs::read_to_string(&s.auth_events).unwrap();
    for secret in [
        "service-secret",
        "app-secret",
        "introspector-secret",
        &jwt,
        &opaque,
        &s.refresh_token,
        rotated,
    ] {
        assert!(!all.contains(secret), "a secret leaked into the events");
    }
}

#[tokio::test]
async fn protected_calls_are_verified_against_the_providers_keys() {
    let s = setup().await;
    let http_client = Http(http());
    let service = BasicClient::new(ClientId::new("service".into()))
        .set_client_secret(ClientSecret::new("service-secret".into()))
        .set_token_uri(TokenUrl::new(s.auth_proxy.url("/token")).unwrap())
        .set_revocation_url(
            RevocationUrl::new(
                s.auth_proxy
                    .url("/token/revocation")
                    .replacen("http://", "https://", 1),
            )
            .unwrap(),
        );
    let token_for = |resource: &'static str| {
        let service = &service;
        let http_client = &http_client;
        async move {
            service
                .exchange_client_credentials()
                .add_scope(Scope::new("orders:read".into()))
                .add_extra_param("resource", resource)
                .request_async(http_client)
                .await
                .expect("client credentials grant")
                .access_token()
                .secret()
                .clone()
        }
    };

    // Valid: verified with the key from the provider's JWKS URL.
    let jwt = token_for(API).await;
    assert_eq!(
        curl_bearer(&s.api_proxy.url("/api/orders/1"), &jwt).await,
        200
    );
    let event = wait_event(&s.api_events, "valid JWT", with_token(fp(&jwt))).await;
    assert_eq!(event["kind"], "ResourceAccessed");
    assert_eq!(event["token"]["verdict"], "valid");
    assert_eq!(event["token"]["issuer"], s.issuer.as_str());
    assert_eq!(event["actor"]["client_id"], "service");
    assert_eq!(
        event["scopes"]["required"],
        serde_json::json!(["orders:read"])
    );
    assert_eq!(event["scopes"]["used"], serde_json::json!(["orders:read"]));

    // Tampered: a scope added to the payload, the signature kept.
    let mut claims = jwt_claims(&jwt);
    claims["scope"] = Value::from("orders:read orders:write");
    let tampered = {
        use base64::Engine;
        let parts: Vec<&str> = jwt.split('.').collect();
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{}.{payload}.{}", parts[0], parts[2])
    };
    assert_eq!(
        curl_bearer(&s.api_proxy.url("/api/orders/2"), &tampered).await,
        200,
        "audit-only route"
    );
    let event = wait_event(&s.api_events, "tampered JWT", with_token(fp(&tampered))).await;
    // Served: an access with a bad token (a warning), not a denial.
    assert_eq!(event["kind"], "ResourceAccessed");
    assert_eq!(event["severity"], "warning");
    assert_eq!(event["token"]["verdict"], "bad_signature");
    assert_eq!(
        event["token"]["unverified"]["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );
    assert!(event["scopes"].get("granted").is_none());

    // Expired: a token valid for one second, used after it ran out (leeway 0).
    let short = token_for(SHORT).await;
    let claims = jwt_claims(&short);
    let exp = claims["exp"].as_u64().unwrap();
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= exp
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        curl_bearer(&s.api_proxy.url("/api/orders/3"), &short).await,
        200
    );
    let event = wait_event(&s.api_events, "expired JWT", with_token(fp(&short))).await;
    assert_eq!(event["kind"], "ResourceAccessed");
    assert_eq!(event["severity"], "warning");
    assert_eq!(event["token"]["verdict"], "expired");
    assert_eq!(event["error"]["code"], "expired");

    // Opaque tokens: the proxy asks the provider's introspection endpoint.
    let active = token_for(OPAQUE).await;
    assert_eq!(
        curl_bearer(&s.api_proxy.url("/api/orders/4"), &active).await,
        200
    );
    let event = wait_event(
        &s.api_events,
        "active opaque token",
        with_token(fp(&active)),
    )
    .await;
    assert_eq!(event["kind"], "ResourceAccessed");
    assert_eq!(event["token"]["format"], "opaque");
    assert_eq!(event["token"]["verdict"], "valid");
    assert_eq!(event["actor"]["client_id"], "service");

    // Revoked, then presented: introspection says inactive.
    let revoked = token_for(OPAQUE).await;
    service
        .revoke_token(StandardRevocableToken::AccessToken(
            oauth2::AccessToken::new(revoked.clone()),
        ))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("revocation");
    assert_eq!(
        curl_bearer(&s.api_proxy.url("/api/orders/5"), &revoked).await,
        200
    );
    let event = wait_event(
        &s.api_events,
        "revoked opaque token",
        with_token(fp(&revoked)),
    )
    .await;
    assert_eq!(event["kind"], "ResourceAccessed");
    assert_eq!(event["severity"], "warning");
    assert_eq!(event["token"]["verdict"], "inactive");

    let all = std::fs::read_to_string(&s.api_events).unwrap();
    for secret in [&jwt, &tampered, &short, &active, &revoked] {
        assert!(
            !all.contains(secret.as_str()),
            "a token leaked into the events"
        );
    }
    assert!(!all.contains("introspector-secret"));
}

fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `[detect]` in the proxy in front of the provider: ten wrong client secrets within the
/// window raise `client_secret_guessing`, nine do not.
#[tokio::test]
async fn guessed_client_secrets_at_the_provider_raise_an_alert() {
    let detecting = detecting();
    let (proxy, events) = (&detecting.proxy, detecting.events.clone());
    let guess = |n: usize| {
        let url = proxy.url("/token");
        async move {
            let (status, body) = curl_form(
                &url,
                &format!("service:guess-{n}"),
                &[("grant_type", "client_credentials")],
            )
            .await;
            assert_eq!(status, 401, "{body}");
        }
    };
    for n in 0..9 {
        guess(n).await;
    }
    let failures = |events: &std::path::Path| {
        support::read_events(events)
            .into_iter()
            .filter(|e| e["error"]["code"] == "invalid_client")
            .count()
    };
    wait_event(&events, "the ninth failure", |_| failures(&events) == 9).await;
    let alerts = |events: &std::path::Path| {
        support::read_events(events)
            .into_iter()
            .filter(|e| e["kind"] == "SecurityAlert")
            .collect::<Vec<_>>()
    };
    assert!(
        alerts(&events).is_empty(),
        "nine guesses are under the threshold"
    );

    guess(9).await;
    let alert = wait_event(&events, "SecurityAlert", |e| e["kind"] == "SecurityAlert").await;
    assert_eq!(alert["alert"]["rule"], "client_secret_guessing");
    assert_eq!(alert["alert"]["key"], "actor.client_id=service");
    assert_eq!(alert["alert"]["count"], 10);
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["service"]["name"], "oidc-provider");
    assert_eq!(alert["alert"]["evidence"].as_array().unwrap().len(), 10);
    assert!(
        !alert.to_string().contains("guess-"),
        "no secret in the alert"
    );
    assert_eq!(alerts(&events).len(), 1);
}

/// The proxy in front of the provider with `[detect]` on, its events in a file.
struct Detecting {
    provider: OidcProvider,
    proxy: Proxy,
    events: std::path::PathBuf,
    _dir: TempDir,
}

fn detecting() -> Detecting {
    let provider = OidcProvider::start();
    let dir = TempDir::new("oidc-detect");
    let events = dir.path("auth.jsonl");
    let config = dir.write(
        "auth.toml",
        r#"
service_name = "oidc-provider"
[endpoints]
defaults = false
token = ["/token"]
authorization = ["/auth"]
[detect]
"#,
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &provider.issuer,
            "--config",
            config.to_str().unwrap(),
            "--out",
            events.to_str().unwrap(),
        ],
        &[],
    );
    Detecting {
        provider,
        proxy,
        events,
        _dir: dir,
    }
}

impl Detecting {
    /// The alerts so far, once every earlier request has been through the detector: a
    /// client credentials grant (which no rule counts) is sent and its event awaited; the
    /// proxy writes an alert right after the event that raised it, so alerts raised
    /// earlier are in the file before it.
    async fn alerts(&self) -> Vec<Value> {
        let (status, body) = curl_form(
            &self.proxy.url("/token"),
            "service:service-secret",
            &[("grant_type", "client_credentials")],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        wait_event(&self.events, "the last grant", with_token(fp(&token))).await;
        support::read_events(&self.events)
            .into_iter()
            .filter(|e| e["kind"] == "SecurityAlert")
            .collect()
    }

    /// A refresh grant by `app` presenting `refresh_token`, from curl or from another
    /// client (`user_agent`); returns status and body.
    async fn refresh(&self, refresh_token: &str, user_agent: Option<&str>) -> (u16, Value) {
        curl_form_as(
            &self.proxy.url("/token"),
            "app:app-secret",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
            user_agent,
        )
        .await
    }
}

/// `refresh_token_reuse` at the provider, which rotates refresh tokens: a chain of
/// refreshes, each token presented once, and a retry at once by the client that lost an
/// answer, raise nothing; a rotated token presented again by another client (which the
/// provider refuses with invalid_grant, revoking the grant) raises one alert.
#[tokio::test]
async fn reused_refresh_tokens_at_the_provider_raise_an_alert() {
    let d = detecting();

    // Benign: a chain, each refresh token used once.
    let mut token = d.provider.refresh_tokens[0].clone();
    for _ in 0..3 {
        let (status, body) = d.refresh(&token, None).await;
        assert_eq!(status, 200, "{body}");
        let next = body["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(next, token, "the provider rotates");
        token = next;
    }
    // Benign: the answer to a refresh was lost; the same client retries at once.
    let lost = d.provider.refresh_tokens[1].clone();
    let (status, _) = d.refresh(&lost, None).await;
    assert_eq!(status, 200);
    let (status, body) = d.refresh(&lost, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        d.alerts().await,
        Vec::<Value>::new(),
        "no refresh token was used after its rotation by anyone else"
    );

    // A stolen copy of a rotated refresh token, presented by another client.
    let stolen = d.provider.refresh_tokens[2].clone();
    let (status, body) = d.refresh(&stolen, None).await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = d.refresh(&stolen, Some("stolen-copy/1.0")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let reuse = wait_event(&d.events, "the reuse", |e| {
        e["kind"] == "TokenRequestFailed"
            && e["oauth"]["presented_refresh_token"]["fingerprint"] == fp(&stolen)
    })
    .await;
    let rotation = wait_event(&d.events, "the rotation", |e| {
        e["kind"] == "AccessTokenIssued" && e["refresh_token"]["fingerprint"] == fp(&rotated)
    })
    .await;
    let alerts = d.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["alert"]["rule"], "refresh_token_reuse");
    assert_eq!(
        alert["alert"]["key"],
        format!(
            "oauth.presented_refresh_token.fingerprint={} actor.client_id=app",
            fp(&stolen)
        )
    );
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["service"]["name"], "oidc-provider");
    assert_eq!(alert["source"]["user_agent"], "stolen-copy/1.0");
    assert_eq!(alert["actor"]["client_id"], "app");
    assert_eq!(
        alert["alert"]["evidence"],
        serde_json::json!([rotation["id"], reuse["id"]])
    );
    let all = std::fs::read_to_string(&d.events).unwrap();
    for secret in [&stolen, &rotated, &lost, &token] {
        assert!(!all.contains(secret.as_str()), "a refresh token leaked");
    }
}

/// `scope_probing` and `redirect_uri_probing` at the provider: nine refused scopes, and
/// five refused authorization requests over two redirect URIs, raise nothing; the tenth
/// scope, and a third redirect URI, raise one alert each.
#[tokio::test]
async fn probing_at_the_provider_raises_alerts() {
    let d = detecting();
    let token_url = d.proxy.url("/token");
    let ask_admin = || async {
        let (status, body) = curl_form(
            &token_url,
            "service:service-secret",
            &[("grant_type", "client_credentials"), ("scope", "admin")],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope"))
        );
    };
    let authorize = |redirect_uri: String| {
        let encoded = percent_encoding::utf8_percent_encode(
            &redirect_uri,
            percent_encoding::NON_ALPHANUMERIC,
        );
        let request = http().get(format!(
            "{}?client_id=app&response_type=code&scope=openid&redirect_uri={encoded}",
            d.proxy.url("/auth")
        ));
        async move {
            let res = request.send().await.unwrap();
            let status = res.status().as_u16();
            let page = res.text().await.unwrap();
            // The provider shows an error page and does not redirect (RFC 6749 §4.1.2.1).
            assert_eq!(status, 400, "{page}");
            assert!(page.contains("invalid_redirect_uri"), "{page}");
        }
    };
    for _ in 0..9 {
        ask_admin().await;
    }
    for i in 0..5 {
        authorize(format!("https://app.example/callback{}", i % 2)).await;
    }
    assert_eq!(d.alerts().await, Vec::<Value>::new());
    let failed = support::read_events(&d.events)
        .into_iter()
        .filter(|e| e["kind"] == "AuthorizationFailed")
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 5);
    assert_eq!(failed[0]["error"]["code"], "http_400");
    assert_eq!(failed[0]["redirect_uri"], "https://app.example/callback0");

    ask_admin().await;
    authorize("https://evil.example/steal".to_owned()).await;
    let alerts = d.alerts().await;
    let rules: Vec<_> = alerts
        .iter()
        .map(|a| {
            (
                a["alert"]["rule"].as_str().unwrap(),
                a["alert"]["key"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("scope_probing", "actor.client_id=service"),
            ("redirect_uri_probing", "source.ip=127.0.0.1"),
        ]
    );
    assert_eq!(alerts[0]["alert"]["count"], 10);
    assert_eq!(alerts[1]["alert"]["count"], 6);
}
