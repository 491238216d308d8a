//! Secrets sent in shapes the other secret tests do not try, quoted back by a server that
//! echoes what it read: none may reach an event, in any output format.

mod support;

use oauth_audit::format::EventFormat;
use oauth_audit::writer::MemoryWriter;
use oauth_audit::AuditLayer;
use serde_json::Value;
use support::{client_without_redirects, events, memory_auditor, post_form, serve};

/// The events as JSON lines, ECS and OCSF, one text.
fn outputs(memory: &MemoryWriter) -> String {
    let mut all = memory.json_lines();
    for format in [EventFormat::Ecs, EventFormat::Ocsf] {
        let mut lines = Vec::new();
        for event in memory.events() {
            format.write(&mut lines, &event).unwrap();
            lines.push(b'\n');
        }
        all.push_str(&String::from_utf8(lines).unwrap());
    }
    all
}

/// Each event's answer was recorded, scrubbed of what it quoted: `spelled[i]` (the secret as
/// the server wrote it) is not in event `i`'s description, nor in `out` (every output) when
/// given, and `[redacted]` stands in its place, so that the check is not vacuous.
fn assert_redacted(all: &[Value], out: Option<&str>, spelled: &[&str]) {
    for (event, spelled) in all.iter().zip(spelled) {
        let description = event["error"]["description"].as_str().unwrap_or_default();
        assert!(
            !description.contains(spelled),
            "{spelled} recorded: {event}"
        );
        assert!(
            out.is_none_or(|out| !out.contains(spelled)),
            "{spelled} recorded: {event}"
        );
        assert!(description.contains("[redacted]"), "{event}");
    }
}

async fn echo_app() -> (std::net::SocketAddr, MemoryWriter) {
    let (auditor, memory) = memory_auditor();
    let addr = serve(support::echo_server::router().layer(AuditLayer::new(auditor))).await;
    (addr, memory)
}

/// `curl -d '{"client_secret":...}'` sends JSON as `application/x-www-form-urlencoded`, and
/// a client that sets no `Content-Type` leaves the body's type to the server: read as a
/// form, such a body is one parameter name and no secret, while a server reading it as JSON
/// (or quoting it) has the client secret. The body was not read as the server read it: its
/// answer's free text is not recorded.
#[tokio::test]
async fn a_json_body_sent_as_a_form_or_untyped_leaves_the_answers_description_out() {
    let (addr, memory) = echo_app().await;
    let http = client_without_redirects();
    let cases = [
        (
            Some("application/x-www-form-urlencoded"),
            "JsonAsFormS3cret",
        ),
        (None, "UntypedJsonS3cret"),
        (Some("application/x-www-form-urlencoded"), "JsonArrayS3cret"),
    ];
    for (i, (content_type, secret)) in cases.iter().enumerate() {
        let body = if i == 2 {
            format!(r#" [{{"grant_type":"client_credentials","client_secret":"{secret}"}}]"#)
        } else {
            format!(
                r#"{{"grant_type":"client_credentials","client_id":"c","client_secret":"{secret}"}}"#
            )
        };
        let mut request = http.post(format!("http://{addr}/token")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", *content_type);
        }
        request.send().await.unwrap();
    }
    let all = events(&memory, cases.len()).await;
    let out = outputs(&memory);
    for (i, (_, secret)) in cases.iter().enumerate() {
        assert!(!out.contains(secret), "{secret} recorded: {}", all[i]);
        assert_eq!(all[i]["error"]["code"], "invalid_grant", "{}", all[i]);
        assert_eq!(
            all[i]["oauth"]["body_not_inspected"][0], "request_not_a_form",
            "{}",
            all[i]
        );
    }
}

/// A server that reads forms as CGI.pm, Django before 3.1.7 and Python before 3.9.2 do,
/// `;` separating parameters as `&` does, and quotes every parameter it read back.
async fn semicolon_echo(body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let text = String::from_utf8_lossy(&body).into_owned();
    let mut description = String::from("refused:");
    for part in text.split(['&', ';']) {
        for (name, value) in form_urlencoded::parse(part.as_bytes()) {
            description.push_str(&format!(" {name} was {value};"));
        }
    }
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"error": "invalid_grant", "error_description": description})),
    )
        .into_response()
}

/// `username=alice;password=hunt3r`: a server splitting forms on `;` reads a password, which
/// a reading that splits on `&` alone took for part of the username (recorded as the actor)
/// or of the client id, and a short one was not scrubbed from the answer either.
#[tokio::test]
async fn a_secret_after_a_semicolon_is_neither_recorded_nor_quoted() {
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new().route("/token", axum::routing::post(semicolon_echo));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let bodies = [
        (
            "grant_type=password&username=alice;password=hunt3r",
            "hunt3r",
        ),
        (
            "grant_type=client_credentials&client_id=app;client_secret=Sh0rt",
            "Sh0rt",
        ),
        (
            "grant_type=refresh_token&scope=read;refresh_token=rt9",
            "rt9",
        ),
    ];
    for (body, _) in bodies {
        post_form(addr, "/token", body.to_owned()).await;
    }
    let all = events(&memory, bodies.len()).await;
    let secrets: Vec<&str> = bodies.iter().map(|(_, secret)| *secret).collect();
    assert_redacted(&all, Some(&outputs(&memory)), &secrets);
}

/// A login page re-rendered with "wrong password", reporting an `ErrorInfo` that quotes
/// every field of the form it refused.
async fn login_quoting_the_form(form: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let quoted: Vec<String> = form_urlencoded::parse(&form)
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    let mut response = (axum::http::StatusCode::OK, "wrong password").into_response();
    let mut error = oauth_audit::event::ErrorInfo::new("reported");
    error.description = Some(format!("wrong password for {}", quoted.join(", ")));
    response.extensions_mut().insert(error);
    response
}

/// Login forms name their password field as their framework does: `j_password` (Java EE
/// form login), `pwd` (WordPress), `user[password]` (Devise), `Input.Password` (ASP.NET Core
/// Identity). A short password under such a name, quoted back, was no secret: only values
/// of 8 bytes or more of unknown names are scrubbed.
#[tokio::test]
async fn a_short_password_under_a_frameworks_field_name_is_scrubbed() {
    let app = axum::Router::new().route("/login", axum::routing::post(login_quoting_the_form));
    let endpoints = oauth_audit::oauth::Endpoints::builder()
        .login("/login")
        .username_field("j_username")
        .build()
        .unwrap();
    let (addr, memory) = support::serve_with_endpoints(app, endpoints).await;
    let forms = [
        ("j_username=alice&j_password=hunt3r", "hunt3r"),
        ("j_username=bob&pwd=pw4bob", "pw4bob"),
        ("j_username=carol&user%5Bpassword%5D=c4rol", "c4rol"),
        ("j_username=dan&Input.Password=d4nPw", "d4nPw"),
        ("j_username=erin&passwd=3rinP", "3rinP"),
    ];
    for (form, _) in forms {
        post_form(addr, "/login", form.to_owned()).await;
    }
    let all = events(&memory, forms.len()).await;
    let secrets: Vec<&str> = forms.iter().map(|(_, secret)| *secret).collect();
    assert_redacted(&all, Some(&outputs(&memory)), &secrets);
}

/// A protected route that refuses its request and quotes each parameter of its query, in a
/// challenge (a WebSocket endpoint reading its token from `?token=`, since browsers cannot
/// set headers there) or in an `ErrorInfo` (an OAuth client's callback that could not redeem
/// its `?code=`).
async fn quoting_the_query(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let quoted: Vec<String> = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .map(|(name, value)| format!("{name} {value}"))
        .collect();
    let quoted = quoted.join(", ");
    if uri.path() == "/callback" {
        let mut response = axum::http::StatusCode::BAD_REQUEST.into_response();
        let mut error = oauth_audit::event::ErrorInfo::new("redeem_failed");
        error.description = Some(format!("could not redeem {quoted}"));
        response.extensions_mut().insert(error);
        return response;
    }
    (
        axum::http::StatusCode::UNAUTHORIZED,
        [(
            axum::http::header::WWW_AUTHENTICATE,
            format!(r#"Bearer error="invalid_token", error_description="refused {quoted}""#),
        )],
    )
        .into_response()
}

/// A protected route's query is scrubbed from what its answer says only when it may name an
/// `access_token`: a token sent as `?token=`, an authorization code, a refresh token or a
/// client secret in the query of a route the layer does not take for an endpoint, quoted
/// back, was recorded.
#[tokio::test]
async fn secrets_in_a_protected_routes_query_quoted_back_are_scrubbed() {
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new()
        .route("/ws", axum::routing::get(quoting_the_query))
        .route("/callback", axum::routing::get(quoting_the_query));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let http = client_without_redirects();
    let requests = [
        (
            "/ws?token=OpaqueWsToken0123456789",
            "OpaqueWsToken0123456789",
        ),
        ("/ws?token=sh0rt", "sh0rt"),
        (
            "/ws?refresh_token=rt_0123456789abcdef&client_secret=Cl1entS3cret",
            "Cl1entS3cret",
        ),
        (
            "/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj",
            "SplxlOBeZQQYbYS6WxSbIA",
        ),
    ];
    for (path, _) in requests {
        http.get(format!("http://{addr}{path}"))
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, requests.len()).await;
    let out = outputs(&memory);
    let secrets: Vec<&str> = requests.iter().map(|(_, secret)| *secret).collect();
    assert_redacted(&all, Some(&out), &secrets);
    assert!(!out.contains("rt_0123456789abcdef"));
}

/// A server that describes its refusal with the request's parameters serialised as JSON
/// inside the text, as a debug mode dumps them: PHP's `json_encode` writes `/` as `\/` and
/// every character past ASCII as `\u00e4`, .NET's `System.Text.Json` writes `+`, `<`, `>`,
/// `&`, `'` and those characters as `\u002B`, `\u00E4`; every serialiser writes `"` as `\"`.
async fn json_dumping(
    axum::extract::Path(style): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let params: serde_json::Map<String, serde_json::Value> = form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
        .collect();
    let plain = serde_json::to_string(&params).unwrap();
    let dumped: String = if style == "php" {
        plain
            .replace('/', "\\/")
            .chars()
            .map(|c| match c.is_ascii() {
                true => c.to_string(),
                false => format!("\\u{:04x}", u32::from(c)),
            })
            .collect()
    } else {
        plain
            .chars()
            .map(|c| match c {
                '+' | '<' | '>' | '&' | '\'' => format!("\\u{:04X}", u32::from(c)),
                c if !c.is_ascii() => format!("\\u{:04X}", u32::from(c)),
                c => c.to_string(),
            })
            .collect()
    };
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("refused {dumped}"),
        })),
    )
        .into_response()
}

/// Secrets quoted back in their JSON-escaped spelling (`ab\/cd`, `p\u00e4ss`, `quo\"te`,
/// `a\u002Bb`) were not the raw, form- or percent-encoded forms scrubbed, and were recorded.
#[tokio::test]
async fn secrets_quoted_back_json_escaped_are_scrubbed() {
    let app = axum::Router::new().route("/{style}/token", axum::routing::post(json_dumping));
    let endpoints = oauth_audit::oauth::Endpoints::builder()
        .token("/php/token")
        .token("/dotnet/token")
        .build()
        .unwrap();
    let (addr, memory) = support::serve_with_endpoints(app, endpoints).await;
    // Each secret as sent (form-encoded), and as the server spells it.
    let cases = [
        (
            "php",
            "client_secret=Zm9v%2FYmFy%2Fc2Vj%2BcmV0",
            r"Zm9v\/YmFy\/c2Vj+cmV0",
        ),
        ("php", "password=p%C3%A4ssw%C3%B6rd", r"p\u00e4ssw\u00f6rd"),
        ("php", "password=quo%22te%22d", r#"quo\"te\"d"#),
        ("php", "code=ab%2Fcd", r"ab\/cd"),
        (
            "dotnet",
            "client_secret=Zm9v%2BYmFy%2Bc2Vj",
            r"Zm9v\u002BYmFy\u002Bc2Vj",
        ),
        (
            "dotnet",
            "password=p%C3%A4ssw%C3%B6rd",
            r"p\u00E4ssw\u00F6rd",
        ),
    ];
    for (style, secret, _) in cases {
        let form = format!("grant_type=password&username=alice&client_id=c&{secret}");
        post_form(addr, &format!("/{style}/token"), form).await;
    }
    let all = events(&memory, cases.len()).await;
    let spelled: Vec<&str> = cases.iter().map(|(_, _, spelled)| *spelled).collect();
    assert_redacted(&all, None, &spelled);
}

/// A protected route whose application reports an `ErrorInfo` dumping the request's
/// `Authorization` as JSON inside its text, PHP's way (`\/`) or .NET's (`\u002B`).
async fn dumping_the_authorization(headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let dumped = serde_json::json!({ "authorization": authorization })
        .to_string()
        .replace('/', "\\/")
        .replace('+', "\\u002B");
    let mut response = axum::http::StatusCode::FORBIDDEN.into_response();
    let mut error = oauth_audit::event::ErrorInfo::new("refused");
    error.description = Some(format!("refused {dumped}"));
    response.extensions_mut().insert(error);
    response
}

/// A bearer token or Basic password of Base64's alphabet, held by its fingerprint or digest
/// and matched as a word, was no longer one word once JSON-escaped (`Zm9v\/YmFy`), and was
/// recorded.
#[tokio::test]
async fn a_word_shaped_credential_quoted_json_escaped_is_scrubbed() {
    use base64::Engine;
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new().route("/api/data", axum::routing::get(dumping_the_authorization));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let http = client_without_redirects();
    let basic = base64::engine::general_purpose::STANDARD.encode("app:Pw/0123+4567/89ab");
    let credentials = [
        ("Bearer Zm9v/YmFy+c2VjcmV0/dG9rZW4=".to_owned(), "c2VjcmV0"),
        (format!("Basic {basic}"), "4567"),
    ];
    for (authorization, _) in &credentials {
        http.get(format!("http://{addr}/api/data"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, credentials.len()).await;
    let pieces: Vec<&str> = credentials.iter().map(|(_, piece)| *piece).collect();
    assert_redacted(&all, None, &pieces);
}

/// A token endpoint that refuses the client, quoting its Basic password as a server decoding
/// Basic credentials in ISO-8859-1 reads it (RFC 7617 §2.1: without a `charset`, servers such
/// as Tomcat's did).
async fn quoting_basic_in_latin1(
    headers: axum::http::HeaderMap,
    _form: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use base64::Engine;
    let decoded = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let latin1: String = decoded.iter().map(|&b| char::from(b)).collect();
    let password = latin1.split_once(':').map(|(_, p)| p).unwrap_or(&latin1);
    (
        axum::http::StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("wrong secret {password} for the client"),
        })),
    )
        .into_response()
}

/// A Basic password sent in ISO-8859-1 (`p\xe4ssw0rd`), quoted back as the server read it
/// (`pässw0rd`): only its lossy UTF-8 reading was held, as a form's value once was.
#[tokio::test]
async fn a_basic_password_in_latin1_quoted_as_the_server_read_it_is_scrubbed() {
    use base64::Engine;
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new().route("/token", axum::routing::post(quoting_basic_in_latin1));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let credentials: [&[u8]; 2] = [b"app:p\xe4ssw0rd", b"s\xe9cr\xe8t-without-an-id"];
    for credential in credentials {
        let basic = base64::engine::general_purpose::STANDARD.encode(credential);
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, credentials.len()).await;
    assert_redacted(&all, None, &["pässw0rd", "sécrèt-without-an-id"]);
}

/// A token endpoint whose error descriptions are HTML-escaped, as spring-security-oauth2's
/// serialiser escapes them (`HtmlUtils.htmlEscape`), quoting the password it refused.
async fn html_escaping(body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    let password = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "password")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let escaped = password
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": "invalid_grant",
            "error_description": format!("Bad credentials: {escaped}"),
        })),
    )
        .into_response()
}

/// A password with `&`, `'`, `<` or `"` quoted back HTML-escaped (`p&amp;ss&#39;w0rd`) was
/// none of the spellings scrubbed, and was recorded.
#[tokio::test]
async fn a_password_quoted_back_html_escaped_is_scrubbed() {
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new().route("/token", axum::routing::post(html_escaping));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let cases = [
        ("p%26ss%27w0rd", "p&amp;ss&#39;w0rd"),
        ("%3Cb%3Ef%22x", "&lt;b&gt;f&quot;x"),
    ];
    for (password, _) in cases {
        let form = format!("grant_type=password&username=alice&password={password}");
        post_form(addr, "/token", form).await;
    }
    let all = events(&memory, cases.len()).await;
    let spelled: Vec<&str> = cases.iter().map(|(_, spelled)| *spelled).collect();
    assert_redacted(&all, None, &spelled);
}

/// A token endpoint that refuses the request, quoting each cookie's value as a server reading
/// cookies in ISO-8859-1 reads it (Tomcat's and others' cookie parsers: each byte is the
/// character of the same code point), raw bytes and percent-escapes alike.
async fn quoting_cookies_in_latin1(
    headers: axum::http::HeaderMap,
    _form: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let latin1 = |bytes: &[u8]| bytes.iter().map(|&b| char::from(b)).collect::<String>();
    let mut values = Vec::new();
    for field in headers.get_all(axum::http::header::COOKIE) {
        for pair in field.as_bytes().split(|&b| b == b';') {
            if let Some(at) = pair.iter().position(|&b| b == b'=') {
                let value = pair[at + 1..].trim_ascii();
                let decoded: Vec<u8> = percent_encoding::percent_decode(value).collect();
                values.push(latin1(&decoded));
            }
        }
    }
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": "invalid_grant",
            "error_description": format!("unknown session {}", values.join(" and ")),
        })),
    )
        .into_response()
}

/// A cookie value sent in ISO-8859-1 (`sid=s\xe9ssion`, or `s%E9ssion` percent-encoded),
/// quoted back as the server read it (`séssion`): only its lossy UTF-8 reading (each such
/// byte a U+FFFD) was held, as a Basic password's once was.
#[tokio::test]
async fn a_cookie_in_latin1_quoted_as_the_server_read_it_is_scrubbed() {
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new().route("/token", axum::routing::post(quoting_cookies_in_latin1));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let cookies: [&[u8]; 3] = [
        b"lang=en; sid=s\xe9ssion-0123456789",
        b"sid=\"c\xf4okie!\"",
        b"sid=s%E9ssion-abcdef; lang=en",
    ];
    for cookie in cookies {
        client_without_redirects()
            .post(format!("http://{addr}/token"))
            .header(
                "cookie",
                axum::http::HeaderValue::from_bytes(cookie).unwrap(),
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&client_id=app")
            .send()
            .await
            .unwrap();
    }
    let all = events(&memory, cookies.len()).await;
    assert_redacted(
        &all,
        Some(&outputs(&memory)),
        &["ssion-0123456789", "c\u{f4}okie!", "ssion-abcdef"],
    );
}

/// The `redirect_uri` of a request as it was sent, percent-encoded, quoted back by a server
/// that refuses it: a token endpoint in its JSON error, an authorization endpoint in the
/// `error_description` of its redirect.
async fn quoting_the_redirect_uri(
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let sent = if uri.path() == "/authorize" {
        uri.query().unwrap_or_default().as_bytes().to_vec()
    } else {
        body.to_vec()
    };
    let sent = String::from_utf8(sent).unwrap();
    let redirect_uri = sent
        .split('&')
        .find_map(|pair| pair.strip_prefix("redirect_uri="))
        .unwrap_or_default();
    let description = format!("redirect_uri {redirect_uri} is not registered");
    if uri.path() == "/authorize" {
        let description: String = form_urlencoded::byte_serialize(description.as_bytes()).collect();
        return (
            axum::http::StatusCode::FOUND,
            [(
                axum::http::header::LOCATION,
                format!("http://app.test/cb?error=invalid_request&error_description={description}"),
            )],
        )
            .into_response();
    }
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": "invalid_grant",
            "error_description": description,
        })),
    )
        .into_response()
}

/// A redirect URI with a query of its own (`https://app.example/cb?code=…`, a secret-named
/// parameter in it) quoted back percent-encoded, as the request carried it: the query-string
/// rule sees no `?` in `%3F`, and `redirect_uri`'s value, public, was no secret, so the
/// secrets of its query were recorded.
#[tokio::test]
async fn secrets_in_a_redirect_uris_query_quoted_back_percent_encoded_are_scrubbed() {
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new()
        .route("/token", axum::routing::post(quoting_the_redirect_uri))
        .route("/authorize", axum::routing::get(quoting_the_redirect_uri));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let token_requests = [
        (
            "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fcode%3DRedirC0de",
            "RedirC0de",
        ),
        (
            "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Ftenant%3Dt1%26client_secret%3DSh0rt",
            "Sh0rt",
        ),
        (
            "redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Fsession%3DZm9v%252FYmFy%252Bc2Vj",
            "Zm9v%252FYmFy",
        ),
    ];
    for (redirect_uri, _) in token_requests {
        let form = format!(
            "grant_type=authorization_code&client_id=app&code=C0de-of-the-grant&{redirect_uri}"
        );
        post_form(addr, "/token", form).await;
    }
    let query = "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb%3Faccess_token%3DAuthzT0k";
    client_without_redirects()
        .get(format!("http://{addr}/authorize?{query}"))
        .send()
        .await
        .unwrap();
    let all = events(&memory, token_requests.len() + 1).await;
    let mut spelled: Vec<&str> = token_requests.iter().map(|(_, secret)| *secret).collect();
    spelled.push("AuthzT0k");
    assert_redacted(&all, Some(&outputs(&memory)), &spelled);
}

/// A token request whose body is XML sent as a form or untyped (a SOAP-era client, a
/// misconfigured one): read as a form, the body was one parameter's name and held no
/// secret, while a server reading it as XML (or quoting it) has the client secret. Like a
/// JSON body, it is not a form: its answer's free text is not recorded.
#[tokio::test]
async fn an_xml_body_sent_as_a_form_or_untyped_leaves_the_answers_description_out() {
    let (addr, memory) = echo_app().await;
    let http = client_without_redirects();
    let cases = [
        (
            "/token",
            Some("application/x-www-form-urlencoded"),
            "XmlAsFormS3cret",
        ),
        ("/token", None, "UntypedXmlS3cret"),
        (
            "/revoke",
            Some("application/x-www-form-urlencoded"),
            "XmlRevokeS3cret",
        ),
        ("/token", Some("application/xml"), "TypedXmlS3cret"),
        ("/token", Some("text/xml; charset=utf-8"), "TextXmlS3cret"),
    ];
    for (i, (path, content_type, secret)) in cases.iter().enumerate() {
        let body = if i == 1 {
            format!("\u{feff} \n<?xml version=\"1.0\"?><request><client_secret>{secret}</client_secret></request>")
        } else {
            format!(
                "<request><grant_type>client_credentials</grant_type><client_id>c</client_id><client_secret>{secret}</client_secret></request>"
            )
        };
        let mut request = http.post(format!("http://{addr}{path}")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", *content_type);
        }
        request.send().await.unwrap();
    }
    let all = events(&memory, cases.len()).await;
    let out = outputs(&memory);
    for (i, (_, _, secret)) in cases.iter().enumerate() {
        assert!(!out.contains(secret), "{secret} recorded: {}", all[i]);
        assert_eq!(
            all[i]["oauth"]["body_not_inspected"][0], "request_not_a_form",
            "{}",
            all[i]
        );
    }
}

/// The `redirect_uri` claim of the request object a request carries (`request`, RFC 9101),
/// quoted back by a server that refuses it, as written and percent-encoded: an authorization
/// endpoint in the `error_description` of its redirect, a pushed authorization request
/// endpoint in its JSON error.
async fn quoting_the_objects_redirect_uri(
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use base64::Engine;
    let sent = if uri.path() == "/authorize" {
        uri.query().unwrap_or_default().as_bytes().to_vec()
    } else {
        body.to_vec()
    };
    let object = form_urlencoded::parse(&sent)
        .find(|(name, _)| name == "request")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let payload = object.split('.').nth(1).unwrap_or_default();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap_or_default(),
    )
    .unwrap_or_default();
    let redirect_uri = claims["redirect_uri"].as_str().unwrap_or_default();
    let encoded: String = form_urlencoded::byte_serialize(redirect_uri.as_bytes()).collect();
    let description = format!("redirect_uri {encoded} is not registered");
    if uri.path() == "/authorize" {
        let description: String = form_urlencoded::byte_serialize(description.as_bytes()).collect();
        return (
            axum::http::StatusCode::FOUND,
            [(
                axum::http::header::LOCATION,
                format!("http://app.test/cb?error=invalid_request_object&error_description={description}"),
            )],
        )
            .into_response();
    }
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": "invalid_request_object",
            "error_description": description,
        })),
    )
        .into_response()
}

/// A request object's `redirect_uri` claim with a query of its own
/// (`https://app.example/cb?code=…`) quoted back percent-encoded: the claim, public as the
/// parameter is, was no secret, and the secrets of its query were recorded, where those of
/// a form's or a query's `redirect_uri` were not.
#[tokio::test]
async fn secrets_in_a_request_objects_redirect_uri_quoted_back_are_scrubbed() {
    use base64::Engine;
    let app = axum::Router::new()
        .route(
            "/authorize",
            axum::routing::get(quoting_the_objects_redirect_uri),
        )
        .route(
            "/par",
            axum::routing::post(quoting_the_objects_redirect_uri),
        );
    let endpoints = oauth_audit::oauth::Endpoints::builder()
        .authorization("/authorize")
        .pushed_authorization("/par")
        .build()
        .unwrap();
    let (addr, memory) = support::serve_with_endpoints(app, endpoints).await;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let object = |redirect_uri: &str| {
        let claims = serde_json::json!({
            "iss": "app",
            "client_id": "app",
            "response_type": "code",
            "redirect_uri": redirect_uri,
        });
        format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256"}"#),
            b64(&claims.to_string())
        )
    };
    let http = client_without_redirects();
    let authorize = object("https://app.example/cb?code=ObjC0de");
    http.get(format!(
        "http://{addr}/authorize?client_id=app&request={authorize}"
    ))
    .send()
    .await
    .unwrap();
    let pushed = object("https://app.example/cb?tenant=t1&access_token=ObjT0k");
    post_form(addr, "/par", format!("client_id=app&request={pushed}")).await;
    let all = events(&memory, 2).await;
    assert_redacted(&all, Some(&outputs(&memory)), &["ObjC0de", "ObjT0k"]);
}

/// The parameters of a URI's query as a server reads them: cut at `&` and `;`, each value
/// percent-decoded, and a value that is a URI (once decoded or twice) read in turn, at most
/// three URIs deep, each quoted as `name value`.
fn query_read_as_a_server_reads_it(uri: &str, depth: usize, quoted: &mut Vec<String>) {
    let Some((_, query)) = uri.split_once('?') else {
        return;
    };
    for part in query.split(['&', ';']) {
        for (name, value) in form_urlencoded::parse(part.as_bytes()) {
            quoted.push(format!("{name} {value}"));
            let mut value = value.into_owned();
            if !value.contains('?') {
                value = percent_encoding::percent_decode_str(&value)
                    .decode_utf8_lossy()
                    .into_owned();
            }
            if depth > 1 {
                query_read_as_a_server_reads_it(&value, depth - 1, quoted);
            }
        }
    }
}

/// A token endpoint that refuses the `redirect_uri` of its form, or of the request object
/// it carries, quoting each parameter of its query as it read them.
async fn quoting_the_redirect_uris_query(body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    use base64::Engine;
    let mut redirect_uri = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "redirect_uri")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if let Some((_, object)) = form_urlencoded::parse(&body).find(|(name, _)| name == "request") {
        let payload = object.split('.').nth(1).unwrap_or_default();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap_or_default(),
        )
        .unwrap_or_default();
        redirect_uri = claims["redirect_uri"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    let mut quoted = Vec::new();
    query_read_as_a_server_reads_it(&redirect_uri, 3, &mut quoted);
    (
        axum::http::StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": "invalid_grant",
            "error_description": format!("redirect_uri refused: {}", quoted.join(", ")),
        })),
    )
        .into_response()
}

/// A redirect URI whose query holds a secret after a `;` (`?scope=a;code=…`, which servers
/// cutting queries at `;` read as a parameter), or a URI of its own, percent-encoded once
/// or twice, whose query holds one (`?next=https%3A%2F%2Fb%2Fx%3Fcode%3D…`): neither was
/// looked for, and the secret, quoted back, was recorded.
#[tokio::test]
async fn secrets_after_a_semicolon_or_in_a_nested_uri_of_a_redirect_uri_are_scrubbed() {
    use base64::Engine;
    let (auditor, memory) = memory_auditor();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(quoting_the_redirect_uris_query),
    );
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let encoded = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let object = |redirect_uri: &str| {
        let claims = serde_json::json!({"client_id": "app", "redirect_uri": redirect_uri});
        format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256"}"#),
            b64(&claims.to_string())
        )
    };
    let once = format!(
        "https://app.example/cb?next={}",
        encoded("https://b.example/x?code=N3st1")
    );
    let twice = format!(
        "https://app.example/cb?resource={}",
        encoded(&encoded("https://b.example/x?code=Tw1ce"))
    );
    let in_a_claim = object("https://app.example/cb?scope=a;code=S3mi");
    let forms = [
        (format!("redirect_uri={}", encoded(&once)), "N3st1"),
        (format!("redirect_uri={}", encoded(&twice)), "Tw1ce"),
        (format!("request={in_a_claim}"), "S3mi"),
    ];
    for (form, _) in &forms {
        let form =
            format!("grant_type=authorization_code&client_id=app&code=C0de-of-the-grant&{form}");
        post_form(addr, "/token", form).await;
    }
    let all = events(&memory, forms.len()).await;
    let secrets: Vec<&str> = forms.iter().map(|(_, secret)| *secret).collect();
    assert_redacted(&all, Some(&outputs(&memory)), &secrets);
}

/// A token endpoint that reads a form in the charset its `Content-Type` names, as ASP.NET
/// Core does (OpenIddict: its form reader cuts the body at that charset's `&` and `=`), and
/// quotes the client secret it read.
async fn quoting_a_form_in_its_charset(
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let content_type = headers[axum::http::header::CONTENT_TYPE].to_str().unwrap();
    let text = if content_type.to_ascii_lowercase().contains("utf-16") {
        let units: Vec<u16> = body
            .chunks(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16(&units).unwrap()
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    let secret = form_urlencoded::parse(text.as_bytes())
        .find(|(name, _)| name == "client_secret")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    (
        axum::http::StatusCode::UNAUTHORIZED,
        axum::Json(serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("client c with secret {secret} is unknown"),
        })),
    )
        .into_response()
}

/// A form sent in UTF-16 (`charset=utf-16`): byte for byte it is one unknown name full of
/// NULs, no grant, no client and no secret, while a server honouring the charset reads
/// every parameter and quotes the client secret back. It is not read as the server read it:
/// not inspected, its answer's free text not recorded. The same form in UTF-8 still is.
#[tokio::test]
async fn a_form_in_a_charset_read_otherwise_is_not_inspected() {
    let (auditor, memory) = memory_auditor();
    let app =
        axum::Router::new().route("/token", axum::routing::post(quoting_a_form_in_its_charset));
    let addr = serve(app.layer(AuditLayer::new(auditor))).await;
    let http = client_without_redirects();
    let form =
        |secret: &str| format!("grant_type=client_credentials&client_id=c&client_secret={secret}");
    let utf16: Vec<u8> = form("Utf16S3cretValue")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    for (charset, body) in [
        ("utf-16", utf16),
        ("UTF-8", form("Utf8S3cretValue").into_bytes()),
    ] {
        let response = http
            .post(format!("http://{addr}/token"))
            .header(
                "content-type",
                format!("application/x-www-form-urlencoded; charset={charset}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let all = events(&memory, 2).await;
    let out = outputs(&memory);
    assert!(!out.contains("Utf16S3cretValue"), "recorded: {}", all[0]);
    assert_eq!(
        all[0]["oauth"]["body_not_inspected"][0], "request_not_a_form",
        "{}",
        all[0]
    );
    assert_ne!(all[0]["actor"]["kind"], "anonymous", "{}", all[0]);
    assert_eq!(all[1]["actor"]["client_id"], "c", "{}", all[1]);
    assert_redacted(&all[1..], Some(&out), &["Utf8S3cretValue"]);
}
