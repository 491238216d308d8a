//! `application/x-www-form-urlencoded` parameters (request bodies, query strings, redirect
//! parameters), read only for the few fields an event needs.

use std::borrow::Cow;

use crate::event::sanitize;

/// Parsed form parameters. They may hold secrets: a `Form` lives only while an event is
/// built and is never stored.
#[derive(Default)]
pub(crate) struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Form<'a> {
    pub(crate) fn parse(input: &'a [u8]) -> Self {
        Form {
            pairs: form_urlencoded::parse(input).collect(),
        }
    }

    /// The first value of `name`, when present and not empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }

    /// Every non-empty value of `name` (`resource`, `audience` may repeat).
    pub(crate) fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !v.is_empty())
    }
}

impl std::fmt::Debug for Form<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: only the names are shown.
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

/// Longest identifier (client id, username, grant type) kept in an event.
pub(crate) const MAX_ID: usize = 256;
/// Longest URI kept in an event.
pub(crate) const MAX_URI: usize = 1024;
/// Most scopes kept from one list.
const MAX_SCOPES: usize = 100;

/// A space-delimited scope list (RFC 6749 §3.3).
pub(crate) fn scope_list(scope: &str) -> Vec<String> {
    scope
        .split_ascii_whitespace()
        .take(MAX_SCOPES)
        .map(|s| sanitize(s, MAX_ID))
        .collect()
}

/// An identifier made safe for a log field.
pub(crate) fn ident(value: &str) -> String {
    sanitize(value, MAX_ID)
}

/// A URI without its query string and fragment, made safe for a log field.
pub(crate) fn uri_without_query(uri: &str) -> String {
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    sanitize(&uri[..end], MAX_URI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_first_and_repeated_values() {
        let form = Form::parse(
            b"grant_type=password&scope=a+b%20c&resource=https%3A%2F%2Fa&resource=x&empty=",
        );
        assert_eq!(form.get("grant_type"), Some("password"));
        assert_eq!(form.get("scope"), Some("a b c"));
        assert_eq!(form.get("empty"), None);
        assert_eq!(form.get("missing"), None);
        assert_eq!(form.all("resource").collect::<Vec<_>>(), ["https://a", "x"]);
        assert_eq!(
            format!("{form:?}"),
            r#"["grant_type", "scope", "resource", "resource", "empty"]"#
        );
    }

    #[test]
    fn scopes_and_uris() {
        assert_eq!(
            scope_list(" openid  profile\temail "),
            ["openid", "profile", "email"]
        );
        assert!(scope_list("").is_empty());
        assert_eq!(
            uri_without_query("https://app/cb?code=secret#frag"),
            "https://app/cb"
        );
        assert_eq!(uri_without_query("https://app/cb#x"), "https://app/cb");
        assert_eq!(ident("a\nb"), "a\\u{a}b");
    }
}
