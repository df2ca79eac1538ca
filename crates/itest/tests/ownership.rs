//! Owners of jobs and daemons (issue 13, finding 9): PostgreSQL's own
//! DROP ROLE refuses while a role owns any, REASSIGN OWNED moves them and
//! DROP OWNED removes them, through each owner's ownership anchor.

use pg_jobs_itest::{one, wait_for, Cluster, DEADLINE};
use postgres::Client;

/// The SQLSTATE and DETAIL of a statement that must fail.
fn refused(c: &mut Client, sql: &str) -> (String, String) {
    match c.batch_execute(sql) {
        Ok(()) => panic!("allowed: {sql}"),
        Err(e) => {
            let db = e
                .as_db_error()
                .unwrap_or_else(|| panic!("{sql}: not a server error: {e}"));
            (
                db.code().code().to_owned(),
                db.detail().unwrap_or_default().to_owned(),
            )
        }
    }
}

/// The names of the ownership anchors role `role` has in the connected
/// database (shell types it owns in schema jobs).
fn anchors(c: &mut Client, role: &str) -> Vec<String> {
    c.query(
        "SELECT t.typname::text FROM pg_type t JOIN pg_roles r ON r.oid = t.typowner
          WHERE t.typnamespace = 'jobs'::regnamespace AND t.typtype = 'p' AND NOT t.typisdefined
            AND r.rolname = $1 ORDER BY 1",
        &[&role],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Wait until the superuser's one-second `probe` job has succeeded twice
/// more: by then the scheduler has made two passes, and anything that was
/// to run every second would have.
fn probe_ticks_twice(s: &mut Client) {
    let sql = "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
                WHERE j.name = 'probe' AND r.status = 'succeeded'";
    let base: i64 = one(s, sql);
    wait_for("two more ticks of the probe job", DEADLINE, || {
        (one::<i64>(s, sql) >= base + 2).then_some(())
    });
}

/// A role that owns jobs or daemons cannot be dropped out from under them
/// (finding 9; the class of pg_cron #399): each owner has an ownership
/// anchor, a shell type it owns, so PostgreSQL's own DROP ROLE refuses
/// (2BP01), also when run from another database, and succeeds once the
/// role owns nothing. Before the fix DROP ROLE succeeded and left the jobs
/// orphaned.
#[test]
fn drop_role_is_refused_while_the_role_owns_jobs_or_daemons() {
    let (c, mut s) = Cluster::with_app_db("tenancy-drop-role", "");
    s.batch_execute(
        "CREATE ROLE alice LOGIN; CREATE ROLE dora LOGIN; CREATE ROLE bob LOGIN;
         CREATE ROLE \"A role whose name is long enough to be cut in its anchor name\" LOGIN;",
    )
    .unwrap();
    let mut alice = c.connect_as("app", "alice");
    alice
        .batch_execute(
            "SELECT jobs.schedule('a1', '@yearly', 'SELECT 1');
             SELECT jobs.schedule('a2', '@yearly', 'SELECT 1');",
        )
        .unwrap();
    c.connect_as("app", "dora")
        .batch_execute("SELECT jobs.daemon('d', 'SELECT pg_sleep(3600)')")
        .unwrap();
    assert_eq!(
        anchors(&mut s, "alice"),
        ["jobs of alice"],
        "one anchor for two jobs"
    );
    assert_eq!(anchors(&mut s, "dora"), ["jobs of dora"]);
    assert!(anchors(&mut s, "bob").is_empty(), "bob owns nothing");
    let members: i64 = one(
        &mut s,
        "SELECT count(*) FROM pg_depend d JOIN pg_type t ON t.oid = d.objid
          WHERE d.classid = 'pg_type'::regclass AND t.typnamespace = 'jobs'::regnamespace
            AND t.typtype = 'p' AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'",
    );
    assert_eq!(members, 0, "anchors are not members of the extension");

    // In the database of the jobs: PostgreSQL names the anchor.
    let (code, detail) = refused(&mut s, "DROP ROLE alice");
    assert_eq!(code, "2BP01", "{detail}");
    assert!(
        detail.contains("owner of type jobs.\"jobs of alice\""),
        "{detail}"
    );
    // From another database: it counts the objects in the jobs' database.
    let mut other = c.connect("postgres");
    for role in ["alice", "dora"] {
        let (code, detail) = refused(&mut other, &format!("DROP ROLE {role}"));
        assert_eq!(code, "2BP01", "DROP ROLE {role}: {detail}");
        assert!(detail.contains("1 object in database app"), "{detail}");
    }

    // Unscheduling one of its jobs leaves the anchor (a2 is left), and so
    // does a rolled-back unschedule of the last one.
    alice.batch_execute("SELECT jobs.unschedule('a1')").unwrap();
    assert_eq!(refused(&mut other, "DROP ROLE alice").0, "2BP01", "a2 is left");
    alice
        .batch_execute("BEGIN; SELECT jobs.unschedule('a2'); ROLLBACK")
        .unwrap();
    assert_eq!(anchors(&mut s, "alice"), ["jobs of alice"]);
    assert_eq!(refused(&mut other, "DROP ROLE alice").0, "2BP01");

    // Moving a job to another role moves the need for an anchor.
    s.batch_execute("SELECT jobs.alter_job('a2', run_as => 'bob')")
        .unwrap();
    assert!(anchors(&mut s, "alice").is_empty());
    assert_eq!(anchors(&mut s, "bob"), ["jobs of bob"]);
    assert_eq!(refused(&mut other, "DROP ROLE bob").0, "2BP01");
    // alice owns nothing now: she can go (from another database, too).
    drop(alice);
    other.batch_execute("DROP ROLE alice").unwrap();

    // The daemon's owner, once its daemon is dropped.
    s.batch_execute("SET ROLE dora; SELECT jobs.drop_daemon('d'); RESET ROLE")
        .unwrap();
    assert!(anchors(&mut s, "dora").is_empty());
    other.batch_execute("DROP ROLE dora").unwrap();
    s.batch_execute("SET ROLE bob; SELECT jobs.unschedule('a2'); RESET ROLE")
        .unwrap();
    other.batch_execute("DROP ROLE bob").unwrap();

    // A role name too long for "jobs of <name>" is cut, not refused.
    let long = "A role whose name is long enough to be cut in its anchor name";
    s.batch_execute(&format!(
        "SELECT jobs.schedule('l', '@yearly', 'SELECT 1', run_as => '\"{long}\"')"
    ))
    .unwrap();
    let names = anchors(&mut s, long);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("jobs of A role whose name") && names[0].len() <= 63,
        "{names:?}"
    );
    assert_eq!(refused(&mut other, &format!("DROP ROLE \"{long}\"")).0, "2BP01");

    // Superuser jobs need no anchor (the bootstrap superuser cannot be dropped).
    s.batch_execute("SELECT jobs.schedule('su', '@yearly', 'SELECT 1')")
        .unwrap();
    assert!(anchors(&mut s, "postgres").is_empty());
}

/// REASSIGN OWNED BY a TO b gives b a's jobs, daemons and queued runs in
/// the database, and they run as b; PostgreSQL moves a's anchor itself, and
/// b keeps one. A rolled-back REASSIGN changes nothing; one that would give
/// b two jobs of one name fails and changes nothing (finding 9).
#[test]
fn reassign_owned_moves_jobs_daemons_and_queued_runs() {
    let (c, mut s) = Cluster::with_app_db("tenancy-reassign", "");
    s.batch_execute(
        "CREATE ROLE a LOGIN; CREATE ROLE b LOGIN; CREATE ROLE c LOGIN;
         CREATE TABLE public.seen (id bigserial, who text DEFAULT current_user, what text);
         GRANT INSERT, SELECT ON public.seen TO PUBLIC;
         GRANT USAGE ON SEQUENCE public.seen_id_seq TO PUBLIC;",
    )
    .unwrap();
    let mut a = c.connect_as("app", "a");
    a.batch_execute(
        "SELECT jobs.schedule('tick', '1 second', 'INSERT INTO public.seen (what) VALUES (''tick'')');
         SELECT jobs.daemon('dd', 'INSERT INTO public.seen (what) VALUES (''daemon'')', restart_delay => '1 s');",
    )
    .unwrap();
    let queued: i64 = one(
        &mut a,
        "SELECT jobs.submit('INSERT INTO public.seen (what) VALUES (''later'')', start_at => now() + interval '1 hour')",
    );
    c.connect_as("app", "b")
        .batch_execute("SELECT jobs.schedule('own', '@yearly', 'SELECT 1')")
        .unwrap();
    let seen = |s: &mut Client, who: &str, what: &str| -> i64 {
        s.query_one(
            "SELECT count(*) FROM public.seen WHERE who = $1 AND what = $2",
            &[&who, &what],
        )
        .unwrap()
        .get(0)
    };
    wait_for("a's job and daemon running as a", DEADLINE, || {
        (seen(&mut s, "a", "tick") > 0 && seen(&mut s, "a", "daemon") > 0).then_some(())
    });
    let owners = |s: &mut Client| -> String {
        one(
            s,
            &format!(
                "SELECT concat_ws(' ',
                   (SELECT owner::text FROM jobs.job WHERE name = 'tick'),
                   (SELECT owner::text FROM jobs.daemon WHERE name = 'dd'),
                   (SELECT owner::text FROM jobs.run WHERE id = {queued}))"
            ),
        )
    };
    assert_eq!(owners(&mut s), "a a a");

    // Rolled back, whole or to a savepoint: nothing moves.
    s.batch_execute("BEGIN; REASSIGN OWNED BY a TO b; ROLLBACK")
        .unwrap();
    s.batch_execute("BEGIN; SAVEPOINT x; REASSIGN OWNED BY a TO b; ROLLBACK TO x; COMMIT")
        .unwrap();
    assert_eq!(
        owners(&mut s),
        "a a a",
        "a rolled-back REASSIGN OWNED moved something"
    );
    assert_eq!(anchors(&mut s, "a"), ["jobs of a"]);
    assert_eq!(anchors(&mut s, "b"), ["jobs of b"]);
    assert_eq!(refused(&mut s, "DROP ROLE a").0, "2BP01");
    let ticks = seen(&mut s, "a", "tick");
    wait_for("a's job still running as a", DEADLINE, || {
        (seen(&mut s, "a", "tick") > ticks).then_some(())
    });

    // A name b already has: refused, nothing moves.
    c.connect_as("app", "c")
        .batch_execute("SELECT jobs.schedule('own', '@yearly', 'SELECT 2')")
        .unwrap();
    let (code, _) = refused(&mut s, "REASSIGN OWNED BY c TO b");
    assert_eq!(code, "42710");
    let c_owns: i64 = one(&mut s, "SELECT count(*) FROM jobs.job WHERE owner::text = 'c'");
    assert_eq!(c_owns, 1, "a refused REASSIGN OWNED moved c's job");
    assert_eq!(anchors(&mut s, "c"), ["jobs of c"]);

    // Committed: everything of a's here is b's, and runs as b.
    s.batch_execute("REASSIGN OWNED BY a TO b").unwrap();
    assert_eq!(owners(&mut s), "b b b");
    assert!(anchors(&mut s, "a").is_empty(), "a keeps an anchor");
    assert_eq!(anchors(&mut s, "b"), ["jobs of b"], "b has one anchor");
    wait_for("the job and the daemon running as b", DEADLINE, || {
        (seen(&mut s, "b", "tick") > 0 && seen(&mut s, "b", "daemon") > 0).then_some(())
    });
    // a owns nothing here any more: DROP OWNED finds nothing of pg_jobs',
    // and the role can go.
    s.batch_execute("DROP OWNED BY a").unwrap();
    assert_eq!(owners(&mut s), "b b b", "DROP OWNED BY a touched b's");
    drop(a);
    s.batch_execute("DROP ROLE a").unwrap();
    assert_eq!(refused(&mut s, "DROP ROLE b").0, "2BP01");
    let a_runs: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.run WHERE owner::oid NOT IN (SELECT oid FROM pg_roles)
            AND status = 'queued'",
    );
    assert_eq!(a_runs, 0, "queued runs left to a dropped role");
}

/// DROP OWNED BY a removes a's jobs and daemons in the database (the
/// daemon stops), cancels its queued runs, and PostgreSQL drops its anchor:
/// a can then be dropped. A rolled-back DROP OWNED changes nothing: the
/// daemon's process is the same one (finding 9).
#[test]
fn drop_owned_removes_jobs_stops_daemons_and_cancels_queued_runs() {
    let (c, mut s) = Cluster::with_app_db("tenancy-drop-owned", "");
    s.batch_execute(
        "CREATE ROLE a LOGIN;
         CREATE TABLE public.seen (who text DEFAULT current_user, what text);
         GRANT INSERT, SELECT ON public.seen TO PUBLIC;
         SELECT jobs.schedule('probe', '1 second', 'SELECT 1');",
    )
    .unwrap();
    let mut a = c.connect_as("app", "a");
    a.batch_execute(
        "SELECT jobs.schedule('tick', '1 second', 'INSERT INTO public.seen (what) VALUES (''tick'')');
         SELECT jobs.daemon('sleeper', 'SELECT pg_sleep(3600)');",
    )
    .unwrap();
    let queued: i64 = one(
        &mut a,
        "SELECT jobs.submit('INSERT INTO public.seen (what) VALUES (''later'')', start_at => now() + interval '1 hour')",
    );
    let ticks = |s: &mut Client| -> i64 { one(s, "SELECT count(*) FROM public.seen WHERE what = 'tick'") };
    let (pid, _) = wait_for("a's daemon running and its job ticking", DEADLINE, || {
        let pid: Option<i32> = one(
            &mut s,
            "SELECT (SELECT pid FROM jobs.daemon_status WHERE name = 'sleeper' AND state = 'running')",
        );
        pid.filter(|_| ticks(&mut s) > 0)
    });
    let what_a_has = |s: &mut Client| -> String {
        one(
            s,
            &format!(
                "SELECT concat_ws(' ',
                   (SELECT count(*) FROM jobs.job WHERE owner::text = 'a'),
                   (SELECT count(*) FROM jobs.daemon WHERE owner::text = 'a'),
                   (SELECT status FROM jobs.run WHERE id = {queued}))"
            ),
        )
    };
    assert_eq!(what_a_has(&mut s), "1 1 queued");

    // Rolled back, whole or to a savepoint: nothing changes, the daemon
    // goes on in the same process.
    s.batch_execute("BEGIN; DROP OWNED BY a; ROLLBACK").unwrap();
    s.batch_execute("BEGIN; SAVEPOINT x; DROP OWNED BY a; ROLLBACK TO x; COMMIT")
        .unwrap();
    probe_ticks_twice(&mut s);
    assert_eq!(
        what_a_has(&mut s),
        "1 1 queued",
        "a rolled-back DROP OWNED changed something"
    );
    assert_eq!(anchors(&mut s, "a"), ["jobs of a"]);
    let still: Option<i32> = one(
        &mut s,
        "SELECT (SELECT pid FROM jobs.daemon_status WHERE name = 'sleeper' AND state = 'running')",
    );
    assert_eq!(
        still,
        Some(pid),
        "a rolled-back DROP OWNED restarted or stopped the daemon"
    );
    assert_eq!(refused(&mut s, "DROP ROLE a").0, "2BP01");

    // Committed.
    s.batch_execute("DROP OWNED BY a").unwrap();
    assert_eq!(what_a_has(&mut s), "0 0 cancelled");
    let (code, message): (Option<String>, Option<String>) = {
        let r = s
            .query_one("SELECT sqlstate, message FROM jobs.run WHERE id = $1", &[&queued])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(code.as_deref(), Some("57014"));
    assert_eq!(
        message.as_deref(),
        Some("cancelled by DROP OWNED before it started")
    );
    assert!(anchors(&mut s, "a").is_empty(), "PostgreSQL dropped the anchor");
    wait_for("the daemon's process gone", DEADLINE, || {
        let alive: i64 = one(
            &mut s,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
        );
        (alive == 0).then_some(())
    });
    // The job does not fire again: once a's runs in flight have ended (and
    // any the scheduler was queueing at that very moment, as with
    // jobs.unschedule), two scheduler passes add no tick.
    wait_for("a's runs in flight finished", DEADLINE, || {
        let n: i64 = one(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE owner::text = 'a' AND status IN ('queued', 'starting', 'running')",
        );
        (n == 0).then_some(())
    });
    let before = ticks(&mut s);
    probe_ticks_twice(&mut s);
    assert_eq!(ticks(&mut s), before, "the dropped job fired again");
    let left: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.daemon_status WHERE name = 'sleeper'",
    );
    assert_eq!(left, 0);
    drop(a);
    s.batch_execute("DROP ROLE a").unwrap();
}
