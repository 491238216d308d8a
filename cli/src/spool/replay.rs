//! `oauth-audit spool replay DIR --config FILE`: drains a spool by hand, through the same
//! delivery engine a running writer uses (in order, retried with the writer's backoff, each
//! event sent as the bytes that were spooled), then stops.
//!
//! The writer is the configuration's `[[writer]]` whose spool directory is DIR (or, for a
//! directory of spools, every writer whose spool is in it), built alone: no chaining, no
//! detection, no other writer. Building it takes the spool's lock, so the replay is refused
//! while a running process holds it, and a process started meanwhile finds the spool in use.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oauth_audit::config::{AuditorConfig, SinkConfig};
use oauth_audit::delivery::SpoolStatus;
use serde::Serialize;

use super::status;
use crate::config::FileConfig;
use crate::Failure;

/// How often the writer's counters are looked at.
const CHECK: Duration = Duration::from_millis(100);

/// What became of one spool.
#[derive(Debug, Serialize)]
struct Replayed {
    /// The writer's `type`.
    writer: &'static str,
    spool: PathBuf,
    /// Events in the spool at the start.
    waiting: u64,
    /// Events the destination confirmed.
    delivered: u64,
    /// Events the destination refused for good (dropped, and reported as
    /// `AuditEventsDropped`).
    rejected: u64,
    /// Events still in the spool.
    left: u64,
}

/// Runs `spool replay`.
pub fn run(dir: &Path, config: &Path, give_up_after: Duration, json: bool) -> Result<(), Failure> {
    let spools = status::find(dir)?;
    let file = crate::setup::load(config)?;
    let writers = matching(&file, &spools, config)?;
    for (_, spool) in &writers {
        refuse_in_use(spool)?;
    }
    let unnamed = unnamed(&spools, &writers)?;
    let waiting: Vec<u64> = writers
        .iter()
        .map(|(_, spool)| {
            SpoolStatus::read(spool)
                .map(|s| s.events)
                .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", spool.display())))
        })
        .collect::<Result<_, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the Tokio runtime: {e}")))?;
    let replayed = runtime.block_on(drain(&file, &writers, &waiting, give_up_after))?;
    print(&replayed, json)?;
    for (spool, events) in &unnamed {
        eprintln!(
            "oauth-audit: {}: no [[writer]] of {} keeps its spool here: its {events} \
             event(s) were not replayed and stay in it",
            spool.display(),
            config.display()
        );
    }
    let left: u64 = replayed.iter().map(|r| r.left).sum();
    if left > 0 {
        return Err(Failure::Runtime(format!(
            "{left} event(s) not delivered (none for --give-up-after {give_up_after:?}, or \
             stopped); they stay in the spool (is the destination up?)"
        )));
    }
    let not_replayed: u64 = unnamed.iter().map(|(_, events)| events).sum();
    if not_replayed > 0 {
        return Err(Failure::Runtime(format!(
            "{not_replayed} event(s) wait in spools no [[writer]] of {} names (above): \
             replay each with a configuration that names it",
            config.display()
        )));
    }
    Ok(())
}

/// The writers of `file` whose spool is one of `spools`, with that spool.
fn matching(
    file: &FileConfig,
    spools: &[PathBuf],
    config: &Path,
) -> Result<Vec<(SinkConfig, PathBuf)>, Failure> {
    let canonical = |path: &Path| std::fs::canonicalize(path).ok();
    let spools: Vec<(PathBuf, PathBuf)> = spools
        .iter()
        .filter_map(|spool| canonical(spool).map(|c| (c, spool.clone())))
        .collect();
    let mut found = Vec::new();
    let mut named = Vec::new();
    for writer in &file.writers {
        let writer = writer.get_ref();
        let Some(dir) = writer.spool_dir() else {
            continue;
        };
        named.push(format!("{} ({})", dir.display(), writer.kind()));
        if let Some((_, spool)) =
            canonical(dir).and_then(|dir| spools.iter().find(|(c, _)| *c == dir))
        {
            found.push((writer.clone(), spool.clone()));
        }
    }
    if found.is_empty() {
        let list = if named.is_empty() {
            "none has a spool_dir".to_owned()
        } else {
            format!("their spool directories: {}", named.join(", "))
        };
        return Err(Failure::Usage(format!(
            "no [[writer]] of {} keeps its spool in {} ({list})",
            config.display(),
            spools
                .first()
                .map_or_else(String::new, |(_, s)| s.display().to_string())
        )));
    }
    Ok(found)
}

/// The spools of `spools` no writer replays, with the events waiting in them (only those
/// holding any): in a directory of spools, a writer since removed or renamed.
fn unnamed(
    spools: &[PathBuf],
    writers: &[(SinkConfig, PathBuf)],
) -> Result<Vec<(PathBuf, u64)>, Failure> {
    let mut unnamed = Vec::new();
    for spool in spools {
        if writers.iter().any(|(_, named)| named == spool) {
            continue;
        }
        let events = SpoolStatus::read(spool)
            .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", spool.display())))?
            .events;
        if events > 0 {
            unnamed.push((spool.clone(), events));
        }
    }
    Ok(unnamed)
}

fn refuse_in_use(spool: &Path) -> Result<(), Failure> {
    let status = SpoolStatus::read(spool)
        .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", spool.display())))?;
    if status.in_use {
        return Err(in_use(spool));
    }
    Ok(())
}

fn in_use(spool: &Path) -> Failure {
    Failure::Usage(format!(
        "{} is in use by a running process (its writer replays it by itself); stop that \
         process first to replay by hand",
        spool.display()
    ))
}

/// Builds the writers and waits until their spools are empty, or no event was delivered
/// for `give_up_after`, or SIGTERM or Ctrl-C.
async fn drain(
    file: &FileConfig,
    writers: &[(SinkConfig, PathBuf)],
    waiting: &[u64],
    give_up_after: Duration,
) -> Result<Vec<Replayed>, Failure> {
    let config = AuditorConfig {
        service_name: file.service_name.clone(),
        service_instance: file.service_instance.clone(),
        queue: file.queue,
        writers: writers.iter().map(|(w, _)| w.clone()).collect(),
        chain: None,
        geoip: None,
        detect: None,
    };
    let auditor = config.build().await.map_err(|e| {
        let message = e.to_string();
        if !message.contains("in use by another process") {
            return Failure::Config(message);
        }
        // Taken between the check and now.
        let named = writers.iter().find(|(writer, _)| {
            writer
                .spool_dir()
                .is_some_and(|dir| message.contains(&dir.display().to_string()))
        });
        match named {
            Some((_, spool)) => in_use(spool),
            None => Failure::Usage(message),
        }
    })?;
    let stop = crate::setup::shutdown_signal();
    tokio::pin!(stop);
    let mut left: u64 = waiting.iter().sum();
    let mut progress = Instant::now();
    loop {
        let now: u64 = auditor.stats().writers.iter().map(|w| w.spooled).sum();
        if now < left {
            progress = Instant::now();
        }
        left = now;
        if left == 0 || progress.elapsed() >= give_up_after {
            break;
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(CHECK) => {}
        }
    }
    auditor.shutdown().await;
    let stats = auditor.stats();
    Ok(writers
        .iter()
        .zip(waiting)
        .zip(stats.writers)
        .map(|(((writer, spool), waiting), stats)| Replayed {
            writer: writer.kind(),
            spool: spool.clone(),
            waiting: *waiting,
            delivered: stats.written,
            rejected: stats.dropped,
            left: stats.spooled,
        })
        .collect())
}

fn print(replayed: &[Replayed], json: bool) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "replayed": replayed }))
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        replayed.iter().try_for_each(|r| {
            writeln!(
                out,
                "{} ({} writer): {} event(s) waiting, {} delivered, {} rejected by the destination, {} left in the spool",
                r.spool.display(),
                r.writer,
                r.waiting,
                r.delivered,
                r.rejected,
                r.left
            )
        })
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Runtime(format!("cannot write the outcome: {e}")))
        }
        _ => Ok(()),
    }
}
