//! Privilege checks whose C entry points differ between PostgreSQL majors.
//!
//! PostgreSQL 16 replaced the per-object-kind ACL and ownership checks
//! (`pg_database_aclcheck`, `pg_database_ownercheck`, …) with generic ones
//! that take the catalog's OID (`object_aclcheck`, `object_ownercheck`),
//! and split a role membership's right to `SET ROLE` from its other
//! rights (the `SET` option of `GRANT role TO member`,
//! `member_can_set_role`). Each difference has its one home here; callers
//! ask the question, not the version.
//!
//! Every function needs a transaction (the checks read the syscache and the
//! role membership cache) and raises an ERROR, through pgrx's guard, if a
//! catalog look-up fails.

use pgrx::pg_sys;

/// Whether `role` has the CONNECT privilege on database `db` (which must
/// exist: a dropped database raises an ERROR).
pub fn may_connect(role: pg_sys::Oid, db: pg_sys::Oid) -> bool {
    database_aclcheck(db, role, pg_sys::ACL_CONNECT as _) == pg_sys::AclResult::ACLCHECK_OK
}

/// PostgreSQL 15 and earlier: the database-specific check.
#[cfg(not(any(feature = "pg16", feature = "pg17", feature = "pg18")))]
fn database_aclcheck(db: pg_sys::Oid, role: pg_sys::Oid, mode: pg_sys::AclMode) -> pg_sys::AclResult::Type {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::pg_database_aclcheck(db, role, mode) }
}

/// PostgreSQL 16 and later: the generic check, given the catalog.
#[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
fn database_aclcheck(db: pg_sys::Oid, role: pg_sys::Oid, mode: pg_sys::AclMode) -> pg_sys::AclResult::Type {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::object_aclcheck(pg_sys::DatabaseRelationId, db, role, mode) }
}

/// Whether `role` owns database `db` (superusers own everything).
/// PostgreSQL 15 and earlier: the database-specific check.
#[cfg(not(any(feature = "pg16", feature = "pg17", feature = "pg18")))]
pub fn owns_database(role: pg_sys::Oid, db: pg_sys::Oid) -> bool {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::pg_database_ownercheck(db, role) }
}

/// Whether `role` owns database `db` (superusers own everything).
/// PostgreSQL 16 and later: the generic check, given the catalog.
#[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
pub fn owns_database(role: pg_sys::Oid, db: pg_sys::Oid) -> bool {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::object_ownercheck(pg_sys::DatabaseRelationId, db, role) }
}

/// Whether `member` may `SET ROLE` to `role`: what running something as
/// `role` on `member`'s behalf requires. Superusers may become any role.
/// PostgreSQL 15 and earlier: every membership carries that right (what
/// `SET ROLE` checks there is `is_member_of_role`).
#[cfg(not(any(feature = "pg16", feature = "pg17", feature = "pg18")))]
pub fn can_set_role(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::is_member_of_role(member, role) }
}

/// Whether `member` may `SET ROLE` to `role`: what running something as
/// `role` on `member`'s behalf requires. Superusers may become any role.
/// PostgreSQL 16 and later: a membership granted `WITH SET FALSE` does not
/// let its holder become the role, so neither may pg_jobs act as it on the
/// holder's behalf; `member_can_set_role` is what `SET ROLE` checks.
#[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
pub fn can_set_role(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::member_can_set_role(member, role) }
}

/// Whether `member` may see and act on the jobs, runs and daemons owned by
/// `role`: pg_jobs' one visibility rule, behind row-level security, the
/// views and every function that finds a job, run or daemon
/// (`jobs._acts_for`). Superusers act for every role.
/// PostgreSQL 15 and earlier: any membership (what `pg_has_role(…,
/// 'MEMBER')` tests; every membership there may `SET ROLE`).
#[cfg(not(any(feature = "pg16", feature = "pg17", feature = "pg18")))]
pub fn acts_for(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::is_member_of_role(member, role) }
}

/// Whether `member` may see and act on the jobs, runs and daemons owned by
/// `role`: pg_jobs' one visibility rule, behind row-level security, the
/// views and every function that finds a job, run or daemon
/// (`jobs._acts_for`). Superusers act for every role.
/// PostgreSQL 16 and later: a membership that inherits the role's
/// privileges (what PostgreSQL's own owner checks ask) or may `SET ROLE` to
/// it; one granted `WITH INHERIT FALSE, SET FALSE` (a bare group
/// membership, e.g. for `pg_hba.conf`) gives neither, so it shows nothing
/// of the role's work: what runs as a role is the role's to see.
#[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
pub fn acts_for(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe { pg_sys::has_privs_of_role(member, role) || pg_sys::member_can_set_role(member, role) }
}

/// Whether `member` monitors the cluster: a superuser, or a role with the
/// privileges of `pg_read_all_stats` (which `pg_monitor` has), the roles
/// PostgreSQL lets read every session's activity. Such a role sees every
/// role's jobs, runs, daemons and queues and the cluster-wide counters of
/// `jobs.metrics`, and acts on none of them (issue 17).
pub fn monitors(member: pg_sys::Oid) -> bool {
    // SAFETY: called in a transaction (this module's contract); OIDs only.
    unsafe {
        pg_sys::superuser_arg(member)
            || pg_sys::has_privs_of_role(member, pg_sys::Oid::from(pg_sys::ROLE_PG_READ_ALL_STATS))
    }
}

/// Whether `member` sees what `role` owns: it acts for `role`, or monitors
/// the cluster (`jobs._sees`).
pub fn sees(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    acts_for(member, role) || monitors(member)
}
