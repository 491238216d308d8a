//! Ed25519 keys for checkpoints, in the text forms of the C2SP signed-note specification
//! (the same as Go's `golang.org/x/mod/sumdb/note`):
//!
//! - verifier key: `<name>+<key id, 8 hex digits>+<base64(0x01 || 32-byte public key)>`
//! - signer key: `PRIVATE+KEY+<name>+<key id>+<base64(0x01 || 32-byte seed)>`
//!
//! The key id is the first four bytes of SHA-256(`name` || `\n` || `0x01` || public key).

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};

/// The signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// A key that cannot be read, with the reason; never quotes the key's secret part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not a key of the expected form.
    #[error("not a {expected} key: {reason}")]
    Malformed {
        /// `signer` or `verifier`.
        expected: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key name that signed notes cannot carry.
    #[error("key name {0:?} must be non-empty, without spaces, '+' or control characters")]
    BadName(String),
    /// The key file could not be read.
    #[error("cannot read key file {path}: {error}")]
    File {
        /// The file.
        path: String,
        /// The I/O error.
        error: String,
    },
    /// The operating system gave no randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(String),
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_control())
    {
        return Err(KeyError::BadName(name.to_owned()));
    }
    Ok(())
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519]);
    hasher.update(public);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Splits `<name>+<hex id>+<base64>` and checks the id against the key.
fn parse_parts(
    text: &str,
    expected: &'static str,
) -> Result<(String, [u8; 4], [u8; 32]), KeyError> {
    let malformed = |reason| KeyError::Malformed { expected, reason };
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("expected <name>+<key id>+<key>"));
    };
    check_name(name)?;
    if id.len() != 8 {
        return Err(malformed("the key id is not 8 hex digits"));
    }
    let mut id_bytes = [0u8; 4];
    hex::decode_to_slice(id, &mut id_bytes).map_err(|_| malformed("the key id is not hex"))?;
    let raw = B64
        .decode(key)
        .map_err(|_| malformed("the key is not base64"))?;
    let Some((&ED25519, material)) = raw.split_first() else {
        return Err(malformed("only Ed25519 keys (type 0x01) are supported"));
    };
    let material: [u8; 32] = material
        .try_into()
        .map_err(|_| malformed("an Ed25519 key is 32 bytes"))?;
    Ok((name.to_owned(), id_bytes, material))
}

/// The private key that signs checkpoints. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    id: [u8; 4],
    key: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// A new random key named `name` (e.g. `orders-api-2026`).
    pub fn generate(name: &str) -> Result<SigningKey, KeyError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(SigningKey::from_seed(name, seed))
    }

    fn from_seed(name: &str, seed: [u8; 32]) -> SigningKey {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        SigningKey {
            name: name.to_owned(),
            id,
            key,
        }
    }

    /// Reads `PRIVATE+KEY+<name>+<id>+<base64>`; the id must match the key.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let rest = text
            .trim()
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::Malformed {
                expected: "signer",
                reason: "expected PRIVATE+KEY+<name>+<key id>+<key>",
            })?;
        let (name, id, seed) = parse_parts(rest, "signer")?;
        let key = SigningKey::from_seed(&name, seed);
        if key.id != id {
            return Err(KeyError::Malformed {
                expected: "signer",
                reason: "the key id does not match the key",
            });
        }
        Ok(key)
    }

    /// Reads a key file written by [`SigningKey::encode`] (`oauth-audit keygen`).
    pub fn from_file(path: &Path) -> Result<SigningKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::File {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        SigningKey::parse(&text)
    }

    /// The signer key's text form, for a private key file.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{PRIVATE_PREFIX}{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(raw)
        )
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            name: self.name.clone(),
            id: self.id,
            key: self.key.verifying_key(),
        }
    }

    /// The signature line's base64 payload: key id then the signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        let signature = self.key.sign(message);
        let mut raw = Vec::with_capacity(68);
        raw.extend_from_slice(&self.id);
        raw.extend_from_slice(&signature.to_bytes());
        B64.encode(raw)
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("id", &hex::encode(self.id))
            .finish_non_exhaustive()
    }
}

/// A public key that checks checkpoint signatures.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    name: String,
    id: [u8; 4],
    key: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    /// Reads `<name>+<id>+<base64>`; the id must match the key.
    pub fn parse(text: &str) -> Result<VerifyingKey, KeyError> {
        let (name, id, public) = parse_parts(text, "verifier")?;
        let malformed = |reason| KeyError::Malformed {
            expected: "verifier",
            reason,
        };
        let key = ed25519_dalek::VerifyingKey::from_bytes(&public)
            .map_err(|_| malformed("not an Ed25519 public key"))?;
        if key_id(&name, &public) != id {
            return Err(malformed("the key id does not match the key"));
        }
        Ok(VerifyingKey { name, id, key })
    }

    /// Reads a public key file written by `oauth-audit keygen`.
    pub fn from_file(path: &Path) -> Result<VerifyingKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::File {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        VerifyingKey::parse(&text)
    }

    /// The verifier key's text form.
    pub fn encode(&self) -> String {
        let mut raw = Vec::with_capacity(33);
        raw.push(ED25519);
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(raw))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, as 8 hex digits.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }

    /// Whether `signature` (64 bytes) is this key's signature of `message`.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.key.verify(message, &signature).is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// A signature as signed notes and drop reports carry it:
/// `<key name> <base64(4-byte key id || Ed25519 signature)>`.
pub(crate) struct SignatureLine<'a> {
    name: &'a str,
    raw: Vec<u8>,
}

impl<'a> SignatureLine<'a> {
    /// Reads `<key name> <base64>`; the error says what is wrong.
    pub(crate) fn parse(text: &'a str) -> Result<SignatureLine<'a>, &'static str> {
        let (name, payload) = text
            .split_once(' ')
            .ok_or("a signature is '<key name> <base64>'")?;
        let raw = B64
            .decode(payload)
            .map_err(|_| "a signature is not base64")?;
        if raw.len() < 5 {
            return Err("a signature is too short");
        }
        Ok(SignatureLine { name, raw })
    }

    /// The key among `keys` with this name and key id.
    pub(crate) fn key<'k>(&self, keys: &'k [VerifyingKey]) -> Option<&'k VerifyingKey> {
        keys.iter()
            .find(|k| k.name == self.name && k.id[..] == self.raw[..4])
    }

    /// Whether `key` signed `message` with this signature.
    pub(crate) fn verifies(&self, key: &VerifyingKey, message: &[u8]) -> bool {
        key.verifies(message, &self.raw[4..])
    }

    /// `<name>+<key id>`, to name a key nobody gave: the name is the input's, so it is cut
    /// to 64 characters and its control characters are escaped.
    pub(crate) fn signer(&self) -> String {
        format!(
            "{}+{}",
            super::shown(self.name, 64),
            hex::encode(&self.raw[..4])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_ids_are_checked() {
        let key = SigningKey::generate("orders-api").unwrap();
        let text = key.encode();
        assert!(text.starts_with("PRIVATE+KEY+orders-api+"));
        let again = SigningKey::parse(&format!("{text}\n")).unwrap();
        assert_eq!(again.verifying_key(), key.verifying_key());
        let public = key.verifying_key().encode();
        assert_eq!(VerifyingKey::parse(&public).unwrap(), key.verifying_key());
        assert!(!format!("{key:?}").contains(&text[30..]));

        // Another name or id does not match the key.
        let renamed = public.replacen("orders-api", "orders-apj", 1);
        assert!(VerifyingKey::parse(&renamed).is_err());
        let id = key.verifying_key().id();
        let wrong_id = public.replacen(&id, "00000000", 1);
        assert!(VerifyingKey::parse(&wrong_id).is_err());
        assert!(
            VerifyingKey::parse(&text).is_err(),
            "a private key is not a verifier key"
        );
        assert!(SigningKey::parse(&public).is_err());
        for name in ["", "a b", "a+b", "a\nb"] {
            assert!(SigningKey::generate(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn the_key_id_follows_the_signed_note_rule() {
        // Key id of a fixed key, computed independently: sha256("name\n\x01" || pub)[..4].
        let key = SigningKey::from_seed("example", [7u8; 32]);
        let public = key.key.verifying_key();
        let mut input = b"example\n\x01".to_vec();
        input.extend_from_slice(public.as_bytes());
        let digest = Sha256::digest(&input);
        assert_eq!(key.verifying_key().id(), hex::encode(&digest[..4]));
    }
}
