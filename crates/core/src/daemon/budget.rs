//! A role's budget of daemon process starts, kept by the supervisor of one
//! database: at most `per_window` starts of the role's daemons within any
//! [`MIN_START_INTERVAL`]. With `per_window` = `pg_jobs.max_daemons_per_role`
//! it is what the role's daemons could use anyway, each starting at most
//! once per interval; it stops a role from getting more by dropping
//! daemons and declaring new ones (each new one would start at once).
//! Times are TimestampTz microseconds, as in the lifecycle.

use super::MIN_START_INTERVAL;
use std::collections::{HashMap, VecDeque};

const WINDOW_US: i64 = MIN_START_INTERVAL as i64 * 1000;

/// Recent starts per owner role (by OID).
#[derive(Debug, Default, Clone)]
pub struct StartBudget {
    recent: HashMap<u32, VecDeque<i64>>,
}

impl StartBudget {
    /// Whether a daemon of `owner` may start at `now`, with `per_window`
    /// starts allowed per window (0: no budget). `Err(at)`: not before `at`.
    pub fn check(&mut self, owner: u32, now: i64, per_window: usize) -> Result<(), i64> {
        if per_window == 0 {
            return Ok(());
        }
        let Some(q) = self.recent.get_mut(&owner) else {
            return Ok(());
        };
        let cutoff = now.saturating_sub(WINDOW_US);
        while q.front().is_some_and(|&t| t <= cutoff) {
            q.pop_front();
        }
        if q.len() < per_window {
            Ok(())
        } else {
            // The start that must leave the window before one more fits.
            Err(q[q.len() - per_window].saturating_add(WINDOW_US))
        }
    }

    /// A daemon of `owner` started at `now`.
    pub fn record(&mut self, owner: u32, now: i64) {
        self.recent.entry(owner).or_default().push_back(now);
    }

    /// Forget starts that left the window (the supervisor lives for months:
    /// what it keeps stays as small as the last second's starts).
    pub fn prune(&mut self, now: i64) {
        let cutoff = now.saturating_sub(WINDOW_US);
        self.recent.retain(|_, q| {
            while q.front().is_some_and(|&t| t <= cutoff) {
                q.pop_front();
            }
            !q.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_role_starts_at_most_its_budget_per_second() {
        let mut b = StartBudget::default();
        for t in [0, 10, 20] {
            assert_eq!(b.check(7, t, 3), Ok(()));
            b.record(7, t);
        }
        assert_eq!(
            b.check(7, 30, 3),
            Err(1_000_000),
            "the first start leaves the window at 1 s"
        );
        assert_eq!(b.check(8, 30, 3), Ok(()), "another role has its own budget");
        assert_eq!(b.check(7, 30, 0), Ok(()), "0: no budget");
        assert_eq!(b.check(7, 1_000_000, 3), Ok(()));
        b.prune(5_000_000);
        assert!(b.recent.is_empty());
    }

    proptest! {
        /// Starts taken only when `check` allows them never exceed the
        /// budget in any window, and a refusal names a time when one fits.
        #[test]
        fn no_window_holds_more_than_the_budget(
            per_window in 1usize..6,
            gaps in proptest::collection::vec(0i64..400_000, 1..200),
        ) {
            let mut b = StartBudget::default();
            let mut now = 0i64;
            let mut taken: Vec<i64> = Vec::new();
            for gap in gaps {
                now += gap;
                match b.check(1, now, per_window) {
                    Ok(()) => {
                        b.record(1, now);
                        taken.push(now);
                    }
                    Err(at) => {
                        prop_assert!(at > now);
                        prop_assert_eq!(b.clone().check(1, at, per_window), Ok(()));
                    }
                }
                let in_window = taken.iter().filter(|&&t| t > now - WINDOW_US).count();
                prop_assert!(in_window <= per_window);
            }
        }
    }
}
