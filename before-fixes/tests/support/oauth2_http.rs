//! What tests that drive endpoints with the `oauth2` crate share: its HTTP client over
//! reqwest, and the fingerprint a token must appear as (computed here independently of the
//! library, so the tests check the library's).

use std::future::Future;
use std::pin::Pin;

use sha2::{Digest, Sha256};

/// `oauth2`'s HTTP client over reqwest without TLS: plain http on loopback.
///
/// `oauth2` refuses a revocation URL that is not https (RFC 7009 §2.1, no opt-out), so the
/// test gives it an https URL and this client, standing in for a TLS terminator, sends
/// it over plain http.
pub struct Http(pub reqwest::Client);

impl<'c> oauth2::AsyncHttpClient<'c> for Http {
    type Error = reqwest::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, Self::Error>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let response = self
                .0
                .request(
                    parts.method,
                    parts.uri.to_string().replacen("https://", "http://", 1),
                )
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut builder = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let body = response.bytes().await?.to_vec();
            Ok(builder.body(body).expect("a valid response"))
        })
    }
}

/// `token` as schema v1 fingerprints it: `sha256:` and 32 hex digits of its SHA-256.
pub fn fp(token: &str) -> String {
    format!(
        "sha256:{}",
        &hex::encode(Sha256::digest(token.as_bytes()))[..32]
    )
}
