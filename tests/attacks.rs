//! Attacks on the sandbox, each the way a hostile program or a careless caller would try it:
//! undoing the flags of nscell's mounts with root's capabilities inside, unmounting the fresh
//! `/proc`, leading the working directory or the program path out of the new root through an
//! fd of the caller's, and setup steps that block. Runs as root and as an unprivileged user
//! (CI runs it both ways).

mod common;

use common::{TempDir, minimal, nscell_bin, stdout as ok};
use nscell::{Capabilities, Sandbox, Step, landlock};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The options of each mount at the given mount points, as the program sees them.
const SHOW_FLAGS: &str = "grep -E ' /(data|rw|usr) ' /proc/self/mountinfo | cut -d' ' -f5,6";

#[test]
fn read_only_and_nodev_are_locked_against_root_inside() {
    let ro = TempDir::new("lock-ro");
    let rw = TempDir::new("lock-rw");
    std::fs::write(ro.join("f"), "orig").unwrap();
    // Every attempt prints a word when it works; the kernel must refuse them all.
    let script = format!(
        "mount -o remount,rw,bind /data 2>/dev/null && echo REMOUNTED-RW
         echo hacked 2>/dev/null > /data/f && echo WROTE
         mount -o remount,bind,dev /rw 2>/dev/null && echo REMOUNTED-DEV
         mount -o remount,bind,suid /rw 2>/dev/null && echo REMOUNTED-SUID
         mount -o remount,rw,bind /usr 2>/dev/null && echo USR-RW
         umount /data 2>/dev/null && echo UNMOUNTED
         umount -l /rw 2>/dev/null && echo UNMOUNTED-LAZY
         mount --move /data /tmp 2>/dev/null && echo MOVED
         {SHOW_FLAGS}"
    );
    // The default capabilities, with the remount fallback too, and CAP_SYS_ADMIN alone (the
    // lock is skipped only when CAP_SYS_ADMIN is gone).
    for (fallback, only_sys_admin) in [(false, false), (true, false), (false, true)] {
        let mut sb = minimal(&script);
        sb.remount_fallback(fallback).ro_bind(ro.path(), "/data").bind(rw.path(), "/rw");
        if only_sys_admin {
            sb.drop_capabilities(Capabilities::ALL).add_capabilities(Capabilities::SYS_ADMIN);
        }
        let out = ok(&sb.output().unwrap());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "an attempt worked (mount_setattr fallback: {fallback}): {out}");
        for (line, (point, flags)) in lines.iter().zip([
            ("/usr", "ro,nosuid,nodev"),
            ("/data", "ro,nosuid,nodev"),
            ("/rw", "rw,nosuid,nodev"),
        ]) {
            assert!(line.starts_with(&format!("{point} {flags}")), "{line} (fallback: {fallback})");
        }
    }
    assert_eq!(std::fs::read_to_string(ro.join("f")).unwrap(), "orig");
}

#[test]
fn a_read_only_rootfs_stays_read_only() {
    let image = TempDir::image("lock-image", &[]);
    let mut sb = Sandbox::new("/bin/sh");
    sb.args([
        "-c",
        "mount -o remount,rw,bind / 2>/dev/null && echo REMOUNTED-RW
         touch /x 2>/dev/null && echo WROTE
         umount -l / 2>/dev/null && echo UNMOUNTED
         echo done",
    ])
    .rootfs(image.path())
    .ro_bind("/usr", "/usr");
    assert_eq!(ok(&sb.output().unwrap()), "done\n");
    assert!(!image.join("x").exists());
}

/// Counts the numeric entries of /proc in the program's view, and says whether it shows the
/// host pid `pid`.
fn count_pids(pid: u32) -> String {
    format!("echo $(ls /proc | grep -c '^[0-9]*$') $(test -e /proc/{pid} && echo HOST-PID)")
}

#[test]
fn the_fresh_proc_cannot_be_unmounted_moved_or_uncovered() {
    let me = std::process::id();
    if me < 100 {
        skip!("this test's pid {me} could also be a pid of the sandbox's");
    }
    let count = count_pids(me);
    let script = format!(
        "umount /proc 2>/dev/null && echo UNMOUNTED; {count}
         umount -l /proc 2>/dev/null && echo UNMOUNTED-LAZY; {count}
         mount --move /proc /mnt 2>/dev/null && echo MOVED; {count}
         mount -t tmpfs cover /proc && echo covered; {count}
         umount /proc && echo uncovered; {count}
         umount /proc 2>/dev/null && echo UNMOUNTED-AGAIN; {count}"
    );
    // The host's view with a fresh /proc (the default), and a new root.
    let mut host_view = Sandbox::new("/bin/sh");
    host_view.args(["-c", &script]);
    for mut sb in [host_view, minimal(&script)] {
        let out = ok(&sb.output().unwrap());
        let lines: Vec<&str> = out.lines().collect();
        // Each attempt that must fail printed nothing; covering and uncovering /proc (a mount
        // of the program's own) worked, so the attempts were real.
        assert_eq!(lines.len(), 8, "{out}");
        assert_eq!((lines[3], lines[5]), ("covered", "uncovered"), "{out}");
        assert_eq!(lines[4], "0", "a tmpfs over /proc shows no pid: {out}");
        for i in [0, 1, 2, 6, 7] {
            let n: u32 = lines[i].parse().unwrap_or_else(|_| panic!("line {i}: {out}"));
            // sh, ls and grep, and nothing of the host's.
            assert!((1..=5).contains(&n), "line {i} shows {n} pids: {out}");
        }
    }
}

/// Directory fds the caller holds open: on `/`, on a host directory, and an `O_PATH` one.
fn caller_fds(dir: &TempDir) -> Vec<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |p: &std::path::Path, flags| {
        std::fs::OpenOptions::new().read(true).custom_flags(flags).open(p).unwrap()
    };
    vec![
        open(std::path::Path::new("/"), libc::O_DIRECTORY),
        open(dir.path(), libc::O_DIRECTORY),
        open(dir.path(), libc::O_PATH),
    ]
}

const MAGIC: [&str; 3] = ["/proc/self/fd", "/proc/1/fd", "/proc/thread-self/fd"];

#[test]
fn the_working_directory_cannot_leave_the_new_root_through_an_fd_of_the_callers() {
    let host = TempDir::new("cwd-escape");
    std::fs::write(host.join("HOST-MARKER"), "").unwrap();
    let fds = caller_fds(&host);
    for fd in &fds {
        for prefix in MAGIC {
            for init in [false, true] {
                let cwd = format!("{prefix}/{}", fd.as_raw_fd());
                let mut sb = minimal("ls -a . ..; pwd");
                sb.init(init).current_dir(&cwd);
                match sb.output() {
                    Err(e) => assert_eq!(e.step(), Some(Step::Chdir), "{cwd} (init {init}): {e}"),
                    Ok(out) => panic!(
                        "the program ran in {cwd} (init {init}): {}",
                        String::from_utf8_lossy(&out.stdout)
                    ),
                }
            }
        }
    }
    // An fd passed on purpose does not make a magic link a working directory either.
    let mut sb = minimal("pwd");
    let kept = fds[1].try_clone().unwrap();
    let n = kept.as_raw_fd();
    sb.keep_fd(kept).current_dir(format!("/proc/self/fd/{n}"));
    let err = sb.output().expect_err("a magic link as the working directory");
    assert_eq!((err.step(), err.raw_os_error()), (Some(Step::Chdir), Some(libc::ELOOP)), "{err}");
    // A working directory inside the new root still works, relative ones too.
    let mut sb = minimal("pwd");
    sb.current_dir("usr/bin");
    assert_eq!(ok(&sb.output().unwrap()), "/usr/bin\n");
    // In the host's view, with its mounts locked, the program starts where the caller is, and a
    // relative working directory starts from there.
    let here = std::env::current_dir().unwrap();
    let mut sb = Sandbox::new("/bin/pwd");
    assert_eq!(ok(&sb.output().unwrap()), format!("{}\n", here.display()));
    sb.current_dir("tests");
    assert_eq!(ok(&sb.output().unwrap()), format!("{}\n", here.join("tests").display()));
}

#[test]
fn the_program_path_cannot_leave_the_new_root_through_an_fd_of_the_callers() {
    let host = TempDir::new("exec-escape");
    let script = host.join("escape");
    std::fs::write(&script, "#!/bin/sh\necho ESCAPED\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fds = caller_fds(&host);
    for fd in &fds[1..] {
        for prefix in MAGIC {
            for init in [false, true] {
                let program = format!("{prefix}/{}/escape", fd.as_raw_fd());
                let mut sb = Sandbox::new(&program);
                sb.ro_bind("/usr", "/usr").symlink("usr/bin", "/bin").proc("/proc").init(init);
                match sb.output() {
                    Err(e) => {
                        assert_eq!(e.step(), Some(Step::Exec), "{program} (init {init}): {e}")
                    }
                    Ok(out) => panic!(
                        "{program} ran (init {init}): {}",
                        String::from_utf8_lossy(&out.stdout)
                    ),
                }
            }
        }
    }
}

#[test]
fn a_landlock_rule_does_not_follow_a_magic_link() {
    let host = TempDir::new("landlock-escape");
    let fds = caller_fds(&host);
    let kept = fds[1].try_clone().unwrap();
    let fd = kept.as_raw_fd();
    let mut sb = minimal("true");
    sb.keep_fd(kept)
        .landlock_path("/", landlock::Access::Execute)
        .landlock_path(format!("/proc/self/fd/{fd}"), landlock::Access::ReadWrite);
    let err = sb.output().expect_err("a Landlock rule through a magic link");
    assert_eq!(
        (err.step(), err.raw_os_error()),
        (Some(Step::Landlock), Some(libc::ELOOP)),
        "{err}"
    );
}

// ---- Setup steps that block. ----

/// Runs `cmd`, killing it (and failing the test) when it takes longer than `limit`.
fn bounded(mut cmd: Command, limit: Duration) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), start.elapsed())
}

fn nscell() -> Command {
    let mut cmd = Command::new(nscell_bin());
    cmd.env("LC_ALL", "C").stdin(Stdio::null());
    cmd
}

#[test]
fn a_file_is_never_written_into_a_fifo_or_a_device() {
    let host = TempDir::new("fifo");
    let fifo = host.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    let host_dir = host.path().to_str().unwrap();
    for (dest, extra) in
        [("/d/fifo", &[][..]), ("/d/null", &["--dev-bind", "/dev/null", "/d/null"][..])]
    {
        let mut cmd = nscell();
        cmd.args(["--ro-bind", "/usr", "/usr", "--bind", host_dir, "/d"]).args(extra).args([
            "--file",
            "0",
            dest,
            "--",
            "/usr/bin/true",
        ]);
        let (out, _) = bounded(cmd, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{dest}: {err}");
        assert!(err.contains("not a regular file"), "{dest}: {err}");
    }
}

/// A pipe whose write end stays open: reading it to its end blocks.
fn open_pipe() -> (std::fs::File, std::fs::File) {
    let (r, w) = rustix::pipe::pipe().unwrap();
    (std::fs::File::from(r), std::fs::File::from(w))
}

#[test]
fn the_timeout_bounds_a_setup_that_blocks() {
    let (r, _w) = open_pipe();
    let mut cmd = nscell();
    cmd.args(["--timeout", "1", "--bind", "/", "/", "--tmpfs", "/tmp", "--file", "0", "/tmp/x"])
        .args(["--", "/usr/bin/true"])
        .stdin(r);
    let (out, took) = bounded(cmd, Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(124), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(took < Duration::from_secs(10), "took {took:?}");

    // The library: the Child says the timeout passed before the program ran.
    let (r, _w) = open_pipe();
    let mut sb = minimal("echo RAN");
    sb.file_from_fd("/tmp/x", r, None).timeout(Duration::from_millis(500));
    let start = Instant::now();
    let mut child = sb.stdout(nscell::Stdio::piped()).spawn().unwrap();
    let info = child.wait_info().unwrap();
    assert!(info.timed_out && info.timed_out_in_setup, "{info:?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let mut s = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut s).unwrap();
    assert_eq!(s, "", "the program must not have run");
}

#[test]
fn a_readable_abort_fd_ends_a_setup_that_blocks() {
    let (r, _w) = open_pipe();
    let (abort_r, mut abort_w) = open_pipe();
    let mut sb = minimal("true");
    sb.file_from_fd("/tmp/x", r, None).abort_setup_on(abort_r);
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        abort_w.write_all(b"x").unwrap();
    });
    let start = Instant::now();
    let err = sb.spawn().expect_err("the setup was aborted");
    writer.join().unwrap();
    assert!(matches!(err, nscell::Error::SetupInterrupted), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let zombies = common::lasting_zombie_children();
    assert_eq!(zombies, Vec::<u32>::new(), "the half-built sandbox was not reaped");
}

/// Processes whose command line contains `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_setup_whose_spawner_dies_never_runs_the_program() {
    for signal in [libc::SIGKILL, libc::SIGTERM] {
        let host = TempDir::new(&format!("orphan-{signal}"));
        let marker = format!("nscell-orphan-marker-{}-{signal}", std::process::id());
        let (r, mut w) = open_pipe();
        let mut cmd = nscell();
        cmd.args(["--bind", "/", "/", "--bind", host.path().to_str().unwrap(), "/out"])
            .args(["--tmpfs", "/tmp", "--file", "0", "/tmp/x", "--hostname", &marker])
            .args(["--unshare-user", "--unshare-uts", "--unshare-pid", "--unshare-mount"])
            .args(["--", "/bin/sh", "-c", "echo ran > /out/ran"])
            .stdin(r)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut nscell = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert!(nscell.try_wait().unwrap().is_none(), "the setup should be blocked");
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(nscell.id() as i32, signal) }, 0);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = nscell.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "nscell ignored signal {signal}");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The setup child would go on once its input ends.
        let _ = w.write_all(b"x");
        drop(w);
        std::thread::sleep(Duration::from_millis(500));
        assert!(!host.join("ran").exists(), "the program ran after signal {signal}");
        assert_eq!(processes_with(&marker), Vec::<u32>::new(), "left behind after {signal}");
        use std::os::unix::process::ExitStatusExt;
        if signal == libc::SIGTERM {
            assert_eq!(status.code(), Some(128 + signal), "{status:?}");
        } else {
            assert_eq!(status.signal(), Some(signal));
        }
    }
}

#[test]
fn without_cap_sys_admin_no_flag_can_be_undone_either() {
    // nscell skips the lock then: without CAP_SYS_ADMIN, even in the bounding set, the program
    // can change no mount of the sandbox's mount namespace (and one it makes in a user
    // namespace of its own is a copy, locked by the kernel).
    let ro = TempDir::new("nocap-ro");
    std::fs::write(ro.join("f"), "orig").unwrap();
    let mut sb = minimal(
        "mount -o remount,rw,bind /data 2>/dev/null && echo REMOUNTED-RW
         echo hacked 2>/dev/null > /data/f && echo WROTE
         umount /proc 2>/dev/null && echo UNMOUNTED
         grep CapBnd /proc/self/status",
    );
    sb.ro_bind(ro.path(), "/data").drop_capabilities(Capabilities::ALL);
    assert_eq!(ok(&sb.output().unwrap()), "CapBnd:\t0000000000000000\n");
    assert_eq!(std::fs::read_to_string(ro.join("f")).unwrap(), "orig");
}

// ---- Paths relative to the caller's working directory. ----

/// `nscell` started in `dir` with `args`; its stdout, or a panic naming the failure.
fn nscell_in(dir: &std::path::Path, args: &[&str]) -> String {
    let (out, _) = bounded(
        {
            let mut cmd = nscell();
            cmd.current_dir(dir).args(args);
            cmd
        },
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "{args:?} in {dir:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn relative_bind_sources_and_working_directories_start_from_the_callers_one() {
    // A relative source names a place beside the caller, as for every host path: never the
    // one of the same name under the host's /, where the mount lock's setns once put it.
    let here = TempDir::new("relative");
    std::fs::create_dir(here.join("src")).unwrap();
    std::fs::write(here.join("src/HERE"), "").unwrap();
    let usr = ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin"];
    let usr = [&usr[..], &["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"]];
    let usr = usr.concat();
    let dir = here.path().display().to_string();
    // With the mounts locked (the default capabilities) and without (no CAP_SYS_ADMIN).
    for caps in [&[][..], &["--cap-drop", "ALL"][..]] {
        let bind = [&usr[..], caps, &["--ro-bind", "src", "/data", "--", "ls", "/data"]].concat();
        assert_eq!(nscell_in(here.path(), &bind), "HERE\n", "{caps:?}");
        let rootfs = [caps, &["--bind", ".", "/"], &usr[..], &["--", "ls", "/src"]].concat();
        assert_eq!(nscell_in(here.path(), &rootfs), "HERE\n", "{caps:?}");
        // Without a new root, --chdir names a directory of the host's view.
        let chdir = [caps, &["--chdir", "src", "--", "pwd"]].concat();
        assert_eq!(nscell_in(here.path(), &chdir), format!("{dir}/src\n"), "{caps:?}");
    }
}

#[test]
fn a_working_directory_under_the_hosts_proc_does_not_show_the_hosts_processes() {
    // Started from the host's /proc, the program would otherwise sit in the host's procfs under
    // the fresh one: every host pid in `.`, with their command lines.
    let me = std::process::id();
    if me < 100 {
        skip!("this test's pid {me} could also be a pid of the sandbox's");
    }
    let proc = std::path::Path::new("/proc");
    let look = format!("test -e ./{me} && echo HOST-PID; ls . | grep -c '^[0-9]*$'");
    // With the mounts locked, without (no CAP_SYS_ADMIN), and with a relative --chdir.
    for args in [
        &["--", "sh", "-c", &look][..],
        &["--cap-drop", "ALL", "--", "sh", "-c", &look],
        &["--chdir", "self/..", "--", "sh", "-c", &look],
    ] {
        let out = nscell_in(proc, args);
        let n: u32 = out.trim().parse().unwrap_or_else(|_| panic!("{args:?}: {out}"));
        assert!((1..=5).contains(&n), "{args:?}: {n} pids in the working directory");
    }
    // A host process's own directory has no counterpart inside: refused, never entered.
    let mut cmd = nscell();
    cmd.current_dir(format!("/proc/{me}")).args(["--", "cat", "comm"]);
    let (out, _) = bounded(cmd, Duration::from_secs(20));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(125), "{}{err}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("change directory"), "{err}");
}

#[test]
fn reading_a_seccomp_program_that_never_ends_is_bounded_too() {
    // The command line's own setup step: a pipe whose writer never closes it.
    for option in ["--seccomp", "--add-seccomp-fd"] {
        let (r, _w) = open_pipe();
        let mut cmd = nscell();
        cmd.args(["--timeout", "1", option, "0", "--", "/usr/bin/true"]).stdin(r);
        let (out, took) = bounded(cmd, Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(124), "{option}: {err}");
        assert!(err.contains("seccomp"), "{option}: {err}");
        assert!(took < Duration::from_secs(10), "{option} took {took:?}");

        // A signal ends it as it ends any setup: 128+N, as if it had ended nscell.
        let (r, _w) = open_pipe();
        let mut cmd = nscell();
        cmd.args([option, "0", "--", "/usr/bin/true"]).stdin(r).stderr(Stdio::piped());
        let mut nscell = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(nscell.id() as i32, libc::SIGTERM) }, 0);
        let start = Instant::now();
        let status = loop {
            if let Some(s) = nscell.try_wait().unwrap() {
                break s;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = nscell.kill();
                panic!("{option}: nscell still reads after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{option}: {status:?}");
    }
}

#[test]
fn a_status_fd_nobody_reads_does_not_stop_the_timeout() {
    // A pipe already full: writing the start record blocks until its reader reads.
    let (mut r, w) = open_pipe();
    let full = rustix::pipe::fcntl_getpipe_size(&w).unwrap();
    rustix::fs::fcntl_setfl(&w, rustix::fs::OFlags::NONBLOCK).unwrap();
    (&w).write_all(&vec![b'x'; full]).unwrap();
    rustix::fs::fcntl_setfl(&w, rustix::fs::OFlags::empty()).unwrap();
    let marker = format!("nscell-status-marker-{}", std::process::id());
    let mut cmd = nscell();
    cmd.args(["--timeout", "1", "--json-status-fd", "1", "--", "sh", "-c", "sleep 30; :", &marker])
        .stdout(w)
        .stderr(Stdio::null());
    let mut nscell = cmd.spawn().unwrap();
    drop(cmd); // its copy of the write end
    let me = nscell.id();
    let processes_with =
        |m: &str| -> Vec<u32> { processes_with(m).into_iter().filter(|&pid| pid != me).collect() };
    // The program itself, exec'd: while the sandbox's child execs it, its cmdline reads empty
    // for a moment, which the wait below would take for its end.
    let running = |m: &str| -> bool {
        processes_with(m).into_iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sh")
        })
    };
    let start = Instant::now();
    while !running(&marker) && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(running(&marker), "the program never started");
    while !processes_with(&marker).is_empty() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = processes_with(&marker);
    // Read what is there, so nscell can finish in any case.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut all).unwrap();
        all
    });
    let status = nscell.wait().unwrap();
    let all = reader.join().unwrap();
    assert_eq!(left, Vec::<u32>::new(), "the sandbox outlived its --timeout");
    assert_eq!(status.code(), Some(124), "{status:?}");
    let records = String::from_utf8_lossy(&all[full..]).into_owned();
    assert!(
        records.contains("child-pid") && records.ends_with("{\"exit-code\": 124}\n"),
        "{records}"
    );
}
