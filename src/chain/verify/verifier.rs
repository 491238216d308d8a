//! The verifier: takes records one by one with their place, keeps one state per stream,
//! checks checkpoints and drop reports, and gives the report at the end.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use serde_json::Value;

use super::canonical::{parse_event, Canonicalizer, ParseError};
use super::report::{Location, Problem, ProblemKind, Problems, Report, SeqSpan};
use super::stream::{Announced, Hashed, Incoming, LineBudget, Prev, StreamState, Trimmed};
use crate::chain::{check_announcement, origin, CheckpointNote, NoteError, VerifyingKey};
use crate::event::EventHash;

/// Recent events kept per stream by default: reordering within this many events is
/// reported as such, and links are checked whatever the order within it.
pub const DEFAULT_WINDOW: usize = 4096;

/// The bytes of lines kept for a later look by default (see [`Verifier::line_budget`]).
pub const DEFAULT_LINE_BUDGET: usize = 64 << 20;

/// The highest sequence number a chain can have: events hold integers below 2^53 (see
/// `docs/integrity.md`), and anything above is no chain the auditor wrote.
const MAX_SEQ: u64 = (1 << 53) - 1;

/// The longest `chain.stream` accepted: a stream is a UUID; a longer name is no stream
/// the auditor wrote, and each stream's name is kept to the end.
const MAX_STREAM_LEN: usize = 128;

/// The most streams followed: each keeps a state to the end of the input (about 2.5 KB for
/// a stream of one event).
const MAX_STREAMS: usize = 100_000;

/// The most ranges unsigned drop reports may announce over the whole input (a sink merges
/// the numbers it loses into ranges, at most 1,024 a report).
const MAX_RANGES: usize = 100_000;

/// Checks a trail record by record: push every line (or row) with its place, in storage
/// order, then [`finish`](Verifier::finish). Memory does not grow with the number of
/// events: a window of the last 4,096 events of the stream being read and of the last 64
/// of every other stream, at most 64 MiB of lines kept for a later look, at most 100,000
/// gaps held open (past them, a gap is reported at once as deleted), and what was found
/// (listed up to 10,000 problems). It grows with the number of streams: about 2.5 KB for a
/// stream of one event, up to about 10 KB for one of 64 events or more, and at most 100,000
/// streams are followed (the events of any further one are reported as `malformed`).
///
/// ```
/// use std::sync::Arc;
/// use oauth_audit::chain::verify::{Location, ProblemKind, Verifier};
///
/// let file: Arc<str> = "audit.jsonl".into();
/// let mut verifier = Verifier::new(Vec::new());
/// verifier.push(Location::line(&file, 1), br#"{"kind":"ResourceAccessed","chain":{"stream":"s","seq":1}}"#);
/// verifier.push(Location::line(&file, 2), b"not json");
/// let report = verifier.finish();
/// assert_eq!(report.events, 1);
/// assert_eq!(report.of_kind(ProblemKind::Malformed).count(), 1);
/// assert!(!report.is_clean());
/// ```
pub struct Verifier {
    keys: Vec<VerifyingKey>,
    window: usize,
    streams: HashMap<Arc<str>, StreamState>,
    /// Streams in the order first met, for a report in input order.
    order: Vec<Arc<str>>,
    announced: HashMap<Arc<str>, Vec<Announced>>,
    problems: Problems,
    events: u64,
    checkpoints: u64,
    chained: bool,
    unchained_prefix: u64,
    canonical: Canonicalizer,
    /// The stream of the last chained event.
    current: Option<Arc<str>>,
    trimmed_start: bool,
    /// The sink whose storage is read (`--sink`).
    sink: Option<String>,
    unchained_prefix_allowed: bool,
    /// The first event without a chain before the first chained one.
    unchained_first: Option<Location>,
    lines: Arc<LineBudget>,
    /// Streams the input moved away from, by the hash of the event at their cursor: an
    /// event of a stream not met before whose `prev` is one of these continues that stream.
    tips: HashMap<EventHash, Arc<str>>,
    /// Ranges taken from drop reports so far.
    ranges: usize,
    max_streams: usize,
    /// The gaps and checkpoints' claims held open over every stream (see `stream::MAX_OPEN`).
    open: Arc<AtomicUsize>,
    /// The earliest `time` of the first event read of each stream: retention leaves no
    /// event older than the start of a stream it trimmed.
    earliest: Option<Earliest>,
}

/// An event's `time`, as milliseconds since the epoch, and the stream it belongs to.
#[derive(Clone)]
struct Earliest {
    millis: i64,
    time: Arc<str>,
    stream: Arc<str>,
}

/// How much later than an event still in the input a stream may have begun and yet have
/// lost its start to retention: an event's `time` is when its request arrived, so a long
/// request can be written after a later one, and auditors sharing storage have clocks of
/// their own.
const TRIM_SKEW_MILLIS: i64 = 5 * 60 * 1000;

/// When a stream began, from its id (a UUIDv7, as the chain makes them), in milliseconds.
fn began_millis(stream: &str) -> Option<i64> {
    let id = uuid::Uuid::try_parse(stream).ok()?;
    if id.get_version_num() != 7 {
        return None;
    }
    let (seconds, nanos) = id.get_timestamp()?.to_unix();
    i64::try_from(seconds)
        .ok()?
        .checked_mul(1000)?
        .checked_add(i64::from(nanos / 1_000_000))
}

/// Events kept of a stream the input has moved away from.
const RETIRED_WINDOW: usize = 64;

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys)
            .field("events", &self.events)
            .field("streams", &self.order.len())
            .finish_non_exhaustive()
    }
}

/// The `chain` object, read, and the event's `time`.
struct Link<'a> {
    stream: &'a str,
    seq: u64,
    prev: Prev,
    time: Option<&'a str>,
}

/// The fields of an `AuditCheckpoint` event.
const CHECKPOINT_FIELDS: &[&str] = &[
    "schema",
    "id",
    "time",
    "kind",
    "outcome",
    "severity",
    "service",
    "chain",
    "checkpoint",
];

/// Whether an `AuditCheckpoint` event has the shape the chain gives one: its fields, its
/// `checkpoint` and `chain` objects' members, and its fixed values.
fn checkpoint_shape(event: &Value) -> bool {
    let only = |value: Option<&Value>, allowed: &[&str]| {
        value
            .and_then(Value::as_object)
            .is_some_and(|members| members.keys().all(|key| allowed.contains(&key.as_str())))
    };
    only(Some(event), CHECKPOINT_FIELDS)
        && only(event.get("checkpoint"), &["stream", "seq", "hash", "note"])
        && only(event.get("chain"), &["stream", "seq", "prev"])
        && event.get("outcome").and_then(Value::as_str) == Some("success")
        && event.get("severity").is_none_or(|s| s == "info")
        && event
            .get("schema")
            .is_none_or(|s| s == crate::event::SCHEMA)
}

/// The `checkpoint` object, read.
struct CheckpointFields {
    stream: String,
    seq: u64,
    hash: EventHash,
    note: String,
}

impl Verifier {
    /// A verifier that checks signatures with `keys` (several for key rotation). With no
    /// key, signatures cannot be checked: checkpoints and drop reports are then taken as
    /// they are (checked against the chain only), and the report says so.
    pub fn new(keys: Vec<VerifyingKey>) -> Verifier {
        Verifier {
            keys,
            window: DEFAULT_WINDOW,
            streams: HashMap::new(),
            order: Vec::new(),
            announced: HashMap::new(),
            problems: Problems::default(),
            events: 0,
            checkpoints: 0,
            chained: false,
            unchained_prefix: 0,
            canonical: Canonicalizer::default(),
            current: None,
            trimmed_start: false,
            sink: None,
            unchained_prefix_allowed: false,
            unchained_first: None,
            lines: LineBudget::new(DEFAULT_LINE_BUDGET),
            tips: HashMap::new(),
            ranges: 0,
            max_streams: MAX_STREAMS,
            open: Arc::default(),
            earliest: None,
        }
    }

    /// The name of the sink whose storage is read (its `dropped.sink`: the writer's
    /// `name`). A sink writes its drop reports into its own storage only, so a report of
    /// another sink found here was put here, and is an `inserted` error. With keys given, a
    /// signed drop report excuses a gap only when this is set: else a genuine report of
    /// another sink, which lost those numbers there, could be pasted in to cover a
    /// deletion here.
    pub fn sink(mut self, name: impl Into<String>) -> Verifier {
        self.sink = Some(name.into());
        self
    }

    /// Accepts events without a chain before the first chained one, as when chaining was
    /// turned on after they were written: they are then an `unchained_prefix` note instead
    /// of `inserted` events. Nothing vouches for them either way.
    pub fn unchained_prefix(mut self, allowed: bool) -> Verifier {
        self.unchained_prefix_allowed = allowed;
        self
    }

    /// The most bytes of lines kept for a later look, over all streams (default
    /// [`DEFAULT_LINE_BUDGET`]). A line is hashed as read and kept until the next event's
    /// `prev` confirms that hash; past this budget, lines are canonicalised as they come in
    /// instead: slower, and the same result.
    pub fn line_budget(mut self, bytes: usize) -> Verifier {
        self.lines = LineBudget::new(bytes);
        self
    }

    /// Accepts streams whose first events are missing, as when retention removed the
    /// oldest rotated files: such a start is reported as a `trimmed_start` note instead of
    /// `deleted` events. Only a missing *start* is excused, and only of a stream that began
    /// before every stream in the input that still has its start (stream ids are UUIDv7,
    /// which sort by when a stream began), and no more than 5 minutes after the `time` of
    /// the first event read of any stream: retention removes the oldest events first. Every
    /// later gap still counts. The events before the first one read cannot be vouched for,
    /// so say this only of a trail whose beginning was removed on purpose.
    pub fn trimmed_start(mut self, allowed: bool) -> Verifier {
        self.trimmed_start = allowed;
        self
    }

    /// At most `streams` streams followed (default 100,000).
    #[cfg(test)]
    pub(super) fn max_streams(mut self, streams: usize) -> Verifier {
        self.max_streams = streams;
        self
    }

    /// The bytes of lines kept now for a later look.
    #[cfg(test)]
    pub(super) fn kept_line_bytes(&self) -> usize {
        self.lines.kept()
    }

    /// The sequence numbers remembered over all streams as edited or as found early.
    #[cfg(test)]
    pub(super) fn remembered_numbers(&self) -> usize {
        self.streams.values().map(StreamState::remembered).sum()
    }

    /// Recent events kept per stream (default [`DEFAULT_WINDOW`]).
    pub fn window(mut self, events: usize) -> Verifier {
        self.window = events.max(2);
        self
    }

    /// Takes in one checkpoint kept outside the log (a line of a `checkpoint_file`, or a
    /// body posted to `checkpoint_url`): the log must hold the events it covers, with the
    /// hashes it signed. Give these before the log's records.
    pub fn add_checkpoint(&mut self, location: Location, line: &[u8]) {
        let Some(value) = self.parse(&location, line) else {
            return;
        };
        let copy_hash = match self.canonical.hash_as_written(&value, Some(line)) {
            Ok(hash) => hash,
            Err(err) => {
                self.malformed(location, format!("cannot be canonicalised: {err}"));
                return;
            }
        };
        let (Some(link), Some(fields)) = (
            value.get("chain").and_then(|c| read_chain(c).ok()),
            value.get("checkpoint").and_then(read_checkpoint),
        ) else {
            self.malformed(location, "not a chained AuditCheckpoint event".into());
            return;
        };
        let stream: Arc<str> = link.stream.into();
        let note = self.open_note(&fields.note);
        if !self.checkpoint_holds(&stream, link.seq, &value, &fields, &note, &location) {
            return;
        }
        let mut problems = std::mem::take(&mut self.problems);
        let state = self.stream(&stream);
        state.vouch();
        state.claim(fields.seq, fields.hash, &location, true, &mut problems);
        state.claim(link.seq, copy_hash, &location, true, &mut problems);
        self.problems = problems;
    }

    /// Takes in the next line of the log (a JSON object; blank lines are skipped).
    pub fn push(&mut self, location: Location, line: &[u8]) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        // JSON may have a carriage return between tokens, and RFC 8785 drops it, but many
        // readers break lines at it (Python's text files do): they would read two events
        // where this reads one. The chain never writes one.
        if memchr::memchr(b'\r', line).is_some() {
            self.malformed(
                location,
                "a carriage return inside the line: readers that break lines at it read \
                 something else than the chained event"
                    .into(),
            );
            return;
        }
        // Most lines are ordinary chained events: only their `chain` is read, and their
        // bytes are hashed as they are (see `Hashed`).
        if let Some(link) = read_head(line) {
            self.events += 1;
            let hash = Hashed::of_line(line, &self.lines);
            self.chained_event(location, link, hash, None);
            return;
        }
        if let Some(value) = self.parse(&location, line) {
            self.push_parsed(location, value, Some(line));
        }
    }

    /// Takes in the next event as JSON (a row read back from a database).
    pub fn push_value(&mut self, location: Location, value: Value) {
        self.push_parsed(location, value, None);
    }

    /// An event as JSON, and the line it was read from, whose numbers must be written as
    /// RFC 8785 writes them.
    fn push_parsed(&mut self, location: Location, value: Value, line: Option<&[u8]>) {
        self.events += 1;
        let kind = value.get("kind").and_then(Value::as_str);
        let dropped = kind == Some("AuditEventsDropped");
        if dropped {
            self.announcement(&location, &value);
        }
        let Some(chain) = value.get("chain") else {
            // Drop reports are written by the sink that lost events, outside the chain.
            if dropped {
                return;
            }
            if self.chained {
                self.problems.push(Problem::new(
                    ProblemKind::Inserted,
                    Some(location),
                    "an event without a chain among chained events".into(),
                ));
            } else {
                self.unchained_prefix += 1;
                self.unchained_first.get_or_insert(location);
            }
            return;
        };
        self.chained = true;
        let link = match read_chain(chain) {
            Ok(link) => Link {
                time: value.get("time").and_then(Value::as_str),
                ..link
            },
            Err(why) => {
                self.problems.push(Problem::new(
                    ProblemKind::Edited,
                    Some(location),
                    format!("its chain object is unreadable ({why})"),
                ));
                return;
            }
        };
        let hash = match self.canonical.hash_as_written(&value, line) {
            Ok(hash) => hash,
            Err(err) => {
                self.malformed(location, format!("cannot be canonicalised: {err}"));
                return;
            }
        };
        let checkpoint = (kind == Some("AuditCheckpoint")).then_some(&value);
        self.chained_event(location, link, Hashed::canonical(hash), checkpoint);
    }

    /// A chained event, its `chain` read and its hash taken; `checkpoint` is the whole
    /// event when it is an `AuditCheckpoint`.
    fn chained_event(
        &mut self,
        location: Location,
        link: Link,
        hash: Hashed,
        checkpoint: Option<&Value>,
    ) {
        self.chained = true;
        if checkpoint.is_some() {
            self.checkpoints += 1;
        }
        let mut stream = self.stream_id(&link);
        let mut problems = std::mem::take(&mut self.problems);
        if let Some(moved) = self.moved_stream(&link) {
            let state = self.stream(&moved);
            state.blame(
                link.seq,
                Some(location.clone()),
                format!(
                    "its chain.stream says {} but it continues stream {moved} at seq {}",
                    link.stream, link.seq
                ),
                &mut problems,
            );
            stream = moved;
        }
        if self.streams.len() >= self.max_streams && !self.streams.contains_key(&stream) {
            // Each stream keeps a state to the end: past this many, a crafted input of a
            // stream per line would make memory grow with the input.
            problems.push(Problem::new(
                ProblemKind::Malformed,
                Some(location),
                format!(
                    "more than {} streams in the input (one per run of an auditor without a \
                     state file): the events of stream {stream} are not followed",
                    self.max_streams
                ),
            ));
            self.problems = problems;
            return;
        }
        if self.current.as_ref() != Some(&stream) {
            if let Some(previous) = self.current.take() {
                self.retire(&previous, &mut problems);
            }
            if let Some(tip) = self.streams.get_mut(&stream).and_then(|s| s.tip.take()) {
                self.tips.remove(&tip);
            }
        }
        self.current = Some(stream.clone());
        let fields = checkpoint.map(|value| value.get("checkpoint").and_then(read_checkpoint));
        let note = fields
            .as_ref()
            .and_then(Option::as_ref)
            .map(|fields| self.open_note(&fields.note));
        if let Some(Err(_)) = &note {
            // A re-signed note changes the event's hash too: a broken link to the next event,
            // or a copy's word on its hash, is this same change, reported with the signature.
            self.stream(&stream).explained(link.seq);
        }
        let state = self.stream(&stream);
        let before = state.events();
        let placed = state.push(
            Incoming {
                seq: link.seq,
                prev: link.prev,
                hash,
                location: location.clone(),
            },
            &mut problems,
        );
        self.problems = problems;
        if before == 0 && self.order.last() != Some(&stream) {
            self.order.push(stream.clone());
        }
        if before == 0 {
            self.note_time(&stream, link.time);
        }
        // A repeated checkpoint was reported as such; its claims were checked the first time.
        let Some(seq) = placed else {
            return;
        };
        match (checkpoint, fields, note) {
            (Some(value), Some(Some(fields)), Some(note))
                if self.checkpoint_holds(&stream, seq, value, &fields, &note, &location) =>
            {
                let mut problems = std::mem::take(&mut self.problems);
                let state = self.stream(&stream);
                state.claim(fields.seq, fields.hash, &location, false, &mut problems);
                state.seal(seq);
                self.problems = problems;
            }
            (_, Some(None), _) => {
                let mut problems = std::mem::take(&mut self.problems);
                self.stream(&stream).blame(
                    seq,
                    Some(location),
                    "its checkpoint object is unreadable".into(),
                    &mut problems,
                );
                self.problems = problems;
            }
            _ => {}
        }
    }

    /// Keeps the `time` of a stream's first event read when it is the earliest so far.
    fn note_time(&mut self, stream: &Arc<str>, time: Option<&str>) {
        let Some(time) = time else {
            return;
        };
        let Some(parsed) = crate::event::Timestamp::parse(time) else {
            return;
        };
        let millis = parsed.unix_micros().div_euclid(1_000);
        if self.earliest.as_ref().is_none_or(|e| millis < e.millis) {
            self.earliest = Some(Earliest {
                millis,
                time: shown(time),
                stream: stream.clone(),
            });
        }
    }

    /// Input that could not be read to its end (a damaged compressed file): a problem at
    /// the place where reading stopped.
    pub fn unreadable(&mut self, location: Location, error: &str) {
        self.malformed(location, format!("cannot be read: {error}"));
    }

    /// The report: gaps, truncation and unsealed tails are settled here.
    pub fn finish(mut self) -> Report {
        let mut problems = std::mem::take(&mut self.problems);
        let mut streams = 0;
        // Streams met in the log first, in input order, then those only checkpoints name.
        let mut ids = std::mem::take(&mut self.order);
        let met: HashSet<&Arc<str>> = ids.iter().collect();
        let mut rest: Vec<Arc<str>> = self
            .streams
            .keys()
            .filter(|id| !met.contains(id))
            .cloned()
            .collect();
        drop(met);
        rest.sort();
        ids.extend(rest);
        // Retention removes the oldest events of every stream: a stream that lost its start
        // to it began before every stream that still has its start. Stream ids are UUIDv7,
        // which sort by the time the stream began, and are in every event's hash.
        let oldest_begun = self
            .streams
            .iter()
            .filter(|(_, state)| state.begins())
            .map(|(id, _)| id.clone())
            .min();
        for id in ids {
            let Some(state) = self.streams.remove(&id) else {
                continue;
            };
            if state.events() > 0 {
                streams += 1;
            }
            let announced = self.announced.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let trimmed = match (&oldest_begun, self.trimmed_start) {
                (_, false) => Trimmed::No,
                (Some(begun), true) if *begun < id => Trimmed::After(begun.clone()),
                _ => match (&self.earliest, began_millis(&id)) {
                    // An event older than the stream's start is still here: retention
                    // would have removed it before that start.
                    (Some(earliest), Some(began))
                        if began > earliest.millis.saturating_add(TRIM_SKEW_MILLIS) =>
                    {
                        Trimmed::AfterEvent {
                            stream: earliest.stream.clone(),
                            time: earliest.time.clone(),
                        }
                    }
                    _ => Trimmed::Allowed,
                },
            };
            state.finish(announced, trimmed, !self.keys.is_empty(), &mut problems);
        }
        if !self.chained {
            let detail = if self.events == 0 {
                "the input holds no event: nothing could be verified"
            } else {
                "no event in the input is chained: nothing could be verified"
            };
            problems.push(Problem::new(ProblemKind::Unchained, None, detail.into()));
        } else if self.unchained_prefix > 0 {
            let count = self.unchained_prefix;
            let problem = if self.unchained_prefix_allowed {
                Problem::new(
                    ProblemKind::UnchainedPrefix,
                    self.unchained_first.take(),
                    format!(
                        "{count} event(s) before the first chained one have no chain \
                         (accepted: chaining was turned on after them); nothing vouches for them"
                    ),
                )
            } else {
                Problem::new(
                    ProblemKind::Inserted,
                    self.unchained_first.take(),
                    format!(
                        "{count} event(s) from here on, before the first chained one, have no \
                         chain: nothing vouches for them (if chaining was turned on after they \
                         were written, say so with --unchained-prefix)"
                    ),
                )
            };
            problems.push(problem);
        }
        Report::new(
            self.events,
            streams,
            self.checkpoints,
            self.unchained_prefix,
            !self.keys.is_empty(),
            problems,
        )
    }

    fn parse(&mut self, location: &Location, line: &[u8]) -> Option<Value> {
        match parse_event(line) {
            Ok(value @ Value::Object(_)) => Some(value),
            Ok(_) => {
                self.malformed(location.clone(), "not a JSON object".into());
                None
            }
            Err(ParseError::Json(err)) => {
                self.malformed(location.clone(), format!("not JSON ({err})"));
                None
            }
            Err(err) => {
                self.malformed(location.clone(), format!("cannot be hashed: {err}"));
                None
            }
        }
    }

    fn malformed(&mut self, location: Location, detail: String) {
        self.problems
            .push(Problem::new(ProblemKind::Malformed, Some(location), detail));
    }

    fn stream(&mut self, id: &Arc<str>) -> &mut StreamState {
        let window = self.window;
        let open = &self.open;
        self.streams
            .entry(id.clone())
            .or_insert_with(|| StreamState::new(id.clone(), window, open.clone()))
    }

    /// The stream's shared name, without a new allocation for a stream already known.
    fn stream_id(&self, link: &Link) -> Arc<str> {
        match self.streams.get_key_value(link.stream) {
            Some((id, _)) => id.clone(),
            None => link.stream.into(),
        }
    }

    /// An event of a stream not met before that continues another stream exactly at its
    /// end: its `chain.stream` was changed. Returns that other stream.
    fn moved_stream(&mut self, link: &Link) -> Option<Arc<str>> {
        let known = self
            .streams
            .get(link.stream)
            .is_some_and(|s| s.events() > 0);
        if known || (link.seq == 1 && link.prev == Prev::Absent) {
            return None;
        }
        let Prev::Hash(prev) = link.prev else {
            return None;
        };
        // The stream read just before, or one the input moved away from earlier.
        let candidates = [self.current.clone(), self.tips.get(&prev).cloned()];
        candidates.into_iter().flatten().find(|id| {
            id.as_ref() != link.stream
                && self
                    .streams
                    .get_mut(id)
                    .is_some_and(|state| state.continues(link.seq, link.prev))
        })
    }

    /// The input moved away from `stream`: its window shrinks, and it is indexed by the
    /// hash its next event would name.
    fn retire(&mut self, stream: &Arc<str>, problems: &mut Problems) {
        let Some(state) = self.streams.get_mut(stream) else {
            return;
        };
        if let Some(old) = state.tip.take() {
            self.tips.remove(&old);
        }
        state.tip = state.retire(RETIRED_WINDOW, problems);
        if let Some(tip) = state.tip {
            self.tips.insert(tip, stream.clone());
        }
    }

    /// Checks a checkpoint's signature and that its fields agree with its note and its
    /// place in the chain; reports what does not hold.
    fn checkpoint_holds(
        &mut self,
        stream: &Arc<str>,
        own_seq: u64,
        event: &Value,
        fields: &CheckpointFields,
        note: &Result<CheckpointNote, NoteError>,
        location: &Location,
    ) -> bool {
        let seqs = SeqSpan::one(own_seq);
        let note = match note {
            Ok(note) => note,
            Err(err) => {
                let (kind, detail) = match err {
                    NoteError::UnknownKey(keys) => (
                        ProblemKind::UnknownKey,
                        format!("the checkpoint is signed by {keys}, none of the given keys"),
                    ),
                    NoteError::BadSignature(key) => (
                        ProblemKind::BadSignature,
                        format!("the checkpoint's signature by {key} does not verify"),
                    ),
                    NoteError::Malformed(why) => (
                        ProblemKind::BadSignature,
                        format!("the checkpoint's note is not a signed note ({why})"),
                    ),
                };
                self.problems.push(
                    Problem::new(kind, Some(location.clone()), detail).in_stream(stream, seqs),
                );
                return false;
            }
        };
        let mut disagree = Vec::new();
        if note.origin != origin(&fields.stream) || *fields.stream != **stream {
            disagree.push("stream");
        }
        if note.size != fields.seq || fields.seq + 1 != own_seq {
            disagree.push("seq");
        }
        if note.hash != fields.hash {
            disagree.push("hash");
        }
        // Nothing follows a stream's last checkpoint to vouch for its own fields: what the
        // note signs (its time) must match, and it carries nothing a checkpoint does not.
        if event.get("time").and_then(Value::as_str) != Some(note.time.as_str()) {
            disagree.push("time");
        }
        if !checkpoint_shape(event) {
            disagree.push("fields");
        }
        if disagree.is_empty() {
            return true;
        }
        let detail = format!(
            "the checkpoint's {} disagree(s) with its signed note or its place in the chain",
            disagree.join(", ")
        );
        let mut problems = std::mem::take(&mut self.problems);
        self.stream(stream)
            .blame(own_seq, Some(location.clone()), detail, &mut problems);
        self.problems = problems;
        false
    }

    /// The note's body, signature checked when keys were given.
    fn open_note(&self, note: &str) -> Result<CheckpointNote, NoteError> {
        if !self.keys.is_empty() {
            return CheckpointNote::open(note, &self.keys);
        }
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        CheckpointNote::parse_body(&note[..=split])
    }

    /// Records the ranges a drop report announces, once it can be trusted: with keys, its
    /// signature must verify (every drop report is signed when the chain has a key), and
    /// with `--sink`, it must be that sink's.
    fn announcement(&mut self, location: &Location, value: &Value) {
        let signed = !self.keys.is_empty();
        if signed {
            if let Err(err) = check_announcement(value, &self.keys) {
                let (kind, detail) = match err {
                    NoteError::UnknownKey(key) => (
                        ProblemKind::UnknownKey,
                        format!("the drop report is signed by {key}, none of the given keys"),
                    ),
                    NoteError::BadSignature(key) => (
                        ProblemKind::BadSignature,
                        format!("the drop report's signature by {key} does not verify"),
                    ),
                    NoteError::Malformed(why) => (
                        ProblemKind::BadSignature,
                        format!(
                            "the drop report has no valid signature ({why}); with --key, every \
                             drop report must be signed"
                        ),
                    ),
                };
                self.problems
                    .push(Problem::new(kind, Some(location.clone()), detail));
                return;
            }
        }
        let dropped = value.get("dropped");
        let sink = dropped
            .and_then(|d| d.get("sink"))
            .and_then(Value::as_str)
            .unwrap_or("(not named)");
        if let Some(expected) = self.sink.as_deref().filter(|expected| *expected != sink) {
            let sink = shown(sink);
            self.problems.push(Problem::new(
                ProblemKind::Inserted,
                Some(location.clone()),
                format!(
                    "a drop report of sink {sink} in the storage of sink {expected} (--sink): \
                     a sink writes only its own drop reports"
                ),
            ));
            return;
        }
        // Shared by every range, and cut: without keys, anyone may have written them.
        let sink = shown(sink);
        let reason = shown(
            dropped
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("reason not given"),
        );
        let count = dropped
            .and_then(|d| d.get("count"))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let ranges = dropped
            .and_then(|d| d.get("ranges"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut read = Vec::with_capacity(ranges.len());
        for range in ranges {
            let stream = range.get("stream").and_then(Value::as_str);
            let first = range.get("first").and_then(Value::as_u64);
            let last = range.get("last").and_then(Value::as_u64);
            let (Some(stream), Some(first), Some(last)) = (stream, first, last) else {
                self.malformed(location.clone(), "a drop report range is unreadable".into());
                continue;
            };
            if first == 0 || first > last || last > MAX_SEQ {
                self.malformed(
                    location.clone(),
                    format!(
                        "a drop report range is not a span of sequence numbers ({first}..={last})"
                    ),
                );
                continue;
            }
            read.push((stream, first, last));
        }
        let named = read
            .iter()
            .map(|(_, first, last)| last - first + 1)
            .fold(0, u64::saturating_add);
        if count > named {
            // Events lost before the chain gave them a number (the pipeline's own queue was
            // full): no gap shows them, so the report is the only trace. Naming no number,
            // it cannot excuse a deleted event, whoever wrote it.
            self.problems.push(Problem::new(
                ProblemKind::AnnouncedGap,
                Some(location.clone()),
                format!(
                    "the drop report of sink {sink} counts {} event(s) lost ({reason}) without \
                     sequence numbers: lost before they were chained, so the chain cannot \
                     account for them",
                    count - named
                ),
            ));
        }
        // Without keys nothing is trusted anyway (the report says so); with keys, a signed
        // report excuses a gap only in the storage of the sink that wrote it.
        let excuses = !signed || self.sink.is_some();
        // Without keys anyone may have written them: their number is bounded.
        if !signed && self.ranges + read.len() > MAX_RANGES {
            self.malformed(
                location.clone(),
                format!(
                    "drop reports announce more than {MAX_RANGES} ranges: no sink writes that \
                     many, and the rest are not taken"
                ),
            );
            read.truncate(MAX_RANGES - self.ranges);
        }
        self.ranges += read.len();
        for (stream, first, last) in read {
            self.announced
                .entry(stream.into())
                .or_default()
                .push(Announced {
                    first,
                    last,
                    reason: reason.clone(),
                    location: location.clone(),
                    signed,
                    sink: sink.clone(),
                    excuses,
                });
        }
    }
}

/// A text from a drop report as the report shows it, shared: see [`crate::chain::shown`].
fn shown(text: &str) -> Arc<str> {
    crate::chain::shown(text, 100).into()
}

/// What the fast path reads of a line: its `kind` and `chain`, every other field skipped.
/// Strings with escapes fail to borrow, and the line then takes the general path.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    kind: Option<&'a str>,
    #[serde(borrow, default)]
    time: Option<&'a str>,
    #[serde(borrow, default)]
    chain: Option<ChainHead<'a>>,
}

#[derive(serde::Deserialize)]
struct ChainHead<'a> {
    stream: &'a str,
    seq: u64,
    #[serde(default)]
    prev: Option<&'a str>,
}

/// The link of an ordinary chained event, read without building the whole value; `None`
/// for anything else (not an object, no chain, a first event without `prev`, a checkpoint
/// or a drop report, anything unusual), which the general path then reads and reports.
fn read_head(line: &[u8]) -> Option<Link<'_>> {
    if line.first() != Some(&b'{') {
        return None;
    }
    let head: Head = serde_json::from_slice(line).ok()?;
    if matches!(head.kind, Some("AuditCheckpoint" | "AuditEventsDropped")) {
        return None;
    }
    let chain = head.chain?;
    let prev = chain.prev?.parse::<EventHash>().ok()?;
    ((1..=MAX_SEQ).contains(&chain.seq) && chain.stream.len() <= MAX_STREAM_LEN).then_some(Link {
        stream: chain.stream,
        seq: chain.seq,
        prev: Prev::Hash(prev),
        time: head.time,
    })
}

fn read_chain(chain: &Value) -> Result<Link<'_>, &'static str> {
    let stream = chain
        .get("stream")
        .and_then(Value::as_str)
        .ok_or("no stream")?;
    if stream.len() > MAX_STREAM_LEN {
        return Err("the stream is longer than a stream id");
    }
    let seq = chain
        .get("seq")
        .and_then(Value::as_u64)
        .filter(|seq| (1..=MAX_SEQ).contains(seq))
        .ok_or("seq is not a number from 1 to 2^53 - 1")?;
    let prev = match chain.get("prev") {
        None => Prev::Absent,
        Some(prev) => match prev.as_str().and_then(|p| p.parse::<EventHash>().ok()) {
            Some(hash) => Prev::Hash(hash),
            None => Prev::Unreadable,
        },
    };
    Ok(Link {
        stream,
        seq,
        prev,
        time: None,
    })
}

fn read_checkpoint(checkpoint: &Value) -> Option<CheckpointFields> {
    Some(CheckpointFields {
        stream: checkpoint.get("stream")?.as_str()?.to_owned(),
        seq: checkpoint
            .get("seq")?
            .as_u64()
            .filter(|seq| *seq <= MAX_SEQ)?,
        hash: checkpoint.get("hash")?.as_str()?.parse().ok()?,
        note: checkpoint.get("note")?.as_str()?.to_owned(),
    })
}
