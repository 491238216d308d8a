//! Authorization server metadata (RFC 8414, OpenID Connect Discovery 1.0): the part that
//! says where the endpoints, the keys and the issuer are.

use serde::{Deserialize, Serialize};

/// What oauth-audit reads of an authorization server's metadata document
/// (`/.well-known/openid-configuration` or `/.well-known/oauth-authorization-server`).
///
/// Fetch it with [`Discovery`](super::Discovery) (feature `discovery`), or deserialise a
/// document you hold; [`check`](ProviderMetadata::check) it against the issuer you asked
/// for, then hand it to [`EndpointsBuilder::discovered`](super::EndpointsBuilder::discovered)
/// (endpoint paths) and use [`jwks_uri`](ProviderMetadata::jwks_uri) and
/// [`issuer`](ProviderMetadata::issuer) for the token inspector. Other members of the
/// document are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer identifier; must equal the issuer the document was fetched for
    /// (RFC 8414 §3.3).
    #[serde(default)]
    pub issuer: String,
    /// `authorization_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// `revocation_endpoint` (RFC 7009).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// `introspection_endpoint` (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// `pushed_authorization_request_endpoint` (RFC 9126).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// `userinfo_endpoint` (OpenID Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// `end_session_endpoint` (OpenID Connect RP-Initiated Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// `device_authorization_endpoint` (RFC 8628 §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// `backchannel_authentication_endpoint` (OpenID Connect CIBA Core §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_endpoint: Option<String>,
    /// `jwks_uri`: the keys tokens are signed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
}

/// Why a metadata document cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// A required member is absent or empty.
    #[error("the metadata has no `{0}`")]
    Missing(&'static str),
    /// The document names another issuer than the one asked for (RFC 8414 §3.3: it must
    /// not be used).
    #[error("the metadata is for issuer {found:?}, not {expected:?}: refusing it (RFC 8414 §3.3)")]
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The `issuer` of the document.
        found: String,
    },
    /// A member that must be an absolute `http(s)` URL is not.
    #[error("`{member}` is not an absolute http(s) URL without fragment: {value:?}")]
    NotAUrl {
        /// The member.
        member: &'static str,
        /// Its value, without query string.
        value: String,
    },
}

/// One endpoint a metadata document names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FoundEndpoint {
    /// The member that names it (`token_endpoint`, `userinfo_endpoint`, ...).
    pub(crate) member: &'static str,
    /// The URL's path (`/` when it has none).
    pub(crate) path: String,
    /// Served on the issuer's own scheme and authority.
    pub(crate) same_origin: bool,
}

impl ProviderMetadata {
    /// The issuer identifier.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS URL, if the document names one.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// Checks the document against the issuer it was fetched for: `issuer` present and equal
    /// to `expected` (exactly, as RFC 8414 §3.3 and OpenID Connect Discovery §4.3 ask), and
    /// every endpoint and `jwks_uri` an absolute `http(s)` URL.
    pub fn check(&self, expected: &str) -> Result<(), MetadataError> {
        if self.issuer.is_empty() {
            return Err(MetadataError::Missing("issuer"));
        }
        if self.issuer != expected {
            return Err(MetadataError::IssuerMismatch {
                expected: expected.to_owned(),
                found: crate::text::sanitize(&self.issuer, 256),
            });
        }
        for (member, value) in self.urls() {
            if let Some(value) = value {
                if origin_and_path(value).is_none() {
                    return Err(MetadataError::NotAUrl {
                        member,
                        value: crate::text::shown_url(&crate::text::sanitize(value, 256)),
                    });
                }
            }
        }
        Ok(())
    }

    fn urls(&self) -> [(&'static str, Option<&str>); 10] {
        [
            ("token_endpoint", self.token_endpoint.as_deref()),
            (
                "authorization_endpoint",
                self.authorization_endpoint.as_deref(),
            ),
            ("revocation_endpoint", self.revocation_endpoint.as_deref()),
            (
                "introspection_endpoint",
                self.introspection_endpoint.as_deref(),
            ),
            (
                "pushed_authorization_request_endpoint",
                self.pushed_authorization_request_endpoint.as_deref(),
            ),
            ("userinfo_endpoint", self.userinfo_endpoint.as_deref()),
            ("end_session_endpoint", self.end_session_endpoint.as_deref()),
            (
                "device_authorization_endpoint",
                self.device_authorization_endpoint.as_deref(),
            ),
            (
                "backchannel_authentication_endpoint",
                self.backchannel_authentication_endpoint.as_deref(),
            ),
            ("jwks_uri", self.jwks_uri.as_deref()),
        ]
    }

    /// The endpoints the document names, by member, with their paths.
    pub(crate) fn endpoints(&self) -> Vec<FoundEndpoint> {
        let issuer = origin_and_path(&self.issuer).map(|(origin, _)| origin);
        self.urls()
            .into_iter()
            .filter(|(member, _)| *member != "jwks_uri")
            .filter_map(|(member, url)| {
                let (origin, path) = origin_and_path(url?)?;
                Some(FoundEndpoint {
                    member,
                    path,
                    same_origin: issuer.as_ref() == Some(&origin),
                })
            })
            .collect()
    }

    /// The endpoints served on another origin than the issuer's, as `(member, URL)`: only
    /// their paths are matched, and only as assumed roles (see
    /// [`EndpointsBuilder::discovered`](super::EndpointsBuilder::discovered)).
    pub fn other_origin_endpoints(&self) -> Vec<(&'static str, String)> {
        let issuer = origin_and_path(&self.issuer).map(|(origin, _)| origin);
        self.urls()
            .into_iter()
            .filter(|(member, _)| *member != "jwks_uri")
            .filter_map(|(member, url)| {
                let url = url?;
                let (origin, _) = origin_and_path(url)?;
                (issuer.as_ref() != Some(&origin)).then(|| (member, crate::text::shown_url(url)))
            })
            .collect()
    }
}

/// The origin (`scheme://authority`, lower-cased, default port left out) and path of an
/// absolute `http(s)` URL without fragment; `None` for anything else.
pub(crate) fn origin_and_path(url: &str) -> Option<(String, String)> {
    if url.contains('#') {
        return None;
    }
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let authority = uri.authority()?;
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    if authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    let origin = match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    };
    let path = match uri.path() {
        "" => "/".to_owned(),
        path => path.to_owned(),
    };
    Some((origin, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(json: serde_json::Value) -> ProviderMetadata {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_issuer_must_be_the_one_asked_for() {
        let m = metadata(serde_json::json!({
            "issuer": "https://as.example",
            "token_endpoint": "https://as.example/token",
        }));
        assert_eq!(m.check("https://as.example"), Ok(()));
        assert!(matches!(
            m.check("https://as.example/"),
            Err(MetadataError::IssuerMismatch { .. })
        ));
        assert_eq!(
            metadata(serde_json::json!({"token_endpoint": "https://as.example/token"}))
                .check("https://as.example"),
            Err(MetadataError::Missing("issuer"))
        );
        let bad = metadata(serde_json::json!({
            "issuer": "https://as.example",
            "jwks_uri": "/jwks",
        }));
        assert!(matches!(
            bad.check("https://as.example"),
            Err(MetadataError::NotAUrl {
                member: "jwks_uri",
                ..
            })
        ));
    }

    #[test]
    fn endpoints_keep_their_paths_and_say_where_they_are() {
        let m = metadata(serde_json::json!({
            "issuer": "https://AS.example:443/tenant",
            "token_endpoint": "https://as.example/tenant/token?x=1",
            "userinfo_endpoint": "https://api.example/me",
            "end_session_endpoint": "http://as.example/logout",
            "jwks_uri": "https://keys.example/jwks",
        }));
        let found = m.endpoints();
        assert_eq!(
            found,
            [
                FoundEndpoint {
                    member: "token_endpoint",
                    path: "/tenant/token".into(),
                    same_origin: true
                },
                FoundEndpoint {
                    member: "userinfo_endpoint",
                    path: "/me".into(),
                    same_origin: false
                },
                FoundEndpoint {
                    member: "end_session_endpoint",
                    path: "/logout".into(),
                    same_origin: false
                },
            ]
        );
        let other: Vec<_> = m
            .other_origin_endpoints()
            .into_iter()
            .map(|(m, _)| m)
            .collect();
        assert_eq!(other, ["userinfo_endpoint", "end_session_endpoint"]);
        assert_eq!(origin_and_path("https://u:p@h/x"), None);
        assert_eq!(origin_and_path("ftp://h/x"), None);
        assert_eq!(
            origin_and_path("http://h:8080"),
            Some(("http://h:8080".into(), "/".into()))
        );
    }
}
