//! A client's DPoP key (RFC 9449) for tests and the demo: signs proofs with its public key in
//! their header, and knows its RFC 7638 thumbprint (computed here from the RFC's rules, not
//! by the crate under test).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub struct DpopKey {
    alg: Algorithm,
    key: EncodingKey,
    pub jwk: Value,
}

impl DpopKey {
    /// A new P-256 key (ES256).
    pub fn es256() -> DpopKey {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let pem = secret
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 of a new key");
        DpopKey {
            alg: Algorithm::ES256,
            key: EncodingKey::from_ec_pem(pem.as_bytes()).expect("a P-256 key"),
            jwk: json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(point.x().expect("an uncompressed point")),
                "y": URL_SAFE_NO_PAD.encode(point.y().expect("an uncompressed point")),
            }),
        }
    }

    /// A new Ed25519 key (EdDSA).
    pub fn ed25519() -> DpopKey {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = signing
            .to_pkcs8_pem(LineEnding::LF)
            .expect("PKCS#8 of a new key");
        DpopKey {
            alg: Algorithm::EdDSA,
            key: EncodingKey::from_ed_pem(pem.as_bytes()).expect("an Ed25519 key"),
            jwk: json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
            }),
        }
    }

    /// RFC 7638: the required members, in lexicographic order, without whitespace.
    pub fn jkt(&self) -> String {
        let members: &[&str] = match self.jwk["kty"].as_str() {
            Some("EC") => &["crv", "kty", "x", "y"],
            Some("OKP") => &["crv", "kty", "x"],
            other => panic!("no thumbprint for {other:?}"),
        };
        let parts: Vec<String> = members
            .iter()
            .map(|m| format!("\"{m}\":\"{}\"", self.jwk[*m].as_str().unwrap_or_default()))
            .collect();
        URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{{{}}}", parts.join(","))))
    }

    /// A proof with these claims, `header_jwk` in its header and `typ`.
    pub fn sign(&self, claims: &Value, header_jwk: &Value, typ: &str) -> String {
        let mut header = Header::new(self.alg);
        header.typ = Some(typ.to_owned());
        header.jwk = Some(serde_json::from_value(header_jwk.clone()).expect("a public JWK"));
        encode(&header, claims, &self.key).expect("signing with a new key")
    }

    /// A JWT of `claims` with `kid` in its header (and no key): what an authorization server
    /// signs its access tokens with, its public half published in a JWKS.
    pub fn sign_with_kid(&self, claims: &Value, kid: &str) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        encode(&header, claims, &self.key).expect("signing with a new key")
    }

    /// A fresh proof for `method` on `url`, bound to `token` when one goes with it.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        self.sign(
            &proof_claims(method, url, token, now()),
            &self.jwk,
            "dpop+jwt",
        )
    }
}

/// A proof's claims: a new `jti`, `htm`, `htu`, `iat`, and `ath` when a token goes with it.
pub fn proof_claims(method: &str, url: &str, token: Option<&str>, iat: i64) -> Value {
    let mut claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "htm": method,
        "htu": url,
        "iat": iat,
    });
    if let Some(token) = token {
        claims["ath"] = URL_SAFE_NO_PAD.encode(Sha256::digest(token)).into();
    }
    claims
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
