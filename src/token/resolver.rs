use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use quick_cache::sync::Cache;

use super::{InspectedToken, TokenClaims, TokenFingerprint, Verdict};

/// The future a [`TokenResolver`] returns.
pub type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Option<TokenClaims>> + Send + 'a>>;

/// Supplies the claims of opaque tokens (for example by RFC 7662 introspection).
///
/// `None` means the token is unknown or inactive. Closures `Fn(String) -> impl Future` are
/// resolvers; wrap a resolver in [`CachedResolver`] so each token is resolved once.
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
    fn resolve<'a>(&'a self, token: &'a str) -> ResolveFuture<'a>;
}

impl<F, Fut> TokenResolver for F
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<TokenClaims>> + Send + 'static,
{
    fn resolve<'a>(&'a self, token: &'a str) -> ResolveFuture<'a> {
        Box::pin(self(token.to_owned()))
    }
}

/// The inspection of an opaque token completed with what its resolver answered: its
/// claims and `Valid` (or `Expired` past `exp`) when active, `Inactive` otherwise.
pub(crate) fn resolved(token: &InspectedToken, claims: Option<TokenClaims>) -> InspectedToken {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let verdict = match &claims {
        None => Verdict::Inactive,
        Some(c) if c.expires_at.is_some_and(|exp| exp < now) => Verdict::Expired,
        Some(_) => Verdict::Valid,
    };
    InspectedToken {
        fingerprint: token.fingerprint,
        format: token.format,
        verdict,
        claims: claims.unwrap_or_default(),
    }
}

/// Remembers what a resolver answered, by token fingerprint: active tokens until their
/// `exp` (at most `max_ttl`), unknown or inactive ones for `negative_ttl`.
pub struct CachedResolver<R> {
    inner: R,
    cache: Cache<TokenFingerprint, (Option<Arc<TokenClaims>>, Instant)>,
    max_ttl: Duration,
    negative_ttl: Duration,
}

impl<R> std::fmt::Debug for CachedResolver<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedResolver")
            .field("max_ttl", &self.max_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .finish_non_exhaustive()
    }
}

impl<R: TokenResolver> CachedResolver<R> {
    /// Caches up to 10 000 answers, active ones for at most 5 minutes, others for 10 s.
    pub fn new(inner: R) -> Self {
        CachedResolver {
            inner,
            cache: Cache::new(10_000),
            max_ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(10),
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

    /// How many answers are kept.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.cache = Cache::new(capacity.max(1));
        self
    }
}

impl<R: TokenResolver> TokenResolver for CachedResolver<R> {
    fn resolve<'a>(&'a self, token: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let fingerprint = TokenFingerprint::of(token);
            if let Some((claims, until)) = self.cache.get(&fingerprint) {
                if Instant::now() < until {
                    return claims.map(|c| (*c).clone());
                }
            }
            let claims = self.inner.resolve(token).await;
            let ttl = match &claims {
                None => self.negative_ttl,
                Some(c) => {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    let left = c.expires_at.map_or(self.max_ttl, |exp| {
                        Duration::from_secs(exp.saturating_sub(now).max(0) as u64)
                    });
                    left.min(self.max_ttl)
                }
            };
            self.cache.insert(
                fingerprint,
                (claims.clone().map(Arc::new), Instant::now() + ttl),
            );
            claims
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
            let claims = resolver.resolve("active").await.unwrap();
            assert_eq!(claims.subject.as_deref(), Some("alice"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(resolver.resolve("inactive").await.is_none());
        assert!(resolver.resolve("inactive").await.is_none());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "negative answers expire (ttl 0)"
        );
    }
}
