//! Building and sending one request: the body (gzip when configured), the idempotency key
//! of JSON lines, and transport failures, which are always transient.

use std::collections::HashSet;
use std::io::Write;
use std::time::Instant;

use flate2::write::GzEncoder;
use flate2::Compression;
use http::header;

use super::classify::{
    classify, error_chain, parse_retry_after, unavailable, CollectorError, ANSWER_EXCERPT_LIMIT,
};
use super::format::{idempotency_key, Format};
use super::settings::Settings;
use crate::delivery::{BackendError, EncodedEvent};

/// The signature headers of a request under `secret`, at `t` (unix seconds):
/// `X-OAuth-Audit-Signature: t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, and
/// `X-OAuth-Audit-Signature-V2: t=<t>,v2=<hex HMAC-SHA256 of "<t>.<key>.<body>">`, `key`
/// being the request's `Idempotency-Key` value as sent (quotes included), empty when there
/// is none. v1 is the original contract, kept unchanged for the receivers that check it;
/// v2 also binds the key, so a request replayed with another key (to pass a receiver's
/// deduplication) does not verify. A key never contains `.`, so the string is unambiguous.
pub(super) fn sign(
    secret: &[u8],
    t: u64,
    idempotency_key: Option<&str>,
    body: &[u8],
) -> (String, String) {
    use hmac::{Hmac, Mac};
    let mac = |parts: &[&[u8]]| {
        // HMAC takes a key of any length.
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        for part in parts {
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    };
    let prefix = format!("{t}.");
    let key = idempotency_key.unwrap_or("");
    let v1 = mac(&[prefix.as_bytes(), body]);
    let v2 = mac(&[prefix.as_bytes(), key.as_bytes(), b".", body]);
    (format!("t={t},v1={v1}"), format!("t={t},v2={v2}"))
}

/// The most of a 2xx answer read for the format's verdict (the items of `_bulk`, the code
/// of HEC): this much whatever the request, plus [`VERDICT_PER_EVENT_LIMIT`] per event.
const VERDICT_BASE_LIMIT: usize = 1024 * 1024;
/// Far more than Elasticsearch writes for an item, even a refused one with its reason.
const VERDICT_PER_EVENT_LIMIT: usize = 4 * 1024;

/// Sends one request holding `events` (their encoded `body`) and classifies the answer; a
/// `Retry-After` on a transient answer is recorded in `retry_not_before`, and the events a
/// failed 2xx answer confirms all the same (`_bulk` items created or already there) in
/// `confirmed`.
pub(super) async fn post(
    settings: &Settings,
    retry_not_before: &mut Option<Instant>,
    confirmed: &mut HashSet<uuid::Uuid>,
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
    let key = matches!(settings.format, Format::JsonLines).then(|| idempotency_key(events));
    let signature = settings.hmac_secret.as_ref().map(|secret| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        sign(&secret.0, t, key.as_deref(), &body)
    });
    let mut request = settings.client.post(settings.url.clone()).body(body);
    if let Some((v1, v2)) = signature {
        request = request
            .header("x-oauth-audit-signature", v1)
            .header("x-oauth-audit-signature-v2", v2);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let mut response = match request.send().await {
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
    if status.is_success() && !settings.format.reads_answer() {
        // The status is the whole verdict: the collector took the events. A body that then
        // stalls or breaks off must not turn them into a failure, sent again (and stored
        // twice by a collector that ignores the idempotency key).
        crate::response_body::discard_arrived(&mut response, ANSWER_EXCERPT_LIMIT).await;
        return classify(settings, retry_not_before, status, retry_after, &[]);
    }
    let judged = status.is_success() && settings.format.reads_answer();
    let limit = if judged {
        VERDICT_BASE_LIMIT.saturating_add(events.len().saturating_mul(VERDICT_PER_EVENT_LIMIT))
    } else {
        ANSWER_EXCERPT_LIMIT
    };
    let answer = match crate::response_body::excerpt(&mut response, limit).await {
        Ok((_, true)) if judged => {
            // Which events were taken cannot be told: they are sent again (`_bulk` answers
            // 409 for those already indexed).
            return Err(unavailable(
                settings,
                CollectorError::Items {
                    url: settings.shown_url.clone(),
                    message: format!(
                        "answered {} with a body larger than {limit} bytes, not read to its end",
                        status.as_u16()
                    ),
                },
            ));
        }
        Ok((answer, _)) => answer,
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
    let result = classify(settings, retry_not_before, status, retry_after, &answer);
    if result.is_err() && status.is_success() {
        // Only ids this request sent: an answer naming another event must not keep that one
        // from being sent.
        let sent: HashSet<uuid::Uuid> = events.iter().map(EncodedEvent::id).collect();
        confirmed.extend(
            settings
                .format
                .stored_items(&answer)
                .into_iter()
                .filter(|id| sent.contains(id)),
        );
    }
    result
}

/// `body` compressed, for a collector configured with `gzip` (`Content-Encoding: gzip` is
/// one of its default headers, so every request body it sends must be compressed).
pub(super) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::default());
    encoder.write_all(body)?;
    encoder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_signs_the_body_and_v2_the_idempotency_key_too() {
        use hmac::{Hmac, Mac};
        let hex_mac = |text: &[u8]| {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"secret").unwrap();
            mac.update(text);
            hex::encode(mac.finalize().into_bytes())
        };
        let (v1, v2) = sign(b"secret", 1_700_000_000, Some("\"k1\""), b"{}\n");
        assert_eq!(
            v1,
            format!("t=1700000000,v1={}", hex_mac(b"1700000000.{}\n"))
        );
        assert_eq!(
            v2,
            format!("t=1700000000,v2={}", hex_mac(b"1700000000.\"k1\".{}\n"))
        );
        // Another key: v1 cannot tell, v2 can.
        let (other_v1, other_v2) = sign(b"secret", 1_700_000_000, Some("\"k2\""), b"{}\n");
        assert_eq!(other_v1, v1);
        assert_ne!(other_v2, v2);
        // No key: an empty one, still unambiguous.
        let (_, v2) = sign(b"secret", 1_700_000_000, None, b"{}\n");
        assert_eq!(
            v2,
            format!("t=1700000000,v2={}", hex_mac(b"1700000000..{}\n"))
        );
    }
}
