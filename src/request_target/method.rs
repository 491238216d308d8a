use http::{HeaderMap, Method};

/// Headers with which clients ask a server to treat a request as another method.
///
/// Besides the three override spellings that web frameworks read (`X-HTTP-Method-Override`:
/// Express's method-override, Rack, ASP.NET Core, Slim, gorilla/handlers; `X-HTTP-Method`:
/// OData services; `X-Method-Override`), the headers with which forward-auth setups tell an
/// authorization service the method of the request it decides on: `X-Forwarded-Method`
/// (sent by Traefik's `forwardAuth` and Caddy's `forward_auth`, read by Authelia's
/// forward-auth endpoint) and `X-Original-Method` (set in nginx `auth_request` and HAProxy
/// setups, read by Authelia's auth-request endpoint). An upstream behind such a service
/// decides on the method the header names, not on the request line's.
pub const METHOD_OVERRIDE_HEADERS: [&str; 5] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-forwarded-method",
    "x-original-method",
];

/// The query parameter with which clients ask a server to treat a request as another method.
pub const METHOD_OVERRIDE_PARAM: &str = "_method";

/// The query parameter Plack's `MethodOverride` middleware (Perl) reads by default for the
/// same purpose.
pub const TUNNELED_METHOD_PARAM: &str = "x-tunneled-method";

/// Whether `a` and `b` name the same method to a server that ignores case.
///
/// RFC 9110 §9.1 makes method names case-sensitive, but many servers upper-case them, so a
/// rule for `DELETE` must also see `delete`.
///
/// ```
/// use oauth_audit::request_target::same_method;
///
/// assert!(same_method("delete", "DELETE"));
/// assert!(!same_method("POST", "DELETE"));
/// ```
pub fn same_method(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The methods a request asks to be treated as instead of `method`: the values of the
/// [`METHOD_OVERRIDE_HEADERS`] and of every [`METHOD_OVERRIDE_PARAM`] or
/// [`TUNNELED_METHOD_PARAM`] query parameter that name another method (case ignored).
/// Empty when nothing overrides the method.
///
/// A parameter counts under the name PHP gives it: PHP drops leading spaces from a
/// parameter's name, ends it at a NUL byte (it reads the decoded name as a C string) and
/// turns `.`, ` ` and `[` into `_`, so frameworks on PHP (Laravel, Symfony) take
/// `?.method=DELETE` and `?_method%00=DELETE` for `_method`. Parameters are separated by `;`
/// as well as `&`, as Perl's parsers (Plack, CGI.pm) separate them:
/// `?a=1;x-tunneled-method=DELETE`.
///
/// A `_method` field in a form body is not seen: reading it would mean buffering the body.
///
/// ```
/// use http::{HeaderMap, Method};
/// use oauth_audit::request_target::method_overrides;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-http-method-override", "DELETE".parse().unwrap());
/// assert_eq!(method_overrides(&Method::POST, &headers, None), ["DELETE"]);
/// assert_eq!(method_overrides(&Method::POST, &HeaderMap::new(), Some("_method=put")), ["put"]);
/// assert!(method_overrides(&Method::GET, &HeaderMap::new(), Some("_method=GET")).is_empty());
/// ```
pub fn method_overrides(method: &Method, headers: &HeaderMap, query: Option<&str>) -> Vec<String> {
    // Most requests carry none of them: one look at the names present (each name once)
    // spares parsing and looking up each of the names. Every one starts with `x-` (a test
    // holds the list to that), so the names of most headers are turned away by their prefix.
    let any_header = headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-") && METHOD_OVERRIDE_HEADERS.contains(&name)
    });
    let from_headers = METHOD_OVERRIDE_HEADERS
        .iter()
        .filter(|_| any_header)
        .flat_map(|name| headers.get_all(*name))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).trim().to_owned());
    let query = query.map(|q| {
        if q.contains(';') {
            std::borrow::Cow::Owned(q.replace(';', "&"))
        } else {
            std::borrow::Cow::Borrowed(q)
        }
    });
    let from_query = query
        .iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .filter(|(key, _)| is_override_param(key))
        .map(|(_, value)| value.trim().to_owned());
    let mut overrides: Vec<String> = Vec::new();
    for name in from_headers.chain(from_query) {
        let new = !same_method(&name, method.as_str())
            && !overrides.iter().any(|seen| same_method(seen, &name));
        if new {
            overrides.push(name);
        }
    }
    overrides
}

/// Whether a query parameter named `key` is [`METHOD_OVERRIDE_PARAM`], as written or as PHP
/// renames it (leading spaces dropped; cut at a NUL byte; `.`, ` ` and `[` read as `_`), or
/// [`TUNNELED_METHOD_PARAM`], case ignored.
fn is_override_param(key: &str) -> bool {
    if key.eq_ignore_ascii_case(TUNNELED_METHOD_PARAM) {
        return true;
    }
    let key = key.trim_start_matches(' ');
    let key = key.split('\0').next().unwrap_or(key);
    key.len() == METHOD_OVERRIDE_PARAM.len()
        && key
            .bytes()
            .map(|b| match b {
                b'.' | b' ' | b'[' => b'_',
                b => b.to_ascii_lowercase(),
            })
            .eq(METHOD_OVERRIDE_PARAM.bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_override_spelling_is_found_once() {
        let mut headers = HeaderMap::new();
        headers.append("x-http-method", "delete".parse().unwrap());
        headers.append("X-Method-Override", "DELETE".parse().unwrap());
        headers.append("x-http-method-override", "PATCH".parse().unwrap());
        let found = method_overrides(
            &Method::POST,
            &headers,
            Some("a=1&_METHOD=put&_method=post"),
        );
        assert_eq!(found, ["PATCH", "delete", "put"]);
        // The names PHP reads as `_method`, and `[method`, which it drops (the name before
        // its `[` is empty), found all the same: refusing it costs nothing.
        for query in [
            ".method=DELETE",
            "%2Emethod=DELETE",
            "+.method=DELETE",
            " _method=DELETE",
            "[method=DELETE",
            "_METHOD=DELETE",
        ] {
            assert_eq!(
                method_overrides(&Method::POST, &HeaderMap::new(), Some(query)),
                ["DELETE"],
                "{query}"
            );
        }
        // Plack's parameter, and parameters separated by `;` as Perl's parsers read them.
        for query in [
            "x-tunneled-method=DELETE",
            "X-Tunneled-Method=DELETE",
            "a=1;x-tunneled-method=DELETE",
            "a=1;_method=DELETE",
        ] {
            assert_eq!(
                method_overrides(&Method::POST, &HeaderMap::new(), Some(query)),
                ["DELETE"],
                "{query}"
            );
        }
        for query in [
            "method=DELETE",
            "tunneled-method=DELETE",
            "__method=DELETE",
            "_method_=DELETE",
            "x_method=DELETE",
        ] {
            assert!(
                method_overrides(&Method::POST, &HeaderMap::new(), Some(query)).is_empty(),
                "{query}"
            );
        }
        assert!(
            method_overrides(&Method::POST, &HeaderMap::new(), Some("method=DELETE")).is_empty()
        );
        assert!(method_overrides(&Method::POST, &HeaderMap::new(), None).is_empty());
    }

    /// PHP reads a parameter's name as a C string: it ends at a NUL byte, so that
    /// `?_method%00=DELETE` and `?_method%00x=DELETE` are `_method=DELETE` to Laravel and
    /// Symfony.
    #[test]
    fn a_parameter_name_ends_at_a_nul_byte_as_php_reads_it() {
        for query in [
            "_method%00=DELETE",
            "_method%00x=DELETE",
            "%20.method%00[]=DELETE",
            "a=1;_method%00=DELETE",
        ] {
            assert!(
                !method_overrides(&Method::POST, &HeaderMap::new(), Some(query)).is_empty(),
                "{query}"
            );
        }
        // Whatever follows the NUL is no part of the name PHP sees.
        for query in [
            "%00_method=DELETE",
            "x%00_method=DELETE",
            "_metho%00d=DELETE",
        ] {
            assert!(
                method_overrides(&Method::POST, &HeaderMap::new(), Some(query)).is_empty(),
                "{query}"
            );
        }
    }

    #[test]
    fn every_override_header_starts_with_x() {
        assert!(METHOD_OVERRIDE_HEADERS
            .iter()
            .all(|name| name.starts_with("x-") && *name == name.to_ascii_lowercase()));
    }

    #[test]
    fn the_method_headers_of_forward_auth_setups_are_overrides() {
        for name in ["X-Forwarded-Method", "x-original-method"] {
            let mut headers = HeaderMap::new();
            headers.append(name, "DELETE".parse().unwrap());
            assert_eq!(
                method_overrides(&Method::POST, &headers, None),
                ["DELETE"],
                "{name}"
            );
            // A proxy in front that states the request's own method overrides nothing.
            assert!(
                method_overrides(&Method::DELETE, &headers, None).is_empty(),
                "{name}"
            );
        }
    }
}
