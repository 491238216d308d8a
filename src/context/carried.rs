//! Which of the headers an audit record reads a request carries, found in one pass over its
//! names.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::forwarded::FORWARDING_HEADERS;

/// A header the layer reads from most requests, when there is one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Header {
    UserAgent,
    Traceparent,
    XRequestId,
    Dpop,
    XForwardedFor,
    Forwarded,
    /// Read only on protected routes, and only when a challenge could quote a cookie's value:
    /// its fields are kept until then (see `resource::request::Quotable`).
    Cookie,
}

impl Header {
    fn bit(self) -> u8 {
        1 << self as u8
    }

    fn name(self) -> HeaderName {
        match self {
            Header::UserAgent => http::header::USER_AGENT,
            Header::Traceparent => HeaderName::from_static("traceparent"),
            Header::XRequestId => HeaderName::from_static("x-request-id"),
            Header::Dpop => HeaderName::from_static("dpop"),
            Header::XForwardedFor => HeaderName::from_static("x-forwarded-for"),
            Header::Forwarded => http::header::FORWARDED,
            Header::Cookie => http::header::COOKIE,
        }
    }
}

/// Set when some forwarding header other than `X-Forwarded-For` and `Forwarded` (or the
/// header the trusted proxies are configured to write) is present.
const OTHER_FORWARDING: u8 = 1 << 7;

/// Which of the headers the layer reads a request carries.
///
/// Looking a name up costs about the same whether it is there or not (the name is hashed
/// and its slot probed), and most requests carry few of the headers an audit record reads:
/// a request id, a trace context, forwarding chains, a `DPoP` proof, cookies. One pass over
/// the names the request has (`HeaderMap::keys` yields each once) answers for all of them,
/// and only the headers present are looked up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Carried(u8);

impl Carried {
    /// The headers of `headers` the layer reads; `configured` is the name of the header the
    /// trusted proxies write the client's address into.
    pub(crate) fn of(headers: &HeaderMap, configured: &str) -> Self {
        let mut bits = 0;
        for name in headers.keys() {
            let name = name.as_str();
            bits |= match name {
                "user-agent" => Header::UserAgent.bit(),
                "traceparent" => Header::Traceparent.bit(),
                "x-request-id" => Header::XRequestId.bit(),
                "dpop" => Header::Dpop.bit(),
                "x-forwarded-for" => Header::XForwardedFor.bit(),
                "forwarded" => Header::Forwarded.bit(),
                "cookie" => Header::Cookie.bit(),
                _ if is_forwarding(name) => OTHER_FORWARDING,
                _ => 0,
            };
            // Whatever its name, even one of the above: it is recorded with the others.
            if name == configured {
                bits |= OTHER_FORWARDING;
            }
        }
        Carried(bits)
    }

    /// Every header counted as carried: the lookups all happen, as before this filter.
    #[cfg(test)]
    pub(crate) fn all() -> Self {
        Carried(u8::MAX)
    }

    /// The same, but for `header`.
    pub(crate) fn without(self, header: Header) -> Self {
        Carried(self.0 & !header.bit())
    }

    /// Whether the request has `header`.
    pub(crate) fn has(self, header: Header) -> bool {
        self.0 & header.bit() != 0
    }

    /// The first value of `header`, looked up only when the request has one.
    pub(crate) fn get(self, headers: &HeaderMap, header: Header) -> Option<&HeaderValue> {
        if self.has(header) {
            headers.get(header.name())
        } else {
            None
        }
    }

    /// The value of `header` when the request has exactly one line of it: a field that
    /// holds one value (`traceparent`) sent twice is ambiguous, and neither line is read.
    pub(crate) fn only(self, headers: &HeaderMap, header: Header) -> Option<&HeaderValue> {
        if !self.has(header) {
            return None;
        }
        let mut lines = headers.get_all(header.name()).into_iter();
        let first = lines.next()?;
        lines.next().is_none().then_some(first)
    }

    /// Whether some other forwarding header (or the configured one) is present.
    pub(crate) fn other_forwarding(self) -> bool {
        self.0 & OTHER_FORWARDING != 0
    }

    /// Whether any forwarding header is present: `X-Forwarded-For`, `Forwarded`, another
    /// one, or the configured one.
    pub(crate) fn any_forwarding(self) -> bool {
        self.other_forwarding() || self.has(Header::XForwardedFor) || self.has(Header::Forwarded)
    }
}

/// One of [`FORWARDING_HEADERS`]. Every name there starts with `x-` or `forwarded`, or ends
/// with `-ip` (a test holds the list to that), so the names of most headers are turned away
/// by a prefix before the list is searched.
pub(crate) fn is_forwarding(name: &str) -> bool {
    (name.starts_with("x-") || name.starts_with("forwarded") || name.ends_with("-ip"))
        && FORWARDING_HEADERS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(names: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for name in names {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        headers
    }

    const ALL: [Header; 7] = [
        Header::UserAgent,
        Header::Traceparent,
        Header::XRequestId,
        Header::Dpop,
        Header::XForwardedFor,
        Header::Forwarded,
        Header::Cookie,
    ];

    #[test]
    fn each_header_is_found_and_nothing_else_is() {
        for header in ALL {
            let name = header.name();
            let carried = Carried::of(&headers(&["host", name.as_str(), "accept"]), "x-real-ip");
            for other in ALL {
                assert_eq!(
                    carried.has(other),
                    other == header,
                    "{header:?} / {other:?}"
                );
            }
            assert!(!carried.other_forwarding());
            assert!(carried.get(&headers(&[name.as_str()]), header).is_some());
        }
        let none = Carried::of(&headers(&["host", "authorization"]), "x-forwarded-for");
        assert_eq!(none, Carried::default());
        assert!(none
            .get(&headers(&["user-agent"]), Header::UserAgent)
            .is_none());
    }

    #[test]
    fn only_one_line_of_a_field_is_read_as_its_value() {
        let one = headers(&["traceparent"]);
        let carried = Carried::of(&one, "x-forwarded-for");
        assert!(carried.only(&one, Header::Traceparent).is_some());
        let two = headers(&["traceparent", "traceparent"]);
        let carried = Carried::of(&two, "x-forwarded-for");
        assert!(carried.get(&two, Header::Traceparent).is_some());
        assert!(carried.only(&two, Header::Traceparent).is_none());
        assert!(carried.only(&two, Header::UserAgent).is_none());
    }

    #[test]
    fn the_names_are_the_ones_the_readers_use() {
        assert_eq!(Header::Dpop.name(), crate::dpop::DPOP);
        assert!(ALL.iter().all(|h| h.bit() != OTHER_FORWARDING));
    }

    #[test]
    fn every_forwarding_header_passes_the_prefix_filter() {
        for name in FORWARDING_HEADERS {
            assert!(is_forwarding(name), "{name}");
            if name != "x-forwarded-for" && name != "forwarded" {
                let carried = Carried::of(&headers(&[name]), "x-forwarded-for");
                assert!(carried.other_forwarding(), "{name}");
            }
        }
        assert!(!is_forwarding("x-request-id"));
        assert!(!is_forwarding("authorization"));
    }

    #[test]
    fn the_configured_header_counts_whatever_its_name() {
        let carried = Carried::of(&headers(&["fly-client-addr"]), "fly-client-addr");
        assert!(carried.other_forwarding());
        let carried = Carried::of(&headers(&["fly-client-addr"]), "x-forwarded-for");
        assert!(!carried.other_forwarding());
        // A name the layer reads for itself too.
        let carried = Carried::of(&headers(&["x-request-id"]), "x-request-id");
        assert!(carried.other_forwarding() && carried.has(Header::XRequestId));
    }
}
