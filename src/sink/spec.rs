//! A sink ready to start: what [`AuditorBuilder::writer`](crate::writer::AuditorBuilder::writer)
//! takes. Any [`AuditWriter`] is one, and so is a [`Delivery`](crate::delivery::Delivery).

use super::adapter::WriterSink;
use super::backlog::{Backlog, SpoolSettings};
use super::deliver::{Deliverer, Settings};
use super::queue::SinkQueue;
use super::task::{self, QueueConfig};
use super::{AuditWriter, Backoff, DeliveryStats};
use crate::ConfigError;

/// A writer's retry policy, from its [`WriterOptions`](crate::writer::WriterOptions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Retrying {
    pub(crate) backoff: Backoff,
    pub(crate) spool: SpoolSettings,
}

/// Starts a sink's task with its queue settings and, for a writer, its retry policy.
pub(crate) type StartSink =
    Box<dyn FnOnce(Option<Retrying>, QueueConfig) -> Result<SinkQueue, ConfigError> + Send>;

/// A sink ready to start, made by [`IntoSink::into_sink`].
pub struct SinkSpec {
    name: String,
    start: StartSink,
}

impl std::fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkSpec")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl SinkSpec {
    pub(crate) fn new(name: String, start: StartSink) -> Self {
        SinkSpec { name, start }
    }

    /// The sink's name (`dropped.sink`, the `writer` label of its metrics).
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn start(
        self,
        retrying: Option<Retrying>,
        config: QueueConfig,
    ) -> Result<SinkQueue, ConfigError> {
        (self.start)(retrying, config)
    }
}

/// What an [`Auditor`](crate::writer::Auditor) can deliver to: every [`AuditWriter`], and a
/// [`Delivery`](crate::delivery::Delivery) around a remote backend. Each runs in the same
/// sink runtime (queue, retries, spool, drop reports).
pub trait IntoSink {
    /// The sink, ready to start.
    fn into_sink(self) -> SinkSpec;
}

impl IntoSink for SinkSpec {
    fn into_sink(self) -> SinkSpec {
        self
    }
}

/// Retries of a writer's batch before it goes to the backlog.
const WRITER_INLINE_RETRIES: u32 = 1;
/// Failed attempts a writer's batch gets without a spool directory.
const WRITER_MEMORY_RETRIES: u32 = 10;

impl<W: AuditWriter> IntoSink for W {
    fn into_sink(self) -> SinkSpec {
        let name = self.name().to_owned();
        SinkSpec::new(
            name.clone(),
            Box::new(move |retrying, config| {
                let (settings, backlog) = match retrying {
                    // A writer's default: a failed batch is dropped and reported.
                    None => (
                        Settings {
                            retry: false,
                            backoff: Backoff::default(),
                            inline_retries: 0,
                            max_batch: usize::MAX,
                            send_timeout: None,
                            memory_retries: 0,
                            fsync: true,
                        },
                        Backlog::Memory(super::backlog::MemoryBacklog::new(0)),
                    ),
                    Some(Retrying { backoff, spool }) => {
                        backoff.validate()?;
                        if spool.dir.is_some() && !self.accepts_json() {
                            return Err(ConfigError::invalid(
                                "spool_dir",
                                format!(
                                    "writer {name} takes events, not JSON read back from disk: \
                                     give it a retry policy without a spool directory"
                                ),
                            ));
                        }
                        let settings = Settings {
                            retry: true,
                            backoff,
                            inline_retries: WRITER_INLINE_RETRIES,
                            max_batch: usize::MAX,
                            send_timeout: None,
                            memory_retries: WRITER_MEMORY_RETRIES,
                            fsync: !spool.no_fsync,
                        };
                        (settings, Backlog::open(&name, &spool)?)
                    }
                };
                let stats = DeliveryStats::new(&name);
                let deliverer = Deliverer::new(WriterSink(self), settings, backlog, stats);
                Ok(task::spawn(deliverer, config))
            }),
        )
    }
}
