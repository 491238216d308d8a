//! No token, `Authorization` or `Cookie` value, or query string reaches any writer.

mod support;

use axum::{routing::get, Router};
use base64::Engine;
use oauth_audit::writer::{Auditor, JsonLines, MemoryWriter, TracingWriter};
use oauth_audit::AuditLayer;
use support::{client, events, serve, Buffer};

/// Every form a secret could take in a log line.
fn encodings(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut forms = vec![
        secret.to_owned(),
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_owned(),
    ];
    for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        forms.push(engine.encode(secret));
    }
    forms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_any_writer() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = std::env::temp_dir().join(format!("oauth-audit-redact-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .writer(memory.clone())
        .writer(JsonLines::file(&path).await.unwrap())
        .writer(TracingWriter::new())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/api/data", get(|| async { "data" }))
        .layer(AuditLayer::new(auditor.clone()));
    let addr = serve(app).await;

    let jwt_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"sub":"carol","scope":"read"}"#);
    let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{jwt_payload}.c2lnbmF0dXJlLXNlY3JldA");
    let opaque = "opaque-Secret-Token-7f3a9b";
    let secrets = [
        jwt.as_str(),
        opaque,
        "cookie-Secret-Value-91ab",
        "basic-Password-55c1",
        "query-Secret-88dd",
        "c2lnbmF0dXJlLXNlY3JldA",
    ];
    let http = client();
    let url = format!("http://{addr}/api/data?access_token=query-Secret-88dd");
    http.get(&url).bearer_auth(&jwt).send().await.unwrap();
    http.get(&url).bearer_auth(opaque).send().await.unwrap();
    http.get(&url)
        .header("cookie", "session=cookie-Secret-Value-91ab")
        .basic_auth("dave", Some("basic-Password-55c1"))
        .send()
        .await
        .unwrap();
    http.get(&url)
        .header(
            "authorization",
            "Bearer has spaces opaque-Secret-Token-7f3a9b",
        )
        .send()
        .await
        .unwrap();
    events(&memory, 4).await;
    auditor.shutdown().await;

    let outputs = [
        ("memory", memory.json_lines()),
        ("file", std::fs::read_to_string(&path).unwrap()),
        (
            "tracing",
            String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap(),
        ),
    ];
    for (name, output) in &outputs {
        assert!(
            output.contains("ResourceAccessed") || output.contains("AccessDenied"),
            "{name} is empty"
        );
        for secret in secrets {
            for form in encodings(secret) {
                assert!(
                    !output.contains(&form),
                    "{name} output contains a secret ({form:?})"
                );
            }
        }
    }
    // The bearer tokens are there, as fingerprints only.
    let file = &outputs[1].1;
    assert!(file.contains("\"fingerprint\":\"sha256:"));
    assert!(file.contains("\"subject\":\"carol\""));
    std::fs::remove_dir_all(dir).ok();
}
