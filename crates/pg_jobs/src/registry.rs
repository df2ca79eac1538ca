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
/// Daemons whose status the registry can show at once (cluster-wide).
pub const MAX_DAEMONS: usize = 256;
/// Longest last-exit message kept for a daemon.
pub const DAEMON_MESSAGE_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Kind {
    #[default]
    Launcher = 1,
    Scheduler = 2,
    Executor = 3,
    Daemon = 4,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Launcher => "launcher",
            Kind::Scheduler => "scheduler",
            Kind::Executor => "executor",
            Kind::Daemon => "daemon",
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

/// Changed jobs a scheduler is told about one by one; more (before it
/// looks) make it reload them all.
pub const CHANGED_JOBS: usize = 32;

/// Longest error message an executor can hand back; longer ones are cut.
pub const MESSAGE_BYTES: usize = 1000;
/// How many runs a pooled executor may take from the queue at once (the
/// one it starts, and the rest reserved to run next).
pub const RESERVE_MAX: usize = 16;

/// What an executor reports about its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Outcome {
    /// Nothing recorded (yet): if the executor is gone, it crashed or was killed.
    #[default]
    None = 0,
    Succeeded = 1,
    Failed = 2,
    TimedOut = 3,
    Cancelled = 4,
}

#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct Slot {
    pub in_use: bool,
    pub kind: Kind,
    pub state: State,
    pub pid: i32,
    pub generation: u32,
    /// The database the process is connected to.
    pub db: u32,
    /// Executors: the database whose scheduler supervises it and holds the
    /// run's history (differs from `db` for `database =>` jobs).
    pub home_db: u32,
    pub role: u32,
    pub job_id: i64,
    pub run_id: i64,
    /// When the slot entered `state` (TimestampTz, µs since 2000-01-01).
    pub since: i64,
    /// `MyLatch` of the process holding the slot (0 while `starting`).
    /// Latches live in PGPROC, in shared memory, so the pointer is valid in
    /// every process.
    latch: usize,
    /// Schedulers: job definitions changed; reload them all.
    pub reload_jobs: bool,
    /// Schedulers: these jobs changed (`changed_len` of them); reload just those.
    changed_jobs: [i64; CHANGED_JOBS],
    changed_len: u8,
    /// Schedulers: daemon definitions changed.
    reload_daemons: bool,
    /// Executors: the dynamic shared memory segment holding the command.
    pub dsm: u32,
    /// Executors: cancel the command after this long (0: never).
    pub timeout_ms: i64,
    /// Executors: the scheduler terminated it for overrunning its timeout.
    pub killed_for_timeout: bool,
    /// Executors: the process has exited; the slot waits for its scheduler
    /// to write the outcome to the run history and free it.
    pub exited: bool,
    pub outcome: Outcome,
    /// Executors: `jobs.cancel` asked for this run to stop.
    pub cancel_requested: bool,
    /// Executors (warm pool): the run is done and its outcome waits in this
    /// slot for the scheduler; the process lives on.
    pub outcome_ready: bool,
    /// Executors: idle, outcome harvested: may be handed another run of the
    /// same database and role.
    pub reusable: bool,
    /// Executors: the scheduler handed over a new run (`run_id`, `dsm`).
    pub assigned: bool,
    /// Executors (warm pool): claimed for `run_id` by a scheduler pass that
    /// has not handed it over yet. If that scheduler dies first, the run
    /// was never this executor's: its exit says nothing about the run, and
    /// it must not keep the run looking alive.
    pub pending_handover: bool,
    /// Executors: asked to exit (its capacity is needed for another role or database).
    pub retire: bool,
    /// Executors (warm pool): runs taken from the queue with the current
    /// one, to run next in this order (`reserved_len` of them); `jobs.run`
    /// says `starting` for them. The scheduler takes them back when the
    /// current run is slow, and requeues them when the executor is gone.
    reserved: [i64; RESERVE_MAX],
    reserved_len: u8,
    pub started_at: i64,
    pub finished_at: i64,
    pub sqlstate: [u8; 5],
    message_len: u16,
    message: [u8; MESSAGE_BYTES],
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            in_use: false,
            kind: Kind::default(),
            state: State::default(),
            pid: 0,
            generation: 0,
            db: 0,
            home_db: 0,
            role: 0,
            job_id: 0,
            run_id: 0,
            since: 0,
            latch: 0,
            reload_jobs: false,
            changed_jobs: [0; CHANGED_JOBS],
            changed_len: 0,
            reload_daemons: false,
            dsm: 0,
            timeout_ms: 0,
            killed_for_timeout: false,
            exited: false,
            outcome: Outcome::None,
            cancel_requested: false,
            outcome_ready: false,
            reusable: false,
            assigned: false,
            pending_handover: false,
            retire: false,
            reserved: [0; RESERVE_MAX],
            reserved_len: 0,
            started_at: 0,
            finished_at: 0,
            sqlstate: [b'0'; 5],
            message_len: 0,
            message: [0; MESSAGE_BYTES],
        }
    }
}

impl Slot {
    pub fn message(&self) -> String {
        String::from_utf8_lossy(&self.message[..self.message_len as usize]).into_owned()
    }
    pub fn sqlstate(&self) -> String {
        String::from_utf8_lossy(&self.sqlstate).into_owned()
    }
    /// Executors: the runs reserved to run after the current one.
    pub fn reserved(&self) -> &[i64] {
        &self.reserved[..self.reserved_len as usize]
    }
}

/// What a supervisor fills in when it reserves a slot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reservation {
    pub db: u32,
    pub home_db: u32,
    pub role: u32,
    pub job_id: i64,
    pub run_id: i64,
    pub timeout_ms: i64,
}

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct DbEntry {
    pub in_use: bool,
    pub db: u32,
    pub ext: u8,
    pub evicting: bool,
    /// `@reboot` jobs of this database ran since the server started.
    pub rebooted: bool,
    /// Runs its pooled executors took from the queue themselves (the
    /// scheduler vacuums the queue after a burst of them).
    pub claims: u64,
}

#[derive(Clone, Copy)]
#[repr(C)]
pub struct Registry {
    /// Broadcast whenever runs reach a terminal state (`jobs.wait` sleeps on it).
    runs_finished: pg_sys::ConditionVariable,
    launcher_latch: usize,
    slots: [Slot; MAX_WORKERS],
    dbs: [DbEntry; MAX_DATABASES],
    daemons: [DaemonEntry; MAX_DAEMONS],
}

impl Default for Registry {
    fn default() -> Self {
        // What ConditionVariableInit does: an unlocked spinlock and an empty
        // wait list (INVALID_PGPROCNO at both ends).
        let empty = pg_sys::proclist_head {
            head: i32::MAX,
            tail: i32::MAX,
        };
        Registry {
            runs_finished: pg_sys::ConditionVariable {
                mutex: 0,
                wakeup: empty,
            },
            launcher_latch: 0,
            slots: [Slot::default(); MAX_WORKERS],
            dbs: [DbEntry::default(); MAX_DATABASES],
            daemons: [DaemonEntry::default(); MAX_DAEMONS],
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
pub fn reserve(kind: Kind, r: Reservation) -> Option<SlotRef> {
    let mut reg = REGISTRY.exclusive();
    let (index, slot) = reg.slots.iter_mut().enumerate().find(|(_, s)| !s.in_use)?;
    let generation = slot.generation;
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
        since: now(),
        ..Slot::default()
    };
    Some(SlotRef {
        index: index as u32,
        generation,
    })
}

/// Free a slot if it still belongs to `r` (supervisor side: a reserved
/// worker that never started).
pub fn release(r: SlotRef) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if slot.in_use && slot.generation == r.generation {
        free(slot);
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
        let owner_db = if matches!(kind, Kind::Executor | Kind::Daemon) {
            s.home_db
        } else {
            s.db
        };
        if s.in_use && s.kind == kind && owner_db == db.to_u32() && s.pid == 0 && s.since < cutoff {
            free(s);
            freed = true;
        }
    }
    freed
}

/// Free a reserved slot whose process never claimed it (its worker is known
/// to be gone); a claimed slot is left alone: it carries an outcome.
pub fn release_unclaimed(r: SlotRef) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if slot.in_use && slot.generation == r.generation && slot.pid == 0 {
        free(slot);
    }
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
                s.exited = true;
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
                s.exited = true;
                s.latch = 0;
                s.finished_at = now();
                let home = s.home_db;
                reg.slots
                    .iter()
                    .find(|s| s.in_use && s.kind == Kind::Scheduler && s.db == home)
                    .map_or(0, |s| s.latch)
            }
        }
    };
    set_latch(wake);
}

fn free(slot: &mut Slot) {
    slot.in_use = false;
    slot.generation = slot.generation.wrapping_add(1);
}

/// Executor side: the command started. The scheduler is not woken for
/// this: it says `running` in `jobs.run` on its next pass, at most
/// `RUNNING_VISIBLE_WITHIN_MS` later, so a short run costs it no extra pass.
/// Returns the latch of the scheduler of the run's history database (0 if
/// none), for an executor to wake it when the run turns out not to be short.
pub fn set_running(r: SlotRef) -> usize {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
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
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
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

/// Scheduler side: the executors it supervises (live or exited), with their slot refs.
pub fn executors_of(home_db: pg_sys::Oid) -> Vec<(SlotRef, Slot)> {
    workers_of(Kind::Executor, home_db)
}

/// Scheduler side: the daemon processes it supervises (live or exited).
pub fn daemons_of(home_db: pg_sys::Oid) -> Vec<(SlotRef, Slot)> {
    workers_of(Kind::Daemon, home_db)
}

fn workers_of(kind: Kind, home_db: pg_sys::Oid) -> Vec<(SlotRef, Slot)> {
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

/// Scheduler side: hand the executor its command before starting it.
pub fn set_dsm(r: SlotRef, handle: u32) {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if slot.in_use && slot.generation == r.generation {
        slot.dsm = handle;
    }
}

/// Scheduler side: terminate an executor that overran its timeout.
pub fn kill_for_timeout(r: SlotRef) {
    let pid = {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        if !(slot.in_use && slot.generation == r.generation) || slot.exited || slot.pid == 0 {
            return;
        }
        slot.killed_for_timeout = true;
        slot.pid
    };
    // SAFETY: kill(2) of a live executor's pid, as pg_terminate_backend would.
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
}

/// Committed changes to `db`'s definitions: tell its scheduler what to
/// reload, and wake it. A change made while no scheduler runs needs no
/// note: a starting scheduler loads everything.
pub fn request_reload(db: pg_sys::Oid, all_jobs: bool, jobs: &[i64], daemons: bool) {
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
                s.latch
            }
            None => 0,
        }
    };
    set_latch(latch);
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
    }
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
        .filter(|s| s.in_use && !s.exited)
        .copied()
        .collect()
}

/// How many executors are busy (starting, running, or reporting),
/// cluster-wide. Idle pooled executors do not count: they hold no work and
/// are asked to exit when their worker slot is needed. Exited ones awaiting
/// harvest hold no process either.
pub fn executor_count() -> usize {
    REGISTRY
        .share()
        .slots
        .iter()
        .filter(|s| s.in_use && s.kind == Kind::Executor && !s.exited && !s.reusable)
        .count()
}

/// Wake the launcher (CREATE/DROP EXTENSION, DROP DATABASE, a freed slot).
pub fn wake_launcher() {
    let latch = REGISTRY.share().launcher_latch;
    set_latch(latch);
}

/// Wake the scheduler of `db`, if it has one (a submitted run committed).
pub fn wake_scheduler(db: pg_sys::Oid) {
    let latch = scheduler_latch(&REGISTRY.share(), db.to_u32());
    set_latch(latch);
}

/// The latch of the scheduler of `db` (0 if it has none).
fn scheduler_latch(reg: &Registry, db: u32) -> usize {
    reg.slots
        .iter()
        .find(|s| s.in_use && s.kind == Kind::Scheduler && s.db == db)
        .map_or(0, |s| s.latch)
}

/// Send SIGTERM to the executors running runs whose history is in `db`
/// (wherever they run) and forget those already exited: the extension was
/// dropped there, so nobody will record them.
pub fn terminate_runs_of(db: pg_sys::Oid) {
    let targets: Vec<i32> = {
        let mut reg = REGISTRY.exclusive();
        let mut pids = Vec::new();
        for s in reg
            .slots
            .iter_mut()
            .filter(|s| s.in_use && s.kind == Kind::Executor && s.home_db == db.to_u32())
        {
            if s.exited {
                free(s);
            } else if s.pid != 0 {
                s.retire = true;
                s.reusable = false;
                pids.push(s.pid);
            }
        }
        pids
    };
    for pid in targets {
        // SAFETY: plain kill(2) of a pid the registry holds for a live executor.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Send SIGTERM to every worker connected to `db` except ourselves, and
/// forget exited executors whose history lives in `db` (nobody is left to
/// harvest them). Returns how many processes of `db` (claimed or merely
/// reserved) are still there.
pub fn terminate_db_workers(db: pg_sys::Oid, kinds: &[Kind]) -> usize {
    let me = unsafe { pg_sys::MyProcPid };
    let targets: Vec<i32> = {
        let mut reg = REGISTRY.exclusive();
        for s in reg
            .slots
            .iter_mut()
            .filter(|s| s.in_use && s.exited && s.home_db == db.to_u32())
        {
            free(s);
        }
        reg.slots
            .iter()
            .filter(|s| {
                // A daemon or run defined in `db` goes with it wherever it
                // runs: nobody would supervise it or record its outcome.
                let of_db = s.db == db.to_u32()
                    || (matches!(s.kind, Kind::Daemon | Kind::Executor) && s.home_db == db.to_u32());
                s.in_use && !s.exited && of_db && kinds.contains(&s.kind) && s.pid != me
            })
            .map(|s| s.pid)
            .collect()
    };
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
        rebooted: false,
        claims: 0,
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

/// Whether `@reboot` jobs of `db` are still to run in this server life;
/// the first caller gets `true`, later ones (a restarted scheduler) `false`.
pub fn take_reboot(db: pg_sys::Oid) -> bool {
    let mut reg = REGISTRY.exclusive();
    match db_entry(&mut reg.dbs, db.to_u32()) {
        Some(e) => !std::mem::replace(&mut e.rebooted, true),
        None => false,
    }
}

/// The condition variable `jobs.wait` sleeps on; it lives in shared memory
/// for the life of the server, so the pointer stays valid after the guard.
pub fn runs_finished_cv() -> *mut pg_sys::ConditionVariable {
    let mut reg = REGISTRY.exclusive();
    &raw mut reg.runs_finished
}

/// Wake every `jobs.wait`: some runs just reached a terminal state.
pub fn broadcast_runs_finished() {
    unsafe { pg_sys::ConditionVariableBroadcast(runs_finished_cv()) };
}

/// What [`cancel_run`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// No executor holds the run.
    NotHeld,
    /// Its executor has exited; its outcome is for the scheduler to write.
    Exited,
    /// Its executor is running it: flagged and interrupted.
    Interrupted,
    /// It was reserved by an executor and had not started: taken back (the
    /// caller marks it cancelled).
    Withdrawn,
}

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
            if slot.exited {
                if slot.run_id == run_id && !slot.pending_handover {
                    return Cancel::Exited;
                }
                continue;
            }
            if slot.run_id == run_id {
                slot.cancel_requested = true;
                // Interrupt only a command in progress: one not started yet
                // sees the flag when it starts; one that has ended is done.
                found = Some(if slot.state == State::Running { slot.pid } else { 0 });
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
        // SAFETY: kill(2) of the pid the registry holds for this run's executor.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
    Cancel::Interrupted
}

/// Take `run_id` out of the slot's reserved runs; whether it was there.
fn remove_reserved(slot: &mut Slot, run_id: i64) -> bool {
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
        if !(slot.in_use && slot.generation == r.generation) {
            return;
        }
        slot.outcome_ready = true;
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
    if slot.in_use && slot.generation == r.generation && !slot.exited {
        slot.outcome_ready = false;
        slot.outcome = Outcome::None;
        slot.reusable = !slot.retire;
    }
}

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
                && !s.exited
                && !s.retire
                && s.home_db == home_db.to_u32()
                && s.db == db
                && s.role == role
                && (s.reusable || s.run_id == 0)
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
        slot.state = State::Idle;
        slot.since = now();
        slot.outcome_ready = false;
        slot.reusable = !slot.retire;
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
) -> Option<SlotRef> {
    let mut reg = REGISTRY.exclusive();
    let (i, slot) = reg.slots.iter_mut().enumerate().find(|(_, s)| {
        s.in_use
            && s.kind == Kind::Executor
            && s.reusable
            && !s.exited
            && !s.retire
            && s.home_db == home_db.to_u32()
            && s.db == db
            && s.role == role
    })?;
    assign_run(slot, run_id, job_id, timeout_ms);
    slot.pending_handover = true;
    Some(SlotRef {
        index: i as u32,
        generation: slot.generation,
    })
}

/// Scheduler side: give a claimed idle executor its command and wake it.
pub fn hand_over(r: SlotRef, dsm: u32) -> bool {
    let latch = {
        let mut reg = REGISTRY.exclusive();
        let slot = &mut reg.slots[r.index as usize];
        if !(slot.in_use && slot.generation == r.generation) || slot.exited {
            return false;
        }
        slot.dsm = dsm;
        slot.assigned = true;
        slot.pending_handover = false;
        slot.latch
    };
    set_latch(latch);
    true
}

/// Executor side: `Some(dsm)` if a new run was handed over; if `retiring`
/// and none was, the slot stops being offered (atomically, so no run is
/// handed to an executor on its way out).
pub fn take_assignment(r: SlotRef, retiring: bool) -> Option<u32> {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) {
        return None;
    }
    if slot.assigned {
        slot.assigned = false;
        return Some(slot.dsm);
    }
    if retiring || slot.retire {
        slot.reusable = false;
        slot.retire = true;
    }
    None
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
                    && s.pending_handover
                    && !s.exited
            })
            .map(|s| {
                s.retire = true;
                s.reusable = false;
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
/// (claim nothing) when the executor was asked to retire.
pub fn self_claim(r: SlotRef, run_id: i64, job_id: i64, timeout_ms: i64, more: &[i64]) -> bool {
    let mut reg = REGISTRY.exclusive();
    let slot = &mut reg.slots[r.index as usize];
    if !(slot.in_use && slot.generation == r.generation) || slot.retire || more.len() >= RESERVE_MAX {
        return false;
    }
    assign_run(slot, run_id, job_id, timeout_ms);
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
    if !(slot.in_use && slot.generation == r.generation) || !remove_reserved(slot, run_id) {
        return false;
    }
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
            && !s.exited
            && s.state == State::Running
            && now - s.since > running_us
    }) {
        ids.extend_from_slice(slot.reserved());
        slot.reserved_len = 0;
    }
    ids
}

/// A pooled executor's slot takes on run `run_id`: everything about the
/// previous run (its outcome, flags, times, message) is cleared.
fn assign_run(slot: &mut Slot, run_id: i64, job_id: i64, timeout_ms: i64) {
    slot.run_id = run_id;
    slot.job_id = job_id;
    slot.timeout_ms = timeout_ms;
    slot.outcome = Outcome::None;
    slot.outcome_ready = false;
    slot.reusable = false;
    slot.pending_handover = false;
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

/// Ask one idle pooled executor to exit, to free its worker slot. Returns
/// whether there was one.
pub fn retire_one_idle() -> bool {
    let latch = {
        let mut reg = REGISTRY.exclusive();
        let Some(slot) = reg
            .slots
            .iter_mut()
            .find(|s| s.in_use && s.kind == Kind::Executor && s.reusable && !s.exited)
        else {
            return false;
        };
        slot.reusable = false;
        slot.retire = true;
        slot.latch
    };
    set_latch(latch);
    true
}

/// A copy of our own slot.
pub fn slot(r: SlotRef) -> Option<Slot> {
    let reg = REGISTRY.share();
    let s = reg.slots[r.index as usize];
    (s.in_use && s.generation == r.generation).then_some(s)
}

/// What a scheduler shows about one of its daemons (`jobs.daemon_status`).
/// Written only by the daemon's scheduler; it outlives the daemon's process
/// (a daemon waiting to restart has none) and its scheduler's (a restarted
/// scheduler picks up the restart count).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct DaemonEntry {
    pub in_use: bool,
    /// The database of the scheduler that supervises it (where it is defined).
    pub home_db: u32,
    pub daemon_id: i64,
    /// The daemon's owner: only its members (and superusers) see the entry.
    pub owner: u32,
    /// A `pg_jobs_core::daemon::DaemonState`.
    pub state: u8,
    pub pid: i32,
    pub since: i64,
    pub restarts: i64,
    /// 0: none yet; 1 clean, 2 error, 3 crash.
    pub last_exit: u8,
    pub last_exit_at: i64,
    pub sqlstate: [u8; 5],
    message_len: u16,
    message: [u8; DAEMON_MESSAGE_BYTES],
    /// When it restarts (TimestampTz; 0: not waiting).
    pub next_start: i64,
}

impl Default for DaemonEntry {
    fn default() -> Self {
        DaemonEntry {
            in_use: false,
            home_db: 0,
            daemon_id: 0,
            owner: 0,
            state: 0,
            pid: 0,
            since: 0,
            restarts: 0,
            last_exit: 0,
            last_exit_at: 0,
            sqlstate: [b'0'; 5],
            message_len: 0,
            message: [0; DAEMON_MESSAGE_BYTES],
            next_start: 0,
        }
    }
}

impl DaemonEntry {
    pub fn message(&self) -> String {
        String::from_utf8_lossy(&self.message[..self.message_len as usize]).into_owned()
    }
    pub fn set_message(&mut self, message: &str) {
        let mut end = message.len().min(DAEMON_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self.message[..end].copy_from_slice(&message.as_bytes()[..end]);
        self.message_len = end as u16;
    }
    pub fn sqlstate(&self) -> String {
        String::from_utf8_lossy(&self.sqlstate).into_owned()
    }
    pub fn set_sqlstate(&mut self, code: &str) {
        if code.len() == 5 {
            self.sqlstate.copy_from_slice(code.as_bytes());
        }
    }
}

/// Send `signal` to the live process holding `r` (a daemon being stopped).
pub fn signal(r: SlotRef, signal: i32) -> bool {
    let pid = {
        let reg = REGISTRY.share();
        let s = &reg.slots[r.index as usize];
        if !(s.in_use && s.generation == r.generation) || s.exited || s.pid == 0 {
            return false;
        }
        s.pid
    };
    // SAFETY: kill(2) of the pid the registry holds for a live pg_jobs worker.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// Scheduler side: the daemon status entries of `home_db`.
pub fn daemon_entries(home_db: pg_sys::Oid) -> Vec<DaemonEntry> {
    let reg = REGISTRY.share();
    reg.daemons
        .iter()
        .filter(|e| e.in_use && e.home_db == home_db.to_u32())
        .copied()
        .collect()
}

/// Every daemon status entry (`jobs.daemon_status`).
pub fn all_daemon_entries() -> Vec<DaemonEntry> {
    let reg = REGISTRY.share();
    reg.daemons.iter().filter(|e| e.in_use).copied().collect()
}

/// Scheduler side: publish the status of `home_db`'s daemons, replacing
/// what it published before. Returns false if the table is full (daemons
/// beyond it still run; they are just not shown).
pub fn publish_daemons(home_db: pg_sys::Oid, entries: &[DaemonEntry]) -> bool {
    let mut reg = REGISTRY.exclusive();
    let home = home_db.to_u32();
    for e in reg.daemons.iter_mut().filter(|e| e.in_use && e.home_db == home) {
        e.in_use = false;
    }
    let mut free = reg.daemons.iter_mut().filter(|e| !e.in_use);
    for entry in entries {
        let Some(e) = free.next() else { return false };
        *e = DaemonEntry {
            in_use: true,
            home_db: home,
            ..*entry
        };
    }
    true
}

/// The live process of daemon `daemon_id` of `home_db`: (pid, started_at).
pub fn daemon_process(home_db: u32, daemon_id: i64) -> Option<(i32, i64)> {
    let reg = REGISTRY.share();
    reg.slots
        .iter()
        .find(|s| {
            s.in_use
                && s.kind == Kind::Daemon
                && s.home_db == home_db
                && s.job_id == daemon_id
                && !s.exited
                && s.pid != 0
        })
        .map(|s| (s.pid, s.started_at))
}

/// Set the latch of every scheduler (the server was promoted).
pub fn wake_all_schedulers() {
    let latches: Vec<usize> = {
        let reg = REGISTRY.share();
        reg.slots
            .iter()
            .filter(|s| s.in_use && s.kind == Kind::Scheduler)
            .map(|s| s.latch)
            .collect()
    };
    for l in latches {
        set_latch(l);
    }
}
