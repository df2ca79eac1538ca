//! pg_jobs' own tables seen from Rust: every statement against them lives
//! here, one module per table, with its kept plan and its row decoding.
//! Workers and the SQL API call the named functions and pass and get typed
//! values. Also: access checks, and what the installed schema has.
//!
//! - [`runs`]: `jobs.run` (the queue, outcomes, history);
//! - [`results`]: `jobs.run_result` (rows kept for `jobs.result`);
//! - [`jobs`]: `jobs.job` (scheduled job definitions);
//! - [`daemons`]: `jobs.daemon` (daemon definitions, their exits);
//! - [`queues`]: `jobs.queue` (named queues, their limits at dispatch and claim);
//! - [`definitions`]: `jobs.definition` (what pg_dump carries of the three);
//! - [`owned`]: what those two share: rows a role owns by name (counting,
//!   removing, moving a role's);
//! - [`schema_version`]: whether the extension is here, and its schema's version;
//! - [`acl`]: access checks (which job or daemon the caller may change);
//! - [`ownership`]: each owner's ownership anchor, the object that makes
//!   PostgreSQL's DROP ROLE, REASSIGN OWNED and DROP OWNED see its jobs;
//! - [`plans`]: statements planned once per process; [`row`]: reading a column.

pub mod acl;
pub mod chains;
pub mod daemons;
pub mod definitions;
pub mod jobs;
pub mod owned;
pub mod ownership;
pub mod plans;
pub mod queues;
pub mod results;
pub mod row;
pub mod runs;
pub mod schema_version;
