use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::lane::{Command, Lane};
use super::{AuditWriter, JsonLines};
use crate::event::{AuditEvent, ServiceInfo};
use crate::ConfigError;

/// The handle that takes events from the request path to the writers.
///
/// Cheap to clone; every clone feeds the same writers. Built with [`Auditor::builder`]
/// (or [`Auditor::new`] for one writer and the defaults) inside a Tokio runtime, which
/// runs one background task per writer.
#[derive(Clone, Debug)]
pub struct Auditor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    service: Arc<ServiceInfo>,
    lanes: Vec<Lane>,
    closed: AtomicBool,
}

impl Auditor {
    /// An auditor feeding one writer, with the default queue size and service name.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime, like `tokio::spawn`. Use [`Auditor::builder`]
    /// to get an error instead.
    pub fn new<W: AuditWriter>(writer: W) -> Self {
        match Auditor::builder().writer(writer).build() {
            Ok(auditor) => auditor,
            Err(err) => panic!("{err}"),
        }
    }

    /// An auditor writing JSON lines to standard output.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn stdout() -> Self {
        Auditor::new(JsonLines::stdout())
    }

    /// Starts configuring an auditor.
    pub fn builder() -> AuditorBuilder {
        AuditorBuilder::default()
    }

    /// The producer named in every event.
    pub fn service(&self) -> &Arc<ServiceInfo> {
        &self.inner.service
    }

    /// Queues an event for every writer. Never blocks: a full queue drops the event and
    /// counts it (reported later as `AuditEventsDropped`).
    pub fn emit(&self, event: AuditEvent) {
        let event = Arc::new(event);
        if self.inner.closed.load(Ordering::Acquire) {
            for lane in &self.inner.lanes {
                lane.counters.drop_events(&lane.counters.shut_down, 1);
            }
            return;
        }
        for lane in &self.inner.lanes {
            lane.offer(event.clone());
        }
    }

    /// Writes and flushes every event accepted so far, then stops the writers.
    ///
    /// Events emitted after this began are counted as dropped. Calling it twice is harmless.
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let mut acks = Vec::with_capacity(self.inner.lanes.len());
        for lane in &self.inner.lanes {
            let (ack, done) = oneshot::channel();
            if lane.tx.send(Command::Shutdown(ack)).await.is_ok() {
                acks.push(done);
            }
        }
        for done in acks {
            let _ = done.await;
        }
    }

    /// Counters per writer: what was written and what was dropped.
    pub fn stats(&self) -> AuditorStats {
        AuditorStats {
            writers: self
                .inner
                .lanes
                .iter()
                .map(|lane| WriterStats {
                    name: lane.name.clone(),
                    written: lane.counters.written.load(Ordering::Relaxed),
                    dropped: lane.counters.dropped_total.load(Ordering::Relaxed),
                    queued: lane.tx.max_capacity() - lane.tx.capacity(),
                })
                .collect(),
        }
    }
}

/// A snapshot of an [`Auditor`]'s counters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditorStats {
    /// One entry per writer, in the order they were added.
    pub writers: Vec<WriterStats>,
}

/// Counters of one writer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterStats {
    /// The writer's name.
    pub name: String,
    /// Events written successfully.
    pub written: u64,
    /// Events dropped (full queue, failed writes, after shutdown).
    pub dropped: u64,
    /// Events waiting in the queue.
    pub queued: usize,
}

type Spawner = Box<dyn FnOnce(usize, usize, Duration, Arc<ServiceInfo>) -> Lane + Send>;

/// Configures an [`Auditor`].
#[must_use]
pub struct AuditorBuilder {
    service: ServiceInfo,
    capacity: usize,
    batch_size: usize,
    flush_linger: Duration,
    writers: Vec<Spawner>,
}

impl std::fmt::Debug for AuditorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditorBuilder")
            .field("service", &self.service)
            .field("capacity", &self.capacity)
            .field("batch_size", &self.batch_size)
            .field("writers", &self.writers.len())
            .finish()
    }
}

impl Default for AuditorBuilder {
    fn default() -> Self {
        AuditorBuilder {
            service: ServiceInfo {
                name: "oauth-audit".to_owned(),
                instance: None,
            },
            capacity: 8192,
            batch_size: 256,
            flush_linger: Duration::from_millis(10),
            writers: Vec::new(),
        }
    }
}

impl AuditorBuilder {
    /// The `service.name` of every event (default `oauth-audit`).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service.name = name.into();
        self
    }

    /// The `service.instance` of every event (a host or pod name).
    pub fn service_instance(mut self, instance: impl Into<String>) -> Self {
        self.service.instance = Some(instance.into());
        self
    }

    /// Events each writer may have waiting before new ones are dropped (default 8192).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The most events handed to a writer at once (default 256).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// How long a writer's queue must stay empty before the writer is flushed (default
    /// 10 ms). Shorter: events reach the disk sooner; longer: fewer, larger writes.
    pub fn flush_linger(mut self, linger: Duration) -> Self {
        self.flush_linger = linger;
        self
    }

    /// Adds a writer; every writer receives every event.
    pub fn writer<W: AuditWriter>(mut self, writer: W) -> Self {
        self.writers
            .push(Box::new(move |capacity, batch, linger, service| {
                Lane::spawn(writer, capacity, batch, linger, service)
            }));
        self
    }

    /// Starts one background task per writer on the current Tokio runtime.
    pub fn build(self) -> Result<Auditor, ConfigError> {
        if self.writers.is_empty() {
            return Err(ConfigError::NoWriter);
        }
        if self.capacity == 0 || self.batch_size == 0 {
            return Err(ConfigError::invalid(
                "queue_capacity and batch_size",
                "must be at least 1",
            ));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::NoRuntime);
        }
        let service = Arc::new(self.service);
        let lanes = self
            .writers
            .into_iter()
            .map(|spawn| {
                spawn(
                    self.capacity,
                    self.batch_size,
                    self.flush_linger,
                    service.clone(),
                )
            })
            .collect();
        Ok(Auditor {
            inner: Arc::new(Inner {
                service,
                lanes,
                closed: AtomicBool::new(false),
            }),
        })
    }
}
