//! The payload of a JWT a request carries as a parameter (an `id_token_hint`, a request
//! object), read without verifying it: what the request claims, for the record and for the
//! secrets it holds, never what it proves.

/// The claims of `jwt`'s payload, when it is a JWS in compact form (three parts) whose
/// payload is a JSON object; `None` otherwise (an encrypted JWT has five parts).
pub(crate) fn claims_of(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine;
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    #[cfg(test)]
    DECODED.with(|n| n.set(n.get() + 1));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    crate::json::object_from_slice(&bytes)
}

#[cfg(test)]
thread_local! {
    /// How many payloads [`claims_of`] decoded on this thread: tests count a request's.
    pub(crate) static DECODED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}
