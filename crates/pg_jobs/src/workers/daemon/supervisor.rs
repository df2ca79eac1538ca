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

use crate::catalog::{self, daemons::DaemonRow};
use crate::exec::command_segment::Segment;
use crate::pg::bgw::{self, DynamicWorker, HandleStatus, WorkerHandle};
use crate::shmem::{self, DaemonEntry, Kind, Outcome, Reservation, SlotRef};
use pg_jobs_core::daemon::{
    self, idle_state, Action, CannotStart, DaemonEvent, DaemonState, Exit, Facts, Life, RestartDelays, RunOn,
    STOP_GRACE_MS,
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
            owner: r.owner.unwrap_or(pg_sys::InvalidOid),
            database: r.database,
            target: r.target,
            command: r.command,
            run_on: r.run_on.and_then(|s| s.parse().ok()).unwrap_or(RunOn::Primary),
            delays: RestartDelays {
                restart_delay: r.restart_delay_ms.unwrap_or(5_000).max(0) as u64,
                max_restart_delay: r.max_restart_delay_ms.unwrap_or(300_000).max(0) as u64,
            },
            enabled: r.enabled.unwrap_or(false),
            refusal: daemon::refusal(r.target.is_some(), owner, allows_connections),
        };
        (r.id, def, r.restarts.unwrap_or(0))
    }

    /// Whether a running process of `self` must be restarted to become `new`.
    fn needs_restart_for(&self, new: &Def) -> bool {
        self.owner != new.owner
            || self.target != new.target
            || self.command != new.command
            || self.run_on != new.run_on
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

pub struct Supervisor {
    home_db: pg_sys::Oid,
    daemons: HashMap<i64, Daemon>,
    loaded: bool,
    schema_has_daemons: bool,
}

fn now() -> i64 {
    // SAFETY: GetCurrentTimestamp only reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

impl Supervisor {
    pub fn new(home_db: pg_sys::Oid) -> Supervisor {
        Supervisor {
            home_db,
            daemons: HashMap::new(),
            loaded: false,
            schema_has_daemons: false,
        }
    }

    /// Inside the pass's transaction: read the definitions if `reload` (or a
    /// start is due: the role or database may have changed since), and take
    /// in the exits of daemon processes, recording them if `persist`.
    pub fn observe(&mut self, client: &mut SpiClient, reload: bool, persist: bool) {
        let t = now();
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

    fn load(&mut self, client: &mut SpiClient) {
        let rows = catalog::daemons::load(client);
        let mut seen = Vec::new();
        let published: HashMap<i64, DaemonEntry> = shmem::daemon_entries(self.home_db)
            .into_iter()
            .map(|e| (e.daemon_id, e))
            .collect();
        let t = now();
        for r in rows {
            let (id, def, stored_restarts) = Def::from_row(r);
            seen.push(id);
            match self.daemons.get_mut(&id) {
                Some(d) => {
                    let event = DaemonEvent::Redefined {
                        changed: d.def.needs_restart_for(&def),
                        enabled_again: !d.def.enabled && def.enabled,
                    };
                    d.life.on(event, t);
                    d.def = def;
                }
                None => {
                    let d = Daemon::new(def, published.get(&id), stored_restarts);
                    self.daemons.insert(id, d);
                }
            }
        }
        for (id, d) in self.daemons.iter_mut() {
            if !seen.contains(id) {
                d.life.on(DaemonEvent::Dropped, t);
            }
        }
        self.daemons.retain(|_, d| !d.life.forgotten());
        if !self.loaded {
            self.adopt();
        }
        self.loaded = true;
    }

    /// Attach the live daemon processes an earlier life of this scheduler
    /// started; terminate those whose daemon is gone.
    fn adopt(&mut self) {
        for (r, s) in shmem::daemons_of(self.home_db) {
            if !s.phase().has_process() {
                continue; // harvested below, or reaped once unclaimed for long
            }
            match self.daemons.get_mut(&s.job_id) {
                Some(d) if d.worker.is_none() => {
                    d.life.on(
                        DaemonEvent::Adopted {
                            started_at: s.started_at,
                        },
                        now(),
                    );
                    d.worker = Some(Worker {
                        slot: r,
                        handle: None,
                        _segment: None,
                    });
                }
                _ => {
                    shmem::signal(r, libc::SIGTERM);
                }
            }
        }
    }

    /// Take in daemon processes that ended: how, and when to start them again.
    fn harvest(&mut self, client: &mut SpiClient, persist: bool) {
        for id in self.never_started() {
            self.ended(
                client,
                persist,
                id,
                Exit::Crash,
                0,
                "",
                "the daemon's worker process did not start",
            );
        }
        if !self
            .daemons
            .values()
            .any(|d| d.worker.as_ref().is_some_and(|w| w.handle.is_some()))
        {
            shmem::reap_unclaimed(Kind::Daemon, self.home_db, UNCLAIMED_SLOT_TIMEOUT_US);
        }
        for (r, s) in shmem::daemons_of(self.home_db) {
            if !s.exited() {
                continue;
            }
            shmem::release(r);
            let ours = self
                .daemons
                .get(&s.job_id)
                .is_some_and(|d| d.worker.as_ref().is_some_and(|w| w.slot == r));
            if !ours {
                continue; // a process whose daemon we had already let go of
            }
            let (exit, code, message) = match s.outcome {
                Outcome::Succeeded => (Exit::Clean, String::new(), String::new()),
                Outcome::Nothing => (
                    Exit::Crash,
                    String::new(),
                    "the daemon's process ended without reporting (terminated, crashed, or could not connect)"
                        .to_owned(),
                ),
                _ => (Exit::Error, s.sqlstate(), s.message()),
            };
            let uptime_ms = if s.started_at != 0 {
                ((s.finished_at - s.started_at) / 1000).max(0) as u64
            } else {
                0
            };
            self.ended(client, persist, s.job_id, exit, uptime_ms, &code, &message);
        }
    }

    /// Our own workers that the postmaster reports gone without ever
    /// claiming their slot (they failed before connecting): their slots are
    /// freed; their daemons' ids are returned.
    fn never_started(&self) -> Vec<i64> {
        let mut ids = Vec::new();
        for (id, d) in &self.daemons {
            if let Some(w) = &d.worker {
                if w.handle
                    .as_ref()
                    .is_some_and(|h| h.status() == HandleStatus::Stopped)
                    && shmem::slot(w.slot).is_some_and(|s| s.phase().unclaimed())
                {
                    shmem::release_unclaimed(w.slot);
                    ids.push(*id);
                }
            }
        }
        ids
    }

    /// Daemon `id`'s process is gone: the lifecycle decides what comes next;
    /// log it, and record it in `jobs.daemon` if `persist`.
    #[allow(clippy::too_many_arguments)]
    fn ended(
        &mut self,
        client: &mut SpiClient,
        persist: bool,
        id: i64,
        exit: Exit,
        uptime_ms: u64,
        sqlstate: &str,
        message: &str,
    ) {
        let Some(d) = self.daemons.get_mut(&id) else {
            return;
        };
        d.worker = None;
        let t = now();
        let event = DaemonEvent::Exited {
            exit,
            uptime_ms,
            enabled: d.def.enabled,
            delays: d.def.delays,
        };
        let Some(e) = d.life.on(event, t) else {
            return;
        };
        d.last_exit = Some(LastExit {
            exit,
            at: t,
            sqlstate: sqlstate.to_owned(),
            message: message.to_owned(),
        });
        let what = match exit {
            _ if e.stopping => "stopped".to_owned(),
            Exit::Clean => "returned".to_owned(),
            Exit::Error => format!("failed: {message} (SQLSTATE {sqlstate})"),
            Exit::Crash => format!("crashed: {message}"),
        };
        let next = match e.next_start {
            _ if !e.restarting => "it stays stopped".to_owned(),
            None => "restarting it now".to_owned(),
            Some(at) => format!("restarting it in {} ms", (at - t) / 1000),
        };
        log!("pg_jobs: daemon \"{}\" {what}; {next}", d.def.name);
        if persist && !d.life.dropped {
            catalog::daemons::record_exit(
                client,
                id,
                &catalog::daemons::ExitRecord {
                    restarting: e.restarting,
                    exit: exit.as_str(),
                    sqlstate,
                    message,
                },
            );
        }
        if d.life.dropped {
            self.daemons.remove(&id);
        }
    }

    /// After the pass commits: start and stop daemons as their definitions
    /// and this node say; publish their status. Returns when to look again
    /// (a restart delay or a stop's grace period ending), as a TimestampTz.
    pub fn act(&mut self, in_recovery: bool) -> Option<i64> {
        let t = now();
        let mut wake: Option<i64> = None;
        let home_db = self.home_db;
        for (id, d) in self.daemons.iter_mut() {
            if let Some(at) = d.act(home_db, *id, in_recovery, t) {
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

impl Daemon {
    /// After the pass commits: what its lifecycle says to do now, done.
    /// Returns when to look at it again.
    fn act(&mut self, home_db: pg_sys::Oid, id: i64, in_recovery: bool, t: i64) -> Option<i64> {
        let idle = if self.life.dropped {
            Some(DaemonState::Stopped)
        } else {
            idle_state(self.def.enabled, self.def.run_on, in_recovery)
        };
        let process_started_at = self
            .worker
            .as_ref()
            .and_then(|w| shmem::slot(w.slot))
            .filter(|s| s.pid != 0 && s.started_at != 0)
            .map(|s| s.started_at);
        let facts = Facts {
            idle,
            refused: self.def.refusal.is_some(),
            process_started_at,
            delays: self.def.delays,
        };
        let (action, wake) = self.life.tick(t, &facts);
        match action {
            Action::Nothing => wake,
            Action::Cancel => {
                self.signal(libc::SIGINT);
                wake
            }
            Action::Terminate => {
                log!(
                    "pg_jobs: daemon \"{}\" ignored the cancel for {STOP_GRACE_MS} ms; terminating it",
                    self.def.name
                );
                self.signal(libc::SIGTERM);
                wake
            }
            Action::Refuse => {
                self.refused(t);
                wake
            }
            Action::Start => self.start(home_db, id, t),
        }
    }

    fn signal(&self, signal: i32) {
        if let Some(w) = &self.worker {
            shmem::signal(w.slot, signal);
        }
    }

    /// It cannot start as defined: recorded as its last exit, and logged.
    fn refused(&mut self, t: i64) {
        let Some(why) = self.def.refusal else {
            return;
        };
        let message = why.message(&self.def.database);
        warning!("pg_jobs: daemon \"{}\" cannot start: {message}", self.def.name);
        self.last_exit = Some(LastExit {
            exit: Exit::Error,
            at: t,
            sqlstate: why.sqlstate().to_owned(),
            message,
        });
    }

    /// Start its process; when there is no background worker slot, say so
    /// and return when to try again.
    fn start(&mut self, home_db: pg_sys::Oid, id: i64, t: i64) -> Option<i64> {
        if let Some(w) = start(home_db, id, &self.def) {
            self.worker = Some(w);
            self.life.on(DaemonEvent::Started, t);
            return None;
        }
        // No background worker slot. Idle pooled executors hold some: ask
        // one to go (its exit wakes us), else look again in a second.
        let retry_ms = if shmem::retire_one_idle() { 50 } else { 1_000 };
        if self.life.state != DaemonState::NoWorkerSlot {
            warning!(
                "pg_jobs: no free background worker slot for daemon \"{}\" (max_worker_processes); it waits",
                self.def.name
            );
        }
        self.life.on(DaemonEvent::NoWorkerSlot { retry_ms }, t);
        self.life.next_start
    }
}

/// Start a process for daemon `id`.
fn start(home_db: pg_sys::Oid, id: i64, def: &Def) -> Option<Worker> {
    let reservation = Reservation {
        db: def.target?.to_u32(),
        home_db: home_db.to_u32(),
        role: def.owner.to_u32(),
        job_id: id,
        run_id: 0,
        timeout_ms: 0,
    };
    let slot = shmem::reserve(Kind::Daemon, reservation)?;
    let segment = Segment::new(&def.command);
    shmem::set_dsm(slot, segment.handle());
    let name = format!("pg_jobs daemon \"{}\"", def.name);
    let w = DynamicWorker {
        bgw_type: "pg_jobs daemon",
        bgw_name: &name,
        function: "pg_jobs_daemon_main",
        // A daemon for standbys must be able to start before recovery ends.
        start_time: if def.run_on.starts_during_recovery() {
            BgWorkerStartTime::ConsistentState
        } else {
            BgWorkerStartTime::RecoveryFinished
        },
        slot,
    };
    match bgw::start_dynamic(&w) {
        Some(handle) => {
            log!("pg_jobs: starting daemon \"{}\"", def.name);
            Some(Worker {
                slot,
                handle: Some(handle),
                _segment: Some(segment),
            })
        }
        None => {
            shmem::release(slot);
            None
        }
    }
}
