//! The SQL API (schema `jobs`). Functions here are the only write path to
//! pg_jobs' tables: owners may read their rows (row-level security) but
//! never write them directly, so run history cannot be forged.

use crate::catalog::{results, runs};
use crate::hooks;
use crate::pg::bgw;
use crate::pg::error::{raise, returned_id, OrRaise};
use crate::shmem;
use crate::sql_api::validate::*;
use pg_jobs_core::run::{cancel, RunStatus};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// `jobs.submit(...)`: queue `command` to run in the background, as
/// `run_as` (default: the caller) in `database`, with `args` the values of
/// its `$1 … $n`. It runs only after the calling transaction commits; if
/// that transaction (or the savepoint around this call) rolls back, it
/// never runs. Returns the run id.
#[pg_extern(name = "_submit", volatile, parallel_unsafe)]
#[allow(clippy::too_many_arguments)]
fn _submit_run(
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    start_at: Option<TimestampWithTimeZone>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    priority: Option<i32>,
    unique_key: Option<&str>,
    on_conflict: Option<&str>,
    depends_on: Option<Vec<Option<i64>>>,
    run_if: Option<&str>,
    args: Option<pgrx::Array<&str>>,
    queue: Option<&str>,
    concurrency_key: Option<&str>,
) -> i64 {
    let command = required(command, "command");
    if let Some(key) = concurrency_key {
        if let Err(e) = pg_jobs_core::queue::concurrency_key(key, queue.is_some()) {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e.message, None);
        }
    }
    let args = crate::sql_api::args::given(args);
    let waits = depends_on.map(|ids| {
        if unique_key.is_some() {
            raise(
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                "a run cannot have both a unique_key and depends_on",
                Some("A unique key is kept among queued runs; a run with depends_on waits first."),
            );
        }
        (check_depends_on(ids), parse_run_if(required(run_if, "run_if")))
    });
    let on_conflict = unique_key.map(|key| {
        check_unique_key(key);
        parse_on_conflict(required(on_conflict, "on_conflict"))
    });
    let database = required(database, "database");
    let max_attempts = required(max_attempts, "max_attempts");
    let priority = required(priority, "priority");
    let statements = check_command(command);
    // A submitted run's retries wait the table's default backoff.
    crate::sql_api::validate::validate_numbers(
        timeout_ms,
        max_attempts,
        crate::sql_api::validate::MIN_RETRY_BACKOFF_MS,
        false,
    );
    if let Some(at) = start_at {
        crate::sql_api::validate::check_instant(at.into(), "start_at");
    }
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    let owner = run_as.unwrap_or_else(|| unsafe { pg_sys::GetUserId() });
    let datid = crate::catalog::acl::database_oid(database);
    crate::catalog::acl::check_run_as(owner, datid);
    if let Some(values) = &args {
        crate::sql_api::args::check_fit(command, statements, values, datid);
    }
    let queue = crate::sql_api::queues::checked_queue(queue);
    crate::sql_api::bounds::admit_queued_run(owner);
    let run = runs::Submitted {
        owner,
        command,
        database,
        datid,
        start_at,
        timeout_ms,
        max_attempts,
        priority,
        args: args.as_ref(),
        queue: queue.as_deref(),
        concurrency_key,
    };
    if let Some((parents, run_if)) = waits {
        let id = returned_id(
            bgw::as_superuser(|| runs::submit_waiting(&run, &parents, run_if)),
            "queue the run",
        );
        hooks::submitted_at_commit(id);
        // Its parents may end before this commits: the scheduler looks then.
        hooks::waiting_changed_at_commit();
        return id;
    }
    // A kept plan: a burst of submits plans this INSERT once per session.
    let (Some(key), Some(on_conflict)) = (unique_key, on_conflict) else {
        let id = returned_id(bgw::as_superuser(|| runs::submit(&run)), "queue the run");
        hooks::submitted_at_commit(id);
        return id;
    };
    let (id, new) = bgw::as_superuser(|| runs::submit_unique(&run, key, on_conflict))
        .or_raise("queue the run")
        .unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "could not queue the run: no id was returned",
                None,
            )
        });
    if new {
        hooks::submitted_at_commit(id);
    } else {
        // The queued run was locked until our commit (and `replace` may
        // have moved its start time): a dispatch meanwhile skipped it, so
        // the scheduler looks again at commit.
        hooks::wake_scheduler_at_commit();
    }
    id
}

/// Most runs one run may wait for.
const MAX_DEPENDS_ON: usize = 1000;

/// `depends_on`: 1 to [`MAX_DEPENDS_ON`] ids of runs the caller can see
/// (42704 for any other: no role waits on, or learns of, another's runs).
/// Duplicates are dropped.
fn check_depends_on(ids: Vec<Option<i64>>) -> Vec<i64> {
    if ids.iter().any(Option::is_none) {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "depends_on must not contain NULL",
            None,
        );
    }
    let mut ids: Vec<i64> = ids.into_iter().flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "depends_on must not be empty",
            Some("Pass NULL for a run that waits for nothing."),
        );
    }
    if ids.len() > MAX_DEPENDS_ON {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("depends_on lists {} runs (at most {MAX_DEPENDS_ON})", ids.len()),
            None,
        );
    }
    let seen = runs::visible(&ids);
    if let Some(missing) = ids.iter().find(|id| !seen.contains(id)) {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("run {missing} does not exist"),
            Some("depends_on lists runs of this database that you can see (your own, and those of roles you act for)."),
        );
    }
    ids
}

fn parse_run_if(text: &str) -> pg_jobs_core::run::depends::RunIf {
    text.parse()
        .unwrap_or_else(|e: pg_jobs_core::run::depends::UnknownRunIf| {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                e.to_string(),
                None,
            )
        })
}

/// Longest `unique_key`: keys live in a btree index, whose entries must fit
/// a third of a page.
const MAX_UNIQUE_KEY_CHARS: usize = 512;

fn check_unique_key(key: &str) {
    if key.is_empty() {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "unique_key must not be empty",
            Some("Pass NULL for a run without a unique key."),
        );
    }
    let n = key.chars().count();
    if n > MAX_UNIQUE_KEY_CHARS {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unique_key is too long ({n} characters; at most {MAX_UNIQUE_KEY_CHARS})"),
            None,
        );
    }
}

fn parse_on_conflict(text: &str) -> runs::OnConflict {
    match text {
        "skip" => runs::OnConflict::Skip,
        "replace" => runs::OnConflict::Replace,
        other => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid on_conflict \"{other}\""),
            Some("on_conflict is 'skip' (keep the queued run) or 'replace' (give it this command and start time)."),
        ),
    }
}

/// `jobs._submit` as a database not yet updated to 0.4.0 calls it (its
/// `jobs.submit` passes seven arguments): the same, without the options
/// 0.4.0 added. No SQL of its own: the 0.3.0 schema created it, and the
/// 0.4.0 upgrade replaces it.
#[pg_extern(sql = false)]
#[allow(clippy::too_many_arguments)]
fn _submit(
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    start_at: Option<TimestampWithTimeZone>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    priority: Option<i32>,
) -> i64 {
    _submit_run(
        command,
        database,
        run_as,
        start_at,
        timeout_ms,
        max_attempts,
        priority,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    )
}

/// The status of a run the caller can see (row-level security), or an
/// error if there is none.
fn visible_status(run_id: i64) -> String {
    runs::status(run_id).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("run {run_id} does not exist"),
            Some("You see only your own runs and those of the roles you act for (jobs._acts_for)."),
        )
    })
}

fn is_terminal(status: &str) -> bool {
    status.parse::<RunStatus>().is_ok_and(|s| s.is_terminal())
}

/// `jobs.wait(run_id, timeout)`: sleep until the run is terminal or the
/// timeout passes (NULL: no timeout). Sleeps on a condition variable the
/// scheduler broadcasts when runs finish; pg_cancel_backend interrupts it.
#[pg_extern(volatile, parallel_unsafe)]
fn _wait(run_id: Option<i64>, timeout_ms: Option<i64>) -> bool {
    let run_id = required(run_id, "run_id");
    if timeout_ms.is_some_and(|t| t < 0) {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "timeout must not be negative",
            Some("Pass NULL to wait without a timeout."),
        );
    }
    // The ownership check first: what follows must not tell a role anything
    // about a run it may not see.
    visible_status(run_id);
    if hooks::submitted_in_this_transaction(run_id) {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("run {run_id} was submitted in this transaction, which must commit before it can start"),
            Some("Commit first, then call jobs.wait."),
        );
    }
    // SAFETY: a plain global of the current transaction, read on the
    // backend's only thread.
    if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "jobs.wait needs READ COMMITTED isolation",
            Some("In REPEATABLE READ or SERIALIZABLE the transaction's snapshot never shows the run finishing."),
        );
    }
    let deadline =
        // A deadline past what Instant can hold is no deadline at all.
        timeout_ms.and_then(|ms| std::time::Instant::now().checked_add(std::time::Duration::from_millis(ms.max(0) as u64)));
    let cv = shmem::runs_finished_cv();
    // Each statement of a volatile function takes a fresh snapshot, so every
    // look sees runs that finished since the last one.
    let mut done = is_terminal(&visible_status(run_id));
    while !done {
        let remaining = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(r) if !r.is_zero() => r.as_millis() as libc::c_long,
                _ => break,
            },
            None => -1,
        };
        // SAFETY: `cv` is the registry's condition variable, in shared memory
        // for the server's life; a backend may sleep on one CV at a time,
        // and CancelSleep ends it on every path (and an ERROR in the look
        // in between is cleaned up by AbortTransaction, which cancels the
        // sleep too).
        unsafe {
            // Prepare, look again, then sleep: a broadcast between the look
            // and the sleep is not lost.
            pg_sys::ConditionVariablePrepareToSleep(cv);
            done = is_terminal(&visible_status(run_id));
            if !done {
                pg_sys::ConditionVariableTimedSleep(cv, remaining, pg_sys::PG_WAIT_EXTENSION);
            }
            pg_sys::ConditionVariableCancelSleep();
        }
        if !done {
            done = is_terminal(&visible_status(run_id));
        }
    }
    done
}

/// `jobs.cancel(run_id)`: a queued run becomes `cancelled` (it never
/// runs); a running one has its statement cancelled and ends `cancelled`.
/// False if the run had already finished.
#[pg_extern(volatile, parallel_unsafe)]
fn cancel(run_id: Option<i64>) -> bool {
    let run_id = required(run_id, "run_id");
    visible_status(run_id); // the ownership check

    // Decide with the run's row locked: a run between the queue and an
    // executor (being claimed, or reserved runs on their way back to the
    // queue) is settled by whoever holds the row, so wait for them and read
    // where it ended up; claimers skip locked rows, so a queued run stays
    // queued meanwhile. The lock is taken in a subtransaction and kept only
    // if the run is cancelled here: held to the end of the caller's
    // transaction, it would stall the scheduler's updates of a run that goes
    // on (showing it running, recording it).
    // SAFETY: reads of two globals, always valid in a transaction.
    let (saved_cx, saved_owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    // SAFETY: a SQL function runs inside a transaction, where an internal
    // subtransaction may begin (a null name is allowed).
    unsafe { pg_sys::BeginInternalSubTransaction(std::ptr::null()) };
    let cancelled_here = cancel_locked(run_id);
    // SAFETY: `cancel_locked` returned normally, so the subtransaction we
    // began is still the current one: end it (release or roll back), then
    // restore the memory context and resource owner saved before it, which
    // belong to the enclosing transaction and so are still alive, as the
    // PL/pgSQL exception-block pattern does. (An ERROR in `cancel_locked`
    // unwinds past here; the caller's abort then cleans up the
    // subtransaction.)
    unsafe {
        if cancelled_here == Some(true) {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(saved_cx);
        pg_sys::CurrentResourceOwner = saved_owner;
    }
    match cancelled_here {
        Some(true) => {
            hooks::runs_finished_at_commit();
            hooks::runs_ended_at_commit(RunStatus::Cancelled, 1);
            // Runs waiting for it are skipped (by the scheduler, at commit).
            hooks::waiting_changed_at_commit();
            true
        }
        // Its executor was asked to stop it.
        None => true,
        Some(false) => false,
    }
}

/// [`cancel`]'s decision, with the run's row locked: `Some(true)` if the
/// run was marked cancelled here (it had not started), `None` if its
/// executor was interrupted, `Some(false)` if there was nothing to cancel.
fn cancel_locked(run_id: i64) -> Option<bool> {
    let status = bgw::as_superuser(|| runs::lock_status(run_id))
        .map(|s| s.parse::<RunStatus>().or_raise("reading a run's status"));
    let Some(status) = status else {
        return Some(false); // no such run (or none we can read)
    };
    // Reserved by a pooled executor and not started (withdrawn): it will
    // not start now. (Should the caller roll back, the run stays `starting`
    // with no executor holding it, and the scheduler marks it crashed: it
    // never ran.)
    // SAFETY: a plain global, set once when the backend connects.
    let holder =
        cancel::needs_holder(status).then(|| shmem::cancel_run(unsafe { pg_sys::MyDatabaseId }, run_id));
    match cancel::decide(status, holder) {
        cancel::Verdict::LeftToExecutor => return None,
        cancel::Verdict::NothingToCancel => return Some(false),
        cancel::Verdict::MarkCancelled => {}
    }
    bgw::as_superuser(|| runs::mark_cancelled(run_id))
        .unwrap_or_else(|e| error!("pg_jobs: cannot cancel run {run_id}: {e}"));
    Some(true)
}

/// `jobs.retry(run_id)`: run a finished run's command again, as a new run
/// with its settings (what an operator clicks on a failed run). For whoever
/// may see the run and run things as its owner; a run not finished yet is
/// refused (cancel it first). Returns the new run's id.
#[pg_extern(volatile, parallel_unsafe)]
fn retry(run_id: Option<i64>) -> i64 {
    let run_id = required(run_id, "run_id");
    let status = visible_status(run_id);
    if !is_terminal(&status) {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("run {run_id} is not finished (it is {status})"),
            Some("Wait for it with jobs.wait, or stop it with jobs.cancel, then retry it."),
        );
    }
    let (owner, datid) = bgw::as_superuser(|| runs::owner_and_database(run_id))
        .or_raise("reading a run")
        .unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                format!("run {run_id} does not exist"),
                None,
            )
        });
    // Running its command again is running something as its owner.
    crate::catalog::acl::check_run_as(owner, datid);
    crate::sql_api::bounds::admit_queued_run(owner);
    let id = returned_id(bgw::as_superuser(|| runs::resubmit(run_id)), "queue the run");
    hooks::submitted_at_commit(id);
    id
}

/// `jobs.result(run_id)`: the rows the run's last statement returned, one
/// JSON object per row (column name → value), at most
/// `pg_jobs.max_result_bytes` of them (`jobs.run.result_truncated` says if
/// some were dropped). Only for runs you can see: your roles' runs.
#[pg_extern(volatile, parallel_unsafe)]
fn result(run_id: Option<i64>) -> SetOfIterator<'static, pgrx::JsonB> {
    let run_id = required(run_id, "run_id");
    visible_status(run_id); // the ownership check: RLS on jobs.run
    let rows = bgw::as_superuser(|| results::rows(run_id));
    SetOfIterator::new(rows)
}

/// The live worker registry; read it through the view `jobs.workers`.
#[pg_extern(volatile, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _workers() -> TableIterator<
    'static,
    (
        name!(kind, String),
        name!(pid, Option<i32>),
        name!(datid, Option<pg_sys::Oid>),
        name!(roleid, Option<pg_sys::Oid>),
        name!(job_id, Option<i64>),
        name!(run_id, Option<i64>),
        name!(state, String),
        name!(since, Option<TimestampWithTimeZone>),
    ),
> {
    let rows: Vec<_> = shmem::snapshot()
        .into_iter()
        .map(|s| {
            (
                s.kind.as_str().to_owned(),
                (s.pid != 0).then_some(s.pid),
                (s.db != 0).then_some(pg_sys::Oid::from(s.db)),
                (s.role != 0).then_some(pg_sys::Oid::from(s.role)),
                (s.job_id != 0).then_some(s.job_id),
                (s.run_id != 0).then_some(s.run_id),
                s.state.as_str().to_owned(),
                TimestampWithTimeZone::try_from(s.since).ok(),
            )
        })
        .collect();
    TableIterator::new(rows)
}
