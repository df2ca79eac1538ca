//! The warm executor pool: executors that stay after a run for the next
//! run of the same database and role, the runs they reserve from the
//! queue, and the hand-over of a run from a scheduler to a pooled executor.

use super::*;
use pg_jobs_core::executor_phase::{ExecutorEvent, ExecutorPhase};

/// Scheduler side: how many executors of `home_db` are connected (or
/// connecting, started ahead of a due instant) to `db` as `role` and free
/// to take a run.
pub fn pooled_or_warming(home_db: pg_sys::Oid, db: u32, role: u32) -> usize {
    let reg = REGISTRY.share();
    reg.slots
        .iter()
        .filter(|s| {
            s.in_use
                && s.kind == Kind::Executor
                && !s.retire
                && s.home_db == home_db.to_u32()
                && s.db == db
                && s.role == role
                && matches!(
                    s.phase(),
                    ExecutorPhase::Pooled | ExecutorPhase::ReservedAhead | ExecutorPhase::Warming
                )
        })
        .count()
}

/// Executor side: started ahead of a due instant with no run, now
/// connected: idle in the pool, free to be handed a run.
pub fn set_pooled(r: SlotRef) {
    {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        if !(slot.in_use && slot.generation == r.generation) {
            return;
        }
        let retire = slot.retire;
        if !step(slot, ExecutorEvent::Pool { retire }) {
            return;
        }
        slot.state = State::Idle;
        slot.since = now();
    }
    // It no longer counts against pg_jobs.max_executors: a scheduler that
    // found no capacity while it connected may dispatch now.
    wake_all_schedulers();
}

/// Scheduler side: claim an idle executor of `home_db` connected to `db` as
/// `role` for run `run_id` (handed over later with [`hand_over`]).
pub fn take_idle(
    home_db: pg_sys::Oid,
    db: u32,
    role: u32,
    run_id: i64,
    job_id: i64,
    timeout_ms: i64,
    queue_id: i64,
) -> Option<SlotRef> {
    let mut reg = REGISTRY.exclusive();
    let (i, slot) = reg.slots.iter_mut().enumerate().find(|(_, s)| {
        s.in_use
            && s.kind == Kind::Executor
            && s.phase() == ExecutorPhase::Pooled
            && !s.retire
            && s.home_db == home_db.to_u32()
            && s.db == db
            && s.role == role
    })?;
    step(slot, ExecutorEvent::TakeIdle);
    assign_run(slot, run_id, job_id, timeout_ms);
    slot.queue_id = queue_id;
    Some(SlotRef {
        index: i as u32,
        generation: slot.generation,
    })
}

/// Scheduler side: give a claimed idle executor its command and wake it.
/// `false` (the caller requeues the run) when it is no longer there to take
/// it: exited, or retiring (its idle timeout, or a retire request, came
/// between [`take_idle`] and this), as the phase model has it.
pub fn hand_over(r: SlotRef, dsm: u32) -> bool {
    let latch = {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        if !(slot.in_use && slot.generation == r.generation) {
            return false;
        }
        // Exited or retiring: an expected race, not worth a warning.
        if matches!(
            slot.phase(),
            ExecutorPhase::Retiring | ExecutorPhase::ExitedIdle | ExecutorPhase::ExitedWithRun
        ) || !step(slot, ExecutorEvent::HandOver)
        {
            return false;
        }
        slot.dsm = dsm;
        slot.latch
    };
    set_latch(latch);
    true
}

/// Scheduler side: a claimed idle executor is not handed its run after all
/// (the run goes back to the queue): it returns to the pool, free for
/// another run. (Freeing its slot instead would lose track of a live
/// process.)
pub fn abandon_handover(r: SlotRef) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
        return;
    }
    // Retiring or exited meanwhile: nothing to give back to the pool.
    if slot.phase() != ExecutorPhase::HandoverPending {
        return;
    }
    step(slot, ExecutorEvent::AbandonHandover);
    slot.run_id = 0;
    slot.job_id = 0;
    slot.state = State::Idle;
    slot.since = now();
}

/// Executor side: `Some(dsm)` if a new run was handed over; if `retiring`
/// and none was, the slot stops being offered (atomically, so no run is
/// handed to an executor on its way out: [`hand_over`] refuses a retiring one).
pub fn take_assignment(r: SlotRef, retiring: bool) -> Option<u32> {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
        return None;
    }
    if slot.phase() == ExecutorPhase::Assigned {
        step(slot, ExecutorEvent::TakeAssignment);
        return Some(slot.dsm);
    }
    if retiring || slot.retire {
        retire(slot);
    }
    None
}

/// Ask the executor of `slot` to exit: an idle one leaves the pool now
/// (`Retiring`), a busy one after its run (the flag).
pub(super) fn retire(slot: &mut Slot) {
    slot.retire = true;
    step(slot, ExecutorEvent::Retire);
}

/// Scheduler side, at start: idle executors of `home_db` that an earlier
/// life of this scheduler claimed for a run and died before handing over
/// are told to exit now (instead of waiting out their idle timeout while
/// the run looks taken). Their runs are marked crashed or dispatched anew.
pub fn retire_abandoned(home_db: pg_sys::Oid) {
    let latches: Vec<usize> = {
        let mut reg = REGISTRY.exclusive();
        reg.slots
            .iter_mut()
            .filter(|s| {
                s.in_use
                    && s.kind == Kind::Executor
                    && s.home_db == home_db.to_u32()
                    && s.phase() == ExecutorPhase::HandoverPending
            })
            .map(|s| {
                retire(s);
                s.latch
            })
            .collect()
    };
    for l in latches {
        set_latch(l);
    }
}

/// Executor side (warm pool): it took run `run_id` from the queue itself,
/// and reserved `more` (at most [`RESERVE_MAX`] − 1) to run next. Called
/// inside the claiming transaction, before it commits, so that a crash
/// sweep that sees the runs `starting` also sees them held here. `false`
/// (claim nothing) when the executor was asked to retire. `queue_id`: the
/// named queue of the runs (0: none), which the executor holds from now.
pub fn self_claim(
    r: SlotRef,
    run_id: i64,
    job_id: i64,
    timeout_ms: i64,
    more: &[i64],
    queue_id: i64,
) -> bool {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) || slot.retire || more.len() >= RESERVE_MAX {
        return false;
    }
    if !step(slot, ExecutorEvent::ClaimNext) {
        return false;
    }
    assign_run(slot, run_id, job_id, timeout_ms);
    slot.queue_id = queue_id;
    slot.reserved[..more.len()].copy_from_slice(more);
    slot.reserved_len = more.len() as u8;
    let home = slot.home_db;
    if let Some(e) = db_entry(&mut reg.dbs, home) {
        e.claims += 1 + more.len() as u64;
    }
    true
}

/// Executor side: start the next reserved run, `run_id`, unless the
/// scheduler (or `jobs.cancel`) took it back meanwhile (`false`: skip it).
/// Decided under the lock, so a run is either started here or requeued
/// there, never both.
pub fn start_reserved(r: SlotRef, run_id: i64, job_id: i64, timeout_ms: i64) -> bool {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
        return false;
    }
    // Not between runs (a bug): logged; the run stays reserved, for the
    // harvest to requeue when this executor exits.
    if !admits(slot, ExecutorEvent::ClaimNext) {
        step(slot, ExecutorEvent::ClaimNext);
        return false;
    }
    if !remove_reserved(slot, run_id) {
        return false;
    }
    step(slot, ExecutorEvent::ClaimNext);
    assign_run(slot, run_id, job_id, timeout_ms);
    true
}

/// The runs reserved in slot `r` (none if the slot is not that worker's).
pub fn reserved(r: SlotRef) -> Vec<i64> {
    let reg = REGISTRY.share();
    let slot = &reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
        return Vec::new();
    }
    slot.reserved().to_vec()
}

/// Give back every reserved run of slot `r` (its caller requeues them).
pub fn take_reserved(r: SlotRef) -> Vec<i64> {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
        return Vec::new();
    }
    let ids = slot.reserved().to_vec();
    slot.reserved_len = 0;
    ids
}

/// Scheduler side: take back the runs reserved by executors whose current
/// run has been going for over `running_us` (they would wait behind it);
/// the caller requeues them. (Those of executors that exited are requeued
/// by the harvest that frees their slots.)
pub fn take_back_reserved(home_db: pg_sys::Oid, running_us: i64) -> Vec<i64> {
    let mut reg = REGISTRY.exclusive();
    let now = now();
    let mut ids = Vec::new();
    for slot in reg.slots.iter_mut().filter(|s| {
        s.in_use
            && s.kind == Kind::Executor
            && s.home_db == home_db.to_u32()
            && s.reserved_len > 0
            && s.phase() == ExecutorPhase::Running
            && now - s.since > running_us
    }) {
        ids.extend_from_slice(slot.reserved());
        slot.reserved_len = 0;
    }
    ids
}

/// A pooled executor's slot takes on run `run_id`: everything about the
/// previous run (its outcome, flags, times, message) is cleared. (Its
/// phase is moved by the caller's event.)
pub(super) fn assign_run(slot: &mut Slot, run_id: i64, job_id: i64, timeout_ms: i64) {
    slot.run_id = run_id;
    slot.job_id = job_id;
    slot.timeout_ms = timeout_ms;
    slot.outcome = Outcome::Nothing;
    slot.cancel_requested = false;
    slot.killed_for_timeout = false;
    slot.started_at = 0;
    slot.finished_at = 0;
    slot.message_len = 0;
    slot.state = State::Starting;
    slot.since = now();
}

/// How many runs the pooled executors of `db` have taken from its queue
/// themselves since the server started.
pub fn claims(db: pg_sys::Oid) -> u64 {
    let reg = REGISTRY.share();
    reg.dbs
        .iter()
        .find(|e| e.in_use && e.db == db.to_u32())
        .map_or(0, |e| e.claims)
}

/// Executor side: whether it was asked to exit.
pub fn retire_requested(r: SlotRef) -> bool {
    let reg = REGISTRY.share();
    let s = &reg.slots[r.index as usize];
    s.in_use && s.generation == r.generation && s.retire
}

/// A committed change to what a new connection of a role gets (`ALTER
/// ROLE … SET`, `ALTER DATABASE … SET`, a role's attributes): every
/// executor with a process may have set up its session from the old
/// settings, so each is asked to exit — an idle one now (woken, it leaves
/// the pool and exits), a busy one after its run, giving back any runs it
/// reserved. None is handed or takes another run from here on (`take_idle`,
/// `hand_over` and `self_claim` refuse a retiring one), so the next run of
/// every role starts in a fresh process with the settings as committed.
/// Slots reserved for a process that has not claimed them yet are left
/// alone: it connects after this, and reads the new settings. Cluster-wide
/// (settings live in a shared catalog): pooled executors of other roles
/// go too, at the cost of one cold start each.
pub fn retire_connected_executors() {
    let latches: Vec<usize> = {
        let mut reg = REGISTRY.exclusive();
        reg.slots
            .iter_mut()
            .filter(|s| s.in_use && s.kind == Kind::Executor && s.phase().has_process())
            .filter_map(|s| {
                retire(s);
                // Only idle ones wait on their latch for this.
                (s.phase() == ExecutorPhase::Retiring).then_some(s.latch)
            })
            .collect()
    };
    for l in latches {
        set_latch(l);
    }
}

/// Ask one idle pooled executor to exit, to free its worker slot. Returns
/// whether there was one.
pub fn retire_one_idle() -> bool {
    let latch = {
        let mut reg = REGISTRY.exclusive();
        let Some(slot) = reg
            .slots
            .iter_mut()
            .find(|s| s.in_use && s.kind == Kind::Executor && s.phase() == ExecutorPhase::Pooled)
        else {
            return false;
        };
        retire(slot);
        slot.latch
    };
    set_latch(latch);
    true
}
