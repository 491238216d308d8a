//! What a long secret is found by inside a longer word of a text: the [`SecretAnchor`].
//!
//! Below both of its users, which must not depend on each other this way: the scrubbing of
//! response texts (`event`), which searches for anchors, and the token inspection (`token`),
//! which makes a bearer token's anchor once and caches it with the token's verdict.

use std::hash::BuildHasher;
use std::sync::OnceLock;

/// How long a secret of a request head made of word bytes must be for [`scrub`](crate::event::scrub) to look for
/// it inside longer words too (`/sessions/SECRET`, `sid_SECRET`, `SECRET-stale`), not only as
/// a whole word or a part of one between `=` signs.
///
/// Sixteen bytes: the session identifiers of the common frameworks are longer (PHP's 26 or 32
/// characters, Java servlet containers' `JSESSIONID` 32, ASP.NET's 24, Django's 32), and
/// OWASP asks a session identifier for 64 bits of entropy at least, sixteen hexadecimal
/// digits. Shorter cookie values are mostly preferences and flags (`lang=en`, `theme=dark`,
/// `x=1`, a timestamp of 10 or 13 digits): looked for inside words, they would cut pieces
/// out of any text (`invalid_cli[redacted]t` for a cookie `c=en`), and a request could blank
/// any part of the description of its own refusal with a cookie of two letters. They are
/// still found as whole words.
pub(crate) const MIN_INNER_SECRET: usize = 16;

/// What a secret of [`MIN_INNER_SECRET`] bytes or more, made of word bytes only, is found by
/// inside a longer word, besides its [`SecretDigest`](crate::event::sanitize::SecretDigest): a hash of its first
/// [`MIN_INNER_SECRET`] bytes keyed with a random key of the process (`start`), and its
/// length. Like the digest, it is never written anywhere, and it holds nothing of the secret
/// that could be read back.
///
/// [`scrub`](crate::event::scrub) hashes every [`MIN_INNER_SECRET`] bytes of a long enough word, at every position
/// (one multiplication each); where they hash to a secret's `start`, the word's next `len`
/// bytes are that secret when their [`SecretDigest`](crate::event::sanitize::SecretDigest) is one of the request's. One pass over
/// the word finds the secrets of every length, however many lengths the request's cookies
/// have. A collision of `start`s costs a digest of `len` bytes, and one of digests redacts
/// bytes that were not a secret: neither can leave a secret in the text.
///
/// A bearer token presented to a protected route is known by its [`TokenFingerprint`](crate::token::TokenFingerprint), not
/// a digest (the fingerprint is the event's, made once per token and cached with its
/// inspection, and so is its anchor): its anchor says so, and what it finds is confirmed by
/// the fingerprint.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SecretAnchor {
    /// The keyed hash of the secret's first [`MIN_INNER_SECRET`] bytes.
    pub(crate) start: u64,
    /// The secret's length in bytes.
    pub(crate) len: usize,
    /// Confirmed by a [`TokenFingerprint`](crate::token::TokenFingerprint) rather than a [`SecretDigest`](crate::event::sanitize::SecretDigest).
    pub(crate) by_fingerprint: bool,
}

impl SecretAnchor {
    /// The anchor of `secret`; `None` when it is shorter than [`MIN_INNER_SECRET`].
    pub(crate) fn of(secret: &str) -> Option<Self> {
        let first = secret.as_bytes().first_chunk::<MIN_INNER_SECRET>()?;
        Some(SecretAnchor {
            start: anchor_hash(anchor_key(), first),
            len: secret.len(),
            by_fingerprint: false,
        })
    }

    /// The anchor of a token known by its fingerprint ([`Secrets::anchored_fingerprint`](crate::event::Secrets::anchored_fingerprint));
    /// `None` when it is shorter than [`MIN_INNER_SECRET`]. Only a token made of word bytes
    /// can be found inside a word, which a b64token is: its caller checks that.
    pub(crate) fn of_token(token: &str) -> Option<Self> {
        let anchor = SecretAnchor::of(token)?;
        Some(SecretAnchor {
            by_fingerprint: true,
            ..anchor
        })
    }
}

// An anchor says nothing useful either, and is not shown.
impl std::fmt::Debug for SecretAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretAnchor(..)")
    }
}

/// The random key of [`anchor_hash`], the same for the whole process.
pub(crate) fn anchor_key() -> [u64; 2] {
    static KEY: OnceLock<[u64; 2]> = OnceLock::new();
    *KEY.get_or_init(|| {
        let state = foldhash::quality::RandomState::default();
        [state.hash_one(0u8), state.hash_one(1u8)]
    })
}

/// The keyed hash of [`MIN_INNER_SECRET`] bytes: both halves mixed with the key and
/// multiplied, the product's halves folded together (foldhash's own step). Only a filter
/// in front of the digest, so it needs to be quick, not strong.
pub(crate) fn anchor_hash(key: [u64; 2], bytes: &[u8; MIN_INNER_SECRET]) -> u64 {
    let (low, high) = bytes.split_at(8);
    let low = u64::from_le_bytes(low.try_into().unwrap_or_default()) ^ key[0];
    let high = u64::from_le_bytes(high.try_into().unwrap_or_default()) ^ key[1];
    let product = u128::from(low) * u128::from(high);
    (product as u64) ^ ((product >> 64) as u64)
}
