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
//! // `_` is escaped in Markdown cells, so that no value becomes emphasis.
//! assert!(report.to_markdown().contains(r"| client\_credentials | 1 |"));
//! assert!(report.to_html().unwrap().contains("<svg"));
//! ```

mod aggregate;
mod event;
mod model;
mod options;
#[cfg(feature = "postgres")]
mod postgres;
mod render;
mod reporter;
mod window;

use std::path::Path;

pub use model::{RenderError, Report};
pub use options::ReportOptions;
#[cfg(feature = "postgres")]
pub use postgres::report_postgres;
pub use reporter::{report_files, Reporter};
pub use window::{parse_days, parse_time};

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

    /// One CSV file per table in `dir` (made if missing), named after the table. A file it
    /// creates is readable by its owner only (mode `0o600` on Unix), as the writers' files
    /// are: the tables name people; an existing file keeps its permissions. The tables only
    /// some reports have (`subject_events.csv`, `integrity.csv`) are removed from `dir` when
    /// this report has not got them, so that an earlier report's cannot pass for this one's.
    ///
    /// # Errors
    ///
    /// When a file cannot be written.
    pub fn write_csv(&self, dir: &Path) -> Result<(), RenderError> {
        render::csv(self, dir)
    }
}
