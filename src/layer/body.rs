use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use super::pending::PendingEvent;
use crate::tee::Tee;
use crate::writer::Overflow;

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
                        tee.observe_buf(data);
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
    ///
    /// When a writer with an [`OverflowPolicy::Block`](crate::writer::OverflowPolicy::Block)
    /// has no room for the event, the body holds back its last frame and its end until
    /// there is room or the policy's timeout has passed. (Holding only the end would not
    /// do: with a known `Content-Length`, the client has the whole response with its last
    /// byte.)
    pub struct ResponseBody<B: Body> {
        #[pin]
        inner: B,
        pending: Option<PendingEvent>,
        tee: Option<Tee>,
        backpressure: Option<Backpressure>,
        held: Option<Frame<B::Data>>,
    }
}

impl<B: Body> ResponseBody<B> {
    /// A body of a request that is not audited.
    pub(crate) fn passthrough(inner: B) -> Self {
        ResponseBody {
            inner,
            pending: None,
            tee: None,
            backpressure: None,
            held: None,
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
            backpressure: None,
            held: None,
        };
        if body.inner.is_end_stream() {
            // Servers may never poll an empty body: the response is complete now. Should
            // the event have to wait for room, the body stops claiming its end, so it is
            // polled and can hold the response back.
            body.backpressure = finish(&mut body.pending, &mut body.tee).map(Backpressure::new);
        }
        body
    }
}

impl<B: Body + std::fmt::Debug> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("inner", &self.inner)
            .finish()
    }
}

fn finish(pending: &mut Option<PendingEvent>, tee: &mut Option<Tee>) -> Option<Overflow> {
    let pending = pending.take()?;
    let captured = tee.take().and_then(|mut tee| tee.finish(true));
    pending.complete(captured)
}

/// What holds back a response's end while its event waits for room in a writer's queue.
///
/// Only built when a queue is full, so the box costs nothing in the common case. Dropped
/// before the wait is over (the connection closed), the wait goes on in a task of its own.
struct Backpressure {
    wait: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
}

impl Backpressure {
    fn new(overflow: Overflow) -> Self {
        Backpressure {
            wait: Some(Box::pin(overflow.wait())),
        }
    }

    /// Ready once the event is queued or counted as dropped.
    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(wait) = self.wait.as_mut() {
            ready!(wait.as_mut().poll(cx));
            self.wait = None;
        }
        Poll::Ready(())
    }
}

impl Drop for Backpressure {
    fn drop(&mut self) {
        if let Some(wait) = self.wait.take() {
            // Outside a runtime the wait is dropped, and the event counted as dropped.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(wait);
            }
        }
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
        if let Some(backpressure) = this.backpressure.as_mut() {
            // The inner body has ended; its last frame, if any, and its end are held back.
            ready!(backpressure.poll_wait(cx));
            *this.backpressure = None;
            return Poll::Ready(this.held.take().map(Ok));
        }
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        match &frame {
            Some(Ok(data)) => {
                if let (Some(tee), Some(data)) = (this.tee.as_mut(), data.data_ref()) {
                    tee.observe_buf(data);
                }
            }
            // A body error leaves the response incomplete: dropping the pending event
            // records `outcome: unknown`.
            Some(Err(_)) => drop(this.pending.take()),
            None => {}
        }
        if frame.is_none() || this.inner.is_end_stream() {
            if let Some(overflow) = finish(this.pending, this.tee) {
                let mut backpressure = Backpressure::new(overflow);
                if backpressure.poll_wait(cx).is_pending() {
                    match frame {
                        Some(Ok(frame)) => *this.held = Some(frame),
                        // Not reached: an error dropped the pending event above.
                        Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                        None => {}
                    }
                    *this.backpressure = Some(backpressure);
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.backpressure.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        match self.held.as_ref().and_then(Frame::data_ref) {
            Some(data) => SizeHint::with_exact(data.remaining() as u64),
            None => self.inner.size_hint(),
        }
    }
}
