//! Geo and ASN enrichment (cargo feature `geoip`): where each event's client address is and
//! which network it belongs to, from MaxMind DB files, as `source.geo` and `source.as`.
//!
//! [`GeoIp`] is a pipeline stage ([`Processor`](crate::process::Processor)): it runs in the
//! background before the sinks, the chain and detection, never on the request path. It reads
//! the databases MaxMind's `geoipupdate` keeps current (GeoLite2 or GeoIP2 City and ASN) or
//! DB-IP's lite databases, through the `maxminddb` crate, and follows their updates without
//! a restart.
//!
//! One file per role: `database.rs` (one file, its kind, its lookups), `watch.rs` (following
//! a file's new versions), `scope.rs` (addresses of no place), `enricher.rs` (the stage and
//! its cache), `error.rs`.

mod database;
mod enricher;
mod error;
mod scope;
mod watch;

/// MaxMind DB files for the tests, written as the integration tests write them.
#[cfg(test)]
#[path = "../../tests/support/geo_db.rs"]
mod geo_db;

pub use enricher::{GeoIp, GeoIpBuilder, DEFAULT_CACHE_ENTRIES, DEFAULT_CHECK_INTERVAL};
pub use error::GeoIpError;
pub use watch::RELOADS;
