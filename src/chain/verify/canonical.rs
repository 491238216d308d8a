//! The hash of an event read back as a [`serde_json::Value`], fast: its RFC 8785 form is
//! written straight from the value into one reused buffer, then hashed.
//!
//! The general canonicaliser ([`EventHash::of_json`]) serialises every property into its
//! own buffers and parses every key again to sort it; on a trail that is most of the cost
//! of `verify`. Here, objects whose keys are all ASCII are already in RFC 8785 order
//! (for ASCII, UTF-16 code units sort as bytes do, and the map's keys are checked to be in
//! byte order), integers within 2^53 print as ECMAScript prints them, and strings escape as
//! `serde_json` escapes them, which is what RFC 8785 asks. Anything else (a non-ASCII key,
//! a larger integer) goes the general way, and fractions are printed by the general
//! canonicaliser one number at a time. The tests hold both ways to the same bytes.

use std::io::Write as _;

use serde_json::{Map, Value};

use crate::event::{canonical_json, EventHash};

/// 2^53: integers up to this print alike as integers and as ECMAScript doubles.
const MAX_EXACT: u64 = 1 << 53;

/// Hashes values, reusing one buffer.
#[derive(Default)]
pub(super) struct Canonicalizer {
    buffer: Vec<u8>,
}

impl Canonicalizer {
    /// The value's [`EventHash`], the same as [`EventHash::of_json`] gives.
    pub(super) fn hash(&mut self, value: &Value) -> Result<EventHash, serde_json::Error> {
        self.buffer.clear();
        if write_value(value, &mut self.buffer) {
            return Ok(EventHash::of_bytes(&self.buffer));
        }
        EventHash::of_json(value)
    }
}

/// Writes the canonical form; false when the value needs the general canonicaliser.
fn write_value(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => {
            if let Some(n) = number.as_u64() {
                if n > MAX_EXACT {
                    return false;
                }
                let _ = write!(out, "{n}");
            } else if let Some(n) = number.as_i64() {
                if n.unsigned_abs() > MAX_EXACT {
                    return false;
                }
                let _ = write!(out, "{n}");
            } else {
                match canonical_json(number) {
                    Ok(text) => out.extend_from_slice(&text),
                    Err(_) => return false,
                }
            }
        }
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if !write_value(item, out) {
                    return false;
                }
            }
            out.push(b']');
        }
        Value::Object(map) => return write_object(map, out),
    }
    true
}

fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) -> bool {
    // The map's own order must be byte order (it is, unless serde_json's `preserve_order`
    // feature is on somewhere in the build), and byte order is RFC 8785's for ASCII keys.
    let mut previous: Option<&str> = None;
    for key in map.keys() {
        if !key.is_ascii() || previous.is_some_and(|p| p >= key.as_str()) {
            return false;
        }
        previous = Some(key);
    }
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        if !write_value(value, out) {
            return false;
        }
    }
    out.push(b'}');
    true
}

/// A JSON string as RFC 8785 (and `serde_json`) writes it: `"` and `\` escaped, control
/// characters as `\b \t \n \f \r` or `\u00xx`, everything else as it is.
fn write_string(text: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn both_ways(value: &Value) {
        let mut canonicalizer = Canonicalizer::default();
        assert_eq!(
            canonicalizer.hash(value).unwrap(),
            EventHash::of_json(value).unwrap(),
            "{value}"
        );
        let mut out = Vec::new();
        if write_value(value, &mut out) {
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(canonical_json(value).unwrap()).unwrap()
            );
        }
    }

    #[test]
    // 333333333.33333329 is RFC 8785's own example, written as the RFC writes it.
    #[allow(clippy::excessive_precision)]
    fn the_fast_way_writes_what_the_general_one_writes() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        let values = [
            json!(null),
            json!([true, false, 0, -1, 1, 9007199254740992u64, -9007199254740992i64]),
            json!([9007199254740993u64, -9007199254740993i64, u64::MAX, i64::MIN]),
            json!([0.108, 1e30, 4.5, 0.002, 1e-27, -0.0, 333333333.33333329, 1e21, 1e20]),
            json!({"s": every_ascii, "u": "€$\u{2028}\u{10000}é", "": ""}),
            json!({"b": {"z": [1, {"y": null}], "a": []}, "a": {}}),
            json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3}),
            json!({"k\u{7f}": "\u{7f}", "k\u{1f}": "\u{1f}"}),
            serde_json::from_str(
                r#"{"schema":"oauth-audit/1","id":"0193a0c0-1000-7000-8000-000000000001","time":"2026-12-01T12:00:00.000001Z","kind":"ResourceAccessed","outcome":"success","severity":"info","service":{"name":"orders-api"},"http":{"method":"GET","path":"/orders","status":200,"duration_ms":0.108},"chain":{"stream":"0193a0c0-0000-7000-8000-000000000000","seq":1}}"#,
            )
            .unwrap(),
        ];
        for value in &values {
            both_ways(value);
        }
        let example = &values[values.len() - 1];
        assert_eq!(
            Canonicalizer::default().hash(example).unwrap().to_string(),
            "sha256:73b7197cf7c0184e919eada6f07a398b8e6831f447499e520f728aac12077f94"
        );
    }

    #[test]
    fn every_character_escapes_alike() {
        for c in (0u32..0x800).chain([0x2028, 0x2029, 0xfeff, 0xfffd, 0x1f600]) {
            let Some(c) = char::from_u32(c) else { continue };
            both_ways(&json!({ "k": format!("a{c}b"), "l": c.to_string() }));
        }
    }
}
