//! What happens when a job comes due while an earlier run of it is still
//! queued or running.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Record a `skipped` run; never two at once (the default).
    Skip,
    /// Keep at most one pending run, started when the current one ends.
    Queue,
    /// Start regardless: runs may overlap.
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDue {
    /// Queue a run.
    Enqueue,
    /// Record a `skipped` run.
    Skip,
    /// Do nothing: a run is already pending.
    AlreadyPending,
}

impl Overlap {
    pub const NAMES: &'static str = "skip, queue or allow";

    /// `active`: runs of the job starting or running; `pending`: queued.
    pub fn on_due(self, active: u32, pending: u32) -> OnDue {
        match self {
            Overlap::Allow => OnDue::Enqueue,
            Overlap::Skip if active + pending > 0 => OnDue::Skip,
            Overlap::Skip => OnDue::Enqueue,
            Overlap::Queue if pending > 0 => OnDue::AlreadyPending,
            Overlap::Queue => OnDue::Enqueue,
        }
    }

    /// Whether a queued run may start while `active` runs of the job go on.
    pub fn may_start(self, active: u32) -> bool {
        self == Overlap::Allow || active == 0
    }
}

impl FromStr for Overlap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            "allow" => Ok(Overlap::Allow),
            other => Err(format!("overlap must be {}, not \"{other}\"", Overlap::NAMES)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        use OnDue::*;
        assert_eq!(Overlap::Skip.on_due(0, 0), Enqueue);
        assert_eq!(Overlap::Skip.on_due(1, 0), Skip);
        assert_eq!(Overlap::Skip.on_due(0, 1), Skip);
        assert_eq!(Overlap::Queue.on_due(1, 0), Enqueue);
        assert_eq!(Overlap::Queue.on_due(1, 1), AlreadyPending);
        assert_eq!(Overlap::Allow.on_due(5, 5), Enqueue);
        assert!(!Overlap::Queue.may_start(1) && Overlap::Queue.may_start(0) && Overlap::Allow.may_start(3));
        assert_eq!("queue".parse::<Overlap>(), Ok(Overlap::Queue));
        assert_eq!(
            "sometimes".parse::<Overlap>().unwrap_err(),
            "overlap must be skip, queue or allow, not \"sometimes\""
        );
    }
}
