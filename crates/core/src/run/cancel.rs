//! `jobs.cancel`: who settles a run the user wants stopped.
//!
//! A run no executor has started is cancelled right there, by the caller
//! ([`RunEvent::Cancel`]). One an executor is running is interrupted; its
//! executor reports `cancelled` and the scheduler records it
//! ([`crate::run::outcome::classify_error`], then a harvest). The decision
//! is made with the run's row locked and after asking the registry who
//! holds the run.

use super::status::RunStatus;
use super::transition::RunEvent;

/// What the registry says about the run's executor (the shell's
/// `registry::Cancel`), after flagging or withdrawing the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// No executor holds the run.
    NotHeld,
    /// Its executor has exited; the scheduler will write its outcome.
    Exited,
    /// Its executor holds it as its current run: flagged, and interrupted
    /// if its command is going.
    Interrupted,
    /// It was reserved by a pooled executor and had not started: taken back.
    Withdrawn,
}

/// What `jobs.cancel` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Mark it cancelled here (`jobs.cancel` returns true).
    MarkCancelled,
    /// Its executor stops it and reports (`jobs.cancel` returns true).
    LeftToExecutor,
    /// Finished, or finishing without us (`jobs.cancel` returns false).
    NothingToCancel,
}

/// Whether the registry must be asked before deciding (only a run that may
/// be held by an executor: not a queued or waiting one, not a finished one).
pub const fn needs_holder(status: RunStatus) -> bool {
    !status.is_terminal() && !matches!(status, RunStatus::Queued | RunStatus::Waiting)
}

/// Decide, with the row locked: `holder` is the registry's answer, `None`
/// when it was not asked ([`needs_holder`] false). Marks cancelled only
/// where the model admits [`RunEvent::Cancel`], so a run the table shows
/// `running` is never cancelled behind its executor's back.
pub fn decide(status: RunStatus, holder: Option<Holder>) -> Verdict {
    if status.is_terminal() {
        return Verdict::NothingToCancel;
    }
    match holder {
        Some(Holder::Interrupted) => Verdict::LeftToExecutor,
        Some(Holder::Exited) => Verdict::NothingToCancel,
        // Withdrawn from a reservation, or `starting` and held by nobody (on
        // its way back to the queue, whose requeue then finds it cancelled,
        // or orphaned, soon crash-swept): it never started either way.
        None | Some(Holder::NotHeld | Holder::Withdrawn) if status.on(RunEvent::Cancel).is_ok() => {
            Verdict::MarkCancelled
        }
        // `running` with no executor: the crash sweep records it.
        _ => Verdict::NothingToCancel,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunStatus::*;

    #[test]
    fn verdicts() {
        assert!(
            !needs_holder(Queued) && needs_holder(Starting) && needs_holder(Running) && !needs_holder(Failed)
        );
        assert_eq!(decide(Queued, None), Verdict::MarkCancelled);
        assert_eq!(decide(Starting, Some(Holder::Withdrawn)), Verdict::MarkCancelled);
        assert_eq!(decide(Starting, Some(Holder::NotHeld)), Verdict::MarkCancelled);
        assert_eq!(
            decide(Starting, Some(Holder::Interrupted)),
            Verdict::LeftToExecutor
        );
        assert_eq!(
            decide(Running, Some(Holder::Interrupted)),
            Verdict::LeftToExecutor
        );
        assert_eq!(decide(Running, Some(Holder::NotHeld)), Verdict::NothingToCancel);
        assert_eq!(decide(Running, Some(Holder::Exited)), Verdict::NothingToCancel);
        assert_eq!(
            decide(Running, Some(Holder::Withdrawn)),
            Verdict::NothingToCancel,
            "the shell would write running -> cancelled here; the model does not allow it"
        );
        for s in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert_eq!(decide(s, Some(Holder::Interrupted)), Verdict::NothingToCancel);
        }
    }

    #[test]
    fn marking_cancelled_is_always_a_legal_transition() {
        let holders = [
            None,
            Some(Holder::NotHeld),
            Some(Holder::Exited),
            Some(Holder::Interrupted),
            Some(Holder::Withdrawn),
        ];
        for s in RunStatus::ALL {
            for h in holders {
                if decide(s, h) == Verdict::MarkCancelled {
                    assert_eq!(s.on(RunEvent::Cancel), Ok(Cancelled), "{s} {h:?}");
                }
            }
        }
    }
}
