//! The process's own series on `/metrics`, under the names every
//! Prometheus client library uses (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`), read from `/proc`
//! when scraped, and `strait_build_info{version, commit}`.
//!
//! Off Linux, or when `/proc` cannot be read, the series it cannot read
//! are left out; `strait_build_info` is always there.

use std::fmt::Write as _;

/// Clock ticks per second of `/proc/<pid>/stat` times: Linux's `USER_HZ`,
/// 100 on every architecture's userspace ABI.
const USER_HZ: f64 = 100.0;

/// The version and commit this binary was built from (`unknown` when the
/// build had no git).
pub const COMMIT: &str = env!("STRAIT_COMMIT");

/// The Prometheus text of the process series and `strait_build_info`.
pub fn render() -> String {
    let mut out = String::new();
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    let stat = stat.as_deref().and_then(StatFields::parse);
    if let Some(s) = &stat {
        family(
            &mut out,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            (s.utime + s.stime) as f64 / USER_HZ,
        );
    }
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|t| vm_rss_bytes(&t));
    if let Some(rss) = rss {
        family(
            &mut out,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            rss as f64,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory handle itself is one of them.
        let n = dir.count().saturating_sub(1);
        family(
            &mut out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            n as f64,
        );
    }
    let max = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| max_open_files(&t));
    if let Some(max) = max {
        family(
            &mut out,
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            max as f64,
        );
    }
    let btime = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| boot_time(&t));
    if let (Some(s), Some(btime)) = (&stat, btime) {
        family(
            &mut out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            btime as f64 + s.starttime as f64 / USER_HZ,
        );
    }
    let _ = writeln!(
        out,
        "# HELP strait_build_info The version and commit Strait was built from.\n\
         # TYPE strait_build_info gauge\n\
         strait_build_info{{version=\"{}\", commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        COMMIT.replace(['\\', '"', '\n'], "_")
    );
    out
}

fn family(out: &mut String, name: &str, ty: &str, help: &str, value: f64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {ty}\n{name} {value}"
    );
}

/// The fields of `/proc/self/stat` used here, in clock ticks.
#[derive(Debug, PartialEq, Eq)]
struct StatFields {
    utime: u64,
    stime: u64,
    starttime: u64,
}

impl StatFields {
    /// Parses `pid (comm) state ppid ...`: the command may hold spaces and
    /// parentheses, so fields are counted after the last `)`.
    fn parse(text: &str) -> Option<StatFields> {
        let rest = &text[text.rfind(')')? + 1..];
        // After `)`: field 3 (state) is index 0.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let at = |field: usize| fields.get(field - 3)?.parse().ok();
        Some(StatFields {
            utime: at(14)?,
            stime: at(15)?,
            starttime: at(22)?,
        })
    }
}

/// `VmRSS:   1234 kB` of `/proc/self/status`, in bytes.
fn vm_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft `Max open files` of `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `btime <secs>` of `/proc/stat`: when the system booted.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 1234 \
                    1000 200 18446744073709551615";
        assert_eq!(
            StatFields::parse(line),
            Some(StatFields {
                utime: 250,
                stime: 75,
                starttime: 1234
            })
        );
        assert_eq!(StatFields::parse("garbage"), None);
    }

    #[test]
    fn status_limits_and_boot_time_parse() {
        assert_eq!(
            vm_rss_bytes("Name:\tstrait\nVmRSS:\t   2048 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(
            max_open_files(
                "Limit                     Soft Limit           Hard Limit           Units\n\
                 Max open files            1024                 4096                 files\n"
            ),
            Some(1024)
        );
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_has_every_series() {
        let text = render();
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_max_fds ",
            "process_start_time_seconds ",
            "strait_build_info{version=\"",
        ] {
            assert!(text.contains(name), "{name} in\n{text}");
        }
    }
}
