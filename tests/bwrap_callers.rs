//! Replays how three real programs call `bwrap` (their captured command lines are in
//! tests/fixtures/bwrap-callers/, described in its README.md): the same option shapes, against
//! temp dirs made here, through a symlink named `bwrap` to this crate's nscell (its bubblewrap
//! personality), and, as a check of each expectation, through /usr/bin/bwrap when it is there.
//! Each test asserts what the caller observes: exit status, stdout, files written where allowed
//! and nowhere else.
mod common;

use common::{TempDir, bwraps, show};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn euid() -> u32 {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap()
}

fn run(bwrap: &Path, args: &[String], clear_env: bool) -> Output {
    let mut cmd = Command::new(bwrap);
    cmd.args(args).stdin(Stdio::null());
    if clear_env {
        cmd.env_clear();
    }
    cmd.output().unwrap()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn p(path: &Path) -> String {
    path.to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// @anthropic-ai/sandbox-runtime 0.0.83 (srt)

/// srt's probes: `bwrap --version` must exit 0 with a dotted version >= 0.5.0 in stdout (else a
/// warning), and `bwrap --help` (stdout+stderr) must mention --disable-userns for srt to pass it.
#[test]
fn srt_probes_version_and_help() {
    let dir = TempDir::new("callers-probes");
    for bwrap in bwraps(&dir) {
        let out = run(&bwrap, &s(&["--version"]), false);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{}", show("--version", &bwrap, &out));
        let first: Vec<u32> = text
            .split(|c: char| !c.is_ascii_digit() && c != '.')
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .unwrap_or("")
            .split('.')
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        assert!(first >= vec![0, 5, 0], "first version in {text:?} is older than 0.5.0");
        let help = run(&bwrap, &s(&["--help"]), false);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&help.stdout),
            String::from_utf8_lossy(&help.stderr)
        );
        assert!(all.contains("--disable-userns"), "{}", show("--help", &bwrap, &help));
    }
}

/// srt's mounts: `--ro-bind / /` comes after a `--bind` of its socat socket, then the
/// allowWrite binds; `--dev`, `--unshare-pid`, `--unshare-user`, `--cap-drop ALL` (and, for
/// root with the seccomp helper, `--cap-add CAP_SETFCAP`), `--proc`, `--unsetenv` follow.
fn srt_args(sock: &Path, allowed: &Path, script: &str, extra: &[&str]) -> Vec<String> {
    let mut a = s(&["--new-session", "--die-with-parent", "--unshare-net"]);
    a.extend(["--bind".to_string(), p(sock), p(sock)]);
    a.extend(s(&["--setenv", "SANDBOX_RUNTIME", "1", "--setenv", "TMPDIR", "/tmp/claude"]));
    a.extend(srt_mounts(allowed));
    a.extend(srt_tail(extra, script));
    a
}

fn srt_mounts(allowed: &Path) -> Vec<String> {
    vec!["--ro-bind".into(), "/".into(), "/".into(), "--bind".into(), p(allowed), p(allowed)]
}

fn srt_tail(extra: &[&str], script: &str) -> Vec<String> {
    let mut a = s(&["--dev", "/dev", "--unshare-pid", "--unshare-user", "--cap-drop", "ALL"]);
    if euid() == 0 && extra.is_empty() {
        a.extend(s(&["--cap-add", "CAP_SETFCAP"]));
    }
    a.extend(s(&["--proc", "/proc", "--unsetenv", "SRT_ALLOW_NESTED_USERNS"]));
    a.extend(s(extra));
    a.extend(s(&["--", "/bin/sh", "-c", script]));
    a
}

fn srt_dirs(name: &str) -> (TempDir, PathBuf, PathBuf, std::os::unix::net::UnixListener) {
    let dir = TempDir::new(name);
    let allowed = dir.join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    let sock = dir.join("claude-http-0123456789abcdef.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    (dir, allowed, sock, listener)
}

/// srt echo hi, and a write into the allowWrite dir next to one outside it.
#[test]
fn srt_echo_and_write() {
    let (dir, allowed, sock, _l) = srt_dirs("callers-srt");
    let outside = dir.join("outside");
    let script = format!(
        "echo hi; echo data > {0}/f && cat {0}/f; echo x > {1} 2>/dev/null || echo refused",
        allowed.display(),
        outside.display()
    );
    for bwrap in bwraps(&dir) {
        let out = run(&bwrap, &srt_args(&sock, &allowed, &script, &[]), false);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi\ndata\nrefused\n",
            "{}",
            show("srt shape", &bwrap, &out)
        );
        assert_eq!(out.status.code(), Some(0), "{}", show("srt shape", &bwrap, &out));
        assert_eq!(std::fs::read_to_string(allowed.join("f")).unwrap(), "data\n");
        assert!(!outside.exists(), "{} wrote outside allowWrite", bwrap.display());
        std::fs::remove_file(allowed.join("f")).unwrap();
    }
}

/// The command's exit status is the caller's exit status.
#[test]
fn srt_exit_status() {
    let (dir, allowed, sock, _l) = srt_dirs("callers-srt-exit");
    for bwrap in bwraps(&dir) {
        let out = run(&bwrap, &srt_args(&sock, &allowed, "exit 3", &[]), false);
        assert_eq!(out.status.code(), Some(3), "{}", show("exit 3", &bwrap, &out));
    }
}

/// Without its seccomp helper srt adds `--disable-userns` last before `--`: the command cannot
/// make a user namespace.
#[test]
fn srt_disable_userns() {
    let (dir, allowed, sock, _l) = srt_dirs("callers-srt-userns");
    let script = "echo hi; unshare -U true 2>/dev/null; echo userns=$?";
    for bwrap in bwraps(&dir) {
        let out = run(&bwrap, &srt_args(&sock, &allowed, script, &["--disable-userns"]), false);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi\nuserns=1\n",
            "{}",
            show("--disable-userns", &bwrap, &out)
        );
    }
}

/// A profile too long for one argument: the mounts go NUL-separated into a file that /bin/sh
/// opens on fd 9 (`exec 9<"$1" && shift && exec "$@"`), and `--args 9` stands where they were.
#[test]
fn srt_args_fd() {
    let (dir, allowed, sock, _l) = srt_dirs("callers-srt-args");
    let mut mounts = srt_mounts(&allowed);
    let many = dir.join("many");
    for i in 0..200 {
        let d = many.join(format!("d{i:04}_{}", "x".repeat(60)));
        std::fs::create_dir_all(&d).unwrap();
        mounts.extend(["--bind".to_string(), p(&d), p(&d)]);
    }
    let last = many.join(format!("d0199_{}", "x".repeat(60)));
    let profile = dir.join("profile");
    let mut bytes = Vec::new();
    for w in &mounts {
        bytes.extend_from_slice(w.as_bytes());
        bytes.push(0);
    }
    std::fs::write(&profile, bytes).unwrap();
    let script = format!("echo hi; echo data > {}/f; echo many=$?", last.display());
    for bwrap in bwraps(&dir) {
        let mut a = s(&["-c", "exec 9<\"$1\" && shift && exec \"$@\"", "srt-args"]);
        a.push(p(&profile));
        a.push(p(&bwrap));
        a.extend(s(&["--new-session", "--die-with-parent", "--unshare-net"]));
        a.extend(["--bind".to_string(), p(&sock), p(&sock)]);
        a.extend(s(&["--args", "9"]));
        a.extend(srt_tail(&[], &script));
        let out = run(Path::new("/bin/sh"), &a, false);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "hi\nmany=0\n",
            "{}",
            show("--args 9", &bwrap, &out)
        );
        assert_eq!(std::fs::read_to_string(last.join("f")).unwrap(), "data\n");
        std::fs::remove_file(last.join("f")).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// bubbleproc 1.0.4 (PyPI; the command line is built in its Rust core)

fn bubbleproc_args(rw: &Path, home: &str, script: &str) -> Vec<String> {
    let mut a = s(&[
        "--unshare-user",
        "--unshare-pid",
        "--unshare-uts",
        "--unshare-ipc",
        "--unshare-cgroup",
        "--unshare-net",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--cap-drop",
        "ALL",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]);
    for d in ["/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/tty"] {
        if Path::new(d).exists() {
            a.extend(s(&["--dev-bind-try", d, d]));
        }
    }
    for d in ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"] {
        if Path::new(d).is_dir() {
            a.extend(s(&["--ro-bind", d, d]));
        }
    }
    a.extend(s(&["--tmpfs", "/etc"]));
    for f in [
        "/etc/resolv.conf",
        "/etc/hosts",
        "/etc/localtime",
        "/etc/ssl",
        "/etc/pki",
        "/etc/ca-certificates",
        "/etc/alternatives",
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/ld.so.cache",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/terminfo",
    ] {
        if Path::new(f).exists() {
            a.extend(s(&["--ro-bind-try", f, f]));
        }
    }
    a.extend(s(&["--tmpfs", "/tmp", "--tmpfs", "/run", "--tmpfs", "/var/tmp", "--tmpfs", home]));
    for sub in [".cache", ".config", ".local/share"] {
        a.extend(["--dir".to_string(), format!("{home}/{sub}")]);
    }
    a.extend(["--bind".to_string(), p(rw), p(rw)]);
    for (k, v) in [
        ("HOME", home),
        ("USER", "sandbox"),
        ("LOGNAME", "sandbox"),
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("TMPDIR", "/tmp"),
        ("TERM", "xterm"),
        ("LANG", "C.UTF-8"),
        ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
        ("HOME", home),
    ] {
        a.extend(s(&["--setenv", k, v]));
    }
    a.extend(["--chdir".to_string(), p(rw)]);
    a.extend(s(&["--", "sh", "-c", script]));
    a
}

/// bubbleproc runs bwrap with an empty environment (`env_clear()`): `sh` is found through the
/// PATH it gives with --setenv. /tmp is a tmpfs: writes there stay inside.
#[test]
fn bubbleproc_echo_write_exit() {
    let dir = TempDir::new("callers-bubbleproc");
    let rw = dir.join("rw");
    std::fs::create_dir(&rw).unwrap();
    let outside = dir.join("outside");
    let script = format!(
        "echo hi; echo data > {0}/f && cat {0}/f; echo x > {1}; echo tmp=$?; pwd; echo $HOME",
        rw.display(),
        outside.display()
    );
    for bwrap in bwraps(&dir) {
        let out = run(&bwrap, &bubbleproc_args(&rw, "/home/sandbox", &script), true);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("hi\ndata\ntmp=0\n{}\n/home/sandbox\n", rw.display()),
            "{}",
            show("bubbleproc shape", &bwrap, &out)
        );
        assert_eq!(std::fs::read_to_string(rw.join("f")).unwrap(), "data\n");
        assert!(
            !outside.exists(),
            "{}: a write to the /tmp tmpfs reached the host",
            bwrap.display()
        );
        std::fs::remove_file(rw.join("f")).unwrap();
        let out = run(&bwrap, &bubbleproc_args(&rw, "/home/sandbox", "exit 3"), true);
        assert_eq!(out.status.code(), Some(3), "{}", show("exit 3", &bwrap, &out));
    }
}

// ---------------------------------------------------------------------------------------------
// bubble-sandbox 0.13 (PyPI)

/// bubble-sandbox's core args: binds of /usr, /lib, /var/lib, /usr/share (inside /usr), relative
/// `--symlink usr/bin /bin`, `--perms 0644 --dir /var/empty`, namespaces after the mounts, no
/// `--` before the command.
fn bubble_sandbox_args(venv: &Path, work: Option<&Path>, cmd: &[&str]) -> Vec<String> {
    let mut a = Vec::new();
    for d in ["/usr", "/lib", "/var/lib", "/usr/share"] {
        a.extend(s(&["--ro-bind", d, d]));
    }
    for d in ["/lib64", "/etc/alternatives", "/etc/fonts", "/etc/papersize", "/etc/paperspecs"] {
        if Path::new(d).exists() {
            a.extend(s(&["--ro-bind", d, d]));
        }
    }
    a.extend(s(&[
        "--symlink",
        "usr/bin",
        "/bin",
        "--symlink",
        "usr/sbin",
        "/sbin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--perms",
        "0644",
        "--dir",
        "/var/empty",
        "--unshare-user",
        "--unshare-pid",
        "--new-session",
        "--die-with-parent",
        "--unshare-net",
    ]));
    a.extend(["--ro-bind".to_string(), p(venv), "/sandbox/venv".to_string()]);
    a.extend(s(&["--setenv", "PATH", "/sandbox/venv/bin:/usr/bin:/bin"]));
    if let Some(w) = work {
        a.extend(["--bind".to_string(), p(w), "/sandbox/work".to_string()]);
        a.extend(s(&["--chdir", "/sandbox/work"]));
    }
    a.extend(s(cmd));
    a
}

/// `bubble-sandbox check` (the core args + /usr/bin/true must exit 0), `execute echo hi`, a write
/// into the workdir at /sandbox/work, and an exit status.
#[test]
fn bubble_sandbox_check_echo_write_exit() {
    let dir = TempDir::new("callers-bubble-sandbox");
    let venv = dir.join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    let work = dir.join("work");
    std::fs::create_dir(&work).unwrap();
    for bwrap in bwraps(&dir) {
        let mut probe = bubble_sandbox_args(&venv, None, &[]);
        probe.truncate(probe.len() - 6); // the probe has no venv bind or PATH
        probe.push("/usr/bin/true".into());
        let out = run(&bwrap, &probe, false);
        assert_eq!(out.status.code(), Some(0), "{}", show("check probe", &bwrap, &out));

        let out = run(&bwrap, &bubble_sandbox_args(&venv, None, &["echo", "hi"]), false);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n", "{}", show("echo", &bwrap, &out));

        let script = format!(
            "echo data > /sandbox/work/f && cat /sandbox/work/f; echo x > {} 2>/dev/null; echo outside=$?; \
             stat -c %a /var/empty; test -d /sandbox/venv/bin && echo venv",
            dir.join("outside").display()
        );
        let args = bubble_sandbox_args(&venv, Some(&work), &["sh", "-c", &script]);
        let out = run(&bwrap, &args, false);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "data\noutside=2\n644\nvenv\n",
            "{}",
            show("write", &bwrap, &out)
        );
        assert_eq!(std::fs::read_to_string(work.join("f")).unwrap(), "data\n");
        std::fs::remove_file(work.join("f")).unwrap();

        let out = run(&bwrap, &bubble_sandbox_args(&venv, None, &["sh", "-c", "exit 3"]), false);
        assert_eq!(out.status.code(), Some(3), "{}", show("exit 3", &bwrap, &out));
    }
}

/// Every fixture named in the README is there and names the options the shapes above replay.
#[test]
fn fixtures_match_the_shapes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bwrap-callers");
    for (file, words) in [
        (
            "srt-echo-root.json",
            &["--ro-bind", "--bind", "--unsetenv", "--cap-add", "--new-session"][..],
        ),
        ("srt-nohelper-nobody.json", &["--disable-userns", "--help"][..]),
        ("srt-argsfd-root.json", &["--args", "\"9\""][..]),
        (
            "bubbleproc-echo.json",
            &["--dev-bind-try", "--ro-bind-try", "--unshare-cgroup", "--hostname"][..],
        ),
        ("bubble-sandbox-write.json", &["--symlink", "--perms", "/sandbox/work", "/var/empty"][..]),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        for w in words {
            assert!(text.contains(w), "{file} lacks {w}");
        }
    }
}

/// bubblewrap 0.11's words for a `--symlink` whose destination is another symlink, which its
/// own suite matches (0.8 says only "File exists": nscell is checked alone here); the same
/// symlink again is no error.
#[test]
fn a_conflicting_symlink_names_what_is_there() {
    let dir = TempDir::new("symlink-conflict");
    let nscell = bwraps(&dir).remove(0);
    let link = p(&dir.join("symlink"));
    let here = p(&dir.join("."));
    let base = s(&["--bind", "/", "/", "--bind", &here, &here, "--symlink"]);
    let with = |target: &str| [base.clone(), s(&[target, &link, "true"])].concat();
    let out = run(&nscell, &with("/dev/null"), false);
    assert!(out.status.success(), "{}", show("first", &nscell, &out));
    let out = run(&nscell, &with("/dev/null"), false);
    assert!(out.status.success(), "{}", show("again", &nscell, &out));
    let out = run(&nscell, &with("/dev/full"), false);
    assert_eq!(out.status.code(), Some(1), "{}", show("conflict", &nscell, &out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("bwrap: Can't make symlink at {link}: existing destination is /dev/null\n")
    );
}
