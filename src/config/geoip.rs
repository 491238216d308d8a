//! `[geoip]`: geo and ASN enrichment of every event's `source` (cargo feature `geoip`).

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{AtLeastOne, HumanDuration};
#[cfg(feature = "geoip")]
use super::BuildError;

/// Builds a [`GeoIp`](crate::geo::GeoIp) stage: the section being present turns it on. It
/// is read whatever the cargo features; building it without the `geoip` feature is an error
/// that says so.
///
/// ```toml
/// [geoip]
/// city = "/var/lib/GeoIP/GeoLite2-City.mmdb"
/// asn = "/var/lib/GeoIP/GeoLite2-ASN.mmdb"
/// check_interval = "60s"
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoIpConfig {
    /// The City (or Country) database: GeoLite2-City, GeoIP2-City, DB-IP City Lite.
    pub city: Option<PathBuf>,
    /// The ASN database: GeoLite2-ASN, DB-IP ASN Lite.
    pub asn: Option<PathBuf>,
    /// How often the files are checked for a new version (default `60s`; `0s`: never).
    pub check_interval: Option<HumanDuration>,
    /// Addresses whose answers are cached (default 16,384).
    pub cache_entries: Option<AtLeastOne>,
}

impl GeoIpConfig {
    /// Opens the databases: a missing, unreadable or wrong file is an error naming it.
    #[cfg(feature = "geoip")]
    pub fn build(&self) -> Result<crate::geo::GeoIp, BuildError> {
        let mut builder = crate::geo::GeoIp::builder();
        if let Some(path) = &self.city {
            builder = builder.city(path);
        }
        if let Some(path) = &self.asn {
            builder = builder.asn(path);
        }
        if let Some(every) = self.check_interval {
            builder = builder.check_interval(every.0);
        }
        if let Some(entries) = self.cache_entries {
            builder = builder.cache_entries(usize::try_from(entries.0).unwrap_or(usize::MAX));
        }
        builder.build().map_err(|e| BuildError::invalid("geoip", e))
    }
}
