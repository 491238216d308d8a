//! A WebSocket tunnel: bytes relayed both ways between the client and the upstream until
//! either closes, or nothing crosses it for the tunnel's idle time.
//!
//! A tunnel holds its client connection's place under `max_connections` and an upstream
//! connection. Without an idle limit, a client that vanished without closing (a laptop
//! lid, a NAT mapping dropped) would hold both for good, and a few such clients could use
//! up every place: as nginx's `proxy_read_timeout` does for its tunnels, a tunnel through
//! which nothing passed for `proxy.tunnel_idle_timeout` is closed. Applications that keep
//! their WebSockets open while quiet send pings (WebSocket control frames), which count.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
// Tokio's clock, so that paused tests move it.
use tokio::time::Instant;

/// How long a tunnel may carry nothing before it is closed (`proxy.tunnel_idle_timeout`).
pub const DEFAULT_TUNNEL_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// One side closed (and what it had sent was passed on).
    Closed,
    /// Nothing crossed the tunnel for its idle time.
    Idle,
}

/// Relays bytes between `client` and `upstream` until one side closes, an error, or
/// `idle` without a byte either way.
pub async fn relay<C, U>(client: C, upstream: U, idle: Duration) -> io::Result<Ended>
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let mut client = Watched {
        io: client,
        started,
        last: last.clone(),
    };
    let mut upstream = Watched {
        io: upstream,
        started,
        last: last.clone(),
    };
    let copy = tokio::io::copy_bidirectional(&mut client, &mut upstream);
    tokio::pin!(copy);
    // The watch sleeps until the earliest moment the tunnel could have been idle long
    // enough and looks again then: no timer is reset per read or write. An idle time past
    // what the clock can count is no limit.
    let idle_until = |last: u64| {
        started
            .checked_add(Duration::from_millis(last))
            .and_then(|t| t.checked_add(idle))
    };
    let Some(mut deadline) = idle_until(0) else {
        return copy.await.map(|_| Ended::Closed);
    };
    loop {
        tokio::select! {
            copied = &mut copy => return copied.map(|_| Ended::Closed),
            () = tokio::time::sleep_until(deadline) => {
                match idle_until(last.load(Ordering::Relaxed)) {
                    Some(until) if until <= Instant::now() => return Ok(Ended::Idle),
                    Some(until) => deadline = until,
                    None => return copy.await.map(|_| Ended::Closed),
                }
            }
        }
    }
}

/// One side of the tunnel, noting when bytes last crossed it.
struct Watched<T> {
    io: T,
    started: Instant,
    /// Milliseconds from `started` to the last read or write of either side.
    last: Arc<AtomicU64>,
}

impl<T> Watched<T> {
    fn touch(&self) {
        let since = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(since, Ordering::Relaxed);
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch();
        }
        read
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(written, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_tunnel_that_carries_nothing_is_closed_after_its_idle_time() {
        let (client, mut client_end) = tokio::io::duplex(64);
        let (upstream, _upstream_end) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(client, upstream, Duration::from_secs(10)));
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert!(!relay.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(relay.await.unwrap().unwrap(), Ended::Idle);
        // The client's side of the tunnel is closed with it.
        let mut rest = Vec::new();
        assert_eq!(client_end.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn traffic_either_way_keeps_a_tunnel_open() {
        let (client, mut client_end) = tokio::io::duplex(64);
        let (upstream, mut upstream_end) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(client, upstream, Duration::from_secs(10)));
        let mut byte = [0u8; 1];
        for round in 0..6 {
            tokio::time::sleep(Duration::from_secs(8)).await;
            if round % 2 == 0 {
                client_end.write_all(b"c").await.unwrap();
                upstream_end.read_exact(&mut byte).await.unwrap();
            } else {
                upstream_end.write_all(b"u").await.unwrap();
                client_end.read_exact(&mut byte).await.unwrap();
            }
        }
        // 48 s in all, never 10 s without a byte.
        assert!(!relay.is_finished());
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(relay.await.unwrap().unwrap(), Ended::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_time_past_what_the_clock_counts_is_no_limit() {
        let (client, mut client_end) = tokio::io::duplex(64);
        let (upstream, mut upstream_end) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(client, upstream, Duration::MAX));
        tokio::time::sleep(Duration::from_secs(86_400 * 365)).await;
        client_end.write_all(b"c").await.unwrap();
        let mut byte = [0u8; 1];
        upstream_end.read_exact(&mut byte).await.unwrap();
        assert!(!relay.is_finished());
        drop(client_end);
        drop(upstream_end);
        assert_eq!(relay.await.unwrap().unwrap(), Ended::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_side_that_closes_ends_the_tunnel() {
        let (client, client_end) = tokio::io::duplex(64);
        let (upstream, mut upstream_end) = tokio::io::duplex(64);
        let relay = tokio::spawn(relay(client, upstream, Duration::from_secs(10)));
        drop(client_end);
        let mut rest = Vec::new();
        upstream_end.read_to_end(&mut rest).await.unwrap();
        upstream_end.shutdown().await.unwrap();
        drop(upstream_end);
        assert_eq!(relay.await.unwrap().unwrap(), Ended::Closed);
    }
}
