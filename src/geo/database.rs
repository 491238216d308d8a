//! One MaxMind DB file: opened whole into memory, checked for the role it is given (a City or
//! Country database for `geo`, an ASN or ISP database for `as`), and what a lookup finds.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use maxminddb::{geoip2, Reader};

use super::error::GeoIpError;
use crate::event::{AutonomousSystem, Geo};

/// What a database file is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// `source.geo`: a City (or Country) database.
    City,
    /// `source.as`: an ASN (or ISP) database.
    Asn,
}

impl Role {
    /// The configuration key that names the file.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Role::City => "city",
            Role::Asn => "asn",
        }
    }

    /// Whether a database of type `kind` (its metadata's `database_type`) is of the other
    /// role: a City file given as the ASN database, or the other way round. Types this
    /// crate does not know are taken as given.
    fn refuses(self, kind: &str) -> bool {
        let lower = kind.to_ascii_lowercase();
        let asn = lower.contains("asn") || lower.contains("isp");
        let place = lower.contains("city") || lower.contains("country");
        match self {
            Role::City => asn && !place,
            Role::Asn => place && !asn,
        }
    }
}

/// When a file was last changed, as far as telling a new version from the one loaded goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// The inode: a file replaced by a rename (as geoipupdate does) is a new one even when
    /// its size and time match.
    inode: u64,
}

impl Stamp {
    pub(crate) fn of(path: &Path) -> std::io::Result<Stamp> {
        let meta = std::fs::metadata(path)?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Ok(Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        })
    }
}

/// An open database file.
pub(crate) struct Database {
    reader: Reader<Vec<u8>>,
    role: Role,
    pub(crate) stamp: Stamp,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("role", &self.role)
            .field("type", &self.reader.metadata().database_type)
            .field("build_epoch", &self.reader.metadata().build_epoch)
            .finish()
    }
}

impl Database {
    /// Reads the file at `path` whole and checks that it is a MaxMind DB of `role`.
    pub(crate) fn open(path: &Path, role: Role) -> Result<Database, GeoIpError> {
        let failed = |reason: String| GeoIpError::Open {
            key: role.key(),
            path: PathBuf::from(path),
            reason,
        };
        // The stamp first: a file replaced while it is read is read again at the next
        // check, since its stamp will differ from this one.
        let stamp = Stamp::of(path).map_err(|e| failed(e.to_string()))?;
        let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        let reader = Reader::from_source(bytes)
            .map_err(|e| failed(format!("not a MaxMind DB file: {e}")))?;
        let kind = &reader.metadata().database_type;
        if role.refuses(kind) {
            return Err(GeoIpError::WrongDatabase {
                key: role.key(),
                path: PathBuf::from(path),
                found: kind.clone(),
            });
        }
        Ok(Database {
            reader,
            role,
            stamp,
        })
    }

    /// Checks the whole file: every node of its search tree and every record it points to.
    /// [`Database::open`] reads only the metadata at the file's end, which a file still
    /// being written in place (an in-place copy, a download that allocates the file first)
    /// can already have whole while its tree is not, and whose every lookup would then find
    /// nothing, or another network's record.
    ///
    /// Not `Reader::verify`, which also asks of the metadata what MaxMind's databases have
    /// and other writers' need not (a non-empty `description`), and would refuse them.
    pub(crate) fn verify(&self, path: &Path) -> Result<(), GeoIpError> {
        let broken = |reason: String| GeoIpError::Open {
            key: self.role.key(),
            path: PathBuf::from(path),
            reason: format!("not a whole MaxMind DB file: {reason}"),
        };
        let options = maxminddb::WithinOptions::default().include_networks_without_data();
        let networks = self
            .reader
            .networks(options)
            .map_err(|e| broken(e.to_string()))?;
        // A tree of n nodes has n + 1 leaves; far more means its nodes make a cycle.
        let most = (self.reader.metadata().node_count as usize).saturating_mul(3) + 2;
        let mut records = std::collections::HashSet::new();
        for (walked, network) in networks.enumerate() {
            if walked > most {
                return Err(broken("its search tree has a cycle".into()));
            }
            let network = network.map_err(|e| broken(e.to_string()))?;
            if let Some(offset) = network.offset() {
                if records.insert(offset) {
                    network
                        .decode::<serde::de::IgnoredAny>()
                        .map_err(|e| broken(e.to_string()))?;
                }
            }
        }
        Ok(())
    }

    /// The database's own name for its type (`GeoLite2-City`).
    pub(crate) fn kind(&self) -> &str {
        &self.reader.metadata().database_type
    }

    /// Where `ip` is, if the database places it. A record that does not decode is taken
    /// for no record: one bad entry must not stop the events.
    pub(crate) fn place(&self, ip: IpAddr) -> Option<Geo> {
        let found = self.reader.lookup(ip).ok()?;
        let city: geoip2::City<'_> = found.decode().ok()??;
        let subdivision = city.subdivisions.first();
        let country = city.country.iso_code;
        let geo = Geo {
            city: city.city.names.english.map(str::to_owned),
            country: country.map(str::to_owned),
            lat: city.location.latitude.filter(|l| l.abs() <= 90.0),
            lon: city.location.longitude.filter(|l| l.abs() <= 180.0),
            name: None,
            region: subdivision.and_then(|s| s.names.english).map(str::to_owned),
            region_code: subdivision.and_then(|s| Some(format!("{}-{}", country?, s.iso_code?))),
        };
        (geo != Geo::default()).then_some(geo)
    }

    /// The network `ip` belongs to, if the database knows it.
    pub(crate) fn network(&self, ip: IpAddr) -> Option<AutonomousSystem> {
        let found = self.reader.lookup(ip).ok()?;
        let asn: geoip2::Asn<'_> = found.decode().ok()??;
        Some(AutonomousSystem::new(
            asn.autonomous_system_number?,
            asn.autonomous_system_organization.map(str::to_owned),
        ))
    }
}
