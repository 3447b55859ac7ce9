//! Cgroup limits against the real kernel: what a user of `Sandbox::limits` observes.
//!
//! Where the sandboxes' cgroups go: CI runs this binary inside delegated leaves it made (as
//! root and as uid 65534, the way systemd delegation would) and names them in
//! `NSCELL_TEST_CGROUP` (colon-separated); without it, root uses its own cgroups and anyone
//! else skips (no delegated cgroup to write to). The tests of this file run one at a time, so
//! "nothing left behind" can be checked by listing the parents.

mod common;

use nscell::cgroup::{Held, Limit, Limits};
use nscell::{Error, Namespaces, Sandbox, Stdio, Step};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The parents the sandboxes' cgroups are made in (the caller's own cgroups), and the lock
/// that keeps the other tests of this file out; or why this user has none.
fn setup() -> Result<(std::sync::MutexGuard<'static, ()>, Vec<PathBuf>), String> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let parents: Vec<PathBuf> = match std::env::var("NSCELL_TEST_CGROUP") {
        Ok(list) => list.split(':').filter(|s| !s.is_empty()).map(PathBuf::from).collect(),
        Err(_) if common::is_root() => common::own_cgroups(),
        Err(_) => {
            return Err("NSCELL_TEST_CGROUP unset and not root: no delegated cgroup to write \
                        (CI sets one up as systemd delegation would)"
                .into());
        }
    };
    Ok((guard, parents))
}

/// The `nscell-*` leaves of this process under `parents`.
fn ours(parents: &[PathBuf]) -> Vec<PathBuf> {
    let pid = format!("-{}-", std::process::id());
    let mut out = Vec::new();
    for p in parents {
        for e in std::fs::read_dir(p).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("nscell-") && name.contains(&pid) {
                out.push(e.path());
            }
        }
    }
    out
}

/// Whether `pid` has ended (gone, or a zombie its new parent has not reaped yet), waiting up
/// to 2 s for the kill to land.
fn dead(pid: u32) -> bool {
    let start = Instant::now();
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.chars().next().unwrap()));
        if matches!(state, None | Some('Z') | Some('X')) {
            return true;
        }
        if start.elapsed() > Duration::from_secs(2) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// No cgroup of this process's sandboxes is left under `parents`.
#[track_caller]
fn nothing_left(parents: &[PathBuf]) {
    let left = ours(parents);
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn v1_has(controller: &str) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().any(|l| {
        l.contains(" - cgroup cgroup ")
            && l.rsplit(' ').next().unwrap().split(',').any(|o| o == controller)
    })
}

fn cgroup2() -> Option<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().find_map(|l| {
        l.contains(" - cgroup2 ").then(|| PathBuf::from(l.split(' ').nth(4).unwrap()))
    })
}

/// A controller's limits work here through some hierarchy (v1, or cgroup2 offering it).
fn has_controller(c: &str) -> bool {
    v1_has(c)
        || cgroup2().is_some_and(|p| {
            std::fs::read_to_string(p.join("cgroup.controllers"))
                .unwrap_or_default()
                .split_whitespace()
                .any(|x| x == c)
        })
}

macro_rules! setup_or_skip {
    () => {
        match setup() {
            Ok(s) => s,
            Err(why) => skip!("{why}"),
        }
    };
}

#[test]
fn the_program_is_in_its_cgroups_from_its_first_instruction() {
    let (_g, parents) = setup_or_skip!();
    if !has_controller("pids") || !has_controller("memory") {
        skip!("no memory or pids controller here");
    }
    let limits = Limits::new().pids_max(100).memory_max(256 << 20);
    // cat's first read is of /proc/self/cgroup: no shell ran before it.
    let mut sb = Sandbox::new("/bin/cat");
    sb.arg("/proc/self/cgroup").limits(limits.clone()).stdout(Stdio::piped());
    let child = sb.spawn().unwrap();
    let cg = child.cgroup().unwrap();
    let leaves: Vec<PathBuf> = cg.paths().map(Path::to_path_buf).collect();
    let names: Vec<String> =
        leaves.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| n == &names[0] && n.starts_with("nscell-")), "{leaves:?}");
    assert!(
        cg.holds_all() || cg.holds().iter().any(|(l, _)| *l == Limit::Placement),
        "{:?}",
        cg.holds()
    );
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for (ctrl, line_has) in [("pids", ":pids:"), ("memory", ":memory:")] {
        if v1_has(ctrl) {
            let line = text.lines().find(|l| l.contains(line_has)).unwrap();
            assert!(line.ends_with(&format!("/{}", names[0])), "{ctrl}: {text}");
        }
    }
    if cgroup2().is_some() {
        let line = text.lines().find(|l| l.starts_with("0::")).unwrap();
        assert!(line.ends_with(&format!("/{}", names[0])), "cgroup2: {text}");
    }
    // Gone once waited for.
    for leaf in &leaves {
        assert!(!leaf.exists(), "{} is left", leaf.display());
    }
    nothing_left(&parents);

    // With a cgroup namespace, its cgroups read as the root; with an init, the program's task
    // is inside too.
    for init in [false, true] {
        let out = Sandbox::new("/bin/cat")
            .arg("/proc/self/cgroup")
            .namespaces(Namespaces::DEFAULT | Namespaces::CGROUP)
            .init(init)
            .limits(limits.clone())
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
        for line in text
            .lines()
            .filter(|l| l.contains(":pids:") || l.contains(":memory:") || l.starts_with("0::"))
        {
            assert!(line.ends_with(":/"), "init {init}: {text}");
        }
    }
}

#[test]
fn placement_is_by_clone3_into_the_cgroup2_leaf() {
    let (_g, _parents) = setup_or_skip!();
    let Some(_) = cgroup2() else { skip!("no cgroup2 tree mounted") };
    let mut child = Sandbox::new("/bin/sleep").arg("10").limits(Limits::new()).spawn().unwrap();
    let cg = child.cgroup().unwrap();
    let v2 = cg.holds().iter().find(|(l, _)| *l == Limit::Placement).unwrap().1.clone();
    assert_eq!(v2, Held::V2, "{:?}", cg.holds());
    assert!(cg.placed_at_clone(), "clone3 with CLONE_INTO_CGROUP is there on this kernel");
    assert_eq!(cg.pids(), [child.id()]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_memory_hog_is_oom_killed_and_the_result_says_so() {
    let (_g, parents) = setup_or_skip!();
    if !has_controller("memory") {
        skip!("no memory controller: v1 memory not mounted and cgroup2 lists no memory");
    }
    // tail keeps the one endless line of /dev/zero in memory.
    let mut child = Sandbox::new("/usr/bin/tail")
        .arg("/dev/zero")
        .limits(Limits::new().memory_max(64 << 20))
        .timeout(Duration::from_secs(60))
        .spawn()
        .unwrap();
    let info = child.wait_info().unwrap();
    assert!(!info.timed_out);
    let usage = info.cgroup.unwrap();
    assert!(info.oom_killed(), "{info:?}");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&info.status), Some(9));
    assert!(usage.oom_kills.unwrap() >= 1, "{usage:?}");
    let peak = usage.memory_peak.unwrap_or(0);
    assert!(peak <= (64 << 20) + (1 << 20), "peak {peak} is above the limit");
    drop(child);
    nothing_left(&parents);
}

#[test]
fn a_fork_bomb_stops_at_pids_max_and_ends_with_the_sandbox() {
    let (_g, parents) = setup_or_skip!();
    if !has_controller("pids") {
        skip!("no pids controller here");
    }
    // No PID namespace: only the cgroup ends what the shell starts.
    let mut child = Sandbox::new("/bin/sh")
        .args(["-c", "while :; do /bin/sleep 60 & done"])
        .namespaces(Namespaces::USER)
        .limits(Limits::new().pids_max(50))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cg = child.cgroup().unwrap();
    let start = Instant::now();
    let usage = loop {
        let u = cg.usage();
        if u.pids_max_hits.unwrap_or(0) > 0 {
            break u;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "never hit pids.max: {u:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(usage.pids_current.unwrap() <= 50, "{usage:?}");
    if let Some(peak) = usage.pids_peak {
        assert_eq!(peak, 50, "{usage:?}");
    }
    let pids = cg.pids();
    assert!(pids.len() > 10, "{pids:?}");
    child.kill().unwrap();
    child.wait().unwrap();
    for pid in pids {
        assert!(dead(pid), "pid {pid} of the fork bomb lives on");
    }
    nothing_left(&parents);
}

#[test]
fn a_busy_loop_under_a_fifth_of_a_cpu_is_throttled() {
    let (_g, parents) = setup_or_skip!();
    if !has_controller("cpu") {
        skip!("no cpu controller here");
    }
    let info = Sandbox::new("/bin/sh")
        .args(["-c", "while :; do :; done"])
        .limits(Limits::new().cpus(0.2))
        .timeout(Duration::from_secs(1))
        .spawn()
        .unwrap()
        .wait_info()
        .unwrap();
    assert!(info.timed_out);
    let u = info.cgroup.unwrap();
    // No lower bound: the machine is shared.
    let used = u.cpu_time.unwrap_or(info.usage.user_time + info.usage.system_time);
    assert!(used <= Duration::from_millis(300), "{used:?} of CPU in 1 s under cpus(0.2): {u:?}");
    assert!(u.nr_throttled.unwrap() > 0, "{u:?}");
    nothing_left(&parents);
}

#[test]
fn without_a_pid_namespace_the_end_of_the_sandbox_ends_its_background_processes() {
    let (_g, parents) = setup_or_skip!();
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "/bin/sleep 100 </dev/null >/dev/null 2>&1 & echo $!"])
        .namespaces(Namespaces::USER)
        .limits(Limits::new())
        .output()
        .unwrap();
    let pid: u32 = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    assert!(dead(pid), "the background sleep {pid} outlived its sandbox");
    nothing_left(&parents);
}

#[test]
fn nothing_is_left_after_a_setup_failure_a_timeout_or_a_drop() {
    let (_g, parents) = setup_or_skip!();
    let limits = || Limits::new().pids_max(20);
    // A program that does not exist: the child fails after joining its cgroups.
    let e = Sandbox::new("/nonexistent/program").limits(limits()).spawn().unwrap_err();
    assert!(matches!(e, Error::Exec { .. }), "{e}");
    assert!(ours(&parents).is_empty(), "after a setup failure: {:?}", ours(&parents));
    // A bad working directory.
    let e =
        Sandbox::new("/bin/true").current_dir("/nonexistent").limits(limits()).spawn().unwrap_err();
    assert_eq!(e.step(), Some(Step::Chdir), "{e}");
    assert!(ours(&parents).is_empty(), "after a failed chdir: {:?}", ours(&parents));
    // A timeout.
    let info = Sandbox::new("/bin/sleep")
        .arg("10")
        .limits(limits())
        .timeout(Duration::from_millis(100))
        .spawn()
        .unwrap()
        .wait_info()
        .unwrap();
    assert!(info.timed_out);
    assert!(ours(&parents).is_empty(), "after a timeout: {:?}", ours(&parents));
    // A dropped Child.
    let child = Sandbox::new("/bin/sleep").arg("10").limits(limits()).spawn().unwrap();
    assert!(!ours(&parents).is_empty());
    drop(child);
    assert!(ours(&parents).is_empty(), "after a drop: {:?}", ours(&parents));
}

#[test]
fn eight_threads_spawn_limited_sandboxes_at_once() {
    let (_g, parents) = setup_or_skip!();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..10 {
                    let out = Sandbox::new("/bin/cat")
                        .arg("/proc/self/cgroup")
                        .limits(Limits::new().pids_max(30).memory_max(128 << 20).cpus(0.5))
                        .output()
                        .unwrap();
                    assert!(out.status.success());
                    assert!(String::from_utf8_lossy(&out.stdout).contains("/nscell-"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    nothing_left(&parents);
}

/// The v1 files hold what each limit wrote, read while the program runs.
#[test]
fn v1_limits_are_written_as_v1_files() {
    let (_g, parents) = setup_or_skip!();
    let read = |leaves: &[PathBuf], file: &str| {
        leaves
            .iter()
            .find_map(|l| std::fs::read_to_string(l.join(file)).ok())
            .map(|s| s.trim().to_string())
    };
    let mut ran = Vec::new();
    if v1_has("memory") {
        for (swap, memsw) in [(None, "67108864"), (Some(16 << 20), "83886080")] {
            let mut limits = Limits::new().memory_max(64 << 20);
            if let Some(s) = swap {
                limits = limits.memory_swap_max(s);
            }
            let child = Sandbox::new("/bin/sleep").arg("10").limits(limits).spawn().unwrap();
            let leaves: Vec<PathBuf> =
                child.cgroup().unwrap().paths().map(Path::to_path_buf).collect();
            assert_eq!(read(&leaves, "memory.limit_in_bytes").as_deref(), Some("67108864"));
            assert_eq!(read(&leaves, "memory.memsw.limit_in_bytes").as_deref(), Some(memsw));
        }
        ran.push("memory");
    }
    if v1_has("pids") {
        let child = Sandbox::new("/bin/sleep")
            .arg("10")
            .limits(Limits::new().pids_max(50))
            .spawn()
            .unwrap();
        let leaves: Vec<PathBuf> = child.cgroup().unwrap().paths().map(Path::to_path_buf).collect();
        assert_eq!(read(&leaves, "pids.max").as_deref(), Some("50"));
        ran.push("pids");
    }
    if v1_has("cpu") {
        let limits = Limits::new().cpus(0.2).cpu_weight(100);
        let child = Sandbox::new("/bin/sleep").arg("10").limits(limits).spawn().unwrap();
        let leaves: Vec<PathBuf> = child.cgroup().unwrap().paths().map(Path::to_path_buf).collect();
        assert_eq!(read(&leaves, "cpu.cfs_period_us").as_deref(), Some("100000"));
        assert_eq!(read(&leaves, "cpu.cfs_quota_us").as_deref(), Some("20000"));
        assert_eq!(read(&leaves, "cpu.shares").as_deref(), Some("1024"));
        ran.push("cpu");
    }
    if v1_has("cpuset") {
        let out = Sandbox::new("/bin/grep")
            .args(["Cpus_allowed_list", "/proc/self/status"])
            .limits(Limits::new().cpus_allowed("0"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.split_whitespace().nth(1), Some("0"), "{text}");
        ran.push("cpuset");
    }
    let blkio_parent = parents.iter().any(|p| p.starts_with("/sys/fs/cgroup/blkio"));
    if v1_has("blkio") && !blkio_parent {
        eprintln!("blkio is not among the parents here (not delegated): io_max not tried");
    } else if v1_has("blkio") {
        // A block device of this machine's, for its major:minor (only stat'ed, never opened).
        let dev = std::fs::read_dir("/sys/block").unwrap().flatten().find_map(|e| {
            let node = Path::new("/dev").join(e.file_name());
            let numbers = std::fs::read_to_string(e.path().join("dev")).ok()?;
            node.exists().then(|| (node, numbers.trim().to_string()))
        });
        match dev {
            Some((node, numbers)) => {
                let max = nscell::cgroup::IoMax { read_bps: Some(1 << 20), ..Default::default() };
                let limits = Limits::new().io_max(&node, max).io_weight(500);
                let child = Sandbox::new("/bin/sleep").arg("10").limits(limits).spawn().unwrap();
                let cg = child.cgroup().unwrap();
                let leaves: Vec<PathBuf> = cg.paths().map(Path::to_path_buf).collect();
                let expected = format!("{numbers} 1048576");
                assert_eq!(
                    read(&leaves, "blkio.throttle.read_bps_device").as_deref(),
                    Some(&*expected)
                );
                let weight =
                    read(&leaves, "blkio.bfq.weight").or_else(|| read(&leaves, "blkio.weight"));
                match &cg.holds().iter().find(|(l, _)| *l == Limit::IoWeight).unwrap().1 {
                    Held::V1 => assert_eq!(weight.as_deref(), Some("50")),
                    Held::No(why) => {
                        assert!(weight.is_none() && why.contains("scheduler"), "{why}")
                    }
                    other => panic!("{other:?}"),
                }
                ran.push("blkio");
            }
            None => eprintln!("no block device node here: io_max not tried"),
        }
    }
    if ran.is_empty() {
        skip!("no cgroup v1 hierarchy with memory, pids, cpu, cpuset or blkio here");
    }
}

#[test]
fn bad_limits_are_refused_and_leave_nothing() {
    let (_g, parents) = setup_or_skip!();
    let bad = [
        Limits::new().memory_max(0),
        Limits::new().pids_max(0),
        Limits::new().cpus(0.0),
        Limits::new().cpus(-1.0),
        Limits::new().cpus(f64::NAN),
        Limits::new().cpu_weight(0),
        Limits::new().cpu_weight(10_001),
        Limits::new().cpu_max(999, 100_000),
        Limits::new().cpu_max(10_000, 100),
        Limits::new().memory_swap_max(1 << 20),
        Limits::new().cpus_allowed("0-"),
        Limits::new().io_weight(0),
        Limits::new()
            .io_max("/dev/null", nscell::cgroup::IoMax { read_bps: Some(1), ..Default::default() }),
        Limits::new().io_max(
            "/nonexistent",
            nscell::cgroup::IoMax { read_bps: Some(1), ..Default::default() },
        ),
        Limits::new().parent("../escape"),
    ];
    for limits in bad {
        let e = Sandbox::new("/bin/true").limits(limits.clone()).spawn().unwrap_err();
        assert!(e.is_invalid_input(), "{limits:?}: {e}");
    }
    // A parent that does not exist: the error names it.
    let e = Sandbox::new("/bin/true")
        .limits(Limits::new().parent("no-such-parent"))
        .spawn()
        .unwrap_err();
    assert_eq!(e.step(), Some(Step::CreateCgroup), "{e}");
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    assert!(e.to_string().contains("no-such-parent"), "{e}");
    // A parent under one hierarchy's mount, with a limit another hierarchy holds.
    if v1_has("memory") && v1_has("pids") {
        let memory_parent =
            parents.iter().find(|p| p.starts_with("/sys/fs/cgroup/memory")).unwrap();
        let limits = Limits::new().parent(memory_parent).pids_max(10);
        let e = Sandbox::new("/bin/true").limits(limits).spawn().unwrap_err();
        assert!(e.is_invalid_input() && e.to_string().contains("hierarchy"), "{e}");
    }
    // Not writable: the root cgroup, for anyone but root.
    if !common::is_root() {
        let e = Sandbox::new("/bin/true")
            .limits(Limits::new().parent("/").pids_max(10))
            .spawn()
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
        assert!(e.hint().unwrap().contains("delegated"), "{e}");
    }
    nothing_left(&parents);
}

#[test]
fn what_this_host_cannot_enforce_is_named_or_reported() {
    let (_g, parents) = setup_or_skip!();
    if !v1_has("memory") {
        skip!("memory is not on cgroup v1 here: memory_high can hold");
    }
    // memory.high has no v1 file.
    let limits = Limits::new().memory_high(64 << 20).pids_max(10);
    let hard = limits.clone().compat(nscell::cgroup::CompatLevel::HardRequirement);
    let e = Sandbox::new("/bin/true").limits(hard).spawn().unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }) && e.to_string().contains("memory_high"), "{e}");
    let mut child = Sandbox::new("/bin/true").limits(limits).spawn().unwrap();
    let cg = child.cgroup().unwrap();
    assert!(!cg.holds_all());
    let high = &cg.holds().iter().find(|(l, _)| *l == Limit::MemoryHigh).unwrap().1;
    assert!(matches!(high, Held::No(why) if why.contains("v2")), "{high:?}");
    child.wait().unwrap();
    nothing_left(&parents);
}

#[test]
fn the_cgroup2_leaf_freezes_thaws_and_kills_from_another_handle() {
    let (_g, parents) = setup_or_skip!();
    if cgroup2().is_none() {
        skip!("no cgroup2 tree mounted");
    }
    let mut child = Sandbox::new("/bin/sh")
        .args(["-c", "/bin/sleep 100 & exec /bin/sleep 100"])
        .namespaces(Namespaces::USER)
        .limits(Limits::new())
        .spawn()
        .unwrap();
    let cg = child.cgroup().unwrap();
    let record = cg.record();
    let other = nscell::cgroup::Cgroup::open(&record).unwrap();
    let start = Instant::now();
    while cg.pids().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    other.freeze().unwrap();
    let v2 = cg.paths().find(|p| p.starts_with(cgroup2().unwrap())).unwrap().to_path_buf();
    let events = std::fs::read_to_string(v2.join("cgroup.events")).unwrap();
    assert!(events.contains("frozen 1"), "{events}");
    other.thaw().unwrap();
    let pids = cg.pids();
    // Kill without a PID namespace: the background sleep goes too.
    child.kill().unwrap();
    child.wait().unwrap();
    for pid in pids {
        assert!(dead(pid), "{pid} lives on");
    }
    drop(other);
    nothing_left(&parents);
}

fn nscell(args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(common::nscell_bin());
    cmd.args(args).stdin(std::process::Stdio::null());
    cmd
}

#[test]
fn the_binary_reports_an_oom_kill_in_its_status_and_json() {
    let (_g, parents) = setup_or_skip!();
    if !has_controller("memory") {
        skip!("no memory controller here");
    }
    let (r, w) = std::io::pipe().unwrap();
    let mut cmd = nscell(&["--memory", "64m", "--json-status-fd", "3", "--", "tail", "/dev/zero"]);
    let w = std::os::fd::OwnedFd::from(w);
    let raw = std::os::fd::AsRawFd::as_raw_fd(&w);
    // SAFETY (pre_exec): dup2 only, async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            if libc::dup2(raw, 3) < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
        });
    }
    let child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    drop(w);
    let mut json = String::new();
    std::io::Read::read_to_string(&mut { r }, &mut json).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(json.lines().last().unwrap().contains("\"oom-killed\": true"), "{json}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("OOM killer"));
    nothing_left(&parents);
}

#[test]
fn bad_cgroup_options_exit_2_or_125_with_one_line() {
    let (_g, parents) = setup_or_skip!();
    for (args, code, says) in [
        (&["--memory", "0", "true"][..], 2, "--memory"),
        (&["--memory-swap", "1g", "true"], 2, "--memory-swap needs --memory"),
        (&["--pids-limit", "0", "true"], 2, "pids_max must be at least 1"),
        (&["--cpus", "0", "true"], 2, "cpus(0)"),
        (
            &["--cgroup-parent", "no-such-parent", "--pids-limit", "5", "true"],
            125,
            "no-such-parent",
        ),
    ] {
        let out = nscell(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    nothing_left(&parents);
}

/// SIGKILL of the caller runs no destructor: its leaves stay (as documented), until `--gc` or
/// the next spawn under the same parent removes them with what still runs there.
#[test]
fn leaves_of_a_killed_caller_are_collected_by_gc_and_by_the_next_spawn() {
    let (_g, parents) = setup_or_skip!();
    for collector in ["--gc", "spawn"] {
        // No PID namespace and no --die-with-parent: the sleeps outlive nscell.
        let mut caller = nscell(&[
            "--unshare-user",
            "--pids-limit",
            "20",
            "--",
            "sh",
            "-c",
            "sleep 60 & exec sleep 60",
        ])
        .spawn()
        .unwrap();
        let tag = format!("-{}-", caller.id());
        let leaves = || -> Vec<PathBuf> {
            parents
                .iter()
                .flat_map(|p| std::fs::read_dir(p).unwrap().flatten().map(|e| e.path()))
                .filter(|p| p.file_name().unwrap().to_string_lossy().contains(&tag))
                .collect()
        };
        let start = Instant::now();
        let pids = loop {
            let pids: Vec<u32> = leaves()
                .iter()
                .flat_map(|l| {
                    std::fs::read_to_string(l.join("cgroup.procs"))
                        .unwrap_or_default()
                        .lines()
                        .map(|p| p.parse().unwrap())
                        .collect::<Vec<u32>>()
                })
                .collect();
            if pids.len() >= 4 {
                break pids;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no sandbox appeared");
            std::thread::sleep(Duration::from_millis(10));
        };
        caller.kill().unwrap();
        caller.wait().unwrap();
        assert!(!leaves().is_empty(), "the leaves went with their caller?");
        let out = match collector {
            "--gc" => nscell(&["--gc"]).output().unwrap(),
            _ => nscell(&["--pids-limit", "5", "--", "true"]).output().unwrap(),
        };
        assert!(out.status.success(), "{collector}: {}", String::from_utf8_lossy(&out.stderr));
        if collector == "--gc" {
            assert!(String::from_utf8_lossy(&out.stdout).contains("removed "), "{out:?}");
        }
        assert!(leaves().is_empty(), "{collector} left {:?}", leaves());
        for pid in pids {
            assert!(dead(pid), "{collector}: {pid} lives on");
        }
    }
}

#[test]
fn check_says_which_controllers_this_user_can_use_and_why_not() {
    let setup = setup();
    let support = Sandbox::check();
    let cg = &support.cgroups;
    let expected =
        if cgroup2().is_some() { if v1_has("memory") { "hybrid" } else { "v2" } } else { "v1" };
    assert_eq!(cg.version, expected, "{cg}");
    match setup {
        // Delegated (CI) or root: each controller this host has is usable, under the caller's
        // own cgroup.
        Ok((_g, parents)) => {
            for c in ["memory", "pids", "cpu"] {
                if has_controller(c) {
                    assert!(cg.usable(c), "{c}: {cg}");
                }
            }
            if cgroup2().is_some() {
                assert!(cg.usable("placement"), "{cg}");
            }
            for (name, r) in &cg.controllers {
                if let Ok((_, parent)) = r {
                    assert!(
                        parents.contains(parent),
                        "{name} under {} is not one of {parents:?}",
                        parent.display()
                    );
                }
            }
        }
        // Not delegated: nothing is usable, and the report says why.
        Err(_) => {
            for (name, r) in &cg.controllers {
                let why = r.as_ref().err().unwrap_or_else(|| panic!("{name} usable: {cg}"));
                assert!(why.contains("not delegated"), "{name}: {why}");
            }
        }
    }
}

/// With a mount namespace every cgroupfs is read-only (and locked so) in the sandbox: a program
/// with the caller's uid cannot write itself into the caller's own `cgroup.procs` (v1 checks
/// nothing else) nor make the mount writable again.
#[test]
fn the_program_cannot_move_itself_out_of_its_cgroup() {
    let (_g, parents) = setup_or_skip!();
    let mut script = String::new();
    for p in &parents {
        script.push_str(&format!(
            "echo $$ 2>/dev/null >{}/cgroup.procs && echo MOVED {};\n",
            p.display(),
            p.display()
        ));
        script.push_str(&format!(
            "mount -o remount,rw,bind {} 2>/dev/null && echo REMOUNTED {};\n",
            p.display(),
            p.display()
        ));
    }
    script.push_str("cat /proc/self/cgroup");
    let out = Sandbox::new("/bin/sh")
        .args(["-c", &script])
        .limits(Limits::new().pids_max(20))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains("MOVED") && !text.contains("REMOUNTED"), "{text}");
    let inside = text.lines().filter(|l| l.contains("/nscell-")).count();
    assert!(inside >= 1, "{text}");
    nothing_left(&parents);
}

/// A memory limit too small for the sandbox's own setup ends the sandbox, never its caller:
/// the OOM killer kills every process that shares its victim's memory, so a child that shares
/// the caller's outside vfork must never be in a memory cgroup.
#[test]
fn a_memory_limit_too_small_to_start_never_kills_the_caller() {
    let (_g, parents) = setup_or_skip!();
    if !has_controller("memory") {
        skip!("no memory controller here");
    }
    let tiny = || Limits::new().memory_max(64 << 10);
    // The fast path (vfork), and with a timeout (the parent follows the setup), with and
    // without an init: execve's own allocations fail (an error that says why), or the program
    // is killed as it starts (an OOM kill).
    for (timeout, init) in [(None, false), (Some(30), false), (Some(30), true)] {
        let mut sb = Sandbox::new("/bin/sh");
        sb.args(["-c", "exit 42"]).limits(tiny()).init(init);
        if let Some(secs) = timeout {
            sb.timeout(Duration::from_secs(secs));
        }
        let r = sb.spawn();
        match r {
            Ok(mut child) => {
                let info = child.wait_info().unwrap();
                assert!(info.oom_killed(), "{timeout:?} {init}: {info:?}");
            }
            Err(e) => assert!(e.hint().is_some_and(|h| h.contains("memory limit")), "{e}"),
        }
    }
    // The binary (which always follows the setup, to be interruptible): 137, and it says why.
    let out = nscell(&["--memory", "64k", "--", "/bin/sh", "-c", "exit 42"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(137) || out.status.code() == Some(126),
        "{:?} {err}",
        out.status
    );
    assert!(err.contains("OOM killer") || err.contains("memory limit"), "{err}");
    nothing_left(&parents);
}

/// In a new root, `cgroup_view` shows the sandbox's own cgroups read-only, named as
/// `/sys/fs/cgroup` names them.
#[test]
fn a_new_root_gets_a_read_only_view_of_its_own_cgroups() {
    let (_g, parents) = setup_or_skip!();
    if !has_controller("pids") {
        skip!("no pids controller here");
    }
    let script = "cat /sys/fs/cgroup/*/pids.max; ls /sys/fs/cgroup; \
                  echo 1 2>/dev/null >/sys/fs/cgroup/*/pids.max || echo refused";
    let out = Sandbox::new("/bin/sh")
        .args(["-c", script])
        .ro_bind("/usr", "/usr")
        .symlink("usr/bin", "/bin")
        .symlink("usr/lib", "/lib")
        .symlink("usr/lib64", "/lib64")
        .proc("/proc")
        .cgroup_view("/sys/fs/cgroup")
        .limits(Limits::new().pids_max(42))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("42"), "{text}");
    assert!(text.contains("pids"), "{text}");
    assert!(text.ends_with("refused\n"), "{text}");
    if cgroup2().is_some() && v1_has("pids") {
        assert!(text.lines().any(|l| l == "unified"), "{text}");
    }
    // Without limits there is nothing to show: a clear error.
    let e = Sandbox::new("/bin/true")
        .ro_bind("/usr", "/usr")
        .cgroup_view("/sys/fs/cgroup")
        .spawn()
        .unwrap_err();
    assert!(e.is_invalid_input() && e.to_string().contains("limits"), "{e}");
    nothing_left(&parents);
}

/// Where `clone3` is refused (a container's seccomp policy), the child joins its cgroup2 leaf
/// itself through `cgroup.procs`: still inside before the program's first instruction. Tested
/// with the binary run in a sandbox whose seccomp filter fails `clone3` with `ENOSYS`.
#[test]
fn without_clone3_the_child_joins_its_cgroup2_leaf_itself() {
    let (_g, parents) = setup_or_skip!();
    if cgroup2().is_none() {
        skip!("no cgroup2 tree mounted");
    }
    use nscell::seccomp::{Action, Rule};
    let out = Sandbox::new(common::nscell_bin())
        .args(["--pids-limit", "20", "--", "/bin/cat", "/proc/self/cgroup"])
        // No mount namespace: the inner nscell writes the cgroupfs.
        .namespaces(Namespaces::USER)
        .default_seccomp(false)
        .seccomp_rule(Rule::new("clone3", Action::Errno(libc::ENOSYS)))
        .limits(Limits::new())
        .output()
        .unwrap();
    let (text, err) =
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text} {err}");
    let v2 = text.lines().find(|l| l.starts_with("0::")).unwrap();
    // The inner sandbox's leaf, below the outer one's.
    let leaf = |c: &&str| {
        c.strip_prefix("nscell-").is_some_and(|r| r.starts_with(|d: char| d.is_ascii_digit()))
    };
    assert_eq!(v2.split('/').filter(leaf).count(), 2, "{text}");
    if v1_has("pids") {
        assert!(text.lines().any(|l| l.contains(":pids:") && l.contains("/nscell-")), "{text}");
    }
    nothing_left(&parents);
}

/// A handle opened from a record (another process's, an OCI runtime's `delete`) removes the
/// cgroup with everything in it; a record that names no cgroup is refused.
#[test]
fn a_reopened_handle_removes_the_cgroup_and_what_runs_in_it() {
    let (_g, parents) = setup_or_skip!();
    let mut child =
        Sandbox::new("/bin/sleep").arg("100").limits(Limits::new().pids_max(10)).spawn().unwrap();
    let record = child.cgroup().unwrap().record();
    let leaves: Vec<PathBuf> = record.lines().map(PathBuf::from).collect();
    let other = nscell::cgroup::Cgroup::open(&record).unwrap();
    assert_eq!(other.pids(), [child.id()]);
    let usage = other.remove().unwrap();
    assert_eq!(usage.pids_current, None, "{usage:?}");
    let status = child.wait().unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
    for leaf in &leaves {
        assert!(!leaf.exists(), "{}", leaf.display());
    }
    for bad in ["", "/tmp\n", "/nonexistent/cgroup\n"] {
        assert!(nscell::cgroup::Cgroup::open(bad).is_err(), "{bad:?}");
    }
    nothing_left(&parents);
}
