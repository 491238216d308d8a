//! The auditing reverse proxy, `oauth-audit proxy`: the binary an operator runs in front of an
//! authorization server or API that is not written in Rust, started here from a configuration
//! file as in production, in front of a small server with no audit code of its own.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use crate::dpop_key::DpopKey;

type Error = Box<dyn std::error::Error>;

const ISSUER: &str = "http://legacy.demo";
const AUDIENCE: &str = "legacy-api";
/// The `kid` of the upstream's signing key in its JWKS.
const KID: &str = "legacy-2026";
const CLIENT_ID: &str = "warehouse";
const CLIENT_SECRET: &str = "warehouse-secret";
/// The scopes the upstream grants `warehouse`, whatever it asks for.
const GRANTABLE: &[&str] = &["orders:read"];
/// How long the proxy may take to start, and to stop once asked to.
const WAIT: Duration = Duration::from_secs(60);

/// The `oauth-audit` binary: `given`, or the `cli` package of this workspace built by cargo
/// (`cargo build -p oauth-audit-cli`, in the profile this demo was built in). `None` when the
/// demo runs outside the workspace, where the CLI's sources are not at hand.
fn binary(given: Option<&Path>) -> Result<Option<PathBuf>, Error> {
    if let Some(path) = given {
        return Ok(Some(path.to_owned()));
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("cli/Cargo.toml");
    if !manifest.exists() {
        return Ok(None);
    }
    // `cargo run` names itself in CARGO; a demo started some other way uses the cargo that
    // built it.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    println!("- building the oauth-audit binary (cargo build -p oauth-audit-cli); the first time takes a few minutes");
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args([
            "--bin",
            "oauth-audit",
            "--message-format=json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!("cargo build -p oauth-audit-cli failed: {}", output.status).into());
    }
    // The built executable, from cargo's own account of what it built.
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "oauth-audit")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or("cargo built no oauth-audit executable")?;
    Ok(Some(executable))
}

/// What the upstream was asked, by path: what the proxy refused never reaches it.
#[derive(Default)]
struct Hits {
    token: AtomicUsize,
    orders: AtomicUsize,
    admin: AtomicUsize,
}

struct Upstream {
    key: DpopKey,
    hits: Hits,
}

/// Runs the proxy's part of the demo: events to `events`, the proxy being the binary `given`
/// or one cargo builds.
pub async fn run(events: &Path, given: Option<&Path>) -> Result<(), Error> {
    println!(
        "\nthe auditing reverse proxy, for servers that are not Rust (oauth-audit proxy --config oauth-audit.toml):"
    );
    let Some(binary) = binary(given)? else {
        println!("- left out: the oauth-audit CLI's sources (cli/) are not next to this demo");
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    // The upstream signs its access tokens with an ES256 key and publishes the public half
    // (here in a file; `jwt.jwks_url` fetches a JWKS over HTTPS).
    let upstream = Arc::new(Upstream {
        key: DpopKey::es256(),
        hits: Hits::default(),
    });
    let jwks = dir.path().join("jwks.json");
    let mut jwk = upstream.key.jwk.clone();
    jwk["kid"] = KID.into();
    jwk["alg"] = "ES256".into();
    jwk["use"] = "sig".into();
    std::fs::write(&jwks, json!({ "keys": [jwk] }).to_string())?;
    let upstream_addr = serve_upstream(upstream.clone()).await?;

    let config = dir.path().join("oauth-audit.toml");
    std::fs::write(&config, config_text(upstream_addr, &jwks, events))?;
    println!(
        "- upstream: an authorization server and API with no audit code, on http://{upstream_addr}"
    );
    let mut proxy = Proxy::start(&binary, &config).await?;
    println!(
        "- oauth-audit proxy on http://{} in front of it, with the rules of its configuration:\n{}",
        proxy.addr,
        config_rules()
    );
    let result = traffic(proxy.addr).await;
    proxy.stop().await?;
    let secrets = result?;
    println!(
        "- the upstream was asked {} token request(s), {} for /api/orders, {} for /api/admin: the proxy answered the refused ones itself",
        upstream.hits.token.load(Ordering::Relaxed),
        upstream.hits.orders.load(Ordering::Relaxed),
        upstream.hits.admin.load(Ordering::Relaxed),
    );
    summarize(events, &secrets)
}

/// The proxy's configuration: where to listen and forward, how to check tokens, which
/// routes need which scopes, where the events go.
fn config_text(upstream: SocketAddr, jwks: &Path, events: &Path) -> String {
    let path = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("a string");
    format!(
        r#"service_name = "demo"
service_instance = "proxy"

[proxy]
listen = "127.0.0.1:0"
upstream = "http://{upstream}"

[endpoints]
token = ["/token"]

[jwt]
jwks_file = {jwks}
issuers = ["{ISSUER}"]
audiences = ["{AUDIENCE}"]

{rules}

[[writer]]
type = "jsonl"
path = {events}
"#,
        jwks = path(jwks),
        events = path(events),
        rules = config_rules(),
    )
}

fn config_rules() -> &'static str {
    r#"  [[route]]
  path = "/api/orders"
  scopes = ["orders:read"]

  [[route]]
  path = "/api/admin/*"
  scopes = ["admin"]
  enforce = true"#
}

/// The requests a client sends through the proxy; returns what must never be in the trail.
async fn traffic(proxy: SocketAddr) -> Result<Vec<String>, Error> {
    let base = format!("http://{proxy}");
    let http = reqwest::Client::builder().no_proxy().build()?;
    let mut secrets = vec![CLIENT_SECRET.to_owned()];

    let token_request = |secret: &str| {
        http.post(format!("{base}/token"))
            .basic_auth(CLIENT_ID, Some(secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "orders:read admin"),
            ])
            .send()
    };
    let wrong = "warehouse-secret-2025";
    secrets.push(wrong.to_owned());
    let res = token_request(wrong).await?;
    step(
        "POST /token with last year's client secret",
        res.status(),
        "",
    );
    let res = token_request(CLIENT_SECRET).await?;
    let status = res.status();
    let answer: Value = res.json().await?;
    let token = answer["access_token"]
        .as_str()
        .ok_or_else(|| format!("no access token in {answer}"))?
        .to_owned();
    secrets.push(token.clone());
    step(
        "POST /token for scopes 'orders:read admin'",
        status,
        &format!("granted '{}'", answer["scope"].as_str().unwrap_or("")),
    );

    let get = |path: &str, token: &str| http.get(format!("{base}{path}")).bearer_auth(token).send();
    let res = get("/api/orders", &token).await?;
    step("GET /api/orders with that token", res.status(), "");
    let res = get("/api/admin/users", &token).await?;
    step(
        "GET /api/admin/users with it",
        res.status(),
        &challenge(&res),
    );
    let res = get("/api/%61dmin/users", &token).await?;
    step(
        "GET /api/%61dmin/users (the same path, one letter escaped)",
        res.status(),
        &challenge(&res),
    );
    // A token for `admin` the attacker signed with a key of their own, under the upstream's
    // key id.
    let forged = DpopKey::es256().sign_with_kid(&claims("orders:read admin"), KID);
    secrets.push(forged.clone());
    let res = get("/api/admin/users", &forged).await?;
    step(
        "GET /api/admin/users with a forged token for 'admin'",
        res.status(),
        &challenge(&res),
    );
    Ok(secrets)
}

fn step(what: &str, status: reqwest::StatusCode, more: &str) {
    let more = if more.is_empty() {
        String::new()
    } else {
        format!(", {more}")
    };
    println!("- {what}: {status}{more}");
}

/// The `error` of a `WWW-Authenticate` challenge (RFC 6750 §3).
fn challenge(res: &reqwest::Response) -> String {
    res.headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("error=\"").nth(1))
        .and_then(|rest| rest.split('"').next())
        .map(|error| format!("{error}, answered by the proxy"))
        .unwrap_or_default()
}

/// The claims of an access token of the upstream's issuer for `warehouse`.
fn claims(scope: &str) -> Value {
    let now = crate::auth_server::now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": CLIENT_ID,
        "client_id": CLIENT_ID,
        "scope": scope,
        "jti": uuid::Uuid::new_v4().to_string(),
        "iat": now,
        "exp": now + 300,
    })
}

/// The upstream: a token endpoint for one client and two API routes, none of which checks
/// anything of the token (it trusts whatever is in front, as such servers often do).
async fn serve_upstream(upstream: Arc<Upstream>) -> Result<SocketAddr, Error> {
    let app = Router::new()
        .route("/token", post(token))
        .route(
            "/api/orders",
            get(|State(up): State<Arc<Upstream>>| async move {
                up.hits.orders.fetch_add(1, Ordering::Relaxed);
                Json(json!([{ "id": 7, "item": "pallet" }]))
            }),
        )
        .route(
            "/api/admin/{*rest}",
            get(|State(up): State<Arc<Upstream>>| async move {
                up.hits.admin.fetch_add(1, Ordering::Relaxed);
                "admin area"
            }),
        )
        .with_state(upstream);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn token(
    State(up): State<Arc<Upstream>>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, Json<Value>) {
    up.hits.token.fetch_add(1, Ordering::Relaxed);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let authenticated = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == format!("Basic {basic}").as_bytes());
    if !authenticated {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "error": "invalid_client" })),
        );
    }
    let requested = form_urlencoded::parse(body.as_bytes())
        .find(|(name, _)| name == "scope")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let granted: Vec<&str> = requested
        .split(' ')
        .filter(|scope| GRANTABLE.contains(scope))
        .collect();
    let scope = granted.join(" ");
    let access_token = up.key.sign_with_kid(&claims(&scope), KID);
    (
        StatusCode::OK,
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": scope,
        })),
    )
}

/// A running `oauth-audit proxy`, killed if dropped before it was stopped.
struct Proxy {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
}

impl Proxy {
    /// Starts `binary proxy --config config` and waits for its "ready" line, which says
    /// where it listens.
    async fn start(binary: &Path, config: &Path) -> Result<Proxy, Error> {
        let mut command = Command::new(binary);
        command
            .arg("proxy")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The file says it all: no setting from this shell's environment.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("OAUTH_AUDIT_") {
                command.env_remove(key);
            }
        }
        command.env("OAUTH_AUDIT_LOG", "info");
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let stderr = child.stderr.take().ok_or("the proxy's stderr")?;
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match log.try_recv() {
                Ok(line) => {
                    let addr = line
                        .split_once("listen=")
                        .filter(|_| line.contains("proxy ready"))
                        .and_then(|(_, rest)| rest.split_whitespace().next())
                        .and_then(|addr| addr.parse().ok());
                    seen.push(line);
                    if let Some(addr) = addr {
                        return Ok(Proxy { child, addr, log });
                    }
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait()?;
                    return Err(format!(
                        "oauth-audit proxy did not start ({status}):\n{}",
                        seen.join("\n")
                    )
                    .into());
                }
            }
        }
    }

    /// Asks the proxy to stop, as systemd or Kubernetes would (SIGTERM): it finishes what is
    /// in flight and flushes its writers before it exits.
    async fn stop(&mut self) -> Result<(), Error> {
        #[cfg(unix)]
        {
            let kill = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()?;
            if !kill.success() {
                return Err(format!("kill -TERM {}: {kill}", self.child.id()).into());
            }
        }
        #[cfg(not(unix))]
        self.child.kill()?;
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() && cfg!(unix) {
                    let log: Vec<String> = self.log.try_iter().collect();
                    return Err(format!(
                        "oauth-audit proxy exited with {status}:\n{}",
                        log.join("\n")
                    )
                    .into());
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("oauth-audit proxy did not stop within a minute".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The proxy's events, as the demo's own were summarized, and proof that no secret of the
/// traffic reached them.
fn summarize(events: &Path, secrets: &[String]) -> Result<(), Error> {
    let text = std::fs::read_to_string(events)?;
    println!(
        "- {} events written by the proxy to {}:",
        text.lines().count(),
        events.display()
    );
    for line in text.lines() {
        let event: Value = serde_json::from_str(line)?;
        let http = &event["http"];
        let mut details = Vec::new();
        if let Some(client) = event["actor"]["client_id"].as_str() {
            details.push(format!("client {client}"));
        }
        for (field, name) in [("granted", "granted"), ("missing", "missing")] {
            if let Some(scopes) = event["scopes"][field].as_array().filter(|s| !s.is_empty()) {
                let scopes: Vec<&str> = scopes.iter().filter_map(Value::as_str).collect();
                details.push(format!("{name} {}", scopes.join(" ")));
            }
        }
        if let Some(verdict) = event["token"]["verdict"].as_str() {
            details.push(format!("token {verdict}"));
        }
        if let Some(code) = event["error"]["code"].as_str() {
            details.push(format!("error {code}"));
        }
        println!(
            "    {:<20} {:<8} {} {} -> {}  {}",
            event["kind"].as_str().unwrap_or("?"),
            event["outcome"].as_str().unwrap_or("?"),
            http["method"].as_str().unwrap_or("?"),
            http["path"].as_str().unwrap_or("?"),
            http["status"],
            details.join(", ")
        );
    }
    if let Some(secret) = secrets.iter().find(|s| text.contains(s.as_str())) {
        let shown: String = secret.chars().take(12).collect();
        return Err(format!("a secret of the traffic ({shown}...) is in the proxy's trail").into());
    }
    println!(
        "  no token or client secret of that traffic is in them: tokens appear as token.fingerprint only"
    );
    Ok(())
}
