//! The shared-memory registry of every pg_jobs worker, and what the launcher
//! knows about each database.
//!
//! One named LWLock (`pg_jobs registry`) guards one fixed-size struct:
//!
//! * `slots` — one entry per pg_jobs process (launcher, schedulers,
//!   executors): kind, pid, database, role, run, state, since. The view
//!   `jobs.workers` reads it.
//! * `dbs` — per database: whether it has the extension (as far as anyone
//!   has told the launcher) and whether a DROP/RENAME DATABASE is evicting
//!   its workers.
//!
//! Slot life cycle. A supervisor (launcher for schedulers, scheduler for
//! executors) *reserves* a slot (pid 0, state `starting`) and passes its
//! index and generation to the new worker, which *claims* it (sets its pid
//! and latch). On exit — normal, ERROR-to-FATAL, or SIGTERM — an
//! `on_shmem_exit` callback frees the slot and sets the supervisor's latch,
//! so supervisors learn of deaths without polling. The generation counter
//! (bumped on every free) stops a late worker from claiming a slot that was
//! reclaimed and handed to someone else. A kill -9 restarts the whole
//! cluster, which re-creates this memory from scratch.
//!
//! Everything read out of shared memory is copied before the lock is
//! released; nothing here allocates.

use pg_jobs_core::launcher::ExtPresence;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgLwLock};

/// Registry capacity. `pg_jobs.max_executors` is capped well below it.
pub const MAX_WORKERS: usize = 256;
/// Databases the launcher can track at once.
pub const MAX_DATABASES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Kind {
    #[default]
    Launcher = 1,
    Scheduler = 2,
    Executor = 3,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Launcher => "launcher",
            Kind::Scheduler => "scheduler",
            Kind::Executor => "executor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum State {
    /// Reserved by a supervisor; the process has not claimed it yet.
    #[default]
    Starting = 1,
    /// Sleeping on its latch.
    Idle = 2,
    /// Doing bookkeeping (scanning, dispatching, recording).
    Busy = 3,
    /// An executor running its command.
    Running = 4,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Idle => "idle",
            State::Busy => "busy",
            State::Running => "running",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct Slot {
    pub in_use: bool,
    pub kind: Kind,
    pub state: State,
    pub pid: i32,
    pub generation: u32,
    pub db: u32,
    pub role: u32,
    pub job_id: i64,
    pub run_id: i64,
    /// When the slot entered `state` (TimestampTz, µs since 2000-01-01).
    pub since: i64,
    /// `MyLatch` of the process holding the slot (0 while `starting`).
    /// Latches live in PGPROC, in shared memory, so the pointer is valid in
    /// every process.
    latch: usize,
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct DbEntry {
    pub in_use: bool,
    pub db: u32,
    pub ext: u8,
    pub evicting: bool,
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Registry {
    launcher_latch: usize,
    slots: [Slot; MAX_WORKERS],
    dbs: [DbEntry; MAX_DATABASES],
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            launcher_latch: 0,
            slots: [Slot::default(); MAX_WORKERS],
            dbs: [DbEntry::default(); MAX_DATABASES],
        }
    }
}

// SAFETY: plain old data, no pointers into process-local memory (latch
// pointers point into shared memory).
unsafe impl PGRXSharedMemory for Registry {}

static REGISTRY: PgLwLock<Registry> = unsafe { PgLwLock::new(c"pg_jobs registry") };

/// Called from `_PG_init` while preloading.
pub fn init() {
    pg_shmem_init!(REGISTRY);
}

fn now() -> i64 {
    unsafe { pg_sys::GetCurrentTimestamp() }
}

fn my_latch() -> usize {
    unsafe { pg_sys::MyLatch as usize }
}

fn set_latch(latch: usize) {
    if latch != 0 {
        // SAFETY: latch points at a PGPROC latch in shared memory; setting
        // the latch of a process that has exited is harmless.
        unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) }
    }
}

/// What a supervisor passes to a worker so it can find its slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRef {
    pub index: u32,
    pub generation: u32,
}

impl SlotRef {
    pub fn to_datum(self) -> pg_sys::Datum {
        pg_sys::Datum::from(((self.index as u64) << 32) | self.generation as u64)
    }
    pub fn from_datum(d: pg_sys::Datum) -> SlotRef {
        let v = d.value() as u64;
        SlotRef {
            index: (v >> 32) as u32,
            generation: v as u32,
        }
    }
}

/// Reserve a slot for a worker about to be started. `None` when the
/// registry is full.
pub fn reserve(kind: Kind, db: pg_sys::Oid, role: pg_sys::Oid, run_id: i64) -> Option<SlotRef> {
    let mut reg = REGISTRY.exclusive();
    let (index, slot) = reg.slots.iter_mut().enumerate().find(|(_, s)| !s.in_use)?;
    *slot = Slot {
        in_use: true,
        kind,
        state: State::Starting,
        pid: 0,
        generation: slot.generation,
        db: db.to_u32(),
        role: role.to_u32(),
        job_id: 0,
        run_id,
        since: now(),
        latch: 0,
    };
    Some(SlotRef {
        index: index as u32,
        generation: slot.generation,
    })
}

/// Free a slot if it still belongs to `r` (supervisor side: a reserved
/// worker that never started).
pub fn release(r: SlotRef) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if slot.in_use && slot.generation == r.generation {
        slot.in_use = false;
        slot.generation = slot.generation.wrapping_add(1);
    }
}

/// Free reserved-but-unclaimed slots of `kind` in `db` older than
/// `older_than_us` that no supervisor holds a handle for (its supervisor
/// died between reserving and starting). Returns whether any was freed.
pub fn reap_unclaimed(kind: Kind, db: pg_sys::Oid, older_than_us: i64) -> bool {
    let cutoff = now() - older_than_us;
    let mut reg = REGISTRY.exclusive();
    let mut freed = false;
    for s in reg.slots.iter_mut() {
        if s.in_use && s.kind == kind && s.db == db.to_u32() && s.pid == 0 && s.since < cutoff {
            s.in_use = false;
            s.generation = s.generation.wrapping_add(1);
            freed = true;
        }
    }
    freed
}

/// Worker side: take the slot reserved for us. Registers the exit callback
/// that frees it. `None` if it was reclaimed in the meantime (then the
/// worker must exit quietly).
pub fn claim(r: SlotRef) -> Option<Slot> {
    let copy = {
        let mut reg = REGISTRY.exclusive();
        let slot = reg.slots.get_mut(r.index as usize)?;
        if !slot.in_use || slot.generation != r.generation || slot.pid != 0 {
            return None;
        }
        slot.pid = unsafe { pg_sys::MyProcPid };
        slot.latch = my_latch();
        slot.state = State::Idle;
        slot.since = now();
        *slot
    };
    unsafe { pg_sys::on_shmem_exit(Some(on_exit), r.to_datum()) };
    Some(copy)
}

/// The launcher is a static worker: it takes a slot for itself.
pub fn register_launcher() -> Option<SlotRef> {
    let r = reserve(Kind::Launcher, pg_sys::InvalidOid, pg_sys::InvalidOid, 0)?;
    claim(r)?;
    REGISTRY.exclusive().launcher_latch = my_latch();
    Some(r)
}

/// Exit callback of every pg_jobs worker: free the slot, wake whoever
/// supervises us (the launcher for a scheduler, the scheduler of our
/// database for an executor).
#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, arg: pg_sys::Datum) {
    let r = SlotRef::from_datum(arg);
    let wake = {
        let mut reg = REGISTRY.exclusive();
        let slot = reg.slots[r.index as usize];
        if !slot.in_use || slot.generation != r.generation {
            return;
        }
        reg.slots[r.index as usize].in_use = false;
        reg.slots[r.index as usize].generation = r.generation.wrapping_add(1);
        match slot.kind {
            Kind::Launcher => {
                reg.launcher_latch = 0;
                0
            }
            Kind::Scheduler => reg.launcher_latch,
            Kind::Executor => {
                // Executors are limited cluster-wide (pg_jobs.max_executors),
                // so a freed one may be what any scheduler is waiting for.
                for s in reg.slots.iter().filter(|s| s.in_use && s.kind == Kind::Scheduler) {
                    set_latch(s.latch);
                }
                0
            }
        }
    };
    set_latch(wake);
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

/// A copy of every slot in use.
pub fn snapshot() -> Vec<Slot> {
    REGISTRY
        .share()
        .slots
        .iter()
        .filter(|s| s.in_use)
        .copied()
        .collect()
}

/// Wake the launcher (CREATE/DROP EXTENSION, DROP DATABASE, a freed slot).
pub fn wake_launcher() {
    let latch = REGISTRY.share().launcher_latch;
    set_latch(latch);
}

/// Wake the scheduler of `db`, if it has one (a submitted run committed).
pub fn wake_scheduler(db: pg_sys::Oid) {
    let latch = {
        let reg = REGISTRY.share();
        reg.slots
            .iter()
            .find(|s| s.in_use && s.kind == Kind::Scheduler && s.db == db.to_u32())
            .map_or(0, |s| s.latch)
    };
    set_latch(latch);
}

/// Send SIGTERM to every worker of `db` except ourselves; returns how many
/// slots of `db` (claimed or merely reserved) are still in use.
pub fn terminate_db_workers(db: pg_sys::Oid, kinds: &[Kind]) -> usize {
    let me = unsafe { pg_sys::MyProcPid };
    let targets: Vec<i32> = REGISTRY
        .share()
        .slots
        .iter()
        .filter(|s| s.in_use && s.db == db.to_u32() && kinds.contains(&s.kind) && s.pid != me)
        .map(|s| s.pid)
        .collect();
    for pid in &targets {
        if *pid != 0 {
            // SAFETY: plain kill(2) of a pid the registry holds for a live worker.
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
    }
    targets.len()
}

fn db_entry<'a>(dbs: &'a mut [DbEntry; MAX_DATABASES], db: u32) -> Option<&'a mut DbEntry> {
    if let Some(i) = dbs.iter().position(|e| e.in_use && e.db == db) {
        return Some(&mut dbs[i]);
    }
    let e = dbs.iter_mut().find(|e| !e.in_use)?;
    *e = DbEntry {
        in_use: true,
        db,
        ext: ext_to_u8(ExtPresence::Unknown),
        evicting: false,
    };
    Some(e)
}

fn ext_to_u8(p: ExtPresence) -> u8 {
    match p {
        ExtPresence::Unknown => 0,
        ExtPresence::Present => 1,
        ExtPresence::Absent => 2,
    }
}

fn ext_from_u8(v: u8) -> ExtPresence {
    match v {
        1 => ExtPresence::Present,
        2 => ExtPresence::Absent,
        _ => ExtPresence::Unknown,
    }
}

pub fn set_ext(db: pg_sys::Oid, p: ExtPresence) {
    let mut reg = REGISTRY.exclusive();
    if let Some(e) = db_entry(&mut reg.dbs, db.to_u32()) {
        e.ext = ext_to_u8(p);
    }
}

pub fn set_evicting(db: pg_sys::Oid, evicting: bool) {
    let mut reg = REGISTRY.exclusive();
    if let Some(e) = db_entry(&mut reg.dbs, db.to_u32()) {
        e.evicting = evicting;
    }
}

/// (presence, evicting) of `db`.
pub fn db_state(db: pg_sys::Oid) -> (ExtPresence, bool) {
    let reg = REGISTRY.share();
    reg.dbs
        .iter()
        .find(|e| e.in_use && e.db == db.to_u32())
        .map_or((ExtPresence::Unknown, false), |e| {
            (ext_from_u8(e.ext), e.evicting)
        })
}

/// Forget databases that no longer exist (the launcher's rescan).
pub fn retain_dbs(alive: &[pg_sys::Oid]) {
    let mut reg = REGISTRY.exclusive();
    for e in reg.dbs.iter_mut().filter(|e| e.in_use) {
        if !alive.iter().any(|o| o.to_u32() == e.db) && !e.evicting {
            e.in_use = false;
        }
    }
}
