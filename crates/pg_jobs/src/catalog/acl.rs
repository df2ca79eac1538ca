//! Access checks: which database a run targets, whether the caller may
//! run as a role, whether a role may still connect, which job or daemon of
//! a given name the caller owns, and how many a role has.

use crate::catalog::row;
use crate::pg::error::{raise, OrRaise};
use crate::pg::{self, bgw};
use pg_jobs_core::run::start::{self, WhyNot};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// The OID of database `name` (3D000 if there is none). Runs are
/// dispatched by OID: a renamed database keeps its jobs, and a new database
/// that takes an old name does not inherit them.
pub(crate) fn database_oid(name: &str) -> pg_sys::Oid {
    // Usually the current database (jobs.submit's default): known without
    // a catalog scan. Its name cannot change while we are connected.
    thread_local! {
        static CURRENT: std::cell::OnceCell<String> = const { std::cell::OnceCell::new() };
    }
    // SAFETY: a plain global, set once when the backend connects.
    let me = unsafe { pg_sys::MyDatabaseId };
    if me != pg_sys::InvalidOid
        && CURRENT.with(|c| c.get_or_init(|| crate::pg::bgw::database_name(me)).as_str() == name)
    {
        return me;
    }
    let c = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: called from SQL functions, so in a transaction, as the catalog
    // look-up needs; `c` is NUL-terminated and outlives the call. A missing
    // database raises an ERROR, which unwinds through pgrx's guard.
    let oid = unsafe { pg_sys::get_database_oid(c.as_ptr(), false) };
    // A run there could only end `crashed` (its executor cannot connect).
    let allows = Spi::get_one_with_args::<bool>(
        "SELECT datallowconn FROM pg_catalog.pg_database WHERE oid OPERATOR(pg_catalog.=) $1",
        &[oid.into()],
    );
    if matches!(allows, Ok(Some(false))) {
        raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("database \"{name}\" is not accepting connections"),
            Some("Its datallowconn is false (as for template0): no job can run there."),
        );
    }
    oid
}

/// The caller may act as `role` (SET ROLE semantics); superuser roles only
/// by superusers; `role` may connect to database `db`.
pub(crate) fn check_run_as(role: pg_sys::Oid, db: pg_sys::Oid) {
    // SAFETY: called from SQL functions, so in a transaction, as the
    // superuser look-ups (syscache) need; they take OIDs only. `raise`
    // unwinds (an ERROR), which these calls tolerate.
    let (me, superuser_role, i_am_superuser) = unsafe {
        (
            pg_sys::GetUserId(),
            pg_sys::superuser_arg(role),
            pg_sys::superuser(),
        )
    };
    // The membership and CONNECT checks need the same transaction, which
    // SQL functions run in.
    if !pg::acl::can_set_role(me, role) || (superuser_role && !i_am_superuser) {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("permission denied to run jobs as role \"{}\"", role_name(role)),
            Some("You can schedule jobs only as a role you could SET ROLE to; jobs of superusers only as a superuser."),
        );
    }
    if !pg::acl::may_connect(role, db) {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "role \"{}\" may not connect to database \"{}\"",
                role_name(role),
                bgw::database_name(db)
            ),
            Some("GRANT CONNECT ON DATABASE to the role first."),
        );
    }
}

pub(crate) fn role_name(role: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>("SELECT $1::pg_catalog.regrole::text", &[role.into()])
        .ok()
        .flatten()
        .unwrap_or_else(|| format!("oid {}", role.to_u32()))
}

/// The job called `name` that the caller may change: one owned by a role
/// the caller is a member of, preferring the caller's own.
pub(crate) fn find_job(name: &str) -> i64 {
    find_owned("job", name)
}

/// The `kind` (`job` or `daemon`, stored in `jobs.<kind>`) called `name`
/// that the caller may change: one owned by a role the caller acts for
/// ([`pg::acl::acts_for`], through `jobs._acts_for`: any membership up to
/// PostgreSQL 15; from 16 on, one that inherits or may `SET ROLE`),
/// preferring the caller's own.
pub(crate) fn find_owned(kind: &str, name: &str) -> i64 {
    // SAFETY: GetUserId only reads the backend's current user (it asserts it
    // is set, which it is in any connected session).
    let me = unsafe { pg_sys::GetUserId() };
    let rows: Vec<(i64, bool)> = Spi::connect(|c| {
        c.select(
            &format!(
                "SELECT id, owner::pg_catalog.oid OPERATOR(pg_catalog.=) $2 FROM jobs.{kind}
                  WHERE name OPERATOR(pg_catalog.=) $1 AND {acts_for}
                  ORDER BY 2 DESC, id",
                acts_for = crate::catalog::schema_version::acts_for_sql("owner")
            ),
            None,
            &[name.into(), me.into()],
        )
        .map(|t| t.map(|r| (row::get_req(&r, 1), row::get_req(&r, 2))).collect())
        .or_raise("looking up a job or daemon by name")
    });
    match rows.as_slice() {
        [] => raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("{kind} \"{name}\" does not exist"),
            Some(&format!(
                "SELECT name FROM jobs.{kind}_status lists the {kind}s you can change."
            )),
        ),
        [(id, _)] | [(id, true), ..] => *id,
        _ => raise(
            Code::ERRCODE_AMBIGUOUS_PARAMETER,
            format!("several roles you belong to have a {kind} called \"{name}\""),
            Some(&format!("SET ROLE to the {kind}'s owner first.")),
        ),
    }
}

/// Why runs of `role` in `db` can never start as they stand (`None`: they
/// can), as the run model decides it from the catalogs (syscache look-ups;
/// needs a transaction).
pub(crate) fn start_refusal(role: pg_sys::Oid, db: pg_sys::Oid) -> Option<WhyNot> {
    // SAFETY: called in a transaction (documented above), as syscache
    // look-ups need. Each tuple is null-checked, read only between its
    // SearchSysCache1 and ReleaseSysCache (a pg_authid tuple's fixed part
    // is a FormData_pg_authid), and released exactly once.
    unsafe {
        // A dropped database: the CONNECT check would raise an ERROR.
        let dbtup = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::DATABASEOID as i32,
            pg_sys::Datum::from(db.to_u32()),
        );
        if dbtup.is_null() {
            return start::refusal(false, None);
        }
        pg_sys::ReleaseSysCache(dbtup);
        let tup = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            pg_sys::Datum::from(role.to_u32()),
        );
        if tup.is_null() {
            return start::refusal(true, None);
        }
        let can_login = (*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_authid>(tup)).rolcanlogin;
        pg_sys::ReleaseSysCache(tup);
        // Asked only of a role that may log in (the model refuses a
        // NOLOGIN one first).
        let can_connect = !can_login || pg::acl::may_connect(role, db);
        start::refusal(
            true,
            Some(start::Owner {
                can_login,
                can_connect,
            }),
        )
    }
}
