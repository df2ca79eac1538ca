//! Running a command the way psql runs a query string: statements one by
//! one, top-level where PostgreSQL requires it, the last statement's rows
//! captured as the run's result; and the dynamic shared memory segment a
//! command travels in from a scheduler to its worker.

pub mod command_segment;
pub mod params;
pub mod result_capture;
pub mod runner;
