//! Hooks that let ordinary backends tell pg_jobs' workers what changed,
//! at the moment it takes effect.
//!
//! * A `ProcessUtility_hook` notices CREATE/DROP EXTENSION pg_jobs, other
//!   DROPs (DROP SCHEMA … CASCADE can take the extension with it), CREATE
//!   DATABASE, and — before they run — DROP DATABASE and ALTER DATABASE
//!   RENAME, which fail while anyone is connected to the database: for
//!   those it terminates that database's pg_jobs workers and waits for them
//!   to go, keeping the launcher from restarting them until the statement's
//!   transaction ends (TimescaleDB and Citus do the same).
//! * A transaction callback acts on what was noted only when the
//!   transaction commits: waking the database's scheduler after a submit,
//!   telling the launcher about a new or dropped extension. A rolled-back
//!   transaction wakes nobody, so a rolled-back submit is never seen.

use crate::shmem::{self, Kind};
use pg_jobs_core::launcher::ExtPresence;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::CStr;
use std::time::{Duration, Instant};

/// How long DROP/RENAME DATABASE waits for pg_jobs workers to exit before
/// letting PostgreSQL report whatever it finds.
const EVICT_TIMEOUT: Duration = Duration::from_secs(10);

/// What this backend's current transaction asked for, acted on at its end.
#[derive(Clone, Copy, Default)]
struct Pending {
    wake_scheduler: bool,
    /// Reload every job (ALTER EXTENSION UPDATE).
    reload_jobs: bool,
    reload_daemons: bool,
    runs_finished: bool,
    wake_launcher: bool,
    ext_created: bool,
    ext_dropped: bool,
    evicted_db: Option<pg_sys::Oid>,
    /// Some other object was dropped (DROP SCHEMA … CASCADE can take the
    /// extension with it): the scheduler re-checks that it still exists.
    recheck_extension: bool,
}

impl Pending {
    /// Whether the transaction did pg_jobs work that only takes effect when
    /// this backend sees its commit: two-phase commit would strand it (the
    /// COMMIT PREPARED runs elsewhere, with none of this state).
    fn needs_commit_here(&self) -> bool {
        self.wake_scheduler
            || self.reload_jobs
            || self.reload_daemons
            || self.runs_finished
            || self.ext_created
            || self.ext_dropped
    }
}

thread_local! {
    static PENDING: Cell<Pending> = Cell::new(Pending::default());
    /// Runs submitted in the current transaction (`jobs.wait` on one would
    /// wait for a commit that cannot come while it waits).
    static SUBMITTED: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Jobs added, changed or removed in the current transaction.
    static CHANGED_JOBS: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn note(f: impl FnOnce(&mut Pending)) {
    PENDING.with(|p| {
        let mut v = p.get();
        f(&mut v);
        p.set(v);
    });
}

/// Wake this database's scheduler when the current transaction commits.
pub fn wake_scheduler_at_commit() {
    note(|p| p.wake_scheduler = true);
}

/// A run was submitted: wake the scheduler at commit, and remember the run
/// until the transaction ends.
pub fn submitted_at_commit(run_id: i64) {
    note(|p| p.wake_scheduler = true);
    SUBMITTED.with(|s| s.borrow_mut().push(run_id));
}

pub fn submitted_in_this_transaction(run_id: i64) -> bool {
    SUBMITTED.with(|s| s.borrow().contains(&run_id))
}

/// Runs reached a terminal state in this transaction (jobs.cancel of a
/// queued run): wake `jobs.wait`ers at commit.
pub fn runs_finished_at_commit() {
    note(|p| p.runs_finished = true);
}

/// Job `id` was added, changed or removed: have the scheduler reload it
/// when (and only if) the current transaction commits, as pg_cron's cache
/// invalidation does — but just that job, so a change costs the same with
/// ten jobs or a hundred thousand.
pub fn job_changed_at_commit(id: i64) {
    let too_many = CHANGED_JOBS.with(|c| {
        let mut c = c.borrow_mut();
        if !c.contains(&id) {
            c.push(id);
        }
        c.len() > shmem::CHANGED_JOBS
    });
    if too_many {
        // A bulk change: the scheduler reloads everything anyway.
        note(|p| p.reload_jobs = true);
        CHANGED_JOBS.with(|c| c.borrow_mut().clear());
    }
}

/// Daemon definitions changed: the scheduler re-reads them at commit.
pub fn daemons_changed_at_commit() {
    note(|p| p.reload_daemons = true);
}

unsafe extern "C-unwind" {
    /// PostgreSQL's own, declared here rather than called through pgrx's
    /// binding: that binding catches an ERROR and re-raises it as a Rust
    /// panic, which drops the error's CONTEXT and position and, whenever
    /// RUST_BACKTRACE is set in the server's environment, adds a Rust
    /// backtrace to its DETAIL. Called directly, an ERROR goes straight to
    /// PostgreSQL's handler, as it does through any other hook in the chain.
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Install the hooks; called from `_PG_init` while preloading, so every
/// backend inherits them.
pub fn init() {
    // SAFETY: called once, from `_PG_init` in the postmaster while it loads
    // shared_preload_libraries: single-threaded, before any backend runs a
    // utility statement, so nothing reads the hook variables meanwhile. The
    // previous hook is saved for `process_utility` to chain to, as every
    // ProcessUtility_hook must; RegisterXactCallback only pallocs a list
    // entry in TopMemoryContext.
    unsafe {
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
    }
}

/// The C string at `p` as `&str` (`None` if `p` is null or not UTF-8).
///
/// # Safety
///
/// `p` is null or points at a NUL-terminated string that stays valid and
/// unchanged for `'a`. The strings this is used on live in a statement's
/// parse tree, palloc'd in a memory context that is reset after the
/// statement: the caller must not let the result outlive its use within
/// the hook call (it is never stored).
unsafe fn cstr<'a>(p: *const std::ffi::c_char) -> Option<&'a str> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-null, and valid and NUL-terminated for 'a by the caller's
    // contract.
    unsafe { CStr::from_ptr(p) }.to_str().ok()
}

/// The `String` nodes of `list`, as `&str` (other nodes are skipped).
///
/// # Safety
///
/// `list` is null or a valid `List` of node pointers (a parse tree's, such
/// as `DropStmt.objects`), and it and its strings stay valid for `'a`: as
/// with [`cstr`], the result must not outlive the statement.
unsafe fn list_strings<'a>(list: *mut pg_sys::List) -> Vec<&'a str> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: `list` is a valid List (caller's contract): `elements` holds
    // `length` cells, each a node pointer (null-checked) whose tag tells its
    // type; a T_String node is a `pg_sys::String` whose `sval` is a C string
    // of the same parse tree, valid for 'a.
    unsafe {
        (0..(*list).length as usize)
            .filter_map(|i| {
                let node = (*(*list).elements.add(i)).ptr_value as *mut pg_sys::Node;
                if !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_String {
                    cstr((*(node as *mut pg_sys::String)).sval)
                } else {
                    None
                }
            })
            .collect()
    }
}

/// The `ProcessUtility_hook`: note or act on statements that concern
/// pg_jobs, then run the statement through the previous hook.
///
/// # Safety
///
/// Only PostgreSQL calls this, as `ProcessUtility_hook`, with the arguments
/// of `ProcessUtility()`: a valid utility `PlannedStmt` and the pointers
/// that go with it, in a backend's main thread.
#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: PostgreSQL calls the hook with a valid PlannedStmt whose
    // `utilityStmt` is the (non-null) utility statement's parse tree; each
    // cast below is to the struct its node tag names. The strings `cstr` and
    // `list_strings` borrow from that tree are only compared or formatted
    // here, before the tree can be freed. Chaining to the previous hook (or
    // standard_ProcessUtility) with our own arguments is the hook protocol;
    // PREV_PROCESS_UTILITY is written only in `init`, before any backend
    // exists. An ERROR from standard_ProcessUtility (a guarded binding)
    // unwinds as a Rust panic; one from a previous hook, a raw C function
    // pointer, longjmps straight over this frame, which is sound only
    // because nothing in it has a destructor when the chained call runs.
    unsafe {
        let node = (*pstmt).utilityStmt;
        match (*node).type_ {
            pg_sys::NodeTag::T_CreateExtensionStmt => {
                let s = node as *mut pg_sys::CreateExtensionStmt;
                if cstr((*s).extname) == Some("pg_jobs") {
                    note(|p| p.ext_created = true);
                }
            }
            pg_sys::NodeTag::T_AlterExtensionStmt => {
                // ALTER EXTENSION pg_jobs UPDATE: the scheduler reads what the new version has.
                let s = node as *mut pg_sys::AlterExtensionStmt;
                if cstr((*s).extname) == Some("pg_jobs") {
                    note(|p| {
                        p.reload_jobs = true;
                        p.reload_daemons = true;
                    });
                }
            }
            pg_sys::NodeTag::T_DropStmt => {
                let s = node as *mut pg_sys::DropStmt;
                if (*s).removeType == pg_sys::ObjectType::OBJECT_EXTENSION
                    && list_strings((*s).objects).contains(&"pg_jobs")
                {
                    note(|p| p.ext_dropped = true);
                } else {
                    // Cheap: the scheduler re-checks that the extension exists.
                    note(|p| p.recheck_extension = true);
                }
            }
            pg_sys::NodeTag::T_CreatedbStmt => note(|p| p.wake_launcher = true),
            pg_sys::NodeTag::T_DropdbStmt => {
                evict_database((*(node as *mut pg_sys::DropdbStmt)).dbname);
            }
            pg_sys::NodeTag::T_RenameStmt => {
                let s = node as *mut pg_sys::RenameStmt;
                if (*s).renameType == pg_sys::ObjectType::OBJECT_DATABASE {
                    evict_database((*s).subname);
                }
            }
            _ => {}
        }
        // SAFETY: the next hook or PostgreSQL's own, with the arguments we were
        // given. Either may raise an ERROR that longjmps past this frame: no
        // value with a destructor is alive here, so skipping it is sound.
        match PREV_PROCESS_UTILITY {
            Some(prev) => prev(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
            None => standard_process_utility(
                pstmt,
                query_string,
                read_only_tree,
                context,
                params,
                query_env,
                dest,
                qc,
            ),
        }
    }
}

/// Terminate every pg_jobs worker connected to the named database and wait
/// until they are gone, so the statement about to run does not fail with
/// "database is being accessed by other users". The launcher keeps out
/// until our transaction ends (see `xact_callback`).
///
/// # Safety
///
/// `name` is null or a NUL-terminated string valid for the call (the
/// statement's parse tree); called in a backend inside a transaction
/// (`get_database_oid` reads the catalog).
unsafe fn evict_database(name: *const std::ffi::c_char) {
    if name.is_null() {
        return;
    }
    // SAFETY: `name` is a valid C string (caller's contract) and we are in a
    // transaction, as the catalog look-up needs.
    let db = unsafe { pg_sys::get_database_oid(name, true) };
    if db == pg_sys::InvalidOid {
        return; // let PostgreSQL report the missing database
    }
    shmem::set_evicting(db, true);
    note(|p| p.evicted_db = Some(db));
    let deadline = Instant::now() + EVICT_TIMEOUT;
    while shmem::terminate_db_workers(db, &[Kind::Scheduler, Kind::Executor, Kind::Daemon]) > 0 {
        if Instant::now() >= deadline {
            warning!(
                "pg_jobs workers of database \"{}\" did not exit in time",
                // SAFETY: `name` is valid for this call (caller's contract); the
                // borrow ends with the message.
                unsafe { cstr(name) }.unwrap_or("?")
            );
            break;
        }
        // Their exit callbacks wake the launcher, not us: look again every 10 ms.
        // SAFETY: MyLatch is set up for every backend before it runs a
        // statement and stays valid for its life; waiting on our own latch
        // with WL_EXIT_ON_PM_DEATH is what any backend may do between checks.
        unsafe {
            pg_sys::WaitLatch(
                pg_sys::MyLatch,
                (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
                10,
                pg_sys::PG_WAIT_EXTENSION,
            );
            pg_sys::ResetLatch(pg_sys::MyLatch);
        }
        pg_sys::check_for_interrupts!();
    }
}

/// Act at the end of the transaction on what it noted (see [`Pending`]).
///
/// # Safety
///
/// Only PostgreSQL calls this, as a transaction callback registered in
/// [`init`], at each transaction event of this backend.
#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    let committed = match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT => true,
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => false,
        XACT_EVENT_PRE_PREPARE => {
            refuse_prepare_of_pg_jobs_work();
            return;
        }
        // Nothing of pg_jobs' own is pending (see above): forget the rest,
        // as at the end of any transaction.
        XACT_EVENT_PREPARE => false,
        _ => return,
    };
    let p = PENDING.with(|p| p.replace(Pending::default()));
    SUBMITTED.with(|s| s.borrow_mut().clear());
    let changed = CHANGED_JOBS.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let mut wake_launcher = p.wake_launcher;
    if let Some(db) = p.evicted_db {
        // DROP DATABASE committed (the launcher's rescan forgets it) or
        // failed (the launcher starts its scheduler again).
        shmem::set_evicting(db, false);
        wake_launcher = true;
    }
    if committed {
        // SAFETY: MyDatabaseId is a plain global set once at connection and
        // only read here, on the backend's only thread.
        let me = unsafe { pg_sys::MyDatabaseId };
        if p.ext_created {
            shmem::set_ext(me, ExtPresence::Present);
            wake_launcher = true;
        }
        if p.ext_dropped {
            shmem::set_ext(me, ExtPresence::Absent);
            shmem::terminate_db_workers(me, &[Kind::Scheduler, Kind::Executor, Kind::Daemon]);
            wake_launcher = true;
        }
        if p.runs_finished {
            shmem::broadcast_runs_finished();
        }
        if p.reload_jobs || p.reload_daemons || !changed.is_empty() {
            shmem::request_reload(me, p.reload_jobs, &changed, p.reload_daemons);
        } else if p.wake_scheduler || p.recheck_extension {
            shmem::wake_scheduler(me);
        }
    } else if p.recheck_extension && event == XACT_EVENT_PREPARE {
        // The drop may yet commit, elsewhere; the scheduler's re-check is
        // harmless now and again at its next pass.
        // SAFETY: MyDatabaseId is set once at connection and only read here.
        shmem::wake_scheduler(unsafe { pg_sys::MyDatabaseId });
    }
    if wake_launcher {
        shmem::wake_launcher();
    }
}

/// PREPARE TRANSACTION of a transaction that submitted, scheduled, changed
/// or cancelled pg_jobs work is refused, as PostgreSQL refuses it after
/// NOTIFY: the wake-ups it owes happen at commit in this backend, and a
/// COMMIT PREPARED (later, from any session) could not deliver them, so
/// the work would sit unseen until something else woke the scheduler.
fn refuse_prepare_of_pg_jobs_work() {
    let pending = PENDING.with(|p| p.get());
    let changed = CHANGED_JOBS.with(|c| !c.borrow().is_empty());
    if pending.needs_commit_here() || changed {
        crate::pg::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "cannot PREPARE a transaction that has submitted, scheduled, changed or cancelled pg_jobs work",
            None,
        );
    }
}
