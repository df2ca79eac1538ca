//! The privilege red team: unprivileged roles attacking each other and the
//! extension. Each attack must be denied, and nothing it tried may run.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::Client;

/// What an attack could have done: the canary is written by any command
/// that an attack managed to run (as anyone), and the definitions. The
/// superuser's `probe` job (see `scheduler_has_ticked`) is left out.
fn state(s: &mut Client) -> String {
    one(
        s,
        "SELECT concat_ws(' | ',
            (SELECT count(*) FROM public.canary),
            (SELECT string_agg(concat_ws(',', id, name, owner, schedule, command, enabled), ';' ORDER BY id)
               FROM jobs.job WHERE name <> 'probe'),
            (SELECT string_agg(concat_ws(',', id, owner, status, command), ';' ORDER BY id) FROM jobs.run
              WHERE job_id IS DISTINCT FROM (SELECT id FROM jobs.job WHERE name = 'probe')),
            (SELECT string_agg(concat_ws(',', id, name, owner, command, enabled), ';' ORDER BY id) FROM jobs.daemon))",
    )
}

/// Wait until the superuser's one-second `probe` job has run twice more:
/// by then anything an attack had scheduled every second would have run.
fn scheduler_has_ticked(s: &mut Client) {
    let sql = "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
                WHERE j.name = 'probe' AND r.status = 'succeeded'";
    let base: i64 = one(s, sql);
    wait_for("two more ticks of the probe job", DEADLINE, || {
        (one::<i64>(s, sql) >= base + 2).then_some(())
    });
}

fn denied(c: &mut Client, sql: &str) -> Result<String, String> {
    match c.batch_execute(sql) {
        Ok(()) => Err(format!("allowed: {sql}")),
        Err(e) => Ok(e.code().map_or_else(|| e.to_string(), |c| c.code().to_owned())),
    }
}

#[test]
fn unprivileged_roles_cannot_act_as_others_or_reach_around_the_api() {
    let (c, mut s) = Cluster::with_app_db("red-team", "");
    s.batch_execute(
        "CREATE TABLE public.canary (who text DEFAULT current_user, at timestamptz DEFAULT now());
         GRANT INSERT, SELECT ON public.canary TO PUBLIC;
         CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol NOLOGIN;
         CREATE SCHEMA alice AUTHORIZATION alice;",
    )
    .unwrap();
    let mut bob = c.connect_as("app", "bob");
    bob.batch_execute(
        "SELECT jobs.schedule('bobs', '@yearly', 'SELECT 1');
         SELECT jobs.daemon('bobsd', 'SELECT pg_sleep(3600)');",
    )
    .unwrap();
    let bobs_run: i64 = one(&mut bob, "SELECT jobs.submit('SELECT 42 AS secret')");
    assert_eq!(wait_run(&mut bob, bobs_run).0, "succeeded");
    let bobs_queued: i64 = one(
        &mut bob,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    let (bob_daemon_pid, _) = wait_for("bob's daemon running", DEADLINE, || {
        one::<Option<i32>>(
            &mut bob,
            "SELECT pid FROM jobs.daemon_status WHERE name = 'bobsd'",
        )
    });
    let scheduler_pid: i32 = one(&mut s, "SELECT pid FROM jobs.workers WHERE kind = 'scheduler'");

    let mut alice = c.connect_as("app", "alice");
    let canary = "INSERT INTO public.canary DEFAULT VALUES";
    let attacks: Vec<(&str, String, &str)> = vec![
        // Acting as another role.
        ("submit as bob", format!("SELECT jobs.submit('{canary}', run_as => 'bob')"), "42501"),
        ("submit as a superuser", format!("SELECT jobs.submit('{canary}', run_as => 'postgres')"), "42501"),
        ("schedule as bob", format!("SELECT jobs.schedule('x', '* * * * * *', '{canary}', run_as => 'bob')"), "42501"),
        ("schedule as a superuser", format!("SELECT jobs.schedule('x', '* * * * * *', '{canary}', run_as => 'postgres')"), "42501"),
        ("daemon as bob", format!("SELECT jobs.daemon('x', '{canary}', run_as => 'bob')"), "42501"),
        ("daemon as a superuser", format!("SELECT jobs.daemon('x', '{canary}', run_as => 'postgres')"), "42501"),
        ("submit as a NOLOGIN role one is not in", format!("SELECT jobs.submit('{canary}', run_as => 'carol')"), "42501"),
        // Another role's jobs, runs, daemons: invisible, so "does not exist".
        ("alter bob's job", format!("SELECT jobs.alter_job('bobs', command => '{canary}')"), "42704"),
        ("pause bob's job", "SELECT jobs.pause('bobs')".into(), "42704"),
        ("resume bob's job", "SELECT jobs.resume('bobs')".into(), "42704"),
        ("unschedule bob's job", "SELECT jobs.unschedule('bobs')".into(), "42704"),
        ("run bob's job now", "SELECT jobs.run_now('bobs')".into(), "42704"),
        ("cancel bob's queued run", format!("SELECT jobs.cancel({bobs_queued})"), "42704"),
        ("read bob's results", format!("SELECT * FROM jobs.result({bobs_run})"), "42704"),
        ("wait on bob's run", format!("SELECT * FROM jobs.wait({bobs_run})"), "42704"),
        ("stop bob's daemon", "SELECT jobs.stop_daemon('bobsd')".into(), "42704"),
        ("drop bob's daemon", "SELECT jobs.drop_daemon('bobsd')".into(), "42704"),
        ("redefine bob's daemon by name", format!("SELECT jobs.daemon('bobsd', '{canary}', run_as => 'bob')"), "42501"),
        // Around the API: the tables.
        ("insert a job directly", format!("INSERT INTO jobs.job (name, owner, schedule, command, database, timezone) VALUES ('x', 'postgres', '* * * * *', '{canary}', 'app', 'UTC')"), "42501"),
        ("insert a run directly", format!("INSERT INTO jobs.run (owner, command) VALUES ('postgres', '{canary}')"), "42501"),
        ("rewrite a queued run", format!("UPDATE jobs.run SET command = '{canary}'"), "42501"),
        ("forge history", "UPDATE jobs.run SET status = 'failed'".into(), "42501"),
        ("delete history", "DELETE FROM jobs.run".into(), "42501"),
        ("insert a daemon directly", format!("INSERT INTO jobs.daemon (name, owner, command, database) VALUES ('x', 'postgres', '{canary}', 'app')"), "42501"),
        ("read stored results directly", "SELECT * FROM jobs.run_result".into(), "42501"),
        ("write stored results", "DELETE FROM jobs.run_result".into(), "42501"),
        ("a trigger on the run table", format!("CREATE FUNCTION alice.t() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN {canary}; RETURN NEW; END$$; CREATE TRIGGER t BEFORE UPDATE ON jobs.run FOR EACH ROW EXECUTE FUNCTION alice.t()"), "42501"),
        ("create objects in the extension's schema", "CREATE TABLE jobs.evil (x int)".into(), "42501"),
        ("terminate the scheduler", format!("SELECT pg_terminate_backend({scheduler_pid})"), "42501"),
        ("terminate bob's daemon", format!("SELECT pg_terminate_backend({bob_daemon_pid})"), "42501"),
        ("cancel bob's daemon's statement", format!("SELECT pg_cancel_backend({bob_daemon_pid})"), "42501"),
        // Stopping or starving everyone (issue 13): refused at the API.
        ("a run no pass can read (start_at infinity)", "SELECT jobs.submit('SELECT 1', start_at => 'infinity')".into(), "22008"),
        ("a one-off no pass can read", "SELECT jobs.schedule('x', '9999-12-31 12:00+00', 'SELECT 1')".into(), "22008"),
        ("an endless retry chain", "SELECT jobs.schedule('x', '1 second', 'SELECT 1/0', max_attempts => 2147483647)".into(), "22023"),
        ("retries without backoff", "SELECT jobs.schedule('x', '1 second', 'SELECT 1/0', max_attempts => 5, retry_backoff => '0')".into(), "22023"),
        ("a daemon restart storm", "SELECT jobs.daemon('x', 'SELECT 1', restart_delay => '100 ms')".into(), "22023"),
        ("forge server log lines with COPY TO STDOUT", "SELECT jobs.submit('COPY (SELECT ''LOG: forged'') TO STDOUT')".into(), "0A000"),
        ("a run in a database that allows no connections", "SELECT jobs.submit('SELECT 1', database => 'template0')".into(), "55000"),
        ("lift one's own queued-runs bound", "SET pg_jobs.max_queued_runs_per_role = 0".into(), "42501"),
        ("lift one's own jobs bound", "SET pg_jobs.max_jobs_per_role = 0".into(), "42501"),
        ("grant oneself cross-role priority", "SET pg_jobs.priority_role = 'alice'".into(), "55P02"),
        ("lift the per-role cap on runs", "SET pg_jobs.max_runs_per_role = 100".into(), "55P02"),
        // bob's ownership, as PostgreSQL records it (issue 13, finding 9).
        ("drop bob's ownership anchor", r#"DROP TYPE jobs."jobs of bob""#.into(), "42501"),
        ("take bob's ownership anchor", r#"ALTER TYPE jobs."jobs of bob" OWNER TO alice"#.into(), "42501"),
        ("drop bob's jobs with DROP OWNED", "DROP OWNED BY bob".into(), "42501"),
        ("take bob's jobs with REASSIGN OWNED", "REASSIGN OWNED BY bob TO alice".into(), "42501"),
        ("re-synchronise the ownership anchors", "SELECT jobs._sync_ownership()".into(), "42501"),
    ];
    s.batch_execute("SELECT jobs.schedule('probe', '1 second', 'SELECT 1')")
        .unwrap();
    let before = state(&mut s);
    let mut failures = Vec::new();
    for (what, sql, code) in &attacks {
        match denied(&mut alice, sql) {
            Ok(got) if got == *code => {}
            Ok(got) => failures.push(format!("{what}: denied with {got}, expected {code}")),
            Err(e) => failures.push(format!("{what}: {e}")),
        }
    }
    // Invisible, not errors: reading another role's rows returns none.
    for (what, sql) in [
        ("bob's jobs", "SELECT count(*) FROM jobs.job WHERE name = 'bobs'"),
        (
            "bob's job status",
            "SELECT count(*) FROM jobs.job_status WHERE name = 'bobs'",
        ),
        ("bob's runs", "SELECT count(*) FROM jobs.run"),
        ("bob's daemons", "SELECT count(*) FROM jobs.daemon"),
        ("bob's daemon status", "SELECT count(*) FROM jobs.daemon_status"),
        (
            "bob's daemon status, read from shared memory directly",
            "SELECT count(*) FROM jobs._daemons()",
        ),
    ] {
        let n: i64 = one(&mut alice, sql);
        if n != 0 {
            failures.push(format!("alice sees {what}: {n} rows"));
        }
    }
    // The registry is for everyone to see, as pg_stat_activity is.
    let visible: i64 = one(
        &mut alice,
        "SELECT count(*) FROM jobs.workers WHERE kind IN ('launcher', 'scheduler')",
    );
    assert_eq!(visible, 2, "jobs.workers as an ordinary role");
    scheduler_has_ticked(&mut s);
    assert_eq!(state(&mut s), before, "an attack changed something or ran");
    let hijack_checks = search_path_hijacks(&c, &mut s, &mut alice);
    failures.extend(hijack_checks.1);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "RELIABILITY| privilege attacks denied, nothing executed | {} of {}",
        attacks.len() + 6 + hijack_checks.0,
        attacks.len() + 6 + hijack_checks.0
    );
}

/// Shadowing objects planted where a careless `search_path` would find
/// them: in alice's schema first in her path (functions and operators the
/// extension uses), and in `public` before CREATE EXTENSION in a new
/// database. Returns how many were tried and what got through.
fn search_path_hijacks(c: &Cluster, s: &mut Client, alice: &mut Client) -> (usize, Vec<String>) {
    let canary = "INSERT INTO public.canary (who) VALUES ('hijacked')";
    let mut failures = Vec::new();
    alice
        .batch_execute(&format!(
            "CREATE FUNCTION alice.pg_has_role(oid, text) RETURNS boolean LANGUAGE sql AS $$ {canary}; SELECT true $$;
             CREATE FUNCTION alice.now() RETURNS timestamptz LANGUAGE sql AS $$ {canary}; SELECT pg_catalog.now() $$;
             CREATE FUNCTION alice.current_database() RETURNS name LANGUAGE sql AS $$ {canary}; SELECT 'app'::name $$;
             CREATE FUNCTION alice.texteq_evil(text, text) RETURNS boolean LANGUAGE sql AS $$ {canary}; SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
             CREATE OPERATOR alice.= (LEFTARG = text, RIGHTARG = text, FUNCTION = alice.texteq_evil);
             CREATE FUNCTION alice.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE sql AS $$ {canary}; SELECT pg_catalog.unnest($1) $$;
             SET search_path = alice, pg_catalog, public;"
        ))
        .unwrap();
    let id: i64 = one(alice, "SELECT jobs.submit('SELECT 1')");
    let status: String = one(alice, &format!("SELECT status FROM jobs.wait({id})"));
    if status != "succeeded" {
        failures.push(format!("alice's own run with a hostile search_path: {status}"));
    }
    alice
        .batch_execute(
            "SELECT jobs.schedule('hp', '@yearly', 'SELECT 1');
             SELECT jobs.alter_job('hp', max_attempts => 2);
             SELECT count(*) FROM jobs.job_status; SELECT count(*) FROM jobs.daemon_status;
             SELECT jobs.unschedule('hp');",
        )
        .unwrap();
    // In public, before the extension exists in a new database.
    c.connect("postgres")
        .batch_execute("CREATE DATABASE fresh")
        .unwrap();
    let mut f = c.connect("fresh");
    f.batch_execute(
        "CREATE TABLE public.canary (who text DEFAULT current_user, at timestamptz DEFAULT now());
         GRANT ALL ON public.canary TO PUBLIC; GRANT CREATE ON SCHEMA public TO alice;",
    )
    .unwrap();
    let mut fa = c.connect_as("fresh", "alice");
    fa.batch_execute(&format!(
        "CREATE FUNCTION public.pg_has_role(oid, text) RETURNS boolean LANGUAGE sql AS $$ {canary}; SELECT true $$;
         CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$ {canary}; SELECT pg_catalog.now() $$;
         CREATE FUNCTION public.texteq_evil(text, text) RETURNS boolean LANGUAGE sql AS $$ {canary}; SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
         CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.texteq_evil);
         CREATE OPERATOR public.< (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = pg_catalog.timestamptz_lt);"
    ))
    .unwrap();
    f.batch_execute("CREATE EXTENSION pg_jobs").unwrap();
    let id: i64 = one(&mut f, "SELECT jobs.submit('SELECT 1')");
    let _ = one::<String>(&mut f, &format!("SELECT status FROM jobs.wait({id})"));
    f.batch_execute("SELECT count(*) FROM jobs.job_status; SELECT jobs.schedule('x', '@yearly', 'SELECT 1')")
        .unwrap();
    let hijacked: i64 = one(
        &mut f,
        "SELECT count(*) FROM public.canary WHERE who = 'hijacked'",
    );
    if hijacked > 0 {
        failures.push(format!("a function planted in public ran {hijacked} times"));
    }
    let hijacked: i64 = one(s, "SELECT count(*) FROM public.canary WHERE who = 'hijacked'");
    if hijacked > 0 {
        failures.push(format!(
            "a function planted in alice's schema ran {hijacked} times"
        ));
    }
    // Every SECURITY DEFINER function of the extension pins search_path.
    let unpinned: i64 = one(
        s,
        "SELECT count(*) FROM pg_proc WHERE pronamespace = 'jobs'::regnamespace AND prosecdef
            AND NOT coalesce(proconfig::text[] @> ARRAY['search_path=pg_catalog, pg_temp'], false)",
    );
    if unpinned > 0 {
        failures.push(format!(
            "{unpinned} SECURITY DEFINER functions without a pinned search_path"
        ));
    }
    (12, failures)
}

/// Runs whose owner can no longer run them fail at dispatch with a clear
/// SQLSTATE, and nothing else stops: a queued run of a dropped role, jobs
/// of a NOLOGIN role and of a role without CONNECT. A renamed role's job
/// runs on (roles are kept by OID). A role that owns a job cannot be
/// dropped at all (issue 13, finding 9).
#[test]
fn runs_of_a_dropped_nologin_or_unconnectable_owner_fail_clearly_and_others_run() {
    let (c, mut s) = Cluster::with_app_db("red-team-owner", "");
    s.batch_execute(
        "CREATE TABLE public.tick (who text DEFAULT current_user, at timestamptz DEFAULT clock_timestamp());
         GRANT INSERT, SELECT ON public.tick TO PUBLIC;
         CREATE ROLE dropme LOGIN; CREATE ROLE renameme LOGIN; CREATE ROLE lockme LOGIN;
         CREATE ROLE noconnect LOGIN; CREATE ROLE steady LOGIN;",
    )
    .unwrap();
    for r in ["dropme", "renameme", "lockme", "noconnect", "steady"] {
        s.batch_execute(&format!(
            "SELECT jobs.schedule('{r}', '1 second', 'INSERT INTO public.tick DEFAULT VALUES', run_as => '{r}')"
        ))
        .unwrap();
    }
    wait_for("every job running once", DEADLINE, || {
        let n: i64 = one(&mut s, "SELECT count(DISTINCT who) FROM public.tick");
        (n == 5).then_some(())
    });
    // A role that owns a job cannot be dropped (issue 13, finding 9) ...
    let err = s.batch_execute("DROP ROLE dropme").unwrap_err();
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("2BP01"),
        "DROP ROLE of a job's owner: {err}"
    );
    // ... but one whose only work left is a queued run can be (a run is not
    // an object it owns): that run fails clearly when its time comes.
    let orphan: i64 = one(
        &mut s,
        "SELECT jobs.submit('INSERT INTO public.tick DEFAULT VALUES', run_as => 'dropme',
                            start_at => now() + interval '10 seconds')",
    );
    s.batch_execute(
        "SELECT jobs.unschedule('dropme');
         DROP ROLE dropme;
         ALTER ROLE renameme RENAME TO renamed;
         ALTER ROLE lockme NOLOGIN;
         REVOKE CONNECT ON DATABASE app FROM PUBLIC;
         GRANT CONNECT ON DATABASE app TO steady, renamed, lockme;",
    )
    .unwrap();
    let _ = c; // the cluster lives to the end
    let expect = [
        ("dropme", "42704", "the run's owner role no longer exists"),
        (
            "lockme",
            "28000",
            "the run's owner role is not permitted to log in (NOLOGIN)",
        ),
        (
            "noconnect",
            "42501",
            "the run's owner role lacks CONNECT privilege on database \"app\"",
        ),
    ];
    for (job, code, message) in expect {
        let (row, _) = wait_for(&format!("{job}'s run failing clearly"), DEADLINE, || {
            s.query_opt(
                "SELECT r.sqlstate, r.message FROM jobs.run r LEFT JOIN jobs.job j ON j.id = r.job_id
                  WHERE (j.name = $1 OR ($1 = 'dropme' AND r.id = $2)) AND r.status = 'failed'
                  ORDER BY r.id DESC LIMIT 1",
                &[&job, &orphan],
            )
            .unwrap()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)))
        });
        assert_eq!(row, (code.to_owned(), message.to_owned()), "{job}");
    }
    // The renamed role's job goes on (roles are kept by OID), and so does the steady one.
    let t0: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    wait_for("the renamed and the steady jobs still running", DEADLINE, || {
        let n: i64 = one(
            &mut s,
            &format!("SELECT count(DISTINCT who) FROM public.tick WHERE extract(epoch FROM at) > {t0} AND who IN ('renamed', 'steady')"),
        );
        (n == 2).then_some(())
    });
    // And the scheduler never crash-looped.
    let started = c
        .log()
        .matches("pg_jobs scheduler started for database \"app\"")
        .count();
    assert_eq!(started, 1, "the scheduler restarted {started} times");
    println!("RELIABILITY| runs of a dropped / NOLOGIN / no-CONNECT owner fail clearly; others run; scheduler never restarted | 3 of 3");
}

/// A role with BYPASSRLS that is not superuser sees every row of the
/// tables, but pg_jobs' functions still check ownership themselves: it can
/// neither read another role's results, wait on its runs, nor cancel them
/// (issue 13, finding 7).
#[test]
fn bypassrls_does_not_make_another_roles_runs_yours() {
    let (c, mut s) = Cluster::with_app_db("bypassrls", "");
    s.batch_execute("CREATE ROLE bob LOGIN; CREATE ROLE mallory LOGIN BYPASSRLS")
        .unwrap();
    let mut bob = c.connect_as("app", "bob");
    let bobs_run: i64 = one(&mut bob, "SELECT jobs.submit('SELECT 42 AS secret')");
    assert_eq!(wait_run(&mut bob, bobs_run).0, "succeeded");
    let bobs_queued: i64 = one(
        &mut bob,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    let mut mallory = c.connect_as("app", "mallory");
    // The rows are visible to it (that is what BYPASSRLS does) ...
    let seen: i64 = one(&mut mallory, "SELECT count(*) FROM jobs.run");
    assert_eq!(seen, 2, "BYPASSRLS sees the rows");
    // ... but they are not its runs.
    for sql in [
        format!("SELECT * FROM jobs.result({bobs_run})"),
        format!("SELECT * FROM jobs.wait({bobs_run})"),
        format!("SELECT jobs.cancel({bobs_queued})"),
    ] {
        assert_eq!(denied(&mut mallory, &sql), Ok("42704".to_owned()), "{sql}");
    }
    let status: String = one(
        &mut s,
        &format!("SELECT status FROM jobs.run WHERE id = {bobs_queued}"),
    );
    assert_eq!(status, "queued", "bob's run was not cancelled");
}
