//! The body of every response the proxy serves, as hyper sends it to the client.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

use super::connection::InFlight;

/// A response body (none for an answer the proxy makes before the audit layer) with what
/// stays held until the client is done with it: the request's place among those in flight on
/// its connection, and an HTTP/2 request's turn among the requests in flight.
pub struct ServedBody<B> {
    inner: Option<B>,
    _in_flight: InFlight,
    _turn: Option<OwnedSemaphorePermit>,
}

impl<B> ServedBody<B> {
    /// `inner`, holding `in_flight` and `turn` until it is dropped.
    pub fn new(inner: B, in_flight: InFlight, turn: Option<OwnedSemaphorePermit>) -> Self {
        ServedBody {
            inner: Some(inner),
            _in_flight: in_flight,
            _turn: turn,
        }
    }

    /// No body, as an answer the proxy makes itself has.
    pub fn empty(in_flight: InFlight) -> Self {
        ServedBody {
            inner: None,
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
        match &mut self.inner {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
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
