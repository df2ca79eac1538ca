//! Finding the server the way `psql` does. The `postgres` crate parses a
//! connection string or URI but reads neither the `PG*` environment nor
//! `~/.pgpass` nor service files; those conventions are implemented here
//! (rather than binding libpq, which would need its headers and library at
//! build time on every machine that builds pg_jobs), for what this command
//! needs: `PGHOST`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGPASSWORD`,
//! `PGAPPNAME`, `PGSERVICE` (and `service=` in a connection string) with
//! `PGSERVICEFILE`, `~/.pg_service.conf` and `PGSYSCONFDIR`, and
//! `PGPASSFILE`/`~/.pgpass`. What the argument gives wins over the
//! service, the service over the environment, the environment over the
//! defaults (the OS user, a database named like the user, the Debian
//! socket directory, port 5432), as in libpq.

use postgres::config::Host;
use postgres::Config;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the conventions read from the process: its environment, home
/// directory and OS user (a value, so that tests can give their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub vars: HashMap<String, String>,
    pub home: Option<PathBuf>,
    pub os_user: String,
}

impl Env {
    /// This process's.
    pub fn current() -> Env {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let home = vars.get("HOME").map(PathBuf::from);
        let os_user = vars
            .get("USER")
            .or_else(|| vars.get("LOGNAME"))
            .cloned()
            .unwrap_or_else(|| "postgres".to_owned());
        Env { vars, home, os_user }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// libpq's socket directory on Debian (`DEFAULT_PGSOCKET_DIR`).
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The settings the conventions fill in, by libpq keyword.
const KEYWORDS: [&str; 6] = ["host", "port", "user", "dbname", "password", "application_name"];

/// The connection settings for `arg` (a connection string, a URI, a bare
/// database name, or nothing) and `env`.
pub fn config(arg: Option<&str>, env: &Env) -> Result<Config, String> {
    let mut given: HashMap<String, String> = HashMap::new();
    let cfg = match arg {
        None => Config::new(),
        Some(a) if a.starts_with("postgres://") || a.starts_with("postgresql://") => a
            .parse::<Config>()
            .map_err(|e| format!("invalid connection URI: {e}"))?,
        Some(a) if a.contains('=') => {
            let pairs = parse_conninfo(a)?;
            let mut rest = Vec::new();
            for (k, v) in pairs {
                if KEYWORDS.contains(&k.as_str()) || k == "service" {
                    given.insert(k, v);
                } else {
                    rest.push(format!("{k}='{}'", v.replace('\\', "\\\\").replace('\'', "\\'")));
                }
            }
            rest.join(" ")
                .parse::<Config>()
                .map_err(|e| format!("invalid connection string: {e}"))?
        }
        Some(db) => {
            given.insert("dbname".to_owned(), db.to_owned());
            Config::new()
        }
    };
    // What the URI itself set counts as given.
    if !cfg.get_hosts().is_empty() {
        given
            .entry("host".into())
            .or_insert_with(|| hosts_text(cfg.get_hosts()));
    }
    if !cfg.get_ports().is_empty() {
        let ports: Vec<String> = cfg.get_ports().iter().map(u16::to_string).collect();
        given.entry("port".into()).or_insert(ports.join(","));
    }
    for (k, v) in [
        ("user", cfg.get_user()),
        ("dbname", cfg.get_dbname()),
        ("application_name", cfg.get_application_name()),
    ] {
        if let Some(v) = v {
            given.entry(k.into()).or_insert(v.to_owned());
        }
    }
    if let Some(p) = cfg.get_password() {
        given
            .entry("password".into())
            .or_insert(String::from_utf8_lossy(p).into_owned());
    }
    // The service's settings, under what was given.
    let service = given
        .get("service")
        .cloned()
        .or_else(|| env.var("PGSERVICE").map(str::to_owned));
    if let Some(name) = service {
        for (k, v) in service_settings(&name, env)? {
            given.entry(k).or_insert(v);
        }
    }
    // The environment, under both.
    for (k, var) in [
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("dbname", "PGDATABASE"),
        ("password", "PGPASSWORD"),
        ("application_name", "PGAPPNAME"),
    ] {
        if let Some(v) = env.var(var) {
            given.entry(k.into()).or_insert(v.to_owned());
        }
    }
    // The defaults.
    let user = given.get("user").cloned().unwrap_or_else(|| env.os_user.clone());
    let dbname = given.get("dbname").cloned().unwrap_or_else(|| user.clone());
    let host = given
        .get("host")
        .cloned()
        .unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_owned());
    let port = given.get("port").cloned().unwrap_or_else(|| "5432".to_owned());

    // Built again from `given`, keeping what the string gave besides.
    let mut out = Config::new();
    if let Some(t) = cfg.get_connect_timeout() {
        out.connect_timeout(*t);
    }
    out.ssl_mode(cfg.get_ssl_mode());
    for h in host.split(',') {
        if h.starts_with('/') {
            out.host_path(h);
        } else {
            out.host(h);
        }
    }
    for p in port.split(',') {
        out.port(p.trim().parse().map_err(|_| format!("invalid port \"{p}\""))?);
    }
    out.user(&user).dbname(&dbname);
    out.application_name(given.get("application_name").map_or("pg_jobs", String::as_str));
    let password = match given.get("password") {
        Some(p) => Some(p.clone()),
        None => pgpass_password(env, &host, &port, &dbname, &user),
    };
    if let Some(p) = password {
        out.password(p);
    }
    Ok(out)
}

fn hosts_text(hosts: &[Host]) -> String {
    hosts
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `key=value` pairs of a connection string (values may be single-quoted,
/// with `\'` and `\\`).
pub fn parse_conninfo(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("missing \"=\" after \"{key}\" in connection string"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted string in connection string".into()),
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// The settings of service `name`: from `PGSERVICEFILE` or
/// `~/.pg_service.conf`, else `PGSYSCONFDIR/pg_service.conf` (the first
/// file that defines it). A service no file defines is an error, as in
/// libpq.
fn service_settings(name: &str, env: &Env) -> Result<Vec<(String, String)>, String> {
    let mut files: Vec<PathBuf> = Vec::new();
    match env.var("PGSERVICEFILE") {
        Some(f) => files.push(f.into()),
        None => files.extend(env.home.as_ref().map(|h| h.join(".pg_service.conf"))),
    }
    if let Some(dir) = env.var("PGSYSCONFDIR") {
        files.push(Path::new(dir).join("pg_service.conf"));
    }
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        if let Some(settings) = service_in(&text, name) {
            return Ok(settings);
        }
    }
    Err(format!("definition of service \"{name}\" not found"))
}

/// Section `[name]` of a service file's `text`, if it has one.
pub fn service_in(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut in_section = false;
    let mut found = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = section == name;
            found |= in_section;
            continue;
        }
        if in_section {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
    }
    found.then_some(out)
}

/// The password `~/.pgpass` (or `PGPASSFILE`) gives for this connection,
/// if the file is private to its owner (libpq ignores it otherwise) and a
/// line matches. A socket directory matches the host `localhost`, as in
/// libpq.
fn pgpass_password(env: &Env, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    let file = match env.var("PGPASSFILE") {
        Some(f) => PathBuf::from(f),
        None => env.home.as_ref()?.join(".pgpass"),
    };
    let meta = std::fs::metadata(&file).ok()?;
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "WARNING: password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
                file.display()
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(&file).ok()?;
    let host = host.split(',').next().unwrap_or(host);
    let host = if host.starts_with('/') { "localhost" } else { host };
    let port = port.split(',').next().unwrap_or(port);
    pgpass_match(&text, host, port, dbname, user)
}

/// The password of the first line of a password file's `text` that
/// matches (`*` matches anything; `\:` and `\\` escape).
pub fn pgpass_match(text: &str, host: &str, port: &str, dbname: &str, user: &str) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        let ok = |f: &str, v: &str| f == "*" || f == v;
        if ok(&fields[0], host) && ok(&fields[1], port) && ok(&fields[2], dbname) && ok(&fields[3], user) {
            return Some(fields[4..].join(":"));
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields
                .last_mut()
                .unwrap_or(&mut String::new())
                .extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            home: None,
            os_user: "alice".into(),
        }
    }

    fn summary(c: &Config) -> String {
        format!(
            "{} {:?} {:?} {:?} {}",
            hosts_text(c.get_hosts()),
            c.get_ports(),
            c.get_user(),
            c.get_dbname(),
            c.get_password().is_some()
        )
    }

    #[test]
    fn defaults_are_libpqs() {
        let c = config(None, &env(&[])).unwrap();
        assert_eq!(
            summary(&c),
            r#"/var/run/postgresql [5432] Some("alice") Some("alice") false"#
        );
    }

    #[test]
    fn the_argument_wins_over_the_environment() {
        let e = env(&[
            ("PGHOST", "/tmp/s"),
            ("PGPORT", "6000"),
            ("PGUSER", "bob"),
            ("PGDATABASE", "envdb"),
        ]);
        let c = config(None, &e).unwrap();
        assert_eq!(summary(&c), r#"/tmp/s [6000] Some("bob") Some("envdb") false"#);
        let c = config(Some("dbname=app port=7000"), &e).unwrap();
        assert_eq!(summary(&c), r#"/tmp/s [7000] Some("bob") Some("app") false"#);
        let c = config(Some("postgresql://carol@db.example:5433/sales"), &e).unwrap();
        assert_eq!(
            summary(&c),
            r#"db.example [5433] Some("carol") Some("sales") false"#
        );
        let c = config(Some("app"), &e).unwrap();
        assert_eq!(summary(&c), r#"/tmp/s [6000] Some("bob") Some("app") false"#);
    }

    #[test]
    fn conninfo_quoting() {
        assert_eq!(
            parse_conninfo(r"host=/tmp dbname='my db' password='it\'s' user=a\ b").unwrap(),
            vec![
                ("host".into(), "/tmp".into()),
                ("dbname".into(), "my db".into()),
                ("password".into(), "it's".into()),
                ("user".into(), "a b".into()),
            ]
        );
        assert!(parse_conninfo("dbname").is_err());
        assert!(parse_conninfo("dbname='x").is_err());
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\nother:*:*:*:no\nlocalhost:5432:app:alice:s3cr\\:et\n*:*:*:alice:fallback\n";
        assert_eq!(
            pgpass_match(text, "localhost", "5432", "app", "alice").as_deref(),
            Some("s3cr:et")
        );
        assert_eq!(
            pgpass_match(text, "localhost", "5433", "app", "alice").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_match(text, "localhost", "5432", "app", "bob"), None);
    }

    #[test]
    fn a_private_pgpass_is_read_and_a_shared_one_is_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pg_jobs_cli_pgpass_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(&file, "localhost:*:app:alice:pw\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut e = env(&[("PGPASSFILE", file.to_str().unwrap()), ("PGDATABASE", "app")]);
        assert_eq!(config(None, &e).unwrap().get_password(), Some(&b"pw"[..]));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(config(None, &e).unwrap().get_password(), None);
        // PGPASSWORD comes before the file.
        e.vars.insert("PGPASSWORD".into(), "env".into());
        assert_eq!(config(None, &e).unwrap().get_password(), Some(&b"env"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn services_come_between_the_argument_and_the_environment() {
        let dir = std::env::temp_dir().join(format!("pg_jobs_cli_service_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("services");
        std::fs::write(
            &file,
            "[reports]\nhost=/tmp/r\nport=6543\ndbname=reports\n[other]\nport=1\n",
        )
        .unwrap();
        let e = env(&[
            ("PGSERVICEFILE", file.to_str().unwrap()),
            ("PGPORT", "6000"),
            ("PGUSER", "bob"),
        ]);
        let c = config(Some("service=reports dbname=app"), &e).unwrap();
        assert_eq!(summary(&c), r#"/tmp/r [6543] Some("bob") Some("app") false"#);
        let mut e2 = e.clone();
        e2.vars.insert("PGSERVICE".into(), "reports".into());
        assert_eq!(
            summary(&config(None, &e2).unwrap()),
            r#"/tmp/r [6543] Some("bob") Some("reports") false"#
        );
        assert!(config(Some("service=nope"), &e).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
