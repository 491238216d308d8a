//! `oauth-audit spool status DIR`: what waits in a spool, read without taking it over (a
//! running writer keeps using it meanwhile).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use indicatif::HumanBytes;
use oauth_audit::delivery::{is_spool_dir, SpoolStatus};
use serde::Serialize;

use crate::Failure;

/// One spool and what waits in it.
#[derive(Debug, Serialize)]
pub struct Spool {
    /// The directory's name (the sink's, by convention), or its path when given itself.
    pub name: String,
    /// Its path.
    pub path: PathBuf,
    /// Events waiting.
    pub events: u64,
    /// Bytes of those events.
    pub bytes: u64,
    /// Bytes of the directory's files.
    pub disk_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// The oldest waiting event's time (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest: Option<String>,
    /// The newest waiting event's time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    /// Lines kept in quarantine.jsonl (not events).
    pub quarantined: u64,
    /// A process holds the spool's lock.
    pub in_use: bool,
}

impl Spool {
    fn read(name: String, path: PathBuf) -> Result<Spool, Failure> {
        let status = SpoolStatus::read(&path)
            .map_err(|e| Failure::Runtime(format!("cannot read {}: {e}", path.display())))?;
        Ok(Spool {
            name,
            events: status.events,
            bytes: status.bytes,
            disk_bytes: status.disk_bytes,
            segments: status.segments,
            oldest: status.oldest.map(|t| t.to_string()),
            newest: status.newest.map(|t| t.to_string()),
            quarantined: status.quarantined,
            in_use: status.in_use,
            path,
        })
    }
}

/// The spool in `dir`, or the spools in its subdirectories, in name order.
pub fn find(dir: &Path) -> Result<Vec<PathBuf>, Failure> {
    let unreadable = |e| Failure::Usage(format!("cannot read {}: {e}", dir.display()));
    if !std::fs::metadata(dir).map_err(unreadable)?.is_dir() {
        return Err(Failure::Usage(format!(
            "{} is not a directory (give a writer's spool_dir)",
            dir.display()
        )));
    }
    if is_spool_dir(dir) {
        return Ok(vec![dir.to_owned()]);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.is_dir() && is_spool_dir(&path) {
            found.push(path);
        }
    }
    if found.is_empty() {
        return Err(Failure::Usage(format!(
            "{}: no spool here, nor in its subdirectories (a spool directory has a `lock` \
             file: the writer creates it when it starts)",
            dir.display()
        )));
    }
    found.sort();
    Ok(found)
}

/// Runs `spool status`.
pub fn run(dir: &Path, json: bool) -> Result<(), Failure> {
    let paths = find(dir)?;
    let single = paths.len() == 1 && paths[0] == dir;
    let spools = paths
        .into_iter()
        .map(|path| {
            let name = if single {
                path.display().to_string()
            } else {
                path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                )
            };
            Spool::read(name, path)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, &serde_json::json!({ "spools": spools }))
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out))
    } else {
        spools
            .iter()
            .try_for_each(|spool| writeln!(out, "{}", describe(spool)))
            .and_then(|()| match spools.as_slice() {
                [_, _, ..] => writeln!(
                    out,
                    "total: {} event(s) waiting, {} on disk",
                    spools.iter().map(|s| s.events).sum::<u64>(),
                    HumanBytes(spools.iter().map(|s| s.disk_bytes).sum())
                ),
                _ => Ok(()),
            })
    };
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Runtime(format!("cannot write the status: {e}")))
        }
        _ => Ok(()),
    }
}

/// `nats: 120 event(s) waiting (48.20 KiB; 52.00 KiB on disk in 1 segment(s)), oldest ...`
fn describe(spool: &Spool) -> String {
    let mut line = format!(
        "{}: {} event(s) waiting ({}; {} on disk in {} segment(s))",
        spool.name,
        spool.events,
        HumanBytes(spool.bytes),
        HumanBytes(spool.disk_bytes),
        spool.segments
    );
    if let (Some(oldest), Some(newest)) = (&spool.oldest, &spool.newest) {
        line.push_str(&format!(", oldest {oldest}, newest {newest}"));
    }
    if spool.quarantined > 0 {
        line.push_str(&format!(
            "; {} line(s) set aside in quarantine.jsonl",
            spool.quarantined
        ));
    }
    line.push_str(if spool.in_use {
        "; in use by a running process"
    } else {
        "; not in use"
    });
    line
}
