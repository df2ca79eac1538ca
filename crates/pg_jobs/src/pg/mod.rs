//! PostgreSQL plumbing with no pg_jobs policy in it: background-worker
//! signals, latches and transactions, privilege switching, time
//! conversion, and PostgreSQL's timeouts.

pub mod acl;
pub mod bgw;
pub mod error;
pub mod notify;
pub mod portal;
pub mod time;
pub mod timeout;
pub mod tupdesc;
