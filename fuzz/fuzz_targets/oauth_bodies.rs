//! What OAuth endpoints read from bodies and redirects: form parameters (with pollution),
//! JSON answers, authorization redirects and login answers.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use oauth_audit::event::sanitize;
use oauth_audit::fuzzing::{authorize_response, form, json_response, login_response};

#[derive(Arbitrary, Debug)]
enum Input {
    Form(Vec<u8>),
    Json(Vec<u8>),
    Authorize {
        status: u16,
        location: String,
    },
    Login {
        status: u16,
        location: Option<String>,
        location_has_error: bool,
    },
}

fuzz_target!(|input: Input| match input {
    Input::Form(body) => {
        let (repeated, fields) = form(&body);
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        for name in &repeated {
            // Names are recorded sanitised, as every identifier is, and a name sent again in
            // another case is sent twice (servers such as ASP.NET read names in any case).
            let sent = pairs
                .iter()
                .filter(|(k, v)| sanitize(k, 256).eq_ignore_ascii_case(name) && !v.is_empty())
                .count();
            assert!(
                sent >= 2,
                "{name:?} is called repeated but was sent {sent} time(s)"
            );
        }
        for value in fields.into_iter().flatten() {
            assert!(value.len() <= 1024, "identifiers are bounded");
            assert!(
                !value.chars().any(char::is_control),
                "identifiers are sanitised"
            );
        }
    }
    Input::Json(body) => {
        if let Some((code, description)) = json_response(&body) {
            assert!(code.len() <= 1024 && !code.chars().any(char::is_control));
            if let Some(description) = description {
                assert!(description.len() <= 512, "descriptions are bounded");
                assert!(!description.chars().any(char::is_control));
            }
        }
    }
    Input::Authorize { status, location } => {
        let (_, _, target) = authorize_response(status, &location);
        assert!(
            !target.contains('?'),
            "a redirect target never keeps its query: {target:?}"
        );
    }
    Input::Login {
        status,
        location,
        location_has_error,
    } => {
        let (verdict, code) =
            login_response(status, location.as_deref(), location_has_error, "/login");
        if verdict == Some(false) {
            assert!(
                code.is_some_and(|c| !c.is_empty()),
                "every failure says why"
            );
        }
    }
});
