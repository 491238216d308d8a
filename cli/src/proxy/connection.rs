//! One client connection: its limits (idle time, TLS handshake time) and the requests hyper
//! refuses before they reach the audit layer.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use oauth_audit::event::{AuditEvent, ErrorInfo, EventKind, HttpInfo, Outcome, Source, Timestamp};
use oauth_audit::writer::Auditor;
use tokio::sync::Notify;

/// Requests in flight on one connection, to tell an idle connection from a busy one.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    changed: Notify,
    idle_since: Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
            idle_since: Mutex::new(Instant::now()),
        }
    }
}

/// Counts one request in flight until it is dropped (with the response body).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut since) = self.0.idle_since.lock() {
            *since = Instant::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_waiters();
    }
}

impl Activity {
    /// A request arrived; it is in flight until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        InFlight(self.clone())
    }

    /// When the connection was opened or its last request ended.
    pub fn idle_since(&self) -> Instant {
        self.idle_since
            .lock()
            .map_or_else(|_| Instant::now(), |since| *since)
    }

    /// Completes once the connection has had no request in flight for `timeout` in a row.
    pub async fn idle_for(&self, timeout: Duration) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the count is read, so no change slips in between.
            changed.as_mut().enable();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                if tokio::time::timeout(timeout, changed).await.is_err() {
                    return;
                }
            } else {
                changed.await;
            }
        }
    }
}

/// What hyper answered on its own to a request it could not parse: the status it sent and
/// the `error.code` of the event.
#[doc(hidden)]
pub fn rejection(err: &(dyn StdError + 'static)) -> Option<(StatusCode, &'static str)> {
    let err = find_hyper_error(err)?;
    if err.is_parse_too_large() {
        // hyper reports a long URI and a large head alike; only its message tells them apart.
        if err.to_string().contains("URI") {
            Some((
                StatusCode::URI_TOO_LONG,
                oauth_audit::event::error_code::URI_TOO_LONG,
            ))
        } else {
            Some((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                oauth_audit::event::error_code::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ))
        }
    } else if err.is_parse() && !err.is_parse_version_h2() && !err.is_parse_status() {
        Some((
            StatusCode::BAD_REQUEST,
            oauth_audit::event::error_code::MALFORMED_REQUEST,
        ))
    } else {
        None
    }
}

fn find_hyper_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a hyper::Error> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(hyper) = err.downcast_ref::<hyper::Error>() {
            return Some(hyper);
        }
        current = err.source();
    }
    None
}

/// Records a request hyper refused (400, 414, 431) as a failed request: nothing of it
/// reached the audit layer, so without this the attempt would leave no trace.
///
/// Its head could not be read, so the event has no method, path or request headers:
/// `source.ip` is the socket peer (forwarding headers were never parsed) and
/// `http.duration_ms` counts from when the connection began waiting for this request.
pub fn record_rejection(
    auditor: &Auditor,
    peer: SocketAddr,
    waiting_since: Instant,
    status: StatusCode,
    code: &str,
    description: String,
) {
    let mut event = AuditEvent::new(
        auditor.service().clone(),
        Timestamp::now(),
        EventKind::ResourceAccessed,
        Outcome::Failure,
    );
    event.http = Some(HttpInfo {
        method: String::new(),
        route: None,
        path: String::new(),
        status: Some(status.as_u16()),
        duration_ms: waiting_since.elapsed().as_secs_f64() * 1000.0,
    });
    event.source = Some(Source {
        ip: Some(peer.ip()),
        ..Source::default()
    });
    event.error = Some(ErrorInfo {
        code: code.to_owned(),
        description: Some(description),
    });
    auditor.emit(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_only_after_the_last_request_ends() {
        let activity = Arc::new(Activity::default());
        let request = activity.begin();
        let idle = activity.idle_for(Duration::from_millis(1));
        tokio::pin!(idle);
        // A request in flight keeps the connection busy however long it takes.
        for _ in 0..3 {
            tokio::task::yield_now().await;
            assert!(futures_poll_once(idle.as_mut()).await.is_none());
        }
        drop(request);
        idle.await;
    }

    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
