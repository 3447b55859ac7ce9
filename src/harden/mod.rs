//! Hardening around the program: no_new_privs, capabilities, seccomp, Landlock, rlimits, and the
//! fds that reach it.
//!
//! A namespace alone is not a security boundary: root inside a user namespace keeps every
//! capability over the namespace's resources and the whole kernel API to attack. These layers
//! are applied by the child just before `execve`, in this order: fds put in place (every other fd
//! closed), the nested user namespace limit, rlimits, capabilities, no_new_privs, Landlock,
//! seccomp last. With an init, the init sets the nested user namespace limit before it starts
//! the program (see [`crate::child::harden::limit_nested_userns`]); the program's task does the rest. The new session
//! keyring is joined earlier, right after the id maps ([`crate::child::harden::join_session_keyring`]). Every step is
//! per task (`prctl`, `capset`, `prlimit` on itself, `seccomp` without `TSYNC`,
//! `landlock_restrict_self`, `keyctl`): nothing changes the memory map the child shares with the
//! caller.

use crate::caps::Capabilities;
use crate::error::{Error, Step};
use crate::landlock::{self, LandlockConfig};
use crate::rlimit::Resource;
use crate::seccomp::SeccompConfig;
use crate::sys::SockFilter;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, OnceLock};

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
    /// The fds passed with `keep_fd`/`map_fd` and their targets, one per target (a later call
    /// for a target replaces the earlier). Shared, so every spawn (and a clone of the config)
    /// passes the same fds; closed when the last holder is dropped.
    pub(crate) fds: Vec<(Arc<OwnedFd>, RawFd)>,
    pub(crate) nested_userns: bool,
    pub(crate) new_session_keyring: bool,
    pub(crate) seccomp: SeccompConfig,
    /// nscell's own compiled filter, cached until a seccomp setting changes (set through a
    /// shared borrow: the plan step borrows the passed fds from this config).
    pub(crate) compiled: OnceLock<Arc<[SockFilter]>>,
    pub(crate) landlock: LandlockConfig,
}

impl HardenPlan<'_> {
    /// Takes `caps` from every set the program could have them in, the bounding set included,
    /// whatever else was asked. `false` (and nothing changed) when the caller added one of them
    /// explicitly ([`Sandbox::add_capabilities`](crate::Sandbox::add_capabilities)).
    pub(crate) fn withhold(&mut self, caps: Capabilities) -> bool {
        let bits = caps.bits();
        match self.caps {
            Some((_, add)) if add & bits != 0 => return false,
            Some((mask, add)) => self.caps = Some((mask & !bits, add)),
            None => self.caps = Some((!bits, 0)),
        }
        true
    }
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
            compiled: OnceLock::new(),
            landlock: LandlockConfig::default(),
        }
    }
}

/// What the child applies, prepared before `clone`. The passed fds are borrowed from the
/// [`HardenConfig`] that owns them.
pub(crate) struct HardenPlan<'a> {
    pub(crate) no_new_privs: bool,
    pub(crate) caps: Option<(u64, u64)>,
    pub(crate) last_cap: u32,
    pub(crate) rlimits: Vec<(rustix::process::Resource, rustix::process::Rlimit)>,
    /// (source, target), sorted by target, targets unique. A target is only a number in the
    /// child's fd table, which the child takes over: no fd of the parent's.
    pub(crate) fds: Vec<(BorrowedFd<'a>, RawFd)>,
    /// `allow_nested_userns(false)`: the nested user namespace the program is moved into.
    pub(crate) nested_userns: Option<NestedUserns>,
    pub(crate) new_session_keyring: bool,
    pub(crate) landlock_fd: Option<OwnedFd>,
    /// Path rules added in the child (with a new root: paths as the sandbox sees them).
    pub(crate) landlock_rules: Vec<crate::landlock::ChildRule>,
    pub(crate) seccomp: Option<Arc<[SockFilter]>>,
    pub(crate) programs: Vec<Arc<[SockFilter]>>,
}

impl HardenConfig {
    /// Everything the child needs, and what Landlock will enforce (`None` without Landlock
    /// rules); compiles the seccomp filter on the first spawn only.
    /// With `paths_in_child`, Landlock path rules are opened in the child, in its own view of the
    /// filesystem (a new root, a fresh /proc); otherwise here, relative ones from `cwd` (the
    /// program's working directory, where the child would open them).
    pub(crate) fn plan(
        &self,
        ctx: &crate::context::Context<'_>,
    ) -> Result<(HardenPlan<'_>, Option<landlock::Status>), Error> {
        use crate::Namespaces;
        let (paths_in_child, cwd) = (ctx.paths_in_child, ctx.cwd);
        let mount_ns = ctx.namespaces.contains(Namespaces::MOUNT);
        if !self.nested_userns && !ctx.namespaces.contains(Namespaces::USER) {
            return Err(Error::invalid(
                "allow_nested_userns(false) needs Namespaces::USER (the limit is set in the \
                 sandbox's own user namespace)",
            ));
        }
        let seccomp = if self.seccomp.own_filter() {
            match self.compiled.get() {
                Some(compiled) => Some(compiled.clone()),
                None => {
                    let compiled: Arc<[SockFilter]> =
                        self.seccomp.compile().map_err(Error::invalid)?.into();
                    Some(self.compiled.get_or_init(|| compiled).clone())
                }
            }
        } else {
            None
        };
        // The sandbox owns these fds: they are open for as long as it lives.
        let mut fds: Vec<(BorrowedFd<'_>, RawFd)> =
            self.fds.iter().map(|(fd, t)| (fd.as_fd(), *t)).collect();
        fds.sort_by_key(|&(_, t)| t);
        if fds.len() > MAX_FDS {
            return Err(Error::invalid(format!("at most {MAX_FDS} fds can be passed")));
        }
        let highest_target = fds.iter().map(|&(_, t)| t).max().unwrap_or(2);
        let (landlock_fd, status, landlock_rules) = if self.landlock.is_active() {
            let (mut fd, status, rules) = self.landlock.prepare(paths_in_child, cwd)?;
            // Above every target, so putting the passed fds in place cannot overwrite it.
            let above = fds.iter().map(|&(_, t)| t + 1).max().unwrap_or(3);
            if let Some(f) = &fd {
                if f.as_raw_fd() < above {
                    let moved = rustix::io::fcntl_dupfd_cloexec(f, above)
                        .map_err(|e| Error::setup(Step::Landlock, None, e.raw_os_error()))?;
                    fd = Some(moved);
                }
            }
            (fd, Some(status), rules)
        } else {
            (None, None, Vec::new())
        };
        let to_rlimit = |v: u64| if v == crate::rlimit::INFINITY { None } else { Some(v) };
        let plan = HardenPlan {
            no_new_privs: self.no_new_privs,
            caps: self.caps,
            last_cap: crate::kernel::last_cap(),
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
            // The nested user namespace maps the ids the program has to themselves.
            nested_userns: (!self.nested_userns)
                .then_some(())
                .map(|()| -> Result<_, Error> {
                    Ok(NestedUserns {
                        uid_map: crate::idmap::render(&[crate::IdMap::new(
                            ctx.ids_inside.0,
                            ctx.ids_inside.0,
                            1,
                        )]),
                        gid_map: crate::idmap::render(&[crate::IdMap::new(
                            ctx.ids_inside.1,
                            ctx.ids_inside.1,
                            1,
                        )]),
                        mount_ns,
                        proc_dir: open_proc_dir(highest_target)?,
                    })
                })
                .transpose()?,
            new_session_keyring: self.new_session_keyring,
            landlock_fd,
            landlock_rules,
            seccomp,
            programs: self.seccomp.programs.clone(),
        };
        Ok((plan, status))
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

    /// The describe step: the path a failed hardening step names, if any (a Landlock path
    /// rule's; its index is 1-based, 0 being the ruleset as a whole).
    pub(crate) fn describe(&self, f: &crate::error::Failure) -> Option<std::path::PathBuf> {
        match f.step {
            Step::Landlock => usize::from(f.index)
                .checked_sub(1)
                .and_then(|i| self.landlock.paths.get(i))
                .map(|(p, _)| p.clone()),
            _ => None,
        }
    }

    pub(crate) fn seccomp_changed(&mut self) -> &mut SeccompConfig {
        self.compiled.take();
        &mut self.seccomp
    }
}

/// The nested user namespace of `allow_nested_userns(false)`, rendered for the child.
pub(crate) struct NestedUserns {
    /// Its maps: the program's own uid and gid, each to itself.
    pub(crate) uid_map: Vec<u8>,
    pub(crate) gid_map: Vec<u8>,
    /// A new mount namespace with it: the sandbox's mounts, copied into a namespace the nested
    /// user namespace owns, and so locked ([`crate::child::mount_lock`]).
    pub(crate) mount_ns: bool,
    /// The caller's procfs (`O_PATH`), through which the limit and the maps are written: the
    /// sandbox's own view may have no /proc (a new root without one), and `self` in this one
    /// still names the writer (every PID namespace of the sandbox is below the caller's).
    pub(crate) proc_dir: OwnedFd,
}

/// The caller's `/proc`, checked to be a procfs, at a number above `above` (every fd the
/// program is given: placing those cannot close it).
fn open_proc_dir(above: RawFd) -> Result<OwnedFd, Error> {
    use rustix::fs::{Mode, OFlags};
    let cannot = |e: rustix::io::Errno| Error::Unsupported {
        feature: "allow_nested_userns(false)",
        reason: format!("cannot open /proc: {e}"),
    };
    let fd = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(cannot)?;
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    if rustix::fs::fstatfs(&fd).map_err(cannot)?.f_type as i64 != PROC_SUPER_MAGIC {
        return Err(cannot(rustix::io::Errno::XDEV));
    }
    rustix::io::fcntl_dupfd_cloexec(&fd, above.saturating_add(1)).map_err(cannot)
}
