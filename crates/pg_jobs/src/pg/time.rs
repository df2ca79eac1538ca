//! PostgreSQL keeps `timestamptz` as microseconds since 2000-01-01 UTC; the
//! schedule maths in `pg_jobs_core` uses `jiff::Timestamp`, whose range
//! (years -9999 to 9999) is narrower than PostgreSQL's and has no
//! `infinity`: every conversion is checked.

use jiff::Timestamp;

/// Microseconds between 1970-01-01 and 2000-01-01.
pub const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;

pub fn to_pg(t: Timestamp) -> i64 {
    // Timestamp's range in microseconds is far inside i64's.
    t.as_microsecond() - PG_EPOCH_OFFSET_US
}

/// A PostgreSQL timestamp as a `Timestamp`; `None` for `±infinity` and
/// instants outside jiff's range.
pub fn from_pg(us: i64) -> Option<Timestamp> {
    us.checked_add(PG_EPOCH_OFFSET_US)
        .and_then(|u| Timestamp::from_microsecond(u).ok())
}

/// [`from_pg`] for values pg_jobs computed itself (a slot's times plus a
/// bounded delay): clamped to jiff's range rather than failing.
pub fn from_pg_clamped(us: i64) -> Timestamp {
    from_pg(us).unwrap_or(if us < 0 { Timestamp::MIN } else { Timestamp::MAX })
}
