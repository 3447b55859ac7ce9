//! The set of namespaces a sandbox gets, and the existing namespaces it joins
//! ([`Sandbox::join`](crate::Sandbox::join)): checked and put in the kernel's order before
//! `clone` ([`Joins::plan`]); entered by [`crate::child::join`].

use crate::error::Error;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

bitflags::bitflags! {
    /// Which new namespaces the program runs in.
    ///
    /// Each flag is the kernel's `CLONE_NEW*` bit. The default set of a [`Sandbox`](crate::Sandbox)
    /// is [`Namespaces::DEFAULT`]: `USER | PID | MOUNT | UTS | IPC`.
    ///
    /// Unprivileged, the kernel refuses every namespace but `USER` unless a user namespace is
    /// created at the same time; see [`Sandbox::namespaces`](crate::Sandbox::namespaces) for how
    /// nscell handles that.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct Namespaces: u32 {
        /// A new user namespace: its own uid and gid numbering, with the caller mapped to root by
        /// default. See [user_namespaces(7)](https://man7.org/linux/man-pages/man7/user_namespaces.7.html).
        #[doc(alias = "CLONE_NEWUSER")]
        const USER = 0x1000_0000;
        /// A new PID namespace: the program is PID 1 and sees only its descendants (once `/proc`
        /// is remounted). PID 1 gets no signal it has no handler for from inside its namespace,
        /// and only SIGKILL and SIGSTOP from outside. See
        /// [pid_namespaces(7)](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html).
        #[doc(alias = "CLONE_NEWPID")]
        const PID = 0x2000_0000;
        /// A new mount namespace: mounts made inside are invisible outside. nscell makes all
        /// mounts private first so nothing propagates back to the host. See
        /// [mount_namespaces(7)](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html).
        #[doc(alias = "CLONE_NEWNS")]
        const MOUNT = 0x0002_0000;
        /// A new UTS namespace: its own hostname and NIS domain name. See
        /// [uts_namespaces(7)](https://man7.org/linux/man-pages/man7/uts_namespaces.7.html).
        #[doc(alias = "CLONE_NEWUTS")]
        const UTS = 0x0400_0000;
        /// A new IPC namespace: its own System V IPC objects and POSIX message queues. See
        /// [ipc_namespaces(7)](https://man7.org/linux/man-pages/man7/ipc_namespaces.7.html).
        #[doc(alias = "CLONE_NEWIPC")]
        const IPC = 0x0800_0000;
        /// A new network namespace: only a loopback interface, which nscell brings up. See
        /// [network_namespaces(7)](https://man7.org/linux/man-pages/man7/network_namespaces.7.html).
        #[doc(alias = "CLONE_NEWNET")]
        const NET = 0x4000_0000;
        /// A new cgroup namespace: the current cgroup appears as the root of `/proc/self/cgroup`.
        /// See [cgroup_namespaces(7)](https://man7.org/linux/man-pages/man7/cgroup_namespaces.7.html).
        #[doc(alias = "CLONE_NEWCGROUP")]
        const CGROUP = 0x0200_0000;
        /// A new time namespace (Linux 5.6+): its own offsets for `CLOCK_MONOTONIC` and
        /// `CLOCK_BOOTTIME`. The kernel's bit does not fit `clone()`'s flags, so nscell calls
        /// `unshare(CLONE_NEWTIME)` in the child and the program enters the namespace at `execve`.
        /// See [time_namespaces(7)](https://man7.org/linux/man-pages/man7/time_namespaces.7.html).
        #[doc(alias = "CLONE_NEWTIME")]
        const TIME = 0x0000_0080;
    }
}

impl Namespaces {
    /// The default set, used when [`Sandbox::namespaces`](crate::Sandbox::namespaces) is not called:
    /// `USER | PID | MOUNT | UTS | IPC`.
    pub const DEFAULT: Namespaces = Namespaces::USER
        .union(Namespaces::PID)
        .union(Namespaces::MOUNT)
        .union(Namespaces::UTS)
        .union(Namespaces::IPC);

    /// The bits that go into `clone()`'s flags (all but `TIME`).
    pub(crate) fn clone_flags(self) -> i32 {
        self.difference(Namespaces::TIME).bits() as i32
    }

    /// The name of the namespace as it appears under `/proc/PID/ns/` (only for single flags).
    pub fn proc_name(self) -> Option<&'static str> {
        Some(match self {
            Namespaces::USER => "user",
            Namespaces::PID => "pid",
            Namespaces::MOUNT => "mnt",
            Namespaces::UTS => "uts",
            Namespaces::IPC => "ipc",
            Namespaces::NET => "net",
            Namespaces::CGROUP => "cgroup",
            Namespaces::TIME => "time",
            _ => return None,
        })
    }
}

/// The order in which the joining task enters namespaces that are not user namespaces (the
/// order of util-linux `nsenter`): the ones owned by the caller's user namespace before a
/// joined user namespace, the rest after it.
const JOIN_ORDER: [Namespaces; 7] = [
    Namespaces::CGROUP,
    Namespaces::IPC,
    Namespaces::UTS,
    Namespaces::NET,
    Namespaces::PID,
    Namespaces::MOUNT,
    Namespaces::TIME,
];

/// The existing namespaces a sandbox joins, as the builder records them.
#[derive(Debug, Default)]
pub(crate) struct Joins {
    /// One fd per namespace type, in the order given.
    pub(crate) at_start: Vec<(Namespaces, OwnedFd)>,
    /// The user namespace to enter at the end of the setup.
    pub(crate) after_setup: Option<OwnedFd>,
}

/// What the joins are for one spawn: fds borrowed from the [`Joins`].
pub(crate) struct JoinPlan<'a> {
    /// (fd, `CLONE_NEW*` type) in the order the child enters them.
    pub(crate) order: Vec<(BorrowedFd<'a>, i32)>,
    pub(crate) after_setup: Option<BorrowedFd<'a>>,
    /// A join that a task sharing the caller's memory must not make.
    pub(crate) need_own_memory: bool,
}

impl JoinPlan<'_> {
    /// The type of the namespace joined at `index` of the order (a failure record's index), or
    /// the user namespace entered after setup (any index past the order).
    pub(crate) fn type_at(&self, index: usize) -> Namespaces {
        self.order
            .get(index)
            .map_or(Namespaces::USER, |&(_, t)| Namespaces::from_bits_truncate(t as u32))
    }
}

/// `(st_dev, st_ino)` of a namespace: the same pair is the same namespace.
fn identity(fd: BorrowedFd<'_>) -> Result<(u64, u64), rustix::io::Errno> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// The caller's own user namespace's identity.
fn own_user_ns() -> Result<(u64, u64), Error> {
    let st = rustix::fs::stat("/proc/self/ns/user")
        .map_err(|e| Error::invalid(format!("cannot stat /proc/self/ns/user: {e}")))?;
    Ok((st.st_dev, st.st_ino))
}

/// Whether the task that created the user namespace `fd`, and each of its ancestors up to (not
/// including) the caller's user namespace, ran with the caller's euid. Then the kernel counts
/// the capabilities a task gets by joining it as a subset of its own (`cred_cap_issubset`),
/// and the join leaves the dumpability of the task's memory alone, which a task sharing the
/// caller's memory must not change. `Err` when it is no descendant of the caller's user
/// namespace.
fn created_by_caller(fd: BorrowedFd<'_>, own: (u64, u64)) -> Result<bool, rustix::io::Errno> {
    let euid = rustix::process::geteuid().as_raw();
    let mut up: Option<OwnedFd> = None;
    // User namespaces nest at most 32 deep.
    for _ in 0..40 {
        let now = up.as_ref().map_or(fd, |fd| fd.as_fd());
        if identity(now)? == own {
            return Ok(true);
        }
        if crate::sys::ns_owner_uid(now)? != euid {
            return Ok(false);
        }
        up = Some(crate::sys::ns_parent(now)?);
    }
    Err(rustix::io::Errno::LOOP)
}

impl Joins {
    /// The plan step: every fd checked (an nsfs fd of the type it is given for, `NS_GET_NSTYPE`;
    /// a user namespace below the caller's and not its own), put in the order the child enters
    /// them, and whether a task of its own must make them. All before `clone`: bad input is an
    /// `Err` before anything is created.
    pub(crate) fn plan(&self) -> Result<JoinPlan<'_>, Error> {
        let mut joined = Namespaces::empty();
        if self.at_start.is_empty() && self.after_setup.is_none() {
            return Ok(JoinPlan { order: Vec::new(), after_setup: None, need_own_memory: false });
        }
        for (ns, fd) in &self.at_start {
            let name = ns.proc_name().unwrap_or("?");
            if joined.contains(*ns) {
                return Err(Error::invalid(format!("the {name} namespace is joined twice")));
            }
            joined |= *ns;
            check_type(*ns, fd.as_fd(), "join")?;
        }
        if let Some(fd) = &self.after_setup {
            check_type(Namespaces::USER, fd.as_fd(), "join_after_setup")?;
        }
        let own = own_user_ns()?;
        let mut need_own_memory = joined.contains(Namespaces::TIME);
        let user = self.at_start.iter().find(|(ns, _)| *ns == Namespaces::USER);
        if let Some((_, fd)) = user {
            let id = identity(fd.as_fd()).map_err(|e| bad_fd("user", e))?;
            if id == own {
                return Err(Error::invalid(
                    "join(Namespaces::USER, ..): that is the caller's own user namespace (the                      kernel refuses to enter it again)",
                ));
            }
            need_own_memory |= !below_caller(fd.as_fd(), own, "join(Namespaces::USER, ..)")?;
        }
        if let Some(fd) = &self.after_setup {
            need_own_memory |= !below_caller(fd.as_fd(), own, "join_after_setup")?;
        }
        // Those owned by the caller's user namespace (or one above it, which it cannot name)
        // before the joined user namespace: in that one, the caller has no capability over
        // them. The rest after it (setns needs CAP_SYS_ADMIN in the joining task's own user
        // namespace as well as over the namespace).
        let owned_by_caller = |fd: BorrowedFd<'_>| match crate::sys::ns_owner(fd) {
            Ok(owner) => identity(owner.as_fd()).is_ok_and(|id| id == own),
            Err(_) => true,
        };
        let mut before = Vec::new();
        let mut after = Vec::new();
        for ns in JOIN_ORDER {
            let Some((_, fd)) = self.at_start.iter().find(|(n, _)| *n == ns) else { continue };
            let entry = (fd.as_fd(), ns.bits() as i32);
            if user.is_some() && !owned_by_caller(fd.as_fd()) {
                after.push(entry);
            } else {
                before.push(entry);
            }
        }
        let mut order = before;
        if let Some((_, fd)) = user {
            order.push((fd.as_fd(), Namespaces::USER.bits() as i32));
        }
        order.extend(after);
        Ok(JoinPlan {
            order,
            after_setup: self.after_setup.as_ref().map(|fd| fd.as_fd()),
            need_own_memory,
        })
    }
}

/// `InvalidInput` for a namespace fd the kernel cannot tell about.
fn bad_fd(name: &str, e: rustix::io::Errno) -> Error {
    Error::invalid(format!("the fd given for the {name} namespace cannot be examined: {e}"))
}

/// Whether joining the user namespace `fd` keeps the task's memory dumpable (see
/// [`created_by_caller`]), or an `Err` when it lies outside the caller's.
fn below_caller(fd: BorrowedFd<'_>, own: (u64, u64), what: &str) -> Result<bool, Error> {
    created_by_caller(fd, own).map_err(|e| {
        Error::invalid(format!(
            "{what}: the user namespace is not one below the caller's, which alone it could              enter ({e})"
        ))
    })
}

/// Checks that `fd` is an nsfs fd of `ns`'s type (`NS_GET_NSTYPE`).
fn check_type(ns: Namespaces, fd: BorrowedFd<'_>, what: &str) -> Result<(), Error> {
    let name = ns.proc_name().unwrap_or("?");
    match crate::sys::ns_type(fd) {
        Ok(t) if t as u32 == ns.bits() => Ok(()),
        Ok(t) => {
            let is = Namespaces::from_bits(t as u32).and_then(Namespaces::proc_name);
            Err(Error::invalid(format!(
                "{what}(Namespaces::{}, fd {}): the fd is {}, not a {name} namespace",
                name.to_uppercase(),
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                is.map_or("another namespace".to_string(), |is| format!("a {is} namespace")),
            )))
        }
        Err(e) => Err(Error::invalid(format!(
            "{what}(Namespaces::{}, fd {}): the fd is not a namespace (such as /proc/PID/ns/{name}): {e}",
            name.to_uppercase(),
            std::os::fd::AsRawFd::as_raw_fd(&fd),
        ))),
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_the_kernels() {
        assert_eq!(Namespaces::USER.bits(), libc::CLONE_NEWUSER as u32);
        assert_eq!(Namespaces::PID.bits(), libc::CLONE_NEWPID as u32);
        assert_eq!(Namespaces::MOUNT.bits(), libc::CLONE_NEWNS as u32);
        assert_eq!(Namespaces::UTS.bits(), libc::CLONE_NEWUTS as u32);
        assert_eq!(Namespaces::IPC.bits(), libc::CLONE_NEWIPC as u32);
        assert_eq!(Namespaces::NET.bits(), libc::CLONE_NEWNET as u32);
        assert_eq!(Namespaces::CGROUP.bits(), libc::CLONE_NEWCGROUP as u32);
        assert_eq!(Namespaces::TIME.bits(), 0x80);
        assert_eq!(Namespaces::all().iter().count(), 8);
    }

    #[test]
    fn time_never_reaches_clone_flags() {
        let flags = Namespaces::all().clone_flags();
        assert_eq!(flags & 0xff, 0, "the low byte of clone() flags is the exit signal");
        assert_eq!(flags as u32 | 0x80, Namespaces::all().bits());
    }

    #[test]
    fn proc_names() {
        let names: Vec<_> = Namespaces::all().iter().map(|n| n.proc_name().unwrap()).collect();
        assert_eq!(names.len(), 8);
        assert_eq!(Namespaces::DEFAULT.proc_name(), None);
    }
}
