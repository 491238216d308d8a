//! The event of one request, from its arrival to the end of its response: held while the
//! response streams, assembled ([`super::event`]) and offered to the auditor when it ends.

use std::sync::Arc;

use super::event::{assemble, ResponseContext, Role};
use super::Shared;
use crate::context::RequestContext;
use crate::event::ErrorInfo;
use crate::oauth::ResponseHead;
use crate::resource::Challenge;
use crate::scope::ScopeDecision;
use crate::tee::{Captured, Tee};
use crate::writer::Overflow;

/// An event waiting for its response to end. Dropped unfinished, it is emitted with
/// `outcome: unknown`: a request that never completed still leaves a record.
///
/// The state is boxed: the pending event rides in the response future and then in the
/// response body, each moved several times, and a pointer moves for less than the request's
/// whole context.
#[derive(Debug)]
pub(crate) struct PendingEvent {
    state: Option<Box<State>>,
}

#[derive(Debug)]
struct State {
    shared: Arc<Shared>,
    request: RequestContext,
    role: Role,
    response: Option<ResponseContext>,
}

impl PendingEvent {
    #[inline(always)]
    pub(crate) fn new(shared: Arc<Shared>, request: RequestContext, role: Role) -> Self {
        let state = Box::write(
            Box::new_uninit(),
            State {
                shared,
                request,
                role,
                response: None,
            },
        );
        PendingEvent { state: Some(state) }
    }

    /// Whether the layer echoes the request id in the response's `x-request-id` header.
    pub(crate) fn echoes_request_id(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|state| state.shared.request_id_header)
    }

    /// The request id as a header value, for the response's `x-request-id` when the layer
    /// echoes it ([`echoes_request_id`](Self::echoes_request_id) says).
    pub(crate) fn request_id_header(&self) -> Option<http::HeaderValue> {
        let state = self.state.as_ref()?;
        // Made of visible ASCII (taken from a header) or a UUID: always a header value.
        http::HeaderValue::from_bytes(state.request.request_id.as_bytes()).ok()
    }

    /// Completes the resource request's token with its resolution (recording its DPoP
    /// proof as used if the token turns out bound to the proof's key); the presentation to
    /// put in the request's extensions, unless it is a plain bearer one.
    pub(crate) fn resolved(
        &mut self,
        token: Arc<crate::token::InspectedToken>,
    ) -> Option<crate::resource::Presentation> {
        let state = self.state.as_mut()?;
        let Role::Resource(resource, _) = &mut state.role else {
            return None;
        };
        resource.set_token(token, &state.shared.dpop);
        let presentation = resource.presentation();
        (!presentation.is_plain_bearer()).then(|| presentation.clone())
    }

    /// The response head arrived: what the record needs of it is read into the pending
    /// state, where it stays (the layer's decision and the handler's error are taken out of
    /// the response's extensions, addressed to it). For an OAuth endpoint, the tee that
    /// copies the response body.
    ///
    /// Filled in place, field by field: a response context made apart and moved in would be
    /// copied whole, its endpoint part too, for every protected route.
    pub(crate) fn respond(&mut self, parts: &mut http::response::Parts) -> Option<Tee> {
        let state = self.state.as_mut()?;
        let response = state.response.insert(ResponseContext::default());
        response.status = Some(parts.status);
        response.challenge = Challenge::from_headers(&parts.headers);
        response.scopes = parts.extensions.remove::<ScopeDecision>();
        // Most responses carried only the decision, if anything: a second search of an
        // emptied table is spared.
        response.error = match parts.extensions.is_empty() {
            true => None,
            false => parts.extensions.remove::<ErrorInfo>(),
        };
        match state.role {
            Role::Endpoint(..) => {
                response.oauth = Some(ResponseHead::from_headers(
                    &parts.headers,
                    &state.shared.inspector,
                ));
                Some(state.shared.endpoints.tee())
            }
            Role::Resource(..) => None,
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
    /// Reads the state in its box, taking what the event keeps, instead of moving it out:
    /// the event is built in the `Arc` it travels in, and nothing large is copied on the way.
    fn emit(
        mut self: Box<Self>,
        completed: bool,
        response_body: Option<Captured>,
    ) -> Option<Overflow> {
        let state = &mut *self;
        let response = state.response.as_mut().filter(|_| completed);
        let event = assemble(
            &state.shared,
            &mut state.request,
            &state.role,
            response,
            response_body,
        )?;
        state.shared.remember_revocation(&event);
        state.shared.auditor.offer_shared(event)
    }
}
#[cfg(test)]
mod tests {
    use std::mem::size_of;
    /// The largest request glibc's malloc serves from its small bins on a 64-bit target
    /// (a chunk under 1,024 bytes): past it, every allocation first consolidates the fast
    /// bins, a few hundred instructions on every request.
    const SMALL_BIN_REQUEST: usize = 1_000;

    #[test]
    fn the_per_request_allocations_stay_in_the_small_bins() {
        if size_of::<usize>() != 8 {
            return;
        }
        assert!(size_of::<super::State>() <= SMALL_BIN_REQUEST);
        // What `Auditor::offer_shared` allocates for a protected route's event: the
        // event and the `Arc`'s two counts.
        assert!(
            2 * size_of::<usize>() + size_of::<crate::event::AuditEvent>() <= SMALL_BIN_REQUEST
        );
    }
}
