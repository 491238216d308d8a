//! What `verify` found: the problems, each with its kind, place and sequence numbers, and
//! the summary line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

/// What is wrong (or worth knowing) about a part of the trail; `docs/integrity.md` has the
/// table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The event's hash does not match the next event's `chain.prev` or a checkpoint, or a
    /// checkpoint's fields disagree with its signed note.
    Edited,
    /// Sequence numbers missing and not announced by a drop report.
    Deleted,
    /// An event with a sequence number already seen, or without a chain in a chained trail.
    Inserted,
    /// An event found after events that follow it.
    Reordered,
    /// Events a checkpoint (from `--checkpoints`) covers are missing at the end.
    Truncated,
    /// A checkpoint or drop report whose signature does not verify (or is missing).
    BadSignature,
    /// A checkpoint or drop report signed by none of the given keys.
    UnknownKey,
    /// With keys given: a stream that no valid checkpoint covers at all, so nothing vouches
    /// for any of its events.
    Unsealed,
    /// A line that is not a JSON object, or input that could not be read to its end.
    Malformed,
    /// Nothing in the input is chained: nothing could be verified.
    Unchained,
    /// Events after the stream's last valid checkpoint (a warning).
    UnsealedTail,
    /// Events lost and announced by a drop report (a note).
    AnnouncedGap,
    /// A stream begins (its event 1, without `prev`): a new auditor, or a restart without
    /// a state file (a note).
    NewStream,
    /// A stream's first events are not in the input and the verifier was told that the
    /// oldest files were removed by retention ([`Verifier::trimmed_start`]): a note, where
    /// it would otherwise be `deleted`.
    ///
    /// [`Verifier::trimmed_start`]: super::Verifier::trimmed_start
    TrimmedStart,
    /// Events without a chain before the first chained one, accepted as written before
    /// chaining was turned on ([`Verifier::unchained_prefix`]): a note, where it would
    /// otherwise be `inserted`.
    ///
    /// [`Verifier::unchained_prefix`]: super::Verifier::unchained_prefix
    UnchainedPrefix,
}

impl ProblemKind {
    /// How serious this kind is.
    pub fn severity(self) -> Severity {
        match self {
            ProblemKind::UnsealedTail => Severity::Warning,
            ProblemKind::AnnouncedGap
            | ProblemKind::NewStream
            | ProblemKind::TrimmedStart
            | ProblemKind::UnchainedPrefix => Severity::Note,
            _ => Severity::Error,
        }
    }

    /// The name used in reports and in `--json` (`edited`, `unsealed_tail`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Edited => "edited",
            ProblemKind::Deleted => "deleted",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Truncated => "truncated",
            ProblemKind::BadSignature => "bad_signature",
            ProblemKind::UnknownKey => "unknown_key",
            ProblemKind::Unsealed => "unsealed",
            ProblemKind::Malformed => "malformed",
            ProblemKind::Unchained => "unchained",
            ProblemKind::UnsealedTail => "unsealed_tail",
            ProblemKind::AnnouncedGap => "announced_gap",
            ProblemKind::NewStream => "new_stream",
            ProblemKind::TrimmedStart => "trimmed_start",
            ProblemKind::UnchainedPrefix => "unchained_prefix",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a finding makes the trail untrustworthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Tampering, or something that cannot be told apart from it: exit code 1.
    Error,
    /// Not proven wrong, but not protected either (events after the last checkpoint).
    Warning,
    /// For the record (a new stream, an announced gap).
    Note,
}

/// Where a problem is: a file and line, or a table row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Location {
    /// A line of a JSON-lines file (from 1); a compressed file's lines are counted after
    /// decompression.
    Line {
        /// The file as given (or found in a given directory).
        file: Arc<str>,
        /// The line number, from 1.
        line: u64,
    },
    /// A row of a PostgreSQL table.
    Row {
        /// The table.
        table: Arc<str>,
        /// The row's `id`.
        row: String,
    },
}

impl Location {
    /// Line `line` of `file`.
    pub fn line(file: &Arc<str>, line: u64) -> Location {
        Location::Line {
            file: file.clone(),
            line,
        }
    }

    /// A file name as locations carry it.
    pub fn file_name(path: &Path) -> Arc<str> {
        path.display().to_string().into()
    }

    /// The row `row` of `table`.
    pub fn row(table: &Arc<str>, row: impl Into<String>) -> Location {
        Location::Row {
            table: table.clone(),
            row: row.into(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line { file, line } => write!(f, "{file}:{line}"),
            Location::Row { table, row } => write!(f, "{table} row {row}"),
        }
    }
}

/// Sequence numbers of one stream, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct SeqSpan {
    /// The first.
    pub first: u64,
    /// The last (equal to `first` for one event).
    pub last: u64,
}

impl SeqSpan {
    /// One sequence number.
    pub fn one(seq: u64) -> SeqSpan {
        SeqSpan {
            first: seq,
            last: seq,
        }
    }
}

impl fmt::Display for SeqSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "seq {}", self.first)
        } else {
            write!(f, "seq {}..={}", self.first, self.last)
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What it is.
    pub kind: ProblemKind,
    /// How serious it is (follows from the kind).
    pub severity: Severity,
    /// Where: the event concerned, or for a gap the first event after it, or for a cut
    /// tail the last event left. Absent for the whole input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// The stream concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<Arc<str>>,
    /// The sequence numbers concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seqs: Option<SeqSpan>,
    /// What exactly, in a sentence.
    pub detail: String,
}

impl Problem {
    pub(super) fn new(kind: ProblemKind, location: Option<Location>, detail: String) -> Problem {
        Problem {
            kind,
            severity: kind.severity(),
            location,
            stream: None,
            seqs: None,
            detail,
        }
    }

    pub(super) fn in_stream(mut self, stream: &Arc<str>, seqs: SeqSpan) -> Problem {
        self.stream = Some(stream.clone());
        self.seqs = Some(seqs);
        self
    }
}

/// Writes `text` with its control characters escaped (`\u{1b}`), whole: a stream id, a
/// row id or a detail may hold text from the input, which a terminal would act on (moving
/// the cursor up, erasing the lines that report problems).
fn write_plain(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    crate::chain::write_shown(f, text, usize::MAX)
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => {
                write_plain(f, &location.to_string())?;
                f.write_str(": ")?;
            }
            None => f.write_str("(input): ")?,
        }
        let label = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
            Severity::Note => "note: ",
        };
        write!(f, "{label}{}", self.kind)?;
        if let Some(stream) = &self.stream {
            f.write_str(" (stream ")?;
            write_plain(f, stream)?;
            if let Some(seqs) = &self.seqs {
                write!(f, ", {seqs}")?;
            }
            f.write_str(")")?;
        }
        f.write_str(": ")?;
        write_plain(f, &self.detail)
    }
}

/// The most problems a report lists one by one; beyond it they are only counted, so that
/// the memory of a verification stays bounded however broken the input is.
pub(super) const MAX_LISTED: usize = 10_000;

/// Collects problems as the verification goes.
#[derive(Debug, Default)]
pub(super) struct Problems {
    pub(super) listed: Vec<Problem>,
    pub(super) counts: BTreeMap<ProblemKind, u64>,
    pub(super) omitted: u64,
}

impl Problems {
    pub(super) fn push(&mut self, problem: Problem) {
        *self.counts.entry(problem.kind).or_default() += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(problem);
        } else {
            self.omitted += 1;
        }
    }
}

/// The outcome of a verification: what was read and every problem found.
///
/// Its `Display` lists the problems, one a line, and ends with the summary:
/// `12,345 events in 3 streams, 13 checkpoints: 2 problems`. Serialised (`--json`), it has
/// the same content for machines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// Events read (lines or rows that are events, checkpoints included).
    pub events: u64,
    /// Streams with at least one event in the input.
    pub streams: u64,
    /// `AuditCheckpoint` events in the input.
    pub checkpoints: u64,
    /// Events without a chain before the first chained one (chaining turned on later).
    pub unchained_prefix: u64,
    /// Whether signatures were checked (false when no key was given: checkpoints and drop
    /// reports were then only checked for consistency with the chain).
    pub signatures_checked: bool,
    /// Errors found (problems of severity `error`).
    pub errors: u64,
    /// Warnings found.
    pub warnings: u64,
    /// Notes.
    pub notes: u64,
    /// How many findings of each kind, listed or not.
    pub counts: BTreeMap<ProblemKind, u64>,
    /// The findings, in the order found (up to 10,000).
    pub problems: Vec<Problem>,
    /// Findings beyond those listed.
    pub omitted: u64,
}

impl Report {
    pub(super) fn new(
        events: u64,
        streams: u64,
        checkpoints: u64,
        unchained_prefix: u64,
        signatures_checked: bool,
        problems: Problems,
    ) -> Report {
        let mut report = Report {
            events,
            streams,
            checkpoints,
            unchained_prefix,
            signatures_checked,
            errors: 0,
            warnings: 0,
            notes: 0,
            counts: problems.counts,
            problems: problems.listed,
            omitted: problems.omitted,
        };
        for (kind, count) in &report.counts {
            match kind.severity() {
                Severity::Error => report.errors += count,
                Severity::Warning => report.warnings += count,
                Severity::Note => report.notes += count,
            }
        }
        report
    }

    /// True when nothing is wrong: no errors (warnings and notes allowed). `oauth-audit
    /// verify` exits 0 exactly then.
    pub fn is_clean(&self) -> bool {
        self.errors == 0
    }

    /// The findings of one kind.
    pub fn of_kind(&self, kind: ProblemKind) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| p.kind == kind)
    }

    /// The last line of the report: `12,345 events in 3 streams, 13 checkpoints: 2
    /// problems` (then warnings and notes, when there are any).
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} in {}, {}: {}",
            counted(self.events, "event", "events"),
            counted(self.streams, "stream", "streams"),
            counted(self.checkpoints, "checkpoint", "checkpoints"),
            match self.errors {
                0 => "no problems".to_owned(),
                n => counted(n, "problem", "problems"),
            }
        );
        if self.warnings > 0 {
            line.push_str(&format!(
                ", {}",
                counted(self.warnings, "warning", "warnings")
            ));
        }
        if self.notes > 0 {
            line.push_str(&format!(", {}", counted(self.notes, "note", "notes")));
        }
        line
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(f, "{problem}")?;
        }
        if self.omitted > 0 {
            writeln!(
                f,
                "... and {} more (counted in the summary)",
                thousands(self.omitted)
            )?;
        }
        if !self.signatures_checked {
            writeln!(
                f,
                "signatures not checked: no --key given (checkpoints and drop reports were only \
                 checked against the chain)"
            )?;
        }
        write!(f, "{}", self.summary())
    }
}

fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_reads_as_documented() {
        let mut problems = Problems::default();
        for _ in 0..2 {
            problems.push(Problem::new(ProblemKind::Edited, None, "x".into()));
        }
        problems.push(Problem::new(ProblemKind::NewStream, None, "x".into()));
        let report = Report::new(12_345, 3, 13, 0, true, problems);
        assert_eq!(
            report.summary(),
            "12,345 events in 3 streams, 13 checkpoints: 2 problems, 1 note"
        );
        assert!(!report.is_clean());
        let clean = Report::new(1, 1, 0, 0, true, Problems::default());
        assert_eq!(
            clean.summary(),
            "1 event in 1 stream, 0 checkpoints: no problems"
        );
        assert!(clean.is_clean());
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn problems_print_their_place_kind_and_seqs() {
        let file: Arc<str> = "audit.jsonl".into();
        let problem = Problem::new(
            ProblemKind::Deleted,
            Some(Location::line(&file, 12)),
            "not announced".into(),
        )
        .in_stream(&"s1".into(), SeqSpan { first: 3, last: 5 });
        assert_eq!(
            problem.to_string(),
            "audit.jsonl:12: deleted (stream s1, seq 3..=5): not announced"
        );
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["kind"], "deleted");
        assert_eq!(json["severity"], "error");
        assert_eq!(json["location"]["file"], "audit.jsonl");
        assert_eq!(json["location"]["line"], 12);
        assert_eq!(json["seqs"]["first"], 3);
    }
}
