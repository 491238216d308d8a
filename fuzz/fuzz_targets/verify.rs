//! `oauth-audit verify` on any input: lines of a trail as an attacker may write them.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use oauth_audit::chain::verify::{Location, Report, Verifier};

fn verify(data: &[u8], verifier: Verifier) -> Report {
    let mut verifier = verifier;
    let file: Arc<str> = "fuzz.jsonl".into();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        verifier.push(Location::line(&file, i as u64 + 1), line);
    }
    verifier.finish()
}

fuzz_target!(|data: &[u8]| {
    // A small window, so that the input leaves it often.
    let lazy = verify(data, Verifier::new(Vec::new()).window(3));
    let lines = data.split(|b| *b == b'\n').count() as u64;
    assert!(lazy.events <= lines);
    let counted: u64 = lazy.counts.values().sum();
    assert_eq!(counted, lazy.problems.len() as u64 + lazy.omitted);
    assert_eq!(counted, lazy.errors + lazy.warnings + lazy.notes);
    // Lines kept for a later look, or canonicalised at once: the same findings.
    let eager = verify(data, Verifier::new(Vec::new()).window(3).line_budget(0));
    assert_eq!(lazy.counts, eager.counts, "{lazy}\n---\n{eager}");
});
