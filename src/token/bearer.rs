use http::HeaderMap;

/// What a request's `Authorization` header holds, per RFC 6750 §2.1.
///
/// Its `Debug` shows a token's fingerprint, never the token, so a credential can be logged.
///
/// ```
/// use oauth_audit::token::BearerCredential;
///
/// let shown = format!("{:?}", BearerCredential::Bearer("2YotnFZFEjr1zCsicMWpAA"));
/// assert!(!shown.contains("2YotnFZFEjr1zCsicMWpAA"));
/// assert!(shown.starts_with("Bearer(sha256:"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
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

impl std::fmt::Debug for BearerCredential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BearerCredential::Absent => f.write_str("Absent"),
            BearerCredential::Bearer(token) => f
                .debug_tuple("Bearer")
                .field(&super::TokenFingerprint::of(token))
                .finish(),
            BearerCredential::Malformed(reason) => {
                f.debug_tuple("Malformed").field(reason).finish()
            }
            BearerCredential::OtherScheme => f.write_str("OtherScheme"),
        }
    }
}

/// The scheme an access token was presented with in `Authorization`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1): the token is bound to a key, and a `DPoP` proof header goes
    /// with it.
    DPoP,
}

impl Scheme {
    /// `Bearer` or `DPoP`, as written in `Authorization`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Bearer => "Bearer",
            Scheme::DPoP => "DPoP",
        }
    }
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
    read(headers, false).1
}

/// Reads the access token of a request presented with either scheme, `Bearer` or `DPoP`:
/// the same RFC 6750 rules apply to both credentials (RFC 9449 §7.1 uses `token68`, the same
/// characters). Another scheme is [`BearerCredential::OtherScheme`], with `Scheme::Bearer`.
///
/// ```
/// use http::HeaderMap;
/// use oauth_audit::token::{access_token_from_headers, BearerCredential, Scheme};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("authorization", "DPoP abc.def".parse().unwrap());
/// assert_eq!(
///     access_token_from_headers(&headers),
///     (Scheme::DPoP, BearerCredential::Bearer("abc.def"))
/// );
/// ```
pub fn access_token_from_headers(headers: &HeaderMap) -> (Scheme, BearerCredential<'_>) {
    read(headers, true)
}

fn read(headers: &HeaderMap, dpop: bool) -> (Scheme, BearerCredential<'_>) {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return (Scheme::Bearer, BearerCredential::Absent);
    };
    // Whatever their schemes: servers differ in which of several they read (the first, the
    // last), so a `Basic` header in front must not hide the bearer token behind it.
    if values.next().is_some() {
        return (
            Scheme::Bearer,
            BearerCredential::Malformed("more than one authorization header"),
        );
    }
    read_well_formed(value.as_bytes(), dpop).unwrap_or_else(|| read_value(value, dpop))
}

/// [`read`] for one header value, step by step.
fn read_value(value: &http::HeaderValue, dpop: bool) -> (Scheme, BearerCredential<'_>) {
    let Ok(value) = value.to_str() else {
        return (
            Scheme::Bearer,
            BearerCredential::Malformed("authorization header is not visible ASCII"),
        );
    };
    // RFC 9110 §11.4 separates the scheme by spaces; servers that split on any whitespace
    // also take a tab.
    let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case("dpop") {
        Scheme::DPoP
    } else {
        return (Scheme::Bearer, BearerCredential::OtherScheme);
    };
    let token = rest.trim_matches([' ', '\t']);
    if token.is_empty() {
        return (scheme, BearerCredential::Malformed("empty bearer token"));
    }
    let body = token.trim_end_matches('=');
    let valid = !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        });
    if !valid {
        return (
            scheme,
            BearerCredential::Malformed("bearer token has characters outside RFC 6750 b64token"),
        );
    }
    (scheme, BearerCredential::Bearer(token))
}

/// The bytes RFC 6750's `b64token` allows before its trailing `=`s.
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// Whether every byte is one [`B64TOKEN`] allows: sixteen at a time without a branch per
/// byte (a token is hundreds of bytes, and almost always well formed).
fn all_b64token(bytes: &[u8]) -> bool {
    let allowed = |chunk: &[u8]| {
        chunk
            .iter()
            .fold(true, |ok, b| ok & B64TOKEN[usize::from(*b)])
    };
    let mut chunks = bytes.chunks_exact(16);
    chunks.all(allowed) && allowed(chunks.remainder())
}

/// The common case in one pass: `Bearer` (or `DPoP`) and a well-formed token. `None` for
/// anything else, which [`read`] then takes apart step by step for the reason; what this
/// accepts, those steps accept the same way.
fn read_well_formed(value: &[u8], dpop: bool) -> Option<(Scheme, BearerCredential<'_>)> {
    let (scheme, token, body) = shape(value, dpop)?;
    if !all_b64token(body) {
        return None;
    }
    // Every byte is ASCII: the scheme's letters, blanks, the token's characters and `=`.
    let token = std::str::from_utf8(token).ok()?;
    Some((scheme, BearerCredential::Bearer(token)))
}

/// [`read_well_formed`] but for the token's characters: the scheme, the token with its
/// trailing `=`s, and the token without them (not empty).
fn shape(value: &[u8], dpop: bool) -> Option<(Scheme, &[u8], &[u8])> {
    let space = value.iter().position(|b| matches!(b, b' ' | b'\t'))?;
    let (scheme, rest) = value.split_at(space);
    let scheme = if scheme.eq_ignore_ascii_case(b"bearer") {
        Scheme::Bearer
    } else if dpop && scheme.eq_ignore_ascii_case(b"dpop") {
        Scheme::DPoP
    } else {
        return None;
    };
    let token = rest.trim_ascii_start().trim_ascii_end();
    let body_len = token.len() - token.iter().rev().take_while(|b| **b == b'=').count();
    let body = &token[..body_len];
    let blank = |b: &[u8]| b.iter().all(|b| matches!(b, b' ' | b'\t'));
    // `trim_ascii` also takes line breaks and form feeds, which `read` does not.
    let trimmed_blank = blank(&rest[..rest.len() - rest.trim_ascii_start().len()])
        && blank(&rest[rest.trim_ascii_end().len()..]);
    (!body.is_empty() && trimmed_blank).then_some((scheme, token, body))
}

/// The access token of the request's one `Authorization` header (either scheme) when the
/// header has the shape [`access_token_from_headers`] accepts in one pass, its characters
/// not checked: for a caller that knows this very token to be a b64token already (the
/// verification cache remembers it, see
/// [`TokenInspector::cached_b64token`](super::TokenInspector::cached_b64token)). With that
/// knowledge, `(scheme, BearerCredential::Bearer(token))` is what
/// [`access_token_from_headers`] would say; without it, ask that function.
pub(crate) fn well_shaped(authorization: Authorization<'_>) -> Option<(Scheme, &[u8])> {
    let (scheme, token, _) = shape(authorization.only()?.as_bytes(), true)?;
    Some((scheme, token))
}

/// A request's `Authorization` header as the request path reads it: its first value, and
/// whether that is its only one. One lookup in the header map serves every reader (the
/// DPoP check, the token's inspection), where each looked the name up again.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Authorization<'h> {
    first: Option<&'h http::HeaderValue>,
    alone: bool,
}

impl<'h> Authorization<'h> {
    /// The `Authorization` header of `headers`.
    pub(crate) fn of(headers: &'h HeaderMap) -> Self {
        let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
        let first = values.next();
        Authorization {
            first,
            alone: first.is_some() && values.next().is_none(),
        }
    }

    /// The first value, as `HeaderMap::get` gives it.
    pub(crate) fn first(self) -> Option<&'h http::HeaderValue> {
        self.first
    }

    /// The value, when the request has exactly one.
    pub(crate) fn only(self) -> Option<&'h http::HeaderValue> {
        self.first.filter(|_| self.alone)
    }
}

/// Whether `token` is an RFC 6750 `b64token`: allowed characters, then any `=`s.
pub(crate) fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && all_b64token(body.as_bytes())
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
        assert_eq!(
            parse(&["Bearer =="]),
            BearerCredential::Malformed("bearer token has characters outside RFC 6750 b64token")
        );
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
        // Another scheme in front does not hide a bearer token behind it.
        assert!(matches!(
            parse(&["Basic Zm9vOmJhcg==", "Bearer a"]),
            BearerCredential::Malformed(_)
        ));
        assert_eq!(parse(&["Bearer\ta.b"]), BearerCredential::Bearer("a.b"));
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

    mod prop {
        use super::*;
        use base64::Engine;
        use proptest::prelude::*;

        fn b64token_char(b: u8) -> bool {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        }

        /// What RFC 6750 §2.1 says of one header value, written the plain way.
        fn model(value: &str) -> BearerCredential<'_> {
            let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return BearerCredential::OtherScheme;
            }
            let token = rest.trim_matches(' ');
            let body = token.trim_end_matches('=');
            if !body.is_empty() && body.bytes().all(b64token_char) {
                BearerCredential::Bearer(token)
            } else {
                BearerCredential::Malformed("")
            }
        }

        fn same(a: BearerCredential<'_>, b: BearerCredential<'_>) -> bool {
            match (a, b) {
                (BearerCredential::Malformed(_), BearerCredential::Malformed(_)) => true,
                (a, b) => a == b,
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            #[test]
            fn bearer_parser_agrees_with_the_model(
                value in prop_oneof![
                    "[ -~]{0,64}",
                    "(Bearer|bearer|BEARER|Basic|DPoP) {1,3}[A-Za-z0-9._~+/=, -]{0,40}",
                ]
            ) {
                let mut headers = HeaderMap::new();
                let Ok(header) = http::HeaderValue::from_str(&value) else {
                    return Ok(());
                };
                headers.insert("authorization", header);
                let parsed = bearer_from_headers(&headers);
                prop_assert!(same(parsed, model(&value)), "{value:?}: {parsed:?}");
                if let BearerCredential::Bearer(token) = parsed {
                    // Idempotent: the token it found reads back as itself.
                    let mut again = HeaderMap::new();
                    again.insert("authorization", format!("Bearer {token}").parse().unwrap());
                    prop_assert_eq!(bearer_from_headers(&again), BearerCredential::Bearer(token));
                }
            }

            #[test]
            fn bearer_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
                let mut headers = HeaderMap::new();
                if let Ok(value) = http::HeaderValue::from_bytes(&bytes) {
                    headers.insert("authorization", value);
                }
                if let BearerCredential::Bearer(token) = bearer_from_headers(&headers) {
                    prop_assert!(!token.is_empty() && token.len() < bytes.len());
                }
            }

            /// The Basic parser (RFC 6749 §2.3.1), driven through the layer at `/revoke`:
            /// the client id it records is the one encoded, bounded, and the secret never
            /// appears.
            #[test]
            fn basic_credentials_give_the_client_and_never_the_secret(
                client_id in "[ -~]{1,40}",
                secret in "[A-Za-z0-9]{12,24}",
                garbage in proptest::collection::vec(any::<u8>(), 0..48),
            ) {
                let encoded: String =
                    form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
                let secret = format!("S3cr3t{secret}");
                let good = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{encoded}:{secret}"))
                );
                let bad = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(&garbage));
                let events = revoke_with(&[good, bad]);
                let recorded = events[0]["actor"]["client_id"].as_str().map(str::to_owned);
                let expected = crate::event::sanitize(&client_id, 256);
                prop_assert_eq!(recorded.as_deref(), Some(expected.as_str()));
                let all = serde_json::to_string(&events).unwrap();
                prop_assert!(!all.contains(&secret));
                if let Some(id) = events[1]["actor"]["client_id"].as_str() {
                    prop_assert!(id.len() <= 256);
                }
            }
        }

        /// Sends one `/revoke` request per `Authorization` value through the layer.
        fn revoke_with(authorizations: &[String]) -> Vec<serde_json::Value> {
            use tower::{Service, ServiceBuilder, ServiceExt};
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let memory = crate::writer::MemoryWriter::new();
                let auditor = crate::writer::Auditor::new(memory.clone());
                let mut service = ServiceBuilder::new()
                    .layer(crate::AuditLayer::new(auditor.clone()))
                    .service_fn(|req: http::Request<crate::RequestBody<String>>| async {
                        // A revocation endpoint reads its form, so the layer sees it too.
                        let _ = http_body_util::BodyExt::collect(req.into_body()).await;
                        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
                    });
                for authorization in authorizations {
                    let mut request = http::Request::post("/revoke")
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(String::from("token=abc"))
                        .unwrap();
                    if let Ok(value) = http::HeaderValue::from_str(authorization) {
                        request.headers_mut().insert("authorization", value);
                    }
                    let response = service.ready().await.unwrap().call(request).await.unwrap();
                    let _ = http_body_util::BodyExt::collect(response.into_body()).await;
                }
                auditor.shutdown().await;
                memory.json()
            })
        }
    }

    /// The one-pass reading takes what the step-by-step one takes, the same way, and leaves
    /// everything else to it.
    #[test]
    fn the_fast_path_agrees_with_the_rules() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        let value = prop_oneof![
            "(Bearer|bearer|BEARER|DPoP|dpop|Basic|Bearerx)[ \t]{0,3}[A-Za-z0-9._~+/=\\-]{0,12}[ \t]{0,2}",
            "(Bearer|DPoP)[ \t][ -~\t]{0,16}",
            "[ -~\t]{0,20}",
            // Long tokens, perhaps with one stray character anywhere among the chunks of
            // sixteen the fast path checks.
            "(Bearer|DPoP) [A-Za-z0-9._~+/\\-]{0,40}[ -~]?[A-Za-z0-9._~+/\\-]{0,40}={0,2}",
        ];
        TestRunner::new(Config::with_cases(4000))
            .run(&(value, any::<bool>()), |(value, dpop)| {
                let header = http::HeaderValue::from_str(&value).unwrap();
                if let Some(fast) = read_well_formed(header.as_bytes(), dpop) {
                    prop_assert_eq!(fast, read_value(&header, dpop), "{:?}", value);
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(
            read_well_formed(b"Bearer a.b-c~d+e/f==", false),
            Some((Scheme::Bearer, BearerCredential::Bearer("a.b-c~d+e/f==")))
        );
        assert_eq!(
            read_well_formed(b"DPoP \tabc \t", true),
            Some((Scheme::DPoP, BearerCredential::Bearer("abc")))
        );
    }
}
