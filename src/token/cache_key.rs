//! What the verification cache is keyed by: a 128-bit pseudorandom function of a token's
//! bytes under keys drawn per inspector.
//!
//! The cache is probed on every request, so its key must be cheap (SHA-256 of a 300-byte
//! token costs about 20 times as much) and must not be the token (a cache keyed by tokens
//! would keep every recent bearer token in memory). Without the keys, nobody can make a
//! token whose cache key equals another token's except by chance, about 2^-128 per pair, so
//! a forged token can never be taken for a verified one.
//!
//! Two functions share the work, by the token's length:
//!
//! - **Shorter than [`LONG`]** (opaque tokens, small JWTs): SipHash-2-4 with a 128-bit output.
//! - **[`LONG`] bytes or more** (most signed JWTs: an RS256 token is 600 bytes or more):
//!   AES-128 of the token's GHASH. The GHASH comes from aws-lc's AES-GCM, sealing nothing with
//!   the token as its associated data, so the tag is `GHASH_H(token) ⊕ E_K1(J0)`, one
//!   constant mask for every token. That alone is a universal hash: two tokens collide only
//!   when `H` is a root of a nonzero polynomial of degree at most the token's blocks, about
//!   2^-120 for a token of a few kilobytes. The tag is then encrypted with a second,
//!   independent AES key (one block, ECB): a pseudorandom permutation of a universal hash is
//!   a pseudorandom function, so even a key that were seen by someone tells nothing about `H`
//!   or about other tokens' keys, as with SipHash. The fixed "nonce" is not a nonce reuse
//!   in the AEAD sense: nothing is encrypted, and no tag ever leaves the process unencrypted.
//!
//! Why two: SipHash costs about 0.5 ns a byte and the AES path a fixed 110 ns or so (aws-lc
//! sets up a GCM context per call; the GHASH itself is about a hundredth of a nanosecond a
//! byte). On this project's machines they cross near 190 bytes: at 624 bytes (the bench's
//! RS256 token) SipHash takes 330-350 ns and the AES path 110-120 ns; at 64 bytes, 58 ns
//! against 117 ns (`docs/benchmarks.md`). A short and a long token are keyed by different
//! functions with independent keys, so they collide by chance only, as two of the same kind.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{EncryptingKey, UnboundCipherKey, AES_128};
use siphasher::sip128::SipHasher24;

/// Tokens of this many bytes or more are keyed through AES; shorter ones through SipHash.
pub(super) const LONG: usize = 256;

/// A token's key in the verification cache: see the [module](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct CacheKey(u128);

/// The keys the cache keys are made with, random per inspector.
pub(super) struct Keyer {
    sip: (u64, u64),
    /// `None` only when the operating system's randomness could not be read (every token is
    /// then keyed through SipHash) or aws-lc refused a key.
    aes: Option<AesKeyer>,
}

struct AesKeyer {
    /// AES-128-GCM, used for its GHASH: `seal` of nothing, the token as associated data.
    ghash: LessSafeKey,
    /// AES-128 of one block, with a key of its own, over the tag.
    permute: EncryptingKey,
}

impl Keyer {
    /// New keys from the operating system's randomness.
    pub(super) fn random() -> Self {
        let mut seed = [0u8; 48];
        let aes = getrandom::fill(&mut seed)
            .ok()
            .and_then(|()| AesKeyer::new(&seed[16..32], &seed[32..]));
        let sip = match aes {
            Some(_) => {
                let sip = u128::from_le_bytes(seed[..16].try_into().unwrap_or_default());
                (sip as u64, (sip >> 64) as u64)
            }
            // The standard library's hash keys come from the same source, by other means.
            None => {
                use std::hash::BuildHasher;
                let state = std::hash::RandomState::new();
                (state.hash_one(0u8), state.hash_one(1u8))
            }
        };
        Keyer { sip, aes }
    }

    /// The cache key of `token`.
    pub(super) fn key(&self, token: &[u8]) -> CacheKey {
        if token.len() >= LONG {
            if let Some(key) = self.aes.as_ref().and_then(|aes| aes.key(token)) {
                return CacheKey(key);
            }
        }
        self.sip_key(token)
    }

    fn sip_key(&self, token: &[u8]) -> CacheKey {
        let (k0, k1) = self.sip;
        CacheKey(SipHasher24::new_with_keys(k0, k1).hash(token).as_u128())
    }
}

impl AesKeyer {
    fn new(ghash: &[u8], permute: &[u8]) -> Option<Self> {
        Some(AesKeyer {
            ghash: LessSafeKey::new(UnboundKey::new(&aead::AES_128_GCM, ghash).ok()?),
            permute: EncryptingKey::ecb(UnboundCipherKey::new(&AES_128, permute).ok()?).ok()?,
        })
    }

    /// `None` when aws-lc refuses the input (associated data beyond its limits, far past any
    /// header): the caller falls back to SipHash, the same way for the same token every time.
    fn key(&self, token: &[u8]) -> Option<u128> {
        // The fixed nonce is sound here: see the module's documentation.
        let tag = self
            .ghash
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key([0; aead::NONCE_LEN]),
                Aad::from(token),
                &mut [],
            )
            .ok()?;
        let mut block: [u8; 16] = tag.as_ref().try_into().ok()?;
        self.permute.encrypt(&mut block).ok()?;
        Some(u128::from_le_bytes(block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| b'A' + ((i as u8).wrapping_mul(31).wrapping_add(seed) % 26))
            .collect()
    }

    #[test]
    fn long_tokens_are_keyed_through_aes_and_short_ones_through_siphash() {
        let keyer = Keyer::random();
        assert!(keyer.aes.is_some(), "this machine's randomness is readable");
        let long = token(LONG, 1);
        assert_ne!(keyer.key(&long), keyer.sip_key(&long));
        let short = token(LONG - 1, 1);
        assert_eq!(keyer.key(&short), keyer.sip_key(&short));
    }

    #[test]
    fn a_key_depends_on_every_byte_and_on_the_length_and_not_on_anything_else() {
        let keyer = Keyer::random();
        for len in [0, 1, 15, 16, 17, LONG - 1, LONG, LONG + 1, 624, 2048] {
            let base = token(len, 3);
            assert_eq!(keyer.key(&base), keyer.key(&base.clone()), "deterministic");
            for at in [0, len / 2, len.saturating_sub(1)] {
                if at < len {
                    let mut other = base.clone();
                    other[at] ^= 1;
                    assert_ne!(
                        keyer.key(&base),
                        keyer.key(&other),
                        "{len} bytes, byte {at}"
                    );
                }
            }
            // A trailing zero byte is not padding: GHASH pads blocks with zeros, and its
            // length block is what tells these apart.
            let mut longer = base.clone();
            longer.push(0);
            assert_ne!(
                keyer.key(&base),
                keyer.key(&longer),
                "{len} bytes and one zero"
            );
        }
    }

    #[test]
    fn keys_differ_between_inspectors() {
        let long = token(624, 5);
        let short = token(40, 5);
        let (a, b) = (Keyer::random(), Keyer::random());
        assert_ne!(a.key(&long), b.key(&long));
        assert_ne!(a.key(&short), b.key(&short));
    }

    #[test]
    fn many_long_tokens_keep_distinct_keys() {
        let keyer = Keyer::random();
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000u32 {
            let mut t = token(600, 0);
            t[..4].copy_from_slice(&i.to_le_bytes());
            assert!(seen.insert(keyer.key(&t)), "token {i}");
        }
    }
}
