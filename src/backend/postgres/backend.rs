//! The backend itself and its [`Backend`] impl: a `send` opens (or reuses) a session, makes
//! sure the batch's partitions exist and inserts it, falling back to one insert per event
//! when PostgreSQL refuses one.

use std::fmt;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;

use super::classify::Failure;
use super::session::Session;
use super::settings::{Partitioning, Settings, NAME};
use crate::delivery::{Backend, BackendError, EncodedEvent};

/// How often `send` runs retention.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

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
/// TLS is rustls (aws-lc-rs), configured with libpq's options in the connection string:
/// `sslmode` `disable`, `prefer` (the default: TLS when the server offers it), `require`,
/// `verify-ca` or `verify-full`; `sslrootcert` (a PEM file of trusted CAs, or `system` for the
/// operating system's store, which needs `verify-full`); `sslcert` and `sslkey` (a client
/// certificate and its key, PEM). As in libpq, a `sslrootcert` makes every mode check the
/// certificate chain, `verify-full` checks the host name too, and `prefer`/`require` without
/// one encrypt without checking who answers. Use `verify-full` across any network you do not
/// control. Certificate files are read by
/// [`PostgresBackendBuilder::build`](super::PostgresBackendBuilder::build).
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
    pub(super) settings: Settings,
    session: Option<Session>,
    next_retention: Option<Instant>,
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

impl PostgresBackend {
    /// A backend with checked settings, not connected yet.
    pub(super) fn new(settings: Settings) -> PostgresBackend {
        PostgresBackend {
            settings,
            session: None,
            next_retention: None,
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

    /// The open session (opened, and maintenance run, when due) with the settings it runs on.
    async fn session(&mut self) -> Result<(&mut Session, &Settings), Failure> {
        if self.session.as_ref().is_some_and(Session::is_closed) {
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
                .ensure_ahead(settings)
                .await
                .map_err(|error| Failure::Setup(Box::new(error)))?;
            if settings.retention.is_some() {
                // Retention never holds up delivery: a failure is retried at the next interval.
                if let Err(error) = session.apply_retention(settings).await {
                    tracing::warn!(backend = NAME, table = %settings.table, %error, "audit retention failed");
                    if error.is_connection() {
                        return Err(error);
                    }
                }
            }
        }
        Ok((session, settings))
    }

    async fn deliver(&mut self, batch: &[EncodedEvent]) -> Result<(), Failure> {
        let (session, settings) = self.session().await?;
        let partitioning = settings.partitioning;
        session.ensure_partitions(settings, batch).await?;
        let first = match session.insert(batch).await {
            Ok(()) => return Ok(()),
            Err(failure) => failure,
        };
        if partitioning != Partitioning::None && first.code() == Some(&SqlState::CHECK_VIOLATION) {
            // A partition dropped behind our back (another writer's retention, an operator).
            session.reload_partitions(settings).await?;
            session.ensure_partitions(settings, batch).await?;
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
