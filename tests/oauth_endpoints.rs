//! OAuth endpoint traffic through the layer, against a small real authorization server
//! (`support/auth_server.rs`) on 127.0.0.1:0, over real HTTP.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use oauth_audit::oauth::{Endpoint, Endpoints};
use oauth_audit::writer::MemoryWriter;
use oauth_audit::AuditLayer;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::auth_server::{unsigned_jwt, AuthServer, REDIRECT};
use support::{client, events, memory_auditor, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Setup {
    addr: SocketAddr,
    memory: MemoryWriter,
    server: Arc<AuthServer>,
}

async fn setup() -> Setup {
    let (auditor, memory) = memory_auditor();
    let server = AuthServer::new();
    let layer = AuditLayer::builder(auditor)
        .endpoints(Endpoints::builder().login("/login").build().unwrap())
        .build()
        .unwrap();
    let addr = serve(server.router().layer(layer)).await;
    Setup {
        addr,
        memory,
        server,
    }
}

fn fp(token: &str) -> String {
    format!(
        "sha256:{}",
        &hex::encode(Sha256::digest(token.as_bytes()))[..32]
    )
}

fn basic(id: &str, secret: &str) -> String {
    let v = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {v}")
}

impl Setup {
    async fn post(&self, path: &str, body: &str, auth: Option<&str>) -> reqwest::Response {
        let mut req = client()
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        req.send().await.unwrap()
    }

    async fn token(&self, body: &str, auth: Option<&str>) -> Value {
        let res = self.post("/token", body, auth).await;
        serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
    }

    /// The events so far at `path`, once `n` events in all have arrived.
    async fn events_at(&self, n: usize, path: &str) -> Vec<Value> {
        events(&self.memory, n)
            .await
            .into_iter()
            .filter(|e| e["http"]["path"] == path)
            .collect()
    }
}

#[tokio::test]
async fn client_credentials_with_basic_and_post_auth() {
    let s = setup().await;
    let ok = s
        .token(
            "grant_type=client_credentials&scope=read+write&resource=https%3A%2F%2Fapi.test%2Fv1%3Fq%3D1",
            Some(&basic("svc", "svc-secret")),
        )
        .await;
    let at = ok["access_token"].as_str().unwrap();
    s.post(
        "/token",
        "grant_type=client_credentials&client_id=svc&client_secret=wrong",
        None,
    )
    .await;

    let all = s.events_at(2, "/token").await;
    let e = &all[0];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["outcome"], "success");
    assert_eq!(e["grant_type"], "client_credentials");
    assert_eq!(e["client_auth"], "client_secret_basic");
    assert_eq!(e["actor"], json!({"client_id": "svc", "kind": "client"}));
    assert_eq!(e["scopes"]["requested"], json!(["read", "write"]));
    assert_eq!(
        e["scopes"]["granted"],
        json!(["read", "write"]),
        "RFC 6749 §5.1"
    );
    assert_eq!(e["oauth"]["resource"], json!(["https://api.test/v1"]));
    assert_eq!(e["token"]["fingerprint"], fp(at));
    assert_eq!(e["token"]["format"], "opaque");
    assert_eq!(e["token"]["type_hint"], "Bearer");
    assert!(e["token"]["expires_at"].is_string());
    assert!(e.get("refresh_token").is_none());

    let e = &all[1];
    assert_eq!(e["kind"], "TokenRequestFailed");
    assert_eq!(e["severity"], "warning");
    assert_eq!(e["client_auth"], "client_secret_post");
    assert_eq!(e["actor"]["client_id"], "svc");
    assert_eq!(e["http"]["status"], 401);
    assert_eq!(e["error"]["code"], "invalid_client");
    assert!(!s.memory.json_lines().contains("svc-secret"));
    assert!(!s.memory.json_lines().contains("wrong"));
}

#[tokio::test]
async fn password_grant_success_and_failure() {
    let s = setup().await;
    let ok = s
        .token(
            "grant_type=password&username=alice&password=wonderland&scope=profile",
            Some(&basic("web", "web-secret")),
        )
        .await;
    s.post(
        "/token",
        "grant_type=password&username=alice&password=guess",
        Some(&basic("web", "web-secret")),
    )
    .await;
    let all = s.events_at(2, "/token").await;
    assert_eq!(all[0]["kind"], "AccessTokenIssued");
    assert_eq!(all[0]["actor"]["subject"], "alice");
    assert_eq!(all[0]["actor"]["kind"], "user");
    assert_eq!(all[0]["scopes"]["granted"], json!(["profile"]));
    assert_eq!(
        all[0]["refresh_token"]["fingerprint"],
        fp(ok["refresh_token"].as_str().unwrap())
    );
    assert_eq!(all[1]["kind"], "TokenRequestFailed");
    assert_eq!(all[1]["actor"]["subject"], "alice");
    assert_eq!(all[1]["error"]["code"], "invalid_grant");
    assert_eq!(
        all[1]["error"]["description"], "bad\\u{a}credentials",
        "sanitised"
    );
    let raw = s.memory.json_lines();
    for secret in ["wonderland", "guess", "web-secret"] {
        assert!(!raw.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_then_refresh_rotation() {
    let s = setup().await;
    let verifier = "dBjftJeZ4CVP-mJ0x-verifier-0123456789abcdefghijklmnop";
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let authorize = format!(
        "http://{}/authorize?response_type=code&client_id=web&redirect_uri={}&scope=openid+profile&state=STATE-123&nonce=NONCE-456&code_challenge={challenge}&code_challenge_method=S256",
        s.addr,
        form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
    );
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = no_redirects.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let granted = no_redirects
        .get(format!("{authorize}&session=alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), 302);
    let location = granted.headers()["location"].to_str().unwrap().to_owned();
    let code = location
        .split_once("code=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .to_owned();

    let tokens = s
        .token(
            &format!("grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&code_verifier={verifier}"),
            Some(&basic("web", "web-secret")),
        )
        .await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let rotated = s
        .token(
            &format!("grant_type=refresh_token&refresh_token={refresh}&scope=profile"),
            Some(&basic("web", "web-secret")),
        )
        .await;
    // The old refresh token was rotated away: reuse fails.
    s.post(
        "/token",
        &format!("grant_type=refresh_token&refresh_token={refresh}"),
        Some(&basic("web", "web-secret")),
    )
    .await;

    let all = events(&s.memory, 5).await;
    let authz: Vec<_> = all
        .iter()
        .filter(|e| e["http"]["path"] == "/authorize")
        .collect();
    assert_eq!(authz[0]["kind"], "AuthorizationRequested");
    assert_eq!(authz[0]["outcome"], "success");
    let g = authz[1];
    assert_eq!(g["kind"], "AuthorizationGranted");
    assert_eq!(g["actor"]["client_id"], "web");
    assert_eq!(g["redirect_uri"], REDIRECT);
    assert_eq!(g["oauth"]["response_type"], "code");
    assert_eq!(g["oauth"]["pkce_method"], "S256");
    assert_eq!(g["scopes"]["requested"], json!(["openid", "profile"]));

    let token: Vec<_> = all
        .iter()
        .filter(|e| e["http"]["path"] == "/token")
        .collect();
    let e = token[0];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["grant_type"], "authorization_code");
    assert_eq!(e["actor"]["subject"], "alice", "sub of the issued JWT");
    assert_eq!(e["oauth"]["pkce_method"], "verifier_sent");
    assert_eq!(e["token"]["format"], "jwt");
    assert!(e["token"]["jti"].is_string());
    assert_eq!(
        e["token"]["fingerprint"],
        fp(tokens["access_token"].as_str().unwrap())
    );
    assert_eq!(e["refresh_token"]["fingerprint"], fp(&refresh));
    assert_eq!(e["scopes"]["granted"], json!(["openid", "profile"]));

    let e = token[1];
    assert_eq!(e["grant_type"], "refresh_token");
    assert_eq!(
        e["oauth"]["presented_refresh_token"]["fingerprint"],
        fp(&refresh)
    );
    assert_eq!(
        e["refresh_token"]["fingerprint"],
        fp(rotated["refresh_token"].as_str().unwrap())
    );
    assert_ne!(e["refresh_token"], e["oauth"]["presented_refresh_token"]);
    assert_eq!(e["scopes"]["granted"], json!(["profile"]), "§5.1");
    assert_eq!(token[2]["kind"], "TokenRequestFailed");
    assert_eq!(token[2]["error"]["code"], "invalid_grant");

    let raw = s.memory.json_lines();
    for secret in [
        code.as_str(),
        verifier,
        "STATE-123",
        "NONCE-456",
        &challenge,
        &refresh,
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
    ] {
        assert!(!raw.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn authorization_failures_and_implicit_grant() {
    let s = setup().await;
    let base = format!("http://{}/authorize", s.addr);
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cb = "http%3A%2F%2Fapp.test%2Fcb";
    let denied = no_redirects
        .get(format!("{base}?response_type=code&client_id=web&redirect_uri={cb}&scope=admin&state=S1&session=alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 302);
    let bad = no_redirects
        .get(format!("{base}?response_type=code&client_id=web&redirect_uri=https%3A%2F%2Fevil.test%2Fx%3Fsteal%3D1&state=S2"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let implicit = no_redirects
        .get(format!("{base}?response_type=token&client_id=spa&redirect_uri={cb}&scope=read&state=S3&session=alice"))
        .send()
        .await
        .unwrap();
    let location = implicit.headers()["location"].to_str().unwrap().to_owned();
    let at = location
        .split_once("access_token=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    // POST to the authorization endpoint (OpenID Connect allows it).
    let posted = no_redirects
        .post(&base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "response_type=code&client_id=web&redirect_uri={cb}&scope=email&session=alice"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 302);

    let all = s.events_at(4, "/authorize").await;
    assert_eq!(all[0]["kind"], "AuthorizationFailed");
    assert_eq!(all[0]["error"]["code"], "access_denied");
    assert_eq!(all[0]["error"]["description"], "user refused");
    assert_eq!(all[1]["kind"], "AuthorizationFailed");
    assert_eq!(all[1]["http"]["status"], 400);
    assert_eq!(all[1]["error"]["code"], "http_400");
    assert_eq!(all[1]["redirect_uri"], "https://evil.test/x");
    let g = &all[2];
    assert_eq!(g["kind"], "AuthorizationGranted");
    assert_eq!(g["oauth"]["response_type"], "token");
    assert_eq!(g["token"]["fingerprint"], fp(&at));
    assert_eq!(g["token"]["type_hint"], "Bearer");
    assert_eq!(g["actor"]["subject"], "alice");
    assert_eq!(all[3]["kind"], "AuthorizationGranted");
    assert_eq!(all[3]["scopes"]["requested"], json!(["email"]));
    let raw = s.memory.json_lines();
    for secret in ["S1", "S2", "S3", "steal", at.as_str()] {
        assert!(!raw.contains(secret), "{secret} leaked");
    }
}

#[tokio::test]
async fn device_code_polling_is_recorded_once_per_outcome() {
    let s = setup().await;
    let res = s
        .post("/device_authorization", "client_id=tv&scope=read", None)
        .await;
    let device: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    let code = device["device_code"].as_str().unwrap();
    let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={code}&client_id=tv");
    for _ in 0..5 {
        s.post("/token", &body, None).await;
    }
    let token = s.events_at(4, "/token").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(s.memory.json().len(), 4, "5 polls, 3 events");
    assert_eq!(token[0]["error"]["code"], "authorization_pending");
    assert!(token[0]["oauth"].get("repeated").is_none());
    assert_eq!(token[0]["oauth"]["device_code_fingerprint"], fp(code));
    assert_eq!(token[0]["client_auth"], "none");
    assert_eq!(token[1]["error"]["code"], "slow_down");
    assert_eq!(token[1]["oauth"]["repeated"], 2);
    assert_eq!(token[2]["kind"], "AccessTokenIssued");
    assert_eq!(
        token[2]["grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
    assert_eq!(token[2]["actor"]["subject"], "alice");
    assert!(!s.memory.json_lines().contains(code));
}

#[tokio::test]
async fn token_exchange_jwt_bearer_and_client_assertions() {
    let s = setup().await;
    let subject_token = unsigned_jwt("RS256", json!({"sub": "alice", "iss": "http://as.test"}));
    let actor_token = unsigned_jwt("RS256", json!({"sub": "svc-b"}));
    let exchange = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={subject_token}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&actor_token={actor_token}&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&audience=billing&resource=https%3A%2F%2Fbilling.test%2F"
    );
    s.token(&exchange, Some(&basic("svc", "svc-secret"))).await;

    let assertion = unsigned_jwt("RS256", json!({"sub": "bob", "iss": "partner"}));
    let client_assertion = |alg: &str| {
        unsigned_jwt(
            alg,
            json!({"iss": "jwt-client", "sub": "jwt-client", "aud": "http://as.test/token"}),
        )
    };
    let private_key = client_assertion("RS256");
    let jwt_bearer = format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={private_key}"
    );
    s.token(&jwt_bearer, None).await;
    let hs = client_assertion("HS256");
    s.token(
        &format!("grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={hs}"),
        None,
    )
    .await;

    let all = s.events_at(3, "/token").await;
    let e = &all[0];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["actor"]["subject"], "alice");
    assert_eq!(e["actor"]["client_id"], "svc");
    assert_eq!(e["oauth"]["act"], "svc-b");
    assert_eq!(
        e["oauth"]["subject_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(
        e["oauth"]["actor_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(e["oauth"]["audience"], json!(["billing"]));
    assert_eq!(e["oauth"]["resource"], json!(["https://billing.test/"]));
    assert_eq!(
        e["token"]["type_hint"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    let e = &all[1];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["actor"]["subject"], "bob");
    assert_eq!(e["actor"]["client_id"], "jwt-client");
    assert_eq!(e["client_auth"], "private_key_jwt");
    assert_eq!(all[2]["client_auth"], "client_secret_jwt");
    assert_eq!(all[2]["actor"]["kind"], "client");
    let raw = s.memory.json_lines();
    for secret in [&subject_token, &actor_token, &assertion, &private_key, &hs] {
        assert!(!raw.contains(secret.as_str()));
    }
}

#[tokio::test]
async fn revocation_and_introspection() {
    let s = setup().await;
    let issued = s
        .token(
            "grant_type=password&username=alice&password=wonderland&scope=read",
            Some(&basic("web", "web-secret")),
        )
        .await;
    let at = issued["access_token"].as_str().unwrap();
    let rs = basic("rs", "rs-secret");
    s.post(
        "/introspect",
        &format!("token={at}&token_type_hint=access_token"),
        Some(&rs),
    )
    .await;
    let res = client()
        .post(format!("http://{}/revoke", s.addr))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", basic("web", "web-secret"))
        .header("x-revocation-reason", "user\tlogged out")
        .body(format!("token={at}&token_type_hint=access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    s.post("/introspect", &format!("token={at}"), Some(&rs))
        .await;
    s.post("/introspect", &format!("token={at}"), None).await;
    s.post(
        "/revoke",
        &format!("token={at}&client_id=web&client_secret=nope&reason=compromised"),
        None,
    )
    .await;

    let all = events(&s.memory, 6).await;
    let i = &all[1];
    assert_eq!(i["kind"], "TokenIntrospected");
    assert_eq!(i["actor"], json!({"client_id": "rs", "kind": "client"}));
    assert_eq!(i["client_auth"], "client_secret_basic");
    assert_eq!(i["token"]["fingerprint"], fp(at));
    assert_eq!(i["token"]["active"], true);
    assert_eq!(i["token"]["subject"], "alice");
    assert_eq!(i["token"]["client_id"], "web");
    assert_eq!(i["token"]["type_hint"], "access_token");
    assert_eq!(i["scopes"]["granted"], json!(["read"]));
    let r = &all[2];
    assert_eq!(r["kind"], "TokenRevoked");
    assert_eq!(r["actor"]["client_id"], "web");
    assert_eq!(r["token"]["fingerprint"], fp(at));
    assert_eq!(r["token"]["type_hint"], "access_token");
    assert_eq!(r["oauth"]["reason"], "user\\u{9}logged out");
    let i = &all[3];
    assert_eq!(i["kind"], "TokenIntrospected");
    assert_eq!(i["token"]["active"], false);
    assert!(i["token"].get("subject").is_none());
    let i = &all[4];
    assert_eq!(i["kind"], "TokenIntrospectionFailed");
    assert_eq!(i["error"]["code"], "invalid_client");
    let r = &all[5];
    assert_eq!(r["kind"], "TokenRevocationFailed");
    assert_eq!(r["error"]["code"], "invalid_client");
    assert_eq!(r["oauth"]["reason"], "compromised");
    let raw = s.memory.json_lines();
    assert!(!raw.contains(at) && !raw.contains("nope") && !raw.contains("rs-secret"));
}

#[tokio::test]
async fn login_routes_record_the_username_never_the_password() {
    let s = setup().await;
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for password in ["wonderland", "hunter2"] {
        no_redirects
            .post(format!("http://{}/login", s.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("username=alice&password={password}"))
            .send()
            .await
            .unwrap();
    }
    client()
        .get(format!("http://{}/app", s.addr))
        .send()
        .await
        .unwrap();
    let all = events(&s.memory, 3).await;
    assert_eq!(all[0]["kind"], "LoginSucceeded");
    assert_eq!(all[0]["actor"], json!({"subject": "alice", "kind": "user"}));
    assert_eq!(all[1]["kind"], "LoginFailed");
    assert_eq!(all[1]["outcome"], "failure");
    assert_eq!(all[2]["kind"], "ResourceAccessed", "other paths unchanged");
    let raw = s.memory.json_lines();
    assert!(!raw.contains("wonderland") && !raw.contains("hunter2"));
    assert!(!raw.contains("error=invalid"), "Location query never kept");
}

#[tokio::test]
async fn endpoints_map_any_path() {
    let (auditor, memory) = memory_auditor();
    let server = AuthServer::new();
    let endpoints = Endpoints::builder()
        .no_defaults()
        .path("/oauth2/token", Endpoint::Token)
        .path("/oauth2/introspect", Endpoint::Introspection)
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    let app = axum::Router::new()
        .nest("/oauth2", server.router())
        .layer(layer);
    let addr = serve(app).await;
    for path in ["/oauth2/token", "/oauth2/revoke"] {
        client()
            .post(format!("http://{addr}{path}"))
            .header("authorization", basic("svc", "svc-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&token=x")
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 2).await;
    assert_eq!(all[0]["kind"], "AccessTokenIssued");
    assert_eq!(
        all[1]["kind"], "ResourceAccessed",
        "not mapped: a protected route"
    );
}

/// Sends a chunked request by hand, pausing between chunks; returns the response head.
async fn chunked_request(addr: SocketAddr, chunks: &[&[u8]], pause: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\nauthorization: {}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        basic("svc", "svc-secret")
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in chunks {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
        stream.flush().await.unwrap();
        tokio::time::sleep(pause).await;
    }
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn header<'a>(response: &'a str, name: &str) -> &'a str {
    response
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {response}"))
}

#[tokio::test]
async fn handler_sees_the_exact_streamed_body() {
    let s = setup().await;
    let chunks: [&[u8]; 3] = [b"grant_type=client_", b"credentials&sco", b"pe=read+write"];
    let whole: Vec<u8> = chunks.concat();
    let response = chunked_request(s.addr, &chunks, Duration::from_millis(150)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(
        header(&response, "x-body-sha256"),
        hex::encode(Sha256::digest(&whole))
    );
    let frames: usize = header(&response, "x-body-frames").parse().unwrap();
    let gap: u64 = header(&response, "x-body-gap-ms").parse().unwrap();
    assert!(frames >= 2, "streamed, not buffered: {frames} frames");
    assert!(gap >= 200, "the handler read frames as they came: {gap} ms");

    let e = &s.events_at(1, "/token").await[0];
    assert_eq!(e["grant_type"], "client_credentials");
    assert_eq!(e["scopes"]["requested"], json!(["read", "write"]));
    assert!(
        e.get("oauth").is_none(),
        "inspected: no body_inspected flag"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_passes_untouched_and_is_not_inspected() {
    let s = setup().await;
    let padding = "p".repeat(70 * 1024);
    let body = format!(
        "grant_type=client_credentials&client_id=prop&client_secret=big-secret-XYZ&padding={padding}"
    );
    let res = s.post("/token", &body, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["x-body-sha256"].to_str().unwrap(),
        hex::encode(Sha256::digest(body.as_bytes()))
    );
    let e = &s.events_at(1, "/token").await[0];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(e["oauth"]["body_inspected"], false);
    assert!(e.get("grant_type").is_none());
    assert!(!s.memory.json_lines().contains("big-secret-XYZ"));
    let _ = &s.server;
}
