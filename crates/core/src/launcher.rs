//! What the launcher does for one database, decided from what it observes.
//!
//! The launcher connects to no database, so it cannot look inside one to see
//! whether `pg_jobs` is installed there. It learns that from two sources:
//! a scheduler it starts (a *probe* when the answer is unknown) reports
//! "absent" and exits, and the utility hook in every backend reports
//! CREATE/DROP EXTENSION and DROP DATABASE as they commit.

use crate::backoff::Millis;

/// Whether a database has the extension, as far as the launcher knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExtPresence {
    /// Never checked (new database, or launcher just started): probe it.
    #[default]
    Unknown,
    Present,
    Absent,
}

/// The database's scheduler as the registry shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerPresence {
    /// No registry entry.
    None,
    /// A registry entry reserved by the launcher; the worker has not claimed it yet.
    Starting,
    /// A worker holds the entry.
    Running,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbObservation {
    pub ext: ExtPresence,
    /// A DROP DATABASE (or RENAME) of it is in progress: keep out.
    pub evicting: bool,
    pub scheduler: SchedulerPresence,
    /// Earliest moment a (re)start is allowed (restart backoff).
    pub start_not_before: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbAction {
    Nothing,
    /// Start a scheduler (or a probe, when presence is unknown).
    Start,
    /// Ask the running scheduler to exit (SIGTERM).
    Stop,
    /// Nothing now; look again at this moment.
    WakeAt(Millis),
}

/// Decide the action for one database. `enabled` is `pg_jobs.enabled`;
/// `connectable` is false for templates and databases refusing connections.
pub fn plan(enabled: bool, connectable: bool, obs: &DbObservation, now: Millis) -> DbAction {
    let wanted = enabled && connectable && !obs.evicting && obs.ext != ExtPresence::Absent;
    match (wanted, obs.scheduler) {
        (true, SchedulerPresence::None) if obs.start_not_before <= now => DbAction::Start,
        (true, SchedulerPresence::None) => DbAction::WakeAt(obs.start_not_before),
        (true, _) => DbAction::Nothing,
        (false, SchedulerPresence::Running) => DbAction::Stop,
        (false, _) => DbAction::Nothing,
    }
}

/// How long the launcher may sleep: until the earliest `WakeAt`, or until
/// `rescan_at` (its periodic look at `pg_database`). `None`-free by design:
/// the periodic rescan always bounds the sleep.
pub fn sleep_for(actions: &[DbAction], rescan_at: Millis, now: Millis) -> Millis {
    actions
        .iter()
        .filter_map(|a| match a {
            DbAction::WakeAt(t) => Some(*t),
            _ => None,
        })
        .chain(std::iter::once(rescan_at))
        .min()
        .unwrap_or(rescan_at)
        .saturating_sub(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExtPresence::*;
    use SchedulerPresence as S;

    fn obs(ext: ExtPresence, scheduler: SchedulerPresence) -> DbObservation {
        DbObservation {
            ext,
            evicting: false,
            scheduler,
            start_not_before: 0,
        }
    }

    #[test]
    fn unknown_and_present_databases_get_a_scheduler() {
        assert_eq!(plan(true, true, &obs(Unknown, S::None), 5), DbAction::Start);
        assert_eq!(plan(true, true, &obs(Present, S::None), 5), DbAction::Start);
        assert_eq!(plan(true, true, &obs(Present, S::Running), 5), DbAction::Nothing);
        assert_eq!(plan(true, true, &obs(Present, S::Starting), 5), DbAction::Nothing);
    }

    #[test]
    fn absent_costs_nothing() {
        assert_eq!(plan(true, true, &obs(Absent, S::None), 5), DbAction::Nothing);
        assert_eq!(plan(true, true, &obs(Absent, S::Running), 5), DbAction::Stop);
    }

    #[test]
    fn disabled_stops_and_never_starts() {
        assert_eq!(plan(false, true, &obs(Present, S::Running), 5), DbAction::Stop);
        assert_eq!(plan(false, true, &obs(Present, S::None), 5), DbAction::Nothing);
    }

    #[test]
    fn eviction_and_unconnectable_keep_out() {
        let mut o = obs(Present, S::Running);
        o.evicting = true;
        assert_eq!(plan(true, true, &o, 5), DbAction::Stop);
        o.scheduler = S::None;
        assert_eq!(plan(true, true, &o, 5), DbAction::Nothing);
        assert_eq!(plan(true, false, &obs(Unknown, S::None), 5), DbAction::Nothing);
    }

    #[test]
    fn backoff_delays_the_start_and_sets_the_wakeup() {
        let mut o = obs(Present, S::None);
        o.start_not_before = 2_000;
        assert_eq!(plan(true, true, &o, 1_500), DbAction::WakeAt(2_000));
        assert_eq!(plan(true, true, &o, 2_000), DbAction::Start);
        let acts = [DbAction::Nothing, DbAction::WakeAt(2_000), DbAction::Stop];
        assert_eq!(sleep_for(&acts, 60_000, 1_500), 500);
        assert_eq!(sleep_for(&[DbAction::Nothing], 60_000, 1_500), 58_500);
        assert_eq!(sleep_for(&[DbAction::WakeAt(1_000)], 60_000, 1_500), 0);
    }
}
