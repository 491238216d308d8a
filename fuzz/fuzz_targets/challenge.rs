//! `WWW-Authenticate` challenges as an upstream may answer them (echoing anything).
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use oauth_audit::fuzzing::read_bearer_challenge;

fuzz_target!(|values: Vec<Vec<u8>>| {
    let mut headers = HeaderMap::new();
    for value in &values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(http::header::WWW_AUTHENTICATE, value);
        }
    }
    if let Some((error, description)) = read_bearer_challenge(&headers) {
        for field in [error, description].into_iter().flatten() {
            assert!(field.len() <= 2048, "challenge fields are bounded");
            assert!(
                !field.chars().any(char::is_control),
                "control characters are escaped"
            );
        }
    }
});
