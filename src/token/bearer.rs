use http::HeaderMap;

/// What a request's `Authorization` header holds, per RFC 6750 §2.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BearerCredential<'a> {
    /// No `Authorization` header.
    Absent,
    /// `Bearer <b64token>`.
    Bearer(&'a str),
    /// A `Bearer` credential that breaks RFC 6750, with the reason.
    Malformed(&'static str),
    /// Another scheme (`Basic`, `DPoP`, ...).
    OtherScheme,
}

/// Reads the bearer credential of a request.
///
/// ```
/// use http::HeaderMap;
/// use oauth_audit::token::{bearer_from_headers, BearerCredential};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "bearer abc.def-ghi".parse().unwrap());
/// assert_eq!(bearer_from_headers(&headers), BearerCredential::Bearer("abc.def-ghi"));
/// headers.insert("authorization", "Bearer not a token".parse().unwrap());
/// assert!(matches!(bearer_from_headers(&headers), BearerCredential::Malformed(_)));
/// ```
pub fn bearer_from_headers(headers: &HeaderMap) -> BearerCredential<'_> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return BearerCredential::Absent;
    };
    let Ok(value) = value.to_str() else {
        return BearerCredential::Malformed("authorization header is not visible ASCII");
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return BearerCredential::OtherScheme;
    }
    if values.next().is_some() {
        return BearerCredential::Malformed("more than one authorization header");
    }
    let token = rest.trim_matches(' ');
    if token.is_empty() {
        return BearerCredential::Malformed("empty bearer token");
    }
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !valid {
        return BearerCredential::Malformed(
            "bearer token has characters outside RFC 6750 b64token",
        );
    }
    BearerCredential::Bearer(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> BearerCredential<'static> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("authorization", v.parse().unwrap());
        }
        let headers = Box::leak(Box::new(headers));
        bearer_from_headers(headers)
    }

    #[test]
    fn rfc6750_edge_cases() {
        assert_eq!(parse(&[]), BearerCredential::Absent);
        assert_eq!(parse(&["Bearer a.b.c"]), BearerCredential::Bearer("a.b.c"));
        assert_eq!(parse(&["BEARER tok=="]), BearerCredential::Bearer("tok=="));
        assert_eq!(
            parse(&["Basic dXNlcjpwYXNz"]),
            BearerCredential::OtherScheme
        );
        assert_eq!(parse(&["DPoP abc"]), BearerCredential::OtherScheme);
        for bad in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer ==",
            "Bearer a,b",
            "Bearer a=b",
        ] {
            assert!(
                matches!(parse(&[bad]), BearerCredential::Malformed(_)),
                "{bad}"
            );
        }
        assert!(matches!(
            parse(&["Bearer a", "Bearer b"]),
            BearerCredential::Malformed(_)
        ));
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer \xff").unwrap(),
        );
        assert!(matches!(
            bearer_from_headers(&headers),
            BearerCredential::Malformed(_)
        ));
    }
}
