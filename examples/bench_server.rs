//! The server `scripts/bench` loads: one Axum app, in one of several variants.
//!
//! ```text
//! cargo run --release --example bench_server -- --variant audited --addr 127.0.0.1:8080 \
//!     --dir target/bench
//! ```
//!
//! Variants: `bare` (no middleware), `audited` (AuditLayer verifying an RS256 JWT, JSON lines
//! to a file), `audited_cold` (same, with a verification cache too small for the token set,
//! so every request verifies), `audited_detect` (`audited` with the default detection rules
//! in the pipeline), `trace_json` (tower-http TraceLayer, JSON tracing-subscriber
//! through a non-blocking file appender), `token_bare` / `token_audited` (a token endpoint
//! without / with the layer), `upstream` (the same route with no layer at all: the API that
//! `scripts/bench-proxy` puts the proxy and nginx in front of). With `--keygen`, writes the
//! key and `--tokens N` signed tokens
//! into `--dir` and exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::{get, post};
use axum::Router;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oauth_audit::token::TokenInspector;
use oauth_audit::writer::{Auditor, JsonLines};
use oauth_audit::{AuditLayer, RequiredScopes};
use pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};

struct Args {
    variant: String,
    addr: SocketAddr,
    dir: PathBuf,
    keygen: Option<usize>,
}

fn args() -> Args {
    let mut args = Args {
        variant: "bare".into(),
        addr: "127.0.0.1:8080".parse().expect("address"),
        dir: PathBuf::from("target/bench"),
        keygen: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--variant" => args.variant = value(),
            "--addr" => args.addr = value().parse().expect("--addr: an address"),
            "--dir" => args.dir = value().into(),
            "--keygen" => args.keygen = Some(value().parse().expect("--keygen: a count")),
            other => panic!("unknown argument {other}"),
        }
    }
    args
}

fn keygen(dir: &std::path::Path, count: usize) {
    std::fs::create_dir_all(dir).expect("bench dir");
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("RSA key");
    let private = key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string();
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    std::fs::write(dir.join("public.pem"), &public).expect("write key");
    let encoding = EncodingKey::from_rsa_pem(private.as_bytes()).expect("encoding key");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("bench".into());
    let tokens: Vec<String> = (0..count)
        .map(|i| {
            let claims = serde_json::json!({"iss": "https://issuer.bench", "aud": "bench-api",
                "sub": format!("user-{i}"), "client_id": "bench-client", "scope": "orders:read profile",
                "jti": format!("jti-{i}"), "iat": now, "exp": now + 86_400});
            encode(&header, &claims, &encoding).expect("sign")
        })
        .collect();
    std::fs::write(dir.join("tokens.txt"), tokens.join("\n") + "\n").expect("write tokens");
}

async fn token_endpoint(body: String) -> axum::Json<serde_json::Value> {
    let client = body
        .split('&')
        .find_map(|p| p.strip_prefix("client_id="))
        .unwrap_or("?");
    axum::Json(
        serde_json::json!({"access_token": format!("opaque-token-for-{client}"),
        "token_type": "Bearer", "expires_in": 3600, "scope": "orders:read"}),
    )
}

#[tokio::main]
async fn main() {
    let args = args();
    if let Some(count) = args.keygen {
        keygen(&args.dir, count);
        return;
    }
    let orders = || {
        Router::new().route(
            "/api/orders",
            get(|| async { "[{\"id\":1}]" }).route_layer(RequiredScopes::all(["orders:read"])),
        )
    };
    let token = || Router::new().route("/token", post(token_endpoint));
    let (dir, variant) = (args.dir.clone(), args.variant.clone());
    let audit = |cache: usize| async move {
        let out = dir.join(format!("audit-{variant}.jsonl"));
        let _ = std::fs::remove_file(&out);
        let mut auditor = Auditor::builder().service_name("bench");
        if variant == "audited_detect" {
            auditor = auditor.processor(oauth_audit::detect::Detector::default());
        }
        let auditor = auditor
            .writer(JsonLines::file(&out).await.expect("audit file"))
            .build()
            .expect("auditor");
        let public = std::fs::read(dir.join("public.pem")).expect("run with --keygen first");
        let inspector = TokenInspector::builder()
            .rsa_pem(Algorithm::RS256, &public, Some("bench"))
            .issuer(["https://issuer.bench"])
            .audience(["bench-api"])
            .cache_capacity(cache)
            .build()
            .expect("inspector");
        AuditLayer::builder(auditor)
            .token_inspector(inspector)
            .build()
            .expect("layer")
    };
    let app = match args.variant.as_str() {
        "bare" => orders(),
        "upstream" => Router::new().route("/api/orders", get(|| async { "[{\"id\":1}]" })),
        "audited" | "audited_detect" => orders().layer(audit(10_000).await),
        // Far fewer cache slots than distinct tokens: every request verifies a signature.
        "audited_cold" => orders().layer(audit(16).await),
        "trace_json" => {
            let file = tracing_appender::rolling::never(&args.dir, "trace-json.log");
            let (writer, guard) = tracing_appender::non_blocking(file);
            std::mem::forget(guard); // keep the writer thread for the life of the process
            tracing_subscriber::fmt()
                .json()
                .with_writer(writer)
                .with_max_level(tracing::Level::DEBUG)
                .init();
            orders().layer(tower_http::trace::TraceLayer::new_for_http())
        }
        "token_bare" => token(),
        "token_audited" => token().layer(audit(10_000).await),
        other => panic!("unknown variant {other}"),
    };
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .expect("bind");
    println!("ready {}", args.variant);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("serve");
}
