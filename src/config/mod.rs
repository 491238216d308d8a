//! Configuration that builds itself (cargo feature `config`): one serde type per sink and
//! stage, read from any serde format, each with a `build()` that returns the library object.
//!
//! The `oauth-audit` proxy reads these same types from its TOML file (`[[writer]]` tables
//! are [`SinkConfig`]s, `[queue]` is [`QueueConfig`]), so a setting added to a sink here is
//! a key of the proxy's file too. Every type refuses unknown keys (`deny_unknown_fields`),
//! values are checked while they are read, and secrets are never part of a configuration:
//! `*_env` keys name the environment variable that holds them ([`EnvName`]), read when the
//! sink is built.
//!
//! Building opens files and spool directories and reads those variables, but connects to
//! nothing: remote sinks connect when they first send. So a configuration that builds has
//! every error a start would find except an unreachable server.
//!
//! ```
//! use oauth_audit::config::{AuditorConfig, SinkConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: AuditorConfig = serde_json::from_str(
//!     r#"{
//!         "service_name": "orders-api",
//!         "queue": { "capacity": 4096, "flush_linger": "10ms" },
//!         "writer": [
//!             { "type": "jsonl", "path": "-", "flush": "every_batch" },
//!             { "type": "tracing", "overflow": "block", "block_timeout": "250ms" }
//!         ]
//!     }"#,
//! )?;
//! assert!(matches!(config.writers[0], SinkConfig::Jsonl(_)));
//!
//! let auditor = config.build().await?;
//! assert_eq!(auditor.service().name, "orders-api");
//! auditor.shutdown().await;
//!
//! // Unknown keys are refused, not ignored.
//! let typo = serde_json::from_str::<AuditorConfig>(r#"{ "writer": [{ "type": "tracing", "overflw": "block" }] }"#);
//! assert!(typo.unwrap_err().to_string().contains("unknown field `overflw`"));
//! # Ok(())
//! # }
//! ```

mod auditor;
mod chain;
mod delivery;
mod detect;
mod dpop;
mod endpoints;
mod error;
mod file;
mod geoip;
mod http;
mod layer;
mod nats;
mod postgres;
mod queue;
mod sink;
mod token;
mod values;

pub use auditor::{AuditorConfig, QueueConfig};
pub use chain::ChainConfig;
pub use delivery::{DeliveryConfig, WriterRetryConfig};
pub use detect::{DetectConfig, RuleConfig, SeveritySetting, TravelConfig};
pub use dpop::DpopConfig;
pub use endpoints::{DevicePollingSetting, EndpointsConfig};
pub use error::BuildError;
pub use file::{FlushSetting, JsonLinesConfig, RotatingFileConfig, RotationSetting, TracingConfig};
pub use geoip::GeoIpConfig;
pub use http::{HttpConfig, HttpFormatSetting};
pub use layer::AuditLayerConfig;
pub use nats::NatsConfig;
pub use postgres::{PartitioningSetting, PostgresConfig};
pub use queue::{OverflowSetting, QueueSettings};
/// Secret values (`secrecy`): `Debug` prints `[REDACTED]`, the memory is zeroed on drop.
pub use secrecy::{ExposeSecret, SecretString};
pub use sink::SinkConfig;
pub use token::TokenInspectorConfig;
pub use values::{
    AtLeastOne, BodyLimit, EnvName, FileMode, HttpUrl, HumanDuration, Name, OptionalHeader,
    RequestPath,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn sinks(json: &str) -> Result<Vec<SinkConfig>, String> {
        serde_json::from_str::<AuditorConfig>(&format!(r#"{{ "writer": {json} }}"#))
            .map(|c| c.writers)
            .map_err(|e| e.to_string())
    }

    #[cfg(feature = "http")]
    #[test]
    fn alert_sinks_build_and_name_a_missing_secret() {
        let built = sinks(
            r#"[
                { "type": "http", "url": "http://127.0.0.1:9093/api/v2/alerts",
                  "format": "alertmanager", "generator_url": "https://grafana.example/d/1" },
                { "type": "http", "url": "http://127.0.0.1:9000/hook", "format": "json_lines",
                  "alerts_only": true, "hmac_secret_env": "OAUTH_AUDIT_TEST_UNSET_HOOK_SECRET" }
            ]"#,
        )
        .unwrap();
        let [SinkConfig::Http(manager), SinkConfig::Http(hook)] = &built[..] else {
            panic!("{built:?}");
        };
        let collector = manager.build(None).unwrap();
        assert!(format!("{collector:?}").contains("alertmanager"));
        let err = hook.build(None).unwrap_err().to_string();
        assert!(err.contains("OAUTH_AUDIT_TEST_UNSET_HOOK_SECRET"), "{err}");
    }

    #[test]
    fn every_sink_type_reads_its_keys_and_refuses_others() {
        let all = sinks(
            r#"[
                { "type": "jsonl", "path": "a.jsonl", "mode": 416, "flush": "fsync" },
                { "type": "rotating", "dir": "logs", "rotation": "hourly", "max_files": 3 },
                { "type": "postgres", "url_env": "DATABASE_URL", "partitioning": "monthly",
                  "delivery": { "spool_dir": "spool", "retry_max": "1m" } },
                { "type": "nats", "servers": ["nats://127.0.0.1:4222"], "token_env": "NATS_TOKEN" },
                { "type": "http", "url": "http://127.0.0.1:9200/_bulk", "format": "elasticsearch",
                  "index": "audit", "overflow": "block", "block_timeout": "250ms" },
                { "type": "tracing", "queue_capacity": 10 }
            ]"#,
        )
        .unwrap();
        let kinds: Vec<_> = all.iter().map(SinkConfig::kind).collect();
        assert_eq!(
            kinds,
            ["jsonl", "rotating", "postgres", "nats", "http", "tracing"]
        );
        match &all[2] {
            SinkConfig::Postgres(c) => {
                assert_eq!(c.delivery.spool_dir.as_deref(), Some("spool".as_ref()));
                assert_eq!(
                    c.delivery.retry_max,
                    Some(HumanDuration(std::time::Duration::from_secs(60)))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(all[4].queue().problem().is_none());

        let err = sinks(r#"[{ "type": "jsonl", "path": "a", "flsh": "fsync" }]"#).unwrap_err();
        assert!(err.contains("unknown field `flsh`"), "{err}");
        let err = sinks(r#"[{ "type": "postgres", "url": "x", "delivery": { "spool": "d" } }]"#)
            .unwrap_err();
        assert!(err.contains("unknown field `spool`"), "{err}");
        let err = sinks(r#"[{ "type": "kafka" }]"#).unwrap_err();
        assert!(err.contains("unknown variant `kafka`"), "{err}");
        let err = sinks(r#"[{ "type": "tracing", "block_timeout": "1 minute" }]"#).unwrap_err();
        assert!(err.contains("no known unit"), "{err}");
        let err = sinks(r#"[{ "type": "nats", "servers": [], "token_env": "s3cr3t.value" }]"#)
            .unwrap_err();
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn secrets_are_not_printed_by_debug() {
        let config =
            sinks(r#"[{ "type": "postgres", "url": "postgres://audit:s3cr3t-value@db/audit" }]"#)
                .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("REDACTED"), "{shown}");
        let config = sinks(
            r#"[{ "type": "nats", "servers": ["nats://audit:s3cr3t-value@127.0.0.1:4222"] }]"#,
        )
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("127.0.0.1:4222"), "{shown}");
    }

    #[tokio::test]
    async fn an_auditor_builds_from_its_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let config: AuditorConfig = serde_json::from_value(serde_json::json!({
            "service_name": "orders",
            "service_instance": "orders-1",
            "queue": { "capacity": 16, "batch_size": 4 },
            "writer": [{ "type": "jsonl", "path": path, "flush": "every_batch" }],
        }))
        .unwrap();
        let auditor = config.build().await.unwrap();
        assert_eq!(auditor.service().name, "orders");
        assert_eq!(auditor.service().instance.as_deref(), Some("orders-1"));
        auditor.shutdown().await;
        assert!(path.exists(), "the file was opened");
    }

    #[tokio::test]
    async fn a_file_sink_takes_a_retry_policy_and_a_spool() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let spool = dir.path().join("spool");
        let config: AuditorConfig = serde_json::from_value(serde_json::json!({
            "writer": [{ "type": "jsonl", "path": path,
                "retry": { "spool_dir": spool, "max_spool_bytes": 1048576,
                           "retry_initial": "10ms", "retry_max": "1s" } }],
        }))
        .unwrap();
        let auditor = config.build().await.unwrap();
        assert!(
            spool.join("lock").exists(),
            "the spool is opened and locked"
        );
        auditor.shutdown().await;

        // A spool directory that cannot be one is reported at build.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let config: AuditorConfig = serde_json::from_value(serde_json::json!({
            "writer": [{ "type": "rotating", "dir": dir.path().join("logs"),
                "retry": { "spool_dir": blocker.join("spool") } }],
        }))
        .unwrap();
        let err = config.build().await.unwrap_err().to_string();
        assert!(err.contains("spool_dir"), "{err}");

        let unknown = serde_json::from_value::<AuditorConfig>(serde_json::json!({
            "writer": [{ "type": "jsonl", "path": path, "retry": { "send_timeout": "1s" } }],
        }));
        assert!(unknown.is_err(), "a file sink has no send timeout");
    }

    #[tokio::test]
    async fn queue_settings_that_contradict_each_other_do_not_build() {
        let config: AuditorConfig =
            serde_json::from_str(r#"{ "writer": [{ "type": "tracing", "overflow": "block" }] }"#)
                .unwrap();
        let err = config.build().await.unwrap_err().to_string();
        assert!(err.contains("needs a block_timeout"), "{err}");
        let config: AuditorConfig =
            serde_json::from_str(r#"{ "writer": [{ "type": "tracing", "block_timeout": "1s" }] }"#)
                .unwrap();
        let err = config.build().await.unwrap_err().to_string();
        assert!(err.contains("applies only with overflow"), "{err}");
    }

    #[tokio::test]
    async fn a_layer_builds_from_its_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
        let config: AuditLayerConfig = serde_json::from_value(serde_json::json!({
            "endpoints": { "defaults": false, "token": ["/oauth2/token"] },
            "jwt": { "jwks_file": jwks, "issuers": ["https://idp.example"] },
            "trusted_proxies": ["10.0.0.0/8"],
            "client_ip_header": "x-real-ip",
            "skip_paths": ["/health"],
            "request_id_from": "trusted_proxies",
        }))
        .unwrap();
        assert_eq!(config.request_id_from, crate::RequestIdFrom::TrustedProxies);
        assert_eq!(
            AuditLayerConfig::default().request_id_from,
            crate::RequestIdFrom::AnyClient
        );
        for (text, from) in [
            ("any_client", crate::RequestIdFrom::AnyClient),
            ("nobody", crate::RequestIdFrom::Nobody),
        ] {
            let config: AuditLayerConfig =
                serde_json::from_value(serde_json::json!({ "request_id_from": text })).unwrap();
            assert_eq!(config.request_id_from, from);
        }
        let err = serde_json::from_value::<AuditLayerConfig>(
            serde_json::json!({ "request_id_from": "clients" }),
        )
        .unwrap_err();
        assert!(err.to_string().contains("trusted_proxies"), "{err}");
        assert!(config.jwt.has_key_source());
        config.build(crate::writer::Auditor::stdout()).unwrap();

        let err = AuditLayerConfig {
            client_ip_header: Some("x-real-ip".into()),
            ..AuditLayerConfig::default()
        }
        .build(crate::writer::Auditor::stdout())
        .unwrap_err();
        assert!(err.to_string().contains("no proxy is trusted"), "{err}");
        let err = serde_json::from_value::<AuditLayerConfig>(serde_json::json!({
            "endpoints": { "device_polling": "every_poll", "device_codes_tracked": 10 },
        }))
        .unwrap()
        .build(crate::writer::Auditor::stdout())
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("device_codes_tracked only applies"),
            "{err}"
        );
        let err = serde_json::from_value::<AuditLayerConfig>(serde_json::json!({
            "jwt": { "jwks_url": "https://idp.example/jwks", "jwks_file": "jwks.json" },
        }))
        .unwrap()
        .build(crate::writer::Auditor::stdout())
        .unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
        let err = serde_json::from_value::<AuditLayerConfig>(serde_json::json!({
            "jwt": { "jwks_url": "https://user:s3cr3t@idp.example/jwks" },
        }))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("credentials in the URL") && !err.contains("s3cr3t"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let config = AuditorConfig {
            writers: vec![SinkConfig::Jsonl(JsonLinesConfig::new(
                blocker.join("a.jsonl"),
            ))],
            ..AuditorConfig::default()
        };
        assert!(matches!(config.build().await, Err(BuildError::Open { .. })));
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn a_postgres_sink_reports_an_unset_variable_and_a_bad_spool() {
        let postgres = |json: &str| match sinks(json).unwrap().remove(0) {
            SinkConfig::Postgres(c) => c,
            other => panic!("{other:?}"),
        };
        let err =
            postgres(r#"[{ "type": "postgres", "url_env": "OAUTH_AUDIT_CONFIG_TEST_NOT_SET" }]"#)
                .build()
                .unwrap_err();
        assert!(
            matches!(&err, BuildError::MissingEnv { variable, .. } if variable == "OAUTH_AUDIT_CONFIG_TEST_NOT_SET"),
            "{err}"
        );
        let err = postgres(
            r#"[{ "type": "postgres", "url": "postgres://a@h/db", "url_env": "DATABASE_URL" }]"#,
        )
        .build()
        .unwrap_err();
        assert!(
            err.to_string().contains("exactly one of url and url_env"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let mut config =
            postgres(r#"[{ "type": "postgres", "url": "postgres://a@127.0.0.1:1/db" }]"#);
        config.delivery.spool_dir = Some(blocker.join("spool"));
        let err = config.build().unwrap_err().to_string();
        assert!(err.starts_with("writer (postgres) delivery: "), "{err}");
        assert!(err.contains("spool_dir"), "{err}");
        config.delivery.spool_dir = Some(dir.path().join("spool"));
        config.build().unwrap();
        assert!(dir.path().join("spool").is_dir());
    }

    #[cfg(not(feature = "nats"))]
    #[tokio::test]
    async fn a_sink_whose_feature_is_off_is_refused_by_name() {
        let config: AuditorConfig = serde_json::from_str(
            r#"{ "writer": [{ "type": "nats", "servers": ["nats://127.0.0.1:4222"] }] }"#,
        )
        .unwrap();
        let err = config.build().await.unwrap_err();
        assert!(
            matches!(err, BuildError::FeatureDisabled { sink: "nats" }),
            "{err}"
        );
        assert!(err.to_string().contains("without the `nats` feature"));
    }
}
