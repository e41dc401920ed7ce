//! CPU time and memory of a process, from Linux's /proc (proc(5)): `/proc/PID/stat`
//! fields 14 and 15 (utime, stime, in clock ticks of 1/100 s: USER_HZ is 100 on every
//! Linux architecture sichss targets) and `/proc/PID/status` VmHWM and VmRSS (KiB).
//! Elsewhere, or for a process that is gone, every reading is `None`.

/// CPU seconds (user + system) used so far by `pid` (`None` = this process).
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    parse_stat(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime from the text of /proc/PID/stat, in seconds.
fn parse_stat(text: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// (VmHWM, VmRSS) of `pid` in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((status_field(&text, "VmHWM")?, status_field(&text, "VmRSS")?))
}

fn status_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_past_a_command_name_with_spaces() {
        let stat = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat(stat), Some(3.0));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_this_process_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(cpu_seconds(None).is_some());
            let (hwm, rss) = memory_kib(std::process::id()).unwrap();
            assert!(hwm >= rss && rss > 0);
        }
    }

    #[test]
    fn reads_status_fields_in_kib() {
        let s = "Name:\tsichss\nVmHWM:\t  20480 kB\nVmRSS:\t  10240 kB\n";
        assert_eq!(status_field(s, "VmHWM"), Some(20480));
        assert_eq!(status_field(s, "VmRSS"), Some(10240));
        assert_eq!(status_field(s, "VmSwap"), None);
    }
}
