//! Helpers shared by the integration tests.
#![allow(dead_code)]

use nscell::{IdMap, Namespaces, Sandbox};
use std::process::Output;

/// A directory of this test's own under the host's /tmp (mode 0755, so that the sandbox can
/// reach it as any uid), removed when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(format!("nscell-fs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }

    /// A root filesystem image for `/usr` to be bound into: the directories `proc`, `dev`, `usr`
    /// and `extra`, and the usual symlinks into `usr` (`bin`, `lib`, `lib64`).
    pub fn image(name: &str, extra: &[&str]) -> TempDir {
        let image = TempDir::new(name);
        for d in ["proc", "dev", "usr"].iter().chain(extra) {
            std::fs::create_dir(image.join(d)).unwrap();
        }
        for (target, link) in [("usr/bin", "bin"), ("usr/lib", "lib"), ("usr/lib64", "lib64")] {
            std::os::unix::fs::symlink(target, image.join(link)).unwrap();
        }
        image
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> std::path::PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prints why a test cannot run here and returns from it. A skip is always visible on stderr.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {{
        // Written to the real stderr, past the test harness's capture, so a skip is always seen.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "SKIPPED {}: {}", module_path!(), format!($($arg)*));
        return;
    }};
}

/// The `nscell` binary under test: cargo's build of it, or the one `NSCELL_BIN` names. CI points
/// `NSCELL_BIN` at the statically linked release build (`cargo static-bin`), so the binary as
/// packagers ship it is tested too.
pub fn nscell_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("NSCELL_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_nscell").to_string())
    })
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Gives `sb` two-line id maps, which the parent writes while the child waits (the handshake
/// path): the caller's own uid and gid as 0, and up to 1000 subordinate ids from 1 (root picks
/// them itself; anyone else has them from /etc/subuid and /etc/subgid, through newuidmap).
/// Returns the subordinate uids mapped (start, count), or why this user has none.
pub fn multi_range_maps(sb: &mut Sandbox) -> Result<(u32, u32), String> {
    let support = Sandbox::check();
    if !support.multi_range_maps() {
        return Err(format!("no subordinate id ranges for this user (or no newuidmap): {support}"));
    }
    let (sub_u, sub_g) = if is_root() {
        ((100_000, 1000), (100_000, 1000))
    } else {
        (support.subuid[0], support.subgid[0])
    };
    let (sub_u, sub_g) = ((sub_u.0, sub_u.1.min(1000)), (sub_g.0, sub_g.1.min(1000)));
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    sb.uid_map(IdMap::new(0, uid, 1))
        .uid_map(IdMap::new(1, sub_u.0, sub_u.1))
        .gid_map(IdMap::new(0, gid, 1))
        .gid_map(IdMap::new(1, sub_g.0, sub_g.1));
    Ok(sub_u)
}

/// The minimal root of bubblewrap's examples: `/usr` read-only, the usual symlinks into it, a
/// fresh `/proc`, a minimal `/dev`, a private `/tmp`.
pub fn minimal(script: &str) -> Sandbox {
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", script])
        .env("LC_ALL", "C")
        .ro_bind("/usr", "/usr")
        .symlink("usr/bin", "/bin")
        .symlink("usr/lib", "/lib")
        .symlink("usr/lib64", "/lib64")
        .proc("/proc")
        .dev("/dev")
        .tmpfs("/tmp");
    sb
}

/// Runs `script` with /bin/sh in a default sandbox and returns its output.
pub fn sh(script: &str) -> Output {
    sh_in(Namespaces::DEFAULT, script)
}

pub fn sh_in(ns: Namespaces, script: &str) -> Output {
    Sandbox::new("/bin/sh").args(["-c", script]).namespaces(ns).output().expect("spawn")
}

/// The program's stdout, once it has exited with 0 (otherwise the test fails, showing both
/// streams).
pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {}; stdout: {}; stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The inode of one of this process's namespaces, as `readlink /proc/self/ns/NAME` shows it.
pub fn own_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap().to_string_lossy().into_owned()
}

/// Open fds of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Children of this process that are zombies (over all of its threads).
pub fn zombie_children() -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(children) = std::fs::read_to_string(task.path().join("children")) else {
            continue;
        };
        for pid in children.split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // "pid (comm) S ..." — the state follows the last ')'.
            if let Some(rest) = stat.rsplit_once(')') {
                if rest.1.trim_start().starts_with('Z') {
                    out.push(pid.parse().unwrap());
                }
            }
        }
    }
    out
}

/// Zombie children that stay zombies: in a test binary whose other tests spawn at the same time,
/// one of their children may be a zombie for the moment between its exit and its reaping. A
/// zombie nobody will reap is still there two seconds later.
pub fn lasting_zombie_children() -> Vec<u32> {
    let mut seen = zombie_children();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while !seen.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let now = zombie_children();
        seen.retain(|pid| now.contains(pid));
    }
    seen
}

/// All children of this process, zombie or not.
pub fn children() -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(c) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(c.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
        }
    }
    out
}

/// Reads `r` to its end on a thread of its own (a child's stdout or stderr, so neither pipe can
/// fill up while the other is read); join the handle for the bytes.
pub fn read_on_a_thread(
    mut r: impl std::io::Read + Send + 'static,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// The caller's own cgroup directories (v1 hierarchies with controllers, and cgroup2).
pub fn own_cgroups() -> Vec<std::path::PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in std::fs::read_to_string("/proc/self/cgroup").unwrap().lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) =
            (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        if ctrls.contains("name=") {
            continue;
        }
        let point = mounts.lines().find_map(|m| {
            let (mount, fs) = m.split_once(" - ")?;
            let mut fs = fs.split(' ');
            let (kind, _, opts) = (fs.next()?, fs.next()?, fs.next()?);
            let ok = if ctrls.is_empty() {
                kind == "cgroup2"
            } else {
                kind == "cgroup" && ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
            };
            ok.then(|| mount.split(' ').nth(4).unwrap().to_string())
        });
        if let Some(point) = point {
            out.push(std::path::Path::new(&point).join(path.trim_start_matches('/')));
        }
    }
    out
}

/// The real bubblewrap, when installed: the bubblewrap personality's tests check each
/// expectation against it too.
pub const REAL_BWRAP: &str = "/usr/bin/bwrap";

/// The binaries a bubblewrap-personality test runs each case with: a symlink named `bwrap` to
/// this crate's nscell (made in `dir`), then the real bubblewrap if present (else a note).
pub fn bwraps(dir: &TempDir) -> Vec<std::path::PathBuf> {
    use std::path::{Path, PathBuf};
    let link = dir.join("bin");
    std::fs::create_dir_all(&link).unwrap();
    let link = link.join("bwrap");
    if !link.exists() {
        std::os::unix::fs::symlink(nscell_bin(), &link).unwrap();
    }
    let mut all = vec![link];
    if Path::new(REAL_BWRAP).exists() {
        all.push(PathBuf::from(REAL_BWRAP));
    } else {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTE: {REAL_BWRAP} missing, expectations checked against nscell only"
        );
    }
    all
}

/// A bwrap run's outcome, for an assertion's message.
pub fn show(what: &str, bwrap: &std::path::Path, out: &Output) -> String {
    format!(
        "{what} with {}: {:?}\nstdout: {}\nstderr: {}",
        bwrap.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
