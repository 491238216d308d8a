//! Runs one test of the current test binary as a child process under a file size limit: a
//! write past the limit fails (EFBIG) as a write to a full disk does.
//!
//! The child is this same test binary, re-executed to run one test that only acts when the
//! variable it is given is set; without it, that test is a no-op.

use std::ffi::OsStr;

/// Runs the test `test` of this binary in a child whose files cannot grow past `blocks`
/// blocks (`ulimit -f`: 512 bytes each in dash, 1 KiB in bash; 0 refuses every write to a
/// file), with `var` set to `value`; panics with the child's output if it failed.
pub fn run_child_under_file_size_limit(
    test: &str,
    blocks: u32,
    var: &str,
    value: impl AsRef<OsStr>,
) {
    // The shell ignores SIGXFSZ (inherited across exec) and lowers the soft limit. The
    // child's output goes to pipes: the test's own may be a file already past the limit (a
    // CI log), where the child could not print.
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -S -f {blocks} && exec \"$0\" --exact \"$1\" --test-threads=1"
        ))
        .arg(std::env::current_exe().unwrap())
        .arg(test)
        .env(var, value)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "the child failed: {}\n{}{}",
        child.status,
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
}
