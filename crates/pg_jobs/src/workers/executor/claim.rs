//! Taking runs from the queue: a pooled executor that just finished a quick
//! run claims the next runs of its database and role itself (the head of
//! the queue, or a batch of up to `RESERVE_MAX`), and gives back the ones it
//! reserved and did not start.

use super::*;
use crate::catalog::acl::start_refusal;
use crate::catalog::queues;
pub(super) use crate::catalog::runs::{claim_batch, claim_head, Claimed};
use pg_jobs_core::queue::QueueTag;
use pgrx::spi::{SpiClient, SpiError};

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

/// Take runs from the head of our role's lane (its queued runs in its own
/// priority and due order): up to `batch` consecutive runs of our database
/// (a scheduled job's run only when its overlap policy lets it start now),
/// or else the head alone if it is of our database. Only our own lane: an
/// executor keeps its role's share of the executors and never takes one
/// from another role; sharing across roles is the scheduler's
/// (`pg_jobs_core::fair`). Re-checks that the role may still log in and connect, as
/// the scheduler does. The first run is this executor's current run, the
/// rest are reserved for it in the registry (`jobs.run` says `starting`).
/// The claim commits with `synchronous_commit = off`: if the server
/// crashes before it is flushed, the runs are simply still queued.
/// After a run of a named queue (`queue`), first more of the role's runs
/// in that queue, as the queue's limits allow ([`claim_in_queue`]).
pub(super) fn claim_next(
    me: SlotRef,
    db: pg_sys::Oid,
    role: pg_sys::Oid,
    batch: usize,
    queue: Option<&QueueTag>,
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
            if let Some(q) = queue {
                let runs = claim_in_queue(c, me, db, role, batch, q.id)?;
                if !runs.is_empty() {
                    return Ok(runs);
                }
            }
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
        let queue_id = first.command.queue.as_ref().map_or(0, |q| q.id);
        // Held in the registry before the claim commits (see self_claim);
        // if we were told to retire meanwhile, the claim rolls back.
        if !shmem::self_claim(me, run_id, job_id, timeout_ms, &more, queue_id) {
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN,
                "pg_jobs executor: asked to exit while taking a run"
            );
        }
        Some(claimed)
    })
}

/// More runs of role `role` in queue `queue_id`, whose runs this executor
/// holds (it just ran one), in one claim with the queue's row locked
/// (`catalog::queues`): none if the queue is gone or paused, if the
/// executors holding its runs, us included (the registry's `queue_id`),
/// are over its `max_concurrency` (lowered since), or if another role has
/// runs of it due (then the scheduler shares the queue between the roles);
/// at most as many as its rate limit lets start now; none whose
/// concurrency key is at the queue's `max_per_key`.
fn claim_in_queue(
    c: &mut SpiClient<'_>,
    me: SlotRef,
    db: pg_sys::Oid,
    role: pg_sys::Oid,
    batch: usize,
    queue_id: i64,
) -> Result<Vec<Claimed>, SpiError> {
    let Some(q) = queues::find_locked(c, queue_id) else {
        return Ok(Vec::new());
    };
    if q.paused
        || pg_jobs_core::queue::room(
            q.max_concurrency,
            shmem::executors_holding_queue(db, q.id, Some(me)),
        ) == Some(0)
        || queues::others_waiting(c, &q.name, role)
    {
        return Ok(Vec::new());
    }
    let batch = match q.rate() {
        Some(rate) => batch.min(shmem::start_room(db.to_u32(), q.id, rate).0),
        None => batch,
    };
    if batch == 0 {
        return Ok(Vec::new());
    }
    let keys = q.max_per_key.map(|_| queues::holding_by_key(c, &q.name));
    crate::catalog::runs::claim_in_queue(c, role, db, batch, &q, keys.as_ref())
}
