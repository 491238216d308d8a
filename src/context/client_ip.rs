use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use super::forwarded::Hop;
use crate::ConfigError;

/// The proxies whose forwarding headers are believed (IP addresses or CIDR blocks).
///
/// With none configured (the default), `source.ip` is always the socket peer and forwarding
/// headers are only recorded, never believed: a client cannot choose its own address.
///
/// ```
/// use oauth_audit::TrustedProxies;
///
/// let trusted = TrustedProxies::new(["10.0.0.0/8", "192.168.1.7"]).unwrap();
/// assert!(trusted.contains("10.1.2.3".parse().unwrap()));
/// assert!(TrustedProxies::new(["not-an-ip"]).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses addresses and CIDR blocks.
    pub fn new<I, S>(entries: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = entries
            .into_iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                IpNet::from_str(entry)
                    .or_else(|_| IpAddr::from_str(entry).map(IpNet::from))
                    .map_err(|_| ConfigError::TrustedProxy {
                        value: entry.to_owned(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies { nets })
    }

    /// True when `ip` belongs to a trusted proxy. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// True when no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client address: the peer, unless the peer is a trusted proxy, in which case the
/// rightmost hop of the chain that is not a trusted proxy.
///
/// A hop that is not an address (`unknown`, garbage) ends the walk: nothing left of it can
/// be believed, so the answer is the last trusted hop, the one that saw it connect.
pub(crate) fn client_ip(
    peer: Option<IpAddr>,
    chain: &[Hop],
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = canonical(peer?);
    if !trusted.contains(peer) {
        return Some(peer);
    }
    let mut nearest = peer;
    for hop in chain.iter().rev() {
        match hop.ip.map(canonical) {
            Some(ip) if trusted.contains(ip) => nearest = ip,
            Some(ip) => return Some(ip),
            None => return Some(nearest),
        }
    }
    Some(nearest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(list: &[&str]) -> Vec<Hop> {
        list.iter()
            .map(|raw| Hop {
                raw: raw.to_string(),
                ip: raw.parse().ok(),
            })
            .collect()
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let trusted = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let chain = hops(&["1.2.3.4"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &chain, &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), &chain, &TrustedProxies::default()),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn rightmost_untrusted_hop_behind_trusted_proxies() {
        let trusted = TrustedProxies::new(["10.0.0.0/8", "172.16.0.1"]).unwrap();
        // the client forged 6.6.6.6 on the left; the real client is 198.51.100.2
        let chain = hops(&["6.6.6.6", "198.51.100.2", "10.0.0.5"]);
        assert_eq!(
            client_ip(ip("172.16.0.1"), &chain, &trusted),
            ip("198.51.100.2")
        );
    }

    #[test]
    fn all_trusted_or_garbage() {
        let trusted = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        assert_eq!(
            client_ip(ip("10.0.0.1"), &hops(&["10.0.0.9", "10.0.0.8"]), &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &hops(&["1.1.1.1", "unknown", "10.0.0.7"]),
                &trusted
            ),
            ip("10.0.0.7")
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &[], &trusted), ip("10.0.0.1"));
        assert_eq!(client_ip(None, &hops(&["1.1.1.1"]), &trusted), None);
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_blocks() {
        let trusted = TrustedProxies::new(["127.0.0.1"]).unwrap();
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &hops(&["192.0.2.1"]), &trusted),
            ip("192.0.2.1")
        );
    }
}
