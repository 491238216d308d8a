//! Events' allocations handed back by the sinks to the code that makes events.
//!
//! An event travels in an `Arc` of about 1 KB, made by the request path and dropped by a
//! sink's task once it is written: every event was a fresh heap object, freed on another
//! thread with all its strings. glibc's per-thread caches then run one way: the request
//! path's cache is always empty, and the sink's always full, so both sides go to the shared
//! arena, and the sink's task spends much of its time freeing what it wrote.
//!
//! A sink's task hands the events it is done with to a [`Recycler`] instead (only those it
//! holds alone: an event another sink still has goes its way), and the request path takes
//! its next event's `Arc` from there. What the event left in it holds is dropped then, on the
//! thread that makes events, and the new event written over it field by field
//! (`AuditEvent::renew`, which names every field, so none can be forgotten): nothing of the
//! old event can reach the new one, which is what [`AuditEvent::new`] makes. Only the old
//! request id's buffer is kept, emptied, for the new id.
//!
//! The sources of the events made again are kept apart, in a queue of their own of the same
//! capacity (only those holding a chain or recorded headers): the audit layer takes one when
//! a request with forwarding headers arrives ([`Recycler::source`]) and captures the
//! request's source into it, the old strings, chain and recorded headers taking the new
//! values in their own allocations
//! (`RequestContext::capture` names every field of the source, and overwrites or removes
//! whatever the request does not set; it keeps no buffer larger than a request's source
//! needs, as an event an application emits may hold any). A request behind a load balancer
//! (a chain, a scheme header, a user agent) then allocates nothing for its source. A request
//! in flight holds nothing of an event written before but that source's buffers, overwritten
//! on arrival, however long it is served.
//!
//! The recycler holds at most a fixed number of events: the auditor gives it room for what
//! its largest queue holds and a batch besides, the most that can be in flight at once, so
//! that a backlog drained at once all comes back (up to 16,384 events: a larger backlog is
//! a stalled sink's). Its memory is bounded by that number times the largest event, whose
//! fields are bounded: no more than the queue would hold anyway (the ring's slots, 16 bytes
//! each, are allocated up front like the queue's). A full recycler drops what it is handed,
//! as the sink did before. What the kept events hold (addresses, subjects) stays in memory
//! until they are reused, or until the auditor shuts down and empties it.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::{AuditEvent, EventKind, Outcome, ServiceInfo, Source, Timestamp};

/// Events kept for reuse, shared by an auditor's producers and its sinks' tasks.
#[derive(Clone, Debug)]
pub(crate) struct Recycler(Arc<Kept>);

#[derive(Debug)]
struct Kept {
    events: ArrayQueue<Arc<AuditEvent>>,
    /// The sources of the events made again, for requests to capture theirs into.
    sources: ArrayQueue<Source>,
}

impl Recycler {
    /// A recycler keeping up to `events` events and `sources` sources (at least one each).
    pub(crate) fn new(events: usize, sources: usize) -> Self {
        Recycler(Arc::new(Kept {
            events: ArrayQueue::new(events.max(1)),
            sources: ArrayQueue::new(sources.max(1)),
        }))
    }

    /// The source of an event made again, for a request to capture its own into (its
    /// strings and map entries); `None` when none is kept.
    pub(crate) fn source(&self) -> Option<Source> {
        self.0.sources.pop()
    }

    /// Keeps the source `event` holds, when it holds a chain or recorded headers, for
    /// [`source`](Self::source).
    fn keep_source(&self, event: &mut AuditEvent) {
        let Some(source) = event.source.take() else {
            return;
        };
        // A request's forwarding headers are what make its source worth keeping: the layer
        // takes one only for a request that has some.
        let allocated = source.forwarded_for.capacity() > 0 || !source.forwarded_headers.is_empty();
        if allocated {
            // Full: it is dropped here, as it would have been.
            let _ = self.0.sources.push(source);
        }
    }

    /// [`AuditEvent::new`] with its `request_id`, in an `Arc` of its own: a recycled one
    /// when there is one, whose request id's buffer then takes the new id.
    pub(crate) fn event(
        &self,
        service: Arc<ServiceInfo>,
        time: Timestamp,
        (kind, outcome): (EventKind, Outcome),
        request_id: &str,
    ) -> Arc<AuditEvent> {
        if let Some(mut shared) = self.0.events.pop() {
            // Only events held alone go in, and nothing clones them while they wait.
            if let Some(event) = Arc::get_mut(&mut shared) {
                self.keep_source(event);
                event.renew(service, time, (kind, outcome), request_id);
                return shared;
            }
        }
        let mut event = Arc::new(AuditEvent::new(service, time, kind, outcome));
        // Just made: unshared, so this neither clones nor fails.
        Arc::make_mut(&mut event).request_id = Some(request_id.to_owned());
        event
    }

    /// An event made by value, moved into a recycled `Arc` when there is one.
    pub(crate) fn adopt(&self, event: AuditEvent) -> Arc<AuditEvent> {
        if let Some(mut shared) = self.0.events.pop() {
            if let Some(slot) = Arc::get_mut(&mut shared) {
                self.keep_source(slot);
                *slot = event;
                return shared;
            }
        }
        Arc::new(event)
    }

    /// Drops every event and source kept for reuse, with what each still holds (addresses,
    /// subjects): written audit data does not stay in memory once the sinks have stopped.
    pub(crate) fn clear(&self) {
        while self.0.events.pop().is_some() {}
        while self.0.sources.pop().is_some() {}
    }

    /// How many events wait for reuse.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.events.len()
    }

    /// How many events it keeps at most.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.0.events.capacity()
    }

    /// Takes back the events of `batch` that nobody else holds, and empties it.
    pub(crate) fn recycle(&self, batch: &mut Vec<Arc<AuditEvent>>) {
        for event in batch.drain(..) {
            // Two loads, where `Arc::get_mut` would lock the weak count and put it back: the
            // producer's `get_mut` is what makes the event its own, and orders its writes
            // after every other holder's last read. Held by nobody else (and never by a
            // `Weak`), the event cannot gain a holder on the way.
            if Arc::strong_count(&event) == 1 && Arc::weak_count(&event) == 0 {
                // Full: the event is dropped here, as it would have been.
                let _ = self.0.events.push(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::canonical::tests::full_event;

    const DENIED: (EventKind, Outcome) = (EventKind::AccessDenied, Outcome::Failure);

    fn service() -> Arc<ServiceInfo> {
        Arc::new(ServiceInfo {
            name: "next".into(),
            instance: None,
        })
    }

    fn time() -> Timestamp {
        Timestamp::from_unix(1_800_000_000).unwrap()
    }

    /// The event `AuditEvent::new` makes, with `like`'s random id: what a recycled event
    /// must serialise to, byte for byte.
    fn fresh_like(like: &AuditEvent, service: Arc<ServiceInfo>) -> String {
        let mut fresh = AuditEvent::new(service, time(), EventKind::AccessDenied, Outcome::Failure);
        fresh.id = like.id;
        fresh.request_id = Some("r-next".into());
        serde_json::to_string(&fresh).unwrap()
    }

    /// `full_event`, with the fields it leaves unset set too: every field of the event.
    fn every_field_set() -> AuditEvent {
        let mut event = full_event();
        event.span_id = Some("00f067aa0ba902b7".into());
        event.redirect_uri = Some("https://app.example.com/cb".into());
        event.dropped =
            AuditEvent::dropped(service(), 3, crate::event::DropReason::QueueFull, "file")
                .dropped
                .take();
        event.alert = Some(Box::new(crate::event::Alert {
            count: 10,
            evidence: vec!["01a233ea-6f0e-74a1-b7ca-fabbc46042c5".into()],
            first_seen: Some(time()),
            key: "actor.subject=alice".into(),
            last_seen: Some(time()),
            rule: "brute_force".into(),
            suppressed: Some(2),
            title: Some("Repeated failed logins".into()),
            travel: None,
            window_s: 900,
        }));
        event.checkpoint = Some(Box::new(crate::event::Checkpoint {
            hash: crate::event::EventHash([9; 32]),
            note: "oauth-audit/01a233ea\n100\n".into(),
            seq: 100,
            stream: "01a233ea".into(),
        }));
        event.labels.insert("team".into(), "orders".into());
        event.json.set(bytes::Bytes::from_static(b"{}"));
        event
    }

    #[test]
    fn a_recycled_event_keeps_nothing_of_the_one_before() {
        let recycler = Recycler::new(4, 4);
        let old = Arc::new(every_field_set());
        let place = Arc::as_ptr(&old);
        recycler.recycle(&mut vec![old]);
        let service = service();
        let event = recycler.event(service.clone(), time(), DENIED, "r-next");
        assert_eq!(Arc::as_ptr(&event), place, "the allocation was reused");
        assert_eq!(
            serde_json::to_string(&*event).unwrap(),
            fresh_like(&event, service.clone())
        );
        assert!(event.json.get().is_none());
        // Empty again: the next event is a new allocation.
        let next = recycler.event(service, time(), DENIED, "r-next");
        assert_ne!(Arc::as_ptr(&next), place);
    }

    /// The source of an event made again waits for a request, only when it holds a chain or
    /// recorded headers, and is dropped with the events when the recycler is emptied.
    #[test]
    fn the_source_of_an_event_made_again_waits_for_a_request_until_emptied() {
        let recycler = Recycler::new(4, 4);
        recycler.recycle(&mut vec![Arc::new(full_event())]);
        assert!(
            recycler.source().is_none(),
            "not before its event is made again"
        );
        let _ = recycler.event(service(), time(), DENIED, "r-next");
        let source = recycler.source().expect("kept");
        assert_eq!(source.forwarded_for, ["203.0.113.9"]);
        assert!(recycler.source().is_none(), "taken once");

        let mut address_only = full_event();
        address_only.source = Some(crate::event::Source {
            ip: Some("192.0.2.1".parse().unwrap()),
            ..Default::default()
        });
        recycler.recycle(&mut vec![Arc::new(address_only)]);
        let _ = recycler.event(service(), time(), DENIED, "r-next");
        assert!(recycler.source().is_none(), "nothing to reuse in it");

        recycler.recycle(&mut vec![Arc::new(full_event())]);
        let _ = recycler.event(service(), time(), DENIED, "r-next");
        recycler.clear();
        assert!(recycler.source().is_none(), "emptied");
    }

    #[test]
    fn an_adopted_event_is_the_one_given() {
        let recycler = Recycler::new(4, 4);
        let old = Arc::new(full_event());
        let place = Arc::as_ptr(&old);
        recycler.recycle(&mut vec![old]);
        let mut given = AuditEvent::new(
            service(),
            time(),
            EventKind::ResourceAccessed,
            Outcome::Success,
        );
        given.request_id = Some("r-2".into());
        let expected = serde_json::to_string(&given).unwrap();
        let event = recycler.adopt(given);
        assert_eq!(Arc::as_ptr(&event), place);
        assert_eq!(serde_json::to_string(&*event).unwrap(), expected);
    }

    #[test]
    fn events_held_elsewhere_are_left_alone() {
        let recycler = Recycler::new(4, 4);
        let event = Arc::new(full_event());
        let held = event.clone();
        let mut batch = vec![event];
        recycler.recycle(&mut batch);
        assert!(batch.is_empty());
        assert_eq!(recycler.0.events.len(), 0, "another sink still holds it");
        assert_eq!(Arc::strong_count(&held), 1);
        assert_eq!(held.request_id.as_deref(), Some("r-1"));
        let next = recycler.event(service(), time(), DENIED, "r-next");
        assert_ne!(Arc::as_ptr(&next), Arc::as_ptr(&held));
    }

    #[test]
    fn the_recycler_keeps_at_most_its_capacity() {
        let recycler = Recycler::new(2, 2);
        let mut batch: Vec<_> = (0..5).map(|_| Arc::new(full_event())).collect();
        let places: Vec<_> = batch.iter().map(Arc::as_ptr).collect();
        recycler.recycle(&mut batch);
        assert_eq!(recycler.0.events.len(), 2);
        let reused: Vec<_> = (0..3)
            .map(|_| {
                let e = recycler.event(service(), time(), DENIED, "r-next");
                Arc::as_ptr(&e)
            })
            .collect();
        // The first two come back, the third is new (the batch's last three were freed).
        assert_eq!(&reused[..2], &places[..2]);
        assert_eq!(Recycler::new(0, 0).0.events.capacity(), 1);
    }
}
