//! The scheduler: one dynamic worker per database that has the extension.
//!
//! Started by the launcher. Its first act is the *probe*: if the extension
//! is not installed in its database it says so in the registry and exits,
//! so a database without pg_jobs costs one short connection.
//!
//! Then it sleeps on its latch until the earliest thing it is waiting for —
//! the next due job (a min-heap of due times), a retry's backoff, a run's
//! timeout — or until it is woken (a job or run was committed, an executor
//! started or exited, SIGHUP). Each wake-up is one pass in one transaction:
//! 1. exit if the extension was dropped;
//! 2. harvest exited executors: write their outcomes to `jobs.run` in one
//!    statement, queue retries, log per `pg_jobs.log_runs`;
//! 3. mark runs whose executor vanished `crashed`; say `running` for runs
//!    whose executor started; terminate executors past their timeout;
//! 4. reload job definitions if they changed; queue runs for due jobs
//!    (overlap policy); hand queued runs to executors, earliest due first,
//!    up to `pg_jobs.max_executors`;
//! 5. now and then, purge old history;
//! 6. supervise the daemons defined here (`daemons.rs`): record exits,
//!    start, restart after their delay, stop.
//!
//! With nothing due it sleeps with no timeout at all.
//!
//! On a hot standby it runs in *watch mode*: read-only, no jobs, only the
//! daemons declared for standbys (`watch`). When the server is promoted it
//! turns into the above at its next pass: runs the old primary left
//! in flight are marked crashed, schedules resume from now.

mod dispatch;
mod due;
mod harvest;
mod maintenance;
mod pass;
mod prewarm;
mod waiting;
mod watch;

use dispatch::*;
use due::*;
use harvest::*;
use maintenance::*;

use crate::pg::bgw::{self, DynamicWorker, WorkerHandle};

use crate::exec::command_segment::Segment;

use crate::catalog::runs::{self, requeue, requeue_reserved};
use crate::gucs;
use crate::workers::log_run;

use crate::shmem::{self, Kind, Outcome, Reservation, SlotRef, State};

use crate::catalog::schema_version::{self, extension_exists, has_waiting_runs};

use crate::pg::time;

use jiff::tz::TimeZone;

use jiff::Timestamp;

use pg_jobs_core::executor_phase::ExecutorPhase;

use pg_jobs_core::backoff;
use pg_jobs_core::launcher::ExtPresence;

use pg_jobs_core::overlap::OnDue;

use pg_jobs_core::schedule::Schedule;

use pgrx::bgworkers::BgWorkerStartTime;

use pgrx::prelude::*;

use pgrx::spi::SpiClient;

use std::cmp::Reverse;

use std::collections::{BinaryHeap, HashMap};

use std::time::{Duration, Instant};

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_scheduler_main(arg: pg_sys::Datum) {
    bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = shmem::claim(me) else {
        return; // reclaimed before we started: someone else has this database
    };
    let db = pg_sys::Oid::from(slot.db);
    connect(db);
    let probe = bgw::in_transaction("pg_jobs scheduler: probing for the extension", || {
        extension_exists().then(|| bgw::database_name(db))
    });
    let Some(db_name) = probe else {
        shmem::set_ext(db, ExtPresence::Absent);
        return;
    };
    shmem::set_ext(db, ExtPresence::Present);
    log!("pg_jobs scheduler started for database \"{db_name}\"");
    shmem::retire_abandoned(db);
    let mut s = Scheduler::new(me, db);
    s.run(&db_name);
}

/// Connect to `db` as the bootstrap superuser (bookkeeping only; jobs never
/// run in this process) with the session settings every pass relies on.
fn connect(db: pg_sys::Oid) {
    // SAFETY: a database-connected background worker connects once, here,
    // before any transaction; InvalidOid means the bootstrap superuser.
    unsafe { pg_sys::BackgroundWorkerInitializeConnectionByOid(db, pg_sys::InvalidOid, 0) };
    // A superuser session running SQL in a database users can create objects in.
    bgw::pin_search_path();
    // Every query of this session is meant to be an index scan of a small
    // partial index. On a queue that grows by thousands before autovacuum
    // has analyzed it, the planner's empty-table estimates would pick a
    // full scan and sort per pass instead (measured: 3.7x slower drains).
    // SAFETY: connected, outside a transaction; PGC_S_OVERRIDE is allowed
    // there, and name and value are NUL-terminated literals.
    unsafe {
        pg_sys::SetConfigOption(
            c"enable_seqscan".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        )
    };
    // A pass that deadlocks with a user's DDL on pg_jobs' tables (DROP
    // EXTENSION takes their locks in its own order) is the one to give way:
    // it is rolled back and retried in 100 ms, where the user's statement
    // would fail. The process that waits deadlock_timeout first checks for
    // the deadlock and aborts itself, so ours waits very little.
    // SAFETY: as above.
    unsafe {
        pg_sys::SetConfigOption(
            c"deadlock_timeout".as_ptr(),
            c"10ms".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        )
    };
    // No JIT: with sequential scans off, loading 100,000 jobs is costed
    // past jit_above_cost, and compiling it cost the load time and left
    // LLVM's 7.6 MB in the scheduler for good; no query here gains from it.
    // SAFETY: as above.
    unsafe {
        pg_sys::SetConfigOption(
            c"jit".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        )
    };
}

impl Scheduler {
    fn new(me: SlotRef, db: pg_sys::Oid) -> Scheduler {
        Scheduler {
            me,
            db,
            launched: HashMap::new(),
            segments: HashMap::new(),
            shown_running: std::collections::HashSet::new(),
            jobs: HashMap::new(),
            heap: BinaryHeap::new(),
            loaded: false,
            trim_after_pass: false,
            reboot: shmem::take_reboot(db),
            last_purge: None,
            daemons: crate::workers::daemon::supervisor::Supervisor::new(db),
            was_in_recovery: false,
            vacuumed_at_claims: shmem::claims(db),
            prewarmed_for: None,
            failed_passes: 0,
            fired_in_pass: Vec::new(),
            reload_daemons_pending: false,
            recheck_waiting_pending: false,
            waiting_may_exist: true,
            has_followers: false,
            last_full_look: None,
            journal: Journal::default(),
            requeue_pending: Vec::new(),
            parsed: HashMap::new(),
            zones: HashMap::new(),
        }
    }

    /// The main loop: a pass, then sleep until the next thing is due or
    /// someone wakes us; returns when the scheduler should exit.
    fn run(&mut self, db_name: &str) {
        let cx = bgw::IterationContext::new(c"pg_jobs scheduler iteration");
        // After a failed pass, no pass before this, however often we are
        // woken meanwhile (every submit and executor exit sets our latch).
        let mut retry_at: Option<Instant> = None;
        loop {
            pg_sys::check_for_interrupts!();
            if bgw::reload_config_if_asked() {
                self.loaded = false; // pg_jobs.timezone may have changed
            }
            if !gucs::enabled() {
                log!("pg_jobs scheduler for database \"{db_name}\" stopping: pg_jobs.enabled is off");
                self.daemons.terminate_all();
                return;
            }
            if let Some(at) = retry_at {
                let now = Instant::now();
                if now < at {
                    bgw::wait(Some(at - now));
                    continue;
                }
                retry_at = None;
            }
            let next = bgw::recover_from_error(|| cx.run(|| self.pass()));
            if std::mem::take(&mut self.trim_after_pass) {
                release_free_memory();
            }
            let next = match next {
                Ok(next) => {
                    self.failed_passes = 0;
                    next
                }
                Err(e) => {
                    cx.reset();
                    let delay = self.after_failed_pass(db_name, &e);
                    retry_at = Some(Instant::now() + delay);
                    Next::Sleep(Some(delay))
                }
            };
            match next {
                Next::Exit => {
                    log!("pg_jobs scheduler for database \"{db_name}\" stopping: the extension was dropped");
                    self.daemons.terminate_all();
                    // Their runs' history is gone with the extension: nothing
                    // would record them. Stop them rather than let them run on.
                    shmem::terminate_runs_of(self.db);
                    shmem::set_ext(self.db, ExtPresence::Absent);
                    return;
                }
                Next::Sleep(timeout) => match shmem::work_waiting(self.me, self.db) {
                    // A reload asked for during the pass, whose wake-up a
                    // lock wait in it may have swallowed: pass again now
                    // (the pass takes the request, so this cannot spin).
                    (true, _) if retry_at.is_none() => {}
                    // An exited worker not harvested yet: look again within
                    // a second rather than sleep on a wake-up that may be
                    // gone (not at once: it may be one a later pass takes).
                    (_, true) => {
                        bgw::wait(Some(timeout.map_or(EXITED_RECHECK, |t| t.min(EXITED_RECHECK))));
                    }
                    _ => match timeout {
                        Some(t) => bgw::sleep_until(Instant::now() + t),
                        None => {
                            bgw::wait(None);
                        }
                    },
                },
            }
        }
    }

    /// A pass is one transaction: its writes were rolled back, and what it
    /// had taken from memory goes back, so the runs due in it are retried,
    /// not lost, after a short backoff.
    fn after_failed_pass(&mut self, db_name: &str, e: &bgw::CaughtReport) -> Duration {
        self.failed_passes = self.failed_passes.saturating_add(1);
        let delay = backoff::pass_retry_delay(self.failed_passes);
        log!(
            "pg_jobs scheduler for database \"{db_name}\": pass failed with SQLSTATE {}: {}; retrying in {} ms",
            e.sqlstate,
            e.message,
            delay.as_millis()
        );
        self.undo_failed_pass();
        shmem::set_state(self.me, State::Idle, None);
        delay
    }
}

/// What a pass changed in shared memory that its transaction's rollback
/// would not undo: runs taken back from executors' reservations, slots
/// harvested, executors reserved or taken from the pool for the runs it
/// picked. Undone by [`Scheduler::undo_failed_pass`] when the pass fails;
/// the harvest and requeue entries are settled at commit, a dispatch entry
/// once its run is handed over or requeued.
#[derive(Default)]
struct Journal {
    requeued: Vec<i64>,
    harvested: Vec<(SlotRef, shmem::Slot)>,
    /// Slot, whether it was a pooled executor, run.
    dispatched: Vec<(SlotRef, bool, i64)>,
    /// The pass's transaction committed (its dispatched runs are `starting`).
    committed: bool,
}

/// How soon a scheduler looks again when a worker of its database exited
/// and was not harvested by the pass that just ran.
const EXITED_RECHECK: Duration = Duration::from_secs(1);

enum Next {
    Exit,
    /// Sleep until woken or this long (`None`: nothing due, no timeout).
    Sleep(Option<Duration>),
}

/// An executor we started and have not seen gone, with its start handle.
struct Launched {
    slot: SlotRef,
    handle: WorkerHandle,
}

struct Scheduler {
    me: SlotRef,
    db: pg_sys::Oid,
    /// Executors we started, by registry slot index.
    launched: HashMap<u32, Launched>,
    /// Commands of runs handed to executors and not yet harvested, by run id.
    segments: HashMap<i64, Segment>,
    /// Runs `jobs.run` already shows `running` (until harvested).
    shown_running: std::collections::HashSet<i64>,
    jobs: HashMap<i64, Job>,
    /// Due times, earliest first; an entry is stale if its job's
    /// `next_due` no longer equals it.
    heap: BinaryHeap<Reverse<(Timestamp, i64)>>,
    loaded: bool,
    /// A full load happened in this pass: once its transaction has ended,
    /// the memory it used goes back to the kernel.
    trim_after_pass: bool,
    /// `@reboot` jobs are still to run in this server life.
    reboot: bool,
    last_purge: Option<Instant>,
    daemons: crate::workers::daemon::supervisor::Supervisor,
    /// The last pass ran on a standby (watch mode).
    was_in_recovery: bool,
    /// `shmem::claims` when we last vacuumed the run queue.
    vacuumed_at_claims: u64,
    /// The due instant executors were last started ahead of (see prewarm).
    prewarmed_for: Option<Timestamp>,
    /// Passes that failed in a row (an ERROR inside one), for the retry delay.
    failed_passes: u32,
    /// Jobs fired by the current pass with the due time each had, so a pass
    /// that fails after firing puts them back (its inserts are rolled back).
    fired_in_pass: Vec<(i64, Timestamp)>,
    /// A reload of daemon definitions a failed pass had taken and not done.
    reload_daemons_pending: bool,
    /// Waiting runs remain to be looked at (a pass took as many as it may).
    recheck_waiting_pending: bool,
    /// Some run may be waiting for others: false once a look found none,
    /// until a transaction submits one (which asks for a look at commit).
    waiting_may_exist: bool,
    /// Some enabled job follows another (`after_job`); read at each load.
    has_followers: bool,
    /// When all waiting runs were last looked at (see `waiting`).
    last_full_look: Option<Instant>,
    /// What the current pass changed in shared memory, to put back if it
    /// fails (see [`Journal`]).
    journal: Journal,
    /// Reserved runs taken back from executors by a pass that failed before
    /// its requeue committed: the next pass requeues them first.
    requeue_pending: Vec<i64>,
    /// Parsed schedules and time zones by text, shared by the jobs that
    /// use them (rebuilt at each full load).
    parsed: HashMap<std::rc::Rc<str>, Schedule>,
    zones: HashMap<std::rc::Rc<str>, TimeZone>,
}

impl Scheduler {
    /// After a failed pass: what it took out of memory goes back. Its
    /// transaction was rolled back, so due jobs it fired are due again,
    /// reload requests it consumed are redone in full, and the `running`
    /// marks it wrote are written again.
    fn undo_failed_pass(&mut self) {
        // What it had to decide about waiting runs was rolled back with it.
        self.recheck_waiting_pending = true;
        let journal = std::mem::take(&mut self.journal);
        // Executors for the picked runs: a new one's reserved slot goes, a
        // pooled one goes back to the pool. After commit the runs are
        // `starting` with no executor: they go back to the queue next pass.
        for (slot, warm, run_id) in journal.dispatched {
            if warm {
                shmem::abandon_handover(slot);
            } else {
                shmem::release(slot);
            }
            if journal.committed {
                self.requeue_pending.push(run_id);
            }
        }
        for (slot, before) in journal.harvested.iter().rev() {
            shmem::undo_harvest(*slot, before);
        }
        self.requeue_pending.extend(journal.requeued);
        for (id, due) in std::mem::take(&mut self.fired_in_pass) {
            if let Some(job) = self.jobs.get_mut(&id) {
                job.next_due = Some(due);
                self.heap.push(Reverse((due, id)));
            }
        }
        self.loaded = false;
        self.reload_daemons_pending = true;
        self.shown_running.clear();
    }
}

/// Give the heap's free pages back to the kernel. A full load of 100,000
/// jobs reads them all (SPI's tuples, the rows, the replaced jobs); that
/// memory is free once the pass's transaction has ended, but malloc keeps
/// it, and the scheduler would carry its largest load's high-water mark.
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; no
    // pointer is passed and none is invalidated.
    unsafe {
        libc::malloc_trim(0);
    }
}
