//! Request and trace identifiers.

use http::{HeaderMap, HeaderName};

const MAX_REQUEST_ID_LEN: usize = 128;
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The request's id, as its audit event records it (`request_id`: the request's own
/// `x-request-id` when it is a sane identifier, else a generated UUIDv7). The layer puts it
/// in the request's extensions, for handlers (with Axum, `Extension<RequestId>`), and by
/// default in the response's `x-request-id` header when the response has none (see
/// [`AuditLayerBuilder::request_id_header`](crate::AuditLayerBuilder::request_id_header)).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub(crate) String);

impl RequestId {
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `x-request-id` header when it is a sane identifier (visible ASCII, at most 128
/// bytes), else a fresh UUIDv7.
pub(crate) fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(X_REQUEST_ID)
        .map(|v| v.as_bytes())
        .filter(|v| {
            !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.iter().all(u8::is_ascii_graphic)
        })
        .and_then(|v| std::str::from_utf8(v).ok())
        .map_or_else(generated_id, str::to_owned)
}

/// A new UUIDv7, hyphenated: written into a buffer of its exact length, not through
/// `Display`, which grows a `String` piece by piece.
fn generated_id() -> String {
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    uuid::Uuid::now_v7()
        .hyphenated()
        .encode_lower(&mut text)
        .to_owned()
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), when valid.
pub(crate) fn trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?.trim();
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

    fn with(name: &'static str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn request_id_from_header_or_generated() {
        assert_eq!(request_id(&with("x-request-id", "abc-123")), "abc-123");
        let generated = request_id(&with("x-request-id", "has space"));
        assert_eq!(generated.len(), 36);
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()));
        assert_eq!(
            request_id(&with("x-request-id", &"a".repeat(129))).len(),
            36
        );
    }

    #[test]
    fn traceparent_validation() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            trace_id(&with("traceparent", ok)).as_deref(),
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
            assert_eq!(trace_id(&with("traceparent", bad)), None, "{bad}");
        }
        // future versions may append fields
        assert!(trace_id(&with(
            "traceparent",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
        ))
        .is_some());
    }
}
