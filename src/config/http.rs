//! `type = "http"`: an HTTP collector (Elasticsearch / OpenSearch, Splunk HEC, JSON lines).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::delivery::DeliveryConfig;
use super::queue::{OverflowSetting, QueueSettings};
use super::values::{AtLeastOne, EnvName, HumanDuration};
#[cfg(feature = "http")]
use super::BuildError;

/// `format` of an HTTP sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpFormatSetting {
    /// Elasticsearch / OpenSearch `_bulk`.
    Elasticsearch,
    /// Splunk HTTP Event Collector.
    Splunk,
    /// Newline-delimited JSON (Vector, Fluent Bit, a webhook).
    JsonLines,
    /// Prometheus Alertmanager's v2 API: `SecurityAlert` events only.
    Alertmanager,
}

/// `type = "http"` (cargo feature `http` to build).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// The collector's endpoint.
    pub url: String,
    /// What the collector speaks.
    pub format: HttpFormatSetting,
    /// How each event is written inside the body: `oauth-audit` (schema v1, the default),
    /// `ecs` or `ocsf` (`docs/formats.md`). Named so because `format` is the body's. Only
    /// schema v1 can have a `delivery.spool_dir`; not for Alertmanager.
    #[serde(default)]
    pub event_format: crate::format::EventFormat,
    /// Elasticsearch: the index, alias or data stream (required); Splunk: the index.
    pub index: Option<String>,
    /// Elasticsearch: install the event format's index template before the first batch
    /// (`PUT _index_template/<name>`; `docs/formats.md`).
    #[serde(default)]
    pub install_template: bool,
    /// Elasticsearch, with `install_template`: the template's name (default: the index).
    pub template_name: Option<String>,
    /// Elasticsearch, with `install_template`: the ILM policy the template names
    /// (`index.lifecycle.name`; not for OpenSearch, whose ISM policies attach themselves).
    pub ilm_policy: Option<String>,
    /// Splunk: the `source` field (default: the service name, else `oauth-audit`).
    pub source: Option<String>,
    /// Splunk: the `sourcetype` field (`_json`).
    pub sourcetype: Option<String>,
    /// Alertmanager: every alert's `generatorURL`.
    pub generator_url: Option<String>,
    /// Send only `SecurityAlert` events (always so for Alertmanager).
    #[serde(default)]
    pub alerts_only: bool,
    /// The environment variable holding the secret every request is signed with
    /// (HMAC-SHA256, header `X-OAuth-Audit-Signature`).
    pub hmac_secret_env: Option<EnvName>,
    /// The sink's name in metrics and `dropped.sink`.
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
    pub delivery: DeliveryConfig,
    /// What happens when the sink's queue is full.
    pub overflow: Option<OverflowSetting>,
    /// With `overflow = "block"`: the longest a request waits for room.
    pub block_timeout: Option<HumanDuration>,
    /// Events this sink may have waiting (default: `[queue] capacity`).
    pub queue_capacity: Option<AtLeastOne>,
}

impl HttpConfig {
    /// The queue settings.
    pub fn queue(&self) -> QueueSettings {
        QueueSettings {
            overflow: self.overflow,
            block_timeout: self.block_timeout,
            queue_capacity: self.queue_capacity,
        }
    }

    /// The collector inside its delivery engine. Reads the `*_env` secrets and the PEM
    /// files and opens the spool; connects to nothing. `service_name` is Splunk's default
    /// `source`.
    #[cfg(feature = "http")]
    pub fn build(
        &self,
        service_name: Option<&str>,
    ) -> Result<crate::delivery::Delivery<crate::backend::HttpCollector>, BuildError> {
        use crate::backend::{Format, HttpCollector};
        use secrecy::ExposeSecret;
        let context = format!("writer (http, {})", crate::event::shown_url(&self.url));
        let invalid = |problem: String| BuildError::invalid(context.clone(), problem);
        let format = match self.format {
            HttpFormatSetting::Elasticsearch => Format::ElasticsearchBulk {
                index: self
                    .index
                    .clone()
                    .ok_or_else(|| invalid("format = \"elasticsearch\" needs an index".into()))?,
            },
            HttpFormatSetting::Splunk => Format::SplunkHec {
                source: self
                    .source
                    .clone()
                    .or_else(|| service_name.map(str::to_owned))
                    .unwrap_or_else(|| "oauth-audit".to_owned()),
                sourcetype: self
                    .sourcetype
                    .clone()
                    .unwrap_or_else(|| "_json".to_owned()),
                index: self.index.clone(),
            },
            HttpFormatSetting::JsonLines => Format::JsonLines,
            HttpFormatSetting::Alertmanager => Format::Alertmanager {
                generator_url: self.generator_url.clone(),
            },
        };
        if !self.install_template && (self.template_name.is_some() || self.ilm_policy.is_some()) {
            return Err(invalid(
                "template_name and ilm_policy go with install_template = true".into(),
            ));
        }
        let template_index = match &format {
            Format::ElasticsearchBulk { index } => Some(index.clone()),
            _ => None,
        };
        let mut backend = HttpCollector::builder(self.url.clone())
            .format(format)
            .event_format(self.event_format)
            .alerts_only(self.alerts_only)
            .install_template(self.install_template);
        if let Some(name) = &self.template_name {
            backend = backend.template_name(name.clone());
        }
        if let (Some(policy), Some(index)) = (&self.ilm_policy, template_index) {
            backend = backend.template_options(
                crate::format::TemplateOptions::new(index).ilm_policy(policy.clone()),
            );
        }
        if let Some(variable) = &self.hmac_secret_env {
            backend = backend.hmac_sha256_secret(
                variable
                    .read("writer (http) hmac_secret_env")?
                    .expose_secret()
                    .as_bytes()
                    .to_vec(),
            );
        }
        if let Some(name) = &self.name {
            backend = backend.name(name.clone());
        }
        if let Some(gzip) = self.gzip {
            backend = backend.gzip(gzip);
        }
        if let Some(variable) = &self.bearer_token_env {
            backend = backend.bearer_token(
                variable
                    .read("writer (http) bearer_token_env")?
                    .expose_secret(),
            );
        }
        match (&self.user, &self.password_env) {
            (Some(user), Some(variable)) => {
                let password = variable.read("writer (http) password_env")?;
                backend = backend.basic_auth(user.clone(), password.expose_secret());
            }
            (None, None) => {}
            _ => return Err(invalid("user and password_env go together".into())),
        }
        if let Some(variable) = &self.splunk_token_env {
            backend = backend.splunk_token(
                variable
                    .read("writer (http) splunk_token_env")?
                    .expose_secret(),
            );
        }
        if let Some(variable) = &self.api_key_env {
            backend = backend
                .elasticsearch_api_key(variable.read("writer (http) api_key_env")?.expose_secret());
        }
        for (name, value) in &self.headers {
            backend = backend.header(name.clone(), value.clone());
        }
        if let Some(timeout) = self.timeout {
            backend = backend.timeout(timeout.0);
        }
        if let Some(path) = &self.root_certificate {
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("root_certificate {}: {e}", path.display())))?;
            backend = backend.root_certificate_pem(pem);
        }
        if let Some(enabled) = self.system_roots {
            backend = backend.system_roots(enabled);
        }
        if let Some(path) = &self.client_identity {
            let pem = std::fs::read(path)
                .map_err(|e| invalid(format!("client_identity {}: {e}", path.display())))?;
            backend = backend.client_identity_pem(pem);
        }
        if let Some(bytes) = self.max_batch_bytes {
            backend = backend.max_batch_bytes(bytes.get());
        }
        if self.no_proxy {
            backend = backend.no_proxy();
        }
        let backend = backend.build().map_err(|e| invalid(e.to_string()))?;
        self.delivery.build(backend, "http")
    }
}
