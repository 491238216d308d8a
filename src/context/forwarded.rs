//! Parsing of the forwarding headers: `Forwarded` (RFC 7239), `X-Forwarded-For`, and
//! single-value client address headers (`X-Real-IP`, `CF-Connecting-IP`, ...).
//!
//! Chains are read from the right: a proxy appends the address it saw connect, so only the
//! rightmost hops were written by proxies; everything to their left came from the client.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use http::{HeaderMap, HeaderName};

/// At most this many hops, the rightmost, are kept of a forwarding chain.
pub(crate) const MAX_HOPS: usize = 32;
/// At most this many bytes of one hop are recorded.
pub(crate) const MAX_HOP_LEN: usize = 64;
/// At most this many bytes of one recorded forwarding header.
pub(crate) const MAX_HEADER_LEN: usize = 256;

/// Every forwarding header the layer records and the proxy rewrites: the ones that name the
/// client's address, and the ones that describe the request as the client sent it (host,
/// scheme, port, prefix), which applications use to build issuer and redirect URLs.
pub const FORWARDING_HEADERS: [&str; 22] = [
    "forwarded",
    "x-forwarded-for",
    "x-real-ip",
    "cf-connecting-ip",
    "true-client-ip",
    "x-client-ip",
    // `HTTP_CLIENT_IP` to PHP, which the address lookups copied into PHP applications read
    // before `HTTP_X_FORWARDED_FOR`; Rails' `RemoteIp` reads it too.
    "client-ip",
    "x-cluster-client-ip",
    "fastly-client-ip",
    "x-original-forwarded-for",
    "x-forwarded",
    "forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    // Written by ingress-nginx; Tornado (`xheaders`) takes the scheme from it before
    // `X-Forwarded-Proto`.
    "x-scheme",
    "x-original-host",
    "x-host",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One hop of a forwarding chain as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The node as written (sanitised), for `source.forwarded_for`.
    pub raw: String,
    /// The address, when the node is one (`unknown`, obfuscated and malformed nodes are not).
    pub ip: Option<IpAddr>,
}

/// The rightmost [`MAX_HOPS`] hops of `X-Forwarded-For`, left (client) to right (nearest
/// proxy). Several header lines are read in order, as one list.
#[doc(hidden)]
pub fn x_forwarded_for(headers: &HeaderMap) -> Vec<Hop> {
    let mut raw = Vec::new();
    let mut ips = Addresses::new();
    x_forwarded_for_into(headers, &mut raw, &mut ips);
    raw.into_iter()
        .zip(ips)
        .map(|(raw, ip)| Hop { raw, ip })
        .collect()
}

/// The addresses of a chain's hops (`None` for a hop that is not one), at most
/// [`MAX_HOPS`], kept on the stack and never initialised past the last.
pub(crate) type Addresses = arrayvec::ArrayVec<Option<IpAddr>, MAX_HOPS>;

/// [`x_forwarded_for`] into `raw` (each hop as written, sanitised) and `ips` (the address of
/// each, in the same order), keeping the strings `raw` already holds for the new hops: the
/// chain of an event made again costs no allocation when it is no longer than the one
/// before. Whatever `raw` held is overwritten or cut; `ips` starts empty.
pub(crate) fn x_forwarded_for_into(
    headers: &HeaderMap,
    raw: &mut Vec<String>,
    ips: &mut Addresses,
) {
    debug_assert!(ips.is_empty());
    // A ring over the first MAX_HOPS places: hop `n` goes to `n % MAX_HOPS`.
    let mut seen = 0;
    for value in headers.get_all(X_FORWARDED_FOR) {
        let value = crate::text::lossy(value.as_bytes());
        for node in value.split(',') {
            let node = node.trim();
            if node.is_empty() {
                continue;
            }
            let place = seen % MAX_HOPS;
            match raw.get_mut(place) {
                Some(kept) => crate::text::sanitize_into(kept, node, MAX_HOP_LEN),
                None => raw.push(crate::event::sanitize(node, MAX_HOP_LEN)),
            }
            let ip = parse_node(node);
            match ips.get_mut(place) {
                Some(kept) => *kept = ip,
                None => ips.push(ip),
            }
            seen += 1;
        }
    }
    // What is left past the hops was another chain's.
    raw.truncate(seen.min(MAX_HOPS));
    if seen > MAX_HOPS {
        // The ring went round: the oldest hop kept is where the next would have gone.
        raw.rotate_left(seen % MAX_HOPS);
        ips.rotate_left(seen % MAX_HOPS);
    }
}

/// The rightmost [`MAX_HOPS`] `for=` nodes of `Forwarded` (RFC 7239), left to right.
///
/// Parsing is strict where leniency would let a client pick its address: a quoted string
/// must be closed on its own line, and an element with no `for` or with it twice is a hop
/// whose address is unknown (which stops a walk from the right there).
///
/// A quote the client leaves open runs to the end of its line, over whatever a proxy
/// appended to that line (a proxy that writes `$http_forwarded, for=...`, or any hop that
/// folds the lines into one, as RFC 9110 §5.3 allows). The element it opens in is a hop
/// whose address is unknown, never the client's own `for` standing in for the proxy's; the
/// rest of the line is read again at every comma, quotes or not, so the elements proxies
/// appended are found where they were written: after anything the client wrote, which may
/// only add hops to their left.
#[doc(hidden)]
pub fn forwarded(headers: &HeaderMap) -> Vec<Hop> {
    let mut hops = Ring::default();
    for value in headers.get_all(http::header::FORWARDED) {
        let value = crate::text::lossy(value.as_bytes());
        let (elements, closed) = split_outside_quotes(&value, ',');
        let last = elements.len() - 1;
        for (i, element) in elements.into_iter().enumerate() {
            if i == last && !closed {
                let mut pieces = element.split(',');
                if let Some(opened) = pieces.next() {
                    hops.push(unknown(opened));
                }
                for piece in pieces.filter(|piece| !piece.trim().is_empty()) {
                    hops.push(forwarded_element(piece));
                }
            } else if !element.trim().is_empty() {
                hops.push(forwarded_element(element));
            }
        }
    }
    hops.into_vec()
}

/// The address in a single-value header (`X-Real-IP`, `CF-Connecting-IP`), which the nearest
/// proxy sets, replacing any copy the client sent. More than one line or value means it was
/// appended to rather than set, so nothing in it can be believed.
#[doc(hidden)]
pub fn single_value(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let mut lines = headers.get_all(name).iter();
    let line = lines.next()?;
    if lines.next().is_some() {
        return None;
    }
    let value = line.to_str().ok()?.trim();
    if value.contains(',') {
        return None;
    }
    parse_node(value)
}

/// All lines of a header joined by `, `, sanitised and bounded, for the record: written over
/// `out`, whose allocation is kept. False (and `out` untouched) when the header has no line.
pub(crate) fn recorded_into(headers: &HeaderMap, name: &HeaderName, out: &mut String) -> bool {
    let mut lines = headers.get_all(name).iter().peekable();
    let Some(first) = lines.next() else {
        return false;
    };
    let first = crate::text::lossy(first.as_bytes());
    // Most headers come in one line: sanitised as it is, without a joined copy first.
    if lines.peek().is_none() {
        crate::text::sanitize_into(out, &first, MAX_HEADER_LEN);
        return true;
    }
    let mut joined = first.into_owned();
    for line in lines {
        if joined.len() > MAX_HEADER_LEN {
            break;
        }
        joined.push_str(", ");
        joined.push_str(&crate::text::lossy(line.as_bytes()));
    }
    crate::text::sanitize_into(out, &joined, MAX_HEADER_LEN);
    true
}

/// Keeps the last [`MAX_HOPS`] hops pushed.
#[derive(Default)]
struct Ring(VecDeque<Hop>);

impl Ring {
    fn push(&mut self, hop: Hop) {
        if self.0.len() == MAX_HOPS {
            self.0.pop_front();
        }
        self.0.push_back(hop);
    }

    fn into_vec(self) -> Vec<Hop> {
        self.0.into()
    }
}

fn forwarded_element(element: &str) -> Hop {
    let mut found: Option<&str> = None;
    // Every quote in `element` is closed: one left open is a hop of its own (`forwarded`).
    for pair in split_outside_quotes(element, ';').0 {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("for") {
            if found.is_some() {
                return unknown(element);
            }
            found = Some(value.trim());
        }
    }
    let Some(value) = found else {
        return unknown("unknown");
    };
    match unquote(value) {
        Some(node) => hop(&node),
        None => unknown(value),
    }
}

fn unknown(raw: &str) -> Hop {
    Hop {
        raw: crate::event::sanitize(raw.trim(), MAX_HOP_LEN),
        ip: None,
    }
}

/// A `token` or a `quoted-string` (RFC 9110 §5.6.4) that is closed and ends the value.
fn unquote(value: &str) -> Option<Cow<'_, str>> {
    let Some(rest) = value.strip_prefix('"') else {
        return (!value.is_empty() && !value.contains(['"', '\\'])).then_some(Cow::Borrowed(value));
    };
    let mut out = String::with_capacity(rest.len());
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().is_empty().then_some(Cow::Owned(out)),
            c => out.push(c),
        }
    }
    None
}

fn hop(node: &str) -> Hop {
    Hop {
        raw: crate::event::sanitize(node, MAX_HOP_LEN),
        ip: parse_node(node),
    }
}

/// `1.2.3.4`, `1.2.3.4:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or a bare IPv6 address.
pub(crate) fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse().ok()
}

/// Splits at `separator` outside quoted strings (honouring `\` escapes inside them), and
/// says whether every quote was closed. An unclosed quote runs to the end of the input:
/// the last part holds it.
fn split_outside_quotes(input: &str, separator: char) -> (Vec<&str>, bool) {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&input[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    (parts, !quoted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
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
        let hops = forwarded(&h);
        assert_eq!(
            ips(&hops),
            vec![
                ip("192.0.2.43"),
                ip("2001:db8:cafe::17"),
                None,
                ip("198.51.100.17"),
            ]
        );
        assert_eq!(hops[2].raw, "unknown");
    }

    #[test]
    fn an_unclosed_quote_is_no_address() {
        // Lenient unquoting read 6.6.6.6 here.
        let hops = forwarded(&headers(&[("forwarded", r#"for="6.6.6.6"#)]));
        assert_eq!(ips(&hops), vec![None]);
        // A quote opened by the client cannot swallow a line a proxy added.
        let hops = forwarded(&headers(&[
            ("forwarded", r#"for="6.6.6.6"#),
            ("forwarded", "for=198.51.100.2"),
        ]));
        assert_eq!(ips(&hops), vec![None, ip("198.51.100.2")]);
        // Text after the closing quote, an escape, a doubled `for`: not an address.
        for bad in [
            r#"for="6.6.6.6"x"#,
            r#"for=6.6.6.6\"#,
            "for=6.6.6.6;for=1.1.1.1",
            "for=",
        ] {
            assert_eq!(ips(&forwarded(&headers(&[("forwarded", bad)]))), vec![None]);
        }
        // Escapes inside a quoted string are honoured.
        let hops = forwarded(&headers(&[(
            "forwarded",
            r#"for="[::1]";x="a\",b", for=1.2.3.4"#,
        )]));
        assert_eq!(ips(&hops), vec![ip("::1"), ip("1.2.3.4")]);
    }

    #[test]
    fn a_quote_left_open_cannot_swallow_what_a_proxy_appends_to_its_line() {
        // The client's line, then the element a proxy appended to that same line: the open
        // quote swallowed it, and the client's own `for` was read as the rightmost hop (then
        // an unknown hop, which made the trusted proxy the client).
        for (line, appended) in [
            (r#"for=6.6.6.6;x=", for=198.51.100.2"#, "198.51.100.2"),
            (
                r#"for=6.6.6.6;x=a"b, for=198.51.100.2;proto=https"#,
                "198.51.100.2",
            ),
            (
                r#"for=6.6.6.6;x="\, for="[2001:db8::1]";proto=https"#,
                "2001:db8::1",
            ),
            (
                r#"for=6.6.6.6, for=7.7.7.7;x=", for=198.51.100.2"#,
                "198.51.100.2",
            ),
            // Elements forged inside the open quote stay left of the appended one.
            (
                r#"for=6.6.6.6;x=", for=1.2.3.4, for=5.6.7.8, for=198.51.100.2"#,
                "198.51.100.2",
            ),
        ] {
            let hops = forwarded(&headers(&[("forwarded", line)]));
            assert_eq!(hops.last().map(|h| h.ip), Some(ip(appended)), "{line}");
            // The element the quote opens in is a hop whose address is unknown.
            let opened = hops.iter().find(|h| h.raw.contains(";x="));
            assert_eq!(opened.map(|h| h.ip), Some(None), "{line}");
        }
        // Quotes that close before the proxy's element leave it as it was written.
        let hops = forwarded(&headers(&[(
            "forwarded",
            r#"for=6.6.6.6;x="a,b", for="[2001:db8::1]";proto=https"#,
        )]));
        assert_eq!(ips(&hops), vec![ip("6.6.6.6"), ip("2001:db8::1")]);
    }

    #[test]
    fn an_element_without_for_is_an_unknown_hop() {
        let hops = forwarded(&headers(&[("forwarded", "for=6.6.6.6, proto=https;by=x")]));
        assert_eq!(ips(&hops), vec![ip("6.6.6.6"), None]);
    }

    #[test]
    fn parses_x_forwarded_for_lists_and_lines() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.7, 10.0.0.2"),
            ("x-forwarded-for", " ::1 ,garbage,"),
        ]);
        let hops = x_forwarded_for(&h);
        assert_eq!(
            ips(&hops),
            vec![ip("203.0.113.7"), ip("10.0.0.2"), ip("::1"), None]
        );
        assert_eq!(hops[3].raw, "garbage");
    }

    #[test]
    fn long_chains_keep_their_rightmost_hops() {
        // 40 forged hops, then the one the trusted proxy appended: it stays in view.
        let mut list = vec!["6.6.6.6"; 40].join(",");
        list.push_str(", 198.51.100.2");
        let hops = x_forwarded_for(&headers(&[("x-forwarded-for", &list)]));
        assert_eq!(hops.len(), MAX_HOPS);
        assert_eq!(hops[MAX_HOPS - 1].ip, ip("198.51.100.2"));
        assert_eq!(hops[MAX_HOPS - 1].raw, "198.51.100.2");
        let big = "x".repeat(1000);
        assert_eq!(
            x_forwarded_for(&headers(&[("x-forwarded-for", &big)]))[0]
                .raw
                .len(),
            MAX_HOP_LEN
        );
    }

    #[test]
    fn single_value_headers_take_one_address() {
        let name = HeaderName::from_static("x-real-ip");
        assert_eq!(
            single_value(&headers(&[("x-real-ip", " 192.0.2.1 ")]), &name),
            ip("192.0.2.1")
        );
        assert_eq!(
            single_value(&headers(&[("x-real-ip", "[::1]:80")]), &name),
            ip("::1")
        );
        for bad in [
            headers(&[("x-real-ip", "6.6.6.6, 192.0.2.1")]),
            headers(&[("x-real-ip", "6.6.6.6"), ("x-real-ip", "192.0.2.1")]),
            headers(&[("x-real-ip", "nope")]),
            HeaderMap::new(),
        ] {
            assert_eq!(single_value(&bad, &name), None);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Any header text: no panic, bounded output, and every address found is one
        /// that a simple model (split, trim, parse) also finds.
        #[test]
        fn parsers_are_bounded_and_agree_with_a_model(
            lines in proptest::collection::vec(
                prop_oneof![
                    "[ -~]{0,200}",
                    // Lists long enough to go round the ring of kept hops.
                    proptest::collection::vec("[ -+--~]{0,8}", 0..80).prop_map(|n| n.join(",")),
                ],
                0..4,
            ),
        ) {
            let mut xff = HeaderMap::new();
            let mut fwd = HeaderMap::new();
            for line in &lines {
                let value = http::HeaderValue::from_str(line).unwrap();
                xff.append("x-forwarded-for", value.clone());
                fwd.append(http::header::FORWARDED, value);
            }
            let hops = x_forwarded_for(&xff);
            let model: Vec<&str> = lines
                .iter()
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect();
            let start = model.len().saturating_sub(MAX_HOPS);
            prop_assert_eq!(hops.len(), model.len() - start);
            for (hop, node) in hops.iter().zip(&model[start..]) {
                prop_assert!(hop.raw.len() <= MAX_HOP_LEN);
                prop_assert_eq!(&hop.raw, &crate::event::sanitize(node, MAX_HOP_LEN));
                prop_assert_eq!(hop.ip, parse_node(node));
            }
            let hops = forwarded(&fwd);
            prop_assert!(hops.len() <= MAX_HOPS);
            for hop in &hops {
                prop_assert!(hop.raw.len() <= MAX_HOP_LEN);
                if hop.ip.is_some() {
                    // An address only comes from a `for` parameter.
                    prop_assert!(
                        lines.iter().any(|l| l.to_ascii_lowercase().contains("for")),
                        "{:?} from {:?}", hop, lines
                    );
                }
            }
        }

        /// Whatever a client writes in its own `Forwarded` line, a hop a proxy adds on a
        /// line of its own is read as it was written.
        #[test]
        fn a_proxy_line_survives_any_client_line(client in "[ -~]{0,120}", last in 0u8..=255) {
            let real = format!("198.51.100.{last}");
            let h = headers(&[("forwarded", &client), ("forwarded", &format!("for={real}"))]);
            let hops = forwarded(&h);
            prop_assert_eq!(hops.last().and_then(|h| h.ip), real.parse().ok());
        }
    }
}
