//! Addresses no geolocation database places: marked by what they are, never looked up.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What `ip` is, when it is an address of no place (`loopback`, `private`, `link_local`,
/// `shared`, `unspecified`); `None` for an address worth looking up. An IPv6 address that
/// carries an IPv4 one ([`located`]) is judged as that IPv4 address.
pub(crate) fn placeless(ip: IpAddr) -> Option<&'static str> {
    match located(ip) {
        IpAddr::V4(ip) => v4(ip),
        IpAddr::V6(ip) => v6(ip),
    }
}

/// The address a database is asked about for `ip`: the IPv4 address an IPv6 one carries, for
/// an IPv4-mapped address (`::ffff:203.0.113.9`), a NAT64 address of the well-known prefix
/// (RFC 6052, `64:ff9b::203.0.113.9`: how an IPv6-only service behind NAT64 sees every
/// IPv4 client), a 6to4 address (RFC 3056, `2002:cb00:7109::`) and a Teredo address (RFC
/// 4380, `2001:0::/32`: its client's NAT address); else `ip` itself.
/// Geolocation databases place IPv4 clients by their IPv4 addresses, and a NAT64 prefix is
/// the operator's, not the client's.
pub(crate) fn located(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip.to_canonical() else {
        return ip.to_canonical();
    };
    let segments = v6.segments();
    let [.., a, b, c, d] = v6.octets();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    }
    if segments[0] == 0x2002 {
        let [_, _, a, b, c, d, ..] = v6.octets();
        return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    }
    if segments[..2] == [0x2001, 0] {
        // Teredo (RFC 4380): the client's NAT address, inverted, in the last 32 bits. The
        // bits after the prefix are the Teredo server's, by which a database that aliases
        // 2001::/32 to its IPv4 tree would place every Teredo client.
        return IpAddr::V4(Ipv4Addr::new(!a, !b, !c, !d));
    }
    IpAddr::V6(v6)
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

    /// An IPv6 address that carries an IPv4 one is what that IPv4 address is: a NAT64
    /// gateway's view of an internal client is private, and a 6to4 address of a private
    /// IPv4 address too.
    #[test]
    fn ipv4_addresses_carried_in_ipv6_are_judged_as_ipv4() {
        for (ip, name) in [
            ("64:ff9b::10.1.2.3", Some("private")),
            ("64:ff9b::127.0.0.1", Some("loopback")),
            ("64:ff9b::100.64.0.1", Some("shared")),
            ("64:ff9b::203.0.113.9", None),
            ("2002:a01:203::1", Some("private")),
            ("2002:c0a8:101::", Some("private")),
            ("2002:a9fe:101::1", Some("link_local")),
            ("2002:cb00:7109::1", None),
            // Only the well-known NAT64 prefix: a network-specific one is the operator's.
            ("64:ff9c::10.1.2.3", None),
        ] {
            assert_eq!(placeless(ip.parse().unwrap()), name, "{ip}");
        }
    }

    #[test]
    fn a_database_is_asked_about_the_ipv4_address_carried() {
        for (ip, located_as) in [
            ("64:ff9b::203.0.113.9", "203.0.113.9"),
            ("2002:cb00:7109:5::1", "203.0.113.9"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("203.0.113.9", "203.0.113.9"),
            ("2001:db8::1", "2001:db8::1"),
            ("2001:0:4136:e378:8000:63bf:34ff:8eb2", "203.0.113.77"),
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(super::located(ip).to_string(), located_as, "{ip}");
        }
    }
}
