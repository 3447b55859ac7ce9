//! The hardening setters of [`Sandbox`] ([`crate::harden`]).

use crate::caps::Capabilities;
use crate::harden::*;
use crate::landlock;
use crate::rlimit::Resource;
use crate::sandbox::Sandbox;
use crate::seccomp;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;

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
    /// By default root inside keeps every capability *over the sandbox's own namespaces* (what
    /// a root shell inside expects: it can set its hostname), and a non-root uid inside has
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
    /// [`rlimit::INFINITY`](crate::rlimit::INFINITY) means no limit. An unprivileged caller cannot raise a hard limit above
    /// its own; `spawn` then fails with `EPERM` at [`Step::Rlimit`](crate::Step::Rlimit).
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

    /// Passes `fd` to the program under its own number (a [`File`](std::fs::File), a socket,
    /// an [`OwnedFd`]). Every fd above 2 that is not passed this way is closed before `execve`,
    /// CLOEXEC or not.
    ///
    /// The sandbox takes the fd over: it stays open for every spawn of this `Sandbox` and is
    /// closed when the `Sandbox` is dropped (the program's copy lives on in the program). To
    /// keep using it in the caller as well, pass a duplicate (`file.try_clone()?`).
    ///
    /// ```
    /// use nscell::Sandbox;
    /// use std::os::fd::AsRawFd;
    ///
    /// let file = std::fs::File::open("/dev/null")?;
    /// let n = file.as_raw_fd();
    /// let mut sandbox = Sandbox::new("sh");
    /// sandbox.args(["-c", &format!("test -e /proc/self/fd/{n}")]).keep_fd(file);
    /// assert!(sandbox.status()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A bare number names no fd the caller owns (it may be closed, or another's), so it is not
    /// accepted:
    ///
    /// ```compile_fail
    /// nscell::Sandbox::new("true").keep_fd(9999);
    /// ```
    pub fn keep_fd(&mut self, fd: impl Into<OwnedFd>) -> &mut Self {
        let fd = fd.into();
        let target = fd.as_raw_fd();
        self.pass_fd(fd, target)
    }

    /// Passes `fd` to the program as fd `target` (like a shell's `target<&fd`); the program's
    /// copy is not CLOEXEC. `target` must be 3 or more: use [`stdin`](Sandbox::stdin) and
    /// friends for 0, 1 and 2. A later call for the same `target` replaces the earlier (whose
    /// fd is closed). At most 64 fds can be passed. The sandbox owns `fd`, as with
    /// [`keep_fd`](Sandbox::keep_fd).
    pub fn map_fd(&mut self, fd: impl Into<OwnedFd>, target: RawFd) -> &mut Self {
        let fd = fd.into();
        if !(3..=MAX_FD_NUMBER).contains(&target) {
            self.bad(format!(
                "map_fd(fd {}, {target}): the target must be 3 or more (use \
                 stdin/stdout/stderr for 0-2)",
                fd.as_raw_fd()
            ));
        }
        self.pass_fd(fd, target)
    }

    fn pass_fd(&mut self, fd: OwnedFd, target: RawFd) -> &mut Self {
        self.harden.fds.retain(|&(_, t)| t != target);
        self.harden.fds.push((Arc::new(fd), target));
        self
    }

    /// Whether the program may create user namespaces of its own (default: yes).
    ///
    /// `false` does what bubblewrap's `--disable-userns` does: it sets `user.max_user_namespaces`
    /// to 1 in the sandbox's user namespace and moves the program into a nested one, so the
    /// limit is reached and the program, having no capability over the outer namespace, cannot
    /// raise it. `unshare -U` inside then fails with `ENOSPC`. The program runs with the same
    /// ids, but its capabilities are over the nested namespace only: it can no longer
    /// `sethostname` or mount in the sandbox's namespaces. Needs [`Namespaces::USER`](crate::Namespaces::USER).
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
    /// [`Step::SessionKeyring`](crate::Step::SessionKeyring). `false` keeps the caller's session keyring
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
    /// `seccomp_rule(seccomp::Rule::allow("ptrace"))` lets a debugger run inside. Rules are
    /// compiled into nscell's filter even without the default policy.
    pub fn seccomp_rule(&mut self, rule: seccomp::Rule) -> &mut Self {
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
    pub fn landlock_path(&mut self, path: impl AsRef<Path>, access: landlock::Access) -> &mut Self {
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

    /// How much of the Landlock policy a spawn needs (default:
    /// [`BestEffort`](landlock::CompatLevel::BestEffort): what the running kernel enforces,
    /// reported by [`Child::landlock_status`](crate::Child::landlock_status)).
    /// [`HardRequirement`](landlock::CompatLevel::HardRequirement) fails `spawn` with
    /// [`Error::Unsupported`](crate::Error::Unsupported) unless the running kernel enforces
    /// every requested right.
    pub fn landlock_compat_level(&mut self, level: landlock::CompatLevel) -> &mut Self {
        self.harden.landlock.compat = level;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
