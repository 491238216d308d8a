//! Response classification: what a collector's answer means for the events (delivered,
//! transient and retried, or refused), and the error that says why.

use std::time::{Duration, Instant};

use http::header::HeaderValue;
use http::StatusCode;

use super::auth::scrub;
use super::format::{excerpt, Verdict};
use super::settings::Settings;
use crate::delivery::BackendError;

/// A collector asking for a longer pause (`Retry-After`) is held to this, so a typo on the
/// server side cannot stall delivery for hours.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// What an answer means for the requested events: 2xx is delivered once the format's own
/// verdict agrees (bulk items, HEC codes); 400, 413 and 422 refuse the events
/// ([`refuses_events`]) unless the answer blames the configuration (HEC codes, not read on a
/// 413: a smaller request is the only way through); any other
/// status is transient, and a `Retry-After` holds the next attempt back (in
/// `retry_not_before`).
pub(super) fn classify(
    settings: &Settings,
    retry_not_before: &mut Option<Instant>,
    status: StatusCode,
    retry_after: Option<Duration>,
    answer: &[u8],
) -> Result<(), BackendError> {
    let shown = |text: &str| scrub(&settings.quoted_secrets, text);
    if status.is_success() {
        return match settings.format.verdict(answer, &shown) {
            Verdict::Accepted => Ok(()),
            Verdict::Retry(message) => Err(unavailable(
                settings,
                CollectorError::Items {
                    url: settings.shown_url.clone(),
                    message,
                },
            )),
            Verdict::Rejected(message) => Err(rejected(
                settings,
                CollectorError::Items {
                    url: settings.shown_url.clone(),
                    message,
                },
            )),
        };
    }
    let error = CollectorError::Status {
        url: settings.shown_url.clone(),
        status: status.as_u16(),
        answer: excerpt(answer, &shown),
    };
    // A 413 is the request's size whatever its answer says: only the halves the delivery
    // sends of a refused batch can get through, where a transient failure would send the
    // same request again until the events' retries or the spool ran out.
    if status == StatusCode::PAYLOAD_TOO_LARGE
        || (refuses_events(status) && !settings.format.blames_configuration(answer))
    {
        return Err(rejected(settings, error));
    }
    if let Some(wait) = retry_after {
        *retry_not_before = Some(Instant::now() + wait.min(MAX_RETRY_AFTER));
    }
    Err(unavailable(settings, error))
}

/// A transient failure of this collector: the events are retried and spooled.
pub(super) fn unavailable(settings: &Settings, error: CollectorError) -> BackendError {
    BackendError::unavailable(settings.name.clone(), error)
}

/// A refusal of the events by this collector: they are dropped and reported.
pub(super) fn rejected(settings: &Settings, error: CollectorError) -> BackendError {
    BackendError::rejected(settings.name.clone(), error)
}

/// Why a collector did not confirm a request; the source of a [`BackendError`].
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The request did not get an answer (connection refused, TLS failure, timeout).
    #[error("no answer from {url}: {message}")]
    Transport {
        /// The collector URL, without query string.
        url: String,
        /// What failed.
        message: String,
    },
    /// The collector answered with an error status.
    #[error("{url} answered {status}: {answer}")]
    Status {
        /// The collector URL, without query string.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer body.
        answer: String,
    },
    /// The collector answered 2xx but refused or failed some events (bulk item errors, a
    /// non-zero HEC code).
    #[error("{url}: {message}")]
    Items {
        /// The collector URL, without query string.
        url: String,
        /// What the answer said.
        message: String,
    },
    /// Installing the index template before the first batch (`install_template`) failed:
    /// the batch is retried (whether the cluster did not answer or refused the template,
    /// 403 for a missing privilege included, which is logged as an error).
    #[error("installing the index template {name:?} at {url} failed: {message}")]
    Template {
        /// The template's name.
        name: String,
        /// The template URL, without query string.
        url: String,
        /// What the cluster answered, or why there was no answer.
        message: String,
    },
    /// The collector asked (`Retry-After`) not to be contacted yet.
    #[error("{url} asked to wait: retrying in {}s (Retry-After)", wait.as_secs().max(1))]
    RetryAfter {
        /// The collector URL, without query string.
        url: String,
        /// How long is left to wait.
        wait: Duration,
    },
}

/// Whether an error status is the events' fault, so that resending them cannot help: 400 (a
/// body the collector cannot take), 413 (too large: the delivery sends halves until the
/// events at fault are found) and 422. Any other status is transient: 408, 429 and 5xx go
/// away by themselves, and the others (401 and 403 for credentials that expired or lack a
/// privilege, 404 for a wrong URL, a redirect, which is not followed, a proxy's 407) are
/// the collector's or the configuration's, which an operator puts right while the events
/// wait, retried and spooled, as they do for a PostgreSQL password that no longer works.
pub(super) fn refuses_events(status: StatusCode) -> bool {
    status == StatusCode::BAD_REQUEST
        || status == StatusCode::PAYLOAD_TOO_LARGE
        || status == StatusCode::UNPROCESSABLE_ENTITY
}

/// The most of an answer that is read when only its start is quoted (an error status, a
/// template's answer) or when the format reads nothing from it (JSON lines, Alertmanager).
pub(super) const ANSWER_EXCERPT_LIMIT: usize = 64 * 1024;

/// `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(super) fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}
/// An error with its causes (`error sending request: connection refused`).
pub(super) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(&HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(&HeaderValue::from_static("soon")), None);
    }

    #[test]
    fn statuses_are_classified() {
        for transient in [
            301, 302, 307, 308, 401, 403, 404, 405, 407, 408, 409, 429, 500, 502, 503, 504,
        ] {
            assert!(!refuses_events(StatusCode::from_u16(transient).unwrap()));
        }
        for refusal in [400, 413, 422] {
            assert!(refuses_events(StatusCode::from_u16(refusal).unwrap()));
        }
    }
}
