//! Client-address resolution from forwarding headers a client controls, for every source an
//! operator can choose.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use oauth_audit::fuzzing::{parse_forwarded, parse_single_value, parse_x_forwarded_for};
use oauth_audit::{ClientIpSource, TrustedProxies};

const HEADERS: [&str; 4] = [
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "cf-connecting-ip",
];

#[derive(Arbitrary, Debug)]
struct Input {
    lines: Vec<(u8, Vec<u8>)>,
    /// Which header the operator said its proxies write.
    source: u8,
    /// Whether the socket peer is the trusted proxy.
    from_proxy: bool,
}

fn proxies(source: ClientIpSource) -> TrustedProxies {
    TrustedProxies::new(["10.0.0.0/8"])
        .expect("cidr")
        .source(source)
}

fuzz_target!(|input: Input| {
    static SOURCES: OnceLock<[TrustedProxies; 3]> = OnceLock::new();
    let sources = SOURCES.get_or_init(|| {
        [
            proxies(ClientIpSource::XForwardedFor),
            proxies(ClientIpSource::Forwarded),
            proxies(ClientIpSource::Header(HeaderName::from_static("x-real-ip"))),
        ]
    });
    let mut headers = HeaderMap::new();
    for (name, value) in &input.lines {
        let Ok(value) = HeaderValue::from_bytes(value) else {
            return;
        };
        headers.append(HEADERS[*name as usize % HEADERS.len()], value);
    }
    for hops in [parse_forwarded(&headers), parse_x_forwarded_for(&headers)] {
        assert!(hops.len() <= 32, "at most 32 hops are kept");
        assert!(
            hops.iter().all(|hop| hop.raw.len() <= 64 * 4),
            "hops are bounded"
        );
    }
    let _ = parse_single_value(&headers, &HeaderName::from_static("x-real-ip"));

    let index = input.source as usize % sources.len();
    let chosen = ["x-forwarded-for", "forwarded", "x-real-ip"][index];
    let peer = if input.from_proxy {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7))
    } else {
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))
    };
    let ip = sources[index].client_ip(peer, &headers);
    if !input.from_proxy {
        assert_eq!(
            ip, peer,
            "an untrusted peer's headers never choose the address"
        );
    } else if ip != peer {
        // The address came from the chosen header, and from no other.
        let text: String = headers
            .get_all(chosen)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join("\n");
        let written = ip.to_string();
        let mapped = format!("::ffff:{written}");
        assert!(
            text.contains(&written) || text.contains(&mapped) || expanded_match(&text, ip),
            "{ip} is not in the chosen header {chosen}: {text:?}"
        );
    }
});

/// An IPv6 address may be written in another spelling (leading zeros, no compression).
fn expanded_match(text: &str, ip: IpAddr) -> bool {
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == ':' || c == '.'))
        .filter_map(|token| token.parse::<IpAddr>().ok())
        .any(|candidate| candidate.to_canonical() == ip)
}
