//! Connecting: authentication, TLS and the client options. Once connected, the client
//! reconnects by itself to any server of the cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_nats::jetstream;
use async_nats::{ConnectOptions, Event, ServerError};

use super::settings::{Auth, Settings};
use super::stream::StreamState;

/// A connected client and what is known about the stream on it.
pub(super) struct Connection {
    pub(super) jetstream: jetstream::Context,
    pub(super) stream: StreamState,
    /// Set when the server answered `Maximum Payload Violation` (and closed the connection):
    /// a message was over the account's `max_payload`, which the server announces in an INFO
    /// the client does not apply, so the client's own check (the first INFO's limit) let it
    /// through.
    pub(super) payload_violation: Arc<AtomicBool>,
    /// The size (payload plus 128 bytes of headers) from which messages are known to be
    /// over the account's `max_payload`, learned from such violations.
    pub(super) known_too_large: Option<usize>,
}

/// Logs what the client reports, and notes a `Maximum Payload Violation` in `violation_seen`.
fn log_event(event: Event, violation_seen: &AtomicBool) {
    const TARGET: &str = "oauth_audit::nats";
    match event {
        Event::ServerError(ServerError::Other(error))
            if error.to_ascii_lowercase().contains("maximum payload") =>
        {
            violation_seen.store(true, Ordering::Relaxed);
            tracing::warn!(target: TARGET, "NATS: {error}");
        }
        Event::Connected => tracing::info!(target: TARGET, "connected to NATS"),
        Event::Disconnected => {
            tracing::warn!(target: TARGET, "disconnected from NATS, reconnecting")
        }
        other => tracing::warn!(target: TARGET, "NATS: {other}"),
    }
}

/// Connects with the configured authentication and TLS; the stream is not touched yet.
///
/// The error is the message of a transient failure; the backend names itself in it.
pub(super) async fn connect(settings: &Settings) -> Result<Connection, String> {
    let mut options = match &settings.auth {
        Auth::None => ConnectOptions::new(),
        Auth::Token(token) => ConnectOptions::with_token(token.clone()),
        Auth::UserPassword(user, password) => {
            ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        Auth::Credentials(contents) => ConnectOptions::with_credentials(contents)
            .map_err(|err| format!("NATS credentials: {err}"))?,
        Auth::NKey(seed) => ConnectOptions::with_nkey(seed.clone()),
    };
    let payload_violation = Arc::new(AtomicBool::new(false));
    let violation_seen = Arc::clone(&payload_violation);
    options = options
        .name(&settings.client_name)
        .connection_timeout(settings.timeout)
        .request_timeout(Some(settings.timeout))
        .require_tls(settings.tls.required)
        .event_callback(move |event| {
            let violation_seen = Arc::clone(&violation_seen);
            async move { log_event(event, &violation_seen) }
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
        .map_err(|err| format!("cannot connect to NATS: {err}"))?;
    let jetstream = jetstream::ContextBuilder::new()
        .timeout(settings.timeout)
        .ack_timeout(settings.timeout)
        .build(client);
    Ok(Connection {
        jetstream,
        stream: StreamState::Unconfigured,
        payload_violation,
        known_too_large: None,
    })
}
