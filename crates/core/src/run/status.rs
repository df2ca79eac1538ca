//! The statuses a run can have (`jobs.run.status`), and sets of them as the
//! SQL `WHERE status …` guards of the statements that change a run.
//!
//! Which status may follow which is not decided here but by the events of
//! [`super::transition`]: a status only names where a run is.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// Submitted with `depends_on`: waits for its parent runs to finish
    /// (0.4.0), then is queued or skipped ([`super::depends`]).
    Waiting,
}

impl RunStatus {
    /// Every status, in the order of the life of a run (and of
    /// [`StatusSet`]'s bits; `waiting`, which came later, last).
    pub const ALL: [RunStatus; 10] = [
        RunStatus::Queued,
        RunStatus::Starting,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::TimedOut,
        RunStatus::Cancelled,
        RunStatus::Skipped,
        RunStatus::Crashed,
        RunStatus::Waiting,
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
            RunStatus::Waiting => "waiting",
        }
    }

    /// A finished run: no event leaves this status (the transition tests
    /// check that the model agrees).
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

    /// Whether a run that ended in this status may be retried, attempts
    /// permitting (see [`super::retry::decide`] for the whole decision).
    pub const fn is_retryable(self) -> bool {
        matches!(self, RunStatus::Failed | RunStatus::TimedOut | RunStatus::Crashed)
    }

    /// Whether some event takes a run from `self` to `to` (staying put is
    /// not a transition). Derived from the events, never written by hand.
    pub fn can_become(self, to: RunStatus) -> bool {
        super::RunEvent::ALL
            .into_iter()
            .any(|e| e.from_statuses().contains(self) && e.to() == to)
    }

    const fn bit(self) -> u16 {
        1 << self as u16
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

/// A set of statuses: what an event may start from, or what a query
/// selects. Rendered as the SQL guard the statement must carry.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusSet(u16);

impl StatusSet {
    pub const EMPTY: StatusSet = StatusSet(0);
    /// Not finished: `queued`, `starting`, `running`.
    pub const LIVE: StatusSet = StatusSet::of(&[RunStatus::Queued, RunStatus::Starting, RunStatus::Running]);
    /// Not finished, `waiting` included: what the history purge and a
    /// DELETE of finished runs leave alone.
    pub const UNFINISHED: StatusSet = StatusSet::LIVE.with(RunStatus::Waiting);
    /// Held by an executor (or on the way to one): `starting`, `running`.
    pub const IN_FLIGHT: StatusSet = StatusSet::of(&[RunStatus::Starting, RunStatus::Running]);

    pub const fn of(statuses: &[RunStatus]) -> StatusSet {
        let mut bits = 0;
        let mut i = 0;
        while i < statuses.len() {
            bits |= statuses[i].bit();
            i += 1;
        }
        StatusSet(bits)
    }

    pub const fn contains(self, s: RunStatus) -> bool {
        self.0 & s.bit() != 0
    }

    pub const fn with(self, s: RunStatus) -> StatusSet {
        StatusSet(self.0 | s.bit())
    }

    pub const fn union(self, other: StatusSet) -> StatusSet {
        StatusSet(self.0 | other.0)
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The members in [`RunStatus::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = RunStatus> {
        RunStatus::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// The set as a PostgreSQL text-array literal: `'{queued,starting}'`.
    pub fn sql_array(self) -> String {
        let names: Vec<&str> = self.iter().map(RunStatus::as_str).collect();
        format!("'{{{}}}'", names.join(","))
    }

    /// The guard a statement that moves a run out of these statuses
    /// carries, in pg_jobs' schema-qualified style: `column
    /// OPERATOR(pg_catalog.=) 'queued'` for one status (the form the
    /// partial indexes' predicates use), `column OPERATOR(pg_catalog.=) ANY
    /// ('{queued,starting}')` for more. `column` may be qualified (`r.status`).
    pub fn sql_guard(self, column: &str) -> String {
        match self.len() {
            0 => "false".to_owned(),
            1 => format!(
                "{column} OPERATOR(pg_catalog.=) '{}'",
                self.iter().next().map_or("", RunStatus::as_str)
            ),
            _ => format!("{column} OPERATOR(pg_catalog.=) ANY ({})", self.sql_array()),
        }
    }

    /// The negated guard: `column OPERATOR(pg_catalog.<>) ALL ('{…}')`
    /// (e.g. the history purge's "finished runs only").
    pub fn sql_not_in(self, column: &str) -> String {
        match self.len() {
            0 => "true".to_owned(),
            _ => format!("{column} OPERATOR(pg_catalog.<>) ALL ({})", self.sql_array()),
        }
    }
}

impl fmt::Debug for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(RunStatus::as_str).collect();
        write!(f, "{{{}}}", names.join(", "))
    }
}

impl FromIterator<RunStatus> for StatusSet {
    fn from_iter<I: IntoIterator<Item = RunStatus>>(iter: I) -> Self {
        iter.into_iter().fold(StatusSet::EMPTY, StatusSet::with)
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
        let retryable: StatusSet = RunStatus::ALL.into_iter().filter(|s| s.is_retryable()).collect();
        assert_eq!(retryable.to_string(), "{failed, timed_out, crashed}");
    }

    #[test]
    fn guards_render_as_the_shell_writes_them() {
        assert_eq!(
            StatusSet::IN_FLIGHT.sql_guard("r.status"),
            "r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')"
        );
        assert_eq!(
            StatusSet::of(&[Queued]).sql_guard("status"),
            "status OPERATOR(pg_catalog.=) 'queued'"
        );
        assert_eq!(
            StatusSet::LIVE.sql_not_in("status"),
            "status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running}')"
        );
        assert_eq!(StatusSet::EMPTY.sql_guard("status"), "false");
        assert_eq!(format!("{:?}", StatusSet::IN_FLIGHT), "{Starting, Running}");
    }

    #[test]
    fn sets_hold_what_was_put_in() {
        let s = StatusSet::of(&[Running, Queued]);
        assert!(s.contains(Queued) && s.contains(Running) && !s.contains(Starting));
        assert_eq!(s.iter().collect::<Vec<_>>(), [Queued, Running], "in ALL order");
        assert_eq!(s.len(), 2);
        assert_eq!(s.union(StatusSet::IN_FLIGHT), StatusSet::LIVE);
        assert!(StatusSet::EMPTY.is_empty());
    }
}
