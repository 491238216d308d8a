use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use http_body::Body;
use pin_project_lite::pin_project;

use super::body::ResponseBody;
use super::pending::PendingEvent;
use crate::context::ResponseContext;
use crate::resource::Challenge;
use crate::scope::ScopeDecision;

pin_project! {
    /// Response future of [`AuditService`](super::AuditService).
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<PendingEvent>,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn new(inner: F, pending: Option<PendingEvent>) -> Self {
        ResponseFuture { inner, pending }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // An inner error drops `pending`: the event is emitted with `outcome: unknown`.
        let response = ready!(this.inner.poll(cx))?;
        let Some(mut pending) = this.pending.take() else {
            return Poll::Ready(Ok(response.map(ResponseBody::passthrough)));
        };
        let (mut parts, body) = response.into_parts();
        let (oauth, tee) = pending.endpoint_response(&parts.headers).unzip();
        pending.respond(ResponseContext {
            status: Some(parts.status),
            challenge: Challenge::from_headers(&parts.headers),
            // The decision was addressed to us; the client gets the response as produced.
            scopes: parts.extensions.remove::<ScopeDecision>(),
            oauth,
        });
        let body = ResponseBody::new(body, pending, tee);
        Poll::Ready(Ok(Response::from_parts(parts, body)))
    }
}
