//! `args`, as `jobs.submit`, `jobs.schedule` and `jobs.alter_job` check
//! them: everything about a command's values that can be known before it
//! runs is an error at the call, with its SQLSTATE, and nothing is
//! written.
//!
//! Known from the text alone: an array of one dimension, within the
//! bounds; the command one statement; as many values as its highest `$n`
//! (found by PostgreSQL's lexer). Known by analysis, when the run's
//! database is this one: each parameter's type, and whether each value
//! reads as it. The analysis is the run's own (variable parameter types),
//! done as the caller with the `search_path` a new session of the caller
//! would have (the run's session starts from its role's defaults, not
//! from a `SET` of the caller's), inside an internal subtransaction that
//! is always rolled back: the locks it takes are released and nothing it
//! did is left. If the analysis itself fails (a table created later, the
//! privileges of another `run_as` role), the call is accepted, and the
//! run reports what is wrong then. So is a call whose analysis would wait
//! more than [`ANALYSIS_LOCK_TIMEOUT_MS`] for a lock another session holds
//! on what the command reads (a long `ALTER TABLE`): a submit without
//! values never waits for one, and one with values should not wait long.

use crate::exec::params::{analyse, bind, check_types, highest_parameter, raise_args_error};
use pg_jobs_core::params::{self, Args, ArgsError};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use std::ffi::CString;

/// The values an `args => text[]` argument gives, as they are stored:
/// `None` for NULL or an empty array (no parameters). Refuses an array of
/// more than one dimension and values beyond the bounds.
pub(crate) fn given(args: Option<pgrx::Array<&str>>) -> Option<Args> {
    let array = args?;
    let values: Args = array.iter().map(|v| v.map(str::to_owned)).collect();
    let raw = array.into_array_type();
    // SAFETY: `raw` is the (detoasted) array the values were just read
    // from, allocated in the function call's memory context and alive for
    // the call; its header's `ndim` is a plain int.
    let dimensions = unsafe { (*raw).ndim };
    if dimensions > 1 {
        raise_args_error(&ArgsError::NotOneDimensional {
            dimensions: usize::try_from(dimensions).unwrap_or(0),
        });
    }
    let values = params::normalize(Some(values))?;
    if let Err(e) = params::check_size(&values) {
        raise_args_error(&e);
    }
    Some(values)
}

/// Check that `values` fit `command` (parsed already: `statements`
/// statements), which will run in database `datid`: see the module's
/// documentation. Raises the first misfit.
pub(crate) fn check_fit(command: &str, statements: usize, values: &Args, datid: pg_sys::Oid) {
    // The command passed check_command: no zero byte.
    let Ok(c_command) = CString::new(command) else {
        return;
    };
    if let Err(e) = params::check_shape(statements, highest_parameter(&c_command), values.len()) {
        raise_args_error(&e);
    }
    // SAFETY: a plain global, set once when the backend connected.
    if datid != unsafe { pg_sys::MyDatabaseId } {
        return; // analysed where it runs, when it runs
    }
    if let Verdict::Refused(report) = analyse_in_subtransaction(&c_command, values) {
        report.raise();
    }
}

/// The longest the analysis at submit waits for a lock (unless the
/// session's own `lock_timeout` is shorter).
pub(crate) const ANALYSIS_LOCK_TIMEOUT_MS: i32 = 100;

/// What analysing the command with its values said.
enum Verdict {
    /// The values read as the types the command gives its parameters.
    Fits,
    /// The command could not be analysed here (yet).
    CannotTell,
    /// The values do not fit: this error.
    Refused(Report),
}

/// An error caught, to be raised again once its subtransaction is gone.
struct Report {
    code: PgSqlErrorCode,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

impl Report {
    fn of(e: CaughtError) -> Report {
        let r = match e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r,
            CaughtError::RustPanic { ereport, .. } => ereport,
        };
        Report {
            code: r.sql_error_code(),
            message: r.message().to_owned(),
            detail: r.detail().map(str::to_owned),
            hint: r.hint().map(str::to_owned),
        }
    }

    fn raise(self) -> ! {
        let mut report = pgrx::pg_sys::panic::ErrorReport::new(self.code, self.message, "pg_jobs");
        if let Some(d) = self.detail {
            report = report.set_detail(d);
        }
        if let Some(h) = self.hint {
            report = report.set_hint(h);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// Analyse `command` with variable parameter types and read `values` as
/// the types it gives them, in an internal subtransaction rolled back
/// whatever happens.
fn analyse_in_subtransaction(command: &std::ffi::CStr, values: &Args) -> Verdict {
    // SAFETY: reads of two globals, always valid in a transaction.
    let (saved_cx, saved_owner) = unsafe { (pg_sys::CurrentMemoryContext, pg_sys::CurrentResourceOwner) };
    // SAFETY: a SQL function runs inside a transaction, where an internal
    // subtransaction may begin (a null name is allowed).
    unsafe { pg_sys::BeginInternalSubTransaction(std::ptr::null()) };
    let verdict = PgTryBuilder::new(|| {
        let Some(types) = parameter_types(command) else {
            return Verdict::CannotTell;
        };
        check_types(&types, values.len());
        // SAFETY: in the subtransaction, with the snapshot the calling
        // statement set active; the parameter list is made in the
        // subtransaction's memory, which its rollback frees (it is only
        // made to see whether the values read).
        unsafe { bind(&types, values) };
        Verdict::Fits
    })
    .catch_others(|e| Verdict::Refused(Report::of(e)))
    .execute();
    // SAFETY: whatever happened above was caught, so the subtransaction we
    // began is still the current one (an ERROR inside it was flushed by
    // the catch, as PL/pgSQL's exception blocks do before rolling back):
    // roll it back, then restore the memory context and resource owner of
    // the enclosing transaction, which are still alive.
    unsafe {
        pg_sys::RollbackAndReleaseCurrentSubTransaction();
        pg_sys::MemoryContextSwitchTo(saved_cx);
        pg_sys::CurrentResourceOwner = saved_owner;
    }
    verdict
}

/// The type of each parameter `$1 … $n` of one-statement `command` as
/// analysis decides it, or `None` if it cannot be analysed here. Errors
/// that are the statement's own verdict on its parameters once it was
/// analysed — a type nothing decides (42P18, which the analysis itself
/// raises since PostgreSQL 15), two types for one parameter (42P08) —
/// are passed on, and so is a cancel; any other error means "cannot
/// tell here". Runs inside the subtransaction of
/// [`analyse_in_subtransaction`].
fn parameter_types(command: &std::ffi::CStr) -> Option<Vec<pg_sys::Oid>> {
    PgTryBuilder::new(|| {
        // SAFETY: in a transaction (the subtransaction), on the backend's
        // only thread: the settings made are local to the subtransaction,
        // whose rollback restores them; search_path's value is the
        // setting's own reset string (valid while we use it), LockTimeout
        // a plain global read. The parse tree is the
        // current memory context's; its first element is a RawStmt of
        // this parse (the command has one statement, as checked), and the
        // snapshot pushed around the analysis is popped after it.
        unsafe {
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                pg_sys::GetConfigOptionResetString(c"search_path".as_ptr()),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_LOCAL,
                true,
                0,
                false,
            );
            let current = pg_sys::LockTimeout;
            if current == 0 || current > ANALYSIS_LOCK_TIMEOUT_MS {
                let ms = std::ffi::CString::new(ANALYSIS_LOCK_TIMEOUT_MS.to_string()).unwrap_or_default();
                pg_sys::set_config_option(
                    c"lock_timeout".as_ptr(),
                    ms.as_ptr(),
                    pg_sys::GucContext::PGC_USERSET,
                    pg_sys::GucSource::PGC_S_SESSION,
                    pg_sys::GucAction::GUC_ACTION_LOCAL,
                    true,
                    0,
                    false,
                );
            }
            let list = pg_sys::pg_parse_query(command.as_ptr());
            if list.is_null() || (*list).length < 1 {
                return None;
            }
            let raw = (*(*list).elements).ptr_value as *mut pg_sys::RawStmt;
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
            let (_, types) = analyse(raw, command);
            pg_sys::PopActiveSnapshot();
            Some(types)
        }
    })
    .catch_others(|e| {
        let code = match &e {
            CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => r.sql_error_code(),
            CaughtError::RustPanic { ereport, .. } => ereport.sql_error_code(),
        };
        match code {
            PgSqlErrorCode::ERRCODE_INDETERMINATE_DATATYPE
            | PgSqlErrorCode::ERRCODE_AMBIGUOUS_PARAMETER
            // A cancel (or a shutdown) is not the command's fault.
            | PgSqlErrorCode::ERRCODE_QUERY_CANCELED
            | PgSqlErrorCode::ERRCODE_ADMIN_SHUTDOWN => e.rethrow(),
            _ => None,
        }
    })
    .execute()
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn highest(sql: &str) -> usize {
        let c = std::ffi::CString::new(sql).expect("no NUL in a test command");
        crate::exec::params::highest_parameter(&c)
    }

    /// The count is the lexer's: a `$n` inside a string, a dollar-quoted
    /// body, a comment or a quoted identifier is no parameter, and one in
    /// an identifier (`a$1`) is part of the name.
    #[pg_test]
    fn the_highest_parameter_is_the_lexers() {
        assert_eq!(highest("SELECT 1"), 0);
        assert_eq!(highest("SELECT $1"), 1);
        assert_eq!(highest("SELECT $2::int, $1"), 2);
        assert_eq!(highest("SELECT $12"), 12);
        assert_eq!(
            highest("SELECT '$1', $$ $2 $$, $tag$ $3 $tag$, \"$4\", E'\\' $5', $1"),
            1
        );
        assert_eq!(highest("SELECT 1 -- $3\n, /* $4 /* $5 */ */ $2"), 2);
        assert_eq!(highest("SELECT a$1 FROM t$2"), 0);
        assert_eq!(highest("CALL p($1, $2, $3)"), 3);
    }

    /// `SQLSTATE message` of the error `SELECT {sql}` raises (caught in a
    /// PL/pgSQL exception block, so in a subtransaction), or "no error".
    fn sqlstate_of(sql: &str) -> String {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.pgj_err(q text) RETURNS text LANGUAGE plpgsql AS $f$
               BEGIN EXECUTE q; RETURN 'no error';
               EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ' ' || SQLERRM; END $f$",
        )
        .unwrap();
        Spi::get_one_with_args::<String>("SELECT pg_temp.pgj_err($1)", &[format!("SELECT {sql}").into()])
            .unwrap()
            .unwrap()
    }

    /// What can be known at submit is refused there, with its SQLSTATE.
    #[pg_test]
    fn submit_refuses_values_that_do_not_fit() {
        Spi::run(
            "CREATE TYPE pgj_mood AS ENUM ('ok'); CREATE DOMAIN pgj_pos AS int NOT NULL CHECK (VALUE > 0)",
        )
        .unwrap();
        for (sql, want) in [
            (
                "jobs.submit('SELECT 1; SELECT $1', args => '{x}')",
                "22023 args need a command of one statement",
            ),
            (
                "jobs.submit('SELECT 1', args => '{x}')",
                "22023 args has 1 value but the command has no parameters",
            ),
            (
                "jobs.submit('SELECT $1, $2', args => '{x}')",
                "22023 the command has 2 parameters ($1, $2) but args has 1 value",
            ),
            (
                "jobs.submit('SELECT $1', args => '{{a},{b}}')",
                "22023 args must be a one-dimensional array",
            ),
            (
                "jobs.submit('SELECT $1::int', args => '{x}')",
                "22P02 args[1]: invalid input syntax for type integer: \"x\"",
            ),
            (
                "jobs.submit('SELECT $2::pgj_mood, $1::int', args => '{1,bad}')",
                "22P02 args[2]: invalid input value for enum pgj_mood: \"bad\"",
            ),
            (
                "jobs.submit('SELECT $1::pgj_pos', args => '{0}')",
                "23514 args[1]: value for domain pgj_pos violates check constraint",
            ),
            (
                "jobs.submit('SELECT $1::pgj_pos', args => ARRAY[NULL])",
                "23502 args[1]: domain pgj_pos does not allow null values",
            ),
            (
                "jobs.submit('SELECT $1 IS NULL', args => '{1}')",
                "42P18 could not determine data type of parameter $1",
            ),
            (
                "jobs.submit('SELECT $2::int', args => '{1,2}')",
                "42P18 could not determine data type of parameter $1",
            ),
        ] {
            let got = sqlstate_of(sql);
            assert!(got.contains(want), "{sql}: {got}");
        }
        let n = Spi::get_one::<i64>("SELECT count(*) FROM jobs.run").unwrap();
        assert_eq!(n, Some(0), "a refused submit wrote a run");
    }

    /// Values that fit are kept with the run; NULL and an empty array are
    /// "no values"; what cannot be analysed here yet is accepted.
    #[pg_test]
    fn submit_keeps_the_values_that_fit() {
        let args = |sql: &str| {
            let id = Spi::get_one::<i64>(&format!("SELECT {sql}")).unwrap().unwrap();
            Spi::get_one_with_args::<String>(
                "SELECT coalesce(args::text, 'NULL') FROM jobs.run WHERE id = $1",
                &[id.into()],
            )
            .unwrap()
            .unwrap()
        };
        assert_eq!(
            args("jobs.submit('SELECT $1::int, $2', args => ARRAY['1', NULL])"),
            "{1,NULL}"
        );
        assert_eq!(args("jobs.submit('SELECT 1', args => '{}')"), "NULL");
        assert_eq!(args("jobs.submit('SELECT 1', args => NULL)"), "NULL");
        assert_eq!(args("jobs.submit('SELECT 1')"), "NULL");
        // The table does not exist yet: the run will tell.
        assert_eq!(
            args("jobs.submit('INSERT INTO pgj_later VALUES ($1)', args => '{x}')"),
            "{x}"
        );
    }

    /// The analysis leaves nothing behind: its locks go with its
    /// subtransaction, and the session's search_path is as it was.
    #[pg_test]
    fn the_analysis_at_submit_leaves_no_lock() {
        let locks = || {
            Spi::get_one::<i64>(
                "SELECT count(*) FROM pg_locks
                  WHERE pid = pg_backend_pid() AND relation = 'pg_catalog.pg_seclabel'::regclass",
            )
            .unwrap()
        };
        assert_eq!(locks(), Some(0));
        Spi::run("SET LOCAL search_path = pg_catalog").unwrap();
        let before = Spi::get_one::<String>("SELECT current_setting('search_path')").unwrap();
        // Analysed (the values are checked against the type it gives $1) ...
        let got = sqlstate_of(
            "jobs.submit('SELECT provider FROM pg_catalog.pg_seclabel WHERE objoid = $1', args => '{x}')",
        );
        assert!(
            got.starts_with("22P02 args[1]: invalid input syntax for type oid"),
            "{got}"
        );
        Spi::run("SELECT jobs.submit('SELECT provider FROM pg_catalog.pg_seclabel WHERE objoid = $1', args => '{1}')")
            .unwrap();
        // ... and its AccessShareLock on the table went with it.
        assert_eq!(locks(), Some(0));
        let after = Spi::get_one::<String>("SELECT current_setting('search_path')").unwrap();
        assert_eq!(before, after);
    }

    /// jobs.schedule keeps the values; jobs.alter_job checks a new command
    /// against them, new values against the command, and `'{}'` removes them.
    #[pg_test]
    fn schedule_and_alter_job_keep_check_and_remove_values() {
        let job_args = || {
            Spi::get_one::<String>("SELECT coalesce(args::text, 'NULL') FROM jobs.job WHERE name = 'pgj_p'")
                .unwrap()
                .unwrap()
        };
        Spi::run("SELECT jobs.schedule('pgj_p', '@hourly', 'SELECT $1::int', args => '{5}')").unwrap();
        assert_eq!(job_args(), "{5}");
        let got = sqlstate_of("jobs.alter_job('pgj_p', command => 'SELECT $1::int, $2')");
        assert!(got.starts_with("22023 the command has 2 parameters"), "{got}");
        let got = sqlstate_of("jobs.alter_job('pgj_p', args => '{x}')");
        assert!(got.starts_with("22P02 args[1]:"), "{got}");
        Spi::run("SELECT jobs.alter_job('pgj_p', timeout => '1 minute')").unwrap();
        assert_eq!(job_args(), "{5}", "NULL args leaves them");
        Spi::run("SELECT jobs.alter_job('pgj_p', args => '{7}')").unwrap();
        assert_eq!(job_args(), "{7}");
        Spi::run("SELECT jobs.alter_job('pgj_p', command => 'SELECT 1', args => '{}')").unwrap();
        assert_eq!(job_args(), "NULL");
        Spi::run("SELECT jobs.schedule('pgj_p', '@hourly', 'SELECT $1::int', args => '{9}')").unwrap();
        Spi::run("SELECT jobs.schedule('pgj_p', '@hourly', 'SELECT 2')").unwrap();
        assert_eq!(job_args(), "NULL", "scheduling again without args removes them");
    }
}
