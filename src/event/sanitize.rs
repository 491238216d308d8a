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

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn escapes_and_truncates() {
        assert_eq!(sanitize("a\u{1b}[31mb", 100), "a\\u{1b}[31mb");
        assert_eq!(sanitize(&"x".repeat(600), 512).len(), 512);
        // an escape that would cross the limit is left out whole
        assert_eq!(sanitize("ab\n", 4), "ab");
    }
}
