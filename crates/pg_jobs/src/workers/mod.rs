//! The background workers. They talk to each other only through shared
//! memory (`crate::shmem`) and pg_jobs' tables, never by calling one
//! another's functions.

pub mod daemon;
pub mod executor;
pub mod launcher;
pub mod scheduler;

use crate::gucs;
use pgrx::prelude::*;

/// Log a run's end as `pg_jobs.log_runs` asks (all runs, errors only, or none).
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
