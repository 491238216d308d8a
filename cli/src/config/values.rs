//! Values that are checked while the file is read, so a bad one is reported with its line.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::Uri;
use serde::Deserialize;

/// A duration written as a number and a unit: `500ms`, `30s`, `5m`, `2h`, `365d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HumanDuration(pub Duration);

impl TryFrom<String> for HumanDuration {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let text = value.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: u64 = number.parse().map_err(|_| {
            format!("{value:?} is not a duration: write a whole number and a unit, e.g. \"30s\"")
        })?;
        let seconds = match unit {
            "ms" => return Ok(HumanDuration(Duration::from_millis(number))),
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => {
                return Err(format!(
                    "{value:?} has no known unit: use ms, s, m, h or d (e.g. \"30s\")"
                ))
            }
        };
        number
            .checked_mul(seconds)
            .map(|s| HumanDuration(Duration::from_secs(s)))
            .ok_or_else(|| format!("{value:?} is too long"))
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

/// `value` as it may appear in a message: a URL's user information and query string (where
/// passwords and tokens hide) are replaced by `…`.
pub fn shown_url(value: &str) -> String {
    let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
    let rest = rest.split_once('?').map_or(rest, |(before, _)| before);
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let authority = authority
        .rsplit_once('@')
        .map_or(authority.to_owned(), |(_, host)| format!("…@{host}"));
    let query = if value.contains('?') { "?…" } else { "" };
    let sep = if value.contains("://") { "://" } else { "" };
    format!("{scheme}{sep}{authority}{path}{query}")
}

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

/// The server the proxy forwards to: `http://host:port` with an optional base path.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UpstreamUrl {
    /// Always `http`: TLS towards the upstream is the job of a sidecar's network, not ours.
    pub scheme: Scheme,
    /// Host and port.
    pub authority: Authority,
    /// A base path without a trailing slash (`""` for none).
    pub base_path: String,
}

impl TryFrom<String> for UpstreamUrl {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let shown = shown_url(&value);
        let uri: Uri = value.parse().map_err(|e| {
            format!("{shown:?} is not a URL ({e}): write e.g. \"http://127.0.0.1:3000\"")
        })?;
        refuse_userinfo(&uri, &value)?;
        if uri.scheme() != Some(&Scheme::HTTP) {
            return Err(format!(
                "{shown:?}: the upstream must be an http:// URL (terminate TLS in front of the proxy, talk plain http to a local upstream)"
            ));
        }
        let Some(authority) = uri.authority().cloned() else {
            return Err(format!("{shown:?} has no host"));
        };
        if uri.query().is_some() {
            return Err(format!("{shown:?}: an upstream URL has no query string"));
        }
        Ok(UpstreamUrl {
            scheme: Scheme::HTTP,
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

/// An http(s) URL (JWKS, introspection).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct HttpUrl(pub String);

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let shown = shown_url(&value);
        let uri: Uri = value
            .parse()
            .map_err(|e| format!("{shown:?} is not a URL ({e})"))?;
        refuse_userinfo(&uri, &value)?;
        match uri.scheme_str() {
            Some("http" | "https") if uri.authority().is_some() => Ok(HttpUrl(value)),
            _ => Err(format!(
                "{shown:?} is not an http:// or https:// URL with a host"
            )),
        }
    }
}

/// A request path: starts with `/`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct RequestPath(pub String);

impl TryFrom<String> for RequestPath {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if !value.starts_with('/') {
            Err(format!("{value:?} is not a path: paths start with '/'"))
        } else if value.contains(['?', '#']) {
            Err(format!("{value:?}: a path has no query string or fragment"))
        } else {
            Ok(RequestPath(value))
        }
    }
}

/// A count or size of at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct AtLeastOne(pub u64);

impl TryFrom<i64> for AtLeastOne {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        u64::try_from(value)
            .ok()
            .filter(|v| *v >= 1)
            .map(AtLeastOne)
            .ok_or_else(|| format!("{value} is not allowed: the value must be at least 1"))
    }
}

impl AtLeastOne {
    /// As a `usize` (saturating on 32-bit targets).
    pub fn get(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// How many body bytes the layer inspects: 1 byte to 16 MiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "i64")]
pub struct BodyLimit(pub usize);

impl TryFrom<i64> for BodyLimit {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        const MAX: i64 = 16 * 1024 * 1024;
        if (1..=MAX).contains(&value) {
            Ok(BodyLimit(value as usize))
        } else {
            Err(format!(
                "{value} bytes: choose between 1 and {MAX} (the default is 65536)"
            ))
        }
    }
}

/// A string that must not be empty (a form field name, a file name prefix).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(pub String);

impl TryFrom<String> for Name {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.trim().is_empty() {
            Err("must not be empty".into())
        } else if value.contains(['/', '\\']) {
            Err(format!("{value:?} must not contain '/' or '\\'"))
        } else {
            Ok(Name(value))
        }
    }
}

/// An HTTP header name, or `""` for none.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct OptionalHeader(pub Option<String>);

impl TryFrom<String> for OptionalHeader {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value.is_empty() {
            return Ok(OptionalHeader(None));
        }
        http::HeaderName::from_bytes(value.as_bytes())
            .map(|_| OptionalHeader(Some(value.clone())))
            .map_err(|_| format!("{value:?} is not an HTTP header name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s: &str| HumanDuration::try_from(s.to_owned()).map(|d| d.0);
        assert_eq!(d("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(d("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(d("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(d("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(d("365d"), Ok(Duration::from_secs(365 * 86_400)));
        assert!(d("30").unwrap_err().contains("unit"));
        assert!(d("s").unwrap_err().contains("whole number"));
        assert!(d("1.5s").is_err());
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
        assert!(UpstreamUrl::try_from("https://idp".to_owned()).is_err());
        assert!(UpstreamUrl::try_from("localhost:3000".to_owned()).is_err());
    }

    #[test]
    fn cidrs_and_paths() {
        assert!(Cidr::try_from("10.0.0.0/8".to_owned()).is_ok());
        assert!(Cidr::try_from("::1".to_owned()).is_ok());
        assert!(Cidr::try_from("10.0.0.0/33".to_owned()).is_err());
        assert!(RequestPath::try_from("token".to_owned()).is_err());
        assert!(HttpUrl::try_from("ftp://x".to_owned()).is_err());
        assert!(RequestPath::try_from("/token?x".to_owned()).is_err());
        assert!(AtLeastOne::try_from(0).is_err());
        assert_eq!(AtLeastOne::try_from(3).map(AtLeastOne::get), Ok(3));
        assert!(BodyLimit::try_from(17 * 1024 * 1024).is_err());
        assert!(Name::try_from(String::new()).is_err());
        assert!(Name::try_from("a/b".to_owned()).is_err());
        assert_eq!(
            OptionalHeader::try_from(String::new()),
            Ok(OptionalHeader(None))
        );
        assert!(OptionalHeader::try_from("bad header".to_owned()).is_err());
    }
}
