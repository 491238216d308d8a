//! How `tail` shows an event: one readable line (coloured by outcome and severity when
//! colour is on), or with `--json` the line as it was read. Every value comes from the
//! traffic, that is from whoever sent the request: anything but plain visible ASCII is
//! quoted with its control and invisible characters escaped, so that no value can move the
//! cursor, retitle the terminal or pose as another field. `--json` writes those characters
//! as JSON `\u` escapes (the same value to a JSON reader) and nothing else changes.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, StdoutLock, Write};

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Effects, Style};
use oauth_audit::event::needs_escape;
use serde_json::Value;

use super::filter::Filter;

/// A line worth showing: an event that passed the filter, or a line that is no event.
#[derive(Debug)]
pub enum Entry {
    /// The line as read (without its line end) and the event it holds.
    Event(Vec<u8>, Value),
    /// Where the line was: reported on standard error in its turn.
    Malformed(String),
}

/// Writes entries to standard output (and malformed lines to standard error).
pub struct Printer {
    out: Output,
    filter: Filter,
}

enum Output {
    /// `--json`: bytes as read, nothing stripped or added but the line end, except that
    /// characters a terminal would act on are written as JSON escapes.
    Raw(io::BufWriter<StdoutLock<'static>>),
    /// Readable lines; `anstream` drops the styles when colour is off.
    Styled(io::BufWriter<AutoStream<StdoutLock<'static>>>),
}

impl Printer {
    /// Standard output with this colour choice (`Auto`: a terminal without NO_COLOR).
    pub fn stdout(json: bool, colour: ColorChoice, filter: Filter) -> Printer {
        let out = if json {
            Output::Raw(io::BufWriter::new(io::stdout().lock()))
        } else {
            let colour = match colour {
                ColorChoice::Auto => AutoStream::choice(&io::stdout()),
                other => other,
            };
            Output::Styled(io::BufWriter::new(AutoStream::new(
                io::stdout().lock(),
                colour,
            )))
        };
        Printer { out, filter }
    }

    /// The filter in use.
    #[cfg(feature = "nats")]
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// What to show for one line: nothing for a blank line or an event the filter leaves
    /// out. `place` (where the line was read) is called only for a line that is no event.
    pub fn judge(&self, line: &[u8], place: impl FnOnce() -> String) -> Option<Entry> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        match serde_json::from_slice::<Value>(line) {
            Ok(event) if event.is_object() => self
                .filter
                .matches(&event)
                .then(|| Entry::Event(line.to_vec(), event)),
            _ => Some(Entry::Malformed(place())),
        }
    }

    /// Shows one entry.
    pub fn show(&mut self, entry: &Entry) -> io::Result<()> {
        match (entry, &mut self.out) {
            (Entry::Malformed(place), _) => {
                // In its place among the events, when both go to one terminal.
                self.flush()?;
                // The place is a file name and line number, or a stream and sequence.
                eprintln!(
                    "oauth-audit: {}: not a JSON event, skipped",
                    escape_controls(place)
                );
                Ok(())
            }
            (Entry::Event(raw, _), Output::Raw(out)) => {
                out.write_all(json_for_terminal(&String::from_utf8_lossy(raw)).as_bytes())?;
                out.write_all(b"\n")
            }
            (Entry::Event(_, event), Output::Styled(out)) => {
                let mut line = readable(event);
                line.push('\n');
                out.write_all(line.as_bytes())
            }
        }
    }

    /// Judges and shows one line at once (when following).
    pub fn line(&mut self, line: &[u8], place: impl FnOnce() -> String) -> io::Result<()> {
        match self.judge(line, place) {
            Some(entry) => self.show(&entry),
            None => Ok(()),
        }
    }

    /// Writes out what is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Output::Raw(out) => out.flush(),
            Output::Styled(out) => out.flush(),
        }
    }
}

/// The last `n` events that passed the filter, with the malformed lines among them, in
/// order: the first page of `tail`.
#[derive(Debug)]
pub struct LastEntries {
    entries: std::collections::VecDeque<Entry>,
    events: usize,
    n: usize,
}

impl LastEntries {
    /// Keeps up to `n` events.
    pub fn new(n: usize) -> LastEntries {
        LastEntries {
            entries: std::collections::VecDeque::new(),
            events: 0,
            n,
        }
    }

    /// Adds the next entry; the oldest event goes (with the malformed lines before it) once
    /// there are more than `n`.
    pub fn push(&mut self, entry: Entry) {
        if matches!(entry, Entry::Event(..)) {
            self.events += 1;
        }
        self.entries.push_back(entry);
        while self.events > self.n {
            if let Some(Entry::Event(..)) = self.entries.pop_front() {
                self.events -= 1;
            }
        }
        if self.n == 0 {
            self.entries.clear();
        }
    }

    /// Events still wanted to fill the page.
    pub fn wanted(&self) -> usize {
        self.n - self.events
    }

    /// Puts `older` (entries read before these) in front, keeping at most `n` events.
    pub fn prepend(&mut self, older: LastEntries) {
        let mut all = older;
        all.n = self.n;
        for entry in std::mem::take(&mut self.entries) {
            all.push(entry);
        }
        *self = all;
    }

    /// The entries, oldest first.
    pub fn into_entries(self) -> impl Iterator<Item = Entry> {
        self.entries.into_iter()
    }
}

/// One event as a line: time, kind, outcome, who, what, where, and what went wrong.
fn readable(event: &Value) -> String {
    let dim = Style::new().effects(Effects::DIMMED);
    let status = status_style(event);
    let mut line = String::new();
    let time = field(&event["time"]).unwrap_or_else(|| "-".into());
    let _ = write!(line, "{dim}{time}{dim:#} ");
    let kind = field(&event["kind"]).unwrap_or_else(|| "-".into());
    let outcome = field(&event["outcome"]).unwrap_or_else(|| "-".into());
    let _ = write!(line, "{status}{kind:<24} {outcome:<7}{status:#}");
    let mut add = |key: &str, value: Option<Cow<'_, str>>| {
        if let Some(value) = value {
            line.push(' ');
            if !key.is_empty() {
                line.push_str(key);
                line.push('=');
            }
            line.push_str(&value);
        }
    };
    add("subject", field(&event["actor"]["subject"]));
    add("client", field(&event["actor"]["client_id"]));
    let http = &event["http"];
    add("", field(&http["method"]));
    add("", field(&http["route"]).or_else(|| field(&http["path"])));
    add("", field(&http["status"]));
    add("ip", field(&event["source"]["ip"]));
    if let Some(alert) = event.get("alert") {
        add("rule", field(&alert["rule"]));
        add("key", field(&alert["key"]));
        add("count", field(&alert["count"]));
    }
    if let Some(dropped) = event.get("dropped") {
        add("dropped", field(&dropped["count"]));
        add("reason", field(&dropped["reason"]));
        add("sink", field(&dropped["sink"]));
    }
    add("error", field(&event["error"]["code"]));
    line
}

/// Red for alerts, failures and warnings by degree; green for the rest.
fn status_style(event: &Value) -> Style {
    let colour = |c: AnsiColor| Style::new().fg_color(Some(c.into()));
    match (event["severity"].as_str(), event["outcome"].as_str()) {
        (Some("critical"), _) => colour(AnsiColor::Red).effects(Effects::BOLD),
        (_, Some("failure")) => colour(AnsiColor::Red),
        (Some("warning"), _) => colour(AnsiColor::Yellow),
        (_, Some("unknown")) => colour(AnsiColor::Magenta),
        _ => colour(AnsiColor::Green),
    }
}

/// A value as text for the line; `None` when absent.
fn field(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(escape(text)),
        Value::Number(_) | Value::Bool(_) => Some(Cow::Owned(value.to_string())),
        // Not what the schema has here: shown as JSON, escaped like any text.
        other => Some(Cow::Owned(escape(&other.to_string()).into_owned())),
    }
}

/// Visible ASCII as it is; anything else quoted, with control characters, line and
/// paragraph separators and invisible format characters (bidirectional overrides,
/// zero-width characters) escaped by Rust's own `Debug` for strings.
fn escape(text: &str) -> Cow<'_, str> {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if plain {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("{text:?}"))
    }
}

/// Control and invisible characters escaped, the rest as it is: for places, which are ours
/// but hold file names and subjects.
fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if needs_escape(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// A JSON line (one `serde_json` read) with every character the library's `sanitize` would
/// escape written so that no terminal acts on it: inside a string as a JSON `\u` escape (a
/// surrogate pair past U+FFFF), between tokens (a tab or carriage return, which JSON allows
/// there) as a space. A JSON reader gets the same value; raw C0 controls cannot be in a
/// string, but DEL, C1 controls (U+009B is a whole CSI), separators and bidirectional
/// overrides can. A line with none is returned as it is, byte for byte.
fn json_for_terminal(line: &str) -> Cow<'_, str> {
    if !line.chars().any(needs_escape) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 32);
    let mut in_string = false;
    let mut after_backslash = false;
    for c in line.chars() {
        if in_string {
            if after_backslash {
                after_backslash = false;
            } else if c == '\\' {
                after_backslash = true;
            } else if c == '"' {
                in_string = false;
            } else if needs_escape(c) {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
                continue;
            }
        } else if c == '"' {
            in_string = true;
        } else if needs_escape(c) {
            out.push(' ');
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_cannot_reach_the_terminal_raw() {
        let hostile = "alice\u{1b}]0;owned\u{7}\u{1b}[2J\r\n\u{9b}31m\u{202e}\u{200b}\u{2028}";
        let event = json!({
            "time": "2026-12-01T23:22:11.589236Z", "kind": "LoginFailed", "outcome": "failure",
            "actor": {"subject": hostile, "client_id": "web client=evil"},
            "source": {"ip": "203.0.113.9"}, "error": {"code": "invalid_grant"}
        });
        let line = readable(&event);
        // Take out the styles this module writes: what is left came from the event.
        let mut rest = line.clone();
        for style in [
            Style::new().effects(Effects::DIMMED),
            status_style(&json!({"severity": "critical"})),
            status_style(&json!({"outcome": "failure"})),
            status_style(&json!({"severity": "warning"})),
            status_style(&json!({"outcome": "unknown"})),
            status_style(&json!({})),
        ] {
            rest = rest.replace(&style.render().to_string(), "");
        }
        let rest = rest.replace(&anstyle::Reset.render().to_string(), "");
        for bad in [
            '\u{1b}', '\u{7}', '\r', '\n', '\u{9b}', '\u{202e}', '\u{200b}', '\u{2028}',
        ] {
            assert!(!rest.contains(bad), "{bad:?} in {rest:?}");
        }
        assert!(
            rest.contains(r#"subject="alice\u{1b}]0;owned\u{7}"#),
            "{rest}"
        );
        assert!(rest.contains(r#"client="web client=evil""#), "{rest}");
        assert!(
            rest.ends_with(" ip=203.0.113.9 error=invalid_grant"),
            "{rest}"
        );
    }

    #[test]
    fn json_lines_reach_the_terminal_escaped_with_the_same_value() {
        let hostile = "ua\u{9b}31m\u{7f}\u{85}\u{202e}\u{200b}\u{2028}\u{e0041}\\\"\u{1b}";
        let event = json!({"user_agent": hostile, "k\u{202e}ey": ["\u{9b}", 1]}).to_string();
        // A tab and a carriage return between tokens, where JSON allows them, and an escaped
        // quote before a bidi override.
        let line = format!("{{\t\"a\": \"\\\"\u{202e}\",\r {}", &event[1..]);
        let shown = json_for_terminal(&line);
        assert!(!shown.chars().any(needs_escape), "{shown:?}");
        let read: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(read, serde_json::from_str::<Value>(&line).unwrap());
        assert_eq!(read["user_agent"], hostile);
        assert!(
            shown.contains(r#"ua\u009b31m\u007f\u0085\u202e\u200b\u2028\udb40\udc41"#),
            "{shown}"
        );
        let plain = r#"{"kind": "LoginFailed", "subject": "héllo\u001b"}"#;
        assert!(matches!(json_for_terminal(plain), Cow::Borrowed(_)));
    }

    #[test]
    fn the_last_entries_keep_n_events_and_the_bad_lines_among_them() {
        let event = |i: u64| Entry::Event(vec![], json!({ "i": i }));
        let mut last = LastEntries::new(2);
        last.push(Entry::Malformed("a:1".into()));
        last.push(event(1));
        last.push(event(2));
        last.push(Entry::Malformed("a:4".into()));
        last.push(event(3));
        let kept: Vec<String> = last
            .into_entries()
            .map(|e| match e {
                Entry::Event(_, v) => v["i"].to_string(),
                Entry::Malformed(place) => place,
            })
            .collect();
        assert_eq!(kept, ["2", "a:4", "3"]);
    }
}
