//! Where a sink's undelivered events wait: the on-disk spool, or memory without a spool
//! directory. Both keep events in order and hand them out oldest first; a batch handed out
//! is forgotten only once the sink confirmed it ([`Backlog::ack`]).
//!
//! The two are a closed set chosen at build time, so they are an enum over two types, each
//! in its own file, rather than a trait object.

mod disk;
mod memory;
pub(crate) mod spool;
mod status;

use std::io;
use std::path::{Path, PathBuf};

pub(crate) use disk::DiskBacklog;
pub(crate) use memory::MemoryBacklog;
pub(crate) use spool::{Appended, ReadBatch};
pub use status::{is_spool_dir, SpoolStatus};

use super::EncodedEvent;
use crate::ConfigError;

const DEFAULT_MAX_SPOOL_BYTES: u64 = 1024 * 1024 * 1024;
const DEFAULT_MAX_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
const DEFAULT_SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Where a sink's undelivered events wait, and how much of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpoolSettings {
    /// A spool directory; without one, events wait in memory.
    pub(crate) dir: Option<PathBuf>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) segment_bytes: Option<u64>,
    /// `false`: fsync the spool when the queue runs idle rather than at every append.
    pub(crate) no_fsync: bool,
}

/// A sink's backlog.
#[derive(Debug)]
pub(crate) enum Backlog {
    /// Survives a restart.
    Disk(DiskBacklog),
    /// Lost at a restart (counted as dropped).
    Memory(MemoryBacklog),
}

impl Backlog {
    /// Checks the settings and opens the backlog: for a spool directory, creates and locks
    /// it and recovers what a previous run left (cuts a torn last line, resumes at the
    /// cursor). Blocking file I/O: call it at startup.
    pub(crate) fn open(sink: &str, settings: &SpoolSettings) -> Result<Backlog, ConfigError> {
        if settings.max_bytes == Some(0) {
            return Err(ConfigError::invalid(
                "max_spool_bytes",
                "must be positive (e.g. 1 GiB)",
            ));
        }
        if settings.segment_bytes == Some(0) {
            return Err(ConfigError::invalid(
                "spool_segment_bytes",
                "must be positive (e.g. 16 MiB)",
            ));
        }
        let Some(dir) = settings.dir.clone() else {
            return Ok(Backlog::Memory(MemoryBacklog::new(
                settings.max_bytes.unwrap_or(DEFAULT_MAX_MEMORY_BYTES),
            )));
        };
        let max_bytes = settings.max_bytes.unwrap_or(DEFAULT_MAX_SPOOL_BYTES);
        let segment_bytes = settings
            .segment_bytes
            .unwrap_or_else(|| DEFAULT_SEGMENT_BYTES.min((max_bytes / 8).max(4096)));
        let (spool, recovered) = spool::Spool::open(spool::SpoolConfig {
            dir: dir.clone(),
            max_bytes,
            segment_bytes,
            fsync: !settings.no_fsync,
        })
        .map_err(|err| ConfigError::invalid("spool_dir", err.to_string()))?;
        if recovered.torn_bytes > 0 {
            tracing::warn!(
                target: "oauth_audit",
                writer = %sink,
                spool = %dir.display(),
                bytes = recovered.torn_bytes,
                "audit spool ended in a torn line (a crash during a write); cut off"
            );
        }
        if !spool.is_empty() {
            tracing::info!(
                target: "oauth_audit",
                writer = %sink,
                spool = %dir.display(),
                events = spool.events(),
                "audit spool holds events from a previous run; replaying them first"
            );
        }
        Ok(Backlog::Disk(DiskBacklog::new(spool, dir)))
    }

    pub(crate) fn dir(&self) -> Option<&Path> {
        match self {
            Backlog::Disk(disk) => Some(disk.dir()),
            Backlog::Memory(_) => None,
        }
    }

    pub(crate) fn is_disk(&self) -> bool {
        matches!(self, Backlog::Disk(_))
    }

    /// Whether nothing waits for confirmation.
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Backlog::Disk(disk) => disk.is_empty(),
            Backlog::Memory(memory) => memory.is_empty(),
        }
    }

    /// Events and bytes waiting.
    pub(crate) fn counts(&self) -> (u64, u64) {
        match self {
            Backlog::Disk(disk) => disk.counts(),
            Backlog::Memory(memory) => memory.counts(),
        }
    }

    /// Appends in order; what does not fit is not taken (see [`Appended`]).
    pub(crate) async fn append(&mut self, events: Vec<EncodedEvent>) -> Appended {
        match self {
            Backlog::Disk(disk) => disk.append(events).await,
            Backlog::Memory(memory) => memory.append(events),
        }
    }

    /// The oldest events not handed out yet.
    pub(crate) async fn read_batch(&mut self, max_events: usize) -> io::Result<ReadBatch> {
        match self {
            Backlog::Disk(disk) => disk.read_batch(max_events).await,
            Backlog::Memory(memory) => Ok(memory.read_batch(max_events)),
        }
    }

    /// Forgets a batch the sink confirmed.
    pub(crate) async fn ack(&mut self, batch: &ReadBatch) -> io::Result<()> {
        match self {
            Backlog::Disk(disk) => disk.ack(batch).await,
            Backlog::Memory(memory) => {
                memory.ack(batch);
                Ok(())
            }
        }
    }

    /// Makes appended events durable (a disk spool without fsync on every append).
    pub(crate) async fn sync(&self) -> io::Result<()> {
        match self {
            Backlog::Disk(disk) => disk.sync().await,
            Backlog::Memory(_) => Ok(()),
        }
    }
}
