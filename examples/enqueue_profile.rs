//! Enqueues events into an auditor on one thread, for an instruction counter: what a single
//! `emit` costs when nothing contends, and what the writer's side of the queue adds.
//!
//! ```text
//! cargo build --release --example enqueue_profile
//! valgrind --tool=callgrind target/release/examples/enqueue_profile MODE EVENTS
//! ```
//!
//! Modes: `build` builds every event and drops it (the common part); `emit` builds every
//! event and emits it into a queue big enough to hold them all, then shuts the auditor down,
//! which hands them to a writer that forgets them. `emit` minus `build`, divided by
//! `EVENTS`, is the queue's cost per event: the enqueue and the writer taking it out.
//!
//! `contend EVENTS THREADS` (and `contend_build`, without the queue) is what the
//! `enqueue_contending` benchmark times: `THREADS` threads named `emit-N` emitting `EVENTS`
//! each while the writer's task runs on a worker thread of its own, for a sampling profiler
//! (`perf record -g … contend 1000000 2`, then `perf report --sort comm,symbol`).

use std::hint::black_box;
use std::sync::Arc;

use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use oauth_audit::writer::{AuditWriter, Auditor, WriteError};

/// Accepts and forgets events.
struct Null;

impl AuditWriter for Null {
    fn name(&self) -> &str {
        "null"
    }
    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        black_box(batch);
        Ok(())
    }
}

/// The event the `enqueue_contending` benchmark emits.
fn event(service: &Arc<ServiceInfo>) -> AuditEvent {
    let mut e = AuditEvent::new(
        service.clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    e.request_id = Some("01a20e31-b545-730f-85a6-76a822054a95".into());
    e.actor.subject = Some("alice".into());
    e.actor.client_id = Some("web".into());
    e.scopes.granted = Some(vec!["orders:read".into(), "profile".into()].into());
    e
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "emit".into());
    let events: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20_000);
    if mode == "contend" || mode == "contend_build" {
        let threads: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
        return contend(mode == "contend", events, threads);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let service = Arc::new(ServiceInfo::new("profile"));
        let auditor = Auditor::builder()
            .queue_capacity(events.max(1))
            .writer(Null)
            .build()
            .expect("auditor");
        match mode.as_str() {
            "build" => {
                for _ in 0..events {
                    drop(black_box(event(&service)));
                }
            }
            "emit" => {
                for _ in 0..events {
                    auditor.emit(event(&service));
                }
            }
            other => panic!("unknown mode {other}: build or emit"),
        }
        auditor.shutdown().await;
        let stats = &auditor.stats().writers[0];
        println!(
            "{mode}: {events} events; written {}, dropped {}",
            stats.written, stats.dropped
        );
    });
}

/// `THREADS` threads emitting `EVENTS` each while the writer's task runs on a worker of its
/// own: what `enqueue_contending` times, for a sampling profiler.
fn contend(emit: bool, events: usize, threads: usize) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let auditor = runtime.block_on(async {
        Auditor::builder()
            .queue_capacity(1 << 16)
            .writer(Null)
            .build()
            .expect("auditor")
    });
    let service = Arc::new(ServiceInfo::new("profile"));
    std::thread::scope(|s| {
        for i in 0..threads {
            let auditor = auditor.clone();
            let service = service.clone();
            std::thread::Builder::new()
                .name(format!("emit-{i}"))
                .spawn_scoped(s, move || {
                    for _ in 0..events {
                        if emit {
                            auditor.emit(event(&service));
                        } else {
                            drop(black_box(event(&service)));
                        }
                    }
                })
                .expect("thread");
        }
    });
    runtime.block_on(auditor.shutdown());
    let stats = &auditor.stats().writers[0];
    println!(
        "{threads} threads, {events} events each; written {}, dropped {}",
        stats.written, stats.dropped
    );
}
