//! The body formats (`_bulk`, HEC, JSON lines): how a batch is written, and what a 2xx
//! answer says about its events.

use std::io::Write as _;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::delivery::EncodedEvent;
use crate::event::Timestamp;
use crate::format::EventFormat;

/// The request body a collector expects, and how its answer is read.
///
/// ```
/// use oauth_audit::backend::Format;
///
/// let elasticsearch = Format::ElasticsearchBulk { index: "oauth-audit".into() };
/// let splunk = Format::SplunkHec {
///     source: "orders-api".into(),
///     sourcetype: "_json".into(),
///     index: Some("security".into()),
/// };
/// let vector = Format::JsonLines;
/// # let _ = (elasticsearch, splunk, vector);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// The Elasticsearch / OpenSearch [`_bulk` API]: NDJSON pairs of
    /// `{"create":{"_index":..,"_id":<event id>}}` and the event, sent as
    /// `application/x-ndjson`. The URL is the `_bulk` endpoint
    /// (`https://es.example:9200/_bulk`, optionally with `?pipeline=..`). A `filter_path`
    /// in it must keep `errors` and `items.*.status`: an answer that says some items failed
    /// without listing them is retried, never taken as delivered.
    ///
    /// The document `_id` is the event id and the operation is always `create`, so a resent
    /// event is answered `409 Conflict` for that item, which counts as delivered: every
    /// event is indexed exactly once (in a data stream: once per backing index, so a resend
    /// after a rollover is indexed again). `create` is also the only operation data streams
    /// take.
    ///
    /// Every document has an `@timestamp`, as data streams require: an ECS document its own,
    /// and a schema v1 or OCSF document the event's `time` (RFC 3339, microseconds) as an
    /// added first member. [`index_template`](crate::format::index_template) gives the
    /// mappings, and [`install_template`](super::HttpCollectorBuilder::install_template)
    /// installs them before the first batch.
    ///
    /// [`_bulk` API]: https://www.elastic.co/docs/api/doc/elasticsearch/operation/operation-bulk
    ElasticsearchBulk {
        /// The index, alias or data stream the events go to.
        index: String,
    },
    /// The Splunk [HTTP Event Collector] event endpoint: one
    /// `{"time":<epoch seconds>,"host":..,"source":..,"sourcetype":..,"index":..,"event":{..}}`
    /// object per event, concatenated. The URL is the event endpoint
    /// (`https://splunk.example:8088/services/collector/event`), the token is given with
    /// [`splunk_token`](super::HttpCollectorBuilder::splunk_token).
    ///
    /// Only the HEC codes that blame the events (6, invalid data format; 12 and 13, an
    /// `event` field missing or blank; 15, indexed fields) refuse them. Any other code
    /// blames the configuration and is transient, even on a 400 or a 2xx: 5 (no data: the
    /// body was lost on the way), 7 (an index the token may not write to), 10 and 11 (the
    /// data channel), 14, 16, and 17 (`HEC is healthy`: the URL is the health endpoint, and
    /// nothing was indexed). A 413 (too large) is refused whatever its code, so that the
    /// delivery sends halves.
    ///
    /// A 2xx is a delivery only when its body is an HEC answer with code 0
    /// (`{"text":"Success","code":0}`, which HEC always sends). A 2xx that is empty, not
    /// JSON, or JSON without a `code` (a proxy's or a single sign-on gateway's page in front
    /// of HEC) is transient: nothing was indexed as far as anyone can tell, so the events
    /// wait and are sent again.
    ///
    /// `host` is the event's `service.instance` when it has one. HEC has no deduplication: a
    /// batch resent after a timeout or replayed after a crash is indexed again, so dedupe on
    /// `event.id` in searches (`| dedup event.id`). The `invalid-event-number` of a failed
    /// answer is not read as "the events before it were indexed": Splunk does not document
    /// it so, and a wrong reading would lose an event silently where a resend only
    /// duplicates one.
    ///
    /// [HTTP Event Collector]: https://docs.splunk.com/Documentation/Splunk/latest/Data/FormateventsforHTTPEventCollector
    SplunkHec {
        /// The `source` field (e.g. the service name).
        source: String,
        /// The `sourcetype` field; `_json` extracts the event fields at search time.
        sourcetype: String,
        /// The index; `None` uses the token's default index.
        index: Option<String>,
    },
    /// Newline-delimited JSON, one event per line, sent as `application/x-ndjson`: what
    /// Vector's `http_server` source (`decoding.codec = "json"`, `framing.method =
    /// "newline_delimited"`) and Fluent Bit's `http` input read.
    ///
    /// Each request carries an `Idempotency-Key` header derived from the ids of the events
    /// in it, so a collector (or a proxy in front of it) can drop an exact resend; beyond
    /// that, consumers dedupe on the event `id`.
    ///
    /// With [`alerts_only`](super::HttpCollectorBuilder::alerts_only) and an
    /// [`hmac_sha256_secret`](super::HttpCollectorBuilder::hmac_sha256_secret), this is a
    /// signed webhook for responders.
    JsonLines,
    /// Prometheus Alertmanager's v2 API (`POST .../api/v2/alerts`): each `SecurityAlert`
    /// event becomes one alert; other events are not sent. Its labels are `alertname` and
    /// `rule` (the rule id), `severity`, `service`, `instance` (when the service has one)
    /// and `key` (what the rule grouped by), so Alertmanager routes and groups by them; its
    /// annotations `summary` (the rule's title), `description`, `event_id` and `evidence`.
    /// `startsAt` is the first event counted, `endsAt` the last plus the rule's window (or
    /// the time of delivery plus the window, when that is later: Alertmanager never notifies
    /// an alert that reaches it already ended).
    Alertmanager {
        /// Every alert's `generatorURL` (a link to a dashboard or the trail), when given.
        generator_url: Option<String>,
    },
}

/// What a 2xx answer said about the events in the request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every event was accepted.
    Accepted,
    /// Some events failed transiently (bulk items answered 429, 5xx, or a status that is not
    /// the document's fault, such as 403 or 404).
    Retry(String),
    /// Some events were refused for good.
    Rejected(String),
}

impl Format {
    /// A backend name for metrics and `dropped.sink` when none is set.
    pub(crate) fn default_name(&self) -> &'static str {
        match self {
            Format::ElasticsearchBulk { .. } => "elasticsearch",
            Format::SplunkHec { .. } => "splunk-hec",
            Format::JsonLines => "http",
            Format::Alertmanager { .. } => "alertmanager",
        }
    }

    /// Whether only `SecurityAlert` events are sent, whatever the builder says.
    pub(crate) fn alerts_only(&self) -> bool {
        matches!(self, Format::Alertmanager { .. })
    }

    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            Format::ElasticsearchBulk { .. } | Format::JsonLines => "application/x-ndjson",
            Format::SplunkHec { .. } | Format::Alertmanager { .. } => "application/json",
        }
    }

    /// Appends one event to a request body: `document` is the event's JSON in the sink's
    /// event format, `event_format` (the envelopes read the id, time and service from
    /// `event`).
    pub(crate) fn append(
        &self,
        body: &mut Vec<u8>,
        event: &EncodedEvent,
        document: &[u8],
        event_format: EventFormat,
    ) {
        match self {
            Format::ElasticsearchBulk { index } => {
                body.extend_from_slice(br#"{"create":{"_index":"#);
                push_json_string(body, index);
                body.extend_from_slice(br#","_id":""#);
                body.extend_from_slice(
                    event
                        .id()
                        .hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer())
                        .as_bytes(),
                );
                body.extend_from_slice(b"\"}}\n");
                if event_format == EventFormat::Ecs {
                    // ECS documents carry their own `@timestamp`.
                    body.extend_from_slice(document);
                } else {
                    push_with_timestamp(body, event.time(), document);
                }
                body.push(b'\n');
            }
            Format::SplunkHec {
                source,
                sourcetype,
                index,
            } => {
                body.extend_from_slice(br#"{"time":"#);
                push_epoch_seconds(body, event.time().unix_micros());
                if let Some(host) = event.service().and_then(|service| service.instance) {
                    body.extend_from_slice(br#","host":"#);
                    push_json_string(body, &host);
                }
                body.extend_from_slice(br#","source":"#);
                push_json_string(body, source);
                body.extend_from_slice(br#","sourcetype":"#);
                push_json_string(body, sourcetype);
                if let Some(index) = index {
                    body.extend_from_slice(br#","index":"#);
                    push_json_string(body, index);
                }
                body.extend_from_slice(br#","event":"#);
                body.extend_from_slice(document);
                body.push(b'}');
            }
            Format::JsonLines => {
                body.extend_from_slice(document);
                body.push(b'\n');
            }
            Format::Alertmanager { generator_url } => {
                // One element of a JSON array: `send` writes the brackets.
                if body.last().is_some_and(|b| *b == b'}') {
                    body.push(b',');
                }
                let alert = alertmanager_alert(event, generator_url.as_deref());
                let _ = serde_json::to_writer(&mut *body, &alert);
            }
        }
    }

    /// Whether a 2xx answer says something about the events ([`verdict`](Self::verdict)
    /// reads it), so that it must be read whole.
    pub(crate) fn reads_answer(&self) -> bool {
        matches!(
            self,
            Format::ElasticsearchBulk { .. } | Format::SplunkHec { .. }
        )
    }

    /// Whether an answer refusing the request (400, 422; a 413 is always the request's size)
    /// blames the configuration rather
    /// than the events, as Splunk HEC's codes tell (an index the token may not write to, a
    /// missing data channel): then it is transient, and the events wait for the fix. Every
    /// HEC code but the few that blame the events does (a code added in a later Splunk
    /// release too: events are dropped only for a fault known to be theirs).
    pub(crate) fn blames_configuration(&self, answer: &[u8]) -> bool {
        match self {
            Format::SplunkHec { .. } => {
                hec_code(answer).is_some_and(|code| !HEC_EVENT_CODES.contains(&code))
            }
            _ => false,
        }
    }

    /// The events a 2xx answer says were stored, even though it failed others: for `_bulk`,
    /// the `_id` of every item created (2xx) or already there (409). Other formats answer
    /// for the whole request, so none.
    pub(crate) fn stored_items(&self, answer: &[u8]) -> Vec<uuid::Uuid> {
        match self {
            Format::ElasticsearchBulk { .. } => serde_json::from_slice::<BulkResponse>(answer)
                .map(|response| {
                    response
                        .items
                        .iter()
                        .flat_map(|item| item.values())
                        .filter(|item| matches!(item.status, 200..=299 | 409))
                        .filter_map(|item| item.id.as_deref())
                        .filter_map(|id| uuid::Uuid::parse_str(id).ok())
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Reads a 2xx answer; what its messages quote of it goes through `shown` (which hides
    /// the secrets it may quote).
    pub(crate) fn verdict(&self, body: &[u8], shown: &dyn Fn(&str) -> String) -> Verdict {
        match self {
            Format::ElasticsearchBulk { .. } => bulk_verdict(body, shown),
            Format::SplunkHec { .. } => hec_verdict(body, shown),
            Format::JsonLines | Format::Alertmanager { .. } => Verdict::Accepted,
        }
    }
}

/// An Alertmanager v2 alert for a `SecurityAlert` event (read back from its JSON, which is
/// all a spooled event has).
fn alertmanager_alert(event: &EncodedEvent, generator_url: Option<&str>) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let parsed: Value = serde_json::from_slice(event.json()).unwrap_or(Value::Null);
    let alert = &parsed["alert"];
    let text = |value: &Value| value.as_str().map(str::to_owned);
    let rule = text(&alert["rule"]).unwrap_or_else(|| "unknown".into());
    let mut labels = Map::new();
    labels.insert("alertname".into(), json!(rule));
    labels.insert("rule".into(), json!(rule));
    for (label, value) in [
        ("severity", &parsed["severity"]),
        ("service", &parsed["service"]["name"]),
        ("instance", &parsed["service"]["instance"]),
        ("key", &alert["key"]),
    ] {
        if let Some(value) = text(value) {
            labels.insert(label.into(), json!(value));
        }
    }
    let window = alert["window_s"].as_u64().unwrap_or(0);
    let mut annotations = Map::new();
    if let Some(title) = text(&alert["title"]) {
        annotations.insert("summary".into(), json!(title));
    }
    annotations.insert(
        "description".into(),
        json!(format!(
            "{} event(s) in {window} s for {}",
            alert["count"].as_u64().unwrap_or(0),
            text(&alert["key"]).unwrap_or_default()
        )),
    );
    annotations.insert("event_id".into(), json!(event.id().to_string()));
    if let Some(evidence) = alert["evidence"].as_array() {
        let ids: Vec<&str> = evidence.iter().filter_map(Value::as_str).collect();
        annotations.insert("evidence".into(), json!(ids.join(" ")));
    }
    let time = |value: &Value| value.as_str().and_then(crate::event::Timestamp::parse);
    let starts = time(&alert["first_seen"]).unwrap_or_else(|| event.time());
    let last = time(&alert["last_seen"]).unwrap_or_else(|| event.time());
    let window_micros = i64::try_from(window.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    // Alertmanager takes an alert whose `endsAt` is past as resolved, and never notifies
    // one it did not see firing: an alert delivered later than its window (a detector
    // catching up on a backlog, a spool replayed after an outage) must still fire, for a
    // window from now.
    let ends_from = last.unix_micros().max(Timestamp::now().unix_micros());
    let mut body = Map::new();
    body.insert("labels".into(), Value::Object(labels));
    body.insert("annotations".into(), Value::Object(annotations));
    body.insert("startsAt".into(), json!(starts.to_string()));
    if let Some(ends) =
        crate::event::Timestamp::from_unix_micros(ends_from.saturating_add(window_micros))
    {
        body.insert("endsAt".into(), json!(ends.to_string()));
    }
    if let Some(url) = generator_url {
        body.insert("generatorURL".into(), json!(url));
    }
    Value::Object(body)
}

/// `Idempotency-Key` for a request (draft-ietf-httpapi-idempotency-key-header: a quoted
/// string): the same events always give the same key.
pub(crate) fn idempotency_key(events: &[EncodedEvent]) -> String {
    let mut digest = Sha256::new();
    for event in events {
        digest.update(event.id().as_bytes());
    }
    format!("\"{}\"", hex::encode(&digest.finalize()[..16]))
}

/// `document` with `"@timestamp"` (the event time, RFC 3339 with microseconds) as its first
/// member, which data streams require and Kibana and OpenSearch Dashboards sort by. Written
/// in front of the document's own bytes, which are not parsed again: they may be the very
/// bytes the hash chain hashed. A document that is not an object (which `_bulk` would refuse
/// anyway) is written as it is.
fn push_with_timestamp(body: &mut Vec<u8>, time: Timestamp, document: &[u8]) {
    let start = document.iter().position(|b| !b.is_ascii_whitespace());
    let Some(start) = start.filter(|&i| document[i] == b'{') else {
        body.extend_from_slice(document);
        return;
    };
    let members = &document[start + 1..];
    body.extend_from_slice(br#"{"@timestamp":""#);
    // Timestamp's Display is RFC 3339 in UTC with microseconds: no character to escape.
    let _ = write!(body, "{time}");
    body.push(b'"');
    if members.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
        body.push(b',');
    }
    body.extend_from_slice(members);
}

fn push_json_string(body: &mut Vec<u8>, value: &str) {
    // Serialising a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *body, value);
}

/// Seconds since the epoch with microseconds, written exactly (an f64 would round the last
/// digit of today's timestamps).
fn push_epoch_seconds(body: &mut Vec<u8>, micros: i64) {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let text = format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000);
    body.extend_from_slice(text.as_bytes());
}

/// The answer of `_bulk`.
#[derive(Deserialize)]
struct BulkResponse {
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, BulkItem>>,
}

/// One item of a `_bulk` answer, keyed by its operation (`create`).
#[derive(Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default, rename = "_id")]
    id: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The answer of `_bulk`: `errors` is false when every item succeeded; otherwise each item
/// carries its own status.
fn bulk_verdict(body: &[u8], shown: &dyn Fn(&str) -> String) -> Verdict {
    let response: BulkResponse = match serde_json::from_slice(body) {
        Ok(response) => response,
        Err(err) => {
            return Verdict::Retry(format!(
                "the _bulk answer is not a bulk response ({err}): {}",
                excerpt(body, shown)
            ))
        }
    };
    if !response.errors {
        return Verdict::Accepted;
    }
    let total = response.items.len();
    let mut retry = 0usize;
    let mut rejected = 0usize;
    let mut first_retry = None;
    let mut first_rejected = None;
    for item in response.items.iter().flat_map(|item| item.values()) {
        match item.status {
            200..=299 | 409 => {}
            // The document's fault (a mapping conflict, a field too large), as a whole
            // answer's 400, 413 and 422 are (`classify::refuses_events`).
            400 | 413 | 422 => {
                rejected += 1;
                first_rejected
                    .get_or_insert_with(|| describe_item(item.status, &item.error, shown));
            }
            // 429 and 5xx, and the cluster's or the configuration's fault: 403 for a
            // privilege the writer lacks on the index, 404 for an index that may not be
            // created.
            _ => {
                retry += 1;
                first_retry.get_or_insert_with(|| describe_item(item.status, &item.error, shown));
            }
        }
    }
    let conflicts = response
        .items
        .iter()
        .flat_map(|item| item.values())
        .any(|item| item.status == 409);
    if retry == 0 && rejected == 0 && !conflicts {
        // `errors` says some item failed, and no item says which: a `filter_path` in the URL
        // (`?filter_path=errors`) cut them out. Taken as delivered, the failed events would
        // be lost without a word.
        return Verdict::Retry(format!(
            "the _bulk answer says some items failed but lists no failed item (does a \
             filter_path in the URL leave out items.*.status?): {}",
            excerpt(body, shown)
        ));
    }
    if let Some(first) = first_retry {
        // The resend leaves out the items indexed (`stored_items`); any sent again all the
        // same (after a restart) come back as 409.
        Verdict::Retry(format!(
            "{retry} of {total} bulk items failed transiently, e.g. {first}"
        ))
    } else if let Some(first) = first_rejected {
        Verdict::Rejected(format!(
            "{rejected} of {total} bulk items were refused (the other {} were indexed), e.g. {first}",
            total - rejected
        ))
    } else {
        Verdict::Accepted
    }
}

fn describe_item(
    status: u16,
    error: &Option<serde_json::Value>,
    shown: &dyn Fn(&str) -> String,
) -> String {
    let kind = error
        .as_ref()
        .and_then(|error| error.get("type"))
        .and_then(|kind| kind.as_str())
        .unwrap_or("unknown");
    let reason = error
        .as_ref()
        .and_then(|error| error.get("reason"))
        .and_then(|reason| reason.as_str())
        .unwrap_or("");
    crate::event::sanitize(&shown(&format!("status {status} {kind}: {reason}")), 300)
}

/// The HEC codes that blame the events themselves, so that resending them cannot help
/// (Splunk's "Troubleshoot HTTP Event Collector" table): 6 (invalid data format), 12 (event
/// field is required), 13 (event field cannot be blank), 15 (error in handling indexed
/// fields). Every other code is the token's, the request's or the server's: 1 to 4
/// (token, 401 and 403), 5 (no data, though the request had events: a proxy lost the body),
/// 7 (incorrect index), 8 and 9 (500, 503), 10 and 11 (data channel), 14 (acknowledgement
/// disabled), 16 (query string authorization not enabled), 17 (`HEC is healthy`: the health
/// endpoint answered), 18 to 20 (unhealthy, 503).
const HEC_EVENT_CODES: [i64; 4] = [6, 12, 13, 15];

/// The `code` of an HEC answer, if it is one.
fn hec_code(body: &[u8]) -> Option<i64> {
    #[derive(Deserialize)]
    struct HecCode {
        code: Option<i64>,
    }
    serde_json::from_slice::<HecCode>(body).ok()?.code
}

/// HEC answers `{"text":"Success","code":0}`; a 2xx with another code indexed nothing: a
/// refusal when the code blames the events, otherwise transient (17, `HEC is healthy`, is
/// what the health endpoint answers a sink configured with its URL). A 2xx without a code
/// (empty, not JSON, JSON without `code`) is no answer of HEC, which always sends one: a
/// proxy or a login page in front of it answered, and nothing says the events were
/// indexed. Transient too: taken for a delivery, the events would be lost without a word.
fn hec_verdict(body: &[u8], shown: &dyn Fn(&str) -> String) -> Verdict {
    #[derive(Deserialize)]
    struct HecResponse {
        code: Option<i64>,
        text: Option<String>,
    }
    match serde_json::from_slice::<HecResponse>(body) {
        Ok(HecResponse {
            code: Some(0),
            text: _,
        }) => Verdict::Accepted,
        Ok(HecResponse {
            code: Some(code),
            text,
        }) => {
            let message = format!(
                "HEC answered code {code}: {}",
                crate::event::sanitize(&shown(text.as_deref().unwrap_or("")), 300)
            );
            if HEC_EVENT_CODES.contains(&code) {
                Verdict::Rejected(message)
            } else {
                Verdict::Retry(message)
            }
        }
        _ if body.iter().all(u8::is_ascii_whitespace) => Verdict::Retry(
            "answered with an empty body, not an HEC answer (a proxy in front of HEC?): \
             nothing says the events were indexed"
                .into(),
        ),
        _ => Verdict::Retry(format!(
            "answered without an HEC code (a proxy or a login page in front of HEC?): \
             nothing says the events were indexed: {}",
            excerpt(body, shown)
        )),
    }
}

/// The start of a response body, for error messages, once `shown` hid what it must.
pub(crate) fn excerpt(body: &[u8], shown: &dyn Fn(&str) -> String) -> String {
    crate::event::sanitize(&shown(&String::from_utf8_lossy(body)), 300)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn event(id: &str, time: &str, instance: Option<&str>) -> EncodedEvent {
        let service = match instance {
            Some(instance) => format!(r#"{{"name":"api","instance":"{instance}"}}"#),
            None => r#"{"name":"api"}"#.to_string(),
        };
        let json = format!(
            r#"{{"schema":"oauth-audit/1","id":"{id}","time":"{time}","kind":"TokenRevoked","service":{service}}}"#
        );
        EncodedEvent::from_json(Bytes::from(json)).unwrap()
    }

    /// Answers quoted as they are.
    fn plain(text: &str) -> String {
        text.to_owned()
    }

    const ID: &str = "0192e7a0-0000-7000-8000-000000000001";

    #[test]
    fn bulk_pairs_a_create_action_with_each_event() {
        let format = Format::ElasticsearchBulk {
            index: "audit\"x".into(),
        };
        let event = event(ID, "2026-11-24T14:03:07.123456Z", None);
        let mut body = Vec::new();
        format.append(&mut body, &event, event.json(), EventFormat::OAuthAudit);
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.split_terminator('\n').collect();
        assert!(text.ends_with('\n'));
        assert_eq!(
            lines[0],
            format!(r#"{{"create":{{"_index":"audit\"x","_id":"{ID}"}}}}"#)
        );
        // The event's own bytes, after an `@timestamp` member.
        let json = std::str::from_utf8(event.json()).unwrap();
        assert_eq!(
            lines[1],
            format!(
                r#"{{"@timestamp":"2026-11-24T14:03:07.123456Z",{}"#,
                &json[1..]
            )
        );
        let document: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(document["@timestamp"], document["time"]);
    }

    #[test]
    fn bulk_adds_a_timestamp_to_every_format_but_ecs() {
        let format = Format::ElasticsearchBulk { index: "a".into() };
        let event = event(ID, "2026-11-24T14:03:07.000042Z", None);
        let ecs = br#"{"@timestamp":"2026-11-24T14:03:07.000042Z","ecs":{"version":"9.4.0"}}"#;
        let ocsf = br#"{"class_uid":3002,"time":1795528987000}"#;
        let document = |event_format, document: &[u8]| {
            let mut body = Vec::new();
            format.append(&mut body, &event, document, event_format);
            let text = String::from_utf8(body).unwrap();
            text.split_terminator('\n').nth(1).unwrap().to_owned()
        };
        assert_eq!(document(EventFormat::Ecs, ecs).as_bytes(), &ecs[..]);
        assert_eq!(
            document(EventFormat::Ocsf, ocsf),
            r#"{"@timestamp":"2026-11-24T14:03:07.000042Z","class_uid":3002,"time":1795528987000}"#
        );
        // Whatever bytes the event's JSON is, the document stays one JSON object.
        for (json, expected) in [
            (
                &b"{}"[..],
                r#"{"@timestamp":"2026-11-24T14:03:07.000042Z"}"#,
            ),
            (
                b" { } ",
                r#"{"@timestamp":"2026-11-24T14:03:07.000042Z" } "#,
            ),
            (
                b"\n{\"a\":1}",
                r#"{"@timestamp":"2026-11-24T14:03:07.000042Z","a":1}"#,
            ),
            (b"[1]", "[1]"),
        ] {
            let written = document(EventFormat::OAuthAudit, json);
            assert_eq!(written, expected);
            if json.starts_with(b"[") {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(&written).unwrap();
            assert_eq!(value["@timestamp"], "2026-11-24T14:03:07.000042Z");
        }
    }

    #[test]
    fn bulk_keeps_the_chains_json_whole() {
        use crate::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
        let service = std::sync::Arc::new(ServiceInfo {
            name: "api".into(),
            instance: None,
        });
        let mut event = AuditEvent::new(
            service,
            Timestamp::parse("2026-11-24T14:03:07.5Z").unwrap(),
            EventKind::TokenRevoked,
            Outcome::Success,
        );
        // The chain's JSON: RFC 8785, members sorted, which `@timestamp` now precedes.
        let canonical = crate::event::canonical_json(&event).unwrap();
        event.json.set(Bytes::from(canonical.clone()));
        let encoded = EncodedEvent::encode(&event).unwrap();
        assert_eq!(&encoded.json()[..], &canonical[..]);
        let format = Format::ElasticsearchBulk { index: "a".into() };
        let mut body = Vec::new();
        format.append(&mut body, &encoded, encoded.json(), EventFormat::OAuthAudit);
        let text = String::from_utf8(body).unwrap();
        let line = text.split_terminator('\n').nth(1).unwrap();
        let document: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(document["@timestamp"], "2026-11-24T14:03:07.500000Z");
        let mut without: serde_json::Value = serde_json::from_slice(&canonical).unwrap();
        without["@timestamp"] = document["@timestamp"].clone();
        assert_eq!(document, without);
    }

    #[test]
    fn hec_envelope_carries_exact_time_and_host() {
        let format = Format::SplunkHec {
            source: "api".into(),
            sourcetype: "_json".into(),
            index: None,
        };
        let event = event(ID, "2026-11-24T14:03:07.000042Z", Some("pod-7"));
        let mut body = Vec::new();
        format.append(&mut body, &event, event.json(), EventFormat::OAuthAudit);
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(r#"{"time":1795528987.000042,"host":"pod-7","#));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["source"], "api");
        assert_eq!(value["sourcetype"], "_json");
        assert!(value.get("index").is_none());
        assert_eq!(value["event"]["id"], ID);
    }

    #[test]
    fn epoch_seconds_before_1970_keep_their_sign() {
        let mut body = Vec::new();
        push_epoch_seconds(&mut body, -1_500_000);
        assert_eq!(body, b"-1.500000");
    }

    #[test]
    fn bulk_items_are_classified() {
        let format = Format::ElasticsearchBulk { index: "a".into() };
        assert_eq!(
            format.verdict(br#"{"took":1,"errors":false,"items":[]}"#, &plain),
            Verdict::Accepted
        );
        assert_eq!(
            format.verdict(
                br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]}"#, &plain
            ),
            Verdict::Accepted
        );
        assert!(matches!(
            format.verdict(
                br#"{"errors":true,"items":[{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}},{"create":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}]}"#, &plain
            ),
            Verdict::Retry(message) if message.contains("es_rejected_execution_exception")
        ));
        assert!(matches!(
            format.verdict(
                br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}}]}"#, &plain
            ),
            Verdict::Rejected(message) if message.contains("1 of 2") && message.contains("mapper_parsing_exception")
        ));
        assert!(matches!(
            format.verdict(b"<html>", &plain),
            Verdict::Retry(_)
        ));
        // Failures the answer does not list (`?filter_path=errors`) are not deliveries.
        for answer in [
            &br#"{"errors":true}"#[..],
            br#"{"errors":true,"items":[{"create":{"status":201}}]}"#,
        ] {
            assert!(matches!(
                format.verdict(answer, &plain),
                Verdict::Retry(message) if message.contains("filter_path")
            ));
        }
        // A privilege missing on the index, an index that may not be created: not the
        // documents' fault.
        for (status, kind) in [
            (403, "security_exception"),
            (404, "index_not_found_exception"),
        ] {
            let answer = format!(
                r#"{{"errors":true,"items":[{{"create":{{"status":201}}}},{{"create":{{"status":{status},"error":{{"type":"{kind}"}}}}}}]}}"#
            );
            assert!(matches!(
                format.verdict(answer.as_bytes(), &plain),
                Verdict::Retry(message) if message.contains(kind)
            ));
        }
    }

    #[test]
    fn hec_refusals_blame_the_events_or_the_configuration() {
        let format = Format::SplunkHec {
            source: "a".into(),
            sourcetype: "b".into(),
            index: None,
        };
        assert!(format.blames_configuration(br#"{"text":"Incorrect index","code":7}"#));
        assert!(format.blames_configuration(br#"{"text":"Data channel is missing","code":10}"#));
        assert!(format.blames_configuration(br#"{"text":"No data","code":5}"#));
        assert!(!format.blames_configuration(br#"{"text":"Event field is required","code":12}"#));
        assert!(!format.blames_configuration(br#"{"text":"Invalid data format","code":6}"#));
        assert!(!format.blames_configuration(b"<html>"));
        let bulk = Format::ElasticsearchBulk { index: "a".into() };
        assert!(!bulk.blames_configuration(br#"{"text":"Incorrect index","code":7}"#));
    }

    #[test]
    fn hec_codes_are_read() {
        let format = Format::SplunkHec {
            source: "a".into(),
            sourcetype: "b".into(),
            index: None,
        };
        assert_eq!(
            format.verdict(br#"{"text":"Success","code":0}"#, &plain),
            Verdict::Accepted
        );
        assert!(matches!(
            format.verdict(br#"{"text":"Invalid data format","code":6}"#, &plain),
            Verdict::Rejected(_)
        ));
        // The health endpoint, or a code that blames the configuration: nothing indexed,
        // and not the events' fault.
        for answer in [
            &br#"{"text":"HEC is healthy","code":17}"#[..],
            br#"{"text":"Incorrect index","code":7}"#,
        ] {
            assert!(matches!(format.verdict(answer, &plain), Verdict::Retry(_)));
        }
    }

    /// HEC always answers a code: a 2xx without one (a proxy's page, an empty body, JSON of
    /// another service) does not say the events were indexed, and is transient.
    #[test]
    fn a_2xx_without_an_hec_code_is_no_delivery() {
        let format = Format::SplunkHec {
            source: "a".into(),
            sourcetype: "b".into(),
            index: None,
        };
        for answer in [
            &b"<html><body>Sign in to continue</body></html>"[..],
            b"",
            b" \n",
            b"{}",
            br#"{"text":"Success"}"#,
            br#"{"text":"Success","code":null}"#,
            b"OK",
        ] {
            let verdict = format.verdict(answer, &plain);
            assert!(
                matches!(&verdict, Verdict::Retry(message) if message.contains("nothing says the events were indexed")),
                "{:?}: {verdict:?}",
                String::from_utf8_lossy(answer)
            );
        }
        // With indexer acknowledgement on, HEC adds an `ackId`: still a delivery.
        assert_eq!(
            format.verdict(br#"{"text":"Success","code":0,"ackId":7}"#, &plain),
            Verdict::Accepted
        );
    }

    #[test]
    fn every_documented_hec_code_is_classified() {
        let format = Format::SplunkHec {
            source: "a".into(),
            sourcetype: "b".into(),
            index: None,
        };
        for code in 1..=20 {
            let answer = format!(r#"{{"text":"t","code":{code}}}"#);
            let events_fault = [6, 12, 13, 15].contains(&code);
            assert_eq!(
                format.blames_configuration(answer.as_bytes()),
                !events_fault,
                "code {code}"
            );
        }
    }

    #[test]
    fn idempotency_key_depends_on_the_ids() {
        let a = event(ID, "2026-11-24T14:03:07Z", None);
        let b = event(
            "0192e7a0-0000-7000-8000-000000000002",
            "2026-11-24T14:03:07Z",
            None,
        );
        let key = idempotency_key(&[a.clone(), b.clone()]);
        assert_eq!(key, idempotency_key(&[a.clone(), b.clone()]));
        assert_ne!(key, idempotency_key(&[a]));
        assert!(key.starts_with('"') && key.ends_with('"') && key.len() == 34);
    }
}
