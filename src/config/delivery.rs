//! Retries and the on-disk spool of a remote sink (`[writer.delivery]`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{AtLeastOne, HumanDuration};
use super::BuildError;
use crate::delivery::{Backend, Backoff, Delivery};

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
