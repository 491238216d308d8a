//! Which request parameters hold secrets, by name and by value: the rules the OAuth
//! endpoints' forms and a protected route's query are read by, so that whatever a response
//! quotes of them can be scrubbed. A leaf: it imports nothing of the crate.

/// Parameters whose values are never recorded but may be sent back in a response.
pub(crate) const SECRET: [&str; 26] = [
    "client_secret",
    "password",
    "code",
    "code_verifier",
    "refresh_token",
    "assertion",
    "client_assertion",
    "device_code",
    "subject_token",
    "actor_token",
    "token",
    "state",
    "nonce",
    "code_challenge",
    "request_uri",
    "id_token_hint",
    "logout_hint",
    // RFC 6750 §2.2/§2.3: a bearer token sent in a form body or a query string.
    "access_token",
    "id_token",
    // RFC 8628 §3.3 and CIBA's token request: short, yet they stand for a grant.
    "user_code",
    "auth_req_id",
    "login_hint_token",
    // CIBA §7.1: the bearer token the server authenticates its notifications with.
    "client_notification_token",
    // OpenID Connect's and CIBA's hint naming the user (an e-mail, a phone number, a
    // username), and CIBA's message shown on both devices: never recorded, so never quoted
    // back into an event either, however short (`bob`, `W4SCT`).
    "login_hint",
    "binding_message",
    // RFC 9101: a request object by value.
    "request",
];

/// Parameters recorded in events anyway (or harmless): not scrubbed from responses.
pub(crate) const PUBLIC: [&str; 17] = [
    "grant_type",
    "client_id",
    "scope",
    "redirect_uri",
    "resource",
    "audience",
    "token_type_hint",
    "subject_token_type",
    "actor_token_type",
    "requested_token_type",
    "client_assertion_type",
    "response_type",
    "code_challenge_method",
    "response_mode",
    "prompt",
    "reason",
    "post_logout_redirect_uri",
];

/// Values of unknown parameters shorter than this are not scrubbed: they are too common in
/// ordinary text (`1`, `true`, `en`) to be secrets worth shredding a description for.
pub(crate) const MIN_UNKNOWN_SECRET: usize = 8;

/// Whether a parameter's value is a secret by a form's rules: a value, not empty, of a
/// secret name ([`is_secret_name`]), or of [`MIN_UNKNOWN_SECRET`] bytes or more under a name
/// known to be public neither here ([`PUBLIC`]) nor by the caller (`also_public`).
pub(crate) fn holds_secret(name: &str, value: &str, also_public: &[&str]) -> bool {
    !value.is_empty()
        && (is_secret_name(name)
            || (value.len() >= MIN_UNKNOWN_SECRET
                && !PUBLIC.contains(&name)
                && !also_public.contains(&name)))
}

/// Whether a form's reading of its secrets may find one in `query` (or a form): a parameter
/// with a secret name, a value of [`MIN_UNKNOWN_SECRET`] bytes or more of a name not known
/// to be public, or anything escaped (a name or a user information it cannot tell without
/// decoding). Parameters are cut at `;` too, as some servers cut them. One pass, nothing
/// allocated.
pub(crate) fn may_hold_secrets(query: &str) -> bool {
    query.contains('%')
        || query.split(['&', ';']).any(|part| {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            let name = name.trim();
            !value.is_empty()
                && (name.contains('+')
                    || value.contains('@')
                    || (value.len() >= MIN_UNKNOWN_SECRET && !PUBLIC.contains(&name))
                    || is_secret_name(name))
        })
}

/// Whether `name` is a secret parameter's, in any case: servers that read form names
/// without regard to case (ASP.NET's form collection, so OpenIddict) take `Password` or
/// `CLIENT_SECRET` for the parameter, and a short value would escape the rule on unknown
/// parameters.
///
/// So is a name that says it holds a password or a secret as frameworks name their fields:
/// `j_password` (Java EE form login), `pwd` (WordPress), `user[password]` (Devise),
/// `Input.Password` (ASP.NET Core Identity), `passwd`, `new-passphrase`, `app_secret`, `pass`:
/// a login form's password under such a name is often shorter than the 8 bytes from which
/// an unknown parameter's value is scrubbed.
pub(crate) fn is_secret_name(name: &str) -> bool {
    SECRET
        .iter()
        .any(|secret| secret.eq_ignore_ascii_case(name))
        || names_a_password(name.as_bytes())
}

/// Whether a parameter name holds `password`, `passwd`, `passphrase`, `passcode` or `pwd`, or
/// has `pass` or `secret` as one of its alphanumeric parts, in any case.
///
/// Every word looked for begins with a `p`: only the places a `p` is are compared, where a
/// search per word would compare every place four times, for every parameter of every form.
fn names_a_password(name: &[u8]) -> bool {
    let at = |start: usize, word: &[u8]| {
        name.get(start..start + word.len())
            .is_some_and(|here| here.eq_ignore_ascii_case(word))
    };
    name.iter().enumerate().any(|(start, byte)| {
        byte.eq_ignore_ascii_case(&b'p')
            && (at(start, b"passw")
                || at(start, b"passphrase")
                || at(start, b"passcode")
                || at(start, b"pwd"))
    }) || name
        .split(|b| !b.is_ascii_alphanumeric())
        .any(|part| part.eq_ignore_ascii_case(b"pass") || part.eq_ignore_ascii_case(b"secret"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_that_may_hold_secrets_is_told_in_one_pass() {
        for query in [
            "token=x",
            "code=SplxlOBeZQQYbYS6WxSbIA&state=s",
            "page=2;password=pw",
            "ACCESS_TOKEN=t",
            "filter=a-long-value",
            "access%5Ftoken=t",
            "redirect_uri=https://u:p@app/cb",
        ] {
            assert!(may_hold_secrets(query), "{query}");
        }
        for query in [
            "page=2&sort=asc",
            "scope=openid+profile",
            "token=",
            "grant_type=password",
        ] {
            assert!(!may_hold_secrets(query), "{query}");
        }
    }

    /// `names_a_password` as its rule reads: a search for each word.
    fn names_a_password_by_the_rule(name: &[u8]) -> bool {
        let holds = |word: &[u8]| {
            name.windows(word.len())
                .any(|window| window.eq_ignore_ascii_case(word))
        };
        [&b"passw"[..], b"passphrase", b"passcode", b"pwd"]
            .into_iter()
            .any(holds)
            || name.split(|b| !b.is_ascii_alphanumeric()).any(|part| {
                part.eq_ignore_ascii_case(b"pass") || part.eq_ignore_ascii_case(b"secret")
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn a_password_name_is_found_as_the_rule_finds_it(
            name in "[pPaAsSwWdDhHrRcCoOeEtT_.\\[\\]-]{0,14}"
        ) {
            proptest::prop_assert_eq!(
                names_a_password(name.as_bytes()),
                names_a_password_by_the_rule(name.as_bytes()),
                "{:?}", name
            );
        }
    }
}
