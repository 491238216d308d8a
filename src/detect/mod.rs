//! Detection: rules evaluated on every event as it passes, raising `SecurityAlert` events
//! (`docs/detection.md`).
//!
//! Each rule has a stable id (`brute_force`, `credential_stuffing`...) and the shape of a
//! Sigma correlation rule: which events count ([`Select`]), what they are grouped by
//! (`group_by`, the alert's key), over how long (`timespan`, by the events' own times) and
//! when a group is an attack ([`Condition`]: a count, a distinct count, a spread in time).
//! An alert names the rule, the key, the count and window, the first and last times, the ids
//! of the events counted (at most 20) and the offender as the last event names it; one key
//! raises one alert per cooldown, and the next says how many events came in between.
//!
//! One file per role: `rule.rs` (rules and the defaults), `field.rs` (the fields rules read,
//! from live events or JSON read back), `window.rs` (one group's sliding window), `travel.rs` (`impossible_travel`) and
//! `detector.rs` (the [`Detector`] processor, its state and cap).

mod detector;
mod field;
mod rule;
mod travel;
mod window;

pub use detector::{
    Detector, DetectorStats, DEFAULT_MAX_KEYS, DEFAULT_REFRESH_REUSE_GRACE, KEYS_EVICTED,
    REFRESH_TOKEN_REUSE, REVOKED_TOKEN_REUSE,
};
pub use field::{Field, Observed};
pub use rule::{default_rules, Condition, Distinct, Rule, Select};
pub use travel::{distance_km, ImpossibleTravel, IMPOSSIBLE_TRAVEL};

#[cfg(test)]
mod tests;
