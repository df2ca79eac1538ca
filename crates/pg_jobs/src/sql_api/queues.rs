//! Named queues from SQL: `jobs.create_queue`, `alter_queue`,
//! `pause_queue`, `resume_queue`, `drop_queue`, and the check that the
//! caller may send runs to a queue (`jobs.submit(queue => …)`, a job's
//! `queue`).
//!
//! Who may do what: a queue belongs to the role that created it. That
//! role, the roles that act for it (`jobs._acts_for`, as for jobs), and
//! superusers may change, pause, resume and drop it, and send runs to it;
//! nobody else sees it.

use crate::catalog::queues::{self, Lock, Queue, Settings};
use crate::hooks;
use crate::pg::bgw;
use crate::pg::error::raise;
use crate::sql_api::validate::required;
use pg_jobs_core::queue as rule;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// Raise the error of a bad argument.
fn check<T>(r: Result<T, rule::Invalid>) -> T {
    r.unwrap_or_else(|e| raise(Code::ERRCODE_INVALID_PARAMETER_VALUE, e.message, None))
}

fn me() -> pg_sys::Oid {
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    unsafe { pg_sys::GetUserId() }
}

/// Queue `name`, if the caller acts for its owner (42704 if there is none,
/// 42501 if it belongs to a role the caller does not act for); its row
/// locked as `lock` says, until commit.
pub(crate) fn find_mine(name: &str, lock: Lock) -> Queue {
    let Some(q) = bgw::as_superuser(|| queues::find(name, lock)) else {
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("queue \"{name}\" does not exist"),
            Some("SELECT name FROM jobs.queue_status lists the queues you can use."),
        )
    };
    if !crate::pg::acl::acts_for(me(), q.owner) {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be the owner of queue \"{name}\", or act for it"),
            None,
        );
    }
    q
}

/// The queue a run or job is sent to (`queue =>`): `None` for NULL, else
/// the name of a queue the caller may use.
pub(crate) fn checked_queue(queue: Option<&str>) -> Option<String> {
    let name = queue?;
    match bgw::as_superuser(|| queues::owner_of(name)) {
        Some(owner) if crate::pg::acl::acts_for(me(), owner) => Some(name.to_owned()),
        // The errors, as for the other queue functions.
        _ => Some(find_mine(name, Lock::None).name),
    }
}

/// `jobs.create_queue(...)`: a new queue of the calling role.
#[pg_extern(volatile, parallel_unsafe)]
fn _create_queue(
    name: Option<&str>,
    max_concurrency: Option<i32>,
    max_per_key: Option<i32>,
    rate_limit: Option<i32>,
    rate_period_us: Option<i64>,
    paused: Option<bool>,
) {
    let name = check(rule::name(required(name, "name")));
    let settings = Settings {
        max_concurrency: check(rule::limit("max_concurrency", max_concurrency.unwrap_or(0))).stored(),
        max_per_key: check(rule::limit("max_per_key", max_per_key.unwrap_or(0))).stored(),
        rate_limit: check(rule::rate_limit(rate_limit.unwrap_or(0))).stored(),
        rate_period_us: check(rule::rate_period(required(rate_period_us, "rate_period"))),
        paused: required(paused, "paused"),
    };
    let owner = me();
    if !bgw::as_superuser(|| queues::create(name, owner, &settings)) {
        raise(
            Code::ERRCODE_DUPLICATE_OBJECT,
            format!("queue \"{name}\" already exists"),
            Some("Change it with jobs.alter_queue."),
        );
    }
}

/// `jobs.alter_queue(name, ...)`: change the given settings (NULL keeps
/// one; 0 removes a limit).
#[pg_extern(volatile, parallel_unsafe)]
fn _alter_queue(
    name: Option<&str>,
    max_concurrency: Option<i32>,
    max_per_key: Option<i32>,
    rate_limit: Option<i32>,
    rate_period_us: Option<i64>,
    paused: Option<bool>,
) {
    let name = required(name, "name");
    // Checked before the look-up: bad input is refused the same for all.
    let max_concurrency = max_concurrency.map(|v| check(rule::limit("max_concurrency", v)).stored());
    let max_per_key = max_per_key.map(|v| check(rule::limit("max_per_key", v)).stored());
    let rate_limit = rate_limit.map(|v| check(rule::rate_limit(v)).stored());
    let rate_period_us = rate_period_us.map(|v| check(rule::rate_period(v)));
    let q = find_mine(name, Lock::Change);
    let kept = q.settings();
    let settings = Settings {
        max_concurrency: max_concurrency.unwrap_or(kept.max_concurrency),
        max_per_key: max_per_key.unwrap_or(kept.max_per_key),
        rate_limit: rate_limit.unwrap_or(kept.rate_limit),
        rate_period_us: rate_period_us.unwrap_or(kept.rate_period_us),
        paused: paused.unwrap_or(kept.paused),
    };
    bgw::as_superuser(|| queues::update(q.id, &settings));
    // Raised limits, a resumed queue: runs may start now.
    hooks::wake_scheduler_at_commit();
}

fn set_paused(name: Option<&str>, paused: bool) {
    let name = required(name, "name");
    let q = find_mine(name, Lock::Change);
    if q.paused != paused {
        let settings = Settings {
            paused,
            ..q.settings()
        };
        bgw::as_superuser(|| queues::update(q.id, &settings));
    }
    hooks::wake_scheduler_at_commit();
}

/// `jobs.pause_queue(name)`: start none of its runs until resumed. Runs
/// already handed to an executor go on; it waits for a dispatch or claim
/// in flight, so nothing starts after it commits.
#[pg_extern(volatile, parallel_unsafe)]
fn pause_queue(name: Option<&str>) {
    set_paused(name, true);
}

/// `jobs.resume_queue(name)`: start its runs again, at once, in order.
#[pg_extern(volatile, parallel_unsafe)]
fn resume_queue(name: Option<&str>) {
    set_paused(name, false);
}

/// `jobs.drop_queue(name, force)`: remove a queue. Refused while jobs send
/// their runs to it (2BP01), and while runs of it have not started
/// (55006) unless `force`, which cancels them.
#[pg_extern(volatile, parallel_unsafe)]
fn drop_queue(name: Option<&str>, force: default!(Option<bool>, false)) {
    let name = required(name, "name");
    let force = required(force, "force");
    // FOR UPDATE: waits for transactions that sent runs to it to commit,
    // so that the count below sees their runs.
    let q = find_mine(name, Lock::Drop);
    let (unstarted, jobs) = bgw::as_superuser(|| queues::users(&q.name));
    if jobs > 0 {
        raise(
            Code::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot drop queue \"{name}\": {jobs} job(s) send their runs to it"),
            Some("Move them out first: jobs.alter_job(name, queue => '')."),
        );
    }
    if unstarted > 0 {
        if !force {
            raise(
                Code::ERRCODE_OBJECT_IN_USE,
                format!("cannot drop queue \"{name}\": {unstarted} of its runs have not started"),
                Some("Wait for them, or drop it with force => true, which cancels them."),
            );
        }
        let cancelled = bgw::as_superuser(|| crate::catalog::runs::cancel_unstarted_in_queue(&q.name));
        hooks::runs_ended_at_commit(pg_jobs_core::run::RunStatus::Cancelled, cancelled);
        // What waited for the cancelled runs is decided, and wait()ers woken.
        hooks::waiting_changed_at_commit();
        hooks::runs_finished_at_commit();
    }
    bgw::as_superuser(|| queues::remove(q.id));
}
