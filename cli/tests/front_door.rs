//! The proxy as a front door: slow and malformed clients, connection limits, TLS on the
//! listener (with certificate reload) and towards an https upstream. The real binary, real
//! sockets on 127.0.0.1, certificates made by rcgen.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::Value;
use support::upstream::Upstream;
use support::{http, raw_head, read_events, run, wait_event, Proxy, TempDir, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// The proxy with `config` (a `[proxy]` section body is appended to) in front of `upstream`.
fn start_proxy(dir: &TempDir, upstream: &str, proxy_keys: &str, extra: &str) -> Proxy {
    let out = dir.path("audit.jsonl");
    let config = dir.write(
        "proxy.toml",
        &format!(
            "[proxy]\nupstream = \"{upstream}\"\n{proxy_keys}\n{extra}\n[[writer]]\ntype = \"jsonl\"\npath = \"{}\"\n",
            out.display()
        ),
    );
    Proxy::start(&["--config", config.to_str().unwrap()], &[])
}

/// Reads until the peer closes the connection (or resets it): what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the proxy kept a slow connection open"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_a_legitimate_request_is_answered() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("slowloris");
    let proxy = start_proxy(
        &dir,
        &upstream.url(),
        "header_timeout = \"1s\"\nidle_timeout = \"1s\"\nmax_connections = 20",
        "",
    );

    // Ten times the connection cap: half-sent heads, heads trickling a byte at a time, and
    // connections that never send anything.
    let mut slow = Vec::new();
    for i in 0..200 {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        match i % 3 {
            0 => stream
                .write_all(b"GET /echo HTTP/1.1\r\nHost: proxy\r\nX-Slow: ")
                .await
                .unwrap(),
            1 => {}
            _ => stream.write_all(b"G").await.unwrap(),
        }
        slow.push((i % 3 == 2, stream));
    }
    let trickling: Vec<_> = slow
        .into_iter()
        .map(|(trickle, mut stream)| {
            tokio::spawn(async move {
                if trickle {
                    // One byte at a time, forever: only a deadline for the whole head ends it.
                    let trickled = async {
                        let (mut reader, mut writer) = stream.split();
                        let mut probe = [0u8; 64];
                        loop {
                            tokio::select! {
                                read = reader.read(&mut probe) => match read {
                                    Ok(0) | Err(_) => return,
                                    Ok(_) => {}
                                },
                                () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                                    if writer.write_all(b"E").await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    };
                    tokio::time::timeout(WAIT, trickled)
                        .await
                        .expect("the proxy kept a trickling connection open");
                    Vec::new()
                } else {
                    read_until_closed(&mut stream).await
                }
            })
        })
        .collect();

    // The legitimate client waits in the backlog behind them, and is served.
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    for task in trickling {
        let sent_back = task.await.unwrap();
        let text = String::from_utf8_lossy(&sent_back);
        assert!(
            sent_back.is_empty() || text.starts_with("HTTP/1.1 408"),
            "a slow connection got {text:?}"
        );
    }
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("idle-h2");
    let proxy = start_proxy(&dir, &upstream.url(), "idle_timeout = \"1s\"", "");
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    // One request, then nothing: the connection is idle from the end of its response.
    let response = sender
        .send_request(
            http::Request::get(format!("http://{}/echo", proxy.addr))
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    tokio::time::timeout(WAIT, connection)
        .await
        .expect("the proxy closed the idle HTTP/2 connection")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn http2_streams_hold_no_more_upstream_connections_than_max_connections() {
    use std::sync::atomic::Ordering;
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-streams");
    let proxy = start_proxy(&dir, &upstream.url(), "max_connections = 2", "");
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    // Ten streams on one connection, each a response that stays open until released.
    let mut requests = Vec::new();
    for _ in 0..10 {
        let mut sender = sender.clone();
        let url = format!("http://{}/stream", proxy.addr);
        requests.push(tokio::spawn(async move {
            let response = sender
                .send_request(
                    http::Request::get(url)
                        .body(http_body_util::Empty::<Bytes>::new())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            response.into_body().collect().await.unwrap();
            status
        }));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while upstream.connections.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no upstream connection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Without the bound the other eight would have their own upstream connections by now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(upstream.connections.load(Ordering::SeqCst), 2);
    // Released, every stream is answered in turn.
    upstream.release.add_permits(1000);
    for request in requests {
        assert_eq!(request.await.unwrap(), 200);
    }
    // What the bound holds is the requests in flight. An upstream connection goes back to
    // the pool a moment after its response ends, so the stream let in next may open a new
    // one meanwhile, as a new HTTP/1 client's request would: the count of connections is
    // not what is bounded once they turn over.
    assert_eq!(upstream.most_streams.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn requests_hyper_refuses_leave_a_failed_request_event() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("malformed");
    let out = dir.path("audit.jsonl");
    let proxy = start_proxy(&dir, &upstream.url(), "", "");

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /token?code=secret-code HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let mut head = String::from("GET /echo HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        head.push_str(&format!("X-Many-{i}: v\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&answer)
    );

    let malformed = wait_event(&out, "for the 400", |e| e["http"]["status"] == 400).await;
    assert_eq!(malformed["kind"], "ResourceAccessed");
    assert_eq!(malformed["outcome"], "failure");
    assert_eq!(malformed["severity"], "warning");
    assert_eq!(malformed["error"]["code"], "malformed_request");
    assert_eq!(malformed["source"]["ip"], "127.0.0.1");
    assert!(
        malformed["http"].get("method").is_none(),
        "absent, not empty"
    );
    let too_large = wait_event(&out, "for the 431", |e| e["http"]["status"] == 431).await;
    assert_eq!(
        too_large["error"]["code"],
        "request_header_fields_too_large"
    );
    let all = std::fs::read_to_string(&out).unwrap();
    assert!(
        !all.contains("secret-code"),
        "nothing of the head is quoted"
    );
    assert_eq!(read_events(&out).len(), 2);
}

/// An HTTP/1 request head of `size` bytes or so, in one field.
fn head_with_a_field_of(size: usize) -> String {
    format!(
        "GET /echo HTTP/1.1\r\nHost: x\r\nX-Large: {}\r\n\r\n",
        "a".repeat(size)
    )
}

/// An HTTP/1 head past 64 KiB is refused `431` (and audited) rather than held: hyper's default
/// let each connection hold about 408 KiB of head. A head within the bound is served.
#[tokio::test]
async fn an_http1_head_past_64_kib_is_refused() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h1-head");
    let out = dir.path("audit.jsonl");
    let proxy = start_proxy(&dir, &upstream.url(), "", "");

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // The proxy stops reading at the bound: the rest of the head may meet a closed
    // connection, and the answer a reset.
    let _ = stream
        .write_all(head_with_a_field_of(100 * 1024).as_bytes())
        .await;
    let answer = read_until_closed(&mut stream).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    let refused = wait_event(&out, "for the 431", |e| e["http"]["status"] == 431).await;
    assert_eq!(refused["error"]["code"], "request_header_fields_too_large");

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(head_with_a_field_of(32 * 1024).as_bytes())
        .await
        .unwrap();
    let mut answer = vec![0u8; 16];
    tokio::time::timeout(WAIT, stream.read_exact(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&answer)
    );
}

/// An HTTP/2 frame: its 9-byte header, then `payload`.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(9 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    frame.push(kind);
    frame.push(flags);
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An HTTP/2 client that opens streams and resets each at once ("rapid reset",
/// CVE-2023-44487) is sent `GOAWAY` with `ENHANCE_YOUR_CALM` well before its thousandth
/// stream, and the proxy serves the next client. One with a header list past 16 KiB is
/// answered `431` on that stream, and its connection serves the next request.
#[tokio::test]
async fn http2_clients_flooding_resets_or_huge_header_lists_are_refused_and_others_served() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-floods");
    let proxy = start_proxy(&dir, &upstream.url(), "", "");

    // Prior knowledge: the preface, empty SETTINGS, then HEADERS (`GET /echo`, HPACK static
    // entries and `:authority: x` not indexed) each followed by RST_STREAM(CANCEL).
    let mut flood = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    flood.extend(h2_frame(0x4, 0, 0, &[]));
    let mut block = vec![0x82, 0x86, 0x04, 0x05];
    block.extend_from_slice(b"/echo");
    block.extend_from_slice(&[0x01, 0x01, b'x']);
    for i in 0..1000u32 {
        let stream = 2 * i + 1;
        flood.extend(h2_frame(0x1, 0x5, stream, &block));
        flood.extend(h2_frame(0x3, 0, stream, &8u32.to_be_bytes()));
    }
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // The proxy may close the connection before it has read the whole flood.
    let _ = stream.write_all(&flood).await;
    let received = read_until_closed(&mut stream).await;
    let mut goaway = None;
    let mut at = 0;
    while at + 9 <= received.len() {
        let len =
            u32::from_be_bytes([0, received[at], received[at + 1], received[at + 2]]) as usize;
        let kind = received[at + 3];
        let payload = &received[(at + 9).min(received.len())..(at + 9 + len).min(received.len())];
        if kind == 0x7 && payload.len() >= 8 {
            let last = u32::from_be_bytes(payload[..4].try_into().unwrap()) & 0x7fff_ffff;
            let code = u32::from_be_bytes(payload[4..8].try_into().unwrap());
            goaway = Some((last, code));
        }
        at += 9 + len;
    }
    let (last, code) = goaway.expect("a GOAWAY");
    assert_eq!(code, 0xb, "ENHANCE_YOUR_CALM");
    assert!(
        last < 2 * 1000,
        "closed before the flood's end: last stream {last}"
    );

    // A header list past 16 KiB: `431` on its stream, and the connection goes on.
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let huge = sender
        .send_request(
            http::Request::get(format!("http://{}/echo", proxy.addr))
                .header("x-large", "a".repeat(20 * 1024))
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await;
    match huge {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(err) => assert!(err.to_string().contains("refused"), "{err}"),
    }
    let response = sender
        .send_request(
            http::Request::get(format!("http://{}/echo", proxy.addr))
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Another client is served.
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// `GET /echo` over HTTP/2 with one field `x-large` of `size` bytes.
fn h2_get_with_a_field_of(
    addr: SocketAddr,
    size: usize,
) -> http::Request<http_body_util::Empty<Bytes>> {
    http::Request::get(format!("http://{addr}/echo"))
        .header("x-large", format!("secret-{}", "a".repeat(size - 7)))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap()
}

/// An HTTP/2 header list past 16 KiB is refused `431` by the proxy itself, and leaves the
/// same event as an HTTP/1 head too large: h2 refusing it on its own would have answered the
/// client and written nothing. A list within the bound is served on the same connection; one
/// past h2's own bound (32 KiB) is still refused on its stream, and the connection goes on.
#[tokio::test]
async fn an_http2_header_list_past_16_kib_is_refused_and_audited() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-header-list");
    let out = dir.path("audit.jsonl");
    let proxy = start_proxy(&dir, &upstream.url(), "", "");
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);

    let response = sender
        .send_request(h2_get_with_a_field_of(proxy.addr, 20 * 1024))
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let refused = wait_event(&out, "for the 431", |e| e["http"]["status"] == 431).await;
    assert_eq!(refused["kind"], "ResourceAccessed");
    assert_eq!(refused["outcome"], "failure");
    assert_eq!(refused["severity"], "warning");
    assert_eq!(refused["error"]["code"], "request_header_fields_too_large");
    assert_eq!(refused["source"]["ip"], "127.0.0.1");
    assert!(refused["http"].get("method").is_none(), "{refused}");
    assert!(refused["http"].get("path").is_none(), "{refused}");

    // Within the bound: served.
    let response = sender
        .send_request(h2_get_with_a_field_of(proxy.addr, 15 * 1024))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();

    // Past h2's own bound: refused on its stream; the connection serves the next request.
    let response = sender
        .send_request(h2_get_with_a_field_of(proxy.addr, 40 * 1024))
        .await
        .unwrap();
    assert_eq!(response.status(), 431);
    let response = sender
        .send_request(h2_get_with_a_field_of(proxy.addr, 100))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();

    let served = wait_event(&out, "for the request served", |e| {
        e["http"]["status"] == 200
    })
    .await;
    assert_eq!(served["http"]["path"], "/echo");
    let all = std::fs::read_to_string(&out).unwrap();
    assert!(!all.contains("secret-"), "nothing of the head is quoted");
}

/// A CA and the certificates it signs for 127.0.0.1.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate (PEM), its DER and its key (PEM).
    fn issue(&self) -> (String, Vec<u8>, String) {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), cert.der().to_vec(), key.serialize_pem())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Connects over TLS trusting only `ca_pem`; the certificate the server showed and the
/// stream.
async fn tls_connect(
    addr: SocketAddr,
    ca_pem: &str,
) -> (Vec<u8>, tokio_rustls::client::TlsStream<TcpStream>) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let stream = connector.connect(name, tcp).await.unwrap();
    let shown = stream.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (shown, stream)
}

async fn get_over(stream: &mut tokio_rustls::client::TlsStream<TcpStream>, path: &str) -> String {
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    // A TLS peer may close without close_notify once the response is complete.
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("the proxy answers");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Replaces `path` at once, as a deployment tool (or a Kubernetes secret update) does.
fn replace_file(path: &Path, text: &str) {
    let temp = path.with_extension("new");
    std::fs::write(&temp, text).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

#[tokio::test]
async fn listens_on_tls_and_picks_up_a_renewed_certificate() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("tls-listener");
    let ca = Ca::new();
    let (cert_pem, cert_der, key_pem) = ca.issue();
    let cert_path = dir.write("server.pem", &cert_pem);
    let key_path = dir.write("server.key", &key_pem);
    let proxy = start_proxy(
        &dir,
        &upstream.url(),
        "",
        &format!(
            "[proxy.tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            cert_path.display(),
            key_path.display()
        ),
    );

    let (shown, mut stream) = tls_connect(proxy.addr, &ca.pem).await;
    assert_eq!(shown, cert_der);
    let answer = get_over(&mut stream, "/echo").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The upstream is told the client came over TLS (it builds issuer and redirect URLs).
    assert!(
        answer.contains(r#""x-forwarded-proto":["https"]"#),
        "{answer}"
    );
    assert!(answer.contains(";proto=https;"), "{answer}");

    let (renewed_pem, renewed_der, renewed_key) = ca.issue();
    // Key first: a handshake between the two writes keeps the old pair (they do not match).
    replace_file(&key_path, &renewed_key);
    replace_file(&cert_path, &renewed_pem);
    let (shown, mut stream) = tls_connect(proxy.addr, &ca.pem).await;
    assert_eq!(
        shown, renewed_der,
        "a new connection gets the renewed certificate"
    );
    let answer = get_over(&mut stream, "/anything").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A broken file does not take the listener down: the last good pair stays.
    replace_file(&cert_path, "not a certificate");
    let (shown, _) = tls_connect(proxy.addr, &ca.pem).await;
    assert_eq!(shown, renewed_der);
}

/// An https server on 127.0.0.1 answering `secure upstream` to everything.
async fn tls_upstream(cert_pem: &str, key_pem: &str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    use rustls::pki_types::pem::PemObject;
    let certs =
        vec![rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        "secure upstream",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn an_https_upstream_is_verified_by_the_configured_ca() {
    let dir = TempDir::new("tls-upstream");
    let ca = Ca::new();
    let (cert_pem, _, key_pem) = ca.issue();
    let (addr, _server) = tls_upstream(&cert_pem, &key_pem).await;
    let ca_path = dir.write("ca.pem", &ca.pem);
    let proxy = start_proxy(
        &dir,
        &format!("https://{addr}"),
        "",
        &format!(
            "[proxy.upstream_tls]\nca_file = \"{}\"\n",
            ca_path.display()
        ),
    );
    let response = http().get(proxy.url("/resource")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "secure upstream");
}

#[tokio::test]
async fn an_upstream_with_an_untrusted_certificate_is_refused_and_audited() {
    let dir = TempDir::new("tls-untrusted");
    let out = dir.path("audit.jsonl");
    let trusted = Ca::new();
    let impostor = Ca::new();
    let (cert_pem, _, key_pem) = impostor.issue();
    let (addr, _server) = tls_upstream(&cert_pem, &key_pem).await;
    let ca_path = dir.write("ca.pem", &trusted.pem);
    let proxy = start_proxy(
        &dir,
        &format!("https://{addr}"),
        "",
        &format!(
            "[proxy.upstream_tls]\nca_file = \"{}\"\n",
            ca_path.display()
        ),
    );
    let response = http().get(proxy.url("/resource")).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let event: Value =
        wait_event(&out, "for /resource", |e| e["http"]["path"] == "/resource").await;
    assert_eq!(event["http"]["status"], 502);
    assert_eq!(event["outcome"], "failure");
    assert_eq!(event["error"]["code"], "upstream_tls_failed");
}

#[test]
fn check_config_reads_the_tls_files() {
    let dir = TempDir::new("tls-check");
    let ca = Ca::new();
    let (cert_pem, _, key_pem) = ca.issue();
    let (_, _, other_key) = ca.issue();
    let cert = dir.write("server.pem", &cert_pem);
    let key = dir.write("server.key", &key_pem);
    let wrong_key = dir.write("other.key", &other_key);
    let garbage = dir.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let check = |text: String| {
        let file = dir.write("check.toml", &text);
        run(&["check-config", file.to_str().unwrap()], &[])
    };
    let listener = |cert: &Path, key: &Path| {
        format!(
            "[proxy.tls]\ncertificate = \"{}\"\nkey = \"{}\"\n",
            cert.display(),
            key.display()
        )
    };

    let ok = check(format!(
        "{}[proxy.upstream_tls]\nca_file = \"{}\"\n",
        listener(&cert, &key),
        ca_file.display()
    ));
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    for (text, expected) in [
        (listener(&dir.path("missing.pem"), &key), "missing.pem"),
        (listener(&garbage, &key), "garbage.pem"),
        (listener(&cert, &wrong_key), "does not fit the certificate"),
        (
            format!("[proxy.upstream_tls]\nca_file = \"{}\"\n", key.display()),
            "server.key",
        ),
        (
            "[proxy.upstream_tls]\nsystem_roots = false\n".to_owned(),
            "needs a ca_file",
        ),
        (
            "[proxy]\nheader_timeout = \"0s\"\n".to_owned(),
            "at least 1ms",
        ),
    ] {
        let output = check(text.clone());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains(expected), "{text}: {stderr}");
        assert!(
            !stderr.contains("PRIVATE KEY"),
            "never quotes a key: {stderr}"
        );
    }
}

/// A client that sends part of a body and then stalls is given up after `body_timeout`: it
/// gets `408`, the event says why, and the upstream's request is abandoned.
#[tokio::test]
async fn a_request_body_that_stalls_is_given_up() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("stalled-body");
    let proxy = start_proxy(&dir, &upstream.url(), "body_timeout = \"2s\"", "");
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: proxy\r\nContent-Length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    // The first part reached the upstream: the request is in flight.
    let mut uploaded = upstream.uploaded.clone();
    tokio::time::timeout(WAIT, uploaded.wait_for(|n| *n == 10))
        .await
        .expect("the first part of the body never reached the upstream")
        .unwrap();
    // Then nothing more.
    let answer = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let event = wait_event(&dir.path("audit.jsonl"), "for the stalled body", |e| {
        e["http"]["path"] == "/upload"
    })
    .await;
    assert_eq!(event["http"]["status"], 408, "{event}");
    assert_eq!(event["error"]["code"], "request_timeout", "{event}");
    assert!(
        event["error"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("no part of the request body for 2 s")),
        "{event}"
    );
    // A body that keeps coming is not cut off, however long it takes in all (3 s here).
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: proxy\r\nContent-Length: 6\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    for part in b"abcdef".chunks(1) {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        stream.write_all(part).await.unwrap();
    }
    let answer = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.contains(r#"{"body_len":6}"#),
        "{text}"
    );
}

/// A request body the client breaks (a chunk size that is no number) is the client's
/// failure: `400 malformed_request`, not a `502` that blames the upstream and logs a warning
/// whenever any client likes.
#[tokio::test]
async fn a_malformed_request_body_is_the_clients_failure_not_the_upstreams() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("malformed-body");
    let proxy = start_proxy(&dir, &upstream.url(), "", "");
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: proxy\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        .await
        .unwrap();
    // The first chunk reached the upstream: the request is in flight.
    let mut uploaded = upstream.uploaded.clone();
    tokio::time::timeout(WAIT, uploaded.wait_for(|n| *n == 5))
        .await
        .expect("the first chunk never reached the upstream")
        .unwrap();
    stream.write_all(b"zz\r\n").await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    let event = wait_event(&dir.path("audit.jsonl"), "for the malformed body", |e| {
        e["http"]["path"] == "/upload"
    })
    .await;
    assert_eq!(event["http"]["status"], 400, "{event}");
    assert_eq!(event["error"]["code"], "malformed_request", "{event}");
    assert!(
        event["error"]["description"]
            .as_str()
            .is_some_and(|d| d.contains("chunk size")),
        "{event}"
    );
    let warnings: Vec<String> = proxy
        .logged_so_far()
        .into_iter()
        .filter(|line| line.contains("WARN"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// HTTP/2 clients send each cookie in a `Cookie` field of its own; an HTTP/1.1 upstream
/// reads one field (or joins them with `,`), so the proxy joins them with `; ` as RFC 9113
/// §8.2.3 requires, and the upstream gets every cookie of the audited request.
#[tokio::test]
async fn the_cookie_fields_of_an_http2_request_reach_the_upstream_as_one() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-cookies");
    let proxy = start_proxy(&dir, &upstream.url(), "", "");
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let response = sender
        .send_request(
            http::Request::get(format!("http://{}/echo", proxy.addr))
                .header("cookie", "theme=dark")
                .header("cookie", "session=s-1")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let seen: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        seen["headers"]["cookie"],
        serde_json::json!(["theme=dark; session=s-1"]),
        "{seen}"
    );
}

/// An HTTP/2 field value that starts or ends with a space or tab makes the request malformed
/// (RFC 9113 §8.2.1), and h2 passes it on as it came. An HTTP/1.1 server drops that
/// whitespace (RFC 9112 §5): `authorization: " Bearer t"` was read by the layer as another
/// scheme than `Bearer`, no token inspected, fingerprinted or checked against revocations,
/// while the upstream, behind the HTTP/1.1 hop, read `Bearer t` and served the token's
/// holder. Such a request is refused, and never reaches the upstream.
#[tokio::test]
async fn an_http2_field_value_with_whitespace_at_either_end_is_refused() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-field-whitespace");
    let proxy = start_proxy(&dir, &upstream.url(), "", "");
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for (path, name, value) in [
        ("/leading", "authorization", " Bearer abc.def.ghi"),
        (
            "/trailing",
            "content-type",
            "application/x-www-form-urlencoded\t",
        ),
    ] {
        let response = sender
            .send_request(
                http::Request::get(format!("http://{}{path}", proxy.addr))
                    .header(name, value)
                    .body(http_body_util::Empty::<Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 400, "{name}: {value:?}: {body}");
        assert!(
            body.contains("bad_request"),
            "the upstream was reached: {body}"
        );
        let event = wait_event(
            &dir.path("audit.jsonl"),
            "for the refused request",
            support::at_path(path),
        )
        .await;
        assert_eq!(event["http"]["status"], 400, "{event}");
        assert_eq!(event["error"]["code"], "bad_request", "{event}");
    }
    // Whitespace inside a value is the value's own.
    let response = sender
        .send_request(
            http::Request::get(format!("http://{}/echo", proxy.addr))
                .header("x-note", "two words")
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A WebSocket tunnel through the proxy at `addr`, past its `101` head.
async fn open_websocket_tunnel(addr: std::net::SocketAddr) -> TcpStream {
    let (tunnel, head) = raw_head(
        addr,
        b"GET /ws HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tunnel
}

/// A WebSocket tunnel holds its client connection and an upstream connection for as long as
/// it is open: it counts against `max_connections` until it closes, or tunnels would let one
/// client hold any number of both.
#[tokio::test]
async fn an_open_websocket_tunnel_counts_against_max_connections() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("ws-cap");
    let proxy = start_proxy(&dir, &upstream.url(), "max_connections = 1", "");
    let mut tunnel = open_websocket_tunnel(proxy.addr).await;
    tunnel.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(WAIT, tunnel.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
    // The one connection is the tunnel: another waits for it.
    let waiting = tokio::spawn(http().get(format!("http://{}/echo", proxy.addr)).send());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection was served while the tunnel held the only one"
    );
    drop(tunnel);
    let response = tokio::time::timeout(WAIT, waiting)
        .await
        .expect("served once the tunnel closed")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A tunnel through which nothing passes is closed after `tunnel_idle_timeout`, and its
/// place under `max_connections` goes to the next client: one that vanished without closing
/// would otherwise hold it for good.
#[tokio::test]
async fn an_idle_websocket_tunnel_is_closed_and_gives_back_its_place() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("ws-idle");
    let proxy = start_proxy(
        &dir,
        &upstream.url(),
        "max_connections = 1\ntunnel_idle_timeout = \"1s\"",
        "",
    );
    let mut tunnel = open_websocket_tunnel(proxy.addr).await;
    // Traffic keeps it open past its idle time.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        tunnel.write_all(b"ping").await.unwrap();
        let mut echoed = [0u8; 4];
        tokio::time::timeout(WAIT, tunnel.read_exact(&mut echoed))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&echoed, b"ping");
    }
    // Then it goes quiet: the proxy closes it, and the next client is served.
    let rest = tokio::time::timeout(WAIT, read_until_closed(&mut tunnel))
        .await
        .expect("the idle tunnel is closed");
    assert!(rest.is_empty(), "{rest:?}");
    let response = tokio::time::timeout(
        WAIT,
        http().get(format!("http://{}/echo", proxy.addr)).send(),
    )
    .await
    .expect("served once the idle tunnel closed")
    .unwrap();
    assert_eq!(response.status(), 200);
}

/// A connection to `addr` whose receive buffer is small, so that a response that is not read
/// soon fills what the kernel holds and blocks the proxy's writes.
async fn connect_with_a_small_receive_buffer(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Far more than the socket buffers between the proxy and a client hold.
const LARGE_RESPONSE: usize = 16 << 20;

/// A client that asks for a large response and never reads it is disconnected once the
/// proxy's writes have made no progress for `send_timeout`: its place under
/// `max_connections` goes to the next client, the upstream connection of the cut response
/// is not used again, and the request's event is written (`outcome: unknown`, as for a client
/// that went away).
// Two workers: waiting for the log line blocks one, the upstream runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reads_nothing_is_disconnected_after_send_timeout() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("send-timeout");
    let proxy = start_proxy(
        &dir,
        &upstream.url(),
        "send_timeout = \"1s\"\nmax_connections = 1",
        "",
    );
    let path = format!("/bytes/{LARGE_RESPONSE}");
    let mut stalled = connect_with_a_small_receive_buffer(proxy.addr).await;
    stalled
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: proxy\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    proxy.wait_log("took no part of the response for send_timeout");
    assert!(asked.elapsed() >= std::time::Duration::from_secs(1));
    let event = wait_event(&dir.path("audit.jsonl"), "for the unread response", |e| {
        e["http"]["path"] == path.as_str()
    })
    .await;
    assert_eq!(event["outcome"], "unknown", "{event}");
    // What the kernel held is there, then the connection ends, short of the response.
    let received = read_until_closed(&mut stalled).await;
    assert!(received.len() < LARGE_RESPONSE, "{}", received.len());

    // The one place is free again, and the upstream connection of the cut response, with
    // the rest of it unread, was closed rather than reused.
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

/// A client that reads a large response slowly but steadily is not cut off, however long
/// the whole response takes: `send_timeout` is the time a write may make no progress.
#[tokio::test]
async fn a_client_that_reads_slowly_but_steadily_is_not_disconnected() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("slow-reader");
    // Long enough that a reader kept off a core for a while on a loaded machine (it sleeps
    // a quarter of a second between reads) is still steady by this measure.
    let proxy = start_proxy(&dir, &upstream.url(), "send_timeout = \"2s\"", "");
    // Larger than the socket buffers hold, or the proxy would never have to wait.
    let size = LARGE_RESPONSE;
    let mut reader = connect_with_a_small_receive_buffer(proxy.addr).await;
    reader
        .write_all(
            format!("GET /bytes/{size} HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut received = Vec::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        // 1 MiB each 250 ms: the whole response takes at least twice `send_timeout`.
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let mut part = 0;
        while part < buf.len() {
            match tokio::time::timeout(WAIT, reader.read(&mut buf[part..])).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => part += n,
                Ok(Err(err)) => panic!("the slow reader was cut off: {err}"),
                Err(_) => panic!("the proxy stopped sending"),
            }
        }
        received.extend_from_slice(&buf[..part]);
        if part < buf.len() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&received[..received.len().min(64)]);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let head_end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert_eq!(received.len() - head_end, size, "the whole response");
    assert!(started.elapsed() > std::time::Duration::from_secs(3));
    let event = wait_event(
        &dir.path("audit.jsonl"),
        "for the slowly read response",
        |e| e["http"]["path"] == format!("/bytes/{size}").as_str(),
    )
    .await;
    assert_eq!(event["outcome"], "success", "{event}");
}

/// An HTTP/2 client that opens every flow-control window and then does not read its socket
/// blocks the proxy's writes as an HTTP/1 one does, and is disconnected after `send_timeout`
/// (the event written as for HTTP/1).
// Two workers: waiting for the log line blocks one, the upstream runs on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_that_reads_nothing_is_disconnected_after_send_timeout() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-send-timeout");
    let proxy = start_proxy(&dir, &upstream.url(), "send_timeout = \"1s\"", "");
    let path = format!("/bytes/{LARGE_RESPONSE}");
    // Prior knowledge: the preface, SETTINGS with the largest stream window, the connection
    // window opened as far, then `GET path` (HPACK static entries, literals not indexed).
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    let largest_window = 0x7fff_ffffu32;
    let mut settings = vec![0x00, 0x04];
    settings.extend_from_slice(&largest_window.to_be_bytes());
    request.extend(h2_frame(0x4, 0, 0, &settings));
    request.extend(h2_frame(
        0x8,
        0,
        0,
        &(largest_window - 65_535).to_be_bytes(),
    ));
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 0x01, b'x']);
    request.extend(h2_frame(0x1, 0x5, 1, &block));
    let mut stalled = connect_with_a_small_receive_buffer(proxy.addr).await;
    stalled.write_all(&request).await.unwrap();
    proxy.wait_log("took no part of the response for send_timeout");
    let event = wait_event(
        &dir.path("audit.jsonl"),
        "for the unread HTTP/2 response",
        |e| e["http"]["path"] == path.as_str(),
    )
    .await;
    assert_eq!(event["outcome"], "unknown", "{event}");
    let received = read_until_closed(&mut stalled).await;
    assert!(received.len() < LARGE_RESPONSE, "{}", received.len());
    let response = http().get(proxy.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// An HTTP/2 client that reads its socket (so the proxy's writes never wait) but never opens
/// a stream's flow-control window holds that stream's response: hyper keeps the next part of
/// it until the window opens. Once it has not taken a part for `send_timeout`, the proxy
/// resets the stream: the event is written `outcome: unknown`, the stream gives back its turn
/// among the HTTP/2 requests in flight (`max_connections = 1` here, so the next request on
/// the connection would wait for good), and the upstream connection of the cut response is
/// closed rather than reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_whose_window_stays_shut_is_reset_after_send_timeout() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-window-shut");
    let proxy = start_proxy(
        &dir,
        &upstream.url(),
        "send_timeout = \"1s\"\nmax_connections = 1",
        "",
    );
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let sender_addr = stream.local_addr().unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(1024)
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let path = format!("/bytes/{LARGE_RESPONSE}");
    let asked = std::time::Instant::now();
    let stalled = sender
        .send_request(
            http::Request::get(format!("http://{}{path}", proxy.addr))
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(stalled.status(), 200);

    // The stalled stream's turn comes back: the next request is served.
    let next = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        sender.send_request(
            http::Request::get(format!("http://{}/echo", proxy.addr))
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        ),
    )
    .await
    .expect("the stalled stream kept its turn")
    .unwrap();
    assert_eq!(next.status(), 200);
    next.into_body().collect().await.unwrap();
    assert!(asked.elapsed() >= std::time::Duration::from_secs(1));
    let line = proxy
        .wait_log("HTTP/2 stream reset: the client took no part of its response for send_timeout");
    // The log names the client, as the connection's own lines do.
    let client = sender_addr.to_string();
    assert!(line.contains(&format!("peer={client}")), "{line}");

    let event = wait_event(&dir.path("audit.jsonl"), "for the stalled stream", |e| {
        e["http"]["path"] == path.as_str()
    })
    .await;
    assert_eq!(event["outcome"], "unknown", "{event}");
    // The client has what the window let through, then the reset.
    let cut = tokio::time::timeout(WAIT, stalled.into_body().collect())
        .await
        .expect("the stream was reset");
    assert!(cut.is_err(), "the stream ended as if whole");
    assert_eq!(
        upstream
            .connections
            .load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

/// An HTTP/2 client that reads a large response slowly but steadily, opening the stream's
/// window as it reads, is not cut off: hyper takes a part of the response each time the window
/// opens, well within `send_timeout`, however long the whole response takes.
#[tokio::test]
async fn an_http2_client_that_reads_slowly_but_steadily_is_not_cut_off() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("h2-slow-reader");
    let proxy = start_proxy(&dir, &upstream.url(), "send_timeout = \"1s\"", "");
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(256 * 1024)
        .initial_connection_window_size(256 * 1024)
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let size = 4 << 20;
    let path = format!("/bytes/{size}");
    let response = sender
        .send_request(
            http::Request::get(format!("http://{}{path}", proxy.addr))
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let started = std::time::Instant::now();
    let mut body = response.into_body();
    let mut received = 0;
    let mut since_pause = 0;
    while let Some(frame) = tokio::time::timeout(WAIT, body.frame())
        .await
        .expect("the proxy stopped sending")
    {
        let frame = frame.expect("the slow reader was cut off");
        if let Some(data) = frame.data_ref() {
            received += data.len();
            since_pause += data.len();
        }
        // 256 KiB each 250 ms: the whole response takes several times `send_timeout`.
        if since_pause >= 256 * 1024 {
            since_pause = 0;
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    assert_eq!(received, size);
    assert!(started.elapsed() > std::time::Duration::from_secs(3));
    let event = wait_event(
        &dir.path("audit.jsonl"),
        "for the slowly read response",
        |e| e["http"]["path"] == path.as_str(),
    )
    .await;
    assert_eq!(event["outcome"], "success", "{event}");
}

/// The client side of a WebSocket tunnel is written through the same connection IO: a
/// client that sends through its tunnel but never reads what comes back is disconnected after
/// `send_timeout` (long before `tunnel_idle_timeout`, 5 minutes), and its place goes to the
/// next client.
#[tokio::test]
async fn a_tunnel_client_that_reads_nothing_is_disconnected_after_send_timeout() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("ws-send-timeout");
    let proxy = start_proxy(
        &dir,
        &upstream.url(),
        "max_connections = 1\nsend_timeout = \"1s\"",
        "",
    );
    let tunnel = open_websocket_tunnel(proxy.addr).await;
    let (mut unread, mut writer) = tunnel.into_split();
    // The upstream echoes everything: once the client's buffers are full, the echo waits,
    // and with it everything behind it. Only the end of the connection ends the writes.
    let sending = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        while writer.write_all(&chunk).await.is_ok() {}
    });
    tokio::time::timeout(WAIT, sending)
        .await
        .expect("the proxy kept a tunnel whose client reads nothing open")
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, unread.read_to_end(&mut rest))
        .await
        .expect("the tunnel is closed");
    let response = tokio::time::timeout(
        WAIT,
        http().get(format!("http://{}/echo", proxy.addr)).send(),
    )
    .await
    .expect("served once the tunnel was closed")
    .unwrap();
    assert_eq!(response.status(), 200);
}
