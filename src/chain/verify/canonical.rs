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
//! - **A number not written as RFC 8785 writes it.** RFC 8785 writes numbers as IEEE 754
//!   doubles, so several texts read as the same double and hash the same: `9007199254740992`
//!   and `9007199254740993`, `18446744073709552000` and `18446744073709552001`, `0.1` and
//!   `0.10000000000000001`. The chain writes every number in its canonical form, so
//!   [`hash_line`] refuses a line with any number written otherwise (the numbers of the
//!   line, as texts, must be those of its canonical form), and [`Canonicalizer::hash_as_written`],
//!   which sees only a `Value`, refuses an integer whose digits are not its canonical form
//!   (a double keeps no text to compare).

use std::fmt;

use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::event::{Canonicalizer as Writer, EventHash};

/// Integers up to this magnitude are their own double, written as their digits.
const EXACT: u64 = 1 << 53;

/// Hashes values, reusing one writer.
#[derive(Default)]
pub(super) struct Canonicalizer {
    writer: Writer,
}

impl Canonicalizer {
    /// The value's [`EventHash`], the same as [`EventHash::of_json`] gives, for a value
    /// whose numbers are written as RFC 8785 writes them: its integers' digits (all that a
    /// `Value` keeps of a number's text), and when it was read from `line`, every number
    /// of the line as a text (see [`hash_line`]).
    ///
    /// # Errors
    ///
    /// [`ParseError::NotCanonicalNumber`] for a number not written in its canonical form
    /// (`9007199254740993`, whose double is written `9007199254740992`; `5.0` for `5`);
    /// [`ParseError::Json`] should the writer fail (it does not for a `Value`).
    pub(super) fn hash_as_written(
        &mut self,
        value: &Value,
        line: Option<&[u8]>,
    ) -> Result<EventHash, ParseError> {
        hash_with(&mut self.writer, value, line).map(|(hash, _)| hash)
    }
}

/// [`Canonicalizer::hash_as_written`] with `writer`, and whether `line` is the canonical
/// form byte for byte.
fn hash_with(
    writer: &mut Writer,
    value: &Value,
    line: Option<&[u8]>,
) -> Result<(EventHash, bool), ParseError> {
    check_integers(value, writer)?;
    let canonical = writer.write(value).map_err(ParseError::Json)?;
    let as_written = line == Some(canonical);
    if let Some(number) = line
        .filter(|_| !as_written)
        .and_then(|line| odd_number(line, canonical))
    {
        return Err(ParseError::NotCanonicalNumber(number));
    }
    Ok((EventHash::of_bytes(canonical), as_written))
}

/// The hash of a line's canonical form, or `None` when the line is not a JSON value, has an
/// object with a key twice, or has a number not written in its canonical form (see
/// [`parse_event`] and [`Canonicalizer::hash_as_written`]). For the rare line whose bytes'
/// hash was not the chained one.
#[cfg(test)]
pub(super) fn hash_line(line: &[u8]) -> Option<EventHash> {
    canonical_hash(line).map(|(hash, _)| hash)
}

thread_local! {
    /// The writer [`canonical_hash`] reuses: its buffers are kept from one line to the next.
    static WRITER: std::cell::RefCell<Writer> = std::cell::RefCell::new(Writer::default());
}

/// The hash of a line's canonical form (as [`hash_line`]), and whether the line is that form
/// byte for byte: when it is not, the input was rewritten by a store or a tool, and the
/// next lines' bytes are not worth hashing first.
pub(super) fn canonical_hash(line: &[u8]) -> Option<(EventHash, bool)> {
    let value = parse_event(line).ok()?;
    WRITER
        .with_borrow_mut(|writer| hash_with(writer, &value, Some(line)))
        .ok()
}

/// A number of `line` not written as in `canonical`, its canonical form, if any. The
/// numbers of both are compared as texts, in any order (keys are sorted there). RFC 8785's
/// number text is idempotent (it reads back as the same double, written the same), so
/// equal multisets mean that every number of the line is written in its canonical form.
fn odd_number(line: &[u8], canonical: &[u8]) -> Option<String> {
    let mut written = numbers(line);
    let mut expected = numbers(canonical);
    written.sort_unstable();
    expected.sort_unstable();
    if written == expected {
        return None;
    }
    // One pass over both sorted lists: the first text of the line that its canonical form
    // does not have (a line's numbers are attacker's input: no search per number).
    let mut canonical = expected.iter().peekable();
    for number in &written {
        while canonical.next_if(|c| *c < number).is_some() {}
        if canonical.next_if(|c| *c == number).is_none() {
            return Some(String::from_utf8_lossy(number).into_owned());
        }
    }
    // Every text of the line is canonical, but the canonical form has more of them.
    Some(String::new())
}

/// The texts of the numbers of a JSON text (one `serde_json` read: valid), skipping strings.
fn numbers(json: &[u8]) -> Vec<&[u8]> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(&byte) = json.get(at) {
        match byte {
            b'"' => {
                // To the closing quote, over escapes: most of an event is in its strings.
                at += 1;
                while let Some(next) = memchr::memchr2(b'"', b'\\', json.get(at..).unwrap_or(&[])) {
                    at += next;
                    if json[at] == b'"' {
                        break;
                    }
                    at += 2;
                }
                at += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = at;
                while json
                    .get(at)
                    .is_some_and(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                {
                    at += 1;
                }
                found.push(&json[start..at]);
            }
            _ => at += 1,
        }
    }
    found
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
    let parsed = crate::json::Plain::refusing_duplicates(&mut duplicate)
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
    /// A number not written as RFC 8785 writes it (its text): other texts of the same
    /// double would hash the same.
    NotCanonicalNumber(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Json(err) => err.fmt(f),
            ParseError::DuplicateKey(key) => {
                write!(f, "an object has the key {} twice", Quoted(key))
            }
            ParseError::NotCanonicalNumber(written) => write!(
                f,
                "the number {} is not written as RFC 8785 writes it: other texts of the \
                 same double would hash the same",
                Quoted(written)
            ),
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParseError::Json(err) => Some(err),
            ParseError::DuplicateKey(_) | ParseError::NotCanonicalNumber(..) => None,
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

/// Fails on the first integer whose digits are not its canonical form, looking through
/// every array and object.
fn check_integers(value: &Value, writer: &mut Writer) -> Result<(), ParseError> {
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        match value {
            Value::Number(number) => {
                let magnitude = match (number.as_u64(), number.as_i64()) {
                    (Some(n), _) => n,
                    (None, Some(n)) => n.unsigned_abs(),
                    // A double keeps no text to compare.
                    (None, None) => continue,
                };
                if magnitude <= EXACT {
                    continue;
                }
                let digits = number.to_string();
                let canonical = writer.write(number).map_err(ParseError::Json)?;
                if canonical != digits.as_bytes() {
                    return Err(ParseError::NotCanonicalNumber(digits));
                }
            }
            Value::Array(items) => pending.extend(items),
            Value::Object(entries) => pending.extend(entries.values()),
            Value::Null | Value::Bool(_) | Value::String(_) => {}
        }
    }
    Ok(())
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
        fn any_value_written_by_serde_json_reads_back_the_same(
            value in crate::event::any_json_value()
        ) {
            for text in [serde_json::to_vec(&value).unwrap(), serde_json::to_vec_pretty(&value).unwrap()] {
                proptest::prop_assert_eq!(&parse_event(&text).unwrap(), &value);
                proptest::prop_assert_eq!(
                    parse_event(&text).unwrap(),
                    serde_json::from_slice::<Value>(&text).unwrap()
                );
            }
        }
    }

    fn hash(value: Value) -> Result<EventHash, ParseError> {
        Canonicalizer::default().hash_as_written(&value, None)
    }

    fn refused(value: Value) -> String {
        match hash(value) {
            Err(err @ ParseError::NotCanonicalNumber(..)) => err.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn integers_written_in_their_canonical_form_are_hashed() {
        const SAFE: u64 = (1 << 53) - 1;
        for value in [
            json!(SAFE),
            json!(-(SAFE as i64)),
            json!(1_u64 << 53),
            json!(-(1_i64 << 53)),
            json!({"n": SAFE, "m": [-(SAFE as i64), 0, -1, 1]}),
            json!(0),
            json!(i64::from(i32::MIN)),
            // 2^60 as RFC 8785 writes it: digits that read as an integer, and are its double's.
            serde_json::from_str::<Value>("1152921504606847000").unwrap(),
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
    fn integers_not_written_as_their_double_are_refused() {
        assert_eq!(
            refused(json!(9007199254740993_u64)),
            "the number \"9007199254740993\" is not written as RFC 8785 writes it: other \
             texts of the same double would hash the same"
        );
        // 2^53 + 1 is written as 2^53: an edit from one to the other would keep the hash.
        assert_eq!(
            canonical_json(&json!(1_u64 << 53)).unwrap(),
            canonical_json(&json!((1_u64 << 53) + 1)).unwrap()
        );
        refused(json!(u64::MAX));
        refused(json!(-(1_i64 << 53) - 1));
        refused(json!(i64::MIN));
        refused(json!(1_u64 << 60));
        // At any depth.
        refused(json!({"a": [1, {"b": [[(1_u64 << 53) + 1]]}]}));
        refused(json!([1, 2, -(1_i64 << 60)]));
    }

    #[test]
    fn numbers_are_found_outside_strings_only() {
        assert_eq!(
            numbers(br#"{"a1":-1.5e+3,"b":"x\"2\\","c":[0,12],"d":true}"#),
            [&b"-1.5e+3"[..], b"0", b"12"]
        );
        assert_eq!(odd_number(br#"{"b":2,"a":1}"#, br#"{"a":1,"b":2}"#), None);
        assert_eq!(
            odd_number(b"[1,1,2]", b"[1,2,2]").as_deref(),
            Some("1"),
            "counted, not only looked up"
        );
        // Many numbers, one not canonical: one pass over both lists.
        let many: Vec<String> = (0..200_000).map(|n| n.to_string()).collect();
        let canonical = format!("[{}]", many.join(","));
        let written = format!("[{},5.0]", many[..many.len() - 1].join(","));
        let canonical = canonical.replacen(&format!(",{}]", many.len() - 1), ",5]", 1);
        assert_eq!(
            odd_number(written.as_bytes(), canonical.as_bytes()).as_deref(),
            Some("5.0")
        );
        assert_eq!(
            odd_number(br#"{"b":2,"a":1.0}"#, br#"{"a":1,"b":2}"#).as_deref(),
            Some("1.0")
        );
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
    fn an_edit_to_another_text_of_the_same_number_does_not_verify() {
        for (value, written, edited) in [
            (json!(1_u64 << 53), "9007199254740992", "9007199254740993"),
            (
                json!(-(1_i64 << 53)),
                "-9007199254740992",
                "-9007199254740993",
            ),
            // Past u64, the chain writes the double (`u64::MAX` is written as 2^64).
            (
                json!(u64::MAX),
                "18446744073709552000",
                "18446744073709552001",
            ),
            (
                json!(u64::MAX),
                "18446744073709552000",
                "18446744073709551615",
            ),
            (json!(0.1), "0.1", "0.10000000000000001"),
            (json!(0.1), "0.1", "1e-1"),
            (json!(100), "100", "1e2"),
        ] {
            let mut event = event();
            event["count"] = value;
            let (line, chained) = chained_line(&event);
            let text = String::from_utf8(line).unwrap();
            assert!(text.contains(&format!(r#""count":{written}"#)), "{text}");
            assert_eq!(hash_line(text.as_bytes()), Some(chained), "{written}");
            let forged = text.replace(
                &format!(r#""count":{written}"#),
                &format!(r#""count":{edited}"#),
            );
            // As `serde_json` reads it and RFC 8785 writes it, the edit keeps the hash…
            let lenient: Value = serde_json::from_str(&forged).unwrap();
            assert_eq!(EventHash::of_json(&lenient).unwrap(), chained, "{edited}");
            // …and the verifier does not hash it.
            assert_eq!(hash_line(forged.as_bytes()), None, "{edited}");
        }

        // Below 2^53, every integer is its own double, and an edit changes the hash.
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
