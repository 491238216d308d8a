use std::sync::Arc;
use std::task::{Context, Poll};

use http::{header, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::future::RequiredScopesFuture;
use super::{Match, ScopeDecision};
use crate::event::{sanitize, ErrorInfo, Shared};
use crate::request_target::method_overrides;
use crate::resource::{AuditedToken, Presentation};
use crate::token::Verdict;

/// Declares the scopes a route requires; audit-only by default, enforcing with
/// [`enforce`](RequiredScopes::enforce). See the [module docs](crate::scope).
#[derive(Clone, Debug)]
pub struct RequiredScopes {
    config: Arc<Config>,
}

#[derive(Debug)]
struct Config {
    /// Shared by every decision (and so every event) of the route.
    required: Shared<Vec<String>>,
    mode: Match,
    enforce: bool,
    require_dpop: bool,
}

impl RequiredScopes {
    /// Every one of `scopes` is required.
    pub fn all<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with(scopes, Match::All)
    }

    /// Any one of `scopes` is enough.
    pub fn any<I, S>(scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with(scopes, Match::Any)
    }

    fn with<I, S>(scopes: I, mode: Match) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RequiredScopes {
            config: Arc::new(Config {
                required: Shared::new(scopes.into_iter().map(Into::into).collect()),
                mode,
                enforce: false,
                require_dpop: false,
            }),
        }
    }

    /// Refuse requests that do not meet the requirement, as RFC 6750 §3 says: `401` with
    /// `WWW-Authenticate: Bearer` when there is no token, `401 invalid_token` when it is not
    /// valid (expired, bad signature, unverifiable...), `403 insufficient_scope` when a scope
    /// is missing. The handler is not called.
    ///
    /// Enforcement trusts only tokens whose verdict is `valid`, so the
    /// [`AuditLayer`](crate::AuditLayer) needs a key source.
    ///
    /// A request that asks to be treated as another method
    /// ([`method_overrides`](crate::request_target::method_overrides): `X-HTTP-Method-Override`,
    /// `X-HTTP-Method`, `X-Method-Override`, `X-Forwarded-Method`, `X-Original-Method`,
    /// `?_method=`) is refused with `400` and
    /// `error.code` `method_override`: the route was chosen for one method, and a handler or
    /// framework that honours the override would act as another.
    ///
    /// A sender-constrained token must come with its proof (RFC 9449 §7.1): a token bound
    /// to a key (`cnf.jkt`) presented as `Bearer`, or with a DPoP proof that is not `valid`
    /// (see [`ProofOutcome`](crate::dpop::ProofOutcome)), is refused with `401` and
    /// `WWW-Authenticate: DPoP` (`invalid_token` for the downgrade, `invalid_dpop_proof`
    /// for the proof). A token bound to a client certificate (`cnf.x5t#S256`, RFC 8705 §3)
    /// that comes without that certificate is refused with `401` and
    /// `WWW-Authenticate: Bearer error="invalid_token"`.
    pub fn enforce(self) -> Self {
        self.with_config(|config| config.enforce = true)
    }

    /// Enforces, and accepts only DPoP-bound tokens (`cnf.jkt`) with a valid proof: a plain
    /// bearer token is refused with `401` and `WWW-Authenticate: DPoP error="invalid_token"`.
    ///
    /// Give the [`AuditLayer`](crate::AuditLayer) the service's public origins
    /// ([`DpopVerifierBuilder::origins`](crate::dpop::DpopVerifierBuilder::origins)): without
    /// them a proof's `htu` is compared with the `Host` the client sent, and a proof made for
    /// another server that accepts the same token would pass.
    ///
    /// ```
    /// use oauth_audit::RequiredScopes;
    ///
    /// let payments = RequiredScopes::all(["payments:write"]).require_dpop();
    /// # let _ = payments;
    /// ```
    pub fn require_dpop(self) -> Self {
        self.with_config(|config| {
            config.enforce = true;
            config.require_dpop = true;
        })
    }

    fn with_config(self, change: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            required: self.config.required.clone(),
            mode: self.config.mode,
            enforce: self.config.enforce,
            require_dpop: self.config.require_dpop,
        };
        change(&mut config);
        RequiredScopes {
            config: Arc::new(config),
        }
    }
}

impl<S> Layer<S> for RequiredScopes {
    type Service = RequiredScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequiredScopesService {
            inner,
            config: self.config.clone(),
        }
    }
}

/// The service of [`RequiredScopes`].
#[derive(Clone, Debug)]
pub struct RequiredScopesService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> RequiredScopesService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequiredScopesService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RequiredScopesFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let config = &self.config;
        let token = req.extensions().get::<AuditedToken>();
        // Only a valid token grants anything; an unverified one's scopes are its own words.
        let granted: &[String] = token
            .filter(|t| t.0.verdict == Verdict::Valid)
            .map_or(&[], |t| &t.0.claims.scopes);
        let decision = ScopeDecision::decide(&config.required, config.mode, granted);
        if config.enforce {
            let overrides = method_overrides(req.method(), req.headers(), req.uri().query());
            if !overrides.is_empty() {
                let mut response = Response::new(ResBody::default());
                *response.status_mut() = StatusCode::BAD_REQUEST;
                response.extensions_mut().insert(decision);
                response.extensions_mut().insert(ErrorInfo {
                    code: crate::event::error_code::METHOD_OVERRIDE.to_owned(),
                    description: Some(sanitize(
                        &format!(
                            "{} request asks to be treated as {}",
                            req.method(),
                            overrides.join(", ")
                        ),
                        512,
                    )),
                });
                return RequiredScopesFuture::refused(response);
            }
            // None with a token: it came as a plain bearer token, which the layer leaves out
            // of the extensions (`possession_refusal` reads it so; the token is at hand, so
            // `Presentation::of` would look it up again).
            let presentation = req.extensions().get::<Presentation>();
            let unproven =
                token.and_then(|t| possession_refusal(&t.0, presentation, config.require_dpop));
            let refusal = match token.map(|t| t.0.verdict) {
                None => Some((StatusCode::UNAUTHORIZED, challenge(None, None))),
                Some(Verdict::Valid) if unproven.is_some() => {
                    unproven.map(|value| (StatusCode::UNAUTHORIZED, value))
                }
                Some(Verdict::Valid) if decision.satisfied => None,
                Some(Verdict::Valid) => Some((
                    StatusCode::FORBIDDEN,
                    challenge(
                        Some("insufficient_scope"),
                        Some(&format!("scope=\"{}\"", config.required.join(" "))),
                    ),
                )),
                Some(verdict) => Some((
                    StatusCode::UNAUTHORIZED,
                    challenge(
                        Some("invalid_token"),
                        Some(&format!("error_description=\"token {}\"", verdict.as_str())),
                    ),
                )),
            };
            if let Some((status, www_authenticate)) = refusal {
                let mut response = Response::new(ResBody::default());
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, www_authenticate);
                response.extensions_mut().insert(decision);
                return RequiredScopesFuture::refused(response);
            }
        }
        RequiredScopesFuture::inner(self.inner.call(req), decision)
    }
}

/// The challenge refusing a token whose binding the request did not prove (`Bearer` for a
/// client certificate, `DPoP` for a key), or (with `require_dpop`) a token bound to nothing.
fn possession_refusal(
    token: &crate::token::InspectedToken,
    presentation: Option<&Presentation>,
    require_dpop: bool,
) -> Option<HeaderValue> {
    // Left out of the extensions: a plain bearer token (see `Presentation::of`).
    let bearer = Presentation::bearer();
    let presentation = presentation.unwrap_or(&bearer);
    let binding = presentation.binding(token);
    // RFC 8705 §3: a certificate-bound token without its certificate is an invalid token.
    let certificate = presentation.certificate_outcome(token);
    let value = match &binding {
        _ if certificate.is_some_and(|c| c != crate::dpop::ProofOutcome::Valid) => format!(
            "Bearer error=\"invalid_token\", error_description=\"the token is bound to a client certificate: certificate {}\"",
            certificate.map_or("missing", |c| c.as_str())
        ),
        Some(b) if b.downgrade => "DPoP error=\"invalid_token\", error_description=\"the token is bound to a key: present it with the DPoP scheme and a proof\"".to_owned(),
        Some(b) if b.proof != Some(crate::dpop::ProofOutcome::Valid) => format!(
            "DPoP error=\"invalid_dpop_proof\", error_description=\"DPoP proof {}\"",
            b.proof.map_or("missing", |p| p.as_str())
        ),
        _ if require_dpop && token.claims.cnf_jkt.is_none() => "DPoP error=\"invalid_token\", error_description=\"this route takes DPoP-bound tokens only\"".to_owned(),
        _ => return None,
    };
    // Fixed words and outcome names only.
    Some(HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("DPoP")))
}

fn challenge(error: Option<&str>, extra: Option<&str>) -> HeaderValue {
    let mut value = String::from("Bearer");
    if let Some(error) = error {
        value.push_str(&format!(" error=\"{error}\""));
    }
    if let Some(extra) = extra {
        value.push_str(", ");
        value.push_str(extra);
    }
    // Only scope names from the application's own configuration and fixed words go in.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
}
