//! Rules in the shape of Sigma correlation rules: which events count (`select`), what they
//! are grouped by (`group_by`), over how long (`timespan`), and when the group is an attack
//! (`condition`: a count, a distinct count, a spread in time).

use std::ops::RangeInclusive;
use std::time::Duration;

use super::field::{grant_type_unknown, Field, Observed};
use crate::event::Severity;

/// Which events a rule counts: every given criterion must hold (an empty list is no
/// criterion).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Select {
    /// Event kinds, by name (`LoginFailed`).
    pub kinds: Vec<&'static str>,
    /// `error.code` is one of these.
    pub error_codes: Vec<&'static str>,
    /// `grant_type` is one of these, or was sent but is not recorded (sent more than once,
    /// or in a body not read): the server may have read one of these.
    pub grant_types: Vec<&'static str>,
    /// `token.verdict` is one of these.
    pub verdicts: Vec<&'static str>,
    /// `token.binding.proof` is one of these.
    pub proofs: Vec<&'static str>,
    /// Only events with `token.binding.downgrade`.
    pub downgrade: bool,
}

impl Select {
    /// Whether `event`, of kind `kind`, counts.
    pub fn matches(&self, kind: &str, event: &impl Observed) -> bool {
        let one_of = |list: &[&'static str], value: Option<std::borrow::Cow<'_, str>>| {
            list.is_empty() || value.is_some_and(|v| list.contains(&v.as_ref()))
        };
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && one_of(&self.error_codes, event.field(Field::ErrorCode))
            && (one_of(&self.grant_types, event.grant_type()) || grant_type_unknown(event))
            && one_of(&self.verdicts, event.verdict())
            && one_of(&self.proofs, event.field(Field::BindingProof))
            && (!self.downgrade || event.binding_downgrade())
    }
}

/// At least `at_least` distinct values of `field` among a group's events, counting only
/// values seen `per_value` times (a range: "2 to 8 attempts each").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Distinct {
    /// The field whose values are counted.
    pub field: Field,
    /// How many distinct values make an attack.
    pub at_least: u64,
    /// How often each value must occur to be counted.
    pub per_value: RangeInclusive<u64>,
}

/// When a group of events is an attack: every part must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// At least this many events in the window.
    pub count: u64,
    /// A distinct count, when the rule needs one.
    pub distinct: Option<Distinct>,
    /// The first and last events at least this far apart ("spread in time").
    pub min_span: Duration,
}

impl Condition {
    /// At least `count` events.
    pub fn count(count: u64) -> Condition {
        Condition {
            count,
            distinct: None,
            min_span: Duration::ZERO,
        }
    }
}

/// A detection rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Its stable id (`brute_force`): `alert.rule`.
    pub id: &'static str,
    /// A title for people: `alert.title`.
    pub title: &'static str,
    /// The alert's severity.
    pub severity: Severity,
    /// Which events count: those any of these selects.
    pub select: Vec<Select>,
    /// What events are grouped by: the alert's key. An event without one of these fields
    /// is not counted.
    pub group_by: Vec<Field>,
    /// How far back a group's events count (by the events' own times).
    pub timespan: Duration,
    /// When a group is an attack.
    pub condition: Condition,
    /// After an alert, how long the same key stays quiet (its events are counted and the
    /// next alert says how many); by default the timespan.
    pub cooldown: Duration,
}

impl Rule {
    /// Events a group keeps at most: enough to reach the condition with room to spare,
    /// so that memory per key is bounded whatever the traffic.
    pub(super) fn events_kept(&self) -> usize {
        // A value seen more often than the count asks for adds nothing: an open-ended
        // `per_value` (`1..=u64::MAX`) must not make every group of the rule keep the
        // maximum, which a cap on groups would then multiply.
        let needed = match &self.condition.distinct {
            Some(d) => {
                let per_value =
                    (*d.per_value.end()).min(self.condition.count.max(*d.per_value.start()));
                d.at_least.saturating_mul(per_value)
            }
            None => 0,
        };
        let needed = needed.max(self.condition.count).max(1);
        usize::try_from(needed.saturating_mul(2).clamp(32, 8192)).unwrap_or(8192)
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// The rules on by default, with thresholds from public anchors (see `docs/detection.md`):
/// Auth0's brute-force protection (10 failures per user and IP), Elastic's credential
/// stuffing (25 failures over 15 users, at most 2 each, in 15 minutes) and password spraying
/// (5 users, 2 to 8 attempts each, here up to 9, spread over at least 5 minutes) rules, and its detection of
/// session tokens used from several addresses.
pub fn default_rules() -> Vec<Rule> {
    // A failed login, or a failed password grant (its username is `actor.subject`).
    let failed_logins = || {
        vec![
            Select {
                kinds: vec!["LoginFailed"],
                ..Select::default()
            },
            Select {
                kinds: vec!["TokenRequestFailed"],
                grant_types: vec!["password"],
                ..Select::default()
            },
        ]
    };
    vec![
        Rule {
            id: "brute_force",
            title: "Repeated failed logins for one user from one address",
            severity: Severity::Critical,
            select: failed_logins(),
            group_by: vec![Field::Subject, Field::SourceIp],
            timespan: 15 * MINUTE,
            condition: Condition::count(10),
            cooldown: 15 * MINUTE,
        },
        Rule {
            id: "credential_stuffing",
            title: "Failed logins for many users from one address",
            severity: Severity::Critical,
            select: failed_logins(),
            group_by: vec![Field::SourceIp],
            timespan: 15 * MINUTE,
            condition: Condition {
                count: 25,
                distinct: Some(Distinct {
                    field: Field::Subject,
                    at_least: 15,
                    per_value: 1..=2,
                }),
                min_span: Duration::ZERO,
            },
            cooldown: 15 * MINUTE,
        },
        Rule {
            id: "password_spray",
            title: "A few failed logins each for many users from one address, spread in time",
            severity: Severity::Critical,
            select: failed_logins(),
            group_by: vec![Field::SourceIp],
            timespan: 60 * MINUTE,
            condition: Condition {
                count: 10,
                distinct: Some(Distinct {
                    field: Field::Subject,
                    at_least: 5,
                    // Elastic's rule stops at 8; 9 is counted too, as `brute_force`
                    // (10 per user) leaves it: 9 guesses for each user, user after user,
                    // would escape every rule.
                    per_value: 2..=9,
                }),
                min_span: 5 * MINUTE,
            },
            cooldown: 60 * MINUTE,
        },
        Rule {
            id: "client_secret_guessing",
            title: "Repeated failed client authentications for one client",
            severity: Severity::Critical,
            select: vec![Select {
                kinds: vec![
                    "TokenRequestFailed",
                    "TokenRevocationFailed",
                    "TokenIntrospectionFailed",
                ],
                // RFC 6749 §5.2's `invalid_client`; Keycloak answers a wrong secret
                // `unauthorized_client`, and a Basic filter in front of a server a bare 401.
                error_codes: vec!["invalid_client", "unauthorized_client", "http_401"],
                ..Select::default()
            }],
            group_by: vec![Field::ClientId],
            timespan: 15 * MINUTE,
            condition: Condition::count(10),
            cooldown: 15 * MINUTE,
        },
        Rule {
            id: "token_shared",
            title: "One access token used from several addresses",
            severity: Severity::Warning,
            select: vec![Select {
                kinds: vec!["ResourceAccessed", "AccessDenied"],
                ..Select::default()
            }],
            group_by: vec![Field::Token],
            timespan: 30 * MINUTE,
            condition: Condition {
                count: 3,
                distinct: Some(Distinct {
                    field: Field::SourceIp,
                    at_least: 3,
                    per_value: 1..=u64::MAX,
                }),
                min_span: Duration::ZERO,
            },
            cooldown: 30 * MINUTE,
        },
        Rule {
            id: "scope_probing",
            title: "Repeated insufficient_scope or invalid_scope failures by one client",
            severity: Severity::Warning,
            select: vec![Select {
                kinds: vec!["AccessDenied", "TokenRequestFailed", "AuthorizationFailed"],
                error_codes: vec!["insufficient_scope", "invalid_scope"],
                ..Select::default()
            }],
            group_by: vec![Field::ClientId],
            timespan: 10 * MINUTE,
            condition: Condition::count(10),
            cooldown: 10 * MINUTE,
        },
        Rule {
            id: "invalid_token_flood",
            title: "Many forged, malformed or expired tokens from one address",
            severity: Severity::Critical,
            select: vec![Select {
                kinds: vec!["AccessDenied"],
                verdicts: vec![
                    "bad_signature",
                    "malformed",
                    "expired",
                    "unknown_key",
                    "wrong_issuer",
                    "wrong_audience",
                    "not_yet_valid",
                ],
                ..Select::default()
            }],
            group_by: vec![Field::SourceIp],
            timespan: 5 * MINUTE,
            condition: Condition::count(20),
            cooldown: 5 * MINUTE,
        },
        Rule {
            id: "dpop_proof_replay",
            title: "A DPoP proof used again: someone holds a copy of a request",
            severity: Severity::Critical,
            select: vec![Select {
                kinds: vec![
                    "ResourceAccessed",
                    "AccessDenied",
                    "AccessTokenIssued",
                    "TokenRequestFailed",
                ],
                proofs: vec!["replayed"],
                ..Select::default()
            }],
            group_by: vec![Field::BindingKey],
            timespan: 10 * MINUTE,
            condition: Condition::count(1),
            cooldown: 10 * MINUTE,
        },
        Rule {
            id: "binding_downgrade",
            title: "A sender-constrained token presented as a plain bearer token",
            severity: Severity::Critical,
            select: vec![Select {
                kinds: vec!["ResourceAccessed", "AccessDenied"],
                downgrade: true,
                ..Select::default()
            }],
            group_by: vec![Field::Token],
            timespan: 10 * MINUTE,
            condition: Condition::count(1),
            cooldown: 10 * MINUTE,
        },
        Rule {
            id: "redirect_uri_probing",
            title: "Repeated authorization failures for unregistered redirect URIs",
            severity: Severity::Warning,
            select: vec![Select {
                kinds: vec!["AuthorizationFailed"],
                // RFC 6749 §4.1.2.1: a server must not redirect to an unregistered URI; it
                // shows the user an error page, most often a plain 400 without an OAuth
                // error code to read (`http_400`), as oidc-provider does.
                error_codes: vec![
                    "invalid_request",
                    "invalid_redirect_uri",
                    "unauthorized_client",
                    "http_400",
                ],
                ..Select::default()
            }],
            group_by: vec![Field::SourceIp],
            timespan: 10 * MINUTE,
            condition: Condition {
                count: 5,
                distinct: Some(Distinct {
                    field: Field::RedirectUri,
                    at_least: 3,
                    per_value: 1..=u64::MAX,
                }),
                min_span: Duration::ZERO,
            },
            cooldown: 10 * MINUTE,
        },
    ]
}
