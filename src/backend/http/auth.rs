//! Credentials: the secrets a collector authenticates with, kept out of `Debug` output and
//! errors, and turned into sensitive header values.

use std::fmt;

use http::header::HeaderValue;

use crate::ConfigError;

/// A value that never reaches `Debug` output.
pub(super) struct Secret<T = String>(pub(super) T);

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The credentials a collector is sent, one kind at a time.
#[derive(Debug)]
pub(super) enum Auth {
    None,
    Bearer(Secret),
    Basic { user: String, password: Secret },
    Splunk(Secret),
    ApiKey(Secret),
}

impl Auth {
    /// Which kind of credentials, for `Debug`.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Bearer(_) => "bearer",
            Auth::Basic { .. } => "basic",
            Auth::Splunk(_) => "splunk",
            Auth::ApiKey(_) => "api-key",
        }
    }

    /// The secrets an answer could quote: the token, key or password, and for Basic the
    /// base64 credentials as sent.
    pub(super) fn secrets(&self) -> Vec<String> {
        match self {
            Auth::None => Vec::new(),
            Auth::Bearer(secret) | Auth::Splunk(secret) | Auth::ApiKey(secret) => {
                vec![secret.0.clone()]
            }
            Auth::Basic { user, password } => {
                use base64::Engine as _;
                vec![
                    password.0.clone(),
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{}", password.0)),
                ]
            }
        }
    }

    /// The `Authorization` value, marked sensitive; checked at build.
    pub(super) fn header_value(&self) -> Result<Option<HeaderValue>, ConfigError> {
        let value = match self {
            Auth::None => return Ok(None),
            Auth::Bearer(token) => {
                non_empty(&token.0, "bearer_token")?;
                sensitive_value(&format!("Bearer {}", token.0), "bearer_token")?
            }
            Auth::Basic { user, password } => {
                if user.contains(':') {
                    return Err(ConfigError::invalid(
                        "basic_auth",
                        "the user name must not contain ':'",
                    ));
                }
                use base64::Engine as _;
                let credentials = base64::engine::general_purpose::STANDARD
                    .encode(format!("{user}:{}", password.0));
                sensitive_value(&format!("Basic {credentials}"), "basic_auth")?
            }
            Auth::Splunk(token) => {
                non_empty(&token.0, "splunk_token")?;
                sensitive_value(&format!("Splunk {}", token.0), "splunk_token")?
            }
            Auth::ApiKey(key) => {
                non_empty(&key.0, "elasticsearch_api_key")?;
                sensitive_value(&format!("ApiKey {}", key.0), "elasticsearch_api_key")?
            }
        };
        Ok(Some(value))
    }
}

/// Secrets shorter than this are not looked for in answers: blanking every `1` of a message
/// for a header value `1` would protect nothing.
const MIN_QUOTED_SECRET: usize = 4;

/// The secrets to look for in answers, longest first (so that a secret holding another is
/// replaced whole), without duplicates or the short ones.
pub(super) fn quoted_secrets(mut secrets: Vec<String>) -> Vec<Secret> {
    secrets.retain(|secret| secret.len() >= MIN_QUOTED_SECRET);
    secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    secrets.dedup();
    secrets.into_iter().map(Secret).collect()
}

/// `text`, taken from an answer, with every one of `secrets` it quotes replaced by
/// `<redacted>`: a collector, or a proxy in front of it, may quote the credentials, header
/// values or query string it was sent (Elasticsearch's 401 names the request's URI), and
/// what errors quote of answers goes into logs. Only what is shown is scrubbed, before it is
/// cut short (a secret cut in two would not be found): the answer itself is judged as it
/// came, a query value such as `true` being no reason to misread it.
pub(super) fn scrub(secrets: &[Secret], text: &str) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        if text.contains(secret.0.as_str()) {
            text = text.replace(secret.0.as_str(), "<redacted>");
        }
    }
    text
}

fn non_empty(secret: &str, setting: &'static str) -> Result<(), ConfigError> {
    if secret.trim().is_empty() {
        return Err(ConfigError::invalid(setting, "must not be empty"));
    }
    Ok(())
}

/// A header value kept out of logs by hyper; the error never quotes the value.
pub(super) fn sensitive_value(
    value: &str,
    setting: &'static str,
) -> Result<HeaderValue, ConfigError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| {
        ConfigError::invalid(
            setting,
            "contains characters not allowed in an HTTP header (control characters or non-ASCII)",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}
