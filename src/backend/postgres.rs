//! PostgreSQL: an append-only, time-partitioned events table.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use oauth_audit::backend::{Partitioning, PostgresBackend};
//! use oauth_audit::delivery::Backend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut backend = PostgresBackend::builder("host=127.0.0.1 user=audit dbname=audit sslmode=disable")
//!     .table("oauth_audit_events")
//!     .partitioning(Partitioning::Monthly)
//!     .retention(Duration::from_secs(400 * 24 * 3600))
//!     .build()?;
//! // Optional: connect and create the schema now, to fail fast at start-up.
//! backend.prepare().await?;
//! assert_eq!(backend.name(), "postgres");
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, Statement};
use uuid::Uuid;

use crate::delivery::{Backend, BackendError, EncodedEvent};
use crate::ConfigError;

mod ddl;
mod tls;

#[doc(hidden)]
pub use tls::{split_tls_options, TlsOptions};

/// The layout version this build creates and understands. 2: deletion is decided by the
/// database (owner and recorded retention), no longer unlocked by a session setting.
const SCHEMA_VERSION: i32 = 2;
/// The table recording layout versions, next to the events table.
const VERSIONS_TABLE: &str = "oauth_audit_schema";
/// How often `send` runs retention.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);
/// Leaves room for the longest suffix (`_p20261125`, `_subject`) within PostgreSQL's 63 bytes.
const MAX_TABLE_NAME: usize = 50;
const NAME: &str = "postgres";

/// How the events table is split by time.
///
/// ```
/// use oauth_audit::backend::{Partitioning, PostgresBackend};
///
/// let backend = PostgresBackend::builder("host=localhost user=audit sslmode=disable")
///     .partitioning(Partitioning::Daily)
///     .build()?;
/// # Ok::<(), oauth_audit::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Partitioning {
    /// One partition per UTC day (`<table>_p20261125`).
    Daily,
    /// One partition per UTC month (`<table>_p202611`).
    #[default]
    Monthly,
    /// A plain table; retention deletes rows.
    None,
}

impl Partitioning {
    fn as_str(self) -> &'static str {
        match self {
            Partitioning::Daily => "daily",
            Partitioning::Monthly => "monthly",
            Partitioning::None => "none",
        }
    }

    /// The first day of the partition holding `time`.
    fn start_of(self, time: DateTime<Utc>) -> NaiveDate {
        let day = time.date_naive();
        match self {
            Partitioning::Monthly => day.with_day(1).unwrap_or(day),
            Partitioning::Daily | Partitioning::None => day,
        }
    }

    /// The first day after the partition starting at `start`.
    fn end_of(self, start: NaiveDate) -> Option<NaiveDate> {
        match self {
            Partitioning::Monthly => start.checked_add_months(Months::new(1)),
            Partitioning::Daily | Partitioning::None => start.succ_opt(),
        }
    }

    /// The partition name suffix `oauth_audit_create_partition` gives (checked in tests).
    #[cfg(test)]
    fn suffix(self, start: NaiveDate) -> String {
        match self {
            Partitioning::Monthly => start.format("%Y%m").to_string(),
            Partitioning::Daily | Partitioning::None => start.format("%Y%m%d").to_string(),
        }
    }

    fn parse_suffix(self, suffix: &str) -> Option<NaiveDate> {
        if !suffix.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        match self {
            Partitioning::Monthly if suffix.len() == 6 => {
                NaiveDate::parse_from_str(&format!("{suffix}01"), "%Y%m%d").ok()
            }
            Partitioning::Daily if suffix.len() == 8 => {
                NaiveDate::parse_from_str(suffix, "%Y%m%d").ok()
            }
            _ => None,
        }
    }
}

/// Writes events to a PostgreSQL table, for [`Delivery`](crate::delivery).
///
/// # Table layout
///
/// | column | type | |
/// | --- | --- | --- |
/// | `id` | `uuid` | the event id (UUIDv7) |
/// | `time` | `timestamptz` | the event time, the partition key |
/// | `kind` | `text` | `AccessTokenIssued`, `TokenRevoked`, ... |
/// | `outcome` | `text` | generated from `event->>'outcome'` |
/// | `subject` | `text` | generated from `event->'actor'->>'subject'` |
/// | `client_id` | `text` | generated from `event->'actor'->>'client_id'` |
/// | `source_ip` | `inet` | generated from `event->'source'->>'ip'` |
/// | `event` | `jsonb` | the whole event, schema v1 |
/// | `inserted_at` | `timestamptz` | when the row was committed |
///
/// The key is `(id, time)` when partitioned (PostgreSQL wants the partition key in every
/// unique index) and `id` otherwise. Ids are UUIDv7 stamped with the event time, and a retry
/// or replay resends the same id with the same time, so the key deduplicates as well as `id`
/// alone would: inserts are `ON CONFLICT DO NOTHING`.
///
/// Indexes: `time`, `(kind, time)`, `(subject, time)`, `(client_id, time)`,
/// `(source_ip, time)`.
///
/// # Append-only
///
/// A trigger refuses `UPDATE`, `DELETE` and `TRUNCATE` on the table and its partitions
/// (SQLSTATE `42501`), whatever the session has set. The one exception is the table's owner
/// deleting rows older than the retention recorded in `oauth_audit_schema`, which only the
/// owner can change. Retention runs in `oauth_audit_retention(table)`, a `SECURITY DEFINER`
/// function owned by the table's owner: it drops the partitions (or, without partitioning,
/// deletes the rows) past that recorded retention and nothing else, whoever calls it.
/// Partitions are created by `oauth_audit_create_partition(table, start)`, another such
/// function, so a writer needs no ownership at all: connected as a role granted `SELECT` and
/// `INSERT` on the table, `SELECT` on `oauth_audit_schema` and `EXECUTE` on the two functions,
/// it can add events but neither change nor remove them. The owner itself can still disable
/// triggers: keep it for migrations (see `docs/security.md`), or send the events to a second,
/// independent destination as well.
///
/// # Schema versions
///
/// The table `oauth_audit_schema` (in the same schema) records, per events table, the layout
/// version, the partitioning it was created with and the retention. Start-up creates what is missing
/// (idempotent, under an advisory lock so that several writers may start together), refuses
/// a table recorded by a newer version, and migrates older ones (the owner only). A table at
/// the current version gets no DDL, so writers that do not own it start as well.
///
/// # Connections and errors
///
/// The backend connects on the first `send` (or [`PostgresBackend::prepare`]) and again after
/// any failure. Unreachable servers, timeouts, shutdowns and schema problems an operator can
/// fix are [`BackendError::Unavailable`] (retried and spooled); events PostgreSQL refuses as
/// data (SQLSTATE classes 22 and 23, e.g. a `\u0000` that `jsonb` cannot store) are
/// [`BackendError::Rejected`]. When one event of a batch is refused, the others are inserted
/// one by one, so a single bad event never takes good ones with it.
///
/// # TLS
///
/// TLS is rustls (ring), configured with libpq's options in the connection string:
/// `sslmode` `disable`, `prefer` (the default: TLS when the server offers it), `require`,
/// `verify-ca` or `verify-full`; `sslrootcert` (a PEM file of trusted CAs, or `system` for the
/// operating system's store, which needs `verify-full`); `sslcert` and `sslkey` (a client
/// certificate and its key, PEM). As in libpq, a `sslrootcert` makes every mode check the
/// certificate chain, `verify-full` checks the host name too, and `prefer`/`require` without
/// one encrypt without checking who answers. Use `verify-full` across any network you do not
/// control. Certificate files are read by [`PostgresBackendBuilder::build`].
///
/// ```no_run
/// use oauth_audit::backend::PostgresBackend;
/// use oauth_audit::delivery::Delivery;
/// use oauth_audit::writer::Auditor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = PostgresBackend::builder("postgres://audit@db.internal/audit?sslmode=disable")
///     .schema("audit")
///     .build()?;
/// let delivery = Delivery::builder(backend)
///     .spool_dir("/var/spool/orders-api/audit")
///     .build()?;
/// let auditor = Auditor::builder().service_name("orders-api").writer(delivery).build()?;
/// // ... serve requests through AuditLayer::new(auditor.clone()) ...
/// auditor.shutdown().await;
/// # Ok(()) }
/// ```
pub struct PostgresBackend {
    settings: Settings,
    session: Option<Session>,
    next_retention: Option<Instant>,
}

struct Settings {
    config: Config,
    tls: tls::Tls,
    schema: String,
    table: String,
    partitioning: Partitioning,
    retention: Option<Duration>,
    timeout: Duration,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the Config: it holds the password.
        f.debug_struct("PostgresBackend")
            .field("hosts", &self.settings.config.get_hosts())
            .field("dbname", &self.settings.config.get_dbname())
            .field("sslmode", &self.settings.tls.mode)
            .field("schema", &self.settings.schema)
            .field("table", &self.settings.table)
            .field("partitioning", &self.settings.partitioning)
            .field("retention", &self.settings.retention)
            .field("connected", &self.session.is_some())
            .finish()
    }
}

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
        }
    }

    /// Connects now and creates or checks the schema, instead of on the first `send`.
    ///
    /// Useful to fail fast at start-up; the backend reconnects by itself later either way.
    pub async fn prepare(&mut self) -> Result<(), BackendError> {
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, self.session()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                self.session = None;
                Err(error.into_backend_error())
            }
            Err(_) => {
                self.session = None;
                Err(Failure::TimedOut(timeout).into_backend_error())
            }
        }
    }

    async fn session(&mut self) -> Result<&mut Session, Failure> {
        if self.session.as_ref().is_some_and(|s| s.client.is_closed()) {
            self.session = None;
        }
        if self.session.is_none() {
            let session = Session::open(&self.settings)
                .await
                .map_err(|error| Failure::Setup(Box::new(error)))?;
            self.session = Some(session);
            self.next_retention = None;
        }
        let due = self.next_retention.is_none_or(|at| Instant::now() >= at);
        let settings = &self.settings;
        let session = self.session.as_mut().ok_or(Failure::Closed)?;
        if due {
            self.next_retention = Some(Instant::now() + RETENTION_INTERVAL);
            session
                .ensure_ahead(settings.partitioning)
                .await
                .map_err(|error| Failure::Setup(Box::new(error)))?;
            if settings.retention.is_some() {
                // Retention never holds up delivery: a failure is retried at the next interval.
                if let Err(error) = session.apply_retention(settings.partitioning).await {
                    tracing::warn!(backend = NAME, table = %session.table, %error, "audit retention failed");
                    if error.is_connection() {
                        return Err(error);
                    }
                }
            }
        }
        Ok(session)
    }

    async fn deliver(&mut self, batch: &[EncodedEvent]) -> Result<(), Failure> {
        let partitioning = self.settings.partitioning;
        let session = self.session().await?;
        session.ensure_partitions(partitioning, batch).await?;
        let first = match session.insert(batch).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if partitioning != Partitioning::None && first.code() == Some(&SqlState::CHECK_VIOLATION) {
            // A partition dropped behind our back (another writer's retention, an operator).
            session.partitions.clear();
            session.load_partitions(partitioning).await?;
            session.ensure_partitions(partitioning, batch).await?;
            return session.insert_each(batch).await;
        }
        if first.is_permanent() && batch.len() > 1 {
            return session.insert_each(batch).await;
        }
        Err(first)
    }
}

impl Backend for PostgresBackend {
    fn name(&self) -> &str {
        NAME
    }

    async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        if batch.is_empty() {
            return Ok(());
        }
        let timeout = self.settings.timeout;
        let result = match tokio::time::timeout(timeout, self.deliver(batch)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::TimedOut(timeout)),
        };
        match result {
            Ok(()) => Ok(()),
            Err(failure) => {
                if !failure.is_permanent() {
                    // The connection may be mid-statement or broken: start afresh.
                    self.session = None;
                }
                Err(failure.into_backend_error())
            }
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
        if let Some(retention) = self.retention {
            if retention.is_zero() || TimeDelta::from_std(retention).is_err() {
                return Err(ConfigError::invalid(
                    "postgres retention",
                    "must be more than zero and less than about 290 000 years",
                ));
            }
        }
        Ok(PostgresBackend {
            settings: Settings {
                config,
                tls,
                schema: self.schema,
                table: self.table,
                partitioning: self.partitioning,
                retention: self.retention,
                timeout: self.timeout,
            },
            session: None,
            next_retention: None,
        })
    }
}

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

/// `"name"`; callers pass only identifiers checked by `check_identifier` or derived from them.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A connection with the schema in place.
struct Session {
    client: Client,
    connection: JoinHandle<()>,
    schema: String,
    table: String,
    /// `"schema"."table"`.
    qualified: String,
    insert: Statement,
    /// Start days of the partitions known to exist.
    partitions: BTreeSet<NaiveDate>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Session {
    async fn open(settings: &Settings) -> Result<Session, Failure> {
        let (client, connection) = match &settings.tls.connector {
            Some(connector) => {
                let (client, connection) = settings.config.connect(connector.clone()).await?;
                (client, tokio::spawn(drive(connection)))
            }
            None => {
                let (client, connection) = settings.config.connect(NoTls).await?;
                (client, tokio::spawn(drive(connection)))
            }
        };
        let schema = settings.schema.clone();
        let table = settings.table.clone();
        let qualified = format!("{}.{}", quote(&schema), quote(&table));
        let mut session = Session {
            insert: create_schema(&client, settings).await?,
            client,
            connection,
            schema,
            table,
            qualified,
            partitions: BTreeSet::new(),
        };
        if settings.partitioning != Partitioning::None {
            session.load_partitions(settings.partitioning).await?;
        }
        Ok(session)
    }

    async fn load_partitions(&mut self, partitioning: Partitioning) -> Result<(), Failure> {
        for name in self.partition_names().await? {
            if let Some(start) = partition_start(&self.table, &name, partitioning) {
                self.partitions.insert(start);
            }
        }
        Ok(())
    }

    async fn partition_names(&self) -> Result<Vec<String>, Failure> {
        let rows = self
            .client
            .query(
                "SELECT c.relname::text FROM pg_inherits i \
                 JOIN pg_class c ON c.oid = i.inhrelid \
                 WHERE i.inhparent = to_regclass($1)",
                &[&self.qualified],
            )
            .await?;
        rows.iter()
            .map(|row| row.try_get::<_, String>(0).map_err(Failure::from))
            .collect()
    }

    /// Creates the partitions for the current and the next period, so inserts around
    /// midnight (or the first of the month) find theirs in place.
    async fn ensure_ahead(&mut self, partitioning: Partitioning) -> Result<(), Failure> {
        if partitioning == Partitioning::None {
            return Ok(());
        }
        let now = partitioning.start_of(Utc::now());
        let mut wanted = vec![now];
        wanted.extend(partitioning.end_of(now));
        for start in wanted {
            self.create_partition(partitioning, start).await?;
        }
        Ok(())
    }

    async fn ensure_partitions(
        &mut self,
        partitioning: Partitioning,
        batch: &[EncodedEvent],
    ) -> Result<(), Failure> {
        if partitioning == Partitioning::None {
            return Ok(());
        }
        let missing: BTreeSet<NaiveDate> = batch
            .iter()
            .map(|event| partitioning.start_of(event_time(event)))
            .filter(|start| !self.partitions.contains(start))
            .collect();
        for start in missing {
            self.create_partition(partitioning, start).await?;
        }
        Ok(())
    }

    async fn create_partition(
        &mut self,
        partitioning: Partitioning,
        start: NaiveDate,
    ) -> Result<(), Failure> {
        if self.partitions.contains(&start) {
            return Ok(());
        }
        if partitioning.end_of(start).is_none() {
            return Err(Failure::Schema(SchemaProblem::OutOfRange(start)));
        }
        // Through the owner's function: a writer that does not own the table cannot create
        // partitions of it, and so cannot drop them either.
        self.client
            .execute(
                &format!(
                    "SELECT {}.oauth_audit_create_partition($1, $2)",
                    quote(&self.schema)
                ),
                &[&self.table, &start],
            )
            .await?;
        self.partitions.insert(start);
        Ok(())
    }

    async fn insert(&self, batch: &[EncodedEvent]) -> Result<(), Failure> {
        let mut ids = Vec::with_capacity(batch.len());
        let mut times = Vec::with_capacity(batch.len());
        let mut kinds = Vec::with_capacity(batch.len());
        let mut events = Vec::with_capacity(batch.len());
        for event in batch {
            ids.push(event.id());
            times.push(event_time(event));
            kinds.push(event.kind().as_str());
            events.push(event_text(event)?);
        }
        self.client
            .execute(&self.insert, &[&ids, &times, &kinds, &events])
            .await?;
        Ok(())
    }

    /// Inserts events one at a time, after a batch was refused: every event PostgreSQL
    /// accepts is stored, and the refusals are reported together.
    async fn insert_each(&self, batch: &[EncodedEvent]) -> Result<(), Failure> {
        let mut refused = Vec::new();
        for event in batch {
            match self.insert(std::slice::from_ref(event)).await {
                Ok(()) => {}
                Err(failure) if failure.is_permanent() => refused.push((event.id(), failure)),
                Err(failure) => return Err(failure),
            }
        }
        match refused.len() {
            0 => Ok(()),
            n => {
                let (id, first) = refused.swap_remove(0);
                Err(Failure::Refused {
                    refused: n,
                    of: batch.len(),
                    id,
                    first: Box::new(first),
                })
            }
        }
    }

    /// Runs the owner's retention function, which removes only what the retention recorded
    /// in `oauth_audit_schema` allows, whoever calls it.
    async fn apply_retention(&mut self, partitioning: Partitioning) -> Result<(), Failure> {
        let removed: i64 = self
            .client
            .query_one(
                &format!("SELECT {}.oauth_audit_retention($1)", quote(&self.schema)),
                &[&self.table],
            )
            .await?
            .try_get(0)?;
        if removed > 0 {
            if partitioning == Partitioning::None {
                tracing::info!(backend = NAME, table = %self.qualified, rows = removed, "deleted audit events past retention");
            } else {
                self.partitions.clear();
                self.load_partitions(partitioning).await?;
                tracing::info!(backend = NAME, table = %self.qualified, partitions = removed, "dropped audit partitions past retention");
            }
        }
        Ok(())
    }
}

/// Drives a connection until it closes.
async fn drive<F, E>(connection: F)
where
    F: std::future::Future<Output = Result<(), E>>,
    E: fmt::Display,
{
    if let Err(error) = connection.await {
        tracing::debug!(backend = NAME, %error, "postgres connection closed");
    }
}

/// The start day encoded in the name of one of `table`'s partitions.
fn partition_start(table: &str, name: &str, partitioning: Partitioning) -> Option<NaiveDate> {
    let suffix = name.strip_prefix(table)?.strip_prefix("_p")?;
    partitioning.parse_suffix(suffix)
}

fn event_time(event: &EncodedEvent) -> DateTime<Utc> {
    // Timestamps are microseconds since the epoch, well within chrono's range.
    DateTime::from_timestamp_micros(event.time().unix_micros()).unwrap_or_default()
}

fn event_text(event: &EncodedEvent) -> Result<&str, Failure> {
    std::str::from_utf8(event.json()).map_err(|_| Failure::NotUtf8(event.id()))
}

/// The advisory lock serialising schema changes: one per schema, as tables in a schema
/// share the versions table and the trigger function.
fn lock_key(schema: &str) -> String {
    format!("oauth_audit:{schema}")
}

/// A string literal for SQL built here (never from event data).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Creates, migrates or checks the schema; returns the prepared insert.
///
/// A table already at [`SCHEMA_VERSION`] gets no DDL at all, so a writer that does not own
/// it (granted only `INSERT`, `SELECT` and the maintenance functions) starts as well.
async fn create_schema(client: &Client, settings: &Settings) -> Result<Statement, Failure> {
    let (schema, table, partitioning) = (&settings.schema, &settings.table, settings.partitioning);
    let qualified = format!("{}.{}", quote(schema), quote(table));
    let versions = format!("{}.{}", quote(schema), quote(VERSIONS_TABLE));

    client.batch_execute("BEGIN").await?;
    let result = async {
        client
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&lock_key(schema)],
            )
            .await?;
        let schema_exists = client
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[schema])
            .await?
            .is_some();
        if !schema_exists {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote(schema)))
                .await?;
        }
        let versions_exist = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&versions])
            .await?
            .try_get::<_, bool>(0)?;
        if !versions_exist {
            client.batch_execute(&ddl::versions_table(schema)).await?;
        }
        let recorded = client
            .query_opt(
                &format!("SELECT version, partitioning FROM {versions} WHERE table_name = $1"),
                &[table],
            )
            .await?;
        match recorded {
            Some(row) => {
                let version: i32 = row.try_get(0)?;
                let recorded_partitioning: String = row.try_get(1)?;
                if version > SCHEMA_VERSION {
                    return Err(Failure::Schema(SchemaProblem::Newer {
                        table: qualified.clone(),
                        version,
                    }));
                }
                if recorded_partitioning != partitioning.as_str() {
                    return Err(Failure::Schema(SchemaProblem::Partitioning {
                        table: qualified.clone(),
                        recorded: recorded_partitioning,
                        configured: partitioning.as_str(),
                    }));
                }
                if version < SCHEMA_VERSION {
                    migrate(client, settings, &qualified, version).await?;
                }
            }
            None => {
                let exists = client
                    .query_one("SELECT to_regclass($1) IS NOT NULL", &[&qualified])
                    .await?
                    .try_get::<_, bool>(0)?;
                if exists {
                    return Err(Failure::Schema(SchemaProblem::Foreign {
                        table: qualified.clone(),
                    }));
                }
                client.batch_execute(&ddl::functions(schema)).await?;
                client
                    .batch_execute(&ddl::events_table(
                        schema,
                        table,
                        partitioning != Partitioning::None,
                    ))
                    .await?;
                client
                    .execute(
                        &format!(
                            "INSERT INTO {versions} (table_name, version, partitioning) VALUES ($1, $2, $3)"
                        ),
                        &[table, &SCHEMA_VERSION, &partitioning.as_str()],
                    )
                    .await?;
            }
        }
        if let Some(retention) = settings.retention {
            record_retention(client, &versions, &qualified, table, retention).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => client.batch_execute("COMMIT").await?,
        Err(error) => {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(error);
        }
    }

    let insert = client
        .prepare_typed(
            &format!(
                "INSERT INTO {qualified} (id, time, kind, event)
                 SELECT id, time, kind, event::jsonb
                 FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[]) AS e(id, time, kind, event)
                 ON CONFLICT DO NOTHING"
            ),
            &[
                Type::UUID_ARRAY,
                Type::TIMESTAMPTZ_ARRAY,
                Type::TEXT_ARRAY,
                Type::TEXT_ARRAY,
            ],
        )
        .await?;
    Ok(insert)
}

/// Whether the connected role owns `qualified`: only the owner migrates the table and
/// records its retention.
async fn owns(client: &Client, qualified: &str) -> Result<bool, Failure> {
    Ok(client
        .query_one(
            "SELECT coalesce(pg_get_userbyid(relowner) = current_user, false) \
             FROM pg_class WHERE oid = to_regclass($1)",
            &[&qualified],
        )
        .await?
        .try_get::<_, bool>(0)?)
}

/// Migrates a table recorded at `from` to [`SCHEMA_VERSION`], inside the caller's transaction.
async fn migrate(
    client: &Client,
    settings: &Settings,
    qualified: &str,
    from: i32,
) -> Result<(), Failure> {
    if !owns(client, qualified).await? {
        return Err(Failure::Schema(SchemaProblem::NeedsOwner {
            table: qualified.to_owned(),
            version: from,
        }));
    }
    // Version 1 let any session that set `oauth_audit.retention_cutoff` delete rows; the new
    // trigger body replaces it for the table and all its partitions at once.
    client
        .batch_execute(&ddl::versions_table_v2(&settings.schema))
        .await?;
    client
        .batch_execute(&ddl::functions(&settings.schema))
        .await?;
    client
        .execute(
            &format!(
                "UPDATE {}.{} SET version = $2, updated_at = now() WHERE table_name = $1",
                quote(&settings.schema),
                quote(VERSIONS_TABLE)
            ),
            &[&settings.table, &SCHEMA_VERSION],
        )
        .await?;
    tracing::info!(
        backend = NAME,
        table = %qualified,
        from,
        to = SCHEMA_VERSION,
        "migrated the audit table's layout"
    );
    Ok(())
}

/// Records the configured retention, which the database itself enforces, when the connected
/// role owns the table; otherwise warns when the owner recorded something else.
async fn record_retention(
    client: &Client,
    versions: &str,
    qualified: &str,
    table: &str,
    retention: Duration,
) -> Result<(), Failure> {
    let seconds = retention.as_secs_f64();
    let same = client
        .query_one(
            &format!(
                "SELECT coalesce(bool_or(retention = make_interval(secs => $2)), false) \
                 FROM {versions} WHERE table_name = $1"
            ),
            &[&table, &seconds],
        )
        .await?
        .try_get::<_, bool>(0)?;
    if same {
        return Ok(());
    }
    if owns(client, qualified).await? {
        client
            .execute(
                &format!(
                    "UPDATE {versions} SET retention = make_interval(secs => $2), updated_at = now() \
                     WHERE table_name = $1"
                ),
                &[&table, &seconds],
            )
            .await?;
    } else {
        tracing::warn!(
            backend = NAME,
            table = %qualified,
            configured = ?retention,
            "the retention configured here differs from the one the table's owner recorded, which is the one applied: \
             configure it on a writer that connects as the owner"
        );
    }
    Ok(())
}

/// Why a `send` failed, before it is classified.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("the connection closed")]
    Closed,
    #[error(transparent)]
    Schema(#[from] SchemaProblem),
    /// Connecting or creating the schema failed: never the events' fault, whatever the
    /// SQLSTATE (two writers racing to create a schema can see a unique violation).
    #[error("setting up the table: {0}")]
    Setup(Box<Failure>),
    #[error("event {0} is not UTF-8")]
    NotUtf8(Uuid),
    #[error("{refused} of {of} events refused, the first ({id}): {first}")]
    Refused {
        refused: usize,
        of: usize,
        id: Uuid,
        first: Box<Failure>,
    },
}

/// The schema is not one this version can write to; an operator can fix it, so events are
/// kept (retried and spooled) meanwhile.
#[derive(Debug, thiserror::Error)]
enum SchemaProblem {
    #[error("{table} has layout version {version}, newer than this oauth-audit understands ({SCHEMA_VERSION}): upgrade oauth-audit")]
    Newer { table: String, version: i32 },
    #[error("{table} was created with {recorded} partitioning, the backend is configured for {configured}: configure {recorded}, or use another table")]
    Partitioning {
        table: String,
        recorded: String,
        configured: &'static str,
    },
    #[error("{table} exists but was not created by oauth-audit: choose another table with PostgresBackendBuilder::table")]
    Foreign { table: String },
    #[error("no partition can start at {0}")]
    OutOfRange(NaiveDate),
    #[error("{table} has layout version {version} and must be migrated to {SCHEMA_VERSION} by its owner: start oauth-audit once with the owning role (or prepare() a backend connected as it)")]
    NeedsOwner { table: String, version: i32 },
}

impl Failure {
    fn code(&self) -> Option<&SqlState> {
        match self {
            Failure::Postgres(error) => error.code(),
            _ => None,
        }
    }

    /// Whether the events themselves were refused, so resending cannot help.
    fn is_permanent(&self) -> bool {
        match self {
            Failure::NotUtf8(_) | Failure::Refused { .. } => true,
            Failure::Postgres(_) => self.code().is_some_and(|code| {
                let class = &code.code()[..2];
                // 22: data exceptions (a value jsonb or inet cannot take); 23: constraint
                // violations (the key conflicts are absorbed by ON CONFLICT).
                class == "22" || class == "23"
            }),
            Failure::TimedOut(_) | Failure::Closed | Failure::Schema(_) | Failure::Setup(_) => {
                false
            }
        }
    }

    fn is_connection(&self) -> bool {
        match self {
            Failure::Postgres(error) => error.is_closed() || error.code().is_none(),
            Failure::TimedOut(_) | Failure::Closed => true,
            Failure::Setup(inner) => inner.is_connection(),
            _ => false,
        }
    }

    fn into_backend_error(self) -> BackendError {
        if self.is_permanent() {
            BackendError::rejected(NAME, self)
        } else {
            BackendError::unavailable(NAME, self)
        }
    }
}

/// The server's message and SQLSTATE, which `tokio_postgres::Error` alone shows as "db error".
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{} ({})", db.message(), db.code().code());
            if let Some(hint) = db.hint() {
                text.push_str(": ");
                text.push_str(hint);
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
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

    #[test]
    fn partitions_cover_their_period() {
        let time = DateTime::parse_from_rfc3339("2026-02-28T23:59:59.999999Z")
            .unwrap()
            .with_timezone(&Utc);
        let day = Partitioning::Daily.start_of(time);
        assert_eq!(Partitioning::Daily.suffix(day), "20260228");
        assert_eq!(
            Partitioning::Daily.end_of(day),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        let month = Partitioning::Monthly.start_of(time);
        assert_eq!(Partitioning::Monthly.suffix(month), "202602");
        assert_eq!(
            Partitioning::Monthly.end_of(month),
            NaiveDate::from_ymd_opt(2026, 3, 1)
        );
        let (daily, monthly) = (Partitioning::Daily, Partitioning::Monthly);
        assert_eq!(
            partition_start("events", "events_p202602", monthly),
            Some(month)
        );
        assert_eq!(
            partition_start("events", "events_p20260228", daily),
            Some(day)
        );
        assert_eq!(partition_start("events", "events_p20260228", monthly), None);
        assert_eq!(partition_start("events", "events_p2026022", daily), None);
        assert_eq!(partition_start("events", "other_p202602", monthly), None);
        assert_eq!(partition_start("events", "events_p2026x2", monthly), None);
    }
}
