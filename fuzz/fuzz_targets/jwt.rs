//! JWT decoding and verification on arbitrary strings, and on tokens signed with the right
//! key around arbitrary headers and claims.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use libfuzzer_sys::fuzz_target;
use oauth_audit::token::{TokenInspector, Verdict};

const SECRET: &[u8] = b"fuzzing-secret-of-a-reasonable-length";

fn inspector() -> &'static TokenInspector {
    static INSPECTOR: OnceLock<TokenInspector> = OnceLock::new();
    INSPECTOR.get_or_init(|| {
        TokenInspector::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .issuer(["https://issuer.example"])
            .audience(["api"])
            .cache_capacity(64)
            .build()
            .expect("inspector")
    })
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any text presented as a token.
    Raw(String),
    /// A correctly signed token with claims chosen by the fuzzer (as JSON text).
    Signed { kid: Option<String>, claims: String },
}

fuzz_target!(|input: Input| {
    let raw = match input {
        Input::Raw(raw) => raw,
        Input::Signed { kid, claims } => {
            let Ok(claims) = serde_json::from_str::<serde_json::Value>(&claims) else {
                return;
            };
            let mut header = Header::new(Algorithm::HS256);
            header.kid = kid;
            match jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(SECRET)) {
                Ok(token) => token,
                Err(_) => return,
            }
        }
    };
    let first = inspector().inspect(&raw);
    if first.verdict == Verdict::Valid {
        // Only a token of three parts can be valid.
        assert_eq!(raw.split('.').count(), 3);
    }
    // The cache answers as the first verification did (time may pass between the two).
    let again = inspector().inspect(&raw);
    assert_eq!(first.fingerprint, again.fingerprint);
    let timely = |v: Verdict| !matches!(v, Verdict::Expired | Verdict::NotYetValid);
    if timely(first.verdict) && timely(again.verdict) {
        assert_eq!(first.verdict, again.verdict);
    }
});
