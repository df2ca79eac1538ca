//! The launcher: one static background worker per cluster.
//!
//! It connects to no database (it reads only the shared catalog
//! `pg_database`) and keeps one scheduler running in each database that has
//! the extension. Each pass of its loop, in order: check interrupts →
//! reload config if asked → list databases → note schedulers that died →
//! decide per database (`pg_jobs_core::launcher::plan`) → act → sleep on the
//! latch until woken or until the next backoff expiry / periodic rescan.
//!
//! It is woken by: the utility hook (CREATE/DROP EXTENSION, CREATE/DROP
//! DATABASE, as they commit), any scheduler exiting (its exit callback), and
//! the postmaster when a scheduler it asked for starts or fails to start.

use crate::gucs;
use crate::pg::bgw::{self, DynamicWorker, WorkerHandle};
use crate::shmem::{self, Kind, SlotRef, State};
use pg_jobs_core::backoff::{Backoff, RestartPolicy};
use pg_jobs_core::launcher::{plan, sleep_for, DbAction, DbObservation, ExtPresence, SchedulerPresence};
use pgrx::bgworkers::{BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

/// A reserved scheduler slot that no process claimed within this long is
/// reclaimed (its worker never started, and we hold no handle to ask).
const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;

/// Register the launcher; called from `_PG_init` while preloading.
pub fn register() {
    BackgroundWorkerBuilder::new("pg_jobs launcher")
        .set_type("pg_jobs launcher")
        .set_library("pg_jobs")
        .set_function("pg_jobs_launcher_main")
        .enable_spi_access()
        // Consistent state: on a hot standby too (schedulers watch there).
        .set_start_time(BgWorkerStartTime::ConsistentState)
        // Exit code 1 (SIGTERM, ERROR) → the postmaster restarts us after 1 s.
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
    // The postmaster starts this one when recovery ends: at server start on
    // a primary (where it has nothing to do), at promotion on a standby,
    // where it wakes the schedulers out of watch mode at once instead of at
    // their next one-second look, and the launcher to look for databases
    // it has no scheduler for yet. It holds no database connection.
    BackgroundWorkerBuilder::new("pg_jobs promotion watcher")
        .set_type("pg_jobs promotion watcher")
        .set_library("pg_jobs")
        .set_function("pg_jobs_promotion_watcher_main")
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .load();
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_promotion_watcher_main(_arg: pg_sys::Datum) {
    shmem::wake_all_schedulers();
    // And the launcher: a database created on the old primary after this
    // standby's launcher last looked at pg_database (it learns of those
    // only by its periodic look: nothing on a standby tells it) gets its
    // scheduler now, not up to pg_jobs.launcher_naptime later (issue 19:
    // measured 4 s after a Patroni switchover, by luck a SIGHUP).
    shmem::wake_launcher();
}

/// One database as the launcher tracks it between passes.
#[derive(Default)]
struct Tracked {
    backoff: Backoff,
    /// When we last started its scheduler (monotonic ms), while it lives.
    started_at: Option<u64>,
    start_not_before: u64,
    /// Set when we stopped it on purpose: its death is not a failure.
    stopping: bool,
    handle: Option<(SlotRef, WorkerHandle)>,
}

struct Database {
    oid: pg_sys::Oid,
    name: String,
    connectable: bool,
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_launcher_main(_arg: pg_sys::Datum) {
    bgw::install_signal_handlers();
    // `_PG_init` registers no launcher under pg_upgrade; should one start
    // anyway, it exits at once, with code 0 so the postmaster does not
    // restart it.
    if bgw::binary_upgrade() {
        return;
    }
    // No database: only shared catalogs (pg_database) are readable.
    // SAFETY: a background worker connects once, here, before any
    // transaction; null database and user connect to no database, which
    // allows access to shared catalogs only.
    unsafe { pg_sys::BackgroundWorkerInitializeConnection(std::ptr::null(), std::ptr::null(), 0) };
    let Some(me) = shmem::register_launcher() else {
        error!("pg_jobs launcher: the worker registry is full");
    };
    log!("pg_jobs launcher started");
    warn_if_worker_slots_are_short();

    let cx = bgw::IterationContext::new(c"pg_jobs launcher iteration");
    let mut tracked: HashMap<u32, Tracked> = HashMap::new();
    let mut next_rescan = 0u64;
    loop {
        pg_sys::check_for_interrupts!();
        bgw::reload_config_if_asked();
        let sleep = cx.run(|| {
            shmem::set_state(me, State::Busy, None);
            let now = bgw::monotonic_ms();
            if now >= next_rescan {
                next_rescan = now + gucs::launcher_naptime_ms();
            }
            let actions = pass(&mut tracked);
            shmem::set_state(me, State::Idle, None);
            sleep_for(&actions, next_rescan, bgw::monotonic_ms())
        });
        bgw::wait(Some(Duration::from_millis(sleep.max(1))));
    }
}

/// One pass over all databases; returns the actions taken (for the sleep).
fn pass(tracked: &mut HashMap<u32, Tracked>) -> Vec<DbAction> {
    let dbs = bgw::in_transaction("pg_jobs launcher: listing databases", list_databases);
    let alive: Vec<pg_sys::Oid> = dbs.iter().map(|d| d.oid).collect();
    shmem::retain_dbs(&alive);
    shmem::retain_counts(&alive);
    tracked.retain(|oid, _| alive.iter().any(|a| a.to_u32() == *oid));

    let slots = shmem::snapshot();
    let now = bgw::monotonic_ms();
    let enabled = gucs::enabled();
    let mut actions = Vec::with_capacity(dbs.len());
    for db in &dbs {
        let t = tracked.entry(db.oid.to_u32()).or_default();
        let slot = slots
            .iter()
            .find(|s| s.kind == Kind::Scheduler && s.db == db.oid.to_u32());
        let mut presence = match slot {
            None => SchedulerPresence::None,
            Some(s) if s.phase().unclaimed() => SchedulerPresence::Starting,
            Some(_) => SchedulerPresence::Running,
        };

        // A slot we reserved whose worker never started (fork failure), or
        // one reserved by a previous launcher life that nobody claimed.
        if presence == SchedulerPresence::Starting {
            let dead = match t.handle.take() {
                Some((r, h)) if h.status() == bgw::HandleStatus::Stopped => {
                    shmem::release(r);
                    true
                }
                Some(held) => {
                    t.handle = Some(held);
                    false
                }
                None => shmem::reap_unclaimed(Kind::Scheduler, db.oid, UNCLAIMED_SLOT_TIMEOUT_US),
            };
            if dead {
                presence = SchedulerPresence::None;
            }
        }

        let (ext, evicting) = shmem::db_state(db.oid);
        if presence == SchedulerPresence::None {
            t.handle = None;
            if let Some(started) = t.started_at.take() {
                // A probe that found no extension, or a scheduler we (or a
                // DROP) stopped on purpose, did not fail.
                let delay = if t.stopping || ext == ExtPresence::Absent || evicting {
                    0
                } else {
                    t.backoff.on_death(&RestartPolicy::SCHEDULER, started, now)
                };
                t.start_not_before = now + delay;
                if delay > 0 {
                    log!(
                        "pg_jobs scheduler for database \"{}\" exited soon after starting; restarting in {} ms",
                        db.name,
                        delay
                    );
                }
            }
            t.stopping = false;
        }

        let obs = DbObservation {
            ext,
            evicting,
            scheduler: presence,
            start_not_before: t.start_not_before,
        };
        let action = plan(enabled, db.connectable, &obs, now);
        match action {
            DbAction::Start => start_scheduler(db, t, now),
            DbAction::Stop => {
                t.stopping = true;
                shmem::terminate_db_workers(db.oid, &[Kind::Scheduler]);
            }
            DbAction::Nothing | DbAction::WakeAt(_) => {}
        }
        actions.push(action);
    }
    actions
}

fn start_scheduler(db: &Database, t: &mut Tracked, now: u64) {
    let reservation = shmem::Reservation {
        db: db.oid.to_u32(),
        home_db: db.oid.to_u32(),
        ..Default::default()
    };
    let Some(r) = shmem::reserve(Kind::Scheduler, reservation) else {
        warning!(
            "pg_jobs: worker registry full; cannot start a scheduler for database \"{}\"",
            db.name
        );
        t.start_not_before = now + 1000;
        return;
    };
    let name = format!("pg_jobs scheduler for database {}", db.name);
    let w = DynamicWorker {
        bgw_type: "pg_jobs scheduler",
        bgw_name: &name,
        function: "pg_jobs_scheduler_main",
        start_time: BgWorkerStartTime::ConsistentState,
        slot: r,
    };
    match bgw::start_dynamic(&w) {
        Some(h) => {
            t.handle = Some((r, h));
            t.started_at = Some(now);
        }
        None => {
            // No free max_worker_processes slot: try again in a second.
            shmem::release(r);
            t.start_not_before = now + 1000;
            log!(
                "pg_jobs: no free background worker slot for the scheduler of database \"{}\" (max_worker_processes); retrying",
                db.name
            );
        }
    }
}

/// Every database that still exists, with whether a scheduler may connect
/// to it. Read with a heap scan of the shared catalog, as autovacuum's
/// launcher does: we are connected to no database, so SPI is unavailable.
fn list_databases() -> Vec<Database> {
    let mut out = Vec::new();
    // SAFETY: called inside a transaction (bgw::in_transaction, with a
    // snapshot), as autovacuum's get_database_list does: pg_database is a
    // shared catalog, readable with no database connection. Each tuple
    // heap_getnext returns (null-checked) is valid until the next call, and
    // its fixed part is a FormData_pg_database whose name is NUL-terminated;
    // everything is copied out before the next tuple. The scan and the
    // relation are closed in reverse order of opening.
    unsafe {
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as _);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tup = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tup.is_null() {
                break;
            }
            let form = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tup);
            let name = std::ffi::CStr::from_ptr(form.datname.data.as_ptr())
                .to_string_lossy()
                .into_owned();
            // Templates are skipped: a worker connected to template1 would
            // make CREATE DATABASE fail. datconnlimit -2 marks a database
            // whose DROP was interrupted (invalid).
            let connectable = form.datallowconn && !form.datistemplate && form.datconnlimit != -2;
            out.push(Database {
                oid: form.oid,
                name,
                connectable,
            });
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as _);
    }
    out
}

/// Say once, at start, when `max_worker_processes` cannot hold what
/// pg_jobs alone may run at once (the launcher, a scheduler, every
/// executor and daemon): runs and daemons would then wait for slots that
/// parallel query or logical replication also need. Nothing fails;
/// docs/operations.md says how to size it.
fn warn_if_worker_slots_are_short() {
    // SAFETY: a plain global, set from postgresql.conf at server start
    // (PGC_POSTMASTER) and inherited; read only.
    let slots = unsafe { pg_sys::max_worker_processes } as usize;
    let wanted = 2 + gucs::max_executors() + gucs::max_daemons();
    if slots < wanted {
        warning!(
            "pg_jobs: max_worker_processes ({slots}) is below what pg_jobs may run at once ({wanted}: the launcher, a scheduler, pg_jobs.max_executors and pg_jobs.max_daemons); runs and daemons may wait for a worker slot (see \"Sizing max_worker_processes\" in docs/operations.md)"
        );
    }
}
