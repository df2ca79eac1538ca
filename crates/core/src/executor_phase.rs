//! The life of an executor's registry slot, as one enum.
//!
//! In pg_jobs 0.3 the slot's phase is spread over eight booleans (`exited`,
//! `outcome_ready`, `reusable`, `assigned`, `pending_handover`, `retire`,
//! `cancel_requested`, `killed_for_timeout`) plus `state` and `pid == 0`,
//! changed by some twenty registry functions. Only some combinations mean
//! anything; [`ExecutorPhase::on`] names them and the events between them.
//! The old booleans are derived from the phase ([`ExecutorPhase::exited`]
//! and its siblings), so the shell can be rewired one reader at a time.
//!
//! ```text
//! cold start  Free ─reserve→ Reserved ─claim→ Starting ─start_command→ Running
//!             Running ─record_outcome→ Finished
//! next run    Finished ─claim_next→ Starting   (its run was recorded in its
//!                                               own transaction)
//! report      Finished ─finish_run→ AwaitingHarvest ─harvested→ Pooled | Retiring
//! warm start  Pooled ─take_idle→ HandoverPending ─hand_over→ Assigned
//!             Assigned ─take_assignment→ Starting
//! prewarm     Free ─reserve_ahead→ ReservedAhead ─claim→ Warming ─pool→ Pooled | Retiring
//! retire      Pooled | HandoverPending ─retire→ Retiring
//! exit        any phase with a process ─exit→ ExitedWithRun | ExitedIdle ─free→ Free
//! no start    Reserved | ReservedAhead ─release→ Free
//! ```
//! Three flags stay beside the phase because they are not phases: `retire`
//! (asked to exit after the current run, sent to a busy executor when its
//! database's extension is dropped, and to every connected executor when
//! a committed `ALTER ROLE`/`ALTER DATABASE … SET` changes what a new
//! connection gets; it decides where [`ExecutorEvent::Pool`]
//! and [`ExecutorEvent::Harvested`] lead, and the shell then emits no
//! `ClaimNext`), and the run's `cancel_requested` and `killed_for_timeout`
//! (inputs of [`crate::run::outcome`]). The events that set them are
//! admitted here, leaving the phase as it is.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum ExecutorPhase {
    /// Not in use.
    #[default]
    Free,
    /// Reserved by a scheduler for a run; the process is not up yet (pid 0).
    Reserved,
    /// Reserved by a scheduler's prewarm, for no run yet (pid 0).
    ReservedAhead,
    /// Holds a run whose command has not started (connecting, reading it).
    Starting,
    /// Connecting with no run, to join the pool before a due instant.
    Warming,
    /// Running its run's command.
    Running,
    /// The command is over and its outcome is in the slot; the process is
    /// between runs (resetting its session, perhaps claiming the next run).
    Finished,
    /// Between runs, its outcome waiting for the scheduler (`outcome_ready`).
    AwaitingHarvest,
    /// Idle, connected, free to be handed a run (`reusable`).
    Pooled,
    /// Claimed by a scheduler pass for a run not yet handed over.
    HandoverPending,
    /// Handed a run (`assigned`); the process has not taken it yet.
    Assigned,
    /// Idle and asked to exit: takes no run.
    Retiring,
    /// The process is gone holding a run: the scheduler writes its outcome
    /// (or that it vanished), then frees the slot.
    ExitedWithRun,
    /// The process is gone holding no run: the slot is only to be freed.
    ExitedIdle,
}

/// What happens to a slot, named after the shell function that does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExecutorEvent {
    /// `registry::reserve` for a run (scheduler `pick_runs`).
    Reserve,
    /// `registry::reserve` with no run (scheduler `prewarm`).
    ReserveAhead,
    /// The process never claimed its reservation: `registry::release` after
    /// a failed start, `release_unclaimed`, `reap_unclaimed`.
    Release,
    /// `registry::claim` by the new process.
    Claim,
    /// `registry::set_pooled`: a prewarmed process is connected.
    Pool { retire: bool },
    /// `registry::set_running`: the command starts.
    StartCommand,
    /// `registry::record_outcome`: the command ended (or never could start).
    RecordOutcome,
    /// `registry::finish_run`: the outcome waits for the scheduler.
    FinishRun,
    /// `registry::mark_harvested`: the outcome is committed to the history.
    Harvested { retire: bool },
    /// `registry::self_claim` or `start_reserved`: after a run recorded in
    /// its own transaction, the next one from its reservations or the queue.
    ClaimNext,
    /// `registry::take_idle`: a scheduler pass claims a pooled executor.
    TakeIdle,
    /// A scheduler pass whose transaction failed after it harvested this
    /// slot puts it back: the outcome it wrote was rolled back, so the slot
    /// awaits harvest again (`shmem::undo_harvest`).
    UndoHarvest,
    /// A scheduler pass gives up a claimed idle executor without handing
    /// it the run (`shmem::abandon_handover`, when an earlier dispatch of
    /// the pass found no worker slot; 0.3 freed the live executor's slot).
    AbandonHandover,
    /// `registry::hand_over`: the command is given and the process woken.
    HandOver,
    /// `registry::take_assignment` found the handed-over run.
    TakeAssignment,
    /// Asked to exit: `retire_one_idle`, `take_assignment` at the idle
    /// timeout, `retire_abandoned`; `terminate_runs_of` for a busy one;
    /// `retire_connected_executors` for every one with a process.
    Retire,
    /// `registry::cancel_run`: `jobs.cancel` flags the slot's run.
    CancelRequested,
    /// `registry::kill_for_timeout`: SIGTERM after the timeout's grace.
    KillForTimeout,
    /// `on_exit`: the process is gone.
    Exit,
    /// The exited slot is freed: after its harvest commits
    /// (`registry::release`), or by `terminate_runs_of` /
    /// `terminate_db_workers` when nobody is left to harvest it.
    Free,
}

impl ExecutorEvent {
    pub const ALL: [ExecutorEvent; 22] = [
        ExecutorEvent::Reserve,
        ExecutorEvent::ReserveAhead,
        ExecutorEvent::Release,
        ExecutorEvent::Claim,
        ExecutorEvent::Pool { retire: false },
        ExecutorEvent::Pool { retire: true },
        ExecutorEvent::StartCommand,
        ExecutorEvent::RecordOutcome,
        ExecutorEvent::FinishRun,
        ExecutorEvent::Harvested { retire: false },
        ExecutorEvent::Harvested { retire: true },
        ExecutorEvent::ClaimNext,
        ExecutorEvent::TakeIdle,
        ExecutorEvent::AbandonHandover,
        ExecutorEvent::UndoHarvest,
        ExecutorEvent::HandOver,
        ExecutorEvent::TakeAssignment,
        ExecutorEvent::Retire,
        ExecutorEvent::CancelRequested,
        ExecutorEvent::KillForTimeout,
        ExecutorEvent::Exit,
        ExecutorEvent::Free,
    ];
}

/// An event the phase does not admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("executor slot event {event:?} cannot happen in phase {from}")]
pub struct IllegalPhaseEvent {
    pub from: ExecutorPhase,
    pub event: ExecutorEvent,
}

impl ExecutorPhase {
    pub const ALL: [ExecutorPhase; 14] = [
        ExecutorPhase::Free,
        ExecutorPhase::Reserved,
        ExecutorPhase::ReservedAhead,
        ExecutorPhase::Starting,
        ExecutorPhase::Warming,
        ExecutorPhase::Running,
        ExecutorPhase::Finished,
        ExecutorPhase::AwaitingHarvest,
        ExecutorPhase::Pooled,
        ExecutorPhase::HandoverPending,
        ExecutorPhase::Assigned,
        ExecutorPhase::Retiring,
        ExecutorPhase::ExitedWithRun,
        ExecutorPhase::ExitedIdle,
    ];

    /// The slot's one transition function: every allowed (phase, event)
    /// pair and where it leads.
    pub const fn on(self, event: ExecutorEvent) -> Result<ExecutorPhase, IllegalPhaseEvent> {
        use ExecutorEvent as E;
        use ExecutorPhase as P;
        let next = match (self, event) {
            (P::Free, E::Reserve) => P::Reserved,
            (P::Free, E::ReserveAhead) => P::ReservedAhead,
            (P::Reserved | P::ReservedAhead, E::Release) => P::Free,
            (P::Reserved, E::Claim) => P::Starting,
            (P::ReservedAhead, E::Claim) => P::Warming,
            (P::Warming, E::Pool { retire: false }) => P::Pooled,
            (P::Warming, E::Pool { retire: true }) => P::Retiring,
            (P::Starting, E::StartCommand) => P::Running,
            // Running: the command ended. Starting: its command was gone.
            (P::Starting | P::Running, E::RecordOutcome) => P::Finished,
            (P::Finished, E::FinishRun) => P::AwaitingHarvest,
            (P::Finished, E::ClaimNext) => P::Starting,
            (P::AwaitingHarvest, E::Harvested { retire: false }) => P::Pooled,
            (P::AwaitingHarvest, E::Harvested { retire: true }) => P::Retiring,
            (P::Pooled, E::TakeIdle) => P::HandoverPending,
            (P::HandoverPending, E::AbandonHandover) => P::Pooled,
            (P::Pooled | P::Retiring, E::UndoHarvest) => P::AwaitingHarvest,
            (P::HandoverPending, E::HandOver) => P::Assigned,
            (P::Assigned, E::TakeAssignment) => P::Starting,
            (P::Pooled | P::HandoverPending | P::Retiring, E::Retire) => P::Retiring,
            // A busy executor keeps its phase; the shell keeps the flag.
            (
                P::Warming | P::Starting | P::Running | P::Finished | P::AwaitingHarvest | P::Assigned,
                E::Retire,
            ) => self,
            // The slot's run is flagged; the executor reads the flag when
            // it starts the command or classifies its error.
            (
                P::Reserved
                | P::Starting
                | P::Running
                | P::Finished
                | P::AwaitingHarvest
                | P::HandoverPending
                | P::Assigned,
                E::CancelRequested,
            ) => self,
            (P::Running, E::KillForTimeout) => self,
            (p, E::Exit) if p.has_process() => {
                if p.holds_run() {
                    P::ExitedWithRun
                } else {
                    P::ExitedIdle
                }
            }
            (P::ExitedWithRun | P::ExitedIdle, E::Free) => P::Free,
            _ => return Err(IllegalPhaseEvent { from: self, event }),
        };
        Ok(next)
    }

    /// A process is attached (claimed, not exited).
    pub const fn has_process(self) -> bool {
        !matches!(
            self,
            ExecutorPhase::Free
                | ExecutorPhase::Reserved
                | ExecutorPhase::ReservedAhead
                | ExecutorPhase::ExitedWithRun
                | ExecutorPhase::ExitedIdle
        )
    }

    /// The slot holds a run the scheduler has not written yet: the crash
    /// sweep must treat it as alive, and its exit must be harvested.
    pub const fn holds_run(self) -> bool {
        matches!(
            self,
            ExecutorPhase::Reserved
                | ExecutorPhase::Starting
                | ExecutorPhase::Running
                | ExecutorPhase::Finished
                | ExecutorPhase::AwaitingHarvest
                | ExecutorPhase::Assigned
                | ExecutorPhase::ExitedWithRun
        )
    }

    /// Counts against `pg_jobs.max_executors` (idle pooled ones and
    /// exited ones do not: they hold no work).
    pub const fn counts_against_capacity(self) -> bool {
        !matches!(
            self,
            ExecutorPhase::Free
                | ExecutorPhase::Pooled
                | ExecutorPhase::ExitedWithRun
                | ExecutorPhase::ExitedIdle
        )
    }

    /// The scheduler has something to do with it at its next harvest.
    pub const fn awaits_harvest(self) -> bool {
        matches!(
            self,
            ExecutorPhase::AwaitingHarvest | ExecutorPhase::ExitedWithRun | ExecutorPhase::ExitedIdle
        )
    }

    // The 0.3 booleans, derived.

    /// `Slot::exited`.
    pub const fn exited(self) -> bool {
        matches!(self, ExecutorPhase::ExitedWithRun | ExecutorPhase::ExitedIdle)
    }
    /// `Slot::reusable`.
    pub const fn reusable(self) -> bool {
        matches!(self, ExecutorPhase::Pooled)
    }
    /// `Slot::outcome_ready`.
    pub const fn outcome_ready(self) -> bool {
        matches!(self, ExecutorPhase::AwaitingHarvest)
    }
    /// `Slot::assigned`.
    pub const fn assigned(self) -> bool {
        matches!(self, ExecutorPhase::Assigned)
    }
    /// `Slot::pending_handover` (while live; an exited one is `ExitedIdle`).
    pub const fn pending_handover(self) -> bool {
        matches!(self, ExecutorPhase::HandoverPending)
    }
    /// `Slot::pid == 0` of a slot in use.
    pub const fn unclaimed(self) -> bool {
        matches!(self, ExecutorPhase::Reserved | ExecutorPhase::ReservedAhead)
    }

    /// What `jobs.workers.state` shows.
    pub const fn state_name(self) -> &'static str {
        match self {
            ExecutorPhase::Reserved | ExecutorPhase::ReservedAhead | ExecutorPhase::Starting => "starting",
            ExecutorPhase::Running => "running",
            _ => "idle",
        }
    }

    /// For a slot in shared memory (`repr(u8)`); unknown values read as `Free`.
    pub const fn from_u8(v: u8) -> ExecutorPhase {
        let mut i = 0;
        while i < ExecutorPhase::ALL.len() {
            if ExecutorPhase::ALL[i] as u8 == v {
                return ExecutorPhase::ALL[i];
            }
            i += 1;
        }
        ExecutorPhase::Free
    }
}

impl fmt::Display for ExecutorPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[cfg(test)]
mod tests;
