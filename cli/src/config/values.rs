//! Values that are checked while the file is read, so a bad one is reported with its line.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::Uri;
use serde::Deserialize;

// The values sinks share live with the library's configuration types.
pub use oauth_audit::config::{AtLeastOne, HttpUrl, HumanDuration, RequestPath};

/// A duration of at least 1ms (a timeout of zero would close everything at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PositiveDuration(pub Duration);

impl TryFrom<String> for PositiveDuration {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let HumanDuration(duration) = HumanDuration::try_from(value.clone())?;
        if duration.is_zero() {
            return Err(format!("{value:?}: must be at least 1ms"));
        }
        Ok(PositiveDuration(duration))
    }
}

/// A rate, `COUNT/PERIOD`: `"20/s"`, `"600/m"`, `"5/10s"` (a bare unit means one of it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RateSetting {
    /// How many.
    pub count: u32,
    /// Per how long.
    pub per: Duration,
}

impl TryFrom<String> for RateSetting {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bad =
            || format!("{value:?} is not a rate: write COUNT/PERIOD, e.g. \"20/s\" or \"5/10s\"");
        let (count, per) = value.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!("{value:?}: the count must be at least 1"));
        }
        let per = per.trim();
        let per = if per.starts_with(|c: char| c.is_ascii_digit()) {
            per.to_owned()
        } else {
            format!("1{per}")
        };
        let per = HumanDuration::try_from(per)?.0;
        if per.is_zero() {
            return Err(format!("{value:?}: the period must be longer than zero"));
        }
        Ok(RateSetting { count, per })
    }
}

/// A socket address to listen on, `IP:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddr(pub SocketAddr);

impl TryFrom<String> for ListenAddr {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse().map(ListenAddr).map_err(|_| {
            format!("{value:?} is not an address to listen on: write IP:PORT, e.g. \"0.0.0.0:8080\" or \"[::1]:8080\"")
        })
    }
}

// The library's helper, so the proxy's messages and the library's hide URLs the same way.
pub use oauth_audit::event::shown_url;

/// Refuses a URL with user information: credentials go in their own settings (and
/// environment variables), never in a URL that ends up in logs and events.
fn refuse_userinfo(uri: &Uri, value: &str) -> Result<(), String> {
    match uri.authority() {
        Some(authority) if authority.as_str().contains('@') => Err(format!(
            "{:?}: credentials in the URL are not allowed",
            shown_url(value)
        )),
        _ => Ok(()),
    }
}

/// The server the proxy forwards to: `http://` or `https://host:port` with an optional
/// base path.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UpstreamUrl {
    /// `http` or `https` (verified against `[proxy.upstream_tls]`).
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// A base path without a trailing slash (`""` for none).
    pub base_path: String,
}

impl UpstreamUrl {
    /// Whether the upstream is reached over TLS.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }
}

impl TryFrom<String> for UpstreamUrl {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let shown = shown_url(&value);
        let uri: Uri = value.parse().map_err(|e| {
            format!("{shown:?} is not a URL ({e}): write e.g. \"http://127.0.0.1:3000\"")
        })?;
        refuse_userinfo(&uri, &value)?;
        let scheme = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => Scheme::HTTP,
            Some(s) if *s == Scheme::HTTPS => Scheme::HTTPS,
            _ => {
                return Err(format!(
                    "{shown:?}: the upstream must be an http:// or https:// URL"
                ))
            }
        };
        let Some(authority) = uri.authority().cloned() else {
            return Err(format!("{shown:?} has no host"));
        };
        if uri.query().is_some() {
            return Err(format!("{shown:?}: an upstream URL has no query string"));
        }
        Ok(UpstreamUrl {
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.base_path)
    }
}

/// A host the proxy answers for (`proxy.allowed_hosts`): a name or IP address, with a port
/// when only that port is meant. Compared without case and without a trailing dot.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AllowedHost {
    /// Lower case, without a trailing dot; an IPv6 address in brackets.
    pub host: String,
    /// The port a request must name, if any.
    pub port: Option<u16>,
}

impl AllowedHost {
    /// Whether a request's `Host` (or HTTP/2 `:authority`) names this host.
    /// An authority with user information (`evil.example@auth.example`) names no allowed
    /// host: its host is not what every server reads it as.
    pub fn matches(&self, authority: &Authority) -> bool {
        !authority.as_str().contains('@')
            && without_trailing_dot(authority.host()).eq_ignore_ascii_case(&self.host)
            && self
                .port
                .is_none_or(|port| authority.port_u16() == Some(port))
    }
}

impl TryFrom<String> for AllowedHost {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let authority: Authority = value
            .parse()
            .map_err(|e| format!("{value:?} is not a host or host:port ({e})"))?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(format!("{value:?} is not a host or host:port"));
        }
        Ok(AllowedHost {
            host: without_trailing_dot(authority.host()).to_ascii_lowercase(),
            port: authority.port_u16(),
        })
    }
}

/// `auth.example.com.` is `auth.example.com` (a fully qualified name's root label).
fn without_trailing_dot(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

/// An IP address or CIDR block of a proxy whose forwarding headers are believed.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr(pub String);

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        // The library's own parser: what passes here is what the layer accepts.
        if oauth_audit::TrustedProxies::new([value.as_str()]).is_ok() {
            Ok(Cidr(value))
        } else {
            Err(format!(
                "{value:?} is not an IP address or CIDR block (e.g. \"10.0.0.0/8\")"
            ))
        }
    }
}

/// The header trusted proxies write the client's address into: `x-forwarded-for`,
/// `forwarded`, or a single-value header such as `x-real-ip` or `cf-connecting-ip`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ClientIpHeader(pub oauth_audit::ClientIpSource);

impl TryFrom<String> for ClientIpHeader {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse().map(ClientIpHeader).map_err(|_| {
            format!("{value:?} is not a header name: use \"x-forwarded-for\", \"forwarded\" or a single-value header such as \"x-real-ip\"")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_hosts_match_without_case_trailing_dot_or_unnamed_port() {
        let any_port = AllowedHost::try_from("Auth.Example.com.".to_owned()).unwrap();
        let one_port = AllowedHost::try_from("auth.example.com:8443".to_owned()).unwrap();
        let v6 = AllowedHost::try_from("[2001:db8::1]".to_owned()).unwrap();
        let authority = |text: &str| text.parse::<Authority>().unwrap();
        for name in [
            "auth.example.com",
            "AUTH.example.COM.",
            "auth.example.com:8443",
        ] {
            assert!(any_port.matches(&authority(name)), "{name}");
        }
        assert!(one_port.matches(&authority("Auth.Example.Com:8443")));
        for name in ["auth.example.com", "auth.example.com:443"] {
            assert!(!one_port.matches(&authority(name)), "{name}");
        }
        for name in [
            "evil.example",
            "auth.example.com.evil.example",
            "xauth.example.com",
        ] {
            assert!(!any_port.matches(&authority(name)), "{name}");
        }
        assert!(v6.matches(&authority("[2001:DB8::1]:443")));
        for bad in [
            "",
            "user@auth.example.com",
            "auth.example.com/path",
            "auth example",
        ] {
            assert!(AllowedHost::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates() {
        let r = |s: &str| RateSetting::try_from(s.to_owned()).map(|r| (r.count, r.per));
        assert_eq!(r("20/s"), Ok((20, Duration::from_secs(1))));
        assert_eq!(r("600/m"), Ok((600, Duration::from_secs(60))));
        assert_eq!(r(" 5 / 10s "), Ok((5, Duration::from_secs(10))));
        assert!(r("0/s").unwrap_err().contains("at least 1"));
        assert!(r("5/0s").unwrap_err().contains("longer than zero"));
        assert!(r("5").unwrap_err().contains("COUNT/PERIOD"));
        assert!(r("x/s").unwrap_err().contains("COUNT/PERIOD"));
        assert!(r("5/fortnight").is_err());
    }

    #[test]
    fn upstream_urls() {
        let u = UpstreamUrl::try_from("http://127.0.0.1:3000/auth/".to_owned()).unwrap();
        assert_eq!(u.authority.as_str(), "127.0.0.1:3000");
        assert_eq!(u.base_path, "/auth");
        assert_eq!(u.to_string(), "http://127.0.0.1:3000/auth");
        let tls = UpstreamUrl::try_from("https://idp.example:8443".to_owned()).unwrap();
        assert!(tls.is_https());
        assert_eq!(tls.to_string(), "https://idp.example:8443");
        assert!(UpstreamUrl::try_from("ftp://idp".to_owned()).is_err());
        assert!(UpstreamUrl::try_from("localhost:3000".to_owned()).is_err());
    }

    #[test]
    fn cidrs() {
        assert!(Cidr::try_from("10.0.0.0/8".to_owned()).is_ok());
        assert!(Cidr::try_from("::1".to_owned()).is_ok());
        assert!(Cidr::try_from("10.0.0.0/33".to_owned()).is_err());
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text: no panic; an accepted upstream prints as a URL that parses back to
            /// the same upstream, with no credentials, no query and no trailing slash.
            #[test]
            fn upstream_urls_round_trip(input in ".{0,80}") {
                if let Ok(url) = UpstreamUrl::try_from(input) {
                    let shown = url.to_string();
                    prop_assert!(!shown.contains('@') && !shown.contains('?'), "{}", shown);
                    prop_assert!(!url.base_path.ends_with('/'));
                    prop_assert!(url.scheme == Scheme::HTTP || url.scheme == Scheme::HTTPS);
                    prop_assert_eq!(UpstreamUrl::try_from(shown), Ok(url));
                }
            }

            /// URL-shaped text: agrees with a simple model of what is accepted.
            #[test]
            fn upstream_urls_follow_the_model(
                scheme in "(http|https|ftp|HTTP)",
                user in proptest::option::of("[a-z]{1,5}:PW[A-Z]{6}"),
                host in "[a-z]{1,10}(\\.[a-z]{1,5})?",
                port in proptest::option::of(1u16..),
                path in "(/[a-z0-9]{0,6}){0,3}/?",
                query in proptest::option::of("[a-z=]{0,6}"),
            ) {
                let mut text = format!("{scheme}://");
                if let Some(user) = &user {
                    text.push_str(user);
                    text.push('@');
                }
                text.push_str(&host);
                if let Some(port) = port {
                    text.push_str(&format!(":{port}"));
                }
                text.push_str(&path);
                if let Some(query) = &query {
                    text.push('?');
                    text.push_str(query);
                }
                let accepted = matches!(scheme.as_str(), "http" | "https" | "HTTP")
                    && user.is_none()
                    && query.is_none();
                let parsed = UpstreamUrl::try_from(text.clone());
                prop_assert_eq!(parsed.is_ok(), accepted, "{}: {:?}", text, parsed);
                if let Ok(url) = parsed {
                    prop_assert_eq!(url.base_path, path.trim_end_matches('/'));
                } else if let Some((_, password)) = user.as_deref().and_then(|u| u.split_once(':')) {
                    prop_assert!(!parsed.unwrap_err().contains(password), "never quoted back");
                }
            }

            /// Any text: no panic; an accepted duration prints back to itself in ms.
            #[test]
            fn durations_round_trip(input in ".{0,24}") {
                if let Ok(HumanDuration(duration)) = HumanDuration::try_from(input.clone()) {
                    let millis = format!("{}ms", duration.as_millis());
                    prop_assert_eq!(HumanDuration::try_from(millis), Ok(HumanDuration(duration)));
                    let positive = PositiveDuration::try_from(input);
                    prop_assert_eq!(positive.is_ok(), !duration.is_zero());
                }
            }
        }
    }
}
