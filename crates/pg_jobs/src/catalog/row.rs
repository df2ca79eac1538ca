//! Reading a column of a row pg_jobs' own statements returned. A value of
//! the wrong type is a bug or a broken catalog, never a reason to carry on
//! with a made-up 0, "" or false (a run id 0 would be dispatched): it is an
//! ERROR, which the worker's error recovery turns into a rolled-back unit
//! of work and a retry.

use crate::pg::error::{raise, OrRaise};
use pgrx::prelude::*;
use pgrx::spi::SpiHeapTupleData;
use pgrx::PgSqlErrorCode;

/// Column `i` (1-based) of `row`; `None` only for SQL NULL.
pub fn get_opt<T: FromDatum + IntoDatum>(row: &SpiHeapTupleData, i: usize) -> Option<T> {
    row.get::<T>(i).or_raise("reading a row of pg_jobs' catalog")
}

/// Column `i` (1-based) of `row`, which the statement guarantees is not NULL.
pub fn get_req<T: FromDatum + IntoDatum>(row: &SpiHeapTupleData, i: usize) -> T {
    get_opt(row, i).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("pg_jobs: column {i} of a row of pg_jobs' catalog is NULL"),
            None,
        )
    })
}
