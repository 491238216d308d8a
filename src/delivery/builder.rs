//! Configuring delivery to a backend.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::Delivery;
use crate::sink::backlog::Backlog;
use crate::sink::deliver::{Deliverer, Settings};
use crate::sink::{Backend, BackendSink, Backoff, DeliveryStats, SpoolSettings};
use crate::ConfigError;

/// Configures a [`Delivery`]; made by [`Delivery::builder`].
///
/// ```
/// use oauth_audit::delivery::{Backend, BackendError, Delivery, EncodedEvent};
///
/// struct Null;
/// impl Backend for Null {
///     fn name(&self) -> &str { "null" }
///     async fn send(&mut self, _: &[EncodedEvent]) -> Result<(), BackendError> { Ok(()) }
/// }
///
/// let dir = std::env::temp_dir().join(format!("audit-spool-doc-{}", std::process::id()));
/// let delivery = Delivery::builder(Null)
///     .spool_dir(&dir)
///     .max_spool_bytes(64 * 1024 * 1024)
///     .build()?;
/// # drop(delivery);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), oauth_audit::ConfigError>(())
/// ```
#[must_use]
pub struct DeliveryBuilder<B> {
    pub(super) backend: B,
    pub(super) spool: SpoolSettings,
    pub(super) settings: Settings,
}

impl<B> fmt::Debug for DeliveryBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeliveryBuilder")
            .field("spool", &self.spool)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> DeliveryBuilder<B> {
    /// Where events wait on disk while the backend is down (created if missing, locked
    /// while in use). Without it they wait in memory, are retried a bounded number of
    /// times ([`memory_retries`](Self::memory_retries)) and are lost at a restart.
    pub fn spool_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.spool.dir = Some(dir.into());
        self
    }

    /// The most bytes of unconfirmed events kept (default 1 GiB on disk, 16 MiB in
    /// memory). Events that do not fit are dropped and reported.
    pub fn max_spool_bytes(mut self, bytes: u64) -> Self {
        self.spool.max_bytes = Some(bytes);
        self
    }

    /// The size at which a spool segment file is closed and a new one started (default
    /// 16 MiB, or an eighth of the spool bound if that is smaller). Confirmed segments are
    /// deleted whole.
    pub fn spool_segment_bytes(mut self, bytes: u64) -> Self {
        self.spool.segment_bytes = Some(bytes);
        self
    }

    /// Whether every append to the spool is fsynced before `write` returns (default
    /// `true`); with `false`, the spool is fsynced when the queue runs empty and at
    /// shutdown, so a power loss (not a process crash) can lose the latest spooled events.
    pub fn spool_fsync(mut self, fsync: bool) -> Self {
        self.settings.fsync = fsync;
        self.spool.no_fsync = !fsync;
        self
    }

    /// How long to wait between attempts (default 100 ms doubling up to 30 s, full jitter).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Immediate retries of a new batch before it is spooled (default 1). Kept small: the
    /// writer's queue waits meanwhile.
    pub fn inline_retries(mut self, retries: u32) -> Self {
        self.settings.inline_retries = retries;
        self
    }

    /// The most events sent in one batch (default 500).
    pub fn max_batch(mut self, events: usize) -> Self {
        self.settings.max_batch = events;
        self
    }

    /// How long a send may take before it counts as failed (default 30 s).
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.settings.send_timeout = Some(timeout);
        self
    }

    /// Without a spool directory: how many failed attempts a batch gets before it is
    /// dropped and reported (default 10). Ignored with a spool directory, where events are
    /// retried until the backend takes them.
    pub fn memory_retries(mut self, retries: u32) -> Self {
        self.settings.memory_retries = retries;
        self
    }

    /// Checks the settings and opens the spool: creates and locks the directory, and
    /// recovers what a previous run left (cuts a torn last line, resumes at the cursor).
    /// It does blocking file I/O, so call it at startup.
    pub fn build(self) -> Result<Delivery<B>, ConfigError> {
        self.settings.backoff.validate()?;
        if self.settings.max_batch == 0 {
            return Err(ConfigError::invalid(
                "max_batch",
                "must be at least 1 event",
            ));
        }
        if self.settings.send_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::invalid(
                "send_timeout",
                "must be positive (e.g. 30 s)",
            ));
        }
        let name = self.backend.name().to_owned();
        if self.spool.dir.is_some() && !self.backend.accepts_json() {
            return Err(ConfigError::invalid(
                "spool_dir",
                format!(
                    "backend {name} writes events in a format made from the event in memory, \
                     not from JSON read back from disk: leave out the spool directory"
                ),
            ));
        }
        let backlog = Backlog::open(&name, &self.spool)?;
        let stats = DeliveryStats::new(&name);
        Ok(Delivery {
            inner: Deliverer::new(BackendSink(self.backend), self.settings, backlog, stats),
        })
    }
}
