//! The oauth-audit demo: a small OAuth authorization server and a protected API behind the
//! audit layer, driven through a scripted scenario by a real HTTP client; then the auditing
//! reverse proxy, `oauth-audit proxy`, in front of a server with no audit code of its own.
//!
//! ```text
//! cargo run --example demo                      # run the scenario, write audit.jsonl
//! cargo run --example demo -- --out events.jsonl
//! cargo run --example demo -- --serve 127.0.0.1:8080   # keep serving for manual use
//! ```

mod auth_server;
#[path = "../../tests/support/dpop_key.rs"]
#[allow(dead_code)] // the demo signs with one kind of key
mod dpop_key;
#[path = "../../tests/support/geo_db.rs"]
mod geo_db;
mod proxy;
mod scenario;
mod stall;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use axum::{routing::get, Json, Router};
use metrics_exporter_prometheus::PrometheusBuilder;
use oauth_audit::chain::verify::{ProblemKind, Verifier};
use oauth_audit::chain::{Chaining, SigningKey};
use oauth_audit::detect::Detector;
use oauth_audit::format::EventFormat;
use oauth_audit::geo::GeoIp;
use oauth_audit::oauth::Endpoints;
use oauth_audit::report::{report_files, ReportOptions};
use oauth_audit::token::TokenInspector;
use oauth_audit::writer::{Auditor, JsonLines};
use oauth_audit::{AuditLayer, AuditedToken, RequiredScopes};

const USAGE: &str =
    "usage: demo [--out FILE] [--ecs FILE] [--ocsf FILE] [--serve ADDR] [--proxy-bin FILE]

  --out FILE     where to write the audit events as JSON lines (default: audit.jsonl)
  --ecs FILE     where to write them as ECS documents, one per line (docs/formats.md;
                 default: next to --out, audit.ecs.jsonl)
  --ocsf FILE    where to write them as OCSF events, one per line (default: audit.ocsf.jsonl)
  --serve ADDR   keep serving on ADDR (e.g. 127.0.0.1:8080) instead of running the scenario
  --proxy-bin FILE  the oauth-audit binary to run as the proxy (default: built from the
                 workspace's cli package with cargo); its events go next to --out, in
                 audit.proxy.jsonl";

struct Args {
    out: PathBuf,
    ecs: Option<PathBuf>,
    ocsf: Option<PathBuf>,
    serve: Option<SocketAddr>,
    proxy_bin: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        out: PathBuf::from("audit.jsonl"),
        ecs: None,
        ocsf: None,
        serve: None,
        proxy_bin: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--out" => args.out = it.next().ok_or("--out needs a file name")?.into(),
            "--ecs" => args.ecs = Some(it.next().ok_or("--ecs needs a file name")?.into()),
            "--ocsf" => args.ocsf = Some(it.next().ok_or("--ocsf needs a file name")?.into()),
            "--proxy-bin" => {
                args.proxy_bin = Some(it.next().ok_or("--proxy-bin needs a file name")?.into())
            }
            "--serve" => {
                let addr = it.next().ok_or("--serve needs an address")?;
                args.serve = Some(
                    addr.parse()
                        .map_err(|e| format!("--serve {addr}: not an address: {e}"))?,
                );
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    // The same events in the SIEMs' own vocabularies, next to the events, unless named.
    args.ecs
        .get_or_insert_with(|| args.out.with_extension("ecs.jsonl"));
    args.ocsf
        .get_or_insert_with(|| args.out.with_extension("ocsf.jsonl"));
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("demo: {msg}\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if msg.is_empty() { 0 } else { 2 });
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Start each run with empty files, so the summary describes this run only; but replace
    // only what an earlier run of the demo wrote, never a file of someone else's.
    let public_key = args.out.with_extension("pub");
    let proxy_events = args.out.with_extension("proxy.jsonl");
    let written = [
        Some(proxy_events.clone()),
        Some(args.out.clone()),
        args.ecs.clone(),
        args.ocsf.clone(),
        Some(args.out.with_extension("tampered.jsonl")),
        Some(public_key.clone()),
        Some(args.out.with_file_name("report.html")),
    ];
    for path in written.iter().flatten() {
        replace_own(path)?;
    }
    // Before the auditor is built: it registers its metrics with the recorder in place.
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(
                oauth_audit::metric::DELIVERY_SECONDS.name.into(),
            ),
            oauth_audit::metric::LATENCY_BUCKETS,
        )?
        .install_recorder()?;
    let file = stall::Stallable::new(JsonLines::file(&args.out).await?);
    // Its name is what its drop reports carry (`dropped.sink`), and `verify --sink` names.
    let sink = oauth_audit::writer::AuditWriter::name(&file).to_owned();
    // Tamper evidence: every event chained to the previous one, sealed by signed checkpoints.
    // A real deployment keeps the key in a file (`oauth-audit keygen`); the demo makes one
    // and leaves its public half next to the events, for `oauth-audit verify --key`.
    let chain_key = SigningKey::generate("demo")?;
    std::fs::write(&public_key, chain_key.verifying_key().encode() + "\n")?;
    // Where each address is: MaxMind DB files of the GeoLite2 City and ASN layout. A real
    // deployment points `[geoip]` at the files geoipupdate keeps current; the demo writes
    // small ones (documentation addresses in Lyon, Paris, Sydney...) with a real writer.
    let geo_dir = tempfile::tempdir()?;
    let (city_db, asn_db) = (
        geo_dir.path().join("city.mmdb"),
        geo_dir.path().join("asn.mmdb"),
    );
    geo_db::install(
        &city_db,
        &geo_db::city_database(&[
            geo_db::LYON,
            geo_db::PARIS,
            geo_db::SYDNEY,
            geo_db::NEW_YORK,
        ]),
    );
    geo_db::install(&asn_db, &geo_db::asn_database(&geo_db::NETWORKS));
    let geo = GeoIp::builder().city(&city_db).asn(&asn_db).build()?;
    let mut auditor = Auditor::builder()
        .service_name("demo")
        .service_instance("demo-1")
        // Small on purpose: the scenario overflows it once to show AuditEventsDropped.
        .queue_capacity(256)
        // Processors: every event passes each once, off the request path, before the writer.
        // Detection runs every rule on every event; its alerts pass the processors after it
        // (so they are labelled too) on their way to the writer.
        // Geo enrichment first, so that detection (impossible_travel) and every format see
        // source.geo and source.as.
        .processor(geo)
        .processor(Detector::default())
        .processor(|event: &mut oauth_audit::event::AuditEvent| {
            event.labels.insert("deployment".into(), "demo".into());
        })
        .chain(
            Chaining::new()
                .signing_key(chain_key.clone())
                .checkpoint_every(100),
        )
        .writer(file.clone());
    // The same events in the other output formats, each file a sink of its own.
    for (path, format) in [
        (&args.ecs, EventFormat::Ecs),
        (&args.ocsf, EventFormat::Ocsf),
    ] {
        if let Some(path) = path {
            auditor = auditor.writer(JsonLines::file(path).await?.format(format));
        }
    }
    let auditor = auditor.build()?;

    let keys = auth_server::Keys::generate();
    let inspector = TokenInspector::builder()
        .hmac_secret(oauth_audit::token::Algorithm::HS256, keys.secret())
        .issuer([auth_server::ISSUER])
        .audience([auth_server::AUDIENCE])
        .build()?;
    let layer = AuditLayer::builder(auditor.clone())
        .token_inspector(inspector)
        // The scenario plays a reverse proxy on loopback that forwards X-Forwarded-For.
        .trusted_proxies(["127.0.0.1", "::1"])
        // That proxy also terminates TLS, and passes on the client certificates it verified.
        .client_certificate_header(auth_server::CLIENT_CERT_HEADER)
        .skip_paths(["/health", "/metrics"])
        // /token, /revoke, /introspect, /authorize are the defaults; add the login form, the
        // end-session endpoint, pushed authorization requests, device authorization and CIBA.
        .endpoints(
            Endpoints::builder()
                .login("/login")
                .end_session("/logout")
                .pushed_authorization("/par")
                .device_authorization("/device_authorization")
                .backchannel_authentication("/bc-authorize")
                .build()?,
        )
        .build()?;

    let api = Router::new()
        .route("/api/me", get(me))
        .route(
            "/api/orders",
            get(orders).route_layer(RequiredScopes::all(["orders:read"])),
        )
        .route(
            "/api/admin",
            get(admin).route_layer(RequiredScopes::all(["admin"]).enforce()),
        )
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(move || async move { prometheus.render() }));
    let app = auth_server::router(keys.clone()).merge(api).layer(layer);

    let addr = args.serve.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });

    if args.serve.is_some() {
        println!(
            "serving on http://{addr}  (events to {})",
            args.out.display()
        );
        println!("try: curl -s -u reporting:reporting-secret -d grant_type=client_credentials -d scope=orders:read http://{addr}/token");
        println!("     curl -s http://{addr}/metrics");
        println!("Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
        server.abort();
        auditor.shutdown().await;
        return summarize(&args.out);
    }
    scenario::run(addr, &keys, &file).await?;
    // The resumed writer catches up on its queue before the shutdown's last words (the final
    // checkpoint) arrive, or they would find it full; then every event is written and
    // flushed before the metrics are read, so that their counters match the files.
    for _ in 0..500 {
        if auditor.stats().writers.iter().all(|w| w.queued == 0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    auditor.shutdown().await;
    let metrics = scenario::scrape_metrics(addr).await?;
    server.abort();
    summarize(&args.out)?;
    show_formats(&args);
    show_alerts(&args.out)?;
    verify_chain(&args.out, &public_key, &chain_key, &sink)?;
    write_report(&args.out)?;
    summarize_metrics(addr, &metrics);
    proxy::run(&proxy_events, args.proxy_bin.as_deref()).await
}

/// The report an auditor asks for, as one page next to the events (what `oauth-audit
/// report` writes), and a few of its numbers.
fn write_report(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let report = report_files(&[out.to_owned()], ReportOptions::default(), &mut |_| {})?;
    let page = out.with_file_name("report.html");
    std::fs::write(&page, report.to_html()?)?;
    let numbers: serde_json::Value = serde_json::from_str(&report.to_json())?;
    println!(
        "
the report, written to {} (oauth-audit report {} --out report.html):",
        page.display(),
        out.display()
    );
    let list = |value: &serde_json::Value| -> String {
        let names: Vec<&str> = value
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r["scope"].as_str()).collect())
            .unwrap_or_default();
        if names.is_empty() {
            "-".into()
        } else {
            names.join(" ")
        }
    };
    for client in numbers["scopes"]["clients"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let used: Vec<&str> = client["used"]
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r["scope"].as_str()).collect())
            .unwrap_or_default();
        let idle: Vec<&str> = client["granted"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r["scope"].as_str())
                    .filter(|scope| !used.contains(scope))
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "  client {:<12} granted {:<28} used {:<16} granted, not used yet: {}{}",
            client["client"].as_str().unwrap_or("?"),
            list(&client["granted"]),
            list(&client["used"]),
            if idle.is_empty() {
                "-".into()
            } else {
                idle.join(" ")
            },
            if client["younger_than_window"] == true {
                " (first seen today: too young for the 90-day unused-permission verdict)"
            } else {
                ""
            }
        );
    }
    let tokens = &numbers["tokens"];
    println!(
        "  tokens: {} issued with a fingerprint, {} never accepted at a protected route, {} accepted after revocation",
        tokens["issued_with_fingerprint"],
        tokens["never_used"],
        tokens["used_after_revocation_total"]
    );
    if let Some(top) = numbers["failures"]["failed_logins_by_ip"].get(0) {
        println!(
            "  failed logins: {} from {} ({} username(s) tried)",
            top["count"],
            top["ip"].as_str().unwrap_or("?"),
            top["subjects"]
        );
    }
    if let Some(integrity) = numbers.get("integrity") {
        println!(
            "  integrity: {}",
            integrity["summary"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// Checks the trail's hash chain and checkpoints (what `oauth-audit verify` runs), then does
/// the same on a copy in which one event was edited, to show what the check finds.
fn verify_chain(
    out: &std::path::Path,
    public_key: &std::path::Path,
    key: &SigningKey,
    sink: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let keys = vec![key.verifying_key()];
    // The sink named, its signed drop reports account for the events it lost.
    let report = Verifier::new(keys.clone())
        .sink(sink)
        .verify_files(&[out.to_owned()], None)?;
    println!(
        "\nthe chain, verified (oauth-audit verify --key {} --sink '{sink}' {}):",
        public_key.display(),
        out.display()
    );
    for line in report.to_string().lines() {
        println!("  {line}");
    }
    if !report.is_clean() {
        return Err("the demo's own trail does not verify".into());
    }

    // Someone with write access to the file turns alice's forbidden admin call into a success.
    let text = std::fs::read_to_string(out)?;
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let target = lines
        .iter()
        .position(|line| line.contains("\"kind\":\"AccessDenied\""))
        .ok_or("no AccessDenied event to edit")?;
    let mut event: serde_json::Value = serde_json::from_str(&lines[target])?;
    event["kind"] = "ResourceAccessed".into();
    event["outcome"] = "success".into();
    lines[target] = serde_json::to_string(&event)?;
    let tampered = out.with_extension("tampered.jsonl");
    std::fs::write(&tampered, lines.join("\n") + "\n")?;
    let report = Verifier::new(keys)
        .sink(sink)
        .verify_files(std::slice::from_ref(&tampered), None)?;
    println!(
        "\nthe same trail with line {} edited (an AccessDenied turned into a success), in {}:",
        target + 1,
        tampered.display()
    );
    for line in report.to_string().lines() {
        println!("  {line}");
    }
    if report.of_kind(ProblemKind::Edited).next().is_none() {
        return Err("the edited copy was not caught".into());
    }
    Ok(())
}

/// Removes `path` if an earlier run of the demo wrote it (events of the service `demo`, a
/// key named `demo`, a report page); refuses to touch anything else.
fn replace_own(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display()).into()),
    };
    let first = text.lines().next().unwrap_or_default();
    let demo_event = serde_json::from_str::<serde_json::Value>(first).is_ok_and(|e| {
        e["service"]["name"] == "demo" || e["metadata"]["reporter"]["name"] == "demo"
    });
    let ours = text.is_empty()
        || demo_event
        || first.starts_with("demo+")
        || (text.starts_with("<!DOCTYPE html>") && text.contains("<title>OAuth audit report"));
    if !ours {
        return Err(format!(
            "{} exists and was not written by the demo; move it away or choose other files with --out",
            path.display()
        )
        .into());
    }
    std::fs::remove_file(path)?;
    Ok(())
}

/// The `SecurityAlert` events the detector raised during the scenario.
fn show_alerts(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    println!("\nalerts raised by the detector (SecurityAlert events in the same trail; `oauth-audit detect {}` finds them again offline):", out.display());
    let mut alerts = 0;
    for line in std::fs::read_to_string(out)?.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        if event["kind"] != "SecurityAlert" {
            continue;
        }
        alerts += 1;
        let alert = &event["alert"];
        println!(
            "  {} ({}): {} event(s) in {} s from {}, evidence: {} event id(s)",
            alert["rule"].as_str().unwrap_or("?"),
            event["severity"].as_str().unwrap_or("?"),
            alert["count"],
            alert["window_s"],
            alert["key"].as_str().unwrap_or("?"),
            alert["evidence"].as_array().map_or(0, Vec::len)
        );
        let travel = &alert["travel"];
        if travel.is_object() {
            let place = |p: &serde_json::Value| {
                format!(
                    "{}, {} ({})",
                    p["city"].as_str().unwrap_or("?"),
                    p["country"].as_str().unwrap_or("?"),
                    p["ip"].as_str().unwrap_or("?")
                )
            };
            println!(
                "    from {} to {}: {} km in {} s",
                place(&travel["from"]),
                place(&travel["to"]),
                travel["distance_km"],
                travel["seconds"]
            );
        }
    }
    if alerts == 0 {
        return Err("the attack raised no alert".into());
    }
    Ok(())
}

/// The pipeline's counters as Prometheus saw them at the end of the scenario.
fn summarize_metrics(addr: SocketAddr, text: &str) {
    println!(
        "
from http://{addr}/metrics (series at zero and histogram buckets left out):"
    );
    let mut nonzero: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.starts_with("oauth_audit_")
                && !line.contains("_bucket{")
                && line.rsplit(' ').next().is_some_and(|v| v != "0")
        })
        .collect();
    nonzero.sort_unstable();
    for line in nonzero {
        println!("  {line}");
    }
}

/// Where the events went as ECS documents and OCSF events.
fn show_formats(args: &Args) {
    for (path, what) in [
        (&args.ecs, "ECS 9.4 documents (for Elasticsearch)"),
        (&args.ocsf, "OCSF 1.8 events"),
    ] {
        if let Some(path) = path {
            let lines = std::fs::read_to_string(path).map_or(0, |text| text.lines().count());
            println!(
                "  {lines} events as {what} in {} (docs/formats.md; a sink of its own, \
                 never stalled, so it also holds what the stalled file dropped)",
                path.display()
            );
        }
    }
}

fn summarize(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)?;
    let mut by_kind: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    let mut total = 0;
    let mut labelled = 0;
    let mut chained = 0;
    for line in text.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        if event["labels"]["deployment"] == "demo" {
            labelled += 1;
        }
        if event.get("chain").is_some() {
            chained += 1;
        }
        let kind = event["kind"].as_str().unwrap_or("?").to_owned();
        let outcome = event["outcome"].as_str().unwrap_or("?").to_owned();
        *by_kind.entry(kind).or_default().entry(outcome).or_default() += 1;
        total += 1;
    }
    println!("\n{total} audit events written to {}", path.display());
    println!("  {labelled} of them labelled deployment=demo by the pipeline's processor");
    println!("  {chained} of them hash-chained (the others are the writer's own drop reports)");
    for (kind, outcomes) in &by_kind {
        let parts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{n} {o}")).collect();
        println!("  {kind:<26} {}", parts.join(", "));
    }
    println!(
        "\nlook at one: head -n 1 {} | python3 -m json.tool",
        path.display()
    );
    Ok(())
}

async fn me(token: Option<axum::Extension<AuditedToken>>) -> Json<serde_json::Value> {
    let subject = token.and_then(|t| t.0 .0.claims.subject.clone());
    Json(serde_json::json!({ "subject": subject }))
}

async fn orders() -> Json<serde_json::Value> {
    Json(serde_json::json!([{ "id": 1, "item": "tea" }]))
}

async fn admin() -> &'static str {
    "admin area"
}
