//! The hash of an event: SHA-256 over its RFC 8785 canonical JSON.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::canonical::canonical_json;

/// The hash of one event, written `sha256:<64 lowercase hex digits>`.
///
/// It is SHA-256 over the event's RFC 8785 (JSON Canonicalization Scheme) form: keys sorted,
/// no whitespace, numbers as ECMAScript prints them. A row read back from PostgreSQL's
/// `jsonb` (which reorders keys) or from a search index therefore hashes the same as the line
/// in a file. `docs/integrity.md` gives the rule and a worked example.
///
/// ```
/// use oauth_audit::event::EventHash;
///
/// let a = EventHash::of_json(&serde_json::json!({"b": 1, "a": [0.5, "x"]})).unwrap();
/// let b = EventHash::of_json(&serde_json::from_str::<serde_json::Value>(
///     r#"{ "a": [5e-1, "x"], "b": 1.0 }"#).unwrap()).unwrap();
/// assert_eq!(a, b);
/// assert!(a.to_string().starts_with("sha256:"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventHash(pub [u8; 32]);

impl EventHash {
    /// The hash of any serialisable value's canonical form (an event, or an event read back
    /// as a [`serde_json::Value`]).
    pub fn of_json<T: Serialize + ?Sized>(value: &T) -> Result<EventHash, serde_json::Error> {
        Ok(EventHash::of_bytes(&canonical_json(value)?))
    }

    /// SHA-256 of bytes that are already canonical.
    pub fn of_bytes(bytes: &[u8]) -> EventHash {
        EventHash(Sha256::digest(bytes).into())
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// `sha256:` and the hex digits, on the stack: every chained event writes one, and
    /// going through `fmt` and a `String` for it cost more than the rest of its link.
    fn text(&self) -> HashText {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; TEXT_LEN];
        text[..PREFIX.len()].copy_from_slice(PREFIX.as_bytes());
        for (pair, byte) in text[PREFIX.len()..].chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0xf)];
        }
        HashText(text)
    }
}

const PREFIX: &str = "sha256:";
const TEXT_LEN: usize = PREFIX.len() + 64;

/// An [`EventHash`] written out.
struct HashText([u8; TEXT_LEN]);

impl HashText {
    fn as_str(&self) -> &str {
        // Only ASCII was written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl fmt::Debug for EventHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not `sha256:` and 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an event hash (expected sha256: and 64 lowercase hex digits)")]
pub struct BadHash;

impl FromStr for EventHash {
    type Err = BadHash;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.strip_prefix(PREFIX).ok_or(BadHash)?;
        if digits.len() != 64
            || !digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(BadHash);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(digits, &mut out).map_err(|_| BadHash)?;
        Ok(EventHash(out))
    }
}

impl Serialize for EventHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.text().as_str())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn canonical_form_follows_rfc_8785() {
        // RFC 8785 §3.2.2 and appendix examples: sorted keys, ES6 numbers, minimal escapes.
        let value: serde_json::Value = serde_json::from_str(
            r#"{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],
                "string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
                "literals":[null,true,false]}"#,
        )
        .unwrap();
        let canonical = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(
            canonical,
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn keys_sort_by_utf16_code_units() {
        // RFC 8785 §3.2.3: "\u{10000}" (surrogates D800 DC00) sorts before "\u{e000}".
        let value = serde_json::json!({"\u{e000}": 1, "\u{10000}": 2, "a": 3});
        let canonical = String::from_utf8(canonical_json(&value).unwrap()).unwrap();
        assert_eq!(canonical, "{\"a\":3,\"\u{10000}\":2,\"\u{e000}\":1}");
    }

    #[test]
    fn the_documented_example_hashes_as_written() {
        // docs/integrity.md, "A worked example".
        let event: serde_json::Value = serde_json::from_str(
            r#"{"schema":"oauth-audit/1","id":"0193a0c0-1000-7000-8000-000000000001","time":"2026-12-01T12:00:00.000001Z","kind":"ResourceAccessed","outcome":"success","severity":"info","service":{"name":"orders-api"},"http":{"method":"GET","path":"/orders","status":200,"duration_ms":0.108},"chain":{"stream":"0193a0c0-0000-7000-8000-000000000000","seq":1}}"#,
        )
        .unwrap();
        assert_eq!(
            EventHash::of_json(&event).unwrap().to_string(),
            "sha256:73b7197cf7c0184e919eada6f07a398b8e6831f447499e520f728aac12077f94"
        );
        let doc = include_str!("../../docs/integrity.md");
        assert!(
            doc.contains("sha256:73b7197cf7c0184e919eada6f07a398b8e6831f447499e520f728aac12077f94")
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// The hash is SHA-256 over the form an independent RFC 8785 implementation writes.
        #[test]
        fn the_hash_is_over_the_rfc_8785_form(
            value in crate::event::canonical::tests::json_value()
        ) {
            let oracle = serde_json_canonicalizer::to_vec(&value).unwrap();
            proptest::prop_assert_eq!(EventHash::of_json(&value).unwrap(), EventHash::of_bytes(&oracle));
        }
    }

    #[test]
    fn hashes_print_and_parse() {
        let hash = EventHash::of_bytes(b"");
        let text = hash.to_string();
        assert_eq!(
            text,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(text.parse::<EventHash>(), Ok(hash));
        assert_eq!(serde_json::to_string(&hash).unwrap(), format!("\"{text}\""));
        for bad in [
            "",
            "sha256:",
            "sha1:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 ",
        ] {
            assert_eq!(bad.parse::<EventHash>(), Err(BadHash), "{bad:?}");
        }
    }
}
