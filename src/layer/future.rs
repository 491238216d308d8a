use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::ResponseBody;
use super::pending::PendingEvent;
use crate::resource::AuditedToken;
use crate::token::InspectedToken;

/// The header a response carries the request id in.
const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// An opaque token's inspection, completed by its resolver.
pub(crate) type InspectFuture = Pin<Box<dyn Future<Output = Arc<InspectedToken>> + Send + 'static>>;

pin_project! {
    /// Response future of [`AuditService`](super::AuditService).
    pub struct ResponseFuture<S, B, F> {
        #[pin]
        state: State<S, B, F>,
        pending: Option<PendingEvent>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, F> {
        /// An opaque token's claims are being resolved; the route runs afterwards. Boxed:
        /// inline, the waiting request would make every request's future larger to move,
        /// under a layer that never resolves too.
        Resolving { waiting: Box<Waiting<S, B>> },
        /// The route is running.
        Called { #[pin] future: F },
    }
}

/// A request waiting for its opaque token's resolution.
struct Waiting<S, B> {
    resolve: InspectFuture,
    service: Option<S>,
    request: Option<Request<B>>,
}

impl<S, B, F> ResponseFuture<S, B, F> {
    pub(crate) fn called(future: F, pending: Option<PendingEvent>) -> Self {
        ResponseFuture {
            state: State::Called { future },
            pending,
        }
    }

    pub(crate) fn resolving(
        resolve: InspectFuture,
        service: S,
        request: Request<B>,
        pending: PendingEvent,
    ) -> Self {
        ResponseFuture {
            state: State::Resolving {
                waiting: Box::new(Waiting {
                    resolve,
                    service: Some(service),
                    request: Some(request),
                }),
            },
            pending: Some(pending),
        }
    }
}

impl<S, B, F, ResBody, E> Future for ResponseFuture<S, B, F>
where
    S: Service<Request<B>, Future = F>,
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Resolving { waiting } => {
                    let token = ready!(waiting.resolve.as_mut().poll(cx));
                    let (Some(mut service), Some(mut request)) =
                        (waiting.service.take(), waiting.request.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    request.extensions_mut().insert(AuditedToken(token.clone()));
                    // The proof is recorded as used now that the token's binding is known:
                    // the handler (and enforcing `RequiredScopes`) sees a replay as one.
                    if let Some(presentation) =
                        this.pending.as_mut().and_then(|p| p.resolved(token))
                    {
                        request.extensions_mut().insert(presentation);
                    }
                    let future = service.call(request);
                    this.state.set(State::Called { future });
                }
                StateProj::Called { future } => {
                    // An inner error drops `pending`: the event is emitted with
                    // `outcome: unknown`.
                    let response = ready!(future.poll(cx))?;
                    let Some(mut pending) = this.pending.take() else {
                        return Poll::Ready(Ok(response.map(ResponseBody::passthrough)));
                    };
                    let (mut parts, body) = response.into_parts();
                    // One lookup for both the check and the insertion, only when the layer
                    // echoes the id; a response at the header map's size limit is left as
                    // the handler made it.
                    if pending.echoes_request_id() {
                        if let Ok(http::header::Entry::Vacant(vacant)) =
                            parts.headers.try_entry(REQUEST_ID)
                        {
                            if let Some(id) = pending.request_id_header() {
                                let _ = vacant.try_insert(id);
                            }
                        }
                    }
                    // The decision was addressed to us; the client gets the response as the
                    // handler produced it.
                    let tee = pending.respond(&mut parts);
                    let body = ResponseBody::new(body, pending, tee);
                    return Poll::Ready(Ok(Response::from_parts(parts, body)));
                }
            }
        }
    }
}
