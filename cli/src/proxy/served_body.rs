//! The body of every response the proxy serves, as hyper sends it to the client.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

use super::connection::InFlight;
use super::stalled_stream::StreamWatch;

/// A response body (none for an answer the proxy makes before the audit layer) with what
/// stays held until the client is done with it: the request's place among those in flight on
/// its connection, an HTTP/2 request's turn among the requests in flight, and an HTTP/2
/// stream's [`StreamWatch`], told whether hyper holds a part of the body it could not send.
pub struct ServedBody<B> {
    inner: Option<B>,
    watch: Option<Arc<StreamWatch>>,
    /// Parts hyper has taken, for the watch.
    taken: u64,
    /// Whether hyper holds the last part taken, as the watch was last told.
    holding: bool,
    _in_flight: InFlight,
    _turn: Option<OwnedSemaphorePermit>,
}

impl<B> ServedBody<B> {
    /// `inner`, holding `in_flight` and `turn` until it is dropped, and telling `watch`.
    pub fn new(
        inner: B,
        in_flight: InFlight,
        turn: Option<OwnedSemaphorePermit>,
        watch: Option<Arc<StreamWatch>>,
    ) -> Self {
        ServedBody {
            inner: Some(inner),
            watch,
            taken: 0,
            holding: false,
            _in_flight: in_flight,
            _turn: turn,
        }
    }

    /// No body, as an answer the proxy makes itself has.
    pub fn empty(in_flight: InFlight) -> Self {
        ServedBody {
            inner: None,
            watch: None,
            taken: 0,
            holding: false,
            _in_flight: in_flight,
            _turn: None,
        }
    }
}

impl<B: Body + Unpin> Body for ServedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        if let Some(watch) = &this.watch {
            // hyper asks for a part only once it could send the last; it holds a data part
            // it was given until the client's window lets it go.
            let holding = matches!(&polled, Poll::Ready(Some(Ok(frame))) if frame.is_data());
            if holding {
                this.taken += 1;
                watch.record(this.taken, true);
            } else if this.holding {
                watch.record(this.taken, false);
            }
            this.holding = holding;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
