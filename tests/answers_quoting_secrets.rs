//! Secrets an authorization server quotes back, from wherever the request carried them: a
//! body the layer could not read (too large, or not a form), the query string, an unpadded
//! Basic header, a revocation reason, a redirect URI's user information, more cookies than
//! are kept to scrub; and what a protected route's challenge quotes of a request that did
//! not present one bearer token (a Basic password, a second `Authorization` field, a token
//! in the query), or of the cookies it carried; and what an application reports in an
//! `ErrorInfo` of the response's extensions. Each against a misbehaving server written
//! here. The event must never hold them.

mod support;

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use oauth_audit::oauth::Endpoints;
use support::{client_without_redirects, events, serve_with_endpoints};

/// An authorization server that quotes the code and client secret it refused, as a misbehaving
/// one may.
async fn echoing_token(body: Bytes) -> impl IntoResponse {
    let text = String::from_utf8_lossy(&body).into_owned();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let desc = format!(
        "code {} is invalid for client secret {}",
        get("code"),
        get("client_secret")
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error":"invalid_grant","error_description":desc}).to_string(),
    )
}

#[tokio::test]
async fn a_body_too_large_to_read_leaves_the_answers_description_out() {
    let app = Router::new().route("/token", post(echoing_token));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    // Control: small body, scrubbed.
    let small =
        "grant_type=authorization_code&code=CODESMALL0001&client_id=c&client_secret=SECRETSMALL01";
    // Attack: the same, with padding after the secrets, past the 64 KiB body limit.
    let pad = "x".repeat(70 * 1024);
    let big = format!("grant_type=authorization_code&code=CODEBIG000001&client_id=c&client_secret=SECRETBIG0001&pad={pad}");
    for body in [small.to_string(), big] {
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 2).await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("CODESMALL0001"));
    assert!(!text.contains("SECRETSMALL01"));
    assert!(!text.contains("CODEBIG000001"), "code leaked");
    assert!(!text.contains("SECRETBIG0001"), "client secret leaked");
    // The error code stays; the body that was not read is said so.
    assert_eq!(all[1]["error"]["code"], "invalid_grant", "{}", all[1]);
    assert_eq!(
        all[1]["oauth"]["body_not_inspected"][0],
        "request_too_large"
    );
}

#[tokio::test]
async fn a_configured_endpoints_body_too_large_to_read_leaves_the_description_out() {
    let app = Router::new().route("/oauth/token", post(echoing_token));
    let (addr, memory) = serve_with_endpoints(
        app,
        Endpoints::builder().token("/oauth/token").build().unwrap(),
    )
    .await;
    let pad = "x".repeat(70 * 1024);
    let big = format!("grant_type=authorization_code&code=CODEBIG000002&client_id=c&client_secret=SECRETBIG0002&pad={pad}");
    client_without_redirects()
        .post(format!("http://{addr}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    let text = all[0].to_string();
    assert!(!text.contains("CODEBIG000002"), "code leaked: {text}");
    assert!(
        !text.contains("SECRETBIG0002"),
        "client secret leaked: {text}"
    );
}

async fn revoke_ok(_body: Bytes) -> impl IntoResponse {
    StatusCode::OK
}

#[tokio::test]
async fn a_revocation_reason_quoting_the_token_is_scrubbed() {
    let app = Router::new().route("/oauth/revoke", post(revoke_ok));
    let (addr, memory) = serve_with_endpoints(
        app,
        Endpoints::builder()
            .revocation("/oauth/revoke")
            .build()
            .unwrap(),
    )
    .await;
    let token = "RefreshTokenValue00005";
    client_without_redirects()
        .post(format!("http://{addr}/oauth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={token}&client_id=c&reason=leaked+token+{token}"
        ))
        .send()
        .await
        .unwrap();
    client_without_redirects()
        .post(format!("http://{addr}/oauth/revoke"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-revocation-reason", format!("leaked {token}"))
        .body(format!("token={token}&client_id=c"))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 2).await;
    assert!(
        !serde_json::to_string(&all).unwrap().contains(token),
        "token in reason"
    );
}

async fn basic_echo(headers: axum::http::HeaderMap, _body: Bytes) -> impl IntoResponse {
    use base64::Engine;
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let cred = auth.split_once(' ').map(|(_, c)| c.trim()).unwrap_or("");
    let decoded = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cred.trim_end_matches('='))
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&decoded).into_owned();
    let secret = text
        .split_once(':')
        .map(|(_, s)| s.to_owned())
        .unwrap_or_default();
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error":"invalid_client","error_description":format!("client secret {secret} is wrong")}).to_string(),
    )
}

#[tokio::test]
async fn an_unpadded_basic_password_is_scrubbed_and_its_client_named() {
    use base64::Engine;
    let app = Router::new().route("/oauth/token", post(basic_echo));
    let (addr, memory) = serve_with_endpoints(
        app,
        Endpoints::builder().token("/oauth/token").build().unwrap(),
    )
    .await;
    let padded = base64::engine::general_purpose::STANDARD.encode("client:BasicSecretPadded1");
    let unpadded =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode("client:BasicSecretNoPad01");
    for cred in [padded, unpadded] {
        client_without_redirects()
            .post(format!("http://{addr}/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("authorization", format!("Basic {cred}"))
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 2).await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("BasicSecretPadded1"));
    assert!(
        !text.contains("BasicSecretNoPad01"),
        "unpadded Basic secret leaked"
    );
    assert_eq!(all[1]["actor"]["client_id"], "client", "{}", all[1]);
}

async fn authorize_redirect(uri: axum::http::Uri) -> impl IntoResponse {
    let q = uri.query().unwrap_or("");
    let form: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect();
    let redirect = form
        .iter()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("{redirect}?code=AuthCode0006&state=s"),
        )],
        "",
    )
}

#[tokio::test]
async fn a_redirect_uris_user_information_is_not_recorded() {
    let app = Router::new().route("/oauth/authorize", get(authorize_redirect));
    let (addr, memory) = serve_with_endpoints(
        app,
        Endpoints::builder()
            .authorization("/oauth/authorize")
            .build()
            .unwrap(),
    )
    .await;
    let redirect = "https%3A%2F%2Fclient%3AUserinfoPass0006%40app.example%2Fcb";
    client_without_redirects()
        .get(format!(
            "http://{addr}/oauth/authorize?response_type=code&client_id=c&redirect_uri={redirect}"
        ))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert!(
        !all[0].to_string().contains("UserinfoPass0006"),
        "userinfo password in event"
    );
    assert!(!all[0].to_string().contains("AuthCode0006"));
}

/// An AS that quotes the redirect URI it refused, whole, in its answer: in a token
/// response's `error_description`, or in an error redirect's.
async fn quoting_redirect_token(body: Bytes) -> impl IntoResponse {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let redirect = form
        .iter()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "error": "invalid_grant",
            "error_description": format!("redirect_uri {redirect} does not match"),
        })
        .to_string(),
    )
}

async fn quoting_redirect_authorize(uri: axum::http::Uri) -> impl IntoResponse {
    let q = uri.query().unwrap_or("");
    let redirect = url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let description: String =
        url::form_urlencoded::byte_serialize(format!("redirect_uri {redirect} refused").as_bytes())
            .collect();
    (
        StatusCode::FOUND,
        [(
            header::LOCATION,
            format!("https://app.example/cb?error=invalid_request&error_description={description}"),
        )],
        "",
    )
}

#[tokio::test]
async fn a_redirect_uris_password_quoted_back_is_scrubbed() {
    let app = Router::new()
        .route("/token", post(quoting_redirect_token))
        .route("/authorize", get(quoting_redirect_authorize));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let redirect = |password: &str| {
        url::form_urlencoded::byte_serialize(
            format!("https://client:{password}@app.example/cb").as_bytes(),
        )
        .collect::<String>()
    };
    client_without_redirects()
        .post(format!("http://{addr}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code=AuthCode0011&client_id=c&redirect_uri={}",
            redirect("UserinfoPass0011")
        ))
        .send()
        .await
        .unwrap();
    client_without_redirects()
        .get(format!(
            "http://{addr}/authorize?response_type=code&client_id=c&redirect_uri={}",
            redirect("UserinfoPass0012")
        ))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 2).await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("UserinfoPass0011"),
        "password leaked: {text}"
    );
    assert!(
        !text.contains("UserinfoPass0012"),
        "password leaked: {text}"
    );
    // What the server said is still there around it.
    assert!(
        all.iter().any(|e| e["error"]["description"]
            .as_str()
            .unwrap_or("")
            .contains("does not match")),
        "{text}"
    );
    assert!(
        all.iter().any(|e| e["error"]["description"]
            .as_str()
            .unwrap_or("")
            .contains("refused")),
        "{text}"
    );
}

/// An AS that, like several real ones, also takes a JSON body at its token endpoint, and
/// quotes the code it refused.
async fn json_token(body: Bytes) -> impl IntoResponse {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let desc = format!(
        "code {} is invalid for client secret {}",
        v["code"].as_str().unwrap_or(""),
        v["client_secret"].as_str().unwrap_or("")
    );
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error":"invalid_grant","error_description":desc}).to_string(),
    )
}

#[tokio::test]
async fn a_json_token_request_is_not_inspected_and_its_answer_not_quoted() {
    let app = Router::new().route("/oauth/token", post(json_token));
    let (addr, memory) = serve_with_endpoints(
        app,
        Endpoints::builder().token("/oauth/token").build().unwrap(),
    )
    .await;
    client_without_redirects()
        .post(format!("http://{addr}/oauth/token"))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"authorization_code","code":"JsonBodyCode0008","client_id":"c","client_secret":"JsonBodySecret08"}"#)
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert!(
        !all[0].to_string().contains("JsonBodyCode0008"),
        "code leaked"
    );
    assert!(
        !all[0].to_string().contains("JsonBodySecret08"),
        "secret leaked"
    );
    assert_eq!(
        all[0]["oauth"]["body_not_inspected"][0],
        "request_not_a_form"
    );
}

/// A servlet-style AS: parameters come from the query string and the body alike.
async fn merged_params(uri: axum::http::Uri, body: Bytes) -> impl IntoResponse {
    let mut all: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    all.extend(url::form_urlencoded::parse(&body).into_owned());
    let get = |k: &str| {
        all.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error":"invalid_grant","error_description":format!("code {} is invalid for client secret {}", get("code"), get("client_secret"))}).to_string(),
    )
}

#[tokio::test]
async fn secrets_sent_in_a_token_requests_query_are_scrubbed() {
    let app = Router::new().route("/oauth/token", post(merged_params));
    let (addr, memory) = serve_with_endpoints(
        app,
        Endpoints::builder().token("/oauth/token").build().unwrap(),
    )
    .await;
    client_without_redirects()
        .post(format!(
            "http://{addr}/oauth/token?code=QueryCode00012&client_secret=QuerySecret012"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=authorization_code&client_id=c")
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert!(
        !all[0].to_string().contains("QueryCode00012"),
        "code leaked"
    );
    assert!(
        !all[0].to_string().contains("QuerySecret012"),
        "secret leaked"
    );
}

/// A resource server that quotes the credential it refused in its challenge.
async fn echoing_api(headers: axum::http::HeaderMap) -> impl IntoResponse {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let token = auth
        .split_once(' ')
        .map(|(_, t)| t.trim().to_owned())
        .unwrap_or_default();
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            format!(
                "Bearer error=\"invalid_token\", error_description=\"token {token} is not valid\""
            ),
        )],
        "",
    )
}

/// Credentials outside RFC 6750's `b64token` (a Facebook-style app token `id|secret`, a
/// `v2:` token, one with a comma) are no one word: the scrub looks for them as written.
#[tokio::test]
async fn a_malformed_credential_quoted_in_a_challenge_is_scrubbed() {
    let app = Router::new().route("/api/me", get(echoing_api));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let tokens = [
        ("opaqueWellFormed0001", "opaqueWellFormed0001"),
        ("1234567890|AppSecretValue0002", "AppSecretValue0002"),
        ("v2:OpaqueTokenValue0003", "OpaqueTokenValue0003"),
        ("tok,en0004SecretPart", "0004SecretPart"),
    ];
    for (token, _) in tokens {
        client_without_redirects()
            .get(format!("http://{addr}/api/me"))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, tokens.len()).await;
    let text = serde_json::to_string(&all).unwrap();
    for (token, part) in tokens {
        assert!(!text.contains(part), "{token}: {text}");
    }
}

/// A token endpoint that quotes the request's last cookie.
async fn cookie_echo(headers: axum::http::HeaderMap, _body: Bytes) -> impl IntoResponse {
    let cookies = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let last = cookies
        .rsplit(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.trim())
        .unwrap_or("");
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({"error":"invalid_client","error_description":format!("session {last} is not yours")}).to_string(),
    )
}

#[tokio::test]
async fn a_flood_of_cookies_leaves_the_answers_description_out_and_its_code_in() {
    let app = Router::new().route("/token", post(cookie_echo));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    // A handful of cookies, each with a character that ends a word: kept and scrubbed.
    let few: Vec<String> = (0..4).map(|i| format!("c{i}=few!{i:04}")).collect();
    // Thousands: too many to keep, and the one quoted is past the ones kept.
    let many: Vec<String> = (0..3_000).map(|i| format!("c{i}=many!{i:04}")).collect();
    for cookies in [few, many] {
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookies.join("; "))
            .body("grant_type=client_credentials&client_id=app")
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 2).await;
    assert_eq!(
        all[0]["error"]["description"],
        "session [redacted] is not yours"
    );
    assert_eq!(all[1]["error"]["code"], "invalid_client", "{}", all[1]);
    assert_eq!(
        all[1]["error"]["description"],
        "[not recorded: too many secrets to scrub]"
    );
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("few!"), "{text}");
    assert!(!text.contains("many!"), "{text}");
}

/// A resource server whose challenge quotes every credential the request carried: each
/// `Authorization` value (and a Basic one decoded), and an `access_token` sent in the
/// query (RFC 6750 §2.3).
async fn quoting_challenge(
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
) -> impl IntoResponse {
    use base64::Engine;
    let mut quoted = Vec::new();
    for value in headers.get_all(header::AUTHORIZATION) {
        let value = value.to_str().unwrap_or_default();
        quoted.push(value.to_owned());
        if let Some(basic) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(basic)
                .unwrap_or_default();
            quoted.push(String::from_utf8_lossy(&decoded).into_owned());
        }
    }
    let q = uri.query().unwrap_or("");
    for (name, value) in url::form_urlencoded::parse(q.as_bytes()) {
        if name == "access_token" {
            quoted.push(format!("token {value} has expired"));
        }
    }
    let challenge = format!(
        "Bearer error=\"invalid_token\", error_description=\"refused: {}\"",
        quoted.join(" ")
    );
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "",
    )
}

#[tokio::test]
async fn a_challenge_quoting_credentials_other_than_one_bearer_token_is_scrubbed() {
    use base64::Engine;
    let app = Router::new().route("/api/data", get(quoting_challenge));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let basic = |text: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
    };
    let url = format!("http://{addr}/api/data");
    let sent = [
        // Another scheme: a Basic password, and a key sent as Basic without an id.
        client_without_redirects()
            .get(&url)
            .header(header::AUTHORIZATION, basic("alice:BasicPassword0021")),
        client_without_redirects()
            .get(&url)
            .header(header::AUTHORIZATION, basic("ApiKeyWithoutColon0022")),
        // Two fields: the request is malformed, and the second token is a secret too.
        client_without_redirects()
            .get(&url)
            .header(header::AUTHORIZATION, "Bearer FirstBearer0023")
            .header(header::AUTHORIZATION, "Bearer SecondBearer0023"),
        // A token with no scheme at all.
        client_without_redirects()
            .get(&url)
            .header(header::AUTHORIZATION, "BareTokenNoScheme0024"),
        // RFC 6750 §2.3: the token in the query.
        client_without_redirects().get(format!("{url}?access_token=QueryAccessToken0025")),
        // The same, its name percent-encoded, as a server that decodes names reads it.
        client_without_redirects().get(format!("{url}?q=1&access%5Ftoken=QueryAccessToken0026")),
    ];
    for request in sent {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let all = events(&memory, 6).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        "BasicPassword0021",
        "ApiKeyWithoutColon0022",
        "FirstBearer0023",
        "SecondBearer0023",
        "BareTokenNoScheme0024",
        "QueryAccessToken0025",
        "QueryAccessToken0026",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // The challenge is still recorded, its code and the words around the secrets.
    for event in &all {
        assert_eq!(event["error"]["code"], "invalid_token", "{event}");
        assert!(
            event["error"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("refused: ")),
            "{event}"
        );
    }
}

/// A resource server whose challenge quotes every cookie value of every `Cookie` field the
/// request carried, as it came and form-encoded (a server that quotes its log's copy).
async fn quoting_cookies(headers: axum::http::HeaderMap) -> impl IntoResponse {
    let mut quoted = Vec::new();
    for field in headers.get_all(header::COOKIE) {
        for pair in field.to_str().unwrap_or_default().split(';') {
            if let Some((name, value)) = pair.split_once('=') {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(value.trim().as_bytes()).collect();
                quoted.push(format!("{} {} ({encoded})", name.trim(), value.trim()));
            }
        }
    }
    let challenge = format!(
        "Bearer error=\"invalid_token\", error_description=\"refused: {}\"",
        quoted.join(", ")
    );
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "",
    )
}

/// A protected route's challenge quoting the request's cookies: a value of one word (found
/// by its digest) and one with characters that end a word (found as text, raw or encoded),
/// with a bearer token beside them or none.
#[tokio::test]
async fn a_challenge_quoting_the_requests_cookie_is_scrubbed() {
    let app = Router::new().route("/api/data", get(quoting_cookies));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let url = format!("http://{addr}/api/data");
    let cookies = "session=CookieSession0041; csrf=Cookie!Csrf/0042+x";
    let sent = [
        client_without_redirects()
            .get(&url)
            .header(header::COOKIE, cookies),
        client_without_redirects()
            .get(&url)
            .header(header::AUTHORIZATION, "Bearer OneBearerToken0043")
            .header(header::COOKIE, cookies),
    ];
    for request in sent {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let all = events(&memory, 2).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["CookieSession0041", "Csrf", "0042", "OneBearerToken0043"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    // The challenge is still recorded: its code, and the words around the values.
    for event in &all {
        assert_eq!(event["error"]["code"], "invalid_token", "{event}");
        assert_eq!(
            event["error"]["description"],
            "refused: session [redacted] ([redacted]), csrf [redacted] ([redacted])",
            "{event}"
        );
    }
}

/// The same with the cookies in two `Cookie` fields (HTTP/2 clients send each cookie in a
/// field of its own, RFC 9113 §8.2.3): every field's values are scrubbed.
#[tokio::test]
async fn a_challenge_quoting_cookies_of_two_cookie_fields_is_scrubbed() {
    let app = Router::new().route("/api/data", get(quoting_cookies));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    client_without_redirects()
        .get(format!("http://{addr}/api/data"))
        .header(header::COOKIE, "first=FirstField0051; theme=Dark!0052")
        .header(header::COOKIE, "second=Second:Field 0053")
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["FirstField0051", "Dark", "0052", "Second", "0053"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(all[0]["error"]["code"], "invalid_token", "{}", all[0]);
    assert_eq!(
        all[0]["error"]["description"],
        "refused: first [redacted] ([redacted]), theme [redacted] ([redacted]), second [redacted] ([redacted])",
        "{}",
        all[0]
    );
}

/// A default endpoint path (`/token`, not configured) whose traffic turns out not to be OAuth
/// (a `GET` answered with a challenge) is recorded as an ordinary route: its challenge is
/// scrubbed of the cookies the endpoint reading kept.
#[tokio::test]
async fn a_default_endpoint_paths_challenge_quoting_cookies_is_scrubbed() {
    let app = Router::new().route("/token", get(quoting_cookies));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    client_without_redirects()
        .get(format!("http://{addr}/token"))
        .header(
            header::COOKIE,
            "session=DefaultPath0061; csrf=Default!Path0062",
        )
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["kind"], "AccessDenied", "{}", all[0]);
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["DefaultPath0061", "Default!", "Path0062"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(
        all[0]["error"]["description"],
        "refused: session [redacted] ([redacted]), csrf [redacted] ([redacted])",
        "{}",
        all[0]
    );
}

/// A service that describes its refusal in an `ErrorInfo` in the response's extensions (a
/// gateway, say), its description quoting every cookie value of the request as
/// [`quoting_cookies`] does, and answering `status`.
fn reporting_cookies(
    headers: &axum::http::HeaderMap,
    status: StatusCode,
) -> axum::response::Response {
    let mut quoted = Vec::new();
    for field in headers.get_all(header::COOKIE) {
        for pair in field.to_str().unwrap_or_default().split(';') {
            if let Some((name, value)) = pair.split_once('=') {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(value.trim().as_bytes()).collect();
                quoted.push(format!("{} {} ({encoded})", name.trim(), value.trim()));
            }
        }
    }
    let mut response = (status, "").into_response();
    let mut error = oauth_audit::event::ErrorInfo::new("upstream_refused");
    error.description = Some(format!("refused: {}", quoted.join(", ")));
    response.extensions_mut().insert(error);
    response
}

/// What an application reports in the response's extensions is scrubbed of the request's
/// cookies as a challenge is: on a protected route (with a bearer token beside them or
/// none) and at an OAuth endpoint, and bounded like any description.
#[tokio::test]
async fn a_reported_error_quoting_the_requests_cookies_is_scrubbed() {
    let app = Router::new()
        .route(
            "/api/data",
            get(|headers: axum::http::HeaderMap| async move {
                reporting_cookies(&headers, StatusCode::BAD_GATEWAY)
            }),
        )
        .route(
            "/token",
            post(|headers: axum::http::HeaderMap, _body: Bytes| async move {
                reporting_cookies(&headers, StatusCode::BAD_GATEWAY)
            }),
        );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let cookies = "session=Reported0071; csrf=Reported!Csrf/0072+x";
    let sent = [
        client_without_redirects()
            .get(format!("http://{addr}/api/data"))
            .header(header::COOKIE, cookies),
        client_without_redirects()
            .get(format!("http://{addr}/api/data"))
            .header(header::AUTHORIZATION, "Bearer ReportedBearer0073")
            .header(header::COOKIE, cookies),
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookies)
            .body("grant_type=client_credentials&client_id=c"),
    ];
    for request in sent {
        let res = request.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_GATEWAY);
    }
    let all = events(&memory, 3).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["Reported0071", "Csrf", "0072", "ReportedBearer0073"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for event in &all {
        assert_eq!(event["error"]["code"], "upstream_refused", "{event}");
        assert_eq!(
            event["error"]["description"],
            "refused: session [redacted] ([redacted]), csrf [redacted] ([redacted])",
            "{event}"
        );
    }
    // Bounded as every description is (a cookie's name is no secret: quoted as it is).
    let long = format!("{}=1", "n".repeat(2000));
    client_without_redirects()
        .get(format!("http://{addr}/api/data"))
        .header(header::COOKIE, format!("session=Reported0074; {long}"))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 4).await;
    let description = all[3]["error"]["description"].as_str().unwrap();
    assert!(description.len() <= 512, "{} bytes", description.len());
    assert!(!description.contains("Reported0074"), "{description}");
}

/// A service that answers `status` with `body` and reports, in an `ErrorInfo` of the
/// response's extensions, a description quoting every field of the request's form: a login
/// page re-rendered with "wrong password", or a framework describing a slow backend.
fn reporting_form(
    form: &Bytes,
    status: StatusCode,
    body: &'static str,
) -> axum::response::Response {
    let quoted: Vec<String> = url::form_urlencoded::parse(form)
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    let mut error = oauth_audit::event::ErrorInfo::new("reported");
    error.description = Some(format!("for {}", quoted.join(", ")));
    response.extensions_mut().insert(error);
    response
}

/// An endpoint's answer that no classifier records an error for (a login page answered `200`,
/// a token issued, a device code answered) may still carry an `ErrorInfo`: its description is
/// scrubbed of the form's secrets (the password, the client secret, the client assertion),
/// not only of the head's.
#[tokio::test]
async fn a_reported_error_at_an_endpoint_that_did_not_fail_is_scrubbed_of_the_forms_secrets() {
    let app = Router::new()
        .route(
            "/login",
            post(|body: Bytes| async move { reporting_form(&body, StatusCode::OK, "{}") }),
        )
        .route(
            "/token",
            post(|body: Bytes| async move {
                reporting_form(
                    &body,
                    StatusCode::OK,
                    r#"{"access_token":"issued-at","token_type":"Bearer"}"#,
                )
            }),
        )
        .route(
            "/device/code",
            post(|body: Bytes| async move {
                reporting_form(
                    &body,
                    StatusCode::OK,
                    r#"{"device_code":"dc","user_code":"UC","verification_uri":"https://as/d"}"#,
                )
            }),
        );
    let endpoints = Endpoints::builder()
        .login("/login")
        .token("/token")
        .device_authorization("/device/code")
        .build()
        .unwrap();
    let (addr, memory) = serve_with_endpoints(app, endpoints).await;
    let forms = [
        ("/login", "username=alice&password=Hunter2Form0091"),
        (
            "/token",
            "grant_type=client_credentials&client_id=svc&client_secret=FormSecret0092",
        ),
        (
            "/device/code",
            "client_id=tv&scope=openid&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=Form.Assertion.0093",
        ),
    ];
    for (path, form) in forms {
        let res = client_without_redirects()
            .post(format!("http://{addr}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let all = events(&memory, 3).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["Hunter2Form0091", "FormSecret0092", "Form.Assertion.0093"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for event in &all {
        assert_eq!(event["error"]["code"], "reported", "{event}");
        assert!(
            event["error"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("[redacted]")),
            "{event}"
        );
    }
}

/// More cookies than are kept to scrub leave a reported error's description out, its code
/// in, as they do a challenge's.
#[tokio::test]
async fn a_flood_of_cookies_leaves_a_reported_errors_description_out_and_its_code_in() {
    let app = Router::new().route(
        "/api/data",
        get(|headers: axum::http::HeaderMap| async move {
            reporting_cookies(&headers, StatusCode::FORBIDDEN)
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let many: Vec<String> = (0..3_000).map(|i| format!("c{i}=many!{i:04}")).collect();
    client_without_redirects()
        .get(format!("http://{addr}/api/data"))
        .header(header::COOKIE, many.join("; "))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["kind"], "AccessDenied", "{}", all[0]);
    assert_eq!(all[0]["error"]["code"], "upstream_refused", "{}", all[0]);
    assert_eq!(
        all[0]["error"]["description"],
        "[not recorded: too many secrets to scrub]"
    );
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("many!"), "{text}");
}

/// On a protected route as at an endpoint, more cookies than are kept to scrub leave the
/// challenge's description out, its code in.
#[tokio::test]
async fn a_flood_of_cookies_leaves_a_challenges_description_out_and_its_code_in() {
    let app = Router::new().route("/api/data", get(quoting_cookies));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let many: Vec<String> = (0..3_000).map(|i| format!("c{i}=many!{i:04}")).collect();
    client_without_redirects()
        .get(format!("http://{addr}/api/data"))
        .header(header::COOKIE, many.join("; "))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    assert_eq!(all[0]["error"]["code"], "invalid_token", "{}", all[0]);
    assert_eq!(
        all[0]["error"]["description"],
        "[not recorded: too many secrets to scrub]"
    );
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("many!"), "{text}");
}

/// A token endpoint that quotes the `Authorization` header it could not read, decoded when
/// it is Basic.
async fn quoting_authorization(headers: axum::http::HeaderMap, _body: Bytes) -> impl IntoResponse {
    use base64::Engine;
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let decoded = value
        .strip_prefix("Basic\t")
        .or_else(|| value.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .map(|d| String::from_utf8_lossy(&d).into_owned())
        .unwrap_or_else(|| value.to_owned());
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("credentials {decoded} are not valid"),
        })
        .to_string(),
    )
}

#[tokio::test]
async fn an_endpoints_credentials_without_an_id_or_a_scheme_are_scrubbed() {
    use base64::Engine;
    let app = Router::new().route("/token", post(quoting_authorization));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let encoded = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    for authorization in [
        // A key sent as Basic without a client id.
        format!("Basic {}", encoded("NoColonKey0031")),
        // The scheme separated by a tab.
        format!("Basic\t{}", encoded("client:TabBasicPassword0032")),
        // A credential with no scheme at all.
        "BareClientKey0033".to_owned(),
    ] {
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header(header::AUTHORIZATION, authorization)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 3).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        "NoColonKey0031",
        "TabBasicPassword0032",
        "BareClientKey0033",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for event in &all {
        assert_eq!(event["error"]["code"], "invalid_client", "{event}");
        assert!(
            event["error"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("credentials ")),
            "{event}"
        );
    }
}

/// A token endpoint that reads its form in the charset the request names, ISO-8859-1, and
/// quotes the password it refused.
async fn latin1_token(body: Bytes) -> impl IntoResponse {
    let password = body
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"password="))
        .map(|value| {
            percent_encoding::percent_decode(value)
                .map(char::from)
                .collect::<String>()
        })
        .unwrap_or_default();
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({
            "error": "invalid_grant",
            "error_description": format!("password {password} is wrong"),
        })
        .to_string(),
    )
}

#[tokio::test]
async fn a_password_in_another_charset_is_scrubbed_as_the_server_read_it() {
    let app = Router::new().route("/token", post(latin1_token));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    client_without_redirects()
        .post(format!("http://{addr}/token"))
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=ISO-8859-1",
        )
        .body("grant_type=password&username=alice&password=Gr%FC%DFe-Latin1-0041")
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    let text = all[0].to_string();
    assert!(!text.contains("Latin1-0041"), "password leaked: {text}");
    assert_eq!(all[0]["actor"]["subject"], "alice", "{text}");
    assert!(
        all[0]["error"]["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("password ")),
        "{text}"
    );
}

#[tokio::test]
async fn an_audience_uris_query_and_password_are_not_recorded() {
    let app = Router::new().route("/token", post(echoing_token));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let audience: String = url::form_urlencoded::byte_serialize(
        b"https://svc:AudiencePass0051@api.example/v1?api_key=AudienceKey0051",
    )
    .collect();
    client_without_redirects()
        .post(format!("http://{addr}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=c\
             &subject_token=SubjectToken0051\
             &subject_token_type=urn:ietf:params:oauth:token-type:access_token\
             &audience={audience}&audience=orders-api"
        ))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    let text = all[0].to_string();
    assert!(!text.contains("AudiencePass0051"), "{text}");
    assert!(!text.contains("AudienceKey0051"), "{text}");
    let recorded = &all[0]["oauth"]["audience"];
    assert_eq!(recorded[1], "orders-api", "{text}");
    assert!(
        recorded[0]
            .as_str()
            .is_some_and(|a| a.ends_with("api.example/v1")),
        "{text}"
    );
}

/// A DPoP proof (RFC 9449) whose signature and payload parts are recognisable, and the
/// same proof as a resource server or authorization server would quote a part of it.
fn dpop_proof() -> (String, String, String) {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let payload = b64(
        r#"{"jti":"Pr00fJti0081","htm":"GET","htu":"https://rs.example/api/data","iat":1700000000}"#,
    );
    let signature = "Pr00fSignature0082-AbCdEfGhIjKlMnOpQrStUvWxYz_0123456789".to_owned();
    let proof = format!(
        "{}.{payload}.{signature}",
        b64(r#"{"typ":"dpop+jwt","alg":"ES256"}"#)
    );
    (proof, payload, signature)
}

/// The payload and signature parts of the request's `DPoP` header, quoted alone.
fn quoted_proof_parts(headers: &axum::http::HeaderMap) -> String {
    let proof = headers
        .get("dpop")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut parts = proof.split('.');
    let (_, payload, signature) = (parts.next(), parts.next(), parts.next());
    format!(
        "proof payload {} signature {} does not verify",
        payload.unwrap_or_default(),
        signature.unwrap_or_default()
    )
}

/// A challenge, or an `ErrorInfo` description, quoting a part of the request's DPoP proof
/// (its signature, its payload: not JWT-shaped on their own) is scrubbed of it, on a
/// protected route and at the token endpoint.
#[tokio::test]
async fn a_part_of_a_dpop_proof_quoted_back_is_scrubbed() {
    let app = Router::new()
        .route(
            "/api/data",
            get(|headers: axum::http::HeaderMap| async move {
                let challenge = format!(
                    "DPoP error=\"invalid_dpop_proof\", error_description=\"{}\"",
                    quoted_proof_parts(&headers)
                );
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, challenge)],
                    "",
                )
            }),
        )
        .route(
            "/api/reported",
            get(|headers: axum::http::HeaderMap| async move {
                let mut response = (StatusCode::UNAUTHORIZED, "").into_response();
                let mut error = oauth_audit::event::ErrorInfo::new("proof_refused");
                error.description = Some(quoted_proof_parts(&headers));
                response.extensions_mut().insert(error);
                response
            }),
        )
        .route(
            "/token",
            post(|headers: axum::http::HeaderMap, _body: Bytes| async move {
                let body = serde_json::json!({
                    "error": "invalid_dpop_proof",
                    "error_description": quoted_proof_parts(&headers),
                });
                (
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "application/json")],
                    body.to_string(),
                )
            }),
        );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let (proof, payload, signature) = dpop_proof();
    let sent = [
        client_without_redirects()
            .get(format!("http://{addr}/api/data"))
            .header(header::AUTHORIZATION, "DPoP DpopBoundAccessT0ken0083")
            .header("dpop", &proof),
        client_without_redirects()
            .get(format!("http://{addr}/api/reported"))
            .header(header::AUTHORIZATION, "DPoP DpopBoundAccessT0ken0083")
            .header("dpop", &proof),
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("dpop", &proof)
            .body("grant_type=client_credentials&client_id=c"),
    ];
    for request in sent {
        let res = request.send().await.unwrap();
        assert!(res.status().is_client_error());
    }
    let all = events(&memory, 3).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in [
        payload.as_str(),
        signature.as_str(),
        "Pr00fSignature0082",
        "DpopBoundAccessT0ken0083",
    ] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for event in &all {
        assert_eq!(
            event["error"]["description"],
            "proof payload [redacted] signature [redacted] does not verify",
            "{event}"
        );
    }
}

/// What an application reports as an `ErrorInfo` code may quote the request too: it is
/// scrubbed of the same secrets as the description, and bounded; a valid code is kept as
/// it was written.
#[tokio::test]
async fn a_reported_error_code_is_scrubbed_and_bounded() {
    fn reporting(code: String) -> axum::response::Response {
        let mut response = (StatusCode::BAD_GATEWAY, "").into_response();
        response
            .extensions_mut()
            .insert(oauth_audit::event::ErrorInfo::new(code));
        response
    }
    let app = Router::new()
        .route(
            "/api/data",
            get(|headers: axum::http::HeaderMap| async move {
                let cookie = headers
                    .get(header::COOKIE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                match cookie.split_once('=') {
                    Some((_, value)) => reporting(format!("session:{value}:refused")),
                    None => reporting("upstream_unreachable".into()),
                }
            }),
        )
        .route(
            "/api/long",
            get(|| async { reporting(format!("upstream_{}", "x".repeat(500))) }),
        )
        .route(
            "/token",
            post(|body: Bytes| async move {
                let secret = url::form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "client_secret")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                let mut response = (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"access_token":"0paque-t0ken-value-0091","token_type":"Bearer"}"#,
                )
                    .into_response();
                response
                    .extensions_mut()
                    .insert(oauth_audit::event::ErrorInfo::new(format!("slow:{secret}")));
                response
            }),
        );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let url = format!("http://{addr}");
    client_without_redirects()
        .get(format!("{url}/api/data"))
        .header(header::COOKIE, "session=ReportedCodeCookie0092")
        .send()
        .await
        .unwrap();
    client_without_redirects()
        .get(format!("{url}/api/data"))
        .send()
        .await
        .unwrap();
    client_without_redirects()
        .get(format!("{url}/api/long"))
        .send()
        .await
        .unwrap();
    client_without_redirects()
        .post(format!("{url}/token"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=c&client_secret=ReportedCodeSecret0093")
        .send()
        .await
        .unwrap();
    let all = events(&memory, 4).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["ReportedCodeCookie0092", "ReportedCodeSecret0093"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert_eq!(
        all[0]["error"]["code"], "session:[redacted]:refused",
        "{}",
        all[0]
    );
    assert_eq!(
        all[1]["error"]["code"], "upstream_unreachable",
        "{}",
        all[1]
    );
    let long = all[2]["error"]["code"].as_str().unwrap();
    assert!(long.len() <= 64, "{} bytes: {long}", long.len());
    assert!(long.starts_with("upstream_x"), "{long}");
    assert_eq!(all[3]["error"]["code"], "slow:[redacted]", "{}", all[3]);
}

/// A token request whose body is not read (JSON here: `request_not_a_form`) has secrets the
/// layer does not know, so nothing the answer or the application writes can be scrubbed of
/// them: the description is left out, and so is an error code that is not one the
/// specifications register (`slow:<client secret>`, `bad_secret:<client secret>`), while a
/// registered one stays.
#[tokio::test]
async fn an_error_code_is_not_recorded_when_the_request_body_was_not_read() {
    fn secret_of(body: &[u8]) -> String {
        serde_json::from_slice::<serde_json::Value>(body).unwrap()["client_secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    let app = Router::new().route(
        "/token",
        post(|body: Bytes| async move {
            let secret = secret_of(&body);
            let json = |status, text: String| {
                (status, [(header::CONTENT_TYPE, "application/json")], text).into_response()
            };
            match secret.as_str() {
                "UnreadCodeSecret0094" => {
                    let mut response = json(
                        StatusCode::OK,
                        r#"{"access_token":"0paque-t0ken-value-0094","token_type":"Bearer"}"#
                            .to_owned(),
                    );
                    response
                        .extensions_mut()
                        .insert(oauth_audit::event::ErrorInfo::new(format!("slow:{secret}")));
                    response
                }
                "UnreadCodeSecret0095" => json(
                    StatusCode::BAD_REQUEST,
                    format!(r#"{{"error":"bad_secret:{secret}"}}"#),
                ),
                _ => json(
                    StatusCode::BAD_REQUEST,
                    r#"{"error":"invalid_client"}"#.to_owned(),
                ),
            }
        }),
    );
    // A configured token endpoint: its answers are a token endpoint's whatever their body.
    let endpoints = Endpoints::builder()
        .no_defaults()
        .token("/token")
        .build()
        .unwrap();
    let (addr, memory) = serve_with_endpoints(app, endpoints).await;
    for secret in [
        "UnreadCodeSecret0094",
        "UnreadCodeSecret0095",
        "UnreadCodeSecret0096",
    ] {
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(format!(
                r#"{{"grant_type":"client_credentials","client_id":"c","client_secret":"{secret}"}}"#
            ))
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, 3).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["UnreadCodeSecret0094", "UnreadCodeSecret0095"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    for event in &all {
        assert_eq!(
            event["oauth"]["body_not_inspected"][0], "request_not_a_form",
            "{event}"
        );
    }
    for event in &all[..2] {
        assert_eq!(
            event["error"]["code"], "[not recorded: the request body was not inspected]",
            "{event}"
        );
    }
    assert_eq!(all[2]["error"]["code"], "invalid_client", "{}", all[2]);
}

/// The session cookie of [`quoting_session_inside_words`] and its short `lang` cookie.
const SESSION_COOKIES: &str = "session=6f1c0a9e2b7d4e58a3c1f0b9d2e7a4c6; lang=en";

/// What a server says of the request's cookies: the session's value inside a path and a
/// prefixed identifier, the language's as a word of its own, beside words that hold its
/// letters (`token`, `invalid_client`).
fn quoting_session_inside_words(headers: &axum::http::HeaderMap) -> String {
    let cookies = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let value = |name: &str| {
        cookies
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let session = value("session");
    format!(
        "session /sessions/{session} expired (sid_{session}, lang {}); invalid_client token",
        value("lang")
    )
}

/// A token endpoint's error description and a protected route's challenge quoting the
/// request's session cookie inside longer words (`/sessions/VALUE`, `sid_VALUE`): its bytes
/// go, the words around it stay; the short `lang=en` cookie cuts nothing out of words.
#[tokio::test]
async fn a_cookie_quoted_inside_a_path_is_scrubbed() {
    let app = Router::new()
        .route(
            "/token",
            post(|headers: axum::http::HeaderMap, _body: Bytes| async move {
                let description = quoting_session_inside_words(&headers);
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::CONTENT_TYPE, "application/json")],
                    serde_json::json!({"error":"invalid_client","error_description":description})
                        .to_string(),
                )
            }),
        )
        .route(
            "/api/data",
            get(|headers: axum::http::HeaderMap| async move {
                let challenge = format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quoting_session_inside_words(&headers)
                );
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, challenge)],
                    "",
                )
            }),
        );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    client_without_redirects()
        .post(format!("http://{addr}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(header::COOKIE, SESSION_COOKIES)
        .body("grant_type=client_credentials&client_id=app")
        .send()
        .await
        .unwrap();
    client_without_redirects()
        .get(format!("http://{addr}/api/data"))
        .header(header::COOKIE, SESSION_COOKIES)
        .send()
        .await
        .unwrap();
    let all = events(&memory, 2).await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("6f1c0a9e2b7d4e58a3c1f0b9d2e7a4c6"), "{text}");
    for event in &all {
        assert_eq!(
            event["error"]["description"],
            "session /sessions/[redacted] expired (sid_[redacted], lang [redacted]); invalid_client token",
            "{event}"
        );
    }
}

/// A protected route's challenge quoting the bearer token it was given inside a longer word
/// (a path, a prefixed identifier): the token is known by its fingerprint, and is found
/// inside words as a long cookie is.
#[tokio::test]
async fn a_bearer_token_quoted_inside_a_path_is_scrubbed() {
    const TOKEN: &str = "opaque-Tok3n_0123456789abcdefXYZ";
    let app = Router::new().route(
        "/api/data",
        get(|| async {
            let challenge = format!(
                "Bearer error=\"invalid_token\", error_description=\"/tokens/{TOKEN} revoked (tok_{TOKEN}); {TOKEN}\""
            );
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                "",
            )
        }),
    );
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    client_without_redirects()
        .get(format!("http://{addr}/api/data"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    let all = events(&memory, 1).await;
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("0123456789abcdef"), "{text}");
    assert_eq!(
        all[0]["error"]["description"], "/tokens/[redacted] revoked (tok_[redacted]); [redacted]",
        "{text}"
    );
}

/// A malformed credential made of word bytes only (`=` inside it, a `%`): one word, known by
/// its fingerprint, and still a secret when quoted inside a longer word.
#[tokio::test]
async fn a_malformed_credential_quoted_inside_a_path_is_scrubbed() {
    async fn quoting(headers: axum::http::HeaderMap) -> impl IntoResponse {
        let credential = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .map(|(_, c)| c.to_owned())
            .unwrap_or_default();
        let challenge = format!(
            "Bearer error=\"invalid_token\", error_description=\"/tokens/{credential} revoked (tok_{credential})\""
        );
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            "",
        )
    }
    let app = Router::new().route("/api/data", get(quoting));
    let (addr, memory) = serve_with_endpoints(app, Endpoints::builder().build().unwrap()).await;
    let credentials = [
        "Malformed=Inner0123456789abcdef",
        "Malformed%41Inner9876543210fedcba",
    ];
    for credential in credentials {
        client_without_redirects()
            .get(format!("http://{addr}/api/data"))
            .header(header::AUTHORIZATION, format!("Bearer {credential}"))
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, credentials.len()).await;
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["0123456789abcdef", "9876543210fedcba"] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
    for event in &all {
        assert_eq!(event["token"]["verdict"], "malformed", "{event}");
        assert_eq!(
            event["error"]["description"], "/tokens/[redacted] revoked (tok_[redacted])",
            "{event}"
        );
    }
}
