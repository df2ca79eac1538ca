//! One daemon's life under its supervisor, as a state ([`Life`]) moved by
//! one transition function ([`Life::on`]), and the supervisor's decision of
//! what to do next ([`Life::tick`]).
//!
//! ```text
//!             ┌──────────────── idle (disabled, dropped, other node) ─────────────┐
//!             ▼                                                                    │
//! Pending ─tick→ Start ─Started→ Starting ─tick (process up)→ Running              │
//!                     ─NoWorkerSlot→ NoWorkerSlot ─(retry due)→ Start              │
//!                     ─NoDaemonSlot→ NoDaemonSlot ─(a slot freed, or recheck due)→ Start
//!                     ─Deferred→ WaitingRestart (the role's start budget is spent)   │
//!         ─tick (last start < 1 s ago)→ WaitingRestart ─(a second after it)→ Start │
//!         ─tick (refused)→ WaitingRestart ─(delay over)→ Start                     │
//! Starting | Running ─tick (should not run, or redefined)→ Stopping (cancel)       │
//!                        Stopping ─tick (grace over)→ terminate                    │
//! any with a process ─Exited→ WaitingRestart (restart: after the backoff, or at   │
//!                              once if redefined) | unchanged until tick ──────────┘
//! ```
//! Times are TimestampTz microseconds (`now` is passed in: the pure crate
//! reads no clock); delays are milliseconds.

use super::{DaemonBackoff, DaemonState, Exit, RestartDelays, MIN_START_INTERVAL};

/// How long a daemon being stopped may ignore the cancel before it is terminated.
pub const STOP_GRACE_MS: i64 = 5_000;

/// `now + ms`, saturating (a delay near the maximum means "much later",
/// never a wrap into the past).
fn after_ms(now: i64, ms: u64) -> i64 {
    now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX).saturating_mul(1000))
}

/// A stop in progress: when the cancel was sent, and whether the process
/// was terminated since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    pub sent_at: i64,
    pub terminated: bool,
}

/// Where one daemon is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Life {
    /// What `jobs.daemon_status` shows.
    pub state: DaemonState,
    pub since: i64,
    /// When it may start again; `None`: at once.
    pub next_start: Option<i64>,
    pub backoff: DaemonBackoff,
    /// Restarts since it was declared.
    pub restarts: i64,
    /// A process exists (started or adopted) and has not been seen to end.
    pub has_process: bool,
    /// Its process is being stopped.
    pub stop: Option<Stop>,
    /// Its definition changed while it ran: start it again as soon as the
    /// old process is gone.
    pub restart_now: bool,
    /// Its definition is gone: forget it once its process is.
    pub dropped: bool,
    /// When its last process was started (or, adopted, had started): the
    /// next start is at least [`MIN_START_INTERVAL`] later.
    pub last_start: Option<i64>,
}

/// What happens to a daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonEvent {
    /// Its definition was read again: `changed` (owner, database, command or
    /// placement differ from what runs), `enabled_again` (`jobs.start_daemon`).
    Redefined { changed: bool, enabled_again: bool },
    /// Its definition is gone.
    Dropped,
    /// Its process, started by an earlier life of the scheduler, is taken
    /// over; it has been up since `started_at`.
    Adopted { started_at: i64 },
    /// A process was started for it ([`Action::Start`] succeeded).
    Started,
    /// [`Action::Start`] found no background worker slot: try again in `retry_ms`.
    NoWorkerSlot { retry_ms: u64 },
    /// [`Action::Start`] found `pg_jobs.max_daemons` daemon processes
    /// running: wait for [`DaemonEvent::DaemonSlotFreed`], or look again in
    /// `retry_ms`.
    NoDaemonSlot { retry_ms: u64 },
    /// Fewer than `pg_jobs.max_daemons` daemon processes run now: a daemon
    /// waiting for a daemon slot may try at once.
    DaemonSlotFreed,
    /// [`Action::Start`] was not done: its role's start budget is spent
    /// until `until`.
    Deferred { until: i64 },
    /// Its process ended, how and after how long; `enabled`: its definition
    /// still says it should run.
    Exited {
        exit: Exit,
        uptime_ms: u64,
        enabled: bool,
        delays: RestartDelays,
    },
}

/// What [`DaemonEvent::Exited`] made of the daemon, for the log and the
/// record in `jobs.daemon`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// It ended because it was being stopped.
    pub stopping: bool,
    /// It will be started again (at `next_start`, or at once if `None`).
    pub restarting: bool,
    pub next_start: Option<i64>,
}

/// What the supervisor must do for a daemon now (besides the state change
/// [`Life::tick`] made).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// Cancel its process (SIGINT): the first step of a stop.
    Cancel,
    /// Terminate its process (SIGTERM): it ignored the cancel for [`STOP_GRACE_MS`].
    Terminate,
    /// It cannot start as defined: counted as a failure (record it, warn).
    Refuse,
    /// Start a process for it; report [`DaemonEvent::Started`] or
    /// [`DaemonEvent::NoWorkerSlot`].
    Start,
}

/// What the supervisor knows about a daemon when it ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// What it should be instead of running here (`None`: it should run):
    /// [`super::idle_state`], or `Stopped` for a dropped one.
    pub idle: Option<DaemonState>,
    /// Its definition cannot start now (a `super::CannotStart`).
    pub refused: bool,
    /// Its process has begun its command, at this instant.
    pub process_started_at: Option<i64>,
    pub delays: RestartDelays,
}

impl Life {
    /// A daemon new to this scheduler.
    pub fn new(since: i64, next_start: Option<i64>, restarts: i64) -> Life {
        Life {
            since,
            next_start,
            restarts,
            ..Life::default()
        }
    }

    /// The transition function: apply `event` at `now`. Returns what an
    /// exit made of it ([`DaemonEvent::Exited`] only).
    pub fn on(&mut self, event: DaemonEvent, now: i64) -> Option<Ended> {
        match event {
            DaemonEvent::Redefined {
                changed,
                enabled_again,
            } => {
                if changed {
                    if self.has_process {
                        self.restart_now = true;
                    } else {
                        self.next_start = None; // a new definition gets a fresh start
                    }
                    self.backoff = DaemonBackoff::default();
                }
                if enabled_again {
                    self.next_start = None; // start_daemon: at once
                    self.backoff = DaemonBackoff::default();
                }
                self.dropped = false;
            }
            DaemonEvent::Dropped => self.dropped = true,
            DaemonEvent::Adopted { started_at } => {
                self.has_process = true;
                self.stop = None;
                self.state = DaemonState::Running;
                self.since = started_at;
                self.last_start = Some(started_at);
            }
            DaemonEvent::Started => {
                self.has_process = true;
                self.stop = None;
                self.state = DaemonState::Starting;
                self.since = now;
                self.next_start = None;
                self.last_start = Some(now);
            }
            DaemonEvent::NoWorkerSlot { retry_ms } => {
                self.enter(DaemonState::NoWorkerSlot, now);
                self.next_start = Some(after_ms(now, retry_ms));
            }
            DaemonEvent::NoDaemonSlot { retry_ms } => {
                self.enter(DaemonState::NoDaemonSlot, now);
                self.next_start = Some(after_ms(now, retry_ms));
            }
            DaemonEvent::DaemonSlotFreed => {
                if self.state == DaemonState::NoDaemonSlot && !self.has_process {
                    self.next_start = None;
                }
            }
            DaemonEvent::Deferred { until } => {
                self.enter(DaemonState::WaitingRestart, now);
                self.next_start = Some(until.max(now));
            }
            DaemonEvent::Exited {
                exit,
                uptime_ms,
                enabled,
                delays,
            } => return Some(self.exited(exit, uptime_ms, enabled, &delays, now)),
        }
        None
    }

    fn exited(
        &mut self,
        exit: Exit,
        uptime_ms: u64,
        enabled: bool,
        delays: &RestartDelays,
        now: i64,
    ) -> Ended {
        let stopping = self.stop.is_some() && !self.restart_now;
        self.has_process = false;
        self.stop = None;
        self.since = now;
        let restarting = !stopping && !self.dropped && enabled;
        if self.restart_now {
            self.restart_now = false;
            self.next_start = None;
            self.state = DaemonState::WaitingRestart;
        } else if restarting {
            let delay = self.backoff.on_exit(delays, exit, uptime_ms);
            self.next_start = Some(after_ms(now, delay));
            self.state = DaemonState::WaitingRestart;
        } else {
            self.next_start = None;
        }
        if restarting {
            self.restarts = self.restarts.saturating_add(1);
        }
        Ended {
            stopping,
            restarting,
            next_start: self.next_start,
        }
    }

    /// Show `state`, since `now` if it is new.
    fn enter(&mut self, state: DaemonState, now: i64) {
        if self.state != state {
            self.state = state;
            self.since = now;
        }
    }

    /// A start is due: no process, wanted, and its restart delay is over
    /// (the supervisor then reads its definition afresh: the role or
    /// database may have changed since).
    pub fn start_due(&self, enabled: bool, now: i64) -> bool {
        !self.has_process && !self.dropped && enabled && self.next_start.is_none_or(|t| t <= now)
    }

    /// Forget it: dropped, and its process is gone.
    pub fn forgotten(&self) -> bool {
        self.dropped && !self.has_process
    }

    /// Decide what to do now, making the state changes that need no
    /// action. Returns the action and when to look again (`None`: no
    /// deadline of its own).
    pub fn tick(&mut self, now: i64, f: &Facts) -> (Action, Option<i64>) {
        if self.has_process {
            return self.tick_running(now, f);
        }
        if let Some(state) = f.idle {
            self.enter(state, now);
            self.next_start = None;
            return (Action::Nothing, None);
        }
        if let Some(at) = self.next_start.filter(|at| *at > now) {
            if !matches!(self.state, DaemonState::NoWorkerSlot | DaemonState::NoDaemonSlot) {
                self.state = DaemonState::WaitingRestart;
            }
            return (Action::Nothing, Some(at));
        }
        if f.refused {
            // It cannot start: count it as a failure, so the retries back off.
            let at = after_ms(now, self.backoff.on_exit(&f.delays, Exit::Error, 0));
            self.state = DaemonState::WaitingRestart;
            self.since = now;
            self.next_start = Some(at);
            return (Action::Refuse, Some(at));
        }
        // However it is asked for (a restart, a redefinition, start_daemon),
        // a process starts at most once per MIN_START_INTERVAL.
        if let Some(at) = self
            .last_start
            .map(|t| after_ms(t, MIN_START_INTERVAL))
            .filter(|at| *at > now)
        {
            self.enter(DaemonState::WaitingRestart, now);
            self.next_start = Some(at);
            return (Action::Nothing, Some(at));
        }
        (Action::Start, None)
    }

    /// [`Life::tick`] for a daemon with a process: stop it (cancel, then
    /// terminate after the grace period) if it should not run or was
    /// redefined; else notice when it is up.
    fn tick_running(&mut self, now: i64, f: &Facts) -> (Action, Option<i64>) {
        let grace_us = STOP_GRACE_MS * 1000;
        if f.idle.is_none() && !self.restart_now {
            if self.state != DaemonState::Running {
                if let Some(at) = f.process_started_at {
                    self.state = DaemonState::Running;
                    self.since = at;
                }
            }
            return (Action::Nothing, None);
        }
        match &mut self.stop {
            None => {
                self.stop = Some(Stop {
                    sent_at: now,
                    terminated: false,
                });
                self.state = DaemonState::Stopping;
                self.since = now;
                (Action::Cancel, Some(now.saturating_add(grace_us)))
            }
            Some(s) if !s.terminated => {
                let deadline = s.sent_at.saturating_add(grace_us);
                if now >= deadline {
                    s.terminated = true;
                    (Action::Terminate, None)
                } else {
                    (Action::Nothing, Some(deadline))
                }
            }
            Some(_) => (Action::Nothing, None),
        }
    }
}

#[cfg(test)]
mod tests;
