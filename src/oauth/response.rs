//! What endpoint responses say: the `Location` of a redirect, read when the response head
//! arrives, and the JSON body (RFC 6749 §5.1/§5.2, RFC 7662 §2.2), read when it ends.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderMap;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
#[cfg(test)]
use serde_json::Value;

use super::form::{ident, scope_list, uri_without_query, Form};
use crate::event::{scrub, scrub_code, ErrorInfo, Secrets, Untrusted};
use crate::text::Text;

/// Longest `error.code` kept in an event.
pub(crate) const MAX_CODE: usize = 64;
/// Longest `error.description` kept in an event.
pub(crate) const MAX_DESCRIPTION: usize = 512;
use crate::token::{InspectedToken, TokenInspector};

/// The response head of an endpoint request, as the classifier needs it.
#[derive(Debug, Default)]
pub(crate) struct ResponseHead {
    pub(crate) location: Option<Location>,
    /// The body may be JSON (a JSON content type, or none).
    pub(crate) json: bool,
    /// The body is `application/x-www-form-urlencoded`: GitHub's token endpoint answers so
    /// unless asked for JSON (`access_token=…&scope=…`, and its waiting device polls
    /// `error=authorization_pending&…` with `200`).
    pub(crate) form: bool,
    /// The body has a content coding (`Content-Encoding: gzip`, ...): its bytes are not the
    /// JSON or form they would be, and are not read as such.
    pub(crate) encoded: bool,
}

impl ResponseHead {
    pub(crate) fn from_headers(headers: &HeaderMap, inspector: &TokenInspector) -> Self {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let json = content_type.is_none_or(|ct| {
            ct.as_bytes()
                .windows(4)
                .any(|w| w.eq_ignore_ascii_case(b"json"))
        });
        let form = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case(FORM_TYPE))
        });
        let encoded = content_coded(headers);
        ResponseHead {
            location: headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| Location::parse(l, inspector)),
            json,
            form,
            encoded,
        }
    }
}

const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// Whether a message's body has a content coding (`Content-Encoding: gzip`, ...; `identity`
/// is none): its bytes are not the form or JSON they encode, and the layer does not undo it.
pub(crate) fn content_coded(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|coding| {
            let coding = coding.trim_ascii();
            !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity")
        })
}

/// A redirect target: where it goes and which OAuth parameters it carries. The query and
/// fragment themselves are never kept; tokens in them are kept only as inspected tokens.
#[derive(Debug, Default)]
pub(crate) struct Location {
    /// The target without query string and fragment.
    pub(crate) target: String,
    /// It carries an authorization `code`.
    pub(crate) code: bool,
    /// The `error` parameter, raw: scrubbed when the event is built.
    pub(crate) error: Option<Untrusted>,
    /// It names an `error` parameter, with a value or without one: Spring Security sends a
    /// failed login back to `/login?error`.
    pub(crate) names_error: bool,
    /// The `error_description` parameter, raw: scrubbed when the event is built.
    pub(crate) error_description: Option<Untrusted>,
    /// An `access_token` in the fragment (implicit, hybrid).
    pub(crate) access_token: Option<Arc<InspectedToken>>,
    /// An `id_token` (OpenID Connect implicit, hybrid).
    pub(crate) id_token: Option<Arc<InspectedToken>>,
    pub(crate) token_type: Option<String>,
    pub(crate) expires_in: Option<u64>,
    pub(crate) scope: Option<Vec<String>>,
}

impl Location {
    pub(crate) fn parse(location: &str, inspector: &TokenInspector) -> Self {
        let (before_fragment, fragment) = location.split_once('#').unwrap_or((location, ""));
        let query = before_fragment.split_once('?').map_or("", |(_, q)| q);
        let mut out = Location {
            target: uri_without_query(location),
            ..Location::default()
        };
        for part in [query, fragment] {
            let params = Form::parse(part.as_bytes());
            out.code |= params.first("code").is_some();
            out.names_error |= params.names("error");
            if let Some(error) = params.first("error") {
                out.error = Some(Untrusted::new(error));
            }
            if let Some(description) = params.first("error_description") {
                out.error_description = Some(Untrusted::new(description));
            }
            if let Some(token) = params.first("access_token") {
                out.access_token = Some(inspector.inspect(token));
            }
            if let Some(token) = params.first("id_token") {
                out.id_token = Some(inspector.inspect(token));
            }
            if let Some(token_type) = params.first("token_type") {
                out.token_type = Some(ident(token_type));
            }
            if let Some(expires_in) = params.first("expires_in") {
                out.expires_in = expires_in.parse().ok();
            }
            if let Some(scope) = params.first("scope") {
                out.scope = Some(scope_list(scope));
            }
        }
        out
    }
}

/// A JSON object response body, read where it lies: a member's name and a string's text
/// are borrowed from the body unless they hold escapes, other values stay raw JSON until
/// read. Parsing it into a `serde_json::Map` cost a `String` for every name and value and a
/// tree node for every few members, on every token response.
///
/// It reads as that map did: the body must be one valid JSON object, and of a name given
/// twice the last value counts.
///
/// A form-encoded answer ([`JsonBody::from_form`]) is read into the same members, each a
/// string: the token endpoint reads `access_token`, `scope` or `error` from either alike.
pub(crate) struct JsonBody<'a> {
    members: Vec<(Cow<'a, str>, Member<'a>)>,
}

enum Member<'a> {
    Text(Cow<'a, str>),
    Raw(&'a RawValue),
}

// A token response's members are tokens: Debug shows the names, never a value.
impl std::fmt::Debug for JsonBody<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonBody")
            .field(
                "members",
                &self
                    .members
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<'a> JsonBody<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Option<Self> {
        // UTF-8 checked once for the whole body rather than string by string (serde_json
        // reads a `&str` without checking it again); both accept the same bodies.
        let Members(members) = match std::str::from_utf8(bytes) {
            Ok(text) => serde_json::from_str(text).ok()?,
            Err(_) => serde_json::from_slice(bytes).ok()?,
        };
        Some(JsonBody { members })
    }

    /// A form-encoded answer, its parameters as string members (decoded as a request's form
    /// is). Of a parameter given twice the last counts, as in a JSON object; one with an
    /// empty value reads as absent, as an empty JSON string does.
    pub(crate) fn from_form(bytes: &'a [u8]) -> Self {
        let members = super::form::Form::parse(bytes)
            .into_pairs()
            .map(|(name, value)| (name, Member::Text(value)))
            .collect();
        JsonBody { members }
    }

    fn get(&self, key: &str) -> Option<&Member<'a>> {
        self.members
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, member)| member)
    }

    /// The token claims of an introspection answer, read by the one claims reader that
    /// protected routes use too, from the members this body was read into. A member the
    /// claims do not use is not read again: one that holds, deep inside, what a `Value`
    /// refuses (a lone surrogate, nesting past its limit), which this body leaves raw, does
    /// not take the claims with it while `active` is read.
    pub(crate) fn claims(&self) -> crate::token::TokenClaims {
        crate::token::TokenClaims::from_named(
            self.members.iter().map(|(name, member)| (&**name, member)),
            |member| match member {
                Member::Text(text) => Some(serde_json::Value::String(text.to_string())),
                Member::Raw(raw) => crate::json::from_slice(raw.get().as_bytes()).ok(),
            },
        )
    }

    /// Whether `key` is a member.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A string member, when present and not empty.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Member::Text(text) if !text.is_empty() => Some(text),
            _ => None,
        }
    }

    /// A number member; numeric strings are accepted (servers send `"3600"`).
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Member::Text(text) => text.trim().parse().ok(),
            // A JSON integer that fits (`3600`, nearly every answer) reads the same through
            // `str::parse`, without a second JSON parser (a raw value is valid JSON, so never
            // signed `+`, which `str::parse` alone would take); anything else (fractions,
            // exponents, integers past `i64`, other kinds) goes to serde_json.
            Member::Raw(raw) => match raw.get().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    let n: serde_json::Number = serde_json::from_str(raw.get()).ok()?;
                    n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))
                }
            },
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Member::Text(text) => text.parse().ok(),
            Member::Raw(raw) => serde_json::from_str(raw.get()).ok(),
        }
    }

    /// A string or an array of strings (`aud`). Claims are read by `TokenClaims`; this
    /// stays for the tests of this reader.
    #[cfg(test)]
    pub(crate) fn strings(&self, key: &str) -> Vec<String> {
        match self.get(key) {
            Some(Member::Text(s)) => vec![ident(s)],
            Some(Member::Raw(raw)) => serde_json::from_str::<Vec<Value>>(raw.get())
                .unwrap_or_default()
                .iter()
                .filter_map(Value::as_str)
                .take(100)
                .map(ident)
                .collect(),
            None => Vec::new(),
        }
    }

    /// The RFC 6749 §5.2 error of an error response, scrubbed of `secrets` (servers quote
    /// the code or token they refused).
    pub(crate) fn error(&self, secrets: &Secrets<'_>) -> Option<ErrorInfo> {
        Some(ErrorInfo {
            code: scrub_code(self.str("error")?, secrets, MAX_CODE),
            description: self
                .str("error_description")
                .map(|d| scrub(d, secrets, MAX_DESCRIPTION)),
        })
    }
}

/// The members of a JSON object, each name and string borrowed when it can be.
struct Members<'a>(Vec<(Cow<'a, str>, Member<'a>)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Object;

        impl<'de> Visitor<'de> for Object {
            type Value = Members<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                // A token response has four to six members.
                let mut members = Vec::with_capacity(8);
                while let Some(Text(name)) = map.next_key()? {
                    let raw: &'de RawValue = map.next_value()?;
                    let json = raw.get();
                    let member = match json.strip_prefix('"').and_then(|j| j.strip_suffix('"')) {
                        // Without an escape, a string is what stands between its quotes:
                        // serde_json has checked it (no control character, valid UTF-8)
                        // while finding where it ends.
                        Some(text) if !text.contains('\\') => Member::Text(Cow::Borrowed(text)),
                        Some(_) => {
                            let Text(text) =
                                serde_json::from_str(json).map_err(de::Error::custom)?;
                            Member::Text(text)
                        }
                        None => Member::Raw(raw),
                    };
                    members.push((name, member));
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_keeps_only_what_events_need() {
        let inspector = TokenInspector::default();
        let l = Location::parse(
            "https://app.example/cb?code=SECRETCODE&state=S&iss=x",
            &inspector,
        );
        assert_eq!(l.target, "https://app.example/cb");
        assert!(l.code);
        assert!(l.error.is_none());
        assert!(!format!("{l:?}").contains("SECRETCODE"));

        let l = Location::parse(
            "https://app/cb?error=access_denied&error_description=User+said+no%0A&state=S",
            &inspector,
        );
        let none = Secrets::none();
        assert_eq!(l.error.unwrap().scrubbed(&none, MAX_CODE), "access_denied");
        assert_eq!(
            l.error_description
                .unwrap()
                .scrubbed(&none, MAX_DESCRIPTION),
            "User said no\\u{a}"
        );
        assert!(!l.code);

        let l = Location::parse(
            "https://app/cb#access_token=AT&token_type=Bearer&expires_in=60&scope=a%20b&state=S",
            &inspector,
        );
        assert_eq!(l.target, "https://app/cb");
        let token = l.access_token.unwrap();
        assert_eq!(token.fingerprint, crate::token::TokenFingerprint::of("AT"));
        assert_eq!(l.token_type.as_deref(), Some("Bearer"));
        assert_eq!(l.expires_in, Some(60));
        assert_eq!(l.scope, Some(vec!["a".to_owned(), "b".to_owned()]));
    }

    #[test]
    fn head_reads_content_type() {
        let mut h = HeaderMap::new();
        assert!(ResponseHead::from_headers(&h, &TokenInspector::default()).json);
        h.insert(http::header::CONTENT_TYPE, "text/html".parse().unwrap());
        assert!(!ResponseHead::from_headers(&h, &TokenInspector::default()).json);
        h.insert(
            http::header::CONTENT_TYPE,
            "application/json;charset=UTF-8".parse().unwrap(),
        );
        assert!(ResponseHead::from_headers(&h, &TokenInspector::default()).json);
        for (content_type, json) in [
            ("Application/JSON", true),
            ("application/jwt+Json", true),
            ("application/jso", false),
            ("text/plain", false),
        ] {
            h.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
            let head = ResponseHead::from_headers(&h, &TokenInspector::default());
            assert_eq!(head.json, json, "{content_type}");
            assert!(!head.form, "{content_type}");
        }
        for (content_type, form) in [
            ("application/x-www-form-urlencoded", true),
            ("Application/X-WWW-Form-Urlencoded ; charset=utf-8", true),
            ("application/x-www-form-urlencodedx", false),
            ("multipart/form-data", false),
        ] {
            h.insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
            let head = ResponseHead::from_headers(&h, &TokenInspector::default());
            assert_eq!((head.form, head.json), (form, false), "{content_type}");
        }
    }

    #[test]
    fn form_answers_read_as_string_members() {
        let j = JsonBody::from_form(
            b"access_token=gho_x&scope=repo%2Cgist&expires_in=28800&error=&scope=user",
        );
        assert_eq!(j.str("access_token"), Some("gho_x"));
        // The last of a repeated parameter, as in a JSON object; empty reads as absent.
        assert_eq!(j.str("scope"), Some("user"));
        assert_eq!(j.int("expires_in"), Some(28800));
        assert_eq!(j.str("error"), None);
        assert!(j.has("error"));
    }

    /// What a `Value` refuses deep inside a member the claims do not use (a lone surrogate,
    /// which a server writing JSON from JavaScript strings may send for a name a user chose)
    /// is left raw by the body's reading, and `active` is read: the claims must be read too,
    /// or the token would be recorded active with no subject or scopes.
    #[test]
    fn claims_are_read_beside_a_member_a_value_would_refuse() {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for other in [r#"["\ud800"]"#, r#"{"name":"\udc00x"}"#, deep.as_str()] {
            let body = format!(r#"{{"active":true,"sub":"alice","scope":"a b","x":{other}}}"#);
            assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
            let j = JsonBody::parse(body.as_bytes()).unwrap();
            assert_eq!(j.bool("active"), Some(true));
            let claims = j.claims();
            assert_eq!(claims.subject.as_deref(), Some("alice"), "{body}");
            assert_eq!(claims.scopes, ["a", "b"]);
        }
        // In a member the claims use, it makes that claim absent, as a non-string would.
        let j = JsonBody::parse(br#"{"active":true,"sub":"alice","aud":["\ud800"]}"#).unwrap();
        assert_eq!(j.claims().subject.as_deref(), Some("alice"));
        assert!(j.claims().audience.is_empty());
    }

    #[test]
    fn json_members_are_read_leniently() {
        let j = JsonBody::parse(
            br#"{"expires_in":"3600","exp":1.7e9,"active":true,"aud":["a","b"],"iss":"i","error":"invalid_grant","error_description":"bad\u001bcode"}"#,
        )
        .unwrap();
        assert_eq!(j.int("expires_in"), Some(3600));
        assert_eq!(j.int("exp"), Some(1_700_000_000));
        assert_eq!(j.bool("active"), Some(true));
        assert_eq!(j.strings("aud"), ["a", "b"]);
        assert_eq!(j.strings("iss"), ["i"]);
        let e = j.error(&Secrets::none()).unwrap();
        assert_eq!(e.code, "invalid_grant");
        assert_eq!(e.description.as_deref(), Some("bad\\u{1b}code"));
        assert!(JsonBody::parse(b"<html>").is_none());
        assert!(JsonBody::parse(b"[1]").is_none());
    }

    /// Whether a member is there, and what it reads as: text, integer, boolean.
    type Reading = (bool, Option<String>, Option<i64>, Option<bool>);

    /// What the body said when it was read into a `serde_json::Map`: the reading the
    /// borrowed one must agree with.
    fn read_as_a_map(bytes: &[u8], key: &str) -> Option<Reading> {
        let map: serde_json::Map<String, Value> = serde_json::from_slice(bytes).ok()?;
        let value = map.get(key);
        let int = match value {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        let bool = match value {
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        };
        let text = value
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Some((value.is_some(), text, int, bool))
    }

    #[test]
    fn bytes_that_are_not_utf8_are_read_as_serde_json_reads_them() {
        for body in [
            &b"{\"access_token\":\"a\xffb\"}"[..],
            b"{\"a\xff\":1}",
            b"{\"a\":[\"\xc3\"]}",
            b"{\"a\":1}\xff",
            b"\xef\xbb\xbf{\"a\":1}",
        ] {
            let map = serde_json::from_slice::<serde_json::Map<String, Value>>(body);
            assert_eq!(JsonBody::parse(body).is_some(), map.is_ok(), "{body:?}");
        }
    }

    #[test]
    fn the_borrowed_reading_agrees_with_a_map() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        let keys = [
            "access_token",
            "expires_in",
            "active",
            "ab",
            "",
            "\\u0061b",
            "a\\\\b",
        ];
        let key = proptest::sample::select(keys.to_vec());
        let value = prop_oneof![
            Just("true".to_owned()),
            Just("false".to_owned()),
            Just("null".to_owned()),
            Just("\"true\"".to_owned()),
            Just("\"\"".to_owned()),
            Just("[\"a\",1,{\"b\":[]}]".to_owned()),
            Just("{\"x\":{\"y\":\"z\"}}".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| format!("{f:e}")),
            "-?[0-9]{1,25}(\\.[0-9]{1,5})?([eE][+-]?[0-9]{1,3})?",
            "\" ?-?[0-9]{1,6} ?\"",
            // Strings with and without escapes, and the odd broken one.
            "\"([a-zA-Z0-9 ._~+/=-]|\\\\[nt\"\\\\/]|\\\\u00[0-7][0-9a-f]|é){0,12}\"",
            "\"[ -~]{0,8}",
        ];
        let body = proptest::collection::vec((key, value), 0..6).prop_map(|members| {
            let members: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("\"{k}\":{v}"))
                .collect();
            format!("{{{}}}", members.join(","))
        });
        let input = prop_oneof![
            4 => body,
            1 => "[ -~]{0,40}",
        ];
        TestRunner::new(Config::with_cases(4000))
            .run(&input, |input| {
                let bytes = input.as_bytes();
                let borrowed = JsonBody::parse(bytes);
                let map = serde_json::from_slice::<serde_json::Map<String, Value>>(bytes);
                // One difference, on purpose: a number past `f64`'s range made the whole
                // body unreadable as a map; read in place, only that number is unreadable.
                let out_of_range = map
                    .as_ref()
                    .is_err_and(|e| e.to_string().starts_with("number out of range"));
                if out_of_range {
                    // Read in place when, but for the range, it is a JSON object.
                    let valid = serde_json::from_slice::<de::IgnoredAny>(bytes).is_ok()
                        && input.trim_start().starts_with('{');
                    prop_assert_eq!(borrowed.is_some(), valid, "{}", input);
                } else {
                    prop_assert_eq!(borrowed.is_some(), map.is_ok(), "{}", input);
                }
                if let (Some(j), false) = (borrowed, out_of_range) {
                    for key in [
                        "access_token",
                        "expires_in",
                        "active",
                        "ab",
                        "",
                        "a\\b",
                        "x",
                    ] {
                        prop_assert_eq!(
                            Some((
                                j.has(key),
                                j.str(key).map(str::to_owned),
                                j.int(key),
                                j.bool(key)
                            )),
                            read_as_a_map(bytes, key),
                            "{:?} in {}",
                            key,
                            input
                        );
                    }
                    prop_assert_eq!(
                        j.claims(),
                        crate::token::TokenClaims::from_json(
                            &serde_json::from_slice(bytes).unwrap()
                        )
                    );
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn names_and_strings_without_escapes_are_borrowed() {
        let j = JsonBody::parse(br#"{"access_token":"abc","scope":"a\u0020b","expires_in":60}"#)
            .unwrap();
        let borrowed = |key: &str| {
            j.members
                .iter()
                .find(|(name, _)| name == key)
                .map(|(name, member)| {
                    (
                        matches!(name, Cow::Borrowed(_)),
                        matches!(member, Member::Text(Cow::Borrowed(_)) | Member::Raw(_)),
                    )
                })
        };
        assert_eq!(borrowed("access_token"), Some((true, true)));
        assert_eq!(borrowed("scope"), Some((true, false)));
        assert_eq!(j.str("scope"), Some("a b"));
        assert_eq!(j.int("expires_in"), Some(60));
        assert_eq!(
            format!("{j:?}"),
            r#"JsonBody { members: ["access_token", "scope", "expires_in"] }"#
        );
        let j = JsonBody::parse(br#"{"access_token":"abc","expires_in":1e400}"#).unwrap();
        assert_eq!(
            (j.str("access_token"), j.int("expires_in")),
            (Some("abc"), None)
        );
        // Whitespace around a value is not part of it.
        let j = JsonBody::parse(b"{ \"a\" :\t \"b c\" \n, \"n\": 5 }").unwrap();
        assert_eq!((j.str("a"), j.int("n")), (Some("b c"), Some(5)));
    }

    proptest::proptest! {
        // Large generated strings: fewer cases keep the suite quick.
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Arbitrary bytes: parsing never panics, and whatever members a body has, what
        /// the classifiers take from it is bounded.
        #[test]
        fn json_parser_never_panics_and_is_bounded(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256)) {
            if let Some(j) = JsonBody::parse(&bytes) {
                let _ = (j.int("expires_in"), j.bool("active"), j.has("access_token"));
                proptest::prop_assert!(j.strings("aud").len() <= 100);
            }
        }

        #[test]
        fn json_members_are_bounded(
            error in "\\PC{0,100}",
            description in "\\PC{0,700}",
            aud in proptest::collection::vec("[a-z]{0,300}", 0..120),
            exp in proptest::prelude::any::<f64>(),
        ) {
            let body = serde_json::json!({
                "error": error, "error_description": description, "aud": aud, "exp": exp,
            });
            let text = body.to_string();
            let j = JsonBody::parse(text.as_bytes()).unwrap();
            proptest::prop_assert!(j.strings("aud").len() <= 100);
            proptest::prop_assert!(j.strings("aud").iter().all(|a| a.len() <= super::super::form::MAX_ID));
            let _ = j.int("exp");
            if let Some(e) = j.error(&Secrets::none()) {
                proptest::prop_assert!(e.code.len() <= MAX_CODE);
                proptest::prop_assert!(e.description.is_none_or(|d| d.len() <= MAX_DESCRIPTION));
            }
        }

        /// Arbitrary `Location` values: no panic, and the kept target has no query or fragment.
        #[test]
        fn location_never_keeps_a_query(location in "\\PC{0,300}") {
            let l = Location::parse(&location, &TokenInspector::default());
            proptest::prop_assert!(!l.target.contains('?') && !l.target.contains('#'));
        }
    }
}
