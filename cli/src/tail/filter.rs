//! Which events `tail` shows: `--kind`, `--client`, `--subject`, `--outcome`, all of those
//! given (each `--kind` one more kind allowed).

use serde_json::Value;

/// The flags' conditions; an empty filter lets every event through.
#[derive(Debug, Default)]
pub struct Filter {
    /// `kind` is one of these (any kind when empty).
    pub kinds: Vec<String>,
    /// `actor.client_id`.
    pub client: Option<String>,
    /// `actor.subject`.
    pub subject: Option<String>,
    /// `outcome`.
    pub outcome: Option<String>,
}

impl Filter {
    /// Whether `event` passes every condition.
    pub fn matches(&self, event: &Value) -> bool {
        let is = |value: &Value, wanted: &Option<String>| {
            wanted.as_deref().is_none_or(|w| value.as_str() == Some(w))
        };
        (self.kinds.is_empty() || self.kinds.iter().any(|k| event["kind"] == k.as_str()))
            && is(&event["actor"]["client_id"], &self.client)
            && is(&event["actor"]["subject"], &self.subject)
            && is(&event["outcome"], &self.outcome)
    }

    /// The one kind asked for, when exactly one is (a NATS subject can then narrow the read).
    #[cfg(feature = "nats")]
    pub fn single_kind(&self) -> Option<&str> {
        match self.kinds.as_slice() {
            [kind] => Some(kind),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_condition_given_must_hold() {
        let event = json!({"kind": "LoginFailed", "outcome": "failure",
                           "actor": {"subject": "bob", "client_id": "web"}});
        assert!(Filter::default().matches(&event));
        let filter = Filter {
            kinds: vec!["AccessTokenIssued".into(), "LoginFailed".into()],
            client: Some("web".into()),
            subject: Some("bob".into()),
            outcome: Some("failure".into()),
        };
        assert!(filter.matches(&event));
        for wrong in [
            Filter {
                kinds: vec!["AccessTokenIssued".into()],
                ..Filter::default()
            },
            Filter {
                client: Some("cli".into()),
                ..Filter::default()
            },
            Filter {
                subject: Some("alice".into()),
                ..Filter::default()
            },
            Filter {
                outcome: Some("success".into()),
                ..Filter::default()
            },
        ] {
            assert!(!wrong.matches(&event), "{wrong:?}");
        }
        // A condition on a field the event lacks does not hold.
        let anonymous = json!({"kind": "LoginFailed", "outcome": "failure"});
        assert!(!Filter {
            subject: Some("bob".into()),
            ..Filter::default()
        }
        .matches(&anonymous));
    }
}
