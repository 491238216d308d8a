//! How a login response is judged: the [`LoginRule`] (configuration) and the `error.code`
//! of a failure.

use std::fmt;
use std::sync::Arc;

use crate::request_target::CanonicalPath;

/// What a [`LoginRule`] sees of a login response.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct LoginResponse<'a> {
    /// The response status.
    pub status: u16,
    /// The `Location` the response redirects to, without its query string or fragment.
    pub location: Option<&'a str>,
    /// The `Location` names an `error` parameter in its query or fragment, with a value or
    /// without one (`/signin?error`, as Spring Security sends a failed login back).
    pub location_has_error: bool,
    /// The path of the login route itself.
    pub login_path: &'a str,
}

type Judge = dyn Fn(LoginResponse<'_>) -> bool + Send + Sync;

/// Decides whether a login response means the credentials were accepted.
///
/// The default judges only what status and redirect prove: a redirect (3xx with a
/// `Location`) is a success, unless it goes back to the login page (its path in any spelling
/// the endpoint lookup reads as the same: `/login/`, `/Login`) or to a URL with an
/// `error` query parameter; a 4xx or 5xx is a failure. A 2xx page (which may well say
/// "Invalid password") cannot be told apart and is recorded with `outcome: unknown`:
/// configure a rule when the application answers logins with pages.
///
/// ```
/// use oauth_audit::oauth::LoginRule;
///
/// // Success means "redirected into the app".
/// let rule = LoginRule::redirect_prefix("/app");
/// // Or anything else, as a closure over the response:
/// let rule = LoginRule::custom(|r| r.status == 303 && r.location == Some("/home"));
/// ```
#[derive(Clone, Default)]
pub struct LoginRule {
    judge: Option<Arc<Judge>>,
}

impl fmt::Debug for LoginRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.judge.is_some() {
            "LoginRule(custom)"
        } else {
            "LoginRule(default)"
        })
    }
}

impl LoginRule {
    /// Success when the response redirects (3xx) to a location starting with `prefix`.
    pub fn redirect_prefix(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        LoginRule::custom(move |r| {
            (300..400).contains(&r.status)
                && r.location.is_some_and(|l| l.starts_with(prefix.as_str()))
        })
    }

    /// Success when `judge` says so.
    pub fn custom<F>(judge: F) -> Self
    where
        F: Fn(LoginResponse<'_>) -> bool + Send + Sync + 'static,
    {
        LoginRule {
            judge: Some(Arc::new(judge)),
        }
    }

    /// Whether `response` means the login succeeded; a response the rule cannot judge is
    /// not a success.
    pub fn succeeded(&self, response: LoginResponse<'_>) -> bool {
        self.verdict(response) == Some(true)
    }

    /// `Some(true)` when `response` means the login succeeded, `Some(false)` when it
    /// failed, `None` when the rule cannot tell (the default rule and a 2xx page). A
    /// custom rule always decides.
    pub fn verdict(&self, response: LoginResponse<'_>) -> Option<bool> {
        match &self.judge {
            Some(judge) => Some(judge(response)),
            None => default_rule(response),
        }
    }
}

fn default_rule(r: LoginResponse<'_>) -> Option<bool> {
    if !(200..400).contains(&r.status) || back_to_login(&r) || r.location_has_error {
        return Some(false);
    }
    ((300..400).contains(&r.status) && r.location.is_some()).then_some(true)
}

fn back_to_login(r: &LoginResponse<'_>) -> bool {
    r.location
        .is_some_and(|l| same_path(location_path(l), r.login_path))
}

/// Whether two paths name the same route in some reading, whatever the case: the login
/// route is looked up so ([`Endpoints::lookup`](super::Endpoints::lookup)), and a server that
/// redirects a misspelled `/accounts/login` to `/accounts/login/` (Django's `APPEND_SLASH`,
/// Werkzeug's strict slashes) sends the user back to the form, unauthenticated.
fn same_path(location: &str, login: &str) -> bool {
    if location == login {
        return true;
    }
    let (location, login) = (CanonicalPath::new(location), CanonicalPath::new(login));
    for reading in location.readings() {
        if login.readings().any(|b| reading.eq_ignore_ascii_case(b)) {
            return true;
        }
    }
    false
}

/// Why a login failed, as `error.code`.
pub(crate) fn failure_code(r: &LoginResponse<'_>) -> String {
    if back_to_login(r) {
        REDIRECTED_TO_LOGIN.to_owned()
    } else if r.location_has_error {
        REDIRECTED_WITH_ERROR.to_owned()
    } else if r.status == 401 || r.status == 403 {
        INVALID_CREDENTIALS.to_owned()
    } else if r.status >= 400 {
        format!("http_{}", r.status)
    } else {
        REJECTED_BY_LOGIN_RULE.to_owned()
    }
}

/// `error.code`: the login page was shown again.
pub(crate) const REDIRECTED_TO_LOGIN: &str = "redirected_to_login";
/// `error.code`: the redirect carried an `error` parameter.
pub(crate) const REDIRECTED_WITH_ERROR: &str = "redirected_with_error";
/// `error.code`: the application answered 401 or 403.
pub(crate) const INVALID_CREDENTIALS: &str = "invalid_credentials";
/// `error.code`: a configured rule judged a 2xx or 3xx response a failure.
pub(crate) const REJECTED_BY_LOGIN_RULE: &str = "rejected_by_login_rule";

/// The path of a relative or absolute URL (`https://host/login` -> `/login`).
fn location_path(location: &str) -> &str {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, location: Option<&str>, error: bool) -> LoginResponse<'_> {
        LoginResponse {
            status,
            location,
            location_has_error: error,
            login_path: "/login",
        }
    }

    #[test]
    fn default_rule_reads_status_and_redirect() {
        let rule = LoginRule::default();
        assert_eq!(
            rule.verdict(response(200, None, false)),
            None,
            "a page proves nothing"
        );
        assert!(!rule.succeeded(response(200, None, false)));
        assert_eq!(rule.verdict(response(302, None, false)), None);
        assert!(rule.succeeded(response(302, Some("/home"), false)));
        assert!(!rule.succeeded(response(302, Some("/login"), false)));
        assert!(!rule.succeeded(response(302, Some("https://idp.example/login"), false)));
        // The login page spelt otherwise than the request (a trailing slash added, as
        // Django's `APPEND_SLASH` redirects) is still the login page.
        for again in [
            "/login/",
            "//login",
            "/Login",
            "/log%69n",
            "https://idp.example/login/",
        ] {
            assert!(
                !rule.succeeded(response(302, Some(again), false)),
                "{again}"
            );
        }
        assert!(!rule.succeeded(response(302, Some("/home"), true)));
        assert!(!rule.succeeded(response(401, None, false)));
        assert!(!rule.succeeded(response(500, None, false)));
    }

    #[test]
    fn every_failure_has_a_code() {
        assert_eq!(
            failure_code(&response(302, Some("/login"), false)),
            REDIRECTED_TO_LOGIN
        );
        assert_eq!(
            failure_code(&response(302, Some("/x"), true)),
            REDIRECTED_WITH_ERROR
        );
        assert_eq!(
            failure_code(&response(401, None, false)),
            INVALID_CREDENTIALS
        );
        assert_eq!(failure_code(&response(429, None, false)), "http_429");
        assert_eq!(
            failure_code(&response(200, None, false)),
            REJECTED_BY_LOGIN_RULE
        );
    }

    proptest::proptest! {
        /// The default rule never calls a 2xx page a success, agrees with a model of what
        /// status and redirect prove, and every failure it finds has a code.
        #[test]
        fn default_rule_agrees_with_a_model(
            status in 100u16..600,
            location in proptest::option::of("(https?://[a-z.]{1,10})?/[a-z/]{0,10}"),
            error in proptest::bool::ANY,
        ) {
            let r = response(status, location.as_deref(), error);
            let verdict = LoginRule::default().verdict(r);
            // The login page in any spelling: `/login/`, `//login`.
            let back = location.as_deref().is_some_and(|l| {
                let segments: Vec<&str> =
                    location_path(l).split('/').filter(|s| !s.is_empty()).collect();
                segments == ["login"]
            });
            let model = if !(200..400).contains(&status) || back || error {
                Some(false)
            } else if (300..400).contains(&status) && location.is_some() {
                Some(true)
            } else {
                None
            };
            proptest::prop_assert_eq!(verdict, model);
            if (200..300).contains(&status) {
                proptest::prop_assert_ne!(verdict, Some(true));
            }
            if verdict == Some(false) {
                proptest::prop_assert!(!failure_code(&r).is_empty());
            }
        }
    }

    #[test]
    fn prefix_and_custom_rules() {
        let rule = LoginRule::redirect_prefix("/app");
        assert!(rule.succeeded(response(303, Some("/app/home"), false)));
        assert!(!rule.succeeded(response(200, None, false)));
        let rule = LoginRule::custom(|r| r.status == 204);
        assert!(rule.succeeded(response(204, None, false)));
        assert!(!rule.succeeded(response(200, None, false)));
    }
}
