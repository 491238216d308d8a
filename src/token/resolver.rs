use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quick_cache::sync::Cache;

use super::{InspectedToken, TokenClaims, TokenFingerprint, Verdict};

/// The future a [`TokenResolver`] returns.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Resolution> + Send + 'a>>;

/// What a [`TokenResolver`] found out about an opaque token.
// Answers are short-lived or shared behind an `Arc`: boxing the claims would only add an
// allocation per lookup.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The token is active; these are its claims (verdict `valid`, or `expired` past `exp`).
    Active(TokenClaims),
    /// The token is unknown, revoked or expired (verdict `inactive`).
    Inactive,
    /// No answer: the endpoint could not be reached or failed, or the lookup was refused by
    /// a rate limit (verdict `unavailable`). Never cached as an answer about the token.
    Unavailable,
}

impl From<Option<TokenClaims>> for Resolution {
    /// `Some` is active, `None` inactive: what resolvers written as closures return.
    fn from(claims: Option<TokenClaims>) -> Self {
        claims.map_or(Resolution::Inactive, Resolution::Active)
    }
}

/// One lookup: the token, and who presented it (for per-client rate limits).
///
/// Its `Debug` shows the token's fingerprint, never the token, so a lookup can be logged.
///
/// ```
/// use oauth_audit::token::ResolveRequest;
///
/// let shown = format!("{:?}", ResolveRequest::new("2YotnFZFEjr1zCsicMWpAA", None));
/// assert!(!shown.contains("2YotnFZFEjr1zCsicMWpAA"));
/// assert!(shown.contains("sha256:"));
/// ```
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct ResolveRequest<'a> {
    /// The raw bearer token.
    pub token: &'a str,
    /// The client address of the request (`source.ip`), when known.
    pub client_ip: Option<IpAddr>,
}

impl std::fmt::Debug for ResolveRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolveRequest")
            .field("token", &TokenFingerprint::of(self.token))
            .field("client_ip", &self.client_ip)
            .finish()
    }
}

impl<'a> ResolveRequest<'a> {
    /// A lookup of `token` presented by `client_ip`.
    pub fn new(token: &'a str, client_ip: Option<IpAddr>) -> Self {
        ResolveRequest { token, client_ip }
    }
}

/// Supplies the claims of opaque tokens (for example by RFC 7662 introspection).
///
/// Closures `Fn(String) -> impl Future<Output = Option<TokenClaims>>` are resolvers
/// (`None` meaning inactive); so are closures whose future yields a [`Resolution`], which
/// can also say [`Resolution::Unavailable`]. Wrap a resolver in [`CachedResolver`] so each
/// token is resolved once, concurrent lookups of a token are coalesced, and lookups are
/// rate-limited.
///
/// Read the authorization server's answer with [`crate::json::from_slice`] and
/// [`TokenClaims::from_json`]: `serde_json`'s own `Value` can read an object as other JSON
/// than it holds (see [`crate::json`]).
///
/// ```
/// use oauth_audit::token::{CachedResolver, TokenClaims};
///
/// let resolver = CachedResolver::new(|token: String| async move {
///     // ask the authorization server about `token` here
///     (token == "opaque-1").then(TokenClaims::default)
/// });
/// ```
pub trait TokenResolver: Send + Sync + 'static {
    /// Looks the token up.
    fn resolve<'a>(&'a self, request: ResolveRequest<'a>) -> ResolveFuture<'a>;

    /// Forgets whatever was remembered about the token with this fingerprint (the audit
    /// trail saw it revoked). Resolvers without a cache need not do anything.
    fn forget(&self, _fingerprint: &TokenFingerprint) {}
}

impl<F, Fut, O> TokenResolver for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = O> + Send + 'static,
    O: Into<Resolution>,
{
    fn resolve<'a>(&'a self, request: ResolveRequest<'a>) -> ResolveFuture<'a> {
        let future = self(request.token.to_owned());
        Box::pin(async move { future.await.into() })
    }
}

/// The inspection of an opaque token completed with what its resolver answered: its
/// claims and `Valid` (or `Expired` past `exp`) when active, `Inactive` or `Unavailable`
/// otherwise.
pub(crate) fn resolved(token: &InspectedToken, answer: Resolution) -> InspectedToken {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let (verdict, claims) = match answer {
        Resolution::Inactive => (Verdict::Inactive, TokenClaims::default()),
        Resolution::Unavailable => (Verdict::Unavailable, TokenClaims::default()),
        Resolution::Active(c) if c.expires_at.is_some_and(|exp| exp < now) => (Verdict::Expired, c),
        Resolution::Active(c) => (Verdict::Valid, c),
    };
    InspectedToken {
        fingerprint: token.fingerprint,
        format: token.format,
        verdict,
        claims,
        memo: super::Memo::default(),
        twin: None,
        anchor: token.anchor,
    }
}

/// A rate: `count` lookups per `per`, as a token bucket that holds at most `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    count: u32,
    per: Duration,
}

impl Rate {
    /// `count` lookups per `per` (a burst of `count` is allowed). A zero `per` is one
    /// millisecond.
    pub fn new(count: u32, per: Duration) -> Self {
        Rate {
            count,
            per: per.max(Duration::from_millis(1)),
        }
    }

    /// `count` lookups per second.
    pub fn per_second(count: u32) -> Self {
        Rate::new(count, Duration::from_secs(1))
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn full(rate: Rate) -> Self {
        Bucket {
            tokens: f64::from(rate.count),
            refilled: Instant::now(),
        }
    }

    fn take(&mut self, rate: Rate) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        let capacity = f64::from(rate.count);
        self.tokens = (self.tokens + elapsed * capacity / rate.per.as_secs_f64()).min(capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The introspection budget: per client address (bounded state) and in total.
struct Limits {
    per_client: Option<Rate>,
    /// Buckets of the clients seen last; a client evicted starts again with a full bucket,
    /// which the total limit still bounds.
    clients: Cache<IpAddr, Arc<Mutex<Bucket>>>,
    total: Option<(Rate, Mutex<Bucket>)>,
}

impl Limits {
    fn admit(&self, client: Option<IpAddr>) -> bool {
        if let (Some(rate), Some(ip)) = (self.per_client, client) {
            let bucket = self
                .clients
                .get_or_insert_with(&ip, || {
                    Ok::<_, std::convert::Infallible>(Arc::new(Mutex::new(Bucket::full(rate))))
                })
                .unwrap_or_else(|never| match never {});
            if !bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(rate)
            {
                return false;
            }
        }
        match &self.total {
            Some((rate, bucket)) => bucket
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(*rate),
            None => true,
        }
    }
}

/// One remembered answer.
#[derive(Debug)]
struct Remembered {
    answer: Resolution,
    until: Instant,
}

/// Remembers what a resolver answered, by token fingerprint: active tokens until their
/// `exp` (at most `max_ttl`), unknown or inactive ones for `negative_ttl`, unavailable
/// answers for `unavailable_ttl`.
///
/// Concurrent lookups of one token wait for a single call. Calls are rate-limited per
/// client address and in total (defaults: 10 per second per client, 100 per second in
/// all); a lookup over the limit answers [`Resolution::Unavailable`] without a call, so
/// random tokens cannot turn the auditor into an amplifier against the authorization
/// server.
pub struct CachedResolver<R> {
    inner: R,
    cache: Cache<TokenFingerprint, Arc<Remembered>>,
    max_ttl: Duration,
    negative_ttl: Duration,
    unavailable_ttl: Duration,
    limits: Limits,
}

impl<R> std::fmt::Debug for CachedResolver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedResolver")
            .field("max_ttl", &self.max_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("unavailable_ttl", &self.unavailable_ttl)
            .field("per_client", &self.limits.per_client)
            .field("total", &self.limits.total.as_ref().map(|(rate, _)| rate))
            .finish_non_exhaustive()
    }
}

/// How many client addresses the per-client limit tracks at once.
const TRACKED_CLIENTS: usize = 10_000;

impl<R: TokenResolver> CachedResolver<R> {
    /// Caches up to 10 000 answers, active ones for at most 5 minutes, inactive ones for
    /// 10 s, unavailable ones for 1 s; at most 10 lookups per second per client address and
    /// 100 per second in total.
    pub fn new(inner: R) -> Self {
        CachedResolver {
            inner,
            cache: Cache::new(10_000),
            max_ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(10),
            unavailable_ttl: Duration::from_secs(1),
            limits: Limits {
                per_client: Some(Rate::per_second(10)),
                clients: Cache::new(TRACKED_CLIENTS),
                total: Some((
                    Rate::per_second(100),
                    Mutex::new(Bucket::full(Rate::per_second(100))),
                )),
            },
        }
    }

    /// How long an active token's claims are kept at most.
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// How long an unknown or inactive answer is kept.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }

    /// How long an `Unavailable` answer of the inner resolver (endpoint down) is reused, so
    /// that an outage is not hammered. Refusals by the rate limits are never reused.
    pub fn unavailable_ttl(mut self, ttl: Duration) -> Self {
        self.unavailable_ttl = ttl;
        self
    }

    /// How many answers are kept.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.cache = Cache::new(capacity.max(1));
        self
    }

    /// The most lookups one client address may cause (`None`: no per-client limit).
    pub fn limit_per_client(mut self, rate: Option<Rate>) -> Self {
        self.limits.per_client = rate;
        self
    }

    /// The most lookups in total (`None`: no total limit).
    pub fn limit_total(mut self, rate: Option<Rate>) -> Self {
        self.limits.total = rate.map(|rate| (rate, Mutex::new(Bucket::full(rate))));
        self
    }

    fn ttl(&self, answer: &Resolution) -> Duration {
        match answer {
            Resolution::Inactive => self.negative_ttl,
            Resolution::Unavailable => self.unavailable_ttl,
            Resolution::Active(c) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let left = c.expires_at.map_or(self.max_ttl, |exp| {
                    Duration::from_secs(exp.saturating_sub(now).max(0) as u64)
                });
                left.min(self.max_ttl)
            }
        }
    }
}

impl<R: TokenResolver> TokenResolver for CachedResolver<R> {
    fn resolve<'a>(&'a self, request: ResolveRequest<'a>) -> ResolveFuture<'a> {
        Box::pin(async move {
            let fingerprint = TokenFingerprint::of(request.token);
            if let Some(remembered) = self.cache.get(&fingerprint) {
                if Instant::now() < remembered.until {
                    return remembered.answer.clone();
                }
                self.cache
                    .remove_if(&fingerprint, |r| Arc::ptr_eq(r, &remembered));
            }
            // Whoever gets the guard calls; the others wait for its answer.
            let guard = match self.cache.get_value_or_guard_async(&fingerprint).await {
                Ok(remembered) => return remembered.answer.clone(),
                Err(guard) => guard,
            };
            if !self.limits.admit(request.client_ip) {
                return Resolution::Unavailable;
            }
            let answer = self.inner.resolve(request).await;
            let ttl = self.ttl(&answer);
            let _ = guard.insert(Arc::new(Remembered {
                answer: answer.clone(),
                until: Instant::now() + ttl,
            }));
            answer
        })
    }

    fn forget(&self, fingerprint: &TokenFingerprint) {
        self.cache.remove(fingerprint);
        self.inner.forget(fingerprint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ask(token: &str) -> ResolveRequest<'_> {
        ResolveRequest::new(token, Some(IpAddr::from([192, 0, 2, 1])))
    }

    #[tokio::test]
    async fn caches_answers_by_fingerprint() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let resolver = CachedResolver::new(move |token: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                (token == "active").then(|| TokenClaims {
                    subject: Some("alice".into()),
                    ..TokenClaims::default()
                })
            }
        })
        .negative_ttl(Duration::ZERO);
        for _ in 0..3 {
            let Resolution::Active(claims) = resolver.resolve(ask("active")).await else {
                panic!("active")
            };
            assert_eq!(claims.subject.as_deref(), Some("alice"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(
            resolver.resolve(ask("inactive")).await,
            Resolution::Inactive
        );
        assert_eq!(
            resolver.resolve(ask("inactive")).await,
            Resolution::Inactive
        );
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "negative answers expire (ttl 0)"
        );
        resolver.forget(&TokenFingerprint::of("active"));
        let _ = resolver.resolve(ask("active")).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            4,
            "a forgotten answer is asked again"
        );
    }

    #[tokio::test]
    async fn limits_refuse_without_calling() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let resolver = CachedResolver::new(move |_token: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { None::<TokenClaims> }
        })
        .limit_per_client(Some(Rate::new(2, Duration::from_secs(3600))))
        .limit_total(Some(Rate::new(3, Duration::from_secs(3600))));
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        let c = Some(IpAddr::from([192, 0, 2, 3]));
        let answers = [
            resolver.resolve(ResolveRequest::new("t1", a)).await,
            resolver.resolve(ResolveRequest::new("t2", a)).await,
            resolver.resolve(ResolveRequest::new("t3", a)).await,
            resolver.resolve(ResolveRequest::new("t4", b)).await,
            resolver.resolve(ResolveRequest::new("t5", c)).await,
        ];
        assert_eq!(
            answers,
            [
                Resolution::Inactive,
                Resolution::Inactive,
                Resolution::Unavailable,
                Resolution::Inactive,
                Resolution::Unavailable,
            ]
        );
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(
            resolver.resolve(ResolveRequest::new("t1", a)).await,
            Resolution::Inactive,
            "remembered answers cost nothing"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_lookups_of_one_token_make_one_call() {
        let calls = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let (counter, gate) = (calls.clone(), release.clone());
        let resolver = Arc::new(CachedResolver::new(move |_token: String| {
            counter.fetch_add(1, Ordering::SeqCst);
            let gate = gate.clone();
            async move {
                gate.notified().await;
                Some(TokenClaims::default())
            }
        }));
        let lookups: Vec<_> = (0..5)
            .map(|_| {
                let resolver = resolver.clone();
                tokio::spawn(async move { resolver.resolve(ask("same")).await })
            })
            .collect();
        // On one thread, each yield lets every spawned lookup run until it waits.
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        release.notify_one();
        for lookup in lookups {
            assert!(matches!(lookup.await.unwrap(), Resolution::Active(_)));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
