//! Ownership as PostgreSQL records it: each role that owns a job or daemon
//! in this database has one *ownership anchor* here, a shell type
//! `jobs."jobs of <role>"` owned by that role (the decisions are
//! `pg_jobs_core::ownership`'s). PostgreSQL records the anchor's owner in
//! `pg_shdepend` as for any object, so `DROP ROLE` of the role is refused,
//! from any database, with PostgreSQL's own error listing this database,
//! until the role's jobs and daemons here are moved (`REASSIGN OWNED`,
//! which also moves the anchor) or removed (`DROP OWNED`, which also drops
//! it); the utility hook (`hooks/owned.rs`) does the pg_jobs side of both.
//!
//! Why an object of PostgreSQL's own: `pg_shdepend` rows naming pg_jobs'
//! tables would make `DROP ROLE`, `DROP OWNED` and `REASSIGN OWNED` fail
//! with internal errors (`getObjectDescription`, `performMultipleDeletions`
//! and `shdepReassignOwned` know only the system catalogs' classes). A shell
//! type is the smallest such object (one `pg_type` row, nothing to
//! execute), lives in pg_jobs' own schema where no ordinary role can create
//! objects, and reads plainly in PostgreSQL's message: `owner of type
//! jobs."jobs of alice"`. It depends automatically (`DEPENDENCY_AUTO`) on
//! the extension, so `DROP EXTENSION` takes it along, but it is not a
//! member of the extension: `DROP OWNED` can drop it and `pg_dump` dumps it
//! (by the role's name, and [`sync_all`] adopts it again after a restore).
//!
//! [`sync`] keeps a role's anchor in step with what it owns: every writer
//! of a job's or daemon's owner (`jobs.schedule`, `jobs.alter_job`,
//! `jobs.unschedule`, `jobs.daemon`, `jobs.drop_daemon`, REASSIGN and DROP
//! OWNED) calls it in the same transaction, so the anchor commits or rolls
//! back with the change.

use crate::catalog::schema_version;
use crate::pg::bgw;
use crate::pg::error::{raise, OrRaise};
use pg_jobs_core::ownership::{self, Anchor};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;
use std::ffi::{c_char, CStr, CString};

/// What the caller has just done to a role's jobs and daemons.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Change {
    /// Wrote a job or daemon that the role owns: it owns one now.
    Gained,
    /// Removed one, or gave one away: it may own nothing now.
    Lost,
    /// Anything, its anchors included (`REASSIGN OWNED` handed it another
    /// role's; `jobs._sync_ownership()`).
    Any,
}

/// The COMMENT of every anchor (`\dT+ jobs.*` shows it).
const ANCHOR_COMMENT: &CStr = c"pg_jobs ownership anchor: its owner owns jobs or daemons in this database, so DROP ROLE is refused until they are moved (REASSIGN OWNED) or dropped (DROP OWNED). Kept by pg_jobs.";

/// Make role `role`'s anchor in this database match what it owns, after
/// `change`. Nothing in a database whose pg_jobs schema predates anchors.
/// Runs as pg_jobs (its catalog writes are pg_jobs' own bookkeeping); the
/// caller has already checked that its caller may act for `role`.
pub(crate) fn sync(role: pg_sys::Oid, change: Change) {
    // The bootstrap superuser can neither be dropped nor have its objects
    // reassigned or dropped, and PostgreSQL records no dependency on it: it
    // needs no anchor (and gets rid of any reassigned to it).
    if role == pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID) && change != Change::Any {
        return;
    }
    if !schema_version::records_ownership() {
        return;
    }
    bgw::as_superuser(|| sync_as_pg_jobs(role, change));
}

/// [`sync`] for every role that owns a job or daemon here or has an anchor
/// here: what `jobs._sync_ownership()` does (the 0.4.0 upgrade runs it for
/// the owners it finds).
pub(crate) fn sync_all() {
    let roles: Vec<pg_sys::Oid> = bgw::as_superuser(|| {
        Spi::connect(|c| {
            c.select(
                "SELECT owner::pg_catalog.oid FROM jobs.job
                 UNION SELECT owner::pg_catalog.oid FROM jobs.daemon
                 UNION SELECT t.typowner FROM pg_catalog.pg_type t
                        WHERE t.typnamespace OPERATOR(pg_catalog.=) 'jobs'::pg_catalog.regnamespace
                          AND t.typtype OPERATOR(pg_catalog.=) 'p' AND NOT t.typisdefined
                 ORDER BY 1",
                None,
                &[],
            )
            .or_raise("listing the owners of jobs and daemons")
            .filter_map(|r| crate::catalog::row::get_opt::<pg_sys::Oid>(&r, 1))
            .collect()
        })
    });
    for role in roles {
        sync(role, Change::Any);
    }
}

fn sync_as_pg_jobs(role: pg_sys::Oid, change: Change) {
    // Syncs of one role take turns through a lock on the role (held to the
    // end of the transaction), as inserts of rows referencing a parent row
    // and the parent's deletion do: a writer that finds the anchor in place
    // shares the role (RowShareLock: such writers never wait for each
    // other), one that may create, rename or drop an anchor has it to itself
    // (ExclusiveLock). So an unschedule of a role's last job waits for
    // transactions that have just given the role a job, and then sees that
    // job (see `select_latest`) and keeps the anchor; and two first jobs of a
    // role make one anchor. Neither mode conflicts with the AccessShareLock
    // PostgreSQL takes on a role to record an object it owns; both keep a
    // concurrent DROP ROLE (AccessExclusiveLock) out until we commit.
    if change == Change::Gained {
        lock_role(role, pg_sys::RowShareLock);
        let Some(name) = role_name(role) else {
            dropped_concurrently(role)
        };
        let wanted = wanted_name(&name);
        if anchor_in_place(role, &wanted, jobs_namespace(), extension_oid()) {
            return; // the common case: one indexed look-up
        }
        // Put right with the role to ourselves. The shared lock is given
        // back first (this use of it: one taken earlier in the transaction
        // stays), so two transactions making a role's first anchor at once
        // queue instead of deadlocking on an upgrade.
        // SAFETY: releases one acquisition of a lock this transaction holds
        // (taken just above).
        unsafe {
            pg_sys::UnlockSharedObject(
                pg_sys::AuthIdRelationId,
                role,
                0,
                pg_sys::RowShareLock as pg_sys::LOCKMODE,
            )
        };
    }
    lock_role(role, pg_sys::ExclusiveLock);
    let Some(name) = role_name(role) else {
        if change == Change::Gained {
            dropped_concurrently(role)
        }
        // A role that no longer exists owns no object: only pg_jobs' rows
        // can still name it (from before anchors, or from a database not
        // yet updated when it was dropped). Nothing to anchor.
        return;
    };
    let wanted = wanted_name(&name);
    let ns = jobs_namespace();
    let ext = extension_oid();
    let bootstrap = role == pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID);
    let owns = !bootstrap && (change == Change::Gained || owns_any(role));
    if change == Change::Lost && owns {
        return; // it still owns something: its anchor stays as it is
    }
    let anchors = anchors_of(role, &wanted, ns, ext);
    let states: Vec<Anchor> = anchors.iter().map(|a| a.1).collect();
    let plan = ownership::plan(owns, &states);
    for &i in &plan.drop {
        drop_anchor(anchors[i].0);
    }
    if let Some(k) = plan.keep {
        let kept = anchors[k].0;
        if plan.tie_kept {
            tie(kept, ext);
        }
        if plan.rename_kept && !type_exists(&wanted, ns) {
            // SAFETY: in a transaction; `kept` is a shell type in `ns` (read
            // above), `wanted` a NUL-terminated name of at most 63 bytes that
            // no type in `ns` has (checked just now, with the role locked);
            // an ERROR (a concurrent change of the type) unwinds.
            unsafe {
                pg_sys::RenameTypeInternal(kept, wanted.as_ptr(), ns);
                pg_sys::CommandCounterIncrement();
            }
        }
    }
    if plan.create {
        create_anchor(role, name.to_bytes(), ns, ext);
    }
}

/// Lock role `role` (as a shared object) in `mode` to the end of the
/// transaction.
fn lock_role(role: pg_sys::Oid, mode: u32) {
    // SAFETY: in a transaction (a SQL function or a utility statement); a
    // lock on a shared object by OID, released at the transaction's end
    // (or by UnlockSharedObject). Acquiring it also takes in the catalog
    // changes committed meanwhile, so the syscache look-ups after it see
    // them.
    unsafe { pg_sys::LockSharedObject(pg_sys::AuthIdRelationId, role, 0, mode as pg_sys::LOCKMODE) };
}

/// The name the anchor of the role called `role_name` should have:
/// `jobs of <role>`.
fn wanted_name(role_name: &CStr) -> CString {
    to_cstring(ownership::anchor_name(role_name.to_bytes(), 1, clip))
}

/// The role a job or daemon was just written for was dropped after the
/// caller checked it and before we locked it: that job or daemon would be
/// orphaned. Refused, as PostgreSQL refuses an object whose owner was
/// dropped concurrently.
fn dropped_concurrently(role: pg_sys::Oid) -> ! {
    raise(
        Code::ERRCODE_UNDEFINED_OBJECT,
        format!("role with OID {} was dropped concurrently", role.to_u32()),
        None,
    )
}

/// The role's name, as the server stores it; `None` if there is no role.
fn role_name(role: pg_sys::Oid) -> Option<CString> {
    // SAFETY: in a transaction (syscache look-up); with noerr a missing role
    // gives NULL, else a palloc'd NUL-terminated copy, read at once.
    unsafe {
        let p = pg_sys::GetUserNameFromId(role, true);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_owned())
    }
}

/// The longest prefix of `bytes`, of at most `limit` bytes, that ends on a
/// character boundary in the database's encoding (`pg_mbcliplen`).
fn clip(bytes: &[u8], limit: usize) -> usize {
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    let limit = i32::try_from(limit).unwrap_or(i32::MAX);
    // SAFETY: `bytes` is valid for `len` bytes (pg_mbcliplen reads no
    // further, and needs no NUL); it only computes a length.
    let n = unsafe { pg_sys::pg_mbcliplen(bytes.as_ptr() as *const c_char, len, limit) };
    usize::try_from(n).unwrap_or(0)
}

fn to_cstring(bytes: Vec<u8>) -> CString {
    // A role name has no NUL byte (PostgreSQL's names are C strings).
    CString::new(bytes).unwrap_or_else(|_| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            "pg_jobs: a role name with a NUL byte",
            None,
        )
    })
}

fn jobs_namespace() -> pg_sys::Oid {
    // SAFETY: in a transaction (syscache look-up); the name is a literal.
    // The schema exists where anchors are recorded (`records_ownership`).
    unsafe { pg_sys::get_namespace_oid(c"jobs".as_ptr(), false) }
}

fn extension_oid() -> pg_sys::Oid {
    // SAFETY: in a transaction (catalog look-up); the name is a literal.
    unsafe { pg_sys::get_extension_oid(c"pg_jobs".as_ptr(), false) }
}

/// Whether a type called `name` exists in schema `ns` (the catalog as of
/// now, committed and our own).
fn type_exists(name: &CStr, ns: pg_sys::Oid) -> bool {
    // SAFETY: in a transaction (syscache look-up); `name` is a
    // NUL-terminated string that outlives the call (TYPENAMENSP takes the
    // name as a C string and the schema by OID).
    unsafe {
        pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::TYPENAMENSP as i32,
            pg_sys::Anum_pg_type_oid as pg_sys::AttrNumber,
            pg_sys::Datum::from(name.as_ptr()),
            pg_sys::Datum::from(ns),
            pg_sys::Datum::from(0usize),
            pg_sys::Datum::from(0usize),
        ) != pg_sys::InvalidOid
    }
}

/// The condition that an anchor `t` is tied to the extension (`$4`).
macro_rules! tied_sql {
    () => {
        "EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
                    AND d.objid OPERATOR(pg_catalog.=) t.oid AND d.objsubid OPERATOR(pg_catalog.=) 0
                    AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                    AND d.refobjid OPERATOR(pg_catalog.=) $4 AND d.deptype OPERATOR(pg_catalog.=) 'a')"
    };
}

/// The arguments of the anchor queries: the role, the name it wants, the
/// schema and the extension.
fn anchor_args(
    role: pg_sys::Oid,
    wanted: &CStr,
    ns: pg_sys::Oid,
    ext: pg_sys::Oid,
) -> [(pg_sys::Oid, pg_sys::Datum); 4] {
    // SAFETY: `wanted` is NUL-terminated; cstring_to_text pallocs a text
    // copy in the current memory context, which outlives the query.
    let name = unsafe { pg_sys::cstring_to_text(wanted.as_ptr()) };
    [
        (pg_sys::OIDOID, pg_sys::Datum::from(role)),
        (pg_sys::TEXTOID, pg_sys::Datum::from(name)),
        (pg_sys::OIDOID, pg_sys::Datum::from(ns)),
        (pg_sys::OIDOID, pg_sys::Datum::from(ext)),
    ]
}

/// Whether the role's anchor is there as it should be: a shell type of
/// its own, under the name it wants, tied to the extension.
fn anchor_in_place(role: pg_sys::Oid, wanted: &CStr, ns: pg_sys::Oid, ext: pg_sys::Oid) -> bool {
    select_latest(
        concat!(
            "SELECT t.typowner OPERATOR(pg_catalog.=) $1 AND t.typtype OPERATOR(pg_catalog.=) 'p'
                    AND NOT t.typisdefined AND ",
            tied_sql!(),
            "
               FROM pg_catalog.pg_type t
              WHERE t.typname OPERATOR(pg_catalog.=) $2::pg_catalog.name
                AND t.typnamespace OPERATOR(pg_catalog.=) $3\0"
        ),
        &anchor_args(role, wanted, ns, ext),
        |r| r.get::<bool>(1).unwrap_or(false),
    )
    .first()
    .copied()
    .unwrap_or(false)
}

/// The role's anchors (shell types it owns in schema `jobs`), oldest first.
fn anchors_of(
    role: pg_sys::Oid,
    wanted: &CStr,
    ns: pg_sys::Oid,
    ext: pg_sys::Oid,
) -> Vec<(pg_sys::Oid, Anchor)> {
    select_latest(
        concat!(
            "SELECT t.oid, t.typname OPERATOR(pg_catalog.=) $2::pg_catalog.name, ",
            tied_sql!(),
            "
               FROM pg_catalog.pg_type t
              WHERE t.typnamespace OPERATOR(pg_catalog.=) $3 AND t.typowner OPERATOR(pg_catalog.=) $1
                AND t.typtype OPERATOR(pg_catalog.=) 'p' AND NOT t.typisdefined
              ORDER BY t.oid\0"
        ),
        &anchor_args(role, wanted, ns, ext),
        |r| {
            (
                r.get::<pg_sys::Oid>(1).unwrap_or(pg_sys::InvalidOid),
                Anchor {
                    named_for_role: r.get::<bool>(2).unwrap_or(false),
                    tied: r.get::<bool>(3).unwrap_or(false),
                },
            )
        },
    )
}

/// Whether the role owns a job or a daemon in this database.
fn owns_any(role: pg_sys::Oid) -> bool {
    select_latest(
        "SELECT EXISTS (SELECT FROM jobs.job WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1)
             OR EXISTS (SELECT FROM jobs.daemon WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1)\0",
        &[(pg_sys::OIDOID, pg_sys::Datum::from(role))],
        |r| r.get::<bool>(1).unwrap_or(true),
    )
    .first()
    .copied()
    .unwrap_or(true)
}

/// Make the role's anchor: a shell type owned by it, under the first of its
/// names no type in `ns` has, tied to the extension, with its COMMENT.
fn create_anchor(role: pg_sys::Oid, role_name: &[u8], ns: pg_sys::Oid, ext: pg_sys::Oid) {
    for attempt in 1..=100 {
        let name = to_cstring(ownership::anchor_name(role_name, attempt, clip));
        if type_exists(&name, ns) {
            continue;
        }
        // SAFETY: in a transaction, as pg_jobs (the bootstrap superuser):
        // what CREATE TYPE <name> does for a shell type, with the owner
        // given. `name` is NUL-terminated, at most 63 bytes, cut on a
        // character boundary, and free in `ns` (checked just now, with the
        // role locked); `role` exists (its name was read under the lock, and
        // TypeShellMake's owner dependency re-checks it). The comment is a
        // NUL-terminated literal. An ERROR unwinds.
        let anchor = unsafe {
            let addr = pg_sys::TypeShellMake(name.as_ptr(), ns, role);
            // Its dependency rows become visible to the scan below.
            pg_sys::CommandCounterIncrement();
            // Made inside the extension's own script (the upgrade runs
            // jobs._sync_ownership()), it was recorded as a member of the
            // extension. An anchor must not be one: DROP OWNED could not
            // drop it, and pg_dump would not dump it.
            pg_sys::deleteDependencyRecordsForClass(
                pg_sys::TypeRelationId,
                addr.objectId,
                pg_sys::ExtensionRelationId,
                pg_sys::DependencyType::DEPENDENCY_EXTENSION as c_char,
            );
            pg_sys::CreateComments(addr.objectId, pg_sys::TypeRelationId, 0, ANCHOR_COMMENT.as_ptr());
            addr.objectId
        };
        tie(anchor, ext);
        return;
    }
    raise(
        Code::ERRCODE_DUPLICATE_OBJECT,
        "could not find a free name for a role's ownership anchor in schema jobs",
        Some("Types called \"jobs of <role> (n)\" take every name tried: drop the ones no role uses (jobs._sync_ownership() drops those of roles that own nothing)."),
    )
}

/// Have `DROP EXTENSION pg_jobs` take anchor `anchor` along: an automatic
/// dependency on the extension (it can still be dropped by itself).
fn tie(anchor: pg_sys::Oid, ext: pg_sys::Oid) {
    let depender = pg_sys::ObjectAddress {
        classId: pg_sys::TypeRelationId,
        objectId: anchor,
        objectSubId: 0,
    };
    let referenced = pg_sys::ObjectAddress {
        classId: pg_sys::ExtensionRelationId,
        objectId: ext,
        objectSubId: 0,
    };
    // SAFETY: in a transaction; both addresses are locals naming existing
    // objects (the anchor, read or made under the role's lock; the
    // extension, looked up in this transaction), as recordDependencyOn
    // expects.
    unsafe {
        pg_sys::recordDependencyOn(&depender, &referenced, pg_sys::DependencyType::DEPENDENCY_AUTO);
        pg_sys::CommandCounterIncrement();
    }
}

/// Drop anchor `anchor`, as DROP TYPE would (RESTRICT: should anything
/// depend on it, that is an error, not a silent cascade).
fn drop_anchor(anchor: pg_sys::Oid) {
    let addr = pg_sys::ObjectAddress {
        classId: pg_sys::TypeRelationId,
        objectId: anchor,
        objectSubId: 0,
    };
    // SAFETY: in a transaction; `addr` is a local naming a type read under
    // the role's lock. performDeletion takes the object's lock, removes its
    // dependencies, comment and owner record; an ERROR unwinds.
    unsafe {
        pg_sys::performDeletion(
            &addr,
            pg_sys::DropBehavior::DROP_RESTRICT,
            pg_sys::PERFORM_DELETION_INTERNAL as i32,
        );
        pg_sys::CommandCounterIncrement();
    }
}

/// A row [`select_latest`] lends its reader.
struct LatestRow {
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
}

impl LatestRow {
    /// Column `col` (1-based) as a value of its by-value type (bool, oid);
    /// `None` for NULL.
    fn get<T: FromDatum>(&self, col: i32) -> Option<T> {
        let mut isnull = false;
        // SAFETY: `tuple` and `desc` are a row of the SPI result that
        // `select_latest` is reading, valid until its SPI_finish, which
        // comes after the reader returns (a LatestRow is only lent to it).
        // SPI_getbinval checks `col` against the descriptor; the values read
        // are of by-value types, copied out by from_datum.
        unsafe {
            let d = pg_sys::SPI_getbinval(self.tuple, self.desc, col, &mut isnull);
            T::from_datum(d, isnull)
        }
    }
}

/// Run `sql` (a NUL-terminated SELECT of pg_jobs' own, fully qualified,
/// with arguments `args`) with the latest snapshot rather than the
/// transaction's, and read each row with `read`.
///
/// A REPEATABLE READ or SERIALIZABLE caller's snapshot predates the
/// transaction that held the role's lock before it: read with it, a
/// schedule would miss the anchor that an unschedule had just dropped (and
/// not make one), or an unschedule miss the job that a schedule had just
/// added (and drop the anchor it needs). The latest snapshot, taken after
/// the lock is ours, sees both. (As `runs::mark_succeeded` does; READ
/// COMMITTED callers see the same either way.)
fn select_latest<R>(
    sql: &str,
    args: &[(pg_sys::Oid, pg_sys::Datum)],
    mut read: impl FnMut(&LatestRow) -> R,
) -> Vec<R> {
    let sql = CStr::from_bytes_with_nul(sql.as_bytes()).unwrap_or_else(|_| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            "pg_jobs: an ownership query is not NUL-terminated",
            None,
        )
    });
    let mut types: Vec<pg_sys::Oid> = args.iter().map(|a| a.0).collect();
    let mut values: Vec<pg_sys::Datum> = args.iter().map(|a| a.1).collect();
    let nulls = vec![b' ' as c_char; args.len()];
    // SAFETY: in a transaction, outside parallel mode (pg_jobs' writing
    // functions are PARALLEL UNSAFE; a utility statement is never parallel),
    // where SPI may connect and GetLatestSnapshot may be taken. `types`,
    // `values` and `nulls` have one entry per argument and outlive the
    // execution; the argument values are OIDs and a text palloc'd by the
    // caller. Our own writes so far are made visible to the snapshot first
    // (CommandCounterIncrement). The result is read before SPI_finish frees
    // it; an ERROR unwinds, and the abort that follows ends the SPI
    // connection.
    unsafe {
        pg_sys::CommandCounterIncrement();
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            raise(Code::ERRCODE_INTERNAL_ERROR, "pg_jobs: SPI_connect failed", None);
        }
        let plan = pg_sys::SPI_prepare(sql.as_ptr(), types.len() as i32, types.as_mut_ptr());
        if plan.is_null() {
            raise(
                Code::ERRCODE_INTERNAL_ERROR,
                "pg_jobs: cannot prepare an ownership query",
                None,
            );
        }
        let rc = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            std::ptr::null_mut(),
            true,
            false,
            0,
        );
        if rc != pg_sys::SPI_OK_SELECT as i32 {
            raise(
                Code::ERRCODE_INTERNAL_ERROR,
                format!("pg_jobs: an ownership query failed: SPI returned {rc}"),
                None,
            );
        }
        let table = pg_sys::SPI_tuptable;
        let mut out = Vec::new();
        if !table.is_null() {
            for i in 0..pg_sys::SPI_processed as usize {
                out.push(read(&LatestRow {
                    tuple: *(*table).vals.add(i),
                    desc: (*table).tupdesc,
                }));
            }
        }
        pg_sys::SPI_finish();
        out
    }
}
