//! Route rules against spellings a lenient upstream reads differently: the real
//! `oauth-audit proxy` binary in front of a real HTTP server that decodes `%2F`, `%5C` and
//! nested escapes, cuts `;parameters`, ends paths at NUL, ignores case and honours method
//! overrides (`support/upstream.rs`). Requests are written byte for byte on a raw socket,
//! so no client library normalises them first.

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use support::upstream::Upstream;
use support::{wait_event, Proxy, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `METHOD TARGET HTTP/1.1` with `headers` as written; returns status and body.
async fn raw(addr: SocketAddr, method: &str, target: &str, headers: &[&str]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("content-length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("receive");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn start(upstream: &Upstream, dir: &TempDir, config: &str) -> Proxy {
    let out = dir.path("audit.jsonl");
    // An enforcing rule needs a key source; an empty key set verifies no token, as none of
    // these requests carries one.
    let jwks = dir.write("jwks.json", r#"{"keys":[]}"#);
    let config = dir.write(
        "proxy.toml",
        &format!(
            "{config}\n[jwt]\njwks_file = {:?}\n",
            jwks.to_str().unwrap()
        ),
    );
    Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    )
}

async fn event_at(dir: &TempDir, path: &str) -> Value {
    let path = path.to_owned();
    wait_event(
        &dir.path("audit.jsonl"),
        &format!("for {path}"),
        move |e: &Value| e["http"]["path"] == path.as_str(),
    )
    .await
}

const ADMIN_RULE: &str = r#"
[[route]]
path = "/admin/*"
scopes = ["admin"]
enforce = true
"#;

/// The spellings of the report, each of which the upstream serves as its admin handler.
const ADMIN_SPELLINGS: [&str; 7] = [
    "/admin;x=1/users",
    "/admin%2Fusers",
    "/admin%2fusers",
    "/admin%5Cusers",
    "/admin\\users",
    "/admin%00/users",
    "/%2561dmin/users",
];

#[tokio::test]
async fn spellings_the_upstream_reads_as_admin_never_reach_it_without_a_token() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-spellings");
    let proxy = start(&upstream, &dir, ADMIN_RULE);
    for path in ADMIN_SPELLINGS {
        // The upstream itself serves each one as the admin handler: the bypass is real.
        let (status, body) = raw(upstream.addr, "GET", path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.starts_with("served: GET /admin"), "{path}: {body}");

        let (status, body) = raw(proxy.addr, "GET", path, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(!body.contains("served"), "{path}: {body}");
        let event = event_at(&dir, path).await;
        assert_eq!(event["kind"], "AccessDenied", "{event}");
        assert_eq!(event["outcome"], "failure");
        assert_eq!(event["http"]["status"], 400);
        assert_eq!(event["error"]["code"], "ambiguous_path", "{event}");
        assert!(
            event["error"]["description"]
                .as_str()
                .unwrap()
                .contains("/admin/*"),
            "{event}"
        );
    }
    // Case: the rule matches `/ADMIN` too, and enforces it (no token: 401).
    for path in ["/ADMIN/users", "/Admin"] {
        let (status, body) = raw(proxy.addr, "GET", path, &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // Spellings every server reads alike pass to the upstream when no rule is at stake.
    let (status, body) = raw(proxy.addr, "GET", "/files/a%2Fb;v=1", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn dot_segments_a_router_leaves_unresolved_never_pass_a_rule_or_a_skipped_path() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-dots");
    let config = format!("[proxy]\nskip_paths = [\"/health\"]\n{ADMIN_RULE}");
    let proxy = start(&upstream, &dir, &config);
    for path in [
        "/admin/../public",
        "/admin/%2e%2e/public",
        "/admin/.%2E/public",
        "/admin%2F..;x=1",
        "/admin/x/../../health",
    ] {
        // The upstream matches its admin route on the path with the dot segments in place.
        let (status, body) = raw(upstream.addr, "GET", path, &[]).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.starts_with("served: GET /admin"), "{path}: {body}");

        let (status, body) = raw(proxy.addr, "GET", path, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        let event = event_at(&dir, path).await;
        assert_eq!(event["kind"], "AccessDenied", "{event}");
        assert_eq!(event["error"]["code"], "ambiguous_path", "{event}");
    }
    // A dot segment that keeps the path under the rule is enforced as such (no token: 401),
    // and one that leaves no rule at stake passes.
    let (status, _) = raw(proxy.addr, "GET", "/admin/./users", &[]).await;
    assert_eq!(status, 401);
    let (status, body) = raw(proxy.addr, "GET", "/files/../public", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    // The skipped path itself is still skipped.
    let (status, _) = raw(proxy.addr, "GET", "/health", &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn no_dot_segment_passes_under_an_upstream_base_path() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-base-path");
    let out = dir.path("audit.jsonl");
    let base = format!("{}/public-api", upstream.url());
    let proxy = Proxy::start(&["--upstream", &base, "--out", out.to_str().unwrap()], &[]);
    for path in [
        "/../admin/users",
        "/%2e%2e/admin/users",
        "/x/../../admin",
        "/a/..;/b",
    ] {
        let (status, body) = raw(proxy.addr, "GET", path, &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(!body.contains("served"), "{path}: {body}");
        let event = event_at(&dir, path).await;
        assert_eq!(event["error"]["code"], "ambiguous_path", "{event}");
    }
    let (status, body) = raw(proxy.addr, "GET", "/echo-me", &[]).await;
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[tokio::test]
async fn a_decoding_upstream_gets_its_reading_enforced() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-decode");
    let config =
        format!("[proxy]\nambiguous_paths = \"decode\"\npath_case = \"insensitive\"\n{ADMIN_RULE}");
    let proxy = start(&upstream, &dir, &config);
    for path in ADMIN_SPELLINGS.iter().chain(&["/ADMIN/users"]) {
        let (status, body) = raw(proxy.addr, "GET", path, &[]).await;
        assert_eq!(status, 401, "{path}: {body}");
        let event = event_at(&dir, path).await;
        assert_eq!(event["kind"], "AccessDenied");
        assert_eq!(event["scopes"]["required"], serde_json::json!(["admin"]));
    }
}

#[tokio::test]
async fn a_case_sensitive_upstream_can_say_so() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-case");
    let config = format!("[proxy]\npath_case = \"sensitive\"\n{ADMIN_RULE}");
    let proxy = start(&upstream, &dir, &config);
    let (status, _) = raw(proxy.addr, "GET", "/admin/users", &[]).await;
    assert_eq!(status, 401);
    // Declared case-sensitive, `/ADMIN` is another path; this upstream ignores case, so
    // it serves it: the switch does what it says, and docs/config.md says when not to use it.
    let (status, body) = raw(proxy.addr, "GET", "/ADMIN/users", &[]).await;
    assert_eq!((status, body.as_str()), (200, "served: GET /admin/users"));
}

#[tokio::test]
async fn method_case_and_method_overrides_cannot_pass_a_method_rule() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-methods");
    let proxy = start(
        &upstream,
        &dir,
        r#"
[[route]]
path = "/orders/*"
methods = ["DELETE"]
scopes = ["orders:delete"]
enforce = true
"#,
    );
    // The upstream takes every one of these as a DELETE.
    let overrides: [(&str, &str, &[&str]); 10] = [
        ("POST", "/orders/1", &["x-http-method-override: DELETE"]),
        ("POST", "/orders/2", &["x-http-method: delete"]),
        ("POST", "/orders/3", &["x-method-override: Delete"]),
        ("POST", "/orders/4?_method=DELETE", &[]),
        ("GET", "/orders/5?_method=delete", &[]),
        // As PHP renames the parameter: `.method` is `_method` to Laravel and Symfony.
        ("POST", "/orders/8?.method=DELETE", &[]),
        ("POST", "/orders/9?+.method=DELETE", &[]),
        // PHP ends a parameter's name at a NUL byte: `_method%00` is `_method`.
        ("POST", "/orders/12?_method%00=DELETE", &[]),
        // The method headers of forward-auth setups, which Authelia decides on.
        ("POST", "/orders/10", &["x-forwarded-method: DELETE"]),
        ("POST", "/orders/11", &["X-Original-Method: delete"]),
    ];
    for (method, target, headers) in overrides {
        let (status, body) = raw(upstream.addr, method, target, headers).await;
        assert_eq!(status, 200);
        assert!(body.starts_with("served: DELETE"), "{target}: {body}");

        let (status, body) = raw(proxy.addr, method, target, headers).await;
        assert_eq!(status, 400, "{target}: {body}");
        let path = target.split('?').next().unwrap();
        let event = event_at(&dir, path).await;
        assert_eq!(event["kind"], "AccessDenied", "{event}");
        assert_eq!(event["error"]["code"], "method_override", "{event}");
    }
    for (method, path) in [("delete", "/orders/6"), ("Delete", "/orders/7")] {
        let (status, body) = raw(upstream.addr, method, path, &[]).await;
        assert!(body.starts_with("served: DELETE"), "{status} {body}");
        let (status, body) = raw(proxy.addr, method, path, &[]).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
        let event = event_at(&dir, path).await;
        assert_eq!(event["kind"], "AccessDenied");
        assert_eq!(event["http"]["method"], method);
    }
    // A plain POST is not what the rule covers.
    let (status, body) = raw(proxy.addr, "POST", "/orders/8", &[]).await;
    assert_eq!((status, body.as_str()), (200, "served: POST /orders/8"));
}

#[tokio::test]
async fn only_the_configured_spelling_of_an_endpoint_is_exempt_from_rules() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-exempt");
    let proxy = start(
        &upstream,
        &dir,
        r#"
[endpoints]
token = ["/token"]

[[route]]
path = "/*"
scopes = ["api"]
enforce = true
"#,
    );
    let (status, _) = raw(proxy.addr, "POST", "/token", &[]).await;
    assert_eq!(status, 200, "the endpoint itself is exempt");
    let (status, _) = raw(proxy.addr, "POST", "/token/", &[]).await;
    assert_eq!(
        status, 200,
        "a spelling every server reads as /token is too"
    );
    for path in [
        "/Token",
        "/token;x",
        "/x%2F..%2Ftoken",
        "/token%2F..%2Fadmin",
    ] {
        let (status, body) = raw(proxy.addr, "POST", path, &[]).await;
        assert!(status == 401 || status == 400, "{path}: {status} {body}");
    }
    // The audit layer still records `/Token` as a token request, not an anonymous access.
    let event = event_at(&dir, "/Token").await;
    assert_ne!(event["kind"], "ResourceAccessed", "{event}");
}

/// Without `[endpoints]`, `/token`, `/revoke`, `/introspect` and `/authorize` are OAuth
/// endpoints only once their traffic speaks the protocol, which the proxy learns after the
/// upstream has answered: before, they are ordinary paths, and the rules judge them.
#[tokio::test]
async fn the_default_endpoint_paths_are_not_exempt_from_rules() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("route-default-endpoints");
    let proxy = start(
        &upstream,
        &dir,
        r#"
[[route]]
path = "/*"
scopes = ["api"]
enforce = true
"#,
    );
    for (method, path) in [
        ("GET", "/token"),
        ("POST", "/token"),
        ("GET", "/authorize"),
        ("POST", "/revoke"),
        ("POST", "/introspect"),
    ] {
        let (status, body) = raw(proxy.addr, method, path, &[]).await;
        assert_eq!(status, 401, "{method} {path}: {body}");
    }
}
