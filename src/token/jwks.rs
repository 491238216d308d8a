//! Key sets that change: a JWKS file or URL, refreshed by a background task.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};

use super::key_store::KeyStore;
use super::keys::KeySet;
use super::TokenConfigError;

/// Where a changing key set comes from.
pub(crate) enum KeySource {
    File(PathBuf),
    #[cfg(feature = "jwks")]
    Url(reqwest::Url),
}

/// A URL's query may carry an API key: messages and logs show it without.
impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => f.debug_tuple("File").field(path).finish(),
            #[cfg(feature = "jwks")]
            KeySource::Url(url) => f
                .debug_tuple("Url")
                .field(&crate::text::shown_url(url.as_str()))
                .finish(),
        }
    }
}

impl KeySource {
    pub(crate) fn url(url: &str) -> Result<Self, TokenConfigError> {
        let shown = crate::text::shown_url(url);
        #[cfg(feature = "jwks")]
        {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| TokenConfigError::Invalid(format!("JWKS URL {shown:?}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(TokenConfigError::Invalid(format!(
                    "JWKS URL {shown:?}: only http and https are supported"
                )));
            }
            Ok(KeySource::Url(parsed))
        }
        #[cfg(not(feature = "jwks"))]
        {
            Err(TokenConfigError::Invalid(format!(
                "JWKS URL {shown:?}: fetching JWKS over HTTP needs the `jwks` feature"
            )))
        }
    }
}

/// The inspector's handle on its background refresh.
pub(crate) struct JwksSource {
    shared: Arc<Shared>,
    /// Dropped with the inspector: tells the task to stop.
    _alive: watch::Sender<()>,
}

struct Shared {
    refresh: Notify,
    last_forced: Mutex<Option<Instant>>,
    min_interval: Duration,
    /// How the first load went (`Loaded` once any load succeeded).
    load: watch::Sender<Load>,
}

/// The key source's loads so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// None finished yet.
    Pending,
    /// The first failed, and none succeeded since.
    Failed,
    /// One succeeded.
    Loaded,
}

impl JwksSource {
    pub(crate) fn new(
        source: KeySource,
        static_keys: KeySet,
        interval: Duration,
        min_interval: Duration,
    ) -> (JwksSource, RefreshTask) {
        let shared = Arc::new(Shared {
            refresh: Notify::new(),
            last_forced: Mutex::new(None),
            min_interval,
            load: watch::Sender::new(Load::Pending),
        });
        let (alive, alive_rx) = watch::channel(());
        let task = RefreshTask {
            source,
            static_keys,
            interval,
            shared: shared.clone(),
            alive: alive_rx,
            file_modified: None,
            #[cfg(feature = "jwks")]
            document: None,
        };
        (
            JwksSource {
                shared,
                _alive: alive,
            },
            task,
        )
    }

    /// Asks for a refresh now (a token named an unknown key), at most once per
    /// `min_interval`. Never waits.
    pub(crate) fn request_refresh(&self) {
        let mut last = self
            .shared
            .last_forced
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < self.shared.min_interval) {
            return;
        }
        *last = Some(Instant::now());
        self.shared.refresh.notify_one();
    }

    pub(crate) async fn ready(&self) {
        let mut load = self.shared.load.subscribe();
        let _ = load.wait_for(|load| *load == Load::Loaded).await;
    }

    /// Returns once the first load finished, loaded or failed.
    pub(crate) async fn tried(&self) {
        let mut load = self.shared.load.subscribe();
        let _ = load.wait_for(|load| *load != Load::Pending).await;
    }
}

/// The background task that loads the key set.
pub(crate) struct RefreshTask {
    source: KeySource,
    static_keys: KeySet,
    interval: Duration,
    shared: Arc<Shared>,
    alive: watch::Receiver<()>,
    file_modified: Option<SystemTime>,
    /// The fetched document whose keys are in use.
    #[cfg(feature = "jwks")]
    document: Option<String>,
}

impl RefreshTask {
    pub(crate) async fn run(mut self, store: Weak<KeyStore>) {
        #[cfg(feature = "jwks")]
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build();
        loop {
            let loaded = match &self.source {
                KeySource::File(path) => self.load_file(path.clone()).await,
                #[cfg(feature = "jwks")]
                KeySource::Url(url) => match &client {
                    Ok(client) => match fetch(client, url.clone()).await {
                        Ok(document) => self.changed(document),
                        Err(problem) => Err(problem),
                    },
                    Err(e) => Err(format!("HTTP client: {e}")),
                },
            };
            match loaded {
                Ok(Some(mut keys)) => {
                    let Some(store) = store.upgrade() else {
                        return;
                    };
                    // Keys that never change first, as when the inspector is built: they stay
                    // among the few a token without `kid` is checked against.
                    keys.keys
                        .splice(0..0, self.static_keys.keys.iter().cloned());
                    store.replace(keys);
                    self.shared.load.send_replace(Load::Loaded);
                }
                Ok(None) => {}
                Err(problem) => {
                    self.shared.load.send_if_modified(|load| {
                        let first = *load == Load::Pending;
                        if first {
                            *load = Load::Failed;
                        }
                        first
                    });
                    tracing::warn!(target: "oauth_audit", source = ?self.source, %problem, "JWKS refresh failed; keeping the current keys");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = self.shared.refresh.notified() => {}
                // The inspector is gone.
                _ = self.alive.changed() => return,
            }
        }
    }

    /// The key set of a fetched document, or `None` when it is the document in use: the same
    /// keys put in place again would make every cached verification stale, and a refresh
    /// that any token with an unknown key id can ask for would re-verify every token.
    #[cfg(feature = "jwks")]
    fn changed(&mut self, document: String) -> Result<Option<KeySet>, String> {
        if self.document.as_deref() == Some(document.as_str()) {
            return Ok(None);
        }
        let keys = KeySet::from_jwks(&document).map_err(|e| e.to_string())?;
        self.document = Some(document);
        Ok(Some(keys))
    }

    /// The key set in the file, or `None` when it has not changed since the last read.
    async fn load_file(&mut self, path: PathBuf) -> Result<Option<KeySet>, String> {
        let modified = tokio::fs::metadata(&path)
            .await
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if self.file_modified == Some(modified) {
            return Ok(None);
        }
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let keys = KeySet::from_jwks(&text).map_err(|e| e.to_string())?;
        self.file_modified = Some(modified);
        Ok(Some(keys))
    }
}

/// The JWKS document at `url`.
#[cfg(feature = "jwks")]
async fn fetch(client: &reqwest::Client, url: reqwest::Url) -> Result<String, String> {
    let mut response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| error_chain(&e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    let body = crate::response_body::whole(&mut response, MAX_JWKS_BYTES)
        .await
        .map_err(|e| error_chain(&e.without_url()))?
        .ok_or_else(too_large)?;
    String::from_utf8(body).map_err(|_| "the document is not UTF-8".to_owned())
}

/// The most a JWKS document may hold: real ones are a few KiB (a key set of a dozen
/// RSA-4096 keys is under 16 KiB). Without a limit, a key set URL that answers without end
/// would grow the refresh task's memory until the request timed out.
#[cfg(feature = "jwks")]
pub(crate) const MAX_JWKS_BYTES: usize = 1024 * 1024;

#[cfg(feature = "jwks")]
fn too_large() -> String {
    format!("the document is longer than {MAX_JWKS_BYTES} bytes: not read")
}

/// An error and its causes, none of which names the URL (hyper's causes do not).
#[cfg(feature = "jwks")]
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
