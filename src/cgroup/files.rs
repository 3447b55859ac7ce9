//! The cgroup files each limit writes and the files results are read from: pure functions of
//! the limits and of the files' text, unit-tested without a kernel (this machine has no v2
//! memory, pids or cpu controller, so the v2 writes are checked here and nowhere else).

use super::{Controller, Values};

/// One write of a limit: `bytes` into `file` of the leaf in the hierarchy of `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Write {
    pub controller: Controller,
    pub file: &'static str,
    pub bytes: String,
}

fn write(controller: Controller, file: &'static str, bytes: impl ToString) -> Write {
    Write { controller, file, bytes: bytes.to_string() }
}

/// The writes on a cgroup2 leaf, in order, for the limits `v` whose controller is on v2
/// (`on_v2`). Every write lands on an empty leaf: nothing joins it before `clone`.
pub(crate) fn v2_writes(v: &Values, on_v2: impl Fn(Controller) -> bool) -> Vec<Write> {
    use Controller::*;
    let mut w = Vec::new();
    if on_v2(Memory) {
        // memory.high before memory.max, so the leaf is never left with high above max.
        if let Some(high) = v.memory_high {
            w.push(write(Memory, "memory.high", high));
        }
        if let Some(max) = v.memory_max {
            w.push(write(Memory, "memory.max", max));
            // v2 counts swap apart from memory: the swap beyond memory (u64::MAX: no limit).
            let swap = match v.swap {
                Some(u64::MAX) => "max".to_string(),
                s => s.unwrap_or(0).to_string(),
            };
            w.push(write(Memory, "memory.swap.max", swap));
            if v.oom_group {
                w.push(write(Memory, "memory.oom.group", 1));
            }
        }
    }
    if on_v2(Pids) {
        if let Some(max) = v.pids_max {
            w.push(write(Pids, "pids.max", max));
        }
    }
    if on_v2(Cpu) {
        if let Some(weight) = v.cpu_weight {
            w.push(write(Cpu, "cpu.weight", weight));
        }
        if let Some((quota, period)) = v.cpu_max {
            w.push(write(Cpu, "cpu.max", format!("{quota} {period}")));
        }
    }
    if on_v2(Cpuset) {
        if let Some(cpus) = &v.cpus_allowed {
            w.push(write(Cpuset, "cpuset.cpus", cpus));
        }
    }
    if on_v2(Io) {
        if let Some(weight) = v.io_weight {
            w.push(write(Io, "io.weight", format!("default {weight}")));
        }
        for (major, minor, max) in &v.io_max {
            let rate = |r: Option<u64>| r.map_or("max".to_string(), |n| n.to_string());
            let line = format!(
                "{major}:{minor} rbps={} wbps={} riops={} wiops={}",
                rate(max.read_bps),
                rate(max.write_bps),
                rate(max.read_iops),
                rate(max.write_iops)
            );
            w.push(write(Io, "io.max", line));
        }
    }
    w
}

/// The writes on v1 leaves, in order, for the limits `v` whose controller is on v1 (`on_v1`);
/// `parent_mems` is the cpuset parent's `cpuset.mems` (an empty v1 cpuset refuses tasks).
pub(crate) fn v1_writes(
    v: &Values,
    on_v1: impl Fn(Controller) -> bool,
    parent_mems: &str,
) -> Vec<Write> {
    use Controller::*;
    let mut w = Vec::new();
    if on_v1(Memory) {
        if let Some(max) = v.memory_max {
            // memory first: memsw must never be below it (a fresh leaf has both unlimited).
            w.push(write(Memory, "memory.limit_in_bytes", max));
            // memory + swap; -1 is no limit.
            let memsw = match v.swap {
                Some(u64::MAX) => "-1".to_string(),
                s => max.saturating_add(s.unwrap_or(0)).to_string(),
            };
            w.push(write(Memory, "memory.memsw.limit_in_bytes", memsw));
        }
    }
    if on_v1(Pids) {
        if let Some(max) = v.pids_max {
            w.push(write(Pids, "pids.max", max));
        }
    }
    if on_v1(Cpu) {
        if let Some((quota, period)) = v.cpu_max {
            // The period first: a fresh quota is -1, so no intermediate pair is refused.
            w.push(write(Cpu, "cpu.cfs_period_us", period));
            w.push(write(Cpu, "cpu.cfs_quota_us", quota));
        }
        if let Some(weight) = v.cpu_weight {
            w.push(write(Cpu, "cpu.shares", weight_to_shares(weight)));
        }
    }
    if on_v1(Cpuset) {
        if let Some(cpus) = &v.cpus_allowed {
            w.push(write(Cpuset, "cpuset.cpus", cpus));
            w.push(write(Cpuset, "cpuset.mems", parent_mems.trim()));
        }
    }
    if on_v1(Io) {
        // BFQ's file (1 to 1000); the writer falls back to CFQ's `blkio.weight`.
        if let Some(weight) = v.io_weight {
            w.push(write(Io, V1_IO_WEIGHT, (weight / 10).clamp(1, 1000)));
        }
        for (major, minor, max) in &v.io_max {
            let rates = [
                ("blkio.throttle.read_bps_device", max.read_bps),
                ("blkio.throttle.write_bps_device", max.write_bps),
                ("blkio.throttle.read_iops_device", max.read_iops),
                ("blkio.throttle.write_iops_device", max.write_iops),
            ];
            for (file, rate) in rates {
                if let Some(n) = rate {
                    w.push(write(Io, file, format!("{major}:{minor} {n}")));
                }
            }
        }
    }
    w
}

/// The v1 IO weight's file under BFQ; `blkio.weight` under CFQ.
pub(crate) const V1_IO_WEIGHT: &str = "blkio.bfq.weight";

/// The controllers to enable in a v2 parent's `cgroup.subtree_control`: those the limits need
/// on v2 and `enabled` (the file's text) lacks, as one write (`+memory +pids`), or `None`.
pub(crate) fn subtree_control(needed: &[Controller], enabled: &str) -> Option<String> {
    let missing: Vec<String> = needed
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == c.name()))
        .map(|c| format!("+{}", c.name()))
        .collect();
    (!missing.is_empty()).then(|| missing.join(" "))
}

/// A cgroup2 `cpu.weight` (1 to 10000, default 100) as a v1 `cpu.shares` (2 to 262144,
/// default 1024): the exact inverse of the shares-to-weight formula runc, crun and youki use,
/// `w = ceil(10^((l² + 125 l) / 612 - 7/34))` with `l = log2(shares)`, so a weight set through
/// nscell on v1 reads back as the same weight in those runtimes. 100 gives 1024, 1 gives 2,
/// 10000 gives 262144. (systemd's linear `w * 1024 / 100` matches none of them.)
pub fn weight_to_shares(weight: u64) -> u64 {
    let w = (weight.clamp(1, 10_000)) as f64;
    let l = (-125.0 + (15625.0 + 2448.0 * (w.log10() + 7.0 / 34.0)).sqrt()) / 2.0;
    (2f64.powf(l).round() as u64).clamp(2, 262_144)
}

/// The value of `key` in a `key value` file (`memory.events`, `cpu.stat`, `memory.oom_control`,
/// `pids.events`).
pub(crate) fn value_of(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

/// A single-number file (`memory.peak`, `pids.current`); `max` reads as `None`.
pub(crate) fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Whether a cpu list (`0-3,8,10-11`, as `cpuset.cpus` takes it) is well formed.
pub(crate) fn valid_cpu_list(list: &str) -> bool {
    !list.is_empty()
        && list.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let first = ends.next().and_then(|n| n.parse::<u32>().ok());
            match (first, ends.next()) {
                (Some(_), None) => true,
                (Some(a), Some(b)) => b.parse::<u32>().is_ok_and(|b| a <= b),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values {
            memory_max: Some(64 << 20),
            swap: None,
            memory_high: Some(48 << 20),
            pids_max: Some(50),
            cpu_max: Some((20_000, 100_000)),
            cpu_weight: Some(100),
            cpus_allowed: Some("0-1".into()),
            io_max: Vec::new(),
            io_weight: None,
            oom_group: true,
            oom_group_asked: false,
        }
    }

    fn lines(w: &[Write]) -> Vec<String> {
        w.iter().map(|w| format!("{}={}", w.file, w.bytes)).collect()
    }

    #[test]
    fn v2_writes_every_limit_in_order() {
        let w = v2_writes(&values(), |_| true);
        assert_eq!(
            lines(&w),
            [
                "memory.high=50331648",
                "memory.max=67108864",
                "memory.swap.max=0",
                "memory.oom.group=1",
                "pids.max=50",
                "cpu.weight=100",
                "cpu.max=20000 100000",
                "cpuset.cpus=0-1",
            ]
        );
        let swap = Values { swap: Some(16 << 20), oom_group: false, ..values() };
        let w = v2_writes(&swap, |c| c == Controller::Memory);
        assert_eq!(
            lines(&w),
            ["memory.high=50331648", "memory.max=67108864", "memory.swap.max=16777216"]
        );
    }

    #[test]
    fn v1_writes_memory_before_memsw_and_the_period_before_the_quota() {
        let w = v1_writes(&values(), |_| true, "0\n");
        assert_eq!(
            lines(&w),
            [
                "memory.limit_in_bytes=67108864",
                "memory.memsw.limit_in_bytes=67108864",
                "pids.max=50",
                "cpu.cfs_period_us=100000",
                "cpu.cfs_quota_us=20000",
                "cpu.shares=1024",
                "cpuset.cpus=0-1",
                "cpuset.mems=0",
            ]
        );
        // v1 memsw is memory plus swap; memory.high has no v1 file.
        let swap = Values { swap: Some(16 << 20), ..values() };
        let w = v1_writes(&swap, |c| c == Controller::Memory, "");
        assert_eq!(
            lines(&w),
            ["memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=83886080"]
        );
        assert!(v1_writes(&values(), |_| false, "").is_empty());
        // Swap without a limit: v1's -1, v2's max.
        let unlimited = Values { swap: Some(u64::MAX), ..values() };
        let w = v1_writes(&unlimited, |c| c == Controller::Memory, "");
        assert_eq!(lines(&w)[1], "memory.memsw.limit_in_bytes=-1");
        let w = v2_writes(&unlimited, |c| c == Controller::Memory);
        assert_eq!(lines(&w)[2], "memory.swap.max=max");
    }

    #[test]
    fn io_limits_are_written_per_device() {
        use super::super::IoMax;
        let max = IoMax { read_bps: Some(1 << 20), write_iops: Some(100), ..IoMax::default() };
        let v = Values { io_max: vec![(254, 0, max)], io_weight: Some(200), ..values() };
        let w = v2_writes(&v, |c| c == Controller::Io);
        assert_eq!(
            lines(&w),
            ["io.weight=default 200", "io.max=254:0 rbps=1048576 wbps=max riops=max wiops=100"]
        );
        let w = v1_writes(&v, |c| c == Controller::Io, "");
        assert_eq!(
            lines(&w),
            [
                "blkio.bfq.weight=20",
                "blkio.throttle.read_bps_device=254:0 1048576",
                "blkio.throttle.write_iops_device=254:0 100",
            ]
        );
    }

    #[test]
    fn weights_map_to_shares_as_the_oci_runtimes_read_them_back() {
        let table = [(1, 2), (10, 50), (50, 421), (100, 1024), (200, 2452), (10_000, 262_144)];
        for (weight, shares) in table {
            assert_eq!(weight_to_shares(weight), shares, "weight {weight}");
        }
        // runc's shares -> weight gives the weight back (or one more, from rounding).
        for w in [1u64, 7, 42, 100, 333, 1000, 5000, 9999] {
            let s = weight_to_shares(w) as f64;
            let l = s.log2();
            let back = 10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0).ceil() as u64;
            assert!(back == w || back == w + 1, "{w} -> {s} -> {back}");
        }
    }

    #[test]
    fn only_missing_controllers_are_enabled() {
        use Controller::*;
        assert_eq!(subtree_control(&[Memory, Pids], ""), Some("+memory +pids".into()));
        assert_eq!(subtree_control(&[Memory, Pids], "cpu memory\n"), Some("+pids".into()));
        assert_eq!(subtree_control(&[Memory], "memory pids"), None);
        assert_eq!(subtree_control(&[], ""), None);
    }

    #[test]
    fn key_value_files_parse() {
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(value_of(events, "oom_kill"), Some(1));
        assert_eq!(value_of(events, "max"), Some(12));
        assert_eq!(value_of(events, "oom"), Some(1));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(value_of(v1, "oom_kill"), Some(3));
        assert_eq!(value_of("usage_usec 5\n", "user_usec"), None);
        assert_eq!(number("max\n"), None);
        assert_eq!(number("4096\n"), Some(4096));
    }

    #[test]
    fn cpu_lists_are_checked() {
        for ok in ["0", "0-1", "0,2", "0-3,8,10-11"] {
            assert!(valid_cpu_list(ok), "{ok}");
        }
        for bad in ["", "a", "1-0", "0,", "-1", "0-", "0--1", " 0"] {
            assert!(!valid_cpu_list(bad), "{bad:?}");
        }
    }
}
