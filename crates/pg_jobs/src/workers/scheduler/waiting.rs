//! Runs waiting for others, and jobs that follow other jobs: within a pass, the waiting runs whose parents
//! have all ended are queued or skipped (`pg_jobs_core::run::depends`),
//! and a skip, being an ending, decides the runs waiting for it in turn.
//!
//! Which waiting runs to look at is known, not polled for: those waiting
//! for a run this pass made terminal (harvest, crash sweep, refusal:
//! [`ended`] notes them), and all of them when a transaction asked for it
//! at commit (a run submitted waiting, whose parents may have ended before
//! it committed; a cancelled run), or when the scheduler (re)loads
//! everything.

use super::*;
use pg_jobs_core::run::depends::{self, Verdict};

/// How often, at least, waiting runs are all looked at while any may exist.
pub(super) const FULL_LOOK_EVERY: Duration = Duration::from_secs(1);

/// How many waiting runs a full look takes per round (the rest: in later
/// rounds of the same pass).
const BATCH: i64 = 1000;
/// Rounds per pass: a chain of skips deeper than this goes on next pass
/// (the pass asks for one).
const MAX_ROUNDS: usize = 64;

thread_local! {
    static ENDED: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Run `id` ended in this pass (its dependants may be decided now).
pub(super) fn ended(id: i64) {
    ENDED.with(|e| e.borrow_mut().push(id));
}

impl Scheduler {
    /// Jobs that follow others (`after_job`): a run of each follower whose
    /// `run_if` the ended run's final status meets, due now, under the
    /// follower's own overlap policy. Nothing to do (no query) while no
    /// enabled job follows another.
    fn fire_followers(&mut self, client: &mut SpiClient, ended: &[i64]) {
        if ended.is_empty() || !self.has_followers {
            return;
        }
        let now = Timestamp::now();
        let due: Vec<(i64, Timestamp)> = crate::catalog::chains::followers_of(client, ended)
            .into_iter()
            .filter(|f| depends::decide(f.run_if, &[(f.run_id, f.status)]) == Verdict::Run)
            .map(|f| (f.follower, now))
            .collect();
        fire(client, &due);
    }

    /// Decide the waiting runs that can be decided (see the module). Returns
    /// whether some may remain for the next pass.
    pub(super) fn resolve_waiting(&mut self, client: &mut SpiClient, look_at_all: bool) -> bool {
        let ended = ENDED.with(|e| std::mem::take(&mut *e.borrow_mut()));
        self.fire_followers(client, &ended);
        // A safety net while runs wait: a pooled executor that runs
        // reserved runs back to back reports only its last one to us, so
        // the end of a run it ran earlier may never reach `ended`. While
        // some run may be waiting, a full look at least every second
        // decides what that missed.
        let look_at_all = look_at_all
            || self.waiting_may_exist && self.last_full_look.is_none_or(|t| t.elapsed() >= FULL_LOOK_EVERY);
        if look_at_all {
            self.last_full_look = Some(Instant::now());
        }
        // The fast path: with no run waiting (none was submitted since a
        // look found none), a pass costs nothing here.
        if !(look_at_all || self.waiting_may_exist && !ended.is_empty()) || !has_waiting_runs() {
            return false;
        }
        let mut candidates = if look_at_all {
            runs::all_waiting(client, BATCH)
        } else {
            runs::waiting_on(client, &ended)
        };
        if look_at_all {
            self.waiting_may_exist = !candidates.is_empty();
        }
        let mut decided_any = false;
        let mut full = look_at_all && candidates.len() as i64 == BATCH;
        for _ in 0..MAX_ROUNDS {
            if candidates.is_empty() {
                if decided_any {
                    self.waiting_may_exist = runs::any_waiting(client);
                }
                return false;
            }
            let (mut release, mut skip, mut messages) = (Vec::new(), Vec::new(), Vec::new());
            for w in runs::lock_with_parents(client, &candidates) {
                match depends::decide(w.run_if, &w.parents) {
                    Verdict::Wait => {}
                    Verdict::Run => release.push(w.id),
                    v @ Verdict::Skip { .. } => {
                        messages.push(v.message(w.run_if).unwrap_or_default());
                        skip.push(w.id);
                    }
                }
            }
            decided_any |= !release.is_empty() || !skip.is_empty();
            if !release.is_empty() {
                runs::release(client, release);
            }
            let skipped = if skip.is_empty() {
                Vec::new()
            } else {
                runs::unmet(client, skip, messages)
            };
            for id in &skipped {
                log_run(*id, None, "skipped", None);
            }
            crate::hooks::runs_ended_at_commit(pg_jobs_core::run::RunStatus::Skipped, skipped.len());
            candidates = if !skipped.is_empty() {
                runs::waiting_on(client, &skipped)
            } else if full {
                // The next batch of a full look.
                let last = candidates.iter().copied().max().unwrap_or(0);
                let next: Vec<i64> = runs::all_waiting(client, BATCH + 1)
                    .into_iter()
                    .filter(|id| *id > last)
                    .collect();
                full = next.len() as i64 >= BATCH;
                next
            } else {
                Vec::new()
            };
        }
        true
    }
}
