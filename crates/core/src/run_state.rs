//! The states of a run and the transitions between them.
//!
//! ```text
//! queued ──► starting ──► running ──► succeeded | failed | timed_out | crashed
//!   │            │
//!   └────────────┴──► crashed   (its worker vanished: crash, restart, kill)
//! (due) ──► skipped             (overlap policy `skip`: recorded, never run)
//! queued | starting | running ──► cancelled   (jobs.cancel)
//! ```
//! A run is terminal exactly once: no transition leaves a terminal state.
//! `starting` means a scheduler has asked the postmaster for an executor and
//! the executor has not yet picked the run up.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Queued,
    Starting,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Skipped,
    Crashed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 9] = [
        RunStatus::Queued,
        RunStatus::Starting,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
        RunStatus::Skipped,
        RunStatus::Crashed,
    ];

    /// The name stored in `jobs.run.status`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Starting => "starting",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
            RunStatus::Crashed => "crashed",
        }
    }

    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded
                | RunStatus::Failed
                | RunStatus::TimedOut
                | RunStatus::Cancelled
                | RunStatus::Skipped
                | RunStatus::Crashed
        )
    }

    /// Whether a failed run of this status may be retried (attempts permitting).
    pub const fn is_retryable(self) -> bool {
        matches!(self, RunStatus::Failed | RunStatus::TimedOut | RunStatus::Crashed)
    }

    /// Whether a run may move from `self` to `to`. Staying put is not a
    /// transition. Any non-terminal state may become `crashed`, because a
    /// worker can vanish at any point; nothing leaves a terminal state.
    pub fn can_become(self, to: RunStatus) -> bool {
        use RunStatus::*;
        match (self, to) {
            (from, _) if from.is_terminal() => false,
            (_, Crashed) => true,
            (Queued, Starting) => true,
            (Starting, Running) => true,
            (Running, Succeeded | Failed | TimedOut | Cancelled) => true,
            (Queued | Starting, Cancelled) => true,
            _ => false,
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown run status \"{0}\"")]
pub struct UnknownStatus(pub String);

impl FromStr for RunStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::*;

    #[test]
    fn names_round_trip() {
        for st in RunStatus::ALL {
            assert_eq!(st.as_str().parse::<RunStatus>().unwrap(), st);
        }
        assert!("done".parse::<RunStatus>().is_err());
    }

    #[test]
    fn happy_path_is_legal() {
        assert!(Queued.can_become(Starting));
        assert!(Starting.can_become(Running));
        assert!(Running.can_become(Succeeded));
        assert!(Running.can_become(Failed));
    }

    #[test]
    fn the_terminal_states() {
        let terminal: Vec<&str> = RunStatus::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            terminal,
            [
                "succeeded",
                "failed",
                "timed_out",
                "cancelled",
                "skipped",
                "crashed"
            ]
        );
        assert!(
            Queued.can_become(Cancelled) && Running.can_become(Cancelled) && !Succeeded.can_become(Cancelled)
        );
    }

    #[test]
    fn terminal_states_are_final() {
        for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to} must be illegal");
            }
        }
    }

    #[test]
    fn every_live_state_can_crash_and_none_skips_ahead() {
        for from in [Queued, Starting, Running] {
            assert!(from.can_become(Crashed));
        }
        assert!(
            !Queued.can_become(Running),
            "a run must be picked up before it runs"
        );
        assert!(!Queued.can_become(Succeeded));
        assert!(!Starting.can_become(Failed));
        assert!(!Running.can_become(Queued));
    }
}
