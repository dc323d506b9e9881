//! Readings from `/proc`: a process's resident memory and CPU time, and
//! the machine's CPU times (busy, and stolen by the hypervisor).

/// `VmRSS` of process `pid`, in KiB; `None` if it cannot be read.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// User plus system CPU seconds this process has used (`utime + stime`
/// from `/proc/self/stat`); 0 where that file is missing.
pub fn self_cpu_secs() -> f64 {
    cpu_secs_at("/proc/self/stat").unwrap_or(0.0)
}

/// User plus system CPU seconds process `pid` has used (all its threads);
/// `None` if it cannot be read.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    cpu_secs_at(&format!("/proc/{pid}/stat"))
}

fn cpu_secs_at(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces: fields are counted after
    // its closing parenthesis; utime and stime are fields 14 and 15.
    let (_, after) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let total = ticks(11)? + ticks(12)?;
    Some(total as f64 / rustix::param::clock_ticks_per_second() as f64)
}

/// One CPU's times from `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Everything but idle, iowait and steal.
    pub busy: u64,
    /// Time the hypervisor ran something else while this CPU had work.
    pub steal: u64,
    /// All of it.
    pub total: u64,
}

/// Each CPU's times (`cpuN` lines, in order); empty where `/proc/stat` is
/// missing.
pub fn cpu_times() -> Vec<CpuTimes> {
    std::fs::read_to_string("/proc/stat")
        .map(|stat| parse_cpu_times(&stat))
        .unwrap_or_default()
}

fn parse_cpu_times(stat: &str) -> Vec<CpuTimes> {
    stat.lines()
        .filter(|line| line.starts_with("cpu") && !line.starts_with("cpu "))
        .map(|line| {
            // user nice system idle iowait irq softirq steal guest guest_nice;
            // guest time is already counted in user and nice.
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .map(|f| f.parse().unwrap_or(0))
                .collect();
            let at = |i: usize| v.get(i).copied().unwrap_or(0);
            let total = (0..8).map(at).sum();
            let steal = at(7);
            CpuTimes {
                busy: total - at(3) - at(4) - steal,
                steal,
                total,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let rss = rss_kib(std::process::id()).expect("own RSS");
        assert!(rss > 100, "{rss}");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(self_cpu_secs() >= 0.0);
        let own = cpu_secs(std::process::id()).expect("own CPU time");
        assert!(own > 0.0 && own <= self_cpu_secs() + 0.1, "{own}");
        assert_eq!(rss_kib(u32::MAX), None);
        assert_eq!(cpu_secs(u32::MAX), None);
        assert!(!cpu_times().is_empty());
    }

    #[test]
    fn parses_proc_stat() {
        let stat = "cpu  10 0 10 70 5 0 5 10 3 0\n\
                    cpu0 1 2 3 4 5 6 7 8 9 10\n\
                    cpu1 10 0 20 60 0 0 0 10 0 0\n\
                    intr 1 2 3\n";
        let cpus = parse_cpu_times(stat);
        assert_eq!(cpus.len(), 2);
        assert_eq!(
            cpus[0],
            CpuTimes {
                busy: 1 + 2 + 3 + 6 + 7,
                steal: 8,
                total: 36
            }
        );
        assert_eq!(
            cpus[1],
            CpuTimes {
                busy: 30,
                steal: 10,
                total: 100
            }
        );
    }
}
