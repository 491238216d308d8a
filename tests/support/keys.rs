//! Real signing keys generated per test run.

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;

pub struct KeyPair {
    pub alg: Algorithm,
    pub kid: String,
    pub private_pem: String,
    pub public_pem: String,
    /// The public key as a JWK (RSA only).
    pub jwk: Option<serde_json::Value>,
}

impl KeyPair {
    pub fn rsa(kid: &str) -> KeyPair {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let public = private.to_public_key();
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        KeyPair {
            alg: Algorithm::RS256,
            kid: kid.to_owned(),
            private_pem: private.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public_pem: public.to_public_key_pem(LineEnding::LF).unwrap(),
            jwk: Some(serde_json::json!({
                "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                "n": b64(public.n().to_bytes_be()), "e": b64(public.e().to_bytes_be()),
            })),
        }
    }

    pub fn es256(kid: &str) -> KeyPair {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        KeyPair {
            alg: Algorithm::ES256,
            kid: kid.to_owned(),
            private_pem: secret.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public_pem: secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            jwk: None,
        }
    }

    pub fn ed25519(kid: &str) -> KeyPair {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        KeyPair {
            alg: Algorithm::EdDSA,
            kid: kid.to_owned(),
            private_pem: signing.to_pkcs8_pem(LineEnding::LF).unwrap().to_string(),
            public_pem: signing
                .verifying_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap(),
            jwk: None,
        }
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let key = match self.alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(self.private_pem.as_bytes()),
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.private_pem.as_bytes()),
            Algorithm::EdDSA => EncodingKey::from_ed_pem(self.private_pem.as_bytes()),
            other => panic!("no test key for {other:?}"),
        }
        .unwrap();
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &key).unwrap()
    }
}

pub fn jwks(keys: &[&KeyPair]) -> String {
    serde_json::json!({ "keys": keys.iter().filter_map(|k| k.jwk.clone()).collect::<Vec<_>>() })
        .to_string()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The HMAC secret of tests that sign HS256 tokens themselves (32 bytes, as RFC 7518 asks).
pub const HS256_SECRET: &[u8] = b"a-32-byte-long-secret-for-hs256!";

/// `claims` as an HS256 JWT signed with [`HS256_SECRET`].
pub fn hs256(claims: &serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(HS256_SECRET),
    )
    .unwrap()
}
