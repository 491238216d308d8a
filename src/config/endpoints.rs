//! `[endpoints]`: which paths of the service are its OAuth endpoints, and how their bodies
//! are read.

use serde::Deserialize;

use super::values::{AtLeastOne, BodyLimit, HttpUrl, Name, OptionalHeader, RequestPath};
use super::BuildError;
use crate::oauth::{DevicePolling, Endpoint, Endpoints, LoginRule, ProviderMetadata};

/// `device_polling`: how device-code and CIBA polls become events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevicePollingSetting {
    /// Every poll is an event.
    EveryPoll,
    /// One event per device code and outcome change.
    OncePerOutcome,
}

/// The OAuth endpoints of the audited service; builds [`Endpoints`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointsConfig {
    /// Keep the default paths (`/token`, `/revoke`, `/introspect`, `/authorize`).
    pub defaults: Option<bool>,
    /// Token endpoint paths.
    #[serde(default)]
    pub token: Vec<RequestPath>,
    /// Revocation endpoint paths.
    #[serde(default)]
    pub revocation: Vec<RequestPath>,
    /// Introspection endpoint paths.
    #[serde(default)]
    pub introspection: Vec<RequestPath>,
    /// Authorization endpoint paths.
    #[serde(default)]
    pub authorization: Vec<RequestPath>,
    /// Login form paths.
    #[serde(default)]
    pub login: Vec<RequestPath>,
    /// Pushed authorization request endpoint paths (RFC 9126).
    #[serde(default)]
    pub pushed_authorization: Vec<RequestPath>,
    /// OpenID Connect UserInfo endpoint paths.
    #[serde(default)]
    pub userinfo: Vec<RequestPath>,
    /// OpenID Connect end-session (logout) endpoint paths.
    #[serde(default)]
    pub end_session: Vec<RequestPath>,
    /// Device authorization endpoint paths (RFC 8628 §3.1).
    #[serde(default)]
    pub device_authorization: Vec<RequestPath>,
    /// OpenID Connect CIBA backchannel authentication endpoint paths.
    #[serde(default)]
    pub backchannel_authentication: Vec<RequestPath>,
    /// The authorization server's issuer: its metadata (OpenID Connect Discovery, else RFC
    /// 8414) gives the endpoint paths not set here, and the JWKS URL and issuer of `[jwt]`
    /// when those are not set (see [`EndpointsConfig::discover`]).
    pub issuer_url: Option<HttpUrl>,
    /// The metadata read from `issuer_url`, once [`discover`](EndpointsConfig::discover)ed:
    /// its endpoints are used for roles without explicit paths. Not read from files.
    #[serde(skip)]
    pub discovered: Option<ProviderMetadata>,
    /// The login form's username field.
    pub username_field: Option<Name>,
    /// The header carrying a revocation reason; `""` for none.
    pub revocation_reason_header: Option<OptionalHeader>,
    /// Body bytes inspected per request and response.
    pub body_limit: Option<BodyLimit>,
    /// A login succeeded when it redirects to a location starting with this.
    pub login_success_redirect: Option<String>,
    /// Device-code polling: every poll an event, or one per outcome change.
    pub device_polling: Option<DevicePollingSetting>,
    /// Device codes tracked for `once_per_outcome`.
    pub device_codes_tracked: Option<AtLeastOne>,
    /// Body bytes all endpoint requests and responses in flight may hold copied at once.
    pub max_captured_bytes: Option<AtLeastOne>,
}

impl EndpointsConfig {
    /// Fetches the metadata of `issuer_url` (when set and not fetched yet) into
    /// [`discovered`](EndpointsConfig::discovered), and returns it. The network is used
    /// here only; [`build`](EndpointsConfig::build) never fetches.
    #[cfg(feature = "discovery")]
    pub async fn discover(&mut self) -> Result<Option<&ProviderMetadata>, BuildError> {
        if let (None, Some(issuer)) = (&self.discovered, &self.issuer_url) {
            let metadata = crate::oauth::Discovery::new(issuer.0.clone())
                .fetch()
                .await
                .map_err(|e| BuildError::invalid("endpoints.issuer_url", e))?;
            self.discovered = Some(metadata);
        }
        Ok(self.discovered.as_ref())
    }

    /// The endpoints.
    pub fn build(&self) -> Result<Endpoints, BuildError> {
        const CONTEXT: &str = "endpoints";
        let mut builder = Endpoints::builder();
        if self.defaults == Some(false) {
            builder = builder.no_defaults();
        }
        let roles = [
            (&self.token, Endpoint::Token),
            (&self.revocation, Endpoint::Revocation),
            (&self.introspection, Endpoint::Introspection),
            (&self.authorization, Endpoint::Authorization),
            (&self.pushed_authorization, Endpoint::PushedAuthorization),
            (&self.userinfo, Endpoint::UserInfo),
            (&self.end_session, Endpoint::EndSession),
            (&self.device_authorization, Endpoint::DeviceAuthorization),
            (
                &self.backchannel_authentication,
                Endpoint::BackchannelAuthentication,
            ),
        ];
        for (paths, role) in roles {
            for path in paths {
                builder = builder.path(path.0.clone(), role);
            }
        }
        for path in &self.login {
            builder = builder.login(path.0.clone());
        }
        if let Some(metadata) = &self.discovered {
            builder = builder.discovered(metadata);
        }
        if let Some(field) = &self.username_field {
            builder = builder.username_field(field.0.clone());
        }
        if let Some(header) = &self.revocation_reason_header {
            builder = builder.revocation_reason_header(header.0.as_deref());
        }
        if let Some(limit) = self.body_limit {
            builder = builder.body_limit(limit.0);
        }
        if let Some(bytes) = self.max_captured_bytes {
            builder = builder.max_captured_bytes(bytes.get());
        }
        if let Some(prefix) = &self.login_success_redirect {
            if prefix.trim().is_empty() {
                return Err(BuildError::invalid(
                    CONTEXT,
                    "login_success_redirect must not be empty (leave it out for the default rule)",
                ));
            }
            builder = builder.login_rule(LoginRule::redirect_prefix(prefix.clone()));
        }
        builder = builder.device_polling(match (self.device_polling, self.device_codes_tracked) {
            (Some(DevicePollingSetting::EveryPoll), None) => DevicePolling::EveryPoll,
            (Some(DevicePollingSetting::EveryPoll), Some(_)) => {
                return Err(BuildError::invalid(
                    CONTEXT,
                    "device_codes_tracked only applies to device_polling = \"once_per_outcome\"",
                ))
            }
            (_, Some(tracked)) => DevicePolling::OncePerOutcome {
                capacity: tracked.get(),
            },
            (_, None) => DevicePolling::default(),
        });
        builder.build().map_err(|e| BuildError::invalid(CONTEXT, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_and_backchannel_paths_are_roles() {
        let config: EndpointsConfig = serde_json::from_value(serde_json::json!({
            "device_authorization": ["/device/code"],
            "backchannel_authentication": ["/bc-authorize"],
        }))
        .unwrap();
        let endpoints = config.build().unwrap();
        assert_eq!(
            endpoints.lookup("/device/code"),
            Some(Endpoint::DeviceAuthorization)
        );
        assert_eq!(
            endpoints.lookup("/bc-authorize"),
            Some(Endpoint::BackchannelAuthentication)
        );
        assert!(!endpoints.is_assumed(Endpoint::DeviceAuthorization));
    }
}
