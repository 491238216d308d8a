//! The on-disk backlog: a [`Spool`] driven from the sink's task, its blocking file I/O on
//! Tokio's blocking pool.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::spool::{Appended, ReadBatch, Spool};
use crate::sink::EncodedEvent;

/// A replay batch stops growing after this many bytes.
const MAX_REPLAY_READ: u64 = 4 * 1024 * 1024;

/// A locked spool directory.
#[derive(Debug)]
pub(crate) struct DiskBacklog {
    spool: Arc<Mutex<Spool>>,
    dir: PathBuf,
}

impl DiskBacklog {
    pub(crate) fn new(spool: Spool, dir: PathBuf) -> Self {
        DiskBacklog {
            spool: Arc::new(Mutex::new(spool)),
            dir,
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.spool).is_empty()
    }

    pub(crate) fn counts(&self) -> (u64, u64) {
        let spool = lock(&self.spool);
        (spool.events(), spool.bytes())
    }

    pub(crate) async fn append(&mut self, events: Vec<EncodedEvent>) -> Appended {
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || lock(&spool).append(&events))
            .await
            .unwrap_or_else(|join| Appended {
                count: 0,
                error: Some(io::Error::other(join)),
            })
    }

    pub(crate) async fn read_batch(&mut self, max_events: usize) -> io::Result<ReadBatch> {
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || lock(&spool).read_batch(max_events, MAX_REPLAY_READ))
            .await
            .map_err(io::Error::other)?
    }

    pub(crate) async fn ack(&mut self, batch: &ReadBatch) -> io::Result<()> {
        let spool = self.spool.clone();
        let confirmed = ReadBatch {
            events: Vec::new(),
            lines: batch.lines,
            bytes: batch.bytes,
            corrupt: batch.corrupt,
            corrupt_not_kept: batch.corrupt_not_kept,
            end: batch.end,
        };
        tokio::task::spawn_blocking(move || lock(&spool).ack(&confirmed))
            .await
            .map_err(io::Error::other)?
    }

    pub(crate) async fn sync(&self) -> io::Result<()> {
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || lock(&spool).sync())
            .await
            .map_err(io::Error::other)?
    }
}

/// Only the sink's own task uses the spool, one operation at a time: the lock is never
/// contended, and a panic inside an operation leaves a spool that is still consistent on
/// disk.
fn lock(spool: &Mutex<Spool>) -> MutexGuard<'_, Spool> {
    spool.lock().unwrap_or_else(PoisonError::into_inner)
}
