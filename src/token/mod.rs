//! Bearer token inspection (minimal interim version; replaced by the full module).
#![allow(missing_docs)]

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenFingerprint([u8; 16]);

impl TokenFingerprint {
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        TokenFingerprint(out)
    }
}

impl std::fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}
impl std::fmt::Debug for TokenFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
impl Serialize for TokenFingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    Jwt,
    Opaque,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Valid,
    Expired,
    NotYetValid,
    BadSignature,
    UnknownKey,
    WrongIssuer,
    WrongAudience,
    Malformed,
    Unverified,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Expired => "expired",
            Verdict::NotYetValid => "not_yet_valid",
            Verdict::BadSignature => "bad_signature",
            Verdict::UnknownKey => "unknown_key",
            Verdict::WrongIssuer => "wrong_issuer",
            Verdict::WrongAudience => "wrong_audience",
            Verdict::Malformed => "malformed",
            Verdict::Unverified => "unverified",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenClaims {
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub jti: Option<String>,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub issued_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub not_before: Option<i64>,
    pub actor: Option<String>,
}

#[derive(Clone, Debug)]
pub struct InspectedToken {
    pub fingerprint: TokenFingerprint,
    pub format: TokenFormat,
    pub verdict: Verdict,
    pub claims: TokenClaims,
}

#[derive(Clone, Debug, Default)]
pub struct TokenInspector {
    _keys: (),
}

impl TokenInspector {
    pub fn inspect(&self, raw: &str) -> Arc<InspectedToken> {
        use base64::Engine;
        let fingerprint = TokenFingerprint::of(raw);
        let parts: Vec<&str> = raw.split('.').collect();
        if parts.len() != 3 {
            return Arc::new(InspectedToken {
                fingerprint,
                format: TokenFormat::Opaque,
                verdict: Verdict::Unverified,
                claims: TokenClaims::default(),
            });
        }
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        let Some(p) = payload else {
            return Arc::new(InspectedToken {
                fingerprint,
                format: TokenFormat::Jwt,
                verdict: Verdict::Malformed,
                claims: TokenClaims::default(),
            });
        };
        let s = |k: &str| p.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let claims = TokenClaims {
            subject: s("sub"),
            client_id: s("client_id").or_else(|| s("azp")),
            scopes: s("scope")
                .map(|x| x.split(' ').map(str::to_owned).collect())
                .unwrap_or_default(),
            jti: s("jti"),
            issuer: s("iss"),
            audience: s("aud").into_iter().collect(),
            issued_at: p.get("iat").and_then(|v| v.as_i64()),
            expires_at: p.get("exp").and_then(|v| v.as_i64()),
            not_before: None,
            actor: None,
        };
        Arc::new(InspectedToken {
            fingerprint,
            format: TokenFormat::Jwt,
            verdict: Verdict::Unverified,
            claims,
        })
    }
}

pub enum BearerCredential<'a> {
    Absent,
    Bearer(&'a str),
    Malformed(&'static str),
    OtherScheme,
}

pub fn bearer_from_headers(headers: &http::HeaderMap) -> BearerCredential<'_> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return BearerCredential::Absent;
    };
    let Ok(value) = value.to_str() else {
        return BearerCredential::Malformed("not ascii");
    };
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
            if token.is_empty() {
                BearerCredential::Malformed("empty")
            } else {
                BearerCredential::Bearer(token)
            }
        }
        _ => BearerCredential::OtherScheme,
    }
}
