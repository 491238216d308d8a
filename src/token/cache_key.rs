//! What the verification cache is keyed by: a 128-bit keyed function of a token's bytes,
//! with keys drawn per inspector.
//!
//! The cache is probed on every request, so its key must be cheap (SHA-256 of a 300-byte
//! token costs about 20 times as much) and must not be the token (a cache keyed by tokens
//! would keep every recent bearer token in memory). A hit lets a request skip the signature
//! check, so two tokens must not share a key: without the keys, nobody can make a token whose
//! cache key equals another token's except by a chance bounded below.
//!
//! Two functions share the work, by the token's length:
//!
//! - **Shorter than [`LONG`] or longer than [`LONGEST`]**: SipHash-2-4 with a 128-bit
//!   output, a pseudorandom function of its key. Two tokens collide by chance only, about
//!   2^-128 a pair, and a collision, were one ever seen, would tell nothing about other
//!   tokens.
//! - **[`LONG`] to [`LONGEST`] bytes** (most signed JWTs: an RS256 token is 600 bytes or
//!   more): AES-128 of the token's GHASH. The GHASH comes from aws-lc's AES-GCM, sealing
//!   nothing with the token as its associated data, so the tag is `GHASH_H(token) ⊕ E_K1(J0)`
//!   with one constant mask for every token; the tag is then encrypted as one block under a
//!   second, independent AES key. GHASH is a universal hash: two different tokens of at most
//!   `l` blocks collide only when the secret `H` is a root of a nonzero polynomial of degree
//!   at most `l + 1`, so with probability at most `(l + 1) / 2^128`, about 2^-119 at
//!   [`LONGEST`]; over `q` tokens tried against `n` cached ones, at most `q·n` times that. The
//!   encryption makes the keys pseudorandom, so keys that leaked (none leave the process)
//!   would say nothing about `H`. What is weaker than SipHash: a collision that did happen by
//!   that chance would narrow `H` to at most `l + 1` values, and from then on colliding tokens
//!   could be made at will. The chance is what bounds it, as it bounds SipHash. The fixed
//!   "nonce" is not a nonce reuse in the AEAD sense: nothing is encrypted with the key
//!   stream, the mask cancels out of any collision, and `K1` serves nothing else.
//!
//! Why two: SipHash costs about 0.5 ns a byte, and the AES path a fixed 110 ns or so (aws-lc
//! sets up a GCM context per call; the GHASH itself costs about a hundredth of a nanosecond
//! a byte). At 624 bytes (the bench's RS256 token) SipHash took 330-350 ns and the AES path
//! 110-120 ns; at 64 bytes, 58 ns against 117 ns (`docs/benchmarks.md`, "The verification
//! cache's key"). They cross near 190 bytes in time and near 270 in instructions, hence
//! [`LONG`]. Past [`LONGEST`], SipHash keeps the bound at 2^-128 for tokens that no issuer
//! sends, only an attacker. A short and a long token are keyed by different functions with
//! independent keys, so they collide by chance only, as two of the same kind.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{EncryptingKey, UnboundCipherKey, AES_128};
use siphasher::sip128::SipHasher24;

/// Tokens of this many bytes or more are keyed through AES (up to [`LONGEST`]); shorter ones
/// through SipHash.
pub(super) const LONG: usize = 256;

/// The longest token keyed through AES: 8 KiB, 513 GHASH blocks with the length block.
pub(super) const LONGEST: usize = 8 * 1024;

/// The GCM nonce of every tag: fixed, see the [module](self).
const NONCE: [u8; aead::NONCE_LEN] = [0; aead::NONCE_LEN];

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
        if (LONG..=LONGEST).contains(&token.len()) {
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

    /// `None` when aws-lc refuses (it has no reason to at these lengths): the caller falls
    /// back to SipHash, the same way for the same token every time.
    fn key(&self, token: &[u8]) -> Option<u128> {
        let tag = self.tag(NONCE, token)?;
        Some(u128::from_le_bytes(self.permute(tag)?))
    }

    /// The AES-GCM tag of nothing, with `aad` as the associated data: GMAC.
    fn tag(&self, nonce: [u8; aead::NONCE_LEN], aad: &[u8]) -> Option<[u8; 16]> {
        let tag = self
            .ghash
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut [],
            )
            .ok()?;
        tag.as_ref().try_into().ok()
    }

    /// One AES block.
    fn permute(&self, mut block: [u8; 16]) -> Option<[u8; 16]> {
        self.permute.encrypt(&mut block).ok()?;
        Some(block)
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

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn tokens_of_256_bytes_to_8_kib_are_keyed_through_aes_and_others_through_siphash() {
        let keyer = Keyer::random();
        let aes = keyer
            .aes
            .as_ref()
            .expect("this machine's randomness is readable");
        for len in [LONG, 624, LONGEST] {
            let t = token(len, 1);
            let tag = aes.tag(NONCE, &t).unwrap();
            let expected = u128::from_le_bytes(aes.permute(tag).unwrap());
            assert_eq!(keyer.key(&t), CacheKey(expected), "{len} bytes");
            assert_ne!(keyer.key(&t), keyer.sip_key(&t), "{len} bytes");
        }
        for len in [0, 40, LONG - 1, LONGEST + 1, 64 * 1024] {
            let t = token(len, 1);
            assert_eq!(keyer.key(&t), keyer.sip_key(&t), "{len} bytes");
        }
    }

    /// The two steps are the standard ones, checked against published answers (and against
    /// OpenSSL through pyca/cryptography when these were written down).
    #[test]
    fn the_steps_are_gmac_and_one_aes_block() {
        // NIST CAVP, gcmEncryptExtIV128.rsp: Keylen 128, IVlen 96, PTlen 0, AADlen 128,
        // Taglen 128, Count 0.
        let gmac = hex("77be63708971c4e240d1cb79e8d77feb");
        // FIPS-197, Appendix C.1: AES-128.
        let block = hex("000102030405060708090a0b0c0d0e0f");
        let aes = AesKeyer::new(&gmac, &block).unwrap();
        let nonce: [u8; 12] = hex("e0e00f19fed7ba0136a797f3").try_into().unwrap();
        let tag = aes
            .tag(nonce, &hex("7a43ec1d9c0a5a78a0b16533a6213cab"))
            .unwrap();
        assert_eq!(tag.to_vec(), hex("209fcc8d3675ed938e9c7166709dd946"));
        let plain: [u8; 16] = hex("00112233445566778899aabbccddeeff").try_into().unwrap();
        assert_eq!(
            aes.permute(plain).unwrap().to_vec(),
            hex("69c4e0d86a7b0430d8cdb78070b4c55a")
        );
    }

    #[test]
    fn a_key_depends_on_every_byte_and_on_the_length_and_not_on_anything_else() {
        let keyer = Keyer::random();
        for len in [
            0,
            1,
            15,
            16,
            17,
            LONG - 1,
            LONG,
            LONG + 1,
            624,
            2048,
            LONGEST,
            LONGEST + 1,
        ] {
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
