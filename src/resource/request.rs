//! What a protected route's request presented in `Authorization` (or, without one, in the
//! query's `access_token`), inspected on arrival.

use std::borrow::Cow;
use std::sync::Arc;

use http::{HeaderMap, Method, Uri};

use super::Presentation;
use crate::context::{Carried, Header};
use crate::dpop::{DpopVerifier, ProofCheck, ProofUse};
use crate::event::Secrets;
use crate::mtls::PresentedCertificate;
use crate::token::bearer::Authorization;
use crate::token::{
    access_token_from_headers, BearerCredential, InspectedToken, Probe, RevokedTokens, Scheme,
    TokenFingerprint, TokenFormat, TokenInspector, Verdict,
};

/// The bearer token a request presented, as the layer inspected it.
///
/// The layer inserts it into the request's extensions, so handlers (and
/// [`RequiredScopes`](crate::RequiredScopes)) see the same verdict and claims as the audit
/// record, without verifying the token a second time.
#[derive(Clone, Debug)]
pub struct AuditedToken(pub Arc<InspectedToken>);

/// What a request presented in `Authorization`.
#[derive(Debug)]
pub(crate) enum Presented {
    Nothing,
    /// Another scheme (`Basic`, ...): not a bearer token.
    OtherScheme,
    /// An `Authorization: Bearer` header that does not follow RFC 6750.
    Malformed {
        reason: &'static str,
        fingerprint: Option<TokenFingerprint>,
        /// The fingerprint of what followed `Bearer `, to scrub it from a challenge.
        credential: Option<TokenFingerprint>,
        /// What followed `Bearer `, when it has characters a word never has (`id|secret`,
        /// `v2:...`): the scrub finds words by their fingerprints, and such a credential is
        /// no one word, so it is looked for as it is.
        quoted: Option<QuotedCredential>,
    },
    Token(Arc<InspectedToken>),
}

/// The `access_token` of a protected route's query (RFC 6750 §2.3), percent-decoded as a
/// form value is; read only for a request without any `Authorization` field. Its `Debug`
/// shows nothing of the token.
pub(crate) enum QueryToken<'q> {
    /// The parameter, sent once.
    One(Cow<'q, str>),
    /// The parameter sent more than once: its first value. Which one the server reads is
    /// anyone's guess, so none is believed.
    Repeated(Cow<'q, str>),
}

impl std::fmt::Debug for QueryToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            QueryToken::One(_) => "One(..)",
            QueryToken::Repeated(_) => "Repeated(..)",
        })
    }
}

/// A malformed credential's text, kept until the response is read: its `Debug` shows
/// nothing of it.
pub(crate) struct QuotedCredential(Box<str>);

impl std::fmt::Debug for QuotedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QuotedCredential(..)")
    }
}

/// A protected route's request, as far as its bearer token goes.
#[derive(Debug)]
pub(crate) struct ResourceRequest {
    presented: Presented,
    /// Whether what was presented came in the query's `access_token` ([`QueryToken`]), not
    /// in `Authorization`: recorded as the header's token would be, never handed to the
    /// handler or to enforcement.
    in_query: bool,
    presentation: Presentation,
    /// Only for the requests that carry such text: boxed, so that the rest pay a word.
    quotable: Option<Box<Quotable>>,
}

/// What else of a protected route's request head a challenge could quote back, kept until
/// the response is read (the values share the request's bytes; nothing is copied): the
/// `Authorization` values when they were not one bearer token (another scheme such as
/// `Basic`, a malformed credential, several fields), the query string when it may hold a
/// secret (an `access_token`, RFC 6750 §2.3, or a token sent as `?token=`, a code, a client
/// secret, a long value of an unknown parameter: as an endpoint's query), the `DPoP` proofs
/// (RFC 9449 §4.2: a challenge refusing one may quote a part of it), and the `Cookie`
/// fields. Read only when a response carries a challenge (the cookies' values are parsed
/// then, not on arrival); its `Debug` shows nothing of them.
#[derive(Default)]
pub(crate) struct Quotable {
    /// The `Authorization` values not read as one bearer token.
    pub(crate) authorization: Vec<http::HeaderValue>,
    /// The request's path and query, when it has a query.
    pub(crate) query: Option<http::uri::PathAndQuery>,
    /// The `DPoP` fields (RFC 9449 §4.3 allows one).
    dpop: Fields,
    /// The `Cookie` fields (HTTP/2 clients send a field per cookie).
    cookies: Fields,
}

impl Quotable {
    /// Every `Cookie` field the request carried, in order.
    pub(crate) fn cookies(&self) -> impl Iterator<Item = &http::HeaderValue> {
        self.cookies.iter()
    }

    /// Every `DPoP` field the request carried, in order.
    pub(crate) fn dpop_proofs(&self) -> impl Iterator<Item = &http::HeaderValue> {
        self.dpop.iter()
    }
}

/// The fields of one header name, as they came: the first held here, not in a vector of its
/// own, since a request nearly always has one; a vector only for the others.
#[derive(Default)]
struct Fields {
    first: Option<http::HeaderValue>,
    more: Vec<http::HeaderValue>,
}

impl Fields {
    /// The fields named `name` in `headers`.
    fn of(headers: &http::HeaderMap, name: impl http::header::AsHeaderName) -> Self {
        let mut fields = headers.get_all(name).iter();
        let first = fields.next().cloned();
        let more = match fields.next() {
            None => Vec::new(),
            Some(second) => std::iter::once(second).chain(fields).cloned().collect(),
        };
        Fields { first, more }
    }

    fn iter(&self) -> impl Iterator<Item = &http::HeaderValue> {
        self.first.iter().chain(&self.more)
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.more.len()
    }
}

impl std::fmt::Debug for Quotable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quotable")
            .field("authorization", &self.authorization.len())
            .field("query", &self.query.is_some())
            .field("dpop", &self.dpop.len())
            .field("cookies", &self.cookies.len())
            .finish()
    }
}

/// What inspecting a protected route's request needs.
pub(crate) struct Inspectors<'a> {
    pub(crate) tokens: &'a TokenInspector,
    pub(crate) revoked: &'a RevokedTokens,
    pub(crate) dpop: &'a DpopVerifier,
}

/// The check of a request's DPoP proof, when there is one to check: a `DPoP` header (or the
/// `DPoP` scheme) with an access token presented, or any `DPoP` header at the token endpoint.
/// Checked once per request, whatever roles the path may have; never for a proof that comes
/// without a token elsewhere, which would cost a signature check and prove nothing.
pub(crate) fn proof_of(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    authorization: Authorization<'_>,
    carried: Carried,
    dpop: &DpopVerifier,
    token_endpoint: bool,
) -> Option<ProofCheck> {
    // Most requests carry neither: decided without reading the token itself, which
    // `ResourceRequest::inspect` reads once more.
    let dpop_scheme = authorization
        .first()
        .and_then(|v| v.as_bytes().get(..5))
        .is_some_and(|p| p[..4].eq_ignore_ascii_case(b"dpop") && matches!(p[4], b' ' | b'\t'));
    if !dpop_scheme && !carried.has(Header::Dpop) {
        return None;
    }
    let (_, credential) = access_token_from_headers(headers);
    let token = match credential {
        BearerCredential::Bearer(token) => Some(token),
        _ => None,
    };
    (token.is_some() || token_endpoint).then(|| dpop.check(method, uri, headers, token))
}

/// How the request's `Authorization` header was read.
enum Read<'h> {
    /// A token the verification cache has seen and vouches for: what
    /// [`access_token_from_headers`] would read as `Bearer` (its bytes are those of a
    /// token checked when it was cached), with its inspection.
    Seen(Scheme, Arc<InspectedToken>),
    /// Anything else, read by the bearer rules; with the cache probe of a well-shaped
    /// header, which inspecting its token reuses.
    Rules(Scheme, BearerCredential<'h>, Option<Probe<'h>>),
}

/// Reads the request's access token: a token seen before (nearly every request) is not
/// checked byte by byte again, nor made a `&str`.
fn credential<'h>(
    headers: &'h HeaderMap,
    authorization: Authorization<'h>,
    inspector: &TokenInspector,
    now: i64,
) -> Read<'h> {
    let probe = match crate::token::bearer::well_shaped(authorization) {
        Some((scheme, token)) => match inspector.cached_b64token(token, now) {
            Ok(seen) => return Read::Seen(scheme, seen),
            Err(probe) => Some(probe),
        },
        None => None,
    };
    let (scheme, credential) = access_token_from_headers(headers);
    Read::Rules(scheme, credential, probe)
}

impl ResourceRequest {
    /// Inspects the request's token; `proof` is the check of its DPoP proof
    /// ([`proof_of`]), recorded as used here when the token is valid and bound to the
    /// proof's key. The token's validity window is judged at `arrival`, the request's
    /// arrival as its event records it (no second reading of the clock). `carried` says
    /// whether the request has cookies to keep for a challenge that could quote them.
    /// `in_query` is the query's `access_token`, read only when the request has no
    /// `Authorization` field (the caller knows; a request that has one never pays for it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn inspect(
        headers: &HeaderMap,
        uri: &Uri,
        authorization: Authorization<'_>,
        in_query: Option<QueryToken<'_>>,
        carried: Carried,
        inspectors: Inspectors<'_>,
        proof: Option<ProofCheck>,
        certificate: Option<PresentedCertificate>,
        arrival: crate::event::Timestamp,
    ) -> Self {
        let now = arrival.unix();
        let Inspectors {
            tokens: inspector,
            revoked,
            dpop,
        } = inspectors;
        // The trail's own record of a revocation beats any cached verification.
        let unless_revoked = |seen: Arc<InspectedToken>| {
            if seen.is_in(revoked) {
                Arc::new(InspectedToken {
                    verdict: Verdict::Revoked,
                    ..(*seen).clone()
                })
            } else {
                seen
            }
        };
        // Set when the token came in the query (RFC 6750 §2.3), read only without a header.
        let mut from_query = false;
        let (scheme, presented) = match credential(headers, authorization, inspector, now) {
            Read::Seen(scheme, seen) => (scheme, Presented::Token(unless_revoked(seen))),
            Read::Rules(scheme, credential, probe) => (
                scheme,
                match credential {
                    // RFC 6750 §2.3: the token in the query instead. Inspected as the
                    // header's would be (the same cache, the same revocations), so that the
                    // record names whom the upstream served.
                    BearerCredential::Absent => match in_query {
                        None => Presented::Nothing,
                        Some(query) => {
                            from_query = true;
                            match query {
                                QueryToken::One(token) => Presented::Token(unless_revoked(
                                    inspector.inspect_probed(&token, None, None, now),
                                )),
                                // Fingerprinted as several `Authorization` fields are: by the
                                // value a server reading the first takes.
                                QueryToken::Repeated(first) => Presented::Malformed {
                                    reason: "access_token sent more than once in the query",
                                    fingerprint: Some(TokenFingerprint::of(&first)),
                                    credential: None,
                                    // The query is kept to scrub whenever it names an
                                    // `access_token`.
                                    quoted: None,
                                },
                            }
                        }
                    },
                    BearerCredential::OtherScheme => Presented::OtherScheme,
                    BearerCredential::Malformed(reason) => {
                        let value = headers
                            .get(http::header::AUTHORIZATION)
                            .map(|v| String::from_utf8_lossy(v.as_bytes()));
                        let credential = value
                            .as_deref()
                            .and_then(|v| v.trim().split_once(' '))
                            .map(|(_, c)| c.trim());
                        Presented::Malformed {
                            reason,
                            fingerprint: value.as_deref().map(TokenFingerprint::of),
                            credential: credential.map(TokenFingerprint::of),
                            quoted: credential
                                .filter(|c| !c.bytes().all(crate::event::is_word_byte))
                                .map(|c| QuotedCredential(c.into())),
                        }
                    }
                    // The bearer reader checked its characters: a `b64token`.
                    BearerCredential::Bearer(token) => Presented::Token(unless_revoked(
                        inspector.inspect_probed(token, probe, Some(true), now),
                    )),
                },
            ),
        };
        // One bearer token read is scrubbed by its fingerprint; anything else is kept.
        let authorization = matches!(
            presented,
            Presented::OtherScheme | Presented::Malformed { .. }
        );
        let query = uri
            .query()
            .is_some_and(crate::secret_params::may_hold_secrets);
        // Known from the pass over the names the request's context made: a request without
        // cookies looks nothing up.
        let cookies = carried.has(Header::Cookie);
        let dpop_proofs = carried.has(Header::Dpop);
        let quotable = (authorization || query || cookies || dpop_proofs).then(|| {
            Box::new(Quotable {
                authorization: if authorization {
                    headers
                        .get_all(http::header::AUTHORIZATION)
                        .iter()
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                },
                query: uri.path_and_query().filter(|_| query).cloned(),
                dpop: if dpop_proofs {
                    Fields::of(headers, crate::dpop::DPOP)
                } else {
                    Fields::default()
                },
                cookies: if cookies {
                    Fields::of(headers, http::header::COOKIE)
                } else {
                    Fields::default()
                },
            })
        });
        let mut request = ResourceRequest {
            presented,
            in_query: from_query,
            presentation: Presentation {
                scheme,
                proof,
                certificate,
            },
            quotable,
        };
        request.record_proof(dpop);
        request
    }

    /// Records the DPoP proof as used (and makes it `replayed` when it was used before)
    /// once the token is known to be valid and bound to the proof's key: on arrival for a
    /// JWT, after its resolution for an opaque token. Only proofs that prove something are
    /// remembered, so proofs made with keys of no token cannot crowd them out. A proof is
    /// recorded at most once (the check gives up its identity when recorded).
    fn record_proof(&mut self, dpop: &DpopVerifier) {
        if let (Presented::Token(token), Some(check)) =
            (&self.presented, self.presentation.proof.as_mut())
        {
            if token.verdict == Verdict::Valid
                && token.claims.cnf_jkt.is_some()
                && token.claims.cnf_jkt == check.jkt
            {
                dpop.record_use(check, ProofUse::Resource);
            }
        }
    }

    /// How the token was presented, for the request's extensions.
    pub(crate) fn presentation(&self) -> &Presentation {
        &self.presentation
    }

    /// The presented token when it is opaque and not known to be revoked: a resolver may
    /// know its claims. Not one sent in the query: its resolution would hand it to the
    /// handler as [`AuditedToken`].
    pub(crate) fn opaque_token(&self) -> Option<&Arc<InspectedToken>> {
        match &self.presented {
            Presented::Token(token)
                if token.format == TokenFormat::Opaque
                    && token.verdict != Verdict::Revoked
                    && !self.in_query =>
            {
                Some(token)
            }
            _ => None,
        }
    }

    /// Replaces the presented token's inspection (after resolution), and records the DPoP
    /// proof as used now that the token's binding (`cnf.jkt`) is known: an opaque token's
    /// claims come only from its resolver, and without this a replayed proof with an
    /// introspected token would stay `valid`.
    pub(crate) fn set_token(&mut self, token: Arc<InspectedToken>, dpop: &DpopVerifier) {
        self.presented = Presented::Token(token);
        self.record_proof(dpop);
    }

    /// The inspected token, for the request's extensions. Not one sent in the query: the
    /// extensions are what handlers and [`RequiredScopes`](crate::RequiredScopes) accept a
    /// token from, and an operator's rules must not start accepting tokens from URLs
    /// unasked; such a request is refused as one without a token.
    pub(crate) fn audited_token(&self) -> Option<AuditedToken> {
        match &self.presented {
            Presented::Token(token) if !self.in_query => Some(AuditedToken(token.clone())),
            _ => None,
        }
    }

    /// Whether what was presented came in the query's `access_token` (RFC 6750 §2.3).
    pub(crate) fn in_query(&self) -> bool {
        self.in_query
    }

    /// What the request presented.
    pub(crate) fn presented(&self) -> &Presented {
        &self.presented
    }

    /// The verdict on what was presented, if a bearer credential was.
    pub(crate) fn verdict(&self) -> Option<Verdict> {
        match &self.presented {
            Presented::Malformed { .. } => Some(Verdict::Malformed),
            Presented::Token(token) => Some(token.verdict),
            Presented::Nothing | Presented::OtherScheme => None,
        }
    }

    /// What else of the request head a challenge could quote, to scrub it.
    pub(crate) fn quotable(&self) -> Option<&Quotable> {
        self.quotable.as_deref()
    }

    /// The presented credential, to scrub from what the response says about it.
    pub(crate) fn secrets<'a>(&self) -> Secrets<'a> {
        let mut secrets = Secrets::none();
        match &self.presented {
            Presented::Token(token) => {
                secrets.anchored_fingerprint(token.fingerprint, token.anchor)
            }
            Presented::Malformed {
                fingerprint,
                credential,
                quoted,
                ..
            } => {
                for fingerprint in fingerprint.iter().chain(credential) {
                    secrets.fingerprint(*fingerprint);
                }
                if let Some(QuotedCredential(text)) = quoted {
                    secrets.literal(String::from(&**text));
                }
            }
            _ => {}
        }
        secrets
    }
}

impl AuditedToken {
    /// Whether the token was judged [`Verdict::Valid`]: on an audit-only route, the handler
    /// decides what a bad token may still do.
    pub fn is_valid(&self) -> bool {
        self.0.verdict == Verdict::Valid
    }
}

/// An Axum extractor: the bearer token as the layer judged it, with its verdict and claims.
/// Without one (no `Authorization: Bearer`, or the route is not behind the layer) it rejects
/// with `401` and `WWW-Authenticate: Bearer`; take `Option<AuditedToken>` to decide yourself.
///
/// ```
/// use axum::{http::StatusCode, routing::get, Router};
/// use oauth_audit::{AuditLayer, AuditedToken};
/// # use oauth_audit::writer::Auditor;
///
/// async fn me(token: AuditedToken) -> Result<String, StatusCode> {
///     // An audit-only route serves every token; this handler refuses bad ones itself.
///     if !token.is_valid() {
///         return Err(StatusCode::UNAUTHORIZED);
///     }
///     Ok(token.0.claims.subject.clone().unwrap_or_default())
/// }
/// # fn app(auditor: Auditor) -> Router {
/// Router::new().route("/me", get(me)).layer(AuditLayer::new(auditor))
/// # }
/// ```
#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for AuditedToken {
    type Rejection = (http::StatusCode, [(http::HeaderName, &'static str); 1]);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<AuditedToken>().cloned().ok_or((
            http::StatusCode::UNAUTHORIZED,
            [(http::header::WWW_AUTHENTICATE, "Bearer")],
        ))
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for AuditedToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuditedToken>().cloned())
    }
}

/// Reading a [`Presentation`] from a request's extensions: here, next to [`AuditedToken`],
/// whose presence says whether a plain bearer presentation was left out.
impl Presentation {
    /// The presentation of the token the audit layer found in a request, from the request's
    /// extensions: the one the layer put there, or [`Presentation::bearer`] when the token
    /// came as a plain bearer token (the layer then inserts none). `None` when the layer
    /// audited no token.
    pub fn of(extensions: &http::Extensions) -> Option<std::borrow::Cow<'_, Presentation>> {
        if let Some(presentation) = extensions.get::<Presentation>() {
            return Some(std::borrow::Cow::Borrowed(presentation));
        }
        extensions
            .get::<AuditedToken>()
            .map(|_| std::borrow::Cow::Owned(Presentation::bearer()))
    }
}

/// An Axum extractor: how the request presented the token the layer audited
/// ([`Presentation::of`]). Without a token it rejects as [`AuditedToken`](crate::AuditedToken)
/// does, with `401` and `WWW-Authenticate: Bearer`; take `Option<Presentation>` to decide
/// yourself.
///
/// ```
/// use axum::{routing::get, Router};
/// use oauth_audit::{AuditLayer, Presentation};
/// # use oauth_audit::writer::Auditor;
///
/// async fn whoami(presentation: Presentation) -> String {
///     format!("{:?}", presentation.scheme)
/// }
/// # fn app(auditor: Auditor) -> Router {
/// Router::new().route("/whoami", get(whoami)).layer(AuditLayer::new(auditor))
/// # }
/// ```
#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Presentation {
    type Rejection = (http::StatusCode, [(http::HeaderName, &'static str); 1]);

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Presentation::of(&parts.extensions)
            .map(std::borrow::Cow::into_owned)
            .ok_or((
                http::StatusCode::UNAUTHORIZED,
                [(http::header::WWW_AUTHENTICATE, "Bearer")],
            ))
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for Presentation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(Presentation::of(&parts.extensions).map(std::borrow::Cow::into_owned))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        crate::event::Timestamp::now().unix()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    /// Whatever the cache holds, the request's credential is the one the bearer rules give:
    /// a cached inspection vouches only for the token it was made for, and only when that
    /// token is a `b64token`.
    #[test]
    fn a_cached_token_reads_as_the_rules_read_it() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};

        let value = prop_oneof![
            "(Bearer|bearer|DPoP|Basic)[ \t]{1,2}[A-Za-z0-9._~+/=\\-]{0,12}[ \t]{0,2}",
            "(Bearer|DPoP) [A-Za-z0-9._~+/\\-]{0,20}[ -~]?[A-Za-z0-9._~+/\\-]{0,20}={0,2}",
            "(Bearer|DPoP)[ \t][ -~\t]{0,16}",
        ];
        let inspector = TokenInspector::default();
        TestRunner::new(Config::with_cases(4000))
            .run(&(value.clone(), value), |(seen_before, value)| {
                // The cache holds whatever this or another header's token would be, checked
                // or not: `inspect` is public, and the token endpoint inspects what servers
                // issue.
                for raw in [&seen_before, &value] {
                    let rest = raw.split_once([' ', '\t']).map_or("", |(_, rest)| rest);
                    inspector.inspect(rest.trim_matches([' ', '\t']));
                    inspector.inspect(rest);
                }
                for values in [&[value.as_str()][..], &[value.as_str(), value.as_str()]] {
                    let headers = headers(values);
                    let rules = access_token_from_headers(&headers);
                    match credential(&headers, Authorization::of(&headers), &inspector, now()) {
                        Read::Rules(scheme, credential, _) => {
                            prop_assert_eq!((scheme, credential), rules, "{:?}", values);
                        }
                        Read::Seen(scheme, seen) => {
                            let BearerCredential::Bearer(token) = rules.1 else {
                                return Err(TestCaseError::fail(format!(
                                    "vouched for {values:?}, which the rules read as {rules:?}"
                                )));
                            };
                            prop_assert_eq!(scheme, rules.0, "{:?}", values);
                            prop_assert_eq!(seen.fingerprint, TokenFingerprint::of(token));
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn only_a_cached_b64token_is_vouched_for() {
        let inspector = TokenInspector::default();
        let h1 = headers(&["Bearer a.b.c"]);
        assert!(
            matches!(
                credential(&h1, Authorization::of(&h1), &inspector, now()),
                Read::Rules(Scheme::Bearer, BearerCredential::Bearer("a.b.c"), Some(_))
            ),
            "not seen before: read by the rules, then inspected"
        );
        let inspected = inspector.inspect("a.b.c");
        let h2 = headers(&["DPoP a.b.c"]);
        let Read::Seen(Scheme::DPoP, seen) =
            credential(&h2, Authorization::of(&h2), &inspector, now())
        else {
            panic!("a cached b64token is vouched for");
        };
        assert_eq!(seen.fingerprint, inspected.fingerprint);
        // Inspected (a server issued it) but not a b64token: the rules refuse it.
        inspector.inspect("a b");
        let h3 = headers(&["Bearer a b"]);
        assert!(matches!(
            credential(&h3, Authorization::of(&h3), &inspector, now()),
            Read::Rules(_, BearerCredential::Malformed(_), _)
        ));
    }

    /// The `Cookie` fields are kept, every one of them and as they came, only for a request
    /// that has one: a request with one bearer token and no cookie keeps nothing to quote.
    #[test]
    fn cookie_fields_are_kept_only_for_requests_that_carry_them() {
        let tokens = TokenInspector::default();
        let revoked = RevokedTokens::default();
        let dpop = DpopVerifier::default();
        let inspect = |headers: &HeaderMap| {
            let uri: Uri = "/api/data".parse().unwrap();
            ResourceRequest::inspect(
                headers,
                &uri,
                Authorization::of(headers),
                None,
                Carried::of(headers, "x-forwarded-for"),
                Inspectors {
                    tokens: &tokens,
                    revoked: &revoked,
                    dpop: &dpop,
                },
                None,
                None,
                crate::event::Timestamp::now(),
            )
        };
        let mut headers = headers(&["Bearer a.b.c"]);
        assert!(inspect(&headers).quotable().is_none(), "nothing to keep");
        headers.append(
            http::header::COOKIE,
            http::HeaderValue::from_static("a=1; b=x!y"),
        );
        headers.append(http::header::COOKIE, http::HeaderValue::from_static("c=2"));
        let request = inspect(&headers);
        let quotable = request.quotable().expect("the cookies are kept");
        let kept: Vec<&[u8]> = quotable.cookies().map(|v| v.as_bytes()).collect();
        assert_eq!(kept, [&b"a=1; b=x!y"[..], b"c=2"]);
        // One bearer token: scrubbed by its fingerprint, not kept.
        assert!(quotable.authorization.is_empty());
        assert!(quotable.query.is_none());
    }

    /// A probe's key is used only for the bytes it was made of: an inspection filed under
    /// another token's key would be a cached verdict for that other token.
    #[test]
    fn a_probe_keys_only_its_own_token() {
        let inspector = TokenInspector::default();
        let h1 = headers(&["Bearer a.b.c"]);
        let Read::Rules(_, BearerCredential::Bearer(token), probe) =
            credential(&h1, Authorization::of(&h1), &inspector, now())
        else {
            panic!("read by the rules");
        };
        // Another token, with the probe of the first: hashed on its own.
        let other = inspector.inspect_probed("x.y.z", probe, None, now());
        let h2 = headers(&["Bearer x.y.z"]);
        let Read::Seen(_, seen) = credential(&h2, Authorization::of(&h2), &inspector, now()) else {
            panic!("x.y.z is cached under its own key");
        };
        assert_eq!(seen.fingerprint, other.fingerprint);
        assert_eq!(seen.fingerprint, TokenFingerprint::of("x.y.z"));
        assert!(matches!(
            credential(&h1, Authorization::of(&h1), &inspector, now()),
            Read::Rules(..)
        ));
        // Its own token, with its probe: cached under that key, found next time.
        let Read::Rules(_, _, probe) = credential(&h1, Authorization::of(&h1), &inspector, now())
        else {
            unreachable!()
        };
        let inspected = inspector.inspect_probed(token, probe, None, now());
        let Read::Seen(_, seen) = credential(&h1, Authorization::of(&h1), &inspector, now()) else {
            panic!("a.b.c is cached now");
        };
        assert_eq!(seen.fingerprint, inspected.fingerprint);
        assert_eq!(seen.fingerprint, TokenFingerprint::of("a.b.c"));
    }
}
