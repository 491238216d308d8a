use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::{RequestBody, ResponseBody};
use super::event::Role;
use super::future::ResponseFuture;
use super::pending::PendingEvent;
use super::Shared;
use crate::context::{RequestContext, RequestId};
use crate::oauth::EndpointRequest;
use crate::resource::ResourceRequest;
use crate::token::{
    access_token_from_headers, resolved, BearerCredential, ResolveRequest, Verdict,
};

/// The service of [`AuditLayer`](super::AuditLayer).
///
/// Its error is the inner service's: auditing never fails a request.
///
/// The inner service must be `Clone` (Axum routes and `service_fn` over shared state are):
/// when an opaque token is resolved before the route runs, the service that was polled ready
/// travels with the request, as in tower-http's `AsyncRequireAuthorization`.
#[derive(Clone, Debug)]
pub struct AuditService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> AuditService<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        AuditService { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuditService<S>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body,
    ResBody: Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, RequestBody<ReqBody>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        if shared.skips(req.uri().path()) {
            return ResponseFuture::called(
                self.inner.call(req.map(|b| RequestBody::new(b, None))),
                None,
            );
        }
        let context = RequestContext::capture(&req, &shared.trusted_proxies);
        req.extensions_mut()
            .insert(RequestId(context.request_id.clone()));
        let context_ip = context.source.ip;
        let certificate = shared.client_certificate(&req);
        if let Some(crate::mtls::PresentedCertificate::Certificate(c)) = &certificate {
            // Handlers see the certificate the record names, whichever way it came.
            req.extensions_mut().insert(c.clone());
        }
        // UserInfo is audited like a protected route (its event names the endpoint).
        let endpoint = shared
            .endpoints
            .lookup(req.uri().path())
            .filter(|e| *e != crate::oauth::Endpoint::UserInfo);
        if let Some(endpoint) = endpoint {
            let (mut head, body) = req.into_parts();
            let has_body = !body.is_end_stream();
            let (request, tee) = EndpointRequest::capture(
                endpoint,
                &head,
                has_body,
                &shared.endpoints,
                &shared.dpop,
                certificate.clone(),
            );
            // A default path may be an ordinary route: read it as one too, in case.
            let fallback = shared.endpoints.is_assumed(endpoint).then(|| {
                let resource = ResourceRequest::inspect(
                    &head.method,
                    &head.uri,
                    &head.headers,
                    certificate,
                    shared.inspectors(),
                );
                if let Some(token) = resource.audited_token() {
                    head.extensions.insert(token);
                    head.extensions.insert(resource.presentation().clone());
                }
                resource
            });
            let pending =
                PendingEvent::new(shared.clone(), context, Role::Endpoint(request, fallback));
            let req = Request::from_parts(head, RequestBody::new(body, tee));
            return ResponseFuture::called(self.inner.call(req), Some(pending));
        }
        let resource = ResourceRequest::inspect(
            req.method(),
            req.uri(),
            req.headers(),
            certificate,
            shared.inspectors(),
        );
        if let Some(token) = resource.audited_token() {
            req.extensions_mut().insert(token);
            req.extensions_mut().insert(resource.presentation().clone());
        }
        let opaque = resource.opaque_token().cloned();
        let pending = PendingEvent::new(shared.clone(), context, Role::Resource(resource));
        let req = req.map(|b| RequestBody::new(b, None));
        if let (Some(resolver), Some(token)) = (&shared.resolver, opaque) {
            if let (_, BearerCredential::Bearer(raw)) = access_token_from_headers(req.headers()) {
                let resolver = resolver.clone();
                let revoked = shared.revoked.clone();
                let raw = raw.to_owned();
                let client_ip = context_ip;
                let resolve: super::future::InspectFuture = Box::pin(async move {
                    let answer = resolver.resolve(ResolveRequest::new(&raw, client_ip)).await;
                    let mut seen = resolved(&token, answer);
                    // A revocation recorded while the lookup was in flight still wins.
                    if revoked.contains(&seen.fingerprint) {
                        seen.verdict = Verdict::Revoked;
                    }
                    Arc::new(seen)
                });
                // The service that was polled ready goes with the request; the clone stays
                // here and is polled before the next call.
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                return ResponseFuture::resolving(resolve, ready, req, pending);
            }
        }
        ResponseFuture::called(self.inner.call(req), Some(pending))
    }
}
