//! The proxy on one worker thread (`TOKIO_WORKER_THREADS=1`, or one CPU available), where it
//! runs on Tokio's current-thread scheduler: requests at once, a response streaming while
//! others are served, a WebSocket tunnel, and a graceful shutdown that writes every event.

mod support;

use futures_util::StreamExt;
use support::upstream::Upstream;
use support::{
    at_path, http, proxy_flushing_at_shutdown, raw_head, read_events, wait_event, TempDir, WAIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn one_worker_serves_requests_at_once_tunnels_and_shuts_down_gracefully() {
    let upstream = Upstream::start().await;
    let dir = TempDir::new("one-worker");
    let out = dir.path("audit.jsonl");
    // Events reach the file only at shutdown: the graceful stop has to write them.
    let proxy = proxy_flushing_at_shutdown(
        &upstream.url(),
        &dir,
        &out,
        &[("TOKIO_WORKER_THREADS", "1")],
    );
    let ready = proxy.wait_log("proxy ready");
    assert!(
        ready.contains("workers=1") && ready.contains("current-thread"),
        "{ready}"
    );

    // A response held by the upstream mid-stream does not hold up the one thread.
    let held = http().get(proxy.url("/stream")).send().await.unwrap();
    let mut held = held.bytes_stream();
    assert_eq!(&held.next().await.unwrap().unwrap()[..], b"first\n");
    let requests = (0..20).map(|i| {
        let url = proxy.url(&format!("/echo?n={i}"));
        async move { http().get(url).send().await.unwrap().status() }
    });
    for status in futures_util::future::join_all(requests).await {
        assert_eq!(status, 200);
    }

    // A WebSocket tunnel relays both ways on the same thread.
    let (mut socket, head) = raw_head(
        proxy.addr,
        b"GET /ws HTTP/1.1\r\nHost: proxy\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    socket.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    tokio::time::timeout(WAIT, socket.read_exact(&mut echoed))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echoed, b"ping");
    drop(socket);

    // SIGTERM with the stream still in flight: it completes, then every event is written.
    proxy.send_signal("TERM");
    let mut proxy = tokio::task::spawn_blocking(move || {
        proxy.wait_log("shutting down");
        proxy
    })
    .await
    .unwrap();
    upstream.release.add_permits(2);
    let mut rest = Vec::new();
    while let Some(chunk) = held.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"second\nthird\n");
    let status = tokio::task::spawn_blocking(move || proxy.wait_exit())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let events = read_events(&out);
    let echoes = events
        .iter()
        .filter(|e| e["http"]["path"] == "/echo")
        .count();
    assert_eq!(echoes, 20, "{events:?}");
    let streamed = wait_event(&out, "for /stream", at_path("/stream")).await;
    assert_eq!(streamed["outcome"], "success");
    let tunnel = wait_event(&out, "for /ws", at_path("/ws")).await;
    assert_eq!(tunnel["http"]["status"], 101);
}

#[test]
fn a_worker_count_that_is_not_a_positive_number_is_a_configuration_error() {
    for bad in ["0", "many"] {
        let output = support::run(
            &[
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "http://127.0.0.1:9",
            ],
            &[("TOKIO_WORKER_THREADS", bad)],
        );
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("TOKIO_WORKER_THREADS")
                && stderr.contains("not a positive number of worker threads"),
            "{stderr}"
        );
    }
}
