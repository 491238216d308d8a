//! `impossible_travel`: one user signing in from two places farther apart than a plane could
//! fly in the time between (Elastic's rule: at least 500 km, at least 800 km/h, within 90
//! minutes). It needs geo data on the events (`source.geo.lat`/`lon`, from
//! [`crate::geo`] or from the events read back).

use std::borrow::Cow;
use std::time::Duration;

use super::field::{Field, Observed};
use crate::event::EventKind;

/// The rule's id: `alert.rule`.
pub const IMPOSSIBLE_TRAVEL: &str = "impossible_travel";

/// The thresholds of `impossible_travel`: an alert when two sign-ins of one user are at
/// least `min_distance_km` apart, at a speed of at least `min_speed_kmh`, and at most
/// `within` apart in time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImpossibleTravel {
    /// Places closer than this never alert (default 500 km): city-level geolocation is off
    /// by tens of kilometres, and a neighbouring region is no attack.
    pub min_distance_km: f64,
    /// Faster than an airliner flies (default 800 km/h).
    pub min_speed_kmh: f64,
    /// Sign-ins farther apart in time are not compared (default 90 minutes).
    pub within: Duration,
}

impl Default for ImpossibleTravel {
    fn default() -> Self {
        ImpossibleTravel {
            min_distance_km: 500.0,
            min_speed_kmh: 800.0,
            within: Duration::from_secs(90 * 60),
        }
    }
}

/// A user's last sign-in with a place.
#[derive(Clone, Debug)]
pub(super) struct LastPlace {
    pub(super) micros: i64,
    pub(super) lat: f64,
    pub(super) lon: f64,
    pub(super) id: Option<uuid::Uuid>,
    pub(super) city: Option<String>,
    pub(super) country: Option<String>,
    pub(super) ip: Option<String>,
}

/// How far and how fast a user went between two sign-ins.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Trip {
    pub(super) distance_km: f64,
    pub(super) speed_kmh: f64,
    pub(super) seconds: u64,
}

impl ImpossibleTravel {
    /// Whether `event` is a sign-in made from the user's own device, where its address says
    /// where the user is: a login, an authorization granted in the browser, or a token
    /// issued to a public client (a native or browser app calls the token endpoint from the
    /// user's device). Refresh grants are not: apps refresh in the background, from wherever
    /// the device's network exits. Tokens issued to confidential clients are not either:
    /// those requests come from the client's servers, not from where the user is. Nor is a
    /// login of `outcome: unknown` (a login form that answers a wrong password with its
    /// page again, which the default login rule cannot judge): anyone can send one under
    /// any user name, from anywhere, and it says nothing of where the user is.
    pub(super) fn counts(kind: &str, event: &impl Observed) -> bool {
        if event.outcome().as_deref() == Some(crate::event::Outcome::Unknown.as_str()) {
            return false;
        }
        if kind == EventKind::LoginSucceeded.as_str()
            || kind == EventKind::AuthorizationGranted.as_str()
        {
            return true;
        }
        kind == EventKind::AccessTokenIssued.as_str()
            && event
                .grant_type()
                .is_some_and(|g| g != "refresh_token" && g != "client_credentials")
            // `none`: a public client, which has no secret to keep on a server.
            && event.client_auth().as_deref() == Some("none")
    }

    /// The trip from `before` to a sign-in at `micros` and `(lat, lon)`, if it is impossible.
    pub(super) fn judge(
        &self,
        before: &LastPlace,
        micros: i64,
        (lat, lon): (f64, f64),
    ) -> Option<Trip> {
        let elapsed = micros.abs_diff(before.micros);
        if u128::from(elapsed) > self.within.as_micros() {
            return None;
        }
        let distance_km = distance_km((before.lat, before.lon), (lat, lon));
        if distance_km < self.min_distance_km {
            return None;
        }
        let hours = elapsed as f64 / 3_600_000_000.0;
        let speed_kmh = if hours > 0.0 {
            distance_km / hours
        } else {
            f64::INFINITY
        };
        (speed_kmh >= self.min_speed_kmh).then_some(Trip {
            distance_km,
            speed_kmh,
            seconds: elapsed / 1_000_000,
        })
    }
}

/// The great-circle distance between two points given in degrees, in kilometres (haversine
/// on a sphere of the Earth's mean radius: within 0.5% of the ellipsoid, plenty for a 500 km
/// threshold).
pub fn distance_km((lat1, lon1): (f64, f64), (lat2, lon2): (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0088;
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = (lat2 - lat1).to_radians();
    let d_lambda = (lon2 - lon1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// The place an event's address was found at, as the rule keeps it.
pub(super) fn last_place(event: &impl Observed, micros: i64, (lat, lon): (f64, f64)) -> LastPlace {
    let text = |field| event.field(field).map(Cow::into_owned);
    LastPlace {
        micros,
        lat,
        lon,
        id: event.id(),
        city: text(Field::City),
        country: text(Field::Country),
        ip: text(Field::SourceIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_match_known_great_circles() {
        // Paris to New York: 5,837 km; London to Sydney: 16,990 km (great circle).
        let paris = (48.8566, 2.3522);
        let new_york = (40.7128, -74.0060);
        let london = (51.5074, -0.1278);
        let sydney = (-33.8688, 151.2093);
        assert!((distance_km(paris, new_york) - 5837.0).abs() < 10.0);
        assert!((distance_km(london, sydney) - 16990.0).abs() < 20.0);
        assert_eq!(distance_km(paris, paris), 0.0);
        // Antipodes: half the circumference, with no NaN from rounding.
        let half = distance_km((0.0, 0.0), (0.0, 180.0));
        assert!((half - std::f64::consts::PI * 6371.0088).abs() < 0.001);
    }

    fn at(micros: i64, (lat, lon): (f64, f64)) -> LastPlace {
        LastPlace {
            micros,
            lat,
            lon,
            id: None,
            city: None,
            country: None,
            ip: None,
        }
    }

    #[test]
    fn a_trip_is_impossible_only_far_fast_and_soon() {
        let rule = ImpossibleTravel::default();
        let minute = 60_000_000;
        let paris = (48.8566, 2.3522);
        let new_york = (40.7128, -74.0060);
        let lyon = (45.764, 4.8357);
        // Paris -> New York in 30 minutes: 11,700 km/h.
        let trip = rule.judge(&at(0, paris), 30 * minute, new_york).unwrap();
        assert!((trip.speed_kmh - 11_674.0).abs() < 30.0, "{trip:?}");
        assert_eq!(trip.seconds, 1800);
        // The same trip in 8 hours is a flight: no alert, nor beyond the 90 minutes.
        assert_eq!(rule.judge(&at(0, paris), 480 * minute, new_york), None);
        // Paris -> Lyon (392 km) in one minute: under the 500 km floor.
        assert_eq!(rule.judge(&at(0, paris), minute, lyon), None);
        // Both at once: infinitely fast.
        assert!(rule
            .judge(&at(0, paris), 0, new_york)
            .unwrap()
            .speed_kmh
            .is_infinite());
        // Out of order (the later sign-in read first) is the same trip.
        assert!(rule.judge(&at(30 * minute, new_york), 0, paris).is_some());
        // 600 km in 60 minutes is 600 km/h: under the speed floor.
        let far = (paris.0 - 600.0 / 111.2, paris.1);
        assert_eq!(rule.judge(&at(0, paris), 60 * minute, far), None);
        // ...and in 40 minutes it is 900 km/h.
        assert!(rule.judge(&at(0, paris), 40 * minute, far).is_some());
    }
}
