//! The PostgreSQL backend against a real PostgreSQL 15 started by the test harness.
#![cfg(feature = "postgres")]

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use oauth_audit::backend::{Partitioning, PostgresBackend};
use oauth_audit::delivery::{Backend, EncodedEvent};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Source, Timestamp};
use oauth_audit::writer::{AuditWriter, Auditor, WriteError};
use oauth_audit::AuditLayer;
use support::postgres::PgServer;

const DAY: i64 = 24 * 3600;

fn service() -> Arc<ServiceInfo> {
    Arc::new(ServiceInfo {
        name: "pg-test".into(),
        instance: None,
    })
}

/// An event at `time`, with the columns extracted from it filled in.
fn event_at(time: Timestamp, subject: &str) -> EncodedEvent {
    let mut event = AuditEvent::new(service(), time, EventKind::LoginFailed, Outcome::Failure);
    event.actor.subject = Some(subject.to_owned());
    event.actor.client_id = Some("web".to_owned());
    event.source = Some(Source {
        ip: Some("203.0.113.7".parse().unwrap()),
        ..Source::default()
    });
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
    let rows = pg
        .client()
        .await
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = $1::text::regclass ORDER BY 1",
            &[&table],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// The SQLSTATE a statement fails with.
async fn sqlstate(client: &tokio_postgres::Client, sql: &str) -> String {
    let error = client.batch_execute(sql).await.unwrap_err();
    error.code().expect("a server error").code().to_owned()
}

#[tokio::test]
async fn schema_is_created_once_and_start_is_idempotent() {
    let pg = PgServer::start();
    let mut first = PostgresBackend::builder(pg.url()).build().unwrap();
    first.prepare().await.unwrap();
    // A second writer starting against the same table finds everything in place.
    let mut second = PostgresBackend::builder(pg.url()).build().unwrap();
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
    assert_eq!(versions[0].get::<_, i32>(1), 1);
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
    let pg = PgServer::start();
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
    let pg = PgServer::start();
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
    let subjects: Vec<String> = pg
        .client()
        .await
        .query(
            "SELECT subject FROM oauth_audit_events ORDER BY time DESC",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
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
    let pg = PgServer::start();
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

#[tokio::test]
async fn an_unreachable_server_is_retryable_and_reconnected() {
    let mut pg = PgServer::start();
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
    pg.start_again();
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

/// Hands each batch straight to the backend, failing the batch on any error.
struct Direct(PostgresBackend);

impl AuditWriter for Direct {
    fn name(&self) -> &str {
        "postgres"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        let encoded = batch
            .iter()
            .map(|event| EncodedEvent::encode(event))
            .collect::<Result<Vec<_>, _>>()?;
        self.0.send(&encoded).await.map_err(WriteError::backend)
    }
}

#[tokio::test]
async fn events_from_the_layer_land_with_their_columns() {
    let pg = PgServer::start();
    let backend = PostgresBackend::builder(pg.url()).build().unwrap();
    let auditor = Auditor::builder()
        .service_name("token-service")
        .writer(Direct(backend))
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
}
