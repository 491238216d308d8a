//! Remote writers from the configuration file: a real `nats-server` with JetStream receives
//! the proxy's events through the delivery engine; PostgreSQL and NATS tables are checked.

#[path = "../../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
use support::ports;
#[path = "../../tests/support/postgres.rs"]
#[allow(dead_code)]
mod postgres;
mod support;

use async_nats::jetstream;
use serde_json::Value;
use support::upstream::Upstream;
use support::{http, run, Proxy, TempDir};

#[tokio::test]
async fn a_nats_writer_publishes_every_event_to_jetstream() {
    let server = nats::NatsServer::start().await;
    let upstream = Upstream::start().await;
    let dir = TempDir::new("nats");
    let config = dir.write(
        "proxy.toml",
        &format!(
            r#"
service_name = "gateway"
[[writer]]
type = "nats"
servers = ["{}"]
stream = "CLI_AUDIT"
subject_prefix = "cli.audit"
[writer.delivery]
spool_dir = {:?}
spool_fsync = false
"#,
            server.url(),
            dir.path("spool").to_str().unwrap()
        ),
    );
    let mut proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    for path in ["/one", "/two"] {
        assert_eq!(
            http().get(proxy.url(path)).send().await.unwrap().status(),
            200
        );
    }
    let status = tokio::task::spawn_blocking(move || proxy.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let client = async_nats::connect(server.url()).await.unwrap();
    let js = jetstream::new(client);
    let mut stream = js.get_stream("CLI_AUDIT").await.unwrap();
    let state = stream.info().await.unwrap().state.clone();
    let mut events = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(sequence).await.unwrap();
        assert_eq!(message.subject.as_str(), "cli.audit.ResourceAccessed");
        events.push(serde_json::from_slice::<Value>(&message.payload).unwrap());
    }
    let paths: Vec<&str> = events
        .iter()
        .map(|e| e["http"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["/one", "/two"],
        "delivered once each, in order, before exit"
    );
    assert!(events.iter().all(|e| e["service"]["name"] == "gateway"));
}

#[tokio::test]
async fn a_postgres_writer_inserts_every_event() {
    let server = tokio::task::spawn_blocking(postgres::PgServer::new)
        .await
        .unwrap();
    let upstream = Upstream::start().await;
    let dir = TempDir::new("postgres");
    let config = dir.write(
        "proxy.toml",
        &format!(
            r#"
[[writer]]
type = "postgres"
url_env = "OAUTH_AUDIT_TEST_DATABASE"
table = "gateway_events"
partitioning = "daily"
[writer.delivery]
spool_dir = {:?}
"#,
            dir.path("spool").to_str().unwrap()
        ),
    );
    let url = server.url();
    let mut proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("OAUTH_AUDIT_TEST_DATABASE", url.as_str())],
    );
    for path in ["/pg-one", "/pg-two", "/pg-three"] {
        assert_eq!(
            http().get(proxy.url(path)).send().await.unwrap().status(),
            200
        );
    }
    let status = tokio::task::spawn_blocking(move || proxy.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));

    let client = server.client().await;
    let rows = client
        .query(
            "SELECT kind, event->'http'->>'path' FROM public.gateway_events ORDER BY time, id",
            &[],
        )
        .await
        .unwrap();
    let paths: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(
        paths,
        ["/pg-one", "/pg-two", "/pg-three"],
        "{}",
        server.log()
    );
    assert!(rows
        .iter()
        .all(|r| r.get::<_, String>(0) == "ResourceAccessed"));
}

#[tokio::test]
async fn a_postgres_writer_verifies_the_server_over_tls() {
    let (server, tls) = tokio::task::spawn_blocking(postgres::PgServer::with_tls)
        .await
        .unwrap();
    let upstream = Upstream::start().await;
    let dir = TempDir::new("postgres-tls");
    let config = dir.write(
        "proxy.toml",
        "[[writer]]\ntype = \"postgres\"\nurl_env = \"OAUTH_AUDIT_TEST_DATABASE\"\n",
    );
    // The certificate names localhost; the server listens on 127.0.0.1 only.
    let url = format!(
        "host=localhost hostaddr=127.0.0.1 port={} user=audit dbname=postgres \
         sslmode=verify-full sslrootcert={}",
        server.port(),
        tls.ca.display()
    );
    let mut proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[("OAUTH_AUDIT_TEST_DATABASE", url.as_str())],
    );
    assert_eq!(
        http()
            .get(proxy.url("/over-tls"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let status = tokio::task::spawn_blocking(move || proxy.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let rows = server
        .client()
        .await
        .query(
            "SELECT event->'http'->>'path' FROM public.oauth_audit_events",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{}", server.log());
    assert_eq!(rows[0].get::<_, String>(0), "/over-tls");

    // verify-full with nothing to verify against stops the start, saying what is missing.
    let unverifiable = url.replace(&format!("sslrootcert={}", tls.ca.display()), "");
    let output = run(
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:1",
            "--config",
            config.to_str().unwrap(),
        ],
        &[("OAUTH_AUDIT_TEST_DATABASE", unverifiable.as_str())],
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("writer (postgres)") && err.contains("sslrootcert"),
        "{err}"
    );
}

#[tokio::test]
async fn an_http_writer_posts_every_event_to_a_collector() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("http");
    let config = dir.write(
        "proxy.toml",
        &format!(
            r#"
[[writer]]
type = "http"
url = "{}/collect"
format = "json_lines"
gzip = false
no_proxy = true
headers = {{ "x-tenant" = "blue" }}
"#,
            upstream.url()
        ),
    );
    let mut proxy = Proxy::start(
        &[
            "--upstream",
            &upstream.url(),
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    for path in ["/h-one", "/h-two"] {
        assert_eq!(
            http().get(proxy.url(path)).send().await.unwrap().status(),
            200
        );
    }
    let status = tokio::task::spawn_blocking(move || proxy.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let bodies = upstream.collected.lock().unwrap().clone();
    let paths: Vec<String> = bodies
        .iter()
        .flat_map(|body| {
            std::str::from_utf8(body)
                .unwrap()
                .lines()
                .map(|line| {
                    serde_json::from_str::<Value>(line).unwrap()["http"]["path"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(
        paths,
        ["/h-one", "/h-two"],
        "every event posted once, before exit"
    );
}

#[test]
fn remote_writer_tables_are_checked() {
    let dir = TempDir::new("remote-config");
    // check-config builds the writers as proxy does: the variables the file names must be
    // set, and the spool directory is opened (so it lives in the test's directory).
    let spool = dir.path("spool");
    let file = dir.write(
        "ok.toml",
        &r#"
[[writer]]
type = "postgres"
url_env = "AUDIT_DATABASE_URL"
table = "events"
partitioning = "daily"
retention = "400d"
[writer.delivery]
spool_dir = "SPOOL"
max_spool_bytes = 1073741824

[[writer]]
type = "nats"
servers = ["nats://127.0.0.1:4222"]
max_age = "30d"

[[writer]]
type = "http"
url = "https://es.example:9200/_bulk"
format = "elasticsearch"
index = "oauth-audit"
api_key_env = "ES_API_KEY"
"#
        .replace("SPOOL", spool.to_str().unwrap()),
    );
    let env = [
        ("AUDIT_DATABASE_URL", "postgres://audit@127.0.0.1:1/audit"),
        ("ES_API_KEY", "aWQ6a2V5"),
    ];
    let output = run(&["check-config", file.to_str().unwrap()], &env);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(spool.is_dir(), "check-config opened the spool");
    // Without the variables, check-config says what proxy would say at start.
    let output = run(&["check-config", file.to_str().unwrap()], &env[1..]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("AUDIT_DATABASE_URL is not set"), "{err}");

    let file = dir.write(
        "bad.toml",
        "[[writer]]\ntype = \"postgres\"\nurl = \"postgres://localhost/audit\"\npartitioning = \"weekly\"\n",
    );
    let output = run(&["check-config", file.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml:4:16: key `writer.partitioning`: unknown variant `weekly`"),
        "{err}"
    );

    // A secret named by an environment variable that is not set stops the start.
    let file = dir.write(
        "env.toml",
        "[[writer]]\ntype = \"postgres\"\nurl_env = \"NO_SUCH_VARIABLE_FOR_OAUTH_AUDIT\"\n",
    );
    let output = run(
        &[
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:1",
            "--config",
            file.to_str().unwrap(),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("NO_SUCH_VARIABLE_FOR_OAUTH_AUDIT is not set"),
        "{err}"
    );
}
