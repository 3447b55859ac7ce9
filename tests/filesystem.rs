//! Filesystem isolation against the real kernel: a new root built from an ordered list of
//! operations. Runs as root and as an unprivileged user (CI runs it both ways).

mod common;

use common::{
    TempDir, children, fd_count, is_root, minimal, nscell_bin, stdout as ok, zombie_children,
};
use nscell::{Error, Namespaces, Sandbox, Step};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The hygiene test counts fds and children of this process: it runs alone, the others beside
/// one another.
static LOCK: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    LOCK.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    LOCK.write().unwrap_or_else(|e| e.into_inner())
}

fn run(sb: &mut Sandbox) -> Output {
    sb.output().expect("spawn")
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn minimal_root_shows_exactly_its_entries() {
    let _g = shared();
    // A file in the host's /tmp must not be visible in the private one.
    let marker = TempDir::new("marker");
    let name = marker.path().file_name().unwrap().to_str().unwrap().to_owned();
    let script = format!(
        "ls -A /; test -e /home && echo home; test -e /etc && echo etc; \
         test -e /tmp/{name} && echo host-tmp; ls -A /tmp | wc -l; echo $$; id -u"
    );
    let out = ok(&run(&mut minimal(&script)));
    assert_eq!(
        lines(&out),
        ["bin", "dev", "lib", "lib64", "proc", "tmp", "usr", "0", "1", "0"],
        "the root must hold exactly what the operations made"
    );
}

#[test]
fn default_without_operations_is_the_host_view() {
    let _g = shared();
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "test -d /home && test -d /etc && echo host"]);
    assert_eq!(ok(&run(&mut sb)), "host\n");
}

#[test]
fn read_only_bind_refuses_writes_and_read_write_bind_writes_through() {
    let _g = shared();
    let dir = TempDir::new("rw");
    std::fs::write(dir.join("existing"), "old").unwrap();
    let mut sb = minimal(
        "touch /ro/new 2>&1; echo changed 2>&1 > /ro/existing; \
         echo inside > /rw/new && echo wrote; cat /ro/existing",
    );
    sb.ro_bind(dir.path(), "/ro").bind(dir.path(), "/rw");
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    assert!(out[0].contains("Read-only file system"), "{out:?}");
    assert!(out[1].contains("Read-only file system"), "{out:?}");
    assert_eq!(&out[2..], ["wrote", "old"]);
    assert_eq!(std::fs::read_to_string(dir.join("new")).unwrap(), "inside\n");
    assert_eq!(std::fs::read_to_string(dir.join("existing")).unwrap(), "old");
}

#[test]
fn read_only_bind_is_read_only_in_submounts_too() {
    let _g = shared();
    // The host's /dev/shm is a world-writable tmpfs mounted below /dev: a read-only bind of /dev
    // must make it read-only too (a non-recursive remount would leave it writable).
    let shm_is_mount = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/dev/shm"));
    if !shm_is_mount {
        skip!("the host's /dev/shm is not a mount of its own");
    }
    let mut sb = minimal(
        "touch /hostdev/shm/nscell-x 2>&1; test -e /hostdev/shm/nscell-x && echo there; true",
    );
    sb.ro_bind("/dev", "/hostdev");
    let out = ok(&run(&mut sb));
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!out.contains("there"), "{out}");
    assert!(!Path::new("/dev/shm/nscell-x").exists());
}

#[test]
fn read_only_bind_covers_a_submount_made_by_root() {
    let _g = shared();
    if !is_root() {
        skip!("making a submount on the host needs root (the /dev/shm case covers this rootless)");
    }
    let dir = TempDir::new("sub");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    rustix::mount::mount("tmpfs", &sub, "tmpfs", rustix::mount::MountFlags::empty(), None).unwrap();
    let mut sb = minimal("touch /data/sub/x 2>&1; echo y > /rw/sub/y && echo wrote");
    sb.ro_bind(dir.path(), "/data").bind(dir.path(), "/rw");
    let out = run(&mut sb);
    let wrote = std::fs::read_to_string(sub.join("y"));
    rustix::mount::unmount(&sub, rustix::mount::UnmountFlags::DETACH).unwrap();
    let out = ok(&out);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("wrote"), "a read-write bind keeps its submounts writable: {out}");
    assert_eq!(wrote.unwrap(), "y\n");
}

#[test]
fn tmpfs_size_and_mode_are_enforced() {
    let _g = shared();
    let mut sb = minimal(
        "stat -c %a /small; head -c 16384 /dev/zero > /small/a && echo fits; \
         { head -c 1048576 /dev/zero > /small/b; } 2>&1; echo $?",
    );
    sb.tmpfs_with("/small", Some(64 * 1024), Some(0o700));
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    assert_eq!(out[0], "700");
    assert_eq!(out[1], "fits");
    assert!(out[2].contains("No space left on device"), "{out:?}");
    assert_eq!(out[3], "1");
}

#[test]
fn dev_has_the_minimal_set_and_they_work() {
    let _g = shared();
    let out = ok(&run(&mut minimal(
        "ls -A /dev; echo x > /dev/null && echo null-ok; head -c 5 /dev/urandom | wc -c; \
         head -c 3 /dev/zero | od -An -tx1; echo y > /dev/shm/f && cat /dev/shm/f; \
         readlink /dev/stdout /dev/core /dev/fd /dev/stdin /dev/stderr /dev/ptmx; \
         test -c /dev/pts/ptmx && echo ptmx",
    )));
    assert_eq!(
        lines(&out),
        [
            "core",
            "fd",
            "full",
            "null",
            "ptmx",
            "pts",
            "random",
            "shm",
            "stderr",
            "stdin",
            "stdout",
            "tty",
            "urandom",
            "zero",
            "null-ok",
            "5",
            " 00 00 00",
            "y",
            "/proc/self/fd/1",
            "/proc/kcore",
            "/proc/self/fd",
            "/proc/self/fd/0",
            "/proc/self/fd/2",
            "pts/ptmx",
            "ptmx"
        ]
    );
}

#[test]
fn old_root_is_unreachable() {
    let _g = shared();
    let out = ok(&run(&mut minimal(
        "ls -A /proc/1/root/..; echo --; cd /..; ls -A; echo --; ls -A /proc/self/cwd/../..; \
         echo --; cut -d' ' -f5 /proc/self/mountinfo",
    )));
    let root = "bin\ndev\nlib\nlib64\nproc\ntmp\nusr\n";
    let parts: Vec<&str> = out.split("--\n").collect();
    assert_eq!(parts[..3], [root, root, root], "{out}");
    let mut points = lines(parts[3]);
    points.sort();
    assert_eq!(
        points,
        [
            "/",
            "/dev",
            "/dev/full",
            "/dev/null",
            "/dev/pts",
            "/dev/random",
            "/dev/shm",
            "/dev/tty",
            "/dev/urandom",
            "/dev/zero",
            "/proc",
            "/tmp",
            "/usr"
        ],
        "only the sandbox's mounts are in its namespace"
    );
}

#[test]
fn a_planted_symlink_cannot_redirect_a_later_operation_to_the_host() {
    let _g = shared();
    let top = TempDir::new("attack");
    let src = top.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(top.join("other")).unwrap();
    std::fs::write(top.join("other/marker"), "other\n").unwrap();
    // Links a hostile program (or image) could have left in a directory that is bound in.
    std::os::unix::fs::symlink("..", src.join("up")).unwrap();
    std::os::unix::fs::symlink("../../../../../../..", src.join("far")).unwrap();
    std::os::unix::fs::symlink(top.path(), src.join("abs")).unwrap();
    std::os::unix::fs::symlink("/etc", src.join("etc")).unwrap();
    let unique = format!("nscell-escape-{}", std::process::id());

    let mut sb = minimal(&format!(
        "cat /escaped; cat /far-escaped; cat /target/marker; ls -A /etc; cat /etc/{unique}"
    ));
    sb.bind(&src, "/data")
        // Through "..": on the host this is top/escaped; inside the new root, "/escaped".
        .file("/data/up/escaped", "in-root\n")
        .file("/data/far/far-escaped", "in-root-too\n")
        // A bind mount through ".." lands in the new root, not on the host's top/target.
        .bind(top.join("other"), "/data/up/target")
        // Through an absolute link to /etc: the new root's /etc.
        .dir("/etc")
        .tmpfs("/data/etc")
        .file(format!("/data/etc/{unique}"), "fake\n");
    let out = ok(&run(&mut sb));
    assert_eq!(lines(&out), ["in-root", "in-root-too", "other", unique.as_str(), "fake"]);
    assert!(!top.join("escaped").exists(), "a file was written through .. to the host");
    assert!(!top.join("target").exists(), "a mount point was made through .. on the host");
    assert!(!Path::new("/far-escaped").exists());
    let host_etc = Path::new("/etc").join(&unique);
    let escaped = host_etc.exists();
    let _ = std::fs::remove_file(&host_etc);
    assert!(!escaped, "a file was written through a symlink into the host's /etc");

    // An absolute link to a host directory resolves inside the new root, where it does not
    // exist: an error, and nothing on the host.
    let mut sb = minimal("true");
    sb.bind(&src, "/data").file("/data/abs/escaped2", "x");
    let err = sb.output().expect_err("the link's target does not exist in the new root");
    assert_eq!(err.step(), Some(Step::CreateFile), "{err}");
    assert!(!top.join("escaped2").exists(), "a file was written through an absolute link");
}

#[test]
fn operations_apply_in_order() {
    let _g = shared();
    // A tmpfs after a file hides it; a file after a tmpfs is inside it.
    let mut sb = minimal("ls -A /a; echo --; ls -A /b; echo --; cat /c/f");
    sb.dir("/a")
        .file("/a/before", "")
        .tmpfs("/a")
        .file("/a/after", "")
        .tmpfs("/b")
        .file("/b/one", "")
        .file("/c/f", "first\n")
        .file("/c/f", "second\n");
    assert_eq!(ok(&run(&mut sb)), "after\n--\none\n--\nsecond\n");
}

#[test]
fn files_dirs_symlinks_modes_and_mqueue() {
    let _g = shared();
    let (r, w) = rustix::pipe::pipe().unwrap();
    rustix::io::write(&w, b"from an fd\n").unwrap();
    drop(w);
    let mut sb = minimal(
        "stat -c %a /d /d/e /f /g; cat /f /g; readlink /l; cat /l; stat -c %a /usr/bin 2>&1 | head -1; \
         grep -c ' - mqueue ' /proc/self/mountinfo",
    );
    sb.dir_with_mode("/d", 0o700)
        .dir("/d/e")
        .chmod("/d/e", 0o711)
        .file_with_mode("/f", "bytes\n", 0o640)
        .file_from_fd("/g", r, Some(0o604))
        .symlink("/f", "/l")
        .symlink("/f", "/l")
        .mqueue("/dev/mqueue");
    let out = ok(&run(&mut sb));
    assert_eq!(
        lines(&out),
        ["700", "711", "640", "604", "bytes", "from an fd", "/f", "bytes", "755", "1"]
    );
}

#[test]
fn remount_ro_makes_a_writable_bind_read_only() {
    let _g = shared();
    let dir = TempDir::new("remount");
    let mut sb =
        minimal("touch /data/x 2>&1; touch /data/t/y 2>&1 && echo tmpfs-was-writable; true");
    sb.bind(dir.path(), "/data").tmpfs("/data/t").remount_ro("/data");
    let out = ok(&run(&mut sb));
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!out.contains("tmpfs-was-writable"), "remount_ro must cover submounts: {out}");
    assert!(!dir.join("x").exists());
}

#[test]
fn rootfs_uses_a_directory_as_the_new_root() {
    let _g = shared();
    let image = TempDir::image("image", &["etc"]);
    std::fs::write(image.join("etc/hostname"), "image\n").unwrap();
    let mut sb = Sandbox::new("/bin/sh");
    sb.args([
        "-c",
        "cat /etc/hostname; ls /proc/1/status; test -c /dev/null && echo dev; touch /x 2>&1; true",
    ])
    .rootfs(image.path())
    .ro_bind("/usr", "/usr");
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    assert_eq!(out[..3], ["image", "/proc/1/status", "dev"]);
    assert!(out[3].contains("Read-only file system"), "{out:?}");

    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "echo w > /written"]).rootfs_rw(image.path()).ro_bind("/usr", "/usr");
    ok(&run(&mut sb));
    assert_eq!(std::fs::read_to_string(image.join("written")).unwrap(), "w\n");
}

#[test]
fn a_missing_source_is_a_clear_error_and_try_skips_it() {
    let _g = shared();
    let mut sb = minimal("true");
    sb.bind("/nonexistent-nscell", "/x");
    let err = sb.output().expect_err("missing source");
    // What bubblewrap prints as "Can't find source path SRC: No such file or directory": the
    // step, the source alone as the path, the errno.
    assert_eq!(err.step(), Some(Step::FindSource));
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(err.path(), Some(Path::new("/nonexistent-nscell")));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "cannot find the source path /nonexistent-nscell: No such file or directory"
        ),
        "{text}"
    );
    assert!(
        text.contains("filesystem operation 8 of 8 (bind /nonexistent-nscell to /x)"),
        "{text}"
    );

    let tries: [fn(&mut Sandbox); 3] = [
        |s| {
            s.bind_try("/nonexistent-nscell", "/x");
        },
        |s| {
            s.ro_bind_try("/nonexistent-nscell", "/x");
        },
        |s| {
            s.dev_bind_try("/nonexistent-nscell", "/x");
        },
    ];
    for make in tries {
        let mut sb = minimal("test -e /x || echo skipped");
        make(&mut sb);
        assert_eq!(ok(&run(&mut sb)), "skipped\n");
    }
}

#[test]
fn errors_name_the_failing_operation() {
    let _g = shared();
    // Creating a mount point under a read-only bind.
    let mut sb = minimal("true");
    sb.dir("/usr/nscell-new");
    let err = sb.output().expect_err("read-only parent");
    assert_eq!(err.step(), Some(Step::CreateDir));
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert_eq!(err.path(), Some(Path::new("/usr/nscell-new")));
    assert!(err.to_string().contains("operation 8 of 8 (dir)"), "{err}");

    // A symlink over something else.
    let mut sb = minimal("true");
    sb.symlink("elsewhere", "/bin");
    let err = sb.output().expect_err("existing symlink");
    assert_eq!(err.step(), Some(Step::CreateSymlink));
    assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(err.path(), Some(Path::new("/bin -> elsewhere")));

    // A destination through a symlink to nowhere: the source exists, and the hint says so.
    let dir = TempDir::new("dangling");
    std::os::unix::fs::symlink("/nowhere/x", dir.join("link")).unwrap();
    let mut sb = minimal("true");
    sb.bind(dir.path(), "/d").ro_bind("/usr", "/d/link");
    let err = sb.output().expect_err("a destination through a dangling symlink");
    assert_eq!((err.step(), err.raw_os_error()), (Some(Step::BindMount), Some(libc::ENOENT)));
    let msg = err.to_string();
    assert!(!msg.contains("does not exist on the host"), "{msg}");
    assert!(msg.contains("/d/link cannot be reached in the new root"), "{msg}");
}

#[test]
fn bad_configurations_are_refused_before_spawning() {
    let _g = shared();
    type Case = (Box<dyn Fn(&mut Sandbox)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            Box::new(|s| {
                s.namespaces(Namespaces::USER | Namespaces::PID).tmpfs("/t");
            }),
            "MOUNT",
        ),
        (
            Box::new(|s| {
                s.tmpfs("/a/../b");
            }),
            "'..'",
        ),
        (
            Box::new(|s| {
                s.tmpfs("/t").symlink("x", "/");
            }),
            "targets / itself",
        ),
        (
            Box::new(|s| {
                s.tmpfs("/t").file("/", "x");
            }),
            "targets / itself",
        ),
        (
            Box::new(|s| {
                s.tmpfs("/t").bind_data("/", "x", None);
            }),
            "targets / itself",
        ),
        (
            Box::new(|s| {
                s.dir("/x").bind("/etc/passwd", "/");
            }),
            "the new root /etc/passwd is not a directory",
        ),
        (
            Box::new(|s| {
                s.overlay(Vec::<&str>::new(), "/tmp/u", "/tmp/w", "/o");
            }),
            "--overlay and --tmp-overlay require at least one --overlay-src",
        ),
        (
            Box::new(|s| {
                s.tmp_overlay(Vec::<&str>::new(), "/o");
            }),
            "the tmp_overlay on /o has 0 lower layer(s)",
        ),
        (
            Box::new(|s| {
                s.ro_overlay(["/usr"], "/o");
            }),
            "--ro-overlay requires at least two --overlay-src",
        ),
        (
            Box::new(|s| {
                s.bind_data("/d", "x", Some(0o10000));
            }),
            "permission mode",
        ),
        (
            Box::new(|s| {
                s.dir_with_mode("/x", 0o17777);
            }),
            "permission mode",
        ),
        (
            Box::new(|s| {
                s.bind("/us\0r", "/usr");
            }),
            "NUL",
        ),
        (
            Box::new(|s| {
                s.tmpfs_with("/t", Some(0), None);
            }),
            "the tmpfs on /t has size 0",
        ),
        (
            Box::new(|s| {
                s.rootfs("/etc/passwd");
            }),
            "the new root /etc/passwd is not a directory",
        ),
        (
            Box::new(|s| {
                s.bind("/etc/passwd", "/").tmpfs("/t");
            }),
            "the new root /etc/passwd is not a directory",
        ),
        (
            Box::new(|s| {
                s.tmpfs("/t").file_from_fd("/t/x", std::fs::File::open("/etc").unwrap(), None);
            }),
            "the fd given for the contents of /t/x (fd",
        ),
        (
            Box::new(|s| {
                let w = std::fs::OpenOptions::new().write(true).open("/dev/null").unwrap();
                s.tmpfs("/t").file_from_fd("/t/w", w, None);
            }),
            "is not open for reading",
        ),
    ];
    for (make, what) in cases {
        let mut sb = Sandbox::new("/bin/true");
        make(&mut sb);
        let err = sb.spawn().expect_err(what);
        assert!(matches!(err, Error::InvalidInput(_)), "{err}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

/// Host mount points, to compare before and after.
fn host_mounts() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

#[test]
fn a_failing_operation_at_any_position_leaves_nothing_behind() {
    let _g = exclusive();
    let dir = TempDir::new("leaks");
    let fds = fd_count();
    let mounts = host_mounts();
    // Failing operations of different kinds, each tried at every position of a working list.
    let failing: [fn(&mut Sandbox); 4] = [
        |s| {
            s.bind("/nonexistent-nscell", "/x");
        },
        |s| {
            // Reading an epoll fd fails (EINVAL) in the child.
            let epoll = rustix::event::epoll::create(rustix::event::epoll::CreateFlags::CLOEXEC);
            s.file_from_fd("/f", epoll.unwrap(), None);
        },
        |s| {
            s.remount_ro("/nonexistent-nscell");
        },
        |s| {
            s.chmod("/nonexistent-nscell", 0o700);
        },
    ];
    let working: [fn(&mut Sandbox, &Path); 6] = [
        |s, _| {
            s.ro_bind("/usr", "/usr");
        },
        |s, _| {
            s.symlink("usr/bin", "/bin").symlink("usr/lib", "/lib").symlink("usr/lib64", "/lib64");
        },
        |s, _| {
            s.proc("/proc");
        },
        |s, _| {
            s.dev("/dev");
        },
        |s, _| {
            s.tmpfs("/tmp");
        },
        |s, d| {
            s.bind(d, "/data");
        },
    ];
    for fail in failing {
        for pos in 0..=working.len() {
            let mut sb = Sandbox::new("/bin/true");
            for (i, op) in working.iter().enumerate() {
                if i == pos {
                    fail(&mut sb);
                }
                op(&mut sb, dir.path());
            }
            if pos == working.len() {
                fail(&mut sb);
            }
            let err = sb.spawn().expect_err("must fail");
            drop(sb); // the sandbox owns the fd of file_from_fd
            assert_eq!(fd_count(), fds, "fd count changed after: {err}");
            assert_eq!(zombie_children(), Vec::<u32>::new(), "zombies after: {err}");
            assert_eq!(children(), Vec::<u32>::new(), "children left after: {err}");
            assert_eq!(host_mounts(), mounts, "host mounts changed after: {err}");
        }
    }
    // And a working sandbox, a hundred times.
    for _ in 0..100 {
        let mut sb = Sandbox::new("/bin/true");
        for op in working {
            op(&mut sb, dir.path());
        }
        assert!(sb.status().unwrap().success());
    }
    assert_eq!(fd_count(), fds);
    assert_eq!(children(), Vec::<u32>::new());
    assert_eq!(host_mounts(), mounts);
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn no_fd_of_the_setup_reaches_the_program() {
    let _g = shared();
    // ls opens one fd (3) to read the directory; the mount fds of the setup are all gone.
    let mut sb = minimal("ls /proc/self/fd; readlink /proc/self/cwd /proc/self/root");
    sb.bind_try("/etc", "/etc");
    assert_eq!(ok(&run(&mut sb)), "0\n1\n2\n3\n/\n/\n");
}

// ---- The nscell binary's filesystem options. ----

const MINIMAL_ARGS: [&str; 19] = [
    "--ro-bind",
    "/usr",
    "/usr",
    "--symlink",
    "usr/bin",
    "/bin",
    "--symlink",
    "usr/lib",
    "/lib",
    "--symlink",
    "usr/lib64",
    "/lib64",
    "--proc",
    "/proc",
    "--dev",
    "/dev",
    "--tmpfs",
    "/tmp",
    "--",
];

fn nscell(args: &[&str]) -> Output {
    std::process::Command::new(nscell_bin())
        .args(args)
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run nscell")
}

#[test]
fn cli_minimal_root_with_bubblewrap_options() {
    let _g = shared();
    let mut args = MINIMAL_ARGS.to_vec();
    args.extend(["sh", "-c", "ls -A /; touch /usr/x 2>&1; true"]);
    let out = ok(&nscell(&args));
    assert_eq!(
        lines(&out),
        [
            "bin",
            "dev",
            "lib",
            "lib64",
            "proc",
            "tmp",
            "usr",
            "touch: cannot touch '/usr/x': Read-only file system"
        ]
    );
}

#[test]
fn cli_perms_size_dir_chmod_file_and_remount() {
    let _g = shared();
    let dir = TempDir::new("cli");
    std::fs::write(dir.join("input"), "from fd 3\n").unwrap();
    // The shell opens fd 3 for nscell, as a caller of bwrap --file does.
    let script = format!(
        "exec 3<{} && exec {} {} --size 65536 --perms 700 --tmpfs /small --perms 750 \
         --dir /d --chmod 711 /d --file 3 /f --bind {} /data --remount-ro /data -- sh -c \
         'stat -c %a /small /d; cat /f; {{ head -c 100000 /dev/zero > /small/x; }} 2>&1; \
         touch /data/y 2>&1; true'",
        dir.join("input").display(),
        nscell_bin(),
        MINIMAL_ARGS[..18].join(" "),
        dir.path().display(),
    );
    let out = std::process::Command::new("/bin/sh").args(["-c", &script]).output().unwrap();
    let out = ok(&out);
    let out = lines(&out);
    assert_eq!(out[..3], ["700", "711", "from fd 3"], "{out:?}");
    assert!(out[3].contains("No space left on device"), "{out:?}");
    assert!(out[4].contains("Read-only file system"), "{out:?}");
}

#[test]
fn cli_errors_name_the_operation_and_path() {
    let _g = shared();
    let out = nscell(&["--bind", "/nonexistent-nscell", "/x", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(
            "nscell: cannot find the source path /nonexistent-nscell: No such file or directory"
        ),
        "{err}"
    );
    assert!(err.contains("filesystem operation 1 of 1"), "{err}");

    let mut args = MINIMAL_ARGS[..18].to_vec();
    args.extend(["--bind-try", "/nonexistent-nscell", "/x", "sh", "-c", "test -e /x || echo ok"]);
    assert_eq!(ok(&nscell(&args)), "ok\n");

    let out = nscell(&["--file", "77", "/f", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("nscell: --file 77: "));
}

#[test]
fn an_unmapped_own_id_is_named_as_the_cause() {
    let _g = shared();
    // Only subordinate gids: the caller's own gid, which the sandbox runs as, is left out.
    let support = Sandbox::check();
    if !support.multi_range_maps() {
        skip!("no subordinate id ranges for this user (or no newgidmap): {support}");
    }
    let sub = if is_root() { 100_000 } else { support.subgid[0].0 };
    // The mounts are locked through a user namespace that only a task whose ids are mapped may
    // create (EPERM); without CAP_SYS_ADMIN nothing is locked, and the tmpfs's files cannot
    // belong to the unmapped gid (EOVERFLOW). Either way the cause is named.
    for (cap_drop, errno) in [(&[][..], 1), (&["--cap-drop", "ALL"][..], 75)] {
        let map = format!("1:{sub}:10");
        let mut args = vec!["--map-groups", &map];
        args.extend_from_slice(cap_drop);
        args.extend(["--tmpfs", "/t", "--", "true"]);
        let out = nscell(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(err.contains(&format!("(os error {errno})")), "{err}");
        assert!(
            err.contains("the caller's own uid or gid is not in the sandbox's id maps"),
            "{err}"
        );
    }
}

// ---- Cases ported from bubblewrap's tests/test-run.sh (our own code). ----

#[test]
fn binding_the_host_root_shows_the_real_tmp() {
    let _g = shared();
    let dir = TempDir::new("realtmp");
    std::fs::write(dir.join("hello"), "hello\n").unwrap();
    let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    // The new root is built on the child's /tmp: sources are taken before, so /tmp is real.
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", &format!("cat /tmp/{name}/hello /mnt/{name}/hello")])
        .ro_bind("/", "/")
        .proc("/proc")
        .bind("/tmp", "/mnt");
    assert_eq!(ok(&run(&mut sb)), "hello\nhello\n");
}

#[test]
fn a_destination_over_a_symlink_mounts_on_its_target() {
    let _g = shared();
    let mut sb = minimal("ls /tmp/dir | grep -c . ; readlink /tmp/link");
    sb.dir("/tmp/dir").symlink("dir", "/tmp/link").ro_bind("/usr/bin", "/tmp/link");
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    assert!(out[0].parse::<u32>().unwrap() > 10, "/usr/bin is mounted on /tmp/dir: {out:?}");
    assert_eq!(out[1], "dir");
}

#[test]
fn mount_points_are_created_with_bubblewraps_permissions() {
    let _g = shared();
    let dir = TempDir::new("perms");
    std::fs::create_dir(dir.join("some-dir")).unwrap();
    std::fs::write(dir.join("some-file"), "").unwrap();
    let mut sb = minimal("stat -c %a /tmp /p /p/q");
    sb.bind(dir.path(), "/data")
        .bind(dir.join("some-dir"), "/data/new/dir-mountpoint")
        .bind(dir.join("some-file"), "/data/new/file-mountpoint")
        .tmpfs("/p/q");
    assert_eq!(ok(&run(&mut sb)), "755\n755\n755\n");
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o7777;
    // Exactly, whatever the caller's umask (the setup's is 0, as bubblewrap's).
    assert_eq!(mode("new"), 0o755, "a parent directory");
    assert_eq!(mode("new/dir-mountpoint"), 0o755, "a directory mount point");
    assert_eq!(mode("new/file-mountpoint"), 0o444, "a file mount point");
}

/// This process's umask, as /proc/self/status shows it (reading it does not change it).
fn current_umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

#[test]
fn working_directory_is_resolved_in_the_new_root() {
    let _g = shared();
    let mut sb = minimal("pwd");
    sb.current_dir("/usr/bin");
    assert_eq!(ok(&run(&mut sb)), "/usr/bin\n");
    let mut sb = minimal("true");
    sb.current_dir("/home");
    let err = sb.output().expect_err("no /home in the new root");
    assert_eq!(err.step(), Some(Step::Chdir));
}

#[test]
fn new_root_on_the_handshake_path_and_without_a_user_namespace() {
    let _g = shared();
    // Without USER: real root keeps its ids; an unprivileged caller gets an implicit user
    // namespace. Either way the new root is built.
    let mut sb = minimal("ls -A / | wc -l; id -u");
    sb.namespaces(Namespaces::MOUNT | Namespaces::PID);
    let uid = rustix::process::geteuid().as_raw();
    assert_eq!(ok(&run(&mut sb)), format!("7\n{uid}\n"));

    // Maps the child cannot write itself: the parent writes them while the child waits.
    let support = Sandbox::check();
    if !support.multi_range_maps() {
        skip!("no subordinate id ranges for this user (or no newuidmap): {support}");
    }
    let gid = rustix::process::getegid().as_raw();
    let (sub_u, sub_g) = if is_root() {
        ((100_000, 1000), (100_000, 1000))
    } else {
        (support.subuid[0], support.subgid[0])
    };
    let mut sb = minimal("ls -A / | wc -l; id -u; cut -d' ' -f5 /proc/self/mountinfo | wc -l");
    sb.uid_map(nscell::IdMap::new(0, uid, 1))
        .uid_map(nscell::IdMap::new(1, sub_u.0, sub_u.1.min(1000)))
        .gid_map(nscell::IdMap::new(0, gid, 1))
        .gid_map(nscell::IdMap::new(1, sub_g.0, sub_g.1.min(1000)));
    assert_eq!(ok(&run(&mut sb)), "7\n0\n13\n");
}

#[test]
fn read_only_without_mount_setattr_remounts_each_submount() {
    let _g = shared();
    // The fallback for kernels before 5.12, forced: every mount of the tree is remounted with
    // the flags it has (locked ones included) plus ro/nosuid/nodev.
    let mut sb = minimal(
        "touch /hostdev/shm/nscell-y 2>&1; touch /usr/nscell-y 2>&1; touch /data/t/y 2>&1; \
         echo w > /rw/w && echo wrote; grep -c ' ro,' /proc/self/mountinfo; true",
    );
    let dir = TempDir::new("fallback");
    sb.remount_fallback(true)
        .ro_bind("/dev", "/hostdev")
        .bind(dir.path(), "/data")
        .tmpfs("/data/t")
        .remount_ro("/data")
        .bind(dir.path(), "/rw");
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    for l in &out[..3] {
        assert!(l.contains("Read-only file system"), "{out:?}");
    }
    assert_eq!(out[3], "wrote");
    assert!(out[4].parse::<u32>().unwrap() >= 5, "{out:?}");
    assert!(!Path::new("/dev/shm/nscell-y").exists());

    // And as the rootfs.
    let image = TempDir::image("fallback-image", &[]);
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "touch /x 2>&1; true"])
        .remount_fallback(true)
        .rootfs(image.path())
        .ro_bind("/usr", "/usr");
    assert!(ok(&run(&mut sb)).contains("Read-only file system"));
}

#[test]
fn bind_is_nodev_and_dev_bind_is_not() {
    let _g = shared();
    let mut sb = minimal("{ echo x > /hostdev/null; } 2>&1; echo x > /devices/null && echo usable");
    sb.bind("/dev", "/hostdev").dev_bind("/dev", "/devices");
    let out = ok(&run(&mut sb));
    assert!(out.contains("Permission denied"), "a plain bind must be nodev: {out}");
    assert!(out.ends_with("usable\n"), "dev_bind keeps devices usable: {out}");
}

#[test]
fn cli_rootfs_dev_bind_and_mqueue() {
    let _g = shared();
    let image = TempDir::image("cli-image", &["hostdev"]);
    let root = image.path().to_str().unwrap();
    let out = ok(&nscell(&[
        "--rootfs",
        root,
        "--ro-bind",
        "/usr",
        "/usr",
        "--dev-bind",
        "/dev",
        "/hostdev",
        "--mqueue",
        "/dev/mqueue",
        "sh",
        "-c",
        "ls /; echo x > /hostdev/null && echo usable; grep -c ' - mqueue ' /proc/self/mountinfo",
    ]));
    assert_eq!(out, "bin\ndev\nhostdev\nlib\nlib64\nproc\nusr\nusable\n1\n");
}

#[test]
fn proc_without_a_pid_namespace_explains_itself() {
    let _g = shared();
    // A user namespace may mount a procfs only for a PID namespace it owns.
    let mut sb = minimal("true");
    sb.namespaces(Namespaces::USER | Namespaces::MOUNT);
    let err = sb.output().expect_err("no PID namespace of its own");
    assert_eq!(err.step(), Some(Step::MountProcAt), "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert_eq!(err.path(), Some(Path::new("/proc")));
    assert!(err.hint().unwrap().contains("Namespaces::PID"), "{err}");
    assert!(err.hint().unwrap().contains("operation 5 of 7 (proc)"), "{err}");
}

// ---- bubblewrap's filesystem behaviour (issue 14: nscell as a drop-in bwrap). ----

/// The mode bits of a host path, as `stat -c %a` prints them.
fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A sandbox of the host's whole root, read-write (bubblewrap's tests' `--bind / /`), with a
/// private /tmp unless `tmp` is false. Runs `script` with sh.
fn host_root(script: &str, tmp: bool) -> Sandbox {
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", script]).env("LC_ALL", "C").bind("/", "/");
    if tmp {
        sb.tmpfs("/tmp");
    }
    sb
}

#[test]
fn mounts_before_a_root_bind_are_accepted_and_covered_by_it() {
    let _g = shared();
    let dir = TempDir::new("under-root");
    std::fs::write(dir.join("host-file"), "host\n").unwrap();
    let sock = dir.join("sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // A socket bound onto itself, then the root over everything (bubblewrap's order): the
    // binds before the root are made, then covered; the root bind is read-only.
    let script = format!(
        "test -S {sock} && echo socket; test -e /nscell-before || echo covered; \
         cat {dir}/host-file; touch {dir}/x 2>&1; true",
        sock = sock.display(),
        dir = dir.path().display()
    );
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", &script])
        .env("LC_ALL", "C")
        .bind(&sock, &sock)
        .file("/nscell-before", "x")
        .tmpfs("/tmp")
        .ro_bind("/", "/");
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    assert_eq!(out[..3], ["socket", "covered", "host"], "{out:?}");
    assert!(out[3].contains("Read-only file system"), "the root bind on top is read-only: {out:?}");

    // The suite's usual start, then a second root bind: the tmpfs on /tmp is covered, the
    // host's /tmp shows through; mounts after it go on top of it.
    let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
    let mut sb = host_root(
        &format!(
            "cat /tmp/{name}/host-file; ls /mnt/{name} | grep -c host-file; ls -A /srv | wc -l"
        ),
        true,
    );
    sb.bind("/", "/").bind("/tmp", "/mnt").tmpfs("/srv");
    assert_eq!(ok(&run(&mut sb)), "host\n1\n0\n");
}

#[test]
fn a_root_bind_after_other_operations_with_the_remount_fallback() {
    let _g = shared();
    // The root stacked on later: its read-only remount must reach the mount on top.
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "touch /etc/nscell-x 2>&1; test -e /d || echo covered; true"])
        .env("LC_ALL", "C")
        .remount_fallback(true)
        .dir("/d")
        .ro_bind("/", "/");
    // Remounting mount by mount fails under locked mounts: refused, never half read-only.
    let e = sb.spawn().unwrap_err();
    assert!(matches!(e, nscell::Error::Unsupported { .. }), "{e}");
    assert!(!Path::new("/etc/nscell-x").exists());
}

#[test]
fn a_directory_bound_on_tmp_shows_nothing_of_the_old_or_new_root() {
    let _g = shared();
    let dir = TempDir::new("on-tmp");
    std::fs::write(dir.join("input"), "hello\n").unwrap();
    for tmp in [false, true] {
        let mut sb = host_root(
            "cat /tmp/input; ls -A /tmp; test -d /tmp/oldroot && echo oldroot; \
             test -d /tmp/newroot && echo newroot; true",
            tmp,
        );
        sb.bind(dir.path(), "/tmp");
        assert_eq!(ok(&run(&mut sb)), "hello\ninput\n");
    }
    // And a directory bound inside the private /tmp.
    let mut sb = host_root("cat /tmp/here/input; ls -A /tmp", true);
    sb.bind(dir.path(), "/tmp/here");
    assert_eq!(ok(&run(&mut sb)), "hello\nhere\n");
}

#[test]
fn missing_bind_destinations_are_made_as_bubblewrap_makes_them() {
    let _g = shared();
    let dir = TempDir::new("mountpoints");
    std::fs::create_dir(dir.join("empty")).unwrap();
    std::fs::create_dir(dir.join("full")).unwrap();
    std::fs::write(dir.join("full/inside"), "").unwrap();
    std::fs::write(dir.join("file"), "file\n").unwrap();
    std::fs::write(dir.join("full/target"), "old\n").unwrap();
    // A missing file from a character device, an empty directory over a full one, a file
    // onto a file, a file whose destination differs from its source.
    let mut sb = minimal(
        "test -c /some/missing/path && echo chardev; stat -c %a /some /some/missing; \
         ls -A /data/full | wc -l; cat /data/target /elsewhere/f",
    );
    sb.ro_bind("/dev/null", "/some/missing/path")
        .bind(dir.path(), "/data")
        .ro_bind(dir.join("full/target"), "/data/target")
        .ro_bind(dir.join("empty"), "/data/full")
        .ro_bind(dir.join("file"), "/data/target")
        .ro_bind(dir.join("file"), "/elsewhere/f");
    assert_eq!(ok(&run(&mut sb)), "chardev\n755\n755\n0\nfile\nfile\n");
    // The mount point made for /data/target on the host: an empty file, 0444.
    assert_eq!(mode_of(&dir.join("target")), 0o444);
    assert_eq!(std::fs::read(dir.join("target")).unwrap(), b"");
}

#[test]
fn a_bind_onto_a_symlink_binds_onto_its_target_in_the_new_root() {
    let _g = shared();
    // bubblewrap's "can bind a destination over a symlink", on its usual start.
    let mut sb = host_root("readlink /tmp/link; test -f /tmp/dir/passwd && echo etc", true);
    sb.dir("/tmp/dir").symlink("dir", "/tmp/link").bind("/etc", "/tmp/link");
    assert_eq!(ok(&run(&mut sb)), "dir\netc\n");
    // An absolute symlink resolves in the new root, not on the host.
    let mut sb = minimal("test -f /tmp/d/passwd && echo etc");
    sb.dir("/tmp/d").symlink("/tmp/d", "/tmp/abs").ro_bind("/etc", "/tmp/abs");
    assert_eq!(ok(&run(&mut sb)), "etc\n");
}

#[test]
fn modes_of_dirs_parents_tmpfs_and_files_are_bubblewraps() {
    let _g = shared();
    let dir = TempDir::new("modes");
    std::fs::create_dir(dir.join("existed")).unwrap();
    std::fs::set_permissions(dir.join("existed"), std::fs::Permissions::from_mode(0o710)).unwrap();
    std::fs::create_dir(dir.join("existed2")).unwrap();
    std::fs::set_permissions(dir.join("existed2"), std::fs::Permissions::from_mode(0o754)).unwrap();
    let mut sb = minimal("true");
    sb.bind(dir.path(), "/data")
        .dir_with_mode("/data/set", 0o1741)
        .dir("/data/existed")
        .dir_with_mode("/data/existed2", 0o741)
        .dir("/data/chmodded")
        .chmod("/data/chmodded", 0o1755)
        .dir("/data/default")
        .dir("/data/parent/dir");
    // bubblewrap's table: the mode given, and the mode of the parent made for it.
    let table = [
        (0o1777, 0o755),
        (0o755, 0o755),
        (0o644, 0o755),
        (0o750, 0o750),
        (0o710, 0o750),
        (0o720, 0o750),
        (0o640, 0o750),
        (0o700, 0o700),
        (0o600, 0o700),
        (0o705, 0o705),
        (0o604, 0o705),
        (0o000, 0o700),
    ];
    for (mode, _) in table {
        sb.dir_with_mode(format!("/data/parent-of-{mode:04o}/dir"), mode);
    }
    ok(&run(&mut sb));
    let mode = |p: &str| mode_of(&dir.join(p));
    assert_eq!(mode("set"), 0o1741);
    assert_eq!(mode("existed"), 0o710, "an existing directory keeps its mode");
    assert_eq!(mode("existed2"), 0o754, "an existing directory keeps its mode");
    assert_eq!(mode("chmodded"), 0o1755);
    assert_eq!(mode("default"), 0o755);
    assert_eq!(mode("parent"), 0o755);
    for (m, parent) in table {
        let p = format!("parent-of-{m:04o}");
        assert_eq!(mode(&p), parent, "the parent of a {m:04o} directory");
        assert_eq!(mode(&format!("{p}/dir")), m, "a {m:04o} directory");
        std::fs::set_permissions(dir.join(&p), std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(
            dir.join(&format!("{p}/dir")),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
    }

    // Files: 0666 by default (not less the umask), or the mode given; a data bind 0600 by
    // default, its parents 0700.
    let mut sb = minimal(
        "stat -c %a /tmp/file /tmp/file640 /tmp/data /tmp/data640 /tmp/rodata /tmp/sub /tmp/sub/data; \
         cat /tmp/data /tmp/rodata; echo more >> /tmp/data && echo writable; \
         { echo more >> /tmp/rodata; } 2>&1; true",
    );
    sb.file("/tmp/file", "")
        .file_with_mode("/tmp/file640", "", 0o640)
        .bind_data("/tmp/data", "data\n", None)
        .bind_data("/tmp/data640", "", Some(0o640))
        .ro_bind_data_from_fd("/tmp/rodata", pipe_with("from an fd\n"), None)
        .bind_data("/tmp/sub/data", "", None);
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    assert_eq!(
        out[..10],
        ["666", "640", "600", "640", "600", "700", "600", "data", "from an fd", "writable"],
        "{out:?}"
    );
    assert!(out[10].contains("Read-only file system"), "{out:?}");

    // A tmpfs's root: 0755 by default, or the mode given, with the size given.
    let mut sb = minimal(
        "stat -c %a /t1 /t2 /t3; df --output=size --block-size=1K /t3 | tail -1 | tr -d ' '",
    );
    sb.tmpfs("/t1").tmpfs_with("/t2", None, Some(0o1777)).tmpfs_with(
        "/t3",
        Some(1_048_576),
        Some(0o1777),
    );
    assert_eq!(ok(&run(&mut sb)), "755\n1777\n1777\n1024\n");
}

/// A pipe's read end holding `bytes`, its write end closed.
fn pipe_with(bytes: &str) -> rustix::fd::OwnedFd {
    let (r, w) = rustix::pipe::pipe().unwrap();
    rustix::io::write(&w, bytes.as_bytes()).unwrap();
    r
}

#[test]
fn a_data_bind_leaves_the_destinations_filesystem_alone() {
    let _g = shared();
    let dir = TempDir::new("data-bind");
    std::fs::write(dir.join("passwd"), "host\n").unwrap();
    // Onto a file of a read-only bind: the file is covered, not written.
    let mut sb = minimal(
        "cat /data/passwd; ls -A /tmp /data | wc -l; grep -c /data/passwd /proc/self/mountinfo",
    );
    sb.ro_bind(dir.path(), "/data").ro_bind_data("/data/passwd", "sandbox\n", None);
    // `ls -A /tmp /data` prints "/data:", "passwd", "", "/tmp:": nothing of the data file's
    // own place shows.
    assert_eq!(ok(&run(&mut sb)), "sandbox\n4\n1\n");
    assert_eq!(std::fs::read_to_string(dir.join("passwd")).unwrap(), "host\n");
}

#[test]
fn the_program_gets_the_callers_umask_back() {
    let _g = shared();
    let want = format!("{:04o}\n", current_umask());
    assert_eq!(ok(&run(&mut minimal("umask"))), want);
}

#[test]
fn symlinks_are_idempotent_and_a_conflict_names_what_is_there() {
    let _g = shared();
    let dir = TempDir::new("symlinks");
    let link = dir.join("symlink");
    let d = dir.path().to_str().unwrap().to_owned();
    let make = |target: &str| {
        let mut sb = host_root("true", true);
        sb.ro_bind("/", "/").bind(&d, &d).symlink(target, &link);
        sb.output()
    };
    make("/dev/null").unwrap();
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/dev/null"));
    make("/dev/null").expect("the same symlink again is fine");
    let err = make("/dev/full").expect_err("a conflicting symlink");
    assert_eq!((err.step(), err.raw_os_error()), (Some(Step::CreateSymlink), Some(libc::EEXIST)));
    assert!(err.to_string().contains("existing destination is /dev/null"), "{err}");
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/dev/null"));

    // A symlink of an earlier operation; something that is not a symlink.
    let mut sb = minimal("true");
    sb.symlink("a", "/tmp/l").symlink("b", "/tmp/l");
    let err = sb.output().expect_err("a conflicting symlink");
    assert!(err.to_string().contains("existing destination is a;"), "{err}");
    let mut sb = minimal("true");
    sb.symlink("x", "/usr");
    let err = sb.output().expect_err("a directory is there");
    assert!(err.to_string().contains("destination exists and is not a symlink"), "{err}");
}

#[test]
fn bind_fd_binds_what_an_open_fd_names() {
    let _g = shared();
    let dir = TempDir::new("bind-fd");
    std::fs::write(dir.join("file-data"), "foobar\n").unwrap();
    let path_fd = rustix::fs::open(
        dir.path(),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let dir_fd = std::fs::File::open(dir.path()).unwrap();
    let file_fd = std::fs::File::open(dir.join("file-data")).unwrap();
    // On bubblewrap's usual start, with /proc and /dev; the program has none of the fds.
    let mut sb = host_root(
        "cat /tmp/file-data /mnt/x/file-data /etc/f; echo y > /tmp/new && echo wrote; \
         touch /mnt/x/y 2>&1; ls /proc/self/fd",
        true,
    );
    sb.namespaces(Namespaces::DEFAULT)
        .proc("/proc")
        .dev("/dev")
        .bind("/", "/")
        .bind_fd(dir_fd, "/tmp")
        .ro_bind_fd(path_fd, "/mnt/x")
        .ro_bind_fd(file_fd, "/etc/f");
    let out = ok(&run(&mut sb));
    let out = lines(&out);
    assert_eq!(out[..4], ["foobar", "foobar", "foobar", "wrote"], "{out:?}");
    assert!(out[4].contains("Read-only file system"), "{out:?}");
    assert_eq!(out[5..], ["0", "1", "2", "3"], "no fd of bind_fd reaches the program");
    assert_eq!(std::fs::read_to_string(dir.join("new")).unwrap(), "y\n");
}

#[test]
fn a_missing_source_of_any_kind_names_the_source() {
    let _g = shared();
    let dir = TempDir::new("missing-src");
    std::fs::create_dir(dir.join("lower")).unwrap();
    let missing = dir.join("missing");
    let mut sb = minimal("true");
    sb.tmp_overlay([dir.join("lower"), missing.clone()], "/o");
    let err = sb.output().expect_err("a missing overlay layer");
    assert_eq!(err.step(), Some(Step::FindSource), "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(err.path(), Some(missing.as_path()));
    // A bind source that is there but unreadable on the way is not "missing" to the try forms.
    let mut sb = minimal("true");
    sb.ro_bind_try(dir.join("lower/nope"), "/x").ro_bind(dir.join("lower/nope"), "/y");
    let err = sb.output().expect_err("a missing bind source");
    assert_eq!(
        (err.step(), err.path()),
        (Some(Step::FindSource), Some(dir.join("lower/nope").as_path()))
    );
}

/// bubblewrap's overlay fixture: lower1 (a=1, b=2), lower2 (b=3), upper (a=4), work.
struct Layers {
    dir: TempDir,
}

impl Layers {
    fn new(name: &str) -> Layers {
        let dir = TempDir::new(name);
        for d in ["lower1", "lower2", "upper", "work"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("lower1/a"), "1").unwrap();
        std::fs::write(dir.join("lower1/b"), "2").unwrap();
        std::fs::write(dir.join("lower2/b"), "3").unwrap();
        std::fs::write(dir.join("upper/a"), "4").unwrap();
        Layers { dir }
    }

    fn p(&self, name: &str) -> std::path::PathBuf {
        self.dir.join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.p(name)).unwrap()
    }
}

/// overlayfs leaves a `work` directory of mode 0 in a work directory, which the owner cannot
/// list to remove: open it up first.
fn open_work_dir(work: &Path) {
    let _ = std::fs::set_permissions(work.join("work"), std::fs::Permissions::from_mode(0o700));
}

impl Drop for Layers {
    fn drop(&mut self) {
        open_work_dir(&self.p("work"));
    }
}

/// Whether overlayfs can be mounted here as this user (it can in a user namespace since Linux
/// 5.11); the reason when it cannot.
fn overlay_works() -> Result<(), String> {
    // Probed once: the tests that ask run beside one another.
    static WORKS: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    WORKS
        .get_or_init(|| {
            let l = Layers::new("overlay-probe");
            let mut sb = minimal("true");
            sb.tmp_overlay([l.p("lower1")], "/o");
            match sb.output() {
                Ok(out) if out.status.success() => Ok(()),
                Ok(out) => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
                Err(e) if e.step() == Some(Step::MountOverlay) => Err(e.to_string()),
                Err(e) => panic!("not an overlay failure: {e}"),
            }
        })
        .clone()
}

#[test]
fn overlay_with_host_upper_and_work_directories() {
    let _g = shared();
    if let Err(why) = overlay_works() {
        skip!("overlayfs cannot be mounted here: {why}");
    }
    let l = Layers::new("overlay");
    let cat = |lowers: &[&str], file: &str| {
        let mut sb = minimal(&format!("cat /tmp/x/y/z/{file}"));
        let lowers: Vec<_> = lowers.iter().map(|n| l.p(n)).collect();
        sb.overlay(lowers, l.p("upper"), l.p("work"), "/tmp/x/y/z");
        ok(&run(&mut sb))
    };
    assert_eq!(cat(&["lower1"], "a"), "4", "the upper layer is on top");
    assert_eq!(cat(&["lower1"], "b"), "2");
    assert_eq!(cat(&["lower1", "lower2"], "a"), "4");
    assert_eq!(cat(&["lower1", "lower2"], "b"), "3", "the last lower given is the highest");
    let mut sb = minimal("printf 5 > /o/b; cat /o/b; stat -c %a /o");
    sb.overlay([l.p("lower1"), l.p("lower2")], l.p("upper"), l.p("work"), "/o");
    assert_eq!(ok(&run(&mut sb)), "5755\n");
    assert_eq!(l.read("upper/b"), "5", "writes reach the upper directory");
    assert_eq!((l.read("lower1/b"), l.read("lower2/b")), ("2".into(), "3".into()));
}

#[test]
fn overlay_layers_with_mount_option_characters_in_their_names() {
    let _g = shared();
    if let Err(why) = overlay_works() {
        skip!("overlayfs cannot be mounted here: {why}");
    }
    let dir = TempDir::new("overlay-escape");
    let name = |what: &str| dir.join(&format!("{what} \":,\\"));
    for d in ["lower", "upper", "work"] {
        std::fs::create_dir(name(d)).unwrap();
    }
    std::fs::write(name("lower").join("a"), "1").unwrap();
    let mut sb = minimal("cat /tmp/x/a; printf 2 > /tmp/x/a; cat /tmp/x/a");
    sb.overlay([name("lower")], name("upper"), name("work"), "/tmp/x");
    assert_eq!(ok(&run(&mut sb)), "12");
    assert_eq!(std::fs::read_to_string(name("lower").join("a")).unwrap(), "1");
    assert_eq!(std::fs::read_to_string(name("upper").join("a")).unwrap(), "2");
    open_work_dir(&name("work"));
}

#[test]
fn tmp_overlay_discards_its_writes_and_ro_overlay_takes_none() {
    let _g = shared();
    if let Err(why) = overlay_works() {
        skip!("overlayfs cannot be mounted here: {why}");
    }
    let l = Layers::new("tmp-overlay");
    let mut sb = minimal(
        "cat /tmp/x/y/z/a /tmp/x/y/z/b; printf 4 > /tmp/x/y/z/b; cat /tmp/x/y/z/b; echo; \
         cat /tmp/p/b; printf 5 > /tmp/p/b; cat /tmp/q/b; echo; ls -A /tmp",
    );
    sb.tmp_overlay([l.p("lower1"), l.p("lower2")], "/tmp/x/y/z")
        .tmp_overlay([l.p("lower1")], "/tmp/p")
        .tmp_overlay([l.p("lower2")], "/tmp/q");
    assert_eq!(ok(&run(&mut sb)), "134\n23\np\nq\nx\n");
    assert_eq!((l.read("lower1/b"), l.read("lower2/b")), ("2".into(), "3".into()));
    assert_eq!(l.read("upper/a"), "4");

    let mut sb = minimal("cat /o/a /o/b; { printf 4 > /o/b; } 2>&1; cat /o/b");
    sb.ro_overlay([l.p("lower1"), l.p("lower2")], "/o");
    let out = ok(&run(&mut sb));
    assert!(out.starts_with("13"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.ends_with('3'), "{out}");

    // Overlapping layers: the hint says so.
    let mut sb = minimal("true");
    sb.overlay([l.p("upper")], l.p("upper"), l.p("work"), "/o");
    let err = sb.output().expect_err("overlapping layers");
    assert_eq!(err.step(), Some(Step::MountOverlay), "{err}");
}
