//! pg_jobs_core — the decisions of pg_jobs, with no PostgreSQL in sight.
//!
//! The extension crate (`pg_jobs`) is a thin shell of background workers,
//! shared memory and SPI around this crate. Everything here is plain Rust so
//! that it can be unit- and property-tested with `cargo test`:
//!
//! * [`run`] — the life of a run (one execution of a command): its
//!   statuses, the events that change them (the one model every status
//!   write obeys), how a run ended, retries, why a run may not start now;
//! * [`executor_phase`] — the life of an executor's registry slot;
//! * [`fair`] — how a scheduler pass shares free executors among roles;
//! * [`backoff`] — how long to wait before restarting a worker that died;
//! * [`daemon`] — where a daemon runs, why it cannot start, its lifecycle
//!   under its supervisor and when an ended one restarts;
//! * [`launcher`] — what the launcher should do for each database;
//! * [`metrics`] — the counters and histograms kept per database since start;
//! * [`quota`] — the amortized per-role bound on queued runs;
//! * [`ownership`] — the object that makes PostgreSQL's `DROP ROLE`,
//!   `REASSIGN OWNED` and `DROP OWNED` see a role's jobs and daemons;
//! * [`restore`] — what a queue, job or daemon brought back by a restore becomes;
//! * [`sqlstate`] — PostgreSQL's packed SQLSTATE codes as text;
//! * [`cron`] and [`schedule`] — what a job's schedule says and when it is
//!   next due (first due time after a load, prewarm instants), time zones
//!   and DST included.
//! * [`params`] — a command's `$1 … $n` and the values `args` gives them:
//!   what fits together, the errors' messages, and how the values travel
//!   to the executor with the command;
//! * [`pg_cron`] — pg_cron 1.6's schedule text, checked as pg_cron checks it, in pg_jobs' grammar.
//!
//! Terms used throughout: a *job* is a definition (a command, a schedule, an
//! owner); a *run* is one execution of a command, queued, running, then
//! finished exactly once.

pub mod backoff;
pub mod build_id;
pub mod cron;
pub mod daemon;
pub mod executor_phase;
pub mod fair;
pub mod launcher;
pub mod metrics;
pub mod notify;
pub mod overlap;
pub mod ownership;
pub mod params;
pub mod pg_cron;
pub mod queue;
pub mod quota;
pub mod restore;
pub mod run;
pub mod schedule;
pub mod sqlstate;
