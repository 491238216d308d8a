//! The accept loop and the life of each connection.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use oauth_audit::layer::Resolving;
use oauth_audit::mtls::ClientCertificate;
use oauth_audit::writer::Auditor;
use oauth_audit::AuditLayer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::{Layer, Service};

use super::connection::{http2_header_list_size, record_rejection, rejection, Activity};
use super::forward::{self, ConnectionSlot, PeerCertificate, Protected};
use super::send_timeout::{is_send_timeout, SendTimeout};
use super::served_body::ServedBody;
use super::stalled_stream::{StreamExecutor, StreamWatch};

/// Streams an HTTP/2 client may have open at once on one connection (RFC 9113 recommends
/// no fewer than 100).
const MAX_STREAMS_PER_CONNECTION: u32 = 100;

// What one client connection can make the proxy hold, set here rather than left to hyper's
// and h2's defaults, which their documentation says may change (docs/config.md, "Memory per
// connection", adds them up).

/// The largest HTTP/1 read buffer, which is also the largest request head (request line and
/// fields; past it, `431`), and about the most response queued for a slow reader. hyper's
/// default, about 408 KiB, let each of `max_connections` connections hold that much head;
/// servers behind the proxy refuse far less (Node.js 16 KiB, nginx 32 KiB).
const MAX_HTTP1_BUFFER: usize = 64 * 1024;

/// The largest HTTP/2 header list the proxy serves (RFC 9113 §6.5.2: names and values plus 32
/// bytes a field, after HPACK decoding), hyper's default: a larger one is answered `431` on
/// its stream, and audited as an HTTP/1 head too large is; the connection's other streams go
/// on.
const MAX_HTTP2_HEADER_LIST: usize = 16 * 1024;

/// The largest HTTP/2 header list h2 decodes and hands the proxy, so that the proxy, not h2,
/// refuses (and audits) those past [`MAX_HTTP2_HEADER_LIST`]. h2 answers a larger one `431`
/// itself, keeping none of its fields, and nothing is audited; past four times this it closes
/// the connection (`ENHANCE_YOUR_CALM`). It bounds what a connection's streams can make the
/// proxy hold while h2 decodes their heads (100 of them at most): twice the limit served
/// rather than h2's default of 16 MiB.
const HTTP2_HEADER_LIST_DECODED: u32 = 32 * 1024;

/// Streams an HTTP/2 client may reset before the proxy has accepted them (the "rapid reset"
/// flood, CVE-2023-44487): past it the connection is closed with `ENHANCE_YOUR_CALM`. h2's
/// default, which hyper leaves to h2 and h2 says could change.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// Streams the proxy may reset because of the client's protocol errors over a connection's
/// life (the "MadeYouReset" flood, CVE-2025-8671) before closing it with
/// `ENHANCE_YOUR_CALM` (hyper's default).
const MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// Response bytes queued per HTTP/2 stream for a client that reads slowly (hyper's default).
/// HTTP/2 requests in flight are at most `max_connections` over all connections, so this is
/// at most `max_connections` × 400 KiB.
const MAX_HTTP2_SEND_BUFFER: usize = 400 * 1024;

/// How much each client may hold of the proxy.
#[derive(Clone, Debug)]
pub struct Limits {
    /// The time a request head (HTTP/1), or a TLS handshake, may take to arrive.
    pub header_timeout: Duration,
    /// How long a connection with no request in flight stays open.
    pub idle_timeout: Duration,
    /// How long a write to the client may wait without progress (a client that does not read
    /// its response) before the connection is closed, and an HTTP/2 stream's response may
    /// wait for its client's flow-control window before the stream is reset.
    pub send_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub grace: Duration,
}

/// Serves until `shutdown` completes, then waits up to `limits.grace` for requests in
/// flight. With `tls`, every connection is a TLS connection.
pub async fn serve(
    listener: TcpListener,
    layer: AuditLayer<Resolving>,
    auditor: Auditor,
    inner: Protected,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let service = layer.layer(inner);
    // HTTP/2 streams run on tokio, each given up once its client's window kept its response
    // waiting for `send_timeout`.
    let mut builder = auto::Builder::new(StreamExecutor::new(limits.send_timeout));
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // Not `max_headers`: hyper's default, 100 fields, is the same bound, and setting it
        // makes hyper fill its field arrays on every request instead of leaving them
        // uninitialised.
        .max_buf_size(MAX_HTTP1_BUFFER);
    // No keep-alive pings: `idle_timeout` closes a connection without requests in flight,
    // and a hostile client answers pings anyway.
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .max_header_list_size(HTTP2_HEADER_LIST_DECODED)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESET_STREAMS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESET_STREAMS)
        .max_send_buf_size(MAX_HTTP2_SEND_BUFFER);
    let connection = Arc::new(ConnectionSettings {
        builder,
        auditor,
        tls,
        limits: limits.clone(),
        streams: Arc::new(Semaphore::new(limits.max_connections)),
    });
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    // Every connection task holds a sender; once all are dropped, every connection is done.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // At the cap, new connections wait in the kernel's backlog instead of each taking a
        // task, a buffer and a file descriptor.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Running out of file descriptors is transient: back off, keep serving.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let settings = connection.clone();
        let open = open_tx.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            // Shared with the connection's requests: a WebSocket tunnel, which outlives the
            // connection's serving, keeps the connection's place until it closes.
            let slot = ConnectionSlot::new(permit);
            settings.run(stream, peer, service, stop, slot).await;
            drop(open);
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for requests in flight");
    let _ = stop_tx.send(true);
    drop(open_tx);
    if tokio::time::timeout(limits.grace, open_rx.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?limits.grace,
            "requests still in flight after the grace period; closing"
        );
    }
}

type Audited = oauth_audit::AuditService<Protected, Resolving>;

struct ConnectionSettings {
    builder: auto::Builder<StreamExecutor>,
    auditor: Auditor,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    /// HTTP/2 requests in flight over all connections, at most `max_connections`: an HTTP/1
    /// connection has one request in flight at a time, an HTTP/2 one up to
    /// [`MAX_STREAMS_PER_CONNECTION`], each of which may need an upstream connection. Further
    /// streams wait for a request to finish, so HTTP/2 clients hold no more upstream
    /// connections than as many HTTP/1 clients could.
    streams: Arc<Semaphore>,
}

impl ConnectionSettings {
    async fn run(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        service: Audited,
        stop: watch::Receiver<bool>,
        slot: ConnectionSlot,
    ) {
        let Some(acceptor) = &self.tls else {
            return self
                .serve_http(stream, peer, None, service, stop, slot)
                .await;
        };
        // A client that never finishes its handshake must not hold a connection forever.
        match tokio::time::timeout(self.limits.header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                // The handshake proved the client holds the certificate's key (RFC 8705).
                let certificate = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|der| {
                        let certificate = ClientCertificate::from_der(der).ok()?;
                        Some((certificate, PeerCertificate(Arc::from(der.as_ref()))))
                    });
                self.serve_http(stream, peer, certificate, service, stop, slot)
                    .await
            }
            Ok(Err(err)) => tracing::debug!(%peer, error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    async fn serve_http<I>(
        &self,
        io: I,
        peer: SocketAddr,
        certificate: Option<(ClientCertificate, PeerCertificate)>,
        service: Audited,
        mut stop: watch::Receiver<bool>,
        slot: ConnectionSlot,
    ) where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::default());
        let requests = activity.clone();
        let streams = self.streams.clone();
        let auditor = self.auditor.clone();
        let hyper_service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let in_flight = requests.begin();
            let http2 = req.version() == hyper::Version::HTTP_2;
            // h2 hands over header lists up to twice the bound, so that one past it is
            // refused here, where it is audited.
            let oversized = http2
                .then(|| http2_header_list_size(&req))
                .filter(|&size| size > MAX_HTTP2_HEADER_LIST);
            if let Some(size) = oversized {
                let description = format!(
                    "the HTTP/2 header list is {size} bytes, more than {MAX_HTTP2_HEADER_LIST}"
                );
                tracing::info!(%peer, status = 431, error = %description, "request refused before the audit layer");
                record_rejection(
                    &auditor,
                    peer,
                    std::time::Instant::now(),
                    hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    oauth_audit::event::error_code::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    description,
                );
            }
            let streams = http2.then(|| streams.clone());
            let mut req = forward::with_peer(req, peer);
            // Only a request that may become a tunnel carries the place (an extension on
            // every request would cost every request).
            if req.headers().contains_key(hyper::header::UPGRADE) {
                req.extensions_mut().insert(slot.clone());
            }
            if let Some((certificate, der)) = &certificate {
                req.extensions_mut().insert(certificate.clone());
                req.extensions_mut().insert(der.clone());
            }
            let mut service = service.clone();
            async move {
                if oversized.is_some() {
                    drop(req);
                    let mut refused = hyper::Response::new(ServedBody::empty(in_flight));
                    *refused.status_mut() = hyper::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
                    return Ok(refused);
                }
                // An HTTP/2 stream waits for its turn (the semaphore is never closed).
                let turn = match streams {
                    Some(streams) => streams.acquire_owned().await.ok(),
                    None => None,
                };
                // No `poll_ready` first (`oneshot`'s, which moves the request through a state
                // of its own): the audit layer is as ready as `Protected`, which always is.
                debug_assert!(service
                    .poll_ready(&mut std::task::Context::from_waker(std::task::Waker::noop()))
                    .is_ready());
                let response = match service.call(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // Run by the stream's task, where an HTTP/2 stream's watch is found.
                let watch = if http2 {
                    StreamWatch::current(peer)
                } else {
                    None
                };
                // The request stays in flight, and holds its turn, until its response body
                // is done with.
                Ok::<_, Infallible>(
                    response.map(move |body| ServedBody::new(body, in_flight, turn, watch)),
                )
            }
        });
        // Around the connection's IO rather than each response: a client that reads nothing
        // blocks the socket, whichever responses are queued on it.
        let io = SendTimeout::new(io, self.limits.send_timeout);
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(io), hyper_service);
        tokio::pin!(connection);
        let mut closing = false;
        let result = loop {
            tokio::select! {
                result = connection.as_mut() => break result,
                () = activity.idle_for(self.limits.idle_timeout), if !closing => {
                    tracing::debug!(%peer, "idle connection closed");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = stop.wait_for(|stop| *stop), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        };
        let Err(err) = result else { return };
        match rejection(err.as_ref()) {
            Some((status, code)) => {
                tracing::info!(%peer, status = status.as_u16(), error = %err, "request refused before the audit layer");
                record_rejection(
                    &self.auditor,
                    peer,
                    activity.idle_since(),
                    status,
                    code,
                    err.to_string(),
                );
            }
            None if is_send_timeout(err.as_ref()) => tracing::info!(
                %peer,
                send_timeout_secs = self.limits.send_timeout.as_secs_f64(),
                "client connection closed: the client took no part of the response for send_timeout"
            ),
            None => tracing::debug!(%peer, error = %err, "connection ended with an error"),
        }
    }
}
