//! pg_jobs_core — the decisions of pg_jobs, with no PostgreSQL in sight.
//!
//! The extension crate (`pg_jobs`) is a thin shell of background workers,
//! shared memory and SPI around this crate. Everything here is plain Rust so
//! that it can be unit- and property-tested with `cargo test`:
//!
//! * [`run_state`] — the life of a run (one execution of a command) and
//!   which transitions between its states are legal;
//! * [`backoff`] — how long to wait before restarting a worker that died;
//! * [`daemon`] — where a daemon runs and when an ended one restarts;
//! * [`launcher`] — what the launcher should do for each database;
//! * [`sqlstate`] — PostgreSQL's packed SQLSTATE codes as text;
//! * [`cron`] and [`schedule`] — what a job's schedule says and when it is
//!   next due, time zones and DST included; retry delays.
//!
//! Terms used throughout: a *job* is a definition (a command, a schedule, an
//! owner); a *run* is one execution of a command, queued, running, then
//! finished exactly once.

pub mod backoff;
pub mod cron;
pub mod daemon;
pub mod launcher;
pub mod overlap;
pub mod run_state;
pub mod schedule;
pub mod sqlstate;
