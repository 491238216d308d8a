//! The reporter: events in, one at a time or in groups, a [`Report`] out; and the
//! JSON-lines source that feeds it from files.

use std::path::{Path, PathBuf};

use super::aggregate::Aggregate;
use super::event;
use super::model::{Filters, Input, Integrity, Report};
use super::options::ReportOptions;
use super::window;
use crate::chain::verify;
use crate::event::Timestamp;

/// Lines whose location is kept to show in the report (all are counted).
const SKIPPED_LISTED: usize = 20;

/// Builds a report from lines of JSON, one event each, in any order.
pub struct Reporter {
    pub(super) options: ReportOptions,
    now: Timestamp,
    since: Option<String>,
    until: Option<String>,
    pub(super) input: Input,
    pub(super) aggregate: Aggregate,
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
        // JSON is UTF-8: the whole line is checked at once, which is much cheaper than
        // `from_slice` checking each string it keeps (and each key) on its own.
        let Ok(text) = std::str::from_utf8(line) else {
            self.skip(format!(
                "{location}: not UTF-8, so not an oauth-audit event"
            ));
            return;
        };
        let Ok(event) = serde_json::from_str::<event::Event<'_>>(text) else {
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
    // A file named twice, or found beside its own archive, is read once (`expand`).
    let mut files = verify::expand(paths)?;
    let mut reporter = Reporter::new(options);
    for file in &mut files {
        // Listed as `x.jsonl` and compressed by the rotating writer since: named as read.
        *file = verify::settled(file);
        let file = &*file;
        let broken = verify::for_each_line(file, &mut |location, line| {
            progress(file);
            reporter.add(&location, line);
        })?;
        if let Some((location, error)) = broken {
            reporter.input.broken.push(format!("{location}: {error}"));
        }
    }
    reporter.input.files = files.iter().map(|f| f.display().to_string()).collect();
    let chained = reporter.saw_chained_events();
    let mut report = reporter.finish();
    if chained {
        report.integrity = verify::verify_files(&files, Vec::new(), None)
            .ok()
            .map(|found| Integrity::from(&found));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_is_not_utf8_is_skipped_and_named() {
        let mut reporter = Reporter::new(ReportOptions::default());
        let good =
            br#"{"kind":"LoginFailed","time":"2026-11-24T14:03:07.123456Z","outcome":"failure"}"#;
        // Invalid UTF-8 in a field the report never reads: still not JSON.
        let mut bad =
            br#"{"kind":"LoginFailed","time":"2026-11-24T14:03:07.123456Z","note":""#.to_vec();
        bad.extend_from_slice(b"\xff\xfe\"}");
        reporter.add_line("a.jsonl:1", good);
        reporter.add_line("a.jsonl:2", &bad);
        let report = reporter.finish();
        assert_eq!(report.matched(), 1);
        assert_eq!(report.skipped(), 1);
        assert_eq!(
            report.skipped_examples(),
            ["a.jsonl:2: not UTF-8, so not an oauth-audit event"]
        );
    }
}
