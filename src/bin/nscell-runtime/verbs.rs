//! The verbs.

use crate::Result;
use crate::args::{Cmd, Create, Exec, Global, Verb};
use crate::config::{self, Options};
use crate::hooks;
use crate::state::{self, Container, Record, Status};
use nscell::cgroup::{Cgroup, Limits};
use nscell::{Namespaces, Sandbox, SetupStage};
use oci_spec::runtime::{Linux, Spec};
use serde_json::{Value, json};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn run(cmd: Cmd) -> Result<u8> {
    let g = &cmd.global;
    match cmd.verb {
        Verb::Help => {
            println!("{}", crate::args::USAGE);
            Ok(0)
        }
        Verb::Version => {
            println!(
                "nscell-runtime version {}\nspec: {}",
                env!("CARGO_PKG_VERSION"),
                state::OCI_VERSION
            );
            Ok(0)
        }
        Verb::Unsupported(v) => Err(format!("{v}: not supported by nscell-runtime")),
        Verb::Features => features(),
        Verb::Spec { rootless, bundle } => spec(rootless, bundle),
        Verb::Create(c) => create(g, c).map(|_| 0),
        Verb::Run(c) => run_container(g, c),
        Verb::Start(id) => start(g, &id).map(|()| 0),
        Verb::State(id) => {
            let c = Container::open(&state::root_dir(g)?, &id)?;
            println!("{}", serde_json::to_string_pretty(&c.oci_state()).unwrap_or_default());
            Ok(0)
        }
        Verb::Kill { id, all, signal } => kill(g, &id, all, &signal).map(|()| 0),
        Verb::Delete { id, force } => delete(g, &id, force).map(|()| 0),
        Verb::Ps { id, json } => ps(g, &id, json).map(|()| 0),
        Verb::List { json, quiet } => list(g, json, quiet).map(|()| 0),
        Verb::Pause(id) => freeze(g, &id, true).map(|()| 0),
        Verb::Resume(id) => freeze(g, &id, false).map(|()| 0),
        Verb::Exec(e) => exec(g, *e),
        Verb::Update { id, .. } => {
            // The container must exist for the message to be about updating it.
            Container::open(&state::root_dir(g)?, &id)?;
            Err("update: changing a running container's limits is not supported yet".into())
        }
    }
}

/// A signal by name (`KILL`, `SIGKILL`) or number.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(format!("signal {n} is out of range"))
        };
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return Err(format!("unknown signal {s:?}")),
    };
    Ok(n)
}

/// `linux.resources` and `linux.cgroupsPath` as limits, or none.
pub fn limits_of(linux: &Linux, o: &Options) -> Result<Option<(Limits, Option<PathBuf>)>> {
    let mut l = Limits::new();
    let mut any = false;
    if let Some(r) = linux.resources() {
        if let Some(m) = r.memory() {
            if let Some(max) = m.limit().filter(|&v| v > 0) {
                l = l.memory_max(max as u64);
                any = true;
            }
            if let Some(res) = m.reservation().filter(|&v| v > 0) {
                l = l.memory_high(res as u64);
                any = true;
            }
        }
        if let Some(max) = r.pids().as_ref().map(|p| p.limit()).filter(|&v| v > 0) {
            l = l.pids_max(max as u64);
            any = true;
        }
        if let Some(c) = r.cpu() {
            if let Some(q) = c.quota().filter(|&q| q > 0) {
                l = l.cpu_max(q as u64, c.period().unwrap_or(100_000));
                any = true;
            }
            if let Some(s) = c.shares().filter(|&s| s > 0) {
                // cgroup v1 shares (2..262144) to v2 weight (1..10000), as runc converts.
                let w = 1 + (s.clamp(2, 262_144) - 2) * 9999 / 262_142;
                l = l.cpu_weight(w);
                any = true;
            }
            if let Some(cpus) = c.cpus().as_deref().filter(|c| !c.is_empty()) {
                l = l.cpus_allowed(cpus);
                any = true;
            }
        }
    }
    let path = linux.cgroups_path().as_ref().filter(|p| !p.as_os_str().is_empty());
    if let Some(p) = path {
        let p = match p.to_str() {
            // slice:prefix:name, without systemd: that unit's place in the cgroupfs.
            Some(s) if o.systemd_cgroup => match s.split(':').collect::<Vec<_>>().as_slice() {
                [slice, prefix, name] => {
                    let slice = if slice.is_empty() { "system.slice" } else { slice };
                    PathBuf::from(format!("/{slice}/{prefix}-{name}.scope"))
                }
                _ => {
                    return Err(format!(
                        "--systemd-cgroup: cgroupsPath {s:?} is not slice:prefix:name"
                    ));
                }
            },
            _ => p.clone(),
        };
        // The container's cgroup is made below it (nscell names its own leaves).
        return Ok(Some((l.parent(&p), Some(p))));
    } else if o.rootless {
        // As runc: without a cgroupsPath a rootless container without delegated cgroups
        // simply has none.
        return Ok(None);
    }
    Ok(any.then_some((l, None)))
}

fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    Spec::load(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// The fds 3..3+n this process inherited, to pass on (`--preserve-fds`, `LISTEN_FDS`).
fn claim_preserved(n: u32) -> Result<Vec<OwnedFd>> {
    let mut out = Vec::new();
    for fd in 3..3 + n as i32 {
        if rustix::io::fcntl_getfd(unsafe_borrow(fd)?).is_err() {
            return Err(format!("--preserve-fds {n}: fd {fd} is not open"));
        }
        // SAFETY: fd was inherited by this process and is named by --preserve-fds; nothing
        // in this process has opened, owned or closed it before (this runs first in the verb),
        // and each number is claimed once.
        out.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(out)
}

fn unsafe_borrow(fd: i32) -> Result<std::os::fd::BorrowedFd<'static>> {
    if fd < 0 {
        return Err(format!("fd {fd}"));
    }
    // SAFETY: only used for the F_GETFD probe right here, while nothing closes fd.
    Ok(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}

/// Sends the pty master to the console socket (`SCM_RIGHTS`), as runc's console protocol.
fn send_console(socket: &Path, master: OwnedFd) -> Result<()> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to the console socket {}: {e}", socket.display()))?;
    let fds = [master.as_fd()];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut buf = SendAncillaryBuffer::new(&mut space);
    buf.push(SendAncillaryMessage::ScmRights(&fds));
    let name = b"/dev/ptmx";
    sendmsg(&stream, &[std::io::IoSlice::new(name)], &mut buf, SendFlags::empty())
        .map_err(|e| format!("cannot send the terminal to {}: {e}", socket.display()))?;
    Ok(())
}

/// Removes a container directory made by a failed create, and the cgroupsPath directories
/// made for it.
struct Undo(Option<PathBuf>, Vec<PathBuf>);

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(dir);
            crate::cgroups::remove(&self.1);
        }
    }
}

fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    state::write_atomic(path, pid.to_string().as_bytes())
}

fn now() -> String {
    crate::log::rfc3339(std::time::SystemTime::now())
}

/// The config's annotations as JSON.
fn annotations(spec: &Spec) -> Value {
    spec.annotations().as_ref().map_or(json!({}), |a| serde_json::to_value(a).unwrap_or_default())
}

/// What create and run share: the builder with its hooks, for a container in `dir`.
struct Prepared {
    built: config::Built,
    bundle: PathBuf,
    annotations: Value,
}

fn prepare(g: &Global, c: &Create) -> Result<Prepared> {
    let id = c.id.as_str();
    let bundle = std::fs::canonicalize(&c.bundle)
        .map_err(|e| format!("bundle {}: {e}", c.bundle.display()))?;
    let spec = load_spec(&bundle)?;
    let opts = Options {
        rootless: state::rootless(),
        no_new_keyring: c.no_new_keyring,
        systemd_cgroup: g.systemd_cgroup,
    };
    let mut built = config::build(&spec, &bundle, &opts)?;
    let annotations = annotations(&spec);
    for fd in claim_preserved(c.preserve_fds)? {
        built.sandbox.keep_fd(fd);
    }
    let creating = |pid: u32| {
        json!({
            "ociVersion": state::OCI_VERSION, "id": id, "status": "creating", "pid": pid,
            "bundle": bundle, "annotations": annotations,
        })
    };
    if let Some(adj) = built.oom_score_adj {
        built.sandbox.on_setup(SetupStage::NamespacesCreated, move |info| {
            std::fs::write(format!("/proc/{}/oom_score_adj", info.pid), adj.to_string())
        });
    }
    let hooks_json = built.hooks.clone();
    if !hooks_json.is_null() {
        let states = creating(0);
        built.sandbox.on_setup(SetupStage::MountsReady, move |info| {
            let mut st = states.clone();
            st["pid"] = json!(info.pid);
            for kind in ["prestart", "createRuntime", "createContainer"] {
                hooks::run(&hooks_json, kind, &st).map_err(std::io::Error::other)?;
            }
            Ok(())
        });
    }
    Ok(Prepared { built, bundle, annotations })
}

fn record_of(
    id: &str,
    pid: u32,
    p: &Prepared,
    cgroup: Option<&Cgroup>,
    made: &[PathBuf],
) -> Result<Record> {
    let (_, start_time) = state::proc_stat(pid as i32)
        .ok_or_else(|| format!("the container's process {pid} ended during create"))?;
    Ok(Record {
        id: id.to_string(),
        pid: pid as i32,
        start_time,
        bundle: p.bundle.clone(),
        created: now(),
        annotations: p.annotations.clone(),
        cgroup: cgroup.map(Cgroup::record),
        hooks: p.built.hooks.clone(),
        own_userns: p.built.own_userns,
        made_cgroups: made.to_vec(),
    })
}

fn new_container_dir(root: &Path, id: &str) -> Result<(PathBuf, std::fs::File)> {
    state::check_id(id)?;
    let dir = root.join(id);
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!("container {id:?} already exists"),
        _ => format!("cannot create {}: {e}", dir.display()),
    })?;
    let lock = std::fs::File::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    state::lock_file(&lock)?;
    Ok((dir, lock))
}

fn not_dumpable() -> Result<()> {
    // The runtime's own memory: a task of it that joins or builds a container cannot be
    // ptraced, nor its /proc/PID/exe (this binary) opened, from inside (CVE-2019-5736).
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(|e| format!("cannot make the runtime non-dumpable: {e}"))
}

/// What create and run start with: the container's directory (made and locked), what undoes
/// it on failure, and the prepared builder (with the cgroupsPath directories made).
fn begin(g: &Global, c: &Create) -> Result<(PathBuf, std::fs::File, Undo, Prepared)> {
    let root = state::root_dir(g)?;
    let (dir, lock) = new_container_dir(&root, &c.id)?;
    let mut undo = Undo(Some(dir.clone()), Vec::new());
    let p = prepare(g, c)?;
    if let Some(path) = &p.built.cgroup_parent {
        undo.1 = crate::cgroups::make(path)?;
    }
    Ok((dir, lock, undo, p))
}

fn create(g: &Global, c: Create) -> Result<()> {
    let (dir, _lock, mut undo, mut p) = begin(g, &c)?;
    if p.built.terminal && c.console_socket.is_none() {
        return Err("process.terminal is true: create needs --console-socket".into());
    }
    let fifo = dir.join("exec.fifo");
    rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::from_raw_mode(0o600))
        .map_err(|e| format!("cannot make {}: {e}", fifo.display()))?;
    use std::os::unix::fs::OpenOptionsExt;
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(|e| format!("cannot open {}: {e}", fifo.display()))?;
    p.built.sandbox.start_gate(reader);
    crate::log::debug(g, &format!("create {}: spawning", c.id));
    let mut child = p.built.sandbox.spawn().map_err(|e| e.to_string())?;
    if let Some(socket) = &c.console_socket {
        if let Some(master) = child.take_pty() {
            send_console(socket, master)?;
        }
    }
    let record = record_of(&c.id, child.id(), &p, child.cgroup(), &undo.1)?;
    state::write_atomic(&dir.join("state.json"), record.to_json().to_string().as_bytes())?;
    if let Some(f) = &c.pid_file {
        write_pid_file(f, child.id())?;
    }
    let _ = child.detach();
    undo.0 = None;
    Ok(())
}

fn start(g: &Global, id: &str) -> Result<()> {
    let c = Container::open(&state::root_dir(g)?, id)?;
    let st = c.status();
    if st != Status::Created {
        return Err(format!("cannot start container {id:?}: it is {}", st.name()));
    }
    let running = state::oci_state(&c.record, Status::Running);
    hooks::run(&c.record.hooks, "startContainer", &running)?;
    let fifo = c.dir.join("exec.fifo");
    use std::os::unix::fs::OpenOptionsExt;
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => format!("cannot start container {id:?}: its process is gone"),
            _ => format!("cannot open {}: {e}", fifo.display()),
        })?;
    std::io::Write::write_all(&mut w, b"0").map_err(|e| format!("cannot start {id:?}: {e}"))?;
    drop(w);
    let _ = std::fs::remove_file(&fifo);
    hooks::run_warn(g, &c.record.hooks, "poststart", &running);
    Ok(())
}

/// Waits until the process `fd` names has ended (its pidfd polls readable), at most `limit`.
fn wait_ended(fd: &OwnedFd, limit: Duration) -> bool {
    use rustix::event::{PollFd, PollFlags, poll};
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return true,
        }
    }
}

fn signal_pidfd(fd: &OwnedFd, sig: i32) -> Result<()> {
    let s = rustix::process::Signal::from_named_raw(sig).ok_or_else(|| format!("signal {sig}"))?;
    rustix::process::pidfd_send_signal(fd, s)
        .map_err(|e| format!("cannot signal the container: {e}"))
}

fn kill(g: &Global, id: &str, all: bool, signal: &str) -> Result<()> {
    let sig = parse_signal(signal)?;
    let c = Container::open(&state::root_dir(g)?, id)?;
    if c.status() == Status::Stopped {
        return Err(format!("cannot kill container {id:?}: it is not running"));
    }
    let fd = c.pidfd().ok_or_else(|| format!("container {id:?}: its process is gone"))?;
    if all {
        if let Some(cg) = c.record.cgroup.as_deref().and_then(|r| Cgroup::open(r).ok()) {
            for pid in cg.pids() {
                let _ = rustix::process::kill_process(
                    rustix::process::Pid::from_raw(pid as i32).ok_or("pid 0")?,
                    rustix::process::Signal::from_named_raw(sig).ok_or("signal")?,
                );
            }
        }
    }
    signal_pidfd(&fd, sig)
}

fn delete(g: &Global, id: &str, force: bool) -> Result<()> {
    let root = state::root_dir(g)?;
    let c = match Container::open(&root, id) {
        Ok(c) => c,
        // A create that died before writing its record leaves a directory only.
        Err(e) if force && root.join(id).is_dir() && state::check_id(id).is_ok() => {
            let _ = std::fs::remove_dir_all(root.join(id));
            crate::log::debug(g, &format!("delete {id}: {e}; removed"));
            return Ok(());
        }
        // As runc: nothing to delete is not a failure of a forced delete.
        Err(_) if force && !root.join(id).exists() && state::check_id(id).is_ok() => return Ok(()),
        Err(e) => return Err(e),
    };
    let st = c.status();
    // The runtime spec: deleting a container that is not stopped changes nothing and fails.
    if st != Status::Stopped && !force {
        return Err(format!(
            "cannot delete container {id:?} that is {}: stop it or use --force",
            st.name()
        ));
    }
    let cg = c.record.cgroup.as_deref().and_then(|r| Cgroup::open(r).ok());
    if st != Status::Stopped {
        if let Some(fd) = c.pidfd() {
            if st == Status::Paused {
                if let Some(cg) = &cg {
                    let _ = cg.thaw();
                }
            }
            signal_pidfd(&fd, libc::SIGKILL)?;
            if !wait_ended(&fd, Duration::from_secs(10)) {
                return Err(format!("container {id:?} did not end after SIGKILL within 10s"));
            }
        }
    }
    if let Some(cg) = cg {
        cg.remove().map_err(|e| format!("cannot remove the container's cgroup: {e}"))?;
    }
    crate::cgroups::remove(&c.record.made_cgroups);
    let stopped = state::oci_state(&c.record, Status::Stopped);
    hooks::run_warn(g, &c.record.hooks, "poststop", &stopped);
    std::fs::remove_dir_all(&c.dir).map_err(|e| format!("cannot remove {}: {e}", c.dir.display()))
}

/// `run`: create and start in one, then wait (or, with `--detach`, leave it running).
fn run_container(g: &Global, c: Create) -> Result<u8> {
    let (dir, _lock, mut undo, mut p) = begin(g, &c)?;
    let forwarder = if c.detach {
        None
    } else {
        Some(
            nscell::signals::Forwarder::builder(&nscell::signals::DEFAULT_FORWARDED)
                .window_size(p.built.terminal)
                .block()
                .map_err(|e| format!("cannot forward signals: {e}"))?,
        )
    };
    let mut child = p.built.sandbox.spawn().map_err(|e| e.to_string())?;
    let record = record_of(&c.id, child.id(), &p, child.cgroup(), &undo.1)?;
    state::write_atomic(&dir.join("state.json"), record.to_json().to_string().as_bytes())?;
    if let Some(f) = &c.pid_file {
        write_pid_file(f, child.id())?;
    }
    let running = state::oci_state(&record, Status::Running);
    hooks::run_warn(g, &record.hooks, "poststart", &running);
    if let (Some(socket), true) = (&c.console_socket, p.built.terminal) {
        if let Some(master) = child.take_pty() {
            send_console(socket, master)?;
        }
    }
    let Some(fw) = forwarder else {
        let _ = child.detach();
        undo.0 = None;
        return Ok(0);
    };
    let info = if p.built.terminal && c.console_socket.is_none() {
        fw.relay(&mut child)
    } else {
        fw.wait(&mut child, None)
    }
    .map_err(|e| e.to_string())?;
    drop(child);
    let stopped = state::oci_state(&record, Status::Stopped);
    hooks::run_warn(g, &record.hooks, "poststop", &stopped);
    drop(undo);
    Ok(info.shell_code() as u8)
}

fn ns_link(pid: i32, name: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}")).ok()
}

fn exec(g: &Global, e: Exec) -> Result<u8> {
    let preserved = claim_preserved(e.preserve_fds)?;
    not_dumpable()?;
    let c = Container::open(&state::root_dir(g)?, &e.id)?;
    let st = c.status();
    if !matches!(st, Status::Running | Status::Created) {
        return Err(format!("cannot exec in container {:?}: it is {}", e.id, st.name()));
    }
    let pid = c.record.pid;
    // The container's own config for what exec does not say.
    let spec = load_spec(&c.record.bundle).ok();
    let mut process = match &e.process {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).map_err(|err| format!("{}: {err}", f.display()))?;
            serde_json::from_str::<oci_spec::runtime::Process>(&text)
                .map_err(|err| format!("{}: not an OCI process: {err}", f.display()))?
        }
        None => {
            let mut p = spec.as_ref().and_then(|s| s.process().clone()).unwrap_or_default();
            let args: Vec<String> =
                e.args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            p.set_args(Some(args));
            p.set_terminal(Some(e.tty));
            if let Some(cwd) = &e.cwd {
                p.set_cwd(cwd.clone());
            }
            let mut env = p.env().clone().unwrap_or_default();
            env.extend(e.env.iter().cloned());
            p.set_env(Some(env));
            if e.no_new_privs {
                p.set_no_new_privileges(Some(true));
            }
            p
        }
    };
    if let Some(u) = &e.user {
        let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
        let mut user = process.user().clone();
        user.set_uid(uid.parse().map_err(|_| format!("--user {u}: not uid[:gid]"))?);
        user.set_gid(gid.parse().map_err(|_| format!("--user {u}: not uid[:gid]"))?);
        process.set_user(user);
    }
    // The exec'd process, with the container's seccomp profile, in its namespaces (joined
    // below), no new root.
    let linux = spec.as_ref().and_then(|s| s.linux().clone()).unwrap_or_default();
    let opts = Options { rootless: false, no_new_keyring: true, systemd_cgroup: false };
    let mut built = config::build_exec(&process, &linux, &opts)?;
    let sb: &mut Sandbox = &mut built.sandbox;
    sb.namespaces(Namespaces::empty());
    for (flag, name) in [
        (Namespaces::USER, "user"),
        (Namespaces::MOUNT, "mnt"),
        (Namespaces::PID, "pid"),
        (Namespaces::NET, "net"),
        (Namespaces::IPC, "ipc"),
        (Namespaces::UTS, "uts"),
        (Namespaces::CGROUP, "cgroup"),
        (Namespaces::TIME, "time"),
    ] {
        let theirs = ns_link(pid, name);
        if theirs.is_none() || theirs == ns_link(std::process::id() as i32, name) {
            continue;
        }
        let f = std::fs::File::open(format!("/proc/{pid}/ns/{name}"))
            .map_err(|err| format!("cannot open the container's {name} namespace: {err}"))?;
        sb.join(flag, f);
    }
    for fd in preserved {
        sb.keep_fd(fd);
    }
    if built.terminal && e.console_socket.is_none() && e.detach {
        return Err("exec --tty --detach needs --console-socket".into());
    }
    let forwarder = if e.detach {
        None
    } else {
        Some(
            nscell::signals::Forwarder::builder(&nscell::signals::DEFAULT_FORWARDED)
                .window_size(built.terminal)
                .block()
                .map_err(|err| format!("cannot forward signals: {err}"))?,
        )
    };
    let mut child = built.sandbox.spawn().map_err(|err| err.to_string())?;
    if let Some(f) = &e.pid_file {
        write_pid_file(f, child.id())?;
    }
    if let (Some(socket), true) = (&e.console_socket, built.terminal) {
        if let Some(master) = child.take_pty() {
            send_console(socket, master)?;
        }
    }
    drop(c);
    let Some(fw) = forwarder else {
        let _ = child.detach();
        return Ok(0);
    };
    let info = if built.terminal && e.console_socket.is_none() {
        fw.relay(&mut child)
    } else {
        fw.wait(&mut child, None)
    }
    .map_err(|err| err.to_string())?;
    Ok(info.shell_code() as u8)
}

/// The pids in the container: its cgroup's, else every process in its PID namespace.
fn pids_of(c: &Container) -> Vec<u32> {
    if let Some(cg) = c.record.cgroup.as_deref().and_then(|r| Cgroup::open(r).ok()) {
        let pids = cg.pids();
        if !pids.is_empty() {
            return pids;
        }
    }
    let pid = c.record.pid;
    let Some(theirs) = ns_link(pid, "pid") else { return Vec::new() };
    let own = ns_link(std::process::id() as i32, "pid");
    if Some(&theirs) == own.as_ref() {
        return vec![pid as u32];
    }
    let mut out: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| ns_link(p as i32, "pid").as_ref() == Some(&theirs))
        .collect();
    out.sort_unstable();
    out
}

fn ps(g: &Global, id: &str, as_json: bool) -> Result<()> {
    let c = Container::open(&state::root_dir(g)?, id)?;
    let pids = if c.status() == Status::Stopped { Vec::new() } else { pids_of(&c) };
    if as_json {
        println!("{}", json!(pids));
    } else {
        println!("{:>8} CMD", "PID");
        for p in pids {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            println!("{p:>8} {}", comm.trim_end());
        }
    }
    Ok(())
}

fn list(g: &Global, as_json: bool, quiet: bool) -> Result<()> {
    let root = state::root_dir(g)?;
    let mut ids: Vec<String> = std::fs::read_dir(&root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .flatten()
        .filter(|e| e.path().join("state.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    let mut rows = Vec::new();
    for id in ids {
        if let Ok(c) = Container::open(&root, &id) {
            let st = c.status();
            rows.push((c.record.clone(), st));
        }
    }
    if quiet {
        rows.iter().for_each(|(r, _)| println!("{}", r.id));
    } else if as_json {
        let v: Vec<Value> = rows
            .iter()
            .map(|(r, st)| {
                json!({
                    "ociVersion": state::OCI_VERSION, "id": r.id,
                    "pid": if *st == Status::Stopped { 0 } else { r.pid },
                    "status": st.name(), "bundle": r.bundle, "created": r.created,
                    "annotations": r.annotations,
                })
            })
            .collect();
        println!("{}", Value::Array(v));
    } else {
        println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED");
        for (r, st) in rows {
            let pid = if st == Status::Stopped { 0 } else { r.pid };
            println!("{}\t{pid}\t{}\t{}\t{}", r.id, st.name(), r.bundle.display(), r.created);
        }
    }
    Ok(())
}

fn freeze(g: &Global, id: &str, on: bool) -> Result<()> {
    let c = Container::open(&state::root_dir(g)?, id)?;
    let st = c.status();
    let want = if on { Status::Running } else { Status::Paused };
    if st != want {
        return Err(format!(
            "cannot {} container {id:?}: it is {}",
            if on { "pause" } else { "resume" },
            st.name()
        ));
    }
    let record = c.record.cgroup.as_deref().ok_or_else(|| {
        format!("container {id:?} has no cgroup to freeze (give it linux.resources or cgroupsPath)")
    })?;
    let cg = Cgroup::open(record).map_err(|e| e.to_string())?;
    if on { cg.freeze() } else { cg.thaw() }.map_err(|e| e.to_string())
}

fn spec(rootless: bool, bundle: Option<PathBuf>) -> Result<u8> {
    let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(format!("{} exists already", path.display()));
    }
    let spec = if rootless {
        Spec::rootless(rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw())
    } else {
        Spec::default()
    };
    let text = serde_json::to_string_pretty(&spec).map_err(|e| e.to_string())?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(0)
}

fn features() -> Result<u8> {
    let k = nscell::KernelFeatures::detect();
    let caps: Vec<String> =
        nscell::Capabilities::ALL.names().take(k.last_cap as usize + 1).collect();
    let v = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": state::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["bind", "rbind", "ro", "rw", "nodev", "mode", "size"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": k.cgroup2.is_some(), "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": [],
                "supportedFlags": [],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "org.nscell.runtime.mount_setattr": k.mount_setattr.to_string(),
            "org.nscell.runtime.landlock_abi": k.landlock_abi.to_string(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(super::parse_signal("KILL"), Ok(libc::SIGKILL));
        assert_eq!(super::parse_signal("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(super::parse_signal("9"), Ok(9));
        assert!(super::parse_signal("0").is_err());
        assert!(super::parse_signal("NOPE").unwrap_err().contains("unknown signal"));
    }
}
