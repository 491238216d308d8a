//! What checking one DPoP proof (RFC 9449) costs, in instructions: N proofs of one ES256 key,
//! each new (as every request carries a new proof), checked against a protected request
//! with its access token. Run under callgrind at two sizes; the difference over the extra
//! proofs is the cost of one check (making the proofs included, the same in every build),
//! and `verify` mode checks only the signatures, with aws-lc directly, for what the rest of
//! the check adds:
//!
//! ```text
//! cargo build --release --example dpop_profile
//! for mode in check verify; do for n in 500 1000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/dpop_profile $mode $n 2>&1 | grep Collected
//! done; done
//! ```

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use oauth_audit::dpop::{DpopVerifier, ProofOutcome};
use sha2::{Digest, Sha256};

const ACCESS_TOKEN: &str = "an-opaque-access-token-of-forty-three-chars";
const URL: &str = "https://api.example/orders?page=2";

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "check".into());
    let n: usize = args
        .next()
        .map(|n| n.parse().expect("a number of proofs"))
        .unwrap_or(500);
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("a P-256 key");
    let point = &key.public_key().as_ref()[1..];
    let (x, y) = point.split_at(32);
    let header = serde_json::json!({
        "typ": "dpop+jwt", "alg": "ES256",
        "jwk": {"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)},
    });
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(ACCESS_TOKEN));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let proofs: Vec<String> = (0..n)
        .map(|i| {
            let claims = serde_json::json!({
                "jti": format!("proof-{i}"), "htm": "GET", "htu": "https://api.example/orders",
                "iat": now, "ath": ath,
            });
            let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
            let signature = key.sign(&rng, input.as_bytes()).expect("signs");
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        })
        .collect();
    let verifier = DpopVerifier::default();
    let method = http::Method::GET;
    let uri: http::Uri = URL.parse().expect("a URI");
    let public = key.public_key().as_ref().to_vec();
    for proof in &proofs {
        match mode.as_str() {
            "check" => {
                let mut headers = http::HeaderMap::new();
                headers.insert("dpop", proof.parse().expect("a header value"));
                let check = verifier.check(&method, &uri, &headers, Some(ACCESS_TOKEN));
                assert_eq!(check.outcome, ProofOutcome::Valid);
            }
            "verify" => {
                let (input, signature) = proof.rsplit_once('.').expect("three parts");
                let signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
                    .verify(input.as_bytes(), &signature)
                    .expect("verifies");
            }
            other => panic!("unknown mode {other}: check or verify"),
        }
    }
}
