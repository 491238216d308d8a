use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::{append_encoded, append_json_lines, AuditWriter, WriteError, WRITE_CHUNK};
use crate::event::AuditEvent;
use crate::format::EventFormat;
use crate::sink::EncodedEvent;

/// When a [`JsonLines`] writer pushes its buffer to the operating system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushPolicy {
    /// Flush once the writer's queue has stayed empty for a moment (see
    /// [`AuditorBuilder::flush_linger`](super::AuditorBuilder::flush_linger), 10 ms by
    /// default), and under traffic that never pauses that long at least every 200 ms: under
    /// load lines go out in writes of 256 KiB, when traffic pauses they go out at once. A
    /// crash loses at most the events queued, and those written in the last 200 ms (or the
    /// last linger, when it is longer).
    #[default]
    WhenIdle,
    /// Flush after every batch.
    EveryBatch,
    /// Flush and `fsync` after every batch: survives power loss, costs a disk sync per batch.
    Fsync,
}

enum Target {
    Stdout(tokio::io::Stdout),
    File(FileTarget),
}

/// A file written on tokio's blocking pool. Each write is handed the writer's buffer itself,
/// and the writer goes on filling a second one meanwhile: tokio's `File` would copy every
/// byte into a buffer of its own first. A write's error is reported by the next write or
/// flush, as with tokio's `File`; what that write did not get into the file is kept in
/// `unwritten` for the writer to take back.
struct FileTarget {
    file: Arc<std::fs::File>,
    path: PathBuf,
    /// The write in flight, which hands its buffer back when done: emptied, or on error
    /// what is not in the file.
    in_flight: Option<JoinHandle<(Vec<u8>, std::io::Result<()>)>>,
    /// The buffer of the last write, emptied, for the next one.
    spare: Vec<u8>,
    /// What a failed write left out of the file, to be written before anything else.
    unwritten: Option<Vec<u8>>,
}

impl FileTarget {
    /// Waits for the write in flight, if any, and keeps its buffer for the next one (or, when
    /// it failed, what it did not write, in `unwritten`). Cancel-safe: the write stays in
    /// flight until awaited to the end.
    async fn settle(&mut self) -> std::io::Result<()> {
        let Some(in_flight) = self.in_flight.as_mut() else {
            return Ok(());
        };
        let finished = in_flight.await;
        self.in_flight = None;
        let (buf, written) = finished.map_err(std::io::Error::other)?;
        if written.is_err() {
            self.unwritten = Some(buf);
        } else {
            self.spare = buf;
        }
        written
    }

    /// Starts writing `buf` (all of it, or an error), once the write before it is done;
    /// `buf` is replaced by an empty buffer.
    async fn write(&mut self, buf: &mut Vec<u8>) -> std::io::Result<()> {
        self.settle().await?;
        let full = std::mem::replace(buf, std::mem::take(&mut self.spare));
        let file = Arc::clone(&self.file);
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            write_whole(&file, full)
        }));
        Ok(())
    }

    async fn sync_data(&mut self) -> std::io::Result<()> {
        self.settle().await?;
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(std::io::Error::other)?
    }
}

/// Writes all of `buf` to `file` and hands it back emptied; on error hands back what is not
/// in the file. A regular file a write left a part of `buf` in (a disk that filled up
/// mid-write) is cut back to where the write began, so no torn line stays behind and the
/// whole buffer is written again later; what cannot be cut back (a pipe, a file someone else
/// changed meanwhile) keeps the part written, and only the rest is written later.
fn write_whole(file: &std::fs::File, mut buf: Vec<u8>) -> (Vec<u8>, std::io::Result<()>) {
    use std::io::Write;
    let before = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let mut written = 0;
    let result = loop {
        if written == buf.len() {
            break Ok(());
        }
        match (&*file).write(&buf[written..]) {
            Ok(0) => break Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err),
        }
    };
    match result {
        Ok(()) => buf.clear(),
        Err(_) if written == 0 => {}
        Err(_) => {
            // Only when the file grew by no more than this write: nobody else appended to it
            // or truncated it (logrotate's `copytruncate`) meanwhile.
            let grown = |len: u64| {
                file.metadata()
                    .is_ok_and(|m| (len..=len + written as u64).contains(&m.len()))
            };
            let cut = before.is_some_and(|len| grown(len) && file.set_len(len).is_ok());
            if !cut {
                buf.drain(..written);
            }
        }
    }
    (buf, result)
}

/// How often a [`JsonLines`] writer holding lines a failed write handed back tries to write
/// them again when no events come: otherwise they would wait in memory for the next event,
/// however long traffic pauses, and a crash meanwhile would lose them.
const HELD_BACK_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes one JSON object per line (JSON Lines) to standard output or to a file.
///
/// Files are opened in append mode and created when missing. Each line is a schema v1 event,
/// or an ECS or OCSF document with [`format`](JsonLines::format).
///
/// ```no_run
/// use oauth_audit::format::EventFormat;
/// use oauth_audit::writer::{FlushPolicy, JsonLines};
///
/// # async fn f() -> std::io::Result<()> {
/// let stdout = JsonLines::stdout();
/// let file = JsonLines::file("audit.jsonl").await?.flush_policy(FlushPolicy::Fsync);
/// let for_elastic = JsonLines::file("audit-ecs.jsonl").await?.format(EventFormat::Ecs);
/// # Ok(()) }
/// ```
pub struct JsonLines {
    target: Target,
    policy: FlushPolicy,
    format: EventFormat,
    buf: Vec<u8>,
    /// Whether `buf` starts with lines a failed write handed back: until they are written,
    /// each batch is written at once, so that a file that keeps failing refuses batches
    /// rather than the buffer growing.
    held_back: bool,
    name: String,
}

impl std::fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonLines")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("format", &self.format)
            .finish()
    }
}

impl JsonLines {
    /// JSON lines on standard output.
    pub fn stdout() -> Self {
        JsonLines {
            target: Target::Stdout(tokio::io::stdout()),
            policy: FlushPolicy::default(),
            format: EventFormat::default(),
            buf: Vec::new(),
            held_back: false,
            name: "stdout".to_owned(),
        }
    }

    /// JSON lines appended to `path`, created when missing, readable by its owner only
    /// (mode `0o600` on Unix).
    pub async fn file(path: impl AsRef<Path>) -> std::io::Result<Self> {
        Self::file_with_mode(path, super::DEFAULT_FILE_MODE).await
    }

    /// JSON lines appended to `path`, created when missing with the permissions `mode` on
    /// Unix (the process umask still applies; an existing file keeps its own). `mode` must
    /// let the owner read and write, and be at most `0o777`.
    ///
    /// An existing file must be a regular file (or a character device such as `/dev/null`)
    /// owned by the process's effective user, with no other name (hard link), which neither
    /// its group nor others may write beyond `mode`: someone else's file, pre-created where
    /// the trail goes, or a second name of another file, is refused with an error that names
    /// it and its owner or its link count.
    pub async fn file_with_mode(path: impl AsRef<Path>, mode: u32) -> std::io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        super::check_file_mode(mode)
            .map_err(|problem| std::io::Error::new(std::io::ErrorKind::InvalidInput, problem))
            .map_err(super::naming(&path))?;
        let mut options = super::file_options(mode);
        options.create(true).append(true);
        let opening = path.clone();
        let file = tokio::task::spawn_blocking(move || {
            crate::file_owner::open(&options, &opening, Some(mode))
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|opened| opened)
        .map_err(super::naming(&path))?;
        Ok(JsonLines {
            name: format!("file:{}", path.display()),
            target: Target::File(FileTarget {
                file: Arc::new(file),
                path,
                in_flight: None,
                spare: Vec::new(),
                unwritten: None,
            }),
            policy: FlushPolicy::default(),
            format: EventFormat::default(),
            buf: Vec::new(),
            held_back: false,
        })
    }

    /// Sets when the buffer is flushed (default [`FlushPolicy::WhenIdle`]).
    pub fn flush_policy(mut self, policy: FlushPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how each event is written (default [`EventFormat::OAuthAudit`], schema v1).
    ///
    /// In another format the writer has no disk spool ([`AuditWriter::accepts_json`]): its
    /// retries, if it has any, keep the events in memory.
    pub fn format(mut self, format: EventFormat) -> Self {
        self.format = format;
        self
    }

    /// The file being written, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.target {
            Target::File(file) => Some(&file.path),
            Target::Stdout(_) => None,
        }
    }

    /// Hands the accumulated lines to the operating system (one write for many events).
    async fn write_out(&mut self) -> Result<(), WriteError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        match &mut self.target {
            Target::File(file) => file.write(&mut self.buf).await?,
            Target::Stdout(out) => {
                let buf = std::mem::take(&mut self.buf);
                let written = out.write_all(&buf).await;
                self.buf = buf;
                written?;
                self.buf.clear();
            }
        }
        Ok(())
    }

    /// Writes out what the flush policy asks for, now that `buf` grew from `start`. On error
    /// the new lines are taken back out: the batch failed, and a retry must not write it twice.
    /// Lines of earlier batches a failed write did not get into the file are kept, ahead of
    /// the rest, for the next write.
    ///
    /// A failed write that got part of the batch into a file it could not cut back (a pipe
    /// whose reader went away, a file someone else wrote to meanwhile) keeps the rest of the
    /// batch too, and the batch counts as written: a retry would write its first part twice,
    /// after a torn line.
    async fn appended(&mut self, start: usize) -> Result<(), WriteError> {
        let batch = self.buf.len() - start;
        let result = if self.policy != FlushPolicy::WhenIdle || self.held_back {
            self.flush_now().await
        } else if self.buf.len() >= WRITE_CHUNK {
            self.write_out().await
        } else {
            Ok(())
        };
        if result.is_err() {
            if self.take_back() && self.buf.len() < batch {
                return Ok(());
            }
            // The batch is at the end, whatever a failed write handed back before it.
            self.buf.truncate(self.buf.len().saturating_sub(batch));
        }
        result
    }

    async fn flush_now(&mut self) -> Result<(), WriteError> {
        self.write_out().await?;
        match &mut self.target {
            Target::File(file) if self.policy == FlushPolicy::Fsync => file.sync_data().await?,
            Target::File(file) => file.settle().await?,
            Target::Stdout(out) => out.flush().await?,
        }
        self.held_back = false;
        Ok(())
    }

    /// Puts what a failed file write did not write back in front of the buffer: those lines
    /// were accepted, and go out with the next write. Whether there was any.
    fn take_back(&mut self) -> bool {
        if let Target::File(file) = &mut self.target {
            if let Some(mut unwritten) = file.unwritten.take() {
                unwritten.extend_from_slice(&self.buf);
                self.buf = unwritten;
                self.held_back = true;
                return true;
            }
        }
        false
    }
}

impl AuditWriter for JsonLines {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&mut self, batch: &[Arc<AuditEvent>]) -> Result<(), WriteError> {
        let start = self.buf.len();
        append_json_lines(&mut self.buf, batch, self.format)?;
        self.appended(start).await
    }

    async fn write_encoded(&mut self, batch: &[EncodedEvent]) -> Result<(), WriteError> {
        let start = self.buf.len();
        append_encoded(&mut self.buf, batch, self.format)?;
        self.appended(start).await
    }

    /// Only in schema v1: another format is made from the event itself.
    fn accepts_json(&self) -> bool {
        self.format == EventFormat::OAuthAudit
    }

    async fn flush(&mut self) -> Result<(), WriteError> {
        let result = self.flush_now().await;
        if result.is_err() {
            self.take_back();
        }
        result
    }

    /// While lines a failed write handed back wait in memory, the flush that writes them is
    /// tried again every second, whether events come or not.
    fn wake_after(&self) -> Option<std::time::Duration> {
        self.held_back.then_some(HELD_BACK_RETRY)
    }

    /// The lines in the buffer and in what a failed write handed back (a line a pipe took
    /// part of counts: its end is missing). A write still in flight is not counted: the
    /// last flush waited for it, and what it could not write was handed back.
    fn unwritten_events(&self) -> usize {
        let lines = |bytes: &[u8]| bytes.iter().filter(|&&b| b == b'\n').count();
        let handed_back = match &self.target {
            Target::File(file) => file.unwritten.as_deref().map_or(0, lines),
            Target::Stdout(_) => 0,
        };
        lines(&self.buf) + handed_back
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Outcome, ServiceInfo, Timestamp};

    fn events(n: usize) -> Vec<Arc<AuditEvent>> {
        let service = Arc::new(ServiceInfo {
            name: "api".into(),
            instance: None,
        });
        (0..n)
            .map(|_| {
                Arc::new(AuditEvent::new(
                    service.clone(),
                    Timestamp::now(),
                    EventKind::TokenRevoked,
                    Outcome::Success,
                ))
            })
            .collect()
    }

    fn ids(events: &[Arc<AuditEvent>]) -> Vec<String> {
        events.iter().map(|e| e.id.to_string()).collect()
    }

    #[tokio::test]
    async fn lines_a_failed_write_left_out_are_written_once_the_file_works() {
        let path = std::env::temp_dir().join(format!("oauth-audit-jsonl-{}", uuid::Uuid::now_v7()));
        let mut writer = JsonLines::file(&path).await.unwrap();
        let Target::File(target) = &mut writer.target else {
            unreachable!()
        };
        // Writes through a read-only descriptor fail, like writes to a full disk.
        let writable = std::mem::replace(
            &mut target.file,
            Arc::new(std::fs::File::open(&path).unwrap()),
        );
        // More than a chunk: its write goes out in the background, and fails there.
        let first = events(WRITE_CHUNK / 200);
        writer.write(&first).await.unwrap();
        assert!(writer.flush().await.is_err());
        // While the file still fails, a batch is refused rather than the buffer growing.
        let refused = events(WRITE_CHUNK / 200);
        assert!(writer.write(&refused).await.is_err());
        let Target::File(target) = &mut writer.target else {
            unreachable!()
        };
        target.file = writable;
        let second = events(3);
        writer.write(&second).await.unwrap();
        writer.flush().await.unwrap();
        let written: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["id"].to_string())
            .map(|id| id.trim_matches('"').to_owned())
            .collect();
        let expected: Vec<String> = [ids(&first), ids(&second)].concat();
        assert_eq!(written.len(), expected.len());
        assert_eq!(written, expected);
        std::fs::remove_file(&path).unwrap();
    }

    #[tokio::test]
    async fn lines_a_failed_flush_held_back_are_written_without_new_events() {
        let path = std::env::temp_dir().join(format!("oauth-audit-jsonl-{}", uuid::Uuid::now_v7()));
        let mut writer = JsonLines::file(&path).await.unwrap();
        assert_eq!(writer.wake_after(), None);
        let Target::File(target) = &mut writer.target else {
            unreachable!()
        };
        // Writes through a read-only descriptor fail, like writes to a full disk.
        let writable = std::mem::replace(
            &mut target.file,
            Arc::new(std::fs::File::open(&path).unwrap()),
        );
        let held = events(3);
        writer.write(&held).await.unwrap();
        assert!(writer.flush().await.is_err());
        // No event comes: the writer's task is woken to flush again all the same.
        assert_eq!(writer.wake_after(), Some(HELD_BACK_RETRY));
        let Target::File(target) = &mut writer.target else {
            unreachable!()
        };
        target.file = writable;
        writer.flush().await.unwrap();
        assert_eq!(writer.wake_after(), None);
        let written = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(written.lines().count(), held.len());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_batch_partly_written_to_a_pipe_is_not_written_twice() {
        use std::io::Read;
        let temp =
            || std::env::temp_dir().join(format!("oauth-audit-jsonl-{}", uuid::Uuid::now_v7()));
        let batch = events(2000);
        // The batch's lines, as written to a file that works.
        let whole = temp();
        let mut plain = JsonLines::file(&whole).await.unwrap();
        plain.write(&batch).await.unwrap();
        plain.flush().await.unwrap();
        let whole_text = std::fs::read(&whole).unwrap();
        std::fs::remove_file(&whole).unwrap();

        let path = temp();
        let mut writer = JsonLines::file(&path)
            .await
            .unwrap()
            .flush_policy(FlushPolicy::EveryBatch);
        let (mut reader, pipe) = std::io::pipe().unwrap();
        let Target::File(target) = &mut writer.target else {
            unreachable!()
        };
        let file = std::mem::replace(
            &mut target.file,
            Arc::new(std::fs::File::from(std::os::fd::OwnedFd::from(pipe))),
        );
        // The reader takes the start of the batch and goes away while the write, far larger
        // than the pipe holds, is still going: it ends cut short, and the next one fails.
        let read = std::thread::spawn(move || {
            let mut start = vec![0; 8 * 1024];
            reader.read_exact(&mut start).unwrap();
        });
        let first = writer.write(&batch).await;
        read.join().unwrap();
        let Target::File(target) = &mut writer.target else {
            unreachable!()
        };
        target.file = file;
        if first.is_err() {
            // As the delivery does with a failed batch.
            writer.write(&batch).await.unwrap();
        }
        writer.flush().await.unwrap();
        let text = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        // What the pipe did not take, once: not the batch again.
        assert!(
            text.len() < whole_text.len() - 8 * 1024,
            "{} of {} bytes written again",
            text.len(),
            whole_text.len()
        );
        assert!(whole_text.ends_with(&text));
    }
}
