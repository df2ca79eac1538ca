//! `jobs.job`: scheduled job definitions, as the scheduler loads them and
//! as the SQL API (`jobs.schedule`, `jobs.alter_job`, …) writes them.

use crate::catalog::{row, schema_version};
use crate::pg::error::OrRaise;
use pg_jobs_core::params::Args;
use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiHeapTupleData, SpiResult};

/// An enabled job as the scheduler loads it, with what its first due time
/// depends on. Instants in microseconds since 1970.
pub(crate) struct JobRow {
    pub(crate) id: i64,
    /// The schedule's text.
    pub(crate) text: String,
    pub(crate) tz_name: Option<String>,
    pub(crate) catch_up: bool,
    pub(crate) once_at: Option<i64>,
    pub(crate) created: i64,
    /// When its latest run was due (only for one-offs and catch_up jobs).
    pub(crate) last_due: Option<i64>,
    pub(crate) owner: u32,
    /// 0 if unknown.
    pub(crate) datid: u32,
}

impl JobRow {
    fn from_row(row: &SpiHeapTupleData) -> JobRow {
        JobRow {
            id: row::get_req(row, 1),
            text: row::get_req(row, 2),
            tz_name: row::get_opt(row, 3),
            catch_up: row::get_req(row, 4),
            once_at: row::get_opt(row, 5),
            created: row::get_req(row, 6),
            last_due: row::get_opt(row, 7),
            owner: row::get_req::<pg_sys::Oid>(row, 8).to_u32(),
            datid: row::get_opt::<pg_sys::Oid>(row, 9).map_or(0, |o| o.to_u32()),
        }
    }
}

/// Enabled jobs (all, or just `only`), with what their first due time
/// depends on. The last due time matters only for one-offs and catch_up
/// jobs: the history of the others is not looked up.
pub(crate) fn load(client: &mut SpiClient, only: Option<&[i64]>) -> Vec<JobRow> {
    let sql = format!(
        "SELECT j.id, j.schedule, j.timezone, j.catch_up,
                (EXTRACT(EPOCH FROM j.once_at) * 1000000)::int8,
                (EXTRACT(EPOCH FROM j.created_at) * 1000000)::int8,
                CASE WHEN j.catch_up OR j.once_at IS NOT NULL THEN
                  (SELECT (EXTRACT(EPOCH FROM max(r.scheduled_for)) * 1000000)::int8
                     FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id) END,
                j.owner::pg_catalog.oid, {}
           FROM jobs.job j WHERE j.enabled AND j.schedule IS NOT NULL {}",
        if schema_version::databases_by_oid() {
            "j.datid"
        } else {
            "NULL::pg_catalog.oid"
        },
        if only.is_some() {
            "AND j.id OPERATOR(pg_catalog.=) ANY ($1)"
        } else {
            ""
        }
    );
    let args = match only {
        Some(ids) => vec![ids.to_vec().into()],
        None => vec![],
    };
    client
        .select(&sql, None, &args)
        .or_raise("loading jobs")
        .map(|r| JobRow::from_row(&r))
        .collect()
}

/// Show the current names of renamed databases in job definitions (kept
/// by OID since 0.2.0; the name is for people).
pub(crate) fn refresh_database_names(client: &mut SpiClient) {
    client
        .update(
            "UPDATE jobs.job t SET database = d.datname FROM pg_catalog.pg_database d
                      WHERE d.oid OPERATOR(pg_catalog.=) t.datid AND t.database OPERATOR(pg_catalog.<>) d.datname",
            None,
            &[],
        )
        .or_raise("refreshing database names");
}

/// A job as `jobs.schedule` defines it, validated. Durations in
/// milliseconds (timeout 0: none), the one-off instant in microseconds
/// since 2000-01-01.
pub(crate) struct JobDef<'a> {
    /// `None`: a job without a name (pg_cron's `cron.schedule(schedule,
    /// command)`), which never matches another.
    pub(crate) name: Option<&'a str>,
    pub(crate) owner: pg_sys::Oid,
    /// `None`: a job that follows another (`after`) instead.
    pub(crate) schedule: Option<&'a str>,
    pub(crate) once_at: Option<i64>,
    pub(crate) command: &'a str,
    pub(crate) database: &'a str,
    pub(crate) datid: pg_sys::Oid,
    pub(crate) timezone: &'a str,
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) max_attempts: i32,
    pub(crate) retry_backoff_ms: i64,
    pub(crate) overlap: &'a str,
    pub(crate) catch_up: bool,
    /// The values of the command's parameters (checked), if it has any.
    pub(crate) args: Option<&'a Args>,
    /// The job this one follows and when (`after_job`, `run_if`), 0.4.0.
    pub(crate) after: Option<(i64, &'a str)>,
    /// The named queue its runs go to (checked), 0.4.0.
    pub(crate) queue: Option<&'a str>,
}

/// Create job `def` (per owner and name), or update it and enable it;
/// returns its id.
pub(crate) fn save(def: &JobDef) -> SpiResult<Option<i64>> {
    // A database still at 0.1.0 keeps the target database by name only.
    let (datid_col, datid_val, datid_set) = if schema_version::databases_by_oid() {
        (", datid", ", $13", ", datid = EXCLUDED.datid")
    } else {
        ("", "", "")
    };
    // 0.4.0 on: the values, replaced like every other setting (a job
    // scheduled again without them has none). Values come only through the
    // 0.4.0 functions, whose schema has the column.
    let (args_col, args_val, args_set) = if schema_version::has_args() {
        (", args", ", $14", ", args = EXCLUDED.args")
    } else {
        ("", "", "")
    };
    // 0.4.0 on: the job it follows, if any (a job scheduled again on a
    // schedule follows none).
    let (after_col, after_val, after_set) = if schema_version::has_job_chains() {
        (
            ", after_job, run_if",
            ", $15, $16",
            ", after_job = EXCLUDED.after_job, run_if = EXCLUDED.run_if",
        )
    } else {
        ("", "", "")
    };
    // 0.4.0 on: its queue (a job scheduled again without one has none).
    let (queue_col, queue_val, queue_set) = if schema_version::has_queues() {
        (", queue", ", $17", ", queue = EXCLUDED.queue")
    } else {
        ("", "", "")
    };
    let sql = format!(
        "INSERT INTO jobs.job AS j (name, owner, schedule, once_at, command, database, timezone, timeout,
                                    max_attempts, retry_backoff, overlap, catch_up{datid_col}{args_col}{after_col}{queue_col})
         VALUES ($1, $2::pg_catalog.regrole, $3,
                 TIMESTAMPTZ '2000-01-01 00:00:00+00' + $4 * INTERVAL '1 microsecond',
                 $5, $6, $7, NULLIF($8, 0) * INTERVAL '1 millisecond',
                 $9, $10 * INTERVAL '1 millisecond', $11, $12{datid_val}{args_val}{after_val}{queue_val})
         ON CONFLICT (owner, name) DO UPDATE
            SET schedule = EXCLUDED.schedule, once_at = EXCLUDED.once_at, command = EXCLUDED.command,
                database = EXCLUDED.database{datid_set}{args_set}{after_set}{queue_set}, timezone = EXCLUDED.timezone, timeout = EXCLUDED.timeout,
                max_attempts = EXCLUDED.max_attempts, retry_backoff = EXCLUDED.retry_backoff,
                overlap = EXCLUDED.overlap, catch_up = EXCLUDED.catch_up, enabled = true
         RETURNING j.id"
    );
    Spi::get_one_with_args::<i64>(
        &sql,
        &[
            def.name.into(),
            def.owner.into(),
            def.schedule.into(),
            def.once_at.into(),
            def.command.into(),
            def.database.into(),
            def.timezone.into(),
            def.timeout_ms.into(),
            def.max_attempts.into(),
            def.retry_backoff_ms.into(),
            def.overlap.into(),
            def.catch_up.into(),
            def.datid.into(),
            def.args.cloned().into(),
            def.after.map(|(id, _)| id).into(),
            def.after.map(|(_, run_if)| run_if).into(),
            def.queue.into(),
        ],
    )
}

/// What `jobs.alter_job` checks a change against: the job's owner, target
/// database (by OID; `InvalidOid` if unknown), attempts and retry backoff,
/// and its command and the values of its parameters (a new command must
/// fit the values kept, new values the command kept).
pub(crate) struct Settings {
    pub(crate) owner: pg_sys::Oid,
    pub(crate) datid: pg_sys::Oid,
    pub(crate) max_attempts: i32,
    pub(crate) retry_backoff_ms: i64,
    pub(crate) command: String,
    pub(crate) args: Option<Args>,
}

/// The current [`Settings`] of job `id`, as the caller sees it (row-level
/// security); `None` if there is none.
pub(crate) fn settings(id: i64) -> Option<Settings> {
    let by_oid = schema_version::databases_by_oid();
    Spi::connect(|c| {
        c.select(
            &format!(
                "SELECT owner::pg_catalog.oid, {by_oid}
                        (SELECT d.oid FROM pg_catalog.pg_database d
                          WHERE d.datname OPERATOR(pg_catalog.=) database)), max_attempts,
                        (EXTRACT(EPOCH FROM retry_backoff) * 1000)::int8, command, {args}
                   FROM jobs.job WHERE id OPERATOR(pg_catalog.=) $1",
                by_oid = if by_oid { "COALESCE(datid," } else { "(" },
                args = if schema_version::has_args() {
                    "args"
                } else {
                    "NULL::pg_catalog.text[]"
                }
            ),
            None,
            &[id.into()],
        )
        .or_raise("reading a job's settings")
        .next()
        .map(|r| Settings {
            owner: row::get_req::<pg_sys::Oid>(&r, 1),
            // NULL: its database is gone (checked where it matters).
            datid: row::get_opt::<pg_sys::Oid>(&r, 2).unwrap_or(pg_sys::InvalidOid),
            max_attempts: row::get_req::<i32>(&r, 3),
            retry_backoff_ms: row::get_req::<i64>(&r, 4),
            command: row::get_req::<String>(&r, 5),
            args: row::get_opt::<Args>(&r, 6),
        })
    })
}

/// A change `jobs.alter_job` makes (`None`: unchanged), validated; units
/// as in [`JobDef`]. A new schedule replaces `once_at` (NULL: recurring).
pub(crate) struct JobChange<'a> {
    pub(crate) schedule: Option<&'a str>,
    pub(crate) once_at: Option<i64>,
    pub(crate) command: Option<&'a str>,
    pub(crate) database: Option<&'a str>,
    pub(crate) datid: Option<pg_sys::Oid>,
    pub(crate) owner: Option<pg_sys::Oid>,
    pub(crate) timezone: Option<&'a str>,
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) max_attempts: Option<i32>,
    pub(crate) retry_backoff_ms: Option<i64>,
    pub(crate) overlap: Option<&'a str>,
    pub(crate) catch_up: Option<bool>,
    pub(crate) enabled: Option<bool>,
    /// New values (`Some(None)`: none any more), checked.
    pub(crate) args: Option<Option<&'a Args>>,
    /// New queue (`Some(None)`: none any more), checked.
    pub(crate) queue: Option<Option<&'a str>>,
}

/// Apply change `ch` to job `id`.
pub(crate) fn alter(id: i64, ch: &JobChange) -> SpiResult<()> {
    let sql = format!(
        "UPDATE jobs.job SET
                schedule = COALESCE($2, schedule),
                once_at = CASE WHEN $2 IS NULL THEN once_at
                               ELSE TIMESTAMPTZ '2000-01-01 00:00:00+00' + $3 * INTERVAL '1 microsecond' END,
                command = COALESCE($4, command),
                database = COALESCE($5, database),
                owner = COALESCE($6::pg_catalog.regrole, owner),
                timezone = COALESCE($7, timezone),
                timeout = CASE WHEN $8 IS NULL THEN timeout ELSE NULLIF($8, 0) * INTERVAL '1 millisecond' END,
                max_attempts = COALESCE($9, max_attempts),
                retry_backoff = COALESCE($10 * INTERVAL '1 millisecond', retry_backoff),
                overlap = COALESCE($11, overlap),
                catch_up = COALESCE($12, catch_up),
                enabled = COALESCE($13, enabled){}{}{}{}{}
              WHERE id OPERATOR(pg_catalog.=) $1",
        if schema_version::databases_by_oid() {
            ", datid = COALESCE($14, datid)"
        } else {
            ""
        },
        // Only when they change: they come only through the 0.4.0
        // functions, whose schema has the column.
        if ch.args.is_some() { ", args = $15" } else { "" },
        // A job given a schedule no longer follows another.
        if ch.schedule.is_some() && schema_version::has_job_chains() {
            ", after_job = NULL, run_if = NULL"
        } else {
            ""
        },
        // Likewise.
        if ch.queue.is_some() { ", queue = $16" } else { "" },
        // Resumed: what a restore said about pausing it no longer holds.
        if ch.enabled == Some(true) && schema_version::has_definitions() {
            ", disabled_reason = NULL"
        } else {
            ""
        }
    );
    let args: [DatumWithOid; 16] = [
        id.into(),
        ch.schedule.into(),
        ch.once_at.into(),
        ch.command.into(),
        ch.database.into(),
        ch.owner.into(),
        ch.timezone.into(),
        ch.timeout_ms.into(),
        ch.max_attempts.into(),
        ch.retry_backoff_ms.into(),
        ch.overlap.into(),
        ch.catch_up.into(),
        ch.enabled.into(),
        ch.datid.into(),
        ch.args.flatten().cloned().into(),
        ch.queue.flatten().into(),
    ];
    Spi::run_with_args(&sql, &args)
}

/// Pause (`false`) or resume job `id`.
pub(crate) fn set_enabled(id: i64, enabled: bool) -> SpiResult<()> {
    // Resumed: what a restore said about pausing it no longer holds.
    let sql = if enabled && schema_version::has_definitions() {
        "UPDATE jobs.job SET enabled = $2, disabled_reason = NULL WHERE id OPERATOR(pg_catalog.=) $1"
    } else {
        "UPDATE jobs.job SET enabled = $2 WHERE id OPERATOR(pg_catalog.=) $1"
    };
    Spi::run_with_args(sql, &[id.into(), enabled.into()])
}

/// Create job `def` as pg_cron's `cron.schedule` does (enabled if
/// `active`), or, if its owner has a job of that name, give that job
/// `def`'s schedule, command and database and keep everything else,
/// its enabled flag included (pg_cron's upsert). Returns its id.
pub(crate) fn save_cron(def: &JobDef, active: bool) -> SpiResult<Option<i64>> {
    Spi::get_one_with_args::<i64>(
        "INSERT INTO jobs.job AS j (name, owner, schedule, once_at, command, database, timezone,
                                    max_attempts, retry_backoff, overlap, catch_up, datid, enabled)
         VALUES ($1, $2::pg_catalog.regrole, $3, NULL, $4, $5, $6, $7, $8 * INTERVAL '1 millisecond',
                 $9, $10, $11, $12)
         ON CONFLICT (owner, name) DO UPDATE
            SET schedule = EXCLUDED.schedule, once_at = NULL, command = EXCLUDED.command,
                database = EXCLUDED.database, datid = EXCLUDED.datid
         RETURNING j.id",
        &[
            def.name.into(),
            def.owner.into(),
            def.schedule.into(),
            def.command.into(),
            def.database.into(),
            def.timezone.into(),
            def.max_attempts.into(),
            def.retry_backoff_ms.into(),
            def.overlap.into(),
            def.catch_up.into(),
            def.datid.into(),
            active.into(),
        ],
    )
}

/// The owner of job `id` (`None`: no such job), whatever the caller may
/// see: the cron API applies pg_cron's own ownership rule to it.
pub(crate) fn owner_of(id: i64) -> Option<pg_sys::Oid> {
    at_most_one(
        Spi::get_one_with_args::<pg_sys::Oid>(
            "SELECT owner::pg_catalog.oid FROM jobs.job WHERE id OPERATOR(pg_catalog.=) $1",
            &[id.into()],
        ),
        "reading a job's owner",
    )
}

/// The value a one-row query read, `None` if it found no row.
fn at_most_one<T>(read: SpiResult<Option<T>>, what: &str) -> Option<T> {
    match read {
        Err(pgrx::spi::SpiError::InvalidPosition) => None,
        other => other.or_raise(what),
    }
}

/// The id of `owner`'s job called `name`, if any.
pub(crate) fn id_by_owner_and_name(owner: pg_sys::Oid, name: &str) -> Option<i64> {
    at_most_one(
        Spi::get_one_with_args::<i64>(
            "SELECT id FROM jobs.job WHERE owner OPERATOR(pg_catalog.=) $1::pg_catalog.regrole
                AND name OPERATOR(pg_catalog.=) $2",
            &[owner.into(), name.into()],
        ),
        "looking up a job by owner and name",
    )
}

/// The job called `name` that job `id` would follow, followed back through
/// its own `after_job` chain: whether that chain reaches `id` (a cycle).
pub(crate) fn follows_back(id: i64, followed: i64) -> bool {
    Spi::get_one_with_args::<bool>(
        "WITH RECURSIVE chain(id, depth) AS (
             SELECT $2::int8, 0
           UNION ALL
             SELECT j.after_job, c.depth OPERATOR(pg_catalog.+) 1 FROM chain c
               JOIN jobs.job j ON j.id OPERATOR(pg_catalog.=) c.id
              WHERE j.after_job IS NOT NULL AND c.depth OPERATOR(pg_catalog.<) 1000)
         SELECT EXISTS (SELECT FROM chain WHERE id OPERATOR(pg_catalog.=) $1)",
        &[id.into(), followed.into()],
    )
    .or_raise("following a chain of jobs")
    .unwrap_or(true)
}

/// The names of the jobs that follow job `id` (`after_job`).
pub(crate) fn followers(id: i64) -> Vec<String> {
    if !schema_version::has_job_chains() {
        return Vec::new();
    }
    Spi::connect(|c| {
        c.select(
            "SELECT COALESCE(name, '#' OPERATOR(pg_catalog.||) id::text) FROM jobs.job
              WHERE after_job OPERATOR(pg_catalog.=) $1 ORDER BY id",
            None,
            &[id.into()],
        )
        .map(|t| {
            t.into_iter()
                .filter_map(|r| row::get_opt::<String>(&r, 1))
                .collect()
        })
    })
    .or_raise("looking for jobs that follow a job")
}
