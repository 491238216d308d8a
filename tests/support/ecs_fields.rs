//! The ECS field definitions pinned in `tests/data/ecs/` and a check of ECS documents against
//! them: used by `src/format/tests.rs` (through `#[path]`) and `tests/formats.rs`.

use std::collections::BTreeMap;

use serde_json::Value;

/// Whether `text` is an RFC 3339 date, as ECS `date` fields take it.
fn rfc3339(text: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text).ok()
}

/// Every leaf value of `value` (strings, numbers, booleans), with its path.
pub fn leaves(value: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                leaves(value, &path, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                leaves(item, path, out);
            }
        }
        other => out.push((path.to_owned(), other.clone())),
    }
}

/// The ECS field definitions pinned in `tests/data/ecs/` (see its README).
pub struct EcsFields {
    pub version: String,
    field_sets: Vec<String>,
    types: BTreeMap<String, String>,
    allowed: BTreeMap<String, Vec<String>>,
    expected_types: BTreeMap<String, Vec<String>>,
}

impl EcsFields {
    pub fn pinned() -> Self {
        let json: Value =
            serde_json::from_str(include_str!("../data/ecs/ecs-9.4.0-fields.json")).unwrap();
        let strings = |value: &Value| -> Vec<String> {
            value
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect()
        };
        let map = |value: &Value| -> BTreeMap<String, Vec<String>> {
            value
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), strings(v)))
                .collect()
        };
        EcsFields {
            version: json["ecs_version"].as_str().unwrap().to_owned(),
            field_sets: strings(&json["field_sets"]),
            types: json["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
            allowed: map(&json["allowed_values"]),
            expected_types: map(&json["expected_event_types"]),
        }
    }

    /// What is wrong with an ECS document, by these definitions: fields ECS does not
    /// define (outside the `oauth` namespace), values of the wrong type, categorisation
    /// values ECS does not allow.
    pub fn problems(&self, document: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        if document["ecs"]["version"] != self.version.as_str() {
            problems.push(format!("ecs.version is not {}", self.version));
        }
        let mut fields = Vec::new();
        leaves(document, "", &mut fields);
        for (name, value) in &fields {
            if name.starts_with("oauth.") {
                continue;
            }
            let field = if name.starts_with("labels.") {
                "labels"
            } else {
                name.as_str()
            };
            // A `geo_point` written as an object: its `lat` and `lon`, in range.
            if let Some((point, axis)) = field.rsplit_once('.') {
                if self.types.get(point).is_some_and(|t| t == "geo_point") {
                    let limit = match axis {
                        "lat" => 90.0,
                        "lon" => 180.0,
                        _ => {
                            problems.push(format!("{name} is not part of a geo_point"));
                            continue;
                        }
                    };
                    if !value.as_f64().is_some_and(|v| v.abs() <= limit) {
                        problems.push(format!("{name} = {value} is not a {axis} in degrees"));
                    }
                    continue;
                }
            }
            let Some(kind) = self.types.get(field) else {
                let set = name.split('.').next().unwrap_or_default();
                problems.push(if self.field_sets.iter().any(|s| s == set) {
                    format!("{name} is not an ECS {} field", self.version)
                } else {
                    format!("{name}: field set {set} is not pinned in tests/data/ecs")
                });
                continue;
            };
            let fits = match kind.as_str() {
                "keyword" | "wildcard" | "match_only_text" | "constant_keyword" | "text" => {
                    value.is_string()
                }
                // labels: keyword values.
                "object" => value.is_string(),
                "long" | "integer" => value.is_i64() || value.is_u64(),
                "float" | "double" | "scaled_float" => value.is_number(),
                "boolean" => value.is_boolean(),
                "date" => value.as_str().and_then(rfc3339).is_some(),
                "ip" => value
                    .as_str()
                    .is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
                other => {
                    problems.push(format!("{name}: type {other} is not checked here"));
                    true
                }
            };
            if !fits {
                problems.push(format!("{name} = {value} is not of ECS type {kind}"));
            }
            if let Some(allowed) = self.allowed.get(name) {
                if !allowed.iter().any(|a| value == a.as_str()) {
                    problems.push(format!("{name} = {value} is not an allowed value"));
                }
            }
        }
        if document["event"]["kind"] == "signal" {
            problems.push("event.kind signal is Kibana's own".into());
        }
        let types = document["event"]["type"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for category in document["event"]["category"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let expected = category
                .as_str()
                .and_then(|c| self.expected_types.get(c))
                .cloned()
                .unwrap_or_default();
            for kind in &types {
                if !expected.iter().any(|e| kind == e.as_str()) {
                    problems.push(format!(
                        "event.type {kind} is not one ECS expects for category {category}"
                    ));
                }
            }
        }
        problems
    }
}
