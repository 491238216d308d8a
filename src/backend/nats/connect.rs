//! Connecting: authentication, TLS and the client options. Once connected, the client
//! reconnects by itself to any server of the cluster.

use async_nats::jetstream;
use async_nats::{ConnectOptions, Event};

use super::settings::{Auth, Settings};
use super::stream::StreamState;

/// A connected client and what is known about the stream on it.
pub(super) struct Connection {
    pub(super) jetstream: jetstream::Context,
    pub(super) stream: StreamState,
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
        .map_err(|err| format!("cannot connect to NATS: {err}"))?;
    let jetstream = jetstream::ContextBuilder::new()
        .timeout(settings.timeout)
        .ack_timeout(settings.timeout)
        .build(client);
    Ok(Connection {
        jetstream,
        stream: StreamState::Unconfigured,
    })
}
