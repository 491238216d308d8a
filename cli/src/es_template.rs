//! `oauth-audit es-template`: the Elasticsearch / OpenSearch index template of an event
//! format on standard output, for operators who install it themselves rather than give the
//! sink the privilege (`install_template = true`):
//!
//! ```text
//! oauth-audit es-template --format ecs --index oauth-audit \
//!   | curl -XPUT -H 'content-type: application/json' https://es:9200/_index_template/oauth-audit -d @-
//! ```
//!
//! The template is [`oauth_audit::format::index_template`]'s, the one the sink installs
//! (`docs/formats.md`).

use clap::Args;
use oauth_audit::format::{
    index_template, EventFormat, TemplateOptions, DEFAULT_TEMPLATE_PRIORITY,
};

use crate::Failure;

/// Flags of `oauth-audit es-template`.
#[derive(Debug, Args)]
pub struct EsTemplateArgs {
    /// The sink's event format: oauth-audit, ecs or ocsf [config: event_format].
    #[arg(long, value_name = "FORMAT", default_value = "oauth-audit")]
    format: EventFormat,
    /// The index or data stream the template is for: its name, or a pattern such as
    /// 'oauth-audit-*'; repeatable [config: index].
    #[arg(long = "index", value_name = "NAME", default_value = "oauth-audit")]
    indices: Vec<String>,
    /// The template's priority: the highest of the templates matching a new data stream
    /// wins (Elasticsearch's own logs-*-* template has 100); at most 9223372036854775807,
    /// the largest Elasticsearch reads.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_TEMPLATE_PRIORITY,
        value_parser = clap::value_parser!(u64).range(..=i64::MAX as u64),
    )]
    priority: u64,
    /// An Elasticsearch ILM policy for the indices (index.lifecycle.name), e.g. the one in
    /// docs/elasticsearch/ilm-policy.json; leave out for OpenSearch.
    #[arg(long, value_name = "POLICY")]
    ilm_policy: Option<String>,
}

/// Prints the template as JSON.
pub fn run(args: EsTemplateArgs) -> Result<(), Failure> {
    // Elasticsearch refuses a template with an empty pattern: say so before it does.
    if args.indices.iter().any(String::is_empty) {
        return Err(Failure::Usage("--index must not be empty".into()));
    }
    let mut indices = args.indices.into_iter();
    let first = indices.next().unwrap_or_else(|| "oauth-audit".to_owned());
    let mut options = indices
        .fold(TemplateOptions::new(first), TemplateOptions::index_pattern)
        .priority(args.priority);
    if let Some(policy) = args.ilm_policy {
        options = options.ilm_policy(policy);
    }
    let template = index_template(args.format, &options);
    let text = serde_json::to_string_pretty(&template)
        .map_err(|e| Failure::Runtime(format!("cannot write the template: {e}")))?;
    println!("{text}");
    Ok(())
}
