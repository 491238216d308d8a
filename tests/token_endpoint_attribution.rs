//! Whom the token endpoint's events name, which device polls they condense, and which
//! error codes they keep: against servers written here that authenticate clients their own
//! way (a JWT client assertion, token exchange for an audience, their own spelling of an
//! id), answer device polls GitHub's way, or fail a request that carries its own error code.
//! From an adversarial review (5 December 2026).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::RawQuery;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use oauth_audit::oauth::Endpoints;
use oauth_audit::writer::MemoryWriter;
use serde_json::{json, Value};
use support::{client_without_redirects, events, post_form, serve_with_endpoints};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEVICE_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";
const TOKEN_EXCHANGE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange";
const JWT_ASSERTION: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

/// Sends a last request, a marker, and returns every event once the marker's is in: each
/// request before it made its event before its response ended.
async fn events_before_a_marker(addr: SocketAddr, memory: &MemoryWriter) -> Vec<Value> {
    post_form(
        addr,
        "/token",
        "grant_type=client_credentials&client_id=marker".into(),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let all = memory.json();
        if all.iter().any(|e| e["actor"]["client_id"] == "marker") {
            return all;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no marker event: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Posts a token request `body` with HTTP Basic `id:secret`, then the marker: the events of
/// both, the request's first.
async fn token_request_with_basic(
    addr: SocketAddr,
    memory: &MemoryWriter,
    (id, secret): (&str, &str),
    body: &'static str,
) -> Vec<Value> {
    client_without_redirects()
        .post(format!("http://{addr}/token"))
        .basic_auth(id, Some(secret))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    events_before_a_marker(addr, memory).await
}

/// Polls the token endpoint for `device_code` as `client` (RFC 8628 §3.4).
async fn poll(addr: SocketAddr, device_code: &str, client: &str) {
    post_form(
        addr,
        "/token",
        format!("grant_type={DEVICE_GRANT}&device_code={device_code}&client_id={client}"),
    )
    .await;
}

/// The device-code polls among `events`.
fn polls(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["oauth"].get("device_code_fingerprint").is_some())
        .collect()
}

/// A token answer whose access token is a JWT issued to `client` (`sub` and `azp`).
fn issued_to(client: &str) -> Json<Value> {
    let token = support::keys::hs256(&json!({
        "sub": client, "azp": client, "exp": support::keys::now() + 600,
    }));
    Json(json!({"access_token": token, "token_type": "Bearer"}))
}

fn assertion_for(sub: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256"}"#),
        b64(
            &json!({"iss": sub, "sub": sub, "aud": "as", "exp": support::keys::now() + 60})
                .to_string()
        )
    )
}

fn form_of(body: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

/// A server that authenticates a client by its JWT assertion (RFC 7523: the assertion's
/// `sub` is the client) and ignores the form's `client_id`, issuing an opaque token; its
/// revocation endpoint does the same.
fn assertion_authenticating_server() -> Router {
    let token = |body: String| async move {
        let form = form_of(&body);
        let authenticated = form
            .get("client_assertion")
            .and_then(|a| a.split('.').nth(1).map(str::to_owned))
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
            .and_then(|p| p["sub"].as_str().map(str::to_owned));
        match authenticated.as_deref() {
            Some("attacker-app") => (
                StatusCode::OK,
                Json(json!({"access_token": "opaque-at-1", "token_type": "Bearer"})),
            ),
            _ => (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_client"})),
            ),
        }
    };
    Router::new()
        .route("/token", post(token))
        .route("/revoke", post(|_body: String| async { "" }))
}

/// A request whose form names `victim-app` but whose client assertion (what the server
/// authenticates, RFC 7523 §3) names `attacker-app`: the actor is the asserted client, on
/// an opaque token's issuance and on a revocation alike.
#[tokio::test]
async fn the_client_assertion_is_the_authenticated_client_not_the_form_client_id() {
    let (addr, memory) =
        serve_with_endpoints(assertion_authenticating_server(), Endpoints::default()).await;
    let body = format!(
        "grant_type=client_credentials&client_id=victim-app&client_assertion_type={JWT_ASSERTION}&client_assertion={}",
        assertion_for("attacker-app")
    );
    let res = post_form(addr, "/token", body.clone()).await;
    assert_eq!(res.status(), 200);
    let revoke = format!(
        "token=t&client_id=victim-app&client_assertion_type={JWT_ASSERTION}&client_assertion={}",
        assertion_for("attacker-app")
    );
    post_form(addr, "/revoke", revoke).await;
    let all = events(&memory, 2).await;
    for e in &all {
        assert_eq!(
            e["actor"]["client_id"], "attacker-app",
            "the assertion authenticated attacker-app: {e}"
        );
    }
}

/// A Keycloak-V1-style token exchange: the requester authenticates as `starting-client`
/// and asks for a token for `audience=target-client`; the token is minted for the target
/// (`azp: target-client`). Ordinary, configured traffic.
fn audience_exchanging_server() -> Router {
    Router::new().route(
        "/token",
        post(|body: String| async move {
            let form = form_of(&body);
            if form.get("client_secret").map(String::as_str) != Some("starting-secret") {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": "invalid_client"})),
                );
            }
            let azp = form
                .get("audience")
                .cloned()
                .unwrap_or_else(|| form["client_id"].clone());
            let token = support::keys::hs256(&json!({
                "sub": "alice", "azp": azp, "exp": support::keys::now() + 600,
            }));
            (
                StatusCode::OK,
                Json(json!({
                    "access_token": token, "token_type": "Bearer",
                    "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
                })),
            )
        }),
    )
}

/// The client that authenticated and asked is the actor; the token minted for the
/// audience is no conflict and no warning.
#[tokio::test]
async fn an_ordinary_audience_exchange_is_neither_misattributed_nor_a_warning() {
    let (addr, memory) =
        serve_with_endpoints(audience_exchanging_server(), Endpoints::default()).await;
    let subject = support::keys::hs256(&json!({"sub": "alice", "azp": "initial-client"}));
    let body = format!(
        "grant_type={TOKEN_EXCHANGE}&client_id=starting-client&client_secret=starting-secret&subject_token={subject}&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=target-client"
    );
    assert_eq!(post_form(addr, "/token", body).await.status(), 200);
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["kind"], "AccessTokenIssued");
    assert_eq!(
        e["actor"]["client_id"], "starting-client",
        "the client that authenticated and asked: {e}"
    );
    assert!(e["oauth"].get("conflicting_client_id").is_none(), "{e}");
    assert_eq!(e["severity"], "info", "{e}");
}

/// A server that reads client ids case-insensitively (GUIDs) and writes its own spelling
/// into the token: no conflict, no warning.
#[tokio::test]
async fn a_server_spelling_the_client_id_its_own_way_is_not_a_conflict() {
    let app = Router::new().route(
        "/token",
        post(|body: String| async move {
            let form = form_of(&body);
            let id = form["client_id"].to_ascii_lowercase();
            issued_to(&id)
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let body = "grant_type=client_credentials&client_id=6731DE76-14A6-49AE-97BC-6EBA6914391E&client_secret=s".to_owned();
    post_form(addr, "/token", body).await;
    let e = &events(&memory, 1).await[0];
    assert!(e["oauth"].get("conflicting_client_id").is_none(), "{e}");
    assert_eq!(e["severity"], "info", "{e}");
}

/// A token endpoint that holds a request marked `slow=1` (and so its copy in the shared
/// budget) until released, and answers `big=1` with a JSON body streamed in two frames,
/// the first within the body limit, the whole past it.
fn budget_server(arrived: Arc<tokio::sync::Notify>, release: Arc<tokio::sync::Notify>) -> Router {
    Router::new().route(
        "/token",
        post(move |body: Bytes| async move {
            if body.starts_with(b"slow=1") {
                arrived.notify_one();
                release.notified().await;
            }
            if body.starts_with(b"big=1") {
                let (mut tx, channel) =
                    http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(2);
                tokio::spawn(async move {
                    let _ = tx
                        .send_data(Bytes::from(format!(
                            "{{\"access_token\":\"at\",\"pad\":\"{}",
                            "p".repeat(600)
                        )))
                        .await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = tx
                        .send_data(Bytes::from(format!("{}\"}}", "p".repeat(3000))))
                        .await;
                });
                return Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::new(channel))
                    .unwrap();
            }
            Json(json!({"access_token": "at-budget", "token_type": "Bearer"})).into_response()
        }),
    )
}

/// Sends a request whose body arrives in two parts: 600 bytes, then, 50 ms later, the rest
/// (3,000 bytes in all, past the 1,024-byte limit). Returns the status line.
async fn two_part_post(addr: SocketAddr, first: &[u8], rest: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /token HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        first.len() + rest.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(rest).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A body past the limit is `*_too_large` whether or not the budget was full when its
/// first frame came, never `*_over_budget` ("within the limit").
#[tokio::test]
async fn a_body_past_the_limit_is_too_large_even_when_the_budget_was_full() {
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let endpoints = Endpoints::builder()
        .token("/token")
        .body_limit(1024)
        .max_captured_bytes(1024)
        .build()
        .unwrap();
    let (addr, memory) =
        serve_with_endpoints(budget_server(arrived.clone(), release.clone()), endpoints).await;
    let slow = support::hold_a_slow_request(addr);
    arrived.notified().await;
    // 3,000 bytes, the first 600 of them alone: within the limit, not within the 24 bytes
    // the slow request left. The answer: 3,600 bytes, its first frame 600.
    let first = format!(
        "big=1&grant_type=client_credentials&pad={}",
        "q".repeat(560)
    );
    let rest = "q".repeat(3000 - first.len());
    let status = two_part_post(addr, first.as_bytes(), rest.as_bytes()).await;
    assert!(status.contains("200"), "{status}");
    release.notify_one();
    slow.await.unwrap();
    let all = events(&memory, 2).await;
    let big = all
        .iter()
        .find(|e| {
            e["oauth"]["body_not_inspected"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        })
        .unwrap_or_else(|| panic!("{all:#?}"));
    assert_eq!(
        big["oauth"]["body_not_inspected"],
        json!(["request_too_large", "response_too_large"]),
        "{big}"
    );
}

/// GitHub answers a device poll that must wait with HTTP 200 and
/// `{"error":"authorization_pending"}`: a refusal, condensed like any waiting poll, never an
/// `AccessTokenIssued` success.
#[tokio::test]
async fn a_pending_poll_answered_with_200_is_neither_a_success_nor_a_flood() {
    let app = Router::new().route(
        "/token",
        post(|_body: Bytes| async {
            Json(json!({
                "error": "authorization_pending",
                "error_description": "The authorization request is still pending.",
            }))
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    for _ in 0..3 {
        poll(addr, "dc-github", "gh-cli").await;
    }
    let all = events_before_a_marker(addr, &memory).await;
    let polls = polls(&all);
    for p in &polls {
        assert_ne!(p["kind"], "AccessTokenIssued", "no token was issued: {p}");
    }
    assert_eq!(
        polls.len(),
        1,
        "identical waiting polls condensed: {all:#?}"
    );
}

/// GitHub answers form-encoded unless asked for JSON: a waiting poll is `200` with
/// `error=authorization_pending&…`, a token `access_token=…&scope=…&token_type=bearer`. The
/// first is a refusal, the second an issued token with its fingerprint and granted scopes.
#[tokio::test]
async fn form_encoded_answers_are_read_like_json_ones() {
    let app = Router::new().route(
        "/token",
        post(|body: Bytes| async move {
            let form = form_of(std::str::from_utf8(&body).unwrap());
            let answer = if form.get("device_code").map(String::as_str) == Some("dc-ready") {
                "access_token=gho_form_encoded_secret&scope=repo%20gist&token_type=bearer"
            } else {
                "error=authorization_pending&error_description=The+authorization+request+is+still+pending."
            };
            (
                [(header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")],
                answer,
            )
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    for code in ["dc-waiting", "dc-waiting", "dc-ready"] {
        poll(addr, code, "gh-cli").await;
    }
    let all = events_before_a_marker(addr, &memory).await;
    let polls = polls(&all);
    assert_eq!(polls.len(), 2, "one waiting poll, one issuance: {all:#?}");
    assert_eq!(polls[0]["kind"], "TokenRequestFailed", "{}", polls[0]);
    assert_eq!(polls[0]["error"]["code"], "authorization_pending");
    assert_eq!(polls[1]["kind"], "AccessTokenIssued", "{}", polls[1]);
    assert!(
        polls[1]["token"]["fingerprint"].is_string(),
        "the issued token's fingerprint: {}",
        polls[1]
    );
    assert_eq!(polls[1]["scopes"]["granted"], json!(["repo", "gist"]));
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("gho_form_encoded_secret"), "{text}");
}

/// A device that keeps polling after its code expired (RFC 8628 §3.5 says stop; many do
/// not): identical `expired_token` answers are condensed.
#[tokio::test]
async fn a_device_polling_an_expired_code_does_not_flood() {
    let app = Router::new().route(
        "/token",
        post(|_body: Bytes| async {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "expired_token"})),
            )
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    for _ in 0..20 {
        poll(addr, "dc-expired", "tv").await;
    }
    let all = events_before_a_marker(addr, &memory).await;
    let polls = all
        .iter()
        .filter(|e| e["oauth"].get("device_code_fingerprint").is_some())
        .count();
    assert!(polls <= 2, "{polls} events for 20 identical expired polls");
}

/// A pending poll that names two clients (Basic `tv`, form `client_id=evil`) is recorded
/// with its `conflicting_client_id`, not condensed into the clean polls of `tv` before it.
#[tokio::test]
async fn a_conflicting_poll_is_not_condensed_into_clean_ones() {
    let app = Router::new().route(
        "/token",
        post(|_body: Bytes| async {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "authorization_pending"})),
            )
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("tv:tv-secret")
    );
    for form_client in ["tv", "evil"] {
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", &basic)
            .body(format!(
                "grant_type={DEVICE_GRANT}&device_code=dc-shared&client_id={form_client}"
            ))
            .send()
            .await
            .unwrap();
    }
    let all = events_before_a_marker(addr, &memory).await;
    assert!(
        all.iter()
            .any(|e| e["oauth"]["conflicting_client_id"] == "evil"),
        "{all:#?}"
    );
}

/// Pending polls of `TV`, then an issuance whose token spells the client `tv`: the
/// issuance carries the count of the polls condensed before it.
#[tokio::test]
async fn the_issuance_carries_the_count_of_the_polls_before_it() {
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let app = Router::new().route(
        "/token",
        post(move |_body: Bytes| {
            let counter = counter.clone();
            async move {
                if counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 3 {
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"error": "authorization_pending"})),
                    );
                }
                let token = support::keys::hs256(&json!({
                    "sub": "alice", "azp": "tv", "exp": support::keys::now() + 600,
                }));
                (
                    StatusCode::OK,
                    Json(json!({"access_token": token, "token_type": "Bearer"})),
                )
            }
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    for _ in 0..4 {
        poll(addr, "dc-count", "TV").await;
    }
    let all = events(&memory, 2).await;
    let issued = &all[1];
    assert_eq!(issued["kind"], "AccessTokenIssued", "{all:#?}");
    assert_eq!(issued["oauth"]["repeated"], 2, "{issued}");
}

/// A parameter the server ignores, whose value is the error code an attacker expects,
/// cannot make the code a "secret" to scrub: failed password guesses stay `invalid_grant`.
#[tokio::test]
async fn a_failures_code_cannot_be_scrubbed_away_by_the_request() {
    let app = Router::new().route(
        "/token",
        post(|_body: Bytes| async {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant"})),
            )
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    post_form(
        addr,
        "/token",
        "grant_type=password&username=alice&password=guess-0001&client_id=app&zz=invalid_grant"
            .into(),
    )
    .await;
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["error"]["code"], "invalid_grant", "{e}");
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// A JWT client assertion whose `iss` and `sub` differ (RFC 7523 §3 wants both the client):
/// a server that finds the client and its keys by `iss` authenticates `attacker-app`, so
/// the event names it, as the actor or the conflicting client, with a warning.
#[tokio::test]
async fn an_assertion_whose_iss_and_sub_differ_is_a_conflict() {
    let app = Router::new().route(
        "/token",
        post(|body: String| async move {
            let form = form_of(&body);
            if form.get("client_id").map(String::as_str) == Some("marker") {
                return Json(json!({"access_token": "m", "token_type": "Bearer"}));
            }
            // Authenticated by the assertion's issuer (signature checked against its keys).
            Json(json!({"access_token": "opaque-at", "token_type": "Bearer"}))
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let assertion = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"iss":"attacker-app","sub":"victim-app","aud":"as"}"#)
    );
    post_form(
        addr,
        "/token",
        format!("grant_type=client_credentials&client_assertion_type={JWT_ASSERTION}&client_assertion={assertion}"),
    )
    .await;
    let all = events_before_a_marker(addr, &memory).await;
    let e = &all[0];
    let names_both = e["actor"]["client_id"] == "attacker-app"
        || e["oauth"]["conflicting_client_id"] == "attacker-app";
    assert!(names_both, "attacker-app (iss) is nowhere: {e}");
    assert_eq!(e["severity"], "warning", "{e}");
}

/// A token issued to another client than the only one the request named, as the layer reads
/// it: here the server merges query and body parameters (as servlet containers do) and
/// authenticates the query's client while the body names `victim-app`. The server's word is
/// the actor, the request's name the conflicting one, with a warning.
#[tokio::test]
async fn a_token_issued_to_another_client_than_the_one_named_is_not_silent() {
    let app = Router::new().route(
        "/token",
        post(|RawQuery(query): RawQuery, body: String| async move {
            let form = form_of(&body);
            if form.get("client_id").map(String::as_str) == Some("marker") && query.is_none() {
                return Json(json!({"access_token": "m", "token_type": "Bearer"}));
            }
            let q = form_of(&query.unwrap_or_default());
            let client = q
                .get("client_id")
                .or(form.get("client_id"))
                .cloned()
                .unwrap();
            issued_to(&client)
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    post_form(
        addr,
        "/token?client_id=attacker-app&client_secret=attacker-secret",
        "grant_type=client_credentials&client_id=victim-app".into(),
    )
    .await;
    let all = events_before_a_marker(addr, &memory).await;
    let e = &all[0];
    assert_eq!(e["kind"], "AccessTokenIssued", "{e}");
    let flagged = e["actor"]["client_id"] == "attacker-app"
        || e["oauth"]["conflicting_client_id"] == "attacker-app";
    assert!(flagged, "the token was issued to attacker-app: {e}");
    assert_eq!(e["severity"], "warning", "{e}");
}

/// A request naming two clients (Basic's and the form's `client_id`) answered with a token
/// issued to a third: the server's word is the actor, and both names the request gave are
/// the conflicting ones, with a warning. Before, the request's first name stayed the actor
/// and the third client was nowhere in the event.
#[tokio::test]
async fn a_token_issued_to_a_third_client_makes_it_the_actor() {
    let app = Router::new().route(
        "/token",
        post(|body: String| async move {
            if form_of(&body).get("client_id").map(String::as_str) == Some("marker") {
                return Json(json!({"access_token": "m", "token_type": "Bearer"}));
            }
            issued_to("third-app")
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let all = token_request_with_basic(
        addr,
        &memory,
        ("basic-app", "basic-s3cret"),
        "grant_type=client_credentials&client_id=form-app",
    )
    .await;
    let e = &all[0];
    assert_eq!(e["kind"], "AccessTokenIssued", "{e}");
    assert_eq!(e["actor"]["client_id"], "third-app", "{e}");
    assert_eq!(e["oauth"]["conflicting_client_id"], "basic-app", "{e}");
    assert_eq!(
        e["oauth"]["conflicting_client_ids"],
        json!(["basic-app", "form-app"]),
        "{e}"
    );
    assert_eq!(e["severity"], "warning", "{e}");
}

/// A request naming two clients, `Basic victim-app:wrong` and a form authenticating
/// `ATTACKER-APP`, answered by a server that reads ids in any case with a token for
/// `attacker-app`: the server believed the form's client, so it is the actor (as the
/// request spelt it) and `victim-app` the conflicting one. Only the actor's own name in
/// another case leaves the actor as it was.
#[tokio::test]
async fn a_token_issued_to_a_conflicting_client_in_another_case_makes_it_the_actor() {
    let app = Router::new().route(
        "/token",
        post(|body: String| async move {
            let form = form_of(&body);
            if form.get("client_id").map(String::as_str) == Some("marker") {
                return Json(json!({"access_token": "m", "token_type": "Bearer"}));
            }
            issued_to(&form["client_id"].to_ascii_lowercase())
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let all = token_request_with_basic(
        addr,
        &memory,
        ("victim-app", "wrong"),
        "grant_type=client_credentials&client_id=ATTACKER-APP&client_secret=attacker-s3cret",
    )
    .await;
    let e = &all[0];
    assert_eq!(e["kind"], "AccessTokenIssued", "{e}");
    assert_eq!(e["actor"]["client_id"], "ATTACKER-APP", "{e}");
    assert_eq!(e["client_auth"], "client_secret_post", "{e}");
    assert_eq!(e["oauth"]["conflicting_client_id"], "victim-app", "{e}");
    assert_eq!(e["severity"], "warning", "{e}");
}

/// A server that authenticates the form's `client_id` by the `client_secret` beside it and
/// ignores a client assertion for another client, issuing the token to the form's client:
/// that client is the actor, authenticated by its secret, the asserted one the conflict.
#[tokio::test]
async fn a_secret_beside_an_assertion_for_another_client_is_how_the_issued_client_authenticated() {
    let app = Router::new().route(
        "/token",
        post(|body: String| async move {
            let form = form_of(&body);
            let client = form["client_id"].clone();
            issued_to(&client)
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let body = format!(
        "grant_type=client_credentials&client_id=form-app&client_secret=form-secret&client_assertion_type={JWT_ASSERTION}&client_assertion={}",
        assertion_for("asserted-app")
    );
    post_form(addr, "/token", body).await;
    let all = events_before_a_marker(addr, &memory).await;
    let e = &all[0];
    assert_eq!(e["actor"]["client_id"], "form-app", "{e}");
    assert_eq!(e["oauth"]["conflicting_client_id"], "asserted-app", "{e}");
    assert_eq!(e["client_auth"], "client_secret_post", "{e}");
    assert_eq!(e["severity"], "warning", "{e}");
}

/// A client id with a `+`, sent in Basic as it is (not form-encoded, as RFC 6749 §2.3.1
/// asks but many clients skip) and form-encoded in the form (`%2B`): one client, no
/// conflict, by the form's spelling; and by the issued token's when the server answered
/// before the form was read.
#[tokio::test]
async fn a_plus_sent_raw_in_basic_is_not_a_second_client() {
    async fn issue(headers: axum::http::HeaderMap) -> Json<Value> {
        let basic = headers[header::AUTHORIZATION].to_str().unwrap().to_owned();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim_start_matches("Basic "))
            .unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        let client = decoded.split(':').next().unwrap().to_owned();
        issued_to(&client)
    }
    let reading_the_form = post(|headers: axum::http::HeaderMap, _form: Bytes| issue(headers));
    let answering_first = post(issue);
    for route in [reading_the_form, answering_first] {
        let app = Router::new().route("/token", route);
        let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
        let credentials = base64::engine::general_purpose::STANDARD.encode("svc+batch:pw");
        let res = client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {credentials}"))
            .body("grant_type=client_credentials&client_id=svc%2Bbatch")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let e = &events(&memory, 1).await[0];
        assert_eq!(e["actor"]["client_id"], "svc+batch", "{e}");
        assert!(e["oauth"].get("conflicting_client_id").is_none(), "{e}");
        assert_eq!(e["client_auth"], "client_secret_basic", "{e}");
        assert_eq!(e["severity"], "info", "{e}");
    }
}

/// The other side of the `+`: a client `svc batch` that form-encodes its Basic id as RFC
/// 6749 §2.3.1 asks (`svc%20batch`) and claims `svc+batch` (another client) in the form.
/// A server that decodes Basic authenticates `svc batch`: that is the actor, and the name
/// claimed the conflict.
#[tokio::test]
async fn an_encoded_space_in_basic_is_not_the_forms_plus() {
    let app = Router::new().route(
        "/token",
        post(|headers: axum::http::HeaderMap, _form: Bytes| async move {
            let basic = headers[header::AUTHORIZATION].to_str().unwrap().to_owned();
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic.trim_start_matches("Basic "))
                .unwrap();
            let user = String::from_utf8(decoded).unwrap();
            let user = user.split(':').next().unwrap();
            let client: String = url::form_urlencoded::parse(format!("c={user}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned();
            issued_to(&client)
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let credentials = base64::engine::general_purpose::STANDARD.encode("svc%20batch:own-secret");
    client_without_redirects()
        .post(format!("http://{addr}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {credentials}"))
        .body("grant_type=client_credentials&client_id=svc%2Bbatch")
        .send()
        .await
        .unwrap();
    let e = &events(&memory, 1).await[0];
    assert_eq!(e["actor"]["client_id"], "svc batch", "{e}");
    assert_eq!(e["oauth"]["conflicting_client_id"], "svc+batch", "{e}");
    assert_eq!(e["severity"], "warning", "{e}");
}

/// Keycloak answers a wrong client secret with `401 {"error":"unauthorized_client"}`, not
/// `invalid_client`: each guessed client secret while polling a device code is an event.
#[tokio::test]
async fn guessed_secrets_answered_unauthorized_client_are_not_condensed() {
    let app = Router::new().route(
        "/token",
        post(|body: Bytes| async move {
            let form = form_of(std::str::from_utf8(&body).unwrap());
            if form.get("client_id").map(String::as_str) == Some("marker") {
                return (StatusCode::OK, Json(json!({"access_token": "m"})));
            }
            if form.get("client_secret").map(String::as_str) != Some("tv-secret") {
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({
                        "error": "unauthorized_client",
                        "error_description": "Invalid client or Invalid client credentials",
                    })),
                );
            }
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "authorization_pending"})),
            )
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    for guess in 0..5 {
        post_form(
            addr,
            "/token",
            format!("grant_type={DEVICE_GRANT}&device_code=dc-kc&client_id=tv&client_secret=guess-{guess}"),
        )
        .await;
    }
    let all = events_before_a_marker(addr, &memory).await;
    let failures = all
        .iter()
        .filter(|e| e["error"]["code"] == "unauthorized_client")
        .count();
    assert_eq!(failures, 5, "each guessed secret is an event: {all:#?}");
}

const REQUEST_URI: &str = "urn:ietf:params:oauth:request_uri:review7";

fn par_app() -> Router {
    Router::new()
        .route(
            "/par",
            post(|_body: Bytes| async {
                (
                    StatusCode::CREATED,
                    Json(json!({"request_uri": REQUEST_URI, "expires_in": 60})),
                )
            }),
        )
        .route(
            "/authorize",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "https://rp.example/cb?code=c0de&state=st")],
                )
                    .into_response()
            }),
        )
}

async fn pushed_then_authorized(tracked: usize, scope: &str) -> Value {
    let endpoints = Endpoints::builder()
        .no_defaults()
        .authorization("/authorize")
        .pushed_authorization("/par")
        .pushed_requests_tracked(tracked)
        .build()
        .unwrap();
    let (addr, memory) = serve_with_endpoints(par_app(), endpoints).await;
    let client = client_without_redirects();
    let pushed = client
        .post(format!("http://{addr}/par"))
        .basic_auth("rp", Some("rp-secret"))
        .form(&[
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", "https://rp.example/cb"),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), 201);
    let _ = client
        .get(format!(
            "http://{addr}/authorize?client_id=rp&request_uri={}",
            percent_encoding::utf8_percent_encode(REQUEST_URI, percent_encoding::NON_ALPHANUMERIC)
        ))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 2).await;
    all[1].clone()
}

/// quick_cache admits no entry heavier than 97 % of a shard's capacity: even
/// `pushed_requests_tracked(1)` remembers a pushed request.
#[tokio::test]
async fn one_tracked_pushed_request_is_remembered() {
    let granted = pushed_then_authorized(1, "openid profile").await;
    assert_eq!(granted["kind"], "AuthorizationGranted", "{granted}");
    assert_eq!(
        granted["scopes"]["requested"],
        json!(["openid", "profile"]),
        "inherited from the pushed request: {granted}"
    );
}

/// With fewer than about 30 tracked, a pushed request with the most scopes an event keeps
/// (100 of 256 bytes, about 29 KB) is remembered too.
#[tokio::test]
async fn a_large_pushed_request_is_remembered_with_a_small_tracker() {
    let scope = (0..100)
        .map(|i| format!("{i:0256}"))
        .collect::<Vec<_>>()
        .join(" ");
    let granted = pushed_then_authorized(20, &scope).await;
    assert_eq!(granted["kind"], "AuthorizationGranted", "{granted}");
    assert!(
        granted["scopes"]["requested"]
            .as_array()
            .is_some_and(|a| a.len() == 100),
        "inherited from the pushed request: {granted}"
    );
}

/// A server (or a Basic-auth filter in front of it) that refuses a wrong Basic password with
/// a bare `401` and `WWW-Authenticate: Basic` (the code is `http_401`): each guess is an
/// event.
#[tokio::test]
async fn guessed_basic_passwords_answered_401_are_not_condensed() {
    let app = Router::new().route(
        "/token",
        post(|headers: axum::http::HeaderMap, body: Bytes| async move {
            let form = form_of(std::str::from_utf8(&body).unwrap());
            if form.get("client_id").map(String::as_str) == Some("marker") {
                return Json(json!({"access_token": "m"})).into_response();
            }
            let good = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode("tv:tv-secret")
            );
            if headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                != Some(&good)
            {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Basic realm=\"oauth\"")],
                )
                    .into_response();
            }
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "authorization_pending"})),
            )
                .into_response()
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    for guess in 0..5 {
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .basic_auth("tv", Some(format!("guess-{guess}")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("grant_type={DEVICE_GRANT}&device_code=dc-basic"))
            .send()
            .await
            .unwrap();
    }
    let all = events_before_a_marker(addr, &memory).await;
    let failures = all
        .iter()
        .filter(|e| e["kind"] == "TokenRequestFailed")
        .count();
    assert_eq!(failures, 5, "each guessed password is an event: {all:#?}");
}

/// The same exchange is inherited with two tracked, and a large one with 40 tracked.
#[tokio::test]
async fn control_pushed_requests_are_remembered_with_room() {
    let granted = pushed_then_authorized(2, "openid profile").await;
    assert_eq!(
        granted["scopes"]["requested"],
        json!(["openid", "profile"]),
        "{granted}"
    );
    let scope = (0..100)
        .map(|i| format!("{i:0256}"))
        .collect::<Vec<_>>()
        .join(" ");
    let granted = pushed_then_authorized(40, &scope).await;
    assert!(
        granted["scopes"]["requested"]
            .as_array()
            .is_some_and(|a| a.len() == 100),
        "{granted}"
    );
}

/// Basic naming `basic-app`, a form `client_id` naming `form-app`, and a client assertion
/// for `asserted-app` whose `iss` is `issuer-app`: four clients in one request. The event
/// names Basic's as the actor and keeps every other one, not only the first, in
/// `oauth.conflicting_client_ids`, at the token, revocation and introspection endpoints.
#[tokio::test]
async fn every_client_a_request_names_besides_the_actor_is_recorded() {
    let opaque =
        || async { Json(json!({"access_token": "0paque-t0ken-value", "token_type": "Bearer"})) };
    let app = Router::new()
        .route("/token", post(move |_body: Bytes| opaque()))
        .route("/revoke", post(|_body: Bytes| async { StatusCode::OK }))
        .route(
            "/introspect",
            post(|_body: Bytes| async { Json(json!({"active": false})) }),
        );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let assertion = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"iss":"issuer-app","sub":"asserted-app","aud":"as"}"#)
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("basic-app:basic-s3cret")
    );
    for (path, first) in [
        ("/token", "grant_type=client_credentials"),
        ("/revoke", "token=some-t0ken-to-revoke"),
        ("/introspect", "token=some-t0ken-to-inspect"),
    ] {
        client_without_redirects()
            .post(format!("http://{addr}{path}"))
            .header(header::AUTHORIZATION, &basic)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!(
                "{first}&client_id=form-app&client_assertion_type={JWT_ASSERTION}&client_assertion={assertion}"
            ))
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 3).await;
    for e in &all {
        assert_eq!(e["actor"]["client_id"], "basic-app", "{e}");
        let others = e["oauth"]["conflicting_client_ids"]
            .as_array()
            .unwrap_or_else(|| panic!("no conflicting_client_ids: {e}"));
        let mut others: Vec<&str> = others.iter().filter_map(Value::as_str).collect();
        assert!(
            others.contains(&e["oauth"]["conflicting_client_id"].as_str().unwrap()),
            "{e}"
        );
        others.sort_unstable();
        assert_eq!(others, ["asserted-app", "form-app", "issuer-app"], "{e}");
        assert_eq!(e["severity"], "warning", "{e}");
    }
}

/// A server that reads `Authorization` as Spring Authorization Server and the Nimbus SDK
/// (Connect2id) do, split at one white-space character (`\s`: a tab as well as a space),
/// authenticates the Basic client and ignores the form's `client_id`, issuing an opaque
/// token.
async fn splitting_basic_at_white_space(
    headers: axum::http::HeaderMap,
    _form: Bytes,
) -> Json<Value> {
    let value = headers[header::AUTHORIZATION].to_str().unwrap();
    let (scheme, credentials) = value.split_once([' ', '\t']).unwrap();
    assert!(scheme.eq_ignore_ascii_case("basic"));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(credentials)
        .unwrap();
    let client = String::from_utf8(decoded).unwrap();
    let client = client.split(':').next().unwrap();
    Json(json!({"access_token": format!("opaque-for-{client}"), "token_type": "Bearer"}))
}

/// `Authorization: Basic<TAB>…`: RFC 7617 writes one space, but servers splitting at white
/// space read the tab as well, and authenticate that client. The event names it, and a form
/// `client_id` beside it is a second name, not the client: before, the Basic client went
/// unread, and the form's was recorded as a public client (`client_auth: none`).
#[tokio::test]
async fn a_basic_client_after_a_tab_is_the_client() {
    let app = Router::new().route("/token", post(splitting_basic_at_white_space));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::default()).await;
    let credentials = base64::engine::general_purpose::STANDARD.encode("victim-app:pw-1");
    for body in [
        "grant_type=client_credentials&client_id=innocent-app",
        "grant_type=client_credentials",
    ] {
        let res = client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic\t{credentials}"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let all = events(&memory, 2).await;
    for e in &all {
        assert_eq!(e["actor"]["client_id"], "victim-app", "{e}");
        assert_eq!(e["client_auth"], "client_secret_basic", "{e}");
    }
    assert_eq!(all[0]["oauth"]["conflicting_client_id"], "innocent-app");
    assert_eq!(all[0]["severity"], "warning");
    assert!(!serde_json::to_string(&all).unwrap().contains("pw-1"));
}
