//! The SQL API (schema `jobs`): the functions users call. They validate
//! everything, check privileges, and are the only write path to pg_jobs'
//! tables; workers learn of changes when the writing transaction commits.

mod args;
mod backups;
pub(crate) mod bounds;
mod daemons;
pub(crate) mod jobs;
mod metrics;
mod ownership;
pub(crate) mod queues;
mod runs;
pub mod validate;
mod visibility;
