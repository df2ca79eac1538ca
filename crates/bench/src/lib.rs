//! What the benchmark binaries measure with: percentiles and a process's
//! CPU time and wake-ups, read from /proc.

/// The `p` quantile (0–1) of `sorted`, nearest rank; NaN when empty.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// (voluntary context switches, CPU ms) of a process.
pub fn proc_cost(pid: i32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let ctx = status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf takes a constant name and no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ctx, ticks as f64 * 1000.0 / hz)
}

/// CPU seconds the server has used since it started: the postmaster's own,
/// every living server process's, and those of the ones that ended (the
/// postmaster waits for its children, so the kernel adds their times to its
/// children's). A difference of two readings is the server's CPU between them.
pub fn server_cpu(postmaster_pid: i32) -> f64 {
    let fields = |pid: &str| -> Option<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name (in parentheses): state, ppid, …; utime is
        // the 14th field overall, stime 15th, cutime 16th, cstime 17th.
        let rest = stat.rsplit_once(')')?.1;
        Some(
            rest.split_whitespace()
                .map(|v| v.parse::<i64>().map_or(0, |n| n.max(0) as u64))
                .collect(),
        )
    };
    let Some(pm) = fields(&postmaster_pid.to_string()) else {
        return f64::NAN;
    };
    let mut ticks = pm[11] + pm[12] + pm[13] + pm[14];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if let Some(f) = fields(pid).filter(|f| f.get(1) == Some(&(postmaster_pid as u64))) {
            ticks += f[11] + f[12];
        }
    }
    // SAFETY: sysconf takes a constant name and no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}
