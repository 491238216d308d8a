//! Fetching an authorization server's metadata (feature `discovery`): OpenID Connect
//! Discovery 1.0 first, RFC 8414 second.

use std::time::Duration;

use super::metadata::{MetadataError, ProviderMetadata};
use crate::text::shown_url;

/// How long one metadata request may take unless configured otherwise: 10 seconds.
pub const DEFAULT_DISCOVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest metadata document read unless configured otherwise: 256 KiB.
pub const DEFAULT_MAX_METADATA_BYTES: usize = 256 * 1024;

/// Reads an authorization server's metadata from its issuer URL.
///
/// [`fetch`](Discovery::fetch) asks `{issuer}/.well-known/openid-configuration` (OpenID
/// Connect Discovery 1.0 §4), and when that answers no document (a status other than 2xx),
/// the RFC 8414 location: `/.well-known/oauth-authorization-server` inserted between the
/// host and the issuer's path (`https://as.example/tenant` ->
/// `https://as.example/.well-known/oauth-authorization-server/tenant`). The document must
/// name the very issuer asked for (RFC 8414 §3.3), or it is refused. Each request has a
/// timeout, and a document larger than the limit is refused unread.
///
/// ```no_run
/// use oauth_audit::oauth::{Discovery, Endpoints};
/// use oauth_audit::token::TokenInspector;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let metadata = Discovery::new("https://as.example").fetch().await?;
/// let endpoints = Endpoints::builder().discovered(&metadata).build()?;
/// let mut inspector = TokenInspector::builder().issuer([metadata.issuer().to_owned()]);
/// if let Some(jwks) = metadata.jwks_uri() {
///     inspector = inspector.jwks_url(jwks);
/// }
/// let inspector = inspector.build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct Discovery {
    issuer: String,
    timeout: Duration,
    max_bytes: usize,
    client: Option<reqwest::Client>,
}

/// Why metadata could not be discovered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The issuer is not an `https://` or `http://` URL without query or fragment.
    #[error("issuer {0:?} is not an http(s) URL without query or fragment")]
    Issuer(String),
    /// The HTTP client could not be built.
    #[error("metadata HTTP client: {0}")]
    Client(String),
    /// The request failed (connection refused, timeout, TLS).
    #[error("metadata at {url}: {message}")]
    Request {
        /// The metadata URL.
        url: String,
        /// What failed.
        message: String,
    },
    /// Neither location answered 2xx.
    #[error("no metadata at {url} (HTTP {status}) nor at {fallback} (HTTP {fallback_status})")]
    Status {
        /// The OpenID Connect location.
        url: String,
        /// Its status.
        status: u16,
        /// The RFC 8414 location.
        fallback: String,
        /// Its status.
        fallback_status: u16,
    },
    /// The document is larger than the limit.
    #[error("metadata at {url} is larger than {limit} bytes")]
    TooLarge {
        /// The metadata URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The document is not a JSON object.
    #[error("metadata at {url} is not a JSON object: {message}")]
    NotJson {
        /// The metadata URL.
        url: String,
        /// The parser's message.
        message: String,
    },
    /// The document cannot be used: no issuer, another issuer, a bad URL.
    #[error("metadata at {url}: {source}")]
    Invalid {
        /// The metadata URL.
        url: String,
        /// What is wrong.
        source: MetadataError,
    },
}

impl Discovery {
    /// Discovery for `issuer` (`https://as.example`, `https://as.example/realms/main`).
    pub fn new(issuer: impl Into<String>) -> Self {
        Discovery {
            issuer: issuer.into(),
            timeout: DEFAULT_DISCOVERY_TIMEOUT,
            max_bytes: DEFAULT_MAX_METADATA_BYTES,
            client: None,
        }
    }

    /// How long each metadata request may take (default 10 seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest document read (default 256 KiB).
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The HTTP client to use (for private CA roots, a proxy); the timeout still applies
    /// to each request.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The two metadata locations of the issuer: OpenID Connect's, then RFC 8414's.
    pub fn locations(&self) -> Result<[String; 2], DiscoveryError> {
        let issuer = &self.issuer;
        let bad = || DiscoveryError::Issuer(shown_url(issuer));
        if issuer.contains(['?', '#']) {
            return Err(bad());
        }
        let uri: http::Uri = issuer.parse().map_err(|_| bad())?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
            return Err(bad());
        }
        let base = issuer.trim_end_matches('/');
        let path = uri.path().trim_end_matches('/');
        let origin = &base[..base.len() - path.len()];
        Ok([
            format!("{base}/.well-known/openid-configuration"),
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
        ])
    }

    /// Fetches and checks the metadata.
    pub async fn fetch(&self) -> Result<ProviderMetadata, DiscoveryError> {
        let [oidc, rfc8414] = self.locations()?;
        let client = match &self.client {
            Some(client) => client.clone(),
            // The metadata is read where the issuer says, not wherever a redirect points.
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| DiscoveryError::Client(e.to_string()))?,
        };
        let (url, document) = match self.get(&client, &oidc).await? {
            Ok(document) => (oidc, document),
            Err(status) => match self.get(&client, &rfc8414).await? {
                Ok(document) => (rfc8414, document),
                Err(fallback_status) => {
                    return Err(DiscoveryError::Status {
                        url: shown_url(&oidc),
                        status,
                        fallback: shown_url(&rfc8414),
                        fallback_status,
                    })
                }
            },
        };
        let metadata: ProviderMetadata =
            serde_json::from_slice(&document).map_err(|e| DiscoveryError::NotJson {
                url: shown_url(&url),
                message: e.to_string(),
            })?;
        metadata
            .check(&self.issuer)
            .map_err(|source| DiscoveryError::Invalid {
                url: shown_url(&url),
                source,
            })?;
        Ok(metadata)
    }

    /// The body of a 2xx answer at `url`, or the status of another answer.
    async fn get(
        &self,
        client: &reqwest::Client,
        url: &str,
    ) -> Result<Result<Vec<u8>, u16>, DiscoveryError> {
        let failed = |e: reqwest::Error| DiscoveryError::Request {
            url: shown_url(url),
            message: e.without_url().to_string(),
        };
        let read = async {
            let mut response = client
                .get(url)
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(failed)?;
            if !response.status().is_success() {
                return Ok(Err(response.status().as_u16()));
            }
            let body = crate::response_body::whole(&mut response, self.max_bytes)
                .await
                .map_err(failed)?
                .ok_or_else(|| DiscoveryError::TooLarge {
                    url: shown_url(url),
                    limit: self.max_bytes,
                })?;
            Ok(Ok(body))
        };
        tokio::time::timeout(self.timeout, read)
            .await
            .map_err(|_| DiscoveryError::Request {
                url: shown_url(url),
                message: format!("no answer within {:?}", self.timeout),
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_follow_both_specifications() {
        let [oidc, rfc] = Discovery::new("https://as.example").locations().unwrap();
        assert_eq!(oidc, "https://as.example/.well-known/openid-configuration");
        assert_eq!(
            rfc,
            "https://as.example/.well-known/oauth-authorization-server"
        );
        let [oidc, rfc] = Discovery::new("https://as.example/realms/main/")
            .locations()
            .unwrap();
        assert_eq!(
            oidc,
            "https://as.example/realms/main/.well-known/openid-configuration"
        );
        assert_eq!(
            rfc,
            "https://as.example/.well-known/oauth-authorization-server/realms/main"
        );
        for bad in [
            "as.example",
            "ftp://as.example",
            "https://as.example/?x=1",
            "/x",
        ] {
            assert!(
                matches!(
                    Discovery::new(bad).locations(),
                    Err(DiscoveryError::Issuer(_))
                ),
                "{bad}"
            );
        }
    }
}
