//! `[detect]`: detection rules on the live traffic (`docs/detection.md`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::values::{AtLeastOne, HumanDuration};
use super::BuildError;
use crate::detect::{
    default_rules, Detector, Distinct, Field, ImpossibleTravel, IMPOSSIBLE_TRAVEL,
    REFRESH_TOKEN_REUSE, REVOKED_TOKEN_REUSE,
};
use crate::event::Severity;

/// Builds a [`Detector`]: the default rules, some turned off, some changed. The section
/// being present turns detection on.
///
/// ```
/// use oauth_audit::config::DetectConfig;
///
/// let config: DetectConfig = serde_json::from_str(r#"{
///     "disable": ["token_shared"],
///     "rules": {"brute_force": {"count": 20, "timespan": "30m"}}
/// }"#).unwrap();
/// let detector = config.build().unwrap();
/// let brute_force = detector.rules().iter().find(|r| r.id == "brute_force").unwrap();
/// assert_eq!(brute_force.condition.count, 20);
/// assert!(detector.rules().iter().all(|r| r.id != "token_shared"));
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// Groups remembered at most over all rules (default 100,000).
    pub max_keys: Option<AtLeastOne>,
    /// Rule ids to turn off.
    #[serde(default)]
    pub disable: Vec<String>,
    /// How soon after a rotation `refresh_token_reuse` takes a refresh token presented
    /// again from the same address and user agent for the client's own retry (default
    /// `2s`; `0s` alerts on every reuse).
    pub refresh_reuse_grace: Option<HumanDuration>,
    /// Changes to rules, by rule id.
    #[serde(default)]
    pub rules: BTreeMap<String, RuleConfig>,
    /// `impossible_travel`'s thresholds (it needs `[geoip]`, or events that carry
    /// `source.geo`).
    pub impossible_travel: Option<TravelConfig>,
}

/// `[detect.impossible_travel]`: what is not given keeps its default (500 km, 800 km/h, 90
/// minutes: Elastic's rule).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TravelConfig {
    /// Places at least this far apart, in kilometres.
    pub min_distance_km: Option<AtLeastOne>,
    /// At a speed of at least this, in km/h.
    pub min_speed_kmh: Option<AtLeastOne>,
    /// Sign-ins at most this far apart in time.
    pub within: Option<HumanDuration>,
}

/// Changes to one rule; what is not given keeps its default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Fields the events are grouped by, by schema name (`source.ip`, `actor.subject`).
    pub group_by: Option<Vec<String>>,
    /// How far back a group's events count (`15m`).
    pub timespan: Option<HumanDuration>,
    /// At least this many events.
    pub count: Option<AtLeastOne>,
    /// At least this many distinct values (of the rule's distinct field).
    pub distinct: Option<AtLeastOne>,
    /// A value counts as distinct when seen at most this often.
    pub per_value_max: Option<AtLeastOne>,
    /// First and last event at least this far apart.
    pub min_span: Option<HumanDuration>,
    /// Quiet time per key after an alert.
    pub cooldown: Option<HumanDuration>,
    /// `warning` or `critical`.
    pub severity: Option<SeveritySetting>,
}

/// An alert's severity in the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeveritySetting {
    /// `warning`.
    Warning,
    /// `critical`.
    Critical,
}

impl DetectConfig {
    /// The detector, or what is wrong: an unknown rule id or field, a distinct count on a
    /// rule that counts no distinct values.
    pub fn build(&self) -> Result<Detector, BuildError> {
        let mut rules = default_rules();
        let known: Vec<&str> = rules
            .iter()
            .map(|r| r.id)
            .chain([REVOKED_TOKEN_REUSE, REFRESH_TOKEN_REUSE, IMPOSSIBLE_TRAVEL])
            .collect();
        let unknown = |id: &str, what: &str| {
            BuildError::invalid(
                what,
                format!("no rule {id:?}; the rules are {}", known.join(", ")),
            )
        };
        for id in &self.disable {
            if !known.contains(&id.as_str()) {
                return Err(unknown(id, "detect disable"));
            }
        }
        for (id, change) in &self.rules {
            let Some(rule) = rules.iter_mut().find(|r| r.id == id) else {
                return Err(unknown(id, "detect rules"));
            };
            let what = format!("detect rules.{id}");
            if let Some(fields) = &change.group_by {
                if fields.is_empty() {
                    return Err(BuildError::invalid(
                        &what,
                        "group_by needs at least one field",
                    ));
                }
                rule.group_by = fields
                    .iter()
                    .map(|f| f.parse::<Field>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| BuildError::invalid(&what, e))?;
            }
            if let Some(timespan) = change.timespan {
                rule.timespan = timespan.0;
                rule.cooldown = change.cooldown.map_or(timespan.0, |c| c.0);
            } else if let Some(cooldown) = change.cooldown {
                rule.cooldown = cooldown.0;
            }
            if let Some(count) = change.count {
                rule.condition.count = count.0;
            }
            if change.distinct.is_some() || change.per_value_max.is_some() {
                let Some(distinct) = &mut rule.condition.distinct else {
                    return Err(BuildError::invalid(
                        &what,
                        "this rule counts no distinct values: distinct and per_value_max do not apply",
                    ));
                };
                if let Some(at_least) = change.distinct {
                    distinct.at_least = at_least.0;
                }
                if let Some(max) = change.per_value_max {
                    let min = *distinct.per_value.start();
                    if max.0 < min {
                        return Err(BuildError::invalid(
                            &what,
                            format!("per_value_max must be at least {min}"),
                        ));
                    }
                    *distinct = Distinct {
                        per_value: min..=max.0,
                        ..distinct.clone()
                    };
                }
            }
            if let Some(span) = change.min_span {
                rule.condition.min_span = span.0;
            }
            if let Some(severity) = change.severity {
                rule.severity = match severity {
                    SeveritySetting::Warning => Severity::Warning,
                    SeveritySetting::Critical => Severity::Critical,
                };
            }
        }
        rules.retain(|r| !self.disable.iter().any(|id| id == r.id));
        let mut detector = Detector::new(rules);
        if self.disable.iter().any(|id| id == REVOKED_TOKEN_REUSE) {
            detector = detector.without_revocation_rule();
        }
        if self.disable.iter().any(|id| id == REFRESH_TOKEN_REUSE) {
            detector = detector.without_refresh_reuse_rule();
        }
        if self.disable.iter().any(|id| id == IMPOSSIBLE_TRAVEL) {
            if self.impossible_travel.is_some() {
                return Err(BuildError::invalid(
                    "detect impossible_travel",
                    "the rule is disabled: drop it from `disable` or drop its thresholds",
                ));
            }
            detector = detector.without_impossible_travel();
        } else if let Some(travel) = self.impossible_travel {
            let mut thresholds = ImpossibleTravel::default();
            if let Some(km) = travel.min_distance_km {
                thresholds.min_distance_km = km.0 as f64;
            }
            if let Some(kmh) = travel.min_speed_kmh {
                thresholds.min_speed_kmh = kmh.0 as f64;
            }
            if let Some(within) = travel.within {
                thresholds.within = within.0;
            }
            detector = detector.impossible_travel(thresholds);
        }
        if let Some(grace) = self.refresh_reuse_grace {
            detector = detector.refresh_reuse_grace(grace.0);
        }
        if let Some(keys) = self.max_keys {
            detector = detector.max_keys(usize::try_from(keys.0).unwrap_or(usize::MAX));
        }
        Ok(detector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(json: serde_json::Value) -> Result<Detector, String> {
        let config: DetectConfig = serde_json::from_value(json).map_err(|e| e.to_string())?;
        config.build().map_err(|e| e.to_string())
    }

    #[test]
    fn rules_are_changed_turned_off_or_refused_by_name() {
        let detector = build(serde_json::json!({
            "rules": {"credential_stuffing": {
                "group_by": ["source.ip", "actor.client_id"],
                "distinct": 30, "per_value_max": 3, "timespan": "1h", "severity": "warning"
            }}
        }))
        .unwrap();
        let rule = detector
            .rules()
            .iter()
            .find(|r| r.id == "credential_stuffing")
            .unwrap();
        assert_eq!(rule.group_by, [Field::SourceIp, Field::ClientId]);
        let distinct = rule.condition.distinct.as_ref().unwrap();
        assert_eq!((distinct.at_least, distinct.per_value.clone()), (30, 1..=3));
        assert_eq!(rule.timespan.as_secs(), 3600);
        assert_eq!(rule.cooldown.as_secs(), 3600, "follows the timespan");
        assert_eq!(rule.severity, Severity::Warning);

        let detector =
            build(serde_json::json!({"disable": ["brute_force", "revoked_token_reuse"]})).unwrap();
        assert!(detector.rules().iter().all(|r| r.id != "brute_force"));
        assert!(!detector.revocation_rule());
        assert!(detector.refresh_reuse_rule(), "on by default");
        let detector = build(serde_json::json!({"disable": ["refresh_token_reuse"]})).unwrap();
        assert!(!detector.refresh_reuse_rule());
        assert!(detector.revocation_rule());
        build(serde_json::json!({"refresh_reuse_grace": "0s"})).unwrap();
        let detector = build(serde_json::json!({"disable": ["impossible_travel"]})).unwrap();
        assert_eq!(detector.impossible_travel_rule(), None);
        let detector = build(serde_json::json!({
            "impossible_travel": {"min_distance_km": 1000, "within": "2h"}
        }))
        .unwrap();
        assert_eq!(
            detector.impossible_travel_rule(),
            Some(&ImpossibleTravel {
                min_distance_km: 1000.0,
                min_speed_kmh: 800.0,
                within: std::time::Duration::from_secs(7200),
            })
        );
        assert!(build(serde_json::json!({
            "disable": ["impossible_travel"], "impossible_travel": {"within": "1h"}
        }))
        .unwrap_err()
        .contains("disabled"));

        for (json, message) in [
            (
                serde_json::json!({"disable": ["brute-force"]}),
                "no rule \"brute-force\"",
            ),
            (
                serde_json::json!({"rules": {"nope": {}}}),
                "the rules are brute_force",
            ),
            (
                serde_json::json!({"rules": {"brute_force": {"group_by": ["source.address"]}}}),
                "unknown field \"source.address\"",
            ),
            (
                serde_json::json!({"rules": {"brute_force": {"distinct": 3}}}),
                "counts no distinct values",
            ),
            (
                serde_json::json!({"rules": {"brute_force": {"group_by": []}}}),
                "at least one field",
            ),
            (
                serde_json::json!({"rules": {"brute_force": {"count": 0}}}),
                "at least 1",
            ),
            (
                serde_json::json!({"rules": {"brute_force": {"threshold": 3}}}),
                "unknown field",
            ),
        ] {
            let error = build(json.clone()).err().unwrap_or_default();
            assert!(error.contains(message), "{json}: {error}");
        }
    }
}
