//! The [`Sandbox`] builder.

#[cfg(feature = "tokio")]
mod asynchronous;
mod cgroup;
mod check;
#[cfg(test)]
mod checkpoint_tests;
mod fs;
mod harden;
mod hooks;
mod join;
mod lifecycle;
mod net;

use crate::Namespaces;
use crate::context::Context;
use crate::error::Failure;
use crate::error::{Error, Step};
use crate::idmap::{self, IdMap};
use crate::plan::{Plan, SelfMaps};
use crate::process::Child;
use crate::spawn::{self, SpawnError};
use crate::stdio::{Prepared, Stdio};
use crate::userns::{ParentMaps, Writer};
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output};
use std::sync::atomic::AtomicU64;

/// The longest hostname or domain name the kernel accepts (`__NEW_UTS_LEN`).
const MAX_UTS_NAME: usize = 64;

/// A builder for a program run in new Linux namespaces, used like [`std::process::Command`].
///
/// Setters take and return `&mut Self` and never fail: the first bad input (a NUL byte, a
/// 200-byte hostname) is remembered and returned by [`spawn`](Sandbox::spawn). By default the
/// program gets new user, PID, mount, UTS and IPC namespaces ([`Namespaces::DEFAULT`]), is root
/// inside (the caller's uid and gid are mapped to 0), is PID 1, and sees a fresh `/proc`.
///
/// ```
/// use nscell::{Namespaces, Sandbox, Stdio};
///
/// let out = Sandbox::new("/bin/sh")
///     .args(["-c", "id -u; hostname; echo $$"])
///     .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT | Namespaces::UTS | Namespaces::IPC)
///     .hostname("cell")
///     .stdout(Stdio::piped())
///     .output()?;
/// assert_eq!(String::from_utf8_lossy(&out.stdout), "0\ncell\n1\n");
/// # Ok::<(), nscell::Error>(())
/// ```
#[derive(Debug)]
pub struct Sandbox {
    program: OsString,
    program_c: CString,
    /// argv, `argv[0]` included.
    argv: Vec<CString>,
    env_clear: bool,
    env: BTreeMap<OsString, Option<OsString>>,
    cwd: Option<(PathBuf, CString)>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    namespaces: Namespaces,
    /// Whether [`Sandbox::namespaces`] was called (else joined types leave the default set).
    namespaces_set: bool,
    /// Existing namespaces to join ([`Sandbox::join`]).
    pub(crate) joins: crate::namespaces::Joins,
    /// Files the init holds a read lock on ([`Sandbox::lock_file`]).
    pub(crate) lock_files: Vec<(PathBuf, CString)>,
    /// Fds the init holds until the sandbox ends ([`Sandbox::hold_fd`]).
    pub(crate) held_fds: Vec<std::os::fd::OwnedFd>,
    /// Working directories to try in order, each with its `PWD=` string
    /// ([`Sandbox::current_dir_candidates`]).
    cwd_candidates: Vec<(PathBuf, CString, CString)>,
    uid_map: Vec<IdMap>,
    gid_map: Vec<IdMap>,
    hostname: Option<Vec<u8>>,
    /// `sysctl`: the `/proc/sys` path and the value.
    sysctls: Vec<(std::ffi::CString, Vec<u8>)>,
    domainname: Option<Vec<u8>>,
    mount_proc: Option<bool>,
    /// Filesystem operations ([`crate::fs`]).
    pub(crate) fs: crate::fs::FsConfig,
    bad_input: Option<String>,
    pub(crate) harden: crate::harden::HardenConfig,
    pub(crate) lifecycle: crate::lifecycle::Lifecycle,
    /// Cgroup limits ([`crate::cgroup`]).
    pub(crate) limits: Option<crate::cgroup::Limits>,
    /// The network ([`crate::net`]); `None`: as the namespaces say.
    pub(crate) network: Option<crate::net::Network>,
    /// The last spawn's environment and `execve` candidates ([`Sandbox::refresh_env`]).
    env_cache: Option<EnvCache>,
    /// The caller's hooks at the setup's stages ([`Sandbox::on_setup`]).
    pub(crate) setup_hooks: spawn::CallerHooks,
    /// The caller's hooks write the id maps ([`Sandbox::id_maps_by_caller`]).
    pub(crate) id_maps_by_caller: bool,
}

/// The program's environment (`KEY=VALUE` strings) and `execve` candidates as a spawn built
/// them, with everything they were built from: the caller's environment (with `env_clear`,
/// only its `PATH`, which the candidates may fall back to) and the sandbox's changes to it.
struct EnvCache {
    caller: Vec<(OsString, OsString)>,
    changes: BTreeMap<OsString, Option<OsString>>,
    clear: bool,
    env: Vec<CString>,
    candidates: Vec<CString>,
}

/// Not the strings: a `Sandbox`'s `Debug` shows its own settings, never the caller's whole
/// environment (which may hold secrets).
impl std::fmt::Debug for EnvCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvCache").field("variables", &self.env.len()).finish_non_exhaustive()
    }
}

fn cstring(what: &str, s: &OsStr) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|_| format!("{what} {s:?} contains a NUL byte"))
}

impl Sandbox {
    /// A sandbox that runs `program`. A program without a `/` is looked up in `PATH` (the
    /// program's own `PATH` if set with [`env`](Sandbox::env), else the caller's), as std does.
    pub fn new(program: impl AsRef<OsStr>) -> Sandbox {
        let program = program.as_ref().to_os_string();
        let mut bad_input = None;
        let program_c = cstring("program", &program).unwrap_or_else(|e| {
            bad_input = Some(e);
            CString::default()
        });
        if program.is_empty() && bad_input.is_none() {
            bad_input = Some("the program is empty".into());
        }
        Sandbox {
            argv: vec![program_c.clone()],
            program,
            program_c,
            env_clear: false,
            env: BTreeMap::new(),
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            namespaces: Namespaces::DEFAULT,
            namespaces_set: false,
            joins: Default::default(),
            lock_files: Vec::new(),
            held_fds: Vec::new(),
            cwd_candidates: Vec::new(),
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            hostname: None,
            sysctls: Vec::new(),
            domainname: None,
            mount_proc: None,
            fs: Default::default(),
            bad_input,
            harden: Default::default(),
            lifecycle: Default::default(),
            limits: None,
            network: None,
            env_cache: None,
            setup_hooks: Default::default(),
            id_maps_by_caller: false,
        }
    }

    pub(crate) fn bad(&mut self, msg: String) {
        self.bad_input.get_or_insert(msg);
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        match cstring("argument", arg.as_ref()) {
            Ok(c) => self.argv.push(c),
            Err(e) => self.bad(e),
        }
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Sets `argv[0]` (by default the program as given).
    pub fn arg0(&mut self, arg0: impl AsRef<OsStr>) -> &mut Self {
        match cstring("argv[0]", arg0.as_ref()) {
            Ok(c) => self.argv[0] = c,
            Err(e) => self.bad(e),
        }
        self
    }

    /// Sets an environment variable for the program.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Self {
        let (key, val) = (key.as_ref(), val.as_ref());
        if key.is_empty() || key.as_bytes().contains(&b'=') {
            self.bad(format!("environment variable name {key:?} is empty or contains '='"));
        } else if key.as_bytes().contains(&0) || val.as_bytes().contains(&0) {
            self.bad(format!("environment variable {key:?} contains a NUL byte"));
        }
        self.env.insert(key.to_os_string(), Some(val.to_os_string()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.env(k, v);
        }
        self
    }

    /// Removes a variable from the program's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.insert(key.as_ref().to_os_string(), None);
        self
    }

    /// Starts the program's environment empty instead of from the caller's (variables set with
    /// [`env`](Sandbox::env) before or after still apply).
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self.env.retain(|_, v| v.is_some());
        self
    }

    /// The program's working directory, as seen inside the sandbox.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        let dir = dir.as_ref();
        self.cwd_candidates.clear();
        match cstring("directory", dir.as_os_str()) {
            Ok(c) => self.cwd = Some((dir.to_path_buf(), c)),
            Err(e) => self.bad(e),
        }
        self
    }

    /// The program's working directory: the first of `dirs` that the program can enter inside
    /// the sandbox (a directory there, reachable from its root; any `chdir` failure moves on to
    /// the next), with `PWD` set to that one as given. None of them: the spawn fails with
    /// [`Step::Chdir`] naming the last. Replaces [`current_dir`](Sandbox::current_dir) (and is
    /// replaced by it).
    ///
    /// bubblewrap's default without `--chdir` is `current_dir_candidates([caller's cwd, $HOME,
    /// "/"])`; its `--chdir DIR` is one candidate (it sets `PWD` too). The choice is made in
    /// the program's task, after the sandbox's filesystem is in place and just before the
    /// hardening; each candidate's environment is built before `clone`.
    pub fn current_dir_candidates<I, P>(&mut self, dirs: I) -> &mut Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        self.cwd = None;
        self.cwd_candidates.clear();
        for dir in dirs {
            let dir = dir.as_ref();
            let mut pwd = OsString::from("PWD=");
            pwd.push(dir.as_os_str());
            match (cstring("directory", dir.as_os_str()), cstring("directory", &pwd)) {
                (Ok(c), Ok(pwd)) => self.cwd_candidates.push((dir.to_path_buf(), c, pwd)),
                (Err(e), _) | (_, Err(e)) => self.bad(e),
            }
        }
        if self.cwd_candidates.is_empty() {
            self.bad("current_dir_candidates needs at least one directory".into());
        }
        self
    }

    /// The program's stdin. Default: inherited by [`spawn`](Sandbox::spawn) and
    /// [`status`](Sandbox::status), `/dev/null` for [`output`](Sandbox::output).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.stdin = Some(cfg.into());
        self
    }

    /// The program's stdout. Default: inherited, piped for [`output`](Sandbox::output).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.stdout = Some(cfg.into());
        self
    }

    /// The program's stderr. Default: inherited, piped for [`output`](Sandbox::output).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Self {
        self.stderr = Some(cfg.into());
        self
    }

    /// Which namespaces to create (default [`Namespaces::DEFAULT`]; `Namespaces::empty()` runs the
    /// program like `std::process::Command`).
    ///
    /// Without root, the kernel creates no namespace but `USER` unless a user namespace comes
    /// with it. So when an unprivileged caller asks for namespaces without `USER`, nscell adds a
    /// user namespace with the caller's own uid and gid mapped to themselves (as bubblewrap
    /// does): the program runs as the caller's ids, with no capabilities after `execve`.
    pub fn namespaces(&mut self, namespaces: Namespaces) -> &mut Self {
        self.namespaces = namespaces;
        self.namespaces_set = true;
        self
    }

    /// Adds a line to the user namespace's uid map. Without any, the caller's effective uid is
    /// mapped to 0 (root inside).
    ///
    /// A single line mapping the caller's own uid is written by the child itself; anything else
    /// must be written from outside the namespace: by the parent directly when it is root, or
    /// through `newuidmap` (package `uidmap`, ranges from `/etc/subuid`) otherwise. To run as
    /// uid 1000 inside, map 1000 to the caller's uid: `IdMap::new(1000, getuid(), 1)`.
    pub fn uid_map(&mut self, map: IdMap) -> &mut Self {
        self.uid_map.push(map);
        self
    }

    /// Adds a line to the user namespace's gid map; see [`uid_map`](Sandbox::uid_map).
    pub fn gid_map(&mut self, map: IdMap) -> &mut Self {
        self.gid_map.push(map);
        self
    }

    /// Sets the kernel parameter `name` (`net.ipv4.ip_forward`, or `net/ipv4/ip_forward`) to
    /// `value` inside the sandbox, as `sysctl -w` would there: written to `/proc/sys` by the
    /// child once its namespaces exist, before its mounts. Only what the sandbox's own
    /// namespaces scope is writable (the network's `net.*` with [`Namespaces::NET`], the
    /// IPC's `kernel.msg*`, `kernel.shm*`, `kernel.sem`, `fs.mqueue.*` with
    /// [`Namespaces::IPC`]); anything else fails the spawn at
    /// [`Step::Sysctl`](crate::Step::Sysctl). The OCI runtime's `linux.sysctl`.
    pub fn sysctl(&mut self, name: &str, value: impl AsRef<[u8]>) -> &mut Self {
        let rel = name.replace('.', "/");
        let ok = !rel.is_empty()
            && !rel.starts_with('/')
            && rel.split('/').all(|c| !c.is_empty() && c != ".." && c != ".");
        match std::ffi::CString::new(format!("/proc/sys/{rel}")) {
            Ok(path) if ok => self.sysctls.push((path, value.as_ref().to_vec())),
            _ => self.bad(format!("sysctl {name:?} is not a kernel parameter's name")),
        }
        self
    }

    /// The hostname inside (needs [`Namespaces::UTS`]; at most 64 bytes).
    pub fn hostname(&mut self, name: impl AsRef<OsStr>) -> &mut Self {
        let name = name.as_ref().as_bytes();
        match uts_name("hostname", name) {
            Ok(()) => self.hostname = Some(name.to_vec()),
            Err(e) => self.bad(e),
        }
        self
    }

    /// The NIS domain name inside (needs [`Namespaces::UTS`]; at most 64 bytes).
    pub fn domainname(&mut self, name: impl AsRef<OsStr>) -> &mut Self {
        let name = name.as_ref().as_bytes();
        match uts_name("domain name", name) {
            Ok(()) => self.domainname = Some(name.to_vec()),
            Err(e) => self.bad(e),
        }
        self
    }

    /// Whether to mount a fresh procfs on `/proc`. Default: yes when both [`Namespaces::PID`]
    /// and [`Namespaces::MOUNT`] are new, so `ps` shows the sandbox's own processes, PID 1
    /// first (the host's `/proc` would show the host's). Needs [`Namespaces::MOUNT`].
    pub fn mount_proc(&mut self, mount: bool) -> &mut Self {
        self.mount_proc = Some(mount);
        self
    }

    /// The program as given to [`new`](Sandbox::new).
    pub fn get_program(&self) -> &OsStr {
        &self.program
    }

    /// The namespaces asked for.
    pub fn get_namespaces(&self) -> Namespaces {
        self.namespaces
    }

    /// Spawns the program and returns a handle to it. Stdio not configured is inherited.
    ///
    /// Returns `Err` when the sandbox cannot be set up (the error names the step, the errno, the
    /// path and a hint) or the program cannot be executed; in both cases no process, fd or mount
    /// is left behind.
    pub fn spawn(&mut self) -> Result<Child, Error> {
        self.spawn_with([Stdio::inherit, Stdio::inherit, Stdio::inherit], false)
    }

    /// Runs the program to completion with inherited stdio and returns its exit status.
    pub fn status(&mut self) -> Result<ExitStatus, Error> {
        self.spawn()?.wait()
    }

    /// Runs the program to completion and collects its stdout and stderr (piped unless
    /// configured otherwise; stdin is `/dev/null` unless configured).
    pub fn output(&mut self) -> Result<Output, Error> {
        self.spawn_with([Stdio::null, Stdio::piped, Stdio::piped], false)?.wait_with_output()
    }

    /// Sets the sandbox up and exits before `execve` (for [`crate::Support`]).
    pub(crate) fn probe(&mut self) -> Result<Child, Error> {
        self.spawn_with([Stdio::null, Stdio::null, Stdio::null], true)
    }

    fn spawn_with(
        &mut self,
        defaults: [fn() -> Stdio; 3],
        probe_only: bool,
    ) -> Result<Child, Error> {
        if let Some(msg) = &self.bad_input {
            return Err(Error::invalid(msg.clone()));
        }
        let r = self.resolve()?;
        // The network: its helper found and its arguments made, its ruleset and /etc files.
        let mut net = match &self.network {
            Some(n) => n.plan(
                rustix::process::geteuid().is_root(),
                r.namespaces.contains(Namespaces::USER),
                r.namespaces.contains(Namespaces::MOUNT),
            )?,
            None => crate::net::NetPlan::none(),
        };
        // Its /etc files join a new root's operations for this spawn only.
        let added = self.add_net_files(&mut net);
        let result = self.spawn_resolved(defaults, probe_only, r, net);
        let kept = self.fs.ops.len().saturating_sub(added);
        self.fs.ops.truncate(kept);
        if result.is_ok() {
            // The sandbox's init holds them now: the caller's copies go, so the other end sees
            // EOF when the sandbox ends.
            self.held_fds.clear();
            // The gate is the sandbox's alone: its reader goes with it.
            self.lifecycle.start_gate = None;
        }
        result
    }

    /// Adds the network's `/etc` files to a new root's operations when nothing of the
    /// caller's puts an `/etc` there (returning how many were added); otherwise they are
    /// mounted over the files the sandbox sees, after its root is in place.
    fn add_net_files(&mut self, net: &mut crate::net::NetPlan) -> usize {
        if self.fs.ops.is_empty() {
            return 0;
        }
        let has_etc = |path: &str| {
            self.fs.ops.iter().any(|op| {
                op.dest().is_some_and(|d| {
                    d == Path::new("/") || d == Path::new("/etc") || d == Path::new(path)
                })
            })
        };
        if net.files.iter().any(|(etc, _)| has_etc(etc.path)) {
            return 0;
        }
        let mut n = 0;
        for (etc, contents) in std::mem::take(&mut net.files) {
            self.file(etc.path, contents);
            n += 1;
        }
        n
    }

    fn spawn_resolved(
        &mut self,
        defaults: [fn() -> Stdio; 3],
        probe_only: bool,
        r: Resolved,
        mut net: crate::net::NetPlan,
    ) -> Result<Child, Error> {
        self.refresh_env()?;
        let joins = self.joins.plan()?;
        if self.lock_files.len() > crate::child::MAX_HELD
            || self.held_fds.len() > crate::child::MAX_HELD
        {
            return Err(Error::invalid(format!(
                "at most {} lock files and {} held fds",
                crate::child::MAX_HELD,
                crate::child::MAX_HELD
            )));
        }
        // The sandbox's cgroup, made and filled before clone (dropped on an error: removed).
        let cgroup = self.limits.as_ref().map(|l| l.plan()).transpose()?;
        // Only a cgroup view needs the leaves' names (not every limited spawn).
        let cgroup_leaves = match &cgroup {
            Some(c) if self.fs.has_cgroup_view() => c.view_leaves(),
            _ => Vec::new(),
        };
        // What every feature's plan step knows of the sandbox.
        let cwd = self.cwd.as_ref().map(|(p, _)| p.as_path());
        let mut ctx = Context {
            namespaces: r.namespaces,
            paths_in_child: false,
            cwd,
            ids_inside: r.ids_inside,
            cgroup_leaves: &cgroup_leaves,
        };
        let fs = self.fs.plan(&ctx)?;
        let life = self.lifecycle.plan(&ctx)?;
        let (env, candidates): (&[CString], &[CString]) = match &self.env_cache {
            Some(c) => (&c.env, &c.candidates),
            None => (&[], &[]),
        };

        let configured = [&self.stdin, &self.stdout, &self.stderr];
        // Live until the plan is done with the fds they give (none of them holds one).
        let defaults = defaults.map(|make| make());
        let mut prepared: Vec<Prepared<'_>> = Vec::with_capacity(3);
        for (i, cfg) in configured.iter().enumerate() {
            let kind = match cfg {
                Some(s) => &s.0,
                None if life.terminal().is_some() => {
                    let tty = life.terminal();
                    prepared.push(Prepared { child_end: None, borrowed: tty, parent_end: None });
                    continue;
                }
                None => &defaults[i].0,
            };
            let p = kind
                .prepare(i == 0)
                .map_err(|(step, e)| Error::setup(step, None, e.raw_os_error()))?;
            prepared.push(p);
        }
        let stdio_fd = |i: usize| prepared[i].child_fd();

        let mut argv: Vec<*const std::os::raw::c_char> =
            self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const std::os::raw::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());

        // Landlock paths mean what the program sees: where the child mounts something (a new
        // root, a fresh /proc), it opens them itself once its filesystem is in place.
        ctx.paths_in_child = fs.is_some() || r.mount_proc;
        let paths_in_child = ctx.paths_in_child;
        let ns = r.namespaces;
        let (mut harden, landlock_status) = self.harden.plan(&ctx)?;
        if self.id_maps_by_caller {
            // The ids inside are the caller's hook's to choose: the nested user namespace maps
            // those the child has once they are written (empty maps: read them then).
            if let Some(nested) = harden.nested_userns.as_mut() {
                nested.uid_map.clear();
                nested.gid_map.clear();
            }
        }
        // Either would undo the allowlist: flushing the rules, or raw frames.
        let net_caps = crate::Capabilities::NET_ADMIN | crate::Capabilities::NET_RAW;
        if net.egress.is_some() && !harden.withhold(net_caps) {
            return Err(Error::invalid(
                "the egress allowlist takes CAP_NET_ADMIN and CAP_NET_RAW from the program: \
                 they cannot be added back (add_capabilities, --cap-add)",
            ));
        }
        // Locking needs a user namespace of the sandbox's own: without one the program is host
        // root, and no mount flag is a boundary against it. A nested user namespace
        // (allow_nested_userns(false)) brings a locked copy of its own. Without CAP_SYS_ADMIN
        // (not even in the bounding set) the program can change no mount of this namespace,
        // and a namespace it makes itself is a locked copy: nothing to undo, nothing to pay.
        // A joined user namespace is the sandbox's as much as a new one: the program may have
        // every capability there.
        let own_userns = ns.contains(Namespaces::USER) || r.joined.contains(Namespaces::USER);
        // A user namespace entered after setup is one below the sandbox's (setns needs
        // CAP_SYS_ADMIN in it): from there the program has no capability over the sandbox's
        // mounts, and nothing needs locking.
        let lock_mounts = own_userns
            && self.joins.after_setup.is_none()
            && ns.contains(Namespaces::MOUNT)
            && paths_in_child
            && self.harden.nested_userns_allowed()
            && self.harden.may_keep(crate::Capabilities::SYS_ADMIN);
        // Its cgroup namespace is made by the child once it is in its cgroups.
        let cgroup_ns = cgroup.is_some() && ns.contains(Namespaces::CGROUP);
        let without_cgroup_ns = |flags: i32| {
            if cgroup_ns { flags & !(Namespaces::CGROUP.clone_flags()) } else { flags }
        };
        // The environment of each working-directory candidate: PWD names it.
        let candidate_envps: Vec<Vec<*const std::os::raw::c_char>> = self
            .cwd_candidates
            .iter()
            .map(|(_, _, pwd)| {
                let others = env.iter().filter(|e| !e.as_bytes().starts_with(b"PWD="));
                let mut envp: Vec<_> = others.map(|e| e.as_ptr()).collect();
                envp.push(pwd.as_ptr());
                envp.push(std::ptr::null());
                envp
            })
            .collect();
        // Lock files and held fds need a process that lives as long as the sandbox: the init.
        let implied_init = !self.lock_files.is_empty() || !self.held_fds.is_empty();
        // The setup channel's parent end, when the spawn makes one (the plan borrows it).
        let mut parent_end = None;
        let mut plan = Plan {
            // With the mounts locked, the child makes its mount namespace itself (`src/child/mount_lock.rs`).
            namespace_flags: without_cgroup_ns(if lock_mounts {
                (r.namespaces - Namespaces::MOUNT).clone_flags()
            } else {
                r.namespaces.clone_flags()
            }),
            channel: crate::plan::Channel::none(),
            parent_end: None,
            checkpoints: 0,
            self_maps: r.self_maps,
            hostname: self.hostname.as_deref(),
            sysctls: self.sysctls.iter().map(|(p, v)| (p.as_c_str(), v.as_slice())).collect(),
            domainname: self.domainname.as_deref(),
            make_mounts_private: r.namespaces.contains(Namespaces::MOUNT),
            // With a new root, /proc is one of its operations (or absent).
            mount_proc: r.mount_proc && fs.is_none(),
            fs,
            lock_mounts,
            loopback_up: r.namespaces.contains(Namespaces::NET),
            egress: net.egress.as_deref(),
            etc_files: net
                .files
                .iter()
                .map(|(etc, contents)| crate::net::EtcFile {
                    name: etc.name,
                    target: etc.target,
                    contents,
                })
                .collect(),
            unshare_time: r.namespaces.contains(Namespaces::TIME),
            cwd: self.cwd.as_ref().map(|(_, c)| c.as_c_str()),
            cwd_candidates: self.cwd_candidates.iter().map(|(_, c, _)| c.as_c_str()).collect(),
            candidate_envps,
            cwd_chosen: std::sync::atomic::AtomicUsize::new(0),
            joins: joins.order.clone(),
            join_after_setup: joins.after_setup,
            joins_need_own_memory: joins.need_own_memory,
            sandbox_stack: 0,
            successor: std::sync::atomic::AtomicI32::new(0),
            init_is_pid1: ns.contains(Namespaces::PID),
            lock_files: self.lock_files.iter().map(|(_, c)| c.as_c_str()).collect(),
            held_fds: self.held_fds.iter().map(std::os::fd::AsFd::as_fd).collect(),
            stdio: [stdio_fd(0), stdio_fd(1), stdio_fd(2)],
            candidates,
            argv,
            envp,
            probe_only,
            harden,
            lifecycle: life.plan(),
            cgroup: cgroup.as_ref().map(|c| c.plan(cgroup_ns, ns.contains(Namespaces::MOUNT))),
            report: AtomicU64::new(0),
            kill_gate: Default::default(),
            sighand_cleared: std::sync::atomic::AtomicBool::new(false),
            gate_fd: std::sync::atomic::AtomicI32::new(-1),
        };
        if implied_init && plan.lifecycle.start_gate.is_some() {
            return Err(Error::invalid(
                "start_gate() cannot be used with lock_file or hold_fd: they imply an init, \
                 and the program waiting at the gate is the sandbox's first task",
            ));
        }
        if implied_init && !plan.lifecycle.init {
            plan.lifecycle.init = true;
            // What the init blanks of the caller's in its copy (as Lifecycle::plan reads it).
            plan.lifecycle.caller_memory = crate::lifecycle::CallerMemory::read().map_err(|e| {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                Error::setup(Step::StartProgram, Some("/proc/self/stat".into()), errno)
            })?;
        }
        let mut hooks = spawn::Hooks::with_maps(r.parent_maps.as_ref());
        hooks.net = net.start.as_mut();
        hooks.caller = Some(&mut self.setup_hooks);
        hooks.maps_by_caller = self.id_maps_by_caller;
        let spawned = spawn::spawn(&mut plan, &mut parent_end, hooks, &life.setup_bound());
        if spawned.is_err() {
            // A hook that panicked: its sandbox is reaped, its panic goes on.
            self.setup_hooks.resume_panic();
        }
        // clone3 (which clears the signal handlers) placed the child in its cgroup2 leaf.
        let placed = plan.sighand_cleared.load(std::sync::atomic::Ordering::Relaxed);
        match spawned {
            Ok(spawned) => {
                let pipes = prepared.into_iter().map(|p| p.parent_end);
                let mut pipes = pipes.collect::<Vec<_>>().into_iter();
                let mut child = Child::new(
                    spawned.pid,
                    spawned.pidfd,
                    [pipes.next().flatten(), pipes.next().flatten(), pipes.next().flatten()],
                );
                child.life = life.into_child(spawned.pid);
                child.landlock_status = landlock_status;
                child.network = net.start.as_mut().and_then(|s| s.started.take());
                child.cgroup = cgroup.map(|mut c| {
                    c.spawned(placed, spawned.pid);
                    c
                });
                if spawned.setup_timed_out {
                    child.life.timed_out = true;
                    child.life.timed_out_in_setup = true;
                }
                Ok(child)
            }
            Err(SpawnError::Parent(e)) => Err(crate::cgroup::describe_clone(e, cgroup.as_ref())),
            Err(SpawnError::Child(f)) => match cgroup.as_ref() {
                Some(cg) => Err(cg
                    .describe(&f)
                    .unwrap_or_else(|| cg.explain(self.describe(f, &plan, r.namespaces)))),
                None => Err(join::describe(&f, &joins, r.namespaces)
                    .unwrap_or_else(|| self.describe(f, &plan, r.namespaces))),
            },
        }
    }

    /// Turns the child's failure record into an error naming the path involved.
    fn describe(&self, f: Failure, plan: &Plan<'_>, namespaces: Namespaces) -> Error {
        // Each feature's describe step first.
        if let Some(e) = self.fs.describe(&f, namespaces) {
            return e;
        }
        if let Some(path) = self.harden.describe(&f) {
            return Error::setup_in(f.step, Some(path), f.errno, namespaces);
        }
        let path = match f.step {
            Step::WriteSetgroups => Some("/proc/self/setgroups".into()),
            Step::WriteUidMap => Some("/proc/self/uid_map".into()),
            Step::WriteGidMap => Some("/proc/self/gid_map".into()),
            Step::MountProc => Some("/proc".into()),
            Step::Sysctl => self
                .sysctls
                .get(usize::from(f.index))
                .map(|(p, _)| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(p.as_bytes()))),
            // No --chdir: the caller's own, which a fresh /proc covered.
            Step::Chdir => match self.cwd_candidates.get(usize::from(f.index)) {
                Some((p, _, _)) => Some(p.clone()),
                None => self
                    .cwd
                    .as_ref()
                    .map(|(p, _)| p.clone())
                    .or_else(|| std::env::current_dir().ok()),
            },
            Step::LockFile => self.lock_files.get(usize::from(f.index)).map(|(p, _)| p.clone()),
            Step::Stdio => Some(["stdin", "stdout", "stderr"][usize::from(f.index).min(2)].into()),
            Step::Exec => {
                // Not found anywhere: name the program as given. Otherwise the path that failed.
                // A `PATH` search that met only unsearchable directories (EACCES) found nothing:
                // say "not found" as a shell does, unless a candidate file really exists.
                let searched = !self.program.as_bytes().contains(&b'/');
                let found_one = || {
                    plan.candidates
                        .iter()
                        .any(|c| Path::new(OsStr::from_bytes(c.as_bytes())).metadata().is_ok())
                };
                let not_found = f.errno == rustix::io::Errno::NOENT.raw_os_error()
                    || (searched
                        && f.errno == rustix::io::Errno::ACCESS.raw_os_error()
                        && !found_one());
                if not_found {
                    let enoent = rustix::io::Errno::NOENT.raw_os_error();
                    return Error::exec(PathBuf::from(&self.program), enoent);
                }
                let program = plan
                    .candidates
                    .get(usize::from(f.index))
                    .map(|c| PathBuf::from(OsStr::from_bytes(c.as_bytes())))
                    .unwrap_or_else(|| PathBuf::from(&self.program));
                return Error::exec(program, f.errno);
            }
            _ => None,
        };
        Error::setup_in(f.step, path, f.errno, namespaces)
    }

    /// Builds the program's environment and `execve` candidates into `env_cache`, unless the
    /// cached ones were built from the same caller's environment and the same changes: the
    /// caller's environment is read on every spawn, but a sandbox spawned again and again
    /// (a test runner's, a build tool's) turns it into strings once.
    fn refresh_env(&mut self) -> Result<(), Error> {
        let caller: Vec<(OsString, OsString)> = if self.env_clear {
            std::env::var_os("PATH").map(|p| vec![("PATH".into(), p)]).unwrap_or_default()
        } else {
            std::env::vars_os().collect()
        };
        if let Some(c) = &self.env_cache {
            if c.caller == caller && c.changes == self.env && c.clear == self.env_clear {
                return Ok(());
            }
        }
        let env = self.build_env(&caller);
        let candidates = self.candidates(&env)?;
        let env: Vec<CString> = env
            .into_iter()
            .map(|(mut k, v)| {
                k.push("=");
                k.push(v);
                // Keys and values were checked for NUL bytes by `env`.
                CString::new(k.into_vec()).unwrap_or_default()
            })
            .collect();
        let (changes, clear) = (self.env.clone(), self.env_clear);
        self.env_cache = Some(EnvCache { caller, changes, clear, env, candidates });
        Ok(())
    }

    /// The program's environment: the caller's (`caller`, unless cleared) with the changes
    /// applied.
    fn build_env(&self, caller: &[(OsString, OsString)]) -> BTreeMap<OsString, OsString> {
        let mut vars: BTreeMap<OsString, OsString> =
            if self.env_clear { BTreeMap::new() } else { caller.iter().cloned().collect() };
        for (k, v) in &self.env {
            match v {
                Some(v) => vars.insert(k.clone(), v.clone()),
                None => vars.remove(k),
            };
        }
        vars.retain(|k, v| !k.as_bytes().contains(&0) && !v.as_bytes().contains(&0));
        vars
    }

    /// The paths `execve` tries: the program itself when it has a `/`, else one per `PATH` entry.
    fn candidates(&self, env: &BTreeMap<OsString, OsString>) -> Result<Vec<CString>, Error> {
        if self.program.as_bytes().contains(&b'/') {
            return Ok(vec![self.program_c.clone()]);
        }
        let path = env
            .get(OsStr::new("PATH"))
            .cloned()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        let out: Vec<CString> = std::env::split_paths(&path)
            .map(|dir| {
                let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
                CString::new(dir.join(&self.program).into_os_string().into_vec())
            })
            .filter_map(Result::ok)
            .collect();
        Ok(out)
    }

    /// [`Sandbox::id_maps_by_caller`] can work: no maps of nscell's, a new user namespace
    /// (`namespaces`, as resolved), and a hook that writes them.
    fn check_maps_by_caller(&self, has_maps: bool, namespaces: Namespaces) -> Result<(), Error> {
        if has_maps {
            return Err(Error::invalid(
                "id_maps_by_caller with uid_map or gid_map: the id maps are either nscell's or \
                 the caller's",
            ));
        }
        if !namespaces.contains(Namespaces::USER) {
            return Err(Error::invalid(
                "id_maps_by_caller needs a new user namespace (Namespaces::USER): there are \
                 no maps to write without one",
            ));
        }
        if !self.setup_hooks.has(spawn::SetupStage::NamespacesCreated) {
            return Err(Error::invalid(
                "id_maps_by_caller needs a hook at SetupStage::NamespacesCreated (on_setup) \
                 that writes the maps: nothing else would",
            ));
        }
        Ok(())
    }

    /// Works out namespaces and id maps, checking everything the kernel would refuse.
    fn resolve(&self) -> Result<Resolved, Error> {
        let joined = self.joins.at_start.iter().fold(Namespaces::empty(), |all, (ns, _)| all | *ns);
        let asked = if self.namespaces_set {
            let both = self.namespaces & joined;
            if !both.is_empty() {
                return Err(Error::invalid(format!(
                    "{both:?} both joined (join) and new (namespaces): a namespace is one or \
                     the other"
                )));
            }
            self.namespaces
        } else {
            self.namespaces - joined
        };
        let joined_user = joined.contains(Namespaces::USER);
        if joined_user && (!self.uid_map.is_empty() || !self.gid_map.is_empty()) {
            return Err(Error::invalid(
                "uid and gid maps with a joined user namespace: it has maps of its own",
            ));
        }
        if joined_user && !self.harden.nested_userns_allowed() {
            return Err(Error::invalid(
                "allow_nested_userns(false) with a joined user namespace: its limit and maps \
                 are the joined namespace's own",
            ));
        }
        if self.joins.after_setup.is_some() && !self.harden.nested_userns_allowed() {
            return Err(Error::invalid(
                "join_after_setup with allow_nested_userns(false): both move the program into \
                 a user namespace of their own",
            ));
        }
        if joined.contains(Namespaces::NET)
            && matches!(&self.network, Some(n) if !matches!(n, crate::net::Network::Host))
        {
            return Err(Error::invalid(
                "a network (Sandbox::network) with a joined network namespace: the network \
                 configures a new one",
            ));
        }
        let euid = rustix::process::geteuid().as_raw();
        let egid = rustix::process::getegid().as_raw();
        let root = euid == 0;
        let has_maps = !self.uid_map.is_empty() || !self.gid_map.is_empty();
        if (self.hostname.is_some() || self.domainname.is_some())
            && !asked.contains(Namespaces::UTS)
        {
            return Err(Error::invalid(
                "a hostname or domain name needs Namespaces::UTS (without it the host's would change)",
            ));
        }
        if self.mount_proc == Some(true) && !asked.contains(Namespaces::MOUNT) {
            return Err(Error::invalid(
                "mount_proc(true) needs Namespaces::MOUNT (without it the host's /proc would change)",
            ));
        }
        let asked = match &self.network {
            Some(crate::net::Network::Host) if asked.contains(Namespaces::NET) => {
                return Err(Error::invalid(
                    "Network::Host (--network host) with Namespaces::NET: the host's network \
                     is the caller's own, a new network namespace is not",
                ));
            }
            Some(crate::net::Network::Host) | None => asked,
            Some(_) => asked | Namespaces::NET,
        };
        let implicit_user =
            !root && !asked.is_empty() && !asked.contains(Namespaces::USER) && !joined_user;
        let namespaces = if implicit_user { asked | Namespaces::USER } else { asked };
        if has_maps && !namespaces.contains(Namespaces::USER) {
            return Err(Error::invalid(
                "uid and gid maps need a new user namespace (Namespaces::USER)",
            ));
        }
        if self.id_maps_by_caller {
            self.check_maps_by_caller(has_maps, namespaces)?;
        }
        let mount_proc =
            self.mount_proc.unwrap_or(asked.contains(Namespaces::PID | Namespaces::MOUNT));

        let (mut self_maps, mut parent_maps) = (None, None);
        if namespaces.contains(Namespaces::USER) && !self.id_maps_by_caller {
            let inside = |own: u32| if implicit_user { own } else { 0 };
            let uid_map = if self.uid_map.is_empty() {
                vec![IdMap::new(inside(euid), euid, 1)]
            } else {
                self.uid_map.clone()
            };
            let gid_map = if self.gid_map.is_empty() {
                vec![IdMap::new(inside(egid), egid, 1)]
            } else {
                self.gid_map.clone()
            };
            idmap::validate(&uid_map).map_err(|e| Error::invalid(format!("uid map: {e}")))?;
            idmap::validate(&gid_map).map_err(|e| Error::invalid(format!("gid map: {e}")))?;
            let own = |maps: &[IdMap], id: u32| {
                maps.len() == 1 && maps[0].count == 1 && maps[0].outside == id
            };
            if own(&uid_map, euid) && own(&gid_map, egid) {
                self_maps = Some(SelfMaps {
                    uid_map: idmap::render(&uid_map),
                    gid_map: idmap::render(&gid_map),
                });
            } else {
                let writer = Writer::for_caller(&uid_map, &gid_map)?;
                parent_maps = Some(ParentMaps { writer, uid_map, gid_map });
            }
        }
        // The ids the program has inside (a nested user namespace maps them to themselves).
        let own_inside = |maps: &[IdMap], id: u32| {
            inside_id(maps, id).unwrap_or(if implicit_user { id } else { 0 })
        };
        let ids_inside = if joined_user || self.id_maps_by_caller {
            // The joined namespace's maps are not read; nothing that needs these ids (the
            // nested user namespace's maps) is allowed with it. The caller's maps are not
            // known before its hook writes them: the nested namespace reads them then.
            (OVERFLOW_ID, OVERFLOW_ID)
        } else if !namespaces.contains(Namespaces::USER) {
            (euid, egid)
        } else if let Some(maps) = &parent_maps {
            (
                inside_id(&maps.uid_map, euid).unwrap_or(OVERFLOW_ID),
                inside_id(&maps.gid_map, egid).unwrap_or(OVERFLOW_ID),
            )
        } else {
            (own_inside(&self.uid_map, euid), own_inside(&self.gid_map, egid))
        };
        Ok(Resolved { namespaces, joined, self_maps, parent_maps, mount_proc, ids_inside })
    }
}

/// The id an unmapped id reads as inside a user namespace (`/proc/sys/kernel/overflowuid`'s
/// default).
const OVERFLOW_ID: u32 = 65534;

/// What `outside` maps to inside, by `maps`.
fn inside_id(maps: &[IdMap], outside: u32) -> Option<u32> {
    maps.iter().find_map(|m| {
        let offset = outside.checked_sub(m.outside).filter(|&o| o < m.count)?;
        m.inside.checked_add(offset)
    })
}

struct Resolved {
    /// The uid and gid the program has inside.
    ids_inside: (u32, u32),
    namespaces: Namespaces,
    /// The namespace types joined ([`Sandbox::join`]).
    joined: Namespaces,
    self_maps: Option<SelfMaps>,
    parent_maps: Option<ParentMaps>,
    mount_proc: bool,
}

fn uts_name(what: &str, name: &[u8]) -> Result<(), String> {
    if name.len() > MAX_UTS_NAME {
        Err(format!("the {what} is {} bytes; the kernel takes at most {MAX_UTS_NAME}", name.len()))
    } else if name.contains(&0) {
        Err(format!("the {what} contains a NUL byte"))
    } else {
        Ok(())
    }
}
