//! The event of one request, from its arrival to the end of its response.

use std::sync::Arc;

use crate::tee::{Captured, Tee};
use super::Shared;
use crate::context::{RequestContext, ResponseContext};
use crate::oauth::{EndpointEvent, EndpointRequest, ResponseHead, Settings};
use crate::resource::ResourceRequest;
use crate::writer::Overflow;

/// What kind of traffic a request is, decided when it arrives.
// One per request, created in place: a box would cost an allocation on every endpoint call.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Role {
    /// A protected route (anything that is not a configured OAuth endpoint).
    Resource(ResourceRequest),
    /// An OAuth endpoint (token, revocation, introspection, authorization, login). When
    /// its role was only assumed from a default path, the protected-route reading of the
    /// same request, used if the traffic turns out not to speak the protocol.
    Endpoint(EndpointRequest, Option<ResourceRequest>),
}

/// An event waiting for its response to end. Dropped unfinished, it is emitted with
/// `outcome: unknown`: a request that never completed still leaves a record.
#[derive(Debug)]
pub(crate) struct PendingEvent {
    state: Option<State>,
}

#[derive(Debug)]
struct State {
    shared: Arc<Shared>,
    request: RequestContext,
    role: Role,
    response: Option<ResponseContext>,
}

impl PendingEvent {
    pub(crate) fn new(shared: Arc<Shared>, request: RequestContext, role: Role) -> Self {
        PendingEvent {
            state: Some(State {
                shared,
                request,
                role,
                response: None,
            }),
        }
    }

    /// The resource request being audited, to complete its token after resolution.
    pub(crate) fn resource_mut(&mut self) -> Option<&mut ResourceRequest> {
        match self.state.as_mut().map(|s| &mut s.role) {
            Some(Role::Resource(resource)) => Some(resource),
            _ => None,
        }
    }

    /// For OAuth endpoints: what the classifier needs of the response head, and the tee
    /// that copies the response body. `None` for protected routes.
    pub(crate) fn endpoint_response(
        &self,
        headers: &http::HeaderMap,
    ) -> Option<(ResponseHead, Tee)> {
        let state = self.state.as_ref()?;
        match state.role {
            Role::Endpoint(..) => Some((
                ResponseHead::from_headers(headers, &state.shared.inspector),
                state.shared.endpoints.tee(),
            )),
            Role::Resource(_) => None,
        }
    }

    /// The response head arrived.
    pub(crate) fn respond(&mut self, response: ResponseContext) {
        if let Some(state) = &mut self.state {
            state.response = Some(response);
        }
    }

    /// The response body ended: emit with the outcome the response says. `Some` when a
    /// writer with a `Block` overflow policy had no room: the response should wait for it.
    pub(crate) fn complete(mut self, response_body: Option<Captured>) -> Option<Overflow> {
        self.state
            .take()
            .and_then(|state| state.emit(true, response_body))
    }
}

impl Drop for PendingEvent {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            // Nobody is left to hold back: the wait for room, if any, goes on by itself.
            if let Some(overflow) = state.emit(false, None) {
                overflow.spawn();
            }
        }
    }
}

impl State {
    fn emit(self, completed: bool, response_body: Option<Captured>) -> Option<Overflow> {
        let duration = self.request.started.elapsed();
        let response = if completed {
            self.response.as_ref()
        } else {
            None
        };
        let shared = &self.shared;
        let event = match &self.role {
            Role::Resource(resource) => Some(resource.event(
                shared.auditor.service().clone(),
                self.request,
                response,
                duration,
            )),
            Role::Endpoint(endpoint, fallback) => match endpoint.event(
                Settings {
                    service: shared.auditor.service(),
                    inspector: &shared.inspector,
                    endpoints: &shared.endpoints,
                },
                &self.request,
                response,
                duration,
                response_body,
            ) {
                EndpointEvent::Recorded(event) => Some(event),
                EndpointEvent::Suppressed => None,
                EndpointEvent::NotOAuth => fallback.as_ref().map(|resource| {
                    resource.event(
                        shared.auditor.service().clone(),
                        self.request,
                        response,
                        duration,
                    )
                }),
            },
        };
        let mut event = event?;
        if event.error.is_none() {
            event.error = response.and_then(|r| r.error.clone());
        }
        shared.remember_revocation(&event);
        shared.auditor.offer(event)
    }
}
