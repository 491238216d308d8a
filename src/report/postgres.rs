//! Reports over a PostgreSQL events table (written by the postgres sink): the database
//! does the counting. One `GROUP BY` on the table's generated columns (`kind`, `outcome`,
//! `subject`, `client_id`, `source_ip`) and the few event fields a report reads folds the
//! rows into groups of events that differ only in their times; each group comes back as
//! one row (its count, earliest and latest time), so what crosses the connection grows
//! with the distinct clients, routes, addresses and tokens, not with the events. The
//! groups go through the same aggregation as events read from files, so both sources give
//! the same numbers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::IsolationLevel;

use super::aggregate::{Group, SubjectEvent, SUBJECT_EVENTS_LISTED};
use super::event::Event;
use super::model::{Integrity, Report};
use super::options::ReportOptions;
use super::reporter::Reporter;
use crate::backend::{PostgresEventReader, PostgresReadError};
use crate::chain::verify::{Location, Verifier};
use crate::event::Timestamp;

/// Groups (or listed events) fetched at a time.
const FETCH: i32 = 5_000;

/// The grouping: what a report reads of an event, each field kept only for the kinds
/// whose numbers use it (so that, say, an introspection's address does not split its
/// group), and the day (the overview counts per day). `{table}` and `{filter}` are filled
/// in; the events' own JSON is rebuilt from the groups for the aggregation to read.
const GROUPS: &str = "
SELECT jsonb_build_object(
           'kind', kind, 'time', '', 'outcome', outcome,
           'actor', jsonb_build_object('subject', subject, 'client_id', client_id),
           'source', jsonb_build_object('ip', ip),
           'http', jsonb_build_object('method', method, 'route', route),
           'grant_type', grant_type,
           'error', jsonb_build_object('code', code),
           'token', jsonb_build_object('fingerprint', fingerprint, 'active', active),
           'scopes', scopes,
           'alert', alert,
           'dropped', dropped,
           'chain', chained)::text,
       n, first, last
FROM (
    SELECT kind, outcome, subject, client_id,
           CASE WHEN kind IN ('ResourceAccessed', 'AccessDenied', 'LoginFailed',
                              'TokenRequestFailed')
                THEN host(source_ip) END AS ip,
           CASE WHEN kind IN ('ResourceAccessed', 'AccessDenied')
                THEN event->'http'->>'method' END AS method,
           CASE WHEN kind IN ('ResourceAccessed', 'AccessDenied')
                THEN coalesce(event->'http'->>'route', event->'http'->>'path') END AS route,
           CASE WHEN kind IN ('AccessTokenIssued', 'TokenRequestFailed')
                THEN event->>'grant_type' END AS grant_type,
           event->'error'->>'code' AS code,
           CASE WHEN kind IN ('ResourceAccessed', 'AccessDenied', 'AccessTokenIssued',
                              'TokenRevoked')
                THEN event->'token'->>'fingerprint' END AS fingerprint,
           CASE WHEN kind = 'TokenIntrospected' THEN event->'token'->'active' END AS active,
           CASE WHEN kind IN ('ResourceAccessed', 'AccessDenied', 'AccessTokenIssued',
                              'TokenRequestFailed')
                     AND jsonb_typeof(event->'scopes') = 'object'
                THEN event->'scopes' ELSE '{}'::jsonb END AS scopes,
           CASE WHEN kind = 'SecurityAlert' THEN event->'alert' END AS alert,
           -- Every alert is listed with its own time.
           CASE WHEN kind = 'SecurityAlert' THEN time END AS alert_time,
           CASE WHEN kind = 'AuditEventsDropped' THEN event->'dropped' END AS dropped,
           CASE WHEN event ? 'chain' THEN true END AS chained,
           (time AT TIME ZONE 'UTC')::date AS day,
           count(*) AS n, min(time) AS first, max(time) AS last
    FROM {table}
    {filter}
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17
) AS grouped
ORDER BY first, last, 1";

/// A data-subject access report's list: the subject's events in time order, ties in
/// the order the aggregation lists them (bytewise, absent first).
const SUBJECT_EVENTS: &str = "
SELECT time, kind, client_id, method, route, ip, outcome
FROM (
    SELECT time, kind, coalesce(outcome, '') AS outcome, client_id,
           event->'http'->>'method' AS method,
           coalesce(event->'http'->>'route', event->'http'->>'path') AS route,
           event->'source'->>'ip' AS ip
    FROM {table}
    {filter}
) AS listed
ORDER BY time, kind COLLATE \"C\", client_id COLLATE \"C\" NULLS FIRST,
         method COLLATE \"C\" NULLS FIRST, route COLLATE \"C\" NULLS FIRST,
         ip COLLATE \"C\" NULLS FIRST, outcome COLLATE \"C\"";

/// The filters of `options` as a `WHERE` clause on the table's columns, and its
/// parameters in order.
struct Filter {
    clause: String,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    texts: Vec<String>,
}

impl Filter {
    fn new(options: &ReportOptions) -> Filter {
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        let since = options.since.and_then(chrono_time);
        if since.is_some() {
            conditions.push(format!("time >= ${}", next()));
        }
        let until = options.until.and_then(chrono_time);
        if until.is_some() {
            conditions.push(format!("time < ${}", next()));
        }
        let mut texts = Vec::new();
        for (column, value) in [
            ("event->'service'->>'name'", &options.service),
            ("client_id", &options.client),
            ("subject", &options.subject),
        ] {
            if let Some(value) = value {
                conditions.push(format!("{column} = ${}", next()));
                texts.push(value.clone());
            }
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        Filter {
            clause,
            since,
            until,
            texts,
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        for time in [&self.since, &self.until].into_iter().flatten() {
            params.push(time);
        }
        for text in &self.texts {
            params.push(text);
        }
        params
    }

    fn fill(&self, sql: &str, table: &str) -> String {
        sql.replace("{table}", table)
            .replace("{filter}", &self.clause)
    }
}

fn chrono_time(time: Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_micros(time.unix_micros())
}

/// A time from the table in the report's canonical form.
fn canonical(time: DateTime<Utc>) -> String {
    Timestamp::from_unix_micros(time.timestamp_micros())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Reports over the events table `reader` reads, from one consistent snapshot, with the
/// grouping done by PostgreSQL (see the module's documentation). The numbers are the
/// ones [`report_files`](super::report_files) gives for the same events. When the events
/// are chained, the report also says what the chain verifier says of the table
/// (signatures not checked), which reads every row.
///
/// ```no_run
/// use oauth_audit::backend::PostgresEventReader;
/// use oauth_audit::report::{report_postgres, ReportOptions};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut reader = PostgresEventReader::connect(
///     "host=127.0.0.1 user=auditor dbname=audit sslmode=disable",
///     "public",
///     "oauth_audit_events",
/// )
/// .await?;
/// let report = report_postgres(&mut reader, ReportOptions::default()).await?;
/// std::fs::write("report.html", report.to_html()?)?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// When PostgreSQL refuses a query or the connection fails.
pub async fn report_postgres(
    reader: &mut PostgresEventReader,
    options: ReportOptions,
) -> Result<Report, PostgresReadError> {
    let filter = Filter::new(&options);
    let listing = options.subject.is_some();
    let mut reporter = Reporter::new(options);
    let table = reader.table().to_owned();
    reporter.input.files = vec![format!("PostgreSQL table {table}")];

    let client = reader.client();
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let rows: i64 = transaction
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    let rows = u64::try_from(rows).unwrap_or(0);
    reporter.input.lines = rows;
    reporter.input.events = rows;

    let params = filter.params();
    let portal = transaction
        .bind(filter.fill(GROUPS, &table).as_str(), &params)
        .await?;
    loop {
        let groups = transaction.query_portal(&portal, FETCH).await?;
        if groups.is_empty() {
            break;
        }
        for row in &groups {
            let event: &str = row.get(0);
            let count: i64 = row.get(1);
            let first = canonical(row.get(2));
            let last = canonical(row.get(3));
            // Built by the query above: always an event; a row that is not is counted.
            let Ok(event) = serde_json::from_str::<Event<'_>>(event) else {
                reporter.input.skipped += 1;
                continue;
            };
            let group = Group {
                count: u64::try_from(count).unwrap_or(0),
                first: &first,
                last: &last,
            };
            reporter.input.matched += group.count;
            reporter.aggregate.add_group(&event, &group);
        }
    }
    if listing {
        let total = reporter.input.matched;
        let portal = transaction
            .bind(filter.fill(SUBJECT_EVENTS, &table).as_str(), &params)
            .await?;
        let mut listed = 0;
        while listed < SUBJECT_EVENTS_LISTED {
            let rows = transaction.query_portal(&portal, FETCH).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                reporter.aggregate.list_subject_event(
                    SubjectEvent {
                        time: canonical(row.get(0)),
                        kind: row.get(1),
                        client: row.get(2),
                        method: row.get(3),
                        route: row.get(4),
                        ip: row.get(5),
                        outcome: row.get(6),
                    },
                    total,
                );
                listed += 1;
            }
        }
    }
    transaction.commit().await?;

    let chained = reporter.saw_chained_events();
    let mut report = reporter.finish();
    if chained {
        let mut verifier = Verifier::new(Vec::new());
        let label: Arc<str> = table.into();
        reader
            .read(|id, event| verifier.push(Location::row(&label, id), event.as_bytes()))
            .await?;
        let found = verifier.finish();
        report.integrity = Some(Integrity {
            events: found.events,
            streams: found.streams,
            checkpoints: found.checkpoints,
            errors: found.errors,
            warnings: found.warnings,
            summary: found.summary(),
        });
    }
    Ok(report)
}
