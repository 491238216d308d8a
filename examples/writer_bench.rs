//! Events per second into each writer, against real servers on loopback: the JSON-lines
//! file (the baseline), `RotatingFile`, and `Delivery` to PostgreSQL, NATS JetStream and an
//! Elasticsearch-style `_bulk` collector; then, with PostgreSQL down, events per second into
//! the on-disk spool (with and without fsync) and the replay once it is back.
//!
//! Every event of a round goes through `Auditor` (a queue big enough for all of them, so
//! none is dropped) and a round ends when every event is confirmed: written and flushed for
//! the files, acknowledged by the server for the backends (checked against the server's own
//! count). Variants run interleaved, round by round, and the medians are reported.
//!
//! ```text
//! cargo run --release --features postgres,nats,http --example writer_bench -- \
//!     [--events N] [--rounds R] [--out target/bench]
//! ```
//!
//! `scripts/bench-writers` installs the servers, runs this and updates docs/benchmarks.md.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth_audit::backend::{Format, HttpCollector, NatsBackend, PostgresBackend};
use oauth_audit::chain::{Chaining, SigningKey};
use oauth_audit::delivery::{Backend, Backoff, Delivery, DeliveryStats, EncodedEvent};
use oauth_audit::event::{AuditEvent, ServiceInfo, Timestamp};
use oauth_audit::writer::{
    Auditor, IntoSink, JsonLines, OverflowPolicy, RotatingFile, WriterOptions,
};
use serde_json::json;

#[path = "../tests/support/collector.rs"]
#[allow(dead_code)]
mod collector;
#[path = "support/events.rs"]
mod events;
#[path = "../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
#[path = "../tests/support/ports.rs"]
mod ports;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The longest any phase may take before the benchmark gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(300);

/// The variants, in the order they run within a round (and appear in the table).
const VARIANTS: &[(&str, &str)] = &[
    ("json_lines", "JSON-lines file (baseline)"),
    (
        "json_lines_shared",
        "JSON-lines file, each token's parts shared by its events (as the layer makes them)",
    ),
    (
        "json_lines_processor",
        "JSON-lines file, through a processor that does nothing",
    ),
    (
        "json_lines_chained",
        "JSON-lines file, chained, checkpoint signed every 1000",
    ),
    ("rotating_file", "RotatingFile"),
    (
        "postgres",
        "Delivery + PostgreSQL (2 connections, the default)",
    ),
    (
        "postgres_1_connection",
        "Delivery + PostgreSQL, one connection",
    ),
    (
        "postgres_4_connections",
        "Delivery + PostgreSQL, batches over 4 connections",
    ),
    (
        "postgres_batch_1000",
        "Delivery + PostgreSQL, batches of 1000 (2 connections)",
    ),
    (
        "postgres_batch_1000_1_connection",
        "Delivery + PostgreSQL, batches of 1000, one connection",
    ),
    ("nats", "Delivery + NATS JetStream"),
    ("http_bulk", "Delivery + HTTP `_bulk`"),
    ("http_bulk_gzip", "Delivery + HTTP `_bulk`, gzip"),
    (
        "spool_fsync",
        "PostgreSQL down: into the spool, `spool_fsync(true)`",
    ),
    (
        "replay_after_fsync",
        "PostgreSQL back: replay of that spool",
    ),
    (
        "spool_no_fsync",
        "PostgreSQL down: into the spool, `spool_fsync(false)`",
    ),
    (
        "replay_after_no_fsync",
        "PostgreSQL back: replay of that spool",
    ),
];

struct Options {
    events: usize,
    rounds: usize,
    out: PathBuf,
    /// Only these variants (all when empty).
    only: Vec<String>,
}

fn options() -> Result<Options, Error> {
    let mut options = Options {
        events: 50_000,
        rounds: 3,
        out: PathBuf::from("target/bench"),
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--events" => options.events = value()?.parse()?,
            "--rounds" => options.rounds = value()?.parse()?,
            "--out" => options.out = value()?.into(),
            "--only" => options.only = value()?.split(',').map(String::from).collect(),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: writer_bench [--events N] [--rounds R] [--out DIR] [--only a,b]"
                )
                .into())
            }
        }
    }
    if options.events == 0 || options.rounds == 0 {
        return Err("--events and --rounds must be at least 1".into());
    }
    Ok(options)
}

/// One measurement.
#[derive(Clone, Copy, Default)]
struct Sample {
    events_per_s: f64,
    /// Spool replay only: from the server accepting connections to the first confirmed batch
    /// (the backoff in force, the reconnect).
    first_delivery_s: f64,
    /// Spool replay only: failed sends while replaying.
    failures: u64,
}

fn service() -> Arc<ServiceInfo> {
    let mut service = ServiceInfo::new("orders-api");
    service.instance = Some("orders-api-7f9c".into());
    Arc::new(service)
}

/// A `ResourceAccessed` event as the layer records it for an API call with a verified JWT.
fn event(service: &Arc<ServiceInfo>, i: usize) -> AuditEvent {
    events::protected_route_event(
        service,
        i,
        Timestamp::now(),
        uuid::Uuid::now_v7().to_string(),
    )
}

fn events(n: usize) -> Vec<AuditEvent> {
    let service = service();
    (0..n).map(|i| event(&service, i)).collect()
}

/// [`events`], with each token's `actor`, `token` and `scopes.granted` made once and shared
/// by the events of the token, as the layer shares them.
fn shared_events(n: usize) -> Vec<AuditEvent> {
    let service = service();
    let tokens = events::SharedTokens::new(&service, Timestamp::now());
    (0..n)
        .map(|i| {
            tokens.event(
                &service,
                i,
                Timestamp::now(),
                uuid::Uuid::now_v7().to_string(),
            )
        })
        .collect()
}

/// An auditor whose only writer can hold every event of the round: nothing is dropped,
/// and a full queue (which cannot happen) would wait rather than drop.
fn auditor<W: IntoSink>(writer: W, n: usize, batch: usize) -> Result<Auditor, Error> {
    Ok(Auditor::builder()
        .service_name("orders-api")
        .service_instance("orders-api-7f9c")
        .batch_size(batch)
        .writer_with(
            writer,
            WriterOptions::default()
                .queue_capacity(n + 64)
                .overflow(OverflowPolicy::Block {
                    timeout: PHASE_TIMEOUT,
                }),
        )
        .build()?)
}

fn check_lane(auditor: &Auditor, n: usize) -> Result<(), Error> {
    let stats = auditor.stats();
    let lane = &stats.writers[0];
    if lane.written != n as u64 || lane.dropped != 0 {
        return Err(format!(
            "writer {}: {} of {n} events written, {} dropped",
            lane.name, lane.written, lane.dropped
        )
        .into());
    }
    Ok(())
}

/// Emits the events and waits until `shutdown` has written and flushed every one of them.
async fn emit_all(auditor: &Auditor, events: Vec<AuditEvent>) -> Result<f64, Error> {
    let n = events.len();
    let start = Instant::now();
    for event in events {
        auditor.emit(event);
    }
    tokio::time::timeout(PHASE_TIMEOUT, auditor.shutdown())
        .await
        .map_err(|_| "the writer did not finish within the phase timeout")?;
    let seconds = start.elapsed().as_secs_f64();
    check_lane(auditor, n)?;
    Ok(n as f64 / seconds)
}

fn check_delivered(name: &str, stats: &DeliveryStats, n: usize) -> Result<(), Error> {
    if stats.delivered() != n as u64 || stats.spooled_events() != 0 || stats.dropped_total() != 0 {
        return Err(format!(
            "{name}: delivered {} of {n}, {} left in the spool, {} dropped",
            stats.delivered(),
            stats.spooled_events(),
            stats.dropped_total()
        )
        .into());
    }
    Ok(())
}

fn check_count(name: &str, stored: u64, expected: usize) -> Result<(), Error> {
    if stored != expected as u64 {
        return Err(
            format!("{name}: the server holds {stored} events, expected {expected}").into(),
        );
    }
    Ok(())
}

/// Sends one event straight to the backend, so connecting and creating the table or stream
/// are not part of the measurement.
async fn warm_up<B: Backend>(backend: &mut B) -> Result<(), Error> {
    let event = EncodedEvent::encode(&event(&service(), 0))?;
    backend.send(&[event]).await?;
    Ok(())
}

/// Runs `Delivery` over `backend` for one round; `stored` reads the server's count.
async fn delivery_round<B, F>(
    name: &str,
    mut backend: B,
    spool: &Path,
    n: usize,
    batch: usize,
    stored: impl FnOnce() -> F,
) -> Result<Sample, Error>
where
    B: Backend,
    F: Future<Output = Result<u64, Error>>,
{
    warm_up(&mut backend).await?;
    let delivery = Delivery::builder(backend)
        .spool_dir(spool)
        .max_batch(batch)
        .build()?;
    let stats = delivery.stats();
    let auditor = auditor(delivery, n, batch)?;
    let events_per_s = emit_all(&auditor, events(n)).await?;
    check_delivered(name, &stats, n)?;
    check_count(name, stored().await?, n + 1)?;
    Ok(Sample {
        events_per_s,
        ..Sample::default()
    })
}

/// A PostgreSQL 15 cluster with the server's default durability (`fsync` on, every commit
/// flushed to the WAL), unlike the test harness, which turns fsync off for speed.
struct Postgres {
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_USER: &str = "audit";

impl Postgres {
    fn start(parent: &Path) -> Result<Postgres, Error> {
        if !Path::new(PG_BIN).join("postgres").exists() {
            return Err(format!(
                "PostgreSQL 15 is not installed ({PG_BIN}/postgres is missing): run \
                 scripts/bench-writers, which installs it (apt-get install postgresql)"
            )
            .into());
        }
        let dir = tempfile::Builder::new().prefix("pg-").tempdir_in(parent)?;
        if is_root()? {
            // initdb refuses to run as root; the cluster belongs to the postgres user.
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))?;
            // The parent must be traversable by postgres too.
            run(Command::new("chmod").arg("o+x").arg(parent))?;
        }
        as_postgres(&format!(
            "{PG_BIN}/initdb -D '{}/data' -U {PG_USER} --auth=trust -E UTF8 --locale=C.UTF-8",
            dir.path().display()
        ))?;
        let mut pg = Postgres {
            dir,
            port: nats::free_port(),
            running: false,
        };
        pg.resume()?;
        Ok(pg)
    }

    fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={PG_USER} dbname=postgres sslmode=disable",
            self.port
        )
    }

    /// Stops the server at once (as a crash would), keeping its data.
    fn stop(&mut self) -> Result<(), Error> {
        if self.running {
            as_postgres(&format!(
                "{PG_BIN}/pg_ctl -D '{}/data' -m immediate -w stop",
                self.dir.path().display()
            ))?;
            self.running = false;
        }
        Ok(())
    }

    /// Starts it again: same data, same port.
    fn resume(&mut self) -> Result<(), Error> {
        let dir = self.dir.path().display();
        as_postgres(&format!(
            "{PG_BIN}/pg_ctl -D '{dir}/data' -l '{dir}/log' -w -t 60 -o \"-p {port} \
             -c listen_addresses=127.0.0.1 -k '{dir}'\" start",
            port = self.port,
        ))?;
        self.running = true;
        Ok(())
    }

    async fn count(&self, table: &str) -> Result<u64, Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let row = client
            .query_one(&format!("SELECT count(DISTINCT id) FROM {table}"), &[])
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0))?)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("could not stop PostgreSQL: {err}");
        }
    }
}

fn is_root() -> Result<bool, Error> {
    let out = Command::new("id").arg("-u").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn as_postgres(script: &str) -> Result<(), Error> {
    let out = if is_root()? {
        Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", script])
            .current_dir("/")
            .output()?
    } else {
        Command::new("/bin/sh")
            .args(["-c", script])
            .current_dir("/")
            .output()?
    };
    if !out.status.success() {
        return Err(format!(
            "`{script}` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn run(command: &mut Command) -> Result<(), Error> {
    let status = command.status()?;
    if !status.success() {
        return Err(format!("{command:?} failed: {status}").into());
    }
    Ok(())
}

/// Polls `condition` every millisecond; the time it became true.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) -> Result<Instant, Error> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    loop {
        if condition() {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting until {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// PostgreSQL goes down, `n` events go into the spool; it comes back, the spool is replayed.
async fn spool_round(
    pg: &mut Postgres,
    table: &str,
    spool: &Path,
    fsync: bool,
    n: usize,
) -> Result<(Sample, Sample), Error> {
    let mut backend = PostgresBackend::builder(pg.url()).table(table).build()?;
    warm_up(&mut backend).await?;
    let delivery = Delivery::builder(backend)
        .spool_dir(spool)
        .spool_fsync(fsync)
        // Retries soon after the server is back, so the replay is measured, not the backoff.
        .backoff(Backoff::exponential(
            Duration::from_millis(10),
            Duration::from_millis(100),
        ))
        .build()?;
    let stats = delivery.stats();
    let auditor = auditor(delivery, n, 256)?;
    tokio::task::block_in_place(|| pg.stop())?;

    let events = events(n);
    let start = Instant::now();
    for event in events {
        auditor.emit(event);
    }
    // `written` counts what PostgreSQL confirmed; the spool's own counter says what waits.
    let spooled_stats = stats.clone();
    let spooled = wait_until("every event is in the spool", || {
        spooled_stats.spooled_events() >= n as u64
    })
    .await?;
    let into_spool = n as f64 / (spooled - start).as_secs_f64();
    if stats.spooled_events() != n as u64 || stats.delivered() != 0 || stats.dropped_total() != 0 {
        return Err(format!(
            "spool: {} of {n} events spooled, {} delivered, {} dropped",
            stats.spooled_events(),
            stats.delivered(),
            stats.dropped_total()
        )
        .into());
    }

    // The writer replays as soon as the server accepts connections, which can be before
    // pg_ctl returns: watch the counters while it starts.
    let replay = tokio::task::block_in_place(|| {
        std::thread::scope(|scope| replay_while_resuming(scope, pg, &stats, n))
    })?;
    auditor.shutdown().await;
    check_lane(&auditor, n)?;
    check_delivered("spool replay", &stats, n)?;
    check_count("spool replay", pg.count(table).await?, n + 1)?;
    Ok((
        Sample {
            events_per_s: into_spool,
            ..Sample::default()
        },
        replay,
    ))
}

/// Starts PostgreSQL again and measures the replay: from the first confirmed batch to an
/// empty spool, polling the counters every millisecond.
fn replay_while_resuming<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    pg: &'scope mut Postgres,
    stats: &DeliveryStats,
    n: usize,
) -> Result<Sample, Error> {
    let started = Instant::now();
    let failures_before = stats.failures();
    let mut resume = Some(scope.spawn(|| pg.resume()));
    let mut first: Option<(Instant, u64)> = None;
    loop {
        let now = Instant::now();
        let delivered = stats.delivered();
        if first.is_none() && delivered > 0 {
            first = Some((now, delivered));
        }
        if delivered >= n as u64 && stats.spooled_events() == 0 {
            if let Some(resume) = resume.take() {
                resume.join().map_err(|_| "pg_ctl start panicked")??;
            }
            let (first_at, at_first) = first.unwrap_or((started, 0));
            let seconds = (now - first_at).as_secs_f64();
            let events_per_s = if at_first < n as u64 && seconds > 0.0 {
                (n as u64 - at_first) as f64 / seconds
            } else {
                n as f64 / (now - started).as_secs_f64()
            };
            return Ok(Sample {
                events_per_s,
                first_delivery_s: (first_at - started).as_secs_f64(),
                failures: stats.failures() - failures_before,
            });
        }
        if resume.as_ref().is_some_and(|handle| handle.is_finished()) {
            if let Some(resume) = resume.take() {
                resume.join().map_err(|_| "pg_ctl start panicked")??;
            }
        }
        if now - started > PHASE_TIMEOUT {
            return Err(format!(
                "the spool was not replayed within {PHASE_TIMEOUT:?}: {} of {n} delivered",
                delivered
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

struct Servers {
    pg: Postgres,
    nats: nats::NatsServer,
    /// Runs the HTTP collectors apart from the writers, like the other servers.
    collector_runtime: tokio::runtime::Runtime,
}

impl Servers {
    /// Stops the servers; the collectors' runtime without waiting (this runs inside the
    /// benchmark's own runtime, where dropping another one would panic).
    fn stop(self) {
        let Servers {
            pg,
            nats,
            collector_runtime,
        } = self;
        drop((pg, nats));
        collector_runtime.shutdown_background();
    }
}

async fn start_collector(
    runtime: &tokio::runtime::Runtime,
    gzip: bool,
) -> Result<collector::Collector, Error> {
    let expect = collector::Expect {
        shape: collector::Shape::Bulk {
            index: "oauth-audit".into(),
        },
        authorization: None,
        gzip,
    };
    Ok(runtime.spawn(collector::Collector::start(expect)).await?)
}

/// Runs one variant once; spool variants return their replay too.
async fn run_variant(
    variant: &str,
    round: usize,
    n: usize,
    servers: &mut Servers,
    dir: &Path,
) -> Result<Vec<(&'static str, Sample)>, Error> {
    let work = dir.join(format!("{variant}-{round}"));
    std::fs::create_dir_all(&work)?;
    let spool = work.join("spool");
    let sample = match variant {
        "json_lines" | "json_lines_shared" => {
            let writer = JsonLines::file(work.join("audit.jsonl")).await?;
            let auditor = auditor(writer, n, 256)?;
            let events = if variant == "json_lines" {
                events(n)
            } else {
                shared_events(n)
            };
            let events_per_s = emit_all(&auditor, events).await?;
            let lines = std::fs::read_to_string(work.join("audit.jsonl"))?
                .lines()
                .count();
            check_count(variant, lines as u64, n)?;
            Sample {
                events_per_s,
                ..Sample::default()
            }
        }
        "json_lines_processor" => {
            let writer = JsonLines::file(work.join("audit.jsonl")).await?;
            let auditor = Auditor::builder()
                .service_name("orders-api")
                .service_instance("orders-api-7f9c")
                .batch_size(256)
                .queue_capacity(n + 64)
                .processor(|_: &mut AuditEvent| {})
                .writer_with(
                    writer,
                    WriterOptions::default().overflow(OverflowPolicy::Block {
                        timeout: PHASE_TIMEOUT,
                    }),
                )
                .build()?;
            let events_per_s = emit_all(&auditor, events(n)).await?;
            let lines = std::fs::read_to_string(work.join("audit.jsonl"))?
                .lines()
                .count();
            check_count(variant, lines as u64, n)?;
            Sample {
                events_per_s,
                ..Sample::default()
            }
        }
        "json_lines_chained" => {
            let writer = JsonLines::file(work.join("audit.jsonl")).await?;
            let key = SigningKey::generate("bench")?;
            let auditor = Auditor::builder()
                .service_name("orders-api")
                .service_instance("orders-api-7f9c")
                .batch_size(256)
                // The stage's queue holds the whole round too: nothing waits or drops.
                .queue_capacity(n + 64)
                .chain(Chaining::new().signing_key(key).checkpoint_every(1000))
                .writer_with(
                    writer,
                    WriterOptions::default().overflow(OverflowPolicy::Block {
                        timeout: PHASE_TIMEOUT,
                    }),
                )
                .build()?;
            // Made before the clock starts, as for every other variant.
            let events = events(n);
            let start = Instant::now();
            for event in events {
                auditor.emit(event);
            }
            tokio::time::timeout(PHASE_TIMEOUT, auditor.shutdown())
                .await
                .map_err(|_| "the writer did not finish within the phase timeout")?;
            let events_per_s = n as f64 / start.elapsed().as_secs_f64();
            let text = std::fs::read_to_string(work.join("audit.jsonl"))?;
            let chained = text
                .lines()
                .filter(|line| !line.contains("\"kind\":\"AuditCheckpoint\""))
                .filter(|line| line.contains("\"chain\":{"))
                .count();
            check_count(variant, chained as u64, n)?;
            Sample {
                events_per_s,
                ..Sample::default()
            }
        }
        "rotating_file" => {
            let writer = RotatingFile::builder(&work).prefix("audit").build()?;
            let auditor = auditor(writer, n, 256)?;
            let events_per_s = emit_all(&auditor, events(n)).await?;
            let mut lines = 0;
            for entry in std::fs::read_dir(&work)? {
                lines += std::fs::read_to_string(entry?.path())?.lines().count();
            }
            check_count(variant, lines as u64, n)?;
            Sample {
                events_per_s,
                ..Sample::default()
            }
        }
        "postgres"
        | "postgres_1_connection"
        | "postgres_4_connections"
        | "postgres_batch_1000"
        | "postgres_batch_1000_1_connection" => {
            let batch = if variant.starts_with("postgres_batch_1000") {
                1000
            } else {
                256
            };
            let table = format!("bench_{variant}_{round}");
            let mut backend = PostgresBackend::builder(servers.pg.url()).table(&table);
            match variant {
                "postgres_1_connection" | "postgres_batch_1000_1_connection" => {
                    backend = backend.connections(1)
                }
                "postgres_4_connections" => backend = backend.connections(4),
                // The default (2).
                _ => {}
            }
            let mut backend = backend.build()?;
            backend.prepare().await?;
            let pg = &servers.pg;
            delivery_round(variant, backend, &spool, n, batch, || pg.count(&table)).await?
        }
        "nats" => {
            let stream = format!("BENCH_{round}");
            let backend = NatsBackend::builder([servers.nats.url()])
                .stream(&stream)
                .subject_prefix(format!("bench.r{round}"))
                .build()?;
            let url = servers.nats.url();
            delivery_round(variant, backend, &spool, n, 256, || async move {
                let client = async_nats::connect(url).await?;
                let info = async_nats::jetstream::new(client)
                    .get_stream(&stream)
                    .await?
                    .get_info()
                    .await?;
                Ok(info.state.messages)
            })
            .await?
        }
        "http_bulk" | "http_bulk_gzip" => {
            let gzip = variant == "http_bulk_gzip";
            let collector = start_collector(&servers.collector_runtime, gzip).await?;
            let backend = HttpCollector::builder(collector.url())
                .format(Format::ElasticsearchBulk {
                    index: "oauth-audit".into(),
                })
                .gzip(gzip)
                .no_proxy()
                .build()?;
            let sample = delivery_round(variant, backend, &spool, n, 256, || async {
                Ok(collector.events().len() as u64)
            })
            .await?;
            let violations = collector.violations();
            if !violations.is_empty() {
                return Err(format!("{variant}: malformed requests: {violations:?}").into());
            }
            sample
        }
        "spool_fsync" | "spool_no_fsync" => {
            let fsync = variant == "spool_fsync";
            let table = format!("bench_{variant}_{round}");
            let (into, replay) = spool_round(&mut servers.pg, &table, &spool, fsync, n).await?;
            let replay_name = if fsync {
                "replay_after_fsync"
            } else {
                "replay_after_no_fsync"
            };
            std::fs::remove_dir_all(&work)?;
            return Ok(vec![(name_of(variant), into), (replay_name, replay)]);
        }
        other => return Err(format!("unknown variant {other}").into()),
    };
    std::fs::remove_dir_all(&work)?;
    Ok(vec![(name_of(variant), sample)])
}

fn name_of(variant: &str) -> &'static str {
    VARIANTS
        .iter()
        .find(|(name, _)| *name == variant)
        .map_or("unknown", |(name, _)| name)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        len if len % 2 == 1 => sorted[len / 2],
        len => (sorted[len / 2 - 1] + sorted[len / 2]) / 2.0,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Error> {
    let options = options()?;
    let n = options.events;
    std::fs::create_dir_all(&options.out)?;
    // Files, spools and the PostgreSQL cluster, removed at the end.
    let dir = tempfile::Builder::new()
        .prefix("oauth-audit-writer-bench-")
        .tempdir()?;
    let one = EncodedEvent::encode(&event(&service(), 0))?;
    println!(
        "== {n} events per variant, {} rounds; one event is {} bytes of JSON",
        options.rounds,
        one.json().len()
    );

    println!("== starting PostgreSQL 15, nats-server -js and the _bulk collector");
    let pg = tokio::task::block_in_place(|| Postgres::start(dir.path()))?;
    let nats = nats::NatsServer::start().await;
    let collector_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("collector")
        .enable_all()
        .build()?;
    let mut servers = Servers {
        pg,
        nats,
        collector_runtime,
    };

    let mut samples: Vec<(&str, Vec<Sample>)> = VARIANTS
        .iter()
        .map(|(name, _)| (*name, Vec::new()))
        .collect();
    let measured: Vec<&str> = VARIANTS
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !name.starts_with("replay_"))
        .filter(|name| options.only.is_empty() || options.only.iter().any(|o| o == name))
        .collect();
    // Round 0 warms up (caches, connections, the servers' first tables) and is not counted.
    for round in 0..=options.rounds {
        let events = if round == 0 { (n / 10).max(1) } else { n };
        for variant in &measured {
            let results = match run_variant(variant, round, events, &mut servers, dir.path()).await
            {
                Ok(results) => results,
                Err(err) => {
                    // Stopped here: a runtime dropped inside this async context would panic
                    // and hide the error.
                    servers.stop();
                    return Err(format!("{variant}, round {round}: {err}").into());
                }
            };
            for (name, sample) in results {
                if name.starts_with("replay_") {
                    println!(
                        "round {round}: {name:<24} {:>10.0} events/s (first batch {:.2} s after \
                         pg_ctl start, {} failed sends)",
                        sample.events_per_s, sample.first_delivery_s, sample.failures
                    );
                } else {
                    println!(
                        "round {round}: {name:<24} {:>10.0} events/s",
                        sample.events_per_s
                    );
                }
                if round > 0 {
                    if let Some((_, list)) = samples.iter_mut().find(|(v, _)| *v == name) {
                        list.push(sample);
                    }
                }
            }
        }
    }
    servers.stop();

    let baseline = samples
        .iter()
        .find(|(name, _)| *name == "json_lines")
        .map(|(_, list)| median(&list.iter().map(|s| s.events_per_s).collect::<Vec<_>>()))
        .unwrap_or(0.0);
    let mut table = String::from(
        "| writer | events/s (median) | min–max | × JSON lines |\n| --- | ---: | ---: | ---: |\n",
    );
    let mut results = serde_json::Map::new();
    // Variants left out with --only have no samples and no row.
    for (name, list) in samples.iter().filter(|(_, list)| !list.is_empty()) {
        let rates: Vec<f64> = list.iter().map(|s| s.events_per_s).collect();
        let med = median(&rates);
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        let ratio = if baseline > 0.0 { med / baseline } else { 0.0 };
        let label = VARIANTS
            .iter()
            .find(|(v, _)| v == name)
            .map_or(*name, |(_, label)| *label);
        table.push_str(&format!(
            "| {label} | {med:.0} | {min:.0}–{max:.0} | {ratio:.3} |\n"
        ));
        let mut entry = json!({
            "label": label,
            "events_per_s": rates,
            "median": med,
            "ratio_to_json_lines": ratio,
        });
        if name.starts_with("replay_") {
            entry["first_delivery_s"] = json!(median(
                &list.iter().map(|s| s.first_delivery_s).collect::<Vec<_>>()
            ));
        }
        results.insert((*name).to_owned(), entry);
    }
    let summary = json!({
        "events_per_round": n,
        "rounds": options.rounds,
        "event_json_bytes": one.json().len(),
        "variants": results,
    });
    std::fs::write(
        options.out.join("writers.json"),
        serde_json::to_vec_pretty(&summary)?,
    )?;
    std::fs::write(options.out.join("writers.md"), &table)?;
    println!("\n{table}");
    Ok(())
}
