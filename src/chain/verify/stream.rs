//! One stream's state machine: where the stream is, what is missing, which links broke.
//!
//! Events of a stream are expected in sequence order. The state keeps a `cursor` (every
//! sequence number up to it was seen or is a known gap) and a bounded window of the most
//! recent events (their hashes, `prev` and places), so that memory stays flat whatever the
//! input size:
//!
//! - An event one past the cursor moves it on.
//! - An event further ahead is a *jump*, settled by the stream's next event: when that one
//!   continues after the jump, the numbers skipped are a gap (deleted, unless a drop report
//!   announced them, or unless they turn up later: then they are reordered); when it goes
//!   back below the jump, the jumping event came early (reordered).
//! - An event at or below the cursor fills a gap (reordered: found late) or repeats a
//!   number already seen (inserted).
//! - Each event's `prev` is checked against the hash of its predecessor when both are in
//!   the window, whatever order they came in. A broken link says that one of the two events
//!   changed; two broken links in a row (`n-1 -> n` and `n -> n+1`) are explained by one
//!   change to event `n` (its `prev` or `seq`), a single broken link `n-1 -> n` by a change
//!   to event `n-1`. Links are judged as events leave the window, in sequence order.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::report::{Location, Problem, ProblemKind, Problems, SeqSpan};
use crate::event::EventHash;

/// What an event's `chain.prev` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Prev {
    /// No `prev` (the first event of a stream).
    Absent,
    /// The hash of the previous event, as claimed.
    Hash(EventHash),
    /// Present but not a hash: it was changed.
    Unreadable,
}

/// A chained event as the state machine sees it.
pub(super) struct Incoming {
    pub(super) seq: u64,
    pub(super) prev: Prev,
    pub(super) hash: Hashed,
    pub(super) location: Location,
}

/// An event's hash, as far as it is known.
///
/// A line written by the chain is its event's RFC 8785 form already, so the hash of its
/// bytes as read is the event's hash; a line written otherwise (reformatted, or edited)
/// hashes differently. So the bytes' hash is taken first, and the event is canonicalised
/// only when that hash disagrees with what another event or a checkpoint says: an
/// agreement proves the bytes are the chained ones, a disagreement is looked at again with
/// the canonical form before anything is reported.
pub(super) struct Hashed {
    hash: EventHash,
    /// The line, while `hash` is only the hash of its bytes.
    line: Option<KeptLine>,
}

/// The bytes of the lines kept for a later look (see [`Hashed`]), over every stream, and
/// the most there may be: past it, a line is canonicalised as it comes in instead, which
/// costs time and gives the same hash. Without it, input made of events that nothing
/// follows (a stream per line, or jumps) would keep every line whole.
///
/// It also remembers whether the last line looked at again was in canonical form: a trail
/// rewritten by a store (`jsonb`) or a tool never is, and its lines are then canonicalised
/// as they come in, without hashing their bytes first.
pub(super) struct LineBudget {
    kept: AtomicUsize,
    limit: usize,
    rewritten: AtomicBool,
}

impl LineBudget {
    pub(super) fn new(limit: usize) -> Arc<LineBudget> {
        Arc::new(LineBudget {
            kept: AtomicUsize::new(0),
            limit,
            rewritten: AtomicBool::new(false),
        })
    }

    /// The bytes of the lines kept now.
    #[cfg(test)]
    pub(super) fn kept(&self) -> usize {
        self.kept.load(Ordering::Relaxed)
    }

    fn take(self: &Arc<Self>, line: &[u8]) -> Option<KeptLine> {
        let kept = self.kept.load(Ordering::Relaxed);
        if kept.saturating_add(line.len()) > self.limit {
            return None;
        }
        self.kept.fetch_add(line.len(), Ordering::Relaxed);
        Some(KeptLine {
            bytes: line.into(),
            budget: self.clone(),
        })
    }
}

/// A line counted in its [`LineBudget`] until dropped.
struct KeptLine {
    bytes: Box<[u8]>,
    budget: Arc<LineBudget>,
}

impl Drop for KeptLine {
    fn drop(&mut self) {
        self.budget
            .kept
            .fetch_sub(self.bytes.len(), Ordering::Relaxed);
    }
}

impl Hashed {
    /// The hash of a canonical form.
    pub(super) fn canonical(hash: EventHash) -> Hashed {
        Hashed { hash, line: None }
    }

    /// The hash of a line's bytes as read, the line kept until that hash is settled when
    /// `budget` has room for it, else settled at once.
    pub(super) fn of_line(line: &[u8], budget: &Arc<LineBudget>) -> Hashed {
        if !budget.rewritten.load(Ordering::Relaxed) {
            if let Some(kept) = budget.take(line) {
                return Hashed {
                    hash: EventHash::of_bytes(line),
                    line: Some(kept),
                };
            }
        }
        let hash = match super::canonical::canonical_hash(line) {
            Some((hash, as_written)) => {
                budget.rewritten.store(!as_written, Ordering::Relaxed);
                hash
            }
            // Not an event's canonical form: its bytes' hash, which nothing will match.
            None => EventHash::of_bytes(line),
        };
        Hashed { hash, line: None }
    }

    /// Whether the event's hash is `expected`.
    fn is(&mut self, expected: &EventHash) -> bool {
        if self.hash == *expected {
            // Proven: these are the bytes that were hashed when the event was chained.
            self.line = None;
            return true;
        }
        self.settle() == *expected
    }

    /// Whether the event's hash is what `prev` says the previous event's is.
    fn is_prev(&mut self, prev: Prev) -> bool {
        match prev {
            Prev::Hash(expected) => self.is(&expected),
            Prev::Absent | Prev::Unreadable => false,
        }
    }

    /// The hash of the event's canonical form.
    fn settle(&mut self) -> EventHash {
        if let Some(line) = self.line.take() {
            if let Some((hash, as_written)) = super::canonical::canonical_hash(&line.bytes) {
                self.hash = hash;
                line.budget.rewritten.store(!as_written, Ordering::Relaxed);
            }
        }
        self.hash
    }
}

/// A recent event in the window.
struct Entry {
    hash: Hashed,
    prev: Prev,
    location: Location,
    /// The link from the previous event to this one was checked and does not hold.
    broken: bool,
}

/// Sequence numbers not seen (yet): `first..=last`, found where `location` is.
struct Gap {
    last: u64,
    location: Location,
}

/// A hash that a checkpoint says an event has.
struct Claim {
    hash: EventHash,
    /// The checkpoint that says so.
    source: Location,
    /// Whether it comes from `--checkpoints` (a claim the log must still reach).
    external: bool,
}

/// A broken link `b-1 -> b` not judged yet.
struct OpenLink {
    b: u64,
    location_b: Location,
    location_before: Option<Location>,
}

/// Whether a stream's missing start may be retention's doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Trimmed {
    /// `--trimmed-start` was not given.
    No,
    /// It was, and this stream began before every stream that still has its start.
    Allowed,
    /// It was, but this stream began after the stream named, which still has its start.
    After(Arc<str>),
    /// It was, but this stream began after the event of `stream` made at `time`, still in
    /// the input.
    AfterEvent {
        /// The stream of that event.
        stream: Arc<str>,
        /// Its `time`, as written.
        time: Arc<str>,
    },
}

/// The most gaps, and claims of the log's checkpoints on events not met yet, held open at
/// once over all streams (about 100 bytes each). A gap waits to the end of the input for a
/// drop report that announces it, or for its events to turn up late, and a claim for its
/// event; without a bound, a crafted input of jumps (seq 1, 3, 5...) would make memory grow
/// with its size. Past this many, a further gap is reported at once as deleted, matched
/// with no drop report (a sink merges what it loses into ranges: no trail has this many),
/// and a further claim is not kept (its checkpoint is out of place: its event is missing
/// or comes late, which is reported). Events found ahead of the cursor (reordered) count
/// here too, and past this many are not noted (see [`StreamState::note_early`]).
pub(super) const MAX_OPEN: usize = 100_000;

/// A range a drop report announced as lost.
#[derive(Clone, Debug)]
pub(super) struct Announced {
    pub(super) first: u64,
    pub(super) last: u64,
    pub(super) reason: Arc<str>,
    pub(super) location: Location,
    pub(super) signed: bool,
    /// The sink that wrote the report (`dropped.sink`).
    pub(super) sink: Arc<str>,
    /// A signed report excuses a gap only when the storage is known to be its sink's
    /// (`--sink`): else it could be another sink's genuine report, pasted here.
    pub(super) excuses: bool,
}

/// One stream's state.
pub(super) struct StreamState {
    id: Arc<str>,
    window_size: usize,
    events: u64,
    cursor: u64,
    /// A jump ahead waiting for the next event to say whether it is a gap or came early.
    pending: Option<u64>,
    /// Events seen ahead of the cursor (already reported as reordered), counted in `held`.
    early: BTreeSet<u64>,
    window: BTreeMap<u64, Entry>,
    gaps: BTreeMap<u64, Gap>,
    /// Events already reported as edited, so that one change is reported once: those from
    /// the event before the last one judged on (see [`StreamState::forget_blamed`]).
    blamed: HashSet<u64>,
    open: Option<OpenLink>,
    last_evicted: Option<(u64, Location)>,
    /// The highest sequence number seen, and where.
    max: Option<(u64, Location)>,
    /// The sequence number of the last valid checkpoint event.
    sealed: u64,
    claims: BTreeMap<u64, Claim>,
    new_stream_noted: bool,
    /// A checkpoint copied outside the log (`--checkpoints`) vouches for this stream.
    vouched: bool,
    /// The hash this stream is indexed under while the input is elsewhere (see
    /// [`StreamState::retire`]).
    pub(super) tip: Option<EventHash>,
    /// The gaps, claims and early events held open over every stream (see [`MAX_OPEN`]).
    held: Arc<AtomicUsize>,
}

impl StreamState {
    pub(super) fn new(id: Arc<str>, window_size: usize, held: Arc<AtomicUsize>) -> StreamState {
        StreamState {
            id,
            window_size: window_size.max(2),
            events: 0,
            cursor: 0,
            pending: None,
            early: BTreeSet::new(),
            window: BTreeMap::new(),
            gaps: BTreeMap::new(),
            blamed: HashSet::new(),
            open: None,
            last_evicted: None,
            max: None,
            sealed: 0,
            claims: BTreeMap::new(),
            new_stream_noted: false,
            vouched: false,
            tip: None,
            held,
        }
    }

    /// Whether the stream's event 1 (without `prev`) is in the input.
    pub(super) fn begins(&self) -> bool {
        self.new_stream_noted
    }

    /// A valid checkpoint kept outside the log covers this stream.
    pub(super) fn vouch(&mut self) {
        self.vouched = true;
    }

    /// The sequence numbers remembered as edited or as found early.
    #[cfg(test)]
    pub(super) fn remembered(&self) -> usize {
        self.blamed.len() + self.early.len()
    }

    /// Events of this stream read so far.
    pub(super) fn events(&self) -> u64 {
        self.events
    }

    /// Whether an event numbered `seq` whose `prev` is `prev` would continue this stream
    /// right at its cursor (used to recognise an event whose `chain.stream` was changed).
    pub(super) fn continues(&mut self, seq: u64, prev: Prev) -> bool {
        self.cursor > 0
            && seq == self.cursor + 1
            && !self.window.contains_key(&seq)
            && matches!(prev, Prev::Hash(_))
            && self
                .window
                .get_mut(&self.cursor)
                .is_some_and(|e| e.hash.is_prev(prev))
    }

    fn problem(
        &self,
        kind: ProblemKind,
        location: Option<Location>,
        seqs: SeqSpan,
        detail: String,
    ) -> Problem {
        Problem::new(kind, location, detail).in_stream(&self.id, seqs)
    }

    /// An event whose number was seen already: an inserted copy.
    fn repeated(&self, seq: u64, location: Location) -> Problem {
        self.problem(
            ProblemKind::Inserted,
            Some(location),
            SeqSpan::one(seq),
            format!("seq {seq} was already seen"),
        )
    }

    /// Event `seq` was reported already for a change that also breaks its links: they are
    /// not reported again.
    pub(super) fn explained(&mut self, seq: u64) {
        self.blamed.insert(seq);
    }

    /// Reports event `seq` as edited, once.
    pub(super) fn blame(
        &mut self,
        seq: u64,
        location: Option<Location>,
        detail: String,
        problems: &mut Problems,
    ) {
        if self.blamed.insert(seq) {
            problems.push(self.problem(ProblemKind::Edited, location, SeqSpan::one(seq), detail));
        }
    }

    /// Takes in the stream's next event from the input; returns the sequence number it
    /// stands at (its own unless that was changed), or `None` for a repeat.
    pub(super) fn push(&mut self, mut event: Incoming, problems: &mut Problems) -> Option<u64> {
        self.events += 1;
        // Only a stream's first event has no `prev`: a first event numbered otherwise had
        // its number changed.
        if event.prev == Prev::Absent
            && event.seq != 1
            && self.cursor == 0
            && !self.window.contains_key(&1)
        {
            self.blame(
                1,
                Some(event.location.clone()),
                format!(
                    "its chain.seq says {} but it has no chain.prev, which only seq 1 lacks",
                    event.seq
                ),
                problems,
            );
            event.seq = 1;
        }
        if event.seq == 1 && event.prev == Prev::Absent && !self.new_stream_noted {
            self.new_stream_noted = true;
            problems.push(self.problem(
                ProblemKind::NewStream,
                Some(event.location.clone()),
                SeqSpan::one(1),
                "a stream begins: a new auditor, or a restart without a state file".into(),
            ));
        }
        // An event that links to the event at the cursor stands in its place whatever its
        // `chain.seq` says: a changed number, not a jump or a repeat.
        if event.seq != self.cursor + 1 && self.continues(self.cursor + 1, event.prev) {
            let place = self.cursor + 1;
            self.blame(
                place,
                Some(event.location.clone()),
                format!(
                    "its chain.seq says {} but it links to seq {} and stands in the place of seq {place}",
                    event.seq, self.cursor
                ),
                problems,
            );
            event.seq = place;
        }
        if let Some(jump) = self.pending {
            if event.seq > self.cursor && event.seq < jump {
                self.pending = None;
                self.note_early(jump);
                let location = self.window.get(&jump).map(|e| e.location.clone());
                problems.push(self.problem(
                    ProblemKind::Reordered,
                    location,
                    SeqSpan::one(jump),
                    format!(
                        "found before seq {} (and the events between), which precede it",
                        event.seq
                    ),
                ));
            } else if event.seq >= jump {
                self.pending = None;
                self.accept_jump(jump, problems);
            }
        }
        let seq = event.seq;
        if seq == self.cursor + 1 {
            self.insert(event, problems);
            self.cursor = seq;
            self.advance();
        } else if seq <= self.cursor {
            if self.window.contains_key(&seq) || !self.fill_gap(seq, problems) {
                problems.push(self.repeated(seq, event.location));
                return None;
            }
            problems.push(self.problem(
                ProblemKind::Reordered,
                Some(event.location.clone()),
                SeqSpan::one(seq),
                format!("found after seq {}, which follows it", self.cursor),
            ));
            self.insert(event, problems);
        } else if self.window.contains_key(&seq) {
            problems.push(self.repeated(seq, event.location));
            return None;
        } else {
            self.insert(event, problems);
            self.pending = Some(seq);
        }
        Some(seq)
    }

    /// The numbers between the cursor and an accepted jump are a gap (except those that
    /// came early).
    fn accept_jump(&mut self, jump: u64, problems: &mut Problems) {
        let location = self
            .window
            .get(&jump)
            .map(|e| e.location.clone())
            .or_else(|| self.max.as_ref().map(|(_, l)| l.clone()));
        let mut from = self.cursor + 1;
        let early: Vec<u64> = self.early.range(from..jump).copied().collect();
        for seq in early.into_iter().chain(std::iter::once(jump)) {
            if seq > from {
                if let Some(location) = &location {
                    let gap = Gap {
                        last: seq - 1,
                        location: location.clone(),
                    };
                    self.open_gap(from, gap, problems);
                }
            }
            from = seq + 1;
        }
        self.cursor = jump;
        let later = self.early.split_off(&(jump + 1));
        let passed = std::mem::replace(&mut self.early, later).len();
        self.held.fetch_sub(passed, Ordering::Relaxed);
        self.advance();
    }

    /// Moves the cursor over events that came early.
    fn advance(&mut self) {
        while self.early.remove(&(self.cursor + 1)) {
            self.held.fetch_sub(1, Ordering::Relaxed);
            self.cursor += 1;
        }
    }

    /// Notes that event `seq`, ahead of the cursor, came early, while fewer than
    /// [`MAX_OPEN`] gaps, claims and such events are held: else a crafted input of numbers
    /// going down (1, 1000000, 999999...) would make memory grow with it. One not noted
    /// was reported as reordered already; when the cursor reaches it, it may be reported
    /// as deleted too.
    fn note_early(&mut self, seq: u64) {
        if self.held.load(Ordering::Relaxed) < MAX_OPEN && self.early.insert(seq) {
            self.held.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets which events before `seq - 1` were reported as edited, once there are more
    /// than the window holds: links are judged in sequence order as events leave the
    /// window, and those judged from now on need no earlier ones. Else an input whose every
    /// link is broken would make memory grow with it. An event found that late (reordered,
    /// already reported) and changed too may then be reported as edited twice.
    fn forget_blamed(&mut self, seq: u64) {
        if self.blamed.len() > 2 * self.window.len() + 16 {
            let low = seq.saturating_sub(1);
            self.blamed.retain(|&blamed| blamed >= low);
        }
    }

    /// Whether `seq` is in a known gap.
    fn in_gap(&self, seq: u64) -> bool {
        self.gaps
            .range(..=seq)
            .next_back()
            .is_some_and(|(_, gap)| gap.last >= seq)
    }

    /// Holds `first..=gap.last` open as a gap, or reports it at once as deleted when
    /// [`MAX_OPEN`] gaps and claims are open already.
    fn open_gap(&mut self, first: u64, gap: Gap, problems: &mut Problems) {
        if self.held.load(Ordering::Relaxed) >= MAX_OPEN {
            problems.push(self.problem(
                ProblemKind::Deleted,
                Some(gap.location),
                SeqSpan {
                    first,
                    last: gap.last,
                },
                format!(
                    "missing before this event; reported at once, matched with no drop report \
                     and no event found later: more than {MAX_OPEN} gaps are open"
                ),
            ));
            return;
        }
        self.held.fetch_add(1, Ordering::Relaxed);
        self.gaps.insert(first, gap);
    }

    /// Takes `seq` out of the gap that holds it; false when no gap does.
    fn fill_gap(&mut self, seq: u64, problems: &mut Problems) -> bool {
        let Some((&first, gap)) = self.gaps.range(..=seq).next_back() else {
            return false;
        };
        if gap.last < seq {
            return false;
        }
        let Some(gap) = self.gaps.remove(&first) else {
            return false;
        };
        self.held.fetch_sub(1, Ordering::Relaxed);
        if first < seq {
            let before = Gap {
                last: seq - 1,
                location: gap.location.clone(),
            };
            self.open_gap(first, before, problems);
        }
        if seq < gap.last {
            self.open_gap(seq + 1, gap, problems);
        }
        true
    }

    /// Adds an event to the window, checking its links to its neighbours there and any
    /// checkpoint's word on its hash.
    fn insert(&mut self, mut event: Incoming, problems: &mut Problems) {
        let seq = event.seq;
        let broken = match self.window.get_mut(&seq.wrapping_sub(1)) {
            Some(before) if seq > 1 => !before.hash.is_prev(event.prev),
            _ => false,
        };
        if let Some(after) = self.window.get_mut(&(seq + 1)) {
            after.broken = !event.hash.is_prev(after.prev);
        }
        if let Some(claim) = self.claims.remove(&seq) {
            if !claim.external {
                self.held.fetch_sub(1, Ordering::Relaxed);
            }
            if !event.hash.is(&claim.hash) {
                self.blame(
                    seq,
                    Some(event.location.clone()),
                    format!(
                        "its hash {} differs from {}, which the checkpoint at {} signed",
                        event.hash.settle(),
                        claim.hash,
                        claim.source
                    ),
                    problems,
                );
            }
        }
        if self.max.as_ref().is_none_or(|(max, _)| seq > *max) {
            self.max = Some((seq, event.location.clone()));
        }
        self.window.insert(
            seq,
            Entry {
                hash: event.hash,
                prev: event.prev,
                location: event.location,
                broken,
            },
        );
        while self.window.len() > self.window_size {
            if let Some((seq, entry)) = self.window.pop_first() {
                self.judge(seq, entry, problems);
            }
        }
    }

    /// Shrinks the window to its last `keep` events and settles their hashes (no line is
    /// kept), when the input has moved on to another stream: streams follow one another in
    /// a file or in a table read in chain order, so a full window per stream would only
    /// make memory grow with the number of streams. Returns the hash of the event at the
    /// cursor, which the stream's next event names as its `prev`: the verifier finds
    /// retired streams by it.
    pub(super) fn retire(&mut self, keep: usize, problems: &mut Problems) -> Option<EventHash> {
        while self.window.len() > keep {
            if let Some((seq, entry)) = self.window.pop_first() {
                self.judge(seq, entry, problems);
            }
        }
        for entry in self.window.values_mut() {
            entry.hash.settle();
        }
        self.window.get(&self.cursor).map(|entry| entry.hash.hash)
    }

    /// Judges the link into an event leaving the window (see the module docs).
    fn judge(&mut self, seq: u64, entry: Entry, problems: &mut Problems) {
        self.judge_link(seq, entry, problems);
        self.forget_blamed(seq);
    }

    /// [`StreamState::judge`], before what is no longer needed is forgotten.
    fn judge_link(&mut self, seq: u64, entry: Entry, problems: &mut Problems) {
        if let Some(open) = self.open.take() {
            if seq == open.b + 1 && entry.broken {
                self.blame(
                    open.b,
                    Some(open.location_b),
                    format!(
                        "it does not link to seq {before} and seq {seq} does not link to it: \
                         its chain (or the event) was changed, or seq {before} and it both were",
                        before = open.b - 1
                    ),
                    problems,
                );
                self.last_evicted = Some((seq, entry.location));
                return;
            }
            self.blame_before(open, problems);
        }
        if entry.broken {
            let location_before = match &self.last_evicted {
                Some((before, location)) if *before + 1 == seq => Some(location.clone()),
                _ => None,
            };
            self.open = Some(OpenLink {
                b: seq,
                location_b: entry.location.clone(),
                location_before,
            });
        }
        self.last_evicted = Some((seq, entry.location));
    }

    /// A single broken link `b-1 -> b`: event `b-1` changed.
    fn blame_before(&mut self, open: OpenLink, problems: &mut Problems) {
        let b = open.b;
        if self.blamed.contains(&b) {
            // Event `b` itself is known to be changed (a checkpoint said so): that explains
            // the link.
            return;
        }
        self.blame(
            b - 1,
            open.location_before.or(Some(open.location_b)),
            format!("its hash does not match chain.prev of seq {b}: the event was changed"),
            problems,
        );
    }

    /// A checkpoint says event `seq` has hash `hash`: checked now when the event is in the
    /// window, else when it arrives.
    pub(super) fn claim(
        &mut self,
        seq: u64,
        hash: EventHash,
        source: &Location,
        external: bool,
        problems: &mut Problems,
    ) {
        if let Some(entry) = self.window.get_mut(&seq) {
            if !entry.hash.is(&hash) {
                let location = Some(entry.location.clone());
                let detail = format!(
                    "its hash {} differs from {hash}, which the checkpoint at {source} signed",
                    entry.hash.settle()
                );
                self.blame(seq, location, detail, problems);
            }
            return;
        }
        // An event at or below the cursor and in no gap went by already: nothing to wait for.
        let passed = seq <= self.cursor && !self.in_gap(seq);
        // Copies' claims are kept whatever their number: they come from a trusted file.
        let room = external || self.held.load(Ordering::Relaxed) < MAX_OPEN;
        if (!passed || external) && room && !self.claims.contains_key(&seq) {
            if !external {
                self.held.fetch_add(1, Ordering::Relaxed);
            }
            self.claims.insert(
                seq,
                Claim {
                    hash,
                    source: source.clone(),
                    external,
                },
            );
        }
    }

    /// A valid checkpoint event `seq` seals everything up to it.
    pub(super) fn seal(&mut self, seq: u64) {
        self.sealed = self.sealed.max(seq);
    }

    /// The end of the input: settles what is pending and reports gaps, truncation and
    /// the unsealed tail.
    pub(super) fn finish(
        mut self,
        announced: &[Announced],
        trimmed: Trimmed,
        signed: bool,
        problems: &mut Problems,
    ) {
        if let Some(jump) = self.pending.take() {
            self.accept_jump(jump, problems);
        }
        while let Some((seq, entry)) = self.window.pop_first() {
            self.judge(seq, entry, problems);
        }
        if let Some(open) = self.open.take() {
            self.blame_before(open, problems);
        }
        let max = self.max.as_ref().map_or(0, |(max, _)| *max);
        let last_location = self.max.as_ref().map(|(_, location)| location.clone());
        let beyond = self
            .claims
            .iter()
            .filter(|(seq, claim)| claim.external && **seq > max)
            .max_by_key(|(seq, _)| **seq);
        let truncated = beyond.is_some();
        if let Some((&end, claim)) = beyond {
            let (location, detail) = match &last_location {
                Some(location) => (
                    Some(location.clone()),
                    format!(
                        "the log ends after seq {max} here, but the checkpoint at {} covers up to seq {end}",
                        claim.source
                    ),
                ),
                None => (
                    Some(claim.source.clone()),
                    format!("no event of this stream is in the log, but this checkpoint covers up to seq {end}"),
                ),
            };
            self.report_missing(
                max + 1,
                end,
                ProblemKind::Truncated,
                location,
                &detail,
                &announced.iter().collect::<Vec<_>>(),
                problems,
            );
        }
        // The gaps in order, and the announced ranges swept along them: a range is taken in
        // when the gaps reach its start and let go when they pass its end, so the work is
        // the ranges plus what overlaps, not gaps times ranges.
        let mut sorted: Vec<&Announced> = announced.iter().collect();
        sorted.sort_by_key(|a| a.first);
        let mut pending = sorted.into_iter().peekable();
        let mut active: Vec<&Announced> = Vec::new();
        let gaps = std::mem::take(&mut self.gaps);
        let claims = self.claims.values().filter(|claim| !claim.external).count();
        self.held
            .fetch_sub(gaps.len() + claims + self.early.len(), Ordering::Relaxed);
        for (first, gap) in gaps {
            while let Some(range) = pending.next_if(|a| a.first <= gap.last) {
                active.push(range);
            }
            active.retain(|a| a.last >= first);
            if first == 1 && trimmed == Trimmed::Allowed {
                problems.push(self.problem(
                    ProblemKind::TrimmedStart,
                    Some(gap.location),
                    SeqSpan {
                        first,
                        last: gap.last,
                    },
                    format!(
                        "the stream starts at seq {} here; its earlier events were removed \
                         (accepted as retention)",
                        gap.last + 1
                    ),
                ));
                continue;
            }
            let detail = if let (1, Trimmed::After(begun)) = (first, &trimmed) {
                format!(
                    "the stream starts at seq {} here, but it began after stream {begun}, \
                     which still has its start: retention removes the oldest events first, \
                     so --trimmed-start does not excuse it",
                    gap.last + 1
                )
            } else if let (1, Trimmed::AfterEvent { stream, time }) = (first, &trimmed) {
                format!(
                    "the stream starts at seq {} here, but it began after an event still in \
                     the input (of stream {stream}, at {time}): retention removes the oldest \
                     events first, so --trimmed-start does not excuse it",
                    gap.last + 1
                )
            } else if first == 1 {
                format!(
                    "the stream starts at seq {} here: its earlier events are not in the input",
                    gap.last + 1
                )
            } else {
                "missing before this event".to_owned()
            };
            self.report_missing(
                first,
                gap.last,
                ProblemKind::Deleted,
                Some(gap.location),
                &detail,
                &active,
                problems,
            );
        }
        if self.events > 0 && self.sealed == 0 && !self.vouched && signed {
            problems.push(
                self.problem(
                    ProblemKind::Unsealed,
                    last_location,
                    SeqSpan {
                        first: 1,
                        last: max,
                    },
                    "no checkpoint signed by a given key covers any event of this stream: \
                 nothing vouches for it (a stream written by someone else, or one that \
                 ended before its first checkpoint)"
                        .into(),
                ),
            );
        } else if self.events > 0 && max > self.sealed && !truncated {
            let detail = if self.sealed == 0 {
                "no valid checkpoint seals this stream".to_owned()
            } else {
                format!(
                    "{} events after the last valid checkpoint (seq {}) are not sealed",
                    max - self.sealed,
                    self.sealed
                )
            };
            problems.push(self.problem(
                ProblemKind::UnsealedTail,
                last_location,
                SeqSpan {
                    first: self.sealed + 1,
                    last: max,
                },
                detail,
            ));
        }
    }

    /// Reports `first..=last` as missing (`kind`), except what drop reports announced.
    #[allow(clippy::too_many_arguments)]
    fn report_missing(
        &self,
        first: u64,
        last: u64,
        kind: ProblemKind,
        location: Option<Location>,
        detail: &str,
        announced: &[&Announced],
        problems: &mut Problems,
    ) {
        let mut covering: Vec<&Announced> = announced
            .iter()
            .copied()
            .filter(|a| a.first <= last && a.last >= first)
            .collect();
        covering.sort_by_key(|a| a.first);
        let mut at = first;
        for drop in covering {
            if drop.last < at {
                continue;
            }
            if drop.first > at {
                let end = (drop.first - 1).min(last);
                problems.push(self.problem(
                    kind,
                    location.clone(),
                    SeqSpan {
                        first: at,
                        last: end,
                    },
                    format!("{detail}; not announced by any drop report"),
                ));
            }
            let (from, to) = (drop.first.max(at), drop.last.min(last));
            let seqs = SeqSpan {
                first: from,
                last: to,
            };
            let problem = if drop.excuses {
                self.problem(
                    ProblemKind::AnnouncedGap,
                    location.clone(),
                    seqs,
                    format!(
                        "lost ({}), announced by the drop report of sink {} at {}{}",
                        drop.reason,
                        drop.sink,
                        drop.location,
                        if drop.signed {
                            ""
                        } else {
                            " (its signature was not checked: no --key)"
                        }
                    ),
                )
            } else {
                self.problem(
                    kind,
                    location.clone(),
                    seqs,
                    format!(
                        "{detail}; the drop report of sink {sink} at {} announces them, but \
                         nothing says this is that sink's storage (give --sink {sink} if it is)",
                        drop.location,
                        sink = drop.sink,
                    ),
                )
            };
            problems.push(problem);
            at = to + 1;
            if at > last {
                return;
            }
        }
        problems.push(self.problem(
            kind,
            location,
            SeqSpan { first: at, last },
            format!("{detail}; not announced by any drop report"),
        ));
    }
}
