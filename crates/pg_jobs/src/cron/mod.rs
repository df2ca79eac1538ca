//! The pg_cron compatibility layer: the C functions behind the second
//! extension, `pg_jobs_cron`, whose SQL (`sql/cron/`) creates schema `cron`
//! with pg_cron 1.6's interface over pg_jobs' own jobs and runs, and
//! `jobs.import_pg_cron()`, which moves a running pg_cron's jobs to pg_jobs
//! in one transaction. docs/pg_cron.md has the reference and the runbook.
//!
//! pg_cron's rules, not pg_jobs', decide here where they differ: a job
//! belongs to the role named by its `username` exactly (not to roles it is
//! a member of), only superusers act for other users, and schedules follow
//! pg_cron's grammar ([`pg_jobs_core::pg_cron`]). Everything else (writing
//! the job, waking the scheduler, ownership anchors) goes through the same
//! catalog code as `jobs.*`.

mod api;
mod history;
mod import;
mod roles;
