//! `jobs.run`: every statement pg_jobs runs against the run table. Each
//! one that writes a run's status is one transition of the run model in
//! `pg_jobs_core::run`, named by the `/* run event: NAME */` marker at the
//! start of its text (`crates/itest/tests/run_model.rs` checks every one
//! against the model's guard and target).
//!
//! - [`queue`]: taking runs from the queue (dispatch, executors' claims)
//!   and putting them back;
//! - [`ends`]: runs starting, ending (harvest, crash sweep, the record in the
//!   command's own transaction) and their retries;
//! - [`create`]: new runs (submit, run_now, due jobs firing);
//! - [`history`]: what the SQL API reads, cancel (also of a role's queued
//!   runs at DROP OWNED), reassigning queued runs, and purging history.

mod create;
mod ends;
mod history;
mod queue;
mod waiting;

pub(crate) use create::*;
pub(crate) use ends::*;
pub(crate) use history::*;
pub(crate) use queue::*;
pub(crate) use waiting::*;

/// The dispatch order of a role's queued runs (its *lane*): highest
/// priority first, then the earliest due (a retry's or `start_at`'s
/// `not_before`, else the due instant of a scheduled run, else when it was
/// submitted), then the oldest. Across roles, the scheduler shares
/// executors fairly (`pg_jobs_core::fair`).
///
/// With the owner in front, it must stay the key of the index `run_queue`
/// in `crates/pg_jobs/sql/schema.sql`: `(owner, priority DESC,
/// (COALESCE(not_before, scheduled_for, submitted_at)), id) WHERE status =
/// 'queued'`. With it, taking the head of a long lane is a top-N index
/// scan; with any other order, a sort of the whole lane on every pass and
/// every claim. Every statement that takes queued runs in order (the
/// scheduler's dispatch, both executor claims) uses this;
/// `the_dispatch_order_is_the_run_queue_index` in
/// `crates/itest/tests/run_model.rs` compares it with the index.
const DISPATCH_ORDER: &str =
    "ORDER BY r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id";

/// The overlap rule in SQL, about a queued run `r` (its `job_id`): it may
/// start unless it is a run of a job whose overlap policy is not `allow`
/// while other runs of that job (`$others`, a condition on `o`) are going.
/// A submitted run (no job), or one whose job is gone, may always start.
///
/// This is `pg_jobs_core::overlap::Overlap::may_start` (crates/core/src/
/// overlap.rs) said in SQL, where the scheduler and the executors decide
/// with the queue's rows locked: `allow` may always start, `skip` and
/// `queue` only while no other run is active. The unit test
/// `may_start_is_the_rule_the_sql_states` there lists the policy table;
/// `the_overlap_predicate_is_overlap_may_start` in
/// `crates/itest/tests/run_model.rs` checks this text against `may_start`
/// and the run model's status sets. Used as [`MAY_START`] and
/// [`MAY_START_IN_BATCH`]: the one definition of the predicate.
macro_rules! overlap_lets_start {
    ($others:literal) => {
        concat!(
            "(r.job_id IS NULL OR NOT EXISTS (
               SELECT 1 FROM jobs.job j
                WHERE j.id OPERATOR(pg_catalog.=) r.job_id
                  AND j.overlap OPERATOR(pg_catalog.<>) 'allow'
                  AND EXISTS (SELECT 1 FROM jobs.run o
                               WHERE o.job_id OPERATOR(pg_catalog.=) r.job_id
                                 AND ",
            $others,
            ")))"
        )
    };
}

/// Queued run `r` may start now: no other run of its job is starting or
/// running (unless the job allows overlap). The scheduler's dispatch and
/// an executor's claim of the queue's head.
const MAY_START: &str = overlap_lets_start!("o.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')");

/// Stricter, for a batch claim: no *other* run of its job is queued,
/// starting or running either. Then no other claimer, which cannot see the
/// batch's uncommitted claim, can take a second run of that job.
const MAY_START_IN_BATCH: &str = overlap_lets_start!(
    "o.id OPERATOR(pg_catalog.<>) r.id AND o.status OPERATOR(pg_catalog.=) ANY ('{queued,starting,running}')"
);
