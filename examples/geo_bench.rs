//! What geo and ASN enrichment costs per event: `GeoIp::enrich` on events from a set of
//! addresses, against a City database of realistic depth (100,000 networks) and an ASN
//! database, with answers cached per address (the usual case: clients come back) and
//! without (every address new: an attacker rotating addresses).
//!
//! ```text
//! cargo run --release --example geo_bench [EVENTS]
//! ```
//!
//! Prints nanoseconds per event, median of 7 runs, for each case, and as a baseline measured
//! in the same run the cost of writing a protected-route event as a JSON line (what every
//! event costs the JSON-lines sink anyway).

#[path = "support/events.rs"]
mod events;
#[path = "../tests/support/geo_db.rs"]
mod geo_db;

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use geo_db::{Asn, City};
use oauth_audit::event::{ServiceInfo, Source, Timestamp};
use oauth_audit::geo::GeoIp;

/// Names that live as long as the process: the writer's records borrow `&'static str`.
fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// 100,000 /24 networks in 10.x is private space, so the networks go from 11.0.0.0 on.
fn network(i: u32) -> Ipv4Addr {
    Ipv4Addr::from((11u32 << 24) + (i << 8))
}

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("EVENTS is a number"))
        .unwrap_or(1_000_000);
    let networks = 100_000u32;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let cities: Vec<City> = (0..networks)
        .map(|i| City {
            network: leak(format!("{}/24", network(i))),
            city: leak(format!("City {i}")),
            country: ["FR", "DE", "US", "AU", "JP"][(i % 5) as usize],
            region: Some((
                leak(format!("R{}", i % 90)),
                leak(format!("Region {}", i % 90)),
            )),
            lat: f64::from(i % 180) - 89.5,
            lon: f64::from(i % 360) - 179.5,
        })
        .collect();
    let asns: Vec<Asn> = (0..networks)
        .map(|i| Asn {
            network: leak(format!("{}/24", network(i))),
            number: 64_512 + i % 1000,
            org: leak(format!("Network {}", i % 1000)),
        })
        .collect();
    let city = dir.path().join("city.mmdb");
    let asn = dir.path().join("asn.mmdb");
    geo_db::install(&city, &geo_db::city_database(&cities));
    geo_db::install(&asn, &geo_db::asn_database(&asns));
    eprintln!(
        "databases: {networks} networks each, {} + {} bytes, written in {:.1} s",
        std::fs::metadata(&city).unwrap().len(),
        std::fs::metadata(&asn).unwrap().len(),
        started.elapsed().as_secs_f64()
    );

    // Clients coming back: 5,000 addresses, all cached after the first pass. Rotating
    // addresses: every event from an address not seen before (the cache never hits).
    let returning: Vec<IpAddr> = (0..5_000u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(u32::from(network(i * 17 % networks)) + 7)))
        .collect();
    let rotating: Vec<IpAddr> = (0..events as u32)
        .map(|i| {
            IpAddr::V4(Ipv4Addr::from(
                u32::from(network(i % networks)) + 1 + i / networks % 250,
            ))
        })
        .collect();
    let baseline = {
        let service = std::sync::Arc::new(ServiceInfo::default());
        let sample: Vec<_> = (0..1000)
            .map(|i| {
                events::protected_route_event(&service, i, Timestamp::now(), format!("req-{i}"))
            })
            .collect();
        let mut line = Vec::with_capacity(2048);
        let mut runs = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            for i in 0..events {
                line.clear();
                serde_json::to_writer(&mut line, &sample[i % sample.len()]).unwrap();
                line.push(b'\n');
                black_box(&line);
            }
            runs.push(started.elapsed().as_nanos() as f64 / events as f64);
        }
        runs.sort_by(f64::total_cmp);
        println!(
            "{:<32} {:>7.0} ns/event (median of 7)",
            "baseline: the event as JSON", runs[3]
        );
        runs[3]
    };
    for (case, addresses, city_only) in [
        ("cached, City + ASN", &returning, false),
        ("cached, City only", &returning, true),
        ("every address new, City + ASN", &rotating, false),
    ] {
        let mut builder = GeoIp::builder().city(&city);
        if !city_only {
            builder = builder.asn(&asn);
        }
        let mut geo = builder.build().unwrap();
        let mut runs = Vec::new();
        for _ in 0..7 {
            let mut source = Source::default();
            let started = Instant::now();
            for i in 0..events {
                source.ip = Some(addresses[i % addresses.len()]);
                source.geo = None;
                source.r#as = None;
                geo.enrich(black_box(&mut source));
            }
            runs.push(started.elapsed().as_nanos() as f64 / events as f64);
            black_box(&source);
        }
        runs.sort_by(f64::total_cmp);
        println!(
            "{case:<32} {:>7.0} ns/event (median of 7; min {:.0}, max {:.0}): {:.2}x the baseline",
            runs[3],
            runs[0],
            runs[6],
            runs[3] / baseline
        );
    }
}
