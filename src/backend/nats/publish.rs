//! Publishing one batch: every event sent, then every acknowledgement awaited, all within
//! one timeout; events the server refuses for good are collected, not retried.

use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::message::PublishMessage;

use super::classify::{permanent_refusal, publish_failed};
use super::connect::Connection;
use super::settings::Settings;
use crate::delivery::EncodedEvent;
use crate::format::EventFormat;

/// An event the server will never take.
pub(super) struct Refused {
    pub(super) id: uuid::Uuid,
    pub(super) reason: String,
}

/// Publishes the batch, then awaits every acknowledgement, all within one timeout.
/// Returns the events the server (or the client's size check) refused for good.
///
/// The error is the message of a transient failure; the backend names itself in it.
pub(super) async fn publish(
    settings: &Settings,
    connection: &mut Connection,
    batch: &[EncodedEvent],
) -> Result<Vec<Refused>, String> {
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let max_payload = connection.jetstream.client().max_payload();
    let known_too_large = connection.known_too_large.unwrap_or(usize::MAX);
    connection
        .payload_violation
        .store(false, std::sync::atomic::Ordering::Relaxed);
    // The largest message published, for learning the account's limit from a violation.
    let mut largest = 0;
    let mut refused = Vec::new();
    let mut acks = Vec::with_capacity(batch.len());
    let publishing = async {
        let mut scratch = Vec::new();
        for event in batch {
            let payload = if settings.format == EventFormat::OAuthAudit {
                event.json().clone()
            } else {
                match event.json_in(settings.format, &mut scratch) {
                    Ok(document) => bytes::Bytes::copy_from_slice(document),
                    Err(reason) => {
                        refused.push(Refused {
                            id: event.id(),
                            reason,
                        });
                        continue;
                    }
                }
            };
            // Headers count towards max_payload; 128 bytes covers `Nats-Msg-Id` and framing.
            if payload.len() + 128 > max_payload {
                refused.push(Refused {
                    id: event.id(),
                    reason: format!(
                        "{} bytes exceed the server's max_payload of {max_payload} bytes",
                        payload.len()
                    ),
                });
                continue;
            }
            if payload.len() + 128 >= known_too_large {
                refused.push(Refused {
                    id: event.id(),
                    reason: format!(
                        "{} bytes exceed the account's max_payload (the server refused a \
                         message of {} bytes with headers as a Maximum Payload Violation)",
                        payload.len(),
                        known_too_large
                    ),
                });
                continue;
            }
            largest = largest.max(payload.len() + 128);
            let message = PublishMessage::build()
                .payload(payload)
                .message_id(event.id().to_string());
            let ack = connection
                .jetstream
                .send_publish(settings.subject(event.kind()), message)
                .await?;
            acks.push((event.id(), ack));
        }
        Ok::<_, PublishError>(())
    };
    match tokio::time::timeout_at(deadline, publishing).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            let message = publish_failed(settings, err, &mut connection.stream);
            return Err(learn_from_violation(connection, largest, message));
        }
        Err(_) => {
            return Err(learn_from_violation(
                connection,
                largest,
                timed_out(settings),
            ))
        }
    }
    // The stream acknowledges in the order of publishing, so the last ack is awaited first:
    // once it is in, the others are too, and the task wakes once per batch instead of once
    // per event.
    let acknowledged = async {
        let mut refused_here = Vec::new();
        for (id, ack) in acks.into_iter().rev() {
            // A duplicate ack means the stream already holds the event: success too.
            if let Err(err) = ack.await {
                match permanent_refusal(&err) {
                    Some(reason) => refused_here.push(Refused { id, reason }),
                    None => return Err(err),
                }
            }
        }
        refused.extend(refused_here.into_iter().rev());
        Ok(())
    };
    match tokio::time::timeout_at(deadline, acknowledged).await {
        Ok(Ok(())) => Ok(refused),
        Ok(Err(err)) => {
            let message = publish_failed(settings, err, &mut connection.stream);
            Err(learn_from_violation(connection, largest, message))
        }
        Err(_) => Err(learn_from_violation(
            connection,
            largest,
            timed_out(settings),
        )),
    }
}

/// After a failed batch: if the server answered `Maximum Payload Violation` meanwhile, the
/// account's limit is below the largest message of the batch (the violating one was at most
/// that large), so messages that large are refused from now on. Without this the batch
/// would be retried forever, each attempt closing the connection. Each violation refuses at
/// least the largest message, so a batch settles within as many attempts as it has sizes
/// over the limit; a message that would fit is never refused.
fn learn_from_violation(connection: &mut Connection, largest: usize, message: String) -> String {
    if !connection
        .payload_violation
        .swap(false, std::sync::atomic::Ordering::Relaxed)
        || largest == 0
    {
        return message;
    }
    let bound = connection
        .known_too_large
        .map_or(largest, |known| known.min(largest));
    connection.known_too_large = Some(bound);
    format!(
        "{message}; the server refused a message as over the account's max_payload, so \
         events of {bound} bytes or more (with headers) are refused from now on"
    )
}

/// No acknowledgement in time: transient, whether the server is down or electing.
fn timed_out(settings: &Settings) -> String {
    format!(
        "no JetStream acknowledgement within {:?} (server down, or the stream is \
         electing a leader)",
        settings.timeout
    )
}
