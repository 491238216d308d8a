//! `verify`'s memory on crafted input: it must not grow with the number of events
//! (`docs/integrity.md`, "Memory"). The only test of this binary, so that the resident size
//! it measures is its own.

use std::sync::Arc;

use oauth_audit::chain::verify::{Location, ProblemKind, Verifier};
use oauth_audit::event::EventHash;

/// The resident size of this process, in kB.
fn resident_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap()
}

/// A stream of jumps (seq 1, 3, 5...): each skipped number is a gap that waits to the end
/// for a drop report or a late event. 800,000 gaps once took about 90 MB; a gzip file of
/// such lines is a few bytes a line, so a small archive could take all memory.
#[cfg(target_os = "linux")]
#[test]
fn a_trail_of_gaps_does_not_make_memory_grow_with_it() {
    const EVENTS: u64 = 800_000;
    let file: Arc<str> = "gaps.jsonl".into();
    let prev = EventHash::of_bytes(b"anything").to_string();
    let mut verifier = Verifier::new(Vec::new());
    let before = resident_kb();
    for n in 0..EVENTS {
        let line = format!(
            r#"{{"chain":{{"prev":"{prev}","seq":{},"stream":"s"}},"kind":"ResourceAccessed"}}"#,
            2 * n + 1
        );
        verifier.push(Location::line(&file, n + 1), line.as_bytes());
    }
    let grown = resident_kb().saturating_sub(before);
    let report = verifier.finish();
    assert!(!report.is_clean());
    assert_eq!(
        report.counts[&ProblemKind::Deleted],
        EVENTS - 1,
        "{}",
        report.summary()
    );
    assert!(
        grown < 40 << 10,
        "memory grew by {grown} kB over {EVENTS} events"
    );
}
