//! Per-role bounds on what a role keeps queued: the amortized check of
//! `pg_jobs.max_queued_runs_per_role` that `jobs.submit` and `jobs.run_now`
//! make.
//!
//! Terms: a role's *queued runs* are its rows of `jobs.run` with status
//! `queued` in one database (submitted runs, retries waiting out their
//! backoff, due runs of its jobs), counted exactly by an index scan; the
//! *bound* is the setting (0: none).
//!
//! Counting exactly at every submit would cost an index scan of up to
//! `bound` entries per submit (at 100,000 queued runs, milliseconds for a
//! statement that otherwise takes ~30 µs). Instead each session keeps, per
//! role, an *estimate*: the exact count it made last, plus the runs it
//! queued for that role since. It counts exactly again
//!
//! * at its first submit for the role,
//! * when the estimate reaches the bound (so a refusal always rests on an
//!   exact count, never on the estimate), and
//! * after [`recount_interval`] own submits since the last count: a tenth
//!   of that count, at least [`RECOUNT_AT_LEAST_EVERY`].
//!
//! The estimate never goes down between counts (runs that start are not
//! seen), so it is high rather than low for what this session did: that
//! costs an earlier count, never a wrong refusal. What it does not see is
//! other sessions' submits for the same role since its last count. Hence
//! the tolerance: with one session submitting, the bound holds exactly;
//! with `k` sessions of a role submitting at the same time, each commits
//! at most one interval's worth of runs the others have not counted, so the
//! role's queued runs stay below `bound + (k − 1) · max(1000, bound / 10)`
//! (the property test below checks it). Runs of a transaction that has not
//! committed are seen only by their own session, as with any count that
//! takes no lock: sessions that each queue inside one long open
//! transaction can each reach the bound.
//!
//! Cost: a session that fills the queue from empty to `bound` counts
//! about 10 times up to 10,000 and then each time the queue has grown by a
//! tenth, so it reads about 11 index entries per submit (the test below
//! measures it).

/// Own submits between two exact counts, at the least.
pub const RECOUNT_AT_LEAST_EVERY: u64 = 1_000;

/// How many of its own submits a session admits on its estimate after an
/// exact count of `counted` queued runs before it counts again: a tenth of
/// the count, at least [`RECOUNT_AT_LEAST_EVERY`].
pub fn recount_interval(counted: u64) -> u64 {
    (counted / 10).max(RECOUNT_AT_LEAST_EVERY)
}

/// One session's estimate of one role's queued runs (see the module's doc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuedEstimate {
    /// An exact count was made (and the bound has been in force since).
    counted: bool,
    /// The last exact count plus this session's submits since.
    queued: u64,
    /// This session's submits since the last exact count.
    since_count: u64,
    /// [`recount_interval`] of the last exact count.
    interval: u64,
}

/// Why a submit was refused: the role's queued runs, counted exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBound {
    pub queued: u64,
}

impl QueuedEstimate {
    /// Whether the next submit must count exactly first.
    pub fn needs_count(&self, bound: u64) -> bool {
        !self.counted || self.queued >= bound || self.since_count >= self.interval
    }

    /// An exact count was made: the estimate starts from it.
    pub fn counted(&mut self, exact: u64) {
        *self = QueuedEstimate {
            counted: true,
            queued: exact,
            since_count: 0,
            interval: recount_interval(exact),
        };
    }

    /// One more run for the role, under `bound` (0: none): counts exactly
    /// with `count` when [`Self::needs_count`] says so, then admits the run
    /// (and counts it in the estimate) or refuses it. With no bound the
    /// estimate is dropped, so that a bound set later starts from an exact
    /// count.
    pub fn admit(&mut self, bound: u64, count: impl FnOnce() -> u64) -> Result<(), OverBound> {
        if bound == 0 {
            *self = QueuedEstimate::default();
            return Ok(());
        }
        if self.needs_count(bound) {
            self.counted(count());
        }
        if self.queued >= bound {
            return Err(OverBound { queued: self.queued });
        }
        self.queued += 1;
        self.since_count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_interval_is_a_tenth_of_the_count_at_least_a_thousand() {
        assert_eq!(recount_interval(0), 1_000);
        assert_eq!(recount_interval(9_999), 1_000);
        assert_eq!(recount_interval(50_000), 5_000);
        assert_eq!(recount_interval(100_000), 10_000);
    }

    #[test]
    fn counts_first_then_every_interval_and_at_the_bound() {
        let mut e = QueuedEstimate::default();
        let mut counts = 0;
        for queued in 0..2_500u64 {
            e.admit(100_000, || {
                counts += 1;
                queued
            })
            .unwrap();
        }
        assert_eq!(counts, 3, "at 0, 1,000 and 2,000");

        // At the bound: a count decides, and refuses.
        let mut e = QueuedEstimate::default();
        let mut counts = 0;
        assert!(e.admit(10, || 9).is_ok());
        assert_eq!(
            e.admit(10, || {
                counts += 1;
                10
            }),
            Err(OverBound { queued: 10 })
        );
        assert_eq!(counts, 1, "the estimate reached the bound: counted");
        // Runs started meanwhile: the next count admits again.
        assert!(e.admit(10, || 4).is_ok());
    }

    #[test]
    fn no_bound_forgets_the_estimate() {
        let mut e = QueuedEstimate::default();
        e.admit(5, || 0).unwrap();
        e.admit(0, || unreachable!("no bound: no count")).unwrap();
        let mut counted = false;
        e.admit(5, || {
            counted = true;
            4
        })
        .unwrap();
        assert!(counted, "a bound set again starts from an exact count");
    }

    #[test]
    fn filling_to_the_bound_reads_about_ten_entries_per_submit() {
        let bound = 100_000u64;
        let mut e = QueuedEstimate::default();
        let (mut queued, mut read) = (0u64, 0u64);
        while e
            .admit(bound, || {
                read += queued;
                queued
            })
            .is_ok()
        {
            queued += 1;
        }
        assert_eq!(queued, bound);
        println!(
            "entries read per submit filling to {bound}: {:.1}",
            read as f64 / bound as f64
        );
        assert!(read <= 12 * bound, "read {read} entries for {bound} submits");
    }

    /// A step of a random day of one role: a submit by session `s`, or
    /// `n` runs starting (leaving the queue).
    #[derive(Debug, Clone)]
    enum Step {
        Submit(usize),
        Start(u64),
    }

    proptest! {
        /// One session: the queue never exceeds the bound, and a refusal
        /// always means the queue is full. `k` sessions: it stays below
        /// `bound + (k − 1) · recount_interval(bound)`.
        #[test]
        fn the_bound_holds_within_its_tolerance(
            bound in 1u64..30_000,
            sessions in 1usize..5,
            steps in proptest::collection::vec(
                prop_oneof![
                    8 => (0usize..5).prop_map(Step::Submit),
                    1 => (0u64..3_000).prop_map(Step::Start),
                ],
                1..3_000,
            ),
        ) {
            let mut est = vec![QueuedEstimate::default(); sessions];
            let mut queued = 0u64;
            let tolerance = (sessions as u64 - 1) * recount_interval(bound);
            // Each step is repeated, so that the queue reaches the bound.
            for step in steps.iter().flat_map(|s| std::iter::repeat_n(s, 20)) {
                match step {
                    Step::Submit(s) => {
                        let s = s % sessions;
                        match est[s].admit(bound, || queued) {
                            Ok(()) => queued += 1,
                            Err(OverBound { queued: seen }) => {
                                prop_assert_eq!(seen, queued);
                                prop_assert!(queued >= bound);
                            }
                        }
                    }
                    Step::Start(n) => queued = queued.saturating_sub(*n),
                }
                prop_assert!(queued <= bound + tolerance, "{} queued, bound {}", queued, bound);
                if sessions == 1 {
                    prop_assert!(queued <= bound);
                }
            }
        }
    }
}
