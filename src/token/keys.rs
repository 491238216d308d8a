//! Verification keys: static PEM/secret keys and JWKS documents.

use std::ops::RangeInclusive;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};

use super::TokenConfigError;

/// The sizes of RSA key that tokens are verified with, in bits. aws-lc refuses fewer than 2048
/// bits at every check, so such a key is refused when it is read rather than reported as a
/// bad signature on every token; more than 4096 (the bound for DPoP proof keys too) only
/// makes each check cost more.
const RSA_BITS: RangeInclusive<usize> = 2048..=4096;

/// One key and the algorithms it may verify.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) key: DecodingKey,
    pub(crate) algorithms: Vec<Algorithm>,
}

/// The keys in force at one moment.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    pub(crate) keys: Vec<VerifyKey>,
}

impl KeySet {
    /// Keys a token with this `kid` and `alg` may have been signed with. A `kid` selects
    /// keys with that id; without one, every key that allows the algorithm is a candidate.
    pub(crate) fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyKey> + 'a {
        self.keys.iter().filter(move |k| {
            k.algorithms.contains(&alg)
                && match (kid, &k.kid) {
                    (Some(kid), Some(key_id)) => kid == key_id,
                    (Some(_), None) => true,
                    (None, _) => true,
                }
        })
    }

    /// True when some key has this id (whatever its algorithm).
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// Parses a JWKS document. Keys for encryption and key types this crate cannot verify
    /// with are skipped; a document with no usable key is an error.
    pub(crate) fn from_jwks(json: &str) -> Result<KeySet, TokenConfigError> {
        let set: JwkSet = serde_json::from_str(json)
            .map_err(|e| TokenConfigError::Jwks(format!("not a JWKS document: {e}")))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let algorithms = match jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok())
            {
                Some(alg) => vec![alg],
                None => family_algorithms(&jwk.algorithm),
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
            keys.push(VerifyKey {
                kid: jwk.common.key_id.clone(),
                key,
                algorithms,
            });
        }
        if keys.is_empty() && !set.keys.is_empty() {
            return Err(TokenConfigError::Jwks(
                "the JWKS document has no key usable for signature verification".into(),
            ));
        }
        Ok(KeySet { keys })
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
            if material.len() < 32 {
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
    Ok(VerifyKey {
        kid: kid.map(str::to_owned),
        key,
        algorithms: vec![alg],
    })
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
}
