//! Background-worker plumbing shared by the launcher, schedulers and
//! executors: signals, sleeping on the latch, config reload, transactions,
//! and starting dynamic workers.
//!
//! The rules are PostgreSQL's own (`worker_spi.c`): SIGTERM is `die`, so a
//! running statement is interrupted and the process exits at the next
//! CHECK_FOR_INTERRUPTS; SIGHUP only sets `ConfigReloadPending` and the
//! worker reloads at the top of its loop, never inside the handler; sleeping
//! is `WaitLatch` with `WL_EXIT_ON_PM_DEATH`.

use crate::shmem::SlotRef;
use pgrx::bgworkers::{BackgroundWorkerBuilder, BgWorkerStartTime};
use pgrx::prelude::*;
use std::ffi::CString;
use std::time::Duration;

/// Whether this server was started by `pg_upgrade` (`postgres -b`,
/// PostgreSQL's `IsBinaryUpgrade`). pg_upgrade starts the old and the new
/// cluster in this mode to read and restore their schemas, and copies the
/// old cluster's data files afterwards: anything a worker did meanwhile
/// (an `@reboot` job, a due run, a daemon) would be done behind the DBA's
/// back, with the cluster supposed to be down, and carried into the new
/// cluster. PostgreSQL 15 starts background workers in this mode, so
/// pg_jobs starts none: `_PG_init` registers no launcher (and so nothing
/// else starts), and the launcher and `start_dynamic` refuse as well.
pub fn binary_upgrade() -> bool {
    // SAFETY: a plain bool global that the postmaster sets from its command
    // line before it loads shared_preload_libraries, and that every process
    // it forks inherits; nothing writes it afterwards.
    unsafe { pg_sys::IsBinaryUpgrade }
}

/// Install `die` for SIGTERM and the flag-setting reload handler for
/// SIGHUP, then unblock signals. A SIGHUP sent before this point is lost,
/// which is why callers read their settings after calling it.
pub fn install_signal_handlers() {
    // The handlers must be PostgreSQL's own C functions, not pgrx's guarded
    // Rust wrappers of them: a signal handler must not unwind.
    unsafe extern "C-unwind" {
        fn die(signal: libc::c_int);
        fn SignalHandlerForConfigReload(signal: libc::c_int);
    }
    // SAFETY: called once at the start of a background worker's main
    // function, before it touches shared state: installing PostgreSQL's own
    // handlers (plain C functions that only set flags and the latch) and
    // unblocking signals is the worker_spi start-up sequence.
    unsafe {
        set_signal_handler(libc::SIGTERM, die);
        set_signal_handler(libc::SIGHUP, SignalHandlerForConfigReload);
        pg_sys::BackgroundWorkerUnblockSignals();
    }
}

/// `pqsignal(signo, handler)`: install `handler` for `signo` (with
/// PostgreSQL's flags and, from 17 on, its wrapper that restores `errno`
/// and ignores signals delivered to a forked child). PostgreSQL 18 made the
/// backend's version a function of its own, `pqsignal_be` (`pqsignal` is a
/// macro for it in `port.h`, so there is no `pqsignal` symbol to call), and
/// it no longer returns the previous handler.
///
/// # Safety
///
/// `handler` must be async-signal-safe; called in a process that runs
/// PostgreSQL's signal handling (a backend or background worker).
unsafe fn set_signal_handler(signo: libc::c_int, handler: unsafe extern "C-unwind" fn(libc::c_int)) {
    // SAFETY: the caller's contract; pqsignal only installs the handler.
    #[cfg(not(feature = "pg18"))]
    unsafe {
        pg_sys::pqsignal(signo, Some(handler));
    }
    // SAFETY: as above.
    #[cfg(feature = "pg18")]
    unsafe {
        pg_sys::pqsignal_be(signo, Some(handler));
    }
}

/// Reload the configuration file if a SIGHUP asked for it. Returns whether
/// it did. Called at the top of every worker loop.
pub fn reload_config_if_asked() -> bool {
    // SAFETY: ConfigReloadPending is a `volatile sig_atomic_t` the SIGHUP
    // handler sets: read and cleared with volatile accesses through raw
    // pointers (no reference to a static mut). ProcessConfigFile is called
    // from the worker's main loop, outside any signal handler, as
    // PostgreSQL's own processes do.
    unsafe {
        if (&raw const pg_sys::ConfigReloadPending).read_volatile() != 0 {
            (&raw mut pg_sys::ConfigReloadPending).write_volatile(0);
            pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP);
            return true;
        }
    }
    false
}

/// Sleep until our latch is set or `timeout` passes (`None`: no timeout);
/// whether the latch was set. Exits the process if the postmaster dies;
/// processes interrupts (SIGTERM, ProcSignalBarriers such as DROP
/// DATABASE's) on the way out.
pub fn wait(timeout: Option<Duration>) -> bool {
    let mut flags = pg_sys::WL_LATCH_SET | pg_sys::WL_EXIT_ON_PM_DEATH;
    let ms = match timeout {
        Some(d) => {
            flags |= pg_sys::WL_TIMEOUT;
            d.as_millis().min(i32::MAX as u128) as libc::c_long
        }
        None => -1,
    };
    // SAFETY: MyLatch is set for every backend and background worker before
    // its main function runs, and stays valid for the process's life.
    let events = unsafe {
        let events = pg_sys::WaitLatch(pg_sys::MyLatch, flags as i32, ms, pg_sys::PG_WAIT_EXTENSION);
        pg_sys::ResetLatch(pg_sys::MyLatch);
        events
    };
    pg_sys::check_for_interrupts!();
    events & pg_sys::WL_LATCH_SET as i32 != 0
}

/// Sleep until `deadline` or until our latch is set, waking on time
/// (`pg_jobs_core::schedule::wake`: a latch wait stops short of the kernel's
/// slack on it, the last stretch is slept precisely).
pub fn sleep_until(deadline: std::time::Instant) {
    use pg_jobs_core::schedule::wake::{next_step, Step};
    loop {
        match next_step(deadline.saturating_duration_since(std::time::Instant::now())) {
            Step::Done => return,
            Step::Precise(d) => {
                // Under 2 ms, once per due instant: not a poll.
                std::thread::sleep(d);
                pg_sys::check_for_interrupts!();
                return;
            }
            Step::Latch(ms) => {
                if wait(Some(Duration::from_millis(ms))) {
                    return;
                }
            }
        }
    }
}

/// One unit of work in its own transaction, the worker_spi skeleton:
/// statement start time, start transaction, snapshot, `activity` shown in
/// pg_stat_activity, work, commit, report idle. An ERROR inside propagates
/// (and, uncaught, ends the worker, which its supervisor restarts).
pub fn in_transaction<R>(activity: &str, f: impl FnOnce() -> R) -> R {
    in_transaction_flushing(activity, true, f)
}

/// [`in_transaction`], flushing this process's statistics after it only
/// if `flush_stats` (or a second has passed since they were last flushed,
/// as a backend does): a pooled executor's few hundred microseconds
/// between runs would otherwise spend a tenth of them on it.
pub fn in_transaction_flushing<R>(activity: &str, flush_stats: bool, f: impl FnOnce() -> R) -> R {
    let activity = CString::new(activity).unwrap_or_default();
    // Commit leaves CurrentMemoryContext at TopMemoryContext; come back to
    // the caller's (usually the per-iteration context) afterwards.
    // SAFETY: a read of a global that is always a valid context.
    let caller_cx = unsafe { pg_sys::CurrentMemoryContext };
    // SAFETY: called in a background worker after its
    // BackgroundWorkerInitializeConnection (the launcher's to no database,
    // the others' to one), outside any transaction (callers never nest
    // this): start one and push a snapshot, as worker_spi does. `activity`
    // outlives the call, which copies it.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, activity.as_ptr());
    }
    let r = f();
    // SAFETY: `f` returned normally, so the transaction and the snapshot we
    // pushed above are still current (an ERROR would have unwound past
    // here); commit them. `caller_cx` was the current context before the
    // transaction started, so it outlives it.
    unsafe {
        pg_sys::PopActiveSnapshot();
        pg_sys::CommitTransactionCommand();
        pg_sys::pgstat_report_stat(flush_stats);
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
        pg_sys::MemoryContextSwitchTo(caller_cx);
    }
    r
}

/// The `search_path` pg_jobs' own SQL runs with whenever it runs with more
/// privileges than its caller: a role that can create objects in a schema
/// on the caller's path must not be able to slip in an operator or function
/// that our privileged statements would pick (an exact-type match in
/// `public` beats a built-in that needs a cast).
pub const SAFE_SEARCH_PATH: &std::ffi::CStr = c"pg_catalog, pg_temp";

/// Run `f` as the bootstrap superuser with `search_path` pinned, for
/// pg_jobs' own bookkeeping in a backend connected as an ordinary role
/// (`jobs.submit`, `jobs.schedule`, …): what PostgreSQL does for a SECURITY
/// DEFINER function with `SET search_path`. The statements run in `f` are
/// ours, fully qualified, with `$n` arguments.
/// SECURITY_LOCAL_USERID_CHANGE forbids SET ROLE/SESSION AUTHORIZATION in
/// between; an ERROR inside restores user and setting on transaction abort.
pub fn as_superuser<R>(f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_ctx = 0;
    // SAFETY: called inside a transaction (from SQL functions and worker
    // transactions), as NewGUCNestLevel/set_config_option need; the out
    // pointers are our locals; the name and value are NUL-terminated
    // literals. This is what fmgr_security_definer does.
    let nest = unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_ctx);
        pg_sys::SetUserIdAndSecContext(
            pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID),
            saved_ctx | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
        let nest = pg_sys::NewGUCNestLevel();
        pg_sys::set_config_option(
            c"search_path".as_ptr(),
            SAFE_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_SAVE,
            true,
            0,
            false,
        );
        nest
    };
    let r = f();
    // SAFETY: `f` returned normally, so we are still in the transaction at
    // GUC nest level `nest`, which we opened: pop it and restore the user
    // and security context we saved (on ERROR, abort does both).
    unsafe {
        pg_sys::AtEOXact_GUC(true, nest);
        pg_sys::SetUserIdAndSecContext(saved_user, saved_ctx);
    }
    r
}

/// For a worker that runs only pg_jobs' own SQL (the scheduler): pin
/// `search_path` for the whole session.
pub fn pin_search_path() {
    // SAFETY: called by a connected background worker outside a transaction;
    // PGC_S_OVERRIDE settings are allowed there, and the name and value are
    // NUL-terminated literals.
    unsafe {
        pg_sys::SetConfigOption(
            c"search_path".as_ptr(),
            SAFE_SEARCH_PATH.as_ptr(),
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GucSource::PGC_S_OVERRIDE,
        )
    };
}

/// A handle on a dynamic worker we started, kept in TopMemoryContext and
/// freed on drop (pgrx's own handle type never frees it, which would leak
/// in a scheduler that starts workers for months).
pub struct WorkerHandle(*mut pg_sys::BackgroundWorkerHandle);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleStatus {
    NotYetStarted,
    Started,
    Stopped,
}

impl WorkerHandle {
    pub fn status(&self) -> HandleStatus {
        let mut pid = 0;
        // SAFETY: self.0 is the handle RegisterDynamicBackgroundWorker gave
        // us, in TopMemoryContext, not freed before drop; `pid` is a local.
        match unsafe { pg_sys::GetBackgroundWorkerPid(self.0, &mut pid) } {
            pg_sys::BgwHandleStatus::BGWH_STARTED => HandleStatus::Started,
            pg_sys::BgwHandleStatus::BGWH_NOT_YET_STARTED => HandleStatus::NotYetStarted,
            _ => HandleStatus::Stopped,
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        // SAFETY: the handle was palloc'd in TopMemoryContext (never reset)
        // by RegisterDynamicBackgroundWorker, and is freed only here, once.
        unsafe { pg_sys::pfree(self.0.cast()) }
    }
}

pub struct DynamicWorker<'a> {
    /// Same for all workers of a kind: pg_stat_activity.backend_type.
    pub bgw_type: &'a str,
    /// This worker: pg_stat_activity shows it in `backend_type`'s detail
    /// and `ps`.
    pub bgw_name: &'a str,
    /// Exported symbol of the worker's main function.
    pub function: &'a str,
    pub start_time: BgWorkerStartTime,
    pub slot: SlotRef,
}

/// Ask the postmaster for a dynamic worker (never restarted by it: our
/// supervisors decide). We are notified (latch) when it starts or stops.
/// `None` when no background-worker slot is free.
pub fn start_dynamic(w: &DynamicWorker) -> Option<WorkerHandle> {
    if binary_upgrade() {
        return None;
    }
    let builder = BackgroundWorkerBuilder::new(w.bgw_name)
        .set_type(w.bgw_type)
        .set_library("pg_jobs")
        .set_function(w.function)
        .set_argument(Some(w.slot.to_datum()))
        .enable_spi_access()
        .set_start_time(w.start_time)
        .set_restart_time(None)
        // SAFETY: MyProcPid is a plain global set at process start.
        .set_notify_pid(unsafe { pg_sys::MyProcPid });
    let mut bgw: pg_sys::BackgroundWorker = (&builder).into();
    let mut handle: *mut pg_sys::BackgroundWorkerHandle = std::ptr::null_mut();
    // The handle is palloc'd in CurrentMemoryContext: make that one that
    // outlives transactions; WorkerHandle frees it.
    // SAFETY: `bgw` and `handle` are locals that outlive the call (the
    // postmaster copies `bgw`); TopMemoryContext always exists; the caller's
    // context is restored right after.
    let ok = unsafe {
        let old = pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        let ok = pg_sys::RegisterDynamicBackgroundWorker(&mut bgw, &mut handle);
        pg_sys::MemoryContextSwitchTo(old);
        ok
    };
    ok.then(|| WorkerHandle(handle))
}

/// The name of a database, for worker names and messages. Needs a
/// transaction (it reads the syscache).
pub fn database_name(db: pg_sys::Oid) -> String {
    // SAFETY: called in a transaction (callers' contract above), as the
    // syscache look-up needs; the name it returns (null-checked) is a fresh
    // palloc'd copy, read once and freed by us.
    unsafe {
        let p = pg_sys::get_database_name(db);
        if p.is_null() {
            format!("oid {}", db.to_u32())
        } else {
            let s = std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned();
            pg_sys::pfree(p.cast());
            s
        }
    }
}

/// A memory context reset once per loop iteration, so a worker that lives
/// for months stays flat: whatever PostgreSQL pallocs outside a transaction
/// during an iteration goes here and is dropped at its end.
pub struct IterationContext(pg_sys::MemoryContext);

impl IterationContext {
    pub fn new(name: &'static std::ffi::CStr) -> Self {
        // SAFETY: a child of TopMemoryContext with a 'static name (the
        // context keeps the pointer); it lives as long as the worker.
        IterationContext(unsafe {
            pg_sys::AllocSetContextCreateInternal(
                pg_sys::TopMemoryContext,
                name.as_ptr(),
                pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
                pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
            )
        })
    }

    /// Empty the context (after an error left it mid-iteration).
    pub fn reset(&self) {
        // SAFETY: our own context, created in `new` and never deleted; no
        // Rust value points into it between iterations.
        unsafe { pg_sys::MemoryContextReset(self.0) }
    }

    /// Switch into the context, run `f`, switch back and reset it.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: self.0 is a live context we created and never delete.
        let old = unsafe { pg_sys::MemoryContextSwitchTo(self.0) };
        let r = f();
        // SAFETY: switch back to the context that was current before (still
        // alive: it is the caller's) before resetting ours, so the current
        // context never points at freed memory. What `f` returns is owned
        // Rust data in every caller (the launcher's and scheduler's loops),
        // not palloc'd memory the reset frees.
        unsafe {
            pg_sys::MemoryContextSwitchTo(old);
            pg_sys::MemoryContextReset(self.0);
        }
        r
    }
}

/// Milliseconds on a monotonic clock, for supervisors' backoff arithmetic.
pub fn monotonic_ms() -> u64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// An ERROR caught by [`recover_from_error`]: what the log line says.
pub struct CaughtReport {
    pub sqlstate: String,
    pub message: String,
}

/// Run `f`; if it raises an ERROR (or a Rust panic escapes it), recover as
/// PostgreSQL's own long-lived processes do after an error: abort whatever
/// transaction is open (which also cleans up SPI and the snapshot stack),
/// go back to the caller's memory context, report idle, and return the
/// error instead of ending the process. The caller decides how to retry.
pub fn recover_from_error<R>(f: impl FnOnce() -> R) -> Result<R, CaughtReport> {
    // SAFETY: reading a backend-global pointer; always set in a backend.
    let caller_cx = unsafe { pg_sys::CurrentMemoryContext };
    let result = PgTryBuilder::new(std::panic::AssertUnwindSafe(|| Ok(f())))
        .catch_others(|e| {
            let report = match e {
                pgrx::pg_sys::panic::CaughtError::PostgresError(r)
                | pgrx::pg_sys::panic::CaughtError::ErrorReport(r) => r,
                pgrx::pg_sys::panic::CaughtError::RustPanic { ereport, .. } => ereport,
            };
            Err(CaughtReport {
                sqlstate: pg_jobs_core::sqlstate::unpack(report.sql_error_code() as i32),
                message: report.message().to_owned(),
            })
        })
        .execute();
    if result.is_err() {
        // SAFETY: the error was caught and its state flushed by the catch
        // above; aborting out of any transaction is what PostgreSQL's own
        // error recovery does next, and is a no-op with none open.
        unsafe {
            pg_sys::AbortOutOfAnyTransaction();
            pg_sys::MemoryContextSwitchTo(caller_cx);
            pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_IDLE, std::ptr::null());
        }
    }
    result
}
