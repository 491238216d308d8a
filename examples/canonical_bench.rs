//! What chaining adds per event, in instructions: `serde_json::to_writer` (what writers
//! used before every sink wrote the RFC 8785 form), that form (`Canonicalizer`), and
//! that form with its SHA-256 (what the chainer does per event). Under valgrind, SHA-256
//! runs without the CPU's SHA instructions, so `chained` counts far more than it costs. Run under callgrind,
//! which counts the same on these noisy shared cores every time:
//!
//! ```text
//! cargo build --release --example canonical_bench
//! for mode in plain canonical chained; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     --toggle-collect='canonical_bench::measure*' \
//!     target/release/examples/canonical_bench $mode 10000 2>&1 | grep -E 'Collected|per event'
//! done
//! ```
//!
//! Divide "Collected" by the number of events. Without valgrind it prints wall time.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use oauth_audit::event::{AuditEvent, Canonicalizer, ChainLink, EventHash, ServiceInfo, Timestamp};

#[path = "support/events.rs"]
mod events;

/// `writer_bench`'s event at a fixed time, chained.
fn event(service: &Arc<ServiceInfo>, i: usize) -> AuditEvent {
    let now = Timestamp::from_unix(1_796_083_200 + i as i64).expect("in range");
    let request_id = format!("0193a7c2-5b1e-7c3d-9f00-{i:012x}");
    let mut event = events::protected_route_event(service, i, now, request_id);
    event.chain = Some(Box::new(ChainLink::new(
        "0193a7c2-5b1e-7c3d-9f00-3c2a1b0d9e8f",
        i as u64 + 1,
        Some(EventHash::of_bytes(format!("{i}").as_bytes())),
    )));
    event
}

#[inline(never)]
fn measure_plain(events: &[AuditEvent], out: &mut Vec<u8>) -> usize {
    let mut total = 0;
    for event in events {
        out.clear();
        serde_json::to_writer(&mut *out, event).expect("serialises");
        total += black_box(out.len());
    }
    total
}

#[inline(never)]
fn measure_canonical(events: &[AuditEvent], canonical: &mut Canonicalizer) -> usize {
    let mut total = 0;
    for event in events {
        total += black_box(canonical.write(event).expect("serialises")).len();
    }
    total
}

#[inline(never)]
fn measure_chained(events: &[AuditEvent], canonical: &mut Canonicalizer) -> usize {
    let mut total = 0;
    for event in events {
        let json = canonical.write(event).expect("serialises");
        let hash = black_box(EventHash::of_bytes(json));
        total += json.len() + usize::from(hash.as_bytes()[0]);
    }
    total
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "plain".into());
    let n: usize = args
        .next()
        .map(|n| n.parse().expect("a number of events"))
        .unwrap_or(10_000);
    let mut service = ServiceInfo::new("orders-api");
    service.instance = Some("orders-api-7f9c".into());
    let service = Arc::new(service);
    let events: Vec<AuditEvent> = (0..n).map(|i| event(&service, i)).collect();
    let mut out = Vec::with_capacity(4096);
    let mut canonical = Canonicalizer::default();
    let started = Instant::now();
    let bytes = match mode.as_str() {
        "plain" => measure_plain(&events, &mut out),
        "canonical" => measure_canonical(&events, &mut canonical),
        "chained" => measure_chained(&events, &mut canonical),
        other => panic!("unknown mode {other}: plain, canonical or chained"),
    };
    let elapsed = started.elapsed();
    println!(
        "{mode}: {n} events, {} bytes each, {:.0} ns per event",
        bytes / n,
        elapsed.as_nanos() as f64 / n as f64
    );
}
