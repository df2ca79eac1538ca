//! Run a command string the way a client's simple query would (psql -c).
//!
//! SPI cannot do this: it runs inside the caller's transaction and never at
//! top level, so VACUUM, CREATE INDEX CONCURRENTLY and procedures that
//! COMMIT fail there. This follows `exec_simple_query()` in PostgreSQL's
//! `postgres.c`: parse the whole string, then for each statement analyze,
//! plan, and run it in an unnamed portal at top level. A string of several
//! statements is one implicit transaction block (so VACUUM refuses to run
//! in one, exactly as with psql -c), unless it contains its own
//! BEGIN/COMMIT; a single statement runs with no block around it. Job
//! commands get the session's `statement_timeout` per statement, as
//! exec_simple_query arms it ([`StatementTimeout::Enforced`]).
//!
//! A command with values for its parameters (`args`) is one statement,
//! analysed and bound as the extended query protocol would (see
//! [`crate::exec::params`]); without them, nothing of that path runs.

use pg_jobs_core::sqlstate;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use std::ffi::CString;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed {
        sqlstate: String,
        message: String,
        /// The error's DETAIL, if it had one.
        detail: Option<String>,
    },
}

/// Whether the session's `statement_timeout` cancels the command's
/// statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementTimeout {
    /// As under `psql -c`: each statement gets the session's
    /// `statement_timeout` of the moment it starts (its role's or
    /// database's default, or a `SET` earlier in the string), and is
    /// cancelled with PostgreSQL's own 57014 when it runs out. Job commands.
    Enforced,
    /// Never armed: pg_jobs' own statements (its `VACUUM`), which no
    /// role's or server's setting may cancel, and daemons, whose command is
    /// meant to run until stopped (usually one `CALL` of a procedure that
    /// loops and commits, which could not `SET statement_timeout = 0`
    /// before it in the same string: an implicit block forbids its COMMIT).
    NotArmed,
}

/// Run `command` in the current session (already connected, as the run's
/// owner), outside any transaction, with `args` the values of its `$1 …
/// $n` (`None`: it has none). Never raises: an ERROR is caught, the
/// transaction cleaned up, and returned as `Outcome::Failed`.
/// (FATAL — e.g. SIGTERM — ends the process; its supervisor records that.)
pub fn run(command: &str, args: Option<&[Option<String>]>, statement_timeout: StatementTimeout) -> Outcome {
    run_with(command, args, None, None, statement_timeout)
}

/// Nodes whose statements commit on their own or refuse a transaction
/// block: a command containing one is not a single transaction, so its
/// outcome cannot be recorded inside it. The list is PostgreSQL's own: every
/// caller of `PreventInTransactionBlock` in 15 and 18 (utility.c,
/// indexcmds.c, tablecmds.c, dbcommands.c, vacuum.c, cluster.c,
/// discard.c, subscriptioncmds.c, tablespace.c, twophase via
/// TransactionStmt), plus the statements that commit internally (CALL and
/// DO of a procedure that COMMITs, transaction control). Where PostgreSQL
/// decides by catalog state at run time (CLUSTER of a partitioned table,
/// DROP SUBSCRIPTION with a slot), the whole statement kind counts: calling
/// a single transaction "not single" only forgoes the in-transaction
/// record; the reverse would make a false exactly-once claim.
///
/// # Safety
///
/// `node` is a valid parse-tree node (a `RawStmt`'s `stmt`).
unsafe fn manages_its_own_transactions(node: *mut pg_sys::Node) -> bool {
    use pg_sys::NodeTag::*;
    // SAFETY: `node` is a parse tree node of the statement being run,
    // allocated in the command's memory context, which outlives this call;
    // each cast below follows the node's own tag.
    unsafe {
        match (*node).type_ {
            T_TransactionStmt
            | T_VacuumStmt
            | T_CallStmt
            | T_DoStmt
            | T_CreatedbStmt
            | T_DropdbStmt
            | T_AlterSystemStmt
            | T_CreateTableSpaceStmt
            | T_DropTableSpaceStmt
            | T_ClusterStmt
            | T_ReindexStmt
            | T_CreateSubscriptionStmt
            | T_DropSubscriptionStmt
            | T_AlterSubscriptionStmt => true,
            T_IndexStmt => (*(node as *mut pg_sys::IndexStmt)).concurrent,
            // DROP INDEX CONCURRENTLY
            T_DropStmt => (*(node as *mut pg_sys::DropStmt)).concurrent,
            // DISCARD ALL
            T_DiscardStmt => (*(node as *mut pg_sys::DiscardStmt)).target == pg_sys::DiscardMode::DISCARD_ALL,
            // ALTER DATABASE … SET TABLESPACE
            T_AlterDatabaseStmt => {
                def_names((*(node as *mut pg_sys::AlterDatabaseStmt)).options).any(|n| n == "tablespace")
            }
            // ALTER TABLE … DETACH PARTITION … CONCURRENTLY
            T_AlterTableStmt => list_nodes((*(node as *mut pg_sys::AlterTableStmt)).cmds).any(|cmd| {
                let cmd = cmd as *mut pg_sys::AlterTableCmd;
                (*cmd).subtype == pg_sys::AlterTableType::AT_DetachPartition
                    && !(*cmd).def.is_null()
                    && (*(*cmd).def).type_ == T_PartitionCmd
                    && (*((*cmd).def as *mut pg_sys::PartitionCmd)).concurrent
            }),
            _ => false,
        }
    }
}

/// Whether raw statement `node` is a COPY to or from the client (`TO
/// STDOUT`, `FROM STDIN`): a job has no client, so such data would go
/// nowhere, or (COPY TO) into the server log as raw bytes a role could use
/// to forge log lines. Refused at submit and at run time.
///
/// # Safety
///
/// `node` is a valid parse-tree node.
pub unsafe fn copies_with_the_client(node: *mut pg_sys::Node) -> bool {
    // SAFETY: a valid node starts with its tag; the cast follows the tag.
    unsafe {
        (*node).type_ == pg_sys::NodeTag::T_CopyStmt && {
            let copy = node as *mut pg_sys::CopyStmt;
            (*copy).filename.is_null() && !(*copy).is_program
        }
    }
}

/// The error of a command that copies with the client.
pub const COPY_WITH_THE_CLIENT: &str =
    "COPY to or from the client is not possible in a job (it has no client)";

/// The nodes of a parse-tree `List` (empty for NIL).
///
/// # Safety
/// `list` is NIL or a valid pointer `List` whose memory outlives the iterator.
unsafe fn list_nodes(list: *mut pg_sys::List) -> impl Iterator<Item = *mut pg_sys::Node> {
    let len = if list.is_null() {
        0
    } else {
        // SAFETY: per the function's contract, a non-NIL `list` is a valid
        // List of `length` pointer cells.
        unsafe { (*list).length as usize }
    };
    // SAFETY: i < length, so the cell is within the list's elements array.
    (0..len).map(move |i| unsafe { (*(*list).elements.add(i)).ptr_value as *mut pg_sys::Node })
}

/// The option names of a list of `DefElem`s.
///
/// # Safety
/// As [`list_nodes`]; every element is a `DefElem`.
unsafe fn def_names(list: *mut pg_sys::List) -> impl Iterator<Item = String> {
    // SAFETY: per the contract, each node is a DefElem whose defname is
    // NULL or a NUL-terminated string in the same memory.
    unsafe { list_nodes(list) }.filter_map(|n| unsafe {
        let name = (*(n as *mut pg_sys::DefElem)).defname;
        (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    })
}

/// Whether each statement of `sql` would be run as its own transaction
/// (see [`manages_its_own_transactions`]); for tests of the classification.
#[cfg(any(test, feature = "pg_test"))]
pub fn classify(sql: &str) -> Vec<bool> {
    let c = CString::new(sql).unwrap_or_default();
    // SAFETY: raw parsing only (no catalog access), in the test's
    // transaction; the parse tree lives in the current memory context.
    unsafe {
        raw_statements(pg_sys::pg_parse_query(c.as_ptr()))
            .into_iter()
            .map(|raw| manages_its_own_transactions((*raw).stmt))
            .collect()
    }
}

/// Like [`run`] of a job's command ([`StatementTimeout::Enforced`]), but
/// if the whole command is one transaction, call `before_commit` inside
/// that transaction just before it commits (after the last statement's
/// timeout is disarmed, as PostgreSQL disarms it before a commit), so what
/// it writes commits (or is lost) together with the command's effects.
/// Returns whether it was called (and the transaction then committed).
/// `capture`: keep up to this many bytes of the last statement's rows
/// (see `result_capture`).
pub fn run_recording(
    command: &str,
    args: Option<&[Option<String>]>,
    capture: Option<usize>,
    before_commit: &(dyn Fn() + std::panic::RefUnwindSafe),
) -> (Outcome, bool) {
    RECORDED.with(|r| r.set(false));
    let outcome = run_with(
        command,
        args,
        Some(before_commit),
        capture,
        StatementTimeout::Enforced,
    );
    let recorded = RECORDED.with(|r| r.get()) && outcome == Outcome::Succeeded;
    (outcome, recorded)
}

thread_local! {
    static RECORDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static LAST_COMMAND_TAG: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// What psql and libpq report for a statement that completed as `qc`
/// ("INSERT 0 1", "SELECT 1", "CALL"): PostgreSQL's
/// `BuildQueryCompletionString`, which 15's bindings lack.
fn command_tag(qc: &pg_sys::QueryCompletion) -> String {
    // SAFETY: both take a command tag enum value and return a static
    // string or a flag; the name is never null for a valid tag.
    let (name, with_rows) = unsafe {
        (
            std::ffi::CStr::from_ptr(pg_sys::GetCommandTagName(qc.commandTag)),
            pg_sys::command_tag_display_rowcount(qc.commandTag),
        )
    };
    let name = name.to_string_lossy();
    match (with_rows, qc.commandTag == pg_sys::CommandTag::CMDTAG_INSERT) {
        (false, _) => name.into_owned(),
        // INSERT's tag still carries the OID column PostgreSQL 12 removed.
        (true, true) => format!("{name} 0 {}", qc.nprocessed),
        (true, false) => format!("{name} {}", qc.nprocessed),
    }
}

/// The command tag of the last statement of the command run last
/// (`INSERT 0 1`, `SELECT 1`, `CALL`), as a client would be told it; empty
/// if that command failed before its last statement completed.
pub fn last_command_tag() -> String {
    LAST_COMMAND_TAG.with(|t| t.borrow().clone())
}

fn run_with(
    command: &str,
    args: Option<&[Option<String>]>,
    before_commit: Option<&(dyn Fn() + std::panic::RefUnwindSafe)>,
    capture: Option<usize>,
    statement_timeout: StatementTimeout,
) -> Outcome {
    LAST_COMMAND_TAG.with(|t| t.borrow_mut().clear());
    let Ok(c_command) = CString::new(command) else {
        return Outcome::Failed {
            sqlstate: "22021".into(),
            message: "command contains a zero byte".into(),
            detail: None,
        };
    };
    // The memory everything lives in: it must outlive transaction commits
    // inside the string (a COMMIT statement ends the transaction context),
    // so it hangs off TopMemoryContext and is deleted at the end.
    // SAFETY: a child of TopMemoryContext (always there) with a 'static name
    // (the context keeps the pointer); deleted below, once.
    let cmd_cx = unsafe {
        pg_sys::AllocSetContextCreateInternal(
            pg_sys::TopMemoryContext,
            c"pg_jobs command".as_ptr(),
            pg_sys::ALLOCSET_DEFAULT_MINSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_INITSIZE as usize,
            pg_sys::ALLOCSET_DEFAULT_MAXSIZE as usize,
        )
    };
    let enforce = statement_timeout == StatementTimeout::Enforced;
    // SAFETY: run_statements' contract: we are a connected worker outside any
    // transaction (run's callers: the executor and daemon main loops),
    // `cmd_cx` was just created under TopMemoryContext, and `c_command`
    // outlives the call and the clean-up below.
    let result = PgTryBuilder::new(|| unsafe {
        run_statements(&c_command, args, cmd_cx, before_commit, capture, enforce)
            .map_err(|(code, message)| (code, message, None))
    })
    .catch_others(|e| {
        let report = match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        Err((
            sqlstate::unpack(report.sql_error_code() as i32),
            report.message().to_owned(),
            report.detail().map(str::to_owned),
        ))
    })
    .execute();
    // SAFETY: AbortOutOfAnyTransaction is safe in any transaction state;
    // after it nothing refers to `cmd_cx` (the portals and transactions that
    // used it are gone, and we switch away from it before deleting it), and
    // debug_query_string stops pointing at `c_command` before that is freed.
    // end_statement_timeout only needs a connected backend.
    unsafe {
        // After an ERROR the transaction (or block) is aborted but not
        // cleaned up; after success there is none. Either way, leave no
        // transaction behind, then drop the command's memory.
        pg_sys::AbortOutOfAnyTransaction();
        // An ERROR skipped the statement's disarming: what follows (the
        // executor's own statements, its wait in the pool) is never
        // subject to the command's statement_timeout.
        if enforce {
            crate::pg::timeout::end_statement_timeout();
        }
        pg_sys::MemoryContextSwitchTo(pg_sys::TopMemoryContext);
        pg_sys::MemoryContextDelete(cmd_cx);
        pg_sys::debug_query_string = std::ptr::null();
    }
    match result {
        Ok(()) => Outcome::Succeeded,
        Err((sqlstate, message, detail)) => Outcome::Failed {
            sqlstate,
            message,
            detail,
        },
    }
}

/// The statements of `command`, each a `RawStmt`.
///
/// # Safety
///
/// `list` is null or the valid `List` pg_parse_query returned.
unsafe fn raw_statements(list: *mut pg_sys::List) -> Vec<*mut pg_sys::RawStmt> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: a valid List's `elements` holds `length` cells; pg_parse_query's
    // cells are RawStmt pointers.
    unsafe {
        let len = (*list).length as usize;
        (0..len)
            .map(|i| (*(*list).elements.add(i)).ptr_value as *mut pg_sys::RawStmt)
            .collect()
    }
}

/// Parse, plan and run each statement of `command` (see [`run_with`]);
/// with `args`, its one statement with those values bound to its
/// parameters.
/// With `statement_timeout`, arm and disarm PostgreSQL's statement timeout
/// around each statement where exec_simple_query does
/// (`start_xact_command` and `finish_xact_command`, or the disarming
/// between two statements of one string).
///
/// # Safety
///
/// Called in a background worker connected to a database, outside any
/// transaction, inside a PgTry whose handler aborts whatever transaction an
/// ERROR leaves (and whose caller ends a statement timeout an ERROR left
/// running); `cmd_cx` is a memory context that outlives transactions
/// (a child of TopMemoryContext), and `command` outlives the call and
/// whatever `debug_query_string` use follows it.
unsafe fn run_statements(
    command: &CString,
    args: Option<&[Option<String>]>,
    cmd_cx: pg_sys::MemoryContext,
    before_commit: Option<&(dyn Fn() + std::panic::RefUnwindSafe)>,
    capture: Option<usize>,
    statement_timeout: bool,
) -> Result<(), (String, String)> {
    // SAFETY: this is exec_simple_query's sequence, run in a connected
    // worker outside any transaction (the caller's contract), on its only
    // thread. Every pointer handed to PostgreSQL is one it gave us for this
    // command (parse tree, queries, plans, portal, receiver) and lives in
    // `cmd_cx` or the portal's context, which outlive the calls that use
    // them; `command` outlives the call (debug_query_string is cleared by
    // our caller before it is freed). An ERROR anywhere unwinds through
    // pgrx's guards to the caller's PgTry, which aborts the transaction;
    // the Rust values held here (`stmts`, the closure) own no PostgreSQL
    // memory. `(*raw).stmt` and `(*portal)` are valid for the same reason:
    // fresh results of pg_parse_query and CreatePortal. The statement
    // timeout is armed inside the statement's transaction and disarmed
    // after it, on this thread, as the timeout functions require.
    unsafe {
        pg_sys::debug_query_string = command.as_ptr();
        pg_sys::pgstat_report_activity(pg_sys::BackendState::STATE_RUNNING, command.as_ptr());
        pg_sys::SetCurrentStatementStartTimestamp();

        let mut in_xact = false;
        // start_xact_command(): a transaction if none is open, and the
        // statement timeout of the session's current statement_timeout
        // (left running if it already is: the first statement's clock
        // starts before parsing, as in PostgreSQL).
        let start_xact = |in_xact: &mut bool| {
            if !*in_xact {
                pg_sys::StartTransactionCommand();
                *in_xact = true;
            }
            if statement_timeout {
                crate::pg::timeout::enable_statement_timeout();
            }
        };
        let end_statement = || {
            if statement_timeout {
                crate::pg::timeout::disable_statement_timeout();
            }
        };
        start_xact(&mut in_xact);
        pg_sys::MemoryContextSwitchTo(cmd_cx);
        let stmts = raw_statements(pg_sys::pg_parse_query(command.as_ptr()));
        // Commands stored before this was checked at submit.
        if stmts.iter().any(|raw| copies_with_the_client((**raw).stmt)) {
            return Err(("0A000".into(), COPY_WITH_THE_CLIENT.into()));
        }
        // Values are bound to one statement (checked at submit as well,
        // where the statements were counted too).
        if args.is_some() && stmts.len() > 1 {
            let e = pg_jobs_core::params::ArgsError::SeveralStatements {
                statements: stmts.len(),
            };
            return Err((e.sqlstate().into(), e.to_string()));
        }
        let implicit_block = stmts.len() > 1;
        let single_transaction = stmts
            .iter()
            .all(|raw| !manages_its_own_transactions((**raw).stmt));

        for (i, &raw) in stmts.iter().enumerate() {
            let is_last = i + 1 == stmts.len();
            start_xact(&mut in_xact);
            if implicit_block {
                pg_sys::BeginImplicitTransactionBlock();
            }
            pg_sys::MemoryContextSwitchTo(cmd_cx);
            pg_sys::check_for_interrupts!();

            let tag = pg_sys::CreateCommandTag((*raw).stmt);
            // With values, also for their types' input functions (as
            // exec_bind_message takes one for them).
            let needs_snapshot = pg_sys::analyze_requires_snapshot(raw) || args.is_some();
            if needs_snapshot {
                pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            }
            let (queries, params) = match args {
                None => (
                    pg_sys::pg_analyze_and_rewrite_fixedparams(
                        raw,
                        command.as_ptr(),
                        std::ptr::null_mut(),
                        0,
                        std::ptr::null_mut(),
                    ),
                    std::ptr::null_mut(),
                ),
                Some(values) => {
                    let (queries, types) = crate::exec::params::analyse(raw, command);
                    crate::exec::params::check_types(&types, values.len());
                    (queries, crate::exec::params::bind(&types, values))
                }
            };
            let plans = pg_sys::pg_plan_queries(
                queries,
                command.as_ptr(),
                pg_sys::CURSOR_OPT_PARALLEL_OK as i32,
                params,
            );
            if needs_snapshot {
                pg_sys::PopActiveSnapshot();
            }
            pg_sys::check_for_interrupts!();

            // An unnamed portal, run to completion at top level; its rows go
            // nowhere (results of async runs come with a later issue).
            let portal = pg_sys::CreatePortal(c"".as_ptr(), true, true);
            (*portal).visible = false;
            pg_sys::PortalDefineQuery(
                portal,
                std::ptr::null(),
                command.as_ptr(),
                tag,
                plans,
                std::ptr::null_mut(),
            );
            pg_sys::PortalStart(portal, params, 0, std::ptr::null_mut());
            let mut format: i16 = 0;
            pg_sys::PortalSetResultFormat(portal, 1, &mut format);
            // The last statement's rows are what jobs.result returns.
            let receiver = match capture {
                Some(cap) if is_last => crate::exec::result_capture::receiver(cap),
                _ => pg_sys::CreateDestReceiver(pg_sys::CommandDest::DestNone),
            };
            let mut qc = pg_sys::QueryCompletion::default();
            crate::pg::portal::run_to_completion(portal, receiver, &mut qc);
            if is_last {
                let completed = command_tag(&qc);
                LAST_COMMAND_TAG.with(|t| *t.borrow_mut() = completed);
            }
            if let Some(destroy) = (*receiver).rDestroy {
                destroy(receiver);
            }
            pg_sys::PortalDrop(portal, false);

            let is_transaction_stmt = (*(*raw).stmt).type_ == pg_sys::NodeTag::T_TransactionStmt;
            if is_last {
                if implicit_block {
                    pg_sys::EndImplicitTransactionBlock();
                }
                // finish_xact_command(): the timeout ends before the
                // commit (and before pg_jobs records the run in it).
                end_statement();
                if pg_sys::IsTransactionBlock() {
                    // BEGIN without COMMIT: a client disconnecting here would
                    // have its transaction rolled back. Say so instead of
                    // silently discarding the work.
                    return Err((
                    "25001".into(),
                    "the command left a transaction block open (BEGIN without COMMIT); it was rolled back"
                        .into(),
                ));
                }
                if let (Some(record), true) = (before_commit, single_transaction) {
                    pg_sys::CommandCounterIncrement();
                    pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
                    record();
                    pg_sys::PopActiveSnapshot();
                    RECORDED.with(|r| r.set(true));
                }
                pg_sys::CommitTransactionCommand();
                in_xact = false;
            } else if is_transaction_stmt {
                end_statement();
                pg_sys::CommitTransactionCommand();
                in_xact = false;
            } else {
                pg_sys::CommandCounterIncrement();
                // Each statement of a string has a timeout of its own: the
                // next one starts a fresh one (with the setting as it is
                // then).
                end_statement();
            }
        }
        if in_xact {
            // An empty command string: nothing ran.
            end_statement();
            pg_sys::CommitTransactionCommand();
        }
    }
    Ok(())
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// Every statement type of PostgreSQL's PreventInTransactionBlock callers
    /// (prevent_in_transaction_block.txt, derived from the 15 and 18 sources)
    /// is classified as managing its own transactions.
    #[pg_test]
    fn every_prevent_in_transaction_block_caller_is_classified() {
        let fixture = include_str!("prevent_in_transaction_block.txt");
        let mut n = 0;
        for line in fixture
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (stmt_type, example) = line
                .split_once(" | ")
                .expect("a fixture line is `type | example`");
            assert_eq!(super::classify(example), [true], "{stmt_type}: {example}");
            n += 1;
        }
        assert!(n >= 25, "the fixture lists {n} statement types");
    }

    /// Every statement form PostgreSQL runs through PreventInTransactionBlock
    /// (15 and 18), and the ones that commit internally, is never taken for
    /// a single transaction (which would make a false exactly-once claim).
    /// Only parsed, never run: the objects need not exist.
    #[pg_test]
    fn statements_that_manage_their_own_transactions() {
        for sql in [
            "VACUUM t",
            "CREATE INDEX CONCURRENTLY i ON t (x)",
            "REINDEX TABLE CONCURRENTLY t",
            "REINDEX DATABASE d",
            "DROP INDEX CONCURRENTLY i",
            "DROP INDEX CONCURRENTLY IF EXISTS i",
            "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
            "ALTER DATABASE d SET TABLESPACE ts",
            "CREATE DATABASE d",
            "DROP DATABASE IF EXISTS d",
            "ALTER SYSTEM SET work_mem = '1MB'",
            "CREATE TABLESPACE ts LOCATION '/nowhere'",
            "DROP TABLESPACE ts",
            "CLUSTER",
            "DISCARD ALL",
            "COMMIT PREPARED 'x'",
            "ROLLBACK PREPARED 'x'",
            "CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p",
            "ALTER SUBSCRIPTION s REFRESH PUBLICATION",
            "DROP SUBSCRIPTION s",
            "CALL p()",
            "DO $$BEGIN END$$",
            "COMMIT",
        ] {
            assert_eq!(super::classify(sql), [true], "{sql}");
        }
        for sql in [
            "SELECT 1",
            "INSERT INTO t VALUES (1)",
            "CREATE INDEX i ON t (x)",
            "DROP INDEX i",
            "DROP TABLE t",
            "ALTER TABLE p DETACH PARTITION c",
            "ALTER TABLE p DETACH PARTITION c FINALIZE",
            "ALTER DATABASE d SET work_mem = '1MB'",
            "ALTER DATABASE d CONNECTION LIMIT 5",
            "DISCARD PLANS",
        ] {
            assert_eq!(super::classify(sql), [false], "{sql}");
        }
    }
}
