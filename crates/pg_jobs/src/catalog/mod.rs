//! pg_jobs' own tables seen from Rust: the statements against them, one
//! module per table, with their kept plans and their row decoding.
//! Workers and the SQL API call the named functions and pass and get typed
//! values. Also: access checks, and what the installed schema has.
//!
//! - [`runs`]: `jobs.run` (the queue, outcomes, history);
//! - [`results`]: `jobs.run_result` (rows kept for `jobs.result`);
//! - [`schema_version`]: what the installed schema has;
//! - [`acl`]: access checks (which job or daemon the caller may change);
//! - [`plans`]: statements planned once per process; [`row`]: reading a column.

pub mod acl;
pub mod plans;
pub mod results;
pub mod row;
pub mod runs;
pub mod schema_version;
