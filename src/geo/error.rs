//! What can go wrong opening a geolocation database.

use std::path::PathBuf;

/// A geolocation database that cannot be used: at start, an error; when a file changes
/// while running, a warning (the database loaded before stays in use).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoIpError {
    /// The file cannot be read, or is not a MaxMind DB file.
    #[error("geoip {key} database {}: {reason}", path.display())]
    Open {
        /// `city` or `asn`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A MaxMind DB file of the other kind (an ASN database given as the City database).
    #[error(
        "geoip {key} database {}: is a {found} database; `city` takes a City or Country database, `asn` an ASN or ISP database",
        path.display()
    )]
    WrongDatabase {
        /// `city` or `asn`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// Its `database_type`.
        found: String,
    },
    /// Neither database was given.
    #[error("geoip needs a city database, an asn database, or both")]
    Nothing,
}
