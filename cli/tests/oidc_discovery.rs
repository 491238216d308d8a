//! The proxy configured from the provider's metadata alone (`--issuer-url`), in front of the
//! real oidc-provider: token, introspection and revocation requests audited at the paths the
//! discovery document names, JWTs verified with its JWKS, and an OpenID relying party's whole
//! flow: a pushed authorization request (RFC 9126) and the authorization request that uses
//! it, the code exchange, UserInfo, and RP-Initiated Logout.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::oidc::OidcProvider;
use support::{wait_event, Proxy, TempDir, WAIT};

const OPAQUE: &str = "https://opaque.example/";
const API: &str = "https://orders.example/";
const CALLBACK: &str = "https://rp.example/callback";
const SIGNED_OUT: &str = "https://rp.example/signed-out";

/// A browser-like client: no redirects followed, cookies kept by name (the provider's
/// cookies are all for its one host).
struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    fn new() -> Self {
        Browser {
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(WAIT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> reqwest::Response {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie)
        };
        let response = request.send().await.unwrap();
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        response
    }
}

/// `location` of a redirect, as a URL on the proxy when it points at the provider (whose
/// absolute URLs name its own address).
fn through(proxy: &Proxy, issuer: &str, location: &str) -> String {
    match location.strip_prefix(issuer) {
        Some(rest) => proxy.url(rest),
        None if location.starts_with('/') => proxy.url(location),
        None => location.to_owned(),
    }
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    url::form_urlencoded_pairs(query)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

mod url {
    pub fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect()
    }

    fn decode(s: &str) -> String {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    }
}

/// The fingerprint a token must appear as, computed here independently of the library.
fn fp(token: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        &hex::encode(sha2::Sha256::digest(token.as_bytes()))[..32]
    )
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn pkce() -> (String, String) {
    use base64::Engine;
    use sha2::Digest;
    let verifier = format!("verifier-{}-{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

struct Setup {
    provider: OidcProvider,
    proxy: Proxy,
    events: std::path::PathBuf,
    _dir: TempDir,
}

/// The proxy with `--issuer-url` and no endpoint path but the end-session confirmation,
/// which oidc-provider serves on a second path its metadata does not name (an explicit
/// role replaces the discovered path, so both are listed).
fn setup() -> Setup {
    let provider = OidcProvider::start();
    let dir = TempDir::new("oidc-discovery");
    let events = dir.path("auth.jsonl");
    let config = dir.write(
        "auth.toml",
        r#"
service_name = "oidc-provider"
[endpoints]
end_session = ["/session/end", "/session/end/confirm"]
"#,
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &provider.issuer,
            "--issuer-url",
            &provider.issuer,
            "--config",
            config.to_str().unwrap(),
            "--out",
            events.to_str().unwrap(),
        ],
        &[],
    );
    Setup {
        provider,
        proxy,
        events,
        _dir: dir,
    }
}

async fn post_form(
    client: &reqwest::Client,
    url: &str,
    user: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = client
        .post(url)
        .basic_auth(user.0, Some(user.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn discovery_configures_the_proxy_for_grants_introspection_and_revocation() {
    let s = setup();
    let proxy_log = s.proxy.wait_log("read the authorization server's metadata");
    assert!(proxy_log.contains("/jwks"), "{proxy_log}");
    let client = support::http();

    // A token request at the discovered token endpoint.
    let (status, body) = post_form(
        &client,
        &s.proxy.url("/token"),
        ("service", "service-secret"),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
            ("resource", OPAQUE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let opaque = body["access_token"].as_str().unwrap().to_owned();
    let event = wait_event(&s.events, "AccessTokenIssued", |e| {
        e["kind"] == "AccessTokenIssued" && e["token"]["fingerprint"] == fp(&opaque)
    })
    .await;
    assert_eq!(event["grant_type"], "client_credentials");
    assert_eq!(event["actor"]["client_id"], "service");
    assert_eq!(event["client_auth"], "client_secret_basic");

    // Introspection and revocation at the discovered paths (`/token/introspection`,
    // `/token/revocation`), which are not the defaults.
    let (status, body) = post_form(
        &client,
        &s.proxy.url("/token/introspection"),
        ("oauth-audit", "introspector-secret"),
        &[("token", &opaque)],
    )
    .await;
    assert_eq!((status, &body["active"]), (200, &Value::Bool(true)));
    let event = wait_event(&s.events, "TokenIntrospected", |e| {
        e["kind"] == "TokenIntrospected"
    })
    .await;
    assert_eq!(event["token"]["fingerprint"], fp(&opaque));
    assert_eq!(event["token"]["active"], true);
    assert_eq!(event["actor"]["client_id"], "oauth-audit");

    let (status, _) = post_form(
        &client,
        &s.proxy.url("/token/revocation"),
        ("service", "service-secret"),
        &[("token", &opaque), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, 200);
    let event = wait_event(&s.events, "TokenRevoked", |e| e["kind"] == "TokenRevoked").await;
    assert_eq!(event["token"]["fingerprint"], fp(&opaque));
    assert_eq!(event["actor"]["client_id"], "service");

    // A JWT is verified with the discovered JWKS and issuer: presented at UserInfo (which
    // refuses a token for another resource), it is still judged valid by its signature.
    let (status, body) = post_form(
        &client,
        &s.proxy.url("/token"),
        ("service", "service-secret"),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
            ("resource", API),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let jwt = body["access_token"].as_str().unwrap().to_owned();
    let status = client
        .get(s.proxy.url("/me"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let event = wait_event(&s.events, "UserInfo with a JWT", |e| {
        e["http"]["path"] == "/me" && e["token"]["fingerprint"] == fp(&jwt)
    })
    .await;
    assert_eq!(event["kind"], "AccessDenied");
    assert_eq!(event["oauth"]["endpoint"], "userinfo");
    assert_eq!(event["token"]["verdict"], "valid", "{event}");
    assert_eq!(event["token"]["issuer"], s.provider.issuer.as_str());

    let all = std::fs::read_to_string(&s.events).unwrap();
    for secret in ["service-secret", "introspector-secret", &opaque, &jwt] {
        assert!(!all.contains(secret), "a secret leaked into the events");
    }
}

#[tokio::test]
async fn a_relying_partys_flow_with_par_userinfo_and_logout() {
    let s = setup();
    let issuer = s.provider.issuer.clone();
    let mut browser = Browser::new();
    let (verifier, challenge) = pkce();

    // The pushed authorization request, with client authentication.
    let (status, pushed) = post_form(
        &browser.client,
        &s.proxy.url("/request"),
        ("rp", "rp-secret"),
        &[
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "state-of-the-rp"),
        ],
    )
    .await;
    assert_eq!(status, 201, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().unwrap().to_owned();
    let event = wait_event(&s.events, "the pushed request", |e| {
        e["http"]["path"] == "/request"
    })
    .await;
    assert_eq!(event["kind"], "AuthorizationRequested");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["oauth"]["pushed"], true);
    assert_eq!(event["oauth"]["request_uri_fingerprint"], fp(&request_uri));
    assert_eq!(event["oauth"]["pkce_method"], "S256");
    assert_eq!(event["oauth"]["response_type"], "code");
    assert_eq!(event["actor"]["client_id"], "rp");
    assert_eq!(event["client_auth"], "client_secret_basic");
    assert_eq!(event["redirect_uri"], CALLBACK);
    assert_eq!(event["scopes"]["requested"], serde_json::json!(["openid"]));

    // The authorization request presents the request_uri only; the provider sends the
    // browser through its (test) login and consent, then to the callback with a code.
    let mut url = format!(
        "{}?client_id=rp&request_uri={}",
        s.proxy.url("/auth"),
        encode(&request_uri)
    );
    let mut code = None;
    for _ in 0..8 {
        let response = browser.send(browser.client.get(&url)).await;
        assert_eq!(response.status().as_u16(), 303, "{url}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        if location.starts_with(CALLBACK) {
            assert_eq!(
                query_param(&location, "state").as_deref(),
                Some("state-of-the-rp")
            );
            code = query_param(&location, "code");
            break;
        }
        url = through(&s.proxy, &issuer, &location);
    }
    let code = code.expect("the provider redirected to the callback with a code");
    let event = wait_event(&s.events, "the authorization request", |e| {
        e["http"]["path"] == "/auth"
    })
    .await;
    assert_eq!(event["kind"], "AuthorizationRequested", "{event}");
    assert_eq!(event["oauth"]["request_uri_fingerprint"], fp(&request_uri));
    assert!(event["oauth"].get("pushed").is_none());
    // Carried over from the pushed request.
    assert_eq!(event["actor"]["client_id"], "rp");
    assert_eq!(event["scopes"]["requested"], serde_json::json!(["openid"]));
    assert_eq!(event["redirect_uri"], CALLBACK);
    assert_eq!(event["oauth"]["pkce_method"], "S256");

    // The code exchange.
    let (status, tokens) = post_form(
        &browser.client,
        &s.proxy.url("/token"),
        ("rp", "rp-secret"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap().to_owned();
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let event = wait_event(&s.events, "the code exchange", |e| {
        e["kind"] == "AccessTokenIssued" && e["token"]["fingerprint"] == fp(&access_token)
    })
    .await;
    assert_eq!(event["grant_type"], "authorization_code");
    assert_eq!(event["actor"]["subject"], "alice");

    // UserInfo, audited as a protected route.
    let response = browser
        .client
        .get(s.proxy.url("/me"))
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let claims: Value = response.json().await.unwrap();
    assert_eq!(claims["sub"], "alice");
    let event = wait_event(&s.events, "UserInfo", |e| {
        e["http"]["path"] == "/me" && e["token"]["fingerprint"] == fp(&access_token)
    })
    .await;
    assert_eq!(event["kind"], "ResourceAccessed");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["oauth"]["endpoint"], "userinfo");
    assert_eq!(event["token"]["format"], "opaque");

    // A logout to a URI the client did not register: refused.
    let response = browser
        .send(browser.client.get(format!(
            "{}?client_id=rp&post_logout_redirect_uri={}",
            s.proxy.url("/session/end"),
            encode("https://evil.example/landing?x=1")
        )))
        .await;
    assert_eq!(response.status().as_u16(), 400);
    let event = wait_event(&s.events, "LogoutFailed", |e| e["kind"] == "LogoutFailed").await;
    assert_eq!(event["outcome"], "failure");
    assert_eq!(event["redirect_uri"], "https://evil.example/landing");
    assert_eq!(event["actor"]["client_id"], "rp");
    assert_eq!(event["error"]["code"], "invalid_request");
    assert!(
        event["error"]["description"]
            .as_str()
            .unwrap()
            .contains("post_logout_redirect_uri"),
        "{event}"
    );

    // RP-Initiated Logout with the ID token as hint: the provider asks to confirm...
    let response = browser
        .send(browser.client.get(format!(
            "{}?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
            s.proxy.url("/session/end"),
            encode(&id_token),
            encode(SIGNED_OUT)
        )))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let page = response.text().await.unwrap();
    let xsrf = page
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the confirmation form")
        .to_owned();
    let event = wait_event(&s.events, "the logout request", |e| {
        e["kind"] == "LogoutSucceeded" && e["http"]["path"] == "/session/end"
    })
    .await;
    assert_eq!(event["outcome"], "unknown", "a confirmation page: not yet");
    assert_eq!(event["token"]["fingerprint"], fp(&id_token));
    assert_eq!(event["token"]["type_hint"], "id_token");
    assert_eq!(event["token"]["unverified"]["subject"], "alice");
    assert_eq!(event["token"]["unverified"]["client_id"], "rp");
    assert_eq!(event["redirect_uri"], SIGNED_OUT);

    // ...and the confirmation signs alice out and sends the browser back to the client.
    let response = browser
        .send(
            browser
                .client
                .post(s.proxy.url("/session/end/confirm"))
                .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")]),
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(SIGNED_OUT), "{location}");
    let event = wait_event(&s.events, "the confirmed logout", |e| {
        e["kind"] == "LogoutSucceeded" && e["http"]["path"] == "/session/end/confirm"
    })
    .await;
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["redirect_uri"], SIGNED_OUT);

    let all = std::fs::read_to_string(&s.events).unwrap();
    for secret in [
        "rp-secret",
        &request_uri,
        &code,
        &verifier,
        &challenge,
        &access_token,
        &id_token,
        &xsrf,
        "state-of-the-rp",
    ] {
        assert!(!all.contains(secret), "a secret leaked into the events");
    }
}

/// Metadata that names another issuer than the one asked for is refused (RFC 8414 §3.3), as
/// is a server without metadata: the proxy does not start, and says why.
#[tokio::test]
async fn a_wrong_issuer_or_no_metadata_stops_the_start() {
    let provider = OidcProvider::start();
    // The same server under another name: its metadata says 127.0.0.1, not localhost.
    let other_name = provider.issuer.replace("127.0.0.1", "localhost");
    let output = support::run(
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &provider.issuer,
            "--issuer-url",
            &other_name,
            "--out",
            "-",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("RFC 8414 §3.3"), "{stderr}");
    assert!(stderr.contains(&provider.issuer), "{stderr}");

    // A path with no metadata under it, either way.
    let output = support::run(
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &provider.issuer,
            "--issuer-url",
            &format!("{}/nothing-here", provider.issuer),
            "--out",
            "-",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("/nothing-here/.well-known/openid-configuration (HTTP 404)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/.well-known/oauth-authorization-server/nothing-here (HTTP 404)"),
        "{stderr}"
    );
}
