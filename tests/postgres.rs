//! The PostgreSQL backend against a real PostgreSQL 15 started by the test harness.
#![cfg(feature = "postgres")]

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use oauth_audit::backend::{Partitioning, PostgresBackend};
use oauth_audit::delivery::{Backend, Backoff, Delivery, EncodedEvent};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Source, Timestamp};
use oauth_audit::writer::{Auditor, MemoryWriter};
use oauth_audit::AuditLayer;
use support::postgres::PgServer;

const DAY: i64 = 24 * 3600;

fn service() -> Arc<ServiceInfo> {
    Arc::new(ServiceInfo::new("pg-test"))
}

/// An event at `time`, with the columns extracted from it filled in.
fn event_at(time: Timestamp, subject: &str) -> EncodedEvent {
    let mut event = AuditEvent::new(service(), time, EventKind::LoginFailed, Outcome::Failure);
    event.actor.subject = Some(subject.to_owned());
    event.actor.client_id = Some("web".to_owned());
    let mut source = Source::default();
    source.ip = Some("203.0.113.7".parse().unwrap());
    event.source = Some(source);
    EncodedEvent::encode(&event).unwrap()
}

fn days_ago(days: i64) -> Timestamp {
    Timestamp::from_unix(Timestamp::now().unix() - days * DAY).unwrap()
}

async fn count(pg: &PgServer, table: &str) -> (i64, i64) {
    let row = pg
        .client()
        .await
        .query_one(
            &format!("SELECT count(*), count(DISTINCT id) FROM {table}"),
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn partitions(pg: &PgServer, table: &str) -> Vec<String> {
    column(
        pg,
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = $1::text::regclass ORDER BY 1",
        &[&table],
    )
    .await
}

/// The first column of what `sql` selects.
async fn column<T: tokio_postgres::types::FromSqlOwned, C: FromIterator<T>>(
    pg: &PgServer,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> C {
    pg.client()
        .await
        .query(sql, params)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The SQLSTATE a statement fails with.
async fn sqlstate(client: &tokio_postgres::Client, sql: &str) -> String {
    let error = client.batch_execute(sql).await.unwrap_err();
    error.code().expect("a server error").code().to_owned()
}

#[tokio::test]
async fn schema_is_created_once_and_start_is_idempotent() {
    let pg = PgServer::new();
    let mut first = PostgresBackend::builder(pg.url()).build().unwrap();
    first.prepare().await.unwrap();
    // A second writer starting against the same table finds everything in place.
    // tokio-postgres's default sslmode (prefer) falls back to plain TCP.
    let without_sslmode = pg.url().replace(" sslmode=disable", "");
    let mut second = PostgresBackend::builder(without_sslmode).build().unwrap();
    second.prepare().await.unwrap();
    second
        .send(&[event_at(Timestamp::now(), "alice")])
        .await
        .unwrap();

    let client = pg.client().await;
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_name = 'oauth_audit_events' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected = [
        ("id", "uuid"),
        ("time", "timestamp with time zone"),
        ("kind", "text"),
        ("outcome", "text"),
        ("subject", "text"),
        ("client_id", "text"),
        ("source_ip", "inet"),
        ("event", "jsonb"),
        ("inserted_at", "timestamp with time zone"),
    ];
    assert_eq!(
        columns,
        expected
            .iter()
            .map(|(c, t)| (c.to_string(), t.to_string()))
            .collect::<Vec<_>>()
    );
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'oauth_audit_events' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for index in ["time", "kind", "subject", "client", "ip", "pkey"] {
        assert!(
            indexes.contains(&format!("oauth_audit_events_{index}")),
            "{index} missing from {indexes:?}"
        );
    }
    let versions = client
        .query(
            "SELECT table_name, version, partitioning FROM oauth_audit_schema",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].get::<_, String>(0), "oauth_audit_events");
    assert_eq!(versions[0].get::<_, i32>(1), 2);
    assert_eq!(versions[0].get::<_, String>(2), "monthly");
    // The current and the next month are created ahead.
    assert_eq!(partitions(&pg, "oauth_audit_events").await.len(), 2);

    // Append-only, on the table and on its partitions.
    let partition = &partitions(&pg, "oauth_audit_events").await[0];
    for sql in [
        "UPDATE oauth_audit_events SET kind = 'TokenRevoked'".to_owned(),
        "DELETE FROM oauth_audit_events".to_owned(),
        "TRUNCATE oauth_audit_events".to_owned(),
        format!("TRUNCATE {partition}"),
        format!("DELETE FROM {partition}"),
    ] {
        assert_eq!(sqlstate(&client, &sql).await, "42501", "{sql} was allowed");
    }
    assert_eq!(count(&pg, "oauth_audit_events").await, (1, 1));

    // A schema of its own, created on demand, daily partitions.
    let mut daily = PostgresBackend::builder(pg.url())
        .schema("audit")
        .table("events")
        .partitioning(Partitioning::Daily)
        .build()
        .unwrap();
    daily.prepare().await.unwrap();
    assert_eq!(partitions(&pg, "audit.events").await.len(), 2);

    // Configurations that do not fit the existing table are refused, as retryable errors
    // (an operator can fix them; events wait in the spool meanwhile).
    let mut mismatch = PostgresBackend::builder(pg.url())
        .partitioning(Partitioning::Daily)
        .build()
        .unwrap();
    let error = mismatch.prepare().await.unwrap_err();
    assert!(error.is_retryable());
    assert!(error.to_string().contains("monthly"), "{error}");
    client
        .batch_execute("CREATE TABLE public.not_ours (x int)")
        .await
        .unwrap();
    let mut foreign = PostgresBackend::builder(pg.url())
        .table("not_ours")
        .build()
        .unwrap();
    let error = foreign.prepare().await.unwrap_err();
    assert!(
        error.to_string().contains("not created by oauth-audit"),
        "{error}"
    );
}

#[tokio::test]
async fn retries_never_duplicate() {
    let pg = PgServer::new();
    for (table, partitioning) in [
        ("partitioned", Partitioning::Monthly),
        ("plain", Partitioning::None),
    ] {
        let mut backend = PostgresBackend::builder(pg.url())
            .table(table)
            .partitioning(partitioning)
            .build()
            .unwrap();
        let batch: Vec<EncodedEvent> = (0..50)
            .map(|i| event_at(days_ago(i % 3), &format!("user-{i}")))
            .collect();
        backend.send(&batch).await.unwrap();
        backend.send(&batch).await.unwrap();
        // Overlapping batches, as a replay after a partial failure would send.
        backend.send(&batch[25..]).await.unwrap();
        let mut more = batch[40..].to_vec();
        more.push(event_at(Timestamp::now(), "late"));
        backend.send(&more).await.unwrap();
        // A fresh connection (a restarted writer) replaying the same events.
        let mut restarted = PostgresBackend::builder(pg.url())
            .table(table)
            .partitioning(partitioning)
            .build()
            .unwrap();
        restarted.send(&batch).await.unwrap();
        assert_eq!(count(&pg, table).await, (51, 51), "{table}");
    }
}

#[tokio::test]
async fn retention_drops_old_partitions() {
    let pg = PgServer::new();
    let mut writer = PostgresBackend::builder(pg.url())
        .partitioning(Partitioning::Daily)
        .build()
        .unwrap();
    // Spooled events can be old: their partitions are created as they arrive.
    let batch: Vec<EncodedEvent> = [0, 1, 10, 29, 31, 40, 400]
        .into_iter()
        .map(|days| event_at(days_ago(days), &format!("{days}-days-ago")))
        .collect();
    writer.send(&batch).await.unwrap();
    assert_eq!(count(&pg, "oauth_audit_events").await.0, 7);
    let before = partitions(&pg, "oauth_audit_events").await;
    assert!(before.len() >= 7, "{before:?}");

    let mut with_retention = PostgresBackend::builder(pg.url())
        .partitioning(Partitioning::Daily)
        .retention(Duration::from_secs(30 * DAY as u64))
        .build()
        .unwrap();
    with_retention.prepare().await.unwrap();
    let subjects: Vec<String> = column(
        &pg,
        "SELECT subject FROM oauth_audit_events ORDER BY time DESC",
        &[],
    )
    .await;
    assert_eq!(
        subjects,
        ["0-days-ago", "1-days-ago", "10-days-ago", "29-days-ago"]
    );
    let after = partitions(&pg, "oauth_audit_events").await;
    assert_eq!(after.len(), before.len() - 3, "{before:?} -> {after:?}");

    // Without partitioning, retention deletes rows, the only deletion the table allows.
    let mut plain = PostgresBackend::builder(pg.url())
        .table("plain")
        .partitioning(Partitioning::None)
        .build()
        .unwrap();
    plain.send(&batch).await.unwrap();
    let mut plain = PostgresBackend::builder(pg.url())
        .table("plain")
        .partitioning(Partitioning::None)
        .retention(Duration::from_secs(30 * DAY as u64))
        .build()
        .unwrap();
    plain.prepare().await.unwrap();
    assert_eq!(count(&pg, "plain").await.0, 4);
    let client = pg.client().await;
    assert_eq!(sqlstate(&client, "DELETE FROM plain").await, "42501");
}

#[tokio::test]
async fn refused_events_are_rejected_and_the_rest_kept() {
    let pg = PgServer::new();
    let mut backend = PostgresBackend::builder(pg.url()).build().unwrap();
    let good = event_at(Timestamp::now(), "alice");
    let other = event_at(Timestamp::now(), "bob");
    // Valid JSON, but jsonb cannot hold a NUL character.
    let nul = EncodedEvent::from_json(Bytes::from(format!(
        r#"{{"schema":"oauth-audit/1","id":"{}","time":"{}","kind":"TokenRevoked","outcome":"success","note":"a\u0000b"}}"#,
        uuid::Uuid::now_v7(),
        Timestamp::now()
    )))
    .unwrap();
    // The extracted inet column refuses an address that is not one.
    let bad_ip = EncodedEvent::from_json(Bytes::from(format!(
        r#"{{"schema":"oauth-audit/1","id":"{}","time":"{}","kind":"TokenRevoked","outcome":"success","source":{{"ip":"not-an-ip"}}}}"#,
        uuid::Uuid::now_v7(),
        Timestamp::now()
    )))
    .unwrap();

    let error = backend
        .send(&[good.clone(), nul.clone(), other.clone(), bad_ip.clone()])
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    let message = error.to_string();
    assert!(message.contains("2 of 4 events refused"), "{message}");
    assert!(message.contains(&nul.id().to_string()), "{message}");
    assert_eq!(count(&pg, "oauth_audit_events").await, (2, 2));

    let error = backend.send(&[bad_ip]).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    // The connection survives a refusal.
    backend
        .send(&[event_at(Timestamp::now(), "carol")])
        .await
        .unwrap();
    assert_eq!(count(&pg, "oauth_audit_events").await, (3, 3));
}

/// Text no compression shrinks: each character drawn from 64 by a simple generator.
fn incompressible(len: usize) -> String {
    const DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(DIGITS[(state % 64) as usize])
        })
        .collect()
}

#[tokio::test]
async fn an_event_too_large_for_an_index_is_refused_and_the_rest_kept() {
    let pg = PgServer::new();
    let mut backend = PostgresBackend::builder(pg.url())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    // A subject longer than a B-tree index entry may be (about 2.7 kB): PostgreSQL refuses
    // the row with 54000 (program_limit_exceeded), however often it is sent.
    let huge = event_at(Timestamp::now(), &incompressible(10_000));
    let good = event_at(Timestamp::now(), "alice");
    let error = backend
        .send(&[good.clone(), huge.clone()])
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    let message = error.to_string();
    assert!(message.contains("1 of 2 events refused"), "{message}");
    assert!(message.contains(&huge.id().to_string()), "{message}");
    assert_eq!(count(&pg, "oauth_audit_events").await, (1, 1));
    let error = backend.send(&[huge]).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    backend
        .send(&[event_at(Timestamp::now(), "bob")])
        .await
        .unwrap();
    assert_eq!(count(&pg, "oauth_audit_events").await, (2, 2));
}

#[tokio::test]
async fn an_unreachable_server_is_retryable_and_reconnected() {
    let mut pg = PgServer::new();
    let mut backend = PostgresBackend::builder(pg.url())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    backend
        .send(&[event_at(Timestamp::now(), "before")])
        .await
        .unwrap();
    pg.stop();
    let during = event_at(Timestamp::now(), "during");
    let error = backend
        .send(std::slice::from_ref(&during))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    pg.start();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match backend.send(std::slice::from_ref(&during)).await {
            Ok(()) => break,
            Err(error) => {
                assert!(error.is_retryable(), "{error}");
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no reconnection: {error}\n{}",
                    pg.log()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(count(&pg, "oauth_audit_events").await, (2, 2));
}

#[tokio::test]
async fn events_from_the_layer_land_with_their_columns() {
    let pg = PgServer::new();
    let backend = PostgresBackend::builder(pg.url()).build().unwrap();
    let delivery = Delivery::builder(backend).build().unwrap();
    let stats = delivery.stats();
    let auditor = Auditor::builder()
        .service_name("token-service")
        .writer(delivery)
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/token",
            post(|_form: String| async {
                (
                    [("content-type", "application/json")],
                    r#"{"access_token":"opaque-access-token-1234567890","token_type":"Bearer","expires_in":3600,"scope":"read"}"#,
                )
            }),
        )
        .layer(AuditLayer::new(auditor.clone()));
    let addr = support::serve(app).await;
    let client = support::client();
    for user in ["alice", "bob", "carol"] {
        let response = client
            .post(format!("http://{addr}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=password&username={user}&password=secret&client_id=web&scope=read"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    auditor.shutdown().await;
    assert_eq!(stats.delivered(), 3);

    let rows = pg
        .client()
        .await
        .query(
            "SELECT id, kind, outcome, subject, client_id, source_ip, event::text, \
                    (event->>'id')::uuid = id, (event->>'time')::timestamptz = time \
             FROM oauth_audit_events ORDER BY time",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for (row, user) in rows.iter().zip(["alice", "bob", "carol"]) {
        let event: serde_json::Value = serde_json::from_str(row.get(6)).unwrap();
        assert_eq!(row.get::<_, String>(1), "AccessTokenIssued", "{event}");
        assert_eq!(row.get::<_, String>(2), "success");
        assert_eq!(
            row.get::<_, Option<String>>(3).as_deref(),
            Some(user),
            "{event}"
        );
        assert_eq!(row.get::<_, String>(4), "web");
        assert_eq!(
            row.get::<_, IpAddr>(5),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert!(row.get::<_, bool>(7), "id column differs from the event");
        assert!(row.get::<_, bool>(8), "time column differs from the event");
        assert_eq!(event["service"]["name"], "token-service");
        assert_eq!(event["grant_type"], "password");
        let text = event.to_string();
        assert!(
            !text.contains("secret"),
            "a secret reached the table: {text}"
        );
        assert!(!text.contains("opaque-access-token-1234567890"), "{text}");
    }

    // The README's example queries run against the table as created.
    let client = pg.client().await;
    for query in [
        "SELECT source_ip, count(*) FROM public.oauth_audit_events \
         WHERE kind = 'LoginFailed' AND time > now() - interval '1 hour' \
         GROUP BY source_ip ORDER BY count(*) DESC",
        "SELECT time, kind, outcome, event->'http'->>'path' AS path \
         FROM public.oauth_audit_events \
         WHERE subject = 'alice' AND time >= date_trunc('day', now()) ORDER BY time",
        "SELECT time, client_id, event->'token'->>'fingerprint' AS token \
         FROM public.oauth_audit_events WHERE kind = 'TokenRevoked' ORDER BY time DESC LIMIT 50",
    ] {
        client.query(query, &[]).await.unwrap();
    }
    let paths = client
        .query(
            "SELECT event->'http'->>'path' FROM public.oauth_audit_events WHERE subject = 'alice'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(paths[0].get::<_, String>(0), "/token");
}

/// A router whose every request becomes one `ResourceAccessed` event.
fn orders_app(auditor: &Auditor) -> Router {
    Router::new()
        .route("/orders", get(|| async { "[]" }))
        .layer(AuditLayer::new(auditor.clone()))
}

/// A spool directory, removed on Drop (also when the test fails).
struct SpoolDir(PathBuf);

impl SpoolDir {
    fn new() -> SpoolDir {
        SpoolDir(
            std::env::temp_dir().join(format!("oauth-audit-pg-spool-{}", uuid::Uuid::now_v7())),
        )
    }
}

impl Drop for SpoolDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn quick_backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(20), Duration::from_millis(500))
}

async fn stored_ids(pg: &PgServer) -> Vec<uuid::Uuid> {
    let client = pg.client().await;
    // The backend creates the table with its first batch.
    let exists: bool = client
        .query_one("SELECT to_regclass('oauth_audit_events') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    if !exists {
        return Vec::new();
    }
    client
        .query("SELECT id FROM oauth_audit_events", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Polls until `done` holds for the stored rows, or fails after a generous deadline.
async fn wait_for_rows(pg: &PgServer, what: &str, done: impl Fn(&[uuid::Uuid]) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let ids = stored_ids(pg).await;
        if done(&ids) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} rows stored",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_during_traffic_loses_and_duplicates_nothing() {
    let mut pg = PgServer::new();
    let spool_dir = SpoolDir::new();
    let spool = &spool_dir.0;
    let backend = PostgresBackend::builder(pg.url())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let delivery = Delivery::builder(backend)
        .spool_dir(spool)
        .backoff(quick_backoff())
        .build()
        .unwrap();
    let stats = delivery.stats();
    // Every event the layer emitted, to compare against the table.
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .batch_size(8)
        .writer(delivery)
        .writer(memory.clone())
        .build()
        .unwrap();
    let addr = support::serve(orders_app(&auditor)).await;
    let client = support::client();
    let request = |i: usize| {
        let client = client.clone();
        async move {
            let response = client
                .get(format!("http://{addr}/orders?page={i}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap();
        }
    };

    for i in 0..40 {
        request(i).await;
    }
    wait_for_rows(&pg, "before the outage", |ids| ids.len() >= 10).await;
    tokio::task::block_in_place(|| pg.stop());
    for i in 40..120 {
        request(i).await;
    }
    // Traffic kept flowing while the database was down: some of it waits in the spool.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stats.spooled_events() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing was spooled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::task::block_in_place(|| pg.start());
    for i in 120..160 {
        request(i).await;
    }

    let emitted: BTreeSet<uuid::Uuid> = support::events(&memory, 160)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(emitted.len(), 160);
    wait_for_rows(&pg, "after the outage", |ids| ids.len() >= emitted.len()).await;
    auditor.shutdown().await;

    assert_eq!(count(&pg, "oauth_audit_events").await, (160, 160));
    let stored: BTreeSet<uuid::Uuid> = stored_ids(&pg).await.into_iter().collect();
    assert_eq!(stored, emitted);
    assert_eq!(stats.spooled_events(), 0);
    assert_eq!(stats.dropped_total(), 0);
}

const CHILD: &str = "crash_child_serves_until_killed";
const CHILD_URL: &str = "OAUTH_AUDIT_TEST_PG_URL";
const CHILD_SPOOL: &str = "OAUTH_AUDIT_TEST_SPOOL";

/// The writer process of `a_killed_writer_replays_its_spool_after_restart`: serves traffic
/// with the database down and reports, on stdout, the ids it emitted and how many events its
/// spool holds, until it is killed.
#[tokio::test]
#[ignore = "a child process of a_killed_writer_replays_its_spool_after_restart"]
async fn crash_child_serves_until_killed() {
    let (Ok(url), Ok(spool)) = (std::env::var(CHILD_URL), std::env::var(CHILD_SPOOL)) else {
        // Only meaningful as the child process; run on its own it has nothing to do.
        return;
    };
    let backend = PostgresBackend::builder(url)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let delivery = Delivery::builder(backend)
        .spool_dir(spool)
        .backoff(quick_backoff())
        .build()
        .unwrap();
    let stats = delivery.stats();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("crashing-api")
        .batch_size(4)
        .writer(delivery)
        .writer(memory.clone())
        .build()
        .unwrap();
    let addr = support::serve(orders_app(&auditor)).await;
    let client = support::client();
    let mut reported = 0;
    for i in 0.. {
        client
            .get(format!("http://{addr}/orders?page={i}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // One event at a time, so at a kill at most the latest events are unreported.
        let events = support::events(&memory, i + 1).await;
        let mut out = String::new();
        for event in &events[reported..] {
            out.push_str(&format!("id {}\n", event["id"].as_str().unwrap()));
        }
        reported = events.len();
        out.push_str(&format!("spooled {}\n", stats.spooled_events()));
        print!("{out}");
    }
}

/// The ids of the events in a spool directory not yet confirmed (its documented layout:
/// `<seq>.jsonl` segments of one event per line, and a `cursor` of `<seq> <offset>`).
fn read_spool(dir: &Path) -> Vec<uuid::Uuid> {
    let cursor = std::fs::read_to_string(dir.join("cursor")).ok();
    let (from_seq, from_offset) = cursor
        .as_deref()
        .and_then(|c| c.trim().split_once(' '))
        .map(|(seq, offset)| {
            (
                seq.parse::<u64>().unwrap(),
                offset.parse::<usize>().unwrap(),
            )
        })
        .unwrap_or((0, 0));
    let mut segments: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let seq = path
                .file_name()?
                .to_str()?
                .strip_suffix(".jsonl")?
                .parse()
                .ok()?;
            Some((seq, path))
        })
        .collect();
    segments.sort();
    let mut ids = Vec::new();
    for (seq, path) in segments {
        if seq < from_seq {
            continue;
        }
        let content = std::fs::read(&path).unwrap();
        let start = if seq == from_seq { from_offset } else { 0 };
        // A torn last line (the kill landed mid-append) is not an event.
        for line in content[start..].split(|b| *b == b'\n') {
            if let Ok(event) = EncodedEvent::from_json(Bytes::copy_from_slice(line)) {
                ids.push(event.id());
            }
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_replays_its_spool_after_restart() {
    use tokio::io::AsyncBufReadExt;

    let mut pg = PgServer::new();
    PostgresBackend::builder(pg.url())
        .build()
        .unwrap()
        .prepare()
        .await
        .unwrap();
    tokio::task::block_in_place(|| pg.stop());
    let spool_dir = SpoolDir::new();
    let spool = &spool_dir.0;

    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            CHILD,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, pg.url())
        .env(CHILD_SPOOL, spool)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut emitted: Vec<uuid::Uuid> = Vec::new();
    let mut spooled = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while spooled < 60 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the child spooled only {spooled} events"
        );
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the child stopped reporting")
            .unwrap()
            .expect("the child exited before it was killed");
        if let Some(id) = line.strip_prefix("id ") {
            emitted.push(id.parse().unwrap());
        } else if let Some(n) = line.strip_prefix("spooled ") {
            spooled = n.parse().unwrap();
        }
    }
    // SIGKILL mid-stream: no shutdown, no flush.
    child.kill().await.unwrap();
    child.wait().await.unwrap();
    // What the child printed between the last line read and the kill is still in the pipe:
    // those events were reported too (on a loaded machine the child can run several more
    // requests before the kill lands).
    while let Ok(Some(line)) = lines.next_line().await {
        // A line the kill cut short names no event.
        if let Some(Ok(id)) = line.strip_prefix("id ").map(str::parse) {
            emitted.push(id);
        }
    }
    // Nothing was ever confirmed (the database was down throughout), so every event on disk
    // must arrive.
    let spooled_ids = read_spool(spool);
    assert!(
        spooled_ids.len() >= spooled,
        "{} events on disk, the child reported {spooled}",
        spooled_ids.len()
    );
    let reported: BTreeSet<_> = emitted.iter().collect();
    let unreported = spooled_ids
        .iter()
        .filter(|id| !reported.contains(id))
        .count();
    assert!(
        unreported <= 2,
        "{unreported} spooled events the child never reported"
    );
    let must_arrive = &spooled_ids[..];

    tokio::task::block_in_place(|| pg.start());
    let backend = PostgresBackend::builder(pg.url()).build().unwrap();
    let delivery = Delivery::builder(backend)
        .spool_dir(spool)
        .backoff(quick_backoff())
        .build()
        .unwrap();
    let stats = delivery.stats();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("restarted-api")
        .writer(delivery)
        .writer(memory.clone())
        .build()
        .unwrap();
    let addr = support::serve(orders_app(&auditor)).await;
    let client = support::client();
    for i in 0..5 {
        client
            .get(format!("http://{addr}/orders?after-restart={i}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }
    let fresh: Vec<uuid::Uuid> = support::events(&memory, 5)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    wait_for_rows(&pg, "replay after the restart", |ids| {
        must_arrive.iter().chain(&fresh).all(|id| ids.contains(id))
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while stats.spooled_events() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool never emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    auditor.shutdown().await;

    let (rows, distinct) = count(&pg, "oauth_audit_events").await;
    assert_eq!(rows, distinct, "an event was stored twice");
    // Everything spooled arrived, and the new process's own events; nothing else can.
    assert_eq!(rows as usize, must_arrive.len() + fresh.len());
    let services: Vec<String> = column(
        &pg,
        "SELECT DISTINCT event->'service'->>'name' FROM oauth_audit_events ORDER BY 1",
        &[],
    )
    .await;
    assert_eq!(services, ["crashing-api", "restarted-api"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_starting_together_create_the_schema_once() {
    let pg = PgServer::new();
    let starts = (0..6).map(|i| {
        let url = pg.url();
        tokio::spawn(async move {
            // Two writers per table, three tables in one new schema.
            let mut backend = PostgresBackend::builder(url)
                .schema("shared")
                .table(format!("events_{}", i % 3))
                .build()
                .unwrap();
            backend.prepare().await?;
            backend.send(&[event_at(Timestamp::now(), "alice")]).await
        })
    });
    for start in starts.collect::<Vec<_>>() {
        start.await.unwrap().unwrap();
    }
    let versions = pg
        .client()
        .await
        .query(
            "SELECT table_name FROM shared.oauth_audit_schema ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(versions.len(), 3);
    for table in ["shared.events_0", "shared.events_1", "shared.events_2"] {
        assert_eq!(count(&pg, table).await, (2, 2), "{table}");
    }
}

/// The SQLSTATE a statement fails with, or `None` when it succeeds; an open transaction is
/// rolled back either way.
async fn attempt(client: &tokio_postgres::Client, sql: &str) -> Option<String> {
    let result = client.batch_execute(sql).await;
    let _ = client.batch_execute("ROLLBACK").await;
    result
        .err()
        .map(|error| error.code().expect("a server error").code().to_owned())
}

/// Statements that try to remove or change stored events, with every session setting a
/// role can make. `{t}` is the events table, `{p}` one of its partitions (or the table).
const TAMPERING: &[&str] = &[
    "SET oauth_audit.retention_cutoff = 'infinity'; DELETE FROM {t}",
    "BEGIN; SELECT set_config('oauth_audit.retention_cutoff', 'infinity', true); DELETE FROM {t} WHERE time < now()",
    "BEGIN; SET LOCAL oauth_audit.retention_cutoff = '3000-01-01'; DELETE FROM {p}",
    "SET oauth_audit.retention_cutoff = 'infinity'; UPDATE {t} SET kind = 'Forged'",
    "SET session_replication_role = replica; DELETE FROM {t}",
    "TRUNCATE {t}",
    "TRUNCATE {p}",
];

/// Statements only the owner may run (the owner is trusted, see docs/security.md).
const OWNER_ONLY: &[&str] = &[
    "ALTER TABLE {t} DISABLE TRIGGER oauth_audit_append_only",
    "UPDATE {s}.oauth_audit_schema SET retention = '1 second'",
    "DROP TABLE {p}",
];

#[tokio::test]
async fn no_session_setting_unlocks_deletion_and_retention_still_works() {
    let pg = PgServer::new();
    pg.client()
        .await
        .batch_execute(
            "CREATE ROLE audit_owner LOGIN; GRANT CREATE ON DATABASE postgres TO audit_owner;
             CREATE ROLE audit_writer LOGIN; CREATE ROLE careless LOGIN;",
        )
        .await
        .unwrap();
    let as_role = |role: &str| pg.url().replace("user=audit ", &format!("user={role} "));
    let thirty_days = Duration::from_secs(30 * DAY as u64);
    for (table, partitioning) in [
        ("events", Partitioning::Daily),
        ("plain", Partitioning::None),
    ] {
        let qualified = format!("audit.{table}");
        // The owner creates the table and records the retention.
        PostgresBackend::builder(as_role("audit_owner"))
            .schema("audit")
            .table(table)
            .partitioning(partitioning)
            .retention(thirty_days)
            .build()
            .unwrap()
            .prepare()
            .await
            .unwrap();
        let owner = pg.client_as("audit_owner").await;
        // The grants docs/config.md gives a writer, and a role granted everything on the table.
        owner
            .batch_execute(&format!(
                "GRANT USAGE ON SCHEMA audit TO audit_writer, careless;
                 GRANT SELECT, INSERT ON {qualified} TO audit_writer;
                 GRANT SELECT ON audit.oauth_audit_schema TO audit_writer;
                 GRANT EXECUTE ON FUNCTION audit.oauth_audit_create_partition(text, date),
                     audit.oauth_audit_retention(text) TO audit_writer;
                 GRANT ALL ON {qualified}, audit.oauth_audit_schema TO careless;"
            ))
            .await
            .unwrap();

        // A writer that does not own the table stores events of any age (it creates their
        // partitions through the owner's function).
        let batch: Vec<EncodedEvent> = [0, 10, 40, 400]
            .into_iter()
            .map(|days| event_at(days_ago(days), &format!("{days}-days-ago")))
            .collect();
        let mut writer = PostgresBackend::builder(as_role("audit_writer"))
            .schema("audit")
            .table(table)
            .partitioning(partitioning)
            .build()
            .unwrap();
        writer.send(&batch).await.unwrap();
        assert_eq!(count(&pg, &qualified).await, (4, 4), "{table}");

        // The partition holding the newest event (the table itself without partitioning).
        let partition: String = pg
            .client()
            .await
            .query_one(
                &format!(
                    "SELECT 'audit.' || relname FROM pg_class WHERE oid = \
                     (SELECT tableoid FROM {qualified} ORDER BY time DESC LIMIT 1)"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let fill = |sql: &str| {
            sql.replace("{t}", &qualified)
                .replace("{p}", &partition)
                .replace("{s}", "audit")
        };
        for role in ["audit_writer", "careless", "audit_owner"] {
            let client = pg.client_as(role).await;
            let statements = TAMPERING.iter().chain(if role == "audit_owner" {
                &[][..]
            } else {
                OWNER_ONLY
            });
            for sql in statements.map(|sql| fill(sql)) {
                assert_eq!(
                    attempt(&client, &sql).await.as_deref(),
                    Some("42501"),
                    "{role} ran {sql}"
                );
            }
            // Retention runs with the owner's recorded setting whoever calls it, so calling
            // it early removes nothing that is not due.
            if role != "careless" {
                client
                    .query_one("SELECT audit.oauth_audit_retention($1)", &[&table])
                    .await
                    .unwrap();
            }
        }
        assert_eq!(
            attempt(
                &pg.client_as("careless").await,
                &format!("SELECT audit.oauth_audit_retention('{table}')")
            )
            .await
            .as_deref(),
            Some("42501"),
            "careless was not granted the retention function"
        );
        assert_eq!(
            count(&pg, &qualified).await.0,
            2,
            "{table}: only the two events past the recorded 30 days may go"
        );

        // A writer configured with a shorter retention cannot shorten the owner's.
        let mut eager = PostgresBackend::builder(as_role("audit_writer"))
            .schema("audit")
            .table(table)
            .partitioning(partitioning)
            .retention(Duration::from_secs(DAY as u64))
            .build()
            .unwrap();
        eager.send(&batch[..1]).await.unwrap();
        let subjects: Vec<String> = column(
            &pg,
            &format!("SELECT subject FROM {qualified} ORDER BY time DESC"),
            &[],
        )
        .await;
        assert_eq!(subjects, ["0-days-ago", "10-days-ago"], "{table}");
    }
}

/// The DDL of layout version 1 (as this crate ran it until the trigger stopped honouring a
/// session setting), for a monthly partitioned `public.legacy`.
const V1_DDL: &str = "
    CREATE TABLE oauth_audit_schema (
        table_name text PRIMARY KEY,
        version integer NOT NULL,
        partitioning text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE legacy (
        id uuid NOT NULL,
        time timestamptz NOT NULL,
        kind text NOT NULL,
        outcome text GENERATED ALWAYS AS (event->>'outcome') STORED,
        subject text GENERATED ALWAYS AS (event->'actor'->>'subject') STORED,
        client_id text GENERATED ALWAYS AS (event->'actor'->>'client_id') STORED,
        source_ip inet GENERATED ALWAYS AS ((event->'source'->>'ip')::inet) STORED,
        event jsonb NOT NULL,
        inserted_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (id, time)
    ) PARTITION BY RANGE (time);
    CREATE INDEX legacy_time ON legacy (time);
    CREATE OR REPLACE FUNCTION public.oauth_audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $fn$
    BEGIN
        IF TG_OP = 'DELETE' AND OLD.time <
            NULLIF(current_setting('oauth_audit.retention_cutoff', true), '')::timestamptz
        THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'oauth-audit: % on %.% refused: audit events are append-only',
            TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $fn$;
    CREATE OR REPLACE TRIGGER oauth_audit_append_only BEFORE UPDATE OR DELETE ON legacy
        FOR EACH ROW EXECUTE FUNCTION public.oauth_audit_append_only();
    CREATE OR REPLACE TRIGGER oauth_audit_no_truncate BEFORE TRUNCATE ON legacy
        FOR EACH STATEMENT EXECUTE FUNCTION public.oauth_audit_append_only();
    INSERT INTO oauth_audit_schema (table_name, version, partitioning) VALUES ('legacy', 1, 'monthly');
";

#[tokio::test]
async fn a_table_created_by_version_1_is_migrated_and_closed() {
    let pg = PgServer::new();
    let admin = pg.client().await;
    admin.batch_execute(V1_DDL).await.unwrap();
    // Partitions as version 1 created them: this month's and one from 14 months ago.
    use chrono::Datelike;
    let now = chrono::Utc::now().date_naive();
    let this_month = now.with_day(1).unwrap();
    let old_month = this_month
        .checked_sub_months(chrono::Months::new(14))
        .unwrap();
    for start in [this_month, old_month] {
        let end = start.checked_add_months(chrono::Months::new(1)).unwrap();
        let name = format!("legacy_p{}", start.format("%Y%m"));
        admin
            .batch_execute(&format!(
                "CREATE TABLE {name} PARTITION OF legacy
                     FOR VALUES FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00');
                 CREATE OR REPLACE TRIGGER oauth_audit_no_truncate BEFORE TRUNCATE ON {name}
                     FOR EACH STATEMENT EXECUTE FUNCTION public.oauth_audit_append_only();"
            ))
            .await
            .unwrap();
    }
    admin
        .batch_execute(
            "INSERT INTO legacy (id, time, kind, event) VALUES
                 (gen_random_uuid(), now(), 'TokenRevoked', '{\"actor\": {\"subject\": \"recent\"}}'),
                 (gen_random_uuid(), now() - interval '14 months', 'TokenRevoked', '{\"actor\": {\"subject\": \"old\"}}');
             CREATE ROLE careless LOGIN;
             GRANT ALL ON legacy, oauth_audit_schema TO careless;",
        )
        .await
        .unwrap();
    let careless = pg.client_as("careless").await;
    let bypass = "BEGIN; SET LOCAL oauth_audit.retention_cutoff = 'infinity'; DELETE FROM legacy";
    // The fixture really is version 1: its trigger yields to the session setting.
    assert_eq!(attempt(&careless, bypass).await, None);

    // A role that does not own the table cannot migrate it, and says so.
    let as_careless = pg.url().replace("user=audit ", "user=careless ");
    let error = PostgresBackend::builder(as_careless)
        .table("legacy")
        .build()
        .unwrap()
        .prepare()
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("migrated to 2 by its owner"),
        "{error}"
    );

    // The owner's writer migrates at start-up, then applies the retention it records.
    let mut owner = PostgresBackend::builder(pg.url())
        .table("legacy")
        .retention(Duration::from_secs(365 * DAY as u64))
        .build()
        .unwrap();
    owner.prepare().await.unwrap();
    let row = admin
        .query_one(
            "SELECT version, extract(epoch FROM retention)::bigint FROM oauth_audit_schema \
             WHERE table_name = 'legacy'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    assert_eq!(row.get::<_, i64>(1), 365 * DAY);
    let subjects: Vec<String> = admin
        .query("SELECT subject FROM legacy", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        subjects,
        ["recent"],
        "the 14-month-old partition is past retention"
    );

    // The same session setting no longer unlocks anything, on the table or its old partitions.
    let partition = format!("legacy_p{}", this_month.format("%Y%m"));
    for sql in [
        bypass.to_owned(),
        format!(
            "BEGIN; SET LOCAL oauth_audit.retention_cutoff = 'infinity'; DELETE FROM {partition}"
        ),
        format!("TRUNCATE {partition}"),
        "UPDATE legacy SET kind = 'Forged'".to_owned(),
    ] {
        assert_eq!(
            attempt(&careless, &sql).await.as_deref(),
            Some("42501"),
            "{sql}"
        );
    }
    owner
        .send(&[event_at(Timestamp::now(), "after-migration")])
        .await
        .unwrap();
    assert_eq!(count(&pg, "legacy").await, (2, 2));
}

#[tokio::test]
async fn tls_verify_full_delivers_and_untrusted_servers_are_refused() {
    let (pg, tls) = PgServer::with_tls();
    let base = |host: &str| {
        format!(
            "host={host} hostaddr=127.0.0.1 port={} user=audit dbname=postgres",
            pg.port()
        )
    };
    let ca = tls.ca.display();

    // verify-full: the chain and the name, in both connection string forms.
    let mut connected = Vec::new();
    for url in [
        format!("{} sslmode=verify-full sslrootcert={ca}", base("localhost")),
        format!(
            "postgres://audit@localhost:{}/postgres?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}",
            pg.port()
        ),
    ] {
        let mut backend = PostgresBackend::builder(url).build().unwrap();
        backend
            .send(&[event_at(Timestamp::now(), "over-tls")])
            .await
            .unwrap();
        connected.push(backend);
    }
    assert_eq!(count(&pg, "oauth_audit_events").await.0, 2);
    // The server saw only TLS connections from the backend.
    let row = pg
        .client()
        .await
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'oauth-audit'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    assert!(row.get::<_, bool>(1), "a backend connection without TLS");

    pg.client()
        .await
        .batch_execute("CREATE ROLE tls_client LOGIN SUPERUSER")
        .await
        .unwrap();
    // Accepted: verify-ca checks the chain, not the name; require encrypts without checking
    // (libpq's meaning); a client certificate for a role that needs one.
    for url in [
        format!("{} sslmode=verify-ca sslrootcert={ca}", base("127.0.0.1")),
        format!("{} sslmode=require", base("127.0.0.1")),
        format!(
            "{} user=tls_client sslmode=verify-full sslrootcert={ca} sslcert={} sslkey={}",
            base("localhost"),
            tls.client_cert.display(),
            tls.client_key.display()
        ),
    ] {
        let mut backend = PostgresBackend::builder(url.clone()).build().unwrap();
        backend
            .prepare()
            .await
            .unwrap_or_else(|error| panic!("{url}: {error}"));
    }

    // Refused, with the reason in the error.
    let other = tls.other_ca.display();
    for (url, reason) in [
        (
            format!("{} sslmode=verify-full sslrootcert={ca}", base("127.0.0.1")),
            "not valid for name",
        ),
        (
            format!(
                "{} sslmode=verify-full sslrootcert={other}",
                base("localhost")
            ),
            "UnknownIssuer",
        ),
        (
            format!(
                "{} sslmode=verify-ca sslrootcert={other}",
                base("localhost")
            ),
            "UnknownIssuer",
        ),
        // With a root, even prefer checks the chain (as libpq does).
        (
            format!("{} sslmode=prefer sslrootcert={other}", base("localhost")),
            "UnknownIssuer",
        ),
        (
            format!(
                "{} user=tls_client sslmode=verify-full sslrootcert={ca}",
                base("localhost")
            ),
            "certificate",
        ),
    ] {
        let error = PostgresBackend::builder(url.clone())
            .build()
            .unwrap()
            .prepare()
            .await
            .expect_err(&url);
        assert!(error.is_retryable(), "{url}: {error}");
        assert!(error.to_string().contains(reason), "{url}: {error}");
    }
}

#[tokio::test]
async fn require_on_a_server_without_tls_fails_clearly() {
    let pg = PgServer::new();
    let url = pg.url().replace("sslmode=disable", "sslmode=require");
    let error = PostgresBackend::builder(url)
        .build()
        .unwrap()
        .prepare()
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains("server does not support TLS"),
        "{error}"
    );
    assert_eq!(stored_ids(&pg).await.len(), 0);
}

/// The smallest batch the backend splits over two connections (two parts of 64 events).
const SPLIT_FROM: usize = 128;

/// The server processes of the backends connected with `application_name`, oldest first.
async fn backend_pids(pg: &PgServer, application: &str) -> Vec<i32> {
    column(
        pg,
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY backend_start",
        &[&application],
    )
    .await
}

/// Valid JSON that `jsonb` refuses (a NUL character).
fn nul_event() -> EncodedEvent {
    EncodedEvent::from_json(Bytes::from(format!(
        r#"{{"schema":"oauth-audit/1","id":"{}","time":"{}","kind":"TokenRevoked","outcome":"success","note":"a\u0000b"}}"#,
        uuid::Uuid::now_v7(),
        Timestamp::now()
    )))
    .unwrap()
}

#[tokio::test]
async fn a_large_batch_spreads_over_connections_and_lands_once() {
    let pg = PgServer::new();
    let url = format!("{} application_name=spread", pg.url());
    let mut backend = PostgresBackend::builder(&url)
        .partitioning(Partitioning::Daily)
        .connections(4)
        .build()
        .unwrap();
    // Five days of events: neighbouring parts need the same new partitions and create them
    // at the same time, each on its own connection.
    let batch: Vec<EncodedEvent> = (0..2000)
        .map(|i| event_at(days_ago(i * 5 / 2000), &format!("user-{i}")))
        .collect();
    backend.send(&batch).await.unwrap();
    assert_eq!(count(&pg, "oauth_audit_events").await, (2000, 2000));
    assert_eq!(backend_pids(&pg, "spread").await.len(), 4);
    let shown = format!("{backend:?}");
    assert!(shown.contains("connections: 4, connected: 4"), "{shown}");
    let days: BTreeSet<String> = column(
        &pg,
        "SELECT DISTINCT to_char(time AT TIME ZONE 'UTC', 'YYYYMMDD') FROM oauth_audit_events",
        &[],
    )
    .await;
    let existing = partitions(&pg, "oauth_audit_events").await;
    for day in &days {
        assert!(
            existing.contains(&format!("oauth_audit_events_p{day}")),
            "{day} missing from {existing:?}"
        );
    }

    // Sent again, whole and overlapping (a retry, a replay): nothing twice.
    backend.send(&batch).await.unwrap();
    backend.send(&batch[700..1700]).await.unwrap();
    assert_eq!(count(&pg, "oauth_audit_events").await, (2000, 2000));

    // A batch too small to split takes one connection.
    let small_url = format!("{} application_name=small", pg.url());
    let mut small = PostgresBackend::builder(&small_url)
        .partitioning(Partitioning::Daily)
        .connections(4)
        .build()
        .unwrap();
    let few: Vec<EncodedEvent> = (0..SPLIT_FROM - 1)
        .map(|i| event_at(Timestamp::now(), &format!("few-{i}")))
        .collect();
    small.send(&few).await.unwrap();
    assert_eq!(backend_pids(&pg, "small").await.len(), 1);
    assert_eq!(
        count(&pg, "oauth_audit_events").await,
        (2000 + 127, 2000 + 127)
    );

    // Refusals in several parts are counted together, and every other event is stored.
    let mut mixed: Vec<EncodedEvent> = (0..400)
        .map(|i| event_at(Timestamp::now(), &format!("mixed-{i}")))
        .collect();
    let (first, last) = (nul_event(), nul_event());
    mixed[10] = first.clone();
    mixed[390] = last;
    let error = backend.send(&mixed).await.unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    let message = error.to_string();
    assert!(message.contains("2 of 400 events refused"), "{message}");
    assert!(message.contains(&first.id().to_string()), "{message}");
    assert_eq!(
        count(&pg, "oauth_audit_events").await,
        (2000 + 127 + 398, 2000 + 127 + 398)
    );
    // Refusals keep the connections.
    assert_eq!(backend_pids(&pg, "spread").await.len(), 4);
}

/// Waits until `n` of the backend's connections wait for a lock, and returns their pids.
async fn waiting_for_lock(pg: &PgServer, application: &str, n: usize) -> Vec<i32> {
    let client = pg.client().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pids: Vec<i32> = client
            .query(
                "SELECT pid FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock' ORDER BY pid",
                &[&application],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        if pids.len() >= n {
            return pids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} connections waiting: {pids:?}",
            pids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_batch_fails_the_send_and_nothing_is_lost_or_doubled() {
    let pg = PgServer::new();
    let url = format!("{} application_name=killed", pg.url());
    let mut backend = PostgresBackend::builder(&url)
        .connections(3)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let warm: Vec<EncodedEvent> = (0..300)
        .map(|i| event_at(Timestamp::now(), &format!("warm-{i}")))
        .collect();
    backend.send(&warm).await.unwrap();
    assert_eq!(backend_pids(&pg, "killed").await.len(), 3);

    // Hold the inserts behind a lock, so that all three parts are in flight at once.
    let locker = pg.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE oauth_audit_events IN SHARE MODE")
        .await
        .unwrap();
    let batch: Vec<EncodedEvent> = (0..900)
        .map(|i| event_at(Timestamp::now(), &format!("batch-{i}")))
        .collect();
    let sending = tokio::spawn(async move {
        let result = backend.send(&batch).await;
        (backend, batch, result)
    });
    let waiting = waiting_for_lock(&pg, "killed", 3).await;
    let killed: bool = pg
        .client()
        .await
        .query_one("SELECT pg_terminate_backend($1)", &[&waiting[1]])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    locker.batch_execute("COMMIT").await.unwrap();

    let (mut backend, batch, result) = sending.await.unwrap();
    let error = result.unwrap_err();
    assert!(error.is_retryable(), "{error}");
    // The two other parts were committed; the killed connection's part was not.
    assert_eq!(count(&pg, "oauth_audit_events").await, (900, 900));
    let shown = format!("{backend:?}");
    assert!(shown.contains("connected: 2"), "{shown}");
    // The retry (what Delivery does) stores the missing part only, on a new connection.
    backend.send(&batch).await.unwrap();
    assert_eq!(count(&pg, "oauth_audit_events").await, (1200, 1200));
    let pids = backend_pids(&pg, "killed").await;
    assert_eq!(pids.len(), 3);
    assert!(!pids.contains(&waiting[1]));

    // The same through Delivery: a connection killed while it inserts is retried, and every
    // emitted event is stored once.
    let url = format!("{} application_name=delivered", pg.url());
    let backend = PostgresBackend::builder(&url)
        .table("delivered")
        .connections(3)
        .build()
        .unwrap();
    let delivery = Delivery::builder(backend)
        .backoff(quick_backoff())
        .build()
        .unwrap();
    let stats = delivery.stats();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .batch_size(500)
        .writer(delivery)
        .writer(memory.clone())
        .build()
        .unwrap();
    let emit = |range: std::ops::Range<usize>| {
        for i in range {
            let mut event = AuditEvent::new(
                service(),
                Timestamp::now(),
                EventKind::ResourceAccessed,
                Outcome::Success,
            );
            event.actor.subject = Some(format!("user-{i}"));
            auditor.emit(event);
        }
    };
    emit(0..500);
    wait_for_table(&pg, "delivered", 1).await;
    locker
        .batch_execute("BEGIN; LOCK TABLE delivered IN SHARE MODE")
        .await
        .unwrap();
    emit(500..2000);
    let waiting = waiting_for_lock(&pg, "delivered", 1).await;
    pg.client()
        .await
        .execute("SELECT pg_terminate_backend($1)", &[&waiting[0]])
        .await
        .unwrap();
    locker.batch_execute("COMMIT").await.unwrap();
    let emitted: BTreeSet<uuid::Uuid> = support::events(&memory, 2000)
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(emitted.len(), 2000);
    auditor.shutdown().await;
    assert_eq!(count(&pg, "delivered").await, (2000, 2000));
    let stored: BTreeSet<uuid::Uuid> = column(&pg, "SELECT id FROM delivered", &[]).await;
    assert_eq!(stored, emitted);
    assert!(
        stats.failures() >= 1,
        "the killed connection failed no send"
    );
    assert_eq!(stats.dropped_total(), 0);
}

/// Waits until `table` holds at least `rows` rows.
async fn wait_for_table(pg: &PgServer, table: &str, rows: i64) {
    let client = pg.client().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .unwrap()
            .get(0);
        if exists {
            let stored: i64 = client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get(0);
            if stored >= rows {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{table}: fewer than {rows} rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
