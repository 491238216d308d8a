//! Resident memory with a stalled writer: 100,000 audited requests while the only writer
//! never completes a write. The queue bound (`queue_capacity`) must cap what is held.
//!
//! `cargo run --release --example memory_bound` (part of `scripts/bench`).

use std::convert::Infallible;
use std::future::pending;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use oauth_audit::event::AuditEvent;
use oauth_audit::writer::{AuditWriter, Auditor, WriteError};
use oauth_audit::{AuditLayer, RequestBody};
use tower::{service_fn, Service, ServiceBuilder, ServiceExt};

/// A writer whose first write never finishes.
struct Stalled;

impl AuditWriter for Stalled {
    fn name(&self) -> &str {
        "stalled"
    }
    async fn write(&mut self, _batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        pending().await
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    const CAPACITY: usize = 8192;
    const REQUESTS: usize = 100_000;
    let auditor = Auditor::builder()
        .queue_capacity(CAPACITY)
        .writer(Stalled)
        .build()
        .expect("auditor");
    let mut svc = ServiceBuilder::new()
        .layer(AuditLayer::new(auditor.clone()))
        .service(service_fn(
            |_req: Request<RequestBody<Full<Bytes>>>| async {
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"[]"))))
            },
        ));
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsInNjb3BlIjoib3JkZXJzOnJlYWQifQ.c2ln";
    let start = rss_kib();
    let mut full = 0;
    for i in 0..REQUESTS {
        if i == CAPACITY + 1000 {
            // The queue is full from here on: what follows is dropped, not held.
            full = rss_kib();
        }
        let req = Request::get("/api/orders")
            .header("authorization", format!("Bearer {token}"))
            .header("user-agent", "memory-bound/1.0")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let res = svc
            .ready()
            .await
            .expect("ready")
            .call(req)
            .await
            .expect("response");
        res.into_body().collect().await.expect("body");
    }
    let end = rss_kib();
    let stats = auditor.stats();
    println!(
        "memory with a stalled writer: {REQUESTS} requests, queue bound {CAPACITY} events; \
         RSS {start} KiB at start, {full} KiB once the queue is full, {end} KiB after all \
         requests (+{} KiB past the full queue); queued {}, dropped {}",
        end.saturating_sub(full),
        stats.writers[0].queued,
        stats.writers[0].dropped
    );
}
