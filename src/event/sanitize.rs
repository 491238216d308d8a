/// Makes untrusted text safe for a log field: control characters are escaped as `\u{..}`
/// and the result is cut to at most `max_bytes` bytes on a character boundary.
///
/// ```
/// assert_eq!(oauth_audit::event::sanitize("bad\ngrant", 512), "bad\\u{a}grant");
/// assert_eq!(oauth_audit::event::sanitize("héllo", 2), "h");
/// ```
pub fn sanitize(input: &str, max_bytes: usize) -> String {
    let mut out = String::with_capacity(input.len().min(max_bytes));
    for c in input.chars() {
        let before = out.len();
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        if out.len() > max_bytes {
            out.truncate(before);
            break;
        }
    }
    out
}

/// A URL as it may appear in a message or log: its user information and query string
/// (where passwords and tokens hide) are replaced by `…`, and its fragment is dropped.
///
/// ```
/// use oauth_audit::event::shown_url;
///
/// assert_eq!(
///     shown_url("https://user:pw@idp.example/jwks?key=s3cr3t#x"),
///     "https://…@idp.example/jwks?…"
/// );
/// assert_eq!(shown_url("http://127.0.0.1:3000/x"), "http://127.0.0.1:3000/x");
/// ```
pub fn shown_url(value: &str) -> String {
    let value = value.split_once('#').map_or(value, |(before, _)| before);
    let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
    let (rest, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?…"),
        None => (rest, ""),
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let authority = authority
        .rsplit_once('@')
        .map_or(authority.to_owned(), |(_, host)| format!("…@{host}"));
    let sep = if value.contains("://") { "://" } else { "" };
    sanitize(&format!("{scheme}{sep}{authority}{path}{query}"), 2048)
}

#[cfg(test)]
mod tests {
    use super::{sanitize, shown_url};

    #[test]
    fn urls_lose_credentials_query_and_fragment() {
        assert_eq!(shown_url("https://u:p@h/a?b=c@d#e?f"), "https://…@h/a?…");
        assert_eq!(shown_url("h/a#t=s3cr3t"), "h/a");
        assert_eq!(shown_url("nats://tok@h:4222"), "nats://…@h:4222");
    }

    #[test]
    fn escapes_and_truncates() {
        assert_eq!(sanitize("a\u{1b}[31mb", 100), "a\\u{1b}[31mb");
        assert_eq!(sanitize(&"x".repeat(600), 512).len(), 512);
        // an escape that would cross the limit is left out whole
        assert_eq!(sanitize("ab\n", 4), "ab");
    }
}
