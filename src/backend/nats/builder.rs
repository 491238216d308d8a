//! The builder of [`NatsBackend`]: its settings, checked (and the credentials file read)
//! without contacting a server.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_nats::{ConnectOptions, ServerAddr};

use super::backend::NatsBackend;
use super::settings::{Auth, Settings, Tls};
use crate::format::EventFormat;
use crate::ConfigError;

const DEFAULT_STREAM: &str = "OAUTH_AUDIT";
const DEFAULT_SUBJECT_PREFIX: &str = "oauth.audit";
const DEFAULT_NAME: &str = "nats";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's own default; a shorter window lets a late replay be stored twice.
const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

impl NatsBackend {
    /// Starts a builder for the given servers (`nats://host:port`, `tls://host:port` or
    /// `host:port`; an entry may also list several servers separated by commas).
    ///
    /// ```
    /// use oauth_audit::backend::NatsBackend;
    ///
    /// let nats = NatsBackend::builder(["nats://127.0.0.1:4222"]).build().unwrap();
    /// assert_eq!(nats.subject_prefix(), "oauth.audit");
    /// ```
    pub fn builder<I, S>(servers: I) -> NatsBackendBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        NatsBackendBuilder {
            servers: servers
                .into_iter()
                .flat_map(|entry| {
                    entry
                        .as_ref()
                        .split(',')
                        .map(str::trim)
                        .filter(|server| !server.is_empty())
                        .map(String::from)
                        .collect::<Vec<_>>()
                })
                .collect(),
            name: DEFAULT_NAME.to_owned(),
            stream: DEFAULT_STREAM.to_owned(),
            subject_prefix: DEFAULT_SUBJECT_PREFIX.to_owned(),
            max_age: Duration::ZERO,
            replicas: 1,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            timeout: DEFAULT_TIMEOUT,
            client_name: "oauth-audit".to_owned(),
            auth: Auth::None,
            credentials_file: None,
            tls: Tls::default(),
            format: EventFormat::OAuthAudit,
        }
    }
}

/// Configures a [`NatsBackend`]; made by [`NatsBackend::builder`].
#[must_use]
pub struct NatsBackendBuilder {
    servers: Vec<String>,
    name: String,
    stream: String,
    subject_prefix: String,
    max_age: Duration,
    replicas: usize,
    duplicate_window: Duration,
    timeout: Duration,
    client_name: String,
    auth: Auth,
    credentials_file: Option<PathBuf>,
    tls: Tls,
    format: EventFormat,
}

impl fmt::Debug for NatsBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBackendBuilder")
            .field("servers", &self.servers.len())
            .field("name", &self.name)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl NatsBackendBuilder {
    /// How each event is written as a message (default [`EventFormat::OAuthAudit`], schema
    /// v1; subjects and `Nats-Msg-Id` stay the same). In another format the backend's
    /// [`Delivery`](crate::delivery::Delivery) takes no spool directory
    /// ([`Backend::accepts_json`](crate::delivery::Backend::accepts_json)).
    pub fn format(mut self, format: EventFormat) -> Self {
        self.format = format;
        self
    }

    /// The backend's name in metrics labels, `dropped.sink` and diagnostics (default
    /// `nats`). Give each backend its own name when you run several.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The JetStream stream (default `OAUTH_AUDIT`), created if missing and otherwise
    /// updated to the settings of this builder.
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = name.into();
        self
    }

    /// The subject prefix (default `oauth.audit`): an event of kind `K` is published on
    /// `<prefix>.K`, and the stream captures `<prefix>.>`.
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// How long the stream keeps events (default: no limit). The retention of your audit
    /// trail: older messages are removed by the server.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How many servers keep a copy of each event (1 to 5, default 1). Use 3 in a cluster,
    /// so a server can fail without loss or interruption.
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// How long the stream remembers message ids to drop resent events (default 2 minutes,
    /// at most `max_age`). Resends after a timeout or a replay of the spool must arrive
    /// within this window to be dropped; the server keeps every id of the window in memory.
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Bounds connecting, setting up the stream and waiting for the acknowledgements of one
    /// batch (default 5 seconds). A `send` to a server that is down fails after about this
    /// long, and the batch is retried.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connection name shown in the server's monitoring (default `oauth-audit`).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Authenticates with a user name and password.
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Authenticates with an NKey seed.
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.auth = Auth::NKey(seed.into());
        self
    }

    /// Authenticates with a `.creds` file (user JWT and NKey seed), read when the backend
    /// is built.
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.credentials_file = Some(path.into());
        self
    }

    /// Refuses to connect without TLS (implied by `tls://` server addresses, by
    /// [`root_certificates`](Self::root_certificates) and by
    /// [`client_certificate`](Self::client_certificate)).
    pub fn require_tls(mut self, required: bool) -> Self {
        self.tls.required = required;
        self
    }

    /// Starts TLS before the NATS handshake (the server needs `handshake_first`).
    pub fn tls_first(mut self) -> Self {
        self.tls.first = true;
        self.tls.required = true;
        self
    }

    /// Trusts the certificate authorities in this PEM file (instead of the system roots).
    /// Implies [`require_tls`](Self::require_tls): a server that offers no TLS is refused.
    pub fn root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.root_certificates = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM files), for servers that verify
    /// clients. Implies [`require_tls`](Self::require_tls).
    pub fn client_certificate(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client_certificate = Some((cert.into(), key.into()));
        self
    }

    /// Checks the settings and makes the backend. Nothing is contacted yet.
    pub fn build(self) -> Result<NatsBackend, ConfigError> {
        if self.servers.is_empty() {
            return Err(ConfigError::invalid(
                "NatsBackend servers",
                "no server given: pass at least one address such as nats://127.0.0.1:4222",
            ));
        }
        let servers = self
            .servers
            .iter()
            .enumerate()
            .map(|(index, server)| {
                // Named by position, not quoted: an address may carry a password.
                ServerAddr::from_str(server).map_err(|err| {
                    ConfigError::invalid(
                        "NatsBackend servers",
                        format!(
                            "server {} of {}: {err} (expected nats://host:port)",
                            index + 1,
                            self.servers.len()
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if self.name.is_empty() {
            return Err(ConfigError::invalid(
                "NatsBackend name",
                "must not be empty",
            ));
        }
        check_stream_name(&self.stream)?;
        check_subject_prefix(&self.subject_prefix)?;
        if !(1..=5).contains(&self.replicas) {
            return Err(ConfigError::invalid(
                "NatsBackend replicas",
                format!(
                    "{} is out of range: JetStream keeps 1 to 5 replicas",
                    self.replicas
                ),
            ));
        }
        if self.duplicate_window.is_zero() {
            return Err(ConfigError::invalid(
                "NatsBackend duplicate_window",
                "must be positive: resent events are only dropped within this window",
            ));
        }
        if !self.max_age.is_zero() && self.duplicate_window > self.max_age {
            return Err(ConfigError::invalid(
                "NatsBackend duplicate_window",
                format!(
                    "{:?} is longer than max_age {:?}; JetStream refuses such a stream",
                    self.duplicate_window, self.max_age
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid(
                "NatsBackend timeout",
                "must be positive",
            ));
        }
        let auth = match self.credentials_file {
            Some(path) => {
                let contents = std::fs::read_to_string(&path).map_err(|err| {
                    ConfigError::invalid(
                        "NatsBackend credentials_file",
                        format!("cannot read {}: {err}", path.display()),
                    )
                })?;
                ConnectOptions::with_credentials(&contents).map_err(|err| {
                    ConfigError::invalid(
                        "NatsBackend credentials_file",
                        format!("{} is not a NATS credentials file: {err}", path.display()),
                    )
                })?;
                Auth::Credentials(contents)
            }
            None => self.auth,
        };
        let tls_files = self.tls.root_certificates.iter().chain(
            self.tls
                .client_certificate
                .iter()
                .flat_map(|(cert, key)| [cert, key]),
        );
        for file in tls_files {
            if !file.is_file() {
                return Err(ConfigError::invalid(
                    "NatsBackend TLS",
                    format!("{} is not a readable file", file.display()),
                ));
            }
        }
        let mut tls = self.tls;
        // Certificates say TLS is wanted: without this the client would fall back to a plain
        // connection (and send its credentials in clear) to whoever answers without TLS.
        tls.required |= tls.root_certificates.is_some() || tls.client_certificate.is_some();
        Ok(NatsBackend::new(
            self.name,
            Settings {
                servers,
                stream: self.stream,
                subject_prefix: self.subject_prefix,
                max_age: self.max_age,
                replicas: self.replicas,
                duplicate_window: self.duplicate_window,
                timeout: self.timeout,
                client_name: self.client_name,
                auth,
                tls,
                format: self.format,
            },
        ))
    }
}

fn check_stream_name(name: &str) -> Result<(), ConfigError> {
    let bad = name
        .chars()
        .find(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'));
    if name.is_empty() || bad.is_some() {
        return Err(ConfigError::invalid(
            "NatsBackend stream",
            format!("{name:?} is not a stream name: use letters, digits, '-' and '_'"),
        ));
    }
    Ok(())
}

fn check_subject_prefix(prefix: &str) -> Result<(), ConfigError> {
    let valid = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && !token
                    .chars()
                    .any(|c| c.is_whitespace() || c == '*' || c == '>')
        });
    if !valid {
        return Err(ConfigError::invalid(
            "NatsBackend subject_prefix",
            format!(
                "{prefix:?} is not a subject prefix: dot-separated, non-empty tokens without \
                 spaces or wildcards, such as oauth.audit"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_servers_are_split() {
        let nats = NatsBackend::builder(["nats://a:1, nats://b:2", "nats://c:3"])
            .build()
            .unwrap();
        assert_eq!(nats.settings.servers.len(), 3);
    }

    #[test]
    fn refuses_bad_settings() {
        let base = || NatsBackend::builder(["nats://127.0.0.1:4222"]);
        let cases = [
            NatsBackend::builder(Vec::<String>::new()).build(),
            NatsBackend::builder(["http://127.0.0.1:4222"]).build(),
            base().stream("a.b").build(),
            base().stream("").build(),
            base().subject_prefix("oauth.*").build(),
            base().subject_prefix("oauth..audit").build(),
            base().subject_prefix("oauth audit").build(),
            base().replicas(0).build(),
            base().replicas(6).build(),
            base().duplicate_window(Duration::ZERO).build(),
            base()
                .max_age(Duration::from_secs(60))
                .duplicate_window(Duration::from_secs(120))
                .build(),
            base().timeout(Duration::ZERO).build(),
            base().credentials_file("/nonexistent/audit.creds").build(),
            base().root_certificates("/nonexistent/ca.pem").build(),
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let err = case.expect_err(&format!("case {i} should be refused"));
            assert!(
                matches!(err, ConfigError::Invalid { .. }),
                "case {i}: {err}"
            );
        }
    }
}
