//! The failure classifier: why a `send` failed, and whether resending can help (the events
//! are kept, retried and spooled) or cannot (PostgreSQL refused the events themselves).

use std::time::Duration;

use chrono::NaiveDate;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::settings::{NAME, SCHEMA_VERSION};
use crate::delivery::BackendError;

/// Why a `send` failed, before it is classified.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
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
pub(super) enum SchemaProblem {
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
    /// The SQLSTATE the server answered with, if it answered.
    pub(super) fn code(&self) -> Option<&SqlState> {
        match self {
            Failure::Postgres(error) => error.code(),
            _ => None,
        }
    }

    /// Whether the events themselves were refused, so resending cannot help.
    pub(super) fn is_permanent(&self) -> bool {
        match self {
            Failure::NotUtf8(_) | Failure::Refused { .. } => true,
            Failure::Postgres(_) => self.code().is_some_and(|code| {
                let class = &code.code()[..2];
                // 22: data exceptions (a value jsonb or inet cannot take); 23: constraint
                // violations (the key conflicts are absorbed by ON CONFLICT); 54: limits an
                // event exceeds however often it is sent (a value too large for an index
                // entry). A batch refused for any of them is inserted again event by event.
                class == "22" || class == "23" || class == "54"
            }),
            Failure::TimedOut(_) | Failure::Closed | Failure::Schema(_) | Failure::Setup(_) => {
                false
            }
        }
    }

    /// Whether the connection itself failed, so the session must be opened again.
    pub(super) fn is_connection(&self) -> bool {
        match self {
            Failure::Postgres(error) => error.is_closed() || error.code().is_none(),
            Failure::TimedOut(_) | Failure::Closed => true,
            Failure::Setup(inner) => inner.is_connection(),
            _ => false,
        }
    }

    /// The error `Delivery` sees: refused events are dropped and reported, anything else
    /// is retried and spooled.
    pub(super) fn into_backend_error(self) -> BackendError {
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
    fn refused_events_are_permanent_and_setup_problems_are_not() {
        let id = Uuid::nil();
        assert!(Failure::NotUtf8(id).is_permanent());
        let refused = Failure::Refused {
            refused: 1,
            of: 2,
            id,
            first: Box::new(Failure::NotUtf8(id)),
        };
        assert!(refused.is_permanent());
        assert!(!refused.into_backend_error().is_retryable());
        for transient in [
            Failure::TimedOut(Duration::from_secs(1)),
            Failure::Closed,
            Failure::Schema(SchemaProblem::Foreign { table: "t".into() }),
            // Even a refusal is not the events' fault while the table is being set up.
            Failure::Setup(Box::new(Failure::NotUtf8(id))),
        ] {
            assert!(!transient.is_permanent(), "{transient}");
            assert!(transient.into_backend_error().is_retryable());
        }
    }

    #[test]
    fn timeouts_and_closed_connections_call_for_a_new_session() {
        assert!(Failure::TimedOut(Duration::from_secs(1)).is_connection());
        assert!(Failure::Closed.is_connection());
        assert!(Failure::Setup(Box::new(Failure::Closed)).is_connection());
        assert!(!Failure::NotUtf8(Uuid::nil()).is_connection());
        let newer = Failure::Schema(SchemaProblem::Newer {
            table: "t".into(),
            version: SCHEMA_VERSION + 1,
        });
        assert!(!newer.is_connection());
        assert!(newer.to_string().contains("upgrade oauth-audit"), "{newer}");
    }
}
