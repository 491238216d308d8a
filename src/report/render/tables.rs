//! The report as sections of tables: what the Markdown, CSV and HTML outputs are made of,
//! so that each shows the same numbers under the same names.

use super::super::aggregate::ScopeRow;
use super::super::model::Report;

/// One section of the report.
pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    /// What the section's numbers mean, in a sentence or two.
    pub intro: String,
    pub tables: Vec<Table>,
}

/// One table: a title, its columns, and its rows as text.
pub struct Table {
    /// Also the CSV file's name.
    pub id: &'static str,
    pub title: &'static str,
    pub columns: Vec<&'static str>,
    /// Which columns hold numbers (right-aligned, sorted as numbers).
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<String>>,
    /// Said when the table is empty.
    pub empty: &'static str,
}

fn table(
    id: &'static str,
    title: &'static str,
    columns: &[&'static str],
    rows: Vec<Vec<String>>,
    empty: &'static str,
) -> Table {
    let numeric = columns
        .iter()
        .enumerate()
        .map(|(index, _)| {
            !rows.is_empty()
                && rows.iter().all(|row| {
                    row.get(index)
                        .is_some_and(|cell| !cell.is_empty() && cell.parse::<f64>().is_ok())
                })
        })
        .collect();
    Table {
        id,
        title,
        columns: columns.to_vec(),
        numeric,
        rows,
        empty,
    }
}

fn n(value: u64) -> String {
    value.to_string()
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

fn scopes(rows: &[ScopeRow]) -> String {
    rows.iter()
        .map(|r| r.scope.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tables that only some reports have: every event of one subject (`--subject`) and the
/// chain's integrity (chained events).
pub const SOMETIMES: [&str; 2] = ["subject_events", "integrity"];

/// Every section, in reading order.
pub fn sections(report: &Report) -> Vec<Section> {
    let s = &report.sections;
    let o = &s.overview;
    let mut out = Vec::new();

    let mut summary = vec![
        vec!["events in the report".to_owned(), n(report.input.matched)],
        vec!["events read".to_owned(), n(report.input.events)],
        vec!["lines skipped".to_owned(), n(report.input.skipped)],
        vec![
            "first event".to_owned(),
            or_dash(o.first_event.as_deref().unwrap_or("")),
        ],
        vec![
            "last event".to_owned(),
            or_dash(o.last_event.as_deref().unwrap_or("")),
        ],
        vec!["files".to_owned(), n(report.input.files.len() as u64)],
    ];
    let f = &report.filters;
    for (name, value) in [
        ("since", &f.since),
        ("until", &f.until),
        ("service", &f.service),
        ("client", &f.client),
        ("subject", &f.subject),
    ] {
        if let Some(value) = value {
            summary.push(vec![format!("filter: {name}"), value.clone()]);
        }
    }
    out.push(Section {
        id: "overview",
        title: "Overview",
        intro: "Events by kind and outcome, by day, the busiest clients and routes, and the \
                error codes answered."
            .into(),
        tables: vec![
            table("summary", "Summary", &["item", "value"], summary, ""),
            table(
                "events_by_kind",
                "Events by kind",
                &["kind", "success", "failure", "unknown", "total"],
                o.by_kind
                    .iter()
                    .map(|r| {
                        vec![
                            r.kind.clone(),
                            n(r.outcomes.success),
                            n(r.outcomes.failure),
                            n(r.outcomes.unknown),
                            n(r.outcomes.total()),
                        ]
                    })
                    .collect(),
                "No events.",
            ),
            table(
                "events_by_day",
                "Events by day (UTC)",
                &["day", "success", "failure", "unknown"],
                o.per_day
                    .iter()
                    .map(|r| {
                        vec![
                            r.day.clone(),
                            n(r.outcomes.success),
                            n(r.outcomes.failure),
                            n(r.outcomes.unknown),
                        ]
                    })
                    .collect(),
                "No events.",
            ),
            table(
                "busiest_clients",
                "Busiest clients",
                &["client", "events"],
                o.clients
                    .iter()
                    .map(|r| vec![r.client.clone(), n(r.events)])
                    .collect(),
                "No event names a client.",
            ),
            table(
                "busiest_routes",
                "Busiest protected routes",
                &["method", "route", "calls", "denied"],
                o.routes
                    .iter()
                    .map(|r| vec![r.method.clone(), r.route.clone(), n(r.events), n(r.denied)])
                    .collect(),
                "No protected-route calls.",
            ),
            table(
                "error_codes",
                "Error codes",
                &["error code", "events"],
                o.error_codes
                    .iter()
                    .map(|r| vec![r.code.clone(), n(r.count)])
                    .collect(),
                "No errors.",
            ),
        ],
    });

    let mut access_tables = vec![table(
        "access_review",
        "Who reached what",
        &[
            "subject",
            "client",
            "method",
            "route",
            "calls",
            "first seen",
            "last seen",
            "addresses",
        ],
        s.access
            .iter()
            .map(|r| {
                vec![
                    or_dash(&r.subject),
                    or_dash(&r.client),
                    r.method.clone(),
                    r.route.clone(),
                    n(r.count),
                    r.first_seen.clone(),
                    r.last_seen.clone(),
                    if r.addresses_at_least {
                        format!("{}+", r.addresses)
                    } else {
                        n(r.addresses)
                    },
                ]
            })
            .collect(),
        "No protected-route calls.",
    )];
    if let Some(events) = &s.subject_events {
        access_tables.push(table(
            "subject_events",
            "Every event of the subject",
            &[
                "time", "kind", "outcome", "client", "method", "route", "address",
            ],
            events
                .listed
                .iter()
                .map(|e| {
                    vec![
                        e.time.clone(),
                        e.kind.clone(),
                        e.outcome.clone(),
                        or_dash(e.client.as_deref().unwrap_or("")),
                        or_dash(e.method.as_deref().unwrap_or("")),
                        or_dash(e.route.as_deref().unwrap_or("")),
                        or_dash(e.ip.as_deref().unwrap_or("")),
                    ]
                })
                .collect(),
            "The trail holds no event of this subject.",
        ));
    }
    out.push(Section {
        id: "access",
        title: "Access review",
        intro: "Each end user (subject) and client with the protected routes they called \
                (allowed or denied), how often, first and last, and from how many addresses."
            .into(),
        tables: access_tables,
    });

    let sc = &s.scopes;
    let mut unused = Vec::new();
    for client in &sc.clients {
        if client.younger_than_window {
            unused.push(vec![
                client.client.clone(),
                "-".into(),
                format!("first seen {}: younger than the window", client.first_seen),
            ]);
        }
        for scope in &client.unused {
            unused.push(vec![
                client.client.clone(),
                scope.scope.clone(),
                scope.last_used.clone().unwrap_or_else(|| "never".into()),
            ]);
        }
    }
    out.push(Section {
        id: "scopes",
        title: "Scope usage and unused permissions",
        intro: format!(
            "Per client, the scopes it asked for, was granted, that routes required and that \
             it used. A scope granted but not used since {} ({} days before {}) is unused; \
             clients first seen after that are too young to judge.",
            sc.window_start, report.unused_after_days, report.as_of
        ),
        tables: vec![
            table(
                "scope_ladder",
                "Requested, granted, required, used",
                &[
                    "client",
                    "requested",
                    "granted",
                    "required",
                    "used",
                    "first seen",
                    "last seen",
                ],
                sc.clients
                    .iter()
                    .map(|c| {
                        vec![
                            c.client.clone(),
                            scopes(&c.requested),
                            scopes(&c.granted),
                            scopes(&c.required),
                            scopes(&c.used),
                            c.first_seen.clone(),
                            c.last_seen.clone(),
                        ]
                    })
                    .collect(),
                "No client with scopes.",
            ),
            table(
                "unused_scopes",
                "Granted but unused",
                &["client", "scope", "last used"],
                unused,
                "Every granted scope was used in the window.",
            ),
            table(
                "refused_scopes",
                "Requested but refused",
                &["client", "scope", "times", "last"],
                sc.clients
                    .iter()
                    .flat_map(|c| {
                        c.refused.iter().map(|r| {
                            vec![
                                c.client.clone(),
                                r.scope.clone(),
                                n(r.count),
                                r.last.clone(),
                            ]
                        })
                    })
                    .collect(),
                "No requested scope was refused.",
            ),
            table(
                "missing_scopes",
                "Let through with a required scope missing (audit-only rules)",
                &["client", "method", "route", "missing", "calls", "last seen"],
                sc.missing
                    .iter()
                    .map(|m| {
                        vec![
                            m.client.clone(),
                            m.method.clone(),
                            m.route.clone(),
                            m.missing.join(" "),
                            n(m.count),
                            m.last_seen.clone(),
                        ]
                    })
                    .collect(),
                "No call went through without its required scopes.",
            ),
        ],
    });

    let t = &s.tokens;
    out.push(Section {
        id: "tokens",
        title: "Token lifecycle",
        intro: format!(
            "Tokens issued by grant type ({} refreshed), revoked, introspected and by whom; \
             {} issued token(s) never presented at a protected route, {} used after it was \
             revoked.",
            t.refreshed, t.never_used, t.used_after_revocation_total
        ),
        tables: vec![
            table(
                "issued_by_grant",
                "Issued, by grant type",
                &["grant type", "tokens"],
                t.issued_by_grant
                    .iter()
                    .map(|r| vec![r.grant_type.clone(), n(r.count)])
                    .collect(),
                "No token issued.",
            ),
            table(
                "token_failures_by_grant",
                "Token requests refused, by grant type",
                &["grant type", "refusals"],
                t.request_failures_by_grant
                    .iter()
                    .map(|r| vec![r.grant_type.clone(), n(r.count)])
                    .collect(),
                "No token request was refused.",
            ),
            table(
                "revoked_by_client",
                "Revoked, by client",
                &["client", "revocations"],
                t.revoked_by_client
                    .iter()
                    .map(|r| vec![or_dash(&r.client), n(r.events)])
                    .collect(),
                "No token revoked.",
            ),
            table(
                "revocation_failures",
                "Revocations refused, by error code",
                &["error code", "refusals"],
                t.revocation_failures
                    .iter()
                    .map(|r| vec![r.code.clone(), n(r.count)])
                    .collect(),
                "No revocation was refused.",
            ),
            table(
                "introspections",
                "Introspected, by the client asking",
                &["client", "active", "inactive", "unknown", "failed"],
                t.introspections
                    .iter()
                    .map(|r| {
                        vec![
                            or_dash(&r.client),
                            n(r.active),
                            n(r.inactive),
                            n(r.unknown),
                            n(r.failed),
                        ]
                    })
                    .collect(),
                "No introspection.",
            ),
            table(
                "never_used",
                "Issued but never accepted at a protected route, by client",
                &["client", "tokens"],
                t.never_used_by_client
                    .iter()
                    .map(|r| vec![or_dash(&r.client), n(r.events)])
                    .collect(),
                "Every issued token was used.",
            ),
            table(
                "used_after_revocation",
                "Accepted after revocation",
                &["token fingerprint", "client", "revoked", "last used"],
                t.used_after_revocation
                    .iter()
                    .map(|r| {
                        vec![
                            r.fingerprint.clone(),
                            or_dash(&r.client),
                            r.revoked_at.clone(),
                            r.last_used.clone(),
                        ]
                    })
                    .collect(),
                "No token was accepted after its revocation.",
            ),
        ],
    });

    let fl = &s.failures;
    let mut failure_tables = vec![
        table(
            "failed_logins_by_ip",
            "Failed logins, by address",
            &["address", "failures", "usernames tried"],
            fl.failed_logins_by_ip
                .iter()
                .map(|r| {
                    let tried = if r.subjects_at_least {
                        format!("{}+", r.subjects)
                    } else {
                        n(r.subjects)
                    };
                    vec![or_dash(&r.ip), n(r.count), tried]
                })
                .collect(),
            "No failed login.",
        ),
        table(
            "failed_logins_by_subject",
            "Failed logins, by username",
            &["username", "failures"],
            fl.failed_logins_by_subject
                .iter()
                .map(|r| vec![or_dash(&r.subject), n(r.count)])
                .collect(),
            "No failed login.",
        ),
        table(
            "token_failures",
            "Token requests refused, by client and error code",
            &["client", "error code", "refusals"],
            fl.token_failures
                .iter()
                .map(|r| vec![or_dash(&r.client), r.error_code.clone(), n(r.count)])
                .collect(),
            "No token request was refused.",
        ),
        table(
            "token_failures_by_ip",
            "Token requests refused, by address",
            &["address", "refusals"],
            fl.token_failures_by_ip
                .iter()
                .map(|r| vec![or_dash(&r.ip), n(r.count)])
                .collect(),
            "No token request was refused.",
        ),
        table(
            "denials",
            "Protected-route denials, by error code",
            &["error code", "denials"],
            fl.denials
                .iter()
                .map(|r| vec![r.code.clone(), n(r.count)])
                .collect(),
            "No call was denied.",
        ),
        table(
            "alerts_by_rule",
            "Security alerts, by rule",
            &["rule", "alerts"],
            fl.alerts_by_rule
                .iter()
                .map(|r| vec![r.rule.clone(), n(r.count)])
                .collect(),
            "No security alert.",
        ),
        table(
            "alerts",
            "Security alerts",
            &["time", "rule", "key", "count"],
            fl.alerts
                .iter()
                .map(|a| vec![a.time.clone(), a.rule.clone(), a.key.clone(), n(a.count)])
                .collect(),
            "No security alert.",
        ),
        table(
            "dropped",
            "Events lost by the pipeline (AuditEventsDropped)",
            &["reason", "sink", "events"],
            fl.dropped
                .iter()
                .map(|d| vec![d.reason.clone(), or_dash(&d.sink), n(d.count)])
                .collect(),
            "The pipeline reported no lost event.",
        ),
    ];
    if let Some(integrity) = &report.integrity {
        failure_tables.push(table(
            "integrity",
            "Integrity of the chain (signatures not checked)",
            &["item", "value"],
            vec![
                vec!["chained events".into(), n(integrity.events)],
                vec!["streams".into(), n(integrity.streams)],
                vec!["checkpoints".into(), n(integrity.checkpoints)],
                vec!["errors".into(), n(integrity.errors)],
                vec!["warnings".into(), n(integrity.warnings)],
                vec!["verdict".into(), integrity.summary.clone()],
            ],
            "",
        ));
    }
    out.push(Section {
        id: "failures",
        title: "Failures and anomalies",
        intro: "Failed logins and token requests by address, client and error code, denials, \
                the detectors' alerts, events the pipeline lost, and the chain's integrity when \
                the events are chained."
            .into(),
        tables: failure_tables,
    });
    out
}
