//! A client's DPoP key (RFC 9449): signs a fresh proof for each request.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use pkcs8::{EncodePrivateKey, LineEnding};
use serde_json::json;
use sha2::{Digest, Sha256};

pub struct DpopKey {
    key: EncodingKey,
    jwk: jsonwebtoken::jwk::Jwk,
}

impl DpopKey {
    /// A new P-256 key (ES256).
    pub fn generate() -> Result<DpopKey, Box<dyn std::error::Error>> {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
            &secret.public_key(),
            false,
        );
        let (x, y) = (point.x().ok_or("no x")?, point.y().ok_or("no y")?);
        let jwk = serde_json::from_value(json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }))?;
        let pem = secret.to_pkcs8_pem(LineEnding::LF)?;
        Ok(DpopKey {
            key: EncodingKey::from_ec_pem(pem.as_bytes())?,
            jwk,
        })
    }

    /// A proof for `method` on `url`, bound to `access_token` when one goes with it.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("dpop+jwt".to_owned());
        header.jwk = Some(self.jwk.clone());
        let mut claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": method,
            "htu": url,
            "iat": crate::auth_server::now(),
        });
        if let Some(token) = access_token {
            claims["ath"] = URL_SAFE_NO_PAD.encode(Sha256::digest(token)).into();
        }
        encode(&header, &claims, &self.key).expect("ES256 signing cannot fail")
    }
}
