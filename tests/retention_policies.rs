//! The example lifecycle policies for Elasticsearch (ILM) and OpenSearch (ISM) in
//! `docs/elasticsearch/` keep events as long as the README's retention examples do: the
//! figure is read from README.md, so the three cannot drift apart.

use serde_json::Value;

/// Days in `Duration::from_secs(N * 24 * 3600)` on the README line holding `call`.
fn readme_days(readme: &str, call: &str) -> u64 {
    let line = readme
        .lines()
        .find(|line| line.contains(call) && line.contains("* 24 * 3600"))
        .unwrap_or_else(|| panic!("README.md has no {call}(Duration::from_secs(N * 24 * 3600))"));
    let start = line.find("from_secs(").unwrap() + "from_secs(".len();
    let days = line[start..].split('*').next().unwrap().trim();
    days.parse()
        .unwrap_or_else(|_| panic!("not a number of days in: {line}"))
}

/// The README's retention of the audit trail on a server: PostgreSQL's `retention` and
/// NATS's `max_age`, which must agree.
fn readme_retention_days() -> u64 {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let postgres = readme_days(&readme, ".retention(");
    let nats = readme_days(&readme, ".max_age(");
    assert_eq!(
        postgres, nats,
        "README.md's PostgreSQL and NATS retentions differ"
    );
    // The paragraph on Elasticsearch says the same figure in words.
    assert!(
        readme.contains(&format!("{postgres} days after rollover")),
        "README.md's HTTP collectors section does not say \"{postgres} days after rollover\""
    );
    postgres
}

fn policy(name: &str) -> Value {
    let path = format!("{}/docs/elasticsearch/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|err| panic!("{path} is not JSON: {err}"))
}

/// `"400d"` as 400.
fn days(age: &Value) -> u64 {
    let age = age
        .as_str()
        .unwrap_or_else(|| panic!("age {age} is not a string"));
    age.strip_suffix('d')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("age {age} is not in days"))
}

#[test]
fn the_ilm_policy_deletes_at_the_readmes_retention() {
    let retention = readme_retention_days();
    let ilm = policy("ilm-policy.json");
    let phases = ilm["policy"]["phases"].as_object().unwrap();
    // ILM's ages count from rollover: an index is deleted that long after its last event.
    assert!(phases["hot"]["actions"]["rollover"].is_object());
    let delete = &phases["delete"];
    assert_eq!(delete["actions"], serde_json::json!({"delete": {}}));
    assert_eq!(days(&delete["min_age"]), retention);
    // No other phase deletes.
    for (name, phase) in phases {
        if name != "delete" {
            assert!(phase["actions"].get("delete").is_none(), "{name}");
        }
    }
}

#[test]
fn the_ism_policy_deletes_at_the_readmes_retention() {
    let retention = readme_retention_days();
    let ism = policy("ism-policy.json");
    let states = ism["policy"]["states"].as_array().unwrap();
    let state = |name: &str| {
        states
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no state {name}"))
    };
    let deleting: Vec<&str> = states
        .iter()
        .filter(|s| {
            s["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a.get("delete").is_some())
        })
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(deleting, ["delete"]);
    // Every transition into the delete state waits for the retention, counted from rollover
    // as ILM counts it (min_index_age would count from creation, a month too early for the
    // last events of a monthly index).
    let mut into_delete = 0;
    for state in states {
        for transition in state["transitions"].as_array().unwrap() {
            if transition["state_name"] == "delete" {
                into_delete += 1;
                assert_eq!(
                    days(&transition["conditions"]["min_rollover_age"]),
                    retention
                );
            }
        }
    }
    assert_eq!(into_delete, 1);
    assert!(state("hot")["actions"][0]["rollover"].is_object());
    assert_eq!(ism["policy"]["default_state"], "hot");
    // It attaches itself to the data stream the template makes by default.
    let patterns = &ism["policy"]["ism_template"][0]["index_patterns"];
    let template = oauth_audit::format::index_template(
        oauth_audit::format::EventFormat::OAuthAudit,
        &oauth_audit::format::TemplateOptions::default(),
    );
    assert_eq!(patterns, &template["index_patterns"]);
}
