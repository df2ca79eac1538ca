//! A three-node Patroni cluster on loopback for the high-availability test
//! (issue 19) and `make ha-demo`: a one-member etcd and three PostgreSQL 15
//! nodes, each managed by Patroni (Debian's `patroni` 3.0.x and
//! `etcd-server` 3.4.x), each preloading pg_jobs. Every process runs as the
//! clusters' unprivileged OS user; dropping the cluster stops them all and
//! checks that nothing is left listening.

use postgres::{Client, NoTls};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Patroni's timings: a failover within about `TTL + LOOP_WAIT + 2` s.
pub const TTL: u64 = 10;
pub const LOOP_WAIT: u64 = 1;
/// Most a replica may lag (bytes) and still be promoted or switched over
/// to: asynchronous replicas under the test's load lag more than Patroni's
/// default 1 MB for moments.
const MAX_LAG: u64 = 16 << 20;
/// `loop_wait + 2 × retry_timeout` must not exceed `ttl`.
const RETRY_TIMEOUT: u64 = 4;

/// A free TCP port on loopback (bound and released: the caller binds it
/// next, and nothing else on this machine picks ports this way).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The uid and gid of the OS user clusters run as (root runs the tests).
fn os_user() -> Option<(u32, u32, String)> {
    // SAFETY: geteuid only reads the process's credentials.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::env::var("PGJOBS_OS_USER").unwrap_or_else(|_| "postgres".into());
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").arg(flag).arg(&name).output().expect("id runs");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a numeric id")
    };
    Some((id("-u"), id("-g"), name))
}

/// One HTTP/1.1 request to a loopback port: the status and the body.
pub fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    // Short: a node that is going down can accept and not answer, and a
    // look for the leader must not wait on it (it would inflate the
    // failover times measured).
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    // A switchover answers once it is done: give it time.
    let answer = if method == "GET" { 2 } else { 60 };
    s.set_read_timeout(Some(Duration::from_secs(answer))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let status = reply.split_whitespace().nth(1)?.parse().ok()?;
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Some((status, body))
}

pub struct Node {
    pub name: String,
    pub pg_port: u16,
    pub rest_port: u16,
    dir: PathBuf,
    patroni: Option<Child>,
}

impl Node {
    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The postmaster's pid, if one runs (its `postmaster.pid`).
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data_dir().join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }
}

pub struct HaCluster {
    pub root: PathBuf,
    pub nodes: Vec<Node>,
    etcd: Option<Child>,
    etcd_port: u16,
    etcd_peer_port: u16,
    user: Option<(u32, u32, String)>,
    /// Leave everything running when dropped (`make ha-demo`).
    pub keep: bool,
}

impl HaCluster {
    /// etcd and three Patroni nodes, started and healthy: one leader and,
    /// with `synchronous`, a synchronous standby.
    pub fn start(name: &str, synchronous: bool) -> HaCluster {
        let root = std::env::temp_dir().join(format!("pg_jobs_ha/{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let user = os_user();
        let mut c = HaCluster {
            root,
            nodes: Vec::new(),
            etcd: None,
            etcd_port: free_port(),
            etcd_peer_port: free_port(),
            user,
            keep: false,
        };
        c.chown(&c.root.clone());
        if let Some(parent) = c.root.parent() {
            c.chown(parent);
        }
        c.start_etcd();
        for i in 1..=3 {
            let node = Node {
                name: format!("n{i}"),
                pg_port: free_port(),
                rest_port: free_port(),
                dir: c.root.join(format!("n{i}")),
                patroni: None,
            };
            std::fs::create_dir_all(&node.dir).unwrap();
            c.chown(&node.dir);
            c.nodes.push(node);
        }
        for i in 0..3 {
            c.write_config(i, synchronous);
        }
        c.start_patroni(0);
        c.wait_for("n1 to lead", Duration::from_secs(120), |c| {
            (c.leader() == Some(0)).then_some(())
        });
        c.start_patroni(1);
        c.start_patroni(2);
        c.wait_healthy(Duration::from_secs(180), synchronous);
        c
    }

    fn chown(&self, path: &std::path::Path) {
        if let Some((_, _, name)) = &self.user {
            let ok = Command::new("chown")
                .arg(name)
                .arg(path)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {name} {}", path.display());
        }
    }

    /// A command run as the clusters' OS user, its output to `log`.
    fn spawn(&self, program: &str, args: &[&str], log: &str) -> Child {
        let out = std::fs::File::create(self.root.join(log)).unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        if let Some((uid, gid, name)) = &self.user {
            cmd.uid(*uid).gid(*gid).env("HOME", &self.root).env("USER", name);
        }
        cmd.spawn()
            .unwrap_or_else(|e| panic!("{program} does not start: {e}"))
    }

    fn start_etcd(&mut self) {
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{}", self.etcd_peer_port);
        let data = self.root.join("etcd").display().to_string();
        let child = self.spawn(
            "etcd",
            &[
                "--name",
                "e1",
                "--data-dir",
                &data,
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
                "--initial-cluster",
                &format!("e1={peer}"),
            ],
            "etcd.log",
        );
        self.etcd = Some(child);
        let port = self.etcd_port;
        self.wait_for("etcd to answer", Duration::from_secs(60), |_| {
            http(port, "GET", "/version", "")
                .filter(|(s, _)| *s == 200)
                .map(|_| ())
        });
    }

    fn write_config(&self, i: usize, synchronous: bool) {
        let n = &self.nodes[i];
        let yml = format!(
            "scope: pg_jobs_ha\nname: {name}\n\
             restapi:\n  listen: 127.0.0.1:{rest}\n  connect_address: 127.0.0.1:{rest}\n\
             etcd3:\n  host: 127.0.0.1:{etcd}\n\
             bootstrap:\n  dcs:\n    ttl: {TTL}\n    loop_wait: {LOOP_WAIT}\n    retry_timeout: {RETRY_TIMEOUT}\n\
             \x20   maximum_lag_on_failover: {max_lag}\n    synchronous_mode: {synchronous}\n\
             \x20   postgresql:\n      use_pg_rewind: true\n      parameters:\n\
             \x20       shared_preload_libraries: pg_jobs\n        max_worker_processes: 32\n\
             \x20       wal_level: replica\n        hot_standby: 'on'\n        wal_log_hints: 'on'\n\
             \x20       max_wal_senders: 10\n        max_replication_slots: 10\n        fsync: 'off'\n\
             \x20 initdb:\n  - encoding: UTF8\n  - auth: trust\n\
             \x20 pg_hba:\n  - local all all trust\n  - host all all 127.0.0.1/32 trust\n\
             \x20 - host replication all 127.0.0.1/32 trust\n\
             postgresql:\n  listen: 127.0.0.1:{pg}\n  connect_address: 127.0.0.1:{pg}\n\
             \x20 data_dir: {data}\n  bin_dir: {bin}\n  pgpass: {dir}/pgpass\n\
             \x20 authentication:\n    replication:\n      username: postgres\n\
             \x20   superuser:\n      username: postgres\n    rewind:\n      username: postgres\n\
             \x20 parameters:\n    unix_socket_directories: {dir}\n",
            name = n.name,
            rest = n.rest_port,
            etcd = self.etcd_port,
            pg = n.pg_port,
            data = n.data_dir().display(),
            bin = crate::pg_bin().display(),
            dir = n.dir.display(),
            max_lag = MAX_LAG,
        );
        let path = n.dir.join("patroni.yml");
        std::fs::write(&path, yml).unwrap();
        self.chown(&path);
    }

    /// Start node `i`'s Patroni (again).
    pub fn start_patroni(&mut self, i: usize) {
        let yml = self.nodes[i].dir.join("patroni.yml").display().to_string();
        let child = self.spawn("patroni", &[&yml], &format!("{}.log", self.nodes[i].name));
        self.nodes[i].patroni = Some(child);
    }

    /// The leader's index, as Patroni's REST API says (`GET /leader` is
    /// 200 on the leader only).
    pub fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .position(|n| matches!(http(n.rest_port, "GET", "/leader", ""), Some((200, _))))
    }

    /// Every member's role and state, from any node's `GET /cluster`.
    pub fn members(&self) -> Vec<(String, String, String)> {
        for n in &self.nodes {
            if let Some((200, body)) = http(n.rest_port, "GET", "/cluster", "") {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                return v["members"]
                    .as_array()
                    .map(|ms| {
                        ms.iter()
                            .map(|m| {
                                let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
                                (s("name"), s("role"), s("state"))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            }
        }
        Vec::new()
    }

    /// Every replica's lag, as `GET /cluster` reports it, is under
    /// `maximum_lag_on_failover`.
    fn replicas_caught_up(&self) -> bool {
        self.nodes.iter().any(|n| {
            let Some((200, body)) = http(n.rest_port, "GET", "/cluster", "") else {
                return false;
            };
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            v["members"].as_array().is_some_and(|ms| {
                ms.iter()
                    .filter(|m| m["role"] != "leader")
                    .all(|m| m["lag"].as_u64().is_some_and(|lag| lag < MAX_LAG))
            })
        })
    }

    /// Three members running (streaming), one leader and, with
    /// `synchronous`, a synchronous standby; every replica caught up
    /// (Patroni refuses a switchover to one that lags).
    pub fn wait_healthy(&self, timeout: Duration, synchronous: bool) {
        self.wait_for("the cluster to be healthy", timeout, |c| {
            if !c.replicas_caught_up() {
                return None;
            }
            let m = c.members();
            let running = m
                .iter()
                .filter(|(_, _, s)| s == "running" || s == "streaming")
                .count();
            let leaders = m.iter().filter(|(_, r, _)| r == "leader").count();
            let sync = m.iter().filter(|(_, r, _)| r == "sync_standby").count();
            (m.len() == 3 && running == 3 && leaders == 1 && (!synchronous || sync == 1)).then_some(())
        });
    }

    /// A superuser connection to node `i`'s database `db` over TCP.
    pub fn connect(&self, i: usize, db: &str) -> Option<Client> {
        let cs = format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=2",
            self.nodes[i].pg_port
        );
        Client::connect(&cs, NoTls).ok()
    }

    /// Loss of node `i`: SIGKILL of its Patroni and its PostgreSQL.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].patroni.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
        if let Some(pid) = self.nodes[i].postmaster_pid() {
            // SAFETY: a pid read from the node's own postmaster.pid, alive.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// A graceful stop of node `i`'s Patroni (it stops its PostgreSQL).
    pub fn stop_patroni(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].patroni.take() {
            // SAFETY: the pid of our own child, not yet reaped.
            unsafe { libc::kill(p.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = p.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100)); // poll interval of a deadline-bounded wait
            }
            let _ = p.kill();
            let _ = p.wait();
        }
    }

    /// `kill -9` of node `i`'s postmaster alone (Patroni restarts it).
    pub fn kill_postmaster(&self, i: usize) {
        if let Some(pid) = self.nodes[i].postmaster_pid() {
            // SAFETY: a pid read from the node's own postmaster.pid, alive.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// A planned switchover from the leader to node `to`.
    pub fn switchover(&self, from: usize, to: usize) -> Result<(), String> {
        let body = format!(
            "{{\"leader\": \"{}\", \"candidate\": \"{}\"}}",
            self.nodes[from].name, self.nodes[to].name
        );
        match http(self.nodes[from].rest_port, "POST", "/switchover", &body) {
            Some((200, _)) => Ok(()),
            other => Err(format!("switchover refused: {other:?}")),
        }
    }

    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut cond: impl FnMut(&HaCluster) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = cond(self) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for: {what}; members {:?}",
                self.members()
            );
            std::thread::sleep(Duration::from_millis(200)); // poll interval of a deadline-bounded wait
        }
    }
}

impl Drop for HaCluster {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        for i in 0..self.nodes.len() {
            self.stop_patroni(i);
        }
        for i in 0..self.nodes.len() {
            self.kill_postmaster(i);
        }
        if let Some(mut e) = self.etcd.take() {
            let _ = e.kill();
            let _ = e.wait();
        }
        // Nothing left listening on our ports.
        let ports: Vec<u16> = self
            .nodes
            .iter()
            .flat_map(|n| [n.pg_port, n.rest_port])
            .chain([self.etcd_port, self.etcd_peer_port])
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while ports
            .iter()
            .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_ok())
        {
            if Instant::now() > deadline {
                eprintln!("pg_jobs ha: something still listens on one of {ports:?}");
                break;
            }
            std::thread::sleep(Duration::from_millis(100)); // poll interval of a deadline-bounded wait
        }
        // Kept after a failure (or with HA_KEEP set), for its logs.
        if !std::thread::panicking() && std::env::var_os("HA_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}
