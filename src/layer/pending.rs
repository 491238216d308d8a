//! The event of one request, from its arrival to the end of its response.

use std::sync::Arc;

use super::tee::Captured;
use super::Shared;
use crate::context::{RequestContext, ResponseContext};
use crate::resource::ResourceRequest;

/// What kind of traffic a request is, decided when it arrives.
#[derive(Debug)]
pub(crate) enum Role {
    /// A protected route (anything that is not a configured OAuth endpoint).
    Resource(ResourceRequest),
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
            None => None,
        }
    }

    /// The response head arrived.
    pub(crate) fn respond(&mut self, response: ResponseContext) {
        if let Some(state) = &mut self.state {
            state.response = Some(response);
        }
    }

    /// The response body ended: emit with the outcome the response says.
    pub(crate) fn complete(mut self, response_body: Option<Captured>) {
        if let Some(state) = self.state.take() {
            state.emit(true, response_body);
        }
    }
}

impl Drop for PendingEvent {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.emit(false, None);
        }
    }
}

impl State {
    fn emit(self, completed: bool, _response_body: Option<Captured>) {
        let duration = self.request.started.elapsed();
        let response = if completed {
            self.response.as_ref()
        } else {
            None
        };
        let event = match &self.role {
            Role::Resource(resource) => resource.event(
                self.shared.auditor.service().clone(),
                self.request,
                response,
                duration,
            ),
        };
        self.shared.auditor.emit(event);
    }
}
