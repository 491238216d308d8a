use std::fmt;

/// How many rounds of percent-decoding the decoded reading undoes; deeper nesting is left
/// encoded (and the path is ambiguous either way).
const MAX_DECODE_ROUNDS: usize = 8;

/// A request path in the forms servers may read it as, for matching rules and endpoints.
///
/// Two readings are kept:
///
/// - [`strict`](CanonicalPath::strict): RFC 3986 §6.2 normalisation. Escapes are decoded
///   except those of `/`, `\`, `;`, NUL and `%`, whose hex is upper-cased; dot segments
///   are resolved; empty segments and a trailing slash are dropped. This is how a server
///   reads the path when it treats `%2F` as data.
/// - [`decoded`](CanonicalPath::decoded): how a lenient server reads it. Every escape is
///   decoded (nested ones too), the path ends at a NUL byte, `\` separates segments like
///   `/`, and `;parameters` are cut from each segment (`/admin;x=1/users` is
///   `/admin/users`), before dot segments are resolved.
///
/// When the two differ the path is ambiguous ([`ambiguity`](CanonicalPath::ambiguity)):
/// servers disagree on what it names.
///
/// A path with a segment that ends in `.` or a space (`/admin./users`, `/admin%20/users`)
/// has one more reading, [`trimmed`](CanonicalPath::trimmed): the decoded one with those
/// trailing characters removed from every segment, as Windows does with file names and IIS
/// with URL segments, so that `/admin./users` is `/admin/users` there
/// ([`Ambiguity::TrailingDotOrSpace`]).
///
/// A path with dot segments (`/admin/../public`, also spelled `%2e%2e`) has more readings,
/// [`unresolved`](CanonicalPath::unresolved): most servers resolve dot segments before
/// routing, but some routers (Werkzeug's `<path:...>`, Express's `/*`) match the path with
/// them in place, so `/admin/../public` is under `/admin/*` for them. These are the strict
/// and the decoded readings with their dot segments left in place (and empty segments
/// dropped). Such a path is ambiguous too ([`Ambiguity::DotSegment`]), unless its other
/// readings already are.
///
/// ```
/// use oauth_audit::request_target::{Ambiguity, CanonicalPath};
///
/// let path = CanonicalPath::new("//%61dmin/users/");
/// assert_eq!(path.strict(), "/admin/users");
/// assert_eq!(path.ambiguity(), None);
///
/// let path = CanonicalPath::new("/admin/%2e%2e/public");
/// assert_eq!(path.strict(), "/public");
/// assert_eq!(path.unresolved().collect::<Vec<_>>(), ["/admin/../public"]);
/// assert_eq!(path.ambiguity(), Some(Ambiguity::DotSegment));
///
/// let path = CanonicalPath::new("/admin%2Fusers");
/// assert_eq!(path.strict(), "/admin%2Fusers");
/// assert_eq!(path.decoded(), "/admin/users");
/// assert_eq!(path.ambiguity(), Some(Ambiguity::EncodedSlash));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanonicalPath {
    strict: String,
    decoded: String,
    /// The strict, then the decoded reading with their dot segments in place: those that
    /// have any, each once.
    unresolved: Vec<String>,
    /// The decoded reading with its segments' trailing dots and spaces removed, when that
    /// differs from it.
    trimmed: Option<String>,
    ambiguity: Option<Ambiguity>,
}

/// Why servers may read a path differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ambiguity {
    /// A NUL byte (`%00`): C-based servers end the path there.
    Nul,
    /// An encoded `/` (`%2F`): some servers split segments on it after decoding.
    EncodedSlash,
    /// A `\` (raw or `%5C`): Windows-minded servers take it for `/`.
    Backslash,
    /// A `;parameter` in a segment: servlet containers and others cut it off.
    PathParameter,
    /// A nested escape (`%2561`): servers that decode twice read something else.
    DoubleEncoding,
    /// A `.` or `..` segment (raw or escaped): some routers match the path without resolving
    /// it.
    DotSegment,
    /// A segment ending in `.` or a space (`/admin./users`, `/admin%20/users`): Windows
    /// servers (IIS) drop them, and read `/admin/users`.
    TrailingDotOrSpace,
}

impl Ambiguity {
    /// A stable name, used as `error.code` suffix: `nul`, `encoded_slash`, `backslash`,
    /// `path_parameter`, `double_encoding`, `dot_segment`, `trailing_dot_or_space`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ambiguity::Nul => "nul",
            Ambiguity::EncodedSlash => "encoded_slash",
            Ambiguity::Backslash => "backslash",
            Ambiguity::PathParameter => "path_parameter",
            Ambiguity::DoubleEncoding => "double_encoding",
            Ambiguity::DotSegment => "dot_segment",
            Ambiguity::TrailingDotOrSpace => "trailing_dot_or_space",
        }
    }
}

impl fmt::Display for Ambiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ambiguity::Nul => "a NUL byte",
            Ambiguity::EncodedSlash => "an encoded '/'",
            Ambiguity::Backslash => "a '\\'",
            Ambiguity::PathParameter => "a ';' path parameter",
            Ambiguity::DoubleEncoding => "a nested percent-escape",
            Ambiguity::DotSegment => "a '.' or '..' segment",
            Ambiguity::TrailingDotOrSpace => "a trailing '.' or ' '",
        })
    }
}

impl CanonicalPath {
    /// Reads `path` (without query string).
    pub fn new(path: &str) -> Self {
        if is_canonical(path) {
            // Both readings are the path itself: the common case, one pass and no parsing.
            return CanonicalPath {
                strict: path.to_owned(),
                decoded: path.to_owned(),
                unresolved: Vec::new(),
                trimmed: None,
                ambiguity: None,
            };
        }
        Self::read(path)
    }

    /// Every reading worked out in full.
    fn read(path: &str) -> Self {
        let (strict, strict_unresolved) = strict_reading(path);
        let (decoded, decoded_unresolved) = decoded_reading(path);
        let mut unresolved = Vec::new();
        if strict_unresolved != strict {
            unresolved.push(strict_unresolved);
        }
        if decoded_unresolved != decoded && !unresolved.contains(&decoded_unresolved) {
            unresolved.push(decoded_unresolved);
        }
        let trimmed = trimmed_reading(&decoded);
        let ambiguity = if strict != decoded {
            Some(classify(path))
        } else if trimmed.is_some() {
            Some(Ambiguity::TrailingDotOrSpace)
        } else {
            (!unresolved.is_empty()).then_some(Ambiguity::DotSegment)
        };
        CanonicalPath {
            strict,
            decoded,
            unresolved,
            trimmed,
            ambiguity,
        }
    }

    /// The reading of a server that keeps `%2F`, `%5C`, `;` and `%00` as data.
    pub fn strict(&self) -> &str {
        &self.strict
    }

    /// The reading of a server that decodes everything and cuts `;parameters`.
    pub fn decoded(&self) -> &str {
        &self.decoded
    }

    /// The reading of a Windows server (IIS): the decoded one with each segment's trailing
    /// dots and spaces removed, when that changes it.
    pub fn trimmed(&self) -> Option<&str> {
        self.trimmed.as_deref()
    }

    /// The readings of a router that does not resolve dot segments: the strict, then the
    /// decoded reading with their `.` and `..` segments in place, those that have any.
    /// Empty when no reading has a dot segment.
    pub fn unresolved(&self) -> impl Iterator<Item = &str> {
        self.unresolved.iter().map(String::as_str)
    }

    /// Whether the path has a `.` or `..` segment in some reading (escaped any number of
    /// times, or behind a `;parameter` or a `\`): a path that could climb out of a prefix,
    /// such as an upstream's base path, for some server.
    pub fn has_dot_segments(&self) -> bool {
        !self.unresolved.is_empty()
    }

    /// Why the readings differ, or `None` when every server reads the same path.
    pub fn ambiguity(&self) -> Option<Ambiguity> {
        self.ambiguity
    }

    /// The distinct readings: the strict one, then the decoded one when it differs, then
    /// the trimmed one, then the unresolved ones.
    pub fn readings(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.strict.as_str())
            .chain((self.decoded != self.strict).then_some(self.decoded.as_str()))
            .chain(self.trimmed())
            .chain(self.unresolved())
    }
}

/// Whether every reading of `path` is `path` itself: it starts with `/`, has no `%`, `;`,
/// `\` or NUL, no empty segment (`//`, or a trailing `/` but for the root), and no segment
/// ending in `.` or a space (which covers the `.` and `..` segments). One pass over the
/// bytes.
fn is_canonical(path: &str) -> bool {
    is_canonical_without(path, |_| false)
}

/// [`is_canonical`], with the bytes `reject` says yes to refused too (in the same pass).
#[inline]
pub(crate) fn is_canonical_without(path: &str, reject: impl Fn(u8) -> bool) -> bool {
    let bytes = path.as_bytes();
    if bytes == b"/" {
        return true;
    }
    if bytes.first() != Some(&b'/') || bytes.last() == Some(&b'/') {
        return false;
    }
    // Whether the current segment is empty so far, and whether its last byte was a dot or
    // a space (raw spaces are no part of a request line, but paths come from elsewhere too).
    let (mut empty, mut trailing) = (true, false);
    for &b in &bytes[1..] {
        match b {
            b'/' => {
                if empty || trailing {
                    return false;
                }
                empty = true;
            }
            b'%' | b';' | b'\\' | 0 => return false,
            b'.' | b' ' => (empty, trailing) = (false, true),
            b if reject(b) => return false,
            _ => (empty, trailing) = (false, false),
        }
    }
    // The last segment, which no `/` ended.
    !trailing
}

fn hex_value(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// The byte a `%HH` escape at `i` stands for.
fn escape_at(bytes: &[u8], i: usize) -> Option<u8> {
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    let high = hex_value(*bytes.get(i + 1)?)?;
    let low = hex_value(*bytes.get(i + 2)?)?;
    Some(high << 4 | low)
}

/// Bytes that keep their escape in the strict reading: decoding them changes the structure.
fn is_structural(byte: u8) -> bool {
    matches!(byte, b'/' | b'\\' | b';' | 0 | b'%')
}

/// The strict reading, and the same without its dot segments resolved.
fn strict_reading(path: &str) -> (String, String) {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(bytes, i) {
            Some(byte) if is_structural(byte) => {
                out.push(b'%');
                out.extend(format!("{byte:02X}").bytes());
                i += 3;
            }
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            // A `%` that starts no escape is written as one, so reading it again changes nothing.
            None if bytes[i] == b'%' => {
                out.extend_from_slice(b"%25");
                i += 1;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&out);
    (resolve(text.split('/')), unresolved(text.split('/')))
}

/// Joins segments into `/a/b` without the empty ones, `.` and `..` kept as they are.
fn unresolved<'a>(segments: impl Iterator<Item = &'a str>) -> String {
    let mut path = String::new();
    for segment in segments.filter(|segment| !segment.is_empty()) {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

fn decode_once(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut changed = false;
    let mut i = 0;
    while i < bytes.len() {
        match escape_at(bytes, i) {
            Some(byte) => {
                out.push(byte);
                changed = true;
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    changed.then_some(out)
}

fn fully_decoded(path: &str) -> Vec<u8> {
    let mut bytes = path.as_bytes().to_vec();
    for _ in 0..MAX_DECODE_ROUNDS {
        match decode_once(&bytes) {
            Some(next) => bytes = next,
            None => break,
        }
    }
    bytes
}

/// The decoded reading, and the same without its dot segments resolved.
fn decoded_reading(path: &str) -> (String, String) {
    let mut bytes = fully_decoded(path);
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    let text = String::from_utf8_lossy(&bytes)
        .replace('\\', "/")
        .replace('%', "%25");
    let segments = || {
        text.split('/')
            .map(|segment| segment.split(';').next().unwrap_or_default())
    };
    (resolve(segments()), unresolved(segments()))
}

/// The decoded reading with every segment's trailing dots and spaces removed, when that
/// changes it. A segment of nothing else reads as what it begins with: `.. ` and `...` as
/// `..` (its parent goes), `. ` as `.` (dropped), so that a segment Windows could take for
/// `..` is read that way here too.
fn trimmed_reading(decoded: &str) -> Option<String> {
    let trailing = |segment: &str| segment.ends_with(['.', ' ']);
    if !decoded.split('/').any(trailing) {
        return None;
    }
    Some(trim_segments(decoded)).filter(|path| path != decoded)
}

/// [`trimmed_reading`] without its check.
fn trim_segments(decoded: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let trimmed = segment.trim_end_matches(['.', ' ']);
        if !trimmed.is_empty() {
            kept.push(trimmed);
        } else if segment.starts_with("..") {
            kept.pop();
        }
    }
    format!("/{}", kept.join("/"))
}

/// Joins segments into `/a/b`, without empty or `.` segments, each `..` removing its parent.
fn resolve<'a>(segments: impl Iterator<Item = &'a str>) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in segments {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            segment => kept.push(segment),
        }
    }
    format!("/{}", kept.join("/"))
}

fn classify(path: &str) -> Ambiguity {
    let decoded = fully_decoded(path);
    let count = |bytes: &[u8], byte: u8| bytecount(bytes, byte);
    if decoded.contains(&0) {
        Ambiguity::Nul
    } else if count(&decoded, b'/') > count(path.as_bytes(), b'/') {
        Ambiguity::EncodedSlash
    } else if decoded.contains(&b'\\') {
        Ambiguity::Backslash
    } else if decoded.contains(&b';') {
        Ambiguity::PathParameter
    } else {
        Ambiguity::DoubleEncoding
    }
}

fn bytecount(bytes: &[u8], byte: u8) -> usize {
    bytes.iter().filter(|&&b| b == byte).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strict_reading_normalises_without_changing_structure() {
        for (raw, strict) in [
            ("/", "/"),
            ("", "/"),
            ("//admin//users/", "/admin/users"),
            ("/./admin/./users", "/admin/users"),
            ("/x/../admin", "/admin"),
            ("/../../admin", "/admin"),
            ("/%61dmin", "/admin"),
            ("/%2e%2e/admin", "/admin"),
            ("/caf%C3%A9", "/café"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%5cb", "/a%5Cb"),
            ("/a%3Bb", "/a%3Bb"),
            ("/a%00b", "/a%00b"),
            ("/a%2561", "/a%2561"),
            ("/100%", "/100%25"),
            ("/%zz", "/%25zz"),
        ] {
            assert_eq!(CanonicalPath::new(raw).strict(), strict, "{raw}");
        }
    }

    #[test]
    fn decoded_reading_and_the_ambiguity_it_reveals() {
        for (raw, decoded, ambiguity) in [
            ("/admin%2Fusers", "/admin/users", Ambiguity::EncodedSlash),
            ("/admin%2fusers", "/admin/users", Ambiguity::EncodedSlash),
            ("/admin%5Cusers", "/admin/users", Ambiguity::Backslash),
            ("/admin\\users", "/admin/users", Ambiguity::Backslash),
            ("/admin;x=1/users", "/admin/users", Ambiguity::PathParameter),
            ("/admin%3Bx/users", "/admin/users", Ambiguity::PathParameter),
            ("/x/..;/admin", "/admin", Ambiguity::PathParameter),
            ("/admin%00/users", "/admin", Ambiguity::Nul),
            ("/%2561dmin", "/admin", Ambiguity::DoubleEncoding),
            ("/admin%252Fusers", "/admin/users", Ambiguity::EncodedSlash),
            ("/x/..%2Fadmin", "/admin", Ambiguity::EncodedSlash),
        ] {
            let path = CanonicalPath::new(raw);
            assert_eq!(path.decoded(), decoded, "{raw}");
            assert_eq!(path.ambiguity(), Some(ambiguity), "{raw}");
            assert!(path.readings().count() >= 2, "{raw}");
        }
        assert_eq!(CanonicalPath::new("/100%").ambiguity(), None);
        let plain = CanonicalPath::new("/api/orders/42");
        assert_eq!(plain.ambiguity(), None);
        assert_eq!(plain.readings().collect::<Vec<_>>(), ["/api/orders/42"]);
    }

    #[test]
    fn dot_segments_give_unresolved_readings() {
        for (raw, strict, unresolved) in [
            ("/admin/../public", "/public", "/admin/../public"),
            ("/admin/%2e%2e/public", "/public", "/admin/../public"),
            ("/admin/.%2E/public", "/public", "/admin/../public"),
            ("/admin/./x", "/admin/x", "/admin/./x"),
            ("/admin/x/../../health", "/health", "/admin/x/../../health"),
            ("//admin//../x/", "/x", "/admin/../x"),
            ("/..", "/", "/.."),
        ] {
            let path = CanonicalPath::new(raw);
            assert_eq!(path.strict(), strict, "{raw}");
            assert_eq!(path.unresolved().collect::<Vec<_>>(), [unresolved], "{raw}");
            assert_eq!(path.ambiguity(), Some(Ambiguity::DotSegment), "{raw}");
            assert!(path.has_dot_segments(), "{raw}");
            assert_eq!(
                path.readings().collect::<Vec<_>>(),
                [strict, unresolved],
                "{raw}"
            );
        }
        // Dot segments that only the decoded reading has: its unresolved form is a reading,
        // and the path is ambiguous for what the decoding reveals.
        for (raw, unresolved) in [
            ("/a/%252e%252e/b", "/a/../b"),
            ("/a/..;/b", "/a/../b"),
            ("/a/..%5Cb", "/a/../b"),
            ("/a/..\\b", "/a/../b"),
            ("/admin%2F..;x=1", "/admin/.."),
        ] {
            let path = CanonicalPath::new(raw);
            assert_eq!(path.unresolved().collect::<Vec<_>>(), [unresolved], "{raw}");
            assert!(path.ambiguity().is_some(), "{raw}");
            assert!(path.has_dot_segments(), "{raw}");
        }
        // Empty segments and dots inside names are no dot segments.
        for raw in ["//a//b/", "/a.b/c", "/.well-known/x", "/a/.../b.c"] {
            let path = CanonicalPath::new(raw);
            assert_eq!(path.unresolved().count(), 0, "{raw}");
            assert!(!path.has_dot_segments(), "{raw}");
            assert_ne!(path.ambiguity(), Some(Ambiguity::DotSegment), "{raw}");
        }
    }

    #[test]
    fn segments_ending_in_dots_or_spaces_have_a_trimmed_reading() {
        for (raw, trimmed) in [
            ("/admin./users", "/admin/users"),
            ("/admin../users", "/admin/users"),
            ("/admin%2e/users", "/admin/users"),
            ("/admin%20/users", "/admin/users"),
            ("/admin. %20./users", "/admin/users"),
            ("/a.b/c.", "/a.b/c"),
            // Nothing but dots and spaces: `..` for Windows, as far as can be known.
            ("/a/...", "/"),
            ("/a/%2e%2e%2e/b", "/b"),
            ("/public/..%20/admin/users", "/admin/users"),
            ("/public/. /x", "/public/x"),
            ("/token.", "/token"),
        ] {
            let path = CanonicalPath::new(raw);
            assert_eq!(path.trimmed(), Some(trimmed), "{raw}");
            assert_eq!(
                path.ambiguity(),
                Some(Ambiguity::TrailingDotOrSpace),
                "{raw}"
            );
            let readings: Vec<&str> = path.readings().collect();
            assert!(readings.contains(&trimmed) && readings.len() >= 2, "{raw}");
        }
        // Its other readings' ambiguity is the one named, when they have one.
        let path = CanonicalPath::new("/admin.;x/users");
        assert_eq!(path.trimmed(), Some("/admin/users"));
        assert_eq!(path.ambiguity(), Some(Ambiguity::PathParameter));
        // Dots and spaces inside a segment are left alone.
        for raw in ["/a.b/c", "/a%20b/c", "/.well-known/x"] {
            assert_eq!(CanonicalPath::new(raw).trimmed(), None, "{raw}");
        }
    }

    /// What a lenient upstream does, written the obvious way with the `percent-encoding`
    /// crate: decode until nothing changes, cut at NUL, split on `/` and `\`, cut
    /// `;parameters`, resolve dot segments with a stack (a literal `%` written `%25`).
    fn model_upstream(path: &str) -> Vec<String> {
        let mut bytes = path.as_bytes().to_vec();
        for _ in 0..MAX_DECODE_ROUNDS {
            let next: Vec<u8> = percent_encoding::percent_decode(&bytes).collect();
            if next == bytes {
                break;
            }
            bytes = next;
        }
        let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
        let text = String::from_utf8_lossy(bytes);
        let mut stack: Vec<String> = Vec::new();
        for segment in text.split(['/', '\\']) {
            let segment = segment.split(';').next().unwrap_or_default();
            if segment == ".." {
                stack.pop();
            } else if !segment.is_empty() && segment != "." {
                stack.push(segment.replace('%', "%25"));
            }
        }
        stack
    }

    fn path_strategy() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_owned()),
            Just("//".to_owned()),
            Just(".".to_owned()),
            Just("..".to_owned()),
            Just(";".to_owned()),
            Just("\\".to_owned()),
            Just("%".to_owned()),
            Just("%2F".to_owned()),
            Just("%2f".to_owned()),
            Just("%5C".to_owned()),
            Just("%00".to_owned()),
            Just("%25".to_owned()),
            Just("%2E".to_owned()),
            Just("%3B".to_owned()),
            Just("%C3%A9".to_owned()),
            Just("%FF".to_owned()),
            "[a-cA-C0-9=_-]{1,3}",
            "%[0-9a-fA-F]{2}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn a_path_taken_as_canonical_is_what_reading_it_in_full_gives(
            raw in prop_oneof![path_strategy(), "(/[ab.;%\\\\\\x00]{0,3}){0,4}/?"]
        ) {
            let full = CanonicalPath::read(&raw);
            let unchanged = full.strict() == raw
                && full.decoded() == raw
                && full.trimmed().is_none()
                && full.ambiguity().is_none();
            // The one pass is sound: what it takes as canonical is. It may leave a canonical
            // path to the full readings (`/%25` reads as itself, but it has a `%`).
            if is_canonical(&raw) {
                prop_assert!(unchanged, "{:?}", raw);
            }
            // And it is not far off: without a `%`, it takes every unchanged path.
            if unchanged && !raw.contains('%') {
                prop_assert!(is_canonical(&raw), "{:?}", raw);
            }
            prop_assert_eq!(CanonicalPath::new(&raw), full);
        }

        #[test]
        fn readings_are_canonical_and_agree_with_the_model(raw in path_strategy()) {
            let path = CanonicalPath::new(&raw);
            for reading in [path.strict(), path.decoded()] {
                prop_assert!(reading.starts_with('/'));
                prop_assert!(reading.len() <= raw.len().max(1) * 3 + 1);
                prop_assert!(!reading.split('/').any(|s| s == ".." || s == "."), "{reading}");
                prop_assert!(reading == "/" || !reading.ends_with('/'));
                prop_assert!(!reading.contains("//"));
            }
            // Idempotent: a reading read again is itself.
            let again = CanonicalPath::new(path.strict());
            prop_assert_eq!(again.strict(), path.strict());
            let again = CanonicalPath::new(path.decoded());
            prop_assert_eq!(again.decoded(), path.decoded());
            // Only the trimming, which the decoded reading leaves to its own, can still
            // find something, and it finds the same.
            prop_assert_eq!(again.trimmed(), path.trimmed());
            let expected = path.trimmed().map(|_| Ambiguity::TrailingDotOrSpace);
            prop_assert_eq!(again.ambiguity(), expected);
            // The decoded reading is exactly what the model upstream serves.
            let segments: Vec<&str> = path.decoded()[1..].split('/').filter(|s| !s.is_empty()).collect();
            prop_assert_eq!(segments, model_upstream(&raw));
            // An unambiguous path means the same thing to every kind of server.
            if path.ambiguity().is_none() {
                prop_assert_eq!(path.strict(), path.decoded());
                prop_assert_eq!(path.unresolved().count(), 0);
                prop_assert_eq!(path.trimmed(), None);
            }
            // The trimmed reading is the decoded one, its segments' trailing dots and spaces
            // gone: read again, it is itself.
            if let Some(trimmed) = path.trimmed() {
                prop_assert!(trimmed.starts_with('/'));
                prop_assert!(!trimmed.split('/').any(|s| s.ends_with(['.', ' '])), "{}", trimmed);
                // A stack of the trimmed segments, a segment of dots and spaces alone taken
                // for `.` or `..` by how it begins.
                let mut expected: Vec<&str> = Vec::new();
                for segment in path.decoded()[1..].split('/') {
                    match segment.trim_end_matches(['.', ' ']) {
                        "" if segment.starts_with("..") => {
                            expected.pop();
                        }
                        "" => {}
                        trimmed => expected.push(trimmed),
                    }
                }
                let segments: Vec<&str> = trimmed[1..].split('/').filter(|s| !s.is_empty()).collect();
                prop_assert_eq!(segments, expected);
                let again = CanonicalPath::new(trimmed);
                prop_assert_eq!(again.trimmed(), None);
            }
            // Unresolved readings have dot segments; they come last among the readings.
            let unresolved: Vec<&str> = path.unresolved().collect();
            prop_assert_eq!(path.has_dot_segments(), !unresolved.is_empty());
            for reading in &unresolved {
                prop_assert!(reading.split('/').any(|s| s == "." || s == ".."), "{}", reading);
            }
            let readings: Vec<&str> = path.readings().collect();
            prop_assert!(readings.ends_with(&unresolved));
        }
    }
}
