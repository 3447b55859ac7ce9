//! The bubblewrap personality's behaviours that bubblewrap's own suite checks and its callers
//! rely on, each asserted as a caller sees it: through a symlink named `bwrap` to this crate's
//! nscell and, as a check of the expectation itself, through /usr/bin/bwrap when it is there.
//! (bubblewrap's suite itself is run with tests/bwrap-suite.sh; CI fetches nothing.)
mod common;

use common::{TempDir, bwraps, show};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Whether `bwrap` is nscell (the symlink), not the real bubblewrap.
fn nscell(bwrap: &Path) -> bool {
    bwrap.is_symlink()
}

/// Runs `bwrap args...` through /bin/sh, which opens `redirects` (`3<FILE`) for it first.
fn run_with(bwrap: &Path, redirects: &str, args: &[&str]) -> Output {
    let script = format!("exec \"$@\" {redirects}");
    Command::new("/bin/sh")
        .args(["-c", &script, "sh"])
        .arg(bwrap)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The `Cap*:` lines of the program's /proc/self/status, as `name value` pairs.
fn caps(out: &Output) -> Vec<(String, u64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Cap"))
        .filter_map(|l| l.split_once(":\t"))
        .map(|(k, v)| (k.to_string(), u64::from_str_radix(v.trim(), 16).unwrap()))
        .collect()
}

fn cap(caps: &[(String, u64)], name: &str) -> u64 {
    caps.iter().find(|(k, _)| k == name).map(|(_, v)| *v).unwrap_or_else(|| panic!("{name}"))
}

/// The capabilities this kernel has: the bounding set of a task that lost none.
fn all_caps() -> u64 {
    let last: u32 =
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap().trim().parse().unwrap();
    (1u64 << (last + 1)) - 1
}

/// The caller's own effective capabilities: what a root caller's sandbox starts from.
fn own_caps() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:\t")).unwrap();
    u64::from_str_radix(eff.trim(), 16).unwrap()
}

/// bubblewrap's capabilities are the caller's: a root caller's effective set, none at all
/// for any other caller (in every set, the bounding set included, so no execve of a file with
/// capabilities gets one back), with --cap-add on top. A non-root uid inside has none after
/// execve unless --cap-add raised them.
#[test]
fn capabilities_are_the_callers_and_follow_the_uid_inside() {
    let dir = TempDir::new("bwrap-caps");
    let status = ["cat", "/proc/self/status"];
    let root = common::is_root();
    for bwrap in bwraps(&dir) {
        let base = ["--unshare-user", "--bind", "/", "/"];
        let uid1000 = [&base[..], &["--uid", "1000"], &status].concat();
        let out = run_with(&bwrap, "", &uid1000);
        assert!(out.status.success(), "{}", show("uid 1000", &bwrap, &out));
        let got = caps(&out);
        for set in ["Inh", "Prm", "Eff", "Amb"] {
            assert_eq!(cap(&got, set), 0, "Cap{set} {}", show("uid 1000", &bwrap, &out));
        }
        // bubblewrap leaves a root caller's bounding set to a non-root uid inside (which has
        // no capability to use it with); nscell empties it for any caller.
        if !root || nscell(&bwrap) {
            assert_eq!(cap(&got, "Bnd"), 0, "CapBnd {}", show("uid 1000", &bwrap, &out));
        }

        let added = [&base[..], &["--uid", "1000", "--cap-add", "CAP_NET_ADMIN"], &status].concat();
        let out = run_with(&bwrap, "", &added);
        assert!(out.status.success(), "{}", show("--cap-add", &bwrap, &out));
        let got = caps(&out);
        let net_admin = 1 << 12;
        // For a root caller bubblewrap raises all of the caller's capabilities as ambient
        // once --cap-add is used; nscell only the ones added.
        for set in ["Prm", "Eff", "Bnd", "Amb"].iter().filter(|_| !root || nscell(&bwrap)) {
            assert_eq!(cap(&got, set), net_admin, "Cap{set} {}", show("--cap-add", &bwrap, &out));
        }

        let uid0 = [&base[..], &["--uid", "0"], &status].concat();
        let out = run_with(&bwrap, "", &uid0);
        assert!(out.status.success(), "{}", show("uid 0", &bwrap, &out));
        let got = caps(&out);
        let want = if root { own_caps() & all_caps() } else { 0 };
        for set in ["Prm", "Eff", "Bnd"] {
            assert_eq!(cap(&got, set), want, "Cap{set} {}", show("uid 0", &bwrap, &out));
        }

        // --cap-add ALL gives uid 0 inside every capability whoever the caller is.
        let all = [&base[..], &["--uid", "0", "--cap-add", "ALL"], &status].concat();
        let out = run_with(&bwrap, "", &all);
        assert!(out.status.success(), "{}", show("--cap-add ALL", &bwrap, &out));
        let got = caps(&out);
        assert_eq!(cap(&got, "Eff"), all_caps(), "CapEff {}", show("--cap-add ALL", &bwrap, &out));
    }
}

/// One classic BPF instruction, as `struct sock_filter` is laid out.
fn insn(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..2].copy_from_slice(&code.to_ne_bytes());
    b[2] = jt;
    b[3] = jf;
    b[4..].copy_from_slice(&k.to_ne_bytes());
    b
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// A seccomp program that answers each of `syscalls` with `errno` and allows the rest (any
/// other architecture is allowed: the program is tested on this one).
fn deny(syscalls: &[i64], errno: i32) -> Vec<u8> {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const ALLOW: u32 = 0x7fff_0000;
    const ERRNO: u32 = 0x0005_0000;
    let n = syscalls.len() as u8;
    let mut p = vec![insn(LD_W_ABS, 0, 0, 4), insn(JEQ_K, 0, n + 1, AUDIT_ARCH)];
    p.push(insn(LD_W_ABS, 0, 0, 0));
    for (i, &nr) in syscalls.iter().enumerate() {
        // Equal: jump over the rest of the comparisons and the allow to the errno return.
        p.push(insn(JEQ_K, n - i as u8, 0, nr as u32));
    }
    p.push(insn(RET_K, 0, 0, ALLOW));
    p.push(insn(RET_K, 0, 0, ERRNO | errno as u32));
    p.concat()
}

/// Stacked programs as Flatpak stacks them: the first one refuses the `seccomp` system call
/// (allowlists allow `prctl` only), and the second one still goes on and holds.
#[test]
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn a_second_seccomp_program_goes_on_after_one_that_refuses_seccomp() {
    let dir = TempDir::new("bwrap-seccomp-stack");
    let first = dir.join("first");
    let second = dir.join("second");
    std::fs::write(&first, deny(&[libc::SYS_seccomp], libc::ENOSYS)).unwrap();
    let chmods = [libc::SYS_fchmodat, libc::SYS_fchmod, 452 /* fchmodat2 */];
    #[cfg(target_arch = "x86_64")]
    let chmods = [&chmods[..], &[libc::SYS_chmod]].concat();
    std::fs::write(&second, deny(&chmods, libc::ECONNREFUSED)).unwrap();
    let target = dir.join("target");
    std::fs::write(&target, "").unwrap();
    let redirects = format!("3<{} 4<{}", first.display(), second.display());
    let t = target.to_str().unwrap();
    for bwrap in bwraps(&dir) {
        let args = ["--bind", "/", "/", "--add-seccomp-fd", "3", "--add-seccomp-fd", "4"];
        let args = [&args[..], &["chmod", "600", t]].concat();
        let out = run_with(&bwrap, &redirects, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("Connection refused"),
            "{}",
            show("stacked", &bwrap, &out)
        );
    }
}

/// bubblewrap's words (and status 1) for the seccomp options' bad values, which its suite and
/// its callers match.
#[test]
fn bad_seccomp_fds_get_bubblewraps_messages() {
    let dir = TempDir::new("bwrap-seccomp-bad");
    let good = dir.join("good");
    std::fs::write(&good, deny(&[libc::SYS_getppid], libc::EPERM)).unwrap();
    let odd = dir.join("odd");
    std::fs::write(&odd, [&deny(&[libc::SYS_getppid], libc::EPERM)[..], &[1u8]].concat()).unwrap();
    let files = format!("3<{} 4<{} 5<{}", good.display(), good.display(), odd.display());
    let cases: [(&[&str], &str); 6] = [
        (&["--add-seccomp-fd", "-1"], "bwrap: Invalid fd: -1\n"),
        (&["--seccomp", "0a"], "bwrap: Invalid fd: 0a\n"),
        (
            &["--add-seccomp-fd", "3", "--seccomp", "4"],
            "bwrap: --seccomp cannot be combined with --add-seccomp-fd\n",
        ),
        (
            &["--seccomp", "3", "--add-seccomp-fd", "4"],
            "bwrap: --add-seccomp-fd cannot be combined with --seccomp\n",
        ),
        (&["--add-seccomp-fd", "3", "--add-seccomp-fd", "3"], "bwrap: Can't read seccomp data: "),
        (&["--add-seccomp-fd", "5"], "bwrap: Invalid seccomp data, must be multiple of 8\n"),
    ];
    for bwrap in bwraps(&dir) {
        for (opts, want) in cases {
            let args = [&["--bind", "/", "/"][..], opts, &["true"]].concat();
            let out = run_with(&bwrap, &files, &args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.starts_with(want), "{opts:?}: {}", show("bad", &bwrap, &out));
            assert_eq!(out.status.code(), Some(1), "{opts:?}: {}", show("bad", &bwrap, &out));
        }
    }
}

/// `--info-fd`'s child-pid names a task whose namespaces the caller may open, so a second
/// sandbox can join the first one's user and PID namespaces (`--userns`, `--pidns`) as
/// bubblewrap's callers do; the second sees the first one's PID namespace.
#[test]
fn a_second_sandbox_joins_the_first_through_its_child_pid() {
    let dir = TempDir::new("bwrap-join-pidns");
    for bwrap in bwraps(&dir) {
        let info = dir.join("info");
        let first = dir.join("first-pidns");
        let _ = std::fs::remove_file(&first);
        let script = format!("readlink /proc/self/ns/pid > {}; read x", first.display());
        let mut holder = Command::new("/bin/sh")
            .args(["-c", &format!("exec \"$@\" 3>{}", info.display()), "sh"])
            .arg(&bwrap)
            .args(["--unshare-user", "--unshare-pid", "--bind", "/", "/", "--info-fd", "3"])
            .args(["sh", "-c", &script])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::fs::read_to_string(&first).map_or(true, |s| !s.ends_with('\n')) {
            assert!(start.elapsed() < Duration::from_secs(20), "the first sandbox never ran");
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&info).unwrap();
        let pid: u32 = text
            .split("\"child-pid\": ")
            .nth(1)
            .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no child-pid in {text:?}"));
        let redirects = format!("3</proc/{pid}/ns/user 4</proc/{pid}/ns/pid");
        let args = ["--userns", "3", "--pidns", "4", "--bind", "/", "/"];
        let out =
            run_with(&bwrap, &redirects, &[&args[..], &["readlink", "/proc/self/ns/pid"]].concat());
        holder.stdin.take().unwrap().write_all(b"done\n").unwrap();
        let status = holder.wait().unwrap();
        let mut want = String::new();
        std::fs::File::open(&first).unwrap().read_to_string(&mut want).unwrap();
        assert!(status.success(), "the first sandbox with {}: {status:?}", bwrap.display());
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{}", show("join", &bwrap, &out));
    }
}

/// Spawns `bwrap args...` with fd 3 writing to `info` and fd 4 reading `block` (a FIFO), as
/// bubblewrap's callers pass them; stdout piped.
fn spawn_blocked(bwrap: &Path, info: &Path, block: &Path, args: &[&str]) -> std::process::Child {
    let script = format!("exec \"$@\" 3>{} 4<>{}", info.display(), block.display());
    Command::new("/bin/sh")
        .args(["-c", &script, "sh"])
        .arg(bwrap)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child-pid of an `--info-fd` record once it is complete (its closing brace written).
fn info_pid(info: &Path) -> u32 {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(info).unwrap_or_default();
        if text.trim_end().ends_with('}') {
            return text
                .split("\"child-pid\": ")
                .nth(1)
                .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no child-pid in {text:?}"));
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no --info-fd record: {text:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

/// `--block-fd`: the record comes first, the command only once a byte is written to the fd.
#[test]
fn block_fd_holds_the_command_until_the_caller_writes() {
    let dir = TempDir::new("bwrap-block-fd");
    let (info, block) = (dir.join("info"), dir.join("block"));
    for bwrap in bwraps(&dir) {
        let _ = std::fs::remove_file(&info);
        mkfifo(&block);
        let ran = dir.join("ran");
        let _ = std::fs::remove_file(&ran);
        let script = format!("touch {}; echo started", ran.display());
        let args = ["--bind", "/", "/", "--info-fd", "3", "--block-fd", "4", "sh", "-c", &script];
        let child = spawn_blocked(&bwrap, &info, &block, &args);
        let pid = info_pid(&info);
        assert!(Path::new(&format!("/proc/{pid}")).exists(), "{}", bwrap.display());
        std::thread::sleep(Duration::from_millis(300));
        assert!(!ran.exists(), "{}: the command ran before the fd was written", bwrap.display());
        std::fs::OpenOptions::new().write(true).open(&block).unwrap().write_all(b"x").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}: {:?}", bwrap.display(), out.status);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n", "{}", bwrap.display());
    }
}

/// `--userns-block-fd`: nscell writes no id maps; the caller reads the child's pid from
/// `--info-fd`, writes them, and writes a byte to let the setup go on with them.
#[test]
fn userns_block_fd_lets_the_caller_write_the_id_maps() {
    let dir = TempDir::new("bwrap-userns-block-fd");
    let (info, block) = (dir.join("info"), dir.join("block"));
    let euid = rustix::process::geteuid().as_raw();
    let egid = rustix::process::getegid().as_raw();
    for bwrap in bwraps(&dir) {
        let _ = std::fs::remove_file(&info);
        mkfifo(&block);
        let args = ["--unshare-user", "--bind", "/", "/", "--info-fd", "3"];
        let args = [&args[..], &["--userns-block-fd", "4", "sh", "-c", "id -u; id -g"]].concat();
        let child = spawn_blocked(&bwrap, &info, &block, &args);
        let pid = info_pid(&info);
        std::fs::write(format!("/proc/{pid}/setgroups"), "deny").unwrap();
        std::fs::write(format!("/proc/{pid}/uid_map"), format!("1234 {euid} 1\n")).unwrap();
        std::fs::write(format!("/proc/{pid}/gid_map"), format!("4321 {egid} 1\n")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&block).unwrap().write_all(b"x").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}: {:?}", bwrap.display(), out.status);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "1234\n4321\n", "{}", bwrap.display());
    }
    // bubblewrap's rules for it, and their words.
    let nscell = bwraps(&dir).remove(0);
    for (args, want) in [
        (&["--info-fd", "3"][..], "bwrap: --userns-block-fd requires --unshare-user\n"),
        (&["--unshare-user"][..], "bwrap: --userns-block-fd requires --info-fd\n"),
    ] {
        let args = [&["--bind", "/", "/", "--userns-block-fd", "4"], args, &["true"]].concat();
        let out = run_with(&nscell, &format!("3>{} 4</dev/null", info.display()), &args);
        assert_eq!(String::from_utf8_lossy(&out.stderr), want, "{args:?}");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
}

/// `--info-fd` and `--json-status-fd` name each new namespace even when the program has ended
/// before nscell could look at it (they are seen during the setup, as bubblewrap reads them
/// right after its clone). `true` is often gone before a look after the spawn, not always:
/// 20 runs each.
#[test]
fn the_records_name_the_namespaces_of_a_program_that_is_already_gone() {
    let dir = TempDir::new("bwrap-ns-ids");
    let (info, json) = (dir.join("info"), dir.join("json"));
    let redirects = format!("3>{} 4>{}", info.display(), json.display());
    let own = |name: &str| {
        std::os::unix::fs::MetadataExt::ino(
            &std::fs::metadata(format!("/proc/self/ns/{name}")).unwrap(),
        )
    };
    for bwrap in bwraps(&dir).iter().flat_map(|b| std::iter::repeat_n(b.clone(), 20)) {
        for extra in [&[][..], &["--as-pid-1"][..]] {
            let args = ["--unshare-all", "--bind", "/", "/", "--info-fd", "3"];
            let args = [&args[..], &["--json-status-fd", "4"], extra, &["true"]].concat();
            let out = run_with(&bwrap, &redirects, &args);
            assert!(out.status.success(), "{}", show("true", &bwrap, &out));
            for file in [&info, &json] {
                let text = std::fs::read_to_string(file).unwrap();
                for name in ["ipc", "mnt", "net", "pid", "uts"] {
                    let key = format!("\"{name}-namespace\": ");
                    let inode: u64 = text
                        .split(&key)
                        .nth(1)
                        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or_else(|| {
                            panic!("{} {extra:?}: no {key} in {text}", bwrap.display())
                        });
                    assert_ne!(inode, own(name), "{}: {name} is ours", bwrap.display());
                }
            }
        }
    }
}
