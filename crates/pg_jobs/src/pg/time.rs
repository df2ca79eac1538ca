//! PostgreSQL keeps `timestamptz` as microseconds since 2000-01-01 UTC; the
//! schedule maths in `pg_jobs_core` uses `jiff::Timestamp`.

use jiff::Timestamp;

/// Microseconds between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

pub fn to_pg(t: Timestamp) -> i64 {
    t.as_microsecond() - PG_EPOCH_OFFSET_US
}

pub fn from_pg(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us + PG_EPOCH_OFFSET_US).unwrap_or(Timestamp::MAX)
}
