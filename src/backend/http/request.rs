//! Building and sending one request: the body (gzip when configured), the idempotency key
//! of JSON lines, and transport failures, which are always transient.

use std::io::Write;
use std::time::Instant;

use flate2::write::GzEncoder;
use flate2::Compression;
use http::header;

use super::classify::{classify, error_chain, parse_retry_after, unavailable, CollectorError};
use super::format::{idempotency_key, Format};
use super::settings::Settings;
use crate::delivery::{BackendError, EncodedEvent};

/// Sends one request holding `events` (their encoded `body`) and classifies the answer; a
/// `Retry-After` on a transient answer is recorded in `retry_not_before`.
pub(super) async fn post(
    settings: &Settings,
    retry_not_before: &mut Option<Instant>,
    body: Vec<u8>,
    events: &[EncodedEvent],
) -> Result<(), BackendError> {
    let body = if settings.gzip {
        gzip(&body).map_err(|err| {
            unavailable(
                settings,
                CollectorError::Transport {
                    url: settings.shown_url.clone(),
                    message: format!("gzip failed: {err}"),
                },
            )
        })?
    } else {
        body
    };
    let mut request = settings.client.post(settings.url.clone()).body(body);
    if matches!(settings.format, Format::JsonLines) {
        request = request.header("idempotency-key", idempotency_key(events));
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            return Err(unavailable(
                settings,
                CollectorError::Transport {
                    url: settings.shown_url.clone(),
                    message: error_chain(&err.without_url()),
                },
            ))
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(parse_retry_after);
    let answer = match response.bytes().await {
        Ok(answer) => answer,
        Err(err) => {
            return Err(unavailable(
                settings,
                CollectorError::Transport {
                    url: settings.shown_url.clone(),
                    message: format!("reading the answer: {}", error_chain(&err.without_url())),
                },
            ))
        }
    };
    classify(settings, retry_not_before, status, retry_after, &answer)
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
    encoder.write_all(body)?;
    encoder.finish()
}
