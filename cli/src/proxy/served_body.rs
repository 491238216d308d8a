//! The body of every response the proxy serves, as hyper sends it to the client.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
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
    /// On an HTTP/2 stream, what is left of a data part larger than [`MAX_PART`], handed to
    /// hyper a part at a time.
    rest: Bytes,
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
            rest: Bytes::new(),
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
            rest: Bytes::new(),
            taken: 0,
            holding: false,
            _in_flight: in_flight,
            _turn: None,
        }
    }
}

/// The most of a data part an HTTP/2 stream hands hyper at once. The stream watch sees
/// progress each time hyper takes a part, and hyper takes the next only once h2 has sent the
/// last: an upstream read can be hundreds of KiB, which a client reading slowly but steadily
/// (a few KiB a second) would take longer than `send_timeout` to receive whole. At 16 KiB
/// (HTTP/2's default frame size), progress shows at every frame.
const MAX_PART: usize = 16 * 1024;

impl<B: Body<Data = Bytes> + Unpin> Body for ServedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let mut polled = if this.rest.is_empty() {
            Pin::new(inner).poll_frame(cx)
        } else {
            Poll::Ready(Some(Ok(Frame::data(Bytes::new()))))
        };
        if let Some(watch) = &this.watch {
            // A large part goes to hyper a slice at a time (no copy: the slices share it).
            if let Poll::Ready(Some(Ok(frame))) = &mut polled {
                if let Some(data) = frame.data_mut() {
                    if data.is_empty() {
                        *data = std::mem::take(&mut this.rest);
                    }
                    if data.len() > MAX_PART {
                        this.rest = data.split_off(MAX_PART);
                    }
                }
            }
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
        self.rest.is_empty() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        if self.rest.is_empty() {
            return inner;
        }
        let rest = self.rest.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower().saturating_add(rest));
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Full};

    use super::super::connection::Activity;
    use super::*;

    fn served(size: usize, watch: Option<Arc<StreamWatch>>) -> ServedBody<Full<Bytes>> {
        let activity = Arc::new(Activity::default());
        ServedBody::new(
            Full::new(Bytes::from(vec![7u8; size])),
            activity.begin(),
            None,
            watch,
        )
    }

    /// On an HTTP/2 stream, a large upstream part reaches hyper 16 KiB at a time, each
    /// counted by the stream watch as progress; the body ends only after the last slice.
    #[tokio::test]
    async fn an_http2_stream_hands_hyper_a_large_part_a_frame_at_a_time() {
        let size = 100 * 1024 + 5;
        let watch = Arc::new(StreamWatch::default());
        let mut body = served(size, Some(watch.clone()));
        assert_eq!(body.size_hint().exact(), Some(size as u64));
        let mut parts = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.unwrap().into_data().unwrap();
            parts.push(data.len());
            assert_eq!(
                body.size_hint().exact(),
                Some((size - parts.iter().sum::<usize>()) as u64)
            );
            assert_eq!(body.is_end_stream(), parts.iter().sum::<usize>() == size);
        }
        assert_eq!(parts.len(), 7, "{parts:?}");
        assert!(parts.iter().all(|&len| len <= MAX_PART), "{parts:?}");
        assert_eq!(parts.iter().sum::<usize>(), size);
        // Seven parts taken, and hyper told to be holding none once the body ended.
        assert_eq!(watch.state(), 7 << 1);
    }

    /// HTTP/1 (no watch): parts go to hyper as the upstream gave them.
    #[tokio::test]
    async fn without_a_stream_watch_parts_are_passed_on_whole() {
        let mut body = served(100 * 1024, None);
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap().len(), 100 * 1024);
        assert!(body.frame().await.is_none());
    }
}
