//! The state machine on small hand-made chains: each kind of tampering, found at its place.

use std::sync::Arc;

use serde_json::{json, Value};

use super::*;
use crate::chain::{origin, sign_announcement, CheckpointNote, SigningKey};
use crate::event::{AuditEvent, DropReason, EventHash, SeqRange, ServiceInfo};

const STREAM: &str = "0193a0c0-0000-7000-8000-000000000000";

/// A chain of `n` events (and a checkpoint after every `every`), as stored.
fn chain(n: u64, every: u64, key: &SigningKey) -> Vec<Value> {
    let mut events = Vec::new();
    let mut prev: Option<EventHash> = None;
    let mut seq = 0;
    let link = |mut event: Value, prev: &mut Option<EventHash>, seq: &mut u64| {
        *seq += 1;
        let mut chain = json!({"stream": STREAM, "seq": *seq});
        if let Some(p) = prev {
            chain["prev"] = json!(p.to_string());
        }
        event["chain"] = chain;
        *prev = Some(EventHash::of_json(&event).unwrap());
        event
    };
    for i in 1..=n {
        let event = json!({"kind": "ResourceAccessed", "n": i, "http": {"status": 200}});
        events.push(link(event, &mut prev, &mut seq));
        if i % every == 0 {
            let hash = prev.unwrap();
            let note = CheckpointNote {
                origin: origin(STREAM),
                size: seq,
                hash,
                time: "2026-12-01T12:00:00Z".into(),
            }
            .sign(key);
            let checkpoint = json!({"kind": "AuditCheckpoint", "outcome": "success",
                "time": "2026-12-01T12:00:00Z", "checkpoint": {
                "stream": STREAM, "seq": seq, "hash": hash.to_string(), "note": note}});
            events.push(link(checkpoint, &mut prev, &mut seq));
        }
    }
    events
}

fn file() -> Arc<str> {
    "t.jsonl".into()
}

fn at(line: u64) -> Option<Location> {
    Some(Location::line(&file(), line))
}

fn verify_with(events: &[Value], verifier: Verifier) -> Report {
    let mut verifier = verifier;
    for (i, event) in events.iter().enumerate() {
        let line = serde_json::to_vec(event).unwrap();
        verifier.push(Location::line(&file(), i as u64 + 1), &line);
    }
    verifier.finish()
}

fn verify(events: &[Value], key: &SigningKey) -> Report {
    verify_with(events, Verifier::new(vec![key.verifying_key()]))
}

/// The errors, as (kind, line).
fn errors(report: &Report) -> Vec<(ProblemKind, Option<Location>)> {
    report
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| (p.kind, p.location.clone()))
        .collect()
}

#[test]
fn an_untouched_chain_is_clean() {
    let key = SigningKey::generate("k").unwrap();
    let events = chain(50, 10, &key);
    let report = verify(&events, &key);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.events, 55);
    assert_eq!(report.checkpoints, 5);
    assert_eq!(report.streams, 1);
    assert_eq!(report.of_kind(ProblemKind::NewStream).count(), 1);
    assert_eq!(report.warnings, 0, "{report}");
    // Without the last checkpoint, the tail is unsealed: a warning only.
    let report = verify(&events[..events.len() - 3], &key);
    assert!(report.is_clean(), "{report}");
    let tail: Vec<_> = report.of_kind(ProblemKind::UnsealedTail).collect();
    assert_eq!(tail.len(), 1, "{report}");
    assert_eq!(
        tail[0].seqs,
        Some(SeqSpan {
            first: 45,
            last: 52
        })
    );
}

#[test]
fn an_edited_event_is_found_at_its_line() {
    let key = SigningKey::generate("k").unwrap();
    let mut events = chain(50, 10, &key);
    events[20]["http"]["status"] = json!(500);
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Edited, at(21))]
    );

    let mut events = chain(50, 10, &key);
    events[20]["chain"]["prev"] = json!(EventHash::of_bytes(b"x").to_string());
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Edited, at(21))]
    );

    let mut events = chain(50, 10, &key);
    events[20]["chain"]["seq"] = json!(40);
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Edited, at(21))]
    );

    let mut events = chain(50, 10, &key);
    events[20]["chain"]["stream"] = json!("another");
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Edited, at(21))]
    );

    // The event a checkpoint covers (line 10), changed: the checkpoint says so too.
    let mut events = chain(50, 10, &key);
    events[9]["n"] = json!(0);
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Edited, at(10))]
    );
}

/// The events as another writer might have stored them: the same JSON with a space after
/// every comma, so no line's bytes are its canonical form.
fn verify_reformatted(events: &[Value], key: &SigningKey) -> Report {
    let mut verifier = Verifier::new(vec![key.verifying_key()]);
    for (i, event) in events.iter().enumerate() {
        let line = serde_json::to_string(event).unwrap().replace(",\"", ", \"");
        assert_ne!(line.as_bytes(), &serde_json::to_vec(event).unwrap()[..]);
        verifier.push(Location::line(&file(), i as u64 + 1), line.as_bytes());
    }
    verifier.finish()
}

#[test]
fn lines_not_in_canonical_form_verify_by_their_canonical_form() {
    let key = SigningKey::generate("k").unwrap();
    let events = chain(50, 10, &key);
    let compact = verify(&events, &key);
    let report = verify_reformatted(&events, &key);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.to_string(), compact.to_string());

    // A change is still found at its line, whether a link or a checkpoint's hash says so.
    for (index, line) in [(20, 21), (9, 10), (53, 54)] {
        let mut events = chain(50, 10, &key);
        events[index]["n"] = json!(-1);
        assert_eq!(
            errors(&verify_reformatted(&events, &key)),
            [(ProblemKind::Edited, at(line))],
            "event {index}"
        );
    }
}

#[test]
fn deletions_insertions_and_reorderings_are_told_apart() {
    let key = SigningKey::generate("k").unwrap();
    let base = chain(50, 10, &key);

    let mut events = base.clone();
    events.remove(20);
    let report = verify(&events, &key);
    assert_eq!(
        errors(&report),
        [(ProblemKind::Deleted, at(21))],
        "{report}"
    );

    let mut events = base.clone();
    events.insert(21, base[20].clone());
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Inserted, at(22))]
    );

    let mut events = base.clone();
    events.insert(30, base[5].clone());
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Inserted, at(31))]
    );

    let mut events = base.clone();
    events.insert(30, json!({"kind": "ResourceAccessed"}));
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Inserted, at(31))]
    );

    let mut events = base.clone();
    events.swap(20, 21);
    assert_eq!(
        errors(&verify(&events, &key)),
        [(ProblemKind::Reordered, at(21))]
    );

    let mut events = base.clone();
    events.swap(12, 40);
    let report = verify(&events, &key);
    assert_eq!(
        errors(&report),
        [
            (ProblemKind::Reordered, at(13)),
            (ProblemKind::Reordered, at(41))
        ],
        "{report}"
    );
    // Reordered across more than the window: still found as such.
    let report = verify_with(&events, Verifier::new(vec![key.verifying_key()]).window(8));
    assert_eq!(
        errors(&report),
        [
            (ProblemKind::Reordered, at(13)),
            (ProblemKind::Reordered, at(41))
        ],
        "{report}"
    );

    let report = verify(&base[10..], &key);
    assert_eq!(errors(&report), [(ProblemKind::Deleted, at(1))], "{report}");
}

#[test]
fn a_start_removed_by_retention_is_a_note_when_said_so() {
    let key = SigningKey::generate("k").unwrap();
    let base = chain(30, 10, &key);
    let trimmed = || Verifier::new(vec![key.verifying_key()]).trimmed_start(true);
    let report = verify_with(&base[11..], trimmed());
    assert!(report.is_clean(), "{report}");
    let notes: Vec<_> = report.of_kind(ProblemKind::TrimmedStart).collect();
    assert_eq!(notes.len(), 1, "{report}");
    assert_eq!(notes[0].seqs, Some(SeqSpan { first: 1, last: 11 }));
    assert_eq!(notes[0].severity, Severity::Note);
    // Only the start is excused: a later gap is still deleted events.
    let mut events = base[11..].to_vec();
    events.remove(5);
    let report = verify_with(&events, trimmed());
    assert_eq!(errors(&report), [(ProblemKind::Deleted, at(6))], "{report}");
    // A stream that starts at its first event has nothing to excuse.
    let report = verify_with(&base, trimmed());
    assert_eq!(report.of_kind(ProblemKind::TrimmedStart).count(), 0);
}

#[test]
fn checkpoints_are_checked_against_their_notes_and_keys() {
    let key = SigningKey::generate("k").unwrap();
    let other = SigningKey::generate("k").unwrap();
    let base = chain(30, 10, &key);
    assert_eq!(base[10]["kind"], "AuditCheckpoint");

    let report = verify(&base, &other);
    assert_eq!(
        report.of_kind(ProblemKind::UnknownKey).count(),
        3,
        "{report}"
    );

    let mut events = base.clone();
    events[10]["checkpoint"]["seq"] = json!(9);
    let report = verify(&events, &key);
    assert!(
        errors(&report).contains(&(ProblemKind::Edited, at(11))),
        "{report}"
    );

    let mut events = base.clone();
    let note = events[10]["checkpoint"]["note"]
        .as_str()
        .unwrap()
        .replacen("\n10\n", "\n11\n", 1);
    events[10]["checkpoint"]["note"] = json!(note);
    let report = verify(&events, &key);
    assert!(
        errors(&report).contains(&(ProblemKind::BadSignature, at(11))),
        "{report}"
    );

    // Re-signed with another key: one problem, although its hash changed as well.
    let mut events = base.clone();
    let fields = &events[10]["checkpoint"];
    let note = CheckpointNote {
        origin: origin(STREAM),
        size: fields["seq"].as_u64().unwrap(),
        hash: fields["hash"].as_str().unwrap().parse().unwrap(),
        time: "2026-12-01T12:00:00Z".into(),
    }
    .sign(&other);
    events[10]["checkpoint"]["note"] = json!(note);
    let report = verify(&events, &key);
    assert_eq!(
        errors(&report),
        [(ProblemKind::UnknownKey, at(11))],
        "{report}"
    );

    // Without keys: consistency only, and the report says signatures were not checked.
    let report = verify_with(&base, Verifier::new(Vec::new()));
    assert!(report.is_clean(), "{report}");
    assert!(!report.signatures_checked);
    assert!(report.to_string().contains("signatures not checked"));
}

#[test]
fn external_checkpoints_catch_a_cut_tail() {
    let key = SigningKey::generate("k").unwrap();
    let base = chain(30, 10, &key);
    let checkpoints: Vec<Value> = base
        .iter()
        .filter(|e| e["kind"] == "AuditCheckpoint")
        .cloned()
        .collect();
    let copies: Arc<str> = "checkpoints.jsonl".into();
    let with_copies = || {
        let mut verifier = Verifier::new(vec![key.verifying_key()]);
        for (i, c) in checkpoints.iter().enumerate() {
            verifier.add_checkpoint(
                Location::line(&copies, i as u64 + 1),
                &serde_json::to_vec(c).unwrap(),
            );
        }
        verifier
    };
    let report = verify_with(&base, with_copies());
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.warnings, 0);
    let report = verify_with(&base[..25], with_copies());
    assert_eq!(
        errors(&report),
        [(ProblemKind::Truncated, at(25))],
        "{report}"
    );
    // Without the copies, a cut tail is only an unsealed one.
    let report = verify(&base[..25], &key);
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.of_kind(ProblemKind::UnsealedTail).count(), 1);
    // The last event, a checkpoint, edited: nothing follows it, but its time is the one its
    // note signs, and it carries nothing else a checkpoint does not.
    let last = base.len() - 1;
    for (field, value) in [
        ("time", json!("2020-01-01T00:00:00Z")),
        ("actor", json!({"subject": "mallory"})),
        ("outcome", json!("failure")),
    ] {
        let mut events = base.clone();
        events[last][field] = value;
        let report = verify(&events, &key);
        assert_eq!(
            errors(&report),
            [(ProblemKind::Edited, at(33))],
            "{field}: {report}"
        );
    }
    // Its service, only its copy can tell.
    let mut events = base.clone();
    events[last]["service"] = json!({"name": "not-what-ran"});
    assert!(verify(&events, &key).is_clean());
    let report = verify_with(&events, with_copies());
    assert_eq!(errors(&report), [(ProblemKind::Edited, at(33))], "{report}");
}

#[test]
fn announced_drops_are_gaps_only_when_the_report_verifies() {
    let key = SigningKey::generate("k").unwrap();
    let other = SigningKey::generate("k").unwrap();
    let base = chain(30, 10, &key);
    let report_for = |signer: &SigningKey| {
        let service = Arc::new(ServiceInfo::default());
        let mut event = AuditEvent::dropped(service, 3, DropReason::QueueFull, "file");
        event.dropped.as_mut().unwrap().ranges = vec![SeqRange {
            stream: STREAM.into(),
            first: 5,
            last: 7,
        }];
        sign_announcement(&mut event, signer);
        serde_json::to_value(&event).unwrap()
    };
    let mut events = base.clone();
    events.drain(4..7);
    let without = verify(&events, &key);
    assert_eq!(errors(&without), [(ProblemKind::Deleted, at(5))]);

    events.insert(4, report_for(&key));
    let with_sink = || Verifier::new(vec![key.verifying_key()]).sink("file");
    let report = verify_with(&events, with_sink());
    assert!(report.is_clean(), "{report}");
    let gaps: Vec<_> = report.of_kind(ProblemKind::AnnouncedGap).collect();
    assert_eq!(gaps.len(), 1);
    assert_eq!(gaps[0].seqs, Some(SeqSpan { first: 5, last: 7 }));
    assert!(
        gaps[0].detail.contains("queue_full") && gaps[0].detail.contains("sink file"),
        "{}",
        gaps[0].detail
    );
    // With keys but no word on whose storage this is, the report could be another sink's:
    // the gap stands, and the report says which --sink would settle it.
    let report = verify(&events, &key);
    assert_eq!(errors(&report), [(ProblemKind::Deleted, at(6))], "{report}");
    assert!(
        report.problems[1].detail.contains("give --sink file"),
        "{report}"
    );
    // Without keys nothing is trusted, and the report says so: the gap is a note.
    let report = verify_with(&events, Verifier::new(Vec::new()));
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.of_kind(ProblemKind::AnnouncedGap).count(), 1);

    events[4] = report_for(&other);
    let report = verify_with(&events, with_sink());
    assert_eq!(
        errors(&report),
        [
            (ProblemKind::UnknownKey, at(5)),
            (ProblemKind::Deleted, at(6))
        ],
        "{report}"
    );
    // Events lost before they were chained have no numbers: the report is a note.
    let mut events = base.clone();
    let service = Arc::new(ServiceInfo::default());
    let mut lost = AuditEvent::dropped(service, 2, DropReason::QueueFull, "file");
    sign_announcement(&mut lost, &key);
    events.insert(12, serde_json::to_value(&lost).unwrap());
    let report = verify(&events, &key);
    assert!(report.is_clean(), "{report}");
    let notes: Vec<_> = report.of_kind(ProblemKind::AnnouncedGap).collect();
    assert_eq!(notes.len(), 1, "{report}");
    assert_eq!(notes[0].location, at(13));
    assert_eq!(notes[0].seqs, None);
    assert!(
        notes[0].detail.contains("2 event(s)")
            && notes[0].detail.contains("before they were chained"),
        "{}",
        notes[0].detail
    );

    let mut events = base.clone();
    events.drain(4..7);
    events.insert(4, report_for(&key));
    let mut widened = report_for(&key);
    widened["dropped"]["ranges"][0]["last"] = json!(9);
    events[4] = widened;
    let report = verify_with(&events, with_sink());
    assert!(
        errors(&report).contains(&(ProblemKind::BadSignature, at(5))),
        "{report}"
    );
}

/// A drop report is written by the sink that lost the events, into its own storage only.
#[test]
fn a_drop_report_of_another_sink_excuses_nothing() {
    let key = SigningKey::generate("k").unwrap();
    let mut events = chain(30, 10, &key);
    events.drain(4..7);
    // The PostgreSQL sink's genuine report of the same numbers, lost there, pasted into
    // the file whose events were deleted.
    let service = Arc::new(ServiceInfo::default());
    let mut report = AuditEvent::dropped(service, 3, DropReason::QueueFull, "postgres");
    report.dropped.as_mut().unwrap().ranges = vec![SeqRange {
        stream: STREAM.into(),
        first: 5,
        last: 7,
    }];
    sign_announcement(&mut report, &key);
    events.push(serde_json::to_value(&report).unwrap());
    let verdict = verify_with(
        &events,
        Verifier::new(vec![key.verifying_key()]).sink("file"),
    );
    assert_eq!(
        errors(&verdict),
        [
            (ProblemKind::Inserted, at(31)),
            (ProblemKind::Deleted, at(5))
        ],
        "{verdict}"
    );
    assert!(verdict.problems[1]
        .detail
        .contains("sink postgres in the storage of sink file"));
}

/// With keys, an unsigned drop report is a forgery, whatever it holds.
#[test]
fn with_keys_every_drop_report_must_be_signed() {
    let key = SigningKey::generate("k").unwrap();
    let mut events = chain(30, 10, &key);
    events.insert(
        5,
        json!({"kind": "AuditEventsDropped",
               "dropped": {"count": 0, "reason": "queue_full", "sink": "file"},
               "actor": {"id": "mallory"}, "http": {"path": "/admin/export", "status": 200}}),
    );
    let report = verify(&events, &key);
    assert_eq!(
        errors(&report),
        [(ProblemKind::BadSignature, at(6))],
        "{report}"
    );
    assert!(
        report.problems[1].detail.contains("must be signed"),
        "{report}"
    );
    // Signed, it is a note; without keys it is taken as it is.
    let service = Arc::new(ServiceInfo::default());
    let mut lost = AuditEvent::dropped(service, 0, DropReason::QueueFull, "file");
    sign_announcement(&mut lost, &key);
    events[5] = serde_json::to_value(&lost).unwrap();
    assert!(verify(&events, &key).is_clean());
}

/// Events without a chain before the first chained one: inserted, unless chaining is
/// said to have been turned on after them.
#[test]
fn an_unchained_prefix_is_inserted_unless_accepted() {
    let key = SigningKey::generate("k").unwrap();
    let mut events = vec![json!({"kind": "TokenIssued", "actor": {"id": "mallory"}}); 3];
    events.extend(chain(20, 10, &key));
    let report = verify(&events, &key);
    assert_eq!(
        errors(&report),
        [(ProblemKind::Inserted, at(1))],
        "{report}"
    );
    let inserted = report.of_kind(ProblemKind::Inserted).next().unwrap();
    assert!(inserted.detail.starts_with("3 event(s)"), "{report}");
    assert_eq!(report.unchained_prefix, 3);

    let report = verify_with(
        &events,
        Verifier::new(vec![key.verifying_key()]).unchained_prefix(true),
    );
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.of_kind(ProblemKind::UnchainedPrefix).count(), 1);
}

/// An emptied log is not a clean one.
#[test]
fn an_empty_input_is_unchained() {
    let key = SigningKey::generate("k").unwrap();
    let mut verifier = Verifier::new(vec![key.verifying_key()]);
    verifier.push(Location::line(&file(), 1), b"");
    verifier.push(Location::line(&file(), 2), b"   ");
    let report = verifier.finish();
    assert_eq!(
        errors(&report),
        [(ProblemKind::Unchained, None)],
        "{report}"
    );
    assert!(report.problems[0].detail.contains("no event"));
}

/// With keys, a stream that no checkpoint covers is vouched for by nothing: anyone could
/// have written it.
#[test]
fn with_keys_a_stream_without_any_checkpoint_is_unsealed() {
    let key = SigningKey::generate("k").unwrap();
    let mut events = chain(20, 10, &key);
    let (mut prev, mut seq): (Option<EventHash>, u64) = (None, 0);
    for i in 0..5 {
        seq += 1;
        let mut event = json!({"kind": "ResourceAccessed", "n": i,
            "chain": {"stream": "0193a0c0-ffff-7000-8000-000000000000", "seq": seq}});
        if let Some(p) = prev {
            event["chain"]["prev"] = json!(p.to_string());
        }
        prev = Some(EventHash::of_json(&event).unwrap());
        events.push(event);
    }
    let report = verify(&events, &key);
    assert_eq!(
        errors(&report),
        [(ProblemKind::Unsealed, at(27))],
        "{report}"
    );
    // Without keys nothing can be vouched for: only a warning.
    let report = verify_with(&events, Verifier::new(Vec::new()));
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.of_kind(ProblemKind::UnsealedTail).count(), 1);
}

/// Retention removes the oldest events first: `--trimmed-start` excuses only a stream that
/// began before every stream that still has its start, wherever its lines are put.
#[test]
fn trimmed_start_excuses_only_a_stream_older_than_every_begun_one() {
    let key = SigningKey::generate("k").unwrap();
    let mut events = chain(20, 10, &key);
    events.drain(0..5);
    let report = verify_with(
        &events,
        Verifier::new(vec![key.verifying_key()]).trimmed_start(true),
    );
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.of_kind(ProblemKind::TrimmedStart).count(), 1);

    let begun =
        |stream: &str| json!({"kind": "ResourceAccessed", "chain": {"stream": stream, "seq": 1}});
    // A newer stream with its start: the trimmed one is older, as retention leaves it,
    // before or after it in the input.
    let newer = begun("0193a0c0-1111-7000-8000-000000000000");
    for mixed in [
        [vec![newer.clone()], events.clone()].concat(),
        [events.clone(), vec![newer.clone()]].concat(),
    ] {
        let report = verify_with(&mixed, Verifier::new(Vec::new()).trimmed_start(true));
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.of_kind(ProblemKind::TrimmedStart).count(), 1);
    }
    // An older stream with its start: retention would have removed that first, so the
    // newer stream's start was deleted, wherever its lines are put.
    let older = begun("0193a0b0-0000-7000-8000-000000000000");
    for (mixed, line) in [
        ([vec![older.clone()], events.clone()].concat(), 2),
        ([events.clone(), vec![older.clone()]].concat(), 1),
    ] {
        let report = verify_with(&mixed, Verifier::new(Vec::new()).trimmed_start(true));
        assert_eq!(
            errors(&report),
            [(ProblemKind::Deleted, at(line))],
            "{report}"
        );
        let deleted = report.of_kind(ProblemKind::Deleted).next().unwrap();
        assert!(
            deleted.detail.contains("began after stream 0193a0b0"),
            "{report}"
        );
    }
}

/// Lines that read differently to other readers: cut at 1 MiB, or with a carriage return
/// (a line break to Python's text files) between two events.
#[test]
fn lines_other_readers_split_are_malformed() {
    let key = SigningKey::generate("k").unwrap();
    let events = chain(5, 10, &key);
    let mut lines: Vec<Vec<u8>> = events
        .iter()
        .map(|e| crate::event::canonical_json(e).unwrap())
        .collect();
    let mut forged = lines[2].clone();
    forged.extend_from_slice(b" \r{\"kind\":\"AccessDenied\"}");
    lines[2] = forged;
    let mut verifier = Verifier::new(vec![key.verifying_key()]);
    for (i, line) in lines.iter().enumerate() {
        verifier.push(Location::line(&file(), i as u64 + 1), line);
    }
    let report = verifier.finish();
    assert!(
        errors(&report).contains(&(ProblemKind::Malformed, at(3))),
        "{report}"
    );
}

/// The last checkpoint's members are the chain's: nothing added inside it either.
#[test]
fn the_last_checkpoint_carries_nothing_else() {
    let key = SigningKey::generate("k").unwrap();
    let base = chain(20, 10, &key);
    let last = base.len() - 1;
    for (path, value) in [
        (
            "/checkpoint/comment",
            json!("an admin deleted table orders at 12:01"),
        ),
        ("/chain/note", json!("x")),
        ("/severity", json!("critical")),
        ("/schema", json!("oauth-audit/999")),
    ] {
        let mut events = base.clone();
        let (parent, member) = path.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut events[last]
        } else {
            events[last].pointer_mut(parent).unwrap()
        };
        target[member] = value;
        let report = verify(&events, &key);
        assert_eq!(
            errors(&report),
            [(ProblemKind::Edited, at(22))],
            "{path}: {report}"
        );
    }
}

/// Sequence numbers past 2^53 are no chain the auditor wrote, and cannot overflow.
#[test]
fn sequence_numbers_past_2_53_are_unreadable() {
    let prev = EventHash::of_bytes(b"x").to_string();
    for seq in [u64::MAX, 1 << 53] {
        let line = format!(r#"{{"chain":{{"prev":"{prev}","seq":{seq},"stream":"s"}}}}"#);
        let mut verifier = Verifier::new(Vec::new());
        verifier.push(Location::line(&file(), 1), line.as_bytes());
        let report = verifier.finish();
        assert_eq!(errors(&report), [(ProblemKind::Edited, at(1))], "{report}");
    }
    let checkpoint = format!(
        r#"{{"kind":"AuditCheckpoint","checkpoint":{{"stream":"s","seq":{},"hash":"{prev}","note":"x"}},"chain":{{"prev":"{prev}","seq":3,"stream":"s"}}}}"#,
        u64::MAX
    );
    let mut verifier = Verifier::new(Vec::new());
    verifier.push(Location::line(&file(), 1), checkpoint.as_bytes());
    let report = verifier.finish();
    assert!(!report.is_clean(), "{report}");
}

/// Lines nothing follows are not kept whole: a stream per line, or events each far ahead
/// of the last, stay within the budget.
#[test]
fn lines_kept_for_a_later_look_stay_within_the_budget() {
    let prev = EventHash::of_bytes(b"x").to_string();
    let pad = "x".repeat(64 << 10);
    let mut verifier = Verifier::new(Vec::new()).line_budget(1 << 20);
    for i in 0..200u64 {
        let line = format!(
            r#"{{"chain":{{"prev":"{prev}","seq":{},"stream":"s"}},"pad":"{pad}"}}"#,
            2 + 2 * i
        );
        verifier.push(Location::line(&file(), i + 1), line.as_bytes());
        assert!(verifier.kept_line_bytes() <= 1 << 20);
    }
    // A stream per line: each is settled when the input moves on.
    let mut verifier = Verifier::new(Vec::new());
    for i in 0..200u64 {
        let line =
            format!(r#"{{"chain":{{"prev":"{prev}","seq":2,"stream":"s{i}"}},"pad":"{pad}"}}"#);
        verifier.push(Location::line(&file(), i + 1), line.as_bytes());
        assert!(
            verifier.kept_line_bytes() <= 2 * (pad.len() + 200),
            "{}",
            verifier.kept_line_bytes()
        );
    }
    let report = verifier.finish();
    assert_eq!(report.streams, 200);
}

/// An event whose `chain.stream` was changed is found as the continuation of its stream
/// among many streams, by the hash it names.
#[test]
fn a_moved_event_is_found_among_many_streams() {
    let key = SigningKey::generate("k").unwrap();
    let mut events = Vec::new();
    // Many streams of one event each, then the chain under test, its event 12 renamed
    // after other streams came in between.
    for i in 0..500 {
        events.push(json!({"kind": "ResourceAccessed",
            "chain": {"stream": format!("other-{i}"), "seq": 1}}));
    }
    let mut base = chain(20, 10, &key);
    let tail = base.split_off(12);
    events.extend(base);
    events.push(json!({"kind": "ResourceAccessed",
        "chain": {"stream": "interloper", "seq": 1}}));
    let mut tail = tail;
    tail[0]["chain"]["stream"] = json!("renamed");
    events.extend(tail);
    let report = verify_with(&events, Verifier::new(Vec::new()));
    let edited: Vec<_> = report.of_kind(ProblemKind::Edited).collect();
    assert_eq!(edited.len(), 1, "{report}");
    assert_eq!(edited[0].location, at(514), "{report}");
    assert!(edited[0].detail.contains("continues stream"), "{report}");
}

#[test]
fn malformed_lines_and_unchained_input_are_problems() {
    let mut verifier = Verifier::new(Vec::new());
    verifier.push(
        Location::line(&file(), 1),
        br#"{"kind":"ResourceAccessed"}"#,
    );
    verifier.push(Location::line(&file(), 2), b"");
    verifier.push(Location::line(&file(), 3), b"{\"kind\":");
    let report = verifier.finish();
    assert_eq!(
        errors(&report),
        [
            (ProblemKind::Malformed, at(3)),
            (ProblemKind::Unchained, None)
        ]
    );
    assert_eq!(report.unchained_prefix, 1);
}

/// Texts that read as the chained event under RFC 8785 but not to every reader: a key put
/// twice, a number written otherwise. Neither verifies, on the fast path or the general one.
#[test]
fn texts_that_only_canonicalise_as_the_chained_event_are_found() {
    let key = SigningKey::generate("k").unwrap();
    let events = chain(30, 10, &key);
    let lines: Vec<String> = events
        .iter()
        .map(|e| String::from_utf8(crate::event::canonical_json(e).unwrap()).unwrap())
        .collect();
    let run = |lines: &[String]| {
        let mut verifier = Verifier::new(vec![key.verifying_key()]);
        for (i, line) in lines.iter().enumerate() {
            verifier.push(Location::line(&file(), i as u64 + 1), line.as_bytes());
        }
        verifier.finish()
    };
    assert!(run(&lines).is_clean(), "{}", run(&lines));
    for (index, from, to) in [
        // The fast path (event 5 has a `prev`): its bytes' hash differs, its canonical
        // form is refused, and the link to event 6 breaks.
        (4, "{", r#"{"http":{"status":500,"path":"/evil"},"#),
        (4, r#""n":5"#, r#""n":5.0"#),
        // The general path (event 1 has no `prev`).
        (0, "{", r#"{"kind":"AccessDenied","#),
        (0, r#""n":1"#, r#""n":1e0"#),
        // A checkpoint.
        (11, "{", r#"{"kind":"AuditCheckpoint","#),
    ] {
        let mut forged = lines.clone();
        forged[index] = forged[index].replacen(from, to, 1);
        assert_ne!(forged[index], lines[index]);
        let report = run(&forged);
        assert!(
            errors(&report)
                .iter()
                .any(|(_, place)| *place == at(index as u64 + 1)),
            "{to}: {report}"
        );
    }
}

mod properties {
    //! Whatever the interleaving of streams and the window size: an untouched trail has no
    //! error, and one deletion, edit, copy or swap of events always leaves one.

    use proptest::prelude::*;

    use super::*;

    /// What is done to the trail.
    #[derive(Clone, Debug)]
    enum Tamper {
        None,
        Delete(usize),
        Edit(usize),
        Copy(usize),
        Swap(usize),
        Rename(usize),
    }

    fn tamper() -> impl Strategy<Value = Tamper> {
        prop_oneof![
            Just(Tamper::None),
            any::<usize>().prop_map(Tamper::Delete),
            any::<usize>().prop_map(Tamper::Edit),
            any::<usize>().prop_map(Tamper::Copy),
            any::<usize>().prop_map(Tamper::Swap),
            any::<usize>().prop_map(Tamper::Rename),
        ]
    }

    /// Streams of `sizes` events, interleaved as `picks` says (each pick chooses among the
    /// streams with events left), each event with its stream's index and whether it is
    /// its stream's last.
    fn trail(sizes: &[u64], picks: &[u8]) -> Vec<(usize, bool, Value)> {
        let mut streams: Vec<std::collections::VecDeque<Value>> = sizes
            .iter()
            .enumerate()
            .map(|(s, &n)| {
                let stream = format!("0193a0c0-000{s}-7000-8000-000000000000");
                let (mut prev, mut out) = (None::<EventHash>, std::collections::VecDeque::new());
                for seq in 1..=n {
                    let mut event = json!({"kind": "ResourceAccessed", "n": seq,
                        "chain": {"stream": stream, "seq": seq}});
                    if let Some(p) = prev {
                        event["chain"]["prev"] = json!(p.to_string());
                    }
                    prev = Some(EventHash::of_json(&event).unwrap());
                    out.push_back(event);
                }
                out
            })
            .collect();
        let mut trail = Vec::new();
        let mut picks = picks.iter().copied().cycle();
        loop {
            let open: Vec<usize> = (0..streams.len())
                .filter(|&s| !streams[s].is_empty())
                .collect();
            if open.is_empty() {
                return trail;
            }
            let s = open[usize::from(picks.next().unwrap_or(0)) % open.len()];
            let event = streams[s].pop_front().unwrap();
            trail.push((s, streams[s].is_empty(), event));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn every_tampering_leaves_an_error(
            sizes in proptest::collection::vec(1u64..14, 1..4),
            picks in proptest::collection::vec(any::<u8>(), 1..40),
            window in 2usize..8,
            tamper in tamper(),
        ) {
            let mut trail = trail(&sizes, &picks);
            // Only events that something follows can be vouched for (no checkpoints here).
            let followed: Vec<usize> = (0..trail.len()).filter(|&i| !trail[i].1).collect();
            let tampered = match tamper {
                Tamper::None => false,
                Tamper::Delete(i) if !followed.is_empty() => {
                    trail.remove(followed[i % followed.len()]);
                    true
                }
                Tamper::Edit(i) if !followed.is_empty() => {
                    trail[followed[i % followed.len()]].2["n"] = json!(-1);
                    true
                }
                Tamper::Copy(i) => {
                    let at = i % trail.len();
                    let copy = trail[at].clone();
                    let to = at + 1 + (i / trail.len()) % (trail.len() - at);
                    trail.insert(to, copy);
                    true
                }
                Tamper::Swap(i) if !followed.is_empty() => {
                    // An event and the next of its stream trade places.
                    let a = followed[i % followed.len()];
                    let b = (a + 1..trail.len()).find(|&b| trail[b].0 == trail[a].0).unwrap();
                    trail.swap(a, b);
                    true
                }
                Tamper::Rename(i) => {
                    // An event moved to a stream of its own (its chain.stream changed).
                    let at = i % trail.len();
                    trail[at].2["chain"]["stream"] = json!("0193a0c0-ffff-7000-8000-000000000000");
                    // A whole stream of one event renamed is just another stream.
                    trail[at].2["chain"]["seq"] != 1 || !trail[at].1
                }
                _ => false,
            };
            let events: Vec<Value> = trail.into_iter().map(|(_, _, e)| e).collect();
            let report = verify_with(&events, Verifier::new(Vec::new()).window(window));
            if tampered {
                prop_assert!(report.errors > 0, "{:?} left no error:\n{}", tamper, report);
            } else {
                prop_assert!(report.is_clean(), "{}", report);
            }
        }
    }
}

/// Many gaps and many announced ranges: each gap is matched with the ranges that overlap
/// it, swept in order (not every range for every gap).
#[test]
fn many_gaps_are_matched_with_the_ranges_that_cover_them() {
    let key = SigningKey::generate("k").unwrap();
    let events: Vec<Value> = chain(2001, 10_000, &key)
        .into_iter()
        .filter(|e| e["chain"]["seq"].as_u64().unwrap() % 2 == 1)
        .collect();
    // Gaps at every even number; a report announces those divisible by 4, and many
    // ranges past the end of the stream.
    let mut ranges: Vec<Value> = (1..=500)
        .map(|n| json!({"stream": STREAM, "first": 4 * n, "last": 4 * n}))
        .collect();
    ranges.extend(
        (0..50_000)
            .map(|n| json!({"stream": STREAM, "first": 10_000 + 2 * n, "last": 10_000 + 2 * n})),
    );
    let report_line = json!({"kind": "AuditEventsDropped",
        "dropped": {"count": ranges.len(), "reason": "queue_full", "sink": "file", "ranges": ranges}});
    let mut all = vec![report_line];
    all.extend(events);
    let report = verify_with(&all, Verifier::new(Vec::new()));
    assert_eq!(
        report.counts.get(&ProblemKind::AnnouncedGap),
        Some(&500),
        "{}",
        report.summary()
    );
    assert_eq!(
        report.counts.get(&ProblemKind::Deleted),
        Some(&500),
        "{}",
        report.summary()
    );
}

/// A stream per line cannot make memory grow with the input: past the most streams
/// followed, further streams are reported, not followed.
#[test]
fn streams_past_the_most_followed_are_reported() {
    let mut verifier = Verifier::new(Vec::new()).max_streams(10);
    for i in 0..25u64 {
        let line =
            format!(r#"{{"chain":{{"seq":1,"stream":"s{i:02}"}},"kind":"ResourceAccessed"}}"#);
        verifier.push(Location::line(&file(), i + 1), line.as_bytes());
    }
    let report = verifier.finish();
    assert_eq!(report.streams, 10, "{report}");
    let refused: Vec<_> = report.of_kind(ProblemKind::Malformed).collect();
    assert_eq!(refused.len(), 15, "{report}");
    assert_eq!(refused[0].location, at(11));
    assert!(
        refused[0].detail.contains("more than 10 streams"),
        "{report}"
    );
}

/// A line of stream `s` numbered `seq` whose `prev` names no event.
fn unlinked(seq: u64) -> Vec<u8> {
    let prev = EventHash::of_bytes(b"anything");
    format!(r#"{{"chain":{{"prev":"{prev}","seq":{seq},"stream":"s"}},"kind":"ResourceAccessed"}}"#)
        .into_bytes()
}

#[test]
fn a_trail_of_broken_links_is_not_remembered_event_by_event() {
    const EVENTS: u64 = 20_000;
    let mut verifier = Verifier::new(Vec::new()).window(64);
    for seq in 1..=EVENTS {
        verifier.push(Location::line(&file(), seq), &unlinked(seq));
    }
    let remembered = verifier.remembered_numbers();
    assert!(remembered < 1_000, "{remembered} numbers remembered");
    let report = verifier.finish();
    // Every other event is the one change that breaks two links in a row (2, 4...), and
    // the last link alone blames the event before it.
    assert_eq!(report.counts[&ProblemKind::Edited], EVENTS / 2);
}

#[test]
fn a_trail_of_numbers_going_down_is_not_remembered_event_by_event() {
    let events = stream::MAX_OPEN as u64 + 20_000;
    let mut verifier = Verifier::new(Vec::new()).window(64);
    verifier.push(Location::line(&file(), 1), &unlinked(1));
    // Seq 2 never comes: the cursor stays at 1, below every event found since.
    for seq in (3..=events).rev() {
        verifier.push(Location::line(&file(), events + 2 - seq), &unlinked(seq));
    }
    let remembered = verifier.remembered_numbers();
    assert!(
        remembered <= stream::MAX_OPEN + 1_000,
        "{remembered} numbers remembered"
    );
    let report = verifier.finish();
    assert!(!report.is_clean());
    assert!(report.counts[&ProblemKind::Reordered] >= events - 4);
}

/// A chain of `n` events of `stream` (a UUIDv7), the first made `after` milliseconds
/// after `since` and one a second from then on.
fn timed_chain(stream: &str, n: u64, since: i64) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    for seq in 1..=n {
        let millis = since + 1_000 * seq as i64;
        let time = chrono::DateTime::from_timestamp_millis(millis)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut chain = json!({"stream": stream, "seq": seq});
        if let Some(before) = events.last() {
            chain["prev"] = json!(EventHash::of_json(before).unwrap().to_string());
        }
        events.push(json!({"kind": "ResourceAccessed", "time": time, "chain": chain}));
    }
    events
}

#[test]
fn trimmed_start_excuses_no_stream_begun_after_an_event_still_there() {
    // The older stream ran until a restart without a state file began the newer one.
    let older = "0193a0c0-0000-7000-8000-000000000000";
    let newer = "0193a0d0-0000-7000-8000-000000000000";
    let began = |id: &str| i64::from_str_radix(&id[..8], 16).unwrap() << 16;
    let mut events = timed_chain(older, 20, began(older));
    events.extend(timed_chain(newer, 20, began(newer)));
    // Retention took the older stream's first five events; someone took the newer one's
    // first five, the events right after the restart, while older events are still there.
    let mut trail = events.clone();
    trail.drain(20..25);
    trail.drain(0..5);
    let report = verify_with(&trail, Verifier::new(Vec::new()).trimmed_start(true));
    assert_eq!(
        errors(&report),
        [(ProblemKind::Deleted, at(16))],
        "{report}"
    );
    let deleted = report.of_kind(ProblemKind::Deleted).next().unwrap();
    assert!(
        deleted
            .detail
            .contains("began after an event still in the input"),
        "{report}"
    );
    assert_eq!(report.of_kind(ProblemKind::TrimmedStart).count(), 1);

    // Two streams running side by side, both cut by retention after the newer one began:
    // no event left is older than either start.
    let mut side_by_side = timed_chain(older, 20, began(newer) - 3_000);
    side_by_side.extend(timed_chain(newer, 20, began(newer)));
    side_by_side.drain(20..25);
    side_by_side.drain(0..5);
    let report = verify_with(&side_by_side, Verifier::new(Vec::new()).trimmed_start(true));
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.of_kind(ProblemKind::TrimmedStart).count(), 2);
}

/// Key names in signatures are the input's: a problem shows only so much of them, however
/// long the names or many the signature lines.
#[test]
fn a_signer_nobody_gave_is_shown_cut() {
    let key = SigningKey::generate("k").unwrap();
    let long = "n".repeat(100_000);
    let service = Arc::new(ServiceInfo {
        name: "orders".into(),
        instance: None,
    });
    let mut dropped = AuditEvent::dropped(service, 1, DropReason::QueueFull, "file");
    dropped.dropped.as_mut().unwrap().signature = Some(format!("{long} AAAAAAAAAAAAAAAA"));
    let note_lines: String = (0..50_000).map(|_| "\u{2014} n AAAAAAAA\n").collect();
    let mut events = chain(3, 3, &key);
    let checkpoint = &mut events[3]["checkpoint"]["note"];
    let note = checkpoint.as_str().unwrap();
    let body = &note[..note.rfind("\n\n").unwrap() + 2];
    *checkpoint = json!(format!("{body}\u{2014} {long} AAAAAAAA\n{note_lines}"));
    events.push(serde_json::to_value(&dropped).unwrap());
    let report = verify(&events, &key);
    assert_eq!(
        report.of_kind(ProblemKind::UnknownKey).count(),
        2,
        "{report}"
    );
    for problem in &report.problems {
        assert!(
            problem.detail.len() < 2_000,
            "{:?}: {} bytes",
            problem.kind,
            problem.detail.len()
        );
    }
}

/// A drop report's reason and sink are the input's: shown without control characters, which
/// a terminal would act on (moving the cursor up and erasing the lines reporting problems).
#[test]
fn text_from_the_input_is_shown_without_control_characters() {
    let service = Arc::new(ServiceInfo {
        name: "orders".into(),
        instance: None,
    });
    let dropped = AuditEvent::dropped(service, 1, DropReason::QueueFull, "file");
    let mut dropped = serde_json::to_value(&dropped).unwrap();
    dropped["dropped"]["reason"] = json!("\u{1b}[1A\u{1b}[2K\rno problems");
    dropped["dropped"]["sink"] = json!("file\u{1b}[2K\u{9b}2K");
    let key = SigningKey::generate("k").unwrap();
    let mut events = chain(3, 3, &key);
    events.push(dropped);
    let report = verify_with(&events, Verifier::new(Vec::new()));
    assert_eq!(
        report.of_kind(ProblemKind::AnnouncedGap).count(),
        1,
        "{report}"
    );
    for problem in &report.problems {
        assert!(
            !problem.detail.chars().any(char::is_control),
            "{:?}",
            problem.detail
        );
    }
}

#[test]
fn a_stream_id_is_shown_without_control_characters() {
    let file = file();
    let mut verifier = Verifier::new(Vec::new());
    let line = br#"{"chain":{"seq":2,"stream":"s\u001b[1A\u001b[2K"},"kind":"ResourceAccessed"}"#;
    verifier.push(Location::line(&file, 1), line);
    let report = verifier.finish();
    let shown = report.to_string();
    assert!(!shown.contains('\u{1b}'), "{shown:?}");
    assert!(shown.contains(r"s\u{1b}[1A\u{1b}[2K"), "{shown:?}");
}
