//! Installing the index template (`install_template`): one `PUT _index_template/<name>`
//! before the first `_bulk`. Every failure is transient for the batch: a template the
//! cluster refuses is the configuration's fault, not the events'.

use std::time::Instant;

use http::{header, StatusCode};

use super::auth::scrub;
use super::classify::{
    error_chain, parse_retry_after, refuses_events, CollectorError, ANSWER_EXCERPT_LIMIT,
    MAX_RETRY_AFTER,
};
use super::format::excerpt;
use super::request::gzip;
use super::settings::{Settings, TemplateInstall};

/// Puts `template`; a `Retry-After` on a transient answer is recorded in `retry_not_before`.
/// A refusal (403: the privilege to manage templates is missing; 400, 413, 422: the cluster
/// does not take this template) is logged at error level, as it needs an operator.
pub(super) async fn install(
    settings: &Settings,
    template: &TemplateInstall,
    retry_not_before: &mut Option<Instant>,
) -> Result<(), CollectorError> {
    let error = |message: String| CollectorError::Template {
        name: template.name.clone(),
        url: template.shown_url.clone(),
        message,
    };
    // `Content-Encoding: gzip` is one of the client's default headers when `gzip` is set:
    // the cluster decodes this body by it too, and refuses one that is not compressed.
    let body = if settings.gzip {
        gzip(&template.body).map_err(|err| error(format!("gzip failed: {err}")))?
    } else {
        template.body.clone()
    };
    let response = settings
        .client
        .put(template.url.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut response = match response {
        Ok(response) => response,
        Err(err) => {
            return Err(error(format!(
                "no answer: {}",
                error_chain(&err.without_url())
            )))
        }
    };
    let status = response.status();
    if status.is_success() {
        tracing::info!(
            target: "oauth_audit",
            writer = %settings.name,
            template = %template.name,
            url = %template.shown_url,
            "index template installed"
        );
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(parse_retry_after);
    // Only its start is quoted.
    let answer = crate::response_body::excerpt(&mut response, ANSWER_EXCERPT_LIMIT)
        .await
        .map(|(answer, _)| answer)
        .unwrap_or_default();
    let answer = excerpt(&answer, &|text| scrub(&settings.quoted_secrets, text));
    let message = format!("answered {}: {answer}", status.as_u16());
    if status != StatusCode::FORBIDDEN && !refuses_events(status) {
        if let Some(wait) = retry_after {
            *retry_not_before = Some(Instant::now() + wait.min(MAX_RETRY_AFTER));
        }
        return Err(error(message));
    }
    tracing::error!(
        target: "oauth_audit",
        writer = %settings.name,
        template = %template.name,
        url = %template.shown_url,
        status = status.as_u16(),
        answer = %answer,
        "the cluster refused the index template: batches wait (retried, spooled) until it is \
         installed (grant the manage_index_templates privilege, or install it yourself with \
         `oauth-audit es-template` and set install_template = false)"
    );
    Err(error(message))
}
