//! The backend itself and its [`Backend`] impl: a `send` connects if needed, sets up the
//! stream, publishes the batch and reports the events refused for good.

use std::fmt;

use async_nats::ServerAddr;

use super::connect::{connect, Connection};
use super::publish::publish;
use super::settings::{Auth, Settings};
use super::stream;
use crate::delivery::{Backend, BackendError, EncodedEvent};

/// A [`Backend`] that publishes audit events to a NATS JetStream stream.
///
/// Each event becomes one message on `<subject_prefix>.<kind>` (for example
/// `oauth.audit.TokenRevoked`) whose payload is the schema-v1 JSON of the event and whose
/// `Nats-Msg-Id` header is the event id, so the stream drops a resent event within its
/// duplicate window. The stream is created (or its settings updated) on the first
/// connection, with file storage and the subjects `<subject_prefix>.>`. A batch is
/// published in one go and `send` returns `Ok` once JetStream acknowledged every event
/// (an acknowledgement of a duplicate counts). An event over the server's `max_payload`, or
/// over the account's (learned when the server closes the connection over one), is refused
/// for good, not retried.
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
/// [`timeout`](super::NatsBackendBuilder::timeout), so a server that is down makes it fail instead
/// of hang.
pub struct NatsBackend {
    name: String,
    pub(super) settings: Settings,
    connection: Option<Connection>,
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
            .field("servers", &shown_servers(&self.settings.servers))
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
    /// A backend with checked settings, not connected yet.
    pub(super) fn new(name: String, settings: Settings) -> NatsBackend {
        NatsBackend {
            name,
            settings,
            connection: None,
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
        self.settings.subject(kind)
    }

    fn unavailable(&self, message: String) -> BackendError {
        BackendError::unavailable(self.name.clone(), message)
    }
}

impl Backend for NatsBackend {
    fn name(&self) -> &str {
        &self.name
    }

    fn accepts_json(&self) -> bool {
        self.settings.format == crate::format::EventFormat::OAuthAudit
    }

    async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut connection = match self.connection.take() {
            Some(connection) => connection,
            None => connect(&self.settings)
                .await
                .map_err(|message| self.unavailable(message))?,
        };
        let ensured = stream::ensure(
            &self.settings,
            &connection.jetstream,
            &mut connection.stream,
        )
        .await;
        if let Err(message) = ensured {
            self.connection = Some(connection);
            return Err(self.unavailable(message));
        }
        let result = match publish(&self.settings, &mut connection, batch).await {
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
            Err(message) => Err(self.unavailable(message)),
        };
        self.connection = Some(connection);
        result
    }
}

/// The servers as they may appear in `Debug`: without any user or password embedded in
/// their URLs.
fn shown_servers(servers: &[ServerAddr]) -> Vec<String> {
    servers
        .iter()
        .map(|server| crate::event::shown_url(server.as_url_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::event::EventKind;

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
        assert!(debug.contains("nats://…@127.0.0.1:4222"), "{debug}");

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
