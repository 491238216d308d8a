//! The proxy's connections to its one upstream: HTTP/1.1, kept alive, reused newest first.
//!
//! hyper-util's pooled client serves any number of hosts: every request hashes its pool key
//! (scheme and authority, SipHash, byte by byte) three times, compares authorities, and
//! moves its large futures through a checkout that races a lazy connect. A proxy has one
//! upstream, so its pool is a list: a request takes the most recently returned connection
//! that is ready, or opens one; the connection comes back once its response has been read.
//! About 8,700 fewer instructions per proxied request (`scripts/profile-proxy`, of about
//! 69,000), with the same behaviour:
//!
//! - a request that a reused connection could not even start (the upstream closed it while
//!   it was idle) is sent again on another connection, as hyper-util's
//!   `retry_canceled_requests` does;
//! - a request sent on a connection that had been idle across one of the reaper's rounds
//!   (at most [`LONGEST_ROUND`] apart), which the upstream closed without a single byte of
//!   answer within [`RESEND_WINDOW`] of the sending, is sent once more on a new connection
//!   when it is safe (`GET`, `HEAD`, `OPTIONS`, `TRACE`: RFC 9110 §9.2.1) and has no body
//!   (RFC 9112 §9.3.1; Go's `net/http` client replays the same methods): the upstream's own
//!   keep-alive timeout may close a connection just as a request is put on it, and the client
//!   should not get a `502` for that race. Every byte read from a connection is counted
//!   ([`Counted`]), so an upstream that had begun to answer (a partial head, an interim
//!   `100 Continue`, a status line) is never sent the request twice, and the window keeps out
//!   one that worked on the request for a while and then died. An upstream that reads the
//!   request, does its work and drops the connection at once (a handler's panic) cannot be
//!   told from the race: that is why `PUT` and `DELETE`, idempotent but not safe, are never
//!   sent twice (a `DELETE` done twice answers the client `404`);
//! - a connection goes back to the list once its response has been read, at once when it
//!   already has, else from a task that waits for it (a body still streaming);
//! - idle connections are closed after between `idle_timeout` less one round of the reaper
//!   and `idle_timeout` without a request (a round is a second, or half of `idle_timeout`
//!   when that is shorter), and at most [`MAX_IDLE`] are kept;
//! - an upgraded connection (`101 Switching Protocols`) belongs to its tunnel and never
//!   comes back.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower::ServiceExt;

/// Idle connections kept at most; one returned past this is closed.
pub const MAX_IDLE: usize = 1024;

/// The longest round of the reaper, which closes idle connections and marks them stale.
///
/// A connection idle across one of its rounds may have been closed by the upstream's
/// keep-alive timeout just as a request is put on it: the head of a safe request
/// without a body sent on it is kept, to be sent once more on a new connection if the
/// upstream closes it before answering. Keep-alive timeouts are seconds (gunicorn 2 s,
/// Node.js and uvicorn 5 s). Marked by rounds, not by reading the clock, a connection costs
/// each request an atomic load when it is put back and one when it is taken; the copy is
/// made at most once a round per connection, whatever the load.
pub const LONGEST_ROUND: Duration = Duration::from_secs(1);

/// How soon after a request was sent on a stale connection the upstream must have closed it,
/// without a byte of answer, for the request to be sent again. The keep-alive race closes
/// it within a round trip; an upstream that closes later was working on the request.
pub const RESEND_WINDOW: Duration = Duration::from_secs(1);

type BoxError = Box<dyn StdError + Send + Sync>;

/// Connections to one upstream. Cloning shares them.
pub struct Upstream<B> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for Upstream<B> {
    fn clone(&self) -> Self {
        Upstream {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B> Upstream<B> {
    /// Connections to `uri` (its scheme and authority) made by `connector`, closed after
    /// `idle_timeout` without a request.
    pub fn new(connector: HttpsConnector<HttpConnector>, uri: Uri, idle_timeout: Duration) -> Self {
        let round_length = (idle_timeout / 2)
            .min(LONGEST_ROUND)
            .max(Duration::from_millis(1));
        Upstream {
            shared: Arc::new(Shared {
                connector,
                uri,
                idle: Mutex::new(Vec::new()),
                round: AtomicU32::new(0),
                round_length,
                rounds_to_close: rounds_to_close(idle_timeout, round_length),
                max_idle: MAX_IDLE,
                reaper: Once::new(),
            }),
        }
    }

    /// The same upstream and connector, with connections closed after `idle_timeout`
    /// without a request; none of `self`'s connections are shared.
    pub fn with_idle_timeout(&self, idle_timeout: Duration) -> Self {
        Upstream::new(
            self.shared.connector.clone(),
            self.shared.uri.clone(),
            idle_timeout,
        )
    }

    /// Idle connections now (some may have been closed by the upstream since).
    pub fn idle_count(&self) -> usize {
        self.shared.idle.lock().map_or(0, |idle| idle.len())
    }
}

impl<B> fmt::Debug for Upstream<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("uri", &self.shared.uri)
            .field("idle", &self.idle_count())
            .finish_non_exhaustive()
    }
}

struct Shared<B> {
    connector: HttpsConnector<HttpConnector>,
    /// The upstream's scheme and authority, for the connector.
    uri: Uri,
    /// Idle connections, the most recently returned last.
    idle: Mutex<Vec<Idle<B>>>,
    /// Counts the reaper's rounds; an idle connection remembers the round it came back in.
    round: AtomicU32,
    /// How often the reaper runs: half the idle timeout, at most [`LONGEST_ROUND`].
    round_length: Duration,
    /// After how many rounds idle a connection is closed.
    rounds_to_close: u32,
    /// Idle connections kept at most ([`MAX_IDLE`]).
    max_idle: usize,
    reaper: Once,
}

/// How many rounds of `round_length` make `idle_timeout`, at least two: a connection is
/// closed after between `rounds - 1` and `rounds` of them idle.
fn rounds_to_close(idle_timeout: Duration, round_length: Duration) -> u32 {
    let rounds = idle_timeout
        .as_nanos()
        .div_ceil(round_length.as_nanos().max(1));
    u32::try_from(rounds).unwrap_or(u32::MAX).max(2)
}

struct Idle<B> {
    connection: Connection<B>,
    round: u32,
}

/// A connection's sending half, and the count of the bytes read from it.
struct Connection<B> {
    sender: SendRequest<Outgoing<B>>,
    read: Arc<AtomicU64>,
}

/// An upstream connection's I/O, counting the bytes read from it: whether the upstream had
/// begun to answer a request when it closed the connection. In tokio's terms, where a read's
/// bytes are counted from the buffer's filled part without `unsafe` (`TokioIo` converts from
/// and back to hyper's).
struct Counted<T> {
    io: T,
    read: Arc<AtomicU64>,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before);
        if read > 0 {
            this.read.fetch_add(read as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// What a request sent on a stale connection needs to be sent again: its head, and what
/// tells the keep-alive race from an upstream that had begun to answer.
struct Resend<B> {
    copy: Request<Outgoing<B>>,
    read_before: u64,
    sent_at: Instant,
}

/// A request's body, or none: what a request sent once more carries.
enum Outgoing<B> {
    Body(B),
    Empty,
}

impl<B: Body + Unpin> Body for Outgoing<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.get_mut() {
            Outgoing::Body(body) => Pin::new(body).poll_frame(cx),
            Outgoing::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outgoing::Body(body) => body.is_end_stream(),
            Outgoing::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outgoing::Body(body) => body.size_hint(),
            Outgoing::Empty => SizeHint::with_exact(0),
        }
    }
}

/// Why a request could not be forwarded.
#[derive(Debug)]
pub enum UpstreamError {
    /// No connection could be made (refused, timed out, or its TLS handshake failed).
    Connect(BoxError),
    /// The connection was made, and then the request or its response failed.
    Request(hyper::Error),
}

impl UpstreamError {
    /// Whether no connection could be made.
    pub fn is_connect(&self) -> bool {
        matches!(self, UpstreamError::Connect(_))
    }
}

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpstreamError::Connect(_) => "could not connect",
            UpstreamError::Request(_) => "the request failed",
        })
    }
}

impl StdError for UpstreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            UpstreamError::Connect(err) => Some(err.as_ref()),
            UpstreamError::Request(err) => Some(err),
        }
    }
}

impl<B> Upstream<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Sends `req` (origin-form, with its `Host`) on an idle connection, or a new one.
    pub fn send(
        &self,
        req: Request<B>,
    ) -> impl Future<Output = Result<Response<Incoming>, UpstreamError>> + '_ {
        let mut req = req.map(Outgoing::Body);
        // Not an `async fn`, which would keep the request twice in its future (the argument
        // and the local it becomes): the future is part of every proxied request's.
        async move {
            // Once a request has been sent again, only on a new connection, and not again; what
            // became of the first sending, which reached the upstream, is kept.
            let mut first_sending: Option<hyper::Error> = None;
            loop {
                let reused = match first_sending {
                    Some(_) => None,
                    None => self.shared.checkout(),
                };
                // `Some(stale)` for a connection from the list, `None` for a new one.
                let (mut connection, stale) = match reused {
                    Some((connection, stale)) => (connection, Some(stale)),
                    // Boxed: the connect future is large and rarely needed, and would otherwise
                    // make every request's future larger to move.
                    None => match Box::pin(self.connect()).await {
                        Ok(connection) => (connection, None),
                        // The request reached the upstream once: not "unreachable".
                        Err(err) => {
                            return Err(first_sending.map_or(err, UpstreamError::Request));
                        }
                    },
                };
                // Boxed: made only for a stale connection, and kept out of this future, which
                // every proxied request moves.
                let again = match stale {
                    Some(true) if first_sending.is_none() => bodiless_copy(&req).map(|copy| {
                        Box::new(Resend {
                            copy,
                            read_before: connection.read.load(Ordering::Relaxed),
                            sent_at: Instant::now(),
                        })
                    }),
                    _ => None,
                };
                match connection.sender.try_send_request(req).await {
                    Ok(response) => {
                        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                            self.shared.give_back(connection);
                        }
                        return Ok(response);
                    }
                    Err(mut err) => match (err.take_message(), again) {
                        // Never started: the idle connection had been closed. Another one, and
                        // at the latest a new one, which is not retried.
                        (Some(unsent), _) if stale.is_some() => req = unsent,
                        // Sent on a stale connection, which the upstream closed at once without
                        // a byte of answer: the keep-alive race.
                        (None, Some(resend))
                            if closed_unanswered(err.error())
                                && connection.read.load(Ordering::Relaxed)
                                    == resend.read_before
                                && resend.sent_at.elapsed() <= RESEND_WINDOW =>
                        {
                            tracing::info!(
                                error = %err.error(),
                                method = %resend.copy.method(),
                                path = resend.copy.uri().path(),
                                request_id = ?resend.copy.headers().get("x-request-id"),
                                "the upstream closed an idle connection as a request was sent on it, before answering; sending it again on a new one"
                            );
                            req = resend.copy;
                            first_sending = Some(err.into_error());
                        }
                        _ => return Err(UpstreamError::Request(err.into_error())),
                    },
                }
            }
        }
    }

    async fn connect(&self) -> Result<Connection<B>, UpstreamError> {
        let io = self
            .shared
            .connector
            .clone()
            .oneshot(self.shared.uri.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        let read = Arc::new(AtomicU64::new(0));
        let io = TokioIo::new(Counted {
            io: TokioIo::new(io),
            read: Arc::clone(&read),
        });
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(UpstreamError::Request)?;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(error = %err, "upstream connection ended");
            }
        });
        Ok(Connection { sender, read })
    }
}

/// A copy of `req` to send again, when it is safe (RFC 9110 §9.2.1) and has no body: its
/// head, which the first sending consumes. Not its extensions: the proxy's server does not
/// keep header case (`preserve_header_case`), so the copy is written as the first was.
fn bodiless_copy<B: Body + Unpin>(req: &Request<Outgoing<B>>) -> Option<Request<Outgoing<B>>> {
    let safe = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if !safe || !req.body().is_end_stream() {
        return None;
    }
    let mut copy = Request::new(Outgoing::Empty);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// Whether the connection closed (or was reset) before the response's head was read.
fn closed_unanswered(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() {
        return true;
    }
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
}

impl<B> Shared<B>
where
    B: Body + Send + 'static,
{
    /// The most recently returned idle connection that is ready, and whether it has been
    /// idle across a round of the reaper (stale); closed ones are dropped.
    fn checkout(&self) -> Option<(Connection<B>, bool)> {
        loop {
            let entry = self.idle.lock().ok()?.pop()?;
            if entry.connection.sender.is_ready() {
                let stale = entry.round != self.round.load(Ordering::Relaxed);
                return Some((entry.connection, stale));
            }
            // Closed by the upstream: dropped here, outside the lock.
        }
    }

    /// Back to the list once ready for another request: now if it is, else when it is.
    fn give_back(self: &Arc<Self>, mut connection: Connection<B>) {
        if connection.sender.is_ready() {
            self.put(connection);
        } else if !connection.sender.is_closed() {
            let shared = Arc::downgrade(self);
            tokio::spawn(async move {
                if connection.sender.ready().await.is_ok() {
                    if let Some(shared) = shared.upgrade() {
                        shared.put(connection);
                    }
                }
            });
        }
    }

    fn put(self: &Arc<Self>, connection: Connection<B>) {
        self.reaper.call_once(|| {
            tokio::spawn(reap(Arc::downgrade(self), self.round_length));
        });
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle {
                // Read under the lock, so that a round the reaper is starting counts.
                let round = self.round.load(Ordering::Relaxed);
                idle.push(Idle { connection, round });
            }
        }
        // Past the bound, the connection closes as its sender is dropped: after the lock.
    }
}

/// Every `round_length`, closes the connections idle for `rounds_to_close` rounds, and those
/// the upstream closed. Ends with the pool.
async fn reap<B>(shared: Weak<Shared<B>>, round_length: Duration) {
    let mut interval = tokio::time::interval(round_length);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let round = shared.round.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let closed: Vec<Idle<B>> = match shared.idle.lock() {
            // In place: most rounds close nothing, and allocate nothing.
            Ok(mut idle) => idle
                .extract_if(.., |entry| {
                    round.wrapping_sub(entry.round) >= shared.rounds_to_close
                        || entry.connection.sender.is_closed()
                })
                .collect(),
            Err(_) => return,
        };
        // Dropping a sender closes its connection: outside the lock.
        drop(closed);
    }
}

#[cfg(test)]
mod tests {
    //! Against a real HTTP/1.1 server on loopback that counts its connections.

    use std::convert::Infallible;
    use std::future::Future;
    use std::net::SocketAddr;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    use std::task::{Context, Poll};
    use std::time::Instant;

    use bytes::Bytes;
    use http::header;
    use http_body_util::combinators::BoxBody;
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;
    use tokio::task::JoinHandle;

    use super::*;

    type Answer = Response<BoxBody<Bytes, Infallible>>;
    type Handler = Arc<
        dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Answer> + Send>> + Send + Sync,
    >;

    /// Waits up to 10 s for `condition`.
    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let started = Instant::now();
        while !condition() {
            assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Every response carries `x-connection`: the number of its connection, in the order
    /// they were accepted (from 1).
    struct Server {
        addr: SocketAddr,
        /// Connections accepted so far.
        accepted: Arc<AtomicUsize>,
        /// Connections still open on the server's side.
        open: Arc<AtomicUsize>,
        connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
        listener: JoinHandle<()>,
    }

    /// Counts a connection closed however its task ends (aborted too).
    struct Open(Arc<AtomicUsize>);

    impl Drop for Open {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.listener.abort();
            self.close_all();
        }
    }

    impl Server {
        async fn start(handler: Handler) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let accepted = Arc::new(AtomicUsize::new(0));
            let open = Arc::new(AtomicUsize::new(0));
            let connections = Arc::new(Mutex::new(Vec::new()));
            let (counted, still_open, tasks) =
                (accepted.clone(), open.clone(), connections.clone());
            let listener = tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let number = counted.fetch_add(1, Ordering::SeqCst) + 1;
                    still_open.fetch_add(1, Ordering::SeqCst);
                    let open = Open(still_open.clone());
                    let handler = handler.clone();
                    let task = tokio::spawn(async move {
                        let _open = open;
                        let service = hyper::service::service_fn(move |req| {
                            let answer = handler(req);
                            async move {
                                let mut answer = answer.await;
                                answer.headers_mut().insert("x-connection", number.into());
                                Ok::<_, Infallible>(answer)
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                    tasks.lock().unwrap().push(task);
                }
            });
            Server {
                addr,
                accepted,
                open,
                connections,
                listener,
            }
        }

        /// Closes every connection from the server's side.
        fn close_all(&self) {
            for task in self.connections.lock().unwrap().drain(..) {
                task.abort();
            }
        }

        fn upstream(&self, idle_timeout: Duration) -> Upstream<Full<Bytes>> {
            upstream_at(self.addr, idle_timeout)
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }

        async fn wait_open(&self, what: &str, open: usize) {
            eventually(what, || self.open.load(Ordering::SeqCst) == open).await;
        }
    }

    fn upstream_at(addr: SocketAddr, idle_timeout: Duration) -> Upstream<Full<Bytes>> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::proxy::tls::client_config(None, false).unwrap())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let uri = format!("http://{addr}/").parse().unwrap();
        Upstream::new(connector, uri, idle_timeout)
    }

    fn ok() -> Handler {
        Arc::new(|_| Box::pin(async { Response::new(Full::from("ok").boxed()) }))
    }

    /// Answers the request's body.
    fn echo() -> Handler {
        Arc::new(|req| {
            Box::pin(async move {
                let body = req.into_body().collect().await.unwrap().to_bytes();
                Response::new(Full::new(body).boxed())
            })
        })
    }

    fn get(path: &str) -> Request<Full<Bytes>> {
        Request::get(path)
            .header(header::HOST, "upstream")
            .body(Full::default())
            .unwrap()
    }

    /// The response's body, and the number of the server's connection that answered.
    async fn read(response: Response<Incoming>) -> (Bytes, usize) {
        let number = response.headers()["x-connection"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (body, number)
    }

    /// One request, read whole, and its connection back in the list, as the only idle one.
    async fn round_trip(upstream: &Upstream<Full<Bytes>>) -> (Bytes, usize) {
        let answer = read(upstream.send(get("/")).await.unwrap()).await;
        eventually("the connection is back", || upstream.idle_count() == 1).await;
        answer
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_connection() {
        let server = Server::start(ok()).await;
        let upstream = server.upstream(Duration::from_secs(60));
        for _ in 0..5 {
            assert_eq!(round_trip(&upstream).await, (Bytes::from("ok"), 1));
        }
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn requests_at_once_get_a_connection_each_and_all_come_back() {
        // Every request is answered only once all four are in the server's hands: two on
        // one connection would never be answered, so each wait has a deadline.
        let barrier = Arc::new(tokio::sync::Barrier::new(4));
        let handler: Handler = Arc::new(move |_| {
            let barrier = barrier.clone();
            Box::pin(async move {
                barrier.wait().await;
                Response::new(Full::from("ok").boxed())
            })
        });
        let server = Server::start(handler).await;
        let upstream = server.upstream(Duration::from_secs(60));
        let four_at_once = || async {
            let requests: Vec<_> = (0..4)
                .map(|_| {
                    let upstream = upstream.clone();
                    tokio::spawn(async move { read(upstream.send(get("/")).await.unwrap()).await })
                })
                .collect();
            let mut numbers = Vec::new();
            for request in requests {
                let answer = tokio::time::timeout(Duration::from_secs(10), request)
                    .await
                    .expect("answered: not two requests on one connection");
                numbers.push(answer.unwrap().1);
            }
            numbers.sort_unstable();
            numbers
        };
        assert_eq!(four_at_once().await, [1, 2, 3, 4]);
        eventually("all four are back", || upstream.idle_count() == 4).await;
        // The next four, at once again, reuse them.
        assert_eq!(four_at_once().await, [1, 2, 3, 4]);
        assert_eq!(server.accepted(), 4);
    }

    #[tokio::test]
    async fn the_most_recently_returned_connection_is_used_first() {
        let server = Server::start(ok()).await;
        let upstream = server.upstream(Duration::from_secs(60));
        for _ in 0..3 {
            let mut connection = upstream.connect().await.unwrap();
            connection.sender.ready().await.unwrap();
            upstream.shared.put(connection);
        }
        assert_eq!(server.accepted(), 3);
        // The third is taken, and comes back last again.
        for _ in 0..3 {
            let (_, number) = read(upstream.send(get("/")).await.unwrap()).await;
            assert_eq!(number, 3);
            eventually("the three are idle", || upstream.idle_count() == 3).await;
        }
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_not_used_again() {
        let server = Server::start(ok()).await;
        let upstream = server.upstream(Duration::from_secs(60));
        round_trip(&upstream).await;
        server.close_all();
        server.wait_open("the server closed it", 0).await;
        // By now the client's side has read the close too: the list's connection is not
        // ready, so it is dropped and another one opened.
        let (body, number) = read(upstream.send(get("/")).await.unwrap()).await;
        assert_eq!((body, number), (Bytes::from("ok"), 2));
    }

    /// A connection future that stops being polled once told to, as one whose close its
    /// task has not read yet.
    struct Pausable<F> {
        connection: Pin<Box<F>>,
        paused: Arc<AtomicBool>,
    }

    impl<F: Future> Future for Pausable<F> {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.paused.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
            self.connection.as_mut().poll(cx).map(|_| ())
        }
    }

    #[tokio::test]
    async fn a_request_an_idle_connection_could_not_start_is_sent_on_another_once() {
        let server = Server::start(echo()).await;
        let upstream = server.upstream(Duration::from_secs(60));
        // An idle connection that reads as ready, whose task stops and then ends with the
        // request in its queue, unsent: the connection closed under it.
        let io = TokioIo::new(tokio::net::TcpStream::connect(server.addr).await.unwrap());
        let (mut sender, connection) = http1::handshake::<_, Outgoing<Full<Bytes>>>(io)
            .await
            .unwrap();
        let paused = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(Pausable {
            connection: Box::pin(connection),
            paused: paused.clone(),
        });
        sender.ready().await.unwrap();
        paused.store(true, Ordering::SeqCst);
        upstream.shared.put(Connection {
            sender,
            read: Arc::default(),
        });

        let post = Request::post("/")
            .header(header::HOST, "upstream")
            .body(Full::from("the body, once"))
            .unwrap();
        let sending = {
            let upstream = upstream.clone();
            tokio::spawn(async move { read(upstream.send(post).await.unwrap()).await })
        };
        eventually("taken from the list", || upstream.idle_count() == 0).await;
        task.abort();
        let (body, number) = sending.await.unwrap();
        assert_eq!(body, "the body, once");
        assert_eq!(number, 2, "sent again on a new connection");
        assert_eq!(server.accepted(), 2);
    }

    /// An upstream that answers every request but one: the second request on its first
    /// connection is read whole, and the connection closed without an answer, as a server
    /// whose keep-alive timeout fired as the request arrived. Counts the requests it read.
    /// How `Closing` leaves the request it does not answer.
    #[derive(Clone, Copy, Debug)]
    enum Lost {
        /// Closes the connection at once: the keep-alive race.
        AtOnce,
        /// Writes part of a response head first.
        PartialHead,
        /// Writes an interim `100 Continue` first.
        AfterContinue,
        /// Works on it past [`RESEND_WINDOW`] first.
        Late,
    }

    struct Closing {
        addr: SocketAddr,
        requests: Arc<AtomicUsize>,
        accepted: Arc<AtomicUsize>,
        listener: JoinHandle<()>,
    }

    impl Drop for Closing {
        fn drop(&mut self) {
            self.listener.abort();
        }
    }

    impl Closing {
        async fn start(lost: Lost) -> Closing {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let requests = Arc::new(AtomicUsize::new(0));
            let accepted = Arc::new(AtomicUsize::new(0));
            let (counted, connections) = (requests.clone(), accepted.clone());
            let listener = tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let number = connections.fetch_add(1, Ordering::SeqCst) + 1;
                    let counted = counted.clone();
                    tokio::spawn(async move {
                        let mut buffer = Vec::new();
                        for on_connection in 1.. {
                            // A head, then as many body bytes as it says.
                            let head_end = loop {
                                if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n")
                                {
                                    break end + 4;
                                }
                                let mut chunk = [0u8; 4096];
                                match stream.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                                }
                            };
                            let head = String::from_utf8_lossy(&buffer[..head_end]).to_lowercase();
                            let length: usize = head
                                .lines()
                                .find_map(|line| line.strip_prefix("content-length:"))
                                .map_or(0, |n| n.trim().parse().unwrap());
                            while buffer.len() < head_end + length {
                                let mut chunk = [0u8; 4096];
                                match stream.read(&mut chunk).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                                }
                            }
                            buffer.drain(..head_end + length);
                            counted.fetch_add(1, Ordering::SeqCst);
                            if number == 1 && on_connection == 2 {
                                let begun: &[u8] = match lost {
                                    Lost::AtOnce => b"",
                                    Lost::PartialHead => b"HTTP/1.1 200 OK\r\ncontent-le",
                                    Lost::AfterContinue => b"HTTP/1.1 100 Continue\r\n\r\n",
                                    Lost::Late => {
                                        tokio::time::sleep(
                                            RESEND_WINDOW + Duration::from_millis(200),
                                        )
                                        .await;
                                        b""
                                    }
                                };
                                let _ = stream.write_all(begun).await;
                                return;
                            }
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-connection: {number}\r\n\r\nok"
                            );
                            if stream.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    });
                }
            });
            Closing {
                addr,
                requests,
                accepted,
                listener,
            }
        }

        /// Connections to it, with one request made and its connection back in the list,
        /// then left idle across a round of the reaper (`stale`) or not.
        async fn upstream(&self, stale: bool) -> Upstream<Full<Bytes>> {
            let mut upstream = upstream_at(self.addr, Duration::from_secs(60));
            let shared = Arc::get_mut(&mut upstream.shared).unwrap();
            shared.round_length = if stale {
                Duration::from_millis(20)
            } else {
                Duration::from_secs(3600)
            };
            shared.rounds_to_close = u32::MAX;
            assert_eq!(round_trip(&upstream).await, (Bytes::from("ok"), 1));
            if stale {
                eventually("a round of the reaper", || {
                    upstream.shared.round.load(Ordering::Relaxed) > 0
                })
                .await;
            }
            upstream
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }

        fn accepted(&self) -> usize {
            self.accepted.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn a_safe_request_a_stale_connection_lost_is_sent_again_on_a_new_one() {
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            let server = Closing::start(Lost::AtOnce).await;
            let upstream = server.upstream(true).await;
            let request = Request::builder()
                .method(method.clone())
                .uri("/")
                .header(header::HOST, "upstream")
                .body(Full::default())
                .unwrap();
            let response = upstream.send(request).await.unwrap();
            assert_eq!(response.headers()["x-connection"], "2", "{method}");
            assert_eq!(server.requests(), 3, "{method}: the lost one, then again");
            assert_eq!(server.accepted(), 2, "{method}");
        }
    }

    #[tokio::test]
    async fn a_request_with_a_body_not_safe_or_on_a_connection_not_stale_is_not_sent_again() {
        let requests = [
            (
                true,
                Request::put("/")
                    .header(header::HOST, "upstream")
                    .body(Full::from("a body that is gone"))
                    .unwrap(),
            ),
            (
                true,
                Request::post("/")
                    .header(header::HOST, "upstream")
                    .body(Full::default())
                    .unwrap(),
            ),
            (false, get("/")),
            // Idempotent but not safe: an upstream that did the work and dropped the
            // connection looks like the race, and a second DELETE would answer 404.
            (
                true,
                Request::delete("/register/client-1")
                    .header(header::HOST, "upstream")
                    .body(Full::default())
                    .unwrap(),
            ),
            (
                true,
                Request::put("/")
                    .header(header::HOST, "upstream")
                    .body(Full::default())
                    .unwrap(),
            ),
        ];
        for (stale, request) in requests {
            let what = format!("{} stale: {stale}", request.method());
            let server = Closing::start(Lost::AtOnce).await;
            let upstream = server.upstream(stale).await;
            let err = upstream.send(request).await.unwrap_err();
            assert!(!err.is_connect(), "{what}: {err:?}");
            assert_eq!(server.requests(), 2, "{what}: sent once");
            assert_eq!(server.accepted(), 1, "{what}");
        }
    }

    #[tokio::test]
    async fn a_request_that_reached_the_upstream_is_never_reported_unreachable() {
        let server = Closing::start(Lost::AtOnce).await;
        let upstream = server.upstream(true).await;
        // No new connection is accepted from now on: the resend cannot connect.
        server.listener.abort();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = upstream.send(get("/")).await.unwrap_err();
        assert_eq!(server.requests(), 2, "the upstream read the request");
        assert!(!err.is_connect(), "the first sending's failure: {err:?}");
    }

    #[tokio::test]
    async fn a_request_the_upstream_had_begun_to_answer_or_worked_on_is_not_sent_again() {
        for lost in [Lost::PartialHead, Lost::AfterContinue, Lost::Late] {
            let server = Closing::start(lost).await;
            let upstream = server.upstream(true).await;
            let err = upstream.send(get("/")).await.unwrap_err();
            assert!(!err.is_connect(), "{lost:?}: {err:?}");
            assert_eq!(server.requests(), 2, "{lost:?}: sent once");
            assert_eq!(server.accepted(), 1, "{lost:?}");
        }
    }

    #[tokio::test]
    async fn a_response_that_closes_its_connection_leaves_nothing_idle() {
        let handler: Handler = Arc::new(|_| {
            Box::pin(async {
                Response::builder()
                    .header(header::CONNECTION, "close")
                    .body(Full::from("bye").boxed())
                    .unwrap()
            })
        });
        let server = Server::start(handler).await;
        let upstream = server.upstream(Duration::from_secs(60));
        for round in 1..=3 {
            let (body, number) = read(upstream.send(get("/")).await.unwrap()).await;
            assert_eq!((body, number), (Bytes::from("bye"), round));
        }
        server.wait_open("the server's side closed", 0).await;
        assert_eq!(upstream.idle_count(), 0);
    }

    #[tokio::test]
    async fn a_streamed_response_gives_its_connection_back_once_read() {
        type Sender = http_body_util::channel::Sender<Bytes, Infallible>;
        let (give, take) = tokio::sync::oneshot::channel::<Sender>();
        let give = Arc::new(Mutex::new(Some(give)));
        let handler: Handler = Arc::new(move |_| {
            let (tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
            if let Some(give) = give.lock().unwrap().take() {
                let _ = give.send(tx);
            }
            Box::pin(async move { Response::new(body.boxed()) })
        });
        let server = Server::start(handler).await;
        let upstream = server.upstream(Duration::from_secs(60));
        let response = upstream.send(get("/")).await.unwrap();
        let mut tx = take.await.unwrap();
        tx.send_data(Bytes::from_static(b"first")).await.unwrap();
        let reading = tokio::spawn(read(response));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(upstream.idle_count(), 0, "in use while its body streams");
        tx.send_data(Bytes::from_static(b" last")).await.unwrap();
        drop(tx);
        assert_eq!(reading.await.unwrap().0, "first last");
        eventually("back once read", || upstream.idle_count() == 1).await;
        read(upstream.send(get("/")).await.unwrap()).await;
        assert_eq!(server.accepted(), 1);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_two_rounds_of_half_the_timeout() {
        let server = Server::start(ok()).await;
        let upstream = server.upstream(Duration::from_millis(400));
        // The first connection back starts the reaper, whose rounds then begin: closed at
        // the second round's end (400 ms), not the first (200 ms).
        let back = Instant::now();
        round_trip(&upstream).await;
        server.wait_open("the connection is closed", 0).await;
        assert!(
            back.elapsed() >= Duration::from_millis(300),
            "{:?}",
            back.elapsed()
        );
        assert_eq!(upstream.idle_count(), 0);
        // A new one is opened for the next request.
        assert_eq!(round_trip(&upstream).await.1, 2);
    }

    #[test]
    fn rounds_are_a_second_at_most_and_close_after_half_to_all_of_the_idle_timeout() {
        let secs = Duration::from_secs;
        let millis = Duration::from_millis;
        for (idle_timeout, round, rounds) in [
            (secs(60), secs(1), 60),
            (millis(2500), secs(1), 3),
            (secs(2), secs(1), 2),
            (millis(400), millis(200), 2),
            (millis(1), millis(1), 2),
        ] {
            let upstream = upstream_at("127.0.0.1:9".parse().unwrap(), idle_timeout);
            assert_eq!(upstream.shared.round_length, round, "{idle_timeout:?}");
            assert_eq!(upstream.shared.rounds_to_close, rounds, "{idle_timeout:?}");
            // Closed after between `rounds - 1` and `rounds` rounds idle.
            let (earliest, latest) = (round * (rounds - 1), round * rounds);
            assert!(
                earliest >= idle_timeout / 2 || idle_timeout < millis(2),
                "{idle_timeout:?}"
            );
            // (Two rounds at least: a 1 ms timeout, below the shortest round, takes 2 ms.)
            assert!(latest >= idle_timeout, "{idle_timeout:?}");
            assert!(
                latest < idle_timeout + round || rounds == 2,
                "{idle_timeout:?}"
            );
        }
    }

    #[tokio::test]
    async fn no_more_than_the_bound_is_kept_idle() {
        let server = Server::start(ok()).await;
        let mut upstream = server.upstream(Duration::from_secs(60));
        Arc::get_mut(&mut upstream.shared).unwrap().max_idle = 5;
        // Connections made directly, each ready, handed back one by one.
        for _ in 0..5 + 3 {
            let mut connection = upstream.connect().await.unwrap();
            connection.sender.ready().await.unwrap();
            upstream.shared.put(connection);
        }
        assert_eq!(upstream.idle_count(), 5);
        server.wait_open("the extra three are closed", 5).await;
    }

    #[tokio::test]
    async fn an_upstream_that_refuses_connections_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let upstream = upstream_at(addr, Duration::from_secs(60));
        let err = upstream.send(get("/")).await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        assert!(
            err.source().unwrap().to_string().contains("tcp connect"),
            "{err:?}"
        );
    }
}
