//! The JetStream stream: its configuration, and setting it up once per connection without
//! rewriting it during a failover.

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::ErrorCode;

use super::connect::Connection;
use super::NatsBackend;
use crate::delivery::BackendError;

/// What is known about the stream on the current connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum StreamState {
    /// Not set up yet: create it or apply the settings.
    Unconfigured,
    /// Created or updated to the settings.
    Ready,
    /// A publish found nobody answering for the subjects: the stream may have been deleted,
    /// or it is electing a leader. Look before creating, so a failover never rewrites it.
    Lost,
}

impl NatsBackend {
    /// The stream this backend creates or updates: file storage, `<prefix>.>`.
    pub(super) fn stream_config(&self) -> StreamConfig {
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

    /// Creates the stream or applies the settings once per connection; after a lost
    /// stream, looks it up first.
    pub(super) async fn ensure_stream(
        &self,
        connection: &mut Connection,
    ) -> Result<(), BackendError> {
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::delivery::Backend;
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
}
