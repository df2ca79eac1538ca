//! Whether this database has pg_jobs at all, and what its installed SQL
//! schema has, for code that must work with every version the library
//! serves: a database stays at 0.1.0 until `ALTER EXTENSION pg_jobs
//! UPDATE`, while the new library is already loaded (one library per
//! cluster, one schema version per database).

use crate::pg::error::OrRaise;
use pgrx::pg_sys;
use pgrx::spi::SpiClient;

/// Whether the extension is installed in this database (a catalog look-up;
/// needs a transaction).
pub fn extension_exists() -> bool {
    // SAFETY: called in a transaction (the scheduler's probe and each of
    // its passes), as the catalog look-up needs; the name is a
    // NUL-terminated literal.
    unsafe { pg_sys::get_extension_oid(c"pg_jobs".as_ptr(), true) != pg_sys::InvalidOid }
}

/// Whether this database's schema has daemons (`jobs.daemon` came with
/// 0.2.0: a database still at 0.1.0 has none).
pub fn has_daemons(client: &mut SpiClient) -> bool {
    client
        .select(
            "SELECT pg_catalog.to_regclass('jobs.daemon') IS NOT NULL",
            None,
            &[],
        )
        .and_then(|t| t.first().get_one::<bool>())
        .or_raise("probing for jobs.daemon")
        .unwrap_or(false)
}

/// Whether `jobs.<table>` has column `column` (syscache look-ups; needs a
/// transaction). An absence is asked again each time: `ALTER EXTENSION
/// ... UPDATE` adds columns under a running worker or session. A presence
/// is remembered for the life of the process: the per-run paths ask several
/// times per run, and an update never removes a column. (Only dropping the
/// extension and creating an older version would; that terminates the
/// database's workers, and a session that did it itself gets an error
/// naming the missing column, never a wrong result.)
fn has_column(table: &'static std::ffi::CStr, column: &'static std::ffi::CStr) -> bool {
    thread_local! {
        static PRESENT: std::cell::RefCell<Vec<(usize, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = (table.as_ptr() as usize, column.as_ptr() as usize);
    if PRESENT.with(|p| p.borrow().contains(&key)) {
        return true;
    }
    let present = probe_column(table, column);
    if present {
        PRESENT.with(|p| p.borrow_mut().push(key));
    }
    present
}

/// [`has_column`], asked of the catalog.
fn probe_column(table: &std::ffi::CStr, column: &std::ffi::CStr) -> bool {
    // SAFETY: called in a transaction (documented above), as the catalog
    // look-ups need; every name is a NUL-terminated CStr that outlives the
    // call, and they take and return plain OIDs and numbers.
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"jobs".as_ptr(), true);
        if ns == pg_sys::InvalidOid {
            return false;
        }
        let rel = pg_sys::get_relname_relid(table.as_ptr(), ns);
        rel != pg_sys::InvalidOid
            && pg_sys::get_attnum(rel, column.as_ptr()) != pg_sys::InvalidAttrNumber as pg_sys::AttrNumber
    }
}

/// 0.2.0 and later keep target databases by OID (`datid`) in jobs.job and
/// jobs.run; 0.1.0 only by name.
pub fn databases_by_oid() -> bool {
    has_column(c"run", c"datid")
}

/// 0.4.0 and later record who owns jobs and daemons where PostgreSQL's
/// `DROP ROLE`, `REASSIGN OWNED` and `DROP OWNED` see it (ownership
/// anchors, see [`crate::catalog::ownership`]); `jobs._sync_ownership()`
/// came with them. A database not yet updated keeps 0.3.0's behaviour.
pub fn records_ownership() -> bool {
    pgrx::Spi::get_one::<bool>("SELECT pg_catalog.to_regprocedure('jobs._sync_ownership()') IS NOT NULL")
        .or_raise("probing for jobs._sync_ownership()")
        .unwrap_or(false)
}

/// 0.4.0 and later keep the values of a command's parameters (`args` in
/// `jobs.run` and `jobs.job`); a database not yet updated has no column
/// for them, and its runs have none.
pub fn has_args() -> bool {
    has_column(c"run", c"args")
}

/// 0.4.0 and later have named queues (`jobs.queue`, `jobs.run.queue`).
pub fn has_queues() -> bool {
    has_column(c"run", c"queue")
}

/// 0.4.0 and later keep the command tag of a successful run
/// (`jobs.run.command_tag`, what `cron.job_run_details.return_message`
/// shows).
pub fn records_command_tags() -> bool {
    has_column(c"run", c"command_tag")
}

/// 0.4.0 and later keep a failed run's error DETAIL (`jobs.run.detail`).
pub fn records_error_details() -> bool {
    has_column(c"run", c"detail")
}

/// 0.4.0 and later have runs that wait for others (`jobs.run.depends_on`).
pub fn has_waiting_runs() -> bool {
    has_column(c"run", c"depends_on")
}

/// 0.4.0 and later have jobs that follow other jobs (`jobs.job.after_job`).
pub fn has_job_chains() -> bool {
    has_column(c"job", c"after_job")
}

/// 0.4.0 and later keep the definitions pg_dump carries
/// (`jobs.definition`) and why a restore paused a job.
pub fn has_definitions() -> bool {
    has_column(c"job", c"disabled_reason")
}

/// The SQL that says whether the current user acts for the role in
/// `column` (a `regrole` or `oid` column): 0.4.0's `jobs._acts_for`, or,
/// in a database not yet updated (which lacks it), 0.3.0's membership test.
pub fn acts_for_sql(column: &str) -> String {
    let has =
        pgrx::Spi::get_one::<bool>("SELECT pg_catalog.to_regprocedure('jobs._acts_for(oid)') IS NOT NULL")
            .or_raise("probing for jobs._acts_for")
            .unwrap_or(false);
    if has {
        format!("jobs._acts_for({column}::pg_catalog.oid)")
    } else {
        format!("pg_catalog.pg_has_role({column}::pg_catalog.oid, 'MEMBER')")
    }
}
