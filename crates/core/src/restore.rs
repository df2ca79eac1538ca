//! What a queue, job or daemon brought back by a restore (`pg_restore`,
//! `psql` of a plain dump) becomes, so that restoring never runs anything
//! by surprise and never as someone else (issue 18):
//!
//! * its owner is found by name (or, in its own cluster, by OID) — if no
//!   such role exists here, it comes back paused (a queue paused, a daemon
//!   stopped), owned by no role, saying why;
//! * a one-off whose instant has passed comes back paused ("not replayed"),
//!   unless it has `catch_up`, which runs it once at once;
//! * an `@reboot` job counts as made now: `@reboot` runs the jobs made
//!   before a server start, so it waits for the next one;
//! * a job or daemon that ran in its own database runs in the database it
//!   is restored into; one aimed at another keeps that name.
//!
//! The extension's restore trigger asks [`restore`] for each definition.

use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Queue,
    Job,
    Daemon,
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Kind, String> {
        match s {
            "queue" => Ok(Kind::Queue),
            "job" => Ok(Kind::Job),
            "daemon" => Ok(Kind::Daemon),
            other => Err(format!("unknown kind of definition \"{other}\"")),
        }
    }
}

/// A definition as the dump has it, and whether its owner exists here.
#[derive(Debug, Clone)]
pub struct Dumped<'a> {
    pub kind: Kind,
    /// The owner's name, as the dump has it.
    pub owner: &'a str,
    /// A role of that name (or, in its own cluster, that OID) exists here.
    pub owner_found: bool,
    /// Enabled (a job, a daemon) or not paused (a queue), as dumped.
    pub enabled: bool,
    /// A job's schedule (`None`: it runs after another job).
    pub schedule: Option<&'a str>,
    /// A one-off job's instant.
    pub once_at: Option<Timestamp>,
    pub catch_up: bool,
}

/// What the restored row gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// Enabled (a queue: not paused).
    pub enabled: bool,
    /// Why it was left paused (shown in `jobs.job_status` for a job).
    pub reason: Option<String>,
    /// Its creation is the restore's (an `@reboot` job).
    pub created_now: bool,
}

/// What definition `d` becomes when restored at `now`.
pub fn restore(d: &Dumped, now: Timestamp) -> Restored {
    let reboot = d.kind == Kind::Job
        && d.schedule
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("@reboot"));
    let reason = if !d.owner_found {
        Some(format!(
            "restored without its owner: role {} does not exist in this cluster",
            quote_ident(d.owner)
        ))
    } else if d.kind == Kind::Job && d.enabled && !d.catch_up && d.once_at.is_some_and(|at| at < now) {
        d.once_at
            .map(|at| format!("restored after its one-off instant ({at}): not replayed"))
    } else {
        None
    };
    Restored {
        enabled: d.enabled && reason.is_none(),
        reason,
        created_now: reboot,
    }
}

/// The database a restored job or daemon runs in: `current` (the one it
/// is restored into) if it ran in its own database (`home`), else the one
/// it `named`.
pub fn database<'a>(home: bool, named: &'a str, current: &'a str) -> &'a str {
    if home {
        current
    } else {
        named
    }
}

/// A role name as SQL writes it: bare if it is a plain lower-case
/// identifier, else double-quoted (quotes doubled).
pub fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn job<'a>(schedule: &'a str, once_at: Option<Timestamp>) -> Dumped<'a> {
        Dumped {
            kind: Kind::Job,
            owner: "alice",
            owner_found: true,
            enabled: true,
            schedule: Some(schedule),
            once_at,
            catch_up: false,
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_recurring_job_comes_back_as_it_was() {
        let r = restore(&job("*/5 * * * *", None), at("2026-11-30T10:00:00Z"));
        assert_eq!(
            r,
            Restored {
                enabled: true,
                reason: None,
                created_now: false
            }
        );
        let paused = Dumped {
            enabled: false,
            ..job("*/5 * * * *", None)
        };
        assert!(!restore(&paused, at("2026-11-30T10:00:00Z")).enabled);
    }

    #[test]
    fn a_missing_owner_pauses_every_kind_and_names_the_role() {
        for kind in [Kind::Queue, Kind::Job, Kind::Daemon] {
            let d = Dumped {
                kind,
                owner: "Carol",
                owner_found: false,
                ..job("1 second", None)
            };
            let r = restore(&d, at("2026-11-30T10:00:00Z"));
            assert!(!r.enabled, "{kind:?}");
            assert_eq!(
                r.reason.as_deref(),
                Some("restored without its owner: role \"Carol\" does not exist in this cluster")
            );
        }
    }

    #[test]
    fn a_passed_one_off_is_not_replayed_unless_it_catches_up() {
        let once = at("2026-11-30T09:00:00Z");
        let now = at("2026-11-30T10:00:00Z");
        let r = restore(&job("2026-11-30 09:00:00+00", Some(once)), now);
        assert!(!r.enabled);
        assert!(r.reason.unwrap().ends_with("not replayed"));
        let catch_up = Dumped {
            catch_up: true,
            ..job("2026-11-30 09:00:00+00", Some(once))
        };
        assert!(restore(&catch_up, now).enabled);
        // Still to come: restored as it was.
        assert!(restore(&job("x", Some(at("2026-11-30T11:00:00Z"))), now).enabled);
        // Already paused: stays paused, with no reason of ours.
        let paused = Dumped {
            enabled: false,
            ..job("x", Some(once))
        };
        assert_eq!(restore(&paused, now).reason, None);
    }

    #[test]
    fn an_at_reboot_job_is_made_anew() {
        let now = at("2026-11-30T10:00:00Z");
        assert!(restore(&job("@reboot", None), now).created_now);
        assert!(restore(&job(" @REBOOT ", None), now).created_now);
        let daemon = Dumped {
            kind: Kind::Daemon,
            ..job("@reboot", None)
        };
        assert!(!restore(&daemon, now).created_now);
    }

    #[test]
    fn own_database_jobs_follow_the_restore() {
        assert_eq!(database(true, "app", "staging"), "staging");
        assert_eq!(database(false, "reports", "staging"), "reports");
    }

    #[test]
    fn names_are_quoted_as_sql_writes_them() {
        assert_eq!(quote_ident("alice"), "alice");
        assert_eq!(quote_ident("_x1$"), "_x1$");
        assert_eq!(quote_ident("Bob"), "\"Bob\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("1a"), "\"1a\"");
        assert_eq!(quote_ident(""), "\"\"");
    }

    proptest! {
        /// A restore never enables what the dump had paused, and anything
        /// it leaves paused of its own accord says why.
        #[test]
        fn restoring_never_enables_and_explains_what_it_pauses(
            owner_found: bool, enabled: bool, catch_up: bool, once in proptest::option::of(-1000i64..1000),
        ) {
            let now = at("2026-11-30T10:00:00Z");
            let d = Dumped {
                kind: Kind::Job,
                owner: "alice",
                owner_found,
                enabled,
                schedule: Some("x"),
                once_at: once.map(|s| now + jiff::SignedDuration::from_secs(s)),
                catch_up,
            };
            let r = restore(&d, now);
            prop_assert!(!r.enabled || enabled);
            prop_assert_eq!(enabled && !r.enabled, r.reason.is_some() && enabled);
            prop_assert!(owner_found || !r.enabled);
        }
    }
}
