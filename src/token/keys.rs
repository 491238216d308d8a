//! Verification keys: static PEM/secret keys and JWKS documents.

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::TokenConfigError;

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
            DecodingKey::from_rsa_pem(material).map_err(bad)?
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
