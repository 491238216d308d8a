//! Bearer tokens: RFC 6750 parsing, JWT decoding and verification, fingerprints.
//!
//! The [`TokenInspector`] decides a [`Verdict`] for each token against static keys or a JWKS
//! document (from a string, a file, or a URL with the `jwks` feature), with expected issuers,
//! audiences and clock leeway. Results are cached by [`TokenFingerprint`] (bounded), and a
//! cached result is re-checked against the clock on every use, so a token turns `expired` at
//! the right moment while being verified once. Key sets from files and URLs are refreshed in
//! the background; a token naming an unknown key id triggers a rate-limited refresh.
//!
//! ```
//! use oauth_audit::token::{TokenFormat, TokenInspector, Verdict};
//!
//! let inspector = TokenInspector::default(); // no keys: decode only
//! let seen = inspector.inspect("an-opaque-reference-token");
//! assert_eq!(seen.format, TokenFormat::Opaque);
//! assert_eq!(seen.verdict, Verdict::Unverified);
//! assert!(seen.fingerprint.to_string().starts_with("sha256:"));
//! ```

pub(crate) mod bearer;
mod cache_key;
mod claims;
mod fingerprint;
mod inspector;
mod jwks;
mod key_store;
mod keys;
mod memo;
mod resolver;
mod revoked;
mod verdict;

pub use bearer::{access_token_from_headers, bearer_from_headers, BearerCredential, Scheme};
pub use claims::{
    Delegate, TokenClaims, MAX_AUDIENCES, MAX_CLAIM_BYTES, MAX_DELEGATION_DEPTH, MAX_SCOPES,
};
pub use fingerprint::TokenFingerprint;
pub(crate) use inspector::Probe;
pub use inspector::{InspectedToken, TokenInspector, TokenInspectorBuilder, MIN_REFRESH_INTERVAL};
pub(crate) use keys::{signing_algorithm, verifies_once};
pub(crate) use memo::Memo;
pub(crate) use resolver::resolved;
pub use resolver::{
    CachedResolver, Rate, Resolution, ResolveFuture, ResolveRequest, TokenResolver,
};
pub use revoked::RevokedTokens;
pub use verdict::{TokenFormat, Verdict};

/// The signature algorithms [`TokenInspectorBuilder`] takes keys for, re-exported from the
/// `jsonwebtoken` version this crate is built with: with it, an application need not depend
/// on `jsonwebtoken` (nor match its version) to configure keys.
///
/// ```
/// use oauth_audit::token::{Algorithm, TokenInspector};
///
/// let inspector = TokenInspector::builder()
///     .hmac_secret(Algorithm::HS256, b"a-shared-secret-of-at-least-32-bytes!!")
///     .build()
///     .unwrap();
/// # let _ = inspector;
/// ```
pub use jsonwebtoken::Algorithm;

/// A token verification setting that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenConfigError {
    /// A key could not be read.
    #[error("{algorithm:?} key: {problem}")]
    Key {
        /// The algorithm the key was given for.
        algorithm: jsonwebtoken::Algorithm,
        /// What is wrong with it.
        problem: String,
    },
    /// A JWKS document could not be used.
    #[error("JWKS: {0}")]
    Jwks(String),
    /// Background refresh needs a Tokio runtime.
    #[error("a JWKS file or URL is refreshed in the background: build the inspector inside a Tokio runtime")]
    NoRuntime,
    /// Any other inconsistent setting.
    #[error("{0}")]
    Invalid(String),
}
