//! An HTTP/2 stream whose client keeps its flow-control window shut, given up after
//! `send_timeout`.
//!
//! [`SendTimeout`](super::send_timeout::SendTimeout) watches the writes to a client's socket.
//! An HTTP/2 client that reads its socket but sends no `WINDOW_UPDATE` for a stream blocks no
//! write: hyper keeps the stream's next part of the response until the window opens, and the
//! response, its upstream connection and its turn among the requests in flight wait with it.
//! Nothing polls the response body meanwhile, so the body cannot time itself out; the
//! stream's task can. hyper spawns each HTTP/2 stream with the connection's executor, here a
//! [`StreamExecutor`], which runs it as a [`WatchedStream`]. The response body reports
//! through a [`StreamWatch`] whether hyper holds a part of it that it could not send yet;
//! once hyper has held one for `send_timeout` without taking another, the stream's task is
//! dropped. h2 then resets the stream (`RST_STREAM` with `CANCEL`), as it does for any
//! stream its server drops, and the response body is dropped with it: the event is written
//! `outcome: unknown`, and the upstream connection, with the rest of the response unread, is
//! closed rather than reused.
//!
//! What the watch costs a response: one atomic store each time hyper takes a part of the
//! body, and a timer only for a stream whose client has made hyper wait.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

tokio::task_local! {
    /// The watch of the HTTP/2 stream whose task is running, for its response body to find.
    static CURRENT_STREAM: Arc<StreamWatch>;
}

/// What an HTTP/2 stream's response body tells the stream's task: how many parts hyper has
/// taken from it, and whether hyper holds the last one unsent (it asks for the next part as
/// soon as it could send the last); and the client's address, for the log line of a stream
/// given up.
#[derive(Debug, Default)]
pub struct StreamWatch {
    /// The parts taken, shifted left by one; the low bit is set while hyper holds the last.
    state: AtomicU64,
    /// The client's address, given with the response (the executor that spawns the stream is
    /// the connections' common one, and does not know it).
    peer: OnceLock<SocketAddr>,
}

impl StreamWatch {
    /// The watch of the stream whose task is running, when it is an HTTP/2 stream the proxy
    /// spawned, told the address of the client `peer` the stream is for.
    pub fn current(peer: SocketAddr) -> Option<Arc<StreamWatch>> {
        CURRENT_STREAM
            .try_with(|watch| {
                let _ = watch.peer.set(peer);
                watch.clone()
            })
            .ok()
    }

    /// The body handed hyper its `taken`th part (`holding`), or is waiting for one or has
    /// ended (not `holding`).
    pub fn record(&self, taken: u64, holding: bool) {
        self.state
            .store((taken << 1) | u64::from(holding), Ordering::Relaxed);
    }

    /// The parts taken, shifted left by one, and whether hyper holds the last (the low bit).
    #[cfg(test)]
    pub fn state(&self) -> u64 {
        self.state.load(Ordering::Relaxed)
    }
}

/// Spawns what hyper runs apart from a connection (each HTTP/2 stream) on tokio, each
/// watched as a [`WatchedStream`].
#[derive(Clone, Debug)]
pub struct StreamExecutor {
    send_timeout: Duration,
}

impl StreamExecutor {
    /// An executor whose streams are given up once hyper held a part of their response for
    /// `send_timeout` without taking another.
    pub fn new(send_timeout: Duration) -> Self {
        StreamExecutor { send_timeout }
    }
}

impl<F> hyper::rt::Executor<F> for StreamExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        tokio::spawn(WatchedStream::new(stream, self.send_timeout));
    }
}

pin_project! {
    /// An HTTP/2 stream's task, dropped (and the stream reset) once its response has waited
    /// for the client's window for `send_timeout` without progress.
    pub struct WatchedStream<F> {
        #[pin]
        stream: F,
        watch: Arc<StreamWatch>,
        send_timeout: Duration,
        // The watch's state when the wait being timed began.
        seen: u64,
        // Armed while hyper holds a part of the response it could not send; made the first
        // time.
        deadline: Option<Pin<Box<Sleep>>>,
    }
}

impl<F> WatchedStream<F> {
    fn new(stream: F, send_timeout: Duration) -> Self {
        WatchedStream {
            stream,
            watch: Arc::new(StreamWatch::default()),
            send_timeout,
            seen: 0,
            deadline: None,
        }
    }
}

impl<F: Future<Output = ()>> Future for WatchedStream<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        // Until the response body has taken its handle, it may be made in this poll.
        let polled = if Arc::strong_count(this.watch) == 1 {
            let watch = this.watch.clone();
            let stream = this.stream;
            CURRENT_STREAM.sync_scope(watch, || stream.poll(cx))
        } else {
            this.stream.poll(cx)
        };
        if polled.is_ready() {
            return Poll::Ready(());
        }
        let state = this.watch.state.load(Ordering::Relaxed);
        if state & 1 == 0 {
            // Waiting for the upstream, or for the service: not the client's doing.
            *this.seen = 0;
            return Poll::Pending;
        }
        if state != *this.seen {
            // A new part is held: the wait starts now.
            *this.seen = state;
            let at = Instant::now() + *this.send_timeout;
            match this.deadline {
                Some(deadline) => deadline.as_mut().reset(at),
                None => *this.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            }
        }
        let Some(deadline) = this.deadline else {
            return Poll::Pending;
        };
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                // Set with the response, which hyper holds a part of: always there by now.
                let peer = this
                    .watch
                    .peer
                    .get()
                    .map(|peer| peer as &dyn std::fmt::Display);
                tracing::info!(
                    peer = %peer.unwrap_or(&"unknown"),
                    send_timeout_secs = this.send_timeout.as_secs_f64(),
                    "HTTP/2 stream reset: the client took no part of its response for send_timeout"
                );
                // Returning drops the stream's task, and with it the response.
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use hyper::rt::Executor as _;

    use super::*;

    /// The client of the streams of these tests.
    const PEER: SocketAddr = SocketAddr::new(
        std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)),
        4711,
    );

    /// A stand-in for a stream's task: its body registers, hands out `parts` parts at the
    /// moments it is told to, then holds the last one (as hyper does for a shut window).
    struct Responder {
        watch: Option<Arc<StreamWatch>>,
        taken: u64,
        progress: tokio::sync::mpsc::UnboundedReceiver<()>,
        dropped: Arc<AtomicBool>,
    }

    impl Drop for Responder {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    impl Future for Responder {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.watch.is_none() {
                self.watch = StreamWatch::current(PEER);
            }
            while let Poll::Ready(Some(())) = self.progress.poll_recv(cx) {
                self.taken += 1;
                let taken = self.taken;
                self.watch.as_ref().unwrap().record(taken, true);
            }
            Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_makes_progress_lives_and_one_that_stops_is_dropped() {
        let timeout = Duration::from_secs(5);
        let (tx, progress) = tokio::sync::mpsc::unbounded_channel();
        let dropped = Arc::new(AtomicBool::new(false));
        StreamExecutor::new(timeout).execute(Responder {
            watch: None,
            taken: 0,
            progress,
            dropped: dropped.clone(),
        });
        tokio::task::yield_now().await;
        // A part taken every 4 s: never 5 s held.
        for _ in 0..4 {
            tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_secs(4)).await;
            assert!(!dropped.load(Ordering::SeqCst));
        }
        // Then none: 5 s after the last part, the task is dropped.
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(!dropped.load(Ordering::SeqCst));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(dropped.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_waiting_for_its_upstream_is_not_timed() {
        struct Waiting(Option<Arc<StreamWatch>>);
        impl Future for Waiting {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
                if self.0.is_none() {
                    self.0 = StreamWatch::current(PEER);
                    // One part taken and sent; the body now waits for the next.
                    self.0.as_ref().unwrap().record(1, false);
                }
                Poll::Pending
            }
        }
        let handle = tokio::spawn(WatchedStream::new(Waiting(None), Duration::from_secs(1)));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!handle.is_finished());
        handle.abort();
    }

    #[tokio::test]
    async fn outside_a_watched_stream_there_is_no_watch() {
        assert!(StreamWatch::current(PEER).is_none());
    }
}
