//! The `nscell` binary as a user runs it: the seed's behaviour, every option, the exit statuses,
//! `--json-status-fd`, signal forwarding, help and errors. Runs as root and as an unprivileged
//! user (uid 65534, no HOME, read-only cwd).

mod common;

use common::nscell_bin;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

fn nscell<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    output(Command::new(nscell_bin()).args(args))
}

/// Like `Command::output` (stdin is /dev/null), but fails the test instead of hanging when the
/// command does not end within a minute.
fn output(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nscell");
    let stdout = common::read_on_a_thread(child.stdout.take().unwrap());
    let stderr = common::read_on_a_thread(child.stderr.take().unwrap());
    let status = wait_timeout(&mut child, 60);
    Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs nscell, asserts it succeeded, returns its stdout.
fn stdout_of(args: &[&str]) -> String {
    let out = nscell(args);
    assert!(out.status.success(), "nscell {args:?}: {}; stderr: {}", out.status, text(&out.stderr));
    text(&out.stdout)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string()
}

/// The inode of this process's namespace `name` (as under /proc/PID/ns/).
fn own_ns(name: &str) -> u64 {
    std::fs::metadata(format!("/proc/self/ns/{name}")).unwrap().ino()
}

/// Waits for `child` at most `secs` seconds; kills it and fails the test after that.
fn wait_timeout(child: &mut Child, secs: u64) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nscell did not end within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number after `"key": ` in a JSON line, if present.
fn json_field(line: &str, key: &str) -> Option<u64> {
    let start = line.find(&format!("\"{key}\": "))? + key.len() + 4;
    let digits: String = line[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

// --- the seed's behaviour ---------------------------------------------------------------------

#[test]
fn whoami_is_root_inside() {
    assert_eq!(stdout_of(&["whoami"]), "root\n");
}

#[test]
fn id_is_zero_inside() {
    assert_eq!(stdout_of(&["id", "-u"]), "0\n");
    assert_eq!(stdout_of(&["id", "-g"]), "0\n");
}

#[test]
fn the_program_is_pid_1() {
    assert_eq!(stdout_of(&["sh", "-c", "echo $$"]), "1\n");
}

#[test]
fn ps_lists_only_the_sandboxs_processes() {
    // `; true` keeps sh from exec'ing ps, so two processes exist: sh (PID 1) and ps.
    let out = stdout_of(&["sh", "-c", "ps -e; true"]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().contains("PID"), "{out}");
    let procs: Vec<(u32, String)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[f.len() - 1].to_string())
        })
        .collect();
    assert_eq!(procs.len(), 2, "{out}");
    assert_eq!(procs[0], (1, "sh".to_string()), "{out}");
    assert_eq!(procs[1].1, "ps", "{out}");
    // The host has more: this test itself, at least, with a pid that is not 1.
    assert_ne!(std::process::id(), 1);
}

#[test]
fn hostname_changes_inside_only() {
    let before = host_hostname();
    assert_ne!(before, "x", "the host is named x: this test could not tell the difference");
    assert_eq!(stdout_of(&["sh", "-c", "hostname x; hostname"]), "x\n");
    assert_eq!(host_hostname(), before);
}

#[test]
fn without_a_command_it_runs_bash() {
    let mut child =
        Command::new(nscell_bin()).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"echo \"$0 $$ $(id -u)\"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", out.status);
    assert_eq!(text(&out.stdout), "/bin/bash 1 0\n");
}

// --- exit statuses ----------------------------------------------------------------------------

#[test]
fn exit_status_is_the_programs() {
    assert_eq!(nscell(["sh", "-c", "exit 42"]).status.code(), Some(42));
    assert_eq!(nscell(["true"]).status.code(), Some(0));
    assert_eq!(nscell(["false"]).status.code(), Some(1));
}

/// Started with SIGCHLD ignored (a disposition that survives execve, and with which the kernel
/// reaps children unasked), nscell still learns the program's status, an init still hears of
/// its program's end, and the program starts with SIGCHLD at its default (as bubblewrap 0.11).
#[test]
fn an_ignored_sigchld_is_not_passed_on_and_loses_no_status() {
    let script = "grep SigIgn /proc/self/status; exit 3";
    for args in [&["--"][..], &["--init", "--"][..]] {
        let mut cmd = Command::new(nscell_bin());
        cmd.args(args).args(["sh", "-c", script]);
        // SAFETY (pre_exec): signal() only, async-signal-safe.
        #[allow(unsafe_code)]
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                match libc::signal(libc::SIGCHLD, libc::SIG_IGN) {
                    libc::SIG_ERR => Err(std::io::Error::last_os_error()),
                    _ => Ok(()),
                }
            });
        }
        let out = output(&mut cmd);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out.stderr));
        let ignored = text(&out.stdout);
        let mask = ignored.trim().strip_prefix("SigIgn:").map(str::trim).unwrap_or_default();
        let mask = u64::from_str_radix(mask, 16).unwrap();
        assert_eq!(mask & 1 << (libc::SIGCHLD - 1), 0, "{args:?}: {ignored}");
    }
}

#[test]
fn death_by_signal_is_128_plus_the_signal() {
    // Without a PID namespace the shell is not PID 1 and dies of its own SIGTERM.
    let out = nscell(["--unshare-user", "--", "sh", "-c", "kill -TERM $$; echo survived"]);
    assert_eq!(out.status.code(), Some(128 + 15), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let out = nscell(["--unshare-user", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(out.status.code(), Some(128 + 9));
}

#[test]
fn pid_1_ignores_signals_it_has_no_handler_for() {
    // The kernel rule --help warns about: as PID 1 the same shell survives, even SIGKILL
    // sent from inside.
    let out = nscell(["sh", "-c", "kill -TERM $$; kill -KILL $$; echo survived"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "survived\n");
}

#[test]
fn program_not_found_is_127() {
    let out = nscell(["/nonexistent/program"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        text(&out.stderr),
        "nscell: cannot execute /nonexistent/program: No such file or directory (os error 2)\n"
    );
    // Looked up in PATH, as a shell does. (A PATH with a directory this user cannot search
    // makes the library report EACCES, as execvp does; this PATH has none.)
    let out = output(
        Command::new(nscell_bin()).arg("no-such-program-nscell-test").env("PATH", "/usr/bin:/bin"),
    );
    assert_eq!(out.status.code(), Some(127));
    assert!(text(&out.stderr).contains("no-such-program-nscell-test"), "{}", text(&out.stderr));
}

#[test]
fn program_not_executable_is_126() {
    // /etc/passwd has no execute bit at all, which stops root too.
    for program in ["/etc/passwd", "/"] {
        let out = nscell([program]);
        assert_eq!(out.status.code(), Some(126), "{program}");
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "nscell: cannot execute {program}: Permission denied (os error 13) — "
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn sandbox_setup_failure_is_125_and_names_step_errno_and_hint() {
    let out = nscell(["--chdir", "/nonexistent-dir", "--", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        text(&out.stderr),
        "nscell: cannot change directory to /nonexistent-dir: No such file or directory \
         (os error 2) — the directory does not exist in the sandbox's view of the filesystem\n"
    );
}

#[test]
fn values_that_cannot_work_exit_2_with_one_line_naming_the_option() {
    // Each is wrong on the command line itself: a usage error (2), never a failed setup (125).
    let long = "h".repeat(65);
    for (args, names) in [
        (&["--hostname", &long, "true"][..], "--hostname: the name is 65 bytes"),
        (&["--map-users", "0:0:1", "--map-users", "0:5:1", "true"], "\"0 0 1\" and \"0 5 1\""),
        (&["--uid", "4294967295", "true"], "\"4294967295 "),
        (&["--keep-fd", "97", "true"], "--keep-fd 97: Bad file descriptor"),
        (&["--tmpfs", "/a/../b", "true"], "--tmpfs: the destination \"/a/../b\""),
        (&["--bind", "/tmp", "/x/..", "true"], "--bind: the destination \"/x/..\""),
        (&["--rlimit", "NOFILE=10:5", "true"], "--rlimit: \"NOFILE=10:5\": the soft limit 10"),
        (&["--unshare-user", "--init", "true"], "--init needs a PID namespace"),
        (&["--unshare-user", "--hostname", "x", "true"], "--hostname needs a UTS namespace"),
        (&[""], "the command is an empty string"),
        (&["--", ""], "the command is an empty string"),
        (&["--size", "0", "--tmpfs", "/t", "true"], "--size: 0 is not a size limit"),
        (&["--rootfs", "/etc/passwd", "true"], "the new root /etc/passwd is not a directory"),
    ] {
        let out = nscell(args);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("nscell: ") && err.contains(names), "{args:?}: {err}");
    }
    // `--file 3 /t/x 3</etc`: the fd is the directory, not the destination.
    let out = output(Command::new("sh").args([
        "-c",
        "exec \"$0\" --tmpfs /t --file 3 /t/x -- true 3</etc",
        nscell_bin(),
    ]));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(
        err,
        "nscell: --file 3: fd 3 is a directory (--file reads a file, a pipe or a socket)\n"
    );
    // `--file 1`: stdout is a pipe's write end.
    let out = nscell(["--tmpfs", "/t", "--file", "1", "/t/x", "--", "true"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("nscell: --file 1: fd 1 is not open for reading"), "{err}");
}

#[test]
fn a_timeout_too_long_for_the_clock_is_no_deadline() {
    // 1e19 s is a valid Duration but no Instant: it must mean "no deadline", never a panic.
    for t in ["1e19", "1.8e19", "9223372036854775807.5"] {
        let out = nscell(["--timeout", t, "--", "sh", "-c", "exit 42"]);
        assert_eq!(out.status.code(), Some(42), "--timeout {t}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "--timeout {t}");
    }
    // Beyond what a Duration holds: a usage error.
    let out = nscell(["--timeout", "1e20", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

// --- options ----------------------------------------------------------------------------------

#[test]
fn options_after_the_command_or_double_dash_are_passed_through() {
    assert_eq!(
        stdout_of(&["echo", "--hostname", "-V", "--", "--help"]),
        "--hostname -V -- --help\n"
    );
    assert_eq!(stdout_of(&["--", "echo", "--unshare-net", "--"]), "--unshare-net --\n");
    assert_eq!(stdout_of(&["--hostname", "h", "--", "sh", "-c", "hostname"]), "h\n");
    // Not UTF-8: passed on byte for byte.
    let arg = OsStr::from_bytes(b"a\xffb");
    let out = nscell([OsStr::new("printf"), OsStr::new("%s"), arg]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"a\xffb");
}

/// Which namespaces of the program differ from this process's, for the given options.
fn new_namespaces(options: &[&str]) -> Vec<&'static str> {
    const NAMES: [&str; 8] = ["user", "pid", "mnt", "uts", "ipc", "net", "cgroup", "time"];
    let mut args: Vec<&str> = options.to_vec();
    args.extend(["--", "stat", "-L", "-c", "%i"]);
    let paths: Vec<String> = NAMES.iter().map(|n| format!("/proc/self/ns/{n}")).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = stdout_of(&args);
    let inodes: Vec<u64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(inodes.len(), NAMES.len(), "{out}");
    NAMES.iter().zip(inodes).filter(|(n, i)| own_ns(n) != *i).map(|(n, _)| *n).collect()
}

#[test]
fn each_unshare_option_creates_exactly_its_namespace() {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("SKIPPED: this kernel has no time namespaces (/proc/self/ns/time)");
        return;
    }
    let support = nscell::Sandbox::check();
    // Unprivileged, a user namespace comes with every other one.
    let user = if is_root() { vec![] } else { vec!["user"] };
    for (option, name) in [
        ("--unshare-user", "user"),
        ("--unshare-pid", "pid"),
        ("--unshare-mount", "mnt"),
        ("--unshare-uts", "uts"),
        ("--unshare-ipc", "ipc"),
        ("--unshare-net", "net"),
        ("--unshare-cgroup", "cgroup"),
        ("--unshare-time", "time"),
    ] {
        let ns = support.namespaces.iter().find(|(n, _)| n.proc_name() == Some(name)).unwrap();
        if let Err(e) = &ns.1 {
            eprintln!("SKIPPED {option}: the kernel refuses it here: {e}");
            continue;
        }
        let mut expected = user.clone();
        if name != "user" {
            expected.push(name);
        } else {
            expected = vec!["user"];
        }
        assert_eq!(new_namespaces(&[option]), expected, "{option}");
    }
    // The default set, and several options adding up.
    assert_eq!(new_namespaces(&[]), ["user", "pid", "mnt", "uts", "ipc"]);
    let mut expected = user.clone();
    expected.extend(["uts", "net"]);
    assert_eq!(new_namespaces(&["--unshare-net", "--unshare-uts"]), expected);
    if support.namespaces.iter().all(|(_, r)| r.is_ok()) {
        assert_eq!(
            new_namespaces(&["--unshare-all"]),
            ["user", "pid", "mnt", "uts", "ipc", "net", "cgroup", "time"]
        );
    }
}

#[test]
fn unshare_net_has_only_loopback_up() {
    let out = stdout_of(&["--unshare-net", "--", "cat", "/proc/net/dev"]);
    let ifaces: Vec<&str> =
        out.lines().skip(2).map(|l| l.split(':').next().unwrap().trim()).collect();
    assert_eq!(ifaces, ["lo"], "{out}");
}

#[test]
fn uid_and_gid_choose_the_ids_inside() {
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let out = stdout_of(&[
        "--uid",
        "1000",
        "--gid",
        "1001",
        "--",
        "sh",
        "-c",
        "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let lines: Vec<String> =
        out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(
        lines,
        ["1000".to_string(), "1001".into(), format!("1000 {euid} 1"), format!("1001 {egid} 1")]
    );
    // Only --uid: the gid stays the default, 0.
    assert_eq!(stdout_of(&["--uid", "5", "--", "sh", "-c", "id -u; id -g"]), "5\n0\n");
}

#[test]
fn map_users_and_map_groups_write_ranges() {
    let support = nscell::Sandbox::check();
    let (euid, egid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    // Root may map any ids; anyone else only its own and its /etc/subuid, /etc/subgid ranges.
    let (uids, gids) = if is_root() {
        ((100000, 1000), (200000, 1000))
    } else {
        let first = |r: &[(u32, u32)]| r.first().copied().unwrap_or((100000, 1000));
        (first(&support.subuid), first(&support.subgid))
    };
    let (ucount, gcount) = (uids.1.min(1000), gids.1.min(10) / 2);
    let uid_range = format!("1:{}:{ucount}", uids.0);
    let gid_range_1 = format!("1:{}:{gcount}", gids.0);
    let gid_range_2 = format!("50:{}:{gcount}", gids.0 + gcount);
    let args = [
        "--uid",
        "0",
        "--gid",
        "0",
        "--map-users",
        &uid_range,
        "--map-groups",
        &gid_range_1,
        "--map-groups",
        &gid_range_2,
        "--",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map /proc/self/gid_map",
    ];
    if !support.multi_range_maps() {
        // The error a user without subordinate ids gets: setup failed, with the way out.
        let out = nscell(args);
        assert_eq!(out.status.code(), Some(125), "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.starts_with("nscell: ") && err.contains("/etc/subuid"), "{err}");
        eprintln!(
            "SKIPPED the ranges themselves: uid {euid} is not root and has no /etc/subuid and \
             /etc/subgid ranges, or no newuidmap/newgidmap: {support}"
        );
        return;
    }
    let out = stdout_of(&args);
    let lines: Vec<String> =
        out.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(
        lines,
        [
            "0".to_string(),
            format!("0 {euid} 1"),
            uid_range.replace(':', " "),
            format!("0 {egid} 1"),
            gid_range_1.replace(':', " "),
            gid_range_2.replace(':', " "),
        ]
    );
}

#[test]
fn hostname_and_domainname() {
    let out = stdout_of(&[
        "--hostname",
        "inner",
        "--domainname",
        "dom.example",
        "--",
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname",
    ]);
    assert_eq!(out, "inner\ndom.example\n");
}

#[test]
fn chdir_sets_the_working_directory() {
    assert_eq!(stdout_of(&["--chdir", "/usr", "--", "pwd"]), "/usr\n");
    assert_eq!(stdout_of(&["--chdir", "/", "--", "pwd"]), "/\n");
}

#[test]
fn setenv_unsetenv_and_clearenv() {
    let run = |args: &[&str]| {
        let out = output(
            Command::new(nscell_bin()).args(args).env("NSCELL_TEST_OUTSIDE", "from outside"),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let script = "echo \"${NSCELL_TEST_OUTSIDE-unset}|${A-unset}|${B-unset}\"";
    assert_eq!(run(&["sh", "-c", script]), "from outside|unset|unset\n");
    assert_eq!(
        run(&["--setenv", "A", "1", "--setenv", "B", "two words", "--", "sh", "-c", script]),
        "from outside|1|two words\n"
    );
    assert_eq!(
        run(&["--unsetenv", "NSCELL_TEST_OUTSIDE", "sh", "-c", script]),
        "unset|unset|unset\n"
    );
    assert_eq!(run(&["--clearenv", "--setenv", "A", "1", "/usr/bin/env"]), "A=1\n");
}

#[test]
fn no_proc_keeps_the_hosts_proc() {
    // With a fresh /proc, the program sees itself as 1 there; with the host's, as its host pid.
    assert_eq!(stdout_of(&["sh", "-c", "exec readlink /proc/self"]), "1\n");
    let out = stdout_of(&["--no-proc", "sh", "-c", "echo $$; exec readlink /proc/self"]);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"));
    let host_pid: u32 = lines.next().unwrap().parse().unwrap();
    assert_ne!(host_pid, 1, "{out}");
}

// --- --json-status-fd -------------------------------------------------------------------------

#[test]
fn json_status_fd_reports_pid_namespaces_and_exit_code() {
    // The status goes to stdout (fd 1); the program reports its own view on stderr and waits
    // for a line on stdin, so the first record is read while it certainly runs.
    let mut child = Command::new(nscell_bin())
        .args([
            "--json-status-fd",
            "1",
            "--",
            "sh",
            "-c",
            "stat -L -c %i /proc/self/ns/user /proc/self/ns/pid /proc/self/ns/mnt >&2; read x; exit 7",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = wait_timeout(&mut child, 20);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(7), "stderr: {err}");

    assert!(first.starts_with("{\"child-pid\": ") && first.ends_with("}\n"), "{first}");
    let pid = json_field(&first, "child-pid").unwrap();
    assert!(pid > 1, "{first}");
    let inside: Vec<u64> = err.lines().map(|l| l.parse().unwrap()).collect();
    for (name, inode) in ["user", "pid", "mnt"].iter().zip(&inside) {
        let key = format!("{name}-namespace");
        assert_eq!(json_field(&first, &key), Some(*inode), "{key} in {first}");
        assert_ne!(own_ns(name), *inode, "{name} is not new");
    }
    for name in ["uts-namespace", "ipc-namespace"] {
        assert!(first.contains(name), "{first}");
    }
    // Namespaces that were not created are not listed.
    for name in ["net-namespace", "cgroup-namespace", "time-namespace"] {
        assert!(!first.contains(name), "{first}");
    }
    assert_eq!(rest, "{\"exit-code\": 7}\n");
}

#[test]
fn json_status_fd_on_another_fd() {
    // fd 3 is a pipe to our stdout; the program's own stdout goes to /dev/null. A signal death
    // is reported as nscell's exit status, 128+N.
    let out = output(Command::new("sh").args([
        "-c",
        "exec \"$0\" --json-status-fd 3 --unshare-user -- sh -c 'echo noise; kill -TERM $$' 3>&1 >/dev/null",
        nscell_bin(),
    ]));
    assert_eq!(out.status.code(), Some(143), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(json_field(lines[0], "child-pid").is_some(), "{stdout}");
    assert_eq!(lines[1], "{\"exit-code\": 143}");
}

#[test]
fn json_status_fd_that_is_not_open_is_a_usage_error() {
    let out = nscell(["--json-status-fd", "97", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "nscell: --json-status-fd 97: Bad file descriptor (os error 9)\n"
    );
}

// --- signals ----------------------------------------------------------------------------------

/// Starts nscell running `script`, waits for it to print "ready", sends `sig` to nscell, and
/// returns the exit status and the rest of the output.
fn signal_nscell(args: &[&str], sig: rustix::process::Signal) -> (ExitStatus, String) {
    let mut child = Command::new(nscell_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    // "\r\n" through a pty.
    assert_eq!(line.trim_end_matches(['\r', '\n']), "ready");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
    let status = wait_timeout(&mut child, 20);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    (status, rest)
}

#[test]
fn sigint_sigterm_and_sighup_reach_the_program() {
    use rustix::process::Signal;
    for (sig, name) in [(Signal::INT, "INT"), (Signal::TERM, "TERM"), (Signal::HUP, "HUP")] {
        // PID 1 with a handler for the signal: it gets it, from outside, through nscell.
        let script = format!(
            "trap 'echo got {name}; exit 7' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let (status, out) = signal_nscell(&["sh", "-c", &script], sig);
        assert_eq!(status.code(), Some(7), "SIG{name}: {out}");
        assert_eq!(out, format!("got {name}\n"));
    }
}

#[test]
fn a_forwarded_signal_without_handler_ends_a_program_that_is_not_pid_1() {
    use rustix::process::Signal;
    let (status, out) = signal_nscell(
        &["--unshare-user", "--", "sh", "-c", "echo ready; exec sleep 30"],
        Signal::TERM,
    );
    assert_eq!(status.code(), Some(128 + 15), "{out}");
}

// --- help, version, check, errors -------------------------------------------------------------

#[test]
fn help_is_the_reference_of_every_option() {
    for flag in ["--help", "-h"] {
        let out = nscell([flag]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stderr), "");
        let help = text(&out.stdout);
        assert!(help.starts_with("Usage: nscell [OPTIONS] [--] [COMMAND [ARG...]]\n"), "{help}");
        for option in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-mount",
            "--unshare-uts",
            "--unshare-ipc",
            "--unshare-net",
            "--unshare-cgroup",
            "--unshare-time",
            "--unshare-all",
            "--uid N",
            "--gid N",
            "--map-users IN:OUT:COUNT",
            "--map-groups IN:OUT:COUNT",
            "--hostname NAME",
            "--domainname NAME",
            "--chdir DIR",
            "--setenv VAR VALUE",
            "--unsetenv VAR",
            "--clearenv",
            "--no-proc",
            "--json-status-fd FD",
            "--check",
            "-h, --help",
            "-V, --version",
            "/bin/bash",
            "125",
            "126",
            "127",
            "128+N",
            "PID 1",
            "--init",
            "--keep-session-keyring",
        ] {
            assert!(help.contains(option), "--help does not mention {option:?}");
        }
    }
}

#[test]
fn version() {
    for flag in ["--version", "-V"] {
        let out = nscell([flag]);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(text(&out.stdout), format!("nscell {}\n", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn check_reports_what_works_here() {
    let out = nscell(["--check"]);
    let report = text(&out.stdout);
    let works = nscell::Sandbox::check().default_works();
    assert_eq!(out.status.code(), Some(if works { 0 } else { 1 }), "{report}");
    assert!(report.starts_with("kernel "), "{report}");
    for name in ["user", "pid", "mnt", "uts", "ipc", "net", "cgroup", "time", "newuidmap"] {
        assert!(report.contains(name), "{name} missing from {report}");
    }
    assert!(report.contains("default sandbox (user, pid, mount, uts, ipc, /proc): works"));
    assert!(report.contains("\ncgroups: "), "{report}");
    // The kernel's features, as this machine has them.
    let features = report.lines().find(|l| l.starts_with("kernel features: ")).expect(&report);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let cgroup2 = mountinfo.lines().find_map(|l| {
        let (mount, fs) = l.split_once(" - ")?;
        fs.starts_with("cgroup2 ").then(|| mount.split(' ').nth(4).unwrap().to_string())
    });
    match cgroup2 {
        Some(at) => assert!(features.contains(&format!("cgroup2 at {at},")), "{features}"),
        None => assert!(features.contains("cgroup2 not mounted"), "{features}"),
    }
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap();
    assert!(features.contains(&format!("last capability {},", last_cap.trim())), "{features}");
}

#[test]
fn bad_command_lines_get_one_line_and_exit_2() {
    for (args, message) in [
        (&["--bogus"][..], "nscell: invalid option '--bogus' (see nscell --help)\n"),
        (&["-z", "true"][..], "nscell: invalid option '-z' (see nscell --help)\n"),
        (
            &["--hostname"][..],
            "nscell: missing argument for option '--hostname' (see nscell --help)\n",
        ),
        (
            &["--setenv", "A"][..],
            "nscell: missing VALUE for option '--setenv' (--setenv VAR VALUE) (see nscell --help)\n",
        ),
        (
            &["--uid", "root", "true"][..],
            "nscell: --uid: \"root\" is not a number from 0 to 4294967295 (see nscell --help)\n",
        ),
        (
            &["--map-users", "0:1000", "true"][..],
            "nscell: --map-users: \"0:1000\" is not INSIDE:OUTSIDE:COUNT (three numbers) (see \
             nscell --help)\n",
        ),
        (
            &["--no-proc=1", "true"][..],
            "nscell: unexpected argument for option '--no-proc': \"1\" (see nscell --help)\n",
        ),
    ] {
        let out = nscell(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr), message, "{args:?}");
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
}

#[test]
fn an_fd_named_on_the_command_line_is_never_one_nscell_opened_itself() {
    // fd 3 is not open for nscell; its copy of stdin for --add-seccomp-fd 0 must not be taken
    // for the caller's fd 3.
    let out = output(Command::new("sh").args([
        "-c",
        "exec \"$0\" --add-seccomp-fd 0 --json-status-fd 3 -- true </dev/null",
        nscell_bin(),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "nscell: --json-status-fd 3: Bad file descriptor (os error 9)\n");
}

#[test]
fn an_fd_named_by_two_options_is_a_usage_error() {
    // Read by --file and passed on by --keep-fd: one fd, one owner.
    let out = output(Command::new("sh").args([
        "-c",
        "exec \"$0\" --tmpfs /t --file 5 /t/x --keep-fd 5 -- true 5</dev/null",
        nscell_bin(),
    ]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "nscell: --keep-fd 5: fd 5 is already given to --file (an fd goes to one option only) \
         (see nscell --help)\n"
    );
}

#[test]
fn signals_reach_a_program_that_has_a_pty() {
    // The pty's relay runs on nscell's main thread; the signals are passed on beside it.
    let script = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let (status, out) =
        signal_nscell(&["--pty", "--", "sh", "-c", script], rustix::process::Signal::TERM);
    assert_eq!(status.code(), Some(7), "{out:?}");
    assert_eq!(out, "got TERM\r\n");
}
