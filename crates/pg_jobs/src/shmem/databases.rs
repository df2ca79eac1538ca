//! Per database: whether it has the extension, whether its workers are
//! being evicted, `@reboot` bookkeeping; and waking its scheduler, the
//! launcher, or the waiters of `jobs.wait`.

use super::*;

#[derive(Debug, Clone, Copy, Default)]
#[repr(C)]
pub struct DbEntry {
    pub in_use: bool,
    pub db: u32,
    pub ext: u8,
    pub evicting: bool,
    /// `@reboot` jobs of this database ran since the server started.
    pub rebooted: bool,
    /// Runs its pooled executors took from the queue themselves (the
    /// scheduler vacuums the queue after a burst of them).
    pub claims: u64,
}

/// Wake the launcher (CREATE/DROP EXTENSION, DROP DATABASE, a freed slot).
pub fn wake_launcher() {
    let latch = REGISTRY.share().launcher_latch;
    set_latch(latch);
}

/// Wake the scheduler of `db`, if it has one (a submitted run committed).
pub fn wake_scheduler(db: pg_sys::Oid) {
    let latch = scheduler_latch(&REGISTRY.share(), db.to_u32());
    set_latch(latch);
}

/// Send SIGTERM to the executors running runs whose history is in `db`
/// (wherever they run) and forget those already exited: the extension was
/// dropped there, so nobody will record them.
pub fn terminate_runs_of(db: pg_sys::Oid) {
    let targets: Vec<i32> = {
        let mut reg = REGISTRY.exclusive();
        let mut pids = Vec::new();
        for s in reg
            .slots
            .iter_mut()
            .filter(|s| s.in_use && s.kind == Kind::Executor && s.home_db == db.to_u32())
        {
            if s.exited() {
                free_exited(s);
            } else if s.phase().has_process() {
                retire(s);
                pids.push(s.pid);
            }
        }
        pids
    };
    for pid in targets {
        // SAFETY: kill(2) takes no pointers; the pid is one the registry
        // holds for a live executor (read under the lock above).
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// Send SIGTERM to every worker connected to `db` except ourselves, and
/// forget exited executors whose history lives in `db` (nobody is left to
/// harvest them). Returns how many processes of `db` (claimed or merely
/// reserved) are still there.
pub fn terminate_db_workers(db: pg_sys::Oid, kinds: &[Kind]) -> usize {
    // SAFETY: MyProcPid is a plain global set at process start.
    let me = unsafe { pg_sys::MyProcPid };
    let targets: Vec<i32> = {
        let mut reg = REGISTRY.exclusive();
        for s in reg
            .slots
            .iter_mut()
            .filter(|s| s.in_use && s.exited() && s.home_db == db.to_u32())
        {
            free_exited(s);
        }
        reg.slots
            .iter()
            .filter(|s| {
                // A daemon or run defined in `db` goes with it wherever it
                // runs: nobody would supervise it or record its outcome.
                let of_db = s.db == db.to_u32()
                    || (matches!(s.kind, Kind::Daemon | Kind::Executor) && s.home_db == db.to_u32());
                s.in_use && !s.exited() && of_db && kinds.contains(&s.kind) && s.pid != me
            })
            .map(|s| s.pid)
            .collect()
    };
    for pid in &targets {
        if *pid != 0 {
            // SAFETY: kill(2) takes no pointers; the pid is one the registry
            // holds for a live pg_jobs worker (read under the lock above).
            unsafe { libc::kill(*pid, libc::SIGTERM) };
        }
    }
    targets.len()
}

pub(super) fn db_entry(dbs: &mut [DbEntry; MAX_DATABASES], db: u32) -> Option<&mut DbEntry> {
    if let Some(i) = dbs.iter().position(|e| e.in_use && e.db == db) {
        return Some(&mut dbs[i]);
    }
    let e = dbs.iter_mut().find(|e| !e.in_use)?;
    *e = DbEntry {
        in_use: true,
        db,
        ext: ext_to_u8(ExtPresence::Unknown),
        evicting: false,
        rebooted: false,
        claims: 0,
    };
    Some(e)
}

pub(super) fn ext_to_u8(p: ExtPresence) -> u8 {
    match p {
        ExtPresence::Unknown => 0,
        ExtPresence::Present => 1,
        ExtPresence::Absent => 2,
    }
}

pub(super) fn ext_from_u8(v: u8) -> ExtPresence {
    match v {
        1 => ExtPresence::Present,
        2 => ExtPresence::Absent,
        _ => ExtPresence::Unknown,
    }
}

pub fn set_ext(db: pg_sys::Oid, p: ExtPresence) {
    let mut reg = REGISTRY.exclusive();
    if let Some(e) = db_entry(&mut reg.dbs, db.to_u32()) {
        e.ext = ext_to_u8(p);
    }
}

pub fn set_evicting(db: pg_sys::Oid, evicting: bool) {
    let mut reg = REGISTRY.exclusive();
    if let Some(e) = db_entry(&mut reg.dbs, db.to_u32()) {
        e.evicting = evicting;
    }
}

/// (presence, evicting) of `db`.
pub fn db_state(db: pg_sys::Oid) -> (ExtPresence, bool) {
    let reg = REGISTRY.share();
    reg.dbs
        .iter()
        .find(|e| e.in_use && e.db == db.to_u32())
        .map_or((ExtPresence::Unknown, false), |e| {
            (ext_from_u8(e.ext), e.evicting)
        })
}

/// Forget databases that no longer exist (the launcher's rescan).
pub fn retain_dbs(alive: &[pg_sys::Oid]) {
    let mut reg = REGISTRY.exclusive();
    for e in reg.dbs.iter_mut().filter(|e| e.in_use) {
        if !alive.iter().any(|o| o.to_u32() == e.db) && !e.evicting {
            e.in_use = false;
        }
    }
}

/// Whether `@reboot` jobs of `db` are still to run in this server life;
/// the first caller gets `true`, later ones (a restarted scheduler) `false`.
pub fn take_reboot(db: pg_sys::Oid) -> bool {
    let mut reg = REGISTRY.exclusive();
    match db_entry(&mut reg.dbs, db.to_u32()) {
        Some(e) => !std::mem::replace(&mut e.rebooted, true),
        None => false,
    }
}

/// The condition variable `jobs.wait` sleeps on; it lives in shared memory
/// for the life of the server, so the pointer stays valid after the guard.
pub fn runs_finished_cv() -> *mut pg_sys::ConditionVariable {
    let mut reg = REGISTRY.exclusive();
    &raw mut reg.runs_finished
}

/// Wake every `jobs.wait`: some runs just reached a terminal state.
pub fn broadcast_runs_finished() {
    // SAFETY: the condition variable lives in the registry's shared memory
    // for the server's life, and has its own spinlock: it may be used
    // without the registry's LWLock.
    unsafe { pg_sys::ConditionVariableBroadcast(runs_finished_cv()) };
}

/// Set the latch of every scheduler (the server was promoted).
pub fn wake_all_schedulers() {
    let latches: Vec<usize> = {
        let reg = REGISTRY.share();
        reg.slots
            .iter()
            .filter(|s| s.in_use && s.kind == Kind::Scheduler)
            .map(|s| s.latch)
            .collect()
    };
    for l in latches {
        set_latch(l);
    }
}
