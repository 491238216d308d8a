use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::{RequestBody, ResponseBody};
use super::event::Role;
use super::future::{InspectFuture, ResponseFuture};
use super::pending::PendingEvent;
use super::{Direct, Resolving, Shared};
use crate::context::RequestContext;
use crate::oauth::EndpointRequest;
use crate::resource::{proof_of, ResourceRequest};
use crate::token::bearer::Authorization;
use crate::token::{
    access_token_from_headers, resolved, BearerCredential, ResolveRequest, Verdict,
};

/// The service of [`AuditLayer`](super::AuditLayer).
///
/// Its error is the inner service's: auditing never fails a request.
///
/// `M` is the layer's mode. Under [`Direct`] (no token resolver) any inner service will do.
/// Under [`Resolving`] the inner service must be `Clone` (Axum routes and `service_fn` over
/// shared state are): when an opaque token is resolved before the route runs, the service
/// that was polled ready travels with the request, as in tower-http's
/// `AsyncRequireAuthorization`.
#[derive(Clone, Debug)]
pub struct AuditService<S, M = Direct> {
    inner: S,
    shared: Arc<Shared>,
    mode: PhantomData<M>,
}

impl<S, M> AuditService<S, M> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        AuditService {
            inner,
            shared,
            mode: PhantomData,
        }
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

    /// Captures the request and decides its role; what is left is to call the inner service,
    /// after the resolution when there is one.
    ///
    /// The request is read and its extensions completed where it is: moved through here and
    /// back, it would be copied on the way, on every request.
    fn prepare<ReqBody: Body>(&self, req: &mut Request<ReqBody>) -> Prepared {
        let shared = &self.shared;
        // The target as the client sent it, not as a router nested in another hands it on.
        let target = crate::context::original_uri(req);
        if shared.skips(target.path()) {
            return Prepared::default();
        }
        // The request's source is captured into the buffers of one a sink handed back.
        let context = RequestContext::capture(
            req,
            target.path(),
            &shared.trusted_proxies,
            shared.request_id_from,
            || shared.auditor.recycled_source(),
        );
        let context_ip = context.source.as_ref().and_then(|source| source.ip);
        let certificate = shared.client_certificate(req);
        // Handlers see the certificate the record names, whichever way it came.
        let handler_certificate = certificate
            .as_ref()
            .and_then(crate::mtls::PresentedCertificate::certificate)
            .cloned();
        // Under a router nested in another, the handler is chosen by the path without the
        // prefix: a router mounted at several prefixes, or at one with a parameter, serves
        // its endpoints at more paths than the configuration names. Either path classifies,
        // as any reading of a path does.
        let routed = Some(req.uri().path()).filter(|routed| *routed != target.path());
        let found = shared
            .endpoints
            .lookup(target.path())
            .or_else(|| routed.and_then(|routed| shared.endpoints.lookup(routed)));
        // UserInfo is audited like a protected route (its event names the endpoint).
        let userinfo = found == Some(crate::oauth::Endpoint::UserInfo);
        let endpoint = found.filter(|_| !userinfo);
        let userinfo = userinfo && shared.endpoints.names_userinfo();
        // Once per request, whatever roles its path may have.
        let authorization = Authorization::of(req.headers());
        let proof = proof_of(
            req.method(),
            target,
            req.headers(),
            authorization,
            context.carried,
            &shared.dpop,
            endpoint == Some(crate::oauth::Endpoint::Token),
        );
        if let Some(endpoint) = endpoint {
            for_handlers(req.extensions_mut(), &context, handler_certificate);
            let has_body = !req.body().is_end_stream();
            let (request, tee) = EndpointRequest::capture(
                endpoint,
                (req.headers(), req.uri()),
                has_body,
                &shared.endpoints,
                proof.clone().map(|check| (check, &shared.dpop)),
                certificate.clone(),
            );
            // A default path may be an ordinary route: read it as one too, in case.
            let fallback = shared.endpoints.is_assumed(endpoint).then(|| {
                let authorization = Authorization::of(req.headers());
                let resource = ResourceRequest::inspect(
                    req.headers(),
                    req.uri(),
                    authorization,
                    query_token(authorization, req.uri()),
                    // The endpoint request holds the cookies' values already (its head
                    // secrets, which an event of this reading is scrubbed of too): not kept
                    // twice.
                    context.carried.without(crate::context::Header::Cookie),
                    shared.inspectors(),
                    proof,
                    certificate,
                    context.time,
                );
                if let Some(token) = resource.audited_token() {
                    req.extensions_mut().insert(token);
                    insert_presentation(req.extensions_mut(), &resource);
                }
                resource
            });
            let pending = PendingEvent::new(
                shared.clone(),
                context,
                Role::Endpoint(Box::new(request), fallback),
            );
            return Prepared {
                pending: Some(pending),
                tee,
                resolve: None,
            };
        }
        let resource = ResourceRequest::inspect(
            req.headers(),
            req.uri(),
            authorization,
            query_token(authorization, req.uri()),
            context.carried,
            shared.inspectors(),
            proof,
            certificate,
            context.time,
        );
        for_handlers(req.extensions_mut(), &context, handler_certificate);
        if let Some(token) = resource.audited_token() {
            req.extensions_mut().insert(token);
            insert_presentation(req.extensions_mut(), &resource);
        }
        let opaque = resource.opaque_token().cloned();
        let pending =
            PendingEvent::new(shared.clone(), context, Role::Resource(resource, userinfo));
        // Only a `Resolving` layer has a resolver.
        let resolve = match (&shared.resolver, opaque) {
            (Some(resolver), Some(token)) => match access_token_from_headers(req.headers()) {
                (_, BearerCredential::Bearer(raw)) => {
                    let resolver = resolver.clone();
                    let revoked = shared.revoked.clone();
                    let raw = raw.to_owned();
                    let resolve: InspectFuture = Box::pin(async move {
                        let answer = resolver
                            .resolve(ResolveRequest::new(&raw, context_ip))
                            .await;
                        let mut seen = resolved(&token, answer);
                        // A revocation recorded while the lookup was in flight still wins.
                        if seen.is_in(&revoked) {
                            seen.verdict = Verdict::Revoked;
                        }
                        Arc::new(seen)
                    });
                    Some(resolve)
                }
                _ => None,
            },
            _ => None,
        };
        Prepared {
            pending: Some(pending),
            tee: None,
            resolve,
        }
    }
}

/// What [`AuditService::prepare`] made of a request, besides its extensions.
#[derive(Default)]
struct Prepared {
    /// `None` for a skipped path.
    pending: Option<PendingEvent>,
    /// An OAuth endpoint's copy of the request body, for the request's [`RequestBody`].
    tee: Option<crate::tee::Tee>,
    /// The opaque token's resolution, to await before the inner service runs.
    resolve: Option<InspectFuture>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuditService<S, Direct>
where
    S: Service<Request<RequestBody<ReqBody>>, Response = Response<ResBody>>,
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
        let prepared = self.prepare(&mut req);
        debug_assert!(prepared.resolve.is_none(), "a Direct layer has no resolver");
        let req = req.map(|body| RequestBody::new(body, prepared.tee));
        ResponseFuture::called(self.inner.call(req), prepared.pending)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuditService<S, Resolving>
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
        let prepared = self.prepare(&mut req);
        let req = req.map(|body| RequestBody::new(body, prepared.tee));
        match (prepared.resolve, prepared.pending) {
            (Some(resolve), Some(pending)) => {
                // The service that was polled ready goes with the request; the clone stays
                // here and is polled before the next call.
                let fresh = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, fresh);
                ResponseFuture::resolving(resolve, ready, req, pending)
            }
            (_, pending) => ResponseFuture::called(self.inner.call(req), pending),
        }
    }
}

/// The access token a protected route's request sent in its query (RFC 6750 §2.3), looked
/// for only when the request has no `Authorization` field at all: with one, the header's
/// token is the one recorded (RFC 6750 §2 allows one method per request), and the many
/// requests that carry one pay a single test for it.
fn query_token<'u>(
    authorization: Authorization<'_>,
    uri: &'u http::Uri,
) -> Option<crate::resource::QueryToken<'u>> {
    if authorization.first().is_some() {
        return None;
    }
    uri.query().and_then(crate::oauth::query_access_token)
}

/// What every audited request carries to its handler: its request id, and the client
/// certificate its record names, if any.
fn for_handlers(
    extensions: &mut http::Extensions,
    context: &RequestContext,
    certificate: Option<crate::mtls::ClientCertificate>,
) {
    extensions.insert(context.request_id.clone());
    if let Some(certificate) = certificate {
        extensions.insert(certificate);
    }
}

/// The request's [`Presentation`](crate::Presentation), for handlers, when it says more than
/// a plain bearer token. Most requests present one, and leaving it out spares them an
/// extension's box, and the growth of the extensions' table when the request had fewer than
/// four extensions (as behind `oauth-audit proxy`; an Axum router adds two of its own);
/// `Presentation::of` gives the plain bearer presentation back.
fn insert_presentation(extensions: &mut http::Extensions, resource: &ResourceRequest) {
    let presentation = resource.presentation();
    if !presentation.is_plain_bearer() {
        extensions.insert(presentation.clone());
    }
}
