//! `[jwt]`: how bearer tokens are verified; builds the [`TokenInspector`].

use std::path::PathBuf;

use serde::Deserialize;

use super::values::{AtLeastOne, HttpUrl, HumanDuration};
use super::BuildError;
use crate::token::{TokenInspector, MIN_REFRESH_INTERVAL};

/// The key source and the checks of bearer tokens; builds a [`TokenInspector`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenInspectorConfig {
    /// A JWKS document fetched over HTTP(S) and refreshed (cargo feature `jwks`).
    pub jwks_url: Option<HttpUrl>,
    /// A JWKS document on disk, reloaded when it changes.
    pub jwks_file: Option<PathBuf>,
    /// Accepted `iss` values.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// Accepted `aud` values.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew allowed for `exp` and `nbf`.
    pub leeway: Option<HumanDuration>,
    /// How often a JWKS is reloaded.
    pub refresh_interval: Option<HumanDuration>,
    /// The shortest time between two reloads (an unknown `kid` asks for one).
    pub min_refresh_interval: Option<HumanDuration>,
    /// How many verified tokens are remembered (a token with more than 1 KiB of claim text
    /// counts once more for each KiB).
    pub cache_capacity: Option<AtLeastOne>,
    /// Accept verified tokens without `exp` as `valid` (default: verdict `no_expiry`).
    pub allow_missing_expiry: Option<bool>,
}

impl TokenInspectorConfig {
    /// Takes the JWKS URL and the issuer from discovered metadata where this configuration
    /// sets none: explicit settings win (a `jwks_file` or `jwks_url`, a list of `issuers`).
    pub fn apply_discovered(&mut self, metadata: &crate::oauth::ProviderMetadata) {
        if !self.has_key_source() {
            if let Some(jwks) = metadata.jwks_uri() {
                self.jwks_url = Some(HttpUrl(jwks.to_owned()));
            }
        }
        if self.issuers.is_empty() {
            self.issuers = vec![metadata.issuer().to_owned()];
        }
    }

    /// Whether tokens can be verified: a JWKS URL or file is configured.
    pub fn has_key_source(&self) -> bool {
        self.jwks_url.is_some() || self.jwks_file.is_some()
    }

    /// What is wrong with the combination, if anything: the offending key and the problem.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        for (key, interval) in [
            ("min_refresh_interval", self.min_refresh_interval),
            ("refresh_interval", self.refresh_interval),
        ] {
            if interval.is_some_and(|i| i.0 < MIN_REFRESH_INTERVAL) {
                return Some((
                    key,
                    format!(
                        "jwt.{key} must be at least {}s, so that the key server is not hammered",
                        MIN_REFRESH_INTERVAL.as_secs()
                    ),
                ));
            }
        }
        if self.jwks_url.is_some() && self.jwks_file.is_some() {
            return Some((
                "jwks_file",
                "set either jwt.jwks_url or jwt.jwks_file, not both".to_owned(),
            ));
        }
        None
    }

    /// The inspector. Reads a `jwks_file` now (a missing or broken file is an error here);
    /// a `jwks_url` is fetched by a background task started on the current Tokio runtime,
    /// so building connects to nothing.
    pub fn build(&self) -> Result<TokenInspector, BuildError> {
        const CONTEXT: &str = "jwt";
        if let Some((_, problem)) = self.problem() {
            return Err(BuildError::invalid(CONTEXT, problem));
        }
        let mut builder = TokenInspector::builder();
        if let Some(url) = &self.jwks_url {
            #[cfg(feature = "jwks")]
            {
                builder = builder.jwks_url(url.0.clone());
            }
            #[cfg(not(feature = "jwks"))]
            {
                let _ = url;
                return Err(BuildError::invalid(
                    CONTEXT,
                    "jwks_url: this oauth-audit was built without the `jwks` feature",
                ));
            }
        }
        if let Some(path) = &self.jwks_file {
            builder = builder.jwks_file(path.clone());
        }
        if !self.issuers.is_empty() {
            builder = builder.issuer(self.issuers.clone());
        }
        if !self.audiences.is_empty() {
            builder = builder.audience(self.audiences.clone());
        }
        if let Some(leeway) = self.leeway {
            builder = builder.leeway(leeway.0);
        }
        if let Some(interval) = self.refresh_interval {
            builder = builder.refresh_interval(interval.0);
        }
        if let Some(interval) = self.min_refresh_interval {
            builder = builder.min_refresh_interval(interval.0);
        }
        if let Some(capacity) = self.cache_capacity {
            builder = builder.cache_capacity(capacity.get());
        }
        if let Some(allow) = self.allow_missing_expiry {
            builder = builder.allow_missing_expiry(allow);
        }
        builder.build().map_err(|e| BuildError::invalid(CONTEXT, e))
    }
}
