//! One enum over every sink, tagged by `type` as in the proxy's `[[writer]]` tables.

use serde::Deserialize;

use super::delivery::WriterRetryConfig;
use super::file::{JsonLinesConfig, RotatingFileConfig, TracingConfig};
use super::http::HttpConfig;
use super::nats::NatsConfig;
use super::postgres::PostgresConfig;
use super::queue::QueueSettings;
use super::BuildError;
use crate::writer::{AuditorBuilder, WriterOptions};

/// One sink, chosen by `type`: `jsonl`, `rotating`, `postgres`, `nats`, `http` or `tracing`.
///
/// Every type deserializes whatever cargo features are on, so that a configuration naming
/// a sink this build lacks is refused by [`add_to`](SinkConfig::add_to) with
/// [`BuildError::FeatureDisabled`], not as an unknown `type`.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines to a file, or to standard output with `path = "-"`.
    Jsonl(JsonLinesConfig),
    /// JSON lines to a directory of rotated, compressed files.
    Rotating(RotatingFileConfig),
    /// A partitioned, append-only PostgreSQL table (cargo feature `postgres`).
    Postgres(Box<PostgresConfig>),
    /// A NATS JetStream stream (cargo feature `nats`).
    Nats(Box<NatsConfig>),
    /// An HTTP collector: Elasticsearch, Splunk HEC, JSON lines (cargo feature `http`).
    Http(Box<HttpConfig>),
    /// One `tracing` event per audit event (target `oauth_audit`).
    Tracing(TracingConfig),
}

impl SinkConfig {
    /// The sink's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Jsonl(_) => "jsonl",
            SinkConfig::Rotating(_) => "rotating",
            SinkConfig::Postgres(_) => "postgres",
            SinkConfig::Nats(_) => "nats",
            SinkConfig::Http(_) => "http",
            SinkConfig::Tracing(_) => "tracing",
        }
    }

    /// The queue settings every sink takes.
    pub fn queue(&self) -> QueueSettings {
        match self {
            SinkConfig::Jsonl(c) => c.queue(),
            SinkConfig::Rotating(c) => c.queue(),
            SinkConfig::Postgres(c) => c.queue(),
            SinkConfig::Nats(c) => c.queue(),
            SinkConfig::Http(c) => c.queue(),
            SinkConfig::Tracing(c) => c.queue(),
        }
    }

    /// Where the sink keeps undelivered events (`delivery.spool_dir`, or `retry.spool_dir`
    /// of a file sink), when it has a spool directory.
    pub fn spool_dir(&self) -> Option<&std::path::Path> {
        match self {
            SinkConfig::Jsonl(c) => c.retry.as_ref()?.spool_dir.as_deref(),
            SinkConfig::Rotating(c) => c.retry.as_ref()?.spool_dir.as_deref(),
            SinkConfig::Postgres(c) => c.delivery.spool_dir.as_deref(),
            SinkConfig::Nats(c) => c.delivery.spool_dir.as_deref(),
            SinkConfig::Http(c) => c.delivery.spool_dir.as_deref(),
            SinkConfig::Tracing(_) => None,
        }
    }

    /// Builds the sink and adds it to `builder` with its queue settings. `service_name` is
    /// the default of settings that name the service (Splunk's `source`).
    ///
    /// Opens files and spool directories and reads `*_env` secrets; connects to nothing.
    // `service_name` is read by the http sink only.
    #[cfg_attr(not(feature = "http"), allow(unused_variables))]
    pub async fn add_to(
        &self,
        builder: AuditorBuilder,
        service_name: Option<&str>,
    ) -> Result<AuditorBuilder, BuildError> {
        let options = self
            .queue()
            .writer_options(&format!("writer ({})", self.kind()))?;
        Ok(match self {
            SinkConfig::Jsonl(c) => {
                builder.writer_with(c.build().await?, retrying(&c.retry, options))
            }
            SinkConfig::Rotating(c) => builder.writer_with(c.build()?, retrying(&c.retry, options)),
            SinkConfig::Tracing(c) => builder.writer_with(c.build(), options),
            #[cfg(feature = "postgres")]
            SinkConfig::Postgres(c) => builder.writer_with(c.build()?, options),
            #[cfg(feature = "nats")]
            SinkConfig::Nats(c) => builder.writer_with(c.build()?, options),
            #[cfg(feature = "http")]
            SinkConfig::Http(c) => builder.writer_with(c.build(service_name)?, options),
            #[allow(unreachable_patterns)]
            other => return Err(BuildError::FeatureDisabled { sink: other.kind() }),
        })
    }
}

fn retrying(retry: &Option<WriterRetryConfig>, options: WriterOptions) -> WriterOptions {
    match retry {
        Some(retry) => retry.apply(options),
        None => options,
    }
}
