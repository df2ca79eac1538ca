//! Restart backoff for supervised workers (the per-database schedulers).
//!
//! A worker that dies after running healthily for a while, or dies quickly
//! for the first time, is restarted at once: the launcher must bring a
//! terminated scheduler back fast. A worker that keeps dying soon after it
//! starts is restarted after a delay that doubles each time up to a
//! ceiling, so a broken database cannot make the launcher spin hot forking
//! workers.

/// Milliseconds; the pure crate never reads a clock, callers pass times in.
pub type Millis = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay after the second quick death in a row (the first costs none).
    pub first_delay: Millis,
    /// Ceiling for the doubling delay.
    pub max_delay: Millis,
    /// A worker that stayed up this long is healthy: its death resets the backoff.
    pub healthy_after: Millis,
}

impl RestartPolicy {
    pub const SCHEDULER: RestartPolicy = RestartPolicy {
        first_delay: 1_000,
        max_delay: 60_000,
        healthy_after: 10_000,
    };
}

/// Backoff state of one supervised worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backoff {
    /// Deaths in a row that came before `healthy_after`.
    pub quick_deaths: u32,
}

impl Backoff {
    /// Record a death of a worker that started at `started` and was found
    /// gone at `died`; returns how long to wait before restarting it.
    pub fn on_death(&mut self, policy: &RestartPolicy, started: Millis, died: Millis) -> Millis {
        if died.saturating_sub(started) >= policy.healthy_after {
            self.quick_deaths = 0;
            return 0;
        }
        self.quick_deaths = self.quick_deaths.saturating_add(1);
        if self.quick_deaths == 1 {
            return 0;
        }
        let doublings = (self.quick_deaths - 2).min(32);
        policy
            .first_delay
            .saturating_mul(1u64 << doublings)
            .min(policy.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: RestartPolicy = RestartPolicy::SCHEDULER;

    #[test]
    fn healthy_worker_restarts_at_once() {
        let mut b = Backoff::default();
        assert_eq!(b.on_death(&P, 0, 10_000), 0);
        assert_eq!(b.on_death(&P, 50_000, 3_600_000), 0);
    }

    #[test]
    fn quick_deaths_double_up_to_the_ceiling_then_reset() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..10).map(|i| b.on_death(&P, i * 100, i * 100 + 50)).collect();
        assert_eq!(
            delays,
            [0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(b.on_death(&P, 0, 20_000), 0, "a healthy run resets the backoff");
        assert_eq!(
            b.on_death(&P, 0, 1),
            0,
            "the first quick death after a reset is free"
        );
        assert_eq!(b.on_death(&P, 0, 1), 1_000);
    }

    proptest! {
        #[test]
        fn delay_is_bounded_and_never_shrinks_while_dying_quickly(
            lifetimes in proptest::collection::vec(0u64..9_999, 1..80)
        ) {
            let mut b = Backoff::default();
            let mut last = 0;
            for (i, life) in lifetimes.into_iter().enumerate() {
                let d = b.on_death(&P, 1_000, 1_000 + life);
                prop_assert!(d >= last && d <= P.max_delay);
                prop_assert_eq!(d == 0, i == 0, "only the first quick death is free");
                last = d;
            }
        }
    }
}

/// How long a scheduler waits before retrying after `failures` failed
/// passes in a row (a pass that raised an ERROR, rolled back): 100 ms,
/// doubling, at most 5 s. Short, because runs are waiting; bounded, so an
/// error that persists does not turn the log into a firehose.
pub fn pass_retry_delay(failures: u32) -> std::time::Duration {
    let exp = failures.saturating_sub(1).min(6);
    std::time::Duration::from_millis((100u64 << exp).min(5_000))
}

#[cfg(test)]
mod pass_retry_tests {
    use super::pass_retry_delay;
    use std::time::Duration;

    #[test]
    fn doubles_from_100_ms_to_a_5_s_ceiling() {
        let ms: Vec<u128> = (1..=9).map(|n| pass_retry_delay(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(pass_retry_delay(0), Duration::from_millis(100));
        assert_eq!(pass_retry_delay(u32::MAX), Duration::from_millis(5000));
    }
}
