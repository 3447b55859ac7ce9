//! `nscell-runtime` on bundles built here from Debian's static busybox, against the real
//! kernel: the lifecycle (create, start, state, kill, delete, `--pid-file`, `--console-socket`),
//! hooks, mounts, masked and read-only paths, namespaces joined by path, resources, CVE-2019-5736
//! (the runtime's binary cannot be reached from inside), and the state directory after crashes.
//! Runs as root and as an unprivileged user (a rootless bundle from `spec --rootless`).
//!
//! The test process is a child subreaper: a container outlives `create` (as under conmon or a
//! containerd shim), and the test reaps it after `delete`.

mod common;

use serde_json::{Value, json};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = env!("CARGO_BIN_EXE_nscell-runtime");
const BUSYBOX: &str = "/bin/busybox";

fn busybox() -> bool {
    if Path::new(BUSYBOX).exists() {
        return true;
    }
    eprintln!("skipped: {BUSYBOX} is missing (Debian's busybox-static; .ci/run installs it)");
    false
}

fn subreaper() {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0);
}

/// Reaps `pid` once it has ended (this process adopted it as a subreaper), waiting at most 10 s.
fn reap(pid: i32) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let mut status = 0;
        // SAFETY: waitpid on one pid, with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid
            || (r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("container process {pid} did not end");
}

/// A bundle: busybox as rootfs/bin/*, config.json from `spec` (`--rootless` unless root).
struct Bundle {
    dir: common::TempDir,
    root: PathBuf,
}

impl Bundle {
    fn new(name: &str, args: &[&str]) -> Bundle {
        let dir = common::TempDir::new(name);
        let rootfs = dir.join("rootfs");
        for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "data"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        for app in
            ["sh", "echo", "cat", "sleep", "true", "hostname", "touch", "readlink", "ls", "id"]
        {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(app)).unwrap();
        }
        let root = dir.join("state");
        std::fs::create_dir(&root).unwrap();
        let mut spec = vec!["spec", "--bundle", dir.path().to_str().unwrap()];
        if !common::is_root() {
            spec.push("--rootless");
        }
        let out = Command::new(RUNTIME).args(&spec).output().unwrap();
        assert!(out.status.success(), "spec: {}", String::from_utf8_lossy(&out.stderr));
        let b = Bundle { dir, root };
        b.edit(|c| {
            c["process"]["args"] = json!(args);
            c["process"]["terminal"] = json!(false);
        });
        b
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir.join("config.json");
        let mut c: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&path, c.to_string()).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(RUNTIME);
        cmd.arg("--root").arg(&self.root).args(args).current_dir(self.dir.path());
        cmd.stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `create ID` with its stdout and stderr to `ID.out` in the bundle.
    fn create(&self, id: &str) -> i32 {
        let out = std::fs::File::create(self.dir.join(&format!("{id}.out"))).unwrap();
        let pid_file = self.dir.join(&format!("{id}.pid"));
        let status = self
            .cmd(&["create", "--bundle", self.dir.path().to_str().unwrap()])
            .arg("--pid-file")
            .arg(&pid_file)
            .arg(id)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .status()
            .unwrap();
        assert!(status.success(), "create {id}: {}", self.output(id));
        std::fs::read_to_string(pid_file).unwrap().trim().parse().unwrap()
    }

    fn output(&self, id: &str) -> String {
        std::fs::read_to_string(self.dir.join(&format!("{id}.out"))).unwrap_or_default()
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    fn wait_stopped(&self, id: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.state(id)["status"] != "stopped" {
            assert!(Instant::now() < end, "{id} did not stop: {}", self.state(id));
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn delete(&self, id: &str, pid: i32) {
        self.ok(&["delete", "--force", id]);
        reap(pid);
        assert!(!self.root.join(id).exists(), "the state directory of {id} is gone");
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn create_leaves_the_container_waiting_and_start_runs_it_to_the_end() {
    if !busybox() {
        return;
    }
    subreaper();
    let b = Bundle::new("oci-life", &["sh", "-c", "echo started as $(id -u) on $(hostname)"]);
    b.edit(|c| c["hostname"] = json!("oci-box"));
    let pid = b.create("c1");
    let st = b.state("c1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid, "state and --pid-file agree");
    assert_eq!(st["id"], "c1");
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(Path::new(st["bundle"].as_str().unwrap()), b.dir.path().canonicalize().unwrap());
    // Set up, waiting before execve: in its own namespaces, its program not run yet.
    // The waiting copy of the runtime is non-dumpable: its /proc files are root's, and only
    // root may look at its namespaces.
    let meta = std::fs::metadata(format!("/proc/{pid}/environ")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0, "non-dumpable while created");
    if common::is_root() {
        let uts = std::fs::read_link(format!("/proc/{pid}/ns/uts")).unwrap();
        assert_ne!(uts, std::fs::read_link("/proc/self/ns/uts").unwrap());
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(b.output("c1"), "", "nothing ran before start");
    let list = b.ok(&["list", "--format", "json"]);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["id"], "c1");
    assert_eq!(list[0]["status"], "created");

    b.ok(&["start", "c1"]);
    b.wait_stopped("c1");
    assert_eq!(b.output("c1"), "started as 0 on oci-box\n");
    let st = b.state("c1");
    assert!(st.get("pid").is_none(), "a stopped container has no pid: {st}");
    let again = b.run(&["start", "c1"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("it is stopped"), "{}", stderr(&again));
    b.delete("c1", pid);
    let gone = b.run(&["state", "c1"]);
    assert_eq!(gone.status.code(), Some(1));
    assert_eq!(stderr(&gone), "nscell-runtime: container \"c1\" does not exist\n");
}

#[test]
fn kill_and_delete_of_created_and_running_containers() {
    if !busybox() {
        return;
    }
    subreaper();
    let b = Bundle::new("oci-kill", &["sleep", "30"]);
    // A created container dies by SIGKILL (PID 1 of its namespace ignores the rest from here).
    let pid = b.create("k1");
    b.ok(&["kill", "k1", "KILL"]);
    b.wait_stopped("k1");
    b.delete("k1", pid);
    // Running: delete without --force is refused, kill with a number works, --all too.
    let pid = b.create("k2");
    b.ok(&["start", "k2"]);
    assert_eq!(b.state("k2")["status"], "running");
    let refused = b.run(&["delete", "k2"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("that is running"), "{}", stderr(&refused));
    let ps: Value = serde_json::from_str(&b.ok(&["ps", "--format", "json", "k2"])).unwrap();
    assert_eq!(ps, json!([pid]));
    b.ok(&["kill", "--all", "k2", "9"]);
    b.wait_stopped("k2");
    let late = b.run(&["kill", "k2", "KILL"]);
    assert!(stderr(&late).contains("not running"), "{}", stderr(&late));
    b.delete("k2", pid);
    // delete of a created one fails and changes nothing; --force kills it.
    let pid = b.create("k3");
    let refused = b.run(&["delete", "k3"]);
    assert!(stderr(&refused).contains("that is created"), "{}", stderr(&refused));
    assert_eq!(b.state("k3")["status"], "created");
    b.delete("k3", pid);
    // And of what is not there at all: nothing to do (containerd deletes twice).
    b.ok(&["delete", "--force", "k3"]);
    assert!(!b.run(&["delete", "k3"]).status.success());
}

#[test]
fn hooks_get_the_state_on_stdin_at_their_stage() {
    if !busybox() {
        return;
    }
    subreaper();
    let b = Bundle::new("oci-hooks", &["true"]);
    let log = b.dir.join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("(echo {name}; cat; echo) >> {}", log.display())]});
    b.edit(|c| {
        c["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "createContainer": [hook("createContainer")],
            "startContainer": [hook("startContainer")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
        c["annotations"] = json!({"org.example": "yes"});
    });
    let pid = b.create("h1");
    b.ok(&["start", "h1"]);
    b.wait_stopped("h1");
    b.delete("h1", pid);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().step_by(2).copied().collect();
    assert_eq!(
        names,
        ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
    );
    for (name, state) in lines.iter().step_by(2).zip(lines.iter().skip(1).step_by(2)) {
        let st: Value =
            serde_json::from_str(state).unwrap_or_else(|e| panic!("{name}: {e}: {state}"));
        assert_eq!(st["id"], "h1", "{name}");
        assert_eq!(st["annotations"]["org.example"], "yes", "{name}");
        let want = match *name {
            "prestart" | "createRuntime" | "createContainer" => "creating",
            "poststop" => "stopped",
            _ => "running",
        };
        assert_eq!(st["status"], want, "{name}");
        if want != "stopped" {
            assert_eq!(st["pid"], pid, "{name}");
        }
    }
    // A failing createRuntime hook fails create, and leaves nothing behind.
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    let out = b.run(&["create", "h2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("createRuntime hook 0"), "{}", stderr(&out));
    assert!(!b.root.join("h2").exists());
}

#[test]
fn mounts_masked_and_read_only_paths_hold_inside() {
    if !busybox() {
        return;
    }
    subreaper();
    let data = common::TempDir::new("oci-data");
    std::fs::write(data.join("f"), "host data\n").unwrap();
    let script = "cat /data/f; touch /data/g 2>/dev/null && echo data-writable; \
        cat /proc/kallsyms | wc -c; ls /proc/acpi | wc -l; \
        (echo 1 > /proc/sys/kernel/ns_last_pid) 2>/dev/null && echo sys-writable; \
        touch /tmp/t && echo tmp-ok; echo x > /proc/self/comm && echo proc-writable; \
        grep -q '^sysfs /sys sysfs ro,' /proc/mounts && echo own-sysfs; \
        grep -q '^shm /dev/shm tmpfs' /proc/mounts && echo shm-named";
    let b = Bundle::new("oci-mounts", &["sh", "-c", script]);
    std::os::unix::fs::symlink("busybox", b.dir.join("rootfs/bin/wc")).unwrap();
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/data", "type": "bind", "source": data.path(), "options": ["rbind", "ro"]}));
        mounts.push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
        c["linux"]["maskedPaths"] = json!(["/proc/kallsyms", "/proc/acpi", "/proc/no-such"]);
        c["linux"]["readonlyPaths"] = json!(["/proc/sys"]);
    });
    let pid = b.create("m1");
    b.ok(&["start", "m1"]);
    b.wait_stopped("m1");
    b.delete("m1", pid);
    assert_eq!(b.output("m1"), "host data\n0\n0\ntmp-ok\nproc-writable\nown-sysfs\nshm-named\n");
}

#[test]
fn a_container_joins_another_ones_namespaces_by_path() {
    if !busybox() {
        return;
    }
    subreaper();
    let a = Bundle::new("oci-join-a", &["sleep", "30"]);
    a.edit(|c| c["hostname"] = json!("pod-a"));
    let pid_a = a.create("a");
    // Started (a pod's pause container is): its namespaces can be opened by their owner.
    a.ok(&["start", "a"]);
    let b = Bundle::new("oci-join-b", &["sh", "-c", "hostname; readlink /proc/self/ns/net"]);
    b.edit(|c| {
        // Its own hostname is not set in a UTS namespace it joins (the pod's).
        c["hostname"] = json!("b-would-be");
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            if n["type"] == "uts" || n["type"] == "network" {
                let name = if n["type"] == "uts" { "uts" } else { "net" };
                n["path"] = json!(format!("/proc/{pid_a}/ns/{name}"));
            }
            if n["type"] == "user" {
                n["path"] = json!(format!("/proc/{pid_a}/ns/user"));
            }
        }
        if !common::is_root() {
            // Joined, the user namespace is a's with its maps.
            c["linux"].as_object_mut().unwrap().remove("uidMappings");
            c["linux"].as_object_mut().unwrap().remove("gidMappings");
        }
    });
    let pid_b = b.create("b");
    b.ok(&["start", "b"]);
    b.wait_stopped("b");
    let net_a = std::fs::read_link(format!("/proc/{pid_a}/ns/net")).unwrap();
    assert_eq!(b.output("b"), format!("pod-a\n{}\n", net_a.display()));
    b.delete("b", pid_b);
    a.delete("a", pid_a);
}

#[test]
fn the_runtimes_binary_cannot_be_reached_from_inside() {
    // CVE-2019-5736: between create and start PID 1 is a copy of nscell-runtime, and an exec
    // runs the runtime's code in the container's namespaces until its execve.
    if !busybox() {
        return;
    }
    subreaper();
    let b = Bundle::new("oci-exe", &["true"]);
    let pid = b.create("x1");
    let probe = "for p in /proc/[0-9]*; do \
        if readlink $p/exe >/dev/null 2>&1; then echo readable $p; fi; \
        (echo x >> $p/exe) 2>/dev/null && echo writable $p; done; echo probed";
    let out = b.run(&["exec", "x1", "sh", "-c", probe]);
    assert!(out.status.success(), "{}", stderr(&out));
    // Only the probe's own processes (busybox) may be reached, never PID 1 (the waiting
    // runtime copy).
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.ends_with("probed\n"), "{text}");
    assert!(!text.lines().any(|l| l == "readable /proc/1" || l.starts_with("writable")), "{text}");
    b.delete("x1", pid);
}

#[test]
fn the_state_directory_survives_crashes() {
    if !busybox() {
        return;
    }
    subreaper();
    let b = Bundle::new("oci-crash", &["sleep", "30"]);
    // The init dies behind the runtime's back: the container is stopped, delete --force cleans.
    let pid = b.create("s1");
    b.ok(&["start", "s1"]);
    // SAFETY: kill with a pid the test created.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    reap(pid);
    assert_eq!(b.state("s1")["status"], "stopped");
    b.ok(&["delete", "s1"]);
    assert!(!b.root.join("s1").exists());
    // A lock left by a verb that died: flock ends with its holder, the next verb goes on.
    let pid = b.create("s2");
    let dir = std::fs::File::open(b.root.join("s2")).unwrap();
    let mut holder =
        Command::new("flock").arg(dir.as_raw_fd().to_string()).args(["sleep", "30"]).spawn();
    if let Ok(h) = holder.as_mut() {
        std::thread::sleep(Duration::from_millis(100));
        let _ = h.kill();
        let _ = h.wait();
    }
    drop(dir);
    assert_eq!(b.state("s2")["status"], "created");
    b.delete("s2", pid);
    // A create that died before its record: only the directory, which delete --force removes.
    std::fs::create_dir(b.root.join("s3")).unwrap();
    let out = b.run(&["state", "s3"]);
    assert!(stderr(&out).contains("has no state"), "{}", stderr(&out));
    b.ok(&["delete", "--force", "s3"]);
    assert!(!b.root.join("s3").exists());
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let out =
        Command::new(RUNTIME).args(["create", "--bundle", "/nonexistent", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("/nonexistent"), "{e}");
    let dir = common::TempDir::new("oci-bad");
    for args in [
        &["--root", "R", "state", "../x"][..],
        &["--root", "R", "kill", "x", "NOPE"][..],
        &["checkpoint", "x"][..],
    ] {
        let args: Vec<String> = args
            .iter()
            .map(|a| if *a == "R" { dir.path().display().to_string() } else { a.to_string() })
            .collect();
        let out = Command::new(RUNTIME).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&out).lines().count(), 1, "{args:?}: {}", stderr(&out));
    }
    let v = Command::new(RUNTIME).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("nscell-runtime version "));
    let f: Value =
        serde_json::from_slice(&Command::new(RUNTIME).arg("features").output().unwrap().stdout)
            .unwrap();
    assert!(f["linux"]["namespaces"].as_array().unwrap().contains(&json!("user")));
    assert!(f["linux"]["capabilities"].as_array().unwrap().contains(&json!("CAP_SYS_ADMIN")));
}

#[test]
fn resources_go_to_a_cgroup_below_cgroups_path_that_delete_removes() {
    if !busybox() {
        return;
    }
    if !common::is_root() {
        eprintln!(
            "skipped: no cgroup is delegated to this user here (tests/cgroup.rs covers a delegated one)"
        );
        return;
    }
    subreaper();
    let b = Bundle::new(
        "oci-cgroup",
        &["sh", "-c", "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /proc/self/cgroup"],
    );
    let path = format!("nscell-oci-test-{}/c1", std::process::id());
    b.edit(|c| {
        c["linux"]["resources"] = json!({"pids": {"limit": 42}});
        c["linux"]["cgroupsPath"] = json!(path);
    });
    let pid = b.create("c1");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let pids_own = own.lines().find_map(|l| {
        l.strip_prefix("8:pids:").or_else(|| {
            let mut it = l.splitn(3, ':');
            let (_, c, p) = (it.next()?, it.next()?, it.next()?);
            (c == "pids").then_some(p)
        })
    });
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(b.root.join("c1/state.json")).unwrap())
            .unwrap();
    let leaves = record["cgroup"].as_str().unwrap_or_default().to_string();
    let pids_leaf = leaves.lines().find(|l| l.contains("/pids/")).map(PathBuf::from);
    if let Some(leaf) = &pids_leaf {
        assert_eq!(std::fs::read_to_string(leaf.join("pids.max")).unwrap().trim(), "42");
        assert!(leaf.parent().unwrap().ends_with(&path), "{leaf:?} is below {path}");
        assert!(
            std::fs::read_to_string(leaf.join("cgroup.procs")).unwrap().contains(&pid.to_string())
        );
    } else {
        eprintln!("no pids hierarchy here ({pids_own:?}): only the placement is checked");
    }
    b.ok(&["start", "c1"]);
    b.wait_stopped("c1");
    b.delete("c1", pid);
    for l in leaves.lines() {
        assert!(!Path::new(l).exists(), "{l} removed");
        assert!(
            !Path::new(l).parent().unwrap().exists(),
            "the cgroupsPath dirs made for it removed"
        );
    }
}

#[test]
fn the_console_socket_gets_the_terminal() {
    if !busybox() {
        return;
    }
    subreaper();
    let b = Bundle::new("oci-tty", &["sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let sock_path = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let accept = std::thread::spawn(move || {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
        let (conn, _) = listener.accept().unwrap();
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 64];
        recvmsg(&conn, &mut [std::io::IoSliceMut::new(&mut buf)], &mut cmsg, RecvFlags::empty())
            .unwrap();
        let mut fds = Vec::new();
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(r) = m {
                fds.extend(r);
            }
        }
        fds.pop().expect("a pty master")
    });
    let out =
        b.cmd(&["create", "--console-socket", sock_path.to_str().unwrap(), "t1"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let master = accept.join().unwrap();
    let pid = b.state("t1")["pid"].as_i64().unwrap() as i32;
    b.ok(&["start", "t1"]);
    let mut got = Vec::new();
    let mut f = std::fs::File::from(master);
    let _ = std::io::Read::read_to_end(&mut f, &mut got);
    assert!(
        String::from_utf8_lossy(&got).contains("on-a-tty"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    b.wait_stopped("t1");
    b.delete("t1", pid);
}
