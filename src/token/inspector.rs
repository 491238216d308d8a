use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use quick_cache::sync::{Cache, DefaultLifecycle};
use quick_cache::Weighter;
use serde_json::Value;

use super::cache_key::{CacheKey, Keyer};
use super::claims::{claim_slot, CLAIM_SLOTS, EXP, NBF};
use super::jwks::{JwksSource, KeySource};
use super::key_store::KeyStore;
use super::keys::{static_key_of, KeySet, VerifyKey};
use super::{Memo, TokenClaims, TokenConfigError, TokenFingerprint, TokenFormat, Verdict};
use crate::secret_anchor::SecretAnchor;

/// A token as the audit layer saw it: fingerprint, format, verdict and claims.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InspectedToken {
    /// The token's fingerprint.
    pub fingerprint: TokenFingerprint,
    /// JWT or opaque.
    pub format: TokenFormat,
    /// What verification concluded.
    pub verdict: Verdict,
    /// The claims, also when the verdict is not `Valid` (they are for the record; never
    /// trust them unless the verdict is `Valid`).
    pub claims: TokenClaims,
    /// What the layer derives from the token once (the parts of its events).
    pub(crate) memo: Memo,
    /// The fingerprint of the token's other spelling, when it has one that verifies as
    /// well: an ECDSA signature `(r, s)` is also valid as `(r, n - s)`, which anyone can
    /// write without the key. A revocation of either spelling is a revocation of both.
    pub(crate) twin: Option<TokenFingerprint>,
    /// What finds the token inside a longer word of a text the response quotes, to scrub it
    /// there too: made once per token, like the fingerprint.
    pub(crate) anchor: Option<SecretAnchor>,
}

impl InspectedToken {
    /// Whether `revoked` holds this token, in either of its spellings.
    pub(crate) fn is_in(&self, revoked: &super::RevokedTokens) -> bool {
        revoked.contains(&self.fingerprint) || self.twin.is_some_and(|twin| revoked.contains(&twin))
    }
}

/// Inspects bearer tokens: decodes JWTs, verifies them against the configured keys, and
/// remembers the result, so a token used a thousand times is verified once.
///
/// Inspection is synchronous and never does I/O: key sets fetched from a JWKS URL or file
/// are refreshed by a background task and swapped in atomically.
///
/// ```
/// use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
/// use oauth_audit::token::{TokenInspector, Verdict};
///
/// let secret = b"a-32-byte-long-secret-for-hs256!";
/// let inspector = TokenInspector::builder()
///     .hmac_secret(Algorithm::HS256, secret)
///     .issuer(["https://issuer"])
///     .build()
///     .unwrap();
/// let claims = serde_json::json!({"iss": "https://issuer", "sub": "alice", "exp": 4_000_000_000u64});
/// let token = encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).unwrap();
/// let seen = inspector.inspect(&token);
/// assert_eq!(seen.verdict, Verdict::Valid);
/// assert_eq!(seen.claims.subject.as_deref(), Some("alice"));
/// ```
#[derive(Clone)]
pub struct TokenInspector {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenInspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenInspector")
            .field("verifies", &self.inner.verifies)
            .field("issuers", &self.inner.issuers)
            .field("audiences", &self.inner.audiences)
            .field("leeway", &self.inner.leeway)
            .finish()
    }
}

impl Default for TokenInspector {
    /// Decodes without verifying: every JWT gets `Verdict::Unverified`.
    fn default() -> Self {
        TokenInspector {
            inner: Arc::new(Inner::new(
                KeySet::default(),
                false,
                Vec::new(),
                Vec::new(),
                60,
                10_000,
            )),
        }
    }
}

struct Inner {
    verifies: bool,
    /// Shared with the JWKS refresh task, which replaces the keys.
    keys: Arc<KeyStore>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: u64,
    allow_missing_expiry: bool,
    /// Inspections by [`CacheKey`]: nothing of a token itself is kept, only what was
    /// derived from it.
    cache: Cache<CacheKey, Arc<Cached>, ClaimsWeighter, foldhash::fast::RandomState>,
    /// The keys of [`CacheKey`]s: random, per inspector.
    cache_key: Keyer,
    verifications: AtomicU64,
    source: Option<JwksSource>,
}

/// A [`TokenInspector::cached_b64token`] probe that found nothing usable: the bytes it
/// looked for and their cache key.
pub(crate) struct Probe<'t> {
    token: &'t [u8],
    key: CacheKey,
}

/// A cached inspection: the time-independent part of the verdict.
struct Cached {
    generation: u64,
    /// Whether the token is an RFC 6750 `b64token`: the bearer reader need not check its
    /// characters again ([`TokenInspector::cached_b64token`]).
    b64token: bool,
    /// The result while the token is within its validity window.
    token: Arc<InspectedToken>,
    /// Its weight in the cache ([`ClaimsWeighter`]), worked out once.
    weight: u64,
}

/// Weighs a cached inspection by the claims it keeps: one for the token, and one more for
/// each KiB of claim text. Claims are capped, but a token at every cap keeps some 30 KiB:
/// counted as one, ten thousand tokens that fail verification (which cost an attacker
/// nothing to vary) would hold hundreds of MiB. So weighed, the cache holds about
/// `capacity` KiB of claims at most, and as many tokens as ever of the usual size.
#[derive(Clone, Copy)]
struct ClaimsWeighter;

/// The claim text counted as one more unit of a cache entry's weight.
const CLAIM_BYTES_PER_WEIGHT: usize = 1024;

impl Weighter<CacheKey, Arc<Cached>> for ClaimsWeighter {
    fn weight(&self, _key: &CacheKey, cached: &Arc<Cached>) -> u64 {
        cached.weight
    }
}

impl Inner {
    fn new(
        keys: KeySet,
        verifies: bool,
        issuers: Vec<String>,
        audiences: Vec<String>,
        leeway: u64,
        capacity: usize,
    ) -> Self {
        Inner {
            verifies,
            keys: Arc::new(KeyStore::new(keys)),
            issuers,
            audiences,
            leeway,
            allow_missing_expiry: false,
            cache: Cache::with(
                capacity.max(1),
                capacity.max(1) as u64,
                ClaimsWeighter,
                foldhash::fast::RandomState::default(),
                DefaultLifecycle::default(),
            ),
            cache_key: Keyer::random(),
            verifications: AtomicU64::new(0),
            source: None,
        }
    }
}

impl TokenInspector {
    /// Starts configuring an inspector.
    pub fn builder() -> TokenInspectorBuilder {
        TokenInspectorBuilder::default()
    }

    /// Inspects a raw bearer token. Never blocks on I/O.
    pub fn inspect(&self, raw: &str) -> Arc<InspectedToken> {
        self.inspect_probed(raw, None, None, now())
    }

    /// [`inspect`](Self::inspect), with the key of a [`cached_b64token`](Self::cached_b64token)
    /// probe that found nothing: used when it was made of these very bytes (the same place
    /// in memory), so that a token the cache has not seen is not hashed twice. `b64token`
    /// says whether `raw` is an RFC 6750 `b64token` when the caller knows (the bearer
    /// reader's `BearerCredential::Bearer` is one), so that its bytes are not checked again.
    pub(crate) fn inspect_probed(
        &self,
        raw: &str,
        probe: Option<Probe<'_>>,
        b64token: Option<bool>,
        now: i64,
    ) -> Arc<InspectedToken> {
        let inner = &self.inner;
        let key = match probe {
            Some(probe) if std::ptr::eq(probe.token, raw.as_bytes()) => probe.key,
            _ => inner.cache_key.key(raw.as_bytes()),
        };
        let generation = inner.keys.generation();
        if let Some(cached) = inner.cache.get(&key) {
            if cached.generation == generation {
                return self.used_again(&cached.token, now);
            }
        }
        let b64token = b64token.unwrap_or_else(|| super::bearer::is_b64token(raw));
        debug_assert_eq!(
            b64token,
            super::bearer::is_b64token(raw),
            "the caller's word on whether the token is a b64token"
        );
        let token = Arc::new(self.verify(raw, TokenFingerprint::of(raw), b64token));
        if token.verdict == Verdict::UnknownKey {
            self.request_refresh();
        }
        let result = self.at_time(&token, now);
        inner.cache.insert(
            key,
            Arc::new(Cached {
                generation,
                b64token,
                weight: 1 + (token.claims.text_bytes() / CLAIM_BYTES_PER_WEIGHT) as u64,
                token,
            }),
        );
        result
    }

    /// The cached inspection of `raw`, when there is one for the current keys and `raw` is
    /// an RFC 6750 `b64token`; else the probe, which sends the caller to the bearer
    /// reader's full rules and [`inspect_probed`](Self::inspect_probed).
    ///
    /// A request whose `Authorization` header has the right shape
    /// ([`bearer::well_shaped`](super::bearer::well_shaped)) and whose token this finds
    /// need not have its characters checked again: the cache key is a 128-bit keyed function
    /// of the token's bytes under keys nobody outside knows ([`CacheKey`]), so a hit is this
    /// token, checked when it was cached, except by a chance below 2^-119 a pair.
    pub(crate) fn cached_b64token<'t>(
        &self,
        raw: &'t [u8],
        now: i64,
    ) -> Result<Arc<InspectedToken>, Probe<'t>> {
        let inner = &self.inner;
        let key = inner.cache_key.key(raw);
        match inner.cache.get(&key) {
            Some(cached) if cached.b64token && cached.generation == inner.keys.generation() => {
                Ok(self.used_again(&cached.token, now))
            }
            _ => Err(Probe { token: raw, key }),
        }
    }

    /// Waits until a JWKS source has loaded its first key set (immediately when there is no
    /// such source). Useful at startup, so that the first requests are not `unknown_key`.
    pub async fn ready(&self) {
        if let Some(source) = &self.inner.source {
            source.ready().await;
        }
    }

    /// Waits until a JWKS source has tried to load its first key set, whether it could or
    /// not (immediately when there is no such source): what a server waits for at startup,
    /// so that the first requests are not `unknown_key` for lack of time, without waiting
    /// on a source that is down (see [`AuditLayer::token_inspector`](crate::AuditLayer::token_inspector)).
    pub async fn first_load(&self) {
        if let Some(source) = &self.inner.source {
            source.tried().await;
        }
    }

    /// How many signature verifications were performed (cache misses), for monitoring.
    pub fn verifications(&self) -> u64 {
        self.inner.verifications.load(Ordering::Relaxed)
    }

    /// A cached inspection of the current keys, for a token used again. A token whose key
    /// was missing asks for the keys again: the refresh it asked for when it was verified may
    /// have been put off by `min_refresh_interval` (another token had just asked), and
    /// without this it would stay `unknown_key` until the next periodic refresh.
    fn used_again(&self, token: &Arc<InspectedToken>, now: i64) -> Arc<InspectedToken> {
        if token.verdict == Verdict::UnknownKey {
            self.request_refresh();
        }
        self.at_time(token, now)
    }

    /// Asks the key source, if it changes, for a refresh (at most one per
    /// `min_refresh_interval`).
    fn request_refresh(&self) {
        if let Some(source) = &self.inner.source {
            source.request_refresh();
        }
    }

    /// Applies the time checks to a result whose other checks passed.
    fn at_time(&self, token: &Arc<InspectedToken>, now: i64) -> Arc<InspectedToken> {
        if token.verdict != Verdict::Valid {
            return token.clone();
        }
        let leeway = self.inner.leeway as i64;
        let verdict = match (token.claims.expires_at, token.claims.not_before) {
            (Some(exp), _) if now > exp.saturating_add(leeway) => Verdict::Expired,
            (_, Some(nbf)) if now < nbf.saturating_sub(leeway) => Verdict::NotYetValid,
            _ => return token.clone(),
        };
        Arc::new(InspectedToken {
            verdict,
            ..(**token).clone()
        })
    }

    /// Everything but the time checks (those depend on the clock, not on the token).
    fn verify(&self, raw: &str, fingerprint: TokenFingerprint, b64token: bool) -> InspectedToken {
        let inner = &self.inner;
        let parts: Vec<&str> = raw.split('.').collect();
        // A token that is not a b64token has a byte that ends a word: never inside one.
        let anchor = if b64token {
            SecretAnchor::of_token(raw)
        } else {
            None
        };
        let opaque = |verdict| InspectedToken {
            fingerprint,
            format: TokenFormat::Opaque,
            verdict,
            claims: TokenClaims::default(),
            memo: Memo::default(),
            twin: None,
            anchor,
        };
        // A JWT opens with its JOSE header. Anything else is a reference only its issuer can
        // read, dots or not: Google's access tokens begin `ya29.`, ORY Hydra's are
        // `ory_at_<key>.<signature>`, and they go to the resolver like any opaque token.
        let header = match parts.as_slice() {
            [first, _, ..] => decode_part::<HEADER_SLOTS>(first, header_slot),
            _ => None,
        };
        let Some(header) = header else {
            return opaque(Verdict::Unverified);
        };
        let malformed = InspectedToken {
            fingerprint,
            format: TokenFormat::Jwt,
            verdict: Verdict::Malformed,
            claims: TokenClaims::default(),
            memo: Memo::default(),
            twin: None,
            anchor,
        };
        if parts.len() != 3 {
            return malformed;
        }
        let Some(mut payload) = decode_part::<CLAIM_SLOTS>(parts[1], claim_slot) else {
            return malformed;
        };
        let claims = TokenClaims::from_members(&mut payload);
        // Each way out takes the claims once: they are moved into the answer, not copied.
        let with = |claims, verdict| InspectedToken {
            fingerprint,
            format: TokenFormat::Jwt,
            verdict,
            claims,
            memo: Memo::default(),
            twin: None,
            anchor,
        };
        if !inner.verifies {
            return with(claims, Verdict::Unverified);
        }
        // `alg: none` and unknown algorithms are never accepted; RFC 9864's `Ed25519` is
        // EdDSA.
        let Some(alg) = header[ALG]
            .as_ref()
            .and_then(Value::as_str)
            .and_then(super::keys::signing_algorithm)
        else {
            return with(claims, Verdict::BadSignature);
        };
        let kid = header[KID].as_ref().and_then(Value::as_str);
        let keys = inner.keys.current();
        inner.verifications.fetch_add(1, Ordering::Relaxed);
        let mut candidates = keys.candidates(kid, alg).peekable();
        if candidates.peek().is_none() {
            let known_kid = kid.is_some_and(|kid| keys.has_kid(kid));
            // A known key id used with an algorithm its key does not allow is a forgery
            // attempt (e.g. RS256 -> HS256 confusion), not a missing key.
            return with(
                claims,
                if known_kid {
                    Verdict::BadSignature
                } else {
                    Verdict::UnknownKey
                },
            );
        }
        if !candidates.any(|key| signature_ok(raw, key, alg)) {
            // Only keys without an id were tried for a key id no key has: the token's key
            // may not be fetched yet.
            let unknown_kid = kid.is_some_and(|kid| !keys.has_kid(kid));
            return with(
                claims,
                if unknown_kid {
                    Verdict::UnknownKey
                } else {
                    Verdict::BadSignature
                },
            );
        }
        // From here on the token is genuine, under either spelling of its signature.
        let with = |claims, verdict| InspectedToken {
            twin: ecdsa_twin_fingerprint(raw, alg),
            ..with(claims, verdict)
        };
        // Extensions the header marks critical must be understood or the token refused (RFC
        // 7515 §4.1.11), and none is understood here. A `nbf` that is no NumericDate (RFC
        // 7519 §4.1.5) says the token is not valid before some time it does not spell: read
        // as no `nbf`, it would be valid at once.
        if header[CRIT].is_some() || payload[NBF].as_ref().is_some_and(|nbf| !nbf.is_number()) {
            return with(claims, Verdict::Malformed);
        }
        if !inner.issuers.is_empty()
            && !claims
                .issuer
                .as_ref()
                .is_some_and(|iss| inner.issuers.contains(iss))
        {
            return with(claims, Verdict::WrongIssuer);
        }
        if !inner.audiences.is_empty()
            && !claims
                .audience
                .iter()
                .any(|aud| inner.audiences.contains(aud))
        {
            return with(claims, Verdict::WrongAudience);
        }
        // A token that never expires stays usable forever once leaked: only the operator
        // can decide that such tokens are acceptable.
        if !inner.allow_missing_expiry && !payload[EXP].as_ref().is_some_and(Value::is_number) {
            return with(claims, Verdict::NoExpiry);
        }
        with(claims, Verdict::Valid)
    }
}

/// Whether `key` signed `raw` (the JWS signing input, `header.payload`) with `alg`.
///
/// Only the signature: the inspector has decoded the header and claims already and checks
/// the claims itself, so that each failure gets its own verdict. `jsonwebtoken::decode`
/// would decode both again (the claims into a `Value`) and build a `Validation` of hash
/// sets, on every cache miss.
fn signature_ok(raw: &str, key: &VerifyKey, alg: Algorithm) -> bool {
    let Some((signing_input, signature)) = raw.rsplit_once('.') else {
        return false;
    };
    // A key verifies only the algorithms it was made ready for, never one of another
    // family (an RSA public key taken as an HMAC secret): see `VerifyKey::new`.
    key.verifies(alg, signing_input.as_bytes(), signature)
}

/// The fingerprint of [`ecdsa_twin`]: how the revoked set knows the token's other spelling.
fn ecdsa_twin_fingerprint(raw: &str, alg: Algorithm) -> Option<TokenFingerprint> {
    ecdsa_twin(raw, alg).map(|twin| TokenFingerprint::of(&twin))
}

/// `raw` with its ECDSA signature `(r, s)` written as `(r, n - s)`, the other signature of
/// the same message under the same key (`None` for other algorithms). Verifiers accept
/// both, so whoever holds one spelling of a token can make the other.
fn ecdsa_twin(raw: &str, alg: Algorithm) -> Option<String> {
    /// The orders of the P-256 and P-384 groups, big-endian.
    const P256: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    const P384: [u8; 48] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc7, 0x63, 0x4d, 0x81, 0xf4, 0x37,
        0x2d, 0xdf, 0x58, 0x1a, 0x0d, 0xb2, 0x48, 0xb0, 0xa7, 0x7a, 0xec, 0xec, 0x19, 0x6a, 0xcc,
        0xc5, 0x29, 0x73,
    ];
    let order: &[u8] = match alg {
        Algorithm::ES256 => &P256,
        Algorithm::ES384 => &P384,
        _ => return None,
    };
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (signing_input, signature) = raw.rsplit_once('.')?;
    let mut signature = b64.decode(signature).ok()?;
    if signature.len() != 2 * order.len() {
        return None;
    }
    // s lies in [1, n - 1] (the signature verified), so n - s does too: no overflow.
    let s = &mut signature[order.len()..];
    let mut borrow = 0u8;
    for (digit, &n) in s.iter_mut().zip(order).rev() {
        let (d, under) = n.overflowing_sub(*digit);
        let (d, under_again) = d.overflowing_sub(borrow);
        *digit = d;
        borrow = u8::from(under || under_again);
    }
    Some(format!("{signing_input}.{}", b64.encode(signature)))
}

/// The members `slot` picks out of a JWT's part, which must be base64url of one JSON
/// object (see [`crate::json::members`]).
fn decode_part<const N: usize>(
    part: &str,
    slot: fn(&str) -> Option<usize>,
) -> Option<[Option<Value>; N]> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    crate::json::members(&bytes, slot)
}

/// The members of a JOSE header that the inspector reads, by slot.
const ALG: usize = 0;
const KID: usize = 1;
const CRIT: usize = 2;
const HEADER_SLOTS: usize = 3;

fn header_slot(name: &str) -> Option<usize> {
    Some(match name {
        "alg" => ALG,
        "kid" => KID,
        "crit" => CRIT,
        _ => return None,
    })
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A URL whose `Debug` hides its credentials and query, which may carry a key.
#[cfg(feature = "jwks")]
#[derive(Clone, Default)]
struct ShownInDebug(String);

#[cfg(feature = "jwks")]
impl std::fmt::Debug for ShownInDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&crate::text::shown_url(&self.0), f)
    }
}

/// Configures a [`TokenInspector`].
#[derive(Debug, Default)]
#[must_use]
pub struct TokenInspectorBuilder {
    static_keys: Vec<Result<VerifyKey, TokenConfigError>>,
    jwks_documents: Vec<String>,
    jwks_file: Option<PathBuf>,
    #[cfg(feature = "jwks")]
    jwks_url: Option<ShownInDebug>,
    refresh_interval: Option<Duration>,
    min_refresh_interval: Option<Duration>,
    issuers: Vec<String>,
    audiences: Vec<String>,
    leeway: Option<Duration>,
    cache_capacity: Option<usize>,
    allow_missing_expiry: bool,
}

/// The shortest accepted JWKS refresh interval (periodic or forced by an unknown key id):
/// 1 second. Shorter intervals would make the auditor hammer the key server.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl TokenInspectorBuilder {
    /// An HMAC secret (HS256/384/512), at least 32 bytes; another algorithm is an error from
    /// [`build`](Self::build).
    pub fn hmac_secret(mut self, alg: Algorithm, secret: &[u8]) -> Self {
        self.static_keys
            .push(static_key_of(AlgorithmFamily::Hmac, alg, secret, None));
        self
    }

    /// An RSA public key in PEM (RS* or PS*) of 2048 to 4096 bits, with its key id if tokens
    /// name one. A key of another size, or an algorithm not RS* or PS* (a public key is no
    /// HMAC secret), is an error from [`build`](Self::build).
    pub fn rsa_pem(mut self, alg: Algorithm, pem: &[u8], kid: Option<&str>) -> Self {
        self.static_keys
            .push(static_key_of(AlgorithmFamily::Rsa, alg, pem, kid));
        self
    }

    /// An EC public key in PEM (ES256, ES384); another algorithm is an error from
    /// [`build`](Self::build).
    pub fn ec_pem(mut self, alg: Algorithm, pem: &[u8], kid: Option<&str>) -> Self {
        self.static_keys
            .push(static_key_of(AlgorithmFamily::Ec, alg, pem, kid));
        self
    }

    /// An Ed25519 public key in PEM (EdDSA).
    pub fn ed_pem(mut self, pem: &[u8], kid: Option<&str>) -> Self {
        self.static_keys.push(static_key_of(
            AlgorithmFamily::Ed,
            Algorithm::EdDSA,
            pem,
            kid,
        ));
        self
    }

    /// A static JWKS document. Keys that cannot verify (encryption keys, unknown key types,
    /// RSA keys outside 2048 to 4096 bits, HMAC keys under 32 bytes) are skipped with a
    /// warning. A key listed for an
    /// algorithm it cannot verify (one of another family, or one aws-lc refuses for it) is
    /// kept, with a warning, and verifies nothing: a token naming it is `bad_signature`.
    pub fn jwks_json(mut self, json: impl Into<String>) -> Self {
        self.jwks_documents.push(json.into());
        self
    }

    /// A JWKS document in a file, re-read in the background when it changes.
    pub fn jwks_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.jwks_file = Some(path.into());
        self
    }

    /// A JWKS URL (`https://issuer/.well-known/jwks.json`), fetched in the background every
    /// refresh interval and when a token names an unknown key id. A fetch has 10 seconds and
    /// reads at most 1 MiB: a longer or slower answer is a failed refresh, and the keys in
    /// use stay.
    #[cfg(feature = "jwks")]
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(ShownInDebug(url.into()));
        self
    }

    /// How often a JWKS file or URL is re-read (default 5 minutes, at least
    /// [`MIN_REFRESH_INTERVAL`]).
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = Some(interval);
        self
    }

    /// The least time between two refreshes triggered by unknown key ids (default 10 s, at
    /// least [`MIN_REFRESH_INTERVAL`]).
    pub fn min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = Some(interval);
        self
    }

    /// Accepted issuers (`iss`); any one matches. None configured: not checked.
    pub fn issuer<I, S>(mut self, issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.issuers.extend(issuers.into_iter().map(Into::into));
        self
    }

    /// Accepted audiences (`aud`); one match is enough. None configured: not checked.
    pub fn audience<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Accept verified tokens that carry no `exp` claim (or a non-numeric one) as `valid`.
    /// By default they get the verdict `no_expiry`: a token that never expires stays
    /// usable forever once leaked.
    pub fn allow_missing_expiry(mut self, allow: bool) -> Self {
        self.allow_missing_expiry = allow;
        self
    }

    /// How many inspected tokens are remembered (default 10 000). A token whose claims hold
    /// more than 1 KiB of text counts once more for each KiB, so that tokens at the claim
    /// caps cannot make the cache hold hundreds of MiB.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = Some(capacity);
        self
    }

    /// Checks the configuration. A JWKS file or URL starts its background refresh, which
    /// needs a Tokio runtime.
    pub fn build(self) -> Result<TokenInspector, TokenConfigError> {
        let mut keys = KeySet::default();
        for key in self.static_keys {
            keys.keys.push(key?);
        }
        for doc in &self.jwks_documents {
            keys.keys.extend(KeySet::from_jwks(doc)?.keys);
        }
        // Keys that never change; a JWKS file or URL replaces everything else on refresh.
        let static_keys = keys.clone();
        let source = match (&self.jwks_file, {
            #[cfg(feature = "jwks")]
            {
                self.jwks_url.clone().map(|url| url.0)
            }
            #[cfg(not(feature = "jwks"))]
            {
                None::<String>
            }
        }) {
            (Some(_), Some(_)) => {
                return Err(TokenConfigError::Invalid(
                    "configure either a JWKS file or a JWKS URL, not both".into(),
                ))
            }
            (Some(path), None) => {
                // Read once now, so that a missing or broken file is a configuration error.
                let text = std::fs::read_to_string(path)
                    .map_err(|e| TokenConfigError::Jwks(format!("{}: {e}", path.display())))?;
                keys.keys.extend(KeySet::from_jwks(&text)?.keys);
                Some(KeySource::File(path.clone()))
            }
            (None, Some(url)) => Some(KeySource::url(&url)?),
            (None, None) => None,
        };
        let verifies = !keys.keys.is_empty() || source.is_some();
        for (name, interval) in [
            ("refresh_interval", self.refresh_interval),
            ("min_refresh_interval", self.min_refresh_interval),
        ] {
            if let Some(interval) = interval.filter(|i| *i < MIN_REFRESH_INTERVAL) {
                return Err(TokenConfigError::Invalid(format!(
                    "{name} {interval:?} is too short: the least accepted is {MIN_REFRESH_INTERVAL:?}, so that the key server is not hammered"
                )));
            }
        }
        if self.cache_capacity == Some(0) {
            return Err(TokenConfigError::Invalid(
                "cache_capacity must be at least 1".into(),
            ));
        }
        let mut inner = Inner::new(
            keys,
            verifies,
            self.issuers,
            self.audiences,
            self.leeway.unwrap_or(Duration::from_secs(60)).as_secs(),
            self.cache_capacity.unwrap_or(10_000),
        );
        inner.allow_missing_expiry = self.allow_missing_expiry;
        let Some(source) = source else {
            return Ok(TokenInspector {
                inner: Arc::new(inner),
            });
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TokenConfigError::NoRuntime);
        }
        let (handle, task) = JwksSource::new(
            source,
            static_keys,
            self.refresh_interval.unwrap_or(Duration::from_secs(300)),
            self.min_refresh_interval.unwrap_or(Duration::from_secs(10)),
        );
        // The task stops when the inspector, the store's only other owner, is gone.
        tokio::spawn(task.run(Arc::downgrade(&inner.keys)));
        inner.source = Some(handle);
        let inner = Arc::new(inner);
        Ok(TokenInspector { inner })
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{encode, DecodingKey, EncodingKey, Header};

    use super::*;

    const SECRET: &[u8] = b"a-32-byte-long-secret-for-hs256!";

    fn hs256(secret: &[u8]) -> String {
        let claims = serde_json::json!({"sub": "alice"});
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn key(key: DecodingKey, algorithms: Vec<Algorithm>) -> VerifyKey {
        VerifyKey::new(None, &key, &algorithms).0
    }

    /// A token with this header and payload, signed with HS256 under [`SECRET`].
    fn signed(header: &Value, payload: &Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(payload.to_string())
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET);
        let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", b64.encode(tag.as_ref()))
    }

    /// `serde_json`'s `Value` (its `raw_value` feature on) reads this payload as
    /// `{"sub":"admin","exp":...}`; the server, as one claim with an odd name and no `exp`.
    #[test]
    fn claims_wrapped_in_serde_jsons_raw_value_name_are_not_read() {
        let inspector = TokenInspector::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .build()
            .unwrap();
        let inner = serde_json::json!({"sub": "admin", "scope": "admin", "exp": 4_000_000_000_u64});
        let token = signed(
            &serde_json::json!({"alg": "HS256"}),
            &serde_json::json!({ "$serde_json::private::RawValue": inner.to_string() }),
        );
        let seen = inspector.inspect(&token);
        assert_eq!(seen.verdict, Verdict::NoExpiry);
        assert_eq!(seen.claims.subject, None);
        assert!(seen.claims.scopes.is_empty());
        // The header too: an `alg` inside the name's string is no `alg`.
        let header = serde_json::json!({ "$serde_json::private::RawValue": r#"{"alg":"HS256"}"# });
        let token = signed(&header, &inner);
        assert_eq!(inspector.inspect(&token).verdict, Verdict::BadSignature);
    }

    #[test]
    fn critical_extensions_and_an_unreadable_nbf_are_refused() {
        let inspector = TokenInspector::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .allow_missing_expiry(true)
            .build()
            .unwrap();
        let hs256 = serde_json::json!({"alg": "HS256"});
        let verdict =
            |header: &Value, payload: Value| inspector.inspect(&signed(header, &payload)).verdict;
        assert_eq!(
            verdict(&hs256, serde_json::json!({"sub": "a"})),
            Verdict::Valid
        );
        // Signed by the key, yet with an extension nobody here understands.
        let critical = serde_json::json!({"alg": "HS256", "crit": ["exp"], "exp": 1});
        assert_eq!(
            verdict(&critical, serde_json::json!({"sub": "a"})),
            Verdict::Malformed
        );
        let b64_false = serde_json::json!({"alg": "HS256", "b64": false, "crit": ["b64"]});
        assert_eq!(
            verdict(&b64_false, serde_json::json!({"sub": "a"})),
            Verdict::Malformed
        );
        // `nbf` as a date string, not a NumericDate; a number far ahead is not yet valid.
        assert_eq!(
            verdict(&hs256, serde_json::json!({"sub": "a", "nbf": "2999-01-01"})),
            Verdict::Malformed
        );
        assert_eq!(
            verdict(
                &hs256,
                serde_json::json!({"sub": "a", "nbf": 32_503_680_000_i64})
            ),
            Verdict::NotYetValid
        );
        // A forged token is a bad signature first, whatever it says.
        let forged = format!("{}x", signed(&critical, &serde_json::json!({})));
        assert_eq!(inspector.inspect(&forged).verdict, Verdict::BadSignature);
    }

    #[test]
    fn only_the_signature_over_header_and_payload_counts() {
        let secret = key(DecodingKey::from_secret(SECRET), vec![Algorithm::HS256]);
        let token = hs256(SECRET);
        assert!(signature_ok(&token, &secret, Algorithm::HS256));
        assert!(!signature_ok(
            &hs256(b"another-32-byte-long-secret-here"),
            &secret,
            Algorithm::HS256
        ));
        // Any change to the signing input, or no signature at all.
        let (input, signature) = token.rsplit_once('.').unwrap();
        assert!(!signature_ok(
            &format!("{input}x.{signature}"),
            &secret,
            Algorithm::HS256
        ));
        assert!(!signature_ok(input, &secret, Algorithm::HS256));
        assert!(!signature_ok(
            &format!("{input}."),
            &secret,
            Algorithm::HS256
        ));
        // The right algorithm only.
        assert!(!signature_ok(&token, &secret, Algorithm::HS384));
    }

    #[test]
    fn an_ecdsa_signature_has_one_other_spelling_that_verifies() {
        use aws_lc_rs::signature::{
            EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
        };
        for (alg, signing) in [
            (Algorithm::ES256, &ECDSA_P256_SHA256_FIXED_SIGNING),
            (Algorithm::ES384, &ECDSA_P384_SHA384_FIXED_SIGNING),
        ] {
            let pair = EcdsaKeyPair::generate(signing).unwrap();
            let pkcs8 = pair.to_pkcs8v1().unwrap();
            let token = encode(
                &Header::new(alg),
                &serde_json::json!({"sub": "alice"}),
                &EncodingKey::from_ec_der(pkcs8.as_ref()),
            )
            .unwrap();
            let public = key(
                DecodingKey::from_ec_der(pair.public_key().as_ref()),
                vec![alg],
            );
            assert!(signature_ok(&token, &public, alg), "{alg:?}");
            let twin = ecdsa_twin(&token, alg).unwrap();
            assert_ne!(twin, token, "{alg:?}");
            assert!(
                signature_ok(&twin, &public, alg),
                "{alg:?}: the twin verifies"
            );
            assert_eq!(ecdsa_twin(&twin, alg).unwrap(), token, "{alg:?}");
        }
        assert_eq!(ecdsa_twin(&hs256(SECRET), Algorithm::HS256), None);
    }

    #[test]
    fn tokens_at_the_claim_caps_weigh_by_their_claims() {
        let inspector = TokenInspector::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .cache_capacity(1_000)
            .build()
            .unwrap();
        let b64 = |json: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json.to_string())
        };
        let header = b64(&serde_json::json!({"alg": "HS256"}));
        let scope: Vec<String> = (0..64).map(|i| format!("{i:0>250}")).collect();
        let audience: Vec<String> = (0..16).map(|i| format!("{i:a>250}")).collect();
        // Forged tokens at every cap: bad signatures, which anyone can make by the thousand.
        for i in 0..1_000 {
            let payload = b64(&serde_json::json!({
                "sub": format!("{i:x>250}"), "scope": scope.join(" "), "aud": audience,
            }));
            let seen = inspector.inspect(&format!("{header}.{payload}.c2ln"));
            assert_eq!(seen.verdict, Verdict::BadSignature);
            assert!(seen.claims.text_bytes() > 19 * 1024);
        }
        let kept = inspector.inner.cache.len();
        assert!(
            kept * 20 <= 1_000,
            "{kept} tokens of over 19 KiB of claims each kept"
        );
    }

    #[test]
    fn a_key_of_another_family_never_verifies() {
        // An RSA public key listed (wrongly) for HS256: a token "signed" with the key's own
        // PEM as the HMAC secret must not pass.
        let modulus = "xcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcXFxcU";
        let rsa = DecodingKey::from_rsa_components(modulus, "AQAB").unwrap();
        let secret = modulus.as_bytes();
        let confused = key(rsa, vec![Algorithm::HS256]);
        assert!(!signature_ok(&hs256(secret), &confused, Algorithm::HS256));
    }

    #[test]
    fn a_key_id_no_key_has_is_an_unknown_key_also_beside_a_key_without_id() {
        // A key without `kid` is tried for every token of its algorithm; one it does not
        // verify that names a key id nobody has may be signed by a key not fetched yet.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let other = b"another-32-byte-secret-for-hs256";
        let jwks = format!(
            r#"{{"keys":[{{"kty":"oct","kid":"a","alg":"HS256","k":"{}"}}]}}"#,
            b64.encode(other)
        );
        let inspector = TokenInspector::builder()
            .hmac_secret(Algorithm::HS256, SECRET)
            .jwks_json(jwks)
            .allow_missing_expiry(true)
            .build()
            .unwrap();
        let token = |kid: &str, secret: &[u8]| {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(kid.to_owned());
            let claims = serde_json::json!({"sub": "alice"});
            encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
        };
        let verdict = |token: &str| inspector.inspect(token).verdict;
        let rotated = b"a-rotated-32-byte-secret-hs256!!";
        assert_eq!(verdict(&token("rotated", rotated)), Verdict::UnknownKey);
        assert_eq!(verdict(&token("rotated", SECRET)), Verdict::Valid);
        assert_eq!(verdict(&token("a", other)), Verdict::Valid);
        assert_eq!(verdict(&token("a", rotated)), Verdict::BadSignature);
        assert_eq!(verdict(&hs256(rotated)), Verdict::BadSignature);
    }

    #[test]
    fn a_pem_key_is_refused_for_an_algorithm_of_another_family() {
        // A public key's PEM taken as an HMAC secret would let anyone holding the public key
        // sign tokens: `rsa_pem(HS256, ...)` and `ec_pem(HS256, ...)` are configuration errors.
        use aws_lc_rs::encoding::AsDer;
        use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, RsaKeyPair};
        let pem = |der: &[u8]| {
            let body = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n")
        };
        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let rsa = pem(rsa.public_key().as_der().unwrap().as_ref());
        let ec =
            EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let ec = pem(ec.public_key().as_der().unwrap().as_ref());
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            for (name, builder) in [
                (
                    "rsa_pem",
                    TokenInspector::builder().rsa_pem(alg, rsa.as_bytes(), None),
                ),
                (
                    "ec_pem",
                    TokenInspector::builder().ec_pem(alg, ec.as_bytes(), None),
                ),
            ] {
                let Err(TokenConfigError::Key { algorithm, .. }) = builder.build() else {
                    panic!("{name}({alg:?}) took a public key as an HMAC secret");
                };
                assert_eq!(algorithm, alg);
            }
        }
        // A secret for an asymmetric algorithm, or a PEM key for another kind of key's
        // algorithm, is refused too.
        let secret = [b'k'; 64];
        for (name, refused) in [
            (
                "hmac_secret",
                TokenInspector::builder().hmac_secret(Algorithm::RS256, &secret),
            ),
            (
                "rsa_pem",
                TokenInspector::builder().rsa_pem(Algorithm::ES256, ec.as_bytes(), None),
            ),
            (
                "ec_pem",
                TokenInspector::builder().ec_pem(Algorithm::RS256, rsa.as_bytes(), None),
            ),
        ] {
            assert!(refused.build().is_err(), "{name}");
        }
    }

    #[test]
    fn a_token_naming_rfc_9864s_ed25519_verifies_as_eddsa() {
        use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let pair = Ed25519KeyPair::generate().unwrap();
        let x = b64.encode(pair.public_key().as_ref());
        let payload = b64.encode(br#"{"sub":"alice","exp":4102444800}"#);
        let signed = |header: &str| {
            let input = format!("{}.{payload}", b64.encode(header));
            let signature = b64.encode(pair.sign(input.as_bytes()).as_ref());
            format!("{input}.{signature}")
        };
        // The key declared either way, and not at all.
        for declared in [r#","alg":"Ed25519""#, r#","alg":"EdDSA""#, ""] {
            let jwks = format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"k","x":"{x}"{declared}}}]}}"#
            );
            let inspector = TokenInspector::builder().jwks_json(jwks).build().unwrap();
            for header in [r#"{"alg":"Ed25519","kid":"k"}"#, r#"{"alg":"EdDSA"}"#] {
                let token = signed(header);
                assert_eq!(
                    inspector.inspect(&token).verdict,
                    Verdict::Valid,
                    "{header} {declared}"
                );
                // Another signature is still refused.
                let (input, _) = token.rsplit_once('.').unwrap();
                let forged = format!("{input}.{}", b64.encode([7u8; 64]));
                assert_eq!(inspector.inspect(&forged).verdict, Verdict::BadSignature);
            }
        }
    }

    #[test]
    fn a_token_for_a_jwks_key_that_verifies_nothing_is_a_bad_signature_with_or_without_kid() {
        // Keys that name an algorithm they cannot verify (an RSA key marked HS256, a P-256
        // key marked ES384, an Ed25519 key of 31 bytes), beside a usable RS256 key. A token of one of those
        // algorithms is one of those keys' (forged) tokens whether or not it names the key,
        // as with `jsonwebtoken::crypto::verify`: never a key the inspector lacks.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let n = b64.encode([0xc5u8; 256]);
        let p256 = b64.encode([7u8; 32]);
        let short = b64.encode([9u8; 31]);
        let jwks = format!(
            r#"{{"keys":[
                {{"kty":"RSA","kid":"confused","alg":"HS256","n":"{n}","e":"AQAB"}},
                {{"kty":"EC","kid":"curve","alg":"ES384","crv":"P-256","x":"{p256}","y":"{p256}"}},
                {{"kty":"OKP","kid":"short","crv":"Ed25519","x":"{short}"}},
                {{"kty":"RSA","kid":"good","alg":"RS256","n":"{n}","e":"AQAB"}}]}}"#
        );
        let inspector = TokenInspector::builder().jwks_json(jwks).build().unwrap();
        let token = |header: Value| {
            let payload = b64.encode(br#"{"sub":"alice","exp":4102444800}"#);
            format!("{}.{payload}.c2ln", b64.encode(header.to_string()))
        };
        for alg in ["HS256", "ES384", "EdDSA"] {
            for header in [
                serde_json::json!({"alg": alg}),
                serde_json::json!({"alg": alg, "kid": "confused"}),
            ] {
                let verdict = inspector.inspect(&token(header.clone())).verdict;
                assert_eq!(verdict, Verdict::BadSignature, "{header}");
            }
        }
        // A key id no key has, with an algorithm no key names, is a key the inspector lacks.
        let unknown = serde_json::json!({"alg": "ES256", "kid": "elsewhere"});
        assert_eq!(
            inspector.inspect(&token(unknown)).verdict,
            Verdict::UnknownKey
        );
        // The HS256 forgery of the classic confusion: the RSA key's own bytes as the secret.
        let forged = hs256(&[0xc5u8; 256]);
        assert_eq!(inspector.inspect(&forged).verdict, Verdict::BadSignature);
    }
}
