//! The fields rules read, from a live [`AuditEvent`] or from one read back as JSON.

use std::borrow::Cow;

use serde_json::Value;

use crate::event::AuditEvent;

/// A field of an audit event a rule can group by or count distinct values of, named as in
/// the schema (`source.ip`, `actor.subject`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `source.ip`: the client address.
    SourceIp,
    /// `source.user_agent`.
    UserAgent,
    /// `actor.subject`: the user (the username of a failed login or password grant).
    Subject,
    /// `actor.client_id`.
    ClientId,
    /// `token.fingerprint`: one access token.
    Token,
    /// `error.code`.
    ErrorCode,
    /// `redirect_uri`.
    RedirectUri,
    /// `http.route`.
    Route,
    /// `oauth.presented_refresh_token.fingerprint`: the refresh token a refresh grant
    /// presented.
    PresentedRefreshToken,
    /// `refresh_token.fingerprint`: the refresh token issued alongside.
    RefreshToken,
    /// `source.geo.country`: the country of the address (from geo enrichment).
    Country,
    /// `source.geo.city`: the city of the address (from geo enrichment).
    City,
    /// `token.binding.jkt`: the key a sender-constrained token is bound to (at the token
    /// endpoint, else `oauth.dpop.jkt`: the key of the request's proof).
    BindingKey,
    /// `token.binding.proof`: the outcome of its proof of possession (at the token endpoint,
    /// else `oauth.dpop.proof`).
    BindingProof,
}

impl Field {
    /// Every field, in the order of the schema.
    pub const ALL: [Field; 14] = [
        Field::SourceIp,
        Field::UserAgent,
        Field::Country,
        Field::City,
        Field::Subject,
        Field::ClientId,
        Field::Token,
        Field::RefreshToken,
        Field::ErrorCode,
        Field::RedirectUri,
        Field::PresentedRefreshToken,
        Field::Route,
        Field::BindingKey,
        Field::BindingProof,
    ];

    /// The field's name in the schema.
    pub fn name(self) -> &'static str {
        match self {
            Field::SourceIp => "source.ip",
            Field::UserAgent => "source.user_agent",
            Field::Subject => "actor.subject",
            Field::ClientId => "actor.client_id",
            Field::Token => "token.fingerprint",
            Field::ErrorCode => "error.code",
            Field::RedirectUri => "redirect_uri",
            Field::Route => "http.route",
            Field::PresentedRefreshToken => "oauth.presented_refresh_token.fingerprint",
            Field::RefreshToken => "refresh_token.fingerprint",
            Field::Country => "source.geo.country",
            Field::City => "source.geo.city",
            Field::BindingKey => "token.binding.jkt",
            Field::BindingProof => "token.binding.proof",
        }
    }
}

impl std::str::FromStr for Field {
    type Err = String;

    /// A field by its name in the schema (`source.ip`).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Field::ALL
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                format!("unknown field {name:?}; one of {}", known.join(", "))
            })
    }
}

/// An event as the rules see it: a few fields, whether it was made here or read back.
pub trait Observed {
    /// The event's `id`, when it is a UUID (as every event this crate makes).
    fn id(&self) -> Option<uuid::Uuid>;
    /// The event's `kind` (`LoginFailed`...).
    fn kind(&self) -> Cow<'_, str>;
    /// The event's time in microseconds since the Unix epoch.
    fn time_micros(&self) -> Option<i64>;
    /// `grant_type`.
    fn grant_type(&self) -> Option<Cow<'_, str>>;
    /// `token.verdict`.
    fn verdict(&self) -> Option<Cow<'_, str>>;
    /// `token.active` (from introspection).
    fn token_active(&self) -> Option<bool>;

    /// `outcome` (`success`, `failure`, `unknown`), when the event has one.
    fn outcome(&self) -> Option<Cow<'_, str>> {
        None
    }
    /// `client_auth` (`none` for a public client).
    fn client_auth(&self) -> Option<Cow<'_, str>> {
        None
    }
    /// `source.geo.lat` and `source.geo.lon`, when both are known.
    fn location(&self) -> Option<(f64, f64)> {
        None
    }
    /// `token.binding.downgrade`: a bound token presented without its proof.
    fn binding_downgrade(&self) -> bool {
        false
    }
    /// The value of `field`, when the event has it.
    fn field(&self, field: Field) -> Option<Cow<'_, str>>;

    /// Whether the request sent parameter `name` more than once
    /// (`oauth.repeated_parameters`): its value is then not recorded, as the server may have
    /// read either.
    fn repeated(&self, name: &str) -> bool {
        let _ = name;
        false
    }

    /// Whether the request's body was not read (`oauth.body_inspected: false`: longer than
    /// the limit, compressed, over the capture budget): what it sent is then not recorded.
    fn body_unread(&self) -> bool {
        false
    }

    /// `source.ip` as an address, when it is one; the default parses the text.
    fn source_ip(&self) -> Option<std::net::IpAddr> {
        self.field(Field::SourceIp)?.parse().ok()
    }

    /// Feeds the value of `field` to `hasher`; false when the event has none. Events of one
    /// type hash equal values alike (what grouping needs); the default hashes the text.
    fn hash_field(&self, field: Field, hasher: &mut dyn std::hash::Hasher) -> bool {
        match self.field(field) {
            Some(value) => {
                hasher.write(value.as_bytes());
                hasher.write_u8(0xff);
                true
            }
            None => false,
        }
    }
}

impl Observed for AuditEvent {
    fn id(&self) -> Option<uuid::Uuid> {
        Some(self.id)
    }

    fn source_ip(&self) -> Option<std::net::IpAddr> {
        self.source.as_ref()?.ip
    }

    fn hash_field(&self, field: Field, hasher: &mut dyn std::hash::Hasher) -> bool {
        // Without formatting addresses and fingerprints as text: this runs for every rule
        // an event matches.
        match field {
            Field::SourceIp => match self.source.as_ref().and_then(|s| s.ip) {
                Some(std::net::IpAddr::V4(ip)) => hasher.write(&ip.octets()),
                Some(std::net::IpAddr::V6(ip)) => hasher.write(&ip.octets()),
                None => return false,
            },
            Field::Token => match &self.token {
                Some(token) => hasher.write(token.fingerprint.as_bytes()),
                None => return false,
            },
            Field::PresentedRefreshToken | Field::RefreshToken => {
                match self.refresh_fingerprint(field) {
                    Some(fingerprint) => hasher.write(fingerprint.as_bytes()),
                    None => return false,
                }
            }
            _ => match self.field(field) {
                Some(value) => {
                    hasher.write(value.as_bytes());
                    hasher.write_u8(0xff);
                }
                None => return false,
            },
        }
        true
    }

    fn kind(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.kind.as_str())
    }

    fn time_micros(&self) -> Option<i64> {
        Some(self.time.unix_micros())
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.grant_type.as_deref().map(Cow::Borrowed)
    }

    fn verdict(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.token.as_ref()?.verdict?.as_str()))
    }

    fn token_active(&self) -> Option<bool> {
        self.token.as_ref()?.active
    }

    fn outcome(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.outcome.as_str()))
    }

    fn client_auth(&self) -> Option<Cow<'_, str>> {
        self.client_auth.map(|auth| Cow::Borrowed(auth.as_str()))
    }

    fn location(&self) -> Option<(f64, f64)> {
        self.source.as_ref()?.geo.as_ref()?.location()
    }

    fn binding_downgrade(&self) -> bool {
        self.token
            .as_ref()
            .and_then(|t| t.binding.as_ref())
            .is_some_and(|b| b.downgrade)
    }

    fn body_unread(&self) -> bool {
        self.oauth
            .as_ref()
            .is_some_and(|oauth| oauth.body_inspected == Some(false))
    }

    fn repeated(&self, name: &str) -> bool {
        self.oauth.as_ref().is_some_and(|oauth| {
            oauth
                .repeated_parameters
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
        })
    }

    fn field(&self, field: Field) -> Option<Cow<'_, str>> {
        /// A text field as it is (a `String`, or a `CompactString` like `http.route`).
        fn borrowed<T: std::ops::Deref<Target = str>>(s: &Option<T>) -> Option<Cow<'_, str>> {
            s.as_deref().map(Cow::Borrowed)
        }
        match field {
            Field::SourceIp => self
                .source
                .as_ref()?
                .ip
                .map(|ip| Cow::Owned(ip.to_string())),
            Field::UserAgent => borrowed(&self.source.as_ref()?.user_agent),
            Field::Subject => borrowed(&self.actor.subject),
            Field::ClientId => borrowed(&self.actor.client_id),
            Field::Token => self
                .token
                .as_ref()
                .map(|t| Cow::Owned(t.fingerprint.to_string())),
            Field::ErrorCode => self.error.as_ref().map(|e| Cow::Borrowed(e.code.as_str())),
            Field::RedirectUri => borrowed(&self.redirect_uri),
            Field::Route => borrowed(&self.http.as_ref()?.route),
            Field::PresentedRefreshToken | Field::RefreshToken => self
                .refresh_fingerprint(field)
                .map(|f| Cow::Owned(f.to_string())),
            Field::Country => borrowed(&self.source.as_ref()?.geo.as_ref()?.country),
            Field::City => borrowed(&self.source.as_ref()?.geo.as_ref()?.city),
            Field::BindingKey | Field::BindingProof => {
                let binding = self
                    .token
                    .as_ref()
                    .and_then(|t| t.binding.as_deref())
                    .or_else(|| self.oauth.as_ref()?.dpop.as_ref())?;
                match field {
                    Field::BindingKey => borrowed(&binding.jkt),
                    _ => binding.proof.map(|p| Cow::Borrowed(p.as_str())),
                }
            }
        }
    }
}

impl AuditEvent {
    /// The fingerprint of the refresh token `field` names (presented or issued).
    fn refresh_fingerprint(&self, field: Field) -> Option<&crate::token::TokenFingerprint> {
        let token = match field {
            Field::PresentedRefreshToken => self.oauth.as_ref()?.presented_refresh_token.as_ref(),
            Field::RefreshToken => self.refresh_token.as_deref(),
            _ => None,
        };
        token.map(|t| &t.fingerprint)
    }
}

impl Observed for Value {
    fn id(&self) -> Option<uuid::Uuid> {
        self["id"].as_str()?.parse().ok()
    }

    fn kind(&self) -> Cow<'_, str> {
        Cow::Borrowed(self["kind"].as_str().unwrap_or(""))
    }

    fn time_micros(&self) -> Option<i64> {
        let time = crate::event::Timestamp::parse(self["time"].as_str()?)?;
        Some(time.unix_micros())
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self["grant_type"].as_str().map(Cow::Borrowed)
    }

    fn verdict(&self) -> Option<Cow<'_, str>> {
        self["token"]["verdict"].as_str().map(Cow::Borrowed)
    }

    fn token_active(&self) -> Option<bool> {
        self["token"]["active"].as_bool()
    }

    fn outcome(&self) -> Option<Cow<'_, str>> {
        self["outcome"].as_str().map(Cow::Borrowed)
    }

    fn client_auth(&self) -> Option<Cow<'_, str>> {
        self["client_auth"].as_str().map(Cow::Borrowed)
    }

    fn location(&self) -> Option<(f64, f64)> {
        let geo = &self["source"]["geo"];
        let (lat, lon) = (geo["lat"].as_f64()?, geo["lon"].as_f64()?);
        (lat.abs() <= 90.0 && lon.abs() <= 180.0).then_some((lat, lon))
    }

    fn binding_downgrade(&self) -> bool {
        self["token"]["binding"]["downgrade"].as_bool() == Some(true)
    }

    fn body_unread(&self) -> bool {
        self["oauth"]["body_inspected"].as_bool() == Some(false)
    }

    fn repeated(&self, name: &str) -> bool {
        self["oauth"]["repeated_parameters"]
            .as_array()
            .is_some_and(|names| {
                names
                    .iter()
                    .any(|p| p.as_str().is_some_and(|p| p.eq_ignore_ascii_case(name)))
            })
    }

    fn field(&self, field: Field) -> Option<Cow<'_, str>> {
        let value = match field {
            Field::SourceIp => &self["source"]["ip"],
            Field::UserAgent => &self["source"]["user_agent"],
            Field::Subject => &self["actor"]["subject"],
            Field::ClientId => &self["actor"]["client_id"],
            Field::Token => &self["token"]["fingerprint"],
            Field::ErrorCode => &self["error"]["code"],
            Field::RedirectUri => &self["redirect_uri"],
            Field::Route => &self["http"]["route"],
            Field::PresentedRefreshToken => {
                &self["oauth"]["presented_refresh_token"]["fingerprint"]
            }
            Field::RefreshToken => &self["refresh_token"]["fingerprint"],
            Field::Country => &self["source"]["geo"]["country"],
            Field::City => &self["source"]["geo"]["city"],
            Field::BindingKey | Field::BindingProof => {
                let name = if field == Field::BindingKey {
                    "jkt"
                } else {
                    "proof"
                };
                let bound = &self["token"]["binding"][name];
                if bound.is_null() {
                    &self["oauth"]["dpop"][name]
                } else {
                    bound
                }
            }
        };
        value.as_str().map(Cow::Borrowed)
    }
}

/// Whether `event`'s grant type was sent but is not recorded: sent more than once, or in a
/// body not read. The server may have read any grant type, `password` among them.
pub(super) fn grant_type_unknown(event: &impl Observed) -> bool {
    event.grant_type().is_none() && (event.repeated("grant_type") || event.body_unread())
}

/// The network a rule groups an address by: an IPv4 address itself (an IPv4-mapped IPv6
/// address, or a 6to4 one, as the IPv4 one), an IPv6 address's /64. A /64 is one site's or one host's
/// (RFC 4291 §2.5.4; a home line or a cloud server is given at least one): grouping by the
/// full address would let one client send each request from a new one of its 2^64.
pub(super) fn address_group(ip: std::net::IpAddr) -> std::net::IpAddr {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            // RFC 6052's well-known NAT64 prefix, 64:ff9b::/96: how an IPv6-only service
            // behind NAT64 or SIIT sees every IPv4 client, each its own (a /64 would make
            // them all one).
            None if matches!(v6.segments(), [0x64, 0xff9b, 0, 0, 0, 0, _, _]) => {
                let [.., a, b, c, d] = v6.octets();
                IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
            }
            // RFC 3056's 6to4, 2002:V4ADDR::/48: a host with an IPv4 address holds the
            // whole /48 and writes the 16 bits after its address as it likes (a /64 would
            // make one host 65,536 clients).
            None if v6.segments()[0] == 0x2002 => {
                let [_, _, a, b, c, d, ..] = v6.octets();
                IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d))
            }
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// [`address_group`] as an alert's key names it: `203.0.113.9`, `2001:db8:1:2::/64`.
pub(super) fn address_group_text(ip: std::net::IpAddr) -> String {
    match address_group(ip) {
        std::net::IpAddr::V6(net) => format!("{net}/64"),
        v4 => v4.to_string(),
    }
}

/// A user name as rules group it: without surrounding white space or control characters
/// (also as the trail escapes them: `alice\u{9}`), in its compatibility form (NFKC) and
/// folded (the lower case of its upper case). Most authorization servers match user names
/// so (Keycloak trims them as Java's `trim` does, dropping every control character at
/// either end, and stores them in lower case; Okta and Auth0 compare e-mail addresses
/// without case; ASP.NET Identity looks them up in NFC and upper case, where a dotless `ı`
/// and a long `ſ` are an `I` and an `S`; Django's login form reads them in NFKC, where
/// `ａｌｉｃｅ` is `alice`): `Alice`, `alice `, `alice<TAB>`, `alıce` and `ａｌｉｃｅ` are
/// one user, and an attacker who spells each guess differently must not split one user's
/// failures into groups that never reach a threshold. Folding more than a given server does
/// (`straße` is `strasse`) only joins names that one server or another takes for one.
pub(super) fn subject_group(subject: &str) -> Cow<'_, str> {
    use unicode_normalization::UnicodeNormalization;
    let trimmed = trim_blanks(subject);
    if trimmed
        .bytes()
        .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
    {
        // Nearly every user name: nothing to fold.
        return Cow::Borrowed(trimmed);
    }
    // Titlecase letters (`ǅ`) are not uppercase, yet have a lower case; a dotless `ı` and
    // a long `ſ` are lower case, yet their upper case is `I` and `S`.
    let compatible: String = trimmed.nfkc().collect();
    let folded = compatible.to_uppercase().to_lowercase();
    // Compatibility forms can be blanks (U+2003 is a space), and the fold keeps them.
    let folded_trimmed = trim_blanks(&folded);
    if folded_trimmed == trimmed {
        Cow::Borrowed(trimmed)
    } else {
        Cow::Owned(folded_trimmed.to_owned())
    }
}

/// `text` without white space or control characters at either end, whether as they are or
/// escaped as [`sanitize`](crate::event::sanitize) escapes them (`\u{9}`, `\u{2028}`): a
/// user name is recorded escaped, and its blanks are blanks all the same.
fn trim_blanks(mut text: &str) -> &str {
    /// Whether `hex`, the digits of a `\u{..}` escape, stands for a blank.
    fn blank(hex: &str) -> bool {
        hex.len() <= 6
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && u32::from_str_radix(hex, 16)
                .ok()
                .and_then(char::from_u32)
                .is_some_and(|c| c.is_whitespace() || c.is_control())
    }
    loop {
        let before = text.len();
        text = text.trim_matches(|c: char| c.is_whitespace() || c.is_control());
        // An escape is at most `\u{10ffff}`: only that much is looked at, so that a long
        // name costs no more per turn than a short one.
        if let Some(rest) = text.strip_prefix("\\u{") {
            let end = rest.bytes().take(7).position(|b| b == b'}');
            if let Some(end) = end.filter(|&end| blank(&rest[..end])) {
                text = &rest[end + 1..];
            }
        }
        if let Some(rest) = text.strip_suffix('}') {
            let from = rest.len().saturating_sub(9);
            let start = rest.as_bytes()[from..]
                .windows(3)
                .rposition(|w| w == b"\\u{")
                .map(|i| from + i);
            if let Some(start) = start.filter(|&start| blank(&rest[start + 3..])) {
                text = &text[..start];
            }
        }
        // Each turn takes a blank away, or is the last.
        if text.len() == before {
            return text;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_group_by_network() {
        let group = |ip: &str| address_group_text(ip.parse().unwrap());
        assert_eq!(group("203.0.113.9"), "203.0.113.9");
        assert_eq!(group("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(group("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            group("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(group("2001:db8:1:3::1"), group("2001:db8:1:2::1"));
        assert_eq!(group("2002:cb00:7109:ffff::1"), "203.0.113.9");
        assert_eq!(group("2002:cb00:7109::1"), "203.0.113.9");
    }

    #[test]
    fn user_names_group_without_case_or_surrounding_blanks() {
        assert!(matches!(subject_group("alice"), Cow::Borrowed("alice")));
        assert_eq!(subject_group(" Alice\t"), "alice");
        assert_eq!(subject_group("ÉLODIE"), "élodie");
        assert!(matches!(subject_group("élodie"), Cow::Borrowed(_)));
        // A titlecase letter is no uppercase one, yet has a lower case (and its
        // compatibility form is two letters, as `DŽ` and `ǆ` are).
        assert_eq!(subject_group("\u{1c5}ana"), "d\u{17e}ana");
        assert_eq!(subject_group("\u{1c5}ana"), subject_group("\u{1c6}ana"));
        assert_eq!(subject_group("\u{1c5}ana"), subject_group("D\u{17d}ana"));
        assert_eq!(subject_group("a b"), "a b");
        // Blanks as the trail records them: escaped.
        assert_eq!(subject_group("\\u{9}Alice\\u{d}\\u{a} "), "alice");
        assert_eq!(subject_group("alice\\u{2028}"), "alice");
        assert_eq!(subject_group("alice\u{85}"), "alice");
        assert_eq!(subject_group("alice\\u{200b}"), "alice\\u{200b}");
        assert_eq!(subject_group("a\\u{9}b"), "a\\u{9}b");
        assert_eq!(subject_group("\\u{9}"), "");
        assert_eq!(subject_group("alice\\u{+9}"), "alice\\u{+9}");
        // Folded as servers fold them: compatibility forms, then the lower case of the
        // upper case (a dotless i and a long s are an i and an s in upper case).
        assert_eq!(subject_group("ALıCE"), "alice");
        assert_eq!(subject_group("miſſiſſippi"), "mississippi");
        assert_eq!(subject_group("ａｌｉｃｅ"), "alice");
        assert_eq!(subject_group("e\u{301}lodie"), "élodie");
        assert_eq!(subject_group("\u{212a}im"), "kim");
        assert_eq!(subject_group("straße"), "strasse");
    }
}
