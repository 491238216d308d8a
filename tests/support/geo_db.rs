//! Small MaxMind DB files in the layout of GeoLite2 City and ASN, written by a real MaxMind DB
//! writer (the `mmdb-writer` crate), for the tests, the demo and the benchmark of `geoip`.

#![allow(dead_code)]

use std::path::Path;

use mmdb_writer::{Value, Writer};

/// One network of a City database.
#[derive(Clone, Copy, Debug)]
pub struct City {
    pub network: &'static str,
    pub city: &'static str,
    pub country: &'static str,
    /// ISO 3166-2 subdivision code without the country (`ARA`), and its English name.
    pub region: Option<(&'static str, &'static str)>,
    pub lat: f64,
    pub lon: f64,
}

/// One network of an ASN database.
#[derive(Clone, Copy, Debug)]
pub struct Asn {
    pub network: &'static str,
    pub number: u32,
    pub org: &'static str,
}

fn names(english: &str) -> Value {
    Value::map([("en", Value::from(english))])
}

/// A City database (type `GeoLite2-City`) with these networks, as bytes.
pub fn city_database(networks: &[City]) -> Vec<u8> {
    let mut writer = Writer::new("GeoLite2-City");
    for n in networks {
        let mut record = vec![
            (
                "city",
                Value::map([("geoname_id", Value::from(1_u32)), ("names", names(n.city))]),
            ),
            (
                "country",
                Value::map([
                    ("iso_code", Value::from(n.country)),
                    ("names", names(n.country)),
                ]),
            ),
            (
                "location",
                Value::map([
                    ("accuracy_radius", Value::from(20_u16)),
                    ("latitude", Value::from(n.lat)),
                    ("longitude", Value::from(n.lon)),
                ]),
            ),
        ];
        if let Some((code, name)) = n.region {
            record.push((
                "subdivisions",
                Value::from(vec![Value::map([
                    ("iso_code", Value::from(code)),
                    ("names", names(name)),
                ])]),
            ));
        }
        writer
            .insert_value(
                n.network.parse::<ipnet::IpNet>().unwrap(),
                Value::map(record),
            )
            .unwrap();
    }
    writer.to_bytes().unwrap()
}

/// An ASN database (type `GeoLite2-ASN`) with these networks, as bytes.
pub fn asn_database(networks: &[Asn]) -> Vec<u8> {
    let mut writer = Writer::new("GeoLite2-ASN");
    for n in networks {
        let record = Value::map([
            ("autonomous_system_number", Value::from(n.number)),
            ("autonomous_system_organization", Value::from(n.org)),
        ]);
        writer
            .insert_value(n.network.parse::<ipnet::IpNet>().unwrap(), record)
            .unwrap();
    }
    writer.to_bytes().unwrap()
}

/// Writes `bytes` to `path` as geoipupdate does: to a file beside it, then renamed over it.
pub fn install(path: &Path, bytes: &[u8]) {
    let temporary = path.with_extension("mmdb.tmp");
    std::fs::write(&temporary, bytes).unwrap();
    std::fs::rename(&temporary, path).unwrap();
}

/// The places the demo and the tests use (documentation addresses).
pub const LYON: City = City {
    network: "203.0.113.0/25",
    city: "Lyon",
    country: "FR",
    region: Some(("ARA", "Auvergne-Rhone-Alpes")),
    lat: 45.7640,
    lon: 4.8357,
};
pub const SYDNEY: City = City {
    network: "198.51.100.0/24",
    city: "Sydney",
    country: "AU",
    region: Some(("NSW", "New South Wales")),
    lat: -33.8688,
    lon: 151.2093,
};
pub const NEW_YORK: City = City {
    network: "192.0.2.0/24",
    city: "New York",
    country: "US",
    region: Some(("NY", "New York")),
    lat: 40.7128,
    lon: -74.0060,
};
pub const PARIS: City = City {
    network: "203.0.113.128/25",
    city: "Paris",
    country: "FR",
    region: Some(("IDF", "Ile-de-France")),
    lat: 48.8566,
    lon: 2.3522,
};
pub const IPV6_BERLIN: City = City {
    network: "2001:db8:be::/48",
    city: "Berlin",
    country: "DE",
    region: None,
    lat: 52.5200,
    lon: 13.4050,
};

/// ASNs for the same networks.
pub const NETWORKS: [Asn; 3] = [
    Asn {
        network: "203.0.113.0/24",
        number: 64_500,
        org: "Example Transit FR",
    },
    Asn {
        network: "198.51.100.0/24",
        number: 64_501,
        org: "Example Cable AU",
    },
    Asn {
        network: "2001:db8:be::/48",
        number: 64_502,
        org: "Example Fibre DE",
    },
];
