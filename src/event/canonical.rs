//! RFC 8785 (JSON Canonicalization Scheme) output for anything serde can serialise: keys
//! sorted by their UTF-16 code units, no whitespace, strings escaped minimally (only `"`,
//! `\` and control characters, `\b \t \n \f \r` or lowercase `\u00xx`), numbers as
//! ECMAScript prints them.
//!
//! Written here rather than taken from a JCS crate: `serde_json_canonicalizer` (the oracle
//! the tests compare with) took 32 µs per event, re-parsing every key to sort it, and
//! going through a `serde_json::Value` costs 8 µs in allocations alone; the chain hashes
//! every event. It is a serde `Serializer` of its own (not a `serde_json` formatter) for
//! two reasons:
//!
//! - **Structs are told from maps.** A struct's keys are `&'static str`s, so checking that
//!   each comes after the one before it is a comparison of two short strings. The event
//!   model declares its fields in key order, so for an event that check is all the order
//!   costs. Every entry's place in the output is noted as it is written, and an object whose
//!   keys came out of order (a map, a struct of someone else's) has its entries put in
//!   order where they were written when it ends: one pass, whatever the value.
//! - **Strings are scanned eight bytes at a time** for the bytes that need escaping, where
//!   `serde_json` looks up every byte and hands each run to the formatter.

use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt::Display;
use std::sync::Arc;

use serde::ser::{self, Serialize};

pub(super) type Error = serde_json::Error;

fn error(message: impl Display) -> Error {
    <Error as ser::Error>::custom(message)
}

/// The RFC 8785 canonical JSON of a value.
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut canonical = Canonical::default();
    canonical.serialize(value)?;
    Ok(canonical.out)
}

/// Appends the RFC 8785 canonical JSON of a value to `buf`; on an error, `buf` is left as
/// it was. For an event in schema v1, these are the bytes every sink writes (through a
/// writer of the event's own that makes the same bytes faster): the JSON the hash chain
/// hashes, whether or not the chain is on, and cheaper to make than `serde_json`'s.
///
/// ```
/// let mut line = b"event: ".to_vec();
/// oauth_audit::event::append_canonical_json(&mut line, &serde_json::json!({"b": 2.0, "a": 1}))
///     .unwrap();
/// assert_eq!(line, br#"event: {"a":1,"b":2}"#);
/// ```
pub fn append_canonical_json<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    value: &T,
) -> Result<(), serde_json::Error> {
    append_to(buf, |canonical| canonical.append(value))
}

/// Runs `write` on a writer that appends to `buf`; on an error, `buf` is left as it was.
pub(super) fn append_to(
    buf: &mut Vec<u8>,
    write: impl FnOnce(&mut Canonical) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = buf.len();
    let mut canonical = Canonical {
        out: std::mem::take(buf),
        ..Canonical::default()
    };
    let written = write(&mut canonical);
    *buf = canonical.out;
    if written.is_err() {
        buf.truncate(start);
    }
    written
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
///     b"{\"a\":{\"y\":null,\"z\":\"\x7f\"},\"b\":[1,2.5e-7]}"
/// );
/// assert_eq!(canonical.write(&value).unwrap(), canonical_json(&value).unwrap());
/// ```
#[derive(Default)]
pub struct Canonicalizer(pub(super) Canonical);

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

/// RFC 8785 numbers are IEEE 754 doubles: integers past 2^53 are written as the double they
/// round to, as a JavaScript verifier reads them (the event model keeps its integers below).
const EXACT: u64 = 1 << 53;

/// What `serde_json` names the one field of a number kept as its text (with its
/// `arbitrary_precision` feature) and of a `RawValue`.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// The name of the newtype a [`Shared`](super::Shared) value serialises as, when it offers
/// the canonical writer its remembered JSON.
const RENDERED_TOKEN: &str = "$oauth_audit::private::Rendered";

/// A shared value that can write its canonical JSON, rendered once.
pub(super) trait Rendered: Send + Sync {
    /// Appends the value's canonical JSON to `out`.
    fn write_canonical(&self, out: &mut Vec<u8>) -> Result<(), Error>;

    /// The canonical JSON remembered, if it was written already.
    fn remembered(&self) -> Option<&[u8]>;

    /// Remembers `bytes`, written by a writer of the value's own, as its canonical JSON
    /// (unless it has some already: two sinks may write it at once, the same bytes).
    fn remember(&self, bytes: &[u8]);
}

thread_local! {
    /// The shared value whose serialisation is under way on this thread, offered to the
    /// canonical writer. A serde `Serializer` is generic, so a value cannot tell whether
    /// the canonical writer is writing it: it leaves itself here and serialises as a
    /// newtype of a name only this writer knows. The canonical writer takes it back and
    /// copies the remembered JSON; any other serializer sees an ordinary newtype whose
    /// content takes the offer back before writing the value in full. Either way the
    /// offer lives only from the value's `serialize` to the serializer's first step.
    static OFFERED: Cell<Option<Arc<dyn Rendered>>> = const { Cell::new(None) };
}

/// Serialises `value` through `serializer`, offering the canonical writer `part` (the same
/// value, with its remembered JSON) in its place.
pub(super) fn offer_rendered<S, T>(
    part: Arc<dyn Rendered>,
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error>
where
    S: ser::Serializer,
    T: Serialize + ?Sized,
{
    /// Takes back an offer nobody took (a serializer that failed before reaching the
    /// value), so that it can never be found by a later newtype of the same name.
    struct Withdraw;
    impl Drop for Withdraw {
        fn drop(&mut self) {
            drop(OFFERED.try_with(Cell::take));
        }
    }
    OFFERED.with(|offered| offered.set(Some(part)));
    let _withdraw = Withdraw;
    serializer.serialize_newtype_struct(RENDERED_TOKEN, &Unclaimed(value))
}

/// A shared value as any serializer but the canonical writer sees it: the value itself,
/// once the offer is taken back.
struct Unclaimed<'a, T: ?Sized>(&'a T);

impl<T: Serialize + ?Sized> Serialize for Unclaimed<'_, T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        drop(OFFERED.with(Cell::take));
        self.0.serialize(serializer)
    }
}

#[derive(Default)]
pub(super) struct Canonical {
    pub(super) out: Vec<u8>,
    /// The entries of the open objects, innermost last.
    entries: Vec<Entry>,
    /// A copy of an object's body while its entries are put in order.
    scratch: Vec<u8>,
    /// Whether structs note their entries (the second pass), not only check their order.
    pub(super) noting_fields: bool,
    /// The first pass found a struct out of order: write the value again, noting fields.
    pub(super) again: bool,
    /// How many objects had to be put in order (for the tests).
    #[cfg(test)]
    sorted_objects: usize,
    /// Makes the event writer take its fallback (for the tests; `canonical_event`).
    #[cfg(test)]
    pub(super) pretend_out_of_order: bool,
}

/// One `"key":value` of an object, as byte ranges of `out`.
#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    /// Where the key's closing quote ends.
    key_end: usize,
    end: usize,
}

impl Canonical {
    /// Writes `value`. Structs are only checked on the first pass: should one's fields come
    /// out of order (never for the event model, which declares them in order), `value` is
    /// written again, noting every struct's entries to put them in order.
    fn serialize<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.out.clear();
        self.append(value)
    }

    /// [`Canonical::serialize`], after what `out` holds.
    fn append<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let from = self.out.len();
        self.start(from, false);
        let written = value.serialize(&mut *self);
        if !self.again {
            return written;
        }
        self.start(from, true);
        value.serialize(&mut *self)
    }

    pub(super) fn start(&mut self, from: usize, noting_fields: bool) {
        self.out.truncate(from);
        self.entries.clear();
        self.noting_fields = noting_fields;
        self.again = false;
    }

    /// A key as written, without its quotes.
    fn key(&self, entry: &Entry) -> &[u8] {
        &self.out[entry.start + 1..entry.key_end - 1]
    }

    /// At the end of an object whose keys came out of order: puts its entries (from
    /// `first` on) in key order where they were written.
    #[cold]
    #[inline(never)]
    fn sort_object(&mut self, first: usize) {
        #[cfg(test)]
        {
            self.sorted_objects += 1;
        }
        let mut entries = std::mem::take(&mut self.entries);
        let object = &mut entries[first..];
        if let (Some(head), Some(tail)) = (object.first(), object.last()) {
            let (start, end) = (head.start, tail.end);
            object.sort_by(|a, b| written_key_order(self.key(a), self.key(b)));
            self.scratch.clear();
            self.scratch.extend_from_slice(&self.out[start..end]);
            self.out.truncate(start);
            for (index, entry) in object.iter().enumerate() {
                if index > 0 {
                    self.out.push(b',');
                }
                self.out
                    .extend_from_slice(&self.scratch[entry.start - start..entry.end - start]);
            }
        }
        entries.truncate(first);
        self.entries = entries;
    }

    pub(super) fn write_u64(&mut self, value: u64) {
        if value <= EXACT {
            self.out
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        } else {
            self.write_f64(value as f64);
        }
    }

    fn write_i64(&mut self, value: i64) {
        if value.unsigned_abs() <= EXACT {
            self.out
                .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        } else {
            self.write_f64(value as f64);
        }
    }

    fn write_i128(&mut self, value: i128) {
        match i64::try_from(value) {
            Ok(value) => self.write_i64(value),
            Err(_) => self.write_f64(value as f64),
        }
    }

    fn write_u128(&mut self, value: u128) {
        match u64::try_from(value) {
            Ok(value) => self.write_u64(value),
            Err(_) => self.write_f64(value as f64),
        }
    }

    pub(super) fn write_f64(&mut self, value: f64) {
        if let Some(thousandths) = whole_thousandths(value) {
            self.write_thousandths(thousandths);
        } else if value.is_finite() {
            self.out
                .extend_from_slice(ryu_js::Buffer::new().format_finite(value).as_bytes());
        } else {
            // As `serde_json` writes them: JSON has no such numbers.
            self.out.extend_from_slice(b"null");
        }
    }

    /// A number of thousandths as a decimal: `171` as `0.171`, `2500` as `2.5`.
    fn write_thousandths(&mut self, thousandths: u64) {
        let (whole, fraction) = (thousandths / 1000, thousandths % 1000);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(whole).as_bytes());
        if fraction != 0 {
            let digits = [
                b'.',
                b'0' + (fraction / 100) as u8,
                b'0' + (fraction / 10 % 10) as u8,
                b'0' + (fraction % 10) as u8,
            ];
            let keep = if fraction % 10 != 0 {
                4
            } else if fraction % 100 != 0 {
                3
            } else {
                2
            };
            self.out.extend_from_slice(&digits[..keep]);
        }
    }

    /// A number given as its text (`serde_json`'s `arbitrary_precision`): as a double would
    /// print.
    fn write_number_text(&mut self, text: &str) -> Result<(), Error> {
        let value: f64 = text
            .parse()
            .map_err(|_| error(format_args!("not a number: {text}")))?;
        self.write_f64(value);
        Ok(())
    }

    /// A `RawValue`'s JSON, canonicalised (read as any other parser reads it: see
    /// `crate::json`).
    fn write_raw_json(&mut self, json: &str) -> Result<(), Error> {
        let value = crate::json::from_slice(json.as_bytes())?;
        value.serialize(self)
    }
}

/// `value` as a whole number of thousandths, when it is one below 10^15 (durations in
/// milliseconds, rounded to microseconds as events carry them), so that ECMAScript prints it
/// as that decimal.
///
/// Why the decimal is what ECMAScript (and `ryu_js`) prints: division is correctly rounded,
/// so `thousandths / 1000.0 == value` says the decimal rounds to `value`; it has at most 15
/// significant digits, and two different decimals of at most 15 digits never round to the
/// same double, so no shorter decimal rounds to `value` either. Between 0.001 and 10^12,
/// ECMAScript writes no exponent.
#[inline]
fn whole_thousandths(value: f64) -> Option<u64> {
    const LIMIT: f64 = 1e15;
    let scaled = value * 1000.0;
    if !(0.0..LIMIT).contains(&scaled) {
        return None;
    }
    let thousandths = scaled.round();
    (thousandths / 1000.0 == value).then_some(thousandths as u64)
}

/// RFC 8785 §3.2.3: keys in the order of their UTF-16 code units.
///
/// UTF-8 bytes sort as code points, and code points as UTF-16 code units except that
/// characters past U+FFFF (surrogate pairs in UTF-16) sort before U+E000..U+FFFF there:
/// only a first difference at a byte of 0xEE or more needs the UTF-16 comparison.
#[inline(always)]
fn key_order(a: &str, b: &str) -> Ordering {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    // Most keys of one object differ in their first byte.
    if let (Some(&p), Some(&q)) = (x.first(), y.first()) {
        if p != q && p < 0xee && q < 0xee {
            return p.cmp(&q);
        }
    }
    match x.iter().zip(y).position(|(p, q)| p != q) {
        None => x.len().cmp(&y.len()),
        Some(at) if x[at] < 0xee && y[at] < 0xee => x[at].cmp(&y[at]),
        Some(_) => a.encode_utf16().cmp(b.encode_utf16()),
    }
}

/// [`key_order`] of two keys as they were written, escapes and all.
fn written_key_order(a: &[u8], b: &[u8]) -> Ordering {
    if !a.contains(&b'\\') && !b.contains(&b'\\') {
        // Written without escapes: the bytes are the key's own UTF-8.
        if let (Ok(a), Ok(b)) = (std::str::from_utf8(a), std::str::from_utf8(b)) {
            return key_order(a, b);
        }
    }
    let unescape = |raw: &[u8]| {
        let mut quoted = Vec::with_capacity(raw.len() + 2);
        quoted.push(b'"');
        quoted.extend_from_slice(raw);
        quoted.push(b'"');
        serde_json::from_slice::<String>(&quoted).unwrap_or_default()
    };
    key_order(&unescape(a), &unescape(b))
}

/// Per byte: 0 when it is written as it is, else the character after the backslash of its
/// escape (`u` for `\u00xx`).
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of eight bytes is below 0x20, `"` or `\` (exact, not a guess: the classic
/// "has a byte less than n" and "has a zero byte" tests).
#[inline]
fn needs_escape(word: u64) -> bool {
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (control | quote | backslash) & HIGHS != 0
}

/// Appends `text` as a JSON string, escaped as RFC 8785 says.
#[inline(always)]
pub(super) fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if is_plain(bytes) {
        out.extend_from_slice(bytes);
    } else {
        write_escaped(out, bytes);
    }
    out.push(b'"');
}

/// Whether no byte of `bytes` needs escaping, eight bytes at a time (the last eight
/// overlapping the ones before, and shorter strings as two overlapping halves).
#[inline]
fn is_plain(bytes: &[u8]) -> bool {
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|chunk| chunk.first_chunk::<8>())
            .map_or(0, |chunk| u64::from_le_bytes(*chunk))
    };
    let half = |at: usize| {
        bytes
            .get(at..at + 4)
            .and_then(|chunk| chunk.first_chunk::<4>())
            .map_or(0, |chunk| u32::from_le_bytes(*chunk))
    };
    match bytes.len() {
        0 => true,
        len @ 1..=3 => bytes[..len]
            .iter()
            .all(|&byte| ESCAPE[usize::from(byte)] == 0),
        len @ 4..=8 => !needs_escape(u64::from(half(0)) << 32 | u64::from(half(len - 4))),
        len => {
            let mut at = 0;
            while at + 8 < len {
                if needs_escape(word(at)) {
                    return false;
                }
                at += 8;
            }
            !needs_escape(word(len - 8))
        }
    }
}

/// Appends `bytes` (UTF-8), escaping what needs it.
#[cold]
#[inline(never)]
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut written = 0;
    for (at, &byte) in bytes.iter().enumerate() {
        if ESCAPE[usize::from(byte)] != 0 {
            out.extend_from_slice(&bytes[written..at]);
            write_escape(out, byte);
            written = at + 1;
        }
    }
    out.extend_from_slice(&bytes[written..]);
}

#[cold]
fn write_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match ESCAPE[usize::from(byte)] {
        b'u' => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]),
        short => out.extend_from_slice(&[b'\\', short]),
    }
}

/// Numbers, each widened to the one kind it is written as.
macro_rules! numbers {
    ($($method:ident: $kind:ty => $write:ident),*) => {$(
        fn $method(self, value: $kind) -> Result<(), Error> {
            self.$write(value.into());
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for &'a mut Canonical {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Array<'a>;
    type SerializeTuple = Array<'a>;
    type SerializeTupleStruct = Array<'a>;
    type SerializeTupleVariant = Array<'a>;
    type SerializeMap = Object<'a>;
    type SerializeStruct = Object<'a>;
    type SerializeStructVariant = Object<'a>;

    fn serialize_bool(self, value: bool) -> Result<(), Error> {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    numbers!(
        serialize_i8: i8 => write_i64,
        serialize_i16: i16 => write_i64,
        serialize_i32: i32 => write_i64,
        serialize_i64: i64 => write_i64,
        serialize_i128: i128 => write_i128,
        serialize_u8: u8 => write_u64,
        serialize_u16: u16 => write_u64,
        serialize_u32: u32 => write_u64,
        serialize_u64: u64 => write_u64,
        serialize_u128: u128 => write_u128,
        serialize_f32: f32 => write_f64,
        serialize_f64: f64 => write_f64
    );

    fn serialize_char(self, value: char) -> Result<(), Error> {
        write_str(&mut self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        write_str(&mut self.out, value);
        Ok(())
    }

    fn serialize_bytes(self, value: &[u8]) -> Result<(), Error> {
        // As `serde_json` writes bytes: an array of numbers.
        self.out.push(b'[');
        for (index, byte) in value.iter().enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            self.write_u64((*byte).into());
        }
        self.out.push(b']');
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.out.extend_from_slice(b"null");
        Ok(())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if name == RENDERED_TOKEN {
            if let Some(part) = OFFERED.with(Cell::take) {
                return part.write_canonical(&mut self.out);
            }
        }
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.out.push(b'{');
        write_str(&mut self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Array<'a>, Error> {
        self.out.push(b'[');
        Ok(Array {
            canonical: self,
            empty: true,
            close: b"]",
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Array<'a>, Error> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Array<'a>, Error> {
        self.out.push(b'{');
        write_str(&mut self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Array {
            canonical: self,
            empty: true,
            close: b"]}",
        })
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Object<'a>, Error> {
        Ok(Object::open(self, Special::None, b"}"))
    }

    fn serialize_struct(self, name: &'static str, _: usize) -> Result<Object<'a>, Error> {
        let special = if name.starts_with('$') {
            match name {
                NUMBER_TOKEN => Special::Number,
                RAW_VALUE_TOKEN => Special::RawValue,
                _ => Special::None,
            }
        } else {
            Special::None
        };
        Ok(Object::open(self, special, b"}"))
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Object<'a>, Error> {
        self.out.push(b'{');
        write_str(&mut self.out, variant);
        self.out.push(b':');
        Ok(Object::open(self, Special::None, b"}}"))
    }
}

/// An array being written.
pub(super) struct Array<'a> {
    canonical: &'a mut Canonical,
    empty: bool,
    close: &'static [u8],
}

impl Array<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !std::mem::take(&mut self.empty) {
            self.canonical.out.push(b',');
        }
        value.serialize(&mut *self.canonical)
    }

    fn close(self) -> Result<(), Error> {
        self.canonical.out.extend_from_slice(self.close);
        Ok(())
    }
}

/// serde's four kinds of array, all written the same way.
macro_rules! array {
    ($($kind:ident::$element:ident),*) => {$(
        impl ser::$kind for Array<'_> {
            type Ok = ();
            type Error = Error;

            fn $element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }

            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

array!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// A struct whose one field `serde_json` gives a special meaning.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Special {
    None,
    /// A number as its text.
    Number,
    /// Raw JSON.
    RawValue,
}

/// An object (a struct or a map) being written. A map notes each entry's place as it is
/// written, and if a key comes out of order, its entries are put in order when it ends. A
/// struct only checks its keys, unless one came out of order before: see
/// [`Canonical::serialize`].
pub(super) struct Object<'a> {
    canonical: &'a mut Canonical,
    /// Where this object's entries start in `entries`.
    first: usize,
    /// How many entries were written.
    count: usize,
    /// The entries so far came in key order.
    sorted: bool,
    /// A struct's last key so far (a struct's keys are static).
    last_field: Option<&'static str>,
    /// A map's entry being written: where its key starts and ends.
    key: (usize, usize),
    special: Special,
    close: &'static [u8],
}

impl<'a> Object<'a> {
    fn open(canonical: &'a mut Canonical, special: Special, close: &'static [u8]) -> Self {
        if special == Special::None {
            canonical.out.push(b'{');
        }
        Object {
            first: canonical.entries.len(),
            count: 0,
            canonical,
            sorted: true,
            last_field: None,
            key: (0, 0),
            special,
            close,
        }
    }

    fn begin_entry(&mut self) -> usize {
        if self.count > 0 {
            self.canonical.out.push(b',');
        }
        self.count += 1;
        self.canonical.out.len()
    }

    fn end_entry(&mut self, start: usize, key_end: usize) {
        let end = self.canonical.out.len();
        self.canonical.entries.push(Entry {
            start,
            key_end,
            end,
        });
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        if self.special != Special::None {
            return self.special_field(value);
        }
        if let Some(last) = self.last_field {
            if self.sorted && key_order(last, key) != Ordering::Less {
                self.sorted = false;
                if !self.canonical.noting_fields {
                    self.canonical.again = true;
                }
            }
        }
        self.last_field = Some(key);
        let start = self.begin_entry();
        write_str(&mut self.canonical.out, key);
        let key_end = self.canonical.out.len();
        self.canonical.out.push(b':');
        value.serialize(&mut *self.canonical)?;
        if self.canonical.noting_fields {
            self.end_entry(start, key_end);
        }
        Ok(())
    }

    #[cold]
    fn special_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let serde_json::Value::String(text) = serde_json::to_value(value)? else {
            return Err(error("a serde_json number or raw value that is not text"));
        };
        match self.special {
            Special::Number => self.canonical.write_number_text(&text),
            _ => self.canonical.write_raw_json(&text),
        }
    }

    fn close(self) -> Result<(), Error> {
        if self.special != Special::None {
            return Ok(());
        }
        // A struct out of order on the first pass is written again anyway.
        if !self.sorted && !self.canonical.again {
            self.canonical.sort_object(self.first);
        }
        self.canonical.entries.truncate(self.first);
        self.canonical.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeMap for Object<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        let start = self.begin_entry();
        key.serialize(MapKey(&mut self.canonical.out))?;
        self.key = (start, self.canonical.out.len());
        self.canonical.out.push(b':');
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(&mut *self.canonical)?;
        let (start, key_end) = self.key;
        if self.sorted {
            if let Some(last) = self.canonical.entries[self.first..].last() {
                let (out, last) = (&self.canonical.out, *last);
                if written_key_order(
                    &out[last.start + 1..last.key_end - 1],
                    &out[start + 1..key_end - 1],
                ) != Ordering::Less
                {
                    self.sorted = false;
                }
            }
        }
        self.end_entry(start, key_end);
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        self.close()
    }
}

/// A struct and a struct variant's fields, written the same way.
macro_rules! fields {
    ($($kind:ident),*) => {$(
        impl ser::$kind for Object<'_> {
            type Ok = ();
            type Error = Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Error> {
                self.field(key, value)
            }

            fn end(self) -> Result<(), Error> {
                self.close()
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

/// Writes a map's key: a string, or what `serde_json` also turns into one (a character, a
/// number, a boolean, a unit variant).
struct MapKey<'a>(&'a mut Vec<u8>);

impl MapKey<'_> {
    fn quoted(self, text: impl Display) -> Result<(), Error> {
        write_str(self.0, &text.to_string());
        Ok(())
    }
}

/// Map keys that `serde_json` writes as their text, quoted.
macro_rules! quoted {
    ($($method:ident: $kind:ty),*) => {$(
        fn $method(self, value: $kind) -> Result<(), Error> {
            self.quoted(value)
        }
    )*};
}

fn key_must_be_a_string() -> Error {
    error("key must be a string")
}

impl ser::Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = ser::Impossible<(), Error>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_str(self, value: &str) -> Result<(), Error> {
        write_str(self.0, value);
        Ok(())
    }

    fn serialize_char(self, value: char) -> Result<(), Error> {
        write_str(self.0, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }

    quoted!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128
    );

    fn serialize_f32(self, _: f32) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_f64(self, _: f64) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_bytes(self, _: &[u8]) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_none(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit(self) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
        Err(key_must_be_a_string())
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_must_be_a_string())
    }
}

#[cfg(test)]
pub(super) mod tests {
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
    pub(in crate::event) fn full_event() -> crate::event::AuditEvent {
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
        event.scopes.granted = Some(vec!["orders:read".into()].into());
        event.scopes.required = Some(vec!["orders:read".into()].into());
        event.scopes.used = Some(vec!["orders:read".into()].into());
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
        token.unverified = Some(Box::new(UnverifiedClaims {
            subject: Some("alice".into()),
            client_id: Some("orders-web".into()),
            delegation: Vec::new(),
            scopes: vec!["orders:read".into()],
        }));
        event.token = Some(token.into());
        event.refresh_token = Some(Box::new(TokenRef::new(TokenFingerprint::of("refresh-2"))));
        event.oauth = Some(Box::new(OAuthDetails {
            presented_refresh_token: Some(TokenRef::new(TokenFingerprint::of("refresh-1"))),
            resource: vec!["https://orders.example.com/".into()],
            repeated_parameters: vec!["scope".into()],
            ..OAuthDetails::default()
        }));
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
        event.chain = Some(Box::new(ChainLink {
            stream: "s".into(),
            seq: 2,
            prev: Some(EventHash::of_bytes(b"1")),
        }));
        event.labels.insert("region".into(), "eu".into());
        event.labels.insert("tenant".into(), "acme".into());
        event
    }

    #[test]
    fn events_are_written_in_one_pass_without_sorting() {
        let event = full_event();
        let mut canonical = Canonical::default();
        canonical.serialize(&event).unwrap();
        assert_eq!(
            canonical.sorted_objects,
            0,
            "keys out of order in {}",
            String::from_utf8_lossy(&canonical.out)
        );
        let value = serde_json::to_value(&event).unwrap();
        agrees_with_the_oracle(&value);
        assert_eq!(canonical.out, canonical_json(&value).unwrap());
    }

    #[test]
    fn values_out_of_order_are_put_in_order() {
        #[derive(serde::Serialize)]
        struct Unsorted {
            z: u8,
            a: Vec<Unsorted>,
        }
        #[derive(serde::Serialize)]
        enum Variants {
            Struct { z: u8, a: u8 },
            Tuple(u8, Unsorted),
            Newtype(Unsorted),
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
        // What was put in order does not leak into the next value.
        assert_eq!(canonical.write(&json!({"b": 1})).unwrap(), br#"{"b":1}"#);
        for value in [
            Variants::Struct { z: 1, a: 2 },
            Variants::Tuple(3, Unsorted { z: 4, a: vec![] }),
            Variants::Newtype(Unsorted { z: 5, a: vec![] }),
        ] {
            let expected = canonical_json(&serde_json::to_value(&value).unwrap()).unwrap();
            assert_eq!(canonical.write(&value).unwrap(), expected);
        }
        assert_eq!(
            canonical.write(&Variants::Struct { z: 1, a: 2 }).unwrap(),
            br#"{"Struct":{"a":2,"z":1}}"#
        );
    }

    #[test]
    fn map_keys_and_raw_values_are_written_as_serde_json_reads_them() {
        use std::collections::BTreeMap;
        let numbers: BTreeMap<i32, bool> = [(10, true), (9, false), (-1, true)].into();
        // "-1" < "10" < "9" as strings.
        assert_eq!(
            canonical_json(&numbers).unwrap(),
            br#"{"-1":true,"10":true,"9":false}"#
        );
        let raw = serde_json::value::RawValue::from_string(r#"{ "b" : 1.50, "a" : [ ] }"#.into())
            .unwrap();
        assert_eq!(canonical_json(&raw).unwrap(), br#"{"a":[],"b":1.5}"#);
        let floats: BTreeMap<String, f64> = [("x".to_string(), f64::NAN)].into();
        assert_eq!(canonical_json(&floats).unwrap(), br#"{"x":null}"#);
        let bad: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into();
        assert!(canonical_json(&bad).is_err());
    }

    #[test]
    fn escapes_are_found_at_every_place_in_long_strings() {
        for c in [
            '"',
            '\\',
            '\n',
            '\u{1}',
            '\u{1f}',
            '\u{7f}',
            'é',
            '\u{10000}',
        ] {
            for before in 0..20 {
                for after in [0, 1, 7, 8, 9, 17] {
                    let text = format!("{}{c}{}", "x".repeat(before), "y".repeat(after));
                    agrees_with_the_oracle(&json!({ "k": text.clone(), text: [c.to_string()] }));
                }
            }
        }
    }

    #[test]
    fn thousandths_print_as_ecmascript_prints_them() {
        for value in [
            0.0,
            -0.0,
            0.001,
            0.01,
            0.1,
            0.171,
            1.0,
            2.5,
            10.25,
            999_999_999_999.999,
        ] {
            let ours = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
            assert_eq!(ours, ryu_js::Buffer::new().format_finite(value), "{value}");
        }
        // Not whole thousandths, or out of the range: the general path.
        for value in [0.0001, 0.1234, 1e15, 1e21, -0.5, f64::MIN_POSITIVE] {
            assert_eq!(super::whole_thousandths(value), None, "{value}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn any_value_agrees_with_the_oracle(value in json_value()) {
            agrees_with_the_oracle(&value);
        }

        #[test]
        fn thousandths_agree_with_ryu_js(
            micros in proptest::prelude::prop_oneof![0u64..10_000_000, 0u64..1_000_000_000_000_000],
            any in proptest::prelude::any::<f64>(),
        ) {
            for value in [micros as f64 / 1000.0, any] {
                let ours = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
                let expected = if value.is_finite() {
                    ryu_js::Buffer::new().format_finite(value).to_owned()
                } else {
                    "null".to_owned()
                };
                proptest::prop_assert_eq!(ours, expected);
            }
        }

        #[test]
        fn maps_in_any_order_are_put_in_order(
            entries in proptest::collection::vec((key_text(), json_value()), 0..12)
        ) {
            let mut seen = std::collections::HashSet::new();
            let entries: Vec<(String, Value)> =
                entries.into_iter().filter(|(key, _)| seen.insert(key.clone())).collect();
            let ours = canonical_json(&Unordered(&entries)).unwrap();
            let object = Value::Object(entries.iter().cloned().collect());
            let oracle = serde_json_canonicalizer::to_string(&object).unwrap();
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), oracle);
        }
    }

    /// A map written in the order given.
    struct Unordered<'a>(&'a [(String, Value)]);

    impl serde::Serialize for Unordered<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(key, value)| (key, value)))
        }
    }

    pub(in crate::event) fn key_text() -> proptest::strategy::BoxedStrategy<String> {
        use proptest::strategy::Strategy;
        proptest::string::string_regex(
            "([a-c]|[\\x00-\\x1f\"\\\\\u{e000}\u{ffff}\u{10000}\u{10400}]|.){0,10}",
        )
        .unwrap()
        .boxed()
    }

    /// Any JSON value, with the characters RFC 8785 treats specially in strings and keys.
    pub(crate) fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = key_text();
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            // Durations in milliseconds, rounded to microseconds as events carry them.
            (0u64..10_000_000_000).prop_map(|us| Value::from(us as f64 / 1000.0)),
            any::<String>().prop_map(Value::from),
            text.clone().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                proptest::collection::vec((text.clone(), inner), 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
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
