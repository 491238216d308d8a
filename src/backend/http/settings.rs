//! What the other files share and depend on, depending on nothing but the body format (and
//! the event format, `crate::format`): the collector's checked settings.

use super::format::Format;
use crate::format::EventFormat;

/// What [`HttpCollectorBuilder::build`](super::HttpCollectorBuilder::build) checked: where
/// requests go, how they are written, and what `Debug` and errors may show of them.
pub(super) struct Settings {
    pub(super) name: String,
    pub(super) url: reqwest::Url,
    /// The URL as errors and `Debug` show it.
    pub(super) shown_url: String,
    pub(super) format: Format,
    /// How each event is written inside the body (schema v1, ECS, OCSF).
    pub(super) event_format: EventFormat,
    pub(super) gzip: bool,
    pub(super) max_batch_bytes: usize,
    pub(super) client: reqwest::Client,
    /// Which kind of credentials is sent, for `Debug`.
    pub(super) auth: &'static str,
    pub(super) header_names: Vec<String>,
    /// Only `SecurityAlert` events are sent (the others count as delivered).
    pub(super) alerts_only: bool,
    /// Signs every request (`request::sign`): `X-OAuth-Audit-Signature: t=<unix
    /// seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` and `X-OAuth-Audit-Signature-V2:
    /// t=<t>,v2=<hex HMAC-SHA256 of "<t>.<idempotency key>.<body>">`.
    pub(super) hmac_secret: Option<super::auth::Secret<Vec<u8>>>,
    /// What answers may quote and errors must not show (`auth::scrub`): the credentials,
    /// the header values, the URL's query string and its values.
    pub(super) quoted_secrets: Vec<super::auth::Secret>,
    /// The index template to install before the first batch (`install_template`).
    pub(super) template: Option<TemplateInstall>,
}

/// An index template to `PUT` before the first `_bulk`: where, under which name, and its
/// body (`crate::format::index_template`), made once at build.
pub(super) struct TemplateInstall {
    pub(super) name: String,
    /// `{base}/_index_template/{name}`, the base being the `_bulk` URL without `/_bulk`.
    pub(super) url: reqwest::Url,
    /// The URL as errors and `Debug` show it.
    pub(super) shown_url: String,
    pub(super) body: Vec<u8>,
}
