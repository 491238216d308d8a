//! The JetStream stream: its configuration, and setting it up once per connection without
//! rewriting it during a failover.

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, ErrorCode};

use super::settings::Settings;

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

/// The stream this backend creates or updates: file storage, `<prefix>.>`.
pub(super) fn config(settings: &Settings) -> StreamConfig {
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

/// Creates the stream or applies the settings once per connection (`state` is what is known
/// of it there); after a lost stream, looks it up first.
///
/// The error is the message of a transient failure; the backend names itself in it.
pub(super) async fn ensure(
    settings: &Settings,
    jetstream: &jetstream::Context,
    state: &mut StreamState,
) -> Result<(), String> {
    match *state {
        StreamState::Ready => return Ok(()),
        StreamState::Unconfigured => {}
        StreamState::Lost => match jetstream.get_stream(&settings.stream).await {
            Ok(_) => {
                *state = StreamState::Ready;
                return Ok(());
            }
            Err(err) => match err.kind() {
                GetStreamErrorKind::JetStream(js)
                    if js.error_code() == ErrorCode::STREAM_NOT_FOUND => {}
                _ => {
                    return Err(format!(
                        "cannot look up JetStream stream {:?}: {err}",
                        settings.stream
                    ))
                }
            },
        },
    }
    jetstream
        .create_or_update_stream(config(settings))
        .await
        .map_err(|err| {
            format!(
                "cannot create or update JetStream stream {:?} (subjects {}.>): {err}; \
                 check that JetStream is enabled, that no other stream claims these \
                 subjects, and that the cluster has {} server(s) for the replicas",
                settings.stream, settings.subject_prefix, settings.replicas
            )
        })?;
    *state = StreamState::Ready;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::backend::NatsBackend;
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
        let config = config(&nats.settings);
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
        let config = config(&nats.settings);
        assert_eq!(config.name, "AUDIT");
        assert_eq!(config.subjects, ["acme.audit.>"]);
        assert_eq!(config.max_age, Duration::from_secs(3600));
        assert_eq!(config.num_replicas, 3);
        assert_eq!(config.duplicate_window, Duration::from_secs(300));
    }
}
