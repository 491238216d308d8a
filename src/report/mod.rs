//! Reports over stored events, for the people who ask what the trail says: an overview, an
//! access review (who reached what), scope usage and the permissions granted but never used,
//! the tokens' lifecycle, and the failures and anomalies; as one self-contained HTML page,
//! JSON, Markdown or CSV (`docs/reports.md`). `oauth-audit report` is the command line.
//!
//! Events are read once, as they come (JSON-lines files, `.gz` archives, directories of
//! rotated files); what is kept grows with the distinct clients, subjects, routes, addresses
//! and tokens, never with the events.
//!
//! ```
//! use oauth_audit::report::{ReportOptions, Reporter};
//!
//! let mut reporter = Reporter::new(ReportOptions::default());
//! reporter.add_line("audit.jsonl:1", br#"{"kind":"AccessTokenIssued","outcome":"success",
//!     "time":"2026-11-24T14:03:07.123456Z","actor":{"client_id":"billing"},
//!     "grant_type":"client_credentials","scopes":{"granted":["orders:read"]}}"#);
//! reporter.add_line("audit.jsonl:2", b"not an event");
//! let report = reporter.finish();
//! assert_eq!(report.matched(), 1);
//! assert_eq!(report.skipped(), 1);
//! assert!(report.to_markdown().contains("| client_credentials | 1 |"));
//! assert!(report.to_html().unwrap().contains("<svg"));
//! ```

mod aggregate;
mod event;
mod model;
mod render;
mod window;

use std::path::{Path, PathBuf};

use crate::chain::verify;
use crate::event::Timestamp;
use aggregate::Aggregate;
use model::{Filters, Input, Integrity};
pub use model::{RenderError, Report};
pub use window::{parse_days, parse_time};

/// Lines whose location is kept to show in the report (all are counted).
const SKIPPED_LISTED: usize = 20;

/// What a report covers and how it judges: filters and the unused-permission window.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    service: Option<String>,
    client: Option<String>,
    subject: Option<String>,
    unused_after_days: u32,
    now: Option<Timestamp>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            since: None,
            until: None,
            service: None,
            client: None,
            subject: None,
            unused_after_days: 90,
            now: None,
        }
    }
}

impl ReportOptions {
    /// Only events at or after `time`.
    pub fn since(mut self, time: Timestamp) -> Self {
        self.since = Some(time);
        self
    }

    /// Only events before `time`; also the moment unused permissions are judged at
    /// (default: now).
    pub fn until(mut self, time: Timestamp) -> Self {
        self.until = Some(time);
        self
    }

    /// Only events of this service (`service.name`).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Only events of this OAuth client (`actor.client_id`).
    pub fn client(mut self, id: impl Into<String>) -> Self {
        self.client = Some(id.into());
        self
    }

    /// Only events of this end user (`actor.subject`): a data-subject access report, with
    /// every event listed.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// A scope granted but not used for this many days is unused (default 90; 1 to 365,
    /// others are clamped). Clients first seen more recently are left out as too young.
    pub fn unused_after_days(mut self, days: u32) -> Self {
        self.unused_after_days = days.clamp(1, 365);
        self
    }

    /// The report's "now" (default: the clock), for reports that must come out the same.
    pub fn now(mut self, now: Timestamp) -> Self {
        self.now = Some(now);
        self
    }
}

/// Builds a report from lines of JSON, one event each, in any order.
pub struct Reporter {
    options: ReportOptions,
    now: Timestamp,
    since: Option<String>,
    until: Option<String>,
    input: Input,
    aggregate: Aggregate,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// A reporter with nothing read yet.
    pub fn new(options: ReportOptions) -> Self {
        Reporter {
            now: options.now.unwrap_or_else(Timestamp::now),
            since: options.since.map(|t| t.to_string()),
            until: options.until.map(|t| t.to_string()),
            aggregate: Aggregate::new(options.subject.is_some()),
            input: Input::default(),
            options,
        }
    }

    /// Reads one line; `location` (`file:line`) names it if it is not an event.
    pub fn add_line(&mut self, location: &str, line: &[u8]) {
        self.add(&location, line);
    }

    /// [`Reporter::add_line`], with the location written out only for a line skipped.
    fn add(&mut self, location: &dyn std::fmt::Display, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.input.lines += 1;
        let Ok(event) = serde_json::from_slice::<event::Event<'_>>(line) else {
            self.skip(format!("{location}: not an oauth-audit event"));
            return;
        };
        let Some(time) = window::canonical_time(&event.time) else {
            self.skip(format!("{location}: `time` is not RFC 3339"));
            return;
        };
        self.input.events += 1;
        let options = &self.options;
        if self.since.as_deref().is_some_and(|since| *time < *since)
            || self.until.as_deref().is_some_and(|until| *time >= *until)
            || options
                .service
                .as_deref()
                .is_some_and(|s| event.service_name() != Some(s))
            || options
                .client
                .as_deref()
                .is_some_and(|c| event.client() != Some(c))
            || options
                .subject
                .as_deref()
                .is_some_and(|s| event.subject() != Some(s))
        {
            return;
        }
        self.input.matched += 1;
        self.aggregate.add(&event, &time);
    }

    fn skip(&mut self, what: String) {
        self.input.skipped += 1;
        if self.input.skipped_examples.len() < SKIPPED_LISTED {
            self.input.skipped_examples.push(what);
        }
    }

    /// Whether any event read so far was hash-chained.
    pub fn saw_chained_events(&self) -> bool {
        self.aggregate.chained()
    }

    /// The report of everything read.
    pub fn finish(self) -> Report {
        let as_of = self.options.until.unwrap_or(self.now);
        let days = self.options.unused_after_days;
        let window_start =
            Timestamp::from_unix_micros(as_of.unix_micros() - i64::from(days) * 86_400 * 1_000_000)
                .unwrap_or(as_of);
        let options = self.options;
        Report {
            schema: "oauth-audit-report/1",
            generated_at: self.now.to_string(),
            as_of: as_of.to_string(),
            unused_after_days: days,
            filters: Filters {
                since: self.since,
                until: self.until,
                service: options.service,
                client: options.client,
                subject: options.subject,
            },
            input: self.input,
            sections: self.aggregate.finish(&window_start.to_string()),
            integrity: None,
        }
    }
}

/// Reads JSON-lines files, plain or gzip-compressed, and directories of rotated files (their
/// `.jsonl` and `.jsonl.gz` files in name order) into a report. `progress` is told of every
/// line read. When the events are chained, the report says what the chain verifier says of
/// the same files (signatures not checked).
///
/// A line that is not an event is counted and named in the report, and reading goes on; a
/// damaged archive is read up to the damage, and named too.
///
/// # Errors
///
/// When a path cannot be read, or a directory holds no event file.
pub fn report_files(
    paths: &[PathBuf],
    options: ReportOptions,
    progress: &mut dyn FnMut(&Path),
) -> Result<Report, verify::InputError> {
    let mut files = verify::expand(paths)?;
    // A file named twice (a directory and a file in it) is read once: every number would
    // count its events twice.
    let mut seen = std::collections::HashSet::new();
    files.retain(|file| seen.insert(std::fs::canonicalize(file).unwrap_or_else(|_| file.clone())));
    let mut reporter = Reporter::new(options);
    reporter.input.files = files.iter().map(|f| f.display().to_string()).collect();
    for file in &files {
        let broken = verify::for_each_line(file, &mut |location, line| {
            progress(file);
            reporter.add(&location, line);
        })?;
        if let Some((location, error)) = broken {
            reporter.input.broken.push(format!("{location}: {error}"));
        }
    }
    let chained = reporter.saw_chained_events();
    let mut report = reporter.finish();
    if chained {
        report.integrity = verify::verify_files(&files, Vec::new(), None)
            .ok()
            .map(|found| Integrity {
                events: found.events,
                streams: found.streams,
                checkpoints: found.checkpoints,
                errors: found.errors,
                warnings: found.warnings,
                summary: found.summary(),
            });
    }
    Ok(report)
}

impl Report {
    /// Events that passed the filters: what the sections count.
    pub fn matched(&self) -> u64 {
        self.input.matched
    }

    /// Lines that were not oauth-audit events.
    pub fn skipped(&self) -> u64 {
        self.input.skipped
    }

    /// Where the first skipped lines are (`file:line` and why), at most 20.
    pub fn skipped_examples(&self) -> &[String] {
        &self.input.skipped_examples
    }

    /// Files that broke off (a damaged archive): where, and why.
    pub fn broken(&self) -> &[String] {
        &self.input.broken
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The report as Markdown: a heading per section, a table per table.
    pub fn to_markdown(&self) -> String {
        render::markdown(self)
    }

    /// The report as one self-contained HTML page: inline styles, charts as inline SVG,
    /// sortable tables, nothing fetched from anywhere, readable printed.
    ///
    /// # Errors
    ///
    /// When a chart cannot be drawn (not expected) or the template fails.
    pub fn to_html(&self) -> Result<String, RenderError> {
        render::html(self)
    }

    /// One CSV file per table in `dir` (made if missing), named after the table.
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write_csv(&self, dir: &Path) -> Result<(), RenderError> {
        render::csv(self, dir)
    }
}
