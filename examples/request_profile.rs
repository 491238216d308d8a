//! Drives requests through one Axum app in process, on a current-thread runtime, so that an
//! instruction counter sees the whole cost of auditing: the layer on the request path and
//! the background serialisation and write, which runs between requests (each request gives
//! the runtime a turn, as a server does). `scripts/profile` runs it under callgrind; a run
//! that dropped an event fails.
//!
//! ```text
//! cargo run --release --example request_profile -- VARIANT REQUESTS DIR
//! ```
//!
//! Variants: `bare` (no layer), `audited` (the layer with a cached HS256 bearer token on a
//! protected route, JSON lines to a file), `audited_rs256` (the same with an RS256 token of
//! the size `scripts/bench` sends, 2048-bit key, `kid` in the header: the cache key and the
//! bearer check read every byte of a token, so their cost grows with it), `audited_chained`
//! (`audited` with the hash chain and a checkpoint signed every 1,000 events), `token_bare`
//! (a client-credentials token request, no layer), `token_audited` (the same through the
//! layer), `token_basic_bare` and `token_basic_audited` (the same request with the client
//! authenticated by HTTP Basic, the method RFC 6749 §2.3.1 has every server support, and
//! the two cookies a browser-facing server sets), `passthrough` (`bare` behind a layer that
//! only wraps the request and response bodies: what Axum's `Router::layer` costs any such
//! layer, the audit layer included), `browser_bare` and `browser_audited` (`bare` and
//! `audited` with what every request to a real server carries besides: the peer's address,
//! as `axum::serve` with `into_make_service_with_connect_info` gives it, and a browser's
//! `User-Agent`), `proxied_bare` and `proxied_audited` (the browser's request as a load
//! balancer passes it on: from the balancer's address, a trusted proxy of the layer's, with
//! the client's in `X-Forwarded-For` and the scheme in `X-Forwarded-Proto`),
//! `browser_cookie_bare` and `browser_cookie_audited` (the browser's request with the two
//! cookies of the `token_basic_*` variants: what a protected route's request with cookies
//! pays for keeping them until a challenge could quote them), `audited_cold` (`audited` with
//! a new HS256 token on every request and a verification cache of 16 tokens: every request
//! inspects its token afresh, as `audited_cold` in `scripts/bench` does with RS256; HS256
//! keeps the signature cheap, so what a new token costs besides it shows).
//!
//! `cpu ROUNDS REQUESTS DIR` measures instead the CPU time the process spends per request
//! (user and system, every thread, from `/proc/self/stat`), for `bare`, `audited` and the
//! two pairs of token variants in interleaved rounds, and prints the medians and what the
//! layer adds: the figure that does not depend on how the machine's cores are shared.

use std::path::PathBuf;

use axum::body::Body;
use axum::routing::{get, post};
use axum::Router;
use http::Request;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oauth_audit::chain::{Chaining, SigningKey};
use oauth_audit::token::TokenInspector;
use oauth_audit::writer::{Auditor, JsonLines};
use oauth_audit::{AuditLayer, RequiredScopes};
use tower::ServiceExt;

const SECRET: &[u8] = b"request-profile-secret-of-32-bytes!";

/// The `User-Agent` of the `browser_*` variants: a desktop Chrome's, 111 bytes.
const BROWSER: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

/// The two cookies of the `token_basic_*` and `browser_cookie_*` variants' requests.
const COOKIES: &str = "session=6f1c0a9e2b7d4e58a3c1f0b9d2e7a4c6; csrf=Qm9vdHN0cmFwLWNzcmYtdG9rZW4";

/// The load balancer of the `proxied_*` variants, and the client address it forwards.
const BALANCER: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
    40_112,
);
const FORWARDED_FOR: &str = "203.0.113.7";

/// The peer of the `browser_*` variants' requests.
const PEER: std::net::SocketAddr = std::net::SocketAddr::new(
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 7)),
    51_234,
);

fn claims() -> serde_json::Value {
    serde_json::json!({"iss": "https://issuer.profile", "aud": "profile-api",
        "sub": "user-1", "client_id": "profile-client", "scope": "orders:read profile",
        "jti": "jti-1", "iat": 1_700_000_000u64, "exp": 4_000_000_000u64})
}

/// The `n`th token of `audited_cold`: the profile's claims for another subject and `jti`.
fn cold_token(n: usize) -> String {
    let mut claims = claims();
    claims["sub"] = format!("user-{n}").into();
    claims["jti"] = format!("jti-{n}").into();
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

fn token() -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(SECRET),
    )
    .expect("sign")
}

/// An RS256 token and the PEM of its public key. The key comes from a seeded generator, so
/// that every run does the same work before its requests (the N and 2N runs of
/// `scripts/profile` subtract it away); it signs nothing but this profile's token.
fn rs256() -> (String, String) {
    use rand::SeedableRng;
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key =
        rsa::RsaPrivateKey::new(&mut rand::rngs::StdRng::seed_from_u64(18), 2048).expect("RSA key");
    let private = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("profile".into());
    let encoding = EncodingKey::from_rsa_pem(private.as_bytes()).expect("encoding key");
    (encode(&header, &claims(), &encoding).expect("sign"), public)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "audited".into());
    let requests: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/profile".into()));
    std::fs::create_dir_all(&dir).expect("dir");
    if variant == "cpu" {
        let rounds = requests;
        let requests: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(200_000);
        let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/profile".into()));
        std::fs::create_dir_all(&dir).expect("dir");
        cpu(rounds, requests, &dir);
        return;
    }
    one_run(&variant, requests, &dir);
}

/// How far the runtime's clock moves per request: the pace of a server taking 100,000
/// requests a second.
const PACE: std::time::Duration = std::time::Duration::from_micros(10);

/// Runs one variant on a runtime whose clock is paused and moved on by [`PACE`] after each
/// request. The audit writer's timers (it gathers events for 1 ms after a partial batch,
/// flushes after 10 ms without events) then fire after the same requests in every run, so
/// its batches, and what they cost per event, do not depend on how fast the machine (or
/// callgrind) runs: on the wall clock, batches under callgrind varied from run to run, and
/// the instructions per request with them, by several hundred.
fn one_run(variant: &str, requests: usize, dir: &std::path::Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    let profiled = runtime.block_on(set_up(variant, dir, requests));
    serve(&runtime, &profiled, requests);
    runtime.block_on(finish(profiled.auditor));
}

/// CPU time of the whole process so far (user and system, every thread, living or not),
/// in nanoseconds.
fn process_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat") + 2..]
        .split(' ')
        .collect();
    let ticks = |i: usize| fields[i].parse::<u64>().expect("ticks");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    const NS_PER_TICK: u64 = 10_000_000; // USER_HZ is 100 on Linux
    (ticks(11) + ticks(12)) * NS_PER_TICK
}

fn cpu(rounds: usize, requests: usize, dir: &std::path::Path) {
    let variants = [
        "bare",
        "audited",
        "token_bare",
        "token_audited",
        "token_basic_bare",
        "token_basic_audited",
    ];
    let mut per: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    // A first round warms up and is not counted.
    for round in 0..=rounds {
        for (i, variant) in variants.iter().enumerate() {
            let before = process_cpu_ns();
            one_run(variant, requests, dir);
            let ns = (process_cpu_ns() - before) as f64 / requests as f64;
            if round > 0 {
                per[i].push(ns);
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("| variant | CPU ns per request (median of {rounds}) | all rounds |");
    println!("| --- | ---: | --- |");
    let mut medians = Vec::new();
    for (variant, values) in variants.iter().zip(per.iter_mut()) {
        let all: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
        let m = median(values);
        medians.push(m);
        println!("| `{variant}` | {m:.0} | {} |", all.join(", "));
    }
    println!(
        "| `audited - bare` | {:.0} | |\n| `token_audited - token_bare` | {:.0} | |\n| `token_basic_audited - token_basic_bare` | {:.0} | |",
        medians[1] - medians[0],
        medians[3] - medians[2],
        medians[5] - medians[4]
    );
}

/// What one run serves its requests with.
struct Profiled {
    app: Router,
    auditor: Auditor,
    bearer: String,
    /// A bearer header per request, each with its own token (`audited_cold`); empty for the
    /// other variants, which send `bearer` every time.
    cold: Vec<String>,
    /// A token request (`token_*` variants) rather than a protected route's.
    token_request: bool,
    /// The token request's client authenticates by HTTP Basic, with cookies.
    basic: bool,
    /// The protected route's request comes from a peer address, with a browser's user agent.
    browser: bool,
    /// ... through a load balancer.
    proxied: bool,
    /// ... with two cookies.
    cookie: bool,
    /// Events each request makes: one through the audit layer, none without it (`*_bare`,
    /// `passthrough`).
    events_per_request: u64,
}

/// The requests, and nothing else: `scripts/profile` counts instructions only while this
/// function runs (callgrind's `--toggle-collect`), which leaves out the set-up. Its cost
/// varies from run to run (aws-lc seeds its random generator from CPU timing jitter when the
/// RS256 token is signed), and subtracting the N-request run from the 2N one did not cancel
/// that: `audited_rs256` moved by up to 1,000 instructions per request between runs. The
/// audit writer runs inside it too: it is a task of this runtime.
#[inline(never)]
fn serve(runtime: &tokio::runtime::Runtime, profiled: &Profiled, requests: usize) {
    runtime.block_on(send(profiled, requests));
}

async fn finish(auditor: Auditor) {
    let stats = auditor.stats();
    let dropped: u64 = stats.writers.iter().map(|w| w.dropped).sum();
    assert_eq!(
        dropped, 0,
        "events were dropped: the profile would leave their work out"
    );
    auditor.shutdown().await;
}

async fn set_up(variant: &str, dir: &std::path::Path, requests: usize) -> Profiled {
    let orders = Router::new().route(
        "/api/orders",
        get(|| async { "[{\"id\":1}]" }).route_layer(RequiredScopes::all(["orders:read"])),
    );
    let token_route = Router::new().route(
        "/token",
        post(|body: String| async move {
            let _ = body;
            axum::Json(
                serde_json::json!({"access_token": "opaque-token", "token_type": "Bearer",
                "expires_in": 3600, "scope": "orders:read"}),
            )
        }),
    );
    let out = dir.join(format!("audit-{variant}.jsonl"));
    let _ = std::fs::remove_file(&out);
    let mut auditor = Auditor::builder().service_name("profile");
    if variant == "audited_chained" {
        let key = SigningKey::generate("profile").expect("key");
        auditor = auditor.chain(Chaining::new().signing_key(key).checkpoint_every(1000));
    }
    let auditor = auditor
        .writer(JsonLines::file(&out).await.expect("audit file"))
        .build()
        .expect("auditor");
    let (bearer, inspector) = if variant == "audited_rs256" {
        let (token, public) = rs256();
        let inspector =
            TokenInspector::builder().rsa_pem(Algorithm::RS256, public.as_bytes(), Some("profile"));
        (token, inspector)
    } else {
        let inspector = TokenInspector::builder().hmac_secret(Algorithm::HS256, SECRET);
        (token(), inspector)
    };
    let (inspector, cold) = if variant == "audited_cold" {
        let tokens = (0..requests)
            .map(|i| format!("Bearer {}", cold_token(i)))
            .collect();
        (inspector.cache_capacity(16), tokens)
    } else {
        (inspector, Vec::new())
    };
    // The `proxied_*` variants' balancer; requests without a peer address (`audited`,
    // `token_*`) never consult the list.
    let layer = AuditLayer::builder(auditor.clone())
        .trusted_proxies(["10.0.0.0/8"])
        .token_inspector(
            inspector
                .issuer(["https://issuer.profile"])
                .audience(["profile-api"])
                .build()
                .expect("inspector"),
        )
        .build()
        .expect("layer");
    let (app, token_request) = match variant {
        "bare" | "browser_bare" | "browser_cookie_bare" | "proxied_bare" => (orders, false),
        "token_bare" | "token_basic_bare" => (token_route, true),
        "audited"
        | "audited_cold"
        | "audited_rs256"
        | "audited_chained"
        | "browser_audited"
        | "browser_cookie_audited"
        | "proxied_audited" => (orders.layer(layer), false),
        // What Axum adds for any layer that wraps both bodies, as the audit layer does: the
        // route's boxed service cloned per request, the future boxed, both bodies boxed.
        "passthrough" => {
            use http_body_util::BodyExt as _;
            let wrap = tower::ServiceBuilder::new()
                .map_request(|r: Request<Body>| r.map(|b| b.map_err(|e| e)))
                .map_response(|r: http::Response<Body>| r.map(|b| b.map_err(|e| e)));
            (orders.layer(wrap), false)
        }
        "token_audited" | "token_basic_audited" => (token_route.layer(layer), true),
        other => panic!("unknown variant {other}"),
    };
    // What `axum::serve` does once: turns every handler into its route with the state, so
    // that requests are not charged for the conversion (and its allocations) every time.
    let app = app.with_state::<()>(());
    Profiled {
        app,
        auditor,
        bearer: format!("Bearer {bearer}"),
        cold,
        token_request,
        basic: variant.starts_with("token_basic"),
        browser: variant.starts_with("browser") || variant.starts_with("proxied"),
        proxied: variant.starts_with("proxied"),
        cookie: variant.starts_with("browser_cookie"),
        events_per_request: u64::from(!variant.ends_with("bare") && variant != "passthrough"),
    }
}

async fn send(profiled: &Profiled, requests: usize) {
    let Profiled {
        app,
        auditor,
        bearer,
        cold,
        token_request,
        basic,
        browser,
        proxied,
        cookie,
        events_per_request,
    } = profiled;
    let (token_request, basic, browser) = (*token_request, *basic, *browser);
    for sent in 0..requests {
        let bearer = cold.get(sent).unwrap_or(bearer);
        let request = if basic {
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                // `svc-1:8yOJ1qQn3Vb0lF6X2nTz4u9KcR7mWp5e`
                .header(
                    "authorization",
                    "Basic c3ZjLTE6OHlPSjFxUW4zVmIwbEY2WDJuVHo0dTlLY1I3bVdwNWU=",
                )
                .header("cookie", COOKIES)
                .body(Body::from("grant_type=client_credentials&scope=orders%3Aread"))
        } else if token_request {
            Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(
                    "grant_type=client_credentials&client_id=svc-1&client_secret=s&scope=orders%3Aread",
                ))
        } else if *proxied {
            Request::get("/api/orders")
                .header("authorization", bearer.as_str())
                .header("user-agent", BROWSER)
                .header("x-forwarded-for", FORWARDED_FOR)
                .header("x-forwarded-proto", "https")
                .extension(axum::extract::ConnectInfo(BALANCER))
                .body(Body::empty())
        } else if browser {
            let request = Request::get("/api/orders")
                .header("authorization", bearer.as_str())
                .header("user-agent", BROWSER);
            if *cookie {
                request.header("cookie", COOKIES)
            } else {
                request
            }
            .extension(axum::extract::ConnectInfo(PEER))
            .body(Body::empty())
        } else {
            Request::get("/api/orders")
                .header("authorization", bearer.as_str())
                .body(Body::empty())
        }
        .expect("request");
        let response = app.clone().oneshot(request).await.expect("infallible");
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        // One turn for the runtime's other tasks, as a server gives between requests: the
        // audit writer runs on this thread and writes what the request queued. Without it
        // the writer ran only at shutdown, with every event of the run still queued (and
        // beyond the queue's 8,192 events, dropped).
        tokio::time::advance(PACE).await;
        tokio::task::yield_now().await;
    }
    // The writer's last batch, written here rather than at shutdown: whether it had come
    // round to it when the loop ended depended on the file writes in flight on the blocking
    // pool, and moved the count by a hundred events' serialisation from run to run.
    let written = |auditor: &Auditor| {
        auditor
            .stats()
            .writers
            .iter()
            .map(|w| w.written)
            .sum::<u64>()
    };
    while written(auditor) < requests as u64 * events_per_request {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}
