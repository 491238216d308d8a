//! JSON that others wrote (a JWT's header and claims, a DPoP proof, a client assertion, a
//! server's answer, an audit line being verified), read into `serde_json::Value`s the way
//! any other JSON parser reads it.
//!
//! With `serde_json`'s `raw_value` feature, which this crate needs for token responses (and
//! Axum turns on too), `Value`'s own `Deserialize` reads an object whose first member is
//! named `$serde_json::private::RawValue` as the JSON text in that member's string:
//! `{"$serde_json::private::RawValue":"{\"sub\":\"admin\"}"}` comes out as
//! `{"sub":"admin"}`. The resource server, the authorization server and every SIEM read one
//! member with an odd name. For the claims of a token, that is a parser differential: the
//! record would name a subject, a client or scopes that the server never saw, and a rule
//! would decide on them. [`from_slice`] reads everything else as `Value` does (the same lexer,
//! numbers, escapes, depth limit, refusal of trailing characters), member names as they are.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// `bytes` as one JSON value, read as `serde_json::from_slice::<Value>` reads it except
/// that an object's members are only ever members (see the module's documentation). For
/// JSON that someone else wrote: an introspection answer that a
/// [`TokenResolver`](crate::token::TokenResolver) reads, for instance.
///
/// # Errors
///
/// Whatever `serde_json` refuses (not JSON, trailing characters, nesting past its limit),
/// with its message.
///
/// ```
/// let text = br#"{"$serde_json::private::RawValue":"{\"sub\":\"admin\"}"}"#;
/// let value = oauth_audit::json::from_slice(text).unwrap();
/// assert_eq!(value.get("sub"), None);
/// assert_eq!(value.as_object().unwrap().len(), 1);
/// // `serde_json`'s own `Value` (with its `raw_value` feature on) reads another object.
/// let theirs: serde_json::Value = serde_json::from_slice(text).unwrap();
/// assert_eq!(theirs["sub"], "admin");
/// ```
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Plain::last_wins().deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// `bytes` as one JSON object, read as [`Plain`] reads it; `None` for anything else.
pub(crate) fn object_from_slice(bytes: &[u8]) -> Option<Map<String, Value>> {
    match from_slice(bytes) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// Reads any JSON value as `serde_json`'s `Value` does, except that an object's members are
/// only ever members (see the module's documentation). Of a member given twice, the last
/// counts, as in a `Value`; or, for a reader that must refuse that, the key is left in
/// `duplicate` and the read fails (the error itself can only carry a message).
pub(crate) struct Plain<'a> {
    duplicate: Option<&'a mut Option<String>>,
    /// Set when the value read is a string handed over owned (`visit_string`): what
    /// `serde_json`'s parser does only with a number's text (see [`NUMBER_TOKEN`]).
    handed_over: Option<&'a mut bool>,
}

impl Plain<'static> {
    /// A member given twice counts as its last occurrence says.
    pub(crate) fn last_wins() -> Self {
        Plain {
            duplicate: None,
            handed_over: None,
        }
    }
}

impl<'a> Plain<'a> {
    /// A member given twice, at any depth, fails the read; its key is left in `duplicate`.
    pub(crate) fn refusing_duplicates(duplicate: &'a mut Option<String>) -> Self {
        Plain {
            duplicate: Some(duplicate),
            handed_over: None,
        }
    }

    /// The same reader, for a value inside this one.
    fn nested(&mut self) -> Plain<'_> {
        Plain {
            duplicate: self.duplicate.as_deref_mut(),
            handed_over: None,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Plain<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        // `serde_json` counts the depth here, as for its own `Value`.
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Plain<'_> {
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
        if let Some(handed_over) = self.handed_over {
            *handed_over = true;
        }
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
        let mut first = true;
        while let Some(key) = map.next_key::<String>()? {
            if std::mem::take(&mut first) && key == NUMBER_TOKEN {
                let mut handed_over = false;
                let value = map.next_value_seed(Plain {
                    duplicate: self.duplicate.as_deref_mut(),
                    handed_over: Some(&mut handed_over),
                })?;
                match value {
                    // The parser's own hand-over of a number's text: the number.
                    Value::String(text) if handed_over => {
                        return text.parse().map(Value::Number).map_err(de::Error::custom);
                    }
                    // The same name written in the JSON: an ordinary member.
                    value => {
                        object.insert(key, value);
                        continue;
                    }
                }
            }
            match object.entry(key) {
                Entry::Vacant(entry) => {
                    entry.insert(map.next_value_seed(self.nested())?);
                }
                Entry::Occupied(mut entry) => match self.duplicate.as_deref_mut() {
                    None => {
                        entry.insert(map.next_value_seed(self.nested())?);
                    }
                    Some(duplicate) => {
                        *duplicate = Some(entry.key().clone());
                        return Err(de::Error::custom("an object has a key twice"));
                    }
                },
            }
        }
        Ok(Value::Object(object))
    }
}

/// The name `serde_json` gives the one member of a map it hands a number over as, as its
/// text, with its `arbitrary_precision` feature (which any crate of a program can turn on):
/// a number that fits no `u64` or `i64`, `1.5`, `1e3`. Its text comes as an owned `String`
/// (`visit_string`); a string in the JSON text comes as a `&str` (`visit_str`,
/// `visit_borrowed_str`), so `{"$serde_json::private::Number":"1"}` is an object with one
/// member, whatever the features.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// The members of one JSON object that a reader asks for, read as [`Plain`] reads them
/// (the last of a member given twice counts); every other member is read too, so that the
/// object is refused wherever a `Value` would be, and dropped.
///
/// `index` gives the slot of a member's name, below `N`, or `None` for a member not asked
/// for. A JWT's header and claims are read this way on every miss of the verification
/// cache: a `Value` would allocate every name and look each up again in a tree.
pub(crate) fn members<const N: usize>(
    bytes: &[u8],
    index: fn(&str) -> Option<usize>,
) -> Option<[Option<Value>; N]> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let members = deserializer.deserialize_map(Members::<N> { index }).ok()?;
    deserializer.end().ok()?;
    Some(members)
}

/// The visitor of [`members`], for `N` slots.
struct Members<const N: usize> {
    index: fn(&str) -> Option<usize>,
}

impl<'de, const N: usize> Visitor<'de> for Members<N> {
    type Value = [Option<Value>; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: [Option<Value>; N] = std::array::from_fn(|_| None);
        while let Some(slot) = map.next_key_seed(Name { index: self.index })? {
            let value = map.next_value_seed(Plain::last_wins())?;
            if let Some(slot) = slot.and_then(|at| slots.get_mut(at)) {
                *slot = Some(value);
            }
        }
        Ok(slots)
    }
}

/// A member's name, read into its slot without being kept.
struct Name {
    index: fn(&str) -> Option<usize>,
}

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member's name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok((self.index)(name))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const MAGIC: &str = "$serde_json::private::RawValue";

    #[test]
    fn serde_jsons_raw_value_name_is_an_ordinary_member() {
        let text = format!(r#"{{"{MAGIC}":"{{\"sub\":\"admin\"}}"}}"#);
        // What this module is for: `Value` itself reads the string as the object.
        let theirs: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(theirs, json!({"sub": "admin"}));
        let ours = from_slice(text.as_bytes()).unwrap();
        assert_eq!(ours, json!({ MAGIC: "{\"sub\":\"admin\"}" }));
        // Nested, in an array, and through the member reader alike.
        let nested = format!(r#"{{"act":[{{"{MAGIC}":"{{\"sub\":\"admin\"}}"}}]}}"#);
        assert_eq!(
            from_slice(nested.as_bytes()).unwrap(),
            json!({"act": [{ MAGIC: "{\"sub\":\"admin\"}" }]})
        );
        let [sub, act] = members::<2>(text.as_bytes(), |name| match name {
            "sub" => Some(0),
            "act" => Some(1),
            _ => None,
        })
        .unwrap();
        assert_eq!((sub, act), (None, None));
    }

    /// What `serde_json`'s `Value` reads, for texts without its raw-value name: the same
    /// value, or an error with the same message.
    fn reads_as_serde_json(text: &[u8]) {
        let ours = from_slice(text);
        match serde_json::from_slice::<Value>(text) {
            Ok(theirs) => assert_eq!(ours.unwrap(), theirs, "{}", String::from_utf8_lossy(text)),
            Err(theirs) => assert_eq!(
                ours.unwrap_err().to_string(),
                theirs.to_string(),
                "{}",
                String::from_utf8_lossy(text)
            ),
        }
    }

    #[test]
    fn everything_else_reads_as_serde_json_reads_it() {
        for text in [
            &br#"{"a":1,"b":[true,null,-2,3.5,1e400,18446744073709551615,-9223372036854775809],"c":{"d":"\u00e9\ud83d\ude00"}}"#[..],
            br#"{"k":1,"k":{"x":2}}"#,
            br#"{"a":"\ud800"}"#,
            b"{\"a\":\"\xff\"}",
            br#"{"a":1} x"#,
            br#"{"a":1,}"#,
            b"[1,2",
            b"",
            b"null",
            br#""text""#,
            b"  {\"a\" : [ ] }  ",
        ] {
            reads_as_serde_json(text);
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        reads_as_serde_json(deep.as_bytes());
        let deep_objects = format!("{}1{}", r#"{"a":"#.repeat(130), "}".repeat(130));
        reads_as_serde_json(deep_objects.as_bytes());
    }

    /// With `serde_json`'s `arbitrary_precision` feature (which another crate of a program
    /// may turn on), its parser hands a number that is no `u64` or `i64` over as a map of one
    /// member, named `$serde_json::private::Number`, whose value is the number's text as an
    /// owned `String`: that is a number, as in a `Value`. The same name in the JSON text is an
    /// ordinary member.
    #[test]
    fn a_number_handed_over_as_its_text_is_a_number() {
        use serde::de::value::{Error, MapDeserializer};
        for (text, expected) in [
            ("1.5", json!(1.5)),
            ("-2", json!(-2)),
            ("1e3", json!(1000.0)),
        ] {
            let handed =
                MapDeserializer::<_, Error>::new([(NUMBER_TOKEN, text.to_owned())].into_iter());
            let value = Plain::last_wins().deserialize(handed).unwrap();
            assert_eq!(value, expected, "{text}");
        }
        // Only as an object's first member.
        let handed =
            MapDeserializer::<_, Error>::new([("x", "1"), (NUMBER_TOKEN, "2")].into_iter());
        assert_eq!(
            Plain::last_wins().deserialize(handed).unwrap(),
            json!({"x": "1", NUMBER_TOKEN: "2"})
        );
        for text in [
            format!(r#"{{"{NUMBER_TOKEN}":"1.5"}}"#),
            format!(r#"{{"{NUMBER_TOKEN}":"1\u002e5"}}"#),
            format!(r#"{{"{NUMBER_TOKEN}":1.5}}"#),
            format!(r#"{{"{NUMBER_TOKEN}":{{"a":[1]}},"b":2}}"#),
        ] {
            let theirs: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(from_slice(text.as_bytes()).unwrap(), theirs, "{text}");
            assert!(theirs.is_object());
        }
    }

    #[test]
    fn the_last_of_a_member_given_twice_counts_unless_refused() {
        let text = br#"{"a":{"k":1,"k":2},"a":{"k":3}}"#;
        assert_eq!(from_slice(text).unwrap(), json!({"a": {"k": 3}}));
        let mut duplicate = None;
        let mut deserializer = serde_json::Deserializer::from_slice(br#"{"a":{"k":1,"k":2}}"#);
        assert!(Plain::refusing_duplicates(&mut duplicate)
            .deserialize(&mut deserializer)
            .is_err());
        assert_eq!(duplicate.as_deref(), Some("k"));
    }

    #[test]
    fn members_are_picked_by_name_the_last_counting() {
        let index = |name: &str| match name {
            "sub" => Some(0),
            "exp" => Some(1),
            _ => None,
        };
        let [sub, exp] = members::<2>(
            br#"{"sub":"a","x":{"y":[1]},"sub":"b","\u0065xp":7}"#,
            index,
        )
        .unwrap();
        assert_eq!((sub, exp), (Some(json!("b")), Some(json!(7))));
        // Refused wherever a `Value` would be: not an object, trailing text, a bad member
        // that is not asked for, a string that is not UTF-8.
        for text in [
            &b"[1]"[..],
            br#"{"sub":"a"} {}"#,
            br#"{"x":[1,}"#,
            br#"{"x":"\ud800"}"#,
            b"{\"x\":\"\xff\"}",
        ] {
            assert!(members::<2>(text, index).is_none(), "{text:?}");
            assert!(
                serde_json::from_slice::<Value>(text)
                    .ok()
                    .filter(Value::is_object)
                    .is_none(),
                "{text:?}"
            );
        }
    }
}
