//! What a report holds, once made: read by the renderers and serialised as the JSON
//! output. Its own module, so that the renderers need nothing of how it is made.

use serde::Serialize;

use crate::chain::verify;

use super::aggregate::Sections;

/// Everything a report says: its inputs, filters and sections. Serialised, it is the JSON
/// output (`schema` `oauth-audit-report/1`: field names are stable within it).
#[derive(Debug, Serialize)]
pub struct Report {
    pub(super) schema: &'static str,
    pub(super) generated_at: String,
    pub(super) as_of: String,
    pub(super) unused_after_days: u32,
    pub(super) filters: Filters,
    pub(super) input: Input,
    #[serde(flatten)]
    pub(super) sections: Sections,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) integrity: Option<Integrity>,
}

/// A report that could not be written out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub(super) String);

#[derive(Debug, Default, Serialize)]
pub(super) struct Filters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) subject: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub(super) struct Input {
    pub(super) files: Vec<String>,
    pub(super) lines: u64,
    /// Events read (before the filters).
    pub(super) events: u64,
    pub(super) matched: u64,
    pub(super) skipped: u64,
    pub(super) skipped_examples: Vec<String>,
    pub(super) broken: Vec<String>,
}

impl From<&verify::Report> for Integrity {
    fn from(found: &verify::Report) -> Self {
        Integrity {
            events: found.events,
            streams: found.streams,
            checkpoints: found.checkpoints,
            errors: found.errors,
            warnings: found.warnings,
            summary: found.summary(),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct Integrity {
    pub(super) events: u64,
    pub(super) streams: u64,
    pub(super) checkpoints: u64,
    pub(super) errors: u64,
    pub(super) warnings: u64,
    pub(super) summary: String,
}
