//! Geo and ASN enrichment against MaxMind DB files written by a real MaxMind DB writer and
//! read by the real reader: places, networks, private addresses, reloads, bad files, and
//! `impossible_travel` on the enriched events.
#![cfg(all(feature = "geoip", feature = "config"))]

#[path = "support/geo_db.rs"]
mod geo_db;

use std::io::Write;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use geo_db::{asn_database, city_database, install, City, IPV6_BERLIN, LYON, NETWORKS, SYDNEY};
use oauth_audit::config::AuditorConfig;
use oauth_audit::detect::Detector;
use oauth_audit::event::{AuditEvent, ClientAuth, EventKind, Outcome, Source, Timestamp};
use oauth_audit::geo::{GeoIp, GeoIpError};
use oauth_audit::writer::{Auditor, MemoryWriter};
use serde_json::{json, Value};

struct Databases {
    dir: tempfile::TempDir,
}

impl Databases {
    fn new(cities: &[City]) -> Databases {
        let dir = tempfile::tempdir().unwrap();
        install(&dir.path().join("city.mmdb"), &city_database(cities));
        install(&dir.path().join("asn.mmdb"), &asn_database(&NETWORKS));
        Databases { dir }
    }

    fn city(&self) -> std::path::PathBuf {
        self.dir.path().join("city.mmdb")
    }

    fn asn(&self) -> std::path::PathBuf {
        self.dir.path().join("asn.mmdb")
    }
}

fn event_from(auditor: &Auditor, ip: &str) -> AuditEvent {
    let mut event = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::LoginSucceeded,
        Outcome::Success,
    );
    let mut source = Source::default();
    source.ip = Some(ip.parse().unwrap());
    event.source = Some(source);
    event
}

fn source_of(json: &Value) -> (Value, Value) {
    (json["source"]["geo"].clone(), json["source"]["as"].clone())
}

#[tokio::test]
async fn countries_cities_and_networks_are_as_written() {
    let databases = Databases::new(&[LYON, SYDNEY, IPV6_BERLIN]);
    let memory = MemoryWriter::new();
    let geo = GeoIp::builder()
        .city(databases.city())
        .asn(databases.asn())
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .processor(geo)
        .writer(memory.clone())
        .build()
        .unwrap();
    let addresses = [
        "203.0.113.9",
        "198.51.100.200",
        "2001:db8:be::7",
        "::ffff:203.0.113.9",
        "10.20.30.40",
        "127.0.0.1",
        "fd00::1",
        "100.64.1.1",
        "192.0.2.1",
        // Cached: the same answer again.
        "203.0.113.9",
    ];
    for ip in addresses {
        auditor.emit(event_from(&auditor, ip));
    }
    auditor.shutdown().await;
    let seen: Vec<(Value, Value)> = memory.json().iter().map(source_of).collect();
    let lyon = json!({
        "city": "Lyon", "country": "FR", "lat": 45.764, "lon": 4.8357,
        "region": "Auvergne-Rhone-Alpes", "region_code": "FR-ARA"
    });
    let transit = json!({"number": 64500, "org": "Example Transit FR"});
    assert_eq!(seen[0], (lyon.clone(), transit.clone()));
    assert_eq!(
        seen[1],
        (
            json!({"city": "Sydney", "country": "AU", "lat": -33.8688, "lon": 151.2093,
                   "region": "New South Wales", "region_code": "AU-NSW"}),
            json!({"number": 64501, "org": "Example Cable AU"})
        )
    );
    assert_eq!(
        seen[2],
        (
            json!({"city": "Berlin", "country": "DE", "lat": 52.52, "lon": 13.405}),
            json!({"number": 64502, "org": "Example Fibre DE"})
        )
    );
    // An IPv4 address written as IPv6 is the IPv4 address.
    assert_eq!(seen[3], (lyon.clone(), transit.clone()));
    // Addresses of no place are named, not looked up.
    for (index, name) in [
        (4, "private"),
        (5, "loopback"),
        (6, "private"),
        (7, "shared"),
    ] {
        assert_eq!(
            seen[index],
            (json!({"name": name}), Value::Null),
            "{}",
            addresses[index]
        );
    }
    // In no database: nothing added.
    assert_eq!(seen[8], (Value::Null, Value::Null));
    assert_eq!(seen[9], (lyon, transit));
}

#[tokio::test]
async fn a_new_database_file_is_taken_without_a_restart_and_a_bad_one_is_a_warning() {
    let databases = Databases::new(&[LYON]);
    let logs = Logs::default();
    let _logging = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    let memory = MemoryWriter::new();
    let geo = GeoIp::builder()
        .city(databases.city())
        .check_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .processor(geo)
        .writer(memory.clone())
        .build()
        .unwrap();
    let city_now = |wanted: &'static str| {
        let auditor = &auditor;
        let memory = memory.clone();
        async move {
            // Events until one carries the city wanted (the file is checked every 20 ms);
            // a minute at most.
            for _ in 0..3000 {
                let written = memory.events().len();
                auditor.emit(event_from(auditor, "203.0.113.9"));
                written_beyond(&memory, written).await;
                let last = memory.json().last().cloned().unwrap();
                if last["source"]["geo"]["city"] == wanted {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("never saw {wanted}: {:?}", memory.json().last());
        }
    };
    city_now("Lyon").await;

    // geoipupdate's way: a new file renamed over the old one.
    let moved = City {
        city: "Marseille",
        lat: 43.2965,
        lon: 5.3698,
        ..LYON
    };
    install(&databases.city(), &city_database(&[moved]));
    city_now("Marseille").await;

    // A corrupt file: a warning, and the database loaded before stays in use.
    install(&databases.city(), b"not a database at all");
    logs.wait_for("cannot be used").await;
    let written = memory.events().len();
    auditor.emit(event_from(&auditor, "203.0.113.9"));
    written_beyond(&memory, written).await;
    assert_eq!(
        memory.json().last().unwrap()["source"]["geo"]["city"],
        "Marseille"
    );
    // Gone: a warning too.
    std::fs::remove_file(databases.city()).unwrap();
    logs.wait_for("is gone").await;
    // Back, valid: taken.
    install(&databases.city(), &city_database(&[SYDNEY, LYON]));
    city_now("Lyon").await;
    auditor.shutdown().await;
    let text = logs.text();
    assert_eq!(
        text.matches("is gone").count(),
        1,
        "one warning per outage: {text}"
    );
    assert!(text.contains("not a MaxMind DB"), "{text}");
    assert!(
        text.contains(&databases.city().display().to_string()),
        "{text}"
    );
}

#[test]
fn a_missing_corrupt_or_wrong_file_is_a_clear_startup_error() {
    let databases = Databases::new(&[LYON]);
    let missing = databases.dir.path().join("nope.mmdb");
    let error = GeoIp::builder().city(&missing).build().unwrap_err();
    assert!(matches!(error, GeoIpError::Open { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains("geoip city database") && text.contains("nope.mmdb"),
        "{text}"
    );

    let garbage = databases.dir.path().join("garbage.mmdb");
    std::fs::File::create(&garbage)
        .unwrap()
        .write_all(&[0xab; 4096])
        .unwrap();
    let text = GeoIp::builder()
        .asn(&garbage)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("geoip asn database") && text.contains("not a MaxMind DB"),
        "{text}"
    );

    // The files swapped over: each is refused for the other's role.
    let text = GeoIp::builder()
        .city(databases.asn())
        .build()
        .unwrap_err()
        .to_string();
    assert!(text.contains("is a GeoLite2-ASN database"), "{text}");
    let text = GeoIp::builder()
        .asn(databases.city())
        .build()
        .unwrap_err()
        .to_string();
    assert!(text.contains("is a GeoLite2-City database"), "{text}");
    assert!(matches!(GeoIp::builder().build(), Err(GeoIpError::Nothing)));
}

#[tokio::test]
async fn the_configuration_builds_the_stage_before_detection_and_names_a_bad_file() {
    let databases = Databases::new(&[LYON, SYDNEY]);
    let out = databases.dir.path().join("events.jsonl");
    let config: AuditorConfig = serde_json::from_value(json!({
        "geoip": {"city": databases.city(), "asn": databases.asn(), "check_interval": "1s"},
        "detect": {},
        "writer": [{"type": "jsonl", "path": out, "flush": "every_batch"}]
    }))
    .unwrap();
    let auditor = config.build().await.unwrap();
    // A public client's sign-in in Lyon, then the same user in Sydney ten minutes later.
    for (minutes, ip) in [(0, "203.0.113.9"), (10, "198.51.100.7")] {
        let mut event = event_from(&auditor, ip);
        event.time =
            Timestamp::from_unix_micros(1_796_000_000_000_000 + minutes * 60_000_000).unwrap();
        event.set_kind(EventKind::AccessTokenIssued, Outcome::Success);
        event.grant_type = Some("authorization_code".into());
        event.client_auth = Some(ClientAuth::None);
        event.actor.subject = Some("alice".into());
        auditor.emit(event);
    }
    auditor.shutdown().await;
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let alerts: Vec<&Value> = lines
        .iter()
        .filter(|e| e["kind"] == "SecurityAlert")
        .collect();
    assert_eq!(alerts.len(), 1, "{lines:#?}");
    let alert = &alerts[0]["alert"];
    assert_eq!(alert["rule"], "impossible_travel");
    assert_eq!(
        alert["travel"]["from"],
        json!({"city": "Lyon", "country": "FR", "ip": "203.0.113.9"})
    );
    assert_eq!(alert["travel"]["to"]["city"], "Sydney");
    assert_eq!(alert["travel"]["seconds"], 600);
    assert_eq!(alerts[0]["source"]["geo"]["country"], "AU");

    let config: AuditorConfig = serde_json::from_value(json!({
        "geoip": {"city": databases.dir.path().join("absent.mmdb")}
    }))
    .unwrap();
    let error = config.build().await.err().unwrap().to_string();
    assert!(
        error.starts_with("geoip: geoip city database") && error.contains("absent.mmdb"),
        "{error}"
    );
}

#[test]
fn a_lookup_answers_without_an_auditor() {
    let databases = Databases::new(&[LYON]);
    let mut geo = GeoIp::builder()
        .city(databases.city())
        .asn(databases.asn())
        .build()
        .unwrap();
    let (place, network) = geo.lookup("203.0.113.77".parse::<IpAddr>().unwrap());
    assert_eq!(place.unwrap().city.as_deref(), Some("Lyon"));
    assert_eq!(network.unwrap().number, 64_500);
    // What an application set itself is kept.
    let mut source = Source::default();
    source.ip = Some("203.0.113.77".parse().unwrap());
    source.geo = Some(Box::new(oauth_audit::event::Geo::at(1.0, 2.0)));
    geo.enrich(&mut source);
    assert_eq!(source.geo.unwrap().location(), Some((1.0, 2.0)));
    assert_eq!(
        source.r#as.unwrap().org.as_deref(),
        Some("Example Transit FR")
    );
    let _ = Detector::default();
}

/// Waits until `memory` holds more than `count` events (a minute at most).
async fn written_beyond(memory: &MemoryWriter, count: usize) {
    for _ in 0..6000 {
        if memory.events().len() > count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the event was never written");
}

/// What the crate logged, for the tests to read.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    async fn wait_for(&self, needle: &str) {
        for _ in 0..3000 {
            if self.text().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never logged {needle:?}: {}", self.text());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
