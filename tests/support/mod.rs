//! Shared test helpers: a real Axum server on 127.0.0.1:0 and event capture.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use oauth_audit::writer::{Auditor, MemoryWriter};
use serde_json::Value;

pub mod auth_server;
pub mod collector;
pub mod crash;
pub mod dpop_key;
pub mod echo_server;
pub mod flaky_backend;
pub mod oauth2_http;
pub mod ports;
#[cfg(feature = "postgres")]
pub mod postgres;

/// Serves `app` on a free loopback port with `ConnectInfo`, returns its address.
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    addr
}

pub fn memory_auditor() -> (Auditor, MemoryWriter) {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .service_name("test-api")
        .service_instance("test-1")
        .writer(memory.clone())
        .build()
        .unwrap();
    (auditor, memory)
}

/// Waits (bounded) until `memory` holds at least `n` events, and returns them as JSON.
pub async fn events(memory: &MemoryWriter, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events = memory.json();
        if events.len() >= n {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} events, got {}: {events:#?}",
            events.len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// A client that does not follow redirects: the tests read an authorization server's
/// `Location` themselves.
pub fn client_without_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Posts `body` as a form to `path`, following no redirect.
pub async fn post_form(addr: SocketAddr, path: &str, body: String) -> reqwest::Response {
    client_without_redirects()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Sends, in a task, a token request of 1,000 bytes marked `slow=1`: for a server that
/// holds such a request (and so its copy in the shared capture budget) until released.
pub fn hold_a_slow_request(addr: SocketAddr) -> tokio::task::JoinHandle<reqwest::Response> {
    let prefix = "slow=1&grant_type=client_credentials&client_id=a&pad=";
    tokio::spawn(post_form(
        addr,
        "/token",
        format!("{prefix}{}", "p".repeat(1000 - prefix.len())),
    ))
}

/// Serves `app` behind an `AuditLayer` with `endpoints`, its events in memory.
pub async fn serve_with_endpoints(
    app: Router,
    endpoints: oauth_audit::oauth::Endpoints,
) -> (SocketAddr, MemoryWriter) {
    let (auditor, memory) = memory_auditor();
    let layer = oauth_audit::AuditLayer::builder(auditor)
        .endpoints(endpoints)
        .build()
        .unwrap();
    (serve(app.layer(layer)).await, memory)
}
pub mod keys;

/// A `std::io::Write` into shared memory, for capturing subscriber output.
#[derive(Clone, Default)]
pub struct Buffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Buffer {
    /// A buffer that receives every log line of this process, from `INFO` up, as text: the
    /// global subscriber, so for a test binary with one test (a scoped one sees only its
    /// thread, and callsite interest cached while another test ran without one can hide a
    /// line from it).
    pub fn global_log() -> Buffer {
        let logs = Buffer::default();
        let writer = logs.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish(),
        )
        .expect("the only subscriber of this test binary");
        logs
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
#[cfg(feature = "nats")]
pub mod nats;
