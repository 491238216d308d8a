//! RFC 8785 (JSON Canonicalization Scheme) output for anything serde can serialise: keys
//! sorted by their UTF-16 code units, no whitespace, strings escaped minimally (only `"`,
//! `\` and control characters, `\b \t \n \f \r` or lowercase `\u00xx`), numbers as
//! ECMAScript prints them.
//!
//! Written here rather than taken from a JCS crate: `serde_json_canonicalizer` (the oracle
//! the tests compare with) took 32 µs per event, re-parsing every key to sort it, and
//! going through a `serde_json::Value` costs 8 µs in allocations alone; the chain hashes
//! every event. It is a `serde_json::ser::Formatter` that writes into its own buffer in two
//! ways. First it writes the value as it serialises, only checking that each key is greater
//! than the one before it in its object: the event model declares its fields in key order,
//! so for an event this is all, at the cost of `serde_json::to_writer`. Should a key come
//! out of order (a map or a struct of someone else's), it stops and writes the value again,
//! noting where every entry lies, and at the end of each object puts its entries in order
//! where they were written.

use std::cmp::Ordering;
use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};

/// The RFC 8785 canonical JSON of a value.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut formatter = Canonical::default();
    formatter.serialize(value)?;
    Ok(formatter.out)
}

/// Writes the RFC 8785 form of one value after another, keeping its buffers between calls:
/// what the chain uses for every event, and `verify` for lines it must canonicalise.
///
/// ```
/// use oauth_audit::event::{canonical_json, Canonicalizer};
/// use serde_json::json;
///
/// let mut canonical = Canonicalizer::default();
/// let value = json!({"b": [1.0, 2.5e-7], "a": {"z": "\u{7f}", "y": null}});
/// assert_eq!(
///     canonical.write(&value).unwrap(),
///     br#"{"a":{"y":null,"z":""},"b":[1,2.5e-7]}"#
/// );
/// assert_eq!(canonical.write(&value).unwrap(), canonical_json(&value).unwrap());
/// ```
#[derive(Default)]
pub struct Canonicalizer(Canonical);

impl std::fmt::Debug for Canonicalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canonicalizer").finish_non_exhaustive()
    }
}

impl Canonicalizer {
    /// The canonical form of `value`, valid until the next call.
    ///
    /// # Errors
    ///
    /// When `value` cannot be serialised as JSON (a map with keys that are not strings,
    /// a `Serialize` implementation that fails).
    pub fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<&[u8], serde_json::Error> {
        self.0.serialize(value)?;
        Ok(&self.0.out)
    }
}

impl Canonical {
    /// Writes `value` as it serialises, checking that every object's keys come in order; the
    /// event model declares its fields in key order, so this is the whole cost for events.
    /// Only when some object's keys come out of order is `value` written again, sorting.
    fn serialize<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), serde_json::Error> {
        self.reset(false);
        let written = self.serialize_once(value);
        if !self.unsorted {
            return written;
        }
        self.reset(true);
        self.serialize_once(value)
    }

    fn serialize_once<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        value.serialize(&mut serde_json::Serializer::with_formatter(
            io::sink(),
            self,
        ))
    }

    fn reset(&mut self, sorting: bool) {
        self.out.clear();
        self.objects.clear();
        self.entries.clear();
        self.last_keys.clear();
        self.sorting = sorting;
        self.unsorted = false;
    }

    /// Sorting: at the end of an object, puts its entries in key order where they were
    /// written.
    #[cold]
    #[inline(never)]
    fn sort_object(&mut self) {
        let first = self.objects.pop().unwrap_or(self.entries.len());
        let entries = &mut self.entries[first..];
        let out = &mut self.out;
        if !entries.is_sorted_by(|a, b| entry_order(out, a, b).is_le()) {
            // Copy the body out, then write it back in key order, with commas.
            let (start, end) = (entries[0].start, entries[entries.len() - 1].end);
            // Keys of one object differ: stability does not matter.
            entries.sort_unstable_by(|a, b| entry_order(out, a, b));
            self.scratch.clear();
            self.scratch.extend_from_slice(&out[start..end]);
            out.truncate(start);
            for (index, entry) in entries.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&self.scratch[entry.start - start..entry.end - start]);
            }
        }
        self.entries.truncate(first);
    }
}

/// RFC 8785 numbers are IEEE 754 doubles: integers past 2^53 are written as the double they
/// round to, as a JavaScript verifier reads them (the event model keeps its integers below).
const EXACT: u64 = 1 << 53;

#[derive(Default)]
struct Canonical {
    out: Vec<u8>,
    /// For each open object, where its entries start in `entries`.
    objects: Vec<usize>,
    /// The entries of the open objects, innermost last.
    entries: Vec<Entry>,
    /// A copy of an object's body while its entries are put in order.
    scratch: Vec<u8>,
    /// Whether an escape was written since the current key began.
    escaped: bool,
    /// Whether this pass sorts entries (else it only checks that they come in order).
    sorting: bool,
    /// Checking: where the current key starts.
    key_start: usize,
    /// Checking: for each open object, its last key so far.
    last_keys: Vec<LastKey>,
    /// Checking: a key came out of order, or could not be compared as bytes; the pass
    /// stopped and the value must be written again, sorting.
    unsorted: bool,
}

/// What the checking pass stops with when it finds keys out of order (never returned).
#[cold]
fn out_of_order() -> io::Error {
    io::Error::other("object keys out of order")
}

/// The checking pass's last key of an open object: its first eight bytes as a number (see
/// [`Entry::prefix`]) and, for keys that share those, where it lies in `out`.
#[derive(Clone, Copy)]
struct LastKey {
    prefix: u64,
    start: usize,
    end: usize,
}

/// Before an object's first key: below every key, the empty one included.
const NO_KEY: LastKey = LastKey {
    prefix: 0,
    start: usize::MAX,
    end: 0,
};

/// A key's first eight bytes, big-endian, zero-padded.
#[inline]
fn prefix_of(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(first) => u64::from_be_bytes(*first),
        None => {
            let mut prefix = [0u8; 8];
            prefix[..key.len()].copy_from_slice(key);
            u64::from_be_bytes(prefix)
        }
    }
}

/// One `"key":value` of an object, as byte ranges of `out`.
#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    /// Where the key's closing quote ends.
    key_end: usize,
    end: usize,
    /// ASCII without escapes: its bytes sort as its UTF-16 code units.
    plain: bool,
    /// A plain key's first eight bytes, big-endian, zero-padded: most keys are told apart
    /// by this number alone. (A plain key holds no zero byte: that would be escaped.)
    prefix: u64,
}

impl Canonical {
    fn key<'a>(out: &'a [u8], entry: &Entry) -> &'a [u8] {
        // Without the quotes.
        &out[entry.start + 1..entry.key_end - 1]
    }
}

/// RFC 8785 §3.2.3: keys in the order of their UTF-16 code units, compared unescaped.
#[inline]
fn entry_order(out: &[u8], a: &Entry, b: &Entry) -> Ordering {
    if a.plain && b.plain {
        // Every key the event model writes: bytes sort as UTF-16 code units.
        a.prefix
            .cmp(&b.prefix)
            .then_with(|| Canonical::key(out, a).cmp(Canonical::key(out, b)))
    } else {
        key_order(Canonical::key(out, a), Canonical::key(out, b))
    }
}

#[cold]
fn key_order(a: &[u8], b: &[u8]) -> Ordering {
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(a), Ok(b)) if !a.contains('\\') && !b.contains('\\') => {
            a.encode_utf16().cmp(b.encode_utf16())
        }
        _ => {
            let unescape = |raw: &[u8]| {
                let mut quoted = Vec::with_capacity(raw.len() + 2);
                quoted.push(b'"');
                quoted.extend_from_slice(raw);
                quoted.push(b'"');
                serde_json::from_slice::<String>(&quoted).unwrap_or_default()
            };
            unescape(a).encode_utf16().cmp(unescape(b).encode_utf16())
        }
    }
}

// Every method writes into `self.out` and ignores the serializer's writer (`io::sink()`).
impl Formatter for &mut Canonical {
    fn write_null<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn write_bool<W: ?Sized + io::Write>(&mut self, _: &mut W, value: bool) -> io::Result<()> {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    fn write_i8<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i8) -> io::Result<()> {
        self.write_i64(w, value.into())
    }

    fn write_i16<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i16) -> io::Result<()> {
        self.write_i64(w, value.into())
    }

    fn write_i32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i32) -> io::Result<()> {
        self.write_i64(w, value.into())
    }

    fn write_i64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i64) -> io::Result<()> {
        if value.unsigned_abs() <= EXACT {
            self.out
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            Ok(())
        } else {
            self.write_f64(w, value as f64)
        }
    }

    fn write_i128<W: ?Sized + io::Write>(&mut self, w: &mut W, value: i128) -> io::Result<()> {
        self.write_f64(w, value as f64)
    }

    fn write_u8<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u8) -> io::Result<()> {
        self.write_u64(w, value.into())
    }

    fn write_u16<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u16) -> io::Result<()> {
        self.write_u64(w, value.into())
    }

    fn write_u32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u32) -> io::Result<()> {
        self.write_u64(w, value.into())
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u64) -> io::Result<()> {
        if value <= EXACT {
            self.out
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
            Ok(())
        } else {
            self.write_f64(w, value as f64)
        }
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, w: &mut W, value: u128) -> io::Result<()> {
        self.write_f64(w, value as f64)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, value.into())
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, _: &mut W, value: f64) -> io::Result<()> {
        // serde_json writes non-finite numbers as `null` without calling this.
        self.out
            .extend_from_slice(ryu_js::Buffer::new().format_finite(value).as_bytes());
        Ok(())
    }

    fn write_number_str<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        value: &str,
    ) -> io::Result<()> {
        // Only with serde_json's `arbitrary_precision`: print it as a double would.
        let parsed: f64 = value
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not a number"))?;
        self.out
            .extend_from_slice(ryu_js::Buffer::new().format_finite(parsed).as_bytes());
        Ok(())
    }

    fn begin_string<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.push(b'"');
        Ok(())
    }

    fn end_string<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.push(b'"');
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        self.out.extend_from_slice(fragment.as_bytes());
        Ok(())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.escaped = true;
        let short: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => {
                self.out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ]);
                return Ok(());
            }
        };
        self.out.extend_from_slice(short);
        Ok(())
    }

    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        self.begin_array(w)?;
        for (index, byte) in value.iter().enumerate() {
            self.begin_array_value(w, index == 0)?;
            self.write_u8(w, *byte)?;
        }
        self.end_array(w)
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.push(b'[');
        Ok(())
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.push(b']');
        Ok(())
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if !first {
            self.out.push(b',');
        }
        Ok(())
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        Ok(())
    }

    #[inline]
    fn begin_object<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.push(b'{');
        if self.sorting {
            self.objects.push(self.entries.len());
        } else {
            self.last_keys.push(NO_KEY);
        }
        Ok(())
    }

    #[inline]
    fn end_object<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        if self.sorting {
            self.sort_object();
        } else {
            self.last_keys.pop();
        }
        self.out.push(b'}');
        Ok(())
    }

    #[inline]
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        _: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if !first {
            self.out.push(b',');
        }
        self.escaped = false;
        self.key_start = self.out.len();
        if self.sorting {
            self.entries.push(Entry {
                start: self.key_start,
                key_end: self.key_start,
                end: self.key_start,
                plain: false,
                prefix: 0,
            });
        }
        Ok(())
    }

    #[inline]
    fn end_object_key<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        let end = self.out.len();
        // Without its quotes.
        let (start, end) = (self.key_start + 1, end - 1);
        let key = &self.out[start..end];
        let prefix = if key.len() < 8 && end >= 8 {
            // The eight bytes that end with the key, the bytes before it shifted out: no
            // copy of a short key.
            let window = self.out[end - 8..end]
                .first_chunk::<8>()
                .map_or(0, |w| u64::from_be_bytes(*w));
            window.checked_shl(8 * (8 - key.len() as u32)).unwrap_or(0)
        } else {
            prefix_of(key)
        };
        // ASCII without escapes sorts by its bytes as by its UTF-16 code units.
        let plain = !self.escaped
            && if key.len() <= 8 {
                prefix & 0x8080_8080_8080_8080 == 0
            } else {
                key.is_ascii()
            };
        if self.sorting {
            if let Some(entry) = self.entries.last_mut() {
                entry.key_end = end + 1;
                entry.plain = plain;
                entry.prefix = prefix;
            }
            return Ok(());
        }
        let Some(last) = self.last_keys.last_mut() else {
            return Ok(());
        };
        let in_order = plain
            && (last.prefix < prefix
                || last.prefix == prefix
                    && (last.start == usize::MAX || self.out[last.start..last.end] < *key));
        if !in_order {
            self.unsorted = true;
            return Err(out_of_order());
        }
        *last = LastKey { prefix, start, end };
        Ok(())
    }

    #[inline]
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        self.out.push(b':');
        Ok(())
    }

    #[inline]
    fn end_object_value<W: ?Sized + io::Write>(&mut self, _: &mut W) -> io::Result<()> {
        if self.sorting {
            let len = self.out.len();
            if let Some(entry) = self.entries.last_mut() {
                entry.end = len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn agrees_with_the_oracle(value: &Value) {
        let ours = String::from_utf8(canonical_json(value).unwrap()).unwrap();
        let oracle = serde_json_canonicalizer::to_string(value).unwrap();
        assert_eq!(ours, oracle, "{value}");
        let mut reused = Canonicalizer::default();
        reused.write(&json!({"warm": [1, {"up": true}]})).unwrap();
        assert_eq!(reused.write(value).unwrap(), ours.as_bytes());
    }

    #[test]
    // 333333333.33333329 is RFC 8785's own example, written as the RFC writes it.
    #[allow(clippy::excessive_precision)]
    fn edge_values_are_written_as_rfc_8785_says() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        for value in [
            json!(null),
            json!([
                true,
                false,
                0,
                -1,
                1,
                9007199254740992u64,
                -9007199254740992i64
            ]),
            json!([
                9007199254740993u64,
                -9007199254740993i64,
                u64::MAX,
                i64::MIN
            ]),
            json!([
                0.108,
                1e30,
                4.5,
                0.002,
                1e-27,
                -0.0,
                333333333.33333329,
                1e21,
                1e20
            ]),
            json!({"s": every_ascii, "u": "€$\u{2028}\u{10000}é", "": ""}),
            json!({"b": {"z": [1, {"y": null}], "a": []}, "a": {}}),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3}),
            json!({"k\u{7f}": "\u{7f}", "k\u{1f}": "\u{1f}", "k\"": 1, "k\\": 2}),
        ] {
            agrees_with_the_oracle(&value);
        }
    }

    /// An event with every object present, as the chain sees it.
    fn full_event() -> crate::event::AuditEvent {
        use crate::event::*;
        use crate::token::{TokenFingerprint, TokenFormat, Verdict};
        let service = std::sync::Arc::new(ServiceInfo {
            name: "orders-api".into(),
            instance: Some("orders-api-1".into()),
        });
        let mut event = AuditEvent::new(
            service,
            Timestamp::from_unix(1_796_083_200).unwrap(),
            EventKind::AccessTokenIssued,
            Outcome::Success,
        );
        event.request_id = Some("r-1".into());
        event.trace_id = Some("4bf92f3577b34da6a3ce929d0e0e4736".into());
        event.actor.subject = Some("alice".into());
        event.actor.client_id = Some("orders-web".into());
        event.actor.kind = Some(ActorKind::User);
        event.client_auth = Some(ClientAuth::ClientSecretBasic);
        event.grant_type = Some("refresh_token".into());
        event.scopes.requested = Some(vec!["orders:read".into()]);
        event.scopes.granted = Some(vec!["orders:read".into()]);
        event.scopes.required = Some(vec!["orders:read".into()]);
        event.scopes.used = Some(vec!["orders:read".into()]);
        event.scopes.missing = Some(vec!["orders:write".into()]);
        let mut token = TokenDetails::from_fingerprint(TokenFingerprint::of("access"));
        token.format = Some(TokenFormat::Jwt);
        token.jti = Some("j".into());
        token.issuer = Some("https://login.example.com/".into());
        token.audience = vec!["orders-api".into()];
        token.issued_at = Timestamp::from_unix(1_796_083_100);
        token.expires_at = Timestamp::from_unix(1_796_086_800);
        token.verdict = Some(Verdict::Valid);
        token.subject = Some("alice".into());
        token.client_id = Some("orders-web".into());
        token.unverified = Some(UnverifiedClaims {
            subject: Some("alice".into()),
            client_id: Some("orders-web".into()),
            delegation: Vec::new(),
            scopes: vec!["orders:read".into()],
        });
        event.token = Some(token);
        event.refresh_token = Some(TokenRef::new(TokenFingerprint::of("refresh-2")));
        event.oauth = Some(OAuthDetails {
            presented_refresh_token: Some(TokenRef::new(TokenFingerprint::of("refresh-1"))),
            resource: vec!["https://orders.example.com/".into()],
            repeated_parameters: vec!["scope".into()],
            ..OAuthDetails::default()
        });
        event.http = Some(HttpInfo {
            method: "POST".into(),
            route: Some("/token".into()),
            path: "/token".into(),
            status: Some(200),
            duration_ms: 1.25,
        });
        event.source = Some(Source {
            ip: Some([203, 0, 113, 9].into()),
            forwarded_for: vec!["203.0.113.9".into()],
            user_agent: Some("curl/8".into()),
            ..Source::default()
        });
        event.error = Some(ErrorInfo {
            code: "invalid_grant".into(),
            description: None,
        });
        event.chain = Some(ChainLink {
            stream: "s".into(),
            seq: 2,
            prev: Some(EventHash::of_bytes(b"1")),
        });
        event.labels.insert("region".into(), "eu".into());
        event.labels.insert("tenant".into(), "acme".into());
        event
    }

    #[test]
    fn events_are_written_in_one_pass_without_sorting() {
        let event = full_event();
        let mut canonical = Canonical::default();
        canonical.reset(false);
        canonical.serialize_once(&event).unwrap();
        assert!(
            !canonical.unsorted,
            "keys out of order at {}",
            String::from_utf8_lossy(&canonical.out)
        );
        let value = serde_json::to_value(&event).unwrap();
        agrees_with_the_oracle(&value);
        assert_eq!(canonical.out, canonical_json(&value).unwrap());
    }

    #[test]
    fn values_out_of_order_are_written_again_in_order() {
        #[derive(serde::Serialize)]
        struct Unsorted {
            z: u8,
            a: Vec<Unsorted>,
        }
        let value = Unsorted {
            z: 1,
            a: vec![Unsorted { z: 2, a: vec![] }],
        };
        let mut canonical = Canonicalizer::default();
        assert_eq!(
            canonical.write(&value).unwrap(),
            br#"{"a":[{"a":[],"z":2}],"z":1}"#
        );
        // The buffers of that second pass do not leak into the next value.
        assert_eq!(canonical.write(&json!({"b": 1})).unwrap(), br#"{"b":1}"#);
    }

    #[test]
    fn every_character_escapes_as_the_oracle_escapes_it() {
        for c in (0u32..0x800).chain([0x2028, 0x2029, 0xfeff, 0xfffd, 0x1f600]) {
            let Some(c) = char::from_u32(c) else { continue };
            agrees_with_the_oracle(
                &json!({ "k": format!("a{c}b"), "l": c.to_string(), c.to_string(): 1 }),
            );
        }
    }
}
