//! `application/x-www-form-urlencoded` parameters (request bodies, query strings, redirect
//! parameters), read only for the few fields an event needs.

use std::borrow::Cow;
use std::cell::OnceCell;

use crate::event::{sanitize, HeadSecrets, Secrets};
use crate::secret_params::{holds_secret, is_secret_name, may_hold_secrets};

/// Parsed form parameters. They may hold secrets: a `Form` lives only while an event is
/// built and is never stored.
#[derive(Default)]
pub(crate) struct Form<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// The form as it came: a value that is not UTF-8 is read from it again, in Latin-1,
    /// to scrub it (see [`Form::secrets_into`]).
    input: &'a [u8],
    /// The claims of the request object it carries, decoded once: see
    /// [`Form::request_object`].
    request_object: OnceCell<Option<Claims>>,
    /// Whether a value (decoded) holds a `;`: only then may one hide a secret parameter from
    /// a server that also separates parameters so ([`semicolon_secrets`]). Known from the
    /// parse, so that the many lookups of a request need not search every value they find.
    semicolons: bool,
}

/// The claims of a JWT's payload.
pub(crate) type Claims = serde_json::Map<String, serde_json::Value>;

/// Parameters that may legitimately repeat: resource indicators (RFC 8707 §2) and token
/// exchange audiences (RFC 8693 §2.1).
const MULTI_VALUED: [&str; 2] = ["resource", "audience"];

/// Most repeated parameter names reported in one event.
const MAX_REPEATED: usize = 16;

impl<'a> Form<'a> {
    /// Reads `input` as `form_urlencoded::parse` does (the property tests below hold the two
    /// to the same pairs), but a name or value with nothing to decode is borrowed:
    /// `form_urlencoded` scans each for `+`, then for `%`, then reads it through the lossy
    /// UTF-8 decoder, and token requests are mostly such names and values. A form that is
    /// UTF-8 throughout (nearly all) is checked once and cut in one pass.
    pub(crate) fn parse(input: &'a [u8]) -> Self {
        match std::str::from_utf8(input) {
            Ok(text) => Form::parse_text(text),
            Err(_) => Form::parse_bytes(input),
        }
    }

    /// A form that is UTF-8 throughout, checked once, read in one pass: every name and
    /// value is a slice of it cut at ASCII `&` and `=`, so UTF-8 too, and is borrowed
    /// unless it holds a `%` or `+` to decode.
    fn parse_text(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let mut pairs = Vec::new();
        // The sequence being read: where it starts, its first `=`, and whether its name
        // or value has something to decode.
        let (mut start, mut equals) = (0, None);
        let (mut name_escaped, mut value_escaped) = (false, false);
        // Whether the value being read holds a `;` as sent, and whether any value holds one
        // once decoded.
        let (mut value_semicolon, mut semicolons) = (false, false);
        let mut push = |start: usize, equals: Option<usize>, end: usize, escaped: (bool, bool)| {
            if end > start {
                let (name, value) = match equals {
                    Some(equals) => (&text[start..equals], &text[equals + 1..end]),
                    None => (&text[start..end], ""),
                };
                let value = text_component(value, escaped.1);
                pairs.push((text_component(name, escaped.0), value));
            }
        };
        for (at, &byte) in bytes.iter().enumerate() {
            // Letters, `_`, `~` and everything past ASCII are above `=`, the highest byte that
            // means something here: one comparison for most of a form.
            if byte > b'=' {
                continue;
            }
            match byte {
                b'&' => {
                    push(start, equals, at, (name_escaped, value_escaped));
                    semicolons |= value_semicolon;
                    (start, equals) = (at + 1, None);
                    (name_escaped, value_escaped, value_semicolon) = (false, false, false);
                }
                b'=' if equals.is_none() => equals = Some(at),
                b'%' | b'+' if equals.is_some() => value_escaped = true,
                b'%' | b'+' => name_escaped = true,
                b';' if equals.is_some() => value_semicolon = true,
                _ => {}
            }
        }
        push(start, equals, bytes.len(), (name_escaped, value_escaped));
        semicolons |= value_semicolon;
        // A `%3B` decodes to one too.
        semicolons = semicolons
            || pairs
                .iter()
                .any(|(_, v)| matches!(v, Cow::Owned(_)) && v.contains(';'));
        Form {
            pairs,
            input: bytes,
            request_object: OnceCell::new(),
            semicolons,
        }
    }

    /// A form with bytes that are not UTF-8, read component by component.
    fn parse_bytes(input: &'a [u8]) -> Self {
        let pairs = input
            .split(|&b| b == b'&')
            .filter(|sequence| !sequence.is_empty())
            .map(|sequence| {
                let mut halves = sequence.splitn(2, |&b| b == b'=');
                let name = halves.next().unwrap_or_default();
                let value = halves.next().unwrap_or_default();
                (component(name), component(value))
            })
            .collect::<Vec<_>>();
        let semicolons = pairs.iter().any(|(_, v)| v.contains(';'));
        Form {
            pairs,
            input,
            request_object: OnceCell::new(),
            semicolons,
        }
    }

    /// This form (a request body) with the pairs of `query` whose names it also has with a
    /// value: a server that reads the query and the body alike (a servlet's `getParameter`,
    /// which answers the query's value first) sees those parameters twice, so
    /// [`Form::get`] believes neither value and [`Form::repeated`] names them. Parameters
    /// sent in the query only are left out: servers that read the body only ignore them.
    pub(crate) fn with_query(mut self, query: Form<'a>) -> Self {
        if query.pairs.is_empty() {
            return self;
        }
        // A set, not a search per query pair: both may hold thousands of names. In any
        // case, as [`Form::get`] reads them.
        let in_body: std::collections::HashSet<String> = self
            .pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        let twice: Vec<_> = query
            .pairs
            .into_iter()
            .filter(|(k, v)| !v.is_empty() && in_body.contains(&k.to_ascii_lowercase()))
            .collect();
        self.semicolons |= twice.iter().any(|(_, v)| v.contains(';'));
        self.pairs.extend(twice);
        // A `request` in both is sent twice: no object, whatever was read before.
        self.request_object = OnceCell::new();
        self
    }

    /// This login form (a request body, or the empty form of a request without one) with
    /// the values the query gives `field` (the username field), in any case: a servlet's
    /// `getParameter` (Spring Security's form login, `j_security_check`) reads the query's
    /// before the body's, so a username in both is sent twice ([`Form::get`] believes
    /// neither), and one in the query alone is the one such a server logs in, the body
    /// naming none (a server reading the body only then has no user to log in).
    pub(crate) fn with_query_field(mut self, query: Form<'a>, field: &str) -> Self {
        let before = self.pairs.len();
        self.pairs.extend(
            query
                .pairs
                .into_iter()
                .filter(|(k, v)| !v.is_empty() && k.eq_ignore_ascii_case(field)),
        );
        self.semicolons |= self.pairs[before..].iter().any(|(_, v)| v.contains(';'));
        self
    }

    /// Whether this query names a parameter, with a value, that `body` (the request's form,
    /// when it had one) does not, in any case: one a server reading the query too (a
    /// servlet's `getParameter`) reads, and [`Form::with_query`] leaves out. Names counted
    /// in a set, as there: both may hold thousands.
    pub(crate) fn names_beyond(&self, body: Option<&Form<'_>>) -> bool {
        let in_body: std::collections::HashSet<String> = body
            .into_iter()
            .flat_map(|body| body.pairs.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect();
        self.pairs
            .iter()
            .any(|(k, v)| !v.is_empty() && !in_body.contains(&k.to_ascii_lowercase()))
    }

    /// The non-empty values of `name` in any case, as sent: whether the request named one,
    /// believed ([`Form::get`]) or not.
    pub(crate) fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, v)| !v.is_empty() && k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// The claims of the request object sent by value (`request`, RFC 9101), when it was
    /// sent once ([`Form::get`]) and is a readable JWT (signed, not encrypted). Decoded the
    /// first time asked for and kept with the form: an authorization, pushed or CIBA
    /// request reads its parameters, its client and its secrets from the same claims.
    pub(crate) fn request_object(&self) -> Option<&Claims> {
        self.request_object
            .get_or_init(|| self.get("request").and_then(super::unverified::claims_of))
            .as_ref()
    }

    /// The parameters as they were read, in their order.
    pub(crate) fn into_pairs(self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> {
        self.pairs.into_iter()
    }

    /// The value of `name`, when it is present, not empty, and sent once. A parameter sent
    /// more than once is ambiguous (RFC 6749 §3.1, §3.2: "MUST NOT be included more than
    /// once"): the server may read either value, so none is believed; see
    /// [`Form::repeated`]. A name in another case counts as sent again (servers that read
    /// names in any case, ASP.NET's form collection so OpenIddict, see `USERNAME` as
    /// `username`), but is not the parameter on its own (others ignore it).
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        let mut found = None;
        let mut seen = false;
        for (k, v) in &self.pairs {
            if !v.is_empty() && k.eq_ignore_ascii_case(name) {
                if seen {
                    return None;
                }
                seen = true;
                found = (k == name).then_some(v.as_ref());
            }
        }
        match found {
            Some(value) if self.semicolons && hides_a_secret(value) => None,
            found => found,
        }
    }

    /// The first non-empty value of `name`, repeated or not (redirects the server built).
    pub(crate) fn first(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_ref())
    }

    /// Whether `name` is sent, with a value or without one (`?error`).
    pub(crate) fn names(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// Every non-empty value of `name` (`resource`, `audience` may repeat).
    pub(crate) fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
            .filter(|v| !(v.is_empty() || self.semicolons && hides_a_secret(v)))
    }

    /// The names sent more than once with a value, in any case (see [`Form::get`]), other
    /// than those that may repeat, sanitised as first spelt, in order of first appearance,
    /// at most 16. Empty values do not count: RFC 6749 §3.1 treats them as omitted.
    pub(crate) fn repeated(&self) -> Vec<String> {
        let counted = |(name, value): &&(Cow<'a, str>, Cow<'a, str>)| {
            !value.is_empty()
                && !MULTI_VALUED
                    .iter()
                    .any(|multi| multi.eq_ignore_ascii_case(name))
        };
        // A few pairs (every real request): each against the ones after it. Many (a crafted
        // body of thousands of names): that would be quadratic, so each name is counted
        // once in a map, which gives the same names in the same order.
        if self.pairs.len() > 16 {
            return self.repeated_counted(counted);
        }
        let mut names: Vec<&str> = Vec::new();
        for (i, pair) in self.pairs.iter().enumerate() {
            let name = pair.0.as_ref();
            if !counted(&pair) || names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                continue;
            }
            let again = self.pairs[i + 1..]
                .iter()
                .any(|later| later.0.eq_ignore_ascii_case(name) && counted(&later));
            if again {
                names.push(name);
                if names.len() == MAX_REPEATED {
                    break;
                }
            }
        }
        names.into_iter().map(ident).collect()
    }

    /// [`repeated`](Form::repeated) in one pass: names counted in a map, those seen twice
    /// put in the order of their first occurrence.
    fn repeated_counted(
        &self,
        counted: impl Fn(&&(Cow<'a, str>, Cow<'a, str>)) -> bool,
    ) -> Vec<String> {
        // Name in lower case -> (first index, seen again).
        let mut seen: std::collections::HashMap<Cow<'_, str>, (usize, bool)> =
            std::collections::HashMap::new();
        for (i, pair) in self.pairs.iter().enumerate().filter(|(_, p)| counted(p)) {
            let name = pair.0.as_ref();
            let key = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(name.to_ascii_lowercase())
            } else {
                Cow::Borrowed(name)
            };
            seen.entry(key)
                .and_modify(|(_, again)| *again = true)
                .or_insert((i, false));
        }
        let mut firsts: Vec<usize> = seen
            .into_values()
            .filter(|(_, again)| *again)
            .map(|(first, _)| first)
            .collect();
        firsts.sort_unstable();
        firsts
            .into_iter()
            .take(MAX_REPEATED)
            .map(|first| ident(&self.pairs[first].0))
            .collect()
    }

    /// Adds the values that must not appear in an event to `secrets`: those of known secret
    /// parameters, and of every parameter not known to be public (except `public_too`).
    pub(crate) fn secrets_into(&'a self, secrets: &mut Secrets<'a>, public_too: &[&str]) {
        for (name, value) in &self.pairs {
            let name = name.as_ref();
            let secret = holds_secret(name, value, public_too);
            if self.semicolons {
                for hidden in semicolon_secrets(value) {
                    secrets.literal(hidden);
                }
            }
            if secret {
                secrets.literal(value.as_ref());
                if value.contains(char::REPLACEMENT_CHARACTER) {
                    // Not UTF-8: the text a server honouring another charset quotes.
                    for reading in self.latin1_values(name) {
                        secrets.literal(reading);
                    }
                }
                for claim in self.object_secrets(name, value, false) {
                    secrets.literal(claim);
                }
            } else {
                if let Some(user) = user_information(value) {
                    // A public URI's password is no less a secret: the field recorded leaves
                    // it out, and a server quoting the URI back must not bring it in.
                    secrets.literal(user);
                    if let Some((_, password)) = user.split_once(':') {
                        secrets.literal(password);
                    }
                }
                // Nor are the secrets of its query, found wherever the URI is quoted.
                for secret in uri_query_secrets(value) {
                    secrets.literal(secret);
                }
            }
        }
    }

    /// The values of `name` that are not UTF-8 once decoded, read as Latin-1: a form
    /// sent with `charset=ISO-8859-1` (or raw bytes of a legacy page) is read so by a server
    /// that honours it, and quoted back as that text, which the lossy UTF-8 reading (each
    /// such byte a U+FFFD) never matches.
    fn latin1_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = String> + 's {
        self.input
            .split(|&b| b == b'&')
            .filter_map(move |sequence| {
                let mut halves = sequence.splitn(2, |&b| b == b'=');
                let raw_name = halves.next().unwrap_or_default();
                let raw_value = halves.next().unwrap_or_default();
                if component(raw_name) != name {
                    return None;
                }
                let bytes = decode_bytes(raw_value);
                crate::text::latin1_unless_utf8(&bytes)
            })
    }

    /// Adds the same values as [`Form::secrets_into`] to `head`, for secrets that must be
    /// matched after the form itself is gone (an authorization request's query).
    pub(crate) fn head_secrets_into(&self, head: &mut HeadSecrets) {
        let secret = |(name, value): &&(Cow<'_, str>, Cow<'_, str>)| holds_secret(name, value, &[]);
        for pair in &self.pairs {
            if self.semicolons {
                for hidden in semicolon_secrets(&pair.1) {
                    head.add(hidden);
                }
            }
            if secret(&pair) {
                head.add(&pair.1);
                if pair.1.contains(char::REPLACEMENT_CHARACTER) {
                    for reading in self.latin1_values(&pair.0) {
                        head.add(&reading);
                    }
                }
                for claim in self.object_secrets(&pair.0, &pair.1, true) {
                    head.add(&claim);
                }
            } else {
                if let Some(user) = user_information(&pair.1) {
                    head.add(user);
                    if let Some((_, password)) = user.split_once(':') {
                        head.add(password);
                    }
                }
                let query_secrets = uri_query_secrets(&pair.1);
                if !query_secrets.is_empty() {
                    // A short secret (a word, matched by its digest) is no word of the URI
                    // percent-encoded (`…%3Fcode%3Dab12`): the URI is, as a whole.
                    head.add(&pair.1);
                    for secret in &query_secrets {
                        head.add(secret);
                    }
                }
            }
        }
    }
}

/// The values of the query of a URI sent as a public parameter's value (`redirect_uri`,
/// `resource`: `https://app.example/cb?code=…`) that are secrets by a form's rules, as the
/// query decodes them and as it writes them (`a%2Fb`, which the request carries as
/// `a%252Fb`). The parameter is recorded without its query, and a server quoting it back as
/// it is written in the query string shows a query the scrub's rule on query strings
/// removes; quoted as the request carries it, percent-encoded
/// (`https%3A%2F%2Fapp.example%2Fcb%3Fcode%3D…`), it shows no `?`, and the secrets must be
/// known to be found. Empty, before anything else is looked at, for a value without a `?`
/// (nearly every one): nothing is allocated then.
///
/// The query is read as servers read one: cut at `&`, and, where a part holds a `;`, at `;`
/// too (Perl's CGI.pm, Django before 3.1.7, Python's `parse_qs` before 3.9.2:
/// `?scope=a;code=…`). A value that is a URI itself (`?next=https%3A%2F%2Fb%2Fx%3Fcode%3D…`,
/// percent-encoded once or twice) is read so in turn, at most [`MAX_NESTED_URIS`] URIs deep
/// in all.
fn uri_query_secrets(value: &str) -> Vec<String> {
    let mut found = Vec::new();
    if value.contains('?') {
        nested_query_secrets(value, MAX_NESTED_URIS, &mut found);
    }
    found
}

/// How many URIs deep [`uri_query_secrets`] reads: the URI, a URI in its query, and one in
/// that one's.
const MAX_NESTED_URIS: usize = 3;

/// How many more times a value of a query is percent-decoded, at most, to find the `?` of a
/// URI in it (`https%253A%252F%252Fb%252Fx%253Fcode%253D…`, encoded twice).
const MAX_NESTED_DECODINGS: usize = 2;

/// [`uri_query_secrets`] of `uri` into `found`, reading URIs in its query `depth - 1` more
/// deep.
fn nested_query_secrets(uri: &str, depth: usize, found: &mut Vec<String>) {
    let Some((_, query)) = uri.split_once('?') else {
        return;
    };
    let query = query.split_once('#').map_or(query, |(query, _)| query);
    if !may_hold_secrets(query) {
        return;
    }
    // Each part as a server cutting at `&` alone reads it, and its pieces between `;` as
    // one that cuts there too reads them.
    let sequences = query.split('&').flat_map(|part| {
        let semicolons = part.contains(';');
        std::iter::once(part).chain(part.split(';').filter(move |_| semicolons))
    });
    for sequence in sequences {
        let (raw_name, raw_value) = sequence.split_once('=').unwrap_or((sequence, ""));
        let name = component(raw_name.as_bytes());
        let decoded = component(raw_value.as_bytes());
        if holds_secret(&name, &decoded, &[]) {
            if decoded != raw_value {
                found.push(raw_value.to_owned());
            }
            found.push(decoded.as_ref().to_owned());
        }
        if depth > 1 {
            if let Some(nested) = nested_uri(decoded) {
                nested_query_secrets(&nested, depth - 1, found);
            }
        }
    }
}

/// A query's value (decoded once) as the URI it is, when it is one with a query: as it is
/// when it holds a `?`, else percent-decoded again while it holds an encoded one (`%3F`), at
/// most [`MAX_NESTED_DECODINGS`] times.
fn nested_uri(mut value: Cow<'_, str>) -> Option<Cow<'_, str>> {
    for _ in 0..MAX_NESTED_DECODINGS {
        if value.contains('?') {
            return Some(value);
        }
        let encoded_query = value
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1] == b'3' && w[2].eq_ignore_ascii_case(&b'f'));
        if !encoded_query {
            return None;
        }
        value = Cow::Owned(
            percent_encoding::percent_decode_str(&value)
                .decode_utf8_lossy()
                .into_owned(),
        );
    }
    value.contains('?').then_some(value)
}

/// The values of secret parameters a server that also separates parameters with `;` reads
/// inside `value` (Perl's CGI.pm, Django before 3.1.7, Python's `parse_qs` before 3.9.2):
/// in `username=alice;password=hunt3r`, `hunt3r`. Not empty.
fn semicolon_secrets(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(';')
        .skip(1)
        .filter_map(|part| part.split_once('='))
        .filter(|(name, value)| !value.is_empty() && is_secret_name(name.trim()))
        .map(|(_, value)| value)
}

/// Whether a value would be read by such a server as holding a secret parameter
/// ([`semicolon_secrets`]): it is not believed, since recording it would record the secret.
/// Out of line: a form that holds no `;` never asks, and [`Form::get`] stays small enough
/// to be inlined where each parameter is looked up.
#[inline(never)]
fn hides_a_secret(value: &str) -> bool {
    value.contains(';') && semicolon_secrets(value).next().is_some()
}

impl Form<'_> {
    /// The claims of a request object sent by value (`request`, RFC 9101) that are secret
    /// as parameters would be: it carries what a form would (`state`, `nonce`,
    /// `id_token_hint`, `login_hint_token`, a value of an unknown claim long enough), and a
    /// server quoting one back quotes the object's value, which the object as a whole (a
    /// JWT-shaped word) does not match. Only a readable (signed, not encrypted) object's
    /// text claims; empty otherwise. The object sent once is the one already decoded
    /// ([`Form::request_object`]); one sent twice, or named in another case, is decoded
    /// here.
    ///
    /// A public claim is read as the same parameter of a form is: the password of a URI's
    /// user information and the secrets of its query ([`uri_query_secrets`]: a
    /// `redirect_uri` claim of `https://app.example/cb?code=…`) are secrets too, and with
    /// `whole_uris` (secrets matched once the form is gone, by digest as words) so is a URI
    /// whose query holds any, which a short secret percent-encoded within it is no word of.
    fn object_secrets(&self, name: &str, value: &str, whole_uris: bool) -> Vec<String> {
        /// Claims of the JWT itself, recorded or harmless, like the public parameters of [`crate::secret_params::PUBLIC`].
        const JWT_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti"];
        if !name.eq_ignore_ascii_case("request") {
            return Vec::new();
        }
        let decoded;
        let claims = match self.get("request") {
            Some(once) if std::ptr::eq(once, value) => self.request_object(),
            _ => {
                decoded = super::unverified::claims_of(value);
                decoded.as_ref()
            }
        };
        let Some(claims) = claims else {
            return Vec::new();
        };
        let mut found = Vec::new();
        let texts = claims.iter().filter_map(|(claim, value)| match value {
            serde_json::Value::String(text) if !text.is_empty() => Some((claim, text)),
            _ => None,
        });
        for (claim, text) in texts {
            if holds_secret(claim, text, &JWT_CLAIMS) {
                found.push(text.clone());
                continue;
            }
            if let Some(user) = user_information(text) {
                found.push(user.to_owned());
                if let Some((_, password)) = user.split_once(':') {
                    found.push(password.to_owned());
                }
            }
            let query_secrets = uri_query_secrets(text);
            if whole_uris && !query_secrets.is_empty() {
                found.push(text.clone());
            }
            found.extend(query_secrets);
        }
        found
    }
}

/// The user information of a URI (`client:pw` of `https://client:pw@app/cb`): everything
/// between its `://` and the last `@` before the path, query or fragment. `None` when the
/// value is no URI with an authority (a `client_id` or scope with an `@` is no password), or
/// has no `@` there.
fn user_information(value: &str) -> Option<&str> {
    if !value.contains('@') {
        return None;
    }
    let start = value.find("://")? + 3;
    let rest = &value[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let user = &authority[..authority.rfind('@')?];
    (!user.is_empty()).then_some(user)
}

impl std::fmt::Debug for Form<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: only the names are shown.
        f.debug_list()
            .entries(self.pairs.iter().map(|(k, _)| k))
            .finish()
    }
}

/// The `access_token` a protected route's query carries (RFC 6750 §2.3), its value decoded
/// as a form's is. `None` when the query has none (empty values count as omitted, as RFC 6749
/// §3.1 has them).
///
/// Read as the most lenient server reads it, so that no token an upstream may have taken
/// goes unrecorded: a name spelt with escapes (`access%5Ftoken`) is the parameter, and
/// parameters are cut at `;` as well as `&` (a token, a `b64token`, holds no `;`, so a value
/// with one was no token to a server that cuts at `&` alone). The parameter sent more than
/// once is [`QueryToken::Repeated`](crate::resource::QueryToken::Repeated), with its first
/// value; a name in another case (`ACCESS_TOKEN`) counts as sent again, as [`Form::get`]
/// counts it, but is not the parameter on its own.
///
/// Asked of every protected route's request that has a query and no `Authorization` field:
/// a query that names no `access_token` and escapes nothing is passed over with one search,
/// and no other query allocates anything but the decoded names and values it has to compare.
pub(crate) fn query_access_token(query: &str) -> Option<crate::resource::QueryToken<'_>> {
    use crate::resource::QueryToken;
    const NAME: &str = "access_token";
    let bytes = query.as_bytes();
    if memchr::memmem::find(bytes, NAME.as_bytes()).is_none()
        && memchr::memchr(b'%', bytes).is_none()
    {
        return None;
    }
    let mut first = None;
    let mut sent = 0usize;
    for piece in query.split(['&', ';']) {
        let Some((raw_name, raw_value)) = piece.split_once('=') else {
            continue;
        };
        // Decoding never lengthens a name: a shorter one is not the parameter, and one of the
        // same length is it only as it came (an escape would shorten it).
        if raw_value.is_empty() || raw_name.len() < NAME.len() {
            continue;
        }
        let name = if raw_name.len() == NAME.len() {
            Cow::Borrowed(raw_name)
        } else if raw_name.contains('%') {
            component(raw_name.as_bytes())
        } else {
            continue;
        };
        if !name.eq_ignore_ascii_case(NAME) {
            continue;
        }
        sent += 1;
        if first.is_none() && name == NAME {
            first = Some(component(raw_value.as_bytes()));
        }
    }
    let first = first?;
    Some(if sent > 1 {
        QueryToken::Repeated(first)
    } else {
        QueryToken::One(first)
    })
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
    if uri.contains('@') {
        // User information may hold a password (`https://client:pw@app/cb`): read as
        // `shown_url` reads it, which hides it (or the whole URI where readings of it
        // disagree), without the query it marks.
        let shown = crate::text::shown_url(uri);
        let end = shown.find(['?', '#']).unwrap_or(shown.len());
        let shown = &shown[..end];
        // An `@` left anywhere but in the `…@` that stands for user information (text that
        // is no URL, `user:pw@host?x://`) may still follow a password: nothing is shown.
        if shown.replace("…@", "").contains('@') {
            return "…".to_owned();
        }
        return sanitize(shown, MAX_URI);
    }
    let end = uri.find(['?', '#']).unwrap_or(uri.len());
    sanitize(&uri[..end], MAX_URI)
}

/// One name or value of a form known to be UTF-8, decoded as [`component`] decodes it
/// when it holds something to decode (`escaped`), else borrowed.
fn text_component(text: &str, escaped: bool) -> Cow<'_, str> {
    if escaped {
        Cow::Owned(decode(text.as_bytes()))
    } else {
        Cow::Borrowed(text)
    }
}

/// One name or value of a form, decoded: `+` is a space, `%XX` a byte, and bytes that are not
/// UTF-8 become U+FFFD, as `form_urlencoded` decodes them.
fn component(bytes: &[u8]) -> Cow<'_, str> {
    if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
        return match std::str::from_utf8(bytes) {
            Ok(text) => Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(bytes),
        };
    }
    Cow::Owned(decode(bytes))
}

/// `bytes` with `+` as a space and each `%XX` as its byte, made UTF-8 as
/// `form_urlencoded` makes it (bytes that are not become U+FFFD).
fn decode(bytes: &[u8]) -> String {
    match String::from_utf8(decode_bytes(bytes)) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    }
}

/// The bytes `bytes` stands for: `+` a space, each `%XX` its byte.
fn decode_bytes(bytes: &[u8]) -> Vec<u8> {
    // One pass into a buffer of the component's length (decoding only shortens it): what
    // `form_urlencoded` does in up to three (`+`, then `percent_decode`, whose buffer
    // grows as it fills). The property tests below hold the two to the same output.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        let escaped = match (byte, bytes.get(at + 1), bytes.get(at + 2)) {
            (b'%', Some(&high), Some(&low)) => hex(high).zip(hex(low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                decoded.push(high << 4 | low);
                at += 3;
            }
            None => {
                decoded.push(if byte == b'+' { b' ' } else { byte });
                at += 1;
            }
        }
    }
    decoded
}

/// The value of a hexadecimal digit.
fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret_params::PUBLIC;

    /// What [`query_access_token`] reads of `query`: whether the parameter was sent more
    /// than once, and its (first) value.
    fn query_token(query: &str) -> Option<(bool, String)> {
        use crate::resource::QueryToken;
        query_access_token(query).map(|token| match token {
            QueryToken::One(value) => (false, value.into_owned()),
            QueryToken::Repeated(value) => (true, value.into_owned()),
        })
    }

    #[test]
    fn a_querys_access_token_is_read_decoded() {
        let one = |value: &str| Some((false, value.to_owned()));
        assert_eq!(query_token("access_token=abc.def-_~"), one("abc.def-_~"));
        assert_eq!(query_token("page=2&access_token=abc&sort=asc"), one("abc"));
        // Decoded as a form's value: escapes, and `+` a space.
        assert_eq!(query_token("access_token=a%2Eb%2Bc%3D"), one("a.b+c="));
        assert_eq!(query_token("access_token=a+b"), one("a b"));
        // An escaped name is the same parameter to a server.
        assert_eq!(query_token("access%5Ftoken=abc"), one("abc"));
        assert_eq!(query_token("%61ccess%5f%74oken=abc"), one("abc"));
        // Cut at `;` too, as some servers cut.
        assert_eq!(query_token("page=2;access_token=abc"), one("abc"));
        assert_eq!(query_token("access_token=abc;page=2"), one("abc"));
        // An escaped separator is part of a value, not a separator.
        assert_eq!(query_token("state=x%26access_token%3Dabc"), None);
        assert_eq!(query_token("state=x%3Baccess_token%3Dabc"), None);
    }

    #[test]
    fn a_query_without_an_access_token_has_none() {
        for query in [
            "",
            "page=2",
            "access_token",
            "access_token=",
            "access_token=&access_token=",
            "my_access_token=abc",
            "access_token_hint=abc",
            "xaccess%5Ftoken=abc",
            "access+token=abc",
            "access%20token=abc",
            "q=%41",
            // Another case is not the parameter on its own.
            "ACCESS_TOKEN=abc",
            "Access%5FToken=abc",
            // Only a value names it.
            "q=access_token",
        ] {
            assert_eq!(query_token(query), None, "{query:?}");
        }
    }

    #[test]
    fn an_access_token_sent_twice_is_repeated_with_its_first_value() {
        let repeated = |value: &str| Some((true, value.to_owned()));
        assert_eq!(query_token("access_token=a&access_token=b"), repeated("a"));
        assert_eq!(query_token("access_token=a&access_token=a"), repeated("a"));
        assert_eq!(query_token("access_token=a;access_token=b"), repeated("a"));
        assert_eq!(
            query_token("access_token=a&access%5Ftoken=b"),
            repeated("a")
        );
        assert_eq!(
            query_token("access%5Ftoken=a&access_token=b"),
            repeated("a")
        );
        // Another case counts as sent again.
        assert_eq!(query_token("ACCESS_TOKEN=b&access_token=a"), repeated("a"));
        assert_eq!(query_token("access_token=a&Access_Token=b"), repeated("a"));
        // An empty value is omitted (RFC 6749 §3.1), not sent again.
        assert_eq!(
            query_token("access_token=&access_token=a&access_token="),
            Some((false, "a".to_owned()))
        );
    }

    proptest::proptest! {
        /// The shortcuts (names passed over by their length, escapes decoded only in names
        /// long enough) read what `form_urlencoded` reads of each part cut at `&` and `;`.
        #[test]
        fn a_querys_access_token_is_what_form_urlencoded_reads(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "access_token", "ACCESS_token", "access%5Ftoken", "access%5ftoken",
                    "%61ccess_token", "access+token", "access_toke", "=", "&", ";", "%", "+",
                    "a", "T0k", "%2E", "%3D", "%26", "%FF",
                ]),
                0..12,
            )
        ) {
            let query = parts.concat();
            let (mut first, mut sent) = (None, 0);
            for piece in query.split(['&', ';']) {
                let Some((name, value)) = piece.split_once('=') else { continue };
                if value.is_empty() {
                    continue;
                }
                let name: String = form_urlencoded::parse(format!("{name}=").as_bytes())
                    .next()
                    .map(|(name, _)| name.into_owned())
                    .unwrap_or_default();
                if name.eq_ignore_ascii_case("access_token") {
                    sent += 1;
                    if first.is_none() && name == "access_token" {
                        first = form_urlencoded::parse(format!("v={value}").as_bytes())
                            .next()
                            .map(|(_, value)| value.into_owned());
                    }
                }
            }
            let expected = first.map(|value| (sent > 1, value));
            proptest::prop_assert_eq!(query_token(&query), expected, "{:?}", query);
        }
    }

    #[test]
    fn a_huge_query_is_read_once() {
        let mut query = "x=1&".repeat(20_000);
        query.push_str("access_token=tail");
        assert_eq!(query_token(&query), Some((false, "tail".to_owned())));
        let escaped = "a%41=1&".repeat(20_000);
        assert_eq!(query_token(&escaped), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4000))]
        #[test]
        fn forms_read_as_form_urlencoded_reads_them(
            input in proptest::collection::vec(
                proptest::sample::select(b"ab=&%+2F\xc3\xa9\xff ".to_vec()),
                0..32,
            )
        ) {
            let ours = Form::parse(&input).pairs;
            let theirs: Vec<_> = form_urlencoded::parse(&input).collect();
            proptest::prop_assert_eq!(ours, theirs);
        }

        /// The same for forms that are UTF-8 throughout (read as text, each component cut
        /// from the checked whole), with characters of several bytes and escapes that decode
        /// to bytes that are not UTF-8.
        #[test]
        fn utf8_forms_read_as_form_urlencoded_reads_them(
            parts in proptest::collection::vec(
                proptest::sample::select(
                    &["a", "b", "=", "&", "%", "+", "2F", "%2f", "%FF", "%C3%A9", "%c3%a9", "\u{e9}", "\u{1F600}", " "][..],
                ),
                0..24,
            )
        ) {
            let input = parts.concat();
            let ours = Form::parse(input.as_bytes()).pairs;
            let theirs: Vec<_> = form_urlencoded::parse(input.as_bytes()).collect();
            proptest::prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn bearer_tokens_and_grant_references_are_secrets_however_short() {
        // A device flow's user code is 8 characters or fewer (RFC 8628 §6.1), and nothing
        // bounds a token's length from below: too short for the rule on unknown values.
        // CIBA's notification token is a bearer token too.
        let form = Form::parse(
            b"user_code=WDJB-MJ&access_token=Ab3dE&auth_req_id=r1&id_token=t1&client_notification_token=n1",
        );
        let mut secrets = Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(
            crate::event::scrub("codes WDJB-MJ Ab3dE r1 t1 n1", &secrets, 512),
            "codes [redacted] [redacted] [redacted] [redacted] [redacted]"
        );
    }

    #[test]
    fn a_secret_in_another_charset_is_scrubbed_as_that_charset_reads_it() {
        // `pässword1` in ISO-8859-1, percent-encoded and raw.
        for (body, quoted) in [
            (
                &b"grant_type=password&username=alice&password=p%E4ssword1"[..],
                "p\u{e4}ssword1",
            ),
            (b"username=alice&password=p\xe4ssword2", "p\u{e4}ssword2"),
        ] {
            let form = Form::parse(body);
            let mut secrets = Secrets::none();
            form.secrets_into(&mut secrets, &[]);
            let text = format!("bad password {quoted} for alice");
            let out = crate::event::scrub(&text, &secrets, 512);
            assert_eq!(out, "bad password [redacted] for alice");
            let mut head = HeadSecrets::default();
            form.head_secrets_into(&mut head);
            let mut secrets = Secrets::none();
            secrets.head(&head);
            let out = crate::event::scrub(&text, &secrets, 512);
            assert_eq!(out, "bad password [redacted] for alice");
        }
    }

    #[test]
    fn secret_names_are_secret_in_any_case() {
        let form =
            Form::parse(b"grant_type=password&username=alice&PASSWORD=hunt3r&Client_Secret=s3c");
        let mut secrets = Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(
            crate::event::scrub("bad hunt3r for alice, s3c", &secrets, 512),
            "bad [redacted] for alice, [redacted]"
        );
        let mut head = HeadSecrets::default();
        form.head_secrets_into(&mut head);
        let mut secrets = Secrets::none();
        secrets.head(&head);
        assert_eq!(
            crate::event::scrub("bad hunt3r, s3c", &secrets, 512),
            "bad [redacted], [redacted]"
        );
    }

    #[test]
    fn a_secret_parameter_after_a_semicolon_is_not_believed_and_is_scrubbed() {
        let form = Form::parse(b"grant_type=password&username=alice;password=pw1;x=2&scope=a;b");
        assert_eq!(form.get("username"), None);
        assert_eq!(form.get("scope"), Some("a;b"), "no parameter after the `;`");
        let mut secrets = Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(
            crate::event::scrub("password pw1 refused", &secrets, 512),
            "password [redacted] refused"
        );
    }

    #[test]
    fn framework_password_field_names_are_secret_names() {
        for name in [
            "j_password",
            "pwd",
            "user[password]",
            "Input.Password",
            "passwd",
            "new-passphrase",
            "passcode",
            "pass",
            "app_secret",
            "newPassword",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "compass",
            "bypass",
            "passive",
            "passport",
            "secretary",
            "grant_type",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
        for name in PUBLIC {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn a_public_uris_password_is_a_secret() {
        assert_eq!(
            user_information("https://client:pw@app/cb?x=@"),
            Some("client:pw")
        );
        assert_eq!(user_information("client:pw@app"), None);
        assert_eq!(user_information("svc@tenant"), None);
        assert_eq!(user_information("https://app/cb?next=a@b"), None);
        assert_eq!(user_information("https://@app/cb"), None);
        assert_eq!(user_information("https://app/cb"), None);
        let form = Form::parse(b"redirect_uri=https%3A%2F%2Fclient%3Ahunter2%40app%2Fcb");
        let mut secrets = Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(
            crate::event::scrub("uri https://client:hunter2@app/cb refused", &secrets, 512),
            "uri https://[redacted]@app/cb refused"
        );
        let mut head = HeadSecrets::default();
        form.head_secrets_into(&mut head);
        let mut secrets = Secrets::none();
        secrets.head(&head);
        assert!(
            !crate::event::scrub("refused https://client:hunter2@app/cb", &secrets, 512)
                .contains("hunter2")
        );
    }

    #[test]
    fn the_secrets_of_a_public_uris_query_are_secrets() {
        assert_eq!(
            uri_query_secrets("https://app/cb?tenant=t1&code=c1&state=a%2Fb#frag"),
            ["c1", "a%2Fb", "a/b"]
        );
        assert!(uri_query_secrets("https://app/cb?tenant=t1&x=1").is_empty());
        assert!(uri_query_secrets("https://app/cb").is_empty());
        let form = Form::parse(b"redirect_uri=https%3A%2F%2Fapp%2Fcb%3Fcode%3Dab12&scope=s");
        let quoted = "uri https%3A%2F%2Fapp%2Fcb%3Fcode%3Dab12 refused";
        let mut secrets = Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(
            crate::event::scrub(quoted, &secrets, 512),
            "uri https%3A%2F%2Fapp%2Fcb%3Fcode%3D[redacted] refused"
        );
        let mut head = HeadSecrets::default();
        form.head_secrets_into(&mut head);
        let mut secrets = Secrets::none();
        secrets.head(&head);
        for quoted in [quoted, "uri https%3a%2f%2fapp%2fcb%3fcode%3dab12 refused"] {
            assert_eq!(
                crate::event::scrub(quoted, &secrets, 512),
                "uri [redacted] refused"
            );
        }
    }

    #[test]
    fn the_secrets_of_a_public_uris_query_after_a_semicolon_or_in_a_nested_uri_are_secrets() {
        let holds = |uri: &str, secret: &str| uri_query_secrets(uri).iter().any(|s| s == secret);
        // Cut at `;` as some servers cut a query.
        assert!(holds("https://a/cb?scope=a;code=S3mi", "S3mi"));
        assert!(holds("https://a/cb?state=x;code=S3mi", "S3mi"));
        // Read whole too, as a server cutting at `&` alone reads it.
        assert!(holds("https://a/cb?code=ab;cd", "ab;cd"));
        assert!(holds("https://a/cb?code=ab;cd", "ab"));
        // A URI in the query, percent-encoded once or twice.
        assert!(holds(
            "https://a/cb?next=https%3A%2F%2Fb%2Fx%3Fcode%3DN3st",
            "N3st"
        ));
        assert!(holds(
            "https://a/cb?redirect_uri=https%3A%2F%2Fb%2Fx%3Fcode%3DN3st",
            "N3st"
        ));
        assert!(holds(
            "https://a/cb?resource=https%253A%252F%252Fb%252Fx%253Fcode%253DTw1ce",
            "Tw1ce"
        ));
        // Three URIs deep, each in the one before.
        let deepest = "https://d/x?code=D33p";
        let third = format!("https://c/x?resource={}", encoded(deepest));
        let second = format!("https://b/x?resource={}", encoded(&third));
        let first = format!("https://a/cb?resource={}", encoded(&second));
        assert!(holds(&second, "D33p"));
        // Bounded: a URI four deep is not read.
        assert!(!holds(&first, "D33p"));
        // Public values stay public.
        assert!(
            uri_query_secrets("https://a/cb?resource=https%3A%2F%2Fb%2Fx%3Fscope%3Da;x=1")
                .is_empty()
        );
    }

    /// `text` percent-encoded as a query's value.
    fn encoded(text: &str) -> String {
        form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    #[test]
    fn plain_names_and_values_are_borrowed() {
        let form = Form::parse(b"grant_type=client_credentials&&scope=a%3Ab+c&flag&=x&");
        let pairs: Vec<(&str, &str, bool)> = form
            .pairs
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref(), matches!(v, Cow::Borrowed(_))))
            .collect();
        assert_eq!(
            pairs,
            [
                ("grant_type", "client_credentials", true),
                ("scope", "a:b c", false),
                ("flag", "", true),
                ("", "x", true)
            ]
        );
        assert!(form
            .pairs
            .iter()
            .all(|(k, _)| matches!(k, Cow::Borrowed(_))));
        assert_eq!(component(b"%ff%41+"), "\u{fffd}A ");
        assert_eq!(component(b"\xff"), "\u{fffd}");
    }

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
        assert!(form.repeated().is_empty(), "resource may repeat");
        assert_eq!(
            format!("{form:?}"),
            r#"["grant_type", "scope", "resource", "resource", "empty"]"#
        );
    }

    #[test]
    fn repeated_parameters_are_ambiguous() {
        let form = Form::parse(
            b"username=innocent&username=victim&grant_type=password&scope=&scope=a&x=1&x=2&x=3",
        );
        assert_eq!(form.get("username"), None, "neither value is believed");
        assert_eq!(form.first("username"), Some("innocent"));
        assert_eq!(form.get("grant_type"), Some("password"));
        assert_eq!(
            form.get("scope"),
            Some("a"),
            "an empty value counts as omitted"
        );
        assert_eq!(form.repeated(), ["username", "x"]);
    }

    #[test]
    fn a_request_objects_secret_claims_are_secrets() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        // RFC 9101: the object carries what a form would, `state` and `nonce` included.
        let object = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256"}"#),
            b64(
                r#"{"iss":"client-app-1","client_id":"client-app-1","state":"st4te","nonce":"n0nce-n0nce","login_hint_token":"lht-1","x_key":"k3y-k3y-k3y"}"#
            )
        );
        let body = format!("client_id=client-app-1&request={object}");
        let form = Form::parse(body.as_bytes());
        let quoted = "nonce n0nce-n0nce, state st4te, hint lht-1, key k3y-k3y-k3y of client-app-1";
        let expected =
            "nonce [redacted], state [redacted], hint [redacted], key [redacted] of client-app-1";
        let mut secrets = Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        assert_eq!(crate::event::scrub(quoted, &secrets, 512), expected);
        // In a query (an authorization request), matched once the form is gone.
        let mut head = HeadSecrets::default();
        form.head_secrets_into(&mut head);
        let mut secrets = Secrets::none();
        secrets.head(&head);
        assert_eq!(crate::event::scrub(quoted, &secrets, 512), expected);
    }

    #[test]
    fn the_secrets_of_a_request_objects_redirect_uri_are_secrets() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let object = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"RS256"}"#),
            b64(
                r#"{"client_id":"app","redirect_uri":"https://app.example/cb?tenant=t1&code=ab12"}"#
            )
        );
        let form_text = format!("client_id=app&request={object}");
        let form = Form::parse(form_text.as_bytes());
        let quoted = "uri https%3A%2F%2Fapp.example%2Fcb%3Ftenant%3Dt1%26code%3Dab12 refused";
        let mut secrets = Secrets::none();
        form.secrets_into(&mut secrets, &[]);
        let out = crate::event::scrub(quoted, &secrets, 512);
        assert!(!out.contains("ab12") && out.contains("[redacted]"), "{out}");
        let mut head = HeadSecrets::default();
        form.head_secrets_into(&mut head);
        let mut secrets = Secrets::none();
        secrets.head(&head);
        let out = crate::event::scrub(quoted, &secrets, 512);
        assert!(!out.contains("ab12") && out.contains("[redacted]"), "{out}");
        // The public parameters of its query are not.
        assert_eq!(crate::event::scrub("tenant t1", &secrets, 512), "tenant t1");
    }

    #[test]
    fn a_name_sent_again_in_another_case_is_sent_twice() {
        // ASP.NET's form collection (so OpenIddict) reads names in any case: `USERNAME`
        // is the same parameter as `username`, sent twice.
        let form = Form::parse(b"grant_type=password&username=innocent&USERNAME=victim&Scope=a");
        assert_eq!(form.get("username"), None, "neither value is believed");
        assert_eq!(form.get("grant_type"), Some("password"));
        assert_eq!(
            form.get("scope"),
            None,
            "a case-sensitive server ignores `Scope`"
        );
        assert_eq!(form.repeated(), ["username"]);
        let long: String = (0..40).map(|i| format!("p{i}=v&")).collect();
        let long = format!("{long}Device_Code=a&device_code=b");
        let form = Form::parse(long.as_bytes());
        assert_eq!(form.get("device_code"), None);
        assert_eq!(form.repeated(), ["Device_Code"], "counted in a map too");
        let form = Form::parse(b"resource=a&RESOURCE=b");
        assert!(form.repeated().is_empty(), "resources may repeat");
    }

    #[test]
    fn a_query_names_beyond_a_body_what_the_body_has_no_value_for() {
        let body = Form::parse(b"grant_type=client_credentials&CLIENT_ID=app&scope=");
        assert!(!Form::parse(b"client_id=other&grant_type=x").names_beyond(Some(&body)));
        assert!(Form::parse(b"client_secret=s").names_beyond(Some(&body)));
        assert!(
            Form::parse(b"scope=read").names_beyond(Some(&body)),
            "an empty value is none"
        );
        assert!(!Form::parse(b"client_secret=&x").names_beyond(Some(&body)));
        assert!(Form::parse(b"a=1").names_beyond(None));
        assert!(!Form::parse(b"").names_beyond(None));
    }

    #[test]
    fn a_parameter_in_the_query_and_the_body_is_sent_twice() {
        let form = Form::parse(b"grant_type=password&username=innocent&scope=a&resource=r1")
            .with_query(Form::parse(b"USERNAME=victim&x=1&scope=&resource=r2"));
        assert_eq!(form.get("username"), None, "neither value is believed");
        assert_eq!(form.get("x"), None, "the query alone is not read");
        assert_eq!(form.get("scope"), Some("a"), "an empty value is omitted");
        assert_eq!(form.all("resource").collect::<Vec<_>>(), ["r1", "r2"]);
        assert_eq!(form.repeated(), ["username"]);
    }

    proptest::proptest! {
        /// Long forms are counted in a map: the same names, in the same order, as pairs
        /// compared one by one.
        #[test]
        fn repeated_names_are_the_same_counted_in_a_map(
            pairs in proptest::collection::vec(("[a-fA-C]{1,2}|resource|Resource", "[xy]{0,1}"), 0..60)
        ) {
            let body: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let body = body.join("&");
            let form = Form::parse(body.as_bytes());
            let counted = |(name, value): &&(Cow<'_, str>, Cow<'_, str>)| {
                !value.is_empty() && !MULTI_VALUED.iter().any(|m| m.eq_ignore_ascii_case(name))
            };
            // One by one, as short forms are read.
            let mut expected: Vec<String> = Vec::new();
            for (i, pair) in form.pairs.iter().enumerate() {
                if !counted(&pair) || expected.iter().any(|n| n.eq_ignore_ascii_case(&pair.0)) {
                    continue;
                }
                if form.pairs[i + 1..].iter().any(|later| later.0.eq_ignore_ascii_case(&pair.0) && counted(&later)) {
                    expected.push(ident(&pair.0));
                }
            }
            expected.truncate(MAX_REPEATED);
            proptest::prop_assert_eq!(form.repeated_counted(counted), expected);
        }
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
        // User information is no more recorded than the query.
        assert_eq!(
            uri_without_query("https://client:pw-0006@app/cb?code=secret"),
            "https://…@app/cb"
        );
        assert_eq!(uri_without_query("https://c:p?x@app/cb"), "https://…");
        // Text that is no URL keeps no query either (found by fuzzing).
        let odd = uri_without_query("\0@\0?x{?&&$&&@://&&");
        assert!(!odd.contains('?') && !odd.contains("x{"), "{odd:?}");
        assert_eq!(uri_without_query("user:pw-0006@host?x://y"), "…");
        // The fuzzer's own case, a Location that is no URL.
        let found = "\0\0@\0?\u{1}{\u{14}\u{6}?&&&&&&&&&&&&&&&&&&&&$&&&&@://&&&&&&&&&&&&&&";
        assert!(!uri_without_query(found).contains('?'));
        assert_eq!(uri_without_query("https://app/cb#x"), "https://app/cb");
        assert_eq!(ident("a\nb"), "a\\u{a}b");
    }

    proptest::proptest! {
        /// Arbitrary bytes: no panic, `get` agrees with a simple model (exactly one non-empty
        /// value), `repeated` names exactly the names the model sees twice, bounded.
        #[test]
        fn form_parser_agrees_with_a_model(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let form = Form::parse(&input);
            let pairs: Vec<(String, String)> = form_urlencoded::parse(&input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let mut names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
            names.dedup();
            for name in names {
                let values: Vec<&str> = pairs
                    .iter()
                    .filter(|(k, v)| k == name && !v.is_empty())
                    .map(|(_, v)| v.as_str())
                    .collect();
                // A value a `;`-separating server reads a secret parameter in is not believed.
                let expected = (values.len() == 1)
                    .then(|| values[0])
                    .filter(|v| !hides_a_secret(v));
                proptest::prop_assert_eq!(form.get(name), expected);
                if values.len() > 1 && !MULTI_VALUED.contains(&name) && form.repeated().len() < MAX_REPEATED {
                    proptest::prop_assert!(form.repeated().contains(&ident(name)));
                }
            }
            let repeated = form.repeated();
            proptest::prop_assert!(repeated.len() <= MAX_REPEATED);
            proptest::prop_assert!(repeated.iter().all(|n| n.len() <= MAX_ID));
            let mut secrets = Secrets::none();
            form.secrets_into(&mut secrets, &[]);
            for (name, value) in &pairs {
                // Alphanumeric values cannot be rebuilt across the brackets of "[redacted]".
                let checkable = !value.is_empty()
                    && value.chars().all(char::is_alphanumeric)
                    && !"redacted".contains(value.as_str())
                    && !"echo".contains(value.as_str());
                if crate::secret_params::SECRET.contains(&name.as_str()) && checkable {
                    let text = format!("echo {value} echo");
                    let out = crate::event::scrub(&text, &secrets, 4096);
                    proptest::prop_assert!(!out.contains(value.as_str()), "{out}");
                }
            }
        }
    }
}
