//! Throughput and memory of `verify` (docs/benchmarks.md, "Verifying the chain").
//!
//! ```text
//! cargo run --release --example verify_bench -- generate /tmp/v/small.jsonl 50000
//! cargo run --release --example verify_bench -- generate /tmp/v/large.jsonl 500000
//! cargo run --release --example verify_bench -- verify /tmp/v/small.jsonl
//! cargo run --release --example verify_bench -- verify /tmp/v/large.jsonl
//! ```
//!
//! `generate` writes N chained events (a signed checkpoint every 1,000) with an `Auditor`
//! and its JSON-lines file writer, and the public key next to it (`PATH.pub`). `verify`
//! reads the file once, on one thread, with the key, and prints the throughput in MB/s of
//! JSON lines and the process's peak resident memory (VmHWM), which must not grow with the
//! input: the verifier streams.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oauth_audit::chain::verify;
use oauth_audit::chain::{Chaining, SigningKey, VerifyingKey};
use oauth_audit::event::{AuditEvent, EventKind, HttpInfo, Outcome, Source, Timestamp};
use oauth_audit::writer::{Auditor, JsonLines};

#[path = "support/rss.rs"]
mod rss;
use rss::peak_rss_kib;

/// An event shaped like the proxy's: actor, HTTP exchange, client address.
fn event(auditor: &Auditor, i: u64) -> AuditEvent {
    let mut event = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    event.actor.subject = Some(format!("user-{}", i % 1000));
    event.actor.client_id = Some("orders-web".into());
    event.request_id = Some(format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    let mut http = HttpInfo::new(
        "GET",
        format!("/orders/{i}"),
        Some(200),
        (i % 5000) as f64 / 1000.0,
    );
    http.route = Some("/orders/{id}".into());
    event.http = Some(http);
    let mut source = Source::default();
    source.ip = Some(std::net::IpAddr::from([203, 0, 113, (i % 250) as u8]));
    event.source = Some(source);
    event
}

async fn generate(path: &Path, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    let key = SigningKey::generate("bench")?;
    std::fs::write(pub_path(path), key.verifying_key().encode())?;
    let _ = std::fs::remove_file(path);
    let auditor = Auditor::builder()
        .queue_capacity(65_536)
        .chain(Chaining::new().signing_key(key).checkpoint_every(1000))
        .writer(JsonLines::file(path).await?)
        .build()?;
    for i in 0..n {
        auditor.emit(event(&auditor, i));
        if i % 1000 == 999 {
            // At most about 60,000 events/s, so that the pipeline keeps up and none is
            // dropped (dropped events are never chained, but the sizes would not be N).
            tokio::time::sleep(Duration::from_millis(16)).await;
        }
    }
    auditor.shutdown().await;
    let dropped: u64 = auditor.stats().writers.iter().map(|w| w.dropped).sum();
    println!(
        "wrote {} ({} bytes), {dropped} events dropped",
        path.display(),
        std::fs::metadata(path)?.len()
    );
    Ok(())
}

fn pub_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn run_verify(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let key = VerifyingKey::from_file(&pub_path(path))?;
    let bytes = std::fs::metadata(path)?.len();
    let start = Instant::now();
    let report = verify::verify_files(&[path.to_owned()], vec![key], None)?;
    let elapsed = start.elapsed();
    println!("{}", report.summary());
    println!(
        "verify: {:.1} MB in {:.2} s = {:.1} MB/s, {:.0} events/s; peak RSS {} KiB",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        bytes as f64 / 1e6 / elapsed.as_secs_f64(),
        report.events as f64 / elapsed.as_secs_f64(),
        peak_rss_kib()
    );
    if !report.is_clean() {
        return Err("the generated trail does not verify".into());
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", path, n] => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(generate(Path::new(path), n.parse()?))
        }
        ["verify", path] => run_verify(Path::new(path)),
        _ => Err("usage: verify_bench generate PATH N | verify PATH".into()),
    }
}
