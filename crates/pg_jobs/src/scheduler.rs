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
//! With nothing due it sleeps with no timeout at all.
//!
//! On a hot standby it runs in *watch mode*: read-only, no jobs, only the
//! daemons declared for standbys (`watch`). When the server is promoted it
//! turns into the above at its next pass: runs the old primary left
//! in flight are marked crashed, schedules resume from now.

use crate::bgw::{self, DynamicWorker, WorkerHandle};
use crate::command_segment::Segment;
use crate::gucs;
use crate::registry::{self, Kind, Outcome, Reservation, SlotRef, State};
use crate::saved_plans;
use crate::schema_version;
use crate::time;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use pg_jobs_core::launcher::ExtPresence;
use pg_jobs_core::overlap::{OnDue, Overlap};
use pg_jobs_core::run_state::RunStatus;
use pg_jobs_core::schedule::{retry_delay, Schedule};
use pgrx::bgworkers::BgWorkerStartTime;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;
/// How long an executor may ignore the cancel at its timeout before it is terminated.
const TIMEOUT_GRACE_MS: i64 = 2_000;
/// Purge history at most this often (only in passes that finished runs).
const PURGE_EVERY: Duration = Duration::from_secs(10);

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_scheduler_main(arg: pg_sys::Datum) {
    bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = registry::claim(me) else {
        return; // reclaimed before we started: someone else has this database
    };
    let db = pg_sys::Oid::from(slot.db);
    // Bookkeeping runs as the bootstrap superuser; jobs never run here.
    unsafe { pg_sys::BackgroundWorkerInitializeConnectionByOid(db, pg_sys::InvalidOid, 0) };
    // A superuser session running SQL in a database users can create objects in.
    bgw::pin_search_path();
    // Every query of this session is meant to be an index scan of a small
    // partial index. On a queue that grows by thousands before autovacuum
    // has analyzed it, the planner's empty-table estimates would pick a
    // full scan and sort per pass instead (measured: 3.7x slower drains).
    unsafe {
        pg_sys::SetConfigOption(
            c"enable_seqscan".as_ptr(),
            c"off".as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        )
    };

    let probe = bgw::in_transaction("pg_jobs scheduler: probing for the extension", || {
        extension_exists().then(|| bgw::database_name(db))
    });
    let Some(db_name) = probe else {
        registry::set_ext(db, ExtPresence::Absent);
        return;
    };
    registry::set_ext(db, ExtPresence::Present);
    log!("pg_jobs scheduler started for database \"{db_name}\"");
    registry::retire_abandoned(db);

    let cx = bgw::IterationContext::new(c"pg_jobs scheduler iteration");
    let mut s = Scheduler {
        me,
        db,
        launched: HashMap::new(),
        segments: HashMap::new(),
        shown_running: std::collections::HashSet::new(),
        jobs: HashMap::new(),
        heap: BinaryHeap::new(),
        loaded: false,
        reboot: registry::take_reboot(db),
        last_purge: None,
        daemons: crate::daemons::Supervisor::new(db),
        was_in_recovery: false,
        vacuumed_at_claims: registry::claims(db),
        prewarmed_for: None,
        parsed: HashMap::new(),
        zones: HashMap::new(),
    };
    loop {
        pg_sys::check_for_interrupts!();
        if bgw::reload_config_if_asked() {
            s.loaded = false; // pg_jobs.timezone may have changed
        }
        if !gucs::enabled() {
            log!("pg_jobs scheduler for database \"{db_name}\" stopping: pg_jobs.enabled is off");
            s.daemons.terminate_all();
            return;
        }
        match cx.run(|| s.pass()) {
            Next::Exit => {
                log!("pg_jobs scheduler for database \"{db_name}\" stopping: the extension was dropped");
                s.daemons.terminate_all();
                // Their runs' history is gone with the extension: nothing
                // would record them. Stop them rather than let them run on.
                registry::terminate_runs_of(db);
                registry::set_ext(db, ExtPresence::Absent);
                return;
            }
            Next::Sleep(timeout) => bgw::wait(timeout),
        }
    }
}

enum Next {
    Exit,
    /// Sleep until woken or this long (`None`: nothing due, no timeout).
    Sleep(Option<Duration>),
}

/// How long before a due instant executors are started ahead of it (a
/// cold executor is ready in well under this on a loaded 2-core machine).
const PREWARM_LEAD_MS: i64 = 300;

/// A job as the scheduler holds it between passes.
struct Job {
    schedule: Schedule,
    /// The schedule's text and time zone, to tell on reload whether it changed.
    key: (String, String),
    tz: TimeZone,
    anchor: Timestamp,
    next_due: Option<Timestamp>,
    /// Who runs it where (role and database OIDs; database 0 if unknown):
    /// what executors to start ahead of its due instant.
    owner: u32,
    datid: u32,
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
    /// `@reboot` jobs are still to run in this server life.
    reboot: bool,
    last_purge: Option<Instant>,
    daemons: crate::daemons::Supervisor,
    /// The last pass ran on a standby (watch mode).
    was_in_recovery: bool,
    /// `registry::claims` when we last vacuumed the run queue.
    vacuumed_at_claims: u64,
    /// The due instant executors were last started ahead of (see prewarm).
    prewarmed_for: Option<Timestamp>,
    /// Parsed schedules and time zones by text, shared by the jobs that
    /// use them (rebuilt at each full load).
    parsed: HashMap<String, Schedule>,
    zones: HashMap<String, TimeZone>,
}

/// Runs taken by executors from the queue between two vacuums of it.
const VACUUM_EVERY_CLAIMS: u64 = 5_000;

/// A queued run picked for an executor.
struct Dispatch {
    run_id: i64,
    command: String,
    slot: SlotRef,
    /// An idle executor of the same database and role takes it.
    warm: bool,
}

/// An executor slot whose outcome was written in this pass.
struct Harvested {
    slot: SlotRef,
    run_id: i64,
    /// The process is gone (free the slot), or lives on in the pool.
    exited: bool,
}

/// What one pass decided, acted on after its transaction commits.
struct PassResult {
    harvested: Vec<Harvested>,
    dispatch: Vec<Dispatch>,
    wake_at: Option<Timestamp>,
    /// Start executors ahead of this due instant (after the dispatch: runs
    /// due now get background worker slots first).
    prewarm_for: Option<Timestamp>,
}

impl Scheduler {
    fn pass(&mut self) -> Next {
        if unsafe { pg_sys::RecoveryInProgress() } {
            return self.watch();
        }
        // Just promoted: everything is read afresh (schedules resume from now).
        let promoted = std::mem::take(&mut self.was_in_recovery);
        registry::set_state(self.me, State::Busy, None);
        self.forget_stopped_executors();
        self.forget_runs_no_executor_holds();
        let changes = registry::take_reload(self.me);
        let reload_all = changes.all_jobs || promoted || !self.loaded;
        let reload_daemons = changes.daemons || changes.all_jobs || promoted;

        let result = bgw::in_transaction("pg_jobs scheduler: pass", || {
            if !extension_exists() {
                return None;
            }
            // Runs reserved behind a slow run go back to the queue (and
            // out to others, below).
            let taken_back =
                registry::take_back_reserved(self.db, registry::RUNNING_VISIBLE_WITHIN_MS * 1000);
            if !taken_back.is_empty() {
                requeue_reserved(&taken_back, false);
            }
            Some(Spi::connect_mut(|client| {
                self.daemons.observe(client, reload_daemons, true);
                let harvested = self.harvest(client);
                self.mark_started_and_crashed(client);
                let now = Timestamp::now();
                let mut wake_at = self.kill_overdue(now);
                if reload_all {
                    refresh_database_names(client);
                    self.load_jobs(client, now, None);
                } else if !changes.jobs.is_empty() {
                    self.load_jobs(client, now, Some(&changes.jobs));
                }
                self.fire_due_jobs(client, now);
                let dispatch = pick_runs(client, self.db);
                if !harvested.is_empty() && self.last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                    purge_history(client);
                    self.last_purge = Some(Instant::now());
                }
                let next_retry = next_not_before(client);
                let next_job = self.heap.peek().map(|Reverse((t, _))| *t);
                // Executors started ahead of the next instant jobs fall due
                // at, when the pool would be cold by then.
                let mut prewarm_for = None;
                if let Some(t) = next_job {
                    match self.prewarm_at(t, now) {
                        Some(at) if at <= now => prewarm_for = Some(t),
                        Some(at) => wake_at = Some(wake_at.map_or(at, |w: Timestamp| w.min(at))),
                        None => {}
                    }
                }
                for t in [next_retry, next_job].into_iter().flatten() {
                    wake_at = Some(wake_at.map_or(t, |w: Timestamp| w.min(t)));
                }
                PassResult {
                    harvested,
                    dispatch,
                    wake_at,
                    prewarm_for,
                }
            }))
        });
        let Some(result) = result else {
            return Next::Exit;
        };

        // The outcomes are committed: the slots can go, and waiters look again.
        let harvested_any = !result.harvested.is_empty();
        if harvested_any {
            registry::broadcast_runs_finished();
        }
        for h in result.harvested {
            self.segments.remove(&h.run_id);
            self.shown_running.remove(&h.run_id);
            if h.exited {
                registry::release(h.slot);
            }
        }
        let mut retry_soon = false;
        for d in result.dispatch {
            if retry_soon {
                // Keep due-time order: once one waits for a worker slot, the later ones wait too.
                registry::release(d.slot);
                bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                    requeue(
                        d.run_id,
                        Some("waiting for an earlier run to get a background worker slot"),
                    )
                });
            } else {
                retry_soon = !self.launch(d);
            }
        }
        if let Some(t) = result.prewarm_for {
            bgw::in_transaction("pg_jobs scheduler: starting executors ahead of due jobs", || {
                self.prewarm(t)
            });
        }
        self.vacuum_queue_after_a_burst();
        let daemon_wake = self.daemons.act(false);
        registry::set_state(self.me, State::Idle, None);

        // Runs handed out or still starting: look again shortly to show
        // them `running` (executors do not wake us when they start).
        let executors = registry::executors_of(self.db);
        let busy = executors.iter().any(|(_, s)| {
            !s.exited && !s.reusable && !s.outcome_ready && !self.shown_running.contains(&s.run_id)
        });
        let mut wake_at = result.wake_at;
        // Runs reserved behind a run in progress: look when that run turns
        // slow, to take them back (the executor's timer wakes us then too;
        // this does not depend on that one wake-up arriving).
        for (_, s) in executors
            .iter()
            .filter(|(_, s)| !s.exited && s.state == State::Running && !s.reserved().is_empty())
        {
            let t = time::from_pg(s.since + registry::RUNNING_VISIBLE_WITHIN_MS * 1000 + 1000);
            wake_at = Some(wake_at.map_or(t, |w: Timestamp| w.min(t)));
        }
        if let Some(t) = daemon_wake {
            let t = time::from_pg(t);
            wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
        }
        if busy {
            let soon =
                Timestamp::now() + jiff::SignedDuration::from_millis(registry::RUNNING_VISIBLE_WITHIN_MS);
            wake_at = Some(wake_at.map_or(soon, |w| w.min(soon)));
        }
        let mut timeout = wake_at.map(|t| {
            let us = t.as_microsecond() - Timestamp::now().as_microsecond();
            // Round up to the latch's whole milliseconds: waking early would
            // just cost a pass (and a whole extra millisecond, the lag).
            // At least 1 ms: a wake time that is already past never makes
            // this a busy loop.
            Duration::from_millis((us.max(0) as u64).div_ceil(1000).max(1))
        });
        if retry_soon {
            // No free background worker slot: nothing would wake us when one frees up.
            timeout = Some(timeout.map_or(Duration::from_secs(1), |t| t.min(Duration::from_secs(1))));
        }
        Next::Sleep(timeout)
    }

    /// Watch mode, on a hot standby: nothing is written and no job runs;
    /// daemons for standbys run. Definitions arrive by replication, which
    /// wakes nobody, so look again each second; the promotion watcher wakes
    /// us when recovery ends.
    fn watch(&mut self) -> Next {
        self.was_in_recovery = true;
        registry::set_state(self.me, State::Busy, None);
        let present = bgw::in_transaction("pg_jobs scheduler: watching daemons", || {
            if !extension_exists() {
                return false;
            }
            Spi::connect_mut(|client| self.daemons.observe(client, true, false));
            true
        });
        if !present {
            return Next::Exit;
        }
        let wake = self.daemons.act(true);
        registry::set_state(self.me, State::Idle, None);
        let mut ms: i64 = 1_000;
        if let Some(t) = wake {
            ms = ms.min((t - unsafe { pg_sys::GetCurrentTimestamp() }) / 1000 + 1);
        }
        Next::Sleep(Some(Duration::from_millis(ms.max(1) as u64)))
    }

    /// Hand `d` to its idle executor, or start one; false (run put back in
    /// the queue) when that is not possible right now.
    fn launch(&mut self, d: Dispatch) -> bool {
        let segment = Segment::new(&d.command);
        if d.warm {
            if registry::hand_over(d.slot, segment.handle()) {
                self.segments.insert(d.run_id, segment);
                return true;
            }
            // It exited in between: start a fresh one next pass.
            bgw::in_transaction("pg_jobs scheduler: requeueing a run", || requeue(d.run_id, None));
            return false;
        }
        registry::set_dsm(d.slot, segment.handle());
        let name = format!("pg_jobs executor for run {}", d.run_id);
        let w = DynamicWorker {
            bgw_type: "pg_jobs executor",
            bgw_name: &name,
            function: "pg_jobs_executor_main",
            start_time: BgWorkerStartTime::RecoveryFinished,
            slot: d.slot,
        };
        match bgw::start_dynamic(&w) {
            Some(handle) => {
                self.launched
                    .insert(d.slot.index, Launched { slot: d.slot, handle });
                self.segments.insert(d.run_id, segment);
                true
            }
            None => {
                registry::release(d.slot);
                // Idle pooled executors hold worker slots: ask one to go.
                let why = if registry::retire_one_idle() {
                    "waiting: an idle executor is giving up its background worker slot"
                } else {
                    "waiting: no free background worker slot (max_worker_processes); retrying"
                };
                bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                    requeue(d.run_id, Some(why))
                });
                log!(
                    "pg_jobs: no free background worker slot for run {}; it waits",
                    d.run_id
                );
                false
            }
        }
    }

    /// Forget executors the postmaster reports stopped (their slots are
    /// harvested separately), and free slots of ones that never started.
    /// Slots reserved by an earlier life of this scheduler (no handle) are
    /// reaped after a timeout.
    fn forget_stopped_executors(&mut self) {
        self.launched.retain(|_, l| {
            if l.handle.status() != bgw::HandleStatus::Stopped {
                return true;
            }
            // The process is gone. If it never claimed its slot no outcome
            // will come: free it (the run is then marked crashed). Decided
            // under the registry lock: a slot it did claim holds its outcome.
            registry::release_unclaimed(l.slot);
            false
        });
        if self.launched.is_empty() {
            registry::reap_unclaimed(Kind::Executor, self.db, UNCLAIMED_SLOT_TIMEOUT_US);
        }
    }

    /// When to start executors ahead of due instant `t`: `PREWARM_LEAD_MS`
    /// before it, if the pool would be cold by then (no idle executor now,
    /// or `t` is further away than idle executors live) — the fork and
    /// connection of a cold executor cost several ms each, paid at the due
    /// instant by every job due then (measured: 50 jobs due at one instant,
    /// p99 start lag 40 ms cold vs 13 ms warm). None: not needed, or done.
    fn prewarm_at(&self, t: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let idle_ms = gucs::executor_idle_timeout_ms() as i64;
        if self.prewarmed_for == Some(t) || idle_ms < 2 * PREWARM_LEAD_MS {
            return None;
        }
        let pooled = registry::executors_of(self.db)
            .iter()
            .any(|(_, s)| s.reusable && !s.exited);
        if pooled && t.as_millisecond() - now.as_millisecond() < idle_ms - PREWARM_LEAD_MS {
            return None;
        }
        Some(t - jiff::SignedDuration::from_millis(PREWARM_LEAD_MS))
    }

    /// Start idle executors for the jobs due at `t` (as many as run as each
    /// role in each database, up to the free executor capacity), so they are
    /// connected and pooled when `t` comes. In a transaction of its own,
    /// after the pass's dispatch (the owner's LOGIN and CONNECT, and that
    /// the database still exists, are checked as for a run).
    fn prewarm(&mut self, t: Timestamp) {
        self.prewarmed_for = Some(t);
        let max = gucs::max_executors();
        let mut free = max.saturating_sub(registry::executor_count());
        if free == 0 {
            return;
        }
        let mut want: HashMap<(u32, u32), usize> = HashMap::new();
        for Reverse((due, id)) in self.heap.iter() {
            if *due != t {
                continue;
            }
            if let Some(job) = self
                .jobs
                .get(id)
                .filter(|j| j.next_due == Some(t) && j.datid != 0)
            {
                *want.entry((job.datid, job.owner)).or_default() += 1;
            }
        }
        for ((db, role), n) in want {
            let (db_oid, role_oid) = (pg_sys::Oid::from(db), pg_sys::Oid::from(role));
            if free == 0 || !crate::executor::may_still_connect(role_oid, db_oid) {
                continue;
            }
            let have = registry::pooled_or_warming(self.db, db, role);
            for _ in 0..n.min(max).saturating_sub(have).min(free) {
                let reservation = Reservation {
                    db,
                    home_db: self.db.to_u32(),
                    role,
                    job_id: 0,
                    run_id: 0,
                    timeout_ms: 0,
                };
                let Some(slot) = registry::reserve(Kind::Executor, reservation) else {
                    return;
                };
                let w = DynamicWorker {
                    bgw_type: "pg_jobs executor",
                    bgw_name: "pg_jobs executor (started ahead of due jobs)",
                    function: "pg_jobs_executor_main",
                    start_time: BgWorkerStartTime::RecoveryFinished,
                    slot,
                };
                let Some(handle) = bgw::start_dynamic(&w) else {
                    registry::release(slot);
                    return; // no free background worker slot: runs start cold
                };
                self.launched.insert(slot.index, Launched { slot, handle });
                free -= 1;
            }
        }
    }

    /// Pooled executors that take runs from the queue themselves leave a
    /// dead row version and index entry per run at the head of the queue,
    /// which every claim and pass then steps over until autovacuum (a
    /// minute or more away) cleans up. After every VACUUM_EVERY_CLAIMS of
    /// them, vacuum the run table here (as psql would run it: outside a
    /// transaction). Measured on a 20,000-run burst: see the README.
    fn vacuum_queue_after_a_burst(&mut self) {
        let claims = registry::claims(self.db);
        if claims.saturating_sub(self.vacuumed_at_claims) < VACUUM_EVERY_CLAIMS {
            return;
        }
        self.vacuumed_at_claims = claims;
        if let crate::sql_runner::Outcome::Failed { message, .. } =
            crate::sql_runner::run("VACUUM (SKIP_LOCKED) jobs.run")
        {
            log!("pg_jobs scheduler: vacuuming the run queue failed: {message}");
        }
    }

    /// A pooled executor that records its run inside the run's own
    /// transaction and takes the next one from the queue never reports the
    /// first to us: drop what we kept for runs no slot holds any more.
    fn forget_runs_no_executor_holds(&mut self) {
        let held: std::collections::HashSet<i64> = registry::executors_of(self.db)
            .iter()
            .map(|(_, s)| s.run_id)
            .collect();
        self.segments.retain(|id, _| held.contains(id));
        self.shown_running.retain(|id| held.contains(id));
    }

    /// Write the outcomes of exited executors, in one statement, and queue
    /// retries. Returns the slots to free once this transaction commits.
    fn harvest(&mut self, client: &mut SpiClient) -> Vec<Harvested> {
        // Exited executors, and pooled ones that finished a run (a pooled
        // one that exited after being harvested carries no outcome; its
        // last run is already terminal and the UPDATE below skips it).
        let exited: Vec<(SlotRef, registry::Slot)> = registry::executors_of(self.db)
            .into_iter()
            .filter(|(_, s)| s.exited || s.outcome_ready)
            .collect();
        if exited.is_empty() {
            return Vec::new();
        }
        // An executor that exited may still hold reserved runs; its slot
        // is freed below, so they go back now.
        for (slot, _) in exited
            .iter()
            .filter(|(_, s)| s.exited && !s.reserved().is_empty())
        {
            let ids = registry::take_reserved(*slot);
            if !ids.is_empty() {
                requeue_reserved(&ids, false);
            }
        }
        let mut ids = Vec::new();
        let mut statuses = Vec::new();
        let mut pids = Vec::new();
        let mut started = Vec::new();
        let mut finished = Vec::new();
        let mut codes: Vec<Option<String>> = Vec::new();
        let mut messages: Vec<Option<String>> = Vec::new();
        // An executor claimed for a run that was never handed to it (an
        // earlier life of this scheduler died in between) says nothing
        // about that run: free its slot, write nothing.
        for (_, s) in exited.iter().filter(|(_, s)| !s.pending_handover) {
            let (status, code, message) = match s.outcome {
                Outcome::Succeeded => (RunStatus::Succeeded, None, None),
                Outcome::Failed => (RunStatus::Failed, Some(s.sqlstate()), Some(s.message())),
                Outcome::TimedOut => (RunStatus::TimedOut, Some(s.sqlstate()), Some(s.message())),
                Outcome::Cancelled => (RunStatus::Cancelled, Some(s.sqlstate()), Some(s.message())),
                Outcome::None if s.killed_for_timeout => (
                    RunStatus::TimedOut,
                    Some("57014".to_owned()),
                    Some(format!(
                        "terminated {} ms after its timeout: it did not stop when cancelled",
                        TIMEOUT_GRACE_MS
                    )),
                ),
                Outcome::None => (
                    RunStatus::Crashed,
                    None,
                    Some(
                        "the executor ended without recording an outcome (terminated or crashed)".to_owned(),
                    ),
                ),
            };
            ids.push(s.run_id);
            statuses.push(status.as_str().to_owned());
            pids.push(s.pid);
            started.push(if s.started_at != 0 {
                s.started_at
            } else {
                s.finished_at
            });
            finished.push(s.finished_at);
            codes.push(code);
            messages.push(message);
        }
        let rows = saved_plans::run(
                client,
                "UPDATE jobs.run r
                    SET status = u.status, pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond',
                        finished_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.finished * INTERVAL '1 microsecond',
                        sqlstate = u.code, message = u.message
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[]),
                                   pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[]),
                                   pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::text[]),
                                   pg_catalog.unnest($7::text[]))
                        AS u(id, status, pid, started, finished, code, message)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING r.id, r.status, r.attempt, r.max_attempts, r.job_id, r.message",
                &[
                    ids.into(),
                    statuses.into(),
                    pids.into(),
                    started.into(),
                    finished.into(),
                    codes.into(),
                    messages.into(),
                ],
            )
            .expect("recording run outcomes");
        let finished: Vec<(i64, String, i32, i32, Option<i64>, Option<String>)> = rows
            .map(|r| {
                (
                    r.get(1).ok().flatten().unwrap_or_default(),
                    r.get(2).ok().flatten().unwrap_or_default(),
                    r.get(3).ok().flatten().unwrap_or(1),
                    r.get(4).ok().flatten().unwrap_or(1),
                    r.get(5).ok().flatten(),
                    r.get(6).ok().flatten(),
                )
            })
            .collect();
        for (id, status, attempt, max_attempts, job_id, message) in finished {
            log_run(id, job_id, &status, message.as_deref());
            let retryable = status.parse::<RunStatus>().is_ok_and(|s| s.is_retryable());
            if retryable && attempt < max_attempts {
                queue_retry(client, id, attempt as u32 + 1);
            }
        }
        // A pooled executor whose outcome is now written may take the next
        // run in this same pass: it is handed over only after this commits
        // (if this transaction fails, the scheduler exits, and the run is
        // later marked crashed and retried).
        for (slot, _) in exited.iter().filter(|(_, s)| !s.exited) {
            registry::mark_harvested(*slot);
        }
        exited
            .into_iter()
            .map(|(slot, s)| Harvested {
                slot,
                run_id: s.run_id,
                exited: s.exited,
            })
            .collect()
    }

    /// Say `running` (with the real start time and pid) for runs whose
    /// executor has started, and `crashed` for runs that are `starting` or
    /// `running` with no executor at all (killed, crashed, server restart).
    fn mark_started_and_crashed(&mut self, client: &mut SpiClient) {
        let slots = registry::executors_of(self.db);
        let (mut ids, mut pids, mut starts) = (Vec::new(), Vec::new(), Vec::new());
        for (_, s) in slots.iter().filter(|(_, s)| {
            !s.exited && s.state == State::Running && !self.shown_running.contains(&s.run_id)
        }) {
            ids.push(s.run_id);
            pids.push(s.pid);
            starts.push(s.started_at);
        }
        // Runs we looked at are shown (or were already): no more passes for them.
        self.shown_running.extend(ids.iter().copied());
        if !ids.is_empty() {
            saved_plans::run(
                    client,
                    "UPDATE jobs.run r SET status = 'running', pid = u.pid,
                            started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond'
                       FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int4[]),
                                       pg_catalog.unnest($3::int8[])) AS u(id, pid, started)
                      WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) 'starting'
                  RETURNING r.id",
                    &[ids.into(), pids.into(), starts.into()],
                )
                .expect("marking runs running")
                .for_each(|r| {
                    if let Ok(Some(id)) = r.get::<i64>(1) {
                        self.shown_running.insert(id);
                    }
                });
        }
        // Runs in flight first, then who holds them: a pooled executor that
        // takes runs from the queue itself registers them before its claim
        // commits, and puts reserved runs back in the queue (locking their
        // rows) before it unregisters them, so any run this snapshot sees
        // in flight is either in the registry below or locked by its
        // executor. Each row's version (xmin) is kept: the run is marked
        // crashed only if it is still that version — not if, say, it went
        // back to the queue and another executor claimed it since.
        let in_flight: Vec<(i64, String)> = saved_plans::run(
            client,
            "SELECT id, xmin::pg_catalog.text FROM jobs.run WHERE status OPERATOR(pg_catalog.=) ANY ('{starting,running}')",
            &[],
        )
        .expect("reading runs in flight")
        .filter_map(|r| Some((r.get::<i64>(1).ok().flatten()?, r.get::<String>(2).ok().flatten()?)))
        .collect();
        // A slot still waiting for a handover from a dead scheduler holds no
        // run; an executor's reserved runs are held until it starts them.
        let live: std::collections::HashSet<i64> = registry::executors_of(self.db)
            .iter()
            .flat_map(|(_, s)| {
                let current = (!s.pending_handover).then_some(s.run_id);
                current.into_iter().chain(s.reserved().iter().copied())
            })
            .collect();
        let (gone, versions): (Vec<i64>, Vec<String>) =
            in_flight.into_iter().filter(|(id, _)| !live.contains(id)).unzip();
        if gone.is_empty() {
            return;
        }
        let crashed = saved_plans::run(
                client,
                "UPDATE jobs.run r SET status = 'crashed', finished_at = pg_catalog.clock_timestamp(),
                        message = 'the executor ended without recording an outcome (terminated, crashed, or the server restarted)'
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[])) AS g(id, version)
                  WHERE r.id OPERATOR(pg_catalog.=) g.id
                    AND r.xmin OPERATOR(pg_catalog.=) g.version::pg_catalog.xid
                    AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING r.id, r.attempt, r.max_attempts, r.job_id",
                &[gone.into(), versions.into()],
            )
            .expect("marking crashed runs");
        let crashed: Vec<(i64, i32, i32, Option<i64>)> = crashed
            .map(|r| {
                (
                    r.get(1).ok().flatten().unwrap_or_default(),
                    r.get(2).ok().flatten().unwrap_or(1),
                    r.get(3).ok().flatten().unwrap_or(1),
                    r.get(4).ok().flatten(),
                )
            })
            .collect();
        for (id, attempt, max_attempts, job_id) in crashed {
            log_run(id, job_id, "crashed", Some("its executor is gone"));
            if attempt < max_attempts {
                queue_retry(client, id, attempt as u32 + 1);
            }
        }
    }

    /// Terminate executors that overran their timeout by the grace period
    /// (they ignored the cancel). Returns when the next one would be due.
    fn kill_overdue(&self, now: Timestamp) -> Option<Timestamp> {
        let now_pg = time::to_pg(now);
        let mut next: Option<Timestamp> = None;
        for (r, s) in registry::executors_of(self.db) {
            if s.exited
                || s.state != State::Running
                || s.timeout_ms <= 0
                || s.started_at == 0
                || s.killed_for_timeout
            {
                continue;
            }
            let deadline = s.started_at + (s.timeout_ms + TIMEOUT_GRACE_MS) * 1000;
            if now_pg >= deadline {
                log!(
                    "pg_jobs: run {} overran its timeout and ignored the cancel; terminating pid {}",
                    s.run_id,
                    s.pid
                );
                registry::kill_for_timeout(r);
            } else {
                let t = time::from_pg(deadline);
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }

    /// (Re)load enabled jobs and their next due times: all of them, or just
    /// `only` (jobs added, changed or removed since the last load). A job
    /// whose schedule and time zone did not change keeps its due time, so a
    /// reload never skips a run that was about to happen.
    fn load_jobs(&mut self, client: &mut SpiClient, now: Timestamp, only: Option<&[i64]>) {
        let started = Instant::now();
        if only.is_none() {
            // Parses shared by this load's jobs only: no growth across reloads.
            self.parsed.clear();
            self.zones.clear();
        }
        let default_tz = gucs::default_timezone();
        // The last due time matters only for one-offs and catch_up jobs:
        // don't look up the history of the others.
        let sql = format!(
            "SELECT j.id, j.schedule, j.timezone, j.catch_up,
                    (EXTRACT(EPOCH FROM j.once_at) * 1000000)::int8,
                    (EXTRACT(EPOCH FROM j.created_at) * 1000000)::int8,
                    CASE WHEN j.catch_up OR j.once_at IS NOT NULL THEN
                      (SELECT (EXTRACT(EPOCH FROM max(r.scheduled_for)) * 1000000)::int8
                         FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id) END,
                    j.owner::pg_catalog.oid, {}
               FROM jobs.job j WHERE j.enabled {}",
            if schema_version::databases_by_oid() {
                "j.datid"
            } else {
                "NULL::pg_catalog.oid"
            },
            if only.is_some() {
                "AND j.id OPERATOR(pg_catalog.=) ANY ($1)"
            } else {
                ""
            }
        );
        let args = match only {
            Some(ids) => vec![ids.to_vec().into()],
            None => vec![],
        };
        let rows = client.select(&sql, None, &args).expect("loading jobs");
        let mut fresh = HashMap::new();
        for row in rows {
            let id: i64 = row.get(1).ok().flatten().unwrap_or_default();
            let text: String = row.get(2).ok().flatten().unwrap_or_default();
            let tz_name: String = row.get(3).ok().flatten().unwrap_or_else(|| default_tz.clone());
            let catch_up: bool = row.get(4).ok().flatten().unwrap_or(false);
            let once_at: Option<i64> = row.get(5).ok().flatten();
            let created: i64 = row.get(6).ok().flatten().unwrap_or_default();
            let last_due: Option<i64> = row.get(7).ok().flatten();
            let owner = row.get::<pg_sys::Oid>(8).ok().flatten().map_or(0, |o| o.to_u32());
            let datid = row.get::<pg_sys::Oid>(9).ok().flatten().map_or(0, |o| o.to_u32());
            let schedule = match once_at {
                Some(us) => Schedule::Once(Timestamp::from_microsecond(us).unwrap_or(now)),
                None => match shared(&mut self.parsed, &text, Schedule::parse) {
                    Ok(s) => s,
                    Err(e) => {
                        warning!("pg_jobs: job {id} has an invalid schedule \"{text}\": {e}");
                        continue;
                    }
                },
            };
            let Ok(tz) = shared(&mut self.zones, &tz_name, TimeZone::get) else {
                warning!("pg_jobs: job {id} has an unknown time zone \"{tz_name}\"");
                continue;
            };
            let anchor = Timestamp::from_microsecond(created).unwrap_or(now);
            let key = (text, tz_name);
            let last_due = last_due.and_then(|us| Timestamp::from_microsecond(us).ok());
            let next_due = match self.jobs.get(&id) {
                Some(old) if old.key == key => old.next_due,
                _ => match &schedule {
                    Schedule::Once(at) => last_due.is_none().then_some(*at),
                    // Once per server start, for jobs that existed when it started.
                    Schedule::Reboot => (self.reboot
                        && created < unsafe { pg_sys::PgStartTime } + time::PG_EPOCH_OFFSET_US)
                        .then_some(now),
                    s => {
                        // Missed runs are not replayed; catch_up runs one now.
                        let missed = catch_up
                            && last_due
                                .and_then(|l| s.next_after(l, &tz, anchor))
                                .is_some_and(|t| t < now);
                        if missed {
                            Some(now)
                        } else {
                            s.next_after(now, &tz, anchor)
                        }
                    }
                },
            };
            fresh.insert(
                id,
                Job {
                    schedule,
                    key,
                    tz,
                    anchor,
                    next_due,
                    owner,
                    datid,
                },
            );
        }
        match only {
            Some(ids) => {
                for id in ids {
                    let old_due = self.jobs.remove(id).and_then(|j| j.next_due);
                    if let Some(job) = fresh.remove(id) {
                        // An unchanged due time is in the heap already.
                        if let Some(t) = job.next_due.filter(|t| Some(*t) != old_due) {
                            self.heap.push(Reverse((t, *id)));
                        }
                        self.jobs.insert(*id, job);
                    }
                }
                // Replaced due times stay in the heap as stale entries
                // (skipped when popped); rebuild before they pile up.
                if self.heap.len() > 2 * self.jobs.len() + 1024 {
                    self.rebuild_heap();
                }
            }
            None => {
                self.jobs = fresh;
                self.reboot = false;
                self.rebuild_heap();
                self.loaded = true;
                let took = started.elapsed();
                if took > Duration::from_millis(100) || self.jobs.len() >= 10_000 {
                    log!(
                        "pg_jobs: loaded {} jobs in {} ms",
                        self.jobs.len(),
                        took.as_millis()
                    );
                }
            }
        }
    }

    fn rebuild_heap(&mut self) {
        self.heap = self
            .jobs
            .iter()
            .filter_map(|(id, j)| j.next_due.map(|t| Reverse((t, *id))))
            .collect();
    }

    /// Queue (or skip) a run for every job due by `now`, then schedule its
    /// next due time. A job that fell behind moves to its next due time after
    /// now: missed runs are not replayed.
    fn fire_due_jobs(&mut self, client: &mut SpiClient, now: Timestamp) {
        let mut due_now = Vec::new();
        while let Some(Reverse((due, id))) = self.heap.peek().copied() {
            if due > now {
                break;
            }
            self.heap.pop();
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            if job.next_due != Some(due) {
                continue; // stale entry
            }
            due_now.push((id, due));
            let mut next = job.schedule.next_after(due, &job.tz, job.anchor);
            if next.is_some_and(|t| t <= now) {
                next = job.schedule.next_after(now, &job.tz, job.anchor);
            }
            job.next_due = next;
            if let Some(t) = next {
                self.heap.push(Reverse((t, id)));
            }
        }
        fire(client, &due_now);
    }
}

fn extension_exists() -> bool {
    unsafe { pg_sys::get_extension_oid(c"pg_jobs".as_ptr(), true) != pg_sys::InvalidOid }
}

/// The value `make` gives for `key`, made once and shared by every job
/// that names it (a clone is a reference count).
fn shared<T: Clone, E>(
    cache: &mut HashMap<String, T>,
    key: &str,
    make: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, E> {
    if let Some(v) = cache.get(key) {
        return Ok(v.clone());
    }
    let v = make(key)?;
    cache.insert(key.to_owned(), v.clone());
    Ok(v)
}

/// Show the current names of renamed databases in job and daemon
/// definitions (they are kept and dispatched by OID; the name is for people).
/// Only on a full reload: a rename restarts the scheduler of the renamed
/// database, and the others catch up at their next full reload.
fn refresh_database_names(client: &mut SpiClient) {
    if !schema_version::databases_by_oid() {
        return;
    }
    for table in ["jobs.job", "jobs.daemon"] {
        client
            .update(
                &format!(
                    "UPDATE {table} t SET database = d.datname FROM pg_catalog.pg_database d
                      WHERE d.oid OPERATOR(pg_catalog.=) t.datid AND t.database OPERATOR(pg_catalog.<>) d.datname"
                ),
                None,
                &[],
            )
            .expect("refreshing database names");
    }
}

/// A job came due at `due`: apply its overlap policy.
/// Queue a run of each job in `due` (job id, due instant), in that order,
/// or record it skipped (overlap `skip`), or nothing if one is already
/// queued (overlap `queue`): two statements for all of them, however many
/// fall due at once.
fn fire(client: &mut SpiClient, due: &[(i64, Timestamp)]) {
    if due.is_empty() {
        return;
    }
    let ids: Vec<i64> = due.iter().map(|(id, _)| *id).collect();
    let state: std::collections::HashMap<i64, (Overlap, u32, u32)> = saved_plans::run(
        client,
        "SELECT j.id, j.overlap,
                (SELECT count(*) FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id
                    AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}'))::int4,
                (SELECT count(*) FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id
                    AND r.status OPERATOR(pg_catalog.=) 'queued')::int4
           FROM jobs.job j WHERE j.id OPERATOR(pg_catalog.=) ANY ($1)",
        &[ids.into()],
    )
    .expect("reading due jobs")
    .filter_map(|row| {
        let id = row.get::<i64>(1).ok().flatten()?;
        let overlap = row
            .get::<String>(2)
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok())
            .unwrap_or(Overlap::Skip);
        let active = row.get::<i32>(3).ok().flatten().unwrap_or(0) as u32;
        let pending = row.get::<i32>(4).ok().flatten().unwrap_or(0) as u32;
        Some((id, (overlap, active, pending)))
    })
    .collect();
    let (mut ids, mut dues, mut statuses, mut messages) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, at) in due {
        let Some((overlap, active, pending)) = state.get(id) else {
            continue; // dropped meanwhile
        };
        let (status, message) = match overlap.on_due(*active, *pending) {
            OnDue::AlreadyPending => continue,
            OnDue::Enqueue => ("queued", None),
            OnDue::Skip => (
                "skipped",
                Some("skipped: the previous run was still going (overlap skip)".to_owned()),
            ),
        };
        ids.push(*id);
        dues.push(at.as_microsecond());
        statuses.push(status.to_owned());
        messages.push(message);
    }
    if ids.is_empty() {
        return;
    }
    // The run records the database's current name (it may have been renamed).
    let (datid_col, database) = if schema_version::databases_by_oid() {
        (
            ", datid",
            "COALESCE((SELECT d.datname FROM pg_catalog.pg_database d
                        WHERE d.oid OPERATOR(pg_catalog.=) j.datid), j.database), j.datid",
        )
    } else {
        ("", "j.database")
    };
    saved_plans::run_built(
        client,
        &format!(
            "INSERT INTO jobs.run (job_id, owner, command, database{datid_col}, max_attempts, timeout,
                                   retry_backoff, scheduled_for, status, message, finished_at)
             SELECT j.id, j.owner, j.command, {database}, j.max_attempts, j.timeout, j.retry_backoff,
                    TIMESTAMPTZ 'epoch' + u.due * INTERVAL '1 microsecond',
                    u.status, u.message, CASE WHEN u.status OPERATOR(pg_catalog.=) 'skipped' THEN pg_catalog.now() END
               FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int8[]),
                               pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]))
                      WITH ORDINALITY AS u(id, due, status, message, n)
               JOIN jobs.job j ON j.id OPERATOR(pg_catalog.=) u.id
              ORDER BY u.n"
        ),
        &[ids.into(), dues.into(), statuses.into(), messages.into()],
    )
    .expect("queueing due runs");
}

/// Queue attempt `attempt` of run `failed`, after its backoff (with jitter).
fn queue_retry(client: &mut SpiClient, failed: i64, attempt: u32) {
    let backoff_ms: i64 = saved_plans::run(
            client,
            "SELECT (EXTRACT(EPOCH FROM retry_backoff) * 1000)::int8 FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1",
            &[failed.into()],
        )
        .ok()
        .and_then(|t| t.into_iter().next().and_then(|r| r.get::<i64>(1).ok().flatten()))
        .unwrap_or(10_000);
    let jitter = unsafe { pg_sys::pg_prng_double(&raw mut pg_sys::pg_global_prng_state) };
    let delay = retry_delay(jiff::SignedDuration::from_millis(backoff_ms), attempt, jitter);
    saved_plans::run_built(
            client,
            &format!("INSERT INTO jobs.run (job_id, owner, command, database{datid}, attempt, max_attempts, timeout,
                                   retry_backoff, scheduled_for, not_before)
             SELECT job_id, owner, command, database{datid}, $2, max_attempts, timeout, retry_backoff, scheduled_for,
                    pg_catalog.clock_timestamp() + $3 * INTERVAL '1 millisecond'
               FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1",
                datid = if schema_version::databases_by_oid() { ", datid" } else { "" }),
            &[failed.into(), (attempt as i32).into(), (delay.as_millis() as i64).into()],
        )
        .expect("queueing a retry");
}

pub(crate) fn log_run(id: i64, job_id: Option<i64>, status: &str, message: Option<&str>) {
    let what = match job_id {
        Some(j) => format!("run {id} of job {j}"),
        None => format!("run {id}"),
    };
    match (gucs::log_runs(), status) {
        (gucs::LogRuns::Off, _) | (gucs::LogRuns::Errors, "succeeded") => {}
        _ => log!(
            "pg_jobs: {what} {status}{}",
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ),
    }
}

/// Pick queued runs, earliest due first, while executors are free; mark
/// each `starting` and reserve its registry slot. A run of a job whose
/// overlap policy forbids parallel runs waits while another is going. Runs
/// whose owner cannot log in to the target database fail here with a clear
/// message instead of killing an executor at connection time.
fn pick_runs(client: &mut SpiClient, db: pg_sys::Oid) -> Vec<Dispatch> {
    let free = gucs::max_executors().saturating_sub(registry::executor_count());
    if free == 0 {
        return Vec::new(); // an executor's exit wakes us
    }
    // By OID (0.2.0 on; rows queued by a session that still saw 0.1.0 have
    // none), else by name (a database not yet updated from 0.1.0).
    let database_match = if schema_version::databases_by_oid() {
        "d.oid OPERATOR(pg_catalog.=) r.datid
                         OR (r.datid IS NULL AND d.datname OPERATOR(pg_catalog.=) r.database)"
    } else {
        "d.datname OPERATOR(pg_catalog.=) r.database"
    };
    // FOR UPDATE SKIP LOCKED: a pooled executor claiming runs from the
    // queue itself (see executor::claim_next) never gets the same one.
    let queued = saved_plans::run_built(
            client,
            &format!("SELECT r.id, r.owner::pg_catalog.oid, d.oid, r.command, ro.rolcanlogin,
                    CASE WHEN d.oid IS NOT NULL AND ro.oid IS NOT NULL
                         THEN pg_catalog.has_database_privilege(ro.oid, d.oid, 'CONNECT') END,
                    (EXTRACT(EPOCH FROM r.timeout) * 1000)::int8, r.job_id, r.database::text
               FROM jobs.run r
               LEFT JOIN pg_catalog.pg_roles ro ON ro.oid OPERATOR(pg_catalog.=) r.owner::pg_catalog.oid
               LEFT JOIN pg_catalog.pg_database d ON {database_match}
               LEFT JOIN jobs.job j ON j.id OPERATOR(pg_catalog.=) r.job_id
              WHERE r.status OPERATOR(pg_catalog.=) 'queued'
                AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
                AND (j.overlap IS NULL OR j.overlap OPERATOR(pg_catalog.=) 'allow' OR NOT EXISTS (
                       SELECT 1 FROM jobs.run o WHERE o.job_id OPERATOR(pg_catalog.=) r.job_id
                          AND o.status OPERATOR(pg_catalog.=) ANY ('{{starting,running}}')))
              ORDER BY r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id
              LIMIT $1
                FOR UPDATE OF r SKIP LOCKED"),
            &[(free as i64).into()],
        )
        .expect("reading queued runs");
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        i64,
        pg_sys::Oid,
        Option<pg_sys::Oid>,
        String,
        Option<bool>,
        Option<bool>,
        Option<i64>,
        Option<i64>,
        String,
    )> = queued
        .map(|r| {
            (
                r.get(1).ok().flatten().unwrap_or_default(),
                r.get(2).ok().flatten().unwrap_or(pg_sys::InvalidOid),
                r.get(3).ok().flatten(),
                r.get(4).ok().flatten().unwrap_or_default(),
                r.get(5).ok().flatten(),
                r.get(6).ok().flatten(),
                r.get(7).ok().flatten(),
                r.get(8).ok().flatten(),
                r.get(9).ok().flatten().unwrap_or_default(),
            )
        })
        .collect();
    let mut out = Vec::new();
    for (run_id, role, target, command, can_login, can_connect, timeout_ms, job_id, db_name) in rows {
        let refusal = match (target, can_login, can_connect) {
            (None, _, _) => Some(("3D000", format!("database \"{db_name}\" no longer exists"))),
            (_, None, _) => Some(("42704", "the run's owner role no longer exists".to_owned())),
            (_, Some(false), _) => Some((
                "28000",
                "the run's owner role is not permitted to log in (NOLOGIN)".to_owned(),
            )),
            (_, _, Some(false)) => Some((
                "42501",
                format!("the run's owner role lacks CONNECT privilege on database \"{db_name}\""),
            )),
            _ => None,
        };
        if let Some((code, message)) = refusal {
            client
                .update(
                    "UPDATE jobs.run SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
                            sqlstate = $2, message = $3
                      WHERE id OPERATOR(pg_catalog.=) $1",
                    None,
                    &[run_id.into(), code.into(), message.clone().into()],
                )
                .expect("failing a run");
            log_run(run_id, job_id, "failed", Some(&message));
            continue;
        }
        let reservation = Reservation {
            db: target.unwrap_or(db).to_u32(),
            home_db: db.to_u32(),
            role: role.to_u32(),
            job_id: job_id.unwrap_or(0),
            run_id,
            timeout_ms: timeout_ms.unwrap_or(0),
        };
        let idle = registry::take_idle(
            db,
            reservation.db,
            reservation.role,
            run_id,
            reservation.job_id,
            reservation.timeout_ms,
        );
        let warm = idle.is_some();
        let Some(slot) = idle.or_else(|| registry::reserve(Kind::Executor, reservation)) else {
            break; // registry full; an exit wakes us
        };
        out.push(Dispatch {
            run_id,
            command,
            slot,
            warm,
        });
    }
    if !out.is_empty() {
        let ids: Vec<i64> = out.iter().map(|d| d.run_id).collect();
        saved_plans::run(
                client,
                "UPDATE jobs.run SET status = 'starting', message = NULL WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
                &[ids.into()],
            )
            .expect("marking runs starting");
    }
    out
}

/// The earliest moment a queued run's backoff ends.
fn next_not_before(client: &mut SpiClient) -> Option<Timestamp> {
    saved_plans::run(
        client,
        // Future ones only: a run already due waits for an executor (whose
        // exit or return to the pool wakes us), not for the clock; a past
        // time here would make the scheduler spin.
        "SELECT (EXTRACT(EPOCH FROM min(not_before)) * 1000000)::int8 FROM jobs.run
              WHERE status OPERATOR(pg_catalog.=) 'queued' AND not_before IS NOT NULL
                AND not_before OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
        &[],
    )
    .ok()
    .and_then(|t| t.into_iter().next().and_then(|r| r.get::<i64>(1).ok().flatten()))
    .and_then(|us| Timestamp::from_microsecond(us).ok())
}

/// Delete finished runs older than `pg_jobs.history_retention`, and beyond
/// `pg_jobs.history_max_runs_per_job` per job, in bounded batches, with
/// their kept rows (no foreign key does that since 0.3.0).
fn purge_history(client: &mut SpiClient) {
    let retention_s = gucs::history_retention_s();
    let per_job = gucs::history_max_runs_per_job();
    client
        .update(
            "WITH gone AS (
               DELETE FROM jobs.run WHERE id OPERATOR(pg_catalog.=) ANY (ARRAY(
                 SELECT id FROM jobs.run
                  WHERE finished_at < pg_catalog.now() - $1 * INTERVAL '1 second'
                    AND status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running}')
                  LIMIT 10000))
               RETURNING id)
             DELETE FROM jobs.run_result WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM gone))",
            None,
            &[(retention_s as i64).into()],
        )
        .expect("purging old runs");
    // Rows of runs deleted by hand (a superuser clearing old history with
    // DELETE FROM jobs.run): those below the oldest run left.
    saved_plans::run(
        client,
        "DELETE FROM jobs.run_result
          WHERE run_id OPERATOR(pg_catalog.<) COALESCE((SELECT pg_catalog.min(id) FROM jobs.run), 9223372036854775807)",
        &[],
    )
    .expect("purging rows of deleted runs");
    if per_job > 0 {
        client
            .update(
                "WITH gone AS (
                   DELETE FROM jobs.run WHERE id OPERATOR(pg_catalog.=) ANY (ARRAY(
                     SELECT id FROM (
                       SELECT id, pg_catalog.row_number() OVER (PARTITION BY job_id ORDER BY id DESC) AS n
                         FROM jobs.run
                        WHERE job_id IS NOT NULL AND status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running}')) k
                      WHERE k.n OPERATOR(pg_catalog.>) $1
                      LIMIT 10000))
                   RETURNING id)
                 DELETE FROM jobs.run_result WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM gone))",
                None,
                &[(per_job as i64).into()],
            )
            .expect("purging runs beyond the per-job bound");
    }
}

/// Runs an executor reserved and did not start go back to the queue, as if
/// never taken (same attempt, no message). `only_mine`: only rows the
/// calling executor claimed (its pid).
pub(crate) fn requeue_reserved(ids: &[i64], only_mine: bool) {
    Spi::connect_mut(|client| {
        saved_plans::run(
            client,
            "UPDATE jobs.run SET status = 'queued', pid = NULL
              WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'starting'
                AND (NOT $2 OR pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid())",
            &[ids.to_vec().into(), only_mine.into()],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error!("pg_jobs: cannot requeue reserved runs: {e}"));
}

fn requeue(run_id: i64, why: Option<&str>) {
    Spi::connect_mut(|client| {
        client
            .update(
                "UPDATE jobs.run SET status = 'queued', message = $2
                  WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'starting'",
                None,
                &[run_id.into(), why.into()],
            )
            .expect("requeueing a run");
    });
}
