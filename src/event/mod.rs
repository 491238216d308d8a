//! The audit event: schema v1, the product's public contract.
//!
//! Every writer receives the same [`AuditEvent`]; serialised as JSON it has the shape
//! documented in `docs/events.md`. Field names are fixed: fields may be added, never renamed
//! or dropped.
//!
//! ```
//! use std::sync::Arc;
//! use oauth_audit::event::{AuditEvent, EventKind, Outcome, ServiceInfo, Timestamp};
//!
//! let service = Arc::new(ServiceInfo::new("api"));
//! let event = AuditEvent::new(service, Timestamp::now(), EventKind::ResourceAccessed, Outcome::Success);
//! let json = serde_json::to_value(&event).unwrap();
//! assert_eq!(json["schema"], "oauth-audit/1");
//! assert_eq!(json["kind"], "ResourceAccessed");
//! assert!(json.get("token").is_none(), "absent values are omitted, not null");
//! ```

mod canonical;
/// Test data shared with other modules: any JSON value, with the characters RFC 8785 treats
/// specially.
#[cfg(test)]
pub(crate) use canonical::tests::json_value as any_json_value;
pub(crate) mod canonical_event;
pub mod error_code;
mod hash;
mod kind;
mod model;
pub(crate) mod recycle;
mod sanitize;
mod shared;
mod time;
pub(crate) mod uuid_text;

pub use canonical::{append_canonical_json, canonical_json, Canonicalizer};
/// The string type of [`HttpInfo::path`] and [`HttpInfo::route`], from the `compact_str`
/// crate: up to 24 bytes inline, derefs to `str`, built with `.into()` from `&str` or
/// `String`.
pub use compact_str::CompactString;
pub use hash::{BadHash, EventHash};
pub use kind::{ActorKind, ClientAuth, EventKind, Outcome, Severity};
pub use model::{
    Actor, Alert, AuditEvent, AutonomousSystem, BindingMethod, ChainLink, Checkpoint, DropReason,
    Dropped, ErrorInfo, Geo, HttpInfo, OAuthDetails, Place, Scopes, SeqRange, ServiceInfo, Source,
    TokenBinding, TokenDetails, TokenRef, TokenSentIn, Travel, UnverifiedClaims, SCHEMA,
};
#[cfg(test)]
pub(crate) use sanitize::SecretDigest;
#[cfg(feature = "fuzzing")]
pub(crate) use sanitize::TOO_MANY_SECRETS;
pub(crate) use sanitize::{is_known_code, is_word_byte, scrub_code, HeadSecrets, Untrusted};
pub use sanitize::{needs_escape, sanitize, scrub, shown_url, Secrets, REDACTED};
pub use shared::Shared;
pub use time::Timestamp;
