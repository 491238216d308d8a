//! `[chain]`: tamper-evident chaining and signed checkpoints (`docs/integrity.md`).

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{AtLeastOne, EnvName, HumanDuration};
use super::BuildError;
use crate::chain::{Chaining, SigningKey};
use crate::config::ExposeSecret;

/// Builds [`Chaining`]. The signing key comes from a file (`key_file`, written by
/// `oauth-audit keygen`) or from an environment variable (`key_env`), never from the
/// configuration itself.
///
/// ```
/// use oauth_audit::config::ChainConfig;
///
/// let config: ChainConfig = serde_json::from_str(r#"{
///     "state_file": "/var/lib/oauth-audit/chain.state",
///     "checkpoint_every": 500,
///     "checkpoint_interval": "30s"
/// }"#).unwrap();
/// let chaining = config.build().unwrap();
/// # let _ = chaining;
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The private key file (`PRIVATE+KEY+...`, mode 0600).
    pub key_file: Option<PathBuf>,
    /// The environment variable that holds the private key.
    pub key_env: Option<EnvName>,
    /// Where the stream's position is kept across restarts.
    pub state_file: Option<PathBuf>,
    /// A checkpoint after this many events.
    pub checkpoint_every: Option<AtLeastOne>,
    /// A checkpoint after this long, when events came in.
    pub checkpoint_interval: Option<HumanDuration>,
    /// Every checkpoint is also appended to this file.
    pub checkpoint_file: Option<PathBuf>,
    /// Every checkpoint is also posted to this URL (feature `http`).
    pub checkpoint_url: Option<String>,
}

impl ChainConfig {
    /// Reads the key (file or environment) and builds the settings.
    pub fn build(&self) -> Result<Chaining, BuildError> {
        let mut chaining = Chaining::new();
        let key = match (&self.key_file, &self.key_env) {
            (Some(_), Some(_)) => {
                return Err(BuildError::invalid(
                    "chain",
                    "key_file and key_env are exclusive: choose one",
                ))
            }
            (Some(path), None) => Some(
                SigningKey::from_file(path)
                    .map_err(|e| BuildError::invalid("chain key_file", e))?,
            ),
            (None, Some(env)) => {
                let secret = env.read("chain key_env")?;
                Some(
                    SigningKey::parse(secret.expose_secret())
                        .map_err(|e| BuildError::invalid("chain key_env", e))?,
                )
            }
            (None, None) => None,
        };
        if let Some(key) = key {
            chaining = chaining.signing_key(key);
        } else if self.checkpoint_file.is_some() || self.checkpoint_url.is_some() {
            return Err(BuildError::invalid(
                "chain",
                "checkpoint_file and checkpoint_url need a signing key (key_file or key_env)",
            ));
        }
        if let Some(path) = &self.state_file {
            chaining = chaining.state_file(path.clone());
        }
        if let Some(every) = self.checkpoint_every {
            chaining = chaining.checkpoint_every(every.0);
        }
        if let Some(interval) = self.checkpoint_interval {
            if interval.0 < std::time::Duration::from_millis(100) {
                return Err(BuildError::invalid(
                    "chain checkpoint_interval",
                    "must be at least 100ms",
                ));
            }
            chaining = chaining.checkpoint_interval(interval.0);
        }
        if let Some(path) = &self.checkpoint_file {
            chaining = chaining.checkpoint_file(path.clone());
        }
        if let Some(url) = &self.checkpoint_url {
            chaining = chaining.checkpoint_url(url.clone());
        }
        Ok(chaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_one_place_and_never_show() {
        let dir =
            std::env::temp_dir().join(format!("oauth-audit-chaincfg-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SigningKey::generate("test").unwrap();
        let path = dir.join("audit.key");
        std::fs::write(&path, key.encode()).unwrap();

        let config: ChainConfig =
            serde_json::from_value(serde_json::json!({"key_file": path, "checkpoint_every": 10}))
                .unwrap();
        let chaining = config.build().unwrap();
        assert_eq!(chaining.checkpoint_every, 10);
        assert_eq!(
            chaining.key.as_ref().map(SigningKey::verifying_key),
            Some(key.verifying_key())
        );

        let both: ChainConfig =
            serde_json::from_value(serde_json::json!({"key_file": path, "key_env": "AUDIT_KEY"}))
                .unwrap();
        assert!(both.build().is_err());

        let no_key: ChainConfig = serde_json::from_str(r#"{"checkpoint_file": "/tmp/x"}"#).unwrap();
        assert!(no_key.build().is_err());

        std::fs::write(&path, "PRIVATE+KEY+test+00000000+AAAA").unwrap();
        let err = config.build().unwrap_err().to_string();
        assert!(err.contains("chain key_file"), "{err}");
        assert!(!err.contains("AAAA"), "{err}");

        assert!(serde_json::from_str::<ChainConfig>(r#"{"checkpoint_every": 0}"#).is_err());
        assert!(serde_json::from_str::<ChainConfig>(r#"{"key": "x"}"#).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
