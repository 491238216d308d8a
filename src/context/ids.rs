//! Request and trace identifiers.

use arrayvec::ArrayString;
use http::HeaderValue;

use crate::event::Timestamp;

const MAX_REQUEST_ID_LEN: usize = 128;

/// The request's id, as its audit event records it (`request_id`: the request's own
/// `x-request-id` when it is a sane identifier in one field, else a generated UUIDv7). The
/// layer puts it in the request's extensions, for handlers (with Axum,
/// `Extension<RequestId>`), and by default in the response's `x-request-id` header when the
/// response has none (see
/// [`AuditLayerBuilder::request_id_header`](crate::AuditLayerBuilder::request_id_header)).
///
/// An id of up to 40 bytes (a generated UUID is 36) is kept inline, so putting it in the
/// request's extensions and cloning it out again allocates nothing.
#[derive(Clone)]
pub struct RequestId(Id);

#[derive(Clone)]
enum Id {
    /// Read back as text without checking it again: a request's id is read for its event,
    /// its response's header and by handlers.
    Inline(ArrayString<INLINE_ID>),
    Heap(Box<str>),
}

const INLINE_ID: usize = 40;

impl RequestId {
    pub(crate) fn new(id: &str) -> Self {
        match ArrayString::from(id) {
            Ok(inline) => RequestId(Id::Inline(inline)),
            Err(_) => RequestId(Id::Heap(id.into())),
        }
    }

    /// The id's bytes, for a header value.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Id::Inline(id) => id,
            Id::Heap(id) => id,
        }
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for RequestId {}

impl std::hash::Hash for RequestId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose `x-request-id` a request's id is taken from
/// ([`AuditLayerBuilder::request_id_from`](crate::AuditLayerBuilder::request_id_from)). A
/// request whose header is not taken, or not a sane identifier (visible ASCII, at most 128
/// bytes), or sent in more than one field (appended to rather than set), gets a generated
/// UUIDv7.
///
/// A client whose header is taken chooses its request's id: it can give two requests one id,
/// or reuse another client's, and so blur which events and log lines belong together. Behind
/// a front proxy that sets the header, take it only from the proxy.
///
/// In configuration files: `any_client`, `trusted_proxies` or `nobody`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RequestIdFrom {
    /// Any client's header (the default).
    #[default]
    AnyClient,
    /// Only the header of a peer among the
    /// [trusted proxies](crate::AuditLayerBuilder::trusted_proxies); any other client's is
    /// ignored (and, behind `oauth-audit proxy`, replaced upstream by the generated id).
    TrustedProxies,
    /// Nobody's: every request gets a generated id.
    Nobody,
}

/// The `x-request-id` header's value when it is a sane identifier (visible ASCII, at most 128
/// bytes), else a fresh UUIDv7 of `time`, the request's arrival. `header` is `None` when the
/// header was not sent or is not taken from this peer ([`RequestIdFrom`]). Held inline up to
/// 40 bytes (a generated id is 36): capturing it allocates nothing.
pub(crate) fn request_id(header: Option<&HeaderValue>, time: Timestamp) -> RequestId {
    header
        .map(|v| v.as_bytes())
        .filter(|v| {
            !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.iter().all(u8::is_ascii_graphic)
        })
        .and_then(|v| std::str::from_utf8(v).ok())
        .map_or_else(|| generated_id(time), RequestId::new)
}

/// A new UUIDv7 of `time`, hyphenated: written by uuid's own encoder into a buffer of its
/// exact length, which it hands back as text without checking it again, not through
/// `Display`, which grows a `String` piece by piece.
///
/// Its milliseconds are the request's arrival as the event's `time` has it, from the same
/// reading of the clock, and its other 74 bits random: unique, but not ordered among ids of
/// the same millisecond, which nothing asks of a request id.
fn generated_id(time: Timestamp) -> RequestId {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    RequestId::new(time.uuid_v7().hyphenated().encode_lower(&mut text))
}

/// The trace id of a W3C `traceparent` header's value (`00-<32 hex>-<16 hex>-<2 hex>`),
/// when valid.
pub(crate) fn trace_id(header: Option<&HeaderValue>) -> Option<String> {
    let value = header?.to_str().ok()?.trim();
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let valid = lower_hex(version, 2)
        && version != "ff"
        && (version != "00" || parts.next().is_none())
        && lower_hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && lower_hex(parent, 16)
        && parent.bytes().any(|b| b != b'0')
        && lower_hex(flags, 2);
    valid.then(|| trace.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn a_request_id_reads_back_as_given_inline_or_not() {
        let ids = [
            String::new(),
            "abc-123".to_owned(),
            request_id(None, Timestamp::now()).to_string(),
            "é".repeat(20),
            "x".repeat(40),
            "x".repeat(41),
            "y".repeat(128),
        ];
        for id in &ids {
            let request_id = RequestId::new(id);
            assert_eq!(request_id.as_str(), id);
            assert_eq!(request_id.to_string(), *id);
            assert_eq!(format!("{request_id:?}"), format!("RequestId({id:?})"));
            assert_eq!(request_id.clone(), request_id);
        }
        assert_ne!(RequestId::new("x"), RequestId::new("y"));
        assert_ne!(
            RequestId::new(&"x".repeat(40)),
            RequestId::new(&"x".repeat(41))
        );
        let state = std::hash::RandomState::new();
        let hash = |id: &RequestId| std::hash::BuildHasher::hash_one(&state, id);
        // Hashed as its text, inline or not, as the derived `Hash` of a `String` did.
        for id in ["abc", &"z".repeat(50)] {
            assert_eq!(
                hash(&RequestId::new(id)),
                std::hash::BuildHasher::hash_one(&state, id)
            );
        }
    }

    #[test]
    fn request_id_from_header_or_generated() {
        let now = Timestamp::now();
        assert_eq!(
            request_id(with("x-request-id", "abc-123").get("x-request-id"), now).as_str(),
            "abc-123"
        );
        let generated = request_id(with("x-request-id", "has space").get("x-request-id"), now);
        assert_eq!(generated.as_str().len(), 36);
        // A UUIDv7 of the request's millisecond, hyphenated in lower case.
        let id = uuid::Uuid::parse_str(generated.as_str()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert_eq!(generated.as_str(), id.hyphenated().to_string());
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs * 1000 + u64::from(nanos) / 1_000_000,
            u64::try_from(now.unix_micros() / 1000).unwrap()
        );
        assert_eq!(
            request_id(
                with("x-request-id", &"a".repeat(129)).get("x-request-id"),
                now
            )
            .as_str()
            .len(),
            36
        );
        let longest = "b".repeat(128);
        assert_eq!(
            request_id(with("x-request-id", &longest).get("x-request-id"), now).as_str(),
            longest
        );
        // Ids of the same instant differ, and carry that instant's milliseconds.
        let ids: std::collections::HashSet<RequestId> =
            (0..10_000).map(|_| request_id(None, now)).collect();
        assert_eq!(ids.len(), 10_000);
        let time = Timestamp::parse("2026-12-04T03:41:50.339943Z").unwrap();
        let id = uuid::Uuid::parse_str(request_id(None, time).as_str()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        let (secs, nanos) = id.get_timestamp().unwrap().to_unix();
        assert_eq!((secs, nanos), (time.unix() as u64, 339_000_000));
    }

    #[test]
    fn traceparent_validation() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id(with("traceparent", ok).get("traceparent")).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "garbage",
        ] {
            assert_eq!(
                trace_id(with("traceparent", bad).get("traceparent")),
                None,
                "{bad}"
            );
        }
        // future versions may append fields
        assert!(trace_id(
            with(
                "traceparent",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
            )
            .get("traceparent")
        )
        .is_some());
    }
}
