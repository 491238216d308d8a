//! Kills a writer process in the middle of a stream, to check that what it spooled is
//! delivered after a restart.
//!
//! The child is this same test binary, re-executed to run one `#[ignore]`d test that only
//! acts when [`CHILD_ENV`] is set. For a backend of your own:
//!
//! ```ignore
//! #[tokio::test]
//! #[ignore = "run by the crash test as a child process"]
//! async fn crash_child() {
//!     let Some(spool) = support::crash::child_spool_dir() else { return };
//!     let delivery = Delivery::builder(backend_that_is_down()).spool_dir(spool).build().unwrap();
//!     support::crash::write_until_killed(delivery, 20).await;
//! }
//!
//! #[tokio::test]
//! async fn spooled_events_survive_a_kill() {
//!     let spool = /* a temp dir */;
//!     let mut child = support::crash::ChildWriter::spawn("crash_child", &spool, &[]);
//!     child.wait_spooled(200, Duration::from_secs(60));
//!     let spooled = child.kill(); // SIGKILL, then every id the child reported as spooled
//!     // Build the writer again on `spool` with the backend up, flush until the spool is
//!     // empty, and check every id in `spooled` arrived exactly once.
//! }
//! ```

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use oauth_audit::delivery::{Backend, Delivery};
use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
use uuid::Uuid;

/// Set (to the spool directory) in the child's environment.
pub const CHILD_ENV: &str = "OAUTH_AUDIT_CRASH_CHILD_SPOOL";
/// Prefix of the child's stdout lines naming an event that reached the spool.
pub const SPOOLED: &str = "OAUTH_AUDIT_SPOOLED ";

/// The child's spool directory, when this process is the child.
pub fn child_spool_dir() -> Option<PathBuf> {
    std::env::var_os(CHILD_ENV).map(PathBuf::from)
}

/// Child side: writes batches of `batch_size` events through `delivery` until killed,
/// printing each event's id once `write` returned, after checking it was neither delivered
/// nor dropped (the backend must be down).
pub async fn write_until_killed<B: Backend>(mut delivery: Delivery<B>, batch_size: usize) {
    let stats = delivery.stats();
    let mut service = ServiceInfo::new("crash-test");
    service.instance = Some(std::process::id().to_string());
    let service = Arc::new(service);
    loop {
        let batch: Vec<Arc<AuditEvent>> = (0..batch_size)
            .map(|_| {
                Arc::new(AuditEvent::new(
                    service.clone(),
                    Timestamp::now(),
                    EventKind::TokenRevoked,
                    Outcome::Success,
                ))
            })
            .collect();
        delivery.write(&batch).await.unwrap();
        assert_eq!(stats.delivered(), 0, "the child's backend must be down");
        assert_eq!(
            stats.dropped_total(),
            0,
            "the child's spool must not fill up"
        );
        let report: String = batch
            .iter()
            .map(|e| format!("{SPOOLED}{}\n", e.id))
            .collect();
        // Fails once the parent is gone (broken pipe), which ends the child.
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(report.as_bytes()).unwrap();
        stdout.flush().unwrap();
    }
}

/// Parent side: a child writer process and the ids it reported as spooled.
pub struct ChildWriter {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    spooled: Vec<Uuid>,
}

impl ChildWriter {
    /// Runs the `#[ignore]`d test `test_name` of the current test binary as a child, with
    /// [`CHILD_ENV`] set to `spool` and the extra environment given.
    pub fn spawn(test_name: &str, spool: &Path, env: &[(&str, String)]) -> ChildWriter {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args([
                test_name,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, spool)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the child writer");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        ChildWriter {
            child: Some(child),
            lines,
            spooled: Vec::new(),
        }
    }

    fn take_line(&mut self, line: &str) {
        // libtest may have written "test name ... " on the same line before the first one.
        if let Some(at) = line.find(SPOOLED) {
            let id = line[at + SPOOLED.len()..].trim();
            self.spooled
                .push(id.parse().expect("the child prints event ids"));
        }
    }

    /// Waits until the child reported at least `count` spooled events; panics if it exits
    /// or `timeout` passes first.
    pub fn wait_spooled(&mut self, count: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.spooled.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.take_line(&line),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "the child writer reported {} spooled events in {timeout:?}, expected {count}",
                    self.spooled.len()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    panic!(
                        "the child writer exited ({status:?}) after {} spooled events (see its \
                         output above)",
                        self.spooled.len()
                    );
                }
            }
        }
        self.spooled.len()
    }

    /// SIGKILLs the child and returns every id it reported as spooled.
    pub fn kill(mut self) -> Vec<Uuid> {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the child writer");
            child.wait().expect("reap the child writer");
        }
        // The reader thread ends at EOF; lines written before the kill are still reported.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.take_line(&line);
        }
        std::mem::take(&mut self.spooled)
    }
}

impl Drop for ChildWriter {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
