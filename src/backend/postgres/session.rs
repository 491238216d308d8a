//! The session: one connection with the layout in place, the prepared insert and the
//! partitions known on it, and the statements a batch runs on it. The layout itself is
//! `schema.rs`'s, the partitions `partition.rs`'s; a session only holds them together.

use std::fmt;

use tokio::task::JoinHandle;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, Statement};

use super::classify::Failure;
use super::partition::{event_time, Partitions};
use super::settings::{Settings, NAME};
use super::{ddl, schema};
use crate::delivery::EncodedEvent;

/// A connection with the schema in place.
pub(super) struct Session {
    client: Client,
    connection: JoinHandle<()>,
    insert: Statement,
    partitions: Partitions,
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
        let partitions = Partitions::load(&client, settings).await?;
        Ok(Session {
            client,
            connection,
            insert,
            partitions,
        })
    }

    /// Whether the connection is gone, so a new session is needed.
    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
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

fn event_text(event: &EncodedEvent) -> Result<&str, Failure> {
    std::str::from_utf8(event.json()).map_err(|_| Failure::NotUtf8(event.id()))
}
