//! The session: one connection with the layout in place, the prepared statements and the
//! partitions known on it, and the statements a batch runs on it. The layout itself is
//! `schema.rs`'s, the partitions `partition.rs`'s; a session only holds them together.
//!
//! A batch goes in by binary `COPY` into a temporary staging table, then one
//! `INSERT ... SELECT ... ON CONFLICT DO NOTHING` into the events table, in one transaction:
//! the events cross the wire in PostgreSQL's own binary format (no arrays to build and take
//! apart), and the insert stays idempotent, so a batch sent twice is stored once.

use std::fmt;

use bytes::{BufMut, BytesMut};
use tokio::task::JoinHandle;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

use super::classify::Failure;
use super::partition::{event_time, Partitions};
use super::settings::{Settings, NAME};
use super::{ddl, schema};
use crate::delivery::EncodedEvent;

/// The staging table of a session: temporary (so private to the connection, and not
/// written to the WAL), emptied by every commit.
const STAGING: &str = "pg_temp.oauth_audit_staging";

/// The column types of the staging table, in the order `COPY` sends them.
const STAGING_TYPES: [Type; 4] = [Type::UUID, Type::TIMESTAMPTZ, Type::TEXT, Type::JSONB];

/// A connection with the schema in place.
pub(super) struct Session {
    client: Client,
    connection: JoinHandle<()>,
    /// The insert from arrays: one event at a time after a batch was refused, and whole
    /// batches where the role may not create temporary tables.
    insert: Statement,
    /// `COPY` into the staging table and the insert from it, where the staging table exists.
    staged: Option<Staged>,
    /// Set while a transaction is open: a send dropped half way (its timeout) leaves it set,
    /// and the session is then replaced rather than trusted.
    in_transaction: bool,
    partitions: Partitions,
}

/// The statements of the staging path.
struct Staged {
    copy: Statement,
    insert: Statement,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Session {
    /// Connects, creates or checks the layout, and prepares the insert.
    pub(super) async fn open(settings: &Settings) -> Result<Session, Failure> {
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
        schema::ensure(&client, settings).await?;
        let qualified = ddl::qualified(&settings.schema, &settings.table);
        let insert = prepare_insert(&client, &qualified).await?;
        let staged = prepare_staging(&client, &qualified).await?;
        let partitions = Partitions::load(&client, settings).await?;
        Ok(Session {
            client,
            connection,
            insert,
            staged,
            in_transaction: false,
            partitions,
        })
    }

    /// Whether the connection is gone, or was left inside a transaction, so a new session is
    /// needed.
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed() || self.in_transaction
    }

    /// Creates the partitions for the current and the next period.
    pub(super) async fn ensure_ahead(&mut self, settings: &Settings) -> Result<(), Failure> {
        self.partitions.ensure_ahead(&self.client, settings).await
    }

    /// Creates the partitions the batch's events fall into, where not known to exist.
    pub(super) async fn ensure_partitions(
        &mut self,
        settings: &Settings,
        batch: &[EncodedEvent],
    ) -> Result<(), Failure> {
        self.partitions
            .ensure_for(&self.client, settings, batch)
            .await
    }

    /// Reads the existing partitions again, after one was dropped behind the session's back.
    pub(super) async fn reload_partitions(&mut self, settings: &Settings) -> Result<(), Failure> {
        self.partitions.reload(&self.client, settings).await
    }

    /// Runs the owner's retention function and forgets what it dropped.
    pub(super) async fn apply_retention(&mut self, settings: &Settings) -> Result<(), Failure> {
        self.partitions
            .apply_retention(&self.client, settings)
            .await
    }

    /// Inserts the batch in one transaction; events already stored are skipped.
    pub(super) async fn insert(&mut self, batch: &[EncodedEvent]) -> Result<(), Failure> {
        let staged = match &self.staged {
            Some(staged) if batch.len() > 1 => staged,
            _ => return self.insert_arrays(batch).await,
        };
        // Checked before the transaction opens, as the insert from arrays does.
        for event in batch {
            event_text(event)?;
        }
        // Cleared only once the transaction is over: a send dropped half way leaves it set.
        self.in_transaction = true;
        // `BEGIN` and the start of the `COPY` go out together: one round trip.
        let (begun, sink) = tokio::join!(
            self.client.batch_execute("BEGIN"),
            self.client.copy_in(&staged.copy)
        );
        begun?;
        let writer = BinaryCopyInWriter::new(sink?, &STAGING_TYPES);
        let mut writer = std::pin::pin!(writer);
        for event in batch {
            let id = event.id();
            let time = event_time(event);
            let kind = event.kind().as_str();
            let json = Jsonb(event.json());
            writer.as_mut().write(&[&id, &time, &kind, &json]).await?;
        }
        // The end of the `COPY`, the insert and the `COMMIT` go out together too: the server
        // runs them in order, and a `COMMIT` after a failed statement rolls back.
        let (copied, inserted, committed) = tokio::join!(
            writer.finish(),
            self.client.execute(&staged.insert, &[]),
            self.client.batch_execute("COMMIT")
        );
        committed?;
        self.in_transaction = false;
        // The first failure is the one that tells why; what follows it only says that the
        // transaction was aborted.
        copied?;
        inserted?;
        Ok(())
    }

    /// Inserts the batch in one statement from arrays; events already stored are skipped.
    async fn insert_arrays(&self, batch: &[EncodedEvent]) -> Result<(), Failure> {
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
    pub(super) async fn insert_each(&self, batch: &[EncodedEvent]) -> Result<(), Failure> {
        let mut refused = Vec::new();
        for event in batch {
            match self.insert_arrays(std::slice::from_ref(event)).await {
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
}

/// The insert every batch runs: one statement whatever the batch size, the events passed as
/// arrays, and `ON CONFLICT DO NOTHING` so a resent event is stored once.
async fn prepare_insert(client: &Client, qualified: &str) -> Result<Statement, Failure> {
    Ok(client
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
        .await?)
}

/// Creates the session's staging table and prepares the `COPY` into it and the insert from
/// it. `None` where the role may not create temporary tables: batches then go in by the
/// insert from arrays.
async fn prepare_staging(client: &Client, qualified: &str) -> Result<Option<Staged>, Failure> {
    let created = client
        .batch_execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS oauth_audit_staging (
                 id uuid NOT NULL,
                 time timestamptz NOT NULL,
                 kind text NOT NULL,
                 event jsonb NOT NULL
             ) ON COMMIT DELETE ROWS",
        )
        .await;
    if let Err(error) = created {
        if error.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) {
            tracing::debug!(backend = NAME, %error, "no temporary staging table; inserting from arrays");
            return Ok(None);
        }
        return Err(error.into());
    }
    let copy = client
        .prepare(&format!(
            "COPY {STAGING} (id, time, kind, event) FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let insert = client
        .prepare(&format!(
            "INSERT INTO {qualified} (id, time, kind, event)
             SELECT id, time, kind, event FROM {STAGING}
             ON CONFLICT DO NOTHING"
        ))
        .await?;
    Ok(Some(Staged { copy, insert }))
}

/// An event's JSON as a `jsonb` value in the binary format: the format version (1), then
/// the text, which the server parses as it would parse `text::jsonb`.
#[derive(Debug)]
struct Jsonb<'a>(&'a [u8]);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.put_u8(1);
        out.put_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    to_sql_checked!();
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

fn event_text(event: &EncodedEvent) -> Result<&str, Failure> {
    std::str::from_utf8(event.json()).map_err(|_| Failure::NotUtf8(event.id()))
}
