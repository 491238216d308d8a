//! The collector itself and its [`Backend`] impl: a batch is cut into requests of at most
//! `max_batch_bytes`, each sent by `request.rs` and judged by `classify.rs`.

use std::collections::HashSet;
use std::fmt;
use std::time::Instant;

use super::classify::{unavailable, CollectorError};
use super::format::Format;
use super::request::post;
use super::settings::Settings;
use super::template::install;
use crate::delivery::{Backend, BackendError, EncodedEvent};
use crate::event::EventKind;
use crate::format::EventFormat;

/// Sends audit events to an HTTP collector: Elasticsearch / OpenSearch `_bulk`, Splunk HEC,
/// or any endpoint reading JSON lines (Vector, Fluent Bit). A [`Backend`]: wrap it in
/// [`Delivery`](crate::delivery::Delivery) for retries and the on-disk spool.
///
/// Answers are classified for the delivery machinery: 2xx is delivered (for `_bulk`, once
/// every item is created or already existed); 400, 413 and 422 refuse the events (the
/// delivery finds the ones at fault, which are dropped and reported); any other status and
/// connection failures are transient (retried and spooled; a `Retry-After` is honoured, up
/// to five minutes): 408, 429 and 5xx, but also 401, 403, 404, a redirect (redirects are
/// not followed) or a proxy's 407, which an operator puts right while the events wait. An answer is
/// read only as far as it is needed: 64 KiB of an error, 1 MiB plus 4 KiB per event of a
/// 2xx `_bulk` or HEC answer (a longer one is transient, as it cannot be judged), and of a
/// 2xx JSON-lines or Alertmanager answer, whose status says it all, only what came with it
/// (a body that then stalls or breaks off is no failure, and the events are not resent).
///
/// Credentials never appear in `Debug` output or in errors, not even quoted back in a
/// collector's answer (with header values and the URL's query string, they are replaced by
/// `<redacted>` there).
///
/// ```no_run
/// use oauth_audit::backend::{Format, HttpCollector};
/// use oauth_audit::delivery::Delivery;
/// use oauth_audit::writer::Auditor;
///
/// # fn f() -> Result<(), oauth_audit::ConfigError> {
/// let collector = HttpCollector::builder("https://es.internal:9200/_bulk")
///     .format(Format::ElasticsearchBulk { index: "oauth-audit".into() })
///     .basic_auth("audit-writer", std::env::var("ES_PASSWORD").unwrap_or_default())
///     .gzip(true)
///     .root_certificate_pem(std::fs::read("/etc/ssl/internal-ca.pem").unwrap_or_default())
///     .build()?;
/// let auditor = Auditor::builder()
///     .service_name("orders-api")
///     .writer(Delivery::builder(collector).spool_dir("/var/spool/orders-api/audit").build()?)
///     .build()?;
/// # let _ = auditor; Ok(()) }
/// ```
pub struct HttpCollector {
    settings: Settings,
    /// Set by a `Retry-After`: no request before then.
    retry_not_before: Option<Instant>,
    /// Whether the index template is installed (`install_template`); until it is, every
    /// batch asks for it first.
    template_installed: bool,
    /// Events of a failed `send` that the collector confirmed all the same (a request of
    /// the batch answered 2xx before a later one failed or the delivery's `send_timeout`
    /// gave up on the send; `_bulk` items created or already there), so that the resend
    /// leaves them out: Splunk HEC and JSON lines would store
    /// them twice, and `_bulk` would index them again in a data stream that rolled over.
    /// Forgotten when a send of them succeeds.
    confirmed: HashSet<uuid::Uuid>,
}

/// More confirmed events than this are forgotten at once (their resend is then stored
/// twice, as it was before): a batch the delivery gave up on never comes back to clear its
/// events.
const MAX_CONFIRMED: usize = 100_000;

impl HttpCollector {
    /// A collector with checked settings; nothing is contacted yet.
    pub(super) fn new(settings: Settings) -> HttpCollector {
        HttpCollector {
            settings,
            retry_not_before: None,
            template_installed: false,
            confirmed: HashSet::new(),
        }
    }

    /// The body format.
    pub fn format(&self) -> &Format {
        &self.settings.format
    }
}

impl Backend for HttpCollector {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn takes_kind(&self, kind: EventKind) -> bool {
        !self.settings.alerts_only || kind == EventKind::SecurityAlert
    }

    fn accepts_json(&self) -> bool {
        self.settings.event_format == EventFormat::OAuthAudit
    }

    async fn send(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        let settings = &self.settings;
        if let Some(until) = self.retry_not_before {
            let now = Instant::now();
            if now < until {
                return Err(unavailable(
                    settings,
                    CollectorError::RetryAfter {
                        url: settings.shown_url.clone(),
                        wait: until - now,
                    },
                ));
            }
            self.retry_not_before = None;
        }
        let alerts: Vec<EncodedEvent>;
        let batch = if settings.alerts_only {
            // The delivery runtime settles these before they reach here (`takes_kind`); a
            // caller driving the backend itself gets the same answer.
            alerts = batch
                .iter()
                .filter(|e| self.takes_kind(e.kind()))
                .cloned()
                .collect();
            if alerts.is_empty() {
                return Ok(());
            }
            &alerts[..]
        } else {
            batch
        };
        let pending: Vec<EncodedEvent>;
        let sent = batch;
        let batch = if self.confirmed.is_empty() {
            batch
        } else {
            pending = batch
                .iter()
                .filter(|e| !self.confirmed.contains(&e.id()))
                .cloned()
                .collect();
            &pending[..]
        };
        let result = if batch.is_empty() {
            Ok(())
        } else {
            self.send_pending(batch).await
        };
        if result.is_ok() && !self.confirmed.is_empty() {
            for event in sent {
                self.confirmed.remove(&event.id());
            }
        }
        if self.confirmed.len() > MAX_CONFIRMED {
            self.confirmed = HashSet::new();
        }
        result
    }
}

impl HttpCollector {
    /// Sends the events of a batch the collector has not confirmed yet. Those it confirms
    /// while the batch is not done (the requests answered 2xx before the last, `_bulk` items
    /// created or already there) are added to `confirmed` as soon as they are: the delivery
    /// may give up on the send (its `send_timeout`) at any request, and the resend must
    /// leave them out all the same.
    async fn send_pending(&mut self, batch: &[EncodedEvent]) -> Result<(), BackendError> {
        let settings = &self.settings;
        let confirmed = &mut self.confirmed;
        let retry_not_before = &mut self.retry_not_before;
        if let Some(template) = &settings.template {
            if !self.template_installed {
                // A refusal (403: a privilege missing) is the configuration's fault, not the
                // events': they wait for the fix, as for a `_bulk` answered 403.
                install(settings, template, retry_not_before)
                    .await
                    .map_err(|error| unavailable(settings, error))?;
                self.template_installed = true;
            }
        }
        if let Format::Alertmanager { .. } = settings.format {
            // One JSON array per request; alerts are few and small.
            let mut body = vec![b'['];
            for event in batch {
                settings
                    .format
                    .append(&mut body, event, event.json(), settings.event_format);
            }
            body.push(b']');
            return post(settings, retry_not_before, confirmed, body, batch).await;
        }
        // Cut by hand as the body grows: where to cut depends on each event's encoded size
        // in this format, which only the format knows, so a generic batching crate could not
        // do it without encoding every event twice.
        let mut body = Vec::with_capacity(settings.max_batch_bytes.min(64 * 1024));
        let mut scratch = Vec::new();
        let mut start = 0;
        for (i, event) in batch.iter().enumerate() {
            let mark = body.len();
            let document = event
                .json_in(settings.event_format, &mut scratch)
                .map_err(|problem| BackendError::rejected(settings.name.clone(), problem))?;
            settings
                .format
                .append(&mut body, event, document, settings.event_format);
            if body.len() > settings.max_batch_bytes && i > start {
                let rest = body.split_off(mark);
                let full = std::mem::replace(&mut body, rest);
                post(
                    settings,
                    retry_not_before,
                    confirmed,
                    full,
                    &batch[start..i],
                )
                .await?;
                // Answered 2xx, and a later request may fail or never be answered: the
                // batch then comes back whole, and these must not be sent again. Kept now,
                // not when a later request fails: a send given up on at its timeout is
                // dropped in the middle of an `.await` and runs no code after it.
                confirmed.extend(batch[start..i].iter().map(EncodedEvent::id));
                start = i;
            }
        }
        if start < batch.len() {
            post(settings, retry_not_before, confirmed, body, &batch[start..]).await?;
        }
        Ok(())
    }
}

impl fmt::Debug for HttpCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let settings = &self.settings;
        f.debug_struct("HttpCollector")
            .field("name", &settings.name)
            .field("url", &settings.shown_url)
            .field("format", &settings.format)
            .field("event_format", &settings.event_format)
            .field("gzip", &settings.gzip)
            .field("auth", &settings.auth)
            .field("headers", &settings.header_names)
            .field("max_batch_bytes", &settings.max_batch_bytes)
            .field("alerts_only", &settings.alerts_only)
            .field("signed", &settings.hmac_secret.is_some())
            .field(
                "install_template",
                &settings.template.as_ref().map(|t| &t.name),
            )
            .finish_non_exhaustive()
    }
}
