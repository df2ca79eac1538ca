//! A slot's life: a supervisor reserves it, the worker claims it, the exit
//! callback frees it (or keeps it, marked exited, for the supervisor to
//! harvest). Written by supervisors and by the worker holding the slot.

use super::*;
use pg_jobs_core::executor_phase::{ExecutorEvent, ExecutorPhase};

/// Move `slot` on by `event`, as the phase model allows
/// ([`ExecutorPhase::on`]). An event the model does not admit is logged and
/// leaves the slot as it was: a worker is never stopped for it.
pub(super) fn step(slot: &mut Slot, event: ExecutorEvent) -> bool {
    match slot.phase().on(event) {
        Ok(next) => {
            slot.phase = next as u8;
            true
        }
        Err(e) => {
            warning!(
                "pg_jobs: {} slot of pid {} (run {}): {e}; left as it was",
                slot.kind.as_str(),
                slot.pid,
                slot.run_id
            );
            false
        }
    }
}

/// Apply `event` if the phase model admits it now; `false` (the slot as
/// it was, nothing logged) if not: for races the caller handles.
pub(super) fn step_if_admitted(slot: &mut Slot, event: ExecutorEvent) -> bool {
    admits(slot, event) && step(slot, event)
}

/// Whether the phase model admits `event` for `slot` now (for callers that
/// handle an expected race themselves instead of logging it).
pub(super) fn admits(slot: &Slot, event: ExecutorEvent) -> bool {
    slot.phase().on(event).is_ok()
}

/// Reserve a slot for a worker about to be started. `None` when the
/// registry is full.
pub fn reserve(kind: Kind, r: Reservation) -> Option<SlotRef> {
    reserve_in(&mut REGISTRY.exclusive(), kind, r)
}

/// Why [`reserve_daemon`] reserved nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoDaemonSlot {
    /// `cap` (`pg_jobs.max_daemons`) daemon processes run or are starting.
    AtCap,
    RegistryFull,
}

/// Daemon processes running or starting, cluster-wide (an exited one
/// waiting for its scheduler to harvest it holds no process).
pub fn daemon_processes() -> usize {
    count_daemon_processes(&REGISTRY.share())
}

fn count_daemon_processes(reg: &Registry) -> usize {
    reg.slots
        .iter()
        .filter(|s| s.in_use && s.kind == Kind::Daemon && !s.exited())
        .count()
}

/// Reserve a slot for a daemon process about to be started, if fewer than
/// `cap` run or are starting cluster-wide: counted and reserved under one
/// lock, so schedulers of several databases never start more than `cap`
/// between them.
pub fn reserve_daemon(r: Reservation, cap: usize) -> Result<SlotRef, NoDaemonSlot> {
    let mut reg = REGISTRY.exclusive();
    if count_daemon_processes(&reg) >= cap {
        return Err(NoDaemonSlot::AtCap);
    }
    reserve_in(&mut reg, Kind::Daemon, r).ok_or(NoDaemonSlot::RegistryFull)
}

fn reserve_in(reg: &mut Registry, kind: Kind, r: Reservation) -> Option<SlotRef> {
    let (index, slot) = reg.slots.iter_mut().enumerate().find(|(_, s)| !s.in_use)?;
    let generation = slot.generation;
    // An executor reserved with no run is started ahead of a due instant.
    let event = if kind == Kind::Executor && r.run_id == 0 {
        ExecutorEvent::ReserveAhead
    } else {
        ExecutorEvent::Reserve
    };
    *slot = Slot {
        in_use: true,
        kind,
        state: State::Starting,
        generation,
        db: r.db,
        home_db: r.home_db,
        role: r.role,
        job_id: r.job_id,
        run_id: r.run_id,
        timeout_ms: r.timeout_ms,
        queue_id: r.queue_id,
        since: now(),
        ..Slot::default()
    };
    step(slot, event);
    Some(SlotRef {
        index: index as u32,
        generation,
    })
}

/// Free a slot if it still belongs to `r` (supervisor side): a reserved
/// worker that never started (`Release`), or an exited one whose end is
/// recorded (`Free`). A live process's slot is not freed (logged).
pub fn release(r: SlotRef) {
    let unstarted_daemon = {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        if !(slot.in_use && slot.generation == r.generation) {
            return;
        }
        let event = if slot.exited() {
            ExecutorEvent::Free
        } else {
            ExecutorEvent::Release
        };
        let unstarted_daemon = slot.kind == Kind::Daemon && event == ExecutorEvent::Release;
        if step(slot, event) {
            free(slot);
        }
        unstarted_daemon
    };
    if unstarted_daemon {
        // It counted against pg_jobs.max_daemons: a daemon may wait for it.
        wake_all_schedulers();
    }
}

/// Free reserved-but-unclaimed slots of `kind` in `db` older than
/// `older_than_us` that no supervisor holds a handle for (its supervisor
/// died between reserving and starting). Returns whether any was freed.
pub fn reap_unclaimed(kind: Kind, db: pg_sys::Oid, older_than_us: i64) -> bool {
    let freed = reap_unclaimed_locked(kind, db, older_than_us);
    if freed && kind == Kind::Daemon {
        // They counted against pg_jobs.max_daemons: a daemon may wait for them.
        wake_all_schedulers();
    }
    freed
}

fn reap_unclaimed_locked(kind: Kind, db: pg_sys::Oid, older_than_us: i64) -> bool {
    let cutoff = now() - older_than_us;
    let mut reg = REGISTRY.exclusive();
    let mut freed = false;
    for s in reg.slots.iter_mut() {
        let owner_db = if matches!(kind, Kind::Executor | Kind::Daemon) {
            s.home_db
        } else {
            s.db
        };
        if s.in_use
            && s.kind == kind
            && owner_db == db.to_u32()
            && s.phase().unclaimed()
            && s.since < cutoff
            && step(s, ExecutorEvent::Release)
        {
            free(s);
            freed = true;
        }
    }
    freed
}

/// Free a reserved slot whose process never claimed it (its worker is known
/// to be gone); a claimed slot is left alone: it carries an outcome.
pub fn release_unclaimed(r: SlotRef) {
    let daemon = {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        let freed = slot.in_use
            && slot.generation == r.generation
            && slot.phase().unclaimed()
            && step(slot, ExecutorEvent::Release);
        let daemon = freed && slot.kind == Kind::Daemon;
        if freed {
            free(slot);
        }
        daemon
    };
    if daemon {
        // It counted against pg_jobs.max_daemons: a daemon may wait for it.
        wake_all_schedulers();
    }
}

/// Worker side: take the slot reserved for us. Registers the exit callback
/// that frees it. `None` if it was reclaimed in the meantime (then the
/// worker must exit quietly).
pub fn claim(r: SlotRef) -> Option<Slot> {
    let copy = {
        let mut reg = REGISTRY.exclusive();
        let slot = reg.slots.get_mut(r.index as usize)?;
        // Claimed already, or reclaimed: not ours (an expected race).
        if !slot.in_use || slot.generation != r.generation || !admits(slot, ExecutorEvent::Claim) {
            return None;
        }
        step(slot, ExecutorEvent::Claim);
        // SAFETY: MyProcPid is a plain global set at process start.
        slot.pid = unsafe { pg_sys::MyProcPid };
        slot.latch = my_latch();
        slot.state = State::Idle;
        slot.since = now();
        *slot
    };
    // SAFETY: registering a callback of the right signature in our own
    // process; its argument is a plain Datum (the slot reference).
    unsafe { pg_sys::on_shmem_exit(Some(on_exit), r.to_datum()) };
    Some(copy)
}

/// The launcher is a static worker: it takes a slot for itself.
pub fn register_launcher() -> Option<SlotRef> {
    let r = reserve(Kind::Launcher, Reservation::default())?;
    claim(r)?;
    REGISTRY.exclusive().launcher_latch = my_latch();
    Some(r)
}

/// Exit callback of every pg_jobs worker. Launcher and scheduler slots are
/// freed and the supervisor woken. An executor's slot is kept, marked
/// `exited`, for its scheduler to harvest: the outcome it recorded (or its
/// absence, which means it crashed or was killed) must reach the run history
/// that lives in the scheduler's database.
///
/// # Safety
///
/// Only PostgreSQL calls this, at process exit, as registered by [`claim`]
/// with `arg` a [`SlotRef`] datum; the shared memory it touches is still
/// attached then (`on_shmem_exit` callbacks run before it is detached).
#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, arg: pg_sys::Datum) {
    let r = SlotRef::from_datum(arg);
    let wake = {
        let mut reg = REGISTRY.exclusive();
        let slot = reg.slots[r.index as usize];
        if !slot.in_use || slot.generation != r.generation {
            return;
        }
        match slot.kind {
            Kind::Launcher => {
                free(&mut reg.slots[r.index as usize]);
                reg.launcher_latch = 0;
                0
            }
            Kind::Scheduler => {
                free(&mut reg.slots[r.index as usize]);
                reg.launcher_latch
            }
            Kind::Executor => {
                let s = &mut reg.slots[r.index as usize];
                step(s, ExecutorEvent::Exit);
                s.latch = 0;
                if s.finished_at == 0 {
                    s.finished_at = now();
                }
                // Executors are limited cluster-wide (pg_jobs.max_executors),
                // so a freed one may be what any scheduler is waiting for.
                for s in reg.slots.iter().filter(|s| s.in_use && s.kind == Kind::Scheduler) {
                    set_latch(s.latch);
                }
                0
            }
            Kind::Daemon => {
                // Kept, like an executor's, for its scheduler to see how it ended.
                let s = &mut reg.slots[r.index as usize];
                step(s, ExecutorEvent::Exit);
                s.latch = 0;
                s.finished_at = now();
                // Its scheduler harvests it; and daemons are limited
                // cluster-wide (pg_jobs.max_daemons), so one of any database
                // may be waiting for the process slot it leaves.
                for s in reg.slots.iter().filter(|s| s.in_use && s.kind == Kind::Scheduler) {
                    set_latch(s.latch);
                }
                0
            }
        }
    };
    set_latch(wake);
}

/// The slot is no longer in use (its phase is `Free`: callers have moved
/// an executor's or daemon's slot there through the model; launcher and
/// scheduler slots are simply dropped at their exit).
pub(super) fn free(slot: &mut Slot) {
    slot.in_use = false;
    slot.phase = ExecutorPhase::Free as u8;
    slot.generation = slot.generation.wrapping_add(1);
}

/// Free an exited executor's or daemon's slot (`Free`), as nobody is left
/// to harvest it.
pub(super) fn free_exited(slot: &mut Slot) {
    if step(slot, ExecutorEvent::Free) {
        free(slot);
    }
}

/// Scheduler side: the executors it supervises (live or exited), with their slot refs.
pub fn executors_of(home_db: pg_sys::Oid) -> Vec<(SlotRef, Slot)> {
    workers_of(Kind::Executor, home_db)
}

/// Scheduler side: the daemon processes it supervises (live or exited).
pub fn daemons_of(home_db: pg_sys::Oid) -> Vec<(SlotRef, Slot)> {
    workers_of(Kind::Daemon, home_db)
}

pub(super) fn workers_of(kind: Kind, home_db: pg_sys::Oid) -> Vec<(SlotRef, Slot)> {
    let reg = REGISTRY.share();
    reg.slots
        .iter()
        .enumerate()
        .filter(|(_, s)| s.in_use && s.kind == kind && s.home_db == home_db.to_u32())
        .map(|(i, s)| {
            (
                SlotRef {
                    index: i as u32,
                    generation: s.generation,
                },
                *s,
            )
        })
        .collect()
}

/// Update our own slot's state (and the run it works on).
pub fn set_state(r: SlotRef, state: State, run_id: Option<i64>) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if slot.in_use && slot.generation == r.generation && slot.state != state {
        slot.state = state;
        slot.since = now();
    }
    if let Some(run) = run_id {
        slot.run_id = run;
    }
}

/// A copy of every slot held by a live (or starting) process.
pub fn snapshot() -> Vec<Slot> {
    REGISTRY
        .share()
        .slots
        .iter()
        .filter(|s| s.in_use && !s.exited())
        .copied()
        .collect()
}

/// Busy executors (starting, running, or reporting) by role,
/// cluster-wide, and how many of them run work of database `home_db`: what
/// `pg_jobs.max_executors` and the per-role and per-database caps compare
/// with. Idle pooled executors do not count: they hold no work and are
/// asked to exit when their worker slot is needed. Exited ones awaiting
/// harvest hold no process either.
pub fn executors_busy_by_role(home_db: pg_sys::Oid) -> (std::collections::HashMap<u32, usize>, usize) {
    let reg = REGISTRY.share();
    let mut by_role = std::collections::HashMap::new();
    let mut of_db = 0;
    for s in reg
        .slots
        .iter()
        .filter(|s| s.in_use && s.kind == Kind::Executor && s.phase().counts_against_capacity())
    {
        *by_role.entry(s.role).or_insert(0) += 1;
        if s.home_db == home_db.to_u32() {
            of_db += 1;
        }
    }
    (by_role, of_db)
}

/// A copy of our own slot.
pub fn slot(r: SlotRef) -> Option<Slot> {
    let reg = REGISTRY.share();
    let s = reg.slots[r.index as usize];
    (s.in_use && s.generation == r.generation).then_some(s)
}

/// Send `signal` to the live process holding `r` (a daemon being stopped).
pub fn signal(r: SlotRef, signal: i32) -> bool {
    let pid = {
        let reg = REGISTRY.share();
        let s = &reg.slots[r.index as usize];
        if !(s.in_use && s.generation == r.generation && s.phase().has_process()) {
            return false;
        }
        s.pid
    };
    // SAFETY: kill(2) takes no pointers; the pid is one the registry holds
    // for a live, claimed pg_jobs worker (checked under the lock above). It
    // may exit between that read and the kill, the race pg_signal_backend
    // accepts as well.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// How many executors of database `home_db` hold runs of named queue
/// `queue_id` (see `Slot::queue_id`), `except` the caller's own slot.
pub fn executors_holding_queue(home_db: pg_sys::Oid, queue_id: i64, except: Option<SlotRef>) -> usize {
    let reg = REGISTRY.share();
    reg.slots
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            s.in_use
                && s.kind == Kind::Executor
                && s.home_db == home_db.to_u32()
                && s.queue_id == queue_id
                && except.is_none_or(|me| me.index as usize != *i)
        })
        .count()
}
