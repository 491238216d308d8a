//! Posting checkpoints to a URL (feature `http`): a small background task, so the pipeline
//! never waits for the network.

use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::text::shown_url;
use crate::ConfigError;

/// Checkpoints waiting to be posted; past this, the oldest waiting are kept and a warning
/// says so (checkpoints are rare: one per thousand events or per minute by default).
const WAITING: usize = 64;
const ATTEMPTS: u32 = 5;
/// How long [`Posted::wait`] waits at shutdown, at most: a notary that does not answer must
/// not hold a stopping process up for the minute its retries can take.
const AT_SHUTDOWN: Duration = Duration::from_secs(10);

pub(crate) struct Poster {
    tx: mpsc::Sender<Vec<u8>>,
    shown: String,
    done: watch::Receiver<bool>,
}

/// Tells when a [`Poster`] is done: dropped, and every checkpoint handed to it posted or
/// given up on. The checkpoint made at shutdown is posted after the pipeline stopped; the
/// auditor's shutdown waits for it, so that a process exiting then does not lose it.
#[derive(Clone, Debug)]
pub(crate) struct Posted {
    done: watch::Receiver<bool>,
    shown: String,
}

impl Posted {
    /// Waits until the poster is done, for at most [`AT_SHUTDOWN`]; says so when it is not.
    pub(crate) async fn wait(&self) {
        let mut done = self.done.clone();
        // An error: the task is gone (its runtime shut down), nothing more will be posted.
        if tokio::time::timeout(AT_SHUTDOWN, done.wait_for(|done| *done))
            .await
            .is_err()
        {
            tracing::warn!(
                target: "oauth_audit",
                url = %self.shown,
                "checkpoints still waiting to be posted at shutdown; they are in the audit log"
            );
        }
    }
}

impl Poster {
    pub(crate) fn start(url: &str) -> Result<Poster, ConfigError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| {
            ConfigError::invalid(
                "chain checkpoint_url",
                format!("{} is not a URL", shown_url(url)),
            )
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError::invalid(
                "chain checkpoint_url",
                "must be an http or https URL",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("oauth-audit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConfigError::invalid("chain checkpoint_url", err.to_string()))?;
        let shown = shown_url(url);
        let (tx, rx) = mpsc::channel(WAITING);
        let (finished, done) = watch::channel(false);
        let task_shown = shown.clone();
        tokio::spawn(async move {
            run(client, parsed, task_shown, rx).await;
            finished.send_replace(true);
        });
        Ok(Poster { tx, shown, done })
    }

    /// What tells when this poster is done.
    pub(crate) fn posted(&self) -> Posted {
        Posted {
            done: self.done.clone(),
            shown: self.shown.clone(),
        }
    }

    pub(crate) fn post(&self, body: Vec<u8>) {
        if self.tx.try_send(body).is_err() {
            tracing::warn!(
                target: "oauth_audit",
                url = %self.shown,
                "checkpoint not posted: too many checkpoints are waiting for the URL"
            );
        }
    }
}

async fn run(
    client: reqwest::Client,
    url: reqwest::Url,
    shown: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(body) = rx.recv().await {
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=ATTEMPTS {
            let result = client
                .post(url.clone())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await;
            match result {
                Ok(response) if response.status().is_success() => break,
                outcome => {
                    let reason = match outcome {
                        Ok(response) => format!("status {}", response.status().as_u16()),
                        Err(err) => err.without_url().to_string(),
                    };
                    if attempt == ATTEMPTS {
                        tracing::warn!(
                            target: "oauth_audit",
                            url = %shown,
                            reason = %reason,
                            "checkpoint could not be posted; it is still in the audit log"
                        );
                    } else {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                }
            }
        }
    }
}
