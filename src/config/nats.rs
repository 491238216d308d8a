//! `type = "nats"`: a NATS JetStream stream.

use std::path::PathBuf;

use serde::Deserialize;

use super::delivery::DeliveryConfig;
use super::queue::{OverflowSetting, QueueSettings};
use super::values::{AtLeastOne, EnvName, HumanDuration};
#[cfg(feature = "nats")]
use super::BuildError;

/// `type = "nats"` (cargo feature `nats` to build).
///
/// `Debug` shows the servers without any user or password written in their URLs.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:port` URLs.
    pub servers: Vec<String>,
    /// How each event is written as a message: `oauth-audit` (schema v1, the default),
    /// `ecs` or `ocsf` (`docs/formats.md`). Only schema v1 can have a `delivery.spool_dir`.
    #[serde(default)]
    pub format: crate::format::EventFormat,
    /// The JetStream stream (`OAUTH_AUDIT`).
    pub stream: Option<String>,
    /// Subjects are `<prefix>.<kind>` (`oauth.audit`).
    pub subject_prefix: Option<String>,
    /// Stream retention by age.
    pub max_age: Option<HumanDuration>,
    /// Stream replicas.
    pub replicas: Option<AtLeastOne>,
    /// The stream's deduplication window.
    pub duplicate_window: Option<HumanDuration>,
    /// Connect, publish and ack timeout.
    pub timeout: Option<HumanDuration>,
    /// The connection's client name.
    pub client_name: Option<String>,
    /// The environment variable holding a token.
    pub token_env: Option<EnvName>,
    /// A user name (with `password_env`).
    pub user: Option<String>,
    /// The environment variable holding the user's password.
    pub password_env: Option<EnvName>,
    /// The environment variable holding an NKey seed.
    pub nkey_env: Option<EnvName>,
    /// A `.creds` file.
    pub credentials_file: Option<PathBuf>,
    /// Refuse plain connections.
    pub require_tls: Option<bool>,
    /// CA certificates (PEM) for the servers.
    pub root_certificates: Option<PathBuf>,
    /// Client certificate (PEM), with `client_key`.
    pub client_certificate: Option<PathBuf>,
    /// Client key (PEM), with `client_certificate`.
    pub client_key: Option<PathBuf>,
    /// Retries and spool.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// What happens when the sink's queue is full.
    pub overflow: Option<OverflowSetting>,
    /// With `overflow = "block"`: the longest a request waits for room.
    pub block_timeout: Option<HumanDuration>,
    /// Events this sink may have waiting (default: `[queue] capacity`).
    pub queue_capacity: Option<AtLeastOne>,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|server| crate::event::shown_url(server))
            .collect();
        f.debug_struct("NatsConfig")
            .field("servers", &servers)
            .field("format", &self.format)
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("max_age", &self.max_age)
            .field("replicas", &self.replicas)
            .field("duplicate_window", &self.duplicate_window)
            .field("timeout", &self.timeout)
            .field("client_name", &self.client_name)
            .field("token_env", &self.token_env)
            .field("user", &self.user)
            .field("password_env", &self.password_env)
            .field("nkey_env", &self.nkey_env)
            .field("credentials_file", &self.credentials_file)
            .field("require_tls", &self.require_tls)
            .field("root_certificates", &self.root_certificates)
            .field("client_certificate", &self.client_certificate)
            .field("client_key", &self.client_key)
            .field("delivery", &self.delivery)
            .field("overflow", &self.overflow)
            .field("block_timeout", &self.block_timeout)
            .field("queue_capacity", &self.queue_capacity)
            .finish()
    }
}

impl NatsConfig {
    /// The queue settings.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            overflow: self.overflow,
            block_timeout: self.block_timeout,
            queue_capacity: self.queue_capacity,
        }
    }

    /// The backend inside its delivery engine. Reads the `*_env` secrets and opens the
    /// spool; connects to nothing (the backend connects when it first sends).
    #[cfg(feature = "nats")]
    pub fn build(
        &self,
    ) -> Result<crate::delivery::Delivery<crate::backend::NatsBackend>, BuildError> {
        use crate::backend::NatsBackend;
        use secrecy::ExposeSecret;
        const SINK: &str = "writer (nats)";
        let ways = [
            self.token_env.is_some(),
            self.user.is_some() || self.password_env.is_some(),
            self.nkey_env.is_some(),
            self.credentials_file.is_some(),
        ];
        if ways.into_iter().filter(|&set| set).count() > 1 {
            // The client authenticates one way: the others would be ignored without a word.
            return Err(BuildError::invalid(
                SINK,
                "set at most one of token_env, user with password_env, nkey_env and \
                 credentials_file",
            ));
        }
        let mut backend = NatsBackend::builder(&self.servers).format(self.format);
        if let Some(stream) = &self.stream {
            backend = backend.stream(stream.clone());
        }
        if let Some(prefix) = &self.subject_prefix {
            backend = backend.subject_prefix(prefix.clone());
        }
        if let Some(age) = self.max_age {
            backend = backend.max_age(age.0);
        }
        if let Some(replicas) = self.replicas {
            backend = backend.replicas(replicas.get());
        }
        if let Some(window) = self.duplicate_window {
            backend = backend.duplicate_window(window.0);
        }
        if let Some(timeout) = self.timeout {
            backend = backend.timeout(timeout.0);
        }
        if let Some(name) = &self.client_name {
            backend = backend.client_name(name.clone());
        }
        if let Some(variable) = &self.token_env {
            backend = backend.token(variable.read("writer (nats) token_env")?.expose_secret());
        }
        match (&self.user, &self.password_env) {
            (Some(user), Some(variable)) => {
                let password = variable.read("writer (nats) password_env")?;
                backend = backend.user_and_password(user.clone(), password.expose_secret());
            }
            (None, None) => {}
            _ => {
                return Err(BuildError::invalid(
                    SINK,
                    "user and password_env go together",
                ))
            }
        }
        if let Some(variable) = &self.nkey_env {
            backend = backend.nkey(variable.read("writer (nats) nkey_env")?.expose_secret());
        }
        if let Some(path) = &self.credentials_file {
            backend = backend.credentials_file(path);
        }
        if let Some(required) = self.require_tls {
            backend = backend.require_tls(required);
        }
        if let Some(path) = &self.root_certificates {
            backend = backend.root_certificates(path);
        }
        match (&self.client_certificate, &self.client_key) {
            (Some(cert), Some(key)) => backend = backend.client_certificate(cert, key),
            (None, None) => {}
            _ => {
                return Err(BuildError::invalid(
                    SINK,
                    "client_certificate and client_key go together",
                ))
            }
        }
        let backend = backend.build().map_err(|e| BuildError::invalid(SINK, e))?;
        self.delivery.build(backend, "nats")
    }
}
