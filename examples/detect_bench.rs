//! What the default detection rules cost per event (docs/benchmarks.md, "Detection").
//!
//! ```text
//! cargo run --release --example detect_bench -- 1000000
//! ```
//!
//! Then, live: an `Auditor` with the detector and a writer that notes when each alert
//! arrives; 200 times, nine failed logins for a new user, then the tenth, timed from its
//! `emit` to the alert reaching the writer. Prints the median, p99 and worst latency.
//!
//! Makes N events shaped like a busy API's traffic (protected-route calls with 5,000
//! tokens from 2,000 addresses, and one in fifty a failed login or token request, 2,000
//! events a second) and hands each to `Detector::check` as it is made, as the pipeline
//! does, on one thread; the same loop without the detector is the baseline, and the
//! difference is the detector's cost. Three rounds each, alternately, the fastest kept.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use oauth_audit::detect::Detector;
use oauth_audit::event::{
    AuditEvent, ErrorInfo, EventKind, Outcome, ServiceInfo, Source, Timestamp, TokenDetails,
};
use oauth_audit::token::{TokenFingerprint, Verdict};
use oauth_audit::writer::{from_fn, Auditor};

struct Traffic {
    service: Arc<ServiceInfo>,
    start: i64,
    fingerprints: Vec<TokenFingerprint>,
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            service: Arc::new(ServiceInfo::default()),
            // A day ago: events are stamped 2,000 a second from then, all in the past as
            // real traffic read back is (a detector counts a time in the future as now).
            start: Timestamp::now().unix_micros() - 86_400_000_000,
            fingerprints: (0..5000)
                .map(|i| TokenFingerprint::of(&format!("token-{i}")))
                .collect(),
        }
    }

    fn event(&self, i: usize) -> AuditEvent {
        // 2,000 events a second.
        let time = Timestamp::from_unix_micros(self.start + i as i64 * 500).unwrap();
        let ip = IpAddr::V4(Ipv4Addr::new(
            10,
            1,
            (i % 2000 / 250) as u8,
            (i % 250) as u8,
        ));
        let (kind, outcome) = match i % 50 {
            0 => (EventKind::LoginFailed, Outcome::Failure),
            1 => (EventKind::TokenRequestFailed, Outcome::Failure),
            _ => (EventKind::ResourceAccessed, Outcome::Success),
        };
        let mut event = AuditEvent::new(self.service.clone(), time, kind, outcome);
        let mut source = Source::default();
        source.ip = Some(ip);
        source.user_agent = Some("orders-web/4.2".into());
        event.source = Some(source);
        match kind {
            EventKind::ResourceAccessed => {
                let mut token = TokenDetails::from_fingerprint(self.fingerprints[i % 5000]);
                token.verdict = Some(Verdict::Valid);
                event.token = Some(token.into());
                event.actor.subject = Some(format!("user-{}", i % 5000));
                event.actor.client_id = Some("orders-web".into());
            }
            EventKind::LoginFailed => {
                event.actor.subject = Some(format!("user-{}", i % 997));
            }
            _ => {
                event.grant_type = Some("client_credentials".into());
                event.actor.client_id = Some(format!("client-{}", i % 13));
                event.error = Some(ErrorInfo::new("invalid_client"));
            }
        }
        event
    }
}

/// From the `emit` of the event that crosses brute_force's threshold to the alert reaching a
/// writer, for `attacks` attacks, sorted.
fn live_latencies(attacks: usize) -> Vec<std::time::Duration> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let auditor = Auditor::builder()
            .processor(Detector::default())
            .writer(from_fn("alerts", move |event: &AuditEvent| {
                if event.kind == EventKind::SecurityAlert {
                    let _ = tx.send(Instant::now());
                }
            }))
            .build()
            .unwrap();
        let mut latencies = Vec::new();
        for attack in 0..attacks {
            let failed = || {
                let mut event = AuditEvent::new(
                    auditor.service().clone(),
                    Timestamp::now(),
                    EventKind::LoginFailed,
                    Outcome::Failure,
                );
                event.actor.subject = Some(format!("victim-{attack}"));
                let mut source = Source::default();
                source.ip = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)));
                event.source = Some(source);
                event
            };
            for _ in 0..9 {
                auditor.emit(failed());
            }
            // Let the nine pass first: what is timed is the tenth alone.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let crossing = failed();
            let start = Instant::now();
            auditor.emit(crossing);
            let arrived = rx.recv().await.unwrap();
            latencies.push(arrived - start);
        }
        auditor.shutdown().await;
        latencies.sort();
        latencies
    })
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let traffic = Traffic::new();
    let service = Arc::new(ServiceInfo::default());
    let mut best = (f64::MAX, f64::MAX);
    let mut last = None;
    for _ in 0..3 {
        let start = Instant::now();
        for i in 0..n {
            std::hint::black_box(traffic.event(i));
        }
        let baseline = start.elapsed().as_nanos() as f64 / n as f64;
        let mut detector = Detector::default();
        let mut alerts = 0;
        let start = Instant::now();
        for i in 0..n {
            alerts += detector.check(&traffic.event(i), &service).len();
        }
        let with = start.elapsed().as_nanos() as f64 / n as f64;
        best = (best.0.min(baseline), best.1.min(with));
        last = Some((alerts, detector.stats()));
    }
    let (alerts, stats) = last.unwrap_or_default();
    println!(
        "{n} events: {:.0} ns/event to make one, {:.0} with the default rules: the rules cost {:.0} ns/event; {alerts} alerts, {} groups held, {} forgotten",
        best.0,
        best.1,
        best.1 - best.0,
        stats.keys,
        stats.evicted
    );
    let latencies = live_latencies(200);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "live, {} attacks: the alert reached the writer {:?} (median), {:?} (p99), {:?} (worst) after the event that crossed the threshold was emitted",
        latencies.len(),
        at(0.5),
        at(0.99),
        latencies[latencies.len() - 1]
    );
}
