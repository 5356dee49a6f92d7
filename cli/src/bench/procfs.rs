//! CPU time and resident memory of a process, read from Linux's `/proc`.

use std::sync::OnceLock;

/// Clock ticks a second, the unit of CPU times in `/proc/PID/stat`.
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf only reads a configuration value; it has no memory effects.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if ticks > 0 { ticks as f64 } else { 100.0 }
    })
}

/// User plus system CPU seconds used so far by `pid` (`self` for this process).
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_seconds_of(&stat, ticks_per_second())
}

/// Parses utime and stime (fields 14 and 15) out of a `/proc/PID/stat` line. The command
/// name (field 2) is in parentheses and may hold spaces, so fields count from its end.
pub fn cpu_seconds_of(stat: &str, ticks_per_second: f64) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Field 3 (state) is the first after the name; utime is field 14.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second)
}

/// CPU seconds the whole machine has spent busy (every state but idle and iowait), summed
/// over cores, from the first line of `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_seconds_of(stat.lines().next()?, ticks_per_second())
}

/// Parses the `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal...
pub fn busy_seconds_of(line: &str, ticks_per_second: f64) -> Option<f64> {
    let fields: Vec<u64> = line
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = fields[..] else {
        return None;
    };
    Some((user + nice + system + irq + softirq + steal) as f64 / ticks_per_second)
}

/// A `/proc/PID/status` memory line (`VmRSS`, `VmHWM`) in KiB.
pub fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_field_kib(&status, field)
}

/// Reads `field` (such as `VmHWM`) in KiB out of the text of `/proc/PID/status`.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_fields_after_the_name() {
        let stat = "4242 (tally node (x)) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 9 0 100 1000000 5000";
        assert_eq!(cpu_seconds_of(stat, 100.0), Some(3.0));
        assert_eq!(cpu_seconds_of("garbage", 100.0), None);
    }

    #[test]
    fn machine_busy_time_leaves_out_idle_and_iowait() {
        let line = "cpu  100 20 30 5000 70 5 5 40 0 0";
        assert_eq!(busy_seconds_of(line, 100.0), Some(2.0));
        assert_eq!(busy_seconds_of("cpu0 1 2 3 4 5 6 7 8", 100.0), None);
    }

    #[test]
    fn memory_fields_in_kib() {
        let status = "Name:\ttally\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n";
        assert_eq!(status_field_kib(status, "VmHWM"), Some(123_456));
        assert_eq!(status_field_kib(status, "VmRSS"), Some(65_432));
        assert_eq!(status_field_kib(status, "VmSwap"), None);
    }
}
