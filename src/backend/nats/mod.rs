//! The NATS JetStream backend: one message per event on `<prefix>.<kind>`, deduplicated by
//! the `Nats-Msg-Id` header. See [`NatsBackend`].

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream::context::{GetStreamErrorKind, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, ErrorCode};
use async_nats::{ConnectOptions, Event, ServerAddr};

use crate::delivery::{Backend, BackendError, EncodedEvent};
use crate::ConfigError;

const DEFAULT_STREAM: &str = "OAUTH_AUDIT";
const DEFAULT_SUBJECT_PREFIX: &str = "oauth.audit";
const DEFAULT_NAME: &str = "nats";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server's own default; a shorter window lets a late replay be stored twice.
const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A [`Backend`] that publishes audit events to a NATS JetStream stream.
///
/// Each event becomes one message on `<subject_prefix>.<kind>` (for example
/// `oauth.audit.TokenRevoked`) whose payload is the schema-v1 JSON of the event and whose
/// `Nats-Msg-Id` header is the event id, so the stream drops a resent event within its
/// duplicate window. The stream is created (or its settings updated) on the first
/// connection, with file storage and the subjects `<subject_prefix>.>`. A batch is
/// published in one go and `send` returns `Ok` once JetStream acknowledged every event
/// (an acknowledgement of a duplicate counts).
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_audit::backend::NatsBackend;
/// use oauth_audit::delivery::Delivery;
/// use oauth_audit::writer::Auditor;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let nats = NatsBackend::builder(["nats://10.0.0.1:4222", "nats://10.0.0.2:4222"])
///     .stream("OAUTH_AUDIT")
///     .subject_prefix("oauth.audit")
///     .max_age(Duration::from_secs(90 * 24 * 3600))
///     .replicas(3)
///     .credentials_file("/etc/oauth-audit/audit.creds")
///     .build()?;
/// // Retries, an on-disk spool while NATS is down, replay in order.
/// let writer = Delivery::builder(nats).spool_dir("/var/lib/oauth-audit/spool").build()?;
/// let auditor = Auditor::builder().service_name("orders-api").writer(writer).build()?;
/// # Ok(()) }
/// ```
///
/// Built with [`NatsBackend::builder`]. Nothing is contacted before the first
/// [`send`](Backend::send): the connection (and the stream) are set up lazily, and a failed
/// attempt is retried at the next `send`. Once connected, the client reconnects by itself
/// (to any server of the cluster), and every `send` is bounded by
/// [`timeout`](NatsBackendBuilder::timeout), so a server that is down makes it fail instead
/// of hang.
pub struct NatsBackend {
    name: String,
    settings: Settings,
    connection: Option<Connection>,
}

struct Connection {
    jetstream: jetstream::Context,
    stream: StreamState,
}

/// What is known about the stream on the current connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum StreamState {
    /// Not set up yet: create it or apply the settings.
    Unconfigured,
    /// Created or updated to the settings.
    Ready,
    /// A publish found nobody answering for the subjects: the stream may have been deleted,
    /// or it is electing a leader. Look before creating, so a failover never rewrites it.
    Lost,
}

struct Settings {
    servers: Vec<ServerAddr>,
    stream: String,
    subject_prefix: String,
    max_age: Duration,
    replicas: usize,
    duplicate_window: Duration,
    timeout: Duration,
    client_name: String,
    auth: Auth,
    tls: Tls,
}

#[derive(Default)]
enum Auth {
    #[default]
    None,
    Token(String),
    UserPassword(String, String),
    Credentials(String),
    NKey(String),
}

#[derive(Default)]
struct Tls {
    required: bool,
    first: bool,
    root_certificates: Option<PathBuf>,
    client_certificate: Option<(PathBuf, PathBuf)>,
}

impl fmt::Debug for NatsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials stay out of the output: only which kind of authentication is used.
        let auth = match self.settings.auth {
            Auth::None => "none",
            Auth::Token(_) => "token",
            Auth::UserPassword(..) => "user and password",
            Auth::Credentials(_) => "credentials",
            Auth::NKey(_) => "nkey",
        };
        f.debug_struct("NatsBackend")
            .field("name", &self.name)
            .field("servers", &redacted(&self.settings.servers))
            .field("stream", &self.settings.stream)
            .field("subject_prefix", &self.settings.subject_prefix)
            .field("max_age", &self.settings.max_age)
            .field("replicas", &self.settings.replicas)
            .field("duplicate_window", &self.settings.duplicate_window)
            .field("timeout", &self.settings.timeout)
            .field("auth", &auth)
            .field("tls_required", &self.settings.tls.required)
            .field("connected", &self.connection.is_some())
            .finish()
    }
}

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
        }
    }

    /// The stream events are published to.
    pub fn stream(&self) -> &str {
        &self.settings.stream
    }

    /// The subject prefix; an event of kind `K` goes to `<prefix>.K`.
    pub fn subject_prefix(&self) -> &str {
        &self.settings.subject_prefix
    }

    /// The subject an event of `kind` is published on.
    pub fn subject(&self, kind: crate::event::EventKind) -> String {
        format!("{}.{}", self.settings.subject_prefix, kind.as_str())
    }

    async fn connect(&self) -> Result<Connection, BackendError> {
        let settings = &self.settings;
        let mut options = match &settings.auth {
            Auth::None => ConnectOptions::new(),
            Auth::Token(token) => ConnectOptions::with_token(token.clone()),
            Auth::UserPassword(user, password) => {
                ConnectOptions::with_user_and_password(user.clone(), password.clone())
            }
            Auth::Credentials(contents) => ConnectOptions::with_credentials(contents)
                .map_err(|err| self.unavailable(format!("NATS credentials: {err}")))?,
            Auth::NKey(seed) => ConnectOptions::with_nkey(seed.clone()),
        };
        options = options
            .name(&settings.client_name)
            .connection_timeout(settings.timeout)
            .request_timeout(Some(settings.timeout))
            .require_tls(settings.tls.required)
            .event_callback(|event| async move {
                match event {
                    Event::Connected => tracing::info!(target: "oauth_audit::nats", "connected to NATS"),
                    Event::Disconnected => {
                        tracing::warn!(target: "oauth_audit::nats", "disconnected from NATS, reconnecting")
                    }
                    other => tracing::warn!(target: "oauth_audit::nats", "NATS: {other}"),
                }
            });
        if settings.tls.first {
            options = options.tls_first();
        }
        if let Some(roots) = &settings.tls.root_certificates {
            options = options.add_root_certificates(roots.clone());
        }
        if let Some((cert, key)) = &settings.tls.client_certificate {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        let client = options
            .connect(settings.servers.clone())
            .await
            .map_err(|err| self.unavailable(format!("cannot connect to NATS: {err}")))?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(settings.timeout)
            .ack_timeout(settings.timeout)
            .build(client);
        Ok(Connection {
            jetstream,
            stream: StreamState::Unconfigured,
        })
    }

    fn stream_config(&self) -> StreamConfig {
        let settings = &self.settings;
        StreamConfig {
            name: settings.stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            max_age: settings.max_age,
            num_replicas: settings.replicas,
            duplicate_window: settings.duplicate_window,
            storage: StorageType::File,
            description: Some("OAuth audit events (oauth-audit)".to_owned()),
            ..StreamConfig::default()
        }
    }

    async fn ensure_stream(&self, connection: &mut Connection) -> Result<(), BackendError> {
        let jetstream = &connection.jetstream;
        match connection.stream {
            StreamState::Ready => return Ok(()),
            StreamState::Unconfigured => {}
            StreamState::Lost => match jetstream.get_stream(&self.settings.stream).await {
                Ok(_) => {
                    connection.stream = StreamState::Ready;
                    return Ok(());
                }
                Err(err) => match err.kind() {
                    GetStreamErrorKind::JetStream(js)
                        if js.error_code() == ErrorCode::STREAM_NOT_FOUND => {}
                    _ => {
                        return Err(self.unavailable(format!(
                            "cannot look up JetStream stream {:?}: {err}",
                            self.settings.stream
                        )))
                    }
                },
            },
        }
        jetstream
            .create_or_update_stream(self.stream_config())
            .await
            .map_err(|err| {
                self.unavailable(format!(
                    "cannot create or update JetStream stream {:?} (subjects {}.>): {err}; \
                     check that JetStream is enabled, that no other stream claims these \
                     subjects, and that the cluster has {} server(s) for the replicas",
                    self.settings.stream, self.settings.subject_prefix, self.settings.replicas
                ))
            })?;
        connection.stream = StreamState::Ready;
        Ok(())
    }

    fn unavailable(&self, message: String) -> BackendError {
        BackendError::unavailable(self.name.clone(), message)
    }

    /// Publishes the batch, then awaits every acknowledgement, all within one timeout.
    /// Returns the events the server (or the client's size check) refused for good.
    async fn publish(
        &self,
        connection: &mut Connection,
        batch: &[EncodedEvent],
    ) -> Result<Vec<Refused>, BackendError> {
        let deadline = tokio::time::Instant::now() + self.settings.timeout;
        let max_payload = connection.jetstream.client().max_payload();
        let mut refused = Vec::new();
        let mut acks = Vec::with_capacity(batch.len());
        let publishing = async {
            for event in batch {
                // Headers count towards max_payload; 128 bytes covers `Nats-Msg-Id` and framing.
                if event.json().len() + 128 > max_payload {
                    refused.push(Refused {
                        id: event.id(),
                        reason: format!(
                            "{} bytes exceed the server's max_payload of {max_payload} bytes",
                            event.json().len()
                        ),
                    });
                    continue;
                }
                let message = PublishMessage::build()
                    .payload(event.json().clone())
                    .message_id(event.id().to_string());
                let ack = connection
                    .jetstream
                    .send_publish(self.subject(event.kind()), message)
                    .await?;
                acks.push((event.id(), ack));
            }
            Ok::<_, PublishError>(())
        };
        match tokio::time::timeout_at(deadline, publishing).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(self.publish_failed(err, connection)),
            Err(_) => return Err(self.timed_out()),
        }
        // The acks arrive concurrently, so awaiting them in turn costs no extra round trips.
        let acknowledged = async {
            for (id, ack) in acks {
                // A duplicate ack means the stream already holds the event: success too.
                if let Err(err) = ack.await {
                    match permanent_refusal(&err) {
                        Some(reason) => refused.push(Refused { id, reason }),
                        None => return Err(err),
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout_at(deadline, acknowledged).await {
            Ok(Ok(())) => Ok(refused),
            Ok(Err(err)) => Err(self.publish_failed(err, connection)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&self) -> BackendError {
        self.unavailable(format!(
            "no JetStream acknowledgement within {:?} (server down, or the stream is \
             electing a leader)",
            self.settings.timeout
        ))
    }

    /// Classifies a failure that is not a refusal of particular events.
    fn publish_failed(&self, err: PublishError, connection: &mut Connection) -> BackendError {
        let stream_missing = err.kind() == PublishErrorKind::StreamNotFound
            || server_error_code(&err) == Some(ErrorCode::STREAM_NOT_FOUND);
        if stream_missing {
            // Deleted, or without a leader for a moment: look again before the next publish.
            connection.stream = StreamState::Lost;
            return self.unavailable(format!(
                "no JetStream stream answers on {}.> ({err})",
                self.settings.subject_prefix
            ));
        }
        self.unavailable(format!("JetStream publish failed: {err}"))
    }
}

/// An event the server will never take.
struct Refused {
    id: uuid::Uuid,
    reason: String,
}

/// The JetStream error code the server answered a publish with, if any.
fn server_error_code(err: &PublishError) -> Option<ErrorCode> {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .map(jetstream::Error::error_code)
}

/// Why retrying this publish can never succeed, if that is so.
fn permanent_refusal(err: &PublishError) -> Option<String> {
    match err.kind() {
        PublishErrorKind::MaxPayloadExceeded => Some(err.to_string()),
        _ if server_error_code(err) == Some(ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM) => {
            Some(err.to_string())
        }
        _ => None,
    }
}

impl Backend for NatsBackend {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => self.connect().await?,
        };
        if let Err(err) = self.ensure_stream(&mut connection).await {
            self.connection = Some(connection);
            return Err(err);
        }
        let result = match self.publish(&mut connection, batch).await {
            Ok(refused) if refused.is_empty() => Ok(()),
            Ok(refused) => Err(BackendError::rejected(
                self.name.clone(),
                format!(
                    "{} of {} events can never be stored (the others were): {}",
                    refused.len(),
                    batch.len(),
                    refused
                        .iter()
                        .map(|refused| format!("{}: {}", refused.id, refused.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            )),
            Err(err) => Err(err),
        };
        self.connection = Some(connection);
        result
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
}

impl fmt::Debug for NatsBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBackendBuilder")
            .field("servers", &self.servers.len())
            .field("name", &self.name)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .finish_non_exhaustive()
    }
}

impl NatsBackendBuilder {
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

    /// Refuses to connect without TLS (implied by `tls://` server addresses).
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
    pub fn root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.root_certificates = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM files), for servers that verify
    /// clients.
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
        Ok(NatsBackend {
            name: self.name,
            settings: Settings {
                servers,
                stream: self.stream,
                subject_prefix: self.subject_prefix,
                max_age: self.max_age,
                replicas: self.replicas,
                duplicate_window: self.duplicate_window,
                timeout: self.timeout,
                client_name: self.client_name,
                auth,
                tls: self.tls,
            },
            connection: None,
        })
    }
}

/// The servers without any user or password embedded in their URLs.
fn redacted(servers: &[ServerAddr]) -> Vec<String> {
    servers
        .iter()
        .map(|server| format!("{}://{}:{}", server.scheme(), server.host(), server.port()))
        .collect()
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
    use crate::event::EventKind;

    #[test]
    fn defaults_and_subjects() {
        let nats = NatsBackend::builder(["127.0.0.1:4222"]).build().unwrap();
        assert_eq!(nats.name(), "nats");
        assert_eq!(nats.stream(), "OAUTH_AUDIT");
        assert_eq!(
            nats.subject(EventKind::TokenRevoked),
            "oauth.audit.TokenRevoked"
        );
        let config = nats.stream_config();
        assert_eq!(config.subjects, ["oauth.audit.>"]);
        assert_eq!(config.storage, StorageType::File);
        assert_eq!(config.duplicate_window, Duration::from_secs(120));
        assert_eq!(config.num_replicas, 1);
    }

    #[test]
    fn comma_separated_servers_are_split() {
        let nats = NatsBackend::builder(["nats://a:1, nats://b:2", "nats://c:3"])
            .build()
            .unwrap();
        assert_eq!(nats.settings.servers.len(), 3);
    }

    #[test]
    fn settings_reach_the_stream() {
        let nats = NatsBackend::builder(["nats://127.0.0.1:4222"])
            .stream("AUDIT")
            .subject_prefix("acme.audit")
            .max_age(Duration::from_secs(3600))
            .replicas(3)
            .duplicate_window(Duration::from_secs(300))
            .build()
            .unwrap();
        let config = nats.stream_config();
        assert_eq!(config.name, "AUDIT");
        assert_eq!(config.subjects, ["acme.audit.>"]);
        assert_eq!(config.max_age, Duration::from_secs(3600));
        assert_eq!(config.num_replicas, 3);
        assert_eq!(config.duplicate_window, Duration::from_secs(300));
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

    #[test]
    fn debug_hides_secrets() {
        let nats = NatsBackend::builder(["nats://127.0.0.1:4222"])
            .user_and_password("audit", "s3cret-password")
            .build()
            .unwrap();
        let debug = format!("{nats:?}");
        assert!(!debug.contains("s3cret-password"), "{debug}");
        assert!(debug.contains("user and password"), "{debug}");

        let in_url = NatsBackend::builder(["nats://audit:url-s3cret@127.0.0.1:4222"]);
        assert!(!format!("{in_url:?}").contains("url-s3cret"));
        let in_url = in_url.build().unwrap();
        let debug = format!("{in_url:?}");
        assert!(!debug.contains("url-s3cret"), "{debug}");
        assert!(debug.contains("nats://127.0.0.1:4222"), "{debug}");

        let unparsable = NatsBackend::builder(["nats://audit:url-s3cret@127.0.0.1:42x2"])
            .build()
            .unwrap_err()
            .to_string();
        assert!(!unparsable.contains("url-s3cret"), "{unparsable}");
        assert!(unparsable.contains("server 1 of 1"), "{unparsable}");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transient_failure() {
        // Port 1 on loopback refuses connections.
        let mut nats = NatsBackend::builder(["nats://127.0.0.1:1"])
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let event = crate::event::AuditEvent::new(
            std::sync::Arc::new(crate::event::ServiceInfo {
                name: "api".into(),
                instance: None,
            }),
            crate::event::Timestamp::now(),
            EventKind::TokenRevoked,
            crate::event::Outcome::Success,
        );
        let batch = [EncodedEvent::encode(&event).unwrap()];
        let err = nats.send(&batch).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
