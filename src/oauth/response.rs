//! What endpoint responses say: the `Location` of a redirect, read when the response head
//! arrives, and the JSON body (RFC 6749 §5.1/§5.2, RFC 7662 §2.2), read when it ends.

use std::sync::Arc;

use http::HeaderMap;
use serde_json::{Map, Value};

use super::form::{ident, scope_list, uri_without_query, Form};
use crate::event::{scrub, ErrorInfo, Secrets, Untrusted};

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
}

impl ResponseHead {
    pub(crate) fn from_headers(headers: &HeaderMap, inspector: &TokenInspector) -> Self {
        let json = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.to_ascii_lowercase().contains("json"));
        ResponseHead {
            location: headers
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| Location::parse(l, inspector)),
            json,
        }
    }
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

/// A JSON object response body.
#[derive(Debug)]
pub(crate) struct JsonBody(Map<String, Value>);

impl JsonBody {
    pub(crate) fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok().map(JsonBody)
    }

    /// The token claims of an introspection answer, read by the one claims reader that
    /// protected routes use too.
    pub(crate) fn claims(&self) -> crate::token::TokenClaims {
        crate::token::TokenClaims::from_json(&Value::Object(self.0.clone()))
    }

    /// Whether `key` is a member.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A string member, when present and not empty.
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A number member; numeric strings are accepted (servers send `"3600"`).
    pub(crate) fn int(&self, key: &str) -> Option<i64> {
        match self.0.get(key)? {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn bool(&self, key: &str) -> Option<bool> {
        match self.0.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// A string or an array of strings (`aud`). Claims are read by `TokenClaims`; this
    /// stays for the tests of this reader.
    #[cfg(test)]
    pub(crate) fn strings(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(Value::String(s)) => vec![ident(s)],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .take(100)
                .map(ident)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The RFC 6749 §5.2 error of an error response, scrubbed of `secrets` (servers quote
    /// the code or token they refused).
    pub(crate) fn error(&self, secrets: &Secrets<'_>) -> Option<ErrorInfo> {
        Some(ErrorInfo {
            code: scrub(self.str("error")?, secrets, MAX_CODE),
            description: self
                .str("error_description")
                .map(|d| scrub(d, secrets, MAX_DESCRIPTION)),
        })
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
            let j = JsonBody::parse(body.to_string().as_bytes()).unwrap();
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
