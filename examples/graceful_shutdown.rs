//! Serving with the audit layer and shutting down without losing an event: on SIGTERM (what
//! Kubernetes and systemd send) or Ctrl-C, stop accepting, let requests in flight finish,
//! then `Auditor::shutdown` writes and flushes every event accepted so far.
//!
//! ```text
//! cargo run --example graceful_shutdown -- [--out FILE] [--listen ADDR]
//! ```
//!
//! The one-line form (`AuditLayer::new(Auditor::stdout())`) hides the auditor; keep it, as
//! here, when the process must flush before it exits.

use std::net::SocketAddr;

use axum::{routing::get, Router};
use oauth_audit::writer::{Auditor, JsonLines};
use oauth_audit::AuditLayer;

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut out = std::path::PathBuf::from("audit-graceful.jsonl");
    let mut listen: SocketAddr = "127.0.0.1:0".parse()?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = args.next().ok_or("--out needs a file")?.into(),
            "--listen" => listen = args.next().ok_or("--listen needs an address")?.parse()?,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }

    let auditor = Auditor::builder()
        .service_name("graceful")
        .writer(JsonLines::file(&out).await?)
        .build()?;
    let app = Router::new()
        .route("/orders", get(|| async { "[]" }))
        .layer(AuditLayer::new(auditor.clone()));

    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;

    // Every request has finished: write and flush its events, then exit.
    auditor.shutdown().await;
    println!("events flushed to {}", out.display());
    Ok(())
}
