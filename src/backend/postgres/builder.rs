//! The builder of [`PostgresBackend`]: its settings, checked without connecting.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::TimeDelta;
use tokio_postgres::Config;

use super::backend::PostgresBackend;
use super::settings::{Partitioning, Settings, DEFAULT_CONNECTIONS, MAX_CONNECTIONS};
use super::tls;
use crate::ConfigError;

/// Leaves room for the longest suffix (`_p20261125`, `_subject`) within PostgreSQL's 63 bytes.
const MAX_TABLE_NAME: usize = 50;

/// Builds a [`PostgresBackend`]; see [`PostgresBackend::builder`].
///
/// ```
/// use std::time::Duration;
/// use oauth_audit::backend::PostgresBackend;
///
/// let backend = PostgresBackend::builder("host=localhost user=audit sslmode=disable")
///     .table("audit_events")
///     .retention(Duration::from_secs(90 * 24 * 3600))
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// # Ok::<(), oauth_audit::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct PostgresBackendBuilder {
    connection: String,
    schema: String,
    table: String,
    partitioning: Partitioning,
    retention: Option<Duration>,
    timeout: Duration,
    connections: usize,
}

impl fmt::Debug for PostgresBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the connection string: it may hold the password.
        f.debug_struct("PostgresBackendBuilder")
            .field("schema", &self.schema)
            .field("table", &self.table)
            .field("partitioning", &self.partitioning)
            .field("retention", &self.retention)
            .field("timeout", &self.timeout)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

impl PostgresBackend {
    /// Starts a builder from a libpq-style connection string
    /// (`host=... user=... dbname=...` or `postgres://user@host/db`).
    pub fn builder(connection: impl Into<String>) -> PostgresBackendBuilder {
        PostgresBackendBuilder {
            connection: connection.into(),
            schema: "public".to_owned(),
            table: "oauth_audit_events".to_owned(),
            partitioning: Partitioning::default(),
            retention: None,
            timeout: Duration::from_secs(20),
            connections: DEFAULT_CONNECTIONS,
        }
    }
}

impl PostgresBackendBuilder {
    /// The events table (default `oauth_audit_events`): lowercase letters, digits and `_`,
    /// at most 50 bytes, not starting with a digit.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The schema holding the table, created when missing (default `public`; named
    /// explicitly rather than taken from `search_path`, so the table never moves).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// How the table is split by time (default [`Partitioning::Monthly`]). Fixed when the
    /// table is created: a backend configured differently refuses the existing table.
    pub fn partitioning(mut self, partitioning: Partitioning) -> Self {
        self.partitioning = partitioning;
        self
    }

    /// Drops events older than this (default: keep everything). With partitioning, a
    /// partition is dropped once all of it is older; checked at connection and hourly.
    ///
    /// A backend connected as the table's owner records this retention in
    /// `oauth_audit_schema`; the database applies the recorded value, so a backend that does
    /// not own the table only triggers it (and logs a warning if its own setting differs).
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// The longest one `send` (connecting, creating partitions, inserting) may take before
    /// it counts as a failure and is retried (default 20 s). Keep it below `Delivery`'s
    /// send timeout (default 30 s), so the backend drops a stuck connection itself.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most connections the backend opens (default 2, at most 16). A batch of at least
    /// 128 events is split into up to this many contiguous parts, inserted at the same time,
    /// each on its own connection and committed separately, so the server parses and indexes
    /// the parts on several cores and one part's commit overlaps another's insert. `send`
    /// still succeeds only once every part is committed; after a failure the whole batch is
    /// sent again, and the parts already stored are skipped (`ON CONFLICT DO NOTHING`).
    /// Smaller batches use one connection. Connections open when first needed.
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = connections;
        self
    }

    /// Checks the settings; does not connect.
    pub fn build(self) -> Result<PostgresBackend, ConfigError> {
        let (rest, tls_options) = tls::split_tls_options(&self.connection);
        let mut config = Config::from_str(&rest).map_err(|error| {
            // The connection string itself may hold a password, so it is not repeated.
            ConfigError::invalid("postgres connection string", error.to_string())
        })?;
        let tls = tls::Tls::from_options(&tls_options)?;
        config.ssl_mode(tls.mode.negotiation());
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("oauth-audit");
        }
        check_identifier("postgres table", &self.table, MAX_TABLE_NAME)?;
        check_identifier("postgres schema", &self.schema, 63)?;
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "postgres timeout",
                "must be more than zero",
            ));
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.connections) {
            return Err(ConfigError::invalid(
                "postgres connections",
                format!(
                    "{} is out of range: use 1 to {MAX_CONNECTIONS}",
                    self.connections
                ),
            ));
        }
        if let Some(retention) = self.retention {
            if retention.is_zero() || TimeDelta::from_std(retention).is_err() {
                return Err(ConfigError::invalid(
                    "postgres retention",
                    "must be more than zero and less than about 290 000 years",
                ));
            }
        }
        Ok(PostgresBackend::new(Settings {
            config,
            tls,
            schema: self.schema,
            table: self.table,
            partitioning: self.partitioning,
            retention: self.retention,
            timeout: self.timeout,
            connections: self.connections,
        }))
    }
}

/// Refuses names that are not plain lowercase identifiers.
///
/// Quoting is `postgres-protocol`'s (see `ddl.rs`); this check stays because it decides which
/// names are sensible rather than how to write them: the partition, index and trigger names
/// derived from the table must be predictable, fit PostgreSQL's 63 bytes, and mean the same
/// quoted or not (`Events` and `events` would be two tables), which no escaping gives.
fn check_identifier(setting: &'static str, name: &str, max: usize) -> Result<(), ConfigError> {
    let mut bytes = name.bytes();
    let valid_start = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let valid_rest = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid_start || !valid_rest || name.len() > max || name.starts_with("pg_") {
        return Err(ConfigError::invalid(
            setting,
            format!(
                "{name:?} is not a plain identifier: use lowercase letters, digits and _, \
                 at most {max} bytes, not starting with a digit or pg_"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        for bad in [
            "",
            "Events",
            "1events",
            "audit-events",
            "a\"b",
            "pg_events",
            &"x".repeat(51),
        ] {
            assert!(
                PostgresBackend::builder("host=localhost")
                    .table(bad)
                    .build()
                    .is_err(),
                "{bad:?} accepted"
            );
        }
        assert!(PostgresBackend::builder("host=localhost")
            .schema("Audit")
            .build()
            .is_err());
        assert!(PostgresBackend::builder("host=localhost")
            .table("audit_events_2")
            .schema("audit")
            .build()
            .is_ok());
    }

    #[test]
    fn connections_are_bounded() {
        let build = |n| {
            PostgresBackend::builder("host=localhost")
                .connections(n)
                .build()
        };
        for bad in [0, MAX_CONNECTIONS + 1, usize::MAX] {
            let error = build(bad).unwrap_err().to_string();
            assert!(error.contains("postgres connections"), "{error}");
            assert!(error.contains("1 to 16"), "{error}");
        }
        for good in [1, DEFAULT_CONNECTIONS, MAX_CONNECTIONS] {
            let backend = build(good).unwrap();
            let shown = format!("{backend:?}");
            assert!(shown.contains(&format!("connections: {good}")), "{shown}");
            assert!(shown.contains("connected: 0"), "{shown}");
        }
    }

    #[test]
    fn connection_strings_are_checked_without_repeating_them() {
        let error = PostgresBackend::builder("host=localhost password=hunter2 port=notaport")
            .build()
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        // TLS options are libpq's, taken out before tokio-postgres parses the rest.
        let backend =
            PostgresBackend::builder("host=localhost password=hunter2 sslmode=require").build();
        assert_eq!(backend.unwrap().settings.tls.mode, tls::TlsMode::Require);
        let error = PostgresBackend::builder(
            "host=localhost password=hunter2 sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
        )
        .build()
        .unwrap_err()
        .to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("/nonexistent/ca.pem"), "{error}");
        let backend = PostgresBackend::builder("postgres://audit:hunter2@localhost/audit")
            .build()
            .unwrap();
        assert!(!format!("{backend:?}").contains("hunter2"));
    }
}
