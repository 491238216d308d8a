//! The `WWW-Authenticate: Bearer` (or `DPoP`) challenge of a response (RFC 6750 §3,
//! RFC 9449 §7.1).

use http::HeaderMap;

use crate::event::{Secrets, Untrusted};

/// Longest `error.code` kept in an event.
const MAX_CODE: usize = 64;
/// Longest `error.description` kept in an event.
const MAX_DESCRIPTION: usize = 512;

/// The `error` and `error_description` of a `WWW-Authenticate: Bearer` challenge
/// (RFC 6750 §3), raw until the event is built: servers quote the token they refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    error: Option<Untrusted>,
    description: Option<Untrusted>,
}

impl Challenge {
    /// The `error`, scrubbed of the request's `secrets` and sanitised.
    pub(crate) fn error(&self, secrets: &Secrets<'_>) -> Option<String> {
        self.error
            .as_ref()
            .map(|e| e.scrubbed_code(secrets, MAX_CODE))
            .filter(|e| !e.is_empty())
    }

    /// The `error_description`, scrubbed of the request's `secrets` and sanitised.
    pub(crate) fn description(&self, secrets: &Secrets<'_>) -> Option<String> {
        self.description
            .as_ref()
            .map(|d| d.scrubbed(secrets, MAX_DESCRIPTION))
    }

    pub(crate) fn from_headers(headers: &HeaderMap) -> Option<Challenge> {
        headers
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(parse_bearer)
    }
}

fn parse_bearer(value: &str) -> Option<Challenge> {
    let value = value.trim_start();
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    // RFC 9449 §7.1: a resource server that takes DPoP-bound tokens answers in the `DPoP`
    // scheme, with the same parameters.
    if !scheme.eq_ignore_ascii_case("bearer") && !scheme.eq_ignore_ascii_case("dpop") {
        return None;
    }
    let mut challenge = Challenge {
        error: None,
        description: None,
    };
    let mut rest = params.trim_start();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (val, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut escaped = false;
            let mut end = quoted.len();
            for (i, c) in quoted.char_indices() {
                match (escaped, c) {
                    (true, c) => {
                        out.push(c);
                        escaped = false;
                    }
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = i + 1;
                        break;
                    }
                    (false, c) => out.push(c),
                }
            }
            (out, &quoted[end.min(quoted.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_owned(), &after[end..])
        };
        match key.to_ascii_lowercase().as_str() {
            "error" => challenge.error = Some(Untrusted::new(&val)),
            "error_description" => challenge.description = Some(Untrusted::new(&val)),
            _ => {}
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(challenge)
}

/// The `error` and `error_description` of the first `WWW-Authenticate: Bearer` challenge, as
/// the layer records them (sanitised, at most 64 and 512 bytes).
///
/// An entry point for fuzzing the challenge reader; not a public API.
#[cfg(feature = "fuzzing")]
pub fn read_bearer_challenge(headers: &HeaderMap) -> Option<(Option<String>, Option<String>)> {
    Challenge::from_headers(headers).map(|c| {
        let none = Secrets::none();
        (c.error(&none), c.description(&none))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Option<Challenge> {
        let mut h = HeaderMap::new();
        h.insert(http::header::WWW_AUTHENTICATE, v.parse().unwrap());
        Challenge::from_headers(&h)
    }

    #[test]
    fn reads_error_and_description() {
        let none = Secrets::none();
        let c = parse(r#"Bearer realm="example", error="invalid_token", error_description="The access token \"expired\"""#).unwrap();
        assert_eq!(c.error(&none).as_deref(), Some("invalid_token"));
        assert_eq!(
            c.description(&none).as_deref(),
            Some("The access token \"expired\"")
        );
        let c = parse("Bearer error=insufficient_scope, scope=\"a b\"").unwrap();
        assert_eq!(c.error(&none).as_deref(), Some("insufficient_scope"));
        assert_eq!(parse("Bearer").unwrap().error(&none), None);
        assert_eq!(parse("Basic realm=\"x\""), None);
    }

    #[test]
    fn an_echoed_token_is_scrubbed() {
        let mut secrets = Secrets::none();
        secrets.fingerprint(crate::token::TokenFingerprint::of("opaque-Tok3n-xyz"));
        let c = parse(r#"Bearer error="invalid_token", error_description="token opaque-Tok3n-xyz expired; also eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.c2ln""#).unwrap();
        assert_eq!(
            c.description(&secrets).as_deref(),
            Some("token [redacted] expired; also [redacted]")
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// Any `WWW-Authenticate` value: no panic, bounded and printable fields, and a
            /// challenge rebuilt from what was read reads back the same.
            #[test]
            fn challenges_are_read_safely(
                value in prop_oneof![
                    "[ -~]{0,120}",
                    ("(Bearer|bearer|Basic) ", "[a-z_]{0,20}", "[ -~]{0,80}").prop_map(|(s, e, d)| {
                        format!("{s}realm=\"x\", error=\"{e}\", error_description=\"{}\"", d.replace('"', "'"))
                    }),
                ]
            ) {
                let Ok(header) = http::HeaderValue::from_str(&value) else {
                    return Ok(());
                };
                let mut headers = HeaderMap::new();
                headers.insert(http::header::WWW_AUTHENTICATE, header);
                let Some(challenge) = Challenge::from_headers(&headers) else {
                    return Ok(());
                };
                let none = Secrets::none();
                let (error, description) = (challenge.error(&none), challenge.description(&none));
                for (text, max) in [(&error, 64), (&description, 512)] {
                    if let Some(text) = text {
                        prop_assert!(text.len() <= max);
                        prop_assert!(!text.chars().any(char::is_control));
                    }
                }
                if let (Some(error), Some(description)) = (&error, &description) {
                    // Text the scrubber changed is not the text sent, so it cannot round-trip.
                    let redacted = crate::event::REDACTED;
                    let scrubbed = error.contains(redacted) || description.contains(redacted);
                    if !scrubbed && !error.contains(['"', '\\']) && !description.contains(['"', '\\']) {
                        let rebuilt = format!("Bearer error=\"{error}\", error_description=\"{description}\"");
                        if let Ok(header) = http::HeaderValue::from_str(&rebuilt) {
                            let mut again = HeaderMap::new();
                            again.insert(http::header::WWW_AUTHENTICATE, header);
                            let read = Challenge::from_headers(&again).expect("a rebuilt challenge reads");
                            prop_assert_eq!(read.error(&none), Some(error.clone()));
                            prop_assert_eq!(read.description(&none), Some(description.clone()));
                        }
                    }
                }
            }
        }
    }
}
