//! Hardening: each test is an attempt to get out of, or around, a layer (capabilities,
//! no_new_privs, seccomp, nested user namespaces, Landlock, rlimits, fd hygiene).
//! Runs as root and as an unprivileged user.

mod common;

use common::{is_root, stdout as text};
use nscell::seccomp::{self, ArgCmp};
use nscell::{Capabilities, IdMap, Sandbox, Stdio, landlock, rlimit};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Output;

/// The try-syscall helper (examples/try_syscall.rs), built by `cargo test` beside the tests.
fn helper() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe.parent().unwrap().parent().unwrap().join("examples/try_syscall");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo test` or `cargo build --examples`",
        p.display()
    );
    p
}

fn out(sb: &mut Sandbox) -> Output {
    sb.output().expect("spawn")
}

fn sh(script: &str) -> Sandbox {
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", script]);
    sb
}

/// `try_syscall ARGS…` in `sb`'s configuration; returns its one line of output.
fn try_in(sb: &mut Sandbox) -> String {
    text(&out(sb)).trim().to_string()
}

fn try_syscall(args: &[&str]) -> Sandbox {
    let mut sb = Sandbox::new(helper());
    sb.args(args);
    sb
}

/// A field of /proc/self/status as the program sees it, e.g. "CapEff".
fn status_field(status: &str, field: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"))
        .trim()
        .to_string()
}

fn caps_hex(c: u64) -> String {
    format!("{c:016x}")
}

fn full_caps() -> u64 {
    let last: u32 =
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap().trim().parse().unwrap();
    (1u64 << (last + 1)) - 1
}

const STATUS: &str = "cat /proc/self/status";

#[test]
fn root_inside_has_the_full_namespace_capability_set_by_default() {
    let s = text(&out(&mut sh(STATUS)));
    for f in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&s, f), caps_hex(full_caps()), "{f}");
    }
    assert_eq!(status_field(&s, "CapInh"), caps_hex(0));
    assert_eq!(status_field(&s, "CapAmb"), caps_hex(0));
    // The seed's promise: a root shell can change its own hostname.
    let o = out(sh("hostname inside && hostname").hostname("cell"));
    assert_eq!(text(&o), "inside\n");
}

#[test]
fn drop_all_leaves_root_without_capabilities() {
    let s = text(&out(sh(STATUS).drop_capabilities(Capabilities::ALL)));
    for f in ["CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"] {
        assert_eq!(status_field(&s, f), caps_hex(0), "{f}");
    }
    // And it shows: no sethostname, no mount.
    let o = out(sh("hostname x").drop_capabilities(Capabilities::ALL));
    assert!(!o.status.success(), "hostname worked without CAP_SYS_ADMIN");
    let o = out(sh("mount -t tmpfs none /mnt").drop_capabilities(Capabilities::ALL));
    assert!(!o.status.success(), "mount worked without CAP_SYS_ADMIN");
    // The uid is still 0.
    assert_eq!(text(&out(sh("id -u").drop_capabilities(Capabilities::ALL))), "0\n");
}

#[test]
fn kept_capabilities_are_exactly_the_ones_asked_for() {
    let kept = Capabilities::SYS_ADMIN | Capabilities::NET_ADMIN;
    let s = text(&out(sh(STATUS).keep_capabilities(kept)));
    for f in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(status_field(&s, f), caps_hex(kept.bits()), "{f}");
    }
    assert_eq!(status_field(&s, "CapInh"), caps_hex(0));
    // SYS_ADMIN kept: sethostname works. CHOWN dropped: chown of a file fails.
    let o = out(sh("hostname kept && hostname").keep_capabilities(kept).hostname("a"));
    assert_eq!(text(&o), "kept\n");
    // Drop one from the default set.
    let s = text(&out(sh(STATUS).drop_capabilities(Capabilities::SYS_ADMIN)));
    assert_eq!(status_field(&s, "CapEff"), caps_hex(full_caps() & !Capabilities::SYS_ADMIN.bits()));
    let o = out(sh("hostname x").drop_capabilities(Capabilities::SYS_ADMIN));
    assert!(!o.status.success(), "hostname worked after dropping CAP_SYS_ADMIN");
}

#[test]
fn a_non_root_uid_inside_keeps_added_capabilities_through_the_ambient_set() {
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    let base = || {
        let mut sb = sh("id -u; cat /proc/self/status");
        sb.uid_map(IdMap::new(1000, euid, 1)).gid_map(IdMap::new(1000, egid, 1));
        sb
    };
    // Without: a non-root uid loses its capabilities at execve.
    let s = text(&out(&mut base()));
    assert!(s.starts_with("1000\n"), "{s}");
    assert_eq!(status_field(&s, "CapEff"), caps_hex(0));
    // With: exactly the added one, in the ambient set too.
    let s = text(&out(base().add_capabilities(Capabilities::NET_ADMIN)));
    for f in ["CapEff", "CapPrm", "CapAmb", "CapInh"] {
        assert_eq!(status_field(&s, f), caps_hex(Capabilities::NET_ADMIN.bits()), "{f}");
    }
    // --cap-drop ALL --cap-add CAP_SYS_ADMIN: sethostname works as uid 1000.
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "hostname u1000 && hostname"])
        .uid_map(IdMap::new(1000, euid, 1))
        .gid_map(IdMap::new(1000, egid, 1))
        .hostname("x")
        .drop_capabilities(Capabilities::ALL)
        .add_capabilities(Capabilities::SYS_ADMIN);
    assert_eq!(text(&out(&mut sb)), "u1000\n");
}

#[test]
fn no_new_privs_is_on_by_default_and_can_be_turned_off() {
    let s = text(&out(&mut sh(STATUS)));
    assert_eq!(status_field(&s, "NoNewPrivs"), "1");
    let s = text(&out(sh(STATUS).no_new_privs(false)));
    assert_eq!(status_field(&s, "NoNewPrivs"), "0");
    // The default seccomp filter is installed either way (root inside has CAP_SYS_ADMIN).
    assert_eq!(status_field(&s, "Seccomp"), "2");
}

#[test]
fn without_no_new_privs_seccomp_is_installed_before_the_capabilities_go_but_landlock_cannot_be() {
    // As runc: the filter goes in while the setup still has CAP_SYS_ADMIN.
    let s = text(&out(sh(STATUS).no_new_privs(false).drop_capabilities(Capabilities::ALL)));
    assert_eq!(status_field(&s, "NoNewPrivs"), "0");
    assert_eq!(status_field(&s, "Seccomp"), "2");
    assert_eq!(status_field(&s, "CapEff"), "0000000000000000");
    // Landlock comes first and says EPERM.
    let e = sh("true")
        .no_new_privs(false)
        .drop_capabilities(Capabilities::ALL)
        .landlock_path("/", landlock::Access::Execute)
        .spawn()
        .expect_err("Landlock without no_new_privs nor CAP_SYS_ADMIN");
    if nscell_abi() >= 1 {
        assert_eq!(e.step(), Some(nscell::Step::Landlock), "{e}");
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        assert!(e.to_string().contains("no_new_privs"), "{e}");
    }
}

#[test]
fn every_call_of_the_default_deny_list_fails_with_eperm() {
    for name in seccomp::DEFAULT_DENIED {
        let r = try_in(&mut try_syscall(&[name, "-1", "0", "0", "0", "0"]));
        assert!(r.starts_with("errno 1 "), "{name}: {r}");
    }
    // The filter answers, not the kernel's own permission checks: without the filter these
    // calls fail differently (bad arguments) or not at all.
    let mut differ = 0;
    for name in seccomp::DEFAULT_DENIED {
        let r = try_in(try_syscall(&[name, "-1", "0", "0", "0", "0"]).default_seccomp(false));
        if !r.starts_with("errno 1 ") {
            differ += 1;
        }
    }
    assert!(differ >= 5, "only {differ} calls answer differently without the filter");
    let s = text(&out(&mut sh(STATUS)));
    assert_eq!(status_field(&s, "Seccomp"), "2");
}

#[test]
fn ptrace_is_denied_unless_a_caller_rule_allows_it() {
    // PTRACE_PEEKDATA on a pid that does not exist: ESRCH from the kernel, EPERM from the filter.
    let args = ["ptrace", "2", "999999", "0", "0"];
    assert!(try_in(&mut try_syscall(&args)).starts_with("errno 1 "));
    let r = try_in(try_syscall(&args).seccomp_rule(seccomp::Rule::allow("ptrace")));
    assert!(r.starts_with(&format!("errno {} ", libc::ESRCH)), "{r}");
}

#[test]
fn caller_rules_deny_by_argument() {
    // socket(AF_INET=2, …) denied with EXDEV; AF_UNIX (1) still allowed.
    let rule =
        seccomp::Rule::new("socket", seccomp::Action::Errno(libc::EXDEV)).when(ArgCmp::Eq(0, 2));
    let r = try_in(try_syscall(&["socket", "2", "2", "0"]).seccomp_rule(rule.clone()));
    assert!(r.starts_with(&format!("errno {} ", libc::EXDEV)), "{r}");
    let r = try_in(try_syscall(&["socket", "1", "1", "0"]).seccomp_rule(rule));
    assert!(r.starts_with("ok "), "{r}");
    // Unknown names are refused before anything runs.
    let e = sh("true").seccomp_rule(seccomp::Rule::deny("no_such_call")).spawn().unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
}

#[test]
fn tiocsti_is_blocked_even_with_the_high_bits_set() {
    for req in ["0x5412", "0x100005412", "0xffffffff00005412", "0x541c"] {
        // ioctl(0, req, &c) on a /dev/null stdin: ENOTTY from the kernel, EPERM from the filter.
        let r = try_in(try_syscall(&["ioctl", "0", req, "buf"]).stdin(Stdio::null()));
        assert!(r.starts_with("errno 1 "), "{req}: {r}");
        let r = try_in(
            try_syscall(&["ioctl", "0", req, "buf"]).stdin(Stdio::null()).default_seccomp(false),
        );
        assert!(r.starts_with(&format!("errno {} ", libc::ENOTTY)), "{req} unfiltered: {r}");
    }
    // Another ioctl on the same fd goes through to the kernel.
    let r = try_in(try_syscall(&["ioctl", "0", "0x5413", "buf"]).stdin(Stdio::null()));
    assert!(r.starts_with(&format!("errno {} ", libc::ENOTTY)), "TIOCGWINSZ: {r}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_system_calls_get_eperm_from_the_filter() {
    // x32 getpid: the kernel answers ENOSYS (or the pid, where x32 is enabled).
    let x32_getpid = "0x40000027";
    let r = try_in(&mut try_syscall(&[x32_getpid]));
    assert!(r.starts_with("errno 1 "), "{r}");
    let r = try_in(try_syscall(&[x32_getpid]).default_seccomp(false));
    assert!(!r.starts_with("errno 1 "), "{r}");
}

#[test]
fn io_uring_is_denied_on_request() {
    let args = ["io_uring_setup", "0", "0"];
    let r = try_in(&mut try_syscall(&args));
    assert!(!r.starts_with("errno 1 "), "io_uring denied by default: {r}");
    let r = try_in(try_syscall(&args).deny_io_uring(true));
    assert!(r.starts_with("errno 1 "), "{r}");
    // Without the default policy as well.
    let r = try_in(try_syscall(&args).default_seccomp(false).deny_io_uring(true));
    assert!(r.starts_with("errno 1 "), "{r}");
}

#[test]
fn personality_changes_beyond_the_standard_ones_are_denied() {
    // ADDR_NO_RANDOMIZE, as `setarch -R` asks.
    let r = try_in(&mut try_syscall(&["personality", "0x0040000"]));
    assert!(r.starts_with("errno 1 "), "{r}");
    let r = try_in(&mut try_syscall(&["personality", "0xffffffff"]));
    assert!(r.starts_with("ok "), "{r}");
}

/// A program returning `ERRNO(errno)` for `getppid` and allowing everything else, as raw
/// `struct sock_filter` bytes (what `bwrap --seccomp FD` reads).
fn getppid_program(errno: u32) -> Vec<u8> {
    errno_program(libc::SYS_getppid as u32, errno)
}

/// The same for system call `nr`.
fn errno_program(nr: u32, errno: u32) -> Vec<u8> {
    let ins = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut v = code.to_ne_bytes().to_vec();
        v.extend([jt, jf]);
        v.extend(k.to_ne_bytes());
        v
    };
    let mut p = Vec::new();
    p.extend(ins(0x20, 0, 0, 0)); // ld [nr]
    p.extend(ins(0x15, 0, 1, nr)); // jeq nr
    p.extend(ins(0x06, 0, 0, 0x0005_0000 | errno)); // ret ERRNO
    p.extend(ins(0x06, 0, 0, 0x7fff_0000)); // ret ALLOW
    p
}

#[test]
fn spawning_works_where_clone3_is_refused() {
    // Container runtimes' seccomp profiles fail clone3 with ENOSYS; nscell then falls back to
    // clone and resets the signal handlers itself. The refusing policy here is a sandbox's own:
    // the nscell binary runs inside one, and must still start its program, with SIGPIPE (which
    // nscell itself ignores, as a Rust program) back at its default.
    let mut sb = Sandbox::new(common::nscell_bin());
    sb.args(["--", "/bin/cat", "/proc/self/status"])
        .seccomp_program(&errno_program(libc::SYS_clone3 as u32, libc::ENOSYS as u32));
    let o = out(&mut sb);
    assert!(o.status.success(), "{}: {}", o.status, text_err(&o));
    let ignored = status_field(&text(&o), "SigIgn");
    let ignored = u64::from_str_radix(&ignored, 16).unwrap();
    assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "SIGPIPE still ignored");
}

#[test]
fn a_caller_supplied_bpf_program_is_applied() {
    let prog = getppid_program(libc::EXDEV as u32);
    let r = try_in(try_syscall(&["getppid"]).seccomp_program(&prog));
    assert!(r.starts_with(&format!("errno {} ", libc::EXDEV)), "{r}");
    // Stacked on the default policy: both apply.
    let r = try_in(try_syscall(&["bpf", "-1", "0", "0"]).seccomp_program(&prog));
    assert!(r.starts_with("errno 1 "), "{r}");
    // As the whole policy (bwrap --seccomp): bpf reaches the kernel again.
    let r =
        try_in(try_syscall(&["bpf", "-1", "0", "0"]).seccomp_program(&prog).default_seccomp(false));
    assert!(!r.starts_with("errno 1 "), "{r}");
    let s = text(&out(sh(STATUS).seccomp_program(&prog)));
    assert_eq!(status_field(&s, "Seccomp_filters"), "2");
    // A truncated program is refused before anything runs.
    let e = sh("true").seccomp_program(&prog[..12]).spawn().unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
}

#[test]
fn nested_user_namespaces_are_refused_on_request() {
    if !std::path::Path::new("/usr/bin/unshare").exists() {
        skip!("unshare(1) is not installed (util-linux)");
    }
    // Control: allowed by default.
    let o = out(&mut sh("unshare -U true && echo nested"));
    assert_eq!(text(&o), "nested\n");
    let o = out(sh("unshare -U true && echo nested").allow_nested_userns(false));
    assert!(!o.status.success(), "nested userns created: {}", String::from_utf8_lossy(&o.stdout));
    // The program is still uid 0, and raising the limit it can see (its own namespace's) does
    // not help: the sandbox's namespace, which it has no capability over, holds the limit.
    let o = out(sh(
        "id -u; echo 100 > /proc/sys/user/max_user_namespaces; unshare -U true && echo nested",
    )
    .allow_nested_userns(false));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "0\n");
    // The flag needs a user namespace.
    let e = sh("true")
        .namespaces(nscell::Namespaces::empty())
        .allow_nested_userns(false)
        .spawn()
        .unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
}

/// The limit and the nested maps are written through the caller's procfs, so a new root with
/// no /proc (bubblewrap's `--disable-userns --bind / /` has none) is no obstacle; and a passed
/// fd at any number does not get in the way of that procfs's fd.
#[test]
fn nested_user_namespaces_are_refused_in_a_new_root_without_proc() {
    let mut sb = sh("unshare -U true && echo nested; echo ran");
    sb.ro_bind("/usr", "/usr")
        .symlink("usr/bin", "/bin")
        .symlink("usr/lib", "/lib")
        .symlink("usr/lib64", "/lib64")
        .allow_nested_userns(false);
    let o = out(&mut sb);
    assert_eq!(text(&o), "ran\n", "{}", String::from_utf8_lossy(&o.stderr));
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let mut sb = sh("unshare -U true && echo nested; test -e /proc/self/fd/5 && echo passed");
    sb.ro_bind("/", "/").proc("/proc").map_fd(devnull, 5).allow_nested_userns(false);
    assert_eq!(text(&out(&mut sb)), "passed\n");
}

/// The nested user namespace keeps the ids the program has: also ids other than root, mapped
/// by the caller's own single-line map, and with an implicit user namespace (the caller's ids).
#[test]
fn a_nested_user_namespace_keeps_the_programs_ids() {
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    let o = out(sh("id -u; id -g")
        .uid_map(nscell::IdMap::new(1000, uid, 1))
        .gid_map(nscell::IdMap::new(2000, gid, 1))
        .allow_nested_userns(false));
    assert_eq!(text(&o), "1000\n2000\n");
    if !is_root() {
        // Unprivileged, only USER is added implicitly: the caller's own ids inside.
        let o = out(sh("id -u; id -g")
            .namespaces(nscell::Namespaces::PID | nscell::Namespaces::MOUNT)
            .allow_nested_userns(false));
        assert_eq!(text(&o), format!("{uid}\n{gid}\n"));
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nscell-hardening-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn landlock_blocks_writes_outside_the_allowed_paths() {
    let inside = scratch("ll-in");
    let outside = scratch("ll-out");
    let script = format!(
        "echo a > {0}/ok && echo written; echo b > {1}/no && echo escaped; cat {0}/ok",
        inside.display(),
        outside.display()
    );
    let mut sb = sh(&script);
    sb.landlock_path("/", landlock::Access::Execute)
        .landlock_path(&inside, landlock::Access::ReadWrite);
    let child = sb.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn();
    let child = child.expect("spawn");
    let status = child.landlock_status().expect("a status after spawn");
    let o = child.wait_with_output().expect("wait");
    if status.enforcement == landlock::Enforcement::None {
        skip!("this kernel enforces no Landlock (ABI {})", status.kernel_abi);
    }
    assert_eq!(String::from_utf8_lossy(&o.stdout), "written\na\n");
    assert!(!outside.join("no").exists());
    assert!(inside.join("ok").exists());
    assert!(status.kernel_abi >= 1);
    if status.kernel_abi >= 5 {
        assert_eq!(status.enforcement, landlock::Enforcement::Full);
    }
    // Without Landlock the same write goes through (the test can fail).
    let o = out(&mut sh(&format!("echo b > {}/no && echo escaped", outside.display())));
    assert_eq!(text(&o), "escaped\n");
    let _ = std::fs::remove_dir_all(inside);
    let _ = std::fs::remove_dir_all(outside);
}

#[test]
fn landlock_as_a_hard_requirement() {
    let mut sb = sh("true");
    sb.landlock_path("/", landlock::Access::Execute)
        .landlock_tcp_connect(&[])
        .landlock_compat_level(landlock::CompatLevel::HardRequirement);
    let abi = nscell_abi();
    match sb.spawn() {
        Ok(mut child) => {
            assert!(child.wait().unwrap().success());
            assert_eq!(child.landlock_status().unwrap().enforcement, landlock::Enforcement::Full);
            assert!(abi >= 4, "TCP rules reported enforced on ABI {abi}");
        }
        Err(e) => {
            assert!(abi < 5, "required Landlock refused on ABI {abi}: {e}");
        }
    }
}

fn nscell_abi() -> i32 {
    // SAFETY: a version query.
    let v = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, 0usize, 0usize, 1u32) };
    v.max(0) as i32
}

#[test]
fn landlock_tcp_connect_rules_are_enforced() {
    if nscell_abi() < 4 {
        skip!("TCP rules need Landlock ABI 4 (Linux 6.7)");
    }
    // In a new network namespace with lo up: connect to a closed port gives ECONNREFUSED when
    // allowed, EACCES when Landlock denies it.
    let script = "exec 3<>/dev/tcp/127.0.0.1/7 ; echo $?";
    let run = |ports: &[u16]| {
        let mut sb = Sandbox::new("/bin/bash");
        sb.args(["-c", script])
            .namespaces(nscell::Namespaces::DEFAULT | nscell::Namespaces::NET)
            .landlock_tcp_connect(ports);
        String::from_utf8_lossy(&out(&mut sb).stderr).into_owned()
    };
    if !std::path::Path::new("/bin/bash").exists() {
        skip!("bash is not installed");
    }
    let denied = run(&[]);
    assert!(denied.contains("Permission denied"), "{denied}");
    let allowed = run(&[7]);
    assert!(allowed.contains("Connection refused"), "{allowed}");
}

fn own_limit(r: rustix::process::Resource) -> (u64, u64) {
    let l = rustix::process::getrlimit(r);
    (l.current.unwrap_or(u64::MAX), l.maximum.unwrap_or(u64::MAX))
}

#[test]
fn every_rlimit_is_visible_in_proc_self_limits() {
    use rustix::process::Resource as R;
    // Values at or below the caller's hard limits, so an unprivileged run can set them.
    let cases: [(rlimit::Resource, R, &str, u64); 8] = [
        (rlimit::Resource::As, R::As, "Max address space", 3 << 30),
        (rlimit::Resource::Core, R::Core, "Max core file size", 0),
        (rlimit::Resource::Cpu, R::Cpu, "Max cpu time", 3600),
        (rlimit::Resource::Fsize, R::Fsize, "Max file size", 1 << 20),
        (rlimit::Resource::Nofile, R::Nofile, "Max open files", 200),
        (rlimit::Resource::Nproc, R::Nproc, "Max processes", 500),
        (rlimit::Resource::Stack, R::Stack, "Max stack size", 4 << 20),
        (rlimit::Resource::Memlock, R::Memlock, "Max locked memory", 1 << 16),
    ];
    let mut sb = sh("cat /proc/self/limits");
    let mut expect = Vec::new();
    for (r, raw, label, want) in cases {
        let (_, hard) = own_limit(raw);
        let hard = hard.min(want.saturating_mul(2).max(want));
        let soft = want.min(hard);
        sb.rlimit(r, soft, hard);
        expect.push((label, soft, hard));
    }
    let limits = text(&out(&mut sb));
    let show = |v: u64| if v == u64::MAX { "unlimited".to_string() } else { v.to_string() };
    for (label, soft, hard) in expect {
        let line = limits.lines().find(|l| l.starts_with(label)).unwrap();
        let fields: Vec<&str> = line[label.len()..].split_whitespace().collect();
        assert_eq!(fields[0], show(soft), "{line}");
        assert_eq!(fields[1], show(hard), "{line}");
    }
}

#[test]
fn fsize_nofile_and_as_limits_are_enforced() {
    let dir = scratch("rlimit");
    let file = dir.join("big");
    let o = out(sh(&format!("head -c 100000 /dev/zero > {}", file.display())).rlimit(
        rlimit::Resource::Fsize,
        4096,
        4096,
    ));
    assert!(!o.status.success());
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 4096);
    let _ = std::fs::remove_dir_all(dir);

    // dup3(0, 40): EBADF at or above RLIMIT_NOFILE.
    let r = try_in(try_syscall(&["dup3", "0", "40", "0"]).rlimit(rlimit::Resource::Nofile, 32, 32));
    assert!(r.starts_with(&format!("errno {} ", libc::EBADF)), "{r}");
    let r = try_in(&mut try_syscall(&["dup3", "0", "40", "0"]));
    assert_eq!(r, "ok 40");

    // 1 GiB of anonymous memory: fine without a limit, ENOMEM under 256 MiB of address space.
    let mmap = ["mmap", "0", "0x40000000", "3", "0x22", "-1", "0"];
    let r = try_in(&mut try_syscall(&mmap));
    assert!(r.starts_with("ok "), "{r}");
    let r = try_in(try_syscall(&mmap).rlimit(rlimit::Resource::As, 256 << 20, 256 << 20));
    assert!(r.starts_with(&format!("errno {} ", libc::ENOMEM)), "{r}");
}

#[test]
fn rlimits_cannot_raise_the_hard_limit_without_privilege() {
    if is_root() {
        skip!("root may raise hard limits");
    }
    let (_, hard) = own_limit(rustix::process::Resource::Nofile);
    if hard == u64::MAX {
        skip!("the caller's NOFILE hard limit is unlimited");
    }
    let e = sh("true").rlimit(rlimit::Resource::Nofile, hard, hard + 1).spawn().unwrap_err();
    assert_eq!(e.step(), Some(nscell::Step::Rlimit), "{e}");
}

/// An fd opened without O_CLOEXEC, as a careless caller (or a C library) leaves them.
fn leaky_fd(content: &str) -> (OwnedFd, PathBuf) {
    let dir = scratch(&format!("fd-{content}"));
    let path = dir.join("f");
    std::fs::write(&path, content).unwrap();
    let fd =
        rustix::fs::open(&path, rustix::fs::OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap();
    assert!(!rustix::io::fcntl_getfd(&fd).unwrap().contains(rustix::io::FdFlags::CLOEXEC));
    (fd, dir)
}

#[test]
fn an_inherited_fd_is_closed_unless_kept() {
    let (fd, dir) = leaky_fd("leak");
    let n = fd.as_raw_fd();
    // `test` is a shell builtin: /proc/self is the shell, which execve gave the fds.
    let check = format!("test -e /proc/self/fd/{n} && cat /proc/self/fd/{n} || echo closed");
    assert_eq!(text(&out(&mut sh(&check))), "closed\n");
    // Mapped: at the target only.
    let o = out(sh(&format!("cat /proc/self/fd/77; {check}")).map_fd(fd.try_clone().unwrap(), 77));
    assert_eq!(text(&o), "leakclosed\n");
    // And not CLOEXEC there: a program exec'd by the shell still has it.
    let o = out(sh("exec cat /proc/self/fd/77").map_fd(fd.try_clone().unwrap(), 77));
    assert_eq!(text(&o), "leak");
    assert_eq!(text(&out(sh(&check).keep_fd(fd))), "leak");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mapped_fds_may_swap_places() {
    let (a, da) = leaky_fd("A");
    let (b, db) = leaky_fd("B");
    let (na, nb) = (a.as_raw_fd(), b.as_raw_fd());
    // A closed fd (`keep_fd(9999)`) cannot be named any more: see the compile_fail example of
    // `Sandbox::keep_fd`.
    let e = sh("true").map_fd(a.try_clone().unwrap(), 1).spawn().unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    let e = sh("true").map_fd(a.try_clone().unwrap(), i32::MAX).spawn().unwrap_err();
    assert!(e.is_invalid_input(), "{e}");
    // A target above RLIMIT_NOFILE: the child's dup3 fails and says which step.
    let e = sh("true").map_fd(a.try_clone().unwrap(), 1 << 29).spawn().unwrap_err();
    assert_eq!(e.step(), Some(nscell::Step::PassFds), "{e}");
    let o =
        out(sh(&format!("cat /proc/self/fd/{na} /proc/self/fd/{nb}")).map_fd(a, nb).map_fd(b, na));
    assert_eq!(text(&o), "BA");
    let _ = std::fs::remove_dir_all(da);
    let _ = std::fs::remove_dir_all(db);
}

#[test]
fn the_filter_is_compiled_once_per_sandbox() {
    // Reusing a Sandbox: the second spawn gives the same result with the cached filter, and a
    // changed setting is taken into account.
    let mut sb = try_syscall(&["bpf", "-1", "0", "0"]);
    assert!(try_in(&mut sb).starts_with("errno 1 "));
    assert!(try_in(&mut sb).starts_with("errno 1 "));
    sb.default_seccomp(false);
    assert!(!try_in(&mut sb).starts_with("errno 1 "));
}

// The nscell binary's hardening options.

fn nscell_sh(script: &str) -> Output {
    std::process::Command::new("/bin/sh")
        .args(["-c", script])
        .env("NSCELL", common::nscell_bin())
        .env("TRY", helper())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn cli_cap_drop_and_cap_add_apply_in_order() {
    let s = text(&nscell_sh("$NSCELL --cap-drop ALL -- cat /proc/self/status"));
    assert_eq!(status_field(&s, "CapEff"), caps_hex(0));
    assert_eq!(status_field(&s, "CapBnd"), caps_hex(0));
    let s = text(&nscell_sh(
        "$NSCELL --cap-drop ALL --cap-add CAP_SYS_ADMIN --cap-add net_admin -- cat /proc/self/status",
    ));
    let want = Capabilities::SYS_ADMIN | Capabilities::NET_ADMIN;
    assert_eq!(status_field(&s, "CapEff"), caps_hex(want.bits()));
    let o = nscell_sh("$NSCELL --cap-drop CAP_SYS_ADMIN -- hostname x");
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    // A non-root uid inside: added capabilities come through the ambient set.
    let s = text(&nscell_sh("$NSCELL --uid 1000 --cap-add CAP_NET_RAW -- cat /proc/self/status"));
    assert_eq!(status_field(&s, "CapAmb"), caps_hex(Capabilities::NET_RAW.bits()));
    assert_eq!(status_field(&s, "CapEff"), caps_hex(Capabilities::NET_RAW.bits()));
    let o = nscell_sh("$NSCELL --cap-drop CAP_BOGUS true");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn cli_seccomp_fd_replaces_and_add_seccomp_fd_stacks() {
    let dir = scratch("cli-seccomp");
    let prog = dir.join("prog.bpf");
    std::fs::write(&prog, getppid_program(libc::EXDEV as u32)).unwrap();
    let run = |opts: &str, call: &str| {
        let o = nscell_sh(&format!("$NSCELL {opts} -- $TRY {call} 5<{}", prog.display()));
        text(&o).trim().to_string()
    };
    let exdev = format!("errno {} ", libc::EXDEV);
    assert!(run("--seccomp 5", "getppid").starts_with(&exdev));
    // --seccomp is the whole policy: bpf reaches the kernel.
    assert!(!run("--seccomp 5", "bpf -1 0 0").starts_with("errno 1 "));
    assert!(run("--add-seccomp-fd 5", "getppid").starts_with(&exdev));
    assert!(run("--add-seccomp-fd 5", "bpf -1 0 0").starts_with("errno 1 "));
    assert!(!run("--no-default-seccomp", "bpf -1 0 0").starts_with("errno 1 "));
    assert!(run("", "bpf -1 0 0").starts_with("errno 1 "));
    let _ = std::fs::remove_dir_all(dir);
}

/// `nscell OPTS -- try_syscall getppid` with `stdin` as nscell's fd 0, bounded: at most 10 s
/// (timeout(1)) and 2 GB of address space, so a read without end fails instead of hanging or
/// eating the machine's memory.
fn nscell_try_getppid(opts: &[&str], stdin: std::process::Stdio, piped_out: bool) -> Output {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "ulimit -v 2000000; exec timeout -s KILL 10 \"$@\"", "sh"])
        .arg(common::nscell_bin())
        .args(opts)
        .arg("--")
        .arg(helper())
        .arg("getppid")
        .stdin(stdin)
        .stderr(std::process::Stdio::piped());
    if piped_out {
        cmd.stdout(std::process::Stdio::piped());
    }
    cmd.output().unwrap()
}

#[test]
fn cli_seccomp_fd_is_read_from_the_fd_itself_and_bounded() {
    use std::io::{Seek, Write};
    let prog = getppid_program(libc::EXDEV as u32);
    let exdev = format!("errno {} ", libc::EXDEV);
    let applied = |o: &Output, what: &str| {
        assert!(text(o).starts_with(&exdev), "{what}: {o:?}");
    };
    // A pipe.
    let mut child = std::process::Command::new(common::nscell_bin())
        .args(["--add-seccomp-fd", "0", "--"])
        .arg(helper())
        .arg("getppid")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&prog).unwrap();
    applied(&child.wait_with_output().unwrap(), "a pipe");
    // A socket (opening /proc/self/fd/N of a socket fails with ENXIO).
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.write_all(&prog).unwrap();
    drop(a);
    applied(&nscell_try_getppid(&["--seccomp", "0"], OwnedFd::from(b).into(), true), "a socket");
    // A file, from its current offset: the 3 bytes before it would make the program invalid.
    let dir = scratch("cli-seccomp-offset");
    let path = dir.join("prog");
    std::fs::write(&path, [b"xyz".as_slice(), &prog].concat()).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    f.seek(std::io::SeekFrom::Start(3)).unwrap();
    applied(&nscell_try_getppid(&["--add-seccomp-fd", "0"], f.into(), true), "a file at offset 3");
    // Exactly the kernel's limit of 4096 instructions is read whole.
    let mut big = prog[..8].repeat(4092); // ld [nr], again and again
    big.extend_from_slice(&prog); // and the 4 instructions of the program
    assert_eq!(big.len(), 32768);
    std::fs::write(&path, &big).unwrap();
    let f = std::fs::File::open(&path).unwrap();
    let o = nscell_try_getppid(&["--add-seccomp-fd", "0"], f.into(), true);
    applied(&o, "4096 instructions");
    // /dev/zero has no end: past the limit it is a usage error, at once.
    let start = std::time::Instant::now();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let o = nscell_try_getppid(&["--seccomp", "0"], zero.into(), true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "/dev/zero: {err}");
    assert!(err.contains("--seccomp 0: the seccomp program is longer than 32768 bytes"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
    // fd 1, the write end of a pipe (`nscell --seccomp 1 -- true | cat`): refused at once, not a
    // reader waiting for nscell itself to write.
    let start = std::time::Instant::now();
    let o = nscell_try_getppid(&["--seccomp", "1"], std::process::Stdio::null(), true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "--seccomp 1: {err}");
    assert_eq!(
        err,
        "nscell: --seccomp 1: cannot read the seccomp program: fd 1 is not open for reading \
         (see nscell --help)\n"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn cli_deny_io_uring() {
    if std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").is_ok_and(|v| v.trim() == "2")
    {
        skip!("io_uring is disabled for everyone here (kernel.io_uring_disabled=2)");
    }
    for call in ["io_uring_setup 1 buf", "io_uring_enter -1 0 0 0", "io_uring_register -1 0 0 0"] {
        let denied = text(&nscell_sh(&format!("$NSCELL --deny-io-uring -- $TRY {call}")));
        assert!(denied.starts_with("errno 1 "), "{call}: {denied}");
        // Control: the default policy lets it reach the kernel.
        let allowed = text(&nscell_sh(&format!("$NSCELL -- $TRY {call}")));
        assert!(!allowed.starts_with("errno 1 "), "{call}: {allowed}");
    }
    // Without the default policy too (it was silently ignored there).
    let call = "io_uring_setup 1 buf";
    let denied =
        text(&nscell_sh(&format!("$NSCELL --no-default-seccomp --deny-io-uring -- $TRY {call}")));
    assert!(denied.starts_with("errno 1 "), "{denied}");
    let allowed = text(&nscell_sh(&format!("$NSCELL --no-default-seccomp -- $TRY {call}")));
    assert!(!allowed.starts_with("errno 1 "), "{allowed}");
}

/// Listens on 127.0.0.1 at each port given, then connects to each: prints `PORT:ok` or
/// `PORT:ERROR` for each, or dies with `bind PORT: ERROR`.
const TCP_SCRIPT: &str = r#"use Socket;
sub l { my $p = shift; socket(my $s, PF_INET, SOCK_STREAM, 0) or die;
  bind($s, pack_sockaddr_in($p, INADDR_LOOPBACK)) or die "bind $p: $!\n"; listen($s, 5); $s }
sub c { my $p = shift; socket(my $s, PF_INET, SOCK_STREAM, 0) or die;
  connect($s, pack_sockaddr_in($p, INADDR_LOOPBACK)) ? "ok" : "$!" }
my @l = map { l($_) } @ARGV; print join(" ", map { "$_:" . c($_) } @ARGV), "\n";"#;

#[test]
fn cli_landlock_tcp_bind_and_connect() {
    if nscell_abi() < 4 {
        skip!("TCP rules need Landlock ABI 4 (Linux 6.7)");
    }
    if !std::path::Path::new("/usr/bin/perl").exists() {
        skip!("perl is not installed");
    }
    // In a new network namespace, where only loopback is up: nothing leaves the machine.
    let run = |opts: &str, ports: &str| {
        let o = std::process::Command::new(common::nscell_bin())
            .args(["--unshare-net"])
            .args(opts.split_whitespace())
            .args(["--", "/usr/bin/perl", "-e", TCP_SCRIPT])
            .args(ports.split_whitespace())
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        (out + &String::from_utf8_lossy(&o.stderr)).trim().to_string()
    };
    // Control: no rule, every port.
    assert_eq!(run("", "7000 7001"), "7000:ok 7001:ok");
    assert_eq!(run("--landlock-tcp-connect 7000", "7000 7001"), "7000:ok 7001:Permission denied");
    assert_eq!(
        run("--landlock-tcp-connect 7000 --landlock-tcp-connect 7001", "7000 7001 7002"),
        "7000:ok 7001:ok 7002:Permission denied"
    );
    assert_eq!(
        run("--landlock-tcp-connect none", "7000"),
        "7000:Permission denied",
        "'none' allows no connect"
    );
    assert_eq!(run("--landlock-tcp-bind 7000", "7000"), "7000:ok");
    assert_eq!(run("--landlock-tcp-bind 7000", "7000 7001"), "bind 7001: Permission denied");
    assert_eq!(run("--landlock-tcp-bind none", "7000"), "bind 7000: Permission denied");
    // Port rules restrict no file access.
    assert_eq!(run("--landlock-tcp-bind 7000 --landlock-required", "7000"), "7000:ok");
}

#[test]
fn cli_landlock_required_fails_where_landlock_is_missing() {
    // nscell inside a sandbox whose seccomp policy makes Landlock look absent (ENOSYS), as on
    // a kernel without it.
    let run = |opts: &[&str]| {
        let mut sb = Sandbox::new(common::nscell_bin());
        sb.args(opts).args(["--landlock-exec", "/", "--", "/bin/sh", "-c", "exit 42"]);
        let nr = libc::SYS_landlock_create_ruleset as u32;
        out(sb.seccomp_program(&errno_program(nr, libc::ENOSYS as u32)))
    };
    // Best effort: the program runs unrestricted.
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(42), "{o:?}");
    let o = run(&["--landlock-required"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.starts_with("nscell: ") && err.contains("Landlock"), "{err}");
}

#[test]
fn cli_disable_userns() {
    if !std::path::Path::new("/usr/bin/unshare").exists() {
        skip!("unshare(1) is not installed (util-linux)");
    }
    let o = nscell_sh("$NSCELL --disable-userns -- unshare -U true");
    assert!(!o.status.success(), "{o:?}");
    assert_eq!(text(&nscell_sh("$NSCELL -- unshare -U echo ok")), "ok\n");
}

#[test]
fn cli_landlock_rlimit_and_keep_fd() {
    let inside = scratch("cli-ll-in");
    let outside = scratch("cli-ll-out");
    let o = nscell_sh(&format!(
        "$NSCELL --landlock-exec / --landlock-rw {0} -- sh -c 'echo a > {0}/f && echo in; \
         echo b > {1}/f && echo out'",
        inside.display(),
        outside.display()
    ));
    if crate::nscell_abi() >= 1 {
        assert_eq!(String::from_utf8_lossy(&o.stdout), "in\n", "{o:?}");
        assert!(!outside.join("f").exists());
    }
    let s =
        text(&nscell_sh("$NSCELL --rlimit NOFILE=40:50 --rlimit CORE=0 -- cat /proc/self/limits"));
    let line = s.lines().find(|l| l.starts_with("Max open files")).unwrap();
    assert_eq!(line.split_whitespace().collect::<Vec<_>>()[3..5], ["40", "50"], "{line}");
    assert!(s.lines().any(|l| l.starts_with("Max core file size") && l.contains(" 0 ")), "{s}");
    let file = inside.join("f");
    let o = nscell_sh(&format!("$NSCELL --keep-fd 5 -- cat /proc/self/fd/5 5<{}", file.display()));
    assert_eq!(text(&o), "a\n");
    let o = nscell_sh(&format!(
        "$NSCELL -- sh -c 'test -e /proc/self/fd/5 || echo closed' 5<{}",
        file.display()
    ));
    assert_eq!(text(&o), "closed\n");
    let _ = std::fs::remove_dir_all(inside);
    let _ = std::fs::remove_dir_all(outside);
}

/// The `n` lowest fd numbers that are free now (found by dup'ing `fd` onto them, then closing).
fn lowest_free_numbers(fd: &OwnedFd, n: usize) -> Vec<i32> {
    (0..n)
        .map(|_| rustix::io::fcntl_dupfd_cloexec(fd, 3).unwrap())
        .collect::<Vec<OwnedFd>>()
        .iter()
        .map(|f| f.as_raw_fd())
        .collect()
}

#[test]
fn passed_fds_may_land_on_the_numbers_nscell_uses_for_itself() {
    // The lowest free numbers are where nscell's own fds (Landlock ruleset, pipes) go at spawn:
    // map the same file onto all of them.
    let (fd, dir) = leaky_fd("X");
    let free = lowest_free_numbers(&fd, 12);
    let mut sb = Sandbox::new("/bin/sh");
    let script: String = free.iter().map(|t| format!("cat /proc/self/fd/{t}; ")).collect();
    sb.args(["-c", &script]).landlock_path("/", landlock::Access::Execute);
    for &t in &free {
        sb.map_fd(rustix::io::fcntl_dupfd_cloexec(&fd, 1000).unwrap(), t);
    }
    assert_eq!(text(&out(&mut sb)), "X".repeat(free.len()));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hardening_applies_on_the_handshake_path_too() {
    // Several id ranges: the parent writes the maps while the child waits (root writes them
    // itself; anyone else goes through newuidmap with their subordinate ids).
    let (fd, dir) = leaky_fd("H");
    let free = lowest_free_numbers(&fd, 12);
    let mut sb = sh(&format!(
        "cat /proc/self/fd/{}; {STATUS}",
        free.iter().map(|t| t.to_string()).collect::<Vec<_>>().join("; cat /proc/self/fd/")
    ));
    if let Err(why) = common::multi_range_maps(&mut sb) {
        let _ = std::fs::remove_dir_all(dir);
        skip!("{why}");
    }
    sb.keep_capabilities(Capabilities::CHOWN);
    sb.landlock_path("/", landlock::Access::Execute);
    sb.rlimit(rlimit::Resource::Nofile, 100, 100);
    for &t in &free {
        sb.map_fd(rustix::io::fcntl_dupfd_cloexec(&fd, 1000).unwrap(), t);
    }
    let s = text(&out(&mut sb));
    assert!(s.starts_with(&"H".repeat(free.len())), "{s}");
    assert_eq!(status_field(&s, "CapEff"), caps_hex(Capabilities::CHOWN.bits()));
    assert_eq!(status_field(&s, "NoNewPrivs"), "1");
    assert_eq!(status_field(&s, "Seccomp"), "2");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn hardening_never_changes_the_callers_dumpability() {
    // The child shares the caller's mm: a credential change that reset dumpability would show
    // here (capset, landlock_restrict_self and the nested user namespace are credential changes).
    let dumpable = || rustix::process::dumpable_behavior().unwrap();
    let before = dumpable();
    let mut sb = sh("true");
    sb.drop_capabilities(Capabilities::ALL)
        .landlock_path("/", landlock::Access::Execute)
        .allow_nested_userns(false);
    assert!(sb.status().unwrap().success());
    let mut sb = Sandbox::new("/bin/sh");
    let (euid, egid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    sb.args(["-c", "true"])
        .uid_map(IdMap::new(1000, euid, 1))
        .gid_map(IdMap::new(1000, egid, 1))
        .add_capabilities(Capabilities::NET_ADMIN);
    assert!(sb.status().unwrap().success());
    assert_eq!(dumpable(), before);
}

#[test]
fn no_setup_fd_reaches_the_program() {
    // The shell lists its own fds (its glob opens the directory: that one shows too). Landlock's
    // ruleset and every pipe nscell used are gone: the list is the same with and without them.
    let list = "echo /proc/self/fd/*";
    let plain = text(&out(sh(list).default_seccomp(false)));
    let mut sb = sh(list);
    sb.landlock_path("/", landlock::Access::Execute)
        .seccomp_program(&getppid_program(libc::EXDEV as u32))
        .drop_capabilities(Capabilities::ALL);
    assert_eq!(text(&out(&mut sb)), plain);
    assert_eq!(plain.split_whitespace().count(), 4, "{plain}");
}

#[test]
fn landlock_paths_mean_what_the_sandbox_sees_in_a_new_root() {
    if nscell_abi() < 1 {
        skip!("this kernel has no Landlock");
    }
    // /scratch exists only inside the new root, and the root itself is a tmpfs the caller never
    // sees: the rules must be resolved there, not in the caller's view.
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "echo a > /scratch/ok && echo written; echo b > /tmp/no && echo escaped"])
        .ro_bind("/usr", "/usr")
        .symlink("usr/bin", "/bin")
        .symlink("usr/lib", "/lib")
        .symlink("usr/lib64", "/lib64")
        .tmpfs("/scratch")
        .tmpfs("/tmp")
        .landlock_path("/", landlock::Access::Execute)
        .landlock_path("/scratch", landlock::Access::ReadWrite);
    let o = out(&mut sb);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "written\n", "{}", text_err(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"), "{}", text_err(&o));
    // A rule on a path missing inside names it.
    let mut sb = Sandbox::new("/bin/true");
    sb.ro_bind("/usr", "/usr").landlock_path("/nonexistent-inside", landlock::Access::ReadOnly);
    let err = sb.spawn().unwrap_err();
    assert_eq!(err.step(), Some(nscell::Step::Landlock), "{err}");
    assert_eq!(err.path(), Some(std::path::Path::new("/nonexistent-inside")), "{err}");
}

#[test]
fn landlock_paths_mean_the_sandboxs_own_proc() {
    if nscell_abi() < 1 {
        skip!("this kernel has no Landlock");
    }
    // The default sandbox mounts a fresh /proc over the host's: a rule on /proc must cover that
    // one (it has inodes of its own), and nothing outside the rules is readable.
    let run = |proc: bool| {
        let mut sb = Sandbox::new("/usr/bin/head");
        sb.args(["-n1", "/proc/self/status", "/etc/hostname"])
            .mount_proc(proc)
            .landlock_path("/usr", landlock::Access::Execute)
            .landlock_path("/proc", landlock::Access::ReadOnly);
        out(&mut sb)
    };
    for proc in [true, false] {
        let o = run(proc);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("Name:\thead"), "fresh /proc {proc}: {stdout}{}", text_err(&o));
        assert!(
            text_err(&o).contains("/etc/hostname") && text_err(&o).contains("Permission denied"),
            "fresh /proc {proc}: {}",
            text_err(&o)
        );
        // A missing path is the same error whichever side opens it: not "unsupported".
        let err = Sandbox::new("/bin/true")
            .mount_proc(proc)
            .landlock_path("/nonexistent-nscell", landlock::Access::ReadOnly)
            .spawn()
            .unwrap_err();
        assert_eq!(err.step(), Some(nscell::Step::Landlock), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        assert_eq!(err.path(), Some(std::path::Path::new("/nonexistent-nscell")), "{err}");
        assert!(err.to_string().contains("Landlock rule for /nonexistent-nscell"), "{err}");
    }
}

#[test]
fn relative_landlock_paths_are_relative_to_the_programs_directory() {
    if nscell_abi() < 1 {
        skip!("this kernel has no Landlock");
    }
    let dir = scratch("ll-rel");
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/f"), "inside\n").unwrap();
    // Opened by the parent (no fresh /proc) and by the child (a fresh /proc): the same answer.
    for proc in [false, true] {
        let mut sb = Sandbox::new("/usr/bin/cat");
        sb.args(["data/f", "/etc/hostname"])
            .current_dir(&dir)
            .mount_proc(proc)
            .landlock_path("/usr", landlock::Access::Execute)
            .landlock_path("data", landlock::Access::ReadOnly);
        let o = out(&mut sb);
        assert_eq!(String::from_utf8_lossy(&o.stdout), "inside\n", "{proc}: {}", text_err(&o));
        assert!(text_err(&o).contains("Permission denied"), "{proc}: {}", text_err(&o));
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn text_err(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn nested_user_namespaces_are_refused_with_an_init_too() {
    if !std::path::Path::new("/usr/bin/unshare").exists() {
        skip!("unshare(1) is not installed (util-linux)");
    }
    // The init is non-dumpable; the limit must still be set (the nested namespace's maps are
    // written through /proc/self) without host root. The program runs, as uid 0, under the
    // init, and cannot create a user namespace. The init now shares the program's (nested)
    // user namespace, where the program holds every capability: its memory stays closed.
    let script = "unshare -U true; echo $?; id -u; [ $$ != 1 ] && echo under-init; \
                  (: </proc/1/mem) 2>/dev/null && echo mem-open || echo mem-denied";
    let o = out(sh(script).init(true).allow_nested_userns(false));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o), "1\n0\nunder-init\nmem-denied\n", "{}", text_err(&o));
    assert!(text_err(&o).contains("No space left on device"), "{}", text_err(&o));
    // The same from the command line.
    let o = nscell_sh("$NSCELL --init --disable-userns -- sh -c 'unshare -U true || echo refused'");
    assert!(o.status.success(), "{o:?}");
    assert_eq!(text(&o), "refused\n", "{}", text_err(&o));
    assert!(text_err(&o).contains("No space left on device"), "{}", text_err(&o));
}

/// Perl that forks children (each sleeps) until a fork fails or 200 run, prints how many ran,
/// and ends them.
const FORK_UNTIL_REFUSED: &str = "my @k; while (@k < 200) { my $p = fork(); last unless \
    defined $p; if (!$p) { sleep 60; exit 0 } push @k, $p } print scalar(@k), qq(\\n); \
    kill 9, @k; waitpid($_, 0) for @k;";

#[test]
fn rlimit_nproc_counts_the_processes_of_the_uid_in_the_sandboxs_user_namespace() {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt;
    const N: u64 = 25;
    const M: usize = 20;
    for tool in ["/usr/bin/perl", "/usr/bin/setpriv"] {
        if !std::path::Path::new(tool).exists() {
            skip!("{tool} is not installed");
        }
    }
    // Host root (and CAP_SYS_RESOURCE or CAP_SYS_ADMIN in the initial user namespace) is exempt
    // from RLIMIT_NPROC: a kernel rule. Root checks it, then tests a uid the limit applies to:
    // a subordinate one its program switches to inside (with setpriv; root inside may).
    let mut inside = Sandbox::new("/usr/bin/perl");
    inside.args(["-e", FORK_UNTIL_REFUSED]).rlimit(rlimit::Resource::Nproc, N, N);
    let (uid, switch) = if is_root() {
        let n: u64 = text(&out(&mut inside)).trim().parse().unwrap();
        assert!(n > N, "host root was limited to {n} processes");
        // Past the harness's capture: what this run checks is always seen.
        let _ = writeln!(
            std::io::stderr(),
            "host root is exempt from RLIMIT_NPROC (it forked {n} with NPROC={N}); checking a \
             subordinate uid that the program switches to inside"
        );
        let mut sb = Sandbox::new("/usr/bin/setpriv");
        let (start, count) = match common::multi_range_maps(&mut sb) {
            Ok(range) => range,
            Err(why) => skip!("{why}"),
        };
        (start + count - 1, Some(count))
    } else {
        (rustix::process::getuid().as_raw(), None)
    };
    // `perl` in `sb`, as inside uid `id` first when given.
    let program = |sb: &mut Sandbox, id: Option<u32>| {
        if let Some(id) = id {
            let id = id.to_string();
            sb.args(["--reuid", &id, "--regid", &id, "--clear-groups", "/usr/bin/perl"]);
        }
        sb.args(["-e", FORK_UNTIL_REFUSED]).rlimit(rlimit::Resource::Nproc, N, N);
        let o = out(sb);
        text(&o).trim().parse::<u64>().unwrap_or_else(|_| panic!("{o:?}"))
    };
    // M other processes of that uid on the host.
    let mut others: Vec<std::process::Child> = (0..M)
        .map(|_| {
            std::process::Command::new("/bin/sleep")
                .arg("60")
                .uid(uid)
                .gid(uid)
                .stdin(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // In a sandbox with its own user namespace only its own processes count: the program and
    // N-1 children, whatever the uid runs on the host (or in other sandboxes).
    let mut sb = Sandbox::new(if switch.is_some() { "/usr/bin/setpriv" } else { "/usr/bin/perl" });
    if switch.is_some() {
        common::multi_range_maps(&mut sb).unwrap();
    }
    let in_sandbox = program(&mut sb, switch);
    // Without a user namespace, every process of the real uid on the host counts.
    let mut plain =
        Sandbox::new(if switch.is_some() { "/usr/bin/setpriv" } else { "/usr/bin/perl" });
    plain.namespaces(nscell::Namespaces::empty());
    let on_host = program(&mut plain, switch.map(|_| uid));
    for o in &mut others {
        let _ = o.kill();
        let _ = o.wait();
    }
    assert_eq!(in_sandbox, N - 1, "uid {uid}, {M} other processes on the host");
    assert!(on_host < N - M as u64, "uid {uid}: {on_host} forks beside {M} other processes");
}

/// A passed fd whose target number is the one the setup's own exec channel had: the channel
/// moves out of its way, and a setup failure after that (here: no such program) is reported to
/// the caller, never written into the passed fd.
#[test]
fn a_setup_failure_is_never_written_into_a_passed_fd() {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
    let mut sb = Sandbox::new("/nonexistent/program");
    // A timeout takes the handshake path, which has the exec channel.
    sb.timeout(std::time::Duration::from_secs(60));
    for target in 3..40 {
        sb.map_fd(w.try_clone().unwrap(), target);
    }
    let e = sb.spawn().unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
    drop(sb);
    drop(w);
    let mut buf = [0u8; 64];
    let n = rustix::io::read(&r, &mut buf).unwrap();
    assert_eq!(n, 0, "the failure record went into the passed fd: {:?}", &buf[..n]);
}

#[test]
fn a_kept_file_is_the_sandboxs_to_pass_and_to_close() {
    let dir = scratch("owned-fd");
    let path = dir.join("f");
    std::fs::write(&path, "owned").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let n = file.as_raw_fd();
    let names_the_file =
        || std::fs::read_link(format!("/proc/self/fd/{n}")).is_ok_and(|link| link == path);
    let mut sb = sh(&format!("cat /proc/self/fd/{n}"));
    sb.keep_fd(file);
    // At its own number in the program, for every spawn of the sandbox.
    assert_eq!(text(&out(&mut sb)), "owned");
    assert_eq!(text(&out(&mut sb)), "owned");
    assert!(names_the_file(), "the sandbox closed fd {n} while it lives");
    drop(sb);
    // (Another test's thread may reuse the number: it then names another file.)
    assert!(!names_the_file(), "fd {n} is still open after the Sandbox was dropped");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn each_child_says_what_landlock_enforced_at_its_own_spawn() {
    let mut sb = sh("true");
    let mut plain = sb.spawn().unwrap();
    assert_eq!(plain.landlock_status(), None, "no Landlock rule, no status");
    sb.landlock_path("/", landlock::Access::Execute);
    let mut ruled = sb.spawn().unwrap();
    let status = ruled.landlock_status().expect("a status from a spawn with Landlock rules");
    assert_eq!(status.kernel_abi, nscell_abi());
    if status.kernel_abi == 0 {
        assert_eq!(status.enforcement, landlock::Enforcement::None);
    } else {
        assert_ne!(status.enforcement, landlock::Enforcement::None);
    }
    // A later spawn's status is its own: the first child's is unchanged.
    assert_eq!(plain.landlock_status(), None);
    assert!(plain.wait().unwrap().success());
    assert!(ruled.wait().unwrap().success());
}
