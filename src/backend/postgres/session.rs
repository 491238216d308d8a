//! The session: one connection with the layout in place and the prepared insert, and the
//! statements a batch runs on it.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};

use super::classify::Failure;
use super::{ddl, schema, Partitioning, Settings, NAME};
use crate::delivery::EncodedEvent;

/// A connection with the schema in place.
pub(super) struct Session {
    pub(super) client: Client,
    connection: JoinHandle<()>,
    pub(super) schema: String,
    pub(super) table: String,
    /// `"schema"."table"`.
    pub(super) qualified: String,
    insert: Statement,
    /// Start days of the partitions known to exist.
    pub(super) partitions: BTreeSet<NaiveDate>,
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
        let schema = settings.schema.clone();
        let table = settings.table.clone();
        let qualified = ddl::qualified(&schema, &table);
        let mut session = Session {
            insert: prepare_insert(&client, &qualified).await?,
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

    /// Inserts the batch in one statement; events already stored are skipped.
    pub(super) async fn insert(&self, batch: &[EncodedEvent]) -> Result<(), Failure> {
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

pub(super) fn event_time(event: &EncodedEvent) -> DateTime<Utc> {
    // Timestamps are microseconds since the epoch, well within chrono's range.
    DateTime::from_timestamp_micros(event.time().unix_micros()).unwrap_or_default()
}

fn event_text(event: &EncodedEvent) -> Result<&str, Failure> {
    std::str::from_utf8(event.json()).map_err(|_| Failure::NotUtf8(event.id()))
}
