//! What writing ECS or OCSF costs against schema v1: events per second into a JSON-lines file
//! in each format (the sink's whole path: `Auditor`, queue, serialisation, file), and the
//! serialisation alone in nanoseconds per event.
//!
//! The events are `writer_bench`'s (a protected-route call with a verified JWT, about 1 KB
//! of v1 JSON). Formats run interleaved, in a different order each round, and the medians
//! are reported. With `--max-cost PCT` it fails when a format's throughput is more than PCT
//! percent below schema v1's.
//!
//! ```text
//! cargo run --release --example format_bench -- [--events N] [--rounds R] [--max-cost 25]
//! ```
//!
//! On a busy machine wall-clock figures wander; instruction counts do not. `--only FORMAT`
//! runs one round of one format through the sink and nothing else, `--generate-only` only
//! makes the events, so that under `valgrind --tool=callgrind` the difference of the two
//! totals is the sink's cost for that format (with `--serialise-only` as well: the cost of
//! serialising alone). `--show` prints the event in every format.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth_audit::event::{AuditEvent, ServiceInfo, Timestamp};
use oauth_audit::format::EventFormat;
use oauth_audit::writer::{Auditor, JsonLines, OverflowPolicy, WriterOptions};

#[path = "support/events.rs"]
mod events;

type Error = Box<dyn std::error::Error + Send + Sync>;

const FORMATS: [EventFormat; 3] = [EventFormat::OAuthAudit, EventFormat::Ecs, EventFormat::Ocsf];

struct Args {
    events: usize,
    rounds: usize,
    max_cost: Option<f64>,
    only: Option<EventFormat>,
    generate_only: bool,
    show: bool,
    serialise_only: bool,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        events: 200_000,
        rounds: 5,
        max_cost: None,
        only: None,
        generate_only: false,
        show: false,
        serialise_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--events" => args.events = value()?.parse()?,
            "--rounds" => args.rounds = value()?.parse()?,
            "--max-cost" => args.max_cost = Some(value()?.parse()?),
            "--only" => args.only = Some(value()?.parse()?),
            "--generate-only" => args.generate_only = true,
            "--show" => args.show = true,
            "--serialise-only" => args.serialise_only = true,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if args.events == 0 || args.rounds == 0 {
        return Err("--events and --rounds must be at least 1".into());
    }
    Ok(args)
}

fn events(n: usize) -> Vec<AuditEvent> {
    let mut service = ServiceInfo::new("orders-api");
    service.instance = Some("orders-api-7f9c".into());
    let service = Arc::new(service);
    (0..n)
        .map(|i| {
            events::protected_route_event(
                &service,
                i,
                Timestamp::now(),
                uuid::Uuid::now_v7().to_string(),
            )
        })
        .collect()
}

/// Events per second through an auditor into a JSON-lines file in `format`.
async fn through_the_sink(
    format: EventFormat,
    batch: Vec<AuditEvent>,
    dir: &std::path::Path,
) -> Result<f64, Error> {
    let n = batch.len();
    let path = dir.join(format!("{format}.jsonl"));
    let _ = std::fs::remove_file(&path);
    let writer = JsonLines::file(&path).await?.format(format);
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .batch_size(256)
        .writer_with(
            writer,
            WriterOptions::default()
                .queue_capacity(n + 64)
                .overflow(OverflowPolicy::Block {
                    timeout: Duration::from_secs(300),
                }),
        )
        .build()?;
    let start = Instant::now();
    for event in batch {
        auditor.emit(event);
    }
    auditor.shutdown().await;
    let seconds = start.elapsed().as_secs_f64();
    // The writer's own count, not the file read back: reading is not the sink's cost.
    let stats = auditor.stats();
    let lane = &stats.writers[0];
    std::fs::remove_file(&path)?;
    if lane.written != n as u64 || lane.dropped != 0 {
        return Err(format!(
            "{format}: {} of {n} events written, {} dropped",
            lane.written, lane.dropped
        )
        .into());
    }
    Ok(n as f64 / seconds)
}

/// Nanoseconds to serialise one event in `format`, and its size in bytes.
fn serialisation(format: EventFormat, batch: &[AuditEvent]) -> Result<(f64, usize), Error> {
    let mut buf = Vec::with_capacity(4096);
    let mut bytes = 0;
    let start = Instant::now();
    for event in batch {
        buf.clear();
        format.write(&mut buf, std::hint::black_box(event))?;
        bytes += buf.len();
    }
    let nanos = start.elapsed().as_nanos() as f64 / batch.len() as f64;
    Ok((nanos, bytes / batch.len()))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let args = parse_args()?;
    if args.show {
        // The benchmark's event in every format, one line each.
        let event = &events(1)[0];
        for format in FORMATS {
            let mut line = Vec::new();
            format.write(&mut line, event)?;
            println!("{}", String::from_utf8_lossy(&line));
        }
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("oauth-audit-format-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    if args.generate_only || args.only.is_some() {
        let batch = std::hint::black_box(events(args.events));
        match args.only {
            Some(format) if args.serialise_only => {
                let (ns, bytes) = serialisation(format, &batch)?;
                println!("{format}: {ns:.0} ns/event, {bytes} bytes/event");
            }
            Some(format) => {
                let events_per_s = through_the_sink(format, batch, &dir).await?;
                println!("{format}: {events_per_s:.0} events/s");
            }
            None => {}
        }
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    let mut throughput = vec![Vec::new(); FORMATS.len()];
    let mut nanos = vec![Vec::new(); FORMATS.len()];
    let mut sizes = vec![0; FORMATS.len()];
    let sample = events(args.events.min(50_000));
    for round in 0..args.rounds {
        for k in 0..FORMATS.len() {
            let i = (k + round) % FORMATS.len();
            let batch = events(args.events);
            throughput[i].push(through_the_sink(FORMATS[i], batch, &dir).await?);
            let (ns, size) = serialisation(FORMATS[i], &sample)?;
            nanos[i].push(ns);
            sizes[i] = size;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let baseline = median(&mut throughput[0].clone());
    println!(
        "{} events per round, {} rounds, medians\n",
        args.events, args.rounds
    );
    println!("| format | events/s into a JSON-lines file | vs schema v1 | serialisation, ns/event | bytes/event |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut worst: f64 = 0.0;
    for (i, format) in FORMATS.iter().enumerate() {
        let events_per_s = median(&mut throughput[i]);
        let cost = 100.0 * (1.0 - events_per_s / baseline);
        if i > 0 {
            worst = worst.max(cost);
        }
        println!(
            "| `{format}` | {events_per_s:.0} | {} | {:.0} | {} |",
            if i == 0 {
                "baseline".to_owned()
            } else {
                format!("{:+.1} %", -cost)
            },
            median(&mut nanos[i]),
            sizes[i],
        );
    }
    if let Some(max) = args.max_cost {
        if worst > max {
            return Err(format!(
                "a format costs {worst:.1} % of the throughput, more than {max} %"
            )
            .into());
        }
        println!("\nevery format within {max} % of schema v1's throughput (worst: {worst:.1} %)");
    }
    Ok(())
}
