//! The spool's recovery and line reader on whatever a crash or a disk fault left in a segment.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    // In memory where the system has it: recovery syncs files, and disks are slow.
    let dir = DIR.get_or_init(|| {
        tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("temporary directory")
    });
    oauth_audit::fuzzing::spool_segment(&dir.path().join("spool"), data);
});
