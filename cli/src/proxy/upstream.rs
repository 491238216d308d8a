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
//! - a connection goes back to the list once its response has been read, at once when it
//!   already has, else from a task that waits for it (a body still streaming);
//! - idle connections are closed after between half of `idle_timeout` and `idle_timeout`
//!   without a request, and at most [`MAX_IDLE`] are kept;
//! - an upgraded connection (`101 Switching Protocols`) belongs to its tunnel and never
//!   comes back.

use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Duration;

use http::{Request, Response, StatusCode, Uri};
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tower::ServiceExt;

/// Idle connections kept at most; one returned past this is closed.
pub const MAX_IDLE: usize = 1024;

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
        Upstream {
            shared: Arc::new(Shared {
                connector,
                uri,
                idle: Mutex::new(Vec::new()),
                round: AtomicU32::new(0),
                round_length: (idle_timeout / 2).max(Duration::from_millis(1)),
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
    /// How often the reaper runs: half the idle timeout.
    round_length: Duration,
    /// Idle connections kept at most ([`MAX_IDLE`]).
    max_idle: usize,
    reaper: Once,
}

struct Idle<B> {
    sender: SendRequest<B>,
    round: u32,
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
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Sends `req` (origin-form, with its `Host`) on an idle connection, or a new one.
    pub async fn send(&self, mut req: Request<B>) -> Result<Response<Incoming>, UpstreamError> {
        loop {
            let (mut sender, reused) = match self.shared.checkout() {
                Some(sender) => (sender, true),
                // Boxed: the connect future is large and rarely needed, and would otherwise
                // make every request's future larger to move.
                None => (Box::pin(self.connect()).await?, false),
            };
            match sender.try_send_request(req).await {
                Ok(response) => {
                    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                        self.shared.give_back(sender);
                    }
                    return Ok(response);
                }
                Err(mut err) => match err.take_message() {
                    // Never started: the idle connection had been closed. Another one, and
                    // at the latest a new one, which is not retried.
                    Some(again) if reused => req = again,
                    _ => return Err(UpstreamError::Request(err.into_error())),
                },
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<B>, UpstreamError> {
        let io = self
            .shared
            .connector
            .clone()
            .oneshot(self.shared.uri.clone())
            .await
            .map_err(UpstreamError::Connect)?;
        let (sender, connection) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(UpstreamError::Request)?;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(error = %err, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

impl<B> Shared<B>
where
    B: Body + Send + 'static,
{
    /// The most recently returned idle connection that is ready; closed ones are dropped.
    fn checkout(&self) -> Option<SendRequest<B>> {
        loop {
            let entry = self.idle.lock().ok()?.pop()?;
            if entry.sender.is_ready() {
                return Some(entry.sender);
            }
            // Closed by the upstream: dropped here, outside the lock.
        }
    }

    /// Back to the list once ready for another request: now if it is, else when it is.
    fn give_back(self: &Arc<Self>, mut sender: SendRequest<B>) {
        if sender.is_ready() {
            self.put(sender);
        } else if !sender.is_closed() {
            let shared = Arc::downgrade(self);
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    if let Some(shared) = shared.upgrade() {
                        shared.put(sender);
                    }
                }
            });
        }
    }

    fn put(self: &Arc<Self>, sender: SendRequest<B>) {
        self.reaper.call_once(|| {
            tokio::spawn(reap(Arc::downgrade(self), self.round_length));
        });
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.max_idle {
                // Read under the lock, so that a round the reaper is starting counts.
                let round = self.round.load(Ordering::Relaxed);
                idle.push(Idle { sender, round });
            }
        }
        // Past the bound, the connection closes as `sender` is dropped: after the lock.
    }
}

/// Every `round_length`, closes the connections idle since before the previous round, and
/// those the upstream closed. Ends with the pool.
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
            Ok(mut idle) => {
                let mut closed = Vec::new();
                let mut kept = Vec::with_capacity(idle.len());
                for entry in idle.drain(..) {
                    if round.wrapping_sub(entry.round) >= 2 || entry.sender.is_closed() {
                        closed.push(entry);
                    } else {
                        kept.push(entry);
                    }
                }
                *idle = kept;
                closed
            }
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
            let mut sender = upstream.connect().await.unwrap();
            sender.ready().await.unwrap();
            upstream.shared.put(sender);
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
        let (mut sender, connection) = http1::handshake::<_, Full<Bytes>>(io).await.unwrap();
        let paused = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(Pausable {
            connection: Box::pin(connection),
            paused: paused.clone(),
        });
        sender.ready().await.unwrap();
        paused.store(true, Ordering::SeqCst);
        upstream.shared.put(sender);

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

    #[tokio::test]
    async fn no_more_than_the_bound_is_kept_idle() {
        let server = Server::start(ok()).await;
        let mut upstream = server.upstream(Duration::from_secs(60));
        Arc::get_mut(&mut upstream.shared).unwrap().max_idle = 5;
        // Connections made directly, each ready, handed back one by one.
        for _ in 0..5 + 3 {
            let mut sender = upstream.connect().await.unwrap();
            sender.ready().await.unwrap();
            upstream.shared.put(sender);
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
