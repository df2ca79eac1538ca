//! Named queues (`jobs.create_queue`): their settings, checked as the SQL
//! API takes them, and the rule of each limit.
//!
//! A queue bounds the runs submitted to it (or fired by jobs that name it)
//! in three ways, all optional:
//! - `max_concurrency`: executors running its runs at once. An executor
//!   that took several runs of the queue at once runs them one after the
//!   other, so it counts once;
//! - `max_per_key`: the same, among its runs of one `concurrency_key`;
//! - `rate_limit` per `rate_period`: runs started in any window of that
//!   length ([`rate::StartLog`]).
//!
//! A paused queue starts nothing. Where the limits are enforced (the
//! scheduler's dispatch and the executors' own claims, with the queue's row
//! locked; the rate at each run's start, in shared memory) is the
//! extension's; what they mean is here.

pub mod rate;

/// SQLSTATE invalid_parameter_value.
const INVALID_PARAMETER_VALUE: &str = "22023";

/// Most starts a rate limit may allow per period: each start of the
/// current window is kept in shared memory (8 bytes each).
pub const MAX_RATE_LIMIT: i32 = 1000;

/// Longest queue name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// Shortest and longest `rate_period`, in microseconds.
pub const MIN_RATE_PERIOD_US: i64 = 1_000;
pub const MAX_RATE_PERIOD_US: i64 = 86_400_000_000;

/// A run's named queue, as its executor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTag {
    /// `jobs.queue.id`: what the queue's start log in shared memory is
    /// known by (with the database).
    pub id: i64,
    pub name: String,
    /// Its rate limit when the run was handed over, if it has one.
    pub rate: Option<Rate>,
}

/// A rate limit: at most `limit` starts in any window of `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub limit: u32,
    pub period_us: i64,
}

impl Rate {
    /// From a queue's columns (`rate_limit`, `rate_period` in µs).
    pub fn of(limit: Option<i32>, period_us: i64) -> Option<Rate> {
        let limit = u32::try_from(limit?).ok().filter(|&l| l > 0)?;
        Some(Rate {
            limit,
            period_us: period_us.max(MIN_RATE_PERIOD_US),
        })
    }
}

/// A limit as the SQL API takes it: `0` means none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    None,
    AtMost(u32),
}

impl Limit {
    /// The value stored in the table: NULL for none.
    pub fn stored(self) -> Option<i32> {
        match self {
            Limit::None => None,
            Limit::AtMost(n) => Some(n as i32),
        }
    }
}

/// Bad input to a queue function: SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub sqlstate: &'static str,
    pub message: String,
}

fn invalid(message: String) -> Invalid {
    Invalid {
        sqlstate: INVALID_PARAMETER_VALUE,
        message,
    }
}

/// `max_concurrency`, `max_per_key`: 0 (none) or a positive count.
pub fn limit(what: &str, value: i32) -> Result<Limit, Invalid> {
    match value {
        0 => Ok(Limit::None),
        n if n > 0 => Ok(Limit::AtMost(n as u32)),
        n => Err(invalid(format!(
            "{what} must be 0 (no limit) or a positive number, not {n}"
        ))),
    }
}

/// `rate_limit`: 0 (none) up to [`MAX_RATE_LIMIT`].
pub fn rate_limit(value: i32) -> Result<Limit, Invalid> {
    if value > MAX_RATE_LIMIT {
        return Err(invalid(format!(
            "rate_limit must be at most {MAX_RATE_LIMIT} starts per rate_period, not {value}"
        )));
    }
    limit("rate_limit", value)
}

/// `rate_period`, in microseconds: from 1 ms to 1 day.
pub fn rate_period(us: i64) -> Result<i64, Invalid> {
    if (MIN_RATE_PERIOD_US..=MAX_RATE_PERIOD_US).contains(&us) {
        Ok(us)
    } else {
        Err(invalid(
            "rate_period must be between 1 millisecond and 1 day".to_owned(),
        ))
    }
}

/// A queue's name: not empty, at most [`MAX_NAME_BYTES`].
pub fn name(name: &str) -> Result<&str, Invalid> {
    if name.is_empty() {
        return Err(invalid("a queue name must not be empty".to_owned()));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "a queue name must be at most {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(name)
}

/// A run's `concurrency_key`: only with a queue, at most
/// [`MAX_NAME_BYTES`].
pub fn concurrency_key(key: &str, has_queue: bool) -> Result<&str, Invalid> {
    if !has_queue {
        return Err(invalid(
            "concurrency_key needs a queue: the per-key limit is a queue's max_per_key".to_owned(),
        ));
    }
    if key.len() > MAX_NAME_BYTES {
        return Err(invalid(format!(
            "a concurrency_key must be at most {MAX_NAME_BYTES} bytes"
        )));
    }
    Ok(key)
}

/// How many more executors may take runs of a queue now: `max_concurrency`
/// less the executors holding its runs (`None`: no limit).
pub fn room(max_concurrency: Option<i32>, holding: usize) -> Option<usize> {
    max_concurrency.map(|m| (m.max(0) as usize).saturating_sub(holding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_no_limit_and_negatives_are_refused() {
        assert_eq!(limit("max_concurrency", 0), Ok(Limit::None));
        assert_eq!(limit("max_concurrency", 4), Ok(Limit::AtMost(4)));
        let e = limit("max_per_key", -1).unwrap_err();
        assert_eq!(e.sqlstate, "22023");
        assert!(e.message.contains("max_per_key"), "{}", e.message);
        assert_eq!(Limit::None.stored(), None);
        assert_eq!(Limit::AtMost(3).stored(), Some(3));
    }

    #[test]
    fn rate_limits_and_periods_are_bounded() {
        assert_eq!(rate_limit(MAX_RATE_LIMIT), Ok(Limit::AtMost(1000)));
        assert!(rate_limit(MAX_RATE_LIMIT + 1).is_err());
        assert!(rate_period(0).is_err());
        assert!(rate_period(999).is_err());
        assert_eq!(rate_period(1_000_000), Ok(1_000_000));
        assert!(rate_period(MAX_RATE_PERIOD_US + 1).is_err());
    }

    #[test]
    fn names_and_keys() {
        assert!(name("").is_err());
        assert!(name(&"q".repeat(201)).is_err());
        assert_eq!(name("mail"), Ok("mail"));
        assert!(concurrency_key("k", false).is_err());
        assert_eq!(concurrency_key("", true), Ok(""));
    }

    #[test]
    fn room_is_what_is_left_of_the_limit() {
        assert_eq!(room(None, 10), None);
        assert_eq!(room(Some(4), 1), Some(3));
        assert_eq!(room(Some(4), 6), Some(0));
    }
}
