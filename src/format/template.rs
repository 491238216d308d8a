//! Elasticsearch / OpenSearch index templates: the mappings of each [`EventFormat`], so that
//! addresses are `ip`, times `date`, ids `keyword` and counts numbers from the first
//! document on, instead of what dynamic mapping guesses.
//!
//! [`index_template`] builds a composable template (`PUT _index_template/<name>`) for a data
//! stream: `index_patterns`, `data_stream: {}`, `priority`, and `template.mappings` (with
//! `template.settings."index.lifecycle.name"` when an ILM policy is named). The mappings are
//! written here, next to the formats they describe, and the tests in this module map the
//! sample events of every kind in every format through them, so a field a format adds
//! without a mapping is found. Strings no mapping names become `keyword` (a dynamic
//! template). The `_bulk` sink adds `@timestamp` to schema v1 and OCSF documents (ECS has
//! its own), so every template maps it.

use serde_json::{json, Map, Value};

use super::EventFormat;

/// The priority of a template by default: above the 100 of Elasticsearch's built-in `logs-*-*`
/// template, so that a data stream named `logs-oauth_audit-default` takes these mappings.
pub const DEFAULT_TEMPLATE_PRIORITY: u64 = 200;

/// What an index template applies to, besides its mappings: see [`index_template`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateOptions {
    index_patterns: Vec<String>,
    priority: u64,
    ilm_policy: Option<String>,
}

impl TemplateOptions {
    /// A template for the indices or data streams matching `index_pattern` (a name, or a
    /// pattern such as `oauth-audit-*`), at [`DEFAULT_TEMPLATE_PRIORITY`], with no ILM policy.
    pub fn new(index_pattern: impl Into<String>) -> Self {
        TemplateOptions {
            index_patterns: vec![index_pattern.into()],
            priority: DEFAULT_TEMPLATE_PRIORITY,
            ilm_policy: None,
        }
    }

    /// Adds another index pattern.
    pub fn index_pattern(mut self, pattern: impl Into<String>) -> Self {
        self.index_patterns.push(pattern.into());
        self
    }

    /// The template's priority: of the templates matching a new data stream, the highest
    /// wins; two with the same priority and overlapping patterns are refused. Elasticsearch
    /// reads it as a `long`: one past `i64::MAX` is refused when the template is put.
    pub fn priority(mut self, priority: u64) -> Self {
        self.priority = priority;
        self
    }

    /// Names the Elasticsearch ILM policy of the data stream's indices
    /// (`index.lifecycle.name`; `docs/elasticsearch/ilm-policy.json` is an example). Not for
    /// OpenSearch, which refuses the setting: an ISM policy attaches itself by its
    /// `ism_template` (`docs/elasticsearch/ism-policy.json`).
    pub fn ilm_policy(mut self, policy: impl Into<String>) -> Self {
        self.ilm_policy = Some(policy.into());
        self
    }

    /// The index patterns.
    pub fn index_patterns(&self) -> &[String] {
        &self.index_patterns
    }
}

impl Default for TemplateOptions {
    /// `TemplateOptions::new("oauth-audit")`.
    fn default() -> Self {
        TemplateOptions::new("oauth-audit")
    }
}

/// A composable index template (the body of `PUT _index_template/<name>`) for documents of
/// `format` as the `_bulk` sink sends them: a data stream template with the format's
/// mappings, by dotted path: `ip` for addresses, `date` for times (OCSF's epoch
/// milliseconds with `format: epoch_millis`), `keyword` for ids, numbers as numbers, free text
/// as `text` with a `keyword` sub-field (in ECS, as ECS defines it), and `keyword` for any
/// other string. `docs/formats.md` lists them.
///
/// ```
/// use oauth_audit::format::{index_template, EventFormat, TemplateOptions};
///
/// let options = TemplateOptions::new("oauth-audit").ilm_policy("oauth-audit");
/// let template = index_template(EventFormat::Ecs, &options);
/// assert_eq!(template["index_patterns"], serde_json::json!(["oauth-audit"]));
/// assert_eq!(template["data_stream"], serde_json::json!({}));
/// assert_eq!(template["template"]["settings"]["index.lifecycle.name"], "oauth-audit");
/// let properties = &template["template"]["mappings"]["properties"];
/// assert_eq!(properties["source"]["properties"]["ip"]["type"], "ip");
/// assert_eq!(properties["@timestamp"]["type"], "date");
/// assert_eq!(properties["event"]["properties"]["id"]["type"], "keyword");
///
/// let ocsf = index_template(EventFormat::Ocsf, &TemplateOptions::default());
/// let time = &ocsf["template"]["mappings"]["properties"]["time"];
/// assert_eq!(time["format"], "epoch_millis");
/// ```
pub fn index_template(format: EventFormat, options: &TemplateOptions) -> Value {
    let mut properties = Map::new();
    for (path, field) in fields(format) {
        insert(&mut properties, &path, field.mapping());
    }
    let mut template = Map::new();
    if let Some(policy) = &options.ilm_policy {
        template.insert("settings".into(), json!({ "index.lifecycle.name": policy }));
    }
    template.insert(
        "mappings".into(),
        json!({
            // Every date the formats write is mapped below; a string that looks like a
            // date elsewhere (a label) stays a keyword.
            "date_detection": false,
            "dynamic_templates": [{
                "strings_as_keyword": {
                    "match_mapping_type": "string",
                    "mapping": { "type": "keyword", "ignore_above": 1024 }
                }
            }],
            "properties": properties,
        }),
    );
    json!({
        "index_patterns": options.index_patterns,
        "data_stream": {},
        "priority": options.priority,
        "template": template,
        "_meta": {
            "description": format!("oauth-audit events, format {format}"),
            "managed_by": "oauth-audit",
            "oauth_audit_version": env!("CARGO_PKG_VERSION"),
            "event_format": format.as_str(),
        },
    })
}

/// How one field is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Keyword,
    /// Free text, searchable by word, with a `keyword` sub-field for exact matches and
    /// aggregations.
    Text,
    /// ECS's free text: `match_only_text`.
    MatchOnlyText,
    /// ECS's keyword with a `text` sub-field of `match_only_text` (`user_agent.original`).
    KeywordAndText,
    /// ECS's `wildcard` (`url.path`).
    Wildcard,
    Ip,
    /// RFC 3339.
    Date,
    /// RFC 3339, from what a token says of itself (`iat`, `exp`): a year outside 0 to 9999,
    /// which Elasticsearch's four-digit dates refuse, leaves the field unindexed (it stays
    /// in `_source`) rather than refusing the whole document.
    ClaimedDate,
    /// Milliseconds since the epoch (OCSF's timestamps).
    EpochMillis,
    Long,
    Integer,
    Double,
    Boolean,
    GeoPoint,
    /// Keys and values chosen by the user (`labels`): their strings become keywords.
    Object,
}

impl Field {
    fn mapping(self) -> Value {
        match self {
            Field::Keyword => json!({ "type": "keyword", "ignore_above": 1024 }),
            Field::Text => json!({
                "type": "text",
                "fields": { "keyword": { "type": "keyword", "ignore_above": 1024 } }
            }),
            Field::MatchOnlyText => json!({ "type": "match_only_text" }),
            Field::KeywordAndText => json!({
                "type": "keyword",
                "ignore_above": 1024,
                "fields": { "text": { "type": "match_only_text" } }
            }),
            Field::Wildcard => json!({ "type": "wildcard" }),
            Field::Ip => json!({ "type": "ip" }),
            Field::Date => json!({ "type": "date" }),
            Field::ClaimedDate => json!({ "type": "date", "ignore_malformed": true }),
            Field::EpochMillis => json!({ "type": "date", "format": "epoch_millis" }),
            Field::Long => json!({ "type": "long" }),
            Field::Integer => json!({ "type": "integer" }),
            Field::Double => json!({ "type": "double" }),
            Field::Boolean => json!({ "type": "boolean" }),
            Field::GeoPoint => json!({ "type": "geo_point" }),
            Field::Object => json!({ "type": "object" }),
        }
    }
}

/// Puts `mapping` at the dotted `path`, making the objects on the way.
fn insert(properties: &mut Map<String, Value>, path: &str, mapping: Value) {
    match path.split_once('.') {
        None => {
            properties.insert(path.to_owned(), mapping);
        }
        Some((head, rest)) => {
            let object = properties
                .entry(head.to_owned())
                .or_insert_with(|| json!({ "properties": {} }));
            if let Some(Value::Object(children)) = object.get_mut("properties") {
                insert(children, rest, mapping);
            }
        }
    }
}

/// The mapped fields of `format`, by dotted path.
fn fields(format: EventFormat) -> Vec<(String, Field)> {
    let at = |prefix: &str, fields: &[(&str, Field)]| -> Vec<(String, Field)> {
        fields
            .iter()
            .map(|(path, field)| (format!("{prefix}{path}"), *field))
            .collect()
    };
    match format {
        EventFormat::OAuthAudit => [
            at("", V1_ENVELOPE),
            at("", OAUTH_FIELDS),
            at("oauth.", OAUTH_DETAILS),
        ]
        .concat(),
        // The v1 `oauth` object's fields keep their names in ECS: `oauth.pkce_method`.
        EventFormat::Ecs => [
            at("", ECS_FIELDS),
            at("oauth.", OAUTH_FIELDS),
            at("oauth.", OAUTH_DETAILS),
        ]
        .concat(),
        EventFormat::Ocsf => [
            at("", OCSF_FIELDS),
            at("unmapped.", OAUTH_FIELDS),
            at("unmapped.oauth.", OAUTH_DETAILS),
            at(
                "unmapped.",
                &[("span_id", Field::Keyword), ("http.method", Field::Keyword)],
            ),
        ]
        .concat(),
    }
}

/// Schema v1's own envelope and the fields a standard format maps to its own names.
const V1_ENVELOPE: &[(&str, Field)] = &[
    ("@timestamp", Field::Date),
    ("schema", Field::Keyword),
    ("id", Field::Keyword),
    ("time", Field::Date),
    ("kind", Field::Keyword),
    ("outcome", Field::Keyword),
    ("severity", Field::Keyword),
    ("service.name", Field::Keyword),
    ("service.instance", Field::Keyword),
    ("request_id", Field::Keyword),
    ("trace_id", Field::Keyword),
    ("span_id", Field::Keyword),
    ("actor.subject", Field::Keyword),
    ("http.method", Field::Keyword),
    ("http.path", Field::Keyword),
    ("http.status", Field::Long),
    ("http.duration_ms", Field::Double),
    ("source.ip", Field::Ip),
    ("source.user_agent", Field::Text),
    ("source.geo.city", Field::Keyword),
    ("source.geo.country", Field::Keyword),
    ("source.geo.lat", Field::Double),
    ("source.geo.lon", Field::Double),
    ("source.geo.name", Field::Keyword),
    ("source.geo.region", Field::Keyword),
    ("source.geo.region_code", Field::Keyword),
    ("source.as.number", Field::Long),
    ("source.as.org", Field::Keyword),
    ("error.code", Field::Keyword),
    ("error.description", Field::Text),
    ("labels", Field::Object),
];

/// What no standard has a field for, by its schema v1 name: at the top of a v1 event, under
/// `oauth.` in ECS and `unmapped.` in OCSF.
const OAUTH_FIELDS: &[(&str, Field)] = &[
    ("actor.client_id", Field::Keyword),
    ("actor.delegation.client_id", Field::Keyword),
    ("actor.delegation.issuer", Field::Keyword),
    ("actor.delegation.subject", Field::Keyword),
    ("actor.kind", Field::Keyword),
    ("alert.rule", Field::Keyword),
    ("alert.title", Field::Text),
    ("alert.key", Field::Keyword),
    ("alert.count", Field::Long),
    ("alert.window_s", Field::Long),
    ("alert.first_seen", Field::Date),
    ("alert.last_seen", Field::Date),
    ("alert.evidence", Field::Keyword),
    ("alert.suppressed", Field::Long),
    ("alert.travel.distance_km", Field::Long),
    ("alert.travel.seconds", Field::Long),
    // A trip in no time is the greatest `u64`, past the signed range of a `long`.
    ("alert.travel.speed_kmh", Field::Double),
    ("alert.travel.from.ip", Field::Ip),
    ("alert.travel.to.ip", Field::Ip),
    ("chain.stream", Field::Keyword),
    ("chain.seq", Field::Long),
    ("chain.prev", Field::Keyword),
    ("checkpoint.stream", Field::Keyword),
    ("checkpoint.seq", Field::Long),
    ("checkpoint.hash", Field::Keyword),
    ("checkpoint.note", Field::Keyword),
    ("client_auth", Field::Keyword),
    ("dropped.count", Field::Long),
    ("dropped.reason", Field::Keyword),
    ("dropped.sink", Field::Keyword),
    ("dropped.ranges.stream", Field::Keyword),
    ("dropped.ranges.first", Field::Long),
    ("dropped.ranges.last", Field::Long),
    ("dropped.signature", Field::Keyword),
    ("grant_type", Field::Keyword),
    ("http.route", Field::Keyword),
    ("http.duration_ms", Field::Double),
    ("redirect_uri", Field::Keyword),
    ("refresh_token.fingerprint", Field::Keyword),
    ("refresh_token.binding.jkt", Field::Keyword),
    ("refresh_token.binding.method", Field::Keyword),
    ("scopes.requested", Field::Keyword),
    ("scopes.granted", Field::Keyword),
    ("scopes.required", Field::Keyword),
    ("scopes.used", Field::Keyword),
    ("scopes.missing", Field::Keyword),
    ("source.forwarded_for", Field::Keyword),
    ("source.forwarded_headers", Field::Object),
    ("token.fingerprint", Field::Keyword),
    ("token.format", Field::Keyword),
    ("token.jti", Field::Keyword),
    ("token.issuer", Field::Keyword),
    ("token.audience", Field::Keyword),
    ("token.client_id", Field::Keyword),
    ("token.subject", Field::Keyword),
    ("token.issued_at", Field::ClaimedDate),
    ("token.expires_at", Field::ClaimedDate),
    ("token.type_hint", Field::Keyword),
    ("token.active", Field::Boolean),
    ("token.verdict", Field::Keyword),
    ("token.sent_in", Field::Keyword),
    ("token.truncated", Field::Keyword),
    ("token.binding.downgrade", Field::Boolean),
    ("token.binding.jkt", Field::Keyword),
    ("token.binding.method", Field::Keyword),
    ("token.binding.proof", Field::Keyword),
    ("token.binding.proof_jkt", Field::Keyword),
    ("token.binding.proof_x5t#S256", Field::Keyword),
    ("token.binding.x5t#S256", Field::Keyword),
    ("token.unverified.client_id", Field::Keyword),
    ("token.unverified.delegation.client_id", Field::Keyword),
    ("token.unverified.delegation.issuer", Field::Keyword),
    ("token.unverified.delegation.subject", Field::Keyword),
    ("token.unverified.scopes", Field::Keyword),
    ("token.unverified.subject", Field::Keyword),
];

/// The fields of v1's `oauth` object: under `oauth.` in v1 and ECS, `unmapped.oauth.` in
/// OCSF.
const OAUTH_DETAILS: &[(&str, Field)] = &[
    ("act", Field::Keyword),
    ("actor_token.fingerprint", Field::Keyword),
    ("actor_token_type", Field::Keyword),
    ("audience", Field::Keyword),
    ("auth_req_id_fingerprint", Field::Keyword),
    ("body_inspected", Field::Boolean),
    ("body_not_inspected", Field::Keyword),
    ("conflicting_client_id", Field::Keyword),
    ("conflicting_client_ids", Field::Keyword),
    ("device_code_fingerprint", Field::Keyword),
    ("dpop.jkt", Field::Keyword),
    ("dpop.method", Field::Keyword),
    ("dpop.proof", Field::Keyword),
    ("endpoint", Field::Keyword),
    ("issued_token_type", Field::Keyword),
    ("pkce_method", Field::Keyword),
    ("presented_refresh_token.fingerprint", Field::Keyword),
    ("pushed", Field::Boolean),
    ("reason", Field::Keyword),
    ("repeated", Field::Long),
    ("repeated_parameters", Field::Keyword),
    ("request_uri_fingerprint", Field::Keyword),
    ("requested_token_type", Field::Keyword),
    ("resource", Field::Keyword),
    ("response_type", Field::Keyword),
    ("subject_token.fingerprint", Field::Keyword),
    ("subject_token_type", Field::Keyword),
];

/// The ECS fields the ECS format writes (and the geo enrichment's), with the types ECS
/// gives them (`tests/data/ecs/` pins them; a test compares).
const ECS_FIELDS: &[(&str, Field)] = &[
    ("@timestamp", Field::Date),
    ("ecs.version", Field::Keyword),
    ("error.code", Field::Keyword),
    ("error.message", Field::MatchOnlyText),
    ("event.action", Field::Keyword),
    ("event.category", Field::Keyword),
    ("event.dataset", Field::Keyword),
    ("event.duration", Field::Long),
    ("event.end", Field::Date),
    ("event.id", Field::Keyword),
    ("event.kind", Field::Keyword),
    ("event.outcome", Field::Keyword),
    ("event.reason", Field::Keyword),
    ("event.start", Field::Date),
    ("event.type", Field::Keyword),
    ("http.request.id", Field::Keyword),
    ("http.request.method", Field::Keyword),
    ("http.response.status_code", Field::Long),
    ("labels", Field::Object),
    ("log.level", Field::Keyword),
    ("rule.id", Field::Keyword),
    ("rule.name", Field::Keyword),
    ("service.name", Field::Keyword),
    ("service.node.name", Field::Keyword),
    ("source.ip", Field::Ip),
    ("source.geo.city_name", Field::Keyword),
    ("source.geo.country_iso_code", Field::Keyword),
    ("source.geo.location", Field::GeoPoint),
    ("source.geo.name", Field::Keyword),
    ("source.geo.region_iso_code", Field::Keyword),
    ("source.geo.region_name", Field::Keyword),
    ("source.as.number", Field::Long),
    ("source.as.organization.name", Field::Keyword),
    ("span.id", Field::Keyword),
    ("trace.id", Field::Keyword),
    ("url.path", Field::Wildcard),
    ("user.name", Field::Keyword),
    ("user_agent.original", Field::KeywordAndText),
];

/// The OCSF attributes the OCSF format writes (and the geo enrichment's). OCSF's
/// timestamps are milliseconds since the epoch; `time_dt` is RFC 3339.
const OCSF_FIELDS: &[(&str, Field)] = &[
    ("@timestamp", Field::Date),
    ("activity_id", Field::Integer),
    ("activity_name", Field::Keyword),
    ("actor.app_uid", Field::Keyword),
    ("actor.user.name", Field::Keyword),
    ("actor.user.type_id", Field::Integer),
    ("actor.user.uid", Field::Keyword),
    ("api.operation", Field::Keyword),
    ("auth_protocol", Field::Keyword),
    ("auth_protocol_id", Field::Integer),
    ("category_uid", Field::Integer),
    ("class_uid", Field::Integer),
    ("count", Field::Long),
    ("duration", Field::Long),
    ("evidences.actor.app_uid", Field::Keyword),
    ("evidences.actor.user.name", Field::Keyword),
    ("evidences.actor.user.type_id", Field::Integer),
    ("evidences.actor.user.uid", Field::Keyword),
    ("evidences.src_endpoint.ip", Field::Ip),
    ("evidences.src_endpoint.name", Field::Keyword),
    ("evidences.src_endpoint.location.lat", Field::Double),
    ("evidences.src_endpoint.location.long", Field::Double),
    (
        "evidences.src_endpoint.autonomous_system.number",
        Field::Long,
    ),
    ("finding_info.analytic.name", Field::Keyword),
    ("finding_info.analytic.type_id", Field::Integer),
    ("finding_info.analytic.uid", Field::Keyword),
    ("finding_info.desc", Field::Keyword),
    ("finding_info.first_seen_time", Field::EpochMillis),
    ("finding_info.last_seen_time", Field::EpochMillis),
    ("finding_info.related_events.uid", Field::Keyword),
    ("finding_info.title", Field::Text),
    ("finding_info.uid", Field::Keyword),
    ("http_request.http_method", Field::Keyword),
    ("http_request.uid", Field::Keyword),
    ("http_request.url.path", Field::Keyword),
    ("http_request.user_agent", Field::Text),
    ("http_response.code", Field::Integer),
    ("is_alert", Field::Boolean),
    ("log_name", Field::Keyword),
    ("log_provider", Field::Keyword),
    ("metadata.correlation_uid", Field::Keyword),
    ("metadata.event_code", Field::Keyword),
    ("metadata.product.name", Field::Keyword),
    ("metadata.product.version", Field::Keyword),
    ("metadata.profiles", Field::Keyword),
    ("metadata.reporter.name", Field::Keyword),
    ("metadata.reporter.uid", Field::Keyword),
    ("metadata.tags.name", Field::Keyword),
    ("metadata.tags.value", Field::Keyword),
    ("metadata.uid", Field::Keyword),
    ("metadata.version", Field::Keyword),
    ("service.name", Field::Keyword),
    ("severity_id", Field::Integer),
    ("src_endpoint.ip", Field::Ip),
    ("src_endpoint.name", Field::Keyword),
    ("src_endpoint.location.city", Field::Keyword),
    ("src_endpoint.location.country", Field::Keyword),
    ("src_endpoint.location.region", Field::Keyword),
    ("src_endpoint.location.lat", Field::Double),
    ("src_endpoint.location.long", Field::Double),
    ("src_endpoint.autonomous_system.number", Field::Long),
    ("src_endpoint.autonomous_system.name", Field::Keyword),
    ("src_endpoint.network_scope_id", Field::Integer),
    ("evidences.src_endpoint.network_scope_id", Field::Integer),
    // An alert's request, which Detection Finding has no `http_request` for.
    ("evidences.http_request.http_method", Field::Keyword),
    ("evidences.http_request.uid", Field::Keyword),
    ("evidences.http_request.url.path", Field::Keyword),
    ("evidences.http_request.user_agent", Field::Text),
    ("evidences.http_response.code", Field::Integer),
    // Coordinates without a named place, which `location` cannot take.
    ("unmapped.source.geo.lat", Field::Double),
    ("unmapped.source.geo.lon", Field::Double),
    ("status_code", Field::Keyword),
    ("status_detail", Field::Text),
    ("status_id", Field::Integer),
    ("time", Field::EpochMillis),
    ("time_dt", Field::Date),
    ("type_uid", Field::Long),
    ("user.name", Field::Keyword),
    ("user.type_id", Field::Integer),
    ("user.uid", Field::Keyword),
    ("web_resources.name", Field::Keyword),
];

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
