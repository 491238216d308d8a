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
