//! `oauth-audit detect PATH...`: the detection rules over stored events (JSON-lines files
//! and directories of rotated files), for back-testing and incident investigation. Alerts
//! go to standard output as JSON lines, a summary to standard error.
//!
//! The files are merged in the events' time order, as a live detector would have seen them:
//! several services' trails, or the files of one service's rotation given in any order, are
//! one stream of events. Each file is read in its own order and opened only once the merge
//! reaches the time of its first event, so one service's rotated files are read one after
//! another, and only files whose times overlap are open at once.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use oauth_audit::chain::verify::{self, Lines, Location};
use oauth_audit::detect::{Detector, Observed as _};
use serde_json::Value;

use crate::Failure;

/// Lines read at most to find a file's first event with a time, before the merge: a file
/// without one among these is read first.
const FIRST_EVENT_LINES: usize = 1_000;

/// Runs the detector over the files of `paths`.
pub fn run(paths: &[PathBuf], detector: Detector) -> Result<(), Failure> {
    let files = verify::expand(paths).map_err(|e| Failure::Usage(e.to_string()))?;
    let mut out = Output {
        detector,
        alerts: std::io::BufWriter::new(std::io::stdout().lock()),
        by_rule: BTreeMap::new(),
        unreadable: 0,
        write_error: None,
    };
    merge(&files, &mut out)?;
    let Output {
        detector,
        mut alerts,
        by_rule,
        unreadable,
        write_error,
    } = out;
    let flushed = alerts.flush();
    match write_error.map_or(flushed, Err) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(Failure::Runtime(format!("cannot write the alerts: {e}")));
        }
        _ => {}
    }
    let stats = detector.stats();
    let rules = super::by_rule(&by_rule);
    eprintln!(
        "{} events in {} file(s): {} alert(s){rules}; {} line(s) not JSON; {} key(s) forgotten to stay within --max-keys",
        stats.events,
        files.len(),
        stats.alerts,
        unreadable,
        stats.evicted
    );
    Ok(())
}

/// Where the events go: the detector, and its alerts to standard output.
struct Output<W: std::io::Write> {
    detector: Detector,
    alerts: W,
    by_rule: BTreeMap<String, u64>,
    unreadable: u64,
    write_error: Option<std::io::Error>,
}

impl<W: std::io::Write> Output<W> {
    fn check(&mut self, event: &Value) {
        if self.write_error.is_some() {
            return;
        }
        for alert in self.detector.check_json(event) {
            if let Some(rule) = alert.alert.as_ref().map(|a| a.rule.clone()) {
                *self.by_rule.entry(rule).or_default() += 1;
            }
            let written = serde_json::to_writer(&mut self.alerts, &alert)
                .map_err(std::io::Error::other)
                .and_then(|()| self.alerts.write_all(b"\n"));
            if let Err(e) = written {
                self.write_error = Some(e);
            }
        }
    }

    fn not_json(&mut self, location: &Location) {
        self.unreadable += 1;
        eprintln!("oauth-audit: {location}: not a JSON event, skipped");
    }
}

/// One file being merged: its lines, and the next event with a time, held until every
/// file's earlier events have been checked.
struct Trail {
    lines: Lines,
    head: Option<(i64, Value)>,
}

impl Trail {
    fn open(path: &Path) -> Result<Self, Failure> {
        let lines = Lines::open(path).map_err(|e| Failure::Usage(e.to_string()))?;
        Ok(Trail { lines, head: None })
    }

    /// Reads on to the next event with a time. Lines on the way that are no event with a
    /// time go to `out` at once (they count as events, or as lines not JSON, and raise
    /// nothing); a file that breaks off is reported and ends.
    fn advance<W: std::io::Write>(&mut self, out: &mut Output<W>) {
        self.head = None;
        while let Some(line) = self.lines.next_line() {
            let line = match line {
                Ok(line) => line,
                Err((location, error)) => {
                    eprintln!("oauth-audit: {location}: cannot be read: {error}");
                    return;
                }
            };
            if line.text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(event) = serde_json::from_slice::<Value>(line.text) else {
                out.not_json(&line.location);
                continue;
            };
            match event.time_micros() {
                Some(time) => {
                    self.head = Some((time, event));
                    return;
                }
                None => out.check(&event),
            }
        }
    }
}

/// The time of the first event with one in `path`, among its first lines; `None` when there
/// is none there (or the file cannot be read: the merge reports that when it reads it).
fn first_time(path: &Path) -> Option<i64> {
    let mut lines = Lines::open(path).ok()?;
    for _ in 0..FIRST_EVENT_LINES {
        let Ok(line) = lines.next_line()? else {
            return None;
        };
        if let Ok(event) = serde_json::from_slice::<Value>(line.text) {
            if let Some(time) = event.time_micros() {
                return Some(time);
            }
        }
    }
    None
}

/// Feeds the events of `files` to `out` in time order: the earliest next event of the open
/// files, ties to the file given first; a file is opened when the merge reaches its first
/// event's time.
fn merge<W: std::io::Write>(files: &[PathBuf], out: &mut Output<W>) -> Result<(), Failure> {
    // Files to open, the earliest last; a file without a time in its first lines first.
    let mut waiting: Vec<(i64, usize)> = files
        .iter()
        .enumerate()
        .map(|(index, file)| (first_time(file).unwrap_or(i64::MIN), index))
        .collect();
    waiting.sort_by_key(|&(time, index)| Reverse((time, index)));
    let mut trails: Vec<Option<Trail>> = files.iter().map(|_| None).collect();
    let mut heads: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    loop {
        while let Some(&(time, index)) = waiting.last() {
            if heads
                .peek()
                .is_some_and(|Reverse(head)| *head < (time, index))
            {
                break;
            }
            waiting.pop();
            let mut trail = Trail::open(&files[index])?;
            trail.advance(out);
            if let Some((time, _)) = trail.head {
                heads.push(Reverse((time, index)));
            }
            trails[index] = Some(trail);
        }
        let Some(Reverse((_, index))) = heads.pop() else {
            return Ok(());
        };
        let Some(trail) = trails[index].as_mut() else {
            continue;
        };
        if let Some((_, event)) = trail.head.take() {
            out.check(&event);
        }
        trail.advance(out);
        match trail.head {
            Some((time, _)) => heads.push(Reverse((time, index))),
            // Done: its buffers go.
            None => trails[index] = None,
        }
        if out.write_error.is_some() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use oauth_audit::detect::{Condition, Field, Rule, Select};
    use oauth_audit::event::Severity;

    use super::*;

    /// A failed login, `minute` minutes after 10:00, with the id ending `id` (and a user of
    /// its own, so that its alert names it alone).
    fn event(id: u32, minute: u32, subject: &str) -> String {
        format!(
            r#"{{"id":"00000000-0000-7000-8000-{id:012}","kind":"LoginFailed","outcome":"failure","time":"2026-11-02T10:{minute:02}:00Z","actor":{{"subject":"{subject}-{id}"}},"source":{{"ip":"198.51.100.23"}}}}"#
        )
    }

    /// The ids (their last digits) of the events of `files`, in the order the detector saw
    /// them: a rule that alerts on every event names each in its evidence.
    fn order_checked(files: &[(&str, &[String])]) -> Vec<u32> {
        let dir = std::env::temp_dir().join(format!("oauth-audit-merge-{}", uuid::Uuid::now_v7()));
        std::fs::create_dir(&dir).unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, lines)| {
                let path = dir.join(name);
                std::fs::write(&path, lines.join("\n") + "\n").unwrap();
                path
            })
            .collect();
        let every = Rule {
            id: "every",
            title: "every failed login",
            severity: Severity::Warning,
            select: vec![Select {
                kinds: vec!["LoginFailed"],
                ..Select::default()
            }],
            group_by: vec![Field::Subject],
            timespan: std::time::Duration::from_secs(3600),
            condition: Condition::count(1),
            cooldown: std::time::Duration::ZERO,
        };
        let mut out = Output {
            detector: Detector::new(vec![every]),
            alerts: Vec::new(),
            by_rule: BTreeMap::new(),
            unreadable: 0,
            write_error: None,
        };
        merge(&paths, &mut out).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        String::from_utf8(out.alerts)
            .unwrap()
            .lines()
            .map(|line| {
                let alert: Value = serde_json::from_str(line).unwrap();
                let id = alert["alert"]["evidence"][0].as_str().unwrap();
                id[24..].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn files_are_merged_in_time_order_whatever_order_they_are_given_in() {
        let a = [event(1, 0, "a"), event(3, 2, "a"), event(5, 4, "a")];
        let b = [event(2, 1, "b"), event(4, 3, "b"), event(6, 5, "b")];
        let later = [event(7, 6, "c"), event(8, 7, "c")];
        assert_eq!(
            order_checked(&[("later.jsonl", &later), ("a.jsonl", &a), ("b.jsonl", &b)]),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn equal_times_go_in_the_order_the_files_were_given_and_each_file_keeps_its_own_order() {
        // `b` is out of time order in itself (two writers of one file): its own order holds.
        let a = [event(1, 0, "a"), event(3, 2, "a")];
        let b = [event(2, 0, "b"), event(5, 4, "b"), event(4, 3, "b")];
        assert_eq!(
            order_checked(&[("a.jsonl", &a), ("b.jsonl", &b)]),
            [1, 2, 3, 5, 4]
        );
        assert_eq!(
            order_checked(&[("b.jsonl", &b), ("a.jsonl", &a)]),
            [2, 1, 3, 5, 4]
        );
    }

    #[test]
    fn lines_without_a_time_and_lines_not_json_are_taken_where_they_are() {
        let a = [
            "not json".to_owned(),
            r#"{"kind":"LoginFailed","actor":{"subject":"x"}}"#.to_owned(),
            event(2, 1, "a"),
        ];
        let b = [event(1, 0, "b"), "{".to_owned(), event(3, 2, "b")];
        assert_eq!(
            order_checked(&[("a.jsonl", &a), ("b.jsonl", &b)]),
            [1, 2, 3]
        );
    }
}
