//! CPU use over a measurement, from /proc (Linux): the machine's, this process's and the
//! server's (`--server-pid`, with its child processes).

/// CPU time from /proc (Linux): the machine's, this process's, and the server's.
pub(super) struct CpuSnap {
    /// All CPUs' ticks, and the busy ones among them.
    total: u64,
    busy: u64,
    /// Busy ticks charged to processes (interrupt handling is not).
    tasks: u64,
    cpus: usize,
    bench: u64,
    server: u64,
}

/// CPU used over a measurement, in cores (1.0 = one core busy all the time).
pub(super) struct CpuUse {
    pub(super) machine: f64,
    pub(super) tasks: f64,
    pub(super) bench: f64,
    pub(super) server: f64,
}

/// User + system ticks of a process (all its threads).
fn proc_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// `pids` and their descendants.
pub(super) fn with_children(pids: &[u32]) -> Vec<u32> {
    let mut all: Vec<u32> = pids.to_vec();
    if pids.is_empty() {
        return all;
    }
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let ppid = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((pid, pp));
            }
        }
    }
    let mut i = 0;
    while i < all.len() {
        let p = all[i];
        for &(c, pp) in &parent_of {
            if pp == p && !all.contains(&c) {
                all.push(c);
            }
        }
        i += 1;
    }
    all
}

impl CpuSnap {
    pub(super) fn take(server: &[u32]) -> Option<CpuSnap> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let mut lines = stat.lines();
        let first = lines.next()?;
        let v: Vec<u64> = first
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is already in user).
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let idle = at(3) + at(4);
        let tasks = at(0) + at(1) + at(2) + at(7);
        let busy = tasks + at(5) + at(6);
        let cpus = lines.filter(|l| l.starts_with("cpu")).count().max(1);
        let bench = proc_ticks("self")?;
        let server = server
            .iter()
            .filter_map(|p| proc_ticks(&p.to_string()))
            .sum();
        Some(CpuSnap {
            total: busy + idle,
            busy,
            tasks,
            cpus,
            bench,
            server,
        })
    }

    pub(super) fn since(&self, before: &CpuSnap) -> CpuUse {
        // Ticks of one core over the interval: all CPUs' ticks divided by their number.
        let per_core = (self.total.saturating_sub(before.total) as f64 / self.cpus as f64).max(1.0);
        let cores = |a: u64, b: u64| a.saturating_sub(b) as f64 / per_core;
        CpuUse {
            machine: cores(self.busy, before.busy),
            tasks: cores(self.tasks, before.tasks),
            bench: cores(self.bench, before.bench),
            server: cores(self.server, before.server),
        }
    }
}
