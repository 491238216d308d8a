//! Advisory file locks that tell a lock held by another writer from one held for a moment
//! by a program this process is spawning.
//!
//! A process that spawns a program forks first, and the child shares the parent's open files
//! until it execs: for that moment the child holds every `flock` the parent holds. A writer
//! rebuilt (a spool or chain state file reopened) while another thread spawns a program
//! would otherwise find its own file in use. A leaf: it depends on nothing in the crate.

use std::fs::File;
use std::io;
use std::time::{Duration, Instant};

/// How long a lock held elsewhere is waited for before the file is called in use.
pub(crate) const WAIT: Duration = Duration::from_secs(1);

/// How [`try_lock`] locks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Shared,
    Exclusive,
}

/// Takes an advisory lock on `file`, retrying while someone else holds it, for at most
/// [`WAIT`]. `Ok(false)` when it is still held then.
pub(crate) fn try_lock(file: &File, mode: Mode) -> io::Result<bool> {
    try_lock_within(file, mode, WAIT)
}

fn try_lock_within(file: &File, mode: Mode, wait: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        let attempt = match mode {
            Mode::Shared => fs4::FileExt::try_lock_shared(file),
            Mode::Exclusive => fs4::FileExt::try_lock(file),
        };
        match attempt {
            Ok(()) => return Ok(true),
            Err(fs4::TryLockError::Error(err)) => return Err(err),
            Err(fs4::TryLockError::WouldBlock) => {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(false);
                }
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_held_elsewhere_is_waited_for_then_refused() {
        let path = std::env::temp_dir().join(format!("oauth-audit-lock-{}", uuid::Uuid::now_v7()));
        let first = File::create(&path).unwrap();
        let second = File::open(&path).unwrap();
        assert!(try_lock_within(&first, Mode::Exclusive, Duration::ZERO).unwrap());
        let started = Instant::now();
        assert!(!try_lock_within(&second, Mode::Shared, Duration::from_millis(30)).unwrap());
        assert!(started.elapsed() >= Duration::from_millis(30));
        // Released while the second waits: it gets the lock.
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(first);
        });
        assert!(try_lock_within(&second, Mode::Exclusive, Duration::from_secs(5)).unwrap());
        releaser.join().unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
