//! Daemons: user-declared long-running commands. The supervisor runs inside
//! each database's scheduler; the worker is the daemon's own process.

pub mod supervisor;
pub mod worker;
