//! The real `oauth-audit proxy` binary in front of a real HTTP server: forwarding, streaming
//! both ways, header handling, upgrades, 502, graceful shutdown, and the events it writes.

mod support;

use std::path::Path;

use futures_util::StreamExt;
use serde_json::Value;
use support::upstream::Upstream;
use support::{
    at_path, http, proxy_flushing_at_shutdown, raw_answer, raw_head, read_events, wait_event,
    Proxy, TempDir, WAIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The proxy in front of `upstream`, writing its events to `out`, with the configuration
/// file `config` when given.
fn audit_proxy(upstream: &Upstream, out: &Path, config: Option<&Path>) -> Proxy {
    let (url, out) = (upstream.url(), out.to_str().unwrap());
    let mut args = vec!["--upstream", &url, "--out", out];
    if let Some(config) = config {
        args.extend(["--config", config.to_str().unwrap()]);
    }
    Proxy::start(&args, &[])
}

#[tokio::test]
async fn forwards_and_rewrites_headers_as_a_gateway() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("headers");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);

    let response = http()
        .post(proxy.url("/echo?x=1"))
        .header("connection", "x-hop")
        .header("x-hop", "only for the first hop")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-request-id", "req-42")
        .header("x-original-url", "/admin/users")
        .header("x-rewrite-url", "/admin/users")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("x-response-hop").is_none(),
        "response hop-by-hop field removed"
    );
    assert_eq!(response.headers()["x-end-to-end"], "kept");
    let seen: Value = response.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(seen["uri"], "/echo?x=1");
    assert_eq!(seen["body_len"], 5);
    assert!(
        h.get("x-hop").is_none(),
        "request field named in Connection removed: {h}"
    );
    assert!(h.get("connection").is_none_or(|c| c[0] != "x-hop"), "{h}");
    assert_eq!(
        h["x-forwarded-for"][0], "127.0.0.1",
        "an untrusted client's chain is replaced, not appended to"
    );
    assert!(
        h["forwarded"][0]
            .as_str()
            .unwrap()
            .starts_with("for=127.0.0.1;proto=http"),
        "{h}"
    );
    assert_eq!(h["via"][0], "1.1 oauth-audit");
    for name in ["x-original-url", "x-rewrite-url"] {
        assert!(h.get(name).is_none(), "path override {name} removed: {h}");
    }
    assert_eq!(
        h["host"][0],
        upstream.addr.to_string(),
        "Host is the upstream's by default"
    );
    assert_eq!(h["x-forwarded-host"][0], proxy.addr.to_string());
    assert_eq!(h["x-request-id"][0], "req-42");

    let event = wait_event(&out, "for /echo", at_path("/echo")).await;
    assert_eq!(event["kind"], "ResourceAccessed");
    assert_eq!(event["outcome"], "success");
    assert_eq!(event["http"]["status"], 200);
    assert_eq!(event["http"]["method"], "POST");
    assert_eq!(event["request_id"], "req-42");
    // The proxy trusts no one by default: the forwarded chain is recorded, not believed.
    assert_eq!(event["source"]["ip"], "127.0.0.1");
    assert_eq!(event["source"]["forwarded_for"][0], "203.0.113.9");
    assert!(
        event.to_string().find("x=1").is_none(),
        "no query string in events"
    );

    // Without an id of its own, the request reaches the upstream with the event's.
    let seen: Value = http()
        .get(proxy.url("/echo?second"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = seen["headers"]["x-request-id"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
    let wanted = id.clone();
    let event = wait_event(&out, "with the generated id", move |e: &Value| {
        e["request_id"] == wanted.as_str()
    })
    .await;
    assert_eq!(event["http"]["path"], "/echo");
}

#[tokio::test]
async fn trusted_proxies_from_flags_decide_the_source() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("trusted");
    let out = dir.path("audit.jsonl");
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--out",
            out.to_str().unwrap(),
            "--trusted-proxy",
            "127.0.0.0/8",
        ],
        &[],
    );
    let response = http()
        .get(proxy.url("/anything"))
        .header("x-forwarded-for", "198.51.100.20")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event = wait_event(&out, "for /anything", at_path("/anything")).await;
    assert_eq!(event["source"]["ip"], "198.51.100.20");
}

#[tokio::test]
async fn an_untrusted_client_cannot_write_forwarding_headers_upstream() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("front-door");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    let response = http()
        .get(proxy.url("/echo"))
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        // Tornado (`xheaders`) reads it before `X-Forwarded-Proto`; ingress-nginx writes it.
        .header("x-scheme", "https")
        .header("x-forwarded-port", "443")
        .header("x-forwarded-prefix", "/evil")
        .header("x-real-ip", "6.6.6.6")
        .header("cf-connecting-ip", "6.6.6.6")
        .header("true-client-ip", "6.6.6.6")
        // `HTTP_CLIENT_IP`, which the PHP address lookups copied everywhere read first.
        .header("client-ip", "6.6.6.6")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=6.6.6.6;host=evil.example;proto=https")
        // The same fields spelled with `_`, which CGI-style servers merge with the `-`
        // spelling, and overrides so spelled.
        .header("x_forwarded_for", "6.6.6.6")
        .header("X_Real_IP", "6.6.6.6")
        .header("x-forwarded_host", "evil.example")
        .header("x_http_method_override", "DELETE")
        .header("x_original_url", "/evil")
        .header("x_request_id", "evil-id")
        .header("x_revocation_reason", "evil-reason")
        // Other names with `_` are the client's business.
        .header("x_tenant", "acme")
        .send()
        .await
        .unwrap();
    let seen: Value = response.json().await.unwrap();
    let h = &seen["headers"];
    assert!(!h.to_string().contains("evil"), "{h}");
    assert!(!h.to_string().contains("6.6.6.6"), "{h}");
    assert!(!h.to_string().contains("DELETE"), "{h}");
    assert_eq!(h["x_tenant"][0], "acme");
    assert_eq!(h["x-forwarded-host"][0], proxy.addr.to_string());
    assert_eq!(h["x-forwarded-proto"][0], "http");
    assert!(h.get("x-scheme").is_none(), "{h}");
    assert_eq!(h["x-real-ip"][0], "127.0.0.1");
    assert_eq!(h["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(
        h["forwarded"][0],
        format!("for=127.0.0.1;proto=http;host=\"{}\"", proxy.addr)
    );
    // The event records what the client sent, without believing it.
    let event = wait_event(&out, "for /echo", at_path("/echo")).await;
    assert_eq!(event["source"]["ip"], "127.0.0.1");
    assert_eq!(event["source"]["forwarded_for"][0], "6.6.6.6");
    assert_eq!(
        event["source"]["forwarded_headers"]["x-forwarded-host"],
        "evil.example"
    );
}

/// Headers from which forward-auth services and rewriting servers take the path never reach
/// the upstream, whoever the peer: the upstream acts on the path the proxy audited.
#[tokio::test]
async fn path_override_headers_never_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("path-overrides");
    let out = dir.path("audit.jsonl");
    let untrusted = audit_proxy(&upstream, &out, None);
    let trusted = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--out",
            dir.path("trusted.jsonl").to_str().unwrap(),
            "--trusted-proxy",
            "127.0.0.0/8",
        ],
        &[],
    );
    let overrides = [
        "x-forwarded-uri",
        "x-original-uri",
        "x-forwarded-path",
        "x-envoy-original-path",
        // The mount point that WSGI "reverse proxied" middleware cuts from the path.
        "x-script-name",
        // As CGI-style servers read them, the same fields.
        "x_script_name",
        "x_forwarded_uri",
        "X_Original_URI",
        "x_forwarded_path",
        "x_envoy_original_path",
    ];
    for proxy in [&untrusted, &trusted] {
        let mut request = http()
            .get(proxy.url("/echo?x=1"))
            .header("x-forwarded-prefix", "/prefix");
        for name in overrides {
            request = request.header(name, "/admin/users?all=1");
        }
        let seen: Value = request.send().await.unwrap().json().await.unwrap();
        assert_eq!(seen["uri"], "/echo?x=1");
        let h = &seen["headers"];
        assert!(!h.to_string().contains("/admin"), "{h}");
        // The prefix is a forwarding header: believed from a trusted proxy only.
        let prefix = h.get("x-forwarded-prefix").map(|p| p[0].clone());
        let expected = std::ptr::eq(proxy, &trusted).then(|| Value::from("/prefix"));
        assert_eq!(prefix, expected, "{h}");
    }
}

/// `[proxy] request_id_from = "trusted_proxies"`: a client that is not a trusted proxy
/// cannot choose the id the event records and the upstream's logs receive.
#[tokio::test]
async fn an_untrusted_clients_request_id_is_replaced_when_so_configured() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("request-id-from");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        "[proxy]\nrequest_id_from = \"trusted_proxies\"\n",
    );
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    let response = http()
        .get(proxy.url("/echo"))
        .header("x-request-id", "chosen-by-the-client")
        .send()
        .await
        .unwrap();
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let seen: Value = response.json().await.unwrap();
    let upstream_saw = seen["headers"]["x-request-id"][0].as_str().unwrap();
    assert_eq!(upstream_saw.len(), 36, "a generated UUID: {upstream_saw}");
    assert_eq!(echoed, upstream_saw);
    assert!(!seen["headers"].to_string().contains("chosen-by-the-client"));
    let event = wait_event(&out, "for /echo", at_path("/echo")).await;
    assert_eq!(event["request_id"], upstream_saw);
}

#[tokio::test]
async fn upstream_connections_are_reused_and_closed_when_idle_as_configured() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("upstream-idle");
    let out = dir.path("audit.jsonl");
    let config = dir.write("proxy.toml", "[proxy]\nupstream_idle_timeout = \"300ms\"\n");
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    let connections = || {
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    // One after another, the requests share the proxy's connection to the upstream.
    for _ in 0..3 {
        let response = http().get(proxy.url("/echo")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    assert_eq!(connections(), 1);
    // Idle for longer than the timeout, it was closed: the next request opens another.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(connections(), 2);
}

#[tokio::test]
async fn only_allowed_hosts_are_answered() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("allowed-hosts");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        "[proxy]\nallowed_hosts = [\"auth.example\"]\n",
    );
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    // Any case, a trailing dot, any port: the same host.
    for host in ["auth.example", "AUTH.Example.:8443"] {
        let response = http()
            .get(proxy.url("/echo"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        let seen: Value = response.json().await.unwrap();
        assert_eq!(seen["headers"]["x-forwarded-host"][0], host);
    }
    let response = http()
        .get(proxy.url("/echo?evil"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 421);
    let event = wait_event(&out, "for the misdirected request", |e: &Value| {
        e["http"]["status"] == 421
    })
    .await;
    assert_eq!(event["error"]["code"], "misdirected_request");
    assert!(
        event["error"]["description"]
            .as_str()
            .unwrap()
            .contains("evil.example"),
        "{event}"
    );
    // An absolute-form target names the host the request is for (RFC 9112 §3.2.2),
    // whatever `Host` says: it must be allowed too. A request that names no host is refused.
    for (request, status) in [
        (
            "GET http://evil.example/echo HTTP/1.1\r\nHost: auth.example\r\nConnection: close\r\n\r\n",
            "421",
        ),
        (
            "GET http://auth.example/echo HTTP/1.1\r\nHost: auth.example\r\nConnection: close\r\n\r\n",
            "200",
        ),
        ("GET /echo HTTP/1.0\r\n\r\n", "421"),
        // User information before an allowed host: refused, in the field or the target.
        (
            "GET /echo HTTP/1.1\r\nHost: evil.example:x@auth.example\r\nConnection: close\r\n\r\n",
            "400",
        ),
        (
            "GET http://evil.example@auth.example/echo HTTP/1.1\r\nHost: auth.example\r\nConnection: close\r\n\r\n",
            "400",
        ),
        // Two Host fields: the upstream would get one while the proxy checked the other.
        (
            "GET /echo HTTP/1.1\r\nHost: auth.example\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
            "400",
        ),
    ] {
        let answer = raw_answer(proxy.addr, request.as_bytes()).await;
        assert!(answer.contains(&format!(" {status} ")), "{request:?}: {answer}");
    }
}

/// The user information a request is refused for may be a password (a client that put its
/// credentials in the URL): the event says the host had some, never what it was.
#[tokio::test]
async fn a_password_in_the_user_information_of_a_host_is_never_recorded() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("host-password");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);

    for (path, request) in [
        (
            "/target",
            "GET http://alice:target-secret@auth.example/target HTTP/1.1\r\nHost: auth.example\r\nConnection: close\r\n\r\n",
        ),
        (
            "/field",
            "GET /field HTTP/1.1\r\nHost: bob:field-secret@auth.example\r\nConnection: close\r\n\r\n",
        ),
    ] {
        let answer = raw_answer(proxy.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{request:?}: {answer}");
        let event = wait_event(&out, "for the refused request", at_path(path)).await;
        let description = event["error"]["description"].as_str().unwrap();
        assert!(
            description.contains("\"…@auth.example\""),
            "the host is shown, its user information hidden: {description}"
        );
    }
    let trail = std::fs::read_to_string(&out).unwrap();
    for secret in ["target-secret", "field-secret", "alice", "bob"] {
        assert!(!trail.contains(secret), "{secret} recorded: {trail}");
    }
}

/// A port is digits (RFC 9110 §4.2.1, RFC 3986 §3.2.3): `Host: auth.example:80,evil.example`
/// is no host[:port], and a server answers it `400` (RFC 9112 §3.2). Read with the text after
/// the colon as a port that is not one, it named `auth.example` and passed `allowed_hosts`,
/// while the upstream was told `X-Forwarded-Host: auth.example:80,evil.example`, of which
/// Rack (Rails) takes the last host of the list: `evil.example`, for its links and redirects.
#[tokio::test]
async fn a_host_whose_port_is_not_a_number_is_refused() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("host-port-not-a-number");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        "[proxy]\nallowed_hosts = [\"auth.example\"]\n",
    );
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    for (path, request) in [
        (
            "/field",
            "GET /field HTTP/1.1\r\nHost: auth.example:80,evil.example\r\nConnection: close\r\n\r\n",
        ),
        (
            "/target",
            "GET http://auth.example:x/target HTTP/1.1\r\nHost: auth.example\r\nConnection: close\r\n\r\n",
        ),
    ] {
        let answer = raw_answer(proxy.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{request:?}: {answer}");
        let event = wait_event(&out, "for the refused request", at_path(path)).await;
        assert_eq!(event["error"]["code"], "bad_request", "{event}");
    }
    // A port that is a number, or none after the colon (RFC 3986 allows an empty one), is
    // still a host[:port].
    for host in ["auth.example:8443", "auth.example:"] {
        let request = format!("GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let answer = raw_answer(proxy.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 200 "), "{host}: {answer}");
    }
}

/// An absolute-form target names the host the request is for, whatever `Host` says (RFC
/// 9112 §3.2.2: the `Host` field is ignored), and the layer reads it so (the `htu` of a DPoP
/// proof is checked against it): the upstream is told that host too, not the field's.
#[tokio::test]
async fn the_upstream_is_told_the_host_of_an_absolute_form_target() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("absolute-form-host");
    let out = dir.path("audit.jsonl");
    let config = dir.write("proxy.toml", "[proxy]\npreserve_host = true\n");
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    let answer = raw_answer(
        proxy.addr,
        b"GET http://auth.example/echo HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let seen: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{answer}"));
    let h = &seen["headers"];
    assert_eq!(h["host"], serde_json::json!(["auth.example"]), "{h}");
    assert_eq!(h["x-forwarded-host"][0], "auth.example", "{h}");
    assert!(
        h["forwarded"][0]
            .as_str()
            .unwrap()
            .ends_with("host=\"auth.example\""),
        "{h}"
    );
}

/// A transfer coding other than one `chunked` (`gzip, chunked`, `chunked, chunked`): the
/// proxy removes the framing and cannot undo the coding, so the upstream would get coded
/// bytes as the body, and the layer inspects them so. Refused `501` as nginx does (RFC 9112
/// §6.1), and recorded.
#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_refused() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("transfer-coding");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    for coding in ["gzip, chunked", "chunked, chunked"] {
        let request = format!(
            "POST /echo HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: {coding}\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        );
        let answer = raw_answer(proxy.addr, request.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 501 "), "{coding}: {answer}");
    }
    let event = wait_event(&out, "for the refused coding", |e: &Value| {
        e["http"]["status"] == 501
    })
    .await;
    assert_eq!(event["error"]["code"], "not_implemented", "{event}");
}

#[tokio::test]
async fn connect_is_refused_and_recorded_not_tunnelled() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("connect");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    // The connection is held open (`_stream`, not `_`) until the test ends.
    let (_stream, head) = raw_head(
        proxy.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 501"), "{head}");
    let event = wait_event(&out, "for the CONNECT", |e: &Value| {
        e["http"]["method"] == "CONNECT"
    })
    .await;
    assert_eq!(event["http"]["status"], 501);
    assert_eq!(event["outcome"], "failure");
    assert_eq!(event["error"]["code"], "not_implemented");
    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
}

#[tokio::test]
async fn a_trusted_front_proxy_keeps_its_headers_and_the_configured_one_decides() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("trusted-front");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        "[proxy]\ntrusted_proxies = [\"127.0.0.0/8\"]\nclient_ip_header = \"X-Real-IP\"\n",
    );
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    let response = http()
        .get(proxy.url("/echo"))
        .header("x-real-ip", "198.51.100.7")
        .header("x-forwarded-for", "6.6.6.6")
        .header("forwarded", "for=7.7.7.7")
        .header("x-forwarded-host", "idp.example")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let seen: Value = response.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(h["x-forwarded-for"][0], "6.6.6.6, 127.0.0.1", "{h}");
    assert!(h["forwarded"][0]
        .as_str()
        .unwrap()
        .starts_with("for=7.7.7.7, for=127.0.0.1"));
    assert_eq!(h["x-forwarded-host"][0], "idp.example");
    assert_eq!(h["x-forwarded-proto"][0], "https");
    assert_eq!(h["x-real-ip"][0], "198.51.100.7");
    let event = wait_event(&out, "for /echo", at_path("/echo")).await;
    assert_eq!(event["source"]["ip"], "198.51.100.7");
}

#[tokio::test]
async fn a_credential_named_in_connection_still_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("connection-credential");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    let token = unsigned_jwt(r#"{"sub":"alice","scope":"read"}"#);
    let response = http()
        .get(proxy.url("/echo"))
        .header("connection", "authorization, cookie, x-forwarded-for")
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", "session=1")
        .send()
        .await
        .unwrap();
    let seen: Value = response.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(h["authorization"][0], format!("Bearer {token}"), "{h}");
    assert_eq!(h["cookie"][0], "session=1");
    assert_eq!(h["x-forwarded-for"][0], "127.0.0.1");
    let event = wait_event(&out, "for /echo", at_path("/echo")).await;
    // The event records the token that reached the upstream (unverified: no key source).
    assert_eq!(event["token"]["unverified"]["subject"], "alice", "{event}");
}

/// A trusted front proxy passes the client certificate in the configured header, which the
/// event records; a client naming that header in `Connection` (which some front proxies pass
/// on) must not take it from the upstream's view of the request.
#[tokio::test]
async fn a_configured_header_named_in_connection_still_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("connection-configured");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        "[proxy]\ntrusted_proxies = [\"127.0.0.0/8\"]\nclient_ip_header = \"X-Client-Address\"\nclient_certificate_header = \"X-Client-Cert\"\n",
    );
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    let response = http()
        .get(proxy.url("/echo"))
        .header("connection", "x-client-cert, x-client-address")
        .header("x-client-cert", "-----BEGIN%20CERTIFICATE-----")
        .header("x-client-address", "198.51.100.7")
        .send()
        .await
        .unwrap();
    let seen: Value = response.json().await.unwrap();
    let h = &seen["headers"];
    assert_eq!(
        h["x-client-cert"][0], "-----BEGIN%20CERTIFICATE-----",
        "{h}"
    );
    assert_eq!(h["x-client-address"][0], "198.51.100.7", "{h}");
    let event = wait_event(&out, "for /echo", at_path("/echo")).await;
    assert_eq!(event["source"]["ip"], "198.51.100.7");
}

#[tokio::test]
async fn a_chunked_get_body_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let proxy = Proxy::start(&["--upstream", &upstream.url(), "--out", "-"], &[]);
    let chunks: Vec<Result<&'static [u8], std::io::Error>> =
        vec![Ok(b"hello "), Ok(b"chunked "), Ok(b"world")];
    // The client's hyper, like the proxy's, sends a GET body of unknown length only when
    // told it is chunked.
    let response = http()
        .get(proxy.url("/echo"))
        .header("transfer-encoding", "chunked")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["body_len"], 19, "{seen}");
    assert_eq!(seen["headers"]["transfer-encoding"][0], "chunked");
}

#[cfg(unix)]
#[tokio::test]
async fn the_out_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let upstream = Upstream::start().await;
    let dir = TempDir::new("out-mode");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    http().get(proxy.url("/x")).send().await.unwrap();
    wait_event(&out, "for /x", at_path("/x")).await;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}

#[tokio::test]
async fn a_long_response_streams_through_in_pieces() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("stream");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    let response = http().get(proxy.url("/stream")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut received = String::new();
    // The upstream holds back the second chunk until the first has reached the client: a
    // proxy that buffered the response would never deliver anything.
    for (expected, release) in [
        ("first\n", true),
        ("first\nsecond\n", true),
        ("first\nsecond\nthird\n", false),
    ] {
        while received.len() < expected.len() {
            let chunk = tokio::time::timeout(WAIT, body.next())
                .await
                .expect("the next chunk arrives")
                .expect("the body goes on")
                .unwrap();
            received.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        assert_eq!(received, expected);
        assert!(
            read_events(&out)
                .iter()
                .all(|e| e["http"]["path"] != "/stream"),
            "the event waits for the end of the body"
        );
        if release {
            upstream.release.add_permits(1);
        }
    }
    assert!(body.next().await.is_none());
    let event = wait_event(&out, "for /stream", at_path("/stream")).await;
    assert_eq!(event["outcome"], "success");
}

#[tokio::test]
async fn a_large_request_body_streams_to_the_upstream() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("upload");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    const HALF: usize = 4 * 1024 * 1024;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let request = tokio::spawn(
        http()
            .post(proxy.url("/upload"))
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    for _ in 0..HALF / 65536 {
        tx.send(Ok(vec![b'a'; 65536])).await.unwrap();
    }
    // The second half is sent only once the upstream has the first: a proxy that buffered
    // the request body would wait here forever.
    let mut uploaded = upstream.uploaded.clone();
    tokio::time::timeout(WAIT, uploaded.wait_for(|n| *n >= HALF))
        .await
        .expect("the first half reaches the upstream while the request is still being sent")
        .unwrap();
    for _ in 0..HALF / 65536 {
        tx.send(Ok(vec![b'b'; 65536])).await.unwrap();
    }
    drop(tx);
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["body_len"], 2 * HALF);
    wait_event(&out, "for /upload", at_path("/upload")).await;
}

#[tokio::test]
async fn websocket_upgrades_pass_through() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("upgrade");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    let (mut socket, head) = raw_head(
        proxy.addr,
        b"GET /ws HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [&b"ping"[..], b"and another message"] {
        socket.write_all(message).await.unwrap();
        let mut buf = vec![0u8; message.len()];
        tokio::time::timeout(WAIT, socket.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(buf, message);
    }
    let event = wait_event(&out, "for /ws", at_path("/ws")).await;
    assert_eq!(event["http"]["status"], 101);
}

/// An `h2c` tunnel would carry HTTP/2 streams to the upstream past every rule and every
/// event: only WebSocket upgrades are forwarded, and a `101` to anything else opens nothing.
#[tokio::test]
async fn upgrades_to_other_protocols_than_websocket_open_no_tunnel() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("upgrade-h2c");
    let out = dir.path("audit.jsonl");
    let proxy = audit_proxy(&upstream, &out, None);
    for (path, request) in [
        // The upgrade is not forwarded; the upstream switches anyway, unasked.
        (
            "/ws",
            "GET /ws HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
        ),
        // A WebSocket upgrade that the upstream answers with another protocol.
        (
            "/ws-h2c",
            "GET /ws-h2c HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        ),
    ] {
        let (_socket, head) = raw_head(proxy.addr, request.as_bytes()).await;
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 502"), "{path}: {head}");
        assert!(!head.contains("upgrade"), "{path}: {head}");
        let event = wait_event(&out, path, at_path(path)).await;
        assert_eq!(event["http"]["status"], 502, "{path}");
        assert_eq!(event["error"]["code"], "upstream_failed", "{path}");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_and_the_event_says_why() {
    let dead_url = format!("http://127.0.0.1:{}", support::ports::free_port());
    let dir = TempDir::new("502");
    let out = dir.path("audit.jsonl");
    // The request body is never read: only a configured (not assumed) /token is an endpoint
    // without protocol evidence.
    let config = dir.write("proxy.toml", "[endpoints]\ntoken = [\"/token\"]\n");
    let proxy = Proxy::start(
        &[
            "--upstream",
            &dead_url,
            "--out",
            out.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    let response = http().get(proxy.url("/api/orders")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let event = wait_event(&out, "for /api/orders", at_path("/api/orders")).await;
    assert_eq!(event["http"]["status"], 502);
    assert_eq!(event["outcome"], "failure");
    assert_eq!(event["error"]["code"], "upstream_unreachable");
    let description = event["error"]["description"].as_str().unwrap();
    assert!(description.contains(&dead_url), "{description}");

    // On an OAuth endpoint too.
    let response = http()
        .post(proxy.url("/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let event = wait_event(&out, "for /token", at_path("/token")).await;
    assert_eq!(event["kind"], "TokenRequestFailed");
    assert_eq!(event["error"]["code"], "upstream_unreachable");
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_flushes_the_writers() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("sigterm");
    let out = dir.path("audit.jsonl");
    // A writer that would not flush on its own for an hour: only shutdown writes the events.
    let proxy = proxy_flushing_at_shutdown(&upstream.url(), &dir, &out, &[]);
    for _ in 0..5 {
        assert_eq!(
            http()
                .get(proxy.url("/before"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let response = http().get(proxy.url("/stream")).send().await.unwrap();
    let mut body = response.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"first\n");

    proxy.send_signal("TERM");
    // Only once the proxy has stopped accepting does the upstream finish the response.
    let mut proxy = tokio::task::spawn_blocking(move || {
        proxy.wait_log("shutting down");
        proxy
    })
    .await
    .unwrap();
    upstream.release.add_permits(2);
    let mut rest = Vec::new();
    while let Some(chunk) = body.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"second\nthird\n", "the response in flight completes");
    let status = tokio::task::spawn_blocking(move || proxy.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let events = read_events(&out);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["http"]["path"] == "/before")
            .count(),
        5
    );
    let streamed = events
        .iter()
        .find(|e| e["http"]["path"] == "/stream")
        .expect("the streamed request's event");
    assert_eq!(streamed["outcome"], "success");
}

#[tokio::test]
async fn configured_writers_all_receive_the_events() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("writers");
    let rotating = dir.path("rotating");
    let plain = dir.path("plain.jsonl");
    let config = dir.write(
        "proxy.toml",
        &format!(
            r#"
service_instance = "sidecar-1"
[[writer]]
type = "jsonl"
path = {plain:?}
flush = "every_batch"
overflow = "block"
block_timeout = "30s"
queue_capacity = 1
[[writer]]
type = "rotating"
dir = {rotating:?}
prefix = "gateway"
rotation = "never"
max_bytes = 1048576
[[writer]]
type = "tracing"
"#,
            plain = plain.to_str().unwrap(),
            rotating = rotating.to_str().unwrap()
        ),
    );
    let mut proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        http()
            .get(proxy.url("/written"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let event = wait_event(&plain, "for /written", at_path("/written")).await;
    assert_eq!(event["service"]["instance"], "sidecar-1");
    let proxy = tokio::task::spawn_blocking(move || {
        proxy.wait_log("\"path\":\"/written\"");
        let status = proxy.terminate();
        assert_eq!(status.code(), Some(0));
    });
    proxy.await.unwrap();
    let rotated = read_events(&rotating.join("gateway.jsonl"));
    assert_eq!(rotated.len(), 1, "{rotated:?}");
    assert_eq!(
        rotated[0]["id"], event["id"],
        "every writer gets the same event"
    );
}

#[tokio::test]
async fn ctrl_c_flushes_the_writers_too() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("sigint");
    let out = dir.path("audit.jsonl");
    let mut proxy = proxy_flushing_at_shutdown(&upstream.url(), &dir, &out, &[]);
    assert_eq!(
        http()
            .get(proxy.url("/once"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status = tokio::task::spawn_blocking(move || proxy.signal("INT"))
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        read_events(&out)
            .iter()
            .filter(|e| e["http"]["path"] == "/once")
            .count(),
        1
    );
}

#[tokio::test]
async fn protected_route_rules_record_and_enforce_scopes() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("routes");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        r#"
service_name = "orders-gateway"
[[route]]
path = "/api/orders/{id}"
methods = ["GET"]
scopes = ["orders:read"]
"#,
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    // Without a key source tokens are decoded, not verified (verdict `unverified`).
    let token = unsigned_jwt(r#"{"sub":"alice","client_id":"web","scope":"orders:read profile"}"#);
    let response = http()
        .get(proxy.url("/api/orders/7"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event = wait_event(&out, "for /api/orders/7", at_path("/api/orders/7")).await;
    assert_eq!(event["service"]["name"], "orders-gateway");
    assert_eq!(
        event["scopes"]["required"],
        serde_json::json!(["orders:read"])
    );
    // Unverified claims grant nothing and name nobody: they are recorded apart.
    assert_eq!(event["scopes"]["used"], serde_json::json!([]));
    assert!(event["actor"].get("subject").is_none());
    assert_eq!(event["token"]["unverified"]["subject"], "alice");
    assert_eq!(event["token"]["verdict"], "unverified");
    assert!(
        !event.to_string().contains(&token),
        "the token never appears in an event"
    );

    // Enforcing needs a key source (without one the proxy refuses to start): an empty key
    // set verifies nothing, and an unverifiable token is refused before the upstream is asked.
    drop(proxy);
    let jwks = dir.write("jwks.json", r#"{"keys":[]}"#);
    let config = dir.write(
        "enforce.toml",
        &format!(
            "service_name = \"orders-gateway\"\n[jwt]\njwks_file = {:?}\n[[route]]\npath = \"/admin/*\"\nscopes = [\"admin\"]\nenforce = true\n",
            jwks.to_str().unwrap()
        ),
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let response = http()
        .get(proxy.url("/admin/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let event = wait_event(&out, "for /admin/users", at_path("/admin/users")).await;
    assert_eq!(event["kind"], "AccessDenied");
    assert_eq!(event["scopes"]["required"], serde_json::json!(["admin"]));
}

fn unsigned_jwt(claims: &str) -> String {
    use base64::Engine;
    let b64 = |s: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.as_bytes()),
        b64(b"not-a-signature")
    )
}

#[tokio::test]
async fn prometheus_metrics_count_the_audited_events() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("metrics");
    let out = dir.path("audit.jsonl");
    let metrics_addr = std::net::SocketAddr::from(([127, 0, 0, 1], support::ports::free_port()));
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--out",
            out.to_str().unwrap(),
            "--metrics-listen",
            &metrics_addr.to_string(),
        ],
        &[],
    );
    for _ in 0..3 {
        let response = http().get(proxy.url("/echo")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let wanted = r#"oauth_audit_events_total{kind="ResourceAccessed",outcome="success"} 3"#;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = http()
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let delivered = text
            .lines()
            .any(|l| l.starts_with("oauth_audit_delivery_seconds_count") && !l.ends_with(" 0"));
        if text.lines().any(|line| line == wanted) && delivered {
            assert!(text.contains("oauth_audit_queue_depth"), "{text}");
            // Every metric described, and delivery latencies in buckets from 50 µs.
            assert!(
                text.contains("# HELP oauth_audit_events_total Audit events emitted"),
                "{text}"
            );
            assert!(
                text.contains("# TYPE oauth_audit_delivery_seconds histogram"),
                "{text}"
            );
            assert!(
                text.lines()
                    .any(|l| l.starts_with("oauth_audit_delivery_seconds_bucket")
                        && l.contains("le=\"0.00005\"")),
                "{text}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `{wanted}` in the metrics:\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_enforcing_catch_all_rule_spares_oauth_endpoints_and_skipped_paths() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("exempt");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        r#"
[proxy]
skip_paths = ["/echo"]

[endpoints]
token = ["/token"]

[[route]]
path = "/*"
scopes = ["api"]
enforce = true
"#,
    );
    // An enforcing rule needs a key source: an empty key set, as no request carries a token.
    let jwks = dir.write("jwks.json", r#"{"keys":[]}"#);
    std::fs::write(
        &config,
        format!(
            "{}\n[jwt]\njwks_file = {:?}\n",
            std::fs::read_to_string(&config).unwrap(),
            jwks.to_str().unwrap()
        ),
    )
    .unwrap();
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    // `/token` is a configured OAuth endpoint: no bearer token to check, so the upstream
    // answers. (A default path is not exempt: `route_rules.rs` holds that.)
    let response = http()
        .post(proxy.url("/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_ne!(response.status(), 401, "the rule must not refuse /token");
    assert!(response.headers().get("www-authenticate").is_none());
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200, "skipped paths pass untouched");
    // Everything else is still enforced.
    let response = http().get(proxy.url("/other")).send().await.unwrap();
    assert_eq!(response.status(), 401);
}

/// Random opaque tokens cannot make the proxy an amplifier against the authorization
/// server: introspection is rate-limited per client and in total, and a lookup that is not
/// made (or not answered) is recorded as `unavailable`, never as `inactive`.
#[tokio::test]
async fn introspection_is_rate_limited_and_unanswered_lookups_are_unavailable() {
    // `/collect` is a real endpoint that keeps (counts) what is posted and answers `{}`.
    let upstream = Upstream::start().await;
    let dir = TempDir::new("introspection-limits");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "limits.toml",
        &format!(
            r#"
[introspection]
url = "{}/collect"
client_id = "proxy"
client_secret = "introspection-secret"
rate_per_client = "2/1h"
rate_total = "100/1h"
"#,
            upstream.url()
        ),
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    for i in 0..5 {
        let response = http()
            .get(proxy.url(&format!("/api/random/{i}")))
            .bearer_auth(format!("random-opaque-token-{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let mut verdicts = Vec::new();
    for i in 0..5 {
        let path = format!("/api/random/{i}");
        let event = wait_event(&out, &path, |e| e["http"]["path"] == path.as_str()).await;
        verdicts.push(event["token"]["verdict"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        verdicts,
        [
            "inactive",
            "inactive",
            "unavailable",
            "unavailable",
            "unavailable"
        ]
    );
    assert_eq!(
        upstream.collected.lock().unwrap().len(),
        2,
        "one call per admitted lookup, none over the limit"
    );
    drop(proxy);

    // An endpoint that cannot be reached says nothing about the token.
    let closed = std::net::SocketAddr::from(([127, 0, 0, 1], support::ports::free_port()));
    let out = dir.path("unreachable.jsonl");
    let config = dir.write(
        "unreachable.toml",
        &format!("[introspection]\nurl = \"http://{closed}/introspect\"\nclient_id = \"proxy\"\n"),
    );
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    let response = http()
        .get(proxy.url("/api/down"))
        .bearer_auth("some-opaque-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    let event = wait_event(&out, "with the endpoint down", at_path("/api/down")).await;
    assert_eq!(event["token"]["verdict"], "unavailable");
    assert_eq!(event["severity"], "warning");
    let all = std::fs::read_to_string(dir.path("audit.jsonl")).unwrap();
    assert!(!all.contains("random-opaque-token"));
    assert!(!all.contains("introspection-secret"));
}

#[test]
fn jwks_refresh_intervals_below_the_minimum_are_refused() {
    let dir = TempDir::new("refresh-minimum");
    for key in ["refresh_interval", "min_refresh_interval"] {
        let config = dir.write(
            &format!("{key}.toml"),
            &format!("[jwt]\njwks_url = \"http://127.0.0.1:9/jwks\"\n{key} = \"0s\"\n"),
        );
        let output = support::run(&["check-config", config.to_str().unwrap()], &[]);
        assert!(!output.status.success(), "{key} = \"0s\" accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("jwt.{key} must be at least 1s")),
            "{stderr}"
        );
        assert!(stderr.contains(":3:"), "points at the line: {stderr}");
    }
}

/// `[chain]` in the proxy's configuration: events are chained, a checkpoint signed by the
/// configured key seals them at shutdown, and a second start continues the same stream.
#[tokio::test]
async fn the_proxy_chains_its_events_and_continues_the_stream_after_a_restart() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("chain");
    let key = oauth_audit::chain::SigningKey::generate("proxy").unwrap();
    let key_file = dir.write("audit.key", &key.encode());
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "chain.toml",
        &format!(
            "[chain]\nkey_file = {:?}\nstate_file = {:?}\ncheckpoint_file = {:?}\n",
            key_file.to_str().unwrap(),
            dir.path("chain.state").to_str().unwrap(),
            dir.path("checkpoints.jsonl").to_str().unwrap()
        ),
    );
    for run in 0..2 {
        let mut proxy = Proxy::start(
            &[
                "--upstream",
                &upstream.url(),
                "--config",
                config.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[],
        );
        let path = format!("/run-{run}");
        http().get(proxy.url(&path)).send().await.unwrap();
        wait_event(&out, "for the request", |e: &Value| {
            e["http"]["path"] == path.as_str()
        })
        .await;
        assert!(proxy.terminate().success());
    }
    let events = read_events(&out);
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "ResourceAccessed",
            "AuditCheckpoint",
            "ResourceAccessed",
            "AuditCheckpoint"
        ]
    );
    let stream = &events[0]["chain"]["stream"];
    for (index, event) in events.iter().enumerate() {
        assert_eq!(
            &event["chain"]["stream"], stream,
            "one stream across the restart"
        );
        assert_eq!(event["chain"]["seq"], index as u64 + 1);
        if index > 0 {
            let previous = oauth_audit::event::EventHash::of_json(&events[index - 1]).unwrap();
            assert_eq!(event["chain"]["prev"], previous.to_string());
        }
    }
    let checkpoint = &events[3]["checkpoint"];
    oauth_audit::chain::CheckpointNote::open(
        checkpoint["note"].as_str().unwrap(),
        &[key.verifying_key()],
    )
    .unwrap();
    assert_eq!(read_events(&dir.path("checkpoints.jsonl")).len(), 2);
}

/// A token endpoint that compresses its answer whenever the client accepts `gzip`, as
/// compression middleware does for JSON (Express's `compression`, ASP.NET Core's, nginx's
/// `gzip_types application/json`); each request's `Accept-Encoding` is kept.
async fn compressing_token_endpoint() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::Write as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = asked.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let accepted = req
                        .headers()
                        .get(hyper::header::ACCEPT_ENCODING)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    seen.lock().unwrap().push(accepted.clone());
                    async move {
                        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                        let json = br#"{"access_token":"at-compressed-7f3a","token_type":"Bearer","expires_in":3600,"scope":"read"}"#;
                        let mut response = hyper::Response::builder()
                            .header("content-type", "application/json")
                            .header("cache-control", "no-store");
                        let body = if accepted.contains("gzip") {
                            response = response.header("content-encoding", "gzip");
                            let mut gz = flate2::write::GzEncoder::new(
                                Vec::new(),
                                flate2::Compression::default(),
                            );
                            gz.write_all(json).unwrap();
                            gz.finish().unwrap()
                        } else {
                            json.to_vec()
                        };
                        Ok::<_, std::convert::Infallible>(
                            response
                                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, asked)
}

/// The layer reads an endpoint's answer as it comes. A client that accepts `gzip` from an
/// upstream that compresses JSON had its token issued with no fingerprint, scope or expiry in
/// the event: endpoint requests go upstream with `Accept-Encoding: identity`, and only they.
#[tokio::test]
async fn a_token_answer_is_read_whatever_encoding_the_client_accepts() {
    let (addr, asked) = compressing_token_endpoint().await;
    let dir = TempDir::new("accept-encoding");
    let out = dir.path("audit.jsonl");
    let config = dir.write("proxy.toml", "[endpoints]\ntoken = [\"/oauth/token\"]\n");
    let upstream = format!("http://{addr}");
    let proxy = Proxy::start(
        &[
            "--upstream",
            &upstream,
            "--out",
            out.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    let response = http()
        .post(proxy.url("/oauth/token"))
        .header("accept-encoding", "gzip")
        .form(&[("grant_type", "client_credentials"), ("client_id", "c1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let event = wait_event(&out, "for the token request", at_path("/oauth/token")).await;
    assert_eq!(event["kind"], "AccessTokenIssued", "{event}");
    assert!(
        event["token"]["fingerprint"]
            .as_str()
            .is_some_and(|f| f.starts_with("sha256:")),
        "the issued token is in the event: {event}"
    );
    assert_eq!(event["scopes"]["granted"][0], "read", "{event}");
    // Any other path is left to the client's choice.
    let response = http()
        .get(proxy.url("/api/data"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(*asked.lock().unwrap(), ["identity", "gzip"]);
}

/// The revocation reason the event records is the one the upstream gets, whatever header the
/// operator reads it from: a client cannot name that header in `Connection` (or spell it with
/// `_`) to have the proxy strip it after the audit.
#[tokio::test]
async fn a_configured_revocation_reason_header_reaches_the_upstream() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("reason-header");
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        "[endpoints]\nrevocation = [\"/echo\"]\nrevocation_reason_header = \"x-reason\"\n",
    );
    let proxy = audit_proxy(&upstream, &out, Some(&config));
    let response = http()
        .post(proxy.url("/echo"))
        .header("connection", "x-reason")
        .header("x-reason", "key compromise")
        .form(&[("token", "t-1"), ("client_id", "c1")])
        .send()
        .await
        .unwrap();
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["x-reason"][0], "key compromise", "{seen}");
    let event = wait_event(&out, "for the revocation", at_path("/echo")).await;
    assert_eq!(event["oauth"]["reason"], "key compromise", "{event}");
}
