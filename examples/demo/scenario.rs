//! The scripted scenario: real HTTP requests that produce every kind of event.

use std::net::SocketAddr;

use oauth_audit::writer::AuditWriter;
use serde_json::Value;

use crate::auth_server::{self, Keys};
use crate::dpop_key::DpopKey;
use crate::stall::Stallable;

type Error = Box<dyn std::error::Error>;

/// The smart meter's client certificate (self-signed, `CN=client.example`), as the TLS
/// terminator in front passes it on: its DER in base64.
const METER_CERTIFICATE: &str = concat!(
    "MIIBiTCCAS+gAwIBAgIUCfICdZi1jpeh4ECkf/QuLTirwuswCgYIKoZIzj0EAwIwGTEXMBUGA1UEAwwOY2xp",
    "ZW50LmV4YW1wbGUwIBcNMjYxMjAyMTQxOTM0WhgPMjEyNjExMDgxNDE5MzRaMBkxFzAVBgNVBAMMDmNsaWVu",
    "dC5leGFtcGxlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEL7zIqvsJTZly1Cqg35tvyZIbFJbebgJPcHar",
    "YDUlmYJfL+VkuwEUvGrPwhY0CkP7vpyMa1pIOT4GO/Kzymu5IaNTMFEwHQYDVR0OBBYEFO4mNsp9dQWmWP1m",
    "5CdAKnLikBfEMB8GA1UdIwQYMBaAFO4mNsp9dQWmWP1m5CdAKnLikBfEMA8GA1UdEwEB/wQFMAMBAf8wCgYI",
    "KoZIzj0EAwIDSAAwRQIgGSCv3P2//kCyOzJ5ds6ROKw8BQ9RjcFDXROYoRgLkfgCIQCk/TTx6mPD3QtmSMTo",
    "Yk8JFAS01JYZ0JcwRuurarDL3w==",
);

pub async fn run<W: AuditWriter>(
    addr: SocketAddr,
    keys: &Keys,
    file: &Stallable<W>,
) -> Result<(), Error> {
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder().no_proxy().build()?;
    let step = |text: &str| println!("- {text}");

    let token_of = |res: Value| -> Result<String, Error> {
        res["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no access token in {res}").into())
    };
    let form = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let post_token = |body: String, basic: Option<(&str, &str)>| {
        let mut req = http
            .post(format!("{base}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        req.send()
    };

    step("client_credentials grant for 'reporting', then it reads /api/orders");
    let res = post_token(
        form(&[
            ("grant_type", "client_credentials"),
            ("scope", "orders:read"),
        ]),
        Some(("reporting", "reporting-secret")),
    )
    .await?;
    let reporting = token_of(res.json().await?)?;
    get_api(&http, &base, "/api/orders", Some(&reporting), 200).await?;

    step("password grant for alice (scope profile), through a proxy that adds X-Forwarded-For");
    let res = post_token(
        form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "profile"),
        ]),
        Some(("web", "web-secret")),
    )
    .await?;
    let alice = token_of(res.json().await?)?;
    expect(
        http.get(format!("{base}/api/me"))
            .bearer_auth(&alice)
            .header("x-forwarded-for", "203.0.113.10")
            .header("user-agent", "demo-browser/1.0")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .send()
            .await?,
        200,
    )?;

    step("alice reads /api/orders without orders:read (audit-only route: served, scope gap recorded)");
    get_api(&http, &base, "/api/orders", Some(&alice), 200).await?;

    step("alice calls /api/admin (enforcing route): 403 insufficient_scope");
    get_api(&http, &base, "/api/admin", Some(&alice), 403).await?;

    step("no token on /api/admin: 401");
    get_api(&http, &base, "/api/admin", None, 401).await?;

    step("an expired token (replayed from yesterday)");
    let expired = keys.access_token(
        "alice",
        "web",
        "profile admin",
        auth_server::now() - 86_400,
        300,
    );
    get_api(&http, &base, "/api/admin", Some(&expired), 401).await?;

    step("a forged token (signed with the wrong key) on an audit-only route");
    let forged = auth_server::sign(
        b"not-the-real-key-not-the-real-key",
        "root",
        "web",
        "admin",
        auth_server::now(),
        300,
    );
    get_api(&http, &base, "/api/me", Some(&forged), 200).await?;

    step("a malformed bearer token");
    expect(
        http.get(format!("{base}/api/me"))
            .header("authorization", "Bearer not a token")
            .send()
            .await?,
        200,
    )?;

    step("root gets an admin token and calls /api/admin");
    let res = post_token(
        form(&[
            ("grant_type", "password"),
            ("username", "root"),
            ("password", "correct horse battery staple"),
            ("scope", "admin"),
        ]),
        Some(("web", "web-secret")),
    )
    .await?;
    let root = token_of(res.json().await?)?;
    get_api(&http, &base, "/api/admin", Some(&root), 200).await?;

    step("a client with the wrong secret, and a password grant with the wrong password");
    expect(
        post_token(
            form(&[("grant_type", "client_credentials")]),
            Some(("reporting", "wrong-secret")),
        )
        .await?,
        401,
    )?;
    expect(
        post_token(
            form(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "guess"),
                ("scope", "profile"),
            ]),
            Some(("web", "web-secret")),
        )
        .await?,
        400,
    )?;

    step(
        "authorization code flow with PKCE: /authorize redirects with a code, /token exchanges it",
    );
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier))
    };
    let redirect = "https://app.demo/callback";
    let res = no_redirects
        .get(format!(
            "{base}/authorize?response_type=code&client_id=web&redirect_uri={}&scope=profile+orders%3Aread&state=xyz-state&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(redirect)
        ))
        .send()
        .await?;
    let location = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or("no redirect from /authorize")?
        .to_owned();
    let code = location
        .split_once("code=")
        .and_then(|(_, rest)| rest.split('&').next())
        .ok_or("no code in the redirect")?
        .to_owned();
    let res = post_token(
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ]),
        Some(("web", "web-secret")),
    )
    .await?;
    let issued: Value = res.json().await?;
    let alice_code = token_of(issued.clone())?;
    let refresh = issued["refresh_token"]
        .as_str()
        .ok_or("no refresh token")?
        .to_owned();

    step("refresh grant (the refresh token rotates), then a stolen copy of the old refresh token is replayed from another address (the detector's refresh_token_reuse)");
    expect(
        post_token(
            form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
            Some(("web", "web-secret")),
        )
        .await?,
        200,
    )?;
    expect(
        http.post(format!("{base}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", "203.0.113.77")
            .basic_auth("web", Some("web-secret"))
            .body(form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
            ]))
            .send()
            .await?,
        400,
    )?;

    step("authorization requests: a login page, and a redirect URI that is not registered");
    expect(
        no_redirects
            .get(format!(
                "{base}/authorize?response_type=code&client_id=web&redirect_uri={}&prompt=login",
                urlencode(redirect)
            ))
            .send()
            .await?,
        200,
    )?;
    expect(
        no_redirects
            .get(format!(
                "{base}/authorize?response_type=code&client_id=web&redirect_uri={}",
                urlencode("https://evil.example/steal")
            ))
            .send()
            .await?,
        400,
    )?;

    step("login form: a wrong password, then the right one");
    let login = |password: &'static str| {
        no_redirects
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("username", "alice"), ("password", password)]))
            .send()
    };
    expect(login("not-my-password").await?, 303)?;
    expect(login("wonderland").await?, 303)?;

    step("alice signs in from Lyon, and moments later from Sydney (geo enrichment places both; the detector's impossible_travel)");
    for address in ["203.0.113.10", "198.51.100.23"] {
        let res = no_redirects
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", address)
            .body(form(&[("username", "alice"), ("password", "wonderland")]))
            .send()
            .await?;
        expect(res, 303)?;
    }

    step("alice signs out (RP-Initiated Logout), and a logout to an address web never registered is refused");
    for (target, status) in [
        (auth_server::SIGNED_OUT, 303),
        ("https://evil.example/landing", 400),
    ] {
        let res = no_redirects
            .get(format!(
                "{base}/logout?client_id=web&post_logout_redirect_uri={}&state=bye",
                urlencode(target)
            ))
            .send()
            .await?;
        expect(res, status)?;
    }

    step("an attack: ten wrong passwords for bob from one address (the detector's brute_force)");
    for attempt in 0..10 {
        let guess = format!("guess-{attempt}");
        let res = no_redirects
            .post(format!("{base}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", "198.51.100.66")
            .body(form(&[("username", "bob"), ("password", &guess)]))
            .send()
            .await?;
        expect(res, 303)?;
    }

    step("introspection of an active token, revocation, introspection of the revoked token");
    let introspect = |token: String, secret: &'static str| {
        http.post(format!("{base}/introspect"))
            .basic_auth("reporting", Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("token", &token),
                ("token_type_hint", "access_token"),
            ]))
            .send()
    };
    expect(
        introspect(alice_code.clone(), "reporting-secret").await?,
        200,
    )?;
    let revoke = |token: String, secret: &'static str| {
        http.post(format!("{base}/revoke"))
            .basic_auth("web", Some(secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-revocation-reason", "user signed out")
            .body(form(&[
                ("token", &token),
                ("token_type_hint", "access_token"),
            ]))
            .send()
    };
    expect(revoke(alice_code.clone(), "web-secret").await?, 200)?;
    expect(
        introspect(alice_code.clone(), "reporting-secret").await?,
        200,
    )?;
    expect(revoke(alice_code.clone(), "not-the-secret").await?, 401)?;
    expect(introspect(alice_code.clone(), "not-the-secret").await?, 401)?;

    step("the revoked token comes back on /api/me: the trail remembers (verdict revoked)");
    get_api(&http, &base, "/api/me", Some(&alice_code), 200).await?;

    step("root asks /api/admin to be treated as DELETE (X-HTTP-Method-Override): 400, audited");
    expect(
        http.get(format!("{base}/api/admin"))
            .bearer_auth(&root)
            .header("x-http-method-override", "DELETE")
            .send()
            .await?,
        400,
    )?;

    step("the public client 'cli' gets alice a token bound to its DPoP key (token_type DPoP) and calls /api/me with a fresh proof");
    let key = DpopKey::es256();
    let token_url = format!("{base}/token");
    let res = http
        .post(&token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("dpop", key.proof("POST", &token_url, None))
        .body(form(&[
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", "alice"),
            ("password", "wonderland"),
            ("scope", "profile"),
        ]))
        .send()
        .await?;
    let issued: Value = res.json().await?;
    if issued["token_type"] != "DPoP" {
        return Err(format!("the token was not bound: {issued}").into());
    }
    let bound = token_of(issued)?;
    let me = format!("{base}/api/me");
    let proof = key.proof("GET", &me, Some(&bound));
    let with_proof = |proof: &str| {
        http.get(&me)
            .header("authorization", format!("DPoP {bound}"))
            .header("dpop", proof)
            .send()
    };
    expect(with_proof(&proof).await?, 200)?;
    step("an attacker who copied that request replays its proof, then sends the token as plain Bearer");
    expect(with_proof(&proof).await?, 200)?;
    get_api(&http, &base, "/api/me", Some(&bound), 200).await?;

    step("a pushed authorization request (PAR): web pushes alice's authorization request, then sends her to /authorize with only its request_uri (the two events join on its fingerprint)");
    let res = http
        .post(format!("{base}/par"))
        .basic_auth("web", Some("web-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", "profile"),
            ("state", "par-state"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]))
        .send()
        .await?;
    if res.status() != 201 {
        return Err(format!("/par answered {}", res.status()).into());
    }
    let pushed: Value = res.json().await?;
    let request_uri = pushed["request_uri"]
        .as_str()
        .ok_or("no request_uri from /par")?;
    expect(
        no_redirects
            .get(format!(
                "{base}/authorize?client_id=web&request_uri={}",
                urlencode(request_uri)
            ))
            .send()
            .await?,
        303,
    )?;

    step("the device flow: the 'tv' app gets a device code, polls three times before alice approves (one event for the three), she enters the code on her phone, and its next poll gets a token");
    let res = http
        .post(format!("{base}/device_authorization"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("client_id", "tv"),
            ("scope", "profile orders:read"),
        ]))
        .send()
        .await?;
    let device: Value = res.json().await?;
    let (device_code, user_code) =
        match (device["device_code"].as_str(), device["user_code"].as_str()) {
            (Some(device_code), Some(user_code)) => (device_code.to_owned(), user_code.to_owned()),
            _ => return Err(format!("no device code in {device}").into()),
        };
    let poll = || {
        post_token(
            form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device_code),
                ("client_id", "tv"),
            ]),
            None,
        )
    };
    for _ in 0..3 {
        expect(poll().await?, 400)?;
    }
    expect(
        http.post(format!("{base}/device"))
            .bearer_auth(&alice)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("user_code", &user_code)]))
            .send()
            .await?,
        200,
    )?;
    let tv = token_of(poll().await?.json().await?)?;
    get_api(&http, &base, "/api/orders", Some(&tv), 200).await?;

    step("OpenID Connect CIBA: a call centre's app asks alice's consent on her phone (login hint, binding message), polls before and after she approves");
    let res = http
        .post(format!("{base}/bc-authorize"))
        .basic_auth("desk", Some("desk-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("scope", "openid profile"),
            ("login_hint", "alice"),
            ("binding_message", "W4-K9"),
        ]))
        .send()
        .await?;
    let started: Value = res.json().await?;
    let auth_req_id = started["auth_req_id"]
        .as_str()
        .ok_or_else(|| format!("no auth_req_id in {started}"))?
        .to_owned();
    let poll_ciba = || {
        post_token(
            form(&[
                ("grant_type", "urn:openid:params:grant-type:ciba"),
                ("auth_req_id", &auth_req_id),
            ]),
            Some(("desk", "desk-secret")),
        )
    };
    expect(poll_ciba().await?, 400)?;
    expect(
        http.post(format!("{base}/bc-approve"))
            .bearer_auth(&alice)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[("binding_message", "W4-K9")]))
            .send()
            .await?,
        200,
    )?;
    token_of(poll_ciba().await?.json().await?)?;

    step("token exchange: the API gateway trades alice's token for one that names it as the actor (act), and reads /api/orders on her behalf");
    let res = post_token(
        form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", &alice),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("scope", "orders:read"),
        ]),
        Some(("gateway", "gateway-secret")),
    )
    .await?;
    let exchanged = token_of(res.json().await?)?;
    get_api(&http, &base, "/api/orders", Some(&exchanged), 200).await?;

    step("mutual TLS (RFC 8705): the 'meter' device authenticates with its client certificate (passed on by the TLS terminator in front), gets a token bound to it and reads /api/orders; the token copied and sent without the certificate is recorded as such");
    let with_certificate = |req: reqwest::RequestBuilder| {
        req.header(auth_server::CLIENT_CERT_HEADER, METER_CERTIFICATE)
    };
    let res = with_certificate(http.post(format!("{base}/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "meter"),
            ("scope", "orders:read"),
        ]))
        .send()
        .await?;
    let meter = token_of(res.json().await?)?;
    expect(
        with_certificate(http.get(format!("{base}/api/orders")))
            .bearer_auth(&meter)
            .send()
            .await?,
        200,
    )?;
    get_api(&http, &base, "/api/orders", Some(&meter), 200).await?;

    step("the audit file writer stalls while 600 requests arrive: the queue overflows");
    file.pause();
    for _ in 0..600 {
        get_api(&http, &base, "/api/orders", Some(&reporting), 200).await?;
    }
    file.resume();
    println!("  (the writer recovered; the gap is recorded as AuditEventsDropped)");
    Ok(())
}

/// The Prometheus exposition of `/metrics`.
pub async fn scrape_metrics(addr: SocketAddr) -> Result<String, Error> {
    println!("- a Prometheus scrape of /metrics");
    let http = reqwest::Client::builder().no_proxy().build()?;
    let res = http.get(format!("http://{addr}/metrics")).send().await?;
    if !res.status().is_success() {
        return Err(format!("/metrics answered {}", res.status()).into());
    }
    Ok(res.text().await?)
}

/// `GET base+path`, with a bearer token when given, expecting `status`.
async fn get_api(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    status: u16,
) -> Result<(), Error> {
    let mut req = http.get(format!("{base}{path}"));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    expect(req.send().await?, status)
}

fn expect(res: reqwest::Response, status: u16) -> Result<(), Error> {
    if res.status().as_u16() != status {
        return Err(format!(
            "{} answered {}, expected {status}",
            res.url().path(),
            res.status()
        )
        .into());
    }
    Ok(())
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
