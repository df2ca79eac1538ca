//! What one registry slot holds: the kind and state of a pg_jobs process,
//! the run it is on, and what it hands back to its supervisor.

use pg_jobs_core::executor_phase::ExecutorPhase;

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

/// What an executor reports about its run: the core's
/// [`pg_jobs_core::run::Reported`] (`repr(u8)`, plain data in the slot).
pub use pg_jobs_core::run::Reported as Outcome;

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
    pub(super) latch: usize,
    /// Schedulers: job definitions changed; reload them all.
    pub reload_jobs: bool,
    /// Schedulers: these jobs changed (`changed_len` of them); reload just those.
    pub(super) changed_jobs: [i64; CHANGED_JOBS],
    pub(super) changed_len: u8,
    /// Schedulers: daemon definitions changed.
    pub(super) reload_daemons: bool,
    /// Schedulers: a run started waiting on others, or one they wait on
    /// ended outside the scheduler (cancelled): look at the waiting runs.
    pub(super) recheck_waiting: bool,
    /// Executors: the dynamic shared memory segment holding the command.
    pub dsm: u32,
    /// Executors: cancel the command after this long (0: never).
    pub timeout_ms: i64,
    /// Executors: the scheduler terminated it for overrunning its timeout.
    pub killed_for_timeout: bool,
    /// Executors and daemons: where the process is in its life, an
    /// [`ExecutorPhase`] stored as its `u8` (shared memory); changed only
    /// through [`ExecutorPhase::on`] (see `slots::step`).
    pub(super) phase: u8,
    pub outcome: Outcome,
    /// Executors: `jobs.cancel` asked for this run to stop.
    pub cancel_requested: bool,
    /// Executors: asked to exit (its capacity is needed for another role or database).
    pub retire: bool,
    /// Executors (warm pool): runs taken from the queue with the current
    /// one, to run next in this order (`reserved_len` of them); `jobs.run`
    /// says `starting` for them. The scheduler takes them back when the
    /// current run is slow, and requeues them when the executor is gone.
    pub(super) reserved: [i64; RESERVE_MAX],
    pub(super) reserved_len: u8,
    /// Executors: the named queue (`jobs.queue.id`) of the runs it holds —
    /// its current run and those it reserved — from the moment it is
    /// handed or claims its first until it takes runs of no queue or goes
    /// idle (0: none). What a queue's `max_concurrency` counts, with the
    /// queue's row locked (`catalog::queues`): an executor that finishes
    /// one run of a queue and takes the next holds the queue throughout.
    pub queue_id: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub sqlstate: [u8; 5],
    pub(super) message_len: u16,
    pub(super) message: [u8; MESSAGE_BYTES],
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
            recheck_waiting: false,
            dsm: 0,
            timeout_ms: 0,
            killed_for_timeout: false,
            phase: ExecutorPhase::Free as u8,
            outcome: Outcome::Nothing,
            cancel_requested: false,
            retire: false,
            reserved: [0; RESERVE_MAX],
            reserved_len: 0,
            queue_id: 0,
            started_at: 0,
            finished_at: 0,
            sqlstate: [b'0'; 5],
            message_len: 0,
            message: [0; MESSAGE_BYTES],
        }
    }
}

impl Slot {
    /// Where the process is in its life (executors and daemons; launcher
    /// and scheduler slots only pass through `Reserved` and `Starting`).
    pub fn phase(&self) -> ExecutorPhase {
        ExecutorPhase::from_u8(self.phase)
    }
    /// The process has exited; the slot waits for its supervisor (the
    /// scheduler writes an executor's outcome to the run history, or sees
    /// how a daemon ended) to free it.
    pub fn exited(&self) -> bool {
        self.phase().exited()
    }
    /// What the process reported: a failure's message (or a success's
    /// command tag).
    pub fn message(&self) -> String {
        let all = &self.message[..self.message_len as usize];
        let end = all.iter().position(|b| *b == 0).unwrap_or(all.len());
        String::from_utf8_lossy(&all[..end]).into_owned()
    }
    /// A failure's DETAIL, if it had one (kept after the message, past a NUL).
    pub fn detail(&self) -> Option<String> {
        let all = &self.message[..self.message_len as usize];
        let at = all.iter().position(|b| *b == 0)?;
        Some(String::from_utf8_lossy(&all[at + 1..]).into_owned()).filter(|d| !d.is_empty())
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
    /// Executors: the named queue of its run (0: none).
    pub queue_id: i64,
}
