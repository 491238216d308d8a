//! Property: whatever secrets a client sends or a server returns, through every endpoint,
//! none reaches a writer, raw, percent-encoded or Base64-encoded, in any output format.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use oauth_audit::format::EventFormat;
use oauth_audit::oauth::Endpoints;
use oauth_audit::writer::{Auditor, JsonLines, MemoryWriter};
use oauth_audit::AuditLayer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use support::auth_server::{unsigned_jwt, AuthServer};
use support::serve;

#[derive(Debug, Clone)]
struct Secrets {
    client_secret: String,
    code: String,
    verifier: String,
    assertion_jti: String,
    password: String,
    refresh_token: String,
    access_token: String,
    issued_refresh: String,
    device_code: String,
    cookie: String,
    query: String,
    dpop_proof: String,
    request_uri: String,
    id_token_hint: String,
    /// Token exchange (RFC 8693): the `jti` of the subject token, and the actor token.
    subject_jti: String,
    actor_token: String,
}

fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_~+/=.-]{16,40}"
}

fn secrets() -> impl Strategy<Value = Secrets> {
    (
        (secret(), secret(), secret(), secret(), secret(), secret()),
        (secret(), secret(), secret(), secret(), secret(), secret()),
        (secret(), secret(), secret(), secret()),
    )
        .prop_map(
            |((a, b, c, d, e, f), (g, h, i, j, k, l), (m, n, o, p))| Secrets {
                client_secret: a,
                code: b,
                verifier: c,
                assertion_jti: d,
                password: e,
                refresh_token: f,
                access_token: g,
                issued_refresh: h,
                device_code: i,
                cookie: j,
                query: k,
                dpop_proof: l,
                request_uri: format!("urn:ietf:params:oauth:request_uri:{m}"),
                id_token_hint: n,
                subject_jti: o,
                actor_token: p,
            },
        )
}

fn form(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Every way a secret could show up in a log line.
fn encodings(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = secret.as_bytes();
    vec![
        secret.to_owned(),
        form(secret),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        // JSON escaping of `/` by other serialisers.
        secret.replace('/', "\\/"),
    ]
}

fn assert_absent(output: &str, secrets: &[String], writer: &str) -> Result<(), TestCaseError> {
    for secret in secrets {
        for encoded in encodings(secret) {
            prop_assert!(
                !output.contains(&encoded),
                "{writer}: secret {secret:?} appears as {encoded:?}"
            );
        }
    }
    Ok(())
}

fn fingerprint(token: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        &hex::encode(sha2::Sha256::digest(token.as_bytes()))[..32]
    )
}

#[test]
fn the_detector_sees_every_encoding() {
    let secret = "a+b/c=d~e.f_g-h0123".to_owned();
    for encoded in encodings(&secret) {
        let line = format!(r#"{{"x":"..{encoded}.."}}"#);
        assert!(assert_absent(&line, std::slice::from_ref(&secret), "self-check").is_err());
    }
    assert!(assert_absent("{}", &[secret], "self-check").is_ok());
}

struct Harness {
    addr: SocketAddr,
    server: Arc<AuthServer>,
    /// The `request_uri` the pushed authorization request endpoint answers next.
    request_uri: Arc<std::sync::Mutex<String>>,
    memory: MemoryWriter,
    http: reqwest::Client,
}

impl Harness {
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        headers: &[(&str, String)],
    ) -> reqwest::Response {
        let url = format!("http://{}{path}", self.addr);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        req.send().await.unwrap()
    }

    /// Sends `s` through every endpoint; returns every secret that was sent or received,
    /// the tokens whose fingerprints the events must hold, and how many events the requests
    /// make.
    async fn exercise(&self, s: &Secrets) -> (Vec<String>, Vec<String>, usize) {
        let mut seen = vec![
            s.client_secret.clone(),
            s.code.clone(),
            s.verifier.clone(),
            s.password.clone(),
            s.refresh_token.clone(),
            s.access_token.clone(),
            s.issued_refresh.clone(),
            s.device_code.clone(),
            s.cookie.clone(),
            s.query.clone(),
            s.dpop_proof.clone(),
            s.request_uri.clone(),
            s.id_token_hint.clone(),
            s.subject_jti.clone(),
            s.actor_token.clone(),
        ];
        let basic_value = format!("{}:{}", form("prop"), form(&s.client_secret));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(&basic_value)
        );
        seen.push(basic_value);
        seen.push(basic.clone());
        let auth = [("authorization", basic.clone())];
        let post_auth = format!("client_id=prop&client_secret={}", form(&s.client_secret));
        let mut requests = 0;
        let collect = |value: &Value, seen: &mut Vec<String>| {
            for key in ["access_token", "refresh_token", "id_token", "device_code"] {
                if let Some(v) = value[key].as_str() {
                    seen.push(v.to_owned());
                }
            }
        };

        // Token endpoint: client credentials (Basic, then post) issuing chosen tokens.
        self.server
            .next_tokens
            .lock()
            .unwrap()
            .push(s.access_token.clone());
        let r = self
            .send(
                "POST",
                "/token",
                Some("grant_type=client_credentials&scope=read".into()),
                &auth,
            )
            .await;
        collect(&json(r).await, &mut seen);
        let r = self
            .send(
                "POST",
                "/token",
                Some(format!("grant_type=client_credentials&{post_auth}")),
                &[],
            )
            .await;
        collect(&json(r).await, &mut seen);
        // Password (refused, then accepted with a chosen refresh token), code + verifier,
        // refresh.
        self.send(
            "POST",
            "/token",
            Some(format!(
                "grant_type=password&username=alice&password={}&{post_auth}",
                form(&s.password)
            )),
            &[],
        )
        .await;
        self.server
            .next_tokens
            .lock()
            .unwrap()
            .extend([s.issued_refresh.clone(), s.access_token.clone()]);
        let r = self
            .send(
                "POST",
                "/token",
                Some("grant_type=password&username=alice&password=wonderland".into()),
                &auth,
            )
            .await;
        collect(&json(r).await, &mut seen);
        self.send("POST", "/token", Some(format!("grant_type=authorization_code&code={}&code_verifier={}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb", form(&s.code), form(&s.verifier))), &auth).await;
        self.send(
            "POST",
            "/token",
            Some(format!(
                "grant_type=refresh_token&refresh_token={}",
                form(&s.refresh_token)
            )),
            &auth,
        )
        .await;
        let r = self
            .send(
                "POST",
                "/token",
                Some(format!(
                    "grant_type=refresh_token&refresh_token={}",
                    form(&s.issued_refresh)
                )),
                &auth,
            )
            .await;
        collect(&json(r).await, &mut seen);
        requests += 7;

        // Assertions: jwt-bearer grant with a client assertion, both carrying secrets.
        let assertion = unsigned_jwt("RS256", json!({"sub": "bob", "jti": s.assertion_jti}));
        let client_assertion = unsigned_jwt(
            "HS256",
            json!({"sub": "jwt-client", "jti": s.assertion_jti}),
        );
        seen.extend([
            assertion.clone(),
            client_assertion.clone(),
            s.assertion_jti.clone(),
        ]);
        let r = self.send("POST", "/token", Some(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={client_assertion}"
        )), &[]).await;
        collect(&json(r).await, &mut seen);
        // Token exchange with the chosen access token as subject token.
        self.send("POST", "/token", Some(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&{post_auth}",
            form(&s.access_token)
        )), &[]).await;
        // Token exchange with both tokens chosen: a JWT subject token (accepted) and an
        // opaque actor token, each recorded only by its fingerprint.
        let subject_token = unsigned_jwt("RS256", json!({"sub": "carol", "jti": s.subject_jti}));
        seen.push(subject_token.clone());
        let r = self.send("POST", "/token", Some(format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&actor_token={}&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&{post_auth}",
            form(&subject_token), form(&s.actor_token)
        )), &[]).await;
        collect(&json(r).await, &mut seen);
        let fingerprinted = vec![
            s.access_token.clone(),
            s.issued_refresh.clone(),
            s.device_code.clone(),
            subject_token,
            s.actor_token.clone(),
            s.request_uri.clone(),
            s.id_token_hint.clone(),
        ];
        requests += 3;

        // Device flow with a chosen device code.
        self.server
            .next_tokens
            .lock()
            .unwrap()
            .push(s.device_code.clone());
        let r = self
            .send(
                "POST",
                "/device_authorization",
                Some("client_id=tv".into()),
                &[],
            )
            .await;
        collect(&json(r).await, &mut seen);
        self.send("POST", "/token", Some(format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={}&client_id=tv", form(&s.device_code))), &[]).await;
        requests += 2;

        // Introspection and revocation of the chosen tokens.
        self.send(
            "POST",
            "/introspect",
            Some(format!("token={}", form(&s.access_token))),
            &auth,
        )
        .await;
        self.send(
            "POST",
            "/revoke",
            Some(format!(
                "token={}&token_type_hint=refresh_token&{post_auth}",
                form(&s.refresh_token)
            )),
            &[],
        )
        .await;
        requests += 2;

        // Authorization: a chosen code in the redirect, an implicit token in the fragment,
        // and the secrets in the query string.
        self.server.next_tokens.lock().unwrap().push(s.code.clone());
        let query = format!(
            "client_id=prop&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&state={}&nonce={}&code_challenge={}&session=alice",
            form(&s.query), form(&s.cookie), form(&s.verifier)
        );
        for response_type in ["code", "token"] {
            let r = self
                .send(
                    "GET",
                    &format!("/authorize?response_type={response_type}&{query}"),
                    None,
                    &[],
                )
                .await;
            if let Some(location) = r.headers().get("location") {
                seen.push(location.to_str().unwrap().to_owned());
                let url = url::Url::parse(location.to_str().unwrap()).unwrap();
                for part in [url.query(), url.fragment()].into_iter().flatten() {
                    for (k, v) in form_urlencoded::parse(part.as_bytes()) {
                        if k == "code" || k == "access_token" {
                            seen.push(v.into_owned());
                        }
                    }
                }
            }
        }
        requests += 2;

        // A pushed authorization request answered with a chosen request_uri, the
        // authorization request that presents it, and a logout with a chosen ID token hint.
        *self.request_uri.lock().unwrap() = s.request_uri.clone();
        let r = self
            .send(
                "POST",
                "/par",
                Some(format!(
                    "response_type=code&client_id=prop&redirect_uri=http%3A%2F%2Fapp.test%2Fcb&state={}",
                    form(&s.query)
                )),
                &auth,
            )
            .await;
        assert_eq!(json(r).await["request_uri"], s.request_uri.as_str());
        self.send(
            "GET",
            &format!(
                "/authorize?response_type=code&client_id=prop&request_uri={}",
                form(&s.request_uri)
            ),
            None,
            &[],
        )
        .await;
        self.send(
            "GET",
            &format!(
                "/logout?id_token_hint={}&post_logout_redirect_uri=http%3A%2F%2Fapp.test%2Fbye%3Fs%3D{}",
                form(&s.id_token_hint),
                form(&s.query)
            ),
            None,
            &[],
        )
        .await;
        requests += 3;

        // Login, and a protected route with a bearer token, a cookie and a query string.
        self.send(
            "POST",
            "/login",
            Some(format!("username=alice&password={}", form(&s.password))),
            &[],
        )
        .await;
        self.send(
            "GET",
            &format!("/app?token={}", form(&s.query)),
            None,
            &[
                ("authorization", format!("Bearer {}", s.access_token)),
                ("cookie", format!("session={}", s.cookie)),
            ],
        )
        .await;
        // The same token with the DPoP scheme and a proof, and a token request with one.
        self.send(
            "GET",
            "/app",
            None,
            &[
                ("authorization", format!("DPoP {}", s.access_token)),
                ("dpop", s.dpop_proof.clone()),
            ],
        )
        .await;
        let r = self
            .send(
                "POST",
                "/token",
                Some("grant_type=client_credentials&scope=read".into()),
                &[auth[0].clone(), ("dpop", s.dpop_proof.clone())],
            )
            .await;
        collect(&json(r).await, &mut seen);
        requests += 4;
        // Secrets shorter than this are parts of others; the property is about whole values.
        seen.retain(|v| v.len() >= 8);
        (seen, fingerprinted, requests)
    }
}

async fn json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null)
}

async fn wait_for(memory: &MemoryWriter, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while memory.events().len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} events, got {:?}",
            memory
                .json()
                .iter()
                .map(|e| format!("{} {}", e["kind"], e["http"]["path"]))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[test]
fn secrets_never_reach_any_writer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let path = std::env::temp_dir().join(format!(
        "oauth-audit-secrets-{}.jsonl",
        uuid::Uuid::now_v7().simple()
    ));
    let (harness, auditor) = rt.block_on(async {
        let memory = MemoryWriter::new();
        let auditor = Auditor::builder()
            .service_name("secrets")
            .writer(memory.clone())
            .writer(JsonLines::file(&path).await.unwrap())
            .build()
            .unwrap();
        let server = AuthServer::new();
        let layer = AuditLayer::builder(auditor.clone())
            .endpoints(
                Endpoints::builder()
                    .login("/login")
                    .pushed_authorization("/par")
                    .end_session("/logout")
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap();
        let request_uri = Arc::new(std::sync::Mutex::new(String::new()));
        let answer = request_uri.clone();
        let oidc = axum::Router::new()
            .route(
                "/par",
                axum::routing::post(move || {
                    let request_uri = answer.lock().unwrap().clone();
                    async move {
                        (
                            axum::http::StatusCode::CREATED,
                            axum::Json(json!({"request_uri": request_uri, "expires_in": 60})),
                        )
                    }
                }),
            )
            .route(
                "/logout",
                axum::routing::get(|| async {
                    (
                        axum::http::StatusCode::SEE_OTHER,
                        [(axum::http::header::LOCATION, "http://app.test/bye")],
                    )
                }),
            );
        let addr = serve(server.router().merge(oidc).layer(layer)).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        (
            Harness {
                addr,
                server,
                request_uri,
                memory,
                http,
            },
            auditor,
        )
    });

    let all_secrets = std::cell::RefCell::new(Vec::new());
    let expected = std::cell::Cell::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&secrets(), |s| {
        harness.memory.clear();
        let (seen, fingerprinted, requests) = rt.block_on(async {
            let out = harness.exercise(&s).await;
            wait_for(&harness.memory, out.2).await;
            out
        });
        expected.set(expected.get() + requests);
        let output = harness.memory.json_lines();
        // The chosen tokens went through the endpoints: their fingerprints are recorded.
        for token in &fingerprinted {
            prop_assert!(
                output.contains(&fingerprint(token)),
                "{token:?} not audited"
            );
        }
        all_secrets.borrow_mut().extend(seen.iter().cloned());
        assert_absent(&output, &seen, "memory")?;
        // The same events as ECS and OCSF: the mappings keep fingerprints, and add nothing.
        for format in [EventFormat::Ecs, EventFormat::Ocsf] {
            let mut lines = Vec::new();
            for event in harness.memory.events() {
                format.write(&mut lines, &event).unwrap();
                lines.push(b'\n');
            }
            let lines = String::from_utf8(lines).unwrap();
            for token in &fingerprinted {
                prop_assert!(
                    lines.contains(&fingerprint(token)),
                    "{token:?} not in the {format} events"
                );
            }
            assert_absent(&lines, &seen, format.as_str())?;
        }
        Ok(())
    });
    result.unwrap();

    rt.block_on(auditor.shutdown());
    let file = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        file.lines().count() >= expected.get(),
        "the file writer got every event"
    );
    let all_secrets = all_secrets.take();
    if let Err(e) = assert_absent(&file, &all_secrets, "json lines file") {
        panic!("{e}");
    }
}

/// Sends `s` to the echoing server through every endpoint and a protected route; returns
/// every secret sent, and how many events the requests make.
async fn exercise_echo(
    addr: SocketAddr,
    http: &reqwest::Client,
    s: &Secrets,
) -> (Vec<String>, usize) {
    let basic_value = format!("{}:{}", form("prop"), form(&s.client_secret));
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(&basic_value)
    );
    let jwt = unsigned_jwt("RS256", json!({"sub": "carol", "jti": s.assertion_jti}));
    let post = |path: &str, body: String, auth: Option<&str>| {
        let mut req = http
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(auth) = auth {
            req = req.header("authorization", auth.to_owned());
        }
        req.send()
    };
    post("/token", format!(
        "grant_type=authorization_code&code={}&code_verifier={}&client_id=prop&client_secret={}&redirect_uri=http%3A%2F%2Fapp.test%2Fcb",
        form(&s.code), form(&s.verifier), form(&s.client_secret)
    ), None).await.unwrap();
    post(
        "/token",
        format!(
            "grant_type=password&username=alice&password={}&refresh_token={}",
            form(&s.password),
            form(&s.refresh_token)
        ),
        Some(&basic),
    )
    .await
    .unwrap();
    post("/token", format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code={}&client_id=tv",
        form(&s.device_code)
    ), None).await.unwrap();
    post(
        "/revoke",
        format!(
            "token={}&client_id=prop&client_secret={}",
            form(&s.access_token),
            form(&s.client_secret)
        ),
        None,
    )
    .await
    .unwrap();
    post("/introspect", format!("token={}", form(&jwt)), Some(&basic))
        .await
        .unwrap();
    // Token exchange: the upstream quotes the subject and actor tokens back.
    let subject_token = unsigned_jwt("RS256", json!({"sub": "dave", "jti": s.subject_jti}));
    post("/token", format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Ajwt&actor_token={}&actor_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token",
        form(&subject_token), form(&s.actor_token)
    ), Some(&basic)).await.unwrap();
    http.get(format!(
        "http://{addr}/authorize?response_type=code&client_id=prop&state={}&nonce={}&code_challenge={}",
        form(&s.query), form(&s.cookie), form(&s.verifier)
    ))
    .send()
    .await
    .unwrap();
    for token in [s.access_token.as_str(), jwt.as_str()] {
        http.get(format!("http://{addr}/api/me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
    }
    let seen = vec![
        s.client_secret.clone(),
        s.code.clone(),
        s.verifier.clone(),
        s.password.clone(),
        s.refresh_token.clone(),
        s.access_token.clone(),
        s.device_code.clone(),
        s.cookie.clone(),
        s.query.clone(),
        // Not `assertion_jti`: the bearer JWT's `jti` is recorded as `token.jti` by design.
        jwt,
        basic_value,
        basic,
        s.subject_jti.clone(),
        subject_token,
        s.actor_token.clone(),
    ];
    (seen, 9)
}

/// Property: whatever secrets a request carries, an upstream that quotes them back in
/// `error_description`, a redirect or `WWW-Authenticate` does not get them into a writer.
#[test]
fn secrets_echoed_by_the_upstream_never_reach_a_writer() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (addr, memory, http) = rt.block_on(async {
        let memory = MemoryWriter::new();
        let auditor = Auditor::builder()
            .service_name("echo")
            .writer(memory.clone())
            .build()
            .unwrap();
        let layer = AuditLayer::new(auditor);
        let addr = serve(support::echo_server::router().layer(layer)).await;
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        (addr, memory, http)
    });
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        // Each case is nine HTTP exchanges: a failure is reported as found, not shrunk.
        max_shrink_iters: 0,
        ..Config::default()
    });
    let result = runner.run(&secrets(), |s| {
        memory.clear();
        let (seen, requests) = rt.block_on(async {
            let out = exercise_echo(addr, &http, &s).await;
            wait_for(&memory, out.1).await;
            out
        });
        let events = memory.json();
        // The echoes were recorded (scrubbed): the property is not vacuous.
        let described = events
            .iter()
            .filter(|e| {
                e["error"]["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("[redacted]"))
            })
            .count();
        prop_assert_eq!(described, requests, "{:#?}", events);
        assert_absent(&memory.json_lines(), &seen, "memory")
    });
    result.unwrap();
}
