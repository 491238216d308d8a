use std::time::Duration;

/// Longer waits are surely a mistake (and would overflow a deadline).
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

/// How long to wait before retrying a backend that failed: exponential growth with full
/// jitter.
///
/// The ceiling for the `n`-th consecutive failure is `initial * 2^n`, capped at `max`; the
/// actual delay is drawn uniformly from `0..=ceiling`, so many writers that lost the same
/// backend at the same moment do not come back in lockstep.
///
/// ```
/// use std::time::Duration;
/// use oauth_audit::delivery::Backoff;
///
/// let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(30));
/// assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
/// assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
/// assert_eq!(backoff.ceiling(20), Duration::from_secs(30));
/// assert!(backoff.delay(3) <= Duration::from_millis(800));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
}

impl Default for Backoff {
    /// 100 ms, doubling up to 30 s.
    fn default() -> Self {
        Backoff::exponential(Duration::from_millis(100), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Starts at `initial` and doubles per consecutive failure up to `max`.
    ///
    /// Both must be positive and `initial <= max`; [`DeliveryBuilder::build`] says so
    /// otherwise.
    ///
    /// [`DeliveryBuilder::build`]: crate::delivery::DeliveryBuilder::build
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        Backoff { initial, max }
    }

    /// The first ceiling.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The largest ceiling.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The longest wait after `attempt` consecutive failures (0 for the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .map_or(self.max, |ceiling| ceiling.min(self.max))
    }

    /// A random wait in `0..=ceiling(attempt)`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(fastrand::u64(0..=nanos))
    }

    pub(crate) fn validate(&self) -> Result<(), crate::ConfigError> {
        if self.initial.is_zero() {
            return Err(crate::ConfigError::invalid(
                "backoff",
                "the initial delay must be positive (e.g. 100 ms)",
            ));
        }
        if self.max > MAX_BACKOFF {
            return Err(crate::ConfigError::invalid(
                "backoff",
                format!("the maximum delay {:?} exceeds one day", self.max),
            ));
        }
        if self.initial > self.max {
            return Err(crate::ConfigError::invalid(
                "backoff",
                format!(
                    "the initial delay {:?} exceeds the maximum {:?}",
                    self.initial, self.max
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff::exponential(Duration::from_millis(100), Duration::from_secs(30))
    }

    #[test]
    fn ceilings_double_up_to_the_maximum() {
        let backoff = backoff();
        let ceilings: Vec<_> = (0..12).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(
            ceilings,
            [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]
        );
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
        let huge = Backoff::exponential(Duration::from_secs(u64::MAX / 4), Duration::MAX);
        assert_eq!(huge.ceiling(40), Duration::MAX);
    }

    #[test]
    fn delays_stay_within_the_ceiling_and_are_spread() {
        let backoff = backoff();
        for attempt in 0..15 {
            let ceiling = backoff.ceiling(attempt);
            let delays: Vec<_> = (0..200).map(|_| backoff.delay(attempt)).collect();
            assert!(delays.iter().all(|d| *d <= ceiling), "attempt {attempt}");
            // Full jitter: both halves of the range are used.
            assert!(delays.iter().any(|d| *d < ceiling / 2), "attempt {attempt}");
            assert!(delays.iter().any(|d| *d > ceiling / 2), "attempt {attempt}");
        }
    }

    #[test]
    fn nonsense_is_refused() {
        assert!(backoff().validate().is_ok());
        assert!(Backoff::exponential(Duration::ZERO, Duration::from_secs(1))
            .validate()
            .is_err());
        assert!(Backoff::exponential(Duration::from_secs(1), Duration::MAX)
            .validate()
            .is_err());
        assert!(
            Backoff::exponential(Duration::from_secs(2), Duration::from_secs(1))
                .validate()
                .is_err()
        );
    }
}
