//! `oauth-audit`: the oauth-audit layer as a sidecar. `oauth-audit proxy` is an auditing
//! reverse proxy for an authorization server or API that cannot take a Rust layer;
//! `oauth-audit check-config` validates a configuration file; `oauth-audit verify` checks a
//! chained trail and `oauth-audit keygen` makes the key pair that signs its checkpoints;
//! `oauth-audit detect` runs the detection rules over stored events, or over the NATS
//! JetStream stream a fleet's writers publish to (`--nats`); `oauth-audit tail` follows
//! events as they are written; `oauth-audit spool` looks into a writer's spool and drains it
//! by hand; `oauth-audit es-template` prints the Elasticsearch / OpenSearch index template of
//! an event format.
//!
//! Exit codes: 0 success, 2 usage or configuration error, 1 runtime failure (for `verify`:
//! the trail has problems).
//!
//! ```text
//! oauth-audit proxy --listen 127.0.0.1:8080 --upstream http://127.0.0.1:3000 --out audit.jsonl
//! oauth-audit check-config examples/oauth-audit.toml
//! oauth-audit keygen --name orders-api --out audit
//! oauth-audit verify /var/log/oauth-audit --key audit.pub --checkpoints checkpoints.jsonl
//! oauth-audit detect /var/log/oauth-audit > alerts.jsonl
//! oauth-audit detect --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 --config detect.toml
//! oauth-audit tail /var/log/oauth-audit --outcome failure
//! oauth-audit spool status /var/lib/oauth-audit/spool
//! oauth-audit spool replay /var/lib/oauth-audit/spool/nats --config oauth-audit.toml
//! oauth-audit es-template --format ecs --index oauth-audit > template.json
//! ```
//!
//! Configuration: `docs/config.md`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod config;
mod detect;
mod es_template;
mod introspect;
mod keygen;
#[cfg(feature = "nats")]
mod nats_client;
mod proxy;
mod report;
mod routes;
mod setup;
mod spool;
#[cfg(feature = "postgres")]
mod table;
mod tail;
mod verify;

/// The allocator of the whole process (the `mimalloc` feature, on by default): the proxy
/// allocates and frees on every request, which mimalloc serves faster than glibc's malloc.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use config::{Cidr, ClientIpHeader, ListenAddr};

/// An auditing reverse proxy for OAuth 2.0 traffic: put it in front of an authorization
/// server or an API and every request becomes a structured audit event.
#[derive(Debug, Parser)]
#[command(name = "oauth-audit", version, about, long_about = None)]
struct Cli {
    /// The format of oauth-audit's own log lines on standard error: `text` for people,
    /// `json` (one object per line: `timestamp`, `level`, `target`, `message` and the
    /// line's fields) for a log pipeline.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "OAUTH_AUDIT_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Forward every request to an upstream and audit it.
    ///
    /// Settings come from, in order of precedence: flags, OAUTH_AUDIT_* environment
    /// variables, the configuration file, defaults (docs/config.md). Stops gracefully on
    /// SIGTERM or Ctrl-C, writing every event accepted so far.
    Proxy(Box<ProxyArgs>),
    /// Validate a configuration file (and OAUTH_AUDIT_* variables) without starting.
    CheckConfig {
        /// The TOML file.
        file: PathBuf,
    },
    /// Check a chained trail (files, rotated directories, a PostgreSQL table): every hash,
    /// link and signature. Exit 0 when nothing is wrong, 1 when something is, 2 on a usage
    /// error (docs/integrity.md).
    Verify(verify::VerifyArgs),
    /// Write a new key pair for signing checkpoints: PREFIX.key (mode 0600) and PREFIX.pub.
    Keygen(keygen::KeygenArgs),
    /// Run the detection rules over stored events (files, rotated directories), or with
    /// --nats over a fleet's NATS JetStream stream until SIGTERM or Ctrl-C: alerts as JSON
    /// lines on standard output (with --nats: to the stream and the configured writers), a
    /// summary on standard error (docs/detection.md).
    Detect(detect::DetectArgs),
    /// Write a report of stored events (files, rotated directories): an overview, an
    /// access review, scope usage and unused permissions, the tokens' lifecycle, failures
    /// and anomalies; as one HTML page, JSON, Markdown or CSV (docs/reports.md).
    Report(report::ReportArgs),
    /// Follow audit events as they are written (a JSON-lines file, a directory of rotated
    /// files, or with --nats a NATS JetStream stream): one readable line per event, or the
    /// events themselves with --json (docs/operations.md).
    Tail(tail::TailArgs),
    /// Look into a writer's spool directory, or drain it by hand into the writer's
    /// destination (docs/operations.md).
    #[command(subcommand)]
    Spool(spool::SpoolCommand),
    /// Print the Elasticsearch / OpenSearch index template (mappings) of an event format,
    /// to install with `PUT _index_template/NAME` (docs/formats.md).
    EsTemplate(es_template::EsTemplateArgs),
}

/// Flags of `oauth-audit proxy`.
#[derive(Debug, Args)]
struct ProxyArgs {
    /// Address to listen on (IP:PORT) [config: proxy.listen].
    #[arg(long, value_name = "ADDR", env = "OAUTH_AUDIT_LISTEN", value_parser = parse::<ListenAddr>)]
    listen: Option<ListenAddr>,
    /// Server to forward to, an http:// or https:// URL [config: proxy.upstream].
    // Checked after parsing: clap would quote a bad URL, query and all, in its message.
    #[arg(long, value_name = "URL", env = "OAUTH_AUDIT_UPSTREAM")]
    upstream: Option<String>,
    /// TOML configuration file.
    #[arg(long, value_name = "FILE", env = "OAUTH_AUDIT_CONFIG")]
    config: Option<PathBuf>,
    /// Write events as JSON lines to FILE ("-" for standard output), instead of the
    /// configured writers.
    #[arg(long, value_name = "FILE", env = "OAUTH_AUDIT_OUT")]
    out: Option<PathBuf>,
    /// Verify bearer JWTs against this JWKS URL [config: jwt.jwks_url].
    #[arg(long, value_name = "URL", env = "OAUTH_AUDIT_JWKS_URL")]
    jwks_url: Option<String>,
    /// The authorization server's issuer: its metadata (/.well-known/openid-configuration,
    /// else RFC 8414's) gives the endpoint paths, JWKS URL and issuer the configuration does
    /// not set [config: endpoints.issuer_url].
    #[arg(long, value_name = "URL", env = "OAUTH_AUDIT_ISSUER_URL")]
    issuer_url: Option<String>,
    /// Accepted token issuer; repeatable, replaces jwt.issuers.
    #[arg(
        long = "issuer",
        value_name = "ISS",
        env = "OAUTH_AUDIT_ISSUERS",
        value_delimiter = ','
    )]
    issuers: Vec<String>,
    /// Accepted token audience; repeatable, replaces jwt.audiences.
    #[arg(
        long = "audience",
        value_name = "AUD",
        env = "OAUTH_AUDIT_AUDIENCES",
        value_delimiter = ','
    )]
    audiences: Vec<String>,
    /// Proxy in front of this one whose X-Forwarded-For/Forwarded are believed (IP or CIDR);
    /// repeatable, replaces proxy.trusted_proxies.
    #[arg(long = "trusted-proxy", value_name = "CIDR", env = "OAUTH_AUDIT_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse::<Cidr>)]
    trusted_proxies: Vec<Cidr>,
    /// The header those proxies write the client's address into: x-forwarded-for (default),
    /// forwarded, or a single-value header such as x-real-ip [config: proxy.client_ip_header].
    #[arg(long, value_name = "HEADER", env = "OAUTH_AUDIT_CLIENT_IP_HEADER", value_parser = parse::<ClientIpHeader>)]
    client_ip_header: Option<ClientIpHeader>,
    /// service.name of every event [config: service_name].
    #[arg(long, value_name = "NAME", env = "OAUTH_AUDIT_SERVICE_NAME")]
    service_name: Option<String>,
    /// Serve Prometheus metrics (GET /metrics) on this address (IP:PORT)
    /// [config: proxy.metrics_listen].
    #[arg(long, value_name = "ADDR", env = "OAUTH_AUDIT_METRICS_LISTEN", value_parser = parse::<ListenAddr>)]
    metrics_listen: Option<ListenAddr>,
}

fn parse<T: TryFrom<String, Error = String>>(value: &str) -> Result<T, String> {
    T::try_from(value.to_owned())
}

/// How the process ends.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Usage or configuration: exit code 2.
    #[error("{0}")]
    Config(String),
    /// Anything at run time: exit code 1.
    #[error("{0}")]
    Runtime(String),
    /// A command used wrongly (no input, a file in the way): exit code 2.
    #[error("{0}")]
    Usage(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::CheckConfig { file } => setup::check_config(&file).map(|summary| {
            println!("{}: ok ({summary})", file.display());
        }),
        Command::Proxy(args) => run_proxy(*args),
        Command::Keygen(args) => keygen::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Report(args) => report::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Spool(command) => spool::run(command),
        Command::EsTemplate(args) => es_template::run(args),
        Command::Verify(args) => match verify::run(args) {
            Ok(code) => return code,
            Err(failure) => Err(failure),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(message)) => {
            eprintln!("oauth-audit: configuration error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("oauth-audit: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("oauth-audit: {message}");
            ExitCode::from(2)
        }
    }
}

fn run_proxy(args: ProxyArgs) -> Result<(), Failure> {
    let settings = setup::Settings::resolve(setup::Flags {
        listen: args.listen,
        upstream: checked("--upstream", args.upstream)?,
        config: args.config,
        out: args.out,
        jwks_url: checked("--jwks-url", args.jwks_url)?,
        issuer_url: checked("--issuer-url", args.issuer_url)?,
        issuers: args.issuers,
        audiences: args.audiences,
        trusted_proxies: args.trusted_proxies,
        client_ip_header: args.client_ip_header,
        service_name: args.service_name,
        metrics_listen: args.metrics_listen,
    })?;
    let workers = worker_threads(
        std::env::var_os(WORKER_THREADS).as_deref(),
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    )?;
    // One worker: the current-thread scheduler does the same work as the multi-thread one
    // without its machinery for several (parking an idle worker, the shared queue, the
    // average poll time it tunes itself by): about 3% fewer instructions per proxied request
    // (docs/benchmarks.md). Blocking work (file writes) goes to the blocking pool either way.
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    let runtime = builder
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the Tokio runtime: {e}")))?;
    runtime.block_on(setup::run(settings))
}

/// Tokio's variable for the number of worker threads, which the proxy reads as Tokio does.
const WORKER_THREADS: &str = "TOKIO_WORKER_THREADS";

/// How many threads serve the proxy: `TOKIO_WORKER_THREADS` when set, else the CPUs the
/// process may run on (`available`: its affinity and cgroup quota count). Tokio would panic
/// on a value that is not a positive integer; here it is a configuration error.
fn worker_threads(variable: Option<&std::ffi::OsStr>, available: usize) -> Result<usize, Failure> {
    // Empty counts as unset, as for the proxy's own variables.
    let Some(value) = variable.filter(|v| !v.is_empty()) else {
        return Ok(available.max(1));
    };
    value
        .to_str()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            Failure::Config(format!(
                "{WORKER_THREADS}: {:?} is not a positive number of worker threads",
                value.to_string_lossy()
            ))
        })
}

/// A URL flag's value, checked; the message shows the URL without credentials or query.
fn checked<T: TryFrom<String, Error = String>>(
    flag: &str,
    value: Option<String>,
) -> Result<Option<T>, Failure> {
    value
        .map(T::try_from)
        .transpose()
        .map_err(|e| Failure::Config(format!("{flag}: {e}")))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OAUTH_AUDIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::{worker_threads, Failure};

    #[test]
    fn worker_threads_come_from_tokios_variable_or_the_cpus_available() {
        assert_eq!(worker_threads(None, 4).ok(), Some(4));
        assert_eq!(worker_threads(None, 1).ok(), Some(1));
        assert_eq!(worker_threads(Some(OsStr::new("1")), 8).ok(), Some(1));
        assert_eq!(worker_threads(Some(OsStr::new(" 3 ")), 1).ok(), Some(3));
        assert_eq!(worker_threads(Some(OsStr::new("")), 2).ok(), Some(2));
        for bad in ["0", "-1", "two", " ", "1.5"] {
            match worker_threads(Some(OsStr::new(bad)), 2) {
                Err(Failure::Config(message)) => {
                    assert!(message.starts_with("TOKIO_WORKER_THREADS: "), "{message}");
                    assert!(message.contains(&format!("{bad:?}")), "{message}");
                }
                _ => panic!("{bad:?} accepted"),
            }
        }
    }
}
