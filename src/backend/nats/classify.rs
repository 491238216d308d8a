//! The failure classifier: a publish failure is transient (retried and spooled; a missing
//! stream is looked up again) unless the server can never take the event.

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::jetstream::{self, ErrorCode};

use super::settings::Settings;
use super::stream::StreamState;

/// Classifies a failure that is not a refusal of particular events: always transient, and
/// a missing stream marks it `Lost` (in `stream`, what is known of it on the connection) so
/// it is looked up again before the next publish.
///
/// Returns the message of the transient failure; the backend names itself in it.
pub(super) fn publish_failed(
    settings: &Settings,
    err: PublishError,
    stream: &mut StreamState,
) -> String {
    let stream_missing = err.kind() == PublishErrorKind::StreamNotFound
        || server_error_code(&err) == Some(ErrorCode::STREAM_NOT_FOUND);
    if stream_missing {
        // Deleted, or without a leader for a moment: look again before the next publish.
        *stream = StreamState::Lost;
        return format!(
            "no JetStream stream answers on {}.> ({err})",
            settings.subject_prefix
        );
    }
    format!("JetStream publish failed: {err}")
}

/// The JetStream error code the server answered a publish with, if any.
fn server_error_code(err: &PublishError) -> Option<ErrorCode> {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .map(jetstream::Error::error_code)
}

/// Why retrying this publish can never succeed, if that is so.
pub(super) fn permanent_refusal(err: &PublishError) -> Option<String> {
    match err.kind() {
        PublishErrorKind::MaxPayloadExceeded => Some(err.to_string()),
        _ if server_error_code(err) == Some(ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM) => {
            Some(err.to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_events_too_large_are_refused_for_good() {
        let too_large = PublishError::new(PublishErrorKind::MaxPayloadExceeded);
        assert!(permanent_refusal(&too_large).is_some());
        for kind in [
            PublishErrorKind::StreamNotFound,
            PublishErrorKind::TimedOut,
            PublishErrorKind::BrokenPipe,
            PublishErrorKind::MaxAckPending,
            PublishErrorKind::Other,
        ] {
            assert!(
                permanent_refusal(&PublishError::new(kind)).is_none(),
                "{kind}"
            );
        }
    }
}
