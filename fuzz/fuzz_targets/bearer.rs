//! RFC 6750 `Authorization: Bearer` parsing on arbitrary header values.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use oauth_audit::token::{bearer_from_headers, BearerCredential};

fuzz_target!(|values: Vec<Vec<u8>>| {
    let mut headers = HeaderMap::new();
    for value in &values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(http::header::AUTHORIZATION, value);
        }
    }
    match bearer_from_headers(&headers) {
        BearerCredential::Absent => assert!(headers.is_empty()),
        BearerCredential::Bearer(token) => {
            // Only one Authorization header, scheme `Bearer`, and a b64token (RFC 6750 §2.1).
            assert_eq!(
                headers.get_all(http::header::AUTHORIZATION).iter().count(),
                1
            );
            let value = headers[http::header::AUTHORIZATION].as_bytes();
            assert!(value[..7].eq_ignore_ascii_case(b"bearer "));
            assert!(!token.is_empty());
            let body = token.trim_end_matches('=');
            assert!(body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)));
        }
        BearerCredential::Malformed(reason) => assert!(!reason.is_empty()),
        BearerCredential::OtherScheme => {}
    }
});
