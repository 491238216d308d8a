//! `[dpop]`: how DPoP proofs (RFC 9449) are checked on protected routes and at the token
//! endpoint.

use serde::Deserialize;

use super::values::{AtLeastOne, HumanDuration};
use super::BuildError;
use crate::dpop::DpopVerifier;

/// Builds a [`DpopVerifier`]. Proofs are checked without it (the defaults); set `origins`
/// when the service is reached through a proxy that terminates TLS or rewrites the host, so
/// that `htu` is compared with the public URL.
///
/// ```toml
/// [dpop]
/// origins = ["https://api.example.com"]
/// max_age = "5m"
/// max_future_skew = "1m"
/// replay_capacity = 100000
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpopConfig {
    /// The service's public origins (`https://api.example.com`); a proof's `htu` must name
    /// one. Empty: the request's own host.
    #[serde(default)]
    pub origins: Vec<String>,
    /// How old a proof's `iat` may be (default `5m`).
    pub max_age: Option<HumanDuration>,
    /// How far in the future a proof's `iat` may be (default `1m`).
    pub max_future_skew: Option<HumanDuration>,
    /// How many proofs are remembered to recognise a replay (default 100,000).
    pub replay_capacity: Option<AtLeastOne>,
}

impl DpopConfig {
    /// Builds the verifier; an origin that is not one is an error naming it.
    pub fn build(&self) -> Result<DpopVerifier, BuildError> {
        let mut builder = DpopVerifier::builder().origins(self.origins.iter().cloned());
        if let Some(age) = self.max_age {
            builder = builder.max_age(age.0);
        }
        if let Some(skew) = self.max_future_skew {
            builder = builder.max_future_skew(skew.0);
        }
        if let Some(capacity) = self.replay_capacity {
            builder = builder.replay_capacity(usize::try_from(capacity.0).unwrap_or(usize::MAX));
        }
        builder.build().map_err(|e| BuildError::invalid("dpop", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_builds() {
        let config: DpopConfig = serde_json::from_value(serde_json::json!({
            "origins": ["https://api.example.com"], "max_age": "90s", "replay_capacity": 10
        }))
        .unwrap();
        assert_eq!(config.origins, ["https://api.example.com"]);
        config.build().unwrap();
        let bad = DpopConfig {
            origins: vec!["api.example.com".into()],
            ..DpopConfig::default()
        };
        let err = bad.build().unwrap_err().to_string();
        assert!(
            err.contains("api.example.com") && err.contains("dpop"),
            "{err}"
        );
        assert!(serde_json::from_str::<DpopConfig>(r#"{"max_age": 5}"#).is_err());
        assert!(serde_json::from_str::<DpopConfig>(r#"{"origin": []}"#).is_err());
    }
}
