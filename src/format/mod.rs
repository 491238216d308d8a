//! Output formats: an [`AuditEvent`] as schema v1 (`oauth-audit`, the default), as an
//! [Elastic Common Schema](https://www.elastic.co/docs/reference/ecs) document ([`Ecs`]) or
//! as an [OCSF](https://schema.ocsf.io) event ([`Ocsf`]).
//!
//! A sink picks one with its `format` setting ([`EventFormat`]); `docs/formats.md` maps
//! every kind and field. Each format is one module that borrows from the event and
//! serialises it directly, with no intermediate JSON value. Whatever the format, tokens
//! appear only as fingerprints.
//!
//! [`index_template`] gives each format's Elasticsearch / OpenSearch index template: the
//! mappings of the fields it writes, for a data stream.
//!
//! ```
//! use std::sync::Arc;
//! use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
//! use oauth_audit::format::EventFormat;
//!
//! let service = Arc::new(ServiceInfo::new("api"));
//! let event = AuditEvent::new(service, Timestamp::now(), EventKind::AccessDenied, Outcome::Failure);
//! let mut line = Vec::new();
//! EventFormat::Ecs.write(&mut line, &event).unwrap();
//! let ecs: serde_json::Value = serde_json::from_slice(&line).unwrap();
//! assert_eq!(ecs["event"]["type"], serde_json::json!(["access", "denied"]));
//!
//! line.clear();
//! EventFormat::Ocsf.write(&mut line, &event).unwrap();
//! let ocsf: serde_json::Value = serde_json::from_slice(&line).unwrap();
//! assert_eq!(ocsf["type_uid"], 600402); // Web Resource Access Activity: Access Deny
//! ```

mod ecs;
mod ocsf;
mod template;
#[cfg(test)]
mod tests;

use serde::Deserialize;

use crate::event::AuditEvent;
pub use ecs::{Ecs, ECS_VERSION};
pub use ocsf::{Ocsf, OCSF_VERSION};
pub use template::{index_template, TemplateOptions, DEFAULT_TEMPLATE_PRIORITY};

/// How a sink writes each event: the `format` setting of the file sinks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[non_exhaustive]
pub enum EventFormat {
    /// Schema v1, `docs/events.md` (`format = "oauth-audit"`).
    #[default]
    #[serde(rename = "oauth-audit")]
    OAuthAudit,
    /// Elastic Common Schema [`ECS_VERSION`] (`format = "ecs"`).
    #[serde(rename = "ecs")]
    Ecs,
    /// OCSF [`OCSF_VERSION`] (`format = "ocsf"`).
    #[serde(rename = "ocsf")]
    Ocsf,
}

impl EventFormat {
    /// The name as the `format` setting spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventFormat::OAuthAudit => "oauth-audit",
            EventFormat::Ecs => "ecs",
            EventFormat::Ocsf => "ocsf",
        }
    }

    /// Appends the event's JSON (one object, no newline) to `buf`. Schema v1 is the RFC 8785
    /// form the hash chain hashes: the chain's own bytes when it made them, else written
    /// the same way (see [`crate::event::append_canonical_json`]).
    pub fn write(self, buf: &mut Vec<u8>, event: &AuditEvent) -> Result<(), serde_json::Error> {
        match self {
            EventFormat::OAuthAudit => match event.json.get() {
                Some(json) => {
                    buf.extend_from_slice(json);
                    Ok(())
                }
                None => crate::event::canonical_event::append_event_json(buf, event),
            },
            EventFormat::Ecs => serde_json::to_writer(buf, &Ecs(event)),
            EventFormat::Ocsf => serde_json::to_writer(buf, &Ocsf(event)),
        }
    }
}

impl std::fmt::Display for EventFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        [EventFormat::OAuthAudit, EventFormat::Ecs, EventFormat::Ocsf]
            .into_iter()
            .find(|format| format.as_str() == name)
            .ok_or_else(|| format!("unknown format {name:?}: use oauth-audit, ecs or ocsf"))
    }
}
