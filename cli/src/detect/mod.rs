//! `oauth-audit detect`: the detection rules (`docs/detection.md`) over stored events or a
//! fleet's NATS JetStream stream.
//!
//! - `files.rs`: JSON-lines files and directories of rotated files, for back-testing and
//!   incident investigation; alerts on standard output.
//! - `nats.rs` (`--nats`): a durable pull consumer on the stream the NATS writers of many
//!   services publish to, so one detector sees the whole fleet; alerts back to the stream
//!   and to the configured writers. `recent.rs` is its memory of the event ids seen.
//!
//! Both print a summary on standard error. Exit codes: 0 when the input was read (alerts
//! or not), 2 on a usage or configuration error, 1 when the stream cannot be reached.

mod files;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "nats")]
mod recent;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use oauth_audit::detect::Detector;

use crate::config::{FileConfig, HumanDuration};
use crate::Failure;

/// Flags of `oauth-audit detect`.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// JSON-lines files (plain or gzip) and directories of rotated files (their .jsonl and
    /// .jsonl.gz files), their events merged in time order (each file in its own order):
    /// the events' own times drive every window.
    #[arg(
        value_name = "PATH",
        required_unless_present = "nats",
        conflicts_with = "nats"
    )]
    paths: Vec<PathBuf>,
    /// Groups remembered at most over all rules (the least recently used are forgotten)
    /// [config: detect.max_keys; default 100000].
    #[arg(long, value_name = "N")]
    max_keys: Option<usize>,
    /// TOML configuration file, the proxy's format: its [detect] section changes the rules;
    /// with --nats, its [[writer]] tables (and service_name, [queue]) receive the alerts.
    /// Other sections are ignored.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    fleet: NatsArgs,
}

/// Flags of `oauth-audit detect --nats`.
#[derive(Debug, Args)]
#[command(next_help_heading = "Fleet-wide detection on NATS JetStream")]
pub struct NatsArgs {
    /// Consume the JetStream stream that the NATS writers of a fleet publish to, instead of
    /// reading files, until SIGTERM or Ctrl-C (comma-separated or repeated servers of one
    /// cluster; nats://, tls:// or host:port).
    #[arg(long = "nats", value_name = "URL", value_delimiter = ',')]
    nats: Vec<String>,
    // Defaults applied in `nats.rs`: a flag given is one the user typed (`first_given`).
    /// The stream (the NATS writer's `stream`) [default: OAUTH_AUDIT].
    #[arg(long, value_name = "NAME", requires = "nats")]
    stream: Option<String>,
    /// Events are on `<PREFIX>.<kind>` (the NATS writer's `subject_prefix`); alerts are
    /// published on `<PREFIX>.SecurityAlert` [default: oauth.audit].
    #[arg(long, value_name = "PREFIX", requires = "nats")]
    subject_prefix: Option<String>,
    /// The durable consumer: its acknowledgements are where a restarted detector resumes.
    /// Detectors sharing a name share the work (and split the windows): give each its own
    /// [default: oauth-audit-detect].
    #[arg(long, value_name = "NAME", requires = "nats")]
    durable: Option<String>,
    /// Event ids remembered to skip an event delivered or published again (0: off)
    /// [default: 100000].
    #[arg(long, value_name = "N", requires = "nats")]
    dedupe_ids: Option<usize>,
    /// At start, how far back the stream is read again (without raising alerts) to rebuild
    /// the windows and cooldowns up to where the consumer stopped [default: the rules'
    /// longest timespan or cooldown; 0s: off].
    #[arg(long, value_name = "DURATION", value_parser = duration, requires = "nats")]
    replay: Option<HumanDuration>,
    /// Exit once no message arrived for this long (catch up on the backlog, then stop:
    /// for a periodic job instead of a service).
    #[arg(long, value_name = "DURATION", value_parser = duration, requires = "nats")]
    until_idle: Option<HumanDuration>,
    /// Authenticate with this .creds file (user JWT and NKey seed). Other credentials come
    /// from OAUTH_AUDIT_NATS_TOKEN, OAUTH_AUDIT_NATS_NKEY (a seed), or --nats-user with
    /// OAUTH_AUDIT_NATS_PASSWORD.
    #[arg(long, value_name = "FILE", requires = "nats")]
    nats_creds: Option<PathBuf>,
    /// Authenticate as this user; the password is read from OAUTH_AUDIT_NATS_PASSWORD.
    #[arg(long, value_name = "USER", requires = "nats")]
    nats_user: Option<String>,
    /// Trust the certificate authorities in this PEM file, and refuse servers that offer
    /// no TLS.
    #[arg(long, value_name = "FILE", requires = "nats")]
    nats_ca: Option<PathBuf>,
}

impl NatsArgs {
    /// The first flag given that only `--nats` reads.
    fn first_given(&self) -> Option<&'static str> {
        [
            ("--stream", self.stream.is_some()),
            ("--subject-prefix", self.subject_prefix.is_some()),
            ("--durable", self.durable.is_some()),
            ("--dedupe-ids", self.dedupe_ids.is_some()),
            ("--replay", self.replay.is_some()),
            ("--until-idle", self.until_idle.is_some()),
            ("--nats-creds", self.nats_creds.is_some()),
            ("--nats-user", self.nats_user.is_some()),
            ("--nats-ca", self.nats_ca.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

fn duration(value: &str) -> Result<HumanDuration, String> {
    HumanDuration::try_from(value.to_owned())
}

/// Runs `detect`.
pub fn run(args: DetectArgs) -> Result<(), Failure> {
    if args.fleet.nats.is_empty() {
        // clap's `requires` is not checked once PATHs are given.
        if let Some(flag) = args.fleet.first_given() {
            return Err(Failure::Usage(format!("{flag} applies only with --nats")));
        }
    }
    let file = args.config.as_deref().map(crate::setup::load).transpose()?;
    let detector = detector(file.as_ref(), args.max_keys)?;
    if args.fleet.nats.is_empty() {
        return files::run(&args.paths, detector);
    }
    fleet(args.fleet, detector, file)
}

#[cfg(feature = "nats")]
fn fleet(args: NatsArgs, detector: Detector, file: Option<FileConfig>) -> Result<(), Failure> {
    nats::run(args, detector, file)
}

#[cfg(not(feature = "nats"))]
fn fleet(_: NatsArgs, _: Detector, _: Option<FileConfig>) -> Result<(), Failure> {
    Err(Failure::Usage(
        "--nats: this oauth-audit was built without the `nats` feature".into(),
    ))
}

/// The rules of `[detect]` (the defaults without it), capped at `--max-keys` when given.
fn detector(file: Option<&FileConfig>, max_keys: Option<usize>) -> Result<Detector, Failure> {
    let mut detector = match file.and_then(|file| file.detect.as_ref()) {
        Some(section) => section
            .build()
            .map_err(|e| Failure::Config(e.to_string()))?,
        None => Detector::default(),
    };
    if let Some(keys) = max_keys {
        detector = detector.max_keys(keys);
    }
    Ok(detector)
}

/// ` (brute_force 2, credential_stuffing 1)`, or nothing without alerts.
fn by_rule(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let list: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
    format!(" ({})", list.join(", "))
}
