//! Reading the events table back for `oauth-audit verify`: every row's `id` and `event`,
//! in chain order, through a cursor so that memory stays flat whatever the table's size.
//!
//! A table has no order of its own, and neither `id` (made when a request arrives) nor
//! `time` follows the chain (an event is chained when its response ends, a checkpoint when
//! it is made), so rows are read by stream and sequence number: what is checked is then
//! what a table can lose or gain (edited, deleted and inserted rows), not an order it never
//! had. Rows without a chain come last.

use std::str::FromStr;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

use super::{ddl, tls};
use crate::ConfigError;

/// Rows fetched at a time.
const FETCH: usize = 2000;

/// The longest event text handed on whole, as for a line of a file
/// (`chain::verify::input::MAX_LINE`): an event is a few kilobytes. A longer one is cut
/// by the server to its first kilobyte (no JSON, so `verify` reports it malformed), so that
/// a table of huge rows (which it stores compressed, small) cannot make a batch of
/// [`FETCH`] rows take all memory: a batch holds at most [`FETCH`] MiB.
const MAX_EVENT: usize = 1 << 20;

/// What is handed on of an event longer than [`MAX_EVENT`], in characters.
const CUT_EVENT: usize = 1 << 10;

/// Why the table could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresReadError {
    /// The connection string or the table name is not usable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// PostgreSQL refused or the connection failed.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// A connection that reads an events table written by
/// [`PostgresBackend`](super::PostgresBackend), for `oauth-audit verify` and
/// `oauth-audit report`.
///
/// ```no_run
/// use std::sync::Arc;
/// use oauth_audit::backend::PostgresEventReader;
/// use oauth_audit::chain::verify::{Location, Verifier};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut reader = PostgresEventReader::connect(
///     "host=127.0.0.1 user=auditor dbname=audit sslmode=disable",
///     "public",
///     "oauth_audit_events",
/// )
/// .await?;
/// let mut verifier = Verifier::new(Vec::new());
/// let table: Arc<str> = "oauth_audit_events".into();
/// reader
///     .read(|id, event| verifier.push(Location::row(&table, id), event.as_bytes()))
///     .await?;
/// println!("{}", verifier.finish());
/// # Ok(()) }
/// ```
pub struct PostgresEventReader {
    client: Client,
    connection: JoinHandle<()>,
    table: String,
    /// What `connect` was given, to open another connection like this one (never shown:
    /// the connection string may hold a password).
    #[cfg_attr(not(feature = "report"), allow(dead_code))]
    connect_args: [String; 3],
}

impl std::fmt::Debug for PostgresEventReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresEventReader")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresEventReader {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl PostgresEventReader {
    /// Connects with a libpq connection string (TLS options as for the backend:
    /// `sslmode`, `sslrootcert`, `sslcert`, `sslkey`) to read `schema.table`.
    pub async fn connect(
        connection: &str,
        schema: &str,
        table: &str,
    ) -> Result<PostgresEventReader, PostgresReadError> {
        let connect_args = [connection.to_owned(), schema.to_owned(), table.to_owned()];
        let (rest, options) = tls::split_tls_options(connection);
        let mut config = Config::from_str(&rest).map_err(|error| {
            // The connection string may hold a password, so it is not repeated.
            ConfigError::invalid("postgres connection string", error.to_string())
        })?;
        let tls = tls::Tls::from_options(&options)?;
        config.ssl_mode(tls.mode.negotiation());
        if config.get_application_name().is_none() {
            config.application_name("oauth-audit");
        }
        for (setting, name) in [("postgres table", table), ("postgres schema", schema)] {
            if name.is_empty() || name.len() > 63 {
                return Err(ConfigError::invalid(setting, "must be 1 to 63 bytes").into());
            }
        }
        let (client, connection) = match tls.connector {
            Some(connector) => {
                let (client, connection) = config.connect(connector).await?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
            None => {
                let (client, connection) = config.connect(NoTls).await?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
        };
        Ok(PostgresEventReader {
            client,
            connection,
            table: ddl::qualified(schema, table),
            connect_args,
        })
    }

    /// A second connection to the same table, for queries run alongside this one's.
    #[cfg(feature = "report")]
    pub(crate) async fn another(&self) -> Result<PostgresEventReader, PostgresReadError> {
        let [connection, schema, table] = &self.connect_args;
        Box::pin(PostgresEventReader::connect(connection, schema, table)).await
    }

    /// The connection, for the report's queries.
    #[cfg(feature = "report")]
    pub(crate) fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// The table, quoted: `"schema"."table"`.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// How many rows the table holds (for a progress bar).
    pub async fn count(&self) -> Result<u64, PostgresReadError> {
        let row = self
            .client
            .query_one(&format!("SELECT count(*) FROM {}", self.table), &[])
            .await?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    /// Calls `each` with every row's `id` and `event` (JSON text), in chain order, from
    /// one consistent snapshot; returns the number of rows. An event longer than 1 MiB as
    /// text is no event the auditor wrote: only its first kilobyte is handed on.
    pub async fn read(
        &mut self,
        mut each: impl FnMut(&str, &str),
    ) -> Result<u64, PostgresReadError> {
        let transaction = self
            .client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        // A seq edited into something other than a number must not stop the read, so it
        // sorts as NULL instead of failing a cast.
        transaction
            .batch_execute(&format!(
                "DECLARE oauth_audit_verify NO SCROLL CURSOR FOR
                 SELECT id::text,
                        CASE WHEN octet_length(e.text) <= {MAX_EVENT} THEN e.text
                             ELSE left(e.text, {CUT_EVENT}) END
                 FROM {} CROSS JOIN LATERAL (SELECT event::text AS text) e
                 ORDER BY event->'chain'->>'stream',
                          CASE WHEN jsonb_typeof(event->'chain'->'seq') = 'number'
                               THEN (event->'chain'->>'seq')::numeric END,
                          id",
                self.table
            ))
            .await?;
        let fetch = format!("FETCH {FETCH} FROM oauth_audit_verify");
        let mut rows_read = 0u64;
        loop {
            let rows = transaction.query(&fetch, &[]).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let id: &str = row.get(0);
                let event: &str = row.get(1);
                each(id, event);
            }
            rows_read += rows.len() as u64;
        }
        transaction.commit().await?;
        Ok(rows_read)
    }
}
