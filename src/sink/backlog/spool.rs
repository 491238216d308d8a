//! The on-disk spool: events a backend could not take yet, in order, until it confirms them.
//!
//! Layout of the spool directory:
//! - `<seq>.jsonl` segments (`seq` zero-padded to 20 digits), one event per line, appended
//!   in order; a new segment starts when the last one reaches the segment size;
//! - `cursor`: `<seq> <offset>`, the first byte not yet confirmed, replaced atomically
//!   (written to `cursor.tmp`, fsynced, renamed) after each confirmed replay batch;
//! - `lock`: held with an exclusive advisory lock while a writer uses the spool, so two
//!   processes never share one;
//! - `quarantine.jsonl`: lines that were not events (disk corruption), kept for inspection
//!   up to [`QUARANTINE_MAX_BYTES`] (or the spool's own size bound, if smaller); lines past
//!   that are counted and logged, not kept.
//!
//! Segments before the cursor's are deleted; when everything is confirmed all segments are.
//! At open, a torn last line (a crash in the middle of an append) is cut off.
//!
//! Everything here is blocking I/O: the writer calls it on the blocking pool.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::file_lock::{self, Mode};
use crate::no_follow;
use crate::sink::EncodedEvent;

const SEGMENT_SUFFIX: &str = ".jsonl";
const CURSOR: &str = "cursor";
const CURSOR_TMP: &str = "cursor.tmp";
pub(super) const LOCK: &str = "lock";
pub(super) const QUARANTINE: &str = "quarantine.jsonl";
/// The most `quarantine.jsonl` grows to (less when the spool's `max_bytes` is less): enough
/// to see what a corruption looks like; a disk that keeps corrupting segments must not fill
/// up with their copies.
pub(crate) const QUARANTINE_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// How a spool is laid out and bounded.
#[derive(Clone, Debug)]
pub(crate) struct SpoolConfig {
    pub(crate) dir: PathBuf,
    pub(crate) max_bytes: u64,
    pub(crate) segment_bytes: u64,
    pub(crate) fsync: bool,
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Position {
    pub(crate) seq: u64,
    pub(crate) offset: u64,
}

#[derive(Clone, Copy, Debug)]
struct Segment {
    seq: u64,
    len: u64,
}

/// Events read from the spool and not yet confirmed.
#[derive(Debug, Default)]
pub(crate) struct ReadBatch {
    pub(crate) events: Vec<EncodedEvent>,
    /// Lines consumed, including corrupt ones.
    pub(crate) lines: u64,
    /// Bytes consumed.
    pub(crate) bytes: u64,
    /// Corrupt lines moved to the quarantine file, or left out of it.
    pub(crate) corrupt: u64,
    /// Of those, the lines left out because the quarantine file was full.
    pub(crate) corrupt_not_kept: u64,
    pub(crate) end: Position,
}

/// What an append did: the first `count` events are in the spool; if `error` is set, the
/// rest could not be written, else they did not fit.
#[derive(Debug)]
pub(crate) struct Appended {
    pub(crate) count: usize,
    pub(crate) error: Option<io::Error>,
}

/// What recovery found at open.
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    /// Bytes of a torn last line that were cut off.
    pub(crate) torn_bytes: u64,
}

#[derive(Debug)]
pub(crate) struct Spool {
    config: SpoolConfig,
    _lock: File,
    /// Segments on disk, oldest first.
    segments: VecDeque<Segment>,
    /// Everything before this is confirmed.
    head: Position,
    /// Where the next read starts: lines between `head` and here are in flight.
    read: Position,
    reader: Option<(u64, BufReader<File>)>,
    tail: Option<File>,
    next_seq: u64,
    events: u64,
    bytes: u64,
}

/// Why a spool directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("{dir} is in use by another process (each process needs its own spool directory)")]
    Locked { dir: PathBuf },
    #[error("{dir}: {source}")]
    Io { dir: PathBuf, source: io::Error },
}

impl Spool {
    /// Opens (creating it if needed), locks and recovers a spool directory.
    pub(crate) fn open(config: SpoolConfig) -> Result<(Spool, Recovered), OpenError> {
        let dir = config.dir.clone();
        let io_err = |source| OpenError::Io {
            dir: dir.clone(),
            source,
        };
        create_private_dir(&dir).map_err(io_err)?;
        let lock = open_own(
            private_file().create(true).truncate(false).write(true),
            &dir.join(LOCK),
        )
        .map_err(io_err)?;
        if !file_lock::try_lock(&lock, Mode::Exclusive).map_err(io_err)? {
            return Err(OpenError::Locked { dir });
        }
        Spool::recover(config, lock).map_err(io_err)
    }

    fn recover(config: SpoolConfig, lock: File) -> io::Result<(Spool, Recovered)> {
        let dir = &config.dir;
        let mut seqs = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == CURSOR_TMP {
                fs::remove_file(entry.path())?;
            } else if let Some(seq) = parse_segment_name(name) {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();

        let cursor = read_cursor(dir, read_own)?;
        let mut next_seq = seqs.last().map_or(0, |last| last + 1);
        if let Some(cursor) = cursor {
            next_seq = next_seq.max(cursor.seq + 1);
        }
        let mut segments = VecDeque::new();
        let mut head = None;
        for seq in seqs {
            match cursor {
                // Confirmed before a crash that came between the cursor and the deletion.
                Some(cursor) if seq < cursor.seq => fs::remove_file(segment_path(dir, seq))?,
                _ => {
                    let len = fs::metadata(segment_path(dir, seq))?.len();
                    if head.is_none() {
                        let offset = match cursor {
                            Some(cursor) if cursor.seq == seq => cursor.offset.min(len),
                            _ => 0,
                        };
                        head = Some(Position { seq, offset });
                    }
                    segments.push_back(Segment { seq, len });
                }
            }
        }
        let head = head.unwrap_or(Position {
            seq: next_seq,
            offset: 0,
        });

        let mut recovered = Recovered::default();
        let mut events = 0;
        let last = segments.len().saturating_sub(1);
        for (index, segment) in segments.iter_mut().enumerate() {
            let from = if segment.seq == head.seq {
                head.offset
            } else {
                0
            };
            let count = count_lines(&segment_path(dir, segment.seq), from)?;
            events += count.lines;
            if index == last {
                if count.trailing > 0 {
                    let keep = segment.len - count.trailing;
                    let file =
                        open_own(private_file().write(true), &segment_path(dir, segment.seq))?;
                    file.set_len(keep)?;
                    file.sync_all()?;
                    recovered.torn_bytes = count.trailing;
                    segment.len = keep;
                }
            } else if count.trailing > 0 {
                // A segment is only closed after whole lines: this is corruption, and the
                // reader will quarantine it as one line.
                events += 1;
            }
        }
        let bytes = segments.iter().map(|s| s.len).sum::<u64>() - head.offset;

        let tail = match segments.back() {
            Some(segment) => Some(open_own(
                private_file().append(true),
                &segment_path(dir, segment.seq),
            )?),
            None => None,
        };
        let mut spool = Spool {
            config,
            _lock: lock,
            segments,
            head,
            read: head,
            reader: None,
            tail,
            next_seq,
            events,
            bytes,
        };
        if spool.events == 0 {
            spool.reset()?;
        }
        Ok((spool, recovered))
    }

    /// Events not yet confirmed.
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// Bytes not yet confirmed.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether every event was confirmed.
    pub(crate) fn is_empty(&self) -> bool {
        self.events == 0 || self.at_end(self.head)
    }

    /// Appends as many events as fit under the size bound, in order.
    pub(crate) fn append(&mut self, events: &[EncodedEvent]) -> Appended {
        let mut appended = 0;
        let mut buf = Vec::new();
        while appended < events.len() {
            if self.tail.is_none() {
                if let Err(error) = self.roll() {
                    return Appended {
                        count: appended,
                        error: Some(error),
                    };
                }
            }
            let tail_len = self.segments.back().map_or(0, |s| s.len);
            buf.clear();
            let mut full = false;
            let mut taken = 0;
            for event in &events[appended..] {
                let line = event.json().len() as u64 + 1;
                let chunk = buf.len() as u64;
                if self.bytes + chunk + line > self.config.max_bytes {
                    full = true;
                    break;
                }
                // A segment holds at least one line, however long.
                if tail_len + chunk > 0 && tail_len + chunk + line > self.config.segment_bytes {
                    break;
                }
                buf.extend_from_slice(event.json());
                buf.push(b'\n');
                taken += 1;
            }
            if taken > 0 {
                if let Err(error) = self.write_tail(&buf) {
                    return Appended {
                        count: appended,
                        error: Some(error),
                    };
                }
                self.bytes += buf.len() as u64;
                self.events += taken as u64;
                appended += taken;
                if let Some(segment) = self.segments.back_mut() {
                    segment.len += buf.len() as u64;
                }
            }
            if full {
                break;
            }
            if appended < events.len() {
                if let Err(error) = self.roll() {
                    return Appended {
                        count: appended,
                        error: Some(error),
                    };
                }
            }
        }
        let mut error = None;
        if self.config.fsync && appended > 0 {
            if let Some(tail) = &self.tail {
                error = tail.sync_data().err();
            }
        }
        Appended {
            count: appended,
            error,
        }
    }

    /// Writes whole lines to the last segment; on failure the segment is cut back so no
    /// partial line stays behind.
    fn write_tail(&mut self, buf: &[u8]) -> io::Result<()> {
        let len = self.segments.back().map_or(0, |s| s.len);
        let Some(tail) = self.tail.as_mut() else {
            return Err(io::Error::other("spool has no open segment"));
        };
        if let Err(error) = tail.write_all(buf) {
            let _ = tail.set_len(len);
            return Err(error);
        }
        Ok(())
    }

    /// Starts a new segment.
    fn roll(&mut self) -> io::Result<()> {
        if let Some(tail) = self.tail.take() {
            if self.config.fsync {
                tail.sync_data()?;
            }
        }
        let seq = self.next_seq;
        let file = open_own(
            private_file().append(true).create_new(true),
            &segment_path(&self.config.dir, seq),
        )?;
        self.next_seq += 1;
        if self.config.fsync {
            sync_dir(&self.config.dir)?;
        }
        self.segments.push_back(Segment { seq, len: 0 });
        self.tail = Some(file);
        Ok(())
    }

    /// Reads the next events after those already in flight: at most `max_events`, and
    /// stopping once `max_bytes` were read.
    pub(crate) fn read_batch(
        &mut self,
        max_events: usize,
        max_bytes: u64,
    ) -> io::Result<ReadBatch> {
        let mut batch = ReadBatch::default();
        let mut line = Vec::new();
        while batch.events.len() < max_events && batch.bytes < max_bytes {
            let Some(index) = self.segments.iter().position(|s| s.seq == self.read.seq) else {
                break;
            };
            let is_last = index + 1 == self.segments.len();
            let segment_len = self.segments[index].len;
            if self.read.offset >= segment_len {
                if is_last {
                    break;
                }
                self.read = Position {
                    seq: self.segments[index + 1].seq,
                    offset: 0,
                };
                self.reader = None;
                continue;
            }
            let read = self.read;
            let reader = self.reader_at(read)?;
            line.clear();
            let n = reader
                .take(segment_len - read.offset)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                self.reader = None;
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "spool segment {} is shorter than written",
                        segment_path(&self.config.dir, read.seq).display()
                    ),
                ));
            }
            let complete = line.last() == Some(&b'\n');
            if !complete && is_last {
                // Only whole lines are appended; this one is still being written.
                self.reader = None;
                break;
            }
            self.read.offset += n as u64;
            batch.lines += 1;
            batch.bytes += n as u64;
            let json = if complete { &line[..n - 1] } else { &line[..] };
            match EncodedEvent::from_json(Bytes::copy_from_slice(json)) {
                Ok(event) => batch.events.push(event),
                Err(err) => {
                    batch.corrupt += 1;
                    if !self.quarantine(json, &err) {
                        batch.corrupt_not_kept += 1;
                    }
                }
            }
        }
        batch.end = self.read;
        Ok(batch)
    }

    fn reader_at(&mut self, at: Position) -> io::Result<&mut BufReader<File>> {
        let reusable = matches!(&self.reader, Some((seq, _)) if *seq == at.seq);
        if !reusable {
            let mut file = read_own(&segment_path(&self.config.dir, at.seq))?;
            file.seek(SeekFrom::Start(at.offset))?;
            self.reader = Some((at.seq, BufReader::with_capacity(64 * 1024, file)));
        }
        match &mut self.reader {
            Some((_, reader)) => Ok(reader),
            None => Err(io::Error::other("spool reader missing")),
        }
    }

    /// Moves a corrupt line to the quarantine file, unless that would take the file past its
    /// bound; whether the line was kept.
    fn quarantine(&self, line: &[u8], err: &crate::sink::RecordError) -> bool {
        let path = self.config.dir.join(QUARANTINE);
        let error = crate::event::sanitize(&err.to_string(), 300);
        let limit = QUARANTINE_MAX_BYTES.min(self.config.max_bytes);
        let held = fs::metadata(&path).map_or(0, |m| m.len());
        let bytes = line.len() as u64 + 1;
        if held.saturating_add(bytes) > limit {
            tracing::warn!(
                target: "oauth_audit",
                spool = %self.config.dir.display(),
                quarantine = %path.display(),
                bytes,
                limit,
                error = %error,
                "audit spool line is not an event (disk corruption?); quarantine full, line not kept"
            );
            return false;
        }
        tracing::warn!(
            target: "oauth_audit",
            spool = %self.config.dir.display(),
            quarantine = %path.display(),
            error = %error,
            "audit spool line is not an event (disk corruption?); moved to quarantine"
        );
        let written =
            open_own(private_file().create(true).append(true), &path).and_then(|mut file| {
                let mut record = line.to_vec();
                record.push(b'\n');
                file.write_all(&record)
            });
        if let Err(error) = written {
            tracing::warn!(
                target: "oauth_audit",
                quarantine = %path.display(),
                error = %error,
                "could not keep a corrupt audit spool line"
            );
            return false;
        }
        true
    }

    /// The backend confirmed `batch` (the oldest in flight): forget it.
    pub(crate) fn ack(&mut self, batch: &ReadBatch) -> io::Result<()> {
        self.events = self.events.saturating_sub(batch.lines);
        self.bytes = self.bytes.saturating_sub(batch.bytes);
        self.head = batch.end;
        // No cursor needs to point at the end of a segment that has a successor.
        while let Some(index) = self.segments.iter().position(|s| s.seq == self.head.seq) {
            if index + 1 < self.segments.len() && self.head.offset >= self.segments[index].len {
                self.head = Position {
                    seq: self.segments[index + 1].seq,
                    offset: 0,
                };
            } else {
                break;
            }
        }
        if self.read < self.head {
            // The read position was at the end of a segment the head has now moved past.
            self.read = self.head;
            self.reader = None;
        }
        if self.events == 0 || self.at_end(self.head) {
            return self.reset();
        }
        write_cursor(&self.config.dir, self.head, self.config.fsync)?;
        while let Some(front) = self.segments.front() {
            if front.seq >= self.head.seq {
                break;
            }
            remove_if_present(&segment_path(&self.config.dir, front.seq))?;
            self.segments.pop_front();
        }
        Ok(())
    }

    fn at_end(&self, at: Position) -> bool {
        match self.segments.back() {
            None => true,
            Some(last) => at.seq == last.seq && at.offset >= last.len,
        }
    }

    /// Everything is confirmed: start over with no segment at all.
    fn reset(&mut self) -> io::Result<()> {
        self.tail = None;
        self.reader = None;
        let fresh = Position {
            seq: self.next_seq,
            offset: 0,
        };
        // The cursor first: a crash before the deletions leaves segments it marks confirmed.
        write_cursor(&self.config.dir, fresh, self.config.fsync)?;
        while let Some(front) = self.segments.pop_front() {
            remove_if_present(&segment_path(&self.config.dir, front.seq))?;
        }
        self.head = fresh;
        self.read = fresh;
        self.events = 0;
        self.bytes = 0;
        Ok(())
    }

    /// Fsyncs the last segment (for a shutdown under a no-fsync policy).
    pub(crate) fn sync(&self) -> io::Result<()> {
        match &self.tail {
            Some(tail) => tail.sync_data(),
            None => Ok(()),
        }
    }
}

pub(super) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}{SEGMENT_SUFFIX}"))
}

pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The cursor, opened with `open`: never through a symbolic link, which would make the
/// spool (and its status) take another file's numbers for its own.
pub(super) fn read_cursor(
    dir: &Path,
    open: impl FnOnce(&Path) -> io::Result<File>,
) -> io::Result<Option<Position>> {
    let mut text = String::new();
    match open(&dir.join(CURSOR)).and_then(|mut file| file.read_to_string(&mut text)) {
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    }
    let mut fields = text.split_ascii_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next(), fields.next()) {
        (Some(Ok(seq)), Some(Ok(offset)), None) => Ok(Some(Position { seq, offset })),
        _ => {
            tracing::warn!(
                target: "oauth_audit",
                spool = %dir.display(),
                "audit spool cursor is unreadable; replaying the spool from its oldest segment"
            );
            Ok(None)
        }
    }
}

fn write_cursor(dir: &Path, at: Position, sync_directory: bool) -> io::Result<()> {
    let tmp = dir.join(CURSOR_TMP);
    // Emptied once checked, not at the open (`O_TRUNC`): a file planted there that is
    // another file's second name is refused with that other file's text intact.
    let mut file = open_own(
        private_file().write(true).create(true).truncate(false),
        &tmp,
    )?;
    file.set_len(0)?;
    file.write_all(format!("{} {}\n", at.seq, at.offset).as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(CURSOR))?;
    if sync_directory {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Audit events are for auditors: the spool is readable by its owner only.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Never through a symbolic link, either (see [`crate::no_follow`]).
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    no_follow::no_follow(&mut options);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Opens a file of the spool, refusing one someone else owns (see [`crate::file_owner`]):
/// whoever made it could read what waits, or forge what is replayed.
fn open_own(options: &OpenOptions, path: &Path) -> io::Result<File> {
    crate::file_owner::open(options, path, None)
}

/// Opens a file of the spool to read it back, with the checks of [`open_own`].
fn read_own(path: &Path) -> io::Result<File> {
    crate::file_owner::open_read(path, None)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

struct LineCount {
    /// Complete lines.
    lines: u64,
    /// Bytes after the last newline.
    trailing: u64,
}

fn count_lines(path: &Path, from: u64) -> io::Result<LineCount> {
    let mut file = read_own(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0; 64 * 1024];
    let mut count = LineCount {
        lines: 0,
        trailing: 0,
    };
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(count),
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        for &byte in &buf[..n] {
            if byte == b'\n' {
                count.lines += 1;
                count.trailing = 0;
            } else {
                count.trailing += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir =
                std::env::temp_dir().join(format!("oauth-audit-spool-{}", uuid::Uuid::now_v7()));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn config(dir: &TempDir, max_bytes: u64, segment_bytes: u64) -> SpoolConfig {
        SpoolConfig {
            dir: dir.0.clone(),
            max_bytes,
            segment_bytes,
            fsync: false,
        }
    }

    fn events(n: usize) -> Vec<EncodedEvent> {
        let service = Arc::new(ServiceInfo {
            name: "api".into(),
            instance: None,
        });
        (0..n)
            .map(|_| {
                let event = AuditEvent::new(
                    service.clone(),
                    Timestamp::now(),
                    EventKind::TokenRevoked,
                    Outcome::Success,
                );
                EncodedEvent::encode(&event).unwrap()
            })
            .collect()
    }

    fn segment_files(dir: &TempDir) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| parse_segment_name(name).is_some())
            .collect();
        names.sort();
        names
    }

    fn drain(spool: &mut Spool) -> Vec<EncodedEvent> {
        let mut out = Vec::new();
        loop {
            let batch = spool.read_batch(7, u64::MAX).unwrap();
            if batch.lines == 0 {
                return out;
            }
            spool.ack(&batch).unwrap();
            out.extend(batch.events);
        }
    }

    /// A file in the spool's place that is a symbolic link (planted by whoever can write to
    /// the directory) is never followed: not a segment recovery would cut short or append
    /// to, not the cursor (read at open), not the cursor's temporary file (truncated at each
    /// confirmation), not the quarantine file.
    #[cfg(unix)]
    #[test]
    fn symbolic_links_in_the_spool_are_not_followed() {
        let victim_text = "someone else's file, no newline at its end";
        let planted = |dir: &TempDir, name: &str| {
            fs::create_dir_all(&dir.0).unwrap();
            let victim = dir.0.join("victim.txt");
            fs::write(&victim, victim_text).unwrap();
            std::os::unix::fs::symlink(&victim, dir.0.join(name)).unwrap();
            victim
        };

        let dir = TempDir::new();
        let victim = planted(&dir, &format!("{:020}{SEGMENT_SUFFIX}", 7));
        let error = Spool::open(config(&dir, u64::MAX, u64::MAX)).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), victim_text);

        // The cursor: its target's numbers are never taken for the spool's.
        let dir = TempDir::new();
        let victim = planted(&dir, CURSOR);
        let error = Spool::open(config(&dir, u64::MAX, u64::MAX)).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), victim_text);

        // Planted once the spool is open: opening removes a leftover `cursor.tmp`.
        let dir = TempDir::new();
        let (mut spool, _) = Spool::open(config(&dir, u64::MAX, u64::MAX)).unwrap();
        let victim = planted(&dir, CURSOR_TMP);
        assert_eq!(spool.append(&events(3)).count, 3);
        let batch = spool.read_batch(2, u64::MAX).unwrap();
        let error = spool.ack(&batch).unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), victim_text);

        let dir = TempDir::new();
        let victim = planted(&dir, QUARANTINE);
        let (spool, _) = Spool::open(config(&dir, u64::MAX, u64::MAX)).unwrap();
        let not_an_event = EncodedEvent::from_json(Bytes::from_static(b"{")).unwrap_err();
        assert!(!spool.quarantine(b"{", &not_an_event));
        assert_eq!(fs::read_to_string(&victim).unwrap(), victim_text);
    }

    /// A file of the spool that someone else pre-created in its directory (who could then
    /// read what waits, or forge events the spool would replay) is refused with an error
    /// that names it and its owner, wherever the spool opens one: the lock, the cursor and a
    /// segment at open, the cursor's temporary file at a confirmation, the quarantine file.
    /// (The tests run as root, which can give a file away: uid 65534.)
    #[cfg(unix)]
    #[test]
    fn files_someone_else_owns_in_the_spool_are_refused() {
        let planted = |dir: &TempDir, name: &str, text: &str| {
            fs::create_dir_all(&dir.0).unwrap();
            let path = dir.0.join(name);
            fs::write(&path, text).unwrap();
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            path
        };
        let refused = |error: &dyn std::fmt::Display, path: &Path| {
            let message = error.to_string();
            assert!(
                message.contains(&path.display().to_string()) && message.contains("uid 65534"),
                "{message}"
            );
        };
        let line = String::from_utf8(events(1)[0].json().to_vec()).unwrap() + "\n";

        for (name, text) in [
            (LOCK, String::new()),
            (CURSOR, "0 0\n".to_owned()),
            (format!("{:020}{SEGMENT_SUFFIX}", 0).as_str(), line.clone()),
        ] {
            let dir = TempDir::new();
            let path = planted(&dir, name, &text);
            let error = Spool::open(config(&dir, u64::MAX, u64::MAX)).unwrap_err();
            refused(&error, &path);
        }

        let dir = TempDir::new();
        let (mut spool, _) = Spool::open(config(&dir, u64::MAX, u64::MAX)).unwrap();
        let tmp = planted(&dir, CURSOR_TMP, "");
        assert_eq!(spool.append(&events(3)).count, 3);
        let batch = spool.read_batch(2, u64::MAX).unwrap();
        let error = spool.ack(&batch).unwrap_err();
        refused(&error, &tmp);
        assert_eq!(
            fs::read_to_string(&tmp).unwrap(),
            "",
            "the cursor is not written to it"
        );

        let quarantine = planted(&dir, QUARANTINE, "");
        let not_an_event = EncodedEvent::from_json(Bytes::from_static(b"{")).unwrap_err();
        assert!(!spool.quarantine(b"{", &not_an_event));
        assert_eq!(fs::read_to_string(&quarantine).unwrap(), "");
    }

    /// The cursor's temporary file planted as a hard link to another file of the process's
    /// user is refused at a confirmation, and that file is neither emptied nor written: the
    /// temporary file is truncated only once it is known to be the spool's own.
    #[cfg(unix)]
    #[test]
    fn a_hard_link_in_place_of_the_cursors_temporary_file_is_left_alone() {
        let dir = TempDir::new();
        let (mut spool, _) = Spool::open(config(&dir, u64::MAX, u64::MAX)).unwrap();
        let victim = dir.0.join("authorized_keys");
        fs::write(&victim, "ssh-ed25519 AAAA operator\n").unwrap();
        let tmp = dir.0.join(CURSOR_TMP);
        fs::hard_link(&victim, &tmp).unwrap();
        assert_eq!(spool.append(&events(3)).count, 3);
        let batch = spool.read_batch(2, u64::MAX).unwrap();
        let message = spool.ack(&batch).unwrap_err().to_string();
        assert!(
            message.contains(&tmp.display().to_string()) && message.contains("has 2 links"),
            "{message}"
        );
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            "ssh-ed25519 AAAA operator\n"
        );
    }

    #[test]
    fn segments_roll_and_are_deleted_once_confirmed() {
        let dir = TempDir::new();
        let line = events(1)[0].json().len() as u64 + 1;
        let (mut spool, _) = Spool::open(config(&dir, u64::MAX, line * 4)).unwrap();
        let written = events(10);
        let appended = spool.append(&written);
        assert_eq!(appended.count, 10);
        assert!(appended.error.is_none());
        // 4 + 4 + 2 lines.
        assert_eq!(segment_files(&dir).len(), 3);
        assert_eq!(spool.events(), 10);
        assert_eq!(spool.bytes(), 10 * line);

        let batch = spool.read_batch(5, u64::MAX).unwrap();
        assert_eq!(batch.events, written[..5]);
        spool.ack(&batch).unwrap();
        assert_eq!(
            segment_files(&dir).len(),
            2,
            "the first segment is confirmed"
        );
        assert_eq!(spool.events(), 5);

        assert_eq!(drain(&mut spool), written[5..]);
        assert!(spool.is_empty());
        assert!(segment_files(&dir).is_empty());
        assert_eq!((spool.events(), spool.bytes()), (0, 0));

        // Appending after the spool emptied starts a fresh segment and stays in order.
        let more = events(3);
        assert_eq!(spool.append(&more).count, 3);
        assert_eq!(drain(&mut spool), more);
    }

    #[test]
    fn the_size_bound_takes_what_fits_in_order() {
        let dir = TempDir::new();
        let line = events(1)[0].json().len() as u64 + 1;
        let (mut spool, _) = Spool::open(config(&dir, line * 5 + 3, 1 << 20)).unwrap();
        let written = events(8);
        let appended = spool.append(&written);
        assert_eq!(appended.count, 5);
        assert!(appended.error.is_none());
        assert_eq!(spool.append(&written[5..]).count, 0);
        let batch = spool.read_batch(2, u64::MAX).unwrap();
        spool.ack(&batch).unwrap();
        assert_eq!(spool.append(&written[5..]).count, 2);
        assert_eq!(drain(&mut spool), written[2..7]);
    }

    #[test]
    fn the_cursor_survives_a_restart() {
        let dir = TempDir::new();
        let line = events(1)[0].json().len() as u64 + 1;
        let written = events(9);
        {
            let (mut spool, _) = Spool::open(config(&dir, u64::MAX, line * 4)).unwrap();
            spool.append(&written);
            let batch = spool.read_batch(6, u64::MAX).unwrap();
            spool.ack(&batch).unwrap();
            // Read but never confirmed: must come back after the restart.
            let inflight = spool.read_batch(2, u64::MAX).unwrap();
            assert_eq!(inflight.events, written[6..8]);
        }
        let cursor = fs::read_to_string(dir.0.join(CURSOR)).unwrap();
        assert!(cursor.ends_with('\n'), "{cursor:?}");
        let (mut spool, recovered) = Spool::open(config(&dir, u64::MAX, line * 4)).unwrap();
        assert_eq!(recovered.torn_bytes, 0);
        assert_eq!(spool.events(), 3);
        assert_eq!(spool.bytes(), 3 * line);
        assert_eq!(drain(&mut spool), written[6..]);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_garbage_is_quarantined() {
        let dir = TempDir::new();
        let written = events(4);
        {
            let (mut spool, _) = Spool::open(config(&dir, u64::MAX, 1 << 20)).unwrap();
            spool.append(&written[..2]);
        }
        let segment = dir.0.join(&segment_files(&dir)[0]);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(b"{\"not\": \"an event\"}\n").unwrap();
        file.write_all(&written[2].json()[..]).unwrap();
        file.write_all(b"\n").unwrap();
        file.write_all(&written[3].json()[..20]).unwrap();
        drop(file);

        let (mut spool, recovered) = Spool::open(config(&dir, u64::MAX, 1 << 20)).unwrap();
        assert_eq!(recovered.torn_bytes, 20);
        assert_eq!(spool.events(), 4, "three events and one garbage line");
        let batch = spool.read_batch(10, u64::MAX).unwrap();
        assert_eq!(batch.corrupt, 1);
        assert_eq!(batch.lines, 4);
        assert_eq!(batch.events, written[..3]);
        spool.ack(&batch).unwrap();
        assert!(spool.is_empty());
        let quarantined = fs::read_to_string(dir.0.join(QUARANTINE)).unwrap();
        assert_eq!(quarantined, "{\"not\": \"an event\"}\n");
        // New appends start on a clean line boundary.
        spool.append(&written[3..]);
        assert_eq!(drain(&mut spool), written[3..]);
    }

    #[test]
    fn the_quarantine_stops_growing_at_its_bound_and_says_what_it_left_out() {
        let dir = TempDir::new();
        let written = events(2);
        let garbage = |i: usize| format!("{{\"garbage\": {i:04}}}\n");
        let bound = 3 * garbage(0).len() as u64 + 5;
        {
            let (mut spool, _) = Spool::open(config(&dir, u64::MAX, 1 << 20)).unwrap();
            spool.append(&written[..1]);
        }
        let segment = dir.0.join(&segment_files(&dir)[0]);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        for i in 0..10 {
            file.write_all(garbage(i).as_bytes()).unwrap();
        }
        drop(file);

        // The spool's own bound is the smaller one here: the quarantine takes 3 lines.
        let (mut spool, _) = Spool::open(config(&dir, bound, 1 << 20)).unwrap();
        let batch = spool.read_batch(100, u64::MAX).unwrap();
        assert_eq!(batch.events, written[..1]);
        assert_eq!((batch.corrupt, batch.corrupt_not_kept), (10, 7));
        spool.ack(&batch).unwrap();
        let kept = fs::read_to_string(dir.0.join(QUARANTINE)).unwrap();
        assert_eq!(
            kept,
            (0..3).map(garbage).collect::<String>(),
            "the first ones"
        );
        assert!(kept.len() as u64 <= bound);
        assert!(spool.is_empty());
    }

    #[test]
    fn a_spool_is_used_by_one_process_at_a_time() {
        let dir = TempDir::new();
        let (first, _) = Spool::open(config(&dir, u64::MAX, 1 << 20)).unwrap();
        match Spool::open(config(&dir, u64::MAX, 1 << 20)) {
            Err(OpenError::Locked { .. }) => {}
            other => panic!("expected a lock error, got {other:?}"),
        }
        drop(first);
        assert!(Spool::open(config(&dir, u64::MAX, 1 << 20)).is_ok());
    }

    #[test]
    fn segments_before_the_cursor_are_removed_at_open() {
        let dir = TempDir::new();
        let line = events(1)[0].json().len() as u64 + 1;
        let written = events(6);
        {
            let (mut spool, _) = Spool::open(config(&dir, u64::MAX, line * 2)).unwrap();
            spool.append(&written);
        }
        // A crash after the cursor moved to the third segment, before the deletions.
        let third = parse_segment_name(&segment_files(&dir)[2]).unwrap();
        write_cursor(
            &dir.0,
            Position {
                seq: third,
                offset: 0,
            },
            false,
        )
        .unwrap();
        let (mut spool, _) = Spool::open(config(&dir, u64::MAX, line * 2)).unwrap();
        assert_eq!(segment_files(&dir).len(), 1);
        assert_eq!(drain(&mut spool), written[4..]);
    }

    #[cfg(unix)]
    #[test]
    fn the_spool_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;

        let dir = TempDir::new();
        let (mut spool, _) = Spool::open(config(&dir, u64::MAX, 1 << 20)).unwrap();
        spool.append(&events(1));
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.0), 0o700);
        assert_eq!(mode(&dir.0.join(&segment_files(&dir)[0])), 0o600);
        assert_eq!(mode(&dir.0.join(CURSOR)), 0o600);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Append(usize),
        Read(usize),
        Confirm,
        Restart,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0usize..12).prop_map(Op::Append),
            (1usize..9).prop_map(Op::Read),
            Just(Op::Confirm),
            Just(Op::Restart),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]

        /// The spool behaves like a bounded queue with one batch in flight, across
        /// segment rolls and restarts.
        #[test]
        fn the_spool_is_a_bounded_queue(ops in proptest::collection::vec(op(), 1..40)) {
            let dir = TempDir::new();
            let line = events(1)[0].json().len() as u64 + 1;
            let cfg = config(&dir, line * 20, line * 3);
            let (mut spool, _) = Spool::open(cfg.clone()).unwrap();
            let mut model: VecDeque<EncodedEvent> = VecDeque::new();
            let mut inflight: Option<ReadBatch> = None;
            for op in ops {
                match op {
                    Op::Append(n) => {
                        let batch = events(n);
                        let room = 20 - model.len();
                        let appended = spool.append(&batch);
                        proptest::prop_assert!(appended.error.is_none());
                        proptest::prop_assert_eq!(appended.count, n.min(room));
                        model.extend(batch.into_iter().take(n.min(room)));
                    }
                    Op::Read(k) => {
                        if inflight.is_none() {
                            let batch = spool.read_batch(k, u64::MAX).unwrap();
                            let expected: Vec<_> = model.iter().take(k).cloned().collect();
                            proptest::prop_assert_eq!(&batch.events, &expected);
                            if batch.lines > 0 {
                                inflight = Some(batch);
                            }
                        }
                    }
                    Op::Confirm => {
                        if let Some(batch) = inflight.take() {
                            spool.ack(&batch).unwrap();
                            model.drain(..batch.events.len());
                        }
                    }
                    Op::Restart => {
                        drop(spool);
                        inflight = None;
                        spool = Spool::open(cfg.clone()).unwrap().0;
                    }
                }
                proptest::prop_assert_eq!(spool.events(), model.len() as u64);
                proptest::prop_assert_eq!(spool.bytes(), model.len() as u64 * line);
                proptest::prop_assert_eq!(spool.is_empty(), model.is_empty());
                if model.is_empty() {
                    proptest::prop_assert!(segment_files(&dir).is_empty());
                }
            }
        }
    }
}
