//! What `oauth-audit report` reads per second, and what memory it keeps: a JSON-lines trail
//! shaped like a busy API's (200 clients, 5,000 users, 50 routes, 2,000 addresses, a token
//! per 20 events; one event in ten a token, login or denial event), then the report over it
//! with the peak resident memory (`VmHWM`).
//!
//! With `postgres`, the same trail is loaded into a PostgreSQL events table (through the
//! postgres sink, on a throwaway PostgreSQL 15 server), the report is made from the table,
//! and its numbers are checked against the report from the file.
//!
//! ```text
//! cargo build --release --features postgres --example report_bench
//! target/release/examples/report_bench generate /tmp/r/1m.jsonl 1000000
//! target/release/examples/report_bench report /tmp/r/1m.jsonl
//! target/release/examples/report_bench postgres /tmp/r/1m.jsonl
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use oauth_audit::event::Timestamp;
use oauth_audit::report::{report_files, ReportOptions};
use serde_json::json;

#[cfg(feature = "postgres")]
#[path = "../tests/support/ports.rs"]
mod ports;
#[cfg(feature = "postgres")]
#[path = "../tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
#[path = "support/rss.rs"]
mod rss;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", path, n] => generate(path, n.parse()?),
        ["report", path] => report(path),
        #[cfg(feature = "postgres")]
        ["postgres", path] => from_postgres(path),
        _ => Err(
            "usage: report_bench generate PATH N | report_bench report PATH | \
             report_bench postgres PATH (feature postgres)"
                .into(),
        ),
    }
}

fn generate(path: &str, n: u64) -> Result<(), Error> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    let start = 1_780_272_000i64 - 30 * 86_400;
    let scopes = ["orders:read", "orders:write", "profile", "admin"];
    for i in 0..n {
        let time = Timestamp::from_unix_micros(
            (start + (i as i64 * 2_592_000) / n as i64) * 1_000_000 + (i as i64 % 1_000_000),
        )
        .ok_or("time out of range")?;
        let client = format!("client-{}", i % 200);
        let subject = format!("user-{}", (i * 7) % 5_000);
        let ip = format!("10.{}.{}.{}", (i % 2_000) / 250, (i % 250), (i * 3) % 250);
        let token = format!("sha256:{:032x}", i / 20);
        let route = format!("/api/resource-{}/{{id}}", i % 50);
        let granted = &scopes[..1 + (i % 3) as usize];
        let event = match i % 10 {
            0 => json!({
                "schema": "oauth-audit/1", "id": format!("{i:032x}"), "time": time.to_string(),
                "kind": "AccessTokenIssued", "outcome": "success", "severity": "info",
                "service": {"name": "orders-api", "instance": "orders-api-7f9c"},
                "actor": {"client_id": client, "kind": "client"},
                "grant_type": if i % 30 == 0 { "refresh_token" } else { "client_credentials" },
                "client_auth": "client_secret_basic",
                "scopes": {"requested": granted, "granted": granted},
                "token": {"fingerprint": token, "format": "jwt"},
                "http": {"method": "POST", "route": "/token", "path": "/token", "status": 200, "duration_ms": 1.234},
                "source": {"ip": ip, "user_agent": "bench/1.0"},
                "request_id": format!("req-{i}"),
            }),
            1 => json!({
                "schema": "oauth-audit/1", "id": format!("{i:032x}"), "time": time.to_string(),
                "kind": "LoginFailed", "outcome": "failure", "severity": "warning",
                "service": {"name": "orders-api"},
                "actor": {"subject": subject, "kind": "user"},
                "source": {"ip": ip}, "http": {"method": "POST", "route": "/login", "status": 401},
            }),
            2 => json!({
                "schema": "oauth-audit/1", "id": format!("{i:032x}"), "time": time.to_string(),
                "kind": "AccessDenied", "outcome": "failure", "severity": "warning",
                "service": {"name": "orders-api"},
                "actor": {"client_id": client, "subject": subject, "kind": "user"},
                "scopes": {"granted": granted, "required": ["admin"]},
                "token": {"fingerprint": token, "verdict": "valid"},
                "error": {"code": "insufficient_scope"},
                "http": {"method": "GET", "route": route, "status": 403},
                "source": {"ip": ip},
            }),
            _ => json!({
                "schema": "oauth-audit/1", "id": format!("{i:032x}"), "time": time.to_string(),
                "kind": "ResourceAccessed", "outcome": "success", "severity": "info",
                "service": {"name": "orders-api", "instance": "orders-api-7f9c"},
                "actor": {"client_id": client, "subject": subject, "kind": "user"},
                "scopes": {"granted": granted, "required": ["orders:read"], "used": ["orders:read"]},
                "token": {"fingerprint": token, "format": "jwt", "issuer": "https://issuer.example", "audience": ["orders"], "verdict": "valid"},
                "http": {"method": "GET", "route": route, "path": format!("/api/resource-{}/{i}", i % 50), "status": 200, "duration_ms": 0.412},
                "source": {"ip": ip, "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench"},
                "request_id": format!("req-{i}"), "trace_id": format!("{i:032x}"),
            }),
        };
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    println!(
        "{n} events written to {path} ({} MB)",
        std::fs::metadata(path)?.len() / 1_000_000
    );
    Ok(())
}

fn report(path: &str) -> Result<(), Error> {
    let bytes = std::fs::metadata(path)?.len();
    let start = Instant::now();
    let report = report_files(
        &[PathBuf::from(path)],
        ReportOptions::default(),
        &mut |_| {},
    )?;
    let read = start.elapsed().as_secs_f64();
    let html = report.to_html()?;
    let total = start.elapsed().as_secs_f64();
    let events = report.matched();
    println!(
        "{events} events, {:.0} MB: read in {read:.2} s ({:.0} events/s, {:.0} MB/s), with the HTML page {total:.2} s ({} KB); peak RSS {} kB",
        bytes as f64 / 1e6,
        events as f64 / read,
        bytes as f64 / 1e6 / read,
        html.len() / 1024,
        rss::peak_rss_kib()
    );
    Ok(())
}

/// Loads the trail into a table on a throwaway server, then reports from the table.
#[cfg(feature = "postgres")]
fn from_postgres(path: &str) -> Result<(), Error> {
    use std::io::BufRead as _;

    use oauth_audit::backend::{PostgresBackend, PostgresEventReader};
    use oauth_audit::delivery::{Backend, EncodedEvent};
    use oauth_audit::report::report_postgres;

    let options = || ReportOptions::default().now(Timestamp::from_unix(1_780_272_000).unwrap());
    let from_file = report_files(&[PathBuf::from(path)], options(), &mut |_| {})?;
    // A server of one's own (`OAUTH_AUDIT_BENCH_DATABASE`, a libpq connection string)
    // keeps the table from run to run; otherwise a throwaway one is started.
    let own = std::env::var("OAUTH_AUDIT_BENCH_DATABASE").ok();
    let server = own.is_none().then(postgres::PgServer::new);
    let url = own.unwrap_or_else(|| server.as_ref().map(|s| s.url()).unwrap_or_default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let loading = Instant::now();
        let mut backend = PostgresBackend::builder(url.clone())
            .table("bench_events")
            .build()?;
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let exists: bool = client
            .query_one("SELECT to_regclass('public.bench_events') IS NOT NULL", &[])
            .await?
            .get(0);
        let stored: i64 = if exists {
            client
                .query_one("SELECT count(*) FROM public.bench_events", &[])
                .await?
                .get(0)
        } else {
            0
        };
        let mut batch = Vec::with_capacity(5_000);
        let mut rows = 0u64;
        let lines = std::io::BufReader::new(std::fs::File::open(path)?).lines();
        for line in lines.skip(usize::try_from(stored)?) {
            batch.push(EncodedEvent::from_json(line?.into())?);
            if batch.len() == 5_000 {
                backend.send(&batch).await?;
                rows += batch.len() as u64;
                batch.clear();
            }
        }
        backend.send(&batch).await?;
        rows += batch.len() as u64;
        client
            .batch_execute("VACUUM ANALYZE public.bench_events")
            .await?;
        println!(
            "{rows} rows loaded ({stored} there before) in {:.1} s",
            loading.elapsed().as_secs_f64()
        );

        let start = Instant::now();
        let mut reader = PostgresEventReader::connect(&url, "public", "bench_events").await?;
        let report = report_postgres(&mut reader, options()).await?;
        let read = start.elapsed().as_secs_f64();
        let same = same_numbers(&from_file.to_json(), &report.to_json())?;
        println!(
            "{} events from PostgreSQL in {read:.2} s ({:.0} events/s); the file's numbers: {}; peak RSS {} kB",
            report.matched(),
            report.matched() as f64 / read,
            if same { "the same" } else { "DIFFERENT" },
            rss::peak_rss_kib()
        );
        if !same {
            return Err("the table's report differs from the file's".into());
        }
        Ok(())
    })
}

/// Whether two reports' JSON give the same numbers (their inputs and times of making
/// aside).
#[cfg(feature = "postgres")]
fn same_numbers(a: &str, b: &str) -> Result<bool, Error> {
    let strip = |text: &str| -> Result<serde_json::Value, Error> {
        let mut value: serde_json::Value = serde_json::from_str(text)?;
        if let Some(object) = value.as_object_mut() {
            object.remove("input");
            object.remove("generated_at");
        }
        Ok(value)
    };
    Ok(strip(a)? == strip(b)?)
}
