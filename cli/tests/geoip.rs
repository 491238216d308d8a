//! `[geoip]` in the proxy's configuration: the client address (from a trusted proxy's
//! `X-Forwarded-For`) placed from real MaxMind DB files; a missing file stops the start.
#![cfg(feature = "geoip")]

mod support;

#[path = "../../tests/support/geo_db.rs"]
mod geo_db;

use support::upstream::Upstream;
use support::{at_path, http, run, wait_event, Proxy, TempDir};

#[tokio::test]
async fn the_proxy_places_each_client_address() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("geoip");
    let city = dir.path("city.mmdb");
    let asn = dir.path("asn.mmdb");
    geo_db::install(
        &city,
        &geo_db::city_database(&[geo_db::LYON, geo_db::SYDNEY]),
    );
    geo_db::install(&asn, &geo_db::asn_database(&geo_db::NETWORKS));
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        &format!(
            "[proxy]\nupstream = \"{}\"\ntrusted_proxies = [\"127.0.0.1\"]\n\n[geoip]\ncity = {:?}\nasn = {:?}\n\n[[writer]]\ntype = \"jsonl\"\npath = {:?}\n",
            upstream.url(),
            city.display().to_string(),
            asn.display().to_string(),
            out.display().to_string()
        ),
    );
    let mut proxy = Proxy::start(&["--config", config.to_str().unwrap()], &[]);
    for (path, address) in [("/from-sydney", "198.51.100.7"), ("/from-here", "10.9.8.7")] {
        let response = http()
            .get(proxy.url(path))
            .header("x-forwarded-for", address)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let sydney = wait_event(&out, "from Sydney", at_path("/from-sydney")).await;
    assert_eq!(sydney["source"]["ip"], "198.51.100.7");
    assert_eq!(sydney["source"]["geo"]["city"], "Sydney");
    assert_eq!(sydney["source"]["geo"]["region_code"], "AU-NSW");
    assert_eq!(sydney["source"]["as"]["org"], "Example Cable AU");
    let private = wait_event(&out, "from a private address", at_path("/from-here")).await;
    assert_eq!(
        private["source"]["geo"],
        serde_json::json!({"name": "private"})
    );
    assert!(proxy.terminate().success());

    // A database that is not there is a configuration error naming it, before serving.
    let config = dir.write(
        "missing.toml",
        &format!(
            "[proxy]\nupstream = \"{}\"\n\n[geoip]\ncity = \"/nonexistent/GeoLite2-City.mmdb\"\n",
            upstream.url()
        ),
    );
    let output = run(&["check-config", config.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("geoip city database /nonexistent/GeoLite2-City.mmdb"),
        "{stderr}"
    );
}
