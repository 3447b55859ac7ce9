//! The library against the real kernel: what a user of `Sandbox` observes.
//! Runs as root and as an unprivileged user (CI runs it both ways).

mod common;

use common::{is_root, own_ns, sh, sh_in, stdout};
use nscell::{Error, IdMap, Namespaces, Sandbox, Stdio, Step};
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;

#[test]
fn seed_demo_root_pid1_hostname() {
    let host_before = rustix::system::uname().nodename().to_owned();
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "id -u; id -g; echo $$; hostname; hostname x; hostname"])
        .hostname("cell")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "0\n0\n1\ncell\nx\n");
    assert_eq!(rustix::system::uname().nodename(), host_before.as_c_str(), "host hostname changed");
}

#[test]
fn namespaces_differ_from_the_callers() {
    let out = sh("for n in user pid mnt uts ipc net; do readlink /proc/self/ns/$n; done");
    let inside: Vec<String> = stdout(&out).lines().map(String::from).collect();
    for (i, name) in ["user", "pid", "mnt", "uts", "ipc"].iter().enumerate() {
        assert_ne!(inside[i], own_ns(name), "{name} namespace is the caller's");
    }
    assert_eq!(inside[5], own_ns("net"), "net was not asked for");
}

#[test]
fn proc_shows_only_the_sandbox() {
    // `ps -e` in the sandbox: sh is PID 1 and the only other process is ps itself.
    let out = sh("ps -e -o pid=,comm=");
    let lines: Vec<String> = stdout(&out).lines().map(|l| l.trim().to_string()).collect();
    assert_eq!(lines, ["1 sh", &format!("{} ps", lines[1].split(' ').next().unwrap())]);
    assert!(lines.len() == 2);
    // And the numbered entries of /proc, counted by the shell itself (no extra processes).
    let out = sh("set -- /proc/[0-9]*; echo $#");
    assert_eq!(stdout(&out), "1\n");
}

#[test]
fn each_namespace_alone_and_all_together() {
    for ns in Namespaces::all().iter() {
        let name = ns.proc_name().unwrap();
        let out = sh_in(ns, &format!("readlink /proc/self/ns/{name}"));
        assert_ne!(stdout(&out).trim(), own_ns(name), "{name} alone did not create a namespace");
    }
    let names = Namespaces::all().iter().map(|n| n.proc_name().unwrap()).collect::<Vec<_>>();
    let script =
        names.iter().map(|n| format!("readlink /proc/self/ns/{n}")).collect::<Vec<_>>().join(";");
    let out = sh_in(Namespaces::all(), &script);
    let inside = stdout(&out);
    for (line, name) in inside.lines().zip(&names) {
        assert_ne!(line, own_ns(name), "{name} with all eight");
    }
    assert_eq!(inside.lines().count(), 8);
}

#[test]
fn without_user_unprivileged_gets_own_ids() {
    let out = sh_in(Namespaces::UTS, "id -u; id -g; readlink /proc/self/ns/user");
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    assert_eq!(lines[0], uid.to_string());
    assert_eq!(lines[1], gid.to_string());
    if is_root() {
        assert_eq!(lines[2], own_ns("user"), "root needs no user namespace");
    } else {
        assert_ne!(lines[2], own_ns("user"), "an implicit user namespace was added");
    }
}

#[test]
fn new_network_namespace_has_loopback_up() {
    // Connection refused means the loopback interface is up; with it down the kernel says the
    // network is unreachable.
    let out = Sandbox::new("/bin/bash")
        .args([
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/9 || true; cat /proc/net/dev | tail -n +3 | cut -d: -f1",
        ])
        .namespaces(Namespaces::DEFAULT | Namespaces::NET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Connection refused"), "stderr: {err}");
    assert_eq!(stdout(&out).trim(), "lo", "only loopback in a new network namespace");
}

#[test]
fn time_namespace_is_entered_at_exec() {
    let out = sh_in(Namespaces::USER | Namespaces::TIME, "readlink /proc/self/ns/time");
    assert_ne!(stdout(&out).trim(), own_ns("time"));
}

#[test]
fn mounts_inside_do_not_reach_the_host() {
    let out = sh("mount -t tmpfs nscell-test /mnt && grep -c nscell-test /proc/self/mounts");
    assert_eq!(stdout(&out), "1\n");
    let host = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(!host.contains("nscell-test"), "a sandbox mount leaked to the host");
}

#[test]
fn mount_proc_false_keeps_the_hosts_proc() {
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "test -d /proc/$PPID_OUTSIDE && echo host-proc"])
        .env("PPID_OUTSIDE", std::process::id().to_string())
        .mount_proc(false)
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "host-proc\n");
}

#[test]
fn setgroups_is_denied_with_self_written_maps() {
    let out = sh("cat /proc/self/setgroups; cat /proc/self/uid_map");
    let text = stdout(&out);
    assert!(text.starts_with("deny\n"), "{text}");
    let euid = rustix::process::geteuid().as_raw();
    let fields: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(fields, ["0", &euid.to_string(), "1"]);
}

#[test]
fn a_non_root_id_inside_by_mapping() {
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "id -u; id -g"])
        .uid_map(IdMap::new(1000, uid, 1))
        .gid_map(IdMap::new(1000, gid, 1))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "1000\n1000\n");
}

#[test]
fn multi_range_maps_are_written_from_outside() {
    let mut sb = Sandbox::new("/bin/sh");
    let sub_u = match common::multi_range_maps(&mut sb) {
        Ok(range) => range,
        Err(why) => skip!("{why}"),
    };
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    let out = sb.args(["-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"]).output().unwrap();
    let text = stdout(&out);
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert_eq!(lines[0], ["0", &uid.to_string(), "1"]);
    assert_eq!(lines[1], ["1", &sub_u.0.to_string(), &sub_u.1.min(1000).to_string()]);
    assert_eq!(lines[2], ["0", &gid.to_string(), "1"]);
    assert_eq!(lines[4], ["0"]);
}

#[test]
fn args_env_and_cwd_behave_like_std() {
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "printf '%s|' \"$@\"; echo; echo $FOO; echo ${HOME-unset}; pwd", "argv0"])
        .args(["a b", "", "c"])
        .env("FOO", "bar")
        .env_remove("HOME")
        .current_dir("/usr")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "a b||c|\nbar\nunset\n/usr\n");

    let out = Sandbox::new("/usr/bin/env").env_clear().env("ONLY", "1").output().unwrap();
    assert_eq!(stdout(&out), "ONLY=1\n");
}

#[test]
fn a_reused_sandbox_sees_every_change_to_its_environment() {
    // The strings are built once and reused while nothing changes (Sandbox::refresh_env).
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "echo ${FOO-unset} ${HOME+home}"]);
    let run = |sb: &mut Sandbox| stdout(&sb.output().unwrap());
    assert_eq!(run(&mut sb), "unset home\n");
    assert_eq!(run(sb.env("FOO", "1")), "1 home\n");
    assert_eq!(run(sb.env("FOO", "2")), "2 home\n");
    assert_eq!(run(sb.env_remove("FOO")), "unset home\n");
    assert_eq!(run(sb.env_clear()), "unset\n");
    // The PATH search follows the sandbox's PATH, and the caller's when it has none.
    let mut sb = Sandbox::new("sh");
    sb.args(["-c", "echo found"]);
    assert_eq!(run(&mut sb), "found\n");
    let err = sb.env("PATH", "/nonexistent").output().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert_eq!(run(sb.env_remove("PATH")), "found\n");
}

#[test]
fn debug_never_shows_the_callers_environment() {
    // The longest value in the caller's environment, which no setting below repeats.
    let Some(value) = std::env::vars_os()
        .map(|(_, v)| v.to_string_lossy().into_owned())
        .filter(|v| v.len() >= 8)
        .max_by_key(String::len)
    else {
        skip!("no environment variable of 8 bytes or more to look for");
    };
    let mut sb = Sandbox::new("/bin/true");
    assert!(sb.status().unwrap().success());
    let shown = format!("{sb:?}");
    assert!(!shown.contains(&value), "Debug shows the caller's {value:?}: {shown}");
}

#[test]
fn program_is_looked_up_in_path() {
    let out = Sandbox::new("sh").args(["-c", "echo found"]).output().unwrap();
    assert_eq!(stdout(&out), "found\n");
    // The program's own PATH decides, as with std.
    let err = Sandbox::new("sh").env("PATH", "/nonexistent").output().unwrap_err();
    assert_eq!(err.step(), Some(Step::Exec));
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(err.path().unwrap(), std::path::Path::new("sh"));
    // A directory on PATH that cannot be searched does not turn "not found" into EACCES.
    let err = Sandbox::new("nscell-no-such-program")
        .env("PATH", "/proc/1/fdinfo/x:/nonexistent")
        .output()
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
    assert_eq!(err.path().unwrap(), std::path::Path::new("nscell-no-such-program"));
}

#[test]
fn maps_follow_the_implicit_user_namespace() {
    // Unprivileged, PID alone gets a user namespace anyway, so an own-id map applies to it.
    if is_root() {
        skip!("root creates namespaces without a user namespace; nothing implicit to test");
    }
    let uid = rustix::process::geteuid().as_raw();
    let out = Sandbox::new("/bin/sh")
        .args(["-c", "id -u"])
        .namespaces(Namespaces::PID)
        .uid_map(IdMap::new(7, uid, 1))
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "7\n");
}

#[test]
fn stdin_is_fed_and_output_is_piped() {
    let mut child =
        Sandbox::new("/bin/cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"through the sandbox").unwrap();
    let mut text = String::new();
    child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(text, "through the sandbox");
}

#[test]
fn large_output_on_both_streams_does_not_deadlock() {
    let out = sh("head -c 1000000 /dev/zero; head -c 700000 /dev/zero >&2");
    assert_eq!(out.stdout.len(), 1_000_000);
    assert_eq!(out.stderr.len(), 700_000);
}

#[test]
fn stdio_from_a_file() {
    let path = std::env::temp_dir().join(format!("nscell-stdio-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let status = Sandbox::new("/bin/echo").arg("to a file").stdout(file).status().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "to a file\n");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn exit_codes_come_back_exactly() {
    for code in [0, 1, 42, 255] {
        let out = sh(&format!("exit {code}"));
        assert_eq!(out.status.code(), Some(code));
    }
}

#[test]
fn death_by_signal_comes_back() {
    // Without a PID namespace the shell is not PID 1, so it can kill itself.
    let out = sh_in(Namespaces::USER, "kill -TERM $$");
    assert_eq!(out.status.signal(), Some(libc::SIGTERM));
    assert_eq!(out.status.code(), None);
}

#[test]
fn kill_ends_pid1_and_signal_reaches_a_plain_child() {
    let mut child = Sandbox::new("/bin/sleep").arg("100").spawn().unwrap();
    assert_eq!(child.try_wait().unwrap(), None);
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    child.kill().unwrap(); // already reaped: a no-op, like std

    let mut child =
        Sandbox::new("/bin/sleep").arg("100").namespaces(Namespaces::USER).spawn().unwrap();
    child.signal(libc::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    assert!(child.signal(0).unwrap_err().is_invalid_input());
}

#[test]
fn dropping_a_child_kills_and_reaps_it() {
    let child = Sandbox::new("/bin/sleep").arg("100").spawn().unwrap();
    let pid = child.id();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(child);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the sandbox is still running or a zombie after drop"
    );
}

#[test]
fn pidfd_polls_readable_on_exit() {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut child = Sandbox::new("/bin/true").spawn().unwrap();
    let mut fds = [PollFd::new(&child, PollFlags::IN)];
    let timeout = rustix::event::Timespec { tv_sec: 10, tv_nsec: 0 };
    assert_eq!(poll(&mut fds, Some(&timeout)).unwrap(), 1);
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_input_is_an_error_before_spawn() {
    let cases: Vec<(&str, Sandbox)> = vec![
        ("NUL", {
            let mut s = Sandbox::new("/bin/true");
            s.arg("a\0b");
            s
        }),
        ("empty", Sandbox::new("")),
        ("program", Sandbox::new("/bin/tr\0ue")),
        ("64", {
            let mut s = Sandbox::new("/bin/true");
            s.hostname("h".repeat(200));
            s
        }),
        ("UTS", {
            let mut s = Sandbox::new("/bin/true");
            s.namespaces(Namespaces::USER).hostname("x");
            s
        }),
        ("overlap", {
            let mut s = Sandbox::new("/bin/true");
            s.uid_map(IdMap::new(0, 1000, 10)).uid_map(IdMap::new(5, 2000, 10));
            s
        }),
        ("count 0", {
            let mut s = Sandbox::new("/bin/true");
            s.gid_map(IdMap::new(0, 1000, 0));
            s
        }),
        ("Namespaces::USER", {
            let mut s = Sandbox::new("/bin/true");
            s.namespaces(Namespaces::empty()).uid_map(IdMap::new(0, 0, 1));
            s
        }),
        ("'='", {
            let mut s = Sandbox::new("/bin/true");
            s.env("A=B", "c");
            s
        }),
    ];
    for (needle, mut sb) in cases {
        let err = sb.spawn().unwrap_err();
        assert!(err.is_invalid_input(), "{needle}: {err:?}");
        assert!(err.to_string().contains(needle), "{needle} not in: {err}");
    }
}

#[test]
fn missing_program_names_path_and_enoent() {
    let err = Sandbox::new("/nonexistent/prog").spawn().unwrap_err();
    assert!(matches!(err, Error::Exec { .. }), "{err:?}");
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(
        err.to_string(),
        "cannot execute /nonexistent/prog: No such file or directory (os error 2)"
    );
}

#[test]
fn non_executable_file_is_eacces() {
    let err = Sandbox::new("/etc/passwd").spawn().unwrap_err();
    assert_eq!(err.step(), Some(Step::Exec));
    assert_eq!(err.raw_os_error(), Some(libc::EACCES));
    assert!(err.to_string().contains("/etc/passwd"), "{err}");
    assert!(err.hint().is_some());
}

#[test]
fn missing_cwd_fails_at_chdir() {
    let err = Sandbox::new("/bin/true").current_dir("/nonexistent-dir").spawn().unwrap_err();
    assert_eq!(err.step(), Some(Step::Chdir));
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert!(err.to_string().starts_with("cannot change directory to /nonexistent-dir: "), "{err}");
}

#[test]
fn spawning_from_eight_threads_at_once() {
    let threads: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let out = Sandbox::new("/bin/sh")
                        .args(["-c", &format!("echo {i} $$")])
                        .hostname(format!("t{i}"))
                        .output()
                        .unwrap();
                    assert_eq!(stdout(&out), format!("{i} 1\n"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn check_reports_what_works_here() {
    let support = Sandbox::check();
    assert!(support.default_works(), "{support}");
    // This machine's kernel has every namespace (see README: kernel 5.10+).
    for ns in Namespaces::all().iter() {
        assert!(support.supports(ns), "{ns:?}: {support}");
    }
    let text = support.to_string();
    assert!(text.contains("default sandbox"), "{text}");
}

#[test]
fn sigpipe_is_reset_and_ignored_signals_stay_ignored() {
    // The Rust runtime ignores SIGPIPE; the program must get it back at its default (as
    // std::process::Command does), while a signal the caller ignores on purpose stays ignored.
    // Ignored dispositions survive execve, so this is what nscell's child leaves behind.
    let mask = |status: &str, field: &str| {
        let line = status.lines().find_map(|l| l.strip_prefix(field)).unwrap();
        u64::from_str_radix(line.trim(), 16).unwrap()
    };
    let ours = mask(&std::fs::read_to_string("/proc/self/status").unwrap(), "SigIgn:");
    let pipe = 1u64 << (libc::SIGPIPE - 1);
    assert_ne!(ours & pipe, 0, "the test harness no longer ignores SIGPIPE");
    // The fast path, the handshake path (maps written from outside) and the init.
    let mut fast = Sandbox::new("/bin/cat");
    let mut handshake = Sandbox::new("/bin/cat");
    let no_handshake = common::multi_range_maps(&mut handshake).err();
    let mut init = Sandbox::new("/bin/cat");
    init.init(true);
    for (name, sb) in [("fast", &mut fast), ("handshake", &mut handshake), ("init", &mut init)] {
        if let (true, Some(why)) = (name == "handshake", &no_handshake) {
            eprintln!("note: the handshake path is not checked: {why}");
            continue;
        }
        let out = sb.arg("/proc/self/status").stdout(Stdio::piped()).output().unwrap();
        let status = stdout(&out);
        assert_eq!(mask(&status, "SigIgn:"), ours & !pipe, "{name}: {status}");
    }
}
