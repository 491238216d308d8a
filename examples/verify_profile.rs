//! Cold token inspections in a loop, for an instruction counter: every inspection misses the
//! one-slot cache, so an RS256 token pays one signature verification each time.
//! docs/benchmarks.md ("Signature verification") runs it under callgrind with N and 2N
//! inspections; the difference divided by N is the cost of one, set-up (key generation,
//! signing) excluded.
//!
//! ```text
//! cargo run --release --example verify_profile -- VARIANT INSPECTIONS
//! ```
//!
//! Variants: `rs256` (a 2048-bit RSA key, PKCS #1 v1.5 with SHA-256), `hs256` (the same
//! claims under HMAC-SHA256: everything but the public-key operation).

use std::hint::black_box;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oauth_audit::token::{TokenInspector, Verdict};
use pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use rand::SeedableRng;

const SECRET: &[u8] = b"verify-profile-secret-of-32-bytes!!";

fn main() {
    let mut args = std::env::args().skip(1);
    let variant = args.next().unwrap_or_else(|| "rs256".into());
    let inspections: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let builder = TokenInspector::builder()
        .issuer(["https://issuer.profile"])
        .audience(["profile-api"])
        .cache_capacity(1);
    let (builder, alg, signing) = match variant.as_str() {
        "rs256" => {
            // A seeded generator: the same key, so the same instruction count, on every run.
            let mut rng = rand::rngs::StdRng::seed_from_u64(18);
            let private = rsa::RsaPrivateKey::new(&mut rng, 2048).expect("RSA key");
            let public = private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("pem");
            let private = private.to_pkcs8_pem(LineEnding::LF).expect("pem");
            (
                builder.rsa_pem(Algorithm::RS256, public.as_bytes(), None),
                Algorithm::RS256,
                EncodingKey::from_rsa_pem(private.as_bytes()).expect("encoding key"),
            )
        }
        "hs256" => (
            builder.hmac_secret(Algorithm::HS256, SECRET),
            Algorithm::HS256,
            EncodingKey::from_secret(SECRET),
        ),
        other => panic!("unknown variant {other}"),
    };
    let inspector = builder.build().expect("inspector");
    let tokens: Vec<String> = (0..64)
        .map(|i| {
            let claims = serde_json::json!({"iss": "https://issuer.profile", "aud": "profile-api",
                "sub": format!("user-{i}"), "client_id": "profile-client",
                "scope": "orders:read profile", "jti": format!("jti-{i}"), "exp": 4_000_000_000u64});
            encode(&Header::new(alg), &claims, &signing).expect("sign")
        })
        .collect();
    for i in 0..inspections {
        let inspection = inspector.inspect(black_box(&tokens[i % tokens.len()]));
        black_box(inspection);
    }
    // Every inspection must have verified: a wrong key or claim would measure a rejection.
    let last = inspector.inspect(&tokens[inspections % tokens.len()]);
    assert_eq!(last.verdict, Verdict::Valid, "the token does not verify");
}
