//! The life of a run (one execution of a command) — the one model every
//! write of `jobs.run.status` obeys.
//!
//! * [`status`] — the statuses, and sets of them as SQL guards;
//! * [`transition`] — the events that write a status, where each may
//!   happen and what it leads to: [`RunEvent::rule`] is the model,
//!   [`transition()`], [`RunStatus::on`], [`RunStatus::can_become`] and
//!   [`RunEvent::from_statuses`] are derived from it;
//! * [`outcome`] — a command's result → how its run ended (cancel vs
//!   timeout vs failure), a vanished executor, the timeout kill deadline;
//! * [`retry`] — whether an ended run is tried again, and when;
//! * [`start`] — why a queued run may not start now;
//! * [`cancel`] — what `jobs.cancel` does with a run, given who holds it;
//! * [`depends`] — when a run waiting on others (`depends_on`) runs or is
//!   skipped;
//! * [`statement_timeout`] — which statement timeout a command's next
//!   statement gets, as under `psql -c`.
//!

pub mod cancel;
pub mod depends;
pub mod outcome;
pub mod retry;
pub mod start;
pub mod statement_timeout;
pub mod status;
pub mod transition;

pub use outcome::{Ending, Reported};
pub use status::{RunStatus, StatusSet, UnknownStatus};
pub use transition::{check_update_sql, transition, IllegalTransition, RunEvent, Source, SqlMismatch};

#[cfg(test)]
mod model_tests;
