//! Remote backends for [`Delivery`](crate::delivery): each speaks one protocol and is
//! enabled by its own cargo feature.
//!
//! | backend | feature | deduplicates on the event id by |
//! | --- | --- | --- |
//! | [`NatsBackend`] | `nats` | the `Nats-Msg-Id` header, within the stream's duplicate window |

#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "nats")]
pub use nats::{NatsBackend, NatsBackendBuilder};
