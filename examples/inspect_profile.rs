//! What one cache miss of the token inspector costs, in instructions: N distinct HS256
//! tokens through an inspector with a one-entry cache, so that every inspection decodes,
//! verifies and checks its token (HS256 keeps the signature itself cheap, so the work
//! around it shows). Run under callgrind at two sizes; the difference over the extra
//! tokens is the cost of one miss (making the tokens included, the same in every build):
//!
//! ```text
//! cargo build --release --example inspect_profile
//! for n in 1000 2000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/inspect_profile $n 2>&1 | grep Collected
//! done
//! ```

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oauth_audit::token::{TokenInspector, Verdict};

const SECRET: &[u8] = b"a-32-byte-long-secret-for-hs256!";

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("a number of tokens"))
        .unwrap_or(1000);
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            let claims = serde_json::json!({
                "iss": "https://issuer.example", "aud": "api", "sub": format!("user-{i}"),
                "client_id": "orders-web", "scope": "orders:read profile",
                "jti": format!("j-{i}"), "exp": 4_000_000_000u64,
            });
            let signing = EncodingKey::from_secret(SECRET);
            encode(&Header::new(Algorithm::HS256), &claims, &signing).expect("signs")
        })
        .collect();
    let inspector = TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, SECRET)
        .issuer(["https://issuer.example"])
        .audience(["api"])
        .cache_capacity(1)
        .build()
        .expect("inspector");
    let valid = tokens
        .iter()
        .filter(|token| inspector.inspect(token).verdict == Verdict::Valid)
        .count();
    assert_eq!(valid, n, "every token verifies");
    assert_eq!(
        inspector.verifications(),
        n as u64,
        "every inspection was a miss"
    );
}
