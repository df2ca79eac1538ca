//! Daemons: user-declared long-running commands that a scheduler keeps
//! running — where they may run (primary, standby, both), what their
//! supervisor shows, and how long to wait before restarting one that ended.
//!
//! A daemon that returns cleanly is restarted after its `restart_delay`
//! (it is a loop that chose to end its round). One that fails — an error or
//! a crash — is restarted after a delay that doubles with each failure in
//! a row, from `restart_delay` up to `max_restart_delay`, so a daemon that
//! errors at once costs one start per `max_restart_delay`, not a hot loop.
//! A daemon that stayed up for [`HEALTHY_AFTER`] has proved itself: its
//! next failure starts the doubling afresh.
//!
//! Restart storms are bounded three ways: `restart_delay` is at least
//! [`MIN_RESTART_DELAY`]; no daemon's process starts less than
//! [`MIN_START_INTERVAL`] after its previous start, whatever asks for it (a
//! restart, a redefinition, `jobs.start_daemon`); and a role's daemons in
//! one database start at most `pg_jobs.max_daemons_per_role` processes per
//! [`MIN_START_INTERVAL`] ([`StartBudget`]), which also covers daemons that
//! are dropped and declared again under new names.

use crate::backoff::Millis;
use crate::run::start::{self, Owner, WhyNot};
use std::fmt;
use std::str::FromStr;

mod budget;
mod lifecycle;
pub use budget::StartBudget;
pub use lifecycle::{Action, DaemonEvent, Ended, Facts, Life, Stop, STOP_GRACE_MS};

/// Uptime after which a daemon's failure count starts again from zero.
pub const HEALTHY_AFTER: Millis = 10_000;

/// The shortest `restart_delay` a daemon may have (`jobs.daemon` refuses
/// less; a definition stored with less by an older version is read as
/// this): 20 daemons restarting every 100 ms made 175 process starts a
/// second.
pub const MIN_RESTART_DELAY: Millis = 1_000;

/// The shortest time between two starts of one daemon's process, and the
/// window of a role's [`StartBudget`].
pub const MIN_START_INTERVAL: Millis = MIN_RESTART_DELAY;

/// How long a daemon waiting for a daemon slot (`pg_jobs.max_daemons`)
/// waits before it looks again on its own; a daemon process that ends
/// anywhere in the cluster wakes it earlier.
pub const DAEMON_SLOT_RECHECK: Millis = 10_000;

/// Where a daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOn {
    /// On a primary (recovery finished); read-write.
    Primary,
    /// On a hot standby (consistent state) only; read-only.
    Standby,
    /// On both; on a standby it is read-only.
    Any,
}

impl RunOn {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOn::Primary => "primary",
            RunOn::Standby => "standby",
            RunOn::Any => "any",
        }
    }

    /// Its process must be able to start before recovery ends (the
    /// background worker's start time: consistent state, not recovery
    /// finished).
    pub fn starts_during_recovery(self) -> bool {
        self != RunOn::Primary
    }

    /// Whether the daemon runs on a node that is (`in_recovery`) or is not a standby.
    pub fn runs_here(self, in_recovery: bool) -> bool {
        match self {
            RunOn::Primary => !in_recovery,
            RunOn::Standby => in_recovery,
            RunOn::Any => true,
        }
    }
}

impl FromStr for RunOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "primary" => Ok(RunOn::Primary),
            "standby" => Ok(RunOn::Standby),
            "any" => Ok(RunOn::Any),
            other => Err(format!(
                "invalid run_on \"{other}\": expected primary, standby or any"
            )),
        }
    }
}

/// How a daemon's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Its command returned.
    Clean,
    /// Its command raised an error (including a cancel).
    Error,
    /// It ended without reporting anything: terminated, crashed, or it
    /// could not even connect.
    Crash,
}

impl Exit {
    pub fn as_str(self) -> &'static str {
        match self {
            Exit::Clean => "clean",
            Exit::Error => "error",
            Exit::Crash => "crash",
        }
    }

    /// As kept in shared memory (`0`: no exit yet).
    pub fn as_u8(self) -> u8 {
        match self {
            Exit::Clean => 1,
            Exit::Error => 2,
            Exit::Crash => 3,
        }
    }

    pub fn from_u8(v: u8) -> Option<Exit> {
        match v {
            1 => Some(Exit::Clean),
            2 => Some(Exit::Error),
            3 => Some(Exit::Crash),
            _ => None,
        }
    }
}

/// Why a daemon cannot start as defined (it is retried, backing off as
/// after a failure, until its definition or the catalogs change).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannotStart {
    DatabaseGone,
    RoleGone,
    RoleCannotLogin,
    NoConnectPrivilege,
    /// Its database does not allow connections (`datallowconn`).
    NoConnections,
}

impl CannotStart {
    pub fn sqlstate(self) -> &'static str {
        match self {
            CannotStart::DatabaseGone => "3D000",
            CannotStart::RoleGone => "42704",
            CannotStart::RoleCannotLogin => "28000",
            CannotStart::NoConnectPrivilege => "42501",
            CannotStart::NoConnections => "55000",
        }
    }

    /// The message recorded and logged (`database`: its database's name).
    pub fn message(self, database: &str) -> String {
        match self {
            CannotStart::DatabaseGone => format!("database \"{database}\" no longer exists"),
            CannotStart::RoleGone => "the daemon's owner role no longer exists".to_owned(),
            CannotStart::RoleCannotLogin => {
                "the daemon's owner role is not permitted to log in (NOLOGIN)".to_owned()
            }
            CannotStart::NoConnectPrivilege => {
                format!("the daemon's owner role lacks CONNECT privilege on database \"{database}\"")
            }
            CannotStart::NoConnections => format!("database \"{database}\" does not allow connections"),
        }
    }
}

/// Why a daemon cannot start (`None`: it can): a run's refusals
/// ([`start::refusal`]), in the same order, then a database that allows no
/// connections.
pub fn refusal(database_exists: bool, owner: Option<Owner>, allows_connections: bool) -> Option<CannotStart> {
    match start::refusal(database_exists, owner) {
        Some(WhyNot::DatabaseGone) => Some(CannotStart::DatabaseGone),
        Some(WhyNot::RoleGone) => Some(CannotStart::RoleGone),
        Some(WhyNot::RoleCannotLogin) => Some(CannotStart::RoleCannotLogin),
        Some(WhyNot::NoConnectPrivilege) => Some(CannotStart::NoConnectPrivilege),
        None if !allows_connections => Some(CannotStart::NoConnections),
        _ => None,
    }
}

/// What the supervisor shows for a daemon (`jobs.daemon_status.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum DaemonState {
    /// Declared, not yet looked at by a scheduler (or its scheduler is down).
    #[default]
    Pending = 0,
    /// A worker was asked for and has not connected yet.
    Starting = 1,
    Running = 2,
    /// Ended; restarts at `next_restart`.
    WaitingRestart = 3,
    /// Being stopped: cancelled, terminated after a grace period.
    Stopping = 4,
    /// `jobs.stop_daemon`, or its definition was dropped.
    Stopped = 5,
    /// Declared for the other kind of node (`run_on`).
    NotOnThisNode = 6,
    /// Should run, but no background worker slot is free (`max_worker_processes`).
    NoWorkerSlot = 7,
    /// Should run, but `pg_jobs.max_daemons` daemon processes run already,
    /// cluster-wide: it starts when one ends.
    NoDaemonSlot = 8,
}

impl DaemonState {
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonState::Pending => "pending",
            DaemonState::Starting => "starting",
            DaemonState::Running => "running",
            DaemonState::WaitingRestart => "waiting_restart",
            DaemonState::Stopping => "stopping",
            DaemonState::Stopped => "stopped",
            DaemonState::NotOnThisNode => "not_on_this_node",
            DaemonState::NoWorkerSlot => "no_worker_slot",
            DaemonState::NoDaemonSlot => "no_daemon_slot",
        }
    }

    pub fn from_u8(v: u8) -> DaemonState {
        match v {
            1 => DaemonState::Starting,
            2 => DaemonState::Running,
            3 => DaemonState::WaitingRestart,
            4 => DaemonState::Stopping,
            5 => DaemonState::Stopped,
            6 => DaemonState::NotOnThisNode,
            7 => DaemonState::NoWorkerSlot,
            8 => DaemonState::NoDaemonSlot,
            _ => DaemonState::Pending,
        }
    }

    /// A worker process exists (or was asked for) in this state.
    pub fn has_worker(self) -> bool {
        matches!(
            self,
            DaemonState::Starting | DaemonState::Running | DaemonState::Stopping
        )
    }
}

impl fmt::Display for DaemonState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a daemon should be doing on this node now, given its definition.
/// `None`: it should run.
pub fn idle_state(enabled: bool, run_on: RunOn, in_recovery: bool) -> Option<DaemonState> {
    if !enabled {
        Some(DaemonState::Stopped)
    } else if !run_on.runs_here(in_recovery) {
        Some(DaemonState::NotOnThisNode)
    } else {
        None
    }
}

/// A daemon's restart delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartDelays {
    pub restart_delay: Millis,
    pub max_restart_delay: Millis,
}

/// Failures in a row of one daemon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DaemonBackoff {
    pub failures: u32,
}

impl DaemonBackoff {
    /// The daemon ended (`exit`) after `uptime`: how long to wait before
    /// starting it again.
    pub fn on_exit(&mut self, d: &RestartDelays, exit: Exit, uptime: Millis) -> Millis {
        if uptime >= HEALTHY_AFTER || exit == Exit::Clean {
            self.failures = 0;
        }
        if exit == Exit::Clean {
            return d.restart_delay;
        }
        self.failures = self.failures.saturating_add(1);
        let doublings = (self.failures - 1).min(40);
        d.restart_delay
            .max(1)
            .saturating_mul(1u64 << doublings)
            .min(d.max_restart_delay.max(d.restart_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: RestartDelays = RestartDelays {
        restart_delay: 5_000,
        max_restart_delay: 300_000,
    };

    #[test]
    fn run_on_parses_and_places() {
        assert_eq!("standby".parse::<RunOn>(), Ok(RunOn::Standby));
        assert!("Primary"
            .parse::<RunOn>()
            .unwrap_err()
            .contains("primary, standby or any"));
        assert!(RunOn::Primary.runs_here(false) && !RunOn::Primary.runs_here(true));
        assert!(!RunOn::Standby.runs_here(false) && RunOn::Standby.runs_here(true));
        assert!(RunOn::Any.runs_here(false) && RunOn::Any.runs_here(true));
    }

    #[test]
    fn stopped_wins_over_placement() {
        assert_eq!(
            idle_state(false, RunOn::Standby, false),
            Some(DaemonState::Stopped)
        );
        assert_eq!(
            idle_state(true, RunOn::Standby, false),
            Some(DaemonState::NotOnThisNode)
        );
        assert_eq!(idle_state(true, RunOn::Any, true), None);
    }

    #[test]
    fn refusals_in_order() {
        let ok = Some(Owner {
            can_login: true,
            can_connect: true,
        });
        assert_eq!(refusal(true, ok, true), None);
        assert_eq!(refusal(false, None, false), Some(CannotStart::DatabaseGone));
        assert_eq!(refusal(true, None, true), Some(CannotStart::RoleGone));
        let nologin = Some(Owner {
            can_login: false,
            can_connect: false,
        });
        assert_eq!(refusal(true, nologin, false), Some(CannotStart::RoleCannotLogin));
        let noconnect = Some(Owner {
            can_login: true,
            can_connect: false,
        });
        assert_eq!(
            refusal(true, noconnect, false),
            Some(CannotStart::NoConnectPrivilege)
        );
        assert_eq!(refusal(true, ok, false), Some(CannotStart::NoConnections));
        assert_eq!(CannotStart::NoConnections.sqlstate(), "55000");
        assert!(CannotStart::RoleGone.message("x").contains("daemon's owner"));
    }

    #[test]
    fn exits_round_trip_through_u8() {
        for e in [Exit::Clean, Exit::Error, Exit::Crash] {
            assert_eq!(Exit::from_u8(e.as_u8()), Some(e));
        }
        assert_eq!(Exit::from_u8(0), None);
        assert!(!RunOn::Primary.starts_during_recovery() && RunOn::Any.starts_during_recovery());
    }

    #[test]
    fn clean_exits_wait_the_restart_delay() {
        let mut b = DaemonBackoff::default();
        for _ in 0..5 {
            assert_eq!(b.on_exit(&D, Exit::Clean, 10), 5_000);
        }
    }

    #[test]
    fn failures_double_to_the_ceiling_and_reset_after_a_healthy_run() {
        let mut b = DaemonBackoff::default();
        let delays: Vec<_> = (0..8).map(|_| b.on_exit(&D, Exit::Error, 5)).collect();
        assert_eq!(
            delays,
            [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]
        );
        assert_eq!(b.on_exit(&D, Exit::Crash, HEALTHY_AFTER), 5_000, "reset");
        assert_eq!(b.on_exit(&D, Exit::Crash, 1), 10_000);
        assert_eq!(b.on_exit(&D, Exit::Clean, 1), 5_000, "a clean exit resets too");
        assert_eq!(b.on_exit(&D, Exit::Error, 1), 5_000);
    }

    #[test]
    fn state_round_trips_through_u8() {
        for s in [
            DaemonState::Pending,
            DaemonState::Starting,
            DaemonState::Running,
            DaemonState::WaitingRestart,
            DaemonState::Stopping,
            DaemonState::Stopped,
            DaemonState::NotOnThisNode,
            DaemonState::NoWorkerSlot,
            DaemonState::NoDaemonSlot,
        ] {
            assert_eq!(DaemonState::from_u8(s as u8), s);
        }
    }

    proptest! {
        #[test]
        fn delays_stay_within_bounds_and_grow_while_failing(
            restart in 0u64..100_000,
            extra in 0u64..1_000_000,
            exits in proptest::collection::vec((0u8..3, 0u64..20_000), 1..60),
        ) {
            let d = RestartDelays { restart_delay: restart, max_restart_delay: restart + extra };
            let mut b = DaemonBackoff::default();
            let mut last_failure_delay = 0;
            for (kind, uptime) in exits {
                let exit = [Exit::Clean, Exit::Error, Exit::Crash][kind as usize];
                let delay = b.on_exit(&d, exit, uptime);
                prop_assert!(delay >= d.restart_delay && delay <= d.max_restart_delay);
                if exit == Exit::Clean {
                    prop_assert_eq!(delay, d.restart_delay);
                    last_failure_delay = 0;
                } else if uptime >= HEALTHY_AFTER {
                    prop_assert_eq!(delay, d.restart_delay.max(1).min(d.max_restart_delay), "reset");
                    last_failure_delay = delay;
                } else {
                    prop_assert!(delay >= last_failure_delay, "a quick failure never shortens the wait");
                    last_failure_delay = delay;
                }
            }
        }
    }
}
