//! A small real HTTP server on 127.0.0.1 for the proxy to forward to.
//!
//! `/echo` answers what it received; `/stream` sends one chunk, then the next only when the
//! test releases it; `/bytes/{n}` answers `n` bytes; `/collect` keeps what is posted to it; `/upload` reports how much of a request body has arrived while it is
//! still arriving; `/ws` switches to an echo protocol; `/status/{code}` answers that code;
//! anything else answers `200 ok`.
//!
//! Like many real servers, it is lenient where route rules are strict: it serves a
//! handler (`200 served: METHOD PATH`) for any path it *reads* as under `/admin` or
//! `/orders` (it
//! decodes `%2F`, `%5C` and nested escapes, ends the path at NUL, cuts `;parameters`,
//! ignores case; or, as routers that do not resolve dot segments do, matches the path decoded
//! once with its `.` and `..` segments in place), and it takes the method in any case and
//! from `X-HTTP-Method-Override`,
//! `X-HTTP-Method`, `X-Method-Override`, `X-Forwarded-Method`, `X-Original-Method` (as an
//! upstream deciding through a forward-auth service does) or `?_method=`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

type Body = BoxBody<Bytes, Infallible>;

/// Test controls shared with the server.
pub struct Upstream {
    pub addr: SocketAddr,
    /// Each permit lets `/stream` send its next chunk.
    pub release: Arc<Semaphore>,
    /// Bytes of the `/upload` body received so far.
    pub uploaded: watch::Receiver<usize>,
    /// Bodies posted to `/collect` (an HTTP event collector).
    pub collected: Arc<Mutex<Vec<Bytes>>>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// The most `/stream` responses that were in flight at once.
    pub most_streams: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct State {
    release: Arc<Semaphore>,
    uploaded: watch::Sender<usize>,
    collected: Arc<Mutex<Vec<Bytes>>>,
    streams: Arc<AtomicUsize>,
    most_streams: Arc<AtomicUsize>,
}

/// Counts a `/stream` response out when its body ends: before the proxy can see it end.
struct StreamEnds(Arc<AtomicUsize>);

impl Drop for StreamEnds {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let release = Arc::new(Semaphore::new(0));
        let (tx, uploaded) = watch::channel(0);
        let collected = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        let most_streams = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(State {
            release: release.clone(),
            uploaded: tx,
            collected: collected.clone(),
            streams: Arc::new(AtomicUsize::new(0)),
            most_streams: most_streams.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            release,
            uploaded,
            collected,
            connections,
            most_streams,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// The path as a lenient server reads it, lower-cased.
fn lenient_path(path: &str) -> String {
    let mut bytes = path.as_bytes().to_vec();
    loop {
        let next: Vec<u8> = percent_encoding::percent_decode(&bytes).collect();
        if next == bytes {
            break;
        }
        bytes = next;
    }
    let bytes = bytes.split(|&b| b == 0).next().unwrap_or_default();
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    let mut segments: Vec<&str> = Vec::new();
    for segment in text.split(['/', '\\']) {
        match segment.split(';').next().unwrap_or_default() {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    format!("/{}", segments.join("/"))
}

/// The path as a router that does not resolve dot segments reads it (Werkzeug's
/// `<path:...>`, Express's `/*`): decoded once, lower-cased, empty segments dropped, `.` and
/// `..` left in place.
fn unresolved_path(path: &str) -> String {
    let bytes: Vec<u8> = percent_encoding::percent_decode(path.as_bytes()).collect();
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    let segments: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// The method as a lenient server takes it: upper-cased, overrides honoured.
fn lenient_method<B>(req: &Request<B>) -> String {
    let header = [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
        "x-forwarded-method",
        "x-original-method",
    ]
    .iter()
    .find_map(|name| req.headers().get(*name))
    .and_then(|v| v.to_str().ok())
    .map(str::to_owned);
    // As PHP names parameters: leading spaces dropped, ended at a NUL byte (`%00`: PHP reads
    // the decoded name as a C string), `.`, ` ` and `[` read as `_`.
    let param = req.uri().query().and_then(|q| {
        q.split('&').find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.split("%00").next().unwrap_or(name);
            let name = name.replace('+', " ");
            let name: String = name
                .trim_start_matches(' ')
                .chars()
                .map(|c| if matches!(c, '.' | ' ' | '[') { '_' } else { c })
                .collect();
            (name == "_method").then(|| value.to_owned())
        })
    });
    header
        .or(param)
        .unwrap_or_else(|| req.method().to_string())
        .to_uppercase()
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    response
}

async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let response = match path.as_str() {
        "/echo" => {
            let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (name, value) in req.headers() {
                headers
                    .entry(name.to_string())
                    .or_default()
                    .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
            let method = req.method().to_string();
            let uri = req.uri().to_string();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let mut response = full(
                StatusCode::OK,
                json!({"method": method, "uri": uri, "headers": headers, "body_len": body.len()})
                    .to_string(),
            );
            response
                .headers_mut()
                .insert(header::CONNECTION, "x-response-hop".parse().unwrap());
            response.headers_mut().insert(
                "x-response-hop",
                "must not reach the client".parse().unwrap(),
            );
            response
                .headers_mut()
                .insert("x-end-to-end", "kept".parse().unwrap());
            response
        }
        "/stream" => {
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(1);
            let release = state.release.clone();
            let now = state.streams.fetch_add(1, Ordering::SeqCst) + 1;
            state.most_streams.fetch_max(now, Ordering::SeqCst);
            let ends = StreamEnds(state.streams.clone());
            tokio::spawn(async move {
                // Dropped before `tx`, which ends the body.
                let _ends = ends;
                for (i, chunk) in ["first\n", "second\n", "third\n"].into_iter().enumerate() {
                    if i > 0 {
                        let Ok(permit) = release.acquire().await else {
                            return;
                        };
                        permit.forget();
                    }
                    if tx.send_data(Bytes::from(chunk)).await.is_err() {
                        return;
                    }
                }
            });
            Response::new(body.boxed())
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut total = 0;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Some(data) = frame.data_ref() {
                    total += data.len();
                    state.uploaded.send_replace(total);
                }
            }
            full(StatusCode::OK, json!({"body_len": total}).to_string())
        }
        "/collect" => {
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            state.collected.lock().unwrap().push(body);
            full(StatusCode::OK, "{}")
        }
        // Switches to the protocol the request names, or (as a lax server would, and always
        // on `/ws-h2c`) to `h2c` when it names none.
        "/ws" | "/ws-h2c" => {
            let protocol = match req.headers().get(header::UPGRADE) {
                Some(asked) if path == "/ws" => asked.clone(),
                _ => header::HeaderValue::from_static("h2c"),
            };
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = upgrade.await else { return };
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 1024];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let mut response = full(StatusCode::SWITCHING_PROTOCOLS, Bytes::new());
            response.headers_mut().insert(header::UPGRADE, protocol);
            response
                .headers_mut()
                .insert(header::CONNECTION, "upgrade".parse().unwrap());
            response
        }
        _ if [lenient_path(&path), unresolved_path(&path)]
            .iter()
            .any(|read| ["/admin", "/orders"].iter().any(|p| read.starts_with(p))) =>
        {
            let method = lenient_method(&req);
            let read = [lenient_path(&path), unresolved_path(&path)]
                .into_iter()
                .find(|read| ["/admin", "/orders"].iter().any(|p| read.starts_with(p)))
                .unwrap_or_default();
            full(StatusCode::OK, format!("served: {method} {read}"))
        }
        p if p.starts_with("/bytes/") => {
            let len = p["/bytes/".len()..].parse().unwrap_or(0);
            full(StatusCode::OK, vec![b'x'; len])
        }
        p if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse().unwrap_or(500);
            full(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "",
            )
        }
        _ => full(StatusCode::OK, "ok"),
    };
    Ok(response)
}
