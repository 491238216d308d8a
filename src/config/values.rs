//! Values checked while a configuration is read, so that a bad one is reported where it is
//! written (with its line, when the format has lines) and nothing falls back to a default
//! silently.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// A duration written as a whole number and a unit: `500ms`, `30s`, `5m`, `2h`, `365d`.
///
/// Hand-written rather than `humantime`: humantime also reads `"1 minute"`, `"1.5s"` and
/// `"2 fortnights"`, and configurations that were refused before must stay refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let text = value.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| {
            format!("{value:?} is not a duration: write a whole number and a unit, e.g. \"30s\"")
        })?;
        let seconds = match unit {
            "ms" => return Ok(HumanDuration(Duration::from_millis(number))),
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "{value:?} has no known unit: use ms, s, m, h or d (e.g. \"30s\")"
                ))
            }
        };
        number
            .checked_mul(seconds)
            .map(|s| HumanDuration(Duration::from_secs(s)))
            .ok_or_else(|| format!("{value:?} is too long"))
    }
}

/// A count or size of at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct AtLeastOne(pub u64);

impl TryFrom<i64> for AtLeastOne {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u64::try_from(value)
            .ok()
            .filter(|v| *v >= 1)
            .map(AtLeastOne)
            .ok_or_else(|| format!("{value} is not allowed: the value must be at least 1"))
    }
}

impl AtLeastOne {
    /// As a `usize` (saturating on 32-bit targets).
    pub fn get(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Permissions of the files a writer creates, written as an octal integer (`0o640`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct FileMode(pub u32);

impl TryFrom<i64> for FileMode {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        match u32::try_from(value) {
            Ok(mode) if mode <= 0o777 && mode & 0o600 == 0o600 => Ok(FileMode(mode)),
            _ => Err(format!(
                "{value:#o} is not a file mode for audit files: write an octal number that lets the owner read and write, e.g. 0o600 (the default) or 0o640"
            )),
        }
    }
}

/// A string that must not be empty nor hold a path separator (a file name prefix, a form
/// field, a schema or table name).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(pub String);

impl TryFrom<String> for Name {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() {
            Err("must not be empty".into())
        } else if value.contains(['/', '\\']) {
            Err(format!("{value:?} must not contain '/' or '\\'"))
        } else {
            Ok(Name(value))
        }
    }
}

/// The name of the environment variable that holds a secret (the `*_env` keys): secrets
/// stay out of configuration files, which are copied, committed and quoted in errors.
///
/// A name is capitals, digits and `_`, at most 64 bytes, and a long one has a `_`: a value
/// that is not such a name is most likely the secret itself, put in the wrong key. It is
/// refused without being echoed, as every message about it ends up in logs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct EnvName(pub String);

impl TryFrom<String> for EnvName {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let shaped = !value.is_empty()
            && value.len() <= 64
            && !value.starts_with(|c: char| c.is_ascii_digit())
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        let looks_random = value.len() >= 16 && !value.contains('_');
        if shaped && !looks_random {
            Ok(EnvName(value))
        } else {
            Err("the value (not shown) is not the NAME of an environment variable (capitals, digits and _, e.g. \"NATS_TOKEN\"); if it is the secret itself, put it in an environment variable, name that here, and rotate the secret".into())
        }
    }
}

impl EnvName {
    /// The variable's value, read now; `setting` names the key in the error.
    pub fn read(&self, setting: &str) -> Result<SecretString, super::BuildError> {
        std::env::var(&self.0)
            .map(SecretString::from)
            .map_err(|_| super::BuildError::MissingEnv {
                setting: setting.to_owned(),
                variable: self.0.clone(),
            })
    }
}

/// A request path: starts with `/`, no query string or fragment.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RequestPath(pub String);

impl TryFrom<String> for RequestPath {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if !value.starts_with('/') {
            Err(format!("{value:?} is not a path: paths start with '/'"))
        } else if value.contains(['?', '#']) {
            Err(format!("{value:?}: a path has no query string or fragment"))
        } else {
            Ok(RequestPath(value))
        }
    }
}

/// An HTTP header name, or `""` for none.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct OptionalHeader(pub Option<String>);

impl TryFrom<String> for OptionalHeader {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            return Ok(OptionalHeader(None));
        }
        http::HeaderName::from_bytes(value.as_bytes())
            .map(|_| OptionalHeader(Some(value.clone())))
            .map_err(|_| format!("{value:?} is not an HTTP header name"))
    }
}

/// How many body bytes the layer inspects: 1 byte to 16 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct BodyLimit(pub usize);

impl TryFrom<i64> for BodyLimit {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        const MAX: i64 = 16 * 1024 * 1024;
        if (1..=MAX).contains(&value) {
            Ok(BodyLimit(value as usize))
        } else {
            Err(format!(
                "{value} bytes: choose between 1 and {MAX} (the default is 65536)"
            ))
        }
    }
}

/// An `http://` or `https://` URL with a host and without credentials (a JWKS or
/// introspection URL): credentials go in their own settings, never in a URL that ends up in
/// logs and events. Messages show the URL without user information and query.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(pub String);

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let shown = crate::event::shown_url(&value);
        let uri: http::Uri = value
            .parse()
            .map_err(|e| format!("{shown:?} is not a URL ({e})"))?;
        if uri
            .authority()
            .is_some_and(|authority| authority.as_str().contains('@'))
        {
            return Err(format!("{shown:?}: credentials in the URL are not allowed"));
        }
        match uri.scheme_str() {
            Some("http" | "https") if uri.authority().is_some() => Ok(HttpUrl(value)),
            _ => Err(format!(
                "{shown:?} is not an http:// or https:// URL with a host"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s: &str| HumanDuration::try_from(s.to_owned()).map(|d| d.0);
        assert_eq!(d("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(d("365d"), Ok(Duration::from_secs(365 * 86_400)));
        assert!(d("30").unwrap_err().contains("unit"));
        assert!(d("s").unwrap_err().contains("whole number"));
        assert!(d("1.5s").is_err());
        assert!(d("1 minute").unwrap_err().contains("no known unit"));
    }

    #[test]
    fn counts_modes_names() {
        assert!(AtLeastOne::try_from(0).is_err());
        assert_eq!(AtLeastOne::try_from(3).map(AtLeastOne::get), Ok(3));
        assert_eq!(FileMode::try_from(0o640), Ok(FileMode(0o640)));
        assert!(FileMode::try_from(0o400).is_err());
        assert!(Name::try_from(String::new()).is_err());
        assert!(Name::try_from("a/b".to_owned()).is_err());
        assert!(BodyLimit::try_from(17 * 1024 * 1024).is_err());
    }

    #[test]
    fn paths_headers_urls() {
        assert!(RequestPath::try_from("token".to_owned()).is_err());
        assert!(RequestPath::try_from("/token?x".to_owned()).is_err());
        assert!(HttpUrl::try_from("ftp://x".to_owned()).is_err());
        assert_eq!(
            OptionalHeader::try_from(String::new()),
            Ok(OptionalHeader(None))
        );
        assert!(OptionalHeader::try_from("bad header".to_owned()).is_err());
    }

    #[test]
    fn env_names_refuse_secrets_without_quoting_them() {
        assert!(EnvName::try_from("NATS_TOKEN".to_owned()).is_ok());
        for secret in [
            "eyJhbGciOiJIUzI1NiJ9.s3cr3t",
            "AKIAIOSFODNN7S3CR3T",
            "lower_case",
        ] {
            let err = EnvName::try_from(secret.to_owned()).unwrap_err();
            assert!(!err.contains(secret), "{err}");
        }
    }

    mod model {
        use super::*;
        use proptest::prelude::*;

        proptest! {
        /// Number and unit: agrees with the model (the unit's seconds times the number).
        #[test]
        fn durations_follow_the_model(number in 0u64..1_000_000, unit in "(ms|s|m|h|d|x|)") {
            let parsed = HumanDuration::try_from(format!("{number}{unit}"));
            let expected = match unit.as_str() {
                "ms" => Some(Duration::from_millis(number)),
                "s" => Some(Duration::from_secs(number)),
                "m" => Some(Duration::from_secs(number * 60)),
                "h" => Some(Duration::from_secs(number * 3600)),
                "d" => Some(Duration::from_secs(number * 86_400)),
                _ => None,
            };
            prop_assert_eq!(parsed.ok().map(|d| d.0), expected);
        }
        }
    }
}
