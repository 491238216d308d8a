use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http::Response;
use pin_project_lite::pin_project;

use super::ScopeDecision;

pin_project! {
    /// Response future of [`RequiredScopesService`](super::RequiredScopesService).
    pub struct RequiredScopesFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F, decision: Option<ScopeDecision> },
        Refused { response: Option<Response<B>> },
    }
}

impl<F, B> RequiredScopesFuture<F, B> {
    pub(crate) fn inner(future: F, decision: ScopeDecision) -> Self {
        RequiredScopesFuture {
            kind: Kind::Inner {
                future,
                decision: Some(decision),
            },
        }
    }

    pub(crate) fn refused(response: Response<B>) -> Self {
        RequiredScopesFuture {
            kind: Kind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for RequiredScopesFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future, decision } => {
                let mut response = ready!(future.poll(cx))?;
                if let Some(decision) = decision.take() {
                    // A `RequiredScopes` inside this one decided too: the event records what
                    // both required, not only the outer one's word.
                    let decision = match response.extensions_mut().remove::<ScopeDecision>() {
                        Some(inner) => decision.and(inner),
                        None => decision,
                    };
                    response.extensions_mut().insert(decision);
                }
                Poll::Ready(Ok(response))
            }
            KindProj::Refused { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => panic!("RequiredScopesFuture polled after completion"),
            },
        }
    }
}
