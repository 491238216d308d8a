//! A client connection that gives up when its client stops taking what is sent to it.
//!
//! A response streams to its client as fast as the client reads it. A client that asks for
//! a response and then never reads it would hold its connection, its place under
//! `max_connections` and the upstream connection of the response for good: once the socket's
//! buffers are full, every write waits. [`SendTimeout`] fails a write (or flush) with
//! [`io::ErrorKind::TimedOut`] when it has made no progress for the configured time, as
//! nginx's `send_timeout` does (the time between two successive writes, not the whole
//! response's): hyper then closes the connection, and drops the responses in flight (their
//! events are written with `outcome: unknown`, as for a client that went away).
//!
//! It wraps the connection's IO, so it also bounds writes to an HTTP/2 client that does not
//! read its socket, and to the client of a WebSocket tunnel (hyper hands the wrapped IO to
//! the tunnel). An HTTP/2 client that reads its socket but keeps one stream's window shut
//! makes no write wait: that stream is timed by [`stalled_stream`](super::stalled_stream).

use std::error::Error as StdError;
use std::fmt;
use std::future::Future as _;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The error inside the [`io::Error`] a write fails with when its client took nothing for
/// too long.
#[derive(Debug)]
pub struct SendTimedOut(pub Duration);

/// How [`SendTimedOut`]'s message begins.
const MESSAGE: &str = "the client took no part of the response for";

impl fmt::Display for SendTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{MESSAGE} {:?}", self.0)
    }
}

impl StdError for SendTimedOut {}

/// `io`, whose writes fail once one has waited `timeout` without progress.
///
/// No timer is armed while writes complete at once. The first write that has to wait arms
/// it (one allocation per connection, the first time), and every write or flush that makes
/// progress disarms it; later waits reset the same timer.
pub struct SendTimeout<I> {
    io: I,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    /// Whether `deadline` counts for the wait in progress.
    armed: bool,
}

impl<I> SendTimeout<I> {
    /// `io`, given up on after a write waited `timeout` without progress.
    pub fn new(io: I, timeout: Duration) -> Self {
        SendTimeout {
            io,
            timeout,
            deadline: None,
            armed: false,
        }
    }

    /// What became of a write: progress disarms the timer, a wait arms it (or, once it has
    /// run out, becomes the error).
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => {
                if !self.armed {
                    self.armed = true;
                    let at = Instant::now() + self.timeout;
                    match &mut self.deadline {
                        Some(deadline) => deadline.as_mut().reset(at),
                        None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
                    }
                }
                match self.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        SendTimedOut(self.timeout),
                    ))),
                    _ => Poll::Pending,
                }
            }
            ready => {
                self.armed = false;
                ready
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, data);
        self.watch(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, data);
        self.watch(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, flushed)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TLS connection's close_notify is a write too.
        let shut = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, shut)
    }
}

/// Whether `err`, or an error it wraps, is a write given up by [`SendTimeout`].
pub fn is_send_timeout(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        // An `io::Error` gives its inner error's source, not the inner error; h2 keeps only
        // an IO error's kind and message, and gives no source.
        let inner = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref());
        if err.is::<SendTimedOut>()
            || inner.is_some_and(|inner| inner.is::<SendTimedOut>())
            || err.to_string().starts_with(MESSAGE)
        {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Writes `chunk` until a write has to wait, and returns how much went in.
    async fn fill<W: AsyncWrite + Unpin>(io: &mut W, chunk: &[u8]) -> usize {
        let mut total = 0;
        loop {
            let polled = poll_fn(|cx| {
                Poll::Ready(match Pin::new(&mut *io).poll_write(cx, chunk) {
                    Poll::Ready(result) => Some(result.unwrap()),
                    Poll::Pending => None,
                })
            })
            .await;
            match polled {
                Some(n) => total += n,
                None => return total,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_waits_too_long_fails_and_one_that_progresses_does_not() {
        let timeout = Duration::from_secs(5);
        // A pipe with a small buffer: what is not read, blocks the writer.
        let (writer, mut reader) = tokio::io::duplex(1024);
        let mut io = SendTimeout::new(writer, timeout);
        let chunk = [7u8; 256];
        assert_eq!(fill(&mut io, &chunk).await, 1024);
        let started = Instant::now();
        // The reader takes a little every 4 s: each write waits less than the timeout.
        for _ in 0..3 {
            let write = io.write_all(&chunk);
            let read = async {
                tokio::time::sleep(Duration::from_secs(4)).await;
                let mut buf = [0u8; 256];
                reader.read_exact(&mut buf).await.unwrap();
            };
            let (written, ()) = tokio::join!(write, read);
            written.unwrap();
        }
        assert_eq!(started.elapsed(), Duration::from_secs(12));
        // Then the reader stops: the next wait gives up after the timeout.
        let err = io.write_all(&chunk).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(is_send_timeout(&err), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(17));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_that_complete_at_once_arm_no_timer() {
        let (writer, mut reader) = tokio::io::duplex(1 << 20);
        let mut io = SendTimeout::new(writer, Duration::from_secs(1));
        for _ in 0..100 {
            io.write_all(b"abc").await.unwrap();
            io.flush().await.unwrap();
        }
        assert!(io.deadline.is_none());
        drop(io);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len(), 300);
    }
}
