//! Login routes: `LoginSucceeded` / `LoginFailed`, the username, never the password.

use std::fmt;
use std::sync::Arc;

use super::form::Form;
use super::request::Exchange;
use crate::event::{sanitize, ActorKind, AuditEvent, EventKind, Outcome};

/// What a [`LoginRule`] sees of a login response.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct LoginResponse<'a> {
    /// The response status.
    pub status: u16,
    /// The `Location` the response redirects to, without its query string or fragment.
    pub location: Option<&'a str>,
    /// The `Location` carries an `error` query parameter.
    pub location_has_error: bool,
    /// The path of the login route itself.
    pub login_path: &'a str,
}

type Judge = dyn Fn(LoginResponse<'_>) -> bool + Send + Sync;

/// Decides whether a login response means the credentials were accepted.
///
/// The default: a 2xx or 3xx response is a success, unless it redirects back to the login
/// page or to a URL with an `error` query parameter; anything else is a failure.
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

    /// Whether `response` means the login succeeded.
    pub fn succeeded(&self, response: LoginResponse<'_>) -> bool {
        match &self.judge {
            Some(judge) => judge(response),
            None => default_rule(response),
        }
    }
}

fn default_rule(r: LoginResponse<'_>) -> bool {
    if !(200..400).contains(&r.status) {
        return false;
    }
    let back_to_login = r.location.is_some_and(|l| location_path(l) == r.login_path);
    !(back_to_login || r.location_has_error)
}

/// The path of a relative or absolute URL (`https://host/login` -> `/login`).
fn location_path(location: &str) -> &str {
    match location.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => location,
    }
}

pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>) -> AuditEvent {
    let config = x.endpoints.config();
    let outcome = match x.status() {
        None => Outcome::Unknown,
        Some(status) => {
            let location = x.location();
            let response = LoginResponse {
                status: status.as_u16(),
                location: location.map(|l| l.target.as_str()),
                location_has_error: location.is_some_and(|l| l.error.is_some()),
                login_path: x.request.path.as_str(),
            };
            if config.login_rule.succeeded(response) {
                Outcome::Success
            } else {
                Outcome::Failure
            }
        }
    };
    let kind = match outcome {
        Outcome::Failure => EventKind::LoginFailed,
        _ => EventKind::LoginSucceeded,
    };
    let mut event = x.base(kind, outcome);
    event.actor.subject = form
        .and_then(|f| f.get(&config.username_field))
        .filter(|u| !u.is_empty())
        .map(|u| sanitize(u, 256));
    event.actor.kind = Some(if event.actor.subject.is_some() {
        ActorKind::User
    } else {
        ActorKind::Anonymous
    });
    event
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
        assert!(rule.succeeded(response(200, None, false)));
        assert!(rule.succeeded(response(302, Some("/home"), false)));
        assert!(!rule.succeeded(response(302, Some("/login"), false)));
        assert!(!rule.succeeded(response(302, Some("https://idp.example/login"), false)));
        assert!(!rule.succeeded(response(302, Some("/home"), true)));
        assert!(!rule.succeeded(response(401, None, false)));
        assert!(!rule.succeeded(response(500, None, false)));
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
