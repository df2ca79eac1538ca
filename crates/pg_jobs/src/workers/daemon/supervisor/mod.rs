//! Daemon supervision, by the scheduler of the database that defines them.
//!
//! Each scheduler pass calls [`Supervisor::observe`] inside its transaction
//! — (re)read the definitions when they changed or a start is due, and
//! take in the exits of daemon processes (recorded in `jobs.daemon` on a
//! primary) — and [`Supervisor::act`] after it commits: start the daemons
//! that should run and may (their restart delay is over), stop the ones
//! that should not (cancel, then terminate after a grace period), and
//! publish every daemon's status to the registry for `jobs.daemon_status`.
//!
//! Every decision is `pg_jobs_core::daemon`'s: where a daemon runs
//! (`run_on` against `RecoveryInProgress()`), why it cannot start, and its
//! lifecycle ([`Life`]: [`Life::tick`] says what to do, [`Life::on`] takes
//! in what happened, restart backoff included). This module reads the
//! catalogs and the registry and starts and signals processes. A scheduler
//! that restarts finds its daemons' processes still running and adopts
//! them; their restart counts are kept in the registry (and, on a primary,
//! in `jobs.daemon`).
//!
//! Bounds: at most `pg_jobs.max_daemons` daemon processes run cluster-wide
//! (a daemon over it waits as `no_daemon_slot`, woken when any daemon
//! process ends); each daemon's process starts at most once a second
//! (core's [`Life`]); and the daemons of one role start at most
//! `pg_jobs.max_daemons_per_role` processes a second in this database
//! ([`StartBudget`]; superusers' daemons are not bounded by it).

mod exits;
mod load;
mod start;

use crate::catalog::{self, daemons::DaemonRow};

use crate::gucs;

use crate::exec::command_segment::Segment;
use crate::pg::error::OrRaise;

use crate::pg::bgw::{self, DynamicWorker, HandleStatus, WorkerHandle};

use crate::shmem::{self, DaemonEntry, Kind, Outcome, Reservation, SlotRef};

use pg_jobs_core::daemon::{
    self, idle_state, Action, CannotStart, DaemonEvent, DaemonState, Exit, Facts, Life, RestartDelays, RunOn,
    StartBudget, DAEMON_SLOT_RECHECK, MIN_RESTART_DELAY, STOP_GRACE_MS,
};

use pg_jobs_core::run::start::Owner;

use pgrx::bgworkers::BgWorkerStartTime;

use pgrx::prelude::*;

use pgrx::spi::SpiClient;

use std::collections::HashMap;

/// A reserved daemon slot that no process claimed in this long is reclaimed.
const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;

/// A daemon's definition, as read from `jobs.daemon`.
#[derive(Clone, PartialEq)]
struct Def {
    name: String,
    owner: pg_sys::Oid,
    database: String,
    /// The database's OID; `None` if it does not exist (any more).
    target: Option<pg_sys::Oid>,
    command: String,
    run_on: RunOn,
    delays: RestartDelays,
    enabled: bool,
    /// Why it cannot start now: a dropped role, NOLOGIN, no CONNECT, no database.
    refusal: Option<CannotStart>,
    /// Its owner is a superuser: its starts are not counted in a role's budget.
    owner_is_superuser: bool,
}

impl Def {
    /// From a definition as the catalog has it; its id and stored restart count.
    fn from_row(r: DaemonRow) -> (i64, Def, i64) {
        let owner = r.role_exists.unwrap_or(false).then(|| Owner {
            // NULL (unknown) does not refuse, as a false does.
            can_login: r.can_login != Some(false),
            can_connect: r.can_connect != Some(false),
        });
        let allows_connections = r.allows_connections != Some(false);
        let def = Def {
            name: r.name,
            owner: r.owner,
            database: r.database,
            target: r.target,
            command: r.command,
            run_on: r.run_on.parse::<RunOn>().or_raise("reading a daemon's run_on"),
            delays: clamped_delays(r.restart_delay_ms, r.max_restart_delay_ms),
            enabled: r.enabled,
            refusal: daemon::refusal(r.target.is_some(), owner, allows_connections),
            owner_is_superuser: r.owner_is_superuser == Some(true),
        };
        (r.id, def, r.restarts)
    }

    /// Whether a running process of `self` must be restarted to become `new`.
    fn needs_restart_for(&self, new: &Def) -> bool {
        self.owner != new.owner
            || self.target != new.target
            || self.command != new.command
            || self.run_on != new.run_on
    }
}

/// A definition's restart delays, at least [`MIN_RESTART_DELAY`]: one
/// stored by an older version with less (100 ms was allowed) is read as that.
fn clamped_delays(restart_delay_ms: i64, max_restart_delay_ms: i64) -> RestartDelays {
    let restart_delay = (restart_delay_ms.max(0) as u64).max(MIN_RESTART_DELAY);
    RestartDelays {
        restart_delay,
        max_restart_delay: (max_restart_delay_ms.max(0) as u64).max(restart_delay),
    }
}

struct LastExit {
    exit: Exit,
    at: i64,
    sqlstate: String,
    message: String,
}

/// A daemon process we started (or adopted).
struct Worker {
    slot: SlotRef,
    /// `None` for a process adopted from an earlier life of this scheduler.
    handle: Option<WorkerHandle>,
    /// The command, mapped until the process has read it.
    _segment: Option<Segment>,
}

struct Daemon {
    def: Def,
    /// Where it is in its life (`life.has_process` ⇔ `worker.is_some()`).
    life: Life,
    worker: Option<Worker>,
    last_exit: Option<LastExit>,
}

pub struct Supervisor {
    home_db: pg_sys::Oid,
    daemons: HashMap<i64, Daemon>,
    loaded: bool,
    schema_has_daemons: bool,
    /// Recent starts per owner role, for `pg_jobs.max_daemons_per_role`.
    budget: StartBudget,
}

fn now() -> i64 {
    // SAFETY: GetCurrentTimestamp only reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

impl Daemon {
    /// New to this scheduler: a new daemon, or one an earlier life of this
    /// scheduler supervised (`published`: its status in the registry).
    fn new(def: Def, published: Option<&DaemonEntry>, stored_restarts: i64) -> Daemon {
        let e = published;
        Daemon {
            def,
            life: Life::new(
                e.map_or_else(now, |e| e.since),
                e.and_then(|e| (e.next_start != 0).then_some(e.next_start)),
                e.map_or(stored_restarts, |e| e.restarts.max(stored_restarts)),
            ),
            worker: None,
            last_exit: e.and_then(|e| {
                Some(LastExit {
                    exit: Exit::from_u8(e.last_exit)?,
                    at: e.last_exit_at,
                    sqlstate: e.sqlstate(),
                    message: e.message(),
                })
            }),
        }
    }
}

impl Supervisor {
    pub fn new(home_db: pg_sys::Oid) -> Supervisor {
        Supervisor {
            home_db,
            daemons: HashMap::new(),
            loaded: false,
            schema_has_daemons: false,
            budget: StartBudget::default(),
        }
    }

    /// Inside the pass's transaction: read the definitions if `reload` (or a
    /// start is due: the role or database may have changed since), and take
    /// in the exits of daemon processes, recording them if `persist`.
    pub fn observe(&mut self, client: &mut SpiClient, reload: bool, persist: bool) {
        let t = now();
        // A daemon process ended somewhere (its exit woke us) or the cap was
        // raised: daemons waiting for a daemon slot may try now.
        if self
            .daemons
            .values()
            .any(|d| d.life.state == DaemonState::NoDaemonSlot)
            && shmem::daemon_processes() < gucs::max_daemons()
        {
            for d in self.daemons.values_mut() {
                d.life.on(DaemonEvent::DaemonSlotFreed, t);
            }
        }
        let due = self.daemons.values().any(|d| d.life.start_due(d.def.enabled, t));
        if reload || due || !self.loaded {
            // Daemons came with 0.2.0: a database still on 0.1.0 (until
            // ALTER EXTENSION pg_jobs UPDATE, which makes us reload) has none.
            self.schema_has_daemons = crate::catalog::schema_version::has_daemons(client);
            if !self.schema_has_daemons {
                self.loaded = true;
                return;
            }
            self.load(client);
        }
        if self.schema_has_daemons {
            self.harvest(client, persist);
        }
    }

    /// After the pass commits: start and stop daemons as their definitions
    /// and this node say; publish their status. Returns when to look again
    /// (a restart delay or a stop's grace period ending), as a TimestampTz.
    pub fn act(&mut self, in_recovery: bool) -> Option<i64> {
        let t = now();
        let mut wake: Option<i64> = None;
        let home_db = self.home_db;
        self.budget.prune(t);
        for (id, d) in self.daemons.iter_mut() {
            if let Some(at) = d.act(home_db, *id, in_recovery, t, &mut self.budget) {
                wake = Some(wake.map_or(at, |w: i64| w.min(at)));
            }
        }
        self.publish();
        wake
    }

    fn publish(&self) {
        let entries: Vec<DaemonEntry> = self
            .daemons
            .iter()
            .map(|(id, d)| {
                let mut e = DaemonEntry::default();
                e.daemon_id = *id;
                e.owner = d.def.owner.to_u32();
                e.state = d.life.state as u8;
                e.pid = d
                    .worker
                    .as_ref()
                    .and_then(|w| shmem::slot(w.slot))
                    .map_or(0, |s| s.pid);
                e.since = d.life.since;
                e.restarts = d.life.restarts;
                if d.life.state == DaemonState::WaitingRestart {
                    e.next_start = d.life.next_start.unwrap_or(0);
                }
                if let Some(l) = &d.last_exit {
                    e.last_exit = l.exit.as_u8();
                    e.last_exit_at = l.at;
                    e.set_sqlstate(&l.sqlstate);
                    e.set_message(&l.message);
                }
                e
            })
            .collect();
        if !shmem::publish_daemons(self.home_db, &entries) {
            warning!(
                "pg_jobs: more than {} daemons: jobs.daemon_status does not show them all",
                shmem::MAX_DAEMONS
            );
        }
    }

    /// The scheduler is going away for good (extension dropped, pg_jobs
    /// disabled): its daemons go too.
    pub fn terminate_all(&mut self) {
        for d in self.daemons.values() {
            if let Some(w) = &d.worker {
                shmem::signal(w.slot, libc::SIGTERM);
            }
        }
        self.daemons.clear();
        shmem::publish_daemons(self.home_db, &[]);
    }
}
