//! What a report covers and how it judges, as the caller chose.

use crate::event::Timestamp;

/// What a report covers and how it judges: filters and the unused-permission window.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub(super) since: Option<Timestamp>,
    pub(super) until: Option<Timestamp>,
    pub(super) service: Option<String>,
    pub(super) client: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) unused_after_days: u32,
    pub(super) now: Option<Timestamp>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            since: None,
            until: None,
            service: None,
            client: None,
            subject: None,
            unused_after_days: 90,
            now: None,
        }
    }
}

impl ReportOptions {
    /// Only events at or after `time`.
    pub fn since(mut self, time: Timestamp) -> Self {
        self.since = Some(time);
        self
    }

    /// Only events before `time`; also the moment unused permissions are judged at
    /// (default: now).
    pub fn until(mut self, time: Timestamp) -> Self {
        self.until = Some(time);
        self
    }

    /// Only events of this service (`service.name`).
    pub fn service(mut self, name: impl Into<String>) -> Self {
        self.service = Some(name.into());
        self
    }

    /// Only events of this OAuth client (`actor.client_id`).
    pub fn client(mut self, id: impl Into<String>) -> Self {
        self.client = Some(id.into());
        self
    }

    /// Only events of this end user (`actor.subject`): a data-subject access report, with
    /// every event listed.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// A scope granted but not used for this many days is unused (default 90; 1 to 365,
    /// others are clamped). Clients first seen more recently are left out as too young.
    pub fn unused_after_days(mut self, days: u32) -> Self {
        self.unused_after_days = days.clamp(1, 365);
        self
    }

    /// The report's "now" (default: the clock), for reports that must come out the same.
    pub fn now(mut self, now: Timestamp) -> Self {
        self.now = Some(now);
        self
    }
}
