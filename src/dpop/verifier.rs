//! Checking a request's DPoP proof (RFC 9449 §4.3).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{HeaderMap, HeaderName, Method, Uri};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::htu::{normalize, normalize_origin, normalize_path};
use super::replay::{proof_id, ReplayCache, Use};
use super::ProofOutcome;
use crate::ConfigError;

/// The `DPoP` request header.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");

/// The default of [`DpopVerifierBuilder::max_age`]: 5 minutes.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The default of [`DpopVerifierBuilder::max_future_skew`]: 1 minute.
pub const DEFAULT_MAX_FUTURE_SKEW: Duration = Duration::from_secs(60);
/// The default of [`DpopVerifierBuilder::replay_capacity`]: 100,000 proofs per place (32 to
/// 47 MB each when full, measured at the peak).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;
/// A proof longer than this is `malformed` without being decoded: 8 KiB holds an RSA-4096
/// key and every claim with room to spare.
pub const MAX_PROOF_BYTES: usize = 8 * 1024;
/// A `jti` longer than this makes a proof `malformed`.
const MAX_JTI_BYTES: usize = 512;

/// What checking one request's DPoP proof found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProofCheck {
    /// The first check the proof failed, or `Valid`. A proof that passed is never
    /// [`KeyMismatch`](ProofOutcome::KeyMismatch) here: that compares the key with the
    /// token's `cnf.jkt`, which the audit layer does once the token's claims are known.
    pub outcome: ProofOutcome,
    /// The RFC 7638 SHA-256 thumbprint of the proof's public key (base64url), when the proof
    /// carried a usable one, whatever the outcome.
    pub jkt: Option<String>,
    /// A valid proof's identity and until when it must be remembered, for
    /// [`DpopVerifier::record_use`].
    replay: Option<(super::replay::ProofId, i64)>,
}

impl ProofCheck {
    /// A check that concluded `outcome` (with nothing to record as used).
    pub(crate) fn failed(outcome: ProofOutcome, jkt: Option<String>) -> Self {
        ProofCheck {
            outcome,
            jkt,
            replay: None,
        }
    }
}

/// Where a proof was used: each place remembers its proofs apart, so that proofs anyone can
/// make at one (a token endpoint takes proofs from clients that have no token yet) cannot
/// crowd out those of the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProofUse {
    /// With an access token at a protected resource (RFC 9449 §7).
    Resource,
    /// At the token endpoint (RFC 9449 §5).
    TokenEndpoint,
}

/// Checks DPoP proofs (RFC 9449): signature by the proof's own key, `typ`, `alg`, `htm`,
/// `htu`, `iat` within a window, `ath` against the presented access token, and `jti` against
/// the proofs seen lately (a bounded replay cache).
///
/// The audit layer runs one on every request that sends a `DPoP` header or presents a token
/// with the `DPoP` scheme, and records the outcome as `token.binding.proof`; routes with
/// enforcing [`RequiredScopes`](crate::RequiredScopes) refuse a bound token whose proof is
/// not `valid`.
///
/// `htu` is compared with the request's scheme, host and path. Behind a proxy that
/// terminates TLS the service sees neither the scheme nor, perhaps, the public host: name the
/// public origins with [`origins`](DpopVerifierBuilder::origins) and `htu` must name one of
/// them. Without origins, the request's own authority (its absolute URI, else `Host`) is
/// compared, and either scheme is accepted.
///
/// ```
/// use std::time::Duration;
/// use oauth_audit::dpop::DpopVerifier;
///
/// let verifier = DpopVerifier::builder()
///     .origins(["https://api.example.com"])
///     .max_age(Duration::from_secs(60))
///     .build()
///     .unwrap();
/// let request = http::Request::get("/orders").body(()).unwrap();
/// let check = verifier.check(request.method(), request.uri(), request.headers(), Some("token"));
/// assert_eq!(check.outcome, oauth_audit::dpop::ProofOutcome::Missing);
/// ```
#[derive(Clone, Debug)]
pub struct DpopVerifier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    origins: Vec<String>,
    max_age: i64,
    max_future_skew: i64,
    /// Proofs used with an access token that is bound to the proof's key.
    resource: ReplayCache,
    /// Proofs sent to the token endpoint.
    token_endpoint: ReplayCache,
}

impl Default for DpopVerifier {
    /// No origins, a 5-minute window, 1 minute of clock skew, 100,000 proofs remembered.
    fn default() -> Self {
        DpopVerifier::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl DpopVerifier {
    /// Starts configuring a verifier.
    pub fn builder() -> DpopVerifierBuilder {
        DpopVerifierBuilder::default()
    }

    /// Checks the DPoP proof of a request. `access_token` is the token the request presents
    /// (its hash must be the proof's `ath`); `None` at the token endpoint, where a proof binds
    /// the tokens about to be issued.
    ///
    /// The check itself remembers nothing: a proof that passed is `valid` until
    /// [`record_use`](Self::record_use) finds it used before.
    pub fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        access_token: Option<&str>,
    ) -> ProofCheck {
        self.check_at(method, uri, headers, access_token, unix_now())
    }

    /// [`check`](Self::check) at the time `now` (Unix seconds).
    fn check_at(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        access_token: Option<&str>,
        now: i64,
    ) -> ProofCheck {
        let mut values = headers.get_all(DPOP).iter();
        let Some(value) = values.next() else {
            return ProofCheck::failed(ProofOutcome::Missing, None);
        };
        if values.next().is_some() || value.len() > MAX_PROOF_BYTES {
            return ProofCheck::failed(ProofOutcome::Malformed, None);
        }
        let Ok(proof) = value.to_str() else {
            return ProofCheck::failed(ProofOutcome::Malformed, None);
        };
        let (algorithm, jwk, jkt) = match read_header(proof) {
            Ok(read) => read,
            Err(jkt) => return ProofCheck::failed(ProofOutcome::Malformed, jkt),
        };
        let fail = |outcome| ProofCheck::failed(outcome, Some(jkt.clone()));
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            return fail(ProofOutcome::Malformed);
        };
        let claims = match signed_claims(proof, algorithm, &key) {
            Ok(claims) => claims,
            Err(outcome) => return fail(outcome),
        };
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        // A NumericDate may have a fraction (RFC 7519 §2).
        let iat = claims.get("iat").and_then(|v| {
            v.as_i64().or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
        });
        let (Some(jti), Some(htm), Some(htu), Some(iat)) =
            (text("jti"), text("htm"), text("htu"), iat)
        else {
            return fail(ProofOutcome::Malformed);
        };
        if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
            return fail(ProofOutcome::Malformed);
        }
        if htm != method.as_str() {
            return fail(ProofOutcome::HtmMismatch);
        }
        if !self.htu_matches(htu, uri, headers) {
            return fail(ProofOutcome::HtuMismatch);
        }
        let inner = &self.inner;
        if now.saturating_sub(iat) > inner.max_age
            || iat.saturating_sub(now) > inner.max_future_skew
        {
            return fail(ProofOutcome::Stale);
        }
        if let Some(token) = access_token {
            let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
            if text("ath") != Some(expected.as_str()) {
                return fail(ProofOutcome::AthMismatch);
            }
        }
        let until = iat.saturating_add(inner.max_age).saturating_add(1);
        ProofCheck {
            outcome: ProofOutcome::Valid,
            replay: Some((proof_id(&jkt, jti), until)),
            jkt: Some(jkt),
        }
    }

    /// Records the use of a `valid` proof at `place`, and makes it
    /// [`Replayed`](ProofOutcome::Replayed) when the same proof (same key, same `jti`) was
    /// used there before within the window, and [`Stale`](ProofOutcome::Stale) when it ends
    /// no later than a proof the full cache had to forget (see
    /// [`replay_capacity`](DpopVerifierBuilder::replay_capacity)) or its `iat` has left the
    /// window by the time it is recorded (its first use's recording may have ended with it).
    /// Call it once per request, and only for proofs that count: the audit layer records a protected route's proof when the request's token
    /// is valid and bound to the proof's key, so that proofs made with keys of no token
    /// cannot fill the memory and push out the ones a replay would match.
    pub fn record_use(&self, check: &mut ProofCheck, place: ProofUse) {
        let Some((id, until)) = check.replay.take() else {
            return;
        };
        let cache = match place {
            ProofUse::Resource => &self.inner.resource,
            ProofUse::TokenEndpoint => &self.inner.token_endpoint,
        };
        if check.outcome != ProofOutcome::Valid {
            return;
        }
        match cache.first_use_at(id, until, unix_now) {
            Use::First => {}
            Use::Replayed => check.outcome = ProofOutcome::Replayed,
            // The full cache forgot a proof ending as late, or the proof's window ended
            // since it was checked: this may be a replay.
            Use::Unprovable => check.outcome = ProofOutcome::Stale,
        }
    }

    /// Whether `htu` names the request's URI.
    fn htu_matches(&self, htu: &str, uri: &Uri, headers: &HeaderMap) -> bool {
        let Some(htu) = normalize(htu) else {
            return false;
        };
        if htu.path != normalize_path(uri.path()) {
            return false;
        }
        if !self.inner.origins.is_empty() {
            return self.inner.origins.contains(&htu.origin);
        }
        let authority = match uri.authority() {
            Some(authority) => Some(authority.as_str()),
            None => headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok()),
        };
        let scheme = uri.scheme_str().unwrap_or(&htu.scheme);
        authority
            .and_then(|authority| normalize_origin(&scheme.to_ascii_lowercase(), authority))
            .is_some_and(|origin| origin == htu.origin)
    }

    /// How many remembered proofs were forgotten before their time, to stay within the
    /// replay cache's capacity.
    pub fn replay_evictions(&self) -> u64 {
        self.inner.resource.evicted() + self.inner.token_endpoint.evicted()
    }
}

/// The claims of `proof`, once its signature by `key` under `algorithm` is checked, read as
/// `jsonwebtoken::decode` would accept them (the checks and their order are its own, without
/// its second reading of the header, its validation set-up and the key prepared again):
///
/// - a header that its typed reading refuses (a member of the wrong type, or given twice) is
///   `Malformed`, as is a signature or payload that is not base64url or a payload that is not
///   JSON;
/// - a signature that does not verify, or a key aws-lc refuses, is `InvalidSignature`, and so
///   is a typed header whose `alg` is not the one the proof was read with, a key of another
///   family than `algorithm` (before the signature is decoded) and a proof of fewer than
///   three parts;
/// - the claims are read as any other parser reads them (see `crate::json`), but a registered
///   claim the library reads for validation (`exp`, `nbf`, `sub`, `iss`, `aud`) given twice
///   makes the payload `Malformed`, as it did there.
fn signed_claims(
    proof: &str,
    algorithm: Algorithm,
    key: &DecodingKey,
) -> Result<Value, ProofOutcome> {
    /// The registered claims `jsonwebtoken` reads to validate (its `ClaimsForValidation`),
    /// read as it reads them: only one of each may be given, and a claim of a type it does
    /// not expect is no error, as if not given, except where its reader gives up in the
    /// middle of the value and the rest of the payload is then read from there: an `exp` or
    /// `nbf` that is an array or object with something in it (read as a number), a `sub`
    /// that is an array or object (read as a string) make the payload `Malformed`. Declared
    /// as it declares them (only `exp` and `nbf` with a default), so that a payload that is
    /// a JSON array is refused or read as it was: the check finds no `jti` in one either way.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Registered {
        #[serde(deserialize_with = "numeric_date", default)]
        exp: (),
        #[serde(deserialize_with = "numeric_date", default)]
        nbf: (),
        sub: Text,
        iss: Option<serde::de::IgnoredAny>,
        aud: Option<serde::de::IgnoredAny>,
    }
    /// `exp` and `nbf` as `jsonwebtoken`'s `numeric_type` reads them: a number, or anything
    /// else, read as far as its parser goes before it finds that is not one.
    fn numeric_date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
        struct Number;
        impl serde::de::Visitor<'_> for Number {
            type Value = ();
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a NumericDate")
            }
            fn visit_u64<E>(self, _: u64) -> Result<(), E> {
                Ok(())
            }
            fn visit_f64<E>(self, _: f64) -> Result<(), E> {
                Ok(())
            }
        }
        let _not_a_number = deserializer.deserialize_any(Number);
        Ok(())
    }
    /// `sub` as `jsonwebtoken`'s `TryParse<Cow<str>>` reads it: a string, or anything else,
    /// read as far as its parser goes before it finds that is not one.
    struct Text;
    impl<'de> serde::Deserialize<'de> for Text {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
            let _not_a_string = Option::<String>::deserialize(deserializer);
            Ok(Text)
        }
    }
    // A proof of fewer than three parts is an `InvalidToken` to `decode`, not a JSON or
    // base64 error: an invalid signature.
    let header = typed_header(proof).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidToken => ProofOutcome::InvalidSignature,
        _ => ProofOutcome::Malformed,
    })?;
    // Before the signature is decoded, as the library chose its verifier first.
    if header.alg != algorithm || key.family() != algorithm.family() {
        return Err(ProofOutcome::InvalidSignature);
    }
    let (message, signature) = proof.rsplit_once('.').ok_or(ProofOutcome::Malformed)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| ProofOutcome::Malformed)?;
    if !crate::token::verifies_once(key, algorithm, message.as_bytes(), &signature) {
        return Err(ProofOutcome::InvalidSignature);
    }
    let payload = message
        .split_once('.')
        .map(|(_, payload)| payload)
        .ok_or(ProofOutcome::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| ProofOutcome::Malformed)?;
    serde_json::from_slice::<Registered>(&payload).map_err(|_| ProofOutcome::Malformed)?;
    crate::json::from_slice(&payload).map_err(|_| ProofOutcome::Malformed)
}

/// The proof's header as `jsonwebtoken::decode_header` reads it, RFC 9864's `alg: "Ed25519"`
/// read as `EdDSA`, a name the library does not know. Only when the library refused the
/// header: its members are then read in order, each as written, and read by the library
/// again with `alg`'s value replaced when it is `Ed25519`. A member given twice stays twice
/// (and is refused as before), and so does every error of a header with another `alg`.
fn typed_header(proof: &str) -> jsonwebtoken::errors::Result<jsonwebtoken::Header> {
    /// A JSON object's members in order, duplicates and all, their values as written.
    struct Members(Vec<(String, Box<serde_json::value::RawValue>)>);
    impl<'de> serde::Deserialize<'de> for Members {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Members;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Members, A::Error> {
                    let mut members = Vec::new();
                    while let Some(member) = map.next_entry()? {
                        members.push(member);
                    }
                    Ok(Members(members))
                }
            }
            deserializer.deserialize_map(Visit)
        }
    }
    let refused = match jsonwebtoken::decode_header(proof) {
        Ok(header) => return Ok(header),
        Err(refused) => refused,
    };
    let renamed = (|| {
        let encoded = proof.split('.').next()?;
        let decoded = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        let Members(members) = serde_json::from_slice(&decoded).ok()?;
        let is_ed25519 = |value: &serde_json::value::RawValue| {
            serde_json::from_str::<String>(value.get()).is_ok_and(|alg| alg == "Ed25519")
        };
        if !members
            .iter()
            .any(|(name, value)| name == "alg" && is_ed25519(value))
        {
            return None;
        }
        let mut text = String::from("{");
        for (at, (name, value)) in members.iter().enumerate() {
            if at > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::to_string(name).ok()?);
            text.push(':');
            match name == "alg" && is_ed25519(value) {
                true => text.push_str("\"EdDSA\""),
                false => text.push_str(value.get()),
            }
        }
        text.push('}');
        Some(serde_json::from_str::<jsonwebtoken::Header>(&text).map_err(Into::into))
    })();
    renamed.unwrap_or(Err(refused))
}

/// The proof's algorithm, key and key thumbprint, read from its JOSE header; on failure, the
/// thumbprint if the key was read that far.
fn read_header(proof: &str) -> Result<(Algorithm, Jwk, String), Option<String>> {
    let mut parts = proof.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(None);
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|bytes| crate::json::from_slice(&bytes).ok())
        .ok_or(None)?;
    let typ = header.get("typ").and_then(Value::as_str);
    if !typ.is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt")) {
        return Err(None);
    }
    let jwk_value = header.get("jwk").filter(|v| v.is_object()).ok_or(None)?;
    // A public key only: private (or symmetric) key members make the proof malformed.
    if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
        .iter()
        .any(|member| jwk_value.get(member).is_some())
    {
        return Err(None);
    }
    // Read where it is, not from a copy.
    let jwk = Jwk::deserialize(jwk_value).map_err(|_| None)?;
    let jkt = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|_| None)?;
    let algorithm = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(crate::token::signing_algorithm)
        .ok_or_else(|| Some(jkt.clone()))?;
    if !key_fits(algorithm, &jwk) {
        return Err(Some(jkt));
    }
    Ok((algorithm, jwk, jkt))
}

/// Whether `algorithm` is an asymmetric one that `jwk`'s key type and curve are made for.
fn key_fits(algorithm: Algorithm, jwk: &Jwk) -> bool {
    match (&jwk.algorithm, algorithm.family()) {
        // Each coordinate at the curve's full size (RFC 7518 §6.2.1.2): the point's bytes
        // split otherwise between `x` and `y` would be the same key under another thumbprint.
        (AlgorithmParameters::EllipticCurve(ec), AlgorithmFamily::Ec) => {
            let bytes = match (&ec.curve, algorithm) {
                (EllipticCurve::P256, Algorithm::ES256) => 32,
                (EllipticCurve::P384, Algorithm::ES384) => 48,
                _ => return false,
            };
            let chars = (bytes * 8usize).div_ceil(6);
            ec.x.len() == chars && ec.y.len() == chars
        }
        // At most 4096 bits (683 base64url characters) and the usual exponent: a larger key
        // only makes each check cost more.
        (AlgorithmParameters::RSA(rsa), AlgorithmFamily::Rsa) => {
            rsa.n.trim_start_matches('A').len() <= 683 && rsa.e == "AQAB"
        }
        (AlgorithmParameters::OctetKeyPair(okp), AlgorithmFamily::Ed) => {
            okp.curve == EllipticCurve::Ed25519
        }
        _ => false,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Configures a [`DpopVerifier`].
#[derive(Clone, Debug)]
pub struct DpopVerifierBuilder {
    origins: Vec<String>,
    max_age: Duration,
    max_future_skew: Duration,
    replay_capacity: usize,
}

impl Default for DpopVerifierBuilder {
    fn default() -> Self {
        DpopVerifierBuilder {
            origins: Vec::new(),
            max_age: DEFAULT_MAX_AGE,
            max_future_skew: DEFAULT_MAX_FUTURE_SKEW,
            replay_capacity: DEFAULT_REPLAY_CAPACITY,
        }
    }
}

impl DpopVerifierBuilder {
    /// The public origins of the service (`https://api.example.com`, with a port when it is
    /// not the scheme's default): a proof's `htu` must name one of them. Without any, `htu`
    /// is compared with the request's own authority.
    pub fn origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.origins = origins.into_iter().map(Into::into).collect();
        self
    }

    /// How old a proof's `iat` may be; 5 minutes unless set.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// How far in the future a proof's `iat` may be (the client's clock running ahead); 1
    /// minute unless set.
    pub fn max_future_skew(mut self, skew: Duration) -> Self {
        self.max_future_skew = skew;
        self
    }

    /// How many proofs are remembered to recognise a replay, at protected routes and at the
    /// token endpoint each; 100,000 unless set. Each costs about 320 bytes at the peak
    /// (about 470 when every proof has a key of its own). When more arrive within the window, the
    /// soonest-ending proof of the key that holds the most is forgotten early
    /// (`oauth_audit_dpop_replay_evicted_total`), so that a flood of one key's proofs
    /// pushes out its own first; a proof of that key (once its key holds none, of any key)
    /// ending no later than a forgotten one is then [`Stale`](ProofOutcome::Stale), never
    /// `valid`, since it may be that one's replay.
    pub fn replay_capacity(mut self, proofs: usize) -> Self {
        self.replay_capacity = proofs;
        self
    }

    /// Builds the verifier; an origin that is not `http(s)://host[:port]` is an error.
    pub fn build(self) -> Result<DpopVerifier, ConfigError> {
        let mut origins = Vec::with_capacity(self.origins.len());
        for origin in &self.origins {
            let normal = normalize(origin)
                .filter(|n| n.path == "/" && !origin.contains(['?', '#']))
                .ok_or_else(|| {
                    ConfigError::invalid(
                        "dpop.origins",
                        format!("{origin:?} is not an origin such as https://api.example.com"),
                    )
                })?;
            origins.push(normal.origin);
        }
        if self.replay_capacity == 0 {
            return Err(ConfigError::invalid(
                "dpop.replay_capacity",
                "keep at least 1 proof",
            ));
        }
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        crate::metric::describe(&crate::metric::DPOP_REPLAY_EVICTED);
        Ok(DpopVerifier {
            inner: Arc::new(Inner {
                origins,
                max_age: seconds(self.max_age),
                max_future_skew: seconds(self.max_future_skew),
                resource: ReplayCache::new(self.replay_capacity),
                token_endpoint: ReplayCache::new(self.replay_capacity),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use serde_json::json;

    use super::*;

    /// What `check` used before `signed_claims`: `jsonwebtoken::decode`, its errors sorted
    /// the same way. The reading `signed_claims` must keep.
    fn through_jsonwebtoken(
        proof: &str,
        algorithm: Algorithm,
        key: &DecodingKey,
    ) -> Result<Value, ProofOutcome> {
        struct Claims(Value);
        impl<'de> serde::Deserialize<'de> for Claims {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                use serde::de::DeserializeSeed as _;
                crate::json::Plain::last_wins().deserialize(d).map(Claims)
            }
        }
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        match jsonwebtoken::decode::<Claims>(proof, key, &validation) {
            Ok(data) => Ok(data.claims.0),
            Err(e) => {
                use jsonwebtoken::errors::ErrorKind;
                Err(match e.kind() {
                    ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
                        ProofOutcome::Malformed
                    }
                    _ => ProofOutcome::InvalidSignature,
                })
            }
        }
    }

    #[test]
    fn the_claims_are_read_and_refused_as_jsonwebtoken_decode_did() {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = &pair.public_key().as_ref()[1..];
        let (x, y) = point.split_at(32);
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
        let key = DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
        let b64 = |text: &str| URL_SAFE_NO_PAD.encode(text);
        let sign = |header: &str, payload: &str| {
            let input = format!("{header}.{payload}");
            let signature = pair.sign(&rng, input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        };
        let header = |extra: &str| {
            let jwk = jwk.to_string();
            b64(&format!(
                r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk}{extra}}}"#
            ))
        };
        let claims = r#"{"jti":"j","htm":"GET","htu":"https://a.example/","iat":1}"#;
        let good = sign(&header(""), &b64(claims));
        let (input, _) = good.rsplit_once('.').unwrap();
        let other_signature = sign(&header(""), &b64(r#"{"jti":"k"}"#));
        let (_, other_signature) = other_signature.rsplit_once('.').unwrap();
        let cases = [
            // Valid, and valid with claims of odd types or repeated unregistered ones.
            good.clone(),
            sign(
                &header(""),
                &b64(r#"{"jti":"a","jti":"b","exp":"soon","aud":5}"#),
            ),
            sign(&header(""), &b64("[1,2]")),
            sign(&header(""), &b64("[1,2,3,4,5]")),
            sign(&header(""), &b64("[1,2,3,4,5,6]")),
            sign(&header(""), &b64(r#""a string""#)),
            sign(
                &header(""),
                &b64(r#"{"$serde_json::private::RawValue":"{\"jti\":\"x\"}"}"#),
            ),
            // A header member of the wrong type, a header member given twice.
            sign(&header(r#","kid":5"#), &b64(claims)),
            sign(&header(r#","alg":"ES256""#), &b64(claims)),
            sign(&header(r#","x5c":"not a list""#), &b64(claims)),
            // Registered claims given twice, a payload that is not JSON or not base64url.
            sign(&header(""), &b64(r#"{"sub":"a","sub":"b"}"#)),
            sign(&header(""), &b64(r#"{"aud":"a","aud":"b"}"#)),
            sign(&header(""), &b64(r#"{"jti":"a"} x"#)),
            sign(&header(""), "not*base64"),
            // Registered claims of types its validation cannot read: a `sub` that is no
            // string, an `exp` or `nbf` that is no number, each empty and not.
            sign(&header(""), &b64(r#"{"jti":"j","sub":{}}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","sub":[]}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","sub":{"a":1}}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","sub":["a"]}"#)),
            sign(
                &header(""),
                &b64(r#"{"jti":"j","sub":true,"iss":{},"aud":[{}]}"#),
            ),
            sign(&header(""), &b64(r#"{"jti":"j","exp":{}}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","exp":[]}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","exp":{"a":1}}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","exp":[1]}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","nbf":[1,2]}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","nbf":-1,"exp":1e400}"#)),
            sign(&header(""), &b64(r#"{"jti":"j","exp":null,"sub":null}"#)),
            sign(&header(""), &b64(r#"[1,2,{},4,5]"#)),
            sign(&header(""), &b64(r#"[[1],2,3,4,5]"#)),
            sign(&header(""), &b64(r#"[{},[],"s",{},[]]"#)),
            // A signature of something else, one that is not base64url, none at all.
            format!("{input}.{other_signature}"),
            format!("{input}.!!!!"),
            format!("{input}."),
        ];
        for proof in cases {
            let expected = through_jsonwebtoken(&proof, Algorithm::ES256, &key);
            assert_eq!(
                signed_claims(&proof, Algorithm::ES256, &key),
                expected,
                "{proof}"
            );
        }
        // The outcomes above are of every kind.
        let outcomes: Vec<_> = [
            &good,
            &format!("{input}.{other_signature}"),
            &format!("{input}.!!!!"),
        ]
        .iter()
        .map(|proof| signed_claims(proof, Algorithm::ES256, &key).err())
        .collect();
        assert_eq!(
            outcomes,
            [
                None,
                Some(ProofOutcome::InvalidSignature),
                Some(ProofOutcome::Malformed)
            ]
        );
        // A proof read with another algorithm than its typed header says is not its signer's.
        assert_eq!(
            signed_claims(&good, Algorithm::ES384, &key),
            Err(ProofOutcome::InvalidSignature)
        );
    }

    /// A proof as a client makes it, with these claims besides `jti`, `htm`, `htu` and `iat`.
    fn proof_with(pair: &EcdsaKeyPair, extra: &str, iat: i64) -> String {
        let point = &pair.public_key().as_ref()[1..];
        let (x, y) = point.split_at(32);
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string();
        let input = signing_input(&header, iat, extra);
        let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// What a proof with `header` signs: the header and the claims [`proof_with`] sends.
    fn signing_input(header: &str, iat: i64, extra: &str) -> String {
        let claims =
            format!(r#"{{"jti":"j","htm":"GET","htu":"https://a.example/r","iat":{iat}{extra}}}"#);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn a_proof_whose_sub_exp_or_nbf_jsonwebtoken_could_not_read_stays_malformed() {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let verifier = DpopVerifier::default();
        let uri: Uri = "https://a.example/r".parse().unwrap();
        let now = 1_700_000_000;
        let outcome = |extra: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(DPOP, proof_with(&pair, extra, now).parse().unwrap());
            verifier
                .check_at(&Method::GET, &uri, &headers, None, now)
                .outcome
        };
        assert_eq!(outcome(""), ProofOutcome::Valid);
        // Of any other type, each is no error: `jsonwebtoken` reads it as not given.
        for extra in [
            r#","sub":5,"exp":"soon","nbf":-1,"iss":{},"aud":[{}]"#,
            r#","exp":{}"#,
        ] {
            assert_eq!(outcome(extra), ProofOutcome::Valid, "{extra}");
        }
        // But `decode` failed on these: a `sub` that is an object or an array, an `exp` or
        // `nbf` that is an object or array with something in it.
        for extra in [
            r#","sub":{}"#,
            r#","sub":["a"]"#,
            r#","exp":{"a":1}"#,
            r#","nbf":[1]"#,
        ] {
            assert_eq!(outcome(extra), ProofOutcome::Malformed, "{extra}");
        }
    }

    #[test]
    fn a_proof_with_a_symmetric_or_no_algorithm_or_an_unsure_header_is_malformed() {
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = &pair.public_key().as_ref()[1..];
        let (x, y) = point.split_at(32);
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
        .to_string();
        let now = 1_700_000_000;
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"jti":"j","htm":"GET","htu":"https://a.example/r","iat":{now}}}"#
        ));
        let input = |header: &str| format!("{}.{claims}", URL_SAFE_NO_PAD.encode(header));
        let ecdsa = |header: &str| {
            let input = input(header);
            let signature = pair.sign(&rng, input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
        };
        let hmac = |header: &str, secret: &[u8]| {
            let input = input(header);
            let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
            let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag))
        };
        let secret = b"a-32-byte-long-secret-for-hs256!";
        let oct = format!(
            r#"{{"kty":"oct","k":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(secret)
        );
        let verifier = DpopVerifier::default();
        let uri: Uri = "https://a.example/r".parse().unwrap();
        let outcome = |proof: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(DPOP, proof.parse().unwrap());
            verifier
                .check_at(&Method::GET, &uri, &headers, None, now)
                .outcome
        };
        let good = ecdsa(&format!(
            r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#
        ));
        assert_eq!(outcome(&good), ProofOutcome::Valid);
        let cases = [
            // HS256, keyed with a symmetric JWK, or with the public key's own JWK text or
            // coordinates.
            hmac(
                &format!(r#"{{"typ":"dpop+jwt","alg":"HS256","jwk":{oct}}}"#),
                secret,
            ),
            hmac(
                &format!(r#"{{"typ":"dpop+jwt","alg":"HS256","jwk":{jwk}}}"#),
                jwk.as_bytes(),
            ),
            hmac(
                &format!(r#"{{"typ":"dpop+jwt","alg":"HS256","jwk":{jwk}}}"#),
                point,
            ),
            // No algorithm, in any spelling.
            format!(
                "{}.",
                input(&format!(r#"{{"typ":"dpop+jwt","alg":"none","jwk":{jwk}}}"#))
            ),
            ecdsa(&format!(r#"{{"typ":"dpop+jwt","alg":"NONE","jwk":{jwk}}}"#)),
            ecdsa(&format!(r#"{{"typ":"dpop+jwt","alg":"","jwk":{jwk}}}"#)),
            ecdsa(&format!(r#"{{"typ":"dpop+jwt","jwk":{jwk}}}"#)),
            // No `typ`, or a header member given twice.
            ecdsa(&format!(r#"{{"alg":"ES256","jwk":{jwk}}}"#)),
            ecdsa(&format!(
                r#"{{"typ":"JWT","typ":"dpop+jwt","alg":"ES256","jwk":{jwk}}}"#
            )),
            ecdsa(&format!(
                r#"{{"typ":"dpop+jwt","alg":"ES256","jwk":{jwk},"jwk":{jwk}}}"#
            )),
            ecdsa(&format!(
                r#"{{"typ":"dpop+jwt","alg":"ES256","alg":"ES256","jwk":{jwk}}}"#
            )),
        ];
        for proof in cases {
            assert_eq!(outcome(&proof), ProofOutcome::Malformed, "{proof}");
        }
    }

    #[test]
    fn an_ec_key_whose_coordinates_are_not_of_the_curves_size_is_malformed() {
        // The point's 64 bytes split otherwise between `x` and `y` are the same key under
        // another thumbprint: RFC 7518 §6.2.1.2 wants each coordinate at its full size.
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = &pair.public_key().as_ref()[1..];
        let now = 1_700_000_000;
        let verifier = DpopVerifier::default();
        let uri: Uri = "https://a.example/r".parse().unwrap();
        let outcome = |split: usize| {
            let (x, y) = point.split_at(split);
            let jwk = json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
            let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}).to_string();
            let input = signing_input(&header, now, "");
            let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            let mut headers = HeaderMap::new();
            let proof = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature));
            headers.insert(DPOP, proof.parse().unwrap());
            verifier
                .check_at(&Method::GET, &uri, &headers, None, now)
                .outcome
        };
        assert_eq!(outcome(32), ProofOutcome::Valid);
        for split in [0, 1, 31, 33, 64] {
            assert_eq!(
                outcome(split),
                ProofOutcome::Malformed,
                "x of {split} bytes"
            );
        }
    }

    #[test]
    fn a_proof_naming_rfc_9864s_ed25519_is_checked_as_eddsa() {
        use aws_lc_rs::signature::Ed25519KeyPair;
        let pair = Ed25519KeyPair::generate().unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
        let now = 1_700_000_000;
        let uri: Uri = "https://a.example/r".parse().unwrap();
        for alg in ["Ed25519", "EdDSA"] {
            let header = json!({"typ": "dpop+jwt", "alg": alg, "jwk": jwk}).to_string();
            let input = signing_input(&header, now, "");
            let signature = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref());
            let check = |proof: String| {
                let mut headers = HeaderMap::new();
                headers.insert(DPOP, proof.parse().unwrap());
                DpopVerifier::default()
                    .check_at(&Method::GET, &uri, &headers, None, now)
                    .outcome
            };
            assert_eq!(
                check(format!("{input}.{signature}")),
                ProofOutcome::Valid,
                "{alg}"
            );
            let forged = URL_SAFE_NO_PAD.encode([7u8; 64]);
            assert_eq!(
                check(format!("{input}.{forged}")),
                ProofOutcome::InvalidSignature,
                "{alg}"
            );
        }
        // Escaped, it is the same name; a header the library refuses for another reason
        // (a member twice, a member of the wrong type) is still refused.
        let jwk = jwk.to_string();
        for (header, outcome) in [
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"\u0045d25519","jwk":{jwk}}}"#),
                ProofOutcome::Valid,
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"Ed25519","alg":"Ed25519","jwk":{jwk}}}"#),
                ProofOutcome::Malformed,
            ),
            (
                format!(r#"{{"typ":"dpop+jwt","alg":"Ed25519","kid":7,"jwk":{jwk}}}"#),
                ProofOutcome::Malformed,
            ),
        ] {
            let input = signing_input(&header, now, "");
            let signature = URL_SAFE_NO_PAD.encode(pair.sign(input.as_bytes()).as_ref());
            let mut headers = HeaderMap::new();
            headers.insert(DPOP, format!("{input}.{signature}").parse().unwrap());
            let seen = DpopVerifier::default()
                .check_at(&Method::GET, &uri, &headers, None, now)
                .outcome;
            assert_eq!(seen, outcome, "{header}");
        }
    }

    #[test]
    fn a_proof_carrying_an_ed25519_key_of_small_order_is_no_valid_proof() {
        // The identity point as the proof's key: R the identity and S zero "verify" any
        // message under it, so anyone could make this client's proofs.
        let mut x = [0u8; 32];
        x[0] = 1;
        let mut forged = [0u8; 64];
        forged[0] = 1;
        let now = 1_700_000_000;
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x)});
        let header = json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}).to_string();
        let input = signing_input(&header, now, "");
        assert!(
            aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, x)
                .verify(input.as_bytes(), &forged)
                .is_ok(),
            "aws-lc alone takes the forgery"
        );
        let mut headers = HeaderMap::new();
        let proof = format!("{input}.{}", URL_SAFE_NO_PAD.encode(forged));
        headers.insert(DPOP, proof.parse().unwrap());
        let uri: Uri = "https://a.example/r".parse().unwrap();
        let outcome = DpopVerifier::default()
            .check_at(&Method::GET, &uri, &headers, None, now)
            .outcome;
        assert_eq!(outcome, ProofOutcome::InvalidSignature);
    }

    #[test]
    fn a_proof_of_too_few_parts_or_read_with_a_key_of_another_family_fails_as_in_decode() {
        // Unreachable through `check` (`read_header` wants three parts, `key_fits` a key of
        // the algorithm's family), but `signed_claims` promises decode's outcomes.
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let proof = proof_with(&pair, "", 1);
        let (input, _) = proof.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let hmac = DecodingKey::from_secret(b"a-32-byte-long-secret-for-hs256!");
        let point = &pair.public_key().as_ref()[1..];
        let (x, y) = point.split_at(32);
        let ec =
            DecodingKey::from_ec_components(&URL_SAFE_NO_PAD.encode(x), &URL_SAFE_NO_PAD.encode(y))
                .unwrap();
        let cases = [
            (proof.clone(), &hmac),
            (format!("{input}.!!!!"), &hmac),
            (format!("{input}."), &hmac),
            (input.to_owned(), &ec),
            (header.to_owned(), &ec),
            (format!("{input}.!!!!"), &ec),
        ];
        for (proof, key) in cases {
            assert_eq!(
                signed_claims(&proof, Algorithm::ES256, key),
                through_jsonwebtoken(&proof, Algorithm::ES256, key),
                "{proof}"
            );
        }
    }

    #[test]
    fn a_jwk_read_where_it_is_reads_as_from_a_copy() {
        let x = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let base = json!({"kty": "EC", "crv": "P-256", "x": x, "y": x});
        let mut jwks = vec![
            base.clone(),
            json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            json!({"kty": "OKP", "crv": "X25519", "x": x}),
            json!({"kty": "RSA", "n": x, "e": "AQAB"}),
            json!({"kty": "RSA", "n": x}),
            json!({"kty": "oct", "k": x}),
            json!({"kty": "EC", "crv": "P-521", "x": x, "y": x}),
            json!({"kty": "EC", "crv": "secp256k1", "x": x, "y": x}),
            json!({"kty": "XYZ", "x": x}),
            json!({"x": x, "y": x, "crv": "P-256"}),
            json!({"kty": "EC", "crv": "Ed25519", "x": x}),
            json!({"kty": "OKP", "crv": "P-256", "x": x, "y": x}),
        ];
        for (name, value) in [
            ("alg", json!("ES256")),
            ("alg", json!("RSA-OAEP")),
            ("alg", json!("none")),
            ("alg", json!(5)),
            ("use", json!("sig")),
            ("use", json!("enc")),
            ("use", json!("other")),
            ("use", json!(null)),
            ("key_ops", json!(["verify", "sign", "other"])),
            ("key_ops", json!("verify")),
            ("kid", json!("k")),
            ("kid", json!(7)),
            ("x5c", json!(["AAAA"])),
            ("x5c", json!([1])),
            ("x5t", json!("t")),
            ("x5t#S256", json!("t")),
            ("x5u", json!("https://a.example/")),
            ("x", json!(5)),
            ("x", json!(null)),
            ("crv", json!(null)),
            ("kty", json!(null)),
            ("extra", json!({"a": [1, 2.5, null]})),
        ] {
            let mut jwk = base.clone();
            jwk[name] = value;
            jwks.push(jwk);
        }
        for value in jwks {
            let in_place = Jwk::deserialize(&value).map_err(|e| e.to_string());
            let copied = serde_json::from_value::<Jwk>(value.clone()).map_err(|e| e.to_string());
            assert_eq!(in_place, copied, "{value}");
        }
    }

    /// JSON text of up to a few levels, its member names mostly the registered claims,
    /// members given twice and values of every type among them.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop::sample::select(vec![
            "null",
            "true",
            "-1",
            "0",
            "7",
            "1.5",
            "1e400",
            "18446744073709551616",
            r#""s""#,
            r#""\u00e9""#,
            r#""\ud800""#,
            "{}",
            "[]",
        ])
        .prop_map(str::to_owned);
        let name = prop::sample::select(vec![
            "exp",
            "nbf",
            "sub",
            "iss",
            "aud",
            "jti",
            "a",
            "\\u0073ub",
            "$serde_json::private::RawValue",
        ]);
        leaf.prop_recursive(3, 24, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((name.clone(), inner), 0..6).prop_map(|members| {
                    let members: Vec<_> = members
                        .iter()
                        .map(|(name, value)| format!(r#""{name}":{value}"#))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// Proofs with generated payloads and header members, and damaged encodings, read
        /// by `signed_claims` and by `jsonwebtoken::decode`: the same outcome, claims and all.
        #[test]
        fn generated_proofs_are_read_as_jsonwebtoken_decode_read_them(
            payload in json_text(),
            extra in proptest::sample::select(vec![
                "", r#","kid":5"#, r#","kid":"k""#, r#","alg":"HS256""#, r#","x5c":"x""#,
                r#","crit":["b64"]"#, r#","jwk":{}"#, r#","typ":null"#, r#","cty":{}"#,
            ]),
            damage in 0..8u8,
            read_as in proptest::sample::select(vec![Algorithm::HS256, Algorithm::HS384]),
        ) {
            let secret = b"a-32-byte-long-secret-for-hs256!";
            let key = DecodingKey::from_secret(secret);
            let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
            let header = b64(format!(r#"{{"alg":"HS256"{extra}}}"#).as_bytes());
            let mut body = b64(payload.as_bytes());
            if damage == 1 {
                body.push('A');
            }
            if damage == 2 {
                body.push_str("==");
            }
            let input = format!("{header}.{body}");
            let tag = aws_lc_rs::hmac::sign(
                &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
                input.as_bytes(),
            );
            let mut signature = b64(tag.as_ref());
            match damage {
                3 => signature.push('='),
                4 => {
                    signature.pop();
                }
                5 => {
                    // The last character's unused bits set: not canonical base64url.
                    let last = signature.pop().unwrap();
                    signature.push(if last == 'A' { 'B' } else { 'A' });
                }
                6 => signature = String::new(),
                _ => {}
            }
            let proof = if damage == 7 { input.clone() } else { format!("{input}.{signature}") };
            proptest::prop_assert_eq!(
                signed_claims(&proof, read_as, &key),
                through_jsonwebtoken(&proof, read_as, &key),
                "{} / {}", payload, proof
            );
        }
    }
}
