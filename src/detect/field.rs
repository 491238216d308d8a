//! The fields rules read, from a live [`AuditEvent`] or from one read back as JSON.

use std::borrow::Cow;

use serde_json::Value;

use crate::event::AuditEvent;

/// A field of an audit event a rule can group by or count distinct values of, named as in
/// the schema (`source.ip`, `actor.subject`...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// `source.ip`: the client address.
    SourceIp,
    /// `source.user_agent`.
    UserAgent,
    /// `actor.subject`: the user (the username of a failed login or password grant).
    Subject,
    /// `actor.client_id`.
    ClientId,
    /// `token.fingerprint`: one access token.
    Token,
    /// `error.code`.
    ErrorCode,
    /// `redirect_uri`.
    RedirectUri,
    /// `http.route`.
    Route,
}

impl Field {
    /// The field's name in the schema.
    pub fn name(self) -> &'static str {
        match self {
            Field::SourceIp => "source.ip",
            Field::UserAgent => "source.user_agent",
            Field::Subject => "actor.subject",
            Field::ClientId => "actor.client_id",
            Field::Token => "token.fingerprint",
            Field::ErrorCode => "error.code",
            Field::RedirectUri => "redirect_uri",
            Field::Route => "http.route",
        }
    }
}

/// An event as the rules see it: a few fields, whether it was made here or read back.
pub trait Observed {
    /// The event's `id`.
    fn id(&self) -> Cow<'_, str>;
    /// The event's `kind` (`LoginFailed`...).
    fn kind(&self) -> Cow<'_, str>;
    /// The event's time in microseconds since the Unix epoch.
    fn time_micros(&self) -> Option<i64>;
    /// `grant_type`.
    fn grant_type(&self) -> Option<Cow<'_, str>>;
    /// `token.verdict`.
    fn verdict(&self) -> Option<Cow<'_, str>>;
    /// `token.active` (from introspection).
    fn token_active(&self) -> Option<bool>;
    /// The value of `field`, when the event has it.
    fn field(&self, field: Field) -> Option<Cow<'_, str>>;
}

impl Observed for AuditEvent {
    fn id(&self) -> Cow<'_, str> {
        Cow::Owned(self.id.to_string())
    }

    fn kind(&self) -> Cow<'_, str> {
        Cow::Borrowed(self.kind.as_str())
    }

    fn time_micros(&self) -> Option<i64> {
        Some(self.time.unix_micros())
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self.grant_type.as_deref().map(Cow::Borrowed)
    }

    fn verdict(&self) -> Option<Cow<'_, str>> {
        Some(Cow::Borrowed(self.token.as_ref()?.verdict?.as_str()))
    }

    fn token_active(&self) -> Option<bool> {
        self.token.as_ref()?.active
    }

    fn field(&self, field: Field) -> Option<Cow<'_, str>> {
        fn borrowed(s: &Option<String>) -> Option<Cow<'_, str>> {
            s.as_deref().map(Cow::Borrowed)
        }
        match field {
            Field::SourceIp => self
                .source
                .as_ref()?
                .ip
                .map(|ip| Cow::Owned(ip.to_string())),
            Field::UserAgent => borrowed(&self.source.as_ref()?.user_agent),
            Field::Subject => borrowed(&self.actor.subject),
            Field::ClientId => borrowed(&self.actor.client_id),
            Field::Token => self
                .token
                .as_ref()
                .map(|t| Cow::Owned(t.fingerprint.to_string())),
            Field::ErrorCode => self.error.as_ref().map(|e| Cow::Borrowed(e.code.as_str())),
            Field::RedirectUri => borrowed(&self.redirect_uri),
            Field::Route => borrowed(&self.http.as_ref()?.route),
        }
    }
}

impl Observed for Value {
    fn id(&self) -> Cow<'_, str> {
        Cow::Borrowed(self["id"].as_str().unwrap_or(""))
    }

    fn kind(&self) -> Cow<'_, str> {
        Cow::Borrowed(self["kind"].as_str().unwrap_or(""))
    }

    fn time_micros(&self) -> Option<i64> {
        let time = crate::event::Timestamp::parse(self["time"].as_str()?)?;
        Some(time.unix_micros())
    }

    fn grant_type(&self) -> Option<Cow<'_, str>> {
        self["grant_type"].as_str().map(Cow::Borrowed)
    }

    fn verdict(&self) -> Option<Cow<'_, str>> {
        self["token"]["verdict"].as_str().map(Cow::Borrowed)
    }

    fn token_active(&self) -> Option<bool> {
        self["token"]["active"].as_bool()
    }

    fn field(&self, field: Field) -> Option<Cow<'_, str>> {
        let value = match field {
            Field::SourceIp => &self["source"]["ip"],
            Field::UserAgent => &self["source"]["user_agent"],
            Field::Subject => &self["actor"]["subject"],
            Field::ClientId => &self["actor"]["client_id"],
            Field::Token => &self["token"]["fingerprint"],
            Field::ErrorCode => &self["error"]["code"],
            Field::RedirectUri => &self["redirect_uri"],
            Field::Route => &self["http"]["route"],
        };
        value.as_str().map(Cow::Borrowed)
    }
}
