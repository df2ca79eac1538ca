//! The start logs of rate-limited named queues: one per (database, queue)
//! with a rate limit whose runs started lately, cluster-wide, under a
//! lock of their own (`pg_jobs queue rates`), so that every executor and
//! scheduler of the database sees the same window
//! (`pg_jobs_core::queue::rate`).
//!
//! An executor logs a run's start right before it hands the command to
//! PostgreSQL (waiting, if the window is full, until it is not); the
//! scheduler and the executors' own claims read how many starts the window
//! has left, so as not to take runs that would only wait. A log is given to
//! another queue once its last start is older than its period: it no longer
//! holds back anything. A server restart starts with empty logs.

use super::now;
use pg_jobs_core::queue::rate::StartLog;
use pg_jobs_core::queue::Rate;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};

/// Rate-limited queues that can have started runs within their period at
/// once, cluster-wide; a queue beyond them waits for a log to free up.
pub const RATE_LOGS: usize = 32;

#[derive(Clone, Copy, Default)]
#[repr(C)]
struct RateEntry {
    /// 0: free.
    db: u32,
    queue_id: i64,
    /// The period it was last used with (to tell when it is idle).
    period_us: i64,
    log: StartLog,
}

impl RateEntry {
    /// No start in its log counts any more.
    fn idle(&self, now: i64) -> bool {
        self.db == 0
            || self.log.last().is_none_or(|t| {
                t.saturating_add(self.period_us)
                    .saturating_add(pg_jobs_core::queue::rate::GUARD_US)
                    <= now
            })
    }
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Rates {
    entries: [RateEntry; RATE_LOGS],
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            entries: [RateEntry::default(); RATE_LOGS],
        }
    }
}

// SAFETY: `#[repr(C)]`, `Copy` plain old data: integers and fixed arrays
// of integers, no pointers.
unsafe impl PGRXSharedMemory for Rates {}

// SAFETY: PgLwLock::new's contract is a unique name: no other LWLock
// tranche in the cluster is called "pg_jobs queue rates".
static RATES: PgLwLock<Rates> = unsafe { PgLwLock::new(c"pg_jobs queue rates") };

/// Called from `shmem::init` while preloading.
pub(super) fn init_rates() {
    pg_shmem_init!(RATES);
}

/// The log of queue `queue_id` of database `db`: its own, else a free or
/// idle one made its own. `None`: every log is busy.
fn entry(rates: &mut Rates, db: u32, queue_id: i64, now: i64) -> Option<&mut RateEntry> {
    let i = rates
        .entries
        .iter()
        .position(|e| e.db == db && e.queue_id == queue_id)
        .or_else(|| rates.entries.iter().position(|e| e.idle(now)))?;
    let e = &mut rates.entries[i];
    if e.db != db || e.queue_id != queue_id {
        *e = RateEntry {
            db,
            queue_id,
            ..RateEntry::default()
        };
    }
    Some(e)
}

/// How long to wait when every log is busy, in microseconds.
const ALL_BUSY_RETRY_US: i64 = 100_000;

/// Log a start of a run of queue `queue_id` in database `db` now, if its
/// rate lets one start (`Ok`); else `Err` with when to try again (server
/// timestamp, microseconds).
pub fn take_start(db: u32, queue_id: i64, rate: Rate) -> Result<(), i64> {
    let mut rates = RATES.exclusive();
    let now = now();
    let Some(e) = entry(&mut rates, db, queue_id, now) else {
        return Err(now + ALL_BUSY_RETRY_US);
    };
    e.period_us = rate.period_us;
    e.log.take(rate.limit, rate.period_us, now)
}

/// How many runs of queue `queue_id` in database `db` may start now, and
/// if none, when one may (server timestamp, microseconds).
pub fn start_room(db: u32, queue_id: i64, rate: Rate) -> (usize, Option<i64>) {
    let rates = RATES.share();
    let now = now();
    match rates
        .entries
        .iter()
        .find(|e| e.db == db && e.queue_id == queue_id)
    {
        Some(e) => {
            let room = e.log.room(rate.limit, rate.period_us, now);
            let at = (room == 0).then(|| e.log.allowed_at(rate.limit, rate.period_us, now));
            (room, at)
        }
        None if rates.entries.iter().any(|e| e.idle(now)) => (rate.limit as usize, None),
        None => (0, Some(now + ALL_BUSY_RETRY_US)),
    }
}
