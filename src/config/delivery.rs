//! Retries and the on-disk spool of a remote sink (`[writer.delivery]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{AtLeastOne, HumanDuration};
use super::BuildError;
use crate::delivery::{Backend, Backoff, Delivery};
use crate::writer::WriterOptions;

/// `[writer.delivery]`: how a remote sink retries, and where events wait while its backend
/// is down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Where events wait while the backend is down; in memory without it.
    pub spool_dir: Option<PathBuf>,
    /// The most bytes of unconfirmed events kept.
    pub max_spool_bytes: Option<AtLeastOne>,
    /// fsync every spool append.
    pub spool_fsync: Option<bool>,
    /// How long one send may take.
    pub send_timeout: Option<HumanDuration>,
    /// The most events sent at once.
    pub max_batch: Option<AtLeastOne>,
    /// Attempts of a batch without a spool before it is dropped and reported.
    pub memory_retries: Option<u32>,
    /// First wait between attempts (100ms).
    pub retry_initial: Option<HumanDuration>,
    /// Longest wait between attempts (30s).
    pub retry_max: Option<HumanDuration>,
}

impl DeliveryConfig {
    /// Wraps `backend` into the delivery engine. Opens (creates and locks) the spool
    /// directory, so a directory that cannot be used is reported here; `sink` names the
    /// sink in errors.
    pub fn build<B: Backend>(&self, backend: B, sink: &str) -> Result<Delivery<B>, BuildError> {
        let mut builder = Delivery::builder(backend);
        if let Some(dir) = &self.spool_dir {
            builder = builder.spool_dir(dir);
        }
        if let Some(bytes) = self.max_spool_bytes {
            builder = builder.max_spool_bytes(bytes.0);
        }
        if let Some(fsync) = self.spool_fsync {
            builder = builder.spool_fsync(fsync);
        }
        if let Some(timeout) = self.send_timeout {
            builder = builder.send_timeout(timeout.0);
        }
        if let Some(events) = self.max_batch {
            builder = builder.max_batch(events.get());
        }
        if let Some(retries) = self.memory_retries {
            builder = builder.memory_retries(retries);
        }
        if self.retry_initial.is_some() || self.retry_max.is_some() {
            let initial = self
                .retry_initial
                .map_or(Duration::from_millis(100), |d| d.0);
            let max = self.retry_max.map_or(Duration::from_secs(30), |d| d.0);
            builder = builder.backoff(Backoff::exponential(initial, max));
        }
        builder
            .build()
            .map_err(|e| BuildError::invalid(format!("writer ({sink}) delivery"), e))
    }
}

/// `[writer.retry]` of a file sink: retries of a batch the file failed (a full volume, a
/// network mount gone), and where events wait meanwhile. Without this table a failed batch
/// is dropped and reported.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterRetryConfig {
    /// Where events wait while the file fails (best on another volume); in memory without
    /// it (16 MiB, 10 attempts).
    pub spool_dir: Option<PathBuf>,
    /// The most bytes of events kept waiting.
    pub max_spool_bytes: Option<AtLeastOne>,
    /// First wait between attempts (100ms).
    pub retry_initial: Option<HumanDuration>,
    /// Longest wait between attempts (30s).
    pub retry_max: Option<HumanDuration>,
}

impl WriterRetryConfig {
    /// Adds the retry policy and spool to a writer's options.
    pub fn apply(&self, options: WriterOptions) -> WriterOptions {
        let initial = self
            .retry_initial
            .map_or(Duration::from_millis(100), |d| d.0);
        let max = self.retry_max.map_or(Duration::from_secs(30), |d| d.0);
        let mut options = options.retry(Backoff::exponential(initial, max));
        if let Some(dir) = &self.spool_dir {
            options = options.spool_dir(dir);
        }
        if let Some(bytes) = self.max_spool_bytes {
            options = options.max_spool_bytes(bytes.0);
        }
        options
    }
}
