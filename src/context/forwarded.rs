//! Parsing of `Forwarded` (RFC 7239) and `X-Forwarded-For`.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;

/// At most this many hops are read from forwarding headers.
const MAX_HOPS: usize = 32;
/// At most this many bytes of one hop are recorded.
const MAX_HOP_LEN: usize = 64;

/// One hop of a forwarding chain as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    /// The node as written (sanitised), for `source.forwarded_for`.
    pub(crate) raw: String,
    /// The address, when the node is one (`unknown` and obfuscated nodes are not).
    pub(crate) ip: Option<IpAddr>,
}

/// The forwarding chain, left (original client) to right (nearest proxy). `Forwarded` is
/// preferred when present, else `X-Forwarded-For`; several header lines are read in order.
pub(crate) fn chain(headers: &HeaderMap) -> Vec<Hop> {
    let forwarded = headers.get_all(http::header::FORWARDED);
    if forwarded.iter().next().is_some() {
        let mut hops = Vec::new();
        for value in forwarded {
            let value = String::from_utf8_lossy(value.as_bytes());
            for element in split_outside_quotes(&value, ',') {
                if hops.len() == MAX_HOPS {
                    return hops;
                }
                let node = split_outside_quotes(element, ';')
                    .into_iter()
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                    .map(|(_, node)| node.trim().trim_matches('"'));
                if let Some(node) = node {
                    hops.push(hop(node));
                }
            }
        }
        return hops;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let value = String::from_utf8_lossy(value.as_bytes());
        for node in value.split(',') {
            if hops.len() == MAX_HOPS {
                return hops;
            }
            let node = node.trim();
            if !node.is_empty() {
                hops.push(hop(node));
            }
        }
    }
    hops
}

fn hop(node: &str) -> Hop {
    Hop {
        raw: crate::event::sanitize(node, MAX_HOP_LEN),
        ip: parse_node(node),
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or a bare IPv6 address.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse().ok()
}

fn split_outside_quotes(input: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&input[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ips(hops: &[Hop]) -> Vec<Option<IpAddr>> {
        hops.iter().map(|h| h.ip).collect()
    }

    #[test]
    fn parses_forwarded_nodes() {
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.43;proto=https, For="[2001:db8:cafe::17]:4711""#,
            ),
            (
                "forwarded",
                "for=unknown;by=10.0.0.1, proto=http;for=198.51.100.17:80",
            ),
        ]);
        let hops = chain(&h);
        assert_eq!(
            ips(&hops),
            vec![
                Some("192.0.2.43".parse().unwrap()),
                Some("2001:db8:cafe::17".parse().unwrap()),
                None,
                Some("198.51.100.17".parse().unwrap()),
            ]
        );
        assert_eq!(hops[2].raw, "unknown");
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        assert_eq!(ips(&chain(&h)), vec![Some("2.2.2.2".parse().unwrap())]);
    }

    #[test]
    fn parses_x_forwarded_for_lists_and_lines() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7, 10.0.0.2"),
            ("x-forwarded-for", " ::1 ,garbage,"),
        ]);
        let hops = chain(&h);
        assert_eq!(
            ips(&hops),
            vec![
                Some("203.0.113.7".parse().unwrap()),
                Some("10.0.0.2".parse().unwrap()),
                Some("::1".parse().unwrap()),
                None,
            ]
        );
        assert_eq!(hops[3].raw, "garbage");
    }

    #[test]
    fn long_chains_and_hops_are_bounded() {
        let long = vec!["9.9.9.9"; 100].join(",");
        assert_eq!(
            chain(&headers(&[("x-forwarded-for", &long)])).len(),
            MAX_HOPS
        );
        let big = "x".repeat(1000);
        assert_eq!(
            chain(&headers(&[("x-forwarded-for", &big)]))[0].raw.len(),
            MAX_HOP_LEN
        );
    }
}
