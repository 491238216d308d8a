//! Login routes: `LoginSucceeded` / `LoginFailed`, the username, never the password.

use super::exchange::Exchange;
use super::form::Form;
use super::login_rule::{failure_code, LoginResponse};
use crate::event::{sanitize, ActorKind, AuditEvent, ErrorInfo, EventKind, Outcome};

pub(crate) fn classify(x: &Exchange<'_>, form: Option<&Form<'_>>, event: &mut AuditEvent) {
    let config = x.endpoints.config();
    let mut failure = None;
    let outcome = match x.status() {
        None => Outcome::Unknown,
        Some(status) => {
            let location = x.location();
            let response = LoginResponse {
                status: status.as_u16(),
                location: location.map(|l| l.target.as_str()),
                location_has_error: location.is_some_and(|l| l.names_error),
                login_path: x.request.path.as_str(),
            };
            match config.login_rule.verdict(response) {
                // A success for a user whose request was not read is not claimed.
                Some(true) if x.request_body_inspected => Outcome::Success,
                Some(false) => {
                    failure = Some(failure_code(&response));
                    Outcome::Failure
                }
                _ => Outcome::Unknown,
            }
        }
    };
    let kind = match outcome {
        Outcome::Failure => EventKind::LoginFailed,
        _ => EventKind::LoginSucceeded,
    };
    event.set_kind(kind, outcome);
    event.error = failure.map(|code| ErrorInfo {
        code,
        description: None,
    });
    event.actor.subject = form
        .and_then(|f| f.get(&config.username_field))
        .filter(|u| !u.is_empty())
        .map(|u| sanitize(u, 256));
    let named = form.is_some_and(|f| f.named(&config.username_field).next().is_some());
    // A username sent but not believed (twice, or only in another case) is somebody unseen,
    // not nobody.
    event.actor.kind = if event.actor.subject.is_some() {
        Some(ActorKind::User)
    } else if named {
        None
    } else {
        Some(ActorKind::Anonymous)
    };
}
