//! Chaining in the pipeline: links, checkpoints (by count, by time, at shutdown, copied to a
//! file and a URL), restarts with and without a state file, and drop announcements.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oauth_audit::chain::{check_announcement, Chaining, CheckpointNote, SigningKey};
use oauth_audit::event::{AuditEvent, EventHash, EventKind, Outcome, Timestamp};
use oauth_audit::writer::{
    AuditWriter, Auditor, JsonLines, MemoryWriter, WriteError, WriterOptions,
};
use serde_json::Value;

#[cfg(unix)]
#[path = "support/full_disk.rs"]
mod full_disk;

fn event(auditor: &Auditor, n: usize) -> AuditEvent {
    let mut event = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Success,
    );
    event.labels.insert("n".into(), n.to_string());
    event
}

fn read_lines(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Checks every link of every stream in `events` (in order) and returns the hash of the
/// last event of each stream.
fn check_links(events: &[Value]) -> std::collections::HashMap<String, (u64, String)> {
    let mut heads = std::collections::HashMap::<String, (u64, String)>::new();
    for event in events {
        let Some(chain) = event.get("chain") else {
            assert_eq!(
                event["kind"], "AuditEventsDropped",
                "only drop reports are unchained"
            );
            continue;
        };
        let stream = chain["stream"].as_str().unwrap().to_owned();
        let seq = chain["seq"].as_u64().unwrap();
        match heads.get(&stream) {
            Some((last, hash)) => {
                assert_eq!(seq, last + 1, "seq follows in {stream}");
                assert_eq!(chain["prev"].as_str().unwrap(), hash, "link at seq {seq}");
            }
            None => assert!(chain.get("prev").is_none() || seq > 1),
        }
        let hash = EventHash::of_json(event).unwrap().to_string();
        heads.insert(stream, (seq, hash));
    }
    heads
}

#[tokio::test]
async fn every_event_is_linked_and_sealed_by_signed_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("orders-api").unwrap();
    let path = dir.path().join("audit.jsonl");
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .chain(
            Chaining::new()
                .signing_key(key.clone())
                .checkpoint_every(10)
                .checkpoint_file(dir.path().join("checkpoints.jsonl")),
        )
        .writer(JsonLines::file(&path).await.unwrap())
        .writer(memory.clone())
        .build()
        .unwrap();
    for n in 0..25 {
        auditor.emit(event(&auditor, n));
    }
    auditor.shutdown().await;

    let lines = read_lines(&path);
    assert_eq!(lines, memory.json(), "every sink carries the same chain");
    // 25 events: a checkpoint after the 10th; the next ten count the checkpoint itself
    // as sealed, so the second follows the 20th; the last comes at shutdown.
    let kinds: Vec<_> = lines.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    let checkpoints: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| **k == "AuditCheckpoint")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(checkpoints, [10, 21, 27], "{kinds:?}");
    assert_eq!(lines.len(), 28);
    let heads = check_links(&lines);
    assert_eq!(heads.len(), 1, "one stream");

    for index in checkpoints {
        let checkpoint = &lines[index]["checkpoint"];
        let covered = &lines[index - 1];
        assert_eq!(checkpoint["seq"], covered["chain"]["seq"]);
        assert_eq!(
            checkpoint["hash"].as_str().unwrap(),
            EventHash::of_json(covered).unwrap().to_string()
        );
        assert_eq!(lines[index]["chain"]["prev"], checkpoint["hash"]);
        let note =
            CheckpointNote::open(checkpoint["note"].as_str().unwrap(), &[key.verifying_key()])
                .unwrap();
        assert_eq!(note.size, checkpoint["seq"].as_u64().unwrap());
        assert_eq!(note.hash.to_string(), checkpoint["hash"].as_str().unwrap());
        assert_eq!(
            note.origin,
            format!("oauth-audit/{}", checkpoint["stream"].as_str().unwrap())
        );
    }
    // The checkpoint file holds the same checkpoints, readable by its owner only.
    let copies = read_lines(&dir.path().join("checkpoints.jsonl"));
    let in_log: Vec<_> = lines
        .iter()
        .filter(|e| e["kind"] == "AuditCheckpoint")
        .cloned()
        .collect();
    assert_eq!(copies, in_log);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("checkpoints.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn a_quiet_stream_is_sealed_by_time_and_an_idle_one_is_not_sealed_again() {
    let key = SigningKey::generate("orders-api").unwrap();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .chain(
            Chaining::new()
                .signing_key(key)
                .checkpoint_every(1000)
                .checkpoint_interval(Duration::from_millis(200)),
        )
        .writer(memory.clone())
        .build()
        .unwrap();
    auditor.emit(event(&auditor, 0));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !memory
        .events()
        .iter()
        .any(|e| e.kind == EventKind::AuditCheckpoint)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint by time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing new: no more checkpoints, however long it stays idle, nor at shutdown.
    tokio::time::sleep(Duration::from_millis(700)).await;
    auditor.shutdown().await;
    let kinds: Vec<_> = memory.events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::ResourceAccessed, EventKind::AuditCheckpoint]
    );
}

#[tokio::test]
async fn a_state_file_continues_the_stream_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate("orders-api").unwrap();
    let state = dir.path().join("chain.state");
    let path = dir.path().join("audit.jsonl");
    for run in 0..3 {
        let chaining = Chaining::new().signing_key(key.clone()).state_file(&state);
        let auditor = Auditor::builder()
            .chain(chaining.clone())
            .writer(JsonLines::file(&path).await.unwrap())
            .build()
            .unwrap();
        // Two auditors cannot continue one stream.
        let second = Auditor::builder()
            .chain(chaining)
            .writer(MemoryWriter::new())
            .build();
        assert!(second.is_err(), "the state file is locked while in use");
        for n in 0..5 {
            auditor.emit(event(&auditor, run * 10 + n));
        }
        auditor.shutdown().await;
    }
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 18, "3 runs of 5 events and a checkpoint");
    let heads = check_links(&lines);
    assert_eq!(heads.len(), 1, "one stream across three runs");
    assert_eq!(heads.values().next().unwrap().0, 18);
}

/// Where [`a_state_file_that_cannot_be_written_is_not_continued`] runs its auditor: set only
/// in the child process it starts.
const UNWRITABLE_STATE: &str = "OAUTH_AUDIT_TEST_UNWRITABLE_STATE";

/// The auditor's half of [`a_state_file_that_cannot_be_written_is_not_continued`]: a no-op
/// unless run as its child, where no write to a file succeeds.
#[tokio::test]
async fn unwritable_state_child() {
    let Some(state) = std::env::var_os(UNWRITABLE_STATE) else {
        return;
    };
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .chain(Chaining::new().state_file(std::path::PathBuf::from(state)))
        .writer(memory.clone())
        .build()
        .unwrap();
    for n in 0..2 {
        auditor.emit(event(&auditor, n));
    }
    auditor.shutdown().await;
    // The stream was continued from the file; only saving the new place failed.
    let seqs: Vec<u64> = memory
        .events()
        .iter()
        .map(|e| e.chain.as_ref().unwrap().seq)
        .collect();
    assert_eq!(seqs, [4, 5]);
}

/// A state file that cannot be written (a full disk) would still name an earlier event: a
/// restart would continue the stream from there, with sequence numbers already used. It is
/// emptied instead, and the restart starts a new stream.
#[cfg(unix)]
#[tokio::test]
async fn a_state_file_that_cannot_be_written_is_not_continued() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("chain.state");
    let path = dir.path().join("audit.jsonl");
    let run = |n: usize| {
        let state = state.clone();
        let path = path.clone();
        async move {
            let auditor = Auditor::builder()
                .chain(Chaining::new().state_file(&state))
                .writer(JsonLines::file(&path).await.unwrap())
                .build()
                .unwrap();
            for n in n..n + 3 {
                auditor.emit(event(&auditor, n));
            }
            auditor.shutdown().await;
        }
    };
    run(0).await;
    // Events 4 and 5 of the stream, with the file size limited to nothing.
    full_disk::run_child_under_file_size_limit(
        "unwritable_state_child",
        0,
        UNWRITABLE_STATE,
        &state,
    );
    run(10).await;
    let lines = read_lines(&path);
    let heads = check_links(&lines);
    assert_eq!(
        heads.len(),
        2,
        "the restart starts a new stream: {lines:#?}"
    );
    assert!(heads.values().all(|(seq, _)| *seq == 3));
}

#[tokio::test]
async fn without_a_state_file_each_start_is_a_new_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    for run in 0..2 {
        let auditor = Auditor::builder()
            .chain(Chaining::new())
            .writer(JsonLines::file(&path).await.unwrap())
            .build()
            .unwrap();
        auditor.emit(event(&auditor, run));
        auditor.emit(event(&auditor, run));
        auditor.shutdown().await;
    }
    let lines = read_lines(&path);
    assert_eq!(lines.len(), 4, "no key: chained, no checkpoints");
    let heads = check_links(&lines);
    assert_eq!(heads.len(), 2);
    assert!(heads.values().all(|(seq, _)| *seq == 2));
}

#[tokio::test]
async fn events_processors_add_are_chained_too() {
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .processor(|event: &mut AuditEvent| {
            event.labels.insert("seen".into(), "yes".into());
        })
        .chain(Chaining::new())
        .writer(memory.clone())
        .build()
        .unwrap();
    for n in 0..3 {
        auditor.emit(event(&auditor, n));
    }
    auditor.shutdown().await;
    let json = memory.json();
    // The hash covers what the processors wrote: it was taken after them.
    assert!(json.iter().all(|e| e["labels"]["seen"] == "yes"));
    check_links(&json);
}

/// A writer that waits for a permit before each batch: its queue fills up meanwhile.
struct Gated {
    gate: Arc<tokio::sync::Semaphore>,
    out: Arc<Mutex<Vec<Value>>>,
}

impl AuditWriter for Gated {
    fn name(&self) -> &str {
        "gated"
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        let _permit = self.gate.acquire().await;
        let mut out = self.out.lock().unwrap();
        out.extend(batch.iter().map(|e| serde_json::to_value(&**e).unwrap()));
        Ok(())
    }
}

#[tokio::test]
async fn lost_chained_events_are_announced_by_a_signed_report() {
    let key = SigningKey::generate("orders-api").unwrap();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let everything = MemoryWriter::new();
    let auditor = Auditor::builder()
        .chain(
            Chaining::new()
                .signing_key(key.clone())
                .checkpoint_every(1000),
        )
        .batch_size(4)
        .writer(everything.clone())
        .writer_with(
            Gated {
                gate: gate.clone(),
                out: out.clone(),
            },
            WriterOptions::default().queue_capacity(4),
        )
        .build()
        .unwrap();
    for n in 0..100 {
        auditor.emit(event(&auditor, n));
    }
    // Let the stage fan everything out while the gated writer is stuck.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while everything.events().len() < 100 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gate.add_permits(10_000);
    auditor.shutdown().await;

    let all: BTreeSet<u64> = everything
        .json()
        .iter()
        .filter_map(|e| e["chain"]["seq"].as_u64())
        .collect();
    let out = out.lock().unwrap().clone();
    let written: BTreeSet<u64> = out
        .iter()
        .filter_map(|e| e["chain"]["seq"].as_u64())
        .collect();
    let missing: BTreeSet<u64> = all.difference(&written).copied().collect();
    assert!(!missing.is_empty(), "the gated writer lost events");

    let reports: Vec<&Value> = out
        .iter()
        .filter(|e| e["kind"] == "AuditEventsDropped")
        .collect();
    assert!(!reports.is_empty());
    let mut announced = BTreeSet::new();
    for report in &reports {
        assert_eq!(check_announcement(report, &[key.verifying_key()]), Ok(()));
        assert!(
            report.get("chain").is_none(),
            "a sink's own report is not chained"
        );
        for range in report["dropped"]["ranges"].as_array().unwrap() {
            for seq in range["first"].as_u64().unwrap()..=range["last"].as_u64().unwrap() {
                announced.insert(seq);
            }
        }
    }
    assert_eq!(
        announced, missing,
        "the reports name exactly the lost events"
    );
    let counted: u64 = reports
        .iter()
        .map(|r| r["dropped"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, missing.len() as u64);
}

#[tokio::test]
async fn checkpoints_are_posted_to_a_url() {
    use axum::{routing::post, Router};

    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let app = Router::new().route(
        "/checkpoints",
        post(move |body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = SigningKey::generate("orders-api").unwrap();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .chain(
            Chaining::new()
                .signing_key(key.clone())
                .checkpoint_every(5)
                .checkpoint_url(format!("http://{addr}/checkpoints")),
        )
        .writer(memory.clone())
        .build()
        .unwrap();
    for n in 0..10 {
        auditor.emit(event(&auditor, n));
    }
    auditor.shutdown().await;
    let in_log: Vec<Value> = memory
        .json()
        .into_iter()
        .filter(|e| e["kind"] == "AuditCheckpoint")
        .collect();
    assert_eq!(
        in_log.len(),
        2,
        "after the 5th and the 10th; nothing new at shutdown"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while received.lock().unwrap().len() < in_log.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "checkpoints not posted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*received.lock().unwrap(), in_log);
}

/// The checkpoint made at shutdown is the one that seals the end of the log: a process
/// that exits once `shutdown` returns must not leave it unposted.
#[tokio::test]
async fn shutdown_waits_for_the_last_checkpoint_to_be_posted() {
    use axum::{routing::post, Router};

    let received = Arc::new(Mutex::new(Vec::<Value>::new()));
    let sink = received.clone();
    let app = Router::new().route(
        "/checkpoints",
        post(move |body: axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                // A notary a little slower than the pipeline.
                tokio::time::sleep(Duration::from_millis(100)).await;
                sink.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    for writers in [1, 2] {
        received.lock().unwrap().clear();
        let memory = MemoryWriter::new();
        let mut builder = Auditor::builder()
            .chain(
                Chaining::new()
                    .signing_key(SigningKey::generate("orders-api").unwrap())
                    .checkpoint_url(format!("http://{addr}/checkpoints")),
            )
            .writer(memory.clone());
        if writers == 2 {
            builder = builder.writer(MemoryWriter::new());
        }
        let auditor = builder.build().unwrap();
        for n in 0..3 {
            auditor.emit(event(&auditor, n));
        }
        auditor.shutdown().await;
        let last = memory.json().pop().unwrap();
        assert_eq!(last["kind"], "AuditCheckpoint");
        assert_eq!(*received.lock().unwrap(), [last], "{writers} writer(s)");
    }
}

/// A chained event is serialised once, in its RFC 8785 form: the line a file holds is the
/// very bytes that were hashed, and a copy of an event does not carry them along.
#[tokio::test]
async fn files_hold_the_bytes_that_were_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .chain(Chaining::new())
        .writer(JsonLines::file(&path).await.unwrap())
        .writer(memory.clone())
        .build()
        .unwrap();
    for n in 0..5 {
        auditor.emit(event(&auditor, n));
    }
    // An event taken back from a writer and changed is serialised afresh.
    let mut reused = (*memory_first(&memory).await).clone();
    reused.labels.insert("n".into(), "changed".into());
    auditor.emit(reused);
    auditor.shutdown().await;

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6);
    for pair in lines.windows(2) {
        let next: Value = serde_json::from_str(pair[1]).unwrap();
        assert_eq!(
            next["chain"]["prev"].as_str().unwrap(),
            EventHash::of_bytes(pair[0].as_bytes()).to_string(),
            "the hash is over the line as written"
        );
        let canonical = oauth_audit::event::canonical_json(&next).unwrap();
        assert_eq!(canonical, pair[1].as_bytes(), "lines are in RFC 8785 form");
    }
    let last: Value = serde_json::from_str(lines[5]).unwrap();
    assert_eq!(last["labels"]["n"], "changed");
    assert_eq!(last["chain"]["seq"], 6);
}

async fn memory_first(memory: &MemoryWriter) -> Arc<AuditEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(first) = memory.events().first() {
            return first.clone();
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Events lost before the chain numbered them (the pipeline's own queue full) are counted
/// by a drop report with no ranges: signed all the same, so that `verify --key` can refuse
/// any unsigned one as forged.
#[tokio::test]
async fn drop_reports_without_sequence_numbers_are_signed_too() {
    let key = SigningKey::generate("orders-api").unwrap();
    let memory = MemoryWriter::new();
    let auditor = Auditor::builder()
        .chain(Chaining::new().signing_key(key.clone()))
        .queue_capacity(4)
        .writer(memory.clone())
        .build()
        .unwrap();
    // A current-thread runtime: the pipeline does not run while this loop does, so the
    // queue in front of the chain is full after 4 events.
    for n in 0..50 {
        auditor.emit(event(&auditor, n));
    }
    auditor.shutdown().await;
    let events = memory.json();
    let reports: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "AuditEventsDropped")
        .collect();
    assert!(!reports.is_empty(), "no drop report");
    let mut counted = 0;
    for report in reports {
        let ranges = report["dropped"]["ranges"].as_array().map_or(0, Vec::len);
        assert_eq!(ranges, 0, "lost before chaining: no numbers");
        assert_eq!(check_announcement(report, &[key.verifying_key()]), Ok(()));
        counted += report["dropped"]["count"].as_u64().unwrap();
    }
    assert_eq!(counted, 46);
}

/// The chain's state and checkpoint files are never opened through a symbolic link: one
/// planted where either should be is a configuration error that says so, and the file it
/// points to is left as it was (the state file would be emptied and rewritten, the
/// checkpoint file appended to).
#[cfg(unix)]
#[tokio::test]
async fn a_chain_file_that_is_a_symbolic_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    let victim_text = "someone else's file\n";
    std::fs::write(&victim, victim_text).unwrap();
    for (name, chaining) in [
        (
            "chain.state",
            Chaining::new().state_file(dir.path().join("chain.state")),
        ),
        (
            "checkpoints.jsonl",
            Chaining::new()
                .signing_key(SigningKey::generate("orders-api").unwrap())
                .checkpoint_file(dir.path().join("checkpoints.jsonl")),
        ),
    ] {
        std::os::unix::fs::symlink(&victim, dir.path().join(name)).unwrap();
        let error = Auditor::builder()
            .chain(chaining)
            .writer(MemoryWriter::new())
            .build()
            .expect_err("a symbolic link is refused");
        assert!(
            error.to_string().contains("symbolic link"),
            "{name}: {error}"
        );
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            victim_text,
            "{name}"
        );
    }
}

/// A chain `state_file` or `checkpoint_file` someone else pre-created (who could then make
/// a restart continue a stream of their choosing, or read and alter the checkpoints) is a
/// configuration error that names the file and its owner; the process's own file is used.
/// (The tests run as root, which can give a file away: uid 65534.)
#[cfg(unix)]
#[tokio::test]
async fn a_chain_file_someone_else_owns_is_refused() {
    use std::os::unix::fs::MetadataExt as _;

    let dir = tempfile::tempdir().unwrap();
    for (name, chaining) in [
        (
            "chain.state",
            Chaining::new().state_file(dir.path().join("chain.state")),
        ),
        (
            "checkpoints.jsonl",
            Chaining::new()
                .signing_key(SigningKey::generate("orders-api").unwrap())
                .checkpoint_file(dir.path().join("checkpoints.jsonl")),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, "").unwrap();
        let uid = std::fs::metadata(&path).unwrap().uid();
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        let error = Auditor::builder()
            .chain(chaining.clone())
            .writer(MemoryWriter::new())
            .build()
            .expect_err("someone else's file is refused");
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains("uid 65534"),
            "{name}: {message}"
        );
        std::os::unix::fs::chown(&path, Some(uid), None).unwrap();
        let auditor = Auditor::builder()
            .chain(chaining)
            .writer(MemoryWriter::new())
            .build()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        auditor.shutdown().await;
    }
}
