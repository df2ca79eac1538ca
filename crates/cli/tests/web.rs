//! `pg_jobs web` driven in a real browser (issue 21): headless Chromium
//! through chromedriver (WebDriver, the `fantoccini` client) against a
//! live cluster with succeeded, failed and running runs, password
//! authentication (scram-sha-256) for the roles that sign in.
//!
//! alice signs in (after a wrong password is refused), sees her failed
//! run and its SQLSTATE on the overview, retries it (the cause fixed) and
//! sees the new run succeed, cancels her running run, pauses a job and
//! sees it stop being due. bob signs in, sees only his jobs, and a retry
//! of alice's run forged into his own form is refused by the server. Form
//! posts without the CSRF token or from another origin are refused. A
//! second server, `--as-connection --read-only`, says so on every page,
//! shows no button and refuses a post. Each page is saved as a PNG under
//! `target/web-screenshots/`.
//!
//! Chromium and chromedriver come from Debian (`scripts/setup` installs
//! them); without them this test fails, saying so.

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::{Client, NoTls};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Generous, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A child process killed when the test ends, however it ends.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `pg_jobs web` with `args`, the cluster's database in its environment;
/// returns it and the address it printed.
fn web(c: &Cluster, args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let dir = c.dir.display().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pg_jobs"));
    cmd.arg("web")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_clear()
        .env("PGHOST", &dir)
        .env("PGPORT", c.port.to_string())
        .env("PGDATABASE", "app")
        .env("HOME", &dir)
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the pg_jobs binary runs");
    let mut err = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    err.read_line(&mut line).expect("pg_jobs web prints its address");
    let addr = line
        .trim()
        .strip_prefix("pg_jobs web: serving http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let mut second = String::new();
    err.read_line(&mut second).expect("a second line");
    assert!(second.contains("loopback only"), "{second}");
    // Keep reading its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
    });
    (Proc(child), addr)
}

/// A free loopback port (for chromedriver).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 request; the status and the whole reply.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let status = reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, reply)
}

/// The browser, driven synchronously (so the test can query the database
/// between steps with the blocking `postgres` client).
struct B {
    rt: tokio::runtime::Runtime,
    c: Option<Browser>,
    base: String,
    shots: PathBuf,
}

impl B {
    fn c(&self) -> &Browser {
        self.c.as_ref().expect("the browser session is open")
    }

    fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.rt
            .block_on(self.c().goto(&url))
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    fn text(&self) -> String {
        self.rt
            .block_on(async { self.c().find(Locator::Css("body")).await?.text().await })
            .unwrap_or_default()
    }

    fn url(&self) -> String {
        self.rt
            .block_on(self.c().current_url())
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    fn click(&self, css: &str) {
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.click().await })
            .unwrap_or_else(|e| panic!("click {css} on {}: {e}\n{}", self.url(), self.text()));
    }

    fn fill(&self, css: &str, value: &str) {
        self.rt
            .block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.clear().await?;
                e.send_keys(value).await
            })
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    fn count(&self, css: &str) -> usize {
        self.rt
            .block_on(self.c().find_all(Locator::Css(css)))
            .map(|v| v.len())
            .unwrap_or(0)
    }

    fn attr(&self, css: &str, name: &str) -> String {
        self.rt
            .block_on(async { self.c().find(Locator::Css(css)).await?.attr(name).await })
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no {name} on {css}"))
    }

    fn js(&self, script: &str) {
        self.rt
            .block_on(self.c().execute(script, vec![]))
            .unwrap_or_else(|e| panic!("{script}: {e}"));
    }

    /// Load `path` until its text contains `needle`; the text.
    fn wait_text(&self, path: &str, needle: &str) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&format!("{needle:?} on {path}"), DEADLINE, || {
                self.goto(path);
                last = self.text();
                last.contains(needle).then_some(())
            })
        }));
        assert!(
            found.is_ok(),
            "{needle:?} never showed on {path}; last page:\n{last}"
        );
        last
    }

    /// Without reloading (after a click), wait until the page shows one of
    /// `needles`; its text.
    fn wait_here(&self, needles: &[&str]) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_for(&format!("one of {needles:?}"), DEADLINE, || {
                last = self.text();
                needles.iter().any(|n| last.contains(n)).then_some(())
            })
        }));
        assert!(found.is_ok(), "none of {needles:?} showed; last page:\n{last}");
        last
    }

    fn shot(&self, name: &str) {
        let png = self
            .rt
            .block_on(self.c().screenshot())
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        std::fs::write(self.shots.join(format!("web-{name}.png")), png).expect("write the screenshot");
    }

    fn cookie(&self, name: &str) -> String {
        self.rt
            .block_on(self.c().get_named_cookie(name))
            .map(|c| c.value().to_owned())
            .unwrap_or_else(|e| panic!("cookie {name}: {e}"))
    }
}

impl Drop for B {
    fn drop(&mut self) {
        if let Some(c) = self.c.take() {
            let _ = self.rt.block_on(c.close());
        }
    }
}

/// chromedriver on a free port, and a headless Chromium session in it.
fn browser(base: &str) -> (Proc, B) {
    for (p, what) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: the browser test needs Debian's chromium and chromium-driver \
             (scripts/setup installs them: apt-get install chromium chromium-driver); {what} not found"
        );
    }
    let port = free_port();
    let driver = Proc(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    wait_for("chromedriver to listen", DEADLINE, || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run",
                     "--disable-dev-shm-usage", "--window-size=1360,1000"],
        }),
    );
    let c = rt
        .block_on(
            ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .unwrap_or_else(|e| panic!("cannot start Chromium through chromedriver: {e}"));
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("web-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    (
        driver,
        B {
            rt,
            c: Some(c),
            base: format!("http://{base}"),
            shots,
        },
    )
}

fn connect_as(c: &Cluster, user: &str, password: &str) -> Client {
    Client::connect(
        &format!(
            "host={} port={} user={user} password={password} dbname=app",
            c.dir.display(),
            c.port
        ),
        NoTls,
    )
    .unwrap_or_else(|e| panic!("connect as {user}: {e}"))
}

fn run_status(s: &mut Client, id: i64) -> String {
    one(s, &format!("SELECT status FROM jobs.run WHERE id = {id}"))
}

fn wait_status(s: &mut Client, id: i64, want: &str) {
    wait_for(&format!("run {id} to be {want}"), DEADLINE, || {
        (run_status(s, id) == want).then_some(())
    });
}

/// Sign in; whether the browser got in (it left the sign-in page).
fn sign_in(b: &B, user: &str, password: &str) -> bool {
    b.goto("/login");
    b.fill("input[name=user]", user);
    b.fill("input[name=password]", password);
    b.click("#sign-in");
    b.wait_here(&["Sign out", "Sign-in refused", "Sign-in failed"]);
    b.count("#sign-out") == 1
}

#[test]
fn the_dashboard_in_a_browser() {
    let (c, mut s) = Cluster::with_app_db("web", "");
    s.batch_execute(
        "CREATE ROLE alice LOGIN PASSWORD 'alice-secret';
         CREATE ROLE bob LOGIN PASSWORD 'bob-secret';
         CREATE TABLE public.fixed (x int);
         GRANT SELECT ON public.fixed TO alice;
         CREATE TABLE public.once (id int PRIMARY KEY);
         INSERT INTO public.once VALUES (1);
         GRANT SELECT, INSERT ON public.once TO alice;",
    )
    .unwrap();
    // Roles other than the test's superuser sign in with passwords.
    c.data_file(
        "pg_hba.conf",
        "local all postgres trust\nlocal all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n",
    );
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_for("password authentication", DEADLINE, || {
        Client::connect(
            &format!(
                "host={} port={} user=alice password=wrong dbname=app",
                c.dir.display(),
                c.port
            ),
            NoTls,
        )
        .is_err()
        .then_some(())
    });

    let mut alice = connect_as(&c, "alice", "alice-secret");
    let fails = "SELECT 1 / (SELECT count(*) FROM public.fixed)::int AS ok";
    let ids: Vec<i64> = [
        "SELECT jobs.submit('SELECT 42 AS answer')".to_owned(),
        format!("SELECT jobs.submit('{fails}')"),
        "SELECT jobs.submit('SELECT pg_sleep(600)')".to_owned(),
        // Fails with a DETAIL (the key that exists).
        "SELECT jobs.submit('INSERT INTO public.once VALUES (1)')".to_owned(),
    ]
    .iter()
    .map(|q| one(&mut alice, q))
    .collect();
    let (ok_run, failed, sleeper, duplicate) = (ids[0], ids[1], ids[2], ids[3]);
    alice
        .batch_execute(
            "SELECT jobs.schedule('nightly', '0 3 * * *', 'SELECT 1');
             SELECT jobs.create_queue('held', paused => true);
             SELECT jobs.submit('SELECT 3', queue => 'held');
             SELECT jobs.daemon('ticker', 'SELECT pg_sleep(3600)');
             SELECT jobs.schedule('heartbeat', '1 second', 'SELECT 1');
             SELECT jobs.schedule('flaky', '2 seconds', 'SELECT 1/0');",
        )
        .unwrap();
    let mut bob = connect_as(&c, "bob", "bob-secret");
    let bobs_failed: i64 = one(&mut bob, "SELECT jobs.submit('SELECT 1/0')");
    bob.batch_execute("SELECT jobs.schedule('bobs_job', '0 4 * * *', 'SELECT 2')")
        .unwrap();
    wait_status(&mut s, ok_run, "succeeded");
    wait_status(&mut s, failed, "failed");
    wait_status(&mut s, bobs_failed, "failed");
    wait_status(&mut s, sleeper, "running");
    wait_status(&mut s, duplicate, "failed");

    let (_server, addr) = web(&c, &[], &[]);
    let (_driver, b) = browser(&addr);

    // Not signed in: the sign-in page. A wrong password is refused by
    // PostgreSQL, and the page says so.
    b.goto("/");
    assert!(b.url().ends_with("/login"), "{}", b.url());
    b.shot("signin");
    assert!(!sign_in(&b, "alice", "not-her-password"));
    let refused = b.text();
    assert!(
        refused.contains("password authentication failed") && refused.contains("28P01"),
        "{refused}"
    );
    assert_eq!(b.count("#sign-out"), 0, "not signed in");
    b.shot("signin-refused");

    // alice: the overview shows her failed run with its SQLSTATE.
    assert!(sign_in(&b, "alice", "alice-secret"), "{}", b.text());
    let overview = b.wait_text("/", "22012");
    assert!(overview.contains("division by zero"), "{overview}");
    assert!(overview.contains("alice @ app"), "{overview}");
    assert!(b.count("svg rect.succeeded") > 0, "the chart shows the success");
    // The second view has counted the whole day (the first, the last two
    // hours: a day of this test's few runs takes one more step).
    let overview = b.wait_text("/", "(15-minute averages)");
    assert!(!overview.contains("still counting"), "{overview}");
    b.shot("overview");

    // A failure's page shows its error's DETAIL.
    b.goto(&format!("/runs/{duplicate}"));
    let page = b.text();
    assert!(
        page.contains("23505") && page.contains("DETAIL: Key (id)=(1) already exists."),
        "{page}"
    );

    // The failed run's page; its cause fixed, Retry: the new run succeeds.
    b.goto(&format!("/runs/{failed}"));
    assert!(b.text().contains("22012"), "{}", b.text());
    b.shot("run-failed");
    s.batch_execute("INSERT INTO public.fixed VALUES (1)").unwrap();
    b.click("button[data-action=retry]");
    let flash = b.wait_here(&["retried", "refused"]);
    assert!(flash.contains(&format!("Run {failed} retried")), "{flash}");
    let retry: i64 = one(
        &mut s,
        &format!("SELECT max(id) FROM jobs.run WHERE command = '{fails}'"),
    );
    assert!(retry > failed);
    let page = b.wait_text(&format!("/runs/{retry}"), "succeeded");
    assert!(page.contains("ok"), "the result column: {page}");
    b.shot("run");

    // Cancel the running run from the list of running runs.
    b.goto("/runs?status=running");
    b.shot("runs");
    b.click(&format!("tr[data-run=\"{sleeper}\"] button[data-action=cancel]"));
    wait_status(&mut s, sleeper, "cancelled");
    let flash = b.wait_here(&["cancelled.", "refused", "nothing to cancel"]);
    assert!(flash.contains(&format!("Run {sleeper} cancelled")), "{flash}");

    // Pause a job: it stops being due.
    b.goto("/jobs");
    let due: Option<String> = one(
        &mut s,
        "SELECT next_due::text FROM jobs.job_status WHERE name = 'nightly'",
    );
    assert!(due.is_some());
    b.click("tr[data-job=nightly] button[data-action=pause]");
    wait_for("nightly to stop being due", DEADLINE, || {
        let due: Option<String> = one(
            &mut s,
            "SELECT next_due::text FROM jobs.job_status WHERE name = 'nightly'",
        );
        due.is_none().then_some(())
    });
    let flash = b.wait_here(&["paused:", "refused"]);
    assert!(flash.contains("Job nightly paused"), "{flash}");
    let due_cell = b.rt.block_on(async {
        b.c()
            .find(Locator::Css("tr[data-job=nightly] td.due"))
            .await?
            .text()
            .await
    });
    assert_eq!(due_cell.ok().as_deref(), Some(""), "no next due time shown");
    assert_eq!(b.count("tr[data-job=nightly] button[data-action=resume]"), 1);
    assert!(!b.text().contains("bobs_job"), "alice does not see bob's job");
    b.shot("jobs");

    // Queues: resume the paused queue; its run then runs.
    b.goto("/queues");
    b.shot("queues");
    b.click("tr[data-queue=held] button[data-action=resume_queue]");
    wait_for("the held queue to empty", DEADLINE, || {
        let n: i64 = one(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE queue = 'held' AND status = 'succeeded'",
        );
        (n == 1).then_some(())
    });
    b.wait_text("/daemons", "ticker");
    b.shot("daemons");
    b.wait_text("/workers", "scheduler");
    b.shot("workers");

    // bob: only his jobs; alice's run is not his to see, nor to retry.
    b.click("#sign-out");
    b.wait_here(&["Sign in"]);
    assert!(b.url().ends_with("/login"), "{}", b.url());
    assert!(sign_in(&b, "bob", "bob-secret"), "{}", b.text());
    let jobs = b.wait_text("/jobs", "bobs_job");
    assert!(!jobs.contains("nightly"), "{jobs}");
    b.goto(&format!("/runs/{failed}"));
    assert!(b.text().contains(&format!("No run {failed}")), "{}", b.text());
    b.goto("/runs?status=failed");
    assert_eq!(b.count(&format!("tr[data-run=\"{failed}\"]")), 0);
    // His own Retry button, forged to name alice's run: the server refuses.
    b.js(&format!(
        "document.querySelector('tr[data-run=\"{bobs_failed}\"] input[name=run]').value = '{failed}'"
    ));
    b.click(&format!(
        "tr[data-run=\"{bobs_failed}\"] button[data-action=retry]"
    ));
    let refusal = b.wait_here(&["refused", "retried"]);
    assert!(
        refusal.contains("jobs.retry refused") && refusal.contains("42704"),
        "{refusal}"
    );
    b.shot("refused");
    let runs_of_failed: i64 = one(
        &mut s,
        &format!("SELECT count(*) FROM jobs.run WHERE command = '{fails}'"),
    );
    assert_eq!(runs_of_failed, 2, "no retry was queued for bob");

    // Form posts need the session's CSRF token and our own origin.
    b.goto("/runs");
    let token = b.attr("input[name=csrf]", "value");
    let cookie = format!("pg_jobs_session={}", b.cookie("pg_jobs_session"));
    let origin = format!("http://{addr}");
    let body = |csrf: &str| format!("csrf={csrf}&action=retry&run={bobs_failed}&back=%2Fruns");
    let (st, reply) = http(
        &addr,
        "POST",
        "/action",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &body("0000"),
    );
    assert_eq!(st, 403, "{reply}");
    assert!(reply.contains("CSRF"), "{reply}");
    let (st, reply) = http(
        &addr,
        "POST",
        "/action",
        &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        &body(&token),
    );
    assert_eq!(st, 403, "{reply}");
    let (st, reply) = http(
        &addr,
        "POST",
        "/action",
        &[("Cookie", &cookie), ("Origin", &origin)],
        &body(&token),
    );
    assert_eq!(st, 303, "with both, the action is taken: {reply}");
    // Another host name pointed at this address (DNS rebinding) gets nothing.
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.set_read_timeout(Some(DEADLINE)).unwrap();
    write!(
        raw,
        "GET /jobs HTTP/1.1\r\nHost: evil.example:80\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    raw.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 421"), "{reply}");
    assert!(!reply.contains("bobs_job"), "{reply}");
    // A forged cookie is no session.
    let (st, reply) = http(
        &addr,
        "GET",
        "/jobs",
        &[("Cookie", "pg_jobs_session=abc.def")],
        "",
    );
    assert_eq!(st, 303, "{reply}");
    assert!(reply.contains("location: /login"), "{reply}");

    // Read-only, single-role: a banner says whose view it is, no buttons,
    // and an action post is refused.
    let (_ro, ro_addr) = web(
        &c,
        &["--as-connection", "--read-only"],
        &[("PGUSER", "alice"), ("PGPASSWORD", "alice-secret")],
    );
    let mut b2 = b;
    b2.base = format!("http://{ro_addr}");
    for page in [
        "/",
        "/jobs",
        "/runs",
        "/queues",
        "/daemons",
        &format!("/runs/{failed}"),
    ] {
        let text = b2.wait_text(page, "Read-only");
        assert!(
            text.contains("Single-role mode") && text.contains("alice"),
            "{text}"
        );
        assert_eq!(b2.count("button.action"), 0, "no action buttons on {page}");
    }
    b2.goto("/jobs");
    b2.shot("readonly");
    let (st, reply) = http(
        &ro_addr,
        "POST",
        "/action",
        &[("Origin", &format!("http://{ro_addr}"))],
        "csrf=x&action=pause&name=bobs_job&back=%2F",
    );
    assert_eq!(st, 403, "{reply}");
    assert!(reply.contains("read-only"), "{reply}");
}
