//! The report's numbers, gathered in one pass over the events: memory grows with the
//! distinct clients, subjects, routes, addresses and tokens, never with the events.

use std::collections::BTreeMap;
use std::fmt::Write as _;

// A fast hash with a random seed per map: the keys come from the trail, so from whoever
// sent the requests; the seed keeps them from choosing collisions.
use foldhash::{HashMap, HashMap as Map, HashSet};
use serde::Serialize;

use super::event::{Event, Text};

/// Addresses remembered per access-review row; past this the row says "at least".
const ADDRESSES_PER_ROW: usize = 1_000;
/// Rows of the busiest-clients and busiest-routes tables.
pub const TOP: usize = 20;
/// Alerts listed one by one (all are counted).
const ALERTS_LISTED: usize = 200;
/// Events listed one by one for a data-subject access report (all are counted).
pub const SUBJECT_EVENTS_LISTED: usize = 10_000;
/// Tokens used after revocation listed one by one (all are counted).
const REUSED_LISTED: usize = 1_000;

/// Counts of one kind (or one day) by outcome.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Outcomes {
    pub success: u64,
    pub failure: u64,
    pub unknown: u64,
}

impl Outcomes {
    fn add(&mut self, outcome: Option<&str>, count: u64) {
        match outcome {
            Some("success") => self.success += count,
            Some("failure") => self.failure += count,
            _ => self.unknown += count,
        }
    }

    pub fn total(&self) -> u64 {
        self.success + self.failure + self.unknown
    }
}

#[derive(Default)]
struct AccessRow {
    count: u64,
    first: String,
    last: String,
    addresses: HashSet<String>,
    more_addresses: bool,
}

#[derive(Default)]
struct ScopeStat {
    count: u64,
    last: String,
}

#[derive(Default)]
struct ClientScopes {
    first: String,
    last: String,
    requested: HashMap<String, ScopeStat>,
    granted: HashMap<String, ScopeStat>,
    required: HashMap<String, ScopeStat>,
    used: HashMap<String, ScopeStat>,
    refused: HashMap<String, ScopeStat>,
}

#[derive(Default)]
struct Missing {
    count: u64,
    last: String,
}

#[derive(Default)]
struct Introspections {
    active: u64,
    inactive: u64,
    /// Answered, but whether the token is active is not known (no `token.active`).
    unknown: u64,
    failed: u64,
}

/// What one token was seen doing.
#[derive(Default)]
struct TokenSeen {
    /// The client it was issued to (the least, should there be several).
    issued_to: Option<String>,
    /// The client it was used by (the least, should there be several).
    used_by: Option<String>,
    issued: bool,
    last_used: Option<String>,
    revoked_at: Option<String>,
}

/// Gathers the numbers of every section.
#[derive(Default)]
pub struct Aggregate {
    events: u64,
    first: Option<String>,
    last: Option<String>,
    by_kind: HashMap<String, Outcomes>,
    per_day: BTreeMap<String, Outcomes>,
    clients: HashMap<String, u64>,
    /// By [`Key`] of method and route.
    routes: HashMap<String, (u64, u64)>,
    error_codes: HashMap<String, u64>,
    /// By [`Key`] of subject, client, method and route.
    access: HashMap<String, AccessRow>,
    subject_events: Vec<SubjectEvent>,
    subject_events_total: u64,
    list_subject_events: bool,
    scopes: HashMap<String, ClientScopes>,
    /// By [`Key`] of client, method, route and the missing scopes.
    missing: HashMap<String, Missing>,
    issued_by_grant: HashMap<String, u64>,
    token_failures_by_grant: HashMap<String, u64>,
    revocations: HashMap<String, u64>,
    revocation_failures: HashMap<String, u64>,
    introspections: HashMap<String, Introspections>,
    tokens: HashMap<String, TokenSeen>,
    /// Failures, the usernames tried (up to [`ADDRESSES_PER_ROW`]) and whether there were more.
    failed_logins_by_ip: HashMap<String, (u64, HashSet<String>, bool)>,
    failed_logins_by_subject: HashMap<String, u64>,
    /// By [`Key`] of client and error code.
    token_failures: HashMap<String, u64>,
    token_failures_by_ip: HashMap<String, u64>,
    denials: HashMap<String, u64>,
    alerts_by_rule: HashMap<String, u64>,
    alerts: Vec<AlertRow>,
    /// By [`Key`] of reason and sink.
    dropped: HashMap<String, u64>,
    chained: u64,
    /// Where composite keys are made, to look up without allocating.
    key: Key,
}

/// Several texts as one map key: each part as its length, `:` and itself, so no text can
/// pass for two. Made in one buffer kept from event to event; a key is copied only when it
/// is new.
#[derive(Default)]
struct Key(String);

impl Key {
    fn of(&mut self, parts: &[&str]) -> &str {
        self.0.clear();
        for part in parts {
            let _ = write!(self.0, "{}:", part.len());
            self.0.push_str(part);
        }
        &self.0
    }

    /// The parts of a key made by [`Key::of`].
    fn parts(mut key: &str) -> Vec<String> {
        let mut parts = Vec::new();
        while let Some((len, rest)) = key.split_once(':') {
            // Made by `of`: the length ends on a character boundary.
            let len: usize = len.parse().unwrap_or(rest.len());
            let (Some(part), Some(after)) = (rest.get(..len), rest.get(len..)) else {
                parts.push(rest.to_owned());
                break;
            };
            parts.push(part.to_owned());
            key = after;
        }
        parts
    }
}

/// The entry of `key` in `map`, made (with its key copied) only when new.
fn entry<'m, V: Default>(map: &'m mut Map<String, V>, key: &str) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key)
}

/// One line of a data-subject access report.
#[derive(Clone, Debug, Serialize)]
pub struct SubjectEvent {
    pub time: String,
    pub kind: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

/// One `SecurityAlert`.
#[derive(Clone, Debug, Serialize)]
pub struct AlertRow {
    pub time: String,
    pub rule: String,
    pub key: String,
    pub count: u64,
}

fn owned(text: Option<&str>) -> String {
    text.unwrap_or("").to_owned()
}

fn bump(map: &mut HashMap<String, u64>, key: &str, by: u64) {
    if let Some(count) = entry(map, key) {
        *count += by;
    }
}

fn note_scope(map: &mut HashMap<String, ScopeStat>, scope: &str, group: &Group<'_>) {
    let Some(stat) = entry(map, scope) else {
        return;
    };
    stat.count += group.count;
    if stat.last.as_str() < group.last {
        set(&mut stat.last, group.last);
    }
}

/// Lists up to this long are searched one scope after another; longer ones through a set.
const SHORT_LIST: usize = 16;

/// The scopes of `list`, each once, in order. The token endpoint records `scope` as the
/// request sent it, so `scope=admin admin admin` is a list of three: one request for
/// `admin`, not three. The writer keeps lists short (at most 100 scopes), but a trail it
/// did not write whole may hold a line of 100,000: comparing each scope with every one
/// before it would take minutes for that one line.
fn distinct<'l>(list: &'l [Text<'_>]) -> impl Iterator<Item = &'l str> {
    let mut seen = (list.len() > SHORT_LIST).then(HashSet::<&'l str>::default);
    list.iter()
        .enumerate()
        .filter(move |&(at, scope)| match &mut seen {
            Some(seen) => seen.insert(&**scope),
            None => !list[..at].contains(scope),
        })
        .map(|(_, scope)| &**scope)
}

/// Whether a scope is in `list`: searched through a set when the list is long (see
/// [`distinct`]).
fn member_of<'l>(list: &'l [Text<'_>]) -> impl Fn(&str) -> bool + 'l {
    let set = (list.len() > SHORT_LIST).then(|| {
        list.iter()
            .map(|scope| &**scope)
            .collect::<HashSet<&'l str>>()
    });
    move |scope| match &set {
        Some(set) => set.contains(scope),
        None => list.iter().any(|listed| &**listed == scope),
    }
}

/// Writes `time` over `slot`, in its buffer: no allocation once the slot has held a time.
fn set(slot: &mut String, time: &str) {
    slot.clear();
    slot.push_str(time);
}

/// [`set`], for a slot that may be empty.
fn set_some(slot: &mut Option<String>, time: &str) {
    match slot {
        Some(slot) => set(slot, time),
        None => *slot = Some(time.to_owned()),
    }
}

/// Keeps the earliest and latest time of `group` in `first` and `last` (empty: none yet).
fn span(first: &mut String, last: &mut String, group: &Group<'_>) {
    if first.is_empty() || group.first < first.as_str() {
        set(first, group.first);
    }
    if last.as_str() < group.last {
        set(last, group.last);
    }
}

/// Events alike in everything a report reads but their times: `count` of them, the
/// earliest at `first` and the latest at `last` (canonical RFC 3339, on one day). One event
/// is a group of one; a database sums the others up before they are read.
///
/// A group that is not `whole` leaves out what a database counts apart: the days, the
/// access-review rows and the tokens (see [`Aggregate::add_day`], [`Aggregate::add_access`]
/// and [`Aggregate::add_token`]); its event then need not hold a subject, address or
/// token, and may span days.
#[derive(Clone, Copy, Debug)]
pub struct Group<'t> {
    pub count: u64,
    pub first: &'t str,
    pub last: &'t str,
    pub whole: bool,
}

impl<'t> Group<'t> {
    /// One event at `time`.
    pub fn one(time: &'t str) -> Self {
        Group {
            count: 1,
            first: time,
            last: time,
            whole: true,
        }
    }
}

/// What is known of one token, counted apart (by a database).
#[cfg(feature = "postgres")]
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenFacts<'t> {
    pub issued: bool,
    pub issued_to: Option<&'t str>,
    pub used_by: Option<&'t str>,
    pub last_used: Option<&'t str>,
    pub revoked_at: Option<&'t str>,
}

/// Keeps the bytewise least of `slot` and `value`.
fn least(slot: &mut Option<String>, value: Option<&str>) {
    if let Some(value) = value {
        if slot.as_deref().is_none_or(|held| value < held) {
            *slot = Some(value.to_owned());
        }
    }
}

impl Aggregate {
    /// With `list_subject_events`, every event is also listed (a data-subject access
    /// report: the caller filters on one subject).
    pub fn new(list_subject_events: bool) -> Self {
        Aggregate {
            list_subject_events,
            ..Aggregate::default()
        }
    }

    /// Adds one event; `time` is its time in the canonical RFC 3339 form. With
    /// `list_subject_events`, the event is listed too.
    pub fn add(&mut self, event: &Event<'_>, time: &str) {
        if self.list_subject_events {
            self.subject_events_total += 1;
            // The earliest are listed, whatever order the events come in: cut back to
            // them now and then, so that the list stays bounded.
            if self.subject_events.len() >= 2 * SUBJECT_EVENTS_LISTED {
                earliest(&mut self.subject_events);
            }
            self.subject_events.push(SubjectEvent {
                time: time.to_owned(),
                kind: event.kind.to_string(),
                outcome: owned(event.outcome.as_deref()),
                client: event.client().map(str::to_owned),
                method: event.method().map(str::to_owned),
                route: event.route().map(str::to_owned),
                ip: event.ip().map(str::to_owned),
            });
        }
        self.add_group(event, &Group::one(time));
    }

    /// Lists one event of a data-subject access report read apart from its numbers (a
    /// database lists the earliest, in time order); `total` is how many there are in all.
    #[cfg(feature = "postgres")]
    pub fn list_subject_event(&mut self, event: SubjectEvent, total: u64) {
        self.subject_events_total = total;
        if self.subject_events.len() < SUBJECT_EVENTS_LISTED {
            self.subject_events.push(event);
        }
    }

    /// Adds a group of events alike in all `event` holds (its `time` is not read). Events
    /// are not listed for a data-subject access report: see [`Aggregate::add`].
    pub fn add_group(&mut self, event: &Event<'_>, group: &Group<'_>) {
        let n = group.count;
        self.events += n;
        if self
            .first
            .as_deref()
            .is_none_or(|first| group.first < first)
        {
            set_some(&mut self.first, group.first);
        }
        if self.last.as_deref().is_none_or(|last| group.last > last) {
            set_some(&mut self.last, group.last);
        }
        let kind = event.kind.as_ref();
        let outcome = event.outcome.as_deref();
        if let Some(outcomes) = entry(&mut self.by_kind, kind) {
            outcomes.add(outcome, n);
        }
        if group.whole {
            self.add_day(group.first.get(..10).unwrap_or(group.first), outcome, n);
        }
        if let Some(client) = event.client() {
            bump(&mut self.clients, client, n);
        }
        if let Some(code) = event.error_code() {
            bump(&mut self.error_codes, code, n);
        }
        if event.chain.is_some() {
            self.chained += n;
        }
        match kind {
            "ResourceAccessed" | "AccessDenied" => self.resource(event, group),
            "AccessTokenIssued" => self.issued(event, group),
            "TokenRequestFailed" => self.token_failed(event, group),
            "TokenRevoked" => {
                bump(&mut self.revocations, event.client().unwrap_or(""), n);
                let fingerprint = event.fingerprint().filter(|_| group.whole);
                if let Some(seen) = fingerprint.and_then(|fp| self.token(fp)) {
                    if seen.revoked_at.as_deref().is_none_or(|at| group.first < at) {
                        set_some(&mut seen.revoked_at, group.first);
                    }
                }
            }
            "TokenRevocationFailed" => {
                bump(
                    &mut self.revocation_failures,
                    event.error_code().unwrap_or("(none)"),
                    n,
                );
            }
            "TokenIntrospected" | "TokenIntrospectionFailed" => {
                let row = self
                    .introspections
                    .entry(owned(event.client()))
                    .or_default();
                match (kind, event.token.as_ref().and_then(|t| t.active)) {
                    ("TokenIntrospectionFailed", _) => row.failed += n,
                    (_, Some(false)) => row.inactive += n,
                    (_, Some(true)) => row.active += n,
                    (_, None) => row.unknown += n,
                }
            }
            "LoginFailed" => {
                let row = self
                    .failed_logins_by_ip
                    .entry(owned(event.ip()))
                    .or_default();
                row.0 += n;
                // A username not recorded (sent twice, in a body not read) is a guess all
                // the same: counted as the empty username's, as the detector counts it, or
                // sending every guess so would leave it out of both tables.
                let subject = event.subject().unwrap_or("");
                if !row.1.contains(subject) {
                    if row.1.len() < ADDRESSES_PER_ROW {
                        row.1.insert(subject.to_owned());
                    } else {
                        row.2 = true;
                    }
                }
                bump(&mut self.failed_logins_by_subject, subject, n);
            }
            "SecurityAlert" => {
                let alert = event.alert.as_ref();
                let rule = alert.and_then(|a| a.rule.as_deref()).unwrap_or("(none)");
                bump(&mut self.alerts_by_rule, rule, n);
                // The earliest are listed, whatever order the events come in.
                if self.alerts.len() >= 2 * ALERTS_LISTED {
                    earliest_alerts(&mut self.alerts);
                }
                for _ in 0..n.min(ALERTS_LISTED as u64) {
                    self.alerts.push(AlertRow {
                        time: group.first.to_owned(),
                        rule: rule.to_owned(),
                        key: owned(alert.and_then(|a| a.key.as_deref())),
                        count: alert.and_then(|a| a.count).unwrap_or(0),
                    });
                }
            }
            "AuditEventsDropped" => {
                let dropped = event.dropped.as_ref();
                let key = self.key.of(&[
                    dropped.and_then(|d| d.reason.as_deref()).unwrap_or(""),
                    dropped.and_then(|d| d.sink.as_deref()).unwrap_or(""),
                ]);
                if let Some(count) = entry(&mut self.dropped, key) {
                    let each = dropped.and_then(|d| d.count).unwrap_or(0);
                    *count = count.saturating_add(each.saturating_mul(n));
                }
            }
            _ => {}
        }
    }

    /// Counts `count` events of one day (`YYYY-MM-DD`) with `outcome`.
    pub fn add_day(&mut self, day: &str, outcome: Option<&str>, count: u64) {
        match self.per_day.get_mut(day) {
            Some(outcomes) => outcomes.add(outcome, count),
            None => self
                .per_day
                .entry(day.to_owned())
                .or_default()
                .add(outcome, count),
        }
    }

    /// Counts a group of protected-route calls into one access-review row (by subject,
    /// client, method and route), from the address `ip`.
    pub fn add_access(&mut self, who: [&str; 4], ip: Option<&str>, group: &Group<'_>) {
        let Some(access) = entry(&mut self.access, self.key.of(&who)) else {
            return;
        };
        access.count += group.count;
        span(&mut access.first, &mut access.last, group);
        if let Some(ip) = ip {
            if !access.addresses.contains(ip) {
                if access.addresses.len() < ADDRESSES_PER_ROW {
                    access.addresses.insert(ip.to_owned());
                } else {
                    access.more_addresses = true;
                }
            }
        }
    }

    /// Adds what is known of one token.
    #[cfg(feature = "postgres")]
    pub fn add_token(&mut self, fingerprint: &str, facts: &TokenFacts<'_>) {
        let Some(seen) = self.token(fingerprint) else {
            return;
        };
        seen.issued |= facts.issued;
        least(&mut seen.issued_to, facts.issued_to);
        least(&mut seen.used_by, facts.used_by);
        if let Some(used) = facts.last_used {
            if seen.last_used.as_deref().is_none_or(|last| last < used) {
                set_some(&mut seen.last_used, used);
            }
        }
        if let Some(revoked) = facts.revoked_at {
            if seen.revoked_at.as_deref().is_none_or(|at| revoked < at) {
                set_some(&mut seen.revoked_at, revoked);
            }
        }
    }

    /// What is known of one token, made on first sight (the key copied only then).
    fn token(&mut self, fingerprint: &str) -> Option<&mut TokenSeen> {
        entry(&mut self.tokens, fingerprint)
    }

    /// One client's scope numbers, made on first sight; its first and last times moved.
    fn client_scopes(&mut self, client: &str, group: &Group<'_>) -> Option<&mut ClientScopes> {
        let scopes = entry(&mut self.scopes, client)?;
        span(&mut scopes.first, &mut scopes.last, group);
        Some(scopes)
    }

    fn resource(&mut self, event: &Event<'_>, group: &Group<'_>) {
        let n = group.count;
        let denied = &*event.kind == "AccessDenied";
        let method = event.method().unwrap_or("");
        let route = event.route().unwrap_or("");
        if let Some(row) = entry(&mut self.routes, self.key.of(&[method, route])) {
            row.0 += n;
            if denied {
                row.1 += n;
            }
        }
        if denied {
            bump(&mut self.denials, event.error_code().unwrap_or("(none)"), n);
        }
        if group.whole {
            let who = [
                event.subject().unwrap_or(""),
                event.client().unwrap_or(""),
                method,
                route,
            ];
            self.add_access(who, event.ip(), group);
        }
        // A token is used when a protected route accepted it. A refused one (a random
        // string, a revoked token turned away) neither counts as use nor gets an entry.
        if !denied && group.whole {
            if let Some(seen) = event.fingerprint().and_then(|fp| self.token(fp)) {
                least(&mut seen.used_by, event.client());
                if seen
                    .last_used
                    .as_deref()
                    .is_none_or(|last| last < group.last)
                {
                    set_some(&mut seen.last_used, group.last);
                }
            }
        }
        let scopes = event.scopes();
        // Let through without what the route requires: only an audit-only rule does that.
        // The writer names the missing scopes; for events without that list, a rule that
        // used none of the required scopes was not met.
        if !denied {
            let mut missing: Vec<&str> = distinct(&scopes.missing).collect();
            if missing.is_empty() && scopes.used.is_empty() {
                let granted = member_of(&scopes.granted);
                missing = distinct(&scopes.required)
                    .filter(|required| !granted(required))
                    .collect();
            }
            if !missing.is_empty() {
                let mut parts = vec![event.client().unwrap_or(""), method, route];
                parts.extend(missing);
                let key = self.key.of(&parts);
                if let Some(row) = entry(&mut self.missing, key) {
                    row.count += n;
                    if row.last.as_str() < group.last {
                        set(&mut row.last, group.last);
                    }
                }
            }
        }
        let Some(client) = event.client() else {
            return;
        };
        let Some(stats) = self.client_scopes(client, group) else {
            return;
        };
        for scope in distinct(&scopes.granted) {
            note_scope(&mut stats.granted, scope, group);
        }
        for scope in distinct(&scopes.required) {
            note_scope(&mut stats.required, scope, group);
        }
        if !denied {
            for scope in distinct(&scopes.used) {
                note_scope(&mut stats.used, scope, group);
            }
        }
    }

    fn issued(&mut self, event: &Event<'_>, group: &Group<'_>) {
        bump(
            &mut self.issued_by_grant,
            event.grant_type.as_deref().unwrap_or("(none)"),
            group.count,
        );
        let fingerprint = event.fingerprint().filter(|_| group.whole);
        if let Some(seen) = fingerprint.and_then(|fp| self.token(fp)) {
            seen.issued = true;
            least(&mut seen.issued_to, event.client());
        }
        let Some(client) = event.client() else {
            return;
        };
        let scopes = event.scopes();
        let Some(stats) = self.client_scopes(client, group) else {
            return;
        };
        let granted = member_of(&scopes.granted);
        for scope in distinct(&scopes.requested) {
            note_scope(&mut stats.requested, scope, group);
            if !scopes.granted.is_empty() && !granted(scope) {
                note_scope(&mut stats.refused, scope, group);
            }
        }
        for scope in distinct(&scopes.granted) {
            note_scope(&mut stats.granted, scope, group);
        }
    }

    fn token_failed(&mut self, event: &Event<'_>, group: &Group<'_>) {
        let n = group.count;
        let code = event.error_code().unwrap_or("(none)");
        bump(
            &mut self.token_failures_by_grant,
            event.grant_type.as_deref().unwrap_or("(none)"),
            n,
        );
        let key = self.key.of(&[event.client().unwrap_or(""), code]);
        if let Some(count) = entry(&mut self.token_failures, key) {
            *count += n;
        }
        bump(&mut self.token_failures_by_ip, event.ip().unwrap_or(""), n);
        if code == "invalid_scope" {
            let scopes = event.scopes();
            if let Some(stats) = event.client().and_then(|c| self.client_scopes(c, group)) {
                for scope in distinct(&scopes.requested) {
                    note_scope(&mut stats.requested, scope, group);
                    note_scope(&mut stats.refused, scope, group);
                }
            }
        }
    }

    /// Whether any event was chained.
    pub fn chained(&self) -> bool {
        self.chained > 0
    }

    /// The numbers, sorted for reading; `since_window` is the start of the unused-permission
    /// window (canonical RFC 3339).
    pub fn finish(self, since_window: &str) -> Sections {
        let mut by_kind: Vec<KindRow> = self
            .by_kind
            .into_iter()
            .map(|(kind, outcomes)| KindRow { kind, outcomes })
            .collect();
        by_kind.sort_by(|a, b| {
            b.outcomes
                .total()
                .cmp(&a.outcomes.total())
                .then(a.kind.cmp(&b.kind))
        });
        let per_day = self
            .per_day
            .into_iter()
            .map(|(day, outcomes)| DayRow { day, outcomes })
            .collect();
        let clients = top(self.clients, |client, events| ClientRow { client, events });
        let mut routes: Vec<RouteRow> = self
            .routes
            .into_iter()
            .map(|(key, (events, denied))| {
                let mut parts = Key::parts(&key).into_iter();
                RouteRow {
                    method: parts.next().unwrap_or_default(),
                    route: parts.next().unwrap_or_default(),
                    events,
                    denied,
                }
            })
            .collect();
        routes.sort_by(|a, b| {
            b.events
                .cmp(&a.events)
                .then_with(|| (&a.route, &a.method).cmp(&(&b.route, &b.method)))
        });
        routes.truncate(TOP);
        let error_codes = counted(self.error_codes, |code, count| CodeRow { code, count });

        let mut access: Vec<AccessReviewRow> = self
            .access
            .into_iter()
            .map(|(key, row)| {
                let mut parts = Key::parts(&key).into_iter();
                let mut part = || parts.next().unwrap_or_default();
                (part(), part(), part(), part(), row)
            })
            .map(|(subject, client, method, route, row)| AccessReviewRow {
                subject,
                client,
                method,
                route,
                count: row.count,
                first_seen: row.first,
                last_seen: row.last,
                addresses: row.addresses.len() as u64,
                addresses_at_least: row.more_addresses,
            })
            .collect();
        access.sort_by(|a, b| {
            (&a.subject, &a.client, &a.route, &a.method)
                .cmp(&(&b.subject, &b.client, &b.route, &b.method))
        });

        let mut scope_clients: Vec<ClientScopeRow> = self
            .scopes
            .into_iter()
            .map(|(client, stats)| {
                let younger = stats.first.as_str() > since_window;
                let unused = if younger {
                    Vec::new()
                } else {
                    let mut unused: Vec<UnusedScope> = stats
                        .granted
                        .keys()
                        .filter_map(|scope| {
                            let last_used = stats.used.get(scope).map(|u| u.last.clone());
                            match &last_used {
                                Some(last) if last.as_str() >= since_window => None,
                                _ => Some(UnusedScope {
                                    scope: scope.clone(),
                                    last_used,
                                }),
                            }
                        })
                        .collect();
                    unused.sort_by(|a, b| a.scope.cmp(&b.scope));
                    unused
                };
                ClientScopeRow {
                    client,
                    first_seen: stats.first,
                    last_seen: stats.last,
                    younger_than_window: younger,
                    requested: scope_rows(stats.requested),
                    granted: scope_rows(stats.granted),
                    required: scope_rows(stats.required),
                    used: scope_rows(stats.used),
                    refused: scope_rows(stats.refused),
                    unused,
                }
            })
            .collect();
        scope_clients.sort_by(|a, b| a.client.cmp(&b.client));
        let mut missing: Vec<MissingRow> = self
            .missing
            .into_iter()
            .map(|(key, row)| {
                let mut parts = Key::parts(&key).into_iter();
                let mut part = || parts.next().unwrap_or_default();
                MissingRow {
                    client: part(),
                    method: part(),
                    route: part(),
                    missing: parts.collect(),
                    count: row.count,
                    last_seen: row.last,
                }
            })
            .collect();
        missing.sort_by(|a, b| b.count.cmp(&a.count).then(a.client.cmp(&b.client)));

        let mut issued = 0;
        let mut never_used_by_client: HashMap<String, u64> = HashMap::default();
        let mut used_after_revocation = Vec::new();
        let mut used_after_revocation_total = 0;
        for (fingerprint, seen) in self.tokens {
            let client = seen.issued_to.or(seen.used_by).unwrap_or_default();
            if seen.issued {
                issued += 1;
                if seen.last_used.is_none() {
                    *never_used_by_client.entry(client.clone()).or_default() += 1;
                }
            }
            if let (Some(revoked_at), Some(last_used)) = (&seen.revoked_at, &seen.last_used) {
                if last_used > revoked_at {
                    used_after_revocation_total += 1;
                    used_after_revocation.push(ReusedToken {
                        fingerprint,
                        client,
                        revoked_at: revoked_at.clone(),
                        last_used: last_used.clone(),
                    });
                }
            }
        }
        // The first revoked first, the same every time; all are counted, the first listed.
        used_after_revocation
            .sort_by(|a, b| (&a.revoked_at, &a.fingerprint).cmp(&(&b.revoked_at, &b.fingerprint)));
        used_after_revocation.truncate(REUSED_LISTED);
        let never_used = never_used_by_client.values().sum();
        let mut introspections: Vec<IntrospectionRow> = self
            .introspections
            .into_iter()
            .map(|(client, row)| IntrospectionRow {
                client,
                active: row.active,
                inactive: row.inactive,
                unknown: row.unknown,
                failed: row.failed,
            })
            .collect();
        introspections.sort_by(|a, b| a.client.cmp(&b.client));
        let refreshed = self
            .issued_by_grant
            .get("refresh_token")
            .copied()
            .unwrap_or(0);

        let mut failed_logins_by_ip: Vec<FailedLoginRow> = self
            .failed_logins_by_ip
            .into_iter()
            .map(|(ip, (count, subjects, more))| FailedLoginRow {
                ip,
                count,
                subjects: subjects.len() as u64,
                subjects_at_least: more,
            })
            .collect();
        failed_logins_by_ip.sort_by(|a, b| b.count.cmp(&a.count).then(a.ip.cmp(&b.ip)));
        let mut token_failures: Vec<TokenFailureRow> = self
            .token_failures
            .into_iter()
            .map(|(key, count)| {
                let mut parts = Key::parts(&key).into_iter();
                TokenFailureRow {
                    client: parts.next().unwrap_or_default(),
                    error_code: parts.next().unwrap_or_default(),
                    count,
                }
            })
            .collect();
        token_failures.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| (&a.client, &a.error_code).cmp(&(&b.client, &b.error_code)))
        });
        let mut dropped: Vec<DroppedRow> = self
            .dropped
            .into_iter()
            .map(|(key, count)| {
                let mut parts = Key::parts(&key).into_iter();
                DroppedRow {
                    reason: parts.next().unwrap_or_default(),
                    sink: parts.next().unwrap_or_default(),
                    count,
                }
            })
            .collect();
        dropped.sort_by(|a, b| (&a.reason, &a.sink).cmp(&(&b.reason, &b.sink)));

        Sections {
            overview: Overview {
                events: self.events,
                first_event: self.first,
                last_event: self.last,
                by_kind,
                per_day,
                clients,
                routes,
                error_codes,
            },
            access,
            subject_events: self.list_subject_events.then(|| {
                let mut listed = self.subject_events;
                earliest(&mut listed);
                SubjectEvents {
                    total: self.subject_events_total,
                    listed,
                }
            }),
            scopes: ScopeUsage {
                window_start: since_window.to_owned(),
                clients: scope_clients,
                missing,
            },
            tokens: Lifecycle {
                issued_by_grant: counted(self.issued_by_grant, |grant_type, count| GrantRow {
                    grant_type,
                    count,
                }),
                refreshed,
                request_failures_by_grant: counted(
                    self.token_failures_by_grant,
                    |grant_type, count| GrantRow { grant_type, count },
                ),
                revoked_by_client: counted(self.revocations, |client, count| ClientRow {
                    client,
                    events: count,
                }),
                revocation_failures: counted(self.revocation_failures, |code, count| CodeRow {
                    code,
                    count,
                }),
                introspections,
                issued_with_fingerprint: issued,
                never_used,
                never_used_by_client: counted(never_used_by_client, |client, count| ClientRow {
                    client,
                    events: count,
                }),
                used_after_revocation_total,
                used_after_revocation,
            },
            failures: Failures {
                failed_logins_by_ip,
                failed_logins_by_subject: counted(
                    self.failed_logins_by_subject,
                    |subject, count| SubjectRow { subject, count },
                ),
                token_failures,
                token_failures_by_ip: counted(self.token_failures_by_ip, |ip, count| IpRow {
                    ip,
                    count,
                }),
                denials: counted(self.denials, |code, count| CodeRow { code, count }),
                alerts_by_rule: counted(self.alerts_by_rule, |rule, count| RuleRow { rule, count }),
                alerts: {
                    let mut alerts = self.alerts;
                    earliest_alerts(&mut alerts);
                    alerts
                },
                dropped,
            },
        }
    }
}

/// The [`SUBJECT_EVENTS_LISTED`] earliest of `events`, in time order; events at the same
/// time by kind, client, method, route, address and outcome (so that every source lists
/// the same ones in the same order).
fn earliest(events: &mut Vec<SubjectEvent>) {
    events.sort_by(|a, b| {
        let key = |e: &SubjectEvent| {
            (
                e.time.clone(),
                e.kind.clone(),
                e.client.clone(),
                e.method.clone(),
                e.route.clone(),
                e.ip.clone(),
                e.outcome.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    events.truncate(SUBJECT_EVENTS_LISTED);
}

/// The [`ALERTS_LISTED`] earliest of `alerts`, in time order (then by rule, key, count).
fn earliest_alerts(alerts: &mut Vec<AlertRow>) {
    alerts.sort_by(|a, b| {
        (&a.time, &a.rule, &a.key, a.count).cmp(&(&b.time, &b.rule, &b.key, b.count))
    });
    alerts.truncate(ALERTS_LISTED);
}

/// Every entry of `map`, most first (ties by key).
fn counted<T>(map: HashMap<String, u64>, row: impl Fn(String, u64) -> T) -> Vec<T> {
    let mut entries: Vec<(String, u64)> = map.into_iter().collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    entries.into_iter().map(|(k, v)| row(k, v)).collect()
}

/// The [`TOP`] entries of `map`, most first.
fn top<T>(map: HashMap<String, u64>, row: impl Fn(String, u64) -> T) -> Vec<T> {
    let mut rows = counted(map, row);
    rows.truncate(TOP);
    rows
}

fn scope_rows(map: HashMap<String, ScopeStat>) -> Vec<ScopeRow> {
    let mut rows: Vec<ScopeRow> = map
        .into_iter()
        .map(|(scope, stat)| ScopeRow {
            scope,
            count: stat.count,
            last: stat.last,
        })
        .collect();
    rows.sort_by(|a, b| a.scope.cmp(&b.scope));
    rows
}

/// Every section's numbers: the JSON output, and what the other outputs are made from.
#[derive(Debug, Serialize)]
pub struct Sections {
    pub overview: Overview,
    pub access: Vec<AccessReviewRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_events: Option<SubjectEvents>,
    pub scopes: ScopeUsage,
    pub tokens: Lifecycle,
    pub failures: Failures,
}

#[derive(Debug, Serialize)]
pub struct Overview {
    pub events: u64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub by_kind: Vec<KindRow>,
    pub per_day: Vec<DayRow>,
    pub clients: Vec<ClientRow>,
    pub routes: Vec<RouteRow>,
    pub error_codes: Vec<CodeRow>,
}

#[derive(Debug, Serialize)]
pub struct KindRow {
    pub kind: String,
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

#[derive(Debug, Serialize)]
pub struct DayRow {
    pub day: String,
    #[serde(flatten)]
    pub outcomes: Outcomes,
}

#[derive(Debug, Serialize)]
pub struct ClientRow {
    pub client: String,
    pub events: u64,
}

#[derive(Debug, Serialize)]
pub struct RouteRow {
    pub method: String,
    pub route: String,
    pub events: u64,
    pub denied: u64,
}

#[derive(Debug, Serialize)]
pub struct CodeRow {
    pub code: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct SubjectRow {
    pub subject: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct IpRow {
    pub ip: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct RuleRow {
    pub rule: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct GrantRow {
    pub grant_type: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct AccessReviewRow {
    pub subject: String,
    pub client: String,
    pub method: String,
    pub route: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub addresses: u64,
    /// More addresses than were counted: `addresses` is a lower bound.
    pub addresses_at_least: bool,
}

#[derive(Debug, Serialize)]
pub struct SubjectEvents {
    pub total: u64,
    pub listed: Vec<SubjectEvent>,
}

#[derive(Debug, Serialize)]
pub struct ScopeUsage {
    /// Scopes not used since this time are unused.
    pub window_start: String,
    pub clients: Vec<ClientScopeRow>,
    /// Routes let through with a required scope missing (audit-only rules).
    pub missing: Vec<MissingRow>,
}

#[derive(Debug, Serialize)]
pub struct ScopeRow {
    pub scope: String,
    pub count: u64,
    pub last: String,
}

#[derive(Debug, Serialize)]
pub struct UnusedScope {
    pub scope: String,
    /// When it was last used, before the window; never, if absent.
    pub last_used: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ClientScopeRow {
    pub client: String,
    pub first_seen: String,
    pub last_seen: String,
    /// First seen inside the window: too young to call anything unused.
    pub younger_than_window: bool,
    pub requested: Vec<ScopeRow>,
    pub granted: Vec<ScopeRow>,
    pub required: Vec<ScopeRow>,
    pub used: Vec<ScopeRow>,
    pub refused: Vec<ScopeRow>,
    pub unused: Vec<UnusedScope>,
}

#[derive(Debug, Serialize)]
pub struct MissingRow {
    pub client: String,
    pub method: String,
    pub route: String,
    pub missing: Vec<String>,
    pub count: u64,
    pub last_seen: String,
}

#[derive(Debug, Serialize)]
pub struct IntrospectionRow {
    pub client: String,
    pub active: u64,
    pub inactive: u64,
    pub unknown: u64,
    pub failed: u64,
}

#[derive(Debug, Serialize)]
pub struct ReusedToken {
    pub fingerprint: String,
    pub client: String,
    pub revoked_at: String,
    pub last_used: String,
}

#[derive(Debug, Serialize)]
pub struct Lifecycle {
    pub issued_by_grant: Vec<GrantRow>,
    pub refreshed: u64,
    pub request_failures_by_grant: Vec<GrantRow>,
    pub revoked_by_client: Vec<ClientRow>,
    pub revocation_failures: Vec<CodeRow>,
    pub introspections: Vec<IntrospectionRow>,
    /// Access tokens issued whose fingerprint the trail holds.
    pub issued_with_fingerprint: u64,
    /// Of those, never presented at a protected route.
    pub never_used: u64,
    pub never_used_by_client: Vec<ClientRow>,
    pub used_after_revocation_total: u64,
    pub used_after_revocation: Vec<ReusedToken>,
}

#[derive(Debug, Serialize)]
pub struct FailedLoginRow {
    pub ip: String,
    pub count: u64,
    /// Distinct usernames tried from the address.
    pub subjects: u64,
    /// More usernames than were counted: `subjects` is a lower bound.
    pub subjects_at_least: bool,
}

#[derive(Debug, Serialize)]
pub struct TokenFailureRow {
    pub client: String,
    pub error_code: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct DroppedRow {
    pub reason: String,
    pub sink: String,
    pub count: u64,
}

#[derive(Debug, Serialize)]
pub struct Failures {
    pub failed_logins_by_ip: Vec<FailedLoginRow>,
    pub failed_logins_by_subject: Vec<SubjectRow>,
    pub token_failures: Vec<TokenFailureRow>,
    pub token_failures_by_ip: Vec<IpRow>,
    pub denials: Vec<CodeRow>,
    pub alerts_by_rule: Vec<RuleRow>,
    pub alerts: Vec<AlertRow>,
    pub dropped: Vec<DroppedRow>,
}

#[cfg(test)]
mod tests {
    use super::Key;

    #[test]
    fn keys_come_apart_as_they_were_made() {
        let mut key = Key::default();
        for parts in [
            vec!["alice", "billing", "GET", "/api/orders"],
            vec!["", "4:x", "", "a:b:c"],
            vec!["é€", "1:", "::", ""],
        ] {
            let made = key.of(&parts).to_owned();
            assert_eq!(Key::parts(&made), parts, "{made}");
        }
        assert_ne!(key.of(&["ab", "c"]).to_owned(), key.of(&["a", "bc"]));
    }
}
