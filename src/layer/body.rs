use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::pending::PendingEvent;
use super::tee::Tee;

pin_project! {
    /// The request body handed to the inner service: the original body, frame for frame.
    ///
    /// On OAuth endpoints it copies at most a configured number of bytes as the handler
    /// reads, for the audit record; it never reads ahead of the handler.
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        tee: Option<Tee>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, tee: Option<Tee>) -> Self {
        RequestBody { inner, tee }
    }

    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for RequestBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("inner", &self.inner)
            .field("teed", &self.tee.is_some())
            .finish()
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(tee) = this.tee.as_mut() {
            match &frame {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        tee.observe(data.chunk());
                    }
                    // Readers may stop at the last frame without polling for the end.
                    if this.inner.is_end_stream() {
                        tee.finish(true);
                        *this.tee = None;
                    }
                }
                None => {
                    tee.finish(true);
                    *this.tee = None;
                }
                Some(Err(_)) => {
                    tee.finish(false);
                    *this.tee = None;
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// The response body handed back to the client: the inner body, frame for frame.
    ///
    /// The audit event is emitted when it ends, or with `outcome: unknown` when it is
    /// dropped before its end (the client went away).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        pending: Option<PendingEvent>,
        tee: Option<Tee>,
    }
}

impl<B> ResponseBody<B> {
    /// A body of a request that is not audited.
    pub(crate) fn passthrough(inner: B) -> Self {
        ResponseBody {
            inner,
            pending: None,
            tee: None,
        }
    }

    /// The wrapped body.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Body> ResponseBody<B> {
    pub(crate) fn new(inner: B, pending: PendingEvent, tee: Option<Tee>) -> Self {
        let mut body = ResponseBody {
            inner,
            pending: Some(pending),
            tee,
        };
        if body.inner.is_end_stream() {
            // Servers may never poll an empty body: the response is complete now.
            finish(&mut body.pending, &mut body.tee);
        }
        body
    }
}

impl<B: std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .finish()
    }
}

fn finish(pending: &mut Option<PendingEvent>, tee: &mut Option<Tee>) {
    if let Some(pending) = pending.take() {
        let captured = tee.take().map(|mut tee| tee.finish(true));
        pending.complete(captured);
    }
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(data)) => {
                if let (Some(tee), Some(data)) = (this.tee.as_mut(), data.data_ref()) {
                    tee.observe(data.chunk());
                }
            }
            // A body error leaves the response incomplete: dropping the pending event
            // records `outcome: unknown`.
            Some(Err(_)) => drop(this.pending.take()),
            None => {}
        }
        if frame.is_none() || this.inner.is_end_stream() {
            finish(this.pending, this.tee);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
