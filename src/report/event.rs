//! The parts of a stored event a report reads, borrowed from the line where they can be:
//! every other field is skipped by the parser, so a line costs little more than finding
//! its fields.

use serde::Deserialize;
use smallvec::SmallVec;

pub use crate::text::Text;

/// A list of scopes: most events carry a few, kept without an allocation.
pub type List<'a> = SmallVec<[Text<'a>; 4]>;

/// One event, as far as the report cares.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    #[serde(borrow)]
    pub kind: Text<'a>,
    #[serde(borrow)]
    pub time: Text<'a>,
    #[serde(borrow, default)]
    pub outcome: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub service: Option<Service<'a>>,
    #[serde(borrow, default)]
    pub actor: Option<Actor<'a>>,
    #[serde(borrow, default)]
    pub grant_type: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub scopes: Scopes<'a>,
    #[serde(borrow, default)]
    pub token: Option<Token<'a>>,
    #[serde(borrow, default)]
    pub http: Option<Http<'a>>,
    #[serde(borrow, default)]
    pub source: Option<Source<'a>>,
    #[serde(borrow, default)]
    pub error: Option<Error<'a>>,
    #[serde(borrow, default)]
    pub alert: Option<Alert<'a>>,
    #[serde(borrow, default)]
    pub dropped: Option<Dropped<'a>>,
    #[serde(default)]
    pub chain: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
pub struct Service<'a> {
    #[serde(borrow)]
    pub name: Text<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Actor<'a> {
    #[serde(borrow, default)]
    pub subject: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub client_id: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Scopes<'a> {
    #[serde(borrow, default)]
    pub requested: List<'a>,
    #[serde(borrow, default)]
    pub granted: List<'a>,
    #[serde(borrow, default)]
    pub required: List<'a>,
    #[serde(borrow, default)]
    pub used: List<'a>,
    #[serde(borrow, default)]
    pub missing: List<'a>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Token<'a> {
    #[serde(borrow, default)]
    pub fingerprint: Option<Text<'a>>,
    #[serde(default)]
    pub active: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Http<'a> {
    #[serde(borrow, default)]
    pub method: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub route: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub path: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Source<'a> {
    #[serde(borrow, default)]
    pub ip: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Error<'a> {
    #[serde(borrow, default)]
    pub code: Option<Text<'a>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Alert<'a> {
    #[serde(borrow, default)]
    pub rule: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub key: Option<Text<'a>>,
    #[serde(default)]
    pub count: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Dropped<'a> {
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(borrow, default)]
    pub reason: Option<Text<'a>>,
    #[serde(borrow, default)]
    pub sink: Option<Text<'a>>,
}

impl<'a> Event<'a> {
    pub fn client(&self) -> Option<&str> {
        self.actor.as_ref()?.client_id.as_deref()
    }

    pub fn subject(&self) -> Option<&str> {
        self.actor.as_ref()?.subject.as_deref()
    }

    pub fn service_name(&self) -> Option<&str> {
        self.service.as_ref().map(|s| s.name.as_ref())
    }

    pub fn ip(&self) -> Option<&str> {
        self.source.as_ref()?.ip.as_deref()
    }

    pub fn error_code(&self) -> Option<&str> {
        self.error.as_ref()?.code.as_deref()
    }

    pub fn fingerprint(&self) -> Option<&str> {
        self.token.as_ref()?.fingerprint.as_deref()
    }

    /// The route template when known, else the path.
    pub fn route(&self) -> Option<&str> {
        let http = self.http.as_ref()?;
        http.route.as_deref().or(http.path.as_deref())
    }

    pub fn method(&self) -> Option<&str> {
        self.http.as_ref()?.method.as_deref()
    }

    pub fn scopes(&self) -> &Scopes<'a> {
        &self.scopes
    }
}
