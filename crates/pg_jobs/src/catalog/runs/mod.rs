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
//! - [`history`]: what the SQL API reads, cancel, and purging history.

mod create;
mod ends;
mod history;
mod queue;

pub(crate) use create::*;
pub(crate) use ends::*;
pub(crate) use history::*;
pub(crate) use queue::*;
