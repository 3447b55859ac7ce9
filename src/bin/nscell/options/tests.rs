//! Tests of the options table: what each option parses to, its errors, and `--help`.

use super::*;
use crate::cli::HardenOpt;
use std::path::PathBuf;

pub fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

/// The run a command line asks for; panics if it is anything else.
pub fn cli(list: &[&str]) -> Cli {
    match parse(args(list)) {
        Ok(Action::Run(cli)) => *cli,
        other => panic!("{list:?} parsed to {other:?}"),
    }
}

/// The one line a bad command line gets.
fn err(list: &[&str]) -> String {
    match parse(args(list)) {
        Err(e) => e.to_string(),
        other => panic!("{list:?} parsed: {other:?}"),
    }
}

#[test]
fn no_options_is_the_default_run() {
    assert_eq!(cli(&[]), Cli::default());
}

#[test]
fn unshare_options_replace_the_default_set() {
    assert_eq!(cli(&["--unshare-net"]).namespaces, Some(Namespaces::NET));
    let c = cli(&["--unshare-user", "--unshare-pid", "--unshare-cgroup", "--unshare-time"]);
    assert_eq!(
        c.namespaces,
        Some(Namespaces::USER | Namespaces::PID | Namespaces::CGROUP | Namespaces::TIME)
    );
    let c = cli(&["--unshare-mount", "--unshare-uts", "--unshare-ipc", "--unshare-net"]);
    assert_eq!(
        c.namespaces,
        Some(Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC | Namespaces::NET)
    );
    assert_eq!(cli(&["--unshare-all"]).namespaces, Some(Namespaces::all()));
}

#[test]
fn the_command_starts_at_the_first_non_option_and_is_not_parsed() {
    let c = cli(&["--hostname", "h", "echo", "--uid", "x", "--", "-V"]);
    assert_eq!(c.hostname.as_deref(), Some(OsStr::new("h")));
    assert_eq!(c.uid, None);
    assert_eq!(c.command, args(&["echo", "--uid", "x", "--", "-V"]));
    let c = cli(&["--", "--help", "--"]);
    assert_eq!(c.command, args(&["--help", "--"]));
}

#[test]
fn values_ids_maps_and_environment() {
    let c = cli(&[
        "--uid=5",
        "--gid",
        "6",
        "--map-users",
        "1:100000:10",
        "--map-groups",
        "2:200000:20",
        "--map-users",
        "20:300000:1",
        "--setenv",
        "A",
        "1",
        "--unsetenv",
        "B",
        "--clearenv",
        "--chdir",
        "/tmp",
        "--domainname",
        "d",
        "--no-proc",
        "--json-status-fd",
        "3",
    ]);
    assert_eq!((c.uid, c.gid), (Some(5), Some(6)));
    assert_eq!(c.uid_maps, [IdMap::new(1, 100000, 10), IdMap::new(20, 300000, 1)]);
    assert_eq!(c.gid_maps, [IdMap::new(2, 200000, 20)]);
    assert_eq!(
        c.env,
        [EnvChange::Set("A".into(), "1".into()), EnvChange::Unset("B".into()), EnvChange::Clear]
    );
    assert_eq!(c.chdir, Some(PathBuf::from("/tmp")));
    assert_eq!(c.domainname.as_deref(), Some(OsStr::new("d")));
    assert!(c.no_proc);
    assert_eq!(c.json_status_fd, Some(3));
    assert!(c.command.is_empty());
}

#[test]
fn help_version_and_check() {
    let action = |list: &[&str]| parse(args(list)).unwrap();
    assert_eq!(action(&["-h"]), Action::Help);
    assert_eq!(action(&["--unshare-net", "--help"]), Action::Help);
    assert_eq!(action(&["-V"]), Action::Version);
    assert_eq!(action(&["--version"]), Action::Version);
    assert_eq!(action(&["--check"]), Action::Check);
}

#[test]
fn bad_command_lines_say_what_is_wrong() {
    assert_eq!(err(&["--bogus"]), "invalid option '--bogus'");
    assert_eq!(err(&["-x"]), "invalid option '-x'");
    assert_eq!(err(&["--hostname"]), "missing argument for option '--hostname'");
    assert!(err(&["--setenv", "A"]).contains("missing VALUE"));
    assert!(err(&["--uid", "root"]).starts_with("--uid: \"root\" is not a number"));
    assert!(err(&["--uid", "-1"]).starts_with("--uid: "));
    assert!(err(&["--map-users", "0:1000"]).contains("INSIDE:OUTSIDE:COUNT"));
    assert!(err(&["--map-groups", "0:1000:x"]).contains("INSIDE:OUTSIDE:COUNT"));
    assert!(err(&["--map-groups", "0:1:2:3"]).contains("INSIDE:OUTSIDE:COUNT"));
    assert!(err(&["--json-status-fd", "4294967295"]).contains("not a file descriptor"));
    assert_eq!(err(&["--no-proc=yes"]), "unexpected argument for option '--no-proc': \"yes\"");
    let rl = err(&["--rlimit", "NOFILE=10:5"]);
    assert!(rl.contains("--rlimit: \"NOFILE=10:5\": the soft limit 10 is above"), "{rl}");
}

#[test]
fn lexopt_errors_are_carried_as_lexopt_errors() {
    for (list, lexopt) in
        [(&["--bogus"][..], true), (&["--hostname"], true), (&["--uid", "x"], false)]
    {
        let e = parse(args(list)).unwrap_err();
        assert_eq!(matches!(e, Error::Lexopt(_)), lexopt, "{list:?}: {e:?}");
        assert_eq!(std::error::Error::source(&e).is_some(), lexopt, "{list:?}");
    }
}

#[test]
fn parsing_opens_nothing_the_fds_are_only_numbers() {
    // An fd that is not open parses: claiming it is a later step.
    let c = cli(&["--seccomp", "999999", "--add-seccomp-fd", "999998", "--keep-fd", "999997"]);
    assert_eq!(
        c.harden,
        [
            HardenOpt::Seccomp { fd: 999999, replace: true },
            HardenOpt::Seccomp { fd: 999998, replace: false },
            HardenOpt::KeepFd(999997),
        ]
    );
}

#[test]
fn each_option_has_one_line_of_help_that_starts_with_its_name_and_values() {
    let help = help();
    for o in options() {
        let mut head = String::from("  ");
        if let Some(c) = o.short {
            head.push_str(&format!("-{c}, "));
        }
        head.push_str(o.name);
        if !o.values.is_empty() {
            head.push(' ');
            head.push_str(o.values);
        }
        let lines = help.lines().filter(|l| l.starts_with(&format!("{head} "))).count()
            + help.lines().filter(|l| *l == head).count();
        assert_eq!(lines, 1, "{head:?}");
    }
    // The help column: past it, the help starts on the next line.
    assert!(help.contains("\n  --dev-bind-try SRC DEST the same"));
    assert!(help.contains(
        "\n  --landlock-tcp-bind PORT\n                          Landlock: allow TCP bind"
    ));
    assert!(help.contains("\n  -h, --help              show this help\n"));
}

/// A plausible value for each value name of the table.
fn sample(name: &str) -> &'static str {
    match name {
        "N" | "FD" | "BYTES" | "SECONDS" | "N.N" => "5",
        "LIST" => "0-1",
        "DEV:RATE" => "/dev/null:1024",
        "IN:OUT:COUNT" => "1:100000:1",
        "OCTAL" => "755",
        "CAP" => "ALL",
        "PORT" => "80",
        "NAME=SOFT[:HARD]" => "CORE=0",
        "MODE" => "slirp4netns:--mtu=1500",
        "[IP:]HOSTPORT:PORT[/PROTO]" => "8080:80",
        "DEST[:PORTS][/PROTO]" => "10.0.0.0/8:443",
        "IP" => "10.0.2.3",
        "NAME" | "VAR" | "VALUE" | "LABEL" => "x",
        "DIR" | "SRC" | "DEST" | "PATH" | "TARGET" | "RWSRC" | "WORKDIR" => "/x",
        other => panic!("no sample for {other}: teach this test the new value"),
    }
}

#[test]
fn every_option_takes_exactly_the_values_its_help_names() {
    // --args is read before parsing (`expand_args`, tested below).
    // --overlay-src waits for its overlay (tested below).
    let waits = ["--args", "--overlay-src", "--overlay", "--tmp-overlay", "--ro-overlay"];
    for o in options().filter(|o| !waits.contains(&o.name)) {
        let mut list = vec![o.name];
        list.extend(o.values.split_whitespace().map(sample));
        // --perms and --size wait for a --tmpfs; the command marks where the options end.
        list.extend(["--tmpfs", "/t", "prog"]);
        match parse(args(&list)) {
            Ok(Action::Run(c)) => {
                assert_eq!(c.command, args(&["prog"]), "{list:?}");
                assert!(
                    matches!(c.fs.last(), Some(FsOp::Tmpfs { dest, .. }) if dest == "/t"),
                    "{list:?}: {:?}",
                    c.fs
                );
            }
            Ok(_) => assert!(["--help", "--version", "--check", "--gc"].contains(&o.name)),
            Err(e) => panic!("{list:?}: {e}"),
        }
    }
}

#[test]
fn cgroup_options_take_podmans_names_and_meanings() {
    let c = cli(&["--memory", "64m", "--memory-swap", "96M", "--pids-limit", "50", "true"]);
    assert_eq!(c.cgroup.memory, Some(64 << 20));
    assert_eq!(c.cgroup.memory_swap, Some(Some(96 << 20)));
    assert_eq!(c.cgroup.pids_limit, Some(50));
    let c = cli(&["--memory", "1g", "--memory-swap", "-1", "--cpus", "0.5", "--cpu-weight", "200"]);
    assert_eq!((c.cgroup.memory, c.cgroup.memory_swap), (Some(1 << 30), Some(None)));
    assert_eq!((c.cgroup.cpus, c.cgroup.cpu_weight), (Some(0.5), Some(200)));
    let c = cli(&["--cpuset-cpus", "0", "--cgroup-parent", "jobs", "--cgroup-required"]);
    assert_eq!(c.cgroup.cpuset_cpus.as_deref(), Some("0"));
    assert_eq!(c.cgroup.parent.as_deref(), Some(std::path::Path::new("jobs")));
    assert!(c.cgroup.required && c.cgroup.any());
    assert!(!cli(&["true"]).cgroup.any());
    assert_eq!(cli(&["--memory", "4096", "true"]).cgroup.memory, Some(4096));
    assert_eq!(cli(&["--memory", "2k", "true"]).cgroup.memory, Some(2048));
    for bad in ["0", "-1", "1x", "m", "", "99999999999t"] {
        assert!(err(&["--memory", bad]).contains("not a size in bytes"), "{bad:?}");
    }
    assert!(err(&["--cpus", "lots"]).contains("not a number"));
    assert_eq!(
        parse(args(&["--cgroup-parent", "/jobs", "--gc"])).unwrap(),
        Action::Gc(Some("/jobs".into()))
    );
}

#[test]
fn lifecycle_options() {
    let c = cli(&["--init", "--die-with-parent", "--timeout", "1.5", "--no-pty", "true"]);
    assert!(c.init && c.die_with_parent);
    assert_eq!(c.timeout, Some(std::time::Duration::from_millis(1500)));
    assert_eq!(c.pty, Some(false));
    assert_eq!(c.new_session, None);
    assert_eq!(cli(&["--pty"]).pty, Some(true));
    assert_eq!(cli(&["--new-session"]).new_session, Some(true));
    assert_eq!(cli(&["--share-terminal"]).new_session, Some(false));
    assert!(err(&["--timeout", "soon"]).contains("not a number of seconds"));
    assert!(parse(args(&["--timeout", "-1"])).is_err());
}

#[test]
fn filesystem_options_in_order_with_perms_and_size() {
    let c = cli(&[
        "--ro-bind",
        "/usr",
        "/usr",
        "--bind-try",
        "/a",
        "/b",
        "--symlink",
        "usr/bin",
        "/bin",
        "--size",
        "1024",
        "--perms",
        "700",
        "--tmpfs",
        "/tmp",
        "--tmpfs",
        "/t2",
        "--perms",
        "0755",
        "--dir",
        "/d",
        "--file",
        "5",
        "/f",
        "--chmod",
        "1777",
        "/tmp",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--mqueue",
        "/dev/mqueue",
        "--remount-ro",
        "/",
        "--rootfs",
        "/img",
        "sh",
    ]);
    let o = |s: &str| OsString::from(s);
    assert_eq!(
        c.fs,
        [
            FsOp::Bind("--ro-bind", o("/usr"), o("/usr")),
            FsOp::Bind("--bind-try", o("/a"), o("/b")),
            FsOp::Symlink { target: o("usr/bin"), dest: o("/bin") },
            FsOp::Tmpfs { dest: o("/tmp"), size: Some(1024), mode: Some(0o700) },
            FsOp::Tmpfs { dest: o("/t2"), size: None, mode: None },
            FsOp::Dir { dest: o("/d"), mode: Some(0o755) },
            FsOp::File { fd: 5, dest: o("/f"), mode: None },
            FsOp::Chmod { mode: 0o1777, path: o("/tmp") },
            FsOp::Proc(o("/proc")),
            FsOp::Dev(o("/dev")),
            FsOp::Mqueue(o("/dev/mqueue")),
            FsOp::RemountRo(o("/")),
            FsOp::Rootfs(o("/img")),
        ]
    );
    assert_eq!(c.command, [o("sh")]);

    for (line, msg) in [
        (&["--bind", "/a"][..], "missing argument for option '--bind' (--bind SRC DEST)"),
        (&["--perms", "9"], "--perms: \"9\" is not an octal mode"),
        (&["--perms", "700"], "--perms must be followed by"),
        (&["--size", "1k", "--tmpfs", "/t"], "--size: \"1k\" is not a number"),
        (&["--size", "1"], "--size must be followed by --tmpfs"),
        (&["--size", "0", "--tmpfs", "/t"], "--size: 0 is not a size limit"),
        (&["--size", "-1", "--tmpfs", "/t"], "--size: \"-1\" is not a number"),
        (&["--size", "18446744073709551616", "--tmpfs", "/t"], "is not a number of bytes"),
        (&["--file", "x", "/f"], "--file: \"x\" is not a file descriptor"),
        (&["--chmod", "1", "/a", "--chmod", "77777", "/b"], "not an octal mode"),
    ] {
        let e = err(line);
        assert!(e.contains(msg), "{line:?}: {e}");
    }
}

#[test]
fn hardening_options_parse_in_order() {
    let c = cli(&[
        "--cap-drop",
        "ALL",
        "--cap-add=net_admin",
        "--no-default-seccomp",
        "--disable-userns",
        "--keep-session-keyring",
        "--landlock-ro",
        "/usr",
        "--landlock-rw",
        "/tmp",
        "--landlock-exec",
        "/bin",
        "--rlimit",
        "NOFILE=64:128",
        "--rlimit",
        "core=0",
        "--rlimit",
        "AS=unlimited",
        "--keep-fd",
        "5",
        "--deny-io-uring",
        "--landlock-tcp-bind",
        "8080",
        "--landlock-tcp-connect=443",
        "--landlock-tcp-connect",
        "none",
        "--landlock-required",
        "true",
    ]);
    assert_eq!(
        c.harden,
        [
            HardenOpt::CapDrop(Capabilities::ALL),
            HardenOpt::CapAdd(Capabilities::NET_ADMIN),
            HardenOpt::NoDefaultSeccomp,
            HardenOpt::DisableUserns,
            HardenOpt::KeepSessionKeyring,
            HardenOpt::Landlock("/usr".into(), LandlockAccess::ReadOnly),
            HardenOpt::Landlock("/tmp".into(), LandlockAccess::ReadWrite),
            HardenOpt::Landlock("/bin".into(), LandlockAccess::Execute),
            HardenOpt::Rlimit(Resource::Nofile, 64, 128),
            HardenOpt::Rlimit(Resource::Core, 0, 0),
            HardenOpt::Rlimit(Resource::As, u64::MAX, u64::MAX),
            HardenOpt::KeepFd(5),
            HardenOpt::DenyIoUring,
            HardenOpt::LandlockTcp(true, Some(8080)),
            HardenOpt::LandlockTcp(false, Some(443)),
            HardenOpt::LandlockTcp(false, None),
            HardenOpt::LandlockRequired,
        ]
    );
    assert!(err(&["--cap-drop", "CAP_NOPE"]).contains("not a capability"));
    assert!(err(&["--rlimit", "NOFILE"]).contains("NAME=SOFT[:HARD]"));
    assert!(err(&["--rlimit", "BOGUS=1"]).contains("NAME=SOFT[:HARD]"));
    for bad in ["65536", "-1", "http", ""] {
        let e = err(&["--landlock-tcp-connect", bad]);
        assert!(e.contains("is not a port from 0 to 65535"), "{bad}: {e}");
    }
    assert!(err(&["--landlock-tcp-bind"]).contains("missing argument"));
}

#[test]
fn network_options_parse_as_podman_writes_them() {
    use crate::cli::NetMode;
    use nscell::net::Proto;
    let c = cli(&["--network", "pasta:--mtu,1500", "-p", "8080:80", "-p", "0.0.0.0:53:5353/udp"]);
    assert_eq!(c.net.mode, Some(NetMode::Pasta(vec!["--mtu".into(), "1500".into()])));
    assert_eq!(c.net.publish[0], (Proto::Tcp, "127.0.0.1:8080".parse().unwrap(), 80));
    assert_eq!(c.net.publish[1], (Proto::Udp, "0.0.0.0:53".parse().unwrap(), 5353));
    let c = cli(&["--network", "slirp4netns", "-p", "[::1]:8080:80"]);
    assert_eq!(c.net.publish[0].1, "[::1]:8080".parse().unwrap());
    let c = cli(&[
        "--network",
        "pasta",
        "--allow-egress",
        "10.0.0.0/8:80,443-444/tcp",
        "--allow-egress",
        "[2001:db8::/32]:53/udp",
        "--allow-egress",
        "example.com",
        "--allow-egress",
        "192.0.2.1/udp",
        "--dns",
        "none",
    ]);
    let a = &c.net.allow;
    assert_eq!(
        (a[0].dest.as_str(), a[0].proto, &a[0].ports[..]),
        ("10.0.0.0/8", Some(Proto::Tcp), &[(80, 80), (443, 444)][..])
    );
    assert_eq!(
        (a[1].dest.as_str(), a[1].proto, &a[1].ports[..]),
        ("2001:db8::/32", Some(Proto::Udp), &[(53, 53)][..])
    );
    assert_eq!((a[2].dest.as_str(), a[2].proto, a[2].ports.len()), ("example.com", None, 0));
    assert_eq!((a[3].dest.as_str(), a[3].proto), ("192.0.2.1", Some(Proto::Udp)));
    assert_eq!(c.net.dns, Some(None));
    for bad in [
        ["--network", "tor"],
        ["--network", "host:x"],
        ["-p", "80"],
        ["-p", "0:80"],
        ["--allow-egress", "10.0.0.0/8:90-80"],
        ["--allow-egress", "[::1"],
        ["--dns", "::1"],
    ] {
        assert!(parse(args(&bad)).is_err(), "{bad:?}");
    }
}

#[test]
fn share_net_undoes_unshare_all() {
    let ns = cli(&["--unshare-all", "--share-net"]).namespaces.unwrap();
    assert!(!ns.contains(Namespaces::NET) && ns.contains(Namespaces::PID));
}

#[test]
fn args_fds_are_read_in_place_nested_and_only_among_the_options() {
    let mut read_from = Vec::new();
    let expanded = expand_args(
        args(&["--ro-bind", "/a", "--args", "--args", "3", "--args=4", "prog", "--args", "5"]),
        |fd| {
            read_from.push(fd);
            Ok(match fd {
                3 => b"--dir\0/x\0--args\x006\0".to_vec(),
                4 => b"--setenv\0A\0B\0".to_vec(),
                6 => b"--tmpfs\0/t".to_vec(),
                _ => panic!("fd {fd} is in the command"),
            })
        },
    )
    .unwrap();
    // `--ro-bind /a --args` binds /a to a directory named --args: the value is not an option.
    assert_eq!(
        expanded,
        args(&[
            "--ro-bind",
            "/a",
            "--args",
            "--dir",
            "/x",
            "--tmpfs",
            "/t",
            "--setenv",
            "A",
            "B",
            "prog",
            "--args",
            "5"
        ])
    );
    assert_eq!(read_from, [3, 6, 4]);
    let err = expand_args(args(&["--args", "x"]), |_| Ok(Vec::new())).unwrap_err();
    assert_eq!(err.to_string(), "--args: \"x\" is not a file descriptor");
    let err = expand_args(args(&["--args", "9"]), |_| Err("Bad file descriptor".into()));
    assert_eq!(err.unwrap_err().to_string(), "--args 9: Bad file descriptor");
    // An fd that gives itself back forever ends at the limit.
    let err = expand_args(args(&["--args", "3"]), |_| Ok(b"--args\x003".to_vec())).unwrap_err();
    assert!(err.to_string().contains("more than"), "{err}");
}

#[test]
fn bubblewraps_personality_parses_the_same_options_and_says_usage_its_way() {
    let c = match parse_as(Personality::Bwrap, args(&["--unshare-pid", "--as-pid-1", "true"])) {
        Ok(Action::Run(c)) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(c.personality, Personality::Bwrap);
    assert!(c.as_pid_1);
    let help = help_as(Personality::Bwrap, "/usr/bin/bwrap");
    assert!(help.starts_with("usage: /usr/bin/bwrap [OPTIONS...] [--] COMMAND [ARGS...]\n"));
    // Callers grep it for an option's name to feature-test (--disable-userns, say).
    for o in options() {
        assert!(help.contains(&format!("{} ", o.name)) || help.contains(&format!("{}\n", o.name)));
    }
    assert!(!help.contains("Usage: nscell"));
}

#[test]
fn argv0_is_given_once() {
    assert_eq!(err(&["--argv0", "a", "--argv0", "b", "true"]), "--argv0 used multiple times");
}

#[test]
fn perms_and_size_are_given_once_per_operation_and_size_is_a_plain_number() {
    for list in [
        &["--perms", "0640", "--perms", "0640", "--tmpfs", "/a"][..],
        &["--size", "1048576", "--size", "1048576", "--tmpfs", "/a"],
    ] {
        assert!(err(list).contains("given twice"), "{list:?}");
    }
    for bad in [
        "0",
        "123bogus",
        "",
        "-12345678",
        " -12345678",
        "18446744073709551616",
        "9223372036854775809",
    ] {
        assert!(parse(args(&["--size", bad, "--tmpfs", "/a"])).is_err(), "{bad:?}");
    }
    let c = cli(&["--size", "1048576", "--perms", "01777", "--tmpfs", "/a"]);
    assert_eq!(c.fs, [FsOp::Tmpfs { dest: "/a".into(), size: Some(1 << 20), mode: Some(0o1777) }]);
}

#[test]
fn overlay_sources_go_to_the_next_overlay_and_nothing_else() {
    let c = cli(&["--overlay-src", "/a", "--overlay-src", "/b", "--ro-overlay", "/o"]);
    let lowers = vec![OsString::from("/a"), OsString::from("/b")];
    assert_eq!(c.fs, [FsOp::Overlay { lowers, upper_work: None, ro: true, dest: "/o".into() }]);
    assert_eq!(
        err(&["--overlay", "/u", "/w", "/o"]),
        "--overlay requires at least one --overlay-src"
    );
    assert_eq!(
        err(&["--overlay-src", "/a", "--ro-overlay", "/o"]),
        "--ro-overlay requires at least two --overlay-src"
    );
    for list in [&["--overlay-src", "/a"][..], &["--overlay-src", "/a", "--chdir", "/"]] {
        assert!(err(list).starts_with("--overlay-src must be followed by"), "{list:?}");
    }
}
