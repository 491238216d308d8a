//! The metrics address (`proxy.metrics_listen`): `/metrics` for Prometheus, `/healthz` for
//! liveness and `/readyz` for readiness, as Kubernetes probes ask them.
//!
//! - `/healthz`: 200 while the process serves; it says nothing of the upstream or the sinks,
//!   so that a liveness probe never restarts a proxy for someone else's outage.
//! - `/readyz`: 200 when the upstream accepts a TCP connection (within a second; one look
//!   a second at most, whoever asks) and every writer is writing or spooling within its
//!   limits: its queue is not full and no check saw its dropped count grow in the last
//!   [`DROP_WINDOW`]. Else 503, with one line per reason.
//!   A readiness probe takes the proxy out of the load balancer while that lasts. The window
//!   is the process's, not the caller's: every prober (a kubelet, a load balancer, a person
//!   with curl) sees the same answer, and none of them takes a drop away from the others.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics_exporter_prometheus::PrometheusHandle;
use oauth_audit::writer::Auditor;
use tokio::net::TcpListener;

/// How long the upstream may take to accept a connection before the proxy is not ready.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(1);

/// How long a look at the upstream is reused by the readiness checks that follow it.
const UPSTREAM_LOOK_REUSED: Duration = Duration::from_secs(1);

/// How long the metrics address waits after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The longest a connection to the metrics address may take to send a request head (or
/// stay silent between requests): probes and scrapes send theirs at once.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a writer is not ready after a check saw it drop events.
const DROP_WINDOW: Duration = Duration::from_secs(10);

/// A writer's drops as the readiness checks saw them.
#[derive(Clone, Copy, Debug, Default)]
struct Drops {
    /// The dropped count at the last check.
    seen: u64,
    /// When a check last saw the count grow, and the count before the first growth of
    /// the window that started then.
    recent: Option<(Instant, u64)>,
}

impl Drops {
    /// Takes the writer's dropped count now; the events dropped in the window, if it is open.
    fn check(&mut self, dropped: u64, now: Instant) -> Option<u64> {
        let open = |at: Instant| now.saturating_duration_since(at) < DROP_WINDOW;
        if dropped > self.seen {
            let base = match self.recent {
                Some((at, base)) if open(at) => base,
                _ => self.seen,
            };
            self.recent = Some((now, base));
        }
        self.seen = dropped;
        match self.recent {
            Some((at, base)) if open(at) => Some(dropped.saturating_sub(base)),
            _ => None,
        }
    }
}

/// What the three routes read.
pub struct Admin {
    metrics: PrometheusHandle,
    auditor: Auditor,
    /// `host:port` of the upstream.
    upstream: String,
    /// The last look at the upstream: when, and what was wrong (nothing when it accepted).
    /// Held while a look is made, so that checks at the same time share one connection.
    upstream_seen: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
    /// Each writer's drops as the readiness checks saw them.
    dropped: Mutex<Vec<Drops>>,
}

impl Admin {
    pub fn new(metrics: PrometheusHandle, auditor: Auditor, upstream: String) -> Arc<Admin> {
        let dropped = auditor
            .stats()
            .writers
            .iter()
            .map(|w| Drops {
                seen: w.dropped,
                recent: None,
            })
            .collect();
        Arc::new(Admin {
            metrics,
            auditor,
            upstream,
            upstream_seen: tokio::sync::Mutex::new(None),
            dropped: Mutex::new(dropped),
        })
    }

    /// What is wrong with the upstream, if anything: whether it accepts a TCP connection
    /// within [`UPSTREAM_CONNECT`]. A look is reused for [`UPSTREAM_LOOK_REUSED`], so that
    /// probes at any rate (or anyone who can reach this address) open at most one
    /// connection to the upstream a second.
    async fn upstream_problem(&self) -> Option<String> {
        let mut seen = self.upstream_seen.lock().await;
        if let Some((at, problem)) = &*seen {
            if at.elapsed() < UPSTREAM_LOOK_REUSED {
                return problem.clone();
            }
        }
        let problem = match tokio::time::timeout(
            UPSTREAM_CONNECT,
            tokio::net::TcpStream::connect(&self.upstream),
        )
        .await
        {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("upstream {}: {e}", self.upstream)),
            Err(_) => Some(format!(
                "upstream {}: no connection within {} ms",
                self.upstream,
                UPSTREAM_CONNECT.as_millis()
            )),
        };
        *seen = Some((Instant::now(), problem.clone()));
        problem
    }

    /// Why the proxy is not ready; empty when it is.
    async fn unready(&self) -> Vec<String> {
        let mut reasons: Vec<String> = self.upstream_problem().await.into_iter().collect();
        let writers = self.auditor.stats().writers;
        let now = Instant::now();
        let mut drops = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
        drops.resize(writers.len(), Drops::default());
        for (writer, drops) in writers.iter().zip(drops.iter_mut()) {
            if writer.capacity > 0 && writer.queued >= writer.capacity {
                reasons.push(format!(
                    "writer {}: queue full ({} events)",
                    writer.name, writer.queued
                ));
            }
            if let Some(count) = drops.check(writer.dropped, now) {
                reasons.push(format!(
                    "writer {}: {count} events dropped in the last {} s",
                    writer.name,
                    DROP_WINDOW.as_secs()
                ));
            }
        }
        reasons
    }

    async fn answer(&self, request: Request<Incoming>) -> Response<Full<Bytes>> {
        let text = |status: StatusCode, body: String| {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = status;
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
        }
        match request.uri().path() {
            "/metrics" => {
                let mut response = text(StatusCode::OK, self.metrics.render());
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            "/healthz" => text(StatusCode::OK, "ok\n".into()),
            "/readyz" => {
                let reasons = self.unready().await;
                if reasons.is_empty() {
                    text(StatusCode::OK, "ready\n".into())
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, reasons.join("\n") + "\n")
                }
            }
            _ => text(
                StatusCode::NOT_FOUND,
                "/metrics, /healthz or /readyz\n".into(),
            ),
        }
    }
}

/// Serves the three routes on `listener` until the process ends; keeps the histograms'
/// windows moving.
pub fn spawn(listener: TcpListener, admin: Arc<Admin>) {
    let upkeep = admin.metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors, say: the error comes back at once until one
                    // is free, so wait as the proxy's listener does rather than spin.
                    tracing::warn!(error = %err, "metrics address: accept failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let admin = admin.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.answer(request).await) }
                });
                // HTTP/1.1 only, as probes and scrapers speak it: its request head has a
                // deadline from the first byte awaited on.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}
