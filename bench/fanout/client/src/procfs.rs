//! The server's memory and CPU time, and the client's own CPU time, from /proc.

use std::time::Instant;

/// A `kB` field of /proc/PID/status (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    let line = text.lines().find(|l| l.split(':').next() == Some(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of /proc/<who>/stat, in clock ticks.
fn cpu_ticks(who: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{who}/stat")).ok()?;
    // The command name may hold spaces: count fields after its closing ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    // fields[0] is the state (field 3), so utime (14) and stime (15) are 11 and 12.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Linux's USER_HZ, what /proc counts CPU time in.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time of the server and of this process at one moment.
pub struct CpuMark {
    server: Option<u64>,
    client: Option<u64>,
    pub at: Instant,
}

impl CpuMark {
    pub fn now(server: Option<u32>) -> CpuMark {
        CpuMark { server: server.and_then(|p| cpu_ticks(&p.to_string())), client: cpu_ticks("self"), at: Instant::now() }
    }

    /// (server CPU s, client CPU s, wall s) from `self` to now.
    pub fn since(&self, server: Option<u32>) -> (Option<f64>, Option<f64>, f64) {
        let end = CpuMark::now(server);
        let secs = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / TICKS_PER_SEC);
        (secs(self.server, end.server), secs(self.client, end.client), end.at.duration_since(self.at).as_secs_f64())
    }
}
