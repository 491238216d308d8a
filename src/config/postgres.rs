//! `type = "postgres"`: a partitioned, append-only PostgreSQL table.

use secrecy::SecretString;
use serde::Deserialize;

use super::delivery::DeliveryConfig;
use super::queue::{OverflowSetting, QueueSettings};
use super::values::{AtLeastOne, EnvName, HumanDuration, Name};
#[cfg(feature = "postgres")]
use super::BuildError;

/// `partitioning` of a PostgreSQL sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitioningSetting {
    /// One partition per UTC day.
    Daily,
    /// One partition per UTC month.
    Monthly,
    /// A plain table.
    None,
}

/// `type = "postgres"` (cargo feature `postgres` to build).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// A libpq connection string or `postgres://` URL (it may hold a password: kept as a
    /// secret, never printed by `Debug`).
    pub url: Option<SecretString>,
    /// The environment variable holding `url` (keeps the password out of the file).
    pub url_env: Option<EnvName>,
    /// The schema (`public`).
    pub schema: Option<Name>,
    /// The table (`oauth_audit_events`).
    pub table: Option<Name>,
    /// `daily`, `monthly` or `none`.
    pub partitioning: Option<PartitioningSetting>,
    /// Delete events older than this.
    pub retention: Option<HumanDuration>,
    /// Connect and statement timeout.
    pub timeout: Option<HumanDuration>,
    /// The most connections a batch is spread over (2; 1 to 16).
    pub connections: Option<AtLeastOne>,
    /// Retries and spool.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// What happens when the sink's queue is full.
    pub overflow: Option<OverflowSetting>,
    /// With `overflow = "block"`: the longest a request waits for room.
    pub block_timeout: Option<HumanDuration>,
    /// Events this sink may have waiting (default: `[queue] capacity`).
    pub queue_capacity: Option<AtLeastOne>,
}

impl PostgresConfig {
    /// The queue settings.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            overflow: self.overflow,
            block_timeout: self.block_timeout,
            queue_capacity: self.queue_capacity,
        }
    }

    /// The backend inside its delivery engine. Reads `url_env`, parses the connection
    /// string, opens the spool; connects to nothing (the backend connects when it first
    /// sends).
    #[cfg(feature = "postgres")]
    pub fn build(
        &self,
    ) -> Result<crate::delivery::Delivery<crate::backend::PostgresBackend>, BuildError> {
        use crate::backend::{Partitioning, PostgresBackend};
        use secrecy::ExposeSecret;
        const SINK: &str = "writer (postgres)";
        let url = match (&self.url, &self.url_env) {
            (Some(url), None) => url.clone(),
            (None, Some(variable)) => variable.read("writer (postgres) url_env")?,
            _ => {
                return Err(BuildError::invalid(
                    SINK,
                    "set exactly one of url and url_env",
                ))
            }
        };
        let mut backend = PostgresBackend::builder(url.expose_secret());
        if let Some(schema) = &self.schema {
            backend = backend.schema(schema.0.clone());
        }
        if let Some(table) = &self.table {
            backend = backend.table(table.0.clone());
        }
        if let Some(partitioning) = self.partitioning {
            backend = backend.partitioning(match partitioning {
                PartitioningSetting::Daily => Partitioning::Daily,
                PartitioningSetting::Monthly => Partitioning::Monthly,
                PartitioningSetting::None => Partitioning::None,
            });
        }
        if let Some(retention) = self.retention {
            backend = backend.retention(retention.0);
        }
        if let Some(timeout) = self.timeout {
            backend = backend.timeout(timeout.0);
        }
        if let Some(connections) = self.connections {
            backend = backend.connections(connections.get());
        }
        let backend = backend.build().map_err(|e| BuildError::invalid(SINK, e))?;
        self.delivery.build(backend, "postgres")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<PostgresConfig, String> {
        serde_json::from_str(json).map_err(|error| error.to_string())
    }

    #[test]
    fn connections_are_read_and_bounded() {
        let config = parse(r#"{ "url": "host=db user=audit", "connections": 4 }"#).unwrap();
        assert_eq!(config.connections, Some(AtLeastOne(4)));
        assert_eq!(parse(r#"{ "url": "x" }"#).unwrap().connections, None);
        for zero in ["0", "-1"] {
            let error = parse(&format!(r#"{{ "url": "x", "connections": {zero} }}"#)).unwrap_err();
            assert!(error.contains("at least 1"), "{error}");
        }
        let error = parse(r#"{ "url": "x", "connections": "2" }"#).unwrap_err();
        assert!(error.contains("invalid type"), "{error}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn connections_beyond_sixteen_are_refused_by_name() {
        let build = |connections: u64| {
            parse(&format!(
                r#"{{ "url": "host=127.0.0.1 user=audit", "connections": {connections} }}"#
            ))
            .unwrap()
            .build()
        };
        let error = build(17).unwrap_err().to_string();
        assert!(error.starts_with("writer (postgres)"), "{error}");
        assert!(error.contains("postgres connections"), "{error}");
        assert!(error.contains("1 to 16"), "{error}");
        for fine in [1, 2, 16] {
            build(fine).unwrap();
        }
    }
}
