//! The hash of an event read back as a [`serde_json::Value`].
//!
//! The same RFC 8785 writer as the chain's (`event/canonical.rs`), with its buffers kept
//! from one event to the next: a trail is millions of events.
//!
//! A canonical form stands for every text that reads as it, so the verifier refuses the
//! texts that would let an edit keep the hash while changing what some reader sees:
//!
//! - **The same key twice in an object.** `serde_json` keeps the last one and a reader may
//!   take the first: an entry put before the chained one would leave the hash as it was.
//!   [`parse_event`] reads a line as `serde_json` does (its lexer, its depth limit of 127
//!   nested arrays and objects) but fails on a key repeated in any object.
//! - **Integers of 2^53 or more in magnitude.** RFC 8785 writes numbers as IEEE 754
//!   doubles, and 2^53 and 2^53 + 1 are the same double: [`Canonicalizer::hash`] refuses
//!   an integer outside ±(2^53 − 1) (JavaScript's `Number.MAX_SAFE_INTEGER`), the range in
//!   which every integer is its own double. The event model keeps its integers there.
//!
//! What is left: a number `serde_json` reads as a double (one with a fraction or an
//! exponent, or an integer past the range of u64 and i64) is hashed as that double, and
//! the `Value` does not keep its text, so another text of the same double (`0.1` and
//! `0.10000000000000001`, `18446744073709552000` and `18446744073709552001`) hashes the
//! same. A reader that takes numbers as doubles sees no difference.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{map::Entry, Map, Number, Value};

use crate::event::{Canonicalizer as Writer, EventHash};

/// The least magnitude of an integer refused: 2^53, the first one that shares its double
/// (2^53 + 1 rounds to it).
const INEXACT_FROM: u64 = 1 << 53;

/// Hashes values, reusing one writer.
#[derive(Default)]
pub(super) struct Canonicalizer {
    writer: Writer,
}

impl Canonicalizer {
    /// The value's [`EventHash`], the same as [`EventHash::of_json`] gives, for a value
    /// whose numbers RFC 8785 writes exactly.
    ///
    /// # Errors
    ///
    /// [`ParseError::InexactInteger`] for an integer (at any depth) outside ±(2^53 − 1),
    /// whose canonical form it would share with its neighbours; [`ParseError::Json`] should
    /// the writer fail (it does not for a `Value`).
    pub(super) fn hash(&mut self, value: &Value) -> Result<EventHash, ParseError> {
        check_numbers(value)?;
        let canonical = self.writer.write(value).map_err(ParseError::Json)?;
        Ok(EventHash::of_bytes(canonical))
    }
}

/// The hash of a line's canonical form, or `None` when the line is not a JSON value, has an
/// object with a key twice, or has an integer RFC 8785 cannot hash exactly (see
/// [`parse_event`] and [`Canonicalizer::hash`]). For the rare line whose bytes' hash was
/// not the chained one: the buffers are not kept.
pub(super) fn hash_line(line: &[u8]) -> Option<EventHash> {
    let value = parse_event(line).ok()?;
    Canonicalizer::default().hash(&value).ok()
}

/// A line read as a JSON value, as `serde_json::from_slice::<Value>` reads it (the same
/// lexer, numbers, escapes, depth limit of 127 nested arrays and objects, and refusal of
/// trailing characters), except that an object with the same key twice, at any depth, is
/// an error. Keys are compared as read, after their escapes: `"http"` and `"\u0068ttp"`
/// are the same key.
///
/// One more difference: with `serde_json`'s `raw_value` feature (which this crate turns on),
/// `serde_json`'s own `Value` reads an object whose first key is
/// `"$serde_json::private::RawValue"` as the JSON text in its string; here it is an ordinary
/// object, as any other reader sees it.
///
/// # Errors
///
/// [`ParseError::DuplicateKey`] for a key repeated in an object, [`ParseError::Json`] for
/// anything `serde_json` refuses.
pub(super) fn parse_event(line: &[u8]) -> Result<Value, ParseError> {
    let mut duplicate = None;
    let mut deserializer = serde_json::Deserializer::from_slice(line);
    let parsed = Strict {
        duplicate: &mut duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate) {
        (_, Some(key)) => Err(ParseError::DuplicateKey(key)),
        (Ok(value), None) => Ok(value),
        (Err(err), None) => Err(ParseError::Json(err)),
    }
}

/// Why a line or a value cannot be hashed as the verifier hashes events.
#[derive(Debug)]
pub(super) enum ParseError {
    /// Not JSON, or refused by `serde_json` (its message, with the line and column).
    Json(serde_json::Error),
    /// An object has this key twice.
    DuplicateKey(String),
    /// An integer outside ±(2^53 − 1), which RFC 8785 writes as a double it shares with
    /// other integers.
    InexactInteger(Number),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Json(err) => err.fmt(f),
            ParseError::DuplicateKey(key) => {
                write!(f, "an object has the key {} twice", Quoted(key))
            }
            ParseError::InexactInteger(number) => write!(
                f,
                "the integer {number} is beyond ±(2^53 - 1): RFC 8785 cannot hash it exactly"
            ),
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParseError::Json(err) => Some(err),
            ParseError::DuplicateKey(_) | ParseError::InexactInteger(_) => None,
        }
    }
}

/// A key in quotes for a message, its control characters escaped and cut after 64
/// characters: it comes from the line being checked.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 64;
        f.write_str("\"")?;
        for c in self.0.chars().take(SHOWN) {
            match c {
                '"' | '\\' => write!(f, "\\{c}")?,
                c if c.is_control() => write!(f, "{}", c.escape_unicode())?,
                c => write!(f, "{c}")?,
            }
        }
        if self.0.chars().nth(SHOWN).is_some() {
            f.write_str("…")?;
        }
        f.write_str("\"")
    }
}

/// Fails on the first integer outside ±(2^53 − 1), looking through every array and object.
fn check_numbers(value: &Value) -> Result<(), ParseError> {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Number(number) => {
                let exact = match (number.as_u64(), number.as_i64()) {
                    (Some(n), _) => n < INEXACT_FROM,
                    (None, Some(n)) => n.unsigned_abs() < INEXACT_FROM,
                    // A double is hashed as itself.
                    (None, None) => true,
                };
                if !exact {
                    return Err(ParseError::InexactInteger(number.clone()));
                }
            }
            Value::Array(items) => pending.extend(items),
            Value::Object(entries) => pending.extend(entries.values()),
            Value::Null | Value::Bool(_) | Value::String(_) => {}
        }
    }
    Ok(())
}

/// Reads any JSON value as `serde_json`'s `Value` does, refusing an object's key the second
/// time; the key is left in `duplicate` (the error itself can only carry a message).
struct Strict<'a> {
    duplicate: &'a mut Option<String>,
}

impl Strict<'_> {
    /// The same, for a value inside this one.
    fn nested(&mut self) -> Strict<'_> {
        Strict {
            duplicate: &mut *self.duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        // `serde_json` counts the depth here, as for its own `Value`.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // As `serde_json`'s `Value` (its parser refuses numbers out of range before this).
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.nested())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                Entry::Vacant(entry) => {
                    entry.insert(map.next_value_seed(self.nested())?);
                }
                Entry::Occupied(entry) => {
                    let key = entry.key().clone();
                    let message = format!("an object has the key {} twice", Quoted(&key));
                    *self.duplicate = Some(key);
                    return Err(de::Error::custom(message));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::event::canonical_json;

    const STREAM: &str = "0193a0c0-0000-7000-8000-000000000000";

    /// A chained event as the chain writes it (its canonical JSON), and its hash.
    fn chained_line(event: &Value) -> (Vec<u8>, EventHash) {
        let line = canonical_json(event).unwrap();
        let hash = EventHash::of_bytes(&line);
        assert_eq!(hash, EventHash::of_json(event).unwrap());
        (line, hash)
    }

    fn event() -> Value {
        json!({
            "kind": "ResourceAccessed",
            "chain": {"stream": STREAM, "seq": 2, "prev": EventHash::of_bytes(b"one").to_string()},
            "http": {"status": 200, "path": "/orders", "method": "GET"},
            "latency": {"duration_ms": 1.25},
            "labels": {"tenant": "a\u{e9}\u{1f600}\"\\\n"},
            "scopes": ["read", "write"],
            "repeated": null,
        })
    }

    /// `line` with `text` put right after its opening brace.
    fn prepend(line: &[u8], text: &str) -> Vec<u8> {
        assert_eq!(line[0], b'{');
        [b"{", text.as_bytes(), &line[1..]].concat()
    }

    fn duplicate(line: &str) -> String {
        match parse_event(line.as_bytes()) {
            Err(ParseError::DuplicateKey(key)) => key,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn a_key_twice_at_the_top_is_refused() {
        assert_eq!(duplicate(r#"{"a":1,"a":2}"#), "a");
        assert_eq!(duplicate(r#"{"a":1,"b":2,"a":1}"#), "a");
        assert_eq!(duplicate(r#" { "a" : {} , "a" : [] } "#), "a");
        // The same key, however it is escaped.
        assert_eq!(duplicate(r#"{"http":1,"\u0068ttp":2}"#), "http");
        assert_eq!(duplicate(r#"{"\ud83d\ude00":1,"😀":2}"#), "😀");
        assert_eq!(
            parse_event(br#"{"http":{"status":500},"http":{"status":200}}"#)
                .unwrap_err()
                .to_string(),
            r#"an object has the key "http" twice"#
        );
    }

    #[test]
    fn a_key_twice_at_any_depth_is_refused() {
        assert_eq!(duplicate(r#"{"x":{"y":[{"k":1,"k":1}]}}"#), "k");
        assert_eq!(duplicate(r#"[[[{"a":{"b":{"b":null,"b":null}}}]]]"#), "b");
        assert_eq!(
            duplicate(r#"{"http":{"status":200,"status":500}}"#),
            "status"
        );
        // Found where the key comes, before the end of a line cut short.
        assert_eq!(duplicate(r#"{"a":1,"a":2,"#), "a");
        // The same key in different objects is fine.
        let value = parse_event(br#"{"a":{"a":1},"b":[{"a":2},{"a":3}]}"#).unwrap();
        assert_eq!(value, json!({"a": {"a": 1}, "b": [{"a": 2}, {"a": 3}]}));
    }

    #[test]
    fn a_message_shows_the_key_without_what_could_mislead() {
        let message = parse_event(br#"{"a\n\"b":1,"a\n\"b":2}"#)
            .unwrap_err()
            .to_string();
        assert_eq!(message, r#"an object has the key "a\u{a}\"b" twice"#);
        let long = "k".repeat(1000);
        let message = parse_event(format!(r#"{{"{long}":1,"{long}":2}}"#).as_bytes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            format!("an object has the key \"{}…\" twice", &long[..64])
        );
    }

    /// What `serde_json` reads, for texts without a key twice: the same value or an error.
    fn reads_as_serde_json(text: &[u8]) {
        let ours = parse_event(text);
        match serde_json::from_slice::<Value>(text) {
            Ok(theirs) => assert_eq!(ours.unwrap(), theirs, "{}", String::from_utf8_lossy(text)),
            Err(theirs) => match ours {
                Err(ParseError::Json(ours)) => {
                    assert_eq!(ours.to_string(), theirs.to_string());
                }
                other => panic!("{}: {other:?}", String::from_utf8_lossy(text)),
            },
        }
    }

    #[test]
    fn other_lines_read_as_serde_json_reads_them() {
        let (line, _) = chained_line(&event());
        reads_as_serde_json(&line);
        reads_as_serde_json(&serde_json::to_vec_pretty(&event()).unwrap());
        for text in [
            "null",
            "true",
            " false ",
            "0",
            "-0",
            "-0.0",
            "1.5e-7",
            "1E400",
            "-1e400",
            "1e-400",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775808",
            "-9223372036854775809",
            "0.1000000000000000055511151231257827",
            r#""\u00e9\ud83d\ude00\n\"\\\/""#,
            r#""\ud800""#,
            "\"\u{7f}\"",
            "\"a\tb\"",
            "[]",
            "{}",
            r#"{"":[{}, [], ""]}"#,
            r#"{"a":1,}"#,
            "[1,]",
            r#"{"a":1} x"#,
            r#"{"a":1}{"a":1}"#,
            r#"{"a" 1}"#,
            "{1:2}",
            "",
            "   ",
            "nul",
            "01",
            "\u{feff}{}",
            "[1, 2, 3] ",
        ] {
            reads_as_serde_json(text.as_bytes());
        }
        reads_as_serde_json(b"\"\xff\"");
        reads_as_serde_json(b"{\"a\xc3\":1}");
    }

    #[test]
    fn the_depth_limit_is_serde_jsons() {
        for depth in [1, 126, 127, 128, 129, 130, 1000] {
            for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
                let text = format!("{}1{}", open.repeat(depth), close.repeat(depth));
                reads_as_serde_json(text.as_bytes());
            }
        }
        // `serde_json`'s limit of 128 counts down on entering an array or object and fails
        // when it reaches 0: 127 levels are read, 128 are not.
        let deepest = format!("{}{}", "[".repeat(127), "]".repeat(127));
        assert!(parse_event(deepest.as_bytes()).is_ok());
        let deeper = format!("{}{}", "[".repeat(128), "]".repeat(128));
        assert!(parse_event(deeper.as_bytes())
            .unwrap_err()
            .to_string()
            .starts_with("recursion limit exceeded"));
        // Unclosed, far past the limit: refused without exhausting the stack.
        let unclosed = r#"{"a":["#.repeat(100_000);
        assert!(matches!(
            parse_event(unclosed.as_bytes()),
            Err(ParseError::Json(_))
        ));
    }

    #[test]
    fn serde_jsons_raw_value_key_is_an_ordinary_key() {
        let text = br#"{"$serde_json::private::RawValue":"{\"a\":1}"}"#;
        assert_eq!(
            parse_event(text).unwrap(),
            json!({"$serde_json::private::RawValue": "{\"a\":1}"})
        );
    }

    proptest::proptest! {
        #[test]
        fn any_value_written_by_serde_json_reads_back_the_same(value in json_value()) {
            for text in [serde_json::to_vec(&value).unwrap(), serde_json::to_vec_pretty(&value).unwrap()] {
                proptest::prop_assert_eq!(&parse_event(&text).unwrap(), &value);
                proptest::prop_assert_eq!(
                    parse_event(&text).unwrap(),
                    serde_json::from_slice::<Value>(&text).unwrap()
                );
            }
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                proptest::collection::btree_map("[a-c\"\\\\\u{0}-\u{1f}\u{e9}]{0,3}", inner, 0..8)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn hash(value: Value) -> Result<EventHash, ParseError> {
        Canonicalizer::default().hash(&value)
    }

    fn refused(value: Value) -> String {
        match hash(value) {
            Err(err @ ParseError::InexactInteger(_)) => err.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn integers_below_2_pow_53_are_hashed() {
        const SAFE: u64 = (1 << 53) - 1;
        for value in [
            json!(SAFE),
            json!(-(SAFE as i64)),
            json!({"n": SAFE, "m": [-(SAFE as i64), 0, -1, 1]}),
            json!(0),
            json!(i64::from(i32::MIN)),
            // Doubles are hashed as themselves, whatever their size.
            json!(1e25),
            json!(-1e300),
            json!(0.1),
        ] {
            assert_eq!(
                hash(value.clone()).unwrap(),
                EventHash::of_json(&value).unwrap()
            );
        }
    }

    #[test]
    fn integers_from_2_pow_53_up_are_refused() {
        assert_eq!(
            refused(json!(9007199254740993_u64)),
            "the integer 9007199254740993 is beyond ±(2^53 - 1): RFC 8785 cannot hash it exactly"
        );
        // 2^53 is a double of its own, but 2^53 + 1 is written as it: an edit from one to
        // the other would keep the hash.
        assert_eq!(
            canonical_json(&json!(1_u64 << 53)).unwrap(),
            canonical_json(&json!((1_u64 << 53) + 1)).unwrap()
        );
        refused(json!(1_u64 << 53));
        refused(json!(u64::MAX));
        refused(json!(-(1_i64 << 53)));
        refused(json!(-(1_i64 << 53) - 1));
        refused(json!(i64::MIN));
        // At any depth.
        refused(json!({"a": [1, {"b": [[1_u64 << 53]]}]}));
        refused(json!([1, 2, -(1_i64 << 60)]));
    }

    #[test]
    fn a_line_reformatted_hashes_as_written() {
        let (line, chained) = chained_line(&event());
        let value: Value = serde_json::from_slice(&line).unwrap();
        let reformatted = serde_json::to_vec_pretty(&value).unwrap();
        assert_ne!(EventHash::of_bytes(&reformatted), chained);
        assert_eq!(hash_line(&reformatted), Some(chained));
        assert_eq!(hash_line(&line), Some(chained));
    }

    #[test]
    fn an_entry_put_before_the_chained_one_does_not_verify() {
        let (line, chained) = chained_line(&event());
        let edited = prepend(&line, r#""http":{"status":500,"path":"/evil"},"#);
        // As `serde_json` reads it, the last `http` is kept and the hash is the chained one…
        let lenient: Value = serde_json::from_slice(&edited).unwrap();
        assert_eq!(EventHash::of_json(&lenient).unwrap(), chained);
        // …while a reader that keeps the first sees the forged one.
        let first = edited.windows(6).position(|w| w == br#""http""#).unwrap();
        assert!(edited[first..].starts_with(br#""http":{"status":500"#));
        assert_eq!(hash_line(&edited), None);
        assert_eq!(
            parse_event(&edited).unwrap_err().to_string(),
            r#"an object has the key "http" twice"#
        );

        // Nested: a second `status` inside the chained `http`.
        let nested = String::from_utf8(line.clone()).unwrap().replacen(
            r#""http":{"#,
            r#""http":{"status":500,"#,
            1,
        );
        let lenient: Value = serde_json::from_slice(nested.as_bytes()).unwrap();
        assert_eq!(EventHash::of_json(&lenient).unwrap(), chained);
        assert_eq!(hash_line(nested.as_bytes()), None);
    }

    #[test]
    fn an_edit_of_an_integer_past_2_pow_53_does_not_verify() {
        for (written, edited) in [
            ("9007199254740992", "9007199254740993"),
            ("-9007199254740992", "-9007199254740993"),
        ] {
            let mut event = event();
            event["count"] = serde_json::from_str(written).unwrap();
            let (line, chained) = chained_line(&event);
            let text = String::from_utf8(line).unwrap();
            let canonical = canonical_json(&event["count"]).unwrap();
            let canonical = std::str::from_utf8(&canonical).unwrap();
            let forged = text.replace(
                &format!(r#""count":{canonical}"#),
                &format!(r#""count":{edited}"#),
            );
            assert_ne!(forged, text);
            // As `serde_json` reads it and RFC 8785 writes it, the edit keeps the hash…
            let lenient: Value = serde_json::from_str(&forged).unwrap();
            assert_eq!(EventHash::of_json(&lenient).unwrap(), chained, "{edited}");
            // …and the verifier hashes neither.
            assert_eq!(hash_line(forged.as_bytes()), None, "{edited}");
            assert_eq!(hash_line(text.as_bytes()), None, "{written}");
        }
        // Past u64, the chain writes the double (`18446744073709552000` for `u64::MAX`):
        // an edit to an integer `serde_json` reads as a `u64` does not verify…
        let mut past_u64 = event();
        past_u64["count"] = json!(u64::MAX);
        let (line, chained) = chained_line(&past_u64);
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains(r#""count":18446744073709552000"#));
        assert_eq!(hash_line(text.as_bytes()), Some(chained));
        let forged = text.replace("18446744073709552000", "18446744073709551615");
        assert_eq!(hash_line(forged.as_bytes()), None);
        // …but one to another text of the same double does: `serde_json` reads integers
        // past u64 and i64 as doubles, and the `Value` does not keep the text (a caveat of
        // this check, which sees only the `Value`).
        let forged = text.replace("18446744073709552000", "18446744073709552001");
        assert_eq!(hash_line(forged.as_bytes()), Some(chained));

        // One below 2^53: every integer is its own double, and an edit changes the hash.
        let mut below = event();
        below["count"] = json!(9007199254740991_u64);
        let (line, chained) = chained_line(&below);
        assert_eq!(hash_line(&line), Some(chained));
        let text = String::from_utf8(line).unwrap();
        let forged = text.replace("9007199254740991", "9007199254740990");
        assert_ne!(hash_line(forged.as_bytes()), Some(chained));
        assert!(hash_line(forged.as_bytes()).is_some());
    }
}
