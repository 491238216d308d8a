//! Where events go: the [`AuditWriter`] trait, the [`Auditor`] that queues events for
//! writers in the background, and the built-in writers.
//!
//! The request path only *enqueues*: [`Auditor::emit`] never blocks a thread and never
//! fails. Each writer has its own bounded queue and background task (a slow writer never
//! holds up another). What a full queue does is the writer's [`OverflowPolicy`]: by
//! default it drops the newest event, counts it, and the writer receives an
//! `AuditEventsDropped` event once it has caught up, so a gap is never silent;
//! [`OverflowPolicy::Block`] makes the response wait for room instead, up to a timeout.
//!
//! ```
//! use oauth_audit::writer::{Auditor, MemoryWriter};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let memory = MemoryWriter::new();
//! let auditor = Auditor::builder()
//!     .service_name("billing-api")
//!     .writer(memory.clone())
//!     .build()?;
//! // ... serve requests with `AuditLayer::new(auditor.clone())` ...
//! auditor.shutdown().await; // everything accepted so far is written and flushed
//! assert!(memory.events().is_empty());
//! # Ok(()) }
//! ```

mod auditor;
mod fn_writer;
mod json_lines;
mod memory;
mod rotating_file;
mod tracing_writer;

use std::sync::Arc;

pub use crate::sink::{AuditWriter, IntoSink, OverflowPolicy, SinkSpec, WriteError};
pub(crate) use auditor::Overflow;
pub use auditor::{Auditor, AuditorBuilder, AuditorStats, WriterOptions, WriterStats};
pub use fn_writer::{from_fn, FnWriter};
pub use json_lines::{FlushPolicy, JsonLines};
pub use memory::MemoryWriter;
pub use rotating_file::{RotatingFile, RotatingFileBuilder, Rotation};
pub use tracing_writer::TracingWriter;

use crate::event::AuditEvent;
use crate::format::EventFormat;
use crate::sink::EncodedEvent;

/// Lines accumulate in memory and go to the operating system in writes of about this size
/// (or sooner, at a flush, which comes at least every 200 ms under steady traffic).
///
/// Each write is a round trip to tokio's blocking pool: a thread woken, the write, the
/// writer's task woken again. At 64 KiB, about 84 events of a protected route, those round
/// trips cost about 6% of the CPU the layer adds to a request in process (a median of seven
/// alternating pairs, docs/benchmarks.md, "Fewer, larger writes"); at 256 KiB they come a
/// quarter as often. A file writer holds at most two of these buffers (one being written,
/// one filling).
pub(crate) const WRITE_CHUNK: usize = 256 * 1024;

/// Appends one line per event to `buf`, in `format`. On error `buf` is left as it was, so
/// a retried batch is never written twice.
pub(crate) fn append_json_lines(
    buf: &mut Vec<u8>,
    batch: &[Arc<AuditEvent>],
    format: EventFormat,
) -> Result<(), WriteError> {
    let start = buf.len();
    for event in batch {
        // Schema v1 is the JSON the chain made, when it made one, shared by every sink.
        if let Err(err) = format.write(buf, event) {
            buf.truncate(start);
            return Err(err.into());
        }
        buf.push(b'\n');
    }
    Ok(())
}

/// Appends each event, serialised before, and a newline to `buf`, in `format`. Schema v1
/// is the JSON as it was encoded; another format is made from the event, which must still
/// be in memory (a writer in another format has no disk spool: see
/// [`AuditWriter::accepts_json`]). On error `buf` is left as it was.
pub(crate) fn append_encoded(
    buf: &mut Vec<u8>,
    batch: &[EncodedEvent],
    format: EventFormat,
) -> Result<(), WriteError> {
    if format == EventFormat::OAuthAudit {
        for event in batch {
            buf.extend_from_slice(event.json());
            buf.push(b'\n');
        }
        return Ok(());
    }
    let start = buf.len();
    for encoded in batch {
        let written = match encoded.event() {
            Some(event) => format.write(buf, event).map_err(WriteError::from),
            None => Err(WriteError::backend(format!(
                "an event read back as JSON cannot be written as {format}"
            ))),
        };
        if let Err(err) = written {
            buf.truncate(start);
            return Err(err);
        }
        buf.push(b'\n');
    }
    Ok(())
}

/// Whether `path` names one of the system's links to the process's own open files:
/// `/dev/stdout`, `/dev/stderr`, `/dev/fd/N` or `/proc/self/fd/N`, compared as written,
/// whole. The file writers follow these links, and no other symbolic link, so a trail (or a
/// report) can go where the process's output already goes; `/dev/stdout` and `-` are read as
/// standard output itself.
///
/// ```
/// use std::path::Path;
/// use oauth_audit::writer::is_standard_stream;
///
/// assert!(is_standard_stream(Path::new("/dev/stderr")));
/// assert!(!is_standard_stream(Path::new("/var/log/dev/stderr")));
/// ```
pub fn is_standard_stream(path: &std::path::Path) -> bool {
    crate::no_follow::is_standard_stream(path)
}

/// Audit events are for auditors: files the writers create are readable by their owner only,
/// unless configured otherwise (like the delivery spool).
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// The writer must keep reading and writing what it creates; bits beyond `0o777` (setuid,
/// sticky) have no business on a log file.
fn check_file_mode(mode: u32) -> Result<(), String> {
    if mode > 0o777 {
        Err(format!(
            "{mode:#o} is not a file mode: use at most 0o777, e.g. 0o600"
        ))
    } else if mode & 0o600 != 0o600 {
        Err(format!(
            "{mode:#o} does not let the owner read and write: use e.g. 0o600 or 0o640"
        ))
    } else {
        Ok(())
    }
}

/// An I/O error that names the file it concerns (the operating system's message alone,
/// "No such file or directory", does not), of the same kind.
fn naming(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> std::io::Error + '_ {
    move |error| std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

/// Options that create a file with `mode` (Unix only; elsewhere the platform's default), and
/// never through a symbolic link (see [`crate::no_follow`]).
pub(crate) fn file_options(mode: u32) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    crate::no_follow::no_follow(&mut options);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options
}

/// Creates `dir` (and its parents) with `mode`'s bits, plus search wherever reading is
/// allowed.
fn create_dir(dir: &std::path::Path, mode: u32) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, mode | ((mode & 0o444) >> 2));
    #[cfg(not(unix))]
    let _ = mode;
    builder.create(dir)
}
