//! Hardening around the program: no_new_privs, capabilities, seccomp, Landlock, rlimits, and the
//! fds that reach it.
//!
//! A namespace alone is not a security boundary: root inside a user namespace keeps every
//! capability over the namespace's resources and the whole kernel API to attack. These layers
//! are applied by the child just before `execve`, in this order: fds put in place (every other fd
//! closed), the nested user namespace limit, rlimits, capabilities, no_new_privs, Landlock,
//! seccomp last. With an init, the init sets the nested user namespace limit before it starts
//! the program (see [`limit_nested_userns`]); the program's task does the rest. The new session
//! keyring is joined earlier, right after the id maps ([`join_session_keyring`]). Every step is
//! per task (`prctl`, `capset`, `prlimit` on itself, `seccomp` without `TSYNC`,
//! `landlock_restrict_self`, `keyctl`): nothing changes the memory map the child shares with the
//! caller.
#![allow(unsafe_code)]

use crate::caps::{self, Capabilities};
use crate::error::{Error, Step};
use crate::landlock::{LandlockAccess, LandlockConfig, LandlockStatus};
use crate::report::Failure;
use crate::sandbox::Sandbox;
use crate::seccomp::{self, SeccompConfig, SeccompRule};
use crate::sys::{self, SockFilter};
use rustix::io::Errno;
use std::os::fd::{OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

/// A resource limit, as [getrlimit(2)](https://man7.org/linux/man-pages/man2/getrlimit.2.html)
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// `RLIMIT_AS`: the size of the address space, in bytes.
    #[doc(alias = "RLIMIT_AS")]
    As,
    /// `RLIMIT_CORE`: the size of a core dump, in bytes.
    #[doc(alias = "RLIMIT_CORE")]
    Core,
    /// `RLIMIT_CPU`: CPU time, in seconds (`SIGXCPU` at the soft limit, `SIGKILL` at the hard).
    #[doc(alias = "RLIMIT_CPU")]
    Cpu,
    /// `RLIMIT_FSIZE`: the size of a file the process writes, in bytes (`SIGXFSZ`, `EFBIG`).
    #[doc(alias = "RLIMIT_FSIZE")]
    Fsize,
    /// `RLIMIT_NOFILE`: one more than the highest fd number the process may open.
    #[doc(alias = "RLIMIT_NOFILE")]
    Nofile,
    /// `RLIMIT_NPROC`: the number of processes, the program included, whose real uid is the
    /// program's *and that run in the sandbox's user namespace* (or in one nested in it).
    ///
    /// The kernel counts this limit per user namespace: the uid's processes on the host, and
    /// those in other sandboxes, do not count against it (measured on Linux 6.18: with
    /// `NPROC=25` the program forks 24 children while its uid runs 20 other processes on the
    /// host). The uid's processes on the host as a whole stay bounded by the limit the caller
    /// had at spawn time, which the user namespace keeps from its creation. Without
    /// [`Namespaces::USER`](crate::Namespaces::USER) every process of the real uid on the host
    /// counts. Not enforced for host uid 0, nor for a task with `CAP_SYS_RESOURCE` or
    /// `CAP_SYS_ADMIN` in the initial user namespace (a kernel rule): in a sandbox of host root
    /// it applies only once the program switches to another mapped uid.
    #[doc(alias = "RLIMIT_NPROC")]
    Nproc,
    /// `RLIMIT_STACK`: the size of the main stack, in bytes.
    #[doc(alias = "RLIMIT_STACK")]
    Stack,
    /// `RLIMIT_MEMLOCK`: memory locked with `mlock`, in bytes.
    #[doc(alias = "RLIMIT_MEMLOCK")]
    Memlock,
}

impl Resource {
    /// Parses `NOFILE`, `nofile` or `RLIMIT_NOFILE` (and so on).
    pub fn parse(name: &str) -> Option<Resource> {
        let upper = name.to_ascii_uppercase();
        Some(match upper.strip_prefix("RLIMIT_").unwrap_or(&upper) {
            "AS" => Resource::As,
            "CORE" => Resource::Core,
            "CPU" => Resource::Cpu,
            "FSIZE" => Resource::Fsize,
            "NOFILE" => Resource::Nofile,
            "NPROC" => Resource::Nproc,
            "STACK" => Resource::Stack,
            "MEMLOCK" => Resource::Memlock,
            _ => return None,
        })
    }

    fn rustix(self) -> rustix::process::Resource {
        use rustix::process::Resource as R;
        match self {
            Resource::As => R::As,
            Resource::Core => R::Core,
            Resource::Cpu => R::Cpu,
            Resource::Fsize => R::Fsize,
            Resource::Nofile => R::Nofile,
            Resource::Nproc => R::Nproc,
            Resource::Stack => R::Stack,
            Resource::Memlock => R::Memlock,
        }
    }
}

/// The value meaning "no limit" (`RLIM_INFINITY`).
pub const RLIM_INFINITY: u64 = u64::MAX;

/// At most this many fds may be passed with `keep_fd`/`map_fd`.
const MAX_FDS: usize = 64;
/// The highest fd number the kernel can ever hand out (`fs.nr_open` is at most 2^30).
const MAX_FD_NUMBER: RawFd = 1 << 30;

/// The caller's hardening settings (one field of [`Sandbox`]).
#[derive(Debug, Clone)]
pub(crate) struct HardenConfig {
    no_new_privs: bool,
    /// Capability changes folded to `(base & mask) | add`, or `None` for "untouched".
    caps: Option<(u64, u64)>,
    rlimits: Vec<(Resource, u64, u64)>,
    /// (source, target) pairs; a later entry for the same target replaces the earlier.
    fds: Vec<(RawFd, RawFd)>,
    nested_userns: bool,
    new_session_keyring: bool,
    seccomp: SeccompConfig,
    /// nscell's own compiled filter, cached until a seccomp setting changes.
    compiled: Option<Arc<[SockFilter]>>,
    landlock: LandlockConfig,
    landlock_status: Option<LandlockStatus>,
}

impl Default for HardenConfig {
    fn default() -> Self {
        HardenConfig {
            no_new_privs: true,
            caps: None,
            rlimits: Vec::new(),
            fds: Vec::new(),
            nested_userns: true,
            new_session_keyring: true,
            seccomp: SeccompConfig::default(),
            compiled: None,
            landlock: LandlockConfig::default(),
            landlock_status: None,
        }
    }
}

/// What the child applies, prepared before `clone`.
pub(crate) struct HardenPlan {
    no_new_privs: bool,
    caps: Option<(u64, u64)>,
    last_cap: u32,
    rlimits: Vec<(rustix::process::Resource, rustix::process::Rlimit)>,
    /// (source, target), sorted by target, targets unique.
    fds: Vec<(RawFd, RawFd)>,
    nested_userns_limit: bool,
    /// With the nested user namespace, a new mount namespace too: the sandbox's mounts, copied
    /// into a namespace the nested user namespace owns, and so locked ([`crate::mount_lock`]).
    nested_mount_ns: bool,
    new_session_keyring: bool,
    landlock_fd: Option<OwnedFd>,
    /// Path rules added in the child (with a new root: paths as the sandbox sees them).
    landlock_rules: Vec<crate::landlock::ChildRule>,
    seccomp: Option<Arc<[SockFilter]>>,
    programs: Vec<Arc<[SockFilter]>>,
}

impl HardenConfig {
    /// Everything the child needs; compiles the seccomp filter on the first spawn only.
    /// With `paths_in_child`, Landlock path rules are opened in the child, in its own view of the
    /// filesystem (a new root, a fresh /proc); otherwise here, relative ones from `cwd` (the
    /// program's working directory, where the child would open them).
    pub(crate) fn prepare(
        &mut self,
        userns: bool,
        mount_ns: bool,
        paths_in_child: bool,
        cwd: Option<&std::path::Path>,
    ) -> Result<HardenPlan, Error> {
        if !self.nested_userns && !userns {
            return Err(Error::invalid(
                "allow_nested_userns(false) needs Namespaces::USER (the limit is set in the \
                 sandbox's own user namespace)",
            ));
        }
        let seccomp = if self.seccomp.own_filter() {
            if self.compiled.is_none() {
                self.compiled = Some(self.seccomp.compile().map_err(Error::invalid)?.into());
            }
            self.compiled.clone()
        } else {
            None
        };
        for &(source, _) in &self.fds {
            // SAFETY: only asks whether the number is an open fd.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(source) };
            if rustix::io::fcntl_getfd(fd).is_err() {
                return Err(Error::invalid(format!(
                    "fd {source} passed with keep_fd/map_fd is not open"
                )));
            }
        }
        let mut fds: Vec<(RawFd, RawFd)> = Vec::new();
        for &(s, t) in self.fds.iter().rev() {
            if !fds.iter().any(|&(_, t2)| t2 == t) {
                fds.push((s, t));
            }
        }
        fds.sort_by_key(|&(_, t)| t);
        if fds.len() > MAX_FDS {
            return Err(Error::invalid(format!("at most {MAX_FDS} fds can be passed")));
        }
        let (landlock_fd, status, landlock_rules) = if self.landlock.is_active() {
            let (mut fd, status, rules) = self.landlock.prepare(paths_in_child, cwd)?;
            // Above every target, so putting the passed fds in place cannot overwrite it.
            let above = fds.iter().map(|&(_, t)| t + 1).max().unwrap_or(3);
            if let Some(f) = &fd {
                if std::os::fd::AsRawFd::as_raw_fd(f) < above {
                    let moved = rustix::io::fcntl_dupfd_cloexec(f, above)
                        .map_err(|e| Error::setup(Step::Landlock, None, e.raw_os_error(), false))?;
                    fd = Some(moved);
                }
            }
            (fd, Some(status), rules)
        } else {
            (None, None, Vec::new())
        };
        self.landlock_status = status;
        let to_rlimit = |v: u64| if v == RLIM_INFINITY { None } else { Some(v) };
        Ok(HardenPlan {
            no_new_privs: self.no_new_privs,
            caps: self.caps,
            last_cap: caps::last_cap(),
            rlimits: self
                .rlimits
                .iter()
                .map(|&(r, soft, hard)| {
                    (
                        r.rustix(),
                        rustix::process::Rlimit {
                            current: to_rlimit(soft),
                            maximum: to_rlimit(hard),
                        },
                    )
                })
                .collect(),
            fds,
            nested_userns_limit: !self.nested_userns,
            nested_mount_ns: !self.nested_userns && mount_ns,
            new_session_keyring: self.new_session_keyring,
            landlock_fd,
            landlock_rules,
            seccomp,
            programs: self.seccomp.programs.clone(),
        })
    }

    /// False when `caps` are sure to be gone from every set the program could have them in,
    /// the bounding set included (so no `execve` can give them back), whatever its uid inside.
    pub(crate) fn may_keep(&self, caps: Capabilities) -> bool {
        self.caps.is_none_or(|(mask, add)| (mask | add) & caps.bits() != 0)
    }

    /// Whether the program may create user namespaces ([`Sandbox::allow_nested_userns`]).
    pub(crate) fn nested_userns_allowed(&self) -> bool {
        self.nested_userns
    }

    /// The path of Landlock path rule `i`, for error messages.
    pub(crate) fn landlock_path(&self, i: usize) -> Option<&std::path::Path> {
        self.landlock.paths.get(i).map(|(p, _)| p.as_path())
    }

    fn seccomp_changed(&mut self) -> &mut SeccompConfig {
        self.compiled = None;
        &mut self.seccomp
    }
}

/// Hardening: no_new_privs, capabilities, seccomp, Landlock, resource limits, passed fds.
impl Sandbox {
    /// Whether to set `no_new_privs` before `execve` (default: yes).
    ///
    /// With it, `execve` never grants privileges: setuid/setgid bits and file capabilities are
    /// ignored, and an LSM cannot move the program to a more privileged domain. It is what lets
    /// an unprivileged task install seccomp filters and Landlock rulesets. Turning it off lets
    /// a setuid program inside (`sudo`, `ping` with file capabilities) work as the host allows;
    /// seccomp and Landlock then need `CAP_SYS_ADMIN` in the sandbox's user namespace, so keep
    /// it among the capabilities. See
    /// [`PR_SET_NO_NEW_PRIVS`](https://man7.org/linux/man-pages/man2/PR_SET_NO_NEW_PRIVS.2const.html).
    #[doc(alias = "PR_SET_NO_NEW_PRIVS")]
    pub fn no_new_privs(&mut self, on: bool) -> &mut Self {
        self.harden.no_new_privs = on;
        self
    }

    /// Removes capabilities from every set the program could have them in: bounding, permitted,
    /// effective, inheritable and ambient. `drop_capabilities(Capabilities::ALL)` gives
    /// bubblewrap's default: root inside, with no capabilities at all (no `sethostname`, no
    /// `mount`).
    ///
    /// By default root inside keeps every capability *over the sandbox's own namespaces* (the
    /// seed's promise: a root shell that can set its hostname), and a non-root uid inside has
    /// none after `execve`. Inheritable and ambient sets are always cleared unless capabilities
    /// are added with [`add_capabilities`](Sandbox::add_capabilities). Calls apply in order.
    #[doc(alias = "PR_CAPBSET_DROP")]
    #[doc(alias = "capset")]
    pub fn drop_capabilities(&mut self, caps: Capabilities) -> &mut Self {
        // ALL also covers capabilities newer than this crate.
        let bits = if caps.contains(Capabilities::ALL) { u64::MAX } else { caps.bits() };
        let (mask, add) = self.harden.caps.unwrap_or((u64::MAX, 0));
        self.harden.caps = Some((mask & !bits, add & !bits));
        self
    }

    /// Keeps only `caps` (of those the program would have), dropping every other one.
    pub fn keep_capabilities(&mut self, caps: Capabilities) -> &mut Self {
        let (mask, add) = self.harden.caps.unwrap_or((u64::MAX, 0));
        self.harden.caps = Some((mask & caps.bits(), add & caps.bits()));
        self
    }

    /// Gives the program `caps` (within the sandbox's user namespace) even when it does not run
    /// as root inside: for a non-root uid they are raised in the inheritable and ambient sets,
    /// which is how a capability survives `execve` without file capabilities. Undoes an earlier
    /// drop (`--cap-drop ALL --cap-add CAP_NET_ADMIN`).
    #[doc(alias = "PR_CAP_AMBIENT")]
    pub fn add_capabilities(&mut self, caps: Capabilities) -> &mut Self {
        let (mask, add) = self.harden.caps.unwrap_or((u64::MAX, 0));
        self.harden.caps = Some((mask, add | caps.bits()));
        self
    }

    /// Sets a resource limit for the program (`prlimit` on the child itself before `execve`).
    /// [`RLIM_INFINITY`] means no limit. An unprivileged caller cannot raise a hard limit above
    /// its own; `spawn` then fails with `EPERM` at [`Step::Rlimit`].
    #[doc(alias = "setrlimit")]
    #[doc(alias = "prlimit")]
    pub fn rlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> &mut Self {
        if soft > hard {
            self.bad(format!(
                "rlimit {resource:?}: the soft limit {soft} is above the hard {hard}"
            ));
        }
        self.harden.rlimits.retain(|&(r, _, _)| r != resource);
        self.harden.rlimits.push((resource, soft, hard));
        self
    }

    /// Passes the caller's fd `fd` to the program under the same number. Every fd above 2 that
    /// is not passed this way is closed before `execve`, CLOEXEC or not.
    pub fn keep_fd(&mut self, fd: RawFd) -> &mut Self {
        self.map_fd(fd, fd)
    }

    /// Passes the caller's fd `fd` to the program as fd `target` (like a shell's `target<&fd`);
    /// the copy is not CLOEXEC. `target` must be 3 or more: use [`stdin`](Sandbox::stdin) and
    /// friends for 0, 1 and 2. At most 64 fds can be passed.
    pub fn map_fd(&mut self, fd: RawFd, target: RawFd) -> &mut Self {
        if fd < 0 || !(3..=MAX_FD_NUMBER).contains(&target) {
            self.bad(format!(
                "map_fd({fd}, {target}): the fd must be open and the target 3 or more (use \
                 stdin/stdout/stderr for 0-2)"
            ));
        }
        self.harden.fds.push((fd, target));
        self
    }

    /// Whether the program may create user namespaces of its own (default: yes).
    ///
    /// `false` does what bubblewrap's `--disable-userns` does: it sets `user.max_user_namespaces`
    /// to 1 in the sandbox's user namespace and moves the program into a nested one, so the
    /// limit is reached and the program, having no capability over the outer namespace, cannot
    /// raise it. `unshare -U` inside then fails with `ENOSPC`. The program runs with the same
    /// ids, but its capabilities are over the nested namespace only: it can no longer
    /// `sethostname` or mount in the sandbox's namespaces. Needs [`Namespaces::USER`].
    ///
    /// With [`init`](Sandbox::init) the init moves into the nested namespace itself, before it
    /// starts the program, so the program starts there as its child: the init, too, then holds
    /// capabilities over the nested namespace only (it needs none for its work: it signals and
    /// reaps processes of that namespace).
    ///
    /// [`Namespaces::USER`]: crate::Namespaces::USER
    pub fn allow_nested_userns(&mut self, allow: bool) -> &mut Self {
        self.harden.nested_userns = allow;
        self
    }

    /// Whether the program gets a new, empty session keyring (default: yes), as runc gives every
    /// container.
    ///
    /// The kernel's keyrings are not namespaced: a process inherits its parent's session
    /// keyring, and with it every key the caller's session holds (Kerberos tickets, `fscrypt`
    /// or `ecryptfs` keys, whatever else the session put there), which it can read with `keyctl`
    /// wherever seccomp allows that (`default_seccomp(false)`). By default the child joins a new
    /// anonymous one right after the id maps
    /// ([`KEYCTL_JOIN_SESSION_KEYRING`](https://man7.org/linux/man-pages/man3/keyctl_join_session_keyring.3.html)),
    /// so the init (with [`init`](Sandbox::init)) and the program hold nothing of the caller's.
    ///
    /// Each such keyring counts against the key quota of the caller's uid for as long as the
    /// sandbox runs (`kernel.keys.maxkeys`: 200 keys for a non-root uid; `kernel.keys.maxbytes`;
    /// for root `kernel.keys.root_maxkeys`) when the caller has a session keyring of its own (a
    /// login or desktop session usually does; without one the kernel lets the new keyring
    /// exceed the quota): with the quota used up, `spawn` fails with `EDQUOT` at
    /// [`Step::SessionKeyring`]. `false` keeps the caller's session keyring
    /// (`--keep-session-keyring`). On a kernel without keyrings (`ENOSYS`), or under a seccomp
    /// filter around nscell that denies `keyctl` (`EPERM`, as Docker's default profile or an
    /// outer nscell sandbox does: the program is under that filter too), the step is skipped.
    #[doc(alias = "KEYCTL_JOIN_SESSION_KEYRING")]
    pub fn new_session_keyring(&mut self, new: bool) -> &mut Self {
        self.harden.new_session_keyring = new;
        self
    }

    /// Whether to install nscell's default seccomp policy (default: yes).
    ///
    /// The policy fails with `EPERM`: `kexec_load`, `kexec_file_load`, `init_module`,
    /// `finit_module`, `delete_module`, `bpf`, `perf_event_open`, `userfaultfd`, `keyctl`,
    /// `add_key`, `request_key`, `ptrace` and its memory-access twins `process_vm_readv` and
    /// `process_vm_writev`, `personality` other than `PER_LINUX`, `PER_LINUX32`
    /// and the query, and `ioctl(TIOCSTI)` / `ioctl(TIOCLINUX)` (terminal input injection,
    /// compared on the low 32 bits, CVE-2019-10063). It kills a process making system calls of
    /// another architecture and, on x86_64, fails x32 calls with `EPERM`. The filter is compiled
    /// once per `Sandbox`, on the first spawn.
    pub fn default_seccomp(&mut self, on: bool) -> &mut Self {
        self.harden.seccomp_changed().default_policy = on;
        self
    }

    /// Also fail `io_uring_setup`, `io_uring_enter` and `io_uring_register` with `EPERM`
    /// (default: allowed). Part of nscell's filter with or without the default policy (like
    /// [`seccomp_rule`](Sandbox::seccomp_rule)), so it also holds beside a policy of the
    /// caller's own (`default_seccomp(false)` with a [`seccomp_program`](Sandbox::seccomp_program)).
    pub fn deny_io_uring(&mut self, deny: bool) -> &mut Self {
        self.harden.seccomp_changed().deny_io_uring = deny;
        self
    }

    /// Adds a seccomp rule, checked before the default policy (first match wins):
    /// `seccomp_rule(SeccompRule::allow("ptrace"))` lets a debugger run inside. Rules are
    /// compiled into nscell's filter even without the default policy.
    pub fn seccomp_rule(&mut self, rule: SeccompRule) -> &mut Self {
        self.harden.seccomp_changed().rules.push(rule);
        self
    }

    /// Installs a caller-compiled seccomp program as well, in bubblewrap's `--seccomp FD` format:
    /// the raw bytes of a `struct sock_filter` array. It stacks on nscell's filter (the kernel
    /// runs every filter; the most restrictive answer wins); to make it the whole policy, also
    /// call `default_seccomp(false)`.
    pub fn seccomp_program(&mut self, bpf: &[u8]) -> &mut Self {
        match seccomp::parse_program(bpf) {
            Ok(p) => self.harden.seccomp.programs.push(p.into()),
            Err(e) => self.bad(e),
        }
        self
    }

    /// Allows `access` beneath `path` under Landlock. As soon as one Landlock rule is given,
    /// every filesystem access outside the rules is denied (see [`landlock(7)`]). Paths are as
    /// the sandbox sees them: when it mounts anything (a new root, a fresh `/proc`), the child
    /// opens them once its filesystem is in place; otherwise its view is the caller's. A
    /// relative path is relative to the program's working directory
    /// ([`current_dir`](Sandbox::current_dir), or else the caller's).
    ///
    /// [`landlock(7)`]: https://man7.org/linux/man-pages/man7/landlock.7.html
    pub fn landlock_path(&mut self, path: impl AsRef<Path>, access: LandlockAccess) -> &mut Self {
        self.harden.landlock.paths.push((path.as_ref().to_path_buf(), access));
        self
    }

    /// Restricts TCP `bind` to the ports given with this call (Linux 6.7+; call with no port to
    /// forbid every bind).
    pub fn landlock_tcp_bind(&mut self, ports: &[u16]) -> &mut Self {
        self.harden.landlock.bind_ports.get_or_insert_with(Vec::new).extend_from_slice(ports);
        self
    }

    /// Restricts TCP `connect` to the ports given with this call (Linux 6.7+; call with no port
    /// to forbid every connect).
    pub fn landlock_tcp_connect(&mut self, ports: &[u16]) -> &mut Self {
        self.harden.landlock.connect_ports.get_or_insert_with(Vec::new).extend_from_slice(ports);
        self
    }

    /// Fail `spawn` ([`Error::Unsupported`]) unless the running kernel enforces every requested
    /// Landlock right (default: best effort, see [`landlock_status`](Sandbox::landlock_status)).
    pub fn landlock_required(&mut self, required: bool) -> &mut Self {
        self.harden.landlock.required = required;
        self
    }

    /// What Landlock enforced for the last spawn (`None` before any spawn, or without Landlock
    /// rules).
    pub fn landlock_status(&self) -> Option<LandlockStatus> {
        self.harden.landlock_status
    }
}

fn fail(step: Step) -> impl Fn(Errno) -> Failure {
    move |e| Failure::new(step, e)
}

/// Puts the passed fds in place and closes every other fd above 2, except `exec_fd` (the CLOEXEC
/// exec pipe, or -1) and the Landlock ruleset (CLOEXEC too, needed until `execve`).
///
/// Sources may collide with targets (`map_fd(3, 4)` and `map_fd(4, 3)`), so every source is
/// first copied above all the numbers involved, then onto its target.
pub(crate) fn place_fds(plan: &HardenPlan, exec_fd: RawFd) -> Result<(), Failure> {
    let landlock = plan.landlock_fd.as_ref().map_or(-1, std::os::fd::AsRawFd::as_raw_fd);
    let mut exec_fd = exec_fd;
    let mut keep = [-1 as RawFd; MAX_FDS + 2];
    let mut n = 0;
    if !plan.fds.is_empty() {
        let mut high = 3;
        for &(s, t) in &plan.fds {
            high = high.max(s + 1).max(t + 1);
        }
        high = high.max(exec_fd + 1).max(landlock + 1);
        let collides = |fd: RawFd| fd >= 0 && plan.fds.iter().any(|&(_, t)| t == fd);
        if collides(exec_fd) {
            exec_fd = sys::dupfd_cloexec(exec_fd, high).map_err(fail(Step::PassFds))?;
        }
        if collides(landlock) {
            return Err(Failure::new(Step::PassFds, Errno::BUSY));
        }
        let mut temp = [-1 as RawFd; MAX_FDS];
        for (i, &(s, _)) in plan.fds.iter().enumerate() {
            temp[i] =
                sys::dupfd_cloexec(s, high).map_err(|e| Failure::new(Step::PassFds, e).at(i))?;
        }
        for (i, &(_, t)) in plan.fds.iter().enumerate() {
            sys::dup3(temp[i], t).map_err(|e| Failure::new(Step::PassFds, e).at(i))?;
            keep[n] = t;
            n += 1;
        }
    }
    for extra in [exec_fd, landlock] {
        if extra >= 3 {
            keep[n] = extra;
            n += 1;
        }
    }
    close_all_except(&mut keep[..n]).map_err(fail(Step::CloseFds))
}

/// Closes every fd above 2 but those in `keep` (which it sorts; numbers below 3 are ignored).
/// Runs in the child: no allocation.
pub(crate) fn close_all_except(keep: &mut [RawFd]) -> Result<(), Errno> {
    keep.sort_unstable();
    let mut from: u32 = 3;
    for &k in keep.iter() {
        let Ok(k) = u32::try_from(k) else { continue };
        if k > from {
            sys::close_range(from, k - 1)?;
        }
        from = from.max(k.saturating_add(1));
    }
    sys::close_range(from, u32::MAX)
}

impl HardenPlan {
    /// Calls `f` with every fd of the caller's that this plan keeps open until `execve`: the
    /// sources of the passed fds and the Landlock ruleset.
    pub(crate) fn for_each_fd(&self, mut f: impl FnMut(RawFd)) {
        for &(source, _) in &self.fds {
            f(source);
        }
        if let Some(fd) = &self.landlock_fd {
            f(std::os::fd::AsRawFd::as_raw_fd(fd));
        }
    }
}

/// Applies everything but the fds, just before `execve`. Runs in the child: raw system calls
/// only, no allocation. `in_init`: the program's task was started by the init, which has set the
/// nested user namespace limit already ([`limit_nested_userns`]).
pub(crate) fn harden(plan: &HardenPlan, in_init: bool) -> Result<(), Failure> {
    // First, while it may still open files (a low RLIMIT_NOFILE would refuse them). The index of
    // a failed rule is 1-based, so 0 still means the ruleset as a whole.
    if let Some(ruleset) = &plan.landlock_fd {
        let ruleset = std::os::fd::AsRawFd::as_raw_fd(ruleset);
        for (i, rule) in plan.landlock_rules.iter().enumerate() {
            add_path_rule(ruleset, rule).map_err(|e| Failure::new(Step::Landlock, e).at(i + 1))?;
        }
    }
    if !in_init {
        limit_nested_userns(plan)?;
    }
    for (i, &(resource, limit)) in plan.rlimits.iter().enumerate() {
        rustix::process::setrlimit(resource, limit)
            .map_err(|e| Failure::new(Step::Rlimit, e).at(i))?;
    }
    capabilities(plan).map_err(fail(Step::Capabilities))?;
    if plan.no_new_privs {
        rustix::thread::set_no_new_privs(true).map_err(fail(Step::NoNewPrivs))?;
    }
    if let Some(fd) = &plan.landlock_fd {
        sys::landlock_restrict_self(std::os::fd::AsRawFd::as_raw_fd(fd))
            .map_err(fail(Step::Landlock))?;
    }
    if let Some(filter) = &plan.seccomp {
        sys::seccomp_set_filter(filter).map_err(fail(Step::Seccomp))?;
    }
    for (i, program) in plan.programs.iter().enumerate() {
        sys::seccomp_set_filter(program).map_err(|e| Failure::new(Step::Seccomp, e).at(i + 1))?;
    }
    Ok(())
}

/// Opens `rule.path` (as this task sees it) with `O_PATH` and adds it to the ruleset.
fn add_path_rule(
    ruleset: RawFd,
    rule: &crate::landlock::ChildRule,
) -> Result<(), rustix::io::Errno> {
    use rustix::fs::{CWD, FileType, Mode, OFlags, ResolveFlags};
    // No magic links (/proc/self/fd/N): a rule follows the path as the sandbox names it, never
    // an fd that would lead out of its root.
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    let path = rule.path.as_c_str();
    let fd = rustix::fs::openat2(CWD, path, flags, Mode::empty(), ResolveFlags::NO_MAGICLINKS)?;
    let is_dir = FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) == FileType::Directory;
    let rights = if is_dir { rule.dir_rights } else { rule.file_rights };
    sys::landlock_add_path_rule(ruleset, std::os::fd::AsRawFd::as_raw_fd(&fd), rights)
}

const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_RAISE: usize = 2;
const CAP_SETPCAP: u32 = 8;

fn capabilities(plan: &HardenPlan) -> Result<(), Errno> {
    let (effective, permitted, inheritable) = sys::capget()?;
    let Some((mask, add)) = plan.caps else {
        // Untouched: only make sure nothing is inherited through execve (CVE-2022-29162).
        // Clearing the inheritable set clears the ambient set with it.
        if inheritable != 0 {
            sys::capset(effective, permitted, 0)?;
        }
        return Ok(());
    };
    let root = rustix::process::getuid().is_root();
    let base = if root { permitted } else { 0 };
    let keep = ((base & mask) | add) & permitted;
    for cap in 0..=plan.last_cap {
        if keep & (1 << cap) != 0 {
            continue;
        }
        if sys::prctl(PR_CAPBSET_READ, cap as usize, 0)? == 0 {
            continue;
        }
        match sys::prctl(PR_CAPBSET_DROP, cap as usize, 0) {
            Ok(_) => {}
            // Without CAP_SETPCAP the bounding set cannot shrink; such a task has no
            // capabilities to lose, and no_new_privs keeps execve from granting any.
            Err(Errno::PERM) if effective & (1 << CAP_SETPCAP) == 0 => {}
            Err(e) => return Err(e),
        }
    }
    let ambient = !root && keep != 0;
    sys::capset(keep, keep, if ambient { keep } else { 0 })?;
    if ambient {
        for cap in 0..=plan.last_cap {
            if keep & (1 << cap) != 0 {
                sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap as usize)?;
            }
        }
    }
    Ok(())
}

/// [`Sandbox::new_session_keyring`], when asked for. Runs in the child right after the id maps:
/// it is a credential change of this task only (it keeps the ids and capabilities, so it resets
/// neither the shared memory's dumpability nor the parent death signal), it must come before
/// seccomp (whose default policy denies `keyctl`) and before the init starts the program (which
/// inherits it), and there a failure reaches the parent on every spawn path.
pub(crate) fn join_session_keyring(plan: &HardenPlan) -> Result<(), Failure> {
    const PR_GET_SECCOMP: i32 = 21;
    const SECCOMP_MODE_FILTER: usize = 2;
    if !plan.new_session_keyring {
        return Ok(());
    }
    match sys::join_session_keyring() {
        Ok(_) => Ok(()),
        // A kernel without keyrings (CONFIG_KEYS off): there is no keyring to leave behind.
        Err(Errno::NOSYS) => Ok(()),
        // The kernel never answers EPERM here; a seccomp filter that this task (and so the
        // program) is under does, when it denies keyctl as a whole (looking the session keyring
        // up is refused too): the program cannot reach any keyring either.
        Err(Errno::PERM)
            if sys::prctl(PR_GET_SECCOMP, 0, 0) == Ok(SECCOMP_MODE_FILTER)
                && sys::session_keyring_id() == Err(Errno::PERM) =>
        {
            Ok(())
        }
        Err(e) => Err(Failure::new(Step::SessionKeyring, e)),
    }
}

/// `allow_nested_userns(false)`, when asked for: see [`nested_userns_limit`].
///
/// Without an init the program's task does it, just before the rlimits. With an init, the init
/// does it (and the program, cloned from it, starts in the nested namespace) before it makes
/// itself non-dumpable: the program's task shares the init's memory until `execve`, and while
/// that memory is non-dumpable the task's `/proc/self/{uid_map,gid_map,setgroups}` belong to
/// host root, so an unprivileged sandbox could not write its nested namespace's maps.
pub(crate) fn limit_nested_userns(plan: &HardenPlan) -> Result<(), Failure> {
    if plan.nested_userns_limit {
        nested_userns_limit(plan.nested_mount_ns).map_err(fail(Step::NestedUserns))?;
    }
    Ok(())
}

/// bubblewrap's `--disable-userns`: limit the sandbox's user namespace to one child, then move
/// into that child, mapping the same ids.
/// With `mount_ns`, a new mount namespace comes with the nested user namespace: a copy of the
/// sandbox's that the nested one owns, in which every mount is locked (this is how the mounts
/// are locked then: the throwaway user namespace of [`crate::mount_lock`] would still count
/// against the limit of 1 for a while after it is gone, as the kernel frees it later).
fn nested_userns_limit(mount_ns: bool) -> Result<(), Errno> {
    use rustix::thread::UnshareFlags;
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    write_file(c"/proc/sys/user/max_user_namespaces", b"1")?;
    let flags =
        if mount_ns { UnshareFlags::NEWUSER | UnshareFlags::NEWNS } else { UnshareFlags::NEWUSER };
    // SAFETY: new user and mount namespaces for this task only; it changes no memory and
    // shares no fd table.
    unsafe { rustix::thread::unshare_unsafe(flags) }?;
    write_file(c"/proc/self/setgroups", b"deny")?;
    let mut buf = [0u8; 40];
    write_file(c"/proc/self/uid_map", id_line(&mut buf, uid))?;
    write_file(c"/proc/self/gid_map", id_line(&mut buf, gid))
}

fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> Result<(), Errno> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let n = rustix::io::write(&fd, bytes)?;
    if n != bytes.len() { Err(Errno::IO) } else { Ok(()) }
}

/// `"ID ID 1\n"` without allocating.
fn id_line(buf: &mut [u8; 40], id: u32) -> &[u8] {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut v = id;
    loop {
        digits[len] = b'0' + (v % 10) as u8;
        len += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut at = 0;
    for _ in 0..2 {
        for i in (0..len).rev() {
            buf[at] = digits[i];
            at += 1;
        }
        buf[at] = b' ';
        at += 1;
    }
    buf[at] = b'1';
    buf[at + 1] = b'\n';
    &buf[..at + 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lines() {
        let mut buf = [0u8; 40];
        assert_eq!(id_line(&mut buf, 0), b"0 0 1\n");
        assert_eq!(id_line(&mut buf, 65534), b"65534 65534 1\n");
        assert_eq!(id_line(&mut buf, u32::MAX), b"4294967295 4294967295 1\n");
    }

    #[test]
    fn resources_parse() {
        assert_eq!(Resource::parse("nofile"), Some(Resource::Nofile));
        assert_eq!(Resource::parse("RLIMIT_AS"), Some(Resource::As));
        assert_eq!(Resource::parse("nope"), None);
    }

    #[test]
    fn capability_changes_fold_in_order() {
        let mut s = Sandbox::new("true");
        s.drop_capabilities(Capabilities::ALL).add_capabilities(Capabilities::NET_ADMIN);
        let (mask, add) = s.harden.caps.unwrap();
        assert_eq!((mask, add), (0, Capabilities::NET_ADMIN.bits()));
        let mut s = Sandbox::new("true");
        s.add_capabilities(Capabilities::CHOWN).drop_capabilities(Capabilities::CHOWN);
        let (mask, add) = s.harden.caps.unwrap();
        assert_eq!(
            (Capabilities::ALL.bits() & mask) | add,
            (Capabilities::ALL - Capabilities::CHOWN).bits()
        );
    }
}
