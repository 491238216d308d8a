//! Header rewriting of a gateway (RFC 9110 §7.6): hop-by-hop fields stay on their hop, the
//! client's address is appended to `X-Forwarded-For` and `Forwarded`, `Via` is added.
//!
//! Forwarding headers are believed only from a trusted peer: from any other peer every
//! forwarding header the proxy knows is removed and written afresh, so a client cannot
//! choose the scheme or the address the upstream is told. The host is another matter: the
//! `Host` a client sends is passed on as `X-Forwarded-Host` (and `Forwarded: host=`), as
//! every reverse proxy does, so an upstream that builds issuer or redirect URLs from it must
//! check it against its own names, as it would check `Host`.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use oauth_audit::FORWARDING_HEADERS;

/// Fields that describe one connection, not the message (RFC 9110 §7.6.1, plus the
/// pre-standard `Keep-Alive` and `Proxy-Connection`).
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
];

// Made once, at compile time: `from_static` outside a constant checks the name on every call.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const HTTPS: HeaderValue = HeaderValue::from_static("https");
const HTTP: HeaderValue = HeaderValue::from_static("http");
/// What this proxy adds to `Via`.
const VIA: HeaderValue = HeaderValue::from_static("1.1 oauth-audit");

/// End-to-end fields that a `Connection` option never removes: the credentials and request
/// details the audit event records (it would record a token the upstream never saw), and the
/// body's framing and type. Forwarding headers are handled apart, by who the peer is.
const END_TO_END: [&str; 13] = [
    "authorization",
    "cookie",
    "dpop",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "user-agent",
    "x-request-id",
    "traceparent",
    "tracestate",
    "x-revocation-reason",
    "x-http-method-override",
];

/// Headers with which servers, frameworks and authorization services take the request's
/// path from a header instead of the request line: IIS URL Rewrite, older Symfony and Zend
/// (`X-Original-URL`, `X-Rewrite-URL`); forward-auth services (oauth2-proxy, Authelia,
/// Traefik's `forwardAuth`, nginx `auth_request` setups: `X-Forwarded-Uri`,
/// `X-Original-URI`); Kong (`X-Forwarded-Path`); Envoy (`X-Envoy-Original-Path`); and the
/// "reverse proxied" WSGI middleware copied into Flask applications, which takes
/// `X-Script-Name` for the application's mount point and cuts it from the path it routes. A
/// client could send `GET /public` with `X-Original-URL: /admin/users` (or `GET
/// /x/admin/users` with `X-Script-Name: /x`) past the route rules, which read the request
/// line, or have an authorization service decide on a path other than the one audited.
/// They are removed from every request, a trusted peer's included: a proxy in front passes
/// on whatever its client sent unless told otherwise (nginx does). Not
/// forwarding headers ([`FORWARDING_HEADERS`]): those are recorded in events, and these
/// carry query strings.
const PATH_OVERRIDE_HEADERS: [&str; 7] = [
    "x-original-url",
    "x-rewrite-url",
    "x-forwarded-uri",
    "x-original-uri",
    "x-forwarded-path",
    "x-envoy-original-path",
    "x-script-name",
];

/// Removes the [`PATH_OVERRIDE_HEADERS`].
pub fn remove_path_overrides(headers: &mut HeaderMap) {
    // Most requests carry none: one look at the names present spares parsing and looking up
    // each name.
    if !headers
        .keys()
        .any(|name| PATH_OVERRIDE_HEADERS.contains(&name.as_str()))
    {
        return;
    }
    for name in PATH_OVERRIDE_HEADERS {
        headers.remove(name);
    }
}

/// Removes the fields whose names, with `_` read as `-`, spell a field that the proxy or the
/// upstream must be able to trust: the forwarding headers, the method and path overrides,
/// the fields the audit event records ([`END_TO_END`]: `X-Request-Id`, `User-Agent`,
/// `X-Revocation-Reason`, ...), and `configured` (the client-IP header, the
/// client-certificate headers, the revocation reason header).
/// CGI-style servers (WSGI, Rack, PHP's FastCGI, uWSGI) read `X_Forwarded_For` and
/// `X-Forwarded-For` as one variable, `HTTP_X_FORWARDED_FOR`, with the client's value first,
/// past everything the proxy removes or rewrites under the `-` spelling. Other names with
/// `_` are left alone (nginx drops every one of them by default).
pub fn remove_underscore_spellings(headers: &mut HeaderMap, configured: [Option<&str>; 4]) {
    // Nearly every request has no name with `_`: one look at the names present.
    if !headers.keys().any(|name| name.as_str().contains('_')) {
        return;
    }
    let trusted_spelling = |dashed: &str| {
        FORWARDING_HEADERS.contains(&dashed)
            || oauth_audit::request_target::METHOD_OVERRIDE_HEADERS.contains(&dashed)
            || PATH_OVERRIDE_HEADERS.contains(&dashed)
            || END_TO_END.contains(&dashed)
            || configured
                .iter()
                .flatten()
                .any(|name| name.eq_ignore_ascii_case(dashed))
    };
    let spelled: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().contains('_'))
        .filter(|name| trusted_spelling(&name.as_str().replace('_', "-")))
        .cloned()
        .collect();
    for name in spelled {
        headers.remove(name);
    }
}

/// Joins the `Cookie` fields of an HTTP/2 request into one field, the cookies separated by
/// `; `, as RFC 9113 §8.2.3 requires before the request goes on over HTTP/1.1. HTTP/2
/// clients send each cookie in a field of its own (for header compression), while many
/// HTTP/1.1 servers read only one `Cookie` field, or join several with `,`, which is no
/// separator between cookies: the upstream would lose the session the audited request
/// carried.
pub fn join_cookie_fields(headers: &mut HeaderMap) {
    let joined = {
        let mut fields = headers.get_all(header::COOKIE).iter();
        let (Some(first), Some(_)) = (fields.next(), fields.next()) else {
            return;
        };
        let mut joined = first.as_bytes().to_vec();
        for field in headers.get_all(header::COOKIE).iter().skip(1) {
            joined.extend_from_slice(b"; ");
            joined.extend_from_slice(field.as_bytes());
        }
        joined
    };
    // Field values joined by `; ` are a field value; should that ever not hold, the fields
    // are left as they came.
    if let Ok(joined) = HeaderValue::from_bytes(&joined) {
        headers.insert(header::COOKIE, joined);
    }
}

/// Whether the request asks for a WebSocket upgrade (`Connection: upgrade` and `Upgrade:
/// websocket`), the one protocol the proxy switches to. A request asking for any other is
/// forwarded without its `Upgrade`, as a plain request: after a `101` the connection is a
/// tunnel the proxy neither reads nor audits, and in an `h2c` tunnel every HTTP/2 stream
/// would reach the upstream past every rule, leaving no event.
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    upgrades_to_websocket(headers) && connection_tokens(headers).any(|t| t == "upgrade")
}

/// Whether the message's one `Upgrade` field names WebSocket and nothing else: for a `101`,
/// whether the upstream switched to what the proxy forwarded the request for.
pub fn upgrades_to_websocket(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::UPGRADE).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => value
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"websocket"),
        _ => false,
    }
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// Removes the hop-by-hop fields, those named in `Connection` included, except end-to-end
/// fields (credentials, body framing, forwarding headers, and `configured`: the client-IP,
/// client-certificate and revocation reason headers) that a client may name there to have them stripped behind
/// the audit's back. With `keep_upgrade` (an upgrade being forwarded), `Connection: upgrade`
/// and `Upgrade` are kept, as the next hop must see them to switch protocols.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool, configured: &[Option<&str>]) {
    // Most messages carry none of these fields: one look at the names present spares a
    // lookup per field.
    if !keep_upgrade && !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = connection_tokens(headers)
        .filter(|t| {
            !END_TO_END.contains(&t.as_str())
                && !FORWARDING_HEADERS.contains(&t.as_str())
                && !configured
                    .iter()
                    .flatten()
                    .any(|name| name.eq_ignore_ascii_case(t))
        })
        .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        if keep_upgrade && (name == header::UPGRADE || name == header::CONNECTION) {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Who sent the request, as the forwarding headers should say it.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    /// The socket peer.
    pub peer: SocketAddr,
    /// Whether the peer is a trusted proxy, whose forwarding headers are kept.
    pub trusted_peer: bool,
    /// The client's address as the audit layer resolved it (`source.ip`).
    pub ip: IpAddr,
}

/// Writes the forwarding headers: from an untrusted peer, every known forwarding header is
/// removed first. Then the peer is appended to `X-Forwarded-For` and `Forwarded`,
/// `X-Forwarded-Proto` (`scheme`: how the client reached this proxy) and `X-Forwarded-Host`
/// are set when absent, `X-Real-IP` is set to the client's address, and this proxy is added
/// to `Via`.
pub fn add_forwarding(
    headers: &mut HeaderMap,
    client: Client,
    host: Option<&HeaderValue>,
    scheme: &'static str,
) {
    if !client.trusted_peer
        && headers
            .keys()
            .any(|name| FORWARDING_HEADERS.contains(&name.as_str()))
    {
        for name in FORWARDING_HEADERS {
            headers.remove(name);
        }
    }
    let ip = client.peer.ip().to_canonical();
    // The peer's address is written once, and the values around it are pushed as text:
    // the formatting machinery costs more than the rest of this function.
    let mut address = String::with_capacity(40);
    push_ip(&mut address, ip);

    let mut text = String::with_capacity(64);
    match ip {
        IpAddr::V4(_) => {
            text.push_str("for=");
            text.push_str(&address);
        }
        IpAddr::V6(_) => {
            text.push_str("for=\"[");
            text.push_str(&address);
            text.push_str("]\"");
        }
    }
    text.push_str(";proto=");
    text.push_str(scheme);
    if let Some(host) = host.filter(|h| is_plain_host(h.as_bytes())) {
        text.push_str(";host=\"");
        // Plain ASCII, checked just above.
        text.push_str(host.to_str().unwrap_or_default());
        text.push('"');
    }
    // Digits, dots and colons: always a field value, shared with `X-Real-IP` when the client
    // is the peer (a reference count, not a copy).
    let client_ip = client.ip.to_canonical();
    let peer_value = owned_value(address);
    if let Some(value) = &peer_value {
        append(headers, X_FORWARDED_FOR, value.clone());
    }
    if let Some(value) = owned_value(text) {
        append(headers, header::FORWARDED, value);
    }
    if let Entry::Vacant(proto) = headers.entry(X_FORWARDED_PROTO) {
        proto.insert(match scheme {
            "https" => HTTPS,
            "http" => HTTP,
            other => HeaderValue::from_static(other),
        });
    }
    if let (Entry::Vacant(forwarded_host), Some(host)) = (headers.entry(X_FORWARDED_HOST), host) {
        forwarded_host.insert(host.clone());
    }
    let real_ip = if client_ip == ip {
        peer_value
    } else {
        let mut address = String::with_capacity(40);
        push_ip(&mut address, client_ip);
        owned_value(address)
    };
    if let Some(real_ip) = real_ip {
        headers.insert(X_REAL_IP, real_ip);
    }
    append(headers, header::VIA, VIA);
}

/// Whether the client's `host` may go into `Forwarded: host="..."`: names, addresses and a
/// port only (letters, digits, `-._~`, `:` and the brackets of an IPv6 address). The value
/// is quoted, but many readers of `Forwarded` split it on `;` and `,` without reading quotes
/// (Rack's `Utils.forwarded_values`, say), and take the last `for` or `proto` they find: a
/// `Host: a;for=6.6.6.6;proto=https` would have chosen the address and scheme the upstream
/// believes. Any other host is left out of `Forwarded` (it is still `X-Forwarded-Host`).
fn is_plain_host(host: &[u8]) -> bool {
    !host.is_empty()
        && host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-._~:[]".contains(&b))
}

/// Appends `ip` to `text` as `Display` writes it, an IPv4 address without going through the
/// formatting machinery.
fn push_ip(text: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                if octet >= 100 {
                    text.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    text.push(char::from(b'0' + octet / 10 % 10));
                }
                text.push(char::from(b'0' + octet % 10));
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(text, "{v6}");
        }
    }
}

/// Appends `value` to the (comma-separated) field `name`, folding earlier lines into one.
///
/// Earlier lines are kept byte for byte, even when they are not valid text: dropping one
/// would shift the hops, and an upstream that trusts a number of hops from the right would
/// then believe a hop the client wrote.
fn append(headers: &mut HeaderMap, name: HeaderName, value: HeaderValue) {
    let mut entry = match headers.entry(name) {
        Entry::Vacant(vacant) => {
            vacant.insert(value);
            return;
        }
        Entry::Occupied(occupied) => occupied,
    };
    let mut joined: Vec<u8> = Vec::new();
    for line in entry.iter() {
        joined.extend_from_slice(line.as_bytes());
        joined.extend_from_slice(b", ");
    }
    joined.extend_from_slice(value.as_bytes());
    // Valid field values joined by ", " are a valid field value; appending a line is the
    // same list should that ever not hold.
    match HeaderValue::from_bytes(&joined) {
        Ok(joined) => {
            entry.insert(joined);
        }
        Err(_) => entry.append(value),
    }
}

/// `text` as a field value, its buffer taken over rather than copied.
fn owned_value(text: String) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_fields_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        remove_hop_by_hop(&mut h, false, &[]);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn a_message_without_hop_by_hop_fields_is_left_as_it_is() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        h.insert("x-keep-alive-ish", HeaderValue::from_static("1"));
        let before = h.clone();
        remove_hop_by_hop(&mut h, false, &[]);
        assert_eq!(h, before);
        // A switch of protocols still says so to the next hop, whatever came with it.
        remove_hop_by_hop(&mut h, true, &[]);
        assert_eq!(h.get(header::CONNECTION).unwrap(), "upgrade");
        assert_eq!(h.len(), before.len() + 1);
    }

    #[test]
    fn upgrades_keep_their_fields() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&h));
        remove_hop_by_hop(&mut h, true, &[]);
        assert_eq!(h[header::CONNECTION], "upgrade");
        assert_eq!(h[header::UPGRADE], "websocket");
    }

    fn trusted_client(peer: &str, ip: &str) -> Client {
        Client {
            peer: peer.parse().unwrap(),
            trusted_peer: true,
            ip: ip.parse().unwrap(),
        }
    }

    #[test]
    fn connection_cannot_strip_end_to_end_fields() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static(
                "Authorization, cookie, x-forwarded-for, forwarded, dpop, content-length, x-hop",
            ),
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        h.insert(header::COOKIE, HeaderValue::from_static("a=b"));
        h.insert("dpop", HeaderValue::from_static("proof"));
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        h.insert(
            header::FORWARDED,
            HeaderValue::from_static("for=198.51.100.2"),
        );
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
        h.insert("x-hop", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h, false, &[]);
        assert_eq!(h.len(), 6, "{h:?}");
        assert!(!h.contains_key("x-hop"));
        assert!(!h.contains_key(header::CONNECTION));
    }

    #[test]
    fn an_untrusted_peer_gets_fresh_forwarding_headers() {
        let mut h = HeaderMap::new();
        for name in FORWARDING_HEADERS {
            h.insert(name, HeaderValue::from_static("evil.example"));
        }
        let host = HeaderValue::from_static("idp.example");
        let client = Client {
            peer: "192.0.2.9:5000".parse().unwrap(),
            trusted_peer: false,
            ip: "192.0.2.9".parse().unwrap(),
        };
        add_forwarding(&mut h, client, Some(&host), "http");
        for (name, value) in &h {
            assert_ne!(value, "evil.example", "{name} kept the client's value");
        }
        assert_eq!(h["x-forwarded-for"], "192.0.2.9");
        assert_eq!(
            h[header::FORWARDED],
            "for=192.0.2.9;proto=http;host=\"idp.example\""
        );
        assert_eq!(h["x-forwarded-host"], "idp.example");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-real-ip"], "192.0.2.9");
        assert!(!h.contains_key("cf-connecting-ip"));
    }

    /// What a reader that splits `Forwarded` on `;` and `,` without reading quotes (Rack's
    /// `Utils.forwarded_values`) takes for each parameter: every value, quotes stripped.
    fn naive_reading<'a>(forwarded: &'a str, parameter: &str) -> Vec<&'a str> {
        forwarded
            .split(';')
            .flat_map(|field| field.split(','))
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| name.trim().eq_ignore_ascii_case(parameter))
            .map(|(_, value)| value.trim().trim_matches('"'))
            .collect()
    }

    #[test]
    fn a_clients_host_cannot_add_parameters_to_forwarded() {
        let client = Client {
            peer: "192.0.2.9:5000".parse().unwrap(),
            trusted_peer: false,
            ip: "192.0.2.9".parse().unwrap(),
        };
        for host in [
            "a;for=6.6.6.6;proto=https",
            "a,for=6.6.6.6",
            "a;proto=https",
            "idp.example;by=x",
            "a=b",
            "a'b",
            "",
        ] {
            let mut h = HeaderMap::new();
            let value = HeaderValue::from_str(host).unwrap();
            add_forwarding(&mut h, client, Some(&value), "http");
            let forwarded = h[header::FORWARDED].to_str().unwrap();
            assert_eq!(forwarded, "for=192.0.2.9;proto=http", "{host:?}");
            assert_eq!(naive_reading(forwarded, "for"), ["192.0.2.9"], "{host:?}");
            assert_eq!(naive_reading(forwarded, "proto"), ["http"], "{host:?}");
            // Still passed on where it is the whole value.
            assert_eq!(h["x-forwarded-host"], host);
        }
        for host in [
            "idp.example",
            "IdP.example:8443",
            "[2001:db8::1]:443",
            "a_b.internal",
        ] {
            let mut h = HeaderMap::new();
            let value = HeaderValue::from_str(host).unwrap();
            add_forwarding(&mut h, client, Some(&value), "https");
            assert_eq!(
                h[header::FORWARDED],
                format!("for=192.0.2.9;proto=https;host=\"{host}\""),
            );
        }
    }

    #[test]
    fn lines_that_are_not_text_are_kept_when_appending() {
        let mut h = HeaderMap::new();
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"6.6.6.6\xff").unwrap(),
        );
        h.append("x-forwarded-for", HeaderValue::from_static("198.51.100.2"));
        add_forwarding(
            &mut h,
            trusted_client("10.0.0.1:80", "198.51.100.2"),
            None,
            "http",
        );
        assert_eq!(
            h["x-forwarded-for"].as_bytes(),
            b"6.6.6.6\xff, 198.51.100.2, 10.0.0.1"
        );
    }

    #[test]
    fn forwarding_appends() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.7"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let host = HeaderValue::from_static("idp.example");
        add_forwarding(
            &mut h,
            trusted_client("[::1]:5000", "203.0.113.7"),
            Some(&host),
            "https",
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.7, 10.0.0.1, ::1");
        assert_eq!(
            h[header::FORWARDED],
            "for=\"[::1]\";proto=https;host=\"idp.example\""
        );
        assert_eq!(h["x-forwarded-host"], "idp.example");
        assert_eq!(h["x-real-ip"], "203.0.113.7");
        assert_eq!(h[header::VIA], "1.1 oauth-audit");
    }

    #[test]
    fn addresses_are_written_as_display_writes_them() {
        for octet in 0..=255u8 {
            for position in 0..4 {
                let mut octets = [192, 0, 2, 1];
                octets[position] = octet;
                let ip = IpAddr::from(octets);
                let mut text = String::from("x");
                push_ip(&mut text, ip);
                assert_eq!(text, format!("x{ip}"));
            }
        }
        for ip in ["::1", "2001:db8::7", "::ffff:192.0.2.1", "fe80::1:2:3:4"] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut text = String::new();
            push_ip(&mut text, ip);
            assert_eq!(text, ip.to_string());
        }
    }
}
