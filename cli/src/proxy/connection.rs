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
// Tokio's clock, so that the idle watch and the time it compares agree in paused tests.
use tokio::time::Instant as Clock;

/// Requests in flight on one connection, to tell an idle connection from a busy one.
///
/// A request only counts itself in and out: nothing is woken and no timer is set per
/// request. The connection's idle watch ([`Activity::idle_for`]) sleeps until the earliest
/// moment the connection could have been idle long enough and looks again then.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Clock>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Clock::now()),
        }
    }
}

/// Counts one request in flight until it is dropped (with the response body).
#[derive(Debug)]
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The time is set before the count falls, so a watch that sees no request in
        // flight also sees when the last one ended.
        if let Ok(mut since) = self.0.idle_since.lock() {
            *since = Clock::now();
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    /// A request arrived; it is in flight until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// When the connection was opened or its last request ended.
    pub fn idle_since(&self) -> Instant {
        self.last_end().into_std()
    }

    fn last_end(&self) -> Clock {
        self.idle_since
            .lock()
            .map_or_else(|_| Clock::now(), |since| *since)
    }

    /// Completes once the connection has had no request in flight for `timeout` in a row.
    ///
    /// It wakes at most once per `timeout` while requests come and go: at each wake-up,
    /// an idle connection's deadline is `timeout` after its last request ended, and a busy
    /// one is looked at again `timeout` later.
    pub async fn idle_for(&self, timeout: Duration) {
        let mut deadline = self.last_end() + timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            let now = Clock::now();
            deadline = if self.in_flight.load(Ordering::Acquire) == 0 {
                let idle_until = self.last_end() + timeout;
                if idle_until <= now {
                    // A request that began since the count was read is still served:
                    // a graceful shutdown lets the request in progress finish.
                    return;
                }
                idle_until
            } else {
                now + timeout
            };
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

/// The size of an HTTP/2 request's header list as RFC 9113 §6.5.2 counts it, and h2 with
/// it: each field's name and value, and 32 bytes, the pseudo-header fields (`:method`,
/// `:scheme`, `:authority`, `:path`) with their names.
pub fn http2_header_list_size<B>(req: &http::Request<B>) -> usize {
    const PER_FIELD: usize = 32;
    let uri = req.uri();
    let pseudo = [
        (":method", Some(req.method().as_str())),
        (":scheme", uri.scheme_str()),
        (":authority", uri.authority().map(|a| a.as_str())),
        (":path", uri.path_and_query().map(|p| p.as_str())),
    ];
    let pseudo: usize = pseudo
        .into_iter()
        .filter_map(|(name, value)| Some(name.len() + value?.len() + PER_FIELD))
        .sum();
    req.headers().iter().fold(pseudo, |size, (name, value)| {
        size + name.as_str().len() + value.len() + PER_FIELD
    })
}

/// Records a request refused before the audit layer (hyper's 400, 414, 431, and the proxy's
/// 431 for an HTTP/2 header list too large) as a failed request: nothing of it reached the
/// audit layer, so without this the attempt would leave no trace.
///
/// Its head could not be read, or is not read, so the event has no method, path or request
/// headers: `source.ip` is the socket peer (forwarding headers were never parsed) and
/// `http.duration_ms` counts from `waiting_since`: when the connection began waiting for an
/// HTTP/1 request, when an HTTP/2 stream's head was refused.
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
    event.http = Some(HttpInfo::new(
        "",
        "",
        Some(status.as_u16()),
        waiting_since.elapsed().as_secs_f64() * 1000.0,
    ));
    let mut source = Source::default();
    source.ip = Some(peer.ip());
    event.source = Some(source);
    let mut error = ErrorInfo::new(code);
    error.description = Some(description);
    event.error = Some(error);
    auditor.emit(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the watch has completed, after letting the paused clock run `by`.
    async fn done_after<F: std::future::Future + Unpin>(watch: &mut F, by: Duration) -> bool {
        tokio::time::advance(by).await;
        futures_poll_once(watch).await.is_some()
    }

    #[tokio::test(start_paused = true)]
    async fn idle_only_after_the_last_request_ends() {
        let timeout = Duration::from_secs(10);
        let activity = Arc::new(Activity::default());
        let request = activity.begin();
        let idle = activity.idle_for(timeout);
        tokio::pin!(idle);
        // A request in flight keeps the connection busy however long it takes.
        for _ in 0..5 {
            assert!(!done_after(&mut idle, timeout).await);
        }
        drop(request);
        // Idle from the end of the request, not from the last look.
        assert!(!done_after(&mut idle, timeout - Duration::from_secs(1)).await);
        assert!(done_after(&mut idle, Duration::from_secs(2)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_that_came_and_went_puts_the_deadline_back() {
        let timeout = Duration::from_secs(10);
        let activity = Arc::new(Activity::default());
        let idle = activity.idle_for(timeout);
        tokio::pin!(idle);
        assert!(!done_after(&mut idle, Duration::from_secs(6)).await);
        // A short request between two looks: the watch never saw it in flight.
        drop(activity.begin());
        assert!(!done_after(&mut idle, Duration::from_secs(6)).await);
        assert!(!done_after(&mut idle, Duration::from_secs(3)).await);
        assert!(done_after(&mut idle, Duration::from_secs(2)).await);
    }

    #[test]
    fn the_header_list_size_counts_every_field_and_pseudo_field() {
        let req = http::Request::get("https://idp.example/token?x=1")
            .header("cookie", "a=1")
            .header("cookie", "b=22")
            .header("user-agent", "")
            .body(())
            .unwrap();
        let pseudo = (7 + 3 + 32) + (7 + 5 + 32) + (10 + 11 + 32) + (5 + 10 + 32);
        let fields = (6 + 3 + 32) + (6 + 4 + 32) + (10 + 32);
        assert_eq!(http2_header_list_size(&req), pseudo + fields);
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
