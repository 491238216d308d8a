//! Remote backends for [`Delivery`](crate::delivery): each speaks one protocol and is
//! enabled by its own cargo feature.
//!
//! | backend | feature | deduplicates on the event id by |
//! | --- | --- | --- |
//! | [`PostgresBackend`] | `postgres` | the key `(id, time)` and `INSERT ... ON CONFLICT DO NOTHING` |

#[cfg(feature = "postgres")]
mod postgres;

#[cfg(feature = "postgres")]
pub use postgres::{Partitioning, PostgresBackend, PostgresBackendBuilder};
