//! Claims of opaque bearer tokens from the authorization server's RFC 7662 introspection
//! endpoint, for the audit layer's token resolver.

use oauth_audit::token::{Resolution, ResolveFuture, ResolveRequest, TokenClaims, TokenResolver};

/// Asks an introspection endpoint about each opaque token (wrap it in a
/// [`CachedResolver`](oauth_audit::token::CachedResolver)).
pub struct Introspection {
    http: reqwest::Client,
    url: String,
    /// The URL for logs: its query may carry a key.
    shown_url: String,
    client_id: String,
    client_secret: Option<String>,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspection")
            .field("url", &self.shown_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Introspection {
    /// Introspects at `url`, authenticating with HTTP Basic as `client_id`.
    pub fn new(
        url: String,
        client_id: String,
        client_secret: Option<String>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Introspection {
            http,
            shown_url: oauth_audit::event::shown_url(&url),
            url,
            client_id,
            client_secret,
        })
    }

    /// Asks about `token`. An endpoint that cannot be reached, fails or answers something
    /// other than JSON gives [`Resolution::Unavailable`]: that says nothing about the token.
    async fn introspect(&self, token: &str) -> Resolution {
        let answer = self
            .http
            .post(&self.url)
            .basic_auth(&self.client_id, self.client_secret.as_deref())
            .form(&[("token", token)])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let body = match answer {
            Ok(response) => response.bytes().await,
            Err(err) => Err(err),
        };
        let body = match body {
            Ok(body) => body,
            Err(err) => {
                // Never the token itself: the URL and the error only.
                tracing::warn!(url = %self.shown_url, error = %err.without_url(), "introspection failed");
                return Resolution::Unavailable;
            }
        };
        let value: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(url = %self.shown_url, error = %err, "introspection answer is not JSON");
                return Resolution::Unavailable;
            }
        };
        if value.get("active") == Some(&serde_json::Value::Bool(true)) {
            Resolution::Active(TokenClaims::from_json(&value))
        } else {
            Resolution::Inactive
        }
    }
}

impl TokenResolver for Introspection {
    fn resolve<'a>(&'a self, request: ResolveRequest<'a>) -> ResolveFuture<'a> {
        Box::pin(self.introspect(request.token))
    }
}
