//! Roles as pg_cron names them: by exact name (a `username` of
//! `CaseOwner` is the role "CaseOwner", never `caseowner`), with pg_cron's
//! errors for a role that is missing or cannot log in.

use crate::pg::error::{raise, OrRaise};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// The calling role (`current_user`).
pub(super) fn me() -> pg_sys::Oid {
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    unsafe { pg_sys::GetUserId() }
}

/// Whether the calling role is a superuser.
pub(super) fn i_am_superuser() -> bool {
    // SAFETY: a syscache look-up of the current user, in the calling
    // transaction (SQL functions run in one).
    unsafe { pg_sys::superuser() }
}

/// The role called exactly `name`, which must be able to log in (pg_cron
/// runs a job by connecting as its user): 42704 if there is none, 42501 if
/// it has no LOGIN.
pub(super) fn login_role(name: &str) -> pg_sys::Oid {
    let found = Spi::connect(|c| {
        c.select(
            "SELECT oid, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
            None,
            &[name.into()],
        )
        .map(|t| {
            t.into_iter().next().map(|r| {
                (
                    crate::catalog::row::get_req::<pg_sys::Oid>(&r, 1),
                    crate::catalog::row::get_req::<bool>(&r, 2),
                )
            })
        })
    })
    .or_raise("looking up a role");
    match found {
        None => raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("role \"{name}\" does not exist"),
            None,
        ),
        Some((_, false)) => raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("role \"{name}\" can not log in"),
            Some("Jobs may only be run by roles that have the LOGIN attribute."),
        ),
        Some((oid, true)) => oid,
    }
}

/// `role` may connect to database `db`, in pg_cron's words if not.
pub(super) fn check_connect(role: pg_sys::Oid, db: pg_sys::Oid, db_name: &str) {
    if !crate::pg::acl::may_connect(role, db) {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!(
                "User {} does not have CONNECT privilege on {db_name}",
                crate::catalog::acl::role_name(role)
            ),
            None,
        );
    }
}
