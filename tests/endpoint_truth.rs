//! OAuth endpoint events tell the truth (issue 10): what the auditor could not see, what
//! was ambiguous, and what was not OAuth at all is recorded as such. Real servers on
//! 127.0.0.1:0, over real HTTP.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use oauth_audit::oauth::{Endpoints, LoginRule};
use serde_json::{json, Value};
use support::auth_server::AuthServer;
use support::{client, client_without_redirects, events, post_form, serve_with_endpoints};

const DEVICE_GRANT: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

#[tokio::test]
async fn a_padded_body_is_recorded_as_not_inspected_never_as_an_anonymous_success() {
    let server = AuthServer::new();
    let endpoints = Endpoints::builder().login("/login").build().unwrap();
    let (addr, memory) = serve_with_endpoints(server.router(), endpoints).await;
    let padding = "p".repeat(70 * 1024);
    // The padding comes first: no field the server reads fits in the limit.
    let grant = format!(
        "padding={padding}&grant_type=password&username=alice&password=wonderland&client_id=prop&client_secret=prop-secret"
    );
    let res = post_form(addr, "/token", grant).await;
    assert_eq!(res.status(), 200, "the server still sees the whole body");
    let failed_login = format!("padding={padding}&username=alice&password=nope");
    post_form(addr, "/login", failed_login).await;
    let good_login = format!("padding={padding}&username=alice&password=wonderland");
    post_form(addr, "/login", good_login).await;

    let all = events(&memory, 3).await;
    let token = &all[0];
    assert_eq!(token["kind"], "AccessTokenIssued");
    assert_eq!(token["oauth"]["body_inspected"], false);
    assert_eq!(
        token["oauth"]["body_not_inspected"],
        json!(["request_too_large"])
    );
    assert!(token.get("grant_type").is_none());
    assert!(
        token["actor"].get("kind").is_none(),
        "not anonymous: nobody was seen: {token}"
    );

    assert_eq!(all[1]["kind"], "LoginFailed");
    assert_eq!(all[1]["outcome"], "failure");
    assert_eq!(all[1]["error"]["code"], "redirected_to_login");
    assert_eq!(
        all[1]["oauth"]["body_not_inspected"],
        json!(["request_too_large"])
    );
    assert!(all[1]["actor"].get("kind").is_none());

    // The server accepted someone, but whom was not seen: no success is claimed.
    assert_eq!(all[2]["kind"], "LoginSucceeded");
    assert_eq!(all[2]["outcome"], "unknown");
    assert!(all[2]["actor"].get("kind").is_none());
}

#[tokio::test]
async fn repeated_parameters_are_recorded_as_ambiguous() {
    let server = AuthServer::new();
    let endpoints = Endpoints::builder().login("/login").build().unwrap();
    let (addr, memory) = serve_with_endpoints(server.router(), endpoints).await;
    post_form(
        addr,
        "/token",
        "grant_type=password&username=innocent&username=alice&password=wonderland&client_id=prop&client_secret=prop-secret".into(),
    )
    .await;
    post_form(
        addr,
        "/login",
        "username=innocent&username=alice&password=wonderland".into(),
    )
    .await;
    // Resource indicators may repeat (RFC 8707).
    post_form(
        addr,
        "/token",
        "grant_type=client_credentials&client_id=prop&client_secret=prop-secret&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb".into(),
    )
    .await;
    let all = events(&memory, 3).await;
    for e in &all[..2] {
        assert!(
            e["actor"].get("subject").is_none(),
            "neither value believed: {e}"
        );
        assert_eq!(e["oauth"]["repeated_parameters"], json!(["username"]));
        assert_eq!(e["error"]["code"], "invalid_request");
        assert_eq!(e["severity"], "warning");
        let raw = e.to_string();
        assert!(!raw.contains("innocent"), "{raw}");
    }
    assert_eq!(
        all[0]["kind"], "AccessTokenIssued",
        "the server's answer is kept"
    );
    assert_eq!(all[0]["grant_type"], "password");
    assert!(all[2].get("error").is_none());
    assert!(all[2]["oauth"].get("repeated_parameters").is_none());
    assert_eq!(
        all[2]["oauth"]["resource"],
        json!(["https://a", "https://b"])
    );
}

/// A device-code grant server that issues a new token on every poll (a replayed device
/// code), to whichever client asks.
fn replaying_device_server() -> Router {
    let counter = Arc::new(AtomicU64::new(0));
    Router::new().route(
        "/token",
        post(move |body: Bytes| {
            let counter = counter.clone();
            async move {
                let form: Vec<(String, String)> = form_urlencoded::parse(&body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let pending = form.iter().any(|(k, v)| k == "pending" && v == "1");
                if pending {
                    return (
                        StatusCode::BAD_REQUEST,
                        Json(json!({"error": "authorization_pending"})),
                    )
                        .into_response();
                }
                if form.iter().any(|(k, _)| k == "client_secret") {
                    // Every secret is wrong.
                    return (
                        StatusCode::UNAUTHORIZED,
                        Json(json!({"error": "invalid_client"})),
                    )
                        .into_response();
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                Json(json!({"access_token": format!("at-{n}"), "token_type": "Bearer"}))
                    .into_response()
            }
        }),
    )
}

#[tokio::test]
async fn device_polls_are_condensed_only_when_identical_and_issuances_never() {
    let (addr, memory) =
        serve_with_endpoints(replaying_device_server(), Endpoints::default()).await;
    let poll = |client: &str, pending: bool| {
        format!(
            "grant_type={DEVICE_GRANT}&device_code=dc-shared-secret&client_id={client}{}",
            if pending { "&pending=1" } else { "" }
        )
    };
    // tv polls twice (condensed), another client polls (recorded), then the code is
    // redeemed by tv and again by the attacker, and again by tv (all recorded).
    for body in [
        poll("tv", true),
        poll("tv", true),
        poll("attacker", true),
        poll("tv", false),
        poll("attacker", false),
        poll("tv", false),
    ] {
        post_form(addr, "/token", body).await;
    }
    let all = events(&memory, 5).await;
    let summary: Vec<(String, String)> = all
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["actor"]["client_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect = |k: &str, c: &str| (k.to_owned(), c.to_owned());
    assert_eq!(
        summary,
        [
            expect("TokenRequestFailed", "tv"),
            expect("TokenRequestFailed", "attacker"),
            expect("AccessTokenIssued", "tv"),
            expect("AccessTokenIssued", "attacker"),
            expect("AccessTokenIssued", "tv"),
        ]
    );
    assert_eq!(
        all[2]["oauth"]["repeated"], 1,
        "tv's condensed poll is counted"
    );
    let fingerprints: Vec<&Value> = all[2..]
        .iter()
        .map(|e| &e["token"]["fingerprint"])
        .collect();
    assert_ne!(fingerprints[0], fingerprints[1]);
    assert_ne!(fingerprints[1], fingerprints[2]);
    assert!(!memory.json_lines().contains("dc-shared-secret"));
}

#[tokio::test]
async fn failed_device_polls_are_never_condensed() {
    let (addr, memory) =
        serve_with_endpoints(replaying_device_server(), Endpoints::default()).await;
    // Guessing the client's secret while polling: each guess is an event of its own.
    for guess in 0..3 {
        let body = format!(
            "grant_type={DEVICE_GRANT}&device_code=dc-guessed&client_id=tv&client_secret=guess-{guess}"
        );
        post_form(addr, "/token", body).await;
    }
    post_form(
        addr,
        "/token",
        format!("grant_type={DEVICE_GRANT}&device_code=dc-guessed&client_id=tv&pending=1"),
    )
    .await;
    let all = events(&memory, 4).await;
    for failed in &all[..3] {
        assert_eq!(failed["kind"], "TokenRequestFailed");
        assert_eq!(failed["error"]["code"], "invalid_client", "{failed}");
    }
    assert_eq!(all[3]["error"]["code"], "authorization_pending");
    assert!(
        all.iter().all(|e| e["oauth"].get("repeated").is_none()),
        "nothing was condensed"
    );
}

#[tokio::test]
async fn a_device_poll_repeating_a_parameter_is_never_condensed() {
    let (addr, memory) =
        serve_with_endpoints(merging_refusing_server(), Endpoints::default()).await;
    // tv polls as it should, twice (condensed); then polls sending its secret twice, and
    // its client id twice: each of those is a warning of its own, never counted into the
    // clean polls before it nor into its own kind.
    let poll = format!("grant_type={DEVICE_GRANT}&device_code=dc-polled&client_id=tv");
    let two_secrets = format!("{poll}&client_secret=s-1234567&client_secret=s-7654321");
    let two_clients = format!("{poll}&client_id=attacker");
    for body in [
        &poll,
        &poll,
        &two_secrets,
        &two_secrets,
        &two_clients,
        &two_clients,
    ] {
        post_form(addr, "/token", body.clone()).await;
    }
    let all = events(&memory, 5).await;
    assert_eq!(
        all.len(),
        5,
        "one clean poll and four ambiguous ones: {all:#?}"
    );
    assert!(all[0]["oauth"].get("repeated_parameters").is_none());
    for (e, name) in
        all[1..]
            .iter()
            .zip(["client_secret", "client_secret", "client_id", "client_id"])
    {
        assert_eq!(e["oauth"]["repeated_parameters"], json!([name]), "{e}");
        assert_eq!(e["severity"], "warning", "{e}");
        assert!(e["oauth"].get("repeated").is_none(), "not condensed: {e}");
    }
}

/// A login form that always answers 200 with a page, whatever the password.
fn page_login() -> Router {
    Router::new().route(
        "/login",
        post(|body: Bytes| async move {
            let ok = body.as_ref() == b"username=alice&password=wonderland";
            let page = if ok { "Welcome" } else { "Invalid password" };
            ([(header::CONTENT_TYPE, "text/html")], page).into_response()
        }),
    )
}

#[tokio::test]
async fn a_login_page_is_unknown_without_a_rule_and_judged_with_one() {
    let endpoints = Endpoints::builder().login("/login").build().unwrap();
    let (addr, memory) = serve_with_endpoints(page_login(), endpoints).await;
    post_form(addr, "/login", "username=alice&password=guess".into()).await;
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["outcome"], "unknown", "a 200 page is not a success");
    assert_ne!(all[0]["outcome"], "success");

    // With a rule, every failure says why.
    let endpoints = Endpoints::builder()
        .login("/login")
        .login_rule(LoginRule::redirect_prefix("/app"))
        .build()
        .unwrap();
    let (addr, memory) = serve_with_endpoints(page_login(), endpoints).await;
    post_form(addr, "/login", "username=alice&password=guess".into()).await;
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["kind"], "LoginFailed");
    assert_eq!(all[0]["error"]["code"], "rejected_by_login_rule");

    // And the real server's failures (401 and a redirect back to the form) have codes.
    let server = AuthServer::new();
    let endpoints = Endpoints::builder().login("/login").build().unwrap();
    let (addr, memory) = serve_with_endpoints(server.router(), endpoints).await;
    post_form(addr, "/login", "username=alice&password=guess".into()).await;
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["kind"], "LoginFailed");
    assert_eq!(all[0]["error"]["code"], "redirected_to_login");
}

/// A server that redirects a path without its trailing slash to the one with it, as Django's
/// `APPEND_SLASH` (301) and Werkzeug's strict slashes (308) do, for a `POST` too, before any
/// view reads the form: the login route is `/accounts/login/`. The body is read whole, as
/// `oauth-audit proxy` sends it on whether the upstream reads it or not.
fn slash_redirecting_login() -> Router {
    Router::new()
        .route(
            "/accounts/login",
            post(|_: Bytes| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/accounts/login/")],
                )
            }),
        )
        .route(
            "/accounts/Login",
            post(|_: Bytes| async {
                (
                    StatusCode::PERMANENT_REDIRECT,
                    [(header::LOCATION, "http://idp.example/accounts/login/")],
                )
            }),
        )
        .route(
            "/accounts/login/",
            post(|_: Bytes| async {
                (StatusCode::FOUND, [(header::LOCATION, "/accounts/login/")])
            }),
        )
}

/// The login endpoint is looked up in every spelling (`/accounts/login` is the configured
/// `/accounts/login/`); a redirect to the form in another spelling than the request's is a
/// redirect back to the login page, not into the application: nothing was authenticated.
#[tokio::test]
async fn a_redirect_to_the_login_page_spelt_otherwise_is_no_success() {
    let endpoints = Endpoints::builder()
        .login("/accounts/login/")
        .build()
        .unwrap();
    let (addr, memory) = serve_with_endpoints(slash_redirecting_login(), endpoints).await;
    for path in ["/accounts/login", "/accounts/Login", "/accounts/login/"] {
        let res = post_form(addr, path, "username=victim&password=x".into()).await;
        assert!(res.status().is_redirection(), "{path}: {}", res.status());
    }
    let all = events(&memory, 3).await;
    for (event, path) in all
        .iter()
        .zip(["/accounts/login", "/accounts/Login", "/accounts/login/"])
    {
        assert_eq!(event["http"]["path"], path, "{event}");
        assert_eq!(event["kind"], "LoginFailed", "{path}: {event}");
        assert_eq!(event["outcome"], "failure", "{path}: {event}");
        assert_eq!(
            event["error"]["code"], "redirected_to_login",
            "{path}: {event}"
        );
    }
}

/// Spring Security's form login with a login page apart from the URL that processes the
/// form (`loginPage("/signin").loginProcessingUrl("/authenticate")`): a failure redirects to
/// `/signin?error`, an `error` parameter without a value; a success to the application.
fn spring_login() -> Router {
    Router::new().route(
        "/authenticate",
        post(|body: Bytes| async move {
            let ok = body.as_ref() == b"username=alice&password=wonderland";
            let to = if ok { "/app" } else { "/signin?error" };
            (StatusCode::FOUND, [(header::LOCATION, to)])
        }),
    )
}

#[tokio::test]
async fn a_redirect_with_an_error_parameter_without_a_value_is_a_failure() {
    let endpoints = Endpoints::builder().login("/authenticate").build().unwrap();
    let (addr, memory) = serve_with_endpoints(spring_login(), endpoints).await;
    post_form(
        addr,
        "/authenticate",
        "username=alice&password=guess".into(),
    )
    .await;
    post_form(
        addr,
        "/authenticate",
        "username=alice&password=wonderland".into(),
    )
    .await;
    let all = events(&memory, 2).await;
    assert_eq!(all[0]["kind"], "LoginFailed", "{}", all[0]);
    assert_eq!(all[0]["outcome"], "failure");
    assert_eq!(all[0]["error"]["code"], "redirected_with_error");
    assert_eq!(all[1]["kind"], "LoginSucceeded", "{}", all[1]);
    assert_eq!(all[1]["outcome"], "success");
}

/// A plain API that happens to have `/token`, `/revoke` and `/authorize` routes.
fn plain_api() -> Router {
    Router::new()
        .route(
            "/token",
            post(|| async { Json(json!({"id": 7, "name": "a token for the game"})) }),
        )
        .route(
            "/revoke",
            post(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))) }),
        )
        .route("/authorize", get(|| async { "page" }))
}

#[tokio::test]
async fn default_endpoint_paths_need_protocol_evidence() {
    let (addr, memory) = serve_with_endpoints(plain_api(), Endpoints::default()).await;
    let http = client();
    let get404 = http
        .get(format!("http://{addr}/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(get404.status(), 405);
    http.post(format!("http://{addr}/token"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    post_form(addr, "/revoke", "id=7".into()).await;
    http.get(format!("http://{addr}/authorize?page=2"))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 4).await;
    for e in &all {
        assert_eq!(e["kind"], "ResourceAccessed", "{e}");
        assert!(e.get("oauth").is_none());
    }
    // An ordinary route's failure, not a token request that failed.
    assert_eq!(all[0]["outcome"], "failure");
    assert_eq!(all[0]["error"]["code"], "method_not_allowed");
    assert_eq!(all[0]["http"]["status"], 405);

    // Configured explicitly, the role is trusted as before.
    let explicit = Endpoints::builder().token("/token").build().unwrap();
    let (addr, memory) = serve_with_endpoints(plain_api(), explicit).await;
    client()
        .get(format!("http://{addr}/token"))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["kind"], "TokenRequestFailed");
    assert_eq!(all[0]["error"]["code"], "http_405");
}

#[tokio::test]
async fn real_oauth_traffic_on_default_paths_is_still_recognised() {
    let server = AuthServer::new();
    let (addr, memory) = serve_with_endpoints(server.router(), Endpoints::default()).await;
    // Request evidence (a grant type), response evidence (an OAuth error for a padded
    // body), an authorization request.
    post_form(
        addr,
        "/token",
        "grant_type=client_credentials&client_id=prop&client_secret=prop-secret".into(),
    )
    .await;
    let padding = "p".repeat(70 * 1024);
    post_form(
        addr,
        "/token",
        format!(
            "padding={padding}&grant_type=client_credentials&client_id=svc&client_secret=wrong"
        ),
    )
    .await;
    client_without_redirects()
        .get(format!(
            "http://{addr}/authorize?response_type=code&client_id=web&redirect_uri=http%3A%2F%2Fapp.test%2Fcb"
        ))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 3).await;
    assert_eq!(all[0]["kind"], "AccessTokenIssued");
    assert_eq!(all[1]["kind"], "TokenRequestFailed");
    assert_eq!(all[1]["error"]["code"], "invalid_client");
    assert_eq!(
        all[1]["oauth"]["body_not_inspected"],
        json!(["request_too_large"])
    );
    assert_eq!(all[2]["kind"], "AuthorizationRequested");
}

/// A Basic password with characters that end a word in a response's text (`!`, `@`, `:`, a
/// space, letters past ASCII) is found all the same when the upstream quotes it decoded.
#[tokio::test]
async fn a_quoted_basic_password_is_scrubbed_whatever_its_characters() {
    let (addr, memory) =
        serve_with_endpoints(support::echo_server::router(), Endpoints::default()).await;
    for password in ["Hunter2-Echoed!", "p@ss W0rd-Echoed:x", "Échappé-Echoed€"] {
        client()
            .post(format!("http://{addr}/token"))
            .basic_auth("web", Some(password))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 3).await;
    for e in &all {
        assert_eq!(e["kind"], "TokenRequestFailed");
        let description = e["error"]["description"].as_str().unwrap();
        assert!(description.contains("web:[redacted]"), "{description}");
    }
    let raw = memory.json_lines();
    for secret in ["Hunter2", "p@ss", "W0rd", "Échappé", "-Echoed"] {
        assert!(!raw.contains(secret), "{secret} in {raw}");
    }
}

/// Cookies and a DPoP proof sent to the token endpoint are secrets of the request head too:
/// quoted back, they go, whether each is one word of the text or not.
#[tokio::test]
async fn quoted_cookies_and_proofs_at_the_token_endpoint_are_scrubbed() {
    let (addr, memory) =
        serve_with_endpoints(support::echo_server::router(), Endpoints::default()).await;
    client()
        .post(format!("http://{addr}/token"))
        .header("cookie", "session=Echoed-Cookie-3131; csrf=Echoed csrf!42")
        .header("dpop", "Echoed-Proof-7777")
        .form(&[("grant_type", "client_credentials"), ("client_id", "web")])
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["kind"], "TokenRequestFailed");
    let description = all[0]["error"]["description"].as_str().unwrap();
    assert!(description.contains("csrf=[redacted]"), "{description}");
    assert!(description.contains("dpop [redacted]"), "{description}");
    let raw = memory.json_lines();
    for secret in ["Echoed-Cookie", "Echoed csrf", "csrf!42", "Echoed-Proof"] {
        assert!(!raw.contains(secret), "{secret} in {raw}");
    }
}

#[tokio::test]
async fn an_upstream_echoing_secrets_is_scrubbed() {
    let (addr, memory) =
        serve_with_endpoints(support::echo_server::router(), Endpoints::default()).await;
    post_form(
        addr,
        "/token",
        "grant_type=authorization_code&code=Echoed-Code-1234&client_id=web&client_secret=Echoed-Secret-5678".into(),
    )
    .await;
    client_without_redirects()
        .get(format!(
            "http://{addr}/authorize?response_type=code&client_id=web&state=Echoed-State-9999"
        ))
        .send()
        .await
        .unwrap();
    client()
        .get(format!("http://{addr}/api/me"))
        .bearer_auth("Echoed-Bearer-4242")
        .send()
        .await
        .unwrap();
    let all = events(&memory, 3).await;
    assert_eq!(all[0]["kind"], "TokenRequestFailed");
    assert_eq!(all[1]["kind"], "AuthorizationFailed");
    assert_eq!(all[2]["kind"], "AccessDenied");
    for e in &all {
        let description = e["error"]["description"].as_str().unwrap();
        assert!(description.contains("[redacted]"), "{description}");
    }
    assert_eq!(
        all[2]["error"]["description"],
        "token [redacted] is not valid"
    );
    let raw = memory.json_lines();
    for secret in [
        "Echoed-Code-1234",
        "Echoed-Secret-5678",
        "Echoed-State-9999",
        "Echoed-Bearer-4242",
        "response_type=code",
    ] {
        assert!(!raw.contains(secret), "{secret} in {raw}");
    }
}

/// A token endpoint that authenticates the client by its form (`client_secret_post`) and
/// ignores any `Authorization` header, as some servers do, issuing a JWT naming the client
/// it authenticated; and a revocation endpoint that accepts anything.
fn form_authenticating_server() -> Router {
    Router::new()
        .route(
            "/token",
            post(|axum::Form(form): axum::Form<HashMap<String, String>>| async move {
                let field = |name: &str| form.get(name).cloned();
                let client = field("client_id").unwrap_or_default();
                if field("client_secret").as_deref() != Some("attacker-secret") {
                    return (
                        StatusCode::UNAUTHORIZED,
                        Json(json!({"error": "invalid_client"})),
                    );
                }
                let issued = support::keys::hs256(&json!({
                    "sub": client,
                    "client_id": client,
                    "scope": "orders:read",
                    "exp": support::keys::now() + 600,
                }));
                let answer = match field("opaque") {
                    Some(_) => json!({"access_token": "an-opaque-access-token", "token_type": "Bearer"}),
                    None => json!({"access_token": issued, "token_type": "Bearer"}),
                };
                (StatusCode::OK, Json(answer))
            }),
        )
        .route("/revoke", post(|_body: String| async { "" }))
}

#[tokio::test]
async fn a_request_naming_two_clients_is_attributed_to_the_one_the_server_issued_to() {
    let (addr, memory) =
        serve_with_endpoints(form_authenticating_server(), Endpoints::default()).await;
    let basic = |user: &str| {
        use base64::Engine;
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:wrong"));
        format!("Basic {credentials}")
    };
    let post = |path: &str, authorization: Option<String>, body: &str| {
        let mut request = client_without_redirects()
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        request.send()
    };
    let form = "grant_type=client_credentials&client_id=attacker-app&client_secret=attacker-secret";
    // 1. Basic names the victim, the form authenticates the attacker; the server issues a
    //    JWT to the attacker.
    let res = post("/token", Some(basic("victim-app")), form)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // 2. The same with an opaque token: the request alone cannot tell which the server
    //    believed, so both are recorded.
    let opaque = format!("{form}&opaque=1");
    post("/token", Some(basic("victim-app")), &opaque)
        .await
        .unwrap();
    // 3. Basic and form agree: nothing to record.
    post("/token", Some(basic("attacker-app")), form)
        .await
        .unwrap();
    // 4. A failed request naming two clients.
    post(
        "/token",
        Some(basic("victim-app")),
        "grant_type=client_credentials&client_id=attacker-app&client_secret=guess",
    )
    .await
    .unwrap();
    // 5. A revocation naming two clients.
    post(
        "/revoke",
        Some(basic("victim-app")),
        "token=t&client_id=attacker-app&client_secret=attacker-secret",
    )
    .await
    .unwrap();

    let all = events(&memory, 5).await;
    let issued = &all[0];
    assert_eq!(issued["kind"], "AccessTokenIssued");
    assert_eq!(issued["actor"]["client_id"], "attacker-app", "{issued}");
    assert_eq!(issued["oauth"]["conflicting_client_id"], "victim-app");
    assert_eq!(
        issued["client_auth"], "client_secret_post",
        "the method the server believed"
    );
    assert_eq!(issued["severity"], "warning");

    let opaque = &all[1];
    assert_eq!(opaque["kind"], "AccessTokenIssued");
    assert_eq!(opaque["actor"]["client_id"], "victim-app", "{opaque}");
    assert_eq!(opaque["oauth"]["conflicting_client_id"], "attacker-app");
    assert_eq!(opaque["client_auth"], "client_secret_basic");
    assert_eq!(opaque["severity"], "warning");

    let agreed = &all[2];
    assert_eq!(agreed["actor"]["client_id"], "attacker-app");
    assert!(agreed.get("oauth").is_none(), "{agreed}");
    assert_eq!(agreed["severity"], "info");

    let failed = &all[3];
    assert_eq!(failed["kind"], "TokenRequestFailed");
    assert_eq!(failed["actor"]["client_id"], "victim-app");
    assert_eq!(failed["oauth"]["conflicting_client_id"], "attacker-app");

    let revoked = &all[4];
    assert_eq!(revoked["kind"], "TokenRevoked");
    assert_eq!(revoked["actor"]["client_id"], "victim-app");
    assert_eq!(revoked["oauth"]["conflicting_client_id"], "attacker-app");
    assert_eq!(revoked["severity"], "warning");
}

#[tokio::test]
async fn bodies_refused_by_the_shared_budget_say_so() {
    // A token endpoint that holds a request marked `slow=1` (and its copy) until released.
    let arrived = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (on_arrival, on_release) = (arrived.clone(), release.clone());
    let app = Router::new().route(
        "/token",
        post(move |body: Bytes| async move {
            if body.starts_with(b"slow=1") {
                on_arrival.notify_one();
                on_release.notified().await;
            }
            Json(json!({"access_token": "at-budget", "token_type": "Bearer"}))
        }),
    );
    let endpoints = Endpoints::builder()
        .token("/token")
        .body_limit(1024)
        .max_captured_bytes(1024)
        .build()
        .unwrap();
    let (addr, memory) = serve_with_endpoints(app, endpoints).await;
    // 1,000 of the 1,024 bytes: no room left for the quick request's 42.
    let slow = support::hold_a_slow_request(addr);
    arrived.notified().await;
    let quick = post_form(
        addr,
        "/token",
        "grant_type=client_credentials&client_id=b".into(),
    )
    .await;
    release.notify_one();
    let slow = slow.await.unwrap();
    assert_eq!(
        (slow.status().as_u16(), quick.status().as_u16()),
        (200, 200)
    );
    let all = events(&memory, 2).await;
    // The quick request and its answer found the budget held by the slow one; the slow
    // one's answer found it held by its own request.
    assert_eq!(
        all[0]["oauth"]["body_not_inspected"],
        json!(["request_over_budget", "response_over_budget"]),
        "{}",
        all[0]
    );
    assert_eq!(
        all[1]["oauth"]["body_not_inspected"],
        json!(["response_over_budget"]),
        "{}",
        all[1]
    );
    // Past the limit is still too large.
    let too_large = format!("grant_type=client_credentials&pad={}", "p".repeat(2000));
    post_form(addr, "/token", too_large).await;
    let all = events(&memory, 3).await;
    assert_eq!(
        all[2]["oauth"]["body_not_inspected"],
        json!(["request_too_large"])
    );
}

/// A token answer with a content coding (compression middleware inside the layer, or an
/// upstream that compresses whatever the request accepted) is not JSON as it passes: the
/// event says the answer was not inspected and why, rather than look complete without the
/// issued token.
#[tokio::test]
async fn an_encoded_answer_is_not_inspected_and_says_so() {
    use std::io::Write as _;
    let app = Router::new().route(
        "/token",
        post(|_form: Bytes| async {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(br#"{"access_token":"at-gz-1","token_type":"Bearer","expires_in":60}"#)
                .unwrap();
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                gz.finish().unwrap(),
            )
        }),
    );
    let endpoints = Endpoints::builder().token("/token").build().unwrap();
    let (addr, memory) = serve_with_endpoints(app, endpoints).await;
    let response = post_form(
        addr,
        "/token",
        "grant_type=client_credentials&client_id=c1".into(),
    )
    .await;
    assert_eq!(response.status(), 200);
    let event = events(&memory, 1).await.remove(0);
    assert_eq!(event["oauth"]["body_inspected"], false, "{event}");
    assert_eq!(
        event["oauth"]["body_not_inspected"],
        json!(["response_encoded"]),
        "{event}"
    );
}

/// A token request whose form is compressed (`Content-Encoding: gzip`, which Express's
/// body-parser inflates) names no grant, client or user as it passes: the event says the
/// request was not inspected, never that an anonymous request was granted a token.
#[tokio::test]
async fn an_encoded_request_is_not_inspected_and_says_so() {
    use std::io::Write as _;
    let app = Router::new().route(
        "/token",
        post(|_form: Bytes| async {
            Json(json!({"access_token": "at-1", "token_type": "Bearer", "expires_in": 60}))
        }),
    );
    let endpoints = Endpoints::builder().token("/token").build().unwrap();
    let (addr, memory) = serve_with_endpoints(app, endpoints).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"grant_type=password&username=alice&password=pw-1&client_id=c1")
        .unwrap();
    let response = client()
        .post(format!("http://{addr}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event = events(&memory, 1).await.remove(0);
    assert_eq!(event["oauth"]["body_inspected"], false, "{event}");
    assert_eq!(
        event["oauth"]["body_not_inspected"],
        json!(["request_encoded"]),
        "{event}"
    );
    assert_ne!(event["actor"]["kind"], "anonymous", "{event}");
}

/// A token endpoint that reads parameters from the query and the body alike, the query's
/// first (a servlet's `getParameter`, Spring's `@RequestParam`): whatever the value, it
/// refuses, so that the event can only tell who and which code from the request.
fn merging_refusing_server() -> Router {
    Router::new().route(
        "/token",
        post(|_: Bytes| async {
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "authorization_pending"})),
            )
        }),
    )
}

#[tokio::test]
async fn a_parameter_in_both_the_query_and_the_body_is_ambiguous() {
    let (addr, memory) =
        serve_with_endpoints(merging_refusing_server(), Endpoints::default()).await;
    // The body names one user, the query another: a merging server reads the query's.
    post_form(
        addr,
        "/token?username=victim",
        "grant_type=password&username=innocent&password=pw-123456&client_id=app".into(),
    )
    .await;
    // The same device code in the body of three polls, another one in the query of the
    // last two: the server polled `dc-in-the-query`, not the body's code.
    let poll = format!("grant_type={DEVICE_GRANT}&device_code=dc-in-the-body&client_id=tv");
    post_form(addr, "/token", poll.clone()).await;
    post_form(addr, "/token?device_code=dc-in-the-query", poll.clone()).await;
    post_form(addr, "/token?device_code=dc-in-the-query", poll).await;
    let all = events(&memory, 4).await;
    assert_eq!(all.len(), 4, "ambiguous polls are not condensed: {all:#?}");
    let login = &all[0];
    assert!(
        login["actor"].get("subject").is_none(),
        "neither value believed: {login}"
    );
    assert_eq!(login["oauth"]["repeated_parameters"], json!(["username"]));
    assert_eq!(login["severity"], "warning");
    assert!(all[1]["oauth"].get("repeated_parameters").is_none());
    assert_eq!(
        all[1]["oauth"]["device_code_fingerprint"],
        oauth_audit::token::TokenFingerprint::of("dc-in-the-body").to_string()
    );
    for e in &all[2..] {
        assert!(
            e["oauth"].get("device_code_fingerprint").is_none(),
            "neither code believed: {e}"
        );
        assert_eq!(e["oauth"]["repeated_parameters"], json!(["device_code"]));
        assert_eq!(e["severity"], "warning");
    }
}

#[tokio::test]
async fn a_parameter_sent_again_in_another_case_is_ambiguous() {
    let (addr, memory) =
        serve_with_endpoints(merging_refusing_server(), Endpoints::default()).await;
    // ASP.NET reads form names in any case (OpenIddict): `USERNAME` is `username` again.
    post_form(
        addr,
        "/token",
        "grant_type=password&username=innocent&USERNAME=victim&password=pw-123456&client_id=app"
            .into(),
    )
    .await;
    let all = events(&memory, 1).await;
    let e = &all[0];
    assert!(
        e["actor"].get("subject").is_none(),
        "neither value believed: {e}"
    );
    assert_eq!(e["oauth"]["repeated_parameters"], json!(["username"]));
    assert_eq!(e["severity"], "warning");
}

/// A form login that reads its parameters as a servlet's `getParameter` does (Spring
/// Security's `UsernamePasswordAuthenticationFilter`, Java EE's `j_security_check`): the
/// query's and the body's alike, the query's value first. `victim` with `victim-pw` is let
/// in; everyone else is sent back to the form.
fn merging_login() -> Router {
    Router::new().route(
        "/login",
        post(
            |axum::extract::RawQuery(query): axum::extract::RawQuery, body: Bytes| async move {
                let query = query.unwrap_or_default();
                let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                    .chain(form_urlencoded::parse(&body))
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let first = |name: &str| {
                    params
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                let ok = first("username").as_deref() == Some("victim")
                    && first("password").as_deref() == Some("victim-pw");
                let to = if ok { "/app" } else { "/login?error" };
                (StatusCode::FOUND, [(header::LOCATION, to)])
            },
        ),
    )
}

/// A login's username is read where servers read it: a servlet container (Spring Security's
/// form login) takes the query's before the body's, ASP.NET reads names in any case. A
/// username in both, or twice in two cases, is ambiguous; one in the query alone (the body
/// naming none, or no body at all) is the user such a server let in.
#[tokio::test]
async fn a_login_username_in_the_query_is_read_as_servers_merging_it_read_it() {
    let endpoints = Endpoints::builder().login("/login").build().unwrap();
    let (addr, memory) = serve_with_endpoints(merging_login(), endpoints).await;
    // The body names `innocent`, the query `victim`: the server let `victim` in.
    let res = post_form(
        addr,
        "/login?username=victim",
        "username=innocent&password=victim-pw".into(),
    )
    .await;
    assert_eq!(res.headers()["location"], "/app");
    // The username in the query only, beside a body, and with no body at all.
    post_form(addr, "/login?username=victim", "password=victim-pw".into()).await;
    post_form(
        addr,
        "/login?username=victim&password=victim-pw",
        String::new(),
    )
    .await;
    // The same name again in another case, as ASP.NET's form collection reads it.
    post_form(
        addr,
        "/login",
        "username=innocent&USERNAME=victim&password=victim-pw".into(),
    )
    .await;
    let all = events(&memory, 4).await;
    let ambiguous = [&all[0], &all[3]];
    for e in ambiguous {
        assert!(e["actor"].get("subject").is_none(), "neither believed: {e}");
        assert_ne!(e["actor"]["kind"], "anonymous", "a user was named: {e}");
        assert_eq!(
            e["oauth"]["repeated_parameters"],
            json!(["username"]),
            "{e}"
        );
        assert_eq!(e["severity"], "warning", "{e}");
    }
    for e in &all[1..3] {
        assert_eq!(e["kind"], "LoginSucceeded", "{e}");
        assert_eq!(e["outcome"], "success", "{e}");
        assert_eq!(e["actor"]["subject"], "victim", "{e}");
        assert_eq!(e["actor"]["kind"], "user", "{e}");
    }
    let raw = serde_json::to_string(&all).unwrap();
    assert!(!raw.contains("victim-pw"), "{raw}");
}

/// A token endpoint that reads its parameters from the query as from the body (a servlet's
/// `getParameter`, Spring Security OAuth's `ClientCredentialsTokenEndpointFilter`) and
/// issues an opaque token to whoever asks.
fn issuing_to_anyone() -> Router {
    Router::new().route(
        "/token",
        post(|_: Bytes| async {
            Json(json!({"access_token": "opaque-1", "token_type": "Bearer"}))
        }),
    )
}

/// A token request whose client and grant are in the query only, with no body or a body
/// naming neither: such a server issues to the query's client, which the event does not
/// read (parameters in the query alone are not believed). The event must not say that
/// nobody asked: the actor is unseen, not `anonymous`. A request that named nobody anywhere
/// still is anonymous.
#[tokio::test]
async fn a_token_request_naming_its_client_in_the_query_alone_is_not_anonymous() {
    let endpoints = Endpoints::builder().token("/token").build().unwrap();
    let (addr, memory) = serve_with_endpoints(issuing_to_anyone(), endpoints).await;
    let query = "/token?grant_type=client_credentials&client_id=app&client_secret=qs-secret-1";
    post_form(addr, query, String::new()).await;
    post_form(addr, query, "scope=read".into()).await;
    post_form(
        addr,
        "/token",
        "grant_type=refresh_token&refresh_token=r".into(),
    )
    .await;
    let all = events(&memory, 3).await;
    for e in &all[..2] {
        assert_eq!(e["kind"], "AccessTokenIssued", "{e}");
        assert_ne!(e["actor"]["kind"], "anonymous", "somebody was named: {e}");
    }
    assert_eq!(all[2]["actor"]["kind"], "anonymous", "{}", all[2]);
    assert!(!serde_json::to_string(&all).unwrap().contains("qs-secret-1"));
}
