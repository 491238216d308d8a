//! `verify` against real trails: a corpus written by an `Auditor` with `Chaining` into a
//! `RotatingFile` that rotates and compresses, then tampered with in every way the issue
//! lists, each case on a fresh copy, with a seeded RNG (`VERIFY_SEED=<n>` replays a run).

#[cfg(feature = "postgres")]
mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oauth_audit::chain::verify::{self, Location, ProblemKind, Report, Severity, Verifier};
use oauth_audit::chain::{origin, sign_announcement, Chaining, CheckpointNote, SigningKey};
use oauth_audit::event::{
    AuditEvent, DropReason, EventHash, EventKind, Outcome, SeqRange, ServiceInfo, Timestamp,
};
use oauth_audit::writer::{Auditor, RotatingFile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "oauth-audit-verify-{name}-{}",
        uuid::Uuid::now_v7()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn seed() -> u64 {
    match std::env::var("VERIFY_SEED") {
        Ok(seed) => seed.parse().expect("VERIFY_SEED is a number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// An event with a little of everything a real one carries.
fn event(auditor: &Auditor, i: usize) -> AuditEvent {
    let (kind, outcome) = [
        (EventKind::ResourceAccessed, Outcome::Success),
        (EventKind::LoginFailed, Outcome::Failure),
        (EventKind::AccessTokenIssued, Outcome::Success),
    ][i % 3];
    let mut event = AuditEvent::new(auditor.service().clone(), Timestamp::now(), kind, outcome);
    event.actor.subject = Some(format!("user-{}", i % 97));
    event.actor.client_id = Some("web".into());
    event.request_id = Some(format!("req-{i}"));
    event.labels.insert("n".into(), i.to_string());
    event
}

/// Emits `n` events, in steps that leave the pipeline time to keep up (none is dropped).
async fn emit(auditor: &Auditor, n: usize) {
    for i in 0..n {
        auditor.emit(event(auditor, i));
        if i % 500 == 499 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
}

/// A chained, signed trail on disk.
struct Corpus {
    dir: PathBuf,
    checkpoints: PathBuf,
    key: SigningKey,
}

/// 10,000 events, a checkpoint every 500, into a directory that rotates every ~300 kB.
async fn corpus(name: &str) -> Corpus {
    let root = tempdir(name);
    let dir = root.join("log");
    let checkpoints = root.join("checkpoints.jsonl");
    let key = SigningKey::generate("corpus").unwrap();
    let writer = RotatingFile::builder(&dir)
        .max_bytes(300_000)
        .build()
        .unwrap();
    let auditor = Auditor::builder()
        .service_name("orders-api")
        .queue_capacity(32_768)
        .chain(
            Chaining::new()
                .signing_key(key.clone())
                .checkpoint_every(500)
                .checkpoint_file(&checkpoints),
        )
        .writer(writer)
        .build()
        .unwrap();
    emit(&auditor, 10_000).await;
    auditor.shutdown().await;
    assert_eq!(auditor.stats().writers[0].dropped, 0);
    Corpus {
        dir,
        checkpoints,
        key,
    }
}

/// The files of a trail with their lines, to tamper with and write back.
#[derive(Clone)]
struct Trail {
    files: Vec<TrailFile>,
}

#[derive(Clone)]
struct TrailFile {
    name: String,
    gz: bool,
    lines: Vec<String>,
}

impl Trail {
    fn read(dir: &Path) -> Trail {
        let files = verify::expand(&[dir.to_owned()]).unwrap();
        Trail {
            files: files
                .iter()
                .map(|path| {
                    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                    let gz = name.ends_with(".gz");
                    let mut text = String::new();
                    let file = std::fs::File::open(path).unwrap();
                    if gz {
                        flate2::read::GzDecoder::new(file)
                            .read_to_string(&mut text)
                            .unwrap();
                    } else {
                        std::io::BufReader::new(file)
                            .read_to_string(&mut text)
                            .unwrap();
                    }
                    TrailFile {
                        name,
                        gz,
                        lines: text.lines().map(str::to_owned).collect(),
                    }
                })
                .collect(),
        }
    }

    fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        for file in &self.files {
            let mut text = file.lines.join("\n");
            if !file.lines.is_empty() {
                text.push('\n');
            }
            let path = dir.join(&file.name);
            if file.gz {
                let out = std::fs::File::create(&path).unwrap();
                let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
                gz.write_all(text.as_bytes()).unwrap();
                gz.finish().unwrap();
            } else {
                std::fs::write(&path, text).unwrap();
            }
        }
    }

    /// (file index, line index) of every line, in order.
    fn positions(&self) -> Vec<(usize, usize)> {
        self.files
            .iter()
            .enumerate()
            .flat_map(|(f, file)| (0..file.lines.len()).map(move |l| (f, l)))
            .collect()
    }

    /// The place of line `l` (from 0) of file `f`, as the report names it, once written to
    /// `dir`.
    fn location(&self, dir: &Path, f: usize, l: usize) -> Location {
        let path = dir.join(&self.files[f].name);
        Location::line(&Location::file_name(&path), l as u64 + 1)
    }

    /// The place of the first line at or after (f, l), skipping empty files.
    fn next_location(&self, dir: &Path, mut f: usize, mut l: usize) -> Option<Location> {
        while f < self.files.len() {
            if l < self.files[f].lines.len() {
                return Some(self.location(dir, f, l));
            }
            f += 1;
            l = 0;
        }
        None
    }

    /// The place of the last line before (f, l).
    fn previous_location(&self, dir: &Path, f: usize, l: usize) -> Option<Location> {
        if l > 0 {
            return Some(self.location(dir, f, l - 1));
        }
        (0..f)
            .rev()
            .find(|&g| !self.files[g].lines.is_empty())
            .map(|g| self.location(dir, g, self.files[g].lines.len() - 1))
    }
}

fn run_verify(dir: &Path, corpus: &Corpus, with_checkpoints: bool) -> Report {
    // The drop reports these tests add name the sink "rotating".
    Verifier::new(vec![corpus.key.verifying_key()])
        .sink("rotating")
        .verify_files(
            &[dir.to_owned()],
            with_checkpoints.then_some(corpus.checkpoints.as_path()),
        )
        .unwrap()
}

/// Sets a dotted path (`actor.subject`) in a JSON event.
fn set(event: &mut Value, path: &str, value: Value) {
    let mut target = event;
    let parts: Vec<&str> = path.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        target = target
            .as_object_mut()
            .unwrap()
            .entry(part.to_string())
            .or_insert_with(|| json!({}));
    }
    target[parts[parts.len() - 1]] = value;
}

/// What a tamper case must produce: errors of `kinds` only, one of them at one of `places`.
struct Expected {
    what: String,
    kinds: Vec<ProblemKind>,
    places: Vec<Location>,
}

fn check(report: &Report, expected: &Expected, seed: u64) {
    let errors: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    let context = || {
        format!(
            "seed {seed} (VERIFY_SEED={seed} replays it), case: {}\nexpected {:?} at one of {:?}\nreport:\n{report}",
            expected.what, expected.kinds, expected.places
        )
    };
    assert!(!report.is_clean(), "not caught: {}", context());
    assert!(
        errors.iter().any(|p| p.kind == expected.kinds[0]
            && p.location
                .as_ref()
                .is_some_and(|l| expected.places.contains(l))),
        "not found at the right place: {}",
        context()
    );
    for error in &errors {
        assert!(
            expected.kinds.contains(&error.kind),
            "unexpected {error}: {}",
            context()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_tampering_is_caught_at_its_place() {
    let seed = seed();
    eprintln!("VERIFY_SEED={seed}");
    let corpus = corpus("tamper").await;
    let trail = Trail::read(&corpus.dir);
    assert!(
        trail.files.len() >= 4,
        "rotated files: {}",
        trail.files.len()
    );
    assert!(trail.files.iter().filter(|f| f.gz).count() >= 3);
    assert!(
        !trail.files.last().unwrap().gz,
        "the active file comes last"
    );

    // Untouched: nothing to report, with or without the checkpoint copies.
    for with_checkpoints in [false, true] {
        let report = run_verify(&corpus.dir, &corpus, with_checkpoints);
        assert!(report.is_clean(), "seed {seed}: {report}");
        assert_eq!(report.errors + report.warnings, 0, "seed {seed}: {report}");
        assert_eq!(report.streams, 1);
        assert_eq!(report.checkpoints, 20, "one per 500 events");
        assert_eq!(report.events, 10_020);
    }

    let positions = trail.positions();
    let other_key = SigningKey::generate("corpus").unwrap();
    let checkpoint_lines: Vec<(usize, usize)> = positions
        .iter()
        .copied()
        .filter(|&(f, l)| trail.files[f].lines[l].contains("\"AuditCheckpoint\""))
        .collect();
    let rotated: Vec<usize> = (0..trail.files.len())
        .filter(|&f| trail.files[f].gz)
        .collect();
    // Each case has its own RNG from the seed, so that two threads share the work and any
    // case replays alone.
    let cases = 112;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let run_case = |case: usize| {
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(case as u64));
        let dir = tempdir("case");
        let mut t = trail.clone();
        let expected = match case % 7 {
            0 => {
                let (f, l) = positions[rng.gen_range(0..positions.len())];
                let mut event: Value = serde_json::from_str(&t.files[f].lines[l]).unwrap();
                let mut fields = vec![
                    "time",
                    "id",
                    "severity",
                    "service.name",
                    "chain.prev",
                    "chain.seq",
                ];
                if event["kind"] == "AuditCheckpoint" {
                    fields.push("checkpoint.hash");
                } else {
                    fields.extend(["actor.subject", "labels.n", "outcome"]);
                }
                let field = fields[rng.gen_range(0..fields.len())];
                let value = match field {
                    "time" => json!("2026-01-01T00:00:00.000001Z"),
                    "id" => json!(uuid::Uuid::now_v7().to_string()),
                    "chain.prev" | "checkpoint.hash" => {
                        json!(EventHash::of_bytes(&rng.gen::<[u8; 8]>()).to_string())
                    }
                    "chain.seq" => json!(event["chain"]["seq"].as_u64().unwrap() + 7),
                    "outcome" => json!(if event["outcome"] == "success" {
                        "failure"
                    } else {
                        "success"
                    }),
                    _ => json!("mallory"),
                };
                set(&mut event, field, value);
                t.files[f].lines[l] = serde_json::to_string(&event).unwrap();
                Expected {
                    what: format!("{field} of line {} of {} edited", l + 1, t.files[f].name),
                    kinds: vec![ProblemKind::Edited],
                    places: vec![t.location(&dir, f, l)],
                }
            }
            1 => {
                let (f, l) = positions[rng.gen_range(0..positions.len())];
                t.files[f].lines.remove(l);
                let (kinds, places) = match t.next_location(&dir, f, l) {
                    Some(next) => (vec![ProblemKind::Deleted], vec![next]),
                    None => (
                        vec![ProblemKind::Truncated],
                        t.previous_location(&dir, f, l).into_iter().collect(),
                    ),
                };
                Expected {
                    what: format!("line {} of {} deleted", l + 1, t.files[f].name),
                    kinds,
                    places,
                }
            }
            2 => {
                let a = rng.gen_range(0..positions.len());
                let mut b = rng.gen_range(0..positions.len() - 1);
                if b >= a {
                    b += 1;
                }
                let ((fa, la), (fb, lb)) = (positions[a], positions[b]);
                let line_a = t.files[fa].lines[la].clone();
                t.files[fa].lines[la] = t.files[fb].lines[lb].clone();
                t.files[fb].lines[lb] = line_a;
                let (first, second) = if a < b { (a, b) } else { (b, a) };
                let mut places = Vec::new();
                // The event found too early (and, when it is the one judged, its neighbour)
                // or the one found too late.
                for index in [first, first + 1, second] {
                    let (f, l) = positions[index];
                    places.push(t.location(&dir, f, l));
                }
                Expected {
                    what: format!(
                        "line {} of {} swapped with line {} of {}",
                        la + 1,
                        t.files[fa].name,
                        lb + 1,
                        t.files[fb].name
                    ),
                    kinds: vec![ProblemKind::Reordered],
                    places,
                }
            }
            3 => {
                let (f, l) = positions[rng.gen_range(0..positions.len())];
                let copy = t.files[f].lines[l].clone();
                let at = rng.gen_range(l + 1..=t.files[f].lines.len());
                t.files[f].lines.insert(at, copy);
                Expected {
                    what: format!(
                        "line {} of {} repeated at line {}",
                        l + 1,
                        t.files[f].name,
                        at + 1
                    ),
                    kinds: vec![ProblemKind::Inserted],
                    places: vec![t.location(&dir, f, at)],
                }
            }
            4 => {
                let f = (0..t.files.len())
                    .rev()
                    .find(|&f| !t.files[f].lines.is_empty())
                    .unwrap();
                let l = rng.gen_range(0..t.files[f].lines.len());
                t.files[f].lines.truncate(l);
                Expected {
                    what: format!("{} cut after line {l}", t.files[f].name),
                    kinds: vec![ProblemKind::Truncated],
                    places: t.previous_location(&dir, f, l).into_iter().collect(),
                }
            }
            5 => {
                let f = rotated[rng.gen_range(0..rotated.len())];
                let removed = t.files.remove(f);
                let (kinds, places) = match t.next_location(&dir, f, 0) {
                    Some(next) => (vec![ProblemKind::Deleted], vec![next]),
                    None => (
                        vec![ProblemKind::Truncated],
                        t.previous_location(&dir, f, 0).into_iter().collect(),
                    ),
                };
                Expected {
                    what: format!("{} removed", removed.name),
                    kinds,
                    places,
                }
            }
            _ => {
                let (f, l) = checkpoint_lines[rng.gen_range(0..checkpoint_lines.len())];
                let mut event: Value = serde_json::from_str(&t.files[f].lines[l]).unwrap();
                let stream = event["checkpoint"]["stream"].as_str().unwrap().to_owned();
                let note = CheckpointNote {
                    origin: origin(&stream),
                    size: event["checkpoint"]["seq"].as_u64().unwrap(),
                    hash: event["checkpoint"]["hash"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap(),
                    time: event["time"].as_str().unwrap().to_owned(),
                }
                .sign(&other_key);
                event["checkpoint"]["note"] = json!(note);
                t.files[f].lines[l] = serde_json::to_string(&event).unwrap();
                Expected {
                    what: format!(
                        "checkpoint at line {} of {} re-signed with another key",
                        l + 1,
                        t.files[f].name
                    ),
                    // Its hash changed too, but that is the same change: reported once.
                    kinds: vec![ProblemKind::UnknownKey],
                    places: vec![t.location(&dir, f, l)],
                }
            }
        };
        let expected = Expected {
            what: format!("case {case}: {}", expected.what),
            ..expected
        };
        t.write(&dir);
        let report = run_verify(&dir, &corpus, true);
        check(&report, &expected, seed);
        std::fs::remove_dir_all(&dir).unwrap();
    };
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let case = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if case >= cases {
                    break;
                }
                run_case(case);
            });
        }
    });
    std::fs::remove_dir_all(corpus.dir.parent().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_drops_are_gaps_and_unannounced_ones_deletions() {
    let corpus = corpus("drops").await;
    let mut trail = Trail::read(&corpus.dir);
    // Events 100..=104 of the stream, lost (from the first file) and announced.
    let first = &mut trail.files[0];
    let at = first
        .lines
        .iter()
        .position(|l| serde_json::from_str::<Value>(l).unwrap()["chain"]["seq"] == 100)
        .unwrap();
    let stream = serde_json::from_str::<Value>(&first.lines[at]).unwrap()["chain"]["stream"]
        .as_str()
        .unwrap()
        .to_owned();
    first.lines.drain(at..at + 5);

    let unannounced = tempdir("unannounced");
    trail.write(&unannounced);
    let report = run_verify(&unannounced, &corpus, true);
    let deleted: Vec<_> = report.of_kind(ProblemKind::Deleted).collect();
    assert_eq!(deleted.len(), 1, "{report}");
    assert_eq!(
        deleted[0].location,
        Some(trail.location(&unannounced, 0, at))
    );
    assert_eq!(report.errors, 1, "{report}");

    let mut drop = AuditEvent::dropped(
        Arc::new(ServiceInfo::new("orders-api")),
        5,
        DropReason::QueueFull,
        "rotating",
    );
    drop.dropped.as_mut().unwrap().ranges = vec![SeqRange::new(stream.as_str(), 100, 104)];
    sign_announcement(&mut drop, &corpus.key);
    trail.files[0]
        .lines
        .insert(at, serde_json::to_string(&drop).unwrap());
    let announced = tempdir("announced");
    trail.write(&announced);
    let report = run_verify(&announced, &corpus, true);
    assert!(report.is_clean(), "{report}");
    let gaps: Vec<_> = report.of_kind(ProblemKind::AnnouncedGap).collect();
    assert_eq!(gaps.len(), 1, "{report}");
    assert_eq!(gaps[0].seqs.map(|s| (s.first, s.last)), Some((100, 104)));
    assert!(gaps[0].detail.contains("queue_full"));

    // The same report signed by another key covers nothing.
    let mut forged = drop.clone();
    sign_announcement(&mut forged, &SigningKey::generate("corpus").unwrap());
    trail.files[0].lines[at] = serde_json::to_string(&forged).unwrap();
    let forged_dir = tempdir("forged");
    trail.write(&forged_dir);
    let report = run_verify(&forged_dir, &corpus, true);
    assert_eq!(
        report.of_kind(ProblemKind::UnknownKey).count(),
        1,
        "{report}"
    );
    assert_eq!(report.of_kind(ProblemKind::Deleted).count(), 1, "{report}");
    for dir in [
        unannounced,
        announced,
        forged_dir,
        corpus.dir.parent().unwrap().to_owned(),
    ] {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

async fn run_once(dir: &Path, key: &SigningKey, state: Option<&Path>, n: usize) {
    let mut chaining = Chaining::new()
        .signing_key(key.clone())
        .checkpoint_every(100);
    if let Some(state) = state {
        chaining = chaining.state_file(state);
    }
    let auditor = Auditor::builder()
        .chain(chaining)
        .writer(RotatingFile::builder(dir).build().unwrap())
        .build()
        .unwrap();
    emit(&auditor, n).await;
    auditor.shutdown().await;
}

#[tokio::test]
async fn a_restart_continues_the_stream_only_with_a_state_file() {
    let key = SigningKey::generate("restarts").unwrap();
    let keys = || vec![key.verifying_key()];

    let root = tempdir("restart");
    let dir = root.join("log");
    let state = root.join("chain.state");
    run_once(&dir, &key, Some(&state), 250).await;
    run_once(&dir, &key, Some(&state), 250).await;
    let report = verify::verify_files(std::slice::from_ref(&dir), keys(), None).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.streams, 1, "{report}");
    assert_eq!(
        report.of_kind(ProblemKind::NewStream).count(),
        1,
        "{report}"
    );
    assert_eq!(report.warnings, 0, "{report}");
    // 2 x (250 events, 3 checkpoints: after 100, 200 and at shutdown)
    assert_eq!(report.events, 506);

    let dir = root.join("log-without-state");
    run_once(&dir, &key, None, 250).await;
    run_once(&dir, &key, None, 250).await;
    let report = verify::verify_files(std::slice::from_ref(&dir), keys(), None).unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.streams, 2, "{report}");
    let new: Vec<_> = report.of_kind(ProblemKind::NewStream).collect();
    assert_eq!(new.len(), 2, "{report}");
    assert!(report.to_string().contains("2 notes"), "{report}");
    std::fs::remove_dir_all(root).unwrap();
}

/// The report on the PostgreSQL table, read in chain order, with the checkpoint copies.
#[cfg(feature = "postgres")]
async fn table_report(url: &str, key: &SigningKey, checkpoints: &Path, table: &Arc<str>) -> Report {
    use oauth_audit::backend::PostgresEventReader;

    let mut verifier = verify::Verifier::new(vec![key.verifying_key()]);
    verify::read_checkpoints(checkpoints, &mut verifier).unwrap();
    let mut reader = PostgresEventReader::connect(url, "public", "oauth_audit_events")
        .await
        .unwrap();
    assert_eq!(reader.count().await.unwrap(), 10_020);
    let rows = reader
        .read(|id, event| verifier.push(Location::row(table, id), event.as_bytes()))
        .await
        .unwrap();
    assert_eq!(rows, 10_020);
    verifier.finish()
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_verifies_as_the_file_and_an_edited_row_is_found_by_id() {
    use oauth_audit::backend::PostgresBackend;
    use oauth_audit::delivery::Delivery;
    use oauth_audit::writer::JsonLines;

    let pg = support::postgres::PgServer::new();
    let root = tempdir("pg");
    let file = root.join("audit.jsonl");
    let checkpoints = root.join("checkpoints.jsonl");
    let key = SigningKey::generate("pg").unwrap();
    let backend = PostgresBackend::builder(pg.url()).build().unwrap();
    let auditor = Auditor::builder()
        .queue_capacity(32_768)
        .chain(
            Chaining::new()
                .signing_key(key.clone())
                .checkpoint_every(500)
                .checkpoint_file(&checkpoints),
        )
        .writer(JsonLines::file(&file).await.unwrap())
        .writer(Delivery::builder(backend).build().unwrap())
        .build()
        .unwrap();
    emit(&auditor, 10_000).await;
    auditor.shutdown().await;

    let from_file = verify::verify_files(
        std::slice::from_ref(&file),
        vec![key.verifying_key()],
        Some(&checkpoints),
    )
    .unwrap();
    assert!(from_file.is_clean(), "{from_file}");
    let table: Arc<str> = "oauth_audit_events".into();
    let url = pg.url();
    let from_table = || table_report(&url, &key, &checkpoints, &table);
    let report = from_table().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        (
            report.events,
            report.streams,
            report.checkpoints,
            &report.counts
        ),
        (
            from_file.events,
            from_file.streams,
            from_file.checkpoints,
            &from_file.counts
        ),
        "table:\n{report}\nfile:\n{from_file}"
    );

    // An attacker with the database's superuser rights edits one row.
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let client = pg.client().await;
    let rows = client
        .query(
            "SELECT id::text FROM oauth_audit_events WHERE kind <> 'AuditCheckpoint' ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let id: String = rows[rng.gen_range(0..rows.len())].get(0);
    client
        .batch_execute(&format!(
            "SET session_replication_role = replica;
             UPDATE oauth_audit_events SET event = jsonb_set(event, '{{actor,subject}}', '\"mallory\"')
             WHERE id = '{id}';
             SET session_replication_role = origin;"
        ))
        .await
        .unwrap();
    let report = from_table().await;
    let edited: Vec<_> = report.of_kind(ProblemKind::Edited).collect();
    assert_eq!(edited.len(), 1, "seed {seed}: {report}");
    assert_eq!(
        edited[0].location,
        Some(Location::row(&table, id.as_str())),
        "seed {seed}"
    );
    assert_eq!(report.errors, 1, "seed {seed}: {report}");
    std::fs::remove_dir_all(root).unwrap();
}

/// A row is no event past 1 MiB, as a line is not: the reader hands on only its first
/// bytes, so that rows of hundreds of megabytes (compressed small by the table) cannot
/// take the verifier's memory, a batch of rows at a time.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_row_is_read_cut() {
    use oauth_audit::backend::PostgresEventReader;

    let pg = support::postgres::PgServer::new();
    let client = pg.client().await;
    client
        .batch_execute(
            "CREATE TABLE huge (id text PRIMARY KEY, event jsonb NOT NULL);
             INSERT INTO huge VALUES
               ('a', jsonb_build_object('kind', 'ResourceAccessed', 'pad', repeat('x', 5000000))),
               ('b', '{\"kind\": \"ResourceAccessed\"}');",
        )
        .await
        .unwrap();
    let mut reader = PostgresEventReader::connect(&pg.url(), "public", "huge")
        .await
        .unwrap();
    let mut read = Vec::new();
    reader
        .read(|id, event| read.push((id.to_owned(), event.len())))
        .await
        .unwrap();
    assert_eq!(read.len(), 2);
    for (id, len) in &read {
        assert!(*len <= 1 << 20, "row {id}: {len} bytes");
    }
    let table: Arc<str> = "huge".into();
    let mut verifier = Verifier::new(Vec::new());
    reader
        .read(|id, event| verifier.push(Location::row(&table, id), event.as_bytes()))
        .await
        .unwrap();
    let report = verifier.finish();
    let malformed: Vec<_> = report.of_kind(ProblemKind::Malformed).collect();
    assert_eq!(malformed.len(), 1, "{report}");
    assert_eq!(malformed[0].location, Some(Location::row(&table, "a")));
}
