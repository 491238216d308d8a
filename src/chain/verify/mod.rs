//! Checking a chained trail: what `oauth-audit verify` runs (`docs/integrity.md`).
//!
//! A [`Verifier`] takes the records of a trail one by one, each with its place (a file and
//! line, or a table row), recomputes every event's hash, follows every stream's chain,
//! checks the signatures of checkpoints and drop reports, and ends with a [`Report`] that
//! names each [`Problem`]: its [`ProblemKind`] (`edited`, `deleted`, `inserted`,
//! `reordered`, `truncated`, `bad_signature`, `unknown_key`, and the `unsealed_tail`
//! warning...), its [`Location`] and the sequence numbers concerned. It streams: memory
//! does not grow with the number of events (see [`Verifier`]).
//!
//! One file per role: `verifier.rs` (records in, checkpoints and drop reports, the report
//! out), `stream.rs` (one stream's state machine: gaps, repeats, order, broken links),
//! `canonical.rs` (the hash of a parsed event, fast), `report.rs` (what is found, and the
//! summary line) and `input.rs` (JSON-lines files, plain or compressed, and directories of
//! rotated files). Tables are read by
//! `backend::PostgresEventReader` (feature `postgres`).
//!
//! ```
//! use std::sync::Arc;
//! use oauth_audit::chain::verify::{Location, ProblemKind, Verifier};
//! use oauth_audit::chain::{Chaining, SigningKey};
//! use oauth_audit::writer::{Auditor, MemoryWriter};
//! # use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate("orders-api")?;
//! let memory = MemoryWriter::new();
//! let auditor = Auditor::builder()
//!     .chain(Chaining::new().signing_key(key.clone()))
//!     .writer(memory.clone())
//!     .build()?;
//! for _ in 0..3 {
//! #   let event = AuditEvent::new(auditor.service().clone(), Timestamp::now(),
//! #       EventKind::ResourceAccessed, Outcome::Success);
//!     auditor.emit(event);
//! }
//! auditor.shutdown().await; // seals the chain with a checkpoint
//!
//! let check = |events: &[serde_json::Value]| {
//!     let mut verifier = Verifier::new(vec![key.verifying_key()]);
//!     let table: Arc<str> = "memory".into();
//!     for (row, event) in events.iter().enumerate() {
//!         verifier.push_value(Location::row(&table, row.to_string()), event.clone());
//!     }
//!     verifier.finish()
//! };
//! let mut events = memory.json();
//! let report = check(&events);
//! assert!(report.is_clean(), "{report}");
//! assert_eq!(report.summary(), "4 events in 1 stream, 1 checkpoint: no problems, 1 note");
//!
//! events[1]["http"] = serde_json::json!({"status": 200}); // someone edits event 2
//! let report = check(&events);
//! let edited: Vec<_> = report.of_kind(ProblemKind::Edited).collect();
//! assert_eq!(edited.len(), 1);
//! assert_eq!(edited[0].location, Some(Location::row(&"memory".into(), "1")));
//! # Ok(()) }
//! ```

mod canonical;
mod input;
mod report;
mod stream;
mod verifier;

use std::path::{Path, PathBuf};

pub use input::{
    expand, for_each_line, read_checkpoints, read_file, settled, total_size, InputError, Line,
    Lines,
};
pub use report::{Location, Problem, ProblemKind, Report, SeqSpan, Severity};
pub use verifier::{Verifier, DEFAULT_LINE_BUDGET, DEFAULT_WINDOW};

use super::VerifyingKey;

/// Verifies JSON-lines files and directories of rotated files (in the order given), with
/// the checkpoints kept in `checkpoints` when given: the library form of `oauth-audit
/// verify PATH... [--checkpoints FILE] [--key PUB]...`. For other options (such as
/// [`Verifier::sink`] or [`Verifier::trimmed_start`]), build a [`Verifier`] and call
/// [`Verifier::verify_files`].
pub fn verify_files(
    paths: &[PathBuf],
    keys: Vec<VerifyingKey>,
    checkpoints: Option<&Path>,
) -> Result<Report, InputError> {
    Verifier::new(keys).verify_files(paths, checkpoints)
}

impl Verifier {
    /// Reads the checkpoints kept in `checkpoints` (when given), then JSON-lines files and
    /// directories of rotated files in the order given, and gives the report.
    pub fn verify_files(
        mut self,
        paths: &[PathBuf],
        checkpoints: Option<&Path>,
    ) -> Result<Report, InputError> {
        let files = expand(paths)?;
        if let Some(checkpoints) = checkpoints {
            read_checkpoints(checkpoints, &mut self)?;
        }
        for file in &files {
            read_file(file, &mut self, &mut |_| {})?;
        }
        Ok(self.finish())
    }
}

#[cfg(test)]
mod tests;
