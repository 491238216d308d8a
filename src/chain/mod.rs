//! Tamper evidence: every event chained to the one before it, signed checkpoints over the
//! chain, and the checks `oauth-audit verify` runs (`docs/integrity.md`).
//!
//! With [`Chaining`] on, the last stage of the pipeline, before fan-out, gives each event a
//! `chain` object: its stream (one auditor's sequence), its number in the stream and the hash
//! of the stream's previous event, where the hash of an event is SHA-256 over its RFC 8785
//! canonical JSON ([`EventHash`](crate::event::EventHash)). Every sink receives the same
//! chain, so a file and a PostgreSQL table verify alike. With a [`SigningKey`], every
//! `checkpoint_every` events and every `checkpoint_interval` (and at shutdown) an
//! `AuditCheckpoint` event seals the chain with an Ed25519 signature in the C2SP signed-note
//! format.
//!
//! ```
//! use oauth_audit::chain::{Chaining, SigningKey};
//! use oauth_audit::writer::{Auditor, MemoryWriter};
//! # use oauth_audit::event::{AuditEvent, EventKind, Outcome, Timestamp};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = SigningKey::generate("orders-api")?; // or SigningKey::from_file(path)
//! let memory = MemoryWriter::new();
//! let auditor = Auditor::builder()
//!     .chain(Chaining::new().signing_key(key.clone()).checkpoint_every(1000))
//!     .writer(memory.clone())
//!     .build()?;
//! # let event = AuditEvent::new(auditor.service().clone(), Timestamp::now(),
//! #     EventKind::ResourceAccessed, Outcome::Success);
//! auditor.emit(event);
//! auditor.shutdown().await; // seals the chain with a last checkpoint
//!
//! let events = memory.events();
//! assert_eq!(events[0].chain.as_ref().unwrap().seq, 1);
//! assert_eq!(events[1].kind, EventKind::AuditCheckpoint);
//! # Ok(()) }
//! ```

mod announce;
mod chainer;
mod key;
mod note;
#[cfg(feature = "http")]
mod post;
mod state;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

pub use announce::{check_announcement, sign_announcement};
pub(crate) use chainer::Chainer;
pub use key::{KeyError, SigningKey, VerifyingKey};
pub use note::{origin, CheckpointNote, NoteError};
#[cfg(feature = "http")]
pub(crate) use post::Posted;

/// A text read from a trail (a key name, a drop report's reason) as a report shows it: at
/// most `longest` characters, and its control characters escaped (`\u{1b}`), which a
/// terminal would act on (moving the cursor, erasing the lines before).
pub(crate) fn shown(text: &str, longest: usize) -> String {
    let mut shown = String::with_capacity(text.len().min(longest));
    // Writing into a `String` cannot fail.
    let _ = write_shown(&mut shown, text, longest);
    shown
}

/// [`shown`], written into `out`.
pub(crate) fn write_shown(
    out: &mut impl std::fmt::Write,
    text: &str,
    longest: usize,
) -> std::fmt::Result {
    for (count, c) in text.chars().enumerate() {
        if count == longest {
            return out.write_char('…');
        }
        if c.is_control() {
            write!(out, "{}", c.escape_unicode())?;
        } else {
            out.write_char(c)?;
        }
    }
    Ok(())
}

/// How events are chained and sealed; given to
/// [`AuditorBuilder::chain`](crate::writer::AuditorBuilder::chain).
#[derive(Clone, Debug)]
pub struct Chaining {
    pub(crate) state_file: Option<PathBuf>,
    pub(crate) key: Option<SigningKey>,
    pub(crate) checkpoint_every: u64,
    pub(crate) checkpoint_interval: Duration,
    pub(crate) checkpoint_file: Option<PathBuf>,
    pub(crate) checkpoint_url: Option<String>,
}

impl Default for Chaining {
    fn default() -> Self {
        Chaining {
            state_file: None,
            key: None,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(60),
            checkpoint_file: None,
            checkpoint_url: None,
        }
    }
}

impl Chaining {
    /// Chaining with the defaults: a new stream per start, no checkpoints until a key is
    /// given, then one every 1,000 events or 60 seconds.
    pub fn new() -> Self {
        Chaining::default()
    }

    /// A file where the stream's position is kept, so that a restarted auditor continues
    /// the same stream (the first event of the new run links to the last of the old one).
    /// Without one, each start begins a new stream, which `verify` reports as such. One
    /// auditor per file: it is locked while in use.
    pub fn state_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.state_file = Some(path.into());
        self
    }

    /// The key that signs checkpoints; without one, events are chained but not sealed.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.key = Some(key);
        self
    }

    /// A checkpoint after this many events (default 1,000; at least 1).
    pub fn checkpoint_every(mut self, events: u64) -> Self {
        self.checkpoint_every = events.max(1);
        self
    }

    /// A checkpoint when this long has passed since the last one and events came in
    /// meanwhile (default 60 s; at least 100 ms).
    pub fn checkpoint_interval(mut self, interval: Duration) -> Self {
        self.checkpoint_interval = interval.max(Duration::from_millis(100));
        self
    }

    /// Also appends every checkpoint to this file (JSON lines, fsynced), so that whoever
    /// can rewrite the log storage cannot rewrite the checkpoints too.
    pub fn checkpoint_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.checkpoint_file = Some(path.into());
        self
    }

    /// Also posts every checkpoint as JSON to this URL (feature `http`), from a background
    /// task, retried a few times. The auditor's shutdown waits (up to 10 seconds) for the
    /// checkpoints still to be posted, the one made at shutdown included.
    pub fn checkpoint_url(mut self, url: impl Into<String>) -> Self {
        self.checkpoint_url = Some(url.into());
        self
    }
}
