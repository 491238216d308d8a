//! The backend itself and its [`Backend`] impl: a `send` opens (or reuses) its sessions,
//! splits a large batch into parts, one per session, and on each makes sure the part's
//! partitions exist and inserts it, falling back to one insert per event when PostgreSQL
//! refuses one.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
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
/// any failure. A batch of at least 128 events is split into contiguous parts inserted at the
/// same time on up to [`connections`](super::PostgresBackendBuilder::connections) sessions
/// (default 2), each committed on its own; `send` succeeds once every part is committed, and
/// a batch sent again after a failure skips what one of its parts already stored. Unreachable servers, timeouts, shutdowns and schema problems an operator can
/// fix are [`BackendError::Unavailable`] (retried and spooled); events PostgreSQL refuses as
/// data (SQLSTATE classes 22 and 23, e.g. a `\u0000` that `jsonb` cannot store, and 54, e.g.
/// a subject too long for its index) are
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
    /// One slot per connection (`settings.connections` of them), opened when first needed;
    /// the first also runs the maintenance (partitions ahead, retention).
    sessions: Vec<Option<Session>>,
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
            .field("connections", &self.settings.connections)
            .field("connected", &self.connected())
            .finish()
    }
}

impl PostgresBackend {
    /// A backend with checked settings, not connected yet.
    pub(super) fn new(settings: Settings) -> PostgresBackend {
        PostgresBackend {
            sessions: (0..settings.connections).map(|_| None).collect(),
            settings,
            next_retention: None,
        }
    }

    /// Connects now and creates or checks the schema, instead of on the first `send`.
    ///
    /// Useful to fail fast at start-up; the backend reconnects by itself later either way.
    /// Only the first connection opens here; the others open when a batch needs them.
    pub async fn prepare(&mut self) -> Result<(), BackendError> {
        let deadline = Instant::now() + self.settings.timeout;
        self.forget_closed();
        self.primary(deadline)
            .await
            .map_err(Failure::into_backend_error)
    }

    /// How many sessions are open.
    fn connected(&self) -> usize {
        self.sessions
            .iter()
            .flatten()
            .filter(|session| !session.is_closed())
            .count()
    }

    /// Drops the sessions whose connection is gone, so they are opened again.
    fn forget_closed(&mut self) {
        for slot in &mut self.sessions {
            if slot.as_ref().is_some_and(Session::is_closed) {
                *slot = None;
            }
        }
    }

    /// Opens the first session when needed and runs the maintenance when due (on connecting,
    /// then hourly), before `deadline`. On a failure that is not the events' fault, the
    /// session is dropped.
    async fn primary(&mut self, deadline: Instant) -> Result<(), Failure> {
        let timeout = self.settings.timeout;
        let result = match tokio::time::timeout_at(deadline, self.open_primary()).await {
            Ok(result) => result,
            Err(_) => Err(Failure::TimedOut(timeout)),
        };
        if result
            .as_ref()
            .is_err_and(|failure| !failure.is_permanent())
        {
            if let Some(slot) = self.sessions.first_mut() {
                *slot = None;
            }
        }
        result
    }

    async fn open_primary(&mut self) -> Result<(), Failure> {
        let settings = &self.settings;
        let slot = self.sessions.first_mut().ok_or(Failure::Closed)?;
        let session = match slot {
            Some(session) => session,
            None => {
                self.next_retention = None;
                slot.insert(open(settings).await?)
            }
        };
        let due = self.next_retention.is_none_or(|at| Instant::now() >= at);
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
        Ok(())
    }

    /// Inserts the batch: in one part on the first session, or, when it is large enough,
    /// in contiguous parts on several sessions at once, each committed separately.
    async fn deliver(&mut self, batch: &[EncodedEvent], deadline: Instant) -> Result<(), Failure> {
        self.forget_closed();
        self.primary(deadline).await?;
        let parts = split(batch, self.sessions.len());
        let settings = &self.settings;
        let results = futures_util::future::join_all(
            self.sessions
                .iter_mut()
                .zip(parts)
                .map(|(slot, part)| deliver_part(slot, settings, part, deadline)),
        )
        .await;
        combine(results, batch.len())
    }
}

/// Opens a session: connects, creates or checks the layout, prepares the insert.
async fn open(settings: &Settings) -> Result<Session, Failure> {
    Session::open(settings)
        .await
        .map_err(|error| Failure::Setup(Box::new(error)))
}

/// Inserts one part on one session before `deadline`, opening the session when needed, and
/// drops the session after a failure that is not the events' fault (its state is in doubt).
async fn deliver_part(
    slot: &mut Option<Session>,
    settings: &Settings,
    part: &[EncodedEvent],
    deadline: Instant,
) -> Result<(), Failure> {
    let result = match tokio::time::timeout_at(deadline, insert_part(slot, settings, part)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::TimedOut(settings.timeout)),
    };
    if result
        .as_ref()
        .is_err_and(|failure| !failure.is_permanent())
    {
        // The connection may be mid-statement or broken: start afresh.
        *slot = None;
    }
    result
}

async fn insert_part(
    slot: &mut Option<Session>,
    settings: &Settings,
    part: &[EncodedEvent],
) -> Result<(), Failure> {
    let session = match slot {
        Some(session) => session,
        None => slot.insert(open(settings).await?),
    };
    let partitioning = settings.partitioning;
    session.ensure_partitions(settings, part).await?;
    let first = match session.insert(part).await {
        Ok(()) => return Ok(()),
        Err(failure) => failure,
    };
    if partitioning != Partitioning::None && first.code() == Some(&SqlState::CHECK_VIOLATION) {
        // A partition dropped behind our back (another writer's retention, an operator).
        session.reload_partitions(settings).await?;
        session.ensure_partitions(settings, part).await?;
        return session.insert_each(part).await;
    }
    if first.is_permanent() && part.len() > 1 {
        return session.insert_each(part).await;
    }
    Err(first)
}

/// The fewest events in one part of a split batch: below this, the extra statement and
/// commit cost more than another connection saves.
const MIN_PART: usize = 64;

/// The batch in at most `connections` contiguous parts of at least [`MIN_PART`] events,
/// their sizes differing by one at most; the whole batch when it is smaller than two parts.
fn split<T>(batch: &[T], connections: usize) -> Vec<&[T]> {
    let count = (batch.len() / MIN_PART).clamp(1, connections.max(1));
    let (size, extra) = (batch.len() / count, batch.len() % count);
    let mut parts = Vec::with_capacity(count);
    let mut rest = batch;
    for i in 0..count {
        let (part, tail) = rest.split_at(size + usize::from(i < extra));
        parts.push(part);
        rest = tail;
    }
    parts
}

/// One result for the batch from its parts' results: the first failure that calls for a
/// retry (the whole batch is sent again), else the refusals added up, else success.
fn combine(results: Vec<Result<(), Failure>>, total: usize) -> Result<(), Failure> {
    if results.len() == 1 {
        return results.into_iter().next().unwrap_or(Ok(()));
    }
    let mut refusal: Option<Failure> = None;
    for result in results {
        let Err(failure) = result else { continue };
        if !failure.is_permanent() {
            return Err(failure);
        }
        refusal = Some(match (refusal, failure) {
            (None, failure) => failure,
            (
                Some(Failure::Refused {
                    refused, id, first, ..
                }),
                Failure::Refused { refused: more, .. },
            ) => Failure::Refused {
                refused: refused + more,
                of: total,
                id,
                first,
            },
            // Parts hold at least MIN_PART events, so their refusals are `Refused`; any
            // other permanent failure is reported as it is.
            (Some(kept), _) => kept,
        });
    }
    match refusal {
        None => Ok(()),
        Some(Failure::Refused {
            refused, id, first, ..
        }) => Err(Failure::Refused {
            refused,
            of: total,
            id,
            first,
        }),
        Some(other) => Err(other),
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
        let deadline = Instant::now() + self.settings.timeout;
        self.deliver(batch, deadline)
            .await
            .map_err(Failure::into_backend_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn sizes(len: usize, connections: usize) -> Vec<usize> {
        let batch = vec![0u8; len];
        let parts = split(&batch, connections);
        // Contiguous, in order, covering the batch exactly once.
        let mut at = 0;
        for part in &parts {
            assert_eq!(part.as_ptr(), batch[at..].as_ptr());
            at += part.len();
        }
        assert_eq!(at, len);
        parts.iter().map(|part| part.len()).collect()
    }

    #[test]
    fn batches_split_only_into_parts_worth_a_connection() {
        assert_eq!(sizes(1, 4), [1]);
        assert_eq!(sizes(2 * MIN_PART - 1, 4), [2 * MIN_PART - 1]);
        assert_eq!(sizes(2 * MIN_PART, 4), [MIN_PART, MIN_PART]);
        assert_eq!(sizes(256, 2), [128, 128]);
        assert_eq!(sizes(257, 2), [129, 128]);
        assert_eq!(sizes(1000, 3), [334, 333, 333]);
        assert_eq!(
            sizes(3 * MIN_PART + 1, 16),
            [MIN_PART + 1, MIN_PART, MIN_PART]
        );
        assert_eq!(sizes(10_000, 1), [10_000]);
        assert_eq!(sizes(0, 2), [0]);
    }

    fn refused(refused: usize, of: usize, id: Uuid) -> Result<(), Failure> {
        Err(Failure::Refused {
            refused,
            of,
            id,
            first: Box::new(Failure::NotUtf8(id)),
        })
    }

    #[test]
    fn parts_combine_into_one_result_for_the_batch() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(combine(vec![Ok(()), Ok(())], 200).is_ok());
        // Refusals add up, reported against the whole batch, the first part's event first.
        let both = combine(vec![Ok(()), refused(2, 100, a), refused(1, 100, b)], 300);
        let message = both.unwrap_err().to_string();
        assert!(message.starts_with("3 of 300 events refused"), "{message}");
        assert!(message.contains(&a.to_string()), "{message}");
        // Anything to retry wins over refusals: the whole batch is sent again.
        let retry =
            combine(vec![refused(1, 100, a), Err(Failure::Closed), Ok(())], 300).unwrap_err();
        assert!(!retry.is_permanent(), "{retry}");
        // One part: its result as it is.
        let one = combine(vec![refused(1, 7, a)], 7).unwrap_err();
        assert!(
            one.to_string().starts_with("1 of 7 events refused"),
            "{one}"
        );
    }
}
