//! New runs: submitted (`jobs.submit`), queued by hand (`jobs.run_now`),
//! fired by the scheduler when their job is due, and retries.

use crate::catalog::{plans, row, schema_version};
use crate::pg::error::OrRaise;
use pg_jobs_core::overlap::Overlap;
use pg_jobs_core::params::Args;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};
use std::collections::HashMap;

/// A run `jobs.submit` queues.
pub(crate) struct Submitted<'a> {
    pub(crate) owner: pg_sys::Oid,
    pub(crate) command: &'a str,
    pub(crate) database: &'a str,
    pub(crate) datid: pg_sys::Oid,
    pub(crate) start_at: Option<TimestampWithTimeZone>,
    /// 0: none.
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) max_attempts: i32,
    pub(crate) priority: i32,
    /// The values of the command's parameters (checked), if it has any.
    pub(crate) args: Option<&'a Args>,
    /// Its named queue (checked: it exists, the caller may use it) and its
    /// key for the queue's `max_per_key`.
    pub(crate) queue: Option<&'a str>,
    pub(crate) concurrency_key: Option<&'a str>,
}

impl<'a> Submitted<'a> {
    /// Whether it needs the columns of 0.4.0 (values, a queue).
    fn is_040(&self) -> bool {
        self.args.is_some() || self.queue.is_some()
    }

    /// `$1` to `$8` of every statement that queues it: owner, command,
    /// database, start_at, timeout (ms), max_attempts, priority, datid.
    pub(super) fn params(&self) -> Vec<DatumWithOid<'a>> {
        self.params_with(Vec::new())
    }

    /// [`Submitted::params`], then `more` (`$9` on).
    pub(super) fn params_with(&self, more: Vec<DatumWithOid<'a>>) -> Vec<DatumWithOid<'a>> {
        let mut params = Vec::with_capacity(8 + more.len());
        params.extend(self.base());
        params.extend(more);
        params
    }

    fn base(&self) -> [DatumWithOid<'a>; 8] {
        [
            self.owner.into(),
            self.command.into(),
            self.database.into(),
            self.start_at.into(),
            self.timeout_ms.into(),
            self.max_attempts.into(),
            self.priority.into(),
            self.datid.into(),
        ]
    }
}

/// What a submit with a unique key does when its owner already has a
/// queued run with that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Queue nothing; the existing run's id is returned.
    Skip,
    /// The existing run takes this submit's command, values (`args`) and
    /// start time (debounce); its id is returned.
    Replace,
}

/// Queue `run` with unique key `key` unless its owner has a queued run
/// with that key, which `on_conflict` then keeps or updates. Returns the
/// run's id and whether it is a new row. The database decides (the
/// partial unique index `run_unique_key` over queued runs), so concurrent
/// submitters and rolled-back ones cannot make two. A kept plan per policy.
pub(crate) fn submit_unique(
    run: &Submitted,
    key: &str,
    on_conflict: OnConflict,
) -> SpiResult<Option<(i64, bool)>> {
    // The no-op update of `skip` locks the existing row (as `replace`'s
    // does), so it is returned even if it is being claimed right now: the
    // claim waits, or we wait for it and insert a new run if it left the
    // queue (ON CONFLICT re-checks the arbiter index).
    let sql = match on_conflict {
        OnConflict::Skip => {
            "/* run event: submit */ INSERT INTO jobs.run AS r (owner, command, database, not_before, timeout, max_attempts, priority, datid, unique_key, args,
                                                                queue, concurrency_key)
                 VALUES ($1::pg_catalog.regrole, $2, $3, $4, NULLIF($5, 0) * INTERVAL '1 millisecond', $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (owner, (COALESCE(queue, '')), unique_key) WHERE unique_key IS NOT NULL AND status OPERATOR(pg_catalog.=) 'queued'
                 DO UPDATE SET unique_key = r.unique_key
                 RETURNING r.id, r.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid"
        }
        OnConflict::Replace => {
            "/* run event: submit */ INSERT INTO jobs.run AS r (owner, command, database, not_before, timeout, max_attempts, priority, datid, unique_key, args,
                                                                queue, concurrency_key)
                 VALUES ($1::pg_catalog.regrole, $2, $3, $4, NULLIF($5, 0) * INTERVAL '1 millisecond', $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (owner, (COALESCE(queue, '')), unique_key) WHERE unique_key IS NOT NULL AND status OPERATOR(pg_catalog.=) 'queued'
                 DO UPDATE SET command = EXCLUDED.command, args = EXCLUDED.args, not_before = EXCLUDED.not_before
                 RETURNING r.id, r.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid"
        }
    };
    Spi::connect_mut(|c| {
        plans::run(
            c,
            sql,
            &run.params_with(vec![
                key.into(),
                run.args.cloned().into(),
                run.queue.into(),
                run.concurrency_key.into(),
            ]),
        )
        .map(|t| {
            t.into_iter()
                .next()
                .and_then(|r| Some((row::get_opt::<i64>(&r, 1)?, row::get_req::<bool>(&r, 2))))
        })
    })
}

/// Queue `run` (a kept plan: a burst of submits plans this INSERT once per
/// session); returns its id. A run without values or queue is written as
/// before they existed (both NULL by default), so it needs no look at the
/// schema; one with either comes only through the 0.4.0 functions, whose
/// schema has the columns.
pub(crate) fn submit(run: &Submitted) -> SpiResult<Option<i64>> {
    if run.is_040() {
        return Spi::connect_mut(|c| {
            plans::run(
                c,
                "/* run event: submit */ INSERT INTO jobs.run (owner, command, database, not_before, timeout, max_attempts, priority, datid, args,
                                                      queue, concurrency_key)
                 VALUES ($1::pg_catalog.regrole, $2, $3, $4, NULLIF($5, 0) * INTERVAL '1 millisecond', $6, $7, $8, $9, $10, $11)
                 RETURNING id",
                &run.params_with(vec![
                        run.args.cloned().into(),
                        run.queue.into(),
                        run.concurrency_key.into(),
                    ]),
            )
            .map(|t| t.into_iter().next().and_then(|r| row::get_opt::<i64>(&r, 1)))
        });
    }
    let sql = if schema_version::databases_by_oid() {
        "/* run event: submit */ INSERT INTO jobs.run (owner, command, database, not_before, timeout, max_attempts, priority, datid)
                 VALUES ($1::pg_catalog.regrole, $2, $3, $4, NULLIF($5, 0) * INTERVAL '1 millisecond', $6, $7, $8)
                 RETURNING id"
    } else {
        // A database still at 0.1.0: runs are kept by database name.
        "/* run event: submit */ INSERT INTO jobs.run (owner, command, database, not_before, timeout, max_attempts, priority)
                 VALUES ($1::pg_catalog.regrole, $2, $3, $4, NULLIF($5, 0) * INTERVAL '1 millisecond', $6, $7)
                 RETURNING id"
    };
    Spi::connect_mut(|c| {
        plans::run(c, sql, &run.params())
            .map(|t| t.into_iter().next().and_then(|r| row::get_opt::<i64>(&r, 1)))
    })
}

/// The owner and target database (by OID) of run `run_id`, whatever the
/// caller may see; `None` if there is no such run.
pub(crate) fn owner_and_database(run_id: i64) -> SpiResult<Option<(pg_sys::Oid, pg_sys::Oid)>> {
    Spi::connect(|c| {
        c.select(
            "SELECT owner::pg_catalog.oid, COALESCE(datid, (SELECT d.oid FROM pg_catalog.pg_database d
                                                           WHERE d.datname OPERATOR(pg_catalog.=) database))
               FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1",
            None,
            &[run_id.into()],
        )
        .map(|t| {
            t.into_iter().next().map(|r| {
                (
                    row::get_req::<pg_sys::Oid>(&r, 1),
                    row::get_opt::<pg_sys::Oid>(&r, 2).unwrap_or(pg_sys::InvalidOid),
                )
            })
        })
    })
}

/// Queue a new run of finished run `run_id`'s command with its settings
/// (`jobs.retry`): owner, database, job, timeout, attempts allowed, retry
/// backoff, priority, the values of its parameters (`args`); a first
/// attempt, due now. Returns its id.
pub(crate) fn resubmit(run_id: i64) -> SpiResult<Option<i64>> {
    Spi::get_one_with_args::<i64>(
        "/* run event: submit */ INSERT INTO jobs.run (job_id, owner, command, database, datid, max_attempts, timeout, retry_backoff, priority, args,
                                                  queue, concurrency_key)
             SELECT job_id, owner, command, database, datid, max_attempts, timeout, retry_backoff, priority, args,
                    q.name, CASE WHEN q.name IS NOT NULL THEN r.concurrency_key END
               FROM jobs.run r
               -- In its queue if that still exists (locked against its drop
               -- until commit, as a submit does); else without one.
               LEFT JOIN LATERAL (SELECT q.name FROM jobs.queue q
                                   WHERE q.name OPERATOR(pg_catalog.=) r.queue FOR KEY SHARE) q ON true
              WHERE r.id OPERATOR(pg_catalog.=) $1
             RETURNING id",
        &[run_id.into()],
    )
}

/// How many queued runs `owner` has here, counted exactly: an index scan of
/// the owner's part of the queue (a kept plan; as pg_jobs, past row-level
/// security). For the amortized bound in `sql_api::bounds`.
/// From 0.4.0 on, its runs waiting for others count too (each will be
/// queued), and its runs in named queues (each part by its own index).
pub(crate) fn queued_of(owner: pg_sys::Oid) -> i64 {
    let sql = if schema_version::has_queues() {
        "SELECT (SELECT pg_catalog.count(*) FROM jobs.run r
                  WHERE r.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                    AND r.status OPERATOR(pg_catalog.=) 'queued' AND r.queue IS NULL)
              + (SELECT pg_catalog.count(*) FROM jobs.run r
                  WHERE r.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                    AND r.status OPERATOR(pg_catalog.=) 'queued' AND r.queue IS NOT NULL)
              + (SELECT pg_catalog.count(*) FROM jobs.run r
                  WHERE r.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                    AND r.status OPERATOR(pg_catalog.=) 'waiting')"
    } else {
        "SELECT pg_catalog.count(*) FROM jobs.run r
          WHERE r.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
            AND r.status OPERATOR(pg_catalog.=) 'queued'"
    };
    Spi::connect_mut(|c| {
        plans::run(c, sql, &[owner.into()])
            .map(|t| t.into_iter().next().map_or(0, |r| row::get_req::<i64>(&r, 1)))
    })
    .or_raise("counting a role's queued runs")
}

/// Queue a run of job `job_id` now (`jobs.run_now`); returns its id.
pub(crate) fn run_now(job_id: i64) -> SpiResult<Option<i64>> {
    Spi::get_one_with_args::<i64>(
        if schema_version::has_args() {
            "/* run event: run_now */ INSERT INTO jobs.run (job_id, owner, command, database, datid, max_attempts, timeout, retry_backoff, scheduled_for, args,
                                                          queue)
                 SELECT j.id, j.owner, j.command, j.database, j.datid, j.max_attempts, j.timeout, j.retry_backoff,
                        pg_catalog.now(), j.args,
                        (SELECT q.name FROM jobs.queue q WHERE q.name OPERATOR(pg_catalog.=) j.queue FOR KEY SHARE)
                   FROM jobs.job j WHERE j.id OPERATOR(pg_catalog.=) $1
                 RETURNING id"
        } else if schema_version::databases_by_oid() {
            "/* run event: run_now */ INSERT INTO jobs.run (job_id, owner, command, database, datid, max_attempts, timeout, retry_backoff, scheduled_for)
                 SELECT id, owner, command, database, datid, max_attempts, timeout, retry_backoff, pg_catalog.now()
                   FROM jobs.job WHERE id OPERATOR(pg_catalog.=) $1
                 RETURNING id"
        } else {
            "/* run event: run_now */ INSERT INTO jobs.run (job_id, owner, command, database, max_attempts, timeout, retry_backoff, scheduled_for)
                 SELECT id, owner, command, database, max_attempts, timeout, retry_backoff, pg_catalog.now()
                   FROM jobs.job WHERE id OPERATOR(pg_catalog.=) $1
                 RETURNING id"
        },
        &[job_id.into()],
    )
}

/// For each job of `ids` that still exists: its overlap policy, and how
/// many of its runs are active (starting or running) and pending (queued).
pub(crate) fn overlap_state(client: &mut SpiClient, ids: Vec<i64>) -> HashMap<i64, (Overlap, u32, u32)> {
    plans::run(
        client,
        "SELECT j.id, j.overlap,
                (SELECT count(*) FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id
                    AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}'))::int4,
                (SELECT count(*) FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id
                    AND r.status OPERATOR(pg_catalog.=) 'queued')::int4
           FROM jobs.job j WHERE j.id OPERATOR(pg_catalog.=) ANY ($1)",
        &[ids.into()],
    )
    .or_raise("reading due jobs")
    .map(|row| {
        let id = row::get_req::<i64>(&row, 1);
        let overlap = row::get_req::<String>(&row, 2)
            .parse::<Overlap>()
            .or_raise("reading a job's overlap policy");
        let active = row::get_req::<i32>(&row, 3).max(0) as u32;
        let pending = row::get_req::<i32>(&row, 4).max(0) as u32;
        (id, (overlap, active, pending))
    })
    .collect()
}

/// Runs of due jobs, in the order given: job ids, due instants
/// (microseconds since 1970), `queued` or `skipped`, and a message.
pub(crate) struct Fired {
    pub(crate) ids: Vec<i64>,
    pub(crate) dues: Vec<i64>,
    pub(crate) statuses: Vec<String>,
    pub(crate) messages: Vec<Option<String>>,
}

/// Create the runs of due jobs `fired`, in one statement.
pub(crate) fn fire(client: &mut SpiClient, fired: Fired) {
    // The run records the database's current name (it may have been renamed).
    let (datid_col, database) = if schema_version::databases_by_oid() {
        (
            ", datid",
            "COALESCE((SELECT d.datname FROM pg_catalog.pg_database d
                        WHERE d.oid OPERATOR(pg_catalog.=) j.datid), j.database), j.datid",
        )
    } else {
        ("", "j.database")
    };
    // Each run gets its job's values and queue (0.4.0 on); the queue's row
    // is locked against its drop until commit, as a submit locks it.
    let (args_col, args) = if schema_version::has_queues() {
        (
            ", args, queue",
            ", j.args, (SELECT q.name FROM jobs.queue q WHERE q.name OPERATOR(pg_catalog.=) j.queue FOR KEY SHARE)",
        )
    } else if schema_version::has_args() {
        (", args", ", j.args")
    } else {
        ("", "")
    };
    plans::run_built(
        client,
        &format!(
            "/* run event: fire, skip */ INSERT INTO jobs.run (job_id, owner, command, database{datid_col}, max_attempts, timeout,
                                   retry_backoff, scheduled_for, status, message, finished_at{args_col})
             SELECT j.id, j.owner, j.command, {database}, j.max_attempts, j.timeout, j.retry_backoff,
                    TIMESTAMPTZ 'epoch' + u.due * INTERVAL '1 microsecond',
                    u.status, u.message, CASE WHEN u.status OPERATOR(pg_catalog.=) 'skipped' THEN pg_catalog.now() END{args}
               FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int8[]),
                               pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]))
                      WITH ORDINALITY AS u(id, due, status, message, n)
               JOIN jobs.job j ON j.id OPERATOR(pg_catalog.=) u.id
              ORDER BY u.n"
        ),
        &[
            fired.ids.into(),
            fired.dues.into(),
            fired.statuses.into(),
            fired.messages.into(),
        ],
    )
    .or_raise("queueing due runs");
}

/// Queue attempt `attempt` of run `failed`, `delay_ms` from now.
pub(crate) fn queue_retry(client: &mut SpiClient, failed: i64, attempt: i32, delay_ms: i64) {
    let retry = plans::run_built(
        client,
        &format!(
            "/* run event: retry */ INSERT INTO jobs.run (job_id, owner, command, database{datid}, attempt, max_attempts, timeout,
                                   retry_backoff, scheduled_for, not_before{args})
             SELECT job_id, owner, command, database{datid}, $2, max_attempts, timeout, retry_backoff, scheduled_for,
                    pg_catalog.clock_timestamp() + $3 * INTERVAL '1 millisecond'{args_from}
               FROM jobs.run r WHERE id OPERATOR(pg_catalog.=) $1
                -- A job's retries stop when the job is unscheduled.
                AND (r.job_id IS NULL OR EXISTS (SELECT FROM jobs.job j WHERE j.id OPERATOR(pg_catalog.=) r.job_id))
             RETURNING id",
            datid = if schema_version::databases_by_oid() { ", datid" } else { "" },
            // A retry runs with the values of the attempt before it, in
            // its queue.
            args = if schema_version::has_queues() {
                ", args, queue, concurrency_key"
            } else if schema_version::has_args() {
                ", args"
            } else {
                ""
            },
            // In its queue if that still exists (locked against its drop
            // until commit, as a submit does); else without one.
            args_from = if schema_version::has_queues() {
                ", args, (SELECT q.name FROM jobs.queue q WHERE q.name OPERATOR(pg_catalog.=) r.queue FOR KEY SHARE),
                 concurrency_key"
            } else if schema_version::has_args() {
                ", args"
            } else {
                ""
            }
        ),
        &[failed.into(), attempt.into(), delay_ms.into()],
    )
    .or_raise("queueing a retry")
    .next()
    .and_then(|r| row::get_opt::<i64>(&r, 1));
    // Runs waiting for the failed attempt wait for this one (a database
    // before 0.4.0 has no waiting runs).
    if let Some(retry) = retry {
        if schema_version::has_waiting_runs() {
            super::follow_retry(client, failed, retry);
        }
    }
}
