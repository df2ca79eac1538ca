//! `jobs.daemon`: daemon definitions, as their scheduler's supervisor
//! loads them and records their exits, and as the SQL API (`jobs.daemon`,
//! `jobs.stop_daemon`, …) writes them.

use crate::catalog::row;
use crate::pg::error::OrRaise;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiHeapTupleData, SpiResult};

/// A daemon's definition with what decides whether it can start, as
/// [`load`] reads it. `None` where the row or a joined catalog has NULL.
pub(crate) struct DaemonRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) owner: pg_sys::Oid,
    /// Its database's current name (else the one stored).
    pub(crate) database: String,
    /// Its database's OID; `None` if it does not exist (any more).
    pub(crate) target: Option<pg_sys::Oid>,
    pub(crate) command: String,
    pub(crate) run_on: String,
    pub(crate) restart_delay_ms: i64,
    pub(crate) max_restart_delay_ms: i64,
    pub(crate) enabled: bool,
    /// Its owner role exists.
    pub(crate) role_exists: Option<bool>,
    pub(crate) can_login: Option<bool>,
    pub(crate) can_connect: Option<bool>,
    pub(crate) allows_connections: Option<bool>,
    /// Restarts recorded by [`record_exit`].
    pub(crate) restarts: i64,
    /// Its owner role is a superuser (not bounded by the per-role start budget).
    pub(crate) owner_is_superuser: Option<bool>,
}

impl DaemonRow {
    fn from_row(r: &SpiHeapTupleData) -> DaemonRow {
        DaemonRow {
            id: row::get_req(r, 1),
            name: row::get_req(r, 2),
            owner: row::get_req(r, 3),
            database: row::get_req(r, 4),
            target: row::get_opt(r, 5),
            command: row::get_req(r, 6),
            run_on: row::get_req(r, 7),
            restart_delay_ms: row::get_req(r, 8),
            max_restart_delay_ms: row::get_req(r, 9),
            enabled: row::get_req(r, 10),
            role_exists: row::get_opt(r, 11),
            can_login: row::get_opt(r, 12),
            can_connect: row::get_opt(r, 13),
            allows_connections: row::get_opt(r, 14),
            restarts: row::get_req(r, 15),
            owner_is_superuser: row::get_opt(r, 16),
        }
    }
}

/// Every daemon defined in this database.
pub(crate) fn load(client: &mut SpiClient) -> Vec<DaemonRow> {
    client
        .select(
            "SELECT d.id, d.name, d.owner::pg_catalog.oid, COALESCE(db.datname, d.database)::text, db.oid,
                        d.command, d.run_on,
                        (EXTRACT(EPOCH FROM d.restart_delay) * 1000)::int8,
                        (EXTRACT(EPOCH FROM d.max_restart_delay) * 1000)::int8,
                        d.enabled, ro.oid IS NOT NULL, ro.rolcanlogin,
                        CASE WHEN db.oid IS NOT NULL AND ro.oid IS NOT NULL
                             THEN pg_catalog.has_database_privilege(ro.oid, db.oid, 'CONNECT') END,
                        db.datallowconn, d.restarts, ro.rolsuper
                   FROM jobs.daemon d
                   LEFT JOIN pg_catalog.pg_roles ro ON ro.oid OPERATOR(pg_catalog.=) d.owner::pg_catalog.oid
                   LEFT JOIN pg_catalog.pg_database db ON db.oid OPERATOR(pg_catalog.=) d.datid",
            None,
            &[],
        )
        .or_raise("reading daemon definitions")
        .map(|r| DaemonRow::from_row(&r))
        .collect()
}

/// How a daemon's process ended, as [`record_exit`] keeps it.
pub(crate) struct ExitRecord<'a> {
    /// It will be restarted (counts as a restart).
    pub(crate) restarting: bool,
    /// `Exit::as_str`.
    pub(crate) exit: &'a str,
    /// Empty: none.
    pub(crate) sqlstate: &'a str,
    /// Empty: none.
    pub(crate) message: &'a str,
}

/// Record the exit of daemon `id`'s process.
pub(crate) fn record_exit(client: &mut SpiClient, id: i64, e: &ExitRecord) {
    client
        .update(
            "UPDATE jobs.daemon SET restarts = restarts + $2::int8, last_exit = $3,
                            last_exit_at = pg_catalog.clock_timestamp(),
                            last_sqlstate = NULLIF($4, ''), last_message = NULLIF($5, '')
                      WHERE id OPERATOR(pg_catalog.=) $1",
            None,
            &[
                id.into(),
                (e.restarting as i64).into(),
                e.exit.into(),
                e.sqlstate.into(),
                e.message.into(),
            ],
        )
        .or_raise("recording a daemon's exit");
}

/// Show the current names of renamed databases in daemon definitions.
pub(crate) fn refresh_database_names(client: &mut SpiClient) {
    client
        .update(
            "UPDATE jobs.daemon t SET database = d.datname FROM pg_catalog.pg_database d
                      WHERE d.oid OPERATOR(pg_catalog.=) t.datid AND t.database OPERATOR(pg_catalog.<>) d.datname",
            None,
            &[],
        )
        .or_raise("refreshing database names");
}

/// A daemon as `jobs.daemon` defines it, validated (delays in milliseconds).
pub(crate) struct DaemonDef<'a> {
    pub(crate) name: &'a str,
    pub(crate) owner: pg_sys::Oid,
    pub(crate) command: &'a str,
    pub(crate) database: &'a str,
    pub(crate) datid: pg_sys::Oid,
    pub(crate) run_on: &'a str,
    pub(crate) restart_delay_ms: i64,
    pub(crate) max_restart_delay_ms: i64,
}

/// Declare daemon `def` (per owner and name), or redefine it; returns its id.
pub(crate) fn save(def: &DaemonDef) -> SpiResult<Option<i64>> {
    Spi::get_one_with_args::<i64>(
        "INSERT INTO jobs.daemon AS d (name, owner, command, database, run_on, restart_delay, max_restart_delay, datid)
             VALUES ($1, $2::pg_catalog.regrole, $3, $4, $5,
                     $6 * INTERVAL '1 millisecond', $7 * INTERVAL '1 millisecond', $8)
             ON CONFLICT (owner, name) DO UPDATE
                SET command = EXCLUDED.command, database = EXCLUDED.database, datid = EXCLUDED.datid,
                    run_on = EXCLUDED.run_on,
                    restart_delay = EXCLUDED.restart_delay, max_restart_delay = EXCLUDED.max_restart_delay
             RETURNING d.id",
        &[
            def.name.into(),
            def.owner.into(),
            def.command.into(),
            def.database.into(),
            def.run_on.into(),
            def.restart_delay_ms.into(),
            def.max_restart_delay_ms.into(),
            def.datid.into(),
        ],
    )
}

/// Stop (`false`) or start daemon `id`.
pub(crate) fn set_enabled(id: i64, enabled: bool) -> SpiResult<()> {
    if enabled {
        Spi::run_with_args(
            "UPDATE jobs.daemon SET enabled = true WHERE id OPERATOR(pg_catalog.=) $1",
            &[id.into()],
        )
    } else {
        Spi::run_with_args(
            "UPDATE jobs.daemon SET enabled = false WHERE id OPERATOR(pg_catalog.=) $1",
            &[id.into()],
        )
    }
}
