//! A directory of a test's own under the system's temporary directory.

use std::path::PathBuf;

/// A new directory named `oauth-audit-{name}-…`, and the guard that removes it when the test
/// ends, passed or failed.
pub fn temp_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let guard = tempfile::Builder::new()
        .prefix(&format!("oauth-audit-{name}-"))
        .tempdir()
        .unwrap();
    let dir = guard.path().to_path_buf();
    (guard, dir)
}
