//! A plain hyper service (no Axum) behind the audit layer.
//!
//! The layer wraps any `tower::Service<http::Request<B>>`. The inner service receives
//! `Request<RequestBody<B>>`: the same body, wrapped so the layer can copy what an OAuth
//! endpoint's body says as it streams past (for other paths it passes through untouched).
//! Without Axum's `ConnectInfo`, insert a [`PeerAddr`] extension per connection so that
//! `source.ip` is the socket peer.
//!
//! ```text
//! cargo run --example plain_hyper
//! ```
//!
//! It serves one connection on 127.0.0.1, sends it one request with a hyper client, and
//! prints the audit event as a JSON line.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use oauth_audit::writer::{Auditor, JsonLines};
use oauth_audit::{AuditLayer, PeerAddr, RequestBody};
use tower::{service_fn, ServiceBuilder};

/// The application: note the body type the layer hands it.
async fn handle(
    request: Request<RequestBody<Incoming>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The body reads as any other: here, collected whole.
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Ok(Response::new(Full::new(Bytes::from(format!(
        "read {} bytes\n",
        body.len()
    )))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let auditor = Auditor::builder()
        .service_name("plain-hyper")
        .writer(JsonLines::stdout())
        .build()?;
    let layer = AuditLayer::builder(auditor.clone()).build()?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let (stream, peer) = listener.accept().await?;
        // One service per connection, knowing its peer.
        let service = ServiceBuilder::new()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(PeerAddr(peer));
                request
            })
            .layer(layer)
            .service(service_fn(handle));
        hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    });

    // A client request, as any caller would send one.
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender
        .send_request(
            Request::post(format!("http://{addr}/orders"))
                .header("user-agent", "plain-hyper-example")
                .body(Full::new(Bytes::from_static(b"{\"item\":42}")))?,
        )
        .await?;
    let status = response.status();
    let text = response.into_body().collect().await?.to_bytes();
    eprintln!("{status} {}", String::from_utf8_lossy(&text).trim_end());
    drop(sender);
    server.await?.map_err(|e| e.to_string())?;

    // Every event written before the process exits.
    auditor.shutdown().await;
    Ok(())
}
