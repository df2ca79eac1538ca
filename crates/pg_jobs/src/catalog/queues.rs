//! `jobs.queue`: named queues, as the SQL API changes them and as the
//! scheduler and the executors read them to start their runs.
//!
//! Who may start a queue's runs, and how many, is decided with the
//! queue's row locked (`FOR NO KEY UPDATE`). New executors come to hold a
//! queue's runs only through the scheduler's dispatch, which locks the
//! row (skipping a queue locked right now), counts the executors holding
//! its runs (the registry's `Slot::queue_id`) and marks what it hands over
//! before it commits. An executor that ran one of the queue's runs already
//! holds the queue: to take more of them it locks the row, checks that the
//! queue is not paused nor over its `max_concurrency` (which may have been
//! lowered), and claims, noting the queue in the registry before its claim
//! commits. `jobs.alter_queue`, `pause_queue`, `resume_queue` and
//! `drop_queue` update the row, so they wait for every dispatch and claim
//! in flight, and each later one reads the row as they left it. (Measured
//! against advisory locks taken shared by the executors: 20,000 one-row
//! INSERT runs into a queue with `max_concurrency` 4 kept 90–94 % of the
//! unlimited throughput with the row lock, 64–67 % with advisory locks,
//! whose every take and release goes through the shared lock table.)

use crate::catalog::{plans, row};
use crate::pg::error::OrRaise;
use pg_jobs_core::queue::{QueueTag, Rate};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiHeapTupleData};

/// A queue's row.
#[derive(Debug, Clone)]
pub(crate) struct Queue {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) owner: pg_sys::Oid,
    pub(crate) max_concurrency: Option<i32>,
    pub(crate) max_per_key: Option<i32>,
    pub(crate) rate_limit: Option<i32>,
    pub(crate) rate_period_us: i64,
    pub(crate) paused: bool,
}

impl Queue {
    /// From `QUEUE_COLUMNS` (of `q`) at `first`.
    fn from_row(r: &SpiHeapTupleData, first: usize) -> Queue {
        Queue {
            id: row::get_req(r, first),
            name: row::get_req(r, first + 1),
            owner: row::get_req(r, first + 2),
            max_concurrency: row::get_opt(r, first + 3),
            max_per_key: row::get_opt(r, first + 4),
            rate_limit: row::get_opt(r, first + 5),
            rate_period_us: row::get_opt(r, first + 6).unwrap_or(1_000_000),
            paused: row::get_req(r, first + 7),
        }
    }

    /// Its rate limit, if it has one.
    pub(crate) fn rate(&self) -> Option<Rate> {
        Rate::of(self.rate_limit, self.rate_period_us)
    }

    /// Its settings as stored.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            max_concurrency: self.max_concurrency,
            max_per_key: self.max_per_key,
            rate_limit: self.rate_limit,
            rate_period_us: self.rate_period_us,
            paused: self.paused,
        }
    }

    /// What an executor must know of it to start its runs.
    pub(crate) fn tag(&self) -> QueueTag {
        QueueTag {
            id: self.id,
            name: self.name.clone(),
            rate: self.rate(),
        }
    }
}

/// The columns [`Queue::from_row`] reads, of a queue `q`.
const QUEUE_COLUMNS: &str =
    "q.id, q.name, q.owner::pg_catalog.oid, q.max_concurrency, q.max_per_key, q.rate_limit,
       (EXTRACT(EPOCH FROM q.rate_period) * 1000000)::int8, q.paused";

/// How a queue's row is locked when it is looked up by name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lock {
    None,
    /// Against dispatch, claims and other changes (`alter_queue`, pause).
    Change,
    /// Also against transactions sending runs to it (`drop_queue`).
    Drop,
}

/// Queue `name` (as pg_jobs, past row-level security), its row locked
/// until commit as `lock` says.
pub(crate) fn find(name: &str, lock: Lock) -> Option<Queue> {
    let sql = format!(
        "SELECT {QUEUE_COLUMNS} FROM jobs.queue q WHERE q.name OPERATOR(pg_catalog.=) $1{}",
        match lock {
            Lock::None => "",
            Lock::Change => " FOR NO KEY UPDATE",
            Lock::Drop => " FOR UPDATE",
        }
    );
    Spi::connect_mut(|c| {
        c.update(&sql, None, &[name.into()])
            .map(|t| t.into_iter().next().map(|r| Queue::from_row(&r, 1)))
    })
    .or_raise("looking up a queue")
}

/// Queue `id`, its row locked until commit: an executor that holds the
/// queue's runs takes more of them (a kept plan).
pub(crate) fn find_locked(c: &mut SpiClient, id: i64) -> Option<Queue> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {QUEUE_COLUMNS} FROM jobs.queue q WHERE q.id OPERATOR(pg_catalog.=) $1 FOR NO KEY UPDATE"
        )
    });
    plans::run(c, SQL.as_str(), &[id.into()])
        .or_raise("reading a queue")
        .next()
        .map(|r| Queue::from_row(&r, 1))
}

/// The owner of queue `name`, if there is one, its row locked `FOR KEY
/// SHARE` until commit: a run sent to the queue in this transaction keeps
/// `jobs.drop_queue` waiting until it is committed (and seen), so no run
/// is left in a queue that is gone. (It does not wait for dispatch or
/// claims, which lock `FOR NO KEY UPDATE`.) A kept plan: every submit to a
/// queue asks it.
pub(crate) fn owner_of(name: &str) -> Option<pg_sys::Oid> {
    Spi::connect_mut(|c| {
        plans::run(
            c,
            "SELECT owner::pg_catalog.oid FROM jobs.queue WHERE name OPERATOR(pg_catalog.=) $1 FOR KEY SHARE",
            &[name.into()],
        )
        .map(|t| t.into_iter().next().map(|r| row::get_req::<pg_sys::Oid>(&r, 1)))
    })
    .or_raise("looking up a queue's owner")
}

/// New queue settings, as stored (`None`: no limit).
pub(crate) struct Settings {
    pub(crate) max_concurrency: Option<i32>,
    pub(crate) max_per_key: Option<i32>,
    pub(crate) rate_limit: Option<i32>,
    pub(crate) rate_period_us: i64,
    pub(crate) paused: bool,
}

/// Make queue `name` owned by `owner`; false if a queue of that name exists.
pub(crate) fn create(name: &str, owner: pg_sys::Oid, s: &Settings) -> bool {
    Spi::connect_mut(|c| {
        c.update(
            "INSERT INTO jobs.queue (name, owner, max_concurrency, max_per_key, rate_limit, rate_period, paused)
             VALUES ($1, $2::pg_catalog.regrole, $3, $4, $5, pg_catalog.justify_hours($6 * INTERVAL '1 microsecond'), $7)
             ON CONFLICT (name) DO NOTHING RETURNING id",
            None,
            &[
                name.into(),
                owner.into(),
                s.max_concurrency.into(),
                s.max_per_key.into(),
                s.rate_limit.into(),
                s.rate_period_us.into(),
                s.paused.into(),
            ],
        )
        .map(|t| !t.is_empty())
    })
    .or_raise("creating a queue")
}

/// Store `s` as queue `id`'s settings.
pub(crate) fn update(id: i64, s: &Settings) {
    Spi::connect_mut(|c| {
        c.update(
            "UPDATE jobs.queue SET max_concurrency = $2, max_per_key = $3, rate_limit = $4,
                    rate_period = pg_catalog.justify_hours($5 * INTERVAL '1 microsecond'), paused = $6
              WHERE id OPERATOR(pg_catalog.=) $1",
            None,
            &[
                id.into(),
                s.max_concurrency.into(),
                s.max_per_key.into(),
                s.rate_limit.into(),
                s.rate_period_us.into(),
                s.paused.into(),
            ],
        )
        .map(|_| ())
    })
    .or_raise("changing a queue");
}

/// How many runs of queue `name` have not started (queued, or waiting for
/// other runs), and how many jobs send their runs to it.
pub(crate) fn users(name: &str) -> (i64, i64) {
    Spi::connect(|c| {
        c.select(
            "SELECT (SELECT pg_catalog.count(*) FROM jobs.run r
                      WHERE r.queue OPERATOR(pg_catalog.=) $1
                        AND r.status OPERATOR(pg_catalog.=) ANY ('{queued,waiting}')),
                    (SELECT pg_catalog.count(*) FROM jobs.job j WHERE j.queue OPERATOR(pg_catalog.=) $1)",
            None,
            &[name.into()],
        )
        .map(|t| {
            t.into_iter()
                .next()
                .map_or((0, 0), |r| (row::get_req(&r, 1), row::get_req(&r, 2)))
        })
    })
    .or_raise("counting a queue's runs and jobs")
}

/// Remove queue `id`.
pub(crate) fn remove(id: i64) {
    Spi::connect_mut(|c| {
        c.update(
            "DELETE FROM jobs.queue WHERE id OPERATOR(pg_catalog.=) $1",
            None,
            &[id.into()],
        )
        .map(|_| ())
    })
    .or_raise("dropping a queue");
}

/// For queue `name`, how many executors (besides the caller) hold runs of
/// each concurrency key that has any.
pub(crate) fn holding_by_key(c: &mut SpiClient, name: &str) -> std::collections::HashMap<String, usize> {
    plans::run(
        c,
        "SELECT a.concurrency_key, pg_catalog.count(DISTINCT COALESCE(a.pid, -a.id)) FROM jobs.run a
          WHERE a.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
            AND a.queue OPERATOR(pg_catalog.=) $1 AND a.concurrency_key IS NOT NULL
            AND a.pid IS DISTINCT FROM pg_catalog.pg_backend_pid()
          GROUP BY 1",
        &[name.into()],
    )
    .or_raise("counting a queue's runs going by key")
    .map(|r| (row::get_req::<String>(&r, 1), row::get_req::<i64>(&r, 2) as usize))
    .collect()
}

/// The queues (not paused) that have runs due, their rows locked for this
/// dispatch pass, by name. A queue an executor is claiming runs of right
/// now is left out (SKIP LOCKED): that executor takes what the queue has
/// room for, and when it stops taking its runs it goes idle, which wakes
/// the scheduler for the next pass; waiting for it would hold up the pass.
pub(crate) fn open_with_due_runs(c: &mut SpiClient) -> Vec<Queue> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {QUEUE_COLUMNS} FROM jobs.queue q
              WHERE NOT q.paused
                AND EXISTS (SELECT 1 FROM jobs.run r
                             WHERE r.queue OPERATOR(pg_catalog.=) q.name
                               AND r.status OPERATOR(pg_catalog.=) 'queued'
                               AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()))
              ORDER BY q.name
                FOR NO KEY UPDATE OF q SKIP LOCKED"
        )
    });
    plans::run(c, SQL.as_str(), &[])
        .or_raise("reading the queues with runs due")
        .map(|r| Queue::from_row(&r, 1))
        .collect()
}

/// Whether a role other than `role` has runs of queue `name` due: then an
/// executor of `role` leaves the queue's next run to the scheduler, which
/// shares the queue fairly between roles.
pub(crate) fn others_waiting(c: &mut SpiClient, name: &str, role: pg_sys::Oid) -> bool {
    plans::run(
        c,
        // Below and above the role in the index run_queue_named (queue,
        // owner, ...): two short range scans, not one over the role's own.
        "SELECT EXISTS (SELECT 1 FROM jobs.run r
                          WHERE r.queue OPERATOR(pg_catalog.=) $1
                            AND r.owner OPERATOR(pg_catalog.<) $2
                            AND r.status OPERATOR(pg_catalog.=) 'queued'
                            AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()))
             OR EXISTS (SELECT 1 FROM jobs.run r
                          WHERE r.queue OPERATOR(pg_catalog.=) $1
                            AND r.owner OPERATOR(pg_catalog.>) $2
                            AND r.status OPERATOR(pg_catalog.=) 'queued'
                            AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()))",
        &[name.into(), role.into()],
    )
    .or_raise("looking for other roles' runs in a queue")
    .next()
    .is_some_and(|r| row::get_req::<bool>(&r, 1))
}
