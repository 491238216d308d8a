//! Reports over a PostgreSQL events table (written by the postgres sink): the database
//! does the counting. The rows' fields a report reads are taken out of the table's
//! generated columns (`kind`, `outcome`, `subject`, `client_id`, `source_ip`) and the
//! event's JSON, and grouped (`GROUP BY`, hashed) four ways, on two connections at once
//! that share one snapshot:
//!
//! - by everything the overview, scope usage, lifecycle and failure numbers read (but
//!   the subject, address and token of a protected-route call, and the time);
//! - by day and outcome (the overview's days);
//! - by subject, client, method, route and address of the protected-route calls (the
//!   access review);
//! - by token fingerprint (issued, to whom, last used, revoked).
//!
//! What crosses the connection then grows with the distinct clients, routes, addresses and
//! tokens, never with the events; and the groups go through the same aggregation as
//! events read from files, so both sources give the same numbers.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use postgres_protocol::escape::escape_literal;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, IsolationLevel, Row, Transaction};

use super::aggregate::{Group, SubjectEvent, TokenFacts, SUBJECT_EVENTS_LISTED};
use super::event::{Actor, Alert, Dropped, Error, Event, Http, Scopes, Source, Text, Token};
use super::model::{Integrity, Report};
use super::options::ReportOptions;
use super::reporter::Reporter;
use crate::backend::{PostgresEventReader, PostgresReadError};
use crate::chain::verify::{Location, Verifier};
use crate::event::Timestamp;

/// Groups (or listed events) fetched at a time.
const FETCH: i32 = 5_000;

/// Settings for these transactions only. PostgreSQL cannot tell how few groups the
/// groupings make (it guesses one per row), so left alone it sorts every row to group
/// them, spilling to disk; hashing them is many times faster, and past `work_mem` it
/// spills as well. No JIT compilation: it costs seconds and saves less on scans like
/// these. No parallel workers: the two connections already keep two cores busy. Dates as
/// text in ISO form (`2026-11-24`), the days of the report, whatever `DateStyle` the
/// database or role was given (`German` writes `24.11.2026`).
const SETTINGS: &str = "SET LOCAL enable_sort = off; SET LOCAL enable_incremental_sort = off;
    SET LOCAL work_mem = '64MB'; SET LOCAL jit = off;
    SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL DateStyle = 'ISO, YMD'";

/// The fields a report reads, taken out of each stored row once per query (PostgreSQL
/// computes only those a query uses). Each is kept only for the kinds whose numbers read
/// it, so that, say, an introspection's address does not split its group. `{table}` and
/// `{filter}` are filled in.
const FIELDS: &str = "
FROM (
    SELECT kind, outcome, client_id, time,
           CASE WHEN kind = 'LoginFailed' THEN subject END AS l_subject,
           CASE WHEN kind IN ('LoginFailed', 'TokenRequestFailed')
                THEN host(source_ip) END AS l_ip,
           CASE WHEN resource THEN http->>'method' END AS method,
           CASE WHEN resource THEN coalesce(http->>'route', http->>'path') END AS route,
           CASE WHEN kind IN ('AccessTokenIssued', 'TokenRequestFailed')
                THEN event->>'grant_type' END AS grant_type,
           event->'error'->>'code' AS code,
           CASE WHEN kind = 'TokenIntrospected' THEN event->'token'->>'active' END AS active,
           CASE WHEN (resource OR kind IN ('AccessTokenIssued', 'TokenRequestFailed'))
                     AND jsonb_typeof(event->'scopes') = 'object'
                THEN event->'scopes' END AS scopes,
           CASE WHEN kind = 'SecurityAlert' THEN event->'alert' END AS alert,
           -- Every alert is listed with its own time.
           CASE WHEN kind = 'SecurityAlert' THEN time END AS alert_time,
           CASE WHEN kind = 'AuditEventsDropped' THEN event->'dropped' END AS dropped,
           event ? 'chain' AS chained,
           (time AT TIME ZONE 'UTC')::date AS day,
           resource,
           CASE WHEN resource THEN subject END AS a_subject,
           CASE WHEN resource THEN host(source_ip) END AS a_ip,
           CASE WHEN kind IN ('AccessTokenIssued', 'ResourceAccessed', 'TokenRevoked')
                THEN event->'token'->>'fingerprint' END AS fingerprint
    FROM (
        SELECT *, kind IN ('ResourceAccessed', 'AccessDenied') AS resource,
               event->'http' AS http
        FROM {table}
        {filter}
    ) AS stored
) AS fields";

/// The events, by everything the overview, scope usage, lifecycle and failure numbers
/// read (not the subject, address or token of a protected-route call, nor the time).
const EVENTS: &str = "
SELECT kind, outcome, client_id, l_subject, l_ip, method, route, grant_type, code, active,
       scopes::text, alert::text, dropped::text, chained, count(*), min(time), max(time)
{fields}
GROUP BY kind, outcome, client_id, l_subject, l_ip, method, route, grant_type, code, active,
         scopes, alert, alert_time, dropped, chained";

/// The events by day and outcome.
const DAYS: &str = "
SELECT day::text, outcome, count(*)
{fields}
GROUP BY day, outcome";

/// The protected-route calls by subject, client, method, route and address.
const ACCESS: &str = "
SELECT a_subject, client_id, method, route, a_ip, count(*), min(time), max(time)
{fields}
WHERE resource
GROUP BY a_subject, client_id, method, route, a_ip";

/// The tokens: issued, to whom, used by whom and when last, revoked when first.
const TOKENS: &str = "
SELECT fingerprint,
       bool_or(kind = 'AccessTokenIssued'),
       min(client_id COLLATE \"C\") FILTER (WHERE kind = 'AccessTokenIssued'),
       min(client_id COLLATE \"C\") FILTER (WHERE kind = 'ResourceAccessed'),
       max(time) FILTER (WHERE kind = 'ResourceAccessed'),
       min(time) FILTER (WHERE kind = 'TokenRevoked')
{fields}
WHERE fingerprint IS NOT NULL
GROUP BY fingerprint";

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
        sql.replace("{fields}", FIELDS)
            .replace("{table}", table)
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

    // Two connections share one snapshot and split the groupings between them, each run
    // by one PostgreSQL process: the table is read twice at the same time, on two cores.
    let mut second = reader.another().await?;
    let transaction = read_only(reader.client()).await?;
    let snapshot: String = transaction
        .query_one("SELECT pg_export_snapshot()", &[])
        .await?
        .get(0);
    let alongside = read_only(second.client()).await?;
    alongside
        .batch_execute(&format!(
            "SET TRANSACTION SNAPSHOT {}",
            escape_literal(&snapshot)
        ))
        .await?;
    transaction.batch_execute(SETTINGS).await?;
    alongside.batch_execute(SETTINGS).await?;

    // Every row, before the filters (as lines read from files are).
    let rows: i64 = transaction
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    let rows = u64::try_from(rows).unwrap_or(0);
    reporter.input.lines = rows;
    reporter.input.events = rows;

    let params = filter.params();
    let (here, there) = tokio::try_join!(
        run(&transaction, vec![filter.fill(EVENTS, &table)], &params),
        run(
            &alongside,
            vec![
                filter.fill(DAYS, &table),
                filter.fill(ACCESS, &table),
                filter.fill(TOKENS, &table),
            ],
            &params
        ),
    )?;
    alongside.commit().await?;
    for row in here.iter().flatten() {
        add_events(&mut reporter, row);
    }
    for (rows, add) in there
        .iter()
        .zip([add_day as fn(&mut Reporter, &Row), add_access, add_token])
    {
        for row in rows {
            add(&mut reporter, row);
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
        report.integrity = Some(Integrity::from(&verifier.finish()));
    }
    Ok(report)
}

/// A group's count, earliest and latest time from `at` on.
fn times(row: &Row, at: usize) -> (u64, String, String) {
    (
        u64::try_from(row.get::<_, i64>(at)).unwrap_or(0),
        canonical(row.get(at + 1)),
        canonical(row.get(at + 2)),
    )
}

/// A row of [`EVENTS`].
fn add_events(reporter: &mut Reporter, row: &Row) {
    let (count, first, last) = times(row, 14);
    let text = |i: usize| row.get::<_, Option<&str>>(i).map(Text::from);
    let json = |i: usize| row.get::<_, Option<&str>>(i);
    let event = Event {
        kind: Text::from(row.get::<_, &str>(0)),
        time: Text::from(""),
        outcome: text(1),
        service: None,
        actor: Some(Actor {
            client_id: text(2),
            subject: text(3),
        }),
        source: Some(Source { ip: text(4) }),
        http: Some(Http {
            method: text(5),
            route: text(6),
            path: None,
        }),
        grant_type: text(7),
        error: Some(Error { code: text(8) }),
        token: Some(Token {
            fingerprint: None,
            active: json(9).and_then(|active| active.parse().ok()),
        }),
        // Parts of stored events, read as the files' events are (a part that is not what
        // it should be counts as absent).
        scopes: json(10)
            .and_then(|scopes| serde_json::from_str::<Scopes<'_>>(scopes).ok())
            .unwrap_or_default(),
        alert: json(11).and_then(|alert| serde_json::from_str::<Alert<'_>>(alert).ok()),
        dropped: json(12).and_then(|dropped| serde_json::from_str::<Dropped<'_>>(dropped).ok()),
        chain: row.get::<_, bool>(13).then_some(serde::de::IgnoredAny),
    };
    reporter.input.matched += count;
    reporter.aggregate.add_group(
        &event,
        &Group {
            count,
            first: &first,
            last: &last,
            whole: false,
        },
    );
}

/// A row of [`DAYS`].
fn add_day(reporter: &mut Reporter, row: &Row) {
    let count = u64::try_from(row.get::<_, i64>(2)).unwrap_or(0);
    reporter.aggregate.add_day(row.get(0), row.get(1), count);
}

/// A row of [`ACCESS`].
fn add_access(reporter: &mut Reporter, row: &Row) {
    let (count, first, last) = times(row, 5);
    let part = |i: usize| row.get::<_, Option<&str>>(i).unwrap_or("");
    reporter.aggregate.add_access(
        [part(0), part(1), part(2), part(3)],
        row.get(4),
        &Group {
            count,
            first: &first,
            last: &last,
            whole: false,
        },
    );
}

/// A row of [`TOKENS`].
fn add_token(reporter: &mut Reporter, row: &Row) {
    let last_used = row.get::<_, Option<DateTime<Utc>>>(4).map(canonical);
    let revoked_at = row.get::<_, Option<DateTime<Utc>>>(5).map(canonical);
    reporter.aggregate.add_token(
        row.get(0),
        &TokenFacts {
            issued: row.get::<_, Option<bool>>(1).unwrap_or(false),
            issued_to: row.get(2),
            used_by: row.get(3),
            last_used: last_used.as_deref(),
            revoked_at: revoked_at.as_deref(),
        },
    );
}

/// A read-only transaction that sees one snapshot for all its queries.
async fn read_only(client: &mut Client) -> Result<Transaction<'_>, PostgresReadError> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

/// Runs `queries` (each with the filter's parameters) one after the other, and keeps their
/// rows: groups, as many as there are distinct keys.
async fn run(
    transaction: &Transaction<'_>,
    queries: Vec<String>,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Vec<Row>>, PostgresReadError> {
    let mut results = Vec::with_capacity(queries.len());
    for query in &queries {
        results.push(transaction.query(query.as_str(), params).await?);
    }
    Ok(results)
}
