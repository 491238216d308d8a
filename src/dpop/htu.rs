//! Comparing a proof's `htu` with the request's URI, after the normalisation RFC 9449 §4.3
//! asks for (RFC 3986 §6.2.2 syntax-based and §6.2.3 scheme-based), query and fragment
//! left out.
//!
//! Written here rather than taken from the `url` crate: WHATWG URL parsing removes dot
//! segments and default ports but leaves percent-encoded unreserved characters (`%7E`) as
//! they are, which RFC 3986 normalisation decodes; and the request's own path must be read
//! the same way as `htu`'s, byte for byte.

/// A URI's origin (`scheme://host[:port]`, default port left out) and path, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NormalUri {
    pub(crate) scheme: String,
    pub(crate) origin: String,
    pub(crate) path: String,
}

/// Normalises an absolute `http`/`https` URI; `None` when it is not one (no scheme, user
/// information, a bad port).
pub(crate) fn normalize(uri: &str) -> Option<NormalUri> {
    let uri = uri.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = uri.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let origin = normalize_origin(&scheme, authority)?;
    Some(NormalUri {
        origin,
        path: normalize_path(path),
        scheme,
    })
}

/// `scheme://host[:port]` with the host in lower case and the scheme's default port left out.
pub(crate) fn normalize_origin(scheme: &str, authority: &str) -> Option<String> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    // An IPv6 literal holds colons of its own: the port follows its closing bracket.
    let port_at = match authority.rfind(']') {
        Some(close) => authority[close..].find(':').map(|at| close + at),
        None => authority.rfind(':'),
    };
    let (host, port) = match port_at {
        Some(at) => (&authority[..at], &authority[at + 1..]),
        None => (authority, ""),
    };
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    let port = if port.is_empty() {
        None
    } else {
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(port.parse::<u16>().ok()?)
    };
    let default = match scheme {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = percent_normalized(host).to_ascii_lowercase();
    Some(match port {
        Some(port) if port != default => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// A path with percent-encoded unreserved characters decoded, other escapes in upper case,
/// and dot segments removed (RFC 3986 §5.2.4); an empty path is `/`.
pub(crate) fn normalize_path(path: &str) -> String {
    let path = percent_normalized(path);
    let mut output: Vec<&str> = Vec::new();
    let mut segments = path.split('/').peekable();
    // A path starts with `/` (or is empty): the first split part is empty.
    if segments.peek() == Some(&"") {
        segments.next();
    }
    let mut trailing = false;
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => trailing = last,
            ".." => {
                output.pop();
                trailing = last;
            }
            other => {
                output.push(other);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &output {
        out.push('/');
        out.push_str(segment);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

/// Decodes `%XX` escapes of unreserved characters but `.` and writes the others' hex digits
/// in upper case; a `%` not followed by two hex digits stays as it is.
fn percent_normalized(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = &text[i + 1..i + 3];
            let value = u8::from_str_radix(hex, 16).unwrap_or_default();
            // `%2E` stays encoded: decoded before dot segments are removed, `/x/%2E%2E/a`
            // would read as `/a`, where routers that match paths literally see three
            // segments.
            if value.is_ascii_alphanumeric() || matches!(value, b'-' | b'_' | b'~') {
                out.push(value as char);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        // Copy one whole character (the text may hold non-ASCII, though a URI should not).
        let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(uri: &str) -> Option<(String, String)> {
        normalize(uri).map(|u| (u.origin, u.path))
    }

    #[test]
    fn scheme_host_and_port_normalise() {
        let want = Some(("https://api.example".to_owned(), "/r".to_owned()));
        assert_eq!(n("https://api.example/r"), want);
        assert_eq!(n("HTTPS://API.Example:443/r"), want);
        assert_eq!(n("https://api.example/r?x=1#f"), want);
        assert_eq!(
            n("http://api.example:8080/r"),
            Some(("http://api.example:8080".to_owned(), "/r".to_owned()))
        );
        assert_eq!(
            n("http://[::1]:80/"),
            Some(("http://[::1]".to_owned(), "/".to_owned()))
        );
        assert_eq!(
            n("https://api.example"),
            Some(("https://api.example".to_owned(), "/".to_owned()))
        );
        for bad in [
            "api.example/r",
            "ftp://api.example/r",
            "https://user@api.example/r",
            "https://api.example:99999/r",
            "https://api.example:8a/r",
            "https:///r",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }

    #[test]
    fn paths_normalise_as_rfc_3986_says() {
        assert_eq!(normalize_path(""), "/");
        assert_eq!(normalize_path("/a/./b/../c"), "/a/c");
        assert_eq!(normalize_path("/a/b/.."), "/a/");
        assert_eq!(normalize_path("/../../a"), "/a");
        assert_eq!(normalize_path("/%7Euser/%61"), "/~user/a");
        assert_eq!(normalize_path("/a%2fb"), "/a%2Fb");
        assert_eq!(normalize_path("/%2E%2E/admin"), "/%2E%2E/admin");
        assert_eq!(normalize_path("/x/%2e%2e/orders"), "/x/%2E%2E/orders");
        assert_eq!(normalize_path("/a%zz"), "/a%zz");
        assert_eq!(normalize_path("/a%4"), "/a%4");
        assert_eq!(normalize_path("/a//b/"), "/a//b/");
    }
}
