//! What the other files share and depend on, depending on none of them: the checked
//! settings, with the authentication, TLS and event format they name.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::ServerAddr;

use crate::event::EventKind;
use crate::format::EventFormat;

/// What [`NatsBackendBuilder::build`](super::NatsBackendBuilder::build) checked.
pub(super) struct Settings {
    pub(super) servers: Vec<ServerAddr>,
    pub(super) stream: String,
    pub(super) subject_prefix: String,
    pub(super) max_age: Duration,
    pub(super) replicas: usize,
    pub(super) duplicate_window: Duration,
    pub(super) timeout: Duration,
    pub(super) client_name: String,
    pub(super) auth: Auth,
    pub(super) tls: Tls,
    /// How each event is written as a message (schema v1, ECS, OCSF).
    pub(super) format: EventFormat,
}

impl Settings {
    /// The subject an event of `kind` is published on: `<prefix>.<kind>`.
    pub(super) fn subject(&self, kind: EventKind) -> String {
        format!("{}.{}", self.subject_prefix, kind.as_str())
    }
}

/// How the client authenticates; the secrets never reach `Debug` output.
#[derive(Default)]
pub(super) enum Auth {
    #[default]
    None,
    Token(String),
    UserPassword(String, String),
    /// The contents of a `.creds` file, read when the backend is built.
    Credentials(String),
    NKey(String),
}

/// TLS settings, given to the client as they are.
#[derive(Default)]
pub(super) struct Tls {
    pub(super) required: bool,
    pub(super) first: bool,
    pub(super) root_certificates: Option<PathBuf>,
    pub(super) client_certificate: Option<(PathBuf, PathBuf)>,
}
