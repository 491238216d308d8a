//! `oauth-audit tail`: audit events as they come, one readable line each, from a JSON-lines
//! file, a directory of rotated files, or the NATS JetStream stream the NATS writers publish
//! to (docs/operations.md).
//!
//! - `follow.rs`: files and directories, followed through rotation and truncation.
//! - `nats.rs` (`--nats`): the stream, read without acknowledging anything.
//! - `filter.rs`: `--kind`, `--client`, `--subject`, `--outcome`.
//! - `print.rs`: the readable line (values escaped, colour by outcome and severity) or, with
//!   `--json`, the line as read, with the characters a terminal acts on as JSON escapes.
//!
//! Exit codes: 0 (also when standard output is closed: `tail ... | head`), 2 on a usage
//! error, 1 when the input cannot be read.

mod filter;
mod follow;
#[cfg(feature = "nats")]
mod nats;
mod print;

use std::path::PathBuf;

use anstream::ColorChoice;
use clap::{Args, ValueEnum};
use oauth_audit::event::EventKind;

use crate::Failure;
use filter::Filter;
use print::Printer;

/// Flags of `oauth-audit tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// A JSON-lines file, or a directory of rotated files (the rotating writer's:
    /// followed into each new file as it rotates).
    #[arg(
        value_name = "PATH",
        required_unless_present = "nats",
        conflicts_with = "nats"
    )]
    path: Option<PathBuf>,
    /// Show the last N events first (of those the filters let through).
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    lines: usize,
    /// Show the last events and exit instead of following.
    #[arg(long)]
    no_follow: bool,
    /// Only events of this kind (AccessTokenIssued, LoginFailed, SecurityAlert, ...);
    /// repeatable or comma-separated.
    #[arg(long = "kind", value_name = "KIND", value_delimiter = ',')]
    kinds: Vec<String>,
    /// Only events of this OAuth client (`actor.client_id`).
    #[arg(long, value_name = "ID")]
    client: Option<String>,
    /// Only events of this end user (`actor.subject`).
    #[arg(long, value_name = "SUBJECT")]
    subject: Option<String>,
    /// Only events with this outcome.
    #[arg(long, value_enum)]
    outcome: Option<Outcome>,
    /// Print the matching events as they were read (JSON lines), unchanged but for control
    /// and invisible characters, written as JSON escapes (the same value to a JSON reader).
    #[arg(long)]
    json: bool,
    /// Colour the lines by outcome and severity: auto (on a terminal, unless NO_COLOR is
    /// set), always, never.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = Colour::Auto)]
    color: Colour,
    #[command(flatten)]
    nats: TailNatsArgs,
}

/// Flags of `oauth-audit tail --nats`.
#[derive(Debug, Args)]
#[command(next_help_heading = "From NATS JetStream")]
pub struct TailNatsArgs {
    /// Read the JetStream stream the NATS writers publish to instead of a file
    /// (comma-separated or repeated servers of one cluster; nats://, tls:// or host:port).
    #[arg(long = "nats", value_name = "URL", value_delimiter = ',')]
    nats: Vec<String>,
    /// The stream (the NATS writer's `stream`) [default: OAUTH_AUDIT].
    #[arg(long, value_name = "NAME")]
    stream: Option<String>,
    /// Events are on `<PREFIX>.<kind>` (the NATS writer's `subject_prefix`)
    /// [default: oauth.audit].
    #[arg(long, value_name = "PREFIX")]
    subject_prefix: Option<String>,
    /// Authenticate with this .creds file. Other credentials come from
    /// OAUTH_AUDIT_NATS_TOKEN, OAUTH_AUDIT_NATS_NKEY, or --nats-user with
    /// OAUTH_AUDIT_NATS_PASSWORD.
    #[arg(long, value_name = "FILE")]
    nats_creds: Option<PathBuf>,
    /// Authenticate as this user; the password is read from OAUTH_AUDIT_NATS_PASSWORD.
    #[arg(long, value_name = "USER")]
    nats_user: Option<String>,
    /// Trust the certificate authorities in this PEM file, and refuse servers that offer
    /// no TLS.
    #[arg(long, value_name = "FILE")]
    nats_ca: Option<PathBuf>,
}

impl TailNatsArgs {
    /// The first flag given that only `--nats` reads.
    fn first_given(&self) -> Option<&'static str> {
        [
            ("--stream", self.stream.is_some()),
            ("--subject-prefix", self.subject_prefix.is_some()),
            ("--nats-creds", self.nats_creds.is_some()),
            ("--nats-user", self.nats_user.is_some()),
            ("--nats-ca", self.nats_ca.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }
}

/// `--outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Outcome {
    /// The request did what it asked for.
    Success,
    /// It was refused or failed.
    Failure,
    /// The response never completed.
    Unknown,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Colour {
    /// On a terminal, unless NO_COLOR is set (or CLICOLOR_FORCE forces it).
    Auto,
    /// Always, even into a pipe (and despite NO_COLOR).
    Always,
    /// Never.
    Never,
}

/// Runs `tail`.
pub fn run(args: TailArgs) -> Result<(), Failure> {
    if args.nats.nats.is_empty() {
        if let Some(flag) = args.nats.first_given() {
            return Err(Failure::Usage(format!("{flag} applies only with --nats")));
        }
    }
    for kind in &args.kinds {
        if EventKind::from_name(kind).is_none() {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(Failure::Usage(format!(
                "--kind {kind:?}: not an event kind (one of {})",
                known.join(", ")
            )));
        }
    }
    let filter = Filter {
        kinds: args.kinds,
        client: args.client,
        subject: args.subject,
        outcome: args.outcome.map(|o| {
            match o {
                Outcome::Success => "success",
                Outcome::Failure => "failure",
                Outcome::Unknown => "unknown",
            }
            .to_owned()
        }),
    };
    let colour = match args.color {
        Colour::Auto => ColorChoice::Auto,
        Colour::Always => ColorChoice::Always,
        Colour::Never => ColorChoice::Never,
    };
    let mut printer = Printer::stdout(args.json, colour, filter);
    let follow = !args.no_follow;
    match args.path {
        Some(path) => follow::run(&path, args.lines, follow, &mut printer),
        None => from_nats(args.nats, args.lines, follow, &mut printer),
    }
}

#[cfg(feature = "nats")]
fn from_nats(
    args: TailNatsArgs,
    lines: usize,
    follow: bool,
    printer: &mut Printer,
) -> Result<(), Failure> {
    let source = nats::Source {
        servers: args.nats,
        stream: args.stream,
        subject_prefix: args.subject_prefix,
        creds: args.nats_creds,
        user: args.nats_user,
        ca: args.nats_ca,
    };
    nats::run(source, lines, follow, printer)
}

#[cfg(not(feature = "nats"))]
fn from_nats(_: TailNatsArgs, _: usize, _: bool, _: &mut Printer) -> Result<(), Failure> {
    Err(Failure::Usage(
        "--nats: this oauth-audit was built without the `nats` feature".into(),
    ))
}
