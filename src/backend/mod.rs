//! Remote backends for [`Delivery`](crate::delivery): each speaks one protocol and is
//! enabled by its own cargo feature.
//!
//! | backend | feature | deduplicates on the event id by |
//! | --- | --- | --- |
//! | `HttpCollector` (Elasticsearch / OpenSearch `_bulk`, Splunk HEC, JSON lines) | `http` | the document `_id` (`_bulk` with `create`); Splunk HEC and JSON lines do not deduplicate: dedupe on `id` downstream |

#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
pub use self::http::{CollectorError, Format, HttpCollector, HttpCollectorBuilder};
