//! The templates against the formats: the pinned ECS types, the types the issue asks of
//! every format, and every value of the sample events of every kind read through the
//! mappings as Elasticsearch would read it.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{fields, index_template, TemplateOptions};
use crate::format::tests::ecs_fields::leaves as document_leaves;
use crate::format::tests::{formatted, samples};
use crate::format::EventFormat;

const FORMATS: [EventFormat; 3] = [EventFormat::OAuthAudit, EventFormat::Ecs, EventFormat::Ocsf];

/// The mapping at a dotted path of a template, if it maps one.
fn mapping_at<'a>(template: &'a Value, path: &str) -> Option<&'a Value> {
    let mut node = &template["template"]["mappings"];
    for segment in path.split('.') {
        node = node.get("properties")?.get(segment)?;
    }
    Some(node)
}

/// Every mapped leaf of a template (a mapping with a `type`), by dotted path.
fn mapped_leaves(properties: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    for (name, mapping) in properties.as_object().unwrap() {
        let path = format!("{prefix}{name}");
        if let Some(children) = mapping.get("properties") {
            mapped_leaves(children, &format!("{path}."), out);
        } else {
            out.insert(path, mapping.clone());
        }
    }
}

fn leaves_of(template: &Value) -> BTreeMap<String, Value> {
    let mut leaves = BTreeMap::new();
    mapped_leaves(
        &template["template"]["mappings"]["properties"],
        "",
        &mut leaves,
    );
    leaves
}

#[test]
fn every_listed_field_is_in_its_template() {
    for format in FORMATS {
        let template = index_template(format, &TemplateOptions::default());
        for (path, field) in fields(format) {
            assert_eq!(
                mapping_at(&template, &path),
                Some(&field.mapping()),
                "{format}: {path}"
            );
        }
    }
}

#[test]
fn ecs_template_types_are_the_pinned_ecs_types() {
    let pinned: Value =
        serde_json::from_str(include_str!("../../tests/data/ecs/ecs-9.4.0-fields.json")).unwrap();
    let template = index_template(EventFormat::Ecs, &TemplateOptions::default());
    let mut checked = 0;
    for (path, mapping) in leaves_of(&template) {
        if path.starts_with("oauth.") {
            // The vendor namespace: ECS defines nothing there.
            continue;
        }
        let ecs_type = pinned["fields"][&path]
            .as_str()
            .unwrap_or_else(|| panic!("{path} is not an ECS {} field", pinned["ecs_version"]));
        assert_eq!(mapping["type"], ecs_type, "{path}");
        checked += 1;
    }
    assert!(checked > 30, "only {checked} ECS fields mapped");
}

#[test]
fn each_format_maps_addresses_ids_times_numbers_and_text() {
    let expect: &[(EventFormat, &[(&str, &str)])] = &[
        (
            EventFormat::OAuthAudit,
            &[
                ("@timestamp", "date"),
                ("time", "date"),
                ("source.ip", "ip"),
                ("id", "keyword"),
                ("request_id", "keyword"),
                ("trace_id", "keyword"),
                ("span_id", "keyword"),
                ("actor.client_id", "keyword"),
                ("actor.subject", "keyword"),
                ("token.fingerprint", "keyword"),
                ("refresh_token.fingerprint", "keyword"),
                ("chain.stream", "keyword"),
                ("chain.seq", "long"),
                ("alert.first_seen", "date"),
                ("alert.last_seen", "date"),
                ("alert.count", "long"),
                ("http.status", "long"),
                ("http.duration_ms", "double"),
                ("source.user_agent", "text"),
                ("error.description", "text"),
                ("alert.title", "text"),
                ("source.geo.lat", "double"),
                ("source.geo.lon", "double"),
                ("source.geo.country", "keyword"),
                ("source.as.number", "long"),
                ("source.as.org", "keyword"),
            ],
        ),
        (
            EventFormat::Ecs,
            &[
                ("@timestamp", "date"),
                ("source.ip", "ip"),
                ("event.id", "keyword"),
                ("http.request.id", "keyword"),
                ("trace.id", "keyword"),
                ("span.id", "keyword"),
                ("user.name", "keyword"),
                ("oauth.actor.client_id", "keyword"),
                ("oauth.token.fingerprint", "keyword"),
                ("oauth.chain.stream", "keyword"),
                ("event.start", "date"),
                ("event.end", "date"),
                ("oauth.alert.first_seen", "date"),
                ("oauth.alert.count", "long"),
                ("event.duration", "long"),
                ("http.response.status_code", "long"),
                ("user_agent.original", "keyword"),
                ("error.message", "match_only_text"),
                ("oauth.alert.title", "text"),
                ("source.geo.location", "geo_point"),
                ("source.geo.country_iso_code", "keyword"),
                ("source.as.number", "long"),
                ("source.as.organization.name", "keyword"),
            ],
        ),
        (
            EventFormat::Ocsf,
            &[
                ("@timestamp", "date"),
                ("time", "date"),
                ("time_dt", "date"),
                ("src_endpoint.ip", "ip"),
                ("evidences.src_endpoint.ip", "ip"),
                ("metadata.uid", "keyword"),
                ("http_request.uid", "keyword"),
                ("metadata.correlation_uid", "keyword"),
                ("unmapped.span_id", "keyword"),
                ("actor.app_uid", "keyword"),
                ("user.name", "keyword"),
                ("unmapped.token.fingerprint", "keyword"),
                ("unmapped.chain.stream", "keyword"),
                ("finding_info.first_seen_time", "date"),
                ("finding_info.last_seen_time", "date"),
                ("class_uid", "integer"),
                ("count", "long"),
                ("http_request.user_agent", "text"),
                ("status_detail", "text"),
                ("finding_info.title", "text"),
                ("src_endpoint.location.lat", "double"),
                ("src_endpoint.location.long", "double"),
                ("src_endpoint.location.country", "keyword"),
                ("src_endpoint.autonomous_system.number", "long"),
                ("src_endpoint.autonomous_system.name", "keyword"),
            ],
        ),
    ];
    for (format, fields) in expect {
        let template = index_template(*format, &TemplateOptions::default());
        for (path, kind) in *fields {
            let mapping = mapping_at(&template, path)
                .unwrap_or_else(|| panic!("{format}: {path} is not mapped"));
            assert_eq!(mapping["type"], *kind, "{format}: {path}");
        }
        let properties = &template["template"]["mappings"]["properties"];
        let text = |path: &str| mapping_at(&template, path).cloned();
        if *format == EventFormat::Ecs {
            assert_eq!(
                text("user_agent.original").unwrap()["fields"]["text"]["type"],
                "match_only_text"
            );
        } else {
            let agent = if *format == EventFormat::Ocsf {
                "http_request.user_agent"
            } else {
                "source.user_agent"
            };
            assert_eq!(
                text(agent).unwrap()["fields"]["keyword"]["type"],
                "keyword",
                "{format}: free text keeps an exact keyword"
            );
        }
        if *format == EventFormat::Ocsf {
            for millis in [
                "time",
                "finding_info.first_seen_time",
                "finding_info.last_seen_time",
            ] {
                assert_eq!(text(millis).unwrap()["format"], "epoch_millis", "{millis}");
            }
            assert!(text("time_dt").unwrap().get("format").is_none());
        }
        assert!(properties.get("@timestamp").is_some());
        assert_eq!(
            template["template"]["mappings"]["dynamic_templates"][0]["strings_as_keyword"],
            json!({"match_mapping_type": "string",
                   "mapping": {"type": "keyword", "ignore_above": 1024}}),
        );
    }
}

#[test]
fn options_set_patterns_priority_and_ilm_policy() {
    let plain = index_template(EventFormat::OAuthAudit, &TemplateOptions::default());
    assert_eq!(plain["index_patterns"], json!(["oauth-audit"]));
    assert_eq!(plain["priority"], super::DEFAULT_TEMPLATE_PRIORITY);
    assert_eq!(plain["data_stream"], json!({}));
    assert!(plain["template"].get("settings").is_none());
    assert_eq!(plain["_meta"]["event_format"], "oauth-audit");

    let options = TemplateOptions::new("logs-oauth_audit-*")
        .index_pattern("audit-*")
        .priority(300)
        .ilm_policy("audit-400d");
    let template = index_template(EventFormat::Ocsf, &options);
    assert_eq!(
        template["index_patterns"],
        json!(["logs-oauth_audit-*", "audit-*"])
    );
    assert_eq!(template["priority"], 300);
    assert_eq!(
        template["template"]["settings"],
        json!({"index.lifecycle.name": "audit-400d"})
    );
    assert_eq!(template["_meta"]["event_format"], "ocsf");
}

/// Whether Elasticsearch would index `value` under `mapping` (what it would refuse, or
/// read as something else, is a problem).
fn fits(mapping: &Value, value: &Value) -> bool {
    if mapping["ignore_malformed"] == true {
        // Indexed without the field, which stays in `_source`.
        return true;
    }
    match mapping["type"].as_str().unwrap() {
        "keyword" | "text" | "match_only_text" | "wildcard" => value.is_string(),
        "ip" => value
            .as_str()
            .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
        "date" if mapping["format"] == "epoch_millis" => value.is_i64() || value.is_u64(),
        "date" => value
            .as_str()
            .is_some_and(|time| chrono::DateTime::parse_from_rfc3339(time).is_ok()),
        // Elasticsearch's `long` is signed: a `u64` past `i64::MAX` is refused.
        "long" => value.is_i64(),
        "integer" => value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "double" => value.is_number(),
        "boolean" => value.is_boolean(),
        // `"lat,lon"`, or `[lon, lat]` (whose numbers come here one by one).
        "geo_point" => value.is_string() || value.is_number(),
        other => panic!("type {other} is not checked here"),
    }
}

/// What is wrong with a document under a template: a value its mapping would refuse, a
/// number or boolean left to dynamic mapping's guess, a value where the mapping has an
/// object or the other way round.
fn problems(template: &Value, document: &Value) -> Vec<String> {
    let mut leaves = Vec::new();
    document_leaves(document, "", &mut leaves);
    let mut problems = Vec::new();
    'leaf: for (path, value) in leaves {
        let mut node = &template["template"]["mappings"];
        for (depth, segment) in path.split('.').enumerate() {
            let Some(properties) = node.get("properties") else {
                let rest: Vec<&str> = path.split('.').skip(depth).collect();
                if node["type"] == "geo_point" {
                    // `{"lat": .., "lon": ..}`, the object form of a geo point.
                    if !(matches!(rest[..], ["lat"] | ["lon"]) && value.is_number()) {
                        problems.push(format!("{path} = {value} is not part of a geo point"));
                    }
                } else if node["type"] == "object" {
                    // User-chosen keys (labels, forwarded headers): strings, dynamic.
                    if !value.is_string() {
                        problems.push(format!("{path} = {value} under an object of strings"));
                    }
                } else {
                    problems.push(format!(
                        "{path}: {} is mapped as {}, not an object",
                        path.split('.').take(depth).collect::<Vec<_>>().join("."),
                        node["type"]
                    ));
                }
                continue 'leaf;
            };
            match properties.get(segment) {
                Some(child) => node = child,
                None => {
                    if !value.is_string() {
                        problems.push(format!("{path} = {value} is not mapped"));
                    }
                    continue 'leaf;
                }
            }
        }
        if node.get("properties").is_some() {
            problems.push(format!("{path} = {value} where the mapping has an object"));
        } else if !fits(node, &value) {
            problems.push(format!("{path} = {value} does not fit {node}"));
        }
    }
    problems
}

#[test]
fn every_sample_event_fits_its_template_in_every_format() {
    for format in FORMATS {
        let template = index_template(format, &TemplateOptions::default());
        for event in samples() {
            let mut document = formatted(format, &event);
            if format != EventFormat::Ecs {
                // As the `_bulk` sink sends it.
                document["@timestamp"] = json!(event.time.to_string());
            }
            let problems = problems(&template, &document);
            assert!(
                problems.is_empty(),
                "{format} {}: {problems:#?}",
                event.kind.as_str()
            );
        }
    }
}

#[test]
fn the_fit_check_catches_what_would_be_mis_mapped() {
    let template = index_template(EventFormat::OAuthAudit, &TemplateOptions::default());
    let bad = json!({
        "time": "yesterday",
        "alert": {"count": "many"},
        "http": {"status": 200, "extra_number": 3},
        "id": {"nested": "x"},
        "labels": {"tenant": 7},
        "source": {"ip": "not an address", "geo": {"lat": "north"}},
    });
    let found = problems(&template, &bad);
    for expected in [
        "source.ip",
        "time",
        "alert.count",
        "http.extra_number",
        "id.nested",
        "labels.tenant",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected} not caught: {found:#?}"
        );
    }
    assert!(
        found.iter().any(|p| p.starts_with("source.geo.lat")),
        "{found:#?}"
    );
    assert_eq!(found.len(), 7, "{found:#?}");

    let ecs = index_template(EventFormat::Ecs, &TemplateOptions::default());
    let located = json!({"source": {"geo": {"location": {"lat": 48.1, "lon": 11.6}}}});
    assert_eq!(problems(&ecs, &located), Vec::<String>::new());
    let pair = json!({"source": {"geo": {"location": [11.6, 48.1]}}});
    assert_eq!(problems(&ecs, &pair), Vec::<String>::new());
    let odd = json!({"source": {"geo": {"location": {"lat": 48.1, "alt": 520}}}});
    let found = problems(&ecs, &odd);
    assert!(
        found.len() == 1 && found[0].starts_with("source.geo.location.alt"),
        "{found:#?}"
    );
}

#[test]
fn geo_enrichment_fields_fit_their_mappings() {
    // The fields the geo enrichment writes, in each format's names (EVENT-SCHEMA's
    // `source.geo`, `source.as`; ECS's `source.geo.*`, `source.as.*`; OCSF's `location` and
    // `autonomous_system`), with values of the shapes they have.
    let documents = [
        (
            EventFormat::OAuthAudit,
            json!({"source": {"ip": "203.0.113.7",
                "geo": {"city": "Munich", "country": "DE", "lat": 48.1371, "lon": 11.5754,
                        "name": "edge-1", "region": "Bavaria", "region_code": "BY"},
                "as": {"number": 3320, "org": "Deutsche Telekom AG"}}}),
        ),
        (
            EventFormat::Ecs,
            json!({"source": {"ip": "203.0.113.7",
                "geo": {"city_name": "Munich", "country_iso_code": "DE",
                        "location": {"lat": 48.1371, "lon": 11.5754}, "name": "edge-1",
                        "region_iso_code": "DE-BY", "region_name": "Bavaria"},
                "as": {"number": 3320, "organization": {"name": "Deutsche Telekom AG"}}}}),
        ),
        (
            EventFormat::Ocsf,
            json!({"src_endpoint": {"ip": "203.0.113.7",
                "location": {"city": "Munich", "country": "DE", "region": "BY",
                             "lat": 48.1371, "long": 11.5754},
                "autonomous_system": {"number": 3320, "name": "Deutsche Telekom AG"},
                "network_scope_id": 1},
                "evidences": [{"src_endpoint": {"ip": "203.0.113.7",
                    "location": {"lat": 48.1371, "long": 11.5754},
                    "autonomous_system": {"number": 3320}}}]}),
        ),
    ];
    for (format, document) in documents {
        let template = index_template(format, &TemplateOptions::default());
        assert_eq!(
            problems(&template, &document),
            Vec::<String>::new(),
            "{format}"
        );
        // And every one of them is mapped by name, none left to the dynamic template.
        let mut leaves = Vec::new();
        document_leaves(&document, "", &mut leaves);
        for (path, _) in leaves {
            let mapped = mapping_at(&template, &path).is_some()
                || path
                    .strip_suffix(".lat")
                    .or_else(|| path.strip_suffix(".lon"))
                    .is_some_and(|point| {
                        mapping_at(&template, point).is_some_and(|m| m["type"] == "geo_point")
                    });
            assert!(mapped, "{format}: {path} is not mapped");
        }
    }
}

/// A token's `iat` and `exp` are the token's own word (a bearer token presented to a
/// protected route is read before, and whether or not, it verifies): a year past 9999 or
/// before 0 is written with more or fewer digits than the four of Elasticsearch's
/// `strict_date_optional_time`, which would refuse the whole document, and the denial with
/// it.
#[test]
fn a_token_time_outside_four_digit_years_does_not_refuse_the_document() {
    let mut event = crate::format::tests::sample(crate::event::EventKind::AccessDenied);
    let mut token = crate::event::TokenDetails::from_fingerprint(
        crate::token::TokenFingerprint::of("forged-token"),
    );
    token.issued_at = crate::event::Timestamp::from_unix(-70_000_000_000);
    token.expires_at = crate::event::Timestamp::from_unix(300_000_000_000);
    event.token = Some(token.into());
    for format in FORMATS {
        let template = index_template(format, &TemplateOptions::default());
        let mut document = formatted(format, &event);
        if format != EventFormat::Ecs {
            document["@timestamp"] = json!(event.time.to_string());
        }
        let problems = problems(&template, &document);
        assert!(problems.is_empty(), "{format}: {problems:#?}");
    }
}

/// Two sign-ins at the same instant from places far apart make a trip at the greatest
/// 64-bit speed (`docs/events.md`), past the signed range of Elasticsearch's `long`: the
/// `impossible_travel` alert must still be indexed.
#[test]
fn an_instant_trip_fits_its_template_in_every_format() {
    let mut event = crate::format::tests::sample(crate::event::EventKind::SecurityAlert);
    if let Some(alert) = &mut event.alert {
        alert.rule = "impossible_travel".into();
        alert.travel = Some(crate::event::Travel {
            distance_km: 16_990,
            from: crate::event::Place::new(None, Some("GB".into()), Some("198.51.100.7".into())),
            seconds: 0,
            speed_kmh: u64::MAX,
            to: crate::event::Place::new(None, Some("AU".into()), Some("203.0.113.80".into())),
        });
    }
    for format in FORMATS {
        let template = index_template(format, &TemplateOptions::default());
        let mut document = formatted(format, &event);
        if format != EventFormat::Ecs {
            document["@timestamp"] = json!(event.time.to_string());
        }
        let problems = problems(&template, &document);
        assert!(problems.is_empty(), "{format}: {problems:#?}");
    }
}
