//! A spool directory looked at from outside: what waits in it and whether a process holds
//! it, read without taking it over (no lock taken for longer than a check, nothing written,
//! nothing recovered). For operators: `oauth-audit spool status`. Its files are read as the
//! spool itself reads them, never through a symbolic link or a named pipe (see
//! [`crate::no_follow`]): one planted in the spool is an error that names it.

use std::fs;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use bytes::Bytes;

use super::spool::{parse_segment_name, read_cursor, segment_path, LOCK, QUARANTINE};
use crate::event::Timestamp;
use crate::file_lock::{self, Mode};
use crate::no_follow;
use crate::sink::EncodedEvent;

/// What waits in a spool directory (a sink's `spool_dir`), read without opening the spool.
///
/// Read while a process uses the spool, the figures are a snapshot that may already be
/// out of date: the process keeps appending and confirming.
///
/// ```
/// use oauth_audit::delivery::SpoolStatus;
///
/// # fn main() -> std::io::Result<()> {
/// let dir = std::env::temp_dir().join(format!("spool-status-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let status = SpoolStatus::read(&dir)?;
/// assert_eq!(status.events, 0);
/// assert!(!status.in_use);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SpoolStatus {
    /// Events (whole lines) not confirmed by the sink yet.
    pub events: u64,
    /// Bytes of those events.
    pub bytes: u64,
    /// Bytes of every file in the directory (segments, cursor, lock, quarantine).
    pub disk_bytes: u64,
    /// Segment files in the directory.
    pub segments: u64,
    /// The time of the oldest event waiting (the next one to be delivered).
    pub oldest: Option<Timestamp>,
    /// The time of the newest event waiting.
    pub newest: Option<Timestamp>,
    /// Lines set aside in `quarantine.jsonl` because they were not events.
    pub quarantined: u64,
    /// Whether a process holds the spool's lock (a running writer uses it).
    pub in_use: bool,
}

impl SpoolStatus {
    /// Reads the spool in `dir`. Fails when `dir` cannot be read, or when one of the spool's
    /// files is a symbolic link, a named pipe or a socket (the error names it); a directory
    /// that holds no spool files is an empty spool.
    pub fn read(dir: &Path) -> io::Result<SpoolStatus> {
        let mut seqs = Vec::new();
        let mut disk_bytes = 0;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let segment = entry.file_name().to_str().and_then(parse_segment_name);
            // A link or a pipe under a segment's name is kept, to be refused when read, as
            // the spool refuses it: skipped, it would hide what the spool cannot replay.
            if !metadata.is_file() && (segment.is_none() || metadata.is_dir()) {
                continue;
            }
            if metadata.is_file() {
                disk_bytes += metadata.len();
            }
            if let Some(seq) = segment {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();
        // Not the spool's owner check: whoever looks need not be the writer's user.
        let cursor = read_cursor(dir, no_follow::open_read)?;
        let mut status = SpoolStatus {
            events: 0,
            bytes: 0,
            disk_bytes,
            segments: seqs.len() as u64,
            oldest: None,
            newest: None,
            quarantined: count_lines(&dir.join(QUARANTINE))?,
            in_use: locked(dir)?,
        };
        let mut last = Vec::new();
        let mut line = Vec::new();
        for seq in seqs {
            let from = match cursor {
                // Confirmed; deleted when the spool is next opened.
                Some(cursor) if seq < cursor.seq => continue,
                Some(cursor) if seq == cursor.seq => cursor.offset,
                _ => 0,
            };
            let mut file = match no_follow::open_read(&segment_path(dir, seq)) {
                Ok(file) => file,
                // Confirmed and removed by the process using the spool meanwhile.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            file.seek(SeekFrom::Start(from))?;
            let mut reader = BufReader::with_capacity(64 * 1024, file);
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    // The end, or a line still being written (or torn by a crash).
                    break;
                }
                status.events += 1;
                status.bytes += n as u64;
                let json = &line[..n - 1];
                if status.oldest.is_none() {
                    status.oldest = event_time(json);
                }
                std::mem::swap(&mut last, &mut line);
            }
        }
        if status.events > 0 {
            status.newest = event_time(last.strip_suffix(b"\n").unwrap_or(&last));
        }
        Ok(status)
    }
}

/// Whether `dir` looks like a spool directory: it has the lock file a spool creates.
pub fn is_spool_dir(dir: &Path) -> bool {
    dir.join(LOCK).is_file()
}

/// The time of an event line, when it is one.
fn event_time(json: &[u8]) -> Option<Timestamp> {
    EncodedEvent::from_json(Bytes::copy_from_slice(json))
        .ok()
        .map(|event| event.time())
}

/// Whether another process holds the spool's lock. A shared lock is taken and released at
/// once: for that instant, a process starting on this spool would find it in use.
fn locked(dir: &Path) -> io::Result<bool> {
    let file = match no_follow::open_read(&dir.join(LOCK)) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    Ok(!file_lock::try_lock(&file, Mode::Shared)?)
}

/// Whole lines in a file; 0 when it does not exist.
fn count_lines(path: &Path) -> io::Result<u64> {
    let file = match no_follow::open_read(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let mut reader = BufReader::new(file);
    let mut lines = 0;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(lines);
        }
        lines += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let n = buffer.len();
        reader.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::spool::{Spool, SpoolConfig};
    use super::*;
    use crate::event::{AuditEvent, EventKind, Outcome, ServiceInfo};

    fn event(secs: i64) -> EncodedEvent {
        let event = AuditEvent::new(
            Arc::new(ServiceInfo::default()),
            Timestamp::from_unix(secs).unwrap(),
            EventKind::TokenRevoked,
            Outcome::Success,
        );
        EncodedEvent::encode(&event).unwrap()
    }

    #[test]
    fn status_counts_what_is_not_confirmed_and_sees_the_lock() {
        let dir = std::env::temp_dir().join(format!("oauth-audit-status-{}", uuid::Uuid::now_v7()));
        let line = event(0).json().len() as u64 + 1;
        let config = SpoolConfig {
            dir: dir.clone(),
            max_bytes: u64::MAX,
            segment_bytes: line * 2,
            fsync: false,
        };
        let (mut spool, _) = Spool::open(config.clone()).unwrap();
        let events: Vec<_> = (0..5).map(|i| event(1_800_000_000 + i)).collect();
        spool.append(&events);
        let batch = spool.read_batch(3, u64::MAX).unwrap();
        spool.ack(&batch).unwrap();

        let status = SpoolStatus::read(&dir).unwrap();
        assert!(status.in_use);
        assert!(is_spool_dir(&dir));
        assert_eq!((status.events, status.bytes), (2, 2 * line));
        assert_eq!(
            (status.events, status.bytes),
            (spool.events(), spool.bytes())
        );
        assert_eq!(status.oldest, Some(events[3].time()));
        assert_eq!(status.newest, Some(events[4].time()));
        assert_eq!(
            status.segments, 2,
            "the second (its second line on) and the third"
        );
        assert!(status.disk_bytes >= status.bytes);
        assert_eq!(status.quarantined, 0);

        drop(spool);
        let status = SpoolStatus::read(&dir).unwrap();
        assert!(!status.in_use, "the lock went with the process");
        assert_eq!(status.events, 2);
        // Looking did not take the spool over.
        let (spool, _) = Spool::open(config).unwrap();
        assert_eq!(spool.events(), 2);
        drop(spool);
        fs::remove_dir_all(&dir).unwrap();
    }
}
