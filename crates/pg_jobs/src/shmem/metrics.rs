//! The counters of `jobs.metrics` (`pg_jobs_core::metrics`): one
//! [`DbCounters`] per database, cluster-wide, since the server started, as
//! PostgreSQL keeps its `pg_stat_*` counters, under a lock of their own
//! (`pg_jobs metrics`) so that counting never waits on the registry.
//!
//! Run endings are added by the transaction callback when the transaction
//! that wrote them commits (`hooks::run_ended_at_commit`); starts, pool
//! hits, cold starts and scheduler passes are facts when they happen and
//! are added at once. A dropped database's counters are forgotten when the
//! launcher forgets the database; a server restart starts from zero.

use pg_jobs_core::metrics::DbCounters;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};

use super::MAX_DATABASES;

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Metrics {
    /// Database of each entry (0: free).
    dbs: [u32; MAX_DATABASES],
    counters: [DbCounters; MAX_DATABASES],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            dbs: [0; MAX_DATABASES],
            counters: [DbCounters::default(); MAX_DATABASES],
        }
    }
}

// SAFETY: `#[repr(C)]`, `Copy` plain old data: integers and fixed arrays
// of integers, no pointers.
unsafe impl PGRXSharedMemory for Metrics {}

// SAFETY: PgLwLock::new's contract is a unique name: no other LWLock
// tranche in the cluster is called "pg_jobs metrics".
static METRICS: PgLwLock<Metrics> = unsafe { PgLwLock::new(c"pg_jobs metrics") };

/// Called from `shmem::init` while preloading.
pub(super) fn init_metrics() {
    pg_shmem_init!(METRICS);
}

/// Add to database `db`'s counters what `f` counts. A database beyond the
/// table's capacity (more than the launcher tracks) is not counted.
pub fn count(db: u32, f: impl FnOnce(&mut DbCounters)) {
    if db == 0 {
        return;
    }
    let mut m = METRICS.exclusive();
    let i = match m.dbs.iter().position(|&d| d == db) {
        Some(i) => i,
        None => match m.dbs.iter().position(|&d| d == 0) {
            Some(i) => {
                m.dbs[i] = db;
                m.counters[i] = DbCounters::default();
                i
            }
            None => return,
        },
    };
    f(&mut m.counters[i]);
}

/// Add what a committed transaction counted in database `db`.
pub fn add_counts(db: u32, delta: &DbCounters) {
    count(db, |c| c.add(delta));
}

/// Every database's counters, copied out under the lock.
pub fn all_counts() -> Vec<(u32, DbCounters)> {
    let m = METRICS.share();
    m.dbs
        .iter()
        .zip(m.counters.iter())
        .filter(|(&d, _)| d != 0)
        .map(|(&d, c)| (d, *c))
        .collect()
}

/// Forget the counters of databases that no longer exist (the launcher's
/// rescan).
pub fn retain_counts(alive: &[pgrx::pg_sys::Oid]) {
    let mut m = METRICS.exclusive();
    for d in m.dbs.iter_mut() {
        if *d != 0 && !alive.iter().any(|o| o.to_u32() == *d) {
            *d = 0;
        }
    }
}
