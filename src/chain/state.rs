//! The chain's state file: where a restarted auditor picks its stream up again.
//!
//! One fixed-length line, rewritten in place after every event (one write to the page
//! cache, no fsync: it survives the process being killed, and the check digits tell a torn
//! write after a power cut, when a new stream starts instead):
//!
//! ```text
//! oauth-audit-chain 1 <stream> <seq, 20 digits> <hash, 64 hex> <check, 16 hex>
//! ```
//!
//! The file is locked while an auditor uses it: two auditors cannot continue one stream. A
//! line that cannot be written empties the file (see [`StateFile::save`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::event::EventHash;
use crate::file_lock::{self, Mode};

const MAGIC: &str = "oauth-audit-chain 1";

/// Where the previous run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Saved {
    pub stream: String,
    pub seq: u64,
    pub hash: EventHash,
}

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("chain state file {path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("chain state file {path} is in use by another auditor")]
    Locked { path: PathBuf },
}

/// Why a save failed, and what the file says since.
#[derive(Debug)]
pub(crate) enum SaveError {
    /// The line could not be written, and the file was emptied: a restart starts a new
    /// stream.
    Emptied(io::Error),
    /// Neither could the line be written nor the file emptied: it still names an earlier
    /// event, from which a restart would continue the stream.
    Stale { write: io::Error, empty: io::Error },
}

pub(crate) struct StateFile {
    file: File,
    line: Vec<u8>,
}

impl StateFile {
    /// Opens (or creates, mode 0600) and locks the file; returns what it says, if it says
    /// anything readable. A file that is not a state line (torn, edited) gives `None` and a
    /// warning, and is emptied: the auditor starts a new stream, which it records afresh.
    pub fn open(path: &Path) -> Result<(StateFile, Option<Saved>), StateError> {
        let io_err = |error| StateError::Io {
            path: path.to_owned(),
            error,
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        crate::no_follow::no_follow(&mut options);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = crate::file_owner::open(&options, path, None).map_err(io_err)?;
        if !file_lock::try_lock(&file, Mode::Exclusive).map_err(io_err)? {
            return Err(StateError::Locked {
                path: path.to_owned(),
            });
        }
        let mut bytes = Vec::new();
        (&mut file)
            .take(4096)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        let saved = if bytes.is_empty() {
            None
        } else {
            // Bytes that are not UTF-8 (garbage, or a character cut at the 4096th byte) are
            // no state line either: an error here would refuse every start.
            let saved = std::str::from_utf8(&bytes).ok().and_then(parse);
            if saved.is_none() {
                tracing::warn!(
                    target: "oauth_audit",
                    path = %path.display(),
                    "chain state file unreadable (torn write or edited); a new stream starts"
                );
                // Each save rewrites one line in place: whatever of the old text lay past
                // it would stay, and make every later start unreadable too.
                file.set_len(0).map_err(io_err)?;
            }
            saved
        };
        Ok((
            StateFile {
                file,
                line: Vec::with_capacity(160),
            },
            saved,
        ))
    }

    /// Records the stream's last event. When the line cannot be written (a full disk), the
    /// file is emptied: the line it still holds names an earlier event, from which a
    /// restart would continue the stream with sequence numbers already used.
    pub fn save(&mut self, stream: &str, seq: u64, hash: &EventHash) -> Result<(), SaveError> {
        self.line.clear();
        self.line
            .extend_from_slice(format_line(stream, seq, hash).as_bytes());
        let written = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&self.line));
        let Err(write) = written else {
            return Ok(());
        };
        // Shrinking a file needs no room on the disk. A failed write may also have left part
        // of the new line over the old one, which the next start would refuse anyway.
        match self.file.set_len(0) {
            Ok(()) => Err(SaveError::Emptied(write)),
            Err(empty) => Err(SaveError::Stale { write, empty }),
        }
    }

    /// Makes the last record durable (at shutdown).
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

fn check(body: &str) -> String {
    hex::encode(&Sha256::digest(body.as_bytes())[..8])
}

fn format_line(stream: &str, seq: u64, hash: &EventHash) -> String {
    let body = format!(
        "{MAGIC} {stream} {seq:020} {}",
        hex::encode(hash.as_bytes())
    );
    let check = check(&body);
    format!("{body} {check}\n")
}

fn parse(text: &str) -> Option<Saved> {
    let line = text.strip_suffix('\n')?;
    if line.contains('\n') {
        return None;
    }
    let (body, digits) = line.rsplit_once(' ')?;
    if check(body) != digits {
        return None;
    }
    let rest = body.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let mut parts = rest.split(' ');
    let (Some(stream), Some(seq), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    uuid::Uuid::parse_str(stream).ok()?;
    let seq = seq.parse().ok()?;
    let hash = format!("sha256:{hash}").parse().ok()?;
    Some(Saved {
        stream: stream.to_owned(),
        seq,
        hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file's path in a directory of the test's own (removed with the guard), and a
    /// stream and a hash to save in it.
    fn state_path() -> (tempfile::TempDir, PathBuf, String, EventHash) {
        let dir = tempfile::Builder::new()
            .prefix("oauth-audit-state-")
            .tempdir()
            .unwrap();
        let path = dir.path().join("chain.state");
        let stream = uuid::Uuid::now_v7().to_string();
        (dir, path, stream, EventHash::of_bytes(b"x"))
    }

    #[test]
    fn saves_and_reads_back_and_refuses_torn_lines() {
        let (_dir, path, stream, hash) = state_path();
        {
            let (mut state, saved) = StateFile::open(&path).unwrap();
            assert_eq!(saved, None);
            assert!(matches!(
                StateFile::open(&path),
                Err(StateError::Locked { .. })
            ));
            state.save(&stream, 1, &hash).unwrap();
            state.save(&stream, 123_456, &hash).unwrap();
        }
        let (_state, saved) = StateFile::open(&path).unwrap();
        assert_eq!(
            saved,
            Some(Saved {
                stream: stream.clone(),
                seq: 123_456,
                hash
            })
        );
        drop(_state);
        // Any change to the line (a torn write, an edit) is noticed.
        let line = std::fs::read_to_string(&path).unwrap();
        for torn in [
            line.replacen("123456", "123457", 1),
            line[..line.len() / 2].to_owned(),
            format!("{line}{line}"),
        ] {
            std::fs::write(&path, torn).unwrap();
            let (_state, saved) = StateFile::open(&path).unwrap();
            assert_eq!(saved, None);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn an_unreadable_file_longer_than_a_line_is_replaced_whole() {
        let (_dir, path, stream, hash) = state_path();
        let line = format_line(&stream, 7, &hash);
        for unreadable in [format!("{line}{line}"), "x".repeat(5000)] {
            std::fs::write(&path, unreadable).unwrap();
            {
                let (mut state, saved) = StateFile::open(&path).unwrap();
                assert_eq!(saved, None);
                state.save(&stream, 8, &hash).unwrap();
            }
            // The new run's position is read back, not lost to what followed the old line.
            let (_state, saved) = StateFile::open(&path).unwrap();
            assert_eq!(saved.map(|saved| saved.seq), Some(8));
        }
    }

    #[test]
    fn a_save_that_fails_says_whether_the_file_still_names_an_earlier_event() {
        let (_dir, path, stream, hash) = state_path();
        let (mut state, _) = StateFile::open(&path).unwrap();
        state.save(&stream, 7, &hash).unwrap();
        // A handle through which the file can be neither written nor truncated.
        state.file = File::open(&path).unwrap();
        assert!(matches!(
            state.save(&stream, 8, &hash),
            Err(SaveError::Stale { .. })
        ));
        drop(state);
        let (_state, saved) = StateFile::open(&path).unwrap();
        assert_eq!(saved.map(|saved| saved.seq), Some(7));
    }

    #[test]
    fn a_file_that_is_not_utf8_starts_a_new_stream() {
        let (_dir, path, stream, hash) = state_path();
        // A torn write's garbage, and a character cut at the 4096th byte read.
        let unreadable = [
            b"\xff\xfe garbage\n".to_vec(),
            format!("{}{}", "x".repeat(4095), "\u{e9}".repeat(10)).into_bytes(),
        ];
        for unreadable in unreadable {
            std::fs::write(&path, unreadable).unwrap();
            {
                let (mut state, saved) = StateFile::open(&path).unwrap();
                assert_eq!(saved, None);
                state.save(&stream, 8, &hash).unwrap();
            }
            let (_state, saved) = StateFile::open(&path).unwrap();
            assert_eq!(saved.map(|saved| saved.seq), Some(8));
        }
    }
}
