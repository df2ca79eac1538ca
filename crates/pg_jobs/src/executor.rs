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
//! that just did so takes the next run of its role from the queue itself.
//!
//! A timeout is armed as PostgreSQL's statement timeout over the whole
//! command; the scheduler terminates an executor that ignores the cancel.
//! Never restarted by the postmaster: if it dies, the scheduler records
//! the run as crashed (or timed out, if it killed it for that).

use crate::command_segment::read_command;
use crate::registry::{self, Outcome, SlotRef};
use crate::sql_runner;
use pgrx::prelude::*;

/// `utils/timeout.h`, which pgrx does not bind. The executor arms
/// PostgreSQL's own statement timeout over the whole command: its handler
/// cancels the running statement exactly as `statement_timeout` does.
mod timeout {
    /// `TimeoutId.STATEMENT_TIMEOUT` in PostgreSQL 15.
    pub const STATEMENT_TIMEOUT: i32 = 3;
    unsafe extern "C-unwind" {
        pub fn enable_timeout_after(id: i32, delay_ms: i32);
        pub fn disable_timeout(id: i32, keep_indicator: bool);
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_executor_main(arg: pg_sys::Datum) {
    crate::bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = registry::claim(me) else {
        return;
    };
    let Some(mut command) = read_command(slot.dsm) else {
        registry::record_outcome(me, Outcome::Failed, "55000", crate::command_segment::COMMAND_GONE);
        return;
    };
    let (db, role) = (pg_sys::Oid::from(slot.db), pg_sys::Oid::from(slot.role));
    unsafe { pg_sys::BackgroundWorkerInitializeConnectionByOid(db, role, 0) };

    // The warm pool: after each run, reset the session and wait for the
    // scheduler to hand over another run of the same database and role, up
    // to pg_jobs.executor_idle_timeout; then exit.
    loop {
        let recorded = run_one(me, &command);
        if recorded {
            // Its record committed with it: nothing for the scheduler to
            // write. Waiters can look now.
            registry::broadcast_runs_finished();
        } else {
            registry::finish_run(me);
        }
        // Everything DISCARD ALL resets: nothing of this run's session
        // state (settings, SET ROLE, temp tables, prepared statements,
        // cursors, advisory locks, LISTEN, sequence caches) reaches the next
        // one.
        if let sql_runner::Outcome::Failed { message, .. } = sql_runner::run(SESSION_RESET) {
            warning!("pg_jobs executor: could not reset the session ({message}); exiting");
            return;
        }
        unsafe { pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null()) };
        if recorded {
            // A burst of submitted runs: take the next one of ours from the
            // queue without a round trip through the scheduler.
            if let Some(next) = claim_next(me, db, role) {
                command = next;
                continue;
            }
            registry::finish_run(me); // now idle: the scheduler pools us
        }
        match wait_for_next_run(me) {
            Some(dsm) => match read_command(dsm) {
                Some(c) => command = c,
                None => {
                    registry::record_outcome(
                        me,
                        Outcome::Failed,
                        "55000",
                        crate::command_segment::COMMAND_GONE,
                    );
                    return;
                }
            },
            None => return,
        }
    }
}

/// `DISCARD ALL` spelled out, less `DISCARD PLANS`: cached plans are not
/// session state a run can see (they are re-planned whenever what they
/// depend on changes), and dropping them made every run re-plan pg_jobs'
/// own statements too (measured with perf: a fifth of all CPU in a burst).
const SESSION_RESET: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; \
                             UNLISTEN *; SELECT pg_catalog.pg_advisory_unlock_all(); \
                             DISCARD TEMP; DISCARD SEQUENCES";

/// Take the run at the head of the queue if it is a run of our database and
/// role (submitted, or a scheduled job's that its overlap policy lets start
/// now), still allowed to log in and connect (re-checked per run, as the
/// scheduler does). The head only: priority and due order stay global; when
/// the head is another role's, the scheduler dispatches it. The claim is its own short transaction with
/// `synchronous_commit = off`: if the server crashes before it is flushed,
/// the run is simply still queued. Returns the command.
fn claim_next(me: SlotRef, db: pg_sys::Oid, role: pg_sys::Oid) -> Option<String> {
    if registry::retire_requested(me) {
        return None;
    }
    crate::bgw::in_transaction("pg_jobs executor: taking the next run", || {
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
                Ok::<_, pgrx::spi::SpiError>(rows.into_iter().next().map(|r| {
                    (
                        r.get::<i64>(1).ok().flatten().unwrap_or_default(),
                        r.get::<String>(2).ok().flatten().unwrap_or_default(),
                        r.get::<i64>(3).ok().flatten().unwrap_or(0),
                        r.get::<i64>(4).ok().flatten().unwrap_or(0),
                    )
                }))
            })
            .unwrap_or_else(|e| error!("pg_jobs executor: cannot take the next run: {e}"));
            let (run_id, command, timeout_ms, job_id) = claimed?;
            // Held in the registry before the claim commits (see self_claim);
            // if we were told to retire meanwhile, the claim rolls back.
            if !registry::self_claim(me, run_id, job_id, timeout_ms) {
                ereport!(
                    ERROR,
                    PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN,
                    "pg_jobs executor: asked to exit while taking a run"
                );
            }
            Some(command)
        })
    })
}

/// The role may still log in, and connect to the database (syscache
/// look-ups; needs a transaction).
fn may_still_connect(role: pg_sys::Oid, db: pg_sys::Oid) -> bool {
    unsafe {
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
    registry::set_running(me);
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
            timeout::enable_timeout_after(
                timeout::STATEMENT_TIMEOUT,
                slot.timeout_ms.min(i32::MAX as i64) as i32,
            )
        };
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
            crate::bgw::in_transaction("pg_jobs executor: keeping the result", || {
                store_result(run_id, true)
            });
        }
        outcome
    } else {
        // The history is in another database: this executor cannot write
        // there, so results of runs in other databases are not kept.
        sql_runner::run(command)
    };
    unsafe { timeout::disable_timeout(timeout::STATEMENT_TIMEOUT, false) };
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
    let recorded = crate::bgw::as_superuser(|| {
        Spi::connect_mut(|c| {
            crate::saved_plans::run(
                c,
                "UPDATE jobs.run SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(),
                        pid = pg_catalog.pg_backend_pid(), result_truncated = $2,
                        started_at = COALESCE(started_at, pg_catalog.statement_timestamp())
                  WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING id",
                &[run_id.into(), truncated.into()],
            )
            .map(|t| t.len())
        })
    })
    .unwrap_or_else(|e| error!("pg_jobs: cannot record run {run_id}: {e}"));
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
