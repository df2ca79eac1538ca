//! The queue: the scheduler's dispatch (read the head, mark it `starting`,
//! fail what can never start), a pooled executor's own claims, and runs
//! going back to the queue.

use super::{DISPATCH_ORDER, MAY_START, MAY_START_IN_BATCH};
use crate::catalog::{plans, row, schema_version};
use crate::pg::error::OrRaise;
use jiff::Timestamp;
use pg_jobs_core::params::{Args, Command};
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiError, SpiHeapTupleData};
use std::sync::LazyLock;

/// A queued run as the dispatch query reads it (locked for this pass).
pub(crate) struct Queued {
    pub(crate) run_id: i64,
    pub(crate) role: pg_sys::Oid,
    /// `None`: its database is gone.
    pub(crate) target: Option<pg_sys::Oid>,
    pub(crate) command: String,
    /// `None`: its owner role is gone.
    pub(crate) can_login: Option<bool>,
    pub(crate) can_connect: Option<bool>,
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) job_id: Option<i64>,
    pub(crate) db_name: String,
    /// Its priority across roles: its own if its owner is a superuser or a
    /// member of the role `pg_jobs.priority_role` names, else 0.
    pub(crate) rank: i32,
    /// When it became due, in microseconds since the Unix epoch.
    pub(crate) due_us: i64,
    /// The values of its command's parameters, if it has any.
    pub(crate) args: Option<Args>,
    /// Its concurrency key, if any (runs of a named queue).
    pub(crate) concurrency_key: Option<String>,
}

impl Queued {
    fn from_row(r: &SpiHeapTupleData) -> Queued {
        Queued {
            run_id: row::get_req(r, 1),
            role: row::get_req(r, 2),
            target: row::get_opt(r, 3),
            command: row::get_req(r, 4),
            can_login: row::get_opt(r, 5),
            can_connect: row::get_opt(r, 6),
            timeout_ms: row::get_opt(r, 7),
            job_id: row::get_opt(r, 8),
            db_name: row::get_req(r, 9),
            rank: row::get_opt(r, 10).unwrap_or(0),
            due_us: row::get_opt(r, 11).unwrap_or(0),
            args: row::get_opt(r, 12),
            concurrency_key: row::get_opt(r, 13),
        }
    }
}

/// The queued runs that may start now, up to `per_lane` of each role (its
/// *lane*: the role's own runs in dispatch order), lanes in role order,
/// locked (FOR UPDATE SKIP LOCKED: a pooled executor claiming runs from its
/// lane itself, see [`claim_batch`] and [`claim_head`], never gets the same
/// one). Which of them start is `pg_jobs_core::fair::plan`'s choice.
///
/// The roles with queued runs are found by a skip scan of the index
/// `run_queue` (one index probe per role, however long its lane), and each
/// lane's head is a top-N scan of the same index: a pass costs the number
/// of roles times the runs it may start, never the queue's length.
/// `priority_role`: the OID of the role whose members' priority counts
/// across roles (0: superusers only).
/// Runs without a named queue only; those of queue `q` are [`queued_in`]'s.
pub(crate) fn queued(client: &mut SpiClient, per_lane: usize, priority_role: pg_sys::Oid) -> Vec<Queued> {
    // The index run_queue holds only runs without a queue (0.4.0 on): the
    // statements must say so for the planner to use it.
    let lane = if schema_version::has_queues() {
        "r.queue IS NULL"
    } else {
        "true"
    };
    queued_where(client, lane, None, per_lane, priority_role)
}

/// [`queued`] for the runs of queue `q` (lanes by role, each in dispatch
/// order: the index run_queue_named).
pub(crate) fn queued_in(
    client: &mut SpiClient,
    q: &str,
    per_lane: usize,
    priority_role: pg_sys::Oid,
) -> Vec<Queued> {
    queued_where(
        client,
        "r.queue OPERATOR(pg_catalog.=) $3",
        Some(q),
        per_lane,
        priority_role,
    )
}

fn queued_where(
    client: &mut SpiClient,
    lane: &str,
    q: Option<&str>,
    per_lane: usize,
    priority_role: pg_sys::Oid,
) -> Vec<Queued> {
    // By OID (0.2.0 on; rows queued by a session that still saw 0.1.0 have
    // none), else by name (a database not yet updated from 0.1.0).
    let database_match = if schema_version::databases_by_oid() {
        "d.oid OPERATOR(pg_catalog.=) r.datid
                         OR (r.datid IS NULL AND d.datname OPERATOR(pg_catalog.=) r.database)"
    } else {
        "d.datname OPERATOR(pg_catalog.=) r.database"
    };
    let args = args_column("r.");
    let queue = if schema_version::has_queues() {
        "r.concurrency_key"
    } else {
        "NULL::pg_catalog.text"
    };
    let mut params: Vec<pgrx::datum::DatumWithOid> = vec![(per_lane as i64).into(), priority_role.into()];
    if let Some(q) = q {
        params.push(q.into());
    }
    plans::run_built(
        client,
        &format!(
            "/* locks for run events: dispatch, refuse */ WITH RECURSIVE lane(owner) AS (
                 (SELECT r.owner::pg_catalog.oid FROM jobs.run r
                   WHERE r.status OPERATOR(pg_catalog.=) 'queued' AND {lane}
                   ORDER BY r.owner LIMIT 1)
               UNION ALL
                 SELECT (SELECT r.owner::pg_catalog.oid FROM jobs.run r
                          WHERE r.status OPERATOR(pg_catalog.=) 'queued' AND {lane}
                            AND r.owner OPERATOR(pg_catalog.>) l.owner
                          ORDER BY r.owner LIMIT 1)
                   FROM lane l WHERE l.owner IS NOT NULL)
             SELECT r.id, r.owner::pg_catalog.oid, d.oid, r.command, ro.rolcanlogin,
                    CASE WHEN d.oid IS NOT NULL AND ro.oid IS NOT NULL
                         THEN pg_catalog.has_database_privilege(ro.oid, d.oid, 'CONNECT') END,
                    (EXTRACT(EPOCH FROM r.timeout) * 1000)::int8, r.job_id, r.database::text,
                    CASE WHEN ro.rolsuper
                           OR ($2 OPERATOR(pg_catalog.<>) 0 AND ro.oid IS NOT NULL
                               AND pg_catalog.pg_has_role(ro.oid, $2, 'MEMBER'))
                         THEN r.priority ELSE 0 END,
                    (EXTRACT(EPOCH FROM COALESCE(r.not_before, r.scheduled_for, r.submitted_at)) * 1000000)::int8,
                    {args}, {queue}
               FROM lane l
               CROSS JOIN LATERAL (
                 SELECT r.* FROM jobs.run r
                  WHERE r.owner OPERATOR(pg_catalog.=) l.owner
                    AND r.status OPERATOR(pg_catalog.=) 'queued' AND {lane}
                    AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
                    AND {MAY_START}
                  {DISPATCH_ORDER}
                  LIMIT $1
                    FOR UPDATE OF r SKIP LOCKED) r
               LEFT JOIN pg_catalog.pg_roles ro ON ro.oid OPERATOR(pg_catalog.=) r.owner::pg_catalog.oid
               LEFT JOIN pg_catalog.pg_database d ON {database_match}
              WHERE l.owner IS NOT NULL
              ORDER BY r.owner, r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id"
        ),
        &params,
    )
    .or_raise("reading queued runs")
    .map(|r| Queued::from_row(&r))
    .collect()
}

/// Mark the runs `ids`, picked and row-locked by [`queued`] in this
/// transaction, `starting`.
///
/// Its status guard is that locking read's `status = 'queued'` (see
/// "row locked" in `crates/itest/tests/run_model.rs`), not a condition
/// here: `id = ANY ($1) AND status = 'queued'` lets the planner pick the
/// partial index `run_queue`, whose predicate it implies, and scan the
/// whole queue for the ids (measured: 20,000 trivial runs/s fell to
/// 16,000) instead of the primary key.
pub(crate) fn mark_dispatched(client: &mut SpiClient, ids: Vec<i64>) {
    plans::run(
        client,
        "/* run event: dispatch (row locked) */ UPDATE jobs.run SET status = 'starting', message = NULL
                  WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
        &[ids.into()],
    )
    .or_raise("marking runs starting");
}

/// Fail queued run `run_id`, which can never start as it stands (no retry:
/// the model's `RunEvent::Refuse`), with SQLSTATE `code` and `message`.
pub(crate) fn refuse(client: &mut SpiClient, run_id: i64, code: &str, message: &str) {
    client
        .update(
            "/* run event: refuse (row locked) */ UPDATE jobs.run SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
                    sqlstate = $2, message = $3
              WHERE id OPERATOR(pg_catalog.=) $1",
            None,
            &[run_id.into(), code.into(), message.into()],
        )
        .or_raise("failing a run");
}

/// The values of a run's parameters, as a statement reads them: column
/// `args` of `prefix` (`"r."`), or, in a database not yet updated to
/// 0.4.0 (no such column), a NULL of its type. Asked per statement (a
/// few syscache look-ups, no query): `ALTER EXTENSION ... UPDATE` can
/// add the column under a running worker.
fn args_column(prefix: &str) -> String {
    if schema_version::has_args() {
        format!("{prefix}args")
    } else {
        "NULL::pg_catalog.text[]".to_owned()
    }
}

/// A run taken from the queue by an executor, not started yet.
pub(crate) struct Claimed {
    pub(crate) run_id: i64,
    /// The scheduled job it is a run of (0: submitted).
    pub(crate) job_id: i64,
    pub(crate) command: Command,
    pub(crate) timeout_ms: i64,
}

impl Claimed {
    /// From a claim's `RETURNING id, command, timeout in ms, job id (0),
    /// args` (see [`CLAIMED_COLUMNS`]).
    fn from_row(r: &SpiHeapTupleData) -> Claimed {
        Claimed {
            run_id: row::get_req::<i64>(r, 1),
            command: Command {
                sql: row::get_req::<String>(r, 2),
                args: row::get_opt::<Args>(r, 5),
                queue: None,
            },
            timeout_ms: row::get_opt::<i64>(r, 3).unwrap_or(0),
            job_id: row::get_req::<i64>(r, 4),
        }
    }
}

/// What each claim returns of a run it took (`u`), for
/// [`Claimed::from_row`]; `{args}` is [`args_column`]'s.
const CLAIMED_COLUMNS: &str = "u.id, u.command, (EXTRACT(EPOCH FROM u.timeout) * 1000)::int8,
                COALESCE(u.job_id, 0), {args}";

/// The claims' statements, each for a database without and with the
/// columns of 0.4.0 (index: [`schema_version::has_args`]), each built once
/// per process and kept planned. From 0.4.0 on, the claims of a role's
/// lane take runs without a named queue only (`{lane}`: what lets the
/// planner use the index `run_queue`, which holds only those).
fn claim_sql(template: &str, with_args: bool) -> String {
    template
        .replace("{CLAIMED}", CLAIMED_COLUMNS)
        .replace(
            "{args}",
            if with_args {
                "u.args"
            } else {
                "NULL::pg_catalog.text[]"
            },
        )
        .replace("{lane}", if with_args { "AND r.queue IS NULL" } else { "" })
}

/// Which of the claim statements fits this database's schema.
fn variant() -> usize {
    usize::from(schema_version::has_args())
}

/// The head of role `$1`'s lane (its queued runs in dispatch order),
/// locked, each row with whether it may go in a batch of that role in
/// database `$2` (built once per process; a kept plan).
static BATCH_HEAD: [LazyLock<String>; 2] = [
    LazyLock::new(|| claim_sql(&batch_head_template(), false)),
    LazyLock::new(|| claim_sql(&batch_head_template(), true)),
];

fn batch_head_template() -> String {
    format!(
        "/* locks for run events: reserve */ SELECT r.id, (r.datid OPERATOR(pg_catalog.=) $2
                       AND {MAY_START_IN_BATCH})
           FROM jobs.run r
          WHERE r.owner OPERATOR(pg_catalog.=) $1
            AND r.status OPERATOR(pg_catalog.=) 'queued' {{lane}}
            AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
          {DISPATCH_ORDER}
          LIMIT $3
            FOR UPDATE SKIP LOCKED"
    )
}

/// Up to `batch` runs of role `role` in database `db` from the head of the
/// role's lane, in its order, marked `starting`; none if the lane's head is
/// not one of them. A scheduled job's run counts only if no other run of that job is
/// queued or going (unless the job allows overlap): see [`MAY_START_IN_BATCH`].
pub(crate) fn claim_batch(
    c: &mut SpiClient<'_>,
    role: pg_sys::Oid,
    db: pg_sys::Oid,
    batch: usize,
) -> Result<Vec<Claimed>, SpiError> {
    // Lock the lane's head rows (others skip them), then keep the leading
    // ones of our database: the first run of another database, or of a job
    // that must wait, ends the batch.
    let head = plans::run(
        c,
        BATCH_HEAD[variant()].as_str(),
        &[role.into(), db.into(), (batch as i64).into()],
    )?;
    let ids: Vec<i64> = head
        .into_iter()
        .map(|r| {
            (
                row::get_req::<i64>(&r, 1),
                row::get_opt::<bool>(&r, 2).unwrap_or(false),
            )
        })
        .take_while(|&(_, mine)| mine)
        .map(|(id, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = plans::run(c, RESERVE[variant()].as_str(), &[ids.clone().into()])?;
    let mut runs: Vec<Claimed> = rows.into_iter().map(|r| Claimed::from_row(&r)).collect();
    runs.sort_by_key(|c| ids.iter().position(|&id| id == c.run_id));
    Ok(runs)
}

/// The reservation of a batch [`BATCH_HEAD`] locked.
const RESERVE_TEMPLATE: &str = "/* run event: reserve (row locked) */ UPDATE jobs.run u SET status = 'starting', pid = pg_catalog.pg_backend_pid(), message = NULL
          WHERE u.id OPERATOR(pg_catalog.=) ANY ($1)
      RETURNING {CLAIMED}";

static RESERVE: [LazyLock<String>; 2] = [
    LazyLock::new(|| claim_sql(RESERVE_TEMPLATE, false)),
    LazyLock::new(|| claim_sql(RESERVE_TEMPLATE, true)),
];

/// The head of role `$1`'s lane in queue `$4` (up to `$3` runs), locked,
/// each row with whether it may go in a batch of that role in database
/// `$2`, and its concurrency key (a kept plan; 0.4.0 only).
static QUEUE_HEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "/* locks for run events: reserve */ SELECT r.id, (r.datid OPERATOR(pg_catalog.=) $2
                       AND {MAY_START_IN_BATCH}), r.concurrency_key
           FROM jobs.run r
          WHERE r.queue OPERATOR(pg_catalog.=) $4 AND r.owner OPERATOR(pg_catalog.=) $1
            AND r.status OPERATOR(pg_catalog.=) 'queued'
            AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
          {DISPATCH_ORDER}
          LIMIT $3
            FOR UPDATE SKIP LOCKED"
    )
});

/// Up to `batch` runs of role `role` in database `db` from the head of the
/// role's lane in queue `q` (whose row the caller locked and whose limits
/// it checked), in its order, marked `starting`: the leading ones of our
/// database, less those whose concurrency key is at the queue's
/// `max_per_key` (`holding_by_key`: executors holding runs of each key,
/// besides us; we run ours one after the other, so we count once per key).
pub(crate) fn claim_in_queue(
    c: &mut SpiClient<'_>,
    role: pg_sys::Oid,
    db: pg_sys::Oid,
    batch: usize,
    q: &crate::catalog::queues::Queue,
    holding_by_key: Option<&std::collections::HashMap<String, usize>>,
) -> Result<Vec<Claimed>, SpiError> {
    // With a per-key limit, read past runs whose key is full (a few times
    // the batch); else exactly the batch: each row read is locked.
    let look = if holding_by_key.is_some() {
        (batch * 4).max(8)
    } else {
        batch
    } as i64;
    let head = plans::run(
        c,
        QUEUE_HEAD.as_str(),
        &[role.into(), db.into(), look.into(), q.name.as_str().into()],
    )?;
    let max_per_key = q.max_per_key.map_or(usize::MAX, |m| m.max(0) as usize);
    let ids: Vec<i64> = head
        .into_iter()
        .map(|r| {
            (
                row::get_req::<i64>(&r, 1),
                row::get_opt::<bool>(&r, 2).unwrap_or(false),
                row::get_opt::<String>(&r, 3),
            )
        })
        .take_while(|(_, mine, _)| *mine)
        .filter(|(_, _, key)| match (key, holding_by_key) {
            (Some(k), Some(held)) => held.get(k).copied().unwrap_or(0) < max_per_key,
            _ => true,
        })
        .take(batch)
        .map(|(id, _, _)| id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = plans::run(c, RESERVE[1].as_str(), &[ids.clone().into()])?;
    let tag = q.tag();
    let mut runs: Vec<Claimed> = rows
        .into_iter()
        .map(|r| {
            let mut claimed = Claimed::from_row(&r);
            claimed.command.queue = Some(tag.clone());
            claimed
        })
        .collect();
    runs.sort_by_key(|c| ids.iter().position(|&id| id == c.run_id));
    Ok(runs)
}

/// The claim of the head of a role's lane alone (built once per process; a
/// kept plan).
static HEAD: [LazyLock<String>; 2] = [
    LazyLock::new(|| claim_sql(&head_template(), false)),
    LazyLock::new(|| claim_sql(&head_template(), true)),
];

fn head_template() -> String {
    format!(
        "/* run event: claim */ WITH head AS (
           SELECT r.id, r.datid, r.job_id
             FROM jobs.run r
            WHERE r.owner OPERATOR(pg_catalog.=) $1
              AND r.status OPERATOR(pg_catalog.=) 'queued' {{lane}}
              AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
            {DISPATCH_ORDER}
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
         UPDATE jobs.run u
            SET status = 'running', pid = pg_catalog.pg_backend_pid(),
                started_at = pg_catalog.clock_timestamp(), message = NULL
           FROM head r
          WHERE u.id OPERATOR(pg_catalog.=) r.id
            AND r.datid OPERATOR(pg_catalog.=) $2
            -- A scheduled job's run waits, as the scheduler makes it
            -- wait, while another run of that job is going (unless
            -- the job allows overlap).
            AND {MAY_START}
      RETURNING {{CLAIMED}}"
    )
}

/// The head of role `role`'s lane alone, if it is a run in database `db`
/// that may start now, marked `running`.
pub(crate) fn claim_head(
    c: &mut SpiClient<'_>,
    role: pg_sys::Oid,
    db: pg_sys::Oid,
) -> Result<Vec<Claimed>, SpiError> {
    let rows = plans::run(c, HEAD[variant()].as_str(), &[role.into(), db.into()])?;
    Ok(rows.into_iter().map(|r| Claimed::from_row(&r)).collect())
}

/// Runs an executor reserved and did not start go back to the queue, as if
/// never taken (same attempt, no message). `only_mine`: only rows the
/// calling executor claimed (its pid).
pub(crate) fn requeue_reserved(ids: &[i64], only_mine: bool) {
    Spi::connect_mut(|client| {
        plans::run(
            client,
            "/* run event: requeue */ UPDATE jobs.run SET status = 'queued', pid = NULL
              WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'starting'
                AND (NOT $2 OR pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid())",
            &[ids.to_vec().into(), only_mine.into()],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error!("pg_jobs: cannot requeue reserved runs: {e}"));
}

/// Run `run_id`, dispatched and not handed to an executor, goes back to
/// the queue, saying `why`.
pub(crate) fn requeue(run_id: i64, why: Option<&str>) {
    Spi::connect_mut(|client| {
        client
            .update(
                "/* run event: requeue */ UPDATE jobs.run SET status = 'queued', message = $2
                  WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'starting'",
                None,
                &[run_id.into(), why.into()],
            )
            .or_raise("requeueing a run");
    });
}

/// The earliest moment a queued run's backoff (or `start_at`) ends, if it
/// is in the future.
pub(crate) fn next_not_before(client: &mut SpiClient) -> Option<Timestamp> {
    plans::run(
        client,
        // Future ones only: a run already due waits for an executor (whose
        // exit or return to the pool wakes us), not for the clock; a past
        // time here would make the scheduler spin.
        // At most a day ahead: a stored `infinity` (refused at submit since
        // 0.4.0, but older rows may hold one) must not make the pass fail.
        "SELECT (EXTRACT(EPOCH FROM LEAST(m, pg_catalog.clock_timestamp() + INTERVAL '1 day')) * 1000000)::int8
           FROM (SELECT min(not_before) AS m FROM jobs.run
                  WHERE status OPERATOR(pg_catalog.=) 'queued' AND not_before IS NOT NULL
                    AND not_before OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()) n
          WHERE m IS NOT NULL",
        &[],
    )
    .or_raise("reading the next retry time")
    .next()
    .and_then(|r| row::get_opt::<i64>(&r, 1))
    .and_then(|us| Timestamp::from_microsecond(us).ok())
}
