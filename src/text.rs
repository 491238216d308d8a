//! Untrusted text made safe to show: escaped and cut ([`sanitize`]), URLs without their
//! secrets ([`shown_url`]); text read from JSON without a copy ([`Text`]); bytes as hex
//! digits, two at a time ([`hex_pair`]), and as Latin-1 reads them ([`latin1`]).
//!
//! A leaf that depends on nothing else in the crate, so that token inspection (which
//! sanitises claims and shows JWKS URLs) and the event schema (which re-exports both as
//! `event::sanitize` and `event::shown_url`) can both use it without depending on each other.

use std::borrow::Cow;
use std::ops::Deref;

use serde::de::{Deserialize, Deserializer, Visitor};

/// `00` to `ff` in lower case, two bytes each.
const HEX_PAIRS: [u8; 512] = {
    let digits = b"0123456789abcdef";
    let mut table = [0u8; 512];
    let mut i = 0;
    while i < 256 {
        table[2 * i] = digits[i >> 4];
        table[2 * i + 1] = digits[i & 15];
        i += 1;
    }
    table
};

/// `byte`'s two hex digits, in lower case.
#[inline(always)]
pub(crate) fn hex_pair(byte: u8) -> &'static [u8] {
    let pair = usize::from(byte) * 2;
    &HEX_PAIRS[pair..pair + 2]
}

/// A JSON string as read: borrowed from the input unless it held escapes. (serde's own
/// `Cow` borrows only as a field of its own, never inside a list or as a map's key: every
/// scope of a report's event, every member name of an endpoint's response, would be a
/// copy.)
#[derive(Debug, PartialEq, Eq)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text(Cow::Borrowed(text))
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Borrowing;
        impl<'de> Visitor<'de> for Borrowing {
            type Value = Text<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }

            fn visit_str<E>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(Borrowing)
    }
}

/// Makes untrusted text safe for a log field: control characters, line and paragraph
/// separators (U+2028, U+2029) and invisible format characters (bidirectional overrides
/// and isolates, zero-width spaces and joiners, the byte-order mark, ...) are escaped as
/// `\u{..}`, and the result is cut to at most `max_bytes` bytes on a character boundary.
///
/// ```
/// assert_eq!(oauth_audit::event::sanitize("bad\ngrant", 512), "bad\\u{a}grant");
/// assert_eq!(oauth_audit::event::sanitize("héllo", 2), "h");
/// assert_eq!(oauth_audit::event::sanitize("admin\u{202e}gpj", 64), "admin\\u{202e}gpj");
/// ```
pub fn sanitize(input: &str, max_bytes: usize) -> String {
    if is_safe(input, max_bytes) {
        return input.to_owned();
    }
    let mut out = String::with_capacity(input.len().min(max_bytes));
    escape_into(&mut out, input, max_bytes);
    out
}

/// [`sanitize`] into `out`, which is emptied first and keeps its allocation: a buffer of an
/// event that is made again holds the new text without a new allocation.
pub(crate) fn sanitize_into(out: &mut String, input: &str, max_bytes: usize) {
    out.clear();
    if is_safe(input, max_bytes) {
        out.push_str(input);
    } else {
        escape_into(out, input, max_bytes);
    }
}

/// Appends `input` to the empty `out`, escaped and cut as [`sanitize`] says.
fn escape_into(out: &mut String, input: &str, max_bytes: usize) {
    debug_assert!(out.is_empty());
    for c in input.chars() {
        let before = out.len();
        if needs_escape(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
        if out.len() > max_bytes {
            out.truncate(before);
            break;
        }
    }
}

/// [`sanitize`] into a [`CompactString`](compact_str::CompactString): text of up to 24
/// bytes that needs nothing escaped or cut is copied inline, without an allocation.
pub(crate) fn sanitize_compact(input: &str, max_bytes: usize) -> compact_str::CompactString {
    if is_safe(input, max_bytes) {
        return input.into();
    }
    sanitize(input, max_bytes).into()
}

/// `bytes` as text, as [`String::from_utf8_lossy`] reads them, but first checked by
/// [`std::str::from_utf8`], which reads valid UTF-8 (nearly every header value) a word at
/// a time where the lossy reader goes a character at a time.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `bytes` as ISO-8859-1 (Latin-1) reads them, each byte the character of the same code
/// point, when they are not UTF-8; `None` when they are. The charset servers read what came
/// without one in (a Basic credential without RFC 7617's `charset`, a form of a legacy page,
/// a cookie), and quote it back in: a secret that is not UTF-8 is looked for so too, since
/// its lossy UTF-8 reading (each such byte a U+FFFD) never matches that quote. A secret that
/// is UTF-8 is read so by such servers only if they are told the charset, and needs no
/// second reading.
pub(crate) fn latin1_unless_utf8(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes)
        .is_err()
        .then(|| bytes.iter().map(|&b| char::from(b)).collect())
}

/// Most text is printable ASCII and short enough: nothing to escape or cut.
pub(crate) fn is_safe(input: &str, max_bytes: usize) -> bool {
    input.len() <= max_bytes && is_printable_ascii(input.as_bytes())
}

/// Whether every byte is printable ASCII (0x20 to 0x7e), eight bytes at a time: a user
/// agent is read in 14 words where a byte at a time took five times the instructions.
fn is_printable_ascii(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let printable = words.by_ref().all(|word| {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        printable_word(word)
    });
    printable
        && words
            .remainder()
            .iter()
            .all(|&byte| matches!(byte, 0x20..=0x7e))
}

/// Whether each of eight bytes is at least 0x20 and at most 0x7e, exactly: the classic "has
/// a byte less than n" test for 0x20, and for 0x7f and above, the high bit of each byte
/// plus one, or of the byte itself.
#[inline]
fn printable_word(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    // 0x7f + 1 sets the high bit, and no lower byte carries into the next: each is at most
    // 0x7f + 1 before the high bit is masked off.
    let delete_or_high = ((word & !HIGHS) + ONES) | word;
    (below_space | delete_or_high) & HIGHS == 0
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
///
/// Where parsers disagree on how far the user information goes (an unencoded `?`, `#` or `/`
/// in a password: WHATWG ends the authority there, tokio-postgres reads up to the first `@`
/// wherever it is), that is, wherever an `@` follows a `/`, `?` or `#`, everything after
/// the scheme is replaced, so no reading of the text shows a password.
pub fn shown_url(value: &str) -> String {
    // Hand-written rather than `url::Url`: it must also show text that is not a valid URL
    // (values refused because they failed to parse, `host:port`, libpq's lenient URLs) and
    // keep what it shows as written, where the parser would normalise it.
    let (prefix, rest) = match value.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), value),
    };
    let hidden = || sanitize(&format!("{prefix}…"), 2048);
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (user_hidden, rest) = match rest[..authority_end].rfind('@') {
        Some(at) if rest[..at].contains(['?', '#']) => return hidden(),
        Some(at) => (true, &rest[at + 1..]),
        None if rest.contains('@') => return hidden(),
        None => (false, rest),
    };
    // Another `@` further on, even in the query: the password may run up to it
    // (`u:@/pa?ss@host`, where the first reading shows `/pa` as a path).
    if rest.contains('@') {
        return hidden();
    }
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (location, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?…"),
        None => (rest, ""),
    };
    let user = if user_hidden { "…@" } else { "" };
    sanitize(&format!("{prefix}{user}{location}{query}"), 2048)
}

/// Whether [`sanitize`] escapes `c`: control characters (C0, DEL and C1, such as the
/// single-character CSI U+009B), line and paragraph separators, and invisible format
/// characters (bidirectional overrides and isolates, zero-width characters, ...), which
/// change how a line is split or displayed, or reach a terminal as commands, without being
/// seen. For tools that show untrusted text in a form of their own (JSON escapes, a quoted
/// field) and must agree with `sanitize` on what is hidden.
///
/// ```
/// use oauth_audit::event::needs_escape;
///
/// assert!(needs_escape('\u{9b}') && needs_escape('\u{202e}') && needs_escape('\n'));
/// assert!(!needs_escape('é') && !needs_escape(' '));
/// ```
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_separator(c) || is_format(c)
}

/// Unicode line and paragraph separators (categories Zl, Zp): JavaScript and some log
/// viewers break lines on them.
fn is_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Unicode general category Cf (format characters, Unicode 15.1): invisible, and able to
/// reorder (bidi overrides) or hide (zero-width) what a reader sees.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}'
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{
        is_printable_ascii, latin1_unless_utf8, sanitize, sanitize_compact, sanitize_into,
    };

    #[test]
    fn latin1_reads_each_byte_as_its_code_point() {
        assert_eq!(
            latin1_unless_utf8(b"p\xe4ss\xff").as_deref(),
            Some("p\u{e4}ss\u{ff}")
        );
        let every: Vec<u8> = (0..=255).collect();
        let read = latin1_unless_utf8(&every).unwrap();
        assert!(read.chars().map(u32::from).eq(0..=255));
        // UTF-8, ASCII or not, needs no second reading.
        assert_eq!(latin1_unless_utf8(b"ascii"), None);
        assert_eq!(latin1_unless_utf8("p\u{e4}ss".as_bytes()), None);
    }

    /// Every byte value at every place of a word and of the tail after whole words, among
    /// printable neighbours and among the extremes of the range (0x20 and 0x7e, where a
    /// borrow or a carry would cross into the next byte).
    #[test]
    fn printable_ascii_is_read_exactly_a_word_at_a_time() {
        for neighbour in [b'a', 0x20, 0x7e] {
            for len in [1, 7, 8, 9, 16, 21] {
                for at in 0..len {
                    for byte in 0..=255u8 {
                        let mut bytes = vec![neighbour; len];
                        bytes[at] = byte;
                        assert_eq!(
                            is_printable_ascii(&bytes),
                            (0x20..=0x7e).contains(&byte),
                            "{byte:#04x} at {at} of {len} among {neighbour:#04x}"
                        );
                    }
                }
            }
        }
        assert!(is_printable_ascii(b""));
    }

    #[test]
    fn a_short_safe_path_is_held_inline() {
        let path = sanitize_compact("/api/orders/{id}/items", 2048);
        assert_eq!(path, "/api/orders/{id}/items");
        assert!(!path.is_heap_allocated());
        let long = sanitize_compact("/api/organisations/{org}/members", 2048);
        assert!(long.is_heap_allocated());
    }

    proptest! {
        #[test]
        fn sanitize_compact_is_sanitize(s in any::<String>(), max in 0usize..64) {
            let compact = sanitize_compact(&s, max);
            prop_assert_eq!(compact.as_str(), sanitize(&s, max));
        }

        /// Whatever the buffer held before, it holds what `sanitize` makes.
        #[test]
        fn sanitize_into_is_sanitize(before in any::<String>(), s in any::<String>(), max in 0usize..64) {
            let mut out = before;
            sanitize_into(&mut out, &s, max);
            prop_assert_eq!(out, sanitize(&s, max));
        }

        #[test]
        fn printable_ascii_is_every_byte_printable(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(
                is_printable_ascii(&bytes),
                bytes.iter().all(|b| (0x20..=0x7e).contains(b))
            );
        }
    }
}
