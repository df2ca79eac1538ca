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
//! A run's `timeout` is a timer of its own over the whole command, which
//! cancels the statement running when it fires; the command's own
//! `statement_timeout` (its role's, its database's, or a `SET` in the
//! command) applies per statement besides, as under `psql -c`, and cannot
//! turn the run's timer off. The scheduler terminates an executor that
//! ignores the cancel. Never restarted by the postmaster: if it dies, the
//! scheduler records the run as crashed (or timed out, if it killed it for
//! that).
//!
//! A pooled executor keeps the role and database settings of its
//! connection; a committed `ALTER ROLE`/`ALTER DATABASE … SET` retires
//! every executor connected before it (`hooks`), so the next run gets a
//! fresh connection with the new settings.

mod claim;
mod record;
mod session;

use claim::*;
use record::*;
use session::*;

use crate::exec::command_segment::read_command;
use pg_jobs_core::params::Command;

use crate::shmem::{self, Outcome, SlotRef};

use crate::exec::runner;

use pg_jobs_core::run::outcome;

use pgrx::prelude::*;

use std::collections::VecDeque;

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

use crate::pg::timeout;

/// What pgrx does not bind: two of the resets `DISCARD ALL` makes
/// (`commands/async.h`, `commands/sequence.h`).
mod ffi {
    // Raw bindings, not guarded like pgrx's: an ERROR raised inside one would
    // longjmp over the Rust frames above it instead of unwinding. They can
    // fail only if palloc does.
    unsafe extern "C-unwind" {
        pub fn Async_UnlistenAll();
        pub fn ResetSequenceCaches();
    }
}

/// The registered "this run is not short" timeout, and the latch of the
/// scheduler to wake when it fires (see [`wake_scheduler_for_slow_run`]).
static SLOW_RUN_TIMEOUT: AtomicI32 = AtomicI32::new(-1);

static SCHEDULER_LATCH: AtomicUsize = AtomicUsize::new(0);

/// The registered timeout of the run's own `timeout` (see
/// [`cancel_for_run_timeout`]), and whether it fired during this run.
static RUN_TIMEOUT: AtomicI32 = AtomicI32::new(-1);

static RUN_TIMEOUT_FIRED: AtomicBool = AtomicBool::new(false);

/// Timeout handler (in SIGALRM context: no allocation, no locks): the
/// run's own `timeout` has passed. Cancel the running statement exactly as
/// PostgreSQL's SIGINT handler (`StatementCancelHandler`) does — set the
/// interrupt flags and the latch — and note that it was this timer, since
/// PostgreSQL then reports the cancel as "due to user request". A timer of
/// its own, not the statement timeout: the command's `statement_timeout`
/// (a `SET`, its role's default) arms and disarms that one per statement,
/// and must not be able to switch the run's timeout off.
extern "C" fn cancel_for_run_timeout() {
    RUN_TIMEOUT_FIRED.store(true, Ordering::Relaxed);
    // SAFETY: plain sig_atomic_t and bool globals of this process, written
    // and read with volatile accesses through raw pointers (no reference to
    // a static mut), as a C signal handler does; MyLatch is set before any
    // timeout can be armed and stays valid for the process's life. SetLatch
    // is async-signal-safe and this binding is the raw symbol, not pgrx's
    // guarded wrapper.
    unsafe {
        // Don't joggle the elbow of proc_exit (StatementCancelHandler).
        if !(&raw const pg_sys::proc_exit_inprogress).read_volatile() {
            (&raw mut pg_sys::InterruptPending).write_volatile(1);
            (&raw mut pg_sys::QueryCancelPending).write_volatile(1);
        }
        let latch = (&raw const pg_sys::MyLatch).read_volatile();
        timeout::set_latch_from_signal_handler(latch.cast());
    }
}

/// Timeout handler (in SIGALRM context: no allocation, no locks): the run
/// has gone on for `RUNNING_VISIBLE_WITHIN_MS`. Runs an executor took from
/// the queue itself say `starting` until the scheduler shows them
/// `running`, and the runs it reserved behind this one would wait for it:
/// wake the scheduler, which does both. A short run never gets here, so a
/// burst of them costs the scheduler no passes.
extern "C" fn wake_scheduler_for_slow_run() {
    let latch = SCHEDULER_LATCH.load(Ordering::Relaxed);
    if latch != 0 {
        // SAFETY: a non-zero SCHEDULER_LATCH is the address of the
        // scheduler's PGPROC latch (shared memory, valid for the server's
        // life), stored by run_one before the timeout is armed; SetLatch is
        // async-signal-safe (PostgreSQL's own timeout handlers call it), and
        // this binding is the raw symbol, not pgrx's guarded wrapper.
        unsafe { timeout::set_latch_from_signal_handler(latch as *mut std::ffi::c_void) };
    }
}

/// A run this quick (wall time) lets the next claim take a batch.
const QUICK_RUN_MS: u128 = 10;

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_executor_main(arg: pg_sys::Datum) {
    crate::pg::bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = shmem::claim(me) else {
        return;
    };
    // No run: started ahead of an instant jobs fall due at, to be in the
    // pool by then (see the scheduler's prewarm).
    let prewarm = slot.run_id == 0;
    let mut next_command = None;
    if !prewarm {
        let Some(command) = command_of(me, slot.dsm) else {
            return;
        };
        next_command = Some(command);
    }
    let (db, role) = (pg_sys::Oid::from(slot.db), pg_sys::Oid::from(slot.role));
    connect(db, role);
    if prewarm {
        if slot.db == slot.home_db {
            get_ready(role, db);
        }
        shmem::set_pooled(me);
    }
    serve(me, db, role, next_command);
}

/// The command of a handed-over run and the values of its parameters,
/// from its segment; `None` (recorded as the run's failure) if the segment
/// is gone.
fn command_of(me: SlotRef, dsm: u32) -> Option<Command> {
    match read_command(dsm) {
        Ok(command) => Some(command),
        Err(why) => {
            let (code, message) = why.outcome();
            shmem::record_outcome(me, Outcome::Failed, code, &message);
            None
        }
    }
}

/// Connect as the run's owner, by OID, and register the run's timeout and
/// the "run is not short" timeout.
fn connect(db: pg_sys::Oid, role: pg_sys::Oid) {
    // SAFETY: a background worker registered with BGWORKER_BACKEND_DATABASE_
    // CONNECTION connects once, here, before any transaction; the OIDs are
    // plain values (a dropped database or role raises a FATAL).
    unsafe { pg_sys::BackgroundWorkerInitializeConnectionByOid(db, role, 0) };
    // SAFETY: after InitPostgres (which set up the timeout module), register
    // handlers that only do async-signal-safe work (see
    // cancel_for_run_timeout and wake_scheduler_for_slow_run); once per
    // process, each getting the next free user timeout id.
    let (run, slow) = unsafe {
        (
            timeout::RegisterTimeout(timeout::USER_TIMEOUT, cancel_for_run_timeout),
            timeout::RegisterTimeout(timeout::USER_TIMEOUT, wake_scheduler_for_slow_run),
        )
    };
    RUN_TIMEOUT.store(run, Ordering::Relaxed);
    SLOW_RUN_TIMEOUT.store(slow, Ordering::Relaxed);
}

/// The warm pool: after each run, reset the session and take the next
/// run: one this executor reserved, or a batch from the queue, or one the
/// scheduler hands over within pg_jobs.executor_idle_timeout; then exit.
fn serve(me: SlotRef, db: pg_sys::Oid, role: pg_sys::Oid, mut next_command: Option<Command>) {
    let mut reserved: VecDeque<Claimed> = VecDeque::new();
    // The run this process was started for is a cold start; every later
    // one (a prewarmed executor's first included) reuses the connection.
    let mut cold = next_command.is_some();
    loop {
        let command = match next_command.take() {
            Some(c) => c,
            None => {
                // SAFETY: a connected worker between transactions, where a
                // backend flushes its statistics too.
                unsafe { pg_sys::pgstat_report_stat(true) };
                let Some(dsm) = wait_for_next_run(me) else {
                    return;
                };
                let Some(c) = command_of(me, dsm) else {
                    return;
                };
                c
            }
        };
        let started = std::time::Instant::now();
        let recorded = run_one(me, &command, std::mem::take(&mut cold));
        let quick = started.elapsed().as_millis() < QUICK_RUN_MS;
        let queue = command.queue;
        if recorded {
            // Its record committed with it: nothing for the scheduler to
            // write. Waiters can look now.
            shmem::broadcast_runs_finished();
        }
        // SAFETY: a connected worker, outside any transaction; a null
        // activity string is allowed for the idle state.
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null()) };
        next_command = between_runs(me, db, role, recorded, quick, queue.as_ref(), &mut reserved);
        if next_command.is_none() {
            // Now idle, any reserved runs back in the queue (committed):
            // the scheduler records our run if it was not recorded in its
            // own transaction, dispatches what we gave back, and pools us.
            shmem::finish_run(me);
        }
    }
}

/// An executor started ahead of a due instant plans what its first run and
/// claim will run, and so loads the catalog entries they read, while there
/// is time: a new backend's first statements on pg_jobs' tables cost it
/// milliseconds, which the runs due at that instant would otherwise wait.
/// Nothing is written (no run has id 0; a claim of 0 runs takes none).
fn get_ready(role: pg_sys::Oid, db: pg_sys::Oid) {
    crate::pg::bgw::in_transaction("pg_jobs executor: getting ready", || {
        if !crate::catalog::schema_version::databases_by_oid() {
            return;
        }
        crate::pg::bgw::as_superuser(|| {
            Spi::connect_mut(|c| claim_batch(c, role, db, 0).map(|_| ()))
                .unwrap_or_else(|e| error!("pg_jobs executor: cannot get ready: {e}"));
            mark_succeeded(0, false, "");
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
    queue: Option<&pg_jobs_core::queue::QueueTag>,
    reserved: &mut VecDeque<Claimed>,
) -> Option<Command> {
    // A SIGHUP since the last run: the next one sees the server's settings
    // as a new connection would (a backend reloads between queries too;
    // runs taken here one after another never pass through the idle wait,
    // which reloads as well).
    crate::pg::bgw::reload_config_if_asked();
    // SAFETY: plain globals of this process, written on its only thread
    // between commands (no statement is running to look at the cancel flag
    // or the transaction defaults); QueryCancelPending is a sig_atomic_t its
    // signal handler may set at any time, and clearing it with a plain store
    // is what PostgreSQL itself does. own_transaction_characteristics' only
    // requirement is that we are between transactions, as here.
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
    let next = crate::pg::bgw::in_transaction_flushing("pg_jobs executor: between runs", false, || {
        // SAFETY: reset_session's contract: we are inside the transaction
        // in_transaction_flushing started, between two commands, with no
        // portal of ours open.
        unsafe { reset_session() };
        if !recorded || shmem::retire_requested(me) {
            give_back(me, reserved);
            return None;
        }
        while let Some(next) = reserved.pop_front() {
            if shmem::start_reserved(me, next.run_id, next.job_id, next.timeout_ms) {
                return Some(next.command);
            }
            // Taken back by the scheduler or jobs.cancel.
        }
        let batch = if quick { shmem::RESERVE_MAX } else { 1 };
        let mut claimed = claim_next(me, db, role, batch, queue)?;
        let first = claimed.remove(0);
        reserved.extend(claimed);
        Some(first.command)
    });
    // The next command runs with the session's own defaults again (its
    // role's and database's `default_transaction_*`), not the ones pg_jobs'
    // own transaction above used (issue 13, finding 4).
    // SAFETY: between transactions, on the process's only thread.
    unsafe { restore_session_characteristics() };
    next
}

/// Sleep until a new run is handed over (its command's segment), or the
/// idle timeout passes or we are asked to retire (`None`: exit).
fn wait_for_next_run(me: SlotRef) -> Option<u32> {
    let idle = std::time::Duration::from_millis(crate::gucs::executor_idle_timeout_ms());
    let deadline = std::time::Instant::now() + idle;
    loop {
        let now = std::time::Instant::now();
        let retiring = now >= deadline || shmem::retire_requested(me);
        if let Some(dsm) = shmem::take_assignment(me, retiring) {
            return Some(dsm);
        }
        if retiring {
            return None;
        }
        crate::pg::bgw::wait(Some(deadline - now));
        crate::pg::bgw::reload_config_if_asked();
    }
}

/// Run one command and record its outcome in our slot (`cold`: the first
/// of a process started for it, counted in `jobs.metrics`).
/// Returns whether the run was recorded `succeeded` inside its own
/// transaction (then there is nothing left for the scheduler to write).
fn run_one(me: SlotRef, command: &Command, cold: bool) -> bool {
    let Some(slot) = shmem::slot(me) else {
        return false;
    };
    if let Some(rate) = command.queue.as_ref().and_then(|q| q.rate.map(|r| (q.id, r))) {
        wait_for_start(me, slot.home_db, rate);
    }
    SCHEDULER_LATCH.store(shmem::set_running(me), Ordering::Relaxed);
    if shmem::cancel_requested(me) {
        shmem::record_outcome(me, Outcome::Cancelled, "57014", outcome::CANCELLED_BEFORE_START);
        return false;
    }
    shmem::count(slot.home_db, |c| {
        c.started += 1;
        if cold {
            c.cold_starts += 1;
        } else {
            c.pool_hits += 1;
        }
    });
    // The clock starts before the timeout is armed, so a timeout that fires
    // on time is never measured as early (and taken for another cancel).
    let started = std::time::Instant::now();
    let armed = arm_timeouts(slot.timeout_ms);
    let (result, recorded_in_transaction) = execute(command, &slot);
    disarm_timeouts(armed);
    let timeout_fired = RUN_TIMEOUT_FIRED.load(Ordering::Relaxed);
    let elapsed_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
    // SAFETY: a plain global of this process, on its only thread, between
    // transactions; clearing it with a plain store is what PostgreSQL does.
    // The command is over: a cancel that reached us after its last
    // statement (the run's timer firing just then, a late jobs.cancel) is
    // moot, and left pending it would fail pg_jobs' own transaction below.
    unsafe { pg_sys::QueryCancelPending = 0 };

    if recorded_in_transaction {
        shmem::record_outcome(me, Outcome::Succeeded, "00000", "");
        crate::workers::log_run(
            slot.run_id,
            (slot.job_id != 0).then_some(slot.job_id),
            "succeeded",
            None,
        );
        return true;
    }
    match result {
        runner::Outcome::Succeeded => {
            if slot.db == slot.home_db {
                keep_result_after_own_commit(slot.run_id);
            }
            // The scheduler records it, with its command tag.
            shmem::record_outcome(me, Outcome::Succeeded, "00000", &runner::last_command_tag())
        }
        runner::Outcome::Failed {
            sqlstate,
            message,
            detail,
        } => {
            // A cancel is the run's timeout if its own timer fired (or, as
            // a second witness, that much time passed), jobs.cancel's if it
            // flagged the run, else the command's (its statement_timeout,
            // someone's pg_cancel_backend).
            let kind = outcome::classify_error(
                &sqlstate,
                shmem::cancel_requested(me),
                timeout_fired,
                slot.timeout_ms,
                elapsed_us,
            );
            let message = outcome::reported_message(kind, &message);
            shmem::record_failure(me, kind, &sqlstate, message, detail.as_deref())
        }
    }
    false
}

/// Log this run's start in its queue's window (`(queue id, rate)`),
/// waiting while the window is full: the time logged is now, right before
/// the command is handed to PostgreSQL (see `pg_jobs_core::queue::rate`).
/// A cancel meanwhile goes on to the start, which records it.
fn wait_for_start(me: SlotRef, home_db: u32, (queue_id, rate): (i64, pg_jobs_core::queue::Rate)) {
    loop {
        let Err(at) = shmem::take_start(home_db, queue_id, rate) else {
            return;
        };
        if shmem::cancel_requested(me) {
            return;
        }
        // SAFETY: GetCurrentTimestamp only reads the clock.
        let now = unsafe { pg_sys::GetCurrentTimestamp() };
        // Whole milliseconds, rounded up (the latch's timeout's unit).
        let ms = ((at - now).max(0) as u64).div_ceil(1000).max(1);
        crate::pg::bgw::wait(Some(std::time::Duration::from_millis(ms)));
    }
}

/// The timers armed for a run: the ids of the run's timeout and of the
/// slow-run timer (negative: not armed).
#[derive(Clone, Copy)]
struct Armed {
    run_timeout: i32,
    slow_run: i32,
}

/// Arm the run's timeout (`timeout_ms`, 0: none) and our slow-run timer.
fn arm_timeouts(timeout_ms: i64) -> Armed {
    RUN_TIMEOUT_FIRED.store(false, Ordering::Relaxed);
    let mut armed = Armed {
        run_timeout: -1,
        slow_run: SLOW_RUN_TIMEOUT.load(Ordering::Relaxed),
    };
    let run_timeout = RUN_TIMEOUT.load(Ordering::Relaxed);
    if timeout_ms > 0 && run_timeout >= 0 {
        // SAFETY: `run_timeout` is the id RegisterTimeout returned us, in a
        // connected backend; the delay is clamped to an int (validated at
        // submit to fit one anyway).
        unsafe { timeout::enable_timeout_after(run_timeout, timeout_ms.min(i32::MAX as i64) as i32) };
        armed.run_timeout = run_timeout;
    }
    if armed.slow_run >= 0 {
        // SAFETY: `slow_run` is the id RegisterTimeout returned us.
        unsafe { timeout::enable_timeout_after(armed.slow_run, shmem::RUNNING_VISIBLE_WITHIN_MS as i32) };
    }
    armed
}

fn disarm_timeouts(armed: Armed) {
    // SAFETY: disabling timeouts we registered is allowed whether or not
    // they are armed or have fired.
    unsafe {
        if armed.run_timeout >= 0 {
            timeout::disable_timeout(armed.run_timeout, false);
        }
        if armed.slow_run >= 0 {
            timeout::disable_timeout(armed.slow_run, false);
        }
    }
}

/// Run the command of the run in `slot`; whether it was recorded
/// `succeeded` inside its own transaction. Exactly once: when the command
/// is one transaction in the database that holds its history, the run is
/// recorded inside that transaction, so its effects and its record commit
/// together. (A command that committed on its own keeps its result after
/// the timers are disarmed: [`keep_result_after_own_commit`].)
fn execute(command: &Command, slot: &shmem::Slot) -> (runner::Outcome, bool) {
    let run_id = slot.run_id;
    let (sql, args) = (command.sql.as_str(), command.args.as_deref());
    crate::exec::result_capture::reset();
    if slot.db != slot.home_db {
        // The history is in another database: this executor cannot write
        // there, so results of runs in other databases are not kept.
        return (runner::run(sql, args, runner::StatementTimeout::Enforced), false);
    }
    let cap = crate::gucs::max_result_bytes();
    runner::run_recording(sql, args, Some(cap), &|| record_success_in_transaction(run_id))
}

/// A command that committed on its own: keep its rows afterwards, in a
/// transaction of our own characteristics (the command may have set the
/// session's default to read-only); the session's are restored after it,
/// for the reset to see.
fn keep_result_after_own_commit(run_id: i64) {
    // SAFETY: reads of plain globals, between transactions.
    let saved = unsafe {
        (
            pg_sys::DefaultXactIsoLevel,
            pg_sys::DefaultXactReadOnly,
            pg_sys::DefaultXactDeferrable,
        )
    };
    // SAFETY: between transactions (the command has ended), on the
    // process's only thread.
    unsafe { own_transaction_characteristics() };
    crate::pg::bgw::in_transaction("pg_jobs executor: keeping the result", || {
        store_result(run_id, true)
    });
    // SAFETY: writes of plain globals, between transactions, back to the
    // values read above.
    unsafe {
        (
            pg_sys::DefaultXactIsoLevel,
            pg_sys::DefaultXactReadOnly,
            pg_sys::DefaultXactDeferrable,
        ) = saved;
    }
}
