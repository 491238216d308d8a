//! Checkpoints as C2SP signed notes (`c2sp.org/signed-note`, body in the shape of
//! `c2sp.org/tlog-checkpoint`):
//!
//! ```text
//! oauth-audit/<stream>          origin: which chain
//! <seq>                         how many events of the stream it covers (the last one's seq)
//! <base64 of the hash>          the hash of event <seq>: the head of the hash chain
//! <RFC 3339 time>               when it was signed (an extension line)
//!
//! — <key name> <base64(key id || Ed25519 signature of the four lines above)>
//! ```
//!
//! The third line is the head of a hash chain, where a transparency log would put a Merkle
//! root; everything else follows the specifications, so any signed-note library checks the
//! signature.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use super::key::SignatureLine;
use super::{SigningKey, VerifyingKey};
use crate::event::EventHash;

/// The body of a checkpoint: what the signature covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointNote {
    /// `oauth-audit/<stream>`.
    pub origin: String,
    /// The sequence number of the last event covered.
    pub size: u64,
    /// That event's hash.
    pub hash: EventHash,
    /// When the checkpoint was made (RFC 3339).
    pub time: String,
}

/// Why a note was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// Not a signed checkpoint at all.
    #[error("malformed checkpoint note: {0}")]
    Malformed(&'static str),
    /// Signed, but by no key the verifier was given.
    #[error("signed by an unknown key ({0})")]
    UnknownKey(String),
    /// A known key's signature does not verify: the note (or signature) was changed.
    #[error("the signature of key {0} does not verify")]
    BadSignature(String),
}

/// The signature line's dash: U+2014 and a space.
const DASH: &str = "\u{2014} ";

/// The origin line of a stream's checkpoints.
pub fn origin(stream: &str) -> String {
    format!("oauth-audit/{stream}")
}

impl CheckpointNote {
    /// The signed text: four lines, each ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.hash.as_bytes()),
            self.time
        )
    }

    /// The whole note, signed by `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let signature = key.sign(body.as_bytes());
        format!("{body}\n{DASH}{} {signature}\n", key.name())
    }

    /// Parses a note and checks it against `keys`: accepted when a signature line of one of
    /// them verifies. Lines of keys not given (cosigners) are ignored.
    pub fn open(note: &str, keys: &[VerifyingKey]) -> Result<CheckpointNote, NoteError> {
        let split = note
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (body, signatures) = (&note[..=split], &note[split + 2..]);
        let parsed = CheckpointNote::parse_body(body)?;
        if signatures.is_empty() || !signatures.ends_with('\n') {
            return Err(NoteError::Malformed("no signature line"));
        }
        // The signers shown when none is known: a few, as a note may hold any number.
        const SHOWN: usize = 4;
        let mut seen = Vec::new();
        let mut unseen = 0usize;
        for line in signatures.lines() {
            let rest = line.strip_prefix(DASH).ok_or(NoteError::Malformed(
                "a signature line must start with '— '",
            ))?;
            let signature = SignatureLine::parse(rest).map_err(NoteError::Malformed)?;
            match signature.key(keys) {
                Some(key) if signature.verifies(key, body.as_bytes()) => return Ok(parsed),
                Some(key) => return Err(NoteError::BadSignature(key.encode())),
                None if seen.len() < SHOWN => seen.push(signature.signer()),
                None => unseen += 1,
            }
        }
        if unseen > 0 {
            seen.push(format!("{unseen} more"));
        }
        Err(NoteError::UnknownKey(seen.join(", ")))
    }

    /// Reads the four body lines, without checking any signature.
    pub fn parse_body(body: &str) -> Result<CheckpointNote, NoteError> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(NoteError::Malformed("the body must end in a newline"))?
            .split('\n');
        let (Some(origin), Some(size), Some(hash), Some(time), None) = (
            lines.next(),
            lines.next(),
            lines.next(),
            lines.next(),
            lines.next(),
        ) else {
            return Err(NoteError::Malformed(
                "expected four lines: origin, size, hash, time",
            ));
        };
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(NoteError::Malformed("bad origin line"));
        }
        if size.len() > 1 && size.starts_with('0') {
            return Err(NoteError::Malformed("the size has a leading zero"));
        }
        let size = size
            .parse::<u64>()
            .map_err(|_| NoteError::Malformed("the size is not a number"))?;
        let hash: [u8; 32] = B64
            .decode(hash)
            .ok()
            .and_then(|raw| raw.try_into().ok())
            .ok_or(NoteError::Malformed("the hash is not 32 bytes of base64"))?;
        if chrono::DateTime::parse_from_rfc3339(time).is_err() {
            return Err(NoteError::Malformed("the time is not RFC 3339"));
        }
        Ok(CheckpointNote {
            origin: origin.to_owned(),
            size,
            hash: EventHash(hash),
            time: time.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note() -> CheckpointNote {
        CheckpointNote {
            origin: origin("0190f5a0-0000-7000-8000-000000000000"),
            size: 1000,
            hash: EventHash::of_bytes(b"event 1000"),
            time: "2026-12-01T12:00:00.000Z".into(),
        }
    }

    #[test]
    fn signed_notes_open_with_the_right_key_only() {
        let key = SigningKey::generate("orders-api").unwrap();
        let other = SigningKey::generate("orders-api").unwrap();
        let signed = note().sign(&key);
        assert!(signed.contains("\n\n\u{2014} orders-api "));
        assert_eq!(
            CheckpointNote::open(&signed, &[key.verifying_key()]),
            Ok(note())
        );
        // Any other key: unknown (same name, different id).
        assert!(matches!(
            CheckpointNote::open(&signed, &[other.verifying_key()]),
            Err(NoteError::UnknownKey(_))
        ));
        // Changed body: bad signature.
        let edited = signed.replacen("\n1000\n", "\n1001\n", 1);
        assert!(matches!(
            CheckpointNote::open(&edited, &[key.verifying_key()]),
            Err(NoteError::BadSignature(_))
        ));
        // A cosignature by an unknown key next to a valid one is fine.
        let cosigned = format!("{signed}{DASH}witness {}\n", B64.encode([0u8; 68]));
        assert!(CheckpointNote::open(&cosigned, &[key.verifying_key()]).is_ok());
        for bad in [
            "",
            "x\n\n",
            &signed.replace('\u{2014}', "-"),
            &signed[..signed.len() - 1],
        ] {
            assert!(
                CheckpointNote::open(bad, &[key.verifying_key()]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn bodies_are_strict() {
        assert_eq!(CheckpointNote::parse_body(&note().body()), Ok(note()));
        for body in [
            "o\n01\nAAAA\n2026-12-01T12:00:00Z\n",
            "o\n1\nAAAA\n2026-12-01T12:00:00Z\n",
            "o\n1\n\n2026-12-01T12:00:00Z\n",
            "o\nx\nAAAA\n2026-12-01T12:00:00Z\n",
            "o\n1\nAAAA\n",
        ] {
            assert!(CheckpointNote::parse_body(body).is_err(), "{body:?}");
        }
    }
}
