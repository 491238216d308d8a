//! Shared test helpers: a real Axum server on 127.0.0.1:0 and event capture.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use oauth_audit::writer::{Auditor, MemoryWriter};
use serde_json::Value;

pub mod auth_server;

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
pub mod keys;
