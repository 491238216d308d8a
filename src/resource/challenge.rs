use http::HeaderMap;

use crate::event::sanitize;

/// The `error` and `error_description` of a `WWW-Authenticate: Bearer` challenge
/// (RFC 6750 §3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub(crate) error: Option<String>,
    pub(crate) description: Option<String>,
}

impl Challenge {
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
    if !scheme.eq_ignore_ascii_case("bearer") {
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
            "error" => challenge.error = Some(sanitize(&val, 64)),
            "error_description" => challenge.description = Some(sanitize(&val, 512)),
            _ => {}
        }
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(challenge)
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
        let c = parse(r#"Bearer realm="example", error="invalid_token", error_description="The access token \"expired\"""#).unwrap();
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(
            c.description.as_deref(),
            Some("The access token \"expired\"")
        );
        let c = parse("Bearer error=insufficient_scope, scope=\"a b\"").unwrap();
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(parse("Bearer").unwrap().error, None);
        assert_eq!(parse("Basic realm=\"x\""), None);
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
                for (text, max) in [(&challenge.error, 64), (&challenge.description, 512)] {
                    if let Some(text) = text {
                        prop_assert!(text.len() <= max);
                        prop_assert!(!text.chars().any(char::is_control));
                    }
                }
                if let (Some(error), Some(description)) = (&challenge.error, &challenge.description) {
                    if !error.contains(['"', '\\']) && !description.contains(['"', '\\']) {
                        let rebuilt = format!("Bearer error=\"{error}\", error_description=\"{description}\"");
                        if let Ok(header) = http::HeaderValue::from_str(&rebuilt) {
                            let mut again = HeaderMap::new();
                            again.insert(http::header::WWW_AUTHENTICATE, header);
                            prop_assert_eq!(Challenge::from_headers(&again), Some(challenge.clone()));
                        }
                    }
                }
            }
        }
    }
}
