//! Random command lines against the `nscell` binary: every option of `nscell --help`, with
//! valid and invalid values, in random order, among stray arguments. The program is fixed
//! (`/bin/sh -c 'exit 42'`) and everything writable the options can name lies in a temporary
//! directory of this test. A run fails the test when nscell panics, hangs (killed after
//! [`RUN_LIMIT`]), exits with a status other than the program's 42, a usage error (2), a timeout
//! (124), a setup failure (125), 126, 127 or 137, or changes anything outside that directory:
//! this process's mounts, the hostname, a canary directory that planted symlinks point at, or
//! leaves a process or an fd behind.
//!
//! `NSCELL_FUZZ_SEED=N` repeats a run (the seed is printed first); `NSCELL_FUZZ_SECS` bounds the
//! whole test (default 40 s); `NSCELL_FUZZ_LOG=FILE` writes every command line, its status and
//! stderr to FILE. A FIFO lies where `--file` may write. Its own test binary: CI does not re-run
//! it against the static builds, whose binary tests are those of cli, filesystem, lifecycle and
//! hardening.

mod common;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long one nscell run may take before it counts as a hang.
const RUN_LIMIT: Duration = Duration::from_secs(10);

/// The statuses a run may end with (see the module docs).
const ALLOWED: [i32; 7] = [42, 2, 124, 125, 126, 127, 137];

/// Options that do not run the program (they print and exit 0 or 1).
const NOT_RUNNING: [&str; 4] = ["--help", "--version", "--check", "--gc"];

/// A small xorshift generator: reproducible from its seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

/// Every option of `nscell --help` that runs the program, with the names of its values
/// (`--bind SRC DEST` gives `("--bind", ["SRC", "DEST"])`).
fn option_table() -> Vec<(String, Vec<String>)> {
    let out = Command::new(common::nscell_bin()).arg("--help").output().expect("nscell --help");
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut table = Vec::new();
    for line in help.lines() {
        // An option's line is indented by exactly two spaces; its description may follow.
        let Some(rest) = line.strip_prefix("  -") else { continue };
        let mut words = rest.split(' ').filter(|w| !w.is_empty());
        let mut name = format!("-{}", words.next().unwrap());
        if name.ends_with(',') {
            // "-h, --help": the long form.
            name = words.next().unwrap().to_string();
        }
        let is_value = |w: &str| {
            w.chars().all(|c| c.is_ascii_uppercase() || ":=[]._/".contains(c))
                && w.chars().any(|c| c.is_ascii_uppercase())
        };
        let values: Vec<String> = words.take_while(|w| is_value(w)).map(String::from).collect();
        let well_formed = name.strip_prefix("--").is_some_and(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        assert!(well_formed, "a line of --help starts like an option but is not one: {line:?}");
        if !NOT_RUNNING.contains(&name.as_str()) {
            table.push((name, values));
        }
    }
    assert!(table.len() > 50, "too few options found in --help: {table:?}");
    table
}

/// The test's own world: the temporary directory, what is planted in it, and the canary.
struct World {
    tmp: PathBuf,
    canary: PathBuf,
    sub_start: u32,
}

impl World {
    fn new() -> World {
        let base = std::env::temp_dir();
        let pid = std::process::id();
        let tmp = base.join(format!("nscell-fuzz-{pid}"));
        let canary = base.join(format!("nscell-fuzz-canary-{pid}"));
        for d in [&tmp, &canary] {
            let _ = remove_tree(d);
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(canary.join("file"), "canary\n").unwrap();
        std::fs::create_dir(canary.join("dir")).unwrap();
        for d in ["src/sub", "cwd", "rootfs/proc", "rootfs/dev", "rootfs/usr", "rootfs/tmp"] {
            std::fs::create_dir_all(tmp.join(d)).unwrap();
        }
        std::fs::write(tmp.join("file"), "data\n").unwrap();
        std::fs::write(tmp.join("src/file"), "data\n").unwrap();
        std::os::unix::fs::symlink("usr/bin", tmp.join("rootfs/bin")).unwrap();
        std::os::unix::fs::symlink("usr/lib", tmp.join("rootfs/lib")).unwrap();
        std::os::unix::fs::symlink("usr/lib64", tmp.join("rootfs/lib64")).unwrap();
        // Symlinks planted in a bind source, pointing out of the new root: a destination through
        // them must stay inside it.
        let plant = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, tmp.join("src").join(name)).unwrap();
        };
        plant(&canary, "esc");
        plant(&canary.join("file"), "esc-file");
        plant(Path::new("../../../../../../.."), "up");
        plant(&Path::new("/proc/self/root").join(canary.strip_prefix("/").unwrap()), "magic");
        plant(Path::new("/proc/self/cwd"), "cwd");
        // A FIFO where --file may write: it must be refused, never block the setup.
        let (fifo, mode) = (tmp.join("src/fifo"), rustix::fs::Mode::from_raw_mode(0o644));
        rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, mode, 0).unwrap();
        for d in [&tmp, &canary] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let support = nscell::Sandbox::check();
        let sub_start = if common::is_root() {
            100_000
        } else {
            support.subuid.first().map_or(200_000, |r| r.0)
        };
        World { tmp, canary, sub_start }
    }

    fn t(&self, p: &str) -> String {
        self.tmp.join(p).to_string_lossy().into_owned()
    }

    /// A value for an option's value named `what`: mostly plausible, sometimes wrong.
    fn value(&self, rng: &mut Rng, option: &str, what: &str) -> String {
        let owned: Vec<String>;
        let choices: Vec<&str> = match what {
            "N" => vec!["0", "1", "1000", "65534", "!4294967295", "4294967294", "!-1", "!x", "!"],
            "IN:OUT:COUNT" => {
                let own = if option == "--map-groups" {
                    rustix::process::getegid().as_raw()
                } else {
                    rustix::process::geteuid().as_raw()
                };
                owned = vec![
                    format!("1:{}:10", self.sub_start),
                    format!("1:{}:1000", self.sub_start),
                    format!("0:{own}:1"),
                    format!("5:{own}:1"),
                    format!("0:{}:1", self.sub_start),
                ];
                let mut v: Vec<&str> = owned.iter().map(String::as_str).collect();
                v.extend(["!1:2", "!a:b:c", "!0:0:0", "!4294967295:0:1", "!1:1:4294967295", "!"]);
                v
            }
            "NAME" => vec!["h", "cell", "a.b", "", "-", "x y", LONG_64, LONG_65_BAD],
            // Never a helper here: pasta or slirp4netns would serve the machine's real network
            // (tests/net.rs runs them in a dead-end namespace of its own).
            "MODE" => vec!["none", "host", "!bogus", "!none:x", "!"],
            "[IP:]HOSTPORT:PORT[/PROTO]" => {
                vec!["8080:80", "127.0.0.1:8080:80/udp", "[::1]:1:2", "!80", "!x:y", "!0:80", "!"]
            }
            "DEST[:PORTS][/PROTO]" => {
                vec![
                    "10.0.0.0/8",
                    "192.0.2.1:443",
                    "[2001:db8::/32]:80,443",
                    "!10.0.0.0/99",
                    "!:80",
                    "!",
                ]
            }
            "IP" => vec!["10.0.2.3", "none", "!x", "!::1", "!"],
            // Never a cgroup outside this process's own: relative parents that do not exist.
            "PATH" if option == "--cgroup-parent" => {
                vec!["missing", "a/b", "!../up", "!a/../../b", "!"]
            }
            "N.N" => vec!["0.5", "1", "2.25", "!0", "!-1", "!x", "!nan", "!inf", "!"],
            "LIST" => vec!["0", "0-1", "0,1", "!x", "!1-0", "!-", "!"],
            // Block devices are only stat'ed: never opened, never written.
            "DEV:RATE" => {
                vec!["/dev/vda:1m", "/dev/loop0:100", "/dev/null:1", "!vda", "!:1", "!/dev/vda:0"]
            }
            "DIR" | "PATH" if option == "--chdir" || option.starts_with("--landlock") => {
                owned = vec![self.t("cwd"), self.t("src"), self.t("src/esc"), self.t("missing")];
                let mut v: Vec<&str> = owned.iter().map(String::as_str).collect();
                v.extend(["/", "/usr", "/proc", "/proc/self/cwd", "cwd", ".", "..", "", "/x"]);
                v
            }
            "DIR" => {
                // --rootfs: a prepared tree, a plain directory, a file, nothing.
                owned = vec![self.t("rootfs"), self.t("src"), self.t("file"), self.t("missing")];
                owned.iter().map(String::as_str).collect()
            }
            // Half the time through the planted symlinks of a source bound on /d.
            "PATH" | "DEST" if rng.chance(50) => vec![
                "/d/esc",
                "/d/esc/f",
                "/d/up/f",
                "/d/magic/f",
                "/d/esc-file",
                "/d/fifo",
                "/d/cwd/f",
                "/d/file",
                "/d",
                "/d/sub",
                "/d/sub/new/f",
            ],
            "PATH" | "DEST" => vec![
                "/", "/x", "/d/e", "/usr", "/bin", "/tmp", "/tmp/f", "/proc", "/dev", "/dev/shm",
                "x", "/a/../b", "..", "", "//", "/d",
            ],
            "SRC" => {
                owned = vec![
                    self.t("src"),
                    self.t("src/sub"),
                    self.t("file"),
                    self.t("missing"),
                    self.t("rootfs"),
                ];
                let mut v: Vec<&str> = owned.iter().map(String::as_str).collect();
                // Host paths only where nothing can be written through them.
                if option.starts_with("--ro-bind") {
                    v.push("/usr");
                }
                v.push("");
                v
            }
            "TARGET" => {
                owned = vec![self.canary.to_string_lossy().into_owned()];
                let mut v: Vec<&str> = owned.iter().map(String::as_str).collect();
                v.extend(["usr/bin", "../../..", "/proc/self/fd/1", "x", ""]);
                v
            }
            // A block fd holds the setup until it can be read, as it should: stdin (/dev/null)
            // can at once; stdout and stderr, pipes this test reads, never can.
            "FD" if option.ends_with("block-fd") => vec!["0", "!3", "!97", "!-1", "!x", "!"],
            "FD" => vec!["0", "1", "2", "!3", "!97", "!-1", "!x", "!2147483647", "!"],
            "OCTAL" => vec!["755", "700", "0", "1777", "7777", "!17777", "!8", "!x", "!"],
            "BYTES" => {
                vec!["1", "4096", "65536", "1048576", "!0", "!-1", "!1k", "!18446744073709551616"]
            }
            "SECONDS" => {
                vec!["5", "0.5", "0.001", "0", "1e19", "!1e20", "!-1", "!nan", "!inf", "!x"]
            }
            "CAP" => vec!["ALL", "CAP_NET_ADMIN", "sys_admin", "CAP_SETUID", "!CAP_BOGUS", "!"],
            "PORT" => vec!["0", "80", "8080", "65535", "!65536", "none", "!x", "!"],
            // Limits the fixed program lives with (a tiny AS or STACK would crash it, which
            // says nothing about nscell), and wrong ones.
            "NAME=SOFT[:HARD]" => vec![
                "NOFILE=1024",
                "NOFILE=64:128",
                "!NOFILE=10:5",
                "NOFILE=unlimited",
                "CORE=0",
                "CPU=100:unlimited",
                "FSIZE=0",
                "AS=unlimited",
                "STACK=unlimited",
                "NPROC=4096",
                "MEMLOCK=65536",
                "!BOGUS=1",
                "!NOFILE",
                "!NOFILE=x",
                "!=1",
            ],
            "VAR" => vec!["A", "PATH", "HOME", "LD_PRELOAD", "!", "!A=B"],
            "VALUE" => vec!["1", "", "/nonexistent", "x y"],
            "LABEL" => vec!["system_u:system_r:container_t:s0", ""],
            "RWSRC" | "WORKDIR" => vec!["/nonexistent-nscell-upper", ""],
            other => panic!("no values for {other} (of {option}): teach this test the new option"),
        };
        // Values marked `!` are wrong whatever else is given: rarer, so that most command lines
        // get past the parser.
        let (bad, good): (Vec<&str>, Vec<&str>) = choices.iter().partition(|c| c.starts_with('!'));
        let from = if good.is_empty() || (!bad.is_empty() && rng.chance(10)) { bad } else { good };
        rng.pick(&from).trim_start_matches('!').to_string()
    }

    /// Stray arguments: none of them can name a program that exists.
    fn stray(rng: &mut Rng) -> &'static str {
        rng.pick(&["--bogus", "-z", "---x", "--=", "-", "nonexistent-nscell-prog", "--"])
    }

    /// A random command line, the fixed program at its end.
    fn command_line(&self, rng: &mut Rng, table: &[(String, Vec<String>)]) -> Vec<String> {
        let mut args = Vec::new();
        let n = rng.below(9);
        // Sometimes a new root the program can run in.
        let prelude_at = rng.chance(40).then(|| rng.below(n + 1));
        // Sometimes the source with the planted symlinks on /d, before the rest.
        if rng.chance(40) {
            let bind = rng.pick(&["--bind", "--ro-bind", "--dev-bind", "--bind-try"]);
            args.extend([bind.to_string(), self.t("src"), "/d".to_string()]);
        }
        for i in 0..=n {
            if prelude_at == Some(i) {
                for a in ["--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin"] {
                    args.push(a.to_string());
                }
                for a in ["--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"] {
                    args.push(a.to_string());
                }
            }
            if i == n {
                break;
            }
            if rng.chance(5) {
                args.push(World::stray(rng).to_string());
                continue;
            }
            let (name, values) = &table[rng.below(table.len())];
            let vals: Vec<String> = values.iter().map(|v| self.value(rng, name, v)).collect();
            if vals.len() == 1 && rng.chance(20) {
                args.push(format!("{name}={}", vals[0]));
            } else {
                args.push(name.clone());
                // Now and then a value is missing.
                let keep = if rng.chance(3) { rng.below(vals.len() + 1) } else { vals.len() };
                args.extend(vals.into_iter().take(keep));
            }
        }
        args.extend(["--", "/bin/sh", "-c", "exit 42"].map(String::from));
        args
    }
}

/// Removed also when a run fails the test (the failing command line says what to rerun).
impl Drop for World {
    fn drop(&mut self) {
        let _ = remove_tree(&self.tmp);
        let _ = remove_tree(&self.canary);
    }
}

const LONG_64: &str = "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh";
const LONG_65_BAD: &str = "!hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh";

/// Removes a tree whatever modes the runs left in it (`--chmod 000`).
fn remove_tree(p: &Path) -> std::io::Result<()> {
    if let Ok(m) = std::fs::symlink_metadata(p) {
        if m.is_dir() {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700));
            for e in std::fs::read_dir(p)?.flatten() {
                let _ = remove_tree(&e.path());
            }
            return std::fs::remove_dir(p);
        }
        return std::fs::remove_file(p);
    }
    Ok(())
}

/// Every entry below `p` with its type, size, mode and mtime: what a write would change.
fn snapshot(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&d) else { continue };
        out.push(format!(
            "{} {:o} {} {}.{}",
            d.display(),
            m.mode(),
            m.size(),
            m.mtime(),
            m.mtime_nsec()
        ));
        if m.is_dir() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

/// This process's mount table, less the mounts other nscell test binaries make for themselves
/// under their own temporary directories (`nscell-fs-PID-…`), which may run beside this one on
/// a developer's machine.
fn mounts() -> String {
    let ours = format!("nscell-fuzz-{}", std::process::id());
    let others = |point: &str| point.contains("/nscell-") && !point.contains(&ours);
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = String::new();
    for line in table.lines() {
        // "ID PARENT MAJ:MIN ROOT MOUNT-POINT ...".
        if !line.split(' ').nth(4).is_some_and(others) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// What must be the same after every run.
#[derive(PartialEq, Debug)]
struct HostState {
    mounts: String,
    hostname: String,
    canary: Vec<String>,
    /// This process's fds and what they are.
    fds: Vec<String>,
    /// The sandbox cgroups under this process's own cgroups (none may be left).
    cgroups: Vec<String>,
}

impl HostState {
    fn now(w: &World) -> HostState {
        HostState {
            mounts: mounts(),
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
            canary: snapshot(&w.canary),
            fds: std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .flatten()
                .map(|e| format!("{:?} -> {:?}", e.file_name(), std::fs::read_link(e.path())))
                .filter(|l| !l.contains("Err"))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            cgroups: sandbox_cgroups(),
        }
    }
}

/// The `nscell-*` directories of dead owners under this process's own cgroup in each hierarchy.
fn sandbox_cgroups() -> Vec<String> {
    let mut out = Vec::new();
    for dir in common::own_cgroups() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // nscell-<pidns>-<pid>-...: the library's names (not a bench's or CI's), of an owner
            // that is gone (a live one is another tenant's sandbox, running now).
            let owner = name.strip_prefix("nscell-").and_then(|n| n.split('-').nth(1));
            let gone = owner.is_some_and(|pid| {
                pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists()
            });
            if gone {
                out.push(e.path().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The bytes the program gets on stdin (also what `--file 0` and `--seccomp 0` read): text,
/// nothing, or a seccomp program that allows everything.
fn stdin_for(rng: &mut Rng, w: &World) -> std::fs::File {
    let path = w.tmp.join("stdin");
    let allow_all: &[u8] = &[0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]; // ret SECCOMP_RET_ALLOW
    let bytes: &[u8] = match rng.below(3) {
        0 => b"hello\n",
        1 => b"",
        _ => allow_all,
    };
    std::fs::write(&path, bytes).unwrap();
    std::fs::File::open(&path).unwrap()
}

/// Runs nscell, killing it after [`RUN_LIMIT`]: its status (None: it hung) and stderr.
fn run(args: &[String], stdin: std::fs::File, cwd: &Path) -> (Option<ExitStatus>, String) {
    let mut child: Child = Command::new(common::nscell_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run nscell");
    let out = common::read_on_a_thread(child.stdout.take().unwrap());
    let err = common::read_on_a_thread(child.stderr.take().unwrap());
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // A hung run's sandbox may hold the pipes open: do not wait for it to let go.
    let err = if status.is_some() {
        let _ = out.join();
        err.join().unwrap()
    } else {
        Vec::new()
    };
    (status, String::from_utf8_lossy(&err).into_owned())
}

/// The command line as a shell would take it, to paste and rerun.
fn shell_line(args: &[String]) -> String {
    let quote = |a: &String| {
        if !a.is_empty() && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-_.=:,".contains(&b))
        {
            a.clone()
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    let mut line = String::from("nscell");
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    line
}

/// Kills and reaps the processes left as this process's children (orphans of a run come here:
/// it is their subreaper), and returns them.
fn leftover_children() -> Vec<(u32, bool)> {
    let zombies = common::zombie_children();
    let left: Vec<(u32, bool)> =
        common::children().into_iter().map(|p| (p, zombies.contains(&p))).collect();
    for &(pid, _) in &left {
        let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        let _ = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
    }
    left
}

/// The tests of this binary count this process's children: one at a time.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn random_command_lines_never_panic_hang_or_leak() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let seed: u64 = match std::env::var("NSCELL_FUZZ_SEED") {
        Ok(s) => s.parse().expect("NSCELL_FUZZ_SEED is a number"),
        Err(_) => {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
                as u64
                | 1
        }
    };
    let secs: u64 =
        std::env::var("NSCELL_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(40);
    // Past the harness's capture: a failure is reproducible from this line.
    let _ =
        writeln!(std::io::stderr(), "fuzz_cli: NSCELL_FUZZ_SEED={seed} NSCELL_FUZZ_SECS={secs}");
    // NSCELL_FUZZ_LOG=FILE: every command line, its status and stderr, for a look at them.
    let log = std::env::var_os("NSCELL_FUZZ_LOG").map(|p| std::fs::File::create(p).unwrap());
    let mut rng = Rng(seed);
    let table = option_table();
    // The table is the binary's: a new option joins it (and needs values in `World::value`).
    let find = |n: &str| table.iter().find(|(name, _)| name == n).map(|(_, v)| v.join(" "));
    assert_eq!(find("--bind").as_deref(), Some("SRC DEST"));
    assert_eq!(find("--dev-bind-try").as_deref(), Some("SRC DEST"));
    assert_eq!(find("--map-users").as_deref(), Some("IN:OUT:COUNT"));
    assert_eq!(find("--unshare-net").as_deref(), Some(""));
    assert_eq!(find("--help"), None);
    let w = World::new();
    // Orphans of a run become this process's children, where they can be seen and reaped.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    // Earlier sandboxes' leftovers (of callers killed before this test) would be collected by
    // a run and read as a change: collect them first.
    nscell::cgroup::collect_garbage(None).unwrap();
    let before = HostState::now(&w);
    let start = Instant::now();
    let (mut runs, mut statuses) = (0u32, std::collections::BTreeMap::<i32, u32>::new());
    while start.elapsed() < Duration::from_secs(secs) {
        let args = w.command_line(&mut rng, &table);
        let stdin = stdin_for(&mut rng, &w);
        let (status, stderr) = run(&args, stdin, &w.tmp.join("cwd"));
        runs += 1;
        let line = shell_line(&args);
        let fail = |what: String| -> ! {
            panic!(
                "run {runs} of NSCELL_FUZZ_SEED={seed}: {what}\n  command: {line}\n  cwd: {}\n  \
                 stderr: {stderr}",
                w.tmp.join("cwd").display()
            )
        };
        if let Some(log) = &log {
            let _ = writeln!(&*log, "{status:?} {line}\n  {}", stderr.trim_end());
        }
        let Some(status) = status else {
            fail(format!("still running after {RUN_LIMIT:?} (killed)"));
        };
        if stderr.contains("panicked") {
            fail("nscell panicked".into());
        }
        match status.code() {
            Some(code) if ALLOWED.contains(&code) => *statuses.entry(code).or_default() += 1,
            _ => fail(format!("exit status {status}, not one of {ALLOWED:?}")),
        }
        let left = leftover_children();
        // One case is the kernel's, not nscell's: without a PID namespace of its own, an init
        // whose memory the OOM killer takes while its program is still being set up (sharing
        // that memory, until execve) dies with it, and the program's zombie goes to the nearest
        // reaper, which reaps it (as this process just did). A live process left behind, or a
        // zombie after any other run, is a leak.
        let oom = stderr.contains("OOM killer");
        let left: Vec<u32> =
            left.into_iter().filter(|(_, zombie)| !(oom && *zombie)).map(|(p, _)| p).collect();
        if !left.is_empty() {
            fail(format!("processes left behind: {left:?}"));
        }
        let after = HostState::now(&w);
        if after != before {
            let mounts: Vec<&str> =
                after.mounts.lines().filter(|l| !before.mounts.lines().any(|b| b == *l)).collect();
            fail(format!(
                "the host changed: new mounts {mounts:?}; hostname {:?} -> {:?}; canary {:?} -> \
                 {:?}; fds {:?} -> {:?}; cgroups {:?} -> {:?}",
                before.hostname,
                after.hostname,
                before.canary,
                after.canary,
                before.fds,
                after.fds,
                before.cgroups,
                after.cgroups
            ));
        }
    }
    let _ = writeln!(
        std::io::stderr(),
        "fuzz_cli: {runs} runs in {:?}, exit statuses {statuses:?}",
        start.elapsed()
    );
    // Every kind of outcome was seen: the command lines reach the program, not only the parser.
    assert!(runs >= 50, "only {runs} runs in {secs} s");
    assert!(statuses.contains_key(&42) && statuses.contains_key(&2), "{statuses:?}");
}

/// Found by the fuzz test above: a sandbox without a PID namespace of its own, killed by its
/// timeout while its mount lock had a helper task, left that helper to this process (a
/// subreaper, as a service manager or a container's init would be).
#[test]
fn a_setup_killed_by_its_timeout_leaves_no_helper_behind() {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let mut sb = nscell::Sandbox::new("/usr/bin/true");
    sb.namespaces(nscell::Namespaces::USER | nscell::Namespaces::MOUNT)
        .ro_bind("/usr", "/usr")
        .symlink("usr/lib", "/lib")
        .symlink("usr/lib64", "/lib64");
    for i in 0..400u64 {
        // From "already passed" to a little past the lock's helper, in steps.
        sb.timeout(Duration::from_micros(i % 40 * 25));
        let mut child = sb.spawn().unwrap();
        let _ = child.wait_info().unwrap();
    }
    let left: Vec<u32> = leftover_children().into_iter().map(|(p, _)| p).collect();
    assert_eq!(left, Vec::<u32>::new(), "helpers left to this subreaper");
}
