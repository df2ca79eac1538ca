//! A throwaway PostgreSQL cluster with pg_jobs preloaded, for integration
//! tests.
//!
//! PostgreSQL refuses to run as root, and CI runs as root: when we are root,
//! `initdb` and `pg_ctl` run as the unprivileged OS user `$PGJOBS_OS_USER`
//! (default `postgres`, created by `scripts/setup`) through `runuser`, and
//! the cluster's directory belongs to that user. Clients connect over the
//! cluster's own Unix socket directory, as the `postgres` superuser with
//! trust authentication, so nothing listens on TCP.
//!
//! Tests wait for conditions with deadlines ([`wait_for`]) instead of
//! sleeping. Deadlines are generous (CI is a loaded 2-core machine): they
//! guard correctness; timing targets are measured by benchmarks.
//!
//! Which PostgreSQL: the one whose `pg_config` is `$PG_CONFIG` (its
//! `--bindir` holds `initdb`, `pg_ctl`, …), Debian's PostgreSQL 15 when
//! unset. `scripts/lib.sh` exports the one `make test PG=…` selects, and
//! `$PG_MAJOR` with it: when both are set they must agree, so a test run
//! never silently uses another major than the one asked for.

pub mod ha;

use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Debian's PostgreSQL 15, the default.
const DEFAULT_PG_CONFIG: &str = "/usr/lib/postgresql/15/bin/pg_config";

/// A PostgreSQL installation, as its `pg_config` describes it.
#[derive(Debug, Clone)]
pub struct Installation {
    pub pg_config: PathBuf,
    /// `pg_config --bindir`: initdb, pg_ctl, pg_upgrade, …
    pub bin: PathBuf,
    /// 15, 18, …
    pub major: u32,
    /// `pg_config --pkglibdir`: where `pg_jobs.so` is installed.
    pub pkglibdir: PathBuf,
}

impl Installation {
    /// The installation whose `pg_config` is `pg_config`.
    pub fn from_pg_config(pg_config: impl AsRef<Path>) -> Result<Installation, String> {
        let pg_config = pg_config.as_ref();
        let ask = |flag: &str| {
            let out = Command::new(pg_config)
                .arg(flag)
                .output()
                .map_err(|e| format!("cannot run {} {flag}: {e}", pg_config.display()))?;
            if !out.status.success() {
                return Err(format!("{} {flag} failed", pg_config.display()));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        // "PostgreSQL 18.6" (or "PostgreSQL 15.20 (Debian 15.20-1)").
        let version = ask("--version")?;
        let major: u32 = version
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| format!("{} --version said {version:?}", pg_config.display()))?;
        Ok(Installation {
            pg_config: pg_config.to_owned(),
            bin: PathBuf::from(ask("--bindir")?),
            major,
            pkglibdir: PathBuf::from(ask("--pkglibdir")?),
        })
    }

    /// `Ok` if the pg_jobs library installed here was built from this tree
    /// (it carries this tree's `pg_jobs.build_id`), else why not. Reads
    /// the library file: no server needed.
    pub fn has_this_build(&self) -> Result<(), String> {
        let lib = self.pkglibdir.join("pg_jobs.so");
        let bytes = std::fs::read(&lib)
            .map_err(|e| format!("no pg_jobs in PostgreSQL {} ({}: {e})", self.major, lib.display()))?;
        let id = env!("PG_JOBS_BUILD_ID").as_bytes();
        if bytes.windows(id.len()).any(|w| w == id) {
            Ok(())
        } else {
            Err(format!(
                "the pg_jobs in PostgreSQL {} ({}) was not built from this tree",
                self.major,
                lib.display()
            ))
        }
    }
}

fn postgres() -> &'static Installation {
    static PG: OnceLock<Installation> = OnceLock::new();
    PG.get_or_init(|| {
        let pg_config = std::env::var("PG_CONFIG").unwrap_or_else(|_| DEFAULT_PG_CONFIG.into());
        let pg = Installation::from_pg_config(&pg_config).unwrap_or_else(|e| panic!("{e}"));
        if let Ok(want) = std::env::var("PG_MAJOR") {
            assert_eq!(
                want,
                pg.major.to_string(),
                "PG_MAJOR={want} but PG_CONFIG={pg_config} is PostgreSQL {}",
                pg.major
            );
        }
        pg
    })
}

/// The PostgreSQL the tests run (`$PG_CONFIG`, else Debian's 15).
pub fn installation() -> &'static Installation {
    postgres()
}

/// The directory of the PostgreSQL programs the tests run (`pg_config
/// --bindir` of the selected PostgreSQL).
pub fn pg_bin() -> &'static Path {
    &postgres().bin
}

/// The major version of the selected PostgreSQL (15, 18), for the few
/// tests whose expectations differ between majors.
pub fn pg_major() -> u32 {
    postgres().major
}

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    /// The programs it runs (`pg_config --bindir` of its installation).
    bin: PathBuf,
    os_user: Option<String>,
    running: bool,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

fn pick_port(base: &Path) -> u16 {
    // Ports only name the socket file here; spread test processes apart by
    // pid and make sure no socket of that number exists in our directory.
    let start = 20_000 + (std::process::id() % 2_000) as u16 * 10;
    loop {
        let p = start + NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        if !base.join(format!(".s.PGSQL.{p}")).exists() {
            return p;
        }
    }
}

impl Cluster {
    /// initdb + start a cluster with `shared_preload_libraries = 'pg_jobs'`
    /// (unless `extra_conf` overrides it) and the lines of `extra_conf`.
    pub fn start(name: &str, extra_conf: &str) -> Cluster {
        Cluster::start_on(installation(), name, extra_conf)
    }

    /// [`Cluster::start`] with the programs of installation `pg`.
    pub fn start_on(pg: &Installation, name: &str, extra_conf: &str) -> Cluster {
        let mut c = Cluster::init_on(pg, name, &[], extra_conf);
        c.start_server();
        if !extra_conf.contains("shared_preload_libraries") {
            c.check_build_id();
        }
        c
    }

    /// initdb (with `initdb_args` besides the usual ones) and configure a
    /// cluster as [`Cluster::start`] does, without starting it: for
    /// pg_upgrade's new cluster.
    pub fn init_on(pg: &Installation, name: &str, initdb_args: &[&str], extra_conf: &str) -> Cluster {
        let os_user =
            is_root().then(|| std::env::var("PGJOBS_OS_USER").unwrap_or_else(|_| "postgres".into()));
        let root = std::env::temp_dir().join("pg_jobs_itest");
        std::fs::create_dir_all(&root).unwrap();
        let dir = root.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let port = pick_port(&dir);
        let c = Cluster {
            dir,
            port,
            bin: pg.bin.clone(),
            os_user,
            running: false,
        };
        if let Some(u) = &c.os_user {
            for d in [&root, &c.dir] {
                let ok = Command::new("chown").arg(u).arg(d).status().unwrap().success();
                assert!(ok, "chown {u} {}", d.display());
            }
        }
        let mut initdb = vec![
            "initdb",
            "-D",
            "data",
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ];
        initdb.extend_from_slice(initdb_args);
        c.pg(&initdb);
        let conf = format!(
            "shared_preload_libraries = 'pg_jobs'\nport = {port}\nunix_socket_directories = '{}'\n\
             listen_addresses = ''\nfsync = off\nlog_min_messages = log\n{extra_conf}\n",
            c.dir.display()
        );
        let conf_path = c.dir.join("data/postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path).unwrap();
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).unwrap();
        c
    }

    /// Refuse to test an installed library that is not the one built from
    /// this tree: a stale install must never pass a run.
    pub fn check_build_id(&self) {
        let installed: String = one(&mut self.connect("postgres"), "SHOW pg_jobs.build_id");
        assert_eq!(
            installed,
            env!("PG_JOBS_BUILD_ID"),
            "the installed pg_jobs library was not built from this tree (install it first: make install, or run make test)"
        );
    }

    /// Run a PostgreSQL program of the cluster's installation in the cluster
    /// directory, as the cluster's OS user. Panics (with its output) if it
    /// fails.
    pub fn pg(&self, args: &[&str]) -> String {
        let out = self.pg_try(args);
        match out {
            Ok(s) => s,
            Err(e) => panic!("{} failed: {e}", args.join(" ")),
        }
    }

    pub fn pg_try(&self, args: &[&str]) -> Result<String, String> {
        let prog = self.bin.join(args[0]);
        let mut cmd = match &self.os_user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(&prog);
                c
            }
            None => Command::new(&prog),
        };
        // A server started with RUST_BACKTRACE set would put Rust backtraces
        // into the DETAIL of errors raised through pg_jobs' hooks.
        let out = cmd
            .args(&args[1..])
            .current_dir(&self.dir)
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .expect("spawn");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    pub fn start_server(&mut self) {
        self.start_server_with(&[]);
    }

    /// Start the server with `postgres_args` on its command line (`pg_ctl
    /// -o`), such as `-b`, pg_upgrade's binary-upgrade mode.
    pub fn start_server_with(&mut self, postgres_args: &[&str]) {
        let opts = postgres_args.join(" ");
        let mut args = vec!["pg_ctl", "-D", "data", "-l", "server.log", "-w", "-t", "60"];
        if !opts.is_empty() {
            args.extend(["-o", &opts]);
        }
        args.push("start");
        self.pg(&args);
        self.running = true;
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The OS user that runs the cluster's programs (`None`: this process's).
    pub fn os_user(&self) -> Option<&str> {
        self.os_user.as_deref()
    }

    /// Restart the server with `env` in its environment (everything else
    /// as [`Cluster::start_server`]): for what a server's environment must
    /// not change, such as RUST_BACKTRACE.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.stop_server("fast");
        let mut args: Vec<String> = vec!["env".into()];
        args.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        args.extend(
            [
                &self.bin.join("pg_ctl").display().to_string(),
                "-D",
                "data",
                "-l",
                "server.log",
                "-w",
                "-t",
                "60",
                "start",
            ]
            .map(str::to_owned),
        );
        let mut cmd = match &self.os_user {
            Some(u) => {
                let mut c = std::process::Command::new("runuser");
                c.args(["-u", u, "--"]).args(&args);
                c
            }
            None => {
                let mut c = std::process::Command::new(&args[0]);
                c.args(&args[1..]);
                c
            }
        };
        let out = cmd.current_dir(&self.dir).output().expect("spawn");
        assert!(
            out.status.success(),
            "pg_ctl start with env failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = true;
    }

    pub fn stop_server(&mut self, mode: &str) {
        self.pg(&["pg_ctl", "-D", "data", "-w", "-t", "60", "-m", mode, "stop"]);
        self.running = false;
    }

    pub fn connstr(&self, db: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={db}",
            self.dir.display(),
            self.port
        )
    }

    pub fn connect(&self, db: &str) -> Client {
        self.connect_as(db, "postgres")
    }

    pub fn connect_as(&self, db: &str, user: &str) -> Client {
        // Right after a crash restart the server refuses connections for a
        // moment ("in recovery mode"): retry within a deadline.
        let cs = format!(
            "host={} port={} user={user} dbname={db}",
            self.dir.display(),
            self.port
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match Client::connect(&cs, NoTls) {
                Ok(c) => return c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50)); // poll interval of a deadline-bounded wait
                }
                Err(e) => panic!("cannot connect to {cs}: {e}"),
            }
        }
    }

    /// A cluster with a database `app` that has the extension, and a
    /// superuser session in it.
    pub fn with_app_db(name: &str, extra_conf: &str) -> (Cluster, Client) {
        let c = Cluster::start(name, extra_conf);
        c.connect("postgres")
            .batch_execute("CREATE DATABASE app")
            .unwrap();
        let mut s = c.connect("app");
        s.batch_execute("CREATE EXTENSION pg_jobs").unwrap();
        (c, s)
    }

    /// A streaming hot standby of `primary`, made with `pg_basebackup -R`
    /// on this machine, started.
    pub fn standby_of(primary: &Cluster, name: &str) -> Cluster {
        let mut c = Cluster::base_backup(primary, name, &["-R"]);
        c.add_conf("hot_standby = on");
        c.start_server();
        c
    }

    /// A base backup of `primary` taken now (`pg_basebackup`, WAL
    /// streamed with it), as a cluster that is not started: a test adds its
    /// recovery settings ([`Cluster::add_conf`], [`Cluster::data_file`])
    /// and starts it.
    pub fn backup_of(primary: &Cluster, name: &str) -> Cluster {
        Cluster::base_backup(primary, name, &[])
    }

    /// `pg_basebackup` of `primary` (with `args` besides the usual ones)
    /// into a new cluster directory, its port and socket directory set.
    fn base_backup(primary: &Cluster, name: &str, args: &[&str]) -> Cluster {
        let root = std::env::temp_dir().join("pg_jobs_itest");
        let dir = root.join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let c = Cluster {
            port: pick_port(&dir),
            dir,
            bin: primary.bin.clone(),
            os_user: primary.os_user.clone(),
            running: false,
        };
        if let Some(u) = &c.os_user {
            let ok = Command::new("chown")
                .arg(u)
                .arg(&c.dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {u} {}", c.dir.display());
        }
        let host = primary.dir.display().to_string();
        let port = primary.port.to_string();
        let mut all = vec![
            "pg_basebackup",
            "-h",
            &host,
            "-p",
            &port,
            "-U",
            "postgres",
            "-D",
            "data",
            "-X",
            "stream",
            "--no-sync",
            "--checkpoint=fast",
        ];
        all.extend_from_slice(args);
        c.pg(&all);
        // The copy carries the primary's settings; later lines win.
        c.add_conf(&format!(
            "port = {}\nunix_socket_directories = '{}'",
            c.port,
            c.dir.display()
        ));
        c
    }

    /// Append `lines` to the cluster's postgresql.conf (later lines win).
    pub fn add_conf(&self, lines: &str) {
        let conf_path = self.dir.join("data/postgresql.conf");
        let mut conf = std::fs::read_to_string(&conf_path).unwrap();
        conf.push('\n');
        conf.push_str(lines);
        conf.push('\n');
        std::fs::write(&conf_path, conf).unwrap();
    }

    /// Write file `name` (such as `recovery.signal`) into the data
    /// directory, owned by the cluster's OS user.
    pub fn data_file(&self, name: &str, content: &str) {
        let path = self.dir.join("data").join(name);
        std::fs::write(&path, content).unwrap();
        if let Some(u) = &self.os_user {
            let ok = Command::new("chown")
                .arg(u)
                .arg(&path)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {u} {}", path.display());
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("---- server log of {} (last 60 lines) ----", self.dir.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        if self.running {
            let _ = self.pg_try(&["pg_ctl", "-D", "data", "-m", "immediate", "stop"]);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Poll `cond` until it returns `Some`, or panic with `what` after `timeout`.
/// Returns the value and how long it took.
pub fn wait_for<T>(what: &str, timeout: Duration, mut cond: impl FnMut() -> Option<T>) -> (T, Duration) {
    let start = Instant::now();
    loop {
        if let Some(v) = cond() {
            return (v, start.elapsed());
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20)); // poll interval of a deadline-bounded wait
    }
}

/// Generous deadline for conditions that normally hold within milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Run a query that returns one row with one column.
pub fn one<T: for<'a> postgres::types::FromSql<'a>>(c: &mut Client, sql: &str) -> T {
    c.query_one(sql, &[])
        .unwrap_or_else(|e| {
            panic!(
                "{sql}: {}",
                e.as_db_error().map_or(e.to_string(), |d| d.message().to_owned())
            )
        })
        .get(0)
}

/// pids of live pg_jobs workers of `kind` in `db` (None: any database).
pub fn worker_pids(c: &mut Client, kind: &str, db: Option<&str>) -> Vec<i32> {
    c.query(
        "SELECT pid FROM jobs.workers WHERE kind = $1 AND ($2::text IS NULL OR database = $2) AND pid IS NOT NULL ORDER BY pid",
        &[&kind, &db],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Wait until run `id` is terminal; returns (status, sqlstate, message).
pub fn wait_run(c: &mut Client, id: i64) -> (String, Option<String>, Option<String>) {
    wait_for(&format!("run {id} to finish"), DEADLINE, || {
        let r = c
            .query_one(
                "SELECT status, sqlstate, message FROM jobs.run WHERE id = $1",
                &[&id],
            )
            .unwrap();
        let status: String = r.get(0);
        [
            "succeeded",
            "failed",
            "timed_out",
            "cancelled",
            "skipped",
            "crashed",
        ]
        .contains(&status.as_str())
        .then(|| (status, r.get(1), r.get(2)))
    })
    .0
}
