//! The detector: every rule on every event, state per key capped, alerts as events.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::time::Duration;

use foldhash::quality::RandomState;
use std::sync::Arc;

use quick_cache::unsync::Cache as QuickCache;
use quick_cache::unsync::DefaultLifecycle;
use quick_cache::UnitWeighter;
use serde_json::Value;

use super::field::{
    address_group, address_group_text, grant_type_unknown, subject_group, Field, Observed,
};
use super::rule::{default_rules, Rule};
use super::travel::{last_place, ImpossibleTravel, LastPlace, IMPOSSIBLE_TRAVEL};
use super::window::{Firing, Window};
use crate::event::{
    Alert, AuditEvent, EventKind, Geo, OAuthDetails, Outcome, Place, ServiceInfo, Source,
    Timestamp, TokenDetails, TokenRef, Travel,
};
use crate::process::Processor;

/// A map capped at a number of entries, the least recently used forgotten first (CLOCK-Pro,
/// `quick_cache`), hashed with `foldhash`: its keys are hashes already.
type Cache<K, V> =
    QuickCache<K, V, UnitWeighter, foldhash::fast::RandomState, DefaultLifecycle<K, V>>;

fn capped<K: Eq + std::hash::Hash, V>(entries: usize) -> Cache<K, V> {
    QuickCache::with(
        entries,
        entries as u64,
        UnitWeighter,
        foldhash::fast::RandomState::default(),
        DefaultLifecycle::default(),
    )
}

/// Keys (a rule and a group) kept by default, for all rules together.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Runs detection rules on every event and raises a `SecurityAlert` event when one fires.
///
/// It is a [`Processor`]: add it to an [`Auditor`](crate::writer::Auditor) and the alerts
/// follow the events that caused them to every writer (and into the chain). Offline, feed it
/// events read back as JSON with [`Detector::check_json`] (what `oauth-audit detect` does):
/// windows use the events' own times, so both runs raise the same alerts.
///
/// Memory is capped: at most [`max_keys`](Detector::max_keys) groups are remembered over all
/// rules, and as many revoked tokens, rotated refresh tokens and users' last places (the
/// least recently used are forgotten first, counted in [`DetectorStats::evicted`] and the
/// `oauth_audit_detect_keys_evicted_total` metric), and
/// each group keeps a bounded number of events, so an attacker who rotates addresses or
/// usernames cannot grow it.
///
/// ```
/// use oauth_audit::detect::Detector;
/// use oauth_audit::event::{AuditEvent, EventKind, Outcome, Source, Timestamp};
/// use oauth_audit::writer::{Auditor, MemoryWriter};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let memory = MemoryWriter::new();
/// let auditor = Auditor::builder()
///     .processor(Detector::default())
///     .writer(memory.clone())
///     .build()?;
/// for _ in 0..10 {
///     let mut failed = AuditEvent::new(auditor.service().clone(), Timestamp::now(),
///         EventKind::LoginFailed, Outcome::Failure);
///     failed.actor.subject = Some("alice".into());
///     let mut source = Source::default();
///     source.ip = Some([203, 0, 113, 9].into());
///     failed.source = Some(source);
///     auditor.emit(failed);
/// }
/// auditor.shutdown().await;
/// let alerts: Vec<_> = memory.json().into_iter().filter(|e| e["kind"] == "SecurityAlert").collect();
/// assert_eq!(alerts.len(), 1);
/// assert_eq!(alerts[0]["alert"]["rule"], "brute_force");
/// assert_eq!(alerts[0]["alert"]["key"], "actor.subject=alice source.ip=203.0.113.9");
/// # Ok(()) }
/// ```
pub struct Detector {
    rules: Vec<Rule>,
    /// For each rule, for each of its selects, the kinds it takes as a bit set over
    /// `EventKind::ALL` (all bits when it names none): one test per select and event.
    kind_masks: Vec<Vec<u32>>,
    /// By rule index and a hash of the group's values: no text is made per event. The
    /// hash is keyed per detector, so nobody can choose values that collide.
    windows: Cache<(usize, u64), Window>,
    /// Tokens this trail saw revoked (or introspected as inactive), by hash, and when.
    revoked: Cache<u64, i64>,
    /// Refresh tokens this trail saw rotated (a refresh grant answered with another
    /// refresh token), by hash.
    rotated: Cache<u64, Rotation>,
    /// Each user's last sign-in with a place, by hash of `actor.subject`
    /// (`impossible_travel`).
    places: Cache<u64, LastPlace>,
    /// `impossible_travel`'s thresholds; `None` when it is off.
    travel: Option<ImpossibleTravel>,
    hasher: RandomState,
    stats: DetectorStats,
    /// For alerts raised on events read back as JSON.
    service: Arc<ServiceInfo>,
    revocation_rule: bool,
    refresh_rule: bool,
    /// `refresh_token_reuse`'s grace for a client retrying a refresh, in microseconds.
    refresh_grace: i64,
    /// The clock's time when last read, in Unix microseconds (see [`Detector::as_of_now`]).
    clock: i64,
}

/// A refresh token rotated away: when, by which event, from where.
#[derive(Clone, Copy)]
struct Rotation {
    micros: i64,
    id: Option<uuid::Uuid>,
    /// A hash of the rotating request's address and user agent (`None` without address).
    origin: Option<u64>,
}

/// What a detector did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DetectorStats {
    /// Events looked at.
    pub events: u64,
    /// Alerts raised.
    pub alerts: u64,
    /// Groups forgotten to stay within the cap, and revoked tokens, rotated refresh tokens
    /// and users' last places forgotten to stay within theirs.
    pub evicted: u64,
    /// Groups remembered now, over all rules.
    pub keys: u64,
    /// Tokens remembered now as revoked or as rotated refresh tokens (for
    /// `revoked_token_reuse` and `refresh_token_reuse`).
    pub tokens: u64,
    /// Users whose last sign-in place is remembered now (for `impossible_travel`).
    pub places: u64,
}

impl Default for Detector {
    /// The default rules ([`default_rules`]) and key cap.
    fn default() -> Self {
        Detector::new(default_rules())
    }
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field(
                "rules",
                &self.rules.iter().map(|r| r.id).collect::<Vec<_>>(),
            )
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The rule that needs this trail's revocations rather than a count.
pub const REVOKED_TOKEN_REUSE: &str = "revoked_token_reuse";

/// The rule that needs this trail's refresh token rotations rather than a count.
pub const REFRESH_TOKEN_REUSE: &str = "refresh_token_reuse";

/// How soon after a rotation a refresh token presented again from the same address and
/// user agent is taken for the client retrying a refresh whose answer it lost, not for a
/// stolen copy (see [`Detector::refresh_reuse_grace`]).
pub const DEFAULT_REFRESH_REUSE_GRACE: Duration = Duration::from_secs(2);

impl Detector {
    /// A detector with these rules (and, always, `revoked_token_reuse` and
    /// `refresh_token_reuse`, unless
    /// [`without_revocation_rule`](Detector::without_revocation_rule) or
    /// [`without_refresh_reuse_rule`](Detector::without_refresh_reuse_rule)).
    pub fn new(rules: Vec<Rule>) -> Detector {
        crate::metric::describe(&crate::metric::DETECT_KEYS_EVICTED);
        let kind_masks = rules
            .iter()
            .map(|rule| rule.select.iter().map(|s| kind_mask(&s.kinds)).collect())
            .collect();
        Detector {
            kind_masks,
            rules,
            windows: capped(DEFAULT_MAX_KEYS),
            revoked: capped(DEFAULT_MAX_KEYS),
            rotated: capped(DEFAULT_MAX_KEYS),
            places: capped(DEFAULT_MAX_KEYS),
            travel: Some(ImpossibleTravel::default()),
            stats: DetectorStats::default(),
            service: Arc::new(ServiceInfo::default()),
            revocation_rule: true,
            refresh_rule: true,
            refresh_grace: micros_of(DEFAULT_REFRESH_REUSE_GRACE),
            clock: i64::MIN,
            hasher: RandomState::default(),
        }
        .max_keys(DEFAULT_MAX_KEYS)
    }

    /// Caps the groups remembered over all rules (default [`DEFAULT_MAX_KEYS`]), the
    /// revoked tokens, the rotated refresh tokens and the users' last places remembered,
    /// each at `keys`.
    pub fn max_keys(mut self, keys: usize) -> Detector {
        let keys = keys.max(1);
        self.windows = capped(keys);
        self.revoked = capped(keys);
        self.rotated = capped(keys);
        self.places = capped(keys);
        self
    }

    /// `impossible_travel` with these thresholds (on by default with
    /// [`ImpossibleTravel::default`]).
    pub fn impossible_travel(mut self, thresholds: ImpossibleTravel) -> Detector {
        self.travel = Some(thresholds);
        self
    }

    /// Turns `impossible_travel` off.
    pub fn without_impossible_travel(mut self) -> Detector {
        self.travel = None;
        self
    }

    /// `impossible_travel`'s thresholds, when it is on.
    pub fn impossible_travel_rule(&self) -> Option<&ImpossibleTravel> {
        self.travel.as_ref()
    }

    /// The service named in alerts raised on events read back as JSON (live, alerts carry
    /// the service of the event that raised them).
    pub fn service(mut self, service: ServiceInfo) -> Detector {
        self.service = Arc::new(service);
        self
    }

    /// Turns `revoked_token_reuse` off.
    pub fn without_revocation_rule(mut self) -> Detector {
        self.revocation_rule = false;
        self
    }

    /// Whether `revoked_token_reuse` is on.
    pub fn revocation_rule(&self) -> bool {
        self.revocation_rule
    }

    /// Turns `refresh_token_reuse` off.
    pub fn without_refresh_reuse_rule(mut self) -> Detector {
        self.refresh_rule = false;
        self
    }

    /// Whether `refresh_token_reuse` is on.
    pub fn refresh_reuse_rule(&self) -> bool {
        self.refresh_rule
    }

    /// How soon after a rotation a refresh token presented again from the same address and
    /// user agent as the rotating request is not taken for reuse (default
    /// [`DEFAULT_REFRESH_REUSE_GRACE`]): a client that lost the answer to its refresh
    /// retries with the token it still has. [`Duration::ZERO`] alerts on every reuse.
    pub fn refresh_reuse_grace(mut self, grace: Duration) -> Detector {
        self.refresh_grace = micros_of(grace);
        self
    }

    /// The rules, in order (`revoked_token_reuse` and `refresh_token_reuse` aside).
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What it did so far.
    pub fn stats(&self) -> DetectorStats {
        DetectorStats {
            keys: self.windows.len() as u64,
            tokens: (self.revoked.len() + self.rotated.len()) as u64,
            places: self.places.len() as u64,
            ..self.stats
        }
    }

    /// Looks at one event read back as JSON; returns the alerts it raises.
    pub fn check_json(&mut self, event: &Value) -> Vec<AuditEvent> {
        let service = self.service.clone();
        self.check(event, &service)
    }

    /// The time rules count an event at: its own, unless that is in the future. A rule's
    /// window ends at the newest event it counted, and events older than that window are
    /// let go as late (`Window::add`): an event stamped in the future (NATS and offline
    /// input carry their own `time`, as does a service with a wrong clock) would make every
    /// honest event after it late, so it counts as of now. The clock is read again only
    /// for an event more than a second past its last reading: live events, stamped as they
    /// happen, read it about once a second.
    fn as_of_now(&mut self, micros: i64) -> i64 {
        const SLACK: i64 = 1_000_000;
        if micros <= self.clock.saturating_add(SLACK) {
            return micros;
        }
        self.clock = crate::event::Timestamp::now().unix_micros();
        micros.min(self.clock.saturating_add(SLACK))
    }

    /// Looks at one event; returns the alerts it raises.
    pub fn check(&mut self, event: &impl Observed, service: &Arc<ServiceInfo>) -> Vec<AuditEvent> {
        let mut alerts = Vec::new();
        let kind = event.kind();
        if kind == EventKind::SecurityAlert.as_str() {
            // Alerts are not evidence of more attacks.
            return alerts;
        }
        self.stats.events += 1;
        let Some(micros) = event.time_micros() else {
            return alerts;
        };
        let id = event.id();
        let bit = kind_bit(&kind);
        let window_micros = self.as_of_now(micros);
        for index in 0..self.rules.len() {
            let rule = &self.rules[index];
            let masks = &self.kind_masks[index];
            let selected = rule
                .select
                .iter()
                .zip(masks)
                .any(|(select, mask)| mask & bit != 0 && select.matches(&kind, event));
            if !selected {
                continue;
            }
            let Some(group) = hash_group(&self.hasher, &rule.group_by, event) else {
                continue;
            };
            let value = match &rule.condition.distinct {
                Some(distinct) => match hash_group(&self.hasher, &[distinct.field], event) {
                    // 0 stands for "no value".
                    Some(value) => value.max(1),
                    None => continue,
                },
                None => 0,
            };
            let firing = add(
                &mut self.windows,
                &mut self.stats,
                (index, group),
                rule,
                (window_micros, value, id),
            );
            if let Some(firing) = firing {
                let key = group_key(&rule.group_by, event);
                alerts.push(alert(rule.id, rule, &key, firing, event, service));
            }
        }
        if self.revocation_rule {
            self.revocation(event, &kind, micros, id, service, &mut alerts);
        }
        if self.refresh_rule {
            self.refresh_reuse(event, &kind, micros, id, service, &mut alerts);
        }
        if let Some(thresholds) = self.travel {
            self.travel(thresholds, event, &kind, micros, service, &mut alerts);
        }
        self.stats.alerts += alerts.len() as u64;
        alerts
    }

    /// `revoked_token_reuse`: a token used on a protected route after this trail saw it
    /// revoked, or introspected as inactive; or one the layer itself recorded as `revoked`
    /// (its trail saw the token end in another spelling, an ECDSA signature's twin, or
    /// before this detector started).
    fn revocation(
        &mut self,
        event: &impl Observed,
        kind: &str,
        micros: i64,
        id: Option<uuid::Uuid>,
        service: &Arc<ServiceInfo>,
        alerts: &mut Vec<AuditEvent>,
    ) {
        let ended = kind == EventKind::TokenRevoked.as_str()
            || (kind == EventKind::TokenIntrospected.as_str()
                && event.token_active() == Some(false));
        let used = kind == EventKind::ResourceAccessed.as_str()
            || kind == EventKind::AccessDenied.as_str();
        let recorded_revoked =
            used && event.verdict().as_deref() == Some(crate::token::Verdict::Revoked.as_str());
        if !ended && (!used || (self.revoked.is_empty() && !recorded_revoked)) {
            return;
        }
        let Some(token) = hash_group(&self.hasher, &[Field::Token], event) else {
            return;
        };
        if ended {
            if self.revoked.get(&token).is_none() {
                remember(&mut self.revoked, &mut self.stats, token, micros);
            }
            return;
        }
        match self.revoked.get(&token) {
            Some(&revoked_at) if micros >= revoked_at => {}
            _ if recorded_revoked => {}
            _ => return,
        }
        let rule = revoked_rule();
        let firing = add(
            &mut self.windows,
            &mut self.stats,
            (usize::MAX, token),
            &rule,
            (micros, 0, id),
        );
        if let Some(firing) = firing {
            let key = group_key(&rule.group_by, event);
            alerts.push(alert(
                REVOKED_TOKEN_REUSE,
                &rule,
                &key,
                firing,
                event,
                service,
            ));
        }
    }
}

impl Detector {
    /// `refresh_token_reuse`: a refresh grant presenting a refresh token that an earlier
    /// refresh grant in this trail rotated away, whatever the answer (an authorization
    /// server that detects the reuse refuses it with `invalid_grant`: a stolen copy is in
    /// use all the same).
    fn refresh_reuse(
        &mut self,
        event: &impl Observed,
        kind: &str,
        micros: i64,
        id: Option<uuid::Uuid>,
        service: &Arc<ServiceInfo>,
        alerts: &mut Vec<AuditEvent>,
    ) {
        let issued = kind == EventKind::AccessTokenIssued.as_str();
        if !issued && kind != EventKind::TokenRequestFailed.as_str() {
            return;
        }
        let Some(presented) = hash_group(&self.hasher, &[Field::PresentedRefreshToken], event)
        else {
            return;
        };
        let Some(rotation) = self.rotated.get(&presented).copied() else {
            // Rotated: answered with a refresh token other than the one presented. An
            // authorization server that does not rotate answers with none, or the same.
            if issued {
                let new = event.field(Field::RefreshToken);
                if new.is_some() && new != event.field(Field::PresentedRefreshToken) {
                    let origin = self.origin(event);
                    let rotation = Rotation { micros, id, origin };
                    remember(&mut self.rotated, &mut self.stats, presented, rotation);
                }
            }
            return;
        };
        if micros < rotation.micros {
            return;
        }
        let retry = micros - rotation.micros < self.refresh_grace
            && rotation.origin.is_some()
            && self.origin(event) == rotation.origin;
        if retry {
            return;
        }
        let rule = refresh_rule();
        let firing = add(
            &mut self.windows,
            &mut self.stats,
            (usize::MAX - 1, presented),
            &rule,
            (micros, 0, id),
        );
        let Some(mut firing) = firing else {
            return;
        };
        // The rotation is evidence too: the reuse means nothing without it.
        if let Some(rotated_by) = rotation.id {
            firing.evidence.insert(0, rotated_by.to_string());
            firing.evidence.truncate(super::window::EVIDENCE);
        }
        firing.first_micros = firing.first_micros.min(rotation.micros);
        let mut key = group_key(&rule.group_by, event);
        if let Some(client) = event.field(Field::ClientId) {
            key.push_str(" actor.client_id=");
            key.push_str(&client);
        }
        let mut alert = alert(REFRESH_TOKEN_REUSE, &rule, &key, firing, event, service);
        alert.oauth = event
            .field(Field::PresentedRefreshToken)
            .and_then(|f| f.parse().ok())
            .map(|fingerprint| {
                Box::new(OAuthDetails {
                    presented_refresh_token: Some(TokenRef::new(fingerprint)),
                    ..OAuthDetails::default()
                })
            });
        alerts.push(alert);
    }

    /// A hash of an event's address and user agent: where a request came from, as far as
    /// a retry would be told from another client. `None` without an address.
    fn origin(&self, event: &impl Observed) -> Option<u64> {
        let mut state = self.hasher.build_hasher();
        if !event.hash_field(Field::SourceIp, &mut state) {
            return None;
        }
        if !event.hash_field(Field::UserAgent, &mut state) {
            state.write_u8(0);
        }
        Some(state.finish())
    }
}

impl Detector {
    /// `impossible_travel`: this sign-in and the user's last one are farther apart than
    /// anyone could travel in the time between.
    fn travel(
        &mut self,
        thresholds: ImpossibleTravel,
        event: &impl Observed,
        kind: &str,
        micros: i64,
        service: &Arc<ServiceInfo>,
        alerts: &mut Vec<AuditEvent>,
    ) {
        if !ImpossibleTravel::counts(kind, event) {
            return;
        }
        let Some(location) = event.location() else {
            return;
        };
        let Some(user) = hash_group(&self.hasher, &[Field::Subject], event) else {
            return;
        };
        let here = last_place(event, micros, location);
        let before = self.places.get(&user).cloned();
        // The latest sign-in is the one the next is compared with.
        if before.as_ref().is_none_or(|b| b.micros <= micros) {
            remember(&mut self.places, &mut self.stats, user, here.clone());
        }
        let Some(before) = before else {
            return;
        };
        let Some(trip) = thresholds.judge(&before, micros, location) else {
            return;
        };
        let rule = travel_rule(&thresholds);
        let Some(mut firing) = add(
            &mut self.windows,
            &mut self.stats,
            (usize::MAX - 2, user),
            &rule,
            (micros, 0, here.id),
        ) else {
            return;
        };
        let (from, to) = if before.micros <= micros {
            (&before, &here)
        } else {
            (&here, &before)
        };
        // The evidence is the two sign-ins, in time order.
        firing.evidence = [from.id, to.id]
            .into_iter()
            .flatten()
            .map(|id| id.to_string())
            .collect();
        firing.first_micros = firing.first_micros.min(before.micros);
        firing.last_micros = firing.last_micros.max(before.micros);
        let key = group_key(&rule.group_by, event);
        let mut raised = alert(IMPOSSIBLE_TRAVEL, &rule, &key, firing, event, service);
        let place = |p: &LastPlace| Place::new(p.city.clone(), p.country.clone(), p.ip.clone());
        if let Some(alert) = raised.alert.as_mut() {
            alert.travel = Some(Travel {
                distance_km: trip.distance_km.round() as u64,
                from: place(from),
                seconds: trip.seconds,
                speed_kmh: if trip.speed_kmh.is_finite() {
                    trip.speed_kmh.round() as u64
                } else {
                    u64::MAX
                },
                to: place(to),
            });
        }
        if let Some(source) = raised.source.as_mut() {
            source.geo = Some(Box::new(Geo {
                city: here.city.clone(),
                country: here.country.clone(),
                ..Geo::at(here.lat, here.lon)
            }));
        }
        alerts.push(raised);
    }
}

/// `impossible_travel` as the windows see it: one event fires it, one alert per user per
/// `within`.
fn travel_rule(thresholds: &ImpossibleTravel) -> Rule {
    use super::rule::Condition;
    Rule {
        id: IMPOSSIBLE_TRAVEL,
        title: "One user signed in from places too far apart for the time between",
        severity: crate::event::Severity::Critical,
        select: Vec::new(),
        group_by: vec![Field::Subject],
        timespan: thresholds.within,
        condition: Condition::count(1),
        cooldown: thresholds.within,
    }
}

fn micros_of(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// Adds an event (its time, distinct value and id) to the window of `entry` (a rule's index
/// and a group's hash), made when new: the least recently used group is forgotten when the
/// cap is reached. Returns the alert to raise, if any.
fn add(
    windows: &mut Cache<(usize, u64), Window>,
    stats: &mut DetectorStats,
    entry: (usize, u64),
    rule: &Rule,
    (micros, value, id): (i64, u64, Option<uuid::Uuid>),
) -> Option<Firing> {
    if let Some(mut window) = windows.get_mut(&entry) {
        return window.add(rule, micros, value, id);
    }
    let mut window = Window::new();
    let firing = window.add(rule, micros, value, id);
    remember(windows, stats, entry, window);
    firing
}

/// Inserts `value` under `key`, counting in `stats` and the metric what is forgotten to
/// make room (the least recently used entry), whichever map it is: a flood that pushes a
/// revoked token, a rotated refresh token or a user's last place out of memory, so that its
/// reuse or a trip from it raises nothing, is seen as one that pushes out a group is.
fn remember<K: Eq + std::hash::Hash, V>(
    cache: &mut Cache<K, V>,
    stats: &mut DetectorStats,
    key: K,
    value: V,
) {
    let before = cache.len() + usize::from(!cache.contains_key(&key));
    cache.insert(key, value);
    let evicted = before.saturating_sub(cache.len()) as u64;
    if evicted > 0 {
        stats.evicted += evicted;
        metrics::counter!(KEYS_EVICTED).increment(evicted);
    }
}

/// The metric counting groups, revoked tokens, rotated refresh tokens and users' last
/// places forgotten to stay within the cap (`oauth_audit_detect_keys_evicted_total`).
pub const KEYS_EVICTED: &str = crate::metric::DETECT_KEYS_EVICTED.name;

fn refresh_rule() -> Rule {
    reuse_rule(
        REFRESH_TOKEN_REUSE,
        "A refresh token presented again after it was rotated",
        Field::PresentedRefreshToken,
    )
}

fn revoked_rule() -> Rule {
    reuse_rule(
        REVOKED_TOKEN_REUSE,
        "A token used after it was revoked",
        Field::Token,
    )
}

/// A rule that fires on one event, for a token this trail saw retired before.
fn reuse_rule(id: &'static str, title: &'static str, token: Field) -> Rule {
    use super::rule::Condition;
    Rule {
        id,
        title,
        severity: crate::event::Severity::Critical,
        select: Vec::new(),
        group_by: vec![token],
        timespan: Duration::from_secs(15 * 60),
        condition: Condition::count(1),
        cooldown: Duration::from_secs(15 * 60),
    }
}

/// The bit of an event kind in a kind mask (bit 31 for a kind this release does not know).
fn kind_bit(kind: &str) -> u32 {
    EventKind::ALL
        .iter()
        .position(|k| k.as_str() == kind)
        .map_or(1 << 31, |i| 1 << i)
}

fn kind_mask(kinds: &[&str]) -> u32 {
    if kinds.is_empty() {
        return u32::MAX;
    }
    kinds.iter().fold(0, |mask, kind| mask | kind_bit(kind))
}

/// A hash of the values of `fields`, or `None` when one is missing. `source.ip` counts by
/// its network ([`address_group`]: an IPv6 address's /64), `actor.subject` folded
/// ([`subject_group`]), and is never missing from a failed login ([`failed_login`]): one
/// whose user was not recorded counts as an empty user name's; so does a client id sent
/// but not recorded, as an empty one.
fn hash_group(hasher: &RandomState, fields: &[Field], event: &impl Observed) -> Option<u64> {
    let mut state = hasher.build_hasher();
    for field in fields {
        let address = match field {
            Field::SourceIp => event.source_ip().map(address_group),
            _ => None,
        };
        match address {
            Some(IpAddr::V4(ip)) => state.write(&ip.octets()),
            Some(IpAddr::V6(net)) => state.write(&net.octets()),
            None if *field == Field::Subject => match event.field(Field::Subject) {
                Some(subject) => {
                    state.write(subject_group(&subject).as_bytes());
                    state.write_u8(0xff);
                }
                // A failed login whose user was not recorded (sent twice, in a body not
                // read) is a guess all the same: such failures count as an empty user
                // name's (`actor.subject=` in the key), or sending each guess so would
                // hide it from every rule on users.
                None if failed_login(event) => state.write_u8(0xff),
                None => return None,
            },
            // Text that is no address (read back) is grouped as it is.
            None if event.hash_field(*field, &mut state) => {}
            // A client id sent but not recorded (sent twice, in a body not read): such
            // requests count as an empty client id's, or sending each guess at a client's
            // secret so would hide it.
            None if *field == Field::ClientId
                && (event.repeated("client_id") || event.body_unread()) =>
            {
                state.write_u8(0xff)
            }
            None => return None,
        }
    }
    Some(state.finish())
}

/// Whether `event` is a failed login or password grant: a guess at a user's password. A
/// failed token request whose `grant_type` is not recorded ([`grant_type_unknown`]) may
/// be one.
fn failed_login(event: &impl Observed) -> bool {
    let kind = event.kind();
    kind == EventKind::LoginFailed.as_str()
        || (kind == EventKind::TokenRequestFailed.as_str()
            && (event.grant_type().as_deref() == Some("password") || grant_type_unknown(event)))
}

/// `field=value` for every field the rule groups by: the alert's key (`source.ip` as the
/// network grouped by: `2001:db8:1:2::/64`; `actor.subject` folded, in lower case).
fn group_key(fields: &[Field], event: &impl Observed) -> String {
    let mut key = String::new();
    for field in fields {
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(field.name());
        key.push('=');
        let value = event.field(*field).unwrap_or_default();
        match event.source_ip().filter(|_| *field == Field::SourceIp) {
            Some(ip) => key.push_str(&address_group_text(ip)),
            None if *field == Field::Subject => key.push_str(&subject_group(&value)),
            None => key.push_str(&value),
        }
    }
    key
}

/// The `SecurityAlert` event: the rule, the key, the window, the evidence, and the offender
/// as the triggering event names it.
fn alert(
    rule_id: &str,
    rule: &Rule,
    key: &str,
    firing: Firing,
    event: &impl Observed,
    service: &Arc<ServiceInfo>,
) -> AuditEvent {
    let time = Timestamp::from_unix_micros(firing.last_micros).unwrap_or_else(Timestamp::now);
    let mut alert = AuditEvent::new(
        service.clone(),
        time,
        EventKind::SecurityAlert,
        Outcome::Unknown,
    );
    alert.severity = rule.severity;
    alert.actor.subject = event.field(Field::Subject).map(|s| s.into_owned());
    alert.actor.client_id = event.field(Field::ClientId).map(|s| s.into_owned());
    let ip = event.field(Field::SourceIp).and_then(|ip| ip.parse().ok());
    let user_agent = event.field(Field::UserAgent).map(|s| s.into_owned());
    if ip.is_some() || user_agent.is_some() {
        alert.source = Some(Source {
            ip,
            user_agent,
            ..Source::default()
        });
    }
    alert.token = event
        .field(Field::Token)
        .and_then(|t| t.parse().ok())
        .map(|fingerprint| TokenDetails::from_fingerprint(fingerprint).into());
    alert.alert = Some(Box::new(Alert {
        rule: rule_id.to_owned(),
        title: Some(rule.title.to_owned()),
        key: key.to_owned(),
        count: firing.count,
        window_s: rule.timespan.as_secs(),
        first_seen: Timestamp::from_unix_micros(firing.first_micros),
        last_seen: Timestamp::from_unix_micros(firing.last_micros),
        evidence: firing.evidence,
        suppressed: firing.suppressed,
        travel: None,
    }));
    alert
}

impl Processor for Detector {
    fn name(&self) -> &str {
        "detect"
    }

    fn process(&mut self, event: &mut AuditEvent, emitted: &mut Vec<AuditEvent>) {
        let service = event.service.clone();
        emitted.extend(self.check(&*event, &service));
    }
}
