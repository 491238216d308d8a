//! `oauth-audit spool`: a writer's spool directory (its `spool_dir`, where events wait while
//! the destination is down) seen from outside, and drained by hand (docs/operations.md).
//!
//! - `status.rs`: what waits, how old it is, how much disk it takes, whether a process holds
//!   the spool; for one spool or every spool in a directory.
//! - `replay.rs`: builds the writer the configuration gives that spool, lets the delivery
//!   engine send what waits, and stops once the spool is empty. Refused while a running
//!   process holds the spool's lock.
//!
//! Exit codes: 0 done, 2 on a usage error (no spool there, the spool in use, a bad
//! configuration), 1 when the destination did not take everything or events wait in a spool
//! of DIR that no writer of the configuration names.

mod replay;
mod status;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::config::HumanDuration;
use crate::Failure;

/// `oauth-audit spool ...`.
#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// What waits in a spool directory (or in each spool directory inside DIR): events,
    /// the oldest and newest event's time, bytes, and whether a process is using it.
    Status(StatusArgs),
    /// Deliver what waits in a spool directory to its writer's destination, as the
    /// configuration describes it, then stop. Refused while a process uses the spool.
    Replay(ReplayArgs),
}

/// Flags of `oauth-audit spool status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A spool directory (a writer's spool_dir), or a directory holding several.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print the status as JSON.
    #[arg(long)]
    json: bool,
}

/// Flags of `oauth-audit spool replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The spool directory (a writer's spool_dir), or a directory holding several: every
    /// writer whose spool is in it is replayed.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The TOML configuration (the proxy's): the [[writer]] whose spool_dir is DIR is the
    /// destination, with its settings and OAUTH_AUDIT_* / *_env secrets.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Stop when no event was delivered for this long (the destination still down); what
    /// is left stays in the spool.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration)]
    give_up_after: HumanDuration,
    /// Print the outcome as JSON.
    #[arg(long)]
    json: bool,
}

fn duration(value: &str) -> Result<HumanDuration, String> {
    HumanDuration::try_from(value.to_owned())
}

/// Runs `spool status` or `spool replay`.
pub fn run(command: SpoolCommand) -> Result<(), Failure> {
    match command {
        SpoolCommand::Status(args) => status::run(&args.dir, args.json),
        SpoolCommand::Replay(args) => {
            replay::run(&args.dir, &args.config, args.give_up_after.0, args.json)
        }
    }
}
