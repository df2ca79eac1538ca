//! Hooks that let ordinary backends tell pg_jobs' workers what changed,
//! at the moment it takes effect.
//!
//! * A `ProcessUtility_hook` notices CREATE/DROP EXTENSION pg_jobs, other
//!   DROPs (DROP SCHEMA … CASCADE can take the extension with it), CREATE
//!   DATABASE, and — before they run — DROP DATABASE and ALTER DATABASE
//!   RENAME, which fail while anyone is connected to the database: for
//!   those it terminates that database's pg_jobs workers and waits for them
//!   to go, keeping the launcher from restarting them until the statement's
//!   transaction ends (TimescaleDB and Citus do the same).
//! * After REASSIGN OWNED and DROP OWNED have run, the same hook moves or
//!   removes the roles' jobs, daemons and queued runs in this database, in
//!   the statement's transaction (`owned.rs`; PostgreSQL itself moves or
//!   drops the roles' ownership anchors, `catalog::ownership`).
//! * A transaction callback acts on what was noted only when the
//!   transaction commits: waking the database's scheduler after a submit,
//!   telling the launcher about a new or dropped extension, retiring the
//!   pooled executors after a change to what a new connection of a role
//!   gets (`ALTER ROLE`, `ALTER ROLE … SET`, `ALTER DATABASE … SET`),
//!   counting the runs it ended in `jobs.metrics`. A
//!   rolled-back transaction wakes nobody, so a rolled-back submit is never
//!   seen.

use crate::shmem::{self, Kind};
use pg_jobs_core::launcher::ExtPresence;
use pg_jobs_core::metrics::DbCounters;
use pg_jobs_core::run::RunStatus;
use pgrx::prelude::*;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// How long DROP/RENAME DATABASE waits for pg_jobs workers to exit before
/// letting PostgreSQL report whatever it finds.
const EVICT_TIMEOUT: Duration = Duration::from_secs(10);

/// What this backend's current transaction asked for, acted on at its end.
#[derive(Clone, Copy, Default)]
struct Pending {
    wake_scheduler: bool,
    /// Reload every job (ALTER EXTENSION UPDATE).
    reload_jobs: bool,
    reload_daemons: bool,
    /// A run waits on others, or one they wait on was cancelled.
    recheck_waiting: bool,
    runs_finished: bool,
    wake_launcher: bool,
    ext_created: bool,
    ext_dropped: bool,
    evicted_db: Option<pg_sys::Oid>,
    /// Some other object was dropped (DROP SCHEMA … CASCADE can take the
    /// extension with it): the scheduler re-checks that it still exists.
    recheck_extension: bool,
    /// What a new connection of some role to some database gets changed
    /// (`ALTER ROLE … SET`, `ALTER DATABASE … SET`, a role's attributes):
    /// every executor connected before the commit retires, so no later run
    /// gets a session set up from the old settings (issue 13, finding 4).
    /// Cluster-wide and coarse: a spurious retirement costs one fresh
    /// connection, a missed one would run a job with stale settings.
    session_defaults_changed: bool,
    /// Runs this transaction ended (`jobs.metrics`), counted at commit.
    counts: DbCounters,
    /// A role was renamed: every scheduler refreshes the owners' names of
    /// its database's definitions (`jobs.definition`, what pg_dump carries).
    role_renamed: bool,
}

impl Pending {
    /// What a committed subtransaction noted becomes its parent's.
    fn merge(self, child: Pending) -> Pending {
        Pending {
            wake_scheduler: self.wake_scheduler || child.wake_scheduler,
            reload_jobs: self.reload_jobs || child.reload_jobs,
            reload_daemons: self.reload_daemons || child.reload_daemons,
            recheck_waiting: self.recheck_waiting || child.recheck_waiting,
            runs_finished: self.runs_finished || child.runs_finished,
            wake_launcher: self.wake_launcher || child.wake_launcher,
            ext_created: self.ext_created || child.ext_created,
            ext_dropped: self.ext_dropped || child.ext_dropped,
            evicted_db: child.evicted_db.or(self.evicted_db),
            recheck_extension: self.recheck_extension || child.recheck_extension,
            session_defaults_changed: self.session_defaults_changed || child.session_defaults_changed,
            counts: {
                let mut c = self.counts;
                c.add(&child.counts);
                c
            },
            role_renamed: self.role_renamed || child.role_renamed,
        }
    }

    /// Whether the transaction did pg_jobs work that only takes effect when
    /// this backend sees its commit: two-phase commit would strand it (the
    /// COMMIT PREPARED runs elsewhere, with none of this state).
    fn needs_commit_here(&self) -> bool {
        self.wake_scheduler
            || self.reload_jobs
            || self.reload_daemons
            || self.recheck_waiting
            || self.runs_finished
            || self.ext_created
            || self.ext_dropped
    }
}

thread_local! {
    /// What the transaction noted, one entry per (sub)transaction level
    /// that noted or began since: a subtransaction that aborts takes what
    /// it noted with it, one that commits hands it to its parent.
    static PENDING: std::cell::RefCell<Vec<Pending>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Runs submitted in the current transaction (`jobs.wait` on one would
    /// wait for a commit that cannot come while it waits).
    static SUBMITTED: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Jobs added, changed or removed in the current transaction.
    static CHANGED_JOBS: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn note(f: impl FnOnce(&mut Pending)) {
    PENDING.with(|p| {
        let mut levels = p.borrow_mut();
        if levels.is_empty() {
            levels.push(Pending::default());
        }
        if let Some(top) = levels.last_mut() {
            f(top);
        }
    });
}

/// Everything the transaction noted, in its committed subtransactions
/// too; with `reset`, forgotten (the transaction ended).
fn noted(reset: bool) -> Pending {
    PENDING.with(|p| {
        let mut levels = p.borrow_mut();
        let all = levels.iter().fold(Pending::default(), |acc, l| acc.merge(*l));
        if reset {
            levels.clear();
        }
        all
    })
}

/// Wake this database's scheduler when the current transaction commits.
pub fn wake_scheduler_at_commit() {
    note(|p| p.wake_scheduler = true);
}

/// A run was submitted: wake the scheduler at commit, and remember the run
/// until the transaction ends.
pub fn submitted_at_commit(run_id: i64) {
    note(|p| p.wake_scheduler = true);
    SUBMITTED.with(|s| s.borrow_mut().push(run_id));
}

pub fn submitted_in_this_transaction(run_id: i64) -> bool {
    SUBMITTED.with(|s| s.borrow().contains(&run_id))
}

/// Runs reached a terminal state in this transaction (jobs.cancel of a
/// queued run): wake `jobs.wait`ers at commit.
pub fn runs_finished_at_commit() {
    note(|p| p.runs_finished = true);
}

/// A run ended with `status` (after `lag_us` from due to start and
/// `duration_us` of running, if it started): counted in `jobs.metrics`
/// for this database when (and only if) the current transaction commits.
pub fn run_ended_at_commit(status: RunStatus, lag_us: Option<i64>, duration_us: Option<i64>) {
    note(|p| p.counts.run_ended(status, lag_us, duration_us));
}

/// `n` runs that had not started were cancelled (or skipped, failed):
/// counted as [`run_ended_at_commit`] counts one.
pub fn runs_ended_at_commit(status: RunStatus, n: usize) {
    note(|p| {
        for _ in 0..n {
            p.counts.run_ended(status, None, None);
        }
    });
}

/// Job `id` was added, changed or removed: have the scheduler reload it
/// when (and only if) the current transaction commits, as pg_cron's cache
/// invalidation does — but just that job, so a change costs the same with
/// ten jobs or a hundred thousand.
pub fn job_changed_at_commit(id: i64) {
    let too_many = CHANGED_JOBS.with(|c| {
        let mut c = c.borrow_mut();
        if !c.contains(&id) {
            c.push(id);
        }
        c.len() > shmem::CHANGED_JOBS
    });
    if too_many {
        // A bulk change: the scheduler reloads everything anyway.
        note(|p| p.reload_jobs = true);
        CHANGED_JOBS.with(|c| c.borrow_mut().clear());
    }
}

/// A restore made jobs and daemons (`jobs._definitions_restored`): the
/// scheduler loads them all again at commit.
pub fn everything_changed_at_commit() {
    note(|p| {
        p.reload_jobs = true;
        p.reload_daemons = true;
    });
}

/// Daemon definitions changed: the scheduler re-reads them at commit.
pub fn daemons_changed_at_commit() {
    note(|p| p.reload_daemons = true);
}

/// A run was submitted waiting on others, or a run others may wait on was
/// cancelled: have the scheduler look at the waiting runs at commit (it
/// decides those whose parents ended within its own passes by itself).
pub fn waiting_changed_at_commit() {
    note(|p| p.recheck_waiting = true);
}

mod owned;
mod utility;
mod xact;

/// Install the hooks; called from `_PG_init` while preloading, so every
/// backend inherits them.
pub fn init() {
    // SAFETY: called once, from `_PG_init` in the postmaster while it loads
    // shared_preload_libraries: single-threaded, before any backend runs a
    // utility statement, so nothing reads the hook variables meanwhile. The
    // previous hook is saved for `process_utility` to chain to, as every
    // ProcessUtility_hook must; RegisterXactCallback only pallocs a list
    // entry in TopMemoryContext.
    unsafe {
        utility::PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(utility::process_utility);
        pg_sys::RegisterXactCallback(Some(xact::xact_callback), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(xact::subxact_callback), std::ptr::null_mut());
    }
}
