//! A request body that gives up when the client stops sending it.
//!
//! Once its head has arrived, a request is forwarded and holds an upstream connection for as
//! long as its body takes. A client that sends a body and then stalls would hold it until the
//! upstream gives up, however long that is: [`TimedBody`] ends the body with a
//! [`BodyTimeout`] error when no part of it arrived for the configured time (as nginx's
//! `client_body_timeout`: the time between two reads, not the whole body's). A body that
//! cannot be read ends with a [`ClientBodyError`], so that the request's failure is the
//! client's and not taken for the upstream's.
//!
//! It is also where the request's trailers stop: fields sent after a chunked body
//! (`Trailer: x-http-method-override`) would reach the upstream past every filter the proxy
//! applies to the head (forwarding headers, overrides). Like nginx, the proxy forwards none.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a [`TimedBody`] ends with when its client sent nothing for too long.
#[derive(Debug)]
pub struct BodyTimeout(pub Duration);

impl fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the client sent no part of the request body for {:?}",
            self.0
        )
    }
}

impl StdError for BodyTimeout {}

/// The error a [`TimedBody`] ends with when its client's body could not be read (a chunk
/// size that is no number, a connection closed before the body's end): the client's
/// failure, which the upstream only sees as an aborted request.
#[derive(Debug)]
pub struct ClientBodyError(Box<dyn StdError + Send + Sync>);

impl fmt::Display for ClientBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the client's request body could not be read")
    }
}

impl StdError for ClientBodyError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.0.as_ref())
    }
}

/// `inner`, ended with [`BodyTimeout`] when no frame of it arrives for `timeout`. The timer
/// is made only when the body first has to wait (one allocation then, for a body that
/// trickles): a request without a body, or whose body is already there, costs nothing.
pub struct TimedBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<B> TimedBody<B> {
    /// `inner`, given up after `timeout` without a frame.
    pub fn new(inner: B, timeout: Duration) -> Self {
        TimedBody {
            inner,
            timeout,
            deadline: None,
        }
    }
}

impl<B> Body for TimedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn StdError + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            // Trailers are the last frame: the body ends without them.
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => Poll::Ready(None),
            Poll::Ready(Some(Ok(frame))) => {
                // The next wait starts now, when there is one.
                if let Some(deadline) = &mut this.deadline {
                    deadline.as_mut().reset(Instant::now() + this.timeout);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => {
                Poll::Ready(Some(Err(Box::new(ClientBodyError(err.into())))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout(timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `err`, or an error it wraps, is a [`BodyTimeout`].
pub fn is_body_timeout(err: &(dyn StdError + 'static)) -> bool {
    wraps::<BodyTimeout>(err)
}

/// Whether `err`, or an error it wraps, is a [`ClientBodyError`].
pub fn is_client_body_error(err: &(dyn StdError + 'static)) -> bool {
    wraps::<ClientBodyError>(err)
}

fn wraps<E: StdError + 'static>(err: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<E>() {
            return true;
        }
        current = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use http_body_util::channel::Channel;
    use http_body_util::{BodyExt, Full};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_ends_with_a_timeout_and_a_flowing_one_does_not() {
        let (mut tx, body) = Channel::<Bytes>::new(4);
        let mut body = std::pin::pin!(TimedBody::new(body, Duration::from_secs(5)));
        // A part every 4 s, three times, then nothing (the sender kept open).
        let sender = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                tx.send_data(Bytes::from_static(b"x")).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(tx);
        });
        let started = Instant::now();
        // Each part comes within 5 s of the last, each starts the wait again.
        for _ in 0..3 {
            let frame = poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
            assert!(frame.unwrap().unwrap().is_data());
        }
        assert_eq!(started.elapsed(), Duration::from_secs(12));
        // Then 5 s after the last part, the body ends with the error.
        let end = poll_fn(|cx| body.as_mut().poll_frame(cx)).await;
        let err = end.unwrap().unwrap_err();
        assert!(is_body_timeout(err.as_ref()), "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(17));
        sender.abort();
    }

    #[tokio::test]
    async fn the_request_trailers_are_not_passed_on() {
        let (mut tx, body) = Channel::<Bytes>::new(4);
        tx.send_data(Bytes::from_static(b"abc")).await.unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-http-method-override", "DELETE".parse().unwrap());
        tx.send_trailers(trailers).await.unwrap();
        drop(tx);
        let collected = TimedBody::new(body, Duration::from_secs(5))
            .collect()
            .await
            .unwrap();
        assert!(collected.trailers().is_none());
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"abc"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_already_there_is_passed_on_whole() {
        let body = TimedBody::new(
            Full::new(Bytes::from_static(b"abc")),
            Duration::from_secs(1),
        );
        assert_eq!(body.size_hint().exact(), Some(3));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, Bytes::from_static(b"abc"));
    }
}
