//! What `jobs.job` and `jobs.daemon` share: rows a role owns by name (a
//! name is unique per owner). The statements that count, remove, compare
//! and move a role's rows are the same for both tables; they live here
//! once, for the table [`Owned`] names.

use crate::catalog::row;
use crate::pg::error::OrRaise;
use pgrx::prelude::*;
use pgrx::spi::SpiResult;

/// Which of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owned {
    Job,
    Daemon,
}

impl Owned {
    /// The table's name in schema `jobs` (and the noun for messages).
    pub(crate) fn table(self) -> &'static str {
        match self {
            Owned::Job => "job",
            Owned::Daemon => "daemon",
        }
    }
}

/// How many rows `owner` has here, and whether one of them is called
/// `name` (as pg_jobs, past row-level security). For the bounds in
/// `sql_api::bounds`.
pub(crate) fn count(kind: Owned, owner: pg_sys::Oid, name: &str) -> (i64, bool) {
    Spi::connect(|c| {
        c.select(
            &format!(
                "SELECT pg_catalog.count(*), COALESCE(pg_catalog.bool_or(name OPERATOR(pg_catalog.=) $2), false)
                   FROM jobs.{} WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
                kind.table()
            ),
            None,
            &[owner.into(), name.into()],
        )
        .map(|t| {
            t.into_iter()
                .next()
                .map_or((0, false), |r| (row::get_req::<i64>(&r, 1), row::get_req::<bool>(&r, 2)))
        })
    })
    .or_raise("counting a role's jobs or daemons")
}

/// Remove row `id` (a job's run history stays; a daemon's scheduler stops
/// its process); returns its owner (`None`: it was gone already).
pub(crate) fn delete(kind: Owned, id: i64) -> SpiResult<Option<pg_sys::Oid>> {
    Spi::connect_mut(|c| {
        c.update(
            &format!(
                "DELETE FROM jobs.{} WHERE id OPERATOR(pg_catalog.=) $1 RETURNING owner::pg_catalog.oid",
                kind.table()
            ),
            None,
            &[id.into()],
        )
        .map(|t| {
            t.into_iter()
                .next()
                .and_then(|r| row::get_opt::<pg_sys::Oid>(&r, 1))
        })
    })
}

/// The name of a row of role `from` that a row of role `to` already has
/// (the first by name), if any: what REASSIGN OWNED cannot merge.
pub(crate) fn name_clash(kind: Owned, from: pg_sys::Oid, to: pg_sys::Oid) -> Option<String> {
    let table = kind.table();
    Spi::connect(|c| {
        c.select(
            &format!(
                "SELECT a.name FROM jobs.{table} a JOIN jobs.{table} b ON b.name OPERATOR(pg_catalog.=) a.name
                  WHERE a.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                    AND b.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $2
                  ORDER BY a.name LIMIT 1"
            ),
            None,
            &[from.into(), to.into()],
        )
        .or_raise("comparing two roles' job or daemon names")
        .next()
        .map(|r| row::get_req::<String>(&r, 1))
    })
}

/// Give role `to` the rows of role `from` (REASSIGN OWNED; a running
/// daemon restarts as `to`, its owner being part of its definition);
/// returns their ids.
pub(crate) fn reassign(kind: Owned, from: pg_sys::Oid, to: pg_sys::Oid) -> Vec<i64> {
    Spi::connect_mut(|c| {
        c.update(
            &format!(
                "UPDATE jobs.{} SET owner = $2::pg_catalog.regrole
                  WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1 RETURNING id",
                kind.table()
            ),
            None,
            &[from.into(), to.into()],
        )
        .or_raise("reassigning jobs or daemons")
        .map(|r| row::get_req::<i64>(&r, 1))
        .collect()
    })
}

/// Remove the rows of role `role` (DROP OWNED; a job's run history stays,
/// a daemon's scheduler stops it); returns their ids.
pub(crate) fn delete_owned_by(kind: Owned, role: pg_sys::Oid) -> Vec<i64> {
    Spi::connect_mut(|c| {
        c.update(
            &format!(
                "DELETE FROM jobs.{} WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1 RETURNING id",
                kind.table()
            ),
            None,
            &[role.into()],
        )
        .or_raise("dropping a role's jobs or daemons")
        .map(|r| row::get_req::<i64>(&r, 1))
        .collect()
    })
}
