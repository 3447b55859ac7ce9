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

use crate::caps::{self, Capabilities};
use crate::error::{Error, Step};
use crate::landlock::{LandlockConfig, LandlockStatus};
use crate::seccomp::SeccompConfig;
use crate::sys::SockFilter;
use std::os::fd::{OwnedFd, RawFd};
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

    pub(crate) fn rustix(self) -> rustix::process::Resource {
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
pub(crate) const MAX_FDS: usize = 64;
/// The highest fd number the kernel can ever hand out (`fs.nr_open` is at most 2^30).
pub(crate) const MAX_FD_NUMBER: RawFd = 1 << 30;

/// The caller's hardening settings (one field of [`Sandbox`](crate::Sandbox)).
#[derive(Debug, Clone)]
pub(crate) struct HardenConfig {
    pub(crate) no_new_privs: bool,
    /// Capability changes folded to `(base & mask) | add`, or `None` for "untouched".
    pub(crate) caps: Option<(u64, u64)>,
    pub(crate) rlimits: Vec<(Resource, u64, u64)>,
    /// (source, target) pairs; a later entry for the same target replaces the earlier.
    pub(crate) fds: Vec<(RawFd, RawFd)>,
    pub(crate) nested_userns: bool,
    pub(crate) new_session_keyring: bool,
    pub(crate) seccomp: SeccompConfig,
    /// nscell's own compiled filter, cached until a seccomp setting changes.
    pub(crate) compiled: Option<Arc<[SockFilter]>>,
    pub(crate) landlock: LandlockConfig,
    pub(crate) landlock_status: Option<LandlockStatus>,
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
    pub(crate) no_new_privs: bool,
    pub(crate) caps: Option<(u64, u64)>,
    pub(crate) last_cap: u32,
    pub(crate) rlimits: Vec<(rustix::process::Resource, rustix::process::Rlimit)>,
    /// (source, target), sorted by target, targets unique.
    pub(crate) fds: Vec<(RawFd, RawFd)>,
    pub(crate) nested_userns_limit: bool,
    /// With the nested user namespace, a new mount namespace too: the sandbox's mounts, copied
    /// into a namespace the nested user namespace owns, and so locked ([`crate::mount_lock`]).
    pub(crate) nested_mount_ns: bool,
    pub(crate) new_session_keyring: bool,
    pub(crate) landlock_fd: Option<OwnedFd>,
    /// Path rules added in the child (with a new root: paths as the sandbox sees them).
    pub(crate) landlock_rules: Vec<crate::landlock::ChildRule>,
    pub(crate) seccomp: Option<Arc<[SockFilter]>>,
    pub(crate) programs: Vec<Arc<[SockFilter]>>,
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
            #[allow(unsafe_code)]
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

    /// Whether the program may create user namespaces ([`Sandbox::allow_nested_userns`](crate::Sandbox::allow_nested_userns)).
    pub(crate) fn nested_userns_allowed(&self) -> bool {
        self.nested_userns
    }

    /// The path of Landlock path rule `i`, for error messages.
    pub(crate) fn landlock_path(&self, i: usize) -> Option<&std::path::Path> {
        self.landlock.paths.get(i).map(|(p, _)| p.as_path())
    }

    pub(crate) fn seccomp_changed(&mut self) -> &mut SeccompConfig {
        self.compiled = None;
        &mut self.seccomp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse() {
        assert_eq!(Resource::parse("nofile"), Some(Resource::Nofile));
        assert_eq!(Resource::parse("RLIMIT_AS"), Some(Resource::As));
        assert_eq!(Resource::parse("nope"), None);
    }
}
