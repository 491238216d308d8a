//! Pushed authorization requests (RFC 9126), UserInfo, end-session, device authorization
//! (RFC 8628) and CIBA backchannel authentication requests through the layer, in front of a
//! small authorization server on 127.0.0.1:0, over real HTTP.

mod support;

use std::net::SocketAddr;

use axum::extract::RawQuery;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use oauth_audit::oauth::Endpoints;
use oauth_audit::writer::MemoryWriter;
use oauth_audit::{AuditLayer, RequiredScopes};
use serde_json::json;
use sha2::{Digest, Sha256};
use support::{events, memory_auditor, serve};

const REQUEST_URI: &str = "urn:ietf:params:oauth:request_uri:s3cret-request-uri-value";

fn fp(token: &str) -> String {
    format!(
        "sha256:{}",
        &hex::encode(Sha256::digest(token.as_bytes()))[..32]
    )
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// An ID token as the server would issue it (the layer does not verify hints).
fn id_token() -> String {
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256","kid":"k"}"#),
        b64(r#"{"sub":"alice","aud":"rp","iss":"https://as.example","exp":4102444800}"#)
    )
}

/// The pushed authorization request endpoint: 201 with a `request_uri` for a registered
/// client, 400 `invalid_request` for a redirect URI it does not know.
async fn par(Form(form): Form<Vec<(String, String)>>) -> Response {
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if get("redirect_uri") != Some("https://rp.example/cb") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "redirect_uri not registered"})),
        )
            .into_response();
    }
    (
        StatusCode::CREATED,
        Json(json!({"request_uri": REQUEST_URI, "expires_in": 60})),
    )
        .into_response()
}

/// The authorization endpoint: a known `request_uri`, or a request object (`request`, not
/// verified here), is granted a code at once.
async fn authorize(RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let known = form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| (k == "request_uri" && v == REQUEST_URI) || k == "request");
    if known {
        (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                "https://rp.example/cb?code=c0de-c0de&state=st",
            )],
        )
            .into_response()
    } else {
        (StatusCode::BAD_REQUEST, "invalid request_uri").into_response()
    }
}

async fn userinfo(headers: HeaderMap) -> Response {
    match headers.get(header::AUTHORIZATION) {
        Some(_) => Json(json!({"sub": "alice"})).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response(),
    }
}

/// End-session: a registered `post_logout_redirect_uri` is redirected to, another refused.
async fn end_session(RawQuery(query): RawQuery) -> Response {
    let query = query.unwrap_or_default();
    let target = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "post_logout_redirect_uri")
        .map(|(_, v)| v.into_owned());
    match target.as_deref() {
        Some("https://rp.example/bye") => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, "https://rp.example/bye?state=s")],
        )
            .into_response(),
        Some(_) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "post_logout_redirect_uri not registered"})),
        )
            .into_response(),
        None => (StatusCode::OK, "<p>Sign out?</p>").into_response(),
    }
}

const DEVICE_CODE: &str = "GmRhmhcxhwAzkoEqiMEg_DnyEysNkuNhszIySk9eS";
const USER_CODE: &str = "WDJB-MJHT";
const AUTH_REQ_ID: &str = "1c266114-a1be-4252-8ad1-04986c5b9ac1";

/// Whether a form authenticates client `tv` (Basic or `client_secret_post` with its secret)
/// or names the public client `tv-public`; `None` for a wrong secret.
fn client_of(headers: &HeaderMap, form: &[(String, String)]) -> Option<&'static str> {
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("tv:tv-s3cret-value")
    );
    if headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == basic.as_bytes())
    {
        return Some("tv");
    }
    match (get("client_id"), get("client_secret")) {
        (Some("tv"), Some("tv-s3cret-value")) => Some("tv"),
        (Some("tv-public"), None) => Some("tv-public"),
        _ => None,
    }
}

/// The device authorization endpoint (RFC 8628 §3.1): a device code and a user code for a
/// known client, `invalid_client` quoting the secret it was sent for another, `invalid_scope`
/// for `admin`.
async fn device_authorization(
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some(_) = client_of(&headers, &form) else {
        let sent = form
            .iter()
            .find(|(k, _)| k == "client_secret")
            .map(|(_, v)| v.clone());
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": format!("secret {} is wrong", sent.unwrap_or_default())})),
        )
            .into_response();
    };
    if form
        .iter()
        .any(|(k, v)| k == "scope" && v.contains("admin"))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_scope"})),
        )
            .into_response();
    }
    Json(json!({
        "device_code": DEVICE_CODE,
        "user_code": USER_CODE,
        "verification_uri": "https://as.example/device",
        "verification_uri_complete": format!("https://as.example/device?user_code={USER_CODE}"),
        "expires_in": 1800,
        "interval": 5,
    }))
    .into_response()
}

/// The CIBA backchannel authentication endpoint (CIBA Core §7): an `auth_req_id` for a known
/// client naming a user, `unknown_user_id` quoting the hint token otherwise.
async fn backchannel_authentication(
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let get = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let assertion = get("client_assertion").is_some();
    if client_of(&headers, &form).is_none() && !assertion {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    if let Some(hint) = get("login_hint_token").filter(|h| h.contains("nobody")) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unknown_user_id", "error_description": format!("no user for {hint}, user code {}", get("user_code").unwrap_or_default())})),
        )
            .into_response();
    }
    Json(json!({"auth_req_id": AUTH_REQ_ID, "expires_in": 120, "interval": 2})).into_response()
}

struct Setup {
    addr: SocketAddr,
    memory: MemoryWriter,
    client: reqwest::Client,
}

async fn setup() -> Setup {
    let (auditor, memory) = memory_auditor();
    let endpoints = Endpoints::builder()
        .no_defaults()
        .authorization("/authorize")
        .pushed_authorization("/par")
        .userinfo("/userinfo")
        .end_session("/logout")
        .device_authorization("/device_authorization")
        .backchannel_authentication("/bc-authorize")
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/par", post(par))
        .route("/device_authorization", post(device_authorization))
        .route("/bc-authorize", post(backchannel_authentication))
        .route("/authorize", get(authorize))
        .route(
            "/userinfo",
            get(userinfo).layer(RequiredScopes::all(["openid"])),
        )
        .route(
            "/logout",
            get(end_session)
                .post(|_: Form<Vec<(String, String)>>| async { StatusCode::NO_CONTENT }),
        )
        .layer(layer);
    Setup {
        addr: serve(app).await,
        memory,
        client: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Pushes `form` to the PAR endpoint as client `rp` (HTTP Basic); the answer's status.
    async fn push(&self, form: &[(&str, &str)]) -> reqwest::StatusCode {
        self.client
            .post(self.url("/par"))
            .basic_auth("rp", Some("rp-s3cret"))
            .form(form)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// An authorization request presenting the pushed `REQUEST_URI`, with `query` (which
    /// ends with `&` when not empty) before it; the answer's status.
    async fn authorize_pushed(&self, query: &str) -> reqwest::StatusCode {
        let request_uri =
            percent_encoding::utf8_percent_encode(REQUEST_URI, percent_encoding::NON_ALPHANUMERIC);
        self.client
            .get(format!(
                "{}?{query}request_uri={request_uri}",
                self.url("/authorize")
            ))
            .send()
            .await
            .unwrap()
            .status()
    }
}

#[tokio::test]
async fn a_pushed_request_is_linked_to_the_authorization_request_that_uses_it() {
    let s = setup().await;
    let pushed = s
        .push(&[
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", "https://rp.example/cb?x=1"),
            ("scope", "openid profile"),
            ("code_challenge", "ch4llenge-ch4llenge"),
            ("code_challenge_method", "S256"),
            ("state", "st4te-st4te"),
        ])
        .await;
    assert_eq!(pushed, 400, "not the registered redirect URI");
    let pushed = s
        .push(&[
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", "https://rp.example/cb"),
            ("scope", "openid profile"),
            ("code_challenge", "ch4llenge-ch4llenge"),
            ("code_challenge_method", "S256"),
            ("state", "st4te-st4te"),
        ])
        .await;
    assert_eq!(pushed, 201);
    // The authorization request names only the client and the request_uri (RFC 9126 §4).
    let authorized = s.authorize_pushed("client_id=rp&").await;
    assert_eq!(authorized, 302);

    let all = events(&s.memory, 3).await;
    let (refused, accepted, granted) = (&all[0], &all[1], &all[2]);
    assert_eq!(refused["kind"], "AuthorizationFailed");
    assert_eq!(refused["oauth"]["pushed"], true);
    assert_eq!(refused["error"]["code"], "invalid_request");
    assert_eq!(refused["redirect_uri"], "https://rp.example/cb");
    assert!(refused["oauth"].get("request_uri_fingerprint").is_none());

    assert_eq!(accepted["kind"], "AuthorizationRequested");
    assert_eq!(accepted["outcome"], "success");
    assert_eq!(accepted["oauth"]["pushed"], true);
    assert_eq!(
        accepted["oauth"]["request_uri_fingerprint"],
        fp(REQUEST_URI)
    );
    assert_eq!(accepted["client_auth"], "client_secret_basic");
    assert_eq!(accepted["actor"]["client_id"], "rp");
    assert_eq!(
        accepted["scopes"]["requested"],
        json!(["openid", "profile"])
    );
    assert_eq!(accepted["oauth"]["pkce_method"], "S256");

    assert_eq!(granted["kind"], "AuthorizationGranted");
    assert_eq!(granted["oauth"]["request_uri_fingerprint"], fp(REQUEST_URI));
    assert!(granted["oauth"].get("pushed").is_none());
    // What the pushed request said, carried over.
    assert_eq!(granted["scopes"]["requested"], json!(["openid", "profile"]));
    assert_eq!(granted["oauth"]["response_type"], "code");
    assert_eq!(granted["oauth"]["pkce_method"], "S256");
    assert_eq!(granted["redirect_uri"], "https://rp.example/cb");
    assert_eq!(granted["actor"]["client_id"], "rp");

    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        REQUEST_URI,
        "s3cret-request-uri-value",
        "rp-s3cret",
        "ch4llenge",
        "st4te",
        "c0de-c0de",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn userinfo_is_audited_as_a_protected_route() {
    let s = setup().await;
    let token = format!(
        "{}.{}.sig",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"sub":"alice","client_id":"rp","scope":"openid"}"#)
    );
    let ok = s
        .client
        .get(s.url("/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let denied = s.client.get(s.url("/userinfo")).send().await.unwrap();
    assert_eq!(denied.status(), 401);
    let all = events(&s.memory, 2).await;
    assert_eq!(all[0]["kind"], "ResourceAccessed");
    assert_eq!(all[0]["oauth"]["endpoint"], "userinfo");
    assert_eq!(all[0]["token"]["fingerprint"], fp(&token));
    assert_eq!(all[0]["scopes"]["required"], json!(["openid"]));
    assert_eq!(all[0]["http"]["route"], "/userinfo");
    assert_eq!(all[1]["kind"], "AccessDenied");
    assert_eq!(all[1]["oauth"]["endpoint"], "userinfo");
    assert_eq!(all[1]["error"]["code"], "invalid_token");
    assert!(!serde_json::to_string(&all).unwrap().contains(&token));
}

#[tokio::test]
async fn logouts_record_the_hint_by_fingerprint_and_the_redirect_without_query() {
    let s = setup().await;
    let hint = id_token();
    let logout = |redirect: &'static str| {
        let url = format!(
            "{}?id_token_hint={hint}&post_logout_redirect_uri={}&state=st4te-st4te",
            s.url("/logout"),
            percent_encoding::utf8_percent_encode(redirect, percent_encoding::NON_ALPHANUMERIC)
        );
        s.client.get(url).send()
    };
    assert_eq!(
        logout("https://rp.example/bye").await.unwrap().status(),
        303
    );
    assert_eq!(
        logout("https://evil.example/x?steal=1")
            .await
            .unwrap()
            .status(),
        400
    );
    let page = s
        .client
        .get(format!("{}?client_id=rp", s.url("/logout")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let posted = s
        .client
        .post(s.url("/logout"))
        .form(&[("id_token_hint", hint.as_str()), ("client_id", "rp")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 204);

    let all = events(&s.memory, 4).await;
    let (done, refused, asked, posted) = (&all[0], &all[1], &all[2], &all[3]);
    assert_eq!(done["kind"], "LogoutSucceeded");
    assert_eq!(done["outcome"], "success");
    assert_eq!(done["redirect_uri"], "https://rp.example/bye");
    assert_eq!(done["token"]["fingerprint"], fp(&hint));
    assert_eq!(done["token"]["type_hint"], "id_token");
    assert_eq!(done["token"]["format"], "jwt");
    assert_eq!(done["token"]["unverified"]["subject"], "alice");
    assert_eq!(done["token"]["unverified"]["client_id"], "rp");
    assert!(done["actor"].get("subject").is_none(), "an unverified hint");

    assert_eq!(refused["kind"], "LogoutFailed");
    assert_eq!(refused["outcome"], "failure");
    assert_eq!(refused["severity"], "warning");
    assert_eq!(refused["redirect_uri"], "https://evil.example/x");
    assert_eq!(refused["error"]["code"], "invalid_request");

    assert_eq!(asked["kind"], "LogoutSucceeded");
    assert_eq!(
        asked["outcome"], "unknown",
        "a page: the logout is not proven"
    );
    assert_eq!(asked["actor"]["client_id"], "rp");

    assert_eq!(posted["kind"], "LogoutSucceeded");
    assert_eq!(posted["outcome"], "success");
    assert_eq!(posted["token"]["fingerprint"], fp(&hint));

    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&hint) && !text.contains("st4te") && !text.contains("steal"));
}

#[tokio::test]
async fn what_was_pushed_wins_over_the_query_of_the_request_that_presents_it() {
    let s = setup().await;
    let pushed = s
        .push(&[
            ("response_type", "code"),
            ("client_id", "rp"),
            ("redirect_uri", "https://rp.example/cb"),
            ("scope", "openid admin"),
        ])
        .await;
    assert_eq!(pushed, 201);
    // RFC 9101 §5 (which RFC 9126 §4 refers to): a server uses the parameters of the
    // stored request, not the same ones in the query. The query here says another client,
    // another redirect URI and a smaller scope; the server uses what was pushed.
    let authorized = s.authorize_pushed("client_id=other-app&redirect_uri=https%3A%2F%2Finnocent.example%2Fcb&scope=openid&response_type=code&").await;
    assert_eq!(authorized, 302);

    let all = events(&s.memory, 2).await;
    let granted = &all[1];
    assert_eq!(granted["kind"], "AuthorizationGranted");
    assert_eq!(
        granted["redirect_uri"], "https://rp.example/cb",
        "{granted:#}"
    );
    assert_eq!(granted["scopes"]["requested"], json!(["openid", "admin"]));
    assert_eq!(granted["actor"]["client_id"], "rp");
    assert_eq!(granted["oauth"]["conflicting_client_id"], "other-app");
    assert_eq!(granted["severity"], "warning");
}

#[tokio::test]
async fn a_request_objects_parameters_win_over_the_forms_beside_it() {
    let s = setup().await;
    // RFC 9101 §5: the server uses the request object's parameters only, whatever the form
    // (or query) repeats beside it. The form says the registered redirect URI and `openid`;
    // the object, which the server uses, another redirect URI and `admin`.
    let object = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256","kid":"k"}"#),
        b64(
            r#"{"iss":"rp","aud":"https://as.example","client_id":"rp","response_type":"code","redirect_uri":"https://evil.example/cb?x=1","scope":"openid admin","code_challenge":"ch4llenge-ch4llenge","code_challenge_method":"S256"}"#
        )
    );
    let pushed = s
        .push(&[
            ("client_id", "rp"),
            ("response_type", "code"),
            ("redirect_uri", "https://rp.example/cb"),
            ("scope", "openid"),
            ("request", &object),
        ])
        .await;
    assert_eq!(pushed, 201);
    let authorized = s.authorize_pushed("client_id=rp&").await;
    assert_eq!(authorized, 302);

    let all = events(&s.memory, 2).await;
    for e in &all {
        assert_eq!(e["redirect_uri"], "https://evil.example/cb", "{e:#}");
        assert_eq!(e["scopes"]["requested"], json!(["openid", "admin"]));
        assert_eq!(e["oauth"]["pkce_method"], "S256");
        assert_eq!(e["actor"]["client_id"], "rp");
    }
    let text = serde_json::to_string(&all).unwrap();
    for secret in [object.as_str(), "ch4llenge", "c0de-c0de"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn a_request_object_naming_another_client_than_basic_names_two() {
    let s = setup().await;
    // Basic authenticates `rp`; the request object, which the server uses (RFC 9101 §5),
    // claims `attacker-app`: a server that stores the object's client would have `rp`'s
    // credentials push a request for another client. Once with the form naming no
    // client, once with the form naming `rp` too.
    let object = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256","kid":"k"}"#),
        b64(
            r#"{"aud":"https://as.example","client_id":"attacker-app","response_type":"code","redirect_uri":"https://rp.example/cb","scope":"openid"}"#
        )
    );
    for form_client in [None, Some("rp")] {
        let mut form = vec![
            ("response_type", "code"),
            ("redirect_uri", "https://rp.example/cb"),
            ("request", object.as_str()),
        ];
        form.extend(form_client.map(|c| ("client_id", c)));
        let pushed = s.push(&form).await;
        assert_eq!(pushed, 201);
    }
    let all = events(&s.memory, 2).await;
    for e in &all {
        assert_eq!(e["kind"], "AuthorizationRequested", "{e:#}");
        assert_eq!(e["actor"]["client_id"], "rp", "Basic authenticates: {e:#}");
        assert_eq!(e["client_auth"], "client_secret_basic");
        assert_eq!(e["oauth"]["conflicting_client_id"], "attacker-app", "{e:#}");
        assert_eq!(e["severity"], "warning");
    }
}

#[tokio::test]
async fn a_query_client_other_than_the_request_objects_names_two() {
    let s = setup().await;
    // RFC 9101 §6.3: the server uses the request object's parameters, and the query's
    // `client_id` must be the object's. Here the query names `rp`, the object
    // `attacker-app`: the server acts for `attacker-app`, which the event names, with `rp`
    // as the second client. Then an object naming its client by `iss` only.
    let objects = [
        r#"{"aud":"https://as.example","client_id":"attacker-app","response_type":"code","redirect_uri":"https://evil.example/cb","scope":"openid","state":"st4te-st4te"}"#,
        r#"{"iss":"attacker-app","aud":"https://as.example","response_type":"code","redirect_uri":"https://evil.example/cb","scope":"openid","state":"st4te-st4te"}"#,
        r#"{"iss":"rp","client_id":"rp","response_type":"code","redirect_uri":"https://rp.example/cb","scope":"openid"}"#,
    ];
    let mut sent = Vec::new();
    for claims in objects {
        let object = format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(r#"{"alg":"RS256","kid":"k"}"#),
            b64(claims)
        );
        let status = s
            .client
            .get(format!(
                "{}?client_id=rp&response_type=code&request={object}",
                s.url("/authorize")
            ))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 302);
        sent.push(object);
    }
    let all = events(&s.memory, 3).await;
    let (by_client_id, by_iss, agreeing) = (&all[0], &all[1], &all[2]);
    assert_eq!(by_client_id["kind"], "AuthorizationGranted");
    assert_eq!(
        by_client_id["actor"]["client_id"], "attacker-app",
        "{by_client_id:#}"
    );
    assert_eq!(by_client_id["oauth"]["conflicting_client_id"], "rp");
    assert_eq!(by_client_id["severity"], "warning");
    assert_eq!(by_client_id["redirect_uri"], "https://evil.example/cb");
    // No `client_id` in the object: the query's is the server's lookup, `iss` the other.
    assert_eq!(by_iss["actor"]["client_id"], "rp", "{by_iss:#}");
    assert_eq!(by_iss["oauth"]["conflicting_client_id"], "attacker-app");
    assert_eq!(by_iss["severity"], "warning");
    assert_eq!(agreeing["actor"]["client_id"], "rp");
    assert!(
        agreeing["oauth"].get("conflicting_client_id").is_none(),
        "{agreeing:#}"
    );
    assert_eq!(agreeing["severity"], "info");
    let text = serde_json::to_string(&all).unwrap();
    for secret in sent
        .iter()
        .map(String::as_str)
        .chain(["st4te", "c0de-c0de"])
    {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn device_authorization_requests_record_the_client_and_never_the_codes() {
    let s = setup().await;
    let post = |form: &'static [(&'static str, &'static str)], basic: bool| {
        let mut request = s.client.post(s.url("/device_authorization")).form(form);
        if basic {
            request = request.basic_auth("tv", Some("tv-s3cret-value"));
        }
        request.send()
    };
    let started = post(&[("scope", "openid profile")], true).await.unwrap();
    assert_eq!(started.status(), 200);
    let public = post(&[("client_id", "tv-public"), ("scope", "openid")], false)
        .await
        .unwrap();
    assert_eq!(public.status(), 200);
    let refused = post(&[("scope", "openid admin")], true).await.unwrap();
    assert_eq!(refused.status(), 400);
    let guessed = post(
        &[
            ("client_id", "tv"),
            ("client_secret", "gu3ssed-s3cret"),
            ("scope", "openid"),
        ],
        false,
    )
    .await
    .unwrap();
    assert_eq!(guessed.status(), 401);
    // The device then polls the token endpoint with the device code (not audited here):
    // the fingerprint joins the two.

    let all = events(&s.memory, 4).await;
    let (started, public, refused, guessed) = (&all[0], &all[1], &all[2], &all[3]);
    assert_eq!(started["kind"], "AuthorizationRequested", "{started:#}");
    assert_eq!(started["outcome"], "success");
    assert_eq!(started["severity"], "info");
    assert_eq!(started["oauth"]["endpoint"], "device_authorization");
    assert_eq!(started["actor"]["client_id"], "tv");
    assert_eq!(started["actor"]["kind"], "client");
    assert_eq!(started["client_auth"], "client_secret_basic");
    assert_eq!(started["scopes"]["requested"], json!(["openid", "profile"]));
    assert_eq!(started["oauth"]["device_code_fingerprint"], fp(DEVICE_CODE));

    assert_eq!(public["actor"]["client_id"], "tv-public");
    assert_eq!(public["client_auth"], "none");
    assert_eq!(public["oauth"]["device_code_fingerprint"], fp(DEVICE_CODE));

    assert_eq!(refused["kind"], "AuthorizationFailed");
    assert_eq!(refused["outcome"], "failure");
    assert_eq!(refused["severity"], "warning");
    assert_eq!(refused["error"]["code"], "invalid_scope");
    assert_eq!(refused["oauth"]["endpoint"], "device_authorization");
    assert!(refused["oauth"].get("device_code_fingerprint").is_none());

    assert_eq!(guessed["kind"], "AuthorizationFailed");
    assert_eq!(guessed["error"]["code"], "invalid_client");
    assert_eq!(guessed["client_auth"], "client_secret_post");
    assert_eq!(guessed["actor"]["client_id"], "tv");

    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        DEVICE_CODE,
        USER_CODE,
        "WDJB",
        "tv-s3cret-value",
        "gu3ssed-s3cret",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// A device authorization endpoint that answers a sign-on page (a gateway in the server's
/// place), and a CIBA endpoint that answers `{}` to `scope=openid` and otherwise refuses,
/// quoting the request's `login_hint` and `binding_message`.
async fn decoupled_without_references() -> (SocketAddr, MemoryWriter) {
    let (auditor, memory) = memory_auditor();
    let endpoints = Endpoints::builder()
        .no_defaults()
        .device_authorization("/device_authorization")
        .backchannel_authentication("/bc-authorize")
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/device_authorization",
            post(|_: Form<Vec<(String, String)>>| async {
                (
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html><body>Sign in to continue</body></html>",
                )
            }),
        )
        .route(
            "/bc-authorize",
            post(|Form(form): Form<Vec<(String, String)>>| async move {
                let get = |name: &str| {
                    form.iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                if get("scope") == "openid" {
                    return Json(json!({})).into_response();
                }
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({
                        "error": "unknown_user_id",
                        "error_description": format!(
                            "no user {} to show {} to",
                            get("login_hint"),
                            get("binding_message")
                        ),
                    })),
                )
                    .into_response()
            }),
        )
        .layer(layer);
    (serve(app).await, memory)
}

/// Posts `form` to `path` on `addr`.
async fn post_form(addr: SocketAddr, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("http://{addr}{path}"))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A `200` that carries no device code or `auth_req_id` (a sign-on page a gateway answered in
/// the server's place, an empty JSON object) proves no pending request was started: its
/// outcome is `unknown`, never `success`.
#[tokio::test]
async fn a_decoupled_start_answered_without_its_reference_is_not_a_success() {
    let (addr, memory) = decoupled_without_references().await;
    let form = [("client_id", "tv-public"), ("scope", "openid")];
    let page = post_form(addr, "/device_authorization", &form).await;
    assert_eq!(page.status(), 200);
    let empty = post_form(addr, "/bc-authorize", &form).await;
    assert_eq!(empty.status(), 200);

    let all = events(&memory, 2).await;
    for started in &all {
        assert_eq!(started["kind"], "AuthorizationRequested", "{started:#}");
        assert_eq!(started["outcome"], "unknown", "{started:#}");
        let oauth = &started["oauth"];
        assert!(
            oauth.get("device_code_fingerprint").is_none(),
            "{started:#}"
        );
        assert!(
            oauth.get("auth_req_id_fingerprint").is_none(),
            "{started:#}"
        );
    }
    assert_eq!(all[0]["oauth"]["endpoint"], "device_authorization");
    assert_eq!(all[1]["oauth"]["endpoint"], "backchannel_authentication");
}

/// A refusal quoting a short `login_hint` or `binding_message` (`kim7`, `W4SCT`: under the
/// 8 bytes past which an unknown parameter is scrubbed), which events never record, leaves
/// neither in the description.
#[tokio::test]
async fn a_short_login_hint_or_binding_message_quoted_back_is_scrubbed() {
    let (addr, memory) = decoupled_without_references().await;
    let refused = post_form(
        addr,
        "/bc-authorize",
        &[
            ("client_id", "rp"),
            ("scope", "openid payments"),
            ("login_hint", "kim7"),
            ("binding_message", "W4SCT"),
        ],
    )
    .await;
    assert_eq!(refused.status(), 400);

    let all = events(&memory, 1).await;
    let refused = &all[0];
    assert_eq!(refused["kind"], "AuthorizationFailed", "{refused:#}");
    assert_eq!(refused["error"]["code"], "unknown_user_id");
    assert_eq!(
        refused["error"]["description"],
        "no user [redacted] to show [redacted] to"
    );
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["kim7", "W4SCT"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn backchannel_authentication_requests_record_the_client_and_never_the_hints() {
    let s = setup().await;
    let hint_token = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"ES256"}"#),
        b64(r#"{"sub_id":{"format":"phone","phone":"+15555550100"}}"#)
    );
    let started = s
        .client
        .post(s.url("/bc-authorize"))
        .basic_auth("tv", Some("tv-s3cret-value"))
        .form(&[
            ("scope", "openid payments"),
            ("login_hint_token", hint_token.as_str()),
            ("binding_message", "W4SCT-b1nding"),
            ("user_code", "us3r-c0de-1234"),
            ("client_notification_token", "n0tification-t0ken-value"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    // A signed request (CIBA Core §7.1.1): a client assertion authenticates `tv`, the
    // request object carries the scopes and the hint, and names another client.
    let assertion = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256"}"#),
        b64(r#"{"iss":"tv","sub":"tv","aud":"https://as.example"}"#)
    );
    let object = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256"}"#),
        b64(
            r#"{"iss":"other-app","client_id":"other-app","aud":"https://as.example","scope":"openid admin","id_token_hint":"h1nt-inside-the-object","binding_message":"b1nding-inside"}"#
        )
    );
    let signed = s
        .client
        .post(s.url("/bc-authorize"))
        .form(&[
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.as_str()),
            ("request", object.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    // A hint token of another format than a JWT, which the server quotes back.
    let nobody = "nobody-at-all-hint-t0ken".to_owned();
    let refused = s
        .client
        .post(s.url("/bc-authorize"))
        .basic_auth("tv", Some("tv-s3cret-value"))
        .form(&[
            ("scope", "openid"),
            ("login_hint_token", nobody.as_str()),
            ("user_code", "us3r-c0de-1234"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    let all = events(&s.memory, 3).await;
    let (started, signed, refused) = (&all[0], &all[1], &all[2]);
    assert_eq!(started["kind"], "AuthorizationRequested", "{started:#}");
    assert_eq!(started["outcome"], "success");
    assert_eq!(started["oauth"]["endpoint"], "backchannel_authentication");
    assert_eq!(started["actor"]["client_id"], "tv");
    assert_eq!(started["client_auth"], "client_secret_basic");
    assert_eq!(
        started["scopes"]["requested"],
        json!(["openid", "payments"])
    );
    assert_eq!(started["oauth"]["auth_req_id_fingerprint"], fp(AUTH_REQ_ID));
    assert_eq!(started["severity"], "info");

    assert_eq!(signed["actor"]["client_id"], "tv", "{signed:#}");
    assert_eq!(signed["client_auth"], "private_key_jwt");
    assert_eq!(signed["scopes"]["requested"], json!(["openid", "admin"]));
    assert_eq!(signed["oauth"]["conflicting_client_id"], "other-app");
    assert_eq!(signed["severity"], "warning");

    assert_eq!(refused["kind"], "AuthorizationFailed");
    assert_eq!(refused["error"]["code"], "unknown_user_id");
    assert!(refused["oauth"].get("auth_req_id_fingerprint").is_none());
    let description = refused["error"]["description"].as_str().unwrap();
    assert!(description.contains("[redacted]"), "{description}");

    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        AUTH_REQ_ID,
        hint_token.as_str(),
        nobody.as_str(),
        "nobody-at-all",
        "+15555550100",
        "W4SCT",
        "us3r-c0de",
        "n0tification-t0ken",
        "tv-s3cret-value",
        assertion.as_str(),
        object.as_str(),
        "h1nt-inside",
        "b1nding-inside",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// A token endpoint for the decoupled flows' polls: a CIBA poll (CIBA Core §10.1) for the
/// `auth_req_id` answered above is granted an opaque token, a device-code poll (RFC 8628
/// §3.4) is told to wait.
async fn decoupled_token(Form(form): Form<Vec<(String, String)>>) -> Response {
    let get = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match (get("grant_type"), get("auth_req_id"), get("device_code")) {
        (Some("urn:openid:params:grant-type:ciba"), Some(AUTH_REQ_ID), _) => Json(json!({
            "access_token": "0paque-ciba-access-t0ken",
            "token_type": "Bearer",
            "expires_in": 300,
        }))
        .into_response(),
        (Some("urn:ietf:params:oauth:grant-type:device_code"), _, Some(DEVICE_CODE)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "authorization_pending"})),
        )
            .into_response(),
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant"})),
        )
            .into_response(),
    }
}

/// A CIBA poll carries the fingerprint of the `auth_req_id` it polls for, the one the
/// backchannel authentication request's event carries: the two join. The same for a
/// device-code poll and its device authorization request. Neither value is recorded.
#[tokio::test]
async fn decoupled_polls_carry_the_fingerprint_of_the_request_they_poll_for() {
    let (auditor, memory) = memory_auditor();
    let endpoints = Endpoints::builder()
        .no_defaults()
        .token("/token")
        .device_authorization("/device_authorization")
        .backchannel_authentication("/bc-authorize")
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/token", post(decoupled_token))
        .route("/device_authorization", post(device_authorization))
        .route("/bc-authorize", post(backchannel_authentication))
        .layer(layer);
    let addr = serve(app).await;
    let tv = [("client_id", "tv"), ("client_secret", "tv-s3cret-value")];
    let send = |path: &str, form: Vec<(&'static str, &'static str)>| {
        let path = path.to_owned();
        async move {
            let mut form = form;
            form.extend(tv);
            post_form(addr, &path, &form).await.status()
        }
    };
    assert_eq!(send("/bc-authorize", vec![("scope", "openid")]).await, 200);
    assert_eq!(
        send(
            "/token",
            vec![
                ("grant_type", "urn:openid:params:grant-type:ciba"),
                ("auth_req_id", AUTH_REQ_ID),
            ]
        )
        .await,
        200
    );
    assert_eq!(
        send("/device_authorization", vec![("scope", "openid")]).await,
        200
    );
    assert_eq!(
        send(
            "/token",
            vec![
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", DEVICE_CODE),
            ]
        )
        .await,
        400
    );

    let all = events(&memory, 4).await;
    let (started, polled, device, device_poll) = (&all[0], &all[1], &all[2], &all[3]);
    assert_eq!(started["oauth"]["auth_req_id_fingerprint"], fp(AUTH_REQ_ID));
    assert_eq!(polled["kind"], "AccessTokenIssued", "{polled:#}");
    assert_eq!(polled["grant_type"], "urn:openid:params:grant-type:ciba");
    assert_eq!(polled["actor"]["client_id"], "tv");
    assert_eq!(
        polled["oauth"]["auth_req_id_fingerprint"], started["oauth"]["auth_req_id_fingerprint"],
        "{polled:#}"
    );
    assert_eq!(device["oauth"]["device_code_fingerprint"], fp(DEVICE_CODE));
    assert_eq!(device_poll["kind"], "TokenRequestFailed", "{device_poll:#}");
    assert_eq!(device_poll["error"]["code"], "authorization_pending");
    assert_eq!(
        device_poll["oauth"]["device_code_fingerprint"], device["oauth"]["device_code_fingerprint"],
        "{device_poll:#}"
    );
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        AUTH_REQ_ID,
        DEVICE_CODE,
        USER_CODE,
        "tv-s3cret-value",
        "0paque-ciba",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// An authorization endpoint that takes its parameters from the query and, for `POST`
/// (OpenID Connect Core §3.1.2.1), the form body alike, and grants a code to any request
/// with a request object in either.
async fn authorize_merged(RawQuery(query): RawQuery, body: axum::body::Bytes) -> Response {
    let query = query.unwrap_or_default();
    let object = form_urlencoded::parse(query.as_bytes())
        .chain(form_urlencoded::parse(&body))
        .any(|(k, _)| k == "request");
    if object {
        (
            StatusCode::FOUND,
            [(
                header::LOCATION,
                "https://rp.example/cb?code=c0de-c0de&state=st",
            )],
        )
            .into_response()
    } else {
        (StatusCode::BAD_REQUEST, "no request object").into_response()
    }
}

/// A request object sent in a `POST /authorize` body while `client_id` is only in the query
/// (or the reverse) is compared with it as one in the query is (RFC 9101 §6.3): the
/// object's client is the actor, the other `conflicting_client_id`.
#[tokio::test]
async fn a_request_object_and_a_client_id_split_between_query_and_body_are_compared() {
    let (auditor, memory) = memory_auditor();
    let endpoints = Endpoints::builder()
        .no_defaults()
        .authorization("/authorize")
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/authorize", get(authorize_merged).post(authorize_merged))
        .layer(layer);
    let addr = serve(app).await;
    let object = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256","kid":"k"}"#),
        b64(
            r#"{"aud":"https://as.example","client_id":"attacker-app","response_type":"code","redirect_uri":"https://evil.example/cb","scope":"openid","state":"st4te-st4te"}"#
        )
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("http://{addr}/authorize");
    // The object in the body, `client_id` in the query; then the reverse.
    let sent = [
        client
            .post(format!("{url}?client_id=rp&response_type=code"))
            .form(&[("request", object.as_str())]),
        client
            .post(format!("{url}?response_type=code&request={object}"))
            .form(&[("client_id", "rp")]),
    ];
    for request in sent {
        assert_eq!(request.send().await.unwrap().status(), 302);
    }
    let all = events(&memory, 2).await;
    for e in &all {
        assert_eq!(e["kind"], "AuthorizationGranted", "{e:#}");
        assert_eq!(e["actor"]["client_id"], "attacker-app", "{e:#}");
        assert_eq!(e["oauth"]["conflicting_client_id"], "rp", "{e:#}");
        assert_eq!(e["severity"], "warning");
        assert_eq!(e["redirect_uri"], "https://evil.example/cb", "{e:#}");
    }
    let text = serde_json::to_string(&all).unwrap();
    for secret in [object.as_str(), "st4te", "c0de-c0de"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}

/// A request naming three clients records every one of them: the query's `client_id`, the
/// body's, and the request object's (the actor), the two others in
/// `oauth.conflicting_client_ids`, the first also in `conflicting_client_id`.
#[tokio::test]
async fn every_conflicting_client_of_an_authorization_request_is_recorded() {
    let (auditor, memory) = memory_auditor();
    let endpoints = Endpoints::builder()
        .no_defaults()
        .authorization("/authorize")
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    let app = Router::new()
        .route("/authorize", post(authorize_merged))
        .layer(layer);
    let addr = serve(app).await;
    let object = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256","kid":"k"}"#),
        b64(r#"{"client_id":"attacker-app","response_type":"code","scope":"openid"}"#)
    );
    let status = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("http://{addr}/authorize?client_id=rp"))
        .form(&[("client_id", "third-app"), ("request", object.as_str())])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 302);
    let all = events(&memory, 1).await;
    let e = &all[0];
    assert_eq!(e["actor"]["client_id"], "attacker-app", "{e:#}");
    let others = e["oauth"]["conflicting_client_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no conflicting_client_ids: {e:#}"));
    let mut others: Vec<&str> = others.iter().filter_map(|v| v.as_str()).collect();
    assert!(others.contains(&e["oauth"]["conflicting_client_id"].as_str().unwrap()));
    others.sort_unstable();
    assert_eq!(others, ["rp", "third-app"], "{e:#}");
    assert_eq!(e["severity"], "warning");
}

/// CIBA polls are condensed as device-code polls are: the polls the user has not decided on
/// yet are one event, and the issuance says how many were left out. A device-code poll that
/// sends the same value as an `auth_req_id` is another request's poll, condensed apart.
#[tokio::test]
async fn ciba_polls_waiting_for_the_user_are_condensed_apart_from_device_code_polls() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const SHARED: &str = "the-same-reference-value";
    let (auditor, memory) = memory_auditor();
    let endpoints = Endpoints::builder()
        .no_defaults()
        .token("/token")
        .backchannel_authentication("/bc-authorize")
        .build()
        .unwrap();
    let layer = AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    // The user decides after the third CIBA poll; the device is never approved.
    let ciba_polls = Arc::new(AtomicUsize::new(0));
    let token = {
        let ciba_polls = ciba_polls.clone();
        move |Form(form): Form<Vec<(String, String)>>| {
            let ciba_polls = ciba_polls.clone();
            async move {
                let ciba = form
                    .iter()
                    .any(|(k, v)| k == "grant_type" && v == "urn:openid:params:grant-type:ciba");
                if ciba && ciba_polls.fetch_add(1, Ordering::SeqCst) >= 3 {
                    return Json(json!({
                        "access_token": "0paque-ciba-access-t0ken",
                        "token_type": "Bearer",
                        "expires_in": 300,
                    }))
                    .into_response();
                }
                (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": "authorization_pending"})),
                )
                    .into_response()
            }
        }
    };
    let app = Router::new().route("/token", post(token)).layer(layer);
    let addr = serve(app).await;
    let poll = |grant_type: &'static str, reference: &'static str| async move {
        post_form(
            addr,
            "/token",
            &[
                ("grant_type", grant_type),
                (reference, SHARED),
                ("client_id", "tv"),
                ("client_secret", "tv-s3cret-value"),
            ],
        )
        .await
        .status()
    };
    const CIBA: &str = "urn:openid:params:grant-type:ciba";
    const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
    assert_eq!(poll(CIBA, "auth_req_id").await, 400);
    assert_eq!(poll(DEVICE, "device_code").await, 400);
    assert_eq!(poll(CIBA, "auth_req_id").await, 400);
    assert_eq!(poll(CIBA, "auth_req_id").await, 400);
    assert_eq!(poll(CIBA, "auth_req_id").await, 200);

    let all = events(&memory, 3).await;
    assert_eq!(all.len(), 3, "{all:#?}");
    let (waiting, device, issued) = (&all[0], &all[1], &all[2]);
    assert_eq!(waiting["error"]["code"], "authorization_pending");
    assert_eq!(waiting["oauth"]["auth_req_id_fingerprint"], fp(SHARED));
    assert_eq!(device["grant_type"], DEVICE, "{device:#}");
    assert_eq!(device["oauth"]["device_code_fingerprint"], fp(SHARED));
    assert_eq!(issued["kind"], "AccessTokenIssued", "{issued:#}");
    assert_eq!(issued["oauth"]["auth_req_id_fingerprint"], fp(SHARED));
    assert_eq!(issued["oauth"]["repeated"], 2, "{issued:#}");
}

/// A device code polled from another address than the device's (a stolen code, polled
/// under the device's own public client id) is not condensed into the device's polls: its
/// first waiting poll is an event of its own, with its address.
#[tokio::test]
async fn polls_from_another_address_are_not_condensed_into_the_devices() {
    let (auditor, memory) = memory_auditor();
    let layer = AuditLayer::builder(auditor)
        .trusted_proxies(["127.0.0.1", "::1"])
        .endpoints(
            Endpoints::builder()
                .no_defaults()
                .token("/token")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let app = Router::new()
        .route("/token", post(decoupled_token))
        .layer(layer);
    let addr = serve(app).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let poll = |from: &'static str| {
        client
            .post(format!("http://{addr}/token"))
            .header("x-forwarded-for", from)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", DEVICE_CODE),
                ("client_id", "tv"),
            ])
            .send()
    };
    const DEVICE: &str = "203.0.113.5";
    const THIEF: &str = "198.51.100.9";
    for from in [DEVICE, DEVICE, THIEF, THIEF, DEVICE] {
        assert_eq!(poll(from).await.unwrap().status(), 400);
    }
    let all = events(&memory, 2).await;
    let sources: Vec<&str> = all
        .iter()
        .map(|e| e["source"]["ip"].as_str().unwrap())
        .collect();
    assert_eq!(sources, [DEVICE, THIEF], "{all:#?}");
    for event in &all {
        assert_eq!(event["error"]["code"], "authorization_pending");
        assert_eq!(event["oauth"]["device_code_fingerprint"], fp(DEVICE_CODE));
    }
}
