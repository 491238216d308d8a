//! The auditor: the service the events name, the queues, the sinks.

use serde::Deserialize;

use super::chain::ChainConfig;
use super::detect::DetectConfig;
use super::geoip::GeoIpConfig;
use super::sink::SinkConfig;
use super::values::{AtLeastOne, HumanDuration};
use super::BuildError;
use crate::writer::{Auditor, JsonLines};

/// `[queue]`: the defaults of every sink's queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Events waiting per sink.
    pub capacity: Option<AtLeastOne>,
    /// Events handed to a sink at once.
    pub batch_size: Option<AtLeastOne>,
    /// Idle time before a sink flushes.
    pub flush_linger: Option<HumanDuration>,
}

/// An [`Auditor`]: the service every event names, the queue defaults and the sinks
/// (`writer`, a list, as the proxy's `[[writer]]` tables).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditorConfig {
    /// `service.name` of every event.
    pub service_name: Option<String>,
    /// `service.instance` of every event.
    pub service_instance: Option<String>,
    /// Queue defaults.
    #[serde(default)]
    pub queue: QueueConfig,
    /// Where events go; JSON lines on standard output when empty.
    #[serde(default, rename = "writer")]
    pub writers: Vec<SinkConfig>,
    /// Tamper-evident chaining (`[chain]`); off when absent.
    pub chain: Option<ChainConfig>,
    /// Geo and ASN enrichment (`[geoip]`, cargo feature `geoip`); off when absent. It runs
    /// before detection and the chain, so both see `source.geo`.
    pub geoip: Option<GeoIpConfig>,
    /// Detection rules (`[detect]`); off when absent.
    pub detect: Option<DetectConfig>,
}

impl AuditorConfig {
    /// Builds every sink, then the auditor, whose background tasks start on the current
    /// Tokio runtime.
    ///
    /// Opens files and spool directories and reads `*_env` secrets; connects to nothing
    /// (remote sinks connect when they first send). Every `.await` comes before the first
    /// task is spawned: a caller that only checks a configuration can run this future on a
    /// runtime it then drops, and no task will have run.
    pub async fn build(&self) -> Result<Auditor, BuildError> {
        let mut builder = Auditor::builder();
        if let Some(name) = &self.service_name {
            builder = builder.service_name(name.clone());
        }
        if let Some(instance) = &self.service_instance {
            builder = builder.service_instance(instance.clone());
        }
        if let Some(capacity) = self.queue.capacity {
            builder = builder.queue_capacity(capacity.get());
        }
        if let Some(size) = self.queue.batch_size {
            builder = builder.batch_size(size.get());
        }
        if let Some(linger) = self.queue.flush_linger {
            builder = builder.flush_linger(linger.0);
        }
        if let Some(geoip) = &self.geoip {
            #[cfg(feature = "geoip")]
            {
                builder = builder.processor(geoip.build()?);
            }
            #[cfg(not(feature = "geoip"))]
            {
                let _ = geoip;
                return Err(BuildError::invalid(
                    "geoip",
                    "this build has no geo enrichment: enable the `geoip` cargo feature",
                ));
            }
        }
        if let Some(detect) = &self.detect {
            builder = builder.processor(detect.build()?);
        }
        if let Some(chain) = &self.chain {
            builder = builder.chain(chain.build()?);
        }
        if self.writers.is_empty() {
            builder = builder.writer(JsonLines::stdout());
        }
        for sink in &self.writers {
            builder = sink.add_to(builder, self.service_name.as_deref()).await?;
        }
        builder
            .build()
            .map_err(|e| BuildError::invalid("writers", e))
    }
}
