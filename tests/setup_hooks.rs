//! The caller's setup hooks (`Sandbox::on_setup`) and id maps the caller writes
//! (`Sandbox::id_maps_by_caller`) against the real kernel: each hook sees the sandbox's first
//! task before it executes the program, hooks run in order, a failing hook leaves nothing, a
//! hook that writes the maps gives the program the ids it wrote, with an init, a PID namespace
//! and joins, and a hook that blocks holds the program back. Runs as root and as an
//! unprivileged user.
//!
//! The tests take one lock: they count this process's fds, children and zombies, which another
//! test's spawn would change.

mod common;

use common::{TempDir, children, fd_count, is_root, stdout, zombie_children};
use nscell::{Error, Namespaces, Sandbox, SetupInfo, SetupStage, Step};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn egid() -> u32 {
    rustix::process::getegid().as_raw()
}

fn read_link(path: String) -> Option<String> {
    std::fs::read_link(path).ok().map(|p| p.to_string_lossy().into_owned())
}

/// Says on stderr (past the harness's capture, as common's `skip!` does) that part of a test
/// cannot run here.
fn skip_part(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED part of {}: {why}", module_path!());
}

/// Whether a memory limit can be set here: the cgroup tests' rule (root uses its own cgroups;
/// anyone else a delegated one CI names in `NSCELL_TEST_CGROUP`, which it runs the tests in).
fn memory_limit() -> Result<(), String> {
    if !is_root() && std::env::var_os("NSCELL_TEST_CGROUP").is_none() {
        return Err("not root and NSCELL_TEST_CGROUP unset: no delegated cgroup to write".into());
    }
    let v1 = std::path::Path::new("/sys/fs/cgroup/memory").is_dir();
    let v2 = std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .is_ok_and(|c| c.split_whitespace().any(|x| x == "memory"));
    if v1 || v2 { Ok(()) } else { Err("no memory controller here".into()) }
}

/// What a hook saw of the sandbox's first task.
#[derive(Debug, Clone)]
struct Seen {
    stage: SetupStage,
    pid: u32,
    /// `/proc/PID/exe`: still this test binary (a child that shares or copies the caller's
    /// memory and has not executed anything). Unreadable for a caller that is not root once an
    /// init has made itself non-dumpable (before it starts the program).
    exe: Option<String>,
    /// `/proc/PID/comm`: never the program's (`sh`).
    comm: String,
    /// `/proc/PID/ns/{user,pid,net}`.
    user_ns: Option<String>,
    pid_ns: Option<String>,
    net_ns: Option<String>,
    /// Its parent (`PPid:` of `/proc/PID/status`).
    ppid: Option<u32>,
    /// Whether it shares this process's memory (`kcmp(KCMP_VM)`; `None` where the kernel has
    /// no `kcmp`, and at `BeforeExec`).
    shares_memory: Option<bool>,
}

/// Whether `pid` shares this process's memory, by `kcmp(KCMP_VM)`.
fn shares_memory(pid: u32) -> Option<bool> {
    const KCMP_VM: libc::c_long = 1;
    // SAFETY: kcmp reads nothing of this process's memory; its arguments are plain integers.
    let r = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            std::process::id() as libc::c_long,
            pid as libc::c_long,
            KCMP_VM,
            0,
            0,
        )
    };
    match r {
        0 => Some(true),
        r if r > 0 => Some(false),
        _ if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) => None,
        _ => panic!("kcmp {pid}: {}", std::io::Error::last_os_error()),
    }
}

fn look(info: SetupInfo) -> Seen {
    let proc = format!("/proc/{}", info.pid);
    let status = std::fs::read_to_string(format!("{proc}/status")).unwrap_or_default();
    let ppid = status.lines().find_map(|l| l.strip_prefix("PPid:")?.trim().parse().ok());
    Seen {
        stage: info.stage,
        pid: info.pid,
        exe: read_link(format!("{proc}/exe")),
        comm: std::fs::read_to_string(format!("{proc}/comm")).unwrap_or_default(),
        user_ns: read_link(format!("{proc}/ns/user")),
        pid_ns: read_link(format!("{proc}/ns/pid")),
        net_ns: read_link(format!("{proc}/ns/net")),
        ppid,
        // With an init, at BeforeExec the init is not dumpable any more, and kcmp refused
        // (unless root).
        shares_memory: (info.stage != SetupStage::BeforeExec)
            .then(|| shares_memory(info.pid))
            .flatten(),
    }
}

/// Sets a hook at every stage that records what it sees.
fn watch_all(sb: &mut Sandbox) -> Arc<Mutex<Vec<Seen>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    for &stage in SetupStage::ALL {
        let log = Arc::clone(&seen);
        sb.on_setup(stage, move |info| {
            log.lock().unwrap().push(look(info));
            Ok(())
        });
    }
    seen
}

fn own_exe() -> String {
    read_link("/proc/self/exe".into()).unwrap()
}

/// Checks what every stage's hook saw of the first task `pid` (the spawned Child's id).
fn assert_saw_the_first_task(seen: &[Seen], pid: u32, what: &str) {
    let stages: Vec<SetupStage> = seen.iter().map(|s| s.stage).collect();
    assert_eq!(stages, SetupStage::ALL, "{what}: {seen:?}");
    for s in seen {
        assert_eq!(s.pid, pid, "{what}: the hook's pid is the Child's: {seen:?}");
        let comm = s.comm.trim();
        assert!(!comm.is_empty() && comm != "sh", "{what}: not exec'd: {seen:?}");
        if s.exe.is_some() || is_root() || !what.starts_with("init") {
            assert_eq!(s.exe.as_deref(), Some(own_exe().as_str()), "{what}: not exec'd: {seen:?}");
        }
        assert_ne!(s.user_ns, Some(common::own_ns("user")), "{what}: in its namespaces: {seen:?}");
        assert_eq!(s.ppid, Some(std::process::id()), "{what}: the caller's child: {seen:?}");
    }
}

#[test]
fn a_hook_at_each_stage_sees_the_first_task_before_it_executes() {
    let _serial = serial();
    type Config = fn(&mut Sandbox);
    // (what, how, whether the first task shares the caller's memory)
    let mut configs: Vec<(&str, Config, bool)> = vec![
        ("default", |_| {}, true),
        // An init has a copy of its own.
        (
            "init",
            |sb| {
                sb.init(true);
            },
            false,
        ),
        // No PID namespace: the pid is the program's own, in the caller's namespace.
        (
            "no PID namespace",
            |sb| {
                sb.namespaces(Namespaces::USER | Namespaces::MOUNT);
            },
            true,
        ),
        (
            "a new root",
            |sb| {
                sb.ro_bind("/", "/").tmpfs("/tmp");
            },
            true,
        ),
    ];
    // Under a memory limit a child outside vfork never shares the caller's memory (the
    // sandbox's OOM killer would kill the caller with it): a copy, as an init gets.
    match memory_limit() {
        Ok(()) => configs.push((
            "memory limit",
            |sb| {
                sb.limits(nscell::cgroup::Limits::new().memory_max(256 << 20));
            },
            false,
        )),
        Err(why) => skip_part(&why),
    }
    for (what, config, shared) in configs {
        let mut sb = Sandbox::new("/bin/sh");
        sb.args(["-c", "exit 3"]);
        config(&mut sb);
        let seen = watch_all(&mut sb);
        let mut child = sb.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
        let pid = child.id();
        assert_eq!(child.wait().unwrap().code(), Some(3), "{what}");
        let seen = seen.lock().unwrap().clone();
        assert_saw_the_first_task(&seen, pid, what);
        for s in &seen {
            if let Some(shares) = s.shares_memory {
                assert_eq!(shares, shared, "{what}: {seen:?}");
            }
        }
        let pid_ns = seen[0].pid_ns.clone();
        if what == "no PID namespace" {
            assert_eq!(pid_ns, Some(common::own_ns("pid")), "{seen:?}");
        } else {
            assert_ne!(pid_ns, Some(common::own_ns("pid")), "{seen:?}");
        }
    }
}

#[test]
fn hooks_run_in_stage_order_and_in_the_order_set() {
    let _serial = serial();
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut sb = Sandbox::new("/bin/true");
    for (stage, name) in [
        (SetupStage::BeforeExec, "exec 1"),
        (SetupStage::NamespacesCreated, "created 1"),
        (SetupStage::MountsReady, "mounts 1"),
        (SetupStage::BeforeExec, "exec 2"),
        (SetupStage::NamespacesCreated, "created 2"),
    ] {
        let log = Arc::clone(&log);
        sb.on_setup(stage, move |_| {
            log.lock().unwrap().push(name);
            Ok(())
        });
    }
    assert!(sb.status().unwrap().success());
    assert_eq!(*log.lock().unwrap(), ["created 1", "created 2", "mounts 1", "exec 1", "exec 2"]);
    // Each spawn runs them again.
    log.lock().unwrap().clear();
    assert!(sb.status().unwrap().success());
    assert_eq!(log.lock().unwrap().len(), 5);
}

/// Asserts that nothing of a failed spawn is left: fds, children, zombies, the first task.
fn assert_nothing_left(fds: usize, pid: Option<u32>, what: &str) {
    assert_eq!(fd_count(), fds, "{what}: fds left");
    assert_eq!(children(), Vec::<u32>::new(), "{what}: children left");
    assert_eq!(zombie_children(), Vec::<u32>::new(), "{what}: zombies left");
    if let Some(pid) = pid {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{what}: {pid} left");
    }
}

#[test]
fn an_error_from_a_hook_fails_the_spawn_and_leaves_nothing() {
    let _serial = serial();
    let dir = TempDir::new("hook-error");
    let marker = dir.join("ran");
    let fds = fd_count();
    for init in [false, true] {
        for &failing in SetupStage::ALL {
            let what = format!("failing at {failing:?}, init {init}");
            let mut sb = Sandbox::new("/bin/sh");
            sb.args(["-c", &format!("touch {}", marker.display())]).init(init);
            let log = Arc::new(Mutex::new(Vec::new()));
            for &stage in SetupStage::ALL {
                let log = Arc::clone(&log);
                sb.on_setup(stage, move |info| {
                    log.lock().unwrap().push((info.stage, info.pid));
                    if info.stage == failing {
                        return Err(std::io::Error::from_raw_os_error(libc::EACCES));
                    }
                    Ok(())
                });
            }
            // A hook after the failing one at the same stage does not run.
            let late = Arc::new(Mutex::new(false));
            let ran = Arc::clone(&late);
            sb.on_setup(failing, move |_| {
                *ran.lock().unwrap() = true;
                Ok(())
            });
            let e = sb.spawn().expect_err(&what);
            assert_eq!(e.step(), Some(Step::SetupHook), "{what}: {e}");
            assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{what}: {e}");
            assert!(matches!(e, Error::Setup { .. }), "{what}: {e}");
            assert!(
                e.to_string().starts_with("cannot run the caller's setup hook: Permission denied"),
                "{what}: {e}"
            );
            let log = log.lock().unwrap().clone();
            let stages: Vec<SetupStage> = log.iter().map(|s| s.0).collect();
            let expected: Vec<SetupStage> =
                SetupStage::ALL.iter().copied().filter(|s| *s <= failing).collect();
            assert_eq!(stages, expected, "{what}");
            assert!(!*late.lock().unwrap(), "{what}: a later hook ran");
            assert!(!marker.exists(), "{what}: the program ran");
            assert_nothing_left(fds, Some(log[0].1), &what);
        }
    }
    // An error of the caller's own, without an errno, keeps its words.
    let mut sb = Sandbox::new("/bin/true");
    sb.on_setup(SetupStage::MountsReady, |_| Err(std::io::Error::other("the caller says no")));
    let e = sb.spawn().unwrap_err();
    assert_eq!((e.step(), e.raw_os_error()), (Some(Step::SetupHook), None), "{e}");
    assert!(e.to_string().ends_with("the caller says no"), "{e}");
    assert_nothing_left(fds, None, "an error without an errno");
}

#[test]
fn a_panicking_hook_panics_after_the_sandbox_is_reaped() {
    let _serial = serial();
    let fds = fd_count();
    let mut sb = Sandbox::new("/bin/true");
    let pid = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&pid);
    sb.on_setup(SetupStage::NamespacesCreated, move |info| {
        *seen.lock().unwrap() = info.pid;
        panic!("the hook's own panic");
    });
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sb.spawn()));
    let payload = caught.expect_err("the panic goes on");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the hook's own panic"));
    let pid = *pid.lock().unwrap();
    assert_nothing_left(fds, Some(pid), "a panicking hook");
}

/// A hook that writes the first task's id maps: `uid`/`gid` inside mapped to the caller's.
fn write_maps(sb: &mut Sandbox, uid: u32, gid: u32) -> &mut Sandbox {
    let (euid, egid) = (euid(), egid());
    sb.id_maps_by_caller(true).on_setup(SetupStage::NamespacesCreated, move |info| {
        let proc = format!("/proc/{}", info.pid);
        // Nothing written yet: the maps are the caller's to write.
        assert_eq!(std::fs::read_to_string(format!("{proc}/uid_map"))?, "");
        std::fs::write(format!("{proc}/uid_map"), format!("{uid} {euid} 1\n"))?;
        std::fs::write(format!("{proc}/setgroups"), "deny")?;
        std::fs::write(format!("{proc}/gid_map"), format!("{gid} {egid} 1\n"))
    })
}

/// The uid_map line as the kernel shows it.
fn map_line(inside: u32, outside: u32) -> String {
    format!("{inside:>10} {outside:>10} {:>10}", 1)
}

#[test]
fn maps_written_by_the_callers_hook_are_the_programs() {
    let _serial = serial();
    let script = "id -u; id -g; cat /proc/self/uid_map; cat /proc/self/setgroups; echo $$";
    let (euid, egid) = (euid(), egid());
    for init in [false, true] {
        for (uid, gid) in [(0, 0), (euid, egid)] {
            for pid_ns in [true, false] {
                let what = format!("{uid}:{gid} inside, init {init}, PID namespace {pid_ns}");
                let mut sb = Sandbox::new("/bin/sh");
                sb.args(["-c", script]);
                if !pid_ns {
                    sb.namespaces(Namespaces::USER | Namespaces::MOUNT | Namespaces::UTS);
                }
                if init {
                    // An init without a PID namespace supervises from outside it (lock files
                    // and held fds imply one): a held fd asks for it.
                    if pid_ns {
                        sb.init(true);
                    } else {
                        sb.hold_fd(std::fs::File::open("/dev/null").unwrap());
                    }
                }
                write_maps(&mut sb, uid, gid);
                let out = sb.output().unwrap_or_else(|e| panic!("{what}: {e}"));
                let text = stdout(&out);
                let lines: Vec<&str> = text.lines().collect();
                assert_eq!(lines[0], uid.to_string(), "{what}: {text}");
                assert_eq!(lines[1], gid.to_string(), "{what}: {text}");
                assert_eq!(lines[2].trim(), map_line(uid, euid).trim(), "{what}: {text}");
                assert_eq!(lines[3], "deny", "{what}: {text}");
                if pid_ns {
                    assert_eq!(lines[4], if init { "2" } else { "1" }, "{what}: {text}");
                } else {
                    assert_ne!(lines[4], "1", "{what}: {text}");
                }
            }
        }
    }
}

#[test]
fn maps_written_by_the_callers_hook_under_a_memory_limit() {
    let _serial = serial();
    if let Err(why) = memory_limit() {
        skip!("{why}");
    }
    // The child is a copy of the caller's (the OOM rule): the hook writes the copy's maps.
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "id -u; id -g"]).limits(nscell::cgroup::Limits::new().memory_max(256 << 20));
    write_maps(&mut sb, 0, 0);
    assert_eq!(stdout(&sb.output().unwrap()), "0\n0\n");
}

#[test]
fn a_nested_user_namespace_maps_the_ids_the_caller_wrote() {
    let _serial = serial();
    let (euid, egid) = (euid(), egid());
    for init in [false, true] {
        for (uid, gid) in [(0, 0), (euid, egid)] {
            let what = format!("{uid}:{gid} inside, init {init}");
            let mut sb = Sandbox::new("/bin/sh");
            sb.args(["-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"])
                .init(init)
                .allow_nested_userns(false);
            write_maps(&mut sb, uid, gid);
            let out = sb.output().unwrap_or_else(|e| panic!("{what}: {e}"));
            let text = stdout(&out);
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            // In the nested namespace: the same ids, each mapped to itself.
            assert_eq!(lines[..2], [uid.to_string(), gid.to_string()], "{what}: {text}");
            assert_eq!(lines[2], map_line(uid, uid).trim(), "{what}: {text}");
            assert_eq!(lines[3], map_line(gid, gid).trim(), "{what}: {text}");
        }
    }
}

#[test]
fn maps_by_the_caller_are_refused_where_they_cannot_work() {
    let _serial = serial();
    let hook = |_: SetupInfo| Ok(());
    let refused = |sb: &mut Sandbox, words: &str| {
        let e = sb.spawn().expect_err(words);
        assert!(e.is_invalid_input(), "{e}");
        assert!(e.to_string().contains(words), "{e}");
    };
    let mut sb = Sandbox::new("/bin/true");
    sb.id_maps_by_caller(true)
        .on_setup(SetupStage::NamespacesCreated, hook)
        .uid_map(nscell::IdMap::new(0, euid(), 1));
    refused(&mut sb, "either nscell's or the caller's");
    let mut sb = Sandbox::new("/bin/true");
    sb.id_maps_by_caller(true)
        .on_setup(SetupStage::NamespacesCreated, hook)
        .gid_map(nscell::IdMap::new(0, egid(), 1));
    refused(&mut sb, "either nscell's or the caller's");
    let mut sb = Sandbox::new("/bin/true");
    sb.id_maps_by_caller(true)
        .on_setup(SetupStage::NamespacesCreated, hook)
        .namespaces(Namespaces::empty());
    refused(&mut sb, "needs a new user namespace");
    // Only a later hook: nothing writes the maps before the child goes on.
    let mut sb = Sandbox::new("/bin/true");
    sb.id_maps_by_caller(true).on_setup(SetupStage::MountsReady, hook);
    refused(&mut sb, "needs a hook at SetupStage::NamespacesCreated");
    // A joined user namespace has maps of its own.
    let mut target = Sandbox::new("sleep").arg("100").spawn().unwrap();
    let user = std::fs::File::open(format!("/proc/{}/ns/user", target.id())).unwrap();
    let mut sb = Sandbox::new("/bin/true");
    sb.id_maps_by_caller(true)
        .on_setup(SetupStage::NamespacesCreated, hook)
        .join(Namespaces::USER, user);
    refused(&mut sb, "needs a new user namespace");
    target.kill().unwrap();
    target.wait().unwrap();
}

#[test]
fn a_blocking_hook_holds_the_program_back_until_it_returns() {
    let _serial = serial();
    let dir = TempDir::new("hook-block");
    let marker = dir.join("ran");
    for stage in [SetupStage::NamespacesCreated, SetupStage::BeforeExec] {
        let (mut r, mut w) = std::io::pipe().unwrap();
        let (entered_tx, entered) = std::sync::mpsc::channel();
        let mut sb = Sandbox::new("/bin/sh");
        sb.args(["-c", &format!("echo ran > {}", marker.display())]);
        sb.on_setup(stage, move |info| {
            entered_tx.send(info.pid).unwrap();
            // Until the other thread says go (bubblewrap's --block-fd).
            let mut byte = [0u8];
            r.read_exact(&mut byte)
        });
        let marker = marker.clone();
        let own = own_exe();
        let go = std::thread::spawn(move || {
            let pid = entered.recv().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            let exe = read_link(format!("/proc/{pid}/exe"));
            let held = !marker.exists() && exe.as_deref() == Some(own.as_str());
            w.write_all(b"g").unwrap();
            (pid, held)
        });
        let mut child = sb.spawn().unwrap();
        let (pid, held) = go.join().unwrap();
        assert!(held, "{stage:?}: the program started while the hook blocked");
        assert_eq!(child.id(), pid);
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read_to_string(dir.join("ran")).unwrap(), "ran\n", "{stage:?}");
        std::fs::remove_file(dir.join("ran")).unwrap();
    }
}

#[test]
fn a_timeout_or_abort_that_passes_in_a_hook_cuts_the_setup_when_it_returns() {
    let _serial = serial();
    let dir = TempDir::new("hook-bound");
    let marker = dir.join("ran");
    let fds = fd_count();
    let script = format!("touch {}", marker.display());
    for init in [false, true] {
        // The timeout passes while the hook sleeps: the sandbox is killed, the program never
        // runs, and the Child says it timed out in its setup.
        let mut sb = Sandbox::new("/bin/sh");
        sb.args(["-c", &script]).init(init).timeout(Duration::from_millis(50));
        sb.on_setup(SetupStage::BeforeExec, |_| {
            std::thread::sleep(Duration::from_millis(150));
            Ok(())
        });
        let mut child = sb.spawn().unwrap();
        let info = child.wait_info().unwrap();
        assert!(info.timed_out && info.timed_out_in_setup, "init {init}: {info:?}");
        assert!(!marker.exists(), "init {init}: the program ran after the timeout");
        drop(child);
        assert_nothing_left(fds, None, "a timeout in a hook");
        // The abort fd becomes readable while the hook runs.
        let (abort_r, mut abort_w) = std::io::pipe().unwrap();
        let mut sb = Sandbox::new("/bin/sh");
        sb.args(["-c", &script]).init(init).abort_setup_on(abort_r);
        // At the last stage: the child would execute the program at once.
        sb.on_setup(SetupStage::BeforeExec, move |_| abort_w.write_all(b"x"));
        let e = sb.spawn().unwrap_err();
        assert!(matches!(e, Error::SetupInterrupted), "init {init}: {e}");
        assert!(!marker.exists(), "init {init}: the program ran after the abort");
        drop(sb);
        assert_nothing_left(fds, None, "an abort in a hook");
    }
}

#[test]
fn after_joins_the_hooks_see_the_task_in_the_joined_namespaces() {
    let _serial = serial();
    let mut target = Sandbox::new("sleep")
        .arg("100")
        .namespaces(Namespaces::DEFAULT | Namespaces::NET)
        .spawn()
        .unwrap();
    let ns = |name: &str| format!("/proc/{}/ns/{name}", target.id());
    let target_net = read_link(ns("net"));
    let mut sb = Sandbox::new("/bin/sh");
    sb.args(["-c", "readlink /proc/self/ns/net"])
        .join(Namespaces::USER, std::fs::File::open(ns("user")).unwrap())
        .join(Namespaces::NET, std::fs::File::open(ns("net")).unwrap());
    let seen = watch_all(&mut sb);
    let child = sb.stdout(nscell::Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(stdout(&out).trim(), target_net.as_deref().unwrap());
    let seen = seen.lock().unwrap().clone();
    assert_saw_the_first_task(&seen, pid, "joined user and net");
    assert!(seen.iter().all(|s| s.net_ns == target_net), "{seen:?}");
    // A new user namespace with the caller's maps beside a joined network namespace: the
    // joining task enters the network namespace, which only root may without its user
    // namespace.
    if is_root() {
        let mut sb = Sandbox::new("/bin/sh");
        sb.args(["-c", "id -u; readlink /proc/self/ns/net"])
            .join(Namespaces::NET, std::fs::File::open(ns("net")).unwrap());
        write_maps(&mut sb, 0, 0);
        let text = stdout(&sb.output().unwrap());
        assert_eq!(text, format!("0\n{}\n", target_net.as_deref().unwrap()));
    } else {
        skip_part("only root may join a network namespace beside a new user namespace");
    }
    target.kill().unwrap();
    target.wait().unwrap();
}
