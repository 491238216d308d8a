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
            // A redirect would carry the token (a 307 or 308 sends the form again) to
            // wherever it points, over plain HTTP too; an introspection endpoint answers
            // where it is.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Introspection {
            http,
            shown_url: oauth_audit::event::shown_url(&url),
            url,
            client_id,
            client_secret,
        })
    }

    /// Asks about `token`. An endpoint that cannot be reached, fails, redirects or answers
    /// something other than JSON (or more than [`MAX_ANSWER`] bytes) gives
    /// [`Resolution::Unavailable`]: that says nothing about the token.
    async fn introspect(&self, token: &str) -> Resolution {
        let answer = self
            .http
            .post(&self.url)
            .basic_auth(
                form_encoded(&self.client_id),
                self.client_secret.as_deref().map(form_encoded),
            )
            .form(&[("token", token)])
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let body = match answer {
            Ok(response) if response.status().is_redirection() => {
                tracing::warn!(url = %self.shown_url, status = response.status().as_u16(), "introspection endpoint redirects: not followed");
                return Resolution::Unavailable;
            }
            Ok(response) => bounded(response).await,
            Err(err) => Err(err),
        };
        let body = match body {
            Ok(Some(body)) => body,
            Ok(None) => {
                tracing::warn!(url = %self.shown_url, max_bytes = MAX_ANSWER, "introspection answer too large: not read");
                return Resolution::Unavailable;
            }
            Err(err) => {
                // Never the token itself: the URL and the error only.
                tracing::warn!(url = %self.shown_url, error = %err.without_url(), "introspection failed");
                return Resolution::Unavailable;
            }
        };
        // Read as any other parser reads it: `serde_json`'s `Value` would take an object
        // whose first member has its raw-value name for the JSON in that member's string.
        let value = match oauth_audit::json::from_slice(&body) {
            Ok(value) => value,
            Err(err) => {
                tracing::warn!(url = %self.shown_url, error = %err, "introspection answer is not JSON");
                return Resolution::Unavailable;
            }
        };
        resolution(&value)
    }
}

/// What an introspection answer says of a token presented as an access token: active, with
/// its claims, only when the issuer says it is active and does not say it is another kind of
/// token. RFC 7662 answers `active` for any token the server issued, and a refresh token is
/// one (it is long-lived, and a client must never send it to a resource server): ORY Hydra
/// says so in `token_use`, Keycloak in `typ`, others in `token_type`. An issuer that does not
/// say (node oidc-provider only leaves out `token_type`) cannot be told apart here.
fn resolution(answer: &serde_json::Value) -> Resolution {
    if answer.get("active") != Some(&serde_json::Value::Bool(true)) {
        return Resolution::Inactive;
    }
    let says = |member: &str, kinds: &[&str]| {
        answer
            .get(member)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|kind| kinds.iter().any(|k| kind.eq_ignore_ascii_case(k)))
    };
    let not_access = answer
        .get("token_use")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|token_use| !token_use.eq_ignore_ascii_case("access_token"))
        || says("typ", &["Refresh", "Offline", "ID"])
        || says("token_type", &["refresh_token", "Refresh"]);
    if not_access {
        return Resolution::Inactive;
    }
    Resolution::Active(TokenClaims::from_json(answer))
}

/// What RFC 6749 (section 2.3.1) has a client put in HTTP Basic: its id and secret each
/// form-urlencoded first, so that a `:` in the id, or a `+`, `%` or `/` in a secret, reaches
/// the server as it is (servers decode both; a base64 secret sent raw would lose its `+`).
fn form_encoded(text: &str) -> String {
    /// Everything but what form-urlencoding leaves as it is (a space as `%20`, which
    /// decoders take as a `+`).
    const FORM: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'*')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_');
    percent_encoding::utf8_percent_encode(text, FORM).to_string()
}

/// The largest introspection answer read: a real one is a few hundred bytes.
const MAX_ANSWER: usize = 256 * 1024;

/// The body of `response`, or `None` once it is longer than [`MAX_ANSWER`] (announced or
/// as it comes): an endpoint cannot make the proxy hold what it likes in memory.
async fn bounded(mut response: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_ANSWER as u64)
    {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

impl TokenResolver for Introspection {
    fn resolve<'a>(&'a self, request: ResolveRequest<'a>) -> ResolveFuture<'a> {
        Box::pin(self.introspect(request.token))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn active(answer: serde_json::Value) -> bool {
        matches!(resolution(&answer), Resolution::Active(_))
    }

    #[test]
    fn only_active_access_tokens_are_active() {
        assert!(active(serde_json::json!({"active": true, "sub": "alice"})));
        assert!(active(
            serde_json::json!({"active": true, "token_type": "Bearer"})
        ));
        assert!(active(
            serde_json::json!({"active": true, "token_type": "DPoP"})
        ));
        // ORY Hydra.
        assert!(active(
            serde_json::json!({"active": true, "token_use": "access_token"})
        ));
        assert!(!active(
            serde_json::json!({"active": true, "token_use": "refresh_token"})
        ));
        // Keycloak.
        assert!(active(serde_json::json!({"active": true, "typ": "Bearer"})));
        assert!(!active(
            serde_json::json!({"active": true, "typ": "Refresh"})
        ));
        assert!(!active(
            serde_json::json!({"active": true, "typ": "Offline"})
        ));
        assert!(!active(serde_json::json!({"active": true, "typ": "ID"})));
        assert!(!active(
            serde_json::json!({"active": true, "token_type": "refresh_token"})
        ));
        assert!(!active(
            serde_json::json!({"active": false, "token_type": "Bearer"})
        ));
        assert!(!active(serde_json::json!({"active": "true"})));
        assert!(!active(serde_json::json!({})));
    }

    use super::*;

    /// The Authorization header of the one request a server on loopback takes, answered
    /// with an inactive token.
    async fn authorization_sent(client_id: &str, secret: &str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0, "the request ended early");
                head.extend_from_slice(&buf[..n]);
            }
            let body = br#"{"active":false}"#;
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
            stream.write_all(body).await.unwrap();
            String::from_utf8_lossy(&head)
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("authorization")
                        .then(|| value.trim().to_owned())
                })
                .expect("an Authorization header")
        });
        let introspection =
            Introspection::new(url, client_id.to_owned(), Some(secret.to_owned())).unwrap();
        assert!(matches!(
            introspection.introspect("opaque-token").await,
            Resolution::Inactive
        ));
        let header = server.await.unwrap();
        let encoded = header.strip_prefix("Basic ").expect("HTTP Basic");
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    }

    /// A server on loopback that answers every request with `answer` and sends each
    /// request it took (head and body) down the channel.
    async fn server(answer: String) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then what the body is said to be.
                let length = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break None;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break Some(end + 4 + length);
                    }
                };
                if let Some(length) = length {
                    while request.len() < length {
                        let n = stream.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                }
                let _ = tx.send(String::from_utf8_lossy(&request).into_owned());
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed_with_the_token() {
        let body = r#"{"active":true,"sub":"alice"}"#;
        let (elsewhere, mut taken_elsewhere) = server(format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        ))
        .await;
        let (endpoint, mut taken) = server(format!(
            "HTTP/1.1 307 Temporary Redirect\r\nlocation: {elsewhere}/introspect\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        ))
        .await;
        let introspection = Introspection::new(
            format!("{endpoint}/introspect"),
            "orders-api".into(),
            Some("s3cret".into()),
        )
        .unwrap();
        let resolution = introspection.introspect("live-bearer-token").await;
        assert!(taken
            .recv()
            .await
            .unwrap()
            .contains("token=live-bearer-token"));
        assert!(
            taken_elsewhere.try_recv().is_err(),
            "the token went to where the endpoint redirected"
        );
        assert!(
            matches!(resolution, Resolution::Unavailable),
            "a redirect says nothing about the token"
        );
    }

    #[tokio::test]
    async fn an_answer_larger_than_any_introspection_is_not_kept() {
        let padding = "x".repeat(MAX_ANSWER + 1);
        let body = format!(r#"{{"active":true,"sub":"alice","padding":"{padding}"}}"#);
        // Announced, and sent without a length (until the connection closes).
        for length in [format!("content-length: {}\r\n", body.len()), String::new()] {
            let (endpoint, _taken) = server(format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n{body}"
            ))
            .await;
            let introspection =
                Introspection::new(format!("{endpoint}/introspect"), "orders-api".into(), None)
                    .unwrap();
            assert!(
                matches!(
                    introspection.introspect("opaque-token").await,
                    Resolution::Unavailable
                ),
                "{length:?}"
            );
        }
    }

    #[tokio::test]
    async fn client_credentials_are_form_urlencoded_in_http_basic() {
        assert_eq!(
            authorization_sent("rs:orders", "a+b/c=%d e").await,
            "rs%3Aorders:a%2Bb%2Fc%3D%25d%20e"
        );
        // What most ids and secrets are: unchanged.
        assert_eq!(
            authorization_sent("orders-api", "s3cr3t_V4lue.x").await,
            "orders-api:s3cr3t_V4lue.x"
        );
    }
}
