//! Entry points for the cargo-fuzz targets in `fuzz/` into parsers that are not public.
//!
//! Not a public API: it exists only with the `fuzzing` feature, and it changes with the
//! internals it reaches. Every function here checks the invariants of what it drives and
//! panics when one breaks, so that a fuzzer reports it.

use std::path::Path;

pub use crate::context::forwarded::{
    forwarded as parse_forwarded, single_value as parse_single_value,
    x_forwarded_for as parse_x_forwarded_for, Hop,
};
pub use crate::oauth::fuzz::{authorize_response, form, json_response, login_response};
pub use crate::resource::read_bearer_challenge;

use crate::sink::backlog::spool::{Spool, SpoolConfig};

/// Puts `bytes` into a spool directory as its only segment (as a crash or a disk fault may
/// leave it), opens the spool and reads everything back.
///
/// Checks: recovery never fails on content; every whole line is either an event or
/// quarantined, never both and never lost; a torn last line is cut, not read.
pub fn spool_segment(dir: &Path, bytes: &[u8]) {
    // The directory is reused from one input to the next: start from nothing each time.
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("spool test directory");
    std::fs::write(dir.join(format!("{:020}.jsonl", 0)), bytes).expect("segment written");
    let (mut spool, recovered) = Spool::open(SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: u64::MAX,
        segment_bytes: 1 << 20,
        fsync: false,
    })
    .expect("a spool opens whatever its segment holds");
    let whole_lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    let torn = bytes.len() - bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    assert_eq!(recovered.torn_bytes, torn as u64, "torn tail measured");
    assert_eq!(
        spool.events(),
        whole_lines,
        "one pending entry per whole line"
    );
    let (mut events, mut corrupt) = (0u64, 0u64);
    loop {
        let batch = spool.read_batch(64, 1 << 20).expect("segment readable");
        if batch.lines == 0 {
            break;
        }
        assert_eq!(
            batch.lines,
            batch.events.len() as u64 + batch.corrupt,
            "each line read is an event or quarantined"
        );
        events += batch.events.len() as u64;
        corrupt += batch.corrupt;
        spool.ack(&batch).expect("ack");
    }
    assert_eq!(events + corrupt, whole_lines, "no whole line lost");
    assert!(spool.is_empty());
}
