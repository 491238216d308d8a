//! At-least-once delivery: retries, the on-disk spool, replay in order, drop reports, and
//! recovery after a crash, against a backend the tests switch down and up.

mod support;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use oauth_audit::delivery::{Backoff, Delivery, EncodedEvent};
use oauth_audit::event::{AuditEvent, DropReason, EventKind, Outcome, ServiceInfo, Timestamp};
use oauth_audit::writer::Auditor;
use support::crash::{self, ChildWriter};
use support::flaky_backend::{FlakyBackend, Mode};
use uuid::Uuid;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        TempDir(
            std::env::temp_dir().join(format!("oauth-audit-delivery-{name}-{}", Uuid::now_v7())),
        )
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn segments(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return Vec::new();
        };
        let mut segments: Vec<_> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "jsonl")
                    && p.file_stem()
                        .is_some_and(|s| s.to_str().unwrap().bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        segments.sort();
        segments
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn service() -> Arc<ServiceInfo> {
    Arc::new(ServiceInfo::new("delivery-test"))
}

fn events(n: usize, kind: EventKind) -> Vec<Arc<AuditEvent>> {
    let service = service();
    (0..n)
        .map(|_| {
            Arc::new(AuditEvent::new(
                service.clone(),
                Timestamp::now(),
                kind,
                Outcome::Success,
            ))
        })
        .collect()
}

fn ids(events: &[Arc<AuditEvent>]) -> Vec<Uuid> {
    events.iter().map(|e| e.id).collect()
}

fn fast() -> Backoff {
    Backoff::exponential(Duration::from_millis(1), Duration::from_millis(20))
}

/// Polls `condition` (bounded, generous for a loaded machine).
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Flushes until the spool is empty, as the writer's task does while it is idle.
async fn drain<B: oauth_audit::delivery::Backend>(delivery: &mut Delivery<B>) {
    let stats = delivery.stats();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        delivery.flush().await.unwrap();
        if stats.spooled_events() == 0 && delivery.wake_after().is_none() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the spool did not drain: {} events left",
            stats.spooled_events()
        );
        if let Some(wait) = delivery.wake_after() {
            tokio::time::sleep(wait).await;
        }
    }
}

fn count_by_id(received: &[EncodedEvent]) -> HashMap<Uuid, usize> {
    let mut counts = HashMap::new();
    for event in received {
        *counts.entry(event.id()).or_default() += 1;
    }
    counts
}

fn dropped_reports(backend: &FlakyBackend) -> Vec<serde_json::Value> {
    backend
        .json()
        .into_iter()
        .filter(|e| e["kind"] == "AuditEventsDropped")
        .collect()
}

async fn with_timeout<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), future)
        .await
        .expect("the test took over two minutes")
}

#[tokio::test]
async fn an_outage_is_spooled_and_replayed_in_order_exactly_once() {
    with_timeout(async {
        let dir = TempDir::new("outage");
        let backend = FlakyBackend::new(Mode::Down);
        let delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .spool_segment_bytes(8 * 1024)
            .backoff(fast())
            .build()
            .unwrap();
        let stats = delivery.stats();
        let auditor = Auditor::builder()
            .service_name("delivery-test")
            .batch_size(16)
            .writer(delivery)
            .build()
            .unwrap();

        let mut emitted = Vec::new();
        for event in events(300, EventKind::TokenRevoked) {
            emitted.push(event.id);
            auditor.emit(Arc::unwrap_or_clone(event));
        }
        eventually("all 300 events are spooled", || {
            stats.spooled_events() == 300
        })
        .await;
        assert!(backend.received().is_empty());
        assert!(dir.segments().len() > 1, "the spool rolled over segments");
        assert!(stats.retries() > 0);

        backend.set(Mode::Up);
        // No new events: the writer's own wake-ups replay the spool.
        eventually("the spool is replayed", || backend.received().len() >= 300).await;
        eventually("the spool is empty", || stats.spooled_events() == 0).await;
        assert_eq!(backend.ids(), emitted, "replayed in order");
        assert!(count_by_id(&backend.received()).values().all(|n| *n == 1));
        assert!(dir.segments().is_empty(), "confirmed segments are deleted");
        assert_eq!(stats.spooled_bytes(), 0);
        assert_eq!(stats.dropped_total(), 0);
        assert_eq!(stats.delivered(), 300);

        let later = events(5, EventKind::TokenRevoked);
        for event in &later {
            auditor.emit(AuditEvent::clone(event));
        }
        auditor.shutdown().await;
        assert_eq!(backend.received().len(), 305);
        assert_eq!(backend.ids()[300..], ids(&later));
    })
    .await;
}

#[tokio::test]
async fn new_events_never_overtake_spooled_ones() {
    with_timeout(async {
        let dir = TempDir::new("order");
        let backend = FlakyBackend::new(Mode::Down);
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .max_batch(4)
            .backoff(Backoff::exponential(
                Duration::from_millis(300),
                Duration::from_millis(300),
            ))
            .build()
            .unwrap();
        let stats = delivery.stats();
        let first = events(10, EventKind::TokenRevoked);
        delivery.write(&first).await.unwrap();
        assert_eq!(
            stats.spooled_events(),
            10,
            "write returned: everything is spooled"
        );
        assert!(backend.received().is_empty());

        // The backend is back, but the first events are still spooled.
        backend.set(Mode::Up);
        let second = events(10, EventKind::AccessTokenIssued);
        delivery.write(&second).await.unwrap();
        let third = events(3, EventKind::TokenIntrospected);
        delivery.write(&third).await.unwrap();
        drain(&mut delivery).await;

        let expected: Vec<Uuid> = [ids(&first), ids(&second), ids(&third)].concat();
        assert_eq!(backend.ids(), expected);
        assert_eq!(stats.delivered(), 23);
        assert!(dir.segments().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_full_spool_drops_the_excess_and_says_so() {
    with_timeout(async {
        let dir = TempDir::new("full");
        let backend = FlakyBackend::new(Mode::Down);
        let batch = events(15, EventKind::TokenRevoked);
        let line = |e: &Arc<AuditEvent>| EncodedEvent::encode(e).unwrap().json().len() as u64 + 1;
        // Room for exactly the first ten events.
        let room: u64 = batch[..10].iter().map(line).sum::<u64>() + line(&batch[10]) - 1;
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .max_spool_bytes(room)
            .backoff(fast())
            .build()
            .unwrap();
        let stats = delivery.stats();
        delivery.write(&batch).await.unwrap();
        assert_eq!(stats.spooled_events(), 10);
        assert_eq!(stats.dropped(DropReason::SpoolFull), 5);
        assert_eq!(stats.dropped_total(), 5);

        backend.set(Mode::Up);
        drain(&mut delivery).await;
        let after = events(3, EventKind::TokenRevoked);
        delivery.write(&after).await.unwrap();

        let received = backend.ids();
        assert_eq!(
            received[..10],
            ids(&batch)[..10],
            "what fit arrives in order"
        );
        let reports = dropped_reports(&backend);
        assert_eq!(reports.len(), 1, "{reports:#?}");
        assert_eq!(reports[0]["dropped"]["count"], 5);
        assert_eq!(reports[0]["dropped"]["reason"], "spool_full");
        assert_eq!(reports[0]["dropped"]["sink"], "flaky");
        assert_eq!(reports[0]["service"]["name"], "delivery-test");
        assert_eq!(received[11..], ids(&after));
        assert_eq!(received.len(), 14, "nothing else is lost or added");
        for lost in &batch[10..] {
            assert!(!received.contains(&lost.id));
        }
        assert_eq!(stats.dropped(DropReason::SpoolFull), 5);
    })
    .await;
}

#[tokio::test]
async fn the_drop_report_waits_for_room_in_the_spool() {
    with_timeout(async {
        let dir = TempDir::new("report-waits");
        let backend = FlakyBackend::new(Mode::Down);
        let first = events(4, EventKind::TokenRevoked);
        let line = EncodedEvent::encode(&first[0]).unwrap().json().len() as u64 + 1;
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .max_spool_bytes(line * 4)
            .backoff(fast())
            .max_batch(2)
            .build()
            .unwrap();
        let stats = delivery.stats();
        delivery.write(&first).await.unwrap();
        delivery
            .write(&events(2, EventKind::TokenRevoked))
            .await
            .unwrap();
        assert_eq!(stats.dropped(DropReason::SpoolFull), 2);
        assert_eq!(stats.spooled_events(), 4, "no room for the report yet");

        // Two events confirmed, then the backend is down again: the report takes their room.
        backend.set(Mode::UpFor(1));
        eventually_flush(&mut delivery, || backend.received().len() == 2).await;
        assert_eq!(stats.spooled_events(), 3, "two left plus the report");
        backend.set(Mode::Up);
        drain(&mut delivery).await;

        let received = backend.json();
        assert_eq!(received.len(), 5);
        assert_eq!(backend.ids()[..4], ids(&first));
        assert_eq!(received[4]["kind"], "AuditEventsDropped");
        assert_eq!(received[4]["dropped"]["count"], 2);
    })
    .await;
}

async fn eventually_flush<B: oauth_audit::delivery::Backend>(
    delivery: &mut Delivery<B>,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        delivery.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn rejected_batches_are_dropped_and_reported() {
    with_timeout(async {
        let dir = TempDir::new("rejected");
        let backend = FlakyBackend::new(Mode::RejectKind(EventKind::LoginFailed));
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .backoff(fast())
            .build()
            .unwrap();
        let stats = delivery.stats();
        let bad = events(4, EventKind::LoginFailed);
        delivery.write(&bad).await.unwrap();
        assert_eq!(stats.dropped(DropReason::Rejected), 4);
        assert_eq!(stats.spooled_events(), 0, "a rejection is not retried");
        let good = events(2, EventKind::TokenRevoked);
        delivery.write(&good).await.unwrap();

        let received = backend.json();
        assert_eq!(received.len(), 3, "{received:#?}");
        assert_eq!(received[0]["kind"], "AuditEventsDropped");
        assert_eq!(received[0]["dropped"]["reason"], "rejected");
        assert_eq!(received[0]["dropped"]["count"], 4);
        assert_eq!(backend.ids()[1..], ids(&good));

        // A spooled batch that is rejected at replay is dropped too, and the rest goes on.
        backend.set(Mode::Down);
        let spooled_good = events(2, EventKind::TokenRevoked);
        let spooled_bad = events(1, EventKind::LoginFailed);
        delivery.write(&spooled_good).await.unwrap();
        delivery.write(&spooled_bad).await.unwrap();
        let last = events(1, EventKind::TokenRevoked);
        delivery.write(&last).await.unwrap();
        assert_eq!(stats.spooled_events(), 4);
        backend.set(Mode::RejectKind(EventKind::LoginFailed));
        drain(&mut delivery).await;
        // The bad event is isolated: its neighbours in the batch still arrive.
        let received = backend.ids();
        assert_eq!(received.len(), 7, "{:#?}", backend.json());
        assert_eq!(received[3..5], ids(&spooled_good));
        assert_eq!(received[5], last[0].id);
        assert!(!received.contains(&spooled_bad[0].id));
        assert_eq!(stats.dropped(DropReason::Rejected), 5);
        let reports = dropped_reports(&backend);
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1]["dropped"]["count"], 1);
        assert_eq!(backend.json()[6]["kind"], "AuditEventsDropped");
    })
    .await;
}

/// A batch refused as a whole is sent again in halves to find the event at fault; when the
/// backend goes down part way, the halves it had confirmed are not sent again with the rest
/// (a collector that does not deduplicate, Splunk HEC or JSON lines, stored them twice), on
/// the live path and when the spool is replayed alike.
#[tokio::test]
async fn halves_confirmed_before_an_outage_are_not_sent_again() {
    with_timeout(async {
        let dir = TempDir::new("halves");
        let backend = FlakyBackend::new(Mode::RejectKindUpFor(EventKind::LoginFailed, 1));
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .backoff(fast())
            .build()
            .unwrap();
        let stats = delivery.stats();
        // [good, good] is confirmed, [good, bad] meets the outage.
        let mut batch = events(3, EventKind::TokenRevoked);
        batch.extend(events(1, EventKind::LoginFailed));
        delivery.write(&batch).await.unwrap();
        assert_eq!(backend.ids(), ids(&batch[..2]));
        assert_eq!(
            stats.spooled_events(),
            2,
            "only what was not confirmed waits"
        );
        backend.set(Mode::RejectKind(EventKind::LoginFailed));
        drain(&mut delivery).await;
        let received = backend.ids();
        assert_eq!(
            received[..3],
            ids(&batch[..3]),
            "each good event once, in order"
        );
        assert_eq!(count_by_id(&backend.received()).values().max(), Some(&1));
        assert_eq!(stats.dropped(DropReason::Rejected), 1);

        // The same from the spool: a replayed batch loses its confirmed half.
        backend.set(Mode::Down);
        let mut spooled = events(3, EventKind::TokenRevoked);
        spooled.extend(events(1, EventKind::LoginFailed));
        delivery.write(&spooled).await.unwrap();
        assert_eq!(stats.spooled_events(), 4);
        let before = backend.ids().len();
        backend.set(Mode::RejectKindUpFor(EventKind::LoginFailed, 1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while backend.ids().len() < before + 2 {
            assert!(tokio::time::Instant::now() < deadline, "no half confirmed");
            delivery.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        backend.set(Mode::RejectKind(EventKind::LoginFailed));
        drain(&mut delivery).await;
        assert_eq!(stats.spooled_events(), 0);
        let good: Vec<_> = ids(&spooled[..3]);
        let received = backend.ids();
        assert!(good.iter().all(|id| received.contains(id)), "{received:?}");
        assert_eq!(count_by_id(&backend.received()).values().max(), Some(&1));
        assert_eq!(stats.dropped(DropReason::Rejected), 2);
    })
    .await;
}

#[tokio::test]
async fn a_restart_resumes_at_the_cursor_without_duplicates() {
    with_timeout(async {
        let dir = TempDir::new("cursor");
        let backend = FlakyBackend::new(Mode::Down);
        let written = events(20, EventKind::TokenRevoked);
        {
            let mut delivery = Delivery::builder(backend.clone())
                .spool_dir(dir.path())
                .max_batch(5)
                .backoff(fast())
                .build()
                .unwrap();
            delivery.write(&written).await.unwrap();
            assert_eq!(delivery.stats().spooled_events(), 20);
            // Two batches are confirmed, then the backend fails again; then the process stops.
            backend.set(Mode::UpFor(2));
            eventually_flush(&mut delivery, || backend.received().len() == 10).await;
            assert_eq!(delivery.stats().spooled_events(), 10);
        }
        backend.set(Mode::Up);
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .max_batch(5)
            .backoff(fast())
            .build()
            .unwrap();
        assert_eq!(delivery.stats().spooled_events(), 10, "recovered from disk");
        assert!(
            delivery.wake_after().is_some(),
            "a spool left over is replayed unprompted"
        );
        // New events after the restart queue behind the old ones.
        let fresh = events(2, EventKind::TokenRevoked);
        delivery.write(&fresh).await.unwrap();
        drain(&mut delivery).await;
        assert_eq!(backend.ids(), [ids(&written), ids(&fresh)].concat());
        assert!(dir.segments().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_torn_line_and_garbage_are_survived() {
    with_timeout(async {
        let dir = TempDir::new("torn");
        let backend = FlakyBackend::new(Mode::Down);
        let written = events(5, EventKind::TokenRevoked);
        {
            let mut delivery = Delivery::builder(backend.clone())
                .spool_dir(dir.path())
                .backoff(fast())
                .build()
                .unwrap();
            delivery.write(&written[..3]).await.unwrap();
        }
        // Corruption in the middle, then a line cut short by a crash at the end.
        let segment = dir.segments().pop().unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes.extend_from_slice(b"\x00\x00garbage\xff\n");
        bytes.extend_from_slice(EncodedEvent::encode(&written[3]).unwrap().json());
        bytes.push(b'\n');
        let torn = EncodedEvent::encode(&written[4]).unwrap();
        bytes.extend_from_slice(&torn.json()[..torn.json().len() / 2]);
        std::fs::write(&segment, bytes).unwrap();

        backend.set(Mode::Up);
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .backoff(fast())
            .build()
            .unwrap();
        let stats = delivery.stats();
        drain(&mut delivery).await;
        assert_eq!(backend.ids(), ids(&written[..4]));
        assert_eq!(stats.corrupt_lines(), 1);
        let quarantine = std::fs::read(dir.path().join("quarantine.jsonl")).unwrap();
        assert_eq!(quarantine, b"\x00\x00garbage\xff\n");
        // The spool goes on from a clean line.
        backend.set(Mode::Down);
        delivery.write(&written[4..]).await.unwrap();
        backend.set(Mode::Up);
        drain(&mut delivery).await;
        assert_eq!(backend.ids(), ids(&written));
    })
    .await;
}

#[tokio::test]
async fn without_a_spool_dir_events_wait_in_memory_a_bounded_time() {
    with_timeout(async {
        let backend = FlakyBackend::new(Mode::Down);
        let mut delivery = Delivery::builder(backend.clone())
            .backoff(fast())
            .memory_retries(3)
            .build()
            .unwrap();
        let stats = delivery.stats();
        let first = events(5, EventKind::TokenRevoked);
        delivery.write(&first).await.unwrap();
        assert_eq!(stats.spooled_events(), 5);
        backend.set(Mode::Up);
        drain(&mut delivery).await;
        assert_eq!(backend.ids(), ids(&first));

        backend.set(Mode::Down);
        let lost = events(3, EventKind::TokenRevoked);
        delivery.write(&lost).await.unwrap();
        let attempts = backend.attempts();
        eventually_flush(&mut delivery, || {
            stats.dropped(DropReason::WriteFailed) == 3
        })
        .await;
        assert!(
            backend.attempts() - attempts >= 3,
            "retried before giving up"
        );
        assert_eq!(stats.spooled_events(), 1, "only the drop report waits");
        backend.set(Mode::Up);
        drain(&mut delivery).await;
        let reports = dropped_reports(&backend);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0]["dropped"]["reason"], "write_failed");
        assert_eq!(reports[0]["dropped"]["count"], 3);
    })
    .await;
}

#[tokio::test]
async fn a_memory_backlog_left_at_shutdown_is_counted_as_lost() {
    with_timeout(async {
        let backend = FlakyBackend::new(Mode::Down);
        let mut delivery = Delivery::builder(backend.clone())
            .backoff(fast())
            .build()
            .unwrap();
        let stats = delivery.stats();
        delivery
            .write(&events(4, EventKind::TokenRevoked))
            .await
            .unwrap();
        delivery.flush().await.unwrap();
        assert_eq!(stats.spooled_events(), 4);
        assert_eq!(stats.dropped_total(), 0);
        drop(delivery);
        assert_eq!(stats.dropped(DropReason::WriteFailed), 4);
        assert_eq!(stats.spooled_events(), 0);
        assert!(backend.ids().is_empty());
    })
    .await;
}

#[tokio::test]
async fn two_writers_cannot_share_a_spool() {
    let dir = TempDir::new("lock");
    let first = Delivery::builder(FlakyBackend::new(Mode::Up))
        .spool_dir(dir.path())
        .build()
        .unwrap();
    let err = Delivery::builder(FlakyBackend::new(Mode::Up))
        .spool_dir(dir.path())
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
    drop(first);
    Delivery::builder(FlakyBackend::new(Mode::Up))
        .spool_dir(dir.path())
        .build()
        .unwrap();
}

/// A program spawned by another thread holds the process's open files, the spool's lock
/// among them, from its fork until its exec: a spool reopened meanwhile is still this
/// process's own, and opens.
#[test]
fn a_spool_reopens_while_other_threads_spawn_programs() {
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = TempDir::new("spawning");
    let stop = Arc::new(AtomicBool::new(false));
    let spawner = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut spawned = 0u32;
            while !stop.load(Ordering::Relaxed) {
                std::process::Command::new("true").status().unwrap();
                spawned += 1;
            }
            spawned
        }
    });
    let mut reopened = 0;
    while reopened < 300 {
        let delivery = Delivery::builder(FlakyBackend::new(Mode::Down))
            .spool_dir(dir.path())
            .build();
        if let Err(err) = delivery {
            stop.store(true, Ordering::Relaxed);
            panic!("reopen {reopened}: {err}");
        }
        reopened += 1;
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        spawner.join().unwrap() > 0,
        "programs were spawned meanwhile"
    );
}

#[test]
fn settings_are_checked_when_built() {
    let build = |builder: oauth_audit::delivery::DeliveryBuilder<FlakyBackend>| {
        builder.build().unwrap_err().to_string()
    };
    let backend = || FlakyBackend::new(Mode::Up);
    assert!(build(Delivery::builder(backend()).max_spool_bytes(0)).contains("max_spool_bytes"));
    assert!(build(Delivery::builder(backend()).max_batch(0)).contains("max_batch"));
    assert!(
        build(Delivery::builder(backend()).send_timeout(Duration::ZERO)).contains("send_timeout")
    );
    assert!(
        build(Delivery::builder(backend()).backoff(Backoff::exponential(
            Duration::from_secs(5),
            Duration::from_secs(1)
        )))
        .contains("backoff")
    );
    let file = std::env::temp_dir().join(format!("oauth-audit-not-a-dir-{}", Uuid::now_v7()));
    std::fs::write(&file, b"").unwrap();
    let err = build(Delivery::builder(backend()).spool_dir(&file));
    std::fs::remove_file(&file).unwrap();
    assert!(err.contains("spool_dir"), "{err}");
}

/// The child process of [`spooled_events_survive_a_kill`].
#[tokio::test]
#[ignore = "run by spooled_events_survive_a_kill as a child process"]
async fn crash_child_writer() {
    let Some(spool) = crash::child_spool_dir() else {
        return;
    };
    let delivery = Delivery::builder(FlakyBackend::new(Mode::Down))
        .spool_dir(spool)
        .spool_segment_bytes(16 * 1024)
        .inline_retries(0)
        .build()
        .unwrap();
    crash::write_until_killed(delivery, 7).await;
}

#[tokio::test]
async fn spooled_events_survive_a_kill() {
    let dir = TempDir::new("kill");
    let mut child = ChildWriter::spawn("crash_child_writer", dir.path(), &[]);
    child.wait_spooled(500, Duration::from_secs(120));
    let spooled = child.kill();
    assert!(spooled.len() >= 500);

    with_timeout(async {
        let backend = FlakyBackend::new(Mode::Up);
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .backoff(fast())
            .build()
            .unwrap();
        let recovered = delivery.stats().spooled_events() as usize;
        // At most one batch (written, its report cut short by the kill) is there unreported.
        assert!(
            recovered >= spooled.len() && recovered <= spooled.len() + 7,
            "{recovered} events in the spool, {} reported",
            spooled.len()
        );
        drain(&mut delivery).await;
        let counts = count_by_id(&backend.received());
        for id in &spooled {
            assert_eq!(counts.get(id), Some(&1), "event {id} arrives exactly once");
        }
        let received = backend.ids();
        let first_difference = received.iter().zip(&spooled).position(|(a, b)| a != b);
        assert_eq!(
            first_difference,
            None,
            "replayed out of order ({} received, {} reported)",
            received.len(),
            spooled.len()
        );
        assert!(counts.values().all(|n| *n == 1));
        assert!(dir.segments().is_empty());
    })
    .await;
}

#[test]
fn metrics_follow_the_spool_and_deliveries() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = TempDir::new("metrics");
    let backend = FlakyBackend::new(Mode::Down);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let values = |snapshotter: &metrics_util::debugging::Snapshotter| {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let labels: Vec<String> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (format!("{}{{{}}}", key.name(), labels.join(",")), value)
            })
            .collect::<HashMap<_, _>>()
    };
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let batch = events(12, EventKind::TokenRevoked);
            let line = EncodedEvent::encode(&batch[0]).unwrap().json().len() as u64 + 1;
            let mut delivery = Delivery::builder(backend.clone())
                .spool_dir(dir.path())
                .max_spool_bytes(line * 10)
                .backoff(fast())
                .build()
                .unwrap();
            delivery.write(&batch).await.unwrap();
            let seen = values(&snapshotter);
            assert_eq!(
                seen["oauth_audit_spool_events{writer=flaky}"],
                DebugValue::Gauge(10.0.into())
            );
            assert_eq!(
                seen["oauth_audit_spool_bytes{writer=flaky}"],
                DebugValue::Gauge(((line * 10) as f64).into())
            );
            assert_eq!(
                seen["oauth_audit_events_dropped_total{writer=flaky,reason=spool_full}"],
                DebugValue::Counter(2)
            );
            assert!(matches!(
                seen["oauth_audit_delivery_retries_total{writer=flaky}"],
                DebugValue::Counter(n) if n >= 1
            ));

            backend.set(Mode::Up);
            drain(&mut delivery).await;
            let seen = values(&snapshotter);
            assert_eq!(
                seen["oauth_audit_spool_events{writer=flaky}"],
                DebugValue::Gauge(0.0.into())
            );
            assert_eq!(
                seen["oauth_audit_spool_bytes{writer=flaky}"],
                DebugValue::Gauge(0.0.into())
            );
            let DebugValue::Histogram(latencies) =
                &seen["oauth_audit_delivery_seconds{writer=flaky}"]
            else {
                panic!("delivery_seconds is a histogram");
            };
            assert!(!latencies.is_empty());
            assert!(latencies.iter().all(|s| s.into_inner() >= 0.0));
        });
    });
}

#[tokio::test]
async fn shutdown_replays_briefly_and_leaves_the_rest_for_the_next_start() {
    with_timeout(async {
        let dir = TempDir::new("shutdown");
        let backend = FlakyBackend::new(Mode::Down);
        let written = events(200, EventKind::TokenRevoked);
        {
            let mut delivery = Delivery::builder(backend.clone())
                .spool_dir(dir.path())
                .build()
                .unwrap();
            delivery.write(&written).await.unwrap();
            assert_eq!(delivery.stats().spooled_events(), 200);
        }

        // A slow backend: replaying everything would take seconds.
        backend.set(Mode::Up);
        backend.set_delay(Duration::from_millis(100));
        let delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .max_batch(10)
            .build()
            .unwrap();
        let stats = delivery.stats();
        let auditor = Auditor::builder()
            .service_name("delivery-test")
            .writer(delivery)
            .build()
            .unwrap();
        auditor.shutdown().await;
        let left = stats.spooled_events();
        assert!(left > 0, "shutdown does not wait for the whole spool");
        assert_eq!(left + stats.delivered(), 200);

        backend.set_delay(Duration::ZERO);
        let mut delivery = Delivery::builder(backend.clone())
            .spool_dir(dir.path())
            .build()
            .unwrap();
        assert_eq!(delivery.stats().spooled_events(), left);
        drain(&mut delivery).await;
        assert_eq!(backend.ids(), ids(&written));
    })
    .await;
}

#[derive(Clone, Debug)]
enum Step {
    Write(usize),
    Backend(Mode),
    Flush,
    Restart,
}

/// Whatever the backend does and however often the writer restarts, every event arrives
/// exactly once and in order, as long as the spool has room.
#[test]
fn any_outage_pattern_delivers_everything_once_in_order() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let step = prop_oneof![
        (0usize..30).prop_map(Step::Write),
        Just(Step::Backend(Mode::Up)),
        Just(Step::Backend(Mode::Down)),
        (0u32..3).prop_map(|n| Step::Backend(Mode::UpFor(n))),
        Just(Step::Flush),
        Just(Step::Restart),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(Config::with_cases(40));
    runner
        .run(&proptest::collection::vec(step, 1..30), |steps| {
            runtime.block_on(async {
                let dir = TempDir::new("pattern");
                let backend = FlakyBackend::new(Mode::Up);
                // A restart reopens the spool the dropped delivery held: a blocking spool
                // task it started may still hold the spool's lock for a moment, as a
                // process that is exiting would, so the new one tries again briefly.
                let open = || async {
                    let mut attempts = 0;
                    loop {
                        let built = Delivery::builder(backend.clone())
                            .spool_dir(dir.path())
                            .spool_segment_bytes(2048)
                            .spool_fsync(false)
                            .max_batch(4)
                            .backoff(fast())
                            .build();
                        match built {
                            Ok(delivery) => return delivery,
                            Err(error)
                                if attempts < 200 && error.to_string().contains("in use") =>
                            {
                                attempts += 1;
                                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            }
                            Err(error) => panic!("{error}"),
                        }
                    }
                };
                let mut delivery = open().await;
                let mut written = Vec::new();
                for step in steps {
                    match step {
                        Step::Write(n) => {
                            let batch = events(n, EventKind::TokenRevoked);
                            written.extend(ids(&batch));
                            delivery.write(&batch).await.unwrap();
                        }
                        Step::Backend(mode) => backend.set(mode),
                        Step::Flush => delivery.flush().await.unwrap(),
                        Step::Restart => {
                            delivery.flush().await.unwrap();
                            drop(delivery);
                            delivery = open().await;
                        }
                    }
                    let stats = delivery.stats();
                    prop_assert_eq!(stats.dropped_total(), 0);
                }
                backend.set(Mode::Up);
                drain(&mut delivery).await;
                prop_assert_eq!(backend.ids(), written);
                prop_assert!(dir.segments().is_empty());
                Ok(())
            })
        })
        .unwrap();
}
