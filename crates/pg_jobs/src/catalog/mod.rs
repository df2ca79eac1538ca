//! pg_jobs' own tables seen from Rust: access checks, the schema version a
//! database is at, and pg_jobs' statements planned once per process.

pub mod acl;
pub mod plans;
pub mod row;
pub mod runs;
pub mod schema_version;
