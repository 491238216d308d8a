//! `[endpoints]`: which paths of the service are its OAuth endpoints, and how their bodies
//! are read.

use serde::Deserialize;

use super::values::{AtLeastOne, BodyLimit, Name, OptionalHeader, RequestPath};
use super::BuildError;
use crate::oauth::{DevicePolling, Endpoint, Endpoints, LoginRule};

/// `device_polling`: how device-code polls become events.
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
        ];
        for (paths, role) in roles {
            for path in paths {
                builder = builder.path(path.0.clone(), role);
            }
        }
        for path in &self.login {
            builder = builder.login(path.0.clone());
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
