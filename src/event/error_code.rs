//! The `error.code` values oauth-audit writes of its own accord.
//!
//! Other codes come from the traffic itself: an OAuth error body (`invalid_grant`, ...), a
//! `WWW-Authenticate` challenge (`invalid_token`, `insufficient_scope`), an [`ErrorInfo`]
//! that the application put in the response's extensions, a token verdict
//! ([`Verdict::as_str`](crate::token::Verdict::as_str)), or, at OAuth endpoints that answered
//! an error without saying which, `http_<status>`. Every value here is listed in
//! `docs/events.md`, and a test checks it.
//!
//! ```
//! use http::StatusCode;
//! use oauth_audit::event::error_code;
//!
//! assert_eq!(error_code::for_status(StatusCode::NOT_FOUND), Some(error_code::NOT_FOUND));
//! assert_eq!(error_code::for_status(StatusCode::OK), None);
//! ```
//!
//! [`ErrorInfo`]: super::ErrorInfo

use http::StatusCode;

/// A protected route answered `401` without a `WWW-Authenticate` error.
pub const UNAUTHORIZED: &str = "unauthorized";
/// A protected route answered `403` without a `WWW-Authenticate` error.
pub const FORBIDDEN: &str = "forbidden";
/// `400`.
pub const BAD_REQUEST: &str = "bad_request";
/// `404`.
pub const NOT_FOUND: &str = "not_found";
/// `405`.
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
/// `408`.
pub const REQUEST_TIMEOUT: &str = "request_timeout";
/// `409`.
pub const CONFLICT: &str = "conflict";
/// `413`.
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
/// `415`.
pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
/// `422`.
pub const UNPROCESSABLE_CONTENT: &str = "unprocessable_content";
/// `429`.
pub const TOO_MANY_REQUESTS: &str = "too_many_requests";
/// Any other `4xx`.
pub const CLIENT_ERROR: &str = "client_error";
/// `500`.
pub const INTERNAL_SERVER_ERROR: &str = "internal_server_error";
/// `501`.
pub const NOT_IMPLEMENTED: &str = "not_implemented";
/// `502`.
pub const BAD_GATEWAY: &str = "bad_gateway";
/// `503`.
pub const SERVICE_UNAVAILABLE: &str = "service_unavailable";
/// `504`.
pub const GATEWAY_TIMEOUT: &str = "gateway_timeout";
/// Any other `5xx`.
pub const SERVER_ERROR: &str = "server_error";
/// `oauth-audit proxy`: the upstream could not be connected to.
pub const UPSTREAM_UNREACHABLE: &str = "upstream_unreachable";
/// `oauth-audit proxy`: the upstream connection failed during the exchange.
pub const UPSTREAM_FAILED: &str = "upstream_failed";
/// `oauth-audit proxy`: the upstream's TLS certificate was refused.
pub const UPSTREAM_TLS_FAILED: &str = "upstream_tls_failed";
/// A request refused with `400` because servers may read its path differently.
pub const AMBIGUOUS_PATH: &str = "ambiguous_path";
/// A request refused with `400` because it asked to be treated as another method.
pub const METHOD_OVERRIDE: &str = "method_override";
/// `oauth-audit proxy`: a request head its HTTP parser refused, or a request body that
/// could not be read (malformed, or broken off by the client) (`400`).
pub const MALFORMED_REQUEST: &str = "malformed_request";
/// `oauth-audit proxy`: a request head too large to read (`431`).
pub const REQUEST_HEADER_FIELDS_TOO_LARGE: &str = "request_header_fields_too_large";
/// `oauth-audit proxy`: a request target too long to read (`414`).
pub const URI_TOO_LONG: &str = "uri_too_long";
/// `oauth-audit proxy`: a request for a host it does not answer for (`421`).
pub const MISDIRECTED_REQUEST: &str = "misdirected_request";

/// Every code above.
pub const ALL: &[&str] = &[
    UNAUTHORIZED,
    FORBIDDEN,
    BAD_REQUEST,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    REQUEST_TIMEOUT,
    CONFLICT,
    PAYLOAD_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    UNPROCESSABLE_CONTENT,
    TOO_MANY_REQUESTS,
    CLIENT_ERROR,
    INTERNAL_SERVER_ERROR,
    NOT_IMPLEMENTED,
    BAD_GATEWAY,
    SERVICE_UNAVAILABLE,
    GATEWAY_TIMEOUT,
    SERVER_ERROR,
    UPSTREAM_UNREACHABLE,
    UPSTREAM_FAILED,
    UPSTREAM_TLS_FAILED,
    AMBIGUOUS_PATH,
    METHOD_OVERRIDE,
    MALFORMED_REQUEST,
    REQUEST_HEADER_FIELDS_TOO_LARGE,
    URI_TOO_LONG,
    MISDIRECTED_REQUEST,
];

/// The code of an error status on a protected route; `None` below 400.
pub fn for_status(status: StatusCode) -> Option<&'static str> {
    Some(match status.as_u16() {
        400 => BAD_REQUEST,
        401 => UNAUTHORIZED,
        403 => FORBIDDEN,
        404 => NOT_FOUND,
        405 => METHOD_NOT_ALLOWED,
        408 => REQUEST_TIMEOUT,
        409 => CONFLICT,
        413 => PAYLOAD_TOO_LARGE,
        415 => UNSUPPORTED_MEDIA_TYPE,
        422 => UNPROCESSABLE_CONTENT,
        429 => TOO_MANY_REQUESTS,
        500 => INTERNAL_SERVER_ERROR,
        501 => NOT_IMPLEMENTED,
        502 => BAD_GATEWAY,
        503 => SERVICE_UNAVAILABLE,
        504 => GATEWAY_TIMEOUT,
        _ if status.is_client_error() => CLIENT_ERROR,
        _ if status.is_server_error() => SERVER_ERROR,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::ALL;
    use crate::token::Verdict;

    fn documented(doc: &str, code: &str) -> bool {
        doc.contains(&format!("`{code}`"))
    }

    /// String literals written straight into an error code (`code: "..."`), which would
    /// bypass the constants of this module.
    fn literal_codes(dir: &Path, found: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                literal_codes(&path, found);
                continue;
            }
            // Tests write codes as a server sends them (`invalid_grant`); only the code
            // before a file's tests writes events of its own.
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|name| name == "tests.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for line in text.lines() {
                // A file's test module, at the top level, comes last.
                if line == "#[cfg(test)]" {
                    break;
                }
                let line = line.trim();
                if line.starts_with("//") {
                    continue;
                }
                let compact: String = line.split_whitespace().collect();
                for marker in ["code:\"", "code=\"", "code:format!(\""] {
                    for (at, _) in compact.match_indices(marker) {
                        let rest = &compact[at + marker.len()..];
                        let literal = rest.split('"').next().unwrap_or_default();
                        found.push((path.display().to_string(), literal.to_owned()));
                    }
                }
            }
        }
    }

    #[test]
    fn every_error_code_the_code_writes_is_documented() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("docs/events.md")).unwrap();
        for code in ALL {
            assert!(
                documented(&doc, code),
                "error code `{code}` is not in docs/events.md"
            );
        }
        for verdict in Verdict::ALL {
            assert!(
                documented(&doc, verdict.as_str()),
                "verdict `{}` is not in docs/events.md",
                verdict.as_str()
            );
        }
        let mut found = Vec::new();
        literal_codes(&root.join("src"), &mut found);
        literal_codes(&root.join("cli/src"), &mut found);
        for (file, literal) in found {
            let ok = literal == "http_{}" || documented(&doc, &literal);
            assert!(
                ok,
                "{file} writes the error code {literal:?}, which docs/events.md does not list"
            );
        }
    }
}
