use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use http::{HeaderMap, HeaderName};
use ipnet::{IpNet, Ipv4Net};

use super::carried::{is_forwarding, Carried, Header};
use super::forwarded::{self, Hop};
use crate::ConfigError;

/// Which request header the trusted proxies write the client's address into: the only one
/// believed for `source.ip`.
///
/// Choose what the proxy directly in front of the service writes. nginx
/// (`$proxy_add_x_forwarded_for`), HAProxy (`option forwardfor`), AWS ALB and most CDNs
/// append to `X-Forwarded-For` and pass `Forwarded` through untouched, so a `Forwarded`
/// header there was written by the client. Other headers are recorded
/// (`source.forwarded_for`, `source.forwarded_headers`) but never change `source.ip`.
///
/// ```
/// use oauth_audit::ClientIpSource;
///
/// assert_eq!("x-forwarded-for".parse::<ClientIpSource>().unwrap(), ClientIpSource::XForwardedFor);
/// assert_eq!("Forwarded".parse::<ClientIpSource>().unwrap(), ClientIpSource::Forwarded);
/// let cf: ClientIpSource = "CF-Connecting-IP".parse().unwrap();
/// assert_eq!(cf.to_string(), "cf-connecting-ip");
/// assert!("not a header".parse::<ClientIpSource>().is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientIpSource {
    /// `X-Forwarded-For` (the default): the rightmost address that is not a trusted proxy.
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239): the rightmost `for=` address that is not a trusted proxy.
    Forwarded,
    /// A header holding one address that the nearest trusted proxy sets, replacing whatever
    /// the client sent: `X-Real-IP` (nginx `proxy_set_header X-Real-IP $remote_addr`),
    /// `CF-Connecting-IP` (Cloudflare), `True-Client-IP` (Akamai). A value with several
    /// addresses or lines is not believed.
    Header(HeaderName),
}

impl ClientIpSource {
    /// The header's name, in lower case.
    pub fn header_name(&self) -> &str {
        match self {
            ClientIpSource::XForwardedFor => "x-forwarded-for",
            ClientIpSource::Forwarded => "forwarded",
            ClientIpSource::Header(name) => name.as_str(),
        }
    }
}

impl FromStr for ClientIpSource {
    type Err = ConfigError;

    /// `x-forwarded-for`, `forwarded`, or the name of a single-value header (any case).
    fn from_str(value: &str) -> Result<Self, ConfigError> {
        let name = HeaderName::from_bytes(value.trim().as_bytes()).map_err(|_| {
            ConfigError::invalid(
                "client_ip_header",
                "not an HTTP header name (e.g. \"x-forwarded-for\", \"forwarded\", \"x-real-ip\")",
            )
        })?;
        Ok(match name.as_str() {
            "x-forwarded-for" => ClientIpSource::XForwardedFor,
            "forwarded" => ClientIpSource::Forwarded,
            _ => ClientIpSource::Header(name),
        })
    }
}

impl fmt::Display for ClientIpSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.header_name())
    }
}

/// The proxies whose forwarding header is believed (IP addresses or CIDR blocks), and which
/// header that is ([`ClientIpSource`], `X-Forwarded-For` by default).
///
/// With none configured (the default), `source.ip` is always the socket peer and forwarding
/// headers are only recorded, never believed: a client cannot choose its own address.
///
/// ```
/// use oauth_audit::{ClientIpSource, TrustedProxies};
///
/// let trusted = TrustedProxies::new(["10.0.0.0/8", "192.168.1.7"])
///     .unwrap()
///     .source(ClientIpSource::XForwardedFor);
/// assert!(trusted.contains("10.1.2.3".parse().unwrap()));
/// assert!(TrustedProxies::new(["not-an-ip"]).is_err());
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-forwarded-for", "6.6.6.6, 198.51.100.2".parse().unwrap());
/// headers.insert("forwarded", "for=7.7.7.7".parse().unwrap());
/// let peer = "10.0.0.1".parse().unwrap();
/// assert_eq!(trusted.client_ip(peer, &headers), "198.51.100.2".parse::<std::net::IpAddr>().unwrap());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    source: ClientIpSource,
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
                    .map(canonical_net)
                    .map_err(|_| ConfigError::TrustedProxy {
                        value: entry.to_owned(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(TrustedProxies {
            nets,
            source: ClientIpSource::default(),
        })
    }

    /// Sets the one header whose address is believed from a trusted peer.
    pub fn source(mut self, source: ClientIpSource) -> Self {
        self.source = source;
        self
    }

    /// The header whose address is believed.
    pub fn client_ip_source(&self) -> &ClientIpSource {
        &self.source
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

    /// The client's address for a request from `peer` with `headers`: `source.ip`.
    ///
    /// The peer, unless it is a trusted proxy; then the address in the configured header:
    /// for a chain, the rightmost hop that is not a trusted proxy, walking from the right. A
    /// hop that is not an address stops the walk at the last trusted hop, the one that saw
    /// it connect. Other headers are never read.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        match &self.source {
            ClientIpSource::XForwardedFor => {
                walk(peer, ips(forwarded::x_forwarded_for(headers)), self)
            }
            ClientIpSource::Forwarded => walk(peer, ips(forwarded::forwarded(headers)), self),
            ClientIpSource::Header(name) => {
                forwarded::single_value(headers, name).map_or(peer, canonical)
            }
        }
    }

    /// Which of the headers the layer reads `headers` has.
    pub(crate) fn carried(&self, headers: &HeaderMap) -> Carried {
        Carried::of(headers, self.source.header_name())
    }

    /// `source.ip`, `source.forwarded_for` and `source.forwarded_headers` of a request that
    /// carries the headers `carried` says: the address, with the chain and the recorded
    /// headers written over `forwarded_for` and `forwarded_headers`. Whatever those held is
    /// overwritten or removed; their allocations (strings, the map's entries of the same
    /// names) are kept for the new values, so the source of an event made again costs no
    /// allocation when the request is like the one before.
    pub(crate) fn resolve_into(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        carried: Carried,
        forwarded_for: &mut Vec<String>,
        forwarded_headers: &mut BTreeMap<String, String>,
    ) -> Option<IpAddr> {
        if !carried.any_forwarding() {
            // Nothing forwarded (most requests): no chain to read, nothing to record.
            forwarded_for.clear();
            if !forwarded_headers.is_empty() {
                forwarded_headers.clear();
            }
            return peer.map(|peer| match &self.source {
                ClientIpSource::Header(_) => self.client_ip(peer, headers),
                _ => canonical(peer),
            });
        }
        let mut ips = forwarded::Addresses::new();
        let x_forwarded_for = |raw: &mut Vec<String>, ips: &mut forwarded::Addresses| {
            if carried.has(Header::XForwardedFor) {
                forwarded::x_forwarded_for_into(headers, raw, ips);
            } else {
                raw.clear();
            }
            "x-forwarded-for"
        };
        // `Forwarded` is rarer and harder to read: its hops are made afresh.
        let forwarded = |raw: &mut Vec<String>, ips: &mut forwarded::Addresses| {
            raw.clear();
            if carried.has(Header::Forwarded) {
                for hop in forwarded::forwarded(headers) {
                    // At most MAX_HOPS hops: never refused.
                    if ips.try_push(hop.ip).is_ok() {
                        raw.push(hop.raw);
                    }
                }
            }
            "forwarded"
        };
        // The recorded chain is the believed one when a chain is believed, else whichever
        // chain came (`Forwarded` first, as before there was a choice).
        let chain_header = match &self.source {
            ClientIpSource::XForwardedFor => x_forwarded_for(forwarded_for, &mut ips),
            ClientIpSource::Forwarded => forwarded(forwarded_for, &mut ips),
            ClientIpSource::Header(_) if carried.has(Header::Forwarded) => {
                forwarded(forwarded_for, &mut ips)
            }
            ClientIpSource::Header(_) => x_forwarded_for(forwarded_for, &mut ips),
        };
        debug_assert_eq!(ips.len(), forwarded_for.len());
        let ip = peer.map(|peer| {
            let peer = canonical(peer);
            match &self.source {
                ClientIpSource::Header(_) => self.client_ip(peer, headers),
                _ if self.contains(peer) => walk(peer, ips.iter().copied(), self),
                _ => peer,
            }
        });
        self.record(headers, chain_header, forwarded_headers);
        ip
    }

    /// The forwarding headers other than the recorded chain, written over `recorded`.
    fn record(
        &self,
        headers: &HeaderMap,
        chain_header: &str,
        recorded: &mut BTreeMap<String, String>,
    ) {
        let configured = self.source.header_name();
        let kept = |name: &str| name != chain_header && (name == configured || is_forwarding(name));
        // The request's own header names (`keys` yields each once), rather than the twenty
        // candidates looked up one by one.
        let mut written = 0;
        for header in headers.keys() {
            let name = header.as_str();
            if !kept(name) {
                continue;
            }
            let done = match recorded.get_mut(name) {
                Some(value) => forwarded::recorded_into(headers, header, value),
                None => {
                    let mut value = String::new();
                    forwarded::recorded_into(headers, header, &mut value)
                        && recorded.insert(name.to_owned(), value).is_none()
                }
            };
            if done {
                written += 1;
            } else {
                recorded.remove(name);
            }
        }
        // Names left over from before: the written ones are exactly the request's names
        // that are kept (each has a line, as `keys` only names what is there).
        if recorded.len() > written {
            recorded.retain(|name, _| kept(name) && headers.contains_key(name.as_str()));
        }
    }
}

/// What [`TrustedProxies::resolve_into`] finds, made afresh.
#[cfg(test)]
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Resolved {
    pub(crate) ip: Option<IpAddr>,
    pub(crate) forwarded_for: Vec<String>,
    pub(crate) forwarded_headers: BTreeMap<String, String>,
}

#[cfg(test)]
impl TrustedProxies {
    /// [`TrustedProxies::resolve_into`] into nothing.
    pub(crate) fn resolve(
        &self,
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        carried: Carried,
    ) -> Resolved {
        let mut resolved = Resolved::default();
        resolved.ip = self.resolve_into(
            peer,
            headers,
            carried,
            &mut resolved.forwarded_for,
            &mut resolved.forwarded_headers,
        );
        resolved
    }
}

/// The addresses of a chain's hops.
fn ips(chain: Vec<Hop>) -> impl DoubleEndedIterator<Item = Option<IpAddr>> {
    chain.into_iter().map(|hop| hop.ip)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A block of IPv4-mapped IPv6 addresses (within `::ffff:0:0/96`) as the IPv4 block it
/// names: addresses are compared as IPv4 once [`canonical`], so `::ffff:10.0.0.0/104`
/// left as IPv6 would match no peer at all. A wider block (`::/0`) stays IPv6 only.
fn canonical_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => v6
            .network()
            .to_ipv4_mapped()
            .and_then(|v4| Ipv4Net::new(v4, v6.prefix_len() - 96).ok())
            .map_or(net, IpNet::V4),
        other => other,
    }
}

/// From a trusted `peer`, the rightmost hop of `chain` that is not a trusted proxy.
fn walk(
    peer: IpAddr,
    chain: impl DoubleEndedIterator<Item = Option<IpAddr>>,
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut nearest = peer;
    for hop in chain.rev() {
        match hop.map(canonical) {
            Some(ip) if trusted.contains(ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::forwarded::FORWARDING_HEADERS;
    use http::HeaderValue;

    use proptest::prelude::*;

    /// `TrustedProxies::resolve` with the headers the request carries, which must resolve
    /// as if every header were looked up: as with every header counted as present, but for
    /// `Forwarded`, whose presence picks the recorded chain when a single-value header is
    /// configured (what its lookup decided before there was a pass over the names).
    fn resolve(t: &TrustedProxies, peer: Option<IpAddr>, headers: &HeaderMap) -> Resolved {
        let resolved = t.resolve(peer, headers, t.carried(headers));
        let mut every = Carried::all();
        if !headers.contains_key(http::header::FORWARDED) {
            every = every.without(Header::Forwarded);
        }
        assert_eq!(resolved, t.resolve(peer, headers, every));
        resolved
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(nets: &[&str], source: &str) -> TrustedProxies {
        TrustedProxies::new(nets)
            .unwrap()
            .source(source.parse().unwrap())
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("forwarded", "for=1.2.3.4"),
            ("x-real-ip", "1.2.3.4"),
        ]);
        for source in ["x-forwarded-for", "forwarded", "x-real-ip"] {
            let t = trusted(&["10.0.0.0/8"], source);
            assert_eq!(t.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        }
        assert_eq!(
            TrustedProxies::default().client_ip(ip("203.0.113.9"), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn rightmost_untrusted_hop_behind_trusted_proxies() {
        let t = trusted(&["10.0.0.0/8", "172.16.0.1"], "x-forwarded-for");
        // the client forged 6.6.6.6 on the left; the real client is 198.51.100.2
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.2, 10.0.0.5")]);
        assert_eq!(t.client_ip(ip("172.16.0.1"), &h), ip("198.51.100.2"));
    }

    /// Every line of a recorded header is read, in order, up to the bound; lines of other
    /// names in between are not.
    #[test]
    fn every_line_of_a_recorded_header_is_read_in_order_up_to_its_bound() {
        let t = trusted(&["10.0.0.0/8"], "x-forwarded-for");
        let mut pairs: Vec<(String, String)> = (0..40)
            .map(|i| {
                (
                    "x-forwarded-host".to_owned(),
                    format!("host-{i:02}.example"),
                )
            })
            .collect();
        pairs.insert(3, ("x-forwarded-proto".into(), "https".into()));
        pairs.push(("accept".into(), "*/*".into()));
        pairs.push(("x-forwarded-proto".into(), "http".into()));
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let resolved = resolve(&t, Some(ip("10.0.0.1")), &headers(&pairs));
        let hosts = &resolved.forwarded_headers["x-forwarded-host"];
        assert!(
            hosts.starts_with("host-00.example, host-01.example, "),
            "{hosts}"
        );
        assert!(hosts.len() <= forwarded::MAX_HEADER_LEN, "{hosts}");
        assert_eq!(
            resolved.forwarded_headers["x-forwarded-proto"],
            "https, http"
        );
        assert_eq!(resolved.forwarded_headers.len(), 2);
    }

    #[test]
    fn a_forwarded_header_the_front_proxy_passed_through_is_not_believed() {
        // nginx appended the real client to X-Forwarded-For and passed the client's own
        // Forwarded through: with Forwarded preferred, 6.6.6.6 was recorded.
        let h = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "198.51.100.2"),
        ]);
        let t = trusted(&["10.0.0.0/8"], "x-forwarded-for");
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.2"));
        let unbalanced = headers(&[
            ("forwarded", "for=\"6.6.6.6"),
            ("x-forwarded-for", "198.51.100.2"),
        ]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &unbalanced), ip("198.51.100.2"));
        // Chosen, an unclosed quote is not an address: the trusted peer is the answer.
        let t = trusted(&["10.0.0.0/8"], "forwarded");
        assert_eq!(t.client_ip(ip("10.0.0.1"), &unbalanced), ip("10.0.0.1"));
    }

    #[test]
    fn forged_hops_cannot_push_the_trusted_hops_out_of_view() {
        let mut list = (1..=40).map(|i| format!("6.6.6.{i}")).collect::<Vec<_>>();
        list.push("198.51.100.2".into());
        let h = headers(&[("x-forwarded-for", &list.join(", "))]);
        let t = trusted(&["10.0.0.0/8"], "x-forwarded-for");
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.2"));
    }

    #[test]
    fn a_single_value_header_is_believed_only_from_a_trusted_peer() {
        let t = trusted(&["10.0.0.0/8"], "X-Real-IP");
        let h = headers(&[
            ("x-real-ip", "198.51.100.2"),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=7.7.7.7"),
        ]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.2"));
        assert_eq!(t.client_ip(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        let appended = headers(&[("x-real-ip", "6.6.6.6, 198.51.100.2")]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &appended), ip("10.0.0.1"));
        // The chosen header is read; X-Forwarded-For never is.
        let missing = headers(&[("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(t.client_ip(ip("10.0.0.1"), &missing), ip("10.0.0.1"));
    }

    #[test]
    fn all_trusted_or_garbage() {
        let t = trusted(&["10.0.0.0/8"], "x-forwarded-for");
        let peer = ip("10.0.0.1");
        let xff = |v: &str| headers(&[("x-forwarded-for", v)]);
        assert_eq!(
            t.client_ip(peer, &xff("10.0.0.9, 10.0.0.8")),
            ip("10.0.0.9")
        );
        assert_eq!(
            t.client_ip(peer, &xff("1.1.1.1, unknown, 10.0.0.7")),
            ip("10.0.0.7")
        );
        assert_eq!(t.client_ip(peer, &HeaderMap::new()), peer);
        assert_eq!(resolve(&t, None, &xff("1.1.1.1")).ip, None);
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_blocks() {
        let t = trusted(&["127.0.0.1"], "x-forwarded-for");
        let h = headers(&[("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(t.client_ip(ip("::ffff:127.0.0.1"), &h), ip("192.0.2.1"));
    }

    #[test]
    fn ipv4_mapped_blocks_match_the_ipv4_peers_they_name() {
        let t = trusted(
            &["::ffff:10.0.0.0/104", "::ffff:192.0.2.7"],
            "x-forwarded-for",
        );
        let h = headers(&[("x-forwarded-for", "198.51.100.2")]);
        for peer in [
            "10.1.2.3",
            "::ffff:10.1.2.3",
            "192.0.2.7",
            "::ffff:192.0.2.7",
        ] {
            assert!(t.contains(ip(peer)), "{peer}");
            assert_eq!(t.client_ip(ip(peer), &h), ip("198.51.100.2"), "{peer}");
        }
        for peer in ["11.0.0.1", "192.0.2.8", "::ffff:11.0.0.1", "::a00:1"] {
            assert!(!t.contains(ip(peer)), "{peer}");
        }
        assert_eq!(
            t,
            trusted(&["10.0.0.0/8", "192.0.2.7/32"], "x-forwarded-for")
        );
        // Wider than the mapped range: the IPv6 block it says, and no IPv4 peer.
        let wide = trusted(&["::/0"], "x-forwarded-for");
        assert!(wide.contains(ip("2001:db8::1")) && !wide.contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn headers_not_chosen_are_recorded_apart() {
        let t = trusted(&["10.0.0.0/8"], "x-forwarded-for");
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.2"),
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-host", "evil.example\tx"),
        ]);
        let resolved = resolve(&t, Some(ip("10.0.0.1")), &h);
        assert_eq!(resolved.forwarded_for, vec!["198.51.100.2"]);
        assert_eq!(resolved.forwarded_headers["forwarded"], "for=6.6.6.6");
        assert_eq!(
            resolved.forwarded_headers["x-forwarded-host"],
            "evil.example\\u{9}x"
        );
        assert!(!resolved.forwarded_headers.contains_key("x-forwarded-for"));
    }

    /// What a request resolved to before the chain and recorded headers were written into
    /// reused buffers: every hop and header made afresh, `X-Forwarded-For` kept in a ring of
    /// hops (the code of that time, as the model a resolve into any buffers agrees with).
    fn resolved_afresh(t: &TrustedProxies, peer: Option<IpAddr>, headers: &HeaderMap) -> Resolved {
        use crate::context::forwarded::{parse_node, MAX_HEADER_LEN, MAX_HOPS, MAX_HOP_LEN};
        use crate::event::sanitize;
        let x_forwarded_for = || {
            let mut hops = std::collections::VecDeque::new();
            for value in headers.get_all("x-forwarded-for") {
                for node in String::from_utf8_lossy(value.as_bytes()).split(',') {
                    let node = node.trim();
                    if node.is_empty() {
                        continue;
                    }
                    if hops.len() == MAX_HOPS {
                        hops.pop_front();
                    }
                    hops.push_back(Hop {
                        raw: sanitize(node, MAX_HOP_LEN),
                        ip: parse_node(node),
                    });
                }
            }
            Vec::from(hops)
        };
        let has_forwarded = headers.contains_key(http::header::FORWARDED);
        let (chain, chain_header) = match &t.source {
            ClientIpSource::XForwardedFor => (x_forwarded_for(), "x-forwarded-for"),
            ClientIpSource::Forwarded => (forwarded::forwarded(headers), "forwarded"),
            ClientIpSource::Header(_) if has_forwarded => {
                (forwarded::forwarded(headers), "forwarded")
            }
            ClientIpSource::Header(name) => {
                let _ = name;
                (x_forwarded_for(), "x-forwarded-for")
            }
        };
        let ip = peer.map(|peer| {
            let peer = canonical(peer);
            match &t.source {
                ClientIpSource::Header(name) if t.contains(peer) => {
                    forwarded::single_value(headers, name).map_or(peer, canonical)
                }
                ClientIpSource::Header(_) => peer,
                _ if t.contains(peer) => walk(peer, chain.iter().map(|hop| hop.ip), t),
                _ => peer,
            }
        });
        let configured = t.source.header_name();
        let mut others = BTreeMap::new();
        for name in headers.keys() {
            let name = name.as_str();
            if name == chain_header || !(name == configured || FORWARDING_HEADERS.contains(&name)) {
                continue;
            }
            let lines: Vec<_> = headers
                .get_all(name)
                .iter()
                .map(|line| String::from_utf8_lossy(line.as_bytes()).into_owned())
                .collect();
            let mut joined = lines[0].clone();
            for line in &lines[1..] {
                if joined.len() > MAX_HEADER_LEN {
                    break;
                }
                joined.push_str(", ");
                joined.push_str(line);
            }
            others.insert(name.to_owned(), sanitize(&joined, MAX_HEADER_LEN));
        }
        Resolved {
            ip,
            forwarded_for: chain.into_iter().map(|hop| hop.raw).collect(),
            forwarded_headers: others,
        }
    }

    /// A header value as a client may send it: printable text, long lists of hops (past the
    /// ring's places), bytes past ASCII (not UTF-8), tabs.
    fn hostile_value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            "[ -~]{0,40}".prop_map(|s| HeaderValue::from_str(&s).unwrap()),
            proptest::collection::vec(hop_text(), 0..80)
                .prop_map(|hops| HeaderValue::from_str(&hops.join(", ")).unwrap()),
            proptest::collection::vec(
                prop_oneof![
                    Just(b'\t'),
                    0x20u8..0x7f,
                    0x80u8..=0xff,
                    Just(b','),
                    Just(b'"')
                ],
                0..300,
            )
            .prop_map(|bytes| HeaderValue::from_bytes(&bytes).unwrap()),
        ]
    }

    /// Whatever an event handed back held (an event an application emitted may hold any
    /// chain and any names, in any case, in any script).
    fn any_before() -> impl Strategy<Value = (Vec<String>, BTreeMap<String, String>)> {
        let name = prop_oneof![
            proptest::sample::select(FORWARDING_HEADERS.to_vec()).prop_map(str::to_owned),
            proptest::sample::select(FORWARDING_HEADERS.to_vec())
                .prop_map(|name| name.to_ascii_uppercase()),
            proptest::sample::select(vec!["fly-client-addr", "user-agent", "X-Real-IP", "é", ""])
                .prop_map(str::to_owned),
            any::<String>(),
        ];
        (
            proptest::collection::vec(any::<String>(), 0..100),
            proptest::collection::btree_map(name, any::<String>(), 0..12),
        )
    }

    fn hop_text() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u8..=255).prop_map(|i| format!("6.6.6.{i}")),
            (0u8..=255).prop_map(|i| format!("10.0.0.{i}")),
            Just("unknown".to_owned()),
            Just("[::1]:80".to_owned()),
            "[ -~]{0,12}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Agreement with a model: split the whole list, walk from the right.
        #[test]
        fn client_ip_agrees_with_a_model(
            hops in proptest::collection::vec(hop_text(), 0..50),
            peer_trusted in any::<bool>(),
        ) {
            let t = trusted(&["10.0.0.0/8"], "x-forwarded-for");
            let peer = if peer_trusted { ip("10.9.9.9") } else { ip("192.0.2.9") };
            let line = hops.join(",");
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", http::HeaderValue::from_str(&line).unwrap());
            let got = t.client_ip(peer, &h);
            let mut expected = peer;
            if peer_trusted {
                for node in line.split(',').map(str::trim).filter(|n| !n.is_empty()).rev() {
                    match forwarded::parse_node(node).map(canonical) {
                        Some(a) if t.contains(a) => expected = a,
                        Some(a) => { expected = a; break }
                        None => break,
                    }
                }
                let nodes = line.split(',').filter(|n| !n.trim().is_empty()).count();
                if nodes <= forwarded::MAX_HOPS {
                    prop_assert_eq!(got, expected);
                } else if got != expected {
                    // The model reads all hops, the layer the rightmost 32: they differ only
                    // when those 32 are all trusted proxies, and then the layer stops at one.
                    prop_assert!(t.contains(got));
                }
            } else {
                prop_assert_eq!(got, peer);
            }
        }

        /// The security property: whatever a client sends in any header, a trusted proxy
        /// that appends (X-Forwarded-For, Forwarded) or sets (X-Real-IP) the address it saw
        /// decides source.ip.
        #[test]
        fn a_client_cannot_choose_its_address(
            xff in "[ -~]{0,80}",
            fwd in "[ -~]{0,80}",
            real_ip in "[ -~]{0,30}",
            last in 1u8..=254,
        ) {
            let real = format!("198.51.100.{last}");
            let peer = ip("10.0.0.1");
            for source in ["x-forwarded-for", "forwarded", "x-real-ip"] {
                let mut h = HeaderMap::new();
                h.append("x-forwarded-for", xff.parse().unwrap());
                h.append("forwarded", fwd.parse().unwrap());
                h.append("x-real-ip", real_ip.parse().unwrap());
                match source {
                    "x-forwarded-for" => h.append("x-forwarded-for", real.parse().unwrap()),
                    "forwarded" => h.append("forwarded", format!("for={real}").parse().unwrap()),
                    _ => h.insert("x-real-ip", real.parse().unwrap()).is_some(),
                };
                let t = trusted(&["10.0.0.0/8"], source);
                prop_assert_eq!(t.client_ip(peer, &h), ip(&real), "source {}", source);
                let resolved = resolve(&t, Some(peer), &h);
                prop_assert!(resolved.forwarded_for.len() <= forwarded::MAX_HOPS);
                prop_assert!(resolved
                    .forwarded_headers
                    .values()
                    .all(|v| v.len() <= forwarded::MAX_HEADER_LEN));
            }
        }

        /// A proxy that appends its element to the client's `Forwarded` line (or a hop
        /// that folds the lines into one): whatever the client wrote before it, the
        /// answer is the address the proxy appended, neither one the client chose nor the
        /// trusted peer standing in for the client.
        #[test]
        fn a_client_line_cannot_take_the_place_of_an_element_appended_to_it(
            client in proptest::collection::vec(
                prop_oneof![
                    Just("for=6.6.6.6"),
                    Just("for=\"[2001:db8::6]\""),
                    Just("x="),
                    Just("\""),
                    Just("\\"),
                    Just(";"),
                    Just(","),
                    Just(" "),
                    Just("a"),
                ],
                0..12,
            )
            .prop_map(|pieces| pieces.concat()),
            last in 1u8..=254,
        ) {
            let real = format!("198.51.100.{last}");
            let peer = ip("10.0.0.1");
            let t = trusted(&["10.0.0.0/8"], "forwarded");
            let h = headers(&[("forwarded", &format!("{client}, for={real};proto=https"))]);
            let got = t.client_ip(peer, &h);
            prop_assert_eq!(got, ip(&real), "from {:?}", client);
        }

        /// Only the headers a request has are looked up: whichever of them it carries, with
        /// whichever source configured (names the layer reads for itself too, and one in no
        /// list), the answer is the one every lookup gives.
        #[test]
        fn the_headers_found_resolve_as_every_header_looked_up(
            picks in proptest::collection::vec((0usize..64, "[ -~]{0,40}"), 0..6),
            source in 0usize..6,
            trusted_peer in any::<bool>(),
        ) {
            let names: Vec<&'static str> = FORWARDING_HEADERS
                .iter()
                .copied()
                .chain([
                    "user-agent", "traceparent", "x-request-id", "dpop", "fly-client-addr",
                    "host", "authorization",
                ])
                .collect();
            let mut h = HeaderMap::new();
            for (pick, value) in &picks {
                h.append(
                    HeaderName::from_static(names[pick % names.len()]),
                    value.parse().unwrap(),
                );
            }
            let source = ["x-forwarded-for", "forwarded", "x-real-ip", "x-request-id",
                "fly-client-addr", "user-agent"][source];
            let t = trusted(&["10.0.0.0/8"], source);
            let peer = if trusted_peer { ip("10.0.0.1") } else { ip("192.0.2.1") };
            // `resolve` compares with every lookup made.
            resolve(&t, Some(peer), &h);
        }

        /// Resolved into what another request left (under another configuration too, as
        /// one auditor's events serve several layers), a request's chain and recorded
        /// headers are what they are when resolved afresh: nothing of the one before stays.
        #[test]
        fn what_a_request_resolves_into_keeps_nothing_of_the_one_before(
            requests in proptest::collection::vec(
                (
                    proptest::collection::vec(
                        (
                            0usize..64,
                            prop_oneof![
                                "[ -~]{0,40}",
                                proptest::collection::vec(hop_text(), 0..40)
                                    .prop_map(|hops| hops.join(", ")),
                            ],
                        ),
                        0..6,
                    ),
                    0usize..4,
                ),
                2..5,
            ),
        ) {
            let names: Vec<&'static str> = FORWARDING_HEADERS
                .iter()
                .copied()
                .chain(["user-agent", "x-request-id", "fly-client-addr", "host"])
                .collect();
            let mut forwarded_for = Vec::new();
            let mut forwarded_headers = BTreeMap::new();
            for (picks, source) in requests {
                let mut h = HeaderMap::new();
                for (pick, value) in &picks {
                    h.append(
                        HeaderName::from_static(names[pick % names.len()]),
                        value.parse().unwrap(),
                    );
                }
                let source = ["x-forwarded-for", "forwarded", "x-real-ip", "fly-client-addr"][source];
                let t = trusted(&["10.0.0.0/8"], source);
                let peer = Some(ip("10.0.0.1"));
                let fresh = resolve(&t, peer, &h);
                let ip = t.resolve_into(peer, &h, t.carried(&h), &mut forwarded_for, &mut forwarded_headers);
                prop_assert_eq!(ip, fresh.ip);
                prop_assert_eq!(&forwarded_for, &fresh.forwarded_for);
                prop_assert_eq!(&forwarded_headers, &fresh.forwarded_headers);
            }
        }

        /// Resolved into whatever an event handed back held, then into what each request
        /// before left, under any configuration, a request resolves as it did when nothing
        /// was reused: the same address, chain and recorded headers, hostile headers
        /// (lists past the ring, many lines, bytes that are not UTF-8, names repeated) too.
        #[test]
        fn resolving_into_any_buffers_is_resolving_afresh_as_before(
            (before_chain, before_headers) in any_before(),
            requests in proptest::collection::vec(
                (
                    proptest::collection::vec((0usize..64, hostile_value()), 0..8),
                    0usize..5,
                    0usize..3,
                    0usize..5,
                ),
                1..5,
            ),
        ) {
            let names: Vec<&'static str> = FORWARDING_HEADERS
                .iter()
                .copied()
                .chain(["user-agent", "x-request-id", "fly-client-addr", "host"])
                .collect();
            let mut forwarded_for = before_chain;
            let mut forwarded_headers = before_headers;
            for (picks, source, nets, peer) in requests {
                let mut h = HeaderMap::new();
                for (pick, value) in picks {
                    h.append(HeaderName::from_static(names[pick % names.len()]), value);
                }
                let source =
                    ["x-forwarded-for", "forwarded", "x-real-ip", "fly-client-addr", "x-forwarded-host"][source];
                let nets: &[&str] = [&["10.0.0.0/8"][..], &["0.0.0.0/0", "::/0"], &[]][nets];
                let t = trusted(nets, source);
                let peer = [None, Some("10.0.0.1"), Some("203.0.113.9"), Some("::ffff:10.0.0.1"), Some("2001:db8::1")][peer]
                    .map(ip);
                let afresh = resolved_afresh(&t, peer, &h);
                let ip = t.resolve_into(peer, &h, t.carried(&h), &mut forwarded_for, &mut forwarded_headers);
                prop_assert_eq!(ip, afresh.ip);
                prop_assert_eq!(&forwarded_for, &afresh.forwarded_for);
                prop_assert_eq!(&forwarded_headers, &afresh.forwarded_headers);
            }
        }
    }
}
