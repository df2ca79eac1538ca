//! PostgreSQL plumbing with no pg_jobs policy in it: background-worker
//! signals, latches and transactions, privilege switching, and time
//! conversion.

pub mod bgw;
pub mod error;
pub mod time;
