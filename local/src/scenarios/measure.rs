//! Summaries of measured values, for the demo's and the benchmarks' reports: one definition
//! of a percentile for all of them (nearest rank); and what a process has spent, read from
//! /proc (Linux), for the tests and benchmarks that watch the emulator or a function.

/// The nearest-rank `p`-th percentile (0..=100) of `values`; 0 when there are none.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// [`percentile`] of whole numbers (latencies in ms).
pub fn percentile_u64(values: &[u64], p: f64) -> u64 {
    let as_f64: Vec<f64> = values.iter().map(|v| *v as f64).collect();
    percentile(&as_f64, p) as u64
}

/// A process's peak resident memory so far (VmHWM in /proc/<pid>/status), in KB; 0 when it
/// cannot be read.
pub fn peak_memory_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The fields of /proc/<pid>/stat after the command's closing parenthesis (a command may
/// itself hold spaces and parentheses), with the command.
fn stat_of(pid: u32) -> Option<(String, Vec<String>)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let command = head.split_once('(')?.1.to_owned();
    Some((
        command,
        rest.split_whitespace().map(str::to_owned).collect(),
    ))
}

/// User + system CPU seconds a process has spent so far (utime and stime, in clock ticks).
pub fn cpu_seconds(pid: u32) -> f64 {
    let Some((_, fields)) = stat_of(pid) else {
        return 0.0;
    };
    // utime and stime: fields 14 and 15 of the line, the 12th and 13th after the command.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / per_second.max(1.0)
}

/// The pids of this process's children running `command` (the kernel keeps its first 15
/// bytes): the functions the local Runtime API started.
pub fn children_named(command: &str) -> Vec<u32> {
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            stat_of(pid).is_some_and(|(name, fields)| name == command && fields.get(1) == Some(&me))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_takes_a_measured_value() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 5.0);
        assert_eq!(percentile(&values, 99.0), 10.0);
        assert_eq!(percentile(&values, 0.0), 1.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn proc_figures_of_a_process_are_read_back() {
        // Prepare: a child this process started, and some CPU spent here
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep starts");
        let me = std::process::id();
        let before = cpu_seconds(me);
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        // Act
        let spent = cpu_seconds(me) - before;
        let children = children_named("sleep");
        let peak = peak_memory_kb(me);
        let _ = child.kill();
        let _ = child.wait();
        // Assess: the busy loop is counted (clock ticks are 10 ms), the child is found by
        // its command and parent, and this process has a peak resident size
        assert!(
            spent >= 0.1,
            "{spent} CPU seconds counted for a 300 ms busy loop"
        );
        assert_eq!(children, vec![child.id()]);
        assert!(peak > 0);
    }
}
