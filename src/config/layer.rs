//! The audit layer's settings: endpoints, token inspection, client addresses, skipped
//! paths; builds an [`AuditLayerBuilder`].

use serde::Deserialize;

use super::dpop::DpopConfig;
use super::endpoints::EndpointsConfig;
use super::token::TokenInspectorConfig;
use super::values::RequestPath;
use super::BuildError;
use crate::writer::Auditor;
use crate::{AuditLayer, AuditLayerBuilder, ClientIpSource, RequestIdFrom};

/// The settings of an [`AuditLayer`]. The proxy keeps `trusted_proxies`,
/// `client_ip_header`, `client_certificate_header`, `skip_paths` and `request_id_from` in its
/// `[proxy]` table, `endpoints` in
/// `[endpoints]`, `jwt` in `[jwt]` and `dpop` in `[dpop]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLayerConfig {
    /// The OAuth endpoints of the service.
    #[serde(default)]
    pub endpoints: EndpointsConfig,
    /// Bearer token verification.
    #[serde(default)]
    pub jwt: TokenInspectorConfig,
    /// Proxies whose forwarding header is believed: IP addresses or CIDR blocks.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// The one header those proxies write the client's address into (`x-forwarded-for`,
    /// `forwarded`, or a single-value header such as `x-real-ip`).
    pub client_ip_header: Option<String>,
    /// The header those proxies pass the client's TLS certificate in (RFC 8705); see
    /// [`AuditLayerBuilder::client_certificate_header`].
    pub client_certificate_header: Option<String>,
    /// Paths passed through without an event.
    #[serde(default)]
    pub skip_paths: Vec<RequestPath>,
    /// How DPoP proofs are checked.
    #[serde(default)]
    pub dpop: DpopConfig,
    /// Whose `x-request-id` the event's `request_id` is taken from (`any_client`,
    /// `trusted_proxies`, `nobody`); see [`AuditLayerBuilder::request_id_from`].
    #[serde(default)]
    pub request_id_from: RequestIdFrom,
}

impl AuditLayerConfig {
    /// Reads the authorization server's metadata when `endpoints.issuer_url` is set: its
    /// endpoints fill the roles `endpoints` gives no path, its `jwks_uri` and `issuer` fill
    /// `jwt` where it sets no key source or issuers. Explicit settings always win. Call it
    /// once before [`builder`](AuditLayerConfig::builder); without `issuer_url` it does
    /// nothing.
    #[cfg(feature = "discovery")]
    pub async fn discover(&mut self) -> Result<(), BuildError> {
        if let Some(metadata) = self.endpoints.discover().await? {
            let metadata = metadata.clone();
            self.jwt.apply_discovered(&metadata);
        }
        Ok(())
    }

    /// A builder with every setting applied, for callers that add more (a token resolver,
    /// revoked tokens). Builds the token inspector, whose JWKS refresh starts on the current
    /// Tokio runtime.
    pub fn builder(&self, auditor: Auditor) -> Result<AuditLayerBuilder, BuildError> {
        const CONTEXT: &str = "layer";
        if self.client_ip_header.is_some() && self.trusted_proxies.is_empty() {
            return Err(BuildError::invalid(
                CONTEXT,
                "client_ip_header is set but no proxy is trusted: add trusted_proxies, or leave the header out",
            ));
        }
        let mut builder = AuditLayer::builder(auditor)
            .endpoints(self.endpoints.build()?)
            .token_inspector(self.jwt.build()?)
            .trusted_proxies(self.trusted_proxies.iter().cloned())
            .skip_paths(self.skip_paths.iter().map(|p| p.0.clone()))
            .dpop(self.dpop.build()?)
            .request_id_from(self.request_id_from);
        if let Some(header) = &self.client_ip_header {
            let source: ClientIpSource = header
                .parse()
                .map_err(|e| BuildError::invalid(CONTEXT, e))?;
            builder = builder.client_ip_source(source);
        }
        if let Some(header) = &self.client_certificate_header {
            builder = builder.client_certificate_header(header.clone());
        }
        Ok(builder)
    }

    /// The layer.
    pub fn build(&self, auditor: Auditor) -> Result<AuditLayer, BuildError> {
        self.builder(auditor)?
            .build()
            .map_err(|e| BuildError::invalid("layer", e))
    }
}
