//! The SQL API for daemons: `jobs.daemon` declares (or redefines) one,
//! `jobs.stop_daemon` / `jobs.start_daemon` switch it, `jobs.drop_daemon`
//! removes it, `jobs.daemon_status` shows what its scheduler is doing.
//!
//! As with jobs, a daemon belongs to the role it runs as; declaring one as
//! a role needs membership in it (SET ROLE semantics), a superuser's only by
//! superusers. The definitions are written as the bootstrap superuser, only
//! here; the scheduler reloads them when the writing transaction commits.

use crate::catalog::daemons;
use crate::catalog::owned::{self, Owned};
use crate::catalog::ownership::{self, Change};
use crate::hooks;
use crate::pg::bgw;
use crate::pg::error::{raise, returned_id};
use crate::shmem;
use crate::sql_api::validate::{check_command, required};
use pg_jobs_core::daemon::{DaemonState, RunOn};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// Shortest restart delay: a daemon that returns at once must not spin
/// (20 daemons restarting every 100 ms made 175 process starts a second).
const MIN_RESTART_DELAY_MS: i64 = pg_jobs_core::daemon::MIN_RESTART_DELAY as i64;
/// Longest restart delay: a day.
const MAX_RESTART_DELAY_MS: i64 = 86_400_000;

/// `jobs.daemon(...)`: declare the daemon `name` (per owner), or redefine
/// it (a running one restarts with the new definition). Returns its id.
#[pg_extern(volatile, parallel_unsafe)]
#[allow(clippy::too_many_arguments)]
fn _daemon(
    name: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    run_on: Option<&str>,
    restart_delay_ms: Option<i64>,
    max_restart_delay_ms: Option<i64>,
) -> i64 {
    let name = required(name, "name");
    let command = required(command, "command");
    let database = required(database, "database");
    let run_on = required(run_on, "run_on");
    let restart_delay_ms = required(restart_delay_ms, "restart_delay");
    let max_restart_delay_ms = required(max_restart_delay_ms, "max_restart_delay");
    crate::sql_api::validate::check_name(name, "daemon");
    check_command(command);
    if let Err(e) = run_on.parse::<RunOn>() {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            e,
            Some(
                "primary: where recovery has finished; standby: on hot standbys only (read-only); any: both.",
            ),
        );
    }
    check_restart_delays(restart_delay_ms, max_restart_delay_ms);
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    let owner = run_as.unwrap_or_else(|| unsafe { pg_sys::GetUserId() });
    let datid = crate::catalog::acl::database_oid(database);
    crate::catalog::acl::check_run_as(owner, datid);
    crate::sql_api::bounds::check_new_daemon(owner, name);
    let def = daemons::DaemonDef {
        name,
        owner,
        command,
        database,
        datid,
        run_on,
        restart_delay_ms,
        max_restart_delay_ms,
    };
    let id = returned_id(bgw::as_superuser(|| daemons::save(&def)), "save the daemon");
    hooks::daemons_changed_at_commit();
    ownership::sync(owner, Change::Gained);
    id
}

/// Both restart delays within bounds, the longest no shorter than the first.
fn check_restart_delays(restart_delay_ms: i64, max_restart_delay_ms: i64) {
    if !(MIN_RESTART_DELAY_MS..=MAX_RESTART_DELAY_MS).contains(&restart_delay_ms) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("restart_delay must be between 1 second and 1 day, not {restart_delay_ms} ms"),
            (restart_delay_ms < MIN_RESTART_DELAY_MS).then_some(
                "No daemon restarts more often than once a second; a daemon that should act more often loops inside its command.",
            ),
        );
    }
    if !(restart_delay_ms..=MAX_RESTART_DELAY_MS).contains(&max_restart_delay_ms) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "max_restart_delay must be between restart_delay ({restart_delay_ms} ms) and 1 day, not {max_restart_delay_ms} ms"
            ),
            None,
        );
    }
}

/// The daemon called `name` that the caller may change: one owned by a role
/// the caller is a member of, preferring the caller's own.
fn find_daemon(name: Option<&str>) -> i64 {
    crate::catalog::acl::find_owned("daemon", required(name, "name"))
}

/// Write a daemon's definition as pg_jobs (its only writer) with `write`;
/// its scheduler reloads it when (and only if) the calling transaction commits.
fn write_daemon<T>(what: &str, write: impl FnOnce() -> pgrx::spi::SpiResult<T>) -> T {
    let written = bgw::as_superuser(write).unwrap_or_else(|e| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            format!("could not {what}: {e}"),
            None,
        )
    });
    hooks::daemons_changed_at_commit();
    written
}

/// Stop a daemon and keep it stopped: its command is cancelled, and
/// terminated if it ignores the cancel for 5 seconds.
#[pg_extern(volatile, parallel_unsafe)]
fn stop_daemon(name: Option<&str>) {
    let id = find_daemon(name);
    write_daemon("stop the daemon", || daemons::set_enabled(id, false));
}

/// Start a stopped daemon (at once, with a fresh backoff).
#[pg_extern(volatile, parallel_unsafe)]
fn start_daemon(name: Option<&str>) {
    let id = find_daemon(name);
    write_daemon("start the daemon", || daemons::set_enabled(id, true));
}

/// Remove a daemon (stopping it first, as `stop_daemon` does).
#[pg_extern(volatile, parallel_unsafe)]
fn drop_daemon(name: Option<&str>) -> bool {
    let id = find_daemon(name);
    if let Some(owner) = write_daemon("remove the daemon", || owned::delete(Owned::Daemon, id)) {
        ownership::sync(owner, Change::Lost);
    }
    true
}

/// The daemons' status as their schedulers published it (`jobs.daemon_status`):
/// those of roles the caller is a member of, all for superusers (the last
/// exit message may say things only the owner should read).
#[pg_extern(volatile, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _daemons() -> TableIterator<
    'static,
    (
        name!(home_datid, pg_sys::Oid),
        name!(daemon_id, i64),
        name!(state, String),
        name!(pid, Option<i32>),
        name!(since, Option<TimestampWithTimeZone>),
        name!(restarts, i64),
        name!(last_exit, Option<String>),
        name!(last_exit_at, Option<TimestampWithTimeZone>),
        name!(last_sqlstate, Option<String>),
        name!(last_message, Option<String>),
        name!(next_restart, Option<TimestampWithTimeZone>),
    ),
> {
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    let me = unsafe { pg_sys::GetUserId() };
    let rows: Vec<_> = shmem::all_daemon_entries()
        .into_iter()
        // In a transaction (a SQL function), as the role membership cache
        // needs; an unknown owner is simply not a role we see.
        .filter(|e| crate::pg::acl::sees(me, pg_sys::Oid::from(e.owner)))
        .map(|e| {
            let ts = |t: i64| {
                (t != 0)
                    .then(|| TimestampWithTimeZone::try_from(t).ok())
                    .flatten()
            };
            let exit = match e.last_exit {
                1 => Some("clean"),
                2 => Some("error"),
                3 => Some("crash"),
                _ => None,
            };
            let errored = e.last_exit >= 2;
            // The scheduler publishes `starting`; the process says when it
            // has connected (without waking the scheduler for it).
            let mut state = DaemonState::from_u8(e.state);
            let (mut pid, mut since) = (e.pid, e.since);
            if state.has_worker() {
                if let Some((p, started)) = shmem::daemon_process(e.home_db, e.daemon_id) {
                    pid = p;
                    if state == DaemonState::Starting && started != 0 {
                        state = DaemonState::Running;
                        since = started;
                    }
                }
            }
            (
                pg_sys::Oid::from(e.home_db),
                e.daemon_id,
                state.as_str().to_owned(),
                (pid != 0).then_some(pid),
                ts(since),
                e.restarts,
                exit.map(str::to_owned),
                ts(e.last_exit_at),
                (errored && e.sqlstate() != "00000").then(|| e.sqlstate()),
                (errored && !e.message().is_empty()).then(|| e.message()),
                ts(e.next_start),
            )
        })
        .collect();
    TableIterator::new(rows)
}
