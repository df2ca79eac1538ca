//! The executor: a dynamic worker that runs runs, one at a time.
//!
//! Its scheduler reserves a registry slot for it and puts the command in a
//! dynamic shared memory segment. The executor reads the command, connects
//! to the run's database **as the run's owner, by role OID** (so the command
//! has exactly the owner's privileges and per-role settings), runs it like
//! psql would, and writes the outcome into its slot; the scheduler writes
//! those outcomes to the history in batches (the run may be in another
//! database than the history: `database =>` jobs). Two exceptions, both in
//! the history's own database: a single-transaction command's success is
//! recorded inside that transaction (exactly once), and a pooled executor
//! that just did so takes the next runs of its role from the queue itself:
//! after a quick run, up to `RESERVE_MAX` at once, the rest reserved in its
//! registry slot to run next (the scheduler takes them back if the run in
//! front turns out slow).
//!
//! A timeout is armed as PostgreSQL's statement timeout over the whole
//! command; the scheduler terminates an executor that ignores the cancel.
//! Never restarted by the postmaster: if it dies, the scheduler records
//! the run as crashed (or timed out, if it killed it for that).

use crate::command_segment::read_command;
use crate::registry::{self, Outcome, SlotRef};
use crate::sql_runner;
use pgrx::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// What pgrx does not bind: `utils/timeout.h`, and two of the resets
/// `DISCARD ALL` makes (`commands/async.h`, `commands/sequence.h`).
mod ffi {
    /// `TimeoutId.STATEMENT_TIMEOUT` in PostgreSQL 15.
    pub const STATEMENT_TIMEOUT: i32 = 3;
    /// `TimeoutId.USER_TIMEOUT`: the first one an extension may register.
    pub const USER_TIMEOUT: i32 = 12;
    unsafe extern "C-unwind" {
        pub fn RegisterTimeout(id: i32, handler: extern "C" fn()) -> i32;
        pub fn enable_timeout_after(id: i32, delay_ms: i32);
        pub fn disable_timeout(id: i32, keep_indicator: bool);
        pub fn Async_UnlistenAll();
        pub fn ResetSequenceCaches();
    }
    unsafe extern "C" {
        /// Called from a signal handler, so not through pgrx's guarded
        /// binding (SetLatch is async-signal-safe).
        #[link_name = "SetLatch"]
        pub fn set_latch_from_signal_handler(latch: *mut std::ffi::c_void);
    }
}

/// The registered "this run is not short" timeout, and the latch of the
/// scheduler to wake when it fires (see [`wake_scheduler_for_slow_run`]).
static SLOW_RUN_TIMEOUT: AtomicI32 = AtomicI32::new(-1);
static SCHEDULER_LATCH: AtomicUsize = AtomicUsize::new(0);

/// Timeout handler (in SIGALRM context: no allocation, no locks): the run
/// has gone on for `RUNNING_VISIBLE_WITHIN_MS`. Runs an executor took from
/// the queue itself say `starting` until the scheduler shows them
/// `running`, and the runs it reserved behind this one would wait for it:
/// wake the scheduler, which does both. A short run never gets here, so a
/// burst of them costs the scheduler no passes.
extern "C" fn wake_scheduler_for_slow_run() {
    let latch = SCHEDULER_LATCH.load(Ordering::Relaxed);
    if latch != 0 {
        // SAFETY: a latch in PGPROC (shared memory, valid for the server's
        // life); SetLatch is safe in a signal handler.
        unsafe { ffi::set_latch_from_signal_handler(latch as *mut std::ffi::c_void) };
    }
}

/// A run taken from the queue by this executor, not started yet.
struct Claimed {
    run_id: i64,
    /// The scheduled job it is a run of (0: submitted).
    job_id: i64,
    command: String,
    timeout_ms: i64,
}

impl Claimed {
    /// From a claim's `RETURNING id, command, timeout in ms, job id (0)`.
    fn from_row(r: &pgrx::spi::SpiHeapTupleData) -> Claimed {
        Claimed {
            run_id: r.get::<i64>(1).ok().flatten().unwrap_or_default(),
            command: r.get::<String>(2).ok().flatten().unwrap_or_default(),
            timeout_ms: r.get::<i64>(3).ok().flatten().unwrap_or(0),
            job_id: r.get::<i64>(4).ok().flatten().unwrap_or(0),
        }
    }
}

/// A run this quick (wall time) lets the next claim take a batch.
const QUICK_RUN_MS: u128 = 10;

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_executor_main(arg: pg_sys::Datum) {
    crate::bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = registry::claim(me) else {
        return;
    };
    // No run: started ahead of an instant jobs fall due at, to be in the
    // pool by then (see the scheduler's prewarm).
    let prewarm = slot.run_id == 0;
    let mut next_command = None;
    if !prewarm {
        let Some(command) = read_command(slot.dsm) else {
            registry::record_outcome(me, Outcome::Failed, "55000", crate::command_segment::COMMAND_GONE);
            return;
        };
        next_command = Some(command);
    }
    let (db, role) = (pg_sys::Oid::from(slot.db), pg_sys::Oid::from(slot.role));
    unsafe { pg_sys::BackgroundWorkerInitializeConnectionByOid(db, role, 0) };
    let id = unsafe { ffi::RegisterTimeout(ffi::USER_TIMEOUT, wake_scheduler_for_slow_run) };
    SLOW_RUN_TIMEOUT.store(id, Ordering::Relaxed);
    if prewarm {
        if slot.db == slot.home_db {
            get_ready(role, db);
        }
        registry::set_pooled(me);
    }

    // The warm pool: after each run, reset the session and take the next
    // run: one this executor reserved, or a batch from the queue, or one
    // the scheduler hands over within pg_jobs.executor_idle_timeout; then
    // exit.
    let mut reserved: VecDeque<Claimed> = VecDeque::new();
    loop {
        let command = match next_command.take() {
            Some(c) => c,
            None => {
                unsafe { pg_sys::pgstat_report_stat(true) };
                let Some(dsm) = wait_for_next_run(me) else {
                    return;
                };
                let Some(c) = read_command(dsm) else {
                    registry::record_outcome(
                        me,
                        Outcome::Failed,
                        "55000",
                        crate::command_segment::COMMAND_GONE,
                    );
                    return;
                };
                c
            }
        };
        let started = std::time::Instant::now();
        let recorded = run_one(me, &command);
        let quick = started.elapsed().as_millis() < QUICK_RUN_MS;
        if recorded {
            // Its record committed with it: nothing for the scheduler to
            // write. Waiters can look now.
            registry::broadcast_runs_finished();
        }
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null()) };
        next_command = between_runs(me, db, role, recorded, quick, &mut reserved);
        if next_command.is_none() {
            // Now idle, any reserved runs back in the queue (committed):
            // the scheduler records our run if it was not recorded in its
            // own transaction, dispatches what we gave back, and pools us.
            registry::finish_run(me);
        }
    }
}

/// An executor started ahead of a due instant plans what its first run and
/// claim will run, and so loads the catalog entries they read, while there
/// is time: a new backend's first statements on pg_jobs' tables cost it
/// milliseconds, which the runs due at that instant would otherwise wait.
/// Nothing is written (no run has id 0; a claim of 0 runs takes none).
fn get_ready(role: pg_sys::Oid, db: pg_sys::Oid) {
    crate::bgw::in_transaction("pg_jobs executor: getting ready", || {
        if !crate::schema_version::databases_by_oid() {
            return;
        }
        crate::bgw::as_superuser(|| {
            Spi::connect_mut(|c| claim_batch(c, role, db, 0).map(|_| ()))
                .unwrap_or_else(|e| error!("pg_jobs executor: cannot get ready: {e}"));
            mark_succeeded(0, false);
        })
    });
}

/// Between two runs, in one short transaction: reset the session as
/// `DISCARD ALL` does, then take the next run — the next one reserved, or
/// (after a run recorded in its own transaction) the head of the queue.
/// After a run the scheduler must record (it failed, or committed on its
/// own), reserved runs go back to the queue and `None` lets the scheduler
/// harvest first.
fn between_runs(
    me: SlotRef,
    db: pg_sys::Oid,
    role: pg_sys::Oid,
    recorded: bool,
    quick: bool,
    reserved: &mut VecDeque<Claimed>,
) -> Option<String> {
    unsafe {
        // A jobs.cancel that reached us after the command ended is moot;
        // left pending it would fail our own transaction below.
        pg_sys::QueryCancelPending = 0;
        // Our own transaction is READ COMMITTED and read-write whatever the
        // last command made of the session's defaults (SET SESSION
        // CHARACTERISTICS, its role's default_transaction_isolation); the
        // reset inside then restores the session's defaults for the next.
        own_transaction_characteristics();
    }
    crate::bgw::in_transaction_flushing("pg_jobs executor: between runs", false, || {
        unsafe { reset_session() };
        if !recorded || registry::retire_requested(me) {
            give_back(me, reserved);
            return None;
        }
        while let Some(next) = reserved.pop_front() {
            if registry::start_reserved(me, next.run_id, next.job_id, next.timeout_ms) {
                return Some(next.command);
            }
            // Taken back by the scheduler or jobs.cancel.
        }
        let batch = if quick { registry::RESERVE_MAX } else { 1 };
        let mut claimed = claim_next(me, db, role, batch)?;
        let first = claimed.remove(0);
        reserved.extend(claimed);
        Some(first.command)
    })
}

/// The next transaction pg_jobs itself starts in this session is READ
/// COMMITTED, read-write and not deferrable.
unsafe fn own_transaction_characteristics() {
    unsafe {
        pg_sys::DefaultXactIsoLevel = pg_sys::XACT_READ_COMMITTED as i32;
        pg_sys::DefaultXactReadOnly = false;
        pg_sys::DefaultXactDeferrable = false;
    }
}

/// Everything `DISCARD ALL` resets, by the same calls (`DiscardAll()` in
/// `commands/discard.c`), less `ResetPlanCache()`: cached plans are not
/// session state a run can see (they are re-planned whenever what they
/// depend on changes), and dropping them made every run re-plan pg_jobs'
/// own statements too (measured with perf: a fifth of all CPU in a burst).
/// Nothing of one run's session — settings, SET ROLE/SESSION
/// AUTHORIZATION, cursors, prepared statements, LISTEN, advisory locks,
/// temp tables, sequence caches — reaches the next. In a transaction.
unsafe fn reset_session() {
    unsafe {
        pg_sys::PortalHashTableDeleteAll();
        pg_sys::SetPGVariable(c"session_authorization".as_ptr(), std::ptr::null_mut(), false);
        pg_sys::ResetAllOptions();
        pg_sys::DropAllPreparedStatements();
        ffi::Async_UnlistenAll();
        pg_sys::LockReleaseAll(pg_sys::USER_LOCKMETHOD as _, true);
        pg_sys::ResetTempTableNamespace();
        ffi::ResetSequenceCaches();
    }
}

/// Put the runs this executor reserved back in the queue (in a
/// transaction). Their rows are requeued (and so locked) before they leave
/// the registry: a crash sweep that no longer finds them held waits for
/// this transaction and then sees them queued. Only rows still ours (our
/// pid, `starting`): the scheduler may have taken some back meanwhile, and
/// another executor claimed them since.
fn give_back(me: SlotRef, reserved: &mut VecDeque<Claimed>) {
    reserved.clear();
    let ids = registry::reserved(me);
    if !ids.is_empty() {
        crate::bgw::as_superuser(|| crate::scheduler::requeue_reserved(&ids, true));
        registry::take_reserved(me);
    }
}

/// Take runs from the head of the queue: up to `batch` consecutive runs of
/// our database and role (a scheduled job's run only when its overlap
/// policy lets it start now), or else the head alone if it is ours. The head only: priority and due
/// order stay global; when the head is another role's, the scheduler
/// dispatches it. Re-checks that the role may still log in and connect, as
/// the scheduler does. The first run is this executor's current run, the
/// rest are reserved for it in the registry (`jobs.run` says `starting`).
/// The claim commits with `synchronous_commit = off`: if the server
/// crashes before it is flushed, the runs are simply still queued.
fn claim_next(me: SlotRef, db: pg_sys::Oid, role: pg_sys::Oid, batch: usize) -> Option<Vec<Claimed>> {
    if !crate::schema_version::databases_by_oid() || !may_still_connect(role, db) {
        return None; // the scheduler fails its runs with the reason
    }
    crate::bgw::as_superuser(|| {
        // SET LOCAL: for this claim's commit only, never the command's.
        unsafe {
            pg_sys::set_config_option(
                c"synchronous_commit".as_ptr(),
                c"off".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_LOCAL,
                true,
                0,
                false,
            )
        };
        let claimed = Spi::connect_mut(|c| {
            if batch > 1 {
                let runs = claim_batch(c, role, db, batch)?;
                if !runs.is_empty() {
                    return Ok(runs);
                }
            }
            claim_head(c, role, db)
        })
        .unwrap_or_else(|e| error!("pg_jobs executor: cannot take the next run: {e}"));
        let first = claimed.first()?;
        let (run_id, timeout_ms, job_id) = (first.run_id, first.timeout_ms, first.job_id);
        let more: Vec<i64> = claimed[1..].iter().map(|c| c.run_id).collect();
        // Held in the registry before the claim commits (see self_claim);
        // if we were told to retire meanwhile, the claim rolls back.
        if !registry::self_claim(me, run_id, job_id, timeout_ms, &more) {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN,
                "pg_jobs executor: asked to exit while taking a run"
            );
        }
        Some(claimed)
    })
}

/// Up to `batch` runs of ours from the head of the queue, in queue order,
/// marked `starting`; none if the head is not one of them. A scheduled
/// job's run counts as ours only if no other run of that job is queued or
/// going (unless the job allows overlap): then no other claimer, which
/// cannot see our uncommitted claim, can take a second run of that job.
fn claim_batch(
    c: &mut pgrx::spi::SpiClient<'_>,
    role: pg_sys::Oid,
    db: pg_sys::Oid,
    batch: usize,
) -> Result<Vec<Claimed>, pgrx::spi::SpiError> {
    // Lock the head rows (others skip them), then keep the leading ones
    // that are ours: the first run of another role, or of a job that must
    // wait, ends the batch.
    let head = crate::saved_plans::run(
        c,
        "SELECT r.id, (r.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                       AND r.datid OPERATOR(pg_catalog.=) $2
                       AND (r.job_id IS NULL OR NOT EXISTS (
                             SELECT 1 FROM jobs.job j
                              WHERE j.id OPERATOR(pg_catalog.=) r.job_id
                                AND j.overlap OPERATOR(pg_catalog.<>) 'allow'
                                AND EXISTS (SELECT 1 FROM jobs.run o
                                             WHERE o.job_id OPERATOR(pg_catalog.=) r.job_id
                                               AND o.id OPERATOR(pg_catalog.<>) r.id
                                               AND o.status OPERATOR(pg_catalog.=) ANY ('{queued,starting,running}')))))
           FROM jobs.run r
          WHERE r.status OPERATOR(pg_catalog.=) 'queued'
            AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
          ORDER BY r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id
          LIMIT $3
            FOR UPDATE SKIP LOCKED",
        &[role.into(), db.into(), (batch as i64).into()],
    )?;
    let ids: Vec<i64> = head
        .into_iter()
        .map(|r| {
            (
                r.get::<i64>(1).ok().flatten().unwrap_or_default(),
                r.get::<bool>(2).ok().flatten().unwrap_or(false),
            )
        })
        .take_while(|&(_, mine)| mine)
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = crate::saved_plans::run(
        c,
        "UPDATE jobs.run SET status = 'starting', pid = pg_catalog.pg_backend_pid(), message = NULL
          WHERE id OPERATOR(pg_catalog.=) ANY ($1)
      RETURNING id, command, (EXTRACT(EPOCH FROM timeout) * 1000)::int8, COALESCE(job_id, 0)",
        &[ids.clone().into()],
    )?;
    let mut runs: Vec<Claimed> = rows.into_iter().map(|r| Claimed::from_row(&r)).collect();
    runs.sort_by_key(|c| ids.iter().position(|&id| id == c.run_id));
    Ok(runs)
}

/// The head of the queue alone, if it is ours, marked `running`; returns
/// it with its job id (0 for a submitted run).
fn claim_head(
    c: &mut pgrx::spi::SpiClient<'_>,
    role: pg_sys::Oid,
    db: pg_sys::Oid,
) -> Result<Vec<Claimed>, pgrx::spi::SpiError> {
    let rows = crate::saved_plans::run(
        c,
        "WITH head AS (
           SELECT r.id, r.owner, r.datid, r.job_id
             FROM jobs.run r
            WHERE r.status OPERATOR(pg_catalog.=) 'queued'
              AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
            ORDER BY r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
         UPDATE jobs.run u
            SET status = 'running', pid = pg_catalog.pg_backend_pid(),
                started_at = pg_catalog.clock_timestamp(), message = NULL
           FROM head
          WHERE u.id OPERATOR(pg_catalog.=) head.id
            AND head.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
            AND head.datid OPERATOR(pg_catalog.=) $2
            -- A scheduled job's run waits, as the scheduler makes it
            -- wait, while another run of that job is going (unless
            -- the job allows overlap).
            AND (head.job_id IS NULL OR NOT EXISTS (
                  SELECT 1 FROM jobs.job j
                   WHERE j.id OPERATOR(pg_catalog.=) head.job_id
                     AND j.overlap OPERATOR(pg_catalog.<>) 'allow'
                     AND EXISTS (SELECT 1 FROM jobs.run o
                                  WHERE o.job_id OPERATOR(pg_catalog.=) head.job_id
                                    AND o.status OPERATOR(pg_catalog.=) ANY ('{starting,running}'))))
      RETURNING u.id, u.command, (EXTRACT(EPOCH FROM u.timeout) * 1000)::int8,
                COALESCE(u.job_id, 0)",
        &[role.into(), db.into()],
    )?;
    Ok(rows.into_iter().map(|r| Claimed::from_row(&r)).collect())
}

/// The role may still log in, and connect to the database (syscache
/// look-ups; needs a transaction).
pub(crate) fn may_still_connect(role: pg_sys::Oid, db: pg_sys::Oid) -> bool {
    unsafe {
        // A dropped database: pg_database_aclcheck would raise an ERROR.
        let dbtup = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::DATABASEOID as i32,
            pg_sys::Datum::from(db.to_u32()),
        );
        if dbtup.is_null() {
            return false;
        }
        pg_sys::ReleaseSysCache(dbtup);
        let tup = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            pg_sys::Datum::from(role.to_u32()),
        );
        if tup.is_null() {
            return false;
        }
        let can_login = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_authid>(tup)).rolcanlogin;
        pg_sys::ReleaseSysCache(tup);
        can_login
            && pg_sys::pg_database_aclcheck(db, role, pg_sys::ACL_CONNECT as _)
                == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// Sleep until a new run is handed over (its command's segment), or the
/// idle timeout passes or we are asked to retire (`None`: exit).
fn wait_for_next_run(me: SlotRef) -> Option<u32> {
    let idle = std::time::Duration::from_millis(crate::gucs::executor_idle_timeout_ms());
    let deadline = std::time::Instant::now() + idle;
    loop {
        let now = std::time::Instant::now();
        let retiring = now >= deadline || registry::retire_requested(me);
        if let Some(dsm) = registry::take_assignment(me, retiring) {
            return Some(dsm);
        }
        if retiring {
            return None;
        }
        crate::bgw::wait(Some(deadline - now));
        crate::bgw::reload_config_if_asked();
    }
}

/// Run one command and record its outcome in our slot.
/// Returns whether the run was recorded `succeeded` inside its own
/// transaction (then there is nothing left for the scheduler to write).
fn run_one(me: SlotRef, command: &str) -> bool {
    let Some(slot) = registry::slot(me) else {
        return false;
    };
    SCHEDULER_LATCH.store(registry::set_running(me), Ordering::Relaxed);
    if registry::cancel_requested(me) {
        registry::record_outcome(
            me,
            Outcome::Cancelled,
            "57014",
            "cancelled by jobs.cancel before it started",
        );
        return false;
    }
    if slot.timeout_ms > 0 {
        unsafe {
            ffi::enable_timeout_after(
                ffi::STATEMENT_TIMEOUT,
                slot.timeout_ms.min(i32::MAX as i64) as i32,
            )
        };
    }
    let slow_run = SLOW_RUN_TIMEOUT.load(Ordering::Relaxed);
    if slow_run >= 0 {
        unsafe { ffi::enable_timeout_after(slow_run, registry::RUNNING_VISIBLE_WITHIN_MS as i32) };
    }
    let started = std::time::Instant::now();
    // Exactly once: when the command is one transaction in the database
    // that holds its history, the run is recorded `succeeded` inside that
    // transaction, so its effects and its record commit together.
    let run_id = slot.run_id;
    crate::result_capture::reset();
    let mut recorded_in_transaction = false;
    let outcome = if slot.db == slot.home_db {
        let cap = crate::gucs::max_result_bytes();
        let (outcome, recorded) =
            sql_runner::run_recording(command, Some(cap), &|| record_success_in_transaction(run_id));
        recorded_in_transaction = recorded;
        if !recorded && outcome == sql_runner::Outcome::Succeeded {
            // A command that committed on its own: keep its rows afterwards.
            // In a transaction of our own characteristics (the command may
            // have set the session's default to read-only); the session's
            // are restored after it, for the reset to see.
            let saved = unsafe {
                (
                    pg_sys::DefaultXactIsoLevel,
                    pg_sys::DefaultXactReadOnly,
                    pg_sys::DefaultXactDeferrable,
                )
            };
            unsafe { own_transaction_characteristics() };
            crate::bgw::in_transaction("pg_jobs executor: keeping the result", || {
                store_result(run_id, true)
            });
            unsafe {
                (
                    pg_sys::DefaultXactIsoLevel,
                    pg_sys::DefaultXactReadOnly,
                    pg_sys::DefaultXactDeferrable,
                ) = saved;
            }
        }
        outcome
    } else {
        // The history is in another database: this executor cannot write
        // there, so results of runs in other databases are not kept.
        sql_runner::run(command)
    };
    unsafe {
        ffi::disable_timeout(ffi::STATEMENT_TIMEOUT, false);
        if slow_run >= 0 {
            ffi::disable_timeout(slow_run, false);
        }
    }
    // PostgreSQL resets the timeout's indicator when it reports the cancel,
    // so tell our timeout from any other cancel by the time that passed.
    let timed_out = slot.timeout_ms > 0 && started.elapsed().as_millis() as i64 >= slot.timeout_ms;

    if recorded_in_transaction {
        registry::record_outcome(me, Outcome::Succeeded, "00000", "");
        crate::scheduler::log_run(
            run_id,
            (slot.job_id != 0).then_some(slot.job_id),
            "succeeded",
            None,
        );
        return true;
    }
    match outcome {
        sql_runner::Outcome::Succeeded => registry::record_outcome(me, Outcome::Succeeded, "00000", ""),
        sql_runner::Outcome::Failed { sqlstate, message } => {
            let kind = if sqlstate == "57014" && registry::cancel_requested(me) {
                Outcome::Cancelled
            } else if timed_out && sqlstate == "57014" {
                Outcome::TimedOut
            } else {
                Outcome::Failed
            };
            registry::record_outcome(me, kind, &sqlstate, &message)
        }
    }
    false
}

/// Inside the command's own transaction, just before it commits: mark the
/// run succeeded and keep its rows (as pg_jobs, with a pinned search_path).
fn record_success_in_transaction(run_id: i64) {
    let truncated = crate::result_capture::current().truncated;
    let recorded = crate::bgw::as_superuser(|| mark_succeeded(run_id, truncated));
    // The row was no longer ours to finish (already recorded as crashed,
    // cancelled or timed out, and perhaps retried): committing the
    // command's effects now would make it run twice. Roll them back.
    if recorded == 0 {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("run {run_id} was already recorded as finished; its effects are rolled back"),
            "The scheduler gave up on this run (its executor looked gone); a retry, if any, does the work."
        );
    }
    store_result(run_id, false);
}

/// The in-transaction record itself: `succeeded`, if the run is still
/// ours to finish. Returns how many rows it updated (0 or 1).
///
/// Read with the latest snapshot, not the command's: a command running at
/// REPEATABLE READ or SERIALIZABLE (its role's default) would otherwise
/// fail with a serialization error whenever the scheduler showed the run
/// `running` after the command's snapshot was taken. Raw SPI, because
/// choosing the snapshot takes `SPI_execute_snapshot`; the plan is kept.
fn mark_succeeded(run_id: i64, truncated: bool) -> u64 {
    thread_local! {
        static PLAN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    const SQL: &std::ffi::CStr =
        c"UPDATE jobs.run SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(),
                 pid = pg_catalog.pg_backend_pid(), result_truncated = $2,
                 started_at = COALESCE(started_at, pg_catalog.statement_timestamp())
           WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) ANY ('{starting,running}')";
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            error!("pg_jobs: cannot record run {run_id}: SPI_connect failed");
        }
        let mut plan = PLAN.with(|p| p.get()) as pg_sys::SPIPlanPtr;
        if plan.is_null() {
            let mut types = [pg_sys::INT8OID, pg_sys::BOOLOID];
            plan = pg_sys::SPI_prepare(SQL.as_ptr(), 2, types.as_mut_ptr());
            if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                error!("pg_jobs: cannot record run {run_id}: cannot prepare the record");
            }
            PLAN.with(|p| p.set(plan as usize));
        }
        let mut values = [pg_sys::Datum::from(run_id), pg_sys::Datum::from(truncated)];
        let nulls = [b' ' as std::ffi::c_char; 2];
        // And as READ COMMITTED would, should the scheduler's update of the
        // row be in progress (not in the latest snapshot yet): wait for it
        // and re-check the row, instead of a serialization failure. Only
        // for this statement; the command's own level is restored at once
        // (after an ERROR, the next transaction starts afresh anyway).
        let level = pg_sys::XactIsoLevel;
        pg_sys::XactIsoLevel = pg_sys::XACT_READ_COMMITTED as i32;
        let rc = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            std::ptr::null_mut(),
            false,
            true,
            0,
        );
        pg_sys::XactIsoLevel = level;
        if rc != pg_sys::SPI_OK_UPDATE as i32 {
            error!("pg_jobs: cannot record run {run_id}: SPI returned {rc}");
        }
        let n = pg_sys::SPI_processed;
        pg_sys::SPI_finish();
        n
    }
}

/// Write the captured rows of run `run_id` (if any) to `jobs.run_result`,
/// and, where the run's record was not written with them
/// (`flag_truncation`), that they were cut at the cap. The flag is written
/// only when set: every extra row version of a run costs throughput.
fn store_result(run_id: i64, flag_truncation: bool) {
    let captured = crate::result_capture::take();
    if captured.rows.is_empty() && !captured.truncated {
        return;
    }
    crate::bgw::as_superuser(|| {
        Spi::connect_mut(|c| {
            crate::saved_plans::run(
                c,
                "INSERT INTO jobs.run_result (run_id, rows) VALUES ($1, $2::text[]::jsonb[])
                   ON CONFLICT (run_id) DO UPDATE SET rows = EXCLUDED.rows",
                &[run_id.into(), captured.rows.into()],
            )
            .map(|_| ())
        })?;
        if flag_truncation && captured.truncated {
            Spi::run_with_args(
                "UPDATE jobs.run SET result_truncated = true WHERE id OPERATOR(pg_catalog.=) $1",
                &[run_id.into()],
            )?;
        }
        Ok::<(), pgrx::spi::SpiError>(())
    })
    .unwrap_or_else(|e| error!("pg_jobs: cannot keep the result of run {run_id}: {e}"));
}
