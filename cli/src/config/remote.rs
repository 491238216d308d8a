//! `[[writer]]` tables of remote backends, delivered through `oauth_audit::delivery`.

// A build without a backend's feature still reads its table, to refuse it with a clear error.
#![cfg_attr(
    not(all(feature = "postgres", feature = "nats", feature = "http")),
    allow(dead_code)
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::values::{AtLeastOne, EnvName, HumanDuration, Name};
use super::OverflowSetting;

/// Retries and the on-disk spool of a remote writer (`Delivery`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Where events wait while the backend is down; in memory without it.
    pub spool_dir: Option<PathBuf>,
    /// The most bytes of unconfirmed events kept.
    pub max_spool_bytes: Option<AtLeastOne>,
    /// fsync every spool append.
    pub spool_fsync: Option<bool>,
    /// How long one send may take.
    pub send_timeout: Option<HumanDuration>,
    /// The most events sent at once.
    pub max_batch: Option<AtLeastOne>,
    /// Attempts of a batch without a spool before it is dropped and reported.
    pub memory_retries: Option<u32>,
    /// First wait between attempts.
    pub retry_initial: Option<HumanDuration>,
    /// Longest wait between attempts.
    pub retry_max: Option<HumanDuration>,
}

/// `type = "postgres"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresWriter {
    /// A libpq connection string or `postgres://` URL.
    pub url: Option<String>,
    /// The environment variable holding `url` (keeps the password out of the file).
    pub url_env: Option<EnvName>,
    /// The schema (`public`).
    pub schema: Option<Name>,
    /// The table (`oauth_audit_events`).
    pub table: Option<Name>,
    /// `daily`, `monthly` or `none`.
    pub partitioning: Option<PartitioningSetting>,
    /// Delete events older than this.
    pub retention: Option<HumanDuration>,
    /// Connect and statement timeout.
    pub timeout: Option<HumanDuration>,
    /// Retries and spool.
    #[serde(default)]
    pub delivery: DeliverySettings,
    /// See the jsonl writer.
    pub overflow: Option<OverflowSetting>,
    /// See the jsonl writer.
    pub block_timeout: Option<HumanDuration>,
    /// See the jsonl writer.
    pub queue_capacity: Option<AtLeastOne>,
}

/// `partitioning` of a PostgreSQL writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitioningSetting {
    /// One partition per UTC day.
    Daily,
    /// One partition per UTC month.
    Monthly,
    /// A plain table.
    None,
}

/// `type = "nats"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsWriter {
    /// `nats://host:port` URLs.
    pub servers: Vec<String>,
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
    pub delivery: DeliverySettings,
    /// See the jsonl writer.
    pub overflow: Option<OverflowSetting>,
    /// See the jsonl writer.
    pub block_timeout: Option<HumanDuration>,
    /// See the jsonl writer.
    pub queue_capacity: Option<AtLeastOne>,
}

/// `type = "http"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpWriter {
    /// The collector's endpoint.
    pub url: String,
    /// What the collector speaks.
    pub format: HttpFormatSetting,
    /// Elasticsearch: the index, alias or data stream (required); Splunk: the index.
    pub index: Option<String>,
    /// Splunk: the `source` field (default: the service name).
    pub source: Option<String>,
    /// Splunk: the `sourcetype` field (`_json`).
    pub sourcetype: Option<String>,
    /// The writer's name in metrics and `dropped.sink`.
    pub name: Option<String>,
    /// gzip request bodies.
    pub gzip: Option<bool>,
    /// The environment variable holding a bearer token.
    pub bearer_token_env: Option<EnvName>,
    /// A user name for HTTP Basic (with `password_env`).
    pub user: Option<String>,
    /// The environment variable holding the Basic password.
    pub password_env: Option<EnvName>,
    /// The environment variable holding a Splunk HEC token.
    pub splunk_token_env: Option<EnvName>,
    /// The environment variable holding an Elasticsearch API key (base64 `id:key`).
    pub api_key_env: Option<EnvName>,
    /// Extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// One request's timeout.
    pub timeout: Option<HumanDuration>,
    /// CA certificate(s) (PEM) trusted for the collector.
    pub root_certificate: Option<PathBuf>,
    /// Also trust the system's CA store.
    pub system_roots: Option<bool>,
    /// Client certificate and key in one PEM file (mutual TLS).
    pub client_identity: Option<PathBuf>,
    /// The largest request body.
    pub max_batch_bytes: Option<AtLeastOne>,
    /// Ignore `HTTP(S)_PROXY` variables.
    #[serde(default)]
    pub no_proxy: bool,
    /// Retries and spool.
    #[serde(default)]
    pub delivery: DeliverySettings,
    /// See the jsonl writer.
    pub overflow: Option<OverflowSetting>,
    /// See the jsonl writer.
    pub block_timeout: Option<HumanDuration>,
    /// See the jsonl writer.
    pub queue_capacity: Option<AtLeastOne>,
}

/// `format` of an HTTP writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFormatSetting {
    /// Elasticsearch / OpenSearch `_bulk`.
    Elasticsearch,
    /// Splunk HTTP Event Collector.
    Splunk,
    /// Newline-delimited JSON (Vector, Fluent Bit).
    JsonLines,
}
