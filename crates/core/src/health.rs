//! Health with thresholds, as a pure function: health flips only after N consecutive results.

/// What racer knows of one replica's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthState {
    /// Whether it takes traffic.
    pub healthy: bool,
    /// Consecutive passing checks.
    pub successes: u32,
    /// Consecutive failing checks.
    pub failures: u32,
}

/// The state after one check. A new replica starts unhealthy and needs `success_threshold`
/// passes; a healthy one needs `failure_threshold` consecutive failures to leave.
pub fn observe(
    state: HealthState,
    passed: bool,
    success_threshold: u32,
    failure_threshold: u32,
) -> HealthState {
    let mut s = state;
    if passed {
        s.successes = s.successes.saturating_add(1);
        s.failures = 0;
        if !s.healthy && s.successes >= success_threshold.max(1) {
            s.healthy = true;
        }
    } else {
        s.failures = s.failures.saturating_add(1);
        s.successes = 0;
        if s.healthy && s.failures >= failure_threshold.max(1) {
            s.healthy = false;
        }
    }
    s
}

/// How often a replica that is not taking traffic is checked, once it is past [`YOUNG`].
pub const STARTING_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// How often a replica started within [`YOUNG`] is checked until it first passes: it usually
/// answers within milliseconds of starting, and joins the routes right then.
pub const YOUNG_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(2);

/// How long a replica counts as just started.
pub const YOUNG: std::time::Duration = std::time::Duration::from_secs(3);

/// How long after its last check a replica is checked again: at the configured interval while
/// it takes traffic (so a failing one leaves after `failureThreshold` intervals); every few
/// milliseconds while it does not, so it joins as soon as it passes; fastest right after it
/// started (`age`), when it is most likely to start answering.
pub fn check_interval(
    healthy: bool,
    age: std::time::Duration,
    interval_seconds: u32,
) -> std::time::Duration {
    if healthy {
        std::time::Duration::from_secs(u64::from(interval_seconds.max(1)))
    } else if age <= YOUNG {
        YOUNG_CHECK_INTERVAL
    } else {
        STARTING_CHECK_INTERVAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(results: &[bool], succ: u32, fail: u32) -> Vec<bool> {
        let mut s = HealthState::default();
        results
            .iter()
            .map(|r| {
                s = observe(s, *r, succ, fail);
                s.healthy
            })
            .collect()
    }

    #[test]
    fn starts_unhealthy_and_needs_the_success_threshold() {
        assert_eq!(run(&[true], 1, 3), [true]);
        assert_eq!(run(&[true, true, true], 3, 3), [false, false, true]);
        assert_eq!(
            run(&[true, false, true, true], 2, 3),
            [false, false, false, true]
        );
    }

    #[test]
    fn leaves_only_after_consecutive_failures() {
        assert_eq!(
            run(&[true, false, false, true, false, false, false], 1, 3),
            [true, true, true, true, true, true, false]
        );
    }

    #[test]
    fn flapping_input_below_thresholds_never_flips() {
        let mut s = observe(HealthState::default(), true, 1, 2);
        for i in 0..1000 {
            s = observe(s, i % 2 == 0, 1, 2);
            assert!(s.healthy);
        }
    }

    #[test]
    fn interval_is_the_configured_one_only_in_rotation() {
        use std::time::Duration;
        let s = Duration::from_secs;
        assert_eq!(check_interval(true, s(0), 5), s(5));
        assert_eq!(
            check_interval(true, s(100), 0),
            s(1),
            "0 means the 1 s floor"
        );
        assert_eq!(check_interval(false, s(1), 5), YOUNG_CHECK_INTERVAL);
        assert_eq!(check_interval(false, YOUNG, 5), YOUNG_CHECK_INTERVAL);
        assert_eq!(check_interval(false, s(60), 5), STARTING_CHECK_INTERVAL);
        assert!(YOUNG_CHECK_INTERVAL < STARTING_CHECK_INTERVAL);
    }
}
