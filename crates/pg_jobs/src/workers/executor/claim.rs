//! Taking runs from the queue: a pooled executor that just finished a quick
//! run claims the next runs of its database and role itself (the head of
//! the queue, or a batch of up to `RESERVE_MAX`), and gives back the ones it
//! reserved and did not start.

use super::*;
use crate::catalog::acl::start_refusal;
use crate::catalog::row;

/// A run taken from the queue by this executor, not started yet.
pub(super) struct Claimed {
    pub(super) run_id: i64,
    /// The scheduled job it is a run of (0: submitted).
    pub(super) job_id: i64,
    pub(super) command: String,
    pub(super) timeout_ms: i64,
}

impl Claimed {
    /// From a claim's `RETURNING id, command, timeout in ms, job id (0)`.
    fn from_row(r: &pgrx::spi::SpiHeapTupleData) -> Claimed {
        Claimed {
            run_id: row::get_req::<i64>(r, 1),
            command: row::get_req::<String>(r, 2),
            timeout_ms: row::get_opt::<i64>(r, 3).unwrap_or(0),
            job_id: row::get_req::<i64>(r, 4),
        }
    }
}

/// Put the runs this executor reserved back in the queue (in a
/// transaction). Their rows are requeued (and so locked) before they leave
/// the registry: a crash sweep that no longer finds them held waits for
/// this transaction and then sees them queued. Only rows still ours (our
/// pid, `starting`): the scheduler may have taken some back meanwhile, and
/// another executor claimed them since.
pub(super) fn give_back(me: SlotRef, reserved: &mut VecDeque<Claimed>) {
    reserved.clear();
    let ids = shmem::reserved(me);
    if !ids.is_empty() {
        crate::pg::bgw::as_superuser(|| crate::catalog::runs::requeue_reserved(&ids, true));
        shmem::take_reserved(me);
    }
}

/// Take runs from the head of the queue: up to `batch` consecutive runs of
/// our database and role (a scheduled job's run only when its overlap
/// policy lets it start now), or else the head alone if it is ours. The head only: priority and due
/// order stay global; when the head is another role's, the scheduler
/// dispatches it. Re-checks that the role may still log in and connect, as
/// the scheduler does. The first run is this executor's current run, the
/// rest are reserved for it in the registry (`jobs.run` says `starting`).
/// The claim commits with `synchronous_commit = off`: if the server
/// crashes before it is flushed, the runs are simply still queued.
pub(super) fn claim_next(
    me: SlotRef,
    db: pg_sys::Oid,
    role: pg_sys::Oid,
    batch: usize,
) -> Option<Vec<Claimed>> {
    if !crate::catalog::schema_version::databases_by_oid() || start_refusal(role, db).is_some() {
        return None; // the scheduler fails its runs with the reason
    }
    crate::pg::bgw::as_superuser(|| {
        // SET LOCAL: for this claim's commit only, never the command's.
        // SAFETY: in a transaction (claim_next runs inside
        // in_transaction_flushing), as GUC_ACTION_LOCAL needs; the name and
        // value are NUL-terminated literals of a built-in setting.
        unsafe {
            pg_sys::set_config_option(
                c"synchronous_commit".as_ptr(),
                c"off".as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_LOCAL,
                true,
                0,
                false,
            )
        };
        let claimed = Spi::connect_mut(|c| {
            if batch > 1 {
                let runs = claim_batch(c, role, db, batch)?;
                if !runs.is_empty() {
                    return Ok(runs);
                }
            }
            claim_head(c, role, db)
        })
        .unwrap_or_else(|e| error!("pg_jobs executor: cannot take the next run: {e}"));
        let first = claimed.first()?;
        let (run_id, timeout_ms, job_id) = (first.run_id, first.timeout_ms, first.job_id);
        let more: Vec<i64> = claimed[1..].iter().map(|c| c.run_id).collect();
        // Held in the registry before the claim commits (see self_claim);
        // if we were told to retire meanwhile, the claim rolls back.
        if !shmem::self_claim(me, run_id, job_id, timeout_ms, &more) {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN,
                "pg_jobs executor: asked to exit while taking a run"
            );
        }
        Some(claimed)
    })
}

/// Up to `batch` runs of ours from the head of the queue, in queue order,
/// marked `starting`; none if the head is not one of them. A scheduled
/// job's run counts as ours only if no other run of that job is queued or
/// going (unless the job allows overlap): then no other claimer, which
/// cannot see our uncommitted claim, can take a second run of that job.
pub(super) fn claim_batch(
    c: &mut pgrx::spi::SpiClient<'_>,
    role: pg_sys::Oid,
    db: pg_sys::Oid,
    batch: usize,
) -> Result<Vec<Claimed>, pgrx::spi::SpiError> {
    // Lock the head rows (others skip them), then keep the leading ones
    // that are ours: the first run of another role, or of a job that must
    // wait, ends the batch.
    let head = crate::catalog::plans::run(
        c,
        "SELECT r.id, (r.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                       AND r.datid OPERATOR(pg_catalog.=) $2
                       AND (r.job_id IS NULL OR NOT EXISTS (
                             SELECT 1 FROM jobs.job j
                              WHERE j.id OPERATOR(pg_catalog.=) r.job_id
                                AND j.overlap OPERATOR(pg_catalog.<>) 'allow'
                                AND EXISTS (SELECT 1 FROM jobs.run o
                                             WHERE o.job_id OPERATOR(pg_catalog.=) r.job_id
                                               AND o.id OPERATOR(pg_catalog.<>) r.id
                                               AND o.status OPERATOR(pg_catalog.=) ANY ('{queued,starting,running}')))))
           FROM jobs.run r
          WHERE r.status OPERATOR(pg_catalog.=) 'queued'
            AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
          ORDER BY r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id
          LIMIT $3
            FOR UPDATE SKIP LOCKED",
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
    let rows = crate::catalog::plans::run(
        c,
        "/* run event: reserve */ UPDATE jobs.run SET status = 'starting', pid = pg_catalog.pg_backend_pid(), message = NULL
          WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'queued'
      RETURNING id, command, (EXTRACT(EPOCH FROM timeout) * 1000)::int8, COALESCE(job_id, 0)",
        &[ids.clone().into()],
    )?;
    let mut runs: Vec<Claimed> = rows.into_iter().map(|r| Claimed::from_row(&r)).collect();
    runs.sort_by_key(|c| ids.iter().position(|&id| id == c.run_id));
    Ok(runs)
}

/// The head of the queue alone, if it is ours, marked `running`; returns
/// it with its job id (0 for a submitted run).
pub(super) fn claim_head(
    c: &mut pgrx::spi::SpiClient<'_>,
    role: pg_sys::Oid,
    db: pg_sys::Oid,
) -> Result<Vec<Claimed>, pgrx::spi::SpiError> {
    let rows = crate::catalog::plans::run(
        c,
        "/* run event: claim */ WITH head AS (
           SELECT r.id, r.owner, r.datid, r.job_id
             FROM jobs.run r
            WHERE r.status OPERATOR(pg_catalog.=) 'queued'
              AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
            ORDER BY r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id
            LIMIT 1
            FOR UPDATE SKIP LOCKED)
         UPDATE jobs.run u
            SET status = 'running', pid = pg_catalog.pg_backend_pid(),
                started_at = pg_catalog.clock_timestamp(), message = NULL
           FROM head
          WHERE u.id OPERATOR(pg_catalog.=) head.id
            AND head.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
            AND head.datid OPERATOR(pg_catalog.=) $2
            -- A scheduled job's run waits, as the scheduler makes it
            -- wait, while another run of that job is going (unless
            -- the job allows overlap).
            AND (head.job_id IS NULL OR NOT EXISTS (
                  SELECT 1 FROM jobs.job j
                   WHERE j.id OPERATOR(pg_catalog.=) head.job_id
                     AND j.overlap OPERATOR(pg_catalog.<>) 'allow'
                     AND EXISTS (SELECT 1 FROM jobs.run o
                                  WHERE o.job_id OPERATOR(pg_catalog.=) head.job_id
                                    AND o.status OPERATOR(pg_catalog.=) ANY ('{starting,running}'))))
      RETURNING u.id, u.command, (EXTRACT(EPOCH FROM u.timeout) * 1000)::int8,
                COALESCE(u.job_id, 0)",
        &[role.into(), db.into()],
    )?;
    Ok(rows.into_iter().map(|r| Claimed::from_row(&r)).collect())
}
