//! `pg_jobs top` driven for real inside tmux against a live cluster with a
//! running, a failing and queued jobs (issue 17): the screen shows the
//! failing job's SQLSTATE, the queue and the running run; `c` cancels the
//! selected run in `jobs.run`; `p` pauses its job; `q` quits. And
//! `pg_jobs metrics`, printed and served over HTTP, scraped.

use pg_jobs_itest::{one, wait_for, Cluster};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Generous, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// tmux on a server socket of this test's own.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs (scripts/setup installs it)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// Wait until the screen shows `text`; the last screen in the panic.
    fn wait_screen(&self, text: &str) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&format!("{text:?} on the screen"), DEADLINE, || {
                last = self.screen();
                last.contains(text).then_some(())
            })
        }));
        assert!(found.is_ok(), "{text:?} never showed; last screen:\n{last}");
        last
    }

    fn keys(&self, keys: &str) {
        let o = self.cmd(&["send-keys", "-t", "top", keys]);
        assert!(o.status.success(), "{o:?}");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn top_shows_failures_queues_and_runs_and_its_keys_act() {
    let (c, mut s) = Cluster::with_app_db("top", "");
    s.batch_execute(
        "SELECT jobs.schedule('broken', '1 second', 'SELECT 1/0');
         SELECT jobs.schedule('sleeper', '0 3 * * *', 'SELECT pg_sleep(600)');
         SELECT jobs.run_now('sleeper');
         SELECT jobs.create_queue('held', paused => true);
         SELECT jobs.submit('SELECT 1', queue => 'held');
         SELECT jobs.submit('SELECT 2', queue => 'held');",
    )
    .unwrap();
    let sleeper: i64 = wait_for("the sleeper to run", DEADLINE, || {
        s.query_opt(
            "SELECT r.id FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
              WHERE j.name = 'sleeper' AND r.status = 'running'",
            &[],
        )
        .unwrap()
        .map(|r| r.get::<_, i64>(0))
    })
    .0;

    let tmux = Tmux {
        socket: format!("pg_jobs_top_{}", std::process::id()),
    };
    let bin = env!("CARGO_BIN_EXE_pg_jobs");
    let command = format!(
        "env PGHOST='{}' PGPORT={} PGUSER=postgres PGDATABASE=app '{bin}' top",
        c.dir.display(),
        c.port
    );
    let o = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "160",
        "-y",
        "48",
        &command,
    ]);
    assert!(o.status.success(), "{o:?}");

    // The failing job's SQLSTATE, the paused queue with its two runs, and
    // the running run, selected (the only one, or the longest-running).
    tmux.wait_screen("22012");
    let screen = tmux.wait_screen("held");
    assert!(
        screen.contains("pg_sleep"),
        "the running run is listed:\n{screen}"
    );
    assert!(screen.contains("Workers"), "{screen}");
    // Shown with --nocapture: the capture in docs/cli.md comes from here.
    println!("{screen}");

    // p pauses the selected run's job; c cancels the run.
    tmux.keys("p");
    wait_for("the sleeper job to be paused", DEADLINE, || {
        let enabled: bool = one(&mut s, "SELECT enabled FROM jobs.job WHERE name = 'sleeper'");
        (!enabled).then_some(())
    });
    tmux.keys("c");
    wait_for("the selected run to be cancelled", DEADLINE, || {
        let status: String = one(
            &mut s,
            &format!("SELECT status FROM jobs.run WHERE id = {sleeper}"),
        );
        (status == "cancelled").then_some(())
    });
    tmux.wait_screen(&format!("run {sleeper}: cancel sent"));

    // q quits and gives the terminal back.
    tmux.keys("q");
    wait_for("top to quit", DEADLINE, || {
        (!tmux.cmd(&["has-session", "-t", "top"]).status.success()).then_some(())
    });
}

#[test]
fn metrics_are_printed_and_served_for_prometheus() {
    let (c, mut s) = Cluster::with_app_db("metrics_cli", "");
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    s.batch_execute(&format!("SELECT jobs.wait({id})")).unwrap();
    let env = |cmd: &mut Command| {
        cmd.env_clear()
            .env("PGHOST", c.dir.display().to_string())
            .env("PGPORT", c.port.to_string())
            .env("PGUSER", "postgres")
            .env("PGDATABASE", "app")
            .env("HOME", c.dir.display().to_string());
    };
    let want = "pg_jobs_runs_total{database=\"app\",status=\"succeeded\"} 1";

    // Once, to stdout.
    let mut once = Command::new(env!("CARGO_BIN_EXE_pg_jobs"));
    env(&mut once);
    let printed = wait_for("the success to be counted", DEADLINE, || {
        let o = once.arg("metrics").output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.contains(want).then_some(text)
    })
    .0;
    assert!(printed.contains("# TYPE pg_jobs_runs_total counter"), "{printed}");
    assert!(
        printed.contains("# TYPE pg_jobs_run_duration_seconds histogram"),
        "{printed}"
    );
    assert!(
        printed.contains("pg_jobs_run_duration_seconds_bucket{database=\"app\",le=\"+Inf\"} 1"),
        "{printed}"
    );

    // Served: an ephemeral port, which it prints when it listens.
    let mut serve = Command::new(env!("CARGO_BIN_EXE_pg_jobs"));
    env(&mut serve);
    let mut child = serve
        .args(["metrics", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("pg_jobs metrics: serving http://")
        .and_then(|a| a.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let get = |path: &str| {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        reply
    };
    let reply = get("/metrics");
    let _ = child.kill();
    let _ = child.wait();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        reply.contains("content-type: text/plain; version=0.0.4"),
        "{reply}"
    );
    assert!(reply.contains(want), "{reply}");
}
