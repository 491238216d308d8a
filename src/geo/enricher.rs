//! The pipeline stage: every event's `source.ip` placed and its network named, through a
//! bounded cache of recent addresses.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use quick_cache::unsync::{Cache, DefaultLifecycle};
use quick_cache::UnitWeighter;

use super::database::Role;
use super::error::GeoIpError;
use super::scope::placeless;
use super::watch::Watched;
use crate::event::{AuditEvent, AutonomousSystem, Geo, Source};
use crate::process::Processor;

/// Addresses whose answers are kept by default.
pub const DEFAULT_CACHE_ENTRIES: usize = 16_384;

/// How often the database files are checked for a new version by default.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// What the databases say of one address.
#[derive(Clone, Debug, Default, PartialEq)]
struct Found {
    geo: Option<Geo>,
    network: Option<AutonomousSystem>,
}

/// Adds `source.geo` and `source.as` to every event with a `source.ip`, from MaxMind DB files
/// (GeoLite2 or GeoIP2 City and ASN, DB-IP lite City and ASN): a
/// [`Processor`], so the sinks, the chain and detection (`impossible_travel`) all see them.
///
/// - Private, loopback, link-local, carrier-grade NAT and unspecified addresses are not
///   looked up: `source.geo.name` says which they are (`private`). An IPv4 address carried
///   in IPv6 (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4, Teredo) is judged and looked up as that
///   IPv4 address.
/// - Answers are cached per address (at most [`cache_entries`](GeoIpBuilder::cache_entries),
///   the least recently used forgotten first), so an attacker who rotates addresses costs
///   lookups, never memory.
/// - The files are checked every [`check_interval`](GeoIpBuilder::check_interval); a changed
///   file is read on a thread of its own, its search tree and records checked whole, and
///   swapped in whole (the cache starts afresh). A file that is gone, cannot be read or is not
///   whole at that point is a warning, and the database loaded before stays in use: a
///   half-copied file must not blank out every event's place.
/// - A file that cannot be opened at start is an error ([`GeoIpError`]).
///
/// ```no_run
/// use oauth_audit::geo::GeoIp;
/// use oauth_audit::writer::{Auditor, JsonLines};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let geo = GeoIp::builder()
///     .city("/var/lib/GeoIP/GeoLite2-City.mmdb")
///     .asn("/var/lib/GeoIP/GeoLite2-ASN.mmdb")
///     .build()?;
/// let auditor = Auditor::builder().processor(geo).writer(JsonLines::stdout()).build()?;
/// # auditor.shutdown().await;
/// # Ok(()) }
/// ```
pub struct GeoIp {
    city: Option<Watched>,
    asn: Option<Watched>,
    cache: Cache<
        IpAddr,
        Found,
        UnitWeighter,
        foldhash::quality::RandomState,
        DefaultLifecycle<IpAddr, Found>,
    >,
    check_interval: Duration,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("city", &self.city.as_ref().map(|w| &w.current))
            .field("asn", &self.asn.as_ref().map(|w| &w.current))
            .field("cached", &self.cache.len())
            .finish()
    }
}

/// Builds a [`GeoIp`] stage.
#[derive(Clone, Debug)]
pub struct GeoIpBuilder {
    city: Option<PathBuf>,
    asn: Option<PathBuf>,
    check_interval: Duration,
    cache_entries: usize,
}

impl GeoIpBuilder {
    /// The City (or Country) database, for `source.geo`.
    pub fn city(mut self, path: impl Into<PathBuf>) -> Self {
        self.city = Some(path.into());
        self
    }

    /// The ASN (or ISP) database, for `source.as`.
    pub fn asn(mut self, path: impl Into<PathBuf>) -> Self {
        self.asn = Some(path.into());
        self
    }

    /// How often the files are checked for a new version (default
    /// [`DEFAULT_CHECK_INTERVAL`]); [`Duration::ZERO`] never checks.
    pub fn check_interval(mut self, every: Duration) -> Self {
        self.check_interval = every;
        self
    }

    /// Addresses whose answers are kept (default [`DEFAULT_CACHE_ENTRIES`]).
    pub fn cache_entries(mut self, entries: usize) -> Self {
        self.cache_entries = entries.max(1);
        self
    }

    /// Opens the databases: a file that cannot be read, is not a MaxMind DB or is of the
    /// other kind is an error that names it.
    pub fn build(self) -> Result<GeoIp, GeoIpError> {
        if self.city.is_none() && self.asn.is_none() {
            return Err(GeoIpError::Nothing);
        }
        let city = self
            .city
            .map(|p| Watched::open(p, Role::City))
            .transpose()?;
        let asn = self.asn.map(|p| Watched::open(p, Role::Asn)).transpose()?;
        crate::metric::describe(&crate::metric::GEOIP_RELOADS);
        Ok(GeoIp {
            city,
            asn,
            cache: Cache::with(
                self.cache_entries,
                self.cache_entries as u64,
                UnitWeighter,
                foldhash::quality::RandomState::default(),
                DefaultLifecycle::default(),
            ),
            check_interval: self.check_interval,
        })
    }
}

impl GeoIp {
    /// A builder with neither database yet.
    pub fn builder() -> GeoIpBuilder {
        GeoIpBuilder {
            city: None,
            asn: None,
            check_interval: DEFAULT_CHECK_INTERVAL,
            cache_entries: DEFAULT_CACHE_ENTRIES,
        }
    }

    /// What the databases say of `ip`: its place (or, for a private address, only its
    /// `name`) and its network.
    pub fn lookup(&mut self, ip: IpAddr) -> (Option<Geo>, Option<AutonomousSystem>) {
        let found = self.found(ip);
        (found.geo.clone(), found.network.clone())
    }

    /// Sets `source.geo` and `source.as` from `source.ip`; what is already set is kept.
    pub fn enrich(&mut self, source: &mut Source) {
        let Some(ip) = source.ip else {
            return;
        };
        if source.geo.is_some() && source.r#as.is_some() {
            return;
        }
        let found = self.found(ip);
        if source.geo.is_none() {
            source.geo = found.geo.clone().map(Box::new);
        }
        if source.r#as.is_none() {
            source.r#as.clone_from(&found.network);
        }
    }

    fn found(&mut self, ip: IpAddr) -> &Found {
        if self.cache.get(&ip).is_none() {
            let found = self.look_up(ip);
            self.cache.insert(ip, found);
        }
        match self.cache.get(&ip) {
            Some(found) => found,
            // A cache of at least one entry keeps what was just inserted.
            None => unreachable!("an address just cached"),
        }
    }

    fn look_up(&self, ip: IpAddr) -> Found {
        if let Some(name) = placeless(ip) {
            return Found {
                geo: Some(Geo {
                    name: Some(name.to_owned()),
                    ..Geo::default()
                }),
                network: None,
            };
        }
        let ip = super::scope::located(ip);
        Found {
            geo: self.city.as_ref().and_then(|w| w.current.place(ip)),
            network: self.asn.as_ref().and_then(|w| w.current.network(ip)),
        }
    }
}

impl Processor for GeoIp {
    fn name(&self) -> &str {
        "geoip"
    }

    fn process(&mut self, event: &mut AuditEvent, _emitted: &mut Vec<AuditEvent>) {
        if let Some(source) = event.source.as_mut() {
            self.enrich(source);
        }
    }

    fn tick_interval(&self) -> Option<Duration> {
        (!self.check_interval.is_zero()).then_some(self.check_interval)
    }

    fn tick(&mut self, _emitted: &mut Vec<AuditEvent>) {
        let mut changed = false;
        for watched in [&mut self.city, &mut self.asn].into_iter().flatten() {
            changed |= watched.check();
        }
        if changed {
            self.cache.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::super::geo_db;
    use super::GeoIp;

    /// An IPv6-only service behind NAT64 sees every IPv4 client as `64:ff9b::a.b.c.d`: the
    /// client is placed by its IPv4 address, as a 6to4 or Teredo client is.
    #[test]
    fn a_nat64_6to4_or_teredo_client_is_placed_by_its_ipv4_address() {
        let dir = tempfile::tempdir().unwrap();
        let (city, asn) = (dir.path().join("city.mmdb"), dir.path().join("asn.mmdb"));
        geo_db::install(&city, &geo_db::city_database(&[geo_db::LYON]));
        geo_db::install(&asn, &geo_db::asn_database(&geo_db::NETWORKS));
        let mut geo = GeoIp::builder().city(city).asn(asn).build().unwrap();
        for ip in ["203.0.113.77", "64:ff9b::203.0.113.77", "2002:cb00:714d::1"] {
            let (place, network) = geo.lookup(ip.parse::<IpAddr>().unwrap());
            assert_eq!(place.and_then(|p| p.city).as_deref(), Some("Lyon"), "{ip}");
            assert_eq!(network.map(|n| n.number), Some(64_500), "{ip}");
        }
        // A Teredo client (RFC 4380) is where its NAT's address is (the last 32 bits,
        // inverted: 203.0.113.77), not where its Teredo server is (65.54.227.120, the bits
        // after the prefix, by which a database that aliases 2001::/32 would place it).
        let teredo = "2001:0:4136:e378:8000:63bf:34ff:8eb2"
            .parse::<IpAddr>()
            .unwrap();
        let (place, network) = geo.lookup(teredo);
        assert_eq!(place.and_then(|p| p.city).as_deref(), Some("Lyon"));
        assert_eq!(network.map(|n| n.number), Some(64_500));
        let (place, network) = geo.lookup("64:ff9b::10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(place.and_then(|p| p.name).as_deref(), Some("private"));
        assert_eq!(network, None);
    }
}
