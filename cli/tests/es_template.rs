//! `oauth-audit es-template`: the index template of each event format, as JSON an operator
//! can `PUT` to `_index_template/NAME` themselves.

mod support;

use serde_json::Value;
use support::run;

fn mapping<'a>(template: &'a Value, path: &str) -> &'a Value {
    let mut node = &template["template"]["mappings"];
    for segment in path.split('.') {
        node = &node["properties"][segment];
    }
    node
}

fn template(args: &[&str]) -> Value {
    let output = run(&[&["es-template"], args].concat(), &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the template is JSON")
}

#[test]
fn prints_the_template_of_each_format() {
    for (format, ip, id, time) in [
        ("oauth-audit", "source.ip", "request_id", "time"),
        ("ecs", "source.ip", "event.id", "event.start"),
        ("ocsf", "src_endpoint.ip", "metadata.uid", "time_dt"),
    ] {
        let template = template(&["--format", format, "--index", "logs-oauth_audit-*"]);
        assert_eq!(
            template["index_patterns"],
            serde_json::json!(["logs-oauth_audit-*"])
        );
        assert_eq!(template["data_stream"], serde_json::json!({}));
        assert_eq!(template["_meta"]["event_format"], format);
        assert_eq!(mapping(&template, ip)["type"], "ip", "{format}");
        assert_eq!(mapping(&template, id)["type"], "keyword", "{format}");
        assert_eq!(mapping(&template, time)["type"], "date", "{format}");
        assert_eq!(mapping(&template, "@timestamp")["type"], "date", "{format}");
        assert!(template["template"].get("settings").is_none());
    }
    let ocsf = template(&["--format", "ocsf"]);
    assert_eq!(mapping(&ocsf, "time")["format"], "epoch_millis");
    assert_eq!(ocsf["index_patterns"], serde_json::json!(["oauth-audit"]));
}

#[test]
fn takes_several_patterns_a_priority_and_an_ilm_policy() {
    let template = template(&[
        "--index",
        "audit-a",
        "--index",
        "audit-b-*",
        "--priority",
        "350",
        "--ilm-policy",
        "oauth-audit",
    ]);
    assert_eq!(
        template["index_patterns"],
        serde_json::json!(["audit-a", "audit-b-*"])
    );
    assert_eq!(template["priority"], 350);
    assert_eq!(
        template["template"]["settings"]["index.lifecycle.name"],
        "oauth-audit"
    );
    assert_eq!(template["_meta"]["event_format"], "oauth-audit");
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let output = run(&["es-template", "--format", "cef"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("oauth-audit, ecs or ocsf"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn an_empty_index_pattern_is_a_usage_error_wherever_it_stands() {
    for args in [
        &["es-template", "--index", ""][..],
        &["es-template", "--index", "oauth-audit-*", "--index", ""],
    ] {
        let output = run(args, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--index must not be empty"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

/// Elasticsearch reads a template's priority as a `long`: one past `i64::MAX` would be
/// refused only when the template is put.
#[test]
fn a_priority_past_what_elasticsearch_reads_is_a_usage_error() {
    let largest = i64::MAX.to_string();
    assert_eq!(template(&["--priority", &largest])["priority"], i64::MAX);
    let past = (i64::MAX as u64 + 1).to_string();
    let output = run(&["es-template", "--priority", &past], &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--priority"), "{stderr}");
    assert!(stderr.contains(&largest), "{stderr}");
    assert!(output.stdout.is_empty());
}
