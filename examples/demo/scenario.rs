//! The scripted scenario: real HTTP requests that produce every kind of event.

use std::net::SocketAddr;

use oauth_audit::writer::AuditWriter;
use serde_json::Value;

use crate::auth_server::{self, Keys};
use crate::stall::Stallable;

type Error = Box<dyn std::error::Error>;

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
    expect(
        http.get(format!("{base}/api/orders"))
            .bearer_auth(&reporting)
            .send()
            .await?,
        200,
    )?;

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
    expect(
        http.get(format!("{base}/api/orders"))
            .bearer_auth(&alice)
            .send()
            .await?,
        200,
    )?;

    step("alice calls /api/admin (enforcing route): 403 insufficient_scope");
    expect(
        http.get(format!("{base}/api/admin"))
            .bearer_auth(&alice)
            .send()
            .await?,
        403,
    )?;

    step("no token on /api/admin: 401");
    expect(http.get(format!("{base}/api/admin")).send().await?, 401)?;

    step("an expired token (replayed from yesterday)");
    let expired = keys.access_token(
        "alice",
        "web",
        "profile admin",
        auth_server::now() - 86_400,
        300,
    );
    expect(
        http.get(format!("{base}/api/admin"))
            .bearer_auth(&expired)
            .send()
            .await?,
        401,
    )?;

    step("a forged token (signed with the wrong key) on an audit-only route");
    let forged = auth_server::sign(
        b"not-the-real-key-not-the-real-key",
        "root",
        "web",
        "admin",
        auth_server::now(),
        300,
    );
    expect(
        http.get(format!("{base}/api/me"))
            .bearer_auth(&forged)
            .send()
            .await?,
        200,
    )?;

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
    expect(
        http.get(format!("{base}/api/admin"))
            .bearer_auth(&root)
            .send()
            .await?,
        200,
    )?;

    step("the audit file writer stalls while 600 requests arrive: the queue overflows");
    file.pause();
    for _ in 0..600 {
        expect(
            http.get(format!("{base}/api/orders"))
                .bearer_auth(&reporting)
                .send()
                .await?,
            200,
        )?;
    }
    file.resume();
    println!("  (the writer recovered; the gap is recorded as AuditEventsDropped)");
    Ok(())
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
