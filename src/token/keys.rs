//! Verification keys: static PEM/secret keys and JWKS documents.

use std::ops::RangeInclusive;

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaParameters, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};

use super::TokenConfigError;

/// The sizes of RSA key that tokens are verified with, in bits. aws-lc refuses fewer than 2048
/// bits at every check, so such a key is refused when it is read rather than reported as a
/// bad signature on every token; more than 4096 (the bound for DPoP proof keys too) only
/// makes each check cost more.
const RSA_BITS: RangeInclusive<usize> = 2048..=4096;

/// The fewest bytes an HMAC key (static or from a JWKS document) may have.
const MIN_HMAC_SECRET: usize = 32;

/// One key and the algorithms it may verify.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    /// For each algorithm the key is listed for, the key made ready for aws-lc's check of
    /// it; `None` where it cannot be (a key of another family, or one aws-lc refuses): the
    /// key is still a candidate for a token of that algorithm, whose signature it never
    /// verifies.
    checks: Vec<(Algorithm, Option<Check>)>,
}

/// A key as aws-lc checks a signature with it, prepared once when the key is read: an HMAC
/// key with its padded hashes computed, a public key parsed (an RSA key with its Montgomery
/// constants kept after the first check). `jsonwebtoken::crypto::verify` would copy the key
/// and prepare it again on every check: about 2.3 µs of an RS256 check's 17.7, 160 ns of
/// HS256's 440 on this machine.
#[derive(Clone)]
enum Check {
    /// Boxed: aws-lc's HMAC context is over a kilobyte.
    Hmac(Box<hmac::Key>),
    Public(ParsedPublicKey),
}

/// The longest signature of any algorithm a key verifies: RSA of 4096 bits ([`RSA_BITS`]).
const LONGEST_SIGNATURE: usize = 4096 / 8;

impl VerifyKey {
    /// `key`, made ready for each of `algorithms` it can verify, and what kept it from the
    /// first it cannot (one of another family, or a key aws-lc refuses). An algorithm it
    /// cannot verify stays listed, as with `jsonwebtoken::crypto::verify`: a token of that
    /// algorithm, naming the key's `kid` or no `kid`, has the key as a candidate and is a bad
    /// signature, not an unknown key.
    pub(crate) fn new(
        kid: Option<String>,
        key: &DecodingKey,
        algorithms: &[Algorithm],
    ) -> (VerifyKey, Option<String>) {
        let mut problem = None;
        let checks = algorithms
            .iter()
            .map(|&alg| match Check::new(alg, key) {
                Ok(check) => (alg, Some(check)),
                Err(refused) => {
                    problem.get_or_insert(refused);
                    (alg, None)
                }
            })
            .collect();
        (VerifyKey { kid, checks }, problem)
    }

    /// The algorithms the key is listed for, whether or not it can verify them.
    pub(crate) fn algorithms(&self) -> impl Iterator<Item = Algorithm> + '_ {
        self.checks.iter().map(|(alg, _)| *alg)
    }

    /// Whether the key verifies some algorithm.
    pub(crate) fn usable(&self) -> bool {
        self.checks.iter().any(|(_, check)| check.is_some())
    }

    /// Whether `signature`, base64url without padding as in a JWS, is this key's signature
    /// of `message` under `alg` (never, for an algorithm the key does not allow).
    pub(crate) fn verifies(&self, alg: Algorithm, message: &[u8], signature: &str) -> bool {
        let Some((_, Some(check))) = self.checks.iter().find(|(allowed, _)| *allowed == alg) else {
            return false;
        };
        // Decoded on the stack: a signature too long for any key fails to decode.
        let mut decoded = [0u8; LONGEST_SIGNATURE];
        let Ok(len) = URL_SAFE_NO_PAD.decode_slice(signature, &mut decoded) else {
            return false;
        };
        check.verifies(message, &decoded[..len])
    }
}

/// Whether `signature` (decoded) is `key`'s signature of `message` under `alg`, for a key
/// used once (a DPoP proof's own): `false` too for a key aws-lc refuses or one of another
/// family than `alg`.
pub(crate) fn verifies_once(
    key: &DecodingKey,
    alg: Algorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    Check::new(alg, key).is_ok_and(|check| check.verifies(message, signature))
}

impl Check {
    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Check::Hmac(key) => hmac::verify(key, message, signature).is_ok(),
            Check::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }

    fn new(alg: Algorithm, key: &DecodingKey) -> Result<Check, String> {
        use Algorithm::*;
        if key.family() != alg.family() {
            return Err(format!("the key is not of the type {alg:?} needs"));
        }
        let rsa = |params: &'static RsaParameters| match key.kind() {
            DecodingKeyKind::SecretOrDer(der) => ParsedPublicKey::new(params, der),
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                RsaPublicKeyComponents { n, e }.to_parsed_public_key(params)
            }
        };
        // Only an RSA key is ever held as its modulus and exponent.
        let bytes = || key.try_get_as_bytes().map_err(|e| e.to_string());
        let public = |params: &'static dyn signature::VerificationAlgorithm| {
            ParsedPublicKey::new(params, bytes().unwrap_or_default())
        };
        let hmac = |params| Ok(Check::Hmac(Box::new(hmac::Key::new(params, bytes()?))));
        let parsed = match alg {
            HS256 => return hmac(hmac::HMAC_SHA256),
            HS384 => return hmac(hmac::HMAC_SHA384),
            HS512 => return hmac(hmac::HMAC_SHA512),
            RS256 => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
            RS384 => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
            RS512 => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
            PS256 => rsa(&signature::RSA_PSS_2048_8192_SHA256),
            PS384 => rsa(&signature::RSA_PSS_2048_8192_SHA384),
            PS512 => rsa(&signature::RSA_PSS_2048_8192_SHA512),
            ES256 => public(&signature::ECDSA_P256_SHA256_FIXED),
            ES384 => public(&signature::ECDSA_P384_SHA384_FIXED),
            EdDSA => {
                ed25519_of_full_order(bytes()?)?;
                public(&signature::ED25519)
            }
            _ => return Err(format!("{alg:?} is not supported")),
        };
        parsed
            .map(Check::Public)
            .map_err(|rejected| format!("the key cannot verify {alg:?}: {rejected}"))
    }
}

/// Refuses an Ed25519 public key that is not a point of the curve, or that is a point of
/// small order (the identity, and the seven others whose multiples stay among eight): such a
/// key "verifies" a signature that anyone can make, whatever the message (`R` the identity,
/// `S` zero), as aws-lc checks signatures without asking. ed25519-dalek, the crate the hash
/// chain signs with, knows these points.
fn ed25519_of_full_order(key: &[u8]) -> Result<(), String> {
    let key: &[u8; 32] = key
        .try_into()
        .map_err(|_| format!("an Ed25519 key is 32 bytes, not {}", key.len()))?;
    match ed25519_dalek::VerifyingKey::from_bytes(key) {
        Ok(key) if !key.is_weak() => Ok(()),
        Ok(_) => Err("the Ed25519 key is a point of small order, which verifies forgeries".into()),
        Err(_) => Err("the Ed25519 key is not a point of the curve".into()),
    }
}

/// The most keys a token is checked against that it does not name by `kid` (every key, for
/// a token without `kid`; keys without `kid`, for one with). Each is a signature check, for
/// a token anyone can write: a forged token without `kid` cost one check per key of its
/// algorithm, twenty RSA-2048 checks (some 400 µs) with a JWKS document of twenty RS256
/// keys. Four leave room for a rotation (the previous, current and next key) of an issuer
/// whose tokens name no key; a token whose key comes later must name it.
pub(crate) const MAX_UNNAMED_CANDIDATES: usize = 4;

/// The keys in force at one moment.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<VerifyKey>,
}

impl KeySet {
    /// Keys a token with this `kid` and `alg` may have been signed with, in the set's
    /// order. A `kid` selects keys with that id, and keys without one; without a `kid`,
    /// keys that allow the algorithm. Of the keys a token does not select by id, the first
    /// [`MAX_UNNAMED_CANDIDATES`] only.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyKey> + 'a {
        let mut unnamed = 0;
        self.keys.iter().filter(move |k| {
            k.algorithms().any(|allowed| allowed == alg)
                && match (kid, &k.kid) {
                    (Some(kid), Some(key_id)) => kid == key_id,
                    (Some(_), None) | (None, _) => {
                        unnamed += 1;
                        unnamed <= MAX_UNNAMED_CANDIDATES
                    }
                }
        })
    }

    /// True when some key has this id (whatever its algorithm).
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Parses a JWKS document. Keys for encryption, keys whose `use` or `key_ops` does not
    /// say they verify signatures, and key types this crate cannot verify with are skipped;
    /// a document with no usable key is an error.
    pub(crate) fn from_jwks(json: &str) -> Result<KeySet, TokenConfigError> {
        let set: JwkSet = serde_json::from_str(json)
            .map_err(|e| TokenConfigError::Jwks(format!("not a JWKS document: {e}")))?;
        // Read again for each key's `alg`, `use` and `key_ops` as written: `JwkSet` reads
        // every `alg` it does not know (`ECDH-ES`, `A128KW`, RFC 9864's `Ed25519`) as one
        // unknown algorithm.
        let declared: Declared = serde_json::from_str(json)
            .map_err(|e| TokenConfigError::Jwks(format!("not a JWKS document: {e}")))?;
        let mut keys = Vec::new();
        for (jwk, declared) in set.keys.iter().zip(&declared.keys) {
            // An encryption key by its `use`, whatever its `alg`: skipped without a word, as
            // documents publish them beside signature keys. A `use` other than `sig` and
            // `enc` (RFC 7517 §4.2, compared as written) names no signature key either.
            match declared.key_use.as_deref() {
                None | Some("sig") => {}
                Some("enc") => continue,
                Some(key_use) => {
                    tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, key_use, "JWKS key skipped: its use is not sig");
                    continue;
                }
            }
            // RFC 7517 §4.3: `key_ops` lists the operations the key is for; one without
            // `verify` verifies no signature, whatever else it may do.
            if let Some(ops) = &declared.key_ops {
                if !ops.iter().any(|op| op == "verify") {
                    tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, key_ops = ?ops, "JWKS key skipped: its key_ops has no verify");
                    continue;
                }
            }
            // An OKP key is an Ed25519 key by its `crv` only. X25519 and X448 keys (key
            // agreement) and Ed448 keys are read as keys of no known type and skipped below;
            // one whose `crv` names a curve of EC keys is read as OKP parameters, and would
            // otherwise verify EdDSA with its `x` taken as an Ed25519 key.
            if let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm {
                if okp.curve != EllipticCurve::Ed25519 {
                    tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, curve = ?okp.curve, "JWKS key skipped: OKP keys of the Ed25519 curve only");
                    continue;
                }
            }
            // `alg` is the algorithm the key is meant for (RFC 7517 §4.4): a key with one
            // verifies that algorithm only, and a key meant for key agreement, key wrapping
            // or encryption (RFC 7518 §4.1: `ECDH-ES`, `A128KW`, `dir`, `RSA1_5`, whose
            // padding makes a decryption oracle of the private key a signer) or for an
            // algorithm not verified here verifies none of its type's algorithms.
            let algorithms = match declared.alg.as_deref() {
                None => family_algorithms(&jwk.algorithm),
                Some(alg) => match signing_algorithm(alg) {
                    Some(alg) => vec![alg],
                    None => {
                        tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, alg, "JWKS key skipped: its alg is no signature algorithm verified here");
                        continue;
                    }
                },
            };
            if algorithms.is_empty() {
                continue;
            }
            if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
                let bits = URL_SAFE_NO_PAD.decode(&rsa.n).map_or(0, |n| rsa_bits(&n));
                if !RSA_BITS.contains(&bits) {
                    tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, bits, "JWKS key skipped: RSA keys of 2048 to 4096 bits only");
                    continue;
                }
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, "JWKS key skipped: not usable for verification");
                continue;
            };
            if key.family() == AlgorithmFamily::Hmac
                && key.try_get_as_bytes().map_or(0, <[u8]>::len) < MIN_HMAC_SECRET
            {
                tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, "JWKS key skipped: HMAC keys of at least 32 bytes only");
                continue;
            }
            let (key, problem) = VerifyKey::new(jwk.common.key_id.clone(), &key, &algorithms);
            if let Some(problem) = problem {
                tracing::warn!(target: "oauth_audit", kid = ?jwk.common.key_id, problem, "JWKS key not used for some or all of its algorithms");
            }
            keys.push(key);
        }
        let usable = keys.iter().any(VerifyKey::usable);
        if !usable && !set.keys.is_empty() {
            return Err(TokenConfigError::Jwks(
                "the JWKS document has no key usable for signature verification".into(),
            ));
        }
        Ok(KeySet { keys })
    }
}

/// The `alg`, `use` and `key_ops` of each key of a JWKS document, as written.
#[derive(serde::Deserialize)]
struct Declared {
    keys: Vec<DeclaredKey>,
}

/// A JWK's `alg`, `use` and `key_ops` (RFC 7517 §4.2-4.4), as written.
#[derive(serde::Deserialize)]
struct DeclaredKey {
    alg: Option<String>,
    #[serde(rename = "use")]
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
}

/// The signature algorithm an `alg` names (a JWK's, a token's or a DPoP proof's header's),
/// when it is one verified here: a JWS algorithm name, or `Ed25519`, RFC 9864's fully
/// specified name of EdDSA with an Ed25519 key (the only EdDSA verified here).
pub(crate) fn signing_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "Ed25519" => Some(Algorithm::EdDSA),
        _ => alg.parse().ok(),
    }
}

/// The algorithms a JWK without `alg` may be used with, from its key type.
fn family_algorithms(params: &AlgorithmParameters) -> Vec<Algorithm> {
    use Algorithm::*;
    match params {
        AlgorithmParameters::RSA(_) => vec![RS256, RS384, RS512, PS256, PS384, PS512],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![ES256],
            EllipticCurve::P384 => vec![ES384],
            _ => vec![],
        },
        AlgorithmParameters::OctetKeyPair(_) => vec![EdDSA],
        AlgorithmParameters::OctetKey(_) => vec![HS256, HS384, HS512],
        _ => vec![],
    }
}

/// Parses a static key of `family` for `alg`: an algorithm of another family is refused, so
/// that a public key's PEM given for `HS256` is never taken as an HMAC secret (anyone holding
/// the public key could then sign tokens).
pub(crate) fn static_key_of(
    family: AlgorithmFamily,
    alg: Algorithm,
    material: &[u8],
    kid: Option<&str>,
) -> Result<VerifyKey, TokenConfigError> {
    if alg.family() != family {
        return Err(TokenConfigError::Key {
            algorithm: alg,
            problem: format!("not an algorithm of this kind of key ({family:?})"),
        });
    }
    static_key(alg, material, kid)
}

/// Parses a static key for `alg`.
pub(crate) fn static_key(
    alg: Algorithm,
    material: &[u8],
    kid: Option<&str>,
) -> Result<VerifyKey, TokenConfigError> {
    use Algorithm::*;
    let bad = |e: jsonwebtoken::errors::Error| TokenConfigError::Key {
        algorithm: alg,
        problem: e.to_string(),
    };
    let key = match alg {
        HS256 | HS384 | HS512 => {
            if material.len() < MIN_HMAC_SECRET {
                return Err(TokenConfigError::Key {
                    algorithm: alg,
                    problem: "HMAC secrets must be at least 32 bytes".into(),
                });
            }
            DecodingKey::from_secret(material)
        }
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => {
            let key = DecodingKey::from_rsa_pem(material).map_err(bad)?;
            let bits = match key.kind() {
                DecodingKeyKind::SecretOrDer(der) => pkcs1_modulus(der).map_or(0, rsa_bits),
                DecodingKeyKind::RsaModulusExponent { n, .. } => rsa_bits(n),
            };
            if !RSA_BITS.contains(&bits) {
                return Err(TokenConfigError::Key {
                    algorithm: alg,
                    problem: format!(
                        "an RSA public key of 2048 to 4096 bits is needed, this one has {bits}"
                    ),
                });
            }
            key
        }
        ES256 | ES384 => DecodingKey::from_ec_pem(material).map_err(bad)?,
        EdDSA => DecodingKey::from_ed_pem(material).map_err(bad)?,
        _ => {
            return Err(TokenConfigError::Key {
                algorithm: alg,
                problem: "algorithm not supported".into(),
            })
        }
    };
    match VerifyKey::new(kid.map(str::to_owned), &key, &[alg]) {
        (key, None) => Ok(key),
        (_, Some(problem)) => Err(TokenConfigError::Key {
            algorithm: alg,
            problem,
        }),
    }
}

/// The size in bits of a big-endian unsigned integer.
fn rsa_bits(modulus: &[u8]) -> usize {
    let first = modulus.iter().position(|&b| b != 0);
    first.map_or(0, |i| {
        (modulus.len() - i) * 8 - modulus[i].leading_zeros() as usize
    })
}

/// The modulus of a PKCS #1 `RSAPublicKey` in DER: `SEQUENCE { INTEGER n, INTEGER e }`.
fn pkcs1_modulus(der: &[u8]) -> Option<&[u8]> {
    /// The content of the element at the start of `input` if its tag is `tag`.
    fn content(input: &[u8], tag: u8) -> Option<&[u8]> {
        let (&found, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        if found != tag {
            return None;
        }
        let (length, rest) = match first {
            0..=0x7f => (usize::from(first), rest),
            0x81 | 0x82 => {
                let width = usize::from(first & 0x7f);
                let (bytes, rest) = rest.split_at_checked(width)?;
                let length = bytes.iter().fold(0, |n, &b| n << 8 | usize::from(b));
                (length, rest)
            }
            _ => return None,
        };
        rest.get(..length)
    }
    content(content(der, 0x30)?, 0x02)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DER element: tag, length, content.
    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A PKCS #1 RSA public key whose modulus has `bits` bits (not a real key: only the
    /// size is read before a signature is checked).
    fn rsa_public_pem(bits: usize) -> String {
        let mut n = vec![0u8]; // INTEGER: the top bit is set, so a leading zero byte
        n.extend(std::iter::repeat_n(0xc5, bits / 8));
        let body = [der(0x02, &n), der(0x02, &[1, 0, 1])].concat();
        let encoded = base64::engine::general_purpose::STANDARD.encode(der(0x30, &body));
        format!("-----BEGIN RSA PUBLIC KEY-----\n{encoded}\n-----END RSA PUBLIC KEY-----\n")
    }

    fn rsa_jwks(bits: usize) -> String {
        let n = URL_SAFE_NO_PAD.encode(vec![0xc5u8; bits / 8]);
        format!(r#"{{"keys":[{{"kty":"RSA","kid":"k","alg":"RS256","n":"{n}","e":"AQAB"}}]}}"#)
    }

    #[test]
    fn rsa_keys_of_2048_to_4096_bits_only() {
        for bits in [2048, 3072, 4096] {
            assert!(static_key(Algorithm::RS256, rsa_public_pem(bits).as_bytes(), None).is_ok());
            assert_eq!(KeySet::from_jwks(&rsa_jwks(bits)).unwrap().keys.len(), 1);
        }
        for bits in [1024, 2040, 4104, 8192] {
            let refused = static_key(Algorithm::PS256, rsa_public_pem(bits).as_bytes(), None);
            let Err(TokenConfigError::Key { problem, .. }) = refused else {
                panic!("a {bits}-bit key was accepted");
            };
            assert!(
                problem.contains(&format!("this one has {bits}")),
                "{problem}"
            );
            assert!(
                KeySet::from_jwks(&rsa_jwks(bits)).is_err(),
                "{bits} bits from JWKS"
            );
        }
        assert_eq!(rsa_bits(&[0, 0, 1, 0]), 9);
        assert_eq!(pkcs1_modulus(&[0x30, 0x03, 0x02, 0x05, 0x01]), None);
    }

    fn sign_hs(alg: hmac::Algorithm, secret: &[u8], message: &str) -> String {
        let tag = hmac::sign(&hmac::Key::new(alg, secret), message.as_bytes());
        URL_SAFE_NO_PAD.encode(tag)
    }

    #[test]
    fn each_hmac_algorithm_verifies_with_its_own_hash_only() {
        let secret = b"a-32-byte-long-secret-for-hs256!";
        let message = "header.payload";
        let algorithms = [
            (Algorithm::HS256, hmac::HMAC_SHA256),
            (Algorithm::HS384, hmac::HMAC_SHA384),
            (Algorithm::HS512, hmac::HMAC_SHA512),
        ];
        for (alg, hash) in algorithms {
            let key = static_key(alg, secret, None).unwrap();
            assert_eq!(key.algorithms().collect::<Vec<_>>(), [alg]);
            let signature = sign_hs(hash, secret, message);
            assert!(key.verifies(alg, message.as_bytes(), &signature), "{alg:?}");
            assert!(!key.verifies(alg, b"header.payloaD", &signature), "{alg:?}");
            for (other, _) in algorithms.iter().filter(|(other, _)| *other != alg) {
                assert!(!key.verifies(*other, message.as_bytes(), &signature));
            }
            // Padded, in the other base64 alphabet, or cut short: not a JWS signature.
            let padded = format!("{signature}==");
            let standard = signature.replace('-', "+").replace('_', "/");
            for spelling in [&padded, &signature[1..]] {
                assert!(
                    !key.verifies(alg, message.as_bytes(), spelling),
                    "{spelling}"
                );
            }
            if standard != signature {
                assert!(!key.verifies(alg, message.as_bytes(), &standard));
            }
        }
    }

    /// The longest signature a key makes, RSA of 4096 bits (683 base64url characters),
    /// fits the buffer it is decoded into, with the key from PEM and from a JWK.
    #[test]
    fn an_rsa_4096_signature_verifies() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rsa::KeySize;
        use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair, RSA_PKCS1_SHA256};
        let pair = RsaKeyPair::generate(KeySize::Rsa4096).unwrap();
        let message = b"header.payload";
        let mut signature = vec![0; pair.public_modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut signature,
        )
        .unwrap();
        let encoded = URL_SAFE_NO_PAD.encode(&signature);
        assert_eq!(encoded.len(), 683);
        let spki = pair.public_key().as_der().unwrap();
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(spki.as_ref())
        );
        let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
        let jwks = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"k","n":"{}","e":"{}"}}]}}"#,
            URL_SAFE_NO_PAD.encode(&components.n),
            URL_SAFE_NO_PAD.encode(&components.e)
        );
        let from_pem = static_key(Algorithm::RS256, pem.as_bytes(), None).unwrap();
        let from_jwks = KeySet::from_jwks(&jwks).unwrap().keys.remove(0);
        for key in [&from_pem, &from_jwks] {
            assert!(key.verifies(Algorithm::RS256, message, &encoded));
            assert!(!key.verifies(Algorithm::RS256, b"header.payloaD", &encoded));
            assert!(!key.verifies(Algorithm::PS256, message, &encoded));
        }
    }

    #[test]
    fn a_signature_longer_than_any_key_makes_is_refused() {
        let secret = b"a-32-byte-long-secret-for-hs256!";
        let key = static_key(Algorithm::HS256, secret, None).unwrap();
        for len in [LONGEST_SIGNATURE + 1, 64 * 1024] {
            let long = URL_SAFE_NO_PAD.encode(vec![7u8; len]);
            assert!(!key.verifies(Algorithm::HS256, b"header.payload", &long));
        }
        let longest = URL_SAFE_NO_PAD.encode([7u8; LONGEST_SIGNATURE]);
        assert!(!key.verifies(Algorithm::HS256, b"header.payload", &longest));
    }

    #[test]
    fn a_jwks_key_of_another_type_than_its_algorithm_is_known_but_verifies_nothing() {
        let n = URL_SAFE_NO_PAD.encode(vec![0xc5u8; 256]);
        let secret = URL_SAFE_NO_PAD.encode(b"a-32-byte-long-secret-for-hs256!");
        // An RSA key that says it is for HS256, beside a usable key.
        let jwks = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"confused","alg":"HS256","n":"{n}","e":"AQAB"}},
                {{"kty":"oct","kid":"good","alg":"HS256","k":"{secret}"}}]}}"#
        );
        let set = KeySet::from_jwks(&jwks).unwrap();
        assert!(set.has_kid("confused"));
        // A candidate for a token naming it, or naming no key, that it never verifies.
        let hs256 = sign_hs(hmac::HMAC_SHA256, &[0xc5u8; 256], "header.payload");
        for kid in [Some("confused"), None] {
            let confused: Vec<_> = set
                .candidates(kid, Algorithm::HS256)
                .filter(|key| key.kid.as_deref() == Some("confused"))
                .collect();
            assert_eq!(confused.len(), 1);
            assert!(!confused[0].usable());
            assert!(!confused[0].verifies(Algorithm::HS256, b"header.payload", &hs256));
        }
        assert_eq!(set.candidates(Some("good"), Algorithm::HS256).count(), 1);
        // Alone, it leaves the document with no usable key.
        let alone = format!(
            r#"{{"keys":[{{"kty":"RSA","kid":"confused","alg":"HS256","n":"{n}","e":"AQAB"}}]}}"#
        );
        assert!(KeySet::from_jwks(&alone).is_err());
    }

    #[test]
    fn a_jwks_key_for_encryption_by_its_alg_verifies_no_signature() {
        // An RSA key whose `alg` is a key-encryption algorithm is an encryption key, `use` or
        // not: a decryption oracle of its private key (RSA1_5's padding) would sign for it.
        let n = URL_SAFE_NO_PAD.encode(vec![0xc5u8; 256]);
        for alg in ["RSA1_5", "RSA-OAEP", "RSA-OAEP-256"] {
            let jwks = format!(
                r#"{{"keys":[{{"kty":"RSA","kid":"enc","alg":"{alg}","n":"{n}","e":"AQAB"}},
                    {{"kty":"RSA","kid":"sig","alg":"RS256","n":"{n}","e":"AQAB"}}]}}"#
            );
            let set = KeySet::from_jwks(&jwks).unwrap();
            assert!(!set.has_kid("enc"), "{alg}");
            assert_eq!(set.candidates(None, Algorithm::RS256).count(), 1, "{alg}");
        }
    }

    /// A writer of log lines into a buffer shared with the test.
    #[derive(Clone, Default)]
    struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_jwks_key_whose_key_ops_or_use_is_not_for_verifying_is_skipped_with_a_warning() {
        // RFC 7517 §4.3: `key_ops` lists what the key is for, and one without `verify`
        // verifies no signature; §4.2: a `use` other than `sig` is no signature key's. Both
        // are compared as written (case-sensitive).
        let k = URL_SAFE_NO_PAD.encode([b'k'; 32]);
        let key =
            |kid: &str, extra: &str| format!(r#"{{"kty":"oct","kid":"{kid}",{extra}"k":"{k}"}}"#);
        let skipped = [
            key("ops-sign", r#""key_ops":["sign"],"#),
            key("ops-enc", r#""key_ops":["encrypt","decrypt"],"#),
            key("ops-none", r#""key_ops":[],"#),
            key("ops-case", r#""key_ops":["Verify"],"#),
            key("use-other", r#""use":"wrap","#),
            key("use-case", r#""use":"SIG","#),
            key("both", r#""use":"sig","key_ops":["sign"],"#),
        ];
        let kept = [
            key("ops-verify", r#""key_ops":["sign","verify"],"#),
            key("use-sig", r#""use":"sig","#),
            key("both-ok", r#""use":"sig","key_ops":["verify"],"#),
            key("plain", ""),
        ];
        let jwks = format!(
            r#"{{"keys":[{}]}}"#,
            skipped
                .iter()
                .chain(&kept)
                .cloned()
                .collect::<Vec<_>>()
                .join(",")
        );
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let set =
            tracing::subscriber::with_default(subscriber, || KeySet::from_jwks(&jwks)).unwrap();
        let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        for kid in [
            "ops-sign",
            "ops-enc",
            "ops-none",
            "ops-case",
            "use-other",
            "use-case",
            "both",
        ] {
            assert!(!set.has_kid(kid), "{kid}");
            assert!(
                logs.lines()
                    .any(|line| line.contains("WARN") && line.contains(&format!("\"{kid}\""))),
                "{kid}: {logs}"
            );
        }
        for kid in ["ops-verify", "use-sig", "both-ok", "plain"] {
            assert!(set.has_kid(kid), "{kid}");
        }
        // Alone, such keys leave the document with no usable key: refused, as a document of
        // encryption keys is.
        let alone = format!(r#"{{"keys":[{}]}}"#, skipped.join(","));
        assert!(KeySet::from_jwks(&alone).is_err());
    }

    #[test]
    fn a_jwks_hmac_key_of_fewer_than_32_bytes_is_skipped() {
        // As a static secret: an empty or short key is one anyone can find or guess.
        let message = "header.payload";
        for len in [0, 1, 16, 31] {
            let k = URL_SAFE_NO_PAD.encode(vec![b'k'; len]);
            let jwks = format!(
                r#"{{"keys":[{{"kty":"oct","kid":"short","k":"{k}"}},
                    {{"kty":"oct","kid":"long","k":"{}"}}]}}"#,
                URL_SAFE_NO_PAD.encode([b'k'; 32])
            );
            let set = KeySet::from_jwks(&jwks).unwrap();
            assert!(!set.has_kid("short"), "{len} bytes");
            let forged = sign_hs(hmac::HMAC_SHA256, &vec![b'k'; len], message);
            assert!(!set
                .candidates(None, Algorithm::HS256)
                .any(|key| key.verifies(Algorithm::HS256, message.as_bytes(), &forged)));
        }
    }

    /// A signature has no other byte spelling that verifies (the ECDSA `(r, n - s)` aside,
    /// which the inspector knows as a token's twin): an ECDSA signature in DER or with a zero
    /// byte more, an RSA signature without its leading zero byte or with one more. Another
    /// spelling would be another fingerprint of the same token, past its revocation.
    #[test]
    fn a_signature_has_no_other_encoding_that_verifies() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair};
        let rng = SystemRandom::new();
        let message = b"header.payload";
        let fixed = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let asn1 = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            fixed.to_pkcs8v1().unwrap().as_ref(),
        )
        .unwrap();
        let ec = DecodingKey::from_ec_der(fixed.public_key().as_ref());
        let (ec, _) = VerifyKey::new(None, &ec, &[Algorithm::ES256]);
        let rs = fixed.sign(&rng, message).unwrap().as_ref().to_vec();
        let verifies = |key: &VerifyKey, alg, signature: &[u8]| {
            key.verifies(alg, message, &URL_SAFE_NO_PAD.encode(signature))
        };
        assert!(verifies(&ec, Algorithm::ES256, &rs));
        let der = asn1.sign(&rng, message).unwrap().as_ref().to_vec();
        let (r, s) = rs.split_at(32);
        for other in [
            der,
            [&[0], &rs[..]].concat(),
            [r, &[0], s].concat(),
            [&[0], r, s].concat(),
        ] {
            assert!(!verifies(&ec, Algorithm::ES256, &other), "{other:?}");
        }
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let rsa = DecodingKey::from_rsa_der(pair.public_key().as_ref());
        let (rsa, _) = VerifyKey::new(None, &rsa, &[Algorithm::PS256]);
        // One PSS signature in 256 starts with a zero byte.
        let signature = std::iter::repeat_with(|| {
            let mut out = vec![0; pair.public_modulus_len()];
            pair.sign(&signature::RSA_PSS_SHA256, &rng, message, &mut out)
                .unwrap();
            out
        })
        .take(10_000)
        .find(|signature| signature[0] == 0)
        .unwrap();
        assert!(verifies(&rsa, Algorithm::PS256, &signature));
        assert!(!verifies(&rsa, Algorithm::PS256, &signature[1..]));
        assert!(!verifies(
            &rsa,
            Algorithm::PS256,
            &[&[0], &signature[..]].concat()
        ));
    }

    #[test]
    fn an_rsa_jwk_without_alg_is_ready_for_every_rsa_algorithm() {
        let n = URL_SAFE_NO_PAD.encode(vec![0xc5u8; 256]);
        let jwks = format!(r#"{{"keys":[{{"kty":"RSA","kid":"k","n":"{n}","e":"AQAB"}}]}}"#);
        let set = KeySet::from_jwks(&jwks).unwrap();
        use Algorithm::*;
        assert_eq!(
            set.keys[0].algorithms().collect::<Vec<_>>(),
            [RS256, RS384, RS512, PS256, PS384, PS512]
        );
    }

    #[test]
    fn a_key_aws_lc_refuses_is_refused_when_read() {
        // An RSA public exponent of 1 is no key.
        let mut n = vec![0u8];
        n.extend(std::iter::repeat_n(0xc5, 256));
        let body = [der(0x02, &n), der(0x02, &[1])].concat();
        let encoded = base64::engine::general_purpose::STANDARD.encode(der(0x30, &body));
        let pem =
            format!("-----BEGIN RSA PUBLIC KEY-----\n{encoded}\n-----END RSA PUBLIC KEY-----\n");
        let Err(TokenConfigError::Key { problem, .. }) =
            static_key(Algorithm::RS256, pem.as_bytes(), None)
        else {
            panic!("an RSA key with e = 1 was accepted");
        };
        assert!(problem.contains("cannot verify RS256"), "{problem}");
    }

    /// The eight points of small order on Ed25519's curve, as public keys (RFC 8032
    /// encoding): the identity, the point of order 2, two of order 4, four of order 8.
    const SMALL_ORDER: [&str; 8] = [
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    ];

    #[test]
    fn an_ed25519_key_of_small_order_verifies_no_forgery_and_is_refused_when_read() {
        use aws_lc_rs::signature::{UnparsedPublicKey, ED25519};
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // R the identity, S zero: for a key A of order n, [S]B = R + [k]A holds whenever n
        // divides k = SHA-512(R, A, message), for one message in n.
        let mut forged = [0u8; 64];
        forged[0] = 1;
        for x in SMALL_ORDER {
            let x = hex::decode(x).unwrap();
            // What the check guards against: aws-lc alone takes the forgery, for some message.
            let message = (0..64)
                .map(|i| format!("message {i}"))
                .find(|m| {
                    UnparsedPublicKey::new(&ED25519, &x)
                        .verify(m.as_bytes(), &forged)
                        .is_ok()
                })
                .unwrap_or_else(|| panic!("{} is no key of small order", hex::encode(&x)));
            let key = DecodingKey::from_ed_components(&b64.encode(&x)).unwrap();
            assert!(
                !verifies_once(&key, Algorithm::EdDSA, message.as_bytes(), &forged),
                "{}",
                hex::encode(&x)
            );
            let (jwks_key, problem) = VerifyKey::new(None, &key, &[Algorithm::EdDSA]);
            assert!(
                problem
                    .as_deref()
                    .is_some_and(|p| p.contains("small order")),
                "{problem:?}"
            );
            let signature = b64.encode(forged);
            assert!(!jwks_key.verifies(Algorithm::EdDSA, message.as_bytes(), &signature));
            // As a static key: refused when the inspector is built.
            let spki = [hex::decode("302a300506032b6570032100").unwrap(), x.clone()].concat();
            let Err(TokenConfigError::Key { problem, .. }) =
                static_key(Algorithm::EdDSA, pem("PUBLIC KEY", &spki).as_bytes(), None)
            else {
                panic!("a key of small order was accepted: {}", hex::encode(&x));
            };
            assert!(problem.contains("small order"), "{problem}");
        }
        // A key that is no point of the curve verifies nothing either.
        let off_curve = (2u8..)
            .map(|y| {
                let mut x = [0u8; 32];
                x[0] = y;
                x
            })
            .find(|x| ed25519_dalek::VerifyingKey::from_bytes(x).is_err())
            .unwrap();
        let key = DecodingKey::from_ed_components(&b64.encode(off_curve)).unwrap();
        assert!(Check::new(Algorithm::EdDSA, &key).is_err());
    }

    /// A PEM block of `der`.
    fn pem(label: &str, der: &[u8]) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN {label}-----\n{encoded}\n-----END {label}-----\n")
    }

    /// Spellings of `signature` (base64url) that a JWS may carry: itself, padded, in the
    /// other alphabet, one character short or long, its last character changed (some only
    /// in bits no byte uses), too long for any key, and none.
    fn spellings(signature: &str) -> Vec<String> {
        let mut spellings = vec![
            signature.to_owned(),
            format!("{signature}="),
            format!("{signature}=="),
            signature.replace('-', "+").replace('_', "/"),
            signature[..signature.len() - 1].to_owned(),
            format!("{signature}A"),
            format!("{signature}AA"),
            format!("{signature}AAAA"),
            URL_SAFE_NO_PAD.encode([0u8; LONGEST_SIGNATURE + 1]),
            URL_SAFE_NO_PAD.encode([0u8; LONGEST_SIGNATURE]),
            String::new(),
        ];
        for last in ['A', 'B', 'E', 'Q', 'g', 'w', '_'] {
            let mut changed = signature[..signature.len() - 1].to_owned();
            changed.push(last);
            spellings.push(changed);
        }
        spellings
    }

    #[test]
    fn keys_verify_as_jsonwebtoken_crypto_verify_did() {
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
        use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
        use Algorithm::*;
        let rng = SystemRandom::new();
        let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";
        // Each key, as each way it is read, with its signatures of `message`.
        type Signatures = Vec<(Algorithm, Vec<u8>)>;
        let mut keys: Vec<(&str, DecodingKey, Signatures)> = Vec::new();
        for size in [KeySize::Rsa2048, KeySize::Rsa4096] {
            let pair = RsaKeyPair::generate(size).unwrap();
            let sign = |padding: &'static dyn signature::RsaEncoding| {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, message, &mut out).unwrap();
                out
            };
            let signatures = vec![
                (RS256, sign(&signature::RSA_PKCS1_SHA256)),
                (RS384, sign(&signature::RSA_PKCS1_SHA384)),
                (RS512, sign(&signature::RSA_PKCS1_SHA512)),
                (PS256, sign(&signature::RSA_PSS_SHA256)),
                (PS384, sign(&signature::RSA_PSS_SHA384)),
                (PS512, sign(&signature::RSA_PSS_SHA512)),
            ];
            let pkcs1 = pair.public_key().as_ref().to_vec();
            let spki = pair.public_key().as_der().unwrap();
            let parts = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            let mut padded_n = vec![0, 0];
            padded_n.extend(&parts.n);
            let mut padded_e = vec![0];
            padded_e.extend(&parts.e);
            for (how, key) in [
                ("PKCS#1 PEM", pem("RSA PUBLIC KEY", &pkcs1)),
                ("SPKI PEM", pem("PUBLIC KEY", spki.as_ref())),
            ] {
                let key = DecodingKey::from_rsa_pem(key.as_bytes()).unwrap();
                keys.push((how, key, signatures.clone()));
            }
            for (how, n, e) in [
                ("JWK", &parts.n, &parts.e),
                ("JWK with leading zero bytes", &padded_n, &padded_e),
            ] {
                let key = DecodingKey::from_rsa_raw_components(n, e);
                keys.push((how, key, signatures.clone()));
            }
        }
        for (alg, signing) in [
            (ES256, &signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            (ES384, &signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        ] {
            let pair = EcdsaKeyPair::generate(signing).unwrap();
            let signatures = vec![(alg, pair.sign(&rng, message).unwrap().as_ref().to_vec())];
            let point = &pair.public_key().as_ref()[1..];
            let (x, y) = point.split_at(point.len() / 2);
            let jwk = DecodingKey::from_ec_components(
                &URL_SAFE_NO_PAD.encode(x),
                &URL_SAFE_NO_PAD.encode(y),
            )
            .unwrap();
            let spki = pair.public_key().as_der().unwrap();
            let from_pem = DecodingKey::from_ec_pem(pem("PUBLIC KEY", spki.as_ref()).as_bytes());
            keys.push(("EC JWK", jwk, signatures.clone()));
            keys.push(("EC PEM", from_pem.unwrap(), signatures));
        }
        let pair = Ed25519KeyPair::generate().unwrap();
        let signatures = vec![(EdDSA, pair.sign(message).as_ref().to_vec())];
        let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let spki = pair.public_key().as_der().unwrap();
        let from_pem = DecodingKey::from_ed_pem(pem("PUBLIC KEY", spki.as_ref()).as_bytes());
        keys.push((
            "Ed25519 JWK",
            DecodingKey::from_ed_components(&x).unwrap(),
            signatures.clone(),
        ));
        keys.push(("Ed25519 PEM", from_pem.unwrap(), signatures));
        let secret = b"a-32-byte-long-secret-for-hs256!";
        let tag = |alg| {
            hmac::sign(&hmac::Key::new(alg, secret), message)
                .as_ref()
                .to_vec()
        };
        let signatures = vec![
            (HS256, tag(hmac::HMAC_SHA256)),
            (HS384, tag(hmac::HMAC_SHA384)),
            (HS512, tag(hmac::HMAC_SHA512)),
        ];
        keys.push(("HMAC", DecodingKey::from_secret(secret), signatures));

        let every = [
            HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
        ];
        for (how, key, signatures) in &keys {
            // Listed for every algorithm: those of other families verify nothing.
            let (ready, _) = VerifyKey::new(None, key, &every);
            for (signed_with, signature) in signatures {
                for spelling in spellings(&URL_SAFE_NO_PAD.encode(signature)) {
                    for alg in every {
                        let before = key.family() == alg.family()
                            && jsonwebtoken::crypto::verify(&spelling, message, key, alg)
                                .unwrap_or(false);
                        assert_eq!(
                            ready.verifies(alg, message, &spelling),
                            before,
                            "{how} {alg:?} (signed {signed_with:?}): {spelling}"
                        );
                        if spelling == URL_SAFE_NO_PAD.encode(signature) {
                            // aws-lc refuses a modulus or exponent with leading zero bytes
                            // (not the JWK spelling): then as now, such a key verifies nothing.
                            let refused = how.contains("leading zero");
                            assert_eq!(before, alg == *signed_with && !refused, "{how} {alg:?}");
                        }
                    }
                }
            }
        }
    }

    /// An Ed25519 public key that verifies (not of small order), base64url.
    fn ed25519_x() -> String {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        URL_SAFE_NO_PAD.encode(Ed25519KeyPair::generate().unwrap().public_key().as_ref())
    }

    #[test]
    fn a_jwks_okp_key_of_another_curve_than_ed25519_is_skipped() {
        // X25519 and X448 keys agree on keys (ECDH-ES), Ed448 is not verified here, and an
        // OKP key naming a curve of EC keys is no key of any kind: none verifies EdDSA
        // tokens, whatever its `x`, and a good key beside them still does.
        let x = ed25519_x();
        for crv in ["X25519", "X448", "Ed448", "P-256", "P-384", "P-521"] {
            for alg in ["", r#""alg":"EdDSA","#] {
                let jwks = format!(
                    r#"{{"keys":[{{"kty":"OKP","kid":"other",{alg}"crv":"{crv}","x":"{x}"}},
                        {{"kty":"OKP","kid":"good","crv":"Ed25519","x":"{x}"}}]}}"#
                );
                let set = KeySet::from_jwks(&jwks).unwrap();
                assert!(!set.has_kid("other"), "{crv} {alg}");
                assert_eq!(
                    set.candidates(None, Algorithm::EdDSA).count(),
                    1,
                    "{crv} {alg}"
                );
                assert!(set.keys[0].usable());
            }
        }
    }

    #[test]
    fn a_jwks_key_verifies_only_the_signing_algorithm_its_alg_names() {
        // RFC 7517 §4.4: `alg` is the algorithm the key is meant for. A key for key agreement,
        // key wrapping or direct encryption (RFC 7518 §4.1), or for an algorithm not known
        // here, is no signature key of its type's algorithms.
        let x = ed25519_x();
        let p256 = {
            use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
            let point = &pair.public_key().as_ref()[1..];
            let (x, y) = point.split_at(32);
            format!(
                r#""kty":"EC","crv":"P-256","x":"{}","y":"{}""#,
                URL_SAFE_NO_PAD.encode(x),
                URL_SAFE_NO_PAD.encode(y)
            )
        };
        let okp = format!(r#""kty":"OKP","crv":"Ed25519","x":"{x}""#);
        let oct = format!(
            r#""kty":"oct","k":"{}""#,
            URL_SAFE_NO_PAD.encode([b'k'; 32])
        );
        let rsa = format!(
            r#""kty":"RSA","n":"{}","e":"AQAB""#,
            URL_SAFE_NO_PAD.encode(vec![0xc5u8; 256])
        );
        let skipped = [
            (&p256, "ECDH-ES"),
            (&p256, "ECDH-ES+A128KW"),
            (&p256, "ECDH-ES+A192KW"),
            (&p256, "ECDH-ES+A256KW"),
            (&p256, "ES512"),
            (&p256, "ES256K"),
            (&okp, "ECDH-ES"),
            (&okp, "ECDH-ES+A256KW"),
            (&okp, "Ed448"),
            (&oct, "A128KW"),
            (&oct, "A192KW"),
            (&oct, "A256KW"),
            (&oct, "A128GCMKW"),
            (&oct, "A192GCMKW"),
            (&oct, "A256GCMKW"),
            (&oct, "dir"),
            (&oct, "PBES2-HS256+A128KW"),
            (&oct, "PBES2-HS384+A192KW"),
            (&oct, "PBES2-HS512+A256KW"),
            (&oct, "A128CBC-HS256"),
            (&oct, "none"),
            (&rsa, "RSA-OAEP-384"),
            (&rsa, "RS1"),
            (&rsa, ""),
        ];
        for (params, alg) in skipped {
            let jwks = format!(
                r#"{{"keys":[{{{params},"kid":"other","alg":"{alg}"}},
                    {{{okp},"kid":"good","alg":"EdDSA"}}]}}"#
            );
            let set = KeySet::from_jwks(&jwks).unwrap();
            assert!(!set.has_kid("other"), "{alg}: {params}");
            assert!(set.has_kid("good"), "{alg}");
        }
        // `use: enc` is an encryption key whatever its `alg`.
        for alg in ["", r#","alg":"ES256""#] {
            let jwks = format!(
                r#"{{"keys":[{{{p256},"kid":"other","use":"enc"{alg}}},{{{okp},"kid":"good"}}]}}"#
            );
            assert!(!KeySet::from_jwks(&jwks).unwrap().has_kid("other"), "{alg}");
        }
        // RFC 9864's fully specified `Ed25519` is EdDSA with an Ed25519 key.
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let pair = Ed25519KeyPair::generate().unwrap();
        let jwks = format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","x":"{}","kid":"k","alg":"Ed25519"}}]}}"#,
            URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())
        );
        let set = KeySet::from_jwks(&jwks).unwrap();
        assert_eq!(
            set.keys[0].algorithms().collect::<Vec<_>>(),
            [Algorithm::EdDSA]
        );
        let signature = URL_SAFE_NO_PAD.encode(pair.sign(b"header.payload"));
        assert!(set.keys[0].verifies(Algorithm::EdDSA, b"header.payload", &signature));
        // A key without `alg` keeps its type's algorithms; one with a signing `alg`, that one.
        use Algorithm::*;
        for (params, alg, algorithms) in [
            (&p256, "", vec![ES256]),
            (&p256, r#","alg":"ES256""#, vec![ES256]),
            (&okp, "", vec![EdDSA]),
            (&okp, r#","alg":"EdDSA""#, vec![EdDSA]),
            (&oct, "", vec![HS256, HS384, HS512]),
            (&oct, r#","alg":"HS384""#, vec![HS384]),
            (&rsa, r#","alg":"PS512""#, vec![PS512]),
        ] {
            let jwks = format!(r#"{{"keys":[{{{params},"kid":"k"{alg}}}]}}"#);
            let set = KeySet::from_jwks(&jwks).unwrap();
            assert_eq!(
                set.keys[0].algorithms().collect::<Vec<_>>(),
                algorithms,
                "{alg}: {params}"
            );
        }
    }

    /// `count` RSA-2048 key pairs, and a JWKS document of their public keys, with `kid`s
    /// `k0`, `k1`, ... or without.
    fn rsa_pairs(count: usize, kids: bool) -> (Vec<signature::RsaKeyPair>, String) {
        use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
        let pairs: Vec<_> = (0..count)
            .map(|_| RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap())
            .collect();
        let keys: Vec<String> = pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| {
                let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                let kid = if kids {
                    format!(r#""kid":"k{i}","#)
                } else {
                    String::new()
                };
                format!(
                    r#"{{"kty":"RSA",{kid}"alg":"RS256","n":"{}","e":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(&parts.n),
                    URL_SAFE_NO_PAD.encode(&parts.e)
                )
            })
            .collect();
        (pairs, format!(r#"{{"keys":[{}]}}"#, keys.join(",")))
    }

    fn sign_rs256(pair: &signature::RsaKeyPair, message: &[u8]) -> String {
        let mut out = vec![0; pair.public_modulus_len()];
        pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            message,
            &mut out,
        )
        .unwrap();
        URL_SAFE_NO_PAD.encode(out)
    }

    #[test]
    fn a_token_without_kid_is_checked_against_a_few_keys_only() {
        // A forged token naming no key costs a signature check per candidate: with a JWKS of
        // twenty RS256 keys, twenty RSA checks, for a token anyone can write.
        let n = URL_SAFE_NO_PAD.encode(vec![0xc5u8; 256]);
        let keys: Vec<String> = (0..20)
            .map(|i| format!(r#"{{"kty":"RSA","kid":"k{i}","alg":"RS256","n":"{n}","e":"AQAB"}}"#))
            .collect();
        let set = KeySet::from_jwks(&format!(r#"{{"keys":[{}]}}"#, keys.join(","))).unwrap();
        let tried = set.candidates(None, Algorithm::RS256).count();
        assert!(
            tried <= MAX_UNNAMED_CANDIDATES,
            "{tried} keys tried for a token without kid"
        );
        // Keys without `kid`, for a token naming a key none has, are bounded the same way.
        let unnamed = keys
            .iter()
            .map(|key| key.replace(r#""kid":"k"#, r#""x-kid":"k"#));
        let unnamed: Vec<String> = unnamed.collect();
        let set = KeySet::from_jwks(&format!(r#"{{"keys":[{}]}}"#, unnamed.join(","))).unwrap();
        let tried = set.candidates(Some("elsewhere"), Algorithm::RS256).count();
        assert!(
            tried <= MAX_UNNAMED_CANDIDATES,
            "{tried} keys tried for a kid no key has"
        );
        let tried = set.candidates(None, Algorithm::RS256).count();
        assert!(
            tried <= MAX_UNNAMED_CANDIDATES,
            "{tried} keys tried for a token without kid"
        );
    }

    #[test]
    fn a_token_without_kid_verifies_against_a_small_key_set() {
        // One or two keys (a rotation) and tokens that name none: each key verifies its own.
        let message = b"header.payload";
        for kids in [true, false] {
            for count in [1, 2, 4] {
                let (pairs, jwks) = rsa_pairs(count, kids);
                let set = KeySet::from_jwks(&jwks).unwrap();
                for pair in &pairs {
                    let signature = sign_rs256(pair, message);
                    assert!(
                        set.candidates(None, Algorithm::RS256)
                            .any(|key| key.verifies(Algorithm::RS256, message, &signature)),
                        "{count} keys, kids: {kids}"
                    );
                }
            }
        }
        // Past the bound, a token that names its key still finds it.
        let (pairs, jwks) = rsa_pairs(8, true);
        let set = KeySet::from_jwks(&jwks).unwrap();
        for (i, pair) in pairs.iter().enumerate() {
            let signature = sign_rs256(pair, message);
            let kid = format!("k{i}");
            assert!(set
                .candidates(Some(&kid), Algorithm::RS256)
                .any(|key| key.verifies(Algorithm::RS256, message, &signature)));
        }
    }
}
