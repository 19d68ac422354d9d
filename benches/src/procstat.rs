//! What `/proc` says about a process: CPU time (all threads, user + system)
//! and peak resident set size.

use anyhow::{Context, Result};

/// Seconds of CPU the process has used so far: `utime + stime` from
/// `/proc/<pid>/stat` (clock ticks, usually 10 ms).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat).map(|ticks| ticks as f64 / clock_ticks_per_second())
}

/// `utime + stime` in ticks from the text of `/proc/<pid>/stat`.
pub fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    // The command name (field 2) may hold spaces and parentheses: fields are
    // counted from the last ')'.
    let rest = &stat[stat.rfind(')').context("no ')' in /proc/<pid>/stat")? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11).context("no utime field")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime field")?.parse()?;
    Ok(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// CPU seconds per thread group: every thread of `pid` whose name
/// (`/proc/<pid>/task/<tid>/comm`, digits and trailing punctuation
/// stripped, e.g. `tokio-runtime-w`, `rdk:broker`) is the same is summed.
/// Threads that exited are missing, so take the difference of two
/// snapshots as a breakdown, not as a total.
pub fn cpu_by_thread(pid: u32) -> Result<std::collections::BTreeMap<String, f64>> {
    let mut out = std::collections::BTreeMap::new();
    let tick = clock_ticks_per_second();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let dir = entry?.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue;
        };
        let name: String = comm
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '#' || c == '/' || c == '-')
            .to_string();
        if let Ok(ticks) = parse_cpu_ticks(&stat) {
            *out.entry(name).or_insert(0.0) += ticks as f64 / tick;
        }
    }
    Ok(out)
}

/// Busy CPU seconds of the whole machine so far (all CPUs: everything but
/// idle and iowait, from the first line of `/proc/stat`).
pub fn machine_busy_seconds() -> Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    anyhow::ensure!(v.len() >= 5, "short cpu line in /proc/stat");
    // user nice system idle iowait irq softirq steal (guest counted in user).
    let busy: u64 = v.iter().take(8).sum::<u64>() - v[3] - v[4];
    Ok(busy as f64 / clock_ticks_per_second())
}

/// Seconds the threads of `pid` have spent runnable but waiting for a CPU
/// (second field of `/proc/<pid>/task/<tid>/schedstat`, summed): how much
/// the process was held back by others on the machine.
pub fn runqueue_wait_seconds(pid: u32) -> Result<f64> {
    let mut ns = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Ok(s) = std::fs::read_to_string(entry?.path().join("schedstat")) {
            ns += s
                .split_whitespace()
                .nth(1)
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(ns as f64 / 1e9)
}

/// Peak resident set size in bytes (`VmHWM` of `/proc/<pid>/status`).
pub fn peak_rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status_kib(&status, "VmHWM:").map(|kib| kib * 1024)
}

/// Resident set size now in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status_kib(&status, "VmRSS:").map(|kib| kib * 1024)
}

fn status_kib(status: &str, key: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .with_context(|| format!("no {key} line"))?;
    let kib = line[key.len()..].trim().trim_end_matches("kB").trim();
    Ok(kib.parse()?)
}
