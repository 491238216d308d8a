//! Remote backends for [`Delivery`](crate::delivery): each speaks one protocol and is
//! enabled by its own cargo feature.
//!
//! | backend | feature | deduplicates on the event id by |
//! | --- | --- | --- |
//! | `PostgresBackend` | `postgres` | the key `(id, time)` and `INSERT ... ON CONFLICT DO NOTHING` |
//! | `NatsBackend` | `nats` | the `Nats-Msg-Id` header, within the stream's duplicate window |

#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "nats")]
pub use nats::{NatsBackend, NatsBackendBuilder};
#[cfg(feature = "postgres")]
pub use postgres::{Partitioning, PostgresBackend, PostgresBackendBuilder};
