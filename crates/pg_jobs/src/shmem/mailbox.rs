//! What a scheduler and its executors tell each other through a slot: the
//! run's command segment, that it started, its outcome, a timeout kill, a
//! cancel request, and the reload requests the SQL API leaves for a
//! scheduler.

use super::*;
use pg_jobs_core::executor_phase::{ExecutorEvent, ExecutorPhase};

/// Executor side: the command started. The scheduler is not woken for
/// this: it says `running` in `jobs.run` on its next pass, at most
/// `RUNNING_VISIBLE_WITHIN_MS` later, so a short run costs it no extra pass.
/// Returns the latch of the scheduler of the run's history database (0 if
/// none), for an executor to wake it when the run turns out not to be short.
pub fn set_running(r: SlotRef) -> usize {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation && step(slot, ExecutorEvent::StartCommand)) {
        return 0;
    }
    slot.state = State::Running;
    slot.since = now();
    slot.started_at = slot.since;
    let home = slot.home_db;
    scheduler_latch(&reg, home)
}

/// How soon after an executor starts its run `jobs.run` says `running`.
pub const RUNNING_VISIBLE_WITHIN_MS: i64 = 50;

/// Executor side: what happened to the run. The command is over: the slot
/// is idle (no longer `running`: nothing to show, time out or interrupt).
pub fn record_outcome(r: SlotRef, outcome: Outcome, sqlstate: &str, message: &str) {
    record_failure(r, outcome, sqlstate, message, None);
}

/// [`record_outcome`] with the error's DETAIL, kept after the message in
/// the same buffer, past a NUL (which neither can contain); what does not
/// fit is cut, the detail first.
pub fn record_failure(r: SlotRef, outcome: Outcome, sqlstate: &str, message: &str, detail: Option<&str>) {
    let text = match detail {
        Some(d) => format!("{message}\0{d}"),
        None => message.to_owned(),
    };
    let message = text.as_str();
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation && step(slot, ExecutorEvent::RecordOutcome)) {
        return;
    }
    slot.outcome = outcome;
    slot.finished_at = now();
    slot.state = State::Idle;
    slot.since = slot.finished_at;
    let code = sqlstate.as_bytes();
    if code.len() == 5 {
        slot.sqlstate.copy_from_slice(code);
    }
    let mut end = message.len().min(MESSAGE_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    slot.message[..end].copy_from_slice(&message.as_bytes()[..end]);
    slot.message_len = end as u16;
}

/// Scheduler side: hand the executor its command before starting it.
pub fn set_dsm(r: SlotRef, handle: u32) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if slot.in_use && slot.generation == r.generation {
        slot.dsm = handle;
    }
}

/// Scheduler side: terminate an executor that overran its timeout. Not
/// one whose command ended (or that exited) since the caller looked: the
/// model admits the kill only while the command runs.
pub fn kill_for_timeout(r: SlotRef) {
    let pid = {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        if !(slot.in_use && slot.generation == r.generation && admits(slot, ExecutorEvent::KillForTimeout)) {
            return;
        }
        step(slot, ExecutorEvent::KillForTimeout);
        slot.killed_for_timeout = true;
        slot.pid
    };
    // SAFETY: kill(2) takes no pointers; the pid is a live, claimed
    // executor's (checked under the lock above), signalled as
    // pg_terminate_backend would.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// What a scheduler must read again.
#[derive(Debug, Default)]
pub struct Reload {
    /// Every job (too many changed one by one, or the extension was updated).
    pub all_jobs: bool,
    /// Just these jobs (added, changed or removed).
    pub jobs: Vec<i64>,
    pub daemons: bool,
    /// The waiting runs (see [`crate::shmem`]'s slot field `recheck_waiting`).
    pub waiting: bool,
}

/// Committed changes to `db`'s definitions: tell its scheduler what to
/// reload, and wake it. A change made while no scheduler runs needs no
/// note: a starting scheduler loads everything.
/// Have every database's scheduler load all its jobs again (a role was
/// renamed: each refreshes the owners' names of its definitions).
pub fn request_full_reload_everywhere() {
    let latches: Vec<usize> = {
        let mut reg = REGISTRY.exclusive();
        reg.slots
            .iter_mut()
            .filter(|s| s.in_use && s.kind == Kind::Scheduler)
            .map(|s| {
                s.reload_jobs = true;
                s.changed_len = 0;
                s.latch
            })
            .collect()
    };
    for l in latches {
        set_latch(l);
    }
}

pub fn request_reload(db: pg_sys::Oid, all_jobs: bool, jobs: &[i64], daemons: bool, waiting: bool) {
    let latch = {
        let mut reg = REGISTRY.exclusive();
        match reg
            .slots
            .iter_mut()
            .find(|s| s.in_use && s.kind == Kind::Scheduler && s.db == db.to_u32())
        {
            Some(s) => {
                let len = s.changed_len as usize;
                if all_jobs || len + jobs.len() > CHANGED_JOBS {
                    s.reload_jobs = true;
                    s.changed_len = 0;
                } else if !s.reload_jobs {
                    s.changed_jobs[len..len + jobs.len()].copy_from_slice(jobs);
                    s.changed_len = (len + jobs.len()) as u8;
                }
                s.reload_daemons |= daemons;
                s.recheck_waiting |= waiting;
                s.latch
            }
            None => 0,
        }
    };
    set_latch(latch);
}

/// Scheduler side: what waits for a pass, without taking it — a reload
/// request (`.0`; the next pass always takes it), or a worker of its
/// database that exited and awaits harvest (`.1`). Checked before sleeping:
/// a lock wait inside a pass (PostgreSQL's ProcSleep) resets the process
/// latch, so a wake-up set during the pass can be gone by then.
pub fn work_waiting(r: SlotRef, db: pg_sys::Oid) -> (bool, bool) {
    let reg = REGISTRY.share();
    let me = &reg.slots[r.index as usize];
    let reload = me.reload_jobs || me.reload_daemons || me.recheck_waiting || me.changed_len > 0;
    let exited = reg.slots.iter().any(|s| {
        s.in_use && matches!(s.kind, Kind::Executor | Kind::Daemon) && s.home_db == db.to_u32() && s.exited()
    });
    (reload, exited)
}

/// Scheduler side: take (and clear) what changed.
pub fn take_reload(r: SlotRef) -> Reload {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    let jobs = slot.changed_jobs[..slot.changed_len as usize].to_vec();
    slot.changed_len = 0;
    Reload {
        all_jobs: std::mem::take(&mut slot.reload_jobs),
        jobs,
        daemons: std::mem::take(&mut slot.reload_daemons),
        waiting: std::mem::take(&mut slot.recheck_waiting),
    }
}

/// What [`cancel_run`] found: the core's [`Holder`], which
/// `run::cancel::decide` takes.
pub use pg_jobs_core::run::cancel::Holder as Cancel;

/// `jobs.cancel` of a run an executor holds: flag it and interrupt its
/// statement (SIGINT, as pg_cancel_backend), or take it back from the
/// runs an executor reserved.
pub fn cancel_run(home_db: pg_sys::Oid, run_id: i64) -> Cancel {
    let pid = {
        let mut reg = REGISTRY.exclusive();
        let mut found = None;
        for slot in reg
            .slots
            .iter_mut()
            .filter(|s| s.in_use && s.kind == Kind::Executor && s.home_db == home_db.to_u32())
        {
            if slot.exited() {
                if slot.run_id == run_id && slot.phase() == ExecutorPhase::ExitedWithRun {
                    return Cancel::Exited;
                }
                continue;
            }
            // A slot idle in the pool (or retiring) shows the last run it
            // had; it holds no run to cancel.
            if slot.run_id == run_id && step_if_admitted(slot, ExecutorEvent::CancelRequested) {
                slot.cancel_requested = true;
                // Interrupt only a command in progress: one not started yet
                // sees the flag when it starts; one that has ended is done.
                found = Some(if slot.phase() == ExecutorPhase::Running {
                    slot.pid
                } else {
                    0
                });
                break;
            }
            if remove_reserved(slot, run_id) {
                return Cancel::Withdrawn;
            }
        }
        match found {
            Some(pid) => pid,
            None => return Cancel::NotHeld,
        }
    };
    if pid != 0 {
        // SAFETY: kill(2) takes no pointers; the pid is the one the registry
        // holds for this run's executor, which is alive while its slot says so.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
    Cancel::Interrupted
}

/// Take `run_id` out of the slot's reserved runs; whether it was there.
pub(super) fn remove_reserved(slot: &mut Slot, run_id: i64) -> bool {
    let n = slot.reserved_len as usize;
    let Some(i) = slot.reserved[..n].iter().position(|&id| id == run_id) else {
        return false;
    };
    slot.reserved.copy_within(i + 1..n, i);
    slot.reserved_len -= 1;
    true
}

/// Executor side: was this run cancelled?
pub fn cancel_requested(r: SlotRef) -> bool {
    let reg = REGISTRY.share();
    let s = &reg.slots[r.index as usize];
    s.in_use && s.generation == r.generation && s.cancel_requested
}

/// Executor side: the run is finished and its outcome recorded; wake the
/// scheduler to harvest it. The process stays for the next run.
pub fn finish_run(r: SlotRef) {
    let home = {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        if !(slot.in_use && slot.generation == r.generation && step(slot, ExecutorEvent::FinishRun)) {
            return;
        }
        // Idle: it holds no run, of any queue.
        slot.queue_id = 0;
        slot.state = State::Idle;
        slot.since = now();
        slot.home_db
    };
    wake_scheduler(pg_sys::Oid::from(home));
}

/// Scheduler side, after the outcome is committed to the history: the
/// executor may take another run.
pub fn mark_harvested(r: SlotRef) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    // One that exited since is freed by the harvest instead.
    if slot.in_use && slot.generation == r.generation && !slot.exited() {
        let retire = slot.retire;
        if step(slot, ExecutorEvent::Harvested { retire }) {
            slot.outcome = Outcome::Nothing;
        }
    }
}

/// Scheduler side, when the pass that harvested `r` failed (its writes,
/// the outcome among them, were rolled back): the slot awaits its harvest
/// again, with what it held then (`before`, the copy the harvest read).
/// A pass that also took the executor for a new run has given it back
/// first (`abandon_handover`). Not undone if the executor moved on (exited,
/// or was handed a run): its exit or next report is harvested instead.
pub fn undo_harvest(r: SlotRef, before: &Slot) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
        return;
    }
    if !step_if_admitted(slot, ExecutorEvent::UndoHarvest) {
        return;
    }
    slot.run_id = before.run_id;
    slot.job_id = before.job_id;
    slot.timeout_ms = before.timeout_ms;
    slot.outcome = before.outcome;
    slot.cancel_requested = before.cancel_requested;
    slot.killed_for_timeout = before.killed_for_timeout;
    slot.started_at = before.started_at;
    slot.finished_at = before.finished_at;
    slot.sqlstate = before.sqlstate;
    slot.message_len = before.message_len;
    slot.message = before.message;
    slot.state = State::Idle;
}
