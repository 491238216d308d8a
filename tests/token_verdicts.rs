//! Every verdict, with real keys generated for the run.

mod support;

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use oauth_audit::token::{TokenFingerprint, TokenFormat, TokenInspector, Verdict};
use serde_json::json;
use support::keys::{now, KeyPair};

const ISS: &str = "https://issuer.test";
const AUD: &str = "api";

fn claims(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"iss": ISS, "aud": AUD, "sub": "alice", "client_id": "web",
        "scope": "a b", "jti": "j1", "iat": now(), "exp": now() + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn inspector_for(keys: &[&KeyPair]) -> TokenInspector {
    let mut builder = TokenInspector::builder()
        .issuer([ISS])
        .audience([AUD])
        .leeway(Duration::from_secs(5));
    for k in keys {
        builder = match k.alg {
            Algorithm::RS256 => builder.rsa_pem(k.alg, k.public_pem.as_bytes(), Some(&k.kid)),
            Algorithm::ES256 => builder.ec_pem(k.alg, k.public_pem.as_bytes(), Some(&k.kid)),
            Algorithm::EdDSA => builder.ed_pem(k.public_pem.as_bytes(), Some(&k.kid)),
            _ => unreachable!(),
        };
    }
    builder.build().unwrap()
}

#[test]
fn every_verdict_with_real_keys() {
    let rsa = KeyPair::rsa("rsa-1");
    let ec = KeyPair::es256("ec-1");
    let ed = KeyPair::ed25519("ed-1");
    let inspector = inspector_for(&[&rsa, &ec, &ed]);
    let verdict = |token: &str| inspector.inspect(token).verdict;

    for key in [&rsa, &ec, &ed] {
        let token = key.sign(&claims(json!({})));
        let seen = inspector.inspect(&token);
        assert_eq!(seen.verdict, Verdict::Valid, "{:?}", key.alg);
        assert_eq!(seen.format, TokenFormat::Jwt);
        assert_eq!(seen.claims.subject.as_deref(), Some("alice"));
        assert_eq!(seen.claims.scopes, ["a", "b"]);
    }
    assert_eq!(
        verdict(&rsa.sign(&claims(json!({"exp": now() - 60})))),
        Verdict::Expired
    );
    assert_eq!(
        verdict(&rsa.sign(&claims(json!({"nbf": now() + 600})))),
        Verdict::NotYetValid
    );
    assert_eq!(
        verdict(&rsa.sign(&claims(json!({"iss": "https://evil"})))),
        Verdict::WrongIssuer
    );
    assert_eq!(
        verdict(&rsa.sign(&claims(json!({"aud": ["other"]})))),
        Verdict::WrongAudience
    );
    // Within the leeway an expired token is still valid.
    assert_eq!(
        verdict(&rsa.sign(&claims(json!({"exp": now() - 2})))),
        Verdict::Valid
    );

    // Signed by a key the inspector does not know, under a known key id: forged.
    let impostor = KeyPair::rsa("rsa-1");
    assert_eq!(
        verdict(&impostor.sign(&claims(json!({})))),
        Verdict::BadSignature
    );
    // Tampered payload: scope escalated after signing.
    let good = rsa.sign(&claims(json!({})));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(claims(json!({"scope": "admin"})).to_string());
    let tampered = parts.join(".");
    let seen = inspector.inspect(&tampered);
    assert_eq!(seen.verdict, Verdict::BadSignature);
    assert_eq!(
        seen.claims.scopes,
        ["admin"],
        "claims are kept for the record"
    );
    // A key id nobody has.
    let stranger = KeyPair::es256("who-is-this");
    assert_eq!(
        verdict(&stranger.sign(&claims(json!({})))),
        Verdict::UnknownKey
    );
    // alg: none.
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none"}"#),
        b64(&claims(json!({})).to_string())
    );
    assert_eq!(verdict(&none), Verdict::BadSignature);
    // Algorithm confusion: HS256 "signed" with the RSA public key as the secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused = encode(
        &header,
        &claims(json!({})),
        &EncodingKey::from_secret(rsa.public_pem.as_bytes()),
    )
    .unwrap();
    assert_eq!(verdict(&confused), Verdict::BadSignature);
    // A JOSE header with the wrong parts: a broken JWT.
    let header = rsa.sign(&claims(json!({})));
    let header = header.split('.').next().unwrap();
    assert_eq!(verdict(&format!("{header}.e30")), Verdict::Malformed);
    assert_eq!(verdict(&format!("{header}.e30.x.y.z")), Verdict::Malformed);
    assert_eq!(verdict(&format!("{header}.!.x")), Verdict::Malformed);
    // No JOSE header: not a JWT at all, whatever its dots (`ya29.` tokens are opaque).
    for dotted in ["a.b.c", "a.b", "ya29.a0AfB_byC3x"] {
        let seen = inspector.inspect(dotted);
        assert_eq!(seen.format, TokenFormat::Opaque, "{dotted}");
        assert_eq!(seen.verdict, Verdict::Unverified, "{dotted}");
    }
    let opaque = inspector.inspect("2YotnFZFEjr1zCsicMWpAA");
    assert_eq!(opaque.format, TokenFormat::Opaque);
    assert_eq!(opaque.verdict, Verdict::Unverified);
}

#[test]
fn without_keys_claims_are_read_but_unverified() {
    let key = KeyPair::es256("k");
    let seen = TokenInspector::default().inspect(&key.sign(&claims(json!({}))));
    assert_eq!(seen.verdict, Verdict::Unverified);
    assert_eq!(seen.claims.client_id.as_deref(), Some("web"));
}

#[test]
fn a_token_is_verified_once_and_expires_on_time() {
    let key = KeyPair::es256("k");
    let inspector = TokenInspector::builder()
        .ec_pem(Algorithm::ES256, key.public_pem.as_bytes(), Some("k"))
        .leeway(Duration::ZERO)
        .build()
        .unwrap();
    let token = key.sign(&json!({"sub": "alice", "exp": now() + 1}));
    for _ in 0..1000 {
        assert_eq!(inspector.inspect(&token).verdict, Verdict::Valid);
    }
    assert_eq!(inspector.verifications(), 1, "cached");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while inspector.inspect(&token).verdict == Verdict::Valid {
        assert!(std::time::Instant::now() < deadline, "never expired");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(inspector.inspect(&token).verdict, Verdict::Expired);
    assert_eq!(
        inspector.verifications(),
        1,
        "expiry needs no second verification"
    );
}

/// The cache is keyed by a keyed hash of the whole token: a token that differs from a
/// cached valid one in any byte (here its signature) is verified on its own, and a cache hit
/// still reports the token's own fingerprint.
#[test]
fn a_forged_token_never_gets_a_cached_verdict() {
    // Short tokens, tokens of 256 bytes to 8 KiB and longer ones are cache-keyed by different
    // functions (SipHash, AES of a GHASH, SipHash again): each is tried.
    for padding in [0, 500, 9_000] {
        let key = KeyPair::es256("k");
        let inspector = TokenInspector::builder()
            .ec_pem(Algorithm::ES256, key.public_pem.as_bytes(), Some("k"))
            .build()
            .unwrap();
        let claims = json!({"sub": "alice", "exp": now() + 600, "pad": "p".repeat(padding)});
        let token = key.sign(&claims);
        assert_eq!(inspector.inspect(&token).verdict, Verdict::Valid);
        let cached = inspector.inspect(&token);
        assert_eq!(cached.fingerprint, TokenFingerprint::of(&token));
        assert_eq!(inspector.verifications(), 1);

        let (signed, signature) = token.rsplit_once('.').unwrap();
        let mut forged_signature = signature.as_bytes().to_vec();
        forged_signature[10] = if forged_signature[10] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let forged = format!("{signed}.{}", String::from_utf8(forged_signature).unwrap());
        let seen = inspector.inspect(&forged);
        assert_eq!(seen.verdict, Verdict::BadSignature, "{} bytes", token.len());
        assert_eq!(seen.fingerprint, TokenFingerprint::of(&forged));
        assert_eq!(inspector.verifications(), 2);
        assert_eq!(inspector.inspect(&token).verdict, Verdict::Valid);
        assert_eq!(inspector.verifications(), 2);
    }
}

#[test]
fn configuration_errors_are_reported_at_build_time() {
    let err = TokenInspector::builder()
        .rsa_pem(Algorithm::RS256, b"not a pem", None)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("RS256"), "{err}");
    let err = TokenInspector::builder()
        .hmac_secret(Algorithm::HS256, b"short")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("32 bytes"), "{err}");
    let err = TokenInspector::builder()
        .jwks_json("{")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("JWKS"), "{err}");
    let err = TokenInspector::builder()
        .jwks_file("/nonexistent/jwks.json")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/jwks.json"), "{err}");
}

#[tokio::test]
async fn jwks_file_rotation_is_picked_up_in_the_background() {
    let a = KeyPair::rsa("a");
    let b = KeyPair::rsa("b");
    let dir = std::env::temp_dir().join(format!("oauth-audit-jwks-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, support::keys::jwks(&[&a])).unwrap();
    let inspector = TokenInspector::builder()
        .jwks_file(&path)
        .refresh_interval(oauth_audit::token::MIN_REFRESH_INTERVAL)
        .build()
        .unwrap();
    let token_a = a.sign(&claims(json!({})));
    let token_b = b.sign(&claims(json!({})));
    assert_eq!(inspector.inspect(&token_a).verdict, Verdict::Valid);
    assert_eq!(inspector.inspect(&token_b).verdict, Verdict::UnknownKey);

    // Rotate: a new file with a different modification time.
    tokio::time::sleep(Duration::from_millis(20)).await;
    std::fs::write(&path, support::keys::jwks(&[&b])).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while inspector.inspect(&token_b).verdict != Verdict::Valid {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rotation never seen"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        inspector.inspect(&token_a).verdict,
        Verdict::UnknownKey,
        "retired key"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Every asymmetric algorithm verifies, from a PEM key and from a JWKS document, with keys and
/// signatures made by aws-lc-rs directly (not through jsonwebtoken); a changed signature does
/// not verify.
#[test]
fn every_asymmetric_algorithm_verifies_from_pem_and_from_jwks() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, KeyPair as _};
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let pem = |der: &[u8]| {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    };
    let rsa = signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let rsa_public = signature::RsaPublicKeyComponents::<Vec<u8>>::from(rsa.public_key());
    let rsa_jwk = json!({"kty": "RSA", "n": b64(&rsa_public.n), "e": b64(&rsa_public.e)});
    let rsa_pem = pem(rsa.public_key().as_der().unwrap().as_ref());
    let p256 =
        signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let p384 =
        signature::EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let ec_jwk = |key: &signature::EcdsaKeyPair, crv: &str| {
        let point = &key.public_key().as_ref()[1..]; // uncompressed: 0x04 || x || y
        let (x, y) = point.split_at(point.len() / 2);
        json!({"kty": "EC", "crv": crv, "x": b64(x), "y": b64(y)})
    };
    let ed = signature::Ed25519KeyPair::generate().unwrap();

    type Sign<'a> = Box<dyn Fn(&[u8]) -> Vec<u8> + 'a>;
    fn rsa_sign<'a>(
        key: &'a signature::RsaKeyPair,
        padding: &'static dyn signature::RsaEncoding,
    ) -> Sign<'a> {
        Box::new(move |message: &[u8]| {
            let mut out = vec![0; key.public_modulus_len()];
            key.sign(padding, &SystemRandom::new(), message, &mut out)
                .unwrap();
            out
        })
    }
    fn ec_sign(key: &signature::EcdsaKeyPair) -> Sign<'_> {
        Box::new(move |message: &[u8]| {
            let signature = key.sign(&SystemRandom::new(), message).unwrap();
            signature.as_ref().to_vec()
        })
    }
    let cases: Vec<(Algorithm, String, serde_json::Value, Sign<'_>)> = vec![
        (
            Algorithm::RS256,
            rsa_pem.clone(),
            rsa_jwk.clone(),
            rsa_sign(&rsa, &signature::RSA_PKCS1_SHA256),
        ),
        (
            Algorithm::RS384,
            rsa_pem.clone(),
            rsa_jwk.clone(),
            rsa_sign(&rsa, &signature::RSA_PKCS1_SHA384),
        ),
        (
            Algorithm::RS512,
            rsa_pem.clone(),
            rsa_jwk.clone(),
            rsa_sign(&rsa, &signature::RSA_PKCS1_SHA512),
        ),
        (
            Algorithm::PS256,
            rsa_pem.clone(),
            rsa_jwk.clone(),
            rsa_sign(&rsa, &signature::RSA_PSS_SHA256),
        ),
        (
            Algorithm::PS384,
            rsa_pem.clone(),
            rsa_jwk.clone(),
            rsa_sign(&rsa, &signature::RSA_PSS_SHA384),
        ),
        (
            Algorithm::PS512,
            rsa_pem.clone(),
            rsa_jwk.clone(),
            rsa_sign(&rsa, &signature::RSA_PSS_SHA512),
        ),
        (
            Algorithm::ES256,
            pem(p256.public_key().as_der().unwrap().as_ref()),
            ec_jwk(&p256, "P-256"),
            ec_sign(&p256),
        ),
        (
            Algorithm::ES384,
            pem(p384.public_key().as_der().unwrap().as_ref()),
            ec_jwk(&p384, "P-384"),
            ec_sign(&p384),
        ),
        (
            Algorithm::EdDSA,
            pem(ed.public_key().as_der().unwrap().as_ref()),
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64(ed.public_key().as_ref())}),
            Box::new(|message: &[u8]| ed.sign(message).as_ref().to_vec()),
        ),
    ];
    for (alg, public_pem, mut jwk, sign) in cases {
        let name = format!("{alg:?}");
        jwk["kid"] = json!("k1");
        jwk["alg"] = json!(name);
        let header = b64(json!({"alg": name, "typ": "JWT", "kid": "k1"})
            .to_string()
            .as_bytes());
        let payload = b64(claims(json!({})).to_string().as_bytes());
        let message = format!("{header}.{payload}");
        let mut signature = sign(message.as_bytes());
        let token = format!("{message}.{}", b64(&signature));
        signature[0] ^= 1;
        let changed = format!("{message}.{}", b64(&signature));

        let builder = TokenInspector::builder().issuer([ISS]).audience([AUD]);
        let from_pem = match alg {
            Algorithm::ES256 | Algorithm::ES384 => {
                builder.ec_pem(alg, public_pem.as_bytes(), Some("k1"))
            }
            Algorithm::EdDSA => builder.ed_pem(public_pem.as_bytes(), Some("k1")),
            _ => builder.rsa_pem(alg, public_pem.as_bytes(), Some("k1")),
        }
        .build()
        .unwrap();
        let from_jwks = TokenInspector::builder()
            .issuer([ISS])
            .audience([AUD])
            .jwks_json(json!({"keys": [jwk]}).to_string())
            .build()
            .unwrap();
        for (source, inspector) in [("PEM", &from_pem), ("JWKS", &from_jwks)] {
            assert_eq!(
                inspector.inspect(&token).verdict,
                Verdict::Valid,
                "{name} from {source}"
            );
            assert_eq!(
                inspector.inspect(&changed).verdict,
                Verdict::BadSignature,
                "{name} from {source}, changed signature"
            );
        }
    }
}
