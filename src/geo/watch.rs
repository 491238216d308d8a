//! A database file kept in step with the disk: when the file changes (geoipupdate replaces
//! it weekly), the new version is read on a thread of its own and swapped in whole; one that
//! cannot be read leaves the one in use in place, with a warning.

use std::path::PathBuf;
use std::sync::mpsc;

use super::database::{Database, Role, Stamp};
use super::error::GeoIpError;

/// The metric counting database reloads, by `result` (`ok`, `failed`):
/// `oauth_audit_geoip_reloads_total`.
pub const RELOADS: &str = crate::metric::GEOIP_RELOADS.name;

/// A database and the file it came from.
pub(crate) struct Watched {
    path: PathBuf,
    role: Role,
    pub(crate) current: Database,
    /// A new version being read, and its stamp.
    loading: Option<(Stamp, mpsc::Receiver<Result<Database, GeoIpError>>)>,
    /// The version that could not be read: not tried again until the file changes again.
    failed: Option<Stamp>,
    /// Whether the file's absence was already reported.
    missing: bool,
}

impl Watched {
    /// Opens the file: an error here is a start-up error.
    pub(crate) fn open(path: PathBuf, role: Role) -> Result<Watched, GeoIpError> {
        let current = Database::open(&path, role)?;
        Ok(Watched {
            path,
            role,
            current,
            loading: None,
            failed: None,
            missing: false,
        })
    }

    /// Takes a new version in when one was read; else starts reading one when the file
    /// changed. True when the database in use changed.
    pub(crate) fn check(&mut self) -> bool {
        if let Some((stamp, receiver)) = &self.loading {
            let result = match receiver.try_recv() {
                Err(mpsc::TryRecvError::Empty) => return false,
                Ok(result) => result,
                Err(mpsc::TryRecvError::Disconnected) => Err(GeoIpError::Open {
                    key: self.role.key(),
                    path: self.path.clone(),
                    reason: "the thread reading it stopped".into(),
                }),
            };
            let stamp = *stamp;
            self.loading = None;
            return match result {
                Ok(database) => {
                    tracing::info!(
                        path = %self.path.display(),
                        kind = database.kind(),
                        "geoip {} database reloaded",
                        self.role.key()
                    );
                    metrics::counter!(RELOADS, "result" => "ok").increment(1);
                    self.current = database;
                    self.failed = None;
                    true
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        "the changed geoip {} database cannot be used; the one loaded before stays in use",
                        self.role.key()
                    );
                    metrics::counter!(RELOADS, "result" => "failed").increment(1);
                    self.failed = Some(stamp);
                    false
                }
            };
        }
        let stamp = match Stamp::of(&self.path) {
            Ok(stamp) => stamp,
            Err(error) => {
                if !self.missing {
                    tracing::warn!(
                        path = %self.path.display(),
                        %error,
                        "the geoip {} database is gone; the one loaded before stays in use",
                        self.role.key()
                    );
                    self.missing = true;
                }
                return false;
            }
        };
        self.missing = false;
        if stamp == self.current.stamp || Some(stamp) == self.failed {
            return false;
        }
        let (sender, receiver) = mpsc::channel();
        let (path, role) = (self.path.clone(), self.role);
        let read = move || {
            // Checked whole before it replaces a database that works; the first one is
            // not, as there is nothing to keep in its place, and the check of a file the
            // size of GeoLite2 City takes a fifth of a second of a core (docs/config.md).
            let database = Database::open(&path, role)
                .and_then(|database| database.verify(&path).map(|()| database));
            let _ = sender.send(database);
        };
        // Off the pipeline's task: a City database is tens of megabytes.
        if let Err(error) = std::thread::Builder::new()
            .name("oauth-audit-geoip".into())
            .spawn(read)
        {
            tracing::warn!(%error, "no thread to read the geoip database on");
            return false;
        }
        self.loading = Some((stamp, receiver));
        false
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::{Duration, Instant};

    use super::super::geo_db;
    use super::{Role, Watched};

    /// Checks until the version being read is taken in or refused; true when taken.
    fn settle(watched: &mut Watched) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut changed = watched.check();
        while watched.loading.is_some() {
            assert!(Instant::now() < deadline, "never read");
            std::thread::sleep(Duration::from_millis(5));
            changed |= watched.check();
        }
        changed
    }

    fn city_of(watched: &Watched, ip: &str) -> Option<String> {
        watched.current.place(ip.parse::<IpAddr>().unwrap())?.city
    }

    /// A file whose end (the metadata) is whole but whose search tree and data are not (a
    /// copy made in place, a download that allocates the file before filling it) opens like
    /// a good one, and would answer every lookup with nothing: the database loaded before
    /// stays in use until the file is whole.
    #[test]
    fn a_file_whole_at_its_end_but_broken_before_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        geo_db::install(&path, &geo_db::city_database(&[geo_db::LYON]));
        let mut watched = Watched::open(path.clone(), Role::City).unwrap();
        assert_eq!(city_of(&watched, "203.0.113.77").as_deref(), Some("Lyon"));

        let good = geo_db::city_database(&[geo_db::SYDNEY, geo_db::LYON]);
        let marker = b"\xab\xcd\xefMaxMind.com";
        let metadata = good
            .windows(marker.len())
            .rposition(|w| w == marker)
            .unwrap();
        let mut broken = good.clone();
        broken[..metadata].fill(0);
        geo_db::install(&path, &broken);
        assert!(!settle(&mut watched), "a broken file was taken");
        assert_eq!(city_of(&watched, "203.0.113.77").as_deref(), Some("Lyon"));

        geo_db::install(&path, &good);
        assert!(settle(&mut watched));
        assert_eq!(city_of(&watched, "198.51.100.7").as_deref(), Some("Sydney"));
    }
}
