//! pg_jobs: background jobs, schedules and supervised daemons inside
//! PostgreSQL.
//!
//! Processes (all PostgreSQL background workers):
//! * `launcher` — one per cluster, static; keeps a scheduler in each
//!   database that has the extension;
//! * `scheduler` — one per such database; hands runs to executors, marks
//!   runs whose worker vanished `crashed`;
//! * `executor` — runs one run at a time as the run's owner, and stays
//!   (pooled) for the next run of the same database and role;
//! * `daemon` — one per running daemon (a user's long-running command),
//!   supervised by its database's scheduler;
//! * `promotion watcher` — a hot standby's only: wakes the schedulers the
//!   moment the server is promoted.
//!
//! Their shared state is the `registry` (shared memory, one LWLock). The
//! decisions they make live in the pure crate `pg_jobs_core`; this crate is
//! the shell of workers, shared memory, hooks, GUCs and SQL around it.

use pgrx::prelude::*;

mod catalog;
mod cron;
mod exec;
mod gucs;
mod hooks;
mod pg;
mod shmem;
mod sql_api;
mod workers;

::pgrx::pg_module_magic!();

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // Shared memory, the launcher and the hooks every backend needs can only
    // be set up by the postmaster, while it loads shared_preload_libraries.
    // SAFETY: a plain bool global of PostgreSQL's, read on the loading
    // process's only thread.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        pgrx::pg_sys::panic::ErrorReport::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "pg_jobs must be loaded via shared_preload_libraries",
            "_PG_init",
        )
        .set_hint("Add pg_jobs to shared_preload_libraries in postgresql.conf and restart the server.")
        .report(PgLogLevel::ERROR);
    }
    gucs::init();
    shmem::init();
    hooks::init();
    // Under pg_upgrade no worker may run (see `pg::bgw::binary_upgrade`):
    // no launcher, so no scheduler, executor or daemon either. The settings,
    // shared memory and hooks stay, so the server and its pg_jobs settings
    // load as usual.
    if pg::bgw::binary_upgrade() {
        log!("pg_jobs: binary upgrade mode (pg_upgrade): no pg_jobs worker will start");
    } else {
        workers::launcher::register();
    }
}

extension_sql_file!("../sql/schema.sql", name = "schema", bootstrap);
extension_sql_file!("../sql/views.sql", name = "views", finalize);

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn submit_queues_a_run_owned_by_the_caller() {
        let id = Spi::get_one::<i64>("SELECT jobs.submit('SELECT 1')")
            .unwrap()
            .unwrap();
        let (status, owner_is_me) = Spi::get_two_with_args::<String, bool>(
            "SELECT status, owner::pg_catalog.oid = (SELECT oid FROM pg_roles WHERE rolname = current_user)
               FROM jobs.run WHERE id = $1",
            &[id.into()],
        )
        .unwrap();
        assert_eq!(status.as_deref(), Some("queued"));
        assert_eq!(owner_is_me, Some(true));
    }

    #[pg_test(error = "command is not valid SQL: syntax error at or near \"SELEC\"")]
    fn submit_rejects_invalid_sql() {
        Spi::run("SELECT jobs.submit('SELEC 1')").unwrap();
    }

    #[pg_test(error = "command is empty")]
    fn submit_rejects_an_empty_command() {
        Spi::run("SELECT jobs.submit('  ;  ')").unwrap();
    }

    /// The error of a bad command carries SQLSTATE 42601 (syntax_error):
    /// the DO block re-raises whatever SQLSTATE it caught as its message.
    #[pg_test(error = "42601")]
    fn submit_error_carries_sqlstate() {
        Spi::run(
            "DO $$ BEGIN PERFORM jobs.submit('SELEC 1'); EXCEPTION WHEN OTHERS THEN
                 RAISE EXCEPTION USING MESSAGE = SQLSTATE; END $$",
        )
        .unwrap();
    }

    #[pg_test(error = "permission denied for table run")]
    fn run_history_is_read_only_for_users() {
        Spi::run("CREATE ROLE pgj_tester; SET ROLE pgj_tester").unwrap();
        Spi::run("UPDATE jobs.run SET status = 'succeeded'").unwrap();
    }

    #[pg_test]
    fn a_role_sees_only_its_own_runs() {
        Spi::run("CREATE ROLE pgj_alice; CREATE ROLE pgj_bob").unwrap();
        Spi::run("SET ROLE pgj_alice; SELECT jobs.submit('SELECT 1'); RESET ROLE").unwrap();
        Spi::run("SET ROLE pgj_bob; SELECT jobs.submit('SELECT 2'); SELECT jobs.submit('SELECT 3')").unwrap();
        let bob_sees = Spi::get_one::<i64>("SELECT count(*) FROM jobs.run").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert_eq!(bob_sees, Some(2));
        let superuser_sees = Spi::get_one::<i64>("SELECT count(*) FROM jobs.run").unwrap();
        assert!(superuser_sees.unwrap() >= 3);
    }

    /// PostgreSQL 16 and later: a membership granted `WITH SET FALSE` does
    /// not let its holder `SET ROLE`, so it does not let it run jobs as the
    /// role either.
    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    #[pg_test(error = "permission denied to run jobs as role \"pgj_target\"")]
    fn run_as_needs_the_set_option_of_a_membership() {
        Spi::run("CREATE ROLE pgj_target; CREATE ROLE pgj_holder").unwrap();
        Spi::run("GRANT pgj_target TO pgj_holder WITH INHERIT TRUE, SET FALSE; SET ROLE pgj_holder").unwrap();
        Spi::run("SELECT jobs.submit('SELECT 1', run_as => 'pgj_target')").unwrap();
    }

    /// The role `pgj_target<n>` with a job, a queued run and a daemon, and
    /// `pgj_holder<n>` granted membership in it by `grant` (a `GRANT`
    /// clause); returns the run's id. The session is left as superuser.
    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    fn target_with_work_and_holder(n: usize, grant: &str) -> i64 {
        Spi::run(&format!(
            "CREATE ROLE pgj_target{n}; CREATE ROLE pgj_holder{n};
             GRANT pgj_target{n} TO pgj_holder{n} {grant};
             SET ROLE pgj_target{n}; SELECT jobs.schedule('pgj_job', '@daily', 'SELECT 1');
             SELECT jobs.daemon('pgj_daemon', 'SELECT pg_sleep(1)')"
        ))
        .unwrap();
        let run = Spi::get_one::<i64>("SELECT jobs.submit('SELECT 1')")
            .unwrap()
            .unwrap();
        Spi::run("RESET ROLE").unwrap();
        run
    }

    /// PostgreSQL 16 and later: a membership granted with neither `INHERIT`
    /// nor `SET` gives none of the role's privileges and no way to become
    /// it, so its holder neither sees nor changes the role's work, by any
    /// surface (docs/security.md, "What each role sees and changes").
    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    #[pg_test]
    fn a_bare_membership_neither_sees_nor_changes_the_roles_work() {
        let run = target_with_work_and_holder(0, "WITH INHERIT FALSE, SET FALSE");
        Spi::run("SET ROLE pgj_holder0").unwrap();
        for (what, sql) in [
            ("jobs.job", "SELECT count(*) FROM jobs.job"),
            ("jobs.run", "SELECT count(*) FROM jobs.run"),
            ("jobs.daemon", "SELECT count(*) FROM jobs.daemon"),
            ("jobs.job_status", "SELECT count(*) FROM jobs.job_status"),
            ("jobs.daemon_status", "SELECT count(*) FROM jobs.daemon_status"),
        ] {
            assert_eq!(
                Spi::get_one::<i64>(sql).unwrap(),
                Some(0),
                "{what} shows the role's rows"
            );
        }
        // Each call must fail as "does not exist" (42704), not act.
        Spi::run(&format!(
            "DO $$ BEGIN
               BEGIN PERFORM jobs.alter_job('pgj_job', command => 'SELECT 2');
                 RAISE EXCEPTION 'alter_job found the job';
               EXCEPTION WHEN undefined_object THEN NULL; END;
               BEGIN PERFORM jobs.stop_daemon('pgj_daemon');
                 RAISE EXCEPTION 'stop_daemon found the daemon';
               EXCEPTION WHEN undefined_object THEN NULL; END;
               BEGIN PERFORM jobs.cancel({run});
                 RAISE EXCEPTION 'cancel found the run';
               EXCEPTION WHEN undefined_object THEN NULL; END;
               BEGIN PERFORM jobs.result({run});
                 RAISE EXCEPTION 'result found the run';
               EXCEPTION WHEN undefined_object THEN NULL; END;
               BEGIN PERFORM jobs.wait({run}, '0 seconds');
                 RAISE EXCEPTION 'wait found the run';
               EXCEPTION WHEN undefined_object THEN NULL; END;
             END $$"
        ))
        .unwrap();
        Spi::run("RESET ROLE").unwrap();
        let status =
            Spi::get_one_with_args::<String>("SELECT status FROM jobs.run WHERE id = $1", &[run.into()]);
        assert_eq!(status.unwrap().as_deref(), Some("queued"));
    }

    /// PostgreSQL 16 and later: a membership that inherits the role's
    /// privileges, or one that may `SET ROLE` to it, is enough to see and
    /// change the role's work.
    #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
    #[pg_test]
    fn inherit_or_set_alone_sees_the_roles_work() {
        for (n, grant) in ["WITH INHERIT TRUE, SET FALSE", "WITH INHERIT FALSE, SET TRUE"]
            .into_iter()
            .enumerate()
        {
            let run = target_with_work_and_holder(n, grant);
            Spi::run(&format!("SET ROLE pgj_holder{n}")).unwrap();
            let seen = Spi::get_one::<i64>(
                "SELECT (SELECT count(*) FROM jobs.job) + (SELECT count(*) FROM jobs.run)
                      + (SELECT count(*) FROM jobs.daemon_status)",
            )
            .unwrap();
            assert_eq!(seen, Some(3), "{grant}");
            Spi::run("SELECT jobs.alter_job('pgj_job', command => 'SELECT 2')").unwrap();
            let cancelled = Spi::get_one_with_args::<bool>("SELECT jobs.cancel($1)", &[run.into()]).unwrap();
            assert_eq!(cancelled, Some(true), "{grant}");
            Spi::run("RESET ROLE").unwrap();
        }
    }

    /// A membership that lets its holder `SET ROLE` lets it run jobs as the
    /// role, whether or not it inherits the role's privileges (PostgreSQL
    /// 16's `INHERIT FALSE, SET TRUE`; on 15 every membership).
    #[pg_test]
    fn run_as_follows_set_role() {
        Spi::run("CREATE ROLE pgj_target; CREATE ROLE pgj_holder").unwrap();
        #[cfg(any(feature = "pg16", feature = "pg17", feature = "pg18"))]
        Spi::run("GRANT pgj_target TO pgj_holder WITH INHERIT FALSE, SET TRUE").unwrap();
        #[cfg(not(any(feature = "pg16", feature = "pg17", feature = "pg18")))]
        Spi::run("GRANT pgj_target TO pgj_holder").unwrap();
        Spi::run("SET ROLE pgj_holder").unwrap();
        let id = Spi::get_one::<i64>("SELECT jobs.submit('SELECT 1', run_as => 'pgj_target')");
        Spi::run("RESET ROLE").unwrap();
        let owner = Spi::get_one_with_args::<String>(
            "SELECT owner::text FROM jobs.run WHERE id = $1",
            &[id.unwrap().into()],
        );
        assert_eq!(owner.unwrap().as_deref(), Some("pgj_target"));
    }

    #[pg_test(error = "invalid schedule \"61 * * * *\": minute field: 61 is out of range 0-59")]
    fn schedule_rejects_an_out_of_range_field() {
        Spi::run("SELECT jobs.schedule('x', '61 * * * *', 'SELECT 1')").unwrap();
    }

    #[pg_test]
    fn schedule_upserts_by_name_and_owner() {
        let a = Spi::get_one::<i64>("SELECT jobs.schedule('j', '@hourly', 'SELECT 1')").unwrap();
        let b =
            Spi::get_one::<i64>("SELECT jobs.schedule('j', '*/5 * * * *', 'SELECT 2', timezone => 'UTC')")
                .unwrap();
        assert_eq!(a, b);
        let (sched, cmd) =
            Spi::get_two::<String, String>("SELECT schedule, command FROM jobs.job WHERE name = 'j'")
                .unwrap();
        assert_eq!(
            (sched.as_deref(), cmd.as_deref()),
            (Some("*/5 * * * *"), Some("SELECT 2"))
        );
    }

    #[pg_test]
    fn next_runs_follow_the_vixie_day_rule() {
        let days = Spi::get_one::<String>(
            "SELECT string_agg(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ',')
               FROM jobs.next_runs('0 0 13 * */2', 3, '2026-03-01 12:34:56Z', 'UTC') t",
        )
        .unwrap();
        assert_eq!(days.as_deref(), Some("2026-06-13,2026-08-13,2026-09-13"));
    }

    #[pg_test]
    fn job_status_shows_the_next_due_time() {
        Spi::run("SELECT jobs.schedule('daily', '@daily', 'SELECT 1', timezone => 'UTC')").unwrap();
        let ok = Spi::get_one::<bool>(
            "SELECT next_due = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'
               FROM jobs.job_status WHERE name = 'daily'",
        )
        .unwrap();
        assert_eq!(ok, Some(true));
    }

    #[pg_test]
    fn workers_view_shows_the_launcher() {
        let launchers = Spi::get_one::<i64>(
            "SELECT count(*) FROM jobs.workers WHERE kind = 'launcher' AND pid IS NOT NULL AND database IS NULL",
        )
        .unwrap();
        assert_eq!(launchers, Some(1));
        let cols = Spi::get_one::<String>(
            "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute
              WHERE attrelid = 'jobs.workers'::regclass AND attnum > 0",
        )
        .unwrap();
        assert_eq!(
            cols.as_deref(),
            Some("kind,pid,database,role,job_id,run_id,state,since,daemon_id")
        );
    }

    #[pg_test]
    fn daemon_declares_and_redefines_by_name() {
        let a = Spi::get_one::<i64>("SELECT jobs.daemon('d', 'SELECT 1')").unwrap();
        let b = Spi::get_one::<i64>("SELECT jobs.daemon('d', 'SELECT 2', run_on => 'any')").unwrap();
        assert_eq!(a, b);
        let row = Spi::get_two::<String, String>("SELECT command, run_on FROM jobs.daemon WHERE name = 'd'")
            .unwrap();
        assert_eq!(row, (Some("SELECT 2".into()), Some("any".into())));
        Spi::run("SELECT jobs.stop_daemon('d')").unwrap();
        let enabled = Spi::get_one::<bool>("SELECT enabled FROM jobs.daemon WHERE name = 'd'").unwrap();
        assert_eq!(enabled, Some(false));
        Spi::run("SELECT jobs.drop_daemon('d')").unwrap();
        let left = Spi::get_one::<i64>("SELECT count(*) FROM jobs.daemon").unwrap();
        assert_eq!(left, Some(0));
    }

    #[pg_test(error = "invalid run_on \"replica\": expected primary, standby or any")]
    fn daemon_rejects_an_unknown_run_on() {
        Spi::run("SELECT jobs.daemon('d', 'SELECT 1', run_on => 'replica')").unwrap();
    }

    #[pg_test(error = "restart_delay must be between 1 second and 1 day, not 10 ms")]
    fn daemon_rejects_a_restart_delay_that_would_spin() {
        Spi::run("SELECT jobs.daemon('d', 'SELECT 1', restart_delay => '10 ms')").unwrap();
    }

    #[pg_test(error = "command must not be NULL")]
    fn daemon_rejects_a_null_command() {
        Spi::run("SELECT jobs.daemon('d', NULL)").unwrap();
    }

    /// `jobs.job_status` answers for the statement's instant (`now()`), as a
    /// STABLE function must: `jobs._next_due` used to read the clock itself,
    /// so one transaction saw an interval job's next due time move.
    #[pg_test]
    fn next_due_is_stable_within_a_transaction() {
        Spi::run("SELECT jobs.schedule('tick', '1 second', 'SELECT 1')").unwrap();
        let first =
            Spi::get_one::<TimestampWithTimeZone>("SELECT next_due FROM jobs.job_status WHERE name = 'tick'")
                .unwrap();
        Spi::run("SELECT pg_sleep(1.1)").unwrap();
        let again =
            Spi::get_one::<TimestampWithTimeZone>("SELECT next_due FROM jobs.job_status WHERE name = 'tick'")
                .unwrap();
        assert!(first.is_some());
        assert_eq!(first, again);
    }

    /// `jobs.job_status` counts a one-off as fired as the scheduler does:
    /// only by a run due at or after its instant, so a `jobs.run_now`
    /// before it leaves `next_due` at the instant.
    #[pg_test]
    fn run_now_before_a_one_off_keeps_its_next_due() {
        Spi::run("SELECT jobs.schedule('once', (now() + interval '1 day')::text, 'SELECT 1')").unwrap();
        Spi::run("SELECT jobs.run_now('once')").unwrap();
        let same = Spi::get_one::<bool>(
            "SELECT s.next_due = j.once_at FROM jobs.job_status s JOIN jobs.job j USING (id) WHERE s.name = 'once'",
        )
        .unwrap();
        assert_eq!(same, Some(true));
    }
}

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec!["shared_preload_libraries = 'pg_jobs'"]
    }
}
