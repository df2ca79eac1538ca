//! The utility hook: notes CREATE/ALTER/DROP EXTENSION pg_jobs, other
//! drops, CREATE DATABASE and changes to role and database settings for
//! the transaction callback, before DROP DATABASE and ALTER DATABASE
//! RENAME evicts that database's workers, and after REASSIGN OWNED and
//! DROP OWNED does pg_jobs' part of them (`owned.rs`).

use super::*;

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

pub(super) static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

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
pub(super) unsafe extern "C-unwind" fn process_utility(
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
    // exists. An ERROR from the chained call (a previous hook's raw C
    // function pointer, or standard_ProcessUtility declared here without
    // pgrx's guard) longjmps straight over this frame, which is sound only
    // because nothing in it has a destructor when the chained call runs.
    unsafe {
        let node = (*pstmt).utilityStmt;
        // What the statement will mean to pg_jobs, noted only once it has
        // run: one that fails (a permission check, say), even inside a
        // block that catches the error, must change nothing.
        let mut after: Option<fn(&mut Pending)> = None;
        // REASSIGN OWNED or DROP OWNED: moves or removes jobs once it has run.
        let mut owned_statement = false;
        match (*node).type_ {
            pg_sys::NodeTag::T_CreateExtensionStmt => {
                let s = node as *mut pg_sys::CreateExtensionStmt;
                if cstr((*s).extname) == Some("pg_jobs") {
                    after = Some(|p| p.ext_created = true);
                }
            }
            pg_sys::NodeTag::T_AlterExtensionStmt => {
                // ALTER EXTENSION pg_jobs UPDATE: the scheduler reads what the new version has.
                let s = node as *mut pg_sys::AlterExtensionStmt;
                if cstr((*s).extname) == Some("pg_jobs") {
                    after = Some(|p| {
                        p.reload_jobs = true;
                        p.reload_daemons = true;
                    });
                }
            }
            pg_sys::NodeTag::T_DropStmt => {
                let s = node as *mut pg_sys::DropStmt;
                after = if (*s).removeType == pg_sys::ObjectType::OBJECT_EXTENSION
                    && list_strings((*s).objects).contains(&"pg_jobs")
                {
                    Some(|p| p.ext_dropped = true)
                } else {
                    // Cheap: the scheduler re-checks that the extension exists.
                    Some(|p| p.recheck_extension = true)
                };
            }
            pg_sys::NodeTag::T_CreatedbStmt => after = Some(|p| p.wake_launcher = true),
            pg_sys::NodeTag::T_ReassignOwnedStmt => owned_statement = true,
            pg_sys::NodeTag::T_DropOwnedStmt => {
                owned_statement = true;
                // It drops the extension too if the role owns it: the
                // scheduler re-checks (cheap), as after other drops.
                after = Some(|p| p.recheck_extension = true);
            }
            // What a new connection gets: ALTER ROLE [ALL] [IN DATABASE]
            // SET/RESET, ALTER DATABASE SET/RESET, and a role's attributes
            // (some, such as superuser for SET SESSION AUTHORIZATION, are
            // read once at connection). Pooled executors connected before
            // the commit retire.
            pg_sys::NodeTag::T_AlterRoleSetStmt
            | pg_sys::NodeTag::T_AlterDatabaseSetStmt
            | pg_sys::NodeTag::T_AlterRoleStmt => after = Some(|p| p.session_defaults_changed = true),
            // What a prepared transaction did (a DROP SCHEMA … CASCADE, an
            // ALTER ROLE … SET, say) takes effect now: its scheduler
            // re-checks its extension, and pooled executors retire (we
            // cannot tell what it did; a spurious retirement is harmless).
            // (A COMMIT PREPARED runs in the prepared transaction's
            // database.)
            pg_sys::NodeTag::T_TransactionStmt
                if (*(node as *mut pg_sys::TransactionStmt)).kind
                    == pg_sys::TransactionStmtKind::TRANS_STMT_COMMIT_PREPARED =>
            {
                after = Some(|p| {
                    p.recheck_extension = true;
                    p.session_defaults_changed = true;
                })
            }
            // These need the database's workers gone before they run; they
            // are evicted only if the statement will get past PostgreSQL's
            // own checks (see `will_run`).
            pg_sys::NodeTag::T_DropdbStmt => {
                let top_level = context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL;
                evict_database((*(node as *mut pg_sys::DropdbStmt)).dbname, |db| {
                    top_level && !pg_sys::IsTransactionBlock() && may_drop_or_rename(db, false)
                });
            }
            pg_sys::NodeTag::T_RenameStmt => {
                let s = node as *mut pg_sys::RenameStmt;
                if (*s).renameType == pg_sys::ObjectType::OBJECT_DATABASE {
                    evict_database((*s).subname, |db| may_drop_or_rename(db, true));
                }
                // The owners' names pg_dump carries follow (jobs.definition).
                if (*s).renameType == pg_sys::ObjectType::OBJECT_ROLE {
                    after = Some(|p| p.role_renamed = true);
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
        // SAFETY: the statement ran (an ERROR would not have returned
        // here), so its parse tree, which it only read, is still the valid
        // ReassignOwnedStmt or DropOwnedStmt it was, in its transaction.
        if owned_statement {
            owned::after_owned_statement(node);
        }
        if let Some(f) = after {
            note(f);
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
unsafe fn evict_database(name: *const std::ffi::c_char, will_run: impl FnOnce(pg_sys::Oid) -> bool) {
    if name.is_null() {
        return;
    }
    // SAFETY: `name` is a valid C string (caller's contract) and we are in a
    // transaction, as the catalog look-up needs.
    let db = unsafe { pg_sys::get_database_oid(name, true) };
    if db == pg_sys::InvalidOid || !will_run(db) {
        return; // let PostgreSQL report what is wrong; nothing is touched
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

/// Whether the current user gets past PostgreSQL's checks for dropping
/// (`rename`: renaming) database `db`: not the database we are connected
/// to, owned by the user (superusers own everything), and for a rename the
/// CREATEDB attribute. Asked before workers are evicted, so that a role
/// that may not do it cannot stop a database's jobs by trying (issue 13,
/// finding 1). (DROP DATABASE's own top-level check is the caller's.)
fn may_drop_or_rename(db: pg_sys::Oid, rename: bool) -> bool {
    // SAFETY: plain reads of the backend's connection state and catalog
    // look-ups through the syscache, in the utility statement's transaction.
    unsafe {
        let me = pg_sys::GetUserId();
        if db == pg_sys::MyDatabaseId || !crate::pg::acl::owns_database(me, db) {
            return false;
        }
        if !rename || pg_sys::superuser() {
            return true;
        }
        let tup = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            pg_sys::Datum::from(me.to_u32()),
        );
        if tup.is_null() {
            return false;
        }
        let createdb = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_authid>(tup)).rolcreatedb;
        pg_sys::ReleaseSysCache(tup);
        createdb
    }
}
