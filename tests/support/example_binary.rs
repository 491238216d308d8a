//! Where cargo put an example's binary, for the tests that run one (`tests/demo.rs`,
//! `tests/formats.rs`, `tests/examples.rs`).

use std::path::PathBuf;

/// The binary of example `name`: integration tests live in `target/<profile>/deps`, and
/// `cargo test` builds the examples next door.
pub fn example(name: &str) -> PathBuf {
    let mut path = std::env::current_exe().unwrap();
    path.pop();
    path.pop();
    path.push("examples");
    path.push(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} missing: run through `cargo test`",
        path.display()
    );
    path
}
