//! The shared-memory registry of every pg_jobs worker, and what the launcher
//! knows about each database.
//!
//! One named LWLock (`pg_jobs registry`) guards one fixed-size struct:
//!
//! * `slots` — one entry per pg_jobs process (launcher, schedulers,
//!   executors): kind, pid, database, role, run, state, since. The view
//!   `jobs.workers` reads it.
//! * `dbs` — per database: whether it has the extension (as far as anyone
//!   has told the launcher) and whether a DROP/RENAME DATABASE is evicting
//!   its workers.
//!
//! Slot life cycle. A supervisor (launcher for schedulers, scheduler for
//! executors) *reserves* a slot (pid 0, state `starting`) and passes its
//! index and generation to the new worker, which *claims* it (sets its pid
//! and latch). On exit — normal, ERROR-to-FATAL, or SIGTERM — an
//! `on_shmem_exit` callback frees the slot and sets the supervisor's latch,
//! so supervisors learn of deaths without polling. The generation counter
//! (bumped on every free) stops a late worker from claiming a slot that was
//! reclaimed and handed to someone else. A kill -9 restarts the whole
//! cluster, which re-creates this memory from scratch.
//!
//! A second lock, `pg_jobs queue rates`, guards the start logs of named
//! queues with a rate limit ([`rates`]); a third, `pg_jobs metrics`, the
//! counters of `jobs.metrics` ([`metrics`]).
//!
//! Everything read out of shared memory is copied before the lock is
//! released; nothing here allocates.

mod daemons;
mod databases;
mod mailbox;
mod metrics;
mod pool;
mod rates;
mod slot;
mod slots;

pub use daemons::*;
pub use databases::*;
pub use mailbox::*;
pub use metrics::*;
pub use pool::*;
pub use rates::*;
pub use slot::*;
pub use slots::*;

use pg_jobs_core::launcher::ExtPresence;

use pgrx::prelude::*;

use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};

/// Registry capacity. `pg_jobs.max_executors` is capped well below it.
pub const MAX_WORKERS: usize = 256;

/// Databases the launcher can track at once.
pub const MAX_DATABASES: usize = 256;

/// Daemons whose status the registry can show at once (cluster-wide).
pub const MAX_DAEMONS: usize = 256;

/// Longest last-exit message kept for a daemon.
pub const DAEMON_MESSAGE_BYTES: usize = 256;

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Registry {
    /// Broadcast whenever runs reach a terminal state (`jobs.wait` sleeps on it).
    runs_finished: pg_sys::ConditionVariable,
    launcher_latch: usize,
    slots: [Slot; MAX_WORKERS],
    dbs: [DbEntry; MAX_DATABASES],
    daemons: [DaemonEntry; MAX_DAEMONS],
}

impl Default for Registry {
    fn default() -> Self {
        // PostgreSQL's own initialiser, not a hand-made copy: an unlocked
        // spinlock and an empty wait list, whose "no process" mark changed
        // in PostgreSQL 17 (INVALID_PGPROCNO, INT_MAX, became
        // INVALID_PROC_NUMBER, -1). The value is plain data with no pointer
        // into itself, so initialising it here and moving it into shared
        // memory (which pgrx does with this value) is what initialising it in
        // place would do.
        let mut runs_finished = pg_sys::ConditionVariable::default();
        // SAFETY: a pointer to our own local, valid for the call; the
        // function only writes the spinlock and the list ends.
        unsafe { pg_sys::ConditionVariableInit(&mut runs_finished) };
        Registry {
            runs_finished,
            launcher_latch: 0,
            slots: [Slot::default(); MAX_WORKERS],
            dbs: [DbEntry::default(); MAX_DATABASES],
            daemons: [DaemonEntry::default(); MAX_DAEMONS],
        }
    }
}

// SAFETY: `#[repr(C)]`, `Copy` plain old data: integers, fixed arrays of
// plain slots and entries, and a ConditionVariable (PostgreSQL's own
// shared-memory type, initialised by ConditionVariableInit). No pointer
// into process-local memory: the latches are kept as the addresses of PGPROC
// latches, which live in shared memory mapped at the same address in every
// process of the cluster.
unsafe impl PGRXSharedMemory for Registry {}

// SAFETY: PgLwLock::new's contract is a unique name: no other LWLock
// tranche in the cluster is called "pg_jobs registry".
static REGISTRY: PgLwLock<Registry> = unsafe { PgLwLock::new(c"pg_jobs registry") };

/// Called from `_PG_init` while preloading.
pub fn init() {
    pg_shmem_init!(REGISTRY);
    rates::init_rates();
    metrics::init_metrics();
}

fn now() -> i64 {
    // SAFETY: GetCurrentTimestamp only reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

fn my_latch() -> usize {
    // SAFETY: reads the MyLatch global (set for every process before its
    // main function runs); only its address is taken.
    unsafe { pg_sys::MyLatch as usize }
}

fn set_latch(latch: usize) {
    if latch != 0 {
        // SAFETY: a non-zero `latch` is the address of a PGPROC latch in
        // shared memory, which exists for the server's life (slots store
        // MyLatch, which is the PGPROC latch once a worker has claimed its
        // slot); setting the latch of a process that has exited is harmless
        // (the PGPROC is reused, at worst a spurious wake-up).
        unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) }
    }
}

/// What a supervisor passes to a worker so it can find its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRef {
    pub index: u32,
    pub generation: u32,
}

impl SlotRef {
    pub fn to_datum(self) -> pg_sys::Datum {
        pg_sys::Datum::from(((self.index as u64) << 32) | self.generation as u64)
    }
    pub fn from_datum(d: pg_sys::Datum) -> SlotRef {
        let v = d.value() as u64;
        SlotRef {
            index: (v >> 32) as u32,
            generation: v as u32,
        }
    }
}

/// The latch of the scheduler of `db` (0 if it has none).
fn scheduler_latch(reg: &Registry, db: u32) -> usize {
    reg.slots
        .iter()
        .find(|s| s.in_use && s.kind == Kind::Scheduler && s.db == db)
        .map_or(0, |s| s.latch)
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The runs-finished condition variable starts with an empty wait list.
    /// Initialised with the wrong "no process" mark for the version (the
    /// mark changed in PostgreSQL 17), a broadcast would take it for a
    /// waiting process and crash this backend; sleeping on it and waking
    /// from the timeout must work too.
    #[pg_test]
    fn runs_finished_starts_empty_and_works() {
        let cv = super::runs_finished_cv();
        // SAFETY: the registry's condition variable, in shared memory for
        // the server's life; this backend sleeps on no other one, and the
        // sleep is cancelled before returning.
        unsafe {
            pg_sys::ConditionVariableBroadcast(cv);
            pg_sys::ConditionVariablePrepareToSleep(cv);
            pg_sys::ConditionVariableTimedSleep(cv, 1, pg_sys::PG_WAIT_EXTENSION);
            pg_sys::ConditionVariableCancelSleep();
            pg_sys::ConditionVariableBroadcast(cv);
        }
    }
}
