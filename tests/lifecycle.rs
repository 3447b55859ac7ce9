//! The sandbox's life and death against the real kernel: init as PID 1, signals, timeouts,
//! resource usage, death with the parent, sessions and terminals. Runs as root and as an
//! unprivileged user.

mod common;

use common::{lasting_zombie_children, stdout};
use nscell::{Error, Namespaces, Sandbox};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn alive(pid: u32) -> bool {
    // A zombie is not alive: it has ended and only waits to be reaped.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Outer pids of the children of `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Every process below `pid`, children first.
fn descendants(pid: u32) -> Vec<u32> {
    let mut out = children_of(pid);
    let mut i = 0;
    while let Some(&p) = out.get(i) {
        out.extend(children_of(p));
        i += 1;
    }
    out
}

fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

// ---- init ----

#[test]
fn init_reaps_orphans() {
    // The subshell exits at once, so its `sleep 0.1` is orphaned and re-parented to PID 1.
    let script = "(sleep 0.1 &); sleep 0.5; ps -e -o stat=,comm=";
    let out = Sandbox::new("/bin/sh").args(["-c", script]).init(true).output().unwrap();
    let text = stdout(&out);
    assert!(!text.lines().any(|l| l.trim_start().starts_with('Z')), "a zombie is left:\n{text}");
    assert!(!text.contains("sleep"), "the orphan was not reaped:\n{text}");
}

#[test]
fn orphans_stay_zombies_without_init_and_are_reaped_with_it() {
    // PID 1 (or the init's program) becomes `sleep`, which reaps nothing; the orphan ends after
    // 0.1 s. Seen from outside, through /proc.
    fn is_zombie(pid: u32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    }
    for init in [false, true] {
        let mut child = Sandbox::new("/bin/sh")
            .args(["-c", "(sleep 0.1 &); exec sleep 1"])
            .init(init)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let pid = child.id();
        let mut all = children_of(pid);
        all.extend(all.clone().iter().flat_map(|&p| children_of(p)));
        let zombies = all.iter().filter(|&&p| is_zombie(p)).count();
        if init {
            assert_eq!(zombies, 0, "with init: {all:?}");
        } else {
            assert_eq!(zombies, 1, "control without init: the orphan should be a zombie");
        }
        child.kill().unwrap();
        let _ = child.wait();
    }
}

#[test]
fn with_init_the_program_is_pid_2_and_init_is_pid_1() {
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "echo $$; ps -o pid= -p 1 | tr -d ' '"])
        .init(true)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "2\n1\n");
}

#[test]
fn init_forwards_sigterm_to_a_program_without_handlers() {
    // Control: sleep as PID 1 ignores SIGTERM (a kernel rule for PID 1).
    let mut child = Sandbox::new("/bin/sleep").arg("100").spawn().unwrap();
    child.signal(libc::SIGTERM).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(child.try_wait().unwrap(), None, "control: PID 1 without handler ended on SIGTERM");
    child.kill().unwrap();
    let _ = child.wait();

    // A signal this process ignores is ignored by the program too (dispositions set to SIG_IGN
    // are inherited, as with std::process::Command): a background job of a non-interactive shell
    // ignores SIGINT and SIGQUIT.
    let ignored = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:").map(|m| u64::from_str_radix(m.trim(), 16).unwrap()))
        .unwrap();
    let signals = [
        (libc::SIGTERM, "TERM"),
        (libc::SIGINT, "INT"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
    ];
    for (sig, name) in signals {
        if ignored & (1 << (sig - 1)) != 0 {
            eprintln!("note: SIG{name} is ignored by this test process; not checked");
            continue;
        }
        let mut child = Sandbox::new("/bin/sleep").arg("100").init(true).spawn().unwrap();
        child.signal(sig).unwrap();
        let start = Instant::now();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(128 + sig), "SIG{name}: {status}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn wait_info_gives_the_code_a_shell_would() {
    let mut child = Sandbox::new("/bin/sh").args(["-c", "exit 42"]).spawn().unwrap();
    assert_eq!(child.wait_info().unwrap().shell_code(), 42);
    let mut child = Sandbox::new("/bin/sleep").arg("100").spawn().unwrap();
    child.kill().unwrap();
    assert_eq!(child.wait_info().unwrap().shell_code(), 128 + libc::SIGKILL);
}

#[test]
fn init_passes_the_programs_exit_status_on() {
    for code in [0, 1, 42, 255] {
        let out = Sandbox::new("/bin/sh")
            .args(["-c", &format!("exit {code}")])
            .init(true)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code));
    }
    // The program is not PID 1, so it can die of its own signal; the init reports 128+N.
    let out = Sandbox::new("/bin/sh").args(["-c", "kill -SEGV $$"]).init(true).output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGSEGV));
}

#[test]
fn init_kills_what_is_left_when_the_program_ends() {
    // The background sleep holds stdout open: output() returns only when it is gone too.
    let start = Instant::now();
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "sleep 100 & echo started"])
        .init(true)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "started\n");
    assert!(start.elapsed() < Duration::from_secs(10), "the background sleep was not killed");
}

#[test]
fn init_reports_a_missing_program_as_an_error() {
    let err = Sandbox::new("/nonexistent/program").init(true).spawn().unwrap_err();
    assert!(matches!(err, Error::Exec { .. }), "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let err = Sandbox::new("/etc/passwd").init(true).spawn().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
    assert_eq!(lasting_zombie_children(), Vec::<u32>::new(), "a failed spawn left a zombie");
}

#[test]
fn init_needs_a_pid_namespace() {
    let err =
        Sandbox::new("/bin/true").namespaces(Namespaces::USER).init(true).spawn().unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
}

#[test]
fn init_works_from_many_threads_and_leaves_nothing() {
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                for _ in 0..5 {
                    let out = Sandbox::new("/bin/sh")
                        .args(["-c", &format!("echo {i}")])
                        .init(true)
                        .output()
                        .unwrap();
                    assert_eq!(stdout(&out), format!("{i}\n"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(lasting_zombie_children(), Vec::<u32>::new());
}

// ---- timeout, kill, resource usage ----

#[test]
fn timeout_kills_a_program_that_ignores_sigterm_and_its_children() {
    for init in [false, true] {
        let timeout = Duration::from_millis(300);
        let mut child = Sandbox::new("/bin/sh")
            .args(["-c", "trap '' TERM; sleep 100 & sleep 100"])
            .init(init)
            .timeout(timeout)
            .spawn()
            .unwrap();
        let start = Instant::now();
        let pid = child.id();
        let mut descendants = Vec::new();
        wait_until("the sleeps have started", Duration::from_secs(5), || {
            descendants = children_of(pid);
            descendants.extend(descendants.clone().iter().flat_map(|&p| children_of(p)));
            descendants.len() >= if init { 3 } else { 2 }
        });
        let info = child.wait_info().unwrap();
        let late = start.elapsed().saturating_sub(timeout);
        assert!(info.timed_out, "init {init}: {info:?}");
        assert_eq!(info.status.signal(), Some(libc::SIGKILL));
        assert!(start.elapsed() >= timeout - Duration::from_millis(20));
        assert!(late < Duration::from_millis(100), "init {init}: killed {late:?} late");
        for p in descendants {
            assert!(!alive(p), "init {init}: process {p} survived the timeout");
        }
    }
}

#[test]
fn a_program_that_ends_in_time_is_not_timed_out() {
    let mut child = Sandbox::new("/bin/true").timeout(Duration::from_secs(10)).spawn().unwrap();
    let info = child.wait_info().unwrap();
    assert!(!info.timed_out);
    assert!(info.status.success());
}

#[test]
fn a_timeout_too_long_for_the_clock_is_no_deadline() {
    // Instant + Duration::MAX overflows: the sandbox must run as without a timeout, not panic.
    for timeout in [Duration::MAX, Duration::from_secs(u64::MAX / 2), Duration::from_secs(1 << 62)]
    {
        let mut child = Sandbox::new("/bin/sh").args(["-c", "exit 42"]).timeout(timeout).spawn();
        let info = child.as_mut().expect("spawn").wait_info().unwrap();
        assert_eq!((info.status.code(), info.timed_out), (Some(42), false), "{timeout:?}");
        let out = Sandbox::new("/bin/echo").arg("hi").timeout(timeout).output().unwrap();
        assert_eq!(out.stdout, b"hi\n", "{timeout:?}");
        let mut child = Sandbox::new("/bin/true").timeout(timeout).spawn().unwrap();
        assert!(child.wait().unwrap().success());
        assert!(child.try_wait().unwrap().is_some_and(|s| s.success()));
    }
}

#[test]
fn timeout_applies_to_output_and_try_wait() {
    let start = Instant::now();
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "echo before; sleep 100"])
        .timeout(Duration::from_millis(200))
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL));
    assert_eq!(out.stdout, b"before\n");
    assert!(start.elapsed() < Duration::from_millis(300 + 200), "{:?}", start.elapsed());

    let mut child =
        Sandbox::new("/bin/sleep").arg("100").timeout(Duration::from_millis(100)).spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    std::thread::sleep(Duration::from_millis(150));
    let status = child.try_wait().unwrap().expect("try_wait after the deadline");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(child.wait_info().unwrap().timed_out);
}

#[test]
fn resource_usage_counts_the_sandbox() {
    // CPU burnt in a grandchild that the shell waits for, and one that only the init reaps.
    let burn = "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done";
    for init in [false, true] {
        let mut child = Sandbox::new("/bin/sh")
            .args(["-c", &format!("sh -c '{burn}'")])
            .init(init)
            .stdout(nscell::Stdio::null())
            .spawn()
            .unwrap();
        let info = child.wait_info().unwrap();
        assert!(info.status.success());
        let cpu = info.usage.user_time + info.usage.system_time;
        assert!(cpu >= Duration::from_millis(20), "init {init}: {:?}", info.usage);
        assert!(info.usage.max_rss_kib > 100, "{:?}", info.usage);
    }
}

#[test]
fn kill_ends_every_process_of_the_sandbox() {
    let mut child = Sandbox::new("/bin/sh")
        .args(["-c", "sleep 100 & sleep 100 & wait"])
        .init(true)
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut all = Vec::new();
    wait_until("the sleeps have started", Duration::from_secs(5), || {
        all = children_of(pid);
        all.extend(all.clone().iter().flat_map(|&p| children_of(p)));
        all.len() >= 3
    });
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    for p in all {
        assert!(!alive(p), "{p} survived");
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn init_with_maps_written_by_the_parent() {
    // The handshake path with the go pipe and the init together.
    let mut sb = Sandbox::new("/bin/sh");
    if let Err(why) = common::multi_range_maps(&mut sb) {
        skip!("{why}");
    }
    let out =
        sb.args(["-c", "cat /proc/self/uid_map | wc -l; echo $$"]).init(true).output().unwrap();
    assert_eq!(stdout(&out), "2\n2\n");
}

// ---- death with the parent ----

/// A pidfd of `pid`, polled until it is readable (the process has ended) or `limit` passes.
fn ends_within(pidfd: &std::os::fd::OwnedFd, limit: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let t = Timespec { tv_sec: limit.as_secs() as i64, tv_nsec: limit.subsec_nanos() as i64 };
    poll(&mut fds, Some(&t)).unwrap() == 1
}

/// Runs `nscell OPTIONS -- sleep 100` as a helper, SIGKILLs the helper once the sandbox is up,
/// and says whether the sandbox ended too.
fn sandbox_dies_with_killed_spawner(options: &[&str]) -> bool {
    use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
    let mut helper = std::process::Command::new(common::nscell_bin())
        .args(options)
        .args(["--no-pty", "--", "/bin/sleep", "100"])
        .spawn()
        .unwrap();
    let mut sandbox = Vec::new();
    wait_until("the sandbox has started", Duration::from_secs(5), || {
        sandbox = children_of(helper.id());
        !sandbox.is_empty()
    });
    let pid = Pid::from_raw(sandbox[0] as i32).unwrap();
    let pidfd = pidfd_open(pid, PidfdFlags::empty()).unwrap();
    // It must really be running sleep (not still setting up) before the helper dies; with
    // --init, sleep is the child of the sandbox's PID 1.
    wait_until("sleep runs", Duration::from_secs(5), || {
        let mut pids = vec![sandbox[0]];
        pids.extend(children_of(sandbox[0]));
        pids.iter().any(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n")
        })
    });
    helper.kill().unwrap();
    helper.wait().unwrap();
    let died = ends_within(&pidfd, Duration::from_secs(2));
    if !died {
        let _ = pidfd_send_signal(&pidfd, Signal::KILL);
    }
    died
}

#[test]
fn die_with_parent_kills_the_sandbox_when_the_spawner_is_killed() {
    // With a PID namespace (the default) and without one.
    assert!(sandbox_dies_with_killed_spawner(&["--die-with-parent"]), "with a PID namespace");
    assert!(
        sandbox_dies_with_killed_spawner(&["--die-with-parent", "--unshare-user"]),
        "without a PID namespace"
    );
    assert!(sandbox_dies_with_killed_spawner(&["--die-with-parent", "--init"]), "with an init");
    // Control: without the option the sandbox outlives its spawner.
    assert!(!sandbox_dies_with_killed_spawner(&[]), "control: the sandbox died without the option");
}

#[test]
fn die_with_parent_follows_the_spawning_thread() {
    let child = std::thread::spawn(|| {
        Sandbox::new("/bin/sleep").arg("100").die_with_parent(true).spawn().unwrap()
    })
    .join()
    .unwrap();
    let mut child = child;
    let start = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(start.elapsed() < Duration::from_secs(5));

    // Control: without it, the sandbox outlives the thread.
    let mut child = std::thread::spawn(|| Sandbox::new("/bin/sleep").arg("100").spawn().unwrap())
        .join()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(child.try_wait().unwrap(), None);
}

// ---- sessions and terminals ----

/// A new pty pair (master, slave).
fn pty_pair() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use rustix::fs::{Mode, OFlags};
    use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let slave =
        rustix::fs::open(&name, OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC, Mode::empty())
            .unwrap();
    (master, slave)
}

/// Everything readable from a pty master, until the slave side is closed by all (EIO).
fn read_master(master: &std::os::fd::OwnedFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(master, &mut buf) {
            Ok(0) | Err(rustix::io::Errno::IO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("read pty master: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs `nscell OPTIONS -- perl (TIOCSTI on stdin)` with a pty as nscell's controlling terminal
/// (setsid -c), and returns what the terminal showed.
fn tiocsti_from_sandbox(options: &[&str]) -> String {
    let (master, slave) = pty_pair();
    let stdio = |fd: &std::os::fd::OwnedFd| std::process::Stdio::from(fd.try_clone().unwrap());
    // TIOCSTI is 0x5412 on x86_64 and aarch64.
    let script = r#"my $c = "x"; if (ioctl(STDIN, 0x5412, $c)) { print "TIOCSTI worked\n" } else { print "TIOCSTI failed: $!\n" }"#;
    let mut helper = std::process::Command::new("setsid")
        .arg("-c")
        .arg(common::nscell_bin())
        .args(options)
        // The default seccomp filter refuses TIOCSTI by itself; this tests the session alone.
        .args(["--no-default-seccomp", "--no-pty", "--", "/usr/bin/perl", "-e", script])
        .stdin(stdio(&slave))
        .stdout(stdio(&slave))
        .stderr(stdio(&slave))
        .spawn()
        .unwrap();
    drop(slave);
    let status = helper.wait().unwrap();
    let text = read_master(&master);
    assert!(status.success(), "{status}: {text}");
    text
}

#[test]
fn new_session_stops_tiocsti_on_the_callers_terminal() {
    if std::fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti").is_ok_and(|v| v.trim() == "0") {
        skip!("TIOCSTI is disabled for everyone here (dev.tty.legacy_tiocsti=0)");
    }
    if !Path::new("/usr/bin/perl").exists() || !Path::new("/usr/bin/setsid").exists() {
        skip!("needs /usr/bin/perl and /usr/bin/setsid (util-linux)");
    }
    // Control: sharing the terminal, the sandbox can type into it.
    let shared = tiocsti_from_sandbox(&["--share-terminal"]);
    assert!(shared.contains("TIOCSTI worked"), "control: {shared}");
    // The default, and --new-session: it cannot.
    for options in [&[][..], &["--new-session"], &["--new-session", "--init"]] {
        let text = tiocsti_from_sandbox(options);
        assert!(text.contains("TIOCSTI failed: Operation not permitted"), "{options:?}: {text}");
    }
}

#[test]
fn new_session_is_the_default_and_can_be_turned_off() {
    // Field 6 of /proc/self/stat is the session id; inside a PID namespace a session led from
    // outside shows as 0, and the program's own session (it is PID 1, the leader) as 1.
    let session = |sb: &mut Sandbox| {
        let out = sb.args(["-c", "cut -d' ' -f6 /proc/self/stat"]).output().unwrap();
        stdout(&out).trim().to_string()
    };
    assert_eq!(session(&mut Sandbox::new("/bin/sh")), "1");
    assert_eq!(session(Sandbox::new("/bin/sh").new_session(true)), "1");
    assert_eq!(session(Sandbox::new("/bin/sh").new_session(false)), "0");
}

/// Sharing the caller's terminal from inside a PID namespace whose session leader is outside
/// it (as under a container runtime or CI harness: `getsid` reads 0 there): nscell runs the
/// program as a background job instead of failing or panicking (found by the CLI fuzz test).
#[test]
fn sharing_a_session_led_from_an_ancestor_pid_namespace_works() {
    let nscell = common::nscell_bin();
    let status = Sandbox::new(nscell)
        .args(["--share-terminal", "--", "/bin/sh", "-c", "exit 42"])
        .new_session(false)
        .stdin(nscell::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(42), "{status:?}");
}

// ---- interactive, under a real terminal (tmux) ----

/// A private tmux server (its own socket, no configuration) with one window running `command`.
/// The width of a host shell's window: wide enough that no typed command line wraps. A line
/// that fills the width exactly is joined with the next by `capture-pane -J`, which would hide
/// the program's output behind the prompt (it happened with some checkout paths).
const WIDE: u16 = 250;

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(command: &str, width: u16, height: u16) -> Option<Tmux> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = format!("nscell-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let tmux = Tmux { socket };
        let ok = tmux
            .cmd(&["new-session", "-d", "-x", &width.to_string(), "-y", &height.to_string()])
            .arg(command)
            .status()
            .ok()?
            .success();
        ok.then_some(tmux)
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new("tmux");
        c.args(["-L", &self.socket, "-f", "/dev/null"]).args(args);
        // tmux runs the window's command with $SHELL, or else the user's login shell, which for
        // nobody is /usr/sbin/nologin: name a real shell so the test does not depend on either.
        c.env_remove("TMUX").env("SHELL", "/bin/sh");
        c
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    fn type_line(&self, line: &str) {
        self.send(&["-l", line]);
        self.send(&["Enter"]);
    }

    fn screen(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-J"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` (outside the typed command lines).
    fn expect(&self, text: &str) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.lines().any(|l| l.contains(text) && !l.contains("$ ")) {
                return;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("the terminal never showed {text:?}; it shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the last line on the screen is the prompt `prompt` (a command is done).
    fn expect_prompt(&self, prompt: &str) {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.trim() == prompt)
            {
                return;
            }
            if start.elapsed() > Duration::from_secs(10) {
                panic!("the terminal never showed the prompt {prompt:?}; it shows:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of the program the window started.
    fn pane_pid(&self) -> u32 {
        let out = self.cmd(&["display-message", "-p", "#{pane_pid}"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

/// Returns from the test, saying why, where tmux (the interactive tests' real terminal) is not
/// installed.
macro_rules! skip_without_tmux {
    () => {
        let tmux = std::process::Command::new("tmux").arg("-V").output();
        if !tmux.is_ok_and(|o| o.status.success()) {
            skip!("tmux is not installed (the interactive tests need a real terminal)");
        }
    };
}

#[test]
fn interactive_bash_has_job_control_and_the_window_size() {
    skip_without_tmux!();
    let nscell = common::nscell_bin();
    // The prompt ends in "$ ", which `expect` uses to tell typed lines from output.
    let command = format!("{nscell} --setenv PS1 'cell$ ' -- /bin/bash --norc --noprofile");
    let tmux = Tmux::start(&command, 100, 30).expect("tmux new-session");
    tmux.expect_prompt("cell$");

    tmux.type_line("stty size; echo pid=$$ tty=$(tty | cut -c1-9)");
    tmux.expect("30 100");
    tmux.expect("pid=1 tty=/dev/pts/");

    // Job control: a background job, `jobs`, `fg`, Ctrl-Z, Ctrl-C.
    tmux.type_line("sleep 100 &");
    tmux.type_line("jobs");
    tmux.expect("Running");
    tmux.type_line("fg");
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-z"]);
    tmux.expect("Stopped");
    tmux.type_line("fg");
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-c"]);
    tmux.type_line("echo status=$?");
    tmux.expect("status=130");

    // A resize of the host terminal reaches the sandbox's terminal.
    assert!(tmux.cmd(&["resize-window", "-x", "120", "-y", "40"]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    tmux.type_line("stty size");
    tmux.expect("40 120");
    tmux.type_line("exit 7");
}

#[test]
fn a_line_typed_before_the_sandbox_starts_reaches_it() {
    // Type-ahead: a line typed while nscell is still starting waits in the terminal's input
    // queue, and switching the terminal to raw mode must not throw it away.
    skip_without_tmux!();
    let nscell = common::nscell_bin();
    let command =
        format!("sleep 1; exec {nscell} --setenv PS1 'cell$ ' -- /bin/bash --norc --noprofile");
    let tmux = Tmux::start(&command, WIDE, 30).expect("tmux new-session");
    // Typed during the `sleep`; only bash's output has the sum in it.
    tmux.type_line("echo typed-ahead-$((6*7))");
    tmux.expect("typed-ahead-42");
}

#[test]
fn the_host_terminal_mode_is_restored_after_exit_timeout_and_kill() {
    skip_without_tmux!();
    let nscell = common::nscell_bin();
    let tmux = Tmux::start("PS1='host$ ' /bin/bash --norc --noprofile", WIDE, 30).expect("tmux");
    tmux.expect_prompt("host$");
    tmux.type_line("echo mode=$(stty -g | md5sum | cut -c1-12)");
    tmux.expect("mode=");
    let screen = tmux.screen();
    let before = screen.lines().find(|l| l.starts_with("mode=")).unwrap().to_string();
    let check = |what: &str, n: usize| {
        tmux.type_line(&format!("echo check{n}=$(stty -g | md5sum | cut -c1-12)"));
        tmux.expect(&format!("check{n}="));
        let screen = tmux.screen();
        let line = screen.lines().find(|l| l.starts_with(&format!("check{n}="))).unwrap();
        assert_eq!(line.split_once('=').unwrap().1, before.split_once('=').unwrap().1, "{what}");
    };

    // A normal exit, with the program's status.
    tmux.type_line(&format!("{nscell} -- /bin/sh -c 'exit 3'; echo rc=$?"));
    tmux.expect("rc=3");
    check("after a normal exit", 1);

    // The timeout kills the sandbox: 124.
    tmux.type_line(&format!("{nscell} --timeout 0.3 -- /bin/sleep 100; echo rc=$?"));
    tmux.expect("rc=124");
    check("after the timeout", 2);

    // Killed from outside with SIGKILL: 137.
    tmux.type_line(&format!("{nscell} -- /bin/sleep 100; echo rc=$?"));
    // The sandbox itself, `sleep`, wherever it is below the pane (its shell runs bash, which
    // runs nscell): killing nscell instead would leave the sandbox running on its own.
    let shell = tmux.pane_pid();
    let mut sandbox = Vec::new();
    wait_until("the sandbox runs", Duration::from_secs(5), || {
        sandbox = descendants(shell)
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n")
            })
            .collect();
        !sandbox.is_empty()
    });
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(sandbox[0] as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    tmux.expect("rc=137");
    check("after the sandbox was killed", 3);
}

#[test]
fn pty_gives_the_program_a_controlling_terminal() {
    for init in [false, true] {
        let mut child = Sandbox::new("/bin/sh")
            .args([
                "-c",
                "tty; test -t 0 && test -t 1 && test -t 2 && echo all-terminals; ps -o tty= -p $$",
            ])
            .pty(true)
            .init(init)
            .spawn()
            .unwrap();
        let master = child.take_pty().expect("the master side");
        assert!(child.take_pty().is_none(), "handed out once");
        let text = read_master(&master);
        assert!(child.wait().unwrap().success(), "{text}");
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert!(lines[0].starts_with("/dev/pts/"), "init {init}: {text}");
        assert_eq!(lines[1], "all-terminals");
        // ps names the controlling terminal: the same pty.
        assert_eq!(format!("/dev/{}", lines[2]), lines[0], "init {init}: {text}");
    }
}

#[test]
fn pty_input_reaches_the_program_and_relay_needs_a_pty() {
    let mut child = Sandbox::new("/bin/sh")
        .args(["-c", "read line; echo got:$line"])
        .pty(true)
        .spawn()
        .unwrap();
    let master = child.take_pty().unwrap();
    rustix::io::write(&master, b"hello\n").unwrap();
    let text = read_master(&master);
    assert!(text.contains("got:hello"), "{text}");
    assert!(child.wait().unwrap().success());

    let mut child = Sandbox::new("/bin/true").spawn().unwrap();
    assert!(nscell::pty::relay(&mut child).unwrap_err().is_invalid_input());
}

// ---- the binary ----

#[test]
fn nscell_passes_sigterm_through_its_init_to_a_program_without_handlers() {
    use rustix::process::{Pid, Signal, kill_process};
    for init in [true, false] {
        let mut cmd = std::process::Command::new(common::nscell_bin());
        // So that killing nscell in the control also ends its sandbox.
        cmd.arg("--die-with-parent");
        if init {
            cmd.arg("--init");
        }
        let mut nscell = cmd
            .args(["--no-pty", "--", "/bin/sleep", "100"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = nscell.id();
        wait_until("the sandbox runs", Duration::from_secs(5), || {
            let mut all = children_of(pid);
            all.extend(all.clone().into_iter().flat_map(children_of));
            all.iter().any(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c == "sleep\n")
            })
        });
        kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::TERM).unwrap();
        if init {
            let status = nscell.wait().unwrap();
            assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status}");
        } else {
            // Control: sleep as PID 1 does not get SIGTERM.
            std::thread::sleep(Duration::from_millis(300));
            assert!(nscell.try_wait().unwrap().is_none(), "control: sleep ended on SIGTERM");
            nscell.kill().unwrap();
            let _ = nscell.wait();
        }
    }
}

#[test]
fn nscell_timeout_exits_124() {
    let start = Instant::now();
    let status = std::process::Command::new(common::nscell_bin())
        .args(["--timeout", "0.2", "--no-pty", "--", "/bin/sleep", "100"])
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(124));
    assert!(start.elapsed() < Duration::from_secs(3));
    let status = std::process::Command::new(common::nscell_bin())
        .args(["--timeout", "5", "--no-pty", "--", "/bin/sh", "-c", "exit 9"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(9));
}

#[test]
fn ctrl_c_reaches_the_program_without_a_pty_once() {
    skip_without_tmux!();
    let nscell = common::nscell_bin();
    // Wide enough that no command line wraps (see WIDE).
    let tmux = Tmux::start("PS1='host$ ' /bin/bash --norc --noprofile", WIDE, 30).expect("tmux");
    tmux.expect_prompt("host$");
    // In its own session the program gets no Ctrl-C from the terminal: nscell passes it on. When
    // it shares the terminal it gets it directly (and the init does not send a second one).
    for (n, options) in ["--no-pty --init", "--no-pty --share-terminal --init"].iter().enumerate() {
        tmux.type_line(&format!("{nscell} {options} -- /bin/sleep 100; echo rc{n}=$?"));
        std::thread::sleep(Duration::from_millis(500));
        tmux.send(&["C-c"]);
        tmux.expect(&format!("rc{n}=130"));
        tmux.expect_prompt("host$");
    }
}

#[test]
fn the_bash_shell_example_follows_window_size_changes() {
    skip_without_tmux!();
    // cargo test builds the examples next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let example = exe.parent().unwrap().parent().unwrap().join("examples/bash_shell");
    if !example.exists() {
        skip!("{} is not built (run the tests with cargo test)", example.display());
    }
    // It does not block SIGWINCH, so the relay re-reads the size instead of using a signalfd.
    let command = format!("PS1='cell$ ' {} ", example.display());
    let tmux = Tmux::start(&command, 90, 25).expect("tmux");
    tmux.expect("nscell: try");
    tmux.type_line("export PS1='cell$ '; stty size; echo host=$(hostname)");
    tmux.expect("25 90");
    tmux.expect("host=nscell");
    assert!(tmux.cmd(&["resize-window", "-x", "70", "-y", "20"]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(300));
    tmux.type_line("stty size");
    tmux.expect("20 70");
    tmux.type_line("sleep 100 &");
    tmux.type_line("jobs");
    tmux.expect("Running");
    tmux.type_line("exit");
}

#[test]
fn relay_with_pipes_passes_input_end_and_all_output() {
    use std::io::Write;
    // Input from a pipe reaches the program, its end becomes Ctrl-D (cat ends), and all the
    // output comes back, the last line included.
    let mut nscell = std::process::Command::new(common::nscell_bin())
        .args(["--pty", "--", "/bin/sh", "-c", "cat >/dev/null; seq 1 50000"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    nscell.stdin.take().unwrap().write_all(b"some input\n").unwrap();
    let out = nscell.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(text.starts_with("some input\n1\n"), "{:?}", &text[..text.len().min(100)]);
    assert!(text.ends_with("\n50000\n"), "{:?}", &text[text.len().saturating_sub(100)..]);
    for _ in 0..20 {
        let out = std::process::Command::new(common::nscell_bin())
            .args(["--pty", "--", "/bin/echo", "last"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"last\r\n");
    }
}

#[test]
fn die_with_parent_has_no_window_when_the_spawner_dies_early() {
    // SIGKILL nscell at random moments from the start of its setup on: no sandbox may survive,
    // whether it had set PR_SET_PDEATHSIG yet or not.
    let marker = format!("{}.{}", 900 + std::process::id() % 90, std::process::id());
    let survivors = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == marker.as_bytes()))
            })
            .filter(|&pid| alive(pid))
            .collect()
    };
    for i in 0..40u64 {
        for extra in [&[][..], &["--init"]] {
            let mut nscell = std::process::Command::new(common::nscell_bin())
                .arg("--die-with-parent")
                .args(extra)
                .args(["--no-pty", "--", "/bin/sleep", &marker])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_micros((i * 137) % 3000));
            nscell.kill().unwrap();
            nscell.wait().unwrap();
        }
    }
    let start = Instant::now();
    while !survivors().is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left = survivors();
    for &pid in &left {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::KILL,
        );
    }
    assert!(left.is_empty(), "sandboxes outlived their killed nscell: {left:?}");
}

#[test]
fn ctrl_z_under_init_never_wedges_the_sandbox() {
    skip_without_tmux!();
    let nscell = common::nscell_bin();
    let tmux = Tmux::start("PS1='host$ ' /bin/bash --norc --noprofile", WIDE, 30).expect("tmux");
    tmux.expect_prompt("host$");
    // On its pty, the init and the program form an orphaned process group (the init's parent is
    // in another session), so the kernel discards Ctrl-Z's SIGTSTP: a later Ctrl-C still ends
    // the program.
    tmux.type_line(&format!("{nscell} --init -- /bin/sleep 100; echo rc1=$?"));
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-z"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-c"]);
    tmux.expect("rc1=130");
    tmux.expect_prompt("host$");
    // Sharing the host's terminal, Ctrl-Z stops nscell and the program together, as a job of
    // the host's shell, and `fg` resumes them.
    tmux.type_line(&format!("{nscell} --init --no-pty --share-terminal -- /bin/sleep 100"));
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-z"]);
    tmux.expect("Stopped");
    tmux.type_line("fg; echo rc2=$?");
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["C-c"]);
    tmux.expect("rc2=130");
}

#[test]
fn the_program_cannot_reach_the_callers_memory_through_the_init() {
    // With an init, PID 1 is ours and was cloned from the caller: through /proc/1/mem the
    // program could read and write the caller's memory if PID 1 shared it or were dumpable.
    let script = "(: </proc/1/mem) 2>/dev/null && echo mem-open || echo mem-denied; \
                  head -c1 /proc/1/maps >/dev/null 2>&1 && echo maps-open || echo maps-denied";
    let out = Sandbox::new("/bin/sh").args(["-c", script]).init(true).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mem-denied\nmaps-denied\n");
    // Control: without an init, PID 1 is the program itself, which may open its own memory.
    let out = Sandbox::new("/bin/sh").args(["-c", script]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "mem-open\nmaps-open\n");
}

#[test]
fn the_init_shows_nothing_of_the_callers_command_line() {
    // The init is a copy of the caller: without care, /proc/1/cmdline inside is the caller's
    // whole command line (this test binary's path and arguments) and /proc/1/comm its name.
    let script = "cat /proc/1/cmdline; echo; cat /proc/1/comm; \
                  (cat /proc/1/environ >/dev/null) 2>/dev/null && echo environ-open || echo environ-denied";
    let out = Sandbox::new("/bin/sh").args(["-c", script]).init(true).output().unwrap();
    let text = stdout(&out);
    let mut lines = text.lines();
    let cmdline = lines.next().unwrap().trim_end_matches('\0');
    assert_eq!(cmdline, "nscell-init", "{text:?}");
    assert_eq!(lines.next(), Some("nscell-init"), "{text:?}");
    assert_eq!(lines.next(), Some("environ-denied"), "{text:?}");
    // (A test filter such as "init" may be part of the init's own name.)
    let rest = text.replace("nscell-init", "");
    let own = std::fs::read("/proc/self/cmdline").unwrap();
    for arg in own.split(|&b| b == 0).filter(|a| a.len() > 2) {
        let arg = String::from_utf8_lossy(arg);
        assert!(!rest.contains(&*arg), "the caller's argument {arg:?} shows inside: {text:?}");
    }
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert!(!rest.contains(comm.trim()), "the caller's name {comm:?} shows inside: {text:?}");

    // Through the binary: a distinctive argument of nscell's own is nowhere in PID 1.
    let mark = format!("distinctive-{}", std::process::id());
    let out = std::process::Command::new(common::nscell_bin())
        .args(["--init", "--no-pty", "--setenv", "MARK", &mark, "--"])
        .args(["/bin/sh", "-c", "cat /proc/1/cmdline /proc/1/comm; cat /proc/1/environ"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("nscell-init\0nscell-init\n"), "{text:?}");
    assert!(!text.contains(&mark) && !text.contains(common::nscell_bin()), "{text:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"), "{out:?}");
}

/// Runs `nscell ARGS` with `input` on a pipe (`None`: stdin is /dev/null) and returns its status,
/// its output and how long it took; fails the test when it has not ended after 20 s.
fn nscell_bounded(
    args: &[&str],
    input: Option<&[u8]>,
) -> (std::process::ExitStatus, String, Duration) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let start = Instant::now();
    let mut nscell = std::process::Command::new(common::nscell_bin())
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = input {
        // Written, then closed: the end of the input.
        nscell.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let mut stdout = nscell.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        String::from_utf8_lossy(&out).replace('\r', "")
    });
    loop {
        if let Some(status) = nscell.try_wait().unwrap() {
            return (status, reader.join().unwrap(), start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(20) {
            nscell.kill().unwrap();
            let _ = nscell.wait();
            panic!(
                "nscell {args:?} never ended after the end of its input: {}",
                reader.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn pty_input_end_reaches_a_program_in_canonical_mode_at_every_read() {
    // Each read after the end gets end-of-file, as when a person presses Ctrl-D each time.
    let script = "cat; cat; echo done";
    for input in [Some(&b"line\n"[..]), Some(b"no newline"), None] {
        let (status, out, _) = nscell_bounded(&["--pty", "--", "/bin/sh", "-c", script], input);
        assert!(status.success(), "{input:?}: {status}: {out:?}");
        assert!(out.ends_with("done\n"), "{input:?}: {out:?}");
    }
    // The default command, bash, interactive on its pty: its line editor takes Ctrl-D as exit.
    let (status, out, _) = nscell_bounded(&["--pty"], None);
    assert!(status.success(), "{status}: {out:?}");
    assert!(out.ends_with("exit\n"), "{out:?}");
    let (status, out, _) = nscell_bounded(&["--pty"], Some(b"echo got-$((6*7))\n"));
    assert!(status.success() && out.contains("got-42\n"), "{status}: {out:?}");
}

#[test]
fn pty_input_end_hangs_up_a_program_in_non_canonical_mode() {
    // A terminal has no end of file in non-canonical mode: once the program has read all and
    // stays silent, the relay hangs up (SIGHUP, then it closes the terminal).
    let script = "stty -icanon; read x";
    for init in [false, true] {
        for input in [None, Some(&b"abc"[..])] {
            let mut args = vec!["--pty"];
            if init {
                args.push("--init");
            }
            args.extend(["--", "/bin/sh", "-c", script]);
            let (status, out, took) = nscell_bounded(&args, input);
            assert!(took >= nscell::pty::HANG_UP_AFTER, "{args:?}: ended early: {status} {out:?}");
            if init {
                // The init passes the SIGHUP on; sh has no handler for it.
                assert_eq!(status.code(), Some(128 + libc::SIGHUP), "{args:?}: {out:?}");
            } else {
                // PID 1 ignores SIGHUP without a handler: the terminal is closed, read sees EOF.
                assert_eq!(status.code(), Some(1), "{args:?}: {out:?}");
            }
        }
    }
}

#[test]
fn kill_0_inside_a_sandbox_sharing_the_terminal_stays_inside() {
    use std::os::unix::process::CommandExt;
    // Process groups span PID namespaces: in the caller's group, `kill -USR1 0` inside would
    // signal the caller's shell and every process of its job. A wrapping shell, in a group of
    // its own (never this test's), records whether it got the signal.
    let nscell = common::nscell_bin();
    for extra in ["", "--init"] {
        let script = format!(
            "trap 'echo wrapper-got-usr1' USR1; \
             {nscell} --share-terminal {extra} -- /bin/sh -c 'kill -USR1 0; sleep 0.2; echo inside-done'; \
             echo nscell-rc=$?"
        );
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", &script])
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("wrapper-got-usr1"), "{extra}: the caller's group got it: {text}");
        if extra.is_empty() {
            // The program is PID 1 (no handler: it ignores the signal) and goes on.
            assert!(text.contains("inside-done\nnscell-rc=0\n"), "{text}");
        } else {
            // The program is PID 2, in the sandbox's group: the signal ends it.
            assert!(text.contains(&format!("nscell-rc={}\n", 128 + libc::SIGUSR1)), "{text}");
        }
    }
}

/// The fields after `tag` on the screen line that starts with it (`tag a b c` → [a, b, c]).
/// Waits up to 10 s for the line.
fn screen_fields(tmux: &Tmux, tag: &str) -> Vec<String> {
    let start = Instant::now();
    loop {
        let screen = tmux.screen();
        if let Some(line) = screen.lines().rev().find(|l| l.starts_with(&format!("{tag} "))) {
            return line.split_whitespace().skip(1).map(String::from).collect();
        }
        if start.elapsed() > Duration::from_secs(10) {
            panic!("the terminal never showed a line {tag:?}; it shows:\n{screen}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sharing_the_terminal_the_sandbox_is_a_foreground_job_of_its_own() {
    skip_without_tmux!();
    let nscell = common::nscell_bin();
    let tmux = Tmux::start("PS1='host$ ' /bin/bash --norc --noprofile", WIDE, 30).expect("tmux");
    tmux.expect_prompt("host$");
    tmux.type_line("echo shell $(ps -o pgid=,tpgid=,tty= -p $$)");
    let shell = screen_fields(&tmux, "shell");
    assert_eq!(shell.len(), 3, "{shell:?}");
    assert_eq!(shell[0], shell[1], "the shell has its terminal: {shell:?}");

    // Inside (PID 1 of its namespace): its own group, the terminal's foreground, the same
    // terminal (no pty of its own, also when none is asked for).
    for options in ["--share-terminal --no-pty", "--share-terminal"] {
        tmux.type_line(&format!(
            "{nscell} {options} -- /bin/sh -c 'echo inside $(ps -o pgid=,tpgid=,tty= -p $$)'"
        ));
        assert_eq!(screen_fields(&tmux, "inside"), ["1", "1", shell[2].as_str()], "{options}");
        tmux.expect_prompt("host$");
        tmux.type_line("clear");
        tmux.expect_prompt("host$");
    }

    // Nested in a sandbox that shares the terminal, the inner one sees its session led from an
    // ancestor PID namespace: it cannot name its caller's group to give the terminal back, so
    // it leaves the terminal alone and runs as a background job; writing works.
    tmux.type_line(&format!(
        "{nscell} --share-terminal -- {nscell} --share-terminal -- /bin/sh -c 'echo nested $(cut -d\\  -f6 /proc/self/stat)'"
    ));
    assert_eq!(screen_fields(&tmux, "nested"), ["0"]);
    tmux.expect_prompt("host$");

    // When it ends, the terminal is its caller's again: here a shell without job control,
    // which never takes the terminal back itself.
    tmux.type_line(&format!(
        "/bin/sh -c '{nscell} --share-terminal -- /bin/true; echo after $(ps -o tpgid=,pgid= -p $$)'"
    ));
    let after = screen_fields(&tmux, "after");
    assert!(after.len() == 2 && after[0] == after[1], "the caller lost its terminal: {after:?}");
    tmux.expect_prompt("host$");

    // Also when the spawn fails after the child took the terminal.
    tmux.type_line(&format!(
        "/bin/sh -c '{nscell} --share-terminal -- /nonexistent; echo failed $(ps -o tpgid=,pgid= -p $$)'"
    ));
    let failed = screen_fields(&tmux, "failed");
    assert!(failed.len() == 2 && failed[0] == failed[1], "after a failed spawn: {failed:?}");
    tmux.expect_prompt("host$");

    // Started in the background and then brought to the foreground (`fg` continues nscell),
    // it takes the terminal.
    tmux.type_line(&format!(
        "{nscell} --share-terminal -- /bin/sh -c 'sleep 1; echo fgjob $(ps -o pgid=,tpgid= -p $$)' &"
    ));
    std::thread::sleep(Duration::from_millis(300));
    tmux.type_line("fg");
    assert_eq!(screen_fields(&tmux, "fgjob"), ["1", "1"]);
    tmux.expect_prompt("host$");

    // In the background it leaves the terminal to the shell, which goes on reading commands.
    tmux.type_line(&format!("{nscell} --share-terminal -- /bin/sleep 2 &"));
    std::thread::sleep(Duration::from_millis(500));
    tmux.type_line("echo bg $(ps -o tpgid=,pgid= -p $$)");
    let bg = screen_fields(&tmux, "bg");
    assert!(bg.len() == 2 && bg[0] == bg[1], "a background sandbox took the terminal: {bg:?}");
    tmux.type_line("wait; echo waited=$?");
    tmux.expect("waited=0");

    // Ctrl-Z stops the program (not PID 1 here, so it can stop): nscell stops with it, the
    // shell has its terminal back, and `fg` gives it to the sandbox again.
    tmux.type_line(&format!("{nscell} --share-terminal --unshare-user -- /bin/sleep 100"));
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-z"]);
    tmux.expect("Stopped");
    tmux.expect_prompt("host$");
    tmux.type_line("echo stopped $(ps -o tpgid=,pgid= -p $$)");
    let stopped = screen_fields(&tmux, "stopped");
    assert!(stopped.len() == 2 && stopped[0] == stopped[1], "{stopped:?}");
    tmux.type_line("fg; echo rc=$?");
    std::thread::sleep(Duration::from_millis(500));
    tmux.send(&["C-c"]);
    tmux.expect("rc=130");
}

#[test]
fn a_failed_wait_is_a_process_error_not_a_setup_step() {
    let mut child = Sandbox::new("true").namespaces(Namespaces::empty()).spawn().unwrap();
    // Reaped behind the Child's back: its waitid on the pidfd finds no child (ECHILD).
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()).unwrap();
    let e = child.wait().unwrap_err();
    assert!(
        matches!(e, Error::Process { operation: nscell::Operation::Wait, .. }),
        "not a Process error: {e:?}"
    );
    assert_eq!(e.step(), None, "{e}");
    assert_eq!(e.raw_os_error(), Some(libc::ECHILD), "{e}");
    assert!(e.to_string().starts_with("cannot wait for the sandbox: "), "{e}");
}

// ---- lock files, held fds, working-directory candidates ----

/// Whether a write lock on `path` is refused now (another process holds a lock on it).
fn write_lock_refused(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as i16;
    // SAFETY: F_SETLK with a valid struct flock.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &lock) };
    r != 0
}

#[test]
fn lock_files_are_held_while_the_sandbox_runs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::TempDir::new("lockfile");
    let path = dir.join("lock");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    // With the sandbox's own PID namespace (the init is PID 1), and without one (it is not).
    for namespaces in [Namespaces::DEFAULT, Namespaces::USER | Namespaces::MOUNT] {
        assert!(!write_lock_refused(&path));
        let mut child = Sandbox::new("sleep")
            .arg("100")
            .namespaces(namespaces)
            .lock_file(&path)
            .spawn()
            .unwrap();
        assert!(write_lock_refused(&path), "{namespaces:?}: the lock is not held");
        let program = descendants(child.id());
        child.kill().unwrap();
        child.wait().unwrap();
        wait_until("the lock is released", Duration::from_secs(2), || !write_lock_refused(&path));
        for p in program {
            wait_until("the program is gone", Duration::from_secs(2), || !alive(p));
        }
    }
    // A file that is not there fails the spawn, naming it.
    let e = Sandbox::new("true").lock_file(dir.join("missing")).output().unwrap_err();
    assert_eq!(e.step(), Some(nscell::Step::LockFile), "{e}");
    assert_eq!(e.path(), Some(dir.join("missing").as_path()), "{e}");
}

#[test]
fn a_held_fd_closes_when_the_sandbox_ends_and_the_program_has_none() {
    use std::io::Read;
    let (mut r, w) = std::io::pipe().unwrap();
    let child = Sandbox::new("/bin/sh")
        .args(["-c", "ls /proc/self/fd | wc -l; sleep 0.3"])
        .hold_fd(w)
        .stdout(nscell::Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    // 0, 1, 2 and ls's own.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4");
    let mut buf = Vec::new();
    // EOF: no copy is left, neither in the sandbox nor in the Sandbox.
    assert_eq!(r.read_to_end(&mut buf).unwrap(), 0);
}

#[test]
fn the_first_working_directory_that_exists_is_entered_and_named_in_pwd() {
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "pwd; echo $PWD"])
        .current_dir_candidates(["/nonexistent", "/etc", "/"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "/etc\n/etc\n");
    let e = Sandbox::new("true")
        .current_dir_candidates(["/nonexistent", "/nonexistent2"])
        .output()
        .unwrap_err();
    assert_eq!(e.step(), Some(nscell::Step::Chdir), "{e}");
    assert_eq!(e.path(), Some(Path::new("/nonexistent2")), "{e}");
}

/// A FIFO in a fresh directory, opened as `start_gate` wants it (`O_RDONLY | O_NONBLOCK`).
fn gate_fifo(dir: &common::TempDir) -> (std::path::PathBuf, std::fs::File) {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.path().join("exec.fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &path, rustix::fs::Mode::from_raw_mode(0o600)).unwrap();
    let reader =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
    (path, reader)
}

/// Opens the FIFO's write end without blocking: fails with ENXIO when nothing waits on it.
fn open_writer(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[test]
fn a_gated_sandbox_is_set_up_at_spawn_and_runs_its_program_only_once_started() {
    use std::io::{Read, Write};
    let dir = common::TempDir::new("gate");
    let (path, reader) = gate_fifo(&dir);
    let mut sb = common::minimal("echo started; hostname");
    sb.namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS)
        .hostname("gated")
        .stdout(nscell::Stdio::piped())
        .start_gate(reader);
    let mut child = sb.spawn().expect("spawn");
    let pid = child.id();
    // Set up (its hostname is set: it is in its UTS namespace already), waiting, not run.
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(pid), "the gated sandbox waits");
    assert_eq!(child.try_wait().unwrap(), None);
    // Non-dumpable, only root may look at its namespaces.
    if common::is_root() {
        let uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
        assert_ne!(uts, std::fs::read_link("/proc/self/ns/uts").unwrap(), "namespaces exist");
    }
    // Non-dumpable while it waits: its private /proc files belong to root, whoever spawned it.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l.starts_with("Uid:")), "{status}");
    let meta = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0, "non-dumpable");
    let mut writer = open_writer(&path).expect("a reader waits at the gate");
    writer.write_all(b"1").unwrap();
    drop(writer);
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out, "started\ngated\n");
    // The gate is gone with the program: nothing reads the FIFO any more.
    assert_eq!(open_writer(&path).unwrap_err().raw_os_error(), Some(libc::ENXIO));
}

#[test]
fn a_gate_closed_without_a_byte_ends_the_sandbox_without_running_the_program() {
    let dir = common::TempDir::new("gate-eof");
    let (path, reader) = gate_fifo(&dir);
    let marker = dir.path().join("ran");
    let mut sb = common::minimal(&format!("touch {}", marker.display()));
    sb.bind(dir.path(), dir.path())
        .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
        .start_gate(reader);
    let mut child = sb.spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(child.try_wait().unwrap(), None, "it waits for a writer");
    drop(open_writer(&path).unwrap());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(!marker.exists(), "the program never ran");
}

#[test]
fn a_gate_refuses_an_init_and_a_detached_sandbox_outlives_its_handle() {
    let dir = common::TempDir::new("gate-init");
    let (path, reader) = gate_fifo(&dir);
    let mut sb = common::minimal("true");
    sb.namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
        .init(true)
        .start_gate(reader);
    let e = sb.spawn().expect_err("an init with a gate is refused");
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    assert!(e.to_string().contains("start_gate"), "{e}");

    let (_, reader) = gate_fifo(&common::TempDir::new("gate-detach"));
    let mut sb = common::minimal("exit 7");
    sb.namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT).start_gate(reader);
    let detached = sb.spawn().expect("spawn").detach();
    let pid = detached.pid;
    std::thread::sleep(Duration::from_millis(50));
    assert!(alive(pid), "a detached handle kills nothing");
    drop(path);
    // Still the caller's child: it is the caller's to kill and reap.
    let fd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid as i32).unwrap(),
        rustix::process::PidfdFlags::empty(),
    )
    .unwrap();
    rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL).unwrap();
    let status = rustix::process::waitid(
        rustix::process::WaitId::PidFd(std::os::fd::AsFd::as_fd(&fd)),
        rustix::process::WaitIdOptions::EXITED,
    )
    .unwrap()
    .unwrap();
    assert_eq!(status.terminating_signal(), Some(libc::SIGKILL));
}

#[test]
fn a_gated_sandbox_that_cannot_report_its_failure_is_still_a_failed_spawn() {
    // Without no_new_privs the filter goes in before the capabilities (it needs CAP_SYS_ADMIN
    // then): one that refuses sendto leaves the child no way to say it reached its gate.
    let dir = common::TempDir::new("gate-mute");
    let (_, reader) = gate_fifo(&dir);
    let mut filter = nscell::seccomp::Filter::new(nscell::seccomp::Action::Allow);
    filter.rule(nscell::seccomp::Rule::deny("sendto"));
    let mut sb = common::minimal("true");
    sb.namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
        .no_new_privs(false)
        .seccomp_program(&filter.compile().unwrap())
        .start_gate(reader);
    let e = sb.spawn().expect_err("no word from the child is no success");
    assert_eq!(e.step(), Some(nscell::Step::StartGate), "{e}");
    assert!(e.to_string().contains("no_new_privs"), "{e}");
    assert!(common::lasting_zombie_children().is_empty());
}
