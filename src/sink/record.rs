use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use uuid::Uuid;

use crate::event::{AuditEvent, EventKind, ServiceInfo, Timestamp};
#[cfg(any(feature = "http", feature = "nats"))]
use crate::format::EventFormat;

/// One event, serialised once (schema v1 JSON, no trailing newline) with the fields
/// backends route and index on kept alongside.
///
/// This is also the form events take in the on-disk spool, so an event read back after a
/// restart is byte for byte the one that was emitted. Every sink's runtime encodes each event
/// once, in the sink's own task; a retried or spooled event is never encoded again.
#[derive(Clone)]
pub struct EncodedEvent {
    id: Uuid,
    kind: EventKind,
    time: Timestamp,
    json: Bytes,
    /// The event itself while it is still in memory (not after a trip through the disk
    /// spool): writers that take events, not JSON, are handed this.
    event: Option<Arc<AuditEvent>>,
    /// Its stream and sequence number, when chained: what a drop report announces.
    chain: Option<(Arc<str>, u64)>,
}

impl PartialEq for EncodedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.time == other.time
            && self.json == other.json
    }
}

impl Eq for EncodedEvent {}

impl std::fmt::Debug for EncodedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedEvent")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("time", &self.time)
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

/// Why bytes could not be taken as an encoded event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Not a JSON object with the envelope fields of schema v1.
    #[error("not an audit event: {0}")]
    Json(#[from] serde_json::Error),
    /// The `kind` is not one of schema v1.
    #[error("unknown event kind {0:?}")]
    Kind(String),
    /// The `time` is not RFC 3339.
    #[error("event time {0:?} is not RFC 3339")]
    Time(String),
}

#[derive(Deserialize)]
struct Envelope<'a> {
    id: Uuid,
    #[serde(borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    time: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    chain: Option<ChainEnvelope<'a>>,
}

#[derive(Deserialize)]
struct ChainEnvelope<'a> {
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    seq: u64,
}

impl EncodedEvent {
    /// Serialises an event.
    pub fn encode(event: &AuditEvent) -> Result<Self, serde_json::Error> {
        let json = match event.json.get() {
            // Made once by the chain, shared by every sink.
            Some(json) => json.clone(),
            None => Bytes::from(crate::event::canonical_event::event_json(event)?),
        };
        Ok(EncodedEvent {
            id: event.id,
            kind: event.kind,
            time: event.time,
            json,
            event: None,
            chain: event.chain.as_ref().map(|c| (c.stream.clone(), c.seq)),
        })
    }

    /// Serialises an event and keeps it alongside its JSON, so that a backend writing
    /// another format than schema v1 ([`EventFormat`]: ECS, OCSF) can make it from the event.
    /// The delivery runtime encodes every event so; [`encode`](EncodedEvent::encode) keeps
    /// only the JSON.
    pub fn encode_shared(event: Arc<AuditEvent>) -> Result<Self, serde_json::Error> {
        let mut encoded = EncodedEvent::encode(&event)?;
        encoded.event = Some(event);
        Ok(encoded)
    }

    /// The event itself, while it has not been through the disk spool.
    pub(crate) fn event(&self) -> Option<&Arc<AuditEvent>> {
        self.event.as_ref()
    }

    /// The event's JSON in `format`: its own bytes in schema v1; in another format, written
    /// into `scratch` from the event in memory. An event read back from a disk spool has
    /// only its v1 JSON, so it cannot be written in another format: `Err` says so.
    #[cfg(any(feature = "http", feature = "nats"))]
    pub(crate) fn json_in<'a>(
        &'a self,
        format: EventFormat,
        scratch: &'a mut Vec<u8>,
    ) -> Result<&'a [u8], String> {
        if format == EventFormat::OAuthAudit {
            return Ok(&self.json);
        }
        let event = self
            .event
            .as_ref()
            .ok_or_else(|| format!("an event read back as JSON cannot be written as {format}"))?;
        scratch.clear();
        format
            .write(scratch, event)
            .map_err(|err| format!("the event could not be written as {format}: {err}"))?;
        Ok(scratch)
    }

    /// Takes one serialised event back (a line of the spool, a JSON-lines file).
    pub fn from_json(json: Bytes) -> Result<Self, RecordError> {
        let envelope: Envelope<'_> = serde_json::from_slice(&json)?;
        let kind = EventKind::from_name(&envelope.kind)
            .ok_or_else(|| RecordError::Kind(envelope.kind.clone().into_owned()))?;
        let time = Timestamp::parse(&envelope.time)
            .ok_or_else(|| RecordError::Time(envelope.time.clone().into_owned()))?;
        let id = envelope.id;
        let chain = envelope.chain.map(|c| (Arc::from(&*c.stream), c.seq));
        Ok(EncodedEvent {
            id,
            kind,
            time,
            json,
            event: None,
            chain,
        })
    }

    /// Its stream and sequence number, when chained.
    pub(crate) fn chain(&self) -> Option<(&Arc<str>, u64)> {
        self.chain.as_ref().map(|(stream, seq)| (stream, *seq))
    }

    /// The event id (UUIDv7): the key every backend deduplicates on.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The event kind.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// When the request arrived.
    pub fn time(&self) -> Timestamp {
        self.time
    }

    /// The event as one JSON object (schema v1), without a trailing newline.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The event's producer (its `service` object), read back from the JSON: for a backend
    /// that needs it (a Splunk `host`), or a report raised for events read from a spool.
    pub fn service(&self) -> Option<ServiceInfo> {
        #[derive(Deserialize)]
        struct WithService {
            service: Service,
        }
        #[derive(Deserialize)]
        struct Service {
            name: String,
            instance: Option<String>,
        }
        let parsed: WithService = serde_json::from_slice(&self.json).ok()?;
        Some(ServiceInfo {
            name: parsed.service.name,
            instance: parsed.service.instance,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::event::{Outcome, ServiceInfo};

    #[test]
    fn round_trips_through_json() {
        let service = Arc::new(ServiceInfo {
            name: "api".into(),
            instance: None,
        });
        let event = AuditEvent::new(
            service,
            Timestamp::now(),
            EventKind::TokenRevoked,
            Outcome::Success,
        );
        let encoded = EncodedEvent::encode(&event).unwrap();
        assert_eq!(encoded.id(), event.id);
        assert_eq!(encoded.kind(), EventKind::TokenRevoked);
        let back = EncodedEvent::from_json(encoded.json().clone()).unwrap();
        assert_eq!(back, encoded);
    }

    #[test]
    fn refuses_what_is_not_an_event() {
        for bad in [
            &b"not json"[..],
            br#"{"id":"0192e7a0-0000-7000-8000-000000000000","kind":"Nope","time":"2026-01-01T00:00:00.000000Z"}"#,
            br#"{"id":"0192e7a0-0000-7000-8000-000000000000","kind":"TokenRevoked","time":"yesterday"}"#,
            br#"{"kind":"TokenRevoked"}"#,
        ] {
            assert!(EncodedEvent::from_json(Bytes::copy_from_slice(bad)).is_err());
        }
    }
}
