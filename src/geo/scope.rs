//! Addresses no geolocation database places: marked by what they are, never looked up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What `ip` is, when it is an address of no place (`loopback`, `private`, `link_local`,
/// `shared`, `unspecified`); `None` for an address worth looking up. An IPv4 address written
/// as IPv6 (`::ffff:10.0.0.1`) is judged as the IPv4 address it is.
pub(crate) fn placeless(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => v6(ip),
    }
}

fn v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link_local")
    } else if a == 100 && (64..128).contains(&b) {
        // RFC 6598: carrier-grade NAT, an operator's inside.
        Some("shared")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else {
        None
    }
}

fn v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unique_local() {
        // fc00::/7, RFC 4193: IPv6's private addresses.
        Some("private")
    } else if ip.is_unicast_link_local() {
        Some("link_local")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::placeless;

    #[test]
    fn addresses_of_no_place_are_named_and_others_are_not() {
        for (ip, name) in [
            ("127.0.0.1", Some("loopback")),
            ("::1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.32.0.1", None),
            ("192.168.7.7", Some("private")),
            ("::ffff:192.168.7.7", Some("private")),
            ("fd12:3456::1", Some("private")),
            ("169.254.1.1", Some("link_local")),
            ("fe80::1", Some("link_local")),
            ("100.64.0.1", Some("shared")),
            ("100.127.255.255", Some("shared")),
            ("100.128.0.1", None),
            ("0.0.0.0", Some("unspecified")),
            ("::", Some("unspecified")),
            // Documentation ranges are looked up: no real database places them, and
            // test databases may.
            ("203.0.113.9", None),
            ("2001:db8::1", None),
            ("8.8.8.8", None),
        ] {
            assert_eq!(placeless(ip.parse().unwrap()), name, "{ip}");
        }
    }
}
